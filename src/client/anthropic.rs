//! Anthropic Messages stream (`message_start` … `message_stop`).
//!
//! The event kind is taken from the JSON `type` field, falling back to the SSE `event:` name
//! (proxies differ in which one they keep intact).
//! - Content: a `content_block_delta` whose `text_delta.text` (text),
//!   `input_json_delta.partial_json` (tool-call arguments of a `tool_use` block) or
//!   `thinking_delta.thinking` (reasoning) is non-empty: all generated output, see the OpenAI
//!   parser. `signature_delta` and `citations_delta` carry no output.
//! - Completion: `message_stop`.
//! - Errors: an `error` event.
//! - Usage: `usage.output_tokens` of `message_delta`. It is cumulative, so the last value is
//!   the total (never the sum). `message_start`'s usage is a placeholder (1, or 0 through
//!   LiteLLM) and is not read: a stream that ends before any `message_delta` (a cancel) counts
//!   its content deltas, as every other API's stream does.
//! - `ping` and `content_block_start/stop` are ignored; unknown types are ignored and counted
//!   ([`AnthropicStream::unknown_events`]).
//! - Non-stream body: a `message` object with a `content` array (not `"type": "error"`).

use std::borrow::Cow;

use serde::Deserialize;

use super::sse::SseEvent;
use super::stream::{checked_body, DeltaLens, IsArray, OutputUsage, Step, TextLen};

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    usage: Option<OutputUsage>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    text: Option<TextLen>,
    #[serde(default)]
    partial_json: Option<TextLen>,
    #[serde(default)]
    thinking: Option<TextLen>,
}

/// A whole (non-stream) response body.
#[derive(Deserialize)]
struct Body<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    content: Option<IsArray>,
    #[serde(default)]
    usage: Option<OutputUsage>,
}

/// Parser state of one Anthropic stream.
#[derive(Debug, Default)]
pub struct AnthropicStream {
    tokens: Option<u64>,
    done: bool,
    unknown: u64,
}

impl AnthropicStream {
    /// Classifies one event.
    pub fn on_event(&mut self, ev: SseEvent<'_>) -> Step {
        if self.done {
            return Step::Ignore;
        }
        match ev.event {
            "error" => return Step::ErrorEvent,
            "ping" => return Step::Ignore,
            _ => {}
        }
        let e: Event<'_> = match serde_json::from_str(ev.data) {
            Ok(e) => e,
            Err(_) => return Step::Protocol("invalid JSON in an Anthropic stream event"),
        };
        let kind = e.kind.as_deref().unwrap_or(ev.event);
        match kind {
            "content_block_delta" => e.delta.as_ref().map_or(Step::Ignore, |d| {
                DeltaLens {
                    text: TextLen::of(d.text),
                    tool: TextLen::of(d.partial_json),
                    reasoning: TextLen::of(d.thinking),
                }
                .step()
            }),
            // Its usage is a placeholder (often 1, 0 through LiteLLM), not a count: a stream
            // cancelled before message_delta counts its content deltas instead.
            "message_start" => Step::Ignore,
            "message_delta" => {
                if let Some(n) = e.usage.and_then(|u| u.output_tokens) {
                    self.tokens = Some(n);
                }
                Step::Ignore
            }
            "message_stop" => {
                self.done = true;
                Step::Done
            }
            "error" => Step::ErrorEvent,
            "ping" | "content_block_start" | "content_block_stop" => Step::Ignore,
            _ => {
                self.unknown += 1;
                Step::Ignore
            }
        }
    }

    /// Events of unknown types seen so far (tolerated and ignored).
    pub fn unknown_events(&self) -> u64 {
        self.unknown
    }

    /// The last `usage.output_tokens` seen.
    pub fn output_tokens(&self) -> Option<u64> {
        self.tokens
    }

    /// Whether `message_stop` was seen.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// Checks a non-stream response body; returns its output tokens when present.
pub fn parse_body(body: &[u8]) -> Result<Option<u64>, &'static str> {
    let b: Body<'_> = serde_json::from_slice(body)
        .map_err(|_| "response body is not an Anthropic JSON object")?;
    checked_body(
        b.kind.as_deref() == Some("error"),
        b.content.is_some(),
        "response body has no content array",
        b.usage.and_then(|u| u.output_tokens),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::stream::DeltaKind;

    fn feed(p: &mut AnthropicStream, event: &str, data: &str) -> Step {
        p.on_event(SseEvent { event, data })
    }

    const START: &str = r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"m","stop_reason":null,"usage":{"input_tokens":25,"output_tokens":1}}}"#;

    #[test]
    fn complete_stream_with_cumulative_tokens_and_ping() {
        let mut p = AnthropicStream::default();
        assert_eq!(feed(&mut p, "message_start", START), Step::Ignore);
        assert_eq!(
            p.output_tokens(),
            None,
            "message_start's usage is a placeholder"
        );
        assert_eq!(
            feed(
                &mut p,
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#
            ),
            Step::Ignore
        );
        assert_eq!(feed(&mut p, "ping", r#"{"type": "ping"}"#), Step::Ignore);
        assert_eq!(
            feed(
                &mut p,
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#
            ),
            Step::Content {
                bytes: 5,
                kind: DeltaKind::Text
            }
        );
        assert_eq!(
            feed(
                &mut p,
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":""}}"#
            ),
            Step::Ignore
        );
        assert_eq!(
            feed(
                &mut p,
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#
            ),
            Step::Ignore
        );
        let md = |n: u64| {
            format!(
                r#"{{"type":"message_delta","delta":{{"stop_reason":"end_turn","stop_sequence":null}},"usage":{{"output_tokens":{n}}}}}"#
            )
        };
        assert_eq!(feed(&mut p, "message_delta", &md(10)), Step::Ignore);
        assert_eq!(feed(&mut p, "message_delta", &md(15)), Step::Ignore);
        assert_eq!(p.output_tokens(), Some(15), "cumulative: last, not sum");
        assert!(!p.is_done());
        assert_eq!(
            feed(&mut p, "message_stop", r#"{"type":"message_stop"}"#),
            Step::Done
        );
        assert!(p.is_done());
        assert_eq!(feed(&mut p, "", "garbage"), Step::Ignore);
    }

    #[test]
    fn tool_use_and_thinking_deltas_are_content_of_their_kind() {
        let mut p = AnthropicStream::default();
        for (index, delta, want) in [
            (
                1,
                r#"{"type":"input_json_delta","partial_json":"{\"loc"}"#,
                Step::Content {
                    bytes: 5,
                    kind: DeltaKind::ToolCall,
                },
            ),
            (
                0,
                r#"{"type":"thinking_delta","thinking":"hmm"}"#,
                Step::Content {
                    bytes: 3,
                    kind: DeltaKind::Reasoning,
                },
            ),
            (
                0,
                r#"{"type":"signature_delta","signature":"EqQB"}"#,
                Step::Ignore,
            ),
        ] {
            let data =
                format!(r#"{{"type":"content_block_delta","index":{index},"delta":{delta}}}"#);
            assert_eq!(feed(&mut p, "content_block_delta", &data), want, "{delta}");
        }
    }

    #[test]
    fn type_field_wins_and_event_name_is_a_fallback() {
        let mut p = AnthropicStream::default();
        // No `event:` line: the JSON type decides.
        assert_eq!(
            feed(
                &mut p,
                "",
                r#"{"type":"content_block_delta","delta":{"type":"text_delta","text":"x"}}"#
            ),
            Step::Content {
                bytes: 1,
                kind: DeltaKind::Text
            }
        );
        // No type in JSON: the event name decides.
        assert_eq!(feed(&mut p, "message_stop", "{}"), Step::Done);
    }

    #[test]
    fn error_events() {
        for (event, data) in [
            (
                "error",
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            ),
            ("", r#"{"type":"error","error":{"type":"api_error"}}"#),
        ] {
            let mut p = AnthropicStream::default();
            assert_eq!(feed(&mut p, event, data), Step::ErrorEvent, "{data}");
        }
    }

    #[test]
    fn unknown_events_are_ignored_and_garbage_is_protocol() {
        let mut p = AnthropicStream::default();
        assert_eq!(
            feed(&mut p, "brand_new", r#"{"type":"brand_new","x":1}"#),
            Step::Ignore
        );
        assert_eq!(p.unknown_events(), 1);
        assert_eq!(feed(&mut p, "ping", r#"{"type":"ping"}"#), Step::Ignore);
        assert_eq!(p.unknown_events(), 1, "ping is known");
        assert!(matches!(
            feed(&mut p, "content_block_delta", "{oops"),
            Step::Protocol(_)
        ));
        assert!(matches!(feed(&mut p, "", "7"), Step::Protocol(_)));
    }

    #[test]
    fn whole_body() {
        let ok = br#"{"id":"m","type":"message","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":3,"output_tokens":9}}"#;
        assert_eq!(parse_body(ok), Ok(Some(9)));
        assert!(parse_body(br#"{"type":"error","error":{"type":"x"}}"#).is_err());
        assert!(
            parse_body(br#"{"id":"m","type":"message"}"#).is_err(),
            "no content"
        );
        assert!(parse_body(b"nope").is_err());
    }
}
