//! The chunked transfer coding's decoder for the fast path ([`super::wire`]), judging every
//! byte as hyper's decoder judges it, so the two clients agree on which bodies are malformed.
//!
//! Rules (RFC 9112 §7.1, where it leaves a choice: hyper's, the strict one):
//! - **Size line:** one or more hex digits (any number of leading zeros; a value over
//!   `u64::MAX` is malformed), then optional spaces or tabs, then optional `;extensions`, then
//!   CRLF. No whitespace before the size, no bare LF, no CR or LF inside an extension.
//! - **Extensions** are ignored, but their bytes are counted: over [`MAX_EXTENSION_BYTES`] in
//!   one message (so in any one chunk too) is malformed.
//! - **Data** is followed by CRLF exactly.
//! - **Last chunk** (size 0): then either CRLF (the end), or trailer fields, each ended by
//!   CRLF, then CRLF. The trailer section is kept (up to [`MAX_TRAILER_BYTES`], at most
//!   [`MAX_TRAILERS`] fields) and must parse as header fields; its content is then dropped.
//!
//! A size line never needs to be buffered (it is read a byte at a time, as hyper does), so an
//! endless line costs no memory; the caller's deadline ends it.

use bytes::{Buf, Bytes, BytesMut};
use hyper::header::{HeaderName, HeaderValue};

/// Most bytes of chunk extensions in one message (hyper's `CHUNKED_EXTENSIONS_LIMIT`).
pub const MAX_EXTENSION_BYTES: u64 = 16 * 1024;
/// Most bytes of a trailer section, its line ends included (hyper's `TRAILER_LIMIT`; as in
/// hyper, a section reaching it is refused).
pub const MAX_TRAILER_BYTES: usize = 16 * 1024;
/// Most trailer fields (hyper's default header count).
pub const MAX_TRAILERS: usize = 100;

/// Malformed chunked framing (or a framing cap crossed).
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
enum State {
    /// Before a size line's first digit.
    Start,
    /// In the size's digits.
    Size,
    /// Spaces or tabs after the size.
    SizeLws,
    /// In the extensions, up to the CR.
    Extension,
    /// After the size line's CR.
    SizeLf,
    /// Inside a chunk's data, this much left.
    Data(u64),
    /// After a chunk's data.
    DataCr,
    DataLf,
    /// After the last chunk or a trailer field's line end: CR (the end) or a field.
    EndCr,
    /// In a trailer field, up to its CR.
    Trailer,
    TrailerLf,
    /// After the final CR.
    EndLf,
    Done,
}

/// The decoder of one chunked body.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    /// Extension bytes so far in this message.
    extensions: u64,
    /// The trailer section so far, when there is one.
    trailers: Option<Vec<u8>>,
    /// Trailer fields so far.
    trailer_count: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: State::Start,
            size: 0,
            extensions: 0,
            trailers: None,
            trailer_count: 0,
        }
    }
}

fn hex(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some(u64::from(b - b'0')),
        b'a'..=b'f' => Some(u64::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(u64::from(b - b'A' + 10)),
        _ => None,
    }
}

impl ChunkedDecoder {
    /// Decodes from the front of `buf`, consuming what it used: framing bytes as they are
    /// judged, data up to the chunk's end.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, ChunkError> {
        let mut used = 0;
        let result = loop {
            match self.state {
                State::Done => break Ok(Decoded::End),
                State::Data(left) => {
                    buf.advance(used);
                    used = 0;
                    if buf.is_empty() {
                        break Ok(Decoded::NeedMore);
                    }
                    let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let rest = left - n as u64;
                    self.state = if rest == 0 {
                        State::DataCr
                    } else {
                        State::Data(rest)
                    };
                    break Ok(Decoded::Data(buf.split_to(n).freeze()));
                }
                _ => {
                    let Some(&b) = buf.get(used) else {
                        break Ok(Decoded::NeedMore);
                    };
                    used += 1;
                    if let Err(e) = self.byte(b) {
                        break Err(e);
                    }
                }
            }
        };
        buf.advance(used);
        result
    }

    /// One framing byte.
    fn byte(&mut self, b: u8) -> Result<(), ChunkError> {
        self.state = match (self.state, b) {
            (State::Start, _) => {
                self.size = hex(b).ok_or(ChunkError)?;
                State::Size
            }
            (State::Size, b' ' | b'\t') | (State::SizeLws, b' ' | b'\t') => State::SizeLws,
            (State::Size | State::SizeLws, b';') => State::Extension,
            (State::Size | State::SizeLws, b'\r') | (State::Extension, b'\r') => State::SizeLf,
            (State::Size, _) => {
                let d = hex(b).ok_or(ChunkError)?;
                self.size = self
                    .size
                    .checked_mul(16)
                    .and_then(|s| s.checked_add(d))
                    .ok_or(ChunkError)?;
                State::Size
            }
            (State::SizeLws, _) | (State::Extension, b'\n') => return Err(ChunkError),
            (State::Extension, _) => {
                self.extensions += 1;
                if self.extensions >= MAX_EXTENSION_BYTES {
                    return Err(ChunkError);
                }
                State::Extension
            }
            (State::SizeLf, b'\n') if self.size == 0 => State::EndCr,
            (State::SizeLf, b'\n') => State::Data(std::mem::take(&mut self.size)),
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => State::Start,
            (State::EndCr, b'\r') => {
                if self.trailers.is_some() {
                    self.keep(b)?;
                }
                State::EndLf
            }
            (State::EndCr, _) => {
                match &mut self.trailers {
                    None => self.trailers = Some(vec![b]),
                    Some(_) => self.keep(b)?,
                }
                State::Trailer
            }
            (State::Trailer, _) => {
                self.keep(b)?;
                if b == b'\r' {
                    State::TrailerLf
                } else {
                    State::Trailer
                }
            }
            (State::TrailerLf, b'\n') => {
                if self.trailer_count >= MAX_TRAILERS {
                    return Err(ChunkError);
                }
                self.trailer_count += 1;
                self.keep(b)?;
                State::EndCr
            }
            (State::EndLf, b'\n') => {
                if self.trailers.is_some() {
                    self.keep(b)?;
                }
                self.check_trailers()?;
                State::Done
            }
            (
                State::SizeLf | State::DataCr | State::DataLf | State::TrailerLf | State::EndLf,
                _,
            ) => return Err(ChunkError),
            (State::Data(_) | State::Done, _) => unreachable!("data and the end take no byte"),
        };
        Ok(())
    }

    /// Keeps a byte of the trailer section, within its cap.
    fn keep(&mut self, b: u8) -> Result<(), ChunkError> {
        let t = self.trailers.get_or_insert_with(Vec::new);
        t.push(b);
        if t.len() >= MAX_TRAILER_BYTES {
            return Err(ChunkError);
        }
        Ok(())
    }

    /// The trailer section must parse as header fields (then it is dropped).
    fn check_trailers(&mut self) -> Result<(), ChunkError> {
        let Some(section) = self.trailers.take() else {
            return Ok(());
        };
        let mut fields = vec![httparse::EMPTY_HEADER; self.trailer_count];
        match httparse::parse_headers(&section, &mut fields) {
            Ok(httparse::Status::Complete((_, fields))) => {
                for f in fields.iter() {
                    HeaderName::from_bytes(f.name.as_bytes()).map_err(|_| ChunkError)?;
                    HeaderValue::from_bytes(f.value).map_err(|_| ChunkError)?;
                }
                Ok(())
            }
            _ => Err(ChunkError),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `wire` fed in pieces of `step` bytes: the data and what was left after the end,
    /// `Err(true)` for malformed framing, `Err(false)` when the input ran out first.
    pub(crate) fn decode_in_steps(wire: &[u8], step: usize) -> Result<(Vec<u8>, usize), bool> {
        let mut dec = ChunkedDecoder::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut fed = 0;
        loop {
            match dec.decode(&mut buf).map_err(|_| true)? {
                Decoded::Data(b) => {
                    assert!(!b.is_empty());
                    out.extend_from_slice(&b);
                }
                Decoded::End => return Ok((out, buf.len())),
                Decoded::NeedMore => {
                    if fed == wire.len() {
                        return Err(false);
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
        let wire: &[u8] = b"5;ext=1\r\nhello\r\n1A \t;a\r\nabcdefghijklmnopqrstuvwxyz\r\n\
                           000000000000000000000000003\r\nxyz\r\n0\r\nx-trailer: t\r\n\r\nNEXT";
        for step in 1..=wire.len() {
            let (data, left) = decode_in_steps(wire, step).expect("decodes");
            assert_eq!(data, b"helloabcdefghijklmnopqrstuvwxyzxyz", "step {step}");
            assert!(left <= 4, "step {step}: the decoder stops at the end");
        }
        assert_eq!(decode_in_steps(b"0\r\n\r\n", 1), Ok((vec![], 0)));
        let max = format!("{:x}\r\n", u64::MAX);
        assert_eq!(decode_in_steps(max.as_bytes(), 3), Err(false), "needs data");
    }

    #[test]
    fn malformed_chunked_framing_is_an_error_at_every_split() {
        let ext = |n: usize| format!("1;{}\r\na\r\n0\r\n\r\n", "e".repeat(n));
        let trailer = |n: usize| format!("0\r\nx: {}\r\n\r\n", "v".repeat(n));
        let many: String = (0..=MAX_TRAILERS).map(|i| format!("t{i}: v\r\n")).collect();
        let bad: Vec<(&str, Vec<u8>)> = vec![
            ("not hex", b"zz\r\nabc\r\n".to_vec()),
            ("empty size", b"\r\nabc\r\n".to_vec()),
            (
                "data not followed by CRLF",
                b"3\r\nabcX\r\n0\r\n\r\n".to_vec(),
            ),
            ("overflow", b"10000000000000000\r\n".to_vec()),
            ("bare LF size line", b"3\nabc\r\n0\r\n\r\n".to_vec()),
            (
                "whitespace before the size",
                b" 3\r\nabc\r\n0\r\n\r\n".to_vec(),
            ),
            ("digit after whitespace", b"3 4\r\nabc\r\n".to_vec()),
            ("CR inside an extension", b"3;a\rb\r\nabc\r\n".to_vec()),
            ("LF inside an extension", b"3;a\nb\r\nabc\r\n".to_vec()),
            ("garbage trailer line", b"0\r\nnot a field\r\n\r\n".to_vec()),
            ("bare LF after the data", b"3\r\nabc\n0\r\n\r\n".to_vec()),
            ("trailer without LF", b"0\r\nx: y\rz".to_vec()),
            (
                "extensions over the cap",
                ext(MAX_EXTENSION_BYTES as usize).into_bytes(),
            ),
            (
                "trailers over the cap",
                trailer(MAX_TRAILER_BYTES).into_bytes(),
            ),
            ("too many trailers", format!("0\r\n{many}\r\n").into_bytes()),
        ];
        for (name, wire) in &bad {
            for step in [1, 3, wire.len()] {
                assert_eq!(decode_in_steps(wire, step), Err(true), "{name} / {step}");
            }
        }
        // Just under the caps is fine.
        let ok: Vec<Vec<u8>> = vec![
            ext(MAX_EXTENSION_BYTES as usize - 2).into_bytes(),
            trailer(MAX_TRAILER_BYTES - 10).into_bytes(),
        ];
        for wire in &ok {
            assert!(decode_in_steps(wire, 1000).is_ok());
        }
    }

    #[test]
    fn an_endless_size_line_costs_no_memory() {
        let mut dec = ChunkedDecoder::default();
        let mut buf = BytesMut::new();
        for _ in 0..1000 {
            buf.extend_from_slice(&[b'0'; 4096]);
            assert_eq!(dec.decode(&mut buf), Ok(Decoded::NeedMore));
            assert!(buf.is_empty(), "every zero is consumed");
        }
    }
}
