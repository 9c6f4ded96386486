//! Series tests on synthetic ticks (no real time): interval percentiles, the two buffers'
//! bounds, the merge rules, memory after 24 simulated hours, the JSON layout.

use hdrhistogram::Histogram;

use super::point::{Gauge, Point, ProcPoint, Quant, N_OUT};
use super::*;
use crate::client::Outcome;
use crate::monitor::{FitReport, ProcessReport, ResourceVerdicts, Verdict, WindowReport};

const T0: f64 = 1_700_000_000.0;
const MIB: f64 = 1024.0 * 1024.0;

fn stats_hist() -> Histogram<u64> {
    // The configuration of `crate::stats::Stats`.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap()
}

fn fit(slope: f64, intercept: f64, from: f64, to: f64) -> FitReport {
    FitReport {
        slope_per_sec: slope,
        slope_per_hour: slope * 3600.0,
        intercept,
        from_secs: from,
        to_secs: to,
        slope_lower_per_hour: None,
        slope_upper_per_hour: None,
        trend_p: 0.01,
        period_secs: None,
        r2: 0.99,
        points: 100,
    }
}

fn process(name: &str, up: bool, rss: f64, windows: &[&str]) -> ProcessReport {
    ProcessReport {
        name: name.into(),
        source: "pid",
        fail_on_leak: true,
        up,
        pid: Some(42),
        restarts: 0,
        samples: 1,
        baseline_rss_bytes: Some(rss),
        peak_rss_bytes: Some(rss),
        rss_bytes: Some(rss),
        open_fds: Some(20.0),
        threads: Some(8.0),
        cpu_seconds: 0.0,
        windows: windows
            .iter()
            .map(|w| WindowReport {
                window: w.to_string(),
                rss: Some(fit(1000.0, 50.0 * MIB, 10.0, 300.0)),
                fds: Some(fit(0.0, 20.0, 10.0, 300.0)),
                threads: None,
                request_rate_per_sec: Some(10.0),
                rss_bytes_per_request: Some(100.0),
                avg_open_streams: Some(5.0),
                rss_bytes_per_sec_per_open_stream: Some(200.0),
                rss_bytes_per_request_by_scenario: Default::default(),
            })
            .collect(),
        retained_after_burst_bytes: None,
        verdict: ResourceVerdicts {
            rss: Verdict::Ok,
            fds: Verdict::Unknown,
            threads: Verdict::Unknown,
        },
        reason: crate::monitor::PerResource {
            rss: "+1MiB/h is under the limit".into(),
            ..Default::default()
        },
        limit_per_hour: Default::default(),
        source_label: "pid 42".into(),
    }
}

fn report(procs: Vec<ProcessReport>) -> MonitorReport {
    MonitorReport {
        started_unix_secs: T0 - 5.0,
        sample_interval_secs: 1.0,
        windows: vec!["5m".into(), "30m".into(), "2h".into()],
        processes: procs,
    }
}

/// A tick at `T0 + secs` with cumulative values (the plan asks for 10 requests/s).
fn input(secs: f64, sent: u64) -> TickInput {
    TickInput {
        at: T0 + secs,
        requests_planned: secs * 10.0,
        requests_sent: sent,
        ..TickInput::default()
    }
}

fn totals(b: &Buffer) -> (u64, u32, u32, [u64; N_OUT]) {
    let mut out = (0, 0, 0, [0; N_OUT]);
    for p in b.points() {
        out.0 += p.sent;
        out.1 += p.ticks;
        out.2 += p.burst_ticks;
        for (o, n) in out.3.iter_mut().zip(p.outcomes) {
            *o += n;
        }
    }
    out
}

#[test]
fn interval_percentiles_are_of_the_interval_not_of_the_run() {
    let mut s = Series::new(T0, 1.0);
    let mut lat = stats_hist();
    // 0–10 s: 1 ms … 100 ms (1000 values); 10–20 s: 1 s … 2 s (100 values).
    for i in 1..=20u64 {
        if i <= 10 {
            for k in 0..100u64 {
                lat.record(1000 + ((i - 1) * 100 + k) * 99).unwrap();
            }
        } else {
            for k in 0..10u64 {
                lat.record(1_000_000 + ((i - 11) * 10 + k) * 10_000)
                    .unwrap();
            }
        }
        let mut t = input(i as f64, i * 10);
        t.latency = Some(lat.clone());
        s.tick(t);
    }
    let pts: Vec<Point> = s.recent().closed().cloned().collect();
    assert_eq!(pts.len(), 2, "{pts:?}");
    let (a, b) = (pts[0].latency, pts[1].latency);
    assert_eq!((a.count, b.count), (1000, 100));
    // Exact within the accumulators' 1 % resolution.
    let near = |got: f64, want: f64| (got - want).abs() <= want * 0.011;
    assert!(near(a.p50, 0.0505), "{a:?}");
    assert!(near(a.p99, 0.099), "{a:?}");
    assert!(near(b.p50, 1.5), "{b:?}");
    assert!(near(b.p99, 1.99), "{b:?}");
    // The whole-run p50 (over 1100 values) would be about 55 ms: the second point is not that.
    let run_p50 = lat.value_at_quantile(0.5) as f64 / 1e6;
    assert!(run_p50 < 0.06, "{run_p50}");
    // No values in an interval: no percentile.
    let mut t = input(21.0, 200);
    t.latency = Some(lat.clone());
    s.tick(t);
    assert_eq!(s.recent().points().last().unwrap().latency.count, 0);
    assert_eq!(s.recent().points().last().unwrap().latency.p50(), None);
}

#[test]
fn the_recent_ring_keeps_the_last_hour_at_ten_seconds() {
    let mut s = Series::new(T0, 1.0);
    for i in 1..=7200u64 {
        s.tick(input(i as f64, i * 10));
    }
    let r = s.recent();
    assert_eq!(r.step(), RECENT_STEP);
    let closed: Vec<&Point> = r.closed().collect();
    assert_eq!(closed.len(), RECENT_POINTS);
    for p in &closed {
        assert!((p.dt() - 10.0).abs() < 1e-6 && p.ticks == 10, "{p:?}");
        assert_eq!(p.sent, 100);
    }
    assert!((closed[0].start - (T0 + 3600.0)).abs() < 1e-6);
    assert!((closed.last().unwrap().end - (T0 + 7200.0)).abs() < 1e-6);
}

#[test]
fn the_run_buffer_halves_and_keeps_totals_and_extremes() {
    let mut s = Series::new(T0, 1.0);
    let n = 5000u64;
    let mut outcomes = [0u64; N_OUT];
    let mut burst_ticks = 0;
    let mut planned = 0.0;
    for i in 1..=n {
        let mut t = input(i as f64, i * 7);
        outcomes[Outcome::Ok.index()] += 6;
        if i % 97 == 0 {
            outcomes[Outcome::Http5xx.index()] += 1;
        }
        t.outcomes = outcomes;
        t.burst = (1000..1030).contains(&i);
        burst_ticks += u32::from(t.burst);
        planned += if t.burst { 30.0 } else { 10.0 };
        t.requests_planned = planned;
        t.streams_active = (i % 50) as f64;
        // RSS 100 MiB with one spike and one dip.
        let rss = match i {
            1234 => 900.0 * MIB,
            4321 => 1.0 * MIB,
            _ => 100.0 * MIB,
        };
        t.monitor = Some(report(vec![process("target", true, rss, &["5m"])]));
        s.tick(t);
    }
    let run = s.run();
    let closed = run.closed().count();
    assert!(
        (RUN_POINTS / 2..RUN_POINTS).contains(&closed),
        "{closed} points"
    );
    // 5000 one-second ticks into 512 points: the step doubled four times (1 → 16 s).
    assert_eq!(run.step(), 16.0);
    let (sent, ticks, bursts, outs) = totals(run);
    assert_eq!(sent, n * 7, "requests sent are preserved");
    assert_eq!(ticks as u64, n);
    assert_eq!(bursts, burst_ticks, "burst ticks are preserved");
    assert_eq!(outs, outcomes, "outcome counts are preserved");
    let pts = run.points();
    let rss_max = pts
        .iter()
        .filter_map(|p| p.procs[0].rss.max())
        .fold(0.0, f64::max);
    let rss_min = pts
        .iter()
        .filter_map(|p| p.procs[0].rss.min())
        .fold(f64::INFINITY, f64::min);
    assert_eq!(rss_max, 900.0 * MIB, "the spike survives downsampling");
    assert_eq!(rss_min, 1.0 * MIB, "the dip survives downsampling");
    let streams_max = pts
        .iter()
        .filter_map(|p| p.streams.max())
        .fold(0.0, f64::max);
    assert_eq!(streams_max, 49.0);
    // Planned requests are preserved too: 10/s, and 30/s for 30 ticks.
    let total: f64 = pts.iter().map(|p| p.planned).sum();
    assert!(
        (total - (10.0 * n as f64 + 20.0 * 30.0)).abs() < 1e-6,
        "{total}"
    );
    // The points tile the run without gaps or overlaps.
    for w in pts.windows(2) {
        assert!(
            (w[0].end - w[1].start).abs() < 1e-9,
            "{:?} {:?}",
            w[0].end,
            w[1].start
        );
    }
    assert!((pts[0].start - T0).abs() < 1e-9);
    assert!((pts.last().unwrap().end - (T0 + n as f64)).abs() < 1e-9);
}

#[test]
fn merge_rules_per_kind() {
    let q = |count, p50, p99, max| Quant {
        count,
        p50,
        p99,
        max,
    };
    let m = Quant::merge(q(300, 0.010, 0.050, 0.060), q(100, 0.030, 0.200, 0.250));
    assert_eq!(m.count, 400);
    assert!((m.p50 - 0.015).abs() < 1e-12, "count-weighted p50: {m:?}");
    assert_eq!((m.p99, m.max), (0.200, 0.250), "p99 and max: the larger");
    assert_eq!(
        Quant::merge(Quant::default(), q(5, 1.0, 2.0, 3.0)),
        q(5, 1.0, 2.0, 3.0)
    );

    // A 10 s point from `start`: `sent` requests, all planned, `ok` of them ok.
    let point = |start: f64, sent: u64, ok: u64, burst_ticks: u32, streams: Gauge| {
        let mut p = Point::empty(start);
        p.end = start + 10.0;
        p.ticks = 10;
        p.sent = sent;
        p.planned = sent as f64;
        p.burst_ticks = burst_ticks;
        p.outcomes[Outcome::Ok.index()] = ok;
        p.streams = streams;
        p
    };
    let gauge = |sum: f64, min: f64, max: f64| Gauge {
        sum,
        n: 10,
        min,
        max,
    };
    let mut a = point(0.0, 100, 90, 0, gauge(50.0, 2.0, 9.0));
    let mut rss = Gauge::default();
    rss.add(10.0);
    rss.add(30.0);
    a.procs = vec![ProcPoint {
        rss,
        ..ProcPoint::default()
    }];
    let mut b = point(10.0, 300, 280, 4, gauge(150.0, 1.0, 20.0));
    b.outcomes[Outcome::Timeout.index()] = 5;
    // The second point has a second process, and no RSS for the first.
    b.procs = vec![ProcPoint::default(), ProcPoint::default()];
    b.procs[1].fds.add(7.0);
    let m = a.merge(b);
    assert_eq!((m.start, m.end, m.ticks), (0.0, 20.0, 20));
    assert_eq!(m.sent, 400, "counts add");
    assert_eq!(m.burst_ticks, 4);
    assert_eq!(m.outcomes[Outcome::Ok.index()], 370);
    assert_eq!(m.outcomes[Outcome::Timeout.index()], 5);
    assert_eq!(m.planned, 400.0, "planned requests add");
    assert_eq!(m.streams.mean(), Some(10.0), "gauge means weigh by samples");
    assert_eq!((m.streams.min(), m.streams.max()), (Some(1.0), Some(20.0)));
    assert_eq!(m.procs.len(), 2);
    assert_eq!(
        m.procs[0].rss.mean(),
        Some(20.0),
        "a gap does not dilute the mean"
    );
    assert_eq!(
        (m.procs[0].rss.min(), m.procs[0].rss.max()),
        (Some(10.0), Some(30.0))
    );
    assert_eq!(m.procs[1].fds.mean(), Some(7.0));
    assert_eq!(m.procs[1].rss.mean(), None);
}

#[test]
fn buffers_stay_under_2_mib_after_24_simulated_hours() {
    let mut s = Series::new(T0, 1.0);
    let mut lat = stats_hist();
    let mut ttft = stats_hist();
    let names = ["soakd", "target", "proxy", "sidecar"];
    let day = 24 * 3600u64;
    let mut outcomes = [0u64; N_OUT];
    for i in 1..=day {
        let mut t = input(i as f64, i * 100);
        for o in Outcome::ALL {
            outcomes[o.index()] += 1 + (i % 3);
        }
        t.outcomes = outcomes;
        t.burst = i % 600 < 60;
        // A latency reading every minute (a per-second one costs the same memory).
        if i % 60 == 0 {
            for k in 0..50 {
                lat.record(1000 + (i % 1000) * 10 + k).unwrap();
                ttft.record(500 + k * 3).unwrap();
            }
            t.latency = Some(lat.clone());
            t.ttft = Some(ttft.clone());
        }
        let procs = names
            .iter()
            .map(|n| process(n, true, 100.0 * MIB + i as f64, &["5m", "30m", "2h"]))
            .collect();
        t.monitor = Some(report(procs));
        s.tick(t);
    }
    let bytes = s.heap_bytes();
    let json = serde_json::to_vec(&s.json()).unwrap();
    eprintln!(
        "after 24 h: {} KiB of buffers, run step {} s, {} + {} points, /series {} KiB",
        bytes / 1024,
        s.run().step(),
        s.recent().closed().count(),
        s.run().closed().count(),
        json.len() / 1024
    );
    assert!(bytes < 2 * 1024 * 1024, "{bytes} bytes");
    assert!(s.run().closed().count() <= RUN_POINTS);
    assert_eq!(s.recent().closed().count(), RECENT_POINTS);
    // 86,400 s into at most 512 points: 256 s per point.
    assert_eq!(s.run().step(), 256.0);
    let (sent, _, _, outs) = totals(s.run());
    assert_eq!(sent, day * 100);
    assert_eq!(outs, outcomes);
    // Another day changes neither bound.
    for i in day + 1..=day + 3600 {
        s.tick(input(i as f64, i * 100));
    }
    assert!(
        s.heap_bytes() <= bytes + 64 * 1024,
        "{} vs {bytes}",
        s.heap_bytes()
    );
}

#[test]
fn json_columns_line_up_and_fit_lines_follow_the_intercept() {
    let mut s = Series::new(T0, 1.0);
    let mut outcomes = [0u64; N_OUT];
    for i in 1..=25u64 {
        let mut t = input(i as f64, i * 20);
        outcomes[Outcome::Ok.index()] += 19;
        outcomes[Outcome::Http429.index()] += 1;
        t.outcomes = outcomes;
        // The target is down from 12 s to 15 s.
        let up = !(12..=15).contains(&i);
        t.monitor = Some(report(vec![
            process("soakd", true, 30.0 * MIB, &["5m"]),
            process("target", up, 60.0 * MIB, &["5m", "30m"]),
        ]));
        s.tick(t);
    }
    let j = serde_json::to_value(s.json()).unwrap();
    let run = &j["run"];
    let n = run["t"].as_array().unwrap().len();
    assert_eq!(n, 25, "24 closed one-second points and the open one: {run}");
    for col in [
        "dt",
        "planned_rps",
        "achieved_rps",
        "burst",
        "latency_p50",
        "ttft_p99",
    ] {
        assert_eq!(run[col].as_array().unwrap().len(), n, "{col}");
    }
    assert_eq!(run["achieved_rps"][3], 20.0);
    assert_eq!(run["planned_rps"][3], 10.0);
    assert_eq!(run["outcomes"]["ok"][3], 19.0);
    assert_eq!(run["outcomes"]["http_429"][3], 1.0);
    assert!(
        run["outcomes"].get("timeout").is_none(),
        "unseen outcomes are left out"
    );
    assert!(run["latency_p50"][3].is_null(), "no latency read: null");
    let target = &run["processes"][1];
    assert_eq!(target["name"], "target");
    assert_eq!(target["rss"][5], 60.0 * MIB);
    assert!(target["rss"][12].is_null(), "down: null: {target}");
    assert_eq!(target["fds"][20], 20.0);
    let recent = &j["recent"];
    assert_eq!(
        recent["t"].as_array().unwrap().len(),
        3,
        "10 s, 10 s and the open 5 s"
    );
    assert_eq!(recent["dt"][0], 10.0);
    assert_eq!(recent["achieved_rps"][0], 20.0);

    let p = &j["processes"][1];
    assert_eq!(p["verdict"]["rss"], "ok");
    let fits = p["fits"].as_array().unwrap();
    // Two windows × (rss, fds); threads has no fit.
    assert_eq!(fits.len(), 4, "{fits:?}");
    let f = &fits[0];
    assert_eq!(
        (f["window"].as_str(), f["resource"].as_str()),
        (Some("5m"), Some("rss"))
    );
    assert_eq!(f["window_secs"], 300.0);
    let origin = T0 - 5.0;
    assert_eq!(f["origin"], origin);
    assert_eq!(f["from"], origin + 10.0);
    assert_eq!(f["to"], origin + 300.0);
    assert_eq!(f["from_value"], 50.0 * MIB + 1000.0 * 10.0);
    assert_eq!(f["to_value"], 50.0 * MIB + 1000.0 * 300.0);
}

#[test]
fn ticks_out_of_order_are_ignored() {
    let mut s = Series::new(T0, 1.0);
    s.tick(input(1.0, 10));
    s.tick(input(0.5, 1000));
    s.tick(input(1.0, 1000));
    s.tick(input(2.0, 20));
    let (sent, ticks, _, _) = totals(s.run());
    assert_eq!((sent, ticks), (20, 2));
}
