//! Reading a lingering fleet: its counters from Prometheus, each shard's histograms and
//! monitor report from its admin port.
//!
//! # Counters (Prometheus)
//! Every counter is read with one instant query at `now`, joined to `soakd_run_info` on
//! `instance` and summed per shard ([`counter_query`]):
//!
//! ```text
//! sum by (shard, outcome) (
//!     max by (instance, scenario, phase, outcome) (last_over_time(soakd_requests_total[R]))
//!   * on (instance) group_left (shard)
//!     max by (instance, shard) (last_over_time(soakd_run_info{run_id="ID"}[R])))
//! ```
//!
//! `R` is this run's own span, from the earliest shard's `soakd_run_start_time_seconds` to
//! now, so series an earlier run under the same `run_id` left in Prometheus (a Job's name is
//! reused) are outside it. `last_over_time` is a shard's final value: its counters stop
//! before it lingers, and lingering is what the verdict waited for. The inner `max by`
//! collapses a target scraped by two jobs into one series.
//!
//! # Histograms and monitor report (admin port)
//! `GET http://INSTANCE/histograms` ([`crate::stats::wire`]) and `GET http://INSTANCE/status`
//! on each lingering shard: Prometheus's `instance` label is the address it scraped, the
//! shard's admin server. The histograms must name this run and shard.

use std::collections::BTreeMap;
use std::time::Duration;

use url::Url;

use super::discover::{promql_str, Seen};
use super::FleetError;
use crate::analyze::prometheus::query_instant;
use crate::stats::wire::HistogramsDoc;

/// Time for one request to a shard's admin port.
pub const SHARD_TIMEOUT: Duration = Duration::from_secs(20);

/// What one counter family is read as: its metric, and the label it is broken down by
/// besides shard and scenario (`None`: totals per scenario).
#[derive(Debug, Clone, Copy)]
pub struct CounterSpec {
    /// The metric.
    pub metric: &'static str,
    /// The breakdown label (`outcome`, `reason`, `result`).
    pub by: Option<&'static str>,
    /// Whether the family has a `scenario` label.
    pub scenario: bool,
}

/// The counters summed across shards.
pub const COUNTERS: &[CounterSpec] = &[
    spec("soakd_requests_total", Some("outcome")),
    spec("soakd_requests_dropped_total", Some("reason")),
    spec("soakd_streams_finished_total", Some("result")),
    spec("soakd_output_tokens_total", None),
    spec("soakd_stream_chunks_total", None),
    spec("soakd_response_bytes_total", None),
    spec("soakd_upstream_requests_total", None),
    spec("soakd_proxy_retries_total", None),
    spec("soakd_proxy_buffered_streams_total", None),
    spec("soakd_proxy_coalesced_chunks_total", None),
    spec("soakd_proxy_orphaned_requests_total", None),
    spec("soakd_proxy_give_ups_total", Some("fate")),
    spec("soakd_proxy_wasted_output_tokens_total", None),
    spec("soakd_proxy_error_origin_total", Some("origin")),
];

const fn spec(metric: &'static str, by: Option<&'static str>) -> CounterSpec {
    CounterSpec {
        metric,
        by,
        scenario: true,
    }
}

/// One counter family's values: `(shard, scenario, breakdown value or "")` → count.
pub type Tally = BTreeMap<(u32, String, String), u64>;

/// The query of one counter family over the last `range_secs` (module docs).
pub fn counter_query(c: &CounterSpec, run_id: &str, range_secs: u64) -> String {
    let all = crate::metrics::def(c.metric).labels.join(", ");
    let mut by = vec!["shard"];
    if c.scenario {
        by.push("scenario");
    }
    by.extend(c.by);
    format!(
        "sum by ({by}) (max by (instance, {all}) (last_over_time({m}[{r}s])) \
         * on (instance) group_left (shard) \
         max by (instance, shard) (last_over_time(soakd_run_info{{run_id={id}}}[{r}s])))",
        by = by.join(", "),
        m = c.metric,
        r = range_secs,
        id = promql_str(run_id),
    )
}

/// The range that covers the run: from the earliest shard's start to `now`, whole seconds,
/// at least 1.
pub fn run_range_secs(seen: &[Seen], now: f64) -> u64 {
    let start = seen
        .iter()
        .filter_map(|s| s.start)
        .fold(f64::INFINITY, f64::min);
    if start.is_finite() {
        (now - start).ceil().max(1.0) as u64
    } else {
        1
    }
}

/// Reads every counter family of [`COUNTERS`] at `now` over `range_secs`.
pub async fn counters(
    client: &reqwest::Client,
    base: &Url,
    run_id: &str,
    range_secs: u64,
    now: f64,
) -> Result<BTreeMap<&'static str, Tally>, FleetError> {
    let mut out = BTreeMap::new();
    for c in COUNTERS {
        let q = counter_query(c, run_id, range_secs);
        let samples = query_instant(client, base, &q, now).await?;
        let mut t = Tally::new();
        for s in samples {
            let Some(shard) = s.labels.get("shard").and_then(|v| v.parse::<u32>().ok()) else {
                continue;
            };
            let scenario = s.labels.get("scenario").cloned().unwrap_or_default();
            let key =
                c.by.and_then(|b| s.labels.get(b).cloned())
                    .unwrap_or_default();
            *t.entry((shard, scenario, key)).or_default() += s.value.round().max(0.0) as u64;
        }
        out.insert(c.metric, t);
    }
    Ok(out)
}

/// What the verdict reads from one shard's admin port.
#[derive(Debug, Clone)]
pub struct ShardDocs {
    /// `GET /histograms`.
    pub histograms: HistogramsDoc,
    /// `GET /status`, as sent (the monitor report and the shard's own view).
    pub status: serde_json::Value,
}

/// Reads `/histograms` and `/status` of shard `s`, checking they are this run's and shard's.
pub async fn shard_docs(
    client: &reqwest::Client,
    s: &Seen,
    run_id: &str,
) -> Result<ShardDocs, FleetError> {
    let fail = |reason: String| FleetError::Shard {
        shard: s.shard,
        instance: s.instance.clone(),
        reason,
    };
    let base = Url::parse(&format!("http://{}/", s.instance))
        .map_err(|e| fail(format!("instance is not host:port ({e})")))?;
    let get = |path: &'static str| {
        let url = base.join(path).expect("a relative path");
        let client = client.clone();
        async move {
            let resp = client
                .get(url)
                .timeout(SHARD_TIMEOUT)
                .send()
                .await
                .map_err(|e| format!("GET /{path}: {}", e.without_url()))?;
            if !resp.status().is_success() {
                return Err(format!("GET /{path}: HTTP {}", resp.status()));
            }
            resp.bytes()
                .await
                .map_err(|e| format!("GET /{path}: {}", e.without_url()))
        }
    };
    let body = get("histograms").await.map_err(&fail)?;
    let histograms: HistogramsDoc = serde_json::from_slice(&body)
        .map_err(|e| fail(format!("/histograms is not a histograms document: {e}")))?;
    if histograms.run_id != run_id || histograms.shard != s.shard {
        return Err(fail(format!(
            "the admin port serves run {:?} shard {}, not run {run_id:?} shard {}",
            histograms.run_id, histograms.shard, s.shard
        )));
    }
    let body = get("status").await.map_err(&fail)?;
    let status: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| fail(format!("/status is not JSON: {e}")))?;
    Ok(ShardDocs { histograms, status })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_queries_join_run_info_on_instance_over_the_run() {
        let q = counter_query(&COUNTERS[0], "soak-1", 42);
        assert_eq!(
            q,
            "sum by (shard, scenario, outcome) (max by (instance, scenario, phase, outcome) \
             (last_over_time(soakd_requests_total[42s])) * on (instance) group_left (shard) \
             max by (instance, shard) (last_over_time(soakd_run_info{run_id=\"soak-1\"}[42s])))"
        );
        let q = counter_query(&COUNTERS[3], "r", 7);
        assert!(
            q.starts_with("sum by (shard, scenario) (max by (instance, scenario) ("),
            "{q}"
        );
    }

    /// Every family read is in the catalog with the labels the query names (a rename fails
    /// here, not in a run).
    #[test]
    fn every_counter_is_a_catalog_counter() {
        for c in COUNTERS {
            let d = crate::metrics::def(c.metric);
            assert_eq!(d.kind, crate::metrics::Kind::Counter, "{}", c.metric);
            assert_eq!(d.labels.contains(&"scenario"), c.scenario, "{}", c.metric);
            if let Some(b) = c.by {
                assert!(d.labels.contains(&b), "{} has no {b}", c.metric);
            }
            assert!(counter_query(c, "r", 5).contains(c.metric));
        }
    }

    #[test]
    fn the_range_starts_at_the_earliest_shard() {
        let seen = |start| Seen {
            shard: 0,
            instance: "a:1".into(),
            state: None,
            start,
        };
        assert_eq!(
            run_range_secs(&[seen(Some(1000.5)), seen(Some(990.0)), seen(None)], 1100.2),
            111
        );
        assert_eq!(run_range_secs(&[seen(None)], 1100.0), 1);
    }
}
