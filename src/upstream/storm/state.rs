//! One storm's bookkeeping: its occurrences (the last [`MAX_KEPT`], plus totals over all of
//! them), the baseline gathered for its next occurrence, the recovery workspace of its latest
//! one, and the RSS readings around it.

use std::collections::VecDeque;

use super::recovery::{Outcome, Recovery, Sample};

/// Occurrences of one storm kept for the summary; older ones are only in the totals.
pub const MAX_KEPT: usize = 64;

/// What happened through one storm occurrence (or all of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Client requests of the storm's scenarios sent during it.
    pub client_requests: u64,
    /// Upstream attempts for those requests (ghosts included).
    pub upstream_requests: u64,
    /// Faults the storm injected during it.
    pub upstream_faults: u64,
    /// Those requests whose client saw an error.
    pub client_errors: u64,
    /// Those requests that finished (not cancelled) after one of their attempts met one of
    /// the storm's faults; `masked` of them still succeeded, `passed` did not.
    pub faulted: u64,
    pub masked: u64,
    pub passed: u64,
    pub ghost_attempts: u64,
    pub retry_after_honoured: u64,
    pub retry_after_violations: u64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.client_requests += o.client_requests;
        self.upstream_requests += o.upstream_requests;
        self.upstream_faults += o.upstream_faults;
        self.client_errors += o.client_errors;
        self.faulted += o.faulted;
        self.masked += o.masked;
        self.passed += o.passed;
        self.ghost_attempts += o.ghost_attempts;
        self.retry_after_honoured += o.retry_after_honoured;
        self.retry_after_violations += o.retry_after_violations;
    }
}

/// A watched process's RSS around one occurrence.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcRss {
    pub process: String,
    pub before: Option<f64>,
    pub after: Option<f64>,
}

/// One occurrence.
#[derive(Debug, Clone)]
pub struct Occurrence {
    pub k: u64,
    pub counts: Counts,
    pub recovery: Outcome,
    /// Set once: the readings just before it started.
    pub rss_before: Option<Vec<(String, f64)>>,
    /// Set once: the readings `burst_settle` after its end (or sooner, see the module docs
    /// of [`super`]).
    pub rss_after: Option<Vec<(String, f64)>>,
}

impl Occurrence {
    fn new(k: u64) -> Self {
        Occurrence {
            k,
            counts: Counts::default(),
            recovery: Outcome::Pending,
            rss_before: None,
            rss_after: None,
        }
    }

    /// Each watched process's RSS before and after.
    pub fn rss(&self) -> Vec<ProcRss> {
        let mut out: Vec<ProcRss> = Vec::new();
        for (p, v) in self.rss_before.iter().flatten() {
            out.push(ProcRss {
                process: p.clone(),
                before: Some(*v),
                after: None,
            });
        }
        for (p, v) in self.rss_after.iter().flatten() {
            match out.iter_mut().find(|r| r.process == *p) {
                Some(r) => r.after = Some(*v),
                None => out.push(ProcRss {
                    process: p.clone(),
                    before: None,
                    after: Some(*v),
                }),
            }
        }
        out
    }
}

/// The mutable state of one storm.
#[derive(Debug, Default)]
pub struct StormState {
    pub kept: VecDeque<Occurrence>,
    /// Occurrences no longer kept.
    pub dropped: u64,
    pub totals: Counts,
    /// The baseline gathered for occurrence `.0`.
    pub baseline: Option<(u64, Sample)>,
    pub recovery: Option<Recovery>,
    /// The latest RSS readings taken outside the storm.
    pub rss_last: Vec<(String, f64)>,
}

impl StormState {
    /// Occurrence `k`, created when it is newer than every kept one (or fits between them);
    /// `None` when it is older than the kept ones.
    pub fn occurrence(&mut self, k: u64) -> Option<&mut Occurrence> {
        let at = self.kept.iter().position(|o| o.k >= k);
        match at {
            Some(i) if self.kept[i].k == k => return self.kept.get_mut(i),
            Some(0) if self.kept.len() >= MAX_KEPT => return None,
            Some(i) => self.kept.insert(i, Occurrence::new(k)),
            None => self.kept.push_back(Occurrence::new(k)),
        }
        if self.kept.len() > MAX_KEPT {
            self.kept.pop_front();
            self.dropped += 1;
        }
        let i = self.kept.iter().position(|o| o.k == k)?;
        self.kept.get_mut(i)
    }

    /// Counts `f` in occurrence `k` (when kept) and in the totals.
    pub fn count(&mut self, k: u64, f: impl Fn(&mut Counts)) {
        f(&mut self.totals);
        if let Some(o) = self.occurrence(k) {
            f(&mut o.counts);
        }
    }

    /// The baseline sample for occurrence `k`, started afresh when `k` is newer; `None` for
    /// an older occurrence's late finisher.
    pub fn baseline(&mut self, k: u64) -> Option<&mut Sample> {
        match &self.baseline {
            Some((have, _)) if *have > k => return None,
            Some((have, _)) if *have == k => {}
            _ => self.baseline = Some((k, Sample::default())),
        }
        self.baseline.as_mut().map(|(_, s)| s)
    }

    /// The recovery workspace of occurrence `k`, created (against its baseline) when `k` is
    /// newer than the current one, whose outcome is then settled by `close`.
    pub fn recovery(&mut self, k: u64, close: impl FnOnce(&mut Recovery)) -> Option<&mut Recovery> {
        match &mut self.recovery {
            Some(r) if r.k > k => return None,
            Some(r) if r.k == k => {}
            _ => {
                if let Some(mut old) = self.recovery.take() {
                    close(&mut old);
                    self.settle(&old);
                }
                let base = match &self.baseline {
                    Some((b, s)) if *b == k => *s,
                    _ => Sample::default(),
                };
                self.recovery = Some(Recovery::new(k, &base));
            }
        }
        self.recovery.as_mut()
    }

    /// Copies the current workspace's outcome into its occurrence.
    pub fn settle_current(&mut self) {
        if let Some(r) = self.recovery.take() {
            self.settle(&r);
            self.recovery = Some(r);
        }
    }

    /// Copies a recovery's outcome into its occurrence.
    pub fn settle(&mut self, r: &Recovery) {
        if let Some(o) = self.occurrence(r.k) {
            o.recovery = r.outcome;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_occurrences_are_kept_and_totals_cover_all() {
        let mut s = StormState::default();
        for k in 0..(MAX_KEPT as u64 + 10) {
            s.count(k, |c| c.client_requests += 2);
        }
        assert_eq!(s.kept.len(), MAX_KEPT);
        assert_eq!(s.dropped, 10);
        assert_eq!(s.kept.front().unwrap().k, 10);
        assert_eq!(s.totals.client_requests, 2 * (MAX_KEPT as u64 + 10));
        // A late event for a dropped occurrence only counts in the totals.
        s.count(3, |c| c.ghost_attempts += 1);
        assert_eq!(s.totals.ghost_attempts, 1);
        assert!(s.kept.iter().all(|o| o.counts.ghost_attempts == 0));
        // One that was skipped, between kept ones, is inserted in order.
        let mut g = StormState::default();
        g.count(0, |_| {});
        g.count(2, |_| {});
        g.count(1, |_| {});
        let ks: Vec<u64> = g.kept.iter().map(|o| o.k).collect();
        assert_eq!(ks, [0, 1, 2]);
    }

    #[test]
    fn a_new_recovery_settles_the_previous_one() {
        let mut s = StormState::default();
        s.occurrence(0);
        s.occurrence(1);
        s.baseline(0).unwrap().add(false, Some(0.05), Some(0.001));
        assert_eq!(s.recovery(0, |_| {}).unwrap().outcome, Outcome::Pending);
        assert!(s.baseline(0).is_some());
        s.recovery(1, |r| r.judge(100.0, true));
        assert_eq!(s.kept[0].recovery, Outcome::Never);
        assert_eq!(
            s.recovery.as_ref().unwrap().outcome,
            Outcome::NoBaseline,
            "no baseline was gathered for occurrence 1"
        );
        assert!(
            s.recovery(0, |_| {}).is_none(),
            "older than the current one"
        );
    }
}
