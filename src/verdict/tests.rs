use super::*;
use crate::units::ConfigError;
use crate::units::MIB;

/// No defaults: each test configures exactly the thresholds it judges.
fn raw() -> RawThresholds {
    RawThresholds {
        defaults: Some(false),
        ..RawThresholds::default()
    }
}

fn all() -> Thresholds {
    RawThresholds {
        defaults: Some(false),
        leak_verdicts: None,
        abort_on_fail: true,
        p99_ttft: Some("2s".into()),
        p99_duration: Some("30s".into()),
        error_ratio: Some(0.01),
        truncated_ratio: Some(0.005),
        max_dropped: Some(0),
        max_aborted: Some(5),
        rss_growth_per_hour: Some("50MiB".into()),
        rss_process: None,
        min_requests: None,
        min_released_share: None,
        creep_window: Some("20m".into()),
        max_creep_ratio: Some(2.0),
        min_creep: Some("100ms".into()),
        max_orphans: None,
        max_not_propagated_ratio: None,
        max_wasted_output_tokens: None,
        ..RawThresholds::default()
    }
    .validate()
    .expect("valid")
}

fn only(f: impl FnOnce(&mut RawThresholds)) -> Thresholds {
    let mut r = raw();
    f(&mut r);
    r.validate().expect("valid")
}

/// `errors` of `requests` finished requests.
fn errors(requests: u64, errors: u64) -> VerdictInputs {
    VerdictInputs {
        requests,
        errors,
        ..Default::default()
    }
}

/// The p99 TTFT and p99 duration, nothing else.
fn latency(p99_ttft: Option<Duration>, p99_duration: Option<Duration>) -> VerdictInputs {
    VerdictInputs {
        p99_ttft,
        p99_duration,
        ..Default::default()
    }
}

fn one(t: &Thresholds, i: &VerdictInputs, final_: bool) -> ThresholdResult {
    let mut v = t.evaluate(i, final_);
    assert_eq!(v.len(), 1, "{v:?}");
    v.remove(0)
}

/// The field, value and reason of the error of [`raw`] changed by `f`.
fn invalid(f: impl FnOnce(&mut RawThresholds)) -> (String, String, String) {
    let mut r = raw();
    f(&mut r);
    match r.validate() {
        Err(ConfigError::Invalid {
            field,
            value,
            reason,
        }) => (field, value, reason),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

// ---------- validation ----------

#[test]
fn validate_defaults_and_all_fields() {
    let t = all();
    assert!(t.abort_on_fail);
    assert_eq!(t.p99_ttft, Some(Duration::from_secs(2)));
    assert_eq!(t.p99_duration, Some(Duration::from_secs(30)));
    assert_eq!(t.error_ratio, Some(0.01));
    assert_eq!(t.truncated_ratio, Some(0.005));
    assert_eq!(t.max_dropped, Some(0));
    assert_eq!(t.rss_growth_per_hour, Some(50 * 1024 * 1024));
    assert_eq!(t.rss_process, "target");
    assert_eq!(t.min_requests, 100);
    assert_eq!(t.creep_window, Some(Duration::from_secs(1200)));
    assert_eq!(
        t.creep,
        Some(CreepRules {
            max_ratio: 2.0,
            min_creep: Duration::from_millis(100)
        })
    );
    let empty = raw().validate().unwrap();
    assert!(empty.is_empty());
    assert!(empty.names().is_empty());
    assert!(empty.evaluate(&VerdictInputs::default(), true).is_empty());
}

#[test]
fn names_follow_configuration_and_order() {
    assert_eq!(
        all().names(),
        vec![
            "p99_ttft",
            "p99_duration",
            "error_ratio",
            "truncated_ratio",
            "dropped",
            "aborted",
            "rss_growth"
        ]
    );
    let t = only(|r| {
        r.max_dropped = Some(3);
        r.p99_ttft = Some("1s".into());
    });
    assert_eq!(t.names(), vec!["p99_ttft", "dropped"]);
    assert!(!t.is_empty());
    // abort_on_fail alone configures no threshold.
    assert!(only(|r| r.abort_on_fail = true).is_empty());
}

#[test]
fn validate_rejects_negative_ratio() {
    let (f, v, reason) = invalid(|r| r.error_ratio = Some(-0.1));
    assert_eq!(f, "thresholds.error_ratio");
    assert_eq!(v, "-0.1");
    assert!(reason.contains("between 0 and 1"), "{reason}");
}

#[test]
fn validate_rejects_ratio_above_one_and_nan() {
    let (f, v, _) = invalid(|r| r.truncated_ratio = Some(1.5));
    assert_eq!(
        (f.as_str(), v.as_str()),
        ("thresholds.truncated_ratio", "1.5")
    );
    let (f, _, _) = invalid(|r| r.error_ratio = Some(f64::NAN));
    assert_eq!(f, "thresholds.error_ratio");
    // The bounds themselves are valid.
    assert!(RawThresholds {
        error_ratio: Some(0.0),
        truncated_ratio: Some(1.0),
        ..raw()
    }
    .validate()
    .is_ok());
}

#[test]
fn validate_rejects_bad_durations() {
    let (f, v, reason) = invalid(|r| r.p99_ttft = Some("two seconds".into()));
    assert_eq!(f, "thresholds.p99_ttft");
    assert_eq!(v, "two seconds");
    assert!(reason.contains("not a duration"), "{reason}");
    let (f, _, reason) = invalid(|r| r.p99_duration = Some("0s".into()));
    assert_eq!(f, "thresholds.p99_duration");
    assert!(reason.contains("greater than 0"), "{reason}");
    let t = only(|r| r.p99_ttft = Some("1500ms".into()));
    assert_eq!(t.p99_ttft, Some(Duration::from_millis(1500)));
}

#[test]
fn validate_rejects_bad_sizes() {
    for bad in [
        "50 parsecs",
        "MiB",
        "",
        "-5MiB",
        "1.2.3MiB",
        "99999999999TiB",
    ] {
        let (f, v, _) = invalid(|r| r.rss_growth_per_hour = Some(bad.into()));
        assert_eq!(f, "thresholds.rss_growth_per_hour", "{bad}");
        assert_eq!(v, bad);
    }
}

#[test]
fn validate_rejects_empty_rss_process() {
    let (f, _, _) = invalid(|r| r.rss_process = Some("  ".into()));
    assert_eq!(f, "thresholds.rss_process");
    assert_eq!(
        only(|r| r.rss_process = Some("proxy".into())).rss_process,
        "proxy"
    );
}

#[test]
fn raw_rejects_unknown_keys() {
    // Unknown keys parse (the per-stage keys are read generically) and fail validation,
    // naming the key.
    let raw = serde_json::from_str::<RawThresholds>(r#"{"p99_ttf": "2s"}"#).unwrap();
    match raw.validate().unwrap_err() {
        ConfigError::Invalid { field, reason, .. } => {
            assert_eq!(field, "thresholds.p99_ttf");
            assert!(reason.contains("unknown key"), "{reason}");
            assert!(reason.contains("p99_proxy_added_first_token"), "{reason}");
        }
        e => panic!("{e}"),
    }
    let ok: RawThresholds =
        serde_json::from_str(r#"{"p99_ttft": "2s", "max_dropped": 0}"#).unwrap();
    assert_eq!(ok.p99_ttft.as_deref(), Some("2s"));
    assert_eq!(ok.max_dropped, Some(0));
    assert!(!ok.abort_on_fail);
}

// ---------- latency ----------

#[test]
fn p99_ttft_pass_fail_pending_no_data() {
    let t = only(|r| r.p99_ttft = Some("2s".into()));
    let mut i = latency(Some(Duration::from_millis(1200)), None);
    let r = one(&t, &i, false);
    assert_eq!(r.name, "p99_ttft");
    assert_eq!(r.status, ThresholdStatus::Pass);
    assert!(r.passed);
    assert_eq!(r.observed, Some(1.2));
    assert_eq!(r.limit, Some(2.0));
    assert_eq!(r.unit, "seconds");
    assert_eq!(r.message, "passed: p99_ttft 1.2s <= 2s");

    i.p99_ttft = Some(Duration::from_millis(2410));
    for final_ in [false, true] {
        let r = one(&t, &i, final_);
        assert_eq!(r.status, ThresholdStatus::Fail);
        assert!(!r.passed);
        assert_eq!(r.message, "p99_ttft 2.41s > 2s (exceeded by 0.41s)");
    }

    // Exactly at the limit passes.
    i.p99_ttft = Some(Duration::from_secs(2));
    assert!(one(&t, &i, true).passed);

    i.p99_ttft = None;
    let live = one(&t, &i, false);
    assert_eq!(live.status, ThresholdStatus::Pending);
    assert!(live.passed);
    assert_eq!(live.observed, None);
    assert!(live.message.starts_with("pending:"), "{}", live.message);

    let fin = one(&t, &i, true);
    assert_eq!(fin.status, ThresholdStatus::Fail);
    assert!(!fin.passed);
    assert!(fin.message.contains("no data"), "{}", fin.message);
}

#[test]
fn p99_duration_pass_fail_pending_no_data() {
    let t = only(|r| r.p99_duration = Some("30s".into()));
    let mut i = latency(None, Some(Duration::from_secs(29)));
    assert_eq!(one(&t, &i, true).status, ThresholdStatus::Pass);
    i.p99_duration = Some(Duration::from_millis(45_500));
    let r = one(&t, &i, false);
    assert_eq!(r.name, "p99_duration");
    assert_eq!(r.status, ThresholdStatus::Fail);
    assert_eq!(r.message, "p99_duration 45.5s > 30s (exceeded by 15.5s)");
    i.p99_duration = None;
    assert_eq!(one(&t, &i, false).status, ThresholdStatus::Pending);
    let fin = one(&t, &i, true);
    assert!(!fin.passed);
    assert!(fin.message.contains("no data"));
}

// ---------- ratios ----------

#[test]
fn error_ratio_pass_and_fail() {
    let t = only(|r| r.error_ratio = Some(0.01));
    let i = errors(1000, 8);
    let r = one(&t, &i, false);
    assert_eq!(r.name, "error_ratio");
    assert_eq!(r.status, ThresholdStatus::Pass);
    assert_eq!(r.unit, "ratio");
    assert_eq!(r.observed, Some(0.008));
    assert_eq!(r.message, "passed: error_ratio 0.8% <= 1%");

    let i = errors(1000, 25);
    let r = one(&t, &i, true);
    assert_eq!(r.status, ThresholdStatus::Fail);
    assert_eq!(r.observed, Some(0.025));
    assert_eq!(
        r.message,
        "error_ratio 2.5% > 1% (exceeded by 1.5 percentage points)"
    );
}

#[test]
fn error_ratio_below_min_requests_pending_live_judged_at_end() {
    let t = only(|r| {
        r.error_ratio = Some(0.01);
        r.min_requests = Some(200);
    });
    let i = errors(150, 30);
    let live = one(&t, &i, false);
    assert_eq!(live.status, ThresholdStatus::Pending);
    assert!(live.passed);
    assert_eq!(live.observed, Some(0.2));
    assert!(live.message.contains("150 of 200"), "{}", live.message);
    let fin = one(&t, &i, true);
    assert_eq!(fin.status, ThresholdStatus::Fail);
    assert!(
        fin.message.contains("exceeded by 19 percentage points"),
        "{}",
        fin.message
    );

    // Once the denominator reaches min_requests the live evaluation judges.
    let i = errors(200, 30);
    assert_eq!(one(&t, &i, false).status, ThresholdStatus::Fail);
}

#[test]
fn error_ratio_no_requests() {
    let t = only(|r| r.error_ratio = Some(0.01));
    let i = VerdictInputs::default();
    assert_eq!(one(&t, &i, false).status, ThresholdStatus::Pending);
    let fin = one(&t, &i, true);
    assert_eq!(fin.status, ThresholdStatus::Fail);
    assert_eq!(fin.observed, None);
    assert!(fin.message.contains("no data"), "{}", fin.message);
}

#[test]
fn truncated_ratio_uses_streams_as_denominator() {
    let t = only(|r| {
        r.truncated_ratio = Some(0.005);
        r.min_requests = Some(10);
    });
    // Many requests but few streams: still pending live.
    let i = VerdictInputs {
        requests: 10_000,
        streams: 5,
        streams_truncated: 1,
        ..Default::default()
    };
    assert_eq!(one(&t, &i, false).status, ThresholdStatus::Pending);
    let i = VerdictInputs {
        requests: 10_000,
        streams: 2000,
        streams_truncated: 4,
        ..Default::default()
    };
    let r = one(&t, &i, false);
    assert_eq!(r.name, "truncated_ratio");
    assert_eq!(r.status, ThresholdStatus::Pass);
    assert_eq!(r.message, "passed: truncated_ratio 0.2% <= 0.5%");
    let i = VerdictInputs {
        streams: 2000,
        streams_truncated: 30,
        ..Default::default()
    };
    let r = one(&t, &i, true);
    assert_eq!(r.status, ThresholdStatus::Fail);
    assert_eq!(
        r.message,
        "truncated_ratio 1.5% > 0.5% (exceeded by 1 percentage points)"
    );
    let fin = one(&t, &VerdictInputs::default(), true);
    assert!(!fin.passed);
    assert!(fin.message.contains("no data"));
}

#[test]
fn min_requests_zero_judges_immediately() {
    let t = only(|r| {
        r.error_ratio = Some(0.5);
        r.min_requests = Some(0);
    });
    assert_eq!(one(&t, &errors(1, 1), false).status, ThresholdStatus::Fail);
}

// ---------- dropped ----------

#[test]
fn dropped_pass_fail_never_pending() {
    let t = only(|r| r.max_dropped = Some(0));
    let i = VerdictInputs::default();
    for final_ in [false, true] {
        let r = one(&t, &i, final_);
        assert_eq!(r.name, "dropped");
        assert_eq!(r.status, ThresholdStatus::Pass);
        assert_eq!(r.observed, Some(0.0));
        assert_eq!(r.unit, "requests");
        assert_eq!(r.message, "passed: dropped 0 <= 0");
    }
    let t = only(|r| r.max_dropped = Some(10));
    let i = VerdictInputs {
        dropped: 17,
        ..Default::default()
    };
    let r = one(&t, &i, false);
    assert_eq!(r.status, ThresholdStatus::Fail);
    assert_eq!(r.message, "dropped 17 > 10 (exceeded by 7)");
}

#[test]
fn aborted_is_judged_only_when_set_and_never_pending() {
    assert!(!raw().validate().unwrap().names().contains(&"aborted"));
    let defaults = RawThresholds::default().validate().unwrap();
    assert!(!defaults.names().contains(&"aborted"), "no default");
    let t = only(|r| r.max_aborted = Some(2));
    for (aborted, final_, status, message) in [
        (0, false, ThresholdStatus::Pass, "passed: aborted 0 <= 2"),
        (2, true, ThresholdStatus::Pass, "passed: aborted 2 <= 2"),
        (
            3,
            true,
            ThresholdStatus::Fail,
            "aborted 3 > 2 (exceeded by 1)",
        ),
    ] {
        let i = VerdictInputs {
            aborted,
            ..Default::default()
        };
        let r = one(&t, &i, final_);
        assert_eq!(r.name, "aborted");
        assert_eq!((r.status, r.message.as_str()), (status, message));
        assert_eq!(r.unit, "requests");
    }
    let t: RawThresholds = toml::from_str("max_aborted = 0").unwrap();
    assert_eq!(t.validate().unwrap().max_aborted, Some(0));
}

// ---------- rss growth ----------

fn rss(proc_: &str, v: Option<f64>) -> VerdictInputs {
    VerdictInputs {
        rss_growth_per_hour: BTreeMap::from([(proc_.to_owned(), v)]),
        ..Default::default()
    }
}

#[test]
fn rss_growth_pass_and_fail() {
    let t = only(|r| r.rss_growth_per_hour = Some("50MiB".into()));
    let r = one(&t, &rss("target", Some(12.5 * MIB)), false);
    assert_eq!(r.name, "rss_growth");
    assert_eq!(r.status, ThresholdStatus::Pass);
    assert_eq!(r.unit, "bytes_per_hour");
    assert_eq!(r.limit, Some(50.0 * MIB));
    assert_eq!(r.message, "passed: rss_growth 12.5MiB/h <= 50MiB/h");
    // Shrinking memory passes.
    assert!(one(&t, &rss("target", Some(-3.0 * MIB)), true).passed);

    let r = one(&t, &rss("target", Some(62.5 * MIB)), true);
    assert_eq!(r.status, ThresholdStatus::Fail);
    assert_eq!(r.observed, Some(62.5 * MIB));
    assert_eq!(
        r.message,
        "rss_growth 62.5MiB/h > 50MiB/h (exceeded by 12.5MiB/h)"
    );
}

#[test]
fn rss_growth_not_enough_data_pending_live_fails_at_end() {
    let t = only(|r| r.rss_growth_per_hour = Some("1GiB".into()));
    let i = rss("target", None);
    let live = one(&t, &i, false);
    assert_eq!(live.status, ThresholdStatus::Pending);
    assert!(live.passed);
    let fin = one(&t, &i, true);
    assert_eq!(fin.status, ThresholdStatus::Fail);
    assert!(!fin.passed);
    assert!(fin.message.contains("not enough data"), "{}", fin.message);
    assert!(fin.message.contains("too short"), "{}", fin.message);
}

#[test]
fn rss_growth_judges_the_configured_process_only() {
    let t = only(|r| {
        r.rss_growth_per_hour = Some("1MiB".into());
        r.rss_process = Some("proxy".into());
    });
    // Only "target" and "soakd" have data: "proxy" has none.
    let mut i = rss("target", Some(500.0 * MIB));
    i.rss_growth_per_hour.insert("soakd".into(), Some(0.0));
    assert_eq!(one(&t, &i, false).status, ThresholdStatus::Pending);
    let fin = one(&t, &i, true);
    assert!(!fin.passed);
    assert!(fin.message.contains("no data"), "{}", fin.message);
    assert!(fin.message.contains("\"proxy\""), "{}", fin.message);
    i.rss_growth_per_hour
        .insert("proxy".into(), Some(100.0 * 1024.0));
    let r = one(&t, &i, true);
    assert!(r.passed);
    assert_eq!(r.message, "passed: rss_growth 100KiB/h <= 1MiB/h");
}

// ---------- released share ----------

#[test]
fn released_share_judges_each_failing_process_at_the_end() {
    let t = only(|r| r.min_released_share = Some(0.5));
    assert!(!t.is_empty());
    let input = |process: &str, share: f64, fail_on_leak: bool| ReleasedInput {
        process: process.into(),
        measured: true,
        share: Some(share),
        idle_peak_recovered: [Some(MIB), Some(9.0 * MIB), Some(5.0 * MIB)],
        fail_on_leak,
        is_self: process == "soakd",
    };
    let i = VerdictInputs {
        released: vec![
            input("soakd", 0.0, false),
            input("target", 0.1, true),
            input("sidecar", 0.0, false),
            input("worker", 0.9, true),
        ],
        ..Default::default()
    };
    let res = t.evaluate(&i, true);
    let got: Vec<(&str, ThresholdStatus)> =
        res.iter().map(|r| (r.name.as_str(), r.status)).collect();
    assert_eq!(
        got,
        [
            ("released:target", ThresholdStatus::Fail),
            ("released:worker", ThresholdStatus::Pass)
        ]
    );
    assert_eq!(ExitVerdict::from_results(&res), ExitVerdict::Fail);
    assert!(t
        .evaluate(&i, false)
        .iter()
        .all(|r| r.status == ThresholdStatus::Pending));
    assert!(invalid(|r| r.min_released_share = Some(1.5)).0 == "thresholds.min_released_share");
}

// ---------- whole evaluation and verdict ----------

#[test]
fn evaluate_all_and_exit_verdict() {
    let t = all();
    let healthy = VerdictInputs {
        requests: 10_000,
        errors: 10,
        streams: 8000,
        streams_truncated: 2,
        dropped: 0,
        aborted: 5,
        p99_ttft: Some(Duration::from_millis(900)),
        p99_duration: Some(Duration::from_secs(12)),
        rss_growth_per_hour: BTreeMap::from([("target".into(), Some(MIB))]),
        leaks: vec![],
        released: vec![],
        creep: None,
        proxy: None,
        weather: None,
    };
    let res = t.evaluate(&healthy, true);
    let names: Vec<_> = res.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, t.names());
    assert!(
        res.iter().all(|r| r.status == ThresholdStatus::Pass),
        "{res:?}"
    );
    assert_eq!(ExitVerdict::from_results(&res), ExitVerdict::Pass);
    assert_eq!(
        ExitVerdict::from_results(&res).exit_code(),
        crate::exit::PASS
    );

    let mut sick = healthy.clone();
    sick.dropped = 1;
    let res = t.evaluate(&sick, false);
    let failed: Vec<_> = res
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(failed, vec!["dropped"]);
    assert_eq!(ExitVerdict::from_results(&res), ExitVerdict::Fail);
    assert_eq!(ExitVerdict::Fail.exit_code(), crate::exit::FAIL);

    // Early in a run: everything without data is pending, nothing fails.
    let res = t.evaluate(&VerdictInputs::default(), false);
    assert_eq!(ExitVerdict::from_results(&res), ExitVerdict::Pass);
    assert_eq!(
        res.iter()
            .filter(|r| r.status == ThresholdStatus::Pending)
            .count(),
        5
    );
    // The same inputs at the end: every data-less threshold fails.
    let res = t.evaluate(&VerdictInputs::default(), true);
    let failed: Vec<_> = res
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(
        failed,
        vec![
            "p99_ttft",
            "p99_duration",
            "error_ratio",
            "truncated_ratio",
            "rss_growth"
        ]
    );
    assert_eq!(ExitVerdict::from_results(&[]), ExitVerdict::Pass);
}

#[test]
fn result_serializes_for_summary_json() {
    let t = only(|r| r.p99_ttft = Some("2s".into()));
    let r = one(&t, &VerdictInputs::default(), false);
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["name"], "p99_ttft");
    assert_eq!(v["status"], "pending");
    assert_eq!(v["passed"], true);
    assert_eq!(v["observed"], serde_json::Value::Null);
    assert_eq!(v["limit"], 2.0);
    assert_eq!(v["unit"], "seconds");
}

// ---------- defaults ----------

fn failed_names(t: &Thresholds, i: &VerdictInputs) -> Vec<String> {
    t.evaluate(i, true)
        .into_iter()
        .filter(|r| !r.passed)
        .map(|r| r.name)
        .collect()
}

#[test]
fn defaults_apply_to_an_empty_section() {
    let t = RawThresholds::default().validate().unwrap();
    assert_eq!(t.error_ratio, Some(DEFAULT_ERROR_RATIO));
    assert_eq!(DEFAULT_ERROR_RATIO, 0.05);
    assert_eq!(t.max_dropped, Some(DEFAULT_MAX_DROPPED));
    assert_eq!(DEFAULT_MAX_DROPPED, 0);
    assert!(t.leak_verdicts);
    assert_eq!(t.defaulted, ["error_ratio", "dropped", "leak", "creep"]);
    assert_eq!(t.names(), ["error_ratio", "dropped"]);
    assert!(!t.is_empty());
    assert_eq!(t.creep_window, Some(Duration::from_secs(600)));
    assert_eq!(
        t.creep,
        Some(CreepRules {
            max_ratio: 1.5,
            min_creep: Duration::from_millis(50)
        })
    );
    // No latency or RSS threshold unless configured.
    assert_eq!((t.p99_ttft, t.rss_growth_per_hour), (None, None));
}

#[test]
fn a_config_setting_only_p99_ttft_keeps_the_other_defaults() {
    let t: RawThresholds = toml::from_str("p99_ttft = \"2s\"").unwrap();
    let t = t.validate().unwrap();
    assert_eq!(t.names(), ["p99_ttft", "error_ratio", "dropped"]);
    assert!(t.leak_verdicts);
    // A key that is set is not a default, even at the default's value.
    let t: RawThresholds = toml::from_str("error_ratio = 0.05\nmax_dropped = 3").unwrap();
    let t = t.validate().unwrap();
    assert_eq!(t.defaulted, ["leak", "creep"]);
    assert_eq!(t.max_dropped, Some(3));
}

#[test]
fn defaults_false_turns_every_default_off_and_keys_still_apply() {
    let t: RawThresholds = toml::from_str("defaults = false").unwrap();
    let t = t.validate().unwrap();
    assert!(t.is_empty(), "{t:?}");
    assert!(!t.leak_verdicts);
    assert!(t.defaulted.is_empty());
    assert_eq!(t.creep, None, "creep is measured, not judged");
    assert_eq!(t.creep_window, Some(Duration::from_secs(600)));
    assert!(t.evaluate(&VerdictInputs::default(), true).is_empty());
    let t: RawThresholds =
        toml::from_str("defaults = false\nleak_verdicts = true\nmax_dropped = 5").unwrap();
    let t = t.validate().unwrap();
    assert!(t.leak_verdicts);
    assert_eq!(t.names(), ["dropped"]);
    assert!(!t.is_empty());
    // leak_verdicts = false alone keeps the other defaults.
    let t: RawThresholds = toml::from_str("leak_verdicts = false").unwrap();
    let t = t.validate().unwrap();
    assert!(!t.leak_verdicts);
    assert_eq!(t.names(), ["error_ratio", "dropped"]);
}

#[test]
fn a_broken_run_fails_on_the_defaults_and_says_they_are_defaults() {
    let t = RawThresholds::default().validate().unwrap();
    // Every request refused: 100 % errors.
    let refused = errors(40, 40);
    assert_eq!(failed_names(&t, &refused), ["error_ratio"]);
    let r = &t.evaluate(&refused, true)[0];
    assert_eq!(
        r.message,
        "error_ratio 100% > 5% (exceeded by 95 percentage points) (the default error_ratio \
         5%: set [thresholds] error_ratio, or defaults = false)"
    );
    // A saturated generator.
    let saturated = VerdictInputs {
        requests: 100,
        dropped: 190,
        ..Default::default()
    };
    assert_eq!(failed_names(&t, &saturated), ["dropped"]);
    let r = &t.evaluate(&saturated, true)[1];
    assert!(
        r.message.contains("the default max_dropped 0"),
        "{}",
        r.message
    );
    // No request at all finished: the default error ratio has no data and fails.
    assert_eq!(failed_names(&t, &VerdictInputs::default()), ["error_ratio"]);
    // A healthy run passes; an explicit threshold's failure carries no hint.
    let healthy = errors(1000, 49);
    assert!(failed_names(&t, &healthy).is_empty());
    let explicit = only(|r| r.error_ratio = Some(0.01));
    let r = &explicit.evaluate(&refused, true)[0];
    assert!(!r.message.contains("default"), "{}", r.message);
}

#[test]
fn raw_accepts_defaults_and_leak_verdicts() {
    let v: RawThresholds =
        serde_json::from_str(r#"{"defaults": false, "leak_verdicts": true}"#).unwrap();
    assert_eq!((v.defaults, v.leak_verdicts), (Some(false), Some(true)));
}

// ---------- creep ----------

#[test]
fn creep_is_judged_by_default_or_when_a_key_is_set_and_off_measures_nothing() {
    // One key set without the defaults: the other key takes its default.
    let t = only(|r| r.max_creep_ratio = Some(3.0));
    assert_eq!(
        t.creep,
        Some(CreepRules {
            max_ratio: 3.0,
            min_creep: Duration::from_millis(50)
        })
    );
    assert!(!t.is_empty());
    let t = only(|r| r.min_creep = Some("0s".into()));
    assert_eq!(t.creep.unwrap().max_ratio, 1.5);
    assert_eq!(t.creep.unwrap().min_creep, Duration::ZERO);
    // "off": nothing measured, nothing judged, not even by default.
    let t: RawThresholds = toml::from_str("creep_window = \"off\"").unwrap();
    let t = t.validate().unwrap();
    assert_eq!((t.creep_window, t.creep), (None, None));
    assert_eq!(t.defaulted, ["error_ratio", "dropped", "leak"]);
    let t = only(|r| r.creep_window = Some("40s".into()));
    assert_eq!(t.creep_window, Some(Duration::from_secs(40)));
    assert_eq!(t.creep, None);
}

#[test]
fn creep_settings_errors_name_the_key() {
    let (f, v, reason) = invalid(|r| r.max_creep_ratio = Some(1.0));
    assert_eq!(
        (f.as_str(), v.as_str()),
        ("thresholds.max_creep_ratio", "1")
    );
    assert!(reason.contains("greater than 1"), "{reason}");
    let (f, _, _) = invalid(|r| r.max_creep_ratio = Some(f64::INFINITY));
    assert_eq!(f, "thresholds.max_creep_ratio");
    let (f, v, reason) = invalid(|r| r.creep_window = Some("5s".into()));
    assert_eq!((f.as_str(), v.as_str()), ("thresholds.creep_window", "5s"));
    assert!(reason.contains("at least 6s"), "{reason}");
    let (f, v, _) = invalid(|r| r.creep_window = Some("soon".into()));
    assert_eq!(
        (f.as_str(), v.as_str()),
        ("thresholds.creep_window", "soon")
    );
    let (f, v, _) = invalid(|r| r.min_creep = Some("-3ms".into()));
    assert_eq!((f.as_str(), v.as_str()), ("thresholds.min_creep", "-3ms"));
    let (f, v, reason) = invalid(|r| {
        r.creep_window = Some("off".into());
        r.min_creep = Some("20ms".into());
    });
    assert_eq!((f.as_str(), v.as_str()), ("thresholds.min_creep", "20ms"));
    assert!(reason.contains("creep_window = \"off\""), "{reason}");
}

/// The thresholds of a creep report: one per measure, after the fixed ones and the leaks,
/// failing only across both limits, with the default's hint when it holds its default.
#[test]
fn creep_thresholds_follow_the_report_and_a_default_failure_says_so() {
    use crate::stats::creep::{CreepMeasure, CreepReport, WindowStat};
    use crate::stats::window::Span;
    let m = |measure: &str, first: f64, last: f64| CreepMeasure {
        scenario: "chat".into(),
        measure: measure.into(),
        first: Some(WindowStat {
            count: 500,
            p99: first,
        }),
        last: Some(WindowStat {
            count: 500,
            p99: last,
        }),
        ratio: Some(last / first),
    };
    let report = CreepReport {
        window_secs: 600.0,
        step_secs: 100.0,
        first: Span {
            from_secs: 180.0,
            to_secs: 780.0,
        },
        first_complete: true,
        last: Some(Span {
            from_secs: 5400.0,
            to_secs: 6000.0,
        }),
        comparable_from_secs: 1380.0,
        measures: vec![m("duration", 0.213, 2.31), m("ttft", 0.050, 0.060)],
    };
    let i = VerdictInputs {
        requests: 1000,
        creep: Some(report),
        ..Default::default()
    };
    let t = RawThresholds::default().validate().unwrap();
    let r = t.evaluate(&i, true);
    let names: Vec<&str> = r.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "error_ratio",
            "dropped",
            "creep:chat:duration",
            "creep:chat:ttft"
        ]
    );
    assert_eq!(failed_names(&t, &i), ["creep:chat:duration"]);
    assert_eq!(
        r[2].message,
        "chat duration p99 213.0ms in the first 10m window (3m00s–13m00s) and 2.31s in the \
         last (1h30m00s–1h40m00s): ×10.85, +2.10s crosses both ×1.5 and +50ms (creep is judged \
         by default: set [thresholds] max_creep_ratio and min_creep, creep_window = \"off\", or \
         defaults = false)"
    );
    assert_eq!(r[3].status, ThresholdStatus::Pass);
    // Judged but not by default: no hint; not judged at all: no creep threshold.
    let explicit = only(|r| r.max_creep_ratio = Some(1.5));
    let e = explicit.evaluate(&i, true);
    assert!(
        !e[0].passed && !e[0].message.contains("default"),
        "{}",
        e[0].message
    );
    assert!(raw().validate().unwrap().evaluate(&i, true).is_empty());
}
