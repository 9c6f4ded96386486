//! The monitor's leak verdicts as thresholds: `leak:PROCESS:RESOURCE`, and soakd's own verdict
//! as the soak's `suspect` mark.
//!
//! Rules (see also the parent module's docs):
//! - one [`LeakInput`] per monitored process and resource (`rss`, `fds`, `threads`), gathered
//!   by the daemon from the monitor's report;
//! - `judge`: `leak` fails, `ok` passes, `unknown` is pending during the run and
//!   [`ThresholdStatus::NotJudged`] at the end (never a failure); each message carries the
//!   monitor's reason ([`crate::monitor::reason`]) and the result its rate limit;
//! - soakd's own process ([`LeakInput::is_self`]) and processes with `fail_on_leak = false`
//!   get no threshold ([`LeakInput::judged`]);
//! - [`suspicions`]: each resource of soakd's own process whose verdict is `leak` gives one
//!   reason to call the soak suspect. This holds whatever `leak_verdicts` says: it is a
//!   warning about the measurement, not a threshold.

use super::{ThresholdResult, ThresholdStatus, Unit};
use crate::units::{fmt_bytes, trim_num};

/// Every leak threshold name starts with this.
pub const PREFIX: &str = "leak:";

/// The threshold name of one process's resource: `leak:PROCESS:RESOURCE`.
pub fn leak_threshold_name(process: &str, resource: &str) -> String {
    format!("{PREFIX}{process}:{resource}")
}

/// The monitor's verdict on one resource of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeakState {
    /// Both the shortest and the longest window call a leak.
    Leak,
    /// Enough data, no leak.
    Ok,
    /// The longest window has no fit (too little data, or too few sawtooth cycles): no
    /// verdict.
    Unknown,
}

/// One resource of one monitored process, as the daemon read it from the monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct LeakInput {
    /// The `process` label.
    pub process: String,
    /// `rss`, `fds` or `threads`.
    pub resource: &'static str,
    /// The monitor's verdict.
    pub state: LeakState,
    /// Slope per hour (bytes for `rss`, a count otherwise) of the longest window with a fit.
    pub slope_per_hour: Option<f64>,
    /// The label of that window, e.g. `2h`.
    pub window: Option<String>,
    /// R² of that fit.
    pub r2: Option<f64>,
    /// `false` when the process's `[[monitor.processes]]` entry sets `fail_on_leak = false`.
    pub fail_on_leak: bool,
    /// soakd's own process (`process="soakd"`).
    pub is_self: bool,
    /// Why the verdict is what it is, with the limit it was held to
    /// ([`crate::monitor::reason::verdict`]).
    pub reason: String,
    /// The rate limit per hour the slope is judged against (RSS at this baseline), when known.
    pub limit_per_hour: Option<f64>,
}

impl LeakInput {
    /// Whether this resource gets a `leak:…` threshold: not soakd itself, not opted out.
    pub fn judged(&self) -> bool {
        !self.is_self && self.fail_on_leak
    }

    fn unit(&self) -> Unit {
        if self.resource == "rss" {
            Unit::BytesPerHour
        } else {
            Unit::PerHour
        }
    }

    /// `+1.2GiB/h over the 2m window (r² 0.99)`, or `no slope yet`.
    fn growth(&self) -> String {
        match (self.slope_per_hour, &self.window) {
            (Some(s), Some(w)) => {
                let v = match self.unit() {
                    Unit::BytesPerHour => fmt_bytes(s),
                    _ => trim_num(s, 1),
                };
                let sign = if s >= 0.0 { "+" } else { "" };
                let r2 = self.r2.map_or(String::new(), |r| format!(" (r² {r:.2})"));
                format!("{sign}{v}/h over the {w} window{r2}")
            }
            _ => "no slope yet".to_owned(),
        }
    }
}

/// The threshold result of one judged leak input.
pub(super) fn judge(l: &LeakInput, final_: bool) -> ThresholdResult {
    let name = leak_threshold_name(&l.process, l.resource);
    let (passed, status, message) = match (l.state, final_) {
        (LeakState::Leak, _) => (
            false,
            ThresholdStatus::Fail,
            format!("process {} leaks {}: {}", l.process, l.resource, l.growth()),
        ),
        (LeakState::Ok, _) => (
            true,
            ThresholdStatus::Pass,
            format!("passed: process {} {} {}", l.process, l.resource, l.reason),
        ),
        (LeakState::Unknown, false) => (
            true,
            ThresholdStatus::Pending,
            format!(
                "pending: process {} {}: {}",
                l.process, l.resource, l.reason
            ),
        ),
        (LeakState::Unknown, true) => (
            true,
            ThresholdStatus::NotJudged,
            format!(
                "not judged: process {} {}: {}; run longer, or use [monitor] windows that fit \
                 the run and span 6 cycles of a sawtooth",
                l.process, l.resource, l.reason
            ),
        ),
    };
    ThresholdResult {
        name,
        passed,
        status,
        observed: l.slope_per_hour,
        limit: l.limit_per_hour,
        unit: l.unit().name(),
        message,
    }
}

/// Why the soak is suspect: one sentence per resource of soakd's own process whose verdict
/// is `leak`. Empty when soakd is clean (or not judged).
pub fn suspicions(leaks: &[LeakInput]) -> Vec<String> {
    leaks
        .iter()
        .filter(|l| l.is_self && l.state == LeakState::Leak)
        .map(|l| {
            format!(
                "soakd itself leaks {}: {} — its own growth can skew what it measured; \
                 the soak is suspect (this never fails the run)",
                l.resource,
                l.growth()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::MIB;
    use crate::verdict::{ExitVerdict, RawThresholds, VerdictInputs};

    fn input(process: &str, resource: &'static str, state: LeakState) -> LeakInput {
        LeakInput {
            process: process.into(),
            resource,
            state,
            slope_per_hour: Some(if resource == "rss" {
                1536.0 * MIB
            } else {
                18_000.0
            }),
            window: Some("2m".into()),
            r2: Some(0.987),
            fail_on_leak: true,
            is_self: process == "soakd",
            reason: "+1.5GiB/h over the 2m window, but below growth floor: +3MiB < 4MiB \
                     (min_growth_bytes) (limit 50MiB/h and 10%/h; floor 4MiB)"
                .into(),
            limit_per_hour: Some(if resource == "rss" { 50.0 * MIB } else { 60.0 }),
        }
    }

    fn inputs(leaks: Vec<LeakInput>) -> VerdictInputs {
        VerdictInputs {
            leaks,
            ..VerdictInputs::default()
        }
    }

    /// Leak verdicts only (defaults off, leak verdicts explicitly on).
    fn leak_only() -> crate::verdict::Thresholds {
        RawThresholds {
            defaults: Some(false),
            leak_verdicts: Some(true),
            ..RawThresholds::default()
        }
        .validate()
        .unwrap()
    }

    #[test]
    fn a_leak_fails_and_names_process_resource_slope_and_window() {
        let t = leak_only();
        let i = inputs(vec![
            input("target", "rss", LeakState::Leak),
            input("target", "fds", LeakState::Leak),
            input("target", "threads", LeakState::Ok),
        ]);
        for final_ in [false, true] {
            let res = t.evaluate(&i, final_);
            let names: Vec<&str> = res.iter().map(|r| r.name.as_str()).collect();
            assert_eq!(
                names,
                ["leak:target:rss", "leak:target:fds", "leak:target:threads"]
            );
            let rss = &res[0];
            assert!(!rss.passed);
            assert_eq!(rss.status, ThresholdStatus::Fail);
            assert_eq!(rss.observed, Some(1536.0 * MIB));
            assert_eq!(rss.limit, Some(50.0 * MIB), "the limit it was held to");
            assert_eq!(rss.unit, "bytes_per_hour");
            // Explicitly on: no "default" hint.
            assert_eq!(
                rss.message,
                "process target leaks rss: +1.5GiB/h over the 2m window (r² 0.99)"
            );
            assert_eq!(res[1].unit, "per_hour");
            assert_eq!(
                res[1].message,
                "process target leaks fds: +18000/h over the 2m window (r² 0.99)"
            );
            assert!(res[2].passed);
            assert_eq!(res[2].status, ThresholdStatus::Pass);
            assert_eq!(
                res[2].message,
                "passed: process target threads +1.5GiB/h over the 2m window, but below growth \
                 floor: +3MiB < 4MiB (min_growth_bytes) (limit 50MiB/h and 10%/h; floor 4MiB)",
                "a pass carries the monitor's reason"
            );
            assert_eq!(res[2].limit, Some(60.0), "and its limit");
            assert_eq!(ExitVerdict::from_results(&res), ExitVerdict::Fail);
        }
    }

    #[test]
    fn unknown_is_pending_live_and_not_judged_at_the_end() {
        let t = leak_only();
        let mut l = input("proxy", "rss", LeakState::Unknown);
        l.slope_per_hour = None;
        l.window = None;
        l.limit_per_hour = None;
        l.reason = "the longest window (90s) has no fit: it holds 40s of 1m 30s (a fit needs \
                    half, after the warm-up)"
            .into();
        let i = inputs(vec![l]);
        let live = &t.evaluate(&i, false)[0];
        assert_eq!(live.status, ThresholdStatus::Pending);
        assert!(live.passed);
        let fin = t.evaluate(&i, true);
        assert_eq!(fin[0].name, "leak:proxy:rss");
        assert_eq!(fin[0].status, ThresholdStatus::NotJudged);
        assert!(fin[0].passed);
        assert!(
            fin[0].message.starts_with(
                "not judged: process proxy rss: the longest window (90s) has no fit: it holds \
                 40s of 1m 30s"
            ),
            "the reason is in the message: {}",
            fin[0].message
        );
        assert!(
            live.message
                .starts_with("pending: process proxy rss: the longest window (90s)"),
            "{}",
            live.message
        );
        assert_eq!(ExitVerdict::from_results(&fin), ExitVerdict::Pass);
        let json = serde_json::to_value(&fin[0]).unwrap();
        assert_eq!(json["status"], "not_judged");
        assert_eq!(json["limit"], serde_json::Value::Null);
    }

    #[test]
    fn soakd_itself_never_fails_the_run_but_makes_it_suspect() {
        let t = leak_only();
        let i = inputs(vec![
            input("soakd", "rss", LeakState::Leak),
            input("soakd", "threads", LeakState::Ok),
            input("target", "rss", LeakState::Ok),
        ]);
        let res = t.evaluate(&i, true);
        let names: Vec<&str> = res.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["leak:target:rss"], "no threshold for soakd itself");
        assert_eq!(ExitVerdict::from_results(&res), ExitVerdict::Pass);
        let why = suspicions(&i.leaks);
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(
            why[0].starts_with("soakd itself leaks rss: +1.5GiB/h over the 2m window"),
            "{}",
            why[0]
        );
        assert!(why[0].contains("suspect"), "{}", why[0]);
        // A clean soakd is not suspect; another process's leak does not make it so either.
        let clean = inputs(vec![
            input("soakd", "rss", LeakState::Ok),
            input("target", "rss", LeakState::Leak),
        ]);
        assert!(suspicions(&clean.leaks).is_empty());
    }

    #[test]
    fn opt_outs_per_process_and_globally() {
        let mut quiet = input("sidecar", "rss", LeakState::Leak);
        quiet.fail_on_leak = false;
        let i = inputs(vec![quiet, input("target", "rss", LeakState::Leak)]);
        let res = leak_only().evaluate(&i, true);
        let names: Vec<&str> = res.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["leak:target:rss"], "fail_on_leak = false opts out");

        // leak_verdicts = false: no leak threshold at all, the run passes.
        let off = RawThresholds {
            leak_verdicts: Some(false),
            ..RawThresholds::default()
        }
        .validate()
        .unwrap();
        let res = off.evaluate(&i, true);
        assert!(res.iter().all(|r| !r.name.starts_with(PREFIX)), "{res:?}");
        assert!(!off.leak_verdicts);
        // soakd's suspicion does not depend on leak_verdicts.
        assert_eq!(
            suspicions(&[input("soakd", "fds", LeakState::Leak)]).len(),
            1
        );
    }

    #[test]
    fn a_default_leak_verdict_says_how_to_turn_it_off() {
        let t = RawThresholds::default().validate().unwrap();
        assert!(t.leak_verdicts);
        let res = t.evaluate(&inputs(vec![input("target", "rss", LeakState::Leak)]), true);
        let r = res.iter().find(|r| r.name == "leak:target:rss").unwrap();
        assert!(!r.passed);
        assert!(r.message.contains("fail_on_leak = false"), "{}", r.message);
        assert!(r.message.contains("leak_verdicts = false"), "{}", r.message);
    }
}
