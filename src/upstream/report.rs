//! What the two-sided soak shows: percentiles of the proxy's added time behind `/status` and
//! the summary, the "proxy" block of the summary text, and the progress-line fragment.
//!
//! The Prometheus histograms carry the distributions for dashboards and rules; for the run's
//! own report the tracker also keeps small HDR histograms (1 µs to 1 h, two significant digits,
//! about 28 KiB each, allocated at their first value): one per stage of the added time over
//! all scenarios, one per stage and scenario, and one each for cancel propagation and the
//! reported overhead. Percentiles are exact to 1 % whatever the run's length.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::ser::SerializeMap;
use serde::Serialize;

use super::stage::AddedStage;
use crate::stats::Percentiles;
use crate::units::fmt_secs;

/// The `scenario` label of upstream requests that carry no soakd id soakd tracks.
pub const UNTAGGED: &str = "untagged";

const MAX_MICROS: u64 = 3_600_000_000;

/// The distributions the report shows, besides the added time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// One stage of the time the proxy adds.
    Added(AddedStage),
    CancelPropagation,
    ReportedOverhead,
}

/// One HDR histogram, allocated at its first value.
#[derive(Default)]
pub struct Hdr(Mutex<Option<Histogram<u64>>>);

impl Hdr {
    /// Records one value (clamped to 1 µs..1 h).
    pub fn record(&self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(MAX_MICROS);
        let mut h = self.0.lock().unwrap_or_else(|p| p.into_inner());
        h.get_or_insert_with(|| {
            Histogram::new_with_bounds(1, MAX_MICROS, 2).expect("static histogram bounds")
        })
        .saturating_record(micros.clamp(1, MAX_MICROS));
    }

    /// Percentiles, in seconds (all zero without a value).
    pub fn percentiles(&self) -> Percentiles {
        let h = self.0.lock().unwrap_or_else(|p| p.into_inner());
        h.as_ref().map(Percentiles::of_micros).unwrap_or_default()
    }
}

/// One [`Hdr`] per stage of [`AddedStage::ALL`].
pub struct AddedStats(Vec<Hdr>);

impl Default for AddedStats {
    fn default() -> Self {
        AddedStats(AddedStage::ALL.iter().map(|_| Hdr::default()).collect())
    }
}

impl AddedStats {
    /// Records one value of `stage`.
    pub fn record(&self, stage: AddedStage, d: Duration) {
        self.0[stage.index()].record(d);
    }

    /// Every stage's percentiles.
    pub fn added(&self) -> Added {
        Added(
            AddedStage::ALL
                .iter()
                .map(|s| (*s, self.0[s.index()].percentiles()))
                .collect(),
        )
    }
}

/// HDR histograms of the two-sided measures over all scenarios.
#[derive(Default)]
pub struct ProxyStats {
    added: AddedStats,
    cancel_propagation: Hdr,
    reported_overhead: Hdr,
}

impl ProxyStats {
    /// Records one value (clamped to 1 µs..1 h).
    pub fn record(&self, stage: Stage, d: Duration) {
        match stage {
            Stage::Added(s) => self.added.record(s, d),
            Stage::CancelPropagation => self.cancel_propagation.record(d),
            Stage::ReportedOverhead => self.reported_overhead.record(d),
        }
    }

    /// Percentiles of one distribution, in seconds.
    pub fn percentiles(&self, stage: Stage) -> Percentiles {
        match stage {
            Stage::Added(s) => self.added.0[s.index()].percentiles(),
            Stage::CancelPropagation => self.cancel_propagation.percentiles(),
            Stage::ReportedOverhead => self.reported_overhead.percentiles(),
        }
    }

    /// Every stage of the added time.
    pub fn added(&self) -> Added {
        self.added.added()
    }
}

/// Time the proxy added, per stage of [`AddedStage::ALL`], in that order. Serialised as an
/// object keyed by stage: `{"request": {…}, "first_token": {…}, "chunk": {…}}`.
#[derive(Debug, Clone, Default)]
pub struct Added(pub Vec<(AddedStage, Percentiles)>);

impl Added {
    /// The percentiles of `stage` (all zero when it has none).
    pub fn get(&self, stage: AddedStage) -> Percentiles {
        self.0
            .iter()
            .find(|(s, _)| *s == stage)
            .map(|(_, p)| *p)
            .unwrap_or_default()
    }
}

impl Serialize for Added {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (stage, p) in &self.0 {
            m.serialize_entry(stage.as_str(), p)?;
        }
        m.end()
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
    /// Time the proxy added to this scenario's requests, per stage (no values for
    /// `untagged`, which is never joined).
    pub added: Added,
}

/// The two-sided soak in `/status` and the summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProxyReport {
    /// Where the upstream listens.
    pub upstream: String,
    /// Requests tracked for a join right now.
    pub tracked: usize,
    /// Time the proxy added, per stage, over all scenarios.
    pub added: Added,
    pub cancel_propagation: Percentiles,
    /// The proxy's own overhead claim, when `overhead_header` is set and sent.
    pub reported_overhead: Percentiles,
    /// Per scenario, then `untagged`.
    pub scenarios: Vec<ProxyScenario>,
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
            fmt_secs(self.added.get(AddedStage::Request).p50),
            fmt_secs(self.added.get(AddedStage::FirstToken).p50),
            fmt_secs(self.added.get(AddedStage::Chunk).p50),
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
        for (stage, p) in &self.added.0 {
            out.push_str(&row(&format!("added: {}", stage.text()), p));
        }
        out.push_str(&row("cancel propagation", &self.cancel_propagation));
        if self.reported_overhead.count > 0 {
            out.push_str(&row("reported overhead", &self.reported_overhead));
        }
        out.push_str(&self.by_scenario());
        out
    }

    /// The added time of each scenario and stage that has one, e.g.
    /// `      chat-stream      first token   n=300  p50 3.7ms p90 6.3ms p99 10.4ms max 15.3ms`.
    fn by_scenario(&self) -> String {
        let rows: Vec<(&str, AddedStage, &Percentiles)> = self
            .scenarios
            .iter()
            .flat_map(|sc| {
                sc.added
                    .0
                    .iter()
                    .filter(|(_, p)| p.count > 0)
                    .map(|(st, p)| (sc.name.as_str(), *st, p))
            })
            .collect();
        if rows.is_empty() {
            return String::new();
        }
        let name_w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(8);
        let mut out = String::from("    added by scenario:\n");
        for (name, stage, p) in rows {
            let _ = writeln!(
                out,
                "      {name:<name_w$}  {:<11} n={:<9} p50 {:>9} p90 {:>9} p99 {:>9} max {:>9}",
                stage.text(),
                p.count,
                fmt_secs(p.p50),
                fmt_secs(p.p90),
                fmt_secs(p.p99),
                fmt_secs(p.max)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_hold_to_two_digits_and_the_text_names_everything() {
        let chunk = Stage::Added(AddedStage::Chunk);
        let s = ProxyStats::default();
        for us in 1..=1000u64 {
            s.record(chunk, Duration::from_micros(us * 10));
        }
        let p = s.percentiles(chunk);
        assert_eq!(p.count, 1000);
        assert!((p.p50 - 0.005).abs() / 0.005 < 0.01, "{p:?}");
        assert!((p.p99 - 0.0099).abs() / 0.0099 < 0.01, "{p:?}");
        assert_eq!(
            s.percentiles(Stage::Added(AddedStage::Request)),
            Percentiles::default()
        );
        let added = s.added();
        assert_eq!(
            added.0.len(),
            AddedStage::ALL.len(),
            "every stage, in order"
        );
        assert_eq!(added.get(AddedStage::Chunk), p);
        let per_scenario = AddedStats::default();
        per_scenario.record(AddedStage::Request, Duration::from_micros(1500));
        let r = ProxyReport {
            upstream: "127.0.0.1:9600".into(),
            added,
            scenarios: vec![
                ProxyScenario {
                    name: "chat".into(),
                    upstream_requests: 10,
                    joined: 8,
                    buffered_streams: 2,
                    added: per_scenario.added(),
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
        assert!(
            t.contains(
                "    added by scenario:\n      chat      request     n=1         p50     1.5ms"
            ),
            "{t}"
        );
        assert!(
            !t.contains("chat      chunk"),
            "stages without a value are left out: {t}"
        );
        // JSON: an object keyed by stage, in the stage list's order.
        let j = serde_json::to_string(&r.added).unwrap();
        assert!(
            j.starts_with("{\"request\":{\"count\":0,")
                && j.contains(",\"chunk\":{\"count\":1000,"),
            "{j}"
        );
        let f = r.progress_fragment();
        assert!(
            f.contains("buffered 2/8") && f.contains("untagged 3"),
            "{f}"
        );
    }
}
