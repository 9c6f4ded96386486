//! Every API through the real `soakd` binary against the real mock over loopback: each API
//! streamed and not, TTFT on any delta vs text only with reasoning and tool-call answers,
//! mock faults classified per API, and bad API settings rejected before anything binds.
//!
//! Runs are a few seconds each at low rates, one test at a time (they share the machine's
//! cores with the processes they start); TTFT values are checked against the mock's configured
//! delays (first content at `ttft`, one content chunk every `chunk_delay`): never below them,
//! and below the value the other `ttft_on` rule would give.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const T: Duration = Duration::from_secs(90);

/// Held by each test: one soak at a time, so runs do not skew each other's timings.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    // A failed test poisons the lock; the next one may still run.
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn config(target: &str, rate: f64, scenarios: &str) -> String {
    format!(
        r#"
[run]
grace = "5s"
seed = 11

[target]
url = "{target}"

[load]
rate = {rate}
arrivals = "constant"

[monitor]
sample_interval = "1s"
warmup = "0s"

[log]
progress_interval = "off"

{scenarios}
"#
    )
}

/// A `[[scenarios]]` table.
fn scenario(name: &str, api: &str, extra: &str) -> String {
    format!("[[scenarios]]\nname = \"{name}\"\napi = \"{api}\"\n{extra}\n")
}

fn by_name<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no scenario {name} in {summary}"))
}

/// Requests of a scenario, all outcomes together.
fn requests(sc: &Value) -> u64 {
    sc["requests"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum()
}

/// The metric the dashboards' `scenario` variable takes its values from:
/// `label_values(<metric>{…}, scenario)`, the same in every dashboard that has the variable.
fn dashboard_scenario_metric() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana/dashboards");
    let mut found = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let d: Value =
            serde_json::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap()).unwrap();
        for v in d["templating"]["list"].as_array().unwrap() {
            if v["name"] == "scenario" {
                let def = v["query"]["query"].as_str().unwrap();
                let inner = def.strip_prefix("label_values(").unwrap();
                found.insert(inner.split(['{', ',']).next().unwrap().trim().to_string());
            }
        }
    }
    assert_eq!(
        found.len(),
        1,
        "one source metric for the scenario variable: {found:?}"
    );
    found.pop_first().unwrap()
}

#[test]
fn every_api_streamed_and_not_completes_with_its_tokens() {
    let _serial = one_at_a_time();
    // 1 reasoning chunk (APIs that have reasoning) + 4 answer chunks per answer.
    let mock = Mock::start(&[
        "--ttft",
        "5ms",
        "--chunk-delay",
        "1ms",
        "--chunks",
        "4",
        "--reasoning-chunks",
        "1",
    ]);
    let scenarios = [
        scenario("chat", "openai", ""),
        scenario("chat-unary", "openai", "stream = false"),
        scenario("responses", "openai-responses", ""),
        scenario("responses-unary", "openai-responses", "stream = false"),
        // A budget below the mock's chunks: `response.incomplete` for max_output_tokens, ok.
        scenario("responses-budget", "openai-responses", "max_tokens = 2"),
        scenario("legacy", "openai-completions", ""),
        scenario("legacy-unary", "openai-completions", "stream = false"),
        scenario("embed", "openai-embeddings", "inputs_per_request = 3"),
        scenario("messages", "anthropic", ""),
        scenario("messages-unary", "anthropic", "stream = false"),
    ]
    .concat();
    let mut run = Run::start(
        &config(&mock.url(), 100.0, &scenarios),
        &["--duration", "forever"],
    );
    let admin = run.admin_addr();
    wait_http_ok(admin, "/readyz", Duration::from_secs(20));
    // Until 250 requests are sent and every scenario has 15 or more (both checked in the
    // summary below), which also gives the dashboards' scenario variable a series of each,
    // whatever its API.
    let metric = dashboard_scenario_metric();
    wait_for("15 requests of every scenario", T, || {
        let (_, metrics) = try_http_get(admin, "/metrics").map_err(|e| e.to_string())?;
        let few: Vec<(&str, f64)> = [
            "chat",
            "chat-unary",
            "responses",
            "responses-unary",
            "responses-budget",
            "legacy",
            "legacy-unary",
            "embed",
            "messages",
            "messages-unary",
        ]
        .into_iter()
        .map(|name| (name, metric_sum(&metrics, &metric, &[("scenario", name)])))
        .filter(|&(_, n)| n < 15.0)
        .collect();
        let all = metric_sum(&metrics, &metric, &[]);
        (few.is_empty() && all >= 250.0)
            .then_some(())
            .ok_or(format!("{all} in all; {metric} under 15: {few:?}"))
    });
    run.proc.signal(libc::SIGTERM);
    let (st, s) = run.finish(T);
    assert_eq!(st.code(), Some(0), "{}", run.output());
    let sent = count(&s, &["requests_sent"]);
    assert!(sent >= 250, "{sent}");
    assert_eq!(count(&s, &["outcomes", "ok"]), sent, "{s}");
    // (scenario, streamed, content chunks per answer, output tokens per answer)
    for (name, streamed, chunks, tokens) in [
        ("chat", true, 5, 5),
        ("chat-unary", false, 0, 5),
        ("responses", true, 5, 5),
        ("responses-unary", false, 0, 5),
        ("responses-budget", true, 3, 3),
        ("legacy", true, 4, 4),
        ("legacy-unary", false, 0, 4),
        ("embed", false, 0, 0),
        ("messages", true, 5, 5),
        ("messages-unary", false, 0, 5),
    ] {
        let sc = by_name(&s, name);
        let n = count(sc, &["requests", "ok"]);
        assert!(n >= 15, "{name}: {sc}");
        assert_eq!(requests(sc), n, "{name}: every request ok: {sc}");
        let completed = count(sc, &["streams", "completed"]);
        assert_eq!(completed, if streamed { n } else { 0 }, "{name}: {sc}");
        assert_eq!(count(sc, &["chunks"]), chunks * n, "{name}: {sc}");
        assert_eq!(count(sc, &["output_tokens"]), tokens * n, "{name}: {sc}");
    }
}

/// The summary of a run of `scenarios` against `mock` with every scenario's `ttft_on`.
fn ttft_run(mock: &Mock, ttft_on: &str, apis: &[&str]) -> Run {
    let scenarios: String = apis
        .iter()
        .map(|api| scenario(api, api, &format!("ttft_on = \"{ttft_on}\"")))
        .collect();
    Run::start(
        &config(&mock.url(), 20.0, &scenarios),
        &["--duration", "3s"],
    )
}

#[test]
fn ttft_on_text_skips_reasoning_and_tool_calls_and_any_does_not() {
    let _serial = one_at_a_time();
    // First content at 100 ms, then one chunk every 20 ms: 5 reasoning chunks, then 4 of text.
    let reasoning = Mock::start(&[
        "--ttft",
        "100ms",
        "--chunk-delay",
        "20ms",
        "--reasoning-chunks",
        "5",
        "--chunks",
        "4",
    ]);
    // Every answer a tool call: 4 argument chunks, no text at all.
    let tools = Mock::start(&[
        "--ttft",
        "60ms",
        "--chunk-delay",
        "10ms",
        "--tool-call-rate",
        "1",
        "--chunks",
        "4",
    ]);
    let apis = ["openai", "openai-responses", "anthropic"];
    let mut runs = [
        ttft_run(&reasoning, "any", &apis),
        ttft_run(&reasoning, "text", &apis),
        ttft_run(&tools, "any", &apis),
        ttft_run(&tools, "text", &apis),
    ];
    let results: Vec<Value> = runs
        .iter_mut()
        .map(|r| {
            let (st, s) = r.finish(T);
            assert_eq!(st.code(), Some(0), "{}", r.proc.stderr_text());
            let sent = count(&s, &["requests_sent"]);
            assert!(sent >= 50, "{sent}");
            assert_eq!(count(&s, &["outcomes", "ok"]), sent, "{s}");
            s
        })
        .collect();
    let p50 = |s: &Value, k: &str| num(s, &["latency", k, "p50"]);
    let (any, text, tool_any, tool_text) = (&results[0], &results[1], &results[2], &results[3]);
    // TTFT is never earlier than the mock's delays, and it comes before the first chunk the
    // other rule would wait for (100 ms of slack for a loaded machine): that tells the two
    // rules apart without timing the machine.
    // Any delta: the first reasoning chunk, at the mock's ttft, before the first text chunk.
    let t_any = p50(any, "ttft");
    assert!((0.100..0.200).contains(&t_any), "any: ttft p50 {t_any}");
    // Text only: the first text chunk, 5 chunk delays later.
    let t_text = p50(text, "ttft");
    assert!((0.200..0.300).contains(&t_text), "text: ttft p50 {t_text}");
    assert!(t_text - t_any > 0.050, "text {t_text} vs any {t_any}");
    // Chunk counts and gaps cover every kind either way: 9 chunks, 20 ms apart.
    for s in [any, text] {
        let streams = count(s, &["streams", "completed"]);
        let chunks: u64 = s["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .map(|sc| count(sc, &["chunks"]))
            .sum();
        assert_eq!(chunks, 9 * streams);
        assert_eq!(count(s, &["latency", "ttft", "count"]), streams);
        let gap = p50(s, "chunk_gap");
        // The mock keeps a fixed schedule: gaps scatter around 20 ms, both ways.
        assert!((0.015..0.040).contains(&gap), "gap p50 {gap}");
    }
    // Tool-call answers: any delta times the first argument chunk; text-only has no sample.
    let t = p50(tool_any, "ttft");
    assert!((0.060..0.160).contains(&t), "tool any: ttft p50 {t}");
    assert_eq!(
        count(tool_any, &["latency", "ttft", "count"]),
        count(tool_any, &["streams", "completed"])
    );
    assert_eq!(
        count(tool_text, &["latency", "ttft", "count"]),
        0,
        "{tool_text}"
    );
    assert!(count(tool_text, &["streams", "completed"]) >= 50);
}

#[test]
fn mock_faults_are_classified_per_api() {
    let _serial = one_at_a_time();
    let mock = Mock::start(&[
        "--ttft",
        "2ms",
        "--chunk-delay",
        "1ms",
        "--chunks",
        "6",
        "--reasoning-chunks",
        "2",
        "--error-event-rate",
        "0.25",
        "--truncate-rate",
        "0.25",
        "--garbage-rate",
        "0.1",
        "--error-rate",
        "0.1",
        "--error-status",
        "429",
    ]);
    let streamed = [
        "openai",
        "openai-responses",
        "openai-completions",
        "anthropic",
    ];
    let mut scenarios: String = streamed.iter().map(|a| scenario(a, a, "")).collect();
    for a in streamed.iter().chain(&["openai-embeddings"]) {
        scenarios.push_str(&scenario(&format!("{a}-unary"), a, "stream = false"));
    }
    // About a third of the requests fail on purpose: judge classification, not thresholds.
    // 5 s at 150 rps is about 80 requests per scenario, so each 10 % fault shows up in every
    // scenario but with a chance of about 2e-4 (3 s, about 50 each, failed once in ~20 runs).
    let mut run = Run::start_env(
        &config(&mock.url(), 150.0, &scenarios),
        &["--duration", "5s"],
        &[("SOAKD__THRESHOLDS__DEFAULTS", "false")],
    );
    let (st, s) = run.finish(T);
    assert_eq!(st.code(), Some(0), "{}", run.output());
    let sent = count(&s, &["requests_sent"]);
    let total: u64 = s["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(requests)
        .sum();
    assert_eq!(total, sent, "every request has exactly one outcome: {s}");
    for sc in s["scenarios"].as_array().unwrap() {
        let name = sc["name"].as_str().unwrap();
        let n = |o: &str| count(sc, &["requests", o]);
        assert!(requests(sc) >= 30, "{sc}");
        // HTTP errors and garbage look the same for every API.
        assert!(n("http_429") > 0 && n("protocol_error") > 0, "{sc}");
        if name.ends_with("-unary") {
            // A non-stream in-band error or a cut JSON body is not the API's answer shape.
            let allowed = n("ok") + n("http_429") + n("protocol_error");
            assert_eq!(allowed, requests(sc), "{sc}");
            assert!(n("ok") > 0, "{sc}");
        } else {
            // The API's own error frame and a missing terminator are recognised.
            assert!(
                n("stream_error_event") > 0 && n("stream_truncated") > 0,
                "{sc}"
            );
            assert_eq!(
                count(sc, &["streams", "error_event"]),
                n("stream_error_event"),
                "{sc}"
            );
            let allowed = n("ok")
                + n("http_429")
                + n("protocol_error")
                + n("stream_error_event")
                + n("stream_truncated");
            assert_eq!(allowed, requests(sc), "{sc}");
        }
    }
}

#[test]
fn bad_api_settings_exit_78_naming_the_field() {
    // Hold the admin port: had soakd bound before validating, it would fail with exit 2.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    for (cfg, needle) in [
        (
            "[[scenarios]]\napi = \"openai-embeddings\"\nstream = true\n",
            "scenarios[0].stream",
        ),
        (
            "[[scenarios]]\napi = \"openai-embeddings\"\nttft_on = \"text\"\n",
            "scenarios[0].ttft_on",
        ),
        (
            "[[scenarios]]\napi = \"openai-responses\"\nbody = { input = \"x\" }\n",
            "scenarios[0].body.input",
        ),
        (
            "[[scenarios]]\napi = \"openai\"\nbody = { stream = false }\n",
            "scenarios[0].body.stream",
        ),
    ] {
        let mut run = Run::start(cfg, &["--admin-listen", &addr]);
        let st = run.proc.wait(T);
        assert_eq!(st.code(), Some(78), "{cfg}: {}", run.proc.stderr_text());
        let err = run.proc.stderr_text();
        assert!(err.contains(needle), "{cfg}: {err}");
        assert_eq!(err.lines().count(), 1, "one message: {err}");
    }
}
