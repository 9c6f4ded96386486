//! Loopback tests of [`Exchange::execute`] against tiny adversarial HTTP/1.1 servers.
//!
//! Each server is a raw `TcpListener` on 127.0.0.1:0 playing a script of canned bytes, delays,
//! resets and silences per connection, so every failure mode is exact. Tests assert the outcome
//! and the metric values read back from the registry, never wall-clock speed (TTFT is only
//! checked to be at least the server's delay, with seconds of slack above).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};

use tokio_util::sync::CancellationToken;

use super::*;
use crate::metrics::Metrics;
use crate::plan::Phase;
use crate::stats::{Series, Stats};

const T: Duration = Duration::from_secs(20);

thread_local! {
    /// Whether a [`Harness`] made on this thread sends through the HTTP/1.1 fast path (set by
    /// the `fast` module's wrappers, which run a test's body again on this thread).
    static FAST: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// One step of a connection's script.
#[derive(Clone)]
enum Act {
    /// Read one request (head and content-length body).
    Read,
    Write(Vec<u8>),
    Sleep(Duration),
    /// Close with RST.
    Reset,
    /// Say nothing for a long (bounded) while.
    Hang,
    /// Write the bytes every interval until the peer goes away (bounded to 400 rounds).
    Repeat(Vec<u8>, Duration),
    /// Say nothing until the peer closes the connection; fails the test when it has not
    /// within 10 s.
    AwaitClose,
}

struct Server {
    addr: SocketAddr,
    handle: JoinHandle<usize>,
}

impl Server {
    /// Serves one connection per script, in order; returns the number of connections served.
    async fn start(scripts: Vec<Vec<Act>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handle = tokio::spawn(async move {
            let mut served = 0;
            for script in scripts {
                let (sock, _) = listener.accept().await.expect("accept");
                served += 1;
                play(sock, script).await;
            }
            served
        });
        Server { addr, handle }
    }

    fn url(&self, path: &str) -> reqwest::Url {
        reqwest::Url::parse(&format!("http://{}{path}", self.addr)).expect("url")
    }

    /// Waits for the script to end; re-raises the server's panic.
    async fn join(self) -> usize {
        match timeout(T, self.handle)
            .await
            .expect("server did not finish")
        {
            Ok(n) => n,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

async fn play(mut sock: TcpStream, script: Vec<Act>) {
    for act in script {
        match act {
            Act::Read => read_request(&mut sock).await,
            Act::Write(b) => {
                if sock.write_all(&b).await.is_err() {
                    return;
                }
            }
            Act::Sleep(d) => tokio::time::sleep(d).await,
            Act::Reset => {
                sock.set_zero_linger().expect("linger");
                return;
            }
            Act::Hang => tokio::time::sleep(Duration::from_secs(15)).await,
            Act::Repeat(b, every) => {
                for _ in 0..400 {
                    if sock.write_all(&b).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(every).await;
                }
            }
            Act::AwaitClose => {
                let mut tmp = [0u8; 64];
                let closed = timeout(Duration::from_secs(10), async {
                    loop {
                        match sock.read(&mut tmp).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                    }
                })
                .await;
                assert!(closed.is_ok(), "the client never closed the connection");
                return;
            }
        }
    }
    let _ = sock.shutdown().await;
}

async fn read_request(sock: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = sock.read(&mut tmp).await.expect("read request");
        assert!(n > 0, "client closed before sending a request");
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().expect("content-length"))
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut tmp).await.expect("read body");
        assert!(n > 0, "client closed mid-body");
        buf.extend_from_slice(&tmp[..n]);
    }
}

const SSE_HEAD: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\nconnection: close\r\n\r\n";
const SSE_HEAD_CHUNKED: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";

fn w(s: &str) -> Act {
    Act::Write(s.as_bytes().to_vec())
}

fn chunked(s: &str) -> Act {
    Act::Write(format!("{:x}\r\n{s}\r\n", s.len()).into_bytes())
}

fn response(status: &str, content_type: &str, body: &str) -> Act {
    w(&format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ))
}

fn oai(content: &str) -> String {
    format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{content}\"}}}}]}}\n\n")
}

const ROLE: &str =
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n";
const DONE: &str = "data: [DONE]\n\n";

struct Harness {
    metrics: Metrics,
    sm: ScenarioMetrics,
    stats: std::sync::Arc<Stats>,
    settings: ClientSettings,
    client: reqwest::Client,
    /// The fast path's pool, made for the first request's target when [`FAST`] is on.
    fast: Option<std::sync::OnceLock<http1::Http1Pool>>,
    abort: CancellationToken,
    /// The run's open-stream signal the exchange keeps.
    open: std::sync::atomic::AtomicI64,
}

impl Harness {
    fn new(settings: ClientSettings) -> Harness {
        let metrics = Metrics::new("test", "0").expect("metrics");
        let stats = std::sync::Arc::new(Stats::new());
        let sm = ScenarioMetrics::new(&metrics, "t", stats.clone());
        let client = build_http_client(&settings).expect("client");
        Harness {
            metrics,
            sm,
            stats,
            settings,
            client,
            fast: FAST.with(|f| f.get()).then(std::sync::OnceLock::new),
            abort: CancellationToken::new(),
            open: std::sync::atomic::AtomicI64::new(0),
        }
    }

    fn quick() -> Harness {
        Harness::new(quick_settings())
    }

    async fn run(&self, spec: &RequestSpec, cancel: Option<CancelAt>) -> RequestReport {
        let head = H1Head::new(spec, &self.settings.user_agent).expect("head");
        let fast = self.fast.as_ref().map(|p| {
            let pool = p.get_or_init(|| {
                http1::Http1Pool::for_target_with_env(&spec.url, &self.settings, 64, &|_| None)
                    .expect("fast path applies")
            });
            (pool, &head)
        });
        let ex = Exchange {
            client: &self.client,
            fast,
            spec,
            settings: &self.settings,
            metrics: &self.sm,
            tracker: None,
            open_streams: Some(&self.open),
        };
        let body = Bytes::from_static(br#"{"model":"m","stream":true,"messages":[]}"#);
        timeout(
            T,
            ex.execute(
                body,
                Instant::now(),
                Phase::Steady,
                cancel,
                &self.abort,
                None,
            ),
        )
        .await
        .expect("execute did not finish")
    }

    fn requests(&self, o: Outcome) -> u64 {
        self.metrics
            .requests_total
            .with_label_values(&["t", "steady", o.as_str()])
            .get()
    }

    /// Exactly one request was recorded, with outcome `o`.
    fn assert_only(&self, o: Outcome) {
        for other in Outcome::ALL {
            let want = u64::from(*other == o);
            assert_eq!(
                self.requests(*other),
                want,
                "requests_total{{outcome={other}}}"
            );
        }
        let d = &self.metrics.request_duration_seconds;
        let (ok, err) = (
            d.with_label_values(&["t", "ok"]).get_sample_count(),
            d.with_label_values(&["t", "error"]).get_sample_count(),
        );
        if o.is_success() {
            assert_eq!((ok, err), (1, 0));
        } else {
            assert_eq!((ok, err), (0, 1));
        }
        assert_eq!(self.stats.percentiles(Series::Duration).count, 1);
        assert_eq!(self.active(), 0, "streams_active back to 0");
        assert_eq!(self.open(), 0, "open-stream signal back to 0");
    }

    fn finished(&self, r: StreamResult) -> u64 {
        self.metrics
            .streams_finished_total
            .with_label_values(&["t", r.as_str()])
            .get()
    }

    /// The stream finished with `r` (or never opened, for `None`).
    fn assert_stream(&self, r: Option<StreamResult>) {
        for other in StreamResult::ALL {
            let want = u64::from(Some(*other) == r);
            assert_eq!(
                self.finished(*other),
                want,
                "streams_finished{{result={other}}}"
            );
        }
    }

    fn active(&self) -> i64 {
        self.metrics.streams_active.with_label_values(&["t"]).get()
    }

    fn open(&self) -> i64 {
        self.open.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn counter(&self, v: &prometheus::IntCounterVec) -> u64 {
        v.with_label_values(&["t"]).get()
    }

    fn ttft_count(&self) -> u64 {
        self.metrics
            .time_to_first_token_seconds
            .with_label_values(&["t"])
            .get_sample_count()
    }

    fn gap_count(&self) -> u64 {
        self.metrics
            .stream_chunk_gap_seconds
            .with_label_values(&["t"])
            .get_sample_count()
    }
}

pub(super) fn quick_settings() -> ClientSettings {
    ClientSettings {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        stream_timeout: Duration::from_secs(10),
        ..ClientSettings::default()
    }
}

fn openai_spec(server: &Server) -> RequestSpec {
    RequestSpec::new(
        ApiKind::OpenAiChat,
        server.url(ApiKind::OpenAiChat.default_path()),
        Some("sk-test"),
        &[],
    )
    .expect("spec")
    .with_scenario("t")
}

#[tokio::test]
async fn openai_stream_ok_with_delayed_first_token_and_usage() {
    let delay = Duration::from_millis(300);
    let usage =
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":7}}\n\n";
    let body = [ROLE, &oai("Hello"), &oai(" world"), usage, DONE].concat();
    let server = Server::start(vec![vec![
        Act::Read,
        w(SSE_HEAD),
        w(": keep-alive\n\n"),
        w(ROLE),
        Act::Sleep(delay),
        w(&oai("Hello")),
        Act::Sleep(Duration::from_millis(20)),
        w(&oai(" world")),
        w(usage),
        w(DONE),
    ]])
    .await;
    let h = Harness::quick();
    let r = h.run(&openai_spec(&server), None).await;
    assert_eq!(r.outcome, Outcome::Ok);
    h.assert_only(Outcome::Ok);
    h.assert_stream(Some(StreamResult::Completed));
    let ttft = r.ttft.expect("ttft");
    assert!(
        ttft >= delay,
        "ttft {ttft:?} must not count the role-only chunk"
    );
    assert!(ttft <= delay + Duration::from_secs(2), "ttft {ttft:?}");
    assert!(r.duration >= ttft);
    assert_eq!(r.chunks, 2);
    assert_eq!(r.output_tokens, 7, "usage wins over the chunk count");
    assert_eq!(r.bytes, (": keep-alive\n\n".len() + body.len()) as u64);
    assert_eq!(h.counter(&h.metrics.stream_chunks_total), 2);
    assert_eq!(h.counter(&h.metrics.output_tokens_total), 7);
    assert_eq!(h.counter(&h.metrics.response_bytes_total), r.bytes);
    assert_eq!(h.ttft_count(), 1);
    assert_eq!(h.gap_count(), 1);
    assert_eq!(h.stats.percentiles(Series::Ttft).count, 1);
    assert_eq!(h.stats.percentiles(Series::ChunkGap).count, 1);
    let recorded = h.stats.percentiles(Series::Ttft).max;
    assert!(recorded >= delay.as_secs_f64() * 0.99, "{recorded}");
    server.join().await;
}

#[tokio::test]
async fn anthropic_stream_ok_takes_the_last_cumulative_usage() {
    let ev = |name: &str, data: &str| format!("event: {name}\r\ndata: {data}\r\n\r\n");
    let delta = |t: &str| {
        ev(
            "content_block_delta",
            &format!(
                r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"{t}"}}}}"#
            ),
        )
    };
    let server = Server::start(vec![vec![
        Act::Read,
        w(SSE_HEAD),
        w(&ev(
            "message_start",
            r#"{"type":"message_start","message":{"usage":{"input_tokens":5,"output_tokens":1}}}"#,
        )),
        w(&ev("ping", r#"{"type": "ping"}"#)),
        w(&delta("Hi")),
        w(&delta(" there")),
        w(&delta("!")),
        w(&ev(
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}"#,
        )),
        w(&ev("message_stop", r#"{"type":"message_stop"}"#)),
    ]])
    .await;
    let spec = RequestSpec::new(
        ApiKind::AnthropicMessages,
        server.url("/v1/messages"),
        Some("key"),
        &[],
    )
    .expect("spec");
    let h = Harness::quick();
    let r = h.run(&spec, None).await;
    assert_eq!(r.outcome, Outcome::Ok);
    h.assert_only(Outcome::Ok);
    h.assert_stream(Some(StreamResult::Completed));
    assert_eq!(r.chunks, 3);
    assert_eq!(r.output_tokens, 9);
    assert_eq!(h.counter(&h.metrics.output_tokens_total), 9);
    assert_eq!(h.gap_count(), 2);
    server.join().await;
}

/// One failure mode of an OpenAI stream: the server's script, the client's limits, and what
/// must be recorded.
struct Case {
    name: &'static str,
    script: Vec<Act>,
    settings: ClientSettings,
    outcome: Outcome,
    /// `None`: the stream never opened.
    stream: Option<StreamResult>,
    /// Content chunks received (and tokens counted from them), when the case pins it.
    chunks: Option<u64>,
}

#[tokio::test]
async fn stream_failures_are_classified_and_recorded_once() {
    let limits = ClientSettings {
        max_event_bytes: 1024,
        ..quick_settings()
    };
    let big = format!("data: {}\n\n", "x".repeat(8 * 1024));
    let cases = [
        Case {
            name: "no [DONE]: truncated, chunks count as tokens",
            script: vec![Act::Read, w(SSE_HEAD), w(ROLE), w(&oai("a")), w(&oai("b")), w(&oai("c"))],
            settings: quick_settings(),
            outcome: Outcome::StreamTruncated,
            stream: Some(StreamResult::Truncated),
            chunks: Some(3),
        },
        Case {
            name: "body ends inside an event",
            script: vec![Act::Read, w(SSE_HEAD), w(&oai("a")), w("data: [DO")],
            settings: quick_settings(),
            outcome: Outcome::StreamTruncated,
            stream: Some(StreamResult::Truncated),
            chunks: Some(1),
        },
        Case {
            name: "connection reset mid-stream",
            script: vec![
                Act::Read,
                w(SSE_HEAD_CHUNKED),
                chunked(ROLE),
                chunked(&oai("partial")),
                Act::Sleep(Duration::from_millis(50)),
                Act::Reset,
            ],
            settings: quick_settings(),
            outcome: Outcome::StreamTruncated,
            stream: Some(StreamResult::Truncated),
            chunks: Some(1),
        },
        Case {
            // Malformed framing, not a lost connection: a protocol error on both clients
            // (hyper reports it as an invalid-input body error, the fast path's decoder as a
            // parse error).
            name: "malformed chunk size",
            script: vec![Act::Read, w(SSE_HEAD_CHUNKED), chunked(&oai("a")), w("zz\r\n")],
            settings: quick_settings(),
            outcome: Outcome::ProtocolError,
            stream: Some(StreamResult::Truncated),
            chunks: Some(1),
        },
        Case {
            name: "closed short of its content-length",
            script: vec![
                Act::Read,
                w("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 4096\r\n\r\n"),
                w(&oai("a")),
            ],
            settings: quick_settings(),
            outcome: Outcome::StreamTruncated,
            stream: Some(StreamResult::Truncated),
            chunks: Some(1),
        },
        Case {
            name: "error payload after 200",
            script: vec![
                Act::Read,
                w(SSE_HEAD),
                w(ROLE),
                w(&oai("x")),
                w("data: {\"error\":{\"message\":\"upstream overloaded\",\"type\":\"server_error\"}}\n\n"),
            ],
            settings: quick_settings(),
            outcome: Outcome::StreamErrorEvent,
            stream: Some(StreamResult::ErrorEvent),
            chunks: Some(1),
        },
        Case {
            name: "garbage SSE payload",
            script: vec![
                Act::Read,
                w(SSE_HEAD),
                w(&oai("ok")),
                w("data: {this is not json\n\n"),
                w(&oai("never read")),
            ],
            settings: quick_settings(),
            outcome: Outcome::ProtocolError,
            stream: Some(StreamResult::Truncated),
            chunks: Some(1),
        },
        Case {
            name: "not HTTP at all",
            script: vec![Act::Read, w("SSH-2.0-OpenSSH_9.6\r\nnot http at all\r\n\r\n")],
            settings: quick_settings(),
            outcome: Outcome::ProtocolError,
            stream: None,
            chunks: Some(0),
        },
        Case {
            name: "JSON where a stream was asked for",
            script: vec![Act::Read, response("200 OK", "application/json", r#"{"choices":[]}"#)],
            settings: quick_settings(),
            outcome: Outcome::ProtocolError,
            stream: None,
            chunks: Some(0),
        },
        Case {
            name: "event over max_event_bytes",
            script: vec![Act::Read, w(SSE_HEAD), w(&oai("a")), w(&big)],
            settings: limits,
            outcome: Outcome::ProtocolError,
            stream: Some(StreamResult::Truncated),
            chunks: Some(1),
        },
        Case {
            name: "closed before the response head",
            script: vec![Act::Read],
            settings: quick_settings(),
            outcome: Outcome::ConnectError,
            stream: None,
            chunks: Some(0),
        },
    ];
    for c in cases {
        let server = Server::start(vec![c.script]).await;
        let h = Harness::new(c.settings);
        let r = h.run(&openai_spec(&server), None).await;
        assert_eq!(r.outcome, c.outcome, "{}", c.name);
        h.assert_only(c.outcome);
        h.assert_stream(c.stream);
        if let Some(n) = c.chunks {
            assert_eq!(r.chunks, n, "{}: chunks", c.name);
            assert_eq!(h.counter(&h.metrics.stream_chunks_total), n, "{}", c.name);
            assert_eq!(r.output_tokens, n, "{}: tokens from chunks", c.name);
            assert_eq!(h.counter(&h.metrics.output_tokens_total), n, "{}", c.name);
        }
        server.join().await;
    }
}

/// Runs one request on its own task, so the test can act while it is in flight.
fn spawn_run(h: &std::sync::Arc<Harness>, spec: RequestSpec) -> JoinHandle<RequestReport> {
    let (h, spec) = (h.clone(), spec);
    tokio::spawn(async move { h.run(&spec, None).await })
}

/// Polls `done` every 10 ms until it holds; fails with `what` after [`T`].
async fn wait_until(done: impl Fn() -> bool, what: &str) {
    timeout(T, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect(what);
}

#[tokio::test]
async fn an_abort_is_recorded_once_as_cancelled_with_what_had_arrived() {
    let server = Server::start(vec![vec![
        Act::Read,
        w(SSE_HEAD),
        w(&oai("a")),
        w(&oai("b")),
        Act::Hang,
    ]])
    .await;
    let h = std::sync::Arc::new(Harness::quick());
    let task = spawn_run(&h, openai_spec(&server));
    wait_until(
        || h.counter(&h.metrics.stream_chunks_total) >= 2,
        "chunks never arrived",
    )
    .await;
    h.abort.cancel();
    let r = timeout(T, task).await.expect("abort").expect("task");
    assert_eq!(r.outcome, Outcome::Cancelled);
    h.assert_only(Outcome::Cancelled);
    h.assert_stream(Some(StreamResult::Cancelled));
    assert_eq!(r.chunks, 2);
    assert_eq!(h.counter(&h.metrics.output_tokens_total), 2);
    server.handle.abort();
}

#[tokio::test]
async fn status_429_and_503_are_classified_and_their_bodies_drained() {
    for (status, outcome) in [
        ("429 Too Many Requests", Outcome::Http429),
        ("503 Service Unavailable", Outcome::Http5xx),
        ("404 Not Found", Outcome::Http4xx),
    ] {
        let body = r#"{"error":{"message":"no"}}"#;
        let server = Server::start(vec![vec![
            Act::Read,
            response(status, "application/json", body),
        ]])
        .await;
        let h = Harness::quick();
        let r = h.run(&openai_spec(&server), None).await;
        assert_eq!(r.outcome, outcome, "{status}");
        h.assert_only(outcome);
        h.assert_stream(None);
        assert_eq!(r.ttft, None);
        assert_eq!(r.bytes, body.len() as u64, "{status} body drained");
        assert_eq!(
            h.counter(&h.metrics.response_bytes_total),
            body.len() as u64
        );
        server.join().await;
    }
}

/// A log sink for one test thread (`tracing::subscriber::set_default`).
#[derive(Clone, Default)]
struct LogSink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Issue 27, item 9: the warning of an HTTP error carries the first bytes of its body, on one
/// line, bounded, with the configured key, bearer tokens and `sk-` keys removed; the scenario
/// keeps the most frequent one. Run on both clients (see `fast`), which must say the same.
#[tokio::test]
async fn an_error_status_body_reaches_the_warning_redacted_and_bounded() {
    let sink = LogSink::default();
    let log = sink.clone();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(move || log.clone())
            .with_ansi(false)
            .finish(),
    );
    let body = format!(
        "{{\"error\":{{\"message\":\"connect ECONNREFUSED 127.0.0.1:19799\",\n\
         \"auth\":\"Bearer sk-test\",\"key\":\"sk-live-0123456789abcdef\"}}}}\n{}",
        "x".repeat(300)
    );
    let server = Server::start(vec![vec![
        Act::Read,
        response("500 Internal Server Error", "application/json", &body),
    ]])
    .await;
    let h = Harness::quick();
    let r = h.run(&openai_spec(&server), None).await;
    assert_eq!(r.outcome, Outcome::Http5xx);
    assert_eq!(
        r.bytes,
        body.len() as u64,
        "the body is still drained whole"
    );
    let want = "{\"error\":{\"message\":\"connect ECONNREFUSED 127.0.0.1:19799\", \
                \"auth\":\"<redacted>\",\"key\":\"sk-<redacted>\"}} xxxxx";
    let top = h.sm.top_error_bodies();
    let got = &top["http_5xx"];
    assert!(got.body.starts_with(want), "{}", got.body);
    assert!(got.body.ends_with("x…"), "{}", got.body);
    assert_eq!(got.body.len(), error_body::EXCERPT_BYTES + "…".len());
    assert_eq!((got.count, got.of), (1, 1));
    let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("request failed"))
        .unwrap_or_else(|| panic!("no warning: {text}"));
    assert!(
        line.contains(&format!("body={:?}", got.body)),
        "the warning carries the excerpt: {line}"
    );
    assert!(
        !text.contains("sk-test") && !text.contains("0123456789"),
        "{text}"
    );
    server.join().await;
}

#[tokio::test]
async fn refused_port_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let spec = RequestSpec::new(
        ApiKind::OpenAiChat,
        reqwest::Url::parse(&format!("http://{addr}/v1/chat/completions")).expect("url"),
        None,
        &[],
    )
    .expect("spec");
    let h = Harness::quick();
    let r = h.run(&spec, None).await;
    assert_eq!(r.outcome, Outcome::ConnectError);
    h.assert_only(Outcome::ConnectError);
    h.assert_stream(None);
    assert_eq!(r.bytes, 0);
}

#[tokio::test]
async fn a_request_ends_at_its_timeout_or_cancel_point() {
    struct Case {
        name: &'static str,
        script: Vec<Act>,
        settings: ClientSettings,
        cancel: Option<CancelAt>,
        outcome: Outcome,
        stream: Option<StreamResult>,
        /// The chunks the report and `stream_chunks_total` hold, at least and at most.
        chunks: (u64, u64),
        /// The request lasted at least this long.
        at_least: Duration,
        /// The script ends by itself once the client goes (else it hangs and is aborted).
        server_ends: bool,
    }
    let mut six_chunks = vec![Act::Read, w(SSE_HEAD), w(ROLE)];
    for i in 0..6 {
        six_chunks.push(w(&oai(&format!("t{i}"))));
        six_chunks.push(Act::Sleep(Duration::from_millis(30)));
    }
    six_chunks.push(w(DONE));
    let cases = [
        Case {
            name: "silent server: request_timeout",
            script: vec![Act::Read, Act::Hang],
            settings: ClientSettings {
                request_timeout: Duration::from_millis(300),
                ..ClientSettings::default()
            },
            cancel: None,
            outcome: Outcome::Timeout,
            stream: None,
            chunks: (0, 0),
            at_least: Duration::from_millis(300),
            server_ends: false,
        },
        Case {
            name: "endless stream: stream_timeout",
            script: vec![
                Act::Read,
                w(SSE_HEAD),
                w(&oai("first")),
                Act::Repeat(b": ping\n\n".to_vec(), Duration::from_millis(30)),
            ],
            settings: ClientSettings {
                stream_timeout: Duration::from_millis(500),
                ..ClientSettings::default()
            },
            cancel: None,
            outcome: Outcome::Timeout,
            stream: Some(StreamResult::Timeout),
            chunks: (1, 1),
            at_least: Duration::from_millis(500),
            server_ends: true,
        },
        Case {
            name: "cancel after 2 chunks",
            script: six_chunks,
            settings: quick_settings(),
            cancel: Some(CancelAt::AfterChunks(2)),
            outcome: Outcome::Cancelled,
            stream: Some(StreamResult::Cancelled),
            chunks: (2, 2),
            at_least: Duration::ZERO,
            server_ends: true,
        },
        Case {
            name: "cancel after 350 ms of a slow stream",
            script: vec![
                Act::Read,
                w(SSE_HEAD),
                w(&oai("a")),
                Act::Repeat(oai("slow").into_bytes(), Duration::from_millis(100)),
            ],
            settings: quick_settings(),
            cancel: Some(CancelAt::AfterTime(Duration::from_millis(350))),
            outcome: Outcome::Cancelled,
            stream: Some(StreamResult::Cancelled),
            chunks: (1, u64::MAX),
            at_least: Duration::from_millis(350),
            server_ends: true,
        },
    ];
    for c in cases {
        let server = Server::start(vec![c.script]).await;
        let h = Harness::new(c.settings);
        let r = h.run(&openai_spec(&server), c.cancel).await;
        assert_eq!(r.outcome, c.outcome, "{}", c.name);
        h.assert_only(c.outcome);
        h.assert_stream(c.stream);
        let (lo, hi) = c.chunks;
        assert!(
            (lo..=hi).contains(&r.chunks),
            "{}: {} chunks",
            c.name,
            r.chunks
        );
        let counted = h.counter(&h.metrics.stream_chunks_total);
        assert!(
            (lo..=hi).contains(&counted),
            "{}: {counted} counted",
            c.name
        );
        assert!(r.duration >= c.at_least, "{}: {:?}", c.name, r.duration);
        if c.server_ends {
            server.join().await;
        } else {
            server.handle.abort();
        }
    }
}

#[tokio::test]
async fn a_unary_request_is_abandoned_at_its_cancel_time_and_its_connection_closed() {
    // The server reads the request and answers nothing: the cancel 300 ms after the send
    // ends the request, and the server sees the connection close.
    let server = Server::start(vec![vec![Act::Read, Act::AwaitClose]]).await;
    let h = Harness::quick();
    let spec = openai_spec(&server).with_stream(false);
    let r = h
        .run(&spec, Some(CancelAt::AfterTime(Duration::from_millis(300))))
        .await;
    assert_eq!(r.outcome, Outcome::Cancelled);
    h.assert_only(Outcome::Cancelled);
    h.assert_stream(None);
    assert!(r.duration >= Duration::from_millis(300), "{:?}", r.duration);
    assert_eq!((r.bytes, r.output_tokens), (0, 0));
    assert_eq!(server.join().await, 1);
}

#[tokio::test]
async fn dropping_execute_still_decrements_streams_active() {
    let server = Server::start(vec![vec![Act::Read, w(SSE_HEAD), w(&oai("a")), Act::Hang]]).await;
    let h = std::sync::Arc::new(Harness::quick());
    let task = spawn_run(&h, openai_spec(&server));
    wait_until(|| h.active() == 1, "stream never opened").await;
    assert_eq!(h.open(), 1, "the open-stream signal counts the open stream");
    task.abort();
    assert!(timeout(T, task).await.expect("abort").is_err());
    assert_eq!(h.active(), 0);
    assert_eq!(h.open(), 0);
    server.handle.abort();
}

#[tokio::test]
async fn keep_alive_connection_is_reused_after_a_complete_stream() {
    let one = vec![
        Act::Read,
        w(SSE_HEAD_CHUNKED),
        chunked(ROLE),
        chunked(&oai("x")),
        chunked(DONE),
        Act::Sleep(Duration::from_millis(20)),
        w("0\r\n\r\n"),
    ];
    // Both requests must arrive on the first connection; a second one would never be served.
    let script = [one.clone(), one].concat();
    let server = Server::start(vec![script]).await;
    let h = Harness::quick();
    let spec = openai_spec(&server);
    for _ in 0..2 {
        assert_eq!(h.run(&spec, None).await.outcome, Outcome::Ok);
    }
    assert_eq!(h.requests(Outcome::Ok), 2);
    assert_eq!(h.finished(StreamResult::Completed), 2);
    drop(h);
    assert_eq!(server.join().await, 1);
}

#[tokio::test]
async fn non_stream_ok_oversize_and_invalid_json() {
    let ok =
        r#"{"id":"c","choices":[{"message":{"content":"hi"}}],"usage":{"completion_tokens":11}}"#;
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(4096));
    let cases = [
        (ok.to_string(), Outcome::Ok),
        (big, Outcome::ProtocolError),
        ("<html>502</html>".to_string(), Outcome::ProtocolError),
    ];
    for (body, outcome) in cases {
        let server = Server::start(vec![vec![
            Act::Read,
            response("200 OK", "application/json", &body),
        ]])
        .await;
        let h = Harness::new(ClientSettings {
            max_response_bytes: 1024,
            ..ClientSettings::default()
        });
        let spec = openai_spec(&server).with_stream(false);
        let r = h.run(&spec, None).await;
        assert_eq!(r.outcome, outcome, "{body:.40}");
        h.assert_only(outcome);
        h.assert_stream(None);
        assert_eq!(r.ttft, None);
        if outcome == Outcome::Ok {
            assert_eq!(r.output_tokens, 11);
            assert_eq!(r.bytes, body.len() as u64);
        }
        server.join().await;
    }
}

#[test]
fn request_spec_headers() {
    let url = reqwest::Url::parse("http://127.0.0.1:1/v1/messages").expect("url");
    let extra = [
        ("X-Tenant".to_string(), "blue".to_string()),
        ("api-key".to_string(), "azure-secret".to_string()),
    ];
    let s = RequestSpec::new(ApiKind::AnthropicMessages, url.clone(), Some("k1"), &extra)
        .expect("spec");
    assert_eq!(s.headers["x-api-key"], "k1");
    assert!(s.headers["x-api-key"].is_sensitive());
    assert!(s.headers["api-key"].is_sensitive());
    assert_eq!(s.headers["anthropic-version"], ANTHROPIC_VERSION);
    assert_eq!(s.headers["x-tenant"], "blue");
    assert_eq!(s.headers["content-type"], "application/json");
    assert!(s.headers.get("authorization").is_none());
    assert!(
        !format!("{:?}", s.headers).contains("k1"),
        "secrets not printed"
    );

    let o = RequestSpec::new(ApiKind::OpenAiChat, url.clone(), Some("sk"), &[]).expect("spec");
    assert_eq!(o.headers["authorization"], "Bearer sk");
    assert!(o.headers.get("anthropic-version").is_none());
    let none = RequestSpec::new(ApiKind::OpenAiChat, url.clone(), None, &[]).expect("spec");
    assert!(none.headers.get("authorization").is_none());

    let bad = [("bad header".to_string(), "v".to_string())];
    let err = RequestSpec::new(ApiKind::OpenAiChat, url.clone(), None, &bad).unwrap_err();
    assert!(err.to_string().contains("bad header"), "{err}");
    let bad = [("x-ok".to_string(), "line\nbreak".to_string())];
    assert!(RequestSpec::new(ApiKind::OpenAiChat, url, None, &bad).is_err());
}

#[test]
fn api_kind_names_and_paths() {
    assert_eq!(ApiKind::OpenAiChat.as_str(), "openai");
    assert_eq!(ApiKind::AnthropicMessages.as_str(), "anthropic");
    assert_eq!(ApiKind::OpenAiChat.default_path(), "/v1/chat/completions");
    assert_eq!(ApiKind::AnthropicMessages.default_path(), "/v1/messages");
    assert_eq!(
        ApiKind::from_name("anthropic"),
        Some(ApiKind::AnthropicMessages)
    );
    assert_eq!(ApiKind::from_name("gemini"), None);
}

#[test]
fn ca_file_errors_name_the_path() {
    let dir = std::env::temp_dir().join(format!("soakd-client-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let missing = dir.join("missing.pem");
    let s = |p: &std::path::Path| ClientSettings {
        tls: TlsSettings {
            ca_file: Some(p.to_path_buf()),
            insecure_skip_verify: false,
        },
        ..ClientSettings::default()
    };
    let err = build_http_client(&s(&missing)).unwrap_err();
    assert!(matches!(err, ClientError::CaFileRead { .. }), "{err}");
    assert!(err.to_string().contains("missing.pem"), "{err}");
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").expect("write");
    let err = build_http_client(&s(&junk)).unwrap_err();
    assert!(matches!(err, ClientError::CaFileInvalid { .. }), "{err}");
    assert!(err.to_string().contains("junk.pem"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
    // The other knobs build.
    for http in [
        HttpVersion::Auto,
        HttpVersion::Http1Only,
        HttpVersion::Http2PriorKnowledge,
    ] {
        let s = ClientSettings {
            http,
            tls: TlsSettings {
                ca_file: None,
                insecure_skip_verify: true,
            },
            ..ClientSettings::default()
        };
        build_http_client(&s).expect("client builds");
    }
}

fn spec_for(server: &Server, api: ApiKind) -> RequestSpec {
    RequestSpec::new(api, server.url(api.default_path()), Some("k"), &[])
        .expect("spec")
        .with_scenario("t")
}

fn reasoning(text: &str) -> String {
    format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"reasoning_content\":\"{text}\"}}}}]}}\n\n")
}

#[tokio::test]
async fn ttft_on_text_waits_for_the_first_text_delta() {
    let delay = Duration::from_millis(250);
    let script = || {
        vec![
            Act::Read,
            w(SSE_HEAD),
            w(ROLE),
            w(&reasoning("think")),
            Act::Sleep(delay),
            w(&oai("answer")),
            w(DONE),
        ]
    };
    let server = Server::start(vec![script(), script()]).await;
    // Any delta: the reasoning chunk is the first token; the text was sent `delay` later (half
    // of it is slack for a client that read the reasoning chunk late on a busy machine).
    let h = Harness::quick();
    let r = h.run(&spec_for(&server, ApiKind::OpenAiChat), None).await;
    assert_eq!(r.outcome, Outcome::Ok);
    let ttft = r.ttft.expect("ttft");
    assert!(r.duration >= ttft + delay / 2, "{r:?}");
    assert_eq!((r.chunks, h.gap_count(), h.ttft_count()), (2, 1, 1));
    // Text only: the reasoning chunk still counts as a chunk, but not as the first token.
    let h = Harness::quick();
    let spec = spec_for(&server, ApiKind::OpenAiChat).with_ttft_on(TtftOn::Text);
    let r = h.run(&spec, None).await;
    assert_eq!(r.outcome, Outcome::Ok);
    assert!(r.ttft.expect("ttft") >= delay, "{r:?}");
    assert_eq!((r.chunks, h.gap_count(), h.ttft_count()), (2, 1, 1));
    server.join().await;
}

#[tokio::test]
async fn a_tool_call_only_stream_has_no_text_ttft() {
    let args = |a: &str| {
        format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"tool_calls\":[{{\"index\":0,\"function\":{{\"arguments\":\"{a}\"}}}}]}}}}]}}\n\n")
    };
    let script = || {
        vec![
            Act::Read,
            w(SSE_HEAD),
            w(ROLE),
            w(&args("{")),
            w(&args("}")),
            w(DONE),
        ]
    };
    let server = Server::start(vec![script(), script()]).await;
    let h = Harness::quick();
    let spec = spec_for(&server, ApiKind::OpenAiChat).with_ttft_on(TtftOn::Text);
    let r = h.run(&spec, None).await;
    assert_eq!(r.outcome, Outcome::Ok);
    h.assert_only(Outcome::Ok);
    assert_eq!(r.ttft, None);
    assert_eq!((r.chunks, h.ttft_count(), h.gap_count()), (2, 0, 1));
    assert_eq!(h.stats.percentiles(Series::Ttft).count, 0);
    let h = Harness::quick();
    let r = h.run(&spec_for(&server, ApiKind::OpenAiChat), None).await;
    assert!(r.ttft.is_some());
    assert_eq!(h.ttft_count(), 1);
    server.join().await;
}

fn responses_event(kind: &str, rest: &str) -> String {
    format!("event: {kind}\ndata: {{\"type\":\"{kind}\",{rest}}}\n\n")
}

#[tokio::test]
async fn responses_stream_ok_and_an_error_before_failed_is_one_outcome() {
    let created = responses_event(
        "response.created",
        r#""response":{"id":"r","status":"in_progress","output":[]}"#,
    );
    let delta = responses_event("response.output_text.delta", r#""delta":"hey""#);
    let completed = responses_event(
        "response.completed",
        r#""response":{"id":"r","status":"completed","output":[],"usage":{"output_tokens":11}}"#,
    );
    let error = responses_event("error", r#""code":"server_error","message":"x""#);
    let failed = responses_event(
        "response.failed",
        r#""response":{"status":"failed","error":{"code":"server_error","message":"x"}}"#,
    );
    let server = Server::start(vec![
        vec![
            Act::Read,
            w(SSE_HEAD),
            w(&created),
            w(&delta),
            w(&delta),
            w(&completed),
            w(DONE),
        ],
        vec![
            Act::Read,
            w(SSE_HEAD),
            w(&created),
            w(&delta),
            w(&error),
            w(&failed),
        ],
    ])
    .await;
    let h = Harness::quick();
    let spec = spec_for(&server, ApiKind::OpenAiResponses);
    let r = h.run(&spec, None).await;
    assert_eq!(r.outcome, Outcome::Ok);
    h.assert_only(Outcome::Ok);
    h.assert_stream(Some(StreamResult::Completed));
    assert_eq!((r.chunks, r.output_tokens, r.unknown_events), (2, 11, 0));
    let h = Harness::quick();
    let r = h.run(&spec, None).await;
    assert_eq!(r.outcome, Outcome::StreamErrorEvent);
    h.assert_only(Outcome::StreamErrorEvent);
    h.assert_stream(Some(StreamResult::ErrorEvent));
    // The failed event after the error was drained, not read as a second outcome.
    assert_eq!(
        r.bytes,
        (created.len() + delta.len() + error.len() + failed.len()) as u64
    );
    server.join().await;
}

#[tokio::test]
async fn embeddings_answers_must_hold_one_embedding_per_input() {
    let two = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]},{"object":"embedding","index":1,"embedding":[0.3,0.4]}],"usage":{"prompt_tokens":4,"total_tokens":4}}"#;
    for (inputs, outcome) in [(2, Outcome::Ok), (3, Outcome::ProtocolError)] {
        let server = Server::start(vec![vec![
            Act::Read,
            response("200 OK", "application/json", two),
        ]])
        .await;
        let h = Harness::quick();
        let spec = spec_for(&server, ApiKind::OpenAiEmbeddings).with_inputs(inputs);
        assert!(!spec.stream, "embeddings never stream");
        let r = h.run(&spec, None).await;
        assert_eq!(r.outcome, outcome, "{inputs} inputs");
        h.assert_only(outcome);
        h.assert_stream(None);
        assert_eq!((r.ttft, r.output_tokens), (None, 0));
        server.join().await;
    }
}

#[test]
fn every_api_kind_has_a_name_a_path_and_openai_auth_where_due() {
    let url = reqwest::Url::parse("http://127.0.0.1:1/x").expect("url");
    for api in ApiKind::ALL {
        assert_eq!(ApiKind::from_name(api.as_str()), Some(api));
        assert!(api.default_path().starts_with("/v1/"));
        let s = RequestSpec::new(api, url.clone(), Some("sk"), &[]).expect("spec");
        assert_eq!(s.stream, api.streams(), "{api}");
        let anthropic = api == ApiKind::AnthropicMessages;
        assert_eq!(s.headers.contains_key("x-api-key"), anthropic, "{api}");
        assert_eq!(s.headers.contains_key("authorization"), !anthropic, "{api}");
    }
    assert_eq!(
        ApiKind::from_name("openai-responses").map(ApiKind::default_path),
        Some("/v1/responses")
    );
    assert!(!ApiKind::OpenAiEmbeddings.streams());
    assert!(!ApiKind::OpenAiEmbeddings.has_text_deltas());
}

/// Every exchange test above again, on the HTTP/1.1 fast path.
mod fast {
    macro_rules! on_the_fast_path {
        ($($name:ident),* $(,)?) => {
            $(
                #[test]
                fn $name() {
                    super::FAST.with(|f| f.set(true));
                    super::$name();
                }
            )*
        };
    }

    on_the_fast_path!(
        openai_stream_ok_with_delayed_first_token_and_usage,
        anthropic_stream_ok_takes_the_last_cumulative_usage,
        stream_failures_are_classified_and_recorded_once,
        an_abort_is_recorded_once_as_cancelled_with_what_had_arrived,
        status_429_and_503_are_classified_and_their_bodies_drained,
        an_error_status_body_reaches_the_warning_redacted_and_bounded,
        refused_port_is_a_connect_error,
        a_request_ends_at_its_timeout_or_cancel_point,
        a_unary_request_is_abandoned_at_its_cancel_time_and_its_connection_closed,
        dropping_execute_still_decrements_streams_active,
        keep_alive_connection_is_reused_after_a_complete_stream,
        non_stream_ok_oversize_and_invalid_json,
        ttft_on_text_waits_for_the_first_text_delta,
        a_tool_call_only_stream_has_no_text_ttft,
        responses_stream_ok_and_an_error_before_failed_is_one_outcome,
        embeddings_answers_must_hold_one_embedding_per_input,
    );
}
