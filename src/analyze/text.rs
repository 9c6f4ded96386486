//! The text output of `soakd analyze`: a header with the settings, one table per series, and
//! the final verdict line.
//!
//! Rates are per hour in the resource's unit: RSS in binary byte units
//! ([`crate::units::fmt_bytes`], e.g. `+64MiB/h`), fds and threads as counts (`+90 fds/h`).
//! Per window: Sen's slope, its confidence interval (`-inf`/`+inf` when unbounded), R², the
//! trough points fitted, the Mann–Kendall p-value, the sawtooth period the troughs were cut by
//! (`-` when none was found) and whether the window calls a leak, with the reason when it does
//! not (`no: below growth floor: +2.98MiB < 4MiB (min_growth_bytes)`; a window without a fit
//! says why it has none). The series line gives the rate threshold the windows are held to
//! (for RSS it depends on the baseline); its verdict line gives the reason of an `ok` or an
//! `unknown` ([`crate::monitor::reason`]).

use std::fmt::Write;

use super::run::{Analysis, AnalyzeSettings, SeriesAnalysis, WindowAnalysis};
use crate::monitor::{Resource, Verdict, Window};
use crate::units::trim_num;

/// The verdict as printed.
pub fn verdict_str(v: Verdict) -> &'static str {
    match v {
        Verdict::Leak => "leak",
        Verdict::Ok => "ok",
        Verdict::Unknown => "unknown",
    }
}

use crate::monitor::reason::{amount, rate, secs};

fn labels(s: &SeriesAnalysis) -> String {
    if s.labels.is_empty() {
        return "(no labels)".into();
    }
    let parts: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(", "))
}

fn p_value(p: f64) -> String {
    if p < 1e-4 {
        "<0.0001".into()
    } else {
        format!("{p:.4}")
    }
}

/// The leak cell: `yes`, or `no: ` and why not.
fn leak_cell(w: &WindowAnalysis) -> String {
    match &w.reason {
        _ if w.leak => "yes".into(),
        Some(why) => format!("no: {}", why.trim_start_matches("no fit: ")),
        None => "no".into(),
    }
}

fn window_row(r: Resource, w: &WindowAnalysis) -> [String; 8] {
    let Some(f) = &w.fit else {
        return [
            w.window.clone(),
            "no fit".into(),
            "-".into(),
            "-".into(),
            "0".into(),
            "-".into(),
            "-".into(),
            leak_cell(w),
        ];
    };
    let lo = f.slope_lower_per_hour.map_or("-inf".into(), |v| rate(r, v));
    let hi = f.slope_upper_per_hour.map_or("+inf".into(), |v| rate(r, v));
    [
        w.window.clone(),
        rate(r, f.slope_per_hour),
        format!("{lo} .. {hi}"),
        format!("{:.2}", f.r2),
        f.points.to_string(),
        p_value(f.trend_p),
        f.period_secs.map_or("-".into(), secs),
        leak_cell(w),
    ]
}

fn table(out: &mut String, header: [String; 8], rows: &[[String; 8]]) {
    let mut width = header.each_ref().map(String::len);
    for row in rows {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::from("  ");
        for (i, (c, w)) in row.iter().zip(width).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let _ = write!(line, "{c:<w$}");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

fn series_block(out: &mut String, i: usize, n: usize, s: &SeriesAnalysis, st: &AnalyzeSettings) {
    let r = st.resource;
    let _ = writeln!(out, "\nseries {} of {n}: {}", i + 1, labels(s));
    let span = s
        .first_timestamp
        .zip(s.last_timestamp)
        .map_or(0.0, |(a, b)| b - a);
    let mut line = format!("  {} points over {}", s.points, secs(span));
    if let Some(iv) = s.interval_seconds {
        let _ = write!(line, ", every {}", secs(iv));
    }
    if let Some(b) = s.baseline {
        let _ = write!(line, ", baseline {}", amount(r, b));
        let limit = st.rules.rate_limit(r, Some(b));
        let _ = write!(line, ", threshold {}", rate(r, limit));
    }
    let _ = writeln!(out, "{line}");
    let pct = trim_num(st.confidence * 100.0, 1);
    let header = [
        "window".into(),
        "slope".into(),
        format!("{pct}% interval"),
        "R²".into(),
        "troughs".into(),
        "p".into(),
        "period".into(),
        "leak".into(),
    ];
    let rows: Vec<[String; 8]> = s.windows.iter().map(|w| window_row(r, w)).collect();
    table(out, header, &rows);
    let mut verdict = format!("  verdict: {}", verdict_str(s.verdict));
    if let (Some(t), Some(first)) = (s.first_leak_timestamp, s.first_timestamp) {
        let _ = write!(
            verdict,
            " (first called at {} = {} into the series)",
            trim_num(t, 3),
            secs(t - first)
        );
    }
    if s.verdict != Verdict::Leak {
        let _ = write!(verdict, ": {}", s.reason);
    }
    let _ = writeln!(out, "{verdict}");
}

/// The whole text output.
pub fn render(a: &Analysis, st: &AnalyzeSettings) -> String {
    let mut out = String::new();
    let mut windows: Vec<&Window> = st.windows.iter().collect();
    windows.sort_by_key(|w| w.duration);
    let labels: Vec<&str> = windows.iter().map(|w| w.label.as_str()).collect();
    let _ = writeln!(
        out,
        "soakd analyze: {}, {} series, windows {}{}",
        a.resource,
        a.series.len(),
        labels.join(", "),
        if st.warmup > 0.0 {
            format!(", warm-up {}", secs(st.warmup))
        } else {
            String::new()
        }
    );
    for (i, s) in a.series.iter().enumerate() {
        series_block(&mut out, i, a.series.len(), s, st);
    }
    let mut last = format!(
        "\nverdict: {} (worst of {} series)",
        verdict_str(a.verdict),
        a.series.len()
    );
    if let Some(slope) = a.slope_per_hour {
        let _ = write!(last, ", longest-window slope {}", rate(st.resource, slope));
    }
    let _ = writeln!(out, "{last}");
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::analyze::run::analyze;
    use crate::analyze::Series;
    use crate::units::MIB;

    fn settings(resource: Resource) -> AnalyzeSettings {
        super::super::run::tests::settings(&[("2h", 7200), ("30m", 1800)], resource)
    }

    /// A clean line: `per_hour` from `base`, every 10 s for `hours`.
    fn line(base: f64, per_hour: f64, hours: f64, label: &str) -> Series {
        Series {
            labels: BTreeMap::from([("file".to_string(), label.to_string())]),
            points: (0..(hours * 360.0) as u32)
                .map(|i| {
                    let t = f64::from(i) * 10.0;
                    (1000.0 + t, base + per_hour * t / 3600.0)
                })
                .collect(),
        }
    }

    #[test]
    fn units_and_signs() {
        assert_eq!(rate(Resource::Rss, 64.0 * MIB), "+64MiB/h");
        assert_eq!(rate(Resource::Rss, -1.5 * MIB), "-1.5MiB/h");
        assert_eq!(rate(Resource::Fds, 90.0), "+90 fds/h");
        assert_eq!(rate(Resource::Threads, 0.0), "+0 threads/h");
        assert_eq!(amount(Resource::Rss, 200.0 * MIB), "200MiB");
        assert_eq!(secs(10800.0), "3h");
        assert_eq!(secs(0.25), "0.25s");
        assert_eq!(p_value(1e-9), "<0.0001");
        assert_eq!(p_value(0.5), "0.5000");
    }

    #[test]
    fn a_leak_and_a_short_series_render_with_their_reasons() {
        let st = settings(Resource::Rss);
        let a = analyze(
            &[
                line(200.0 * MIB, 128.0 * MIB, 3.0, "leak.csv"),
                line(200.0 * MIB, 0.0, 0.5, "short.csv"),
            ],
            &st,
        );
        let text = render(&a, &st);
        assert!(
            text.starts_with("soakd analyze: rss, 2 series, windows 30m, 2h\n"),
            "{text}"
        );
        assert!(
            text.contains("series 1 of 2: {file=\"leak.csv\"}"),
            "{text}"
        );
        assert!(
            text.contains(
                "  1080 points over 2h 59m 50s, every 10s, baseline 200MiB, threshold +50MiB/h"
            ),
            "{text}"
        );
        // The 2 h window's row: the exact slope of a clean line, a leak.
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with("2h "))
            .expect("2h row");
        assert!(row.contains("+128MiB/h"), "{row}");
        assert!(row.trim_end().ends_with("yes"), "{row}");
        assert!(text.contains("  verdict: leak (first called at "), "{text}");
        let row = text
            .lines()
            .filter(|l| l.trim_start().starts_with("2h "))
            .nth(1)
            .expect("second 2h row");
        let cells: Vec<&str> = row.split("  ").filter(|c| !c.is_empty()).collect();
        assert_eq!(
            cells.iter().map(|c| c.trim()).collect::<Vec<_>>(),
            [
                "2h",
                "no fit",
                "-",
                "-",
                "0",
                "-",
                "-",
                "no: it holds 29m of 2h (a fit needs half, after the warm-up)"
            ],
            "{row}"
        );
        assert!(
            text.contains(
                "  verdict: unknown: the longest window (2h) has no fit: it holds 29m of 2h (a \
                 fit needs half, after the warm-up)"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("\nverdict: leak (worst of 2 series)\n"),
            "{text}"
        );
        // One series: the longest window's slope is on the last line.
        let a = analyze(&[line(10.0, 0.0, 3.0, "fds.csv")], &settings(Resource::Fds));
        let text = render(&a, &settings(Resource::Fds));
        assert!(
            text.ends_with("\nverdict: ok (worst of 1 series), longest-window slope +0 fds/h\n"),
            "{text}"
        );
        assert!(
            text.contains("baseline 10 fds, threshold +60 fds/h"),
            "{text}"
        );
    }

    /// The case: 3 h growing 1 MiB/h under `rss_mib_per_hour = 0.5`. Surely over the
    /// rate limit, but 2.95 MiB grown between its first and last trough is under the 4 MiB floor: the cell says so, and so do
    /// the verdict line and the JSON.
    #[test]
    fn a_no_states_its_reason() {
        let mut st = super::super::run::tests::settings(&[("3h", 10800)], Resource::Rss);
        st.rules.rss_bytes_per_hour = 0.5 * MIB;
        let a = analyze(&[line(4.0 * MIB, MIB, 3.0, "rss.csv")], &st);
        let text = render(&a, &st);
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with("3h "))
            .expect("3h row");
        assert!(row.contains("+1MiB/h"), "{row}");
        assert!(
            row.trim_end()
                .ends_with("no: below growth floor: +2.95MiB < 4MiB (min_growth_bytes)"),
            "{row}"
        );
        assert!(
            text.contains(
                "  verdict: ok: +1MiB/h over the 3h window, but below growth floor: +2.95MiB < \
                 4MiB (min_growth_bytes) (limit 512KiB/h and 10%/h; floor 4MiB)"
            ),
            "{text}"
        );
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(
            json["series"][0]["windows"][0]["reason"],
            "below growth floor: +2.95MiB < 4MiB (min_growth_bytes)"
        );
    }
}
