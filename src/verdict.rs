//! TEMPORARY stand-in (replaced by the k8s branch at merge).
use serde::{Deserialize, Serialize};
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RawThresholds {
    pub p99_ttft: Option<String>,
    pub error_ratio: Option<f64>,
    pub max_dropped: Option<u64>,
}
#[derive(Debug, Clone)]
pub struct Thresholds;
impl RawThresholds {
    pub fn validate(&self) -> Result<Thresholds, crate::config::ConfigError> {
        Ok(Thresholds)
    }
}
#[derive(Debug, Clone, Default)]
pub struct VerdictInputs {
    pub requests: u64,
    pub errors: u64,
    pub streams: u64,
    pub streams_truncated: u64,
    pub dropped: u64,
    pub p99_ttft: Option<std::time::Duration>,
    pub p99_duration: Option<std::time::Duration>,
    pub rss_growth_per_hour: std::collections::BTreeMap<String, Option<f64>>,
}
#[derive(Debug, Clone, Serialize)]
pub struct ThresholdResult {
    pub name: &'static str,
    pub passed: bool,
    pub observed: Option<f64>,
    pub limit: f64,
    pub unit: &'static str,
    pub message: String,
}
impl Thresholds {
    pub fn evaluate(&self, _i: &VerdictInputs, _final: bool) -> Vec<ThresholdResult> {
        vec![]
    }
    pub fn is_empty(&self) -> bool {
        true
    }
    pub fn names(&self) -> Vec<&'static str> {
        vec![]
    }
    pub fn abort_on_fail(&self) -> bool {
        false
    }
}
