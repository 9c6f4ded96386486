//! Creep through the real binary: a mock made slower with its uptime (`latency_drift`) fails
//! the creep verdict naming both p99s and the ratio, live and at the end; the same run without
//! drift passes. The two runs share one test (150 s of wall time). The drift (100 ms a minute:
//! the two windows' p99s 167 ms apart) and the floor (100 ms) stand well above what a p99 of
//! 800 samples moves by on a busy 2-core machine (up to +57 ms measured at a load average of
//! 18 beside other soaks), so the test runs beside the rest of the suite.

mod common;

use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(120);
/// The runs' length: every live condition holds well before their end.
const RUN: Duration = Duration::from_secs(150);

fn threshold<'a>(s: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    s["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no threshold {name} in {}", s["thresholds"]))
}

/// `latency_drift = "20ms/min"` makes the mock's TTFT and answers 20 ms slower every minute:
/// over 150 s, between the first 40 s window after a 5 s warm-up and the last, p99 TTFT and
/// duration grow by about 33 ms, over ×1.5 and +20 ms, and the run fails naming both p99s and
/// the ratio. The same run without drift passes. Both run at once, at 20 rps (a window's p99
/// is then its 8th-largest value, not one stall of a busy machine).
#[test]
fn a_latency_drift_fails_on_creep_and_the_same_run_without_it_passes() {
    let cfg = |drift: &str| {
        format!(
            r#"
[run]
duration = "150s"
grace = "5s"
seed = 5

[load]
rate = 20.0
arrivals = "constant"

[[scenarios]]
name = "chat"
api = "openai"
max_tokens = 2

[monitor]
warmup = "5s"

[thresholds]
creep_window = "40s"
max_creep_ratio = 1.5
min_creep = "100ms"

[mock]
ttft = "5ms"
chunk_delay = "1ms"
chunks = 2
{drift}
"#
        )
    };
    let mut drifting = Run::start(&cfg("latency_drift = \"100ms/min\""), &[]);
    let mut steady = Run::start(&cfg(""), &[]);
    let (d_admin, s_admin) = (drifting.admin_addr(), steady.admin_addr());
    // Live: once the last full window has drifted past both limits (about 105 s in), the
    // drifting run's verdict gauge fails and its ratio gauge shows it; the steady run shows its
    // last window in /status and its ratio on /metrics.
    let metrics = wait_for("the drifting run's live creep verdict fails", RUN, || {
        let (_, metrics) = http_get(d_admin, "/metrics");
        let passing = metric_sum(
            &metrics,
            "soakd_threshold_passing",
            &[("threshold", "creep:chat:ttft")],
        );
        if passing == 0.0 {
            Ok(metrics)
        } else {
            Err(format!("creep:chat:ttft passing = {passing}"))
        }
    });
    let ratio = metric_sum(
        &metrics,
        "soakd_creep_ratio",
        &[("scenario", "chat"), ("measure", "ttft")],
    );
    assert!(ratio > 1.5, "{metrics}");
    let status = wait_for("the steady run's last creep window", RUN, || {
        let (_, status) = http_get(s_admin, "/status");
        let status: serde_json::Value = serde_json::from_str(&status).map_err(|e| e.to_string())?;
        if status["creep"]["last"].is_object() {
            Ok(status)
        } else {
            Err(status["creep"].to_string())
        }
    });
    assert_eq!(
        status["creep"]["first_complete"], true,
        "{}",
        status["creep"]
    );
    let (_, metrics) = http_get(s_admin, "/metrics");
    assert!(
        metrics.contains("soakd_creep_ratio{measure=\"ttft\",scenario=\"chat\"}"),
        "{metrics}"
    );

    let (st, d) = drifting.finish(T);
    let out = drifting.proc.stdout_text();
    assert_eq!(st.code(), Some(1), "{out}\n{}", drifting.proc.stderr_text());
    let measure = |s: &serde_json::Value, m: &str| {
        s["creep"]["measures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["measure"] == m)
            .unwrap()
            .clone()
    };
    for m in ["ttft", "duration"] {
        let x = measure(&d, m);
        let (first, last) = (num(&x, &["first", "p99"]), num(&x, &["last", "p99"]));
        let ratio = num(&x, &["ratio"]);
        println!("drift {m}: first p99 {first:.4}s, last p99 {last:.4}s, ratio {ratio:.3}");
        // The windows' p99s sit near their ends, 100 s apart: 167 ms of drift, give or take
        // each p99's jitter.
        assert!((0.100..0.240).contains(&(last - first)), "{m}: {x}");
        assert!(ratio > 1.5, "{m}: {x}");
        let t = threshold(&d, &format!("creep:chat:{m}"));
        assert_eq!(t["status"], "fail", "{t}");
        assert_eq!(t["observed"].as_f64(), Some(ratio));
        let msg = t["message"].as_str().unwrap();
        let (f, l) = (fmt_ms(first), fmt_ms(last));
        assert!(
            msg.starts_with(&format!(
                "chat {m} p99 {f} in the first 40s window (0m05s–0m45s) and {l} in the last ("
            )),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("×{ratio:.2}, +"))
                && msg.ends_with("crosses both ×1.5 and +100ms"),
            "{msg}"
        );
        assert!(out.contains(&format!("threshold creep:chat:{m}")), "{out}");
    }
    assert!(
        out.contains("  creep (p99 per 40s window): first 0m05s–0m45s, last "),
        "{out}"
    );

    let (st, s) = steady.finish(T);
    assert_eq!(
        st.code(),
        Some(0),
        "{}\n{}",
        steady.proc.stdout_text(),
        steady.proc.stderr_text()
    );
    for m in ["ttft", "duration"] {
        let x = measure(&s, m);
        println!(
            "steady {m}: first p99 {:.4}s, last p99 {:.4}s, ratio {:.3}",
            num(&x, &["first", "p99"]),
            num(&x, &["last", "p99"]),
            num(&x, &["ratio"])
        );
        assert_eq!(
            threshold(&s, &format!("creep:chat:{m}"))["status"],
            "pass",
            "{x}"
        );
    }
}

/// A p99 as the summary prints it (`34.9ms`).
fn fmt_ms(secs: f64) -> String {
    format!("{:.1}ms", secs * 1e3)
}
