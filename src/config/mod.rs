//! Configuration: the composer of every room's settings.
//!
//! Sources, lowest precedence first: the built-in defaults (serde defaults of the raw
//! structs), one TOML file (`--config FILE`; without it, the plain steady plan
//! [`PLAIN_TOML`] when a target is given, else the embedded demo config `config/soakd.toml`),
//! environment variables `SOAKD__SECTION__KEY` (e.g. `SOAKD__LOAD__RATE=50`), then
//! command-line flags ([`load`]). Loading goes through the
//! `config` crate into [`RawConfig`], whose structs deny unknown fields; [`RawConfig::validate`]
//! then turns it into the typed [`Config`] and fails with one [`ConfigError`] naming the
//! field, the value and the reason. Nothing here binds a port or starts a task, so a bad
//! config stops the daemon before anything is listening.
//!
//! Config flows one way. Each room owns its section, raw and validated: `[target]` is
//! [`crate::client::settings`], `[load]` is [`crate::plan::settings`], `[monitor]` is
//! [`crate::monitor::settings`], `[thresholds]` is [`crate::verdict::settings`],
//! `[[scenarios]]` is [`crate::workload::settings`], `[mock]` is
//! [`crate::mock::MockArgs`], `[log]`/`[otlp]` are [`crate::telemetry::settings`], `[upstream]`
//! is [`crate::upstream::settings`]. This module
//! imports them and composes them; no room's settings import this module back. Only the
//! entry points that read a whole file use it: [`crate::app`] (`soakd run`) and
//! [`crate::analyze::cli`] (`soakd analyze --config`, which reads `[monitor]`). Units, checks
//! and the error type live in the leaf [`crate::units`].

mod listeners;
mod load;
mod warnings;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::units::ConfigError;
pub use load::{load, Overrides, DEFAULT_API, DEFAULT_MODEL, PLAIN_TOML};

use crate::client::{is_secret_header, ClientSettings, RawTarget, TargetSettings};
use crate::mock::MockArgs;
use crate::monitor::{MonitorSettings, RawMonitor};
use crate::plan::{MixVariation, Plan, RawLoad};
use crate::telemetry::{LogSettings, OtlpSettings, RawLog, RawOtlp};
use crate::units;
use crate::upstream::{RawUpstream, UpstreamSettings};
use crate::verdict::{RawThresholds, Thresholds};
use crate::workload::{RawScenario, Scenario};

/// The embedded default config: a demo soak of the built-in mock.
pub const DEFAULT_TOML: &str = include_str!("../../config/soakd.toml");

/// The whole file, as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// Run length, shutdown grace, run id, shards, summary file.
    pub run: RawRun,
    /// The proxy under test; with no `url`, soakd starts its built-in mock.
    pub target: RawTarget,
    /// The load plan.
    pub load: RawLoad,
    /// Weighted request scenarios; one OpenAI streaming scenario when none is given.
    pub scenarios: Vec<RawScenario>,
    /// Process sampling and leak detection.
    pub monitor: RawMonitor,
    /// Pass/fail thresholds.
    pub thresholds: RawThresholds,
    /// Knobs of the built-in mock, used when `target.url` is unset.
    pub mock: MockArgs,
    /// The admin server.
    pub admin: RawAdmin,
    /// Logging and progress lines.
    pub log: RawLog,
    /// OpenTelemetry trace export.
    pub otlp: RawOtlp,
    /// The two-sided soak: soakd also serves the proxy's upstream.
    pub upstream: RawUpstream,
}

/// `[run]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRun {
    /// How long to send load ("30m", "6h"), or "forever" to run until SIGTERM/SIGINT.
    pub duration: String,
    /// How long in-flight requests may finish after the end before they are cancelled.
    #[serde(with = "units::serde_duration")]
    pub grace: Duration,
    /// Sample the watched processes this long before sending anything (default "0s"): the
    /// idle part of the memory arc.
    #[serde(with = "units::serde_duration")]
    pub idle: Duration,
    /// After the load and its drain, keep sampling with no traffic this long (default "0s"):
    /// the recovered part of the memory arc.
    #[serde(with = "units::serde_duration")]
    pub cooldown: Duration,
    /// After the summary, keep serving `/metrics`, `/status` and `/series` this long, then
    /// exit with the verdict (default "0s"), so a scraper sees the final state. A signal
    /// during it ends it at once.
    #[serde(with = "units::serde_duration")]
    pub linger: Duration,
    /// Run id for `soakd_run_info`; a random one when unset.
    pub run_id: Option<String>,
    /// Number of shards the load is split over (each shard sends 1/shards of the plan).
    pub shards: u32,
    /// This shard's index; when unset, `JOB_COMPLETION_INDEX` (Kubernetes Indexed Jobs), else 0.
    pub shard_index: Option<u32>,
    /// Write the end-of-run summary as JSON to this file.
    pub summary_json: Option<PathBuf>,
    /// Write the self-contained HTML report (charts, summary, verdicts) to this file.
    pub report_html: Option<PathBuf>,
    /// Seed for arrivals, scenario picks and prompts; random when unset.
    pub seed: Option<u64>,
}

impl Default for RawRun {
    fn default() -> Self {
        RawRun {
            duration: "forever".into(),
            grace: Duration::from_secs(30),
            idle: Duration::ZERO,
            cooldown: Duration::ZERO,
            linger: Duration::ZERO,
            run_id: None,
            shards: 1,
            shard_index: None,
            summary_json: None,
            report_html: None,
            seed: None,
        }
    }
}

/// `[admin]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAdmin {
    /// Address of `/metrics`, `/healthz`, `/readyz`, `/status` ("0.0.0.0:9477" in Kubernetes).
    pub listen: String,
}

impl Default for RawAdmin {
    fn default() -> Self {
        RawAdmin {
            listen: "127.0.0.1:9477".into(),
        }
    }
}

/// The run's own settings.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// `None`: until stopped.
    pub duration: Option<Duration>,
    pub grace: Duration,
    /// Sampling before the load (the `idle` state, [`crate::phases`]).
    pub idle: Duration,
    /// Sampling after the load and its drain (the `cooldown` state).
    pub cooldown: Duration,
    /// Serving the final state after the summary (the `linger` state).
    pub linger: Duration,
    pub run_id: String,
    pub shards: NonZeroU32,
    pub shard_index: u32,
    pub summary_json: Option<PathBuf>,
    /// Checked writable at validation ([`crate::page::report::check_path`]).
    pub report_html: Option<PathBuf>,
    pub seed: u64,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub run: RunSettings,
    pub target: TargetSettings,
    pub client: ClientSettings,
    pub plan: Plan,
    /// Open model only: the in-flight cap.
    pub max_in_flight: NonZeroU32,
    /// How the scenario mix varies (`load.mix_variation`).
    pub mix_variation: MixVariation,
    pub scenarios: Vec<Scenario>,
    pub monitor: MonitorSettings,
    pub thresholds: Thresholds,
    pub mock: MockArgs,
    pub admin_listen: SocketAddr,
    pub log: LogSettings,
    pub otlp: Option<OtlpSettings>,
    /// The two-sided soak, when `[upstream] listen` is set.
    pub upstream: Option<UpstreamSettings>,
}

impl RawConfig {
    /// Validates with the process environment (API-key variables, `JOB_COMPLETION_INDEX`).
    pub fn validate(&self) -> Result<Config, ConfigError> {
        self.validate_with(&|k| std::env::var(k).ok())
    }

    /// Validates, reading environment variables through `env`.
    pub fn validate_with(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        match self.validate_deferring_secrets(env)? {
            (config, None) => Ok(config),
            (_, Some(missing)) => Err(missing),
        }
    }

    /// What `soakd check-config` reports: the validated config and its warnings
    /// ([`Config::warnings`]), where an API key that cannot be read on this machine is one
    /// more warning rather than an error (the reference is valid; `soakd run` still refuses
    /// it, see [`crate::client::RawTarget::validate_target_deferred`]).
    pub fn check_with(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let (config, missing) = self.validate_deferring_secrets(env)?;
        let mut warnings = Vec::new();
        if let Some(e) = missing {
            warnings.push(format!(
                "{}; the reference is valid, but soakd run refuses to start without the key",
                e.to_string().trim_start_matches("invalid config: ")
            ));
        }
        warnings.extend(config.warnings());
        Ok((config, warnings))
    }

    /// Validates everything; an API key that cannot be read comes back as the second value.
    fn validate_deferring_secrets(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Config, Option<ConfigError>), ConfigError> {
        let run = self.run.validate(env)?;
        let (target, missing_key) = self.target.validate_target_deferred(env)?;
        let client = self.target.validate_client()?;
        let (plan, max_in_flight) = self.load.validate(run.shards)?;
        let scenarios = crate::workload::validate_scenarios(&self.scenarios)?;
        let monitor = self.monitor.validate()?;
        let mix_variation = self.load.mix_variation()?;
        check_mix_against_sampling(mix_variation, monitor.sample_interval)?;
        let thresholds = self.thresholds.validate()?;
        if target.url.is_none() {
            self.mock.validate()?;
        }
        let upstream = self.upstream.validate()?;
        if upstream.is_some() {
            self.check_two_sided(&target)?;
        } else if let Some(name) = thresholds.proxy.names().first() {
            return Err(ConfigError::invalid(
                format!("thresholds.{name}"),
                "(set)",
                "judges the two-sided soak: set [upstream] listen",
            ));
        }
        let admin_listen = self.admin.listen.parse().map_err(|_| {
            ConfigError::invalid(
                "admin.listen",
                &self.admin.listen,
                "not a socket address like 127.0.0.1:9477",
            )
        })?;
        listeners::check_distinct(&[
            ("admin.listen", Some(admin_listen)),
            ("upstream.listen", upstream.as_ref().map(|u| u.listen)),
        ])?;
        let config = Config {
            run,
            target,
            client,
            plan,
            max_in_flight,
            mix_variation,
            scenarios,
            monitor,
            thresholds,
            mock: self.mock.clone(),
            admin_listen,
            log: self.log.validate()?,
            otlp: self.otlp.validate()?,
            upstream,
        };
        Ok((config, missing_key))
    }

    /// With `[upstream]` on: a target (the proxy) is required, and the mock knobs that mean
    /// nothing in-process (`listen`, `pid_file`, `exit_after`) or would grow soakd's own RSS
    /// (the leak knobs) are refused.
    fn check_two_sided(&self, target: &TargetSettings) -> Result<(), ConfigError> {
        if target.url.is_none() {
            return Err(ConfigError::invalid(
                "target.url",
                "(unset)",
                "[upstream] needs the proxy under test as the target; soakd's upstream is its \
                 provider",
            ));
        }
        let m = &self.mock;
        let d = MockArgs::default();
        let refused: [(&str, bool, &str); 9] = [
            (
                "listen",
                m.listen != d.listen,
                "the upstream listens on upstream.listen",
            ),
            (
                "pid_file",
                m.pid_file.is_some(),
                "the upstream runs inside soakd",
            ),
            (
                "exit_after",
                m.exit_after.is_some(),
                "the upstream runs inside soakd",
            ),
            (
                "leak_bytes_per_request",
                m.leak_bytes_per_request > 0,
                "it would grow soakd's own RSS",
            ),
            (
                "leak_fd_every",
                m.leak_fd_every.is_some(),
                "it would leak soakd's own fds",
            ),
            (
                "leak_thread_every",
                m.leak_thread_every.is_some(),
                "it would leak soakd's own threads",
            ),
            (
                "sawtooth_bytes",
                m.sawtooth_bytes.is_some(),
                "it would grow soakd's own RSS",
            ),
            (
                "plateau_bytes",
                m.plateau_bytes.is_some(),
                "it would grow soakd's own RSS",
            ),
            (
                "chunk_bytes",
                m.chunk_bytes < 7,
                "each chunk's text carries a sequence marker of up to 7 characters",
            ),
        ];
        for (key, bad, why) in refused {
            if bad {
                return Err(ConfigError::invalid(
                    format!("mock.{key}"),
                    "(set)",
                    format!("not allowed while [upstream] is on: {why}"),
                ));
            }
        }
        m.validate()
    }

    /// The effective config as TOML, with header values that carry credentials redacted.
    pub fn to_redacted_toml(&self) -> String {
        let mut c = self.clone();
        for s in &mut c.scenarios {
            for (k, v) in s.headers.iter_mut() {
                if is_secret_header(k) {
                    *v = "<redacted>".into();
                }
            }
        }
        if let Some(u) = c.target.url.as_mut() {
            if let Ok(mut parsed) = url::Url::parse(u) {
                if parsed.password().is_some() {
                    let _ = parsed.set_password(Some("redacted"));
                    *u = parsed.to_string();
                }
            }
        }
        toml::to_string_pretty(&c).unwrap_or_else(|e| format!("# cannot print config: {e}\n"))
    }
}

/// `load.mix_variation` spans two sections: a mix period shorter than two monitor samples
/// would change the mix between samples, and no bucket could tell one mix from the next.
fn check_mix_against_sampling(mix: MixVariation, sample: Duration) -> Result<(), ConfigError> {
    match mix.period() {
        Some(p) if p < 2 * sample => Err(ConfigError::invalid(
            "load.mix_variation",
            units::fmt_duration(p),
            format!(
                "must be at least twice monitor.sample_interval ({}), or \"off\"",
                units::fmt_duration(sample)
            ),
        )),
        _ => Ok(()),
    }
}

impl RawRun {
    fn validate(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<RunSettings, ConfigError> {
        let duration =
            match self.duration.as_str() {
                "forever" => None,
                v => Some(units::positive_duration("run.duration", v).map_err(|e| {
                    match e {
                        ConfigError::Invalid { field, value, .. } => ConfigError::Invalid {
                            field,
                            value,
                            reason:
                                "must be a duration greater than 0 (\"30m\", \"6h\") or \"forever\""
                                    .into(),
                        },
                        e => e,
                    }
                })?),
            };
        let shards = NonZeroU32::new(self.shards)
            .ok_or_else(|| ConfigError::invalid("run.shards", self.shards, "must be at least 1"))?;
        let (shard_index, field) = match self.shard_index {
            Some(i) => (i, "run.shard_index"),
            None => match env("JOB_COMPLETION_INDEX") {
                Some(v) => (
                    v.trim().parse().map_err(|_| {
                        ConfigError::invalid("JOB_COMPLETION_INDEX", &v, "not a shard index")
                    })?,
                    "JOB_COMPLETION_INDEX",
                ),
                None => (0, "run.shard_index"),
            },
        };
        if shard_index >= shards.get() {
            return Err(ConfigError::invalid(
                field,
                shard_index,
                format!("must be below run.shards = {shards}"),
            ));
        }
        let run_id = match &self.run_id {
            Some(id) => {
                if id.is_empty() || id.len() > 128 || id.chars().any(|c| c.is_control()) {
                    return Err(ConfigError::invalid(
                        "run.run_id",
                        id,
                        "must be 1-128 printable characters",
                    ));
                }
                id.clone()
            }
            None => format!("{:016x}", rand::random::<u64>()),
        };
        Ok(RunSettings {
            duration,
            grace: self.grace,
            idle: self.idle,
            cooldown: self.cooldown,
            linger: self.linger,
            run_id,
            shards,
            shard_index,
            summary_json: self.summary_json.clone(),
            report_html: match &self.report_html {
                Some(p) => {
                    crate::page::report::check_path(p)
                        .map_err(|e| ConfigError::invalid("run.report_html", p.display(), e))?;
                    Some(p.clone())
                }
                None => None,
            },
            seed: self.seed.unwrap_or_else(rand::random),
        })
    }
}

#[cfg(test)]
mod tests;
