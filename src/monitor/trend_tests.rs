//! The estimator's unit tests: the goals of issue 13 §5 over several seeds (synthetic samples
//! at a realistic interval through the monitor's own estimator, verdict and hysteresis, so no
//! real time passes), the sawtooth table,
//! outliers, too few points, memory and load bookkeeping.

use super::*;
use crate::monitor::replay::{Replay, ReplayConfig};
use crate::monitor::synth::{
    half_rate_rules, mib, run_scenario, Outcome, Scenario, Synth, SynthSpec,
};
use crate::monitor::Resource;
use crate::monitor::Verdict;

/// Seeds per goal: three keeps the goal tests to about a second each in a debug build; the
/// detection-time matrix (`benches/leak_matrix.rs`) runs more.
const SEEDS: u64 = 3;

/// Runs `spec` (phase varied by seed) for `hours` at `interval` s through `windows` with the
/// half-rate thresholds of `rules_leak` bytes/h and a `warmup` in seconds.
fn scenario(
    spec: SynthSpec,
    seed: u64,
    windows: &[f64],
    interval: f64,
    hours: f64,
    rules_leak: f64,
    warmup: f64,
) -> Outcome {
    let mut replay = ReplayConfig::new(windows.to_vec(), interval, Resource::Rss);
    replay.rules = half_rate_rules(rules_leak, spec.baseline);
    replay.warmup = warmup;
    run_scenario(&Scenario {
        spec: SynthSpec {
            saw_phase: (seed as f64 * 0.37) % 1.0,
            ..spec
        },
        seed,
        duration: hours * 3600.0,
        replay,
    })
}

fn err(slope: Option<f64>, truth: f64) -> f64 {
    (slope.expect("a slope") - truth) / truth
}

/// A leak of `leak` MiB/h under a sawtooth of `amp` MiB every `period` s, with Gaussian
/// noise of sd `noise` MiB; everything else at its default (no jitter).
fn sawtooth(leak: f64, amp: f64, period: f64, noise: f64) -> SynthSpec {
    SynthSpec {
        leak_per_hour: mib(leak),
        saw_amplitude: mib(amp),
        saw_period: period,
        noise_sd: mib(noise),
        ..SynthSpec::default()
    }
}

/// [`sawtooth`] with the GC period jittering by ±10 %.
fn jittered(leak: f64, amp: f64, period: f64, noise: f64) -> SynthSpec {
    SynthSpec {
        saw_jitter: 0.1,
        ..sawtooth(leak, amp, period, noise)
    }
}

/// Runs a leak-finding goal for each seed: `spec`'s leak, with the half-rate thresholds of
/// that leak, must be called by `deadline` s and its slope at the end of the run be within
/// `tolerance` (relative) of the truth; with `at_detection`, its slope when first called too.
/// Returns each seed's outcome for the goal's own checks.
fn leak_goal(
    spec: SynthSpec,
    windows: &[f64],
    interval: f64,
    hours: f64,
    deadline: f64,
    tolerance: f64,
    at_detection: bool,
) -> Vec<(u64, Outcome)> {
    let truth = spec.leak_per_hour;
    let mut outcomes = Vec::new();
    for seed in 0..SEEDS {
        let o = scenario(spec, seed, windows, interval, hours, truth, 0.0);
        let at = o
            .first_leak
            .unwrap_or_else(|| panic!("seed {seed}: not found: {o:?}"));
        assert!(at <= deadline, "seed {seed}: {at}");
        let mut slopes = vec![o.final_slope()];
        if at_detection {
            slopes.insert(0, o.slope_at_first_leak);
        }
        for slope in slopes {
            assert!(err(slope, truth).abs() <= tolerance, "seed {seed}: {o:?}");
        }
        outcomes.push((seed, o));
    }
    outcomes
}

/// Pushes `f(t)` as RSS (no requests, no open streams) every `interval` s, `n` times.
fn feed(set: &mut TrendSet, interval: f64, n: u64, mut f: impl FnMut(f64) -> f64) {
    for i in 0..n {
        let t = i as f64 * interval;
        set.push(&Point {
            t,
            values: [Some(f(t)), None, None],
            requests: 0,
            streams: 0.0,
        });
    }
}

/// Goal: 1 MiB/h under a 32 MiB, 120 s sawtooth, found within 1 h with thresholds 0.5 MiB/h
/// and 0.25 %/h over 200 MiB, slope within ±25 %. Windows 30m/1h, 1 s samples (at 5 s the
/// sampling phase alone puts 1.3 MiB of jitter on each trough), noise sd 0.1 MiB, GC period
/// jitter ±10 %. The slope is checked at the 1 h mark; at the moment of detection (30–45 min,
/// with half an hour of troughs) it scatters by up to +60 % (BENCHMARKS.md).
#[test]
fn goal_1_mib_per_hour_under_a_120s_sawtooth_within_an_hour() {
    let spec = jittered(1.0, 32.0, 120.0, 0.1);
    for (seed, o) in leak_goal(spec, &[1800.0, 3600.0], 1.0, 1.0, 3600.0, 0.25, false) {
        assert_eq!(
            (o.leak_episodes, o.final_verdict),
            (1, Verdict::Leak),
            "seed {seed}"
        );
        let period = o.final_fits[1].unwrap().period.unwrap();
        assert!(
            (110.0..160.0).contains(&period),
            "seed {seed}: period {period}"
        );
    }
}

/// Goal: 4 MiB/h under a 64 MiB, 600 s sawtooth, found within 3 h, ±25 % (at detection and
/// at 3 h). Windows 1h/3h, 2 s samples, noise sd 0.25 MiB, jitter ±10 %.
#[test]
fn goal_4_mib_per_hour_under_a_600s_sawtooth_within_3_hours() {
    let spec = jittered(4.0, 64.0, 600.0, 0.25);
    let windows = [3600.0, 10800.0];
    for (seed, o) in leak_goal(spec, &windows, 2.0, 3.0, 3.0 * 3600.0, 0.25, true) {
        assert_eq!(o.leak_episodes, 1, "seed {seed}");
    }
}

/// Goal: a clean 16 MiB/h leak found within 15 minutes, ±5 % (at detection and at 15 min).
/// Windows 5m/15m, 1 s samples, noise sd 0.1 MiB, thresholds 8 MiB/h and 4 %/h.
#[test]
fn goal_clean_16_mib_per_hour_within_15_minutes() {
    // No sawtooth (amplitude 0).
    let spec = sawtooth(16.0, 0.0, 120.0, 0.1);
    for (_, o) in leak_goal(spec, &[300.0, 900.0], 1.0, 0.25, 900.0, 0.05, true) {
        assert_eq!(
            o.final_fits[1].unwrap().period,
            None,
            "no sawtooth, no period"
        );
    }
}

/// Goal: no false leak over 3 h for a sawtooth alone, a plateau or a warm-up step. Default
/// windows 5m/30m/2h, 5 s samples and 3 min warm-up (the monitor's defaults), noise sd
/// 0.25 MiB. Sawtooths alone with the strictest thresholds of the matrix (those of 1 MiB/h:
/// 0.5 MiB/h, 0.25 %/h); the plateau and the warm-up step with those of 4 MiB/h (2 MiB/h,
/// 1 %/h) — at 0.5 MiB/h a 60 MiB step or a 32 MiB plateau seen only by the 2 h window can
/// still be called (BENCHMARKS.md).
#[test]
fn goal_no_false_leak_over_3_hours() {
    let saw = |amp: f64, period: f64| jittered(0.0, amp, period, 0.25);
    let cases = [
        ("sawtooth 32 MiB / 120 s", saw(32.0, 120.0), 0.0),
        ("sawtooth 128 MiB / 600 s", saw(128.0, 600.0), 0.0),
        ("sawtooth 8 MiB / 30 s", saw(8.0, 30.0), 0.0),
        (
            "plateau (64 MiB/h for 30 min) under 8 MiB / 600 s",
            SynthSpec {
                leak_per_hour: mib(64.0),
                plateau_after: Some(1800.0),
                ..saw(8.0, 600.0)
            },
            mib(4.0),
        ),
        (
            "warm-up step 60 MiB, τ 3 min, under 32 MiB / 120 s",
            SynthSpec {
                warmup_step: mib(60.0),
                warmup_tau: 180.0,
                ..saw(32.0, 120.0)
            },
            mib(4.0),
        ),
    ];
    for (name, spec, rules) in cases {
        let o = scenario(spec, 1, &[300.0, 1800.0, 7200.0], 5.0, 3.0, rules, 180.0);
        assert_eq!(o.leak_episodes, 0, "{name}: {o:?}");
        assert_eq!(o.final_verdict, Verdict::Ok, "{name}");
    }
}

/// Feeds `f(t)` as RSS every `interval` s for `duration` s into one window of `span` s.
fn fit_of(span: f64, interval: f64, duration: f64, f: impl FnMut(f64) -> f64) -> Option<TrendFit> {
    let mut set = TrendSet::new(&[span], interval, DEFAULT_CONFIDENCE);
    feed(&mut set, interval, (duration / interval) as u64, f);
    set.fit(0, 0)
}

/// The old `sawtooth_table`, now asserting: 20 MiB/h + a 30 MiB sawtooth + Gaussian noise of
/// sd 1.15 MiB (the sd of the old ±2 MiB uniform noise), 1 s samples, seeds 0–4, each window
/// run for twice its span. Bounds as quoted in the module docs of `trend`: within 6 % at
/// periods of 7 and 30 s, 15 % at 60 and 120 s (13–24 troughs in 30 min), no fit at 300 and
/// 600 s in a 30 min window (fewer than 6 troughs: unknown, where the old estimator read up to
/// +38 %), 5 % at 300 and 600 s in a 2 h window. The 95 % interval must hold the truth in at
/// least 26 of the 30 fits (28.5 expected).
#[test]
fn sawtooth_table() {
    let leak = mib(20.0) / 3600.0;
    let rows: [(f64, f64, Option<f64>); 8] = [
        (7.0, 1800.0, Some(0.06)),
        (30.0, 1800.0, Some(0.06)),
        (60.0, 1800.0, Some(0.15)),
        (120.0, 1800.0, Some(0.15)),
        (300.0, 1800.0, None),
        (600.0, 1800.0, None),
        (300.0, 7200.0, Some(0.05)),
        (600.0, 7200.0, Some(0.05)),
    ];
    let (mut fits, mut covered) = (0, 0);
    for (period, span, bound) in rows {
        let mut row = Vec::new();
        for seed in 0..5 {
            let mut s = Synth::new(sawtooth(20.0, 30.0, period, 1.15), seed);
            let f = fit_of(span, 1.0, 2.0 * span, |t| s.value(t));
            match (f, bound) {
                (None, None) => row.push("no fit".to_string()),
                (Some(f), Some(bound)) => {
                    let e = (f.slope - leak) / leak;
                    row.push(format!("{:+.1}% n{}", e * 100.0, f.points));
                    assert!(
                        e.abs() <= bound,
                        "period {period} span {span} seed {seed}: {e}"
                    );
                    fits += 1;
                    covered += usize::from(f.slope_lo <= leak && leak <= f.slope_hi);
                }
                (f, _) => panic!("period {period} span {span} seed {seed}: {f:?}"),
            }
        }
        eprintln!(
            "period {period:>4} s, window {span:>5} s: {}",
            row.join("  ")
        );
    }
    eprintln!("truth inside the 95 % interval in {covered} of {fits}");
    assert_eq!(fits, 30);
    assert!(covered >= 26, "{covered}");
}

#[test]
fn outliers_do_not_move_the_slope() {
    let leak = mib(10.0) / 3600.0;
    let clean = fit_of(600.0, 2.0, 900.0, |t| mib(100.0) + leak * t).unwrap();
    let spiky = fit_of(600.0, 2.0, 900.0, |t| {
        let base = mib(100.0) + leak * t;
        // Two huge dips (bad reads) and one huge spike.
        if t == 700.0 || t == 820.0 {
            base - mib(90.0)
        } else if t == 760.0 {
            base + mib(500.0)
        } else {
            base
        }
    })
    .unwrap();
    assert!((clean.slope - leak).abs() / leak < 1e-6, "{clean:?}");
    assert!((spiky.slope - leak).abs() / leak < 0.05, "{spiky:?}");
    assert!(spiky.slope_lo > 0.5 * leak, "{spiky:?}");
}

#[test]
fn too_few_points_give_no_fit() {
    // 100 s window at 1 s: 40 s is under half the span.
    let mut set = TrendSet::new(&[100.0], 1.0, DEFAULT_CONFIDENCE);
    feed(&mut set, 1.0, 40, |t| t);
    assert!(set.fit(0, 0).is_none());
    assert!(set.fit(0, 1).is_none(), "never-present resource has no fit");
    // A window whose sawtooth leaves fewer than MIN_FIT_POINTS troughs has no fit either:
    // 10 min window, 150 s period → 4 troughs.
    let mut s = Synth::new(sawtooth(50.0, 32.0, 150.0, 0.0), 1);
    let mut set = TrendSet::new(&[600.0, 3600.0], 1.0, DEFAULT_CONFIDENCE);
    feed(&mut set, 1.0, 3000, |t| s.value(t));
    assert!(set.windows()[1].own_period(0).is_some());
    assert!(set.fit(0, 0).is_none(), "{:?}", set.fit(0, 0));
    assert!(set.fit(1, 0).is_some());
}

#[test]
fn a_short_window_borrows_the_period_of_a_longer_one() {
    // 600 s sawtooth: the 5 min window's ring (512 s at 1 s) holds at most one drop, so it
    // finds no period of its own; it borrows the 2 h window's and then has too few troughs
    // for a fit, instead of bucket minima climbing the ramp (+180 MiB/h of "growth").
    let spec = sawtooth(0.0, 30.0, 600.0, 0.1);
    let mut s = Synth::new(spec, 2);
    let mut set = TrendSet::new(&[300.0, 7200.0], 1.0, DEFAULT_CONFIDENCE);
    feed(&mut set, 1.0, 8000, |t| s.value(t));
    assert_eq!(set.windows()[0].own_period(0), None);
    let long = set.windows()[1].own_period(0).unwrap();
    assert!(
        long.regular && (long.median - 600.0).abs() < 30.0,
        "{long:?}"
    );
    assert!(set.fit(0, 0).is_none(), "{:?}", set.fit(0, 0));
    let fit = set.fit(1, 0).unwrap();
    assert!(fit.trough_width >= 600.0 && fit.points >= 9, "{fit:?}");
    assert!(fit.slope.abs() * 3600.0 < mib(1.0), "{fit:?}");
    // A lone 5 min window, with no one to borrow from, does climb the ramp: the reason
    // windows should be several GC periods long (BENCHMARKS.md).
    let mut s = Synth::new(spec, 2);
    let mut lone = TrendSet::new(&[300.0], 1.0, DEFAULT_CONFIDENCE);
    feed(&mut lone, 1.0, 1000, |t| s.value(t));
    assert!(lone.fit(0, 0).is_some_and(|f| f.slope * 3600.0 > mib(50.0)));
}

#[test]
fn memory_is_fixed_however_long_the_run() {
    // 4,000 samples at 20 s: 22 h, the 2 h window filled eleven times over.
    let mut set = TrendSet::new(&[600.0, 7200.0], 20.0, DEFAULT_CONFIDENCE);
    let mut heap = None;
    for i in 0..4_000u64 {
        let t = i as f64 * 20.0;
        set.push(&Point {
            t,
            values: [Some(t + (t % 600.0) * 100.0), None, None],
            requests: i,
            streams: 1.0,
        });
        if i == 400 {
            heap = Some(set.heap_bytes());
        }
        if i > 400 {
            assert_eq!(Some(set.heap_bytes()), heap, "heap grew at sample {i}");
        }
        for w in set.windows() {
            assert!(w.len() <= w.capacity_bound() && w.len() <= MAX_BUCKETS + 2);
        }
    }
    let fit = set.fit(1, 0).unwrap();
    assert!((fit.slope - 1.0).abs() < 1e-6, "{fit:?}");
    let slot = 7200.0 / crate::monitor::period::RING_SLOTS as f64;
    let p = fit.period.unwrap();
    assert!((600.0 - slot..=600.0 + 2.0 * slot).contains(&p), "{p}");
    let load = set.windows()[1].load().unwrap();
    assert!((load.request_rate - 0.05).abs() < 1e-3, "{load:?}");
    assert_eq!(load.avg_streams, 1.0);
    set.clear();
    assert!(set
        .windows()
        .iter()
        .all(|w| w.is_empty() && w.fit(0).is_none() && w.load().is_none()));
}

#[test]
fn confidence_sets_the_interval_width() {
    // No sawtooth (amplitude 0).
    let spec = sawtooth(30.0, 0.0, 120.0, 1.0);
    let width = |conf: f64| {
        let mut s = Synth::new(spec, 4);
        let mut set = TrendSet::new(&[1800.0], 1.0, conf);
        feed(&mut set, 1.0, 2000, |t| s.value(t));
        let f = set.fit(0, 0).unwrap();
        assert!(f.slope_lo < f.slope && f.slope < f.slope_hi);
        f.slope_hi - f.slope_lo
    };
    let (w80, w95, w99) = (width(0.80), width(0.95), width(0.99));
    assert!(w80 < w95 && w95 < w99, "{w80} {w95} {w99}");
}

#[test]
fn a_coarse_ring_does_not_hide_a_fast_regular_sawtooth() {
    // 16 and 32 MiB / 60 s sawtooths sampled every 10 s (a Prometheus scrape), 3 h, default
    // windows.
    // The 2 h ring (14 s slots) sees a few irregular "drops" tens of minutes apart; the 5 min
    // ring sees the real 60 s cycle. The long window must cut its troughs by the real cycle:
    // a 64 MiB/h leak is a leak and a flat series is ok, never unknown, for every seed.
    for seed in 0..8 {
        for (leak, amp, want) in [(64.0, 16.0, Verdict::Leak), (0.0, 32.0, Verdict::Ok)] {
            let mut s = Synth::new(sawtooth(leak, amp, 60.0, 0.5), seed);
            let mut r = Replay::new(ReplayConfig::new(
                vec![300.0, 1800.0, 7200.0],
                10.0,
                Resource::Rss,
            ));
            for i in 0..1080 {
                let t = f64::from(i) * 10.0;
                r.push(t, s.value(t));
            }
            assert_eq!(
                r.raw_verdict(),
                want,
                "seed {seed}, leak {leak} MiB/h: {:?}",
                r.fits()
            );
            // Cut by the real cycle, or by none (its 60 s buckets already hold one trough
            // each), never by a false long period that leaves too few troughs.
            let long = r.fits()[2].unwrap();
            assert!(
                long.period.is_none_or(|p| p < 200.0) && long.points >= 60,
                "seed {seed}: {long:?}"
            );
        }
    }
}
