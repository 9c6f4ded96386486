//! The `[upstream]` section: raw struct mirroring the file, validated into
//! [`UpstreamSettings`]. Checks that involve other sections (a target is required, mock knobs
//! that mean nothing in-process) are in the config composer (`RawConfig::check_two_sided` in
//! [`crate::config`]).

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::units::{self, ConfigError};

/// `[upstream]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawUpstream {
    /// Serve the mock API on this address as the proxy's upstream (its provider), and measure
    /// the proxy from both sides; unset = off. Flag: `--upstream-listen`.
    pub listen: Option<String>,
    /// Most requests tracked at once for joining the two sides; the oldest is forgotten first.
    pub max_tracked: usize,
    /// An upstream call whose client gave up and whose answer has not ended this long after
    /// is an orphan (sending or not); also the longest the end of a run waits for the
    /// upstream side. Keep it below the proxy's own upstream read timeout (nginx's
    /// `proxy_read_timeout`, 60 s by default), or the proxy ends such calls first.
    #[serde(with = "units::serde_duration")]
    pub orphan_after: Duration,
    /// A response header in which the proxy reports its own overhead (e.g. LiteLLM's
    /// `x-litellm-overhead-duration-ms`), recorded next to soakd's measurement.
    pub overhead_header: Option<String>,
    /// Unit of `overhead_header`: "ms" (default), "s" or "us".
    pub overhead_header_unit: String,
}

impl Default for RawUpstream {
    fn default() -> Self {
        RawUpstream {
            listen: None,
            max_tracked: 100_000,
            orphan_after: Duration::from_secs(5),
            overhead_header: None,
            overhead_header_unit: "ms".into(),
        }
    }
}

/// Validated `[upstream]` (present only when `listen` is set).
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub listen: SocketAddr,
    pub max_tracked: usize,
    pub orphan_after: Duration,
    /// The proxy's overhead header and its unit in seconds (0.001 for "ms").
    pub overhead_header: Option<(reqwest::header::HeaderName, f64)>,
}

impl RawUpstream {
    /// Validates `[upstream]`; `None` when it is off. Errors name `upstream.<key>`.
    pub fn validate(&self) -> Result<Option<UpstreamSettings>, ConfigError> {
        let Some(listen) = &self.listen else {
            return Ok(None);
        };
        let listen = listen.parse().map_err(|_| {
            ConfigError::invalid(
                "upstream.listen",
                listen,
                "not a socket address like 127.0.0.1:9600",
            )
        })?;
        let max_tracked = units::at_least_one("upstream.max_tracked", self.max_tracked as u64)?;
        let orphan_after = units::nonzero_duration("upstream.orphan_after", self.orphan_after)?;
        let scale = units::one_of(
            "upstream.overhead_header_unit",
            &self.overhead_header_unit,
            &[("ms", 1e-3), ("s", 1.0), ("us", 1e-6)],
        )?;
        let overhead_header = match &self.overhead_header {
            None => None,
            Some(h) => Some((
                reqwest::header::HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                    ConfigError::invalid("upstream.overhead_header", h, "not a header name")
                })?,
                scale,
            )),
        };
        Ok(Some(UpstreamSettings {
            listen,
            max_tracked: max_tracked as usize,
            orphan_after,
            overhead_header,
        }))
    }
}
