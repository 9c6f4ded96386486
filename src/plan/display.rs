//! The plan on one line, for the "soak started" log: what the run will really send.
//!
//! Open model: `open 10 rps, constant arrivals, no bursts, no stages`, with bursts as
//! `bursts x4 for 8s every 40s from 40s` (or `at 200 rps`) and stages as
//! `stages 10m->50 rps, 1h50m->200 rps (looped)`. Closed model:
//! `closed 50 users, think time 500ms, ramp-up 30s`. Rates are this shard's share.

use std::fmt;

use super::{ArrivalKind, BurstRate, ClosedPlan, OpenPlan, Plan};
use crate::units::{fmt_duration, trim_num};

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Plan::Open(p) => p.fmt(f),
            Plan::Closed(p) => p.fmt(f),
        }
    }
}

impl fmt::Display for OpenPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arrivals = match self.arrivals {
            ArrivalKind::Constant => "constant",
            ArrivalKind::Poisson => "poisson",
        };
        write!(
            f,
            "open {} rps, {arrivals} arrivals, ",
            trim_num(self.rate, 3)
        )?;
        match &self.burst {
            None => f.write_str("no bursts")?,
            Some(b) => {
                let rate = match b.rate {
                    BurstRate::Multiplier(m) => format!("x{}", trim_num(m, 3)),
                    BurstRate::Absolute(r) => format!("at {} rps", trim_num(r, 3)),
                };
                write!(
                    f,
                    "bursts {rate} for {} every {} from {}",
                    fmt_duration(b.length),
                    fmt_duration(b.every),
                    fmt_duration(b.offset)
                )?;
            }
        }
        if self.stages.is_empty() {
            return f.write_str(", no stages");
        }
        let stages: Vec<String> = self
            .stages
            .iter()
            .map(|s| {
                format!(
                    "{}->{} rps",
                    fmt_duration(s.duration),
                    trim_num(s.target, 3)
                )
            })
            .collect();
        write!(f, ", stages {}", stages.join(", "))?;
        if self.loop_stages {
            f.write_str(" (looped)")?;
        }
        Ok(())
    }
}

impl fmt::Display for ClosedPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "closed {} users, think time {}, ramp-up {}",
            self.users,
            fmt_duration(self.think_time),
            fmt_duration(self.ramp_up)
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::plan::{Burst, Stage};

    #[test]
    fn steady_bursts_stages_and_closed_read_on_one_line() {
        let steady = Plan::Open(OpenPlan::steady(10.0));
        assert_eq!(
            steady.to_string(),
            "open 10 rps, constant arrivals, no bursts, no stages"
        );
        let mut p = OpenPlan::steady(50.0);
        p.arrivals = ArrivalKind::Poisson;
        p.burst = Some(Burst {
            every: Duration::from_secs(40),
            length: Duration::from_secs(8),
            offset: Duration::from_secs(40),
            rate: BurstRate::Multiplier(4.0),
        });
        assert_eq!(
            p.to_string(),
            "open 50 rps, poisson arrivals, bursts x4 for 8s every 40s from 40s, no stages"
        );
        p.burst = None;
        p.rate = 0.0;
        p.stages = vec![
            Stage {
                duration: Duration::from_secs(600),
                target: 50.0,
            },
            Stage {
                duration: Duration::from_secs(6600),
                target: 200.0,
            },
        ];
        p.loop_stages = true;
        assert_eq!(
            p.to_string(),
            "open 0 rps, poisson arrivals, no bursts, stages 10m->50 rps, 1h 50m->200 rps (looped)"
        );
        let c = Plan::Closed(ClosedPlan {
            users: 50,
            think_time: Duration::from_millis(500),
            ramp_up: Duration::from_secs(30),
        });
        assert_eq!(
            c.to_string(),
            "closed 50 users, think time 500ms, ramp-up 30s"
        );
    }
}
