//! The timed body of a streamed answer: a small hand-written `Stream` state machine.
//!
//! Timing: the head at once; `first_delay` before the first content chunk; `chunk_delay`
//! between two content chunks (whichever runs they belong to); a run's lead goes out right
//! before its first chunk, with no delay of its own; the end right after the last chunk sent.
//!
//! One stream costs its frame buffer (one allocation, see [`super::frames`]), one boxed tokio
//! `Sleep` reused for every delay (allocated only if a delay is non-zero), and, for a stall, one
//! boxed cancellation future. When the client goes away hyper drops the body, which ends
//! everything, including a stall; the [`ActiveGuard`] keeps `soakd_mock_streams_active` honest.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use prometheus::IntGauge;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::frames::{Run, MAX_RUNS};
use super::tap::ProbeGuard;

/// What happens after the content chunks.
#[derive(Debug)]
pub(crate) enum End {
    /// Send this frame (the terminator, or an error frame), then end the body.
    Frame(Bytes),
    /// End the body at once (a truncated stream).
    Stop,
    /// Send nothing more until the client leaves or `stop` is cancelled.
    Stall(CancellationToken),
}

/// The script of one streamed body.
#[derive(Debug)]
pub(crate) struct Script {
    /// Sent first, at once (may be empty).
    pub head: Bytes,
    /// Wait before the first content chunk (or before `end` when there are no chunks).
    pub first_delay: Duration,
    /// Runs of content chunks, in order.
    pub runs: [Run; MAX_RUNS],
    /// Most content chunks sent before `end` (a fault cuts the answer short).
    pub limit: u32,
    /// Wait between two content chunks.
    pub chunk_delay: Duration,
    /// After the chunks.
    pub end: End,
}

impl Script {
    /// A script with no content: `head`, then after `first_delay` the `end`.
    pub(crate) fn empty(head: Bytes, first_delay: Duration, end: End) -> Script {
        Script {
            head,
            first_delay,
            runs: Default::default(),
            limit: 0,
            chunk_delay: Duration::ZERO,
            end,
        }
    }
}

/// Counts a stream in `soakd_mock_streams_active` for as long as it lives.
#[derive(Debug)]
pub(crate) struct ActiveGuard(IntGauge);

impl ActiveGuard {
    /// Increments the gauge; the drop decrements it.
    pub(crate) fn new(gauge: &IntGauge) -> Self {
        gauge.inc();
        ActiveGuard(gauge.clone())
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head,
    Wait,
    Emit,
    End,
    Stalled,
    Done,
}

/// A streamed body following a [`Script`].
pub(crate) struct MockBody {
    script: Script,
    phase: Phase,
    /// Content chunks to send: the runs' total, capped by the script's limit.
    total: u32,
    /// Content chunks sent.
    sent: u32,
    /// The run being sent, and chunks of it sent.
    run: usize,
    in_run: u32,
    lead_sent: bool,
    sleep: Option<Pin<Box<Sleep>>>,
    /// When the last wait was due (the schedule the next wait counts from).
    due: Option<Instant>,
    stall: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    /// A tap's probe: told of each chunk (and given a copy of the chunk's text to mark) and
    /// of the end. `texts[run]` is where the text sits in the run's chunk.
    probe: Option<ProbeGuard>,
    texts: [Option<std::ops::Range<usize>>; MAX_RUNS],
    _active: ActiveGuard,
}

impl MockBody {
    /// A body that plays `script`, counted in `active`.
    pub(crate) fn new(script: Script, active: &IntGauge) -> Self {
        let all: u32 = script.runs.iter().map(|r| r.count).sum();
        MockBody {
            total: all.min(script.limit),
            script,
            phase: Phase::Head,
            sent: 0,
            run: 0,
            in_run: 0,
            lead_sent: false,
            sleep: None,
            due: None,
            stall: None,
            probe: None,
            texts: Default::default(),
            _active: ActiveGuard::new(active),
        }
    }

    /// Reports to `probe`, which may mark each chunk's text (`text`, as the frames carry it).
    pub(crate) fn with_probe(mut self, probe: ProbeGuard, text: &str) -> Self {
        for (slot, run) in self.texts.iter_mut().zip(&self.script.runs) {
            *slot = memchr::memmem::find(&run.chunk, text.as_bytes()).map(|at| at..at + text.len());
        }
        self.probe = Some(probe);
        self
    }

    /// Moves to `Wait` until `d` after the previous deadline (the first one counts from now),
    /// or straight to `Emit` when `d` is zero. Deadlines follow a fixed schedule, so the time
    /// spent producing a chunk does not add up over a long stream: chunk `n` is due at
    /// `ttft + (n - 1) × chunk_delay` after the head, however busy the mock is.
    fn wait(&mut self, d: Duration) {
        let deadline = self.due.unwrap_or_else(Instant::now) + d;
        self.due = Some(deadline);
        if d.is_zero() {
            self.phase = Phase::Emit;
            return;
        }
        match &mut self.sleep {
            Some(s) => s.as_mut().reset(deadline),
            None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
        self.phase = Phase::Wait;
    }
}

impl Stream for MockBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.phase {
                Phase::Head => {
                    this.wait(this.script.first_delay);
                    if !this.script.head.is_empty() {
                        return Poll::Ready(Some(Ok(this.script.head.clone())));
                    }
                }
                Phase::Wait => {
                    if let Some(s) = &mut this.sleep {
                        ready!(s.as_mut().poll(cx));
                    }
                    this.phase = Phase::Emit;
                }
                Phase::Emit => {
                    while this.run < MAX_RUNS && this.in_run >= this.script.runs[this.run].count {
                        this.run += 1;
                        this.in_run = 0;
                        this.lead_sent = false;
                    }
                    if this.sent >= this.total || this.run == MAX_RUNS {
                        this.phase = Phase::End;
                        continue;
                    }
                    let r = &this.script.runs[this.run];
                    if this.in_run == 0 && !this.lead_sent && !r.lead.is_empty() {
                        this.lead_sent = true;
                        return Poll::Ready(Some(Ok(r.lead.clone())));
                    }
                    let chunk = match &mut this.probe {
                        None => r.chunk.clone(),
                        Some(p) => {
                            let mut b = bytes::BytesMut::from(&r.chunk[..]);
                            let text = this.texts[this.run].clone().unwrap_or(0..0);
                            p.chunk(this.sent, &mut b[text]);
                            b.freeze()
                        }
                    };
                    this.in_run += 1;
                    this.sent += 1;
                    if this.sent < this.total {
                        this.wait(this.script.chunk_delay);
                    } else {
                        this.phase = Phase::End;
                    }
                    return Poll::Ready(Some(Ok(chunk)));
                }
                Phase::End => match &this.script.end {
                    End::Frame(b) => {
                        this.phase = Phase::Done;
                        return Poll::Ready(Some(Ok(b.clone())));
                    }
                    End::Stop => this.phase = Phase::Done,
                    End::Stall(stop) => {
                        this.stall = Some(Box::pin(stop.clone().cancelled_owned()));
                        this.phase = Phase::Stalled;
                    }
                },
                Phase::Stalled => {
                    if let Some(f) = &mut this.stall {
                        ready!(f.as_mut().poll(cx));
                    }
                    this.stall = None;
                    this.phase = Phase::Done;
                }
                Phase::Done => {
                    if let Some(p) = this.probe.take() {
                        p.complete();
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn run(lead: &'static [u8], chunk: &'static [u8], count: u32) -> Run {
        Run {
            lead: Bytes::from_static(lead),
            chunk: Bytes::from_static(chunk),
            count,
        }
    }

    fn script(chunks: u32, end: End) -> Script {
        let mut runs: [Run; MAX_RUNS] = Default::default();
        runs[0] = run(b"", b"c", chunks);
        Script {
            head: Bytes::from_static(b"H"),
            first_delay: Duration::from_millis(1),
            runs,
            limit: chunks,
            chunk_delay: Duration::ZERO,
            end,
        }
    }

    async fn collect(body: MockBody) -> Vec<u8> {
        let items: Vec<_> = tokio::time::timeout(Duration::from_secs(5), body.collect::<Vec<_>>())
            .await
            .expect("body ends");
        items
            .into_iter()
            .flat_map(|r| match r {
                Ok(b) => b.to_vec(),
                Err(e) => match e {},
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn plays_head_chunks_and_end_frame() {
        let g = IntGauge::new("g", "g").unwrap();
        let body = MockBody::new(script(3, End::Frame(Bytes::from_static(b"T"))), &g);
        assert_eq!(g.get(), 1);
        assert_eq!(collect(body).await, b"HcccT");
        assert_eq!(g.get(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn runs_play_in_order_with_leads_and_a_limit() {
        let g = IntGauge::new("g", "g").unwrap();
        let mut runs: [Run; MAX_RUNS] = Default::default();
        runs[0] = run(b"<r>", b"r", 2);
        runs[1] = run(b"<a>", b"a", 1);
        runs[2] = run(b"", b"b", 0);
        runs[3] = run(b"", b"z", 2);
        let s = |limit| Script {
            head: Bytes::from_static(b"H"),
            first_delay: Duration::ZERO,
            runs: runs.clone(),
            limit,
            chunk_delay: Duration::from_millis(1),
            end: End::Frame(Bytes::from_static(b"T")),
        };
        assert_eq!(collect(MockBody::new(s(99), &g)).await, b"H<r>rr<a>azzT");
        // A limit cuts the content short; a lead is only sent with its first chunk.
        assert_eq!(collect(MockBody::new(s(2), &g)).await, b"H<r>rrT");
        assert_eq!(collect(MockBody::new(s(3), &g)).await, b"H<r>rr<a>aT");
        assert_eq!(g.get(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_chunks_and_stop() {
        let g = IntGauge::new("g", "g").unwrap();
        assert_eq!(collect(MockBody::new(script(0, End::Stop), &g)).await, b"H");
    }

    #[tokio::test(start_paused = true)]
    async fn stall_ends_on_cancel_and_drop_releases_the_gauge() {
        let g = IntGauge::new("g", "g").unwrap();
        let stop = CancellationToken::new();
        let mut body = MockBody::new(script(2, End::Stall(stop.clone())), &g);
        let t = Duration::from_secs(5);
        for want in [&b"H"[..], b"c", b"c"] {
            let got = tokio::time::timeout(t, body.next()).await.unwrap();
            assert_eq!(got.unwrap().unwrap(), want);
        }
        let next = tokio::spawn(async move { body.next().await.is_none() });
        stop.cancel();
        assert!(tokio::time::timeout(t, next).await.unwrap().unwrap());
        assert_eq!(g.get(), 0);

        let stop = CancellationToken::new();
        let body = MockBody::new(script(0, End::Stall(stop)), &g);
        assert_eq!(g.get(), 1);
        drop(body);
        assert_eq!(g.get(), 0);
    }

    /// Each item of `body` with the (paused) time it came, from the start; `late` delays
    /// the reader after the item of that index, as a busy consumer would.
    async fn timed(mut body: MockBody, late: Option<(usize, Duration)>) -> Vec<(u64, Bytes)> {
        let start = Instant::now();
        let mut out = Vec::new();
        while let Some(Ok(b)) = body.next().await {
            out.push(((Instant::now() - start).as_millis() as u64, b));
            if let Some((i, d)) = late {
                if out.len() == i + 1 {
                    tokio::time::sleep(d).await;
                }
            }
        }
        out
    }

    /// On the paused clock the delays are exact: the head at once, the first chunk
    /// `first_delay` later, then one chunk per `chunk_delay`, the end frame with the last one.
    /// A reader that falls behind gets the chunks that are due at once, and the rest keep the
    /// schedule (chunk n at `first_delay + (n - 1) × chunk_delay`): the lag does not add up.
    #[tokio::test(start_paused = true)]
    async fn delays_follow_a_fixed_schedule_on_the_paused_clock() {
        let g = IntGauge::new("g", "g").unwrap();
        let s = || Script {
            first_delay: Duration::from_millis(100),
            chunk_delay: Duration::from_millis(30),
            ..script(4, End::Frame(Bytes::from_static(b"T")))
        };
        let times = |items: &[(u64, Bytes)]| items.iter().map(|(t, _)| *t).collect::<Vec<_>>();
        let on_time = timed(MockBody::new(s(), &g), None).await;
        assert_eq!(times(&on_time), [0, 100, 130, 160, 190, 190]);
        let text: Vec<u8> = on_time.iter().flat_map(|(_, b)| b.to_vec()).collect();
        assert_eq!(text, b"HccccT");
        // 50 ms late after the second chunk (at 130 ms): the third, due at 160 ms, comes when
        // asked for (180 ms); the fourth is still due at 190 ms, not 210 ms.
        let late = timed(MockBody::new(s(), &g), Some((2, Duration::from_millis(50)))).await;
        assert_eq!(times(&late), [0, 100, 130, 180, 190, 190]);
        assert_eq!(g.get(), 0);
    }
}
