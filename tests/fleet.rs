//! `soakd verdict` end to end: sharded runs of the real binary against the real mock, scraped
//! every second by a real Prometheus on loopback, judged by the real binary.
//!
//! One Prometheus, one clean mock and one faulty mock serve every case, which run at the same
//! time (about 50 s in all):
//! - **pass** (`fleet-pass`): three shards (`shards = 3`, `shard_index` 0, 1, 2) for 40 s
//!   against the clean mock; the verdict (waiting for them from the start) exits 0, its
//!   counts are the sums of the shards' own summaries, and its p99 TTFT is the p99 of all
//!   three shards' requests together (the reference below);
//! - **missing** (`fleet-fail` before its shard 2 starts): shards 0 and 1 run 8 s and linger;
//!   a verdict with `--wait 16s` exits 2 naming shard 2, never seen;
//! - **fail** (`fleet-fail`, then shard 2 starts, against the faulty mock, 30 % errors): the
//!   fleet's error ratio (10 %) crosses the default 5 %; the verdict exits 1 naming
//!   `error_ratio` and shard 2 as the shard with most errors;
//! - **unreachable** Prometheus (a closed port): exit 2 at once; a bad `--config`: 78.
//!
//! The p99 reference: the test reads each shard's `/histograms` itself (from the address the
//! shard logged, not through Prometheus), checks that each one's p99 and count are what that
//! shard's own summary reports (so they are the shard's raw measurements), and adds them:
//! the histogram of all three shards' requests together.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::prometheus::{free_port, Prometheus};
use common::*;
use soakd::stats::wire::{merge, HistogramsDoc};
use soakd::stats::Percentiles;

const T: Duration = Duration::from_secs(150);

fn shard_toml(run_id: &str, duration: &str, mock: &Mock, watch: bool) -> String {
    let watch = if watch {
        format!(
            "[[monitor.processes]]\nname = \"target\"\npid = {}\n",
            mock.proc.pid()
        )
    } else {
        String::new()
    };
    format!(
        r#"
[run]
run_id = "{run_id}"
duration = "{duration}"
grace = "2s"
linger = "90s"
shards = 3

[target]
url = "{url}"

[load]
rate = 60.0
arrivals = "constant"

[[scenarios]]
name = "chat"
api = "openai"
max_tokens = 4

[log]
progress_interval = "off"

[monitor]
sample_interval = "1s"

{watch}
[thresholds]
p99_ttft = "2s"
"#,
        url = mock.url()
    )
}

/// Shard `index` of a run, its admin server on `admin`; `target` overrides the config's.
fn shard(toml: &str, index: u32, admin: SocketAddr, target: Option<&str>) -> Run {
    let idx = index.to_string();
    let addr = admin.to_string();
    let mut env = vec![("SOAKD__RUN__SHARD_INDEX", idx.as_str())];
    if let Some(t) = target {
        env.push(("SOAKD__TARGET__URL", t));
    }
    Run::start_env(toml, &["--admin-listen", &addr], &env)
}

fn verdict(args: &[&str]) -> Proc {
    let mut cmd = Command::new(soakd_bin());
    cmd.arg("verdict").args(args).env("NO_PROXY", "127.0.0.1");
    Proc::spawn("soakd verdict", cmd)
}

fn prometheus_yml(targets: &[SocketAddr]) -> String {
    let list: Vec<String> = targets.iter().map(|a| format!("'{a}'")).collect();
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  \
         - job_name: soakd\n    static_configs:\n      - targets: [{}]\n",
        list.join(", ")
    )
}

/// The stdout of an exited process once it holds `needle` (its reader thread may lag a
/// little behind the exit), within 10 s.
fn output_with(p: &Proc, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = p.stdout_text();
        if text.contains(needle) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `map[key]` summed over summaries (0 when absent).
fn sum_of(summaries: &[Value], key: &str, sub: &str) -> u64 {
    summaries.iter().map(|s| count(s, &[key, sub])).sum()
}

#[test]
fn a_sharded_soak_gets_one_verdict_from_prometheus() {
    let dir = TempDir::new("fleet");
    let clean = Mock::quick(&[]);
    let faulty = Mock::quick(&["--error-rate", "0.3"]);
    let pass_admin: Vec<SocketAddr> = (0..3).map(|_| free_port()).collect();
    let fail_admin: Vec<SocketAddr> = (0..3).map(|_| free_port()).collect();
    let prom = Prometheus::start(
        dir.path(),
        &prometheus_yml(&[pass_admin.clone(), fail_admin.clone()].concat()),
        &dir.path().join("tsdb"),
    );
    let url = prom.url();

    // Cases that need no run: a bad config, an unreachable Prometheus.
    let bad = dir.write("bad.toml", "[thresholds]\nerror_ratio = 1.5\n");
    let mut p = verdict(&[
        "--prometheus",
        &url,
        "--run-id",
        "x",
        "--config",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(p.wait(T).code(), Some(78), "{}", p.stderr_text());
    assert!(p.stderr_text().contains("thresholds.error_ratio"));
    let closed = format!("http://{}", free_port());
    let mut p = verdict(&["--prometheus", &closed, "--run-id", "x", "--wait", "1m"]);
    let started = Instant::now();
    assert_eq!(p.wait(T).code(), Some(2), "{}", p.stderr_text());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "an unreachable Prometheus fails at once, not after --wait"
    );
    assert!(
        p.stderr_text().contains("cannot connect"),
        "{}",
        p.stderr_text()
    );

    // The fleets.
    let pass_toml = shard_toml("fleet-pass", "40s", &clean, true);
    let config = dir.write("pass.toml", &pass_toml);
    let mut pass: Vec<Run> = (0..3)
        .map(|i| shard(&pass_toml, i, pass_admin[i as usize], None))
        .collect();
    let mut pass_verdict = verdict(&[
        "--prometheus",
        &url,
        "--run-id",
        "fleet-pass",
        "--config",
        config.to_str().unwrap(),
        "--wait",
        "2m",
        "--json",
    ]);
    let fail_toml = shard_toml("fleet-fail", "8s", &clean, false);
    let mut fail: Vec<Run> = (0..2)
        .map(|i| shard(&fail_toml, i, fail_admin[i as usize], None))
        .collect();

    // Shard 2 of fleet-fail never started: exit 2 after the wait, naming it.
    let mut missing = verdict(&[
        "--prometheus",
        &url,
        "--run-id",
        "fleet-fail",
        "--shards",
        "3",
        "--wait",
        "16s",
    ]);
    assert_eq!(missing.wait(T).code(), Some(2), "{}", missing.stderr_text());
    let err = missing.stderr_text();
    assert!(err.contains("shard 2: never seen"), "{err}");
    assert!(err.contains("not lingering after --wait 16s"), "{err}");

    // Now shard 2 runs, against the faulty mock: the fleet fails on its errors.
    fail.push(shard(&fail_toml, 2, fail_admin[2], Some(&faulty.url())));
    let mut failing = verdict(&[
        "--prometheus",
        &url,
        "--run-id",
        "fleet-fail",
        "--shards",
        "3",
        "--wait",
        "1m",
    ]);
    assert_eq!(failing.wait(T).code(), Some(1), "{}", failing.stderr_text());
    let text = output_with(&failing, "verdict: fail (exit 1)");
    eprintln!("{text}");
    let line = text
        .lines()
        .find(|l| l.contains("threshold error_ratio"))
        .unwrap_or_else(|| panic!("no error_ratio line:\n{text}"));
    assert!(line.contains("FAIL"), "{line}");
    assert!(
        line.contains("errors by shard: shard 2 "),
        "shard 2 contributed most: {line}"
    );
    assert!(text.contains("verdict: fail (exit 1)"), "{text}");
    let fail_summaries: Vec<Value> = fail
        .iter_mut()
        .map(|r| {
            r.proc.signal(libc::SIGTERM);
            r.finish(T).1
        })
        .collect();
    assert!(
        count(&fail_summaries[0], &["errors"]) == 0 && count(&fail_summaries[2], &["errors"]) > 0
    );

    // The passing fleet.
    let st = pass_verdict.wait(T);
    assert_eq!(st.code(), Some(0), "{}", pass_verdict.stderr_text());
    let fleet: Value = serde_json::from_str(&pass_verdict.stdout_text())
        .unwrap_or_else(|e| panic!("{e}: {}", pass_verdict.stdout_text()));
    // The same fleet as text, for people (and the README).
    let mut text_verdict = verdict(&[
        "--prometheus",
        &url,
        "--run-id",
        "fleet-pass",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(text_verdict.wait(T).code(), Some(0));
    let text = output_with(&text_verdict, "verdict: pass (exit 0)");
    eprintln!("{text}");
    assert!(text.contains("fleet "), "{text}");

    // The reference: every shard's own histograms, read directly, then its summary.
    let docs: Vec<HistogramsDoc> = pass_admin
        .iter()
        .map(|a| serde_json::from_str(&http_get(*a, "/histograms").1).unwrap())
        .collect();
    let summaries: Vec<Value> = pass
        .iter_mut()
        .map(|r| {
            r.proc.signal(libc::SIGTERM);
            let (st, s) = r.finish(T);
            assert_eq!(st.code(), Some(0), "{}", r.output());
            s
        })
        .collect();
    let ttft: Vec<_> = docs.iter().map(|d| d.histogram("ttft").unwrap()).collect();
    for (i, (h, s)) in ttft.iter().zip(&summaries).enumerate() {
        let p = Percentiles::of_micros(h);
        assert_eq!(
            p.count,
            count(s, &["latency", "ttft", "count"]),
            "shard {i}"
        );
        assert_eq!(p.p99, num(s, &["latency", "ttft", "p99"]), "shard {i}");
    }
    let reference = Percentiles::of_micros(&merge(&ttft));

    // Counts: the sums of the shards' summaries.
    let requests: u64 = summaries
        .iter()
        .map(|s| count(s, &["requests_finished"]))
        .sum();
    assert!(requests > 1500, "{requests} requests in 40 s at 60 rps");
    assert_eq!(count(&fleet, &["requests_finished"]), requests);
    for outcome in ["ok", "http_5xx", "cancelled", "timeout", "stream_truncated"] {
        assert_eq!(
            count(&fleet, &["outcomes", outcome]),
            sum_of(&summaries, "outcomes", outcome),
            "outcome {outcome}"
        );
    }
    assert_eq!(
        fleet["outcomes"].as_object().unwrap().len(),
        summaries[0]["outcomes"].as_object().unwrap().len()
    );
    assert_eq!(
        count(&fleet, &["output_tokens"]),
        summaries
            .iter()
            .map(|s| count(s, &["output_tokens"]))
            .sum::<u64>()
    );
    for (i, s) in summaries.iter().enumerate() {
        let row = &fleet["shards"][i];
        assert_eq!(row["shard"], i as u64);
        assert_eq!(row["instance"], pass_admin[i].to_string());
        assert_eq!(
            count(row, &["requests_finished"]),
            count(s, &["requests_finished"]),
            "shard {i}"
        );
    }

    // p99 TTFT: the merged histograms' = the reference, within 5 % (in fact exactly).
    let p99 = num(&fleet, &["latency", "ttft", "p99"]);
    eprintln!(
        "fleet p99 ttft {p99}s, reference {}s over {} requests; shards {:?}",
        reference.p99,
        reference.count,
        ttft.iter()
            .map(|h| Percentiles::of_micros(h).p99)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        count(&fleet, &["latency", "ttft", "count"]),
        reference.count
    );
    assert!(
        (p99 - reference.p99).abs() <= 0.05 * reference.p99,
        "{p99} vs {}",
        reference.p99
    );
    assert_eq!(fleet["percentiles"]["method"], "hdr_merge");
    let thresholds: Vec<(&str, &str)> = fleet["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["status"].as_str().unwrap()))
        .collect();
    assert!(thresholds.contains(&("p99_ttft", "pass")), "{thresholds:?}");
    assert!(
        thresholds.contains(&("error_ratio", "pass")),
        "{thresholds:?}"
    );
    // The mock is watched by all three shards and judged once.
    assert_eq!(
        thresholds
            .iter()
            .filter(|(n, _)| n.starts_with("leak:target:"))
            .count(),
        3,
        "{thresholds:?}"
    );

    // The run summary's layout: every key of a shard's summary, `shards` an array of rows.
    for key in summaries[0].as_object().unwrap().keys() {
        assert!(fleet.get(key).is_some(), "the fleet JSON has no {key:?}");
    }
    assert_eq!(fleet["schema_version"], summaries[0]["schema_version"]);
    assert_eq!(fleet["shards"].as_array().map(Vec::len), Some(3));
    assert!(fleet["shard"].is_null());

    // `soakd compare` reads it.
    let path = dir.write("fleet.json", &fleet.to_string());
    let out = Command::new(soakd_bin())
        .args(["compare"])
        .arg(&path)
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(prom);
}
