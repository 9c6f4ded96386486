//! The series buffers after 24 simulated hours (86,400 one-second ticks, four monitored
//! processes with three growth windows each, a latency histogram read every tick): their heap
//! size, the size of the `/series` document, the time to build and serialise it, and the time
//! one tick takes. No real time passes; no external harness.
//!
//! `cargo bench --bench series` (`cargo test --all-targets` runs it without `--bench`: then it
//! feeds one simulated hour and checks the bounds instead of timing a debug build).

use std::hint::black_box;
use std::time::Instant;

use hdrhistogram::Histogram;
use soakd::monitor::{
    FitReport, MonitorReport, ProcessReport, ResourceVerdicts, Verdict, WindowReport,
};
use soakd::series::{Series, TickInput};

const T0: f64 = 1_700_000_000.0;
const DAY: u64 = 24 * 3600;
const MIB: f64 = 1024.0 * 1024.0;

fn fit() -> Option<FitReport> {
    Some(FitReport {
        slope_per_sec: 100.0,
        slope_per_hour: 360_000.0,
        intercept: 100.0 * MIB,
        from_secs: 10.0,
        to_secs: 3000.0,
        slope_lower_per_hour: Some(300_000.0),
        slope_upper_per_hour: Some(420_000.0),
        trend_p: 0.001,
        period_secs: None,
        r2: 0.95,
        points: 120,
    })
}

fn report(i: u64) -> MonitorReport {
    let procs = ["soakd", "target", "proxy", "sidecar"]
        .iter()
        .map(|n| ProcessReport {
            fail_on_leak: true,
            name: n.to_string(),
            source: "pid",
            up: true,
            pid: Some(1),
            restarts: 0,
            samples: i,
            baseline_rss_bytes: Some(100.0 * MIB),
            peak_rss_bytes: Some(200.0 * MIB),
            rss_bytes: Some(100.0 * MIB + (i % 977) as f64 * 4096.0),
            open_fds: Some(50.0),
            threads: Some(12.0),
            cpu_seconds: 0.0,
            windows: ["5m", "30m", "2h"]
                .iter()
                .map(|w| WindowReport {
                    window: w.to_string(),
                    rss: fit(),
                    fds: fit(),
                    threads: fit(),
                    request_rate_per_sec: Some(100.0),
                    rss_bytes_per_request: Some(1.0),
                    avg_open_streams: Some(10.0),
                    rss_bytes_per_sec_per_open_stream: Some(10.0),
                    rss_bytes_per_request_by_scenario: Default::default(),
                })
                .collect(),
            retained_after_burst_bytes: None,
            verdict: ResourceVerdicts {
                rss: Verdict::Ok,
                fds: Verdict::Ok,
                threads: Verdict::Ok,
            },
            reason: Default::default(),
            limit_per_hour: Default::default(),
            source_label: "pid 1".into(),
        })
        .collect();
    MonitorReport {
        started_unix_secs: T0,
        sample_interval_secs: 1.0,
        windows: vec!["5m".into(), "30m".into(), "2h".into()],
        processes: procs,
    }
}

fn main() {
    let timed = std::env::args().any(|a| a == "--bench");
    let ticks = if timed { DAY } else { 3600 };
    let mut s = Series::new(T0, 1.0);
    // The configuration of soakd's own HDR histograms (1 µs to 1 h, 3 digits).
    let mut lat = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
    let mut outcomes = [0u64; 10];
    let mut tick_time = std::time::Duration::ZERO;
    for i in 1..=ticks {
        // 100 requests a second, latencies spread over 5–150 ms.
        for k in 0..100u64 {
            lat.record(5_000 + (i * 7 + k * 1_450) % 145_000).unwrap();
        }
        outcomes[0] += 99;
        outcomes[3] += 1;
        let input = TickInput {
            at: T0 + i as f64,
            requests_planned: i as f64 * 100.0,
            requests_sent: i * 100,
            burst: i % 1800 < 120,
            outcomes,
            streams_active: 10.0,
            latency: (timed || i % 60 == 0).then(|| lat.clone()),
            ttft: (timed || i % 60 == 0).then(|| lat.clone()),
            monitor: Some(report(i)),
        };
        let t = Instant::now();
        s.tick(input);
        tick_time += t.elapsed();
    }
    if !timed {
        let json: serde_json::Value = serde_json::to_value(s.json()).unwrap();
        assert_eq!(json["recent"]["t"].as_array().unwrap().len(), 360);
        assert!(s.heap_bytes() < 2 * 1024 * 1024);
        println!("series bench: smoke check ok (run `cargo bench --bench series` to time it)");
        return;
    }
    let mut best = f64::INFINITY;
    let mut bytes = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let json = serde_json::to_vec(black_box(&s.json())).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
        bytes = json.len();
    }
    println!(
        "after 24 h of 1 s ticks: heap {:.0} KiB; run buffer step {} s, {} + {} points; \
         /series {:.0} KiB, built and serialised in {:.2} ms (best of 20); \
         one tick {:.1} µs on average",
        s.heap_bytes() as f64 / 1024.0,
        s.run().step(),
        s.recent().closed().count(),
        s.run().closed().count(),
        bytes as f64 / 1024.0,
        best * 1e3,
        tick_time.as_secs_f64() / ticks as f64 * 1e6,
    );
}
