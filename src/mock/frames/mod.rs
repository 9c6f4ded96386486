//! Wire bytes of the mock's answers, one file per API: SSE frames and JSON bodies.
//!
//! A stream's frames are written into one buffer per request and handed out as [`Bytes`]
//! slices of it, so the whole stream costs one allocation however many chunks it has: every
//! content chunk of one run is the same slice.
//!
//! An answer is laid out the same way for every API ([`StreamFrames`]): a head sent with the
//! response headers; up to [`MAX_RUNS`] runs of content chunks (reasoning deltas first, then
//! the answer: text deltas, or tool-call argument deltas whose first and last chunks open and
//! close a valid JSON arguments object); a tail (the API's closing events and terminator); and
//! the API's in-band error frame. A run may carry a lead: frames sent once, right before its
//! first chunk (an output item starting, a content block switching from thinking to text).

pub(crate) mod anthropic;
pub(crate) mod chat;
pub(crate) mod completions;
pub(crate) mod embeddings;
pub(crate) mod responses;

use std::fmt::Write as _;
use std::ops::Range;

use bytes::Bytes;

/// Which API an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /v1/responses`.
    Responses,
    /// `POST /v1/completions` (legacy).
    Completions,
    /// `POST /v1/embeddings`.
    Embeddings,
    /// `POST /v1/messages`.
    Anthropic,
}

impl Api {
    /// Every API, in index order.
    pub(crate) const ALL: [Api; 5] = [
        Api::Chat,
        Api::Responses,
        Api::Completions,
        Api::Embeddings,
        Api::Anthropic,
    ];

    /// Index in per-API arrays.
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// The `endpoint` label of the mock's request counter.
    pub(crate) const fn label(self) -> &'static str {
        match self {
            Api::Chat => "chat_completions",
            Api::Responses => "responses",
            Api::Completions => "completions",
            Api::Embeddings => "embeddings",
            Api::Anthropic => "messages",
        }
    }

    /// Whether answers can be tool calls and carry reasoning.
    pub(crate) const fn has_tools_and_reasoning(self) -> bool {
        matches!(self, Api::Chat | Api::Responses | Api::Anthropic)
    }

    /// Whether the API answers in the Anthropic error shape.
    const fn anthropic_errors(self) -> bool {
        matches!(self, Api::Anthropic)
    }

    /// The path the mock serves the API on. The path is the API's identity between the mock
    /// and its clients: soakd's client names the same paths (`client::ApiKind::default_path`),
    /// and the mock imports nothing of the client.
    pub(crate) const fn path(self) -> &'static str {
        match self {
            Api::Chat => "/v1/chat/completions",
            Api::Responses => "/v1/responses",
            Api::Completions => "/v1/completions",
            Api::Embeddings => "/v1/embeddings",
            Api::Anthropic => "/v1/messages",
        }
    }

    /// The API served on `path`.
    pub(crate) fn from_path(path: &str) -> Option<Api> {
        Api::ALL.into_iter().find(|a| a.path() == path)
    }
}

/// Per-request facts that appear in the frames.
#[derive(Debug)]
pub(crate) struct Meta<'a> {
    /// Unique number of the answer (the ids are derived from it).
    pub seq: u64,
    /// Unix seconds.
    pub created: u64,
    /// The requested model, echoed back.
    pub model: &'a str,
    /// Estimated prompt tokens.
    pub prompt_tokens: u64,
    /// Answer chunks (text or tool-call argument deltas).
    pub chunks: u32,
    /// Reasoning chunks before the answer.
    pub reasoning: u32,
    /// The answer is one tool call and no text.
    pub tool_call: bool,
    /// The request's token budget cut the answer short (a `length`-style finish).
    pub capped: bool,
    /// The text of one content chunk (JSON-safe: letters and spaces).
    pub text: &'a str,
}

impl Meta<'_> {
    /// Output tokens of the whole answer: 1 chunk ≈ 1 token, reasoning included.
    pub(crate) fn output_tokens(&self) -> u64 {
        u64::from(self.chunks) + u64::from(self.reasoning)
    }
}

/// Most runs of content chunks in one answer: reasoning, then the answer's first, middle and
/// last chunks (tool-call arguments open and close a JSON object).
pub(crate) const MAX_RUNS: usize = 4;

/// A run of identical content chunks.
#[derive(Debug, Clone, Default)]
pub(crate) struct Run {
    /// Sent once, right before the first chunk (may be empty).
    pub lead: Bytes,
    /// One content chunk.
    pub chunk: Bytes,
    /// How many times `chunk` is sent.
    pub count: u32,
}

/// The frames of one streamed answer.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamFrames {
    /// Sent with the headers.
    pub head: Bytes,
    /// Content runs, in order; unused ones have `count` 0.
    pub runs: [Run; MAX_RUNS],
    /// After the last chunk: closing events and the terminator.
    pub tail: Bytes,
    /// The API's in-band error frame(s), sent instead of the tail by `error_event_rate`.
    pub error: Bytes,
}

/// Where each part of a [`StreamFrames`] sits in the answer's buffer.
#[derive(Debug, Default)]
pub(crate) struct Layout {
    pub head: Range<usize>,
    pub runs: [(Range<usize>, Range<usize>, u32); MAX_RUNS],
    pub tail: Range<usize>,
    /// `None`: the error frame is `static_error`.
    pub error: Option<Range<usize>>,
}

impl Layout {
    /// The layout of an answer whose error frame is a static one.
    pub(crate) fn new(
        head: Range<usize>,
        runs: [(Range<usize>, Range<usize>, u32); MAX_RUNS],
        tail: Range<usize>,
    ) -> Layout {
        Layout {
            head,
            runs,
            tail,
            error: None,
        }
    }

    /// Cuts `out` into the frames.
    pub(crate) fn split(self, out: String, static_error: &'static [u8]) -> StreamFrames {
        let buf = Bytes::from(out);
        let runs = self.runs.map(|(lead, chunk, count)| Run {
            lead: buf.slice(lead),
            chunk: buf.slice(chunk),
            count,
        });
        StreamFrames {
            head: buf.slice(self.head),
            runs,
            tail: buf.slice(self.tail),
            error: match self.error {
                Some(r) => buf.slice(r),
                None => Bytes::from_static(static_error),
            },
        }
    }
}

/// Which chunk of a tool call's arguments: they open and close one JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArgsPart {
    /// The only chunk: `{"query":"TEXT"}`.
    Only,
    /// `{"query":"TEXT`.
    First,
    /// `TEXT`.
    Mid,
    /// `TEXT"}`.
    Last,
}

/// The parts a tool call's `n` argument chunks are split into, with their counts.
pub(crate) fn args_parts(n: u32) -> [(ArgsPart, u32); 3] {
    if n <= 1 {
        [(ArgsPart::Only, 1), (ArgsPart::Mid, 0), (ArgsPart::Last, 0)]
    } else {
        [
            (ArgsPart::First, 1),
            (ArgsPart::Mid, n - 2),
            (ArgsPart::Last, 1),
        ]
    }
}

/// One piece of an answer, for [`lay_out_runs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Frames before the first reasoning chunk.
    ReasoningLead,
    /// One reasoning chunk.
    Reasoning,
    /// Frames before the first answer chunk (closing the reasoning, opening the answer).
    AnswerLead,
    /// One text chunk.
    Text,
    /// One tool-call argument chunk.
    Args(ArgsPart),
}

/// The runs of an answer: `m.reasoning` reasoning chunks, then `m.chunks` answer chunks
/// (text, or tool-call arguments in up to three runs). `write` appends one piece's frames to
/// `out`; the returned ranges locate them.
pub(crate) fn lay_out_runs(
    out: &mut String,
    m: &Meta<'_>,
    mut write: impl FnMut(&mut String, Piece),
) -> [(Range<usize>, Range<usize>, u32); MAX_RUNS] {
    let mut runs: [(Range<usize>, Range<usize>, u32); MAX_RUNS] = Default::default();
    let mut i = 0;
    let mut piece = |out: &mut String, p: Piece| {
        let a = out.len();
        write(out, p);
        a..out.len()
    };
    if m.reasoning > 0 {
        let lead = piece(out, Piece::ReasoningLead);
        let chunk = piece(out, Piece::Reasoning);
        runs[0] = (lead, chunk, m.reasoning);
        i = 1;
    }
    let mut lead = piece(out, Piece::AnswerLead);
    if m.tool_call {
        for (part, count) in args_parts(m.chunks) {
            if count > 0 {
                let chunk = piece(out, Piece::Args(part));
                runs[i] = (std::mem::replace(&mut lead, 0..0), chunk, count);
                i += 1;
            }
        }
    } else {
        let chunk = piece(out, Piece::Text);
        runs[i] = (lead, chunk, m.chunks);
    }
    runs
}

/// The name of the mock's one tool.
pub(crate) const TOOL_NAME: &str = "lookup";

/// Writes one argument chunk as the inside of a JSON string (its quotes escaped).
pub(crate) fn push_args(out: &mut String, part: ArgsPart, text: &str) {
    if matches!(part, ArgsPart::Only | ArgsPart::First) {
        out.push_str(r#"{\"query\":\""#);
    }
    out.push_str(text);
    if matches!(part, ArgsPart::Only | ArgsPart::Last) {
        out.push_str(r#"\"}"#);
    }
}

/// Writes a tool call's whole arguments (`chunks` texts) as a JSON string literal.
pub(crate) fn push_full_args(out: &mut String, m: &Meta<'_>) {
    out.push('"');
    push_args(out, ArgsPart::First, "");
    push_repeated(out, m.text, m.chunks);
    push_args(out, ArgsPart::Last, "");
    out.push('"');
}

/// Writes `text` `n` times.
pub(crate) fn push_repeated(out: &mut String, text: &str, n: u32) {
    for _ in 0..n {
        out.push_str(text);
    }
}

/// Writes the start of an OpenAI Chat or Completions object up to its model:
/// `{"id":"<id><seq in hex>","object":"<object>","created":<unix>,"model":<model>`.
pub(crate) fn openai_head(out: &mut String, m: &Meta<'_>, id: &str, object: &str) {
    let _ = write!(
        out,
        "{{\"id\":\"{id}{:x}\",\"object\":\"{object}\",\"created\":{},\"model\":",
        m.seq, m.created
    );
    json_str(out, m.model);
}

/// Writes an OpenAI `usage` member: prompt, completion and total tokens, and
/// `completion_tokens_details.reasoning_tokens` when `reasoning` is given.
pub(crate) fn openai_usage(out: &mut String, prompt: u64, completion: u64, reasoning: Option<u32>) {
    let _ = write!(
        out,
        "\"usage\":{{\"prompt_tokens\":{prompt},\"completion_tokens\":{completion},\"total_tokens\":{}",
        prompt + completion
    );
    if let Some(r) = reasoning {
        let _ = write!(
            out,
            ",\"completion_tokens_details\":{{\"reasoning_tokens\":{r}}}"
        );
    }
    out.push('}');
}

/// Writes the end of an OpenAI Chat or Completions stream: with `include_usage`, a usage chunk
/// (`head`, then `choices: []` and `usage`), then `data: [DONE]`.
pub(crate) fn openai_stream_end(
    out: &mut String,
    include_usage: bool,
    head: impl FnOnce(&mut String),
    usage: impl FnOnce(&mut String),
) {
    if include_usage {
        out.push_str("data: ");
        head(out);
        out.push_str(",\"choices\":[],");
        usage(out);
        out.push_str("}\n\n");
    }
    out.push_str("data: [DONE]\n\n");
}

/// Ends an OpenAI Chat or Completions body after its choice's own fields: the choice's
/// `logprobs` and `finish_reason`, then `usage` (written by `usage`).
pub(crate) fn openai_body_end(
    mut out: String,
    finish_reason: &str,
    usage: impl FnOnce(&mut String),
) -> Bytes {
    let _ = write!(
        out,
        "\"logprobs\":null,\"finish_reason\":\"{finish_reason}\"}}],"
    );
    usage(&mut out);
    out.push('}');
    Bytes::from(out)
}

/// A body that is neither SSE nor JSON: invalid UTF-8, control bytes, an HTML fragment.
pub(crate) const GARBAGE: &[u8] =
    b"\xff\xfe\x00\x01<html><body>502 Bad Gateway</body></html>\n\x1b[0m{{{ not json \xc3\x28\n";

/// Writes `s` as a JSON string literal.
pub(crate) fn json_str(out: &mut String, s: &str) {
    // serde_json's escaping; writing into a String cannot fail.
    let quoted = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string());
    out.push_str(&quoted);
}

/// The error JSON body of an HTTP error with `status` in the API's own shape.
/// Both shapes carry `error.type` and `error.message`.
pub(crate) fn error_body(api: Api, status: u16, message: &str) -> Bytes {
    let mut out = String::with_capacity(160 + message.len());
    if api.anthropic_errors() {
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
    } else {
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
    Bytes::from(out)
}

/// The body of an in-band (HTTP 200) error of a non-stream answer: the API's error object,
/// or for Responses a `failed` response object.
pub(crate) fn inband_error_body(api: Api, message: &str) -> Bytes {
    match api {
        Api::Responses => responses::failed_body(message),
        Api::Anthropic => error_body(api, 529, message),
        _ => error_body(api, 500, message),
    }
}

/// A text of exactly `len` JSON-safe ASCII characters (letters and spaces).
pub(crate) fn chunk_text(len: usize) -> String {
    const WORDS: &str = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua ";
    WORDS.chars().cycle().take(len).collect()
}

/// The network writes of a streamed text answer as the mock sends it on `path` with no delay:
/// the head, each content chunk (a run's lead joined to its first chunk), then the tail;
/// `chunks` text deltas of `chunk_bytes` characters each, usage included where the API makes
/// it optional. None for a path the mock does not stream on (embeddings, an unknown path).
/// For benchmarks of a client's reader (`benches/sse.rs`).
pub fn text_stream_writes(path: &str, chunks: u32, chunk_bytes: usize) -> Option<Vec<Bytes>> {
    let text = chunk_text(chunk_bytes);
    let meta = Meta {
        seq: 1,
        created: 1_700_000_000,
        model: "gpt-4o-mini",
        prompt_tokens: 11,
        chunks,
        reasoning: 0,
        tool_call: false,
        capped: false,
        text: &text,
    };
    let f = match Api::from_path(path)? {
        Api::Chat => chat::stream(&meta, true),
        Api::Completions => completions::stream(&meta, true),
        Api::Responses => responses::stream(&meta),
        Api::Anthropic => anthropic::stream(&meta),
        Api::Embeddings => return None,
    };
    let mut out = vec![f.head];
    for r in &f.runs {
        for i in 0..r.count {
            if i == 0 && !r.lead.is_empty() {
                let mut joined = r.lead.to_vec();
                joined.extend_from_slice(&r.chunk);
                out.push(Bytes::from(joined));
            } else {
                out.push(r.chunk.clone());
            }
        }
    }
    out.push(f.tail);
    Some(out)
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    /// The client's name for the API served on the same path.
    pub(crate) fn client_kind(api: Api) -> crate::client::ApiKind {
        crate::client::ApiKind::ALL
            .into_iter()
            .find(|k| k.default_path() == api.path())
            .expect("every mock API has a client kind")
    }

    pub(crate) fn meta<'a>(model: &'a str, text: &'a str) -> Meta<'a> {
        Meta {
            seq: 0x2a,
            created: 1_700_000_000,
            model,
            prompt_tokens: 11,
            chunks: 3,
            reasoning: 0,
            tool_call: false,
            capped: false,
            text,
        }
    }

    /// Splits SSE bytes into (event, data) pairs with soakd's own SSE reader, checking that
    /// they end on a frame boundary and hold nothing but SSE fields.
    pub(crate) fn frames(b: &[u8]) -> Vec<(Option<String>, String)> {
        use crate::client::sse::{SseReader, Tail};
        let mut reader = SseReader::default();
        let mut out = Vec::new();
        let flow = reader
            .push(b, |ev| {
                let event = (!ev.event.is_empty()).then(|| ev.event.to_string());
                out.push((event, ev.data.to_string()));
                std::ops::ControlFlow::Continue(())
            })
            .expect("valid SSE");
        assert!(flow.is_continue());
        assert_eq!(
            reader.finish(),
            Tail::Clean,
            "{:?}",
            String::from_utf8_lossy(b)
        );
        assert_eq!(
            reader.foreign_lines(),
            0,
            "{:?}",
            String::from_utf8_lossy(b)
        );
        out
    }

    /// (event name, JSON) of every frame of an API that names its events; each name must be
    /// the JSON's `type`.
    pub(crate) fn typed_events(b: &[u8]) -> Vec<(String, serde_json::Value)> {
        frames(b)
            .into_iter()
            .map(|(e, d)| {
                let e = e.expect("every frame names its event");
                let v: serde_json::Value =
                    serde_json::from_str(&d).unwrap_or_else(|err| panic!("{err}: {d}"));
                assert_eq!(v["type"], e.as_str());
                (e, v)
            })
            .collect()
    }

    /// The whole stream as sent: head, every run's lead and chunks, then `end`.
    pub(crate) fn played(f: &StreamFrames, end: &Bytes) -> Vec<u8> {
        let mut out = f.head.to_vec();
        for r in &f.runs {
            if r.count > 0 {
                out.extend_from_slice(&r.lead);
            }
            for _ in 0..r.count {
                out.extend_from_slice(&r.chunk);
            }
        }
        out.extend_from_slice(end);
        out
    }

    /// Runs a played stream through soakd's own reader and parser: (content kinds, done,
    /// tokens, unknown events).
    pub(crate) fn parse(
        api: crate::client::ApiKind,
        body: &[u8],
    ) -> (Vec<crate::client::DeltaKind>, bool, Option<u64>, u64) {
        use crate::client::parser::StreamParser;
        use crate::client::sse::SseReader;
        use crate::client::stream::Step;
        let mut r = SseReader::default();
        let mut p = StreamParser::new(api);
        let mut kinds = Vec::new();
        let _ = r
            .push(body, |ev| {
                match p.on_event(ev) {
                    Step::Content { kind, .. } => kinds.push(kind),
                    Step::Ignore | Step::Done => {}
                    other => panic!("{other:?} in {ev:?}"),
                }
                std::ops::ControlFlow::Continue(())
            })
            .unwrap();
        (kinds, p.is_done(), p.output_tokens(), p.unknown_events())
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;
    use serde_json::Value;

    #[test]
    fn error_bodies_in_each_shape() {
        for status in [400u16, 401, 429, 500, 503, 529] {
            for api in Api::ALL {
                let v: Value = serde_json::from_slice(&error_body(api, status, "x \"y\"")).unwrap();
                assert_eq!(v["error"]["message"], "x \"y\"");
                assert!(v["error"]["type"].is_string());
                assert_eq!(v["type"] == "error", api == Api::Anthropic, "{api:?}");
            }
        }
        let v: Value = serde_json::from_slice(&error_body(Api::Chat, 429, "m")).unwrap();
        assert_eq!(v["error"]["type"], "rate_limit_error");
        let v: Value = serde_json::from_slice(&error_body(Api::Anthropic, 529, "m")).unwrap();
        assert_eq!(v["error"]["type"], "overloaded_error");
        for api in Api::ALL {
            let b = inband_error_body(api, "boom");
            let v: Value = serde_json::from_slice(&b).unwrap();
            if api == Api::Responses {
                assert_eq!(
                    (v["status"].as_str(), v["error"]["message"].as_str()),
                    (Some("failed"), Some("boom"))
                );
            } else {
                assert_eq!(v["error"]["message"], "boom");
            }
            let kind = client_kind(api);
            assert!(
                crate::client::parser::parse_body(kind, 1, &b).is_err(),
                "{api:?}"
            );
        }
        assert!(std::str::from_utf8(std::hint::black_box(GARBAGE)).is_err());
        assert!(serde_json::from_slice::<Value>(GARBAGE).is_err());
    }

    #[test]
    fn tool_call_arguments_open_and_close_one_json_object() {
        for n in [1u32, 2, 3, 7] {
            let mut s = String::new();
            for (part, count) in args_parts(n) {
                for _ in 0..count {
                    push_args(&mut s, part, "ab");
                }
            }
            // The chunks are the inside of a JSON string: unescape, then parse.
            let unescaped: String = serde_json::from_str(&format!("\"{s}\"")).unwrap();
            let v: Value = serde_json::from_str(&unescaped).unwrap();
            assert_eq!(v["query"], "ab".repeat(n as usize), "{n}");
            assert_eq!(args_parts(n).iter().map(|p| p.1).sum::<u32>(), n);
        }
        let text = chunk_text(3);
        let m = Meta {
            chunks: 2,
            ..meta("m", &text)
        };
        let mut s = String::new();
        push_full_args(&mut s, &m);
        let inner: String = serde_json::from_str(&s).unwrap();
        let v: Value = serde_json::from_str(&inner).unwrap();
        assert_eq!(v["query"], "lorlor");
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
