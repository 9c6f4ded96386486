//! Finding the run's shards in Prometheus and waiting until each lingers.
//!
//! Three instant queries at `now`, joined here on `instance`:
//! - `max by (instance, shard) (soakd_run_info{run_id="ID"})`: which instance is which shard;
//! - `max by (instance, state) (soakd_run_state == 1)`: each instance's current state;
//! - `max by (instance) (soakd_run_start_time_seconds)`: when it started.
//!
//! Instant queries only see series scraped recently (Prometheus's 5-minute lookback, cut
//! short by the staleness marker a vanished target gets), so a previous run under the same
//! `run_id` whose pods are gone is never taken for this one. A shard counts as *lingering*
//! when its `soakd_run_state{state="linger"}` is 1 now: its run is over and its final counters
//! have been scraped (the state changes after the summary). When two instances claim the same
//! shard (a restarted pod beside its old one still lingering), the later start wins.

use std::collections::BTreeMap;

use url::Url;

use crate::analyze::prometheus::{query_instant, Sample};
use crate::analyze::InputError;

/// The state a lingering shard reports.
pub const LINGER: &str = "linger";

/// One shard as Prometheus sees it now.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// The shard index (`soakd_run_info{shard}`).
    pub shard: u32,
    /// Prometheus's `instance`: the shard's admin address (host:port).
    pub instance: String,
    /// Its current `soakd_run_state`, when it exports one.
    pub state: Option<String>,
    /// `soakd_run_start_time_seconds`, when exported.
    pub start: Option<f64>,
}

impl Seen {
    /// Lingering, with a start time (what the verdict needs).
    pub fn lingering(&self) -> bool {
        self.state.as_deref() == Some(LINGER) && self.start.is_some()
    }
}

/// A PromQL string literal: `"…"` with `\` and `"` escaped.
pub fn promql_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The three discovery queries for `run_id`.
pub fn queries(run_id: &str) -> [String; 3] {
    [
        format!(
            "max by (instance, shard) (soakd_run_info{{run_id={}}})",
            promql_str(run_id)
        ),
        "max by (instance, state) (soakd_run_state == 1)".to_owned(),
        "max by (instance) (soakd_run_start_time_seconds)".to_owned(),
    ]
}

/// Joins the three answers on `instance`: one [`Seen`] per shard index (the later start when
/// two instances claim one), in index order. Samples without the labels are skipped.
pub fn join(info: &[Sample], states: &[Sample], starts: &[Sample]) -> Vec<Seen> {
    let label = |s: &Sample, k: &str| s.labels.get(k).cloned();
    let state_of: BTreeMap<String, String> = states
        .iter()
        .filter_map(|s| Some((label(s, "instance")?, label(s, "state")?)))
        .collect();
    let start_of: BTreeMap<String, f64> = starts
        .iter()
        .filter_map(|s| Some((label(s, "instance")?, s.value)))
        .collect();
    let mut by_shard: BTreeMap<u32, Seen> = BTreeMap::new();
    for s in info {
        let (Some(instance), Some(shard)) = (label(s, "instance"), label(s, "shard")) else {
            continue;
        };
        let Ok(shard) = shard.parse::<u32>() else {
            continue;
        };
        let seen = Seen {
            shard,
            state: state_of.get(&instance).cloned(),
            start: start_of.get(&instance).copied(),
            instance,
        };
        match by_shard.get(&shard) {
            Some(old) if old.start.unwrap_or(f64::MIN) >= seen.start.unwrap_or(f64::MIN) => {}
            _ => {
                by_shard.insert(shard, seen);
            }
        }
    }
    by_shard.into_values().collect()
}

/// Asks Prometheus once, at `now`.
pub async fn look(
    client: &reqwest::Client,
    base: &Url,
    run_id: &str,
    now: f64,
) -> Result<Vec<Seen>, InputError> {
    let [qi, qs, qt] = queries(run_id);
    let info = query_instant(client, base, &qi, now).await?;
    let states = query_instant(client, base, &qs, now).await?;
    let starts = query_instant(client, base, &qt, now).await?;
    Ok(join(&info, &states, &starts))
}

/// What Prometheus last said of a shard that was not read: never seen, or its state.
pub fn describe(s: Option<&Seen>) -> String {
    match s {
        None => "never seen".to_owned(),
        Some(s) => match &s.state {
            Some(st) => format!("at {} in state {st}, not lingering yet", s.instance),
            None => format!(
                "at {} exports no soakd_run_state (a soakd without run states?)",
                s.instance
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(labels: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            value,
        }
    }

    #[test]
    fn promql_strings_are_escaped() {
        assert_eq!(promql_str("soakd"), r#""soakd""#);
        assert_eq!(promql_str(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(
            queries(r#"x"y"#)[0],
            r#"max by (instance, shard) (soakd_run_info{run_id="x\"y"})"#
        );
    }

    #[test]
    fn shards_are_joined_on_instance_and_the_later_start_wins() {
        let info = [
            sample(&[("instance", "a:1"), ("shard", "0")], 1.0),
            sample(&[("instance", "b:1"), ("shard", "1")], 1.0),
            // Shard 1 restarted on another instance, later.
            sample(&[("instance", "c:1"), ("shard", "1")], 1.0),
            sample(&[("instance", "d:1"), ("shard", "x")], 1.0),
        ];
        let states = [
            sample(&[("instance", "a:1"), ("state", "linger")], 1.0),
            sample(&[("instance", "b:1"), ("state", "linger")], 1.0),
            sample(&[("instance", "c:1"), ("state", "load")], 1.0),
            sample(&[("instance", "zz:1"), ("state", "load")], 1.0),
        ];
        let starts = [
            sample(&[("instance", "a:1")], 100.0),
            sample(&[("instance", "b:1")], 100.0),
            sample(&[("instance", "c:1")], 160.0),
        ];
        let seen = join(&info, &states, &starts);
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0].instance, "a:1");
        assert!(seen[0].lingering());
        assert_eq!(
            seen[1].instance, "c:1",
            "the restarted shard 1 is the one judged"
        );
        assert_eq!(seen[1].state.as_deref(), Some("load"));
        assert_eq!(
            describe(Some(&seen[1])),
            "at c:1 in state load, not lingering yet"
        );
        assert_eq!(describe(None), "never seen");
    }
}
