//! TLS and HTTP/2, proven against a real server: the real `soakd run` binary soaks a real
//! nginx on loopback, which proxies `/v1/chat/completions` to a real `soakd mock`, so every
//! response is a real SSE stream relayed by nginx.
//!
//! nginx serves four servers (see [`Stack`]): HTTPS with `http2` (ALPN offers h2 and
//! http/1.1), plain HTTP/1.1, plain h2c (prior knowledge), and plain HTTP/1.1 that closes a
//! connection after three requests. Protocol and connection facts
//! are read from nginx's own access log (`$server_protocol`, `$ssl_alpn_protocol`,
//! `$connection`, `$connection_requests`), never from soakd, so they are proven server side.
//!
//! What reqwest/hyper guarantee, and so what is asserted:
//! - `http = "http2"` (prior knowledge): hyper's pool holds a per-host "connecting" lock for
//!   HTTP/2, so every request waits for the one connection being made and then multiplexes
//!   on it. With nginx's limits above the test's load (128 concurrent streams, 1000 requests
//!   per connection, 75 s keep-alive), all requests of a run share exactly one `$connection`.
//! - `http = "auto"` over TLS: the version is only known after ALPN, so requests that start
//!   while the first handshake is still running may each open a connection (hyper drops the
//!   extra ones that also negotiate h2 before the first is pooled); once an h2 connection is
//!   pooled, every later request multiplexes on it. Asserted: all HTTP/2.0, and far fewer
//!   connections than concurrent streams.
//! - HTTP/1.1: a connection carries one request at a time and goes back to the pool when its
//!   response has been read to the end; so connections ≤ the in-flight cap, and with short
//!   streams some connection carries several requests (`$connection_requests` > 1).
//!
//! Runs are short (20 rps for 2 s) and bounded; every wait has a deadline.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::nginx::{
    connections, peak_concurrency, AccessEntry, Location, Nginx, NginxConfig, Server, Upstream,
};
use common::pki::Pki;
use common::*;

const T: Duration = Duration::from_secs(60);
const PATH: &str = "/v1/chat/completions";
/// Requests are planned at 20 rps for this long.
const RUN: &str = "2s";

/// Streams of about 2 s (0.5 s to the first token, 20 chunks 75 ms apart): a 2 s run at 20
/// rps has all its ~40 streams open at once near its end.
const LONG_STREAMS: &[&str] = &["--ttft", "500ms", "--chunk-delay", "75ms", "--chunks", "20"];
/// Streams of about 0.1 s: at 20 rps only a few are open at once, so keep-alive reuse shows.
const SHORT_STREAMS: &[&str] = &["--ttft", "10ms", "--chunk-delay", "10ms", "--chunks", "8"];

/// The in-flight cap of the HTTP/1.1 runs: at most this many connections can be busy at once.
const H1_CAP: u32 = 16;

/// Server indexes in [`Stack::nginx`].
const HTTPS: usize = 0;
const PLAIN_H1: usize = 1;
const PLAIN_H2C: usize = 2;
/// Plain HTTP/1.1 whose connections nginx closes after [`KEEPALIVE_REQUESTS`] requests (it says
/// `Connection: close` on the last response).
const PLAIN_H1_SHORT: usize = 3;
const KEEPALIVE_REQUESTS: u64 = 3;

/// A mock behind nginx, and the PKI nginx's certificate comes from.
struct Stack {
    nginx: Nginx,
    pki: Pki,
    _mock: Mock,
    _pki_dir: TempDir,
}

impl Stack {
    fn start(mock_args: &[&str]) -> Stack {
        let pki_dir = TempDir::new("pki");
        let pki = Pki::generate(pki_dir.path());
        let mock = Mock::start(mock_args);
        // A streaming reverse-proxy route: keep-alive to the upstream, no response buffering.
        let route = || {
            Location::proxy(&format!("= {PATH}"), "http://mock")
                .directive("proxy_http_version 1.1")
                .directive("proxy_set_header Connection \"\"")
                .directive("proxy_buffering off")
        };
        let cfg = NginxConfig::new()
            .upstream(
                Upstream::new("mock")
                    .server(mock.addr)
                    .directive("keepalive 16"),
            )
            .server(Server::tls(&pki.cert, &pki.key).http2().location(route()))
            .server(Server::plain().location(route()))
            .server(Server::plain().http2().location(route()))
            .server(
                Server::plain()
                    .directive(&format!("keepalive_requests {KEEPALIVE_REQUESTS}"))
                    .location(route()),
            );
        let nginx = Nginx::start(&cfg);
        Stack {
            nginx,
            pki,
            _mock: mock,
            _pki_dir: pki_dir,
        }
    }

    /// Runs soakd at 20 rps for [`RUN`] against server `server` with the given `[target]`
    /// lines; returns the summary, soakd's stderr and nginx's entries for this run (waiting
    /// for one per request that reached nginx: `expect_logged`).
    fn soak(
        &self,
        server: usize,
        target: &str,
        max_in_flight: u32,
        expect_logged: bool,
    ) -> (serde_json::Value, String, Vec<AccessEntry>) {
        let url = self.nginx.url(server);
        let cfg = format!(
            r#"
[run]
grace = "10s"
seed = 7

[target]
url = "{url}"
{target}

[load]
rate = 20.0
arrivals = "constant"
max_in_flight = {max_in_flight}

[monitor]
sample_interval = "1s"
warmup = "0s"

[log]
format = "json"
progress_interval = "1s"

[[scenarios]]
name = "chat"
api = "openai"
stream = true
max_tokens = 64
"#
        );
        let mark = self.nginx.access_mark();
        // A proxy from the environment must not carry loopback traffic.
        let mut run = Run::start_env(
            &cfg,
            &["--duration", RUN],
            &[("NO_PROXY", "127.0.0.1,localhost")],
        );
        let (st, s) = run.finish(T);
        let stderr = run.proc.stderr_text();
        // A run whose requests never reach nginx fails on the default error_ratio (exit 1);
        // anything else is a crash.
        let want: &[i32] = if expect_logged { &[0] } else { &[1] };
        assert!(
            st.code().is_some_and(|c| want.contains(&c)),
            "exit {st:?}\n{stderr}"
        );
        let sent = count(&s, &["requests_sent"]) as usize;
        assert!(sent >= 30, "only {sent} requests sent: {s}");
        let entries = if expect_logged {
            let e = self
                .nginx
                .wait_access_since(mark, sent, Duration::from_secs(20));
            // Nothing more than one entry per request.
            std::thread::sleep(Duration::from_millis(200));
            assert_eq!(self.nginx.access_log().len() - mark, sent, "{e:#?}");
            e
        } else {
            std::thread::sleep(Duration::from_millis(200));
            self.nginx.access_log()[mark..].to_vec()
        };
        (s, stderr, entries)
    }
}

/// Every request ended `ok` with a completed stream, and none was dropped.
fn assert_all_ok(s: &serde_json::Value) {
    let sent = count(s, &["requests_sent"]);
    assert_eq!(count(s, &["dropped", "in_flight_cap"]), 0, "{s}");
    assert_eq!(count(s, &["outcomes", "ok"]), sent, "{s}");
    assert_eq!(count(s, &["streams", "completed"]), sent, "{s}");
}

/// Every entry is a 200 for the chat path on `port`, relayed from the mock, over `protocol`
/// with ALPN `alpn` (empty: no TLS).
fn assert_entries(entries: &[AccessEntry], port: u16, protocol: &str, alpn: &str) {
    assert!(!entries.is_empty());
    for e in entries {
        assert_eq!(e.port, port, "{e:?}");
        assert_eq!(e.protocol, protocol, "{e:?}");
        assert_eq!(e.alpn, alpn, "{e:?}");
        assert_eq!((e.method.as_str(), e.uri.as_str()), ("POST", PATH), "{e:?}");
        assert_eq!(e.status, 200, "{e:?}");
        assert!(!e.upstream_addr.is_empty(), "not proxied: {e:?}");
    }
}

/// For each connection, its `$connection_requests` values, sorted.
fn requests_per_connection(entries: &[AccessEntry]) -> BTreeMap<u64, Vec<u64>> {
    let mut m: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for e in entries {
        m.entry(e.connection)
            .or_default()
            .push(e.connection_requests);
    }
    for v in m.values_mut() {
        v.sort_unstable();
    }
    m
}

/// HTTP/1.1 keep-alive: each connection's requests are numbered 1..=n with none missing
/// (one at a time on it), connections stay within the in-flight cap, and at least one
/// connection carried more than one request.
fn assert_keep_alive(entries: &[AccessEntry], max_in_flight: usize) {
    let per = requests_per_connection(entries);
    for (c, reqs) in &per {
        let want: Vec<u64> = (1..=reqs.len() as u64).collect();
        assert_eq!(reqs, &want, "connection {c}");
    }
    assert!(
        per.len() <= max_in_flight,
        "{} connections for at most {max_in_flight} requests in flight: {per:?}",
        per.len()
    );
    assert!(
        per.values().any(|r| r.len() > 1),
        "no connection was reused: {per:?}"
    );
}

/// JSON log lines of soakd's `request failed` warnings with this outcome.
fn warnings(stderr: &str, outcome: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "request failed" && v["outcome"] == outcome)
        .collect()
}

#[test]
fn ca_file_verifies_and_auto_negotiates_h2_through_alpn() {
    let st = Stack::start(LONG_STREAMS);
    let target = format!("ca_file = \"{}\"\nhttp = \"auto\"", st.pki.ca.display());
    let (s, _, entries) = st.soak(HTTPS, &target, 1000, true);
    assert_all_ok(&s);
    assert_entries(&entries, st.nginx.port(HTTPS), "HTTP/2.0", "h2");
    let conns = connections(&entries);
    let peak = peak_concurrency(&entries);
    assert!(peak >= 20, "streams were not concurrent: peak {peak}");
    assert!(
        conns.len() * 4 <= peak,
        "{} connections for {peak} concurrent streams",
        conns.len()
    );
}

#[test]
fn wrong_or_missing_ca_is_a_connect_error_that_names_the_tls_failure() {
    let st = Stack::start(SHORT_STREAMS);
    let wrong = format!("ca_file = \"{}\"", st.pki.other_ca.display());
    let mut alerts = 0;
    for target in [wrong.as_str(), ""] {
        let (s, stderr, entries) = st.soak(HTTPS, target, 1000, false);
        let sent = count(&s, &["requests_sent"]);
        assert_eq!(count(&s, &["outcomes", "connect_error"]), sent, "{s}");
        assert_eq!(count(&s, &["outcomes", "ok"]), 0, "{s}");
        // No request got through the handshake.
        assert!(entries.is_empty(), "{entries:?}");
        let w = warnings(&stderr, "connect_error");
        assert_eq!(w.len(), 1, "one warning per 10 s window: {w:?}\n{stderr}");
        assert_eq!(
            w[0]["detail"],
            "connect failed: TLS: certificate signed by an unknown issuer (UnknownIssuer)",
            "{stderr}"
        );
        // Server side: every request was one handshake that soakd ended with the TLS alert
        // "unknown CA" (48); no retries.
        alerts += sent;
        st.nginx.wait_error_log(
            "alert unknown ca:SSL alert number 48",
            alerts as usize,
            Duration::from_secs(10),
        );
    }
}

#[test]
fn insecure_skip_verify_accepts_an_unknown_ca() {
    let st = Stack::start(SHORT_STREAMS);
    let (s, _, entries) = st.soak(HTTPS, "insecure_skip_verify = true", 1000, true);
    assert_all_ok(&s);
    assert_entries(&entries, st.nginx.port(HTTPS), "HTTP/2.0", "h2");
}

#[test]
fn https_http2_multiplexes_concurrent_streams_on_one_connection() {
    let st = Stack::start(LONG_STREAMS);
    let target = format!("ca_file = \"{}\"\nhttp = \"http2\"", st.pki.ca.display());
    let (s, _, entries) = st.soak(HTTPS, &target, 1000, true);
    assert_all_ok(&s);
    assert_entries(&entries, st.nginx.port(HTTPS), "HTTP/2.0", "h2");
    let peak = peak_concurrency(&entries);
    assert!(peak >= 20, "streams were not concurrent: peak {peak}");
    assert_eq!(connections(&entries).len(), 1, "{entries:#?}");
}

#[test]
fn https_http1_stays_on_http11_and_reuses_keep_alive_connections() {
    let st = Stack::start(SHORT_STREAMS);
    let target = format!("ca_file = \"{}\"\nhttp = \"http1\"", st.pki.ca.display());
    let (s, _, entries) = st.soak(HTTPS, &target, H1_CAP, true);
    assert_all_ok(&s);
    assert_entries(&entries, st.nginx.port(HTTPS), "HTTP/1.1", "http/1.1");
    assert_keep_alive(&entries, H1_CAP as usize);
}

#[test]
fn plain_http1_and_auto_use_http11_with_keep_alive() {
    let st = Stack::start(SHORT_STREAMS);
    for http in ["http1", "auto"] {
        let (s, _, entries) = st.soak(PLAIN_H1, &format!("http = \"{http}\""), H1_CAP, true);
        assert_all_ok(&s);
        assert_entries(&entries, st.nginx.port(PLAIN_H1), "HTTP/1.1", "");
        assert_keep_alive(&entries, H1_CAP as usize);
    }
}

/// nginx ends a connection after `keepalive_requests`: `Connection: close` on its last
/// response, then the close. soakd's HTTP/1.1 client leaves it (on the header, or at the
/// latest when its checkout sees the close), so every request still succeeds, no connection
/// carries more than the limit, and connections do reach the limit. (The header alone, with
/// the socket left open, is `client::http1_tests`.)
#[test]
fn plain_http1_leaves_a_connection_the_server_closes_after_its_last_request() {
    let st = Stack::start(SHORT_STREAMS);
    let (s, _, entries) = st.soak(PLAIN_H1_SHORT, "", H1_CAP, true);
    assert_all_ok(&s);
    assert_entries(&entries, st.nginx.port(PLAIN_H1_SHORT), "HTTP/1.1", "");
    assert_keep_alive(&entries, entries.len());
    let per = requests_per_connection(&entries);
    assert!(
        per.values().all(|r| r.len() as u64 <= KEEPALIVE_REQUESTS),
        "a connection carried more than {KEEPALIVE_REQUESTS} requests: {per:?}"
    );
    assert!(
        per.values().any(|r| r.len() as u64 == KEEPALIVE_REQUESTS),
        "no connection reached nginx's limit: {per:?}"
    );
}

#[test]
fn plain_http2_is_h2c_multiplexed_on_one_connection() {
    let st = Stack::start(LONG_STREAMS);
    let (s, _, entries) = st.soak(PLAIN_H2C, "http = \"http2\"", 1000, true);
    assert_all_ok(&s);
    assert_entries(&entries, st.nginx.port(PLAIN_H2C), "HTTP/2.0", "");
    let peak = peak_concurrency(&entries);
    assert!(peak >= 20, "streams were not concurrent: peak {peak}");
    assert_eq!(connections(&entries).len(), 1, "{entries:#?}");
}
