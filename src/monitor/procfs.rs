//! The Linux process table: `/proc`, read directly.
//!
//! Per sample of one process: `stat` (CPU ticks, start time, state, parent, threads),
//! `status` (`VmRSS`, `Threads`) and a count of `fd/` entries; for a member of a process tree
//! also `smaps_rollup` (`Pss`, the process's share of its resident pages: summing RSS over a
//! tree would count shared pages once per process). Listing the table (name/cmdline matching,
//! a tree's descendants) reads every `stat`, and `cmdline` only when a pattern asks for it.

use std::io;
use std::path::{Path, PathBuf};

use super::reading::{Identity, ProcEntry, ProcessTable, Reading, SampleError};

/// Kernel clock ticks per second of the `/proc/<pid>/stat` CPU fields (`USER_HZ`), from
/// `sysconf(_SC_CLK_TCK)`; 100 if the call fails.
fn clk_tck() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if v > 0 {
            v as f64
        } else {
            100.0
        }
    })
}

fn proc_path(pid: u32, file: &str) -> PathBuf {
    Path::new("/proc").join(pid.to_string()).join(file)
}

fn io_err(pid: u32, e: io::Error) -> SampleError {
    if e.kind() == io::ErrorKind::NotFound {
        SampleError::Gone(pid)
    } else {
        SampleError::Proc { pid, source: e }
    }
}

/// Fields of `/proc/<pid>/stat` soakd uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Stat {
    /// The command name (field 2, without its parentheses).
    pub comm: String,
    /// Process state letter.
    pub state: char,
    /// Parent pid (field 4).
    pub ppid: u32,
    /// utime + stime, seconds.
    pub cpu_seconds: f64,
    /// Start time, clock ticks since boot (field 22).
    pub start_ticks: u64,
    /// Threads (field 20).
    pub threads: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) may contain spaces and parentheses,
/// so fields are counted from the LAST `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let close = text.rfind(')')?;
    let comm = text[text.find('(')? + 1..close].to_string();
    let rest = &text[close + 1..];
    let f: Vec<&str> = rest.split_whitespace().take(20).collect();
    // f[0] is field 3 (state); field N is f[N - 3].
    let get = |n: usize| f.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        comm,
        state: f.first()?.chars().next()?,
        ppid: u32::try_from(get(4)?).ok()?,
        cpu_seconds: (get(14)? + get(15)?) as f64 / clk_tck(),
        start_ticks: get(22)?,
        threads: get(20)?,
    })
}

/// `VmRSS` (bytes) and `Threads` from `/proc/<pid>/status`.
pub fn parse_status(text: &str) -> (Option<f64>, Option<f64>) {
    let (mut rss, mut threads) = (None, None);
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("VmRSS:") {
            rss = kib(v);
        } else if let Some(v) = line.strip_prefix("Threads:") {
            threads = v.trim().parse::<f64>().ok();
        }
    }
    (rss, threads)
}

/// `Pss` (bytes) from `/proc/<pid>/smaps_rollup`.
pub fn parse_pss(text: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(kib)
}

/// "   2048 kB" in bytes.
fn kib(v: &str) -> Option<f64> {
    v.split_whitespace()
        .next()
        .and_then(|k| k.parse::<f64>().ok())
        .map(|kb| kb * 1024.0)
}

fn read_stat(pid: u32) -> Result<Stat, SampleError> {
    let text = std::fs::read_to_string(proc_path(pid, "stat")).map_err(|e| io_err(pid, e))?;
    let stat = parse_stat(&text).ok_or_else(|| SampleError::Proc {
        pid,
        source: io::Error::new(io::ErrorKind::InvalidData, "unparsable stat"),
    })?;
    if matches!(stat.state, 'Z' | 'X') {
        return Err(SampleError::Gone(pid));
    }
    Ok(stat)
}

fn count_fds(pid: u32) -> io::Result<usize> {
    Ok(std::fs::read_dir(proc_path(pid, "fd"))?.count())
}

/// Reads one process from /proc.
pub fn read(pid: u32) -> Result<Reading, SampleError> {
    let stat = read_stat(pid)?;
    let status = std::fs::read_to_string(proc_path(pid, "status")).map_err(|e| io_err(pid, e))?;
    let (rss, threads) = parse_status(&status);
    let mut partial = None;
    let fds = match count_fds(pid) {
        Ok(n) => Some(n as f64),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(SampleError::Gone(pid)),
        Err(e) => {
            partial = Some(format!("open fds unreadable: {e}"));
            None
        }
    };
    if rss.is_none() {
        // Kernel threads and exiting processes have no VmRSS.
        partial = Some("no VmRSS in status".into());
    }
    Ok(Reading {
        identity: Identity {
            pid: Some(pid),
            start: Some(stat.start_ticks as f64),
        },
        rss,
        fds,
        threads: threads.or(Some(stat.threads as f64)),
        cpu: Some(stat.cpu_seconds),
        partial,
        tree: None,
    })
}

/// Every process in /proc: pid, parent, start, comm, and the command line when asked.
pub fn list(with_cmdline: bool) -> Vec<ProcEntry> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = read_stat(pid).ok()?;
            let cmdline = if with_cmdline {
                let raw = std::fs::read(proc_path(pid, "cmdline")).ok()?;
                Some(
                    String::from_utf8_lossy(&raw)
                        .split('\0')
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join(" "),
                )
            } else {
                None
            };
            Some(ProcEntry {
                pid,
                ppid: stat.ppid,
                start: stat.start_ticks as f64,
                name: stat.comm,
                cmdline,
            })
        })
        .collect()
}

/// The `/proc` reader as a [`ProcessTable`].
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcFs;

impl ProcessTable for ProcFs {
    fn name(&self) -> &'static str {
        "/proc"
    }

    fn unavailable(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn read(&self, pid: u32) -> Result<Reading, SampleError> {
        read(pid)
    }

    fn pss(&self, pid: u32) -> Option<f64> {
        std::fs::read_to_string(proc_path(pid, "smaps_rollup"))
            .ok()
            .as_deref()
            .and_then(parse_pss)
    }

    fn list(&self, with_cmdline: bool) -> Vec<ProcEntry> {
        list(with_cmdline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_comm() {
        // comm "a) b (c" holds spaces and parentheses.
        let text = "1234 (a) b (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 \
                    987654 123456789 3000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0";
        let s = parse_stat(text).unwrap();
        assert_eq!(s.comm, "a) b (c");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.threads, 7);
        assert_eq!(s.start_ticks, 987_654);
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn status_and_rollup_fields() {
        let text = "Name:\tx\nVmPeak:\t  9999 kB\nVmRSS:\t    2048 kB\nThreads:\t12\n";
        assert_eq!(parse_status(text), (Some(2048.0 * 1024.0), Some(12.0)));
        assert_eq!(parse_status("Name:\tkthread\n"), (None, None));
        let rollup = "55d0-7ffe ---p 00000000 00:00 0  [rollup]\nRss:  4096 kB\nPss:  1536 kB\n\
                      Pss_Anon: 1024 kB\n";
        assert_eq!(parse_pss(rollup), Some(1536.0 * 1024.0));
        assert_eq!(parse_pss("Rss: 1 kB\n"), None);
    }

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        let r = read(me).unwrap();
        assert_eq!(r.identity.pid, Some(me));
        assert!(r.rss.unwrap() > 1024.0 * 1024.0);
        assert!(r.fds.unwrap() >= 3.0);
        assert!(r.threads.unwrap() >= 1.0);
        assert!(r.partial.is_none());
        // Same start time on a second read: no false restart.
        assert_eq!(read(me).unwrap().identity, r.identity);
        let pss = ProcFs.pss(me).expect("smaps_rollup of our own process");
        assert!(pss > 0.0 && pss <= r.rss.unwrap() * 1.5, "{pss}");
        let me_listed = list(true).into_iter().find(|e| e.pid == me).unwrap();
        // SAFETY: getppid has no preconditions.
        assert_eq!(me_listed.ppid, unsafe { libc::getppid() } as u32);
        assert!(me_listed.cmdline.is_some_and(|c| !c.is_empty()));
    }

    #[test]
    fn missing_pid_is_gone() {
        // pid_max is at most 2^22, so this pid cannot exist.
        assert!(matches!(read(4_194_304 + 7), Err(SampleError::Gone(_))));
    }
}
