//! Criterion benchmarks of soakd's per-request and per-sample work, each through the real
//! code path (issue 11, "the seed's benchmark suite"):
//! - `body/*`: building one request body per API with the workload's [`BodyTemplate`]
//!   (32-character synthetic prompt, as in the side-by-side benchmarks; 800 for the default);
//! - `record/*`: recording one finished request through [`ScenarioMetrics`] (Prometheus
//!   counters and histograms, and the HDR statistics behind `/status` and the summary), for a
//!   non-stream request and for a 64-chunk stream (TTFT, 64 chunk gaps, the end);
//! - `estimator/*`: one [`TrendSet::push`] of a process sample, with a bucket closing (a refit
//!   of three resources over 120 buckets: the worst case) and without;
//! - `pacer/*`: the open-loop pacer's arrival computation, [`Arrivals::next_offset`] and the
//!   mix pick, for constant and Poisson arrivals and a staged plan with bursts.
//!
//! `cargo bench --bench hotpath` (Criterion, measuring thread CPU time: see `common/cpu_time.rs`;
//! `cargo test --all-targets` runs each case once).
//! The SSE parsing benchmark is `benches/sse.rs`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

#[path = "common/cpu_time.rs"]
mod cpu_time;

use cpu_time::ThreadCpu;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use soakd::client::{ApiKind, Finished, Outcome, ScenarioMetrics, TtftOn};
use soakd::metrics::Metrics;
use soakd::monitor::estimate::Point;
use soakd::monitor::synth::{Synth, SynthSpec};
use soakd::monitor::trend::TrendSet;
use soakd::plan::{ArrivalKind, Arrivals, Burst, BurstRate, OpenPlan, Phase, Stage};
use soakd::stats::Stats;
use soakd::workload::{BodyTemplate, Mix, PromptLengths, Prompts, Scenario};

const MIB: f64 = 1024.0 * 1024.0;

fn scenario(api: ApiKind, prompt_tokens: u32) -> Scenario {
    Scenario {
        name: "bench".into(),
        api,
        weight: 1,
        path: api.default_path().into(),
        model: "gpt-4o-mini".into(),
        stream: api.streams(),
        ttft_on: TtftOn::Any,
        include_usage: true,
        max_tokens: 64,
        inputs: 1,
        headers: vec![],
        body_extra: Default::default(),
        prompts: Prompts::Synthetic(PromptLengths {
            mean: f64::from(prompt_tokens),
            stddev: 0.0,
            min: prompt_tokens,
            max: prompt_tokens,
        }),
        cancel: None,
    }
}

fn body(c: &mut Criterion<ThreadCpu>) {
    let mut g = c.benchmark_group("body");
    for api in ApiKind::ALL {
        let t = BodyTemplate::new(&scenario(api, 8));
        let mut rng = SmallRng::seed_from_u64(1);
        let b = t.body(&mut rng);
        serde_json::from_slice::<serde_json::Value>(&b).expect("a JSON body");
        g.bench_function(format!("{api}_32_chars"), |b| {
            b.iter(|| t.body(black_box(&mut rng)))
        });
    }
    let t = BodyTemplate::new(&scenario(ApiKind::OpenAiChat, 200));
    let mut rng = SmallRng::seed_from_u64(1);
    g.bench_function("openai_800_chars", |b| {
        b.iter(|| t.body(black_box(&mut rng)))
    });
    g.finish();
}

fn record(c: &mut Criterion<ThreadCpu>) {
    let metrics = Metrics::new("bench", "0").expect("metrics");
    let m = ScenarioMetrics::new(&metrics, "bench", Arc::new(Stats::new()));
    let done = Finished {
        phase: Phase::Steady,
        outcome: Outcome::Ok,
        duration: Duration::from_micros(850),
        stream_opened: false,
        output_tokens: 16,
        unknown_events: 0,
    };
    let mut g = c.benchmark_group("record");
    g.bench_function("request", |b| b.iter(|| m.finished(black_box(done))));
    let stream_done = Finished {
        stream_opened: true,
        output_tokens: 64,
        ..done
    };
    g.bench_function("stream_64_chunks", |b| {
        b.iter(|| {
            m.first_token(black_box(Duration::from_micros(300)));
            m.chunk(None);
            for _ in 1..64 {
                m.chunk(black_box(Some(Duration::from_micros(40))));
            }
            m.finished(black_box(stream_done))
        })
    });
    g.finish();
}

/// A sample of a leaking, sawtoothing process at `t` seconds.
fn point(synth: &mut Synth, t: f64) -> Point {
    Point {
        t,
        values: [Some(synth.value(t)), Some(50.0), Some(12.0)],
        requests: (t * 1000.0) as u64,
        streams: 10.0,
    }
}

fn estimator(c: &mut Criterion<ThreadCpu>) {
    let spec = SynthSpec {
        leak_per_hour: 4.0 * MIB,
        saw_amplitude: 32.0 * MIB,
        saw_period: 120.0,
        saw_jitter: 0.1,
        noise_sd: 0.25 * MIB,
        ..SynthSpec::default()
    };
    let mut g = c.benchmark_group("estimator");
    // A 120 s window sampled every second: 1 s buckets, so every push closes one and refits
    // three resources over 120 buckets.
    let mut synth = Synth::new(spec, 7);
    let mut set = TrendSet::new(&[120.0], 1.0, 0.95);
    let mut t = 0.0;
    for _ in 0..600 {
        t += 1.0;
        set.push(&point(&mut synth, t));
    }
    g.bench_function("push_with_refit", |b| {
        b.iter(|| {
            t += 1.0;
            let p = point(&mut synth, t);
            assert!(set.push(black_box(&p)));
        })
    });
    // The default windows (5m, 30m, 2h at 1 s); samples 1 ns apart never close a bucket (its
    // narrowest bucket is 2.5 s: billions of pushes).
    let mut synth = Synth::new(spec, 7);
    let mut set = TrendSet::new(&[300.0, 1800.0, 7200.0], 1.0, 0.95);
    let mut t = 0.0;
    for _ in 0..3600 {
        t += 1.0;
        set.push(&point(&mut synth, t));
    }
    t += 1.0;
    set.push(&point(&mut synth, t));
    g.bench_function("push_without_refit", |b| {
        b.iter_batched(
            || {
                t += 1e-9;
                point(&mut synth, t)
            },
            |p| assert!(!set.push(black_box(&p))),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn pacer(c: &mut Criterion<ThreadCpu>) {
    let mut g = c.benchmark_group("pacer");
    let mix = Mix::new([3, 1, 1], None, 1);
    let staged = OpenPlan {
        rate: 1000.0,
        stages: vec![
            Stage {
                duration: Duration::from_secs(60),
                target: 10_000.0,
            },
            Stage {
                duration: Duration::from_secs(600),
                target: 10_000.0,
            },
        ],
        loop_stages: true,
        burst: Some(Burst {
            every: Duration::from_secs(120),
            length: Duration::from_secs(10),
            offset: Duration::from_secs(30),
            rate: BurstRate::Multiplier(3.0),
        }),
        arrivals: ArrivalKind::Poisson,
        batch_window: soakd::plan::DEFAULT_BATCH_WINDOW,
    };
    let poisson = OpenPlan {
        arrivals: ArrivalKind::Poisson,
        ..OpenPlan::steady(10_000.0)
    };
    for (name, plan) in [
        ("constant_10k", OpenPlan::steady(10_000.0)),
        ("poisson_10k", poisson),
        ("stages_bursts_poisson", staged),
    ] {
        let mut arrivals = Arrivals::new(plan, 1);
        let mut cursor = mix.cursor();
        let mut rng = SmallRng::seed_from_u64(2);
        g.bench_function(name, |b| {
            b.iter(|| {
                let (offset, at) = arrivals.next_offset().expect("an arrival");
                (cursor.pick(&mut rng, offset), at.phase)
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = body, record, estimator, pacer
}
criterion_main!(benches);
