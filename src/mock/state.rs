//! The mock's shared state: effective knobs, its own metric registry, the fault dice and the
//! leak store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use tokio_util::sync::CancellationToken;

use super::args::MockArgs;
pub(crate) use super::fault::Fault;
use super::frames::{self, Api};
use super::leak::{LeakGauges, LeakStore};

/// Fault decisions from a lock-free SplitMix64 sequence: cheap, uniform, good enough for
/// Bernoulli draws, and shared by all workers without a lock or a thread-local.
pub(crate) struct FaultDice {
    state: AtomicU64,
    /// Cumulative thresholds of error, error_event, truncate, stall, garbage.
    cumulative: [f64; 5],
    any: bool,
}

impl FaultDice {
    /// Dice for the rates of `args`, seeded with `seed`.
    pub(crate) fn new(args: &MockArgs, seed: u64) -> Self {
        let mut cumulative = [0.0; 5];
        let mut acc = 0.0;
        for (i, (_, rate)) in args.fault_rates().into_iter().enumerate() {
            acc += rate;
            cumulative[i] = acc;
        }
        FaultDice {
            state: AtomicU64::new(seed),
            cumulative,
            any: acc > 0.0,
        }
    }

    /// A uniform draw in `[0, 1)`.
    fn uniform(&self) -> f64 {
        const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut z = self
            .state
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p` (a separate draw from the fault's).
    pub(crate) fn chance(&self, p: f64) -> bool {
        p > 0.0 && self.uniform() < p
    }

    /// Decides the fault of one request.
    pub(crate) fn roll(&self) -> Fault {
        if !self.any {
            return Fault::None;
        }
        let u = self.uniform();
        const OUTCOMES: [Fault; 5] = [
            Fault::Error,
            Fault::ErrorEvent,
            Fault::Truncate,
            Fault::Stall,
            Fault::Garbage,
        ];
        for (threshold, fault) in self.cumulative.iter().zip(OUTCOMES) {
            if u < *threshold {
                return fault;
            }
        }
        Fault::None
    }
}

/// The mock's own Prometheus registry and metric handles (resolved once).
pub(crate) struct MockMetrics {
    /// The registry `/metrics` renders.
    pub registry: Registry,
    /// `soakd_mock_requests_total` handles, `[endpoint][fault]`.
    requests: [[IntCounter; 7]; 5],
    /// `soakd_mock_streams_active`.
    pub streams_active: IntGauge,
    /// Leak gauges.
    pub leaks: LeakGauges,
}

impl MockMetrics {
    /// Creates and registers every metric, plus the process collector.
    pub(crate) fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let requests_vec = IntCounterVec::new(
            Opts::new(
                "soakd_mock_requests_total",
                "Requests the mock answered, by endpoint and injected fault.",
            ),
            &["endpoint", "fault"],
        )?;
        registry.register(Box::new(requests_vec.clone()))?;
        let requests = Api::ALL.map(|api| {
            Fault::ALL.map(|f| requests_vec.with_label_values(&[api.label(), f.as_str()]))
        });
        let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let streams_active = gauge(
            "soakd_mock_streams_active",
            "Streamed (and stalled) response bodies open now.",
        )?;
        let leaks = LeakGauges {
            bytes: gauge(
                "soakd_mock_leaked_bytes",
                "Bytes deliberately leaked (leak_bytes_per_request, plateau_bytes).",
            )?,
            fds: gauge(
                "soakd_mock_leaked_fds",
                "File descriptors deliberately leaked (leak_fd_every).",
            )?,
            threads: gauge(
                "soakd_mock_leaked_threads",
                "OS threads deliberately leaked (leak_thread_every).",
            )?,
            sawtooth: gauge(
                "soakd_mock_sawtooth_bytes",
                "Bytes held by the GC-like sawtooth now.",
            )?,
        };
        Ok(MockMetrics {
            registry,
            requests,
            streams_active,
            leaks,
        })
    }

    /// Counts one request.
    pub(crate) fn count(&self, api: Api, fault: Fault) {
        let f = Fault::ALL.iter().position(|x| *x == fault).unwrap_or(0);
        self.requests[api.index()][f].inc();
    }
}

/// Everything the handlers share.
pub(crate) struct Shared {
    /// Delay before the first content chunk.
    pub ttft: Duration,
    /// Delay between content chunks.
    pub chunk_delay: Duration,
    /// Chunks per answer before the `max_tokens` cap.
    pub chunks: u32,
    /// Reasoning chunks before the answer (APIs that have reasoning).
    pub reasoning_chunks: u32,
    /// Fraction of answers that are a tool call (APIs that have tools).
    pub tool_call_rate: f64,
    /// Fixed non-stream delay, or `None` for `ttft + chunks × chunk_delay`.
    pub response_delay: Option<Duration>,
    /// Extra latency growing with uptime (TTFT and non-stream delay).
    pub latency_drift: Option<super::LatencyDrift>,
    /// When the mock started serving, for `latency_drift`.
    pub started: std::time::Instant,
    /// `error_rate` status.
    pub error_status: u16,
    /// Text of one content chunk.
    pub text: String,
    /// Precomputed HTTP error bodies for `error_rate`, per API.
    pub error_bodies: [Bytes; 5],
    /// Precomputed in-band (HTTP 200) error bodies, per API.
    pub inband_error_bodies: [Bytes; 5],
    /// The JSON text of the embeddings vector of the default length.
    pub embedding: String,
    /// Fault decisions.
    pub dice: FaultDice,
    /// Per-request leaks (shared with the per-open-stream leak's task).
    pub leaks: std::sync::Arc<LeakStore>,
    /// Metrics.
    pub metrics: MockMetrics,
    /// Cancelled on shutdown (or `exit_after`): ends stalls.
    pub stop: CancellationToken,
    /// An observer of requests and streams (the two-sided soak's upstream).
    pub tap: Option<std::sync::Arc<dyn super::tap::Tap>>,
    /// Answer ids.
    seq: AtomicU64,
}

impl Shared {
    /// Builds the state for validated `args`.
    pub(crate) fn new(
        args: &MockArgs,
        stop: CancellationToken,
        seed: u64,
    ) -> Result<Self, prometheus::Error> {
        let metrics = MockMetrics::new()?;
        let leaks = std::sync::Arc::new(LeakStore::new(args, metrics.leaks.clone()));
        let injected = format!("soakd mock: injected error (HTTP {})", args.error_status);
        let inband = "soakd mock: injected in-band error";
        Ok(Shared {
            ttft: args.ttft,
            chunk_delay: args.chunk_delay,
            chunks: args.chunks,
            reasoning_chunks: args.reasoning_chunks,
            tool_call_rate: args.tool_call_rate,
            response_delay: args.response_delay,
            latency_drift: args.latency_drift,
            started: std::time::Instant::now(),
            error_status: args.error_status,
            text: frames::chunk_text(args.chunk_bytes as usize),
            error_bodies: Api::ALL.map(|a| frames::error_body(a, args.error_status, &injected)),
            inband_error_bodies: Api::ALL.map(|a| frames::inband_error_body(a, inband)),
            embedding: frames::embeddings::vector(frames::embeddings::DEFAULT_DIMENSIONS),
            dice: FaultDice::new(args, seed),
            leaks,
            metrics,
            stop,
            tap: None,
            seq: AtomicU64::new(seed >> 40),
        })
    }

    /// What `latency_drift` adds to a delay now (zero without it).
    pub(crate) fn drift(&self) -> Duration {
        self.latency_drift
            .map_or(Duration::ZERO, |d| d.extra(self.started.elapsed()))
    }

    /// The next answer number.
    pub(crate) fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dice_rates_are_respected() {
        let args = MockArgs {
            error_rate: 0.1,
            error_event_rate: 0.2,
            truncate_rate: 0.05,
            stall_rate: 0.15,
            garbage_rate: 0.3,
            ..Default::default()
        };
        let dice = FaultDice::new(&args, 12345);
        let n = 200_000;
        let mut counts = [0u32; 7];
        for _ in 0..n {
            let f = dice.roll();
            counts[Fault::ALL.iter().position(|x| *x == f).unwrap()] += 1;
        }
        let expect = [0.2, 0.1, 0.2, 0.05, 0.15, 0.3, 0.0];
        for (i, p) in expect.iter().enumerate() {
            let got = f64::from(counts[i]) / f64::from(n);
            assert!(
                (got - p).abs() < 0.01,
                "{}: got {got}, want {p}",
                Fault::ALL[i].as_str()
            );
        }
    }

    #[test]
    fn chance_is_a_separate_fraction() {
        let dice = FaultDice::new(&MockArgs::default(), 99);
        let n = (0..100_000).filter(|_| dice.chance(0.3)).count() as f64;
        assert!((n / 1e5 - 0.3).abs() < 0.01, "{n}");
        assert!((0..1000).all(|_| !dice.chance(0.0)));
        assert!((0..1000).all(|_| dice.chance(1.0)));
    }

    #[test]
    fn dice_extremes() {
        let always = FaultDice::new(
            &MockArgs {
                stall_rate: 1.0,
                ..Default::default()
            },
            7,
        );
        assert!((0..10_000).all(|_| always.roll() == Fault::Stall));
        let never = FaultDice::new(&MockArgs::default(), 7);
        assert!((0..10_000).all(|_| never.roll() == Fault::None));
    }

    #[test]
    fn metrics_register_and_count() {
        let m = MockMetrics::new().unwrap();
        m.count(Api::Anthropic, Fault::Garbage);
        m.count(Api::Anthropic, Fault::Garbage);
        let families = m.registry.gather();
        let req = families
            .iter()
            .find(|f| f.name() == "soakd_mock_requests_total")
            .unwrap();
        let hit = req
            .get_metric()
            .iter()
            .find(|mm| {
                let labels: Vec<_> = mm
                    .get_label()
                    .iter()
                    .map(|l| (l.name(), l.value()))
                    .collect();
                labels.contains(&("endpoint", "messages")) && labels.contains(&("fault", "garbage"))
            })
            .unwrap();
        assert_eq!(hit.get_counter().get_value(), 2.0);
        assert!(families.iter().any(|f| f.name().starts_with("process_")));
    }
}
