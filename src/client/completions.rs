//! OpenAI legacy Completions stream (`POST /v1/completions`: `data: {chunk}` … `data: [DONE]`).
//!
//! - Content: a non-empty `choices[].text`; all of it is text.
//! - Completion: only `data: [DONE]` (a `finish_reason` alone is not enough, as for chat).
//! - Errors: a chunk with a top-level `error` (or an `event: error`) after HTTP 200.
//! - Usage: `usage.completion_tokens` of any chunk (with `stream_options.include_usage` a last
//!   chunk with `choices: []`).
//! - Non-stream body: a JSON object with a `choices` array and no `error` object.
//!
//! Chunks are read into structs that keep only string lengths, so parsing allocates nothing.

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::sse::SseEvent;
use super::stream::{DeltaKind, DeltaLens, HasLen, IsArray, Step, SumLen, TextLen};

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Option<SumLen<Choice>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    text: Option<TextLen>,
}

impl HasLen for Choice {
    fn lens(&self) -> DeltaLens {
        DeltaLens::of(DeltaKind::Text, self.text.map_or(0, |t| t.0))
    }
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    completion_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    choices: Option<IsArray>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

/// Parser state of one legacy completions stream.
#[derive(Debug, Default)]
pub struct CompletionsStream {
    tokens: Option<u64>,
    done: bool,
}

impl CompletionsStream {
    /// Classifies one event.
    pub fn on_event(&mut self, ev: SseEvent<'_>) -> Step {
        if self.done {
            return Step::Ignore;
        }
        if ev.event == "error" {
            return Step::ErrorEvent;
        }
        let data = ev.data.trim_ascii();
        if data == "[DONE]" {
            self.done = true;
            return Step::Done;
        }
        if data.is_empty() {
            return Step::Ignore;
        }
        // serde would also read a struct from a JSON array; a chunk is an object.
        if !data.starts_with('{') {
            return Step::Protocol("a stream chunk that is not a JSON object");
        }
        let chunk: Chunk = match serde_json::from_str(data) {
            Ok(c) => c,
            Err(_) => return Step::Protocol("invalid JSON in a completions stream chunk"),
        };
        if chunk.error.is_some() {
            return Step::ErrorEvent;
        }
        if let Some(n) = chunk.usage.and_then(|u| u.completion_tokens) {
            self.tokens = Some(n);
        }
        chunk.choices.map_or(Step::Ignore, |c| c.0.step())
    }

    /// `usage.completion_tokens`, when the target sent it.
    pub fn output_tokens(&self) -> Option<u64> {
        self.tokens
    }

    /// Whether `[DONE]` was seen.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// Checks a non-stream response body; returns its completion tokens when present.
pub fn parse_body(body: &[u8]) -> Result<Option<u64>, &'static str> {
    let b: Body = serde_json::from_slice(body)
        .map_err(|_| "response body is not a completions JSON object")?;
    if b.error.is_some() {
        return Err("error object in a 2xx response");
    }
    if b.choices.is_none() {
        return Err("response body has no choices array");
    }
    Ok(b.usage.and_then(|u| u.completion_tokens))
}

#[cfg(test)]
mod tests {
    use super::*;

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
