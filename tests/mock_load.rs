//! Load check of the mock (ignored by default; run it in release):
//!
//! ```text
//! cargo test --release --test mock_load -- --ignored --nocapture
//! ```
//!
//! The mock serves in this process; the clients run in a child process (this same test binary,
//! re-executed with `SOAKD_MOCK_LOAD_URL` set) so each side has its own open-files limit and
//! 10,000 concurrent streams fit. It asserts correctness under load (every stream complete,
//! every answer 200, nothing left active, no retained growth from a second identical round)
//! and prints throughput numbers; it asserts no speed.

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use soakd::mock::{self, MockArgs};
use tokio_util::sync::CancellationToken;

const CHILD_ENV: &str = "SOAKD_MOCK_LOAD_URL";
const STREAMS: usize = 10_000;
const STREAM_CHUNKS: u32 = 5;
const PLAIN_REQUESTS: u64 = 100_000;
const PLAIN_CONNS: usize = 64;

/// Resident bytes after asking glibc to return its free heap pages, so RSS tracks live memory
/// rather than what the allocator keeps cached after 10,000 connections closed.
fn rss_bytes() -> u64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
    soakd::monitor::source::read_local(std::process::id())
        .expect("/proc/self (Linux)")
        .rss
        .expect("VmRSS") as u64
}

fn raise_nofile() {
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

/// Client side: `plain` runs PLAIN_REQUESTS non-stream requests over PLAIN_CONNS keep-alive
/// connections; `streams` opens STREAMS concurrent streams. Prints one result line.
async fn client(base: String, mode: String) {
    raise_nofile();
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(usize::MAX)
        .build()
        .unwrap();
    let ok = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    if mode == "plain" {
        let next = Arc::new(AtomicU64::new(0));
        for _ in 0..PLAIN_CONNS {
            let (client, base, ok, bad, next) = (
                client.clone(),
                base.clone(),
                ok.clone(),
                bad.clone(),
                next.clone(),
            );
            set.spawn(async move {
                let body = r#"{"model":"m","messages":[{"role":"user","content":"hello"}]}"#;
                while next.fetch_add(1, Ordering::Relaxed) < PLAIN_REQUESTS {
                    let r = client
                        .post(format!("{base}/v1/chat/completions"))
                        .body(body)
                        .send()
                        .await;
                    let good = match r {
                        Ok(r) if r.status() == 200 => r
                            .bytes()
                            .await
                            .is_ok_and(|b| b.ends_with(b"}}") && b.starts_with(b"{\"id\"")),
                        _ => false,
                    };
                    if good { &ok } else { &bad }.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    } else {
        for i in 0..STREAMS {
            let (client, base, ok, bad) = (client.clone(), base.clone(), ok.clone(), bad.clone());
            set.spawn(async move {
                let path = if i % 2 == 0 { "chat/completions" } else { "messages" };
                let body = r#"{"model":"m","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hello"}]}"#;
                let r = client.post(format!("{base}/v1/{path}")).body(body).send().await;
                let good = match r {
                    Ok(r) if r.status() == 200 => r.bytes().await.is_ok_and(|b| {
                        let frames = b.windows(2).filter(|w| w == b"\n\n").count();
                        let want = if i % 2 == 0 { 1 + STREAM_CHUNKS + 2 } else { 3 + STREAM_CHUNKS + 3 };
                        frames == want as usize
                            && (b.ends_with(b"data: [DONE]\n\n")
                                || b.ends_with(b"data: {\"type\":\"message_stop\"}\n\n"))
                    }),
                    _ => false,
                };
                if good { &ok } else { &bad }.fetch_add(1, Ordering::Relaxed);
            });
        }
    }
    while set.join_next().await.is_some() {}
    let secs = started.elapsed().as_secs_f64();
    println!(
        "LOAD-RESULT {mode} ok={} bad={} secs={secs:.3}",
        ok.load(Ordering::Relaxed),
        bad.load(Ordering::Relaxed)
    );
}

/// Runs the client child for `mode` and returns (ok, bad, secs).
async fn run_child(base: &str, mode: &str) -> (u64, u64, f64) {
    let exe = std::env::current_exe().unwrap();
    let child = tokio::process::Command::new(exe)
        .args(["--ignored", "--exact", "mock_load", "--nocapture"])
        .env(CHILD_ENV, base)
        .env("SOAKD_MOCK_LOAD_MODE", mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the client child");
    let out = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .expect("client child finishes in time")
        .expect("client child output");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("LOAD-RESULT"))
        .unwrap_or_else(|| panic!("no result from the client child:\n{text}"));
    let field = |k: &str| -> f64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k)?.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {line}"))
    };
    (field("ok=") as u64, field("bad=") as u64, field("secs="))
}

async fn metric(base: &str, name: &str) -> f64 {
    let c = reqwest::Client::builder().no_proxy().build().unwrap();
    let text = tokio::time::timeout(Duration::from_secs(10), async {
        c.get(format!("{base}/metrics")).send().await?.text().await
    })
    .await
    .unwrap()
    .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load check; run in release with --ignored --nocapture"]
async fn mock_load() {
    if let Ok(base) = std::env::var(CHILD_ENV) {
        let mode = std::env::var("SOAKD_MOCK_LOAD_MODE").expect("SOAKD_MOCK_LOAD_MODE");
        client(base, mode).await;
        return;
    }
    raise_nofile();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let args = MockArgs {
        ttft: Duration::from_millis(500),
        chunk_delay: Duration::from_millis(500),
        chunks: STREAM_CHUNKS,
        response_delay: Some(Duration::ZERO),
        ..Default::default()
    };
    let server = tokio::spawn(mock::serve(args, listener, shutdown.clone()));

    let rss0 = rss_bytes();
    let (ok, bad, secs) = run_child(&base, "plain").await;
    let rss_plain = rss_bytes();
    println!(
        "non-stream: {ok} ok, {bad} bad in {secs:.2}s = {:.0} req/s ({PLAIN_CONNS} conns, client on the same 2 cores); RSS {} -> {} MiB",
        ok as f64 / secs,
        rss0 >> 20,
        rss_plain >> 20
    );
    assert_eq!((ok, bad), (PLAIN_REQUESTS, 0));

    let mut rss_after = Vec::new();
    for round in 1..=3 {
        let (ok, bad, secs) = run_child(&base, "streams").await;
        let rss = rss_bytes();
        println!(
            "streams round {round}: {ok} ok, {bad} bad, {STREAMS} concurrent in {secs:.2}s; RSS now {} MiB",
            rss >> 20
        );
        assert_eq!((ok, bad), (STREAMS as u64, 0));
        assert_eq!(metric(&base, "soakd_mock_streams_active").await, 0.0);
        rss_after.push(rss);
    }
    // Later identical rounds retain (almost) nothing more: no per-request growth.
    assert!(
        rss_after[2] <= rss_after[0] + (16 << 20),
        "RSS grew over identical rounds: {rss_after:?}"
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
