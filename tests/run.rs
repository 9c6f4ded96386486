//! `soakd run` end to end: the real binary against the real mock over loopback TCP.
//!
//! Each test runs a bounded soak (seconds, a few thousand requests at most) and checks the
//! numbers in the JSON summary and on `/metrics`.

mod common;

use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(90);

fn base(target: &str, extra: &str) -> String {
    format!(
        r#"
[run]
grace = "5s"
seed = 7

[target]
url = "{target}"

[monitor]
sample_interval = "1s"
warmup = "0s"

[log]
progress_interval = "1s"

{extra}
"#
    )
}

#[test]
fn a_bounded_run_sends_the_planned_count_and_all_succeed() {
    let mock = Mock::start(&["--ttft", "5ms", "--chunk-delay", "1ms", "--chunks", "4"]);
    let cfg = base(
        &mock.url(),
        r#"
[load]
rate = 100.0
arrivals = "constant"

[[scenarios]]
name = "chat"
api = "openai"
stream = true
max_tokens = 16
"#,
    );
    let mut run = Run::start(&cfg, &["--duration", "8s"]);
    let (st, s) = run.finish(T);
    assert_eq!(st.code(), Some(0), "{}", run.proc.stderr_text());
    // Constant arrivals at 100 rps for 8 s: 800 sends, within 2%.
    let sent = count(&s, &["requests_sent"]);
    assert!((784..=816).contains(&sent), "sent {sent}");
    assert_eq!(count(&s, &["outcomes", "ok"]), sent, "{s}");
    assert_eq!(count(&s, &["streams", "completed"]), sent);
    assert_eq!(count(&s, &["dropped", "in_flight_cap"]), 0);
    // 4 content chunks per stream, and tokens counted from the usage chunk.
    let sc = &s["scenarios"][0];
    assert_eq!(count(sc, &["chunks"]), 4 * sent);
    assert_eq!(count(sc, &["output_tokens"]), 4 * sent);
    let avg = num(&s, &["achieved_rate_avg"]);
    assert!((avg - 100.0).abs() < 3.0, "achieved {avg}");
    // The progress line was logged.
    assert!(
        run.proc.stderr_text().contains("rps | p50/p99"),
        "{}",
        run.proc.stderr_text()
    );
}

#[test]
fn ttft_and_duration_are_timed_from_the_intended_send() {
    // 150 ms to the first token, then 9 more chunks 20 ms apart.
    let mock = Mock::start(&["--ttft", "150ms", "--chunk-delay", "20ms", "--chunks", "10"]);
    let cfg = base(
        &mock.url(),
        r#"
[load]
rate = 20.0

[[scenarios]]
name = "chat"
api = "openai"
max_tokens = 64

[[scenarios]]
name = "messages"
api = "anthropic"
max_tokens = 64
"#,
    );
    let mut run = Run::start(&cfg, &["--duration", "6s"]);
    let (st, s) = run.finish(T);
    assert_eq!(st.code(), Some(0), "{}", run.proc.stderr_text());
    let ttft = num(&s, &["latency", "ttft", "p50"]);
    let dur = num(&s, &["latency", "duration", "p50"]);
    let gap = num(&s, &["latency", "chunk_gap", "p50"]);
    assert!((0.150..0.150 + 0.015).contains(&ttft), "ttft p50 {ttft}");
    assert!((0.330..0.330 + 0.020).contains(&dur), "duration p50 {dur}");
    // The mock sends on a fixed schedule (chunk i at ttft + i × 20 ms), so a chunk that left
    // late makes the next gap a hair shorter than 20 ms: 1 ms of slack below.
    assert!((0.019..0.020 + 0.005).contains(&gap), "chunk gap p50 {gap}");
    assert_eq!(
        count(&s, &["outcomes", "ok"]),
        count(&s, &["requests_sent"])
    );
    for sc in s["scenarios"].as_array().unwrap() {
        assert!(count(sc, &["streams", "completed"]) > 30, "{sc}");
    }
}

#[test]
fn faults_are_classified() {
    let mock = Mock::start(&[
        "--ttft",
        "2ms",
        "--chunk-delay",
        "1ms",
        "--chunks",
        "6",
        "--error-rate",
        "0.2",
        "--error-status",
        "429",
        "--truncate-rate",
        "0.2",
        "--error-event-rate",
        "0.2",
        "--garbage-rate",
        "0.1",
    ]);
    let cfg = base(
        &mock.url(),
        r#"
[load]
rate = 200.0

[[scenarios]]
name = "chat"
api = "openai"

[[scenarios]]
name = "messages"
api = "anthropic"
"#,
    );
    let mut run = Run::start(&cfg, &["--duration", "5s"]);
    let (st, s) = run.finish(T);
    // 70 % of the requests fail: the default error_ratio (5 %) fails the run, and says so.
    assert_eq!(st.code(), Some(1), "{}", run.proc.stderr_text());
    let failed: Vec<&str> = failed_thresholds(&s);
    assert_eq!(failed, ["error_ratio"], "{}", s["thresholds"]);
    assert!(run
        .proc
        .stdout_text()
        .contains("the default error_ratio 5%"));
    let sent = count(&s, &["requests_sent"]) as f64;
    assert!(sent > 900.0, "{sent}");
    let share = |k: &str| count(&s, &["outcomes", k]) as f64 / sent;
    for (k, want) in [
        ("http_429", 0.2),
        ("stream_truncated", 0.2),
        ("stream_error_event", 0.2),
        ("protocol_error", 0.1),
        ("ok", 0.3),
    ] {
        // Binomial sd at n≈1000 is ≤ 1.6%; allow 5%.
        assert!(
            (share(k) - want).abs() < 0.05,
            "{k}: {} of {sent}\n{s}",
            share(k)
        );
    }
    // A stream that was not SSE at all never completed either: the stream-result label set
    // has no protocol error, so it finishes as truncated.
    assert_eq!(
        count(&s, &["streams", "truncated"]),
        count(&s, &["outcomes", "stream_truncated"]) + count(&s, &["outcomes", "protocol_error"])
    );
    assert_eq!(
        count(&s, &["streams", "error_event"]),
        count(&s, &["outcomes", "stream_error_event"])
    );
    let total: u64 = s["outcomes"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, sent as u64, "every request has exactly one outcome");
}

#[test]
fn a_stalled_target_fills_the_cap_and_drops_the_rest() {
    let mock = Mock::start(&["--stall-rate", "1"]);
    let cfg = base(
        &mock.url(),
        r#"
[load]
rate = 50.0
arrivals = "constant"
max_in_flight = 10

[[scenarios]]
name = "chat"
api = "openai"
"#,
    );
    let mut run = Run::start_env(&cfg, &["--duration", "4s"], &[("SOAKD__RUN__GRACE", "1s")]);
    let admin = run.admin_addr();
    // While the run lasts: the cap full, and the rest dropped (50 a second).
    wait_for(
        "10 in flight and over 50 dropped",
        Duration::from_secs(4),
        || {
            let (_, metrics) = try_http_get(admin, "/metrics").map_err(|e| e.to_string())?;
            let in_flight = metric_sum(&metrics, "soakd_in_flight_requests", &[]);
            let dropped = metric_sum(
                &metrics,
                "soakd_requests_dropped_total",
                &[("reason", "in_flight_cap")],
            );
            (in_flight == 10.0 && dropped > 50.0)
                .then_some(())
                .ok_or(format!("{in_flight} in flight, {dropped} dropped"))
        },
    );
    let (st, s) = run.finish(T);
    // A saturated generator makes the soak invalid: the default max_dropped 0 fails it. The
    // ten requests soakd stopped at the end of the grace period are aborted: not errors.
    assert_eq!(st.code(), Some(1), "{}", run.proc.stderr_text());
    let dropped = s["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "dropped")
        .unwrap();
    assert_eq!(dropped["status"], "fail", "{dropped}");
    assert_eq!(dropped["observed"], 190.0);
    assert!(
        run.proc.stdout_text().contains("the default max_dropped 0"),
        "{}",
        run.proc.stdout_text()
    );
    // 200 scheduled: 10 sent and held until the grace ran out, 190 dropped.
    assert_eq!(count(&s, &["requests_sent"]), 10);
    assert_eq!(count(&s, &["dropped", "in_flight_cap"]), 190);
    assert_eq!(count(&s, &["outcomes", "aborted"]), 10);
    assert_eq!(count(&s, &["streams", "aborted"]), 10);
    assert_eq!(count(&s, &["aborted"]), 10);
    assert_eq!(count(&s, &["errors"]), 0);
    assert_eq!(num(&s, &["target_rate_avg"]).round(), 50.0);
}

#[test]
fn metrics_expose_every_traffic_metric_of_the_contract() {
    let mock = Mock::start(&["--ttft", "5ms", "--chunk-delay", "1ms"]);
    let cfg = base(
        &mock.url(),
        r#"
[load]
rate = 40.0

[load.burst]
every = "2s"
length = "1s"
offset = "0s"
multiplier = 2.0

[[scenarios]]
name = "chat"
api = "openai"
"#,
    );
    let mut run = Run::start(&cfg, &["--duration", "forever"]);
    let admin = run.admin_addr();
    wait_http_ok(admin, "/readyz", Duration::from_secs(20));
    // Process and two-sided (proxy/upstream) families have their own tests: the monitor's in
    // monitor_live.rs, the two-sided soak's in two_sided.rs and e2e.
    let traffic = soakd::metrics::CATALOG.iter().filter(|d| {
        !d.name.starts_with("soakd_process_")
            && !d.name.starts_with("soakd_proxy_")
            && !d.name.starts_with("soakd_upstream_")
            && d.name != "soakd_leak_suspected"
            && d.name != "soakd_threshold_passing"
            // Only once two creep windows have passed (default 10m): tests/creep.rs.
            && d.name != "soakd_creep_ratio"
    });
    // Every traffic family on /metrics, over 50 ok requests and first tokens, and a burst.
    let text = wait_for("every traffic metric, 50 requests and a burst", T, || {
        let (_, text) = try_http_get(admin, "/metrics").map_err(|e| e.to_string())?;
        let missing: Vec<&str> = traffic
            .clone()
            .filter(|d| !text.contains(&format!("# TYPE {} ", d.name)))
            .map(|d| d.name)
            .collect();
        let ok = metric_sum(
            &text,
            "soakd_requests_total",
            &[("scenario", "chat"), ("outcome", "ok")],
        );
        let ttft = metric_sum(
            &text,
            "soakd_time_to_first_token_seconds_count",
            &[("scenario", "chat")],
        );
        let burst = metric_sum(&text, "soakd_requests_total", &[("phase", "burst")]);
        (missing.is_empty() && ok > 50.0 && ttft > 50.0 && burst > 0.0)
            .then_some(text)
            .ok_or(format!(
                "missing {missing:?}, {ok} ok, {ttft} first tokens, {burst} in bursts"
            ))
    });
    assert!(
        text.contains("process_resident_memory_bytes "),
        "soakd's own process_* metrics"
    );
    let (code, status) = http_get(admin, "/status");
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert!(count(&status, &["outcomes", "ok"]) > 50, "{status}");
    assert!(num(&status, &["latency", "ttft", "p99"]) > 0.0);
    let (code, _) = http_get(admin, "/healthz");
    assert_eq!(code, 200);

    run.proc.signal(libc::SIGTERM);
    let (st, s) = run.finish(T);
    assert_eq!(st.code(), Some(0), "SIGTERM ends a clean run with 0");
    assert_eq!(s["phase"], "done");
    assert!(
        run.proc.stdout_text().contains("soakd summary"),
        "{}",
        run.proc.stdout_text()
    );
}

#[test]
fn bad_config_exits_78_before_binding_anything() {
    // Hold the admin port: had soakd bound before validating, it would fail with exit 2.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    for (cfg, needle) in [
        ("[load]\nrate = -1\n", "load.rate"),
        ("[load]\nrat = 5\n", "rat"),
        ("[run]\nduration = \"soon\"\n", "run.duration"),
        (
            "[target]\napi_key_env = \"SOAKD_NO_SUCH_VAR\"\n",
            "SOAKD_NO_SUCH_VAR",
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

#[test]
fn a_threshold_breach_exits_1_and_names_the_threshold() {
    let mock = Mock::start(&["--ttft", "100ms", "--chunk-delay", "1ms", "--chunks", "2"]);
    let cfg = base(
        &mock.url(),
        r#"
[load]
rate = 20.0

[thresholds]
p99_ttft = "20ms"
error_ratio = 0.5
min_requests = 10
"#,
    );
    let mut run = Run::start(&cfg, &["--duration", "3s"]);
    let (st, s) = run.finish(T);
    assert_eq!(st.code(), Some(1), "{}", run.proc.stderr_text());
    assert_eq!(s["verdict"], "fail");
    let t = s["thresholds"].as_array().unwrap();
    let ttft = t.iter().find(|r| r["name"] == "p99_ttft").unwrap();
    assert_eq!(ttft["status"], "fail");
    assert!(
        ttft["message"].as_str().unwrap().contains("exceeded by"),
        "{ttft}"
    );
    let err = t.iter().find(|r| r["name"] == "error_ratio").unwrap();
    assert_eq!(err["status"], "pass");
    assert!(
        run.proc.stdout_text().contains("p99_ttft"),
        "summary names the threshold"
    );
}

#[test]
fn two_shards_each_send_half_the_plan() {
    let mock = Mock::start(&["--ttft", "2ms", "--chunk-delay", "1ms", "--chunks", "2"]);
    let cfg = base(
        &mock.url(),
        r#"
[load]
rate = 100.0
arrivals = "constant"
"#,
    );
    let shard = |i: &'static str| [("SOAKD__RUN__SHARDS", "2"), ("JOB_COMPLETION_INDEX", i)];
    let mut a = Run::start_env(&cfg, &["--duration", "6s"], &shard("0"));
    let mut b = Run::start_env(&cfg, &["--duration", "6s"], &shard("1"));
    let (sa, ja) = a.finish(T);
    let (sb, jb) = b.finish(T);
    assert_eq!((sa.code(), sb.code()), (Some(0), Some(0)));
    for (j, shard) in [(&ja, 0), (&jb, 1)] {
        assert_eq!(count(j, &["shard"]), shard);
        let sent = count(j, &["requests_sent"]);
        assert!((294..=306).contains(&sent), "shard {shard} sent {sent}");
    }
}

#[test]
fn closed_model_never_exceeds_its_users() {
    let mock = Mock::start(&["--ttft", "20ms", "--chunk-delay", "5ms", "--chunks", "4"]);
    let cfg = base(
        &mock.url(),
        r#"
[load]
model = "closed"
users = 4
think_time = "0s"
ramp_up = "1s"
"#,
    );
    let mut run = Run::start(&cfg, &["--duration", "forever"]);
    let admin = run.admin_addr();
    wait_http_ok(admin, "/readyz", Duration::from_secs(20));
    let mut max_in_flight = 0.0f64;
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(300));
        let (_, m) = http_get(admin, "/metrics");
        max_in_flight = max_in_flight.max(metric_sum(&m, "soakd_in_flight_requests", &[]));
    }
    run.proc.signal(libc::SIGTERM);
    let (st, s) = run.finish(T);
    assert_eq!(st.code(), Some(0));
    assert!((1.0..=4.0).contains(&max_in_flight), "{max_in_flight}");
    // Each user does ~1 request per 40 ms: well over 100 requests in ~3 s.
    assert!(count(&s, &["outcomes", "ok"]) > 100, "{s}");
    assert_eq!(count(&s, &["dropped", "in_flight_cap"]), 0);
}

#[test]
fn the_embedded_default_soaks_its_own_mock() {
    // The README's first command, shortened: no config, no target.
    let dir = TempDir::new("default");
    let summary = dir.path().join("s.json");
    let mut cmd = std::process::Command::new(soakd_bin());
    cmd.args(["run", "--duration", "4s", "--admin-listen", "127.0.0.1:0"])
        .env("SOAKD__RUN__SUMMARY_JSON", &summary)
        .env("SOAKD__RUN__GRACE", "3s");
    let mut p = Proc::spawn("soakd run (default)", cmd);
    let st = p.wait(T);
    assert_eq!(st.code(), Some(0), "{}", p.stderr_text());
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert!(
        s["target"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{s}"
    );
    assert!(count(&s, &["outcomes", "ok"]) > 50, "{s}");
    assert_eq!(s["scenarios"].as_array().unwrap().len(), 3);
    assert!(p.stderr_text().contains("started the embedded mock"));
}

#[test]
fn otlp_export_reaches_the_configured_collector() {
    // A stand-in collector: accept the exporter's connection and read the HTTP/2 preface
    // that every OTLP/gRPC export starts with.
    let collector = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", collector.local_addr().unwrap());
    let got = std::thread::spawn(move || {
        use std::io::Read;
        collector.set_nonblocking(true).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            match collector.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    let mut buf = [0u8; 24];
                    s.read_exact(&mut buf).unwrap();
                    return buf.to_vec();
                }
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => panic!("no OTLP connection within 60 s: {e}"),
            }
        }
    });
    let mock = Mock::start(&["--ttft", "2ms", "--chunk-delay", "1ms", "--chunks", "2"]);
    let cfg = base(&mock.url(), "[load]\nrate = 20.0\n");
    let mut run = Run::start_env(
        &cfg,
        &["--duration", "3s"],
        &[
            ("SOAKD__OTLP__ENDPOINT", endpoint.as_str()),
            ("SOAKD__OTLP__SAMPLE_RATIO", "1.0"),
        ],
    );
    let (st, s) = run.finish(T);
    assert_eq!(st.code(), Some(0), "{}", run.proc.stderr_text());
    assert!(count(&s, &["outcomes", "ok"]) > 30);
    assert_eq!(
        got.join().unwrap(),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()
    );
}

#[test]
fn abort_on_fail_stops_a_forever_run_at_the_first_failed_threshold() {
    let mock = Mock::start(&["--ttft", "100ms", "--chunk-delay", "1ms", "--chunks", "2"]);
    let cfg = base(
        &mock.url(),
        r#"
[load]
rate = 20.0

[thresholds]
p99_ttft = "20ms"
abort_on_fail = true
"#,
    );
    // With duration "forever", only the failed threshold can end this run.
    let mut run = Run::start(&cfg, &["--duration", "forever"]);
    let (st, s) = run.finish(T);
    assert_eq!(st.code(), Some(1), "{}", run.proc.stderr_text());
    assert_eq!(s["verdict"], "fail");
    assert!(
        run.proc.stderr_text().contains("abort_on_fail"),
        "the reason is logged: {}",
        run.proc.stderr_text()
    );
}

#[test]
fn a_second_signal_quits_at_once_with_130() {
    // Stalled streams hold the run in its drain for the whole grace period (10 minutes):
    // only the second-signal path can end it within the test's deadline.
    let mock = Mock::start(&["--stall-rate", "1"]);
    let cfg = base(
        &mock.url(),
        r#"
[load]
rate = 20.0
max_in_flight = 50

[[scenarios]]
name = "chat"
"#,
    );
    let mut run = Run::start_env(&cfg, &[], &[("SOAKD__RUN__GRACE", "10m")]);
    let admin = run.admin_addr();
    wait_http_ok(admin, "/readyz", Duration::from_secs(30));
    wait_for(
        "stalled requests in flight",
        Duration::from_secs(30),
        || {
            let (_, metrics) = try_http_get(admin, "/metrics").map_err(|e| e.to_string())?;
            let n = metric_sum(&metrics, "soakd_in_flight_requests", &[]);
            (n >= 1.0).then_some(()).ok_or(format!("{n} in flight"))
        },
    );
    run.proc.signal(libc::SIGTERM);
    run.proc
        .wait_line("finishing in-flight requests", Duration::from_secs(30));
    // Still draining: the stalled requests keep it alive.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        run.proc.child.try_wait().unwrap().is_none(),
        "the first signal must not end a run with requests in flight"
    );
    run.proc.signal(libc::SIGINT);
    let st = run.proc.wait(Duration::from_secs(30));
    assert_eq!(st.code(), Some(130), "{}", run.proc.stderr_text());
    assert!(
        run.proc
            .stderr_text()
            .contains("second signal, quitting now"),
        "{}",
        run.proc.stderr_text()
    );
}
