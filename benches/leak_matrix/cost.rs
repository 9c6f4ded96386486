//! Cost per sample and memory per window of the `TrendSet` (the previous estimator's figures
//! beside it in BENCHMARKS.md were measured before it was removed).

use std::hint::black_box;
use std::time::Instant;

use soakd::monitor::estimate::Point;
use soakd::monitor::synth::mib;
use soakd::monitor::trend::{TrendSet, DEFAULT_CONFIDENCE};

use super::Opts;

/// This thread's CPU time in seconds (Linux `schedstat`).
fn thread_cpu() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

/// Sample `i` (1 s apart) of a slow leak with a 32 MiB, 120 s sawtooth, or without it; fds
/// and threads wobble so that all three resources are fitted.
fn point(i: u64, saw: bool) -> Point {
    let t = i as f64;
    let saw = if saw {
        (t % 120.0) / 120.0 * mib(32.0)
    } else {
        0.0
    };
    let rss = mib(200.0) + t * 300.0 + saw + ((i * 7919) % 97) as f64 * 4096.0;
    Point {
        t,
        values: [
            Some(rss),
            Some(40.0 + (i % 3) as f64),
            Some(8.0 + (i % 2) as f64),
        ],
        requests: i * 10,
        streams: 4.0,
    }
}

/// CPU seconds per call of `f` over `n` calls.
fn cpu_per(n: u64, mut f: impl FnMut(u64)) -> f64 {
    let (c0, w0) = (thread_cpu(), Instant::now());
    for i in 0..n {
        f(i);
    }
    let secs = match (c0, thread_cpu()) {
        (Some(a), Some(b)) => b - a,
        _ => w0.elapsed().as_secs_f64(),
    };
    secs / n as f64
}

pub fn cost(o: &Opts) {
    let spans: Vec<f64> = o.windows.iter().map(|w| w.1).collect();
    let labels = o
        .windows
        .iter()
        .map(|w| w.0.as_str())
        .collect::<Vec<_>>()
        .join("/");
    println!("\n### Cost: windows {labels}, one sample per second, 3 resources, release build\n");
    println!("| series | `TrendSet`: CPU per sample |");
    println!("|---|---|");
    const WARM: u64 = 3 * 7200;
    const N: u64 = 100_000;
    for saw in [true, false] {
        let mut new = TrendSet::new(&spans, 1.0, DEFAULT_CONFIDENCE);
        for i in 0..WARM {
            new.push(&point(i, saw));
        }
        let new_per = cpu_per(N, |i| {
            black_box(new.push(&point(WARM + i, saw)));
        });
        println!(
            "| {} | {:.2} µs |",
            if saw {
                "leak + 32 MiB / 120 s sawtooth"
            } else {
                "leak, no sawtooth"
            },
            new_per * 1e6
        );
    }
    // Worst case: a 120 s window at 1 s closes a bucket, and refits 3 resources × 120 points,
    // on every sample.
    let mut new = TrendSet::new(&[120.0], 1.0, DEFAULT_CONFIDENCE);
    for i in 0..1000 {
        new.push(&point(i, false));
    }
    let new_refit = cpu_per(5_000, |i| {
        black_box(new.push(&point(1000 + i, false)));
    });
    println!(
        "| worst case: every sample refits 3 resources × 120 points | {:.0} µs |",
        new_refit * 1e6
    );
    let set = TrendSet::new(&spans, 1.0, DEFAULT_CONFIDENCE);
    let per_window: Vec<String> = set
        .windows()
        .iter()
        .map(|w| format!("{} KiB", w.heap_bytes() / 1024))
        .collect();
    let windows_total: usize = set.windows().iter().map(|w| w.heap_bytes()).sum();
    println!(
        "\nHeap per process: {} KiB ({} per window: 122 buckets + the 6 KiB period ring; plus {} \
         KiB of fit scratch shared by the windows), fixed from the first sample. Load average: {}",
        set.heap_bytes() / 1024,
        per_window.join(", "),
        (set.heap_bytes() - windows_total) / 1024,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}
