//! The mock's leak knobs really move what `/proc` shows. The mock runs in this test process, so
//! everything is measured on `/proc/self`; the checks run one after another in a single test
//! so no other test in this binary disturbs RSS, fds or threads.

use std::time::Duration;

use soakd::mock::{self, MockArgs, MockError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(15);
const MIB: u64 = 1 << 20;

struct Mock {
    base: String,
    client: reqwest::Client,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), MockError>>,
}

async fn start(args: MockArgs) -> Mock {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(mock::serve(args, listener, shutdown.clone()));
    Mock {
        base: format!("http://{addr}"),
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        shutdown,
        task,
    }
}

impl Mock {
    /// One complete AI request (body read to the end).
    async fn request(&self, stream: bool) {
        let body = format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"stream":{stream}}}"#
        );
        let r = tokio::time::timeout(
            T,
            self.client
                .post(format!("{}/v1/chat/completions", self.base))
                .body(body)
                .send(),
        )
        .await
        .expect("in time")
        .expect("request ok");
        assert_eq!(r.status(), 200);
        tokio::time::timeout(T, r.bytes())
            .await
            .expect("in time")
            .expect("body ok");
    }

    async fn gauge(&self, name: &str) -> u64 {
        let r = tokio::time::timeout(T, self.client.get(format!("{}/metrics", self.base)).send())
            .await
            .expect("in time")
            .expect("scrape ok");
        let text = tokio::time::timeout(T, r.text()).await.unwrap().unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    }

    async fn stop(self) {
        self.shutdown.cancel();
        match tokio::time::timeout(T, self.task)
            .await
            .expect("serve returns")
        {
            Ok(r) => r.expect("clean stop"),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

/// This process's own numbers, read by the library's `/proc` reader (what the monitor uses).
fn own() -> soakd::monitor::source::Reading {
    soakd::monitor::source::read_local(std::process::id()).expect("/proc/self (Linux)")
}

fn rss_bytes() -> u64 {
    own().rss.expect("VmRSS") as u64
}

fn threads() -> u64 {
    own().threads.expect("Threads") as u64
}

/// Open fds of this process that point at /dev/null.
fn dev_null_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|p| p.as_os_str() == "/dev/null")
        .count()
}

/// Threads of this process named like the mock's leaked threads.
fn leaked_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .filter(|c| c.trim() == "soakd-mock-leak")
        .count()
}

async fn bytes_leak_moves_rss() {
    let m = start(MockArgs {
        leak_bytes_per_request: MIB,
        ttft: Duration::ZERO,
        chunk_delay: Duration::ZERO,
        ..Default::default()
    })
    .await;
    m.request(false).await; // warm up the connection and the allocator
    let before = rss_bytes();
    let k = 64;
    for i in 0..k {
        m.request(i % 2 == 0).await;
    }
    let after = rss_bytes();
    assert_eq!(m.gauge("soakd_mock_leaked_bytes").await, (k + 1) * MIB);
    let grown = after.saturating_sub(before);
    assert!(
        grown >= k * MIB * 8 / 10,
        "RSS grew {grown} bytes for {} leaked",
        k * MIB
    );
    m.stop().await;
}

async fn fd_leak_moves_fd_count() {
    let m = start(MockArgs {
        leak_fd_every: Some(2),
        ttft: Duration::ZERO,
        chunk_delay: Duration::ZERO,
        ..Default::default()
    })
    .await;
    let before = dev_null_fds();
    for _ in 0..40 {
        m.request(false).await;
    }
    assert_eq!(m.gauge("soakd_mock_leaked_fds").await, 20);
    assert_eq!(dev_null_fds() - before, 20);
    m.stop().await;
    // The leaked files belong to the mock's state and close with it.
    assert_eq!(dev_null_fds(), before);
}

async fn thread_leak_moves_thread_count() {
    let m = start(MockArgs {
        leak_thread_every: Some(3),
        ttft: Duration::ZERO,
        chunk_delay: Duration::ZERO,
        ..Default::default()
    })
    .await;
    let before = leaked_threads();
    let threads_before = threads();
    for _ in 0..5 {
        m.request(false).await; // non-stream requests leak no threads
    }
    for _ in 0..30 {
        m.request(true).await;
    }
    assert_eq!(m.gauge("soakd_mock_leaked_threads").await, 10);
    // A new thread names itself once it runs, so the last one can still be unnamed right after
    // the gauge moved: wait (bounded) for its name.
    let named = tokio::time::timeout(T, async {
        while leaked_threads() - before < 10 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        named.is_ok(),
        "{} leaked threads named",
        leaked_threads() - before
    );
    assert_eq!(leaked_threads() - before, 10);
    assert!(threads() >= threads_before + 10);
    m.stop().await;
}

async fn sawtooth_grows_and_returns_memory() {
    let total = 32 * MIB;
    let m = start(MockArgs {
        sawtooth_bytes: Some(total),
        sawtooth_period: Some(Duration::from_millis(3300)),
        ..Default::default()
    })
    .await;
    // Sample (RSS, gauge, RSS). A full gauge means at the first RSS read at least all but the
    // last block were resident; an empty gauge means at the second read all was unmapped and at
    // most one new block exists.
    let mut full_rss: Option<u64> = None;
    let mut empty_rss: Option<u64> = None;
    let mut rising = Vec::new();
    let found = tokio::time::timeout(T, async {
        loop {
            let r1 = rss_bytes();
            let g = m.gauge("soakd_mock_sawtooth_bytes").await;
            let r2 = rss_bytes();
            if full_rss.is_none() {
                rising.push(g);
                if g == total {
                    full_rss = Some(r1);
                }
            } else if g == 0 {
                empty_rss = Some(r2);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "sawtooth never peaked and dropped: {rising:?}"
    );
    assert!(rising.windows(2).any(|w| w[0] < w[1]), "grows: {rising:?}");
    let (full, empty) = (full_rss.unwrap(), empty_rss.unwrap());
    let dropped = full.saturating_sub(empty);
    assert!(
        dropped >= (total - 2 * MIB) * 8 / 10,
        "RSS fell only {dropped} bytes after freeing {total}"
    );
    m.stop().await;
}

#[tokio::test]
async fn leak_knobs_move_proc_counters() {
    bytes_leak_moves_rss().await;
    fd_leak_moves_fd_count().await;
    thread_leak_moves_thread_count().await;
    sawtooth_grows_and_returns_memory().await;
}
