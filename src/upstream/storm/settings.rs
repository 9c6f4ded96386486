//! `[[upstream.storms]]`: raw entries mirroring the file, validated into [`StormSpec`]s.
//!
//! [`RawStorm::validate`] checks one entry on its own (keys that belong to its kind, ranges);
//! [`check_against_run`] checks what involves other sections (scenario names, which
//! scenarios stream, the run's duration) and is called by the config composer. Errors name
//! `upstream.storms[i].<key>` (`i` from 0, in file order).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::units::{self, ConfigError};

/// The APIs a storm's `apis` filter can name — the `[[scenarios]] api` spellings — each with
/// the endpoint label of the mock that serves it.
pub const APIS: [(&str, &str); 5] = [
    ("openai", "chat_completions"),
    ("openai-responses", "responses"),
    ("openai-completions", "completions"),
    ("openai-embeddings", "embeddings"),
    ("anthropic", "messages"),
];

/// Most storms one run may configure (each request records its storms in a 64-bit mask).
pub const MAX_STORMS: usize = 64;

/// Largest `retry_after` accepted, seconds.
pub const MAX_RETRY_AFTER: u64 = 86_400;

fn one() -> f64 {
    1.0
}

/// One `[[upstream.storms]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorm {
    /// Name in the `storm` label, the summary and the page (default `storm-N`, N counting
    /// from 1 in file order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When it starts, from the start of load ("30s", "5m").
    #[serde(with = "units::serde_duration")]
    pub start: Duration,
    /// How long it lasts.
    #[serde(with = "units::serde_duration")]
    pub duration: Duration,
    /// Repeat it this often (start to start), until the end of load; unset = once.
    #[serde(
        default,
        with = "units::serde_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub every: Option<Duration>,
    /// What the upstream does to the requests it hits: `status` (answer `status`), `slow`
    /// (wait `delay` before the first byte), `stall` (streams: the headers and the first
    /// chunk, then nothing; unary: nothing at all), `reset` (close the connection after
    /// `after_chunks` chunks) or `refuse` (close new connections at accept).
    pub kind: String,
    /// `kind = "status"`: the HTTP status, 400..=599.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `kind = "status"` with status 429 or 503: send `Retry-After` with this many seconds.
    /// Unset: no `Retry-After` at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// `kind = "slow"`: the delay before the first byte.
    #[serde(
        default,
        with = "units::serde_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub delay: Option<Duration>,
    /// `kind = "reset"`: content chunks sent before the close (default 0; streams only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_chunks: Option<u32>,
    /// The fraction of requests hit (for `refuse`: of new connections), 0..=1.
    #[serde(default = "one")]
    pub rate: f64,
    /// Hit only the requests of these scenarios (not with `refuse`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenarios: Option<Vec<String>>,
    /// Hit only the requests of these APIs (`openai`, `openai-responses`, …; not with
    /// `refuse`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apis: Option<Vec<String>>,
}

/// What a storm does to what it hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StormFault {
    Status {
        status: u16,
        retry_after: Option<u32>,
    },
    Slow(Duration),
    Stall,
    Reset {
        after_chunks: u32,
    },
    Refuse,
}

crate::metrics::label_enum! {
    /// A kind of injected fault (`kind` label of `soakd_upstream_faults_total`): the five storm
    /// kinds, then the mock's own fault rates (`error_rate` is `status`).
    FaultKind {
        Status => "status",
        Slow => "slow",
        Stall => "stall",
        Reset => "reset",
        Refuse => "refuse",
        ErrorEvent => "error_event",
        Truncate => "truncate",
        Garbage => "garbage",
    }
}

impl StormFault {
    /// The `kind` label.
    pub fn kind(self) -> FaultKind {
        match self {
            StormFault::Status { .. } => FaultKind::Status,
            StormFault::Slow(_) => FaultKind::Slow,
            StormFault::Stall => FaultKind::Stall,
            StormFault::Reset { .. } => FaultKind::Reset,
            StormFault::Refuse => FaultKind::Refuse,
        }
    }
}

/// A validated storm.
#[derive(Debug, Clone, PartialEq)]
pub struct StormSpec {
    pub name: String,
    pub start: Duration,
    pub duration: Duration,
    pub every: Option<Duration>,
    pub fault: StormFault,
    pub rate: f64,
    /// Scenario names it is limited to.
    pub scenarios: Option<Vec<String>>,
    /// APIs it is limited to (names from [`APIS`]).
    pub apis: Option<Vec<&'static str>>,
}

const KINDS: [(&str, FaultKind); 5] = [
    ("status", FaultKind::Status),
    ("slow", FaultKind::Slow),
    ("stall", FaultKind::Stall),
    ("reset", FaultKind::Reset),
    ("refuse", FaultKind::Refuse),
];

impl RawStorm {
    /// Validates entry `i` on its own.
    pub fn validate(&self, i: usize) -> Result<StormSpec, ConfigError> {
        let f = |key: &str| format!("upstream.storms[{i}].{key}");
        let name = match &self.name {
            Some(n) => {
                units::label_value(&f("name"), n)?;
                n.clone()
            }
            None => format!("storm-{}", i + 1),
        };
        let duration = units::nonzero_duration(&f("duration"), self.duration)?;
        if let Some(every) = self.every {
            if every <= duration {
                return Err(ConfigError::invalid(
                    f("every"),
                    units::fmt_duration(every),
                    format!(
                        "must be longer than the storm's duration ({}): occurrences would overlap",
                        units::fmt_duration(duration)
                    ),
                ));
            }
        }
        if !self.rate.is_finite() || !(0.0..=1.0).contains(&self.rate) {
            return Err(ConfigError::invalid(
                f("rate"),
                self.rate,
                "must be a fraction of requests in 0..=1",
            ));
        }
        let kind = units::one_of(f("kind"), &self.kind, &KINDS)?;
        // Each key that belongs to one kind only.
        let only = |key: &str, set: bool, owner: FaultKind| -> Result<(), ConfigError> {
            if set && kind != owner {
                return Err(ConfigError::invalid(
                    f(key),
                    "(set)",
                    format!(
                        "only with kind = \"{owner}\" (this storm is kind = \"{}\")",
                        self.kind
                    ),
                ));
            }
            Ok(())
        };
        only("status", self.status.is_some(), FaultKind::Status)?;
        only("retry_after", self.retry_after.is_some(), FaultKind::Status)?;
        only("delay", self.delay.is_some(), FaultKind::Slow)?;
        only(
            "after_chunks",
            self.after_chunks.is_some(),
            FaultKind::Reset,
        )?;
        let fault = match kind {
            FaultKind::Status => {
                let status = self.status.ok_or_else(|| {
                    ConfigError::invalid(f("status"), "(unset)", "kind = \"status\" needs a status")
                })?;
                if !(400..=599).contains(&status) {
                    return Err(ConfigError::invalid(
                        f("status"),
                        status,
                        "must be an HTTP error status in 400..=599",
                    ));
                }
                let retry_after = match self.retry_after {
                    None => None,
                    Some(_) if !matches!(status, 429 | 503) => {
                        return Err(ConfigError::invalid(
                            f("retry_after"),
                            self.retry_after.unwrap_or_default(),
                            format!(
                                "Retry-After is sent with status 429 or 503 only (this storm \
                                 answers {status})"
                            ),
                        ))
                    }
                    Some(s) if s > MAX_RETRY_AFTER => {
                        return Err(ConfigError::invalid(
                            f("retry_after"),
                            s,
                            format!("must be at most {MAX_RETRY_AFTER} seconds"),
                        ))
                    }
                    Some(s) => Some(s as u32),
                };
                StormFault::Status {
                    status,
                    retry_after,
                }
            }
            FaultKind::Slow => {
                let delay = self.delay.ok_or_else(|| {
                    ConfigError::invalid(f("delay"), "(unset)", "kind = \"slow\" needs a delay")
                })?;
                StormFault::Slow(units::nonzero_duration(&f("delay"), delay)?)
            }
            FaultKind::Stall => StormFault::Stall,
            FaultKind::Reset => StormFault::Reset {
                after_chunks: self.after_chunks.unwrap_or(0),
            },
            _ => StormFault::Refuse,
        };
        if fault == StormFault::Refuse {
            for (key, set) in [
                ("scenarios", self.scenarios.is_some()),
                ("apis", self.apis.is_some()),
            ] {
                if set {
                    return Err(ConfigError::invalid(
                        f(key),
                        "(set)",
                        "a refuse storm closes connections before any request is read, so it \
                         cannot pick scenarios or APIs",
                    ));
                }
            }
        }
        let scenarios = match &self.scenarios {
            Some(list) if list.is_empty() => {
                return Err(ConfigError::invalid(
                    f("scenarios"),
                    "[]",
                    "must name at least one scenario (leave it unset for every scenario)",
                ))
            }
            other => other.clone(),
        };
        let apis = match &self.apis {
            None => None,
            Some(list) if list.is_empty() => {
                return Err(ConfigError::invalid(
                    f("apis"),
                    "[]",
                    "must name at least one API (leave it unset for every API)",
                ))
            }
            Some(list) => Some(
                list.iter()
                    .map(|a| {
                        APIS.iter()
                            .map(|(n, _)| *n)
                            .find(|n| n == a)
                            .ok_or_else(|| {
                                ConfigError::invalid(
                                    f("apis"),
                                    a,
                                    "unknown API kind; must be openai, openai-responses, \
                                 openai-completions, openai-embeddings or anthropic",
                                )
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        Ok(StormSpec {
            name,
            start: self.start,
            duration,
            every: self.every,
            fault,
            rate: self.rate,
            scenarios,
            apis,
        })
    }
}

/// Validates every entry, then checks that names are unique and there are at most
/// [`MAX_STORMS`].
pub fn validate_all(raw: &[RawStorm]) -> Result<Vec<StormSpec>, ConfigError> {
    if raw.len() > MAX_STORMS {
        return Err(ConfigError::invalid(
            "upstream.storms",
            raw.len(),
            format!("at most {MAX_STORMS} storms"),
        ));
    }
    let specs = raw
        .iter()
        .enumerate()
        .map(|(i, r)| r.validate(i))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, s) in specs.iter().enumerate() {
        if specs[..i].iter().any(|o| o.name == s.name) {
            return Err(ConfigError::invalid(
                format!("upstream.storms[{i}].name"),
                &s.name,
                "another storm has this name",
            ));
        }
    }
    Ok(specs)
}

/// What a storm's cross-section checks need to know of one scenario.
#[derive(Debug, Clone)]
pub struct ScenarioShape {
    pub name: String,
    /// Its `api`, as spelled in the config ([`APIS`]).
    pub api: &'static str,
    pub stream: bool,
}

impl StormSpec {
    /// Whether the requests of `s` are in this storm's filters.
    pub fn matches(&self, s: &ScenarioShape) -> bool {
        self.scenarios
            .as_ref()
            .is_none_or(|names| names.contains(&s.name))
            && self.apis.as_ref().is_none_or(|apis| apis.contains(&s.api))
    }
}

/// The checks that involve other sections: scenario names must exist, a filter must match a
/// scenario, `after_chunks` needs a streamed scenario among those a filter picks, and every
/// storm must start before the run ends (`run_duration`; `None` = forever).
pub fn check_against_run(
    storms: &[StormSpec],
    run_duration: Option<Duration>,
    scenarios: &[ScenarioShape],
) -> Result<(), ConfigError> {
    for (i, s) in storms.iter().enumerate() {
        let f = |key: &str| format!("upstream.storms[{i}].{key}");
        if let Some(d) = run_duration {
            if s.start >= d {
                return Err(ConfigError::invalid(
                    f("start"),
                    units::fmt_duration(s.start),
                    format!(
                        "the run ends before it starts (run.duration = {})",
                        units::fmt_duration(d)
                    ),
                ));
            }
        }
        if let Some(names) = &s.scenarios {
            if let Some(n) = names
                .iter()
                .find(|n| !scenarios.iter().any(|sc| sc.name == **n))
            {
                return Err(ConfigError::invalid(
                    f("scenarios"),
                    n,
                    "no scenario has this name",
                ));
            }
        }
        let filtered = s.scenarios.is_some() || s.apis.is_some();
        let hit: Vec<&ScenarioShape> = scenarios.iter().filter(|sc| s.matches(sc)).collect();
        if filtered && hit.is_empty() {
            let key = if s.apis.is_some() {
                "apis"
            } else {
                "scenarios"
            };
            return Err(ConfigError::invalid(
                f(key),
                "(set)",
                "its filters match no scenario of this run",
            ));
        }
        if let StormFault::Reset { after_chunks } = s.fault {
            if filtered && after_chunks > 0 && hit.iter().all(|sc| !sc.stream) {
                return Err(ConfigError::invalid(
                    f("after_chunks"),
                    after_chunks,
                    "every scenario its filters pick is unary (not streamed), and a unary \
                     answer has no chunks: a reset closes it before any byte",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(kind: &str) -> RawStorm {
        RawStorm {
            name: None,
            start: Duration::from_secs(5),
            duration: Duration::from_secs(10),
            every: None,
            kind: kind.into(),
            status: None,
            retry_after: None,
            delay: None,
            after_chunks: None,
            rate: 1.0,
            scenarios: None,
            apis: None,
        }
    }

    fn status(code: u16) -> RawStorm {
        RawStorm {
            status: Some(code),
            ..raw("status")
        }
    }

    fn field(e: ConfigError) -> String {
        match e {
            ConfigError::Invalid { field, .. } => field,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn the_api_names_are_the_scenarios_spellings() {
        let names: Vec<&str> = crate::client::ApiKind::ALL
            .iter()
            .map(|a| a.as_str())
            .collect();
        let ours: Vec<&str> = APIS.iter().map(|(n, _)| *n).collect();
        assert_eq!(ours, names);
    }

    #[test]
    fn kinds_validate_into_faults_with_defaults() {
        let s = RawStorm {
            retry_after: Some(2),
            ..status(429)
        }
        .validate(0)
        .unwrap();
        assert_eq!(s.name, "storm-1");
        assert_eq!(
            s.fault,
            StormFault::Status {
                status: 429,
                retry_after: Some(2)
            }
        );
        assert_eq!(s.rate, 1.0);
        let slow = RawStorm {
            delay: Some(Duration::from_millis(300)),
            ..raw("slow")
        };
        assert_eq!(
            slow.validate(3).unwrap().fault,
            StormFault::Slow(Duration::from_millis(300))
        );
        assert_eq!(raw("stall").validate(0).unwrap().fault, StormFault::Stall);
        assert_eq!(
            raw("reset").validate(0).unwrap().fault,
            StormFault::Reset { after_chunks: 0 }
        );
        assert_eq!(raw("refuse").validate(1).unwrap().name, "storm-2");
    }

    /// Each bad entry names its key.
    #[test]
    fn bad_entries_name_the_key() {
        type Change = fn(&mut RawStorm);
        let cases: [(Change, &str); 16] = [
            (|r| r.rate = 1.5, "rate"),
            (|r| r.rate = -0.1, "rate"),
            (|r| r.status = Some(302), "status"),
            (|r| r.status = Some(600), "status"),
            (|r| r.status = None, "status"),
            (|r| r.retry_after = Some(1), "retry_after"),
            (|r| r.kind = "hail".into(), "kind"),
            (|r| r.delay = Some(Duration::from_secs(1)), "delay"),
            (|r| r.after_chunks = Some(2), "after_chunks"),
            (|r| r.duration = Duration::ZERO, "duration"),
            (|r| r.every = Some(Duration::from_secs(10)), "every"),
            (|r| r.name = Some("a b".into()), "name"),
            (|r| r.scenarios = Some(vec![]), "scenarios"),
            (|r| r.apis = Some(vec!["grpc".into()]), "apis"),
            (
                |r| {
                    r.kind = "refuse".into();
                    r.status = None;
                    r.scenarios = Some(vec!["chat".into()]);
                },
                "scenarios",
            ),
            (
                |r| {
                    r.kind = "refuse".into();
                    r.status = None;
                    r.apis = Some(vec!["openai".into()]);
                },
                "apis",
            ),
        ];
        for (change, key) in cases {
            let mut r = status(500);
            change(&mut r);
            let got = field(r.validate(2).expect_err(key));
            assert_eq!(got, format!("upstream.storms[2].{key}"));
        }
        // retry_after with 429 and 503 only.
        for (code, ok) in [(429, true), (503, true), (500, false), (529, false)] {
            let r = RawStorm {
                retry_after: Some(1),
                ..status(code)
            };
            assert_eq!(r.validate(0).is_ok(), ok, "{code}");
        }
        let named = |n: &str| RawStorm {
            name: Some(n.into()),
            ..status(500)
        };
        assert!(validate_all(&[named("a"), named("b"), status(429)]).is_ok());
        let dup = validate_all(&[named("a"), named("a")]).unwrap_err();
        assert_eq!(field(dup), "upstream.storms[1].name");
    }

    #[test]
    fn cross_section_checks_name_the_key() {
        let shapes = vec![
            ScenarioShape {
                name: "unary".into(),
                api: "openai",
                stream: false,
            },
            ScenarioShape {
                name: "embed".into(),
                api: "openai-embeddings",
                stream: false,
            },
            ScenarioShape {
                name: "chat".into(),
                api: "openai",
                stream: true,
            },
        ];
        let check = |r: RawStorm, dur: Option<u64>| {
            let s = r.validate(0).unwrap();
            check_against_run(&[s], dur.map(Duration::from_secs), &shapes)
        };
        assert!(check(status(500), Some(60)).is_ok());
        assert!(check(status(500), None).is_ok(), "forever");
        let late = check(status(500), Some(5)).unwrap_err();
        assert_eq!(field(late), "upstream.storms[0].start");
        let unknown = RawStorm {
            scenarios: Some(vec!["nope".into()]),
            ..status(500)
        };
        assert_eq!(
            field(check(unknown, None).unwrap_err()),
            "upstream.storms[0].scenarios"
        );
        let none = RawStorm {
            apis: Some(vec!["anthropic".into()]),
            ..status(500)
        };
        assert_eq!(
            field(check(none, None).unwrap_err()),
            "upstream.storms[0].apis"
        );
        let reset = |scenarios: Option<Vec<&str>>, apis: Option<Vec<&str>>| RawStorm {
            after_chunks: Some(3),
            scenarios: scenarios.map(|v| v.into_iter().map(String::from).collect()),
            apis: apis.map(|v| v.into_iter().map(String::from).collect()),
            ..raw("reset")
        };
        let unary = check(reset(Some(vec!["unary", "embed"]), None), None).unwrap_err();
        assert_eq!(field(unary), "upstream.storms[0].after_chunks");
        let embeddings = check(reset(None, Some(vec!["openai-embeddings"])), None);
        assert_eq!(
            field(embeddings.unwrap_err()),
            "upstream.storms[0].after_chunks"
        );
        assert!(check(reset(Some(vec!["unary", "chat"]), None), None).is_ok());
        assert!(check(reset(None, None), None).is_ok(), "no filter");
    }
}
