//! The goals of issue 13 §5, the old sawtooth table, and the coverage of
//! the slope interval.

use soakd::monitor::estimate::Point;
use soakd::monitor::replay::ReplayConfig;
use soakd::monitor::synth::{half_rate_rules, mib, run_scenario, Scenario, Synth, SynthSpec};
use soakd::monitor::trend::{TrendSet, DEFAULT_CONFIDENCE};
use soakd::monitor::Resource;

use super::{fmt_time, Opts};

/// The four goals of issue 13 §5, each with its window set, over `seeds` seeds.
pub fn goals(o: &Opts) {
    struct Goal {
        name: &'static str,
        spec: SynthSpec,
        windows: &'static [(&'static str, f64)],
        interval: f64,
        hours: f64,
        within: f64,
        tolerance: f64,
    }
    let goals = [
        Goal {
            name: "1 MiB/h under a 32 MiB, 120 s sawtooth",
            spec: SynthSpec {
                leak_per_hour: mib(1.0),
                saw_amplitude: mib(32.0),
                saw_period: 120.0,
                saw_jitter: 0.1,
                noise_sd: mib(0.1),
                ..SynthSpec::default()
            },
            windows: &[("30m", 1800.0), ("1h", 3600.0)],
            interval: 1.0,
            hours: 1.0,
            within: 3600.0,
            tolerance: 0.25,
        },
        Goal {
            name: "4 MiB/h under a 64 MiB, 600 s sawtooth",
            spec: SynthSpec {
                leak_per_hour: mib(4.0),
                saw_amplitude: mib(64.0),
                saw_period: 600.0,
                saw_jitter: 0.1,
                noise_sd: mib(0.25),
                ..SynthSpec::default()
            },
            windows: &[("1h", 3600.0), ("3h", 10800.0)],
            interval: 2.0,
            hours: 3.0,
            within: 3.0 * 3600.0,
            tolerance: 0.25,
        },
        Goal {
            name: "clean 16 MiB/h",
            spec: SynthSpec {
                leak_per_hour: mib(16.0),
                noise_sd: mib(0.1),
                ..SynthSpec::default()
            },
            windows: &[("5m", 300.0), ("15m", 900.0)],
            interval: 1.0,
            hours: 0.25,
            within: 900.0,
            tolerance: 0.05,
        },
    ];
    println!(
        "\n### Goals ({} seeds, no warm-up skip, 15 s confirm)\n",
        o.seeds
    );
    println!("| goal | windows | samples | found within | worst time to leak | slope error at detection | at the end | flips |");
    println!("|---|---|---|---|---|---|---|---|");
    for g in goals {
        let mut times = Vec::new();
        let (mut at_det, mut at_end) = (Vec::new(), Vec::new());
        let mut flips = 0;
        for seed in 0..o.seeds {
            let mut replay = ReplayConfig::new(
                g.windows.iter().map(|w| w.1).collect(),
                g.interval,
                Resource::Rss,
            );
            replay.rules = half_rate_rules(g.spec.leak_per_hour, g.spec.baseline);
            let out = run_scenario(&Scenario {
                spec: SynthSpec {
                    saw_phase: (seed as f64 * 0.37) % 1.0,
                    ..g.spec
                },
                seed,
                duration: g.hours * 3600.0,
                replay,
            });
            times.push(out.first_leak);
            let truth = g.spec.leak_per_hour;
            if let Some(s) = out.slope_at_first_leak {
                at_det.push((s - truth) / truth * 100.0);
            }
            if let Some(s) = out.final_slope() {
                at_end.push((s - truth) / truth * 100.0);
            }
            flips += out.leak_episodes.saturating_sub(1);
        }
        let range = |v: &[f64]| {
            let (lo, hi) = v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &e| {
                    (a.min(e), b.max(e))
                });
            format!("{lo:+.1} … {hi:+.1} %")
        };
        let missed = times.iter().filter(|t| t.is_none()).count();
        let worst = times.iter().flatten().copied().fold(0.0f64, f64::max);
        println!(
            "| {} (±{:.0} %) | {} | {} s | {} | {}{} | {} | {} | {} |",
            g.name,
            g.tolerance * 100.0,
            g.windows.iter().map(|w| w.0).collect::<Vec<_>>().join("/"),
            g.interval,
            fmt_time(Some(g.within)),
            fmt_time(Some(worst)),
            if missed > 0 {
                format!(" ({missed} missed)")
            } else {
                String::new()
            },
            range(&at_det),
            range(&at_end),
            flips
        );
    }
}

/// The old `sawtooth_table` on the trough fit: 20 MiB/h + a 30 MiB sawtooth + Gaussian noise
/// of sd 1.15 MiB, 1 s samples, one window, seeds 0–4. (The previous estimator's column in
/// BENCHMARKS.md was measured with it before it was removed.)
pub fn table() {
    println!("\n### Sawtooth table (20 MiB/h + 30 MiB sawtooth + noise sd 1.15 MiB, 1 s samples, seeds 0–4)\n");
    println!(
        "| period | window, run | slope error | 95 % interval holds the truth | trough points |"
    );
    println!("|---|---|---|---|---|");
    let leak = mib(20.0) / 3600.0;
    let rows = [
        (7.0, 1800.0),
        (30.0, 1800.0),
        (60.0, 1800.0),
        (120.0, 1800.0),
        (300.0, 1800.0),
        (600.0, 1800.0),
        (300.0, 7200.0),
        (600.0, 7200.0),
    ];
    for (period, span) in rows {
        let mut new_e = Vec::new();
        let (mut covered, mut fits, mut points) = (0, 0, Vec::new());
        for seed in 0..5 {
            let spec = SynthSpec {
                leak_per_hour: mib(20.0),
                saw_amplitude: mib(30.0),
                saw_period: period,
                noise_sd: mib(1.15),
                ..SynthSpec::default()
            };
            let mut synth = Synth::new(spec, seed);
            let mut new = TrendSet::new(&[span], 1.0, DEFAULT_CONFIDENCE);
            for i in 0..(2.0 * span) as u64 {
                let t = i as f64;
                let p = Point {
                    t,
                    values: [Some(synth.value(t)), None, None],
                    requests: 0,
                    streams: 0.0,
                };
                new.push(&p);
            }
            if let Some(f) = new.fit(0, 0) {
                fits += 1;
                new_e.push((f.slope - leak) / leak * 100.0);
                covered += usize::from(f.slope_lo <= leak && leak <= f.slope_hi);
                points.push(f.points);
            }
        }
        let range = |v: &[f64]| {
            if v.is_empty() {
                return "no fit (too few troughs)".to_string();
            }
            let (lo, hi) = v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &e| {
                    (a.min(e), b.max(e))
                });
            format!("{lo:+.1} … {hi:+.1} %")
        };
        println!(
            "| {period:.0} s | {}, {} | {} | {} | {} |",
            fmt_time(Some(span)),
            fmt_time(Some(2.0 * span)),
            range(&new_e),
            if fits > 0 {
                format!("{covered}/{fits}")
            } else {
                "—".into()
            },
            points
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// Coverage of the 95 % slope interval: 200 synthetic windows per row, truth known.
pub fn coverage() {
    println!(
        "\n### Coverage of the 95 % slope interval (200 seeds per row, one window, filled 1.05×)\n"
    );
    println!("| series | window, samples | truth above / below the interval (nominal 5 / 5) | mean width | mean Hamed–Rao factor |");
    println!("|---|---|---|---|---|");
    let rows: [(f64, f64, f64, f64, f64, f64); 7] = [
        // leak MiB/h, saw MiB, period s, span s, interval s, noise sd MiB
        (16.0, 0.0, 120.0, 300.0, 1.0, 0.25),
        (16.0, 0.0, 120.0, 1800.0, 1.0, 0.25),
        (1.0, 32.0, 120.0, 3600.0, 1.0, 0.1),
        (16.0, 8.0, 30.0, 1800.0, 1.0, 0.25),
        (0.0, 128.0, 30.0, 1800.0, 1.0, 0.25),
        (4.0, 64.0, 600.0, 10800.0, 2.0, 0.25),
        (64.0, 32.0, 30.0, 300.0, 1.0, 0.25),
    ];
    for (leak, amp, period, span, interval, noise) in rows {
        let truth = mib(leak) / 3600.0;
        let (mut n, mut above, mut below, mut width, mut factor) = (0, 0, 0, 0.0, 0.0);
        for seed in 0..200u64 {
            let spec = SynthSpec {
                leak_per_hour: mib(leak),
                saw_amplitude: mib(amp),
                saw_period: period,
                saw_jitter: 0.1,
                noise_sd: mib(noise),
                saw_phase: (seed as f64 * 0.37) % 1.0,
                ..SynthSpec::default()
            };
            let mut synth = Synth::new(spec, seed);
            let mut set = TrendSet::new(&[span], interval, DEFAULT_CONFIDENCE);
            for i in 0..(span * 1.05 / interval) as u64 {
                let t = i as f64 * interval;
                set.push(&Point {
                    t,
                    values: [Some(synth.value(t)), None, None],
                    requests: 0,
                    streams: 0.0,
                });
            }
            if let Some(f) = set.fit(0, 0) {
                n += 1;
                above += usize::from(f.slope_hi < truth);
                below += usize::from(f.slope_lo > truth);
                width += (f.slope_hi - f.slope_lo) * 3600.0 / mib(1.0);
                factor += f.var_factor;
            }
        }
        let saw = if amp > 0.0 {
            format!(" + {amp} MiB / {period} s sawtooth")
        } else {
            String::new()
        };
        println!(
            "| {leak} MiB/h{saw}, noise {noise} MiB | {}, {interval} s | {above} / {below} of {n} | {:.2} MiB/h | {:.2} |",
            fmt_time(Some(span)),
            width / f64::from(n.max(1)),
            factor / f64::from(n.max(1))
        );
    }
}
