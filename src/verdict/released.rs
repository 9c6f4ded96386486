//! `min_released_share`: a run fails when a process's memory does not come back after the
//! load.
//!
//! Rules:
//! - one [`ReleasedInput`] per monitored process, from its memory arc
//!   ([`crate::monitor::arc`]): the share of its growth above the idle level that it gave
//!   back by the end of the cooldown, `(peak − recovered) / (peak − idle)`;
//! - a threshold `released:PROCESS` for each process whose verdicts fail the run (not soakd
//!   itself, not `fail_on_leak = false`), judged only at the end: pending during the run;
//! - at the end: a share at or above the limit passes, below it fails; memory that never rose
//!   above its idle level by more than the leak floor has nothing to release and passes; a
//!   process without idle or cooldown samples (a run stopped before its cooldown, a process
//!   that could not be read) is not judged.
//!
//! The config requires `[run] idle` and `[run] cooldown` above 0 with this threshold
//! ([`crate::config`], exit 78).

use super::{ThresholdResult, ThresholdStatus};

/// Every released-share threshold name starts with this.
pub const PREFIX: &str = "released:";

/// The threshold name of one process: `released:PROCESS`.
pub fn released_threshold_name(process: &str) -> String {
    format!("{PREFIX}{process}")
}

/// One monitored process's released share, as the daemon read it from its arc.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleasedInput {
    /// The `process` label.
    pub process: String,
    /// Idle, peak and recovered memory were all measured.
    pub measured: bool,
    /// `(peak − recovered) / (peak − idle)`; `None` when measured but the memory never rose
    /// above the idle level by more than the floor.
    pub share: Option<f64>,
    /// The memory values, for the message: idle, peak, recovered (bytes).
    pub idle_peak_recovered: [Option<f64>; 3],
    /// `false` when the process sets `fail_on_leak = false`.
    pub fail_on_leak: bool,
    /// soakd's own process.
    pub is_self: bool,
}

impl ReleasedInput {
    /// Whether this process gets a `released:…` threshold.
    pub fn judged(&self) -> bool {
        !self.is_self && self.fail_on_leak
    }
}

/// The threshold result of one judged process against `limit`.
pub(super) fn judge(r: &ReleasedInput, limit: f64, final_: bool) -> ThresholdResult {
    let pct = |v: f64| format!("{:.1}%", v * 100.0);
    let mem = |v: Option<f64>| v.map_or("-".into(), crate::units::fmt_bytes);
    let [idle, peak, recovered] = r.idle_peak_recovered;
    let values = format!(
        "idle {}, peak {}, recovered {}",
        mem(idle),
        mem(peak),
        mem(recovered)
    );
    let p = &r.process;
    let (status, message) = match (final_, r.measured, r.share) {
        (false, _, _) => (
            ThresholdStatus::Pending,
            format!("pending: process {p}'s released share is measured after the cooldown"),
        ),
        (true, false, _) => (
            ThresholdStatus::NotJudged,
            format!(
                "not judged: process {p} has no idle or no cooldown samples (a run stopped \
                 before its cooldown, or a process that could not be read)"
            ),
        ),
        (true, true, None) => (
            ThresholdStatus::Pass,
            format!(
                "passed: process {p}'s memory never rose above its idle level by more than \
                 the leak floor: nothing to release ({values})"
            ),
        ),
        (true, true, Some(s)) if s >= limit => (
            ThresholdStatus::Pass,
            format!(
                "passed: process {p} released {} of its memory growth >= {} ({values})",
                pct(s),
                pct(limit)
            ),
        ),
        (true, true, Some(s)) => (
            ThresholdStatus::Fail,
            format!(
                "process {p} released {} of its memory growth after the cooldown < {} \
                 ({values})",
                pct(s),
                pct(limit)
            ),
        ),
    };
    ThresholdResult {
        name: released_threshold_name(p),
        passed: status != ThresholdStatus::Fail,
        status,
        observed: r.share,
        limit: Some(limit),
        unit: "ratio",
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1024.0 * 1024.0;

    fn input(measured: bool, share: Option<f64>) -> ReleasedInput {
        ReleasedInput {
            process: "target".into(),
            measured,
            share,
            idle_peak_recovered: [Some(10.0 * MIB), Some(60.0 * MIB), Some(58.0 * MIB)],
            fail_on_leak: true,
            is_self: false,
        }
    }

    #[test]
    fn judged_at_the_end_against_the_limit() {
        let r = judge(&input(true, Some(0.04)), 0.5, true);
        assert_eq!((r.status, r.passed), (ThresholdStatus::Fail, false));
        assert_eq!(r.name, "released:target");
        assert_eq!(
            r.message,
            "process target released 4.0% of its memory growth after the cooldown < 50.0% \
             (idle 10MiB, peak 60MiB, recovered 58MiB)"
        );
        assert_eq!(
            (r.observed, r.limit, r.unit),
            (Some(0.04), Some(0.5), "ratio")
        );
        let r = judge(&input(true, Some(0.5)), 0.5, true);
        assert_eq!(r.status, ThresholdStatus::Pass, "the limit itself passes");
        let r = judge(&input(true, None), 0.5, true);
        assert_eq!(r.status, ThresholdStatus::Pass);
        assert!(r.message.contains("nothing to release"), "{}", r.message);
        let r = judge(&input(false, None), 0.5, true);
        assert_eq!((r.status, r.passed), (ThresholdStatus::NotJudged, true));
        let r = judge(&input(true, Some(0.0)), 0.5, false);
        assert_eq!((r.status, r.passed), (ThresholdStatus::Pending, true));
        assert!(!ReleasedInput {
            is_self: true,
            ..input(true, None)
        }
        .judged());
    }
}
