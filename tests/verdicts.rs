//! Verdicts through the real binary: default thresholds fail a broken run, a leak verdict
//! fails the run, the plain `--target` plan is what `--rate` says, scenario flags with a
//! config are a config error, and `soakd compare` judges two real runs.
//!
//! Every run is a few seconds against the real mock over loopback.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(120);

fn threshold<'a>(s: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    s["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no threshold {name} in {}", s["thresholds"]))
}

/// A free loopback port nobody listens on: connections to it are refused.
fn refused_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn a_refused_target_fails_on_the_default_error_ratio() {
    let url = format!("http://127.0.0.1:{}", refused_port());
    let mut run = Run::start_cli(
        &["--target", &url, "--rate", "20", "--duration", "2s"],
        &[("SOAKD__RUN__GRACE", "2s")],
    );
    let (st, s) = run.finish(T);
    assert_eq!(st.code(), Some(1), "{}", run.proc.stderr_text());
    assert_eq!(s["verdict"], "fail");
    let sent = count(&s, &["requests_sent"]);
    assert!(sent >= 30, "{s}");
    assert_eq!(count(&s, &["outcomes", "connect_error"]), sent, "{s}");
    assert_eq!(count(&s, &["errors"]), sent);
    let e = threshold(&s, "error_ratio");
    assert_eq!(e["status"], "fail");
    assert_eq!(e["observed"], 1.0);
    assert_eq!(e["limit"], 0.05);
    let out = run.proc.stdout_text();
    assert!(
        out.contains("threshold error_ratio") && out.contains("the default error_ratio 5%"),
        "{out}"
    );
    assert!(out.contains("verdict: fail (exit 1)"), "{out}");
    // Nothing was dropped: that default passes.
    assert_eq!(threshold(&s, "dropped")["status"], "pass");
}

#[test]
fn target_and_rate_without_config_is_a_constant_steady_plan() {
    let mock = Mock::start(&["--ttft", "2ms", "--chunk-delay", "1ms", "--chunks", "2"]);
    let mut run = Run::start_cli(
        &["--target", &mock.url(), "--rate", "40", "--duration", "3s"],
        &[("SOAKD__RUN__GRACE", "3s")],
    );
    let admin = run.admin_addr();
    // The start line names the effective plan: constant arrivals, no bursts, one scenario.
    let started = run.proc.wait_line("soak started", Duration::from_secs(30));
    assert!(
        started.contains("open 40 rps, constant arrivals, no bursts, no stages"),
        "{started}"
    );
    assert!(
        started.contains("openai weight 1 (openai gpt-4o-mini stream, max_tokens 256)"),
        "{started}"
    );
    let (_, metrics) = http_get(admin, "/metrics");
    let (st, s) = run.finish(T);
    assert_eq!(st.code(), Some(0), "{}", run.proc.stderr_text());
    // Constant arrivals at 40 rps for 3 s: 120 sends (a Poisson plan would scatter by ±11).
    let sent = count(&s, &["requests_sent"]);
    assert!((119..=121).contains(&sent), "sent {sent}");
    assert_eq!(
        count(&s, &["outcomes", "ok"]),
        sent,
        "no cancels, no errors: {s}"
    );
    let scenarios = s["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 1);
    assert_eq!(scenarios[0]["name"], "openai");
    assert_eq!(metric_sum(&metrics, "soakd_burst_active", &[]), 0.0);
    assert_eq!(
        metric_sum(&metrics, "soakd_requests_total", &[("phase", "burst")]),
        0.0
    );
    assert_eq!(num(&s, &["target_rate_avg"]).round(), 40.0);
}

#[test]
fn scenario_flags_with_a_config_exit_78() {
    for (flag, value) in [("--api", Some("anthropic")), ("--no-stream", None)] {
        let mut args = vec![flag];
        args.extend(value);
        let mut run = Run::start("[load]\nrate = 5\n", &args);
        let st = run.proc.wait(T);
        assert_eq!(st.code(), Some(78), "{}", run.proc.stderr_text());
        let err = run.proc.stderr_text();
        assert!(err.contains(flag) && err.contains("--config"), "{err}");
    }
}

/// A short soak of `mock` with 100 ms samples and 3 s / 6 s windows, so leak verdicts are
/// judged within seconds. The RSS limit (1 GiB/h, about 0.3 MB/s) is a tenth of the leaky
/// mock's 3.2 MB/s and over ten times a clean mock's growth over such short windows (measured
/// 0-26 KB/s on a loaded 2-core machine). fds and threads are not what this test is about:
/// their limits are out of reach, so the connection pool growing under CPU contention is not
/// judged as an fd leak of either mock.
fn short_soak(mock: &Mock) -> Run {
    let cfg = watch_mock_toml(
        mock,
        50.0,
        r#"sample_interval = "100ms"
warmup = "1s"
windows = ["3s", "6s"]
confirm = "500ms"

[monitor.thresholds]
rss_mib_per_hour = 1024.0
fds_per_hour = 1000000.0
threads_per_hour = 1000000.0"#,
    );
    Run::start(&cfg, &["--duration", "9s"])
}

fn soakd_compare(base: &Path, new: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(soakd_bin())
        .arg("compare")
        .arg(base)
        .arg(new)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_leaking_mock_fails_the_run_and_compare_calls_it_a_regression() {
    let clean_mock = Mock::quick(&[]);
    let leaky_mock = Mock::quick(&["--leak-bytes-per-request", "65536"]);
    // Both soaks at once: the same 9 s of wall time.
    let mut clean = short_soak(&clean_mock);
    let mut leaky = short_soak(&leaky_mock);
    let (clean_st, clean_s) = clean.finish(T);
    let (leaky_st, leaky_s) = leaky.finish(T);

    // The leaking mock: exit 1, the leak named with its slope and window.
    assert_eq!(leaky_st.code(), Some(1), "{}", leaky.proc.stderr_text());
    assert_eq!(process(&leaky_s, "target")["verdict"]["rss"], "leak");
    let t = threshold(&leaky_s, "leak:target:rss");
    assert_eq!(t["status"], "fail", "{t}");
    let msg = t["message"].as_str().unwrap();
    assert!(
        msg.starts_with("process target leaks rss: +") && msg.contains("/h over the 6s window"),
        "{msg}"
    );
    let out = leaky.proc.stdout_text();
    assert!(out.contains("threshold leak:target:rss"), "{out}");
    assert!(out.contains("verdict: fail"), "{out}");
    // soakd's own verdict never has a threshold.
    assert!(leaky_s["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| !t["name"].as_str().unwrap().starts_with("leak:soakd:")));
    assert_eq!(leaky_s["schema_version"], 1);

    // The clean mock passes, every verdict judged.
    assert_eq!(clean_st.code(), Some(0), "{}", clean.proc.stderr_text());
    for r in ["rss", "fds", "threads"] {
        assert_eq!(
            threshold(&clean_s, &format!("leak:target:{r}"))["status"],
            "pass",
            "{}",
            clean_s["thresholds"]
        );
    }

    // compare: clean as BASE, leaky as NEW is a regression; each against itself is not.
    let (code, out, err) = soakd_compare(&clean.summary_path, &leaky.summary_path, &["--json"]);
    assert_eq!(code, 1, "{out}\n{err}");
    let c: serde_json::Value = serde_json::from_str(&out).unwrap();
    let row = |key: &str, subject: &str| {
        c["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == key && r["subject"] == subject)
            .unwrap_or_else(|| panic!("no {key} {subject} row in {c}"))
            .clone()
    };
    assert_eq!(row("leak", "target:rss")["status"], "regression");
    let rpr = row("rss_per_request", "target");
    assert_eq!(rpr["status"], "regression", "{rpr}");
    let per_request = rpr["new"].as_f64().unwrap();
    assert!(
        (per_request / 65536.0 - 1.0).abs() < 0.25,
        "per request {per_request}"
    );
    let (code, out, _) = soakd_compare(&clean.summary_path, &leaky.summary_path, &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains("REGRESSION") && out.contains("leak target:rss"),
        "{out}"
    );

    for s in [&clean.summary_path, &leaky.summary_path] {
        let (code, out, err) = soakd_compare(s, s, &[]);
        assert_eq!(code, 0, "{out}\n{err}");
        assert!(out.contains("result: no regression (exit 0)"), "{out}");
    }

    // Not a summary, or a summary of an unknown schema_version: exit 2, naming the file.
    let dir = TempDir::new("compare");
    let config = dir.write("soakd.toml", "[load]\nrate = 5\n");
    let (code, _, err) = soakd_compare(&clean.summary_path, &config, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("soakd.toml is not a soakd summary"), "{err}");
    let mut v = clean_s.clone();
    v["schema_version"] = 99.into();
    let future = dir.write("future.json", &v.to_string());
    let (code, _, err) = soakd_compare(&future, &clean.summary_path, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("schema_version 99"), "{err}");
    // A bad limit is a config error naming the flag.
    let (code, _, err) = soakd_compare(
        &clean.summary_path,
        &clean.summary_path,
        &["--max-regression", "p95=1"],
    );
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("--max-regression"), "{err}");
}

/// The demo, run once as a newcomer runs it: `soakd run` with no arguments (two and a half
/// minutes against its own clean mock; the config's margins are checked by
/// `config::tests::the_demo_has_the_margins_its_verdicts_need`). It passes, never suspects a
/// leak, and ends with every verdict judged: the mock's rss, fds and threads, and the creep of
/// every scenario's p99; the growth per request by scenario is published or one line says why
/// not.
#[test]
fn the_demo_judges_every_verdict_and_passes() {
    let mut run = Run::start_cli(&[], &[]);
    let admin = run.admin_addr();
    let (st, s) = run.finish(Duration::from_secs(300));
    let stderr = run.proc.stderr_text();
    let out = run.proc.stdout_text();
    assert_eq!(st.code(), Some(0), "{out}\n{stderr}");
    assert!(!stderr.contains("leak suspected"), "{stderr}");
    assert_eq!(s["suspect"], false, "{}", s["suspect_reasons"]);
    assert!(admin.port() > 0);
    // Every resource of the target judged, none merely "not judged" — except fds, whose GC
    // period the estimator read as 40 s (four of the demo's 10 s burst cycles) in one of four
    // debug-build runs of the suite on 2026-12-07, leaving the 2m window two troughs: that
    // one case may stay "not judged", with exactly that reason (a known gap, in the issue note).
    let target = process(&s, "target");
    for r in ["rss", "fds", "threads"] {
        let t = threshold(&s, &format!("leak:target:{r}"));
        let few_cycles = t["message"]
            .as_str()
            .is_some_and(|m| m.contains("the window holds too few sawtooth (GC or load) cycles"));
        if r == "fds" && t["status"] == "not_judged" && few_cycles {
            println!("demo: fds not judged this run: {t}");
            continue;
        }
        assert_eq!(t["status"], "pass", "{r}: {t}\n{out}");
        assert!(t["observed"].is_number(), "{r}: a slope: {t}");
        assert_eq!(target["verdict"][r], "ok", "{target}");
    }
    // Creep: both measures of each streaming scenario, the duration of the unary one, each
    // judged on a ratio of two 50 s windows of at least 100 samples.
    let creep: Vec<&serde_json::Value> = s["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"].as_str().unwrap().starts_with("creep:"))
        .collect();
    let names: Vec<&str> = creep.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "creep:chat-stream:duration",
            "creep:chat-stream:ttft",
            "creep:messages-stream:duration",
            "creep:messages-stream:ttft",
            "creep:chat-unary:duration"
        ]
    );
    for t in &creep {
        assert_eq!(t["status"], "pass", "{t}");
        let ratio = t["observed"].as_f64().unwrap();
        assert!(ratio > 0.0, "{t}");
    }
    for m in s["creep"]["measures"].as_array().unwrap() {
        assert!(
            count(m, &["first", "count"]) >= 100 && count(m, &["last", "count"]) >= 100,
            "{m}"
        );
    }
    assert!(
        out.contains("  creep (p99 per 50s window): first 0m10s–1m00s, last "),
        "{out}"
    );
    // Attribution: a published value, or one line saying why not (a clean mock has too
    // little growth to tell its scenarios apart).
    let block: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("  process target"))
        .take_while(|l| !l.starts_with("  threshold") && !l.starts_with("  creep"))
        .collect();
    let attribution: Vec<&&str> = block
        .iter()
        .filter(|l| l.contains("rss growth per request by scenario"))
        .collect();
    assert_eq!(attribution.len(), 1, "{out}");
    let published = target["windows"].as_array().unwrap().iter().any(|w| {
        w["rss_bytes_per_request_by_scenario"]["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .any(|sc| sc["bytes_per_request"].is_number())
    });
    if published {
        assert!(attribution[0].ends_with("by scenario:"), "a table: {out}");
    } else {
        assert!(
            attribution[0].starts_with(
                "    rss growth per request by scenario: none published; in the 2m window: "
            ),
            "{out}"
        );
        assert!(
            !block.iter().any(|l| l.contains("- (")),
            "no table of dashes: {out}"
        );
    }
}
