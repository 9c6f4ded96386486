//! Every give-up has a fate, every error an origin, and the run ends when both sides have:
//! soakd's client → a real nginx 1.22 → soakd's own upstream, on loopback, through the binary.
//!
//! Several nginx routes share one nginx and one soak: each scenario sends to its own path
//! prefix (`/pass/`, `/ignore/`, `/portkey/`), which nginx strips before proxying, so one run
//! measures several proxy behaviours side by side, per scenario. The routes:
//! - `pass`: pass-through (HTTP/1.1 upstream keep-alive, no buffering); a client abort closes
//!   the upstream at once (499);
//! - `ignore`: `proxy_ignore_client_abort on` with HTTP/1.1: nginx keeps the upstream call
//!   until its answer ends (a unary answer sends nothing before it, so no failed write stops
//!   it);
//! - `portkey`: the shape of Portkey's gateway 1.15.2 (`proxy_http_version 1.0;
//!   proxy_buffering on; proxy_ignore_client_abort on`): nginx stops the upstream only when a
//!   buffer flush to the gone client fails, 2–3.5 s after it left, so a 1.5 s stream ends first.
//!
//! Assertions are on counts, fates and their sums; timings only as generous bounds. A give-up
//! whose request the loaded proxy had not passed on yet is `unknown` (`never_reached`), which
//! the assertions allow for a quarter of a scenario's give-ups.

mod common;

use std::time::Duration;

use common::nginx::{free_port, Location, Nginx, NginxConfig, Server, Upstream};
use common::*;

const T: Duration = Duration::from_secs(120);

/// nginx with the `pass`, `ignore` and `portkey` routes to soakd's upstream on `upstream`, and
/// `closed` to a port nothing listens on.
fn routes(upstream: u16) -> Nginx {
    let to = "http://soakd_upstream/";
    let pass = Location::proxy("/pass/", to)
        .directive("proxy_http_version 1.1")
        .directive("proxy_set_header Connection \"\"")
        .directive("proxy_buffering off");
    let ignore = Location::proxy("/ignore/", to)
        .directive("proxy_http_version 1.1")
        .directive("proxy_set_header Connection \"\"")
        .directive("proxy_ignore_client_abort on");
    let portkey = Location::proxy("/portkey/", to)
        .directive("proxy_http_version 1.0")
        .directive("proxy_buffering on")
        .directive("proxy_ignore_client_abort on");
    let closed = Location::proxy("/closed/", &format!("http://127.0.0.1:{}/", free_port()));
    Nginx::start(
        &NginxConfig::new()
            .upstream(
                Upstream::new("soakd_upstream")
                    .server_with(format!("127.0.0.1:{upstream}"), "max_fails=0")
                    .directive("keepalive 16"),
            )
            .server(
                Server::plain()
                    .location(pass)
                    .location(ignore)
                    .location(portkey)
                    .location(closed),
            ),
    )
}

/// A two-sided soak config through `target` with soakd's upstream on `upstream`.
fn config(target: &str, upstream: u16, orphan_after: &str, extra: &str) -> String {
    format!(
        r#"
[run]
grace = "15s"
seed = 24

[target]
url = "{target}"
stream_timeout = "30s"

[upstream]
listen = "127.0.0.1:{upstream}"
orphan_after = "{orphan_after}"

[monitor]
sample_interval = "1s"
warmup = "0s"

[log]
progress_interval = "1s"

{extra}
"#
    )
}

/// A scenario named `name` sending to route `route`.
fn scenario(name: &str, route: &str, rest: &str) -> String {
    format!("[[scenarios]]\nname = \"{name}\"\npath = \"/{route}/v1/chat/completions\"\n{rest}\n")
}

fn sc<'a>(s: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    s["proxy"]["scenarios"]
        .as_array()
        .expect("a proxy block")
        .iter()
        .find(|x| x["name"] == name)
        .unwrap_or_else(|| panic!("no proxy scenario {name}: {}", s["proxy"]))
}

/// Client requests of scenario `name` that ended with `outcome`.
fn outcome(s: &serde_json::Value, name: &str, outcome: &str) -> u64 {
    let c = s["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .unwrap();
    c["requests"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.ends_with(&format!("/{outcome}")) || k.as_str() == outcome)
        .map(|(_, v)| v.as_u64().unwrap())
        .sum()
}

/// Asserts that the `n` give-ups of scenario `x` all got fate number `fate` (in the order of
/// [`fates`]), but for those whose request the proxy had not passed on yet when the client gave
/// up (on a loaded machine a request can wait longer than the cancel): `unknown`, reason
/// `never_reached`, a quarter at most. Returns how many got `fate`.
fn assert_fate(x: &serde_json::Value, fate: usize, n: u64) -> u64 {
    let never = count(x, &["give_ups", "unknown_reasons", "never_reached"]);
    let mut want = [0; 5];
    want[fate] = n.saturating_sub(never);
    want[4] = never;
    assert_eq!(fates(x), want, "{x}");
    assert!(never * 4 <= n, "most give-ups reached the upstream: {x}");
    want[fate]
}

fn fates(p: &serde_json::Value) -> [u64; 5] {
    [
        "propagated",
        "upstream_finished",
        "not_propagated",
        "orphaned",
        "unknown",
    ]
    .map(|f| count(p, &["give_ups", f]))
}

#[test]
fn cancels_through_three_routes_get_the_fate_the_route_gives_them() {
    let up = free_port();
    let nginx = routes(up);
    let extra = format!(
        r#"
[load]
rate = 12.0

[mock]
ttft = "50ms"
chunk_delay = "100ms"
chunks = 15
response_delay = "4500ms"

[thresholds]
defaults = false
max_orphans = 0
max_not_propagated_ratio = 0.9
max_wasted_output_tokens = 1

{}{}{}{}"#,
        scenario(
            "pass-unary",
            "pass",
            "stream = false\ncancel = { fraction = 0.5, after = \"200ms\" }"
        ),
        scenario(
            "pass-stream",
            "pass",
            "cancel = { fraction = 0.5, after = \"300ms\" }"
        ),
        scenario(
            "ignore-unary",
            "ignore",
            "stream = false\ncancel = { fraction = 1.0, after = \"200ms\" }"
        ),
        scenario(
            "portkey",
            "portkey",
            "cancel = { fraction = 0.5, after = \"300ms\" }"
        ),
    );
    // orphan_after 3 s: above the Portkey shape's run-on (1.15 s, plus however long a loaded
    // nginx takes to pass the request on), below the abort-ignoring route's (4.3 s).
    let cfg = config(&nginx.url(0), up, "3s", &extra);
    let mut run = Run::start(&cfg, &["--duration", "3s"]);
    // The thresholds are live in soakd_threshold_passing: max_orphans fails once the first
    // unary call behind the abort-ignoring route is orphaned (3 s after its cancel).
    let admin = run.admin_addr();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, text) = http_get(admin, "/metrics");
        let passing = |t: &str| metric_sum(&text, "soakd_threshold_passing", &[("threshold", t)]);
        if passing("max_orphans") == 0.0 {
            assert_eq!(passing("max_not_propagated_ratio"), 1.0, "{text}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "max_orphans never failed live"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (st, s) = run.finish(T);
    let out = run.output();
    println!("{}", run.proc.stdout_text());
    let p = &s["proxy"];

    // Pass-through: every cancel, unary or streamed, is propagated within orphan_after, and
    // nothing is orphaned or wasted.
    for name in ["pass-unary", "pass-stream"] {
        let x = sc(&s, name);
        let cancelled = outcome(&s, name, "cancelled");
        assert!(cancelled >= 3, "{name}: {cancelled} cancels\n{out}");
        assert_fate(x, 0, cancelled);
        assert_eq!(count(x, &["give_ups", "wasted_output_tokens"]), 0, "{x}");
        assert_eq!(count(x, &["orphans_total"]), 0, "{x}");
        // Both sides of every request ended before the summary.
        assert_eq!(
            count(x, &["joined"]),
            count(x, &["upstream_requests"]),
            "{x}"
        );
    }
    assert!(num(p, &["cancel_propagation", "max"]) < 3.0, "{p}");

    // proxy_ignore_client_abort on, unary, 4.5 s answers, cancels after 200 ms: every one
    // orphaned (its answer had not ended 3 s later); the answers that ended before the
    // summary count their 15 tokens each as wasted.
    let x = sc(&s, "ignore-unary");
    let cancelled = outcome(&s, "ignore-unary", "cancelled");
    assert!(cancelled >= 3, "{cancelled}\n{out}");
    let orphaned = assert_fate(x, 3, cancelled);
    assert_eq!(count(x, &["orphans_total"]), orphaned);
    let wasted = count(x, &["give_ups", "wasted_output_tokens"]);
    let ended = orphaned - count(x, &["orphans_now"]);
    assert!(ended > 0, "some orphans' answers ended during the run: {x}");
    assert_eq!(wasted, 15 * ended, "{x}");

    // The Portkey shape: the cancelled 1.5 s streams ran to their end (nginx stops the
    // upstream only 2–3.5 s after the client left), so each is not propagated, with the chunks
    // sent after the cancel wasted; none is orphaned.
    let x = sc(&s, "portkey");
    let cancelled = outcome(&s, "portkey", "cancelled");
    assert!(cancelled >= 3, "{cancelled}\n{out}");
    let ran_on = assert_fate(x, 2, cancelled);
    let wasted = count(x, &["give_ups", "wasted_output_tokens"]);
    // 15 chunks from 50 ms every 100 ms, cancelled at 300 ms: 12 after the cancel (13 when
    // the proxy took over 50 ms to pass the request on; fewer when the cancel fired late).
    assert!(
        wasted >= 6 * ran_on && wasted <= 13 * ran_on,
        "{wasted} for {ran_on}: {x}"
    );
    assert_eq!(count(x, &["orphans_total"]), 0, "{x}");
    assert_eq!(count(p, &["run_on", "count"]), ran_on, "{p}");

    // The response stage: one sample per answer read whole, unary and streamed.
    let ok: u64 = ["pass-unary", "pass-stream", "portkey"]
        .iter()
        .map(|n| outcome(&s, n, "ok"))
        .sum();
    assert!(ok >= 6, "{ok}");
    assert_eq!(count(p, &["added", "response", "count"]), ok, "{p}");

    // The summary line, the JSON totals and the thresholds.
    let g = &p["give_ups"];
    assert_eq!(
        fates(p).iter().sum::<u64>(),
        count(&s, &["outcomes", "cancelled"]),
        "every give-up has one fate: {g}"
    );
    let line = format!(
        "give-ups {}: propagated {}, not propagated {} (tokens generated after give-up: ",
        count(&s, &["outcomes", "cancelled"]),
        count(g, &["propagated"]),
        count(g, &["not_propagated"])
    );
    assert!(run.proc.stdout_text().contains(&line), "{line}\n{out}");
    assert!(out.contains("orphans open "), "the progress line: {out}");
    assert_eq!(st.code(), Some(1), "{out}");
    let failed = failed_thresholds(&s);
    assert_eq!(failed, ["max_orphans", "max_wasted_output_tokens"], "{out}");
    let msg = |name: &str| {
        s["thresholds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let orphans = count(g, &["orphaned"]);
    assert!(
        msg("max_orphans").starts_with(&format!("max_orphans {orphans} > 0")),
        "{}",
        msg("max_orphans")
    );
    assert!(
        msg("max_wasted_output_tokens").starts_with(&format!(
            "max_wasted_output_tokens {} tokens > 1 tokens",
            count(g, &["wasted_output_tokens"])
        )),
        "{}",
        msg("max_wasted_output_tokens")
    );
    drop(nginx);
}

#[test]
fn stalls_time_out_into_orphans_errors_have_an_origin_and_the_run_waits_for_both_sides() {
    let up = free_port();
    let nginx = routes(up);
    // Every answer fails: 40 % HTTP 500 at once, 60 % a stall (the headers, then nothing).
    // The client times out after 1 s; the last timeouts are what ends the load.
    let extra = format!(
        r#"
[load]
rate = 15.0

[mock]
error_rate = 0.4
error_status = 500
stall_rate = 0.6

[thresholds]
defaults = false

{}{}"#,
        scenario("pass", "pass", "stream = false"),
        scenario("ignore", "ignore", "stream = false"),
    );
    let cfg = config(&nginx.url(0), up, "2s", &extra).replacen(
        "[target]\nurl",
        "[target]\nrequest_timeout = \"1s\"\nurl",
        1,
    );
    // Through reqwest (the other runs use soakd's own HTTP/1.1 client): a timeout gives up at
    // its deadline on either client.
    let mut run = Run::start_env(
        &cfg,
        &["--duration", "2s"],
        &[("SOAKD_HTTP_CLIENT", "reqwest")],
    );
    let (st, s) = run.finish(T);
    let out = run.output();
    println!("{}", run.proc.stdout_text());
    assert_eq!(st.code(), Some(0), "{out}");
    assert!(out.contains("load client: reqwest"), "{out}");
    // Every give-up has exactly one fate.
    let p = &s["proxy"];
    assert_eq!(
        fates(p).iter().sum::<u64>(),
        count(&s, &["outcomes", "timeout"]),
        "{p}"
    );
    for (name, fate) in [("pass", 0), ("ignore", 3)] {
        let x = sc(&s, name);
        let timeouts = outcome(&s, name, "timeout");
        let errors = outcome(&s, name, "http_5xx");
        assert!(timeouts >= 3, "{name}: {out}");
        // Behind the pass-through route a timeout closes the upstream call at once; behind
        // the abort-ignoring one the stalled call stays open: orphaned, although it never
        // sent a body byte.
        assert_fate(x, fate, timeouts);
        assert_eq!(count(x, &["give_ups", "wasted_output_tokens"]), 0, "{x}");
        // Every 500 the client saw was the upstream's, passed through.
        assert_eq!(count(x, &["errors", "upstream"]), errors, "{x}");
        assert_eq!(count(x, &["errors", "proxy"]), 0, "{x}");
        // Every request reached the upstream, but for the timeouts that never did.
        let never = count(x, &["give_ups", "unknown_reasons", "never_reached"]);
        assert_eq!(
            count(x, &["upstream_requests"]),
            timeouts + errors - never,
            "{x}"
        );
    }
    // The end of the run waited for the upstream side: behind the pass-through route every
    // request the upstream received was joined, the last timeouts' ones included.
    let x = sc(&s, "pass");
    assert_eq!(
        count(x, &["joined"]),
        count(x, &["upstream_requests"]),
        "{x}"
    );
    // The stalled orphans are still open at the summary (they end at shutdown).
    let x = sc(&s, "ignore");
    assert_eq!(
        count(x, &["orphans_now"]),
        count(x, &["give_ups", "orphaned"]),
        "{x}"
    );
    // 40 % of about 30 requests failed with a 500 (all but surely at least one).
    assert!(count(p, &["errors", "upstream"]) >= 1, "{p}");
    // A unary run has no first-token or chunk stage: no empty rows.
    let text = run.proc.stdout_text();
    assert!(
        !text.contains("first token") && !text.contains("added: chunk"),
        "{text}"
    );
    assert!(text.contains("errors by origin: upstream "), "{text}");
    drop(nginx);
}

#[test]
fn a_proxy_that_never_reaches_the_upstream_is_told_in_one_line() {
    let up = free_port();
    let nginx = routes(up);
    let extra = format!(
        "[load]\nrate = 10.0\n\n[thresholds]\ndefaults = false\n\n{}",
        scenario("closed", "closed", "stream = false"),
    );
    let cfg = config(&nginx.url(0), up, "1s", &extra);
    let mut run = Run::start(&cfg, &["--duration", "1s"]);
    let (st, s) = run.finish(T);
    let out = run.output();
    println!("{}", run.proc.stdout_text());
    assert_eq!(st.code(), Some(0), "{out}");
    let errors = count(&s, &["outcomes", "http_5xx"]);
    assert!(errors >= 5, "{out}");
    let e = &s["proxy"]["errors"];
    assert_eq!(
        [
            count(e, &["upstream"]),
            count(e, &["proxy"]),
            count(e, &["never_reached"])
        ],
        [0, errors, errors],
        "{e}"
    );
    let text = run.proc.stdout_text();
    assert_eq!(
        text.matches("the proxy never reached the upstream: check its provider address")
            .count(),
        1,
        "{text}"
    );
    drop(nginx);
}
