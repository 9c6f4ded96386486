//! One stream parser for any API kind, and one non-stream body check.
//!
//! [`StreamParser`] wraps the per-API parsers ([`OpenAiStream`], [`CompletionsStream`],
//! [`ResponsesStream`], [`AnthropicStream`]) behind one enum, so the request path has no trait
//! objects and no allocation; [`parse_body`] picks the API's body check. What an event means
//! ([`Step`]) is defined in [`super::stream`], below both this dispatcher and the parsers.

use super::anthropic::{self, AnthropicStream};
use super::completions::{self, CompletionsStream};
use super::openai::{self, OpenAiStream};
use super::responses::{self, ResponsesStream};
use super::sse::SseEvent;
use super::stream::Step;
use super::{embeddings, ApiKind};

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
