//! The two-sided soak end to end: soakd's client → a real nginx reverse proxy → soakd's own
//! upstream, all on loopback, and what soakd says the proxy added, held back, retried and
//! orphaned. nginx facts these cases rest on (nginx 1.22): with `proxy_http_version 1.1` it
//! passes a chunked SSE answer through chunk by chunk even with `proxy_buffering on`; with
//! HTTP/1.0 to the upstream (its default) and `proxy_buffering on` it holds the whole answer
//! back while it fits its buffers; it never retries a POST unless `proxy_next_upstream` says
//! `non_idempotent`. Measured here: `proxy_ignore_client_abort on` alone does not keep a
//! streaming upstream request alive — once a write to the gone client fails, nginx finalizes
//! the request and closes the upstream (about one chunk after the cancel); with the response
//! being stored (`proxy_store on`, as with a cache) it reads the upstream to the end: an
//! orphan. Every assertion is on counts and ratios, none on wall-clock speed.

mod common;

use std::time::Duration;

use common::nginx::{free_port, Location, Nginx, NginxConfig, Server, Upstream};
use common::*;

const T: Duration = Duration::from_secs(120);

/// A soak of `duration` through `target`, with soakd's upstream on `upstream`.
fn two_sided(target: &str, upstream: u16, extra: &str) -> String {
    format!(
        r#"
[run]
grace = "15s"
seed = 11

[target]
url = "{target}"
stream_timeout = "30s"

[upstream]
listen = "127.0.0.1:{upstream}"
orphan_after = "1s"

[monitor]
sample_interval = "1s"
warmup = "0s"

[thresholds]
defaults = false

[log]
progress_interval = "2s"

{extra}
"#
    )
}

/// nginx proxying `/v1/` to soakd's upstream on `upstream`, with `directives` on the route.
fn proxy(upstream: u16, directives: &[&str]) -> Nginx {
    let mut route = Location::proxy("/v1/", "http://soakd_upstream");
    for d in directives {
        route = route.directive(d);
    }
    Nginx::start(
        &NginxConfig::new()
            .upstream(
                Upstream::new("soakd_upstream")
                    .server_with(format!("127.0.0.1:{upstream}"), "max_fails=0"),
            )
            .server(Server::plain().location(route)),
    )
}

fn proxy_counts(s: &serde_json::Value, key: &str) -> u64 {
    s["proxy"]["scenarios"]
        .as_array()
        .expect("a proxy block")
        .iter()
        .map(|sc| count(sc, &[key]))
        .sum()
}

#[test]
fn a_pass_through_proxy_buffers_nothing_and_propagates_every_cancel() {
    let up = free_port();
    let nginx = proxy(
        up,
        &[
            "proxy_http_version 1.1",
            "proxy_set_header Connection \"\"",
            "proxy_buffering off",
        ],
    );
    let cfg = two_sided(
        &nginx.url(0),
        up,
        r#"
[load]
rate = 10.0

[mock]
ttft = "50ms"
chunk_delay = "100ms"
chunks = 30

[[scenarios]]
name = "chat"
cancel = { fraction = 0.5, after = "500ms" }
"#,
    );
    let mut run = Run::start(&cfg, &["--duration", "6s"]);
    let (st, s) = run.finish(T);
    assert_eq!(st.code(), Some(0), "{}", run.proc.stderr_text());
    let cancelled = count(&s, &["streams", "cancelled"]);
    let completed = count(&s, &["streams", "completed"]);
    assert!(cancelled >= 15 && completed >= 15, "{s}");
    let joined = proxy_counts(&s, "joined");
    assert_eq!(joined, cancelled + completed, "every request joined: {s}");
    // At most 1 % of the streams look buffered.
    assert!(
        proxy_counts(&s, "buffered_streams") * 100 <= joined,
        "{}",
        s["proxy"]
    );
    // The upstream saw the disconnect of at least 95 % of the cancels, each within
    // orphan_after (1 s), and nothing was orphaned.
    let p = &s["proxy"]["cancel_propagation"];
    assert!(
        count(p, &["count"]) * 100 >= cancelled * 95,
        "{p} of {cancelled}"
    );
    assert!(num(p, &["max"]) < 1.0, "{p}");
    assert_eq!(proxy_counts(&s, "orphans_total"), 0, "{}", s["proxy"]);
    assert_eq!(proxy_counts(&s, "retries"), 0);
    // Every chunk of every completed stream was matched: 30 per stream.
    assert!(
        count(&s, &["proxy", "added", "chunk", "count"]) >= completed * 30,
        "{}",
        s["proxy"]
    );
    let untagged = s["proxy"]["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|sc| sc["name"] == "untagged")
        .unwrap();
    assert_eq!(count(untagged, &["upstream_requests"]), 0);
    // nginx saw every request, on the route under test.
    assert_eq!(
        nginx.access_log().len() as u64,
        count(&s, &["requests_sent"]),
        "{}",
        nginx.error_log()
    );
}

#[test]
fn a_buffering_proxy_is_caught_holding_streams_back() {
    let up = free_port();
    // HTTP/1.0 to the upstream (nginx's default) with buffering on: the whole answer is held
    // until it ends (it fits the default buffers).
    let nginx = proxy(up, &["proxy_buffering on"]);
    let cfg = two_sided(
        &nginx.url(0),
        up,
        r#"
[load]
rate = 10.0

[mock]
ttft = "20ms"
chunk_delay = "20ms"
chunks = 12

[[scenarios]]
name = "chat"
"#,
    );
    let mut run = Run::start(&cfg, &["--duration", "4s"]);
    let (st, s) = run.finish(T);
    assert_eq!(st.code(), Some(0), "{}", run.proc.stderr_text());
    let completed = count(&s, &["streams", "completed"]);
    assert!(completed >= 30, "{s}");
    let buffered = proxy_counts(&s, "buffered_streams");
    assert!(
        buffered * 10 >= completed * 9,
        "{buffered} of {completed} completed streams buffered: {}",
        s["proxy"]
    );
    // Held back: the first chunk waited for the whole answer (11 × 20 ms after it).
    assert!(
        num(&s, &["proxy", "added", "first_token", "p50"]) >= 0.15,
        "{}",
        s["proxy"]
    );
    assert!(
        proxy_counts(&s, "coalesced_chunks") >= completed * 9,
        "{}",
        s["proxy"]
    );
}

/// A mixed-API soak through one proxy that passes chat through and buffers Anthropic
/// messages: the merged added-time percentiles mix the two up, the per-scenario ones in
/// `/status` and the summary tell them apart.
#[test]
fn per_scenario_added_time_tells_a_buffered_route_from_a_pass_through_one() {
    let up = free_port();
    let nginx = Nginx::start(
        &NginxConfig::new()
            .upstream(
                Upstream::new("soakd_upstream")
                    .server_with(format!("127.0.0.1:{up}"), "max_fails=0"),
            )
            .server(
                Server::plain()
                    .location(
                        Location::proxy("/v1/chat/", "http://soakd_upstream")
                            .directive("proxy_http_version 1.1")
                            .directive("proxy_set_header Connection \"\"")
                            .directive("proxy_buffering off"),
                    )
                    // nginx's defaults: HTTP/1.0 to the upstream, buffering on.
                    .location(Location::proxy("/v1/messages", "http://soakd_upstream")),
            ),
    );
    let cfg = two_sided(
        &nginx.url(0),
        up,
        r#"
[load]
rate = 10.0

[mock]
ttft = "20ms"
chunk_delay = "20ms"
chunks = 12

[[scenarios]]
name = "chat"
api = "openai"

[[scenarios]]
name = "messages"
api = "anthropic"
"#,
    );
    let mut run = Run::start(&cfg, &["--duration", "5s"]);
    let admin = run.admin_addr();
    // /status while the soak runs: each scenario has its own added time per stage.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let live = loop {
        let (_, body) = http_get(admin, "/status");
        let st: serde_json::Value = serde_json::from_str(&body).unwrap();
        let firsts = |name: &str| {
            st["proxy"]["scenarios"]
                .as_array()
                .and_then(|a| a.iter().find(|s| s["name"] == name))
                .map_or(0, |s| count(s, &["added", "first_token", "count"]))
        };
        if firsts("chat") >= 5 && firsts("messages") >= 5 {
            break st;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no per-scenario added time: {st}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let scenario = |s: &serde_json::Value, name: &str| {
        s["proxy"]["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .find(|sc| sc["name"] == name)
            .unwrap()
            .clone()
    };
    for stage in ["request", "first_token", "chunk"] {
        assert!(
            count(&scenario(&live, "chat"), &["added", stage, "count"]) > 0,
            "{live}"
        );
    }
    let (st, s) = run.finish(T);
    assert_eq!(st.code(), Some(0), "{}", run.proc.stderr_text());
    let (chat, messages) = (scenario(&s, "chat"), scenario(&s, "messages"));
    // Held back: the first Anthropic chunk waited for the whole answer (11 × 20 ms after it);
    // chat's came through at once.
    let first = |sc: &serde_json::Value, q: &str| num(sc, &["added", "first_token", q]);
    assert!(first(&messages, "p50") >= 0.15, "{messages}");
    assert!(first(&chat, "p50") < 0.05, "{chat}");
    // The merged percentiles hide it: their p99 is the buffered route's, their p50 could be
    // either. Each scenario's counts add up to the merged count, stage by stage.
    for stage in ["request", "first_token", "chunk"] {
        let n = |v: &serde_json::Value| count(v, &["added", stage, "count"]);
        assert_eq!(
            n(&chat) + n(&messages),
            n(&s["proxy"]),
            "{stage}: {}",
            s["proxy"]
        );
    }
    assert!(num(&s, &["proxy", "added", "first_token", "p99"]) >= 0.15);
    let untagged = scenario(&s, "untagged");
    assert_eq!(
        count(&untagged, &["added", "request", "count"]),
        0,
        "{untagged}"
    );
    // The summary text: a row per scenario and stage, the buffered one's first token in
    // hundreds of milliseconds.
    let out = run.proc.stdout_text();
    assert!(out.contains("    added by scenario:\n"), "{out}");
    let row = |name: &str, stage: &str| {
        out.lines()
            .find(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.first() == Some(&name) && l.contains(&format!(" {stage} "))
            })
            .unwrap_or_else(|| panic!("no {name} {stage} row in {out}"))
            .to_string()
    };
    let m = row("messages", "first token");
    assert!(
        m.contains(&format!(
            "n={:<9}",
            count(&messages, &["added", "first_token", "count"])
        )),
        "{m}"
    );
    for stage in ["request", "first token", "chunk"] {
        row("chat", stage);
        row("messages", stage);
    }
}

#[test]
fn a_proxy_that_ignores_client_aborts_orphans_upstream_streams() {
    let up = free_port();
    let nginx = proxy(
        up,
        &[
            "proxy_http_version 1.1",
            "proxy_set_header Connection \"\"",
            "proxy_buffering on",
            "proxy_ignore_client_abort on",
            "proxy_store on",
        ],
    );
    let cfg = two_sided(
        &nginx.url(0),
        up,
        r#"
[load]
rate = 5.0

[mock]
ttft = "50ms"
chunk_delay = "100ms"
chunks = 30

[[scenarios]]
name = "chat"
cancel = { fraction = 1.0, after = "300ms" }
"#,
    );
    let mut run = Run::start(&cfg, &["--duration", "3s"]);
    let (st, s) = run.finish(T);
    assert_eq!(st.code(), Some(0), "{}", run.proc.stderr_text());
    assert!(count(&s, &["streams", "cancelled"]) >= 10, "{s}");
    // Each upstream stream ran on for about 2.7 s after its client gave up: an orphan after
    // 1 s. Their upstream answers outlive the soak's drain, so count those the tracker saw.
    assert!(proxy_counts(&s, "orphans_total") > 0, "{}", s["proxy"]);
    assert!(
        run.proc.stderr_text().contains("proxy +"),
        "the progress line carries the proxy fragment"
    );
}

#[test]
fn a_retrying_proxy_is_counted_at_its_retry_rate() {
    let up = free_port();
    // The upstream listed twice: nginx tries the "next" one after a 500 from the first.
    let nginx = Nginx::start(
        &NginxConfig::new()
            .upstream(
                Upstream::new("twice")
                    .server_with(format!("127.0.0.1:{up}"), "max_fails=0")
                    .server_with(format!("127.0.0.1:{up}"), "max_fails=0"),
            )
            .server(
                Server::plain().location(
                    Location::proxy("/v1/", "http://twice")
                        .directive("proxy_http_version 1.1")
                        .directive("proxy_set_header Connection \"\"")
                        .directive("proxy_next_upstream error http_500 non_idempotent")
                        .directive("proxy_next_upstream_tries 2"),
                ),
            ),
    );
    let cfg = two_sided(
        &nginx.url(0),
        up,
        r#"
[load]
rate = 50.0

[mock]
ttft = "5ms"
chunk_delay = "1ms"
chunks = 4
error_rate = 0.3
error_status = 500

[[scenarios]]
name = "unary"
stream = false
"#,
    );
    let mut run = Run::start(&cfg, &["--duration", "5s"]);
    let (st, s) = run.finish(T);
    // About 0.3 × 0.3 of the requests fail on both tries: the default error_ratio is off here.
    assert_eq!(st.code(), Some(0), "{}", run.proc.stderr_text());
    let sent = count(&s, &["requests_sent"]) as f64;
    let retries = proxy_counts(&s, "retries") as f64;
    let ratio = retries / sent;
    assert!((0.2..=0.4).contains(&ratio), "retries {retries} of {sent}");
    assert_eq!(
        proxy_counts(&s, "upstream_requests") as f64,
        sent + retries,
        "{}",
        s["proxy"]
    );
    // The client saw 500 only when both tries failed.
    let failed = count(&s, &["outcomes", "http_5xx"]) as f64;
    assert!(failed / sent < 0.2, "{failed} of {sent}");
}

#[test]
fn calibration_without_a_proxy_adds_next_to_nothing() {
    let up = free_port();
    let cfg = two_sided(
        &format!("http://127.0.0.1:{up}"),
        up,
        r#"
[load]
rate = 20.0

[mock]
ttft = "100ms"
chunk_delay = "20ms"
chunks = 8

[[scenarios]]
name = "chat"

[[scenarios]]
name = "msgs"
api = "anthropic"
"#,
    );
    let mut run = Run::start(&cfg, &["--duration", "4s"]);
    let (st, s) = run.finish(T);
    assert_eq!(st.code(), Some(0), "{}", run.proc.stderr_text());
    let p = &s["proxy"];
    assert!(count(p, &["added", "request", "count"]) >= 70, "{p}");
    // With no proxy in between, what is "added" is soakd's own loopback and scheduling noise:
    // a small fraction of the upstream's own 100 ms to first token.
    let request = num(p, &["added", "request", "p50"]);
    let first = num(p, &["added", "first_token", "p50"]);
    assert!(request < 0.1 * 0.1 && first < 0.1 * 0.1, "{p}");
    assert_eq!(proxy_counts(&s, "buffered_streams"), 0, "{p}");
}

#[test]
fn requests_without_an_id_are_untagged_with_one_warning() {
    let up = free_port();
    let cfg = two_sided(
        &format!("http://127.0.0.1:{up}"),
        up,
        "[load]\nrate = 5.0\n\n[[scenarios]]\nname = \"chat\"\n",
    );
    let mut run = Run::start(&cfg, &["--duration", "4s"]);
    run.proc
        .wait_line("upstream listening on", Duration::from_secs(30));
    // A "proxy" that strips the id everywhere: plain requests straight to the upstream.
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .unwrap();
    for _ in 0..5 {
        let r = client
            .post(format!("http://127.0.0.1:{up}/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let (st, s) = run.finish(T);
    assert_eq!(st.code(), Some(0), "{}", run.proc.stderr_text());
    let untagged = s["proxy"]["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|sc| sc["name"] == "untagged")
        .unwrap()
        .clone();
    assert_eq!(
        count(&untagged, &["upstream_requests"]),
        5,
        "{}",
        s["proxy"]
    );
    let warnings = run
        .proc
        .stderr_text()
        .matches("carries no soakd id")
        .count();
    assert_eq!(warnings, 1, "{}", run.proc.stderr_text());
    // soakd's own requests were all joined.
    assert_eq!(proxy_counts(&s, "joined"), count(&s, &["requests_sent"]));
}

#[test]
fn a_taken_upstream_port_fails_before_any_load() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cfg = two_sided(
        "http://127.0.0.1:9",
        port,
        "[load]\nrate = 5.0\n\n[[scenarios]]\nname = \"chat\"\n",
    );
    let mut run = Run::start(&cfg, &["--duration", "10s"]);
    let st = run.proc.wait(T);
    assert_eq!(st.code(), Some(2), "{}", run.proc.stderr_text());
    let err = run.proc.stderr_text();
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("upstream"),
        "{err}"
    );
    assert!(!err.contains("soak started"), "no load began: {err}");
}

#[test]
fn two_sided_config_errors_name_the_field() {
    let port = free_port();
    for (extra, field) in [
        (
            "[mock]\nleak_bytes_per_request = 1024",
            "mock.leak_bytes_per_request",
        ),
        ("[mock]\nexit_after = \"5s\"", "mock.exit_after"),
        ("[upstream]\nmax_tracked = 0", "upstream.max_tracked"),
    ] {
        let cfg = format!(
            "[target]\nurl = \"http://127.0.0.1:9\"\n[upstream]\nlisten = \"127.0.0.1:{port}\"\n{extra}\n"
        );
        let cfg = cfg.replacen("[upstream]\nmax_tracked", "max_tracked", 1);
        let mut run = Run::start(&cfg, &[]);
        let st = run.proc.wait(T);
        assert_eq!(st.code(), Some(78), "{extra}: {}", run.proc.stderr_text());
        assert!(
            run.proc.stderr_text().contains(field),
            "{}",
            run.proc.stderr_text()
        );
    }
    // No target: the proxy under test must be named.
    let mut run = Run::start(&format!("[upstream]\nlisten = \"127.0.0.1:{port}\"\n"), &[]);
    assert_eq!(run.proc.wait(T).code(), Some(78));
    assert!(run.proc.stderr_text().contains("target.url"));
}
