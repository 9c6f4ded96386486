//! What one SSE event means for a stream, per API kind.
//!
//! [`StreamParser`] wraps the per-API parsers ([`OpenAiStream`], [`AnthropicStream`]) behind
//! one enum, so the request path has no trait objects and no allocation. Each event becomes a
//! [`Step`]; the caller turns steps into TTFT, chunk gaps, and the stream's outcome. A body
//! that ends before [`Step::Done`] is truncated.

use super::anthropic::{self, AnthropicStream};
use super::openai::{self, OpenAiStream};
use super::sse::SseEvent;
use super::ApiKind;

/// What one event means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Framing, metadata, keep-alive, usage or an unknown event type.
    Ignore,
    /// A content-bearing chunk with `bytes` bytes of generated text.
    Content {
        /// Decoded length of the generated text in this event.
        bytes: usize,
    },
    /// The stream's terminator (`[DONE]`, `message_stop`).
    Done,
    /// An error frame after a 2xx status.
    ErrorEvent,
    /// Not a valid event for this API.
    Protocol(&'static str),
}

/// Stream parser state for one response.
#[derive(Debug)]
pub enum StreamParser {
    /// OpenAI Chat Completions.
    OpenAi(OpenAiStream),
    /// Anthropic Messages.
    Anthropic(AnthropicStream),
}

impl StreamParser {
    /// A fresh parser for `api`.
    pub fn new(api: ApiKind) -> Self {
        match api {
            ApiKind::OpenAiChat => StreamParser::OpenAi(OpenAiStream::default()),
            ApiKind::AnthropicMessages => StreamParser::Anthropic(AnthropicStream::default()),
        }
    }

    /// Classifies one event.
    #[inline]
    pub fn on_event(&mut self, ev: SseEvent<'_>) -> Step {
        match self {
            StreamParser::OpenAi(p) => p.on_event(ev),
            StreamParser::Anthropic(p) => p.on_event(ev),
        }
    }

    /// Output tokens from the stream's usage, when the target sent it.
    pub fn output_tokens(&self) -> Option<u64> {
        match self {
            StreamParser::OpenAi(p) => p.output_tokens(),
            StreamParser::Anthropic(p) => p.output_tokens(),
        }
    }

    /// Whether the terminator was seen.
    pub fn is_done(&self) -> bool {
        match self {
            StreamParser::OpenAi(p) => p.is_done(),
            StreamParser::Anthropic(p) => p.is_done(),
        }
    }
}

/// The length of a JSON string, read without allocating (escaped strings are decoded into
/// serde_json's scratch buffer, never into a `String`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TextLen(pub usize);

impl<'de> serde::Deserialize<'de> for TextLen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = TextLen;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TextLen, E> {
                Ok(TextLen(v.len()))
            }
        }
        d.deserialize_str(V)
    }
}

/// The lengths of a JSON array's elements, summed without collecting them into a `Vec`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SumLen<T>(pub usize, std::marker::PhantomData<T>);

/// An element of a [`SumLen`] array.
pub(crate) trait HasLen {
    fn len(&self) -> usize;
}

impl<'de, T: serde::Deserialize<'de> + HasLen> serde::Deserialize<'de> for SumLen<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de> + HasLen> serde::de::Visitor<'de> for V<T> {
            type Value = SumLen<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut n = 0;
                while let Some(e) = seq.next_element::<T>()? {
                    n += e.len();
                }
                Ok(SumLen(n, std::marker::PhantomData))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// Checks a whole non-stream 2xx body: valid JSON of the API's shape and not an error object.
/// Returns the output tokens from its usage when present.
pub fn parse_body(api: ApiKind, body: &[u8]) -> Result<Option<u64>, &'static str> {
    match api {
        ApiKind::OpenAiChat => openai::parse_body(body),
        ApiKind::AnthropicMessages => anthropic::parse_body(body),
    }
}

#[cfg(test)]
mod tests {
    use std::ops::ControlFlow;

    use super::super::sse::{SseReader, Tail};
    use super::*;

    /// Runs a whole body through reader and parser; returns (content events, content bytes,
    /// done, tokens, tail).
    fn drive(api: ApiKind, body: &[u8]) -> (usize, usize, bool, Option<u64>, Tail) {
        let mut r = SseReader::default();
        let mut p = StreamParser::new(api);
        let (mut n, mut bytes) = (0, 0);
        let flow = r.push(body, |ev| {
            if let Step::Content { bytes: b } = p.on_event(ev) {
                n += 1;
                bytes += b;
            }
            ControlFlow::Continue(())
        });
        assert_eq!(flow, Ok(ControlFlow::Continue(())));
        (n, bytes, p.is_done(), p.output_tokens(), r.finish())
    }

    #[test]
    fn openai_end_to_end_complete_and_truncated() {
        let body =
            b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n\
data: {\"choices\":[{\"delta\":{\"content\":\"ab\"}}]}\n\n\
data: {\"choices\":[{\"delta\":{\"content\":\"cde\"}}]}\n\n\
data: {\"choices\":[],\"usage\":{\"completion_tokens\":2}}\n\n\
data: [DONE]\n\n";
        assert_eq!(
            drive(ApiKind::OpenAiChat, body),
            (2, 5, true, Some(2), Tail::Clean)
        );
        let cut = &body[..body.len() - "data: [DONE]\n\n".len()];
        assert_eq!(
            drive(ApiKind::OpenAiChat, cut),
            (2, 5, false, Some(2), Tail::Clean)
        );
        // Cut inside the terminator itself: not done, and mid-event.
        let cut = &body[..body.len() - 2];
        let (_, _, done, _, tail) = drive(ApiKind::OpenAiChat, cut);
        assert!(!done);
        assert_eq!(tail, Tail::MidEvent);
    }

    #[test]
    fn anthropic_end_to_end() {
        let body = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"output_tokens\":1}}}\n\n\
event: ping\ndata: {\"type\": \"ping\"}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"hey\"}}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":4}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        assert_eq!(
            drive(ApiKind::AnthropicMessages, body),
            (1, 3, true, Some(4), Tail::Clean)
        );
        assert_eq!(parse_body(ApiKind::AnthropicMessages, b"{}"), Ok(None));
        assert!(parse_body(ApiKind::OpenAiChat, b"").is_err());
    }
}
