//! The creep verdict: did a measure get slower between the first and the last full
//! `creep_window` of the run? One threshold per scenario and measure, `creep:SCENARIO:MEASURE`
//! (measure `duration`, `ttft` or `added_<stage>`; the numbers come from
//! [`crate::stats::creep`]).
//!
//! Rules:
//! - a measure FAILS when its last window's p99 is more than `max_creep_ratio` times its
//!   first window's AND more than `min_creep` above it: both, so a 2 ms → 4 ms wobble (×2,
//!   +2 ms) and a 10 s → 10.2 s stream (+200 ms, ×1.02) both pass. The message names the
//!   scenario, the measure, both p99s, both windows and the ratio;
//! - it PASSES when both windows hold at least
//!   [`MIN_WINDOW_SAMPLES`](crate::stats::creep::MIN_WINDOW_SAMPLES) samples and it does not
//!   cross both limits;
//! - otherwise it is PENDING during the run (the last full window does not yet lie after the
//!   first: a run needs `warmup + 2 × creep_window` of load; or a window holds too few
//!   samples) and NOT JUDGED at the end, with the reason — never a failure.
//!
//! The observed value of the threshold is the ratio, its limit `max_creep_ratio` (unit
//! `factor`).

use std::time::Duration;

use super::{ThresholdResult, ThresholdStatus, Unit};
use crate::stats::creep::{CreepMeasure, CreepReport, MIN_WINDOW_SAMPLES};
use crate::units::fmt_duration;
use crate::units::{fmt_elapsed, fmt_secs};

/// Every creep threshold name starts with this.
pub const PREFIX: &str = "creep:";

/// `max_creep_ratio` when creep is judged and the config leaves it unset.
pub const DEFAULT_MAX_CREEP_RATIO: f64 = 1.5;
/// `min_creep` when creep is judged and the config leaves it unset.
pub const DEFAULT_MIN_CREEP: Duration = Duration::from_millis(50);

/// The threshold name of one scenario's measure: `creep:SCENARIO:MEASURE`.
pub fn creep_threshold_name(scenario: &str, measure: &str) -> String {
    format!("{PREFIX}{scenario}:{measure}")
}

/// When a measure's p99 has crept too far: both limits crossed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CreepRules {
    /// Last p99 ÷ first p99 above this…
    pub max_ratio: f64,
    /// …and last p99 − first p99 above this.
    pub min_creep: Duration,
}

impl CreepRules {
    /// Whether last vs first crosses both limits.
    pub fn crept(&self, first_p99: f64, last_p99: f64) -> bool {
        first_p99 > 0.0
            && last_p99 / first_p99 > self.max_ratio
            && last_p99 - first_p99 > self.min_creep.as_secs_f64()
    }

    /// `×1.5 and +50ms`.
    fn limits(&self) -> String {
        format!(
            "×{} and +{}",
            crate::units::trim_num(self.max_ratio, 3),
            fmt_duration(self.min_creep)
        )
    }
}

fn span(s: &crate::stats::window::Span) -> String {
    format!("{}–{}", fmt_elapsed(s.from_secs), fmt_elapsed(s.to_secs))
}

/// Judges every measure of `report`, in its order.
pub(super) fn judge(
    rules: &CreepRules,
    report: &CreepReport,
    final_: bool,
) -> Vec<ThresholdResult> {
    report
        .measures
        .iter()
        .map(|m| judge_one(rules, report, m, final_))
        .collect()
}

fn judge_one(
    rules: &CreepRules,
    report: &CreepReport,
    m: &CreepMeasure,
    final_: bool,
) -> ThresholdResult {
    let name = creep_threshold_name(&m.scenario, &m.measure);
    let window = fmt_duration(Duration::from_secs_f64(report.window_secs));
    let what = format!("{} {} p99", m.scenario, m.measure);
    let (status, message) = match (m.first, m.last, m.ratio, report.last) {
        (Some(f), Some(l), Some(ratio), Some(last_span)) => {
            let delta = l.p99 - f.p99;
            let sign = if delta >= 0.0 { "+" } else { "−" };
            let size = if delta == 0.0 {
                "0ms".to_string()
            } else {
                fmt_secs(delta.abs())
            };
            let change = format!(
                "{what} {} in the first {window} window ({}) and {} in the last ({}): ×{ratio:.2}, \
                 {sign}{}",
                fmt_secs(f.p99),
                span(&report.first),
                fmt_secs(l.p99),
                span(&last_span),
                size,
            );
            if rules.crept(f.p99, l.p99) {
                (
                    ThresholdStatus::Fail,
                    format!("{change} crosses both {}", rules.limits()),
                )
            } else {
                (
                    ThresholdStatus::Pass,
                    format!("passed: {change} (fails over {})", rules.limits()),
                )
            }
        }
        _ => {
            let why = why_not(report, m);
            if final_ {
                (
                    ThresholdStatus::NotJudged,
                    format!("not judged: {what}: {why}"),
                )
            } else {
                (ThresholdStatus::Pending, format!("pending: {what}: {why}"))
            }
        }
    };
    ThresholdResult {
        name,
        passed: status != ThresholdStatus::Fail,
        status,
        observed: m.ratio,
        limit: Some(rules.max_ratio),
        unit: Unit::Factor.name(),
        message,
    }
}

/// Why a measure has no ratio.
fn why_not(report: &CreepReport, m: &CreepMeasure) -> String {
    let needed = fmt_elapsed(report.comparable_from_secs);
    let window = fmt_duration(Duration::from_secs_f64(report.window_secs));
    match (m.first, m.last) {
        (None, Some(_)) => "the first window is not complete".into(),
        (_, None) => format!(
            "no full {window} window after the first one yet: the two are compared from \
             {needed} into the run (the warm-up and two windows; run longer or shorten \
             [thresholds] creep_window)"
        ),
        (Some(f), _) if f.count < MIN_WINDOW_SAMPLES => format!(
            "{} samples in the first {window} window ({}), {MIN_WINDOW_SAMPLES} needed for a p99",
            f.count,
            span(&report.first)
        ),
        (_, Some(l)) => format!(
            "{} samples in the last {window} window, {MIN_WINDOW_SAMPLES} needed for a p99",
            l.count
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::creep::WindowStat;
    use crate::stats::window::Span;

    const RULES: CreepRules = CreepRules {
        max_ratio: 1.5,
        min_creep: Duration::from_millis(20),
    };

    fn stat(count: u64, p99_ms: f64) -> Option<WindowStat> {
        Some(WindowStat {
            count,
            p99: p99_ms / 1e3,
        })
    }

    fn report(first: Option<WindowStat>, last: Option<WindowStat>) -> CreepReport {
        let ratio = match (first, last) {
            (Some(f), Some(l)) if f.count >= 100 && l.count >= 100 => Some(l.p99 / f.p99),
            _ => None,
        };
        CreepReport {
            window_secs: 40.0,
            step_secs: 40.0 / 6.0,
            first: Span {
                from_secs: 5.0,
                to_secs: 45.0,
            },
            first_complete: first.is_some(),
            last: last.map(|_| Span {
                from_secs: 105.0,
                to_secs: 145.0,
            }),
            comparable_from_secs: 85.0,
            measures: vec![CreepMeasure {
                scenario: "chat".into(),
                measure: "ttft".into(),
                first,
                last,
                ratio,
            }],
        }
    }

    fn one(first: Option<WindowStat>, last: Option<WindowStat>, final_: bool) -> ThresholdResult {
        let r = judge(&RULES, &report(first, last), final_);
        assert_eq!(r.len(), 1);
        r.into_iter().next().unwrap()
    }

    #[test]
    fn a_measure_fails_only_when_it_crosses_both_limits() {
        // (first p99 ms, last p99 ms, fails)
        let cases = [
            (30.0, 70.0, true),    // ×2.33, +40 ms
            (30.0, 46.0, false),   // ×1.53 but +16 ms: under the floor
            (2.0, 8.0, false),     // ×4, +6 ms: a small wobble
            (200.0, 290.0, false), // +90 ms but ×1.45
            (200.0, 301.0, true),  // ×1.505, +101 ms
            (40.0, 40.0, false),   // ×1.00, +0ms
            (60.0, 20.0, false),   // faster
        ];
        for (f, l, fails) in cases {
            assert_eq!(RULES.crept(f / 1e3, l / 1e3), fails, "{f} → {l}");
            let r = one(stat(400, f), stat(400, l), true);
            assert_eq!(r.passed, !fails, "{f} → {l}: {}", r.message);
            assert_eq!(
                r.status,
                if fails {
                    ThresholdStatus::Fail
                } else {
                    ThresholdStatus::Pass
                }
            );
            assert_eq!(r.name, "creep:chat:ttft");
            assert_eq!(r.unit, "factor");
            assert_eq!(r.limit, Some(1.5));
            assert!((r.observed.unwrap() - l / f).abs() < 1e-12);
        }
    }

    #[test]
    fn an_unchanged_p99_reads_plus_zero() {
        let r = one(stat(400, 297.0), stat(400, 297.0), true);
        assert!(
            r.message.contains("×1.00, +0ms (fails over"),
            "{}",
            r.message
        );
    }

    #[test]
    fn a_failure_names_scenario_measure_both_p99s_both_windows_and_the_ratio() {
        let r = one(stat(400, 27.7), stat(400, 69.8), false);
        assert_eq!(r.status, ThresholdStatus::Fail, "live too");
        assert_eq!(
            r.message,
            "chat ttft p99 27.7ms in the first 40s window (0m05s–0m45s) and 69.8ms in the last \
             (1m45s–2m25s): ×2.52, +42.1ms crosses both ×1.5 and +20ms"
        );
        let p = one(stat(400, 27.7), stat(400, 29.1), true);
        assert_eq!(
            p.message,
            "passed: chat ttft p99 27.7ms in the first 40s window (0m05s–0m45s) and 29.1ms in the \
             last (1m45s–2m25s): ×1.05, +1.4ms (fails over ×1.5 and +20ms)"
        );
    }

    #[test]
    fn without_two_windows_or_samples_it_is_pending_then_not_judged() {
        for (first, last, why) in [
            (
                None,
                None,
                "no full 40s window after the first one yet: the two are compared from 1m25s",
            ),
            (stat(400, 30.0), None, "compared from 1m25s into the run"),
            (
                stat(99, 30.0),
                stat(400, 90.0),
                "99 samples in the first 40s window (0m05s–0m45s), 100 needed",
            ),
            (
                stat(400, 30.0),
                stat(12, 90.0),
                "12 samples in the last 40s window, 100 needed",
            ),
        ] {
            let live = one(first, last, false);
            assert_eq!(live.status, ThresholdStatus::Pending);
            assert!(live.passed);
            assert!(
                live.message.starts_with("pending: chat ttft p99: "),
                "{}",
                live.message
            );
            assert!(live.message.contains(why), "{}", live.message);
            let end = one(first, last, true);
            assert_eq!(end.status, ThresholdStatus::NotJudged);
            assert!(end.passed);
            assert!(end.message.starts_with("not judged: chat ttft p99: "));
            assert!(end.message.contains(why), "{}", end.message);
            assert_eq!(end.observed, None);
        }
    }
}
