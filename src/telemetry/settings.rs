//! The `[log]` and `[otlp]` sections: raw structs mirroring the file, validated into
//! [`LogSettings`] and [`OtlpSettings`].

use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::units::{self, ConfigError};

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

/// Log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Validated `[log]`.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
    /// `None`: no progress line.
    pub progress_interval: Option<Duration>,
}

/// Validated `[otlp]` (present only when an endpoint is set).
#[derive(Debug, Clone)]
pub struct OtlpSettings {
    pub endpoint: Url,
    pub service_name: String,
    pub sample_ratio: f64,
}

impl RawLog {
    /// Validates `[log]`; errors name `log.<key>`.
    pub fn validate(&self) -> Result<LogSettings, ConfigError> {
        let format = units::one_of(
            "log.format",
            &self.format,
            &[("text", LogFormat::Text), ("json", LogFormat::Json)],
        )?;
        tracing_subscriber::EnvFilter::try_new(&self.level)
            .map_err(|e| ConfigError::invalid("log.level", &self.level, e.to_string()))?;
        let progress_interval = match self.progress_interval.as_str() {
            "off" => None,
            v => Some(units::positive_duration("log.progress_interval", v)?),
        };
        Ok(LogSettings {
            format,
            level: self.level.clone(),
            progress_interval,
        })
    }
}

impl RawOtlp {
    /// Validates `[otlp]`: `None` when no endpoint is set.
    pub fn validate(&self) -> Result<Option<OtlpSettings>, ConfigError> {
        let Some(e) = &self.endpoint else {
            return Ok(None);
        };
        Ok(Some(OtlpSettings {
            endpoint: units::http_url("otlp.endpoint", e)?,
            service_name: self.service_name.clone(),
            sample_ratio: units::fraction("otlp.sample_ratio", self.sample_ratio)?,
        }))
    }
}
