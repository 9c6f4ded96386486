//! Thresholds on what became of the client's give-ups in a two-sided soak (`[upstream]` on):
//! - `max_orphans`: upstream calls orphaned (fate `orphaned`);
//! - `max_not_propagated_ratio`: (not propagated + orphaned) / (those + propagated): the share
//!   of give-ups with something to cancel whose cancel did not reach the upstream in time;
//! - `max_wasted_output_tokens`: output tokens the upstream generated after the client gave up.
//!
//! Each fails the run with its name and both values, and is live in
//! `soakd_threshold_passing{threshold}`. They need `[upstream]` (a config error otherwise).
//! The counts are judged whenever asked (a count of zero is data); the ratio is pending until
//! a give-up has a fate that counts, and at the end fails with "no data" when none had.

use super::{ThresholdResult, Unit};

/// What the two-sided soak gives the thresholds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProxyInputs {
    pub orphans: u64,
    /// `None` while no give-up had something to cancel.
    pub not_propagated_ratio: Option<f64>,
    pub wasted_output_tokens: u64,
}

/// The configured limits.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProxyLimits {
    pub max_orphans: Option<u64>,
    pub max_not_propagated_ratio: Option<f64>,
    pub max_wasted_output_tokens: Option<u64>,
}

const ORPHANS: &str = "max_orphans";
const RATIO: &str = "max_not_propagated_ratio";
const WASTED: &str = "max_wasted_output_tokens";

impl ProxyLimits {
    /// Names of the configured limits, in evaluation order.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (ORPHANS, self.max_orphans.is_some()),
            (RATIO, self.max_not_propagated_ratio.is_some()),
            (WASTED, self.max_wasted_output_tokens.is_some()),
        ]
        .into_iter()
        .filter_map(|(n, on)| on.then_some(n))
        .collect()
    }

    /// Judges the configured limits on `i` (`None`: the two-sided soak is off).
    pub(super) fn evaluate(&self, i: Option<&ProxyInputs>, final_: bool) -> Vec<ThresholdResult> {
        let mut out = Vec::new();
        let off = |name, unit, limit: f64| {
            ThresholdResult::failed_no_data(name, unit, limit, "no data: [upstream] is off".into())
        };
        if let Some(limit) = self.max_orphans {
            out.push(match i {
                Some(i) => {
                    ThresholdResult::judged(ORPHANS, Unit::Requests, i.orphans as f64, limit as f64)
                }
                None => off(ORPHANS, Unit::Requests, limit as f64),
            });
        }
        if let Some(limit) = self.max_not_propagated_ratio {
            out.push(match i.map(|i| i.not_propagated_ratio) {
                Some(Some(r)) => ThresholdResult::judged(RATIO, Unit::Ratio, r, limit),
                Some(None) if final_ => ThresholdResult::failed_no_data(
                    RATIO,
                    Unit::Ratio,
                    limit,
                    "no data: no give-up had an upstream call to cancel".into(),
                ),
                Some(None) => ThresholdResult::pending(
                    RATIO,
                    Unit::Ratio,
                    None,
                    limit,
                    "no give-up with an upstream call to cancel yet".into(),
                ),
                None => off(RATIO, Unit::Ratio, limit),
            });
        }
        if let Some(limit) = self.max_wasted_output_tokens {
            out.push(match i {
                Some(i) => ThresholdResult::judged(
                    WASTED,
                    Unit::Tokens,
                    i.wasted_output_tokens as f64,
                    limit as f64,
                ),
                None => off(WASTED, Unit::Tokens, limit as f64),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::ThresholdStatus;

    const ALL: ProxyLimits = ProxyLimits {
        max_orphans: Some(0),
        max_not_propagated_ratio: Some(0.1),
        max_wasted_output_tokens: Some(1000),
    };

    #[test]
    fn each_limit_fails_with_its_name_and_both_values() {
        let bad = ProxyInputs {
            orphans: 3,
            not_propagated_ratio: Some(0.5),
            wasted_output_tokens: 1280,
        };
        let r = ALL.evaluate(Some(&bad), true);
        assert_eq!(
            r.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ALL.names()
        );
        assert!(r.iter().all(|r| !r.passed), "{r:?}");
        assert_eq!(r[0].message, "max_orphans 3 > 0 (exceeded by 3)");
        assert_eq!(
            r[1].message,
            "max_not_propagated_ratio 50% > 10% (exceeded by 40 percentage points)"
        );
        assert_eq!(
            r[2].message,
            "max_wasted_output_tokens 1280 tokens > 1000 tokens (exceeded by 280 tokens)"
        );
        let good = ProxyInputs {
            orphans: 0,
            not_propagated_ratio: Some(0.0),
            wasted_output_tokens: 1000,
        };
        assert!(ALL.evaluate(Some(&good), true).iter().all(|r| r.passed));
    }

    #[test]
    fn a_ratio_without_give_ups_is_pending_then_no_data() {
        let none = ProxyInputs::default();
        let live = ALL.evaluate(Some(&none), false);
        assert_eq!(live[1].status, ThresholdStatus::Pending);
        assert!(live[0].passed && live[2].passed);
        let last = ALL.evaluate(Some(&none), true);
        assert_eq!(last[1].status, ThresholdStatus::Fail);
        assert!(last[1].message.contains("no data"), "{}", last[1].message);
        let off = ALL.evaluate(None, true);
        assert!(off
            .iter()
            .all(|r| !r.passed && r.message.contains("[upstream] is off")));
        assert!(ProxyLimits::default().evaluate(None, true).is_empty());
    }
}
