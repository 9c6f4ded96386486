//! The one place a request is recorded: Prometheus metrics and the HDR statistics together.
//!
//! [`ScenarioMetrics`] resolves every label set a scenario's requests touch once, at start, and
//! holds the run's [`Stats`], so each record call writes the Prometheus series and the HDR
//! histogram behind `/status` and the summary in one step. Every path of a request — a normal
//! end, a client-side cancel, a timeout, an abort at the end of the grace period — goes
//! through [`ScenarioMetrics::finished`], so no path can count a request in one and not the
//! other.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus::{Histogram, IntCounter, IntGauge};

use super::error_body::{ErrorBodies, TopBody};
use super::outcome::{Outcome, StreamResult};
use crate::metrics::Metrics;
use crate::plan::Phase;
use crate::stats::{Series, Stats};

/// Handles for one scenario, indexed by the closed enums, plus the run's HDR stats.
#[derive(Clone)]
pub struct ScenarioMetrics {
    requests: Vec<Vec<IntCounter>>,
    duration_ok: Histogram,
    duration_error: Histogram,
    ttft: Histogram,
    chunk_gap: Histogram,
    /// `soakd_streams_active{scenario}`.
    pub streams_active: IntGauge,
    streams_finished: Vec<IntCounter>,
    /// `soakd_stream_chunks_total{scenario}`.
    pub chunks: IntCounter,
    /// `soakd_response_bytes_total{scenario}`.
    pub response_bytes: IntCounter,
    /// `soakd_output_tokens_total{scenario}`.
    pub output_tokens: IntCounter,
    /// Stream events of a type the parser does not know (tolerated), for `/status` and the
    /// summary; not a metric of the contract.
    unknown_events: Arc<AtomicU64>,
    /// The most frequent HTTP error body per outcome, for `/status` and the summary; not a
    /// metric (bodies are never labels).
    error_bodies: Arc<ErrorBodies>,
    stats: Arc<Stats>,
}

/// What is known about a request when it ends.
#[derive(Debug, Clone, Copy)]
pub struct Finished {
    pub phase: Phase,
    pub outcome: Outcome,
    /// From the intended send time.
    pub duration: Duration,
    /// A 2xx event-stream head arrived, so the stream counts as opened and finished.
    pub stream_opened: bool,
    /// Usage when sent, else counted content chunks.
    pub output_tokens: u64,
    /// Stream events of unknown type that were tolerated.
    pub unknown_events: u64,
}

impl ScenarioMetrics {
    /// Resolves every label set of `scenario` once.
    pub fn new(m: &Metrics, scenario: &str, stats: Arc<Stats>) -> Self {
        let requests = Phase::ALL
            .iter()
            .map(|p| {
                Outcome::ALL
                    .iter()
                    .map(|o| {
                        m.requests_total
                            .with_label_values(&[scenario, p.as_str(), o.as_str()])
                    })
                    .collect()
            })
            .collect();
        ScenarioMetrics {
            requests,
            duration_ok: m
                .request_duration_seconds
                .with_label_values(&[scenario, "ok"]),
            duration_error: m
                .request_duration_seconds
                .with_label_values(&[scenario, "error"]),
            ttft: m.time_to_first_token_seconds.with_label_values(&[scenario]),
            chunk_gap: m.stream_chunk_gap_seconds.with_label_values(&[scenario]),
            streams_active: m.streams_active.with_label_values(&[scenario]),
            streams_finished: StreamResult::ALL
                .iter()
                .map(|r| {
                    m.streams_finished_total
                        .with_label_values(&[scenario, r.as_str()])
                })
                .collect(),
            chunks: m.stream_chunks_total.with_label_values(&[scenario]),
            response_bytes: m.response_bytes_total.with_label_values(&[scenario]),
            output_tokens: m.output_tokens_total.with_label_values(&[scenario]),
            unknown_events: Arc::new(AtomicU64::new(0)),
            error_bodies: Arc::new(ErrorBodies::default()),
            stats,
        }
    }

    /// Finished requests of one phase and outcome.
    pub fn request(&self, phase: Phase, outcome: Outcome) -> &IntCounter {
        &self.requests[phase.index()][outcome.index()]
    }

    /// Finished streams of one result.
    pub fn stream_finished(&self, result: StreamResult) -> &IntCounter {
        &self.streams_finished[result.index()]
    }

    /// Records a finished request: its outcome, its duration (Prometheus under
    /// `result="ok"`/`"error"`, and HDR), the finished stream, and its output tokens.
    pub fn finished(&self, f: Finished) {
        self.request(f.phase, f.outcome).inc();
        let h = if f.outcome.is_success() {
            &self.duration_ok
        } else {
            &self.duration_error
        };
        h.observe(f.duration.as_secs_f64());
        self.stats.record(Series::Duration, f.duration);
        if f.stream_opened {
            self.stream_finished(StreamResult::of(f.outcome)).inc();
        }
        self.output_tokens.inc_by(f.output_tokens);
        if f.unknown_events > 0 {
            self.unknown_events
                .fetch_add(f.unknown_events, Ordering::Relaxed);
        }
    }

    /// Unknown stream events tolerated so far.
    pub fn unknown_events(&self) -> u64 {
        self.unknown_events.load(Ordering::Relaxed)
    }

    /// Counts the excerpt of an HTTP error body of `outcome` ([`ErrorBodies`]).
    pub fn error_body(&self, outcome: Outcome, excerpt: &str) {
        self.error_bodies.record(outcome, excerpt);
    }

    /// The most frequent error body per outcome so far.
    pub fn top_error_bodies(&self) -> BTreeMap<&'static str, TopBody> {
        self.error_bodies.top()
    }

    /// Records a time to first token.
    pub fn first_token(&self, ttft: Duration) {
        self.ttft.observe(ttft.as_secs_f64());
        self.stats.record(Series::Ttft, ttft);
    }

    /// Records one content chunk, and the gap since the previous one when there was one.
    pub fn chunk(&self, gap: Option<Duration>) {
        self.chunks.inc();
        if let Some(gap) = gap {
            self.chunk_gap.observe(gap.as_secs_f64());
            self.stats.record(Series::ChunkGap, gap);
        }
    }
}
