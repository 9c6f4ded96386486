//! Incremental Server-Sent Events reader.
//!
//! [`SseReader::push`] takes byte chunks exactly as they come off the network, at any split
//! position, and calls back once per complete event (the WHATWG "dispatch" step: a blank line
//! after at least one `data` field). The reader keeps only:
//! - the unfinished last line of the previous chunk (`line`),
//! - the current event's `data` (several `data:` lines joined with `\n`) and `event` type,
//! - one flag for a CR that ended a chunk (so that a CRLF split across two reads is one line
//!   ending, not two).
//!
//! Lines that are complete inside a chunk are parsed straight from the chunk without copying
//! them; only field values are copied into the event buffers, which are reused across events,
//! so a stream costs no allocation after its first event. Everything is bounded by
//! `max_event_bytes`: a line longer than it (line end excluded; whether the line arrived whole
//! or in pieces) or an event whose data and type grow past it is an
//! [`SseError::EventTooLarge`], never unbounded growth. The fuzzing harness
//! (`crate::fuzzing::sse_ref`) checks the reader against a whole-body reference reader at any
//! split.
//!
//! UTF-8 is validated per dispatched event, so code points split across reads are fine and
//! invalid bytes are an [`SseError::InvalidUtf8`]. `id:` and `retry:` fields and comments are
//! accepted and ignored (a load generator never reconnects). Per the spec, an event that is
//! not followed by a blank line before the body ends is not dispatched; [`SseReader::finish`]
//! reports it as [`Tail::MidEvent`] so the caller can classify the stream as truncated.

use std::ops::ControlFlow;

/// Default bound on one event (and one line): 1 MiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;

/// One dispatched event, borrowing the reader's buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` field, or `""` when absent (a `message` event).
    pub event: &'a str,
    /// The `data:` lines joined with `\n`.
    pub data: &'a str,
}

/// Why a byte stream is not valid SSE within our bounds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A line or an event grew past the configured maximum.
    #[error("SSE event larger than {max} bytes")]
    EventTooLarge {
        /// The configured bound.
        max: usize,
    },
    /// An event's data or type is not UTF-8.
    #[error("SSE event is not valid UTF-8")]
    InvalidUtf8,
}

/// Where the body ended relative to the event framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Between events: nothing was pending.
    Clean,
    /// Inside an event: a partial line or fields without the closing blank line.
    MidEvent,
}

/// The incremental reader; one per stream.
#[derive(Debug)]
pub struct SseReader {
    max: usize,
    /// The unfinished last line of earlier chunks.
    line: Vec<u8>,
    data: Vec<u8>,
    event: Vec<u8>,
    has_data: bool,
    /// A field line was seen since the last blank line.
    in_event: bool,
    /// The previous chunk ended in CR: a LF at the start of the next one belongs to it.
    pending_cr: bool,
    /// No line has been completed yet (a leading BOM is stripped from the first line).
    first_line: bool,
    /// Lines that are neither comments nor `data`/`event`/`id`/`retry` fields.
    foreign_lines: u64,
}

impl Default for SseReader {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseReader {
    /// A reader that rejects lines and events larger than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        SseReader {
            max: max_event_bytes.max(1),
            line: Vec::new(),
            data: Vec::new(),
            event: Vec::new(),
            has_data: false,
            in_event: false,
            pending_cr: false,
            first_line: true,
            foreign_lines: 0,
        }
    }

    /// How many lines were not SSE fields. The spec ignores unknown fields, but an LLM API
    /// never sends them: a body that ends without its terminator after such lines was not an
    /// event stream at all (an HTML error page, a proxy's banner), which is a protocol error
    /// rather than a truncated stream.
    pub fn foreign_lines(&self) -> u64 {
        self.foreign_lines
    }

    /// Feeds one chunk; calls `on_event` for each event completed by it.
    ///
    /// Returns `Break` as soon as `on_event` does; the rest of the chunk is then not read and
    /// the reader should not be fed again. Errors are final too.
    pub fn push(
        &mut self,
        chunk: &[u8],
        mut on_event: impl FnMut(SseEvent<'_>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, SseError> {
        let mut rest = chunk;
        if self.pending_cr && !rest.is_empty() {
            self.pending_cr = false;
            if let [b'\n', tail @ ..] = rest {
                rest = tail;
            }
        }
        while !rest.is_empty() {
            let Some(end) = memchr::memchr2(b'\n', b'\r', rest) else {
                if self.line.len() + rest.len() > self.max {
                    return Err(SseError::EventTooLarge { max: self.max });
                }
                self.line.extend_from_slice(rest);
                break;
            };
            let after = if rest[end] == b'\r' {
                match rest.get(end + 1) {
                    Some(b'\n') => end + 2,
                    Some(_) => end + 1,
                    None => {
                        self.pending_cr = true;
                        end + 1
                    }
                }
            } else {
                end + 1
            };
            let flow = if self.line.is_empty() {
                if end > self.max {
                    return Err(SseError::EventTooLarge { max: self.max });
                }
                self.line_done(&rest[..end], &mut on_event)?
            } else {
                if self.line.len() + end > self.max {
                    return Err(SseError::EventTooLarge { max: self.max });
                }
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&rest[..end]);
                let flow = self.line_done(&line, &mut on_event);
                line.clear();
                self.line = line;
                flow?
            };
            rest = &rest[after..];
            if flow.is_break() {
                return Ok(flow);
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    /// Bytes held now: the unfinished line, and the current event's data and type.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn buffered(&self) -> (usize, usize) {
        (self.line.len(), self.data.len() + self.event.len())
    }

    /// Where the body ended, to call once the body is done.
    pub fn finish(&self) -> Tail {
        if self.in_event || !self.line.is_empty() {
            Tail::MidEvent
        } else {
            Tail::Clean
        }
    }

    fn line_done(
        &mut self,
        mut line: &[u8],
        on_event: &mut impl FnMut(SseEvent<'_>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, SseError> {
        if self.first_line {
            self.first_line = false;
            if let [0xEF, 0xBB, 0xBF, tail @ ..] = line {
                line = tail;
            }
        }
        if line.is_empty() {
            return self.dispatch(on_event);
        }
        if line[0] == b':' {
            return Ok(ControlFlow::Continue(()));
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        self.in_event = true;
        match name {
            b"data" => {
                let extra = value.len() + usize::from(self.has_data);
                if self.data.len() + self.event.len() + extra > self.max {
                    return Err(SseError::EventTooLarge { max: self.max });
                }
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => {
                if self.data.len() + value.len() > self.max {
                    return Err(SseError::EventTooLarge { max: self.max });
                }
                self.event.clear();
                self.event.extend_from_slice(value);
            }
            // id and retry: nothing a load generator uses.
            b"id" | b"retry" => {}
            _ => self.foreign_lines += 1,
        }
        Ok(ControlFlow::Continue(()))
    }

    fn dispatch(
        &mut self,
        on_event: &mut impl FnMut(SseEvent<'_>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, SseError> {
        self.in_event = false;
        if !self.has_data {
            self.event.clear();
            return Ok(ControlFlow::Continue(()));
        }
        self.has_data = false;
        let flow = {
            let data = std::str::from_utf8(&self.data).map_err(|_| SseError::InvalidUtf8)?;
            let event = std::str::from_utf8(&self.event).map_err(|_| SseError::InvalidUtf8)?;
            on_event(SseEvent { event, data })
        };
        self.data.clear();
        self.event.clear();
        Ok(flow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Owned {
        event: String,
        data: String,
    }

    fn ev(event: &str, data: &str) -> Owned {
        Owned {
            event: event.into(),
            data: data.into(),
        }
    }

    /// Feeds the pieces in order and returns the events, the error if any, and the tail.
    fn run(pieces: &[&[u8]], max: usize) -> (Vec<Owned>, Option<SseError>, Tail) {
        let mut r = SseReader::new(max);
        let mut out = Vec::new();
        for p in pieces {
            let res = r.push(p, |e| {
                out.push(ev(e.event, e.data));
                ControlFlow::Continue(())
            });
            if let Err(e) = res {
                return (out, Some(e), r.finish());
            }
        }
        let tail = r.finish();
        (out, None, tail)
    }

    fn whole(s: &[u8]) -> (Vec<Owned>, Option<SseError>, Tail) {
        run(&[s], DEFAULT_MAX_EVENT_BYTES)
    }

    /// Every split into two pieces, and every split into three pieces for short inputs, and
    /// byte-at-a-time, gives the same result as one piece.
    fn assert_split_invariant(s: &[u8], max: usize) -> (Vec<Owned>, Option<SseError>, Tail) {
        let want = run(&[s], max);
        for i in 0..=s.len() {
            assert_eq!(run(&[&s[..i], &s[i..]], max), want, "split at {i} of {s:?}");
        }
        if s.len() <= 120 {
            for i in 0..=s.len() {
                for j in i..=s.len() {
                    assert_eq!(
                        run(&[&s[..i], &s[i..j], &s[j..]], max),
                        want,
                        "split at {i},{j} of {s:?}"
                    );
                }
            }
        }
        let bytes: Vec<&[u8]> = s.chunks(1).collect();
        assert_eq!(run(&bytes, max), want, "byte at a time");
        // Random multi-splits with a fixed seed (xorshift, no dependency).
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200 {
            let mut pieces = Vec::new();
            let mut at = 0;
            while at < s.len() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let n = (x % 9) as usize;
                let end = (at + n).min(s.len());
                pieces.push(&s[at..end]);
                at = end;
            }
            assert_eq!(run(&pieces, max), want, "random split {pieces:?}");
        }
        want
    }

    const OPENAI: &[u8] =
        b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n\
data: {\"choices\":[{\"delta\":{\"content\":\"h\xc3\xa9llo \xe2\x82\xac\"}}]}\n\n\
: keep-alive\n\n\
data: [DONE]\n\n";

    #[test]
    fn openai_sample_every_split() {
        let (events, err, tail) = assert_split_invariant(OPENAI, DEFAULT_MAX_EVENT_BYTES);
        assert_eq!(err, None);
        assert_eq!(tail, Tail::Clean);
        assert_eq!(events.len(), 3);
        assert_eq!(
            events[1].data,
            "{\"choices\":[{\"delta\":{\"content\":\"héllo €\"}}]}"
        );
        assert_eq!(events[2], ev("", "[DONE]"));
    }

    #[test]
    fn anthropic_sample_with_crlf_every_split() {
        let s = b"event: message_start\r\ndata: {\"type\":\"message_start\"}\r\n\r\n\
event: ping\r\ndata: {\"type\": \"ping\"}\r\n\r\n\
event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\"}\r\n\r\n\
event: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n";
        let (events, err, tail) = assert_split_invariant(s, DEFAULT_MAX_EVENT_BYTES);
        assert_eq!(err, None);
        assert_eq!(tail, Tail::Clean);
        let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "ping",
                "content_block_delta",
                "message_stop"
            ]
        );
        assert_eq!(events[1].data, "{\"type\": \"ping\"}");
    }

    #[test]
    fn lf_crlf_and_lone_cr_are_equivalent() {
        let lf = b"event: a\ndata: 1\ndata: 2\n\ndata: 3\n\n";
        let want = assert_split_invariant(lf, 64);
        assert_eq!(want.0, vec![ev("a", "1\n2"), ev("", "3")]);
        for sep in [&b"\r\n"[..], b"\r"] {
            let s: Vec<u8> = lf.split(|b| *b == b'\n').collect::<Vec<_>>().join(sep);
            assert_eq!(assert_split_invariant(&s, 64), want, "separator {sep:?}");
        }
        // Mixed endings in one stream.
        let mixed = b"data: 1\r\ndata: 2\r\revent: a\n\r\ndata: 3\r\r";
        assert_eq!(
            assert_split_invariant(mixed, 64).0,
            vec![ev("", "1\n2"), ev("", "3")]
        );
    }

    #[test]
    fn crlf_split_across_reads_is_one_line_ending() {
        // "data: 1\r" | "\n" | "data: 2\r\n\r\n": if the split CRLF counted twice, the first
        // event would be dispatched alone.
        let (events, err, _) = run(&[b"data: 1\r", b"\n", b"data: 2\r\n\r\n"], 64);
        assert_eq!(err, None);
        assert_eq!(events, vec![ev("", "1\n2")]);
    }

    #[test]
    fn data_with_or_without_space_and_field_forms() {
        let s = b"data:nospace\n\ndata:  two\n\ndata\n\ndata:\n\n";
        let (events, err, tail) = assert_split_invariant(s, 64);
        assert_eq!(err, None);
        assert_eq!(tail, Tail::Clean);
        assert_eq!(
            events,
            vec![ev("", "nospace"), ev("", " two"), ev("", ""), ev("", "")]
        );
    }

    #[test]
    fn foreign_lines_are_counted() {
        let mut r = SseReader::new(1024);
        let body: &[u8] =
            b"<html>502 Bad Gateway</html>\n\xff\xfe junk\n: comment\nid: 3\nretry: 10\n\n";
        let mut n = 0;
        let _ = r
            .push(body, |_| {
                n += 1;
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!((n, r.foreign_lines()), (0, 2));
        let mut clean = SseReader::new(1024);
        let _ = clean
            .push(b"event: ping\ndata: {}\n\n", |_| ControlFlow::Continue(()))
            .unwrap();
        assert_eq!(clean.foreign_lines(), 0);
    }

    #[test]
    fn comments_id_retry_and_unknown_fields_are_ignored() {
        let s = b":comment\n: another\nid: 7\nretry: 1000\nfoo: bar\ndata: x\n\nid: 8\n\n";
        let (events, err, tail) = assert_split_invariant(s, 64);
        assert_eq!(err, None);
        assert_eq!(tail, Tail::Clean);
        assert_eq!(events, vec![ev("", "x")]);
    }

    #[test]
    fn event_type_without_data_is_not_dispatched_and_resets() {
        let (events, _, _) = whole(b"event: x\n\ndata: y\n\n");
        assert_eq!(events, vec![ev("", "y")]);
    }

    #[test]
    fn unknown_event_types_pass_through() {
        let (events, _, _) = whole(b"event: something_new\ndata: {}\n\n");
        assert_eq!(events, vec![ev("something_new", "{}")]);
    }

    #[test]
    fn leading_bom_is_stripped_once() {
        let (events, _, _) = assert_split_invariant(b"\xEF\xBB\xBFdata: a\n\ndata: b\n\n", 64);
        assert_eq!(events, vec![ev("", "a"), ev("", "b")]);
    }

    #[test]
    fn final_event_without_blank_line_is_not_dispatched() {
        for s in [
            &b"data: a\n\ndata: b\n"[..],
            b"data: a\n\ndata: b",
            b"data: a\n\nevent: x\n",
            b"data: a\n\nda",
        ] {
            let (events, err, tail) = assert_split_invariant(s, 64);
            assert_eq!(err, None);
            assert_eq!(events, vec![ev("", "a")], "{s:?}");
            assert_eq!(tail, Tail::MidEvent, "{s:?}");
        }
        // A trailing comment line between events is harmless.
        assert_eq!(whole(b"data: a\n\n: bye\n").2, Tail::Clean);
        assert_eq!(whole(b"").2, Tail::Clean);
    }

    #[test]
    fn oversize_line_and_event_are_errors() {
        let max = 16;
        // One long line without a newline: bounded while still partial.
        let long = [b'x'; 40];
        let (_, err, _) = run(&[b"data: ", &long[..10], &long[10..]], max);
        assert_eq!(err, Some(SseError::EventTooLarge { max }));
        // Many short data lines adding up past the bound.
        let s = b"data: 12345\ndata: 12345\ndata: 12345\n\n";
        let (events, err, _) = assert_split_invariant(s, max);
        assert!(events.is_empty());
        assert_eq!(err, Some(SseError::EventTooLarge { max }));
        // Exactly at the bound is fine.
        let (events, err, _) = assert_split_invariant(b"data: 1234567890123456\n\n", 22);
        assert_eq!(err, None);
        assert_eq!(events, vec![ev("", "1234567890123456")]);
    }

    #[test]
    fn a_line_over_the_bound_is_too_large_whole_or_in_pieces() {
        // Found by the differential fuzzing: a long complete line inside one chunk slipped
        // past the bound (and a data line just under the event bound was kept).
        let max = 8;
        for s in [
            &b": a comment of 21 b\n\n"[..],
            b"foo: longer than 8\n\n",
            b"data:{\"a\":1}\n\n",
        ] {
            for i in 0..=s.len() {
                let (events, err, _) = run(&[&s[..i], &s[i..]], max);
                assert!(events.is_empty());
                assert_eq!(err, Some(SseError::EventTooLarge { max }), "{s:?} at {i}");
            }
        }
    }

    #[test]
    fn memory_is_reused_across_events() {
        let mut r = SseReader::new(1024);
        let mut n = 0;
        for _ in 0..1000 {
            let _ = r.push(b"data: {\"x\":1}\n\n", |_| {
                n += 1;
                ControlFlow::Continue(())
            });
        }
        assert_eq!(n, 1000);
        assert!(r.data.capacity() <= 64, "{}", r.data.capacity());
        assert!(r.line.capacity() == 0);
    }

    #[test]
    fn invalid_utf8_is_an_error_but_split_code_points_are_not() {
        let (_, err, _) = whole(b"data: \xff\xfe\n\n");
        assert_eq!(err, Some(SseError::InvalidUtf8));
        let (_, err, _) = whole(b"event: \xc3\ndata: x\n\n");
        assert_eq!(err, Some(SseError::InvalidUtf8));
        let s = "data: 日本語 🎉\n\n".as_bytes();
        let (events, err, _) = assert_split_invariant(s, 64);
        assert_eq!(err, None);
        assert_eq!(events, vec![ev("", "日本語 🎉")]);
    }

    #[test]
    fn break_stops_reading_the_chunk() {
        let mut r = SseReader::default();
        let mut seen = 0;
        let flow = r
            .push(b"data: 1\n\ndata: 2\n\n", |_| {
                seen += 1;
                ControlFlow::Break(())
            })
            .unwrap();
        assert!(flow.is_break());
        assert_eq!(seen, 1);
    }
}
