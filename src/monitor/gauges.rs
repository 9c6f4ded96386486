//! The monitor's gauges: which family holds each resource's sample and growth, a window's
//! export after a refit, and their removal when a process goes down or restarts.

use super::report::per_request;
use super::{Monitor, ProcState, Resource};

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
}
