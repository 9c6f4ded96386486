//! The run's states and memory over the whole run, end to end: `soakd run` against the real
//! mock (a separate process) over loopback.
//!
//! States: idle before the load, cooldown after it, and the linger that keeps `/metrics`,
//! `/status` and `/series` answering with the final state after the summary.

mod common;

use std::time::{Duration, Instant};

use serde_json::Value;

use common::*;

const T: Duration = Duration::from_secs(120);

/// The run's states in `/status` or the summary: (state, seconds).
fn states(v: &Value) -> Vec<(String, f64)> {
    v["phases"]
        .as_array()
        .unwrap_or_else(|| panic!("no phases in {v}"))
        .iter()
        .map(|p| {
            (
                p["state"].as_str().unwrap().to_string(),
                p["seconds"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn names(states: &[(String, f64)]) -> Vec<&str> {
    states.iter().map(|(s, _)| s.as_str()).collect()
}

fn state_gauges(metrics: &str) -> Vec<f64> {
    ["idle", "load", "drain", "cooldown", "linger"]
        .iter()
        .map(|s| metric_sum(metrics, "soakd_run_state", &[("state", s)]))
        .collect()
}

/// Run A goes through every state and lingers 5 s by itself: during idle nothing is sent and
/// `/status` says so; after the summary `/metrics` still answers, with the summary's counters
/// and `state="linger"`, and the run then exits with its verdict on its own. Run B is stopped
/// by SIGTERM during its load: its cooldown is skipped, it still lingers, and a second SIGTERM
/// ends the linger at once with the verdict's exit code (0), not 130.
#[test]
fn a_run_idles_loads_cools_down_and_lingers_with_its_final_counters() {
    let mock = Mock::quick(&[]);
    let cfg = watch_mock_toml(
        &mock,
        20.0,
        "sample_interval = \"250ms\"\nwarmup = \"0s\"\nwindows = [\"4s\"]",
    );
    let env_a = [
        ("SOAKD__RUN__IDLE", "2s"),
        ("SOAKD__RUN__COOLDOWN", "2s"),
        ("SOAKD__RUN__LINGER", "5s"),
    ];
    let mut a = Run::start_env(&cfg, &["--duration", "3s"], &env_a);
    let env_b = [
        ("SOAKD__RUN__COOLDOWN", "30s"),
        ("SOAKD__RUN__LINGER", "60s"),
    ];
    let mut b = Run::start_env(&cfg, &["--duration", "forever"], &env_b);
    let admin_a = a.admin_addr();
    let admin_b = b.admin_addr();

    // A is idle: sampling, sending nothing, not ready.
    let deadline = Instant::now() + Duration::from_secs(10);
    let idle = loop {
        let (_, s) = http_get(admin_a, "/status");
        let s: Value = serde_json::from_str(&s).unwrap();
        if s["state"] != "starting" {
            break s;
        }
        assert!(Instant::now() < deadline, "never left starting: {s}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(idle["state"], "idle", "{idle}");
    assert_eq!(idle["requests_sent"], 0, "{idle}");
    let (code, _) = http_get(admin_a, "/readyz");
    assert_eq!(code, 503, "not ready while idle");
    let (_, m) = http_get(admin_a, "/metrics");
    assert_eq!(state_gauges(&m), [1.0, 0.0, 0.0, 0.0, 0.0]);

    // B: stopped during its load.
    wait_http_ok(admin_b, "/readyz", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(1));
    b.proc.signal(libc::SIGTERM);

    // A lingers: the final counters stay on /metrics after the summary.
    a.proc.wait_line("lingering", T);
    let lingering = Instant::now();
    // The summary was printed before the linger began (on stdout, read by another thread
    // than the log line).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !a.proc.stdout_text().contains("verdict: pass") {
        assert!(
            Instant::now() < deadline,
            "no summary on stdout while lingering"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, metrics) = http_get(admin_a, "/metrics");
    let (_, status) = http_get(admin_a, "/status");
    let (code, series) = http_get(admin_a, "/series");
    assert_eq!(code, 200);
    let st = a.proc.wait(Duration::from_secs(30));
    let after = lingering.elapsed();
    assert_eq!(st.code(), Some(0), "{}", a.proc.stderr_text());
    // It lingered its 5 s (less the moment it took to read the state above) and exited by
    // itself right after.
    assert!(
        (Duration::from_secs(3)..Duration::from_secs(9)).contains(&after),
        "exited {after:?} after it began to linger"
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(&a.summary_path).unwrap()).unwrap();
    let finished = count(&summary, &["requests_finished"]);
    assert!(finished >= 50, "{summary}");
    assert_eq!(
        metric_sum(&metrics, "soakd_requests_total", &[]),
        finished as f64,
        "/metrics in the linger holds the final counters"
    );
    assert_eq!(state_gauges(&metrics), [0.0, 0.0, 0.0, 0.0, 1.0]);
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["state"], "linger");
    assert_eq!(status["requests_finished"], finished);
    assert!(!status["thresholds"].as_array().unwrap().is_empty());
    assert!(
        status["thresholds"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] != "pending"),
        "the final evaluation, not a live one: {}",
        status["thresholds"]
    );
    let s = states(&status);
    assert_eq!(
        names(&s),
        ["idle", "load", "drain", "cooldown", "linger"],
        "{s:?}"
    );
    let secs = |name: &str| s.iter().find(|(n, _)| n == name).unwrap().1;
    // Each state lasted what the config asked (a correctness bound, on a busy machine).
    for (name, want) in [("idle", 2.0), ("load", 3.0), ("cooldown", 2.0)] {
        let got = secs(name);
        assert!(
            (want - 0.1..want + 1.5).contains(&got),
            "{name} lasted {got} s, configured {want} s: {s:?}"
        );
    }
    // The summary has the states up to the summary (no linger yet).
    assert_eq!(
        names(&states(&summary)),
        ["idle", "load", "drain", "cooldown"]
    );
    let series: Value = serde_json::from_str(&series).unwrap();
    let spans: Vec<&str> = series["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "phase")
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    assert_eq!(spans, ["idle", "load", "drain", "cooldown", "linger"]);
    assert!(
        a.proc.stderr_text().contains("run state: cooldown"),
        "each state is logged"
    );

    // B: no cooldown after a stop, a linger all the same, ended by the next signal.
    let (metrics_b, status_b) = b.final_state(admin_b, T);
    let ended = Instant::now();
    let (st, summary_b) = b.finish(T);
    assert!(
        ended.elapsed() < Duration::from_secs(10),
        "a signal ends the 60 s linger at once"
    );
    assert_eq!(st.code(), Some(0), "the verdict, not 130: {}", b.output());
    assert_eq!(
        names(&states(&status_b)),
        ["load", "drain", "linger"],
        "{status_b}"
    );
    assert_eq!(state_gauges(&metrics_b), [0.0, 0.0, 0.0, 0.0, 1.0]);
    assert_eq!(
        metric_sum(&metrics_b, "soakd_requests_total", &[]),
        num(&summary_b, &["requests_finished"])
    );
    assert!(b.proc.stderr_text().contains("linger ended by a signal"));
}

const MIB: f64 = 1024.0 * 1024.0;

/// A soak of `mock` at 20 rps of constant arrivals: 3 s idle, 20 s of load, 8 s of cooldown,
/// 250 ms samples, 10 s and 20 s windows; leak verdicts off, `min_released_share = 0.5`; it
/// lingers until the test has read its final state. Seconds stand for hours here, so the
/// growth threshold the plateau's slope is held to is raised to 2 GiB/h: a page-sized step
/// of a flat process late in a 20 s load would read as 40 MiB/h.
fn arc_soak(mock: &Mock) -> Run {
    let cfg = watch_mock_toml(
        mock,
        20.0,
        "sample_interval = \"250ms\"\nwarmup = \"0s\"\nwindows = [\"10s\", \"20s\"]\n\n\
         [monitor.thresholds]\nrss_mib_per_hour = 2048.0\n\n\
         [thresholds]\nleak_verdicts = false\nmin_released_share = 0.5",
    );
    let env = [
        ("SOAKD__RUN__IDLE", "3s"),
        ("SOAKD__RUN__COOLDOWN", "8s"),
        ("SOAKD__RUN__LINGER", "60s"),
    ];
    Run::start_env(&cfg, &["--duration", "20s"], &env)
}

fn arc_of<'a>(summary: &'a Value, process_name: &str) -> &'a Value {
    &process(summary, process_name)["arc"]
}

/// The memory arc through the binary. Mock A grows 256 KiB per request up to a 48 MiB plateau
/// — reached at its 192nd request, 9.6 s into the load at 20 rps — and holds it; mock B grows
/// 256 KiB per request without a cap and frees everything after 2 s without a request
/// (`idle_release`). A's arc has its plateau at 9.6 s (within 10 %, or two samples) at its own
/// RSS level (within 5 %), and a released share near 0, which fails `min_released_share`; B
/// has no plateau, grows at 5 MiB/s (within 10 %), and releases nearly all of it.
#[test]
fn the_memory_arc_finds_the_plateau_the_leak_and_what_came_back() {
    let holding = Mock::quick(&[
        "--plateau-bytes",
        "48MiB",
        "--leak-bytes-per-request",
        "256KiB",
    ]);
    let releasing = Mock::quick(&["--leak-bytes-per-request", "256KiB", "--idle-release", "2s"]);
    let mut a = arc_soak(&holding);
    let mut b = arc_soak(&releasing);
    let (admin_a, admin_b) = (a.admin_addr(), b.admin_addr());
    let (metrics_a, _) = a.final_state(admin_a, T);
    // What the holding mock really holds now, read from /proc by the test itself.
    let held = soakd::monitor::source::read_local(holding.proc.pid())
        .unwrap()
        .rss
        .unwrap();
    let (metrics_b, _) = b.final_state(admin_b, T);
    let (st_a, sa) = a.finish(T);
    let (st_b, sb) = b.finish(T);

    // A: the plateau.
    let arc = arc_of(&sa, "target");
    eprintln!("A: {arc}");
    let plateau = &arc["plateau"]["rss"];
    assert_eq!(plateau["reached"], true, "{arc}");
    let (secs, level) = (
        plateau["seconds"].as_f64().unwrap(),
        plateau["level"].as_f64().unwrap(),
    );
    // The mock's own plateau: its 192nd request, sent 9.6 s into the load, plus however late
    // soakd sent it on a busy machine (at most the run's largest schedule lag).
    let truth_secs: f64 = 192.0 / 20.0;
    let lag = num(&sa, &["latency", "schedule_lag", "max"]);
    let tol = (0.1 * truth_secs).max(0.5);
    assert!(
        secs >= truth_secs - tol && secs <= truth_secs + lag + tol,
        "plateau at {secs} s, the mock's at {truth_secs} s (+ up to {lag} s of schedule lag): {arc}"
    );
    assert!(
        (level / held - 1.0).abs() < 0.05,
        "plateau level {level} vs the {held} B the mock holds: {arc}"
    );
    let idle = num(arc, &["idle", "rss"]);
    let peak = num(arc, &["peak", "rss"]);
    assert!(
        peak - idle > 44.0 * MIB,
        "a 48 MiB rise: idle {idle} peak {peak}"
    );
    let share_a = num(arc, &["released_share", "rss"]);
    assert!(share_a.abs() < 0.1, "held memory: released share {share_a}");
    assert_eq!(arc["memory"], "rss");
    assert!(arc["idle"]["samples"].as_u64().unwrap() >= 8, "{arc}");
    // The gauges in the linger are the summary's numbers.
    // (serde_json's float parsing may be one ulp off: compare to 1e-12.)
    let g = |m: &str, name: &str| metric_sum(m, name, &[("process", "target")]);
    for (name, want) in [
        ("soakd_process_rss_idle_bytes", idle),
        ("soakd_process_rss_plateau_seconds", secs),
        ("soakd_process_rss_plateau_bytes", level),
        (
            "soakd_process_rss_recovered_bytes",
            num(arc, &["recovered", "rss"]),
        ),
    ] {
        let got = g(&metrics_a, name);
        assert!((got / want - 1.0).abs() < 1e-12, "{name} {got} vs {want}");
    }
    // Held memory fails the released share; the summary says so.
    assert_eq!(st_a.code(), Some(1), "{}", a.output());
    assert_eq!(failed_thresholds(&sa), ["released:target"]);
    let text = a.proc.stdout_text();
    assert!(
        text.contains("arc memory (rss): idle") && text.contains(&format!("after {secs:.1}s")),
        "{text}"
    );

    // B: no plateau, its rate, and the memory back.
    let arc = arc_of(&sb, "target");
    eprintln!("B: {arc}");
    let plateau = &arc["plateau"]["rss"];
    assert_eq!(plateau["reached"], false, "{arc}");
    assert_eq!(plateau["window"], "20s");
    let rate = num(plateau, &["growth_per_hour"]) / 3600.0;
    let truth = 20.0 * 256.0 * 1024.0;
    assert!(
        (rate / truth - 1.0).abs() < 0.10,
        "growth {rate} B/s vs {truth}: {arc}"
    );
    assert!(
        !metrics_b.contains("soakd_process_rss_plateau_seconds{process=\"target\"}"),
        "no plateau, no plateau gauge"
    );
    let share_b = num(arc, &["released_share", "rss"]);
    assert!(share_b > 0.9, "released after idle_release: {share_b}");
    assert_eq!(st_b.code(), Some(0), "{}", b.output());
    eprintln!(
        "arc: A plateau {secs:.2} s (mock {truth_secs} s), level {:.1} MiB (held {:.1} MiB), \
         share {share_a:.3}; B growth {:.2} MiB/s (mock {:.2}), share {share_b:.3}",
        level / MIB,
        held / MIB,
        rate / MIB,
        truth / MIB
    );
}

/// A process tree through the binary: `timeout` (the parent, which does nothing but wait)
/// runs a mock that grows 256 KiB per request up to 32 MiB. Watched three ways at once:
/// - by the parent's pid alone: flat, the growth is not its own;
/// - by the same pid with `include_children`: the tree's summed PSS rises with the child,
///   and the summary lists the child as the largest;
/// - by a command-line pattern both processes match: the log names the mock, the innermost
///   match, as the one watched (and `include_children` on the same pattern takes the tree).
#[test]
fn a_process_tree_is_seen_with_include_children_and_a_wrapper_is_skipped() {
    let dir = TempDir::new("tree");
    // A marker on both command lines, unique to this test.
    let marker = dir.path().join("tree-marker.pid");
    let mut cmd = std::process::Command::new("timeout");
    cmd.args(["120", soakd_bin(), "mock", "--listen", "127.0.0.1:0"])
        .args(["--ttft", "2ms", "--chunk-delay", "1ms", "--chunks", "4"])
        .args([
            "--plateau-bytes",
            "32MiB",
            "--leak-bytes-per-request",
            "256KiB",
        ])
        .arg("--pid-file")
        .arg(&marker)
        .env("RUST_LOG", "warn");
    let mut wrapper = Proc::spawn("timeout soakd mock", cmd);
    let line = wrapper.wait_line("listening on http://", Duration::from_secs(20));
    let url = format!("http://{}", line.rsplit("http://").next().unwrap().trim());
    let parent = wrapper.pid();
    let child: u32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(parent, child);
    let marker = marker.display().to_string();
    let cfg = format!(
        r#"
[run]
grace = "3s"
idle = "2s"

[target]
url = "{url}"

[load]
rate = 40.0
arrivals = "constant"

[[scenarios]]
name = "chat"
api = "openai"
max_tokens = 4

[monitor]
sample_interval = "250ms"
warmup = "0s"
windows = ["4s", "8s"]

[thresholds]
leak_verdicts = false

[[monitor.processes]]
name = "plain"
pid = {parent}

[[monitor.processes]]
name = "tree"
pid = {parent}
include_children = true

[[monitor.processes]]
name = "matched"
match_cmdline = "{marker}"

[[monitor.processes]]
name = "matched_tree"
match_cmdline = "{marker}"
include_children = true
"#
    );
    let mut run = Run::start(&cfg, &["--duration", "6s"]);
    let (st, s) = run.finish(T);
    assert_eq!(st.code(), Some(0), "{}", run.output());
    let rise = |p: &Value| num(&p["arc"], &["peak", "rss"]) - num(&p["arc"], &["idle", "rss"]);
    let plain = process(&s, "plain");
    let tree = process(&s, "tree");
    eprintln!(
        "rise: plain {:.2} MiB, tree {:.2} MiB; tree {}",
        rise(plain) / MIB,
        rise(tree) / MIB,
        tree["tree"]
    );
    assert!(
        rise(plain) < 2.0 * MIB,
        "the parent alone: {}",
        plain["arc"]
    );
    assert!(
        rise(tree) > 28.0 * MIB,
        "the tree holds the child's 32 MiB: {}",
        tree["arc"]
    );
    assert_eq!(tree["arc"]["memory"], "pss");
    assert_eq!(plain["arc"]["memory"], "rss");
    assert_eq!(tree["tree"]["members"], 2, "{}", tree["tree"]);
    let largest = &tree["tree"]["largest"][0];
    assert_eq!(largest["pid"], child, "{}", tree["tree"]);
    assert!(largest["memory_bytes"].as_f64().unwrap() > 32.0 * MIB);
    assert!(
        tree["threads"].as_f64().unwrap() > plain["threads"].as_f64().unwrap(),
        "threads are summed"
    );
    // The wrapper and the mock both match the marker: the mock is watched, and the log says
    // why; with include_children the pattern takes the wrapper's tree.
    assert_eq!(process(&s, "matched")["pid"], child);
    assert_eq!(process(&s, "matched_tree")["pid"], parent);
    let log = run.proc.stderr_text();
    let picked = log
        .lines()
        .find(|l| l.contains("wraps") && l.contains(&format!("watching {child} (soakd)")))
        .unwrap_or_else(|| panic!("no pick logged:\n{log}"));
    assert!(
        picked.contains(&format!("{parent} (timeout) wraps {child} (soakd)"))
            && picked.contains(&format!("watching {child} (soakd), the innermost")),
        "{picked}"
    );
    assert!(
        log.contains(&format!(
            "watching the tree of {parent} (timeout), the outermost"
        )),
        "{log}"
    );
    assert!(run
        .proc
        .stdout_text()
        .contains("    tree: 2 processes; largest children: "));
    wrapper.signal(libc::SIGTERM);
}

/// The sysinfo sampler (every platform but Linux) and the /proc reader agree on a live mock:
/// RSS within 1 % (or 256 KiB) of a /proc read taken just before or after it, threads equal.
#[test]
fn the_sysinfo_sampler_agrees_with_proc() {
    use soakd::monitor::local::ProcessTable;
    use soakd::monitor::procfs::ProcFs;
    use soakd::monitor::sysinfo_source::SysinfoTable;

    let mock = Mock::quick(&[
        "--plateau-bytes",
        "16MiB",
        "--leak-bytes-per-request",
        "1MiB",
    ]);
    // Some traffic first, so the mock holds what it would under a soak.
    for _ in 0..20 {
        let client = reqwest::blocking::Client::new();
        let r = client
            .post(format!("{}/v1/chat/completions", mock.url()))
            .body(r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#)
            .send()
            .unwrap();
        assert!(r.status().is_success());
    }
    let pid = mock.proc.pid();
    let si = SysinfoTable::new();
    assert!(si.unavailable().iter().any(|u| u.starts_with("PSS")));
    for _ in 0..5 {
        let before = ProcFs.read(pid).unwrap();
        let s = si.read(pid).unwrap();
        let after = ProcFs.read(pid).unwrap();
        let (lo, hi) = (
            before.rss.unwrap().min(after.rss.unwrap()),
            before.rss.unwrap().max(after.rss.unwrap()),
        );
        let rss = s.rss.unwrap();
        let slack = (0.01 * hi).max(256.0 * 1024.0);
        assert!(
            rss >= lo - slack && rss <= hi + slack,
            "sysinfo rss {rss} vs /proc {lo}..{hi}"
        );
        assert!(rss > 16.0 * MIB, "the mock holds its 16 MiB: {rss}");
        let t = s.threads.unwrap();
        assert!(
            t == before.threads.unwrap() || t == after.threads.unwrap(),
            "threads: sysinfo {t}, /proc {:?}/{:?}",
            before.threads,
            after.threads
        );
        assert!(
            s.fds.is_some() && (s.fds == before.fds || s.fds == after.fds),
            "fds: sysinfo {:?}, /proc {:?}/{:?}",
            s.fds,
            before.fds,
            after.fds
        );
        assert_eq!(s.identity.pid, Some(pid));
    }
    // Both list the mock under its parent, this test.
    let listed = si.list(true).into_iter().find(|e| e.pid == pid).unwrap();
    assert_eq!(listed.ppid, std::process::id());
    assert!(listed.cmdline.unwrap().contains("--plateau-bytes"));
    assert!(matches!(
        si.read(4_194_304 + 7),
        Err(soakd::monitor::source::SampleError::Gone(_))
    ));
}
