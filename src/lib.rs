//! soakd: a soak-test daemon for AI proxies.
//!
//! Modules, one room each (README "Architecture"); each room owns its config section, raw as
//! written and validated into typed settings, and [`config`] composes them:
//! - [`config`]: the TOML file + environment + flags; no room's settings import it.
//! - [`units`]: the leaf every room uses: the config error, durations, sizes, fractions,
//!   label values, formatting of sizes and latencies.
//! - [`plan`]: the load plan (rate over time: steady, bursts, stages, arrivals, closed users).
//! - [`engine`]: pacing, in-flight cap, dispatch.
//! - [`workload`]: scenarios, prompt generation, request bodies.
//! - [`client`]: HTTP + SSE reading, per-API stream parsers, outcome classification, the one
//!   request recorder.
//! - [`monitor`]: process sampling, remote scraping, slope estimation, leak verdict.
//! - [`verdict`]: pass/fail thresholds and leak verdicts.
//! - [`metrics`]: every metric defined once.
//! - [`stats`]: bounded HDR histograms for percentiles in `/status` and the summary.
//! - [`report`]: `/status`, the progress line, the end-of-run summary.
//! - [`series`]: bounded, downsampled time series of the run for the live page and the report.
//! - [`page`]: the live page (`GET /`, `GET /series`) and the self-contained HTML report.
//! - [`compare`]: `soakd compare`, two runs' summaries side by side.
//! - [`analyze`]: post-hoc leak analysis of recorded series (CSV, Prometheus).
//! - [`fleet`]: `soakd verdict`, one verdict for a sharded soak from Prometheus and the
//!   shards' merged HDR histograms.
//! - [`admin`]: the axum admin server.
//! - [`telemetry`]: logs, OTLP traces, rate-limited warnings.
//! - [`mock`]: the built-in mock AI proxy.
//! - [`upstream`]: the two-sided soak (soakd serves the proxy's upstream).
//! - [`signals`]: load signals shared by the engine and the monitor.
//! - [`phases`]: the run's states (idle, load, drain, cooldown, linger) and how it stops.
//! - [`app`]: builds everything from the validated config and runs it.
//! - [`exit`]: every exit code; [`sys`]: process plumbing shared by `run` and `mock`.

pub mod admin;
pub mod analyze;
pub mod app;
pub mod client;
pub mod compare;
pub mod config;
pub mod engine;
pub mod exit;
pub mod fleet;
pub mod metrics;
pub mod mock;
pub mod monitor;
pub mod page;
pub mod phases;
pub mod plan;
pub mod report;
#[cfg(test)]
pub(crate) mod scratch;
pub mod series;
pub mod signals;
pub mod stats;
pub mod sys;
pub mod telemetry;
pub mod units;
pub mod upstream;
pub mod verdict;
pub mod workload;
