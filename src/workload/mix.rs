//! The scenario mix over time: fixed weights, or weights varied slowly around them so that
//! the monitor can tell which scenario's requests a process's memory follows.
//!
//! With `[load] mix_variation = "1m"` (the default) time is cut into periods of that length
//! from the start of the run (epoch `e` = ⌊elapsed / period⌋). Epoch 0 runs the configured
//! weights; during every later epoch `e` scenario `s` is picked with weight `w_s · 2^u`, `u`
//! drawn uniformly from [−1, 1] for each scenario and epoch — each weight is halved to
//! doubled. The draws come from the run seed and the
//! epoch alone, so a seeded run repeats its mix, and every task that picks (the pacer,
//! closed-model users) agrees on it without sharing state. A scenario with weight 0 stays
//! at 0. Only *which* scenario is picked changes: arrivals, and so the total rate of the open
//! model, are exactly what the plan asks (a closed-model user's pace follows the latency of
//! what it picks, as always).
//!
//! Two equal scenarios get shares between 20 % and 80 % (standard deviation 0.13 per
//! epoch); over many epochs each averages its configured share exactly. Unequal weights
//! average slightly towards equal: configured 90/10 averages 88.8/11.2 (see
//! `long_run_shares`). With `"off"` the weights are the configured ones all the time.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::Picker;

/// Integer scale of a varied weight (the picker works on integers).
const SCALE: f64 = 65_536.0;

/// The scenario weights over time.
#[derive(Debug, Clone)]
pub struct Mix {
    base: Vec<u32>,
    period: Option<Duration>,
    seed: u64,
}

impl Mix {
    /// The configured `weights`, varied every `period` (`None`: fixed), from `seed`.
    pub fn new(weights: impl IntoIterator<Item = u32>, period: Option<Duration>, seed: u64) -> Mix {
        Mix {
            base: weights.into_iter().collect(),
            period: period.filter(|p| !p.is_zero()),
            seed,
        }
    }

    /// Whether the mix changes at all: a period is set and two or more weights are above 0.
    pub fn varies(&self) -> bool {
        self.period.is_some() && self.base.iter().filter(|w| **w > 0).count() >= 2
    }

    /// Why growth cannot be attributed to scenarios, when that is so because of the mix:
    /// two or more weighted scenarios with `mix_variation = "off"`. The engine logs it once.
    pub fn fixed_reason(&self) -> Option<&'static str> {
        let weighted = self.base.iter().filter(|w| **w > 0).count();
        (self.period.is_none() && weighted >= 2).then_some(
            "load.mix_variation is \"off\": the scenario mix is fixed, so per-scenario request \
             counts move in lockstep and RSS growth is not attributed to scenarios \
             (soakd_process_rss_growth_bytes_per_request_by_scenario stays absent)",
        )
    }

    /// The epoch `elapsed` after the start falls in (always 0 when the mix is fixed).
    pub fn epoch(&self, elapsed: Duration) -> u64 {
        match self.period {
            Some(p) if self.varies() => (elapsed.as_nanos() / p.as_nanos()) as u64,
            _ => 0,
        }
    }

    /// The weights of epoch `epoch` (the configured ones in epoch 0 and when the mix is fixed).
    pub fn weights(&self, epoch: u64) -> Vec<f64> {
        if !self.varies() || epoch == 0 {
            return self.base.iter().map(|&w| f64::from(w)).collect();
        }
        let mut rng = SmallRng::seed_from_u64(
            self.seed ^ epoch.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x6d1c,
        );
        self.base
            .iter()
            .map(|&w| f64::from(w) * 2f64.powf(rng.random_range(-1.0..=1.0)))
            .collect()
    }

    /// A picker for epoch `epoch`.
    pub fn picker(&self, epoch: u64) -> Picker {
        let mut total = 0u64;
        let cumulative = self
            .weights(epoch)
            .into_iter()
            .map(|w| {
                total += (w * SCALE).round() as u64;
                total
            })
            .collect();
        Picker { cumulative }
    }

    /// A picker that follows the epochs as time passes.
    pub fn cursor(&self) -> MixCursor<'_> {
        MixCursor {
            mix: self,
            epoch: 0,
            picker: self.picker(0),
        }
    }
}

/// Picks by the weights of the current epoch; rebuilds its picker when the epoch changes.
#[derive(Debug, Clone)]
pub struct MixCursor<'a> {
    mix: &'a Mix,
    epoch: u64,
    picker: Picker,
}

impl MixCursor<'_> {
    /// The index of a scenario for a request `elapsed` after the start.
    pub fn pick(&mut self, rng: &mut impl Rng, elapsed: Duration) -> usize {
        let e = self.mix.epoch(elapsed);
        if e != self.epoch {
            self.epoch = e;
            self.picker = self.mix.picker(e);
        }
        self.picker.pick(rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(w: &[f64], i: usize) -> f64 {
        w[i] / w.iter().sum::<f64>()
    }

    #[test]
    fn fixed_mix_is_the_configured_weights() {
        for period in [None, Some(Duration::from_secs(60))] {
            let one = Mix::new([0, 5], period, 1);
            assert!(!one.varies(), "one non-zero weight never varies");
            assert_eq!(one.epoch(Duration::from_secs(3600)), 0);
        }
        let off = Mix::new([3, 1], None, 1);
        assert!(!off.varies());
        assert!(off.fixed_reason().unwrap().contains("mix_variation"));
        assert_eq!(
            Mix::new([3, 0], None, 1).fixed_reason(),
            None,
            "one scenario"
        );
        assert_eq!(
            Mix::new([3, 1], Some(Duration::from_secs(1)), 1).fixed_reason(),
            None
        );
        assert_eq!(off.weights(7), [3.0, 1.0]);
        let p = off.picker(0);
        let mut rng = SmallRng::seed_from_u64(2);
        let n = (0..40_000).filter(|_| p.pick(&mut rng) == 0).count();
        assert!((n as f64 / 40_000.0 - 0.75).abs() < 0.01, "{n}");
    }

    #[test]
    fn epochs_follow_the_period_and_repeat_with_the_seed() {
        let m = Mix::new([1, 1, 0], Some(Duration::from_secs(10)), 42);
        assert!(m.varies());
        assert_eq!(m.epoch(Duration::from_millis(9_999)), 0);
        assert_eq!(m.epoch(Duration::from_secs(10)), 1);
        assert_eq!(m.epoch(Duration::from_secs(95)), 9);
        assert_eq!(
            m.weights(3),
            Mix::new([1, 1, 0], Some(Duration::from_secs(10)), 42).weights(3)
        );
        assert_ne!(m.weights(3), m.weights(4));
        assert_eq!(
            m.weights(0),
            [1.0, 1.0, 0.0],
            "epoch 0 is the configured mix"
        );
        for e in 1..200 {
            let w = m.weights(e);
            assert_eq!(w[2], 0.0, "weight 0 stays 0");
            assert!(w[..2].iter().all(|v| (0.5..=2.0).contains(v)), "{w:?}");
        }
    }

    #[test]
    fn equal_weights_vary_between_20_and_80_percent_and_average_half() {
        let m = Mix::new([1, 1], Some(Duration::from_secs(60)), 7);
        let shares: Vec<f64> = (1..20_001).map(|e| share(&m.weights(e), 0)).collect();
        let mean = shares.iter().sum::<f64>() / shares.len() as f64;
        let sd =
            (shares.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / shares.len() as f64).sqrt();
        assert!(shares.iter().all(|s| (0.2..=0.8).contains(s)));
        assert!((mean - 0.5).abs() < 0.005, "{mean}");
        assert!((sd - 0.133).abs() < 0.005, "{sd}");
    }

    #[test]
    fn long_run_shares() {
        // The module docs quote these numbers.
        let m = Mix::new([9, 1], Some(Duration::from_secs(60)), 11);
        let n = 50_000;
        let mean = (1..=n).map(|e| share(&m.weights(e), 0)).sum::<f64>() / n as f64;
        assert!((mean - 0.888).abs() < 0.003, "{mean}");
    }

    #[test]
    fn cursor_switches_pickers_at_epoch_boundaries() {
        let m = Mix::new([1, 1], Some(Duration::from_secs(1)), 3);
        let mut c = m.cursor();
        let mut rng = SmallRng::seed_from_u64(5);
        // Within one epoch the cursor picks with that epoch's weights.
        for e in [0u64, 1, 5] {
            let want = share(&m.weights(e), 0);
            let at = Duration::from_millis(e * 1000 + 500);
            let n = (0..20_000).filter(|_| c.pick(&mut rng, at) == 0).count();
            assert!(
                (n as f64 / 20_000.0 - want).abs() < 0.015,
                "epoch {e}: {n} vs {want}"
            );
        }
    }
}
