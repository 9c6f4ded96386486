//! The memory arc of one watched process over the whole run: what it held idle, whether and
//! when it levelled off under load, and what it gave back after.
//!
//! # What is recorded
//! Every sample goes to one part of an [`ArcRecorder`], by the run's state ([`ArcPhase`]):
//! - idle: a reservoir of samples (at most [`RESERVOIR`]; when full, every other one is
//!   dropped and only every second later sample is kept, so the kept samples stay evenly
//!   spread whatever the length of the idle);
//! - load: a series of points, each the minimum (with its time), mean and count of
//!   consecutive samples — one sample per point at first; at [`LOAD_POINTS`] points adjacent
//!   pairs merge and a point holds twice as many samples (as the page's whole-run buffer);
//! - cooldown: a reservoir like the idle one;
//! - the peak of every resource over idle, load and drain.
//!
//! Memory per process is fixed: about 30 KiB for the load points and 2 × 13 KiB for the
//! reservoirs, whatever the run's length.
//!
//! # The arc (per resource: memory — RSS, or PSS for a process tree — fds, threads)
//! - **Idle**: the median of the idle samples.
//! - **Plateau** ([`find_plateau`]), on the same troughs and slope interval as the leak
//!   estimator ([`super::trend`]): the load points are grouped into troughs one period apart
//!   — the GC period the longest growth window detected for that resource, and at least the
//!   load's own cycle (bursts, looping stages) as the estimator does for fds: what a burst
//!   takes it gives back over the following seconds; else one trough per point — and
//!   1. the final level `L` is the median of the newest third of the troughs;
//!   2. the band is `L ± floor/2`, where the floor is the leak verdict's growth floor for
//!      memory (`max(min_growth_bytes, min_growth_percent × L)`: growth under it never calls
//!      a leak) and `max(2, 5 % of L)` for fds and threads (which have no floor);
//!   3. the plateau starts at the earliest trough after which every trough until the end of
//!      the load lies in the band — at least [`MIN_FIT_POINTS`] troughs;
//!   4. and Sen's slope of those troughs has a 95 % interval (Mann–Kendall, Hamed–Rao, as the
//!      leak windows) that contains zero or lies below the leak threshold (memory: the larger
//!      of `rss_mib_per_hour` and `rss_percent_per_hour` of `L`; fds, threads: per hour).
//!
//!   The plateau's time is that trough's time after the start of the load, its level the
//!   median of the points' means from there to the end of the load. Otherwise there is **no
//!   plateau**, and the growth rate is Sen's slope of the troughs over the longest growth
//!   window at the end of the load. Under about [`MIN_FIT_POINTS`] troughs it is unknown.
//!   Entering the band early by up to `floor / 2 ÷ growth rate` is the rule's bias (0.4 s for
//!   a 4 MiB floor at 5 MiB/s).
//! - **Recovered**: the median of the samples in the last third of the cooldown.
//! - **Released share**: `(peak − recovered) / (peak − idle)` — 1 when everything above the
//!   idle level came back, 0 when nothing did; absent when the peak is within the floor of the
//!   idle level (nothing to release) or a part is missing.

use serde::Serialize;

use super::estimate::N_RES;
use super::judge::LeakRules;
use super::mann_kendall::{quantile, trend_stats, StatScratch};
use super::trend::MIN_FIT_POINTS;
use super::Resource;

/// Samples an idle or cooldown reservoir keeps before it thins out.
pub const RESERVOIR: usize = 256;
/// Load points kept before adjacent pairs merge.
pub const LOAD_POINTS: usize = 256;
/// Normal quantile of the 95 % slope interval (the leak windows' confidence).
const Z95: f64 = 1.959_963_984_540_054;

/// One sample's values: memory, fds, threads (`None`: unreadable).
pub type Values = [Option<f64>; N_RES];

/// Which part of the arc a sample belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArcPhase {
    /// Before the load.
    Idle,
    /// Under load.
    Load,
    /// Requests finishing after the load.
    Drain,
    /// No traffic after the load.
    Cooldown,
}

/// Samples thinned to at most [`RESERVOIR`]: when full, every other one is dropped and only
/// every `stride`-th later sample is kept.
#[derive(Debug, Default)]
struct Reservoir {
    items: Vec<(f64, Values)>,
    stride: u64,
    seen: u64,
}

impl Reservoir {
    fn push(&mut self, t: f64, v: Values) {
        self.stride = self.stride.max(1);
        if self.seen % self.stride == 0 {
            self.items.push((t, v));
            if self.items.len() >= RESERVOIR {
                let mut i = 0;
                self.items.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
                self.stride *= 2;
            }
        }
        self.seen += 1;
    }

    /// Medians of the samples at or after `from`, with how many samples that is.
    fn medians(&self, from: f64) -> Option<ArcValues> {
        let kept: Vec<&Values> = self
            .items
            .iter()
            .filter(|(t, _)| *t >= from)
            .map(|(_, v)| v)
            .collect();
        if kept.is_empty() {
            return None;
        }
        let mut col = Vec::with_capacity(kept.len());
        let median = |r: usize, col: &mut Vec<f64>| {
            col.clear();
            col.extend(kept.iter().filter_map(|v| v[r]));
            (!col.is_empty()).then(|| quantile(col, 0.5))
        };
        Some(ArcValues {
            rss: median(0, &mut col),
            fds: median(1, &mut col),
            threads: median(2, &mut col),
            samples: kept.len(),
        })
    }
}

/// Consecutive load samples: per resource the minimum with its time, and the sum and count.
#[derive(Debug, Clone, Copy, Default)]
struct LoadPoint {
    t0: f64,
    t1: f64,
    n: u32,
    min: [Option<(f64, f64)>; N_RES],
    sum: [f64; N_RES],
    count: [u32; N_RES],
}

impl LoadPoint {
    fn absorb(&mut self, t: f64, v: &Values) {
        if self.n == 0 {
            self.t0 = t;
        }
        self.t1 = t;
        self.n += 1;
        for (r, x) in v.iter().enumerate() {
            let Some(x) = *x else { continue };
            if self.min[r].is_none_or(|(_, m)| x < m) {
                self.min[r] = Some((t, x));
            }
            self.sum[r] += x;
            self.count[r] += 1;
        }
    }

    fn merge(mut self, b: LoadPoint) -> LoadPoint {
        self.t1 = b.t1;
        self.n += b.n;
        for r in 0..N_RES {
            self.min[r] = match (self.min[r], b.min[r]) {
                (Some(a), Some(c)) => Some(if c.1 < a.1 { c } else { a }),
                (a, c) => a.or(c),
            };
            self.sum[r] += b.sum[r];
            self.count[r] += b.count[r];
        }
        self
    }

    fn mean(&self, r: usize) -> Option<f64> {
        (self.count[r] > 0).then(|| self.sum[r] / f64::from(self.count[r]))
    }
}

/// Troughs of one resource over the load: times and values, oldest first.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Troughs {
    /// Time of each trough's minimum, seconds (the monitor's time base).
    pub t: Vec<f64>,
    /// The minimum.
    pub v: Vec<f64>,
}

/// What the plateau rule needs besides the troughs.
#[derive(Debug, Clone, Copy)]
pub struct ArcContext<'a> {
    /// The leak rules (floor and threshold).
    pub rules: &'a LeakRules,
    /// The trough period per resource, seconds: the longest growth window's GC period, at
    /// least the load's own cycle.
    pub periods: [Option<f64>; N_RES],
    /// The longest growth window: its label and span, seconds.
    pub window: (&'a str, f64),
}

/// Every sample of one process, kept for its arc (module docs).
#[derive(Debug, Default)]
pub struct ArcRecorder {
    idle: Reservoir,
    points: Vec<LoadPoint>,
    open: LoadPoint,
    per_point: u32,
    load_start: Option<f64>,
    load_end: Option<f64>,
    peak: Values,
    cooldown: Reservoir,
    cooldown_start: Option<f64>,
    cooldown_last: Option<f64>,
    /// The plateau per resource as last computed ([`ArcRecorder::refresh`]).
    plateau: [Option<PlateauReport>; N_RES],
    /// The load has ended and the plateau was computed over all of it.
    load_done: bool,
}

impl ArcRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        ArcRecorder {
            per_point: 1,
            ..ArcRecorder::default()
        }
    }

    /// Records one sample taken at `t` in `phase`; `since` is when that phase began (the
    /// monitor's time), when known. Returns whether a load point closed (time to
    /// [`ArcRecorder::refresh`]).
    pub fn push(&mut self, phase: ArcPhase, t: f64, since: Option<f64>, v: Values) -> bool {
        if phase != ArcPhase::Cooldown {
            for (p, x) in self.peak.iter_mut().zip(v) {
                if let Some(x) = x {
                    *p = Some(p.map_or(x, |p| p.max(x)));
                }
            }
        }
        match phase {
            ArcPhase::Idle => self.idle.push(t, v),
            ArcPhase::Load => {
                self.load_start.get_or_insert(since.unwrap_or(t));
                self.load_end = Some(t);
                self.open.absorb(t, &v);
                if self.open.n >= self.per_point {
                    self.points.push(std::mem::take(&mut self.open));
                    if self.points.len() >= LOAD_POINTS {
                        let old = std::mem::take(&mut self.points);
                        let mut it = old.into_iter();
                        while let Some(a) = it.next() {
                            self.points.push(match it.next() {
                                Some(b) => a.merge(b),
                                None => a,
                            });
                        }
                        self.per_point *= 2;
                    }
                    return true;
                }
            }
            ArcPhase::Drain => {}
            ArcPhase::Cooldown => {
                self.cooldown_start.get_or_insert(since.unwrap_or(t));
                self.cooldown_last = Some(t);
                self.cooldown.push(t, v);
            }
        }
        false
    }

    /// Whether the load has ended (a sample after it was recorded) and the final plateau was
    /// not computed yet.
    pub fn needs_final(&self, phase: ArcPhase) -> bool {
        !self.load_done && self.load_start.is_some() && phase != ArcPhase::Load
    }

    /// Recomputes the plateau of every resource; `done`: the load has ended.
    pub fn refresh(&mut self, ctx: &ArcContext<'_>, done: bool) {
        let mut sc = StatScratch::default();
        for r in Resource::ALL {
            let i = r.index();
            self.plateau[i] = Some(self.plateau_of(*r, ctx, &mut sc));
        }
        self.load_done |= done;
    }

    /// The load points so far, the open one included.
    fn load_points(&self) -> impl Iterator<Item = &LoadPoint> {
        self.points
            .iter()
            .chain((self.open.n > 0).then_some(&self.open))
    }

    /// The troughs of resource `r` with GC period `period` (module docs).
    pub fn troughs(&self, r: usize, period: Option<f64>) -> Troughs {
        let pts: Vec<&LoadPoint> = self.load_points().filter(|p| p.min[r].is_some()).collect();
        let mut out = Troughs::default();
        let (Some(first), Some(last)) = (pts.first(), pts.last()) else {
            return out;
        };
        let width = ((last.t1 - first.t0) / pts.len() as f64).max(f64::MIN_POSITIVE);
        let k = period.map_or(1, |p| ((p + width) / width).ceil().max(1.0) as usize);
        // Groups of k points aligned backwards from the newest; a partial oldest group is
        // dropped unless it is the only one.
        let mut groups: Vec<&[&LoadPoint]> = pts.rchunks(k).collect();
        if groups.len() > 1 && groups.last().is_some_and(|g| g.len() < k) {
            groups.pop();
        }
        for g in groups.iter().rev() {
            let (t, v) =
                g.iter()
                    .filter_map(|p| p.min[r])
                    .fold(
                        (f64::NAN, f64::INFINITY),
                        |acc, m| if m.1 < acc.1 { m } else { acc },
                    );
            out.t.push(t);
            out.v.push(v);
        }
        out
    }

    fn plateau_of(&self, r: Resource, ctx: &ArcContext<'_>, sc: &mut StatScratch) -> PlateauReport {
        let i = r.index();
        let tr = self.troughs(i, ctx.periods[i]);
        let mut report = PlateauReport {
            troughs: tr.t.len(),
            ..PlateauReport::default()
        };
        let load_start = self.load_start.unwrap_or(0.0);
        let rule = PlateauRule::of(r, ctx.rules);
        match find_plateau(&tr, &rule, sc) {
            Verdict::Unknown => {}
            Verdict::Plateau(k) => {
                let from = tr.t[k];
                let mut means: Vec<f64> = self
                    .load_points()
                    .filter(|p| p.t1 >= from)
                    .filter_map(|p| p.mean(i))
                    .collect();
                report.reached = Some(true);
                report.seconds = Some((from - load_start).max(0.0));
                report.level = (!means.is_empty()).then(|| quantile(&mut means, 0.5));
            }
            Verdict::Growing => {
                report.reached = Some(false);
                let end = tr.t.last().copied().unwrap_or(0.0);
                let (label, span) = ctx.window;
                let from = tr.t.iter().position(|t| *t >= end - span).unwrap_or(0);
                let from = from.min(tr.t.len().saturating_sub(3));
                report.growth_per_hour =
                    trend_stats(&tr.t[from..], &tr.v[from..], Z95, sc).map(|s| s.slope * 3600.0);
                report.window = Some(label.to_string());
            }
        }
        report
    }

    /// The arc as the report shows it; `memory` is `"rss"` or `"pss"`.
    pub fn report(&self, memory: &'static str, rules: &LeakRules) -> ArcReport {
        let idle = self.idle.medians(f64::NEG_INFINITY);
        let recovered = match (self.cooldown_start, self.cooldown_last) {
            (Some(c0), Some(c1)) => self.cooldown.medians(c0 + (c1 - c0) * 2.0 / 3.0),
            _ => None,
        };
        let peak = self.peak.iter().any(Option::is_some).then_some(ArcValues {
            rss: self.peak[0],
            fds: self.peak[1],
            threads: self.peak[2],
            samples: 0,
        });
        let share = |r: Resource| {
            let (i, p, c) = (idle.as_ref()?, peak.as_ref()?, recovered.as_ref()?);
            let (i, p, c) = (i.get(r)?, p.get(r)?, c.get(r)?);
            let floor = match r {
                Resource::Rss => rules.growth_floor(r, Some(i)),
                Resource::Fds | Resource::Threads => 1.0,
            };
            (p - i > floor).then(|| (p - c) / (p - i))
        };
        let plateau = self.load_start.map(|_| ArcPlateaus {
            rss: self.plateau[0].clone().unwrap_or_default(),
            fds: self.plateau[1].clone().unwrap_or_default(),
            threads: self.plateau[2].clone().unwrap_or_default(),
        });
        ArcReport {
            memory,
            released_share: ArcValues {
                rss: share(Resource::Rss),
                fds: share(Resource::Fds),
                threads: share(Resource::Threads),
                samples: recovered.as_ref().map_or(0, |c| c.samples),
            },
            idle,
            peak,
            plateau,
            recovered,
        }
    }
}

/// The band and threshold of one resource (module docs, steps 2 and 4).
#[derive(Debug, Clone, Copy)]
pub struct PlateauRule {
    resource: Resource,
    rules: LeakRules,
}

impl PlateauRule {
    /// The rule of `r` under `rules`.
    pub fn of(r: Resource, rules: &LeakRules) -> Self {
        PlateauRule {
            resource: r,
            rules: *rules,
        }
    }

    /// The band's full width around level `l`.
    pub fn band(&self, l: f64) -> f64 {
        match self.resource {
            Resource::Rss => self.rules.growth_floor(Resource::Rss, Some(l.max(0.0))),
            Resource::Fds | Resource::Threads => (0.05 * l.abs()).max(2.0),
        }
    }

    /// The threshold per hour at level `l`.
    pub fn limit_per_hour(&self, l: f64) -> f64 {
        self.rules.rate_limit(self.resource, Some(l.max(0.0)))
    }
}

/// What [`find_plateau`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Too few troughs to tell.
    Unknown,
    /// Levelled off from this trough on.
    Plateau(usize),
    /// Still moving at the end.
    Growing,
}

/// The plateau rule (module docs) over `tr`.
pub fn find_plateau(tr: &Troughs, rule: &PlateauRule, sc: &mut StatScratch) -> Verdict {
    let n = tr.v.len();
    if n < MIN_FIT_POINTS {
        return Verdict::Unknown;
    }
    let mut newest: Vec<f64> = tr.v[n - n.div_ceil(3)..].to_vec();
    let level = quantile(&mut newest, 0.5);
    let half = rule.band(level) / 2.0;
    let mut start = n;
    while start > 0 && (tr.v[start - 1] - level).abs() <= half {
        start -= 1;
    }
    if n - start < MIN_FIT_POINTS {
        return Verdict::Growing;
    }
    match trend_stats(&tr.t[start..], &tr.v[start..], Z95, sc) {
        Some(s) if s.slope_lo <= 0.0 || s.slope_hi * 3600.0 < rule.limit_per_hour(level) => {
            Verdict::Plateau(start)
        }
        _ => Verdict::Growing,
    }
}

/// Values of the three resources.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ArcValues {
    /// Memory: RSS, or summed PSS for a process tree (bytes).
    pub rss: Option<f64>,
    /// Open file descriptors.
    pub fds: Option<f64>,
    /// Threads.
    pub threads: Option<f64>,
    /// Samples the value is the median of (0 for a peak or a share).
    pub samples: usize,
}

impl ArcValues {
    /// The value of `r`.
    pub fn get(&self, r: Resource) -> Option<f64> {
        match r {
            Resource::Rss => self.rss,
            Resource::Fds => self.fds,
            Resource::Threads => self.threads,
        }
    }
}

/// Whether and when one resource levelled off under load.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PlateauReport {
    /// `true`: it levelled off; `false`: still moving at the end of the load; absent: too few
    /// troughs to tell.
    pub reached: Option<bool>,
    /// Seconds after the start of the load when it levelled off.
    pub seconds: Option<f64>,
    /// The plateau's level (median of the load points' means from then on).
    pub level: Option<f64>,
    /// Without a plateau: the growth per hour over the last window of the load.
    pub growth_per_hour: Option<f64>,
    /// That window's label.
    pub window: Option<String>,
    /// Troughs the rule looked at.
    pub troughs: usize,
}

/// The plateau of each resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ArcPlateaus {
    /// Memory.
    pub rss: PlateauReport,
    /// Open fds.
    pub fds: PlateauReport,
    /// Threads.
    pub threads: PlateauReport,
}

/// A process's arc over the run (module docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ArcReport {
    /// What the memory values are: `rss`, or `pss` (summed) for a process tree.
    pub memory: &'static str,
    /// Medians over the idle state (absent without one).
    pub idle: Option<ArcValues>,
    /// The highest values over idle, load and drain.
    pub peak: Option<ArcValues>,
    /// Per resource, whether it levelled off under load (absent before the load).
    pub plateau: Option<ArcPlateaus>,
    /// Medians over the last third of the cooldown (absent without one).
    pub recovered: Option<ArcValues>,
    /// (peak − recovered) / (peak − idle) per resource.
    pub released_share: ArcValues,
}

impl ArcReport {
    /// Memory at idle, its peak and what was recovered, and the released share.
    pub fn memory_release(&self) -> ([Option<f64>; 3], Option<f64>) {
        let m = |v: &Option<ArcValues>| v.as_ref().and_then(|v| v.rss);
        (
            [m(&self.idle), m(&self.peak), m(&self.recovered)],
            self.released_share.rss,
        )
    }

    /// The summary's lines for this arc, one per resource (empty before the load and without
    /// an idle state).
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        if self.plateau.is_none() && self.idle.is_none() {
            return out;
        }
        let bytes = |v: f64| crate::units::fmt_bytes(v);
        let count = |v: f64| format!("{v:.0}");
        for r in Resource::ALL {
            let fmt: &dyn Fn(f64) -> String = match r {
                Resource::Rss => &bytes,
                Resource::Fds | Resource::Threads => &count,
            };
            let name = match r {
                Resource::Rss => format!("memory ({})", self.memory),
                other => other.as_str().to_string(),
            };
            let v = |x: Option<&ArcValues>| x.and_then(|x| x.get(*r)).map_or("-".into(), fmt);
            let plateau = self.plateau.as_ref().map(|p| match r {
                Resource::Rss => &p.rss,
                Resource::Fds => &p.fds,
                Resource::Threads => &p.threads,
            });
            let plateau = match plateau {
                None => "-".to_string(),
                Some(p) => match (p.reached, p.seconds, p.level) {
                    (Some(true), Some(s), Some(l)) => format!("{} after {s:.1}s", fmt(l)),
                    (Some(false), _, _) => match p.growth_per_hour {
                        Some(g) => format!(
                            "none ({}{}/h over the {} window)",
                            if g >= 0.0 { "+" } else { "-" },
                            fmt(g.abs()),
                            p.window.as_deref().unwrap_or("last")
                        ),
                        None => "none".into(),
                    },
                    _ => format!("unknown ({} troughs)", p.troughs),
                },
            };
            let share = self
                .released_share
                .get(*r)
                .map_or("-".into(), |s| format!("{:.1}%", s * 100.0));
            let _ = writeln!(
                out,
                "    arc {name}: idle {}  peak {}  plateau {plateau}  recovered {}  released {share}",
                v(self.idle.as_ref()),
                v(self.peak.as_ref()),
                v(self.recovered.as_ref()),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1024.0 * 1024.0;

    fn values(rss: f64) -> Values {
        [Some(rss), Some(40.0), Some(8.0)]
    }

    fn ctx(rules: &LeakRules) -> ArcContext<'_> {
        ArcContext {
            rules,
            periods: [None; N_RES],
            window: ("60s", 60.0),
        }
    }

    /// 10 s idle at 100 MiB, then a ramp of `rate` B/s to `cap` above it over a 120 s load
    /// (1 s samples), then `cool` s of cooldown at `cool_level`.
    fn run(rate: f64, cap: f64, cool: f64, cool_level: f64) -> ArcRecorder {
        let rules = LeakRules::default();
        let mut a = ArcRecorder::new();
        for i in 0..10 {
            a.push(ArcPhase::Idle, i as f64, Some(0.0), values(100.0 * MIB));
        }
        for i in 0..120 {
            let t = 10.0 + i as f64;
            let held = (rate * i as f64).min(cap);
            if a.push(ArcPhase::Load, t, Some(10.0), values(100.0 * MIB + held)) {
                a.refresh(&ctx(&rules), false);
            }
        }
        for i in 0..cool as u32 {
            let t = 130.0 + f64::from(i);
            a.push(ArcPhase::Cooldown, t, Some(130.0), values(cool_level));
        }
        assert!(a.needs_final(ArcPhase::Cooldown));
        a.refresh(&ctx(&rules), true);
        assert!(!a.needs_final(ArcPhase::Cooldown));
        a
    }

    #[test]
    fn a_ramp_to_a_cap_plateaus_where_the_cap_is_reached() {
        // 1 MiB/s to 40 MiB: the cap is reached 40 s into the load.
        let a = run(MIB, 40.0 * MIB, 30.0, 100.0 * MIB + 40.0 * MIB);
        let r = a.report("rss", &LeakRules::default());
        let p = &r.plateau.as_ref().unwrap().rss;
        assert_eq!(p.reached, Some(true), "{p:?}");
        // The band is ±2 MiB (the 4 MiB floor): entered 2 s early at most.
        let secs = p.seconds.unwrap();
        assert!((38.0..=40.0).contains(&secs), "{secs}");
        assert!((p.level.unwrap() / (140.0 * MIB) - 1.0).abs() < 1e-9);
        assert_eq!(r.idle.as_ref().unwrap().rss, Some(100.0 * MIB));
        assert_eq!(r.idle.as_ref().unwrap().samples, 10);
        assert_eq!(r.peak.as_ref().unwrap().rss, Some(140.0 * MIB));
        // Held at the peak: nothing released.
        assert_eq!(r.released_share.rss, Some(0.0));
        assert_eq!(
            r.recovered.as_ref().unwrap().samples,
            10,
            "last third of 30"
        );
        let text = r.text();
        assert!(
            text.contains(
                "    arc memory (rss): idle 100MiB  peak 140MiB  plateau 140MiB after 38.0s  \
                 recovered 140MiB  released 0.0%\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "    arc fds: idle 40  peak 40  plateau 40 after 0.0s  recovered 40  released -\n"
            ),
            "{text}"
        );
        // fds and threads never moved: a plateau from the first trough, nothing to release.
        let fds = &r.plateau.as_ref().unwrap().fds;
        assert_eq!((fds.reached, fds.seconds), (Some(true), Some(0.0)));
        assert_eq!(r.released_share.fds, None);
    }

    #[test]
    fn a_steady_leak_has_no_plateau_and_reports_its_rate() {
        let a = run(MIB, f64::INFINITY, 0.0, 0.0);
        let r = a.report("rss", &LeakRules::default());
        let p = &r.plateau.as_ref().unwrap().rss;
        assert_eq!(p.reached, Some(false), "{p:?}");
        assert_eq!(p.seconds, None);
        let g = p.growth_per_hour.unwrap();
        assert!((g / (3600.0 * MIB) - 1.0).abs() < 1e-9, "{g}");
        assert_eq!(p.window.as_deref(), Some("60s"));
        assert!(
            r.text()
                .contains("plateau none (+3.52GiB/h over the 60s window)"),
            "{}",
            r.text()
        );
        assert!(r.recovered.is_none() && r.released_share.rss.is_none());
    }

    #[test]
    fn memory_that_comes_back_has_a_share_near_one() {
        // Back to 101 MiB after a 40 MiB rise: (140 − 101) / 40.
        let a = run(MIB, 40.0 * MIB, 30.0, 101.0 * MIB);
        let r = a.report("rss", &LeakRules::default());
        let s = r.released_share.rss.unwrap();
        assert!((s - 39.0 / 40.0).abs() < 1e-9, "{s}");
    }

    #[test]
    fn growth_under_the_floor_is_nothing_to_release() {
        let a = run(MIB / 10.0, 3.0 * MIB, 6.0, 100.0 * MIB);
        let r = a.report("rss", &LeakRules::default());
        assert_eq!(r.released_share.rss, None, "3 MiB is under the 4 MiB floor");
    }

    #[test]
    fn the_plateau_rule_needs_troughs_and_a_flat_slope() {
        let rule = PlateauRule::of(Resource::Rss, &LeakRules::default());
        let mut sc = StatScratch::default();
        let tr = |v: &[f64]| Troughs {
            t: (0..v.len()).map(|i| i as f64 * 60.0).collect(),
            v: v.iter().map(|x| x * MIB).collect(),
        };
        assert_eq!(
            find_plateau(&tr(&[1.0, 2.0, 3.0]), &rule, &mut sc),
            Verdict::Unknown
        );
        // Flat after three rising troughs: the plateau starts at the first in-band trough.
        let flat = [
            100.0, 110.0, 120.0, 129.0, 130.0, 130.5, 129.5, 130.0, 130.2, 129.8,
        ];
        assert_eq!(
            find_plateau(&tr(&flat), &rule, &mut sc),
            Verdict::Plateau(3)
        );
        // Within the band but rising at 1 MiB per minute (60 MiB/h > 50 MiB/h): growing.
        let creep: Vec<f64> = (0..12).map(|i| 130.0 + f64::from(i) * 0.3).collect();
        let creep_fast: Vec<f64> = (0..12).map(|i| 130.0 + f64::from(i) * 1.0).collect();
        assert!(
            matches!(
                find_plateau(&tr(&creep), &rule, &mut sc),
                Verdict::Plateau(_)
            ),
            "0.3 MiB/min = 18 MiB/h is under the threshold"
        );
        assert_eq!(
            find_plateau(&tr(&creep_fast), &rule, &mut sc),
            Verdict::Growing
        );
    }

    #[test]
    fn troughs_are_one_per_period_and_points_merge_when_full() {
        let mut a = ArcRecorder::new();
        // A 10 s sawtooth of 0..9 MiB over a 50 MiB floor, 1 s samples, 600 s.
        for i in 0..600 {
            let v = 50.0 * MIB + (i % 10) as f64 * MIB;
            a.push(ArcPhase::Load, i as f64, Some(0.0), values(v));
        }
        assert!(a.points.len() < LOAD_POINTS, "pairs merged");
        assert_eq!(a.per_point, 4);
        let tr = a.troughs(0, Some(10.0));
        assert!(tr.v.iter().all(|v| *v == 50.0 * MIB), "{:?}", tr.v);
        assert!((30..=60).contains(&tr.v.len()), "{}", tr.v.len());
        let rules = LeakRules::default();
        let plain = a.troughs(0, None);
        assert!(plain.v.len() > tr.v.len());
        a.refresh(
            &ArcContext {
                periods: [Some(10.0), None, None],
                ..ctx(&rules)
            },
            true,
        );
        let r = a.report("rss", &rules);
        let p = r.plateau.unwrap().rss;
        assert_eq!(p.reached, Some(true));
        // The level is the mean of the sawtooth, not its floor.
        assert!(
            (p.level.unwrap() / (54.5 * MIB) - 1.0).abs() < 0.05,
            "{p:?}"
        );
    }

    #[test]
    fn reservoirs_stay_bounded_and_evenly_spread() {
        let mut r = Reservoir::default();
        for i in 0..10_000 {
            r.push(f64::from(i), values(f64::from(i)));
        }
        assert!(r.items.len() < RESERVOIR);
        let m = r.medians(f64::NEG_INFINITY).unwrap().rss.unwrap();
        assert!((m - 5000.0).abs() < 100.0, "{m}");
        let last_third = r.medians(6666.0).unwrap();
        assert!((last_third.rss.unwrap() - 8333.0).abs() < 100.0);
    }
}
