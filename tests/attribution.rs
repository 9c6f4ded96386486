//! Attribution of RSS growth to scenarios, and growth per open stream, end to end: `soakd run`
//! soaking a standalone `soakd mock` (a separate process, watched by pid) whose leak is a
//! known truth — per streaming request only (`--leak-on stream`), or per second of every open
//! stream (`--leak-bytes-per-stream-second`).

mod common;

use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(120);
const KIB: f64 = 1024.0;

fn scenario<'a>(attribution: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    attribution["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["scenario"] == name)
        .unwrap_or_else(|| panic!("no scenario {name} in {attribution}"))
}

/// A soak of `url` (pid `pid`) at 40 rps, 50/50 streaming and unary chat, sampled every
/// 250 ms into one 25 s window.
fn mixed_config(url: &str, pid: u32, mix_variation: &str) -> String {
    format!(
        r#"
[run]
grace = "3s"
seed = 11
# /metrics and /status are read in the linger, after the summary (ended by SIGTERM).
linger = "60s"

[target]
url = "{url}"

[load]
rate = 40.0
mix_variation = "{mix_variation}"

[[scenarios]]
name = "chat_stream"
api = "openai"
stream = true
max_tokens = 4

[[scenarios]]
name = "chat_unary"
api = "openai"
stream = false
max_tokens = 4

[monitor]
sample_interval = "250ms"
warmup = "2s"
windows = ["25s"]

# The mock leaks by design; whether the verdict is confirmed before the run ends depends on
# timing. The verdict has its own tests (tests/leak.rs): here it must not set the exit code.
[[monitor.processes]]
name = "target"
pid = {pid}
fail_on_leak = false

[log]
progress_interval = "10s"
"#
    )
}

/// The mock keeps 64 KiB per streaming request and nothing per unary one. With the mix varied
/// every 5 s, the 25 s window attributes 64 KiB ± 20 % to the streaming scenario and about 0
/// (under 5 % of that) to the unary one — in the summary JSON, its text table and the gauge.
#[test]
fn a_stream_only_leak_is_attributed_to_the_streaming_scenario() {
    let n = 64.0 * KIB;
    let mock = Mock::quick(&["--leak-on", "stream", "--leak-bytes-per-request", "64KiB"]);
    let cfg = mixed_config(&mock.url(), mock.proc.pid(), "5s");
    let mut run = Run::start(&cfg, &["--duration", "30s"]);
    let admin = run.admin_addr();
    // The run lingers after its summary: /metrics and /status then hold the final state.
    let (metrics, status) = run.final_state(admin, T);
    let (st, s) = run.finish(T);
    let live = &window(process(&status, "target"), "25s")["rss_bytes_per_request_by_scenario"];
    let live_stream = scenario(live, "chat_stream")["bytes_per_request"].as_f64();
    assert!(
        live_stream.is_some_and(|v| (v / n - 1.0).abs() < 0.20),
        "/status: {live}"
    );
    assert_eq!(st.code(), Some(0), "{}", run.proc.stderr_text());

    let a = &window(process(&s, "target"), "25s")["rss_bytes_per_request_by_scenario"];
    assert!(a["withheld"].is_null(), "{a}");
    assert!(a["mix_changes"].as_u64().unwrap() >= 3, "{a}");
    let stream = scenario(a, "chat_stream");
    let unary = scenario(a, "chat_unary");
    let sv = stream["bytes_per_request"].as_f64().unwrap();
    let uv = unary["bytes_per_request"].as_f64().unwrap();
    eprintln!("attributed: stream {sv:.0} B, unary {uv:.0} B per request (truth {n} / 0)");
    assert!((sv / n - 1.0).abs() < 0.20, "stream {sv} vs {n}: {a}");
    assert!((0.0..0.05 * n).contains(&uv), "unary {uv}: {a}");
    // Both scenarios really ran, about half each.
    let (sr, ur) = (
        stream["requests"].as_u64().unwrap() as f64,
        unary["requests"].as_u64().unwrap() as f64,
    );
    assert!((0.3..0.7).contains(&(sr / (sr + ur))), "{a}");

    let text = run.proc.stdout_text();
    assert!(
        text.contains("rss growth per request by scenario") && text.contains("chat_stream"),
        "{text}"
    );
    let g = |sc: &str| {
        metric_sum(
            &metrics,
            "soakd_process_rss_growth_bytes_per_request_by_scenario",
            &[("process", "target"), ("scenario", sc), ("window", "25s")],
        )
    };
    assert!((g("chat_stream") / n - 1.0).abs() < 0.20, "{metrics}");
    assert!(g("chat_unary") < 0.05 * n, "{metrics}");
}

/// With `mix_variation = "off"` the counts move in lockstep: nothing is published, every
/// window says why, and the reason is logged exactly once.
#[test]
fn a_fixed_mix_publishes_no_attribution_and_logs_why_once() {
    let mock = Mock::quick(&["--leak-on", "stream", "--leak-bytes-per-request", "64KiB"]);
    let cfg = mixed_config(&mock.url(), mock.proc.pid(), "off");
    let mut run = Run::start(&cfg, &["--duration", "18s"]);
    let admin = run.admin_addr();
    let (metrics, _) = run.final_state(admin, T);
    let (st, s) = run.finish(T);
    assert_eq!(st.code(), Some(0), "{}", run.proc.stderr_text());
    assert!(
        !metrics.contains("soakd_process_rss_growth_bytes_per_request_by_scenario{"),
        "{metrics}"
    );
    let target = window(process(&s, "target"), "25s");
    // The per-request growth is there: the window had data, only attribution is withheld.
    assert!(target["rss_bytes_per_request"].is_number(), "{target}");
    let a = &target["rss_bytes_per_request_by_scenario"];
    assert_eq!(a["withheld"], "mix_fixed", "{a}");
    for sc in ["chat_stream", "chat_unary"] {
        let x = scenario(a, sc);
        assert!(x["bytes_per_request"].is_null(), "{x}");
        assert!(x["requests"].as_u64().unwrap() > 100, "{x}");
    }
    let stderr = run.proc.stderr_text();
    let logged = stderr
        .lines()
        .filter(|l| l.contains("mix_variation is \"off\""))
        .count();
    assert_eq!(logged, 1, "{stderr}");
}

/// The mock keeps 256 KiB per second for every open stream, and nothing per request. soakd's
/// open-stream signal (kept by the client's stream guard) makes growth per open stream read
/// that within ±20 %.
#[test]
fn growth_per_open_stream_is_measured() {
    let truth = 256.0 * KIB;
    // Streams of about 2 s, so that scheduling delays on a busy machine (which stretch a
    // stream on the client side) are small against their length.
    let mock = Mock::start(&[
        "--ttft",
        "100ms",
        "--chunk-delay",
        "100ms",
        "--chunks",
        "20",
        "--leak-bytes-per-stream-second",
        "256KiB",
    ]);
    let cfg = format!(
        r#"
[run]
grace = "3s"

[target]
url = "{url}"

[load]
rate = 5.0

[[scenarios]]
name = "chat_stream"
api = "openai"
stream = true
max_tokens = 20

[monitor]
sample_interval = "250ms"
warmup = "2s"
windows = ["20s"]

# The mock leaks by design; whether the verdict is confirmed before the run ends depends on
# timing. The verdict has its own tests (tests/leak.rs): here it must not set the exit code.
[[monitor.processes]]
name = "target"
pid = {pid}
fail_on_leak = false
"#,
        url = mock.url(),
        pid = mock.proc.pid()
    );
    let mut run = Run::start(&cfg, &["--duration", "25s"]);
    let (st, s) = run.finish(T);
    assert_eq!(st.code(), Some(0), "{}", run.proc.stderr_text());
    let w = window(process(&s, "target"), "20s");
    // 5 rps of ~2.1 s streams: about 10 open at a time.
    let open = w["avg_open_streams"].as_f64().unwrap();
    assert!((7.0..14.0).contains(&open), "{w}");
    let per_stream = w["rss_bytes_per_sec_per_open_stream"].as_f64().unwrap();
    eprintln!("per open stream {per_stream:.0} B/s over {open:.2} open (truth {truth})");
    assert!(
        (per_stream / truth - 1.0).abs() < 0.20,
        "per open stream {per_stream} vs {truth}: {w}"
    );
    // The same growth read per request is what a stream costs over its life, not a leak per
    // request: the summary line shows both.
    assert!(run.proc.stdout_text().contains("per open stream"));
}

/// A mix period under two samples exits 78 naming the field; `--leak-on` with an unknown
/// class is a usage error that names the classes.
#[test]
fn bad_mix_period_and_unknown_leak_class_are_clear_errors() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let cfg = "[load]\nmix_variation = \"400ms\"\n[monitor]\nsample_interval = \"250ms\"\n";
    let mut run = Run::start(cfg, &["--admin-listen", &addr]);
    let st = run.proc.wait(T);
    let err = run.proc.stderr_text();
    assert_eq!(st.code(), Some(78), "{err}");
    assert!(
        err.contains("load.mix_variation") && err.contains("monitor.sample_interval"),
        "{err}"
    );

    let out = std::process::Command::new(soakd_bin())
        .args(["mock", "--leak-on", "grpc"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--leak-on") && err.contains("grpc"), "{err}");
    assert!(err.contains("stream, unary, openai, anthropic"), "{err}");
}
