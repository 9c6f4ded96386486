//! What the two-sided soak shows: percentiles of the proxy's added time behind `/status` and
//! the summary, the "proxy" block of the summary text, and the progress-line fragment.
//!
//! The Prometheus histograms carry the distributions for dashboards and rules; for the run's
//! own report the tracker also keeps small HDR histograms (1 µs to 1 h, two significant digits,
//! about 28 KiB each, seven in all), so percentiles are exact to 1 % whatever the run's length.
//! Each scenario keeps its own per stage of the added time too ([`AddedStats`], allocated at
//! their first value). Stages with no sample print no row.

use std::collections::BTreeMap;
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
    Response,
    CancelPropagation,
    /// How long a not-propagated answer ran on after its client gave up.
    RunOn,
    ReportedOverhead,
}

const STAGES: usize = 7;

/// The stages of `soakd_proxy_added_seconds` (its `stage` label values), in pipeline order:
/// the one list the handles, the summary rows and anything judged per stage are built from.
pub const ADDED_STAGES: [&str; 4] = ["request", "first_token", "chunk", "response"];

/// Whether only streamed answers have this stage of [`ADDED_STAGES`] (a non-stream answer has
/// no first token and no chunks of its own).
pub fn streams_only(stage: &str) -> bool {
    matches!(stage, "first_token" | "chunk")
}

/// One scenario's HDR histograms of the added time, one per stage of [`ADDED_STAGES`], each
/// allocated at its first value.
#[derive(Default)]
pub struct AddedStats([Mutex<Option<Histogram<u64>>>; 4]);

impl AddedStats {
    /// Records one value of `stage` (one of the added stages: [`Stage::Request`] ..
    /// [`Stage::Response`], whose `as usize` is their place in [`ADDED_STAGES`]).
    pub fn record(&self, stage: Stage, d: Duration) {
        let Some(slot) = self.0.get(stage as usize) else {
            return;
        };
        let micros = u64::try_from(d.as_micros()).unwrap_or(MAX_MICROS);
        let mut h = slot.lock().unwrap_or_else(|p| p.into_inner());
        h.get_or_insert_with(|| {
            Histogram::new_with_bounds(1, MAX_MICROS, 2).expect("static histogram bounds")
        })
        .saturating_record(micros.clamp(1, MAX_MICROS));
    }

    /// Every stage's percentiles.
    pub fn added(&self) -> Added {
        let [request, first_token, chunk, response] = std::array::from_fn(|i| {
            let h = self.0[i].lock().unwrap_or_else(|p| p.into_inner());
            h.as_ref().map(Percentiles::of_micros).unwrap_or_default()
        });
        Added {
            request,
            first_token,
            chunk,
            response,
        }
    }
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

/// The summary's line for a run whose upstream received none of soakd's requests.
pub const NEVER_REACHED: &str = "the proxy never reached the upstream: check its provider address";

/// Give-ups by fate (`proxy.give_ups` in `/status` and the summary JSON, and per scenario).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GiveUps {
    pub propagated: u64,
    pub upstream_finished: u64,
    pub not_propagated: u64,
    pub orphaned: u64,
    pub unknown: u64,
    /// Output tokens the upstream generated after the client gave up (not propagated and
    /// orphaned answers).
    pub wasted_output_tokens: u64,
    /// Of those, the orphans' (shown apart in the summary text).
    #[serde(skip)]
    pub wasted_by_orphans: u64,
    /// Why fates are unknown, with a count each (only reasons that occurred).
    pub unknown_reasons: BTreeMap<&'static str, u64>,
}

impl GiveUps {
    pub fn total(&self) -> u64 {
        self.propagated
            + self.upstream_finished
            + self.not_propagated
            + self.orphaned
            + self.unknown
    }

    /// Give-ups whose cancel did not reach the upstream in time, of those that had something
    /// to cancel and a known fate: (not propagated + orphaned) / (those + propagated).
    pub fn not_propagated_ratio(&self) -> Option<f64> {
        let bad = self.not_propagated + self.orphaned;
        let den = bad + self.propagated;
        (den > 0).then(|| bad as f64 / den as f64)
    }

    pub fn add(&mut self, o: &GiveUps) {
        self.propagated += o.propagated;
        self.upstream_finished += o.upstream_finished;
        self.not_propagated += o.not_propagated;
        self.orphaned += o.orphaned;
        self.unknown += o.unknown;
        self.wasted_output_tokens += o.wasted_output_tokens;
        self.wasted_by_orphans += o.wasted_by_orphans;
        for (k, v) in &o.unknown_reasons {
            *self.unknown_reasons.entry(k).or_default() += v;
        }
    }
}

/// Client-visible errors by origin (`proxy.errors` in `/status` and the summary JSON).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ErrorOrigins {
    /// The proxy passed an upstream failure through.
    pub upstream: u64,
    /// The upstream answered 2xx, or was never reached.
    pub proxy: u64,
    /// Of `proxy`: the upstream never received the request.
    pub never_reached: u64,
}

impl ErrorOrigins {
    pub fn add(&mut self, o: &ErrorOrigins) {
        self.upstream += o.upstream;
        self.proxy += o.proxy;
        self.never_reached += o.never_reached;
    }

    pub fn total(&self) -> u64 {
        self.upstream + self.proxy
    }
}

/// Time the proxy added, per stage.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Added {
    pub request: Percentiles,
    pub first_token: Percentiles,
    pub chunk: Percentiles,
    /// Upstream's last byte sent → client's last byte received (answers read whole).
    pub response: Percentiles,
}

impl Added {
    /// `(stage, percentiles)` in the order of [`ADDED_STAGES`].
    pub fn stages(&self) -> [(&'static str, &Percentiles); 4] {
        let [request, first_token, chunk, response] = ADDED_STAGES;
        [
            (request, &self.request),
            (first_token, &self.first_token),
            (chunk, &self.chunk),
            (response, &self.response),
        ]
    }
}

/// A count that the run's settings may make impossible to see: a number, or in the JSON the
/// string `not measurable (chunk_delay 5ms < 10ms)` in its place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Measure {
    /// Counted.
    Count(u64),
    /// `not measurable (why)`.
    NotMeasurable(String),
}

impl Default for Measure {
    fn default() -> Self {
        Measure::Count(0)
    }
}

impl Measure {
    /// The count, `None` when not measurable.
    pub fn count(&self) -> Option<u64> {
        match self {
            Measure::Count(n) => Some(*n),
            Measure::NotMeasurable(_) => None,
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
    /// Streams the proxy held back, or why that cannot be seen.
    pub buffered_streams: Measure,
    /// Chunks that arrived bunched, or why that cannot be seen.
    pub coalesced_chunks: Measure,
    pub orphans_now: i64,
    pub orphans_total: u64,
    pub give_ups: GiveUps,
    pub errors: ErrorOrigins,
    /// Time the proxy added to this scenario's requests, per stage (no values for
    /// `untagged`, which is never joined).
    pub added: Added,
}

/// The two-sided soak in `/status` and the summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProxyReport {
    /// Where the upstream listens.
    pub upstream: String,
    /// Requests soakd sent with an id.
    pub sent: u64,
    /// Requests tracked for a join right now.
    pub tracked: usize,
    pub added: Added,
    /// Give-ups whose fate is `propagated`: the give-up → the upstream seeing the disconnect.
    pub cancel_propagation: Percentiles,
    /// Give-ups whose fate is `not_propagated`: how long the upstream ran on.
    pub run_on: Percentiles,
    /// The proxy's own overhead claim, when `overhead_header` is set and sent.
    pub reported_overhead: Percentiles,
    /// Every give-up (cancel, timeout, abort) by its fate, over the scenarios.
    pub give_ups: GiveUps,
    /// Client-visible errors by origin, over the scenarios.
    pub errors: ErrorOrigins,
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

    /// The total of a measure over the scenarios, or its `not measurable (…)` text.
    fn measured(&self, f: impl Fn(&ProxyScenario) -> &Measure) -> Result<u64, String> {
        let mut total = 0;
        for s in &self.scenarios {
            match f(s) {
                Measure::Count(n) => total += n,
                Measure::NotMeasurable(why) => return Err(why.clone()),
            }
        }
        Ok(total)
    }

    fn untagged(&self) -> u64 {
        self.scenarios
            .iter()
            .find(|s| s.name == UNTAGGED)
            .map_or(0, |s| s.upstream_requests)
    }

    /// The progress-line fragment, e.g. `proxy +0.4ms req +1.2ms ttft +0.3ms chunk (p50)
    /// buffered 0/118 retries 0 orphans open 0, total 0`.
    pub fn progress_fragment(&self) -> String {
        let joined = self.total(|s| s.joined);
        let orphans: i64 = self.scenarios.iter().map(|s| s.orphans_now).sum();
        let buffered = match self.measured(|s| &s.buffered_streams) {
            Ok(n) => format!("{n}/{joined}"),
            Err(_) => "not measurable".into(),
        };
        let mut s = format!(
            "proxy +{} req +{} ttft +{} chunk (p50) buffered {buffered} retries {} orphans open {orphans}, total {}",
            fmt_secs(self.added.request.p50),
            fmt_secs(self.added.first_token.p50),
            fmt_secs(self.added.chunk.p50),
            self.total(|s| s.retries),
            self.total(|s| s.orphans_total),
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
        let buffered = match self.measured(|s| &s.buffered_streams) {
            Ok(n) => {
                let pct = if joined > 0 {
                    100.0 * n as f64 / joined as f64
                } else {
                    0.0
                };
                format!("{n} ({pct:.1}%)")
            }
            Err(why) => why,
        };
        let coalesced = match self.measured(|s| &s.coalesced_chunks) {
            Ok(n) => n.to_string(),
            Err(why) => why,
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
        let upstream_requests = self.total(|s| s.upstream_requests);
        let _ = writeln!(
            out,
            "  proxy (two-sided, upstream {}): upstream requests {upstream_requests} (untagged {}), \
             retries {}, joined {joined}, buffered {buffered}, coalesced chunks {coalesced}, \
             orphans {} (open {})",
            self.upstream,
            self.untagged(),
            self.total(|s| s.retries),
            self.total(|s| s.orphans_total),
            self.scenarios.iter().map(|s| s.orphans_now).sum::<i64>(),
        );
        let _ = writeln!(out, "    {}", give_ups_line(&self.give_ups));
        if self.errors.total() > 0 {
            let _ = writeln!(out, "    {}", errors_line(&self.errors));
        }
        // Untagged requests are not this run's: a proxy that reached the upstream with none of
        // soakd's requests never reached it.
        if upstream_requests == self.untagged() && self.sent > 0 {
            let _ = writeln!(out, "    {NEVER_REACHED}");
        }
        let added = self
            .added
            .stages()
            .map(|(stage, p)| (format!("added: {}", stage.replace('_', " ")), p));
        let others = [
            ("cancel propagation", &self.cancel_propagation),
            ("give-up run-on", &self.run_on),
            ("reported overhead", &self.reported_overhead),
        ]
        .map(|(name, p)| (name.to_string(), p));
        for (name, p) in added.into_iter().chain(others) {
            if p.count > 0 {
                out.push_str(&row(&name, p));
            }
        }
        out.push_str(&self.by_scenario());
        out.push_str(&self.weather.text());
        out
    }

    /// The added time of each scenario and stage that has one, e.g.
    /// `      chat-stream      first token n=300  p50 3.7ms p90 6.3ms p99 10.4ms max 15.3ms`.
    fn by_scenario(&self) -> String {
        let rows: Vec<(&str, &str, &Percentiles)> = self
            .scenarios
            .iter()
            .flat_map(|sc| {
                sc.added
                    .stages()
                    .into_iter()
                    .filter(|(_, p)| p.count > 0)
                    .map(|(stage, p)| (sc.name.as_str(), stage, p))
                    .collect::<Vec<_>>()
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
                stage.replace('_', " "),
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

/// `give-ups 64: propagated 0, not propagated 64 (tokens generated after give-up: 1,280),
/// orphaned 0`, with `upstream finished` and `unknown` (and its reasons) when there are any.
pub fn give_ups_line(g: &GiveUps) -> String {
    let mut s = format!("give-ups {}: propagated {}", g.total(), g.propagated);
    if g.upstream_finished > 0 {
        let _ = write!(s, ", upstream finished {}", g.upstream_finished);
    }
    let _ = write!(s, ", not propagated {}", g.not_propagated);
    let after = g.wasted_output_tokens - g.wasted_by_orphans;
    if g.not_propagated > 0 || after > 0 {
        let _ = write!(s, " (tokens generated after give-up: {})", thousands(after));
    }
    let _ = write!(s, ", orphaned {}", g.orphaned);
    if g.wasted_by_orphans > 0 {
        let _ = write!(
            s,
            " (tokens generated after give-up: {})",
            thousands(g.wasted_by_orphans)
        );
    }
    if g.unknown > 0 {
        let why: Vec<String> = g
            .unknown_reasons
            .iter()
            .map(|(k, v)| format!("{} {v}", k.replace('_', " ")))
            .collect();
        let _ = write!(s, ", unknown {} ({})", g.unknown, why.join(", "));
    }
    s
}

/// `errors by origin: upstream 12, proxy 3 (never reached the upstream 3)`.
pub fn errors_line(e: &ErrorOrigins) -> String {
    let mut s = format!(
        "errors by origin: upstream {}, proxy {}",
        e.upstream, e.proxy
    );
    if e.never_reached > 0 {
        let _ = write!(s, " (never reached the upstream {})", e.never_reached);
    }
    s
}

/// `1280` → `1,280`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
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
                    buffered_streams: Measure::Count(2),
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
        // Stages with no sample print no row.
        for empty in [
            "added: request",
            "added: first token",
            "added: response",
            "cancel",
        ] {
            assert!(!t.contains(empty), "{empty}: {t}");
        }
        let f = r.progress_fragment();
        assert!(
            f.contains("buffered 2/8") && f.contains("untagged 3"),
            "{f}"
        );
    }

    /// Each scenario's own percentiles, per stage of the one list, and the summary rows of
    /// the stages it has.
    #[test]
    fn per_scenario_added_time_follows_the_stage_list() {
        for (i, stage) in [
            Stage::Request,
            Stage::FirstToken,
            Stage::Chunk,
            Stage::Response,
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(
                stage as usize, i,
                "{:?} is ADDED_STAGES[{i}]",
                ADDED_STAGES[i]
            );
        }
        assert!(streams_only("chunk") && streams_only("first_token"));
        assert!(!streams_only("request") && !streams_only("response"));
        let a = AddedStats::default();
        a.record(Stage::Request, Duration::from_micros(1500));
        a.record(Stage::Response, Duration::from_millis(3));
        a.record(Stage::CancelPropagation, Duration::from_millis(9)); // not an added stage
        let added = a.added();
        assert_eq!(added.request.count, 1);
        assert_eq!(added.response.count, 1);
        assert_eq!((added.first_token.count, added.chunk.count), (0, 0));
        let r = ProxyReport {
            upstream: "127.0.0.1:9600".into(),
            scenarios: vec![ProxyScenario {
                name: "chat".into(),
                joined: 1,
                added,
                ..ProxyScenario::default()
            }],
            ..ProxyReport::default()
        };
        // The storms' lines (attempts, ghosts, Retry-After) follow the added time.
        let t = r.text();
        assert!(
            t.contains(
                "    added by scenario:\n      chat      request     n=1         p50     1.5ms p90     \
                 1.5ms p99     1.5ms max     1.5ms\n      chat      response    n=1         p50     \
                 3.0ms p90     3.0ms p99     3.0ms max     3.0ms\n"
            ),
            "{t}"
        );
        let j = serde_json::to_value(&r.scenarios[0]).unwrap();
        assert_eq!(j["added"]["response"]["count"], 1, "{j}");
    }

    #[test]
    fn a_measure_the_settings_hide_reads_not_measurable_not_a_number() {
        let why = super::super::measure::unmeasurable(Duration::from_millis(5), 32).unwrap();
        assert_eq!(why, "chunk_delay 5ms < 10ms");
        assert_eq!(
            super::super::measure::unmeasurable(Duration::from_millis(10), 1).as_deref(),
            Some("chunks 1 < 2")
        );
        assert_eq!(
            super::super::measure::unmeasurable(Duration::from_millis(10), 2),
            None
        );
        let not = Measure::NotMeasurable(format!("not measurable ({why})"));
        let r = ProxyReport {
            upstream: "127.0.0.1:9600".into(),
            scenarios: vec![ProxyScenario {
                name: "chat".into(),
                upstream_requests: 10,
                joined: 10,
                buffered_streams: not.clone(),
                coalesced_chunks: not.clone(),
                ..ProxyScenario::default()
            }],
            ..ProxyReport::default()
        };
        let t = r.text();
        assert!(
            t.contains(
                "buffered not measurable (chunk_delay 5ms < 10ms), coalesced chunks not \
                 measurable (chunk_delay 5ms < 10ms),"
            ),
            "{t}"
        );
        assert!(r.progress_fragment().contains("buffered not measurable"));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["scenarios"][0]["buffered_streams"],
            "not measurable (chunk_delay 5ms < 10ms)"
        );
        assert_eq!(
            json["scenarios"][0]["coalesced_chunks"],
            "not measurable (chunk_delay 5ms < 10ms)"
        );
        // Measurable: numbers, as before.
        let json = serde_json::to_value(ProxyScenario::default()).unwrap();
        assert_eq!(json["buffered_streams"], 0);
    }

    #[test]
    fn the_give_ups_line_reads_as_the_issue_wrote_it() {
        let g = GiveUps {
            not_propagated: 64,
            wasted_output_tokens: 1280,
            ..GiveUps::default()
        };
        assert_eq!(
            give_ups_line(&g),
            "give-ups 64: propagated 0, not propagated 64 (tokens generated after give-up: \
             1,280), orphaned 0"
        );
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
        let e = ErrorOrigins {
            upstream: 12,
            proxy: 3,
            never_reached: 3,
        };
        assert_eq!(
            errors_line(&e),
            "errors by origin: upstream 12, proxy 3 (never reached the upstream 3)"
        );
        // None of soakd's requests received (a stray untagged one does not count): one line
        // says so; one tagged request received, and it does not.
        let mut r = ProxyReport {
            sent: 5,
            errors: e,
            scenarios: vec![
                ProxyScenario {
                    name: "chat".into(),
                    ..ProxyScenario::default()
                },
                ProxyScenario {
                    name: UNTAGGED.into(),
                    upstream_requests: 1,
                    ..ProxyScenario::default()
                },
            ],
            ..ProxyReport::default()
        };
        assert_eq!(r.text().matches(NEVER_REACHED).count(), 1);
        r.scenarios[0].upstream_requests = 1;
        assert_eq!(r.text().matches(NEVER_REACHED).count(), 0);
    }
}
