//! Every metric soakd exports, defined once.
//!
//! [`CATALOG`] is the single list of metric names, types, labels and help texts. The registry
//! in [`Metrics`] is built from it, and tests compare it with `/metrics`, the Grafana dashboards
//! and the Prometheus rules, so a name changes in one place or the tests fail.
//!
//! Each metric is written once, in the `catalog!` list below: the macro generates [`CATALOG`],
//! the [`Metrics`] struct with one field per family, and its registration.
//!
//! Label values come from closed enums defined with `label_enum!` by the room that owns the
//! set (`client::Outcome`, `client::StreamResult`, `plan::Phase`, `engine::DropReason`,
//! `monitor::Resource`, `phases::RunState`) or from names in the config (`scenario`, `process`, `window`); never
//! from URLs or error text. Each room resolves its label handles once (the client's
//! `ScenarioMetrics`, the monitor's `ProcessMetrics`), so the request path never looks up a
//! label set. This module imports nothing from the rooms.

use prometheus::core::{AtomicF64, GenericCounter, GenericCounterVec};
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Float counter (CPU seconds).
pub type Counter = GenericCounter<AtomicF64>;
/// Float counter family.
pub type CounterVec = GenericCounterVec<AtomicF64>;

/// Kind of a metric in [`CATALOG`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric of the contract.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub name: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

/// A metric family type the catalog can build: its kind, and how to make it.
pub trait Family: Sized + Clone + prometheus::core::Collector + 'static {
    /// The kind reported in [`CATALOG`].
    const KIND: Kind;
    /// Builds the family; `buckets` only for histograms.
    fn make(def: &MetricDef, buckets: Option<Vec<f64>>) -> Result<Self, prometheus::Error>;
}

macro_rules! family {
    ($ty:ty, $kind:ident, vec, $ctor:expr) => {
        impl Family for $ty {
            const KIND: Kind = Kind::$kind;
            fn make(d: &MetricDef, _: Option<Vec<f64>>) -> Result<Self, prometheus::Error> {
                $ctor(Opts::new(d.name, d.help), d.labels)
            }
        }
    };
    ($ty:ty, $kind:ident, one, $ctor:expr) => {
        impl Family for $ty {
            const KIND: Kind = Kind::$kind;
            fn make(d: &MetricDef, _: Option<Vec<f64>>) -> Result<Self, prometheus::Error> {
                $ctor(Opts::new(d.name, d.help))
            }
        }
    };
}

family!(IntCounterVec, Counter, vec, IntCounterVec::new);
family!(CounterVec, Counter, vec, CounterVec::new);
family!(IntGaugeVec, Gauge, vec, IntGaugeVec::new);
family!(GaugeVec, Gauge, vec, GaugeVec::new);
family!(IntGauge, Gauge, one, IntGauge::with_opts);
family!(Gauge, Gauge, one, Gauge::with_opts);

impl Family for HistogramVec {
    const KIND: Kind = Kind::Histogram;
    fn make(d: &MetricDef, buckets: Option<Vec<f64>>) -> Result<Self, prometheus::Error> {
        let o = HistogramOpts::new(d.name, d.help).buckets(buckets.unwrap_or_default());
        HistogramVec::new(o, d.labels)
    }
}

impl Family for Histogram {
    const KIND: Kind = Kind::Histogram;
    fn make(d: &MetricDef, buckets: Option<Vec<f64>>) -> Result<Self, prometheus::Error> {
        Histogram::with_opts(
            HistogramOpts::new(d.name, d.help).buckets(buckets.unwrap_or_default()),
        )
    }
}

/// The catalog: each line is one metric of the contract, once — its field in [`Metrics`], its
/// family type (which gives its kind), optional histogram buckets, name, labels and help.
/// The macro writes [`CATALOG`], the [`Metrics`] struct and its registration from it.
macro_rules! catalog {
    ($( $field:ident : $ty:ident $(($buckets:expr))? = $name:literal, [$($label:literal),*], $help:literal; )*) => {
        /// The single list of soakd's metrics.
        pub const CATALOG: &[MetricDef] = &[
            $( MetricDef { name: $name, kind: <$ty as Family>::KIND, labels: &[$($label),*], help: $help }, )*
        ];

        /// The project registry and every metric family of [`CATALOG`].
        pub struct Metrics {
            registry: Registry,
            $( #[doc = $help] pub $field: $ty, )*
        }

        impl Metrics {
            fn register_all(registry: Registry) -> Result<Self, prometheus::Error> {
                let mut defs = CATALOG.iter();
                $(
                    let d = defs.next().expect("one definition per field");
                    let buckets: Option<Vec<f64>> = None $(.or(Some($buckets)))?;
                    let $field = <$ty as Family>::make(d, buckets)?;
                    registry.register(Box::new($field.clone()))?;
                )*
                Ok(Metrics { registry, $($field,)* })
            }
        }
    };
}

catalog! {
    // Traffic
    requests_total: IntCounterVec = "soakd_requests_total", ["scenario", "phase", "outcome"],
        "Finished requests by scenario, load phase and classified outcome.";
    requests_dropped_total: IntCounterVec = "soakd_requests_dropped_total", ["scenario", "reason"],
        "Requests that were scheduled but never sent.";
    request_duration_seconds: HistogramVec(latency_buckets()) = "soakd_request_duration_seconds", ["scenario", "result"],
        "End-to-end request duration, timed from the intended send time.";
    time_to_first_token_seconds: HistogramVec(latency_buckets()) = "soakd_time_to_first_token_seconds", ["scenario"],
        "Time from the intended send time to the first non-empty content delta.";
    stream_chunk_gap_seconds: HistogramVec(chunk_gap_buckets()) = "soakd_stream_chunk_gap_seconds", ["scenario"],
        "Gaps between consecutive content-bearing stream chunks.";
    schedule_lag_seconds: Histogram(lag_buckets()) = "soakd_schedule_lag_seconds", [],
        "Actual send time minus intended send time.";
    streams_active: IntGaugeVec = "soakd_streams_active", ["scenario"],
        "Streams open now.";
    streams_finished_total: IntCounterVec = "soakd_streams_finished_total", ["scenario", "result"],
        "Finished streams by result.";
    stream_chunks_total: IntCounterVec = "soakd_stream_chunks_total", ["scenario"],
        "Content-bearing stream chunks received.";
    response_bytes_total: IntCounterVec = "soakd_response_bytes_total", ["scenario"],
        "Response body bytes received.";
    output_tokens_total: IntCounterVec = "soakd_output_tokens_total", ["scenario"],
        "Output tokens, from usage when the target sends it, else counted content chunks.";
    in_flight_requests: IntGauge = "soakd_in_flight_requests", [],
        "Requests sent and not yet finished.";
    target_rate: Gauge = "soakd_target_rate_requests_per_second", [],
        "The request rate the load plan asks for now.";
    burst_active: IntGauge = "soakd_burst_active", [],
        "1 while a burst is running, else 0.";
    // Monitored processes
    process_up: IntGaugeVec = "soakd_process_up", ["process"],
        "1 when the monitored process was sampled successfully at the last attempt.";
    process_resident_memory_bytes: GaugeVec = "soakd_process_resident_memory_bytes", ["process"],
        "Resident set size of the monitored process.";
    process_open_fds: GaugeVec = "soakd_process_open_fds", ["process"],
        "Open file descriptors of the monitored process.";
    process_threads: GaugeVec = "soakd_process_threads", ["process"],
        "Threads of the monitored process.";
    process_cpu_seconds_total: CounterVec = "soakd_process_cpu_seconds_total", ["process"],
        "CPU time used by the monitored process while soakd watched it.";
    process_restarts_total: IntCounterVec = "soakd_process_restarts_total", ["process"],
        "Times the monitored process was seen to restart (new pid or reset start time).";
    process_rss_growth: GaugeVec = "soakd_process_rss_growth_bytes_per_second", ["process", "window"],
        "Robust slope of resident memory over the window.";
    process_fd_growth: GaugeVec = "soakd_process_fd_growth_per_second", ["process", "window"],
        "Robust slope of open file descriptors over the window.";
    process_thread_growth: GaugeVec = "soakd_process_thread_growth_per_second", ["process", "window"],
        "Robust slope of the thread count over the window.";
    process_growth_fit_r2: GaugeVec = "soakd_process_growth_fit_r2", ["process", "resource", "window"],
        "R² of the growth fit over the troughs: a diagnostic, it gates no verdict.";
    process_growth_lower_bound: GaugeVec = "soakd_process_growth_lower_bound_per_second", ["process", "resource", "window"],
        "Lower bound of the 95 % confidence interval of the growth slope, units per second; a window calls a leak when it exceeds the threshold.";
    process_rss_growth_per_request: GaugeVec = "soakd_process_rss_growth_bytes_per_request", ["process", "window"],
        "RSS slope divided by the request rate over the same window.";
    process_rss_growth_per_request_by_scenario: GaugeVec = "soakd_process_rss_growth_bytes_per_request_by_scenario", ["process", "scenario", "window"],
        "RSS growth per request of each scenario, from a regression of RSS on per-scenario request counts under a varied mix; present only when identifiable.";
    process_rss_retained_after_burst: GaugeVec = "soakd_process_rss_retained_after_burst_bytes", ["process"],
        "RSS after the last burst settled minus RSS just before it.";
    leak_suspected: IntGaugeVec = "soakd_leak_suspected", ["process", "resource"],
        "1 when the growth of the resource passes the configured leak thresholds.";
    // Two-sided soak (only while [upstream] is on)
    proxy_added_seconds: HistogramVec(proxy_buckets()) = "soakd_proxy_added_seconds", ["scenario", "stage"],
        "Time the proxy adds: send to upstream receive (request), client TTFT minus the upstream's own (first_token), upstream send to client receive per chunk (chunk), upstream's last byte sent to client's last byte received (response).";
    proxy_buffered_streams_total: IntCounterVec = "soakd_proxy_buffered_streams_total", ["scenario"],
        "Streams whose chunks the proxy held back and released together.";
    proxy_coalesced_chunks_total: IntCounterVec = "soakd_proxy_coalesced_chunks_total", ["scenario"],
        "Content chunks that arrived bunched with an earlier one although sent apart.";
    upstream_requests_total: IntCounterVec = "soakd_upstream_requests_total", ["scenario"],
        "Requests soakd's upstream received (scenario untagged: no soakd id found).";
    proxy_retries_total: IntCounterVec = "soakd_proxy_retries_total", ["scenario"],
        "Upstream requests beyond the first for one soakd request.";
    proxy_cancel_propagation_seconds: HistogramVec(proxy_buckets()) = "soakd_proxy_cancel_propagation_seconds", ["scenario"],
        "Client give-up (cancel, timeout, abort) to the upstream seeing the disconnect, for give-ups whose fate is propagated.";
    proxy_orphaned_requests: IntGaugeVec = "soakd_proxy_orphaned_requests", ["scenario"],
        "Upstream calls whose client gave up and whose answer had not ended orphan_after later, still open now.";
    proxy_orphaned_requests_total: IntCounterVec = "soakd_proxy_orphaned_requests_total", ["scenario"],
        "Upstream calls whose client gave up and whose answer had not ended orphan_after later.";
    proxy_give_ups_total: IntCounterVec = "soakd_proxy_give_ups_total", ["scenario", "fate"],
        "Client give-ups (cancel, timeout, abort) by what became of their upstream call: propagated, upstream_finished, not_propagated, orphaned, unknown.";
    proxy_wasted_output_tokens_total: IntCounterVec = "soakd_proxy_wasted_output_tokens_total", ["scenario"],
        "Output tokens the upstream generated after the client gave up (not propagated and orphaned answers).";
    proxy_error_origin_total: IntCounterVec = "soakd_proxy_error_origin_total", ["scenario", "origin"],
        "Client-visible errors by origin: upstream (the proxy passed an upstream failure through) or proxy (the upstream answered 2xx, or was never reached).";
    proxy_reported_overhead_seconds: HistogramVec(proxy_buckets()) = "soakd_proxy_reported_overhead_seconds", ["scenario"],
        "The proxy's own overhead claim, from the configured response header.";
    // Run
    run_state: IntGaugeVec = "soakd_run_state", ["state"],
        "1 for the run's current state (idle, load, drain, cooldown, linger), 0 for the others.";
    // Verdicts
    threshold_passing: IntGaugeVec = "soakd_threshold_passing", ["threshold"],
        "1 while the configured threshold holds, 0 once it fails.";
    // Info
    build_info: IntGaugeVec = "soakd_build_info", ["version"],
        "Always 1; the soakd version.";
    run_info: IntGaugeVec = "soakd_run_info", ["run_id", "shard"],
        "Always 1; this run's id and shard.";
    run_start_time: Gauge = "soakd_run_start_time_seconds", [],
        "Unix time this run (this shard) started: soakd verdict bounds its queries to the run's own span with it.";
}

/// Looks a metric up in [`CATALOG`].
pub fn def(name: &str) -> &'static MetricDef {
    CATALOG
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("metric {name} is not in the catalog"))
}

/// Request duration and TTFT buckets: 1 ms × 1.5ⁿ up to about 11 minutes.
pub fn latency_buckets() -> Vec<f64> {
    exp_buckets(0.001, 1.5, 34)
}

/// Chunk-gap buckets: 100 µs × 1.5ⁿ up to about 65 s.
pub fn chunk_gap_buckets() -> Vec<f64> {
    exp_buckets(0.0001, 1.5, 34)
}

/// Buckets of what a proxy adds: 10 µs × 2ⁿ up to about 5.6 minutes (an in-house Rust proxy
/// adds tens of microseconds, a buffering one whole streams).
pub fn proxy_buckets() -> Vec<f64> {
    exp_buckets(0.000_01, 2.0, 26)
}

/// Schedule-lag buckets: 10 µs × 2ⁿ up to about 84 s.
pub fn lag_buckets() -> Vec<f64> {
    exp_buckets(0.000_01, 2.0, 24)
}

fn exp_buckets(start: f64, factor: f64, count: usize) -> Vec<f64> {
    // Rounded so bucket bounds print as short decimals in the exposition.
    (0..count)
        .map(|i| {
            let v = start * factor.powi(i as i32);
            let digits = 6 - v.log10().floor() as i32;
            let scale = 10f64.powi(digits.max(0));
            (v * scale).round() / scale
        })
        .collect()
}

/// Defines a closed set of label values: an enum with `ALL`, `as_str()` and `index()`. The
/// rooms that own a label set (client: outcomes, plan: phases, …) use it, so a label value is
/// never free text.
macro_rules! label_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),* }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
            pub const fn index(self) -> usize { self as usize }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use label_enum;

impl Metrics {
    /// Builds the registry with every family of [`CATALOG`], soakd's own `process_*`
    /// collector, and the info metrics.
    pub fn new(run_id: &str, shard: &str) -> Result<Self, prometheus::Error> {
        let m = Self::register_all(Registry::new())?;
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        m.run_info.with_label_values(&[run_id, shard]).set(1);
        m.run_start_time.set(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
        m.in_flight_requests.set(0);
        m.burst_active.set(0);
        #[cfg(target_os = "linux")]
        m.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(m)
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition of every registered family.
    pub fn encode(&self) -> String {
        let mut buf = Vec::with_capacity(64 * 1024);
        let encoder = TextEncoder::new();
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = encoder.encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_names_are_unique_and_prefixed() {
        let mut seen = std::collections::HashSet::new();
        for d in CATALOG {
            assert!(d.name.starts_with("soakd_"), "{}", d.name);
            assert!(seen.insert(d.name), "duplicate metric {}", d.name);
            if d.kind == Kind::Counter {
                assert!(
                    d.name.ends_with("_total"),
                    "counter {} lacks _total",
                    d.name
                );
            }
        }
    }

    #[test]
    fn every_catalog_entry_is_registered_with_its_labels() {
        let m = Metrics::new("run-1", "0").unwrap();
        // Give every labelled family one child, with a value per label.
        let v = |d: &MetricDef| -> Vec<&'static str> { d.labels.iter().map(|_| "x").collect() };
        m.requests_total
            .with_label_values(&v(def("soakd_requests_total")))
            .inc();
        m.requests_dropped_total
            .with_label_values(&["chat", "shutdown"])
            .inc();
        m.request_duration_seconds
            .with_label_values(&["chat", "ok"])
            .observe(0.005);
        m.time_to_first_token_seconds
            .with_label_values(&["chat"])
            .observe(0.1);
        m.stream_chunk_gap_seconds
            .with_label_values(&["chat"])
            .observe(0.01);
        m.streams_active.with_label_values(&["chat"]).set(1);
        m.streams_finished_total
            .with_label_values(&["chat", "completed"])
            .inc();
        for c in [
            &m.stream_chunks_total,
            &m.response_bytes_total,
            &m.output_tokens_total,
        ] {
            c.with_label_values(&["chat"]).inc();
        }
        m.process_up.with_label_values(&["target"]).set(1);
        for g in [
            &m.process_resident_memory_bytes,
            &m.process_open_fds,
            &m.process_threads,
            &m.process_rss_retained_after_burst,
        ] {
            g.with_label_values(&["target"]).set(1.0);
        }
        m.process_cpu_seconds_total
            .with_label_values(&["target"])
            .inc_by(0.5);
        m.process_restarts_total
            .with_label_values(&["target"])
            .inc();
        m.leak_suspected
            .with_label_values(&["target", "rss"])
            .set(0);
        m.process_rss_growth
            .with_label_values(&["target", "5m"])
            .set(1.0);
        m.process_fd_growth
            .with_label_values(&["target", "5m"])
            .set(0.0);
        m.process_thread_growth
            .with_label_values(&["target", "5m"])
            .set(0.0);
        m.process_growth_fit_r2
            .with_label_values(&["target", "rss", "5m"])
            .set(0.9);
        m.process_growth_lower_bound
            .with_label_values(&["target", "rss", "5m"])
            .set(0.5);
        m.process_rss_growth_per_request
            .with_label_values(&["target", "5m"])
            .set(10.0);
        m.process_rss_growth_per_request_by_scenario
            .with_label_values(&["target", "chat", "5m"])
            .set(10.0);
        m.threshold_passing.with_label_values(&["p99_ttft"]).set(1);
        m.run_state.with_label_values(&["load"]).set(1);
        m.proxy_added_seconds
            .with_label_values(&["chat", "request"])
            .observe(0.001);
        for c in [
            &m.proxy_buffered_streams_total,
            &m.proxy_coalesced_chunks_total,
            &m.upstream_requests_total,
            &m.proxy_retries_total,
            &m.proxy_orphaned_requests_total,
            &m.proxy_wasted_output_tokens_total,
        ] {
            c.with_label_values(&["chat"]).inc();
        }
        m.proxy_give_ups_total
            .with_label_values(&["chat", "propagated"])
            .inc();
        m.proxy_error_origin_total
            .with_label_values(&["chat", "proxy"])
            .inc();
        for h in [
            &m.proxy_cancel_propagation_seconds,
            &m.proxy_reported_overhead_seconds,
        ] {
            h.with_label_values(&["chat"]).observe(0.01);
        }
        m.proxy_orphaned_requests
            .with_label_values(&["chat"])
            .set(0);
        let families = m.registry().gather();
        for d in CATALOG {
            let fam = families
                .iter()
                .find(|f| f.name() == d.name)
                .unwrap_or_else(|| panic!("{} not registered", d.name));
            let metric = &fam.get_metric()[0];
            let mut got: Vec<&str> = metric.get_label().iter().map(|l| l.name()).collect();
            got.sort_unstable();
            let mut want = d.labels.to_vec();
            want.sort_unstable();
            assert_eq!(got, want, "labels of {}", d.name);
        }
        let text = m.encode();
        assert!(text.contains("process_resident_memory_bytes "));
        assert!(text.contains("soakd_run_info{run_id=\"run-1\",shard=\"0\"} 1"));
        assert!(
            m.run_start_time.get() > 1.7e9,
            "a Unix time: {}",
            m.run_start_time.get()
        );
    }

    #[test]
    fn latency_buckets_reach_minutes() {
        let b = latency_buckets();
        assert_eq!(b[0], 0.001);
        assert!(*b.last().unwrap() > 600.0);
        assert!(b.windows(2).all(|w| w[0] < w[1]));
        assert!(lag_buckets()[0] == 0.00001);
    }
}
