//! The two-sided soak: soakd also serves the proxy's upstream, and measures what the proxy
//! itself adds, holds back, retries and orphans.
//!
//! With `[upstream] listen = "ADDR"` (flag `--upstream-listen`), `soakd run` serves the mock
//! API ([`crate::mock`], with the `[mock]` latency, shape and fault knobs) in-process on ADDR,
//! on its own runtime whose threads are named `soakd-upstream`. The proxy under test is pointed
//! at it as its provider (a LiteLLM `api_base`, an nginx `proxy_pass`, a Kong upstream…), and
//! soakd's client sends through the proxy as usual (`target.url` is the proxy; pointing it at
//! the upstream itself is a zero-proxy calibration run).
//!
//! While it is on, every request carries a soakd id ([`marker`]): at the end of its last user
//! text and in the header `x-soakd-request-id`. (Only then: the id makes every prompt unique,
//! which defeats a proxy's response cache.) The upstream finds the id, joins its side of the
//! request to the client's through a bounded table with a TTL ([`track`]), numbers each content
//! chunk it sends, and both sides' stamps — on one monotonic clock — give the measures of
//! [`measure`]: time added per stage (`request`, `first_token`, `chunk`, `response`), buffered
//! streams and coalesced chunks, retries, and the proxy's own overhead claim when
//! `overhead_header` names one. Every client give-up gets a fate ([`fate`]: propagated, with
//! its time; upstream finished; not propagated, with the tokens generated for nobody;
//! orphaned; unknown), and every client-visible error an origin ([`origin`]: the upstream's
//! failure passed through, or the proxy's own), both read from the per-id record of the
//! upstream's attempts ([`attempts`]). A request whose id the upstream cannot
//! find (a proxy that strips it from the text and the header) counts as `scenario="untagged"`,
//! with one warning; no join is invented.
//!
//! Memory is fixed: the table holds at most `max_tracked` requests, each for at most
//! `stream_timeout + orphan_after`, the give-ups waiting for their fate at most `max_tracked`,
//! each for at most `orphan_after`, and each side keeps at most [`measure::MAX_CHUNKS`] stamps.

pub mod attempts;
pub mod fate;
pub mod marker;
pub mod measure;
pub mod origin;
pub mod report;
pub mod settings;
pub mod track;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use fate::Fate;
pub use origin::Origin;
pub use report::{ErrorOrigins, GiveUps, ProxyReport};
pub use settings::{RawUpstream, UpstreamSettings};
pub use track::{ClientStamps, Link, Tracker, TrackerTap};

use crate::mock::MockArgs;

/// Why the upstream could not start. Each message names its OS error whole, which is not
/// also a `source()`, so a printed chain says it once.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot listen for the upstream on {addr}: {error}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("cannot start the upstream thread: {0}")]
    Thread(std::io::Error),
}

/// The running upstream.
pub struct Upstream {
    addr: SocketAddr,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Upstream {
    /// Binds `settings.listen` (failing before any load starts when it is taken) and serves the
    /// mock with `mock`'s knobs on its own runtime, reporting to `tracker`.
    pub fn start(
        settings: &UpstreamSettings,
        mock: MockArgs,
        tracker: Arc<Tracker>,
    ) -> Result<Upstream, UpstreamError> {
        let bind_err = |error| UpstreamError::Bind {
            addr: settings.listen,
            error,
        };
        let listener = std::net::TcpListener::bind(settings.listen).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let stop = CancellationToken::new();
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("soakd-upstream".into())
                .spawn(move || serve(listener, mock, tracker, stop))
                .map_err(UpstreamError::Thread)?
        };
        Ok(Upstream {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving (open streams get the mock's shutdown grace) and waits for the thread.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn serve(
    listener: std::net::TcpListener,
    mock: MockArgs,
    tracker: Arc<Tracker>,
    stop: CancellationToken,
) {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("soakd-upstream")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the upstream runtime");
            return;
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot use the upstream listener");
                return;
            }
        };
        tokio::spawn(tracker.clone().sweep_every(stop.clone()));
        let tap: Arc<dyn crate::mock::Tap> = Arc::new(TrackerTap(tracker));
        if let Err(e) = crate::mock::serve_with_tap(mock, listener, stop, Some(tap)).await {
            tracing::error!(error = %e, "the upstream failed");
        }
    });
}
