//! Microsecond sleeps inside a tokio runtime, for the pacers.
//!
//! [`Timer`] is a Linux `timerfd` (`CLOCK_MONOTONIC`, the clock of `std::time::Instant`)
//! registered with the runtime's epoll: it wakes the runtime when it expires, where tokio's own
//! timer rounds up to the next millisecond. Without a timerfd (it cannot be created) a pacer
//! falls back to tokio's timer and says so once.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Microsecond sleeps inside a tokio runtime (see the module docs).
pub struct Timer {
    fd: Option<AsyncFd<OwnedFd>>,
}

impl Default for Timer {
    fn default() -> Self {
        Self::new()
    }
}

impl Timer {
    /// A timerfd registered with the current runtime (call it inside one), or the
    /// tokio-timer fallback.
    pub fn new() -> Timer {
        // SAFETY: timerfd_create has no memory arguments; a non-negative return is a new fd
        // that nothing else owns.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        let fd = if raw >= 0 {
            // SAFETY: `raw` is a valid fd owned by nobody else (see above).
            let owned = unsafe { OwnedFd::from_raw_fd(raw) };
            // SAFETY: the OwnedFd owns a valid fd that is neither replaced nor closed while
            // the AsyncFd holds it.
            unsafe { AsyncFd::register_with_interest(owned, Interest::READABLE) }.ok()
        } else {
            None
        };
        if fd.is_none() {
            tracing::warn!(
                "no timerfd: the pacer falls back to tokio's millisecond timer, so schedule lag grows"
            );
        }
        Timer { fd }
    }

    /// Sleeps for `d` (at least until it has passed).
    pub async fn sleep(&self, d: Duration) {
        let Some(fd) = &self.fd else {
            tokio::time::sleep(d).await;
            return;
        };
        if d.is_zero() {
            return;
        }
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: a valid timerfd and a valid itimerspec; the old value is not asked for.
        let set = unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if set != 0 {
            tokio::time::sleep(d).await;
            return;
        }
        loop {
            let Ok(mut ready) = fd.readable().await else {
                tokio::time::sleep(d).await;
                return;
            };
            let mut ticks = [0u8; 8];
            // SAFETY: reads at most 8 bytes into an 8-byte buffer from a valid fd.
            let n = unsafe {
                libc::read(
                    fd.as_raw_fd(),
                    ticks.as_mut_ptr().cast::<libc::c_void>(),
                    ticks.len(),
                )
            };
            // Read or not (a stale readiness from an earlier, re-armed timer reads
            // EAGAIN), the fd is now empty: wait for the next edge.
            ready.clear_ready();
            if n == 8 {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn timer_sleeps_at_least_the_time_asked_and_rearms() {
        let timer = Timer::new();
        assert!(timer.fd.is_some(), "timerfd works on Linux");
        for us in [300u64, 1500, 50, 2000] {
            let t = std::time::Instant::now();
            tokio::time::timeout(
                Duration::from_secs(5),
                timer.sleep(Duration::from_micros(us)),
            )
            .await
            .expect("the timer fires");
            assert!(t.elapsed() >= Duration::from_micros(us), "{us} µs");
        }
        // A sleep abandoned before it fires leaves a stale expiry; the next one still waits.
        let _ = tokio::time::timeout(
            Duration::from_millis(1),
            timer.sleep(Duration::from_millis(50)),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(60)).await;
        let t = std::time::Instant::now();
        timer.sleep(Duration::from_millis(3)).await;
        assert!(t.elapsed() >= Duration::from_millis(3));
    }
}
