//! The comparison as a table (stdout) or as JSON (`--json`).

use std::fmt::Write;

use super::{Comparison, Row, RowStatus, RowUnit};
use crate::units::{fmt_bytes, fmt_secs, trim_num};

impl RowStatus {
    /// The table's result column.
    pub fn label(self) -> &'static str {
        match self {
            RowStatus::Ok => "ok",
            RowStatus::Regression => "REGRESSION",
            RowStatus::NotCompared => "not compared",
            RowStatus::Info => "info",
        }
    }
}

fn value(unit: RowUnit, v: Option<f64>) -> String {
    match (unit, v) {
        (_, None) | (RowUnit::Verdict, _) => "-".into(),
        (RowUnit::Seconds, Some(v)) => fmt_secs(v),
        (RowUnit::Percent, Some(v)) => format!("{}%", trim_num(v, 3)),
        (RowUnit::Bytes, Some(v)) => fmt_bytes(v),
    }
}

fn signed(v: f64, unit: &str) -> String {
    let sign = if v >= 0.0 { "+" } else { "" };
    format!("{sign}{}{unit}", trim_num(v, 1))
}

impl Row {
    fn metric(&self) -> String {
        match &self.subject {
            Some(s) => format!("{} {s}", self.key),
            None => self.key.to_owned(),
        }
    }

    /// The unit of `change` and `limit`: percentage points for a ratio row, else %.
    fn change_unit(&self) -> &'static str {
        if self.unit == RowUnit::Percent {
            "pp"
        } else {
            "%"
        }
    }

    fn change_text(&self) -> String {
        self.change
            .map_or("-".into(), |c| signed(c, self.change_unit()))
    }

    fn limit_text(&self) -> String {
        self.limit
            .map_or("-".into(), |l| signed(l, self.change_unit()))
    }
}

impl Comparison {
    /// The human-readable table.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "soakd compare");
        for (side, r) in [("BASE", &self.base), ("NEW ", &self.new)] {
            let _ = writeln!(
                out,
                "  {side} {}: run {} against {}, verdict {} (exit {}){}",
                r.file,
                r.run_id,
                r.target,
                r.verdict,
                r.exit_code,
                if r.suspect { ", suspect" } else { "" }
            );
        }
        let width = self
            .rows
            .iter()
            .map(|r| r.metric().chars().count())
            .max()
            .unwrap_or(0)
            .max(6);
        let _ = writeln!(
            out,
            "  {:<width$}  {:>10}  {:>10}  {:>9}  {:>6}  result",
            "metric", "base", "new", "change", "limit"
        );
        for r in &self.rows {
            let (base, new) = if r.unit == RowUnit::Verdict {
                let (b, n) = r.detail.split_once(" -> ").unwrap_or(("-", "-"));
                (b.to_owned(), n.to_owned())
            } else {
                (value(r.unit, r.base), value(r.unit, r.new))
            };
            let mut line = format!(
                "  {:<width$}  {base:>10}  {new:>10}  {:>9}  {:>6}  {}",
                r.metric(),
                r.change_text(),
                r.limit_text(),
                r.status.label()
            );
            if !r.detail.is_empty() && r.unit != RowUnit::Verdict {
                let _ = write!(line, "  ({})", r.detail);
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "  result: {} (exit {})",
            match self.regressions {
                0 => "no regression".to_owned(),
                1 => "1 regression".to_owned(),
                n => format!("{n} regressions"),
            },
            self.exit_code()
        );
        out
    }

    /// The comparison as pretty JSON (`--json`), with `exit_code`.
    pub fn to_json(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("exit_code".into(), self.exit_code().into());
        }
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }
}
