//! One response, from either client: reqwest's, or the HTTP/1.1 fast path's
//! ([`super::http1`]), behind the few calls [`super::Exchange`] needs (status, headers,
//! declared length, next body chunk by a deadline) and the same error classes for both.
//!
//! A body read error is [`BodyError`]: `parse` when the body's framing was malformed or a
//! framing cap was crossed (the fast path's decoder, or hyper's under reqwest), else the
//! connection was lost mid-body. [`Resp::chunk_by`] checks its deadline itself before every
//! read, so a body whose bytes are always ready still ends at its deadline. A send error is
//! [`SendFailure`] ([`super::classify`] writes every one of them, for both clients).

use bytes::Bytes;
use hyper::header::HeaderMap;
use hyper::StatusCode;
use tokio::time::{timeout_at, Instant};

use super::classify::is_parse_error;
use super::http1::H1Response;
pub use super::http1::{BodyError, SendFailure, TimedOut};

/// A response head with its unread body.
pub enum Resp<'a> {
    Reqwest(reqwest::Response),
    Http1(H1Response<'a>),
}

impl Resp<'_> {
    pub fn status(&self) -> StatusCode {
        match self {
            Resp::Reqwest(r) => r.status(),
            Resp::Http1(r) => r.status(),
        }
    }

    pub fn headers(&self) -> &HeaderMap {
        match self {
            Resp::Reqwest(r) => r.headers(),
            Resp::Http1(r) => r.headers(),
        }
    }

    /// The body's length when the head declared it.
    pub fn content_length(&self) -> Option<u64> {
        match self {
            Resp::Reqwest(r) => r.content_length(),
            Resp::Http1(r) => r.content_length(),
        }
    }

    /// The next piece of the body (`None` at its end), unless `deadline` passes first.
    pub async fn chunk_by(
        &mut self,
        deadline: Instant,
    ) -> Result<Result<Option<Bytes>, BodyError>, TimedOut> {
        match self {
            Resp::Reqwest(r) => {
                if Instant::now() >= deadline {
                    return Err(TimedOut);
                }
                let chunk = timeout_at(deadline, r.chunk())
                    .await
                    .map_err(|_| TimedOut)?;
                Ok(chunk.map_err(|e| BodyError {
                    parse: is_parse_error(&e),
                }))
            }
            Resp::Http1(r) => r.chunk(deadline).await,
        }
    }

    /// From now on, at most `bytes` more raw bytes of the body are read (framing included);
    /// past them the body fails as malformed and its connection is closed. The fast path
    /// only: under reqwest, hyper caps its own framing and only data is counted.
    pub fn cap_wire(&mut self, bytes: u64) {
        if let Resp::Http1(r) = self {
            r.cap_wire(bytes);
        }
    }
}

/// The outcome and detail of a reqwest send error (before any response head).
pub fn reqwest_send_failure(e: &reqwest::Error) -> SendFailure {
    SendFailure::of_reqwest(e)
}
