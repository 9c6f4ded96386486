//! An observer of the mock's requests and streams, for a caller that serves the mock as a
//! proxy's upstream and wants both sides of every request (the two-sided soak, see
//! `crate::upstream`). The mock knows nothing about that caller: it stamps, reports and, while
//! a [`Tap`] is installed, numbers each content chunk's text with a sequence marker.
//!
//! A tap may also change what the mock does (the two-sided soak's storms): refuse a new
//! connection at accept ([`Tap::accept`]), or have one answer replaced by an [`Injected`]
//! fault ([`Probe::inject`], [`Tap::inject`] for a request it does not follow). It is told of
//! the faults the mock's own `*_rate` dice inject ([`Probe::faulted`], [`Tap::faulted`]).
//! Every such method has a default body that changes nothing.

use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

pub use super::fault::Fault;

/// Watches the requests of a mock that was given it ([`super::serve_with_tap`]).
pub trait Tap: Send + Sync + 'static {
    /// A request arrived: its head at `entry` (before the body was read), the value of the
    /// request-id header if any, and the whole body. Returns the probe of this answer, or
    /// `None` to watch it no further.
    fn request(
        &self,
        entry: Instant,
        header_id: Option<&[u8]>,
        body: &[u8],
    ) -> Option<Box<dyn Probe>>;
    /// The header that carries a request id.
    fn id_header(&self) -> &'static str;
    /// A new connection was accepted: `false` closes it at once, before anything is read.
    fn accept(&self) -> bool {
        true
    }
    /// A fault to inject into the answer to a request [`Tap::request`] returned no probe for,
    /// on `endpoint` (the `endpoint` label: `chat_completions`, `responses`, `completions`,
    /// `embeddings`, `messages`), streamed or not. `None` answers as usual.
    fn inject(&self, endpoint: &'static str, stream: bool) -> Option<Injected> {
        let _ = (endpoint, stream);
        None
    }
    /// The mock's dice injected `fault` into the answer to a request without a probe;
    /// `retry_after` is the `Retry-After` (seconds) sent with it.
    fn faulted(&self, fault: Fault, retry_after: Option<u32>) {
        let _ = (fault, retry_after);
    }
}

/// A fault a tap has the mock inject in place of (or before) one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// An HTTP error: `status` with the API's error body, and `Retry-After: retry_after`
    /// (seconds) only when set.
    Status {
        status: u16,
        retry_after: Option<u32>,
    },
    /// The answer as usual, after this delay before its first byte.
    Slow(Duration),
    /// Streams: the headers and the first content chunk, then nothing; unary answers: nothing
    /// at all (no headers). Until the client leaves or the mock shuts down.
    Stall,
    /// The connection is closed after this many content chunks (streams, after the head);
    /// unary answers: before any byte.
    Reset { after_chunks: u32 },
}

/// What the mock answers one request, decided before it sends anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The answer carries a failure: an error status, an in-band error, a truncation, a stall
    /// or garbage.
    pub failed: bool,
    /// A streamed answer (its tokens are its content chunks, told one by one).
    pub stream: bool,
    /// A unary answer's output tokens (0 for a stream, a failed answer or embeddings).
    pub output_tokens: u64,
}

/// The stamps of one answer.
pub trait Probe: Send {
    /// What the mock is going to answer (at most once, before any chunk).
    fn answer(&mut self, _answer: &Answer) {}
    /// Content chunk `seq` (0-based, in send order) is being handed to the connection now;
    /// `text` is this chunk's copy of the answer text (empty when the chunk carries none),
    /// which the probe may overwrite (same length, JSON-safe ASCII) to mark the chunk.
    fn chunk(&mut self, seq: u32, at: Instant, text: &mut [u8]);
    /// The answer ended at `at`: `completed` when the mock sent all it meant to, `false` when
    /// it was dropped early (the client, or the proxy in front of it, went away).
    fn end(self: Box<Self>, completed: bool, at: Instant);
    /// A fault to inject into this answer, on `endpoint` (see [`Tap::inject`]), streamed or
    /// not; `None` answers as usual. Asked once, after the body was parsed.
    fn inject(&mut self, endpoint: &'static str, stream: bool) -> Option<Injected> {
        let _ = (endpoint, stream);
        None
    }
    /// The mock's dice injected `fault` into this answer; `retry_after` is the `Retry-After`
    /// (seconds) sent with it.
    fn faulted(&mut self, fault: Fault, retry_after: Option<u32>) {
        let _ = (fault, retry_after);
    }
}

/// Holds a probe and ends it exactly once: explicitly, or as dropped early.
pub(crate) struct ProbeGuard(Option<Box<dyn Probe>>);

impl ProbeGuard {
    pub(crate) fn new(p: Box<dyn Probe>) -> Self {
        ProbeGuard(Some(p))
    }

    pub(crate) fn inject(&mut self, endpoint: &'static str, stream: bool) -> Option<Injected> {
        self.0.as_mut().and_then(|p| p.inject(endpoint, stream))
    }

    pub(crate) fn faulted(&mut self, fault: Fault, retry_after: Option<u32>) {
        if let Some(p) = &mut self.0 {
            p.faulted(fault, retry_after);
        }
    }

    pub(crate) fn answer(&mut self, a: &Answer) {
        if let Some(p) = &mut self.0 {
            p.answer(a);
        }
    }

    pub(crate) fn chunk(&mut self, seq: u32, text: &mut [u8]) {
        if let Some(p) = &mut self.0 {
            p.chunk(seq, Instant::now(), text);
        }
    }

    /// The answer was sent whole.
    pub(crate) fn complete(mut self) {
        if let Some(p) = self.0.take() {
            p.end(true, Instant::now());
        }
    }
}

impl Drop for ProbeGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            p.end(false, Instant::now());
        }
    }
}

/// When a request's head reached the mock (a request extension).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry(pub Instant);

/// Middleware: stamps [`Entry`] before any extractor reads the body.
pub(crate) async fn stamp_entry(mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(Entry(Instant::now()));
    next.run(req).await
}

/// The mock's listener: accepts as axum's own does, then closes at once every connection the
/// tap refuses ([`Tap::accept`]).
pub(crate) struct Gate {
    inner: tokio::net::TcpListener,
    tap: Option<std::sync::Arc<dyn Tap>>,
}

impl Gate {
    pub(crate) fn new(
        inner: tokio::net::TcpListener,
        tap: Option<std::sync::Arc<dyn Tap>>,
    ) -> Self {
        Gate { inner, tap }
    }
}

impl axum::serve::Listener for Gate {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
            match &self.tap {
                Some(t) if !t.accept() => drop(io),
                _ => return (io, addr),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}
