//! What soakd says (issue 27), end to end through the real binary: plain logs off a terminal,
//! a reason for every verdict that is not a leak, warnings for settings that quietly change
//! the answer, honest process labels, readable error bodies, measures marked unmeasurable,
//! and config errors before any bind. Two short runs carry most of it; the rest exit at
//! start-up.

mod common;

use std::process::Command;
use std::time::Duration;

use common::nginx::free_port;
use common::*;

const T: Duration = Duration::from_secs(60);

/// `soakd run --config <toml>` like [`Run::start`], but with `NO_COLOR` removed from its
/// environment, so colour depends on the terminal check alone.
fn run_plain(toml: &str) -> Run {
    let dir = TempDir::new("papercuts");
    let summary_path = dir.path().join("summary.json");
    let mut cmd = Command::new(soakd_bin());
    cmd.arg("run")
        .arg("--config")
        .arg(dir.write("soakd.toml", toml))
        .args(["--admin-listen", "127.0.0.1:0"])
        .env("SOAKD__RUN__SUMMARY_JSON", &summary_path)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR");
    Run {
        proc: Proc::spawn("soakd run", cmd),
        dir,
        summary_path,
    }
}

/// The lines of `text` containing `needle`.
fn lines<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

/// Items 1, 2, 4, 6, 7 and 8 in one 4 s run of the embedded mock: no ANSI escapes in a piped
/// log; the max_tokens and window warnings once each; max_tokens on the plan line; labels
/// naming the pid and its pid_file; no slope from a window not yet full; a not-judged verdict
/// that says why; the one-scenario attribution table titled as the overall growth.
#[test]
fn a_short_run_of_the_embedded_mock_says_why_in_plain_text() {
    let dir = TempDir::new("papercuts-pid");
    // A process to watch by pid file: this test itself.
    let pid_file = dir.write("runner.pid", &format!("{}\n", std::process::id()));
    let toml = format!(
        r#"
[run]
duration = "4s"
grace = "2s"
seed = 3

[load]
rate = 20.0
arrivals = "constant"

[[scenarios]]
name = "chat"
max_tokens = 16

[mock]
ttft = "2ms"
chunk_delay = "1ms"
chunks = 20

[monitor]
sample_interval = "250ms"
warmup = "1s"
windows = ["4s", "20s"]

[[monitor.processes]]
name = "runner"
pid_file = "{}"
fail_on_leak = false

[log]
progress_interval = "1s"
"#,
        pid_file.display()
    );
    let mut run = run_plain(&toml);
    let (st, s) = run.finish(T);
    let (out, err) = (run.proc.stdout_text(), run.proc.stderr_text());
    assert_eq!(st.code(), Some(0), "{}", run.output());

    // 1. A pipe is not a terminal: no colour.
    assert!(err.contains(" INFO "), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "ANSI escapes in a piped log:\n{err}"
    );

    // 6. The cap is named once, and the plan line shows each scenario's max_tokens.
    let capped = lines(&err, "max_tokens 16 caps the mock's chunks 20");
    assert_eq!(capped.len(), 1, "{err}");
    assert!(
        capped[0].contains(
            "scenarios[0] (chat): max_tokens 16 caps the mock's chunks 20: its \
                            answers have 16 chunks, not 20"
        ),
        "{}",
        capped[0]
    );
    let started = lines(&err, "soak started");
    assert!(
        started[0].contains("chat weight 1 (openai gpt-4o-mini stream, max_tokens 16)"),
        "{}",
        started[0]
    );

    // 7. The window longer than the run is named once at start-up…
    let long = lines(
        &err,
        "the 20s window plus monitor.warmup 1s (21s) is longer than",
    );
    assert_eq!(long.len(), 1, "{err}");
    assert!(
        long[0].contains("every leak verdict will be \"not judged\""),
        "{}",
        long[0]
    );
    // …the progress line never shows a slope from a window that is not full…
    let progress = lines(&err, "rps | p50/p99");
    assert!(progress.len() >= 2, "{err}");
    for p in &progress {
        assert!(!p.contains("/h("), "a slope from a partial window: {p}");
        let target = p.split("target rss ").nth(1).unwrap_or_default();
        assert!(
            target.contains(" slope:warm-up ") || target.contains(" slope:filling(4s: "),
            "the slope's state is named (it said slope:pending): {p}"
        );
    }
    // …and the verdict it cannot give says why.
    let target = process(&s, "target");
    assert_eq!(target["verdict"]["rss"], "unknown");
    let why = target["reason"]["rss"].as_str().unwrap();
    assert!(
        why.starts_with("the longest window (20s) has no fit: "),
        "{why}"
    );
    assert!(
        out.contains(&format!("      rss: {why}")),
        "the summary prints the reason: {out}"
    );
    let t = s["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "leak:target:rss")
        .unwrap();
    assert_eq!(t["status"], "not_judged");
    assert!(
        t["message"].as_str().unwrap().contains(why),
        "{}",
        t["message"]
    );

    // 4. Labels: the pid, then where it came from.
    let runner = process(&s, "runner");
    assert_eq!(
        runner["source_label"],
        format!(
            "pid {} from pid_file {}",
            std::process::id(),
            pid_file.display()
        )
    );
    assert!(
        out.contains(&format!(
            "  process runner (pid {} from pid_file {}): up",
            std::process::id(),
            pid_file.display()
        )),
        "{out}"
    );
    // 8. One scenario: its growth per request is the overall one, and the table says so.
    assert!(
        out.contains(
            "    rss growth per request (one scenario: the overall growth per request, no mix \
             changes needed):"
        ),
        "{out}"
    );
    let mock_pid = target["pid"].as_u64().unwrap();
    assert!(
        out.contains(&format!("  process target (pid {mock_pid}): up")),
        "{out}"
    );
}

/// Items 5 and 9 in one 3 s two-sided run with no proxy in between (the target is the
/// upstream itself) and a 30 % error rate: coalescing reads "not measurable" under a 5 ms
/// chunk delay, in /status, the summary JSON and text; an HTTP error's warning and the
/// summary carry its body.
#[test]
fn a_two_sided_run_marks_unmeasurable_measures_and_shows_error_bodies() {
    let up = free_port();
    let toml = format!(
        r#"
[run]
duration = "3s"
grace = "2s"
seed = 5

[target]
url = "http://127.0.0.1:{up}"

[upstream]
listen = "127.0.0.1:{up}"

[load]
rate = 20.0
arrivals = "constant"

[[scenarios]]
name = "chat"
max_tokens = 8

[mock]
ttft = "2ms"
chunk_delay = "5ms"
chunks = 8
error_rate = 0.3
error_status = 500

[thresholds]
defaults = false

[monitor]
sample_interval = "1s"
warmup = "0s"
windows = ["16s"]

[log]
progress_interval = "off"
"#
    );
    let mut run = run_plain(&toml);
    let admin = run.admin_addr();
    run.proc.wait_line("soak started", Duration::from_secs(30));
    let (code, status) = http_get(admin, "/status");
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let why = "not measurable (chunk_delay 5ms < 10ms)";
    assert_eq!(status["proxy"]["scenarios"][0]["buffered_streams"], why);
    let (st, s) = run.finish(T);
    let (out, err) = (run.proc.stdout_text(), run.proc.stderr_text());
    assert_eq!(st.code(), Some(0), "{}", run.output());

    // 5. Not a number where the settings hide the measure, and warned once.
    for sc in s["proxy"]["scenarios"].as_array().unwrap() {
        assert_eq!(sc["buffered_streams"], why, "{sc}");
        assert_eq!(sc["coalesced_chunks"], why, "{sc}");
    }
    assert!(
        out.contains(&format!("buffered {why}, coalesced chunks {why}")),
        "{out}"
    );
    assert_eq!(
        lines(&err, "mock.chunk_delay 5ms is under 10ms").len(),
        1,
        "{err}"
    );

    // 9. The warning and the summary carry the error body, on one line.
    let failed = lines(&err, "request failed");
    assert!(!failed.is_empty(), "{err}");
    assert!(
        failed[0].contains("status=500") && failed[0].contains("body=\"{\\\"error\\\":"),
        "{}",
        failed[0]
    );
    let top = &s["scenarios"][0]["error_bodies"]["http_5xx"];
    let body = top["body"].as_str().unwrap();
    assert!(
        body.starts_with("{\"error\":") && !body.contains('\n'),
        "{body}"
    );
    assert!(body.len() <= 256 + "…".len(), "{body}");
    let (count, of) = (top["count"].as_u64().unwrap(), top["of"].as_u64().unwrap());
    assert_eq!(of, count_5xx(&s), "every error body counted");
    assert!(count >= 1 && count <= of, "{top}");
    assert!(
        out.contains(&format!(
            "  error body: chat http_5xx ({count} of {of}): {body}"
        )),
        "{out}"
    );
}

fn count_5xx(s: &serde_json::Value) -> u64 {
    count(s, &["outcomes", "http_5xx"])
}

/// Items 3 and 10 at start-up: a missing API key is a check-config warning but a run error;
/// two of soakd's own listeners on one port are a config error before any bind; a bind error
/// says its OS error once.
#[test]
fn config_errors_come_before_any_bind_and_say_things_once() {
    let dir = TempDir::new("papercuts-config");
    let exe = soakd_bin();

    // 10. check-config warns about a key it cannot read; run refuses it.
    let keyed = dir.write(
        "keyed.toml",
        "[target]\nurl = \"http://127.0.0.1:9\"\napi_key_env = \"SOAKD_PAPERCUTS_NO_SUCH_KEY\"\n",
    );
    let out = Command::new(exe)
        .arg("check-config")
        .arg(&keyed)
        .env_remove("SOAKD_PAPERCUTS_NO_SUCH_KEY")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(
            "soakd: warning: target.api_key_env = \"SOAKD_PAPERCUTS_NO_SUCH_KEY\": the \
             environment variable is not set; the reference is valid, but soakd run refuses \
             to start without the key"
        ),
        "{err}"
    );
    assert!(err.contains("is valid"), "{err}");
    let out = Command::new(exe)
        .args(["run", "--config"])
        .arg(&keyed)
        .env_remove("SOAKD_PAPERCUTS_NO_SUCH_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SOAKD_PAPERCUTS_NO_SUCH_KEY"));

    // 3. admin.listen = upstream.listen: exit 78 before binding (the port is held, so a bind
    // would have failed with 2), naming both keys.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap();
    let same = dir.write(
        "same.toml",
        &format!(
            "[target]\nurl = \"http://127.0.0.1:9\"\n[admin]\nlisten = \"{addr}\"\n\
             [upstream]\nlisten = \"{addr}\"\n"
        ),
    );
    for args in [&["check-config"][..], &["run", "--config"][..]] {
        let out = Command::new(exe).args(args).arg(&same).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{args:?}: {err}");
        assert!(
            err.contains(&format!(
                "upstream.listen = \"{addr}\": the same port as admin.listen"
            )),
            "{args:?}: {err}"
        );
    }

    // 3. A real bind failure (the upstream's port is taken) says the OS error once.
    let taken = dir.write(
        "taken.toml",
        &format!("[target]\nurl = \"http://127.0.0.1:9\"\n[upstream]\nlisten = \"{addr}\"\n"),
    );
    let out = Command::new(exe)
        .args(["run", "--admin-listen", "127.0.0.1:0", "--config"])
        .arg(&taken)
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("cannot listen for the upstream on {addr}: ")),
        "{err}"
    );
    assert_eq!(err.matches("(os error").count(), 1, "{err}");
    drop(held);
}

/// Item 1 for `soakd mock`: its log on a pipe has no colour either.
#[test]
fn the_mock_logs_plain_text_off_a_terminal() {
    let mut cmd = Command::new(soakd_bin());
    cmd.args(["mock", "--listen", "127.0.0.1:0", "--exit-after", "1s"])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR");
    let mut mock = Proc::spawn("soakd mock", cmd);
    let st = mock.wait(Duration::from_secs(30));
    assert_eq!(st.code(), Some(0), "{}", mock.stderr_text());
    let err = mock.stderr_text();
    assert!(err.contains(" INFO "), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "ANSI escapes in a piped log:\n{err}"
    );
}
