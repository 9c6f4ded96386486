use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::workload::Mix;

const MIB: f64 = 1024.0 * 1024.0;
const KIB: f64 = 1024.0;

/// A synthetic soak: requests at `rate` per second picked by the real [`Mix`], RSS growing by
/// `leak[s]` bytes per request of scenario `s`, plus a GC-like sawtooth, uniform noise and
/// (optionally) a few huge outliers.
#[derive(Clone)]
struct Sim {
    rate: f64,
    weights: Vec<u32>,
    /// Mix period, seconds (`None`: fixed weights).
    period: Option<f64>,
    leak: Vec<f64>,
    saw_period: f64,
    saw_amp: f64,
    noise: f64,
    outliers: bool,
    /// Growth per second regardless of requests.
    time_leak: f64,
}

impl Sim {
    fn two(leak_a: f64, leak_b: f64) -> Sim {
        Sim {
            rate: 20.0,
            weights: vec![1, 1],
            period: Some(60.0),
            leak: vec![leak_a, leak_b],
            saw_period: 7.0,
            saw_amp: 30.0 * MIB,
            noise: 2.0 * MIB,
            outliers: false,
            time_leak: 0.0,
        }
    }

    /// Runs `duration` s sampled every `interval` s into a window of `span` s.
    fn run(&self, span: f64, interval: f64, duration: f64, seed: u64) -> AttributionBuf {
        let mut rng = StdRng::seed_from_u64(seed);
        let mix = Mix::new(
            self.weights.iter().copied(),
            self.period.map(Duration::from_secs_f64),
            seed,
        );
        let mut cursor = mix.cursor();
        let k = self.weights.len();
        let mut w = AttributionBuf::new(span, interval, k);
        let mut counts = vec![0u64; k];
        let mut leaked = 0.0;
        let mut due = 0.0;
        let n = (duration / interval) as usize;
        for i in 0..n {
            let t = i as f64 * interval;
            due += self.rate * interval;
            while due >= 1.0 {
                due -= 1.0;
                let s = cursor.pick(&mut rng, Duration::from_secs_f64(t));
                counts[s] += 1;
                leaked += self.leak[s];
            }
            let saw = (t % self.saw_period) / self.saw_period * self.saw_amp;
            let mut rss = 300.0 * MIB
                + leaked
                + self.time_leak * t
                + saw
                + rng.random_range(-1.0..1.0) * self.noise;
            if self.outliers && i % 397 == 200 {
                rss += if i % 2 == 0 { 500.0 * MIB } else { -90.0 * MIB };
            }
            w.push(&Sample {
                t,
                rss,
                counts: &counts,
                epoch: mix.epoch(Duration::from_secs_f64(t)),
                mix_varies: mix.varies(),
            });
        }
        w
    }

    /// The attribution of a 30-minute window sampled every second, after `duration` s.
    fn attribution(&self, duration: f64, seed: u64) -> Attribution {
        self.run(1800.0, 1.0, duration, seed).result().clone()
    }

    /// Over five seeds, each scenario's value is within `tolerance` of its truth.
    fn assert_told_apart(&self, tolerance: f64) {
        for seed in 0..5 {
            let a = self.attribution(2400.0, seed);
            let e = errors(&a, &self.leak);
            assert!(
                e.iter().all(|e| e.abs() < tolerance),
                "seed {seed}: {e:?} {a:?}"
            );
        }
    }
}

/// Scenario `i`'s value is published and within 5 % of `truth`.
fn assert_published(a: &Attribution, i: usize, truth: f64) {
    let v = a.value(i).expect("published");
    assert!((v / truth - 1.0).abs() < 0.05, "{a:?}");
}

/// Relative errors of the two scenarios' values against `truth` (for a 0 truth: the value
/// relative to the other scenario's truth).
fn errors(a: &Attribution, truth: &[f64]) -> Vec<f64> {
    let scale = truth.iter().copied().fold(0.0, f64::max);
    truth
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let v = a
                .value(i)
                .unwrap_or_else(|| panic!("scenario {i} withheld: {a:?}"));
            (v - t) / scale
        })
        .collect()
}

#[test]
fn a_stream_only_leak_is_attributed_to_the_stream_scenario() {
    // 64 KiB per request of scenario 0 only, 20 rps 50/50, 1 min mix periods, 30 min window
    // (15 s buckets), 1 s samples, 7 s sawtooth of 30 MiB, ±2 MiB noise; five seeds.
    let sim = Sim::two(64.0 * KIB, 0.0);
    for seed in 0..5 {
        let w = sim.run(1800.0, 1.0, 2400.0, seed);
        let a = w.result();
        assert_eq!(a.withheld, None, "seed {seed}: {a:?}");
        let e = errors(a, &sim.leak);
        assert!(
            e[0].abs() < 0.05 && e[1].abs() < 0.05,
            "seed {seed}: {e:?} {a:?}"
        );
        assert!(a.mix_changes >= 29, "{a:?}");
    }
}

#[test]
fn both_scenarios_leaking_differently_are_told_apart() {
    Sim::two(16.0 * KIB, 48.0 * KIB).assert_told_apart(0.05);
}

#[test]
fn a_slow_sawtooth_and_outliers_do_not_move_the_attribution() {
    // Sawtooth period 120 s (8 buckets), and a 500 MiB spike or a 90 MiB dip every 397 s.
    let mut sim = Sim::two(64.0 * KIB, 0.0);
    sim.saw_period = 120.0;
    sim.outliers = true;
    sim.assert_told_apart(0.10);
}

#[test]
fn growth_that_follows_time_spreads_equally() {
    // 1 MiB/s regardless of traffic at 20 rps: 52,429 B per request of either scenario.
    let mut sim = Sim::two(0.0, 0.0);
    sim.time_leak = MIB;
    let each = MIB / 20.0;
    for seed in 0..3 {
        let a = sim.attribution(2400.0, seed);
        let e = errors(&a, &[each, each]);
        assert!(e.iter().all(|e| e.abs() < 0.05), "seed {seed}: {e:?} {a:?}");
    }
}

#[test]
fn a_fixed_mix_publishes_nothing() {
    let mut sim = Sim::two(64.0 * KIB, 0.0);
    sim.period = None;
    let w = sim.run(1800.0, 1.0, 2400.0, 1);
    let a = w.result();
    assert_eq!(a.withheld, Some(Withheld::MixFixed), "{a:?}");
    assert!(a.scenarios.iter().all(|s| s.bytes_per_request.is_none()));
    assert!(a.scenarios.iter().all(|s| s.requests > 10_000), "{a:?}");
    assert_eq!(a.mix_changes, 0);
}

#[test]
fn too_few_mix_periods_publish_nothing() {
    // A 5 min window with 2 min periods sees at most 2 changes.
    let mut sim = Sim::two(64.0 * KIB, 0.0);
    sim.period = Some(120.0);
    let a = sim.run(300.0, 1.0, 600.0, 2).result().clone();
    assert_eq!(a.withheld, Some(Withheld::FewMixPeriods), "{a:?}");
    assert!(a.mix_changes < 3);
}

#[test]
fn one_scenario_needs_no_variation() {
    let sim = Sim {
        weights: vec![1],
        leak: vec![10.0 * KIB],
        period: None,
        ..Sim::two(0.0, 0.0)
    };
    let a = sim.attribution(2400.0, 3);
    assert_published(&a, 0, 10.0 * KIB);
    // One column: its value is the overall growth per request, and the report says so.
    assert!(a.single_scenario, "{a:?}");
    assert_eq!(a.value(0), a.growth_per_request);
    assert!(
        !Sim::two(64.0 * KIB, 0.0)
            .attribution(2400.0, 3)
            .single_scenario
    );
}

#[test]
fn no_growth_is_not_attributed() {
    let a = Sim::two(0.0, 0.0).attribution(2400.0, 4);
    assert!(
        a.scenarios.iter().all(|s| s.bytes_per_request.is_none()),
        "{a:?}"
    );
    assert!(
        matches!(a.withheld, Some(Withheld::NoGrowth))
            || a.scenarios
                .iter()
                .all(|s| s.withheld == Some(Withheld::Imprecise)),
        "{a:?}"
    );
}

#[test]
fn a_scenario_without_requests_is_withheld_and_the_rest_published() {
    let sim = Sim {
        weights: vec![1, 0, 1],
        leak: vec![64.0 * KIB, 0.0, 0.0],
        ..Sim::two(0.0, 0.0)
    };
    let a = sim.attribution(2400.0, 5);
    assert_eq!(a.scenarios[1].withheld, Some(Withheld::NoRequests));
    assert_eq!(a.scenarios[1].requests, 0);
    assert_published(&a, 0, 64.0 * KIB);
}

#[test]
fn too_little_data_and_too_many_scenarios() {
    let a = Sim::two(1.0, 1.0).attribution(600.0, 1);
    assert_eq!(a.withheld, Some(Withheld::NotEnoughData));
    let w = AttributionBuf::new(60.0, 1.0, MAX_SCENARIOS + 1);
    assert_eq!(w.result().withheld, Some(Withheld::TooManyScenarios));
}

#[test]
fn memory_is_bounded_and_clear_forgets() {
    let mut w = AttributionBuf::new(300.0, 1.0, 2);
    let mut max_len = 0;
    for i in 0..20_000u64 {
        w.push(&Sample {
            t: i as f64,
            rss: i as f64,
            counts: &[i, 2 * i],
            epoch: i / 60,
            mix_varies: true,
        });
        max_len = max_len.max(w.len());
    }
    assert!(
        max_len <= crate::monitor::estimate::MAX_BUCKETS + 2,
        "{max_len}"
    );
    w.clear();
    assert!(w.is_empty());
    assert_eq!(w.result().withheld, Some(Withheld::NotEnoughData));
}

/// Prints the accuracy table the module docs quote:
/// `cargo test --lib monitor::attribution -- --ignored --nocapture attribution_table`.
#[test]
#[ignore]
fn attribution_table() {
    // (label, window s, leak of scenario 0 in bytes per request, sawtooth period s, outliers)
    let rows: [(&str, f64, f64, f64, bool); 9] = [
        ("30m, 64 KiB, saw 7 s", 1800.0, 64.0 * KIB, 7.0, false),
        ("30m, 64 KiB, saw 120 s", 1800.0, 64.0 * KIB, 120.0, false),
        ("30m, 64 KiB, saw 300 s", 1800.0, 64.0 * KIB, 300.0, false),
        (
            "30m, 64 KiB, saw 120 s + outliers",
            1800.0,
            64.0 * KIB,
            120.0,
            true,
        ),
        ("5m, 64 KiB, saw 7 s", 300.0, 64.0 * KIB, 7.0, false),
        ("5m, 64 KiB, saw 30 s", 300.0, 64.0 * KIB, 30.0, false),
        ("2h, 64 KiB, saw 600 s", 7200.0, 64.0 * KIB, 600.0, false),
        ("30m, 8 KiB, saw 7 s", 1800.0, 8.0 * KIB, 7.0, false),
        ("30m, 1 KiB, saw 7 s", 1800.0, KIB, 7.0, false),
    ];
    for (label, span, leak, saw, outliers) in rows {
        let mut sim = Sim::two(leak, 0.0);
        sim.saw_period = saw;
        sim.outliers = outliers;
        let (mut published, mut worst, mut ses) = (0, 0.0_f64, Vec::new());
        for seed in 0..10 {
            let a = sim.run(span, 1.0, span * 1.3, seed).result().clone();
            if let Some(g) = a.growth_per_request {
                ses.extend(
                    a.scenarios
                        .iter()
                        .filter_map(|s| s.std_error)
                        .map(|se| se / g),
                );
            }
            if let (Some(s), Some(u)) = (a.value(0), a.value(1)) {
                published += 1;
                worst = worst.max((s / leak - 1.0).abs()).max(u / leak);
            }
        }
        ses.sort_by(|a, b| a.total_cmp(b));
        let med = ses.get(ses.len() / 2).copied().unwrap_or(f64::NAN);
        eprintln!(
            "| {label} | {published}/10 | {:.1} % | {med:.2} |",
            worst * 100.0
        );
    }
}

mod through_the_monitor {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use crate::metrics::Metrics;
    use crate::monitor::attribution::MixTick;
    use crate::monitor::source::{Identity, Reading};
    use crate::monitor::{lock, Monitor, Tick};
    use crate::signals::LoadSignals;

    const KIB: f64 = 1024.0;

    fn reading(pid: u32, rss: f64) -> Reading {
        Reading {
            identity: Identity {
                pid: Some(pid),
                start: Some(f64::from(pid)),
            },
            rss: Some(rss),
            fds: Some(10.0),
            threads: Some(4.0),
            cpu: Some(1.0),
            partial: None,
        }
    }

    fn gauge(m: &Metrics, scenario: &str) -> Option<f64> {
        let fam = m.registry().gather();
        let f = fam
            .iter()
            .find(|f| f.name() == "soakd_process_rss_growth_bytes_per_request_by_scenario")?;
        f.get_metric()
            .iter()
            .find(|x| {
                x.get_label()
                    .iter()
                    .any(|l| l.name() == "scenario" && l.value() == scenario)
            })
            .map(|x| x.get_gauge().get_value())
    }

    /// Two scenarios at 20 rps whose shares alternate 75/25 and 25/75 every 10 s; the target
    /// keeps 64 KiB per request of "stream" only. After two minutes the 2m window publishes
    /// 64 KiB for "stream" and 0 for "unary"; a restart withdraws both.
    #[test]
    fn gauges_follow_the_attribution_and_a_restart_withdraws_them() {
        let raw = crate::monitor::tests::raw_target(&["2m"], "1s");
        let metrics = Arc::new(Metrics::new("t", "0").unwrap());
        let signals = Arc::new(LoadSignals::for_scenarios(vec![
            "stream".into(),
            "unary".into(),
        ]));
        signals.mix.varies.store(true, Ordering::Relaxed);
        let m = Monitor::new(raw.validate().unwrap(), metrics.clone(), signals).unwrap();
        let mut counts = [0u64; 2];
        for i in 0..150u64 {
            let epoch = i / 10;
            let stream_share = if epoch % 2 == 0 { 15 } else { 5 };
            counts[0] += stream_share;
            counts[1] += 20 - stream_share;
            let t = Tick {
                t: i as f64,
                requests: counts[0] + counts[1],
                streams: 0.0,
                burst: false,
                state: None,
                load_start: None,
                mix: MixTick {
                    counts: &counts,
                    epoch,
                    varies: true,
                },
            };
            let rss = 100.0 * 1024.0 * KIB + 64.0 * KIB * counts[0] as f64;
            let mut st = lock(&m.procs[1]);
            m.apply(&mut st, reading(7, rss), t);
        }
        let stream = gauge(&metrics, "stream").expect("stream published");
        assert!((stream / (64.0 * KIB) - 1.0).abs() < 1e-3, "{stream}");
        let unary = gauge(&metrics, "unary").expect("unary published");
        assert!(unary.abs() < 64.0, "{unary}");
        let snap = m.snapshot();
        let a = &snap.processes[1].windows[0].rss_bytes_per_request_by_scenario;
        assert_eq!(a.scenarios[0].scenario, "stream");
        assert_eq!(a.withheld, None);
        assert!(a.mix_changes >= 11, "{a:?}");
        let table = crate::monitor::report::attribution_table(&snap.processes[1]);
        assert!(
            table.contains("stream") && table.contains("64KiB"),
            "{table}"
        );

        let t = Tick {
            t: 151.0,
            requests: 0,
            streams: 0.0,
            burst: false,
            state: None,
            load_start: None,
            mix: MixTick {
                counts: &counts,
                epoch: 15,
                varies: true,
            },
        };
        let mut st = lock(&m.procs[1]);
        m.apply(&mut st, reading(8, 1.0), t);
        drop(st);
        assert_eq!(
            gauge(&metrics, "stream"),
            None,
            "a restart withdraws the value"
        );
        assert_eq!(gauge(&metrics, "unary"), None);
    }
}

/// Issue 27, item 8: a one-scenario run (one stream scenario, the mix never changes) prints
/// its value as what it is, the overall growth per request, not as an attribution the README
/// says needs max(3, scenarios) mix changes.
#[test]
fn a_one_scenario_table_is_labelled_the_overall_growth_per_request() {
    use crate::monitor::tests::raw_target;
    use crate::monitor::{lock, Monitor, Tick};
    use crate::signals::LoadSignals;
    use std::sync::Arc;
    let raw = raw_target(&["1m", "2m"], "1s");
    let metrics = Arc::new(crate::metrics::Metrics::new("t", "0").unwrap());
    let signals = Arc::new(LoadSignals::for_scenarios(vec!["chat-stream".into()]));
    let m = Monitor::new(raw.validate().unwrap(), metrics, signals).unwrap();
    let mut counts = [0u64; 1];
    for i in 0..150u64 {
        counts[0] += 20;
        let t = Tick {
            t: i as f64,
            requests: counts[0],
            streams: 0.0,
            burst: false,
            mix: MixTick {
                counts: &counts,
                epoch: 0,
                varies: true,
            },
            state: None,
            load_start: None,
        };
        let rss = 100.0 * MIB + 89.0 * counts[0] as f64;
        let mut st = lock(&m.procs[1]);
        m.apply(&mut st, crate::monitor::tests::reading(7, rss, 20.0), t);
    }
    let snap = m.snapshot();
    let a = &snap.processes[1].windows[1].rss_bytes_per_request_by_scenario;
    assert_eq!(a.mix_changes, 0);
    assert!(a.single_scenario, "{a:?}");
    let v = a.scenarios[0]
        .attribution
        .bytes_per_request
        .expect("published");
    assert!((v - 89.0).abs() < 1.0, "{v}");
    let table = crate::monitor::report::attribution_table(&snap.processes[1]);
    assert!(
        table.starts_with(
            "    rss growth per request (one scenario: the overall growth per request, no mix \
             changes needed):\n"
        ),
        "{table}"
    );
    assert!(
        table.contains("chat-stream") && table.contains("89B"),
        "{table}"
    );
    let json = serde_json::to_value(a).unwrap();
    assert_eq!(json["single_scenario"], true);
}

/// Cost of one refit (120 buckets) with 2 and 16 scenarios:
/// `cargo test --release --lib monitor::attribution -- --ignored --nocapture bench_refit`.
#[test]
#[ignore]
fn bench_refit_cost() {
    for k in [2usize, 16] {
        let mut w = AttributionBuf::new(120.0, 1.0, k);
        let mut rng = StdRng::seed_from_u64(1);
        let mut counts = vec![0u64; k];
        for i in 0..400u64 {
            for c in counts.iter_mut() {
                *c += rng.random_range(0..20);
            }
            let rss = counts.iter().sum::<u64>() as f64 * 1000.0 + rng.random_range(0.0..1e5);
            w.push(&Sample {
                t: i as f64,
                rss,
                counts: &counts,
                epoch: i / 5,
                mix_varies: true,
            });
        }
        let reps = 50;
        let start = std::time::Instant::now();
        for _ in 0..reps {
            w.result = w.refit();
        }
        let per = start.elapsed().as_secs_f64() / f64::from(reps);
        eprintln!(
            "{k} scenarios: {:.0} µs per refit ({:?})",
            per * 1e6,
            w.result().withheld
        );
    }
}
