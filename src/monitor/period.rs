//! Detection of a sawtooth (GC) period from the spacing of large drops.
//!
//! A [`PeriodRing`] keeps, per resource, the MINIMUM of each of the last [`RING_SLOTS`] time
//! slots (slot width = max(window span / [`RING_SLOTS`], sample interval), so the ring covers
//! at least its window). Values are stored as `f32` (NaN = no sample): 512 × 3 × 4 bytes =
//! 6 KiB per window, whatever the run length.
//!
//! [`PeriodRing::detect`] looks at the closed slots in time order (the open newest slot is left
//! out, its minimum may not be final) and applies these rules:
//!
//! 1. Differences `d_i` between consecutive present slot minima; their noise scale
//!    `σ = 1.4826 · MAD(d)` (robust: the drops are a minority of the differences).
//! 2. A *descent* is a run of consecutive negative differences (a drop spread over a few
//!    slots is one descent). Its size is the sum of the run — which telescopes to the
//!    difference of two slot minima, so noise alone passes 6σ about as rarely as one
//!    difference does — and its time is the slot where it ends (the trough). A descent that
//!    the next difference undoes by more than 3/4 is a dip (a bad read), not a drop: after a
//!    GC drop memory climbs back gradually (a period of at least two slots climbs at most
//!    half the drop per slot).
//! 3. Candidate drops are descents larger than `max(6σ, 0.1 % of the median level)`; the level
//!    term keeps exact-valued series (σ = 0) from calling page-sized wiggles drops.
//! 4. The dominant cycle: keep candidates at least half the upper quartile of the candidate
//!    sizes. If the spacings of these are irregular, retry with those at least half the
//!    largest (a big major-GC cycle under a frequent minor one).
//! 5. At least [`MIN_DROPS`] drops, and regular spacing: interquartile range of the spacings
//!    ≤ half their median (GC jitter of ±20 % passes; random dips, whose spacings are roughly
//!    exponential with IQR ≈ 1.6 × median, do not), and a median of at least two slots.
//! 6. The period reported is the UPPER QUARTILE of the spacings, so that a bucket of that width
//!    holds a trough for at least three cycles in four even when the GC is irregular.
//!
//! 7. Otherwise, with at least two drops left after the cut of rule 4 (a GC cycle too long, or
//!    too irregular, for rules 5–6), the period reported is the LONGEST spacing, flagged
//!    irregular: buckets that wide still hold a trough each. A window whose ring shows only
//!    two or three cycles thus gets at most a few troughs and no fit — honestly unknown —
//!    instead of bucket minima that climb the sawtooth's ramps (+140 % on a 600 s sawtooth
//!    in a lone 30 min window).
//!
//! 8. When the drops give no regular period, rules 2–6 run again on the RISES (the series
//!    upside down): a resource that each burst of load pushes up at once and that decays over
//!    the following seconds — fds and threads of the connections a burst opens — is a
//!    sawtooth too, with its jumps where a GC sawtooth has its drops. Only a regular period
//!    of rises counts (rules 5–6); otherwise the drops' answer of rule 7 stands. A rise must
//!    be a jump — one of its differences alone passes the threshold — and not the recovery
//!    from a dip (undoing the difference before it by more than 3/4): a leak's slope that
//!    noise cuts into runs of rises is no sawtooth. A group at least one period wide still
//!    holds one trough per cycle (just before a jump).
//!
//! Otherwise there is no period (`None`): a flat, trending, stepped or merely noisy series,
//! or a single drop.
//! The cost of a detection is O([`RING_SLOTS`]) with three selections; no allocation once the
//! scratch has grown.

use super::estimate::N_RES;
use super::mann_kendall::quantile;

/// Slots in a window's period ring.
pub const RING_SLOTS: usize = 512;

/// Fewest drops for a period (three spacings).
pub const MIN_DROPS: usize = 4;

/// Drops must exceed this many robust standard deviations of the slot-to-slot differences.
pub const DROP_SIGMAS: f64 = 6.0;

/// A detected period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Period {
    /// Upper quartile of the spacing between drops, seconds (what buckets are sized by).
    pub seconds: f64,
    /// Median spacing, seconds.
    pub median: f64,
    /// Drops seen in the ring (rises, for a period found from them: rule 8).
    pub drops: usize,
    /// Median size of those drops (or rises), in the resource's unit.
    pub drop_size: f64,
    /// False when the drops were too few or too irregular for rules 5–6 and `seconds` is the
    /// longest spacing instead (rule 7).
    pub regular: bool,
}

/// A run of differences in one direction (a candidate drop or rise).
#[derive(Debug, Clone, Copy)]
struct Step {
    /// Sum of the run's differences.
    size: f64,
    /// Slot where the run ends.
    end: u64,
    /// Its largest single difference.
    largest: f64,
    /// The difference just before it (in the run's direction; negative: the other way).
    before: f64,
}

impl Step {
    /// A jump: one difference alone passes `threshold`, and it does not undo the difference
    /// before it (the recovery from a dip).
    fn is_jump(&self, threshold: f64) -> bool {
        self.largest > threshold && -self.before <= 0.75 * self.size
    }
}

/// Fixed-size ring of slot minima for period detection.
#[derive(Debug, Clone)]
pub struct PeriodRing {
    slot: f64,
    origin: Option<f64>,
    newest: Option<u64>,
    vals: Box<[[f32; N_RES]]>,
}

/// Reused buffers for [`PeriodRing::detect`].
#[derive(Debug, Default)]
pub struct PeriodScratch {
    v: Vec<f64>,
    at: Vec<u64>,
    d: Vec<f64>,
    tmp: Vec<f64>,
    drops: Vec<(u64, f64)>,
    sizes: Vec<f64>,
    spacing: Vec<f64>,
}

impl PeriodScratch {
    /// Scratch for a ring of `n` slots: later detections allocate nothing.
    pub fn with_capacity(n: usize) -> Self {
        PeriodScratch {
            v: Vec::with_capacity(n),
            at: Vec::with_capacity(n),
            d: Vec::with_capacity(n),
            tmp: Vec::with_capacity(n),
            drops: Vec::with_capacity(n),
            sizes: Vec::with_capacity(n),
            spacing: Vec::with_capacity(n),
        }
    }

    /// Bytes held by the buffers.
    pub fn heap_bytes(&self) -> usize {
        let f = std::mem::size_of::<f64>();
        (self.v.capacity()
            + self.d.capacity()
            + self.tmp.capacity()
            + self.sizes.capacity()
            + self.spacing.capacity())
            * f
            + self.at.capacity() * 8
            + self.drops.capacity() * std::mem::size_of::<(u64, f64)>()
    }
}

impl PeriodRing {
    /// A ring covering at least `span` seconds sampled every `interval` seconds.
    pub fn new(span: f64, interval: f64) -> Self {
        PeriodRing {
            slot: (span / RING_SLOTS as f64).max(interval).max(1e-9),
            origin: None,
            newest: None,
            vals: vec![[f32::NAN; N_RES]; RING_SLOTS].into_boxed_slice(),
        }
    }

    /// Slot width, seconds.
    pub fn slot_width(&self) -> f64 {
        self.slot
    }

    /// Index of the newest slot written (slots since the first sample).
    pub fn newest_slot(&self) -> Option<u64> {
        self.newest
    }

    /// Bytes of the ring itself.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.vals)
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.origin = None;
        self.newest = None;
        self.vals.fill([f32::NAN; N_RES]);
    }

    /// Records a sample (times should not decrease; older samples outside the ring are
    /// ignored, non-finite values skipped).
    pub fn push(&mut self, t: f64, values: &[Option<f64>; N_RES]) {
        let origin = *self.origin.get_or_insert(t);
        let idx = ((t - origin).max(0.0) / self.slot).floor() as u64;
        let n = RING_SLOTS as u64;
        match self.newest {
            None => self.newest = Some(idx),
            Some(newest) if idx > newest => {
                let from = newest + 1;
                let to = idx.min(newest + n);
                for j in from..=to {
                    self.vals[(j % n) as usize] = [f32::NAN; N_RES];
                }
                self.newest = Some(idx);
            }
            Some(newest) if idx + n <= newest => return,
            Some(_) => {}
        }
        let slot = &mut self.vals[(idx % n) as usize];
        for (m, v) in slot.iter_mut().zip(values) {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                let v = v as f32;
                if m.is_nan() || v < *m {
                    *m = v;
                }
            }
        }
    }

    /// The dominant period of resource `r`, if the ring shows one (module rules).
    pub fn detect(&self, r: usize, sc: &mut PeriodScratch) -> Option<Period> {
        let newest = self.newest?;
        let n = RING_SLOTS as u64;
        let first = (newest + 1).saturating_sub(n);
        sc.v.clear();
        sc.at.clear();
        for j in first..newest {
            let x = self.vals[(j % n) as usize][r];
            if !x.is_nan() {
                sc.v.push(f64::from(x));
                sc.at.push(j);
            }
        }
        if sc.v.len() < 2 * MIN_DROPS {
            return None;
        }
        sc.d.clear();
        sc.d.extend(sc.v.windows(2).map(|w| w[1] - w[0]));
        let sigma = robust_sigma(&sc.d, &mut sc.tmp);
        sc.tmp.clear();
        sc.tmp.extend(sc.v.iter().map(|x| x.abs()));
        let level = quantile(&mut sc.tmp, 0.5);
        let threshold = (DROP_SIGMAS * sigma).max(1e-3 * level);

        // The falls first (a GC sawtooth), then the rises (rule 8: the same sawtooth upside
        // down), of which only a regular period counts.
        let falls = self.cycles(sc, threshold, -1.0);
        if falls.is_some_and(|p| p.regular) {
            return falls;
        }
        self.cycles(sc, threshold, 1.0)
            .filter(|p| p.regular)
            .or(falls)
    }

    /// The period of the steps in direction `sign` (−1: falls, +1: rises) larger than
    /// `threshold`, from the differences in `sc.d` (rules 2 and 4–7).
    fn cycles(&self, sc: &mut PeriodScratch, threshold: f64, sign: f64) -> Option<Period> {
        // Steps: runs of differences in the direction of `sign`. A run's size telescopes to
        // the difference of two slot minima, so noise alone reaches 6σ about as rarely as one
        // difference does.
        sc.drops.clear();
        // A step undone by the very next difference (by more than 3/4 of it) is a dip (or a
        // spike) — one bad read — not a GC drop, after which memory climbs back gradually.
        // A rise must moreover be a jump ([`Step::is_jump`], rule 8).
        let rises = sign > 0.0;
        let mut run: Option<Step> = None;
        let mut before = 0.0;
        for (i, &d) in sc.d.iter().enumerate() {
            let d = sign * d;
            if d > 0.0 {
                let r = run.get_or_insert(Step {
                    size: 0.0,
                    end: 0,
                    largest: 0.0,
                    before,
                });
                r.size += d;
                r.end = sc.at[i + 1];
                r.largest = r.largest.max(d);
            } else if let Some(r) = run.take() {
                if -d <= 0.75 * r.size && (!rises || r.is_jump(threshold)) {
                    sc.drops.push((r.end, r.size));
                }
            }
            before = d;
        }
        if let Some(r) = run.filter(|r| !rises || r.is_jump(threshold)) {
            sc.drops.push((r.end, r.size));
        }
        sc.drops.retain(|&(_, size)| size > threshold);
        if sc.drops.len() < 2 {
            return None;
        }
        sc.sizes.clear();
        sc.sizes.extend(sc.drops.iter().map(|&(_, s)| s));
        let q3 = quantile(&mut sc.sizes, 0.75);
        let max = sc.sizes.iter().copied().fold(0.0, f64::max);
        for cut in [0.5 * q3, 0.5 * max] {
            if let Some(p) = self.regular(sc, cut) {
                return Some(p);
            }
        }
        self.irregular(sc, 0.5 * q3)
    }

    /// Two or more large drops without a regular period: the longest spacing, so that a
    /// bucket of that width holds a trough whatever the cycle.
    fn irregular(&self, sc: &mut PeriodScratch, cut: f64) -> Option<Period> {
        self.spacings(sc, cut);
        if sc.sizes.len() < 2 {
            return None;
        }
        let longest = sc.spacing.iter().copied().fold(0.0, f64::max);
        if longest < 2.0 * self.slot {
            return None;
        }
        Some(Period {
            seconds: longest,
            median: quantile(&mut sc.spacing, 0.5),
            drops: sc.sizes.len(),
            drop_size: quantile(&mut sc.sizes, 0.5),
            regular: false,
        })
    }

    /// Spacings (seconds) and sizes of the drops of at least `cut`.
    fn spacings(&self, sc: &mut PeriodScratch, cut: f64) {
        sc.spacing.clear();
        sc.sizes.clear();
        let mut prev: Option<u64> = None;
        for &(at, size) in sc.drops.iter().filter(|(_, s)| *s >= cut) {
            if let Some(p) = prev {
                sc.spacing.push((at - p) as f64 * self.slot);
            }
            sc.sizes.push(size);
            prev = Some(at);
        }
    }

    /// The period of the drops of at least `cut`, if there are enough and they are regular.
    fn regular(&self, sc: &mut PeriodScratch, cut: f64) -> Option<Period> {
        self.spacings(sc, cut);
        if sc.sizes.len() < MIN_DROPS {
            return None;
        }
        let median = quantile(&mut sc.spacing, 0.5);
        let q1 = quantile(&mut sc.spacing, 0.25);
        let q3 = quantile(&mut sc.spacing, 0.75);
        if q3 - q1 > 0.5 * median || median < 2.0 * self.slot {
            return None;
        }
        let drop_size = quantile(&mut sc.sizes, 0.5);
        Some(Period {
            seconds: q3,
            median,
            drops: sc.sizes.len(),
            drop_size,
            regular: true,
        })
    }
}

/// 1.4826 × median absolute deviation of `d`; `tmp` is clobbered.
fn robust_sigma(d: &[f64], tmp: &mut Vec<f64>) -> f64 {
    tmp.clear();
    tmp.extend_from_slice(d);
    let med = quantile(tmp, 0.5);
    tmp.clear();
    tmp.extend(d.iter().map(|x| (x - med).abs()));
    1.4826 * quantile(tmp, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::synth::{Synth, SynthSpec};

    const MIB: f64 = 1024.0 * 1024.0;

    /// Feeds `spec` for `duration` s at `interval` into a ring of `span` s; detects RSS.
    fn detect(
        spec: SynthSpec,
        seed: u64,
        span: f64,
        interval: f64,
        duration: f64,
    ) -> Option<Period> {
        let mut ring = PeriodRing::new(span, interval);
        let mut s = Synth::new(spec, seed);
        let mut t = 0.0;
        while t < duration {
            ring.push(t, &[Some(s.value(t)), None, None]);
            t += interval;
        }
        ring.detect(0, &mut PeriodScratch::default())
    }

    fn saw(amp_mib: f64, period: f64) -> SynthSpec {
        SynthSpec {
            saw_amplitude: amp_mib * MIB,
            saw_period: period,
            noise_sd: 0.25 * MIB,
            leak_per_hour: 4.0 * MIB,
            ..SynthSpec::default()
        }
    }

    #[test]
    fn finds_regular_sawtooth_periods() {
        for (period, span, interval) in [
            (30.0, 1800.0, 1.0),
            (120.0, 3600.0, 1.0),
            (600.0, 10800.0, 5.0),
            (45.0, 600.0, 1.0),
        ] {
            for seed in 0..3 {
                let p = detect(saw(8.0, period), seed, span, interval, span * 1.2)
                    .unwrap_or_else(|| panic!("period {period} seed {seed}: none"));
                let slot = (span / RING_SLOTS as f64).max(interval);
                // Quantised to slots: the upper quartile is within a slot or two.
                assert!(
                    p.seconds >= period - slot && p.seconds <= period + 2.0 * slot,
                    "period {period} seed {seed}: {p:?}"
                );
                assert!(p.drops >= MIN_DROPS);
                assert!((p.drop_size - 8.0 * MIB).abs() < 2.0 * MIB, "{p:?}");
            }
        }
    }

    #[test]
    fn a_sawtooth_upside_down_is_found_from_its_rises() {
        // Jumps of 8 MiB, then a linear decay: what bursts do to fds (rule 8).
        for (period, seed) in [(30.0, 0), (120.0, 1), (45.0, 2)] {
            let p = detect(saw(-8.0, period), seed, 1800.0, 1.0, 2000.0)
                .unwrap_or_else(|| panic!("period {period}: none"));
            assert!(
                p.regular && (p.median - period).abs() <= 2.0,
                "{period}: {p:?}"
            );
            assert!((p.drop_size - 8.0 * MIB).abs() < 2.0 * MIB, "{p:?}");
        }
        // A leak under noise, cut into runs of rises by the noise, has no jumps: no period
        // (the 64 MiB/h row of the detection matrix, and its plateau, in a 2 h ring).
        for seed in 0..3 {
            let leak = SynthSpec {
                leak_per_hour: 64.0 * MIB,
                noise_sd: 0.25 * MIB,
                ..SynthSpec::default()
            };
            assert_eq!(detect(leak, seed, 7200.0, 1.0, 7200.0), None, "seed {seed}");
        }
        // A staircase of three steps up is no period (only regular rises count).
        let mut ring = PeriodRing::new(1800.0, 1.0);
        for i in 0..1800 {
            let t = f64::from(i);
            let v = 100.0 * MIB + (t / 500.0).floor() * 20.0 * MIB;
            ring.push(t, &[Some(v), None, None]);
        }
        assert_eq!(ring.detect(0, &mut PeriodScratch::default()), None);
    }

    #[test]
    fn jittered_gc_gives_an_upper_quartile() {
        let spec = SynthSpec {
            saw_jitter: 0.2,
            ..saw(32.0, 120.0)
        };
        let p = detect(spec, 7, 3600.0, 1.0, 3600.0).unwrap();
        assert!(p.seconds >= p.median && p.seconds < 150.0, "{p:?}");
        assert!((p.median - 120.0).abs() < 15.0, "{p:?}");
    }

    #[test]
    fn no_period_without_a_sawtooth() {
        let cases = [
            (
                "flat noise",
                SynthSpec {
                    noise_sd: 0.5 * MIB,
                    ..SynthSpec::default()
                },
            ),
            (
                "leak",
                SynthSpec {
                    leak_per_hour: 64.0 * MIB,
                    noise_sd: 0.5 * MIB,
                    ..SynthSpec::default()
                },
            ),
            (
                "warm-up step",
                SynthSpec {
                    warmup_step: 50.0 * MIB,
                    warmup_tau: 120.0,
                    ..SynthSpec::default()
                },
            ),
            (
                "heavy noise",
                SynthSpec {
                    noise_sd: 8.0 * MIB,
                    ..SynthSpec::default()
                },
            ),
        ];
        for (name, spec) in cases {
            for seed in 0..4 {
                assert_eq!(
                    detect(spec, seed, 1800.0, 1.0, 2400.0),
                    None,
                    "{name} seed {seed}"
                );
            }
        }
    }

    #[test]
    fn bad_reads_are_dips_not_drops() {
        // 0.2 % of samples read 90 MiB low: alone they make no period, and under a sawtooth
        // they do not hide it.
        let dips = SynthSpec {
            outlier_rate: 0.002,
            outlier_size: -90.0 * MIB,
            noise_sd: 0.25 * MIB,
            ..SynthSpec::default()
        };
        for seed in 0..3 {
            assert_eq!(detect(dips, seed, 7200.0, 1.0, 7200.0), None, "seed {seed}");
            let spec = SynthSpec {
                saw_amplitude: 8.0 * MIB,
                saw_period: 120.0,
                ..dips
            };
            let p = detect(spec, seed, 7200.0, 1.0, 7200.0).unwrap();
            assert!((p.median - 120.0).abs() <= 15.0, "seed {seed}: {p:?}");
        }
    }

    #[test]
    fn too_few_cycles_give_the_longest_spacing() {
        // Three drops in the ring: not enough for a regular period; the longest spacing.
        let p = detect(saw(32.0, 500.0), 1, 1800.0, 1.0, 1800.0).unwrap();
        assert!(!p.regular && (p.seconds - 500.0).abs() < 10.0, "{p:?}");
        // One drop: nothing.
        assert_eq!(detect(saw(32.0, 1000.0), 1, 1800.0, 1.0, 1500.0), None);
    }

    #[test]
    fn a_major_cycle_under_a_minor_one_is_found() {
        // Minor 2 MiB drops every 20 s, major 40 MiB drops every 300 s.
        let mut ring = PeriodRing::new(3600.0, 1.0);
        for i in 0..4000 {
            let t = f64::from(i);
            let v = 100.0 * MIB + (t % 20.0) / 20.0 * 2.0 * MIB + (t % 300.0) / 300.0 * 40.0 * MIB;
            ring.push(t, &[Some(v), None, None]);
        }
        let p = ring.detect(0, &mut PeriodScratch::default()).unwrap();
        assert!((p.median - 300.0).abs() <= 2.0 * ring.slot_width(), "{p:?}");
    }

    #[test]
    fn ring_memory_is_fixed_and_old_slots_expire() {
        let mut ring = PeriodRing::new(600.0, 1.0);
        let bytes = ring.heap_bytes();
        assert_eq!(bytes, RING_SLOTS * N_RES * 4);
        for i in 0..100_000 {
            let t = f64::from(i);
            ring.push(t, &[Some(t % 60.0), Some(1.0), None]);
        }
        assert_eq!(ring.heap_bytes(), bytes);
        let p = ring.detect(0, &mut PeriodScratch::default()).unwrap();
        assert!((p.median - 60.0).abs() <= 2.0, "{p:?}");
        // A long gap empties the ring.
        ring.push(1e9, &[Some(1.0), None, None]);
        assert_eq!(ring.detect(0, &mut PeriodScratch::default()), None);
        ring.clear();
        assert_eq!(ring.detect(1, &mut PeriodScratch::default()), None);
    }
}
