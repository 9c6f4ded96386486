//! HTTP/1.1 on the wire for the fast path ([`super::http1`]): the request head written once per
//! scenario, the response head parsed (with `httparse`) into status, headers and framing, and
//! the body read by [`BodyReader`] (the chunked coding by [`super::chunked`]). No I/O here:
//! [`super::http1`] owns the socket and its buffer, so the differential fuzzing and the property
//! tests run exactly this code against hyper's.
//!
//! Every decision a response's bytes lead to is hyper's (the client under reqwest), so both
//! clients give the same outcome, the same body and the same connection reuse for any bytes;
//! where RFC 9112 leaves a choice, hyper's choice is the rule here:
//! - **Request:** `POST <path?query> HTTP/1.1`, then the scenario's headers in the order given,
//!   less any `content-length`, `transfer-encoding` or `connection` a scenario set (soakd frames
//!   the body itself); per request `content-length: N`, the optional marker header, the blank
//!   line and the body.
//! - **Response head:** at most [`MAX_HEADERS`] headers (hyper's default); a head still partial
//!   once [`MAX_HEAD_BYTES`] are buffered (hyper's read buffer limit) is
//!   [`HeadError::TooLarge`]. As in hyper, the limit is on the partial head: a head completed by
//!   the read that crosses it passes, so a head just over it passes or not by where the reads
//!   fall, in both clients alike (found by the differential fuzzing, `docs/fuzzing.md`).
//!   Leading empty lines are skipped (`httparse`). Interim `1xx` heads (`100 Continue`, `103 Early Hints`) are skipped
//!   and not counted against the limit (as in hyper: the request deadline bounds them);
//!   `101 Switching Protocols` is a final head without a body that ends the connection (the
//!   status is then a protocol error).
//! - **Framing, in order (RFC 9112 §6.3):** a `101`, `204` or `304` has no body. With a
//!   `transfer-encoding` header: an HTTP/1.0 response is refused (§6.1: a client MUST treat it
//!   as faulty; [`HeadError::TransferEncodingOnHttp10`]); if the last coding of the last such
//!   header is `chunked` the body is chunked (any `content-length` is ignored, even an invalid
//!   one), else it runs to the close. Without one: `content-length` is the length (every value
//!   of every such header must be digits, any number of leading zeros, and all equal; else
//!   [`HeadError::BadLength`]); else the body runs to the close.
//! - **Keep-alive:** an HTTP/1.1 response keeps the connection unless a `connection` header
//!   holds `close` (a later `keep-alive` does not undo it); an HTTP/1.0 response only with
//!   `keep-alive`; a header value with bytes outside visible ASCII holds no token (as hyper
//!   reads it). A body that runs to the close, or a `101`, never keeps it. The connection is
//!   reused only when the body was read to its end and no byte follows it.
//! - **Caps, every framing byte counted:** the head as above; the chunked coding's extensions
//!   and trailer section ([`super::chunked`]); [`BodyReader::wire_bytes`] counts the body's
//!   raw bytes, which the drain caps. Crossing a cap is a protocol error and closes the
//!   connection.

use bytes::{Buf, Bytes, BytesMut};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::StatusCode;

pub use super::chunked::{ChunkError, ChunkedDecoder, Decoded};
use crate::upstream::marker::ID_HEADER;

/// The most headers a response head may carry (hyper's default).
pub const MAX_HEADERS: usize = 100;
/// The largest response head (hyper's default read buffer limit, 408 KiB).
pub const MAX_HEAD_BYTES: usize = 8192 + 4096 * 100;
/// The largest `content-length` (hyper's; larger is [`HeadError::TooLarge`]).
pub const MAX_LENGTH: u64 = u64::MAX - 2;

/// Builds a scenario's request head up to (not including) the per-request `content-length`.
pub fn request_prefix<'a>(
    path_and_query: &str,
    headers: impl IntoIterator<Item = (&'a HeaderName, &'a HeaderValue)>,
) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(path_and_query.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            continue;
        }
        push_header(&mut out, name.as_str().as_bytes(), value.as_bytes());
    }
    Bytes::from(out)
}

fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The longest [`RequestTail`]: `content-length: ` and 20 digits, the marker header with its
/// 16 hex digits, three line ends.
const TAIL_MAX: usize = 96;

/// The per-request end of the head — `content-length`, the two-sided marker header
/// (`x-soakd-request-id`) when the request carries an id, the blank line — built in place,
/// without an allocation.
pub struct RequestTail {
    buf: [u8; TAIL_MAX],
    len: usize,
}

impl RequestTail {
    pub fn new(body_len: usize, id: Option<&[u8; 16]>) -> RequestTail {
        let mut t = RequestTail {
            buf: [0; TAIL_MAX],
            len: 0,
        };
        t.push(b"content-length: ");
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut n = body_len;
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        t.push(&digits[at..]);
        t.push(b"\r\n");
        if let Some(id) = id {
            t.push(ID_HEADER.as_bytes());
            t.push(b": ");
            t.push(id);
            t.push(b"\r\n");
        }
        t.push(b"\r\n");
        t
    }

    fn push(&mut self, b: &[u8]) {
        self.buf[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// How a response's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything up to the close (never reusable).
    Close,
}

/// A parsed response head.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// The connection may carry another request after this response.
    pub keep_alive: bool,
}

/// Why a response head was refused (the warning texts: [`super::classify::SendFailure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// Not HTTP/1.x, a bad status line or header.
    Malformed,
    /// Over [`MAX_HEADERS`] headers, a partial head of [`MAX_HEAD_BYTES`] (or a length over
    /// [`MAX_LENGTH`]).
    TooLarge,
    /// Conflicting or non-numeric `content-length`.
    BadLength,
    /// `transfer-encoding` in an HTTP/1.0 response.
    TransferEncodingOnHttp10,
}

/// Reads one response's head from the front of a connection's buffer as bytes arrive, judging
/// it when hyper would: on the first read, and later only once the bytes since the last try
/// hold the end of a head (hyper's `is_complete_fast`). A head that is malformed but never
/// complete before the peer closes is then "lost before the head" in both clients, not
/// "malformed" in one of them.
#[derive(Debug, Default)]
pub struct HeadReader {
    /// The buffer's length at the last try that found the head partial.
    partial: Option<usize>,
}

impl HeadReader {
    /// Tries the buffer after a read: the head when complete (consumed, with any interim heads
    /// before it), `Ok(None)` when more bytes are needed.
    pub fn read(&mut self, buf: &mut BytesMut) -> Result<Option<ResponseHead>, HeadError> {
        if buf.is_empty() {
            self.partial = None;
            return Ok(None);
        }
        let judge = self.partial.is_none_or(|prev| holds_head_end(buf, prev));
        if judge {
            if let Some(head) = parse_head(buf)? {
                self.partial = None;
                return Ok(Some(head));
            }
        }
        if buf.len() >= MAX_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
        self.partial = (!buf.is_empty()).then_some(buf.len());
        Ok(None)
    }
}

/// Whether the bytes from `prev - 3` on hold a head's end (CRLFCRLF, LFLF or LFCRLF).
fn holds_head_end(buf: &[u8], prev: usize) -> bool {
    let b = &buf[prev.saturating_sub(3).min(buf.len())..];
    (0..b.len()).any(|i| match b[i] {
        b'\r' => b[i + 1..].starts_with(b"\n\r\n"),
        b'\n' => b[i + 1..].starts_with(b"\n") || b[i + 1..].starts_with(b"\r\n"),
        _ => false,
    })
}

/// Parses the first complete, final response head at the front of `buf`, consuming it (and
/// any interim `1xx` heads before it). `Ok(None)`: more bytes are needed.
pub fn parse_head(buf: &mut BytesMut) -> Result<Option<ResponseHead>, HeadError> {
    loop {
        // Uninitialised slots: a head parse writes only the headers it finds.
        let mut slots =
            [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut resp, buf, &mut slots);
        // A complete head passes whatever its length, as in hyper: the cap is on a partial
        // head, so a head is at most MAX_HEAD_BYTES plus the read that completed it.
        let len = match parsed {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => {
                return Err(HeadError::TooLarge)
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
            Err(_) => return Err(HeadError::Malformed),
        };
        let code = resp.code.ok_or(HeadError::Malformed)?;
        let status = StatusCode::from_u16(code).map_err(|_| HeadError::Malformed)?;
        if code == 100 || (102..200).contains(&code) {
            buf.advance(len);
            continue;
        }
        let http10 = resp.version != Some(1);
        // Where each header's name and value sit in the head, so both can be read again
        // (the values sharing its bytes) once the head is split off the buffer.
        let base = buf.as_ptr() as usize;
        // (u32: a head is at most MAX_HEAD_BYTES and one read, far below 4 GiB.)
        let mut spans = [(0u32, 0u32, 0u32, 0u32); MAX_HEADERS];
        let count = resp.headers.len();
        for (slot, h) in spans.iter_mut().zip(resp.headers.iter()) {
            *slot = (
                (h.name.as_ptr() as usize - base) as u32,
                h.name.len() as u32,
                (h.value.as_ptr() as usize - base) as u32,
                h.value.len() as u32,
            );
        }
        let head = buf.split_to(len).freeze();
        let mut headers = HeaderMap::with_capacity(count);
        let mut te = None;
        let mut length = Length::Absent;
        let mut keep_alive = !http10;
        let mut close = false;
        for &(name_at, name_len, at, n) in &spans[..count] {
            let (name_at, name_len, at, n) =
                (name_at as usize, name_len as usize, at as usize, n as usize);
            let name = HeaderName::from_bytes(&head[name_at..name_at + name_len])
                .map_err(|_| HeadError::Malformed)?;
            let raw = &head[at..at + n];
            match name.as_str() {
                "transfer-encoding" => te = Some(last_coding_is_chunked(raw)),
                "content-length" => length = length.and(raw),
                "connection" => {
                    if close || has_token(raw, b"close") {
                        close = true;
                        keep_alive = false;
                    } else if !keep_alive {
                        keep_alive = has_token(raw, b"keep-alive");
                    }
                }
                _ => {}
            }
            let value = HeaderValue::from_maybe_shared(head.slice(at..at + n))
                .map_err(|_| HeadError::Malformed)?;
            headers.append(name, value);
        }
        let framing = match (code, te, length) {
            (101 | 204 | 304, _, _) => Framing::Length(0),
            (_, Some(_), _) if http10 => return Err(HeadError::TransferEncodingOnHttp10),
            (_, Some(true), _) => Framing::Chunked,
            (_, Some(false), _) => Framing::Close,
            (_, None, Length::Absent) => Framing::Close,
            (_, None, Length::Invalid) => return Err(HeadError::BadLength),
            (_, None, Length::Is(n)) if n > MAX_LENGTH => return Err(HeadError::TooLarge),
            (_, None, Length::Is(n)) => Framing::Length(n),
        };
        let keep_alive = keep_alive && code != 101 && framing != Framing::Close;
        return Ok(Some(ResponseHead {
            status,
            headers,
            framing,
            keep_alive,
        }));
    }
}

/// The `content-length` headers read so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Length {
    Absent,
    Is(u64),
    Invalid,
}

impl Length {
    /// With one more header value: each comma-separated part must be digits, all equal.
    fn and(self, raw: &[u8]) -> Length {
        if self == Length::Invalid || !visible_ascii(raw) {
            return Length::Invalid;
        }
        let mut now = self;
        for part in raw.split(|&b| b == b',') {
            now = match (now, digits(trim(part))) {
                (_, None) => return Length::Invalid,
                (Length::Is(a), Some(b)) if a != b => return Length::Invalid,
                (_, Some(b)) => Length::Is(b),
            };
        }
        now
    }
}

/// Whether a header value reads as text (hyper's `to_str`): tab or visible ASCII and space.
fn visible_ascii(v: &[u8]) -> bool {
    v.iter().all(|&b| b == b'\t' || (b' '..0x7f).contains(&b))
}

/// Whether the last coding of a `transfer-encoding` value is `chunked`.
fn last_coding_is_chunked(raw: &[u8]) -> bool {
    visible_ascii(raw)
        && raw
            .rsplit(|&b| b == b',')
            .next()
            .is_some_and(|c| trim(c).eq_ignore_ascii_case(b"chunked"))
}

/// Whether a comma-separated header value holds `token` (any case).
fn has_token(raw: &[u8], token: &[u8]) -> bool {
    visible_ascii(raw)
        && raw
            .split(|&b| b == b',')
            .any(|t| trim(t).eq_ignore_ascii_case(token))
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end]
}

/// A decimal number: one or more digits, any leading zeros, at most `u64::MAX`.
fn digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Why a body could not be read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFault {
    /// Malformed chunked framing, or a framing cap crossed.
    Malformed,
    /// The connection ended short of the body's end.
    Lost,
}

/// What [`BodyReader::step`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyStep {
    /// Body bytes (never empty).
    Data(Bytes),
    /// Read more.
    NeedMore,
    /// The body is complete.
    End,
}

#[derive(Debug)]
enum Body {
    /// This many bytes left.
    Length(u64),
    Chunked(ChunkedDecoder),
    /// Up to the close.
    Close,
    /// Read to its end.
    Done,
}

/// One response body read from the connection's buffer, with the raw bytes it took.
#[derive(Debug)]
pub struct BodyReader {
    body: Body,
    wire: u64,
}

impl BodyReader {
    pub fn new(framing: Framing) -> BodyReader {
        BodyReader {
            body: match framing {
                Framing::Length(0) => Body::Done,
                Framing::Length(n) => Body::Length(n),
                Framing::Chunked => Body::Chunked(ChunkedDecoder::default()),
                Framing::Close => Body::Close,
            },
            wire: 0,
        }
    }

    /// Reads from the front of `buf`, consuming what it used.
    pub fn step(&mut self, buf: &mut BytesMut) -> Result<BodyStep, BodyFault> {
        let before = buf.len();
        let step = match &mut self.body {
            Body::Done => Ok(BodyStep::End),
            Body::Length(_) | Body::Close if buf.is_empty() => Ok(BodyStep::NeedMore),
            Body::Length(left) => {
                let n = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                *left -= n as u64;
                if *left == 0 {
                    self.body = Body::Done;
                }
                Ok(BodyStep::Data(buf.split_to(n).freeze()))
            }
            Body::Close => Ok(BodyStep::Data(buf.split().freeze())),
            Body::Chunked(dec) => match dec.decode(buf) {
                Ok(Decoded::Data(b)) => Ok(BodyStep::Data(b)),
                Ok(Decoded::NeedMore) => Ok(BodyStep::NeedMore),
                Ok(Decoded::End) => {
                    self.body = Body::Done;
                    Ok(BodyStep::End)
                }
                Err(ChunkError) => Err(BodyFault::Malformed),
            },
        };
        self.wire += (before - buf.len()) as u64;
        step
    }

    /// The connection ended (after [`BodyStep::NeedMore`]): the end of a body that runs to the
    /// close, else the body was cut short.
    pub fn at_eof(&mut self) -> Result<BodyStep, BodyFault> {
        match self.body {
            Body::Close | Body::Done => {
                self.body = Body::Done;
                Ok(BodyStep::End)
            }
            _ => Err(BodyFault::Lost),
        }
    }

    /// Whether the body was read to its end.
    pub fn is_done(&self) -> bool {
        matches!(self.body, Body::Done)
    }

    /// Raw bytes of the body taken from the connection so far, framing included.
    pub fn wire_bytes(&self) -> u64 {
        self.wire
    }
}

/// Whether the connection may carry another request once `head`'s body was read to its end
/// and `buf` holds what followed it.
pub fn reusable(head: &ResponseHead, buf: &BytesMut) -> bool {
    head.keep_alive && buf.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str) -> Result<Option<ResponseHead>, HeadError> {
        parse_head(&mut BytesMut::from(s))
    }

    #[test]
    fn framing_and_keep_alive_follow_the_rules() {
        let cases: &[(&str, &str, Framing, bool)] = &[
            (
                "length",
                "HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n",
                Framing::Length(12),
                true,
            ),
            (
                "repeated equal length",
                "HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\ncontent-length: 5\r\n\r\n",
                Framing::Length(5),
                true,
            ),
            (
                "chunked",
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                Framing::Chunked,
                true,
            ),
            (
                "chunked wins over length",
                "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: gzip, Chunked\r\n\r\n",
                Framing::Chunked,
                true,
            ),
            (
                "other coding runs to the close",
                "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
                Framing::Close,
                false,
            ),
            (
                "no length",
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n",
                Framing::Close,
                false,
            ),
            (
                "204",
                "HTTP/1.1 204 No Content\r\n\r\n",
                Framing::Length(0),
                true,
            ),
            (
                "304 with a length",
                "HTTP/1.1 304 Not Modified\r\ncontent-length: 10\r\n\r\n",
                Framing::Length(0),
                true,
            ),
            (
                "close",
                "HTTP/1.1 200 OK\r\ncontent-length: 1\r\nconnection: Close\r\n\r\n",
                Framing::Length(1),
                false,
            ),
            (
                "1.0",
                "HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n",
                Framing::Length(1),
                false,
            ),
            (
                "1.0 keep-alive",
                "HTTP/1.0 200 OK\r\ncontent-length: 1\r\nconnection: keep-alive\r\n\r\n",
                Framing::Length(1),
                true,
            ),
            (
                "close is not undone by a later keep-alive",
                "HTTP/1.0 200 OK\r\ncontent-length: 1\r\nconnection: close\r\n\
                 connection: keep-alive\r\n\r\n",
                Framing::Length(1),
                false,
            ),
            (
                "a close token in a non-text value is not read",
                "HTTP/1.1 200 OK\r\ncontent-length: 1\r\nconnection: close, \u{e9}\r\n\r\n",
                Framing::Length(1),
                true,
            ),
            (
                "leading zeros in the length",
                "HTTP/1.1 200 OK\r\ncontent-length: 000000000000000000000000000007\r\n\r\n",
                Framing::Length(7),
                true,
            ),
            (
                "chunked ignores an invalid length",
                "HTTP/1.1 200 OK\r\ncontent-length: x\r\ntransfer-encoding: chunked\r\n\r\n",
                Framing::Chunked,
                true,
            ),
            (
                "the last transfer-encoding header decides",
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: gzip\r\n\r\n",
                Framing::Close,
                false,
            ),
            (
                "1.0 204 with transfer-encoding has no body",
                "HTTP/1.0 204 No Content\r\ntransfer-encoding: chunked\r\n\r\n",
                Framing::Length(0),
                false,
            ),
            (
                "101 has no body and ends the connection",
                "HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\n\r\n",
                Framing::Length(0),
                false,
            ),
        ];
        for (name, text, framing, keep) in cases {
            let h = head(text)
                .unwrap_or_else(|e| panic!("{name}: {e:?}"))
                .expect(name);
            assert_eq!(h.framing, *framing, "{name}");
            assert_eq!(h.keep_alive, *keep, "{name}");
        }
    }

    #[test]
    fn interim_heads_are_skipped_and_the_rest_stays_in_the_buffer() {
        let mut buf = BytesMut::from(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n\
             HTTP/1.1 429 Too Many Requests\r\nX-Custom: a b\r\ncontent-length: 2\r\n\r\nhi",
        );
        let h = parse_head(&mut buf).unwrap().unwrap();
        assert_eq!(h.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(h.headers.get("x-custom").unwrap(), "a b");
        assert_eq!(h.headers.len(), 2);
        assert_eq!(&buf[..], b"hi");
    }

    #[test]
    fn partial_and_refused_heads() {
        assert!(head("HTTP/1.1 200 OK\r\ncontent-le").unwrap().is_none());
        assert!(head("").unwrap().is_none());
        let refused: &[(&str, HeadError)] = &[
            ("SPDY/3 200 OK\r\n\r\n", HeadError::Malformed),
            ("HTTP/1.1 2000 OK\r\n\r\n", HeadError::Malformed),
            (
                "HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
                HeadError::Malformed,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
                HeadError::BadLength,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
                HeadError::BadLength,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 0x10\r\n\r\n",
                HeadError::BadLength,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 1,\r\n\r\n",
                HeadError::BadLength,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 18446744073709551616\r\n\r\n",
                HeadError::BadLength,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 18446744073709551614\r\n\r\n",
                HeadError::TooLarge,
            ),
            (
                "HTTP/1.0 200 OK\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n",
                HeadError::TransferEncodingOnHttp10,
            ),
            ("HTTP/1.1 099 Low\r\n\r\n", HeadError::Malformed),
        ];
        for (text, err) in refused {
            assert_eq!(head(text).unwrap_err(), *err, "{text:?}");
        }
        let fields = |n: usize| -> String { (0..n).map(|i| format!("x-{i}: v\r\n")).collect() };
        let with = |f: String| format!("HTTP/1.1 200 OK\r\n{f}content-length: 0\r\n\r\n");
        assert_eq!(
            head(&with(fields(MAX_HEADERS))).unwrap_err(),
            HeadError::TooLarge
        );
        let most = head(&with(fields(MAX_HEADERS - 1))).unwrap().unwrap();
        assert_eq!(most.headers.len(), MAX_HEADERS);
        let big = format!("x-big: {}\r\n", "a".repeat(300 * 1024));
        assert!(
            head(&with(big)).unwrap().is_some(),
            "a 300 KiB head is fine"
        );
        let huge = format!("HTTP/1.1 200 OK\r\nx-big: {}", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(head(&huge).unwrap_err(), HeadError::TooLarge);
    }

    /// The head limit is on a partial head, as hyper's: a head just over [`MAX_HEAD_BYTES`]
    /// passes when the read that crosses the limit completes it, and is refused when the
    /// buffer reaches the limit with the head still partial (found by `h1_diff`).
    #[test]
    fn the_head_limit_is_on_a_partial_head_as_in_hyper() {
        let text = format!(
            "HTTP/1.1 200 OK\r\nx-big: {}\r\ncontent-length: 0\r\n\r\n",
            "b".repeat(MAX_HEAD_BYTES)
        );
        let bytes = text.as_bytes();
        assert!(bytes.len() > MAX_HEAD_BYTES && bytes.len() < MAX_HEAD_BYTES + 100);
        // Fed in two reads, the first below the limit: the second completes the head.
        let mut reader = HeadReader::default();
        let mut buf = BytesMut::from(&bytes[..MAX_HEAD_BYTES - 1]);
        assert_eq!(reader.read(&mut buf).unwrap().map(|h| h.status), None);
        buf.extend_from_slice(&bytes[MAX_HEAD_BYTES - 1..]);
        let h = reader
            .read(&mut buf)
            .unwrap()
            .expect("the head is complete");
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(h.headers["x-big"].len(), MAX_HEAD_BYTES);
        assert!(buf.is_empty());
        // Fed so that the limit is reached first: refused, as hyper refuses it.
        let mut reader = HeadReader::default();
        let mut buf = BytesMut::from(&bytes[..MAX_HEAD_BYTES]);
        assert_eq!(reader.read(&mut buf).unwrap_err(), HeadError::TooLarge);
    }

    /// Reads a body of `framing` from `wire` fed in pieces of `step`, then the end of file:
    /// the data, the raw bytes taken and what was left, or the fault.
    fn read_body(
        framing: Framing,
        wire: &[u8],
        step: usize,
    ) -> Result<(Vec<u8>, u64, usize), BodyFault> {
        let mut r = BodyReader::new(framing);
        let (mut buf, mut fed, mut out) = (BytesMut::new(), 0, Vec::new());
        loop {
            let s = match r.step(&mut buf)? {
                BodyStep::NeedMore if fed == wire.len() => r.at_eof()?,
                s => s,
            };
            match s {
                BodyStep::Data(b) => out.extend_from_slice(&b),
                BodyStep::End => return Ok((out, r.wire_bytes(), buf.len() + wire.len() - fed)),
                BodyStep::NeedMore => {
                    let n = step.min(wire.len() - fed);
                    buf.extend_from_slice(&wire[fed..fed + n]);
                    fed += n;
                }
            }
        }
    }

    #[test]
    fn the_body_reader_counts_raw_bytes_and_knows_where_bodies_end() {
        let chunked = b"3;x\r\nabc\r\n0\r\nt: 1\r\n\r\nNEXT";
        for step in [1, 4, 100] {
            assert_eq!(
                read_body(Framing::Chunked, chunked, step),
                Ok((b"abc".to_vec(), chunked.len() as u64 - 4, 4)),
                "step {step}"
            );
            assert_eq!(
                read_body(Framing::Length(3), b"abcNEXT", step),
                Ok((b"abc".to_vec(), 3, 4))
            );
            assert_eq!(
                read_body(Framing::Close, b"abc", step),
                Ok((b"abc".to_vec(), 3, 0))
            );
            assert_eq!(
                read_body(Framing::Length(4), b"abc", step),
                Err(BodyFault::Lost)
            );
            assert_eq!(
                read_body(Framing::Chunked, b"3\r\nabc", step),
                Err(BodyFault::Lost)
            );
            assert_eq!(
                read_body(Framing::Chunked, b"3\nabc", step),
                Err(BodyFault::Malformed)
            );
        }
        assert_eq!(read_body(Framing::Length(0), b"", 1), Ok((vec![], 0, 0)));
    }

    #[test]
    fn the_request_head_is_written_once_and_framed_per_request() {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h.insert("content-length", HeaderValue::from_static("999"));
        h.insert("connection", HeaderValue::from_static("close"));
        h.insert("authorization", HeaderValue::from_static("Bearer k"));
        let prefix = request_prefix("/v1/chat?x=1", &h);
        let mut out = prefix.to_vec();
        out.extend_from_slice(RequestTail::new(1234, Some(b"00000000000000ff")).as_bytes());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /v1/chat?x=1 HTTP/1.1\r\ncontent-type: application/json\r\n\
             authorization: Bearer k\r\ncontent-length: 1234\r\n\
             x-soakd-request-id: 00000000000000ff\r\n\r\n"
        );
        let zero = RequestTail::new(0, None);
        let longest = RequestTail::new(usize::MAX, Some(&[b'f'; 16]));
        assert_eq!(
            longest.as_bytes(),
            format!(
                "content-length: {}\r\n{ID_HEADER}: ffffffffffffffff\r\n\r\n",
                usize::MAX
            )
            .as_bytes()
        );
        assert_eq!(zero.as_bytes(), b"content-length: 0\r\n\r\n");
    }
}
