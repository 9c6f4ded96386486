//! Where a client-visible error came from, by what the upstream side saw for its id.
//!
//! A client-visible error is a request that ended with neither `ok` nor a give-up (`cancelled`,
//! `timeout`: those have fates, see [`super::fate`]): an error status, a truncated or broken
//! stream, an in-band error, a connect error. Its origin is
//! - `upstream` when the proxy passed an upstream failure through: the latest upstream attempt
//!   for the id was answered with a failure (an error status, an in-band error, a truncation,
//!   a stall, garbage);
//! - `proxy` otherwise: the upstream answered 2xx for the id, or was never reached for it
//!   (counted apart as "never reached the upstream", not a label value).
//!
//! `soakd_proxy_error_origin_total{scenario,origin}` counts them; the summary and the JSON
//! (`proxy.errors`) show both and the never-reached count. A run in which the upstream received
//! none of soakd's requests (untagged ones are not soakd's) ends its proxy block with
//! [`super::report::NEVER_REACHED`].

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::IntCounter;

use super::attempts::Attempts;
use super::report::ErrorOrigins;
use crate::metrics::{label_enum, Metrics};

label_enum! {
    /// The `origin` label of `soakd_proxy_error_origin_total`.
    Origin {
        Upstream => "upstream",
        Proxy => "proxy",
    }
}

/// The origin of one client-visible error, and whether the upstream was never reached for it.
pub fn classify(a: &Attempts) -> (Origin, bool) {
    match a.latest_answer {
        Some(ans) if ans.failed => (Origin::Upstream, false),
        _ => (Origin::Proxy, a.began == 0),
    }
}

/// The error-origin counters of one scenario, resolved once.
pub(super) struct OriginHandles {
    by_origin: [IntCounter; 2],
    never_reached: AtomicU64,
}

impl OriginHandles {
    pub(super) fn new(m: &Metrics, scenario: &str) -> Self {
        OriginHandles {
            by_origin: std::array::from_fn(|i| {
                m.proxy_error_origin_total
                    .with_label_values(&[scenario, Origin::ALL[i].as_str()])
            }),
            never_reached: AtomicU64::new(0),
        }
    }

    /// Counts one client-visible error whose upstream side is `a`.
    pub(super) fn record(&self, a: &Attempts) {
        let (origin, never) = classify(a);
        self.by_origin[origin.index()].inc();
        if never {
            self.never_reached.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn report(&self) -> ErrorOrigins {
        ErrorOrigins {
            upstream: self.by_origin[Origin::Upstream.index()].get(),
            proxy: self.by_origin[Origin::Proxy.index()].get(),
            never_reached: self.never_reached.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::Answer;
    use std::time::{Duration, Instant};

    fn answer(status: u16, failed: bool) -> Answer {
        Answer {
            status,
            failed,
            stream: false,
            output_tokens: 0,
        }
    }

    #[test]
    fn an_error_is_the_upstreams_only_when_its_latest_answer_failed() {
        let t0 = Instant::now();
        let mut a = Attempts::default();
        assert_eq!(classify(&a), (Origin::Proxy, true), "never reached");
        a.began();
        assert_eq!(
            classify(&a),
            (Origin::Proxy, false),
            "reached, not answered"
        );
        a.answered(t0, &answer(500, true));
        assert_eq!(classify(&a), (Origin::Upstream, false));
        // A retry answered 200: the error the client saw is the proxy's.
        a.began();
        a.answered(t0 + Duration::from_millis(5), &answer(200, false));
        assert_eq!(classify(&a), (Origin::Proxy, false));
        // An older attempt's answer arriving late does not replace the latest.
        a.answered(t0 + Duration::from_millis(1), &answer(503, true));
        assert_eq!(classify(&a), (Origin::Proxy, false));
        // An in-band failure under a 200 is the upstream's.
        let mut b = Attempts::default();
        b.began();
        b.answered(t0, &answer(200, true));
        assert_eq!(classify(&b), (Origin::Upstream, false));
    }
}
