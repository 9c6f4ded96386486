//! Tests of the HTTP/1.1 fast path's own behaviour ([`super::http1`]): what it puts on the
//! wire, connection reuse and its bound, failures mid-body, and that a cancelled stream closes
//! its connection. (Every exchange test of `tests.rs` also runs on the fast path, in its
//! `fast` module.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use super::http1::{H1Head, Http1Pool, SendFailure};
use super::*;

const T: Duration = Duration::from_secs(20);

use super::tests::quick_settings as settings;

/// A deadline the tests' requests never reach.
fn deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + T
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn pool_for(url: &url::Url, s: &ClientSettings, concurrent: usize) -> Http1Pool {
    Http1Pool::for_target_with_env(url, s, concurrent, &no_env).expect("fast path applies")
}

fn spec(addr: std::net::SocketAddr, path: &str) -> RequestSpec {
    RequestSpec::new(
        ApiKind::OpenAiChat,
        url::Url::parse(&format!("http://{addr}{path}")).expect("url"),
        Some("sk-test"),
        &[("x-extra".into(), "1".into())],
    )
    .expect("spec")
}

/// Reads one request (head and content-length body) and returns its head, lowercased; `None`
/// when the peer closed first.
async fn read_head(sock: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().expect("content-length"));
    while buf.len() < end + len {
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    Some(head)
}

const OK_JSON: &str = r#"{"choices":[{"message":{"content":"hi"}}]}"#;

fn ok_response() -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{OK_JSON}",
        OK_JSON.len()
    )
}

/// A keep-alive server answering every request on every connection with `OK_JSON` after
/// `delay`; counts accepted connections. Stops accepting after `max_conns`.
async fn counting_server(
    delay: Duration,
    max_conns: usize,
) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        for _ in 0..max_conns {
            let Ok(Ok((mut sock, _))) = timeout(T, l.accept()).await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                for _ in 0..10_000 {
                    let Ok(Some(_)) = timeout(T, read_head(&mut sock)).await else {
                        return;
                    };
                    tokio::time::sleep(delay).await;
                    if sock.write_all(ok_response().as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

async fn send_ok(pool: &Http1Pool, head: &H1Head) -> u64 {
    let mut resp = timeout(
        T,
        pool.send(head, Bytes::from_static(b"{}"), None, deadline()),
    )
    .await
    .expect("send did not end")
    .expect("send");
    assert_eq!(resp.status(), 200);
    let mut n = 0;
    while let Some(c) = resp.chunk(deadline()).await.expect("body").expect("chunk") {
        n += c.len() as u64;
    }
    n
}

#[test]
fn the_fast_path_applies_only_to_plain_http_without_proxies_or_http2() {
    let s = settings();
    let http = url::Url::parse("http://127.0.0.1:8080/x").unwrap();
    let https = url::Url::parse("https://127.0.0.1:8443/x").unwrap();
    let none = |_: &str| None;
    assert!(Http1Pool::for_target_with_env(&http, &s, 10, &none).is_some());
    assert!(Http1Pool::for_target_with_env(&https, &s, 10, &none).is_none());
    let h2 = ClientSettings {
        http: HttpVersion::Http2PriorKnowledge,
        ..settings()
    };
    assert!(Http1Pool::for_target_with_env(&http, &h2, 10, &none).is_none());
    let h1 = ClientSettings {
        http: HttpVersion::Http1Only,
        ..settings()
    };
    assert!(Http1Pool::for_target_with_env(&http, &h1, 10, &none).is_some());
    for var in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        let env = |k: &str| (k == var).then(|| "http://proxy:3128".to_string());
        assert!(
            Http1Pool::for_target_with_env(&http, &s, 10, &env).is_none(),
            "{var}"
        );
        let empty = |k: &str| (k == var).then(String::new);
        assert!(
            Http1Pool::for_target_with_env(&http, &s, 10, &empty).is_some(),
            "{var} empty"
        );
    }
    // HTTPS_PROXY does not apply to an http:// target.
    let https_proxy = |k: &str| (k == "HTTPS_PROXY").then(|| "http://p:1".to_string());
    assert!(Http1Pool::for_target_with_env(&http, &s, 10, &https_proxy).is_some());
    let hatch = |k: &str| (k == http1::CLIENT_ENV).then(|| "reqwest".to_string());
    assert!(Http1Pool::for_target_with_env(&http, &s, 10, &hatch).is_none());
    let other = |k: &str| (k == http1::CLIENT_ENV).then(|| "hyper".to_string());
    assert!(Http1Pool::for_target_with_env(&http, &s, 10, &other).is_some());
    // The idle cap: the smaller of pool_max_idle_per_host and the run's concurrency.
    assert_eq!(pool_for(&http, &s, 10).cap(), 10);
    let small = ClientSettings {
        pool_max_idle_per_host: 3,
        ..settings()
    };
    assert_eq!(pool_for(&http, &small, 10).cap(), 3);
}

#[tokio::test]
async fn the_request_head_carries_host_path_query_auth_and_the_marker() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (mut sock, _) = l.accept().await.expect("accept");
        let head = read_head(&mut sock).await.expect("request");
        sock.write_all(ok_response().as_bytes())
            .await
            .expect("write");
        head
    });
    let s = settings();
    let spec = spec(addr, "/gw/v1/chat/completions?tenant=a");
    let pool = pool_for(&spec.url, &s, 4);
    let head = H1Head::new(&spec, "soakd/test").expect("head");
    let mut resp = timeout(
        T,
        pool.send(
            &head,
            Bytes::from_static(b"{\"a\":1}"),
            Some(b"00000000000000ff"),
            deadline(),
        ),
    )
    .await
    .expect("send")
    .expect("ok");
    while resp.chunk(deadline()).await.unwrap().unwrap().is_some() {}
    let got = timeout(T, server).await.unwrap().unwrap();
    assert!(
        got.starts_with("post /gw/v1/chat/completions?tenant=a http/1.1\r\n"),
        "{got}"
    );
    for line in [
        format!("host: {addr}\r\n"),
        "authorization: bearer sk-test\r\n".into(),
        "content-type: application/json\r\n".into(),
        "user-agent: soakd/test\r\n".into(),
        "accept: */*\r\n".into(),
        "x-extra: 1\r\n".into(),
        "x-soakd-request-id: 00000000000000ff\r\n".into(),
        "content-length: 7\r\n".into(),
    ] {
        assert!(got.contains(&line), "missing {line:?} in {got}");
    }
}

#[tokio::test]
async fn connections_are_reused_and_the_idle_pool_is_bounded() {
    let (addr, accepted) = counting_server(Duration::from_millis(20), 64).await;
    let s = ClientSettings {
        pool_max_idle_per_host: 3,
        ..settings()
    };
    let spec = spec(addr, "/v1/chat/completions");
    let pool = Arc::new(pool_for(&spec.url, &s, 8));
    let head = Arc::new(H1Head::new(&spec, "soakd/test").expect("head"));
    // 40 requests one after the other: one connection.
    for _ in 0..40 {
        assert_eq!(send_ok(&pool, &head).await, OK_JSON.len() as u64);
    }
    assert_eq!(pool.connections_opened(), 1);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(pool.idle(), 1);
    // 8 at once, 5 rounds: at most 8 connections open, at most 3 kept idle between rounds.
    for _ in 0..5 {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (pool, head) = (pool.clone(), head.clone());
                tokio::spawn(async move { send_ok(&pool, &head).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(timeout(T, t).await.unwrap().unwrap(), OK_JSON.len() as u64);
        }
        assert!(pool.idle() <= 3, "idle {} over the cap", pool.idle());
    }
    assert_eq!(pool.idle(), 3);
    let opened = pool.connections_opened();
    assert_eq!(accepted.load(Ordering::SeqCst) as u64, opened);
    // Each round reuses the 3 kept and opens 5: 1 + 7 in the first round, 5 in each of 4.
    assert!(opened <= 1 + 7 + 4 * 5, "{opened} connections");
    assert!(opened >= 8, "{opened} connections");
}

#[tokio::test]
async fn no_idle_connection_is_kept_with_a_cap_of_zero() {
    let (addr, accepted) = counting_server(Duration::ZERO, 16).await;
    let s = ClientSettings {
        pool_max_idle_per_host: 0,
        ..settings()
    };
    let spec = spec(addr, "/v1/chat/completions");
    let pool = pool_for(&spec.url, &s, 8);
    let head = H1Head::new(&spec, "soakd/test").expect("head");
    for _ in 0..3 {
        send_ok(&pool, &head).await;
        assert_eq!(pool.idle(), 0);
    }
    assert_eq!(pool.connections_opened(), 3);
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_connection_the_server_closed_while_idle_is_replaced() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        for _ in 0..2 {
            let (mut sock, _) = l.accept().await.expect("accept");
            read_head(&mut sock).await.expect("request");
            sock.write_all(ok_response().as_bytes())
                .await
                .expect("write");
            // Keep-alive by the head, then closed while idle in the client's pool.
            let _ = sock.shutdown().await;
        }
    });
    let s = settings();
    let spec = spec(addr, "/v1/chat/completions");
    let pool = pool_for(&spec.url, &s, 4);
    let head = H1Head::new(&spec, "soakd/test").expect("head");
    send_ok(&pool, &head).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    send_ok(&pool, &head).await;
    assert_eq!(pool.connections_opened(), 2);
    timeout(T, server).await.unwrap().unwrap();
}

/// A response that says `connection: close` (HTTP/1.1), or an HTTP/1.0 one without
/// `keep-alive`, ends its connection's use even while the server keeps the socket open: the
/// next request goes on a new connection (the server would never answer a second request).
#[tokio::test]
async fn a_response_that_ends_keep_alive_is_not_reused_while_the_socket_stays_open() {
    for (name, head) in [
        ("1.1 close", "HTTP/1.1 200 OK\r\nconnection: close"),
        ("1.0", "HTTP/1.0 200 OK"),
    ] {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let answer = format!(
            "{head}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{OK_JSON}",
            OK_JSON.len()
        );
        let server = tokio::spawn(async move {
            let mut open = Vec::new();
            for _ in 0..2 {
                let (mut sock, _) = timeout(T, l.accept()).await.unwrap().expect("accept");
                read_head(&mut sock).await.expect("request");
                sock.write_all(answer.as_bytes()).await.expect("write");
                // One answer per connection, and the socket left open.
                open.push(sock);
            }
            open.len()
        });
        let s = settings();
        let spec = spec(addr, "/v1/chat/completions");
        let pool = pool_for(&spec.url, &s, 4);
        let h = H1Head::new(&spec, "soakd/test").expect("head");
        assert_eq!(send_ok(&pool, &h).await, OK_JSON.len() as u64, "{name}");
        assert_eq!(pool.idle(), 0, "{name}: the connection was kept");
        assert_eq!(send_ok(&pool, &h).await, OK_JSON.len() as u64, "{name}");
        assert_eq!(pool.connections_opened(), 2, "{name}");
        assert_eq!(timeout(T, server).await.unwrap().unwrap(), 2, "{name}");
    }
}

#[tokio::test]
async fn a_refused_connect_names_the_reason() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let s = settings();
    let spec = spec(addr, "/v1/chat/completions");
    let pool = pool_for(&spec.url, &s, 4);
    let head = H1Head::new(&spec, "soakd/test").expect("head");
    let err = timeout(T, pool.send(&head, Bytes::new(), None, deadline()))
        .await
        .expect("send did not end")
        .err()
        .expect("refused");
    assert_eq!(
        err,
        SendFailure {
            outcome: Outcome::ConnectError,
            detail: "connect failed: connection refused"
        }
    );
}

/// A server for one streamed request: sends `prefix` after the request, then waits for the
/// client to close; returns whether the client closed the connection (EOF or reset).
async fn watching_server(prefix: String) -> (std::net::SocketAddr, tokio::task::JoinHandle<bool>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let h = tokio::spawn(async move {
        let (mut sock, _) = l.accept().await.expect("accept");
        read_head(&mut sock).await.expect("request");
        sock.write_all(prefix.as_bytes()).await.expect("write");
        let mut b = [0u8; 64];
        matches!(
            timeout(Duration::from_secs(10), sock.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    });
    (addr, h)
}

fn exchange<'a>(
    pool: &'a Http1Pool,
    head: &'a H1Head,
    spec: &'a RequestSpec,
    client: &'a reqwest::Client,
    settings: &'a ClientSettings,
    metrics: &'a ScenarioMetrics,
) -> Exchange<'a> {
    Exchange {
        client,
        fast: Some((pool, head)),
        spec,
        settings,
        metrics,
        open_streams: None,
        tracker: None,
    }
}

/// One request of a fresh chat scenario to `addr` on the fast path with `cancel`; its report
/// and the connections left idle in its pool afterwards.
async fn execute_once(
    addr: std::net::SocketAddr,
    cancel: Option<CancelAt>,
) -> (RequestReport, usize) {
    let s = settings();
    let metrics = crate::metrics::Metrics::new("test", "0").expect("metrics");
    let sm = ScenarioMetrics::new(
        &metrics,
        "t",
        std::sync::Arc::new(crate::stats::Stats::new()),
    );
    let spec = spec(addr, "/v1/chat/completions").with_scenario("t");
    let pool = pool_for(&spec.url, &s, 4);
    let head = H1Head::new(&spec, "soakd/test").expect("head");
    let client = build_http_client(&s).expect("client");
    let ex = exchange(&pool, &head, &spec, &client, &s, &sm);
    let abort = tokio_util::sync::CancellationToken::new();
    let r = timeout(
        T,
        ex.execute(
            Bytes::from_static(b"{}"),
            tokio::time::Instant::now(),
            crate::plan::Phase::Steady,
            cancel,
            &abort,
            None,
        ),
    )
    .await
    .expect("execute");
    (r, pool.idle())
}

#[tokio::test]
async fn a_cancelled_stream_closes_its_connection_and_failures_mid_body_are_classified() {
    let sse_chunked =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
    let delta = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n";
    let frame = |s: &str| format!("{:x}\r\n{s}\r\n", s.len());
    let cases = [
        (
            "cancelled after one chunk",
            format!("{sse_chunked}{}{}", frame(delta), frame(delta)),
            Some(CancelAt::AfterChunks(1)),
            Outcome::Cancelled,
        ),
        (
            // Malformed framing: a protocol error, as with reqwest.
            "malformed chunk size",
            format!("{sse_chunked}{}zz\r\n", frame(delta)),
            None,
            Outcome::ProtocolError,
        ),
    ];
    for (name, prefix, cancel, outcome) in cases {
        let (addr, server) = watching_server(prefix).await;
        let (r, idle) = execute_once(addr, cancel).await;
        assert_eq!(r.outcome, outcome, "{name}");
        assert_eq!(r.chunks, 1, "{name}");
        assert_eq!(idle, 0, "{name}: the connection is not kept");
        assert!(
            timeout(T, server).await.unwrap().unwrap(),
            "{name}: the connection was not closed"
        );
    }
}

#[tokio::test]
async fn a_body_cut_short_of_its_length_is_truncated_and_not_reused() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let delta = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n";
    let server = tokio::spawn(async move {
        let (mut sock, _) = l.accept().await.expect("accept");
        read_head(&mut sock).await.expect("request");
        let head =
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 4096\r\n\r\n";
        sock.write_all(format!("{head}{delta}").as_bytes())
            .await
            .expect("write");
        let _ = sock.shutdown().await;
    });
    let (r, idle) = execute_once(addr, None).await;
    assert_eq!(r.outcome, Outcome::StreamTruncated);
    assert_eq!(r.chunks, 1);
    assert_eq!(idle, 0);
    timeout(T, server).await.unwrap().unwrap();
}
