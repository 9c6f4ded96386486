//! A straightforward SSE reader to check [`crate::client::sse::SseReader`] against: the whole
//! body at once, split into lines, each line handled as the WHATWG rules (and soakd's bounds)
//! say, with no buffering tricks. The incremental reader, fed the same body in any pieces, must
//! give the same events, error, tail and foreign-line count.
//!
//! The bounds, as the reader documents them: a line longer than `max` bytes (its line end
//! excluded, a leading BOM included) is too large, complete or not; so is an event whose data
//! (lines joined with `\n`) and type together grow past `max`.

use crate::client::sse::{SseError, Tail};

/// One event, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub event: String,
    pub data: String,
}

/// Everything a reader reports about a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseRead {
    pub events: Vec<Event>,
    pub error: Option<SseError>,
    /// Where the body ended (`None` after an error).
    pub tail: Option<Tail>,
    pub foreign_lines: u64,
}

/// Reads `body` whole.
pub fn read(body: &[u8], max: usize) -> SseRead {
    let max = max.max(1);
    let mut out = SseRead {
        events: Vec::new(),
        error: None,
        tail: None,
        foreign_lines: 0,
    };
    // Complete lines, and what follows the last line end.
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'\n' => {
                lines.push(&body[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&body[start..i]);
                if body.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let partial = &body[start..];
    let (mut data, mut event): (Vec<u8>, Vec<u8>) = (Vec::new(), Vec::new());
    let (mut has_data, mut in_event) = (false, false);
    let too_large = SseError::EventTooLarge { max };
    for (n, &whole) in lines.iter().enumerate() {
        if whole.len() > max {
            out.error = Some(too_large);
            return out;
        }
        let line = match whole {
            [0xEF, 0xBB, 0xBF, rest @ ..] if n == 0 => rest,
            l => l,
        };
        if line.is_empty() {
            in_event = false;
            if has_data {
                match (std::str::from_utf8(&data), std::str::from_utf8(&event)) {
                    (Ok(d), Ok(e)) => out.events.push(Event {
                        event: e.into(),
                        data: d.into(),
                    }),
                    _ => {
                        out.error = Some(SseError::InvalidUtf8);
                        return out;
                    }
                }
            }
            data.clear();
            event.clear();
            has_data = false;
            continue;
        }
        if line[0] == b':' {
            continue;
        }
        in_event = true;
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(c) => {
                let v = &line[c + 1..];
                (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                let joined = data.len() + usize::from(has_data) + value.len();
                if joined + event.len() > max {
                    out.error = Some(too_large);
                    return out;
                }
                if has_data {
                    data.push(b'\n');
                }
                data.extend_from_slice(value);
                has_data = true;
            }
            b"event" => {
                if data.len() + value.len() > max {
                    out.error = Some(too_large);
                    return out;
                }
                event = value.to_vec();
            }
            b"id" | b"retry" => {}
            _ => out.foreign_lines += 1,
        }
    }
    if partial.len() > max {
        out.error = Some(too_large);
        return out;
    }
    out.tail = Some(if in_event || !partial.is_empty() {
        Tail::MidEvent
    } else {
        Tail::Clean
    });
    out
}
