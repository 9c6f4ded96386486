//! CPU cost of reading one SSE stream: SSE framing + JSON parsing of 64 content chunks (plus
//! each API's head and tail events: role chunk, usage chunk and `[DONE]`; `message_start` …
//! `message_stop`; `response.created` … `response.completed` with the whole response), fed as
//! one network chunk per event, the way a proxy usually flushes. Target: < 50 µs per stream.
//!
//! `cargo bench --bench sse` (no external harness: a fixed number of rounds, best of 5).

use std::hint::black_box;
use std::ops::ControlFlow;
use std::time::Instant;

use soakd::client::sse::SseReader;
use soakd::client::stream::{Step, StreamParser};
use soakd::client::ApiKind;

fn openai_chunks() -> Vec<Vec<u8>> {
    let mut v = vec![br#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

"#
    .to_vec()];
    for i in 0..64 {
        v.push(format!("data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" token{i} and\\n more\"}},\"finish_reason\":null}}]}}\n\n").into_bytes());
    }
    v.push(br#"data: {"id":"chatcmpl-1","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":64,"total_tokens":74}}

data: [DONE]

"#
    .to_vec());
    v
}

fn anthropic_chunks() -> Vec<Vec<u8>> {
    let mut v = vec![b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"m\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_vec()];
    for i in 0..64 {
        v.push(format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\" token{i} and more\"}}}}\n\n").into_bytes());
    }
    v.push(b"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":64}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".to_vec());
    v
}

fn responses_chunks() -> Vec<Vec<u8>> {
    let ev = |kind: &str, rest: &str| {
        format!("event: {kind}\ndata: {{\"type\":\"{kind}\",{rest}}}\n\n").into_bytes()
    };
    let resp = |status: &str, output: &str, usage: &str| {
        format!(
            r#""response":{{"id":"resp_1","object":"response","created_at":1,"status":"{status}","model":"m","output":[{output}],"usage":{usage}}}"#
        )
    };
    let mut v = vec![
        ev("response.created", &resp("in_progress", "", "null")),
        ev("response.in_progress", &resp("in_progress", "", "null")),
        ev(
            "response.output_item.added",
            r#""output_index":0,"item":{"id":"msg_1","type":"message","status":"in_progress","role":"assistant","content":[]}"#,
        ),
        ev(
            "response.content_part.added",
            r#""item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}"#,
        ),
    ];
    let mut text = String::new();
    for i in 0..64 {
        let delta = format!(" token{i} and\\n more");
        text.push_str(&delta);
        v.push(ev(
            "response.output_text.delta",
            &format!(r#""item_id":"msg_1","output_index":0,"content_index":0,"delta":"{delta}","sequence_number":{}"#, i + 4),
        ));
    }
    let item = format!(
        r#"{{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{{"type":"output_text","text":"{text}","annotations":[]}}]}}"#
    );
    let mut tail = ev(
        "response.output_text.done",
        &format!(r#""item_id":"msg_1","output_index":0,"content_index":0,"text":"{text}""#),
    );
    tail.extend(ev(
        "response.output_item.done",
        &format!(r#""output_index":0,"item":{item}"#),
    ));
    tail.extend(ev(
        "response.completed",
        &resp(
            "completed",
            &item,
            r#"{"input_tokens":10,"output_tokens":64,"total_tokens":74}"#,
        ),
    ));
    v.push(tail);
    v
}

fn one_stream(api: ApiKind, chunks: &[Vec<u8>]) -> u64 {
    let mut reader = SseReader::default();
    let mut parser = StreamParser::new(api);
    let mut content = 0u64;
    for c in chunks {
        let _ = reader.push(c, |ev| match parser.on_event(ev) {
            Step::Content { .. } => {
                content += 1;
                ControlFlow::Continue(())
            }
            Step::Ignore => ControlFlow::Continue(()),
            _ => ControlFlow::Break(()),
        });
    }
    assert!(parser.is_done());
    content
}

/// This thread's CPU time in seconds (Linux `schedstat`), so a busy machine does not inflate
/// the result the way wall time would.
fn thread_cpu() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

fn bench(name: &str, api: ApiKind, chunks: &[Vec<u8>]) {
    const ROUNDS: u32 = 20_000;
    assert_eq!(one_stream(api, chunks), 64);
    let (mut best_wall, mut best_cpu) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        let (t, c) = (Instant::now(), thread_cpu());
        for _ in 0..ROUNDS {
            black_box(one_stream(api, black_box(chunks)));
        }
        best_wall = best_wall.min(t.elapsed().as_secs_f64() / f64::from(ROUNDS));
        if let (Some(c0), Some(c1)) = (c, thread_cpu()) {
            best_cpu = best_cpu.min((c1 - c0) / f64::from(ROUNDS));
        }
    }
    let bytes: usize = chunks.iter().map(Vec::len).sum();
    println!(
        "{name}: {:.2} µs CPU ({:.2} µs wall) per 64-chunk stream ({bytes} bytes, {:.0} MB/s CPU)",
        best_cpu * 1e6,
        best_wall * 1e6,
        bytes as f64 / best_cpu / 1e6
    );
}

fn main() {
    // `cargo test --all-targets` runs this binary without `--bench`: check the parse once
    // (64 content chunks each) instead of timing it in a debug build.
    if !std::env::args().any(|a| a == "--bench") {
        assert_eq!(one_stream(ApiKind::OpenAiChat, &openai_chunks()), 64);
        assert_eq!(
            one_stream(ApiKind::AnthropicMessages, &anthropic_chunks()),
            64
        );
        assert_eq!(
            one_stream(ApiKind::OpenAiResponses, &responses_chunks()),
            64
        );
        println!("sse bench: smoke check ok (run `cargo bench --bench sse` to time it)");
        return;
    }
    bench("openai", ApiKind::OpenAiChat, &openai_chunks());
    bench("anthropic", ApiKind::AnthropicMessages, &anthropic_chunks());
    bench("responses", ApiKind::OpenAiResponses, &responses_chunks());
}
