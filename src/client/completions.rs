//! OpenAI legacy Completions stream (`POST /v1/completions`: `data: {chunk}` … `data: [DONE]`).
//!
//! - Content: a non-empty `choices[].text`; all of it is text.
//! - Completion: only `data: [DONE]` (a `finish_reason` alone is not enough, as for chat).
//! - Errors: a chunk with a top-level `error` (or an `event: error`) after HTTP 200.
//! - Usage: `usage.completion_tokens` of any chunk (with `stream_options.include_usage` a last
//!   chunk with `choices: []`).
//! - Non-stream body: a JSON object with a `choices` array and no `error` object.
//!
//! The stream is the chat parser's ([`DoneStream`]) with this API's choices; chunks are read
//! into structs that keep only string lengths, so parsing allocates nothing.

use serde::Deserialize;

use super::openai::{parse_choices_body, ChoiceKind, DoneStream};
use super::stream::{DeltaKind, DeltaLens, HasLen, TextLen};

/// A legacy completions choice (`text`).
#[derive(Deserialize)]
pub struct Choice {
    #[serde(default)]
    text: Option<TextLen>,
}

impl HasLen for Choice {
    fn lens(&self) -> DeltaLens {
        DeltaLens::of(DeltaKind::Text, self.text.map_or(0, |t| t.0))
    }
}

impl ChoiceKind for Choice {
    const BAD_CHUNK: &'static str = "invalid JSON in a completions stream chunk";
    const BAD_BODY: &'static str = "response body is not a completions JSON object";
}

/// Parser state of one legacy completions stream.
pub type CompletionsStream = DoneStream<Choice>;

/// Checks a non-stream response body; returns its completion tokens when present.
pub fn parse_body(body: &[u8]) -> Result<Option<u64>, &'static str> {
    parse_choices_body::<Choice>(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::sse::SseEvent;
    use crate::client::stream::Step;

    fn feed(p: &mut CompletionsStream, data: &str) -> Step {
        p.on_event(SseEvent { event: "", data })
    }

    #[test]
    fn text_chunks_usage_and_done() {
        let mut p = CompletionsStream::default();
        let c = r#"{"id":"cmpl-1","object":"text_completion","created":1,"choices":[{"text":"Hi \"x\"","index":0,"logprobs":null,"finish_reason":null}],"model":"m"}"#;
        assert_eq!(
            feed(&mut p, c),
            Step::Content {
                bytes: 6,
                kind: DeltaKind::Text
            }
        );
        let fin = r#"{"choices":[{"text":"","index":0,"finish_reason":"length"}]}"#;
        assert_eq!(feed(&mut p, fin), Step::Ignore);
        assert_eq!(
            feed(&mut p, r#"{"choices":[],"usage":{"completion_tokens":5}}"#),
            Step::Ignore
        );
        assert_eq!(p.output_tokens(), Some(5));
        assert!(!p.is_done());
        assert_eq!(feed(&mut p, "[DONE]"), Step::Done);
        assert_eq!(feed(&mut p, "junk"), Step::Ignore);
    }

    #[test]
    fn errors_and_garbage() {
        let mut p = CompletionsStream::default();
        assert_eq!(
            feed(&mut p, r#"{"error":{"message":"x","type":"server_error"}}"#),
            Step::ErrorEvent
        );
        let mut p = CompletionsStream::default();
        assert_eq!(
            p.on_event(SseEvent {
                event: "error",
                data: "{}"
            }),
            Step::ErrorEvent
        );
        for bad in ["{", "[]", r#"{"choices":[{"text":5}]}"#] {
            let mut p = CompletionsStream::default();
            assert!(matches!(feed(&mut p, bad), Step::Protocol(_)), "{bad}");
        }
    }

    #[test]
    fn whole_body() {
        let ok = br#"{"id":"cmpl-1","object":"text_completion","choices":[{"text":"hello","index":0,"finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}}"#;
        assert_eq!(parse_body(ok), Ok(Some(3)));
        assert!(parse_body(br#"{"object":"text_completion"}"#).is_err());
        assert!(parse_body(br#"{"error":{"message":"x"}}"#).is_err());
        assert!(parse_body(b"not json").is_err());
    }
}
