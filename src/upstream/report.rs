//! What the two-sided soak shows: percentiles of the proxy's added time behind `/status` and
//! the summary, the "proxy" block of the summary text, and the progress-line fragment.
//!
//! The Prometheus histograms carry the distributions for dashboards and rules; for the run's
//! own report the tracker also keeps small HDR histograms (1 µs to 1 h, two significant digits,
//! about 28 KiB each, five in all), so percentiles are exact to 1 % whatever the run's length.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::stats::Percentiles;
use crate::units::fmt_secs;

/// The `scenario` label of upstream requests that carry no soakd id soakd tracks.
pub const UNTAGGED: &str = "untagged";

const MAX_MICROS: u64 = 3_600_000_000;

/// The distributions the report shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Request,
    FirstToken,
    Chunk,
    CancelPropagation,
    ReportedOverhead,
}

const STAGES: usize = 5;

impl Stage {
    /// Every stage, in the order of the HDR histograms.
    pub const ALL: [Stage; STAGES] = [
        Stage::Request,
        Stage::FirstToken,
        Stage::Chunk,
        Stage::CancelPropagation,
        Stage::ReportedOverhead,
    ];

    /// For a stage of `soakd_proxy_added_seconds`: its `stage` label and the name of its
    /// threshold (`[thresholds] p99_proxy_added_<stage>`). The one list of added stages:
    /// a stage added here gets its threshold.
    pub fn added(self) -> Option<(&'static str, &'static str)> {
        match self {
            Stage::Request => Some(("request", "p99_proxy_added_request")),
            Stage::FirstToken => Some(("first_token", "p99_proxy_added_first_token")),
            Stage::Chunk => Some(("chunk", "p99_proxy_added_chunk")),
            Stage::CancelPropagation | Stage::ReportedOverhead => None,
        }
    }
}

/// The stages of `soakd_proxy_added_seconds`: (stage, label, threshold name).
pub fn added_stages() -> impl Iterator<Item = (Stage, &'static str, &'static str)> {
    Stage::ALL
        .into_iter()
        .filter_map(|s| s.added().map(|(label, threshold)| (s, label, threshold)))
}

/// HDR histograms of the two-sided measures.
pub struct ProxyStats {
    h: [Mutex<Histogram<u64>>; STAGES],
}

impl Default for ProxyStats {
    fn default() -> Self {
        ProxyStats {
            h: std::array::from_fn(|_| {
                Mutex::new(
                    Histogram::new_with_bounds(1, MAX_MICROS, 2).expect("static histogram bounds"),
                )
            }),
        }
    }
}

impl ProxyStats {
    /// Records one value (clamped to 1 µs..1 h).
    pub fn record(&self, stage: Stage, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(MAX_MICROS);
        let mut h = self.h[stage as usize]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        h.saturating_record(micros.clamp(1, MAX_MICROS));
    }

    /// Percentiles of one stage, in seconds.
    pub fn percentiles(&self, stage: Stage) -> Percentiles {
        let h = self.h[stage as usize]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Percentiles::of_micros(&h)
    }
}

/// Time the proxy added, per stage.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Added {
    pub request: Percentiles,
    pub first_token: Percentiles,
    pub chunk: Percentiles,
}

impl Added {
    /// The percentiles of an added stage.
    pub fn get(&self, stage: Stage) -> Option<&Percentiles> {
        match stage {
            Stage::Request => Some(&self.request),
            Stage::FirstToken => Some(&self.first_token),
            Stage::Chunk => Some(&self.chunk),
            Stage::CancelPropagation | Stage::ReportedOverhead => None,
        }
    }
}

/// Counts of one scenario (or of `untagged`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProxyScenario {
    pub name: String,
    pub upstream_requests: u64,
    pub retries: u64,
    /// Requests whose two sides were joined.
    pub joined: u64,
    pub buffered_streams: u64,
    pub coalesced_chunks: u64,
    pub orphans_now: i64,
    pub orphans_total: u64,
}

/// The two-sided soak in `/status` and the summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProxyReport {
    /// Where the upstream listens.
    pub upstream: String,
    /// Requests tracked for a join right now.
    pub tracked: usize,
    pub added: Added,
    pub cancel_propagation: Percentiles,
    /// The proxy's own overhead claim, when `overhead_header` is set and sent.
    pub reported_overhead: Percentiles,
    /// Per scenario, then `untagged`.
    pub scenarios: Vec<ProxyScenario>,
    /// Attempts, ghosts, `Retry-After` and storms ([`super::storm`]).
    #[serde(flatten)]
    pub weather: super::storm::report::WeatherReport,
}

impl ProxyReport {
    fn total(&self, f: impl Fn(&ProxyScenario) -> u64) -> u64 {
        self.scenarios.iter().map(f).sum()
    }

    fn untagged(&self) -> u64 {
        self.scenarios
            .iter()
            .find(|s| s.name == UNTAGGED)
            .map_or(0, |s| s.upstream_requests)
    }

    /// The progress-line fragment, e.g.
    /// `proxy +0.4ms req +1.2ms ttft +0.3ms chunk (p50) buffered 0/118 retries 0 orphans 0`.
    pub fn progress_fragment(&self) -> String {
        let joined = self.total(|s| s.joined);
        let orphans: i64 = self.scenarios.iter().map(|s| s.orphans_now).sum();
        let mut s = format!(
            "proxy +{} req +{} ttft +{} chunk (p50) buffered {}/{joined} retries {} orphans {orphans}",
            fmt_secs(self.added.request.p50),
            fmt_secs(self.added.first_token.p50),
            fmt_secs(self.added.chunk.p50),
            self.total(|s| s.buffered_streams),
            self.total(|s| s.retries),
        );
        let untagged = self.untagged();
        if untagged > 0 {
            let _ = write!(s, " untagged {untagged}");
        }
        s
    }

    /// The summary's "proxy" block.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let joined = self.total(|s| s.joined);
        let buffered = self.total(|s| s.buffered_streams);
        let pct = if joined > 0 {
            100.0 * buffered as f64 / joined as f64
        } else {
            0.0
        };
        let row = |name: &str, p: &Percentiles| {
            format!(
                "    {name:<18} n={:<9} p50 {:>9} p90 {:>9} p99 {:>9} max {:>9}\n",
                p.count,
                fmt_secs(p.p50),
                fmt_secs(p.p90),
                fmt_secs(p.p99),
                fmt_secs(p.max)
            )
        };
        let _ = writeln!(
            out,
            "  proxy (two-sided, upstream {}): upstream requests {} (untagged {}), retries {}, \
             joined {joined}, buffered {buffered} ({pct:.1}%), coalesced chunks {}, orphans {} \
             (now {})",
            self.upstream,
            self.total(|s| s.upstream_requests),
            self.untagged(),
            self.total(|s| s.retries),
            self.total(|s| s.coalesced_chunks),
            self.total(|s| s.orphans_total),
            self.scenarios.iter().map(|s| s.orphans_now).sum::<i64>(),
        );
        out.push_str(&row("added: request", &self.added.request));
        out.push_str(&row("added: first token", &self.added.first_token));
        out.push_str(&row("added: chunk", &self.added.chunk));
        out.push_str(&row("cancel propagation", &self.cancel_propagation));
        if self.reported_overhead.count > 0 {
            out.push_str(&row("reported overhead", &self.reported_overhead));
        }
        out.push_str(&self.weather.text());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_hold_to_two_digits_and_the_text_names_everything() {
        let s = ProxyStats::default();
        for us in 1..=1000u64 {
            s.record(Stage::Chunk, Duration::from_micros(us * 10));
        }
        let p = s.percentiles(Stage::Chunk);
        assert_eq!(p.count, 1000);
        assert!((p.p50 - 0.005).abs() / 0.005 < 0.01, "{p:?}");
        assert!((p.p99 - 0.0099).abs() / 0.0099 < 0.01, "{p:?}");
        assert_eq!(s.percentiles(Stage::Request), Percentiles::default());
        let r = ProxyReport {
            upstream: "127.0.0.1:9600".into(),
            added: Added {
                chunk: p,
                ..Added::default()
            },
            scenarios: vec![
                ProxyScenario {
                    name: "chat".into(),
                    upstream_requests: 10,
                    joined: 8,
                    buffered_streams: 2,
                    ..ProxyScenario::default()
                },
                ProxyScenario {
                    name: "untagged".into(),
                    upstream_requests: 3,
                    ..ProxyScenario::default()
                },
            ],
            ..ProxyReport::default()
        };
        let t = r.text();
        assert!(t.contains("upstream requests 13 (untagged 3)"), "{t}");
        assert!(t.contains("buffered 2 (25.0%)"), "{t}");
        assert!(t.contains("added: chunk"), "{t}");
        let f = r.progress_fragment();
        assert!(
            f.contains("buffered 2/8") && f.contains("untagged 3"),
            "{f}"
        );
    }
}
