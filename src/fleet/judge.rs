//! The merged run and its verdict: fleet totals, exact percentiles, one leak verdict per
//! watched process, the thresholds of `soakd run` judged over all of it, and which shards
//! contributed most to a failure.
//!
//! # Rules
//! - **Counters** are the sums over shards of each shard's final value (Prometheus,
//!   [`super::collect`]).
//! - **Percentiles** come from the sum of the shards' HDR histograms
//!   ([`crate::stats::wire::merge`]): exact, within the histograms' 3 significant digits.
//! - **Leak verdicts** are taken once per watched process, from the monitor report of the
//!   lowest-indexed shard that watched it (every shard of the Kubernetes overlay watches the
//!   same proxy; they are one process, judged once). The others are listed as "also watched
//!   by". soakd's own process is a different one in every shard: each shard's own leak
//!   verdict marks the fleet suspect, naming the shard; it never fails it, as in `soakd run`.
//! - **Growth per request** (and per open stream) of a watched process is the watching
//!   shard's, times its share of the fleet's requests: the shard divided the process's growth
//!   by its own request rate, 1/N of the traffic that process served. Every shard runs the
//!   same plan scaled by 1/N, so its share over a window is its share over the run.
//! - The thresholds are `[thresholds]` of `--config`, evaluated by
//!   [`crate::verdict::Thresholds::evaluate`] as at the end of `soakd run` (`final`).

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::Value;

use super::collect::{ShardDocs, Tally};
use super::discover::Seen;
use crate::client::{Outcome, StreamResult};
use crate::engine::DropReason;
use crate::stats::wire::{merge, SERIES_NAMES};
use crate::stats::Percentiles;
use crate::verdict::{LeakInput, LeakState, ProxyInputs, ThresholdResult, VerdictInputs};

/// The name of soakd's own process in every monitor report.
const SELF_NAME: &str = crate::monitor::settings::SELF_NAME;

/// One shard of the fleet, read.
#[derive(Debug, Clone)]
pub struct Shard {
    /// Where Prometheus found it.
    pub seen: Seen,
    /// Its histograms (`duration`, `ttft`, `chunk_gap`, `schedule_lag`, in that order).
    pub hist: Vec<Histogram<u64>>,
    /// Its `/status`.
    pub status: Value,
    /// Seconds it was sending load: its `load` state's span in `/status` `phases`.
    pub sending_seconds: Option<f64>,
}

impl Shard {
    /// Decodes the histograms of `docs`; `Err` names the series that cannot be read.
    pub fn new(seen: Seen, docs: ShardDocs) -> Result<Shard, crate::stats::wire::WireError> {
        let hist = SERIES_NAMES
            .iter()
            .map(|(name, _)| docs.histograms.histogram(name))
            .collect::<Result<Vec<_>, _>>()?;
        let sending_seconds = docs.status["phases"].as_array().and_then(|ps| {
            ps.iter()
                .filter(|p| p["state"] == "load")
                .map(|p| p["seconds"].as_f64())
                .sum::<Option<f64>>()
        });
        Ok(Shard {
            seen,
            hist,
            status: docs.status,
            sending_seconds,
        })
    }

    /// The index.
    pub fn index(&self) -> u32 {
        self.seen.shard
    }
}

/// The series of [`Shard::hist`] by position.
pub const DURATION: usize = 0;
/// Time to first token.
pub const TTFT: usize = 1;

/// A whole fleet: its shards (index order) and its counters.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// Lingering shards, in index order.
    pub shards: Vec<Shard>,
    /// Counter families by metric ([`super::collect::COUNTERS`]).
    pub counters: BTreeMap<&'static str, Tally>,
}

/// A breakdown (`outcome` → count) of one counter family.
pub type Breakdown = BTreeMap<String, u64>;

impl Fleet {
    fn tally(&self, metric: &str) -> impl Iterator<Item = (&(u32, String, String), &u64)> {
        self.counters.get(metric).into_iter().flatten()
    }

    /// A family's breakdown for `shard` (`None`: the whole fleet), summed over scenarios.
    pub fn breakdown(&self, metric: &str, shard: Option<u32>) -> Breakdown {
        let mut out = Breakdown::new();
        for ((s, _, k), v) in self.tally(metric) {
            if shard.is_none_or(|x| x == *s) && *v > 0 {
                *out.entry(k.clone()).or_default() += v;
            }
        }
        out
    }

    /// A family's total for `shard` (`None`: the fleet).
    pub fn total(&self, metric: &str, shard: Option<u32>) -> u64 {
        self.breakdown(metric, shard).values().sum()
    }

    /// Per scenario: `metric`'s breakdown over the fleet.
    pub fn by_scenario(&self, metric: &str) -> BTreeMap<String, Breakdown> {
        let mut out: BTreeMap<String, Breakdown> = BTreeMap::new();
        for ((_, sc, k), v) in self.tally(metric) {
            let e = out.entry(sc.clone()).or_default();
            if *v > 0 {
                *e.entry(k.clone()).or_default() += v;
            }
        }
        out
    }

    /// Finished requests of `shard` (or the fleet).
    pub fn requests(&self, shard: Option<u32>) -> u64 {
        self.total("soakd_requests_total", shard)
    }

    /// Requests whose outcome is neither ok nor cancelled.
    pub fn errors(&self, shard: Option<u32>) -> u64 {
        self.breakdown("soakd_requests_total", shard)
            .iter()
            .filter(|(o, _)| {
                o.as_str() != Outcome::Ok.as_str() && o.as_str() != Outcome::Cancelled.as_str()
            })
            .map(|(_, n)| n)
            .sum()
    }

    /// Drops that mean saturation (every reason but `shutdown`): what `max_dropped` judges.
    pub fn dropped_saturated(&self, shard: Option<u32>) -> u64 {
        self.breakdown("soakd_requests_dropped_total", shard)
            .iter()
            .filter(|(r, _)| r.as_str() != DropReason::Shutdown.as_str())
            .map(|(_, n)| n)
            .sum()
    }

    /// Truncated streams.
    pub fn truncated(&self, shard: Option<u32>) -> u64 {
        self.breakdown("soakd_streams_finished_total", shard)
            .get(StreamResult::Truncated.as_str())
            .copied()
            .unwrap_or(0)
    }

    /// The fleet's histogram of series `i` ([`DURATION`], [`TTFT`], …).
    pub fn merged(&self, i: usize) -> Histogram<u64> {
        merge(self.shards.iter().map(|s| &s.hist[i]))
    }

    /// For each watched process (soakd's own left out), the shards whose monitor reports it,
    /// lowest first.
    pub fn watchers(&self) -> BTreeMap<String, Vec<u32>> {
        let mut out: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for s in &self.shards {
            for p in processes(&s.status) {
                if let Some(name) = p["name"].as_str().filter(|n| *n != SELF_NAME) {
                    out.entry(name.to_owned()).or_default().push(s.index());
                }
            }
        }
        out
    }

    fn shard(&self, i: u32) -> Option<&Shard> {
        self.shards.iter().find(|s| s.index() == i)
    }

    /// The monitor report of `process` from the shard that judges it, with its growth per
    /// request rescaled to the fleet's requests (module rules).
    pub fn process_report(&self, process: &str) -> Option<(u32, Value)> {
        let watcher = *self.watchers().get(process)?.first()?;
        let s = self.shard(watcher)?;
        let mut p = processes(&s.status)
            .iter()
            .find(|p| p["name"] == process)?
            .clone();
        let fleet = self.requests(None);
        if fleet > 0 {
            let share = self.requests(Some(watcher)) as f64 / fleet as f64;
            rescale(&mut p, share);
        }
        Some((watcher, p))
    }

    /// What the thresholds are judged on, over the whole fleet.
    pub fn verdict_inputs(&self) -> VerdictInputs {
        let p99 = |h: &Histogram<u64>| {
            (!h.is_empty()).then(|| Duration::from_secs_f64(Percentiles::of_micros(h).p99))
        };
        let mut leaks = Vec::new();
        let mut rss_growth_per_hour = BTreeMap::new();
        for name in self.watchers().keys() {
            if let Some((_, p)) = self.process_report(name) {
                leaks.extend(leak_inputs(&p));
                rss_growth_per_hour.insert(name.clone(), longest_fit(&p, "rss").map(|f| f.0));
            }
        }
        VerdictInputs {
            requests: self.requests(None),
            errors: self.errors(None),
            streams: self.total("soakd_streams_finished_total", None),
            streams_truncated: self.truncated(None),
            dropped: self.dropped_saturated(None),
            p99_ttft: p99(&self.merged(TTFT)),
            p99_duration: p99(&self.merged(DURATION)),
            rss_growth_per_hour,
            leaks,
            proxy: self.two_sided().then(|| {
                let g = self.breakdown("soakd_proxy_give_ups_total", None);
                let n = |f: &str| g.get(f).copied().unwrap_or(0);
                let bad = n("not_propagated") + n("orphaned");
                ProxyInputs {
                    orphans: n("orphaned"),
                    not_propagated_ratio: (bad + n("propagated") > 0)
                        .then(|| bad as f64 / (bad + n("propagated")) as f64),
                    wasted_output_tokens: self
                        .total("soakd_proxy_wasted_output_tokens_total", None),
                }
            }),
        }
    }

    /// Whether the shards ran the two-sided soak (`[upstream]`: `proxy` in their `/status`).
    pub fn two_sided(&self) -> bool {
        self.shards.iter().any(|s| s.status["proxy"].is_object())
    }

    /// Give-ups of `shard` whose fate is one of `fates`.
    fn give_ups(&self, shard: u32, fates: &[&str]) -> u64 {
        self.breakdown("soakd_proxy_give_ups_total", Some(shard))
            .iter()
            .filter(|(f, _)| fates.contains(&f.as_str()))
            .map(|(_, n)| n)
            .sum()
    }

    /// Why the fleet is suspect: each shard's own soakd leak, named by shard.
    pub fn suspicions(&self) -> Vec<String> {
        self.shards
            .iter()
            .flat_map(|s| {
                let own: Vec<LeakInput> = processes(&s.status)
                    .iter()
                    .filter(|p| p["name"] == SELF_NAME)
                    .flat_map(leak_inputs)
                    .collect();
                crate::verdict::suspicions(&own)
                    .into_iter()
                    .map(move |why| format!("shard {}: {why}", s.index()))
            })
            .collect()
    }

    /// For a failed threshold, the shards that contributed most, as a sentence; `None` for
    /// a passing one.
    /// `rss_process` is the process `rss_growth` judges.
    pub fn contributors(&self, r: &ThresholdResult, rss_process: &str) -> Option<String> {
        if r.passed {
            return None;
        }
        let ranked = |what: &str, per: &dyn Fn(u32) -> (u64, u64)| -> Option<String> {
            let mut rows: Vec<(u32, u64, u64)> = self
                .shards
                .iter()
                .map(|s| {
                    let (n, of) = per(s.index());
                    (s.index(), n, of)
                })
                .filter(|(_, n, _)| *n > 0)
                .collect();
            let total: u64 = rows.iter().map(|r| r.1).sum();
            if total == 0 {
                return None;
            }
            rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let parts: Vec<String> = rows
                .iter()
                .take(3)
                .map(|(i, n, of)| {
                    let own = if *of > 0 {
                        format!(", {}% of its own", pct(*n, *of))
                    } else {
                        String::new()
                    };
                    format!("shard {i} {n} ({}% of the fleet's{own})", pct(*n, total))
                })
                .collect();
            Some(format!("{what}: {}", parts.join("; ")))
        };
        let over = |i: usize, limit: Option<f64>| {
            move |shard: u32| {
                let Some(h) = self.shard(shard).map(|s| &s.hist[i]) else {
                    return (0, 0);
                };
                let lim = (limit.unwrap_or(0.0) * 1e6) as u64;
                (h.len() - h.count_between(0, lim), h.len())
            }
        };
        match r.name.as_str() {
            "error_ratio" => ranked("errors by shard", &|s| {
                (self.errors(Some(s)), self.requests(Some(s)))
            }),
            "truncated_ratio" => ranked("truncated streams by shard", &|s| {
                (
                    self.truncated(Some(s)),
                    self.total("soakd_streams_finished_total", Some(s)),
                )
            }),
            "dropped" => ranked("drops by shard", &|s| (self.dropped_saturated(Some(s)), 0)),
            "max_orphans" => ranked("orphaned upstream calls by shard", &|s| {
                (self.give_ups(s, &["orphaned"]), 0)
            }),
            "max_not_propagated_ratio" => ranked("give-ups not propagated by shard", &|s| {
                let bad = self.give_ups(s, &["not_propagated", "orphaned"]);
                (bad, bad + self.give_ups(s, &["propagated"]))
            }),
            "max_wasted_output_tokens" => ranked("wasted output tokens by shard", &|s| {
                (
                    self.total("soakd_proxy_wasted_output_tokens_total", Some(s)),
                    0,
                )
            }),
            "p99_ttft" => ranked("samples over the limit by shard", &over(TTFT, r.limit)),
            "p99_duration" => ranked("samples over the limit by shard", &over(DURATION, r.limit)),
            name => {
                let process = match name.strip_prefix("leak:") {
                    Some(rest) => rest.rsplit_once(':')?.0.to_owned(),
                    None if name == "rss_growth" => rss_process.to_owned(),
                    None => return None,
                };
                let w = self.watchers().get(&process)?.clone();
                let all: Vec<String> = w.iter().map(u32::to_string).collect();
                Some(format!(
                    "judged once, from shard {} (shards that watched {process}: {})",
                    w[0],
                    all.join(", ")
                ))
            }
        }
    }
}

fn pct(n: u64, of: u64) -> String {
    crate::units::trim_num(n as f64 * 100.0 / of.max(1) as f64, 1)
}

/// `status.monitor.processes`, or nothing.
pub fn processes(status: &Value) -> &[Value] {
    status["monitor"]["processes"]
        .as_array()
        .map_or(&[], Vec::as_slice)
}

/// The slope per hour, R² and window label of the longest window with a fit of `resource`.
fn longest_fit(p: &Value, resource: &str) -> Option<(f64, Option<f64>, String)> {
    p["windows"].as_array()?.iter().rev().find_map(|w| {
        let f = &w[resource];
        Some((
            f["slope_per_hour"].as_f64()?,
            f["r2"].as_f64(),
            w["window"].as_str()?.to_owned(),
        ))
    })
}

/// The leak inputs of one process report (its three resources).
pub fn leak_inputs(p: &Value) -> Vec<LeakInput> {
    let name = p["name"].as_str().unwrap_or_default();
    ["rss", "fds", "threads"]
        .into_iter()
        .map(|r| {
            let fit = longest_fit(p, r);
            LeakInput {
                process: name.to_owned(),
                resource: r,
                state: match p["verdict"][r].as_str() {
                    Some("leak") => LeakState::Leak,
                    Some("ok") => LeakState::Ok,
                    _ => LeakState::Unknown,
                },
                slope_per_hour: fit.as_ref().map(|f| f.0),
                r2: fit.as_ref().and_then(|f| f.1),
                window: fit.map(|f| f.2),
                fail_on_leak: p["fail_on_leak"].as_bool().unwrap_or(true),
                is_self: name == SELF_NAME,
                reason: p["reason"][r].as_str().unwrap_or_default().to_owned(),
                limit_per_hour: p["limit_per_hour"][r].as_f64(),
            }
        })
        .collect()
}

/// Multiplies the per-request and per-open-stream quantities of a process report by
/// `share` (the watching shard's share of the fleet's requests) and divides its rates by it.
fn rescale(p: &mut Value, share: f64) {
    fn scale(v: &mut Value, key: &str, by: f64) {
        if let Some(x) = v.get(key).and_then(Value::as_f64) {
            v[key] = serde_json::json!(x * by);
        }
    }
    let Some(windows) = p.get_mut("windows").and_then(Value::as_array_mut) else {
        return;
    };
    for w in windows {
        for k in ["rss_bytes_per_request", "rss_bytes_per_sec_per_open_stream"] {
            scale(w, k, share);
        }
        if share > 0.0 {
            for k in ["request_rate_per_sec", "avg_open_streams"] {
                scale(w, k, 1.0 / share);
            }
        }
        let a = &mut w["rss_bytes_per_request_by_scenario"];
        if a.is_object() {
            scale(a, "growth_per_request", share);
            if let Some(sc) = a.get_mut("scenarios").and_then(Value::as_array_mut) {
                for s in sc {
                    scale(s, "bytes_per_request", share);
                    scale(s, "std_error", share);
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "judge_tests.rs"]
mod tests;
