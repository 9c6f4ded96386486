//! An observer of the mock's requests and streams, for a caller that serves the mock as a
//! proxy's upstream and wants both sides of every request (the two-sided soak, see
//! `crate::upstream`). The mock knows nothing about that caller: it stamps, reports and, while
//! a [`Tap`] is installed, numbers each content chunk's text with a sequence marker.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

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
}

/// Holds a probe and ends it exactly once: explicitly, or as dropped early.
pub(crate) struct ProbeGuard(Option<Box<dyn Probe>>);

impl ProbeGuard {
    pub(crate) fn new(p: Box<dyn Probe>) -> Self {
        ProbeGuard(Some(p))
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
