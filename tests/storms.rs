//! Foul weather through a real nginx 1.22: storms on soakd's upstream and what the proxy did
//! through each, from both sides, through the binary.
//!
//! One soak drives two routes of one nginx at once, one scenario each, and each storm picks
//! its route by its `scenarios` filter:
//! - `/retry/`: `proxy_next_upstream error timeout http_500 http_429 non_idempotent;
//!   proxy_next_upstream_tries 3`, to an upstream block that lists soakd's upstream three
//!   times with `max_fails=0` (checked by hand: a mock answering only 500s gets 15 attempts
//!   for 5 requests; nginx retries a 429 at once, whatever its `Retry-After`);
//! - `/pass/`: `proxy_next_upstream off`.
//!
//! Storms (from the start of load): 429s with `retry_after = 1` at rate 1.0 on each route
//! over 5–9 s, and 500s at rate 0.5 on the retrying route over 16–19 s. The 5 s before the
//! first give each route's recovery baseline 50 requests. Arrivals are constant
//! (one every 50 ms), so no request straddles a storm's edge. Assertions are on counts and
//! ratios known by construction; none on wall-clock speed.

mod common;

use std::time::Duration;

use serde_json::Value;

use common::nginx::{free_port, Location, Nginx, NginxConfig, Server, Upstream};
use common::*;

const T: Duration = Duration::from_secs(120);

/// nginx with the retrying route on `/retry/` and the pass-through route on `/pass/`, both to
/// soakd's upstream on `up` (listed three times).
fn weather_proxy(up: u16) -> Nginx {
    let thrice = (0..3).fold(Upstream::new("thrice"), |u, _| {
        u.server_with(format!("127.0.0.1:{up}"), "max_fails=0")
    });
    let route = |path: &str| {
        Location::proxy(path, "http://thrice/")
            .directive("proxy_http_version 1.1")
            .directive("proxy_set_header Connection \"\"")
    };
    Nginx::start(
        &NginxConfig::new().upstream(thrice).server(
            Server::plain()
                .location(
                    route("/retry/")
                        .directive(
                            "proxy_next_upstream error timeout http_500 http_429 non_idempotent",
                        )
                        .directive("proxy_next_upstream_tries 3"),
                )
                .location(route("/pass/").directive("proxy_next_upstream off")),
        ),
    )
}

/// The nginx worker's pid (the master's only child; it may be forked a moment after the
/// listen port accepts).
fn worker_pid(master: u32) -> u32 {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let children = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
            .expect("the master's children");
        if let Some(pid) = children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
        {
            return pid;
        }
        assert!(std::time::Instant::now() < deadline, "no nginx worker");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn storm<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["proxy"]["storms"]
        .as_array()
        .expect("proxy.storms")
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no storm {name} in {}", s["proxy"]["storms"]))
}

#[test]
fn storms_through_nginx_retrying_and_passing_routes() {
    let up = free_port();
    let nginx = weather_proxy(up);
    let cfg = format!(
        r#"
[run]
duration = "26s"
grace = "5s"
seed = 23

[target]
url = "{url}"

[load]
rate = 20.0
arrivals = "constant"

[[scenarios]]
name = "retrying"
path = "/retry/v1/chat/completions"
stream = false
max_tokens = 4

[[scenarios]]
name = "passing"
path = "/pass/v1/chat/completions"
stream = false
max_tokens = 4

[mock]
response_delay = "5ms"

[upstream]
listen = "127.0.0.1:{up}"

[[upstream.storms]]
name = "429-retrying"
start = "5s"
duration = "4s"
kind = "status"
status = 429
retry_after = 1
scenarios = ["retrying"]

[[upstream.storms]]
name = "429-passing"
start = "5s"
duration = "4s"
kind = "status"
status = 429
retry_after = 1
scenarios = ["passing"]

[[upstream.storms]]
name = "500-half"
start = "16s"
duration = "3s"
kind = "status"
status = 500
rate = 0.5
scenarios = ["retrying"]

[monitor]
sample_interval = "1s"
warmup = "0s"
burst_settle = "3s"

[[monitor.processes]]
name = "nginx"
pid = {worker}
fail_on_leak = false

[thresholds]
defaults = false
max_retry_amplification = 3.0
max_ghost_attempts = 0
max_recovery = "30s"

[log]
progress_interval = "off"
"#,
        url = nginx.url(0),
        worker = worker_pid(nginx.pid()),
    );
    let mut run = Run::start(&cfg, &[]);
    let admin = run.admin_addr();
    // /status during the first storm: its occurrences are listed, and the upstream counts it.
    std::thread::sleep(Duration::from_secs(8));
    let (code, status) = http_get(admin, "/status");
    assert_eq!(code, 200);
    let status: Value = serde_json::from_str(&status).unwrap();
    assert!(
        status["proxy"]["storms"].as_array().unwrap().len() >= 2,
        "{}",
        status["proxy"]
    );
    let (_, metrics) = http_get(admin, "/metrics");
    assert_eq!(
        metric_sum(
            &metrics,
            "soakd_upstream_storm_active",
            &[("storm", "429-retrying")]
        ),
        1.0
    );
    // After the last storm: one /metrics for the faults injected and what the proxy did.
    std::thread::sleep(Duration::from_secs(13));
    let (_, metrics) = http_get(admin, "/metrics");
    let (st, s) = run.finish(T);
    let out = run.output();
    assert_eq!(st.code(), Some(0), "{out}");

    // Retrying route in a 429 storm: three attempts per request, every one a 429, so nothing
    // is masked; the two retries of each come within a millisecond of a Retry-After of 1 s.
    let r = storm(&s, "429-retrying");
    let n = count(r, &["client_requests"]);
    assert!(n >= 30, "{r}");
    assert_eq!(count(r, &["upstream_requests"]), 3 * n, "{r}");
    assert_eq!(num(r, &["amplification"]), 3.0, "{r}");
    assert_eq!(count(r, &["upstream_faults"]), 3 * n, "{r}");
    assert_eq!(num(r, &["masked_ratio"]), 0.0, "{r}");
    assert_eq!(count(r, &["client_errors"]), n, "{r}");
    assert_eq!(count(r, &["retry_after_violations"]), 2 * n, "{r}");
    assert_eq!(count(r, &["retry_after_honoured"]), 0, "{r}");
    // Recovery is reported (judged against its baseline); its time is the proxy's and the
    // machine's: a 5 s window of ~50 requests has its slowest one as p99.
    assert!(r["recovered"].is_boolean(), "{r}");
    let recovery_retry = r["recovery_secs"].as_f64().unwrap_or(f64::INFINITY);
    for p in ["soakd", "nginx"] {
        assert!(num(r, &["rss_before_bytes", p]) > 0.0, "{r}");
        assert!(num(r, &["rss_after_bytes", p]) > 0.0, "{r}");
    }

    // Pass-through route, same storm: one attempt each, every fault reaches the client.
    let p = storm(&s, "429-passing");
    let m = count(p, &["client_requests"]);
    assert!(m >= 30, "{p}");
    assert_eq!(num(p, &["amplification"]), 1.0, "{p}");
    assert_eq!(num(p, &["masked_ratio"]), 0.0, "{p}");
    assert_eq!(count(p, &["upstream_faults"]), m, "{p}");
    assert_eq!(count(p, &["client_errors"]), m, "{p}");
    assert_eq!(
        count(p, &["retry_after_violations"]),
        0,
        "no next attempt: {p}"
    );
    // Back within a few seconds of the storm's end.
    assert_eq!(p["recovered"], true, "{p}");
    let recovery_pass = num(p, &["recovery_secs"]);
    assert!(recovery_pass <= 10.0, "{p}");

    // A storm the retrying route can mask: 500s at rate 0.5, each try an even draw.
    let h = storm(&s, "500-half");
    let masked = num(h, &["masked_ratio"]);
    assert!(masked > 0.3, "{h}");
    assert!(
        (num(h, &["passed_ratio"]) - (1.0 - masked)).abs() < 1e-9,
        "{h}"
    );
    let amp = num(h, &["amplification"]);
    assert!((1.3..=2.2).contains(&amp), "{h}");
    assert!(
        count(h, &["client_errors"]) < count(h, &["client_requests"]) / 3,
        "{h}"
    );

    // Outside every storm: one attempt per request.
    let a = &s["proxy"]["amplification"];
    assert_eq!(num(a, &["fair_weather"]), 1.0, "{a}");
    assert!(count(a, &["fair_client_requests"]) >= 150, "{a}");
    assert_eq!(count(&s, &["proxy", "ghost_attempts", "total"]), 0);
    let v = &s["proxy"]["retry_after"];
    assert_eq!(count(v, &["violations"]), 2 * n, "{v}");

    // The thresholds hold (at most 3 attempts per request during storms, no ghosts, every
    // storm recovered within 30 s).
    assert!(failed_thresholds(&s).is_empty(), "{}", s["thresholds"]);
    let names: Vec<&str> = s["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["retry_amplification", "ghost_attempts", "recovery"]);

    // One /metrics tells the faults injected and what the proxy did with them.
    let sum = |name: &str, labels: &[(&str, &str)]| metric_sum(&metrics, name, labels);
    assert_eq!(
        sum(
            "soakd_upstream_faults_total",
            &[("storm", "429-retrying"), ("kind", "status")]
        ),
        (3 * n) as f64
    );
    assert_eq!(
        sum("soakd_upstream_faults_total", &[("storm", "500-half")]),
        count(h, &["upstream_faults"]) as f64
    );
    assert_eq!(
        sum(
            "soakd_proxy_retry_after_violations_total",
            &[("scenario", "retrying")]
        ),
        (2 * n) as f64
    );
    assert_eq!(
        sum("soakd_proxy_recovery_seconds", &[("storm", "429-passing")]),
        recovery_pass
    );
    assert_eq!(
        sum("soakd_upstream_storm_active", &[]),
        0.0,
        "no storm blows at 21 s"
    );
    // The retries soakd's upstream counted are the faults the retrying route retried.
    let retries = sum("soakd_proxy_retries_total", &[("scenario", "retrying")]);
    let faults = sum("soakd_upstream_faults_total", &[("kind", "status")]);
    assert!(
        retries <= faults && retries >= (2 * n) as f64,
        "{retries} {faults}"
    );
    let text = &out;
    assert!(
        text.contains("storms (client requests sent during each"),
        "{text}"
    );
    assert!(text.contains("429-retrying"), "{text}");
    eprintln!(
        "storms: retrying n={n} amplification 3 (fair {}), masked 0, violations {}, \
         recovery {recovery_retry}s; passing m={m} recovery {recovery_pass}s; \
         500-half masked {masked:.3} passed {:.3} amplification {amp:.3} recovery {}s; rss {} / {}",
        num(a, &["fair_weather"]),
        count(v, &["violations"]),
        num(h, &["passed_ratio"]),
        h["recovery_secs"],
        r["rss_before_bytes"],
        r["rss_after_bytes"],
    );
}

/// Bad storms are refused before anything binds: exit 78, naming the key.
#[test]
fn bad_storm_configs_exit_78_naming_the_key() {
    let up = free_port();
    let base = |storm: &str, extra: &str| {
        format!(
            r#"
[run]
duration = "10s"

[target]
url = "http://127.0.0.1:9"

[[scenarios]]
name = "unary"
stream = false

[[scenarios]]
name = "chat"

[upstream]
listen = "127.0.0.1:{up}"

[[upstream.storms]]
start = "1s"
duration = "2s"
{storm}

{extra}
"#
        )
    };
    let cases: [(String, &str); 9] = [
        (
            base("kind = \"status\"\nstatus = 500\nrate = 1.5", ""),
            "upstream.storms[0].rate",
        ),
        (
            base("kind = \"status\"\nstatus = 302", ""),
            "upstream.storms[0].status",
        ),
        (
            base("kind = \"status\"\nstatus = 500\nretry_after = 1", ""),
            "upstream.storms[0].retry_after",
        ),
        (
            base(
                "kind = \"reset\"\nafter_chunks = 2\nscenarios = [\"unary\"]",
                "",
            ),
            "upstream.storms[0].after_chunks",
        ),
        (
            base("kind = \"refuse\"\napis = [\"openai\"]", ""),
            "upstream.storms[0].apis",
        ),
        (
            base("kind = \"refuse\"\nscenarios = [\"chat\"]", ""),
            "upstream.storms[0].scenarios",
        ),
        (
            base("kind = \"stall\"", "").replace("start = \"1s\"", "start = \"10s\""),
            "upstream.storms[0].start",
        ),
        (
            base(
                "kind = \"status\"\nstatus = 500",
                "[thresholds]\np99_proxy_added_respons = \"1s\"",
            ),
            "thresholds.p99_proxy_added_respons",
        ),
        (
            "[target]\nurl = \"http://127.0.0.1:9\"\n[thresholds]\nmax_ghost_attempts = 0\n"
                .to_string(),
            "thresholds.max_ghost_attempts",
        ),
    ];
    for (cfg, key) in cases {
        let mut run = Run::start(&cfg, &[]);
        let st = run.proc.wait(T);
        let err = run.proc.stderr_text();
        assert_eq!(st.code(), Some(78), "{key}: {err}");
        assert!(err.contains(key), "{key}: {err}");
        assert!(!err.contains("listening"), "nothing bound: {err}");
    }
}

/// The per-stage and proxy thresholds reach the verdict: one that is crossed fails the run
/// (exit 1, named with both values), the others pass. A zero-proxy calibration (the target
/// is the upstream itself) with a short storm and the constant `[mock]` 429s, so no nginx is
/// needed; the final `/metrics` (in the linger) counts both kinds of faults, each one the
/// client saw.
#[test]
fn a_crossed_proxy_threshold_fails_the_run() {
    let up = free_port();
    let cfg = format!(
        r#"
[run]
duration = "3s"
grace = "3s"
linger = "30s"

[target]
url = "http://127.0.0.1:{up}"

[load]
rate = 20.0

[[scenarios]]
name = "chat"

[mock]
error_rate = 0.2
error_status = 429

[upstream]
listen = "127.0.0.1:{up}"

[[upstream.storms]]
name = "blip"
start = "1s"
duration = "500ms"
kind = "status"
status = 503
retry_after = 2

[thresholds]
defaults = false
max_retry_amplification = 1.0
max_ghost_attempts = 0
max_retry_after_violations = 0
p99_proxy_added_request = "1us"
p99_proxy_added_chunk = "10s"
"#
    );
    let mut run = Run::start(&cfg, &[]);
    let admin = run.admin_addr();
    let (metrics, _) = run.final_state(admin, T);
    let (st, s) = run.finish(T);
    assert_eq!(st.code(), Some(1), "{}", run.output());
    assert_eq!(failed_thresholds(&s), ["p99_proxy_added_request"]);
    let sum = |name: &str, labels: &[(&str, &str)]| metric_sum(&metrics, name, labels);
    assert_eq!(
        sum(
            "soakd_threshold_passing",
            &[("threshold", "p99_proxy_added_request")]
        ),
        0.0
    );
    assert_eq!(
        sum(
            "soakd_threshold_passing",
            &[("threshold", "p99_proxy_added_chunk")]
        ),
        1.0
    );
    // Every 429 the client saw was injected: by the storm (503s) or the constant rate.
    let constant = sum(
        "soakd_upstream_faults_total",
        &[("storm", ""), ("kind", "status")],
    );
    let storm_faults = sum("soakd_upstream_faults_total", &[("storm", "blip")]);
    assert!(constant >= 3.0, "{constant}");
    assert_eq!(constant, count(&s, &["outcomes", "http_429"]) as f64);
    assert_eq!(storm_faults, count(&s, &["outcomes", "http_5xx"]) as f64);
    let t = s["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "p99_proxy_added_request")
        .unwrap();
    let msg = t["message"].as_str().unwrap();
    assert!(
        msg.starts_with("p99_proxy_added_request ") && msg.contains("> 0.000001s"),
        "{msg}"
    );
    // The storm hit the client directly (no proxy): every 503 reached it, no retry.
    let b = storm(&s, "blip");
    assert!(count(b, &["upstream_faults"]) >= 5, "{b}");
    assert_eq!(
        count(b, &["client_errors"]),
        count(b, &["upstream_faults"]),
        "{b}"
    );
    assert!(
        run.proc
            .stdout_text()
            .contains("threshold p99_proxy_added_request"),
        "{}",
        run.proc.stdout_text()
    );
}
