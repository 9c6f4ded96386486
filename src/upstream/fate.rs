//! Every give-up has a fate: what became of the upstream side of each request whose client
//! gave up (a cancel, a timeout, an abort at the end of the grace period).
//!
//! With `G` the client's give-up instant and the upstream side as its attempts left it, a
//! give-up gets exactly one fate ([`decide`]):
//! - `upstream_finished`: the upstream side had already ended at `G` (its last byte sent, or
//!   the proxy had closed it before): there was nothing to cancel;
//! - `propagated`: the upstream saw the disconnect (its answer dropped unfinished) after `G`
//!   and before `G + orphan_after`; the time from `G` is the cancel propagation;
//! - `not_propagated`: the upstream kept going and ended its answer on its own within
//!   `orphan_after`; the time it ran on is recorded, and the output tokens it generated after
//!   `G`, for nobody, are counted as wasted;
//! - `orphaned`: the answer had not ended at `G + orphan_after`, whether or not it was still
//!   sending anything (a unary answer behind a long delay, a stalled stream). This wins over
//!   `not_propagated`; when the answer ends later, the tokens it generated after `G` are added
//!   to the wasted count. An orphan stays in `soakd_proxy_orphaned_requests` until its answer
//!   ends;
//! - `unknown`, with a reason ([`UnknownReason`]): no attempt reached the upstream by
//!   `G + orphan_after` (`never_reached`, or `left_table` when the id had already left the
//!   tracking table, so a late attempt could not be matched), more give-ups waited than
//!   `max_tracked` (`overflow`), or the run ended first (`run_ended`).
//!
//! An orphan is about the answer, not the connection: an upstream connection kept alive in
//! the proxy's pool after its answer ended is never one.
//!
//! Tokens generated after `G` ([`generated_after`]): a stream's content chunks sent after `G`
//! (one token each; exact for the first [`super::measure::MAX_CHUNKS`] chunks); a unary
//! answer's whole output when it was sent after `G`.
//!
//! The decision is made from the stamps, never from when it is looked at: at the give-up when
//! the upstream side has already ended, when an attempt ends, or by the sweep
//! ([`super::Tracker::sweep`], every [`sweep_interval`] on the upstream's runtime) once
//! `G + orphan_after` has passed. Waiting give-ups sit in a queue ordered by that deadline,
//! bounded by `max_tracked`. After the load, [`super::Tracker::settle`] waits until every upstream
//! side of a finished client request has ended or has its fate — at most `orphan_after`, at
//! once when nothing is pending — so the summary sees both sides of the run.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prometheus::{Histogram, IntCounter, IntGauge};

use super::attempts::Attempts;
use super::measure::UpstreamSide;
use super::report::{GiveUps, ProxyStats, Stage};
use crate::metrics::{label_enum, Metrics};

label_enum! {
    /// The `fate` label of `soakd_proxy_give_ups_total`.
    Fate {
        Propagated => "propagated",
        UpstreamFinished => "upstream_finished",
        NotPropagated => "not_propagated",
        Orphaned => "orphaned",
        Unknown => "unknown",
    }
}

label_enum! {
    /// Why a give-up's fate is `unknown` (in the report, not a label).
    UnknownReason {
        NeverReached => "never_reached",
        LeftTable => "left_table",
        Overflow => "overflow",
        RunEnded => "run_ended",
    }
}

/// A decided fate, with what it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The upstream saw the disconnect this long after the give-up.
    Propagated(Duration),
    UpstreamFinished,
    /// The upstream ended its answer on its own this long after the give-up.
    NotPropagated(Duration),
    Orphaned,
    Unknown(UnknownReason),
}

impl Verdict {
    pub fn fate(self) -> Fate {
        match self {
            Verdict::Propagated(_) => Fate::Propagated,
            Verdict::UpstreamFinished => Fate::UpstreamFinished,
            Verdict::NotPropagated(_) => Fate::NotPropagated,
            Verdict::Orphaned => Fate::Orphaned,
            Verdict::Unknown(_) => Fate::Unknown,
        }
    }
}

/// The upstream side of one request, as a fate is decided on it.
#[derive(Debug, Clone, Copy, Default)]
pub struct View {
    /// Attempts whose answer has not ended.
    pub open: u32,
    /// The id left the tracking table (a later attempt for it could not be matched).
    pub evicted: bool,
    /// End and completion of the latest attempt that ended.
    pub last_end: Option<(Instant, bool)>,
}

/// The fate of a give-up at `gave_up`, as the upstream side `v` shows it at `now`; `None`
/// while it cannot be told yet (see the module docs).
pub fn decide(gave_up: Instant, v: &View, now: Instant, orphan_after: Duration) -> Option<Verdict> {
    let deadline = gave_up + orphan_after;
    if v.open > 0 {
        return (now >= deadline).then_some(Verdict::Orphaned);
    }
    let Some((end, completed)) = v.last_end else {
        let why = if v.evicted {
            UnknownReason::LeftTable
        } else {
            UnknownReason::NeverReached
        };
        return (now >= deadline).then_some(Verdict::Unknown(why));
    };
    Some(if end <= gave_up {
        Verdict::UpstreamFinished
    } else if end >= deadline {
        Verdict::Orphaned
    } else if completed {
        Verdict::NotPropagated(end - gave_up)
    } else {
        Verdict::Propagated(end - gave_up)
    })
}

/// Output tokens the attempt `u` generated after `at` (see the module docs).
pub fn generated_after(u: &UpstreamSide, at: Instant) -> u64 {
    if u.output.streamed {
        let before = u.sends.partition_point(|s| *s <= at) as u64;
        u64::from(u.output.chunks).saturating_sub(before)
    } else if u.completed && u.end > at {
        u.output.unary_tokens
    } else {
        0
    }
}

/// Where one request's fate stands (kept in its link's state).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FateState {
    /// The client has not given up (or finished normally).
    #[default]
    None,
    /// Gave up at this instant; no fate yet.
    Pending(Instant),
    /// Orphaned (gave up at this instant); some attempt is still open.
    Orphaned(Instant),
    /// Decided, and nothing of it is open.
    Settled,
}

/// How often the sweep looks for give-ups whose `orphan_after` has passed: a twentieth of
/// it, between 10 and 100 ms.
pub fn sweep_interval(orphan_after: Duration) -> Duration {
    (orphan_after / 20).clamp(Duration::from_millis(10), Duration::from_millis(100))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The fate counters of one scenario, resolved once.
pub struct FateHandles {
    give_ups: [IntCounter; 5],
    wasted: IntCounter,
    /// Of `wasted`, the tokens of orphans (the summary shows them apart; not a metric).
    wasted_orphaned: AtomicU64,
    unknown: [AtomicU64; 4],
    orphans: IntGauge,
    orphans_total: IntCounter,
    cancel_propagation: Histogram,
}

impl FateHandles {
    pub(super) fn new(m: &Metrics, scenario: &str) -> Self {
        let s = [scenario];
        FateHandles {
            give_ups: std::array::from_fn(|i| {
                m.proxy_give_ups_total
                    .with_label_values(&[scenario, Fate::ALL[i].as_str()])
            }),
            wasted: m.proxy_wasted_output_tokens_total.with_label_values(&s),
            wasted_orphaned: AtomicU64::new(0),
            unknown: Default::default(),
            orphans: m.proxy_orphaned_requests.with_label_values(&s),
            orphans_total: m.proxy_orphaned_requests_total.with_label_values(&s),
            cancel_propagation: m.proxy_cancel_propagation_seconds.with_label_values(&s),
        }
    }

    fn waste(&self, tokens: u64, orphaned: bool) {
        self.wasted.inc_by(tokens);
        if orphaned {
            self.wasted_orphaned.fetch_add(tokens, Ordering::Relaxed);
        }
    }

    pub(super) fn orphans_now(&self) -> i64 {
        self.orphans.get()
    }

    pub(super) fn orphans_total(&self) -> u64 {
        self.orphans_total.get()
    }

    pub(super) fn report(&self) -> GiveUps {
        let n = |f: Fate| self.give_ups[f.index()].get();
        GiveUps {
            propagated: n(Fate::Propagated),
            upstream_finished: n(Fate::UpstreamFinished),
            not_propagated: n(Fate::NotPropagated),
            orphaned: n(Fate::Orphaned),
            unknown: n(Fate::Unknown),
            wasted_output_tokens: self.wasted.get(),
            wasted_by_orphans: self.wasted_orphaned.load(Ordering::Relaxed),
            unknown_reasons: UnknownReason::ALL
                .iter()
                .map(|r| (r.as_str(), self.unknown[r.index()].load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}

/// The parts of one request's state its fate is decided on, borrowed from its link under
/// the link's lock.
pub struct Side<'a> {
    pub fate: &'a mut FateState,
    pub attempts: &'a mut Attempts,
    /// The latest attempt that ended.
    pub last: Option<&'a UpstreamSide>,
    /// The id left the tracking table.
    pub evicted: bool,
}

impl Side<'_> {
    fn view(&self) -> View {
        View {
            open: self.attempts.open,
            evicted: self.evicted,
            last_end: self.last.map(|u| (u.end, u.completed)),
        }
    }

    /// Tokens the latest ended attempt generated after `g`.
    fn generated_after(&self, g: Instant) -> u64 {
        self.last.map_or(0, |u| generated_after(u, g))
    }
}

/// The give-ups waiting for their fate (each with its request's handle `L`, in give-up
/// order), and the count of what is still open.
pub struct Fates<L> {
    orphan_after: Duration,
    cap: usize,
    /// `(G + orphan_after, request)`.
    queue: Mutex<VecDeque<(Instant, L)>>,
    /// Give-ups without a fate.
    undecided: AtomicI64,
    /// Upstream attempts still open whose request is not an orphan.
    unsettled: AtomicI64,
}

impl<L: Clone> Fates<L> {
    /// Waiting give-ups beyond `cap` are decided at the next sweep (`unknown`, `overflow`).
    pub fn new(orphan_after: Duration, cap: usize) -> Self {
        Fates {
            orphan_after,
            cap: cap.max(1),
            queue: Mutex::new(VecDeque::new()),
            undecided: AtomicI64::new(0),
            unsettled: AtomicI64::new(0),
        }
    }

    pub fn orphan_after(&self) -> Duration {
        self.orphan_after
    }

    /// The client side of `request` gave up at `at`.
    pub(super) fn gave_up(
        &self,
        request: &L,
        s: Side<'_>,
        at: Instant,
        h: &FateHandles,
        stats: &ProxyStats,
    ) {
        if *s.fate != FateState::None {
            return;
        }
        *s.fate = FateState::Pending(at);
        self.undecided.fetch_add(1, Ordering::Relaxed);
        match decide(at, &s.view(), at, self.orphan_after) {
            Some(v) => self.settle(s, at, v, h, stats),
            None => lock(&self.queue).push_back((at + self.orphan_after, request.clone())),
        }
    }

    /// An attempt for the request reached the upstream.
    pub fn began(&self, s: Side<'_>) {
        s.attempts.began();
        if !matches!(s.fate, FateState::Orphaned(_)) {
            self.unsettled.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An attempt ended at `at`; `s.last` already holds it when it is the latest.
    pub(super) fn ended(&self, s: Side<'_>, at: Instant, h: &FateHandles, stats: &ProxyStats) {
        s.attempts.ended();
        match *s.fate {
            FateState::Orphaned(g) => {
                h.waste(s.generated_after(g), true);
                if s.attempts.open == 0 {
                    h.orphans.dec();
                    *s.fate = FateState::Settled;
                }
            }
            FateState::Pending(g) => {
                self.unsettled.fetch_sub(1, Ordering::Relaxed);
                if let Some(v) = decide(g, &s.view(), at, self.orphan_after) {
                    self.settle(s, g, v, h, stats);
                }
            }
            FateState::None | FateState::Settled => {
                self.unsettled.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Records the fate `v` of the give-up at `g`.
    fn settle(&self, s: Side<'_>, g: Instant, v: Verdict, h: &FateHandles, stats: &ProxyStats) {
        self.undecided.fetch_sub(1, Ordering::Relaxed);
        h.give_ups[v.fate().index()].inc();
        *s.fate = FateState::Settled;
        match v {
            Verdict::Propagated(d) => {
                h.cancel_propagation.observe(d.as_secs_f64());
                stats.record(Stage::CancelPropagation, d);
            }
            Verdict::NotPropagated(d) => {
                stats.record(Stage::RunOn, d);
                h.waste(s.generated_after(g), false);
            }
            Verdict::Orphaned => {
                h.orphans_total.inc();
                let open = s.attempts.open;
                if open > 0 {
                    h.orphans.inc();
                    self.unsettled.fetch_sub(i64::from(open), Ordering::Relaxed);
                    *s.fate = FateState::Orphaned(g);
                } else {
                    h.waste(s.generated_after(g), true);
                }
            }
            Verdict::Unknown(r) => {
                h.unknown[r.index()].fetch_add(1, Ordering::Relaxed);
            }
            Verdict::UpstreamFinished => {}
        }
    }

    /// Takes the waiting give-ups whose `orphan_after` has passed by `now` (every one with
    /// `last`), and the oldest beyond the cap (marked `true`).
    pub fn due(&self, now: Instant, last: bool) -> Vec<(L, bool)> {
        let mut q = lock(&self.queue);
        let mut due = Vec::new();
        while q.len() > self.cap {
            if let Some((_, l)) = q.pop_front() {
                due.push((l, true));
            }
        }
        while q.front().is_some_and(|(d, _)| last || *d <= now) {
            if let Some((_, l)) = q.pop_front() {
                due.push((l, false));
            }
        }
        due
    }

    /// Decides a give-up [`Fates::due`] handed out (a no-op when it already has its fate):
    /// from its stamps, else `unknown` (`overflow` beyond the cap, `run_ended` when the run
    /// ends first).
    pub(super) fn decide_due(
        &self,
        s: Side<'_>,
        now: Instant,
        overflow: bool,
        h: &FateHandles,
        stats: &ProxyStats,
    ) {
        let FateState::Pending(g) = *s.fate else {
            return;
        };
        let why = if overflow {
            UnknownReason::Overflow
        } else {
            UnknownReason::RunEnded
        };
        let v = decide(g, &s.view(), now, self.orphan_after).unwrap_or(Verdict::Unknown(why));
        self.settle(s, g, v, h, stats);
    }

    /// Give-ups without a fate, plus upstream answers still open that are not orphans.
    pub fn pending(&self) -> u64 {
        let n = self.undecided.load(Ordering::Relaxed) + self.unsettled.load(Ordering::Relaxed);
        u64::try_from(n).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::attempts::Output;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    const AFTER: Duration = Duration::from_millis(1000);

    fn ended(at: Instant, completed: bool) -> View {
        View {
            open: 0,
            evicted: false,
            last_end: Some((at, completed)),
        }
    }

    #[test]
    fn each_give_up_gets_the_fate_its_stamps_tell() {
        let g = Instant::now();
        let d = |v: &View, now: Instant| decide(g, v, now, AFTER);
        // Ended before the give-up: nothing to cancel, whether sent whole or cut.
        assert_eq!(
            d(&ended(g - ms(5), true), g),
            Some(Verdict::UpstreamFinished)
        );
        assert_eq!(d(&ended(g, false), g), Some(Verdict::UpstreamFinished));
        // Dropped 30 ms after: propagated in 30 ms.
        assert_eq!(
            d(&ended(g + ms(30), false), g + ms(30)),
            Some(Verdict::Propagated(ms(30)))
        );
        // Sent whole 700 ms after: not propagated, ran on 700 ms.
        assert_eq!(
            d(&ended(g + ms(700), true), g + ms(700)),
            Some(Verdict::NotPropagated(ms(700)))
        );
        // Still open: pending until orphan_after, then orphaned, sending or not.
        let open = View {
            open: 1,
            ..View::default()
        };
        assert_eq!(d(&open, g + ms(999)), None);
        assert_eq!(d(&open, g + AFTER), Some(Verdict::Orphaned));
        // Ended after orphan_after (a late look): orphaned wins over not propagated.
        assert_eq!(
            d(&ended(g + ms(1500), true), g + ms(1600)),
            Some(Verdict::Orphaned)
        );
        assert_eq!(
            d(&ended(g + ms(1000), false), g + ms(1000)),
            Some(Verdict::Orphaned)
        );
        // Never reached: unknown, once orphan_after has passed, with the reason.
        let none = View::default();
        assert_eq!(d(&none, g + ms(10)), None);
        assert_eq!(
            d(&none, g + AFTER),
            Some(Verdict::Unknown(UnknownReason::NeverReached))
        );
        let evicted = View {
            evicted: true,
            ..View::default()
        };
        assert_eq!(
            d(&evicted, g + ms(2000)),
            Some(Verdict::Unknown(UnknownReason::LeftTable))
        );
        // The decision is the same whenever it is looked at after the answer ended.
        assert_eq!(
            d(&ended(g + ms(30), false), g + ms(5000)),
            Some(Verdict::Propagated(ms(30)))
        );
    }

    fn side(t0: Instant, streamed: bool, sends: &[u64], end: u64, completed: bool) -> UpstreamSide {
        UpstreamSide {
            entry: t0,
            sends: sends.iter().map(|n| t0 + ms(*n)).collect(),
            end: t0 + ms(end),
            completed,
            output: Output {
                streamed,
                chunks: sends.len() as u32,
                unary_tokens: if streamed { 0 } else { 24 },
            },
        }
    }

    #[test]
    fn tokens_generated_after_a_give_up() {
        let t0 = Instant::now();
        let s = side(t0, true, &[100, 200, 300, 400, 500], 510, true);
        assert_eq!(generated_after(&s, t0 + ms(250)), 3);
        assert_eq!(
            generated_after(&s, t0 + ms(300)),
            2,
            "a chunk at G counts as before"
        );
        assert_eq!(generated_after(&s, t0 + ms(600)), 0);
        assert_eq!(generated_after(&s, t0), 5);
        // More chunks than stamps kept: the unstamped ones count as after.
        let mut big = s.clone();
        big.output.chunks = 9;
        assert_eq!(generated_after(&big, t0 + ms(600)), 4);
        // A unary answer: all its tokens when sent whole after G, none when dropped or
        // sent before.
        let u = side(t0, false, &[], 3000, true);
        assert_eq!(generated_after(&u, t0 + ms(200)), 24);
        assert_eq!(generated_after(&u, t0 + ms(3000)), 0);
        let cut = side(t0, false, &[], 3000, false);
        assert_eq!(generated_after(&cut, t0 + ms(200)), 0);
    }

    #[test]
    fn sweeps_come_often_but_not_too_often() {
        assert_eq!(sweep_interval(Duration::from_secs(5)), ms(100));
        assert_eq!(sweep_interval(Duration::from_secs(1)), ms(50));
        assert_eq!(sweep_interval(ms(50)), ms(10));
    }

    #[test]
    fn the_not_propagated_ratio_leaves_out_what_had_nothing_to_cancel() {
        let g = GiveUps {
            propagated: 6,
            upstream_finished: 10,
            not_propagated: 3,
            orphaned: 1,
            unknown: 5,
            ..GiveUps::default()
        };
        assert_eq!(g.total(), 25);
        assert_eq!(g.not_propagated_ratio(), Some(0.4));
        assert_eq!(GiveUps::default().not_propagated_ratio(), None);
    }
}
