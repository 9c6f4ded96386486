//! OpenAI Chat Completions: `chat.completion.chunk` frames and the `chat.completion` body.
//!
//! Stream: a role-only chunk (empty content) with the headers; reasoning chunks
//! (`delta.reasoning_content`, as vLLM and DeepSeek send them); then the answer: text chunks
//! (`delta.content`), or a tool call (a chunk naming the function with empty arguments, then
//! argument chunks); a finish chunk (`finish_reason` `tool_calls`, `length` when the token
//! budget cut the answer, else `stop`); a usage chunk (`choices: []`) only with
//! `stream_options.include_usage`; `data: [DONE]`. In-band error: a `data: {"error":…}` frame.

use std::fmt::Write as _;

use super::{
    lay_out_runs, openai_body_end, openai_head, openai_stream_end, openai_usage, push_args,
    push_full_args, push_repeated, Layout, Meta, Piece, StreamFrames, TOOL_NAME,
};

/// The mid-stream error frame.
pub(crate) const ERROR_FRAME: &[u8] = b"data: {\"error\":{\"message\":\"soakd mock: injected mid-stream error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n";

const CHOICE_END: &str = "},\"logprobs\":null,\"finish_reason\":null}]}\n\n";

/// A chunk object up to its model.
fn chunk_head(out: &mut String, m: &Meta<'_>) {
    openai_head(out, m, "chatcmpl-mock", "chat.completion.chunk");
}

fn prefix(out: &mut String, m: &Meta<'_>) {
    out.push_str("data: ");
    chunk_head(out, m);
    out.push_str(",\"choices\":[{\"index\":0,\"delta\":");
}

fn finish_reason(m: &Meta<'_>) -> &'static str {
    if m.tool_call {
        "tool_calls"
    } else if m.capped {
        "length"
    } else {
        "stop"
    }
}

fn usage(out: &mut String, m: &Meta<'_>) {
    openai_usage(out, m.prompt_tokens, m.output_tokens(), Some(m.reasoning));
}

/// Frames of a streamed answer.
pub(crate) fn stream(m: &Meta<'_>, include_usage: bool) -> StreamFrames {
    let mut out = String::with_capacity(1400 + m.model.len() * 8 + m.text.len() * 3);
    prefix(&mut out, m);
    out.push_str("{\"role\":\"assistant\",\"content\":\"\"");
    out.push_str(CHOICE_END);
    let head = 0..out.len();
    let runs = lay_out_runs(&mut out, m, |out, piece| match piece {
        Piece::ReasoningLead => {}
        Piece::Reasoning => {
            prefix(out, m);
            out.push_str("{\"reasoning_content\":\"");
            out.push_str(m.text);
            out.push('"');
            out.push_str(CHOICE_END);
        }
        Piece::AnswerLead => {
            if m.tool_call {
                prefix(out, m);
                let _ = write!(
                    out,
                    "{{\"tool_calls\":[{{\"index\":0,\"id\":\"call_mock{:x}\",\"type\":\"function\",\"function\":{{\"name\":\"{TOOL_NAME}\",\"arguments\":\"\"}}}}]",
                    m.seq
                );
                out.push_str(CHOICE_END);
            }
        }
        Piece::Text => {
            prefix(out, m);
            out.push_str("{\"content\":\"");
            out.push_str(m.text);
            out.push('"');
            out.push_str(CHOICE_END);
        }
        Piece::Args(part) => {
            prefix(out, m);
            out.push_str("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"");
            push_args(out, part, m.text);
            out.push_str("\"}}]");
            out.push_str(CHOICE_END);
        }
    });
    let tail_start = out.len();
    prefix(&mut out, m);
    let _ = write!(
        out,
        "{{}},\"logprobs\":null,\"finish_reason\":\"{}\"}}]}}\n\n",
        finish_reason(m)
    );
    openai_stream_end(
        &mut out,
        include_usage,
        |o| chunk_head(o, m),
        |o| usage(o, m),
    );
    let tail = tail_start..out.len();
    Layout::new(head, runs, tail).split(out, ERROR_FRAME)
}

/// The complete non-stream answer.
pub(crate) fn body(m: &Meta<'_>) -> bytes::Bytes {
    let content_len = m.text.len() * (m.chunks + m.reasoning) as usize;
    let mut out = String::with_capacity(500 + m.model.len() * 4 + content_len);
    openai_head(&mut out, m, "chatcmpl-mock", "chat.completion");
    out.push_str(",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    if m.tool_call {
        out.push_str("null");
    } else {
        out.push('"');
        push_repeated(&mut out, m.text, m.chunks);
        out.push('"');
    }
    if m.reasoning > 0 {
        out.push_str(",\"reasoning_content\":\"");
        push_repeated(&mut out, m.text, m.reasoning);
        out.push('"');
    }
    if m.tool_call {
        let _ = write!(
            out,
            ",\"tool_calls\":[{{\"id\":\"call_mock{:x}\",\"type\":\"function\",\"function\":{{\"name\":\"{TOOL_NAME}\",\"arguments\":",
            m.seq
        );
        push_full_args(&mut out, m);
        out.push_str("}}]");
    }
    out.push_str(",\"refusal\":null},");
    openai_body_end(out, finish_reason(m), |o| usage(o, m))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::super::chunk_text;
    use super::super::test_util::{frames, meta, parse, played};
    use super::*;
    use crate::client::{ApiKind, DeltaKind};

    fn values(b: &[u8]) -> Vec<Value> {
        frames(b)
            .into_iter()
            .filter(|(_, d)| d != "[DONE]")
            .map(|(e, d)| {
                assert!(e.is_none());
                serde_json::from_str(&d).unwrap()
            })
            .collect()
    }

    #[test]
    fn text_stream_frames_are_valid_json_with_expected_fields() {
        let text = chunk_text(8);
        let m = meta("gpt-\"q\"", &text);
        let f = stream(&m, true);
        let head = values(&f.head);
        assert_eq!(head.len(), 1);
        assert_eq!(head[0]["id"], "chatcmpl-mock2a");
        assert_eq!(head[0]["model"], "gpt-\"q\"");
        assert_eq!(head[0]["object"], "chat.completion.chunk");
        assert_eq!(
            head[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(f.runs[0].count, 3);
        assert!(f.runs[0].lead.is_empty() && f.runs[1].count == 0);
        let chunk = values(&f.runs[0].chunk);
        assert_eq!(chunk[0]["choices"][0]["delta"]["content"], "lorem ip");
        let tail = frames(&f.tail);
        assert_eq!(tail.len(), 3);
        let fin: Value = serde_json::from_str(&tail[0].1).unwrap();
        assert_eq!(fin["choices"][0]["finish_reason"], "stop");
        let usage: Value = serde_json::from_str(&tail[1].1).unwrap();
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(usage["usage"]["completion_tokens"], 3);
        assert_eq!(usage["usage"]["total_tokens"], 14);
        assert_eq!(tail[2].1, "[DONE]");
        assert_eq!(frames(&stream(&m, false).tail).len(), 2);
        let all = played(&f, &f.tail);
        assert_eq!(
            parse(ApiKind::OpenAiChat, &all),
            (vec![DeltaKind::Text; 3], true, Some(3), 0)
        );
        let e = values(&f.error);
        assert!(e[0]["error"]["message"].is_string());
    }

    #[test]
    fn reasoning_then_tool_call() {
        let text = chunk_text(4);
        let m = Meta {
            reasoning: 2,
            tool_call: true,
            chunks: 4,
            ..meta("m", &text)
        };
        let f = stream(&m, true);
        let all = played(&f, &f.tail);
        let (kinds, done, tokens, _) = parse(ApiKind::OpenAiChat, &all);
        use DeltaKind::{Reasoning, ToolCall};
        assert_eq!(
            kinds,
            [Reasoning, Reasoning, ToolCall, ToolCall, ToolCall, ToolCall]
        );
        assert_eq!((done, tokens), (true, Some(6)));
        let v = values(&all);
        let start = &v[3]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(
            (start["id"].as_str(), start["function"]["name"].as_str()),
            (Some("call_mock2a"), Some(TOOL_NAME))
        );
        let args: String = v[4..8]
            .iter()
            .map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        let args: Value = serde_json::from_str(&args).unwrap();
        assert_eq!(args["query"], "lore".repeat(4));
        assert_eq!(v[8]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            v[9]["usage"]["completion_tokens_details"]["reasoning_tokens"],
            2
        );
    }

    #[test]
    fn bodies_carry_content_tool_calls_and_usage() {
        let text = chunk_text(5);
        let m = meta("m", &text);
        let v: Value = serde_json::from_slice(&body(&m)).unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"][0]["message"]["content"], "lorem".repeat(3));
        assert_eq!(v["usage"]["total_tokens"], 14);
        let m = Meta {
            tool_call: true,
            reasoning: 1,
            capped: true,
            ..meta("m", &text)
        };
        let b = body(&m);
        let v: Value = serde_json::from_slice(&b).unwrap();
        let msg = &v["choices"][0]["message"];
        assert!(msg["content"].is_null());
        assert_eq!(msg["reasoning_content"], "lorem");
        let args: Value = serde_json::from_str(
            msg["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(args["query"], "lorem".repeat(3));
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            crate::client::parser::parse_body(ApiKind::OpenAiChat, 1, &b),
            Ok(Some(4))
        );
        let m = Meta {
            capped: true,
            ..meta("m", &text)
        };
        let v: Value = serde_json::from_slice(&body(&m)).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "length");
    }
}
