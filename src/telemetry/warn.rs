//! Rate-limited warnings: at most one log line per cause per window, with the count of the
//! ones held back.
//!
//! A soak at thousands of requests a second must not write a line per failed request, and a
//! process that stays unreadable must not write a line per sample. Each caller numbers its
//! causes (a request's outcome, a sampling error's kind) and asks [`WarnLimiter::admit`]
//! before logging: the first occurrence of a cause is logged at once, later ones at most once
//! per window, each carrying how many were suppressed since. Different causes have separate
//! budgets, so a new kind of failure always shows at once. Lock-free: one limiter is shared
//! by every worker of a scenario.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const NEVER: u64 = u64::MAX;

/// At most one admitted warning per cause per window.
#[derive(Debug)]
pub struct WarnLimiter {
    epoch: Instant,
    window_ms: u64,
    last_ms: Box<[AtomicU64]>,
    suppressed: Box<[AtomicU64]>,
}

impl WarnLimiter {
    /// A limiter for causes `0..causes`, one warning per cause per `window`.
    pub fn new(causes: usize, window: Duration) -> Self {
        WarnLimiter {
            epoch: Instant::now(),
            window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
            last_ms: (0..causes).map(|_| AtomicU64::new(NEVER)).collect(),
            suppressed: (0..causes).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Decides for cause `cause` now: `Some(n)` to log it, with `n` warnings of that cause
    /// suppressed since the last logged one; `None` to stay quiet (it is counted).
    pub fn admit(&self, cause: usize) -> Option<u64> {
        let now_ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(NEVER - 1);
        self.admit_at(cause, now_ms)
    }

    /// [`WarnLimiter::admit`] at `now_ms`, milliseconds since the limiter was made. A cause
    /// out of range is always admitted.
    pub fn admit_at(&self, cause: usize, now_ms: u64) -> Option<u64> {
        let (Some(last_slot), Some(suppressed)) =
            (self.last_ms.get(cause), self.suppressed.get(cause))
        else {
            return Some(0);
        };
        let last = last_slot.load(Ordering::Relaxed);
        let due = last == NEVER || now_ms.saturating_sub(last) >= self.window_ms;
        if due
            && last_slot
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(suppressed.swap(0, Ordering::Relaxed));
        }
        suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_window_per_cause_and_the_rest_counted() {
        let l = WarnLimiter::new(3, Duration::from_secs(10));
        assert_eq!(l.admit_at(2, 0), Some(0));
        assert_eq!(l.admit_at(2, 1), None);
        assert_eq!(l.admit_at(2, 9_999), None);
        // Another cause has its own budget.
        assert_eq!(l.admit_at(0, 5), Some(0));
        assert_eq!(l.admit_at(2, 10_000), Some(2));
        assert_eq!(l.admit_at(2, 10_001), None);
        assert_eq!(l.admit_at(2, 30_000), Some(1));
        // Out of range: never silenced.
        assert_eq!(l.admit_at(7, 30_001), Some(0));
        assert_eq!(l.admit_at(7, 30_002), Some(0));
        assert_eq!(l.admit(1), Some(0));
        assert_eq!(l.admit(1), None);
    }
}
