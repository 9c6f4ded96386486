//! The weather once a second and at the end of load: which storms blow, each occurrence's
//! RSS before and after, recovery judgements and `soakd_proxy_recovery_seconds`; and what is
//! read from it: the report and the page's bands.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::recovery::{Outcome, Recovery};
use super::report::{
    ratio, AmplificationReport, GhostReport, OccurrenceReport, RetryAfterReport, StormTotals,
    WeatherReport,
};
use super::state::{self, StormState};
use super::timeline::{self, Position};
use super::{lock, Storm, StormSpec, Weather};
use crate::stats::Percentiles;
use crate::upstream::retries::AttemptHandles;

impl Weather {
    fn rss_now(&self) -> Vec<(String, f64)> {
        use prometheus::core::Collector;
        let mut out = Vec::new();
        for mf in self.rss.collect() {
            for m in mf.get_metric() {
                if let Some(p) = m.get_label().iter().find(|l| l.name() == "process") {
                    out.push((p.value().to_string(), m.get_gauge().get_value()));
                }
            }
        }
        out
    }

    /// Once a second: the active gauges, occurrences, RSS readings, recovery judgements.
    pub fn tick(&self, now: Instant) {
        if self.storms.is_empty() {
            return;
        }
        let ended = self.load_end.get().copied();
        let now = ended.map_or(now, |e| now.min(e));
        let ended = ended.is_some();
        let Some(t) = self.offset(now) else { return };
        let rss = self.rss_now();
        let blowing: Vec<bool> = self
            .storms
            .iter()
            .map(|s| timeline::occurrence_at(&s.spec, t).is_some())
            .collect();
        for (i, st) in self.storms.iter().enumerate() {
            let spec = &st.spec;
            let pos = timeline::position(spec, t);
            st.active
                .set(i64::from(matches!(pos, Position::During(_)) && !ended));
            let mut s = lock(&st.state);
            match pos {
                Position::Before => s.rss_last.clone_from(&rss),
                Position::During(k) => {
                    let before = s.rss_last.clone();
                    if let Some(o) = s.occurrence(k) {
                        o.rss_before.get_or_insert(before.clone());
                        if ended {
                            o.recovery = Outcome::Never;
                            o.rss_after.get_or_insert_with(|| rss.clone());
                        }
                    }
                    if let Some(p) = k.checked_sub(1) {
                        if let Some(o) = s.occurrence(p) {
                            o.rss_after.get_or_insert(before);
                        }
                        if let Some(r) = workspace(spec, &mut s, p) {
                            r.judge(gap(spec, p, k), true);
                        }
                        s.settle_current();
                    }
                }
                Position::After(k, since) => {
                    let other = blowing.iter().enumerate().any(|(j, b)| j != i && *b);
                    if since >= self.settle || other || ended {
                        if let Some(o) = s.occurrence(k) {
                            o.rss_after.get_or_insert_with(|| rss.clone());
                        }
                    }
                    if let Some(r) = workspace(spec, &mut s, k) {
                        r.judge(since.as_secs_f64(), ended);
                    }
                    s.settle_current();
                    s.rss_last.clone_from(&rss);
                }
            }
            self.publish_recovery(st, &s, pos);
        }
    }

    fn publish_recovery(&self, st: &Storm, s: &StormState, pos: Position) {
        let Some(r) = &s.recovery else { return };
        let value = match (r.outcome, pos) {
            (Outcome::Recovered(secs), _) => secs,
            (Outcome::Never, _) => f64::INFINITY,
            (Outcome::Pending, Position::After(k, since)) if k == r.k => since.as_secs_f64(),
            _ => return,
        };
        self.recovery.with_label_values(&[&st.spec.name]).set(value);
    }

    /// The load stopped sending `sending` after its start (called once every request has
    /// finished): a last judgement up to that instant, and every open watch is closed.
    pub fn end_load(&self, sending: Duration) {
        let Some(start) = self.load.get() else { return };
        let at = *start + sending;
        let _ = self.load_end.set(at);
        self.tick(at);
    }

    /// The report: amplification, ghosts, Retry-After, every kept occurrence and the totals.
    pub fn report(&self) -> WeatherReport {
        let (all_req, all_att) = self.all.get();
        let (storm_req, storm_att) = self.in_storms.get();
        let (fair_req, fair_att) = self.fair.get();
        let sum = |f: fn(&AttemptHandles) -> u64| self.handles.iter().map(f).sum::<u64>();
        let mut out = WeatherReport {
            amplification: AmplificationReport {
                overall: ratio(all_att, all_req),
                client_requests: all_req,
                upstream_requests: all_att,
                in_storms: ratio(storm_att, storm_req),
                storm_client_requests: storm_req,
                storm_upstream_requests: storm_att,
                fair_weather: ratio(fair_att, fair_req),
                fair_client_requests: fair_req,
                fair_upstream_requests: fair_att,
            },
            ghost_attempts: GhostReport {
                total: sum(|h| h.ghosts.get()) + self.expired_ghosts.get(),
                delay_unknown: self.ghost_unknown.load(Ordering::Relaxed),
                delay: Percentiles::of_micros(&lock(&self.ghost_delays)),
            },
            retry_after: RetryAfterReport {
                honoured: sum(|h| h.ra_honoured.get()),
                violations: sum(|h| h.ra_violations.get()),
            },
            ..WeatherReport::default()
        };
        let now = self.load_end.get().copied().unwrap_or_else(Instant::now);
        let t = self.offset(now);
        for st in &self.storms {
            let s = lock(&st.state);
            let started = t
                .and_then(|t| timeline::last_started(&st.spec, t))
                .map_or(0, |k| k + 1)
                .max(s.kept.back().map_or(0, |o| o.k + 1));
            for o in &s.kept {
                let (a, b) = timeline::bounds(&st.spec, o.k);
                out.storms.push(OccurrenceReport::new(
                    &st.spec.name,
                    o,
                    (a.as_secs_f64(), b.as_secs_f64()),
                ));
            }
            out.storm_totals.push(StormTotals::new(
                &st.spec.name,
                st.spec.fault.kind().as_str(),
                started,
                s.dropped,
                &s.totals,
            ));
        }
        out.storms
            .sort_by(|a, b| a.start_secs.total_cmp(&b.start_secs));
        out
    }

    /// Calls `f(storm, from, to)` for the last kept occurrences of each storm up to `now`,
    /// with `from` and `to` in Unix seconds (`now_unix` being `now`): the page's storm bands.
    pub fn each_span(&self, now: Instant, now_unix: f64, mut f: impl FnMut(&str, f64, f64)) {
        let Some(now_t) = self.offset(now) else {
            return;
        };
        let unix = |d: Duration| now_unix - (now_t.as_secs_f64() - d.as_secs_f64());
        let t = match self.load_end.get() {
            Some(e) => now_t.min(e.saturating_duration_since(*self.load.get().unwrap_or(e))),
            None => now_t,
        };
        for st in &self.storms {
            let Some(last) = timeline::last_started(&st.spec, t) else {
                continue;
            };
            let first = last.saturating_sub(state::MAX_KEPT as u64 - 1);
            for k in first..=last {
                let (a, b) = timeline::bounds(&st.spec, k);
                f(&st.spec.name, unix(a), unix(b.min(t)));
            }
        }
    }
}

/// Seconds from the end of occurrence `old` to the start of `new`.
fn gap(spec: &StormSpec, old: u64, new: u64) -> f64 {
    timeline::bounds(spec, new)
        .0
        .saturating_sub(timeline::bounds(spec, old).1)
        .as_secs_f64()
}

/// The recovery workspace of occurrence `k`; an older one is closed (judged up to `k`'s
/// start, then never recovered if still pending) and settled first.
pub(super) fn workspace<'a>(
    spec: &StormSpec,
    s: &'a mut StormState,
    k: u64,
) -> Option<&'a mut Recovery> {
    s.recovery(k, |old| old.judge(gap(spec, old.k, k), true))
}
