//! soakd: a soak-test daemon for AI proxies.
//!
//! Modules, one room each:
//! - [`config`]: the TOML file + environment + flags, raw structs validated into typed settings.
//! - [`plan`]: the load plan (rate over time: steady, bursts, stages, arrivals, closed users).
//! - [`engine`]: pacing, in-flight cap, dispatch.
//! - [`workload`]: scenarios, prompt generation, request bodies.
//! - [`client`]: HTTP + SSE reading, OpenAI/Anthropic stream parsers, outcome classification.
//! - [`monitor`]: process sampling, remote scraping, slope estimation, leak verdict.
//! - [`metrics`]: every metric defined once.
//! - [`stats`]: bounded HDR histograms for percentiles in `/status` and the summary.
//! - [`admin`]: the axum admin server.
//! - [`telemetry`]: tracing and OTLP export.
//! - [`mock`]: the built-in mock AI proxy.
//! - [`verdict`]: pass/fail thresholds.
//! - [`report`]: the end-of-run summary.
//! - [`series`]: bounded, downsampled time series of the run for the live page and the report.
//! - [`page`]: the live page (`GET /`, `GET /series`) and the self-contained HTML report.
//! - [`compare`]: `soakd compare`, two runs' summaries side by side.
//! - [`analyze`]: post-hoc leak analysis of recorded series (CSV, Prometheus).

pub mod admin;
pub mod analyze;
pub mod app;
pub mod client;
pub mod compare;
pub mod config;
pub mod engine;
pub mod exit;
pub mod metrics;
pub mod mock;
pub mod monitor;
pub mod page;
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
