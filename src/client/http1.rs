//! The plain-HTTP/1.1 fast path: the load's requests sent on hyper's connection API
//! (`hyper::client::conn::http1`), with a small pool of our own, instead of through reqwest.
//!
//! Why: reqwest (hyper-util's pooled client) parses the URL, clones the header map and boxes
//! futures on every request and hands each response from the connection task to the request
//! task through a pool checkout and a oneshot; the fast path builds each scenario's request
//! head once ([`H1Head`]) and shares the body `Bytes`.
//!
//! When it is used ([`Http1Pool::for_target`]): **all** of
//! - the target URL's scheme is `http` (TLS, ALPN and HTTP/2 stay with reqwest),
//! - `target.http` is `auto` or `http1` (on `http://`, `auto` is HTTP/1.1 in reqwest too);
//!   `http2` (prior knowledge) goes through reqwest,
//! - none of `HTTP_PROXY`, `http_proxy`, `ALL_PROXY`, `all_proxy` is set to a non-empty value
//!   (reqwest would proxy an `http://` target through them; `NO_PROXY` is not evaluated: any
//!   proxy variable sends the whole run through reqwest, which applies `NO_PROXY` itself),
//! - `SOAKD_HTTP_CLIENT` is not `reqwest` (the escape hatch; any other value, or none, allows
//!   the fast path).
//!
//! Otherwise every request goes through reqwest exactly as before.
//!
//! What each request sends: `POST`, the path and query of the scenario's URL, `host` (the URL's
//! host, with the port when it is not 80), `user-agent` and `accept: */*` (as reqwest sends
//! them), the scenario's headers (content type, auth, extra headers; a scenario header
//! overrides any of the former), `content-length` from the body, and the two-sided marker
//! header when the request carries a soakd id.
//!
//! Connections:
//! - Connect: `host:port` resolved and connected by tokio within `target.connect_timeout`,
//!   `TCP_NODELAY` on, one spawned task per connection driving hyper's `Connection` (it ends
//!   when the connection closes or every handle to it is dropped).
//! - Pool: idle connections of the one target, at most `cap` (the smaller of
//!   `pool_max_idle_per_host` and the run's most concurrent requests; 0 keeps none), last in
//!   first out; an idle connection older than `pool_idle_timeout` is closed at the next
//!   checkout. A connection goes back only once its response body was read to its end (a
//!   complete body, or a drain that reached the end); anything else — a cancelled or aborted
//!   request, a timeout, a protocol error, a drain cut off at its cap — drops it, which closes
//!   the connection (the client-abort behaviour soakd measures).
//! - Checkout: an idle connection whose task has not yet taken up the next request is awaited
//!   (`SendRequest::ready`); one that closed meanwhile is dropped and the next is tried, then a
//!   new connection. A request that hyper could not even start on a reused connection (the
//!   server closed it as it was handed out, `is_canceled`) is retried once on a new one, as
//!   hyper-util's client does.
//! - Buffers: hyper's HTTP/1 defaults (an 8 KiB read buffer that grows only for large reads,
//!   headers written from an 8 KiB buffer).
//!
//! Errors map to the same outcomes and `detail` strings as reqwest's: a failed connect is
//! `connect_error` with [`super::classify::io_connect_detail`]'s reason; a hyper error before
//! the response head is `protocol_error` when the head did not parse, else `connect_error`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{Builder, SendRequest};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, HOST, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::classify::io_connect_detail;
use super::outcome::Outcome;
use super::{ClientSettings, HttpVersion, RequestSpec};

/// The environment variable that turns the fast path off: `SOAKD_HTTP_CLIENT=reqwest`.
pub const CLIENT_ENV: &str = "SOAKD_HTTP_CLIENT";

/// Proxy variables that reqwest applies to an `http://` target.
const PROXY_ENV: [&str; 4] = ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"];

/// A request that failed before its response head: the outcome and the warning's detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendFailure {
    pub outcome: Outcome,
    pub detail: &'static str,
}

impl SendFailure {
    fn connect(detail: &'static str) -> Self {
        SendFailure {
            outcome: Outcome::ConnectError,
            detail,
        }
    }

    /// A hyper error before the response head (the connection was up).
    fn from_hyper(e: &hyper::Error) -> Self {
        SendFailure {
            outcome: if e.is_parse() || e.is_parse_status() {
                Outcome::ProtocolError
            } else {
                Outcome::ConnectError
            },
            detail: "connection failed before the response head",
        }
    }
}

/// The request body: one shared `Bytes`, sent with its exact length.
pub struct ReqBody(Option<Bytes>);

impl Body for ReqBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.take().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.as_ref().is_none_or(|b| b.is_empty())
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.as_ref().map_or(0, |b| b.len() as u64))
    }
}

/// A scenario's request head, built once: path and query, and every header but the marker.
#[derive(Debug, Clone)]
pub struct H1Head {
    uri: Uri,
    headers: HeaderMap,
}

impl H1Head {
    /// The head of `spec`'s requests, with `user_agent`.
    pub fn new(spec: &RequestSpec, user_agent: &str) -> Option<H1Head> {
        let url = &spec.url;
        let host = url.host_str()?;
        let host = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let uri: Uri = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
        .parse()
        .ok()?;
        let mut headers = spec.headers.clone();
        if let Ok(ua) = HeaderValue::from_str(user_agent) {
            headers.entry(USER_AGENT).or_insert(ua);
        }
        headers
            .entry(ACCEPT)
            .or_insert(HeaderValue::from_static("*/*"));
        headers
            .entry(HOST)
            .or_insert(HeaderValue::from_str(&host).ok()?);
        Some(H1Head { uri, headers })
    }

    fn request(&self, body: Bytes, marker: Option<(HeaderName, HeaderValue)>) -> Request<ReqBody> {
        let mut req = Request::new(ReqBody(Some(body)));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        if let Some((n, v)) = marker {
            req.headers_mut().insert(n, v);
        }
        req
    }
}

struct Idle {
    tx: SendRequest<ReqBody>,
    since: Instant,
}

/// The fast path's connections to one `http://` target.
pub struct Http1Pool {
    /// `host:port` to connect to.
    addr: String,
    idle: Mutex<VecDeque<Idle>>,
    cap: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
    builder: Builder,
    connects: AtomicU64,
}

impl std::fmt::Debug for Http1Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http1Pool")
            .field("addr", &self.addr)
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }
}

impl Http1Pool {
    /// The fast path for `target`, when the rules of the module doc allow it (read from the
    /// process environment); `max_concurrent` is the run's most requests at once.
    pub fn for_target(
        target: &url::Url,
        s: &ClientSettings,
        max_concurrent: usize,
    ) -> Option<Http1Pool> {
        Self::for_target_with_env(target, s, max_concurrent, &|k| std::env::var(k).ok())
    }

    /// [`Http1Pool::for_target`] with the environment given as a lookup.
    pub fn for_target_with_env(
        target: &url::Url,
        s: &ClientSettings,
        max_concurrent: usize,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Http1Pool> {
        if target.scheme() != "http" || s.http == HttpVersion::Http2PriorKnowledge {
            return None;
        }
        if env(CLIENT_ENV).is_some_and(|v| v.trim().eq_ignore_ascii_case("reqwest")) {
            return None;
        }
        if PROXY_ENV
            .iter()
            .any(|k| env(k).is_some_and(|v| !v.trim().is_empty()))
        {
            return None;
        }
        let host = target.host_str()?;
        let port = target.port_or_known_default()?;
        Some(Http1Pool {
            addr: format!("{host}:{port}"),
            idle: Mutex::new(VecDeque::new()),
            cap: s.pool_max_idle_per_host.min(max_concurrent),
            idle_timeout: s.pool_idle_timeout,
            connect_timeout: s.connect_timeout,
            builder: Builder::new(),
            connects: AtomicU64::new(0),
        })
    }

    /// Connections opened so far.
    pub fn connections_opened(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    /// Idle connections held now.
    pub fn idle(&self) -> usize {
        self.lock().len()
    }

    /// The most idle connections held.
    pub fn cap(&self) -> usize {
        self.cap
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Idle>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends one request with `head`, `body` and the optional marker header; returns the
    /// response head, whose body gives the connection back when read to its end.
    pub async fn send(
        &self,
        head: &H1Head,
        body: Bytes,
        marker: Option<(HeaderName, HeaderValue)>,
    ) -> Result<H1Response<'_>, SendFailure> {
        let req = head.request(body, marker);
        let (mut tx, reused) = match self.checkout().await {
            Some(tx) => (tx, true),
            None => (self.connect().await?, false),
        };
        let resp = match tx.try_send_request(req).await {
            Ok(r) => r,
            Err(mut e) => match e.take_message() {
                // Never started on a connection the server closed as it was handed out.
                Some(req) if reused && e.error().is_canceled() => {
                    tx = self.connect().await?;
                    tx.send_request(req)
                        .await
                        .map_err(|e| SendFailure::from_hyper(&e))?
                }
                _ => return Err(SendFailure::from_hyper(e.error())),
            },
        };
        let (parts, body) = resp.into_parts();
        Ok(H1Response {
            head: parts,
            body,
            conn: Some(tx),
            pool: self,
        })
    }

    /// An idle connection ready for a request, if any.
    async fn checkout(&self) -> Option<SendRequest<ReqBody>> {
        loop {
            let mut tx = {
                let mut idle = self.lock();
                let now = Instant::now();
                while idle
                    .front()
                    .is_some_and(|i| now.saturating_duration_since(i.since) > self.idle_timeout)
                {
                    idle.pop_front();
                }
                idle.pop_back()?.tx
            };
            if tx.is_ready() {
                return Some(tx);
            }
            if tx.is_closed() {
                continue;
            }
            // Its task has not yet picked up the end of the last response.
            if tx.ready().await.is_ok() {
                return Some(tx);
            }
        }
    }

    /// Gives a connection whose last response was read to its end back to the pool.
    fn put_back(&self, tx: SendRequest<ReqBody>) {
        if tx.is_closed() {
            return;
        }
        let mut idle = self.lock();
        if idle.len() < self.cap {
            idle.push_back(Idle {
                tx,
                since: Instant::now(),
            });
        }
    }

    async fn connect(&self) -> Result<SendRequest<ReqBody>, SendFailure> {
        self.connects.fetch_add(1, Ordering::Relaxed);
        let stream = match tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect(self.addr.as_str()),
        )
        .await
        {
            Err(_) => return Err(SendFailure::connect("connect failed: timed out")),
            Ok(Err(e)) => {
                return Err(SendFailure::connect(
                    io_connect_detail(&e).unwrap_or("connect failed"),
                ))
            }
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        let (tx, conn) = self
            .builder
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|_| SendFailure::connect("connect failed"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(tx)
    }
}

/// A fast-path response: its head, its body, and its connection until the body ends.
pub struct H1Response<'a> {
    head: hyper::http::response::Parts,
    body: Incoming,
    conn: Option<SendRequest<ReqBody>>,
    pool: &'a Http1Pool,
}

impl H1Response<'_> {
    pub fn status(&self) -> hyper::StatusCode {
        self.head.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.head.headers
    }

    /// The body's length when the head declared it.
    pub fn content_length(&self) -> Option<u64> {
        self.body.size_hint().exact()
    }

    /// The next piece of the body (`None` at its end, which gives the connection back).
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, hyper::Error> {
        loop {
            let frame = std::future::poll_fn(|cx| Pin::new(&mut self.body).poll_frame(cx)).await;
            match frame {
                None => {
                    if let Some(tx) = self.conn.take() {
                        self.pool.put_back(tx);
                    }
                    return Ok(None);
                }
                Some(Err(e)) => {
                    self.conn = None;
                    return Err(e);
                }
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        if !data.is_empty() {
                            return Ok(Some(data));
                        }
                    }
                }
            }
        }
    }
}
