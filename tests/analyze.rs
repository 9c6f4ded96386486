//! `soakd analyze` through the binary: CSV files generated here with the monitor's own
//! synthetic series, bad input and arguments, and a real Prometheus serving history
//! backfilled with `promtool tsdb create-blocks-from openmetrics`.
//!
//! The backfilled TSDB holds 3 h at 15 s of two series: `instance="leaky"` grows 64 MiB/h under
//! a 16 MiB, 120 s sawtooth, `instance="flat"` has the sawtooth only. Prometheus serves it from
//! its data directory (retention 100 years, so the old blocks stay), and `soakd analyze
//! --prometheus` reads it back at `--step 15s` (one request) and at `--step 500ms` (21,601
//! points per series, more than the 11,000 Prometheus answers in one request: three requests).
//!
//! Live: a `soakd mock` leaking 64 KiB per request, soaked at 50 rps by a `soakd run` that
//! watches it; Prometheus scrapes soakd and the mock every second. After 45 s of scrapes,
//! `analyze --prometheus` with `--windows 10s,20s` over the last 40 s of
//! `soakd_process_resident_memory_bytes{process="target"}` must say leak, with a slope within
//! ±25 % of what the mock says it leaked (`soakd_mock_leaked_bytes`) over the same 40 s.
//!
//! Every process is bounded in time and killed on drop.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use soakd::monitor::synth::{mib, Synth, SynthSpec};

use common::prometheus::{free_port, run_tool, tool, Prometheus};
use common::{soakd_bin, Proc, TempDir};

/// How long one `soakd analyze` may take.
const ANALYZE_TIMEOUT: Duration = Duration::from_secs(120);

/// Unix time of the first sample of every generated series.
const T0: f64 = 1_700_000_000.0;

/// Runs `soakd analyze args…`; returns (exit code, stdout, stderr).
fn analyze(args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(soakd_bin());
    cmd.arg("analyze").args(args);
    let mut p = Proc::spawn("soakd analyze", cmd);
    let st = p.wait(ANALYZE_TIMEOUT);
    let code = st
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {st:?}"));
    (code, p.stdout_text(), p.stderr_text())
}

/// `analyze --json`: (exit code, the JSON).
fn analyze_json(args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = analyze(&all);
    let v = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("not JSON ({e}), exit {code}\nstdout:\n{out}\nstderr:\n{err}"));
    (code, v)
}

/// `spec` sampled every `step` s for `hours` h from [`T0`], as CSV.
fn csv(spec: SynthSpec, seed: u64, step: f64, hours: f64) -> String {
    let mut s = Synth::new(spec, seed);
    let mut out = String::from("timestamp_seconds,value\n");
    let n = (hours * 3600.0 / step).round() as u64;
    for i in 0..=n {
        let t = i as f64 * step;
        out.push_str(&format!("{},{:.0}\n", T0 + t, s.value(t)));
    }
    out
}

/// 64 MiB/h under a 16 MiB, 120 s sawtooth with 0.5 MiB of noise.
fn leak_spec() -> SynthSpec {
    SynthSpec {
        leak_per_hour: mib(64.0),
        saw_amplitude: mib(16.0),
        saw_period: 120.0,
        noise_sd: mib(0.5),
        ..SynthSpec::default()
    }
}

/// A 32 MiB, 120 s sawtooth with 0.5 MiB of noise, no leak.
fn saw_spec() -> SynthSpec {
    SynthSpec {
        saw_amplitude: mib(32.0),
        saw_period: 120.0,
        noise_sd: mib(0.5),
        ..SynthSpec::default()
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn f(v: &Value, what: &str) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"))
}

/// The window entry labelled `label` of a series.
fn window<'a>(series: &'a Value, label: &str) -> &'a Value {
    series["windows"]
        .as_array()
        .expect("windows")
        .iter()
        .find(|w| w["window"] == label)
        .unwrap_or_else(|| panic!("no window {label}: {series}"))
}

fn assert_within(got: f64, truth: f64, rel: f64, what: &str) {
    assert!(
        ((got - truth) / truth).abs() <= rel,
        "{what}: {got} is not within ±{}% of {truth}",
        rel * 100.0
    );
}

#[test]
fn csv_leak_is_called_with_its_slope() {
    let dir = TempDir::new("analyze-leak");
    let file = dir.write("leak.csv", &csv(leak_spec(), 1, 10.0, 3.0));
    let (code, j) = analyze_json(&[path(&file)]);
    assert_eq!(code, 1, "{j}");
    assert_eq!(j["verdict"], "leak");
    assert_eq!(j["resource"], "rss");
    assert_within(f(&j["slope_per_hour"], "slope"), mib(64.0), 0.10, "slope");
    let s = &j["series"][0];
    assert_eq!(s["labels"]["file"], path(&file));
    assert_eq!(s["points"], 1081);
    assert_eq!(s["interval_seconds"], 10.0);
    assert_eq!(s["verdict"], "leak");
    let long = window(s, "2h");
    assert_eq!(long["leak"], true);
    assert!(
        f(&long["slope_lower_per_hour"], "lower") > mib(50.0),
        "{long}"
    );
    assert!(f(&long["slope_upper_per_hour"], "upper") >= f(&long["slope_per_hour"], "slope"));
    assert!(f(&long["r2"], "r2") > 0.9, "{long}");
    assert_eq!(
        j["series"][0]["windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["window"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["5m", "30m", "2h"],
        "the monitor's default windows, shortest first"
    );
    // The text output says the same, in MiB/h.
    let (code, out, err) = analyze(&[path(&file)]);
    assert_eq!(code, 1, "{err}");
    assert!(
        out.starts_with("soakd analyze: rss, 1 series, windows 5m, 30m, 2h\n"),
        "{out}"
    );
    let head = "\n  1081 points over 3h, every 10s, baseline ";
    let at = out
        .find(head)
        .unwrap_or_else(|| panic!("no {head:?} in {out}"));
    let rest = &out[at + head.len()..];
    let (baseline, rest) = rest.split_once("MiB").expect("baseline in MiB");
    let baseline: f64 = baseline.parse().expect("baseline number");
    assert!((198.0..202.0).contains(&baseline), "{out}");
    assert!(rest.starts_with(", threshold +50MiB/h\n"), "{out}");
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with("verdict: leak (worst of 1 series), longest-window slope +6")
            && last.ends_with("MiB/h"),
        "{out}"
    );
    let row = out
        .lines()
        .find(|l| l.trim_start().starts_with("2h "))
        .expect("2h row");
    assert!(row.trim_end().ends_with("yes"), "{row}");
}

#[test]
fn csv_sawtooth_alone_is_ok() {
    let dir = TempDir::new("analyze-saw");
    let file = dir.write("saw.csv", &csv(saw_spec(), 2, 10.0, 3.0));
    let (code, j) = analyze_json(&[path(&file)]);
    assert_eq!(code, 0, "{j}");
    assert_eq!(j["verdict"], "ok");
    let slope = f(&j["slope_per_hour"], "slope");
    assert!(slope.abs() < mib(5.0), "flat series, slope {slope}");
    assert!(j["series"][0]["windows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|w| w["leak"] == false));
    let (code, out, _) = analyze(&[path(&file)]);
    assert_eq!(code, 0);
    assert!(out.contains("\nverdict: ok (worst of 1 series)"), "{out}");
}

#[test]
fn csv_too_short_for_the_longest_window_is_unknown() {
    let dir = TempDir::new("analyze-short");
    // 40 minutes: fills 5m and 30m, not 2h.
    let file = dir.write("short.csv", &csv(leak_spec(), 3, 10.0, 40.0 / 60.0));
    let (code, j) = analyze_json(&[path(&file)]);
    assert_eq!(code, 0, "{j}");
    assert_eq!(j["verdict"], "unknown");
    assert!(
        j.get("slope_per_hour").is_none(),
        "no slope without a fit: {j}"
    );
    let long = window(&j["series"][0], "2h");
    assert!(
        long.get("points").is_none() && long.get("slope_per_hour").is_none(),
        "no fit fields without a fit: {long}"
    );
    assert_eq!(long["leak"], false);
    assert!(
        long["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("no fit: it holds ")),
        "a not-judged cell says why: {long}"
    );
    let (code, out, _) = analyze(&[path(&file)]);
    assert_eq!(code, 0);
    assert!(
        out.contains("verdict: unknown: the longest window (2h) has no fit: it holds "),
        "{out}"
    );
}

#[test]
fn two_files_give_the_worst_verdict_and_no_top_level_slope() {
    let dir = TempDir::new("analyze-two");
    let saw = dir.write("saw.csv", &csv(saw_spec(), 4, 10.0, 3.0));
    let leak = dir.write("leak.csv", &csv(leak_spec(), 5, 10.0, 3.0));
    let (code, j) = analyze_json(&[path(&saw), path(&leak)]);
    assert_eq!(code, 1, "{j}");
    assert_eq!(j["verdict"], "leak");
    assert!(j.get("slope_per_hour").is_none(), "two series: {j}");
    let series = j["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    assert_eq!(series[0]["labels"]["file"], path(&saw));
    assert_eq!(series[0]["verdict"], "ok");
    assert_eq!(series[1]["labels"]["file"], path(&leak));
    assert_eq!(series[1]["verdict"], "leak");
    assert_within(
        f(&window(&series[1], "2h")["slope_per_hour"], "slope"),
        mib(64.0),
        0.10,
        "leak.csv slope",
    );
}

#[test]
fn config_thresholds_windows_and_resource_apply() {
    let dir = TempDir::new("analyze-config");
    // 8 MiB/h: under the default 50 MiB/h, over a config's 2 MiB/h.
    let small = SynthSpec {
        leak_per_hour: mib(8.0),
        noise_sd: mib(0.2),
        ..SynthSpec::default()
    };
    let file = dir.write("small.csv", &csv(small, 6, 10.0, 3.0));
    let (code, j) = analyze_json(&[path(&file)]);
    assert_eq!((code, j["verdict"].as_str()), (0, Some("ok")), "{j}");
    let cfg = dir.write(
        "soakd.toml",
        "[monitor]\nwindows = [\"10m\", \"1h\"]\n\n[monitor.thresholds]\n\
         rss_mib_per_hour = 2\nrss_percent_per_hour = 0.5\n",
    );
    let (code, j) = analyze_json(&[path(&file), "--config", path(&cfg)]);
    assert_eq!((code, j["verdict"].as_str()), (1, Some("leak")), "{j}");
    let labels: Vec<&str> = j["series"][0]["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["window"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["10m", "1h"], "the config's windows");
    assert_within(f(&j["slope_per_hour"], "slope"), mib(8.0), 0.10, "slope");
    // --windows overrides the config's.
    let (_, j) = analyze_json(&[path(&file), "--config", path(&cfg), "--windows", "20m,90m"]);
    assert_eq!(window(&j["series"][0], "90m")["leak"], true, "{j}");
    // fds: +90 an hour is a leak for the default 60 fds/h.
    let fds: String = std::iter::once("timestamp_seconds,value\n".to_string())
        .chain((0..=1080).map(|i| {
            let t = f64::from(i) * 10.0;
            format!("{},{}\n", T0 + t, 100.0 + (t / 40.0).floor())
        }))
        .collect();
    let file = dir.write("fds.csv", &fds);
    let (code, j) = analyze_json(&[path(&file), "--resource", "fds"]);
    assert_eq!((code, j["resource"].as_str()), (1, Some("fds")), "{j}");
    assert_within(f(&j["slope_per_hour"], "slope"), 90.0, 0.10, "fds slope");
    let (_, out, _) = analyze(&[path(&file), "--resource", "fds"]);
    assert!(
        out.contains("baseline 100 fds, threshold +60 fds/h"),
        "{out}"
    );
}

#[test]
fn unreadable_csv_exits_2_naming_file_and_line() {
    let dir = TempDir::new("analyze-bad");
    let good = "timestamp_seconds,value\n1700000000,100\n1700000010,101\n";
    let cases = [
        ("header.csv", "time,value\n1700000000,100\n".to_string(), 1),
        (
            "value.csv",
            format!("{good}1700000020,lots\n1700000030,102\n"),
            4,
        ),
        (
            "order.csv",
            format!("{good}1700000020,102\n1700000015,103\n"),
            5,
        ),
    ];
    for (name, text, line) in cases {
        let file = dir.write(name, &text);
        let (code, out, err) = analyze(&[path(&file)]);
        assert_eq!(code, 2, "{name}: {out}{err}");
        let at = format!("{}:{line}: ", path(&file));
        assert!(
            err.contains(&at),
            "{name}: stderr does not name {at:?}: {err}"
        );
        assert!(out.is_empty(), "{name}: no analysis on bad input: {out}");
    }
    // A good file followed by a missing one: nothing analysed, exit 2 naming the missing one.
    let ok = dir.write("ok.csv", good);
    let missing = dir.path().join("missing.csv");
    let (code, out, err) = analyze(&[path(&ok), path(&missing)]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains(path(&missing)), "{err}");
    assert!(out.is_empty(), "{out}");
}

#[test]
fn bad_config_and_arguments_exit_78_before_reading_anything() {
    let dir = TempDir::new("analyze-args");
    let missing = dir.path().join("missing.csv");
    let bad_cfg = dir.write("bad.toml", "[monitor]\nwindows = [\"5m\", \"banana\"]\n");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![path(&missing), "--config", path(&bad_cfg)],
            "monitor.windows[1] = \"banana\"",
        ),
        (
            vec![path(&missing), "--prometheus", "http://127.0.0.1:9"],
            "cannot be combined with CSV files",
        ),
        (
            vec!["--prometheus", "http://127.0.0.1:9", "--range", "1h"],
            "needs --query",
        ),
        (
            vec!["--prometheus", "http://127.0.0.1:9", "--query", "up"],
            "needs --range",
        ),
        (
            vec![
                "--prometheus",
                "http://127.0.0.1:9",
                "--query",
                "up",
                "--range",
                "a while",
            ],
            "--range = \"a while\"",
        ),
        (
            vec![path(&missing), "--query", "up"],
            "applies only with --prometheus",
        ),
        (vec![path(&missing), "--resource", "heap"], "--resource"),
        (vec![path(&missing), "--windows", "5m,soon"], "--windows[1]"),
        (vec![], "give CSV files"),
    ];
    for (args, needle) in cases {
        let (code, out, err) = analyze(&args);
        assert_eq!(code, 78, "{args:?}: {out}{err}");
        assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
        assert!(
            !err.contains("missing.csv:"),
            "{args:?}: read a file: {err}"
        );
    }
}

// ------------------------------------------------------------------------------------------
// A real Prometheus
// ------------------------------------------------------------------------------------------

/// Seconds between backfilled samples, and how many hours.
const PROM_STEP: f64 = 15.0;
const PROM_HOURS: f64 = 3.0;

/// OpenMetrics text of the two backfilled series (module docs), and the last timestamp.
fn openmetrics() -> (String, f64) {
    let mut out = String::from("# HELP soakd_test_rss Backfilled test series.\n");
    out.push_str("# TYPE soakd_test_rss gauge\n");
    let n = (PROM_HOURS * 3600.0 / PROM_STEP) as u64;
    for (instance, leak, seed) in [("leaky", mib(64.0), 7), ("flat", 0.0, 8)] {
        let mut s = Synth::new(
            SynthSpec {
                leak_per_hour: leak,
                saw_amplitude: mib(16.0),
                saw_period: 120.0,
                noise_sd: mib(0.25),
                ..SynthSpec::default()
            },
            seed,
        );
        for i in 0..=n {
            let t = i as f64 * PROM_STEP;
            out.push_str(&format!(
                "soakd_test_rss{{instance=\"{instance}\"}} {:.0} {}\n",
                s.value(t),
                T0 + t
            ));
        }
    }
    out.push_str("# EOF\n");
    (out, T0 + n as f64 * PROM_STEP)
}

/// A Prometheus serving the backfilled history; returns it with the last timestamp.
fn backfilled(dir: &TempDir) -> (Prometheus, f64) {
    let promtool = tool("promtool", "prometheus");
    let (text, end) = openmetrics();
    let om = dir.write("history.om", &text);
    let tsdb: PathBuf = dir.path().join("tsdb");
    run_tool(
        &promtool,
        &[
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            path(&om),
            path(&tsdb),
        ],
        Duration::from_secs(60),
    );
    let prom = Prometheus::start(dir.path(), "scrape_configs: []\n", &tsdb);
    (prom, end)
}

/// The series of `j` by its `instance` label.
fn by_instance<'a>(j: &'a Value, instance: &str) -> &'a Value {
    j["series"]
        .as_array()
        .expect("series")
        .iter()
        .find(|s| s["labels"]["instance"] == instance)
        .unwrap_or_else(|| panic!("no series with instance={instance}: {j}"))
}

#[test]
fn prometheus_history_is_read_in_chunks_and_judged() {
    let dir = TempDir::new("analyze-prom");
    let (prom, end) = backfilled(&dir);
    let url = prom.url();
    let end_arg = format!("{end}");
    for step in ["15s", "500ms"] {
        let (code, j) = analyze_json(&[
            "--prometheus",
            &url,
            "--query",
            "soakd_test_rss",
            "--range",
            "3h",
            "--end",
            &end_arg,
            "--step",
            step,
        ]);
        assert_eq!(code, 1, "step {step}: {j}");
        assert_eq!(j["verdict"], "leak", "step {step}");
        assert!(j.get("slope_per_hour").is_none(), "two series");
        let leaky = by_instance(&j, "leaky");
        let flat = by_instance(&j, "flat");
        for s in [leaky, flat] {
            assert_eq!(s["labels"]["__name__"], "soakd_test_rss", "{s}");
        }
        // 3 h at `step`: every evaluation point, across one (15 s) or three (500 ms) requests.
        let points = if step == "500ms" { 21_601 } else { 721 };
        assert_eq!(leaky["points"], points, "step {step}");
        assert_eq!(f(&leaky["last_timestamp"], "last"), end);
        assert_eq!(leaky["verdict"], "leak", "step {step}: {leaky}");
        assert_within(
            f(&window(leaky, "2h")["slope_per_hour"], "slope"),
            mib(64.0),
            0.10,
            &format!("leaky slope at step {step}"),
        );
        assert_eq!(flat["verdict"], "ok", "step {step}: {flat}");
        let flat_slope = f(&window(flat, "2h")["slope_per_hour"], "flat slope");
        assert!(flat_slope.abs() < mib(5.0), "step {step}: {flat_slope}");
    }
    // One series: the top-level slope; the text names the labels.
    let (code, out, err) = analyze(&[
        "--prometheus",
        &url,
        "--query",
        "soakd_test_rss{instance=\"flat\"}",
        "--range",
        "3h",
        "--end",
        &end_arg,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("series 1 of 1: {__name__=\"soakd_test_rss\", instance=\"flat\"}"),
        "{out}"
    );
    // A query that matches nothing.
    let (code, _, err) = analyze(&[
        "--prometheus",
        &url,
        "--query",
        "soakd_test_rss{instance=\"none\"}",
        "--range",
        "3h",
        "--end",
        &end_arg,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&url)
            && err.contains(r#"query "soakd_test_rss{instance=\"none\"}" returned no series"#),
        "{err}"
    );
    // A query Prometheus refuses.
    let (code, _, err) = analyze(&[
        "--prometheus",
        &url,
        "--query",
        "soakd_test_rss{",
        "--range",
        "3h",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("HTTP 400") && err.contains("bad_data"),
        "{err}"
    );
    drop(prom);
}

#[test]
fn unreachable_prometheus_exits_2() {
    let addr = free_port(); // nothing listens there any more
    let url = format!("http://{addr}");
    let (code, out, err) = analyze(&["--prometheus", &url, "--query", "up", "--range", "1h"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(&addr.to_string()) && err.contains("cannot connect"),
        "{err}"
    );
    assert!(out.is_empty(), "{out}");
}

/// Leak of the live mock, bytes per request.
const LIVE_LEAK_BYTES: &str = "65536";

/// Seconds of 1 s scrapes the live check reads back.
const LIVE_RANGE_SECS: u64 = 40;

/// An instant query's single value at `time`.
fn instant(prom: &Prometheus, query: &str, time: f64) -> Option<f64> {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("query", query)
        .append_pair("time", &format!("{time:.3}"))
        .finish();
    let (status, body) = common::http_get(prom.addr, &format!("/api/v1/query?{q}"));
    assert_eq!(status, 200, "{query}: {body}");
    let v: Value = serde_json::from_str(&body).expect("query JSON");
    let r = v["data"]["result"].as_array()?;
    assert!(r.len() <= 1, "{query}: more than one series: {body}");
    r.first()?["value"][1].as_str()?.parse().ok()
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

#[test]
fn prometheus_that_scraped_a_leaky_soak_gives_leak() {
    let dir = TempDir::new("analyze-live");
    let mock = common::Mock::start(&["--leak-bytes-per-request", LIVE_LEAK_BYTES]);
    let pid = mock.proc.pid().to_string();
    let mut run = common::Run::start_cli(
        &[
            "--target",
            &mock.url(),
            "--rate",
            "50",
            "--duration",
            "5m", // killed long before
            "--watch-pid",
            &pid,
            "--sample-interval",
            "1s",
        ],
        &[],
    );
    let admin = run.admin_addr();
    let prom = Prometheus::start(
        dir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  \
             - job_name: soakd\n    static_configs:\n      - targets: ['{admin}']\n  \
             - job_name: mock\n    static_configs:\n      - targets: ['{}']\n",
            mock.addr
        ),
        &dir.path().join("tsdb"),
    );
    let rss = r#"soakd_process_resident_memory_bytes{process="target"}"#;
    // Wait for LIVE_RANGE_SECS + 5 s of scrapes (bounded).
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let want = (LIVE_RANGE_SECS + 5) as f64;
    loop {
        let n = instant(&prom, &format!("count_over_time({rss}[2m])"), unix_now());
        if n.is_some_and(|n| n >= want) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Prometheus has {n:?} samples of {rss} after 120 s\nsoakd stderr:\n{}",
            run.proc.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let end = unix_now().floor() - 1.0;
    let start = end - LIVE_RANGE_SECS as f64;
    let end_arg = format!("{end}");
    let range = format!("{LIVE_RANGE_SECS}s");
    let (code, j) = analyze_json(&[
        "--prometheus",
        &prom.url(),
        "--query",
        rss,
        "--range",
        &range,
        "--end",
        &end_arg,
        "--step",
        "1s",
        "--windows",
        "10s,20s",
    ]);
    assert_eq!(code, 1, "{j}");
    assert_eq!(j["verdict"], "leak");
    let s = &j["series"][0];
    assert_eq!(s["labels"]["process"], "target", "{s}");
    assert_eq!(s["labels"]["job"], "soakd", "{s}");
    // The truth: what the mock says it leaked over the same range.
    let leaked = |t| instant(&prom, "soakd_mock_leaked_bytes", t).expect("mock leak gauge");
    let truth = (leaked(end) - leaked(start)) / LIVE_RANGE_SECS as f64 * 3600.0;
    assert!(truth > mib(1024.0), "the mock leaked {truth} B/h");
    let slope = f(&j["slope_per_hour"], "slope");
    eprintln!(
        "live: slope {:.0} MiB/h, mock truth {:.0} MiB/h",
        slope / mib(1.0),
        truth / mib(1.0)
    );
    assert_within(
        slope,
        truth,
        0.25,
        "live RSS slope against the mock's own leak",
    );
    drop(prom);
    drop(run);
    drop(mock);
}
