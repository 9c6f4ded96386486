//! OpenAI Responses stream (`POST /v1/responses`): typed events, `response.created` …
//! `response.completed`.
//!
//! Each event is an SSE `event:` line and a JSON object with the same `type`; the JSON `type`
//! decides, the `event:` name is the fallback (proxies differ in which one they keep).
//! - Content: a non-empty `delta` of `response.output_text.delta` or `response.refusal.delta`
//!   (text); of `response.function_call_arguments.delta`,
//!   `response.custom_tool_call_input.delta`, `response.mcp_call_arguments.delta` or
//!   `response.code_interpreter_call_code.delta` (tool-call arguments); of
//!   `response.reasoning_summary_text.delta` or `response.reasoning_text.delta` (reasoning).
//! - Completion: only `response.completed`. A `data: [DONE]` after it is accepted (some
//!   gateways add one); a `[DONE]` before it ends the stream as truncated.
//! - `response.incomplete`: with `incomplete_details.reason = "max_output_tokens"` the answer
//!   hit the token budget the request asked for, so the stream is complete (as chat's
//!   `finish_reason: "length"` is); any other reason (`content_filter`, none) is
//!   [`Step::Truncated`].
//! - Errors: `response.failed` or `error`. The first terminal event decides: an `error` that
//!   precedes `response.failed` gives one error, and everything after a terminal event is
//!   ignored, so a request always gets exactly one outcome.
//! - Usage: `response.usage.output_tokens` of the terminal event (`response.completed` or
//!   `response.incomplete`); without it the caller counts content chunks.
//! - Unknown event types are tolerated, ignored and counted ([`ResponsesStream::unknown_events`]);
//!   the lifecycle and hosted-tool progress events of the published API are known.
//! - Non-stream body: a JSON object with an `output` array, no `error` object, and a `status`
//!   that is not `failed`, `cancelled`, or `incomplete` for a reason other than
//!   `max_output_tokens`.
//!
//! Events are read into structs that keep only lengths and borrowed type names; the whole
//! response object inside `response.completed` is skipped without being built.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::sse::SseEvent;
use super::stream::{DeltaKind, DeltaLens, IsArray, OutputUsage, Step, TextLen};

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    delta: Option<TextLen>,
    #[serde(default, borrow)]
    response: Option<Response<'a>>,
}

/// The `type` alone, for events whose other fields did not fit [`Event`].
#[derive(Deserialize)]
struct TypeOnly<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Response<'a> {
    #[serde(default)]
    usage: Option<OutputUsage>,
    #[serde(default, borrow)]
    incomplete_details: Option<Incomplete<'a>>,
}

#[derive(Deserialize)]
struct Incomplete<'a> {
    #[serde(default, borrow)]
    reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(default, borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(default)]
    output: Option<IsArray>,
    #[serde(default)]
    error: Option<IgnoredAny>,
    #[serde(default, borrow)]
    incomplete_details: Option<Incomplete<'a>>,
    #[serde(default)]
    usage: Option<OutputUsage>,
}

/// The token budget reason of `response.incomplete`, which still counts as a full answer.
pub const BUDGET_REASON: &str = "max_output_tokens";

/// Event types of the published API that carry no output and end nothing.
const KNOWN: &[&str] = &[
    "response.created",
    "response.in_progress",
    "response.queued",
    "response.output_item.added",
    "response.output_item.done",
    "response.content_part.added",
    "response.content_part.done",
    "response.output_text.done",
    "response.output_text.annotation.added",
    "response.refusal.done",
    "response.function_call_arguments.done",
    "response.custom_tool_call_input.done",
    "response.mcp_call_arguments.done",
    "response.code_interpreter_call_code.done",
    "response.reasoning_summary_part.added",
    "response.reasoning_summary_part.done",
    "response.reasoning_summary_text.done",
    "response.reasoning_text.done",
];

/// Families of hosted-tool progress and audio events, known by prefix.
const KNOWN_PREFIXES: &[&str] = &[
    "response.web_search_call.",
    "response.file_search_call.",
    "response.code_interpreter_call.",
    "response.image_generation_call.",
    "response.mcp_call.",
    "response.mcp_list_tools.",
    "response.audio.",
];

/// The kind of output an event type carries, if it is a content delta.
fn delta_kind(kind: &str) -> Option<DeltaKind> {
    Some(match kind {
        "response.output_text.delta" | "response.refusal.delta" => DeltaKind::Text,
        "response.function_call_arguments.delta"
        | "response.custom_tool_call_input.delta"
        | "response.mcp_call_arguments.delta"
        | "response.code_interpreter_call_code.delta" => DeltaKind::ToolCall,
        "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
            DeltaKind::Reasoning
        }
        _ => return None,
    })
}

fn is_terminal(kind: &str) -> bool {
    matches!(
        kind,
        "response.completed" | "response.incomplete" | "response.failed" | "error"
    )
}

fn is_known(kind: &str) -> bool {
    KNOWN.contains(&kind) || KNOWN_PREFIXES.iter().any(|p| kind.starts_with(p))
}

/// Why a `response.incomplete` with this reason did not complete the answer.
fn incomplete_why(reason: Option<&str>) -> Option<&'static str> {
    match reason {
        Some(BUDGET_REASON) => None,
        Some("content_filter") => Some("response.incomplete: content_filter"),
        Some(_) => Some("response.incomplete for a reason other than max_output_tokens"),
        None => Some("response.incomplete without a reason"),
    }
}

/// Parser state of one Responses stream.
#[derive(Debug, Default)]
pub struct ResponsesStream {
    tokens: Option<u64>,
    /// `response.completed` (or a budget `response.incomplete`) was seen.
    done: bool,
    /// A terminal step was returned; later events are ignored.
    finished: bool,
    unknown: u64,
}

impl ResponsesStream {
    /// Classifies one event.
    pub fn on_event(&mut self, ev: SseEvent<'_>) -> Step {
        if self.finished {
            return Step::Ignore;
        }
        let data = ev.data.trim_ascii();
        if data == "[DONE]" {
            self.finished = true;
            return Step::Truncated("data: [DONE] before response.completed");
        }
        if !data.starts_with('{') {
            return self.odd_event(ev.event, data);
        }
        let e: Event<'_> = match serde_json::from_str(data) {
            Ok(e) => e,
            Err(_) => return self.odd_event(ev.event, data),
        };
        let kind = e.kind.as_deref().unwrap_or(ev.event);
        if let Some(k) = delta_kind(kind) {
            return DeltaLens::of(k, e.delta.map_or(0, |d| d.0)).step();
        }
        match kind {
            "response.completed" => {
                self.take_usage(e.response.as_ref());
                self.finished = true;
                self.done = true;
                Step::Done
            }
            "response.incomplete" => {
                self.take_usage(e.response.as_ref());
                self.finished = true;
                let reason = e
                    .response
                    .as_ref()
                    .and_then(|r| r.incomplete_details.as_ref())
                    .and_then(|d| d.reason.as_deref());
                match incomplete_why(reason) {
                    None => {
                        self.done = true;
                        Step::Done
                    }
                    Some(why) => Step::Truncated(why),
                }
            }
            "response.failed" | "error" => {
                self.finished = true;
                Step::ErrorEvent
            }
            k if is_known(k) => Step::Ignore,
            _ => {
                self.unknown += 1;
                Step::Ignore
            }
        }
    }

    /// An event whose JSON did not fit the shapes above: an `error` is still an error; an
    /// unknown type with fields of other shapes is tolerated; anything else is garbage.
    fn odd_event(&mut self, event: &str, data: &str) -> Step {
        let kind = data
            .starts_with('{')
            .then(|| serde_json::from_str::<TypeOnly<'_>>(data).ok())
            .flatten()
            .map(|t| t.kind.map_or(Cow::Borrowed(event), |k| k));
        match kind.as_deref() {
            Some("error" | "response.failed") => {
                self.finished = true;
                Step::ErrorEvent
            }
            None if event == "error" => {
                self.finished = true;
                Step::ErrorEvent
            }
            Some(k) if !is_terminal(k) && !is_known(k) && delta_kind(k).is_none() => {
                self.unknown += 1;
                Step::Ignore
            }
            _ => Step::Protocol("invalid JSON in a Responses stream event"),
        }
    }

    fn take_usage(&mut self, r: Option<&Response<'_>>) {
        if let Some(n) = r
            .and_then(|r| r.usage.as_ref())
            .and_then(|u| u.output_tokens)
        {
            self.tokens = Some(n);
        }
    }

    /// `usage.output_tokens` of the terminal event, when the target sent it.
    pub fn output_tokens(&self) -> Option<u64> {
        self.tokens
    }

    /// Whether the stream completed (`response.completed`, or `response.incomplete` for the
    /// token budget).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Events of unknown types seen so far (tolerated and ignored).
    pub fn unknown_events(&self) -> u64 {
        self.unknown
    }
}

/// Checks a non-stream response object; returns its output tokens when present.
pub fn parse_body(body: &[u8]) -> Result<Option<u64>, &'static str> {
    let b: Body<'_> =
        serde_json::from_slice(body).map_err(|_| "response body is not a Responses JSON object")?;
    if b.error.is_some() {
        return Err("error object in a 2xx response");
    }
    match b.status.as_deref() {
        Some("failed") => return Err("response status failed"),
        Some("cancelled") => return Err("response status cancelled"),
        Some("incomplete") => {
            let reason = b
                .incomplete_details
                .as_ref()
                .and_then(|d| d.reason.as_deref());
            if let Some(why) = incomplete_why(reason) {
                return Err(why);
            }
        }
        _ => {}
    }
    if b.output.is_none() {
        return Err("response body has no output array");
    }
    Ok(b.usage.and_then(|u| u.output_tokens))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(p: &mut ResponsesStream, event: &str, data: &str) -> Step {
        p.on_event(SseEvent { event, data })
    }

    /// Feeds `type` as both the event name and the JSON type, with `rest` as more fields.
    fn typed(p: &mut ResponsesStream, kind: &str, rest: &str) -> Step {
        let sep = if rest.is_empty() { "" } else { "," };
        feed(p, kind, &format!(r#"{{"type":"{kind}"{sep}{rest}}}"#))
    }

    fn content(bytes: usize, kind: DeltaKind) -> Step {
        Step::Content { bytes, kind }
    }

    const RESP: &str = r#""response":{"id":"resp_1","object":"response","status":"in_progress","output":[],"usage":null}"#;

    #[test]
    fn a_complete_text_stream() {
        let mut p = ResponsesStream::default();
        assert_eq!(typed(&mut p, "response.created", RESP), Step::Ignore);
        assert_eq!(typed(&mut p, "response.in_progress", RESP), Step::Ignore);
        assert_eq!(
            typed(
                &mut p,
                "response.output_item.added",
                r#""output_index":0,"item":{"id":"msg_1","type":"message","role":"assistant","content":[]}"#
            ),
            Step::Ignore
        );
        assert_eq!(
            typed(
                &mut p,
                "response.content_part.added",
                r#""item_id":"msg_1","part":{"type":"output_text","text":"","annotations":[]}"#
            ),
            Step::Ignore
        );
        let delta = |d: &str| {
            format!(
                r#""item_id":"msg_1","output_index":0,"content_index":0,"delta":"{d}","sequence_number":4"#
            )
        };
        assert_eq!(
            typed(&mut p, "response.output_text.delta", &delta("Hel")),
            content(3, DeltaKind::Text)
        );
        assert_eq!(
            typed(&mut p, "response.output_text.delta", &delta("")),
            Step::Ignore
        );
        assert_eq!(
            typed(&mut p, "response.output_text.done", r#""text":"Hel""#),
            Step::Ignore
        );
        assert!(!p.is_done());
        let done = r#""response":{"id":"resp_1","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"Hel \"q\""}]}],"usage":{"input_tokens":5,"output_tokens":3,"total_tokens":8}}"#;
        assert_eq!(typed(&mut p, "response.completed", done), Step::Done);
        assert!(p.is_done());
        assert_eq!(p.output_tokens(), Some(3));
        // A [DONE] after completion is accepted, and so is anything else.
        assert_eq!(feed(&mut p, "", "[DONE]"), Step::Ignore);
        assert_eq!(feed(&mut p, "", "garbage"), Step::Ignore);
        assert_eq!(p.unknown_events(), 0);
    }

    #[test]
    fn tool_call_and_reasoning_deltas_have_their_kinds() {
        let mut p = ResponsesStream::default();
        for (kind, want) in [
            (
                "response.function_call_arguments.delta",
                DeltaKind::ToolCall,
            ),
            ("response.custom_tool_call_input.delta", DeltaKind::ToolCall),
            (
                "response.reasoning_summary_text.delta",
                DeltaKind::Reasoning,
            ),
            ("response.reasoning_text.delta", DeltaKind::Reasoning),
            ("response.refusal.delta", DeltaKind::Text),
        ] {
            assert_eq!(
                typed(&mut p, kind, r#""item_id":"x","delta":"{\"a\":1}""#),
                content(7, want),
                "{kind}"
            );
        }
    }

    #[test]
    fn the_json_type_wins_over_the_event_name() {
        let mut p = ResponsesStream::default();
        assert_eq!(
            feed(
                &mut p,
                "message",
                r#"{"type":"response.output_text.delta","delta":"ab"}"#
            ),
            content(2, DeltaKind::Text)
        );
        assert_eq!(
            feed(&mut p, "response.output_text.delta", r#"{"delta":"abc"}"#),
            content(3, DeltaKind::Text)
        );
    }

    #[test]
    fn incomplete_is_ok_only_for_the_token_budget() {
        let inc = |reason: &str| {
            format!(
                r#""response":{{"status":"incomplete","incomplete_details":{reason},"usage":{{"output_tokens":9}}}}"#
            )
        };
        let mut p = ResponsesStream::default();
        assert_eq!(
            typed(
                &mut p,
                "response.incomplete",
                &inc(r#"{"reason":"max_output_tokens"}"#)
            ),
            Step::Done
        );
        assert!(p.is_done());
        assert_eq!(p.output_tokens(), Some(9));
        for reason in [
            r#"{"reason":"content_filter"}"#,
            r#"{"reason":"other"}"#,
            "null",
        ] {
            let mut p = ResponsesStream::default();
            assert!(
                matches!(
                    typed(&mut p, "response.incomplete", &inc(reason)),
                    Step::Truncated(_)
                ),
                "{reason}"
            );
            assert!(!p.is_done());
            assert_eq!(p.output_tokens(), Some(9));
        }
    }

    #[test]
    fn failures_give_exactly_one_error() {
        let mut p = ResponsesStream::default();
        let err = r#""code":"server_error","message":"boom","param":null,"sequence_number":7"#;
        assert_eq!(typed(&mut p, "error", err), Step::ErrorEvent);
        let failed =
            r#""response":{"status":"failed","error":{"code":"server_error","message":"boom"}}"#;
        assert_eq!(
            typed(&mut p, "response.failed", failed),
            Step::Ignore,
            "the error came first; response.failed adds no second outcome"
        );
        let mut p = ResponsesStream::default();
        assert_eq!(typed(&mut p, "response.failed", failed), Step::ErrorEvent);
        assert_eq!(typed(&mut p, "response.completed", RESP), Step::Ignore);
        // An `error` event whose data is not even JSON is still an error.
        let mut p = ResponsesStream::default();
        assert_eq!(
            feed(&mut p, "error", "upstream went away"),
            Step::ErrorEvent
        );
        // So is a failure whose response object has an unexpected shape.
        let mut p = ResponsesStream::default();
        assert_eq!(
            typed(&mut p, "response.failed", r#""response":"gone""#),
            Step::ErrorEvent
        );
    }

    #[test]
    fn done_before_completed_is_truncated() {
        let mut p = ResponsesStream::default();
        assert_eq!(
            typed(&mut p, "response.output_text.delta", r#""delta":"x""#),
            content(1, DeltaKind::Text)
        );
        assert!(matches!(feed(&mut p, "", "[DONE]"), Step::Truncated(_)));
        assert!(!p.is_done());
    }

    #[test]
    fn unknown_types_are_counted_known_ones_are_not() {
        let mut p = ResponsesStream::default();
        assert_eq!(
            typed(&mut p, "response.brand_new.thing", r#""x":1"#),
            Step::Ignore
        );
        // An unknown type whose fields clash with the known shapes is still tolerated.
        assert_eq!(
            typed(
                &mut p,
                "response.future.delta",
                r#""delta":{"nested":true}"#
            ),
            Step::Ignore
        );
        assert_eq!(typed(&mut p, "keepalive", ""), Step::Ignore);
        assert_eq!(p.unknown_events(), 3);
        for k in [
            "response.web_search_call.searching",
            "response.output_text.annotation.added",
            "response.reasoning_summary_part.added",
            "response.queued",
        ] {
            assert_eq!(typed(&mut p, k, r#""item_id":"x""#), Step::Ignore, "{k}");
        }
        assert_eq!(p.unknown_events(), 3);
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        for (event, data) in [
            ("", "{not json"),
            ("", "17"),
            ("", "[]"),
            (
                "response.output_text.delta",
                r#"{"type":"response.output_text.delta","delta":5}"#,
            ),
            ("", r#"{"type":"response.completed","response":"done"}"#),
        ] {
            let mut p = ResponsesStream::default();
            assert!(
                matches!(feed(&mut p, event, data), Step::Protocol(_)),
                "{data}"
            );
        }
    }

    #[test]
    fn whole_body() {
        let ok = br#"{"id":"resp_1","object":"response","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"hi"}]}],"error":null,"incomplete_details":null,"usage":{"input_tokens":3,"output_tokens":2,"total_tokens":5}}"#;
        assert_eq!(parse_body(ok), Ok(Some(2)));
        let budget = br#"{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[],"usage":{"output_tokens":4}}"#;
        assert_eq!(parse_body(budget), Ok(Some(4)));
        for bad in [
            &br#"{"status":"incomplete","incomplete_details":{"reason":"content_filter"},"output":[]}"#[..],
            br#"{"status":"failed","error":{"code":"server_error","message":"x"},"output":[]}"#,
            br#"{"status":"failed","error":null,"output":[]}"#,
            br#"{"status":"completed"}"#,
            br#"{"error":{"message":"x"}}"#,
            b"<html>",
        ] {
            assert!(parse_body(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
