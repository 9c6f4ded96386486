//! The storms and attempts as `/status`, the summary JSON (`proxy.storms`,
//! `proxy.amplification`, `proxy.ghost_attempts`, `proxy.retry_after`, `proxy.storm_totals`)
//! and the summary's storm table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::recovery::Outcome;
use super::state::{Counts, Occurrence};
use crate::stats::Percentiles;
use crate::units::{fmt_bytes, fmt_secs};

/// Attempts per client request.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct AmplificationReport {
    /// Over the whole run: every attempt soakd's upstream attributed to one of this run's
    /// requests, over the client requests sent.
    pub overall: Option<f64>,
    pub client_requests: u64,
    pub upstream_requests: u64,
    /// Over the requests sent during a storm (of the storm's scenarios).
    pub in_storms: Option<f64>,
    pub storm_client_requests: u64,
    pub storm_upstream_requests: u64,
    /// Over the requests sent outside every storm.
    pub fair_weather: Option<f64>,
    pub fair_client_requests: u64,
    pub fair_upstream_requests: u64,
}

/// Ghost attempts.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct GhostReport {
    pub total: u64,
    /// Ghosts whose id had left the tracking table (`scenario="expired"`).
    pub delay_unknown: u64,
    /// Time from the client's end to the ghost attempt, of those whose delay is known.
    pub delay: Percentiles,
}

/// Answers sent with `Retry-After`, judged at the next attempt.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct RetryAfterReport {
    pub honoured: u64,
    pub violations: u64,
}

/// One storm occurrence, as `proxy.storms[]`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct OccurrenceReport {
    pub name: String,
    /// From the start of load.
    pub start_secs: f64,
    pub end_secs: f64,
    /// Client requests of its scenarios sent during it.
    pub client_requests: u64,
    pub upstream_requests: u64,
    pub upstream_faults: u64,
    pub client_errors: u64,
    /// Of its requests whose upstream side met one of its faults and that finished (not
    /// cancelled): the share that still succeeded. `null` when there is none (a `refuse`
    /// storm's faults belong to no request).
    pub masked_ratio: Option<f64>,
    /// The share whose client saw an error.
    pub passed_ratio: Option<f64>,
    pub amplification: Option<f64>,
    pub ghost_attempts: u64,
    pub retry_after_honoured: u64,
    pub retry_after_violations: u64,
    /// `null` while watched, when never recovered, or without a baseline.
    pub recovery_secs: Option<f64>,
    /// `false` when it never recovered; `null` while watched or without a baseline.
    pub recovered: Option<bool>,
    /// Per watched process, just before it started.
    pub rss_before_bytes: BTreeMap<String, f64>,
    /// Per watched process, `[monitor] burst_settle` after its end (or at the next storm or
    /// the end of load, if sooner).
    pub rss_after_bytes: BTreeMap<String, f64>,
}

/// One storm over all its occurrences.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StormTotals {
    pub name: String,
    pub kind: &'static str,
    /// Occurrences that started.
    pub occurrences: u64,
    /// The oldest ones, beyond the last 64, are in these totals only.
    pub not_listed: u64,
    pub client_requests: u64,
    pub upstream_requests: u64,
    pub upstream_faults: u64,
    pub client_errors: u64,
    pub masked_ratio: Option<f64>,
    pub passed_ratio: Option<f64>,
    pub amplification: Option<f64>,
    pub ghost_attempts: u64,
    pub retry_after_honoured: u64,
    pub retry_after_violations: u64,
}

/// Everything storms and attempts add to the proxy report.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct WeatherReport {
    pub amplification: AmplificationReport,
    pub ghost_attempts: GhostReport,
    pub retry_after: RetryAfterReport,
    /// One per occurrence that started, oldest first (the last 64 of each storm).
    pub storms: Vec<OccurrenceReport>,
    pub storm_totals: Vec<StormTotals>,
}

pub fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

fn masking(c: &Counts) -> (Option<f64>, Option<f64>) {
    (ratio(c.masked, c.faulted), ratio(c.passed, c.faulted))
}

impl OccurrenceReport {
    pub fn new(name: &str, o: &Occurrence, (start, end): (f64, f64)) -> Self {
        let c = &o.counts;
        let (masked_ratio, passed_ratio) = masking(c);
        let (recovery_secs, recovered) = match o.recovery {
            Outcome::Recovered(s) => (Some(s), Some(true)),
            Outcome::Never => (None, Some(false)),
            Outcome::Pending | Outcome::NoBaseline => (None, None),
        };
        let mut rss_before_bytes = BTreeMap::new();
        let mut rss_after_bytes = BTreeMap::new();
        for r in o.rss() {
            if let Some(v) = r.before {
                rss_before_bytes.insert(r.process.clone(), v);
            }
            if let Some(v) = r.after {
                rss_after_bytes.insert(r.process, v);
            }
        }
        OccurrenceReport {
            name: name.to_string(),
            start_secs: start,
            end_secs: end,
            client_requests: c.client_requests,
            upstream_requests: c.upstream_requests,
            upstream_faults: c.upstream_faults,
            client_errors: c.client_errors,
            masked_ratio,
            passed_ratio,
            amplification: ratio(c.upstream_requests, c.client_requests),
            ghost_attempts: c.ghost_attempts,
            retry_after_honoured: c.retry_after_honoured,
            retry_after_violations: c.retry_after_violations,
            recovery_secs,
            recovered,
            rss_before_bytes,
            rss_after_bytes,
        }
    }
}

impl StormTotals {
    pub fn new(
        name: &str,
        kind: &'static str,
        occurrences: u64,
        not_listed: u64,
        c: &Counts,
    ) -> Self {
        let (masked_ratio, passed_ratio) = masking(c);
        StormTotals {
            name: name.to_string(),
            kind,
            occurrences,
            not_listed,
            client_requests: c.client_requests,
            upstream_requests: c.upstream_requests,
            upstream_faults: c.upstream_faults,
            client_errors: c.client_errors,
            masked_ratio,
            passed_ratio,
            amplification: ratio(c.upstream_requests, c.client_requests),
            ghost_attempts: c.ghost_attempts,
            retry_after_honoured: c.retry_after_honoured,
            retry_after_violations: c.retry_after_violations,
        }
    }
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "-".to_string(), f)
}

fn pct(v: Option<f64>) -> String {
    opt(v, |r| format!("{:.1}%", r * 100.0))
}

fn amp(v: Option<f64>) -> String {
    opt(v, |r| format!("{r:.2}"))
}

impl WeatherReport {
    /// The summary's lines: attempts, ghosts and Retry-After, then one table row per storm
    /// occurrence with its RSS before and after.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let a = &self.amplification;
        let g = &self.ghost_attempts;
        let _ = write!(
            out,
            "  attempts per client request: {} overall ({}/{})",
            amp(a.overall),
            a.upstream_requests,
            a.client_requests
        );
        if !self.storm_totals.is_empty() {
            let _ = write!(
                out,
                ", {} in storms ({}/{}), {} in fair weather ({}/{})",
                amp(a.in_storms),
                a.storm_upstream_requests,
                a.storm_client_requests,
                amp(a.fair_weather),
                a.fair_upstream_requests,
                a.fair_client_requests
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "  ghost attempts {} (delay unknown {}; after the client finished p50 {} max {}), \
             Retry-After honoured {} violated {}",
            g.total,
            g.delay_unknown,
            fmt_secs(g.delay.p50),
            fmt_secs(g.delay.max),
            self.retry_after.honoured,
            self.retry_after.violations
        );
        if self.storms.is_empty() {
            return out;
        }
        let _ = writeln!(
            out,
            "  storms (client requests sent during each; ampl. = upstream attempts per request):"
        );
        let _ =
            writeln!(
            out,
            "    {:<16} {:>8} {:>8} {:>8} {:>8} {:>6} {:>7} {:>7} {:>7} {:>7} {:>6} {:>11} {:>9}",
            "storm", "start", "end", "requests", "attempts", "ampl.", "faults", "errors",
            "masked", "passed", "ghosts", "RA ok/late", "recovery"
        );
        for o in &self.storms {
            let recovery = match (o.recovered, o.recovery_secs) {
                (Some(true), Some(s)) => format!("{s:.0}s"),
                (Some(false), _) => "never".to_string(),
                _ => "-".to_string(),
            };
            let _ = writeln!(
                out,
                "    {:<16} {:>8} {:>8} {:>8} {:>8} {:>6} {:>7} {:>7} {:>7} {:>7} {:>6} {:>11} {:>9}",
                o.name,
                format!("{:.1}s", o.start_secs),
                format!("{:.1}s", o.end_secs),
                o.client_requests,
                o.upstream_requests,
                amp(o.amplification),
                o.upstream_faults,
                o.client_errors,
                pct(o.masked_ratio),
                pct(o.passed_ratio),
                o.ghost_attempts,
                format!("{}/{}", o.retry_after_honoured, o.retry_after_violations),
                recovery
            );
            let rss: Vec<String> = o
                .rss_before_bytes
                .iter()
                .map(|(p, before)| match o.rss_after_bytes.get(p) {
                    Some(after) => format!(
                        "{p} {} → {} ({}{})",
                        fmt_bytes(*before),
                        fmt_bytes(*after),
                        if after >= before { "+" } else { "-" },
                        fmt_bytes((after - before).abs())
                    ),
                    None => format!("{p} {} → -", fmt_bytes(*before)),
                })
                .collect();
            if !rss.is_empty() {
                let _ = writeln!(out, "      rss {}", rss.join(", "));
            }
        }
        for t in self.storm_totals.iter().filter(|t| t.not_listed > 0) {
            let _ = writeln!(
                out,
                "    {}: {} earlier occurrences not listed; over all {}: {} requests, \
                 amplification {}, masked {}, Retry-After violations {}",
                t.name,
                t.not_listed,
                t.occurrences,
                t.client_requests,
                amp(t.amplification),
                pct(t.masked_ratio),
                t.retry_after_violations
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_occurrence_reads_as_the_issue_names_it() {
        let mut o = Occurrence {
            k: 0,
            counts: Counts {
                client_requests: 40,
                upstream_requests: 120,
                upstream_faults: 120,
                client_errors: 40,
                faulted: 40,
                passed: 40,
                retry_after_violations: 80,
                ..Counts::default()
            },
            recovery: Outcome::Recovered(0.0),
            rss_before: Some(vec![("target".into(), 10e6)]),
            rss_after: Some(vec![("target".into(), 11e6)]),
        };
        let r = OccurrenceReport::new("429s", &o, (2.0, 6.0));
        let json = serde_json::to_value(&r).unwrap();
        for key in [
            "name",
            "start_secs",
            "end_secs",
            "upstream_requests",
            "upstream_faults",
            "client_errors",
            "masked_ratio",
            "amplification",
            "ghost_attempts",
            "retry_after_honoured",
            "retry_after_violations",
            "recovery_secs",
            "recovered",
            "rss_before_bytes",
            "rss_after_bytes",
        ] {
            assert!(json.get(key).is_some(), "{key}: {json}");
        }
        assert_eq!(json["amplification"], 3.0);
        assert_eq!(json["masked_ratio"], 0.0);
        assert_eq!(json["passed_ratio"], 1.0);
        assert_eq!(json["recovered"], true);
        assert_eq!(json["rss_after_bytes"]["target"], 11e6);
        o.recovery = Outcome::Never;
        let never = serde_json::to_value(OccurrenceReport::new("429s", &o, (2.0, 6.0))).unwrap();
        assert_eq!(never["recovery_secs"], serde_json::Value::Null);
        assert_eq!(never["recovered"], false);
        let w = WeatherReport {
            storms: vec![OccurrenceReport::new("429s", &o, (2.0, 6.0))],
            storm_totals: vec![StormTotals::new("429s", "status", 70, 6, &o.counts)],
            ..WeatherReport::default()
        };
        let t = w.text();
        assert!(t.contains("429s"), "{t}");
        assert!(
            t.contains("3.00") && t.contains("0/80") && t.contains("never"),
            "{t}"
        );
        assert!(
            t.contains("rss target 9.54MiB → 10.49MiB (+976.56KiB)"),
            "{t}"
        );
        assert!(t.contains("6 earlier occurrences not listed"), "{t}");
    }
}
