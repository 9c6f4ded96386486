//! How the monitor shows attribution: the gauge
//! `soakd_process_rss_growth_bytes_per_request_by_scenario{process,scenario,window}` (set for
//! published values, removed otherwise) and the report in `/status` and the summary JSON (its
//! text table in the summary is [`crate::monitor::report::attribution_table`]).

use std::sync::atomic::Ordering;

use serde::Serialize;

use super::{Attribution, AttributionBuf, Sample, ScenarioAttribution};
use crate::monitor::{Monitor, MonitorSettings, ProcState};
use crate::signals::LoadSignals;

/// A window's attribution as `/status` and the summary show it: each scenario named.
pub type AttributionReport = Attribution<ScenarioReport>;

/// One scenario of an [`AttributionReport`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScenarioReport {
    /// The `scenario` label.
    pub scenario: String,
    #[serde(flatten)]
    pub attribution: ScenarioAttribution,
}

impl AttributionReport {
    fn new(a: &Attribution, names: &[String]) -> Self {
        AttributionReport {
            withheld: a.withheld,
            points: a.points,
            mix_changes: a.mix_changes,
            growth_per_request: a.growth_per_request,
            single_scenario: a.single_scenario,
            scenarios: names
                .iter()
                .zip(&a.scenarios)
                .map(|(n, s)| ScenarioReport {
                    scenario: n.clone(),
                    attribution: *s,
                })
                .collect(),
        }
    }
}

/// The mix signals as one monitor tick reads them (the same for every process).
#[derive(Debug, Clone, Copy)]
pub struct MixTick<'a> {
    /// Finished requests per scenario, configuration order.
    pub counts: &'a [u64],
    /// The mix epoch.
    pub epoch: u64,
    /// Whether the engine varies the mix.
    pub varies: bool,
}

impl<'a> MixTick<'a> {
    /// Reads the signals now, the counts into `counts`.
    pub fn read(s: &LoadSignals, counts: &'a mut Vec<u64>) -> Self {
        s.finished_by_scenario(counts);
        MixTick {
            counts,
            epoch: s.mix.epoch.load(Ordering::Relaxed),
            varies: s.mix.varies.load(Ordering::Relaxed),
        }
    }
}

/// Attribution buffers for one process: one per window of `settings`.
pub(in crate::monitor) fn bufs(
    settings: &MonitorSettings,
    scenarios: usize,
) -> Vec<AttributionBuf> {
    let interval = settings.sample_interval.as_secs_f64();
    settings
        .windows
        .iter()
        .map(|w| AttributionBuf::new(w.duration.as_secs_f64(), interval, scenarios))
        .collect()
}

impl Monitor {
    /// Feeds one sample (past the warm-up) to every window of `st` and exports the windows
    /// that refit.
    pub(in crate::monitor) fn push_attribution(
        &self,
        st: &mut ProcState,
        t: f64,
        rss: f64,
        mix: MixTick<'_>,
    ) {
        let s = Sample {
            t,
            rss,
            counts: mix.counts,
            epoch: mix.epoch,
            mix_varies: mix.varies,
        };
        for wi in 0..st.attribution.len() {
            if st.attribution[wi].push(&s) {
                self.export_attribution(st, wi);
            }
        }
    }

    fn export_attribution(&self, st: &ProcState, wi: usize) {
        let window = self.settings.windows[wi].label.as_str();
        let a = st.attribution[wi].result();
        let g = &self.metrics.process_rss_growth_per_request_by_scenario;
        for (i, name) in self.signals.mix.names.iter().enumerate() {
            let labels = [st.name.as_str(), name.as_str(), window];
            match a.value(i) {
                Some(v) => g.with_label_values(&labels).set(v),
                None => {
                    let _ = g.remove_label_values(&labels);
                }
            }
        }
    }

    /// Removes every attribution gauge of `st` (restart, unreadable process).
    pub(in crate::monitor) fn remove_attribution_gauges(&self, st: &ProcState) {
        let g = &self.metrics.process_rss_growth_per_request_by_scenario;
        for w in &self.settings.windows {
            for name in &self.signals.mix.names {
                let _ = g.remove_label_values(&[&st.name, name, &w.label]);
            }
        }
    }

    /// The report of window `wi` of `st`.
    pub(in crate::monitor) fn attribution_report(
        &self,
        st: &ProcState,
        wi: usize,
    ) -> AttributionReport {
        AttributionReport::new(st.attribution[wi].result(), &self.signals.mix.names)
    }
}
