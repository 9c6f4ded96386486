//! How long the proxy takes to come back after a storm.
//!
//! # The rule
//! - **Population**: the client requests the storm could hit (its `scenarios`/`apis`
//!   filters) that belong to no storm (fair weather: another storm's requests would judge
//!   that storm), bucketed by the second, after the storm's end, in which the client SENT
//!   them (the same convention as storm membership).
//! - **Baseline**: those sent in the [`BASELINE`] (30 s) before the storm's start (from the
//!   start of load, or from the end of the storm's previous occurrence, if later). With no
//!   such request the recovery is not judged (`recovered: null`).
//! - **Band**, from the baseline: client error ratio ≤ baseline + 1 percentage point; p99
//!   latency (send to the client's end) ≤ 1.5 × baseline p99 + 10 ms; proxy-added p99 (send
//!   to the upstream's first receipt, the `request` stage) ≤ 1.5 × baseline p99 + 10 ms, when
//!   the baseline has such samples.
//! - **Windows** of [`WINDOW`] (5 s), sliding by one second from the storm's end: `[end + b,
//!   end + b + 5 s)`. A window is judged once it is over and every request sent in it has
//!   finished (or [`MAX_WAIT`] after its end, on what finished). The recovery time is the
//!   first `b` whose window holds at least one finished request and is inside the band on all
//!   three measures.
//! - **Never recovered**: no window recovered before the storm's next occurrence started or
//!   the load ended. A window cut short by either is judged on the requests sent before it
//!   (at least its first second must fit).
//!
//! # Memory
//! One workspace per storm, for its latest occurrence: a ring of [`SLOTS`] one-second slots,
//! each two small log-scale histograms ([`LogHist`], 72 buckets of ×1.25, so a p99 is within
//! about 12 %). Judged windows leave the ring, so it covers any recovery time; requests sent
//! more than [`SLOTS`] seconds ahead of the oldest unjudged window are not counted.

use std::time::Duration;

/// Length of a judged window.
pub const WINDOW: u32 = 5;
/// How far before the storm's start the baseline looks.
pub const BASELINE: Duration = Duration::from_secs(30);
/// Longest wait, past a window's end, for its requests to finish.
pub const MAX_WAIT: f64 = 30.0;
/// One-second slots held per workspace.
pub const SLOTS: usize = 64;
/// Error-ratio slack over the baseline: one percentage point.
pub const ERROR_SLACK: f64 = 0.01;
/// p99 factor and slack over the baseline.
pub const P99_FACTOR: f64 = 1.5;
pub const P99_SLACK: f64 = 0.010;

const NB: usize = 72;
const LO: f64 = 1e-4;
const GROWTH: f64 = 1.25;

/// A fixed log-scale histogram of seconds: bucket `i` holds `[LO × 1.25^i, LO × 1.25^(i+1))`
/// (the first also everything below, the last everything above, about 9 minutes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogHist {
    counts: [u32; NB],
}

impl Default for LogHist {
    fn default() -> Self {
        LogHist { counts: [0; NB] }
    }
}

impl LogHist {
    pub fn record(&mut self, secs: f64) {
        let i = if secs <= LO || !secs.is_finite() {
            if secs.is_finite() {
                0
            } else {
                NB - 1
            }
        } else {
            ((secs / LO).ln() / GROWTH.ln()).floor() as usize
        };
        let c = &mut self.counts[i.min(NB - 1)];
        *c = c.saturating_add(1);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }

    pub fn add(&mut self, o: &LogHist) {
        for (a, b) in self.counts.iter_mut().zip(o.counts) {
            *a = a.saturating_add(b);
        }
    }

    /// The 99th percentile (the geometric middle of its bucket), if there is any value.
    pub fn p99(&self) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = (n * 99).div_ceil(100).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return Some(LO * GROWTH.powf(i as f64 + 0.5));
            }
        }
        None
    }
}

/// What finished in a span: requests, errors, latency and proxy-added time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    pub finished: u32,
    pub errors: u32,
    pub latency: LogHist,
    pub added: LogHist,
}

impl Sample {
    /// One finished request; a cancelled one has no latency.
    pub fn add(&mut self, error: bool, latency: Option<f64>, added: Option<f64>) {
        self.finished = self.finished.saturating_add(1);
        self.errors = self.errors.saturating_add(u32::from(error));
        if let Some(l) = latency {
            self.latency.record(l);
        }
        if let Some(a) = added {
            self.added.record(a);
        }
    }

    fn merge(&mut self, o: &Sample) {
        self.finished = self.finished.saturating_add(o.finished);
        self.errors = self.errors.saturating_add(o.errors);
        self.latency.add(&o.latency);
        self.added.add(&o.added);
    }

    fn error_ratio(&self) -> f64 {
        if self.finished == 0 {
            0.0
        } else {
            f64::from(self.errors) / f64::from(self.finished)
        }
    }
}

/// The baseline band.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    pub max_error_ratio: f64,
    pub max_p99: f64,
    /// `None` when the baseline has no proxy-added sample (nothing reached the upstream).
    pub max_added_p99: Option<f64>,
}

impl Band {
    /// The band of `baseline`, or `None` when it holds no finished request.
    pub fn from_baseline(b: &Sample) -> Option<Band> {
        let p99 = b.latency.p99()?;
        Some(Band {
            max_error_ratio: b.error_ratio() + ERROR_SLACK,
            max_p99: P99_FACTOR * p99 + P99_SLACK,
            max_added_p99: b.added.p99().map(|a| P99_FACTOR * a + P99_SLACK),
        })
    }

    /// Whether window `w` (with at least one finished request) is inside the band.
    pub fn holds(&self, w: &Sample) -> bool {
        let Some(p99) = w.latency.p99() else {
            return false;
        };
        let added = match self.max_added_p99 {
            None => true,
            Some(max) => w.added.p99().is_some_and(|a| a <= max),
        };
        w.error_ratio() <= self.max_error_ratio && p99 <= self.max_p99 && added
    }
}

/// Where a storm occurrence's recovery stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Still watching.
    Pending,
    /// Back in the band this long after the storm's end.
    Recovered(f64),
    /// No window recovered before the next occurrence or the end of load.
    Never,
    /// No baseline to judge against.
    NoBaseline,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    sent: u32,
    done: Sample,
}

/// The recovery workspace of one occurrence.
#[derive(Debug)]
pub struct Recovery {
    /// The occurrence.
    pub k: u64,
    base: u32,
    slots: Box<[Slot]>,
    band: Option<Band>,
    pub outcome: Outcome,
    /// Requests sent too far ahead of the oldest unjudged window to be held.
    pub lost: u64,
}

impl Recovery {
    /// The workspace of occurrence `k`, judged against `baseline`.
    pub fn new(k: u64, baseline: &Sample) -> Self {
        let band = Band::from_baseline(baseline);
        Recovery {
            k,
            base: 0,
            slots: vec![Slot::default(); SLOTS].into_boxed_slice(),
            band,
            outcome: if band.is_some() {
                Outcome::Pending
            } else {
                Outcome::NoBaseline
            },
            lost: 0,
        }
    }

    fn slot(&mut self, j: u32) -> Option<&mut Slot> {
        if j < self.base || j >= self.base + SLOTS as u32 || self.outcome != Outcome::Pending {
            if j >= self.base + SLOTS as u32 {
                self.lost += 1;
            }
            return None;
        }
        Some(&mut self.slots[j as usize % SLOTS])
    }

    /// A request of the population was sent `j` whole seconds after the storm's end.
    pub fn sent(&mut self, j: u32) {
        if let Some(s) = self.slot(j) {
            s.sent = s.sent.saturating_add(1);
        }
    }

    /// A request sent `j` seconds after the end finished.
    pub fn finished(&mut self, j: u32, error: bool, latency: Option<f64>, added: Option<f64>) {
        if let Some(s) = self.slot(j) {
            s.done.add(error, latency, added);
        }
    }

    /// Judges every window that can be judged `now` seconds after the storm's end. With
    /// `closing` (the next occurrence started, or the load ended `now` after the end), the
    /// last judgeable windows are judged on what finished and a recovery still pending
    /// becomes [`Outcome::Never`].
    pub fn judge(&mut self, now: f64, closing: bool) {
        while self.outcome == Outcome::Pending {
            let b = f64::from(self.base);
            // Closing, a last window cut short by the end may be judged on what it holds.
            let last = closing && b + 1.0 <= now;
            if b + f64::from(WINDOW) > now && !last {
                break;
            }
            let span = self.base..self.base + WINDOW;
            let complete = span.clone().all(|j| {
                self.slots[j as usize % SLOTS].done.finished >= self.slots[j as usize % SLOTS].sent
            });
            if !complete && !closing && now < b + f64::from(WINDOW) + MAX_WAIT {
                break;
            }
            let mut w = Sample::default();
            for j in span {
                w.merge(&self.slots[j as usize % SLOTS].done);
            }
            if w.finished > 0 && self.band.is_some_and(|band| band.holds(&w)) {
                self.outcome = Outcome::Recovered(b);
                break;
            }
            self.slots[self.base as usize % SLOTS] = Slot::default();
            self.base += 1;
        }
        if closing && self.outcome == Outcome::Pending {
            self.outcome = Outcome::Never;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline(n: u32, errors: u32, latency: f64, added: f64) -> Sample {
        let mut s = Sample::default();
        for i in 0..n {
            s.add(i < errors, Some(latency), Some(added));
        }
        s
    }

    #[test]
    fn log_hist_p99_is_within_its_bucket() {
        let mut h = LogHist::default();
        assert_eq!(h.p99(), None);
        for i in 1..=1000 {
            h.record(f64::from(i) * 0.001);
        }
        let p = h.p99().unwrap();
        assert!((p - 0.99).abs() / 0.99 < 0.13, "{p}");
        h.record(f64::INFINITY);
        h.record(0.0);
        assert_eq!(h.count(), 1002);
    }

    #[test]
    fn the_band_is_the_documented_rule() {
        let b = Band::from_baseline(&baseline(100, 2, 0.100, 0.002)).unwrap();
        assert!((b.max_error_ratio - 0.03).abs() < 1e-9);
        // p99 0.1 s read as its bucket's middle (within 12 %), × 1.5 + 10 ms.
        assert!((b.max_p99 - 0.16).abs() < 0.02, "{b:?}");
        assert!(b.max_added_p99.unwrap() < 0.0145, "{b:?}");
        assert!(b.holds(&baseline(50, 1, 0.120, 0.002)));
        assert!(!b.holds(&baseline(50, 2, 0.120, 0.002)), "4 % errors");
        assert!(!b.holds(&baseline(50, 0, 0.300, 0.002)), "slow");
        assert!(!b.holds(&baseline(50, 0, 0.100, 0.050)), "proxy slow");
        let mut no_added = Sample::default();
        no_added.add(false, Some(0.1), None);
        assert!(!b.holds(&no_added), "nothing reached the upstream");
        assert!(!b.holds(&Sample::default()));
        assert_eq!(Band::from_baseline(&Sample::default()), None);
    }

    /// Errors for 7 s after the end, then clean: recovered at 7 s once the window [7, 12) is
    /// over and complete; nothing is judged while a request of it is still out.
    #[test]
    fn recovery_is_the_first_window_back_in_the_band() {
        let mut r = Recovery::new(0, &baseline(60, 0, 0.05, 0.001));
        for j in 0..20u32 {
            for _ in 0..4 {
                r.sent(j);
                if j != 11 {
                    r.finished(j, j < 7, Some(0.05), Some(0.001));
                }
            }
        }
        r.judge(9.0, false);
        assert_eq!(r.outcome, Outcome::Pending);
        r.judge(13.0, false);
        assert_eq!(
            r.outcome,
            Outcome::Pending,
            "slot 11 still has requests out"
        );
        for _ in 0..4 {
            r.finished(11, false, Some(0.05), Some(0.001));
        }
        r.judge(13.0, false);
        assert_eq!(r.outcome, Outcome::Recovered(7.0));
    }

    #[test]
    fn a_window_never_back_in_the_band_is_never_recovered() {
        let mut r = Recovery::new(3, &baseline(60, 0, 0.05, 0.001));
        for j in 0..200u32 {
            r.sent(j);
            r.finished(j, true, Some(0.05), Some(0.001));
            r.judge(f64::from(j) + 1.0, false);
        }
        assert_eq!(r.outcome, Outcome::Pending);
        assert_eq!(r.lost, 0, "judged windows leave the ring");
        r.judge(200.0, true);
        assert_eq!(r.outcome, Outcome::Never);
        // An unfinished window is judged on what finished after MAX_WAIT.
        let mut r = Recovery::new(0, &baseline(60, 0, 0.05, 0.001));
        for j in 0..5 {
            r.sent(j);
            r.sent(j);
            r.finished(j, false, Some(0.05), Some(0.001));
        }
        r.judge(10.0, false);
        assert_eq!(r.outcome, Outcome::Pending);
        r.judge(5.0 + MAX_WAIT, false);
        assert_eq!(r.outcome, Outcome::Recovered(0.0));
        // Cut short by the end of load 2.5 s after the storm: the first window is judged on
        // its 2.5 s.
        let mut r = Recovery::new(0, &baseline(60, 0, 0.05, 0.001));
        for j in 0..3 {
            r.sent(j);
            r.finished(j, false, Some(0.05), Some(0.001));
        }
        r.judge(2.5, false);
        assert_eq!(r.outcome, Outcome::Pending);
        r.judge(2.5, true);
        assert_eq!(r.outcome, Outcome::Recovered(0.0));
        let mut short = Recovery::new(0, &baseline(60, 0, 0.05, 0.001));
        short.judge(0.5, true);
        assert_eq!(short.outcome, Outcome::Never, "not even a second fits");
        let none = Recovery::new(0, &Sample::default());
        assert_eq!(none.outcome, Outcome::NoBaseline);
    }
}
