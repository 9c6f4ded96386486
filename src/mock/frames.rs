//! Wire bytes of the mock's answers: SSE frames and JSON bodies for both APIs.
//!
//! A stream's frames are written into one buffer per request and handed out as [`Bytes`]
//! slices of it, so the whole stream costs one allocation however many chunks it has: every
//! content chunk of one answer is the same slice.

use std::fmt::Write as _;

use bytes::Bytes;

/// Which API an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// `POST /v1/chat/completions`.
    OpenAi,
    /// `POST /v1/messages`.
    Anthropic,
}

/// Per-request facts that appear in the frames.
#[derive(Debug)]
pub(crate) struct Meta<'a> {
    /// Unique number of the answer (the id is derived from it).
    pub seq: u64,
    /// Unix seconds.
    pub created: u64,
    /// The requested model, echoed back.
    pub model: &'a str,
    /// Estimated prompt tokens.
    pub prompt_tokens: u64,
    /// Content chunks (= completion tokens).
    pub chunks: u32,
    /// The text of one content chunk (JSON-safe: letters and spaces).
    pub text: &'a str,
}

/// The frames of one streamed answer.
#[derive(Debug, Clone)]
pub(crate) struct StreamFrames {
    /// Sent with the headers: OpenAI's role-only chunk; Anthropic's message_start,
    /// content_block_start and ping.
    pub head: Bytes,
    /// One content chunk (sent `chunks` times).
    pub chunk: Bytes,
    /// After the last chunk: OpenAI's finish chunk, optional usage chunk and `[DONE]`;
    /// Anthropic's content_block_stop, message_delta and message_stop. Empty when not asked for.
    pub tail: Bytes,
}

/// OpenAI's mid-stream error frame.
pub(crate) const OPENAI_ERROR_FRAME: &[u8] = b"data: {\"error\":{\"message\":\"soakd mock: injected mid-stream error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n";
/// Anthropic's mid-stream error event.
pub(crate) const ANTHROPIC_ERROR_FRAME: &[u8] = b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
/// A body that is neither SSE nor JSON: invalid UTF-8, control bytes, an HTML fragment.
pub(crate) const GARBAGE: &[u8] =
    b"\xff\xfe\x00\x01<html><body>502 Bad Gateway</body></html>\n\x1b[0m{{{ not json \xc3\x28\n";

/// Writes `s` as a JSON string literal.
fn json_str(out: &mut String, s: &str) {
    // serde_json's escaping; writing into a String cannot fail.
    let quoted = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string());
    out.push_str(&quoted);
}

fn openai_prefix(out: &mut String, m: &Meta<'_>) {
    let _ = write!(
        out,
        "data: {{\"id\":\"chatcmpl-mock{:x}\",\"object\":\"chat.completion.chunk\",\"created\":{},\"model\":",
        m.seq, m.created
    );
    json_str(out, m.model);
}

/// Frames of an OpenAI stream. `with_tail` false leaves the tail empty (truncated, error and
/// stalled streams never send it).
pub(crate) fn openai_stream(m: &Meta<'_>, include_usage: bool, with_tail: bool) -> StreamFrames {
    let mut out = String::with_capacity(640 + m.model.len() * 4 + m.text.len());
    openai_prefix(&mut out, m);
    out.push_str(
        ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
    );
    let head_end = out.len();
    openai_prefix(&mut out, m);
    out.push_str(",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"");
    out.push_str(m.text);
    out.push_str("\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
    let chunk_end = out.len();
    if with_tail {
        openai_prefix(&mut out, m);
        out.push_str(
            ",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n",
        );
        if include_usage {
            openai_prefix(&mut out, m);
            let completion = u64::from(m.chunks);
            let _ = write!(
                out,
                ",\"choices\":[],\"usage\":{{\"prompt_tokens\":{},\"completion_tokens\":{},\"total_tokens\":{}}}}}\n\n",
                m.prompt_tokens,
                completion,
                m.prompt_tokens + completion
            );
        }
        out.push_str("data: [DONE]\n\n");
    }
    split(out, head_end, chunk_end)
}

/// Frames of an Anthropic stream (see [`openai_stream`] for `with_tail`).
pub(crate) fn anthropic_stream(m: &Meta<'_>, with_tail: bool) -> StreamFrames {
    let mut out = String::with_capacity(900 + m.model.len() * 4 + m.text.len());
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
    out.push_str("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    out.push_str("event: ping\ndata: {\"type\":\"ping\"}\n\n");
    let head_end = out.len();
    out.push_str("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"");
    out.push_str(m.text);
    out.push_str("\"}}\n\n");
    let chunk_end = out.len();
    if with_tail {
        out.push_str(
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        );
        let _ = write!(
            out,
            "event: message_delta\ndata: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"end_turn\",\"stop_sequence\":null}},\"usage\":{{\"output_tokens\":{}}}}}\n\n",
            m.chunks
        );
        out.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    }
    split(out, head_end, chunk_end)
}

fn split(out: String, head_end: usize, chunk_end: usize) -> StreamFrames {
    let buf = Bytes::from(out);
    StreamFrames {
        head: buf.slice(..head_end),
        chunk: buf.slice(head_end..chunk_end),
        tail: buf.slice(chunk_end..),
    }
}

/// The complete non-stream answer of either API.
pub(crate) fn full_body(api: Api, m: &Meta<'_>) -> Bytes {
    let content_len = m.text.len() * m.chunks as usize;
    let mut out = String::with_capacity(400 + m.model.len() * 4 + content_len);
    let completion = u64::from(m.chunks);
    match api {
        Api::OpenAi => {
            let _ = write!(
                out,
                "{{\"id\":\"chatcmpl-mock{:x}\",\"object\":\"chat.completion\",\"created\":{},\"model\":",
                m.seq, m.created
            );
            json_str(&mut out, m.model);
            out.push_str(
                ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"",
            );
            push_content(&mut out, m);
            let _ = write!(
                out,
                "\",\"refusal\":null}},\"logprobs\":null,\"finish_reason\":\"stop\"}}],\"usage\":{{\"prompt_tokens\":{},\"completion_tokens\":{},\"total_tokens\":{}}}}}",
                m.prompt_tokens,
                completion,
                m.prompt_tokens + completion
            );
        }
        Api::Anthropic => {
            let _ = write!(
                out,
                "{{\"id\":\"msg_mock{:x}\",\"type\":\"message\",\"role\":\"assistant\",\"model\":",
                m.seq
            );
            json_str(&mut out, m.model);
            out.push_str(",\"content\":[{\"type\":\"text\",\"text\":\"");
            push_content(&mut out, m);
            let _ = write!(
                out,
                "\"}}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{{\"input_tokens\":{},\"output_tokens\":{}}}}}",
                m.prompt_tokens, completion
            );
        }
    }
    Bytes::from(out)
}

fn push_content(out: &mut String, m: &Meta<'_>) {
    for _ in 0..m.chunks {
        out.push_str(m.text);
    }
}

/// The error JSON body of an HTTP error with `status` in the API's own shape.
/// Both shapes carry `error.type` and `error.message`.
pub(crate) fn error_body(api: Api, status: u16, message: &str) -> Bytes {
    let mut out = String::with_capacity(160 + message.len());
    match api {
        Api::OpenAi => {
            let (kind, code) = match status {
                400 | 404 | 405 | 413 | 422 => ("invalid_request_error", "null"),
                401 => ("authentication_error", "\"invalid_api_key\""),
                403 => ("permission_error", "null"),
                429 => ("rate_limit_error", "\"rate_limit_exceeded\""),
                _ if status >= 500 => ("server_error", "null"),
                _ => ("invalid_request_error", "null"),
            };
            out.push_str("{\"error\":{\"message\":");
            json_str(&mut out, message);
            let _ = write!(
                out,
                ",\"type\":\"{kind}\",\"param\":null,\"code\":{code}}}}}"
            );
        }
        Api::Anthropic => {
            let kind = match status {
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                413 => "request_too_large",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                _ if status >= 500 => "api_error",
                _ => "invalid_request_error",
            };
            let _ = write!(
                out,
                "{{\"type\":\"error\",\"error\":{{\"type\":\"{kind}\",\"message\":"
            );
            json_str(&mut out, message);
            out.push_str("}}");
        }
    }
    Bytes::from(out)
}

/// A text of exactly `len` JSON-safe ASCII characters (letters and spaces).
pub(crate) fn chunk_text(len: usize) -> String {
    const WORDS: &str = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua ";
    WORDS.chars().cycle().take(len).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn meta<'a>(model: &'a str, text: &'a str) -> Meta<'a> {
        Meta {
            seq: 0x2a,
            created: 1_700_000_000,
            model,
            prompt_tokens: 11,
            chunks: 3,
            text,
        }
    }

    /// Splits SSE bytes into (event, data) pairs, checking each frame's framing.
    fn frames(b: &[u8]) -> Vec<(Option<String>, String)> {
        let s = std::str::from_utf8(b).unwrap();
        assert!(s.is_empty() || s.ends_with("\n\n"), "{s:?}");
        s.split_terminator("\n\n")
            .map(|f| {
                let mut event = None;
                let mut data = None;
                for line in f.lines() {
                    if let Some(e) = line.strip_prefix("event: ") {
                        event = Some(e.to_string());
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data = Some(d.to_string());
                    } else {
                        panic!("unexpected line {line:?}");
                    }
                }
                (event, data.expect("data line"))
            })
            .collect()
    }

    #[test]
    fn openai_frames_are_valid_json_with_expected_fields() {
        let text = chunk_text(8);
        let m = meta("gpt-\"q\"", &text);
        let f = openai_stream(&m, true, true);
        let head = frames(&f.head);
        assert_eq!(head.len(), 1);
        let v: Value = serde_json::from_str(&head[0].1).unwrap();
        assert_eq!(v["id"], "chatcmpl-mock2a");
        assert_eq!(v["model"], "gpt-\"q\"");
        assert_eq!(v["object"], "chat.completion.chunk");
        assert_eq!(v["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(v["choices"][0]["delta"]["content"], "");
        let chunk = frames(&f.chunk);
        let v: Value = serde_json::from_str(&chunk[0].1).unwrap();
        assert_eq!(v["choices"][0]["delta"]["content"], "lorem ip");
        assert!(v["choices"][0]["finish_reason"].is_null());
        let tail = frames(&f.tail);
        assert_eq!(tail.len(), 3);
        let fin: Value = serde_json::from_str(&tail[0].1).unwrap();
        assert_eq!(fin["choices"][0]["finish_reason"], "stop");
        assert_eq!(fin["choices"][0]["delta"], serde_json::json!({}));
        let usage: Value = serde_json::from_str(&tail[1].1).unwrap();
        assert_eq!(usage["choices"], serde_json::json!([]));
        assert_eq!(
            usage["usage"],
            serde_json::json!({"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14})
        );
        assert_eq!(tail[2].1, "[DONE]");

        let no_usage = openai_stream(&m, false, true);
        assert_eq!(frames(&no_usage.tail).len(), 2);
        assert!(openai_stream(&m, true, false).tail.is_empty());
    }

    #[test]
    fn anthropic_frames_have_event_names_matching_types() {
        let text = chunk_text(4);
        let m = meta("claude", &text);
        let f = anthropic_stream(&m, true);
        let all: Vec<_> = [frames(&f.head), frames(&f.chunk), frames(&f.tail)].concat();
        let names: Vec<_> = all.iter().map(|(e, _)| e.clone().unwrap()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        for (e, d) in &all {
            let v: Value = serde_json::from_str(d).unwrap();
            assert_eq!(v["type"].as_str(), e.as_deref());
        }
        let start: Value = serde_json::from_str(&all[0].1).unwrap();
        assert_eq!(start["message"]["usage"]["input_tokens"], 11);
        let delta: Value = serde_json::from_str(&all[3].1).unwrap();
        assert_eq!(delta["delta"]["text"], "lore");
        let md: Value = serde_json::from_str(&all[5].1).unwrap();
        assert_eq!(md["usage"]["output_tokens"], 3);
        assert_eq!(md["delta"]["stop_reason"], "end_turn");
    }

    #[test]
    fn full_bodies_carry_content_and_usage() {
        let text = chunk_text(5);
        let m = meta("m", &text);
        let v: Value = serde_json::from_slice(&full_body(Api::OpenAi, &m)).unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "lorem".repeat(3).as_str()
        );
        assert_eq!(v["usage"]["total_tokens"], 14);
        let v: Value = serde_json::from_slice(&full_body(Api::Anthropic, &m)).unwrap();
        assert_eq!(v["type"], "message");
        assert_eq!(v["content"][0]["text"], "lorem".repeat(3).as_str());
        assert_eq!(v["usage"]["output_tokens"], 3);
        assert_eq!(v["usage"]["input_tokens"], 11);
    }

    #[test]
    fn error_bodies_and_static_frames() {
        for status in [400u16, 401, 429, 500, 503, 529] {
            for api in [Api::OpenAi, Api::Anthropic] {
                let v: Value = serde_json::from_slice(&error_body(api, status, "x \"y\"")).unwrap();
                assert_eq!(v["error"]["message"], "x \"y\"");
                assert!(v["error"]["type"].is_string());
            }
        }
        let v: Value = serde_json::from_slice(&error_body(Api::OpenAi, 429, "m")).unwrap();
        assert_eq!(v["error"]["type"], "rate_limit_error");
        let v: Value = serde_json::from_slice(&error_body(Api::Anthropic, 529, "m")).unwrap();
        assert_eq!(v["error"]["type"], "overloaded_error");
        assert_eq!(v["type"], "error");

        let e = frames(OPENAI_ERROR_FRAME);
        let v: Value = serde_json::from_str(&e[0].1).unwrap();
        assert!(v["error"]["message"].is_string());
        let e = frames(ANTHROPIC_ERROR_FRAME);
        assert_eq!(e[0].0.as_deref(), Some("error"));
        assert!(std::str::from_utf8(std::hint::black_box(GARBAGE)).is_err());
        assert!(serde_json::from_slice::<Value>(GARBAGE).is_err());
    }

    #[test]
    fn chunk_text_has_exact_length_and_is_json_safe() {
        for len in [1usize, 8, 200, 5000] {
            let t = chunk_text(len);
            assert_eq!(t.len(), len);
            assert!(t.bytes().all(|b| b.is_ascii_lowercase() || b == b' '));
        }
    }
}
