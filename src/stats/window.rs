//! Windowed histograms for the creep verdict: the first full window after the warm-up, kept,
//! and a rolling last full window, in fixed memory for any run length.
//!
//! # Windows
//! Time after the warm-up is cut into slots of `window / SUB_WINDOWS` ([`Windows`]): slot 0
//! starts when the warm-up ends. The FIRST window is slots `0..SUB_WINDOWS`; the LAST full
//! window, while slot `c` is in progress, is slots `c − SUB_WINDOWS .. c` (the newest
//! `SUB_WINDOWS` complete ones, so it ends at most one slot before now). The two are compared
//! only once they do not overlap (`c ≥ 2 × SUB_WINDOWS`): a run needs
//! `warmup + 2 × window` of load before its creep can be judged.
//!
//! # Memory
//! A [`WindowedHistogram`] holds a ring of `SUB_WINDOWS + 1` slot histograms (the complete
//! ones of the last window and the one in progress) and, once the first window is complete,
//! its merged histogram. Each is an HDR histogram of `u32` counts, 1 µs to 1 h, two
//! significant digits (1 % resolution): 3,328 counters, 13 KiB. The ring is allocated at the
//! first sample, so a measure that never gets one costs nothing: [`BYTES_PER_MEASURE`] in all,
//! 106 KiB, whatever the run's length. A slot holds up to 4.29 billion samples (a `u32`
//! count; more saturate).
//!
//! The type is plain data: the caller says which slot each sample and each read belongs to
//! ([`Windows::slot`]), so the rotation is a pure function of those slot numbers.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Slots per window: the last window moves on in steps of `window / SUB_WINDOWS`.
pub const SUB_WINDOWS: u64 = 6;
/// Slot histograms in the ring: the last window's complete slots and the one in progress.
const RING: usize = SUB_WINDOWS as usize + 1;
/// Values are clamped to 1 µs..1 h.
const MAX_MICROS: u64 = 3_600_000_000;
/// Counters of one slot histogram (1 µs to 1 h, two significant digits).
const COUNTERS: usize = 3_328;
/// Heap bytes of one measure once it has a sample: the ring and the first window.
pub const BYTES_PER_MEASURE: usize = (RING + 1) * COUNTERS * std::mem::size_of::<u32>();

fn new_histogram() -> Histogram<u32> {
    Histogram::new_with_bounds(1, MAX_MICROS, 2).expect("static histogram bounds are valid")
}

/// Where the windows lie: after `warmup`, windows of `window` in [`SUB_WINDOWS`] slots each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// Time from the start of the run before the first window.
    pub warmup: Duration,
    /// Length of each compared window.
    pub window: Duration,
}

/// A span of the run, seconds from its start.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Span {
    pub from_secs: f64,
    pub to_secs: f64,
}

impl Windows {
    /// Length of one slot.
    pub fn slot_len(&self) -> Duration {
        self.window / SUB_WINDOWS as u32
    }

    /// The slot a moment `since_start` into the run falls in; `None` during the warm-up.
    pub fn slot(&self, since_start: Duration) -> Option<u64> {
        let after = since_start.checked_sub(self.warmup)?;
        // In whole nanoseconds: window / SUB_WINDOWS need not be a whole number of them.
        let n = after.as_nanos() * u128::from(SUB_WINDOWS) / self.window.as_nanos().max(1);
        Some(u64::try_from(n).unwrap_or(u64::MAX))
    }

    fn at(&self, slot: u64) -> f64 {
        self.warmup.as_secs_f64() + self.window.as_secs_f64() * slot as f64 / SUB_WINDOWS as f64
    }

    /// The first window.
    pub fn first(&self) -> Span {
        Span {
            from_secs: self.at(0),
            to_secs: self.at(SUB_WINDOWS),
        }
    }

    /// The last full window while slot `current` is in progress, once it no longer overlaps
    /// the first.
    pub fn last(&self, current: u64) -> Option<Span> {
        (current >= 2 * SUB_WINDOWS).then(|| Span {
            from_secs: self.at(current - SUB_WINDOWS),
            to_secs: self.at(current),
        })
    }

    /// Time from the start of the run until two full windows can be compared.
    pub fn needed(&self) -> Duration {
        self.warmup + self.window * 2
    }
}

/// The first window's histogram and a ring of the last window's slots (module docs).
#[derive(Debug, Clone, Default)]
pub struct WindowedHistogram {
    /// The first window merged, once it is complete and had samples.
    first: Option<Histogram<u32>>,
    /// Slot `s` lives at `s % RING`; allocated at the first sample.
    ring: Option<Vec<Histogram<u32>>>,
    /// The slot in progress.
    current: u64,
}

impl WindowedHistogram {
    /// Moves the slot in progress forward to `slot` (never back): the first window is kept when
    /// it completes, and slots that leave the last window are cleared for reuse.
    pub fn advance(&mut self, slot: u64) {
        if slot <= self.current {
            return;
        }
        if let Some(ring) = self.ring.as_mut() {
            if self.current < SUB_WINDOWS && slot >= SUB_WINDOWS {
                // Slots 0..SUB_WINDOWS sit at positions 0..SUB_WINDOWS, none reused yet.
                let mut first = new_histogram();
                for h in &ring[..SUB_WINDOWS as usize] {
                    // Same bounds on both sides: adding cannot fail.
                    let _ = first.add(h);
                }
                self.first = Some(first);
            }
            if slot - self.current >= RING as u64 {
                ring.iter_mut().for_each(Histogram::reset);
            } else {
                for s in self.current + 1..=slot {
                    ring[(s % RING as u64) as usize].reset();
                }
            }
        }
        self.current = slot;
    }

    /// Records `d` in slot `slot` (a late sample, for a slot already left, counts in the slot
    /// in progress). Values are clamped to 1 µs..1 h.
    pub fn record(&mut self, slot: u64, d: Duration) {
        self.advance(slot);
        let ring = self
            .ring
            .get_or_insert_with(|| (0..RING).map(|_| new_histogram()).collect());
        let micros = u64::try_from(d.as_micros()).unwrap_or(MAX_MICROS);
        ring[(self.current % RING as u64) as usize].saturating_record(micros.clamp(1, MAX_MICROS));
    }

    /// The slot in progress.
    pub fn current(&self) -> u64 {
        self.current
    }

    /// The first window, once complete (slot [`SUB_WINDOWS`] or later is in progress); `None`
    /// before, and also when it had no sample.
    pub fn first(&self) -> Option<&Histogram<u32>> {
        self.first.as_ref()
    }

    /// Whether the first window is complete.
    pub fn first_complete(&self) -> bool {
        self.current >= SUB_WINDOWS
    }

    /// The last full window merged, once it no longer overlaps the first (`None` before; an
    /// empty histogram when it had no sample).
    pub fn last(&self) -> Option<Histogram<u32>> {
        if self.current < 2 * SUB_WINDOWS {
            return None;
        }
        let mut last = new_histogram();
        if let Some(ring) = &self.ring {
            for s in self.current - SUB_WINDOWS..self.current {
                let _ = last.add(&ring[(s % RING as u64) as usize]);
            }
        }
        Some(last)
    }

    /// Heap bytes held now: 0 before the first sample, then [`BYTES_PER_MEASURE`] at most.
    pub fn heap_bytes(&self) -> usize {
        let counters = self.ring.as_ref().map_or(0, Vec::len) + usize::from(self.first.is_some());
        counters * COUNTERS * std::mem::size_of::<u32>()
    }
}

/// The count and p99, in seconds, of a histogram of microseconds.
pub fn count_p99(h: &Histogram<u32>) -> (u64, f64) {
    if h.is_empty() {
        return (0, 0.0);
    }
    (h.len(), h.value_at_quantile(0.99) as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: u64 = SUB_WINDOWS;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn windows() -> Windows {
        Windows {
            warmup: Duration::from_secs(10),
            window: Duration::from_secs(60),
        }
    }

    #[test]
    fn slots_start_after_the_warm_up_and_windows_do_not_overlap() {
        let w = windows();
        assert_eq!(w.slot_len(), Duration::from_secs(10));
        assert_eq!(w.slot(Duration::from_secs(9)), None, "warm-up");
        assert_eq!(w.slot(Duration::from_secs(10)), Some(0));
        assert_eq!(w.slot(Duration::from_millis(19_999)), Some(0));
        assert_eq!(w.slot(Duration::from_secs(20)), Some(1));
        assert_eq!(
            w.first(),
            Span {
                from_secs: 10.0,
                to_secs: 70.0
            }
        );
        assert_eq!(w.last(2 * K - 1), None, "would overlap the first");
        assert_eq!(
            w.last(2 * K),
            Some(Span {
                from_secs: 70.0,
                to_secs: 130.0
            })
        );
        assert_eq!(
            w.last(2 * K + 3),
            Some(Span {
                from_secs: 100.0,
                to_secs: 160.0
            })
        );
        assert_eq!(w.needed(), Duration::from_secs(130));
        // 40 s in sixths is not a whole number of nanoseconds: the edges stay exact.
        let w = Windows {
            warmup: Duration::from_secs(5),
            window: Duration::from_secs(40),
        };
        assert_eq!(w.slot(Duration::from_millis(44_999)), Some(5));
        assert_eq!(w.slot(Duration::from_secs(45)), Some(6));
        assert_eq!(w.first().to_secs, 45.0);
        assert_eq!(
            w.last(21).map(|s| (s.from_secs, s.to_secs)),
            Some((105.0, 145.0))
        );
    }

    #[test]
    fn the_first_window_is_kept_and_the_last_rolls() {
        let mut h = WindowedHistogram::default();
        assert_eq!(h.heap_bytes(), 0, "nothing before the first sample");
        // Slot s holds 100 samples of (s + 1) ms.
        for s in 0..4 * K {
            for _ in 0..100 {
                h.record(s, ms(s + 1));
            }
            if s < K {
                assert!(h.first().is_none() && !h.first_complete(), "slot {s}");
            }
            if s < 2 * K {
                assert!(h.last().is_none(), "slot {s}");
            }
        }
        assert!(h.heap_bytes() <= BYTES_PER_MEASURE);
        assert_eq!(h.heap_bytes(), BYTES_PER_MEASURE, "ring and first window");
        let first = h.first().expect("first window");
        assert_eq!(first.len(), 100 * K);
        assert_eq!(first.max(), h.first().unwrap().highest_equivalent(K * 1000));
        // In progress: slot 4K − 1; the last window is slots 3K − 1 .. 4K − 1.
        let last = h.last().expect("last window");
        assert_eq!(last.len(), 100 * K);
        assert_eq!(last.min(), last.lowest_equivalent(3 * K * 1000));
        assert_eq!(last.max(), last.highest_equivalent((4 * K - 1) * 1000));
        // The first window is not touched by the ring's rotation.
        assert_eq!(h.first().unwrap().len(), 100 * K);
        let (n, p99) = count_p99(first);
        assert_eq!(n, 600);
        assert!((p99 - 0.006).abs() < 0.006 * 0.01, "{p99}");
    }

    #[test]
    fn a_read_advances_over_empty_slots_and_a_long_gap_clears_the_ring() {
        let mut h = WindowedHistogram::default();
        for s in 0..K {
            h.record(s, ms(5));
        }
        // Nothing for a while: the last window holds only what falls inside it.
        h.advance(2 * K);
        assert_eq!(h.first().unwrap().len(), K);
        assert_eq!(h.last().unwrap().len(), 0, "slots K..2K were empty");
        h.record(2 * K, ms(7));
        h.advance(2 * K + 1);
        assert_eq!(h.last().unwrap().len(), 1);
        // A gap longer than the ring: everything old is gone.
        h.advance(10 * K);
        assert_eq!(h.last().unwrap().len(), 0);
        assert_eq!(h.first().unwrap().len(), K, "the first window stays");
        // Time never goes back: a late sample counts in the slot in progress.
        h.record(3, ms(9));
        assert_eq!(h.current(), 10 * K);
        h.advance(10 * K + 1);
        assert_eq!(h.last().unwrap().len(), 1);
    }

    #[test]
    fn a_jump_over_the_first_windows_end_still_keeps_it() {
        let mut h = WindowedHistogram::default();
        h.record(1, ms(3));
        h.record(2, ms(4));
        // The next event is long after: the first window is kept before the ring clears.
        h.record(5 * K, ms(50));
        assert_eq!(h.first().unwrap().len(), 2);
        h.advance(5 * K + 1);
        assert_eq!(h.last().unwrap().len(), 1);
    }

    #[test]
    fn a_measure_first_seen_after_the_first_window_has_an_empty_one() {
        let mut h = WindowedHistogram::default();
        h.advance(K + 2);
        assert!(h.first_complete());
        h.record(K + 2, ms(10));
        assert!(h.first().is_none(), "no sample in the first window");
        // The last window while 2K + 2 is in progress is K + 2 .. 2K + 2.
        h.advance(2 * K + 2);
        assert_eq!(h.last().unwrap().len(), 1);
        h.advance(2 * K + 3);
        assert_eq!(h.last().unwrap().len(), 0);
        assert_eq!(count_p99(&new_histogram()), (0, 0.0));
    }

    #[test]
    fn one_slot_histogram_has_the_counters_the_memory_figure_assumes() {
        let h = new_histogram();
        assert_eq!(h.distinct_values(), COUNTERS);
        assert_eq!(BYTES_PER_MEASURE, 8 * 3_328 * 4);
    }
}
