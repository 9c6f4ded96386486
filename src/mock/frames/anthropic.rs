//! Anthropic Messages: typed events and the `message` body.
//!
//! Stream: `message_start`, the first `content_block_start` and `ping` with the headers; with
//! reasoning, a `thinking` block (N × `thinking_delta`, a `signature_delta`,
//! `content_block_stop`); the answer block: `text` (N × `text_delta`) or `tool_use`
//! (N × `input_json_delta`); `content_block_stop`, `message_delta` (`stop_reason` `tool_use`,
//! `max_tokens` when the token budget cut the answer, else `end_turn`; final cumulative
//! `usage.output_tokens`), `message_stop`. In-band error: an `event: error`.

use std::fmt::Write as _;

use bytes::Bytes;

use super::{
    json_str, lay_out_runs, push_args, push_repeated, Layout, Meta, Piece, StreamFrames, TOOL_NAME,
};

/// The mid-stream error event.
pub(crate) const ERROR_FRAME: &[u8] = b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";

const SIGNATURE: &str = "c29ha2QgbW9jayBzaWduYXR1cmU=";

/// Index of the answer block (after the thinking block, if any).
fn answer_index(m: &Meta<'_>) -> u32 {
    u32::from(m.reasoning > 0)
}

fn stop_reason(m: &Meta<'_>) -> &'static str {
    if m.tool_call {
        "tool_use"
    } else if m.capped {
        "max_tokens"
    } else {
        "end_turn"
    }
}

fn block_start(out: &mut String, m: &Meta<'_>, index: u32, thinking: bool) {
    let _ = write!(
        out,
        "event: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":{index},\"content_block\":"
    );
    if thinking {
        out.push_str("{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}");
    } else if m.tool_call {
        let _ = write!(
            out,
            "{{\"type\":\"tool_use\",\"id\":\"toolu_mock{:x}\",\"name\":\"{TOOL_NAME}\",\"input\":{{}}}}",
            m.seq
        );
    } else {
        out.push_str("{\"type\":\"text\",\"text\":\"\"}");
    }
    out.push_str("}\n\n");
}

fn block_stop(out: &mut String, index: u32) {
    let _ = write!(
        out,
        "event: content_block_stop\ndata: {{\"type\":\"content_block_stop\",\"index\":{index}}}\n\n"
    );
}

fn delta(out: &mut String, index: u32, kind: &str, field: &str) {
    let _ = write!(
        out,
        "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":{index},\"delta\":{{\"type\":\"{kind}\",\"{field}\":\""
    );
}

/// Frames of a streamed answer.
pub(crate) fn stream(m: &Meta<'_>) -> StreamFrames {
    let mut out = String::with_capacity(1600 + m.model.len() * 4 + m.text.len() * 3);
    let _ = write!(
        out,
        "event: message_start\ndata: {{\"type\":\"message_start\",\"message\":{{\"id\":\"msg_mock{:x}\",\"type\":\"message\",\"role\":\"assistant\",\"model\":",
        m.seq
    );
    json_str(&mut out, m.model);
    let _ = write!(
        out,
        ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{{\"input_tokens\":{},\"output_tokens\":1}}}}}}\n\n",
        m.prompt_tokens
    );
    block_start(&mut out, m, 0, m.reasoning > 0);
    out.push_str("event: ping\ndata: {\"type\":\"ping\"}\n\n");
    let head = 0..out.len();
    let index = answer_index(m);
    let runs = lay_out_runs(&mut out, m, |out, piece| match piece {
        Piece::ReasoningLead => {}
        Piece::Reasoning => {
            delta(out, 0, "thinking_delta", "thinking");
            out.push_str(m.text);
            out.push_str("\"}}\n\n");
        }
        Piece::AnswerLead => {
            if m.reasoning > 0 {
                delta(out, 0, "signature_delta", "signature");
                out.push_str(SIGNATURE);
                out.push_str("\"}}\n\n");
                block_stop(out, 0);
                block_start(out, m, index, false);
            }
        }
        Piece::Text => {
            delta(out, index, "text_delta", "text");
            out.push_str(m.text);
            out.push_str("\"}}\n\n");
        }
        Piece::Args(part) => {
            delta(out, index, "input_json_delta", "partial_json");
            push_args(out, part, m.text);
            out.push_str("\"}}\n\n");
        }
    });
    let tail_start = out.len();
    block_stop(&mut out, index);
    let _ = write!(
        out,
        "event: message_delta\ndata: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"{}\",\"stop_sequence\":null}},\"usage\":{{\"output_tokens\":{}}}}}\n\n",
        stop_reason(m),
        m.output_tokens()
    );
    out.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    let tail = tail_start..out.len();
    Layout::new(head, runs, tail).split(out, ERROR_FRAME)
}

/// The complete non-stream answer.
pub(crate) fn body(m: &Meta<'_>) -> Bytes {
    let full = m.text.len() * (m.chunks + m.reasoning) as usize;
    let mut out = String::with_capacity(500 + m.model.len() * 4 + full);
    let _ = write!(
        out,
        "{{\"id\":\"msg_mock{:x}\",\"type\":\"message\",\"role\":\"assistant\",\"model\":",
        m.seq
    );
    json_str(&mut out, m.model);
    out.push_str(",\"content\":[");
    if m.reasoning > 0 {
        out.push_str("{\"type\":\"thinking\",\"thinking\":\"");
        push_repeated(&mut out, m.text, m.reasoning);
        let _ = write!(out, "\",\"signature\":\"{SIGNATURE}\"}},");
    }
    if m.tool_call {
        let _ = write!(
            out,
            "{{\"type\":\"tool_use\",\"id\":\"toolu_mock{:x}\",\"name\":\"{TOOL_NAME}\",\"input\":{{\"query\":\"",
            m.seq
        );
        push_repeated(&mut out, m.text, m.chunks);
        out.push_str("\"}}");
    } else {
        out.push_str("{\"type\":\"text\",\"text\":\"");
        push_repeated(&mut out, m.text, m.chunks);
        out.push_str("\"}");
    }
    let _ = write!(
        out,
        "],\"stop_reason\":\"{}\",\"stop_sequence\":null,\"usage\":{{\"input_tokens\":{},\"output_tokens\":{}}}}}",
        stop_reason(m),
        m.prompt_tokens,
        m.output_tokens()
    );
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
    fn a_text_answer_has_event_names_matching_types() {
        let text = chunk_text(4);
        let m = meta("claude", &text);
        let f = stream(&m);
        let all = played(&f, &f.tail);
        let ev = typed_events(&all);
        let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(ev[0].1["message"]["usage"]["input_tokens"], 11);
        assert_eq!(ev[3].1["delta"]["text"], "lore");
        assert_eq!(ev[7].1["usage"]["output_tokens"], 3);
        assert_eq!(ev[7].1["delta"]["stop_reason"], "end_turn");
        assert_eq!(
            parse(ApiKind::AnthropicMessages, &all),
            (vec![DeltaKind::Text; 3], true, Some(3), 0)
        );
        assert_eq!(typed_events(&f.error)[0].0, "error");
    }

    #[test]
    fn thinking_then_tool_use() {
        let text = chunk_text(4);
        let m = Meta {
            reasoning: 2,
            tool_call: true,
            chunks: 2,
            ..meta("claude", &text)
        };
        let f = stream(&m);
        let all = played(&f, &f.tail);
        use DeltaKind::{Reasoning, ToolCall};
        assert_eq!(
            parse(ApiKind::AnthropicMessages, &all),
            (
                vec![Reasoning, Reasoning, ToolCall, ToolCall],
                true,
                Some(4),
                0
            )
        );
        let ev = typed_events(&all);
        assert_eq!(ev[1].1["content_block"]["type"], "thinking");
        let start = ev
            .iter()
            .find(|(n, v)| n == "content_block_start" && v["index"] == 1)
            .unwrap();
        assert_eq!(start.1["content_block"]["type"], "tool_use");
        let json: String = ev
            .iter()
            .filter(|(_, v)| v["delta"]["type"] == "input_json_delta")
            .map(|(_, v)| {
                assert_eq!(v["index"], 1);
                v["delta"]["partial_json"].as_str().unwrap().to_string()
            })
            .collect();
        let input: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(input["query"], "lore".repeat(2));
        let md = &ev[ev.len() - 2].1;
        assert_eq!(md["delta"]["stop_reason"], "tool_use");
    }

    #[test]
    fn bodies() {
        let text = chunk_text(5);
        let b = body(&meta("m", &text));
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["content"][0]["text"], "lorem".repeat(3));
        assert_eq!(v["usage"]["output_tokens"], 3);
        assert_eq!(
            crate::client::parser::parse_body(ApiKind::AnthropicMessages, 1, &b),
            Ok(Some(3))
        );
        let b = body(&Meta {
            reasoning: 1,
            tool_call: true,
            ..meta("m", &text)
        });
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["content"][0]["type"], "thinking");
        assert_eq!(v["content"][1]["input"]["query"], "lorem".repeat(3));
        assert_eq!(
            (
                v["stop_reason"].as_str(),
                v["usage"]["output_tokens"].as_u64()
            ),
            (Some("tool_use"), Some(4))
        );
        let capped = body(&Meta {
            capped: true,
            ..meta("m", &text)
        });
        let v: Value = serde_json::from_slice(&capped).unwrap();
        assert_eq!(v["stop_reason"], "max_tokens");
    }
}
