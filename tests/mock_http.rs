//! The mock over real HTTP on 127.0.0.1: frame sequences, bodies, faults, metrics, lifecycle.

use std::time::Duration;

use serde_json::{json, Value};
use soakd::mock::{self, MockArgs, MockError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);

struct Mock {
    base: String,
    client: reqwest::Client,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), MockError>>,
}

/// Fast defaults for tests: tiny delays, few chunks.
fn fast() -> MockArgs {
    MockArgs {
        ttft: Duration::from_millis(2),
        chunk_delay: Duration::from_millis(1),
        chunks: 6,
        chunk_bytes: 7,
        ..Default::default()
    }
}

async fn start(args: MockArgs) -> Mock {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(mock::serve(args, listener, shutdown.clone()));
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    Mock {
        base: format!("http://{addr}"),
        client,
        shutdown,
        task,
    }
}

impl Mock {
    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        tokio::time::timeout(
            T,
            self.client
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send(),
        )
        .await
        .expect("response in time")
        .expect("request succeeds")
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        tokio::time::timeout(T, self.client.get(format!("{}{path}", self.base)).send())
            .await
            .expect("response in time")
            .expect("request succeeds")
    }

    async fn metrics(&self) -> String {
        let r = self.get("/metrics").await;
        assert_eq!(r.status(), 200);
        tokio::time::timeout(T, r.text()).await.unwrap().unwrap()
    }

    /// Value of one sample of the mock's /metrics; `sel` is `name` or `name{labels}` exactly as
    /// rendered.
    async fn metric(&self, sel: &str) -> f64 {
        let text = self.metrics().await;
        sample(&text, sel).unwrap_or_else(|| panic!("no sample {sel} in\n{text}"))
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let r = tokio::time::timeout(T, self.task)
            .await
            .expect("serve returns after shutdown");
        match r {
            Ok(r) => r.expect("serve ends cleanly"),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

/// The value of the sample written exactly `sel` (`name` or `name{labels}`), read with soakd's
/// exposition parser.
fn sample(text: &str, sel: &str) -> Option<f64> {
    let mut found = None;
    soakd::monitor::expo::parse(text, |s| {
        let full = if s.labels.is_empty() {
            s.name.to_string()
        } else {
            format!("{}{{{}}}", s.name, s.labels)
        };
        if found.is_none() && full == sel {
            found = Some(s.value);
        }
    })
    .expect("the mock's exposition parses");
    found
}

async fn body_text(r: reqwest::Response) -> String {
    tokio::time::timeout(T, r.text())
        .await
        .expect("body in time")
        .expect("body reads cleanly")
}

/// SSE frames as (event, data) pairs, read with soakd's own SSE reader; the stream must end
/// on a frame boundary and hold nothing but SSE fields.
fn sse(text: &str) -> Vec<(Option<String>, String)> {
    use soakd::client::sse::{SseReader, Tail};
    let mut reader = SseReader::default();
    let mut frames = Vec::new();
    let flow = reader
        .push(text.as_bytes(), |ev| {
            let event = (!ev.event.is_empty()).then(|| ev.event.to_string());
            frames.push((event, ev.data.to_string()));
            std::ops::ControlFlow::Continue(())
        })
        .expect("valid SSE");
    assert!(flow.is_continue());
    assert_eq!(
        reader.finish(),
        Tail::Clean,
        "stream must end on a frame boundary: {text:?}"
    );
    assert_eq!(reader.foreign_lines(), 0, "only SSE fields: {text:?}");
    frames
}

fn data_json(frames: &[(Option<String>, String)]) -> Vec<Value> {
    frames
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}")))
        .collect()
}

fn chat(stream: bool, extra: Value) -> Value {
    let mut v = json!({
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "hello there"}],
        "stream": stream,
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    v
}

fn msg(stream: bool) -> Value {
    json!({
        "model": "claude-test",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "hello there"}],
        "stream": stream,
    })
}

/// Checks an OpenAI stream of the `fast()` mock and returns its frames' JSON (without
/// `[DONE]`). Fewer chunks than the mock's 6 means the token budget cut the answer.
fn check_openai_stream(text: &str, chunks: usize, chunk_bytes: usize, usage: bool) -> Vec<Value> {
    let frames = sse(text);
    let n = frames.len();
    assert_eq!(n, 1 + chunks + 1 + usize::from(usage) + 1, "{text}");
    assert_eq!(frames[n - 1].1, "[DONE]");
    assert!(frames.iter().all(|(e, _)| e.is_none()));
    let v = data_json(&frames[..n - 1]);
    let id = v[0]["id"].clone();
    assert!(id.as_str().unwrap().starts_with("chatcmpl-"));
    for f in &v {
        assert_eq!(f["id"], id);
        assert_eq!(f["object"], "chat.completion.chunk");
        assert_eq!(f["model"], "gpt-test");
    }
    assert_eq!(
        v[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    for f in &v[1..=chunks] {
        let c = f["choices"][0]["delta"]["content"].as_str().unwrap();
        assert_eq!(c.chars().count(), chunk_bytes);
        assert!(f["choices"][0]["finish_reason"].is_null());
    }
    let fin = &v[chunks + 1];
    let reason = if chunks < 6 { "length" } else { "stop" };
    assert_eq!(fin["choices"][0]["finish_reason"], reason);
    assert_eq!(fin["choices"][0]["delta"], json!({}));
    if usage {
        let u = &v[chunks + 2];
        assert_eq!(u["choices"], json!([]));
        let p = u["usage"]["prompt_tokens"].as_u64().unwrap();
        assert!(p > 0);
        assert_eq!(u["usage"]["completion_tokens"], chunks as u64);
        assert_eq!(u["usage"]["total_tokens"], p + chunks as u64);
    } else {
        assert!(v.iter().all(|f| f.get("usage").is_none()));
    }
    v
}

#[tokio::test]
async fn openai_stream_frame_sequence() {
    let m = start(fast()).await;
    let r = m
        .post(
            "/v1/chat/completions",
            &chat(true, json!({"stream_options": {"include_usage": true}})),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    check_openai_stream(&body_text(r).await, 6, 7, true);

    let r = m.post("/v1/chat/completions", &chat(true, json!({}))).await;
    check_openai_stream(&body_text(r).await, 6, 7, false);

    let r = m
        .post(
            "/v1/chat/completions",
            &chat(true, json!({"stream_options": {"include_usage": false}})),
        )
        .await;
    check_openai_stream(&body_text(r).await, 6, 7, false);

    // A smaller max_tokens caps the chunks; a larger one does not raise them.
    for (max, want) in [(3u64, 3usize), (1, 1), (100, 6)] {
        let r = m
            .post(
                "/v1/chat/completions",
                &chat(
                    true,
                    json!({"max_tokens": max, "stream_options": {"include_usage": true}}),
                ),
            )
            .await;
        check_openai_stream(&body_text(r).await, want, 7, true);
    }
    let r = m
        .post(
            "/v1/chat/completions",
            &chat(true, json!({"max_completion_tokens": 2})),
        )
        .await;
    check_openai_stream(&body_text(r).await, 2, 7, false);

    assert_eq!(
        m.metric("soakd_mock_requests_total{endpoint=\"chat_completions\",fault=\"none\"}")
            .await,
        7.0
    );
    assert_eq!(m.metric("soakd_mock_streams_active").await, 0.0);
    m.stop().await;
}

const ANTHROPIC_EVENTS: [&str; 3] = ["message_start", "content_block_start", "ping"];

#[tokio::test]
async fn anthropic_stream_event_sequence() {
    let m = start(MockArgs {
        chunks: 5,
        ..fast()
    })
    .await;
    let r = m.post("/v1/messages", &msg(true)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let frames = sse(&body_text(r).await);
    let names: Vec<&str> = frames
        .iter()
        .map(|(e, _)| e.as_deref().expect("every frame names its event"))
        .collect();
    let mut want: Vec<&str> = ANTHROPIC_EVENTS.to_vec();
    want.extend(["content_block_delta"; 5]);
    want.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, want);
    let v = data_json(&frames);
    for (f, name) in v.iter().zip(&names) {
        assert_eq!(f["type"], *name);
    }
    assert_eq!(v[0]["message"]["model"], "claude-test");
    assert_eq!(v[0]["message"]["role"], "assistant");
    let start_out = v[0]["message"]["usage"]["output_tokens"].as_u64().unwrap();
    assert!(v[0]["message"]["usage"]["input_tokens"].as_u64().unwrap() > 0);
    let text: String = v[3..8]
        .iter()
        .map(|f| {
            assert_eq!(f["delta"]["type"], "text_delta");
            f["delta"]["text"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(text.chars().count(), 5 * 7);
    let md = &v[9];
    assert_eq!(md["delta"]["stop_reason"], "end_turn");
    let out = md["usage"]["output_tokens"].as_u64().unwrap();
    assert_eq!(out, 5, "cumulative output tokens = content chunks");
    assert!(out >= start_out);

    // max_tokens caps the deltas and the token count.
    let mut req = msg(true);
    req["max_tokens"] = json!(2);
    let frames = sse(&body_text(m.post("/v1/messages", &req).await).await);
    let deltas = frames
        .iter()
        .filter(|(e, _)| e.as_deref() == Some("content_block_delta"))
        .count();
    assert_eq!(deltas, 2);
    let md = data_json(&frames[frames.len() - 2..frames.len() - 1]);
    assert_eq!(md[0]["usage"]["output_tokens"], 2);
    m.stop().await;
}

#[tokio::test]
async fn non_stream_bodies() {
    let m = start(fast()).await;
    let r = m
        .post("/v1/chat/completions", &chat(false, json!({})))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: Value = serde_json::from_str(&body_text(r).await).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-test");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .len(),
        6 * 7
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["completion_tokens"], 6);
    let p = v["usage"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(v["usage"]["total_tokens"], p + 6);

    let r = m
        .post(
            "/v1/chat/completions",
            &chat(false, json!({"max_tokens": 4})),
        )
        .await;
    let v: Value = serde_json::from_str(&body_text(r).await).unwrap();
    assert_eq!(v["usage"]["completion_tokens"], 4);

    let r = m.post("/v1/messages", &msg(false)).await;
    assert_eq!(r.status(), 200);
    let v: Value = serde_json::from_str(&body_text(r).await).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["content"][0]["type"], "text");
    assert_eq!(v["content"][0]["text"].as_str().unwrap().len(), 6 * 7);
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["usage"]["output_tokens"], 6);
    m.stop().await;
}

#[tokio::test]
async fn error_rate_gives_error_status_and_retry_after() {
    let m = start(MockArgs {
        error_rate: 1.0,
        error_status: 429,
        ..fast()
    })
    .await;
    for stream in [true, false] {
        let r = m
            .post("/v1/chat/completions", &chat(stream, json!({})))
            .await;
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "1");
        let v: Value = serde_json::from_str(&body_text(r).await).unwrap();
        assert_eq!(v["error"]["type"], "rate_limit_error");
        assert!(v["error"]["message"].as_str().unwrap().contains("429"));
    }
    let r = m.post("/v1/messages", &msg(true)).await;
    assert_eq!(r.status(), 429);
    let v: Value = serde_json::from_str(&body_text(r).await).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert_eq!(
        m.metric("soakd_mock_requests_total{endpoint=\"chat_completions\",fault=\"error\"}")
            .await,
        2.0
    );
    assert_eq!(
        m.metric("soakd_mock_requests_total{endpoint=\"messages\",fault=\"error\"}")
            .await,
        1.0
    );
    m.stop().await;

    let m = start(MockArgs {
        error_rate: 1.0,
        ..fast()
    })
    .await;
    let r = m.post("/v1/messages", &msg(false)).await;
    assert_eq!(r.status(), 500);
    assert!(r.headers().get("retry-after").is_none());
    let v: Value = serde_json::from_str(&body_text(r).await).unwrap();
    assert_eq!(v["error"]["type"], "api_error");
    m.stop().await;
}

#[tokio::test]
async fn error_event_rate_sends_error_frame_mid_stream() {
    let m = start(MockArgs {
        error_event_rate: 1.0,
        ..fast()
    })
    .await;
    let r = m
        .post(
            "/v1/chat/completions",
            &chat(true, json!({"stream_options": {"include_usage": true}})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let frames = sse(&body_text(r).await);
    // role chunk, half the content chunks, the error frame, and nothing else.
    assert_eq!(frames.len(), 1 + 3 + 1);
    let v = data_json(&frames);
    let last = v.last().unwrap();
    assert!(last["error"]["message"].is_string());
    assert!(last["error"]["type"].is_string());
    assert!(frames.iter().all(|(_, d)| d != "[DONE]"));
    assert!(v.iter().all(|f| f["choices"][0]["finish_reason"].is_null()));

    let frames = sse(&body_text(m.post("/v1/messages", &msg(true)).await).await);
    let names: Vec<_> = frames.iter().map(|(e, _)| e.clone().unwrap()).collect();
    let mut want: Vec<String> = ANTHROPIC_EVENTS.iter().map(|s| s.to_string()).collect();
    want.extend(std::iter::repeat_n("content_block_delta".to_string(), 3));
    want.push("error".into());
    assert_eq!(names, want);
    let err: Value = serde_json::from_str(&frames.last().unwrap().1).unwrap();
    assert_eq!(err["type"], "error");
    assert_eq!(err["error"]["type"], "overloaded_error");

    // Non-stream: HTTP 200 carrying an error body.
    let r = m
        .post("/v1/chat/completions", &chat(false, json!({})))
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = serde_json::from_str(&body_text(r).await).unwrap();
    assert!(v["error"]["message"].is_string());
    assert!(v.get("choices").is_none());
    m.stop().await;
}

#[tokio::test]
async fn truncate_rate_ends_cleanly_without_terminator() {
    let m = start(MockArgs {
        truncate_rate: 1.0,
        chunks: 8,
        ..fast()
    })
    .await;
    let r = m
        .post(
            "/v1/chat/completions",
            &chat(true, json!({"stream_options": {"include_usage": true}})),
        )
        .await;
    assert_eq!(r.status(), 200);
    // The body ends cleanly (text() succeeds) after the role chunk and half the chunks.
    let frames = sse(&body_text(r).await);
    assert_eq!(frames.len(), 1 + 4);
    let v = data_json(&frames);
    assert!(v
        .iter()
        .all(|f| f["choices"][0]["finish_reason"].is_null() && f.get("usage").is_none()));

    let frames = sse(&body_text(m.post("/v1/messages", &msg(true)).await).await);
    let names: Vec<_> = frames.iter().map(|(e, _)| e.clone().unwrap()).collect();
    assert_eq!(names.len(), 3 + 4);
    assert!(!names
        .iter()
        .any(|n| n == "message_stop" || n == "message_delta"));

    let r = m.post("/v1/messages", &msg(false)).await;
    assert_eq!(r.status(), 200);
    let text = body_text(r).await;
    assert!(text.starts_with("{\"id\":\"msg_"));
    assert!(serde_json::from_str::<Value>(&text).is_err());
    m.stop().await;
}

#[tokio::test]
async fn garbage_rate_sends_neither_sse_nor_json() {
    let m = start(MockArgs {
        garbage_rate: 1.0,
        ..fast()
    })
    .await;
    for (path, body) in [
        ("/v1/chat/completions", chat(true, json!({}))),
        ("/v1/chat/completions", chat(false, json!({}))),
        ("/v1/messages", msg(true)),
    ] {
        let r = m.post(path, &body).await;
        assert_eq!(r.status(), 200);
        let b = tokio::time::timeout(T, r.bytes()).await.unwrap().unwrap();
        assert!(!b.is_empty());
        assert!(std::str::from_utf8(&b).is_err(), "not valid SSE (UTF-8)");
        assert!(serde_json::from_slice::<Value>(&b).is_err());
        assert!(!b.starts_with(b"data:") && !b.starts_with(b"event:"));
    }
    assert_eq!(
        m.metric("soakd_mock_requests_total{endpoint=\"chat_completions\",fault=\"garbage\"}")
            .await,
        2.0
    );
    m.stop().await;
}

/// Reads a streamed response until `want` SSE frames have arrived.
async fn read_frames(r: &mut reqwest::Response, want: usize) -> String {
    let mut got = String::new();
    while got.matches("\n\n").count() < want {
        let c = tokio::time::timeout(T, r.chunk())
            .await
            .expect("frames in time")
            .expect("body ok")
            .expect("body not finished");
        got.push_str(std::str::from_utf8(&c).unwrap());
    }
    got
}

async fn wait_metric(m: &Mock, sel: &str, want: f64) {
    let polled = tokio::time::timeout(T, async {
        loop {
            if m.metric(sel).await == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(polled.is_ok(), "{sel} never became {want}");
}

#[tokio::test]
async fn stall_holds_until_the_client_leaves() {
    let m = start(MockArgs {
        stall_rate: 1.0,
        chunks: 4,
        ..fast()
    })
    .await;
    let mut r = m.post("/v1/chat/completions", &chat(true, json!({}))).await;
    assert_eq!(r.status(), 200);
    // Role chunk + half the chunks arrive, then nothing.
    let got = read_frames(&mut r, 3).await;
    assert_eq!(sse(&got).len(), 3);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), r.chunk())
            .await
            .is_err(),
        "a stalled stream sends nothing more"
    );
    // A non-stream stall: headers, then a body that never comes.
    let r2 = m.post("/v1/messages", &msg(false)).await;
    assert_eq!(r2.status(), 200);
    assert_eq!(m.metric("soakd_mock_streams_active").await, 2.0);
    assert_eq!(
        m.metric("soakd_mock_requests_total{endpoint=\"chat_completions\",fault=\"stall\"}")
            .await,
        1.0
    );
    // The client goes away: the server-side stream ends.
    drop(r);
    wait_metric(&m, "soakd_mock_streams_active", 1.0).await;
    drop(r2);
    wait_metric(&m, "soakd_mock_streams_active", 0.0).await;
    m.stop().await;
}

#[tokio::test]
async fn shutdown_ends_stalls_and_serve_returns() {
    let m = start(MockArgs {
        stall_rate: 1.0,
        ..fast()
    })
    .await;
    let mut r = m.post("/v1/messages", &msg(true)).await;
    read_frames(&mut r, 3 + 3).await;
    assert_eq!(m.metric("soakd_mock_streams_active").await, 1.0);
    m.shutdown.cancel();
    // The stalled body ends (cleanly, without message_stop) once shutdown fires.
    let mut rest = Vec::new();
    while let Some(c) = tokio::time::timeout(T, r.chunk())
        .await
        .expect("stall ends on shutdown")
        .expect("clean end")
    {
        rest.extend_from_slice(&c);
    }
    assert!(rest.is_empty(), "nothing after the stall: {rest:?}");
    m.stop().await;
}

#[tokio::test]
async fn bad_requests_unknown_paths_and_health() {
    let m = start(fast()).await;
    let r = tokio::time::timeout(
        T,
        m.client
            .post(format!("{}/v1/chat/completions", m.base))
            .body("{not json")
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = serde_json::from_str(&body_text(r).await).unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"].as_str().unwrap().contains("JSON"));

    let r = tokio::time::timeout(
        T,
        m.client
            .post(format!("{}/v1/messages", m.base))
            .body("")
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = serde_json::from_str(&body_text(r).await).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");

    let r = m.get("/v1/models/nope").await;
    assert_eq!(r.status(), 404);
    let v: Value = serde_json::from_str(&body_text(r).await).unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("/v1/models/nope"));

    let r = m.get("/healthz").await;
    assert_eq!(r.status(), 200);
    assert_eq!(body_text(r).await, "ok");

    let text = m.metrics().await;
    assert!(sample(&text, "process_resident_memory_bytes").unwrap() > 0.0);
    assert!(sample(&text, "process_open_fds").unwrap() > 0.0);
    assert_eq!(
        sample(
            &text,
            "soakd_mock_requests_total{endpoint=\"chat_completions\",fault=\"bad_request\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "soakd_mock_requests_total{endpoint=\"messages\",fault=\"bad_request\"}"
        ),
        Some(1.0)
    );
    for g in [
        "soakd_mock_leaked_bytes",
        "soakd_mock_leaked_fds",
        "soakd_mock_leaked_threads",
    ] {
        assert_eq!(sample(&text, g), Some(0.0), "{g}");
    }
    m.stop().await;
}

#[tokio::test]
async fn plateau_fills_then_stays_flat() {
    let m = start(MockArgs {
        plateau_bytes: Some(300 << 10),
        ..fast()
    })
    .await;
    let mut seen = Vec::new();
    for _ in 0..7 {
        let r = m
            .post("/v1/chat/completions", &chat(false, json!({})))
            .await;
        assert_eq!(r.status(), 200);
        body_text(r).await;
        seen.push(m.metric("soakd_mock_leaked_bytes").await as u64);
    }
    let step = 64 << 10;
    assert_eq!(
        seen,
        [
            step,
            2 * step,
            3 * step,
            4 * step,
            300 << 10,
            300 << 10,
            300 << 10
        ]
    );
    m.stop().await;
}

#[tokio::test]
async fn serve_rejects_invalid_knobs() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let args = MockArgs {
        error_status: 200,
        ..Default::default()
    };
    let r = tokio::time::timeout(T, mock::serve(args, listener, CancellationToken::new()))
        .await
        .expect("returns at once");
    match r {
        Err(MockError::Config(e)) => assert!(e.to_string().contains("mock.error_status"), "{e}"),
        other => panic!("want a config error, got {other:?}"),
    }
}

#[tokio::test]
async fn run_writes_pid_file_and_exits_after() {
    let dir = std::env::temp_dir().join(format!("soakd-mock-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pid_file = dir.join("mock.pid");
    let args = MockArgs {
        exit_after: Some(Duration::from_secs(2)),
        pid_file: Some(pid_file.clone()),
        ..fast()
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(mock::run(args, shutdown.clone()));
    let content = tokio::time::timeout(T, async {
        loop {
            if let Ok(s) = std::fs::read_to_string(&pid_file) {
                if !s.is_empty() {
                    return s;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("pid file appears");
    assert_eq!(content.trim(), std::process::id().to_string());
    let r = tokio::time::timeout(T, task)
        .await
        .expect("run returns after exit_after without a shutdown signal");
    match r {
        Ok(r) => r.expect("clean exit"),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
    assert!(!shutdown.is_cancelled());
    assert!(!pid_file.exists(), "pid file removed on clean exit");
    std::fs::remove_dir_all(&dir).ok();
}

// ---- Every API, checked with soakd's own stream driver and body checks. ----

use soakd::client::drive::StreamDriver;
use soakd::client::parser::parse_body;
use soakd::client::Outcome;
use soakd::client::{ApiKind, DeltaKind};

/// A whole streamed body through soakd's reader and parser: (outcome, content kinds, tokens).
fn drive(api: ApiKind, body: &[u8]) -> (Outcome, Vec<DeltaKind>, Option<u64>) {
    let mut d = StreamDriver::new(api, 1 << 20);
    let mut kinds = Vec::new();
    let v = d.push(body, |k, _, _| {
        kinds.push(k);
        std::ops::ControlFlow::Continue(())
    });
    let v = v.unwrap_or_else(|| d.at_end());
    (v.outcome, kinds, d.output_tokens())
}

async fn body_bytes(r: reqwest::Response) -> Vec<u8> {
    tokio::time::timeout(T, r.bytes())
        .await
        .expect("body in time")
        .expect("body reads cleanly")
        .to_vec()
}

fn request(api: ApiKind, stream: bool, extra: Value) -> Value {
    let mut v = match api {
        ApiKind::OpenAiChat | ApiKind::AnthropicMessages => msg(stream),
        ApiKind::OpenAiResponses => {
            json!({"model": "gpt-test", "input": "hello there", "stream": stream})
        }
        ApiKind::OpenAiCompletions => {
            json!({"model": "gpt-test", "prompt": "hello there", "stream": stream})
        }
        ApiKind::OpenAiEmbeddings => json!({"model": "emb", "input": ["a", "b", "c"]}),
    };
    if api == ApiKind::AnthropicMessages || api == ApiKind::OpenAiChat {
        v.as_object_mut().unwrap().remove("max_tokens");
    }
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    v
}

const STREAMING: [ApiKind; 4] = [
    ApiKind::OpenAiChat,
    ApiKind::OpenAiResponses,
    ApiKind::OpenAiCompletions,
    ApiKind::AnthropicMessages,
];

#[tokio::test]
async fn every_api_streams_reasoning_then_text_and_answers_whole_bodies() {
    let m = start(MockArgs {
        reasoning_chunks: 2,
        ..fast()
    })
    .await;
    for api in STREAMING {
        let usage = json!({"stream_options": {"include_usage": true}});
        let r = m.post(api.default_path(), &request(api, true, usage)).await;
        assert_eq!(r.status(), 200, "{api}");
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        let b = body_bytes(r).await;
        let (outcome, kinds, tokens) = drive(api, &b);
        assert_eq!(
            outcome,
            Outcome::Ok,
            "{api}: {}",
            String::from_utf8_lossy(&b)
        );
        // Legacy completions have no reasoning; the others send it first.
        let reasoning = if api == ApiKind::OpenAiCompletions {
            0
        } else {
            2
        };
        let mut want = vec![DeltaKind::Reasoning; reasoning];
        want.extend([DeltaKind::Text; 6]);
        assert_eq!(kinds, want, "{api}");
        assert_eq!(tokens, Some(6 + reasoning as u64), "{api}");
        if matches!(api, ApiKind::OpenAiResponses | ApiKind::AnthropicMessages) {
            // Typed events: the event name is the JSON type.
            for (e, d) in sse(std::str::from_utf8(&b).unwrap()) {
                let v: Value = serde_json::from_str(&d).unwrap();
                assert_eq!(Some(v["type"].as_str().unwrap()), e.as_deref(), "{api}");
            }
        }

        let r = m
            .post(api.default_path(), &request(api, false, json!({})))
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/json");
        let b = body_bytes(r).await;
        assert_eq!(
            parse_body(api, 1, &b),
            Ok(Some(6 + reasoning as u64)),
            "{api}"
        );
    }
    for (label, n) in [
        ("chat_completions", 2.0),
        ("responses", 2.0),
        ("completions", 2.0),
        ("messages", 2.0),
    ] {
        let sel = format!("soakd_mock_requests_total{{endpoint=\"{label}\",fault=\"none\"}}");
        assert_eq!(m.metric(&sel).await, n, "{sel}");
    }
    m.stop().await;
}

#[tokio::test]
async fn responses_stream_event_sequence_and_budget() {
    let m = start(fast()).await;
    let r = m
        .post(
            "/v1/responses",
            &request(ApiKind::OpenAiResponses, true, json!({})),
        )
        .await;
    let frames = sse(&body_text(r).await);
    let names: Vec<&str> = frames.iter().map(|(e, _)| e.as_deref().unwrap()).collect();
    let mut want = vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ];
    want.extend(["response.output_text.delta"; 6]);
    want.extend([
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]);
    assert_eq!(names, want);
    let v = data_json(&frames);
    assert_eq!(v[0]["response"]["model"], "gpt-test");
    let text: String = v[4..10]
        .iter()
        .map(|f| f["delta"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(v[10]["text"].as_str(), Some(text.as_str()));
    assert_eq!(
        v[13]["response"]["output"][0]["content"][0]["text"].as_str(),
        Some(text.as_str())
    );

    // A smaller max_output_tokens cuts the answer: response.incomplete for the budget, ok.
    let r = m
        .post(
            "/v1/responses",
            &request(
                ApiKind::OpenAiResponses,
                true,
                json!({"max_output_tokens": 2}),
            ),
        )
        .await;
    let b = body_bytes(r).await;
    let last = sse(std::str::from_utf8(&b).unwrap()).pop().unwrap();
    assert_eq!(last.0.as_deref(), Some("response.incomplete"));
    let last: Value = serde_json::from_str(&last.1).unwrap();
    assert_eq!(
        last["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    assert_eq!(
        drive(ApiKind::OpenAiResponses, &b),
        (Outcome::Ok, vec![DeltaKind::Text; 2], Some(2))
    );
    m.stop().await;
}

#[tokio::test]
async fn tool_calls_for_every_api_that_has_them() {
    let m = start(MockArgs {
        tool_call_rate: 1.0,
        chunks: 5,
        ..fast()
    })
    .await;
    for api in [
        ApiKind::OpenAiChat,
        ApiKind::OpenAiResponses,
        ApiKind::AnthropicMessages,
    ] {
        let usage = json!({"stream_options": {"include_usage": true}});
        let b = body_bytes(m.post(api.default_path(), &request(api, true, usage)).await).await;
        assert_eq!(
            drive(api, &b),
            (Outcome::Ok, vec![DeltaKind::ToolCall; 5], Some(5)),
            "{api}"
        );
        let b = body_bytes(
            m.post(api.default_path(), &request(api, false, json!({})))
                .await,
        )
        .await;
        let v: Value = serde_json::from_slice(&b).unwrap();
        let args = match api {
            ApiKind::OpenAiChat => {
                assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
                assert!(v["choices"][0]["message"]["content"].is_null());
                let a = &v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"];
                serde_json::from_str(a.as_str().unwrap()).unwrap()
            }
            ApiKind::OpenAiResponses => {
                assert_eq!(v["output"][0]["type"], "function_call");
                serde_json::from_str(v["output"][0]["arguments"].as_str().unwrap()).unwrap()
            }
            _ => {
                assert_eq!(v["stop_reason"], "tool_use");
                v["content"][0]["input"].clone()
            }
        };
        assert_eq!(args["query"].as_str().unwrap().len(), 5 * 7, "{api}");
    }
    // Legacy completions have no tools: text as usual.
    let api = ApiKind::OpenAiCompletions;
    let b = body_bytes(
        m.post(api.default_path(), &request(api, true, json!({})))
            .await,
    )
    .await;
    assert_eq!(drive(api, &b).1, vec![DeltaKind::Text; 5]);
    m.stop().await;
}

#[tokio::test]
async fn embeddings_answer_one_vector_per_input() {
    let m = start(fast()).await;
    let api = ApiKind::OpenAiEmbeddings;
    let path = api.default_path();
    for (input, n) in [
        (json!(["a", "b", "c"]), 3u32),
        (json!("one"), 1),
        (json!([1, 2, 3]), 1),
        (json!([[1, 2], [3]]), 2),
    ] {
        let r = m.post(path, &json!({"model": "emb", "input": input})).await;
        assert_eq!(r.status(), 200);
        let b = body_bytes(r).await;
        assert_eq!(parse_body(api, n, &b), Ok(None), "{input}");
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 256);
        assert_eq!(v["model"], "emb");
    }
    let r = m
        .post(
            path,
            &json!({"model": "emb", "input": "x", "dimensions": 8}),
        )
        .await;
    let v: Value = serde_json::from_slice(&body_bytes(r).await).unwrap();
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 8);
    for bad in [
        json!({"model": "emb", "input": "x", "stream": true}),
        json!({"model": "emb"}),
        json!({"model": "emb", "input": []}),
        json!({"model": "emb", "input": "x", "dimensions": 100000}),
    ] {
        let r = m.post(path, &bad).await;
        assert_eq!(r.status(), 400, "{bad}");
        let v: Value = serde_json::from_slice(&body_bytes(r).await).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
    assert_eq!(
        m.metric("soakd_mock_requests_total{endpoint=\"embeddings\",fault=\"none\"}")
            .await,
        5.0
    );
    assert_eq!(
        m.metric("soakd_mock_requests_total{endpoint=\"embeddings\",fault=\"bad_request\"}")
            .await,
        4.0
    );
    m.stop().await;
}

/// (API, streamed, outcome) of one request each.
type Outcomes = Vec<(ApiKind, bool, Outcome)>;

/// What soakd makes of one answer of every API under a fault that hits every request.
async fn outcomes_under(args: MockArgs) -> Outcomes {
    let m = start(args).await;
    let mut out = Vec::new();
    for api in ApiKind::ALL {
        for stream in [true, false] {
            if stream && !api.streams() {
                continue;
            }
            let r = m
                .post(api.default_path(), &request(api, stream, json!({})))
                .await;
            let status = r.status().as_u16();
            let b = body_bytes(r).await;
            let outcome = match status {
                429 => Outcome::Http429,
                s if s >= 500 => Outcome::Http5xx,
                200 if stream => drive(api, &b).0,
                200 => match parse_body(api, 3, &b) {
                    Ok(_) => Outcome::Ok,
                    Err(_) => Outcome::ProtocolError,
                },
                other => panic!("{api}: status {other}"),
            };
            out.push((api, stream, outcome));
        }
    }
    m.stop().await;
    out
}

#[tokio::test]
async fn faults_take_each_apis_shape() {
    let all = |f: &dyn Fn(bool) -> Outcome| -> Outcomes {
        let mut v = Vec::new();
        for api in ApiKind::ALL {
            for stream in [true, false] {
                if !stream || api.streams() {
                    v.push((api, stream, f(stream)));
                }
            }
        }
        v
    };
    let cases: [(MockArgs, Outcomes); 5] = [
        (fast(), all(&|_| Outcome::Ok)),
        (
            MockArgs {
                error_event_rate: 1.0,
                ..fast()
            },
            all(&|s| {
                if s {
                    Outcome::StreamErrorEvent
                } else {
                    Outcome::ProtocolError
                }
            }),
        ),
        (
            MockArgs {
                truncate_rate: 1.0,
                ..fast()
            },
            all(&|s| {
                if s {
                    Outcome::StreamTruncated
                } else {
                    Outcome::ProtocolError
                }
            }),
        ),
        (
            MockArgs {
                garbage_rate: 1.0,
                ..fast()
            },
            all(&|_| Outcome::ProtocolError),
        ),
        (
            MockArgs {
                error_rate: 1.0,
                error_status: 429,
                ..fast()
            },
            all(&|_| Outcome::Http429),
        ),
    ];
    for (args, want) in cases {
        let label = format!("{args:?}");
        assert_eq!(outcomes_under(args).await, want, "{label}");
    }
}

#[tokio::test]
async fn responses_error_is_an_error_event_then_response_failed() {
    let m = start(MockArgs {
        error_event_rate: 1.0,
        ..fast()
    })
    .await;
    let r = m
        .post(
            "/v1/responses",
            &request(ApiKind::OpenAiResponses, true, json!({})),
        )
        .await;
    let frames = sse(&body_text(r).await);
    let names: Vec<&str> = frames.iter().map(|(e, _)| e.as_deref().unwrap()).collect();
    assert_eq!(&names[names.len() - 2..], ["error", "response.failed"]);
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "response.output_text.delta")
            .count(),
        3
    );
    assert!(!names.contains(&"response.completed"));
    let r = m
        .post(
            "/v1/responses",
            &request(ApiKind::OpenAiResponses, false, json!({})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = serde_json::from_slice(&body_bytes(r).await).unwrap();
    assert_eq!(v["status"], "failed");
    assert_eq!(v["error"]["code"], "server_error");
    m.stop().await;
}
