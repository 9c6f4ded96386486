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
//! A connect failure's warning says why ([`connect_failure_detail`]): the error's source chain
//! is searched for a rustls error (directly, or inside the `io::Error` that carries it out of
//! the TLS stream) and then for an I/O error kind, and the first match picks one of a fixed set
//! of static strings, e.g. `connect failed: TLS: certificate signed by an unknown issuer
//! (UnknownIssuer)`. The detail never holds a URL, a host or anything from the peer, so it stays
//! low-cardinality and safe to log.
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

/// Why a connect failed, for the warning's `detail`: one of a fixed set of static strings
/// (TLS failures by kind, refused, reset, timed out), else `"connect failed"`.
pub fn connect_failure_detail(e: &reqwest::Error) -> &'static str {
    let mut io_detail = None;
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    // Bounded: a source chain is finite, but never trust it to be short.
    for _ in 0..32 {
        let Some(s) = src else { break };
        if let Some(t) = s.downcast_ref::<rustls::Error>() {
            return tls_failure_detail(t);
        }
        src = match s.downcast_ref::<std::io::Error>() {
            Some(io) => {
                io_detail = io_detail.or(io_connect_detail(io));
                // io::Error::source() skips the error it wraps (often another io::Error
                // around the rustls one); step into it instead.
                match io.get_ref() {
                    Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                    None => s.source(),
                }
            }
            None => s.source(),
        };
    }
    match io_detail {
        Some(d) => d,
        None if e.is_timeout() => "connect failed: timed out",
        None => "connect failed",
    }
}

/// Why a connect failed, from the I/O error's kind alone: refused, reset or timed out;
/// `None` for any other kind.
pub fn io_connect_detail(io: &std::io::Error) -> Option<&'static str> {
    match io.kind() {
        std::io::ErrorKind::ConnectionRefused => Some("connect failed: connection refused"),
        std::io::ErrorKind::ConnectionReset => Some("connect failed: connection reset"),
        std::io::ErrorKind::TimedOut => Some("connect failed: timed out"),
        _ => None,
    }
}

/// A short, static description of a TLS failure.
pub fn tls_failure_detail(e: &rustls::Error) -> &'static str {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => {
                "connect failed: TLS: certificate signed by an unknown issuer (UnknownIssuer)"
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "connect failed: TLS: certificate not valid for the target host (NotValidForName)"
            }
            C::Expired | C::ExpiredContext { .. } => {
                "connect failed: TLS: certificate expired (Expired)"
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "connect failed: TLS: certificate not valid yet (NotValidYet)"
            }
            C::Revoked => "connect failed: TLS: certificate revoked (Revoked)",
            C::BadSignature => "connect failed: TLS: bad certificate signature (BadSignature)",
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                "connect failed: TLS: certificate not valid for server authentication \
                 (InvalidPurpose)"
            }
            C::BadEncoding => "connect failed: TLS: malformed certificate (BadEncoding)",
            _ => "connect failed: TLS: invalid peer certificate",
        },
        rustls::Error::NoCertificatesPresented => {
            "connect failed: TLS: the server sent no certificate"
        }
        rustls::Error::AlertReceived(_) => "connect failed: TLS: the server sent a handshake alert",
        rustls::Error::NoApplicationProtocol => {
            "connect failed: TLS: no common ALPN protocol with the server"
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "connect failed: TLS: invalid handshake message (is the target speaking TLS?)"
        }
        rustls::Error::PeerIncompatible(_) => {
            "connect failed: TLS: no TLS version or cipher suite in common with the server"
        }
        rustls::Error::PeerMisbehaved(_) => {
            "connect failed: TLS: the server broke the handshake protocol"
        }
        _ => "connect failed: TLS handshake failed",
    }
}

/// Whether a body read error was a malformed message rather than a lost connection: hyper's
/// parse error, or the invalid-input I/O error its chunked decoder reports (a bad chunk size
/// line or chunk end), so both clients call malformed framing a protocol error.
pub fn is_parse_error(e: &reqwest::Error) -> bool {
    for s in sources(e) {
        if s.downcast_ref::<hyper::Error>()
            .is_some_and(|h| h.is_parse())
        {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
            );
        }
    }
    false
}

fn hyper_error(e: &reqwest::Error) -> Option<&hyper::Error> {
    sources(e).find_map(|s| s.downcast_ref::<hyper::Error>())
}

/// The error's causes, outermost first.
fn sources<'a>(
    e: &'a reqwest::Error,
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(e.source(), |&s| s.source())
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
    /// Logs a failed request, rate limited. Never logs headers; an HTTP error's body only as
    /// its redacted one-line excerpt ([`super::error_body::excerpt`]), in `body`.
    pub fn warn(
        &self,
        scenario: &str,
        outcome: Outcome,
        status: Option<u16>,
        detail: &str,
        body: Option<&str>,
    ) {
        if let Some(suppressed) = self.0.admit(outcome.index()) {
            tracing::warn!(
                scenario,
                outcome = outcome.as_str(),
                status,
                detail,
                body,
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

    #[test]
    fn tls_failures_get_fixed_short_details() {
        use rustls::CertificateError as C;
        let d = |e: rustls::Error| tls_failure_detail(&e);
        assert!(d(rustls::Error::InvalidCertificate(C::UnknownIssuer)).contains("UnknownIssuer"));
        assert!(
            d(rustls::Error::InvalidCertificate(C::NotValidForName)).contains("NotValidForName")
        );
        assert!(d(rustls::Error::InvalidCertificate(C::Expired)).contains("expired"));
        assert!(d(rustls::Error::NoApplicationProtocol).contains("ALPN"));
        assert_eq!(
            d(rustls::Error::General(
                "peer said https://secret.example/".into()
            )),
            "connect failed: TLS handshake failed"
        );
        // Static strings only: nothing from the error reaches the detail.
        assert_eq!(
            d(rustls::Error::InvalidCertificate(C::Other(
                rustls::OtherError(std::sync::Arc::new(std::io::Error::other(
                    "https://x.example"
                )))
            ))),
            "connect failed: TLS: invalid peer certificate"
        );
    }

    async fn send_error(url: &str) -> reqwest::Error {
        let client = crate::client::build_http_client(&crate::client::ClientSettings {
            connect_timeout: Duration::from_secs(5),
            ..Default::default()
        })
        .unwrap();
        tokio::time::timeout(Duration::from_secs(20), client.get(url).send())
            .await
            .expect("request did not end")
            .expect_err("request must fail")
    }

    #[tokio::test]
    async fn refused_connect_says_refused() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let e = send_error(&format!("http://{addr}/")).await;
        assert_eq!(classify_send_error(&e), Outcome::ConnectError);
        assert_eq!(
            connect_failure_detail(&e),
            "connect failed: connection refused"
        );
    }

    #[tokio::test]
    async fn https_to_a_plain_http_server_names_the_tls_failure() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut sock, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
        });
        let e = send_error(&format!("https://{addr}/")).await;
        assert_eq!(classify_send_error(&e), Outcome::ConnectError);
        assert_eq!(
            connect_failure_detail(&e),
            "connect failed: TLS: invalid handshake message (is the target speaking TLS?)"
        );
        tokio::time::timeout(Duration::from_secs(20), server)
            .await
            .unwrap()
            .unwrap();
    }
}
