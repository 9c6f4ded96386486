//! Foul weather: storms of faults on soakd's upstream (`[[upstream.storms]]`), and what the
//! proxy did through each.
//!
//! # Storms
//! A storm runs from `start` (after the start of load) for `duration`, again every `every`
//! when set ([`timeline`]); while it runs, the in-process upstream hits each request it
//! receives, with probability `rate`, by its `kind` ([`settings::StormFault`], injected
//! through the mock's tap: [`crate::mock::Injected`]); `refuse` closes new connections at
//! accept instead. Storms that overlap hit a request with the first one (in file order) whose
//! dice say so. A storm's `scenarios`/`apis` filters pick the requests it can hit; the mock's
//! constant `[mock]` fault rates keep applying outside storms. Visible as
//! `soakd_upstream_storm_active{storm}` (updated once a second), in
//! `soakd_upstream_faults_total{storm,kind}` (the constant rates with `storm=""`), and as
//! bands on the page's and the report's time charts.
//!
//! # What the proxy did through each
//! A client request belongs to an occurrence of a storm when it was sent during it and is of
//! the storm's scenarios; everything it causes is counted there, whenever it happens:
//! its upstream attempts (ghosts included), the faults they met, whether its client saw a
//! success or an error, `Retry-After` honoured or violated ([`super::attempts`]). Requests
//! that belong to no storm are the fair weather. Masking: among the requests of an occurrence
//! that finished (not cancelled) after an attempt met one of the storm's faults, `masked` got
//! a success and `passed` an error (three failed attempts are passed). Recovery: [`recovery`]
//! has the rule; `soakd_proxy_recovery_seconds{storm}` shows the latest occurrence's: the
//! time since its end while still watched, the recovery time once recovered, `+Inf` when it
//! never recovered. RSS of each watched process (read from `soakd_process_resident_memory_bytes`
//! once a second) just before an occurrence and `[monitor] burst_settle` after its end (or at
//! the start of any storm, or the end of load, if sooner): what the storm left behind.
//!
//! # Memory
//! Fixed per storm: the last [`state::MAX_KEPT`] occurrences (older ones only in the totals,
//! `storm_totals[].not_listed` counts them), one baseline and one recovery workspace; per
//! request, a [`super::retries::LinkWeather`] on its link; the finished-request cache and
//! one ghost-delay histogram for the run.

pub mod recovery;
pub mod report;
pub mod settings;
pub mod state;
pub mod timeline;
mod watch;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use prometheus::{GaugeVec, IntCounter, IntGauge};

use super::retries::{stamp, unstamp, AttemptHandles, Finished, LinkWeather, Recent, RunIds};
use crate::metrics::Metrics;
use crate::mock::{Fault, Injected};
#[cfg(test)]
use recovery::{Outcome, Recovery};
use settings::FaultKind;
pub use settings::{check_against_run, RawStorm, ScenarioShape, StormFault, StormSpec};
use state::StormState;
use timeline::{Dice, Position};
use watch::workspace;

/// A storm and its handles.
struct Storm {
    spec: StormSpec,
    active: IntGauge,
    faults: IntCounter,
    state: Mutex<StormState>,
}

/// Requests and their attempts.
#[derive(Default)]
struct Pair {
    requests: AtomicU64,
    attempts: AtomicU64,
}

impl Pair {
    fn get(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.attempts.load(Ordering::Relaxed),
        )
    }
}

/// How a client request ended, for masking and recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientResult {
    Ok,
    Error,
    Cancelled,
}

/// An upstream request whose id no link in the table has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stray {
    /// A recently finished request of this scenario: a ghost, its delay known.
    Finished(usize),
    /// An older request of this run: a ghost, its delay unknown.
    Expired,
    /// Not this run's.
    Foreign,
}

/// The storms of a run and the attempt measures.
pub struct Weather {
    epoch: Instant,
    load: OnceLock<Instant>,
    load_end: OnceLock<Instant>,
    storms: Vec<Storm>,
    /// Per scenario: the storms whose filters pick it (bit i: storm i).
    scenario_masks: Vec<u64>,
    /// Per endpoint: the storms that hit requests soakd does not follow there (no scenario
    /// filter; an `apis` filter that names the endpoint's API).
    endpoint_masks: [u64; 5],
    all: Pair,
    in_storms: Pair,
    fair: Pair,
    handles: Vec<AttemptHandles>,
    expired_requests: IntCounter,
    expired_ghosts: IntCounter,
    ghost_unknown: AtomicU64,
    ghost_delays: Mutex<Histogram<u64>>,
    recent: Recent,
    ids: RunIds,
    dice: Dice,
    constant: Vec<IntCounter>,
    rss: GaugeVec,
    /// `soakd_proxy_recovery_seconds`: a storm's child appears once it has a value.
    recovery: GaugeVec,
    settle: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The indices of the set bits of `mask`, lowest first.
fn bits(mut mask: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let i = mask.trailing_zeros();
        mask &= mask.wrapping_sub(1);
        (i < 64).then_some(i as usize)
    })
}

impl Weather {
    /// The weather of a run with these scenarios (engine order) and `storms`; `epoch` is the
    /// tracker's, `salt` its id salt, `settle` the monitor's `burst_settle`.
    pub fn new(
        m: &Metrics,
        scenarios: &[ScenarioShape],
        storms: Vec<StormSpec>,
        (epoch, salt): (Instant, u64),
        recent_capacity: usize,
        settle: Duration,
    ) -> Self {
        let mut scenario_masks = vec![0u64; scenarios.len()];
        let mut endpoint_masks = [0u64; 5];
        for (i, s) in storms.iter().enumerate() {
            for (sc, mask) in scenarios.iter().zip(&mut scenario_masks) {
                if s.matches(sc) {
                    *mask |= 1 << i;
                }
            }
            if s.scenarios.is_none() {
                for ((api, _), mask) in settings::APIS.iter().zip(&mut endpoint_masks) {
                    if s.apis.as_ref().is_none_or(|a| a.contains(api)) {
                        *mask |= 1 << i;
                    }
                }
            }
        }
        let storms: Vec<Storm> = storms
            .into_iter()
            .map(|spec| {
                let kind = spec.fault.kind().as_str();
                Storm {
                    active: m.upstream_storm_active.with_label_values(&[&spec.name]),
                    faults: m
                        .upstream_faults_total
                        .with_label_values(&[&spec.name, kind]),
                    spec,
                    state: Mutex::new(StormState::default()),
                }
            })
            .collect();
        Weather {
            epoch,
            load: OnceLock::new(),
            load_end: OnceLock::new(),
            storms,
            scenario_masks,
            endpoint_masks,
            all: Pair::default(),
            in_storms: Pair::default(),
            fair: Pair::default(),
            handles: scenarios
                .iter()
                .map(|s| AttemptHandles::new(m, &s.name))
                .collect(),
            expired_requests: m
                .upstream_requests_total
                .with_label_values(&[super::retries::EXPIRED]),
            expired_ghosts: m
                .proxy_ghost_attempts_total
                .with_label_values(&[super::retries::EXPIRED]),
            ghost_unknown: AtomicU64::new(0),
            ghost_delays: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("static histogram bounds"),
            ),
            recent: Recent::new(recent_capacity),
            ids: RunIds { salt },
            dice: Dice::new(salt.rotate_left(17)),
            constant: FaultKind::ALL
                .iter()
                .map(|k| m.upstream_faults_total.with_label_values(&["", k.as_str()]))
                .collect(),
            rss: m.process_resident_memory_bytes.clone(),
            recovery: m.proxy_recovery_seconds.clone(),
            settle,
        }
    }

    /// The instant the stamps count from.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// The configured storms.
    pub fn specs(&self) -> impl Iterator<Item = &StormSpec> {
        self.storms.iter().map(|s| &s.spec)
    }

    /// The load starts now: storm times count from here.
    pub fn start_load(&self, at: Instant) {
        let _ = self.load.set(at);
    }

    fn offset(&self, at: Instant) -> Option<Duration> {
        self.load.get().map(|l| at.saturating_duration_since(*l))
    }

    /// A client request of `scenario` is sent at `send`: its storms, counted.
    pub fn open(&self, scenario: usize, send: Instant) -> LinkWeather {
        self.all.requests.fetch_add(1, Ordering::Relaxed);
        let Some(t) = self.offset(send).filter(|_| !self.storms.is_empty()) else {
            self.fair.requests.fetch_add(1, Ordering::Relaxed);
            return LinkWeather::default();
        };
        let mask = self.membership(scenario, send);
        for i in bits(self.scenario_mask(scenario)) {
            let st = &self.storms[i];
            match timeline::position(&st.spec, t) {
                Position::During(k) => {
                    lock(&st.state).count(k, |c| c.client_requests += 1);
                }
                // Recovery is judged on fair-weather requests only (in no storm at all).
                Position::After(k, since) if mask == 0 => {
                    let mut s = lock(&st.state);
                    if let Some(r) = workspace(&st.spec, &mut s, k) {
                        r.sent(since.as_secs() as u32);
                    }
                }
                Position::After(..) | Position::Before => {}
            }
        }
        let pair = if mask == 0 {
            &self.fair
        } else {
            &self.in_storms
        };
        pair.requests.fetch_add(1, Ordering::Relaxed);
        LinkWeather::new(mask)
    }

    fn scenario_mask(&self, scenario: usize) -> u64 {
        self.scenario_masks.get(scenario).copied().unwrap_or(0)
    }

    /// Counts one attempt of a request of `storms` sent at `send`.
    fn count_attempt(&self, storms: u64, send: Instant) {
        self.all.attempts.fetch_add(1, Ordering::Relaxed);
        let pair = if storms == 0 {
            &self.fair
        } else {
            &self.in_storms
        };
        pair.attempts.fetch_add(1, Ordering::Relaxed);
        self.each_occurrence(storms, send, |c| c.upstream_requests += 1);
    }

    /// Applies `f` to the occurrence each storm of `storms` had at `send`.
    fn each_occurrence(&self, storms: u64, send: Instant, f: impl Fn(&mut state::Counts)) {
        if storms == 0 {
            return;
        }
        let Some(t) = self.offset(send) else { return };
        for i in bits(storms) {
            let Some(st) = self.storms.get(i) else {
                continue;
            };
            if let Some(k) = timeline::occurrence_at(&st.spec, t) {
                lock(&st.state).count(k, &f);
            }
        }
    }

    /// An attempt for a tracked request entered at `entry`.
    pub fn attempt(&self, scenario: usize, send: Instant, w: &LinkWeather, entry: Instant) {
        let at = stamp(self.epoch, entry);
        let _ = w
            .first_entry
            .compare_exchange(0, at, Ordering::Relaxed, Ordering::Relaxed);
        self.count_attempt(w.storms, send);
        let end = w.client_end.load(Ordering::Relaxed);
        if end > 0 && at > end {
            self.ghost(scenario, w.storms, send, Some(at - end));
        }
        if let Some((ra_at, secs)) = w.take_retry_after() {
            self.judge_retry_after(scenario, w.storms, send, at.saturating_sub(ra_at), secs);
        }
    }

    /// An attempt for an id no link has, entered at `entry`; `issued` ids so far.
    pub fn stray(&self, id: u64, entry: Instant, issued: u64) -> Stray {
        let at = stamp(self.epoch, entry);
        if let Some(f) = self.recent.get(id) {
            let scenario = f.scenario as usize;
            let Some(send) = unstamp(self.epoch, f.send) else {
                return Stray::Foreign;
            };
            let storms = self.membership(scenario, send);
            self.count_attempt(storms, send);
            self.ghost(scenario, storms, send, Some(at.saturating_sub(f.end)));
            if f.ra_at > 0 {
                self.recent.put(Finished { ra_at: 0, ..f });
                self.judge_retry_after(
                    scenario,
                    storms,
                    send,
                    at.saturating_sub(f.ra_at),
                    f.ra_secs,
                );
            }
            return Stray::Finished(scenario);
        }
        if self.ids.index(id) < issued {
            self.all.attempts.fetch_add(1, Ordering::Relaxed);
            self.expired_requests.inc();
            self.expired_ghosts.inc();
            self.ghost_unknown.fetch_add(1, Ordering::Relaxed);
            return Stray::Expired;
        }
        Stray::Foreign
    }

    /// The storms a request of `scenario` sent at `send` belongs to.
    fn membership(&self, scenario: usize, send: Instant) -> u64 {
        let Some(t) = self.offset(send) else { return 0 };
        bits(self.scenario_mask(scenario))
            .filter(|&i| timeline::occurrence_at(&self.storms[i].spec, t).is_some())
            .fold(0, |m, i| m | 1 << i)
    }

    fn ghost(&self, scenario: usize, storms: u64, send: Instant, nanos: Option<u64>) {
        if let Some(h) = self.handles.get(scenario) {
            h.ghosts.inc();
        }
        if let Some(n) = nanos {
            let micros = (n / 1000).clamp(1, 3_600_000_000);
            lock(&self.ghost_delays).saturating_record(micros);
        }
        self.each_occurrence(storms, send, |c| c.ghost_attempts += 1);
    }

    fn judge_retry_after(
        &self,
        scenario: usize,
        storms: u64,
        send: Instant,
        waited: u64,
        secs: u32,
    ) {
        let honoured = waited >= u64::from(secs) * 1_000_000_000;
        if let Some(h) = self.handles.get(scenario) {
            if honoured {
                h.ra_honoured.inc();
            } else {
                h.ra_violations.inc();
            }
        }
        self.each_occurrence(storms, send, |c| {
            if honoured {
                c.retry_after_honoured += 1;
            } else {
                c.retry_after_violations += 1;
            }
        });
    }

    /// The client side of a tracked request ended at `end`, `how`, with `attempts` made by
    /// then.
    pub fn client_done(
        &self,
        scenario: usize,
        send: Instant,
        w: &LinkWeather,
        end: Instant,
        (how, attempts): (ClientResult, u32),
    ) {
        w.client_end
            .store(stamp(self.epoch, end), Ordering::Relaxed);
        if let Some(h) = self.handles.get(scenario) {
            h.attempts.observe(f64::from(attempts));
        }
        let Some(t) = self.offset(send).filter(|_| !self.storms.is_empty()) else {
            return;
        };
        let error = how == ClientResult::Error;
        let latency = (how != ClientResult::Cancelled)
            .then(|| end.saturating_duration_since(send).as_secs_f64());
        let added = unstamp(self.epoch, w.first_entry.load(Ordering::Relaxed))
            .map(|e| e.saturating_duration_since(send).as_secs_f64());
        let faulted = w.faulted.load(Ordering::Relaxed);
        for i in bits(self.scenario_mask(scenario)) {
            let st = &self.storms[i];
            let mut s = lock(&st.state);
            if w.storms & (1 << i) != 0 {
                let Some(k) = timeline::occurrence_at(&st.spec, t) else {
                    continue;
                };
                s.count(k, |c| {
                    c.client_errors += u64::from(error);
                    if faulted & (1 << i) != 0 && how != ClientResult::Cancelled {
                        c.faulted += 1;
                        c.masked += u64::from(!error);
                        c.passed += u64::from(error);
                    }
                });
                continue;
            }
            if w.storms != 0 {
                // In another storm: neither recovery nor baseline, which are fair weather.
                continue;
            }
            let next = match timeline::position(&st.spec, t) {
                Position::During(_) => continue,
                Position::Before => Some(0),
                Position::After(k, since) => {
                    if let Some(r) = workspace(&st.spec, &mut s, k) {
                        r.finished(since.as_secs() as u32, error, latency, added);
                    }
                    st.spec.every.map(|_| k + 1)
                }
            };
            let in_baseline = timeline::next_start(&st.spec, t)
                .is_some_and(|n| n.saturating_sub(t) <= recovery::BASELINE);
            if let (Some(k), true) = (next, in_baseline) {
                if let Some(b) = s.baseline(k) {
                    b.add(error, latency, added);
                }
            }
        }
    }

    /// A tracked request left the table: keep what a late attempt needs.
    pub fn retire(&self, id: u64, scenario: usize, send: Instant, w: &LinkWeather) {
        let (ra_at, ra_secs) = match w.take_retry_after() {
            Some((at, secs)) => (at, secs),
            None => (0, 0),
        };
        self.recent.put(Finished {
            id,
            send: stamp(self.epoch, send),
            end: w.client_end.load(Ordering::Relaxed).max(1),
            scenario: scenario as u32,
            ra_at,
            ra_secs,
        });
    }

    /// The fault to inject now into an attempt for a request of `scenario` (`None`: one soakd
    /// does not follow) on `endpoint`, if a storm hits it. The request's record notes the
    /// storm's fault, and the `Retry-After` it sends.
    pub fn inject(
        &self,
        request: Option<(usize, &LinkWeather)>,
        endpoint: &str,
        now: Instant,
    ) -> Option<Injected> {
        let (storm, injected) = self.decide(request.map(|(s, _)| s), endpoint, now)?;
        if let Some((_, w)) = request {
            w.faulted.fetch_or(1 << storm, Ordering::Relaxed);
            if let Injected::Status {
                retry_after: Some(secs),
                ..
            } = injected
            {
                w.retry_after(stamp(self.epoch, now), secs);
            }
        }
        Some(injected)
    }

    /// The mock's own dice injected `fault` (counted with `storm=""`) into an attempt for
    /// `request` (when followed), sent with `Retry-After: retry_after` when set.
    pub fn faulted(
        &self,
        request: Option<&LinkWeather>,
        fault: Fault,
        retry_after: Option<u32>,
        now: Instant,
    ) {
        self.constant_fault(fault);
        if let (Some(w), Some(secs)) = (request, retry_after) {
            w.retry_after(stamp(self.epoch, now), secs);
        }
    }

    fn decide(
        &self,
        scenario: Option<usize>,
        endpoint: &str,
        now: Instant,
    ) -> Option<(usize, Injected)> {
        let t = self.offset(now)?;
        let candidates = match scenario {
            Some(s) => self.scenario_mask(s),
            None => settings::APIS
                .iter()
                .position(|(_, e)| *e == endpoint)
                .map_or(0, |i| self.endpoint_masks[i]),
        };
        for i in bits(candidates) {
            let st = &self.storms[i];
            let injected = match st.spec.fault {
                StormFault::Refuse => continue,
                StormFault::Status {
                    status,
                    retry_after,
                } => Injected::Status {
                    status,
                    retry_after,
                },
                StormFault::Slow(d) => Injected::Slow(d),
                StormFault::Stall => Injected::Stall,
                StormFault::Reset { after_chunks } => Injected::Reset { after_chunks },
            };
            let Some(k) = timeline::occurrence_at(&st.spec, t) else {
                continue;
            };
            if self.dice.chance(st.spec.rate) {
                st.faults.inc();
                lock(&st.state).count(k, |c| c.upstream_faults += 1);
                return Some((i, injected));
            }
        }
        None
    }

    /// Whether a new connection accepted now may stay open (no `refuse` storm hits it).
    pub fn accept(&self, now: Instant) -> bool {
        let Some(t) = self.offset(now) else {
            return true;
        };
        for st in self
            .storms
            .iter()
            .filter(|s| s.spec.fault == StormFault::Refuse)
        {
            let Some(k) = timeline::occurrence_at(&st.spec, t) else {
                continue;
            };
            if self.dice.chance(st.spec.rate) {
                st.faults.inc();
                lock(&st.state).count(k, |c| c.upstream_faults += 1);
                return false;
            }
        }
        true
    }

    fn constant_fault(&self, fault: Fault) {
        let kind = match fault {
            Fault::Error => FaultKind::Status,
            Fault::ErrorEvent => FaultKind::ErrorEvent,
            Fault::Truncate => FaultKind::Truncate,
            Fault::Stall => FaultKind::Stall,
            Fault::Garbage => FaultKind::Garbage,
            Fault::None | Fault::BadRequest => return,
        };
        self.constant[kind.index()].inc();
    }
}

/// For tests: a recovery workspace's outcome, by storm name.
#[cfg(test)]
impl Weather {
    fn outcomes(&self, name: &str) -> Vec<Outcome> {
        let st = self.storms.iter().find(|s| s.spec.name == name).unwrap();
        let s = lock(&st.state);
        s.kept.iter().map(|o| o.recovery).collect()
    }

    fn recovery_k(&self, name: &str) -> Option<u64> {
        let st = self.storms.iter().find(|s| s.spec.name == name).unwrap();
        lock(&st.state).recovery.as_ref().map(|r: &Recovery| r.k)
    }
}

#[cfg(test)]
mod tests;
