//! What the proxy did with each client request upstream: how many attempts it made, which
//! came after the client had finished (ghost attempts), and whether it waited out the
//! `Retry-After` the upstream sent.
//!
//! # Attempts
//! `soakd_proxy_upstream_attempts{scenario}` observes, once per client request when its client
//! side ends, the attempts that reached the upstream by then (0 when none did). Amplification
//! (attempts ÷ client requests, [`super::storm`]) counts every attempt, ghosts included.
//!
//! # Ghost attempts
//! An attempt whose entry comes after its client had already finished (an answer, an error, a
//! cancel or a timeout) is a ghost: `soakd_proxy_ghost_attempts_total{scenario}`, with the
//! time since the client finished in the report's percentiles. An attempt for an id that
//! left the tracking table is still recognised as this run's: ids are a bijection of the
//! run's request counter ([`RunIds`] inverts it). A recently joined id is found in a
//! fixed-size cache of finished requests ([`Recent`]), with its delay; an older one counts
//! with its delay unknown, as `scenario="expired"` (its scenario is not known either), never
//! as `untagged`.
//!
//! # Retry-After
//! For every answer the upstream sent with `Retry-After` (a storm's `retry_after`, or the
//! mock's `error_rate` 429/503/529, which send 1 s), the next attempt for the same id is
//! timed from that answer: `soakd_proxy_retry_after_honoured_total{scenario}` when it waited
//! at least that long, `soakd_proxy_retry_after_violations_total{scenario}` when it came
//! sooner. An answer with no next attempt is not judged.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus::{Histogram, IntCounter};

use crate::metrics::Metrics;

/// The `scenario` label of ghost attempts for ids that left the tracking table.
pub const EXPIRED: &str = "expired";

/// Nanoseconds from `epoch` to `at`, plus one (0 stays "unset").
pub fn stamp(epoch: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch).as_nanos())
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}

/// The instant of a [`stamp`], if set.
pub fn unstamp(epoch: Instant, s: u64) -> Option<Instant> {
    (s > 0).then(|| epoch + Duration::from_nanos(s - 1))
}

/// A request's record of storms, faults, attempts and `Retry-After`, on its link.
#[derive(Debug, Default)]
pub struct LinkWeather {
    /// Storms this request belongs to (bit i: storm i), fixed when it was sent.
    pub storms: u64,
    /// Storms whose injected fault one of its attempts met (bit i).
    pub faulted: AtomicU64,
    /// [`stamp`] of the client side's end.
    pub client_end: AtomicU64,
    /// [`stamp`] of the first attempt's entry.
    pub first_entry: AtomicU64,
    /// [`stamp`] of the last answer sent with `Retry-After`, and its seconds.
    pub ra_at: AtomicU64,
    pub ra_secs: AtomicU32,
}

impl LinkWeather {
    /// A record for a request of `storms`.
    pub fn new(storms: u64) -> Self {
        LinkWeather {
            storms,
            ..LinkWeather::default()
        }
    }

    /// An answer with `Retry-After: secs` went out at stamp `at`.
    pub fn retry_after(&self, at: u64, secs: u32) {
        self.ra_secs.store(secs, Ordering::Relaxed);
        self.ra_at.store(at, Ordering::Relaxed);
    }

    /// Takes the pending `Retry-After`, if any: (stamp, seconds).
    pub fn take_retry_after(&self) -> Option<(u64, u32)> {
        let at = self.ra_at.swap(0, Ordering::Relaxed);
        (at > 0).then(|| (at, self.ra_secs.load(Ordering::Relaxed)))
    }
}

/// A finished request, kept after its link left the table.
#[derive(Debug, Clone, Copy, Default)]
pub struct Finished {
    pub id: u64,
    /// [`stamp`]s of the client's send and end (`end` 0: empty entry).
    pub send: u64,
    pub end: u64,
    pub scenario: u32,
    /// A pending `Retry-After`: stamp and seconds (stamp 0: none).
    pub ra_at: u64,
    pub ra_secs: u32,
}

const SHARDS: usize = 16;

/// A fixed-size, direct-mapped cache of recently finished requests, by id: a newer id that
/// maps to the same slot replaces an older one. Its memory is set when it is built.
pub struct Recent {
    shards: Box<[Mutex<Box<[Finished]>>]>,
    mask: usize,
}

impl Recent {
    /// About `capacity` entries (a power of two, at least 16 per shard).
    pub fn new(capacity: usize) -> Self {
        let per = (capacity / SHARDS).next_power_of_two().max(16);
        Recent {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(vec![Finished::default(); per].into_boxed_slice()))
                .collect(),
            mask: per - 1,
        }
    }

    fn slot(&self, id: u64) -> (&Mutex<Box<[Finished]>>, usize) {
        (
            &self.shards[(id % SHARDS as u64) as usize],
            ((id / SHARDS as u64) as usize) & self.mask,
        )
    }

    pub fn put(&self, f: Finished) {
        let (shard, i) = self.slot(f.id);
        shard.lock().unwrap_or_else(|p| p.into_inner())[i] = f;
    }

    pub fn get(&self, id: u64) -> Option<Finished> {
        let (shard, i) = self.slot(id);
        let f = shard.lock().unwrap_or_else(|p| p.into_inner())[i];
        (f.end > 0 && f.id == id).then_some(f)
    }

    /// Entries held.
    pub fn capacity(&self) -> usize {
        SHARDS * (self.mask + 1)
    }
}

const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
const M1: u64 = 0xbf58_476d_1ce4_e5b9;
const M2: u64 = 0x94d0_49bb_1331_11eb;

/// The multiplicative inverse of an odd number modulo 2^64 (Newton's iteration).
const fn inverse(a: u64) -> u64 {
    let mut x = a;
    let mut i = 0;
    while i < 6 {
        x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
        i += 1;
    }
    x
}

/// Undoes `x ^= x >> s`.
const fn unshift(mut x: u64, s: u32) -> u64 {
    let mut y = x;
    let mut k = s;
    while k < 64 {
        y = x ^ (y >> s);
        k += s;
    }
    x = y;
    x
}

/// The ids of one run: `id(n)` = SplitMix64 of `salt + n × γ`, a bijection of the request
/// counter `n` (what [`super::Tracker::next_id`] hands out), and its inverse.
#[derive(Debug, Clone, Copy)]
pub struct RunIds {
    pub salt: u64,
}

impl RunIds {
    /// The id of request `n`.
    pub fn id(self, n: u64) -> u64 {
        let mut z = self.salt.wrapping_add(n.wrapping_mul(GAMMA));
        z = (z ^ (z >> 30)).wrapping_mul(M1);
        z = (z ^ (z >> 27)).wrapping_mul(M2);
        z ^ (z >> 31)
    }

    /// The request counter that gave `id`.
    pub fn index(self, id: u64) -> u64 {
        let mut z = unshift(id, 31);
        z = unshift(z.wrapping_mul(inverse(M2)), 27);
        z = unshift(z.wrapping_mul(inverse(M1)), 30);
        z.wrapping_sub(self.salt).wrapping_mul(inverse(GAMMA))
    }
}

/// The attempt measures of one scenario, resolved once.
pub struct AttemptHandles {
    pub attempts: Histogram,
    pub ghosts: IntCounter,
    pub ra_honoured: IntCounter,
    pub ra_violations: IntCounter,
}

impl AttemptHandles {
    pub fn new(m: &Metrics, scenario: &str) -> Self {
        let s = [scenario];
        AttemptHandles {
            attempts: m.proxy_upstream_attempts.with_label_values(&s),
            ghosts: m.proxy_ghost_attempts_total.with_label_values(&s),
            ra_honoured: m.proxy_retry_after_honoured_total.with_label_values(&s),
            ra_violations: m.proxy_retry_after_violations_total.with_label_values(&s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_invert_the_tracker_ids() {
        for salt in [0u64, 1, 0xdead_beef_0bad_f00d, u64::MAX] {
            let ids = RunIds { salt };
            for n in (0..2000u64).chain([u64::MAX, 1 << 40]) {
                assert_eq!(ids.index(ids.id(n)), n, "salt {salt:x} n {n}");
            }
        }
        // A foreign id maps to an arbitrary counter, almost surely far beyond any run's.
        let ids = RunIds { salt: 42 };
        assert!(ids.index(0x0123_4567_89ab_cdef) > 1 << 40);
    }

    #[test]
    fn recent_keeps_the_newest_id_per_slot() {
        let r = Recent::new(64);
        assert_eq!(r.capacity(), 256, "16 per shard at least");
        let f = |id: u64| Finished {
            id,
            send: 1,
            end: 2,
            ..Finished::default()
        };
        r.put(f(5));
        assert_eq!(r.get(5).map(|x| x.id), Some(5));
        assert!(r.get(6).is_none());
        // Same shard (5 mod 16) and slot ((id / 16) mod 16): replaces it.
        r.put(f(5 + 16 * 16));
        assert!(r.get(5).is_none());
        assert!(r.get(5 + 16 * 16).is_some());
        assert!(
            r.get(0).is_none(),
            "an empty slot is no entry, even for id 0"
        );
    }

    #[test]
    fn link_weather_retry_after_is_taken_once() {
        let w = LinkWeather::new(0b101);
        assert_eq!(w.take_retry_after(), None);
        w.retry_after(77, 2);
        assert_eq!(w.take_retry_after(), Some((77, 2)));
        assert_eq!(w.take_retry_after(), None);
        let epoch = Instant::now();
        let at = epoch + Duration::from_millis(3);
        assert_eq!(unstamp(epoch, stamp(epoch, at)), Some(at));
        assert_eq!(unstamp(epoch, 0), None);
    }
}
