//! Logs and traces.
//!
//! Logs go to stderr through `tracing-subscriber`, as text or JSON, filtered by `log.level`
//! (or `RUST_LOG` when set). Text lines carry ANSI colour only when stderr is a terminal and
//! `NO_COLOR` is unset or empty ([`stderr_colour`]): a file, a pipe, `kubectl logs` or a CI
//! log gets plain text. When `[otlp] endpoint` is configured, spans are also exported over
//! OTLP/gRPC (tonic) through `tracing-opentelemetry`: a root span `request` per request (with
//! its scenario, API, phase and outcome), of which a fraction `otlp.sample_ratio` is sampled.
//! Log events are not exported. Export is off otherwise, and [`Telemetry::shutdown`] flushes
//! what is buffered before the process exits.
//!
//! [`settings`] holds the `[log]`/`[otlp]` sections; [`warn`] the rate limiter of repeated
//! warnings.

pub mod settings;
pub mod warn;

pub use settings::{LogFormat, LogSettings, OtlpSettings, RawLog, RawOtlp};
pub use warn::WarnLimiter;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Errors setting up logs and traces.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("log filter {0:?}: {1}")]
    Filter(String, String),
    #[error("OTLP exporter for {endpoint}: {reason}")]
    Otlp { endpoint: String, reason: String },
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Handle that flushes trace export at exit.
#[must_use = "call shutdown() at exit to flush spans"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// True when spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes and stops trace export.
    pub fn shutdown(self) {
        if let Some(p) = self.provider {
            if let Err(e) = p.shutdown() {
                tracing::warn!(error = %e, "flushing OTLP spans failed");
            }
        }
    }
}

/// Whether log lines on stderr carry ANSI colour: only on a terminal, and never when
/// `NO_COLOR` is set to a non-empty value (<https://no-color.org>). `soakd run` and `soakd
/// mock` both use it.
pub fn stderr_colour() -> bool {
    use std::io::IsTerminal;
    colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

/// [`stderr_colour`] for a stream that is (or is not) a `terminal` and this `NO_COLOR`.
pub fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

fn filter(level: &str) -> Result<EnvFilter, TelemetryError> {
    match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => {
            EnvFilter::try_new(&v).map_err(|e| TelemetryError::Filter(v, e.to_string()))
        }
        _ => EnvFilter::try_new(level)
            .map_err(|e| TelemetryError::Filter(level.to_string(), e.to_string())),
    }
}

/// Installs the global subscriber. Must run inside the tokio runtime when OTLP is on (the
/// gRPC channel lives on it).
pub fn init(log: &LogSettings, otlp: Option<&OtlpSettings>) -> Result<Telemetry, TelemetryError> {
    let fmt = match log.format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(stderr_colour())
            .with_target(false)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_ansi(false)
            .flatten_event(true)
            .with_target(false)
            .with_current_span(false)
            .with_writer(std::io::stderr)
            .boxed(),
    }
    .with_filter(filter(&log.level)?);

    let (provider, otel) = match otlp {
        None => (None, None),
        Some(o) => {
            let err = |reason: String| TelemetryError::Otlp {
                endpoint: o.endpoint.to_string(),
                reason,
            };
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(o.endpoint.as_str())
                .build()
                .map_err(|e| err(e.to_string()))?;
            let resource = opentelemetry_sdk::Resource::builder()
                .with_service_name(o.service_name.clone())
                .build();
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                    o.sample_ratio,
                ))))
                .with_resource(resource)
                .build();
            let tracer = provider.tracer("soakd");
            // Spans only: log events stay in the log.
            let layer = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(tracing_subscriber::filter::filter_fn(|m| m.is_span()));
            (Some(provider), Some(layer))
        }
    };

    tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(Telemetry { provider })
}

#[cfg(test)]
mod tests {
    use super::colour;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        assert!(colour(true, None));
        assert!(
            colour(true, Some(OsStr::new(""))),
            "an empty NO_COLOR is unset"
        );
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None), "a file, a pipe, kubectl logs");
        assert!(!colour(false, Some(OsStr::new("1"))));
    }
}
