//! One response, from either client: reqwest's, or the HTTP/1.1 fast path's
//! ([`super::http1`]), behind the few calls [`super::Exchange`] needs (status, headers,
//! declared length, next body chunk) and the same error classes for both.
//!
//! A body read error is [`BodyError`]: `parse` when the body's framing was malformed (a bad
//! chunk size or chunk end: the fast path's decoder, or hyper's under reqwest), else the
//! connection was lost mid-body. A send error
//! is [`SendFailure`]: reqwest's is classified by [`classify_send_error`] and
//! [`connect_failure_detail`] exactly as before.

use bytes::Bytes;
use hyper::header::HeaderMap;
use hyper::StatusCode;

use super::classify::{classify_send_error, connect_failure_detail, is_parse_error};
use super::http1::H1Response;
pub use super::http1::{BodyError, SendFailure};

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

    /// The next piece of the body, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, BodyError> {
        match self {
            Resp::Reqwest(r) => r.chunk().await.map_err(|e| BodyError {
                parse: is_parse_error(&e),
            }),
            Resp::Http1(r) => r.chunk().await,
        }
    }
}

/// The outcome and detail of a reqwest send error (before any response head).
pub fn reqwest_send_failure(e: &reqwest::Error) -> SendFailure {
    SendFailure {
        outcome: classify_send_error(e),
        detail: if e.is_connect() {
            connect_failure_detail(e)
        } else {
            "connection failed before the response head"
        },
    }
}
