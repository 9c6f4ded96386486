//! Detection-time matrix of the leak estimator (issue 13), on synthetic series, so no real
//! time passes; plus the goals of §5, the old sawtooth table on both estimators, the coverage
//! of the slope interval, and the estimator's cost per sample and memory per window against
//! the old `WindowBuf`.
//!
//! `cargo bench --bench leak_matrix` prints Markdown tables (BENCHMARKS.md, "Leak detection").
//! Options (after `--`): `--only matrix|extra|goals|table|coverage|cost`, and for the matrix,
//! the no-leak shapes and the cost: `--windows 5m,30m,2h` (default), `--interval 1`
//! (seconds), `--seeds 3`, `--hours 3`, `--noise 0.25` (MiB, Gaussian sd), `--jitter 0.1`
//! (relative GC period jitter), `--warmup 180` (seconds not fitted, the monitor's default),
//! `--extra-rules 0` (the no-leak shapes use the thresholds of this leak rate in MiB/h; 0 =
//! those of 1 MiB/h).
//!
//! Every cell runs the series through `soakd::monitor::replay::Replay` — the estimator, the
//! verdict and the 15 s hysteresis the monitor uses — with a 200 MiB baseline and the
//! thresholds of `synth::half_rate_rules` (half the leak rate; the strictest, 0.5 MiB/h and
//! 0.25 %/h, for the leak-free rows).

mod checks;
mod cost;

use std::time::Instant;

use soakd::monitor::replay::ReplayConfig;
use soakd::monitor::synth::{half_rate_rules, mib, run_scenario, Outcome, Scenario, SynthSpec};
use soakd::monitor::Resource;
use soakd::monitor::Verdict;

pub struct Opts {
    pub windows: Vec<(String, f64)>,
    interval: f64,
    pub seeds: u64,
    hours: f64,
    noise: f64,
    jitter: f64,
    warmup: f64,
    extra_rules: f64,
    only: Option<String>,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        windows: parse_windows("5m,30m,2h"),
        interval: 1.0,
        seeds: 3,
        hours: 3.0,
        noise: 0.25,
        jitter: 0.1,
        warmup: 180.0,
        extra_rules: 0.0,
        only: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let val = args.get(i + 1).cloned().unwrap_or_default();
        let num = || {
            val.parse::<f64>()
                .unwrap_or_else(|_| panic!("{}: not a number", args[i]))
        };
        match args[i].as_str() {
            "--windows" => o.windows = parse_windows(&val),
            "--interval" => o.interval = num(),
            "--seeds" => o.seeds = num() as u64,
            "--hours" => o.hours = num(),
            "--noise" => o.noise = num(),
            "--jitter" => o.jitter = num(),
            "--warmup" => o.warmup = num(),
            "--extra-rules" => o.extra_rules = num(),
            "--only" => o.only = Some(val),
            _ => {
                i += 1; // `--bench` and the like, from cargo
                continue;
            }
        }
        i += 2;
    }
    o
}

fn parse_windows(s: &str) -> Vec<(String, f64)> {
    s.split(',')
        .map(|w| {
            let d = humantime::parse_duration(w.trim()).expect("a window duration");
            (w.trim().to_string(), d.as_secs_f64())
        })
        .collect()
}

pub fn fmt_time(s: Option<f64>) -> String {
    match s {
        None => "—".into(),
        Some(s) if s < 3600.0 => format!("{}m", (s / 60.0).ceil() as u64),
        Some(s) => {
            let m = (s / 60.0).ceil() as u64;
            format!("{}h{:02}", m / 60, m % 60)
        }
    }
}

/// One cell over all seeds.
struct Cell {
    outcomes: Vec<Outcome>,
}

impl Cell {
    fn run(o: &Opts, spec: SynthSpec, leak_rules_for: f64) -> Cell {
        let outcomes = (0..o.seeds)
            .map(|seed| {
                let mut replay = ReplayConfig::new(
                    o.windows.iter().map(|w| w.1).collect(),
                    o.interval,
                    Resource::Rss,
                );
                replay.rules = half_rate_rules(leak_rules_for, spec.baseline);
                replay.warmup = o.warmup;
                let spec = SynthSpec {
                    saw_phase: (seed as f64 * 0.37) % 1.0,
                    ..spec
                };
                run_scenario(&Scenario {
                    spec,
                    seed,
                    duration: o.hours * 3600.0,
                    replay,
                })
            })
            .collect();
        Cell { outcomes }
    }

    /// "detect / slope error" for a leak cell: worst detection time, the range of the
    /// longest window's slope error at the end; "miss" when a seed never reports leak.
    fn leak_text(&self, leak: f64) -> String {
        let times: Vec<Option<f64>> = self.outcomes.iter().map(|x| x.first_leak).collect();
        let missed = times.iter().filter(|t| t.is_none()).count();
        let worst = times.iter().flatten().copied().fold(f64::NAN, f64::max);
        let errs: Vec<f64> = self
            .outcomes
            .iter()
            .filter_map(|x| x.final_slope())
            .map(|s| (s - leak) / leak * 100.0)
            .collect();
        let (lo, hi) = errs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &e| {
                (a.min(e), b.max(e))
            });
        let flips: u32 = self
            .outcomes
            .iter()
            .map(|x| x.leak_episodes.saturating_sub(1))
            .sum();
        let mut s = if missed == self.outcomes.len() {
            "miss".to_string()
        } else if missed > 0 {
            format!(
                "{} ({missed}/{} miss)",
                fmt_time(Some(worst)),
                self.outcomes.len()
            )
        } else {
            fmt_time(Some(worst))
        };
        if errs.is_empty() {
            s.push_str(" / no fit");
        } else {
            s.push_str(&format!(" / {lo:+.0}…{hi:+.0}%"));
        }
        if flips > 0 {
            s.push_str(&format!(" ({flips} re-rise)"));
        }
        s
    }

    /// For a leak-free cell: "ok 1h01" (worst time to the first ok) or "FALSE …".
    fn clean_text(&self) -> String {
        let false_leaks: Vec<&Outcome> = self
            .outcomes
            .iter()
            .filter(|x| x.leak_episodes > 0)
            .collect();
        if !false_leaks.is_empty() {
            let first = false_leaks
                .iter()
                .filter_map(|x| x.first_leak)
                .fold(f64::INFINITY, f64::min);
            let secs: f64 = false_leaks.iter().map(|x| x.leak_seconds).sum();
            return format!(
                "**FALSE** {}/{} at {} ({}s)",
                false_leaks.len(),
                self.outcomes.len(),
                fmt_time(Some(first)),
                secs.round()
            );
        }
        let worst = self
            .outcomes
            .iter()
            .map(|x| x.first_judged)
            .try_fold(0.0f64, |acc, t| t.map(|t| acc.max(t)));
        let max_slope = self
            .outcomes
            .iter()
            .filter_map(|x| x.final_slope())
            .fold(0.0f64, |a, s| a.max(s.abs()));
        match worst {
            Some(t) if self.outcomes.iter().all(|x| x.final_verdict == Verdict::Ok) => {
                format!(
                    "ok {} (|s| ≤ {:.2})",
                    fmt_time(Some(t)),
                    max_slope / mib(1.0)
                )
            }
            _ => "unknown".into(),
        }
    }
}

fn saw_columns() -> Vec<(f64, f64)> {
    let mut cols = vec![(0.0, 0.0)];
    for amp in [8.0, 32.0, 128.0] {
        for period in [30.0, 120.0, 600.0] {
            cols.push((amp, period));
        }
    }
    cols
}

fn header(cols: &[(f64, f64)]) {
    let mut h = String::from("| leak MiB/h |");
    let mut sep = String::from("|---|");
    for (amp, period) in cols {
        if *amp == 0.0 {
            h.push_str(" no saw |");
        } else {
            h.push_str(&format!(" {amp:.0} MiB / {period:.0}s |"));
        }
        sep.push_str("---|");
    }
    println!("{h}\n{sep}");
}

fn base_spec(o: &Opts, amp: f64, period: f64) -> SynthSpec {
    SynthSpec {
        saw_amplitude: mib(amp),
        saw_period: if period > 0.0 { period } else { 120.0 },
        saw_jitter: o.jitter,
        noise_sd: mib(o.noise),
        ..SynthSpec::default()
    }
}

fn matrix(o: &Opts) {
    let cols = saw_columns();
    println!(
        "\n### Matrix: windows {}, samples every {} s, noise sd {} MiB, GC jitter ±{:.0} %, {} seeds, {} h\n",
        o.windows.iter().map(|w| w.0.as_str()).collect::<Vec<_>>().join("/"),
        o.interval,
        o.noise,
        o.jitter * 100.0,
        o.seeds,
        o.hours
    );
    header(&cols);
    for leak in [0.0, 1.0, 4.0, 16.0, 64.0] {
        let mut row = format!("| {leak} |");
        for &(amp, period) in &cols {
            let spec = SynthSpec {
                leak_per_hour: mib(leak),
                ..base_spec(o, amp, period)
            };
            let cell = Cell::run(o, spec, mib(leak));
            let text = if leak == 0.0 {
                cell.clean_text()
            } else {
                cell.leak_text(mib(leak))
            };
            row.push_str(&format!(" {text} |"));
        }
        println!("{row}");
    }
}

fn extra(o: &Opts) {
    let cols = saw_columns();
    println!(
        "\n### No-leak shapes: windows {}, thresholds of {} MiB/h (half its rate)\n",
        o.windows
            .iter()
            .map(|w| w.0.as_str())
            .collect::<Vec<_>>()
            .join("/"),
        o.extra_rules.max(1.0)
    );
    header(&cols);
    let rows: [(&str, SynthSpec); 3] = [
        (
            "warm-up step 60 MiB, τ 3 min",
            SynthSpec {
                warmup_step: mib(60.0),
                warmup_tau: 180.0,
                ..SynthSpec::default()
            },
        ),
        (
            "plateau: 64 MiB/h for 30 min, then flat",
            SynthSpec {
                leak_per_hour: mib(64.0),
                plateau_after: Some(1800.0),
                ..SynthSpec::default()
            },
        ),
        (
            "outliers: 0.1 % of samples −90 MiB",
            SynthSpec {
                outlier_rate: 0.001,
                outlier_size: -mib(90.0),
                ..SynthSpec::default()
            },
        ),
    ];
    for (name, shape) in rows {
        let mut row = format!("| {name} |");
        for &(amp, period) in &cols {
            let spec = SynthSpec {
                warmup_step: shape.warmup_step,
                warmup_tau: shape.warmup_tau,
                leak_per_hour: shape.leak_per_hour,
                plateau_after: shape.plateau_after,
                outlier_rate: shape.outlier_rate,
                outlier_size: shape.outlier_size,
                ..base_spec(o, amp, period)
            };
            let cell = Cell::run(o, spec, mib(o.extra_rules));
            row.push_str(&format!(" {} |", cell.clean_text()));
        }
        println!("{row}");
    }
}

fn main() {
    // `cargo test --all-targets` runs this binary without `--bench`: one short cell as a smoke
    // check that it still builds and runs, not the tables (minutes even optimised).
    if !std::env::args().any(|a| a == "--bench") {
        let mut o = parse_opts();
        o.seeds = 1;
        o.hours = 0.5;
        o.windows = parse_windows("5m,15m");
        let spec = SynthSpec {
            leak_per_hour: mib(64.0),
            ..base_spec(&o, 8.0, 30.0)
        };
        let cell = Cell::run(&o, spec, mib(64.0));
        assert!(
            cell.outcomes[0].first_leak.is_some(),
            "a 64 MiB/h leak is found"
        );
        println!(
            "leak_matrix: smoke check ok (run `cargo bench --bench leak_matrix` for the tables)"
        );
        return;
    }
    let o = parse_opts();
    let run = |what: &str| o.only.as_deref().is_none_or(|x| x == what);
    let start = Instant::now();
    if run("matrix") {
        matrix(&o);
    }
    if run("extra") {
        extra(&o);
    }
    if run("coverage") {
        checks::coverage();
    }
    if run("table") {
        checks::table();
    }
    if run("goals") {
        checks::goals(&o);
    }
    if run("cost") {
        cost::cost(&o);
    }
    eprintln!("\n(took {:.0} s)", start.elapsed().as_secs_f64());
}
