//! Small pieces of process plumbing shared by `soakd run` and `soakd mock`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often freed heap pages are handed back to the OS.
pub const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Raises the soft open-file limit to the hard limit: every stream is a socket, and thousands
/// of concurrent streams need more than the usual soft limit of 1024. Returns the soft limit
/// now in force.
pub fn raise_fd_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid, initialised struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let wanted = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                lim = wanted;
            }
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every target
    Some(lim.rlim_cur as u64)
}

/// Calls `malloc_trim(0)` every `every` until `stop`: after thousands of connections close,
/// glibc keeps their freed buffers cached in its arenas and RSS stays at its high-water mark.
/// A process whose RSS is judged for leaks — the mock, and soakd itself — must give that
/// memory back, or a finished burst of streams reads as growth.
pub async fn trim_heap_every(every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        trim_heap().await;
    }
}

/// One `malloc_trim(0)`, off the async workers (it walks the heap). A no-op off glibc.
pub async fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim has no preconditions.
        let trimmed = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
        if let Err(e) = trimmed {
            tracing::debug!(error = %e, "heap trim task failed");
        }
    }
}
