//! Reading the sources into a [`RawConfig`]: the file (or the embedded demo), the
//! `SOAKD__SECTION__KEY` environment, then the command-line flags.

use std::collections::HashMap;
use std::path::Path;

use super::{RawConfig, DEFAULT_TOML};
use crate::units::ConfigError;

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
    pub report_html: Option<std::path::PathBuf>,
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
    let flags: [(&str, Option<config::Value>); 8] = [
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
        (
            "run.report_html",
            o.report_html
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned().into()),
        ),
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
    Ok(raw)
}
