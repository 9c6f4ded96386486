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
    assert!(
        a.proc.stdout_text().contains("soakd summary"),
        "printed first"
    );
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
