//! OpenAI legacy Completions: `text_completion` chunks and body.
//!
//! Stream: no head; text chunks (`choices[].text`); a finish chunk (empty text,
//! `finish_reason` `length` when the token budget cut the answer, else `stop`); a usage chunk
//! (`choices: []`) only with `stream_options.include_usage`; `data: [DONE]`. No reasoning and
//! no tool calls. In-band error: a `data: {"error":…}` frame, as chat.

use std::fmt::Write as _;

use super::{
    chat, lay_out_runs, openai_body_end, openai_head, openai_stream_end, openai_usage,
    push_repeated, Layout, Meta, Piece, StreamFrames,
};

fn prefix(out: &mut String, m: &Meta<'_>) {
    openai_head(out, m, "cmpl-mock", "text_completion");
}

fn finish_reason(m: &Meta<'_>) -> &'static str {
    if m.capped {
        "length"
    } else {
        "stop"
    }
}

fn usage(out: &mut String, m: &Meta<'_>) {
    openai_usage(out, m.prompt_tokens, u64::from(m.chunks), None);
}

/// Frames of a streamed answer (`m.reasoning` and `m.tool_call` do not apply).
pub(crate) fn stream(m: &Meta<'_>, include_usage: bool) -> StreamFrames {
    let m = &Meta {
        reasoning: 0,
        tool_call: false,
        ..*m
    };
    let mut out = String::with_capacity(800 + m.model.len() * 4 + m.text.len());
    let runs = lay_out_runs(&mut out, m, |out, piece| {
        if piece == Piece::Text {
            out.push_str("data: ");
            prefix(out, m);
            out.push_str(",\"choices\":[{\"text\":\"");
            out.push_str(m.text);
            out.push_str("\",\"index\":0,\"logprobs\":null,\"finish_reason\":null}]}\n\n");
        }
    });
    let tail_start = out.len();
    out.push_str("data: ");
    prefix(&mut out, m);
    let _ = write!(
        out,
        ",\"choices\":[{{\"text\":\"\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"{}\"}}]}}\n\n",
        finish_reason(m)
    );
    openai_stream_end(&mut out, include_usage, |o| prefix(o, m), |o| usage(o, m));
    let tail = tail_start..out.len();
    Layout::new(0..0, runs, tail).split(out, chat::ERROR_FRAME)
}

/// The complete non-stream answer.
pub(crate) fn body(m: &Meta<'_>) -> bytes::Bytes {
    let mut out = String::with_capacity(300 + m.model.len() * 4 + m.text.len() * m.chunks as usize);
    prefix(&mut out, m);
    out.push_str(",\"choices\":[{\"text\":\"");
    push_repeated(&mut out, m.text, m.chunks);
    out.push_str("\",\"index\":0,");
    openai_body_end(out, finish_reason(m), |o| usage(o, m))
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::super::chunk_text;
    use super::super::test_util::{frames, meta, parse, played};
    use super::*;
    use crate::client::{ApiKind, DeltaKind};

    #[test]
    fn stream_and_body() {
        let text = chunk_text(6);
        // Reasoning and tool calls are ignored: the legacy API has neither.
        let m = Meta {
            reasoning: 2,
            tool_call: true,
            capped: true,
            ..meta("davinci", &text)
        };
        let f = stream(&m, true);
        assert!(f.head.is_empty());
        let all = played(&f, &f.tail);
        assert_eq!(
            parse(ApiKind::OpenAiCompletions, &all),
            (vec![DeltaKind::Text; 3], true, Some(3), 0)
        );
        let fr = frames(&all);
        assert_eq!(fr.len(), 3 + 2 + 1);
        let c: Value = serde_json::from_str(&fr[0].1).unwrap();
        assert_eq!(
            (c["object"].as_str(), c["choices"][0]["text"].as_str()),
            (Some("text_completion"), Some("lorem "))
        );
        let fin: Value = serde_json::from_str(&fr[3].1).unwrap();
        assert_eq!(fin["choices"][0]["finish_reason"], "length");
        assert_eq!(frames(&stream(&m, false).tail).len(), 2);

        let b = body(&meta("davinci", &text));
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["choices"][0]["text"], "lorem ".repeat(3));
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            crate::client::parser::parse_body(ApiKind::OpenAiCompletions, 1, &b),
            Ok(Some(3))
        );
    }
}
