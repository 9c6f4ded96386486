//! Monitor-level tests on synthetic readings: verdict rules, restarts, withdrawal of gauges,
//! retention after bursts, per-request normalisation.

use super::source::Identity;
use super::*;

use crate::units::MIB;

/// A monitor section watching one process, "target" (pid 1), with no warm-up.
pub(super) fn raw_target(windows: &[&str], interval: &str) -> RawMonitor {
    RawMonitor {
        sample_interval: Some(interval.into()),
        warmup: Some("0s".into()),
        windows: Some(windows.iter().map(|s| s.to_string()).collect()),
        processes: vec![RawProcess {
            name: "target".into(),
            pid: Some(1),
            ..RawProcess::default()
        }],
        ..RawMonitor::default()
    }
}

fn monitor(windows: &[&str], interval: &str) -> Monitor {
    let raw = RawMonitor {
        burst_settle: Some("30s".into()),
        ..raw_target(windows, interval)
    };
    let metrics = Arc::new(Metrics::new("t", "0").unwrap());
    Monitor::new(
        raw.validate().unwrap(),
        metrics,
        Arc::new(LoadSignals::default()),
    )
    .unwrap()
}

pub(super) fn reading(pid: u32, rss: f64, fds: f64) -> Reading {
    Reading {
        identity: Identity {
            pid: Some(pid),
            start: Some(pid as f64 * 10.0),
        },
        rss: Some(rss),
        fds: Some(fds),
        threads: Some(8.0),
        cpu: Some(1.0),
        partial: None,
    }
}

fn tick(t: f64) -> Tick<'static> {
    Tick {
        t,
        requests: (t * 100.0) as u64,
        streams: 10.0,
        burst: false,
        state: None,
        load_start: None,
        mix: attribution::MixTick {
            counts: &[],
            epoch: 0,
            varies: false,
        },
    }
}

/// Feeds `f(t)` (RSS) every `dt` seconds over `[from, to)` to the target.
fn feed(m: &Monitor, from: f64, to: f64, dt: f64, f: impl Fn(f64) -> f64) {
    let mut t = from;
    while t < to {
        let mut st = lock(&m.procs[1]);
        m.apply(&mut st, reading(100, f(t), 20.0), tick(t));
        drop(st);
        t += dt;
    }
}

fn verdict(m: &Monitor, r: Resource) -> Verdict {
    lock(&m.procs[1]).verdict(r)
}

fn leak_gauge(m: &Monitor, r: Resource) -> i64 {
    m.metrics
        .leak_suspected
        .with_label_values(&["target", r.as_str()])
        .get()
}

#[test]
fn leak_then_plateau_clears_the_verdict() {
    let m = monitor(&["5m", "2h"], "5s");
    let grow = 300.0 * MIB / 3600.0; // 300 MiB/h for 70 minutes, then flat.
    let f = move |t: f64| 200.0 * MIB + grow * t.min(4200.0);
    feed(&m, 0.0, 3900.0, 5.0, f);
    // Both windows ready (2 h window holds > 1 h) and both see growth.
    assert_eq!(verdict(&m, Resource::Rss), Verdict::Leak);
    assert_eq!(leak_gauge(&m, Resource::Rss), 1);
    assert_eq!(verdict(&m, Resource::Fds), Verdict::Ok, "flat fds");
    feed(&m, 3900.0, 4800.0, 5.0, f);
    // Short window flat: no verdict.
    assert_eq!(verdict(&m, Resource::Rss), Verdict::Ok);
    assert_eq!(leak_gauge(&m, Resource::Rss), 0);
    let text = m.metrics.encode();
    assert!(
        text.contains(r#"soakd_process_rss_growth_bytes_per_second{process="target",window="2h"}"#),
        "{text}"
    );
}

#[test]
fn short_growth_after_a_long_plateau_needs_the_long_window() {
    // Flat for 2 h, then a 5-minute ramp of 100 MiB (a cache filling): the 5 m window sees
    // 1.2 GiB/h, the 2 h window sees a plateau with a step, so no leak is called.
    let m = monitor(&["5m", "2h"], "5s");
    let f = |t: f64| 300.0 * MIB + (t - 7200.0).clamp(0.0, 300.0) / 300.0 * 100.0 * MIB;
    feed(&m, 0.0, 7200.0 + 290.0, 5.0, f);
    let st = lock(&m.procs[1]);
    let short = st.trend.fit(0, 0).unwrap();
    let long = st.trend.fit(1, 0).unwrap();
    assert!(short.slope * 3600.0 > 1000.0 * MIB, "{}", short.slope);
    assert!(long.slope * 3600.0 < 1.0 * MIB, "{}", long.slope);
    assert_eq!(st.verdict(Resource::Rss), Verdict::Ok);
}

#[test]
fn only_the_short_window_ready_is_unknown_not_a_leak() {
    // 1 GiB/h for 10 minutes: the 5 m window calls it, the 2 h window has too little data,
    // so a plateau cannot yet be ruled out.
    let m = monitor(&["5m", "2h"], "5s");
    feed(&m, 0.0, 600.0, 5.0, |t| {
        200.0 * MIB + t * 1024.0 * MIB / 3600.0
    });
    assert!(lock(&m.procs[1]).trend.fit(0, 0).is_some());
    assert!(lock(&m.procs[1]).trend.fit(1, 0).is_none());
    assert_eq!(verdict(&m, Resource::Rss), Verdict::Unknown);
    assert_eq!(leak_gauge(&m, Resource::Rss), 0);
}

#[test]
fn growth_must_pass_both_the_absolute_and_the_relative_limit() {
    // A 20 MiB process growing 4 MiB/h: 20 %/h (over the relative 10 %/h) but far under
    // 50 MiB/h, over a clean linear fit: not a leak.
    let m = monitor(&["5m", "20m"], "5s");
    feed(&m, 0.0, 1500.0, 5.0, |t| {
        20.0 * MIB + t * 4.0 * MIB / 3600.0
    });
    assert_eq!(verdict(&m, Resource::Rss), Verdict::Ok);
    // A 10 GiB process growing 60 MiB/h: over 50 MiB/h but 0.6 %/h: not a leak either.
    let m = monitor(&["5m", "20m"], "5s");
    feed(&m, 0.0, 1500.0, 5.0, |t| {
        10240.0 * MIB + t * 60.0 * MIB / 3600.0
    });
    assert_eq!(verdict(&m, Resource::Rss), Verdict::Ok);
    // A 200 MiB process growing 60 MiB/h passes both (30 %/h): a leak.
    let m = monitor(&["5m", "20m"], "5s");
    feed(&m, 0.0, 1500.0, 5.0, |t| {
        200.0 * MIB + t * 60.0 * MIB / 3600.0
    });
    assert_eq!(verdict(&m, Resource::Rss), Verdict::Leak);
}

#[test]
fn flat_sawtooth_is_no_leak() {
    let m = monitor(&["5m", "30m"], "1s");
    feed(&m, 0.0, 3600.0, 1.0, |t| {
        500.0 * MIB + (t % 40.0) / 40.0 * 60.0 * MIB
    });
    assert_eq!(verdict(&m, Resource::Rss), Verdict::Ok);
    assert_eq!(leak_gauge(&m, Resource::Rss), 0);
}

#[test]
fn too_few_samples_is_unknown_and_absent() {
    let m = monitor(&["5m", "30m"], "5s");
    feed(&m, 0.0, 100.0, 5.0, |t| 100.0 * MIB + t * MIB);
    assert_eq!(verdict(&m, Resource::Rss), Verdict::Unknown);
    let text = m.metrics.encode();
    assert!(
        !text.contains("soakd_process_rss_growth_bytes_per_second{"),
        "{text}"
    );
    assert!(text.contains(r#"soakd_process_resident_memory_bytes{process="target"}"#));
    let snap = m.snapshot();
    assert!(snap.processes[1].windows[0].rss.is_none());
}

#[test]
fn restart_clears_the_fit_and_counts() {
    let m = monitor(&["5m", "30m"], "5s");
    let f = |t: f64| 100.0 * MIB + t * 0.1 * MIB;
    feed(&m, 0.0, 2000.0, 5.0, f);
    assert_eq!(verdict(&m, Resource::Rss), Verdict::Leak);
    {
        let mut st = lock(&m.procs[1]);
        m.apply(&mut st, reading(200, 50.0 * MIB, 20.0), tick(2000.0));
        assert_eq!(st.restarts, 1);
        assert!(st.trend.windows().iter().all(|w| w.len() <= 1));
        assert_eq!(st.verdict(Resource::Rss), Verdict::Unknown);
        assert_eq!(st.baseline_rss, Some(50.0 * MIB));
    }
    assert_eq!(leak_gauge(&m, Resource::Rss), 0);
    let text = m.metrics.encode();
    assert!(text.contains(r#"soakd_process_restarts_total{process="target"} 1"#));
    assert!(
        !text.contains("soakd_process_rss_growth_bytes_per_second{"),
        "{text}"
    );
    assert!(!text.contains("soakd_process_growth_fit_r2{"));
}

#[test]
fn unreadable_process_withdraws_gauges_and_keeps_no_stale_slope() {
    let m = monitor(&["5m"], "5s");
    feed(&m, 0.0, 600.0, 5.0, |t| 100.0 * MIB + t * MIB);
    assert!(m
        .metrics
        .encode()
        .contains("soakd_process_fd_growth_per_second{"));
    {
        let mut st = lock(&m.procs[1]);
        m.apply_error(&mut st, SampleError::Gone(100));
        m.apply_error(&mut st, SampleError::Gone(100));
    }
    let text = m.metrics.encode();
    assert!(text.contains(r#"soakd_process_up{process="target"} 0"#));
    for name in [
        "soakd_process_rss_growth_bytes_per_second{",
        "soakd_process_fd_growth_per_second{",
        "soakd_process_growth_fit_r2{",
        "soakd_process_rss_growth_bytes_per_request{",
        r#"soakd_process_resident_memory_bytes{process="target"}"#,
    ] {
        assert!(!text.contains(name), "{name} still exported");
    }
    assert!(m.progress_fragment().contains("target down"));
}

#[test]
fn partial_reading_drops_only_the_missing_resource() {
    let m = monitor(&["5m"], "5s");
    for i in 0..120 {
        let t = i as f64 * 5.0;
        let mut r = reading(100, 100.0 * MIB + t * MIB, 0.0);
        r.fds = None;
        r.partial = Some("permission denied".into());
        let mut st = lock(&m.procs[1]);
        m.apply(&mut st, r, tick(t));
    }
    let text = m.metrics.encode();
    assert!(text.contains(r#"soakd_process_up{process="target"} 1"#));
    assert!(!text.contains(r#"soakd_process_open_fds{process="target"}"#));
    assert!(text.contains(r#"soakd_process_threads{process="target"} 8"#));
    assert!(!text.contains(r#"soakd_process_fd_growth_per_second{process="target""#));
    assert_eq!(verdict(&m, Resource::Fds), Verdict::Unknown);
    assert_eq!(verdict(&m, Resource::Rss), Verdict::Leak);
}

#[test]
fn growth_per_request_and_per_stream() {
    let m = monitor(&["5m"], "1s");
    // 100 requests/s (see `tick`), RSS +1000 B/s: 10 B per request, 100 B/s per open stream.
    feed(&m, 0.0, 400.0, 1.0, |t| 100.0 * MIB + 1000.0 * t);
    let v = m
        .metrics
        .process_rss_growth_per_request
        .with_label_values(&["target", "5m"])
        .get();
    assert!((v - 10.0).abs() < 0.2, "{v}");
    let w = &m.snapshot().processes[1].windows[0];
    assert!((w.request_rate_per_sec.unwrap() - 100.0).abs() < 1.0);
    assert!((w.rss_bytes_per_sec_per_open_stream.unwrap() - 100.0).abs() < 1.0);
    assert!((w.rss.unwrap().slope_per_hour - 3_600_000.0).abs() < 1.0);
}

#[test]
fn retained_after_burst() {
    let m = monitor(&["5m"], "1s");
    let mut t = 0.0;
    let mut step = |burst: bool, rss: f64| {
        let mut st = lock(&m.procs[1]);
        let mut tk = tick(t);
        tk.burst = burst;
        m.apply(&mut st, reading(100, rss, 20.0), tk);
        t += 1.0;
    };
    for _ in 0..10 {
        step(false, 100.0 * MIB);
    }
    for _ in 0..20 {
        step(true, 180.0 * MIB);
    }
    // Burst over; RSS falls back part of the way. Nothing measured before the settle time.
    for _ in 0..29 {
        step(false, 112.0 * MIB);
    }
    assert!(lock(&m.procs[1]).retained.is_none());
    step(false, 112.0 * MIB);
    step(false, 112.0 * MIB);
    let g = m
        .metrics
        .process_rss_retained_after_burst
        .with_label_values(&["target"])
        .get();
    assert_eq!(g, 12.0 * MIB);
    assert_eq!(
        m.snapshot().processes[1].retained_after_burst_bytes,
        Some(12.0 * MIB)
    );
}

#[test]
fn progress_fragment_and_snapshot_shape() {
    let m = monitor(&["5m", "30m"], "5s");
    assert_eq!(m.progress_fragment(), "target down");
    feed(&m, 0.0, 2000.0, 5.0, |t| {
        400.0 * MIB + t * (60.0 * MIB / 3600.0)
    });
    let p = m.progress_fragment();
    assert!(p.starts_with("target rss 43"), "{p}");
    assert!(p.contains("+60MiB/h(30m)"), "{p}");
    assert!(p.ends_with("leak:rss"), "{p}");
    let json = serde_json::to_value(m.snapshot()).unwrap();
    assert_eq!(json["processes"][0]["name"], "soakd");
    assert_eq!(json["processes"][1]["verdict"]["rss"], "leak");
    assert_eq!(json["processes"][1]["verdict"]["fds"], "ok");
    assert_eq!(json["processes"][1]["baseline_rss_bytes"], 400.0 * MIB);
}

#[test]
fn fit_report_carries_the_line_and_the_span_it_covers() {
    let m = monitor(&["2m"], "1s");
    // RSS = 50 MiB + 2000 B/s × t, sampled from t = 10 s to t = 399 s.
    feed(&m, 10.0, 400.0, 1.0, |t| 50.0 * MIB + 2000.0 * t);
    let report = m.snapshot();
    assert!(
        report.started_unix_secs > 1.6e9,
        "{}",
        report.started_unix_secs
    );
    let f = report.processes[1].windows[0].rss.unwrap();
    assert!((f.slope_per_sec - 2000.0).abs() < 1e-6, "{f:?}");
    assert!((f.intercept - 50.0 * MIB).abs() < 1.0, "{f:?}");
    // The 2 min window (1 s buckets) ends at the last closed bucket and spans about 2 min.
    assert!(f.to_secs <= 399.0 && f.to_secs >= 397.0, "{f:?}");
    assert!((f.to_secs - f.from_secs - 120.0).abs() <= 3.0, "{f:?}");
    // The line at the span's ends is the series there.
    let at = |t: f64| f.intercept + f.slope_per_sec * t;
    assert!((at(f.to_secs) - (50.0 * MIB + 2000.0 * f.to_secs)).abs() < 1.0);
}

/// Issue 27, item 7: the progress line shows no slope from a window that is not yet full
/// (at 3 min a 5 min window's fit covers 3 min), says which window is filling, and once a
/// full window has no fit it says why rather than a bare "pending".
#[test]
fn the_progress_line_shows_no_slope_from_a_window_not_yet_full() {
    let m = monitor(&["5m", "30m"], "5s");
    let f = |t: f64| 400.0 * MIB + t * (60.0 * MIB / 3600.0);
    feed(&m, 0.0, 200.0, 5.0, f);
    assert!(
        lock(&m.procs[1]).trend.fit(0, 0).is_some(),
        "the 5m window has a fit already"
    );
    let p = m.progress_fragment();
    assert!(p.contains(" slope:filling(5m: 3m 15s of 5m) "), "{p}");
    assert!(!p.contains("/h("), "no slope from a partial window: {p}");
    feed(&m, 200.0, 400.0, 5.0, f);
    let p = m.progress_fragment();
    assert!(
        p.contains(" +60MiB/h(5m) "),
        "the full 5m window, not the 30m: {p}"
    );

    // A full window that cannot fit (three 20 s sawtooth cycles in 1 min) says why.
    let m = monitor(&["1m"], "1s");
    let saw = |t: f64| 300.0 * MIB + (t % 20.0) * 2.0 * MIB;
    feed(&m, 0.0, 150.0, 1.0, saw);
    let p = m.progress_fragment();
    assert!(p.contains(" slope:none(1m: "), "{p}");
    assert!(p.contains("troughs < 6, one per 2"), "{p}");
}

/// Issue 27, item 2: `/status` carries each verdict's reason and the rate limit.
#[test]
fn the_report_states_each_verdicts_reason_and_limit() {
    let m = monitor(&["5m", "30m"], "5s");
    feed(&m, 0.0, 2000.0, 5.0, |t| 400.0 * MIB + 20.0 * (t % 7.0));
    let json = serde_json::to_value(m.snapshot()).unwrap();
    let p = &json["processes"][1];
    assert_eq!(p["verdict"]["rss"], "ok");
    let why = p["reason"]["rss"].as_str().unwrap();
    assert!(
        why.ends_with("over the 30m window is under the limit (50MiB/h and 10%/h; floor 8MiB)")
            || why.starts_with("does not leak: "),
        "{why}"
    );
    assert_eq!(p["limit_per_hour"]["rss"], 50.0 * MIB);
    assert_eq!(p["limit_per_hour"]["fds"], 60.0);
    assert_eq!(p["source_label"], "pid 1");
    // Before any sample: unknown, with why.
    let m = monitor(&["5m", "30m"], "5s");
    let json = serde_json::to_value(m.snapshot()).unwrap();
    assert_eq!(
        json["processes"][1]["reason"]["fds"],
        "the longest window (30m) has no fit: no samples after the warm-up yet"
    );
    assert_eq!(
        json["processes"][1]["limit_per_hour"]["rss"],
        serde_json::Value::Null
    );
}

/// Issue 27, item 4: a label says which pid was read and where it came from, each config key
/// by its name (it read `(pid_file 20677)`, as if 20677 were the file).
#[test]
fn source_labels_name_the_pid_and_the_key_it_came_from() {
    use report::source_label;
    let file = Source::PidFile("/run/litellm.pid".into());
    assert_eq!(
        source_label(&file, Some(20677)),
        "pid 20677 from pid_file /run/litellm.pid"
    );
    assert_eq!(
        source_label(&file, None),
        "no pid yet from pid_file /run/litellm.pid"
    );
    let cmd = Source::Match {
        name: None,
        cmdline: Some("litellm".into()),
    };
    assert_eq!(
        source_label(&cmd, Some(20677)),
        "pid 20677 from match_cmdline \"litellm\""
    );
    let both = Source::Match {
        name: Some("python3".into()),
        cmdline: Some("litellm".into()),
    };
    assert_eq!(
        source_label(&both, Some(7)),
        "pid 7 from match_name \"python3\" and match_cmdline \"litellm\""
    );
    assert_eq!(source_label(&Source::Pid(16158), Some(16158)), "pid 16158");
    let scrape = Source::Scrape {
        url: "http://user:secret@10.0.0.7:4000/metrics".parse().unwrap(),
        names: ScrapeNames::default(),
    };
    assert_eq!(
        source_label(&scrape, None),
        "scrape_url http://user:redacted@10.0.0.7:4000/metrics"
    );
}
