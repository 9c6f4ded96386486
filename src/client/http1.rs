//! The plain-HTTP/1.1 fast path: the load's requests written and their responses read by the
//! request's own task on a pooled connection (the wire format is [`super::wire`]), instead of
//! through reqwest.
//!
//! Why: reqwest (hyper-util's pooled client) parses the URL, clones the header map and boxes
//! futures on every request, and hyper runs a task per connection that hands each response to
//! the request's task through a channel. Here each scenario's request head is serialised once
//! ([`H1Head`]), a request is one `writev` of that head, its `content-length` (and marker) and
//! the shared body `Bytes`, and the request's task reads the response itself: no task per
//! connection, no channel, no header map per request.
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
//!   `TCP_NODELAY` on. A connection is owned by one request at a time (or by the pool while
//!   idle); dropping it closes the socket.
//! - Pool: idle connections of the one target, at most `cap` (the smaller of
//!   `pool_max_idle_per_host` and the run's most concurrent requests; 0 keeps none), last in
//!   first out; an idle connection older than `pool_idle_timeout` is closed at the next
//!   checkout. A connection goes back only once its response body was read to its end (a
//!   complete body, or a drain that reached the end) with no byte after it; anything else — a
//!   cancelled or aborted request, a timeout, a protocol error, a drain cut off at its cap —
//!   drops it, which closes the connection (the client-abort behaviour soakd measures). As in
//!   hyper, a response dropped early gets one more step over what is already buffered: when
//!   that ends its body (the rest had arrived with it), the connection goes back.
//! - Checkout: the newest idle connection is tested with a non-blocking read: one the server
//!   closed (end of file, a reset) or that holds unexpected bytes is dropped and the next is
//!   tried, then a new connection. A request whose write fails on a reused connection (the
//!   server closed it as it was handed out) is retried once on a new one; once the request is
//!   written it is never sent again (a proxy that drops it is measured, not hidden).
//! - Buffers: one read buffer per connection, [`READ_BUF`] bytes, grown only while a response
//!   head is larger (up to [`super::wire::MAX_HEAD_BYTES`] and the read that completes it);
//!   body pieces are handed out as `Bytes` split off it, without a copy. The request is
//!   written from the scenario's head, a small per-request tail and the body, with no write
//!   buffer.
//!
//! Deadlines: the response head must arrive by the request's deadline and each body read by
//! the caller's; both are checked explicitly before every read (`Instant::now() >= deadline`),
//! and a read that waits is bounded by a timer as well. The explicit check is what holds the
//! deadline while bytes are always ready: tokio's timeout polls the read first and its timer
//! only once the read is pending, which a fast peer can postpone indefinitely.
//!
//! Errors map to the same outcomes and `detail` strings as reqwest's ([`SendFailure`], written
//! in [`super::classify`] for both): a failed connect is `connect_error` with
//! [`super::classify::io_connect_detail`]'s reason; a response head that does not parse (or is
//! over its limits, see [`super::wire`]) is `protocol_error`; a connection lost before the
//! head is `connect_error`. In a body, malformed chunked framing or a framing cap crossed is a
//! parse error (`protocol_error`), a connection lost or closed short of the body's length is
//! not.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, HOST, USER_AGENT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::classify::io_connect_detail;
pub use super::classify::SendFailure;
use super::wire::{self, BodyFault, BodyReader, BodyStep, Framing, ResponseHead};
use super::{ClientSettings, HttpVersion, RequestSpec};

/// The environment variable that turns the fast path off: `SOAKD_HTTP_CLIENT=reqwest`.
pub const CLIENT_ENV: &str = "SOAKD_HTTP_CLIENT";

/// Proxy variables that reqwest applies to an `http://` target.
const PROXY_ENV: [&str; 4] = ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"];

/// A connection's read buffer, and how much is reserved whenever it runs low.
pub const READ_BUF: usize = 4096;

/// A body that could not be read to its end (either client's: [`super::response`] uses it for
/// reqwest's too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyError {
    /// The framing was malformed or over a cap (else the connection was lost).
    pub parse: bool,
}

/// The deadline passed before the next piece of a body (either client's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut;

/// A scenario's request head, serialised once: request line and every header but the
/// per-request `content-length` and marker.
#[derive(Debug, Clone)]
pub struct H1Head {
    prefix: Bytes,
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
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return None;
        }
        let mut headers = HeaderMap::with_capacity(spec.headers.len() + 3);
        headers.insert(HOST, HeaderValue::from_str(&host).ok()?);
        if let Ok(ua) = HeaderValue::from_str(user_agent) {
            headers.insert(USER_AGENT, ua);
        }
        headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        for name in spec.headers.keys() {
            headers.remove(name);
        }
        for (name, value) in &spec.headers {
            headers.append(name.clone(), value.clone());
        }
        Some(H1Head {
            prefix: wire::request_prefix(&path, &headers),
        })
    }
}

/// One connection: the socket and its read buffer.
struct Conn {
    io: TcpStream,
    buf: BytesMut,
    /// When it went idle (only meaningful in the pool).
    since: Instant,
}

impl Conn {
    /// Reads what the socket has into the buffer; `Ok(0)` at the end of file.
    async fn fill(&mut self) -> std::io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < READ_BUF / 4 {
            self.buf.reserve(READ_BUF);
        }
        self.io.read_buf(&mut self.buf).await
    }

    /// Whether an idle connection is still open and quiet (a non-blocking read would block).
    fn usable(&self) -> bool {
        let mut probe = [0u8; 1];
        self.buf.is_empty()
            && matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// Writes the request: the scenario's head, this request's tail, the body.
    async fn write_request(&mut self, parts: [&[u8]; 3]) -> std::io::Result<()> {
        let mut done = [0usize; 3];
        loop {
            let slices = [
                IoSlice::new(&parts[0][done[0]..]),
                IoSlice::new(&parts[1][done[1]..]),
                IoSlice::new(&parts[2][done[2]..]),
            ];
            if slices.iter().all(|s| s.is_empty()) {
                return Ok(());
            }
            let mut n = self.io.write_vectored(&slices).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            for (d, p) in done.iter_mut().zip(parts) {
                let step = n.min(p.len() - *d);
                *d += step;
                n -= step;
            }
        }
    }

    /// Reads up to the final response head, by `deadline` (checked before every read, so
    /// endless interim heads end there too).
    async fn read_head(&mut self, deadline: Instant) -> Result<ResponseHead, SendFailure> {
        let mut reader = wire::HeadReader::default();
        loop {
            if let Some(head) = reader.read(&mut self.buf).map_err(SendFailure::head)? {
                return Ok(head);
            }
            if Instant::now() >= deadline {
                return Err(SendFailure::timed_out());
            }
            match timeout_at(deadline, self.fill()).await {
                Err(_) => return Err(SendFailure::timed_out()),
                Ok(Ok(0) | Err(_)) => return Err(SendFailure::lost_before_head()),
                Ok(Ok(_)) => {}
            }
        }
    }
}

/// The fast path's connections to one `http://` target.
pub struct Http1Pool {
    /// `host:port` to connect to.
    addr: String,
    idle: Mutex<VecDeque<Conn>>,
    cap: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
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

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Conn>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends one request with `head`, `body` and, for the two-sided soak, the request's id in
    /// the marker header; returns the response head (by `deadline`), whose body gives the
    /// connection back when read to its end.
    pub async fn send(
        &self,
        head: &H1Head,
        body: Bytes,
        id: Option<&[u8; 16]>,
        deadline: Instant,
    ) -> Result<H1Response<'_>, SendFailure> {
        let tail = wire::RequestTail::new(body.len(), id);
        let parts = [&head.prefix[..], tail.as_bytes(), &body[..]];
        let mut conn = match self.checkout() {
            Some(mut conn) => match conn.write_request(parts).await {
                Ok(()) => conn,
                // Closed as it was handed out: the request never reached the server whole.
                Err(_) => self.connect_and_write(parts).await?,
            },
            None => self.connect_and_write(parts).await?,
        };
        let head = conn.read_head(deadline).await?;
        Ok(H1Response {
            body: BodyReader::new(head.framing),
            head,
            conn: Some(conn),
            pool: self,
            wire_cap: u64::MAX,
        })
    }

    /// The newest idle connection that is still usable, if any.
    fn checkout(&self) -> Option<Conn> {
        let mut idle = self.lock();
        let now = Instant::now();
        while idle
            .front()
            .is_some_and(|c| now.saturating_duration_since(c.since) > self.idle_timeout)
        {
            idle.pop_front();
        }
        while let Some(conn) = idle.pop_back() {
            if conn.usable() {
                return Some(conn);
            }
        }
        None
    }

    /// Gives a connection whose last response was read to its end back to the pool.
    fn put_back(&self, mut conn: Conn) {
        let mut idle = self.lock();
        if idle.len() < self.cap {
            conn.since = Instant::now();
            idle.push_back(conn);
        }
    }

    async fn connect_and_write(&self, parts: [&[u8]; 3]) -> Result<Conn, SendFailure> {
        let mut conn = self.connect().await?;
        conn.write_request(parts)
            .await
            .map_err(|_| SendFailure::lost_before_head())?;
        Ok(conn)
    }

    async fn connect(&self) -> Result<Conn, SendFailure> {
        self.connects.fetch_add(1, Ordering::Relaxed);
        let io = match tokio::time::timeout(
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
        let _ = io.set_nodelay(true);
        Ok(Conn {
            io,
            buf: BytesMut::with_capacity(READ_BUF),
            since: Instant::now(),
        })
    }
}

/// A fast-path response: its head, its body, and its connection until the body ends.
pub struct H1Response<'a> {
    head: ResponseHead,
    body: BodyReader,
    conn: Option<Conn>,
    pool: &'a Http1Pool,
    /// The most raw body bytes to read ([`H1Response::cap_wire`]).
    wire_cap: u64,
}

/// A response dropped before its body's end (a cancel, a timeout, a refused stream) closes
/// its connection, unless one more step over what is already buffered ends the body: as hyper
/// drains one frame of a dropped body, so both clients keep the same connections.
impl Drop for H1Response<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        match self.body.step(&mut conn.buf) {
            Ok(BodyStep::End) => {
                self.finish();
            }
            Ok(BodyStep::Data(_)) if self.body.is_done() => {
                self.finish();
            }
            _ => {}
        }
    }
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
        match self.head.framing {
            Framing::Length(n) => Some(n),
            _ => None,
        }
    }

    /// At most `bytes` more raw body bytes from now on (see [`super::response::Resp::cap_wire`]).
    pub fn cap_wire(&mut self, bytes: u64) {
        self.wire_cap = self.body.wire_bytes().saturating_add(bytes);
    }

    /// The next piece of the body (`None` at its end, which gives the connection back), by
    /// `deadline`: checked before every step, so bytes that are always ready cannot hold it
    /// off (tokio's timeout polls its timer only once the read is pending).
    pub async fn chunk(
        &mut self,
        deadline: Instant,
    ) -> Result<Result<Option<Bytes>, BodyError>, TimedOut> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Ok(Ok(None));
            };
            if Instant::now() >= deadline {
                return Err(TimedOut);
            }
            if self.body.wire_bytes() > self.wire_cap {
                return Ok(Err(self.fail(BodyFault::Malformed)));
            }
            let eof = match self.body.step(&mut conn.buf) {
                Ok(BodyStep::Data(b)) => return Ok(Ok(Some(b))),
                Ok(BodyStep::End) => return Ok(Ok(self.finish())),
                Err(f) => return Ok(Err(self.fail(f))),
                Ok(BodyStep::NeedMore) => match timeout_at(deadline, conn.fill()).await {
                    Err(_) => return Err(TimedOut),
                    Ok(Ok(0)) => true,
                    Ok(Err(_)) => return Ok(Err(self.fail(BodyFault::Lost))),
                    Ok(Ok(_)) => false,
                },
            };
            if eof {
                return Ok(match self.body.at_eof() {
                    Ok(_) => {
                        self.conn = None;
                        Ok(None)
                    }
                    Err(f) => Err(self.fail(f)),
                });
            }
        }
    }

    /// The body ended: the connection goes back when it may carry another request.
    fn finish(&mut self) -> Option<Bytes> {
        if let Some(conn) = self.conn.take() {
            if wire::reusable(&self.head, &conn.buf) {
                self.pool.put_back(conn);
            }
        }
        None
    }

    /// The body failed: the connection is closed.
    fn fail(&mut self, f: BodyFault) -> BodyError {
        self.conn = None;
        BodyError {
            parse: f == BodyFault::Malformed,
        }
    }
}
