//! Every metric soakd exports, defined once.
//!
//! [`CATALOG`] is the single list of metric names, types, labels and help texts. The registry
//! in [`Metrics`] is built from it, and tests compare it with `/metrics`, the Grafana dashboards
//! and the Prometheus rules, so a name changes in one place or the tests fail.
//!
//! Label values come from closed enums ([`Outcome`], [`Phase`], [`StreamResult`], …) or from
//! names in the config (`scenario`, `process`, `window`); never from URLs or error text.
//! Per-scenario handles are resolved once ([`ScenarioMetrics`]) so the request path never looks
//! up a label set.

use std::time::Duration;

use prometheus::core::{AtomicF64, GenericCounter, GenericCounterVec};
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Float counter (CPU seconds).
pub type Counter = GenericCounter<AtomicF64>;
type CounterVec = GenericCounterVec<AtomicF64>;

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

macro_rules! catalog {
    ($( $ident:ident = $name:literal, $kind:ident, [$($label:literal),*], $help:literal; )*) => {
        /// Metric names as constants, for code that refers to one by name.
        pub mod names {
            $( pub const $ident: &str = $name; )*
        }
        /// The single list of soakd's metrics.
        pub const CATALOG: &[MetricDef] = &[
            $( MetricDef { name: $name, kind: Kind::$kind, labels: &[$($label),*], help: $help }, )*
        ];
    };
}

catalog! {
    // Traffic
    REQUESTS_TOTAL = "soakd_requests_total", Counter, ["scenario", "phase", "outcome"],
        "Finished requests by scenario, load phase and classified outcome.";
    REQUESTS_DROPPED_TOTAL = "soakd_requests_dropped_total", Counter, ["scenario", "reason"],
        "Requests that were scheduled but never sent.";
    REQUEST_DURATION_SECONDS = "soakd_request_duration_seconds", Histogram, ["scenario", "result"],
        "End-to-end request duration, timed from the intended send time.";
    TIME_TO_FIRST_TOKEN_SECONDS = "soakd_time_to_first_token_seconds", Histogram, ["scenario"],
        "Time from the intended send time to the first non-empty content delta.";
    STREAM_CHUNK_GAP_SECONDS = "soakd_stream_chunk_gap_seconds", Histogram, ["scenario"],
        "Gaps between consecutive content-bearing stream chunks.";
    SCHEDULE_LAG_SECONDS = "soakd_schedule_lag_seconds", Histogram, [],
        "Actual send time minus intended send time.";
    STREAMS_ACTIVE = "soakd_streams_active", Gauge, ["scenario"],
        "Streams open now.";
    STREAMS_FINISHED_TOTAL = "soakd_streams_finished_total", Counter, ["scenario", "result"],
        "Finished streams by result.";
    STREAM_CHUNKS_TOTAL = "soakd_stream_chunks_total", Counter, ["scenario"],
        "Content-bearing stream chunks received.";
    RESPONSE_BYTES_TOTAL = "soakd_response_bytes_total", Counter, ["scenario"],
        "Response body bytes received.";
    OUTPUT_TOKENS_TOTAL = "soakd_output_tokens_total", Counter, ["scenario"],
        "Output tokens, from usage when the target sends it, else counted content chunks.";
    IN_FLIGHT_REQUESTS = "soakd_in_flight_requests", Gauge, [],
        "Requests sent and not yet finished.";
    TARGET_RATE = "soakd_target_rate_requests_per_second", Gauge, [],
        "The request rate the load plan asks for now.";
    BURST_ACTIVE = "soakd_burst_active", Gauge, [],
        "1 while a burst is running, else 0.";
    // Monitored processes
    PROCESS_UP = "soakd_process_up", Gauge, ["process"],
        "1 when the monitored process was sampled successfully at the last attempt.";
    PROCESS_RESIDENT_MEMORY_BYTES = "soakd_process_resident_memory_bytes", Gauge, ["process"],
        "Resident set size of the monitored process.";
    PROCESS_OPEN_FDS = "soakd_process_open_fds", Gauge, ["process"],
        "Open file descriptors of the monitored process.";
    PROCESS_THREADS = "soakd_process_threads", Gauge, ["process"],
        "Threads of the monitored process.";
    PROCESS_CPU_SECONDS_TOTAL = "soakd_process_cpu_seconds_total", Counter, ["process"],
        "CPU time used by the monitored process while soakd watched it.";
    PROCESS_RESTARTS_TOTAL = "soakd_process_restarts_total", Counter, ["process"],
        "Times the monitored process was seen to restart (new pid or reset start time).";
    PROCESS_RSS_GROWTH = "soakd_process_rss_growth_bytes_per_second", Gauge, ["process", "window"],
        "Robust slope of resident memory over the window.";
    PROCESS_FD_GROWTH = "soakd_process_fd_growth_per_second", Gauge, ["process", "window"],
        "Robust slope of open file descriptors over the window.";
    PROCESS_THREAD_GROWTH = "soakd_process_thread_growth_per_second", Gauge, ["process", "window"],
        "Robust slope of the thread count over the window.";
    PROCESS_GROWTH_FIT_R2 = "soakd_process_growth_fit_r2", Gauge, ["process", "resource", "window"],
        "Coefficient of determination of the growth fit.";
    PROCESS_RSS_GROWTH_PER_REQUEST = "soakd_process_rss_growth_bytes_per_request", Gauge, ["process", "window"],
        "RSS slope divided by the request rate over the same window.";
    PROCESS_RSS_RETAINED_AFTER_BURST = "soakd_process_rss_retained_after_burst_bytes", Gauge, ["process"],
        "RSS after the last burst settled minus RSS just before it.";
    LEAK_SUSPECTED = "soakd_leak_suspected", Gauge, ["process", "resource"],
        "1 when the growth of the resource passes the configured leak thresholds.";
    // Verdicts
    THRESHOLD_PASSING = "soakd_threshold_passing", Gauge, ["threshold"],
        "1 while the configured threshold holds, 0 once it fails.";
    // Info
    BUILD_INFO = "soakd_build_info", Gauge, ["version"],
        "Always 1; the soakd version.";
    RUN_INFO = "soakd_run_info", Gauge, ["run_id", "shard"],
        "Always 1; this run's id and shard.";
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

macro_rules! closed_enum {
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

closed_enum! {
    /// How a request ended (`outcome` label).
    Outcome {
        Ok => "ok",
        Http4xx => "http_4xx",
        Http429 => "http_429",
        Http5xx => "http_5xx",
        Timeout => "timeout",
        ConnectError => "connect_error",
        StreamTruncated => "stream_truncated",
        StreamErrorEvent => "stream_error_event",
        ProtocolError => "protocol_error",
        Cancelled => "cancelled",
    }
}

impl Outcome {
    /// The `result` label of the duration histogram. A client-side cancellation is the
    /// workload doing what it was told, so it counts as ok.
    pub fn is_success(self) -> bool {
        matches!(self, Outcome::Ok | Outcome::Cancelled)
    }
}

closed_enum! {
    /// The load plan's phase when a request was scheduled (`phase` label).
    Phase {
        Ramp => "ramp",
        Steady => "steady",
        Burst => "burst",
        Drain => "drain",
    }
}

closed_enum! {
    /// How a stream ended (`result` label of `soakd_streams_finished_total`).
    StreamResult {
        Completed => "completed",
        Truncated => "truncated",
        ErrorEvent => "error_event",
        Cancelled => "cancelled",
        Timeout => "timeout",
    }
}

closed_enum! {
    /// Why a scheduled request was never sent.
    DropReason {
        InFlightCap => "in_flight_cap",
        Shutdown => "shutdown",
    }
}

closed_enum! {
    /// A monitored resource (`resource` label).
    Resource {
        Rss => "rss",
        Fds => "fds",
        Threads => "threads",
    }
}

/// The project registry and every metric family.
pub struct Metrics {
    registry: Registry,
    pub requests_total: IntCounterVec,
    pub requests_dropped_total: IntCounterVec,
    pub request_duration_seconds: HistogramVec,
    pub time_to_first_token_seconds: HistogramVec,
    pub stream_chunk_gap_seconds: HistogramVec,
    pub schedule_lag_seconds: Histogram,
    pub streams_active: IntGaugeVec,
    pub streams_finished_total: IntCounterVec,
    pub stream_chunks_total: IntCounterVec,
    pub response_bytes_total: IntCounterVec,
    pub output_tokens_total: IntCounterVec,
    pub in_flight_requests: IntGauge,
    pub target_rate: Gauge,
    pub burst_active: IntGauge,
    pub process_up: IntGaugeVec,
    pub process_resident_memory_bytes: GaugeVec,
    pub process_open_fds: GaugeVec,
    pub process_threads: GaugeVec,
    pub process_cpu_seconds_total: CounterVec,
    pub process_restarts_total: IntCounterVec,
    pub process_rss_growth: GaugeVec,
    pub process_fd_growth: GaugeVec,
    pub process_thread_growth: GaugeVec,
    pub process_growth_fit_r2: GaugeVec,
    pub process_rss_growth_per_request: GaugeVec,
    pub process_rss_retained_after_burst: GaugeVec,
    pub leak_suspected: IntGaugeVec,
    pub threshold_passing: IntGaugeVec,
    pub build_info: IntGaugeVec,
    pub run_info: IntGaugeVec,
}

fn opts(name: &str) -> Opts {
    let d = def(name);
    Opts::new(d.name, d.help)
}

fn hopts(name: &str, buckets: Vec<f64>) -> HistogramOpts {
    let d = def(name);
    HistogramOpts::new(d.name, d.help).buckets(buckets)
}

fn labels(name: &str) -> &'static [&'static str] {
    def(name).labels
}

impl Metrics {
    /// Builds the registry with every family of [`CATALOG`], soakd's own `process_*`
    /// collector, and the info metrics.
    pub fn new(run_id: &str, shard: &str) -> Result<Self, prometheus::Error> {
        use names::*;
        let registry = Registry::new();
        macro_rules! reg {
            ($e:expr) => {{
                let m = $e;
                registry.register(Box::new(m.clone()))?;
                m
            }};
        }
        let m = Metrics {
            requests_total: reg!(IntCounterVec::new(
                opts(REQUESTS_TOTAL),
                labels(REQUESTS_TOTAL)
            )?),
            requests_dropped_total: reg!(IntCounterVec::new(
                opts(REQUESTS_DROPPED_TOTAL),
                labels(REQUESTS_DROPPED_TOTAL)
            )?),
            request_duration_seconds: reg!(HistogramVec::new(
                hopts(REQUEST_DURATION_SECONDS, latency_buckets()),
                labels(REQUEST_DURATION_SECONDS)
            )?),
            time_to_first_token_seconds: reg!(HistogramVec::new(
                hopts(TIME_TO_FIRST_TOKEN_SECONDS, latency_buckets()),
                labels(TIME_TO_FIRST_TOKEN_SECONDS)
            )?),
            stream_chunk_gap_seconds: reg!(HistogramVec::new(
                hopts(STREAM_CHUNK_GAP_SECONDS, chunk_gap_buckets()),
                labels(STREAM_CHUNK_GAP_SECONDS)
            )?),
            schedule_lag_seconds: reg!(Histogram::with_opts(hopts(
                SCHEDULE_LAG_SECONDS,
                lag_buckets()
            ))?),
            streams_active: reg!(IntGaugeVec::new(
                opts(STREAMS_ACTIVE),
                labels(STREAMS_ACTIVE)
            )?),
            streams_finished_total: reg!(IntCounterVec::new(
                opts(STREAMS_FINISHED_TOTAL),
                labels(STREAMS_FINISHED_TOTAL)
            )?),
            stream_chunks_total: reg!(IntCounterVec::new(
                opts(STREAM_CHUNKS_TOTAL),
                labels(STREAM_CHUNKS_TOTAL)
            )?),
            response_bytes_total: reg!(IntCounterVec::new(
                opts(RESPONSE_BYTES_TOTAL),
                labels(RESPONSE_BYTES_TOTAL)
            )?),
            output_tokens_total: reg!(IntCounterVec::new(
                opts(OUTPUT_TOKENS_TOTAL),
                labels(OUTPUT_TOKENS_TOTAL)
            )?),
            in_flight_requests: reg!(IntGauge::with_opts(opts(IN_FLIGHT_REQUESTS))?),
            target_rate: reg!(Gauge::with_opts(opts(TARGET_RATE))?),
            burst_active: reg!(IntGauge::with_opts(opts(BURST_ACTIVE))?),
            process_up: reg!(IntGaugeVec::new(opts(PROCESS_UP), labels(PROCESS_UP))?),
            process_resident_memory_bytes: reg!(GaugeVec::new(
                opts(PROCESS_RESIDENT_MEMORY_BYTES),
                labels(PROCESS_RESIDENT_MEMORY_BYTES)
            )?),
            process_open_fds: reg!(GaugeVec::new(
                opts(PROCESS_OPEN_FDS),
                labels(PROCESS_OPEN_FDS)
            )?),
            process_threads: reg!(GaugeVec::new(
                opts(PROCESS_THREADS),
                labels(PROCESS_THREADS)
            )?),
            process_cpu_seconds_total: reg!(CounterVec::new(
                opts(PROCESS_CPU_SECONDS_TOTAL),
                labels(PROCESS_CPU_SECONDS_TOTAL)
            )?),
            process_restarts_total: reg!(IntCounterVec::new(
                opts(PROCESS_RESTARTS_TOTAL),
                labels(PROCESS_RESTARTS_TOTAL)
            )?),
            process_rss_growth: reg!(GaugeVec::new(
                opts(PROCESS_RSS_GROWTH),
                labels(PROCESS_RSS_GROWTH)
            )?),
            process_fd_growth: reg!(GaugeVec::new(
                opts(PROCESS_FD_GROWTH),
                labels(PROCESS_FD_GROWTH)
            )?),
            process_thread_growth: reg!(GaugeVec::new(
                opts(PROCESS_THREAD_GROWTH),
                labels(PROCESS_THREAD_GROWTH)
            )?),
            process_growth_fit_r2: reg!(GaugeVec::new(
                opts(PROCESS_GROWTH_FIT_R2),
                labels(PROCESS_GROWTH_FIT_R2)
            )?),
            process_rss_growth_per_request: reg!(GaugeVec::new(
                opts(PROCESS_RSS_GROWTH_PER_REQUEST),
                labels(PROCESS_RSS_GROWTH_PER_REQUEST)
            )?),
            process_rss_retained_after_burst: reg!(GaugeVec::new(
                opts(PROCESS_RSS_RETAINED_AFTER_BURST),
                labels(PROCESS_RSS_RETAINED_AFTER_BURST)
            )?),
            leak_suspected: reg!(IntGaugeVec::new(
                opts(LEAK_SUSPECTED),
                labels(LEAK_SUSPECTED)
            )?),
            threshold_passing: reg!(IntGaugeVec::new(
                opts(THRESHOLD_PASSING),
                labels(THRESHOLD_PASSING)
            )?),
            build_info: reg!(IntGaugeVec::new(opts(BUILD_INFO), labels(BUILD_INFO))?),
            run_info: reg!(IntGaugeVec::new(opts(RUN_INFO), labels(RUN_INFO))?),
            registry,
        };
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        m.run_info.with_label_values(&[run_id, shard]).set(1);
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

    /// Resolves every label set a scenario's requests touch, once.
    pub fn scenario(&self, scenario: &str) -> ScenarioMetrics {
        let requests = Phase::ALL
            .iter()
            .map(|p| {
                Outcome::ALL
                    .iter()
                    .map(|o| {
                        self.requests_total
                            .with_label_values(&[scenario, p.as_str(), o.as_str()])
                    })
                    .collect()
            })
            .collect();
        ScenarioMetrics {
            requests,
            dropped: DropReason::ALL
                .iter()
                .map(|r| {
                    self.requests_dropped_total
                        .with_label_values(&[scenario, r.as_str()])
                })
                .collect(),
            duration_ok: self
                .request_duration_seconds
                .with_label_values(&[scenario, "ok"]),
            duration_error: self
                .request_duration_seconds
                .with_label_values(&[scenario, "error"]),
            ttft: self
                .time_to_first_token_seconds
                .with_label_values(&[scenario]),
            chunk_gap: self.stream_chunk_gap_seconds.with_label_values(&[scenario]),
            streams_active: self.streams_active.with_label_values(&[scenario]),
            streams_finished: StreamResult::ALL
                .iter()
                .map(|r| {
                    self.streams_finished_total
                        .with_label_values(&[scenario, r.as_str()])
                })
                .collect(),
            chunks: self.stream_chunks_total.with_label_values(&[scenario]),
            response_bytes: self.response_bytes_total.with_label_values(&[scenario]),
            output_tokens: self.output_tokens_total.with_label_values(&[scenario]),
        }
    }

    /// Resolves the per-process sample gauges, once per monitored process.
    pub fn process(&self, process: &str) -> ProcessMetrics {
        ProcessMetrics {
            up: self.process_up.with_label_values(&[process]),
            rss: self
                .process_resident_memory_bytes
                .with_label_values(&[process]),
            fds: self.process_open_fds.with_label_values(&[process]),
            threads: self.process_threads.with_label_values(&[process]),
            cpu_seconds: self.process_cpu_seconds_total.with_label_values(&[process]),
            restarts: self.process_restarts_total.with_label_values(&[process]),
            retained_after_burst: self
                .process_rss_retained_after_burst
                .with_label_values(&[process]),
            leak: Resource::ALL
                .iter()
                .map(|r| {
                    self.leak_suspected
                        .with_label_values(&[process, r.as_str()])
                })
                .collect(),
        }
    }
}

/// Handles for one scenario, indexed by the closed enums.
#[derive(Clone)]
pub struct ScenarioMetrics {
    requests: Vec<Vec<IntCounter>>,
    dropped: Vec<IntCounter>,
    pub duration_ok: Histogram,
    pub duration_error: Histogram,
    pub ttft: Histogram,
    pub chunk_gap: Histogram,
    pub streams_active: IntGauge,
    streams_finished: Vec<IntCounter>,
    pub chunks: IntCounter,
    pub response_bytes: IntCounter,
    pub output_tokens: IntCounter,
}

impl ScenarioMetrics {
    pub fn request(&self, phase: Phase, outcome: Outcome) -> &IntCounter {
        &self.requests[phase.index()][outcome.index()]
    }
    pub fn dropped(&self, reason: DropReason) -> &IntCounter {
        &self.dropped[reason.index()]
    }
    pub fn stream_finished(&self, result: StreamResult) -> &IntCounter {
        &self.streams_finished[result.index()]
    }
    /// Records a finished request's duration under `result="ok"` or `"error"`.
    pub fn observe_duration(&self, outcome: Outcome, d: Duration) {
        let h = if outcome.is_success() {
            &self.duration_ok
        } else {
            &self.duration_error
        };
        h.observe(d.as_secs_f64());
    }
}

/// Sample gauges for one monitored process.
#[derive(Clone)]
pub struct ProcessMetrics {
    pub up: IntGauge,
    pub rss: Gauge,
    pub fds: Gauge,
    pub threads: Gauge,
    pub cpu_seconds: Counter,
    pub restarts: IntCounter,
    pub retained_after_burst: Gauge,
    leak: Vec<IntGauge>,
}

impl ProcessMetrics {
    pub fn leak(&self, resource: Resource) -> &IntGauge {
        &self.leak[resource.index()]
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
        let s = m.scenario("chat");
        s.request(Phase::Steady, Outcome::Ok).inc();
        s.observe_duration(Outcome::Ok, Duration::from_millis(5));
        let p = m.process("target");
        p.up.set(1);
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
        m.process_rss_growth_per_request
            .with_label_values(&["target", "5m"])
            .set(10.0);
        m.threshold_passing.with_label_values(&["p99_ttft"]).set(1);
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
