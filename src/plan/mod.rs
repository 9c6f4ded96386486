//! The load plan: what rate (open model) or how many users (closed model) the run asks for at
//! every instant.
//!
//! Every way of describing load — a steady rate, periodic bursts, stages with linear ramps
//! (looped or not), the closed-model presets, shards and CLI overrides — is normalised here
//! into one [`Plan`]. The engine runs that plan with one pacer ([`Arrivals`]) for the open
//! model or one user loop for the closed model; there is no code per combination of modes.
//!
//! Open-model arrivals are generated in virtual time from the start of the run: each call to
//! [`Arrivals::next_offset`] returns the intended send offset of the next request. The pacer
//! sleeps until that instant, however slow the target is (open loop), and latency is timed from
//! it. Arrivals are spaced by equal areas under the rate curve (1 request each for constant
//! arrivals, an Exp(1) draw for Poisson), solved exactly on each linear piece of the curve, so
//! ramps and burst edges get exactly the requests they ask for and a zero-rate stretch simply
//! sends nothing.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

mod display;
pub mod settings;

pub use settings::{MixVariation, RawBurst, RawLoad, RawStage};

use crate::metrics::label_enum;

label_enum! {
    /// The load plan's phase when a request was scheduled (`phase` label).
    Phase {
        Ramp => "ramp",
        Steady => "steady",
        Burst => "burst",
        Drain => "drain",
    }
}

/// How inter-arrival gaps are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrivalKind {
    /// Exactly `1/rate` apart.
    Constant,
    /// Exponentially distributed gaps (a Poisson process) with mean `1/rate`.
    Poisson,
}

/// The rate during a burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BurstRate {
    /// An absolute rate in requests per second.
    Absolute(f64),
    /// A multiple of the base rate at that time.
    Multiplier(f64),
}

/// Periodic bursts: the first starts at `offset`, then one every `every`, each `length` long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    pub every: Duration,
    pub length: Duration,
    pub offset: Duration,
    pub rate: BurstRate,
}

impl Burst {
    /// True when `t` (since the start of the run) falls inside a burst.
    pub fn active_at(&self, t: Duration) -> bool {
        if t < self.offset {
            return false;
        }
        let since = (t - self.offset).as_secs_f64();
        let period = self.every.as_secs_f64();
        since % period < self.length.as_secs_f64()
    }
}

/// One stage: ramp linearly from the previous stage's target (the first stage starts from the
/// plan's base rate) to `target` over `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub target: f64,
}

/// The open model: a rate over time.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenPlan {
    /// The steady rate, and the start rate of the first stage.
    pub rate: f64,
    pub stages: Vec<Stage>,
    /// Repeat the stages when they end; otherwise hold the last stage's target.
    pub loop_stages: bool,
    pub burst: Option<Burst>,
    pub arrivals: ArrivalKind,
    /// The pacer's shortest sleep: arrivals due within it are handed over in one wake-up.
    pub batch_window: Duration,
}

/// The default `load.batch_window`.
pub const DEFAULT_BATCH_WINDOW: Duration = Duration::from_micros(500);

/// What the plan asks for at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateAt {
    pub rate: f64,
    pub phase: Phase,
    pub burst: bool,
}

impl OpenPlan {
    /// A steady plan with constant arrivals.
    pub fn steady(rate: f64) -> Self {
        OpenPlan {
            rate,
            stages: Vec::new(),
            loop_stages: false,
            burst: None,
            arrivals: ArrivalKind::Constant,
            batch_window: DEFAULT_BATCH_WINDOW,
        }
    }

    fn stages_len(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The base-rate segment (before bursts) containing `t`: the rate at `t`, its slope in
    /// requests/s per second, and the absolute end of the segment (`None`: never ends).
    fn base_segment(&self, t: Duration) -> (f64, f64, Option<Duration>) {
        if self.stages.is_empty() {
            return (self.rate, 0.0, None);
        }
        let total = self.stages_len();
        let last = self.stages.last().map_or(self.rate, |s| s.target);
        // The first pass starts from the base rate; each later pass of a looped plan starts
        // from the last stage's target, so the rate never jumps.
        let mut from = self.rate;
        let mut origin = Duration::ZERO;
        if t >= total {
            if !self.loop_stages || total.is_zero() {
                return (last, 0.0, None);
            }
            let passes = t.as_nanos() / total.as_nanos();
            origin = Duration::from_nanos((passes * total.as_nanos()) as u64);
            from = last;
        }
        let mut start = origin;
        for s in &self.stages {
            let end = start + s.duration;
            if t < end {
                let slope = (s.target - from) / s.duration.as_secs_f64();
                let rate = from + slope * (t - start).as_secs_f64();
                return (rate, slope, Some(end));
            }
            from = s.target;
            start = end;
        }
        (from, 0.0, Some(start))
    }

    /// The next instant after `t` where bursts start or stop, and whether `t` is in one.
    fn burst_segment(b: &Burst, t: Duration) -> (bool, Duration) {
        if t < b.offset {
            return (false, b.offset);
        }
        let period = b.every.as_nanos();
        let since = (t - b.offset).as_nanos();
        let period_start = b.offset + Duration::from_nanos((since / period * period) as u64);
        let burst_end = period_start + b.length;
        if t < burst_end {
            (true, burst_end)
        } else {
            (false, period_start + b.every)
        }
    }

    /// The segment of the rate function containing `t`: rate at `t`, slope, segment end,
    /// and the phase. Within a segment the rate is linear in time.
    fn segment(&self, t: Duration) -> (f64, f64, Option<Duration>, RateAt) {
        let (base, slope, base_end) = self.base_segment(t);
        let ramping = slope.abs() > f64::EPSILON;
        let base_at = RateAt {
            rate: base,
            phase: if ramping { Phase::Ramp } else { Phase::Steady },
            burst: false,
        };
        let Some(b) = &self.burst else {
            return (base, slope, base_end, base_at);
        };
        let (active, burst_end) = Self::burst_segment(b, t);
        let end = Some(base_end.map_or(burst_end, |e| e.min(burst_end)));
        if !active {
            return (base, slope, end, base_at);
        }
        let (rate, slope) = match b.rate {
            BurstRate::Absolute(r) => (r, 0.0),
            BurstRate::Multiplier(m) => (base * m, slope * m),
        };
        let at = RateAt {
            rate,
            phase: Phase::Burst,
            burst: true,
        };
        (rate, slope, end, at)
    }

    /// The rate and phase the plan asks for at `t` since the start of the run.
    pub fn at(&self, t: Duration) -> RateAt {
        self.segment(t).3
    }

    /// Divides every rate by `shards`, for one shard of a sharded soak.
    pub fn sharded(mut self, shards: u32) -> Self {
        let n = f64::from(shards.max(1));
        self.rate /= n;
        for s in &mut self.stages {
            s.target /= n;
        }
        if let Some(b) = &mut self.burst {
            if let BurstRate::Absolute(r) = &mut b.rate {
                *r /= n;
            }
        }
        self
    }
}

/// The closed model: `users` loops of request → think time, started over a linear ramp-up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClosedPlan {
    pub users: u32,
    pub think_time: Duration,
    pub ramp_up: Duration,
}

/// The classic closed-model tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Light,
    Moderate,
    Heavy,
    Stress,
}

impl Preset {
    pub const ALL: [Preset; 4] = [
        Preset::Light,
        Preset::Moderate,
        Preset::Heavy,
        Preset::Stress,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Light => "light",
            Preset::Moderate => "moderate",
            Preset::Heavy => "heavy",
            Preset::Stress => "stress",
        }
    }

    pub fn parse(s: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Users and ramp-up of the tier; think time is 1 s unless configured.
    pub fn plan(self) -> ClosedPlan {
        let (users, ramp) = match self {
            Preset::Light => (10, 10),
            Preset::Moderate => (50, 30),
            Preset::Heavy => (100, 60),
            Preset::Stress => (200, 120),
        };
        ClosedPlan {
            users,
            think_time: Duration::from_secs(1),
            ramp_up: Duration::from_secs(ramp),
        }
    }
}

impl ClosedPlan {
    /// When user `i` (0-based) starts.
    pub fn start_of(&self, i: u32) -> Duration {
        if self.users <= 1 {
            return Duration::ZERO;
        }
        self.ramp_up.mul_f64(f64::from(i) / f64::from(self.users))
    }

    /// The users of shard `index` of `shards`: user ids `index, index + shards, …`.
    pub fn user_ids(&self, index: u32, shards: u32) -> impl Iterator<Item = u32> {
        let shards = shards.max(1);
        (0..self.users).filter(move |u| u % shards == index % shards)
    }

    /// The phase at `t`: ramp until the last user has started.
    pub fn phase_at(&self, t: Duration) -> Phase {
        if t < self.ramp_up {
            Phase::Ramp
        } else {
            Phase::Steady
        }
    }
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Open(OpenPlan),
    Closed(ClosedPlan),
}

impl Plan {
    /// The load's own cycle, if it repeats: the burst period, or the stages' total when they
    /// loop (the longer of the two when both). The leak monitor compares the fds' troughs at
    /// least one cycle apart (`monitor::trend::TrendSet::with_load_period`).
    pub fn load_period(&self) -> Option<Duration> {
        let Plan::Open(p) = self else { return None };
        let stages = p
            .loop_stages
            .then(|| p.stages.iter().map(|s| s.duration).sum::<Duration>())
            .filter(|d| !d.is_zero());
        p.burst.map(|b| b.every).max(stages)
    }
}

/// Generates intended send offsets for an [`OpenPlan`], in virtual time.
pub struct Arrivals {
    plan: OpenPlan,
    t: Duration,
    rng: SmallRng,
    started: bool,
}

impl Arrivals {
    pub fn new(plan: OpenPlan, seed: u64) -> Self {
        Arrivals {
            plan,
            t: Duration::ZERO,
            rng: SmallRng::seed_from_u64(seed),
            started: false,
        }
    }

    pub fn plan(&self) -> &OpenPlan {
        &self.plan
    }

    /// The intended offset of the next arrival and the plan's state at that instant, or
    /// `None` when the plan's rate stays at zero for ever.
    ///
    /// Arrivals are spaced by equal areas under the rate curve: the next one is where
    /// `∫ rate dt` since the previous reaches 1 (constant arrivals) or an Exp(1) draw
    /// (Poisson, by time rescaling). The integral is solved exactly on each linear segment,
    /// so ramps, burst edges and stage boundaries are honoured to the nanosecond.
    pub fn next_offset(&mut self) -> Option<(Duration, RateAt)> {
        if !self.started {
            self.started = true;
            let at = self.plan.at(Duration::ZERO);
            if at.rate > 0.0 {
                return Some((Duration::ZERO, at));
            }
        }
        let mut need = match self.plan.arrivals {
            ArrivalKind::Constant => 1.0,
            // Inversion with U in (0, 1].
            ArrivalKind::Poisson => -(1.0 - self.rng.random::<f64>()).ln(),
        };
        loop {
            let (a, b, end, _) = self.plan.segment(self.t);
            let a = a.max(0.0);
            let dt = match end {
                Some(end) => {
                    let span = (end - self.t).as_secs_f64();
                    let area = (a * span + b * span * span / 2.0).max(0.0);
                    if area < need {
                        need -= area;
                        self.t = end;
                        continue;
                    }
                    solve_linear(a, b, need).min(span)
                }
                None if a <= 0.0 => return None,
                None => solve_linear(a, b, need),
            };
            self.t += Duration::from_secs_f64(dt);
            return Some((self.t, self.plan.at(self.t)));
        }
    }
}

/// The `dt` at which `a·dt + b·dt²/2 = need`, for a non-negative rate `a + b·dt`.
fn solve_linear(a: f64, b: f64, need: f64) -> f64 {
    if b.abs() < 1e-12 {
        return need / a;
    }
    let disc = (a * a + 2.0 * b * need).max(0.0);
    // 2·need / (a + √disc) is the stable form of (−a + √disc) / b.
    2.0 * need / (a + disc.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn count_until(plan: OpenPlan, end: Duration, seed: u64) -> usize {
        let mut a = Arrivals::new(plan, seed);
        let mut n = 0;
        while let Some((t, _)) = a.next_offset() {
            if t >= end {
                break;
            }
            n += 1;
        }
        n
    }

    #[test]
    fn steady_constant_rate_sends_exactly_rate_times_duration() {
        assert_eq!(count_until(OpenPlan::steady(100.0), secs(10.0), 1), 1000);
        assert_eq!(count_until(OpenPlan::steady(0.5), secs(10.0), 1), 5);
    }

    #[test]
    fn constant_gaps_are_even() {
        let mut a = Arrivals::new(OpenPlan::steady(4.0), 1);
        let offsets: Vec<f64> = (0..4)
            .map(|_| a.next_offset().unwrap().0.as_secs_f64())
            .collect();
        assert_eq!(offsets, vec![0.0, 0.25, 0.5, 0.75]);
    }

    #[test]
    fn poisson_mean_rate_and_dispersion() {
        let plan = OpenPlan {
            arrivals: ArrivalKind::Poisson,
            ..OpenPlan::steady(200.0)
        };
        let n = count_until(plan.clone(), secs(500.0), 42) as f64;
        // Expected 100k; a Poisson count has sd ≈ 316, so 1% is > 3 sd.
        assert!((n - 100_000.0).abs() < 1_000.0, "{n}");
        // Gaps are exponential: their coefficient of variation is ~1 (constant would be 0).
        let mut a = Arrivals::new(plan, 7);
        let mut prev = a.next_offset().unwrap().0.as_secs_f64();
        let gaps: Vec<f64> = (0..20_000)
            .map(|_| {
                let t = a.next_offset().unwrap().0.as_secs_f64();
                let g = t - prev;
                prev = t;
                g
            })
            .collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        let cv = var.sqrt() / mean;
        assert!((mean - 0.005).abs() < 0.0002, "mean gap {mean}");
        assert!((cv - 1.0).abs() < 0.05, "cv {cv}");
    }

    #[test]
    fn bursts_raise_the_rate_for_their_length() {
        let plan = OpenPlan {
            burst: Some(Burst {
                every: secs(60.0),
                length: secs(10.0),
                offset: secs(30.0),
                rate: BurstRate::Multiplier(5.0),
            }),
            ..OpenPlan::steady(10.0)
        };
        assert_eq!(plan.at(secs(29.9)).phase, Phase::Steady);
        let b = plan.at(secs(30.0));
        assert_eq!((b.rate, b.phase, b.burst), (50.0, Phase::Burst, true));
        assert!(plan.at(secs(39.9)).burst);
        assert!(!plan.at(secs(40.0)).burst);
        assert!(plan.at(secs(95.0)).burst);
        // 120 s: 2 bursts of 10 s at 50 rps + 100 s at 10 rps.
        assert_eq!(count_until(plan, secs(120.0), 1), 2 * 500 + 1000);
    }

    #[test]
    fn the_load_period_is_the_burst_or_the_looping_stages() {
        let burst = Burst {
            every: secs(15.0),
            length: secs(3.0),
            offset: secs(5.0),
            rate: BurstRate::Multiplier(4.0),
        };
        let stages = vec![
            Stage {
                duration: secs(20.0),
                target: 5.0,
            },
            Stage {
                duration: secs(40.0),
                target: 10.0,
            },
        ];
        let open = |burst, loop_stages| {
            Plan::Open(OpenPlan {
                burst,
                stages: stages.clone(),
                loop_stages,
                ..OpenPlan::steady(10.0)
            })
            .load_period()
        };
        assert_eq!(open(None, false), None, "stages that do not loop");
        assert_eq!(open(Some(burst), false), Some(secs(15.0)));
        assert_eq!(open(None, true), Some(secs(60.0)));
        assert_eq!(open(Some(burst), true), Some(secs(60.0)), "the longer");
        let closed = ClosedPlan {
            users: 4,
            think_time: Duration::ZERO,
            ramp_up: Duration::ZERO,
        };
        assert_eq!(Plan::Closed(closed).load_period(), None);
    }

    #[test]
    fn absolute_burst_rate() {
        let plan = OpenPlan {
            burst: Some(Burst {
                every: secs(10.0),
                length: secs(2.0),
                offset: secs(0.0),
                rate: BurstRate::Absolute(100.0),
            }),
            ..OpenPlan::steady(10.0)
        };
        assert_eq!(plan.at(secs(1.0)).rate, 100.0);
        assert_eq!(plan.at(secs(5.0)).rate, 10.0);
        assert_eq!(count_until(plan, secs(10.0), 1), 200 + 80);
    }

    #[test]
    fn stages_ramp_linearly_and_hold_the_last_target() {
        let plan = OpenPlan {
            stages: vec![
                Stage {
                    duration: secs(10.0),
                    target: 100.0,
                },
                Stage {
                    duration: secs(10.0),
                    target: 100.0,
                },
                Stage {
                    duration: secs(10.0),
                    target: 0.0,
                },
            ],
            ..OpenPlan::steady(0.0)
        };
        assert_eq!(plan.at(secs(5.0)).rate, 50.0);
        assert_eq!(plan.at(secs(5.0)).phase, Phase::Ramp);
        assert_eq!(plan.at(secs(15.0)).rate, 100.0);
        assert_eq!(plan.at(secs(15.0)).phase, Phase::Steady);
        assert_eq!(plan.at(secs(25.0)).rate, 50.0);
        assert_eq!(plan.at(secs(100.0)).rate, 0.0);
        // Area under the curve: 500 + 1000 + 500.
        let n = count_until(plan, secs(30.0), 1) as f64;
        assert!((n - 2000.0).abs() <= 20.0, "{n}");
    }

    #[test]
    fn looped_stages_repeat() {
        let plan = OpenPlan {
            stages: vec![
                Stage {
                    duration: secs(10.0),
                    target: 20.0,
                },
                Stage {
                    duration: secs(10.0),
                    target: 20.0,
                },
            ],
            loop_stages: true,
            ..OpenPlan::steady(0.0)
        };
        assert_eq!(plan.at(secs(5.0)).rate, 10.0);
        // Second pass ramps from the last target (20) to the first target (20): flat.
        assert_eq!(plan.at(secs(25.0)).rate, 20.0);
        assert_eq!(plan.at(secs(45.0)).rate, 20.0);
    }

    #[test]
    fn zero_rate_then_positive_rate_resumes() {
        let plan = OpenPlan {
            stages: vec![
                Stage {
                    duration: secs(5.0),
                    target: 0.0,
                },
                Stage {
                    duration: Duration::from_nanos(1),
                    target: 10.0,
                },
            ],
            ..OpenPlan::steady(0.0)
        };
        let mut a = Arrivals::new(plan, 1);
        let (t, at) = a.next_offset().unwrap();
        assert!(t >= secs(5.0), "{t:?}");
        assert_eq!(at.rate, 10.0);
    }

    #[test]
    fn a_plan_that_ends_at_zero_stops_arriving() {
        let plan = OpenPlan {
            stages: vec![Stage {
                duration: secs(2.0),
                target: 0.0,
            }],
            ..OpenPlan::steady(10.0)
        };
        // Area of the ramp from 10 to 0 over 2 s: 10 requests.
        let mut a = Arrivals::new(plan, 1);
        let mut n = 0;
        while a.next_offset().is_some() {
            n += 1;
            assert!(n < 100, "arrivals never stopped");
        }
        assert_eq!(n, 10);
    }

    #[test]
    fn poisson_follows_a_ramp() {
        let plan = OpenPlan {
            stages: vec![Stage {
                duration: secs(100.0),
                target: 200.0,
            }],
            arrivals: ArrivalKind::Poisson,
            ..OpenPlan::steady(0.0)
        };
        // ∫0..100 of 2t dt = 10_000; the first half holds a quarter of them.
        let first_half = count_until(plan.clone(), secs(50.0), 3) as f64;
        let all = count_until(plan, secs(100.0), 3) as f64;
        assert!((all - 10_000.0).abs() < 400.0, "{all}");
        assert!(
            (first_half / all - 0.25).abs() < 0.02,
            "{first_half} of {all}"
        );
    }

    #[test]
    fn sharding_divides_rates() {
        let plan = OpenPlan {
            burst: Some(Burst {
                every: secs(10.0),
                length: secs(1.0),
                offset: secs(5.0),
                rate: BurstRate::Absolute(300.0),
            }),
            stages: vec![Stage {
                duration: secs(1.0),
                target: 90.0,
            }],
            ..OpenPlan::steady(100.0)
        }
        .sharded(2);
        assert_eq!(plan.rate, 50.0);
        assert_eq!(plan.stages[0].target, 45.0);
        assert_eq!(plan.at(secs(5.5)).rate, 150.0);
        let two = count_until(OpenPlan::steady(100.0).sharded(2), secs(10.0), 1);
        assert_eq!(two, 500);
    }

    #[test]
    fn closed_ramp_and_presets() {
        let p = Preset::Moderate.plan();
        assert_eq!(p.users, 50);
        assert_eq!(p.start_of(0), Duration::ZERO);
        assert_eq!(p.start_of(25), secs(15.0));
        assert_eq!(p.phase_at(secs(29.0)), Phase::Ramp);
        assert_eq!(p.phase_at(secs(30.0)), Phase::Steady);
        let ids: Vec<u32> = ClosedPlan { users: 5, ..p }.user_ids(1, 2).collect();
        assert_eq!(ids, vec![1, 3]);
        assert_eq!(Preset::parse("stress").unwrap().plan().users, 200);
        assert_eq!(Preset::parse("extreme"), None);
    }
}
