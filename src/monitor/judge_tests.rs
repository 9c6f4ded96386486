//! Verdict rules and hysteresis: hand-built fits, then whole recorded series through
//! [`Replay`](crate::monitor::replay::Replay).

use super::*;
use crate::monitor::replay::{Replay, ReplayConfig};
use crate::monitor::synth::{mib, run_scenario, Scenario, SynthSpec};

/// A fit whose slope, lower bound (per hour) and growth are given.
fn fit(slope_h: f64, lo_h: f64, growth: f64) -> TrendFit {
    TrendFit {
        slope: slope_h / 3600.0,
        intercept: 0.0,
        slope_lo: lo_h / 3600.0,
        slope_hi: (2.0 * slope_h - lo_h) / 3600.0,
        r2: 0.5,
        points: 30,
        mk_z: 3.0,
        mk_p: 0.003,
        var_factor: 1.0,
        period: None,
        trough_width: 60.0,
        from: 0.0,
        span: 3600.0,
        growth,
        recent_slope: slope_h / 3600.0,
        recent_lo: lo_h / 3600.0,
        recent_hi: (2.0 * slope_h - lo_h) / 3600.0,
    }
}

#[test]
fn rss_needs_both_rates_and_the_floor() {
    let rules = LeakRules::default();
    let r = Resource::Rss;
    let f = fit(mib(80.0), mib(60.0), mib(20.0));
    // 100 MiB baseline: limit max(50, 10) = 50 MiB/h < 60.
    assert!(rules.window_limits(r, Some(mib(100.0))).calls_leak(&f));
    // 1 GiB baseline: limit max(50, 102.4) MiB/h > 60.
    assert!(!rules.window_limits(r, Some(mib(1024.0))).calls_leak(&f));
    // No baseline: never.
    assert!(!rules.window_limits(r, None).calls_leak(&f));
    // The slope passes but its lower bound does not.
    let unsure = fit(mib(200.0), mib(40.0), mib(50.0));
    assert!(!rules.window_limits(r, Some(mib(100.0))).calls_leak(&unsure));
    // Floor: 3 MiB < 4 MiB; with a 400 MiB baseline 6 MiB < 2 % = 8 MiB.
    assert!(!rules.window_limits(r, Some(mib(100.0))).calls_leak(&fit(
        mib(80.0),
        mib(60.0),
        mib(3.0)
    )));
    assert!(!rules.window_limits(r, Some(mib(400.0))).calls_leak(&fit(
        mib(80.0),
        mib(60.0),
        mib(6.0)
    )));
    assert!(rules.window_limits(r, Some(mib(400.0))).calls_leak(&fit(
        mib(80.0),
        mib(60.0),
        mib(9.0)
    )));
    // An unbounded interval never calls.
    let mut open = f;
    open.slope_lo = f64::NEG_INFINITY;
    assert!(!rules.window_limits(r, Some(mib(100.0))).calls_leak(&open));
}

#[test]
fn fds_and_threads_use_their_rates_without_a_floor() {
    let rules = LeakRules::default();
    // (resource, fit, called): the lower bound just above or below the rate (60 fds/h,
    // 30 threads/h); a growth of half an fd passes, as there is no floor.
    let cases = [
        (Resource::Fds, fit(90.0, 61.0, 0.5), true),
        (Resource::Fds, fit(90.0, 59.0, 50.0), false),
        (Resource::Threads, fit(40.0, 31.0, 1.0), true),
        (Resource::Threads, fit(40.0, 29.0, 9.0), false),
    ];
    for (r, f, called) in cases {
        let got = rules.window_limits(r, None).calls_leak(&f);
        assert_eq!(
            got,
            called,
            "{r:?} with the lower bound at {} per hour",
            f.slope_lo * 3600.0
        );
    }
    assert_eq!(rules.growth_floor(Resource::Fds, None), 0.0);
}

#[test]
fn the_newer_half_must_keep_up() {
    let rules = LeakRules::default();
    let (r, b) = (Resource::Rss, Some(mib(100.0)));
    let mut f = fit(mib(80.0), mib(60.0), mib(20.0));
    assert!(rules.window_limits(r, b).calls_leak(&f));
    // The newer half is significantly slower than the whole: an old ramp, a recent plateau.
    f.recent_slope = mib(2.0) / 3600.0;
    f.recent_hi = mib(30.0) / 3600.0;
    assert!(!rules.window_limits(r, b).calls_leak(&f));
    // Too few points for its interval: its own slope decides.
    f.recent_hi = f64::INFINITY;
    assert!(!rules.window_limits(r, b).calls_leak(&f));
    f.recent_slope = mib(70.0) / 3600.0;
    assert!(rules.window_limits(r, b).calls_leak(&f));
    // A clean, fast leak: both intervals are narrow, and the newer half is 0.1 % slower than
    // the whole — significant, not material. It proves the leak on its own: a call.
    let mut f = fit(mib(1000.0), mib(999.0), mib(1000.0));
    f.recent_slope = mib(999.0) / 3600.0;
    f.recent_lo = mib(998.5) / 3600.0;
    f.recent_hi = mib(999.5) / 3600.0;
    assert!(rules.window_limits(r, b).calls_leak(&f));
    // Significantly above the limit but at under half the window's slope: decelerating.
    f.recent_slope = mib(400.0) / 3600.0;
    f.recent_lo = mib(399.0) / 3600.0;
    f.recent_hi = mib(401.0) / 3600.0;
    assert!(!rules.window_limits(r, b).calls_leak(&f));
    // Supporting an existing leak does not look at the halves.
    f.recent_slope = 0.0;
    assert!(rules.window_limits(r, b).supports_leak(&f));
}

#[test]
fn resource_verdict_rules() {
    let rules = LeakRules::default();
    let b = Some(mib(100.0));
    let r = Resource::Rss;
    // Intervals: leak [60, 100] and flat [−5, 7] resolve the 50 MiB/h threshold (widths 40
    // and 12); noisy [−60, 100] and low [−40, 40] do not (160 and 80).
    let (leak_fit, noisy_fit) = (
        fit(mib(80.0), mib(60.0), mib(20.0)),
        fit(mib(20.0), mib(-60.0), mib(5.0)),
    );
    assert!(rules.window_limits(r, b).resolves(&leak_fit));
    assert!(!rules.window_limits(r, b).resolves(&noisy_fit));
    let (leak, noisy) = (Some(leak_fit), Some(noisy_fit));
    let flat = Some(fit(mib(1.0), mib(-5.0), mib(0.2)));
    let low = Some(fit(mib(0.0), mib(-40.0), 0.0));
    let v = |fits: &[Option<TrendFit>]| resource_verdict(r, fits, b, &rules, false);
    assert_eq!(v(&[]), Verdict::Unknown);
    assert_eq!(
        v(&[leak, None]),
        Verdict::Unknown,
        "the longest window has no fit"
    );
    assert_eq!(v(&[leak, leak]), Verdict::Leak);
    assert_eq!(
        v(&[leak, flat]),
        Verdict::Ok,
        "plateau: the long window is flat"
    );
    assert_eq!(
        v(&[flat, leak]),
        Verdict::Ok,
        "stopped leak: the short window is flat"
    );
    assert_eq!(
        v(&[leak, flat, leak]),
        Verdict::Ok,
        "a middle window vetoes too"
    );
    assert_eq!(v(&[None, None, leak]), Verdict::Leak, "the longest alone");
    // A window that cannot resolve the threshold neither calls nor vetoes by its bound…
    assert_eq!(v(&[noisy, leak]), Verdict::Leak);
    assert_eq!(v(&[noisy, flat]), Verdict::Ok);
    // …but must be consistent with the longest: upper bound 40 < its lower bound 60.
    assert_eq!(v(&[low, leak]), Verdict::Ok);
    // A clean, fast leak: a short window too short for the floor, 0.1 % slower than the long
    // one with intervals narrower than that. It proves growth past the threshold on its own at
    // nearly the long window's slope: consistent. At under half the slope it is not.
    let fast = |slope: f64, lo: f64, span: f64| {
        let mut f = fit(mib(slope), mib(lo), mib(slope) * span / 3600.0);
        f.span = span;
        Some(f)
    };
    let long = fast(1000.0, 999.9, 120.0);
    assert_eq!(v(&[fast(999.0, 998.9, 30.0), long]), Verdict::Leak);
    assert_eq!(v(&[fast(400.0, 399.9, 30.0), long]), Verdict::Ok);
}

#[test]
fn a_called_leak_stays_while_the_estimates_support_it() {
    let rules = LeakRules::default();
    let b = Some(mib(100.0));
    let r = Resource::Rss;
    let sure = Some(fit(mib(80.0), mib(60.0), mib(20.0)));
    // Slope above the 50 MiB/h threshold, lower bound below it; both resolve (width 50).
    let unsure_fit = fit(mib(55.0), mib(30.0), mib(20.0));
    let unsure = Some(unsure_fit);
    let below = Some(fit(mib(45.0), mib(20.0), mib(20.0)));
    let low = Some(fit(mib(0.0), mib(-40.0), 0.0));
    // The floor holds both ways.
    let small = Some(fit(mib(80.0), mib(60.0), mib(3.0)));
    // (windows, whether the leak was called before, verdict, what the case shows)
    let cases = [
        ([unsure, sure], false, Verdict::Ok, "no rise"),
        ([unsure, sure], true, Verdict::Leak, "stays"),
        ([below, sure], true, Verdict::Ok, "falls"),
        ([sure, below], true, Verdict::Ok, "falls"),
        // An imprecise window's consistency is not re-tested once the leak is called.
        ([low, sure], true, Verdict::Leak, "imprecise window"),
        ([small, sure], true, Verdict::Ok, "floor"),
    ];
    for (windows, called, want, what) in cases {
        assert_eq!(
            resource_verdict(r, &windows, b, &rules, called),
            want,
            "{what}"
        );
    }
    assert!(rules.window_limits(r, b).supports_leak(&unsure_fit));
    assert!(!rules.window_limits(r, b).calls_leak(&unsure_fit));
}

#[test]
fn rules_scale_and_map_from_thresholds() {
    let d = LeakRules::default();
    assert_eq!(d.rss_bytes_per_hour, mib(50.0));
    assert_eq!(d.rss_fraction_per_hour, 0.10);
    assert_eq!(d.min_growth_bytes, mib(4.0));
    assert_eq!(d.min_growth_fraction, 0.02);
    let s = d.scaled(0.5);
    assert_eq!(s.rss_bytes_per_hour, mib(25.0));
    assert_eq!(s.fds_per_hour, 30.0);
    assert_eq!(s.min_growth_bytes, mib(2.0));
    assert_eq!(d.rate_limit(Resource::Rss, Some(mib(1000.0))), mib(100.0));
    assert_eq!(d.growth_floor(Resource::Rss, Some(mib(1000.0))), mib(20.0));
    assert!(min_r2_deprecation(None).is_none());
    let w = min_r2_deprecation(Some(0.8)).unwrap();
    assert!(w.contains("min_r2 = 0.8") && w.contains("ignored"), "{w}");
}

#[test]
fn hysteresis_rises_and_falls_only_after_confirm() {
    use Verdict::*;
    let mut h = Hysteresis::new(15.0);
    assert_eq!(h.verdict(), Unknown);
    // Unknown → Ok passes at once.
    let tr = h.update(0.0, Ok).unwrap();
    assert_eq!((tr.from, tr.to, tr.at), (Unknown, Ok, 0.0));
    // A 10 s flicker of leak is ignored.
    for t in [5.0, 10.0, 15.0] {
        assert_eq!(h.update(t, Leak), None);
    }
    assert_eq!(h.update(16.0, Ok), None);
    assert_eq!(h.verdict(), Ok);
    // Held for 15 s: one rise, reported with when it began.
    assert_eq!(h.update(20.0, Leak), None);
    assert_eq!(h.update(30.0, Leak), None);
    let tr = h.update(35.0, Leak).unwrap();
    assert_eq!((tr.from, tr.to, tr.at, tr.since), (Ok, Leak, 35.0, 20.0));
    assert_eq!(h.update(40.0, Leak), None, "reported once");
    // Falling needs 15 s too; ok and unknown both count as absence.
    assert_eq!(h.update(41.0, Ok), None);
    assert_eq!(h.update(50.0, Unknown), None);
    let tr = h.update(56.0, Ok).unwrap();
    assert_eq!((tr.from, tr.to, tr.since), (Leak, Ok, 41.0));
    assert_eq!(h.update(57.0, Unknown).unwrap().to, Unknown);
    // Reset: straight back to unknown, nothing pending.
    let mut h = Hysteresis::new(15.0);
    h.update(0.0, Leak);
    assert_eq!(h.update(15.0, Leak).unwrap().to, Leak);
    assert_eq!(h.reset(16.0).unwrap().to, Unknown);
    assert_eq!(h.reset(17.0), None);
    // confirm = 0: immediate.
    let mut h = Hysteresis::new(0.0);
    assert_eq!(h.update(1.0, Leak).unwrap().to, Leak);
}

/// Replays `spec` for `hours` at 5 s (the monitor's default interval) with windows 5m/30m,
/// the default thresholds and a 15 s confirm.
fn recorded(spec: SynthSpec, seed: u64, hours: f64) -> crate::monitor::synth::Outcome {
    let replay = ReplayConfig::new(vec![300.0, 1800.0], 5.0, Resource::Rss);
    run_scenario(&Scenario {
        spec,
        seed,
        duration: hours * 3600.0,
        replay,
    })
}

#[test]
fn recorded_series_flat_step_and_sawtooth_never_rise() {
    let noise = mib(0.5);
    let cases = [
        (
            "flat",
            SynthSpec {
                noise_sd: noise,
                ..SynthSpec::default()
            },
        ),
        (
            "warm-up step",
            SynthSpec {
                noise_sd: noise,
                warmup_step: mib(60.0),
                warmup_tau: 90.0,
                ..SynthSpec::default()
            },
        ),
        (
            "sawtooth",
            SynthSpec {
                noise_sd: noise,
                saw_amplitude: mib(64.0),
                saw_period: 90.0,
                saw_jitter: 0.15,
                ..SynthSpec::default()
            },
        ),
    ];
    for (name, spec) in cases {
        for seed in 0..1 {
            let o = recorded(spec, seed, 1.0);
            assert_eq!(o.leak_episodes, 0, "{name} seed {seed}: {o:?}");
            assert_eq!(o.final_verdict, Verdict::Ok, "{name} seed {seed}");
            // Judged once the 30 m window holds half its span.
            let judged = o.first_judged.unwrap();
            assert!((870.0..1000.0).contains(&judged), "{name}: {judged}");
        }
    }
}

#[test]
fn recorded_leak_rises_once_after_confirm() {
    let spec = SynthSpec {
        noise_sd: mib(0.5),
        leak_per_hour: mib(150.0),
        saw_amplitude: mib(16.0),
        saw_period: 40.0,
        ..SynthSpec::default()
    };
    for seed in 0..2 {
        let o = recorded(spec, seed, 1.0);
        assert_eq!(o.leak_episodes, 1, "seed {seed}: {o:?}");
        assert_eq!(o.final_verdict, Verdict::Leak);
        let first = o.first_leak.unwrap();
        // Not before the 30 m window has a fit (15 min) plus the confirm.
        assert!((915.0..1200.0).contains(&first), "{first}");
        let slope = o.slope_at_first_leak.unwrap();
        assert!(
            (slope / mib(150.0) - 1.0).abs() < 0.15,
            "{}",
            slope / mib(1.0)
        );
    }
}

/// The mock's open fds, one per second, in `soakd run` (the demo: 50 rps, ×4 for 3 s every
/// 15 s from 15 s), recorded 2026-11-30 after such a demo failed in CI with a false fds
/// `leak suspected`: each burst opens ~30 connections at once and they close over the next
/// 15 s. This recording happens not to trip the old estimator; the simulation below does.
const DEMO_FDS: [f64; 117] = [
    29., 27., 26., 28., 27., 30., 31., 29., 30., 31., 27., 31., 29., 42., 58., 64., 65., 63., 62.,
    61., 60., 60., 60., 59., 57., 56., 56., 55., 55., 57., 56., 56., 56., 55., 53., 49., 48., 45.,
    44., 41., 41., 40., 37., 62., 62., 59., 57., 54., 51., 51., 49., 47., 43., 43., 43., 41., 41.,
    41., 57., 56., 57., 56., 56., 55., 53., 52., 51., 49., 48., 45., 44., 40., 39., 62., 61., 54.,
    57., 53., 52., 50., 47., 46., 46., 43., 40., 40., 40., 38., 60., 64., 60., 61., 61., 60., 59.,
    58., 56., 56., 53., 53., 53., 52., 50., 63., 60., 64., 63., 61., 60., 59., 57., 57., 55., 52.,
    48., 45., 44.,
];

/// Open fds of a target under `soakd run`-like bursts (the first at `first` s, then one every
/// `every` s), one sample a second for `secs` s: 28 at rest, each burst opens 22–38
/// connections within its first 2 s that close one by one over the following 8–30 s (some
/// outlive the next burst), ±2 of other churn, plus a leak of `leak_per_s` fds a second.
fn burst_fds(seed: u64, first: f64, every: f64, secs: u32, leak_per_s: f64) -> Vec<f64> {
    let mut rng = crate::monitor::synth::SplitMix64::new(seed);
    let mut conns: Vec<(f64, f64)> = Vec::new();
    let mut burst = first;
    while burst < f64::from(secs) {
        let opened = 22 + (rng.unit() * 16.0) as usize;
        let linger = 8.0 + rng.unit() * 22.0;
        for _ in 0..opened {
            let open = burst + rng.unit() * 2.0;
            conns.push((open, open + 1.0 + rng.unit() * linger));
        }
        burst += every;
    }
    // Connections open at each whole second: +1 from the first sample at or after the open,
    // −1 from the first at or after the close.
    let mut delta = vec![0i64; secs as usize + 1];
    for (o, c) in conns {
        for (at, d) in [(o, 1), (c, -1)] {
            if let Some(x) = delta.get_mut(at.ceil() as usize) {
                *x += d;
            }
        }
    }
    let mut open = 0;
    (0..secs)
        .map(|i| {
            open += delta[i as usize];
            let t = f64::from(i);
            28.0 + open as f64 + (rng.unit() * 5.0).floor() - 2.0 + (leak_per_s * t).floor()
        })
        .collect()
}

/// Replays `series` as fds sampled every second under bursts every `every` s.
fn replay_fds(series: &[f64], windows: Vec<f64>, warmup: f64, every: f64) -> Replay {
    let mut cfg = ReplayConfig::new(windows, 1.0, Resource::Fds);
    cfg.warmup = warmup;
    cfg.load_period = Some(every);
    let mut r = Replay::new(cfg);
    for (i, v) in series.iter().enumerate() {
        r.push(i as f64, *v);
    }
    r
}

/// The demo's fds never look like a leak: the recorded series, and 100 simulated ones for
/// each burst schedule of 3 s every 15 s (the first at 15 s, as recorded; at 5 s, inside the
/// warm-up, as the demo now has it). Without the load period the windows called a raw leak in
/// 52 % and 29 % of 1,000 runs of each (37 % and 14 % held past the confirm): the step of the
/// first bursts, bucket minima or a short period tracing the decays. With it: none in 1,000.
#[test]
fn the_demo_fds_sawtooth_of_bursts_is_never_a_leak() {
    let r = replay_fds(&DEMO_FDS, vec![30.0, 90.0], 10.0, 15.0);
    assert_eq!(r.first_raw_leak(), None);
    for first in [15.0, 5.0] {
        for seed in 0..100 {
            let series = burst_fds(seed, first, 15.0, 120, 0.0);
            let r = replay_fds(&series, vec![30.0, 90.0], 10.0, 15.0);
            assert_eq!(
                r.first_raw_leak(),
                None,
                "first burst at {first} s, seed {seed}"
            );
        }
    }
}

/// The load period hides no leak: 0.05 fds a second (180/h) under the same bursts is called
/// within 40 minutes with the default windows (5 min, 30 min), and the same bursts without it
/// never are.
#[test]
fn a_leak_under_bursts_is_still_found_one_cycle_apart() {
    for seed in 0..10 {
        let leaking = burst_fds(seed, 5.0, 15.0, 2400, 0.05);
        let r = replay_fds(&leaking, vec![300.0, 1800.0], 10.0, 15.0);
        assert!(r.first_leak().is_some(), "seed {seed}: {:?}", r.fits());
        let clean = burst_fds(seed, 5.0, 15.0, 2400, 0.0);
        let r = replay_fds(&clean, vec![300.0, 1800.0], 10.0, 15.0);
        assert_eq!(r.first_raw_leak(), None, "seed {seed}: {:?}", r.fits());
    }
}

/// Open fds of the mock in the demo as it is now (`config/soakd.toml`: 50 rps of ~0.3 s
/// streams, ×4 for 2 s every 10 s from 5 s, `pool_idle_timeout = "2s"`), one sample a second
/// for `secs` s: 34 at rest ±3 of churn; each burst opens 36–52 connections within its first
/// second; 85 % of them go idle when it ends and close 2–2.5 s later (the first checkout after
/// 2 s idle), the others while it runs (a cancelled stream drops its connection); plus a leak
/// of `leak_per_s` fds a second. Calibrated on recorded runs of the demo: 28–43 at rest, 74–88
/// at a burst's peak and sagging a little, back at rest in one sample 4 s after it began.
fn demo_fds(seed: u64, secs: u32, leak_per_s: f64) -> Vec<f64> {
    let mut rng = crate::monitor::synth::SplitMix64::new(seed);
    let mut delta = vec![0i64; secs as usize + 1];
    let mut burst = 5.0;
    while burst < f64::from(secs) {
        let opened = 36 + (rng.unit() * 16.0) as usize;
        for _ in 0..opened {
            let open = burst + rng.unit();
            // Most go idle when the burst ends and close 2 s later, at once; some (cancelled
            // streams, a truncation) close while the burst runs.
            let close = if rng.unit() < 0.85 {
                burst + 2.0 + 2.0 + rng.unit() * 0.5
            } else {
                burst + 1.0 + rng.unit() * 3.0
            };
            for (at, d) in [(open, 1), (close, -1)] {
                if let Some(x) = delta.get_mut(at.ceil() as usize) {
                    *x += d;
                }
            }
        }
        burst += 10.0;
    }
    let mut open = 0;
    (0..secs)
        .map(|i| {
            open += delta[i as usize];
            let t = f64::from(i);
            34.0 + open as f64 + (rng.unit() * 7.0).floor() - 3.0 + (leak_per_s * t).floor()
        })
        .collect()
}

/// The demo judges its fds: over its 150 s, with its windows (40 s, 2 min after a 10 s
/// warm-up) and its load period (10 s), the 2 min window has a fit and the verdict is `ok`
/// in every one of 300 simulated runs, never a raw leak (2,000 seeds, measured when this
/// shape was chosen: judged 2,000, raw leak 0; with the bursts' 22–38 connections of ~0.2 s
/// streams instead, 1,990 judged: a drop lost in the churn makes the period irregular). The
/// shape it replaced (3 s every 15 s, connections lingering 8–30 s, 30 s / 90 s windows,
/// 120 s) is judged in none. A leak of one fd a second (3,600/h: the mock's
/// `--leak-fd-every 100` at the demo's rate) is called.
#[test]
fn the_demo_judges_its_fds_and_finds_no_leak() {
    let mut judged = 0;
    for seed in 0..300 {
        let series = demo_fds(seed, 150, 0.0);
        let r = replay_fds(&series, vec![40.0, 120.0], 10.0, 10.0);
        assert_eq!(r.first_raw_leak(), None, "seed {seed}: {:?}", r.fits());
        judged += usize::from(r.verdict() == Verdict::Ok);
        let old = burst_fds(seed, 5.0, 15.0, 120, 0.0);
        let r = replay_fds(&old, vec![30.0, 90.0], 10.0, 15.0);
        assert_eq!(
            r.verdict(),
            Verdict::Unknown,
            "seed {seed}: the old demo shape"
        );
    }
    assert_eq!(judged, 300);
    for seed in 0..10 {
        let r = replay_fds(&demo_fds(seed, 150, 1.0), vec![40.0, 120.0], 10.0, 10.0);
        assert_eq!(r.verdict(), Verdict::Leak, "seed {seed}: {:?}", r.fits());
    }
}
