//! Reading the sources into a [`RawConfig`]: a base file, the `SOAKD__SECTION__KEY`
//! environment, then the command-line flags.
//!
//! The base is chosen once:
//! - `--config FILE`: that file. The scenario flags `--api`, `--model`, `--stream` and
//!   `--no-stream` are then a config error naming the flag: scenarios belong in the file.
//! - no file and a target (`--target`, or `SOAKD__TARGET__URL`): [`PLAIN_TOML`], a plain
//!   steady soak — constant arrivals at `--rate` (default 10 rps), no bursts, no stages, no
//!   cancels, `duration = "forever"` — with one scenario built from `--api` (default
//!   `openai`, any name [`ApiKind::from_name`] knows), `--model` (default `gpt-4o-mini`) and
//!   `--stream`/`--no-stream` (default stream), named after its API.
//! - neither: the embedded demo config [`DEFAULT_TOML`] (bursts, cancels, three scenarios)
//!   against the built-in mock, unchanged; the scenario flags are a config error there too.
//!
//! `--api-key-env VAR` sets `target.api_key_env` on any base.

use std::collections::HashMap;
use std::path::Path;

use super::{RawConfig, DEFAULT_TOML};
use crate::client::ApiKind;
use crate::units::ConfigError;
use crate::workload::RawScenario;

/// The base config of `soakd run --target URL` without `--config`: a plain steady plan.
/// Its one scenario comes from the flags (see the module docs).
pub const PLAIN_TOML: &str = r#"
[run]
duration = "forever"

[load]
model = "open"
rate = 10.0
arrivals = "constant"
"#;

/// `--api` when not given.
pub const DEFAULT_API: &str = "openai";
/// `--model` when not given.
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";

/// Command-line overrides of `soakd run`, applied above the environment: the flags
/// themselves (`soakd run` flattens this struct into its arguments, so each flag and its help
/// are written once, here).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// Target base URL (overrides target.url). Without --config: a plain steady soak —
    /// constant arrivals at --rate, no bursts, no cancels, one scenario from --api/--model.
    #[arg(long)]
    pub target: Option<String>,
    /// Rate in requests per second (overrides load.rate; 10 for a plain --target soak).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Run length such as "30m" or "6h", or "forever" (overrides run.duration; "forever" for
    /// a plain --target soak).
    #[arg(long)]
    pub duration: Option<String>,
    /// API of the plain soak's scenario: openai (the default), openai-responses,
    /// openai-completions, openai-embeddings or anthropic. Not with --config.
    #[arg(long)]
    pub api: Option<String>,
    /// Model of the plain soak's scenario (default gpt-4o-mini). Not with --config.
    #[arg(long)]
    pub model: Option<String>,
    /// `--stream` (`Some(true)`) or `--no-stream` (`Some(false)`); set by `soakd run` from its
    /// two flags.
    #[arg(skip)]
    pub stream: Option<bool>,
    /// Environment variable holding the API key (overrides target.api_key_env).
    #[arg(long)]
    pub api_key_env: Option<String>,
    /// Admin server address (overrides admin.listen).
    #[arg(long)]
    pub admin_listen: Option<String>,
    /// Watch this local process as `process="target"`.
    #[arg(long)]
    pub watch_pid: Option<u32>,
    /// Process sampling interval (overrides monitor.sample_interval).
    #[arg(long)]
    pub sample_interval: Option<String>,
    /// Growth windows, comma-separated, e.g. "2m,30m" (overrides monitor.windows).
    #[arg(long, value_delimiter = ',')]
    pub growth_windows: Option<Vec<String>>,
    /// Warm-up excluded from growth fits (overrides monitor.warmup).
    #[arg(long)]
    pub warmup: Option<String>,
    /// Also serve the proxy's upstream here and measure the proxy from both sides (overrides
    /// upstream.listen).
    #[arg(long)]
    pub upstream_listen: Option<String>,
    /// Write the self-contained HTML report here at the end of the run (overrides
    /// run.report_html).
    #[arg(long = "report", value_name = "FILE")]
    pub report_html: Option<std::path::PathBuf>,
}

impl Overrides {
    /// The first scenario flag given, as (flag, value), for error messages.
    fn scenario_flag(&self) -> Option<(&'static str, String)> {
        if let Some(a) = &self.api {
            return Some(("--api", a.clone()));
        }
        if let Some(m) = &self.model {
            return Some(("--model", m.clone()));
        }
        self.stream.map(|s| {
            if s {
                ("--stream", "true".to_owned())
            } else {
                ("--no-stream", "true".to_owned())
            }
        })
    }

    /// The plain plan's one scenario, from `--api`, `--model` and `--stream`/`--no-stream`.
    fn scenario(&self) -> Result<RawScenario, ConfigError> {
        let api = self.api.as_deref().unwrap_or(DEFAULT_API);
        let kind = ApiKind::from_name(api).ok_or_else(|| {
            let known: Vec<&str> = ApiKind::ALL.iter().map(|k| k.as_str()).collect();
            ConfigError::invalid(
                "--api",
                api,
                format!("unknown API kind; must be one of: {}", known.join(", ")),
            )
        })?;
        let model = self.model.as_deref().unwrap_or(DEFAULT_MODEL);
        if model.trim().is_empty() {
            return Err(ConfigError::invalid("--model", model, "must not be empty"));
        }
        Ok(RawScenario {
            name: kind.as_str().to_owned(),
            api: kind.as_str().to_owned(),
            model: model.to_owned(),
            stream: self.stream,
            weight: 1,
            cancel: None,
            ..RawScenario::default()
        })
    }
}

/// Loads the raw config from the file (or the embedded default), `env` and `overrides`.
///
/// `env` is the environment to read `SOAKD__*` variables from; the binary passes the process
/// environment, tests pass a map.
pub fn load(
    file: Option<&Path>,
    env: &HashMap<String, String>,
    overrides: &Overrides,
) -> Result<RawConfig, ConfigError> {
    use config::{Config as Builder, Environment, File, FileFormat};
    let o = overrides;
    let env_target = env.get("SOAKD__TARGET__URL").is_some_and(|v| !v.is_empty());
    let plain = file.is_none() && (o.target.is_some() || env_target);
    if !plain {
        if let Some((flag, value)) = o.scenario_flag() {
            let reason = if file.is_some() {
                "with --config the scenarios belong in the file's [[scenarios]]"
            } else {
                "applies only with --target (the demo config has its own scenarios)"
            };
            return Err(ConfigError::invalid(flag, value, reason));
        }
    }
    let mut b = Builder::builder();
    b = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::invalid("--config", path.display(), format!("cannot read: {e}"))
            })?;
            b.add_source(File::from_str(&text, FileFormat::Toml))
        }
        None if plain => b.add_source(File::from_str(PLAIN_TOML, FileFormat::Toml)),
        None => b.add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml)),
    };
    b = b.add_source(
        Environment::with_prefix("SOAKD")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .source(Some(env.clone().into_iter().collect())),
    );
    let flags: [(&str, Option<config::Value>); 10] = [
        ("target.url", o.target.clone().map(Into::into)),
        ("load.rate", o.rate.map(Into::into)),
        ("run.duration", o.duration.clone().map(Into::into)),
        ("admin.listen", o.admin_listen.clone().map(Into::into)),
        (
            "monitor.sample_interval",
            o.sample_interval.clone().map(Into::into),
        ),
        ("monitor.warmup", o.warmup.clone().map(Into::into)),
        ("monitor.windows", o.growth_windows.clone().map(Into::into)),
        ("upstream.listen", o.upstream_listen.clone().map(Into::into)),
        (
            "run.report_html",
            o.report_html
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned().into()),
        ),
        ("target.api_key_env", o.api_key_env.clone().map(Into::into)),
    ];
    let err = |e: config::ConfigError| ConfigError::Load(e.to_string());
    for (key, value) in flags {
        if let Some(v) = value {
            b = b.set_override(key, v).map_err(err)?;
        }
    }
    let mut raw: RawConfig = b.build().map_err(err)?.try_deserialize().map_err(err)?;
    // --watch-pid adds a process rather than replacing a value.
    if let Some(pid) = o.watch_pid {
        raw.monitor.watch_pid(pid);
    }
    if plain {
        raw.scenarios = vec![o.scenario()?];
    }
    Ok(raw)
}
