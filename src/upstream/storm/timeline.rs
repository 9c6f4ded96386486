//! When each storm blows: occurrence `k` of a storm runs over `[start + k × every, start +
//! k × every + duration)` from the start of load (only `k = 0` without `every`). Times here
//! are offsets from the start of load; the runtime ([`super::Weather`]) converts instants.

use std::time::Duration;

use super::settings::StormSpec;

/// The span of occurrence `k` of `s`.
pub fn bounds(s: &StormSpec, k: u64) -> (Duration, Duration) {
    let every = s.every.unwrap_or_default();
    let from = s.start + mul(every, k);
    (from, from + s.duration)
}

fn mul(d: Duration, k: u64) -> Duration {
    Duration::from_nanos(
        u64::try_from(d.as_nanos().saturating_mul(u128::from(k))).unwrap_or(u64::MAX),
    )
}

/// The occurrence of `s` running at offset `t`, if any.
pub fn occurrence_at(s: &StormSpec, t: Duration) -> Option<u64> {
    let k = last_started(s, t)?;
    (t < bounds(s, k).1).then_some(k)
}

/// The last occurrence of `s` that started at or before `t`.
pub fn last_started(s: &StormSpec, t: Duration) -> Option<u64> {
    let since = t.checked_sub(s.start)?;
    Some(match s.every {
        None => 0,
        Some(e) => u64::try_from(since.as_nanos() / e.as_nanos().max(1)).unwrap_or(u64::MAX),
    })
}

/// Where `t` stands relative to the storm's latest occurrence: during it, or after its end
/// (`t − end`), or before the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Before,
    During(u64),
    /// After occurrence `k` ended, this long after its end.
    After(u64, Duration),
}

/// The position of `t` relative to `s`'s occurrences.
pub fn position(s: &StormSpec, t: Duration) -> Position {
    match last_started(s, t) {
        None => Position::Before,
        Some(k) => {
            let (_, end) = bounds(s, k);
            if t < end {
                Position::During(k)
            } else {
                Position::After(k, t - end)
            }
        }
    }
}

/// The start of the first occurrence of `s` that starts after `t`, if it repeats or has not
/// started yet.
pub fn next_start(s: &StormSpec, t: Duration) -> Option<Duration> {
    match last_started(s, t) {
        None => Some(s.start),
        Some(k) => s.every.map(|_| bounds(s, k.saturating_add(1)).0),
    }
}

/// A lock-free uniform draw (SplitMix64 over an atomic counter), for `rate`.
pub struct Dice(std::sync::atomic::AtomicU64);

impl Dice {
    pub fn new(seed: u64) -> Self {
        Dice(std::sync::atomic::AtomicU64::new(seed))
    }

    /// True with probability `p`.
    pub fn chance(&self, p: f64) -> bool {
        if p >= 1.0 {
            return true;
        }
        if p <= 0.0 {
            return false;
        }
        const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut z = self
            .0
            .fetch_add(GAMMA, std::sync::atomic::Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)) < p
    }
}

#[cfg(test)]
mod tests {
    use super::super::settings::StormFault;
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn storm(start: f64, duration: f64, every: Option<f64>) -> StormSpec {
        StormSpec {
            name: "s".into(),
            start: secs(start),
            duration: secs(duration),
            every: every.map(secs),
            fault: StormFault::Stall,
            rate: 1.0,
            scenarios: None,
            apis: None,
        }
    }

    #[test]
    fn a_single_storm_is_half_open() {
        let s = storm(10.0, 5.0, None);
        assert_eq!(occurrence_at(&s, secs(9.999)), None);
        assert_eq!(occurrence_at(&s, secs(10.0)), Some(0));
        assert_eq!(occurrence_at(&s, secs(14.999)), Some(0));
        assert_eq!(occurrence_at(&s, secs(15.0)), None);
        assert_eq!(position(&s, secs(3.0)), Position::Before);
        assert_eq!(position(&s, secs(12.0)), Position::During(0));
        assert_eq!(position(&s, secs(16.5)), Position::After(0, secs(1.5)));
        assert_eq!(next_start(&s, secs(3.0)), Some(secs(10.0)));
        assert_eq!(next_start(&s, secs(12.0)), None);
    }

    #[test]
    fn a_repeating_storm_blows_every_period() {
        let s = storm(10.0, 5.0, Some(60.0));
        assert_eq!(occurrence_at(&s, secs(70.0)), Some(1));
        assert_eq!(occurrence_at(&s, secs(74.9)), Some(1));
        assert_eq!(occurrence_at(&s, secs(75.0)), None);
        assert_eq!(position(&s, secs(100.0)), Position::After(1, secs(25.0)));
        assert_eq!(bounds(&s, 3), (secs(190.0), secs(195.0)));
        assert_eq!(next_start(&s, secs(100.0)), Some(secs(130.0)));
        // A year of 1 s periods: still exact.
        let fast = storm(0.0, 0.5, Some(1.0));
        let t = secs(365.0 * 86400.0 + 0.25);
        assert_eq!(occurrence_at(&fast, t), Some(365 * 86400));
    }

    #[test]
    fn dice_hit_their_rate() {
        let d = Dice::new(7);
        let n = (0..100_000).filter(|_| d.chance(0.3)).count() as f64;
        assert!((n / 1e5 - 0.3).abs() < 0.01, "{n}");
        assert!((0..100).all(|_| d.chance(1.0) && !d.chance(0.0)));
    }
}
