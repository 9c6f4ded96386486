//! Deadlines hold whatever the bytes do: an endless, fast, valid SSE stream and an endless
//! chunked unary body, against both clients at once, with `stream_timeout` and
//! `request_timeout` of 2 s. Every request must end as `timeout` within the timeout plus
//! [`SLACK`], a correctness bound (the deadline is checked before every read, so a request
//! overshoots by one read and one chunk's parsing; the second of slack is for a loaded 2-core
//! machine), not a speed measurement.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout, Instant};

use super::tests::Harness;
use super::*;

/// Both timeouts of the test.
const TIMEOUT: Duration = Duration::from_secs(2);
/// How far past its timeout a request may end.
const SLACK: Duration = Duration::from_secs(1);
/// Requests of each kind per client, all at once.
const EACH: usize = 3;
/// How long a server connection writes at most (the clients leave after 2 s).
const WRITE_FOR: Duration = Duration::from_secs(10);

/// An endless body block: for the stream, content events; for the unary body, chunks of one
/// JSON space each behind a size line padded with leading zeros (valid framing, a fast wire
/// and a slow body, so `max_response_bytes` is never reached within the timeout).
fn block(stream: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 * 1024);
    while out.len() < 60 * 1024 {
        if stream {
            out.extend_from_slice(
                b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n",
            );
        } else {
            out.extend_from_slice(&[b'0'; 2000]);
            out.extend_from_slice(b"1\r\n \r\n");
        }
    }
    if stream {
        // The SSE events go in one chunk per block.
        let mut framed = format!("{:x}\r\n", out.len()).into_bytes();
        framed.extend_from_slice(&out);
        framed.extend_from_slice(b"\r\n");
        return framed;
    }
    out
}

async fn read_request(sock: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap_or(0));
            while buf.len() < i + 4 + len {
                let n = sock.read(&mut tmp).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&tmp[..n]);
            }
            return Some(head);
        }
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

/// Serves `conns` connections: `/stream` gets an endless SSE stream, anything else an endless
/// chunked JSON body, each written as fast as the client reads until it leaves.
async fn endless_server(conns: usize) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        for _ in 0..conns {
            let Ok(Ok((mut sock, _))) = timeout(WRITE_FOR, l.accept()).await else {
                return;
            };
            tokio::spawn(async move {
                let Some(head) = read_request(&mut sock).await else {
                    return;
                };
                let stream = head.starts_with("post /stream");
                let (head, block) = if stream {
                    (
                        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                         transfer-encoding: chunked\r\n\r\n",
                        block(true),
                    )
                } else {
                    (
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         transfer-encoding: chunked\r\n\r\n1\r\n{\r\n",
                        block(false),
                    )
                };
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let end = Instant::now() + WRITE_FOR;
                while Instant::now() < end {
                    if sock.write_all(&block).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_fast_bodies_end_as_timeout_within_the_bound_on_both_clients() {
    let addr = endless_server(4 * EACH).await;
    let settings = ClientSettings {
        request_timeout: TIMEOUT,
        stream_timeout: TIMEOUT,
        max_response_bytes: 64 << 20,
        ..super::tests::quick_settings()
    };
    let url = |path: &str| url::Url::parse(&format!("http://{addr}{path}")).expect("url");
    let stream = RequestSpec::new(ApiKind::OpenAiChat, url("/stream"), None, &[])
        .expect("spec")
        .with_scenario("t");
    let unary = RequestSpec::new(ApiKind::OpenAiChat, url("/unary"), None, &[])
        .expect("spec")
        .with_scenario("t")
        .with_stream(false);
    let mut tasks = Vec::new();
    for fast in [true, false] {
        let h = std::sync::Arc::new(Harness::with_fast(settings.clone(), fast));
        for spec in [&stream, &unary] {
            for _ in 0..EACH {
                let (h, spec) = (h.clone(), spec.clone());
                tasks.push(tokio::spawn(async move {
                    let r = h.run(&spec, None).await;
                    (fast, spec.stream, r)
                }));
            }
        }
    }
    let mut longest = [Duration::ZERO; 2];
    for t in tasks {
        let (fast, stream, r) = timeout(TIMEOUT * 10, t)
            .await
            .expect("a request outlived its deadline by far")
            .expect("task");
        let what = format!(
            "{} {}",
            if fast { "fast path" } else { "reqwest" },
            if stream { "stream" } else { "unary" }
        );
        assert_eq!(r.outcome, Outcome::Timeout, "{what}: {r:?}");
        assert!(r.bytes > 0, "{what}: the body was flowing");
        assert!(
            r.duration >= TIMEOUT && r.duration <= TIMEOUT + SLACK,
            "{what}: ended after {:?}, not within {TIMEOUT:?} + {SLACK:?}",
            r.duration
        );
        let l = &mut longest[usize::from(fast)];
        *l = (*l).max(r.duration);
    }
    eprintln!(
        "longest request: reqwest {:?}, fast path {:?}",
        longest[0], longest[1]
    );
}
