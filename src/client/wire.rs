//! HTTP/1.1 on the wire for the fast path ([`super::http1`]): the request head written once per
//! scenario, the response head parsed (with `httparse`) into status, headers and framing, and
//! the chunked body decoder. No I/O here: [`super::http1`] owns the socket and its buffer.
//!
//! Rules, after RFC 9112:
//! - **Request:** `POST <path?query> HTTP/1.1`, then the scenario's headers in the order given,
//!   less any `content-length`, `transfer-encoding` or `connection` a scenario set (soakd frames
//!   the body itself); per request `content-length: N`, the optional marker header, the blank
//!   line and the body.
//! - **Response head:** at most [`MAX_HEADERS`] headers and [`MAX_HEAD_BYTES`] bytes, else a
//!   protocol error. `1xx` interim heads (`100 Continue`, `103 Early Hints`) are skipped;
//!   `101 Switching Protocols` is a protocol error (soakd never asks to upgrade).
//! - **Framing, in order:** a `204` or `304` has no body; a `transfer-encoding` whose last coding
//!   is `chunked` is chunked (any `content-length` is ignored); any other `transfer-encoding`
//!   runs to the close; else `content-length` (repeated values must agree, and only digits) is
//!   the length; else the body runs to the close.
//! - **Keep-alive:** an HTTP/1.1 response keeps the connection unless `connection: close`; an
//!   HTTP/1.0 response only with `connection: keep-alive`; a body that runs to the close never.
//! - **Chunked body:** a hexadecimal size (at most 15 digits) with optional `;extensions`, a
//!   line end (CRLF, or a bare LF as RFC 9112 §2.2 lets a recipient accept), the data, CRLF; a
//!   zero size ends the data and trailer lines follow up to an empty line (their content is
//!   ignored). A size line or trailer section longer than [`MAX_LINE_BYTES`], a non-hex size or
//!   data not followed by CRLF is malformed framing.

use bytes::{Buf, Bytes, BytesMut};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::StatusCode;

use crate::upstream::marker::ID_HEADER;

/// The most headers a response head may carry.
pub const MAX_HEADERS: usize = 64;
/// The largest response head.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The longest chunk-size line or trailer section.
pub const MAX_LINE_BYTES: usize = 4096;

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

/// Why a response head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// Not HTTP/1.x, a bad status line or header.
    Malformed,
    /// Over [`MAX_HEADERS`] headers.
    TooManyHeaders,
    /// Over [`MAX_HEAD_BYTES`].
    TooLarge,
    /// Conflicting or non-numeric `content-length`.
    BadLength,
    /// `101 Switching Protocols`.
    Upgrade,
}

/// Parses the first complete, final response head at the front of `buf`, consuming it (and
/// any interim `1xx` heads before it). `Ok(None)`: more bytes are needed.
pub fn parse_head(buf: &mut BytesMut) -> Result<Option<ResponseHead>, HeadError> {
    loop {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut slots);
        let len = match resp.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => {
                return Err(HeadError::TooLarge)
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
            Err(_) => return Err(HeadError::Malformed),
        };
        if len > MAX_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
        let code = resp.code.ok_or(HeadError::Malformed)?;
        let status = StatusCode::from_u16(code).map_err(|_| HeadError::Malformed)?;
        if code == 101 {
            return Err(HeadError::Upgrade);
        }
        if (100..200).contains(&code) {
            buf.advance(len);
            continue;
        }
        let http10 = resp.version == Some(0);
        // Where each header's name and value sit in the head, so both can be read again
        // (the values sharing its bytes) once the head is split off the buffer.
        let base = buf.as_ptr() as usize;
        let mut spans = [(0usize, 0usize, 0usize, 0usize); MAX_HEADERS];
        let count = resp.headers.len();
        for (slot, h) in spans.iter_mut().zip(resp.headers.iter()) {
            *slot = (
                h.name.as_ptr() as usize - base,
                h.name.len(),
                h.value.as_ptr() as usize - base,
                h.value.len(),
            );
        }
        let head = buf.split_to(len).freeze();
        let mut headers = HeaderMap::with_capacity(count);
        let mut framing = None;
        let mut length: Option<u64> = None;
        let mut close = false;
        let mut keep = false;
        for &(name_at, name_len, at, n) in &spans[..count] {
            let name = HeaderName::from_bytes(&head[name_at..name_at + name_len])
                .map_err(|_| HeadError::Malformed)?;
            let raw = &head[at..at + n];
            match name.as_str() {
                "transfer-encoding" => {
                    let last = raw.rsplit(|&b| b == b',').next().unwrap_or(b"");
                    framing = Some(if trim(last).eq_ignore_ascii_case(b"chunked") {
                        Framing::Chunked
                    } else {
                        Framing::Close
                    });
                }
                "content-length" => {
                    for part in raw.split(|&b| b == b',') {
                        let v = parse_length(trim(part)).ok_or(HeadError::BadLength)?;
                        if length.is_some_and(|l| l != v) {
                            return Err(HeadError::BadLength);
                        }
                        length = Some(v);
                    }
                }
                "connection" => {
                    for token in raw.split(|&b| b == b',').map(trim) {
                        close |= token.eq_ignore_ascii_case(b"close");
                        keep |= token.eq_ignore_ascii_case(b"keep-alive");
                    }
                }
                _ => {}
            }
            let value = HeaderValue::from_maybe_shared(head.slice(at..at + n))
                .map_err(|_| HeadError::Malformed)?;
            headers.append(name, value);
        }
        let framing = if code == 204 || code == 304 {
            Framing::Length(0)
        } else {
            framing.unwrap_or(match length {
                Some(n) => Framing::Length(n),
                None => Framing::Close,
            })
        };
        let keep_alive = framing != Framing::Close && !close && (!http10 || keep);
        return Ok(Some(ResponseHead {
            status,
            headers,
            framing,
            keep_alive,
        }));
    }
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

fn parse_length(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Malformed chunked framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkError;

/// What [`ChunkedDecoder::decode`] found at the front of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Body bytes (never empty).
    Data(Bytes),
    /// The buffer holds no whole step: read more.
    NeedMore,
    /// The body and its trailers are complete.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// At a size line.
    Size,
    /// Inside a chunk's data, this much left.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty one.
    Trailers,
    Done,
}

/// The chunked transfer coding's decoder (module doc: the rules).
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: ChunkState,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: ChunkState::Size,
        }
    }
}

impl ChunkedDecoder {
    /// Decodes from the front of `buf`, consuming what it used.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, ChunkError> {
        loop {
            match self.state {
                ChunkState::Done => return Ok(Decoded::End),
                ChunkState::Size => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    let size = line[..].split(|&b| b == b';').next().unwrap_or(b"");
                    let size = trim(size);
                    if size.is_empty() || size.len() > 15 {
                        return Err(ChunkError);
                    }
                    let mut n = 0u64;
                    for &b in size {
                        let d = (b as char).to_digit(16).ok_or(ChunkError)?;
                        n = n * 16 + u64::from(d);
                    }
                    self.state = if n == 0 {
                        ChunkState::Trailers
                    } else {
                        ChunkState::Data(n)
                    };
                }
                ChunkState::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let rest = left - n as u64;
                    self.state = if rest == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(rest)
                    };
                    return Ok(Decoded::Data(buf.split_to(n).freeze()));
                }
                ChunkState::DataEnd => {
                    if buf.len() < 2 {
                        if buf.first().is_some_and(|&b| b != b'\r') {
                            return Err(ChunkError);
                        }
                        return Ok(Decoded::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(ChunkError);
                    }
                    buf.advance(2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    if line.is_empty() {
                        self.state = ChunkState::Done;
                    }
                }
            }
        }
    }
}

/// Takes one line (without its CRLF or LF) from the front of `buf`; `None` while incomplete.
fn take_line(buf: &mut BytesMut) -> Result<Option<BytesMut>, ChunkError> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(i) if i > MAX_LINE_BYTES => Err(ChunkError),
        Some(i) => {
            let mut line = buf.split_to(i + 1);
            line.truncate(i);
            if line.last() == Some(&b'\r') {
                line.truncate(i - 1);
            }
            Ok(Some(line))
        }
        None if buf.len() > MAX_LINE_BYTES => Err(ChunkError),
        None => Ok(None),
    }
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
                "HTTP/1.1 101 Switching Protocols\r\n\r\n",
                HeadError::Upgrade,
            ),
        ];
        for (text, err) in refused {
            assert_eq!(head(text).unwrap_err(), *err, "{text:?}");
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: v\r\n")).collect();
        assert_eq!(
            head(&format!("HTTP/1.1 200 OK\r\n{many}\r\n")).unwrap_err(),
            HeadError::TooManyHeaders
        );
        let huge = format!("HTTP/1.1 200 OK\r\nx-big: {}", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(head(&huge).unwrap_err(), HeadError::TooLarge);
    }

    /// Decodes `wire` fed in pieces of `step` bytes; the data, or the error.
    fn decode_in_steps(wire: &[u8], step: usize) -> Result<(Vec<u8>, usize), ChunkError> {
        let mut dec = ChunkedDecoder::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut fed = 0;
        loop {
            match dec.decode(&mut buf)? {
                Decoded::Data(b) => {
                    assert!(!b.is_empty());
                    out.extend_from_slice(&b);
                }
                Decoded::End => return Ok((out, buf.len())),
                Decoded::NeedMore => {
                    if fed == wire.len() {
                        return Err(ChunkError);
                    }
                    let n = step.min(wire.len() - fed);
                    buf.extend_from_slice(&wire[fed..fed + n]);
                    fed += n;
                }
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_at_every_split() {
        let wire = b"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-trailer: t\r\n\r\nNEXT";
        for step in 1..=wire.len() {
            let (data, left) = decode_in_steps(wire, step).expect("decodes");
            assert_eq!(data, b"helloabcdefghijklmnopqrstuvwxyz", "step {step}");
            let fed_past_end = left;
            assert!(
                fed_past_end <= 4,
                "step {step}: the decoder stops at the end"
            );
        }
        let bare_lf = b"3\nabc\r\n0\n\n";
        assert_eq!(decode_in_steps(bare_lf, 2).unwrap().0, b"abc");
    }

    #[test]
    fn malformed_chunked_framing_is_an_error() {
        let bad: &[&[u8]] = &[
            b"zz\r\nabc\r\n",
            b"\r\nabc\r\n",
            b"3\r\nabcX\r\n0\r\n\r\n",
            b"1000000000000000\r\n",
        ];
        for wire in bad {
            for step in [1, 3, wire.len()] {
                assert_eq!(
                    decode_in_steps(wire, step),
                    Err(ChunkError),
                    "{wire:?} / {step}"
                );
            }
        }
        let long_line = vec![b'1'; MAX_LINE_BYTES + 2];
        assert_eq!(decode_in_steps(&long_line, 512), Err(ChunkError));
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
