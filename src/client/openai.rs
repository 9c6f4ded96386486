//! OpenAI Chat Completions stream (`data: {chunk}` … `data: [DONE]`).
//!
//! - Content: a non-empty `delta.content` or `delta.refusal` is text; the usual role-only first
//!   chunk (`"content": ""`) is not content. `delta.reasoning_content` / `delta.reasoning`
//!   (reasoning models behind vLLM, DeepSeek, OpenRouter) are reasoning and
//!   `delta.tool_calls[].function.arguments` are tool-call arguments: generated output streamed
//!   through the proxy, so they count as content too (a proxy that stalls them stalls the
//!   user), and `ttft_on = "text"` can leave them out of TTFT.
//! - Completion: only `data: [DONE]`. A `finish_reason` alone is not enough, since a proxy that
//!   drops the end of a stream may still have forwarded it.
//! - Errors: a chunk with a top-level `error` (or an `event: error`) after HTTP 200.
//! - Usage: `usage.completion_tokens` of any chunk (normally the last one, with `choices: []`).
//! - Non-stream body: a JSON object with a `choices` array and no `error` object.
//!
//! Chunks are read into small structs that keep only string lengths (`TextLen`) and sum
//! arrays in place (`SumLen`), so a chunk is parsed without any allocation.

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::sse::SseEvent;
use super::stream::{checked_body, DeltaKind, DeltaLens, HasLen, IsArray, Step, SumLen, TextLen};

/// One chunk of an OpenAI-style stream whose choices are `C`.
#[derive(Deserialize)]
#[serde(bound = "C: serde::de::DeserializeOwned + HasLen")]
struct Chunk<C> {
    #[serde(default)]
    choices: Option<SumLen<C>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

/// The choice of one OpenAI-style API: what its chunks carry, and its name in messages.
pub trait ChoiceKind: serde::de::DeserializeOwned + HasLen {
    /// Why a chunk that is not valid JSON is a protocol error.
    const BAD_CHUNK: &'static str;
    /// Why a non-stream body that is not a JSON object is a protocol error.
    const BAD_BODY: &'static str;
}

/// A chat completions choice (`delta.content`, reasoning, tool-call arguments).
#[derive(Deserialize)]
pub struct Choice {
    #[serde(default)]
    delta: Option<Delta>,
}

impl HasLen for Choice {
    fn lens(&self) -> DeltaLens {
        self.delta
            .as_ref()
            .map_or(DeltaLens::default(), |d| DeltaLens {
                text: TextLen::of(d.content) + TextLen::of(d.refusal),
                tool: d.tool_calls.as_ref().map_or(0, |t| t.0.tool),
                reasoning: TextLen::of(d.reasoning_content) + TextLen::of(d.reasoning),
            })
    }
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<TextLen>,
    #[serde(default)]
    refusal: Option<TextLen>,
    #[serde(default)]
    reasoning_content: Option<TextLen>,
    #[serde(default)]
    reasoning: Option<TextLen>,
    #[serde(default)]
    tool_calls: Option<SumLen<ToolCall>>,
}

#[derive(Deserialize)]
struct ToolCall {
    #[serde(default)]
    function: Option<Function>,
}

impl HasLen for ToolCall {
    fn lens(&self) -> DeltaLens {
        DeltaLens::of(
            DeltaKind::ToolCall,
            self.function
                .as_ref()
                .map_or(0, |f| TextLen::of(f.arguments)),
        )
    }
}

#[derive(Deserialize)]
struct Function {
    #[serde(default)]
    arguments: Option<TextLen>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    completion_tokens: Option<u64>,
}

/// A whole (non-stream) response body.
#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    choices: Option<IsArray>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

impl ChoiceKind for Choice {
    const BAD_CHUNK: &'static str = "invalid JSON in an OpenAI stream chunk";
    const BAD_BODY: &'static str = "response body is not an OpenAI JSON object";
}

/// Parser state of one OpenAI-style stream (`data: {chunk}` … `data: [DONE]`) of choices `C`.
pub struct DoneStream<C> {
    tokens: Option<u64>,
    done: bool,
    choice: std::marker::PhantomData<fn() -> C>,
}

impl<C> std::fmt::Debug for DoneStream<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DoneStream")
            .field("tokens", &self.tokens)
            .field("done", &self.done)
            .finish()
    }
}

impl<C> Default for DoneStream<C> {
    fn default() -> Self {
        DoneStream {
            tokens: None,
            done: false,
            choice: std::marker::PhantomData,
        }
    }
}

/// Parser state of one chat completions stream.
pub type OpenAiStream = DoneStream<Choice>;

impl<C: ChoiceKind> DoneStream<C> {
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
        let chunk: Chunk<C> = match serde_json::from_str(data) {
            Ok(c) => c,
            Err(_) => return Step::Protocol(C::BAD_CHUNK),
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

/// Checks a non-stream chat completions body; returns its completion tokens when present.
pub fn parse_body(body: &[u8]) -> Result<Option<u64>, &'static str> {
    parse_choices_body::<Choice>(body)
}

/// Checks a non-stream OpenAI-style body (a `choices` array, no `error` object); returns its
/// completion tokens when present.
pub fn parse_choices_body<C: ChoiceKind>(body: &[u8]) -> Result<Option<u64>, &'static str> {
    let b: Body = serde_json::from_slice(body).map_err(|_| C::BAD_BODY)?;
    checked_body(
        b.error.is_some(),
        b.choices.is_some(),
        "response body has no choices array",
        b.usage.and_then(|u| u.completion_tokens),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(p: &mut OpenAiStream, data: &str) -> Step {
        p.on_event(SseEvent { event: "", data })
    }

    #[test]
    fn complete_stream_with_role_only_first_chunk_and_usage() {
        let mut p = OpenAiStream::default();
        let role = r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
        assert_eq!(feed(&mut p, role), Step::Ignore);
        assert_eq!(
            feed(
                &mut p,
                r#"{"choices":[{"index":0,"delta":{"content":"Hello"}}]}"#
            ),
            Step::Content {
                bytes: 5,
                kind: DeltaKind::Text
            }
        );
        // Escapes are decoded before counting: "a\nb" is 3 bytes.
        assert_eq!(
            feed(&mut p, r#"{"choices":[{"delta":{"content":"a\nb"}}]}"#),
            Step::Content {
                bytes: 3,
                kind: DeltaKind::Text
            }
        );
        assert_eq!(
            feed(
                &mut p,
                r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#
            ),
            Step::Ignore
        );
        assert!(!p.is_done());
        assert_eq!(p.output_tokens(), None);
        let usage = r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}"#;
        assert_eq!(feed(&mut p, usage), Step::Ignore);
        assert_eq!(p.output_tokens(), Some(12));
        assert_eq!(feed(&mut p, "[DONE]"), Step::Done);
        assert!(p.is_done());
        // Anything after [DONE] is ignored, even garbage.
        assert_eq!(feed(&mut p, "garbage"), Step::Ignore);
    }

    #[test]
    fn null_fields_and_null_usage_are_accepted() {
        let mut p = OpenAiStream::default();
        let s = r#"{"choices":[{"delta":{"content":null,"tool_calls":null}}],"usage":null,"error":null}"#;
        assert_eq!(feed(&mut p, s), Step::Ignore);
        assert_eq!(p.output_tokens(), None);
    }

    #[test]
    fn reasoning_and_tool_call_arguments_count_as_content_of_their_kind() {
        let mut p = OpenAiStream::default();
        let content = |bytes, kind| Step::Content { bytes, kind };
        assert_eq!(
            feed(
                &mut p,
                r#"{"choices":[{"delta":{"reasoning_content":"think"}}]}"#
            ),
            content(5, DeltaKind::Reasoning)
        );
        assert_eq!(
            feed(&mut p, r#"{"choices":[{"delta":{"reasoning":"ab"}}]}"#),
            content(2, DeltaKind::Reasoning)
        );
        let tc = r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"t","type":"function","function":{"name":"f","arguments":""}}]}}]}"#;
        assert_eq!(feed(&mut p, tc), Step::Ignore);
        let tc = r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":"}}]}}]}"#;
        assert_eq!(feed(&mut p, tc), content(5, DeltaKind::ToolCall));
        assert_eq!(
            feed(&mut p, r#"{"choices":[{"delta":{"refusal":"no"}}]}"#),
            content(2, DeltaKind::Text)
        );
        // Several kinds in one chunk: the lengths add up and text decides the kind.
        let mixed = r#"{"choices":[{"delta":{"reasoning":"abc","content":"d","tool_calls":[{"function":{"arguments":"ef"}}]}}]}"#;
        assert_eq!(feed(&mut p, mixed), content(6, DeltaKind::Text));
        let mixed = r#"{"choices":[{"delta":{"reasoning":"abc","tool_calls":[{"function":{"arguments":"ef"}}]}}]}"#;
        assert_eq!(feed(&mut p, mixed), content(5, DeltaKind::ToolCall));
    }

    #[test]
    fn error_payload_and_error_event() {
        let mut p = OpenAiStream::default();
        assert_eq!(
            feed(
                &mut p,
                r#"{"error":{"message":"overloaded","type":"server_error"}}"#
            ),
            Step::ErrorEvent
        );
        let mut p = OpenAiStream::default();
        assert_eq!(
            p.on_event(SseEvent {
                event: "error",
                data: "anything"
            }),
            Step::ErrorEvent
        );
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        for bad in ["{not json", "42", "\"str\"", "[1,2]", r#"{"choices":"x"}"#] {
            let mut p = OpenAiStream::default();
            assert!(matches!(feed(&mut p, bad), Step::Protocol(_)), "{bad}");
        }
    }

    #[test]
    fn last_usage_wins() {
        let mut p = OpenAiStream::default();
        feed(&mut p, r#"{"choices":[],"usage":{"completion_tokens":3}}"#);
        feed(&mut p, r#"{"choices":[],"usage":{"completion_tokens":7}}"#);
        assert_eq!(p.output_tokens(), Some(7));
    }

    #[test]
    fn whole_body() {
        let ok = br#"{"id":"x","choices":[{"message":{"role":"assistant","content":"hi"}}],"usage":{"completion_tokens":4}}"#;
        assert_eq!(parse_body(ok), Ok(Some(4)));
        assert_eq!(parse_body(br#"{"choices":[]}"#), Ok(None));
        assert!(parse_body(br#"{"id":"x"}"#).is_err(), "no choices");
        assert!(parse_body(br#"{"choices":{}}"#).is_err());
        assert!(parse_body(br#"{"error":{"message":"x"}}"#).is_err());
        assert!(parse_body(b"<html>").is_err());
    }
}
