//! The fleet summary: one row per shard and a fleet row (text), and the same as JSON in the
//! run summary's layout ([`crate::report::Summary`], `schema_version`
//! [`SUMMARY_SCHEMA_VERSION`]) so `soakd compare` reads it, plus `shards[]` (one object per
//! shard, so `shards` is an array here, where a shard's own summary has the count) and
//! `percentiles` (how they were merged, and their error).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::judge::{processes, Breakdown, Fleet};
use crate::report::{verdict_text, Latencies, SUMMARY_SCHEMA_VERSION};
use crate::stats::wire::RELATIVE_ERROR;
use crate::stats::Percentiles;
use crate::units::{fmt_elapsed, fmt_secs, trim_num};
use crate::verdict::ThresholdResult;

/// How the percentiles were obtained.
#[derive(Debug, Clone, Serialize)]
pub struct MergeNote {
    /// `hdr_merge`: the shards' HDR histograms added bucket by bucket.
    pub method: &'static str,
    /// The largest relative error of any percentile against the exact value over all the
    /// fleet's samples together.
    pub relative_error: f64,
}

/// One scenario over the fleet.
#[derive(Debug, Clone, Serialize)]
pub struct FleetScenario {
    pub name: String,
    pub requests: Breakdown,
    pub dropped: Breakdown,
    pub streams: Breakdown,
    pub streams_active: i64,
    pub chunks: u64,
    pub output_tokens: u64,
    pub response_bytes: u64,
}

/// One shard's row.
#[derive(Debug, Clone, Serialize)]
pub struct ShardRow {
    pub shard: u32,
    /// Prometheus's `instance`: the shard's admin address.
    pub instance: String,
    pub start_time_seconds: Option<f64>,
    pub sending_seconds: Option<f64>,
    pub requests_finished: u64,
    pub errors: u64,
    /// `errors / requests_finished`; absent without requests.
    pub error_ratio: Option<f64>,
    pub outcomes: Breakdown,
    pub dropped: Breakdown,
    pub streams: Breakdown,
    pub output_tokens: u64,
    /// Its own percentiles, from its histograms.
    pub latency: Latencies,
    /// Processes it watched besides itself.
    pub watched: Vec<String>,
    /// Its own process's monitor report (`process="soakd"`).
    pub self_process: Option<Value>,
}

/// The fleet summary (module docs).
#[derive(Debug, Clone, Serialize)]
pub struct FleetSummary {
    pub schema_version: u32,
    pub sending_seconds: f64,
    pub target_rate_avg: f64,
    pub achieved_rate_avg: f64,
    pub verdict: &'static str,
    pub exit_code: i32,
    pub errors: u64,
    /// Requests the shards stopped at the end of their grace periods (outcome `aborted`).
    pub aborted: u64,
    pub suspect: bool,
    pub suspect_reasons: Vec<String>,
    pub run_id: String,
    /// `null`: the fleet is no single shard.
    pub shard: Option<u32>,
    /// One row per shard.
    pub shards: Vec<ShardRow>,
    pub target: String,
    pub phase: &'static str,
    /// `linger`: every shard lingered when the fleet was judged.
    pub state: &'static str,
    /// A shard's own state spans; none for the fleet (they are in each shard's summary).
    pub phases: Vec<Value>,
    pub elapsed_seconds: f64,
    pub target_rate: f64,
    pub achieved_rate: f64,
    pub planned_rate: f64,
    pub in_flight: i64,
    pub streams_active: i64,
    pub requests_sent: u64,
    pub requests_finished: u64,
    pub outcomes: Breakdown,
    pub dropped: Breakdown,
    pub streams: Breakdown,
    pub output_tokens: u64,
    pub latency: Latencies,
    pub scenarios: Vec<FleetScenario>,
    /// Each watched process's report from the shard that judged it (growth per request
    /// rescaled to the fleet), `processes` in name order.
    pub monitor: Option<Value>,
    pub thresholds: Vec<ThresholdResult>,
    /// Always `null`: creep compares a run's own first and last windows, which each shard
    /// judges in its own verdict (its summary's `creep`).
    pub creep: Option<Value>,
    /// Two-sided soak counters summed over the shards (only those that are not zero).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub proxy_counters: BTreeMap<String, u64>,
    /// The Prometheus the counters came from.
    pub prometheus: String,
    pub percentiles: MergeNote,
}

fn latencies(h: &[hdrhistogram::Histogram<u64>]) -> Latencies {
    Latencies {
        duration: Percentiles::of_micros(&h[0]),
        ttft: Percentiles::of_micros(&h[1]),
        chunk_gap: Percentiles::of_micros(&h[2]),
        schedule_lag: Percentiles::of_micros(&h[3]),
    }
}

impl FleetSummary {
    /// Builds the summary of `fleet` judged as `results` (already carrying the contributors).
    pub fn new(
        fleet: &Fleet,
        run_id: &str,
        prometheus: &str,
        now: f64,
        results: Vec<ThresholdResult>,
    ) -> FleetSummary {
        let failed = results.iter().any(|r| !r.passed);
        let (verdict, exit_code) = if failed {
            ("fail", i32::from(crate::exit::FAIL))
        } else {
            ("pass", i32::from(crate::exit::PASS))
        };
        let suspect_reasons = fleet.suspicions();
        let shards: Vec<ShardRow> = fleet
            .shards
            .iter()
            .map(|s| {
                let i = Some(s.index());
                let requests = fleet.requests(i);
                let errors = fleet.errors(i);
                ShardRow {
                    shard: s.index(),
                    instance: s.seen.instance.clone(),
                    start_time_seconds: s.seen.start,
                    sending_seconds: s.sending_seconds,
                    requests_finished: requests,
                    errors,
                    error_ratio: (requests > 0).then(|| errors as f64 / requests as f64),
                    outcomes: fleet.breakdown("soakd_requests_total", i),
                    dropped: fleet.breakdown("soakd_requests_dropped_total", i),
                    streams: fleet.breakdown("soakd_streams_finished_total", i),
                    output_tokens: fleet.total("soakd_output_tokens_total", i),
                    latency: latencies(&s.hist),
                    watched: processes(&s.status)
                        .iter()
                        .filter_map(|p| p["name"].as_str())
                        .filter(|n| *n != crate::monitor::settings::SELF_NAME)
                        .map(str::to_owned)
                        .collect(),
                    self_process: processes(&s.status)
                        .iter()
                        .find(|p| p["name"] == crate::monitor::settings::SELF_NAME)
                        .cloned(),
                }
            })
            .collect();
        let sending_seconds = fleet
            .shards
            .iter()
            .filter_map(|s| s.sending_seconds)
            .fold(0.0, f64::max);
        let requests_finished = fleet.requests(None);
        let dropped = fleet.breakdown("soakd_requests_dropped_total", None);
        let scheduled = requests_finished + dropped.values().sum::<u64>();
        let per_sec = |n: u64| {
            if sending_seconds > 0.0 {
                n as f64 / sending_seconds
            } else {
                0.0
            }
        };
        let merged: Vec<_> = (0..4).map(|i| fleet.merged(i)).collect();
        let reqs = fleet.by_scenario("soakd_requests_total");
        let drops = fleet.by_scenario("soakd_requests_dropped_total");
        let streams = fleet.by_scenario("soakd_streams_finished_total");
        let scalar = |m: &str| -> BTreeMap<String, u64> {
            fleet
                .by_scenario(m)
                .into_iter()
                .map(|(k, b)| (k, b.values().sum()))
                .collect()
        };
        let (chunks, tokens, bytes) = (
            scalar("soakd_stream_chunks_total"),
            scalar("soakd_output_tokens_total"),
            scalar("soakd_response_bytes_total"),
        );
        let scenarios = reqs
            .keys()
            .map(|name| FleetScenario {
                name: name.clone(),
                requests: reqs.get(name).cloned().unwrap_or_default(),
                dropped: drops.get(name).cloned().unwrap_or_default(),
                streams: streams.get(name).cloned().unwrap_or_default(),
                streams_active: 0,
                chunks: chunks.get(name).copied().unwrap_or(0),
                output_tokens: tokens.get(name).copied().unwrap_or(0),
                response_bytes: bytes.get(name).copied().unwrap_or(0),
            })
            .collect();
        let watched: Vec<Value> = fleet
            .watchers()
            .keys()
            .filter_map(|n| fleet.process_report(n).map(|(_, p)| p))
            .collect();
        let first = fleet.shards.first().map(|s| &s.status);
        let monitor = first.filter(|_| !watched.is_empty()).map(|st| {
            serde_json::json!({
                "started_unix_secs": fleet.shards.iter()
                    .filter_map(|s| s.status["monitor"]["started_unix_secs"].as_f64())
                    .fold(f64::INFINITY, f64::min),
                "sample_interval_secs": st["monitor"]["sample_interval_secs"],
                "windows": st["monitor"]["windows"],
                "processes": watched,
            })
        });
        let proxy_counters = super::collect::COUNTERS
            .iter()
            .map(|c| c.metric)
            .filter(|m| m.starts_with("soakd_proxy_") || m.starts_with("soakd_upstream_"))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|m| (m.to_owned(), fleet.total(m, None)))
            .filter(|(_, n)| *n > 0)
            .collect();
        FleetSummary {
            schema_version: SUMMARY_SCHEMA_VERSION,
            sending_seconds,
            target_rate_avg: per_sec(scheduled),
            achieved_rate_avg: per_sec(requests_finished),
            verdict,
            exit_code,
            errors: fleet.errors(None),
            aborted: fleet.aborted(None),
            suspect: !suspect_reasons.is_empty(),
            suspect_reasons,
            run_id: run_id.to_owned(),
            shard: None,
            target: first
                .and_then(|s| s["target"].as_str())
                .unwrap_or_default()
                .to_owned(),
            phase: "done",
            state: "linger",
            phases: Vec::new(),
            elapsed_seconds: fleet
                .shards
                .iter()
                .filter_map(|s| s.seen.start.map(|t| now - t))
                .fold(0.0, f64::max),
            target_rate: 0.0,
            achieved_rate: 0.0,
            planned_rate: 0.0,
            in_flight: 0,
            streams_active: 0,
            requests_sent: requests_finished,
            requests_finished,
            outcomes: fleet.breakdown("soakd_requests_total", None),
            dropped,
            streams: fleet.breakdown("soakd_streams_finished_total", None),
            output_tokens: fleet.total("soakd_output_tokens_total", None),
            latency: latencies(&merged),
            scenarios,
            monitor,
            thresholds: results,
            creep: None,
            proxy_counters,
            prometheus: prometheus.to_owned(),
            percentiles: MergeNote {
                method: "hdr_merge",
                relative_error: RELATIVE_ERROR,
            },
            shards,
        }
    }

    /// The text printed by `soakd verdict`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "soakd verdict — run {} ({} shards) against {}, from Prometheus {}",
            self.run_id,
            self.shards.len(),
            self.target,
            self.prometheus
        );
        let _ = writeln!(
            out,
            "  {:<6} {:<22} {:>9} {:>7} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9}",
            "shard",
            "instance",
            "requests",
            "errors",
            "error %",
            "dropped",
            "tokens",
            "ttft p50",
            "ttft p99",
            "lat p99"
        );
        let row = |out: &mut String, name: &str, inst: &str, r: RowNums, l: &Latencies| {
            let _ = writeln!(
                out,
                "  {:<6} {:<22} {:>9} {:>7} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9}",
                name,
                inst,
                r.requests,
                r.errors,
                if r.requests > 0 {
                    format!(
                        "{}%",
                        trim_num(r.errors as f64 * 100.0 / r.requests as f64, 2)
                    )
                } else {
                    "-".into()
                },
                r.dropped,
                r.tokens,
                fmt_secs(l.ttft.p50),
                fmt_secs(l.ttft.p99),
                fmt_secs(l.duration.p99),
            );
        };
        for s in &self.shards {
            let nums = RowNums {
                requests: s.requests_finished,
                errors: s.errors,
                dropped: s.dropped.values().sum(),
                tokens: s.output_tokens,
            };
            row(
                &mut out,
                &s.shard.to_string(),
                &s.instance,
                nums,
                &s.latency,
            );
        }
        let nums = RowNums {
            requests: self.requests_finished,
            errors: self.errors,
            dropped: self.dropped.values().sum(),
            tokens: self.output_tokens,
        };
        row(&mut out, "fleet", "", nums, &self.latency);
        let _ = writeln!(
            out,
            "  sent {} requests in {} — target {:.2} rps, achieved {:.2} rps",
            self.requests_sent,
            fmt_elapsed(self.sending_seconds),
            self.target_rate_avg,
            self.achieved_rate_avg
        );
        let join = |m: &Breakdown| {
            if m.is_empty() {
                "none".to_owned()
            } else {
                m.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        };
        let _ = writeln!(out, "  outcomes: {}", join(&self.outcomes));
        let _ = writeln!(out, "  dropped:  {}", join(&self.dropped));
        let _ = writeln!(out, "  streams:  {}", join(&self.streams));
        if !self.proxy_counters.is_empty() {
            let _ = writeln!(out, "  proxy:    {}", join(&self.proxy_counters));
        }
        for (name, p) in [
            ("latency", &self.latency.duration),
            ("ttft", &self.latency.ttft),
            ("chunk gap", &self.latency.chunk_gap),
            ("schedule lag", &self.latency.schedule_lag),
        ] {
            let _ = writeln!(
                out,
                "  {name:<13} n={:<9} p50 {:>9} p90 {:>9} p99 {:>9} p99.9 {:>9} max {:>9}",
                p.count,
                fmt_secs(p.p50),
                fmt_secs(p.p90),
                fmt_secs(p.p99),
                fmt_secs(p.p999),
                fmt_secs(p.max)
            );
        }
        let _ = writeln!(
            out,
            "  percentiles: the {} shards' HDR histograms added bucket by bucket, so each is \
             the percentile over all their samples together, within {}% (3 significant digits)",
            self.shards.len(),
            trim_num(self.percentiles.relative_error * 100.0, 3)
        );
        for p in self
            .monitor
            .as_ref()
            .and_then(|m| m["processes"].as_array())
            .into_iter()
            .flatten()
        {
            let name = p["name"].as_str().unwrap_or_default();
            let by: Vec<String> = self
                .shards
                .iter()
                .filter(|s| s.watched.iter().any(|w| w == name))
                .map(|s| s.shard.to_string())
                .collect();
            let v = |r: &str| p["verdict"][r].as_str().unwrap_or("-").to_owned();
            let _ = writeln!(
                out,
                "  process {name}: leak verdict rss {}  fds {}  threads {}  (judged once, from shard {}; watched by {})",
                v("rss"),
                v("fds"),
                v("threads"),
                by.first().map_or("-", String::as_str),
                by.join(", ")
            );
        }
        verdict_text(
            &mut out,
            &self.thresholds,
            &self.suspect_reasons,
            self.verdict,
            self.exit_code,
        );
        out
    }
}

#[derive(Clone, Copy)]
struct RowNums {
    requests: u64,
    errors: u64,
    dropped: u64,
    tokens: u64,
}
