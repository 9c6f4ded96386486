//! One request, start to finish, with its metrics.
//!
//! [`Exchange::execute`] sends the request and reads the response as it arrives:
//! - Time budget: the response head must arrive within `request_timeout` of the send; a
//!   non-stream body too; a stream must end within `stream_timeout` of the send. Timeouts are
//!   `tokio::time` deadlines around each await, so they cost nothing per chunk.
//! - Streams: each network chunk goes through the [`StreamDriver`] (the SSE reader and the
//!   API's parser, which decide the outcome); the body is never accumulated. Arrival time is
//!   taken once per network chunk, so TTFT and chunk gaps are when the bytes arrived.
//! - TTFT is the first content delta the scenario's [`TtftOn`](super::TtftOn) accepts (any kind by default,
//!   text only with `ttft_on = "text"`); chunk counts and gaps count every content delta.
//! - Non-stream bodies are collected up to `max_response_bytes` and checked as JSON.
//! - Error statuses, and streams that ended cleanly, are drained (up to [`DRAIN_CAP`] bytes
//!   within [`DRAIN_TIME`]) after the metrics are recorded, so the connection can go back to
//!   the pool; anything else (cancel, protocol error, timeout) drops the response, which
//!   closes the connection. An error status's first [`READ_BYTES`] are kept while draining:
//!   their redacted one-line excerpt ([`super::error_body`]) goes in the rate-limited warning
//!   (`body`) and the scenario's table of the most frequent error body per outcome.
//!
//! Two clients: the HTTP/1.1 fast path ([`super::http1`], when the run uses it: `fast` is
//! set) or reqwest; both behind [`Resp`], with the same outcomes and details. On the fast
//! path a connection goes back to its pool only when its body was read to the end (a complete
//! body, a clean stream end followed by a drain to the end, or a drained error status).
//!
//! Metrics recorded per request, through [`ScenarioMetrics`] (Prometheus and HDR together):
//! `requests_total{phase,outcome}`, the duration from the *intended* send time, and for
//! streams TTFT (from the intended send; none when no delta qualified, e.g. a tool-call-only
//! answer under `ttft_on = "text"`), content chunk gaps, `streams_active` (a drop guard, so a
//! cancelled future still decrements), `streams_finished`, chunks, response bytes, output
//! tokens (usage when sent, else the content chunk count). A request cancelled by the caller's
//! `abort` token (the end of the grace period) is recorded here too, as `cancelled`, with
//! what it had received by then: there is one recording path for every way a request ends.
//!
//! `streams_active`, `streams_finished_total` and the run's open-stream signal
//! ([`Exchange::open_streams`], which the monitor divides growth by) count *opened* streams: a 2xx
//! `text/event-stream` response head. A stream request that fails before that (status,
//! connect error, head timeout) only shows in `requests_total`. A protocol error inside an
//! opened stream finishes it as `truncated` (it did not reach its terminator).

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use prometheus::IntGauge;
use tokio::time::{sleep_until, timeout_at, Instant};
use tokio_util::sync::CancellationToken;

use super::classify::{classify_status, is_event_stream};
use super::drive::{StreamDriver, Verdict};
use super::error_body::{excerpt, READ_BYTES};
use super::http1::{H1Head, Http1Pool};
use super::outcome::Outcome;
use super::parser::parse_body;
use super::record::{Finished, ScenarioMetrics};
use super::response::{reqwest_send_failure, Resp};
use super::stream::DeltaKind;
use super::{ClientSettings, RequestSpec};
use crate::plan::Phase;
use crate::upstream::measure::ClientEnd;
use crate::upstream::{marker, ClientStamps, Tracker};

/// Most bytes read from a response after its outcome is known, to reuse the connection.
pub const DRAIN_CAP: usize = 64 * 1024;
/// Longest time spent draining a response after its outcome is known.
pub const DRAIN_TIME: Duration = Duration::from_secs(1);

/// Client-side cancellation of a request, decided by the caller per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelAt {
    /// Drop the stream after this many content-bearing chunks (0: as soon as it opens).
    /// Ignored for non-stream requests.
    AfterChunks(u32),
    /// Give up this long after the actual send, whatever has arrived by then.
    AfterTime(Duration),
}

/// Everything one request needs, borrowed from the scenario and the run.
pub struct Exchange<'a> {
    /// The shared HTTP client.
    pub client: &'a reqwest::Client,
    /// The plain-HTTP/1.1 fast path and this scenario's request head, when the run uses it
    /// (see [`super::http1`]); `None`: every request goes through `client`.
    pub fast: Option<(&'a Http1Pool, &'a H1Head)>,
    /// The scenario's URL and headers.
    pub spec: &'a RequestSpec,
    /// Timeouts and limits.
    pub settings: &'a ClientSettings,
    /// The scenario's metric handles (Prometheus and HDR).
    pub metrics: &'a ScenarioMetrics,
    /// Streams open now over all scenarios (`LoadSignals::streams_open`), kept by the same
    /// guard as `streams_active`.
    pub open_streams: Option<&'a AtomicI64>,
    /// The two-sided soak's tracker, while `[upstream]` is on.
    pub tracker: Option<&'a Tracker>,
}

/// A request's soakd id in a two-sided soak, and its scenario's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    pub id: u64,
    pub scenario: usize,
}

/// The client side of a two-sided request while it runs.
struct TwoSided {
    tag: Tag,
    stamps: ClientStamps,
}

/// What happened to one request (everything is also already in the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestReport {
    /// The classified outcome.
    pub outcome: Outcome,
    /// From the intended send time to the outcome.
    pub duration: Duration,
    /// From the intended send time to the first content chunk the scenario's `ttft_on`
    /// accepts (streams only).
    pub ttft: Option<Duration>,
    /// Content-bearing chunks received.
    pub chunks: u64,
    /// Output tokens as recorded (usage when sent, else `chunks`).
    pub output_tokens: u64,
    /// Response body bytes received, drained bytes included.
    pub bytes: u64,
    /// Stream events of a type the parser does not know (tolerated and ignored).
    pub unknown_events: u64,
}

/// Mutable per-request progress, filled while reading.
#[derive(Default)]
struct Progress {
    ttft: Option<Duration>,
    last_content: Option<Instant>,
    chunks: u64,
    bytes: u64,
    tokens: Option<u64>,
    unknown_events: u64,
    stream_opened: bool,
    status: Option<u16>,
    detail: &'static str,
    /// The response was an error status: its body's first bytes go in the warning.
    error_status: bool,
    two_sided: Option<TwoSided>,
    /// When the client gave up on the response (cancel, abort, or a stream dropped on a
    /// timeout or error), stamped before the connection is closed: the upstream may see the
    /// close at once, and the propagation time is measured from this instant. A request
    /// timeout gives up at its deadline (the timer fires at or after it, and closes the
    /// connection before the code after it runs).
    gave_up: Option<Instant>,
}

/// Counts an opened stream in `streams_active` (and the run's open-stream total, when
/// given) and takes it out again when the stream ends, however it ends.
struct ActiveStream<'a>(&'a IntGauge, Option<&'a AtomicI64>);

impl<'a> ActiveStream<'a> {
    fn open(g: &'a IntGauge, total: Option<&'a AtomicI64>) -> Self {
        g.inc();
        if let Some(t) = total {
            t.fetch_add(1, Ordering::Relaxed);
        }
        ActiveStream(g, total)
    }
}

impl Drop for ActiveStream<'_> {
    fn drop(&mut self) {
        self.0.dec();
        if let Some(t) = self.1 {
            t.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

type Leftover<'r> = Option<Resp<'r>>;

impl<'a> Exchange<'a> {
    /// Sends one request with `body`, reads and checks the response, records its metrics,
    /// and returns the report. `intended` is when the plan wanted it sent (durations and TTFT
    /// are measured from it); `phase` labels `requests_total`; `cancel` is the workload's
    /// client-side cancellation; `abort` ends the request at once (the run's grace period is
    /// over). Both record the request as `cancelled`.
    pub async fn execute(
        &self,
        body: Bytes,
        intended: Instant,
        phase: Phase,
        cancel: Option<CancelAt>,
        abort: &CancellationToken,
        tag: Option<Tag>,
    ) -> RequestReport {
        let start = Instant::now();
        let mut prog = Progress::default();
        let link = match (self.tracker, tag) {
            (Some(t), Some(tag)) => {
                prog.two_sided = Some(TwoSided {
                    tag,
                    stamps: ClientStamps::default(),
                });
                Some(t.open(tag.id, tag.scenario, start.into_std()))
            }
            _ => None,
        };
        let chunk_cancel = match cancel {
            Some(CancelAt::AfterChunks(n)) => Some(u64::from(n)),
            _ => None,
        };
        let cancel_timer = async {
            match cancel {
                Some(CancelAt::AfterTime(after)) => sleep_until(start + after).await,
                _ => std::future::pending().await,
            }
            Instant::now()
        };
        let aborting = async {
            abort.cancelled().await;
            Instant::now()
        };
        let mut gave_up = None;
        let (outcome, leftover, aborted) = tokio::select! {
            (o, left) = self.run(body, intended, start, chunk_cancel, &mut prog) => (o, left, false),
            at = cancel_timer => {
                gave_up = Some(at);
                (Outcome::Cancelled, None, false)
            }
            at = aborting => {
                gave_up = Some(at);
                (Outcome::Cancelled, None, true)
            }
        };
        if aborted {
            prog.detail = "aborted at the end of the grace period";
        } else if outcome == Outcome::Cancelled && prog.detail.is_empty() {
            prog.detail = "cancelled by the client";
        }
        let duration = Instant::now().saturating_duration_since(intended);
        let output_tokens = prog.tokens.unwrap_or(prog.chunks);
        self.metrics.finished(Finished {
            phase,
            outcome,
            duration,
            stream_opened: prog.stream_opened,
            output_tokens,
            unknown_events: prog.unknown_events,
        });
        if let (Some(t), Some(link), Some(two)) = (self.tracker, link, prog.two_sided.take()) {
            let how = match outcome {
                Outcome::Cancelled | Outcome::Timeout => ClientEnd::GaveUp,
                Outcome::Ok => ClientEnd::Finished,
                _ => ClientEnd::Failed,
            };
            let gave_up = match how {
                ClientEnd::GaveUp => gave_up.or(prog.gave_up),
                ClientEnd::Finished | ClientEnd::Failed => None,
            };
            let end = gave_up.unwrap_or_else(Instant::now);
            t.client_done(two.tag.id, &link, how, end.into_std(), two.stamps);
        }
        // An error status's body says why (a proxy's `connect ECONNREFUSED …`): its first
        // bytes are kept while it is drained, for the warning and the summary.
        let mut head = prog.error_status.then(Vec::new);
        if let Some(resp) = leftover {
            prog.bytes += self.drain(resp, head.as_mut()).await;
        }
        let body = head.map(|h| excerpt(&h, &self.secrets()));
        if let Some(b) = &body {
            self.metrics.error_body(outcome, b);
        }
        if !outcome.is_success() {
            self.spec.warn.warn(
                &self.spec.scenario,
                outcome,
                prog.status,
                prog.detail,
                body.as_deref(),
            );
        }
        RequestReport {
            outcome,
            duration,
            ttft: prog.ttft,
            chunks: prog.chunks,
            output_tokens,
            bytes: prog.bytes,
            unknown_events: prog.unknown_events,
        }
    }

    async fn run(
        &self,
        body: Bytes,
        intended: Instant,
        start: Instant,
        chunk_cancel: Option<u64>,
        prog: &mut Progress,
    ) -> (Outcome, Leftover<'a>) {
        let head_deadline = start + self.settings.request_timeout;
        let id = prog.two_sided.as_ref().map(|two| marker::hex16(two.tag.id));
        let sent = match self.fast {
            Some((pool, head)) => timeout_at(head_deadline, pool.send(head, body, id.as_ref()))
                .await
                .map(|r| r.map(Resp::Http1)),
            None => {
                let mut req = self
                    .client
                    .post(self.spec.url.clone())
                    .headers(self.spec.headers.clone());
                if let Some(id) = &id {
                    req = req.header(marker::ID_HEADER, &id[..]);
                }
                timeout_at(head_deadline, req.body(body).send())
                    .await
                    .map(|r| r.map(Resp::Reqwest).map_err(|e| reqwest_send_failure(&e)))
            }
        };
        let resp = match sent {
            Err(_) => {
                prog.detail = "no response head within the request timeout";
                prog.gave_up = Some(head_deadline);
                return (Outcome::Timeout, None);
            }
            Ok(Err(f)) => {
                prog.detail = f.detail;
                return (f.outcome, None);
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        prog.status = Some(status.as_u16());
        if let (Some(two), Some(t)) = (&mut prog.two_sided, self.tracker) {
            two.stamps.reported_overhead = t.reported_overhead(resp.headers());
        }
        if let Some(o) = classify_status(status) {
            prog.detail = "error status";
            prog.error_status = true;
            return (o, Some(resp));
        }
        if self.spec.stream {
            self.read_stream(resp, intended, start, chunk_cancel, prog)
                .await
        } else {
            (self.read_body(resp, head_deadline, prog).await, None)
        }
    }

    /// Counts `n` body bytes that arrived just now (for the two-sided soak: its last arrival).
    fn count_bytes(&self, prog: &mut Progress, n: usize) {
        prog.bytes += n as u64;
        self.metrics.response_bytes.inc_by(n as u64);
        if let Some(two) = &mut prog.two_sided {
            two.stamps.last_byte = Some(std::time::Instant::now());
        }
    }

    async fn read_body(
        &self,
        mut resp: Resp<'a>,
        deadline: Instant,
        prog: &mut Progress,
    ) -> Outcome {
        let max = self.settings.max_response_bytes;
        if resp.content_length().is_some_and(|n| n > max as u64) {
            prog.detail = "response body over max_response_bytes";
            return Outcome::ProtocolError;
        }
        let mut buf = BytesMut::new();
        loop {
            match timeout_at(deadline, resp.chunk()).await {
                Err(_) => {
                    prog.detail = "response body not complete within the request timeout";
                    prog.gave_up = Some(deadline);
                    return Outcome::Timeout;
                }
                Ok(Err(_)) => {
                    prog.detail = "response body broken off";
                    return Outcome::ProtocolError;
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => {
                    self.count_bytes(prog, chunk.len());
                    if buf.len() + chunk.len() > max {
                        prog.detail = "response body over max_response_bytes";
                        return Outcome::ProtocolError;
                    }
                    buf.extend_from_slice(&chunk);
                }
            }
        }
        match parse_body(self.spec.api, self.spec.inputs, &buf) {
            Ok(tokens) => {
                prog.tokens = tokens;
                Outcome::Ok
            }
            Err(why) => {
                prog.detail = why;
                Outcome::ProtocolError
            }
        }
    }

    async fn read_stream(
        &self,
        mut resp: Resp<'a>,
        intended: Instant,
        start: Instant,
        chunk_cancel: Option<u64>,
        prog: &mut Progress,
    ) -> (Outcome, Leftover<'a>) {
        if !is_event_stream(resp.headers()) {
            prog.detail = "stream response is not text/event-stream";
            return (Outcome::ProtocolError, None);
        }
        let m = self.metrics;
        let _active = ActiveStream::open(&m.streams_active, self.open_streams);
        prog.stream_opened = true;
        if chunk_cancel == Some(0) {
            prog.gave_up = Some(Instant::now());
            return (Outcome::Cancelled, None);
        }
        let deadline = start + self.settings.stream_timeout;
        let mut driver = StreamDriver::new(self.spec.api, self.settings.max_event_bytes);
        let verdict = loop {
            let chunk = match timeout_at(deadline, resp.chunk()).await {
                Err(_) => {
                    break Verdict::drop(
                        Outcome::Timeout,
                        "stream not finished within the stream timeout",
                    )
                }
                Ok(Err(e)) => {
                    if e.parse {
                        break Verdict::drop(Outcome::ProtocolError, "malformed HTTP body framing");
                    }
                    break Verdict::drop(Outcome::StreamTruncated, "connection lost mid-stream");
                }
                Ok(Ok(None)) => break driver.at_end(),
                Ok(Ok(Some(chunk))) => chunk,
            };
            self.count_bytes(prog, chunk.len());
            let now = Instant::now();
            let pushed = driver.push(&chunk, |kind, _, data| {
                self.content(prog, intended, now, kind);
                if let Some(two) = &mut prog.two_sided {
                    let at = now.into_std();
                    two.stamps.first_content.get_or_insert(at);
                    two.stamps.event(data.as_bytes(), at);
                }
                if chunk_cancel.is_some_and(|n| prog.chunks >= n) {
                    return ControlFlow::Break(Verdict::drop(Outcome::Cancelled, ""));
                }
                ControlFlow::Continue(())
            });
            if let Some(v) = pushed {
                break v;
            }
        };
        if !verdict.drain {
            // The response (and with it the connection) is dropped on return.
            prog.gave_up = Some(Instant::now());
        }
        prog.tokens = driver.output_tokens();
        prog.unknown_events = driver.unknown_events();
        if !verdict.detail.is_empty() {
            prog.detail = verdict.detail;
        }
        (verdict.outcome, verdict.drain.then_some(resp))
    }

    /// Records one content-bearing chunk of `kind` that arrived at `now`.
    fn content(&self, prog: &mut Progress, intended: Instant, now: Instant, kind: DeltaKind) {
        prog.chunks += 1;
        let gap = prog
            .last_content
            .map(|prev| now.saturating_duration_since(prev));
        self.metrics.chunk(gap);
        prog.last_content = Some(now);
        if prog.ttft.is_none() && self.spec.ttft_on.counts(kind) {
            let ttft = now.saturating_duration_since(intended);
            prog.ttft = Some(ttft);
            self.metrics.first_token(ttft);
        }
    }

    /// The values of the credentials this request sends (its sensitive headers, and the
    /// token of a `Bearer` one), to remove from an error body's excerpt.
    fn secrets(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for v in self.spec.headers.values().filter(|v| v.is_sensitive()) {
            if let Ok(v) = v.to_str() {
                out.push(v);
                if let Some(token) = v.strip_prefix("Bearer ") {
                    out.push(token);
                }
            }
        }
        out
    }

    /// Reads what is left of a response, bounded, so its connection can be reused; keeps its
    /// first [`READ_BYTES`] in `head` when given.
    async fn drain(&self, mut resp: Resp<'_>, mut head: Option<&mut Vec<u8>>) -> u64 {
        let deadline = Instant::now() + DRAIN_TIME;
        let mut n = 0u64;
        while let Ok(Ok(Some(chunk))) = timeout_at(deadline, resp.chunk()).await {
            if let Some(h) = head.as_deref_mut() {
                let room = READ_BYTES.saturating_sub(h.len());
                h.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            n += chunk.len() as u64;
            self.metrics.response_bytes.inc_by(chunk.len() as u64);
            if n > DRAIN_CAP as u64 {
                break;
            }
        }
        n
    }
}
