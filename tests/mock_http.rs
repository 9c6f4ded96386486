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

fn sample(text: &str, sel: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(sel)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn body_text(r: reqwest::Response) -> String {
    tokio::time::timeout(T, r.text())
        .await
        .expect("body in time")
        .expect("body reads cleanly")
}

/// SSE frames as (event, data) pairs; every frame must be well formed.
fn sse(text: &str) -> Vec<(Option<String>, String)> {
    assert!(
        text.ends_with("\n\n"),
        "stream must end on a frame boundary: {text:?}"
    );
    text.split_terminator("\n\n")
        .map(|f| {
            let mut event = None;
            let mut data = None;
            for line in f.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = Some(e.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = Some(d.to_string());
                } else {
                    panic!("unexpected SSE line {line:?}");
                }
            }
            (event, data.expect("a data line"))
        })
        .collect()
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
