//! One stream's body, chunk by chunk: the SSE reader and the API's parser together, and the
//! outcome they decide. Synchronous and free of I/O, so the exchange and the classification
//! tests run exactly the same code.
//!
//! Rules (the parsers decide what each event means):
//! - the terminator ([`Step::Done`]) → `ok`; the rest of the body may be drained;
//! - an error frame → `stream_error_event` (drained); an in-band incomplete answer →
//!   `stream_truncated` (drained);
//! - an event the API cannot have, an oversize or non-UTF-8 event → `protocol_error` (not
//!   drained: the connection is dropped);
//! - a clean end of body before the terminator → `stream_truncated`, unless the body held
//!   lines that are not SSE fields (an HTML page, a banner): then it was never an event stream
//!   and the outcome is `protocol_error`.

use std::ops::ControlFlow;

use super::outcome::Outcome;
use super::parser::StreamParser;
use super::sse::{SseError, SseReader, Tail};
use super::stream::{DeltaKind, Step};
use super::ApiKind;

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The request's outcome.
    pub outcome: Outcome,
    /// Whether the rest of the body may be read to reuse the connection.
    pub drain: bool,
    /// Why, for the rate-limited warning (empty for `ok`).
    pub detail: &'static str,
}

impl Verdict {
    /// A verdict that drops the connection.
    pub const fn drop(outcome: Outcome, detail: &'static str) -> Verdict {
        Verdict {
            outcome,
            drain: false,
            detail,
        }
    }
}

/// The reader and parser of one stream.
#[derive(Debug)]
pub struct StreamDriver {
    reader: SseReader,
    parser: StreamParser,
}

impl StreamDriver {
    /// A driver for a stream of `api`, with events bounded by `max_event_bytes`.
    pub fn new(api: ApiKind, max_event_bytes: usize) -> Self {
        StreamDriver {
            reader: SseReader::new(max_event_bytes),
            parser: StreamParser::new(api),
        }
    }

    /// Feeds one network chunk. `on_content` is called for every content event with its kind,
    /// decoded length and raw `data`; it may end the stream by returning `Break` with a verdict
    /// (a client-side cancel). Returns the verdict once the stream has one; the driver must not
    /// be fed after that.
    pub fn push(
        &mut self,
        chunk: &[u8],
        mut on_content: impl FnMut(DeltaKind, usize, &str) -> ControlFlow<Verdict>,
    ) -> Option<Verdict> {
        let parser = &mut self.parser;
        let mut verdict = None;
        let pushed = self.reader.push(chunk, |ev| {
            let v = match parser.on_event(ev) {
                Step::Ignore => return ControlFlow::Continue(()),
                Step::Content { bytes, kind } => match on_content(kind, bytes, ev.data) {
                    ControlFlow::Continue(()) => return ControlFlow::Continue(()),
                    ControlFlow::Break(v) => v,
                },
                Step::Done => Verdict {
                    outcome: Outcome::Ok,
                    drain: true,
                    detail: "",
                },
                Step::ErrorEvent => Verdict {
                    outcome: Outcome::StreamErrorEvent,
                    drain: true,
                    detail: "error event in a 2xx stream",
                },
                Step::Truncated(why) => Verdict {
                    outcome: Outcome::StreamTruncated,
                    drain: true,
                    detail: why,
                },
                Step::Protocol(why) => Verdict::drop(Outcome::ProtocolError, why),
            };
            verdict = Some(v);
            ControlFlow::Break(())
        });
        match pushed {
            Err(SseError::EventTooLarge { .. }) => Some(Verdict::drop(
                Outcome::ProtocolError,
                "SSE event over max_event_bytes",
            )),
            Err(SseError::InvalidUtf8) => Some(Verdict::drop(
                Outcome::ProtocolError,
                "SSE event is not UTF-8",
            )),
            Ok(_) => verdict,
        }
    }

    /// The verdict when the body ended cleanly without one.
    pub fn at_end(&self) -> Verdict {
        if self.reader.foreign_lines() > 0 {
            return Verdict::drop(Outcome::ProtocolError, "body is not an event stream");
        }
        let detail = match self.reader.finish() {
            Tail::Clean => "stream ended without its terminator",
            Tail::MidEvent => "stream ended inside an event",
        };
        Verdict::drop(Outcome::StreamTruncated, detail)
    }

    /// Output tokens from the stream's usage, when the target sent it.
    pub fn output_tokens(&self) -> Option<u64> {
        self.parser.output_tokens()
    }

    /// Events of unknown types the parser tolerated.
    pub fn unknown_events(&self) -> u64 {
        self.parser.unknown_events()
    }
}
