//! How the monitor shows attribution: the gauge
//! `soakd_process_rss_growth_bytes_per_request_by_scenario{process,scenario,window}` (set for
//! published values, removed otherwise), the report in `/status` and the summary JSON, and
//! the summary's text table.

use std::sync::atomic::Ordering;

use serde::Serialize;

use super::{Attribution, AttributionBuf, Sample, ScenarioAttribution, Withheld};
use crate::monitor::report::ProcessReport;
use crate::monitor::{Monitor, MonitorSettings, ProcState};
use crate::signals::LoadSignals;
use crate::units::fmt_bytes;

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

/// The summary's attribution table of one process: a row per scenario, a column per window,
/// each cell the published bytes per request (± its standard error) or why there is none.
/// When no window publishes anything, one line instead, saying why in the longest window
/// ([`why_none`]). Empty when no scenario is known.
pub fn text_table(p: &ProcessReport) -> String {
    use std::fmt::Write;
    let Some(first) = p.windows.first() else {
        return String::new();
    };
    let names: Vec<&str> = first
        .rss_bytes_per_request_by_scenario
        .scenarios
        .iter()
        .map(|s| s.scenario.as_str())
        .collect();
    if names.is_empty() {
        return String::new();
    }
    let published = p.windows.iter().any(|w| {
        w.rss_bytes_per_request_by_scenario
            .scenarios
            .iter()
            .any(|s| s.attribution.bytes_per_request.is_some())
    });
    if let (false, Some(longest)) = (published, p.windows.last()) {
        return format!(
            "    rss growth per request by scenario: none published; in the {} window: {}\n",
            longest.window,
            why_none(&longest.rss_bytes_per_request_by_scenario)
        );
    }
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); names.len()];
    for w in &p.windows {
        let a = &w.rss_bytes_per_request_by_scenario;
        for (row, s) in cells.iter_mut().zip(&a.scenarios) {
            let s = &s.attribution;
            row.push(match (s.bytes_per_request, s.withheld.or(a.withheld)) {
                (Some(v), _) => match s.std_error {
                    Some(se) => format!("{} ±{}", fmt_bytes(v), fmt_bytes(se)),
                    None => fmt_bytes(v),
                },
                (None, Some(why)) => format!("- ({})", why.as_str()),
                (None, None) => "-".into(),
            });
        }
    }
    let name_w = names.iter().map(|n| n.len()).max().unwrap_or(0).max(8);
    let col_w: Vec<usize> = (0..p.windows.len())
        .map(|c| {
            cells
                .iter()
                .map(|r| r[c].chars().count())
                .chain(std::iter::once(p.windows[c].window.len()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::from("    rss growth per request by scenario:\n");
    let _ = write!(out, "      {:<name_w$}", "scenario");
    for (w, cw) in p.windows.iter().zip(&col_w) {
        let _ = write!(out, "  {:>cw$}", w.window);
    }
    out.push('\n');
    for (name, row) in names.iter().zip(&cells) {
        let _ = write!(out, "      {name:<name_w$}");
        for (cell, cw) in row.iter().zip(&col_w) {
            let pad = cw.saturating_sub(cell.chars().count());
            let _ = write!(out, "  {}{cell}", " ".repeat(pad));
        }
        out.push('\n');
    }
    out
}

/// Why a window publishes no scenario's growth per request, in one sentence with its numbers.
pub fn why_none(a: &AttributionReport) -> String {
    use super::{MAX_REL_SE, MIN_MIX_CHANGES};
    let reasons: Vec<Withheld> = a
        .scenarios
        .iter()
        .filter_map(|s| s.attribution.withheld)
        .collect();
    let why = match a.withheld {
        Some(w) => w,
        None if !reasons.is_empty() && reasons.iter().all(|r| *r == reasons[0]) => reasons[0],
        None => {
            return a
                .scenarios
                .iter()
                .map(|s| {
                    let w = s.attribution.withheld.map_or("published", Withheld::as_str);
                    format!("{} {w}", s.scenario)
                })
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let columns = a
        .scenarios
        .iter()
        .filter(|s| s.attribution.requests > 0)
        .count();
    match why {
        Withheld::NotEnoughData => format!(
            "not enough data ({} buckets fitted): the window needs buckets over half its span",
            a.points
        ),
        Withheld::TooManyScenarios => format!(
            "more than {} scenarios are configured",
            super::MAX_SCENARIOS
        ),
        Withheld::NoRequests => "no requests finished inside it".into(),
        Withheld::MixFixed => {
            "the mix is fixed (mix_variation = \"off\"), so the scenarios' counts move together"
                .into()
        }
        Withheld::FewMixPeriods => format!(
            "the mix changed {} times inside it, {} needed",
            a.mix_changes,
            MIN_MIX_CHANGES.max(columns as u64)
        ),
        Withheld::NoGrowth => {
            "no RSS growth per request to attribute (the fit finds none over all scenarios)".into()
        }
        Withheld::Collinear => {
            "the scenarios' request counts move together (collinear), so they cannot be told apart"
                .into()
        }
        Withheld::Imprecise => {
            let errors: Vec<f64> = a
                .scenarios
                .iter()
                .filter_map(|s| s.attribution.std_error)
                .collect();
            let lo = errors.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = errors.iter().copied().fold(0.0, f64::max);
            let range = if errors.is_empty() {
                "the standard errors".to_string()
            } else if (hi - lo).abs() < 0.5 {
                format!("standard errors of ±{}", fmt_bytes(hi))
            } else {
                format!("standard errors of ±{}–±{}", fmt_bytes(lo), fmt_bytes(hi))
            };
            format!(
                "{range} exceed {:.0} % of the {} growth per request over all scenarios: too \
                 little growth to tell the scenarios apart",
                MAX_REL_SE * 100.0,
                fmt_bytes(a.growth_per_request.unwrap_or(0.0))
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(withheld: &[Option<Withheld>], se: &[Option<f64>]) -> AttributionReport {
        AttributionReport {
            withheld: None,
            points: 118,
            mix_changes: 11,
            growth_per_request: Some(11.4),
            scenarios: withheld
                .iter()
                .zip(se)
                .enumerate()
                .map(|(i, (w, se))| ScenarioReport {
                    scenario: format!("s{i}"),
                    attribution: ScenarioAttribution {
                        requests: 100,
                        bytes_per_request: None,
                        std_error: *se,
                        withheld: *w,
                    },
                })
                .collect(),
        }
    }

    #[test]
    fn why_none_says_the_reason_with_its_numbers() {
        let imprecise = Some(Withheld::Imprecise);
        let a = report(&[imprecise, imprecise], &[Some(43.0), Some(120.0)]);
        assert_eq!(
            why_none(&a),
            "standard errors of ±43B–±120B exceed 25 % of the 11B growth per request over all \
             scenarios: too little growth to tell the scenarios apart"
        );
        let mut few = report(&[None, None], &[None, None]);
        few.withheld = Some(Withheld::FewMixPeriods);
        few.mix_changes = 2;
        assert_eq!(
            why_none(&few),
            "the mix changed 2 times inside it, 3 needed"
        );
        let mixed = report(&[Some(Withheld::NoRequests), imprecise], &[None, Some(9.0)]);
        assert_eq!(why_none(&mixed), "s0 no requests, s1 imprecise");
    }
}
