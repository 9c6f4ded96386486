//! Injected leaks: memory kept per request, open file descriptors, parked threads, and a
//! GC-like sawtooth. Each moves what `/proc/<pid>` shows (RSS, `fd/`, `Threads:`), which is
//! what soakd's leak detection watches.
//!
//! Leaked memory lives in the mock's own state ([`LeakStore`]) so it stays reachable; leaked
//! threads park forever and outlive the mock (that is what a thread leak is). With
//! `idle_release`, the memory (not the fds or threads) is freed after that long without a
//! request ([`run_idle_release`]), and grows again when requests come back.

use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus::IntGauge;
use tokio_util::sync::CancellationToken;

use super::args::{LeakOn, MockArgs, PLATEAU_DEFAULT_STEP, SAWTOOTH_BLOCK};

/// Most threads one mock leaks; more would risk the machine rather than prove a point.
pub(crate) const THREAD_CAP: u64 = 10_000;
/// Stack of a leaked thread (it only parks).
const LEAKED_THREAD_STACK: usize = 64 << 10;

/// The memory page size (touch stride).
fn page_size() -> usize {
    #[cfg(unix)]
    {
        // SAFETY: sysconf has no preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if p > 0 {
            return p as usize;
        }
    }
    4096
}

/// Writes one byte into every page so the whole range becomes resident.
fn touch_pages(buf: &mut [u8], page: usize) {
    for i in (0..buf.len()).step_by(page) {
        buf[i] = 0xa5;
    }
    if let Some(last) = buf.last_mut() {
        *last = 0xa5;
    }
}

/// Gauges the leaks report to.
#[derive(Clone)]
pub(crate) struct LeakGauges {
    /// `soakd_mock_leaked_bytes`.
    pub bytes: IntGauge,
    /// `soakd_mock_leaked_fds`.
    pub fds: IntGauge,
    /// `soakd_mock_leaked_threads`.
    pub threads: IntGauge,
    /// `soakd_mock_sawtooth_bytes`.
    pub sawtooth: IntGauge,
}

/// Per-request leaks: bytes (unbounded or plateau), fds and threads.
pub(crate) struct LeakStore {
    /// Bytes added per request (0 = none).
    step: u64,
    /// Stop growing once this many bytes are held.
    cap: Option<u64>,
    /// The class of requests the byte leak applies to (all when unset).
    leak_on: Option<LeakOn>,
    fd_every: Option<u64>,
    thread_every: Option<u64>,
    /// Free the held memory after this long without a request.
    idle_release: Option<Duration>,
    /// Milliseconds from `born` to the last request (kept only with `idle_release`).
    last_request_ms: AtomicU64,
    born: Instant,
    page: usize,
    /// Bytes reserved so far (may run ahead of `blocks` while an allocation is in progress).
    reserved: AtomicU64,
    requests: AtomicU64,
    streams: AtomicU64,
    threads: AtomicU64,
    thread_cap_logged: AtomicBool,
    fd_error_logged: AtomicBool,
    blocks: Mutex<Vec<Box<[u8]>>>,
    files: Mutex<Vec<File>>,
    gauges: LeakGauges,
}

impl LeakStore {
    /// A store for the leak knobs of `args`.
    pub(crate) fn new(args: &MockArgs, gauges: LeakGauges) -> Self {
        let step = match (args.plateau_bytes, args.leak_bytes_per_request) {
            (Some(_), 0) => PLATEAU_DEFAULT_STEP,
            (_, n) => n,
        };
        LeakStore {
            step,
            cap: args.plateau_bytes,
            leak_on: args.leak_on,
            fd_every: args.leak_fd_every,
            thread_every: args.leak_thread_every,
            idle_release: args.idle_release,
            last_request_ms: AtomicU64::new(0),
            born: Instant::now(),
            page: page_size(),
            reserved: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            streams: AtomicU64::new(0),
            threads: AtomicU64::new(0),
            thread_cap_logged: AtomicBool::new(false),
            fd_error_logged: AtomicBool::new(false),
            blocks: Mutex::new(Vec::new()),
            files: Mutex::new(Vec::new()),
            gauges,
        }
    }

    /// Whether any per-request leak, or `idle_release`, is configured (the request path skips
    /// the store if not).
    pub(crate) fn active(&self) -> bool {
        self.step > 0
            || self.fd_every.is_some()
            || self.thread_every.is_some()
            || self.idle_release.is_some()
    }

    /// Applies the per-request leaks for one AI request (`stream`: it asked for a stream;
    /// `anthropic`: it is an Anthropic request); the byte leak only when `leak_on` admits it.
    pub(crate) fn on_request(&self, stream: bool, anthropic: bool) {
        if self.idle_release.is_some() {
            self.last_request_ms
                .store(self.born.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
        if self.step > 0 && self.leak_on.is_none_or(|c| c.matches(stream, anthropic)) {
            self.leak_bytes();
        }
        if let Some(every) = self.fd_every {
            let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
            if n % every == 0 {
                self.leak_fd();
            }
        }
        if let (Some(every), true) = (self.thread_every, stream) {
            let n = self.streams.fetch_add(1, Ordering::Relaxed) + 1;
            if n % every == 0 {
                self.leak_thread();
            }
        }
    }

    fn leak_bytes(&self) {
        let step = self.step;
        let grant = match self.cap {
            None => {
                self.reserved.fetch_add(step, Ordering::Relaxed);
                step
            }
            Some(cap) => {
                let Ok(before) =
                    self.reserved
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                            (held < cap).then(|| held.saturating_add(step).min(cap))
                        })
                else {
                    return; // the plateau is reached
                };
                (before.saturating_add(step).min(cap)) - before
            }
        };
        let mut block = vec![0u8; grant as usize].into_boxed_slice();
        touch_pages(&mut block, self.page);
        let mut blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
        blocks.push(block);
        drop(blocks);
        self.gauges.bytes.add(grant as i64);
    }

    /// Allocates `n` bytes, makes them resident and keeps them forever.
    fn hold(&self, n: u64) {
        let mut block = vec![0u8; n as usize].into_boxed_slice();
        touch_pages(&mut block, self.page);
        self.blocks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(block);
        self.gauges.bytes.add(n as i64);
    }

    /// Bytes held by the memory leaks now.
    pub(crate) fn held_bytes(&self) -> u64 {
        self.gauges.bytes.get().max(0) as u64
    }

    /// Time since the last request (since the start before any).
    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_request_ms.load(Ordering::Relaxed));
        self.born.elapsed().saturating_sub(last)
    }

    /// Frees every held memory block; returns the bytes freed. A plateau grows again from 0.
    fn release(&self) -> u64 {
        let blocks = std::mem::take(&mut *self.blocks.lock().unwrap_or_else(|p| p.into_inner()));
        let freed: u64 = blocks.iter().map(|b| b.len() as u64).sum();
        self.reserved.store(0, Ordering::Relaxed);
        self.gauges.bytes.sub(freed as i64);
        drop(blocks);
        freed
    }

    fn leak_fd(&self) {
        match File::open("/dev/null") {
            Ok(f) => {
                self.files.lock().unwrap_or_else(|p| p.into_inner()).push(f);
                self.gauges.fds.inc();
            }
            Err(e) => {
                if !self.fd_error_logged.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "mock fd leak: cannot open /dev/null (logged once)");
                }
            }
        }
    }

    fn leak_thread(&self) {
        let reserved = self
            .threads
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < THREAD_CAP).then_some(n + 1)
            });
        if reserved.is_err() {
            if !self.thread_cap_logged.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    cap = THREAD_CAP,
                    "mock thread leak: cap reached, no more threads"
                );
            }
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("soakd-mock-leak".into())
            .stack_size(LEAKED_THREAD_STACK)
            .spawn(|| loop {
                std::thread::park();
            });
        match spawned {
            Ok(_) => self.gauges.threads.inc(),
            Err(e) => {
                self.threads.fetch_sub(1, Ordering::Relaxed);
                if !self.thread_cap_logged.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "mock thread leak: spawn failed (logged once)");
                }
            }
        }
    }
}

/// How often the per-open-stream leak runs.
const STREAM_LEAK_TICK: Duration = Duration::from_millis(100);

/// Leaks `per_stream_second` bytes per second for every open stream until `stop`: every
/// [`STREAM_LEAK_TICK`] it adds `per_stream_second × open streams × elapsed` to what is due
/// and keeps the whole pages of it (the remainder carries over).
pub(crate) async fn run_stream_leak(
    leaks: std::sync::Arc<LeakStore>,
    open_streams: IntGauge,
    per_stream_second: u64,
    stop: CancellationToken,
) {
    let page = leaks.page as f64;
    let mut interval = tokio::time::interval(STREAM_LEAK_TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = tokio::time::Instant::now();
    let mut due = 0.0_f64;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = interval.tick() => {}
        }
        let now = tokio::time::Instant::now();
        let open = open_streams.get().max(0) as f64;
        due += per_stream_second as f64 * open * (now - last).as_secs_f64();
        last = now;
        if due >= page {
            let n = (due / page).floor() * page;
            due -= n;
            leaks.hold(n as u64);
        }
    }
}

/// With `idle_release = after`: every `after / 5` (10 ms to 1 s), when no request came for
/// `after` and memory is held, frees it all and trims the heap so the pages go back to the OS.
pub(crate) async fn run_idle_release(
    leaks: std::sync::Arc<LeakStore>,
    after: Duration,
    stop: CancellationToken,
) {
    let every = (after / 5).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = interval.tick() => {}
        }
        if leaks.held_bytes() == 0 || leaks.idle_for() < after {
            continue;
        }
        let freed = leaks.release();
        crate::sys::trim_heap().await;
        tracing::info!(
            freed_bytes = freed,
            idle_for = ?leaks.idle_for(),
            "mock idle_release: freed the held memory"
        );
    }
}

/// A block of anonymous memory mapped on its own, so dropping it returns the pages to the OS
/// whatever the allocator would do with a freed chunk.
struct MappedBlock {
    #[cfg(unix)]
    ptr: std::ptr::NonNull<u8>,
    #[cfg(unix)]
    len: usize,
    #[cfg(not(unix))]
    _buf: Box<[u8]>,
}

// SAFETY: the mapping is owned exclusively by this value; nothing else aliases it.
#[cfg(unix)]
unsafe impl Send for MappedBlock {}

impl MappedBlock {
    /// Maps `len` bytes and writes to every page.
    fn new(len: usize, page: usize) -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            // SAFETY: an anonymous private mapping with no address hint; the result is checked.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(std::io::Error::last_os_error());
            }
            let ptr = std::ptr::NonNull::new(p.cast::<u8>())
                .ok_or_else(|| std::io::Error::other("mmap returned null"))?;
            // SAFETY: the mapping is `len` bytes, readable and writable, and owned here.
            let buf = unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), len) };
            touch_pages(buf, page);
            Ok(MappedBlock { ptr, len })
        }
        #[cfg(not(unix))]
        {
            let mut buf = vec![0u8; len].into_boxed_slice();
            touch_pages(&mut buf, page);
            Ok(MappedBlock { _buf: buf })
        }
    }
}

#[cfg(unix)]
impl Drop for MappedBlock {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping created in `new`, unmapped once here.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// The sawtooth's plan: `blocks` allocations of about `block` bytes, one per `tick`; the tick
/// after the last one frees everything, so one cycle lasts `(blocks + 1) × tick = period`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SawtoothPlan {
    /// Bytes at the top of the cycle.
    pub total: u64,
    /// Number of blocks per cycle.
    pub blocks: u64,
    /// Time between two steps.
    pub tick: Duration,
}

impl SawtoothPlan {
    /// Plan for `total` bytes over `period` (validated: `total` ≥ 1 MiB, `period` ≥ 10ms).
    pub(crate) fn new(total: u64, period: Duration) -> Self {
        let blocks = total.div_ceil(SAWTOOTH_BLOCK).max(1);
        let tick = period / u32::try_from(blocks + 1).unwrap_or(u32::MAX);
        SawtoothPlan {
            total,
            blocks,
            tick: tick.max(Duration::from_micros(100)),
        }
    }

    /// Size of block `i` (0-based): equal 1 MiB blocks, the last one takes the remainder.
    pub(crate) fn block_len(&self, i: u64) -> u64 {
        if i + 1 < self.blocks {
            SAWTOOTH_BLOCK
        } else {
            self.total - SAWTOOTH_BLOCK * (self.blocks - 1)
        }
    }
}

/// Runs the sawtooth until `stop` is cancelled, then frees everything.
pub(crate) async fn run_sawtooth(plan: SawtoothPlan, gauge: IntGauge, stop: CancellationToken) {
    let page = page_size();
    let mut held: Vec<MappedBlock> = Vec::with_capacity(plan.blocks as usize);
    let mut held_bytes: u64 = 0;
    let mut interval = tokio::time::interval(plan.tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await; // the first tick completes at once
    let mut error_logged = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = interval.tick() => {}
        }
        let n = held.len() as u64;
        if n == plan.blocks {
            held.clear();
            held_bytes = 0;
        } else {
            let len = plan.block_len(n);
            match MappedBlock::new(len as usize, page) {
                Ok(b) => {
                    held.push(b);
                    held_bytes += len;
                }
                Err(e) => {
                    if !error_logged {
                        error_logged = true;
                        tracing::warn!(error = %e, "mock sawtooth: allocation failed (logged once)");
                    }
                }
            }
        }
        gauge.set(held_bytes as i64);
    }
    drop(held);
    gauge.set(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauges() -> LeakGauges {
        let g = |n: &str| IntGauge::new(n, "test").unwrap();
        LeakGauges {
            bytes: g("b"),
            fds: g("f"),
            threads: g("t"),
            sawtooth: g("s"),
        }
    }

    /// A store for `args` with fresh gauges, and the gauges to read it by.
    fn new_store(args: &MockArgs) -> (LeakGauges, LeakStore) {
        let g = gauges();
        (g.clone(), LeakStore::new(args, g))
    }

    /// `n` requests of one class.
    fn requests(store: &LeakStore, n: usize, stream: bool, anthropic: bool) {
        for _ in 0..n {
            store.on_request(stream, anthropic);
        }
    }

    #[test]
    fn plateau_stops_at_the_cap_exactly() {
        let (g, store) = new_store(&MockArgs {
            plateau_bytes: Some(100_000),
            ..Default::default()
        });
        assert!(store.active());
        requests(&store, 5, false, false);
        // 64 KiB + the remaining 34,464 bytes, then nothing.
        assert_eq!(g.bytes.get(), 100_000);
        let blocks = store.blocks.lock().unwrap();
        let lens: Vec<usize> = blocks.iter().map(|b| b.len()).collect();
        assert_eq!(lens, [65_536, 100_000 - 65_536]);
        assert!(blocks
            .iter()
            .all(|b| b[0] == 0xa5 && b[b.len() - 1] == 0xa5));
    }

    #[test]
    fn plateau_uses_leak_bytes_per_request_as_step() {
        let (g, store) = new_store(&MockArgs {
            plateau_bytes: Some(10_000),
            leak_bytes_per_request: 3_000,
            ..Default::default()
        });
        requests(&store, 3, false, false);
        assert_eq!(g.bytes.get(), 9_000);
        requests(&store, 2, false, false);
        assert_eq!(g.bytes.get(), 10_000);
    }

    #[test]
    fn fd_and_thread_leaks_count_every_n() {
        let (g, store) = new_store(&MockArgs {
            leak_fd_every: Some(3),
            leak_thread_every: Some(2),
            ..Default::default()
        });
        requests(&store, 7, false, false);
        assert_eq!(g.fds.get(), 2);
        assert_eq!(g.threads.get(), 0, "non-stream requests leak no threads");
        requests(&store, 4, true, false);
        assert_eq!(g.threads.get(), 2);
        assert_eq!(store.files.lock().unwrap().len(), 3);
        assert_eq!(g.bytes.get(), 0);
    }

    #[test]
    fn leak_on_limits_the_byte_leak_to_its_class() {
        let args = MockArgs {
            leak_bytes_per_request: 1000,
            leak_on: Some(LeakOn::Stream),
            leak_fd_every: Some(1),
            ..Default::default()
        };
        let (g, store) = new_store(&args);
        store.on_request(false, false);
        store.on_request(false, true);
        assert_eq!(g.bytes.get(), 0, "unary requests leak no bytes");
        assert_eq!(g.fds.get(), 2, "the fd leak ignores leak_on");
        store.on_request(true, true);
        store.on_request(true, false);
        assert_eq!(g.bytes.get(), 2000);
        let anthropic = LeakStore::new(
            &MockArgs {
                leak_on: Some(LeakOn::Anthropic),
                ..args
            },
            g.clone(),
        );
        anthropic.on_request(true, false);
        anthropic.on_request(false, true);
        assert_eq!(g.bytes.get(), 3000);
    }

    #[test]
    fn release_frees_everything_and_a_plateau_grows_again() {
        let (g, store) = new_store(&MockArgs {
            plateau_bytes: Some(100_000),
            idle_release: Some(Duration::from_secs(5)),
            ..Default::default()
        });
        assert!(store.active());
        requests(&store, 3, false, false);
        assert_eq!(store.held_bytes(), 100_000);
        assert!(store.idle_for() < Duration::from_secs(5));
        assert_eq!(store.release(), 100_000);
        assert_eq!((g.bytes.get(), store.held_bytes()), (0, 0));
        assert!(store.blocks.lock().unwrap().is_empty());
        requests(&store, 1, false, false);
        assert_eq!(g.bytes.get(), 65_536, "grows again from nothing");
    }

    #[test]
    fn no_knobs_no_leaks() {
        let store = LeakStore::new(&MockArgs::default(), gauges());
        assert!(!store.active());
    }

    #[test]
    fn sawtooth_plan_splits_into_mebibyte_blocks() {
        let p = SawtoothPlan::new((5 << 20) + 1000, Duration::from_secs(6));
        assert_eq!(p.blocks, 6);
        assert_eq!(p.tick, Duration::from_secs(6) / 7);
        let sum: u64 = (0..p.blocks).map(|i| p.block_len(i)).sum();
        assert_eq!(sum, (5 << 20) + 1000);
        assert_eq!(p.block_len(5), 1000);
        let p = SawtoothPlan::new(1 << 20, Duration::from_secs(1));
        assert_eq!((p.blocks, p.block_len(0)), (1, 1 << 20));
    }

    #[test]
    fn mapped_block_is_writable_and_unmaps() {
        let b = MappedBlock::new(3 << 20, page_size()).expect("mmap");
        drop(b);
    }
}
