//! The monitor's gauges: which family holds each resource's sample and growth, a window's
//! export after a refit, their removal when a process goes down or restarts, and the memory
//! arc's (fed here from every sample, [`super::arc`]).

use super::arc::{ArcContext, ArcPhase, Values};
use super::estimate::N_RES;
use super::report::per_request;
use super::{Monitor, ProcState, Resource, Tick};

impl Monitor {
    pub(super) fn sample_gauge(&self, r: Resource) -> &prometheus::GaugeVec {
        match r {
            Resource::Rss => &self.metrics.process_resident_memory_bytes,
            Resource::Fds => &self.metrics.process_open_fds,
            Resource::Threads => &self.metrics.process_threads,
        }
    }

    pub(super) fn growth_gauge(&self, r: Resource) -> &prometheus::GaugeVec {
        match r {
            Resource::Rss => &self.metrics.process_rss_growth,
            Resource::Fds => &self.metrics.process_fd_growth,
            Resource::Threads => &self.metrics.process_thread_growth,
        }
    }

    pub(super) fn remove_growth_gauges(&self, st: &ProcState) {
        for w in &self.settings.windows {
            let pw = [st.name.as_str(), w.label.as_str()];
            for r in Resource::ALL {
                let _ = self.growth_gauge(*r).remove_label_values(&pw);
                let _ = self.metrics.process_growth_fit_r2.remove_label_values(&[
                    &st.name,
                    r.as_str(),
                    &w.label,
                ]);
            }
            for r in Resource::ALL {
                let _ = self
                    .metrics
                    .process_growth_lower_bound
                    .remove_label_values(&[&st.name, r.as_str(), &w.label]);
            }
            let _ = self
                .metrics
                .process_rss_growth_per_request
                .remove_label_values(&pw);
        }
        self.remove_attribution_gauges(st);
    }

    pub(super) fn remove_gauges(&self, st: &ProcState) {
        for r in Resource::ALL {
            let _ = self.sample_gauge(*r).remove_label_values(&[&st.name]);
        }
        self.remove_growth_gauges(st);
    }

    pub(super) fn export_window(&self, st: &ProcState, wi: usize) {
        let label = self.settings.windows[wi].label.as_str();
        let w = &st.trend.windows()[wi];
        let pw = [st.name.as_str(), label];
        for r in Resource::ALL {
            let prw = [st.name.as_str(), r.as_str(), label];
            let (r2, lower) = (
                &self.metrics.process_growth_fit_r2,
                &self.metrics.process_growth_lower_bound,
            );
            match w.fit(r.index()) {
                Some(fit) => {
                    self.growth_gauge(*r).with_label_values(&pw).set(fit.slope);
                    r2.with_label_values(&prw).set(fit.r2);
                    // An unbounded interval (too few troughs for it) has no lower bound.
                    if fit.slope_lo.is_finite() {
                        lower.with_label_values(&prw).set(fit.slope_lo);
                    } else {
                        let _ = lower.remove_label_values(&prw);
                    }
                }
                None => {
                    let _ = self.growth_gauge(*r).remove_label_values(&pw);
                    let _ = r2.remove_label_values(&prw);
                    let _ = lower.remove_label_values(&prw);
                }
            }
        }
        let g = &self.metrics.process_rss_growth_per_request;
        match per_request(w) {
            Some(v) => g.with_label_values(&pw).set(v),
            None => {
                let _ = g.remove_label_values(&pw);
            }
        }
    }

    /// Feeds one sample to the process's memory arc and keeps the arc's gauges current:
    /// the idle median while idle, the plateau whenever a load point closes (and once more,
    /// over the whole load, when it has ended), the recovered median while cooling down.
    pub(super) fn record_arc(&self, st: &mut ProcState, values: &Values, tick: Tick<'_>) {
        let Some(phase) = tick.arc_phase() else {
            return;
        };
        let closed = st.arc.push(phase, tick.t, tick.since, *values);
        if closed || st.arc.needs_final(phase) {
            let last = st.trend.windows().len().saturating_sub(1);
            // The GC period the longest window found, at least the load's own cycle.
            let load = self.settings.load_period.map(|d| d.as_secs_f64());
            let periods: [Option<f64>; N_RES] = std::array::from_fn(|r| {
                match (st.trend.fit(last, r).and_then(|f| f.period), load) {
                    (Some(p), Some(l)) => Some(p.max(l)),
                    (p, l) => p.or(l),
                }
            });
            let window = self
                .settings
                .windows
                .last()
                .map_or(("", 0.0), |w| (w.label.as_str(), w.duration.as_secs_f64()));
            let ctx = ArcContext {
                rules: &self.rules,
                periods,
                window,
            };
            st.arc.refresh(&ctx, phase != ArcPhase::Load);
            let plateau = st.arc.report(st.memory, &self.rules).plateau;
            let rss = plateau.as_ref().map(|p| &p.rss);
            let n = [st.name.as_str()];
            let (secs, bytes) = (
                &self.metrics.process_rss_plateau_seconds,
                &self.metrics.process_rss_plateau_bytes,
            );
            match rss.and_then(|p| p.seconds.zip(p.level)) {
                Some((s, l)) => {
                    secs.with_label_values(&n).set(s);
                    bytes.with_label_values(&n).set(l);
                }
                None => {
                    let _ = secs.remove_label_values(&n);
                    let _ = bytes.remove_label_values(&n);
                }
            }
        }
        let gauge = match phase {
            ArcPhase::Idle => &self.metrics.process_rss_idle,
            ArcPhase::Cooldown => &self.metrics.process_rss_recovered,
            ArcPhase::Load | ArcPhase::Drain => return,
        };
        let arc = st.arc.report(st.memory, &self.rules);
        let v = match phase {
            ArcPhase::Idle => arc.idle,
            _ => arc.recovered,
        };
        if let Some(v) = v.and_then(|v| v.rss) {
            gauge.with_label_values(&[&st.name]).set(v);
        }
    }
}
