//! Cost per sample and memory per window, old `WindowBuf` against the new `TrendSet`.

use std::hint::black_box;
use std::time::Instant;

use soakd::monitor::estimate::{Point, WindowBuf};
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

/// The old `WindowBuf`'s heap for a window of `span` s at 1 s: its buckets (128 bytes) and its
/// own scratch (six point vectors and the pair slopes), from the capacities it allocates.
fn old_heap(span: f64) -> usize {
    let cap = (span / (span / 120.0).max(1.0)).ceil() as usize + 2;
    cap * 128 + 6 * cap * 8 + cap * (cap - 1) / 2 * 8
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
    println!("| series | old `WindowBuf`: CPU per sample | new `TrendSet`: CPU per sample |");
    println!("|---|---|---|");
    const WARM: u64 = 3 * 7200;
    const N: u64 = 100_000;
    for saw in [true, false] {
        let mut old: Vec<WindowBuf> = spans.iter().map(|&s| WindowBuf::new(s, 1.0)).collect();
        let mut new = TrendSet::new(&spans, 1.0, DEFAULT_CONFIDENCE);
        for i in 0..WARM {
            let p = point(i, saw);
            for w in &mut old {
                w.push(&p);
            }
            new.push(&p);
        }
        let old_per = cpu_per(N, |i| {
            let p = point(WARM + i, saw);
            for w in &mut old {
                black_box(w.push(&p));
            }
        });
        let new_per = cpu_per(N, |i| {
            black_box(new.push(&point(WARM + i, saw)));
        });
        println!(
            "| {} | {:.2} µs | {:.2} µs |",
            if saw {
                "leak + 32 MiB / 120 s sawtooth"
            } else {
                "leak, no sawtooth"
            },
            old_per * 1e6,
            new_per * 1e6
        );
    }
    // Worst case: a 120 s window at 1 s closes a bucket, and refits 3 resources × 120 points,
    // on every sample.
    let mut old = WindowBuf::new(120.0, 1.0);
    let mut new = TrendSet::new(&[120.0], 1.0, DEFAULT_CONFIDENCE);
    for i in 0..1000 {
        old.push(&point(i, false));
        new.push(&point(i, false));
    }
    let old_refit = cpu_per(5_000, |i| {
        black_box(old.push(&point(1000 + i, false)));
    });
    let new_refit = cpu_per(5_000, |i| {
        black_box(new.push(&point(1000 + i, false)));
    });
    println!(
        "| worst case: every sample refits 3 resources × 120 points | {:.0} µs | {:.0} µs |",
        old_refit * 1e6,
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
        "\nHeap per process: old {} KiB ({} per window, each with its own fit scratch); new {} KiB \
         ({} per window: 122 buckets + the 6 KiB period ring; plus {} KiB of fit scratch shared by \
         the windows). Both fixed from the first sample. Load average: {}",
        spans.iter().map(|&s| old_heap(s)).sum::<usize>() / 1024,
        spans.iter().map(|&s| format!("{} KiB", old_heap(s) / 1024)).collect::<Vec<_>>().join(", "),
        set.heap_bytes() / 1024,
        per_window.join(", "),
        (set.heap_bytes() - windows_total) / 1024,
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
}
