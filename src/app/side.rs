//! The side thread of a run: the admin server, the monitor, the heap trim and the one-second
//! ticker (live series, live thresholds with `abort_on_fail`, the progress line), on a
//! current-thread runtime of their own so the load's runtime never waits on them.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::AppError;
use crate::metrics::Metrics;
use crate::monitor::Monitor;
use crate::report::RunView;
use crate::series::LiveSeries;
use crate::verdict::Thresholds;

pub(super) struct SideParts {
    pub(super) admin: std::net::TcpListener,
    pub(super) view: Arc<RunView>,
    pub(super) monitor: Arc<Monitor>,
    pub(super) series: Arc<LiveSeries>,
    pub(super) thresholds: Thresholds,
    pub(super) metrics: Arc<Metrics>,
    pub(super) progress: Option<Duration>,
    pub(super) stop_run: CancellationToken,
    /// Ends sampling, the ticker and live thresholds (at the summary).
    pub(super) shutdown: CancellationToken,
    /// Ends the admin server (after the linger).
    pub(super) admin_stop: CancellationToken,
    /// Sent once sampling and the ticker have stopped.
    pub(super) sampling_done: tokio::sync::oneshot::Sender<()>,
}

/// The admin server, the monitor and the ticker, on their own thread and runtime.
pub(super) fn spawn_side_thread(p: SideParts) -> Result<std::thread::JoinHandle<()>, AppError> {
    std::thread::Builder::new()
        .name("soakd-admin".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the admin runtime");
                    p.stop_run.cancel();
                    return;
                }
            };
            rt.block_on(side(p));
        })
        .map_err(AppError::Thread)
}

async fn side(p: SideParts) {
    let listener = match tokio::net::TcpListener::from_std(p.admin) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot use the admin listener");
            p.stop_run.cancel();
            return;
        }
    };
    let admin = tokio::spawn(crate::admin::serve(
        listener,
        p.view.clone(),
        p.series.clone(),
        p.admin_stop.clone(),
    ));
    let monitor = tokio::spawn(p.monitor.clone().run(p.shutdown.clone()));
    // soakd's own RSS is judged too: give freed stream buffers back to the OS.
    let trim = tokio::spawn(crate::sys::trim_heap_every(
        crate::sys::TRIM_EVERY,
        p.shutdown.clone(),
    ));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_progress = tokio::time::Instant::now();
    let mut aborted = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = p.shutdown.cancelled() => break,
        }
        p.view.tick();
        p.series.sample();
        let due = p
            .progress
            .is_some_and(|every| last_progress.elapsed() + Duration::from_millis(500) >= every);
        if p.thresholds.is_empty() && !due {
            continue;
        }
        let snap = p.view.snapshot();
        if !p.thresholds.is_empty() {
            let results = p.thresholds.evaluate(&snap.verdict_inputs(), false);
            for r in &results {
                p.metrics
                    .threshold_passing
                    .with_label_values(&[r.name.as_str()])
                    .set(i64::from(r.passed));
            }
            if p.thresholds.abort_on_fail && !aborted {
                if let Some(r) = results.iter().find(|r| !r.passed) {
                    tracing::error!(
                        threshold = %r.name,
                        "{}; stopping the run (abort_on_fail)",
                        r.message
                    );
                    aborted = true;
                    p.stop_run.cancel();
                }
            }
            p.view.set_thresholds(results);
        }
        if due {
            last_progress = tokio::time::Instant::now();
            tracing::info!("{}", p.view.progress_line(&snap));
        }
    }
    let _ = monitor.await;
    let _ = trim.await;
    let _ = p.sampling_done.send(());
    match admin.await {
        Ok(Err(e)) => tracing::error!(error = %e, "admin server failed"),
        Err(e) => tracing::error!(error = %e, "admin server panicked"),
        Ok(Ok(())) => {}
    }
}
