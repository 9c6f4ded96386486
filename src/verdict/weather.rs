//! Verdicts on what the proxy did upstream, from the two-sided soak (`[upstream]` on):
//!
//! - `retry_amplification` (`max_retry_amplification`): upstream attempts per client request
//!   over the requests sent DURING STORMS (of each storm's scenarios), where the proxy's
//!   retries matter; over the whole run when no storm is configured. The message says which.
//! - `ghost_attempts` (`max_ghost_attempts`): attempts that reached the upstream after their
//!   client had finished, ids that left the tracking table included.
//! - `retry_after_violations` (`max_retry_after_violations`): next attempts sooner than the
//!   upstream's `Retry-After`.
//! - `recovery` (`max_recovery`): the longest recovery over every storm occurrence; one that
//!   never recovered fails at once. Live: pending until an occurrence is judged. Final: no
//!   judged occurrence is "no data" (none ended, or none had a baseline).
//! - `p99_proxy_added_<stage>`: the p99 of each stage of `soakd_proxy_added_seconds`
//!   ([`super::settings::stage_thresholds`]) over the run.

use std::time::Duration;

use super::{latency, ThresholdResult, ThresholdStatus, Thresholds, Unit};

/// One storm occurrence's recovery, as the verdict reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum RecoveryInput {
    Recovered(f64),
    Never,
    /// Still watched, or not judged (no baseline).
    Open,
}

/// What the proxy verdicts are judged on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WeatherInputs {
    /// Attempts per client request, and over what (`"during storms"` or `"over the run"`).
    pub amplification: Option<f64>,
    pub amplification_scope: &'static str,
    pub ghost_attempts: u64,
    pub retry_after_violations: u64,
    /// (storm name, start offset in seconds, its recovery), one per occurrence.
    pub recoveries: Vec<(String, f64, RecoveryInput)>,
    /// (threshold name, p99) of each added stage; `None` without samples.
    pub p99_added: Vec<(&'static str, Option<Duration>)>,
}

/// What these thresholds are judged on, from the two-sided soak's report.
pub fn inputs(p: &crate::upstream::ProxyReport) -> WeatherInputs {
    let w = &p.weather;
    let storms = !w.storm_totals.is_empty();
    WeatherInputs {
        amplification: if storms {
            w.amplification.in_storms
        } else {
            w.amplification.overall
        },
        amplification_scope: if storms {
            "during storms"
        } else {
            "over the run"
        },
        ghost_attempts: w.ghost_attempts.total,
        retry_after_violations: w.retry_after.violations,
        recoveries: w
            .storms
            .iter()
            .map(|o| {
                let r = match (o.recovered, o.recovery_secs) {
                    (Some(true), Some(s)) => RecoveryInput::Recovered(s),
                    (Some(false), _) => RecoveryInput::Never,
                    _ => RecoveryInput::Open,
                };
                (o.name.clone(), o.start_secs, r)
            })
            .collect(),
        p99_added: p
            .added
            .stages()
            .iter()
            .filter_map(|(stage, q)| {
                let (_, name) = super::settings::stage_thresholds()
                    .iter()
                    .find(|(s, _)| s == stage)?;
                let p99 = (q.count > 0).then(|| Duration::from_secs_f64(q.p99));
                Some((name.as_str(), p99))
            })
            .collect(),
    }
}

impl Thresholds {
    /// The proxy thresholds, in the order of [`Thresholds::names`].
    pub(super) fn evaluate_weather(
        &self,
        p: Option<&WeatherInputs>,
        final_: bool,
    ) -> Vec<ThresholdResult> {
        let empty = WeatherInputs::default();
        let p = p.unwrap_or(&empty);
        let mut out = Vec::new();
        if let Some(limit) = self.max_retry_amplification {
            out.push(amplification(p, limit, final_));
        }
        if let Some(limit) = self.max_ghost_attempts {
            out.push(ThresholdResult::judged(
                "ghost_attempts",
                Unit::Requests,
                p.ghost_attempts as f64,
                limit as f64,
            ));
        }
        if let Some(limit) = self.max_retry_after_violations {
            out.push(ThresholdResult::judged(
                "retry_after_violations",
                Unit::Requests,
                p.retry_after_violations as f64,
                limit as f64,
            ));
        }
        if let Some(limit) = self.max_recovery {
            out.push(recovery(p, limit, final_));
        }
        for (name, limit) in &self.p99_proxy_added {
            let observed = p
                .p99_added
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| *v);
            out.push(latency(name, "proxy-added", observed, *limit, final_));
        }
        out
    }
}

fn amplification(p: &WeatherInputs, limit: f64, final_: bool) -> ThresholdResult {
    const NAME: &str = "retry_amplification";
    match p.amplification {
        Some(a) => {
            let mut r = ThresholdResult::judged(NAME, Unit::Attempts, a, limit);
            r.message.push_str(&format!(
                " (attempts per client request {})",
                p.amplification_scope
            ));
            r
        }
        None if final_ => ThresholdResult::failed_no_data(
            NAME,
            Unit::Attempts,
            limit,
            format!(
                "no data: no client request was sent {}",
                p.amplification_scope
            ),
        ),
        None => ThresholdResult::pending(
            NAME,
            Unit::Attempts,
            None,
            limit,
            format!("no client request sent {} yet", p.amplification_scope),
        ),
    }
}

fn recovery(p: &WeatherInputs, limit: Duration, final_: bool) -> ThresholdResult {
    const NAME: &str = "recovery";
    let limit = limit.as_secs_f64();
    if let Some((storm, start, _)) = p
        .recoveries
        .iter()
        .find(|(_, _, r)| *r == RecoveryInput::Never)
    {
        return ThresholdResult {
            name: NAME.to_owned(),
            passed: false,
            status: ThresholdStatus::Fail,
            observed: None,
            limit: Some(limit),
            unit: Unit::Seconds.name(),
            message: format!(
                "recovery failed: storm {storm} (started at {}) never recovered (limit {})",
                Unit::Seconds.fmt(*start),
                Unit::Seconds.fmt(limit)
            ),
        };
    }
    let worst = p
        .recoveries
        .iter()
        .filter_map(|(name, start, r)| match r {
            RecoveryInput::Recovered(s) => Some((name, *start, *s)),
            _ => None,
        })
        .max_by(|a, b| a.2.total_cmp(&b.2));
    match worst {
        Some((storm, start, secs)) => {
            let mut r = ThresholdResult::judged(NAME, Unit::Seconds, secs, limit);
            r.message.push_str(&format!(
                " (longest: storm {storm} started at {})",
                Unit::Seconds.fmt(start)
            ));
            r
        }
        None if final_ => ThresholdResult::failed_no_data(
            NAME,
            Unit::Seconds,
            limit,
            "no data: no storm occurrence was judged (none ended in time, or none had \
             requests in the 30 s before it for a baseline)"
                .to_owned(),
        ),
        None => ThresholdResult::pending(
            NAME,
            Unit::Seconds,
            None,
            limit,
            "no storm occurrence judged yet".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::RawThresholds;
    use super::*;

    fn thresholds(set: impl Fn(&mut RawThresholds)) -> Thresholds {
        let mut r = RawThresholds {
            defaults: Some(false),
            ..RawThresholds::default()
        };
        set(&mut r);
        r.validate().expect("valid")
    }

    fn inputs() -> WeatherInputs {
        WeatherInputs {
            amplification: Some(3.0),
            amplification_scope: "during storms",
            ghost_attempts: 4,
            retry_after_violations: 80,
            recoveries: vec![
                ("429s".into(), 2.0, RecoveryInput::Recovered(1.0)),
                ("500s".into(), 20.0, RecoveryInput::Recovered(6.0)),
            ],
            p99_added: vec![
                ("p99_proxy_added_request", Some(Duration::from_millis(2))),
                ("p99_proxy_added_first_token", None),
                ("p99_proxy_added_chunk", Some(Duration::from_millis(40))),
            ],
        }
    }

    fn judge(t: &Thresholds, p: &WeatherInputs, final_: bool) -> Vec<(String, ThresholdStatus)> {
        t.evaluate_weather(Some(p), final_)
            .into_iter()
            .map(|r| (r.name, r.status))
            .collect()
    }

    /// Each threshold fails an input built to cross it and passes one that does not.
    #[test]
    fn each_proxy_threshold_fails_across_its_limit_and_passes_under_it() {
        use ThresholdStatus::{Fail, Pass};
        let tight = thresholds(|r| {
            r.max_retry_amplification = Some(2.0);
            r.max_ghost_attempts = Some(3);
            r.max_retry_after_violations = Some(0);
            r.max_recovery = Some("5s".into());
            r.other
                .insert("p99_proxy_added_chunk".into(), "30ms".into());
            r.other
                .insert("p99_proxy_added_request".into(), "1ms".into());
        });
        let loose = thresholds(|r| {
            r.max_retry_amplification = Some(3.0);
            r.max_ghost_attempts = Some(4);
            r.max_retry_after_violations = Some(80);
            r.max_recovery = Some("6s".into());
            r.other
                .insert("p99_proxy_added_chunk".into(), "40ms".into());
            r.other
                .insert("p99_proxy_added_request".into(), "2ms".into());
        });
        let names = [
            "retry_amplification",
            "ghost_attempts",
            "retry_after_violations",
            "recovery",
            "p99_proxy_added_request",
            "p99_proxy_added_chunk",
        ];
        let got = judge(&tight, &inputs(), true);
        let want: Vec<(String, ThresholdStatus)> =
            names.iter().map(|n| (n.to_string(), Fail)).collect();
        assert_eq!(got, want);
        let got = judge(&loose, &inputs(), true);
        let want: Vec<(String, ThresholdStatus)> =
            names.iter().map(|n| (n.to_string(), Pass)).collect();
        assert_eq!(got, want);
        let r = tight.evaluate_weather(Some(&inputs()), true);
        assert_eq!(
            r[0].message,
            "retry_amplification 3 > 2 (exceeded by 1) (attempts per client request during storms)"
        );
        assert!(r[3].message.contains("storm 500s"), "{}", r[3].message);
        assert_eq!(tight.names(), names, "evaluation order");
    }

    #[test]
    fn never_recovered_fails_and_missing_data_is_pending_then_fails() {
        let t = thresholds(|r| {
            r.max_recovery = Some("1h".into());
            r.other
                .insert("p99_proxy_added_first_token".into(), "1s".into());
        });
        let mut p = inputs();
        p.recoveries
            .push(("stall".into(), 40.0, RecoveryInput::Never));
        let r = t.evaluate_weather(Some(&p), false);
        assert_eq!(r[0].status, ThresholdStatus::Fail, "live too");
        assert!(
            r[0].message
                .contains("storm stall (started at 40s) never recovered"),
            "{}",
            r[0].message
        );
        assert_eq!(
            r[1].status,
            ThresholdStatus::Pending,
            "no first-token sample yet"
        );
        let open = WeatherInputs {
            recoveries: vec![("s".into(), 1.0, RecoveryInput::Open)],
            ..WeatherInputs::default()
        };
        let live = t.evaluate_weather(Some(&open), false);
        assert_eq!(live[0].status, ThresholdStatus::Pending);
        let end = t.evaluate_weather(Some(&open), true);
        assert_eq!(end[0].status, ThresholdStatus::Fail);
        assert!(end[0].message.contains("no data"), "{}", end[0].message);
        assert!(end[1].message.contains("no data"), "{}", end[1].message);
    }
}
