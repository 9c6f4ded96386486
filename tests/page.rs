//! The live page and the HTML report, in real headless Chromium, during and after a real
//! bounded soak of the binary against its mock (which leaks 64 KiB per request, so the RSS
//! fits have a clear slope).
//!
//! Checked: no console errors (read over the DevTools protocol, see `browser/cdp.rs`); every
//! chart has its expected series with points (the page publishes what it drew in
//! `window.soakd.charts`); every time chart of the report shades the run's idle, drain and
//! cooldown, and the storms ([[upstream.storms]], here on an upstream nothing is routed to, so
//! they only mark the timeline), and the storm table has a row per occurrence; the report's
//! RSS fit line has the summary's slope within 1 %; the report loads nothing but itself.
//! Screenshots go to `target/screenshots/` for a person.

#[path = "browser/cdp.rs"]
mod cdp;
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use cdp::{Browser, Tab};
use common::*;

const T: Duration = Duration::from_secs(120);

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("screenshots")
}

fn config(mock: &Mock, report: &Path) -> String {
    format!(
        r#"
[run]
duration = "24s"
grace = "5s"
idle = "2s"
cooldown = "2s"
seed = 11
report_html = "{report}"

[target]
url = "{url}"

[load]
rate = 30.0
arrivals = "constant"

[load.burst]
every = "10s"
length = "3s"
offset = "3s"
multiplier = 3.0

[[scenarios]]
name = "chat"
api = "openai"
max_tokens = 8

[monitor]
sample_interval = "500ms"
warmup = "0s"
windows = ["8s", "16s"]

[[monitor.processes]]
name = "target"
pid = {pid}

[upstream]
listen = "127.0.0.1:0"

[[upstream.storms]]
name = "squall"
start = "7s"
duration = "2s"
every = "9s"
kind = "status"
status = 503

[thresholds]
p99_ttft = "5s"
error_ratio = 0.5
creep_window = "6s"

[log]
progress_interval = "5s"
"#,
        report = report.display(),
        url = mock.url(),
        pid = mock.proc.pid(),
    )
}

/// `window.soakd.charts` as JSON.
fn charts(b: &mut Browser, tab: &Tab) -> Value {
    let text = b.eval(tab, "JSON.stringify(window.soakd.charts)");
    serde_json::from_str(text.as_str().unwrap()).unwrap()
}

/// Each chart has each named series with at least `min` points.
fn assert_series(charts: &Value, want: &[(&str, &[&str])], min: u64, page: &str) {
    for (chart, series) in want {
        let c = &charts[*chart];
        assert!(c.is_object(), "{page}: no chart {chart} in {charts}");
        for s in *series {
            let n = c["series"][*s].as_u64().unwrap_or(0);
            assert!(
                n >= min,
                "{page}: chart {chart} series {s} has {n} points: {c}"
            );
        }
    }
}

fn expected() -> Vec<(&'static str, &'static [&'static str])> {
    vec![
        ("rate", &["planned", "achieved"]),
        (
            "latency",
            &["latency p50", "latency p99", "TTFT p50", "TTFT p99"],
        ),
        ("outcomes", &["ok"]),
        ("streams", &["open (mean)", "open (max)"]),
        ("rss:target", &["rss", "rss min", "rss max"]),
        ("res:target", &["open fds", "threads"]),
        ("rss:soakd", &["rss", "rss min", "rss max"]),
        ("res:soakd", &["open fds", "threads"]),
    ]
}

/// Every time chart shades between `min` and `max` storm bands (spans labelled `squall`).
fn assert_storm_bands(charts: &Value, (min, max): (u64, u64), page: &str) {
    for (chart, _) in expected() {
        let spans = charts[chart]["spans"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let got = spans.iter().filter(|l| *l == "squall").count() as u64;
        assert!(
            (min..=max).contains(&got),
            "{page}: {got} storm bands on {chart}: {}",
            charts[chart]
        );
    }
}

/// The fit lines drawn on a process's RSS chart: label → [[x0, y0], [x1, y1]].
fn fit_lines(charts: &Value, process: &str) -> Vec<(String, [[f64; 2]; 2])> {
    let lines = charts[format!("rss:{process}")]["lines"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    lines
        .into_iter()
        .filter_map(|(label, v)| {
            let p = |i: usize, j: usize| v[i][j].as_f64();
            Some((label, [[p(0, 0)?, p(0, 1)?], [p(1, 0)?, p(1, 1)?]]))
        })
        .collect()
}

/// The JSON embedded in a report's data element.
fn report_data(html: &str) -> Value {
    let start = "<script id=\"soakd-data\" type=\"application/json\">";
    let json = html
        .split_once(start)
        .and_then(|(_, rest)| rest.split_once("</script>"))
        .map(|(j, _)| j)
        .expect("the data element");
    serde_json::from_str(json).unwrap()
}

/// Σ column × dt over the whole-run buffer: requests, from a per-second column.
fn total(series: &Value, column: &str) -> f64 {
    let run = &series["run"];
    run[column]
        .as_array()
        .unwrap()
        .iter()
        .zip(run["dt"].as_array().unwrap())
        .map(|(r, dt)| r.as_f64().unwrap_or(0.0) * dt.as_f64().unwrap())
        .sum()
}

/// The cells of every row of the creep table.
fn creep_rows(b: &mut Browser, tab: &Tab) -> Vec<Vec<String>> {
    let v = b.eval(
        tab,
        "Array.from(document.querySelectorAll('#table-creep tbody tr')).map(function (r) { \
         return Array.from(r.cells).map(function (c) { return c.textContent; }); })",
    );
    serde_json::from_value(v).unwrap()
}

fn assert_no_console_errors(b: &Browser, tab: &Tab, page: &str) {
    let errors = b.console_errors(tab);
    assert!(errors.is_empty(), "{page}: console errors: {errors:#?}");
}

#[test]
fn live_page_and_report_in_headless_chromium() {
    let mock = Mock::start(&[
        "--ttft",
        "5ms",
        "--chunk-delay",
        "2ms",
        "--chunks",
        "6",
        "--leak-bytes-per-request",
        "65536",
    ]);
    let dir = TempDir::new("page");
    let report = dir.path().join("report.html");
    let mut run = Run::start(&config(&mock, &report), &[]);
    let admin = run.admin_addr();
    wait_http_ok(admin, "/readyz", Duration::from_secs(20));
    // Past the first burst (3–6 s) and 10 s into the run, the span of the planned-rate meter
    // read below: ten points or more over 10 s, a burst among them, the last one out of it.
    // (The page itself is then awaited until both windows have fitted.)
    wait_for(
        "10 s of points, past the first burst",
        Duration::from_secs(60),
        || {
            let (_, series) = http_get(admin, "/series");
            let series: Value = serde_json::from_str(&series).map_err(|e| e.to_string())?;
            let col = |c: &str| -> Vec<f64> {
                series["run"][c]
                    .as_array()
                    .map(|b| b.iter().map(|v| v.as_f64().unwrap_or(0.0)).collect())
                    .unwrap_or_default()
            };
            let (t, burst) = (col("t"), col("burst"));
            let span = t.last().zip(t.first()).map_or(0.0, |(b, a)| b - a);
            let past = t.len() >= 10
                && span >= 10.0
                && burst.iter().any(|&b| b > 0.0)
                && burst.last() == Some(&0.0);
            past.then_some(())
                .ok_or(format!("{span} s, burst column {burst:?}"))
        },
    );

    let mut b = Browser::launch(dir.path());
    let live = b.tab();
    b.navigate(&live, &format!("http://{admin}/"));
    b.wait_true(
        &live,
        "!!(window.soakd && window.soakd.updates >= 1)",
        Duration::from_secs(20),
        "live page drew",
    );
    // Refreshes every 5 s: wait for a drawing with a fit line for each of the target's windows.
    b.wait_true(
        &live,
        "(function(c){ return !!c && Object.keys(c.lines).length >= 2; })\
         (window.soakd.charts['rss:target'])",
        Duration::from_secs(30),
        "live page has both fit lines",
    );
    let c = charts(&mut b, &live);
    assert_series(&c, &expected(), 5, "live page");
    assert!(
        c["rate"]["bands"].as_u64().unwrap() >= 1,
        "burst band: {}",
        c["rate"]
    );
    for (label, [[x0, _], [x1, _]]) in fit_lines(&c, "target") {
        assert!(x1 > x0, "{label}");
    }
    assert_storm_bands(&c, (1, 2), "live page");
    let rows = b.eval(
        &live,
        "document.querySelectorAll('#table-storms tbody tr').length",
    );
    assert!(rows.as_u64().unwrap_or(0) >= 1, "storm rows: {rows}");
    let rows = b.eval(
        &live,
        "document.querySelectorAll('#table-verdicts tbody tr').length",
    );
    assert_eq!(rows, 2, "a verdict row for soakd and for the target");
    let rows = b.eval(
        &live,
        "document.querySelectorAll('#table-thresholds tbody tr').length",
    );
    assert_eq!(
        rows, 12,
        "p99_ttft, error_ratio, the default dropped, the target's three leak verdicts and the \
         default creep verdicts of chat's duration, TTFT and (two-sided, with storms) its four \
         proxy-added stages"
    );
    // Creep: chat's duration and TTFT, each with the p99 of both 6 s windows and their ratio
    // once the last window lies after the first (12 s into the run), then its four
    // proxy-added stages (two-sided).
    b.wait_true(
        &live,
        "document.querySelectorAll('#table-creep tbody tr').length === 6 && \
         Array.from(document.querySelectorAll('#table-creep tbody tr')).slice(0, 2).every(function (r) { \
           return /^×\\d+\\.\\d\\d$/.test(r.cells[4].textContent); })",
        Duration::from_secs(30),
        "live page shows the creep ratios of duration and TTFT",
    );
    let creep = creep_rows(&mut b, &live);
    assert_eq!(creep[0][..2], ["chat", "duration"], "{creep:?}");
    assert_eq!(creep[1][..2], ["chat", "ttft"], "{creep:?}");
    let stages: Vec<&str> = creep[2..].iter().map(|r| r[1].as_str()).collect();
    assert_eq!(
        stages,
        [
            "added_request",
            "added_first_token",
            "added_chunk",
            "added_response"
        ],
        "{creep:?}"
    );
    for r in &creep[..2] {
        assert!(r[2].contains(" ms (n="), "{r:?}");
        assert!(r[3].contains(" ms (n="), "{r:?}");
    }
    for r in &creep {
        assert!(
            ["pass", "fail", "pending", "measured"].contains(&r[5].as_str()),
            "{r:?}"
        );
    }
    // The planned rate is the plan's over the last ~10 s: 30 rps with 3 s of 90 rps in every
    // 10 s is 48/s (43–50 over the 9–10 s the meter spans), neither 30 nor 90.
    let planned = b.eval(
        &live,
        "Array.from(document.querySelectorAll('#tiles .tile')).filter(function (t) { \
         return t.querySelector('.k').textContent === 'planned rate (10 s)'; }) \
         .map(function (t) { return parseFloat(t.querySelector('.v').textContent); })[0]",
    );
    let planned = planned.as_f64().unwrap_or(f64::NAN);
    assert!(
        (40.0..=55.0).contains(&planned),
        "planned rate tile: {planned}"
    );
    for url in b.requests(&live) {
        assert!(
            url.starts_with(&format!("http://{admin}/")),
            "live page requested {url}"
        );
    }
    b.screenshot(&live, &screenshots().join("live.png"));
    assert_no_console_errors(&b, &live, "live page");

    let (st, summary) = run.finish(T);
    // The mock leaks, so the run fails on its RSS leak verdict, and the report says so.
    assert_eq!(st.code(), Some(1), "{}", run.proc.stderr_text());
    let failed: Vec<&str> = failed_thresholds(&summary);
    assert!(failed.contains(&"leak:target:rss"), "{failed:?}");
    assert!(report.is_file(), "no report at {}", report.display());
    let data = report_data(&std::fs::read_to_string(&report).unwrap());
    // The plan: 30/s for 24 s, 90/s in the bursts at 3–6 s, 13–16 s and 23–24 s (7 s in all):
    // 720 + 7 × 60 = 1140 requests; constant arrivals send that. (The engine adds up the
    // planned requests every 100 ms, so each burst edge can be off by up to 6 requests.)
    let (planned, sent) = (
        total(&data["series"], "planned_rps"),
        total(&data["series"], "achieved_rps"),
    );
    assert!((planned - 1140.0).abs() < 25.0, "planned {planned}");
    assert!(
        (sent - num(&summary, &["requests_sent"])).abs() < 0.5,
        "sent {sent}"
    );
    assert!(
        (sent - planned).abs() < planned * 0.02,
        "sent {sent} vs planned {planned}"
    );

    let rep = b.tab();
    let url = format!("file://{}", report.display());
    b.navigate(&rep, &url);
    b.wait_true(
        &rep,
        "!!(window.soakd && window.soakd.mode === 'report' && window.soakd.updates >= 1)",
        Duration::from_secs(20),
        "report drew",
    );
    let c = charts(&mut b, &rep);
    assert_series(&c, &expected(), 15, "report");
    assert!(
        c["rate"]["bands"].as_u64().unwrap() >= 2,
        "two bursts: {}",
        c["rate"]
    );
    assert_eq!(
        b.requests(&rep),
        vec![url.clone()],
        "the report loads nothing else"
    );
    // Storms at 7–9 s and 16–18 s of the 24 s run (the next would start at 25 s).
    assert_storm_bands(&c, (2, 2), "report");
    let rows = b.eval(
        &rep,
        "document.querySelectorAll('#table-storms tbody tr').length",
    );
    assert_eq!(rows, 2, "a storm row per occurrence");
    assert_eq!(
        summary["proxy"]["storms"].as_array().map(Vec::len),
        Some(2),
        "{}",
        summary["proxy"]
    );
    let verdict = b.eval(&rep, "document.getElementById('verdict').textContent");
    assert_eq!(verdict, "fail");
    // The memory arc: a row per process and resource, the target's memory plateau as the
    // summary has it. (Under 10 s bursts a 24 s load holds two troughs one cycle apart, too few
    // to judge a plateau: "unknown"; tests/memory.rs judges plateaus and growth.)
    let rows = b.eval(
        &rep,
        "document.querySelectorAll('#table-arc tbody tr').length",
    );
    assert_eq!(rows, 6, "soakd and the target, memory, fds and threads");
    let target_memory = b.eval(
        &rep,
        "Array.from(document.querySelectorAll('#table-arc tbody tr')).map(function (r) { \
         return r.textContent; }).filter(function (t) { return t.indexOf('targetmemory (rss)') === 0; })[0]",
    );
    let target = summary["monitor"]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "target")
        .unwrap();
    let plateau = &target["arc"]["plateau"]["rss"];
    let want = match plateau["reached"].as_bool() {
        Some(true) => "after".to_string(),
        Some(false) => "none (+".to_string(),
        None => format!(
            "{}unknown",
            target["arc"]["peak"]["rss"].as_f64().map_or("–", |_| "MiB")
        ),
    };
    assert!(
        target_memory.as_str().is_some_and(|t| t.contains(&want)),
        "the target's plateau cell is the summary's ({plateau}): {target_memory}"
    );
    // The report's creep table is the summary's: the same ratios, judged.
    let creep = creep_rows(&mut b, &rep);
    let measures = summary["creep"]["measures"].as_array().unwrap();
    assert_eq!(creep.len(), measures.len(), "{creep:?}");
    // Duration and TTFT have ratios; the proxy-added stages have no samples here (nothing is
    // routed through the upstream), so no ratio: a dash.
    for (i, (row, m)) in creep.iter().zip(measures).enumerate() {
        match m["ratio"].as_f64() {
            Some(ratio) => assert_eq!(row[4], format!("×{ratio:.2}"), "{row:?}"),
            None => {
                assert!(i >= 2, "duration and TTFT have a ratio at the end: {m}");
                assert_eq!(row[4], "–", "{row:?}");
            }
        }
        let name = format!("creep:chat:{}", m["measure"].as_str().unwrap());
        let status = summary["thresholds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .map_or("measured", |t| t["status"].as_str().unwrap());
        assert_eq!(row[5], status, "{row:?}");
    }
    // Issue 27: a leak threshold shows the limit it was held to (it showed '–'), and each
    // verdict cell its reason.
    let limit = b.eval(
        &rep,
        "Array.from(document.querySelectorAll('#table-thresholds tbody tr')) \
         .filter(function (r) { return r.cells[0].textContent === 'leak:target:fds'; }) \
         .map(function (r) { return r.cells[3].textContent; })[0]",
    );
    assert_eq!(limit, "60", "fds_per_hour");
    let why = b.eval(
        &rep,
        "Array.from(document.querySelectorAll('#table-verdicts tbody tr')) \
         .filter(function (r) { return r.cells[0].textContent === 'target'; }) \
         .map(function (r) { return r.cells[2].querySelector('.why').textContent; })[0]",
    );
    let why = why.as_str().unwrap_or_default();
    assert!(
        why.starts_with("+") && why.contains("over the 16s window: lower bound"),
        "the rss verdict's reason: {why:?}"
    );
    // The run's states other than the load are shaded on every time chart.
    for chart in [
        "rate",
        "latency",
        "outcomes",
        "streams",
        "rss:target",
        "res:target",
        "rss:soakd",
    ] {
        let phases: Vec<&Value> = c[chart]["spans"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| *l != "squall")
            .collect();
        assert_eq!(
            phases,
            [&json!("idle"), &json!("drain"), &json!("cooldown")],
            "{chart}: {}",
            c[chart]
        );
    }

    // Each window's drawn RSS line has the summary's slope (within 1 %) and span.
    let target = summary["monitor"]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "target")
        .unwrap()
        .clone();
    let origin = num(&summary, &["monitor", "started_unix_secs"]);
    let lines = fit_lines(&c, "target");
    let mut checked = 0;
    for w in target["windows"].as_array().unwrap() {
        let Some(fit) = w["rss"].as_object() else {
            continue;
        };
        let label = format!("fit {} ", w["window"].as_str().unwrap());
        let (_, [[x0, y0], [x1, y1]]) = lines
            .iter()
            .find(|(l, _)| l.starts_with(&label))
            .unwrap_or_else(|| panic!("no line {label:?} in {lines:?}"));
        let want = fit["slope_per_sec"].as_f64().unwrap();
        let drawn = (y1 - y0) / (x1 - x0);
        assert!(want > 100_000.0, "the mock leaks ~2 MiB/s: {want}");
        assert!(
            (drawn - want).abs() <= want.abs() * 0.01,
            "{label}: drawn slope {drawn} vs summary {want}"
        );
        let from = origin + fit["from_secs"].as_f64().unwrap();
        let to = origin + fit["to_secs"].as_f64().unwrap();
        assert!(
            (x0 - from).abs() < 1e-3 && (x1 - to).abs() < 1e-3,
            "{label}: span"
        );
        let intercept = fit["intercept"].as_f64().unwrap();
        let at_x0 = intercept + want * (x0 - origin);
        assert!(
            (y0 - at_x0).abs() <= at_x0.abs() * 1e-6,
            "{label}: intercept"
        );
        checked += 1;
    }
    assert_eq!(checked, 2, "both windows have an RSS fit: {target}");
    b.screenshot(&rep, &screenshots().join("report.png"));
    assert_no_console_errors(&b, &rep, "report");
    b.close();
}

#[test]
fn an_unwritable_report_path_exits_78_before_binding() {
    let dir = TempDir::new("page-bad");
    let cfg = dir.write("soakd.toml", "[run]\nduration = \"5s\"\n");
    // Claim a port; soakd must fail on the report before trying to bind it.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    for bad in [
        dir.path().join("missing").join("r.html"),
        dir.path().to_path_buf(),
        PathBuf::from("/proc/soakd-report.html"),
    ] {
        let out = std::process::Command::new(soakd_bin())
            .args(["run", "--config"])
            .arg(&cfg)
            .args(["--admin-listen", &busy_addr, "--report"])
            .arg(&bad)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{}: {err}", bad.display());
        assert!(
            err.contains("run.report_html") && !err.contains("bind"),
            "{}: {err}",
            bad.display()
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no stray file, only the config"
    );
}

#[test]
fn sigterm_still_writes_the_report() {
    let mock = Mock::start(&["--ttft", "2ms", "--chunk-delay", "1ms", "--chunks", "3"]);
    let dir = TempDir::new("page-term");
    let report = dir.path().join("r.html");
    let cfg = format!(
        "[run]\nduration = \"forever\"\ngrace = \"2s\"\n[target]\nurl = \"{}\"\n\
         [load]\nrate = 20.0\n[[scenarios]]\nname = \"chat\"\napi = \"openai\"\n",
        mock.url()
    );
    let mut run = Run::start(&cfg, &["--report", report.to_str().unwrap()]);
    let admin = run.admin_addr();
    wait_http_ok(admin, "/readyz", Duration::from_secs(20));
    // A few points of the series with requests in them, then the signal.
    wait_for(
        "three points with requests",
        Duration::from_secs(30),
        || {
            let (_, series) = http_get(admin, "/series");
            let series: Value = serde_json::from_str(&series).map_err(|e| e.to_string())?;
            let sent = series["run"]["achieved_rps"]
                .as_array()
                .map_or(0, |a| a.iter().filter(|v| v.as_f64() > Some(0.0)).count());
            (sent >= 3)
                .then_some(())
                .ok_or(format!("{sent} points with requests"))
        },
    );
    run.proc.signal(libc::SIGTERM);
    let (st, summary) = run.finish(T);
    assert_eq!(st.code(), Some(0), "{}", run.proc.stderr_text());
    let html = std::fs::read_to_string(&report).unwrap();
    let data = report_data(&html);
    assert_eq!(data["summary"]["phase"], "done");
    assert_eq!(data["summary"]["requests_sent"], summary["requests_sent"]);
    let sent_per_point = total(&data["series"], "achieved_rps");
    let sent = summary["requests_sent"].as_f64().unwrap();
    assert!(
        (sent_per_point - sent).abs() < 0.5,
        "the series counts every request sent: {sent_per_point} vs {sent}"
    );
    assert!(!html.contains("src=\"assets/"), "assets are inlined");
}

#[test]
fn the_console_error_reader_sees_errors_and_exceptions() {
    let dir = TempDir::new("page-probe");
    let mut b = Browser::launch(dir.path());
    let tab = b.tab();
    b.navigate(
        &tab,
        "data:text/html,<p>probe</p><script>console.error('probe-error');\
         setTimeout(function(){ null.boom; }, 0);</script>",
    );
    b.wait_true(
        &tab,
        "document.readyState === 'complete'",
        Duration::from_secs(10),
        "load",
    );
    std::thread::sleep(Duration::from_millis(300));
    let errors = b.console_errors(&tab);
    let text = format!("{errors:?}");
    assert!(text.contains("probe-error"), "{text}");
    assert!(text.contains("Runtime.exceptionThrown"), "{text}");
    let quiet = b.tab();
    b.navigate(&quiet, "data:text/html,<p>quiet</p>");
    assert!(b.console_errors(&quiet).is_empty(), "errors are per tab");
    b.close();
}

/// A day-long run, fed to the series as synthetic ticks, rendered as a report: the whole run
/// comes from the halved buffer (256 s points) and the last hour from the 10 s ring.
#[test]
fn a_day_long_synthetic_report_renders_in_both_views() {
    use soakd::monitor::{
        FitReport, MonitorReport, ProcessReport, ResourceVerdicts, Verdict, WindowReport,
    };
    use soakd::report::{Latencies, Snapshot, Summary};
    use soakd::series::{Series, TickInput};
    use soakd::stats::creep::{CreepMeasure, CreepReport, WindowStat};
    use soakd::stats::window::Span;
    use soakd::upstream::report::ProxyScenario;
    use soakd::upstream::{ErrorOrigins, GiveUps, ProxyReport};
    use soakd::verdict::{RawThresholds, VerdictInputs};

    const T0: f64 = 1_700_000_000.0;
    const DAY: u64 = 24 * 3600;
    let mib = 1024.0 * 1024.0;
    let fit = |slope: f64, intercept: f64| FitReport {
        slope_per_sec: slope,
        slope_per_hour: slope * 3600.0,
        intercept,
        from_secs: DAY as f64 - 7200.0,
        to_secs: DAY as f64 - 10.0,
        slope_lower_per_hour: Some(slope * 3600.0 * 0.9),
        slope_upper_per_hour: Some(slope * 3600.0 * 1.1),
        trend_p: 0.001,
        period_secs: None,
        r2: 0.97,
        points: 120,
    };
    let monitor = |i: u64| MonitorReport {
        started_unix_secs: T0,
        sample_interval_secs: 5.0,
        windows: vec!["30m".into(), "2h".into()],
        processes: vec![ProcessReport {
            fail_on_leak: true,
            arc: Default::default(),
            tree: None,
            name: "target".into(),
            source: "pid",
            up: true,
            pid: Some(7),
            restarts: 0,
            samples: i,
            baseline_rss_bytes: Some(200.0 * mib),
            peak_rss_bytes: Some(300.0 * mib),
            // 200 MiB growing 4 MiB/h with a 20 MiB sawtooth.
            rss_bytes: Some(
                200.0 * mib + 4.0 * mib * i as f64 / 3600.0 + (i % 600) as f64 * mib / 30.0,
            ),
            open_fds: Some(40.0 + (i % 7) as f64),
            threads: Some(12.0),
            cpu_seconds: 0.0,
            windows: ["30m", "2h"]
                .iter()
                .map(|w| WindowReport {
                    window: w.to_string(),
                    rss: Some(fit(4.0 * mib / 3600.0, 200.0 * mib)),
                    fds: Some(fit(0.0, 42.0)),
                    threads: Some(fit(0.0, 12.0)),
                    request_rate_per_sec: Some(50.0),
                    rss_bytes_per_request: Some(22.0),
                    avg_open_streams: Some(10.0),
                    rss_bytes_per_sec_per_open_stream: Some(110.0),
                    rss_bytes_per_request_by_scenario: Default::default(),
                })
                .collect(),
            retained_after_burst_bytes: Some(2.0 * mib),
            verdict: ResourceVerdicts {
                rss: Verdict::Ok,
                fds: Verdict::Ok,
                threads: Verdict::Ok,
            },
            reason: Default::default(),
            limit_per_hour: Default::default(),
            source_label: "pid 4242".into(),
        }],
    };
    let mut s = Series::new(T0, 1.0);
    let mut lat = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
    let mut outcomes = [0u64; soakd::client::Outcome::ALL.len()];
    let mut planned = 0.0;
    for i in 1..=DAY {
        // A 2 min burst every 30 min, at 10–12 min past each half hour.
        let burst = (600..720).contains(&(i % 1800));
        planned += if burst { 150.0 } else { 50.0 };
        outcomes[0] += if burst { 149 } else { 50 };
        outcomes[3] += u64::from(burst);
        let mut t = TickInput {
            at: T0 + i as f64,
            requests_planned: planned,
            requests_sent: planned as u64,
            burst,
            outcomes,
            streams_active: if burst { 30.0 } else { 10.0 },
            ..TickInput::default()
        };
        if i % 10 == 0 {
            for k in 0..20 {
                lat.record(20_000 + (i % 3600) * 10 + k * 500).unwrap();
            }
            t.latency = Some(lat.clone());
            t.ttft = Some(lat.clone());
        }
        if i % 5 == 0 {
            t.monitor = Some(monitor(i));
        }
        s.tick(t);
    }
    // A day whose chat TTFT crept from 213 ms to 2.31 s between the first 10 min window after
    // the 3 min warm-up and the last, while its duration held.
    let stat = |count, p99| Some(WindowStat { count, p99 });
    let creep = CreepReport {
        window_secs: 600.0,
        step_secs: 100.0,
        first: Span {
            from_secs: 180.0,
            to_secs: 780.0,
        },
        first_complete: true,
        last: Some(Span {
            from_secs: 85_700.0,
            to_secs: 86_300.0,
        }),
        comparable_from_secs: 1380.0,
        measures: vec![
            CreepMeasure {
                scenario: "chat".into(),
                measure: "duration".into(),
                first: stat(30_000, 1.02),
                last: stat(30_000, 1.04),
                ratio: Some(1.04 / 1.02),
            },
            CreepMeasure {
                scenario: "chat".into(),
                measure: "ttft".into(),
                first: stat(30_000, 0.213),
                last: stat(30_000, 2.31),
                ratio: Some(2.31 / 0.213),
            },
        ],
    };
    let snapshot = Snapshot {
        run_id: "synthetic-day".into(),
        shard: 0,
        shards: 1,
        target: "http://127.0.0.1:1/".into(),
        phase: "done",
        state: "drain",
        phases: vec![],
        elapsed_seconds: DAY as f64,
        target_rate: 0.0,
        achieved_rate: 0.0,
        planned_rate: 0.0,
        in_flight: 0,
        streams_active: 0,
        requests_sent: planned as u64,
        requests_finished: planned as u64,
        outcomes: [("ok", outcomes[0]), ("http_5xx", outcomes[3])].into(),
        dropped: Default::default(),
        streams: Default::default(),
        output_tokens: 0,
        latency: Latencies::default(),
        scenarios: vec![],
        monitor: s.monitor().cloned(),
        // A two-sided soak through a proxy that ignores most cancels.
        proxy: Some(ProxyReport {
            upstream: "127.0.0.1:9600".into(),
            sent: planned as u64,
            give_ups: GiveUps {
                propagated: 3,
                not_propagated: 64,
                orphaned: 2,
                wasted_output_tokens: 1280,
                ..GiveUps::default()
            },
            errors: ErrorOrigins {
                upstream: 4,
                proxy: 1,
                never_reached: 0,
            },
            scenarios: vec![ProxyScenario {
                name: "chat".into(),
                upstream_requests: planned as u64,
                joined: planned as u64 - 1,
                orphans_now: 1,
                orphans_total: 2,
                ..ProxyScenario::default()
            }],
            ..ProxyReport::default()
        }),
        creep: Some(creep.clone()),
        thresholds: RawThresholds::default().validate().unwrap().evaluate(
            &VerdictInputs {
                requests: planned as u64,
                creep: Some(creep),
                ..VerdictInputs::default()
            },
            true,
        ),
    };
    let summary = Summary::new(snapshot, Duration::from_secs(DAY), "fail", 1);
    let json = serde_json::to_vec(&s.json()).unwrap();
    let html = soakd::page::report::html(&json, &summary);
    let dir = TempDir::new("page-day");
    let path = dir.path().join("day.html");
    std::fs::write(&path, &html).unwrap();

    let mut b = Browser::launch(dir.path());
    let tab = b.tab();
    b.navigate(&tab, &format!("file://{}", path.display()));
    b.wait_true(
        &tab,
        "!!(window.soakd && window.soakd.updates >= 1)",
        Duration::from_secs(20),
        "drew",
    );
    // The two-sided card shows every give-up by its fate.
    let proxy: Value = serde_json::from_str(
        b.eval(&tab, "JSON.stringify(window.soakd.proxy)")
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (
            &proxy["give_ups"],
            &proxy["not_propagated"],
            &proxy["orphaned"],
            &proxy["wasted_output_tokens"]
        ),
        (&69.into(), &64.into(), &2.into(), &1280.into()),
        "{proxy}"
    );
    let card = b.eval(
        &tab,
        "document.getElementById('card-proxy').hidden ? '' : document.getElementById('card-proxy').innerText",
    );
    let card = card.as_str().unwrap();
    assert!(
        card.contains("not propagated") && card.contains("open 1, total 2"),
        "{card}"
    );
    let run = charts(&mut b, &tab);
    // 86,400 s in 256 s points: 337 points, 48 bursts of 2 min.
    assert_eq!(run["rate"]["points"], 338, "{}", run["rate"]);
    assert_eq!(run["rate"]["bands"], 48);
    assert_series(
        &run,
        &[("rss:target", &["rss", "rss min", "rss max"])],
        300,
        "day, whole run",
    );
    assert_eq!(fit_lines(&run, "target").len(), 2);
    b.eval(&tab, "document.querySelector('[data-view=recent]').click()");
    let recent = charts(&mut b, &tab);
    // The 10 s ring: 360 closed points (the open one is empty at a round 10 s).
    assert_eq!(recent["rate"]["points"], 360, "{}", recent["rate"]);
    assert_eq!(recent["rate"]["bands"], 2, "{}", recent["rate"]);
    assert_series(
        &recent,
        &[
            ("rate", &["planned", "achieved"]),
            ("latency", &["latency p50", "TTFT p99"]),
            ("outcomes", &["ok", "http_5xx"]),
            ("rss:target", &["rss"]),
            ("res:target", &["open fds", "threads"]),
        ],
        300,
        "day, last hour",
    );
    // The 2 h fit starts before the last hour: it is clipped to the view, slope unchanged.
    for (label, [[x0, y0], [x1, y1]]) in fit_lines(&recent, "target") {
        let slope = (y1 - y0) / (x1 - x0);
        assert!(
            (slope - 4.0 * mib / 3600.0).abs() < 1e-6 * slope,
            "{label}: {slope}"
        );
        assert!(x0 >= T0 + DAY as f64 - 3600.0 - 10.0, "{label}: clipped");
    }
    assert_eq!(
        creep_rows(&mut b, &tab),
        [
            [
                "chat",
                "duration",
                "1.02 s (n=30000)",
                "1.04 s (n=30000)",
                "×1.02",
                "pass"
            ],
            [
                "chat",
                "ttft",
                "213.0 ms (n=30000)",
                "2.31 s (n=30000)",
                "×10.85",
                "fail"
            ]
        ]
    );
    let head = b.eval(
        &tab,
        "Array.from(document.querySelectorAll('#table-creep thead th')).map(function (h) { \
         return h.textContent; }).join('|')",
    );
    assert_eq!(
        head,
        "scenario|measure|first 3m00s–13m00s|last 23h48m20s–23h58m20s|ratio|verdict"
    );
    b.screenshot(&tab, &screenshots().join("report-day-last-hour.png"));
    assert_no_console_errors(&b, &tab, "day report");
    b.close();
}
