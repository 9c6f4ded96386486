//! Outcome classification and rate-limited failure warnings.
//!
//! Statuses: 2xx go on to body checks; 429 → `http_429`; other 4xx → `http_4xx`; 5xx →
//! `http_5xx`; anything else (1xx/3xx: redirects are not followed) → `protocol_error`.
//!
//! Transport errors before a response: connect failures (refused, DNS, TLS, connect timeout)
//! and connections closed or reset before the response head → `connect_error`; a response head
//! that is not HTTP → `protocol_error`. Timeouts are applied by the caller and never reach
//! here.
//!
//! Per-request failures go to metrics; logs get at most one warning per outcome per window
//! ([`RequestWarnings`]), carrying the count of warnings suppressed since the last one.

use std::error::Error as _;
use std::time::Duration;

use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::StatusCode;

use super::outcome::Outcome;
use crate::telemetry::WarnLimiter;

/// The outcome a status decides on its own, or `None` for 2xx (the body decides).
pub fn classify_status(status: StatusCode) -> Option<Outcome> {
    match status.as_u16() {
        200..=299 => None,
        429 => Some(Outcome::Http429),
        400..=499 => Some(Outcome::Http4xx),
        500..=599 => Some(Outcome::Http5xx),
        _ => Some(Outcome::ProtocolError),
    }
}

/// The outcome of an error from `send()` (before any response head).
pub fn classify_send_error(e: &reqwest::Error) -> Outcome {
    if e.is_connect() {
        return Outcome::ConnectError;
    }
    if hyper_error(e).is_some_and(|h| h.is_parse() || h.is_parse_status()) {
        return Outcome::ProtocolError;
    }
    Outcome::ConnectError
}

/// Whether a body read error was a malformed message rather than a lost connection.
pub fn is_parse_error(e: &reqwest::Error) -> bool {
    hyper_error(e).is_some_and(|h| h.is_parse())
}

fn hyper_error(e: &reqwest::Error) -> Option<&hyper::Error> {
    let mut src = e.source();
    while let Some(s) = src {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            return Some(h);
        }
        src = s.source();
    }
    None
}

/// Whether a response is an SSE stream: `text/event-stream`, any case, any parameters.
pub fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("text/event-stream"))
}

/// Window of [`RequestWarnings`]: at most one warning per outcome per 10 s per scenario.
pub const WARN_WINDOW: Duration = Duration::from_secs(10);

/// A scenario's rate-limited "request failed" warnings: one per outcome per [`WARN_WINDOW`],
/// each carrying the count of warnings suppressed since the last one.
#[derive(Debug)]
pub struct RequestWarnings(WarnLimiter);

impl Default for RequestWarnings {
    fn default() -> Self {
        RequestWarnings(WarnLimiter::new(Outcome::ALL.len(), WARN_WINDOW))
    }
}

impl RequestWarnings {
    /// Logs a failed request, rate limited. Never logs bodies or headers.
    pub fn warn(&self, scenario: &str, outcome: Outcome, status: Option<u16>, detail: &str) {
        if let Some(suppressed) = self.0.admit(outcome.index()) {
            tracing::warn!(
                scenario,
                outcome = outcome.as_str(),
                status,
                detail,
                suppressed,
                "request failed"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn statuses() {
        let c = |n: u16| classify_status(StatusCode::from_u16(n).unwrap());
        assert_eq!(c(200), None);
        assert_eq!(c(204), None);
        assert_eq!(c(429), Some(Outcome::Http429));
        assert_eq!(c(400), Some(Outcome::Http4xx));
        assert_eq!(c(499), Some(Outcome::Http4xx));
        assert_eq!(c(500), Some(Outcome::Http5xx));
        assert_eq!(c(503), Some(Outcome::Http5xx));
        assert_eq!(c(302), Some(Outcome::ProtocolError));
        assert_eq!(c(101), Some(Outcome::ProtocolError));
    }

    #[test]
    fn event_stream_content_types() {
        let ct = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            is_event_stream(&h)
        };
        assert!(ct("text/event-stream"));
        assert!(ct("text/event-stream; charset=utf-8"));
        assert!(ct("Text/Event-Stream;charset=UTF-8"));
        assert!(ct(" text/event-stream "));
        assert!(!ct("application/json"));
        assert!(!ct("text/event-streamx"));
        assert!(!is_event_stream(&HeaderMap::new()));
    }
}
