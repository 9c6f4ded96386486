//! Classification of whole bodies for every streaming API — ok, truncated, error event,
//! garbage — through the real [`StreamDriver`], with the body cut at every byte position,
//! byte by byte, and at seeded random multi-splits: the outcome, the content kinds in order
//! and the usage tokens must not depend on where the network split the bytes.

use std::ops::ControlFlow;

use super::drive::{StreamDriver, Verdict};
use super::outcome::Outcome;
use super::sse::DEFAULT_MAX_EVENT_BYTES;
use super::stream::DeltaKind::{self, Reasoning, Text, ToolCall};
use super::ApiKind;

/// What one body must come to.
struct Case {
    api: ApiKind,
    name: &'static str,
    body: String,
    outcome: Outcome,
    kinds: Vec<DeltaKind>,
    tokens: Option<u64>,
}

fn case(
    api: ApiKind,
    name: &'static str,
    body: impl Into<String>,
    outcome: Outcome,
    kinds: &[DeltaKind],
    tokens: Option<u64>,
) -> Case {
    Case {
        api,
        name,
        body: body.into(),
        outcome,
        kinds: kinds.to_vec(),
        tokens,
    }
}

/// The outcome, content kinds in order, and tokens of `pieces` fed in order.
fn run(api: ApiKind, pieces: &[&[u8]]) -> (Outcome, Vec<DeltaKind>, Option<u64>) {
    let mut d = StreamDriver::new(api, DEFAULT_MAX_EVENT_BYTES);
    let mut kinds = Vec::new();
    let mut verdict: Option<Verdict> = None;
    for p in pieces {
        verdict = d.push(p, |k, bytes, _| {
            assert!(bytes > 0, "content events carry output");
            kinds.push(k);
            ControlFlow::Continue(())
        });
        if verdict.is_some() {
            break;
        }
    }
    let v = verdict.unwrap_or_else(|| d.at_end());
    (v.outcome, kinds, d.output_tokens())
}

fn check_every_split(c: &Case) {
    let b = c.body.as_bytes();
    let want = (c.outcome, c.kinds.clone(), c.tokens);
    let label = format!("{} {}", c.api, c.name);
    assert_eq!(run(c.api, &[b]), want, "{label}: whole body");
    for i in 0..=b.len() {
        assert_eq!(
            run(c.api, &[&b[..i], &b[i..]]),
            want,
            "{label}: split at {i}"
        );
    }
    let bytes: Vec<&[u8]> = b.chunks(1).collect();
    assert_eq!(run(c.api, &bytes), want, "{label}: byte at a time");
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..50 {
        let mut pieces = Vec::new();
        let mut at = 0;
        while at < b.len() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let end = (at + (x % 40) as usize).min(b.len());
            pieces.push(&b[at..end]);
            at = end;
        }
        assert_eq!(run(c.api, &pieces), want, "{label}: random split");
    }
}

fn data(json: &str) -> String {
    format!("data: {json}\n\n")
}

fn ev(name: &str, json: &str) -> String {
    format!("event: {name}\ndata: {json}\n\n")
}

/// A typed event whose `event:` name equals its JSON `type` (Responses, Anthropic).
fn typed(kind: &str, rest: &str) -> String {
    ev(kind, &format!(r#"{{"type":"{kind}",{rest}}}"#))
}

/// An HTML error page where an event stream was expected: lines that are not SSE fields.
const HTML: &str = "<html><body>502 Bad Gateway</body></html>\n\u{1b}[0m{{{ not json\n";

fn chat_cases() -> Vec<Case> {
    use ApiKind::OpenAiChat as A;
    let chunk = |delta: &str| {
        data(&format!(
            r#"{{"id":"c1","object":"chat.completion.chunk","choices":[{{"index":0,"delta":{delta},"finish_reason":null}}]}}"#
        ))
    };
    let body = [
        chunk(r#"{"role":"assistant","content":""}"#),
        ": keep-alive\n\n".to_string(),
        chunk(r#"{"reasoning_content":"think \"hard\""}"#),
        chunk(
            r#"{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}"#,
        ),
        chunk(r#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"q\":1}"}}]}"#),
        chunk(r#"{"content":"héllo"}"#),
        data(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#),
        data(r#"{"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":5}}"#),
    ]
    .concat();
    let kinds = [Reasoning, ToolCall, Text];
    vec![
        case(
            A,
            "ok",
            format!("{body}data: [DONE]\n\n"),
            Outcome::Ok,
            &kinds,
            Some(5),
        ),
        case(
            A,
            "ok CRLF",
            format!("{body}data: [DONE]\n\n").replace('\n', "\r\n"),
            Outcome::Ok,
            &kinds,
            Some(5),
        ),
        case(
            A,
            "no [DONE]",
            body.clone(),
            Outcome::StreamTruncated,
            &kinds,
            Some(5),
        ),
        case(
            A,
            "cut in [DONE]",
            format!("{body}data: [DO"),
            Outcome::StreamTruncated,
            &kinds,
            Some(5),
        ),
        case(
            A,
            "error payload",
            format!(
                "{}{}",
                chunk(r#"{"content":"a"}"#),
                data(r#"{"error":{"message":"x","type":"server_error"}}"#)
            ),
            Outcome::StreamErrorEvent,
            &[Text],
            None,
        ),
        case(
            A,
            "event: error",
            ev("error", "{}"),
            Outcome::StreamErrorEvent,
            &[],
            None,
        ),
        case(A, "html", HTML, Outcome::ProtocolError, &[], None),
        case(
            A,
            "bad json",
            format!("{}data: {{nope\n\n", chunk(r#"{"content":"a"}"#)),
            Outcome::ProtocolError,
            &[Text],
            None,
        ),
    ]
}

fn completions_cases() -> Vec<Case> {
    use ApiKind::OpenAiCompletions as A;
    let chunk = |t: &str| {
        data(&format!(
            r#"{{"id":"cmpl-1","object":"text_completion","choices":[{{"text":"{t}","index":0,"logprobs":null,"finish_reason":null}}],"model":"m"}}"#
        ))
    };
    let body = [
        chunk("Once"),
        chunk(" upon"),
        data(r#"{"choices":[{"text":"","index":0,"finish_reason":"length"}]}"#),
        data(r#"{"choices":[],"usage":{"completion_tokens":2}}"#),
    ]
    .concat();
    vec![
        case(
            A,
            "ok",
            format!("{body}data: [DONE]\n\n"),
            Outcome::Ok,
            &[Text, Text],
            Some(2),
        ),
        case(
            A,
            "no [DONE]",
            body,
            Outcome::StreamTruncated,
            &[Text, Text],
            Some(2),
        ),
        case(
            A,
            "error payload",
            format!("{}{}", chunk("a"), data(r#"{"error":{"message":"x"}}"#)),
            Outcome::StreamErrorEvent,
            &[Text],
            None,
        ),
        case(A, "html", HTML, Outcome::ProtocolError, &[], None),
        case(
            A,
            "array chunk",
            data("[1]"),
            Outcome::ProtocolError,
            &[],
            None,
        ),
    ]
}

fn responses_cases() -> Vec<Case> {
    use ApiKind::OpenAiResponses as A;
    let resp = |status: &str, extra: &str| {
        format!(
            r#""response":{{"id":"resp_1","object":"response","status":"{status}","output":[]{extra}}}"#
        )
    };
    let head = [
        typed("response.created", &resp("in_progress", r#","usage":null"#)),
        typed("response.in_progress", &resp("in_progress", "")),
        typed("response.output_item.added", r#""output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[]}"#),
        typed("response.reasoning_summary_text.delta", r#""item_id":"rs_1","summary_index":0,"delta":"plan""#),
        typed("response.output_item.added", r#""output_index":1,"item":{"id":"fc_1","type":"function_call","name":"f","arguments":""}"#),
        typed("response.function_call_arguments.delta", r#""item_id":"fc_1","delta":"{\"q\":1}""#),
        typed("response.function_call_arguments.done", r#""item_id":"fc_1","arguments":"{\"q\":1}""#),
        typed("response.content_part.added", r#""item_id":"msg_1","part":{"type":"output_text","text":""}"#),
        typed("response.output_text.delta", r#""item_id":"msg_1","delta":"Hi ☃","sequence_number":9"#),
        typed("response.brand_new_event", r#""x":1"#),
        typed("response.output_text.done", r#""item_id":"msg_1","text":"Hi ☃""#),
    ]
    .concat();
    let kinds = [Reasoning, ToolCall, Text];
    let usage = r#","usage":{"input_tokens":3,"output_tokens":7,"total_tokens":10}"#;
    let completed = typed("response.completed", &resp("completed", usage));
    let incomplete = |reason: &str| {
        typed(
            "response.incomplete",
            &resp(
                "incomplete",
                &format!(r#","incomplete_details":{{"reason":"{reason}"}}{usage}"#),
            ),
        )
    };
    let error = typed(
        "error",
        r#""code":"server_error","message":"boom","param":null"#,
    );
    let failed = typed(
        "response.failed",
        &resp(
            "failed",
            r#","error":{"code":"server_error","message":"boom"}"#,
        ),
    );
    vec![
        case(
            A,
            "completed",
            format!("{head}{completed}"),
            Outcome::Ok,
            &kinds,
            Some(7),
        ),
        case(
            A,
            "completed then [DONE]",
            format!("{head}{completed}data: [DONE]\n\n"),
            Outcome::Ok,
            &kinds,
            Some(7),
        ),
        case(
            A,
            "incomplete: budget",
            format!("{head}{}", incomplete("max_output_tokens")),
            Outcome::Ok,
            &kinds,
            Some(7),
        ),
        case(
            A,
            "no completed",
            head.clone(),
            Outcome::StreamTruncated,
            &kinds,
            None,
        ),
        case(
            A,
            "incomplete: filter",
            format!("{head}{}", incomplete("content_filter")),
            Outcome::StreamTruncated,
            &kinds,
            Some(7),
        ),
        case(
            A,
            "[DONE] before completed",
            format!("{head}data: [DONE]\n\n{completed}"),
            Outcome::StreamTruncated,
            &kinds,
            None,
        ),
        case(
            A,
            "error then failed",
            format!("{head}{error}{failed}"),
            Outcome::StreamErrorEvent,
            &kinds,
            None,
        ),
        case(
            A,
            "failed",
            format!("{head}{failed}"),
            Outcome::StreamErrorEvent,
            &kinds,
            None,
        ),
        case(A, "html", HTML, Outcome::ProtocolError, &[], None),
        case(
            A,
            "bad delta",
            typed("response.output_text.delta", r#""delta":42"#),
            Outcome::ProtocolError,
            &[],
            None,
        ),
    ]
}

fn anthropic_cases() -> Vec<Case> {
    use ApiKind::AnthropicMessages as A;
    let delta = |i: u32, d: &str| {
        typed(
            "content_block_delta",
            &format!(r#""index":{i},"delta":{d}"#),
        )
    };
    let body = [
        typed("message_start", r#""message":{"id":"msg_1","type":"message","role":"assistant","content":[],"usage":{"input_tokens":9,"output_tokens":1}}"#),
        typed("content_block_start", r#""index":0,"content_block":{"type":"thinking","thinking":""}"#),
        ev("ping", r#"{"type": "ping"}"#),
        delta(0, r#"{"type":"thinking_delta","thinking":"hmm"}"#),
        delta(0, r#"{"type":"signature_delta","signature":"EqQB"}"#),
        typed("content_block_stop", r#""index":0"#),
        typed("content_block_start", r#""index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{}}"#),
        delta(1, r#"{"type":"input_json_delta","partial_json":"{\"q\":"}"#),
        delta(1, r#"{"type":"input_json_delta","partial_json":"1}"}"#),
        typed("content_block_stop", r#""index":1"#),
        delta(2, r#"{"type":"text_delta","text":"ok"}"#),
        typed("message_delta", r#""delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":6}"#),
    ]
    .concat();
    let kinds = [Reasoning, ToolCall, ToolCall, Text];
    vec![
        case(
            A,
            "ok",
            format!("{body}{}", typed("message_stop", r#""x":0"#)),
            Outcome::Ok,
            &kinds,
            Some(6),
        ),
        case(
            A,
            "no message_stop",
            body.clone(),
            Outcome::StreamTruncated,
            &kinds,
            Some(6),
        ),
        case(
            A,
            "error",
            format!(
                "{}{}",
                delta(0, r#"{"type":"text_delta","text":"a"}"#),
                typed(
                    "error",
                    r#""error":{"type":"overloaded_error","message":"Overloaded"}"#
                )
            ),
            Outcome::StreamErrorEvent,
            &[Text],
            None,
        ),
        case(A, "html", HTML, Outcome::ProtocolError, &[], None),
        case(
            A,
            "bad json",
            ev("content_block_delta", "{oops"),
            Outcome::ProtocolError,
            &[],
            None,
        ),
    ]
}

#[test]
fn chat_classification_at_every_split() {
    chat_cases().iter().for_each(check_every_split);
}

#[test]
fn completions_classification_at_every_split() {
    completions_cases().iter().for_each(check_every_split);
}

#[test]
fn responses_classification_at_every_split() {
    responses_cases().iter().for_each(check_every_split);
}

#[test]
fn anthropic_classification_at_every_split() {
    anthropic_cases().iter().for_each(check_every_split);
}

#[test]
fn embeddings_never_stream() {
    let c = case(
        ApiKind::OpenAiEmbeddings,
        "any event",
        data(r#"{"data":[]}"#),
        Outcome::ProtocolError,
        &[],
        None,
    );
    check_every_split(&c);
}

#[test]
fn invalid_utf8_and_oversize_events_are_protocol_errors() {
    for api in ApiKind::ALL {
        let (o, _, _) = run(api, &[b"data: \xff\xfe\n\n"]);
        assert_eq!(o, Outcome::ProtocolError, "{api}");
        let mut d = StreamDriver::new(api, 16);
        let v = d.push(b"data: 0123456789abcdef0123\n\n", |_, _, _| {
            ControlFlow::Continue(())
        });
        assert_eq!(v.map(|v| v.outcome), Some(Outcome::ProtocolError), "{api}");
    }
}

#[test]
fn unknown_events_are_counted_per_stream() {
    let mut d = StreamDriver::new(ApiKind::OpenAiResponses, DEFAULT_MAX_EVENT_BYTES);
    let body = [
        typed("response.shiny", r#""x":1"#),
        typed("response.output_text.delta", r#""delta":"a""#),
        typed("response.shiny", r#""x":2"#),
    ]
    .concat();
    assert_eq!(
        d.push(body.as_bytes(), |_, _, _| ControlFlow::Continue(())),
        None
    );
    assert_eq!(d.unknown_events(), 2);
    let d = StreamDriver::new(ApiKind::OpenAiChat, DEFAULT_MAX_EVENT_BYTES);
    assert_eq!(d.unknown_events(), 0);
}

#[test]
fn a_cancel_from_the_content_callback_ends_the_stream() {
    let body = responses_cases().remove(0).body;
    let mut d = StreamDriver::new(ApiKind::OpenAiResponses, DEFAULT_MAX_EVENT_BYTES);
    let mut seen = 0;
    let v = d.push(body.as_bytes(), |_, _, _| {
        seen += 1;
        if seen == 2 {
            ControlFlow::Break(Verdict::drop(Outcome::Cancelled, ""))
        } else {
            ControlFlow::Continue(())
        }
    });
    assert_eq!(v.map(|v| v.outcome), Some(Outcome::Cancelled));
    assert_eq!(seen, 2);
}
