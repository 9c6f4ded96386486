//! The `[target]` section: the proxy under test and how the client talks to it. Raw struct
//! mirroring the file, validated into [`TargetSettings`] (where, with which key) and
//! [`ClientSettings`] (timeouts, HTTP version, TLS, limits).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::units::{self, ConfigError};

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
    #[serde(with = "units::serde_duration")]
    pub connect_timeout: Duration,
    /// Whole-request timeout for non-streaming requests, and time to response headers for streams.
    #[serde(with = "units::serde_duration")]
    pub request_timeout: Duration,
    /// Whole-stream timeout for SSE responses.
    #[serde(with = "units::serde_duration")]
    pub stream_timeout: Duration,
    /// "auto" (HTTP/2 when TLS ALPN offers it), "http1", or "http2" (prior knowledge).
    pub http: String,
    /// Extra CA certificates (PEM) for private PKIs.
    pub ca_file: Option<PathBuf>,
    /// Skip TLS certificate verification (staging only).
    pub insecure_skip_verify: bool,
    /// Idle keep-alive connections kept per host.
    pub pool_max_idle_per_host: usize,
    /// How long an idle pooled connection is kept.
    #[serde(with = "units::serde_duration")]
    pub pool_idle_timeout: Duration,
    /// Largest non-streaming response body accepted.
    #[serde(with = "units::serde_size")]
    pub max_response_bytes: u64,
    /// Largest single SSE event accepted.
    #[serde(with = "units::serde_size")]
    pub max_event_bytes: u64,
}

impl Default for RawTarget {
    fn default() -> Self {
        let d = ClientSettings::default();
        RawTarget {
            url: None,
            api_key_env: None,
            api_key_file: None,
            connect_timeout: d.connect_timeout,
            request_timeout: d.request_timeout,
            stream_timeout: d.stream_timeout,
            http: "auto".into(),
            ca_file: None,
            insecure_skip_verify: false,
            pool_max_idle_per_host: d.pool_max_idle_per_host,
            pool_idle_timeout: d.pool_idle_timeout,
            max_response_bytes: d.max_response_bytes as u64,
            max_event_bytes: d.max_event_bytes as u64,
        }
    }
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

/// Which HTTP versions the client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpVersion {
    /// HTTP/2 when TLS ALPN offers it, else HTTP/1.1.
    #[default]
    Auto,
    /// HTTP/1.1 only.
    Http1Only,
    /// HTTP/2 only: ALPN `h2` over TLS, h2c with prior knowledge on `http://`.
    Http2PriorKnowledge,
}

/// TLS options beyond the system roots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// A PEM file of extra CA certificates (a private PKI), added to the system roots.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate. For staging only; must be opted into explicitly.
    pub insecure_skip_verify: bool,
}

/// Everything that shapes the shared HTTP client and the per-request limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// TCP (+TLS) connect timeout.
    pub connect_timeout: Duration,
    /// A non-stream request as a whole; for streams, the time to the response headers.
    pub request_timeout: Duration,
    /// A stream as a whole, from the send to its last byte.
    pub stream_timeout: Duration,
    /// Idle keep-alive connections kept per host.
    pub pool_max_idle_per_host: usize,
    /// How long an idle connection is kept.
    pub pool_idle_timeout: Duration,
    /// HTTP version policy.
    pub http: HttpVersion,
    /// TLS roots and verification.
    pub tls: TlsSettings,
    /// Largest non-stream response body accepted.
    pub max_response_bytes: usize,
    /// Largest single SSE event (and line) accepted.
    pub max_event_bytes: usize,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            stream_timeout: Duration::from_secs(600),
            pool_max_idle_per_host: 1024,
            pool_idle_timeout: Duration::from_secs(90),
            http: HttpVersion::Auto,
            tls: TlsSettings::default(),
            max_response_bytes: 16 << 20,
            max_event_bytes: super::sse::DEFAULT_MAX_EVENT_BYTES,
            user_agent: concat!("soakd/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

impl RawTarget {
    /// Validates where the target is and which key to send, reading API-key variables
    /// through `env`. Errors name `target.<key>`.
    pub fn validate_target(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<TargetSettings, ConfigError> {
        match self.validate_target_deferred(env)? {
            (t, None) => Ok(t),
            (_, Some(missing)) => Err(missing),
        }
    }

    /// [`Self::validate_target`], except that a key which cannot be read on this machine (an
    /// `api_key_env` variable that is not set or empty, an `api_key_file` that cannot be read
    /// or is empty) comes back beside the settings (which then carry no key) instead of
    /// failing: the reference itself is valid. `soakd check-config` reports it as a warning,
    /// so a file validates on a machine without the secret (CI, a reviewer's laptop); `soakd
    /// run` refuses it.
    pub fn validate_target_deferred(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(TargetSettings, Option<ConfigError>), ConfigError> {
        let url = self
            .url
            .as_deref()
            .map(|u| units::http_url("target.url", u))
            .transpose()?;
        let key = match (&self.api_key_env, &self.api_key_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    "target.api_key_env",
                    "(set)",
                    "set either api_key_env or api_key_file, not both",
                ))
            }
            (Some(var), None) => match env(var) {
                Some(v) if !v.trim().is_empty() => Ok(Some(Secret(v.trim().to_string()))),
                Some(_) => Err(ConfigError::invalid(
                    "target.api_key_env",
                    var,
                    "the environment variable is empty",
                )),
                None => Err(ConfigError::invalid(
                    "target.api_key_env",
                    var,
                    "the environment variable is not set",
                )),
            },
            (None, Some(path)) => match std::fs::read_to_string(path) {
                Err(e) => Err(ConfigError::invalid(
                    "target.api_key_file",
                    path.display(),
                    format!("cannot read: {e}"),
                )),
                Ok(v) if v.trim().is_empty() => Err(ConfigError::invalid(
                    "target.api_key_file",
                    path.display(),
                    "the file is empty",
                )),
                Ok(v) => Ok(Some(Secret(v.trim().to_string()))),
            },
            (None, None) => Ok(None),
        };
        Ok(match key {
            Ok(api_key) => (TargetSettings { url, api_key }, None),
            Err(missing) => (TargetSettings { url, api_key: None }, Some(missing)),
        })
    }

    /// Validates the client's timeouts, HTTP version, TLS and limits.
    pub fn validate_client(&self) -> Result<ClientSettings, ConfigError> {
        if let Some(ca) = &self.ca_file {
            std::fs::metadata(ca).map_err(|e| {
                ConfigError::invalid("target.ca_file", ca.display(), format!("cannot read: {e}"))
            })?;
        }
        let size = |field: &str, v: u64| -> Result<usize, ConfigError> {
            units::at_least_one(field, v)?;
            usize::try_from(v).map_err(|_| ConfigError::invalid(field, v, "too large"))
        };
        Ok(ClientSettings {
            connect_timeout: units::nonzero_duration(
                "target.connect_timeout",
                self.connect_timeout,
            )?,
            request_timeout: units::nonzero_duration(
                "target.request_timeout",
                self.request_timeout,
            )?,
            stream_timeout: units::nonzero_duration("target.stream_timeout", self.stream_timeout)?,
            pool_max_idle_per_host: self.pool_max_idle_per_host,
            pool_idle_timeout: self.pool_idle_timeout,
            http: match self.http.as_str() {
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
                ca_file: self.ca_file.clone(),
                insecure_skip_verify: self.insecure_skip_verify,
            },
            max_response_bytes: size("target.max_response_bytes", self.max_response_bytes)?,
            max_event_bytes: size("target.max_event_bytes", self.max_event_bytes)?,
            ..ClientSettings::default()
        })
    }
}
