//! What one SSE event means for a stream, per API kind.
//!
//! [`StreamParser`] wraps the per-API parsers ([`OpenAiStream`], [`CompletionsStream`],
//! [`ResponsesStream`], [`AnthropicStream`]) behind one enum, so the request path has no trait
//! objects and no allocation. Each event becomes a [`Step`]; the caller turns steps into TTFT,
//! chunk gaps, and the stream's outcome. A body that ends before [`Step::Done`] is truncated.
//!
//! Every content step says which kind of output it carried ([`DeltaKind`]): text, tool-call
//! arguments or reasoning. A scenario's [`TtftOn`] decides which kinds start the TTFT clock;
//! chunk counts and chunk gaps always count every kind.

use super::anthropic::{self, AnthropicStream};
use super::completions::{self, CompletionsStream};
use super::openai::{self, OpenAiStream};
use super::responses::{self, ResponsesStream};
use super::sse::SseEvent;
use super::{embeddings, ApiKind};

/// What kind of generated output a content delta carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaKind {
    /// Answer text (also a refusal, which is text shown to the user).
    Text,
    /// Tool-call (function) arguments.
    ToolCall,
    /// Reasoning ("thinking") text or a reasoning summary.
    Reasoning,
}

/// Which content deltas start the time to first token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TtftOn {
    /// The first output delta of any kind (text, tool-call arguments, reasoning).
    #[default]
    Any,
    /// The first text delta only; a stream with no text records no TTFT.
    Text,
}

impl TtftOn {
    /// Whether a delta of `kind` may be the first token.
    #[inline]
    pub fn counts(self, kind: DeltaKind) -> bool {
        match self {
            TtftOn::Any => true,
            TtftOn::Text => kind == DeltaKind::Text,
        }
    }

    /// The config spelling: `any` or `text`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TtftOn::Any => "any",
            TtftOn::Text => "text",
        }
    }
}

/// What one event means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Framing, metadata, keep-alive, usage or an unknown event type.
    Ignore,
    /// A content-bearing chunk with `bytes` bytes of generated output.
    Content {
        /// Decoded length of the generated output in this event, all kinds together.
        bytes: usize,
        /// The kind of output; text wins when one event carries several kinds.
        kind: DeltaKind,
    },
    /// The stream's terminator (`[DONE]`, `message_stop`, `response.completed`).
    Done,
    /// An error frame after a 2xx status.
    ErrorEvent,
    /// The target ended the answer in-band without completing it (Responses:
    /// `response.incomplete` for a reason other than `max_output_tokens`).
    Truncated(&'static str),
    /// Not a valid event for this API.
    Protocol(&'static str),
}

/// Generated output of one event, summed per kind (lengths only, nothing copied).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeltaLens {
    pub text: usize,
    pub tool: usize,
    pub reasoning: usize,
}

impl DeltaLens {
    /// Lengths of one kind.
    pub fn of(kind: DeltaKind, n: usize) -> DeltaLens {
        let mut d = DeltaLens::default();
        match kind {
            DeltaKind::Text => d.text = n,
            DeltaKind::ToolCall => d.tool = n,
            DeltaKind::Reasoning => d.reasoning = n,
        }
        d
    }

    /// The step for an event carrying these lengths: content when any is non-empty.
    pub fn step(self) -> Step {
        let bytes = self.text + self.tool + self.reasoning;
        let kind = if self.text > 0 {
            DeltaKind::Text
        } else if self.tool > 0 {
            DeltaKind::ToolCall
        } else {
            DeltaKind::Reasoning
        };
        if bytes > 0 {
            Step::Content { bytes, kind }
        } else {
            Step::Ignore
        }
    }
}

impl std::ops::AddAssign for DeltaLens {
    fn add_assign(&mut self, o: DeltaLens) {
        self.text += o.text;
        self.tool += o.tool;
        self.reasoning += o.reasoning;
    }
}

/// Stream parser state for one response.
#[derive(Debug)]
pub enum StreamParser {
    /// OpenAI Chat Completions.
    OpenAi(OpenAiStream),
    /// OpenAI legacy Completions.
    Completions(CompletionsStream),
    /// OpenAI Responses.
    Responses(ResponsesStream),
    /// Anthropic Messages.
    Anthropic(AnthropicStream),
    /// An API that never streams (embeddings): every event is a protocol error.
    NoStream,
}

impl StreamParser {
    /// A fresh parser for `api`.
    pub fn new(api: ApiKind) -> Self {
        match api {
            ApiKind::OpenAiChat => StreamParser::OpenAi(OpenAiStream::default()),
            ApiKind::OpenAiCompletions => StreamParser::Completions(CompletionsStream::default()),
            ApiKind::OpenAiResponses => StreamParser::Responses(ResponsesStream::default()),
            ApiKind::AnthropicMessages => StreamParser::Anthropic(AnthropicStream::default()),
            ApiKind::OpenAiEmbeddings => StreamParser::NoStream,
        }
    }

    /// Classifies one event.
    #[inline]
    pub fn on_event(&mut self, ev: SseEvent<'_>) -> Step {
        match self {
            StreamParser::OpenAi(p) => p.on_event(ev),
            StreamParser::Completions(p) => p.on_event(ev),
            StreamParser::Responses(p) => p.on_event(ev),
            StreamParser::Anthropic(p) => p.on_event(ev),
            StreamParser::NoStream => {
                Step::Protocol("an event stream from an API that never streams")
            }
        }
    }

    /// Output tokens from the stream's usage, when the target sent it.
    pub fn output_tokens(&self) -> Option<u64> {
        match self {
            StreamParser::OpenAi(p) => p.output_tokens(),
            StreamParser::Completions(p) => p.output_tokens(),
            StreamParser::Responses(p) => p.output_tokens(),
            StreamParser::Anthropic(p) => p.output_tokens(),
            StreamParser::NoStream => None,
        }
    }

    /// Whether the terminator was seen.
    pub fn is_done(&self) -> bool {
        match self {
            StreamParser::OpenAi(p) => p.is_done(),
            StreamParser::Completions(p) => p.is_done(),
            StreamParser::Responses(p) => p.is_done(),
            StreamParser::Anthropic(p) => p.is_done(),
            StreamParser::NoStream => false,
        }
    }

    /// Events of a type this parser does not know, tolerated and ignored (Responses and
    /// Anthropic streams name their event types; the others have none).
    pub fn unknown_events(&self) -> u64 {
        match self {
            StreamParser::Responses(p) => p.unknown_events(),
            StreamParser::Anthropic(p) => p.unknown_events(),
            _ => 0,
        }
    }
}

/// The length of a JSON string, read without allocating (escaped strings are decoded into
/// serde_json's scratch buffer, never into a `String`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TextLen(pub usize);

impl TextLen {
    /// The length of an optional string field: 0 when absent or `null`.
    pub fn of(s: Option<TextLen>) -> usize {
        s.map_or(0, |t| t.0)
    }
}

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

/// The output lengths of a JSON array's elements, summed without collecting them into a
/// `Vec`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SumLen<T>(pub DeltaLens, std::marker::PhantomData<T>);

/// An element of a `SumLen` array (a JSON array whose output lengths are summed).
pub trait HasLen {
    fn lens(&self) -> DeltaLens;
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
                let mut n = DeltaLens::default();
                while let Some(e) = seq.next_element::<T>()? {
                    n += e.lens();
                }
                Ok(SumLen(n, std::marker::PhantomData))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// A JSON array whose elements are skipped unread: a shape check that allocates nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct IsArray(pub usize);

impl<'de> serde::Deserialize<'de> for IsArray {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = IsArray;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<IsArray, A::Error> {
                let mut n = 0;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(IsArray(n))
            }
        }
        d.deserialize_seq(V)
    }
}

/// A `usage` object read for its `output_tokens` alone (Responses and Anthropic).
#[derive(serde::Deserialize)]
pub(crate) struct OutputUsage {
    #[serde(default)]
    pub output_tokens: Option<u64>,
}

/// The last checks of a non-stream 2xx body, the same for every API that has them: an error
/// object fails it, then a missing content array (`missing` names it); else its output tokens.
pub(crate) fn checked_body(
    is_error: bool,
    has_content: bool,
    missing: &'static str,
    tokens: Option<u64>,
) -> Result<Option<u64>, &'static str> {
    if is_error {
        return Err("error object in a 2xx response");
    }
    if !has_content {
        return Err(missing);
    }
    Ok(tokens)
}

/// Checks a whole non-stream 2xx body: valid JSON of the API's shape and not an error object.
/// `inputs` is the number of inputs sent (embeddings must answer one embedding per input).
/// Returns the output tokens from its usage when present.
pub fn parse_body(api: ApiKind, inputs: u32, body: &[u8]) -> Result<Option<u64>, &'static str> {
    match api {
        ApiKind::OpenAiChat => openai::parse_body(body),
        ApiKind::OpenAiCompletions => completions::parse_body(body),
        ApiKind::OpenAiResponses => responses::parse_body(body),
        ApiKind::OpenAiEmbeddings => embeddings::parse_body(body, inputs),
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
            if let Step::Content { bytes: b, .. } = p.on_event(ev) {
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
        // A body must have its API's shape, not just be JSON.
        assert!(parse_body(ApiKind::AnthropicMessages, 1, b"{}").is_err());
        assert_eq!(
            parse_body(
                ApiKind::AnthropicMessages,
                1,
                br#"{"type":"message","content":[]}"#
            ),
            Ok(None)
        );
        assert!(parse_body(ApiKind::OpenAiChat, 1, b"").is_err());
    }
}
