use serde_json::json;

use super::*;

/// A summary as `soakd run` writes it (only the fields compare reads, plus a few it ignores).
fn summary(p50: f64, p99: f64, errors: u64, target_rpr: f64, target_rss: &str) -> String {
    json!({
        "schema_version": 1,
        "sending_seconds": 10.0,
        "run_id": "r1",
        "target": "http://127.0.0.1:1/",
        "verdict": "pass",
        "exit_code": 0,
        "requests_finished": 1000,
        "errors": errors,
        "suspect": false,
        "latency": {
            "duration": {"count": 1000, "mean": p50, "p50": p50, "p90": p99, "p99": p99,
                         "p999": p99, "max": p99},
            "ttft": {"count": 0, "mean": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0,
                     "p999": 0.0, "max": 0.0}
        },
        "monitor": {"sample_interval_secs": 1.0, "windows": ["30s", "2m"], "processes": [
            {"name": "soakd", "windows": [
                {"window": "30s", "rss_bytes_per_request": 10.0},
                {"window": "2m", "rss_bytes_per_request": 20.0}],
             "retained_after_burst_bytes": null,
             "verdict": {"rss": "ok", "fds": "ok", "threads": "ok"}},
            {"name": "target", "windows": [
                {"window": "30s", "rss_bytes_per_request": 1.0},
                {"window": "2m", "rss_bytes_per_request": target_rpr}],
             "retained_after_burst_bytes": 1048576.0,
             "verdict": {"rss": target_rss, "fds": "ok", "threads": "unknown"}}
        ]}
    })
    .to_string()
}

fn parse(text: &str) -> RunSummary {
    RunSummary::parse(text, "x.json").unwrap()
}

fn run(base: &str, new: &str, limits: &Limits) -> Comparison {
    compare(&parse(base), &parse(new), limits, ("base.json", "new.json"))
}

fn row<'a>(c: &'a Comparison, key: &str, subject: Option<&str>) -> &'a Row {
    c.rows
        .iter()
        .find(|r| r.key == key && r.subject.as_deref() == subject)
        .unwrap_or_else(|| panic!("no row {key} {subject:?} in {:#?}", c.rows))
}

#[test]
fn identical_summaries_have_no_regression() {
    let s = summary(0.040, 0.200, 10, 500.0, "ok");
    let c = run(&s, &s, &Limits::default());
    assert_eq!(c.regressions, 0, "{}", c.to_text());
    assert_eq!(c.exit_code(), crate::exit::PASS);
    let p50 = row(&c, "p50_latency", None);
    assert_eq!((p50.change, p50.status), (Some(0.0), RowStatus::Ok));
    // No TTFT samples on either side: not compared, not a regression.
    assert_eq!(row(&c, "p99_ttft", None).status, RowStatus::NotCompared);
    // The longest window with a value is compared.
    let rpr = row(&c, "rss_per_request", Some("target"));
    assert_eq!((rpr.base, rpr.detail.as_str()), (Some(500.0), "window 2m"));
    assert_eq!(
        row(&c, "rss_per_request", Some("soakd")).status,
        RowStatus::Info
    );
    assert!(c.to_text().contains("result: no regression (exit 0)"));
}

#[test]
fn latency_is_judged_relative_to_its_limit() {
    let base = summary(0.040, 0.200, 0, 0.0, "ok");
    // p50 +10 % exactly passes; p99 +30 % is over the default 25 %.
    let new = summary(0.044, 0.260, 0, 0.0, "ok");
    let c = run(&base, &new, &Limits::default());
    let p50 = row(&c, "p50_latency", None);
    assert_eq!(p50.status, RowStatus::Ok);
    assert!((p50.change.unwrap() - 10.0).abs() < 1e-9);
    let p99 = row(&c, "p99_latency", None);
    assert_eq!(p99.status, RowStatus::Regression);
    assert!((p99.change.unwrap() - 30.0).abs() < 1e-9);
    assert_eq!(p99.limit, Some(25.0));
    assert_eq!(c.regressions, 1);
    assert_eq!(c.exit_code(), crate::exit::FAIL);
    // Loosened, it passes; faster is never a regression.
    let loose = Limits::parse(&["p99_latency=35%"]).unwrap();
    assert_eq!(run(&base, &new, &loose).regressions, 0);
    assert_eq!(run(&new, &base, &Limits::default()).regressions, 0);
}

#[test]
fn error_ratio_is_judged_in_percentage_points() {
    let base = summary(0.04, 0.2, 10, 0.0, "ok"); // 1 %
    let ok = summary(0.04, 0.2, 19, 0.0, "ok"); // 1.9 %: +0.9 pp
    let bad = summary(0.04, 0.2, 25, 0.0, "ok"); // 2.5 %: +1.5 pp
    let c = run(&base, &ok, &Limits::default());
    let r = row(&c, "error_ratio", None);
    assert_eq!(
        (r.base, r.new, r.status),
        (Some(1.0), Some(1.9), RowStatus::Ok)
    );
    let c = run(&base, &bad, &Limits::default());
    let r = row(&c, "error_ratio", None);
    assert_eq!(r.status, RowStatus::Regression);
    assert!((r.change.unwrap() - 1.5).abs() < 1e-9);
    assert!(c.to_text().contains("+1.5pp"), "{}", c.to_text());
    let loose = Limits::parse(&["error_ratio=2pp"]).unwrap();
    assert_eq!(run(&base, &bad, &loose).regressions, 0);
}

#[test]
fn aborted_requests_are_shown_never_judged_and_only_when_there_are_some() {
    let base = summary(1.0, 2.0, 0, 10.0, "ok");
    let c = run(&base, &base, &Limits::default());
    assert!(
        c.rows.iter().all(|r| r.key != "aborted"),
        "none in either run"
    );
    let mut v: serde_json::Value = serde_json::from_str(&base).unwrap();
    v["aborted"] = json!(7);
    let new = v.to_string();
    let c = run(&base, &new, &Limits::default());
    let r = row(&c, "aborted", None);
    assert_eq!(
        (r.base, r.new, r.status),
        (Some(0.0), Some(7.0), RowStatus::Info)
    );
    assert_eq!(c.regressions, 0);
    let text = c.to_text();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("aborted"))
        .unwrap();
    assert!(
        line.contains(" 0 ") && line.contains(" 7 ") && line.contains("info"),
        "{line}"
    );
}

#[test]
fn rss_per_request_needs_the_relative_limit_and_the_floor() {
    // (base, new RSS bytes per request, status, why)
    let cases = [
        (
            500.0,
            700.0,
            RowStatus::Ok,
            "+40 % but only 200 B per request: under the 1 KiB floor",
        ),
        (500.0, 65536.0, RowStatus::Regression, "500 B → 64 KiB"),
        // A shrinking base (negative slope) is judged on the floor alone.
        (
            -300.0,
            600.0,
            RowStatus::Ok,
            "shrinking base, 900 B more: under the floor",
        ),
        (
            -300.0,
            900.0,
            RowStatus::Regression,
            "shrinking base, 1200 B more",
        ),
    ];
    for (base, new, want, why) in cases {
        let c = run(
            &summary(0.04, 0.2, 0, base, "ok"),
            &summary(0.04, 0.2, 0, new, "ok"),
            &Limits::default(),
        );
        let got = row(&c, "rss_per_request", Some("target")).status;
        assert_eq!(got, want, "{base} → {new}: {why}");
    }
}

#[test]
fn a_new_leak_verdict_is_a_regression_and_an_old_one_is_not() {
    let clean = summary(0.04, 0.2, 0, 0.0, "ok");
    let leaky = summary(0.04, 0.2, 0, 0.0, "leak");
    // Even with every limit wide open, a new leak regresses.
    let wide = Limits::parse(&[
        "p50_latency=1000,p99_latency=1000,p50_ttft=1000,p99_ttft=1000",
        "error_ratio=100,rss_per_request=1000000,retained_after_burst=1000000",
    ])
    .unwrap();
    let c = run(&clean, &leaky, &wide);
    let r = row(&c, "leak", Some("target:rss"));
    assert_eq!(r.status, RowStatus::Regression);
    assert_eq!(r.detail, "ok -> leak");
    assert_eq!(c.regressions, 1);
    let text = c.to_text();
    assert!(text.contains("leak target:rss"), "{text}");
    assert!(text.contains("REGRESSION"), "{text}");
    // Leaking in both: shown, not a new regression.
    let c = run(&leaky, &leaky, &wide);
    assert_eq!(row(&c, "leak", Some("target:rss")).status, RowStatus::Info);
    assert_eq!(c.regressions, 0);
    // Gone in NEW: no row at all.
    let c = run(&leaky, &clean, &wide);
    assert!(c.rows.iter().all(|r| r.key != "leak"));
}

#[test]
fn a_process_only_in_new_is_compared_against_nothing() {
    let base = parse(&summary(0.04, 0.2, 0, 100.0, "ok"));
    let mut new = parse(&summary(0.04, 0.2, 0, 100.0, "leak"));
    new.monitor.as_mut().unwrap().processes[1].name = "proxy".into();
    let c = compare(&base, &new, &Limits::default(), ("b", "n"));
    assert_eq!(
        row(&c, "rss_per_request", Some("proxy")).status,
        RowStatus::NotCompared
    );
    let leak = row(&c, "leak", Some("proxy:rss"));
    assert_eq!(
        (leak.status, leak.detail.as_str()),
        (RowStatus::Regression, "absent -> leak")
    );
}

#[test]
fn soakd_itself_never_regresses() {
    let base = parse(&summary(0.04, 0.2, 0, 0.0, "ok"));
    let mut new = base.clone();
    let me = &mut new.monitor.as_mut().unwrap().processes[0];
    me.verdict.rss = "leak".into();
    me.windows[1].rss_bytes_per_request = Some(1e6);
    let c = compare(&base, &new, &Limits::default(), ("b", "n"));
    assert_eq!(c.regressions, 0, "{}", c.to_text());
    assert_eq!(row(&c, "leak", Some("soakd:rss")).status, RowStatus::Info);
    assert_eq!(
        row(&c, "rss_per_request", Some("soakd")).status,
        RowStatus::Info
    );
}

#[test]
fn files_that_are_not_summaries_are_refused() {
    let e = RunSummary::parse("not json", "a.json").unwrap_err();
    assert!(matches!(e, CompareError::NotASummary { .. }), "{e}");
    assert!(e.to_string().contains("a.json"), "{e}");
    let e = RunSummary::parse(r#"{"run_id": "x"}"#, "b.json").unwrap_err();
    assert!(e.to_string().contains("no schema_version"), "{e}");
    let mut v: serde_json::Value = serde_json::from_str(&summary(0.1, 0.2, 0, 0.0, "ok")).unwrap();
    v["schema_version"] = json!(2);
    let e = RunSummary::parse(&v.to_string(), "c.json").unwrap_err();
    assert!(matches!(e, CompareError::UnknownSchema { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("c.json has schema_version 2; this soakd reads schema_version 1"),
        "{e}"
    );
    // Right version, wrong shape.
    let e = RunSummary::parse(r#"{"schema_version": 1}"#, "d.json").unwrap_err();
    assert!(matches!(e, CompareError::NotASummary { .. }), "{e}");
    let e = RunSummary::load(Path::new("/nonexistent/soakd-summary.json")).unwrap_err();
    assert!(matches!(e, CompareError::Read { .. }), "{e}");
}

#[test]
fn limits_parse_name_the_flag_and_keep_documented_defaults() {
    let d = Limits::default();
    let want = [10.0, 25.0, 10.0, 25.0, 1.0, 25.0, 25.0];
    for (k, w) in Key::ALL.iter().zip(want) {
        assert_eq!(d.get(*k), w, "{}", k.as_str());
    }
    let l = Limits::parse(&["p99_ttft=20", "error_ratio=0.5pp,rss_per_request=50%"]).unwrap();
    assert_eq!(l.get(Key::P99Ttft), 20.0);
    assert_eq!(l.get(Key::ErrorRatio), 0.5);
    assert_eq!(l.get(Key::RssPerRequest), 50.0);
    assert_eq!(l.get(Key::P50Ttft), 10.0, "others keep their default");
    for (bad, why) in [
        ("p99", "key=limit"),
        ("p95_ttft=5", "unknown key"),
        ("p99_ttft=fast", "relative percentage"),
        ("error_ratio=1%", "percentage points"),
        ("p50_latency=-1", "0 or more"),
    ] {
        let e = Limits::parse(&[bad]).unwrap_err().to_string();
        assert!(
            e.contains("--max-regression") && e.contains(why),
            "{bad}: {e}"
        );
    }
}

#[test]
fn json_output_carries_rows_and_exit_code() {
    let c = run(
        &summary(0.04, 0.2, 0, 0.0, "ok"),
        &summary(0.04, 0.2, 0, 0.0, "leak"),
        &Limits::default(),
    );
    let v: serde_json::Value = serde_json::from_str(&c.to_json()).unwrap();
    assert_eq!(v["exit_code"], 1);
    assert_eq!(v["regressions"], 1);
    assert_eq!(v["base"]["file"], "base.json");
    let leak = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "leak")
        .unwrap();
    assert_eq!(leak["status"], "regression");
    assert_eq!(leak["subject"], "target:rss");
}
