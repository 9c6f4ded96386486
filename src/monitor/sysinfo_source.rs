//! The process table of every platform but Linux: the sysinfo crate.
//!
//! Per sample of one process sysinfo refreshes that pid only (memory, CPU, and on Linux its
//! tasks): RSS is `memory()`, threads the main thread and its tasks (Linux only: sysinfo gives
//! no thread count elsewhere), open fds `open_files()` (Linux, macOS, FreeBSD; handles on
//! Windows), CPU `accumulated_cpu_time()`, and the start time (seconds since the epoch) is the
//! identity beside the pid. sysinfo has no PSS: a process tree sums RSS.
//! [`SysinfoTable::unavailable`] names what the platform lacks, for the one start-up message.
//!
//! On Linux soakd reads /proc instead; this backend is built there only for the test that
//! checks the two agree (the `sysinfo` feature, on in soakd's own tests).

use std::sync::Mutex;

use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System, UpdateKind};

use super::reading::{Identity, ProcEntry, ProcessTable, Reading, SampleError};

/// The sysinfo process table.
pub struct SysinfoTable {
    sys: Mutex<System>,
}

impl Default for SysinfoTable {
    fn default() -> Self {
        Self::new()
    }
}

impl SysinfoTable {
    /// An empty table; processes are refreshed as they are read.
    pub fn new() -> Self {
        SysinfoTable {
            sys: Mutex::new(System::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, System> {
        self.sys.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Whether sysinfo counts threads (tasks) on this platform.
const HAS_THREADS: bool = cfg!(any(target_os = "linux", target_os = "android"));
/// Whether sysinfo counts open files on this platform.
const HAS_FDS: bool = cfg!(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    windows
));

impl ProcessTable for SysinfoTable {
    fn name(&self) -> &'static str {
        "sysinfo"
    }

    fn unavailable(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if !HAS_THREADS {
            v.push("threads");
        }
        if !HAS_FDS {
            v.push("open fds");
        }
        v.push("PSS (a process tree sums RSS instead, counting shared pages once per process)");
        v
    }

    fn read(&self, pid: u32) -> Result<Reading, SampleError> {
        let mut sys = self.lock();
        let id = Pid::from_u32(pid);
        let kind = ProcessRefreshKind::nothing().with_memory().with_cpu();
        let kind = if HAS_THREADS {
            kind.with_tasks()
        } else {
            kind.without_tasks()
        };
        sys.refresh_processes_specifics(ProcessesToUpdate::Some(&[id]), true, kind);
        let p = sys.process(id).ok_or(SampleError::Gone(pid))?;
        if !p.exists() || matches!(p.status(), ProcessStatus::Zombie | ProcessStatus::Dead) {
            return Err(SampleError::Gone(pid));
        }
        let fds = p.open_files().map(|n| n as f64);
        let partial = (HAS_FDS && fds.is_none()).then(|| "open fds unreadable".to_string());
        Ok(Reading {
            identity: Identity {
                pid: Some(pid),
                start: Some(p.start_time() as f64),
            },
            rss: Some(p.memory() as f64),
            fds,
            // sysinfo's tasks are the threads besides the main one.
            threads: if HAS_THREADS {
                p.tasks().map(|t| (t.len() + 1) as f64)
            } else {
                None
            },
            cpu: Some(p.accumulated_cpu_time() as f64 / 1000.0),
            partial,
            tree: None,
        })
    }

    fn pss(&self, _pid: u32) -> Option<f64> {
        None
    }

    fn list(&self, with_cmdline: bool) -> Vec<ProcEntry> {
        let mut sys = self.lock();
        let cmd = if with_cmdline {
            UpdateKind::Always
        } else {
            UpdateKind::Never
        };
        sys.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().without_tasks().with_cmd(cmd),
        );
        sys.processes()
            .values()
            .filter(|p| p.thread_kind().is_none())
            .map(|p| ProcEntry {
                pid: p.pid().as_u32(),
                ppid: p.parent().map_or(0, Pid::as_u32),
                start: p.start_time() as f64,
                name: p.name().to_string_lossy().into_owned(),
                cmdline: with_cmdline.then(|| {
                    p.cmd()
                        .iter()
                        .map(|a| a.to_string_lossy())
                        .collect::<Vec<_>>()
                        .join(" ")
                }),
            })
            .collect()
    }
}
