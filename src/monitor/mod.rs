//! TEMPORARY stand-in (replaced by the monitor branch at merge).
use serde::{Deserialize, Serialize};
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RawMonitor {
    pub sample_interval: Option<String>,
    pub warmup: Option<String>,
    pub windows: Option<Vec<String>>,
    pub processes: Vec<serde_json::Value>,
}
#[derive(Debug, Clone)]
pub struct MonitorSettings;
impl RawMonitor {
    pub fn validate(&self) -> Result<MonitorSettings, crate::config::ConfigError> {
        Ok(MonitorSettings)
    }
    pub fn watch_pid(&mut self, _pid: u32) {}
}
#[derive(Debug, thiserror::Error)]
#[error("monitor")]
pub struct MonitorError;
#[derive(Debug, Clone, Default, Serialize)]
pub struct MonitorReport {
    pub processes: Vec<serde_json::Value>,
}
pub struct Monitor;
impl Monitor {
    pub fn new(
        _s: MonitorSettings,
        _m: std::sync::Arc<crate::metrics::Metrics>,
        _l: std::sync::Arc<crate::signals::LoadSignals>,
    ) -> Result<Self, MonitorError> {
        Ok(Monitor)
    }
    pub async fn run(self: std::sync::Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        shutdown.cancelled().await
    }
    pub fn snapshot(&self) -> MonitorReport {
        MonitorReport::default()
    }
    pub fn progress_fragment(&self) -> String {
        String::new()
    }
}
impl MonitorReport {
    pub fn rss_growth_per_hour(&self) -> std::collections::BTreeMap<String, Option<f64>> {
        Default::default()
    }
    pub fn to_text(&self) -> String {
        String::new()
    }
}
impl MonitorSettings {
    pub fn add_embedded_mock(&mut self, _pid: u32) {}
}
