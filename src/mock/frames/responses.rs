//! OpenAI Responses: typed events (`event:` line and the same JSON `type`) and the
//! `response` object.
//!
//! Stream: `response.created` and `response.in_progress` with the headers; with reasoning, a
//! `reasoning` output item (`response.output_item.added`,
//! `response.reasoning_summary_part.added`, N × `response.reasoning_summary_text.delta`, then
//! the matching `.done` events); the answer item: a `message` (`response.output_item.added`,
//! `response.content_part.added`, N × `response.output_text.delta`, `response.output_text.done`,
//! `response.content_part.done`, `response.output_item.done`) or a `function_call`
//! (`response.output_item.added`, N × `response.function_call_arguments.delta`,
//! `response.function_call_arguments.done`, `response.output_item.done`); then
//! `response.completed`, or `response.incomplete` with reason `max_output_tokens` when the
//! token budget cut the answer, carrying the whole response with its output and usage.
//! In-band error: an `error` event followed by `response.failed`.
//!
//! Every content chunk of a run is the same bytes, so events carry no `sequence_number`.

use std::fmt::Write as _;

use bytes::Bytes;

use super::{
    json_str, lay_out_runs, push_args, push_full_args, push_repeated, Layout, Meta, Piece,
    StreamFrames, TOOL_NAME,
};

/// Starts an event of `kind`: the `event:` line and the JSON up to its `type`.
fn event(out: &mut String, kind: &str) {
    let _ = write!(out, "event: {kind}\ndata: {{\"type\":\"{kind}\"");
}

fn end_event(out: &mut String) {
    out.push_str("}\n\n");
}

/// `output_index` of the answer item (after the reasoning item, if any).
fn answer_index(m: &Meta<'_>) -> u32 {
    u32::from(m.reasoning > 0)
}

/// The reasoning summary's text part, `n` chunks of text long.
fn summary_part(out: &mut String, m: &Meta<'_>, n: u32) {
    out.push_str("{\"type\":\"summary_text\",\"text\":\"");
    push_repeated(out, m.text, n);
    out.push_str("\"}");
}

/// The message's output text part, `n` chunks of text long.
fn output_part(out: &mut String, m: &Meta<'_>, n: u32) {
    out.push_str("{\"type\":\"output_text\",\"text\":\"");
    push_repeated(out, m.text, n);
    out.push_str("\",\"annotations\":[]}");
}

fn reasoning_item(out: &mut String, m: &Meta<'_>, done: bool) {
    let _ = write!(
        out,
        "{{\"id\":\"rs_mock{:x}\",\"type\":\"reasoning\",\"summary\":[",
        m.seq
    );
    if done {
        summary_part(out, m, m.reasoning);
    }
    out.push_str("]}");
}

fn answer_item(out: &mut String, m: &Meta<'_>, done: bool) {
    let status = if done { "completed" } else { "in_progress" };
    if m.tool_call {
        let _ = write!(
            out,
            "{{\"id\":\"fc_mock{:x}\",\"type\":\"function_call\",\"status\":\"{status}\",\"call_id\":\"call_mock{:x}\",\"name\":\"{TOOL_NAME}\",\"arguments\":",
            m.seq, m.seq
        );
        if done {
            push_full_args(out, m);
        } else {
            out.push_str("\"\"");
        }
        out.push('}');
    } else {
        let _ = write!(
            out,
            "{{\"id\":\"msg_mock{:x}\",\"type\":\"message\",\"status\":\"{status}\",\"role\":\"assistant\",\"content\":[",
            m.seq
        );
        if done {
            output_part(out, m, m.chunks);
        }
        out.push_str("]}");
    }
}

/// The `response` object; `done` adds the output items and usage.
fn response(out: &mut String, m: &Meta<'_>, done: bool) {
    let status = match (done, m.capped) {
        (false, _) => "in_progress",
        (true, false) => "completed",
        (true, true) => "incomplete",
    };
    let _ = write!(
        out,
        "{{\"id\":\"resp_mock{:x}\",\"object\":\"response\",\"created_at\":{},\"status\":\"{status}\",\"model\":",
        m.seq, m.created
    );
    json_str(out, m.model);
    out.push_str(",\"error\":null,\"incomplete_details\":");
    if done && m.capped {
        out.push_str("{\"reason\":\"max_output_tokens\"}");
    } else {
        out.push_str("null");
    }
    out.push_str(",\"output\":[");
    if done {
        if m.reasoning > 0 {
            reasoning_item(out, m, true);
            out.push(',');
        }
        answer_item(out, m, true);
    }
    out.push_str("],\"usage\":");
    if done {
        let o = m.output_tokens();
        let _ = write!(
            out,
            "{{\"input_tokens\":{},\"output_tokens\":{o},\"output_tokens_details\":{{\"reasoning_tokens\":{}}},\"total_tokens\":{}}}",
            m.prompt_tokens,
            m.reasoning,
            m.prompt_tokens + o
        );
    } else {
        out.push_str("null");
    }
    out.push('}');
}

fn item_event(out: &mut String, kind: &str, index: u32, item: impl FnOnce(&mut String)) {
    event(out, kind);
    let _ = write!(out, ",\"output_index\":{index},\"item\":");
    item(out);
    end_event(out);
}

/// Starts an event about item `id` (`rs`, `msg` or `fc`, the prefix of its id) at
/// `output_index`.
fn part_event(out: &mut String, m: &Meta<'_>, kind: &str, id: &str, output_index: u32) {
    event(out, kind);
    let _ = write!(
        out,
        ",\"item_id\":\"{id}_mock{:x}\",\"output_index\":{output_index}",
        m.seq
    );
}

fn summary_event(out: &mut String, m: &Meta<'_>, kind: &str) {
    part_event(out, m, kind, "rs", 0);
    out.push_str(",\"summary_index\":0");
}

fn text_event(out: &mut String, m: &Meta<'_>, kind: &str) {
    part_event(out, m, kind, "msg", answer_index(m));
    out.push_str(",\"content_index\":0");
}

/// A whole `…summary_part.added` (`n` = 0) or `.done` event.
fn summary_part_event(out: &mut String, m: &Meta<'_>, kind: &str, n: u32) {
    summary_event(out, m, kind);
    out.push_str(",\"part\":");
    summary_part(out, m, n);
    end_event(out);
}

/// A whole `response.content_part.added` (`n` = 0) or `.done` event.
fn output_part_event(out: &mut String, m: &Meta<'_>, kind: &str, n: u32) {
    text_event(out, m, kind);
    out.push_str(",\"part\":");
    output_part(out, m, n);
    end_event(out);
}

fn args_event(out: &mut String, m: &Meta<'_>, kind: &str) {
    part_event(out, m, kind, "fc", answer_index(m));
}

/// Frames of a streamed answer.
pub(crate) fn stream(m: &Meta<'_>) -> StreamFrames {
    let full = m.text.len() * (m.chunks + m.reasoning) as usize * 3;
    let mut out = String::with_capacity(4000 + m.model.len() * 8 + m.text.len() * 3 + full);
    for kind in ["response.created", "response.in_progress"] {
        event(&mut out, kind);
        out.push_str(",\"response\":");
        response(&mut out, m, false);
        end_event(&mut out);
    }
    let head = 0..out.len();
    let runs = lay_out_runs(&mut out, m, |out, piece| match piece {
        Piece::ReasoningLead => {
            item_event(out, "response.output_item.added", 0, |o| {
                reasoning_item(o, m, false)
            });
            summary_part_event(out, m, "response.reasoning_summary_part.added", 0);
        }
        Piece::Reasoning => {
            summary_event(out, m, "response.reasoning_summary_text.delta");
            let _ = write!(out, ",\"delta\":\"{}\"", m.text);
            end_event(out);
        }
        Piece::AnswerLead => {
            if m.reasoning > 0 {
                summary_event(out, m, "response.reasoning_summary_text.done");
                out.push_str(",\"text\":\"");
                push_repeated(out, m.text, m.reasoning);
                out.push('"');
                end_event(out);
                summary_part_event(out, m, "response.reasoning_summary_part.done", m.reasoning);
                item_event(out, "response.output_item.done", 0, |o| {
                    reasoning_item(o, m, true)
                });
            }
            item_event(out, "response.output_item.added", answer_index(m), |o| {
                answer_item(o, m, false)
            });
            if !m.tool_call {
                output_part_event(out, m, "response.content_part.added", 0);
            }
        }
        Piece::Text => {
            text_event(out, m, "response.output_text.delta");
            let _ = write!(out, ",\"delta\":\"{}\"", m.text);
            end_event(out);
        }
        Piece::Args(part) => {
            args_event(out, m, "response.function_call_arguments.delta");
            out.push_str(",\"delta\":\"");
            push_args(out, part, m.text);
            out.push('"');
            end_event(out);
        }
    });
    let tail_start = out.len();
    if m.tool_call {
        args_event(&mut out, m, "response.function_call_arguments.done");
        out.push_str(",\"arguments\":");
        push_full_args(&mut out, m);
        end_event(&mut out);
    } else {
        text_event(&mut out, m, "response.output_text.done");
        out.push_str(",\"text\":\"");
        push_repeated(&mut out, m.text, m.chunks);
        out.push('"');
        end_event(&mut out);
        output_part_event(&mut out, m, "response.content_part.done", m.chunks);
    }
    item_event(
        &mut out,
        "response.output_item.done",
        answer_index(m),
        |o| answer_item(o, m, true),
    );
    event(
        &mut out,
        if m.capped {
            "response.incomplete"
        } else {
            "response.completed"
        },
    );
    out.push_str(",\"response\":");
    response(&mut out, m, true);
    end_event(&mut out);
    let tail = tail_start..out.len();
    let error_start = out.len();
    event(&mut out, "error");
    out.push_str(",\"code\":\"server_error\",\"message\":\"soakd mock: injected mid-stream error\",\"param\":null");
    end_event(&mut out);
    event(&mut out, "response.failed");
    let _ = write!(
        out,
        ",\"response\":{{\"id\":\"resp_mock{:x}\",\"object\":\"response\",\"status\":\"failed\",\"error\":{{\"code\":\"server_error\",\"message\":\"soakd mock: injected mid-stream error\"}},\"incomplete_details\":null,\"output\":[],\"usage\":null}}",
        m.seq
    );
    end_event(&mut out);
    let error = error_start..out.len();
    Layout {
        head,
        runs,
        tail,
        error: Some(error),
    }
    .split(out, b"")
}

/// The complete non-stream answer: the finished `response` object.
pub(crate) fn body(m: &Meta<'_>) -> Bytes {
    let full = m.text.len() * (m.chunks + m.reasoning) as usize;
    let mut out = String::with_capacity(700 + m.model.len() * 4 + full);
    response(&mut out, m, true);
    Bytes::from(out)
}

/// A `failed` response object (the in-band error of a non-stream answer).
pub(crate) fn failed_body(message: &str) -> Bytes {
    let mut out = String::from(
        "{\"id\":\"resp_mock\",\"object\":\"response\",\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":",
    );
    json_str(&mut out, message);
    out.push_str("},\"incomplete_details\":null,\"output\":[],\"usage\":null}");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::super::chunk_text;
    use super::super::test_util::{meta, parse, played, typed_events};
    use super::*;
    use crate::client::{ApiKind, DeltaKind};

    #[test]
    fn a_text_answer() {
        let text = chunk_text(5);
        let m = meta("gpt-5", &text);
        let f = stream(&m);
        let all = played(&f, &f.tail);
        assert_eq!(
            parse(ApiKind::OpenAiResponses, &all),
            (vec![DeltaKind::Text; 3], true, Some(3), 0)
        );
        let ev = typed_events(&all);
        let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed"
            ]
        );
        assert_eq!(ev[0].1["response"]["status"], "in_progress");
        assert_eq!(ev[7].1["text"], "lorem".repeat(3));
        let done = &ev[10].1["response"];
        assert_eq!(done["status"], "completed");
        assert_eq!(done["output"][0]["content"][0]["text"], "lorem".repeat(3));
        assert_eq!(done["usage"]["output_tokens"], 3);
        let err = typed_events(&f.error);
        assert_eq!(
            err.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["error", "response.failed"]
        );
    }

    #[test]
    fn reasoning_then_a_tool_call_cut_by_the_budget() {
        let text = chunk_text(4);
        let m = Meta {
            reasoning: 2,
            tool_call: true,
            capped: true,
            ..meta("o4", &text)
        };
        let f = stream(&m);
        let all = played(&f, &f.tail);
        use DeltaKind::{Reasoning, ToolCall};
        assert_eq!(
            parse(ApiKind::OpenAiResponses, &all),
            (
                vec![Reasoning, Reasoning, ToolCall, ToolCall, ToolCall],
                true,
                Some(5),
                0
            )
        );
        let ev = typed_events(&all);
        let args: String = ev
            .iter()
            .filter(|(n, _)| n == "response.function_call_arguments.delta")
            .map(|(_, v)| v["delta"].as_str().unwrap().to_string())
            .collect();
        let parsed: Value = serde_json::from_str(&args).unwrap();
        assert_eq!(parsed["query"], "lore".repeat(3));
        let last = &ev.last().unwrap().1;
        assert_eq!(last["type"], "response.incomplete");
        assert_eq!(
            last["response"]["incomplete_details"]["reason"],
            "max_output_tokens"
        );
        assert_eq!(last["response"]["output"][0]["type"], "reasoning");
        assert_eq!(last["response"]["output"][1]["type"], "function_call");
        assert_eq!(
            last["response"]["output"][1]["arguments"].as_str(),
            Some(args.as_str())
        );
    }

    #[test]
    fn bodies() {
        let text = chunk_text(3);
        let b = body(&meta("m", &text));
        assert_eq!(
            crate::client::parser::parse_body(ApiKind::OpenAiResponses, 1, &b),
            Ok(Some(3))
        );
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            (v["object"].as_str(), v["status"].as_str()),
            (Some("response"), Some("completed"))
        );
        let capped = body(&Meta {
            capped: true,
            ..meta("m", &text)
        });
        assert_eq!(
            crate::client::parser::parse_body(ApiKind::OpenAiResponses, 1, &capped),
            Ok(Some(3))
        );
        let failed = failed_body("boom \"x\"");
        let v: Value = serde_json::from_slice(&failed).unwrap();
        assert_eq!(v["error"]["message"], "boom \"x\"");
    }
}
