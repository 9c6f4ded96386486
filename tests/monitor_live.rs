//! The monitor against real child processes and a real scrape endpoint on 127.0.0.1.
//!
//! Children are `python3 -c` scripts (python3 is required; its absence fails the test with a
//! message). Each child prints `ready` once set up; every await is under a timeout and every
//! child is killed on drop.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use soakd::metrics::Metrics;
use soakd::monitor::{
    procfs, Monitor, MonitorReport, ProcessReport, RawMonitor, RawProcess, RawScrapeMetrics,
    Verdict,
};
use soakd::signals::LoadSignals;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

const MIB: f64 = 1024.0 * 1024.0;
/// The leaky child's truth: 2 MiB every 100 ms.
const LEAK_BYTES_PER_SEC: f64 = 20.0 * MIB;

/// argv: ITERATIONS MODE MARKER. MODE "leak" keeps 2 MiB and one open file per 100 ms tick
/// (paced on absolute deadlines); "clean" holds a 50 MiB ballast and idles.
const SCRIPT: &str = r#"
import sys, time
n, mode = int(sys.argv[1]), sys.argv[2]
ballast = b"y" * (50 << 20)
keep, files = [], []
print("ready", flush=True)
start = time.monotonic()
for i in range(n):
    if mode == "leak":
        keep.append(b"x" * (2 << 20))
        files.append(open("/dev/null"))
    d = start + (i + 1) * 0.1 - time.monotonic()
    if d > 0:
        time.sleep(d)
time.sleep(30)
"#;

fn python() -> String {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 is required by the monitor integration tests but could not be run");
    assert!(out.status.success(), "python3 failed: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn spawn_child(mode: &str, iterations: u32, marker: &str) -> Child {
    let mut child = Command::new(python())
        .args(["-c", SCRIPT, &iterations.to_string(), mode, marker])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn python3 child");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("child did not get ready in 10 s")
        .unwrap();
    assert_eq!(line.as_deref(), Some("ready"));
    child
}

async fn kill(child: &mut Child) {
    child.start_kill().unwrap();
    timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("child did not die")
        .unwrap();
}

fn raw(processes: Vec<RawProcess>) -> RawMonitor {
    RawMonitor {
        sample_interval: Some("200ms".into()),
        warmup: Some("0s".into()),
        windows: Some(vec!["5s".into(), "10s".into()]),
        // Reported at once: the hysteresis has its own tests (monitor::judge).
        confirm: Some("0s".into()),
        processes,
        ..RawMonitor::default()
    }
}

fn pid_process(name: &str, pid: u32) -> RawProcess {
    RawProcess {
        name: name.into(),
        pid: Some(pid),
        ..RawProcess::default()
    }
}

fn build(raw: RawMonitor) -> (Arc<Monitor>, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new("it", "0").unwrap());
    let m = Monitor::new(
        raw.validate().unwrap(),
        metrics.clone(),
        Arc::new(LoadSignals::default()),
    )
    .unwrap();
    (Arc::new(m), metrics)
}

fn proc_report<'a>(r: &'a MonitorReport, name: &str) -> &'a ProcessReport {
    r.processes.iter().find(|p| p.name == name).unwrap()
}

fn long_rss_points(r: &MonitorReport, name: &str) -> usize {
    proc_report(r, name).windows[1].rss.map_or(0, |f| f.points)
}

/// Runs the monitor until the 10 s window of `name` fitted at least `points` points.
async fn run_until_points(m: &Arc<Monitor>, name: &str, points: usize) -> MonitorReport {
    let token = CancellationToken::new();
    let task = tokio::spawn(m.clone().run(token.clone()));
    let wait = async {
        loop {
            let snap = m.snapshot();
            if long_rss_points(&snap, name) >= points {
                return snap;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let snap = timeout(Duration::from_secs(25), wait)
        .await
        .expect("window did not fill in 25 s");
    token.cancel();
    timeout(Duration::from_secs(5), task)
        .await
        .expect("monitor did not stop")
        .unwrap();
    snap
}

#[tokio::test]
async fn leaking_child_is_measured_and_flagged() {
    let mut child = spawn_child("leak", 150, "soakd-it-leak").await;
    let (m, metrics) = build(raw(vec![pid_process("target", child.id().unwrap())]));
    let snap = run_until_points(&m, "target", 35).await;
    let p = proc_report(&snap, "target");
    assert!(p.up);
    for w in &p.windows {
        let rss = w.rss.expect("rss fit");
        let err = (rss.slope_per_sec - LEAK_BYTES_PER_SEC) / LEAK_BYTES_PER_SEC;
        eprintln!(
            "window {}: rss slope error {:+.1}% (R² {:.3}, {} points)",
            w.window,
            err * 100.0,
            rss.r2,
            rss.points
        );
        assert!(
            err.abs() < 0.20,
            "window {}: slope {} B/s, err {err}",
            w.window,
            rss.slope_per_sec
        );
        let fds = w.fds.expect("fds fit");
        assert!(fds.slope_per_sec > 5.0, "fd slope {}", fds.slope_per_sec);
    }
    assert_eq!(p.verdict.rss, Verdict::Leak);
    assert_eq!(p.verdict.fds, Verdict::Leak);
    assert_eq!(p.verdict.threads, Verdict::Ok);
    let text = metrics.encode();
    assert!(text.contains(r#"soakd_leak_suspected{process="target",resource="rss"} 1"#));
    assert!(text.contains(r#"soakd_leak_suspected{process="target",resource="fds"} 1"#));
    assert!(text.contains(r#"soakd_leak_suspected{process="target",resource="threads"} 0"#));
    assert!(text
        .contains(r#"soakd_process_rss_growth_bytes_per_second{process="target",window="10s"}"#));
    assert!(text.contains(r#"soakd_process_up{process="soakd"} 1"#));
    assert!(
        m.progress_fragment().contains("leak:rss,fds"),
        "{}",
        m.progress_fragment()
    );
    kill(&mut child).await;
}

#[tokio::test]
async fn clean_child_is_not_flagged() {
    let mut child = spawn_child("clean", 0, "soakd-it-clean").await;
    let (m, metrics) = build(raw(vec![pid_process("target", child.id().unwrap())]));
    let snap = run_until_points(&m, "target", 35).await;
    let p = proc_report(&snap, "target");
    assert!(p.rss_bytes.unwrap() > 50.0 * MIB);
    for w in &p.windows {
        let rss = w.rss.expect("rss fit");
        assert!(
            rss.slope_per_hour.abs() < 50.0 * MIB,
            "{}: {}",
            w.window,
            rss.slope_per_hour
        );
    }
    assert_eq!(p.verdict.rss, Verdict::Ok);
    assert_eq!(p.verdict.fds, Verdict::Ok);
    assert!(metrics
        .encode()
        .contains(r#"soakd_leak_suspected{process="target",resource="rss"} 0"#));
    kill(&mut child).await;
}

#[tokio::test]
async fn killed_child_is_down_and_its_growth_gauges_removed() {
    let mut child = spawn_child("leak", 150, "soakd-it-killed").await;
    let (m, metrics) = build(raw(vec![pid_process("target", child.id().unwrap())]));
    run_until_points(&m, "target", 30).await;
    assert!(metrics
        .encode()
        .contains(r#"soakd_process_rss_growth_bytes_per_second{process="target",window="5s"}"#));
    kill(&mut child).await;
    timeout(Duration::from_secs(10), m.sample_once())
        .await
        .unwrap();
    let text = metrics.encode();
    assert!(
        text.contains(r#"soakd_process_up{process="target"} 0"#),
        "{text}"
    );
    for name in [
        "soakd_process_rss_growth_bytes_per_second{process=\"target\"",
        "soakd_process_fd_growth_per_second{process=\"target\"",
        "soakd_process_growth_fit_r2{process=\"target\"",
        "soakd_process_resident_memory_bytes{process=\"target\"}",
    ] {
        assert!(!text.contains(name), "{name} still exported:\n{text}");
    }
    assert!(!proc_report(&m.snapshot(), "target").up);
    assert!(m.progress_fragment().contains("target down"));
}

#[tokio::test]
async fn restarted_child_matched_by_cmdline_counts_a_restart() {
    let marker = format!("soakd-it-restart-{}", std::process::id());
    let mut first = spawn_child("clean", 0, &marker).await;
    let first_pid = first.id().unwrap();
    let (m, metrics) = build(raw(vec![RawProcess {
        name: "target".into(),
        match_cmdline: Some(marker.clone()),
        ..RawProcess::default()
    }]));
    for _ in 0..3 {
        timeout(Duration::from_secs(10), m.sample_once())
            .await
            .unwrap();
    }
    let p = proc_report(&m.snapshot(), "target").clone();
    assert!(p.up);
    assert_eq!(p.pid, Some(first_pid));
    assert_eq!(p.restarts, 0);

    kill(&mut first).await;
    timeout(Duration::from_secs(10), m.sample_once())
        .await
        .unwrap();
    assert!(
        !proc_report(&m.snapshot(), "target").up,
        "gone between runs"
    );

    let mut second = spawn_child("clean", 0, &marker).await;
    timeout(Duration::from_secs(10), m.sample_once())
        .await
        .unwrap();
    let p = proc_report(&m.snapshot(), "target").clone();
    assert!(p.up);
    assert_eq!(p.pid, second.id());
    assert_eq!(p.restarts, 1);
    assert!(
        p.windows.iter().all(|w| w.rss.is_none()),
        "fit started over"
    );
    assert!(metrics
        .encode()
        .contains(r#"soakd_process_restarts_total{process="target"} 1"#));
    kill(&mut second).await;
}

#[tokio::test]
async fn pid_file_is_reread_and_a_new_pid_is_a_restart() {
    let mut a = spawn_child("clean", 0, "soakd-it-pidfile-a").await;
    let mut b = spawn_child("clean", 0, "soakd-it-pidfile-b").await;
    let dir = std::env::temp_dir().join(format!("soakd-monitor-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("target.pid");
    std::fs::write(&file, format!("{}\n", a.id().unwrap())).unwrap();
    let (m, _) = build(raw(vec![RawProcess {
        name: "target".into(),
        pid_file: Some(file.clone()),
        ..RawProcess::default()
    }]));
    timeout(Duration::from_secs(10), m.sample_once())
        .await
        .unwrap();
    assert_eq!(proc_report(&m.snapshot(), "target").pid, a.id());
    std::fs::write(&file, format!("{}\n", b.id().unwrap())).unwrap();
    timeout(Duration::from_secs(10), m.sample_once())
        .await
        .unwrap();
    let p = proc_report(&m.snapshot(), "target").clone();
    assert_eq!(p.pid, b.id());
    assert_eq!(p.restarts, 1);
    std::fs::write(&file, "garbage").unwrap();
    timeout(Duration::from_secs(10), m.sample_once())
        .await
        .unwrap();
    assert!(!proc_report(&m.snapshot(), "target").up);
    let _ = std::fs::remove_dir_all(&dir);
    kill(&mut a).await;
    kill(&mut b).await;
}

/// The child's numbers, read from /proc here (not through a monitor) with the library's
/// parsers: (rss bytes, open fds, threads, start ticks).
fn proc_numbers(pid: u32) -> (f64, f64, f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let (rss, threads) = procfs::parse_status(&status);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let start = procfs::parse_stat(&stat).map_or(0.0, |s| s.start_ticks as f64);
    (
        rss.unwrap_or(f64::NAN),
        fds as f64,
        threads.unwrap_or(f64::NAN),
        start,
    )
}

/// Serves `body(request_count)` as the response to every connection until the task is aborted.
async fn serve(listener: TcpListener, body: impl Fn() -> String + Send + 'static) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let mut buf = [0u8; 4096];
        let mut seen = Vec::new();
        // Read the request head.
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        let text = body();
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
            text.len()
        );
        let _ = sock.write_all(resp.as_bytes()).await;
        let _ = sock.shutdown().await;
    }
}

#[tokio::test]
async fn scrape_source_agrees_with_local_source() {
    let mut child = spawn_child("leak", 150, "soakd-it-scrape").await;
    let pid = child.id().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve(listener, move || {
        let (rss, fds, threads, start) = proc_numbers(pid);
        format!(
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n\
             # TYPE process_resident_memory_bytes gauge\n\
             process_resident_memory_bytes {rss:e}\n\
             process_open_fds {fds}\n\
             process_threads {threads}\n\
             process_start_time_seconds {start}\n\
             process_cpu_seconds_total 0.5\n\
             other_metric{{path=\"/x\"}} NaN\n"
        )
    }));
    let (m, metrics) = build(raw(vec![
        pid_process("local", pid),
        RawProcess {
            name: "remote".into(),
            scrape_url: Some(format!("http://{addr}/metrics")),
            ..RawProcess::default()
        },
    ]));
    let snap = run_until_points(&m, "remote", 35).await;
    let (l, r) = (proc_report(&snap, "local"), proc_report(&snap, "remote"));
    assert!(r.up && l.up);
    let close = |a: f64, b: f64| (a - b).abs() <= 0.10 * a.abs().max(b.abs());
    assert!(
        close(l.rss_bytes.unwrap(), r.rss_bytes.unwrap()),
        "{l:?} {r:?}"
    );
    assert!(
        close(l.open_fds.unwrap(), r.open_fds.unwrap()),
        "{l:?} {r:?}"
    );
    assert_eq!(l.threads, r.threads);
    for (lw, rw) in l.windows.iter().zip(&r.windows) {
        let (ls, rs) = (lw.rss.unwrap().slope_per_sec, rw.rss.unwrap().slope_per_sec);
        assert!(
            close(ls, rs),
            "window {}: local {ls} remote {rs}",
            lw.window
        );
    }
    assert_eq!(r.verdict.rss, Verdict::Leak);
    assert_eq!(r.restarts, 0, "stable start time is no restart");
    assert!(metrics
        .encode()
        .contains(r#"soakd_process_cpu_seconds_total{process="remote"}"#));
    server.abort();
    kill(&mut child).await;
}

#[tokio::test]
async fn garbage_or_dead_scrape_is_down_without_panic() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve(listener, || "<html>not metrics</html>\n".to_string()));
    // A port that was bound and released: connection refused.
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let (m, metrics) = build(raw(vec![
        RawProcess {
            name: "garbage".into(),
            scrape_url: Some(format!("http://{addr}/metrics")),
            ..RawProcess::default()
        },
        RawProcess {
            name: "dead".into(),
            scrape_url: Some(format!("http://{dead_addr}/metrics")),
            ..RawProcess::default()
        },
        RawProcess {
            name: "renamed".into(),
            scrape_url: Some(format!("http://{addr}/metrics")),
            scrape_metrics: Some(RawScrapeMetrics {
                rss: Some("my_rss".into()),
                ..RawScrapeMetrics::default()
            }),
            ..RawProcess::default()
        },
    ]));
    for _ in 0..3 {
        timeout(Duration::from_secs(15), m.sample_once())
            .await
            .unwrap();
    }
    let text = metrics.encode();
    for name in ["garbage", "dead", "renamed"] {
        assert!(
            text.contains(&format!("soakd_process_up{{process=\"{name}\"}} 0")),
            "{name}:\n{text}"
        );
        assert!(!text.contains(&format!(
            "soakd_process_resident_memory_bytes{{process=\"{name}\"}}"
        )));
    }
    assert!(text.contains(r#"soakd_process_up{process="soakd"} 1"#));
    server.abort();
}

/// Cost of one sample of 10 local processes (+ soakd itself), for BENCHMARKS.md:
/// `cargo test --release --test monitor_live -- --ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn bench_sample_ten_local_processes() {
    let me = std::process::id();
    let procs = (0..10).map(|i| pid_process(&format!("p{i}"), me)).collect();
    let (m, _) = build(raw(procs));
    let n = 2000;
    let cpu_before = proc_numbers_cpu(me);
    let start = std::time::Instant::now();
    for _ in 0..n {
        timeout(Duration::from_secs(5), m.sample_once())
            .await
            .unwrap();
    }
    let wall = start.elapsed().as_secs_f64() / n as f64;
    let cpu = (proc_numbers_cpu(me) - cpu_before) / n as f64;
    eprintln!(
        "one sample of 11 processes: {:.1} µs wall, {:.1} µs CPU; at 1 Hz that is {:.3} % of a core",
        wall * 1e6,
        cpu * 1e6,
        cpu * 100.0
    );
}

fn proc_numbers_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    procfs::parse_stat(&stat).expect("stat parses").cpu_seconds
}
