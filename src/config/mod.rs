//! Configuration: raw structs mirroring the file, validated into typed settings.
//!
//! Sources, lowest precedence first: the built-in defaults (serde defaults below), one TOML
//! file (`--config FILE`, or the embedded demo config `config/soakd.toml` when none is given),
//! environment variables `SOAKD__SECTION__KEY` (e.g. `SOAKD__LOAD__RATE=50`), then command-line
//! flags. Loading goes through the `config` crate into [`RawConfig`], whose structs deny unknown
//! fields; [`RawConfig::validate`] then turns strings into `Duration`s, `Url`s, `SocketAddr`s and
//! tagged enums, resolves API-key references, and fails with one [`ConfigError`] naming the
//! field, the value and the reason. Nothing here binds a port or starts a task, so a bad
//! config stops the daemon before anything is listening.

pub mod error;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

pub use error::ConfigError;

use crate::client::{ApiKind, CancelAt, ClientSettings, HttpVersion, TlsSettings};
use crate::mock::MockArgs;
use crate::monitor::{MonitorSettings, RawMonitor};
use crate::plan::{ArrivalKind, Burst, BurstRate, ClosedPlan, OpenPlan, Plan, Preset, Stage};
use crate::verdict::{RawThresholds, Thresholds};
use crate::workload::{Cancellation, PromptLengths, Prompts, Scenario};

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
}

/// `[run]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRun {
    /// How long to send load ("30m", "6h"), or "forever" to run until SIGTERM/SIGINT.
    pub duration: String,
    /// How long in-flight requests may finish after the end before they are cancelled.
    pub grace: String,
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
            grace: "30s".into(),
            run_id: None,
            shards: 1,
            shard_index: None,
            summary_json: None,
            report_html: None,
            seed: None,
        }
    }
}

/// `[target]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTarget {
    /// Base URL of the proxy (`http://` or `https://`); unset = soak the built-in mock.
    pub url: Option<String>,
    /// Name of an environment variable holding the API key.
    pub api_key_env: Option<String>,
    /// Path of a file holding the API key (e.g. a mounted Kubernetes Secret).
    pub api_key_file: Option<PathBuf>,
    /// TCP (and TLS) connect timeout.
    pub connect_timeout: String,
    /// Whole-request timeout for non-streaming requests, and time to response headers for streams.
    pub request_timeout: String,
    /// Whole-stream timeout for SSE responses.
    pub stream_timeout: String,
    /// "auto" (HTTP/2 when TLS ALPN offers it), "http1", or "http2" (prior knowledge).
    pub http: String,
    /// Extra CA certificates (PEM) for private PKIs.
    pub ca_file: Option<PathBuf>,
    /// Skip TLS certificate verification (staging only).
    pub insecure_skip_verify: bool,
    /// Idle keep-alive connections kept per host.
    pub pool_max_idle_per_host: usize,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: String,
    /// Largest non-streaming response body accepted.
    pub max_response_bytes: usize,
    /// Largest single SSE event accepted.
    pub max_event_bytes: usize,
}

impl Default for RawTarget {
    fn default() -> Self {
        let d = ClientSettings::default();
        RawTarget {
            url: None,
            api_key_env: None,
            api_key_file: None,
            connect_timeout: humantime::format_duration(d.connect_timeout).to_string(),
            request_timeout: humantime::format_duration(d.request_timeout).to_string(),
            stream_timeout: humantime::format_duration(d.stream_timeout).to_string(),
            http: "auto".into(),
            ca_file: None,
            insecure_skip_verify: false,
            pool_max_idle_per_host: d.pool_max_idle_per_host,
            pool_idle_timeout: humantime::format_duration(d.pool_idle_timeout).to_string(),
            max_response_bytes: d.max_response_bytes,
            max_event_bytes: d.max_event_bytes,
        }
    }
}

/// `[load]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLoad {
    /// "open" (requests at scheduled times, however slow the target) or "closed" (users).
    pub model: String,
    /// Open model: steady rate in requests per second, and the start rate of the first stage.
    pub rate: f64,
    /// Open model: "constant" or "poisson" inter-arrival gaps.
    pub arrivals: String,
    /// Open model: most requests in flight; a request over the cap is dropped and counted.
    pub max_in_flight: u32,
    /// Open model: periodic bursts.
    pub burst: Option<RawBurst>,
    /// Open model: stages with linear ramps.
    pub stages: Vec<RawStage>,
    /// Open model: repeat the stages when they end.
    pub loop_stages: bool,
    /// Closed model: a tier ("light", "moderate", "heavy", "stress") giving users and ramp-up.
    pub preset: Option<String>,
    /// Closed model: number of users (overrides the preset's).
    pub users: Option<u32>,
    /// Closed model: pause between a user's requests.
    pub think_time: Option<String>,
    /// Closed model: time over which users start, linearly (overrides the preset's).
    pub ramp_up: Option<String>,
}

impl Default for RawLoad {
    fn default() -> Self {
        RawLoad {
            model: "open".into(),
            rate: 10.0,
            arrivals: "constant".into(),
            max_in_flight: 1000,
            burst: None,
            stages: Vec::new(),
            loop_stages: false,
            preset: None,
            users: None,
            think_time: None,
            ramp_up: None,
        }
    }
}

/// `[load.burst]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBurst {
    /// Time between burst starts.
    pub every: String,
    /// Length of each burst.
    pub length: String,
    /// Start of the first burst (default: `every`).
    pub offset: Option<String>,
    /// Absolute rate during a burst (exclusive with `multiplier`).
    pub rate: Option<f64>,
    /// Multiple of the base rate during a burst (exclusive with `rate`).
    pub multiplier: Option<f64>,
}

/// `[[load.stages]]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStage {
    /// Length of the stage.
    pub duration: String,
    /// Rate reached at the end of the stage (linear ramp from the previous one).
    pub rate: f64,
}

/// `[[scenarios]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawScenario {
    /// Label value of `scenario`: letters, digits, `_`, `-`.
    pub name: String,
    /// "openai" (chat completions) or "anthropic" (messages).
    pub api: String,
    /// Relative share of requests.
    pub weight: u32,
    /// Request path; default by API (`/v1/chat/completions`, `/v1/messages`).
    pub path: Option<String>,
    /// Model name sent in the body.
    pub model: String,
    /// Stream the response (SSE).
    pub stream: bool,
    /// OpenAI: ask for the usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    /// `max_tokens` sent in the body.
    pub max_tokens: u32,
    /// Extra request headers (a proxy's routing or tenant headers).
    pub headers: BTreeMap<String, String>,
    /// Extra body fields passed through (temperature, tools…).
    pub body: serde_json::Map<String, serde_json::Value>,
    /// Synthetic prompt lengths in tokens (ignored with `prompts_file`).
    pub prompt: RawPrompt,
    /// JSONL file of prompts (JSON strings or objects with a "prompt" field).
    pub prompts_file: Option<PathBuf>,
    /// Client-side cancellation of a fraction of streams.
    pub cancel: Option<RawCancel>,
}

impl Default for RawScenario {
    fn default() -> Self {
        RawScenario {
            name: "chat".into(),
            api: "openai".into(),
            weight: 1,
            path: None,
            model: "gpt-4o-mini".into(),
            stream: true,
            include_usage: true,
            max_tokens: 256,
            headers: BTreeMap::new(),
            body: serde_json::Map::new(),
            prompt: RawPrompt::default(),
            prompts_file: None,
            cancel: None,
        }
    }
}

/// `[scenarios.prompt]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPrompt {
    pub mean_tokens: f64,
    pub stddev_tokens: f64,
    pub min_tokens: u32,
    pub max_tokens: u32,
}

impl Default for RawPrompt {
    fn default() -> Self {
        let d = PromptLengths::default();
        RawPrompt {
            mean_tokens: d.mean,
            stddev_tokens: d.stddev,
            min_tokens: d.min,
            max_tokens: d.max,
        }
    }
}

/// `[scenarios.cancel]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCancel {
    /// Fraction of streams cancelled (0..=1).
    pub fraction: f64,
    /// Cancel after this many content chunks (exclusive with `after`).
    pub after_chunks: Option<u32>,
    /// Cancel this long after the send (exclusive with `after_chunks`).
    pub after: Option<String>,
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

/// `[log]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    /// "text" or "json".
    pub format: String,
    /// A tracing filter such as "info" or "soakd=debug,info" (`RUST_LOG` overrides it).
    pub level: String,
    /// Interval of the one-line progress log, or "off".
    pub progress_interval: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            format: "text".into(),
            level: "info".into(),
            progress_interval: "10s".into(),
        }
    }
}

/// `[otlp]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawOtlp {
    /// OTLP/gRPC collector endpoint, e.g. "http://127.0.0.1:4317"; unset = no export.
    pub endpoint: Option<String>,
    /// `service.name` of exported spans.
    pub service_name: String,
    /// Fraction of request traces exported (0..=1).
    pub sample_ratio: f64,
}

impl Default for RawOtlp {
    fn default() -> Self {
        RawOtlp {
            endpoint: None,
            service_name: "soakd".into(),
            sample_ratio: 0.01,
        }
    }
}

/// Command-line overrides of `soakd run`, applied above the environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub target: Option<String>,
    pub rate: Option<f64>,
    pub duration: Option<String>,
    pub admin_listen: Option<String>,
    pub watch_pid: Option<u32>,
    pub sample_interval: Option<String>,
    pub growth_windows: Option<Vec<String>>,
    pub warmup: Option<String>,
    pub report_html: Option<PathBuf>,
}

/// Loads the raw config from the file (or the embedded default), `env` and `overrides`.
///
/// `env` is the environment to read `SOAKD__*` variables from; the binary passes the process
/// environment, tests pass a map.
pub fn load(
    file: Option<&Path>,
    env: &std::collections::HashMap<String, String>,
    overrides: &Overrides,
) -> Result<RawConfig, ConfigError> {
    use config::{Config as Builder, Environment, File, FileFormat};
    let mut b = Builder::builder();
    b = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::invalid("--config", path.display(), format!("cannot read: {e}"))
            })?;
            b.add_source(File::from_str(&text, FileFormat::Toml))
        }
        None => b.add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml)),
    };
    b = b.add_source(
        Environment::with_prefix("SOAKD")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .source(Some(env.clone().into_iter().collect())),
    );
    let o = overrides;
    let set = |b: config::ConfigBuilder<config::builder::DefaultState>,
               key: &str,
               v: Option<config::Value>| {
        match v {
            Some(v) => b.set_override(key, v),
            None => Ok(b),
        }
    };
    let err = |e: config::ConfigError| ConfigError::Load(e.to_string());
    b = set(b, "target.url", o.target.clone().map(Into::into)).map_err(err)?;
    b = set(b, "load.rate", o.rate.map(Into::into)).map_err(err)?;
    b = set(b, "run.duration", o.duration.clone().map(Into::into)).map_err(err)?;
    b = set(b, "admin.listen", o.admin_listen.clone().map(Into::into)).map_err(err)?;
    b = set(
        b,
        "monitor.sample_interval",
        o.sample_interval.clone().map(Into::into),
    )
    .map_err(err)?;
    b = set(b, "monitor.warmup", o.warmup.clone().map(Into::into)).map_err(err)?;
    b = set(
        b,
        "run.report_html",
        o.report_html
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned().into()),
    )
    .map_err(err)?;
    b = set(
        b,
        "monitor.windows",
        o.growth_windows.clone().map(Into::into),
    )
    .map_err(err)?;
    let mut raw: RawConfig = b
        .build()
        .map_err(err)?
        .try_deserialize()
        .map_err(|e| ConfigError::Load(e.to_string()))?;
    // The other monitor flags are overrides above; --watch-pid adds a process.
    raw.monitor.apply_overrides(o.watch_pid, None, None, None);
    Ok(raw)
}

/// The run's own settings.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// `None`: until stopped.
    pub duration: Option<Duration>,
    pub grace: Duration,
    pub run_id: String,
    pub shards: NonZeroU32,
    pub shard_index: u32,
    pub summary_json: Option<PathBuf>,
    /// Checked writable at validation ([`crate::page::report::check_path`]).
    pub report_html: Option<PathBuf>,
    pub seed: u64,
}

/// An API key, never printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The proxy under test.
#[derive(Debug, Clone)]
pub struct TargetSettings {
    /// `None`: start the built-in mock and soak it.
    pub url: Option<Url>,
    pub api_key: Option<Secret>,
}

/// Log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
    pub progress_interval: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct OtlpSettings {
    pub endpoint: Url,
    pub service_name: String,
    pub sample_ratio: f64,
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
    pub scenarios: Vec<Scenario>,
    pub monitor: MonitorSettings,
    pub thresholds: Thresholds,
    pub mock: MockArgs,
    pub admin_listen: SocketAddr,
    pub log: LogSettings,
    pub otlp: Option<OtlpSettings>,
}

/// Parses a duration string such as "30s", "1h 30m" or "250ms".
pub fn duration(field: &str, value: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(value.trim()).map_err(|e| {
        ConfigError::invalid(
            field,
            value,
            format!("not a duration ({e}); use forms like \"500ms\", \"30s\", \"6h\""),
        )
    })
}

fn positive_duration(field: &str, value: &str) -> Result<Duration, ConfigError> {
    let d = duration(field, value)?;
    if d.is_zero() {
        return Err(ConfigError::invalid(field, value, "must be greater than 0"));
    }
    Ok(d)
}

fn positive_rate(field: &str, v: f64) -> Result<f64, ConfigError> {
    if !v.is_finite() || v <= 0.0 {
        return Err(ConfigError::invalid(
            field,
            v,
            "must be a rate greater than 0 requests per second",
        ));
    }
    Ok(v)
}

fn fraction(field: &str, v: f64) -> Result<f64, ConfigError> {
    if !(0.0..=1.0).contains(&v) {
        return Err(ConfigError::invalid(field, v, "must be between 0 and 1"));
    }
    Ok(v)
}

/// Label values from the config must be short, safe identifiers.
pub fn label_name(field: &str, v: &str) -> Result<(), ConfigError> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            field,
            v,
            "must be 1-64 characters of letters, digits, '_' or '-'",
        ))
    }
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
        let run = self.validate_run(env)?;
        let target = self.validate_target(env)?;
        let client = self.validate_client()?;
        let (plan, max_in_flight) = self.validate_load(&run)?;
        let scenarios = self.validate_scenarios()?;
        let monitor = self.monitor.validate()?;
        let thresholds = self.thresholds.validate()?;
        if target.url.is_none() {
            self.mock.validate()?;
        }
        let admin_listen = self.admin.listen.parse().map_err(|_| {
            ConfigError::invalid(
                "admin.listen",
                &self.admin.listen,
                "not a socket address like 127.0.0.1:9477",
            )
        })?;
        let log = LogSettings {
            format: match self.log.format.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    return Err(ConfigError::invalid(
                        "log.format",
                        other,
                        "must be \"text\" or \"json\"",
                    ))
                }
            },
            level: {
                tracing_subscriber::EnvFilter::try_new(&self.log.level).map_err(|e| {
                    ConfigError::invalid("log.level", &self.log.level, e.to_string())
                })?;
                self.log.level.clone()
            },
            progress_interval: match self.log.progress_interval.as_str() {
                "off" => None,
                v => Some(positive_duration("log.progress_interval", v)?),
            },
        };
        let otlp = match &self.otlp.endpoint {
            None => None,
            Some(e) => Some(OtlpSettings {
                endpoint: http_url("otlp.endpoint", e)?,
                service_name: self.otlp.service_name.clone(),
                sample_ratio: fraction("otlp.sample_ratio", self.otlp.sample_ratio)?,
            }),
        };
        Ok(Config {
            run,
            target,
            client,
            plan,
            max_in_flight,
            scenarios,
            monitor,
            thresholds,
            mock: self.mock.clone(),
            admin_listen,
            log,
            otlp,
        })
    }

    fn validate_run(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<RunSettings, ConfigError> {
        let r = &self.run;
        let duration = match r.duration.as_str() {
            "forever" => None,
            v => Some(positive_duration("run.duration", v).map_err(|e| match e {
                ConfigError::Invalid { field, value, .. } => ConfigError::Invalid {
                    field,
                    value,
                    reason:
                        "must be a duration greater than 0 (\"30m\", \"6h\") or \"forever\"".into(),
                },
                e => e,
            })?),
        };
        let shards = NonZeroU32::new(r.shards)
            .ok_or_else(|| ConfigError::invalid("run.shards", r.shards, "must be at least 1"))?;
        let (shard_index, field) = match r.shard_index {
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
        let run_id = match &r.run_id {
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
            grace: self::duration("run.grace", &r.grace)?,
            run_id,
            shards,
            shard_index,
            summary_json: r.summary_json.clone(),
            report_html: match &r.report_html {
                Some(p) => {
                    crate::page::report::check_path(p)
                        .map_err(|e| ConfigError::invalid("run.report_html", p.display(), e))?;
                    Some(p.clone())
                }
                None => None,
            },
            seed: r.seed.unwrap_or_else(rand::random),
        })
    }

    fn validate_target(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<TargetSettings, ConfigError> {
        let t = &self.target;
        let url = t
            .url
            .as_deref()
            .map(|u| http_url("target.url", u))
            .transpose()?;
        let api_key = match (&t.api_key_env, &t.api_key_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    "target.api_key_env",
                    "(set)",
                    "set either api_key_env or api_key_file, not both",
                ))
            }
            (Some(var), None) => match env(var) {
                Some(v) if !v.trim().is_empty() => Some(Secret(v.trim().to_string())),
                Some(_) => {
                    return Err(ConfigError::invalid(
                        "target.api_key_env",
                        var,
                        "the environment variable is empty",
                    ))
                }
                None => {
                    return Err(ConfigError::invalid(
                        "target.api_key_env",
                        var,
                        "the environment variable is not set",
                    ))
                }
            },
            (None, Some(path)) => {
                let v = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::invalid(
                        "target.api_key_file",
                        path.display(),
                        format!("cannot read: {e}"),
                    )
                })?;
                if v.trim().is_empty() {
                    return Err(ConfigError::invalid(
                        "target.api_key_file",
                        path.display(),
                        "the file is empty",
                    ));
                }
                Some(Secret(v.trim().to_string()))
            }
            (None, None) => None,
        };
        Ok(TargetSettings { url, api_key })
    }

    fn validate_client(&self) -> Result<ClientSettings, ConfigError> {
        let t = &self.target;
        if let Some(ca) = &t.ca_file {
            std::fs::metadata(ca).map_err(|e| {
                ConfigError::invalid("target.ca_file", ca.display(), format!("cannot read: {e}"))
            })?;
        }
        Ok(ClientSettings {
            connect_timeout: positive_duration("target.connect_timeout", &t.connect_timeout)?,
            request_timeout: positive_duration("target.request_timeout", &t.request_timeout)?,
            stream_timeout: positive_duration("target.stream_timeout", &t.stream_timeout)?,
            pool_max_idle_per_host: t.pool_max_idle_per_host,
            pool_idle_timeout: duration("target.pool_idle_timeout", &t.pool_idle_timeout)?,
            http: match t.http.as_str() {
                "auto" => HttpVersion::Auto,
                "http1" => HttpVersion::Http1Only,
                "http2" => HttpVersion::Http2PriorKnowledge,
                other => {
                    return Err(ConfigError::invalid(
                        "target.http",
                        other,
                        "must be \"auto\", \"http1\" or \"http2\"",
                    ))
                }
            },
            tls: TlsSettings {
                ca_file: t.ca_file.clone(),
                insecure_skip_verify: t.insecure_skip_verify,
            },
            max_response_bytes: nonzero_usize("target.max_response_bytes", t.max_response_bytes)?,
            max_event_bytes: nonzero_usize("target.max_event_bytes", t.max_event_bytes)?,
            ..ClientSettings::default()
        })
    }

    fn validate_load(&self, run: &RunSettings) -> Result<(Plan, NonZeroU32), ConfigError> {
        let l = &self.load;
        let max_in_flight = NonZeroU32::new(l.max_in_flight).ok_or_else(|| {
            ConfigError::invalid("load.max_in_flight", l.max_in_flight, "must be at least 1")
        })?;
        let plan = match l.model.as_str() {
            "open" => {
                for (field, set) in [
                    ("load.preset", l.preset.is_some()),
                    ("load.users", l.users.is_some()),
                    ("load.think_time", l.think_time.is_some()),
                    ("load.ramp_up", l.ramp_up.is_some()),
                ] {
                    if set {
                        return Err(ConfigError::invalid(
                            field,
                            "(set)",
                            "only applies to the closed model (load.model = \"closed\")",
                        ));
                    }
                }
                let arrivals = match l.arrivals.as_str() {
                    "constant" => ArrivalKind::Constant,
                    "poisson" => ArrivalKind::Poisson,
                    other => {
                        return Err(ConfigError::invalid(
                            "load.arrivals",
                            other,
                            "must be \"constant\" or \"poisson\"",
                        ))
                    }
                };
                let rate = if l.stages.is_empty() {
                    positive_rate("load.rate", l.rate)?
                } else if l.rate.is_finite() && l.rate >= 0.0 {
                    l.rate
                } else {
                    return Err(ConfigError::invalid(
                        "load.rate",
                        l.rate,
                        "must be 0 or more",
                    ));
                };
                let mut stages = Vec::with_capacity(l.stages.len());
                for (i, s) in l.stages.iter().enumerate() {
                    let d = positive_duration(&format!("load.stages[{i}].duration"), &s.duration)?;
                    if !s.rate.is_finite() || s.rate < 0.0 {
                        return Err(ConfigError::invalid(
                            format!("load.stages[{i}].rate"),
                            s.rate,
                            "must be 0 or more",
                        ));
                    }
                    stages.push(Stage {
                        duration: d,
                        target: s.rate,
                    });
                }
                if !stages.is_empty() && stages.iter().all(|s| s.target == 0.0) && rate == 0.0 {
                    return Err(ConfigError::invalid(
                        "load.stages",
                        "(all 0)",
                        "every stage has rate 0, so nothing would be sent",
                    ));
                }
                let burst = l.burst.as_ref().map(validate_burst).transpose()?;
                Plan::Open(
                    OpenPlan {
                        rate,
                        stages,
                        loop_stages: l.loop_stages,
                        burst,
                        arrivals,
                    }
                    .sharded(run.shards.get()),
                )
            }
            "closed" => {
                let base = match &l.preset {
                    Some(p) => Preset::parse(p).ok_or_else(|| {
                        ConfigError::invalid(
                            "load.preset",
                            p,
                            "must be \"light\", \"moderate\", \"heavy\" or \"stress\"",
                        )
                    })?,
                    None => Preset::Light,
                }
                .plan();
                if l.preset.is_none() && l.users.is_none() {
                    return Err(ConfigError::invalid(
                        "load.users",
                        "(unset)",
                        "the closed model needs load.users or load.preset",
                    ));
                }
                let users = l.users.unwrap_or(base.users);
                if users == 0 {
                    return Err(ConfigError::invalid("load.users", 0, "must be at least 1"));
                }
                Plan::Closed(ClosedPlan {
                    users,
                    think_time: match &l.think_time {
                        Some(v) => duration("load.think_time", v)?,
                        None => base.think_time,
                    },
                    ramp_up: match &l.ramp_up {
                        Some(v) => duration("load.ramp_up", v)?,
                        None => base.ramp_up,
                    },
                })
            }
            other => {
                return Err(ConfigError::invalid(
                    "load.model",
                    other,
                    "must be \"open\" or \"closed\"",
                ))
            }
        };
        Ok((plan, max_in_flight))
    }

    fn validate_scenarios(&self) -> Result<Vec<Scenario>, ConfigError> {
        let raws = if self.scenarios.is_empty() {
            vec![RawScenario::default()]
        } else {
            self.scenarios.clone()
        };
        let mut names = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(raws.len());
        for (i, s) in raws.iter().enumerate() {
            let f = |k: &str| format!("scenarios[{i}].{k}");
            label_name(&f("name"), &s.name)?;
            if !names.insert(s.name.clone()) {
                return Err(ConfigError::invalid(
                    f("name"),
                    &s.name,
                    "duplicate scenario name",
                ));
            }
            let api = match s.api.as_str() {
                "openai" => ApiKind::OpenAiChat,
                "anthropic" => ApiKind::AnthropicMessages,
                other => {
                    return Err(ConfigError::invalid(
                        f("api"),
                        other,
                        "unknown API kind; must be \"openai\" or \"anthropic\"",
                    ))
                }
            };
            let path = s.path.clone().unwrap_or_else(|| api.default_path().into());
            if !path.starts_with('/') {
                return Err(ConfigError::invalid(
                    f("path"),
                    &path,
                    "must start with '/'",
                ));
            }
            if s.model.trim().is_empty() {
                return Err(ConfigError::invalid(
                    f("model"),
                    &s.model,
                    "must not be empty",
                ));
            }
            if s.max_tokens == 0 {
                return Err(ConfigError::invalid(
                    f("max_tokens"),
                    0,
                    "must be at least 1",
                ));
            }
            for (k, v) in &s.headers {
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                    ConfigError::invalid(f("headers"), k, "not a valid header name")
                })?;
                reqwest::header::HeaderValue::from_str(v).map_err(|_| {
                    ConfigError::invalid(
                        format!("{}.{k}", f("headers")),
                        "<value>",
                        "not a valid header value",
                    )
                })?;
            }
            if s.body.contains_key("messages") {
                return Err(ConfigError::invalid(
                    f("body"),
                    "messages",
                    "soakd writes the messages; use prompt or prompts_file",
                ));
            }
            let prompts = match &s.prompts_file {
                Some(p) => Prompts::File(crate::workload::load_prompts(p, &f("prompts_file"))?),
                None => {
                    let p = &s.prompt;
                    if !(p.mean_tokens.is_finite() && p.mean_tokens >= 1.0) {
                        return Err(ConfigError::invalid(
                            f("prompt.mean_tokens"),
                            p.mean_tokens,
                            "must be at least 1",
                        ));
                    }
                    if !(p.stddev_tokens.is_finite() && p.stddev_tokens >= 0.0) {
                        return Err(ConfigError::invalid(
                            f("prompt.stddev_tokens"),
                            p.stddev_tokens,
                            "must be 0 or more",
                        ));
                    }
                    if p.min_tokens == 0 || p.min_tokens > p.max_tokens {
                        return Err(ConfigError::invalid(
                            f("prompt.min_tokens"),
                            p.min_tokens,
                            format!("must be between 1 and prompt.max_tokens = {}", p.max_tokens),
                        ));
                    }
                    Prompts::Synthetic(PromptLengths {
                        mean: p.mean_tokens,
                        stddev: p.stddev_tokens,
                        min: p.min_tokens,
                        max: p.max_tokens,
                    })
                }
            };
            let cancel = match &s.cancel {
                None => None,
                Some(c) => {
                    let fraction = fraction(&f("cancel.fraction"), c.fraction)?;
                    if !s.stream {
                        return Err(ConfigError::invalid(
                            f("cancel"),
                            "(set)",
                            "cancellation applies to streaming scenarios only",
                        ));
                    }
                    let at = match (c.after_chunks, &c.after) {
                        (Some(n), None) if n > 0 => CancelAt::AfterChunks(n),
                        (None, Some(d)) => {
                            CancelAt::AfterTime(positive_duration(&f("cancel.after"), d)?)
                        }
                        _ => {
                            return Err(ConfigError::invalid(
                                f("cancel"),
                                "(set)",
                                "set exactly one of after_chunks (≥ 1) or after",
                            ))
                        }
                    };
                    Some(Cancellation { fraction, at })
                }
            };
            out.push(Scenario {
                name: s.name.clone(),
                api,
                weight: s.weight,
                path,
                model: s.model.clone(),
                stream: s.stream,
                include_usage: s.include_usage,
                max_tokens: s.max_tokens,
                headers: s
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                body_extra: s.body.clone(),
                prompts,
                cancel,
            });
        }
        if out.iter().all(|s| s.weight == 0) {
            return Err(ConfigError::invalid(
                "scenarios[].weight",
                0,
                "at least one scenario needs a weight above 0",
            ));
        }
        Ok(out)
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
            if let Ok(mut parsed) = Url::parse(u) {
                if parsed.password().is_some() {
                    let _ = parsed.set_password(Some("redacted"));
                    *u = parsed.to_string();
                }
            }
        }
        toml::to_string_pretty(&c).unwrap_or_else(|e| format!("# cannot print config: {e}\n"))
    }
}

/// Header names whose values are credentials.
pub fn is_secret_header(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "authorization" | "x-api-key" | "api-key" | "proxy-authorization" | "cookie"
    )
}

fn nonzero_usize(field: &str, v: usize) -> Result<usize, ConfigError> {
    if v == 0 {
        return Err(ConfigError::invalid(field, v, "must be at least 1"));
    }
    Ok(v)
}

fn http_url(field: &str, v: &str) -> Result<Url, ConfigError> {
    let u =
        Url::parse(v).map_err(|e| ConfigError::invalid(field, v, format!("not a URL ({e})")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
        return Err(ConfigError::invalid(
            field,
            v,
            "must be an http:// or https:// URL with a host",
        ));
    }
    Ok(u)
}

fn validate_burst(b: &RawBurst) -> Result<Burst, ConfigError> {
    let every = positive_duration("load.burst.every", &b.every)?;
    let length = positive_duration("load.burst.length", &b.length)?;
    if length >= every {
        return Err(ConfigError::invalid(
            "load.burst.length",
            &b.length,
            format!("must be shorter than load.burst.every = {}", b.every),
        ));
    }
    let offset = match &b.offset {
        Some(o) => duration("load.burst.offset", o)?,
        None => every,
    };
    let rate = match (b.rate, b.multiplier) {
        (Some(r), None) => BurstRate::Absolute(positive_rate("load.burst.rate", r)?),
        (None, Some(m)) => BurstRate::Multiplier(positive_rate("load.burst.multiplier", m)?),
        _ => {
            return Err(ConfigError::invalid(
                "load.burst",
                "(rate/multiplier)",
                "set exactly one of rate or multiplier",
            ))
        }
    };
    Ok(Burst {
        every,
        length,
        offset,
        rate,
    })
}

#[cfg(test)]
mod tests;
