//! Local processes behind one trait: the platform's process table ([`ProcessTable`]) — /proc
//! on Linux ([`super::procfs`]), the sysinfo crate elsewhere ([`super::sysinfo_source`]) —
//! and what soakd builds on it: name/command-line matching and process trees.
//!
//! # Platforms
//! [`default_table`] is the /proc reader on Linux and sysinfo on every other target. What a
//! table cannot give on its platform ([`ProcessTable::unavailable`]: threads off Linux, open
//! fds where sysinfo has no count, PSS off Linux) is said once at start-up, naming it; those
//! resources then have no samples and no verdict, and no per-sample warning. A platform where
//! local sampling cannot work at all ([`supported`] false) makes a configured local process a
//! config error (exit 78), and soakd does not watch itself there.
//!
//! # Matching
//! [`find_match`] lists the table (with command lines only when a `match_cmdline` asks for
//! them) and keeps the processes whose name equals `match_name` and whose command line
//! contains `match_cmdline`, soakd itself excluded. Then:
//! - one match: that process;
//! - several, some an ancestor of others (a wrapper such as `timeout`, `sh -c`, a supervisor or
//!   a worker pool's master around the process that does the work): without
//!   `include_children`, the innermost — a match with no matching descendant — and among
//!   several such (a pool's workers) the one with the most resident memory; with
//!   `include_children`, the outermost, whose tree holds all of them;
//! - several unrelated: the oldest (earliest start), as before.
//!
//! The pick comes with a sentence saying which process was chosen and why, which the monitor
//! logs once per resolution.
//!
//! # Trees
//! [`read_tree`] reads a process and every descendant, found again at every sample from the
//! table's parent links (at most [`MAX_TREE`] processes): memory is the sum of their PSS
//! (RSS counts a page shared by two processes twice; PSS splits it), fds and threads are
//! summed, and so is CPU. Where the platform has no PSS, RSS is summed instead (said once at
//! start-up). A descendant that exits between the listing and its read is skipped; the
//! root's identity (pid and start time) is the tree's, so only a restart of the root starts
//! the fit over.

use std::collections::HashMap;
use std::sync::Arc;

use super::reading::{ChildMemory, Reading, SampleError, TreeReading};
pub use super::reading::{ProcEntry, ProcessTable};

/// Most processes read as one tree.
pub const MAX_TREE: usize = 4096;
/// Descendants a tree reading lists by memory.
pub const LARGEST_CHILDREN: usize = 5;

/// Whether local process sampling works on this platform at all.
pub fn supported() -> bool {
    #[cfg(target_os = "linux")]
    {
        true
    }
    #[cfg(not(target_os = "linux"))]
    {
        sysinfo::IS_SUPPORTED_SYSTEM
    }
}

/// This platform's table: /proc on Linux, sysinfo elsewhere.
pub fn default_table() -> Arc<dyn ProcessTable> {
    #[cfg(target_os = "linux")]
    {
        Arc::new(super::procfs::ProcFs)
    }
    #[cfg(not(target_os = "linux"))]
    {
        Arc::new(super::sysinfo_source::SysinfoTable::new())
    }
}

/// A match and why it was picked among several.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The process to watch (the tree's root with `include_children`).
    pub pid: u32,
    /// Why, when several processes matched.
    pub why: Option<String>,
}

/// Whether `a` is an ancestor of `b` in the parent links `parent`.
fn is_ancestor(parent: &HashMap<u32, u32>, a: u32, b: u32) -> bool {
    let mut cur = b;
    for _ in 0..256 {
        match parent.get(&cur) {
            Some(&p) if p == a => return true,
            Some(&p) if p != 0 && p != cur => cur = p,
            _ => return false,
        }
    }
    false
}

/// The earliest started of `v` (the lowest pid among equals).
fn oldest<'a>(v: &[&'a ProcEntry]) -> Option<&'a ProcEntry> {
    v.iter()
        .copied()
        .min_by(|a, b| a.start.total_cmp(&b.start).then(a.pid.cmp(&b.pid)))
}

/// Resolves a `match_name`/`match_cmdline` pattern (module docs); `None` when nothing matches.
pub fn find_match(
    table: &dyn ProcessTable,
    name: Option<&str>,
    cmdline: Option<&str>,
    exclude: u32,
    tree: bool,
) -> Option<Resolved> {
    let all = table.list(cmdline.is_some());
    let matches: Vec<&ProcEntry> = all
        .iter()
        .filter(|e| e.pid != exclude)
        .filter(|e| name.is_none_or(|n| e.name == n))
        .filter(|e| cmdline.is_none_or(|c| e.cmdline.as_deref().is_some_and(|l| l.contains(c))))
        .collect();
    let label = |e: &ProcEntry| format!("{} ({})", e.pid, e.name);
    match matches.len() {
        0 => return None,
        1 => {
            return Some(Resolved {
                pid: matches[0].pid,
                why: None,
            })
        }
        _ => {}
    }
    let parent: HashMap<u32, u32> = all.iter().map(|e| (e.pid, e.ppid)).collect();
    let wraps = |a: &ProcEntry| matches.iter().any(|b| is_ancestor(&parent, a.pid, b.pid));
    let wrapped = |b: &ProcEntry| matches.iter().any(|a| is_ancestor(&parent, a.pid, b.pid));
    let what = super::reading::describe_match(name, cmdline);
    if !matches.iter().any(|a| wraps(a)) {
        let pick = oldest(&matches)?;
        return Some(Resolved {
            pid: pick.pid,
            why: Some(format!(
                "{} unrelated processes match {what}; watching the oldest, {}",
                matches.len(),
                label(pick)
            )),
        });
    }
    // Each match beside its nearest matching ancestor.
    let matched: std::collections::HashSet<u32> = matches.iter().map(|e| e.pid).collect();
    let by_pid: HashMap<u32, &ProcEntry> = all.iter().map(|e| (e.pid, e)).collect();
    let nearest = |b: &ProcEntry| {
        let mut cur = b.pid;
        for _ in 0..256 {
            match parent.get(&cur) {
                Some(&p) if matched.contains(&p) => return by_pid.get(&p).copied(),
                Some(&p) if p != 0 && p != cur => cur = p,
                _ => return None,
            }
        }
        None
    };
    let pairs: Vec<String> = matches
        .iter()
        .filter_map(|b| nearest(b).map(|a| format!("{} wraps {}", label(a), label(b))))
        .take(4)
        .collect();
    let pairs = pairs.join(", ");
    if tree {
        let roots: Vec<&ProcEntry> = matches.iter().copied().filter(|e| !wrapped(e)).collect();
        let pick = oldest(&roots)?;
        return Some(Resolved {
            pid: pick.pid,
            why: Some(format!(
                "{} processes match {what} ({pairs}); watching the tree of {}, the outermost, \
                 with every descendant (include_children)",
                matches.len(),
                label(pick)
            )),
        });
    }
    let leaves: Vec<&ProcEntry> = matches.iter().copied().filter(|e| !wraps(e)).collect();
    let (pick, how) = if leaves.len() == 1 {
        (
            leaves[0],
            "the innermost: the wrapper only waits for it".to_string(),
        )
    } else {
        let rss = |e: &ProcEntry| table.read(e.pid).ok().and_then(|r| r.rss).unwrap_or(0.0);
        let pick = leaves
            .iter()
            .copied()
            .max_by(|a, b| rss(a).total_cmp(&rss(b)))?;
        (
            pick,
            format!(
                "the innermost match holding the most memory of {}; set include_children = \
                 true to watch them all",
                leaves.len()
            ),
        )
    };
    Some(Resolved {
        pid: pick.pid,
        why: Some(format!(
            "{} processes match {what} ({pairs}); watching {}, {how}",
            matches.len(),
            label(pick)
        )),
    })
}

/// Reads `root` and its descendants as one process (module docs).
pub fn read_tree(table: &dyn ProcessTable, root: u32) -> Result<Reading, SampleError> {
    let mut reading = table.read(root)?;
    let all = table.list(false);
    let mut children: HashMap<u32, Vec<&ProcEntry>> = HashMap::new();
    for e in &all {
        children.entry(e.ppid).or_default().push(e);
    }
    let mut members: Vec<(u32, &str)> = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        for c in children.get(&pid).into_iter().flatten() {
            if c.pid != root && members.len() + 1 < MAX_TREE {
                members.push((c.pid, c.name.as_str()));
                queue.push(c.pid);
            }
        }
    }
    let own = table.pss(root).or(reading.rss);
    let mut memory = own;
    let mut no_pss = usize::from(table.pss(root).is_none());
    let mut largest: Vec<ChildMemory> = Vec::new();
    let mut read_members = 1;
    for (pid, name) in members {
        let Ok(r) = table.read(pid) else {
            continue; // exited since the listing
        };
        read_members += 1;
        let pss = table.pss(pid);
        no_pss += usize::from(pss.is_none());
        let m = pss.or(r.rss);
        let add = |acc: Option<f64>, v: Option<f64>| match (acc, v) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        memory = add(memory, m);
        reading.fds = add(reading.fds, r.fds);
        reading.threads = add(reading.threads, r.threads);
        reading.cpu = add(reading.cpu, r.cpu);
        if let Some(m) = m {
            largest.push(ChildMemory {
                pid,
                name: name.to_string(),
                memory_bytes: m,
            });
        }
    }
    largest.sort_by(|a, b| b.memory_bytes.total_cmp(&a.memory_bytes));
    largest.truncate(LARGEST_CHILDREN);
    reading.rss = memory;
    if no_pss > 0 && !table.unavailable().iter().any(|u| u.starts_with("PSS")) {
        reading.partial = Some(format!(
            "PSS unreadable for {no_pss} of {read_members} processes of the tree; their RSS is \
             counted instead"
        ));
    }
    reading.tree = Some(TreeReading {
        members: read_members,
        largest,
    });
    Ok(reading)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::source::Identity;

    /// One process of a fixed table: pid, ppid, name, cmdline, rss, pss.
    type Row = (u32, u32, &'static str, &'static str, f64, Option<f64>);

    /// A fixed table.
    struct Fake(Vec<Row>);

    impl ProcessTable for Fake {
        fn name(&self) -> &'static str {
            "fake"
        }
        fn unavailable(&self) -> Vec<&'static str> {
            Vec::new()
        }
        fn read(&self, pid: u32) -> Result<Reading, SampleError> {
            let p = self
                .0
                .iter()
                .find(|p| p.0 == pid)
                .ok_or(SampleError::Gone(pid))?;
            Ok(Reading {
                identity: Identity {
                    pid: Some(pid),
                    start: Some(f64::from(pid)),
                },
                rss: Some(p.4),
                fds: Some(10.0),
                threads: Some(2.0),
                cpu: Some(1.0),
                partial: None,
                tree: None,
            })
        }
        fn pss(&self, pid: u32) -> Option<f64> {
            self.0.iter().find(|p| p.0 == pid).and_then(|p| p.5)
        }
        fn list(&self, with_cmdline: bool) -> Vec<ProcEntry> {
            self.0
                .iter()
                .map(|p| ProcEntry {
                    pid: p.0,
                    ppid: p.1,
                    start: f64::from(p.0),
                    name: p.2.into(),
                    cmdline: with_cmdline.then(|| p.3.into()),
                })
                .collect()
        }
    }

    const MIB: f64 = 1024.0 * 1024.0;

    /// init(1) ─ timeout(10) ─ sh(11) ─ gateway(12) ─ worker(13), worker(14); soakd(20);
    /// an unrelated gateway(30).
    fn table() -> Fake {
        Fake(vec![
            (1, 0, "init", "init", MIB, Some(MIB)),
            (
                10,
                1,
                "timeout",
                "timeout 60 gateway --port 4000",
                MIB,
                Some(0.5 * MIB),
            ),
            (
                11,
                10,
                "sh",
                "sh -c gateway --port 4000",
                MIB,
                Some(0.5 * MIB),
            ),
            (
                12,
                11,
                "gateway",
                "gateway --port 4000",
                80.0 * MIB,
                Some(60.0 * MIB),
            ),
            (
                13,
                12,
                "gateway",
                "gateway --port 4000 --worker",
                90.0 * MIB,
                Some(50.0 * MIB),
            ),
            (
                14,
                12,
                "gateway",
                "gateway --port 4000 --worker",
                120.0 * MIB,
                None,
            ),
            (
                20,
                1,
                "soakd",
                "soakd run gateway --port 4000",
                30.0 * MIB,
                Some(30.0 * MIB),
            ),
            (
                30,
                1,
                "gateway",
                "gateway --port 5000",
                10.0 * MIB,
                Some(10.0 * MIB),
            ),
        ])
    }

    #[test]
    fn a_wrapper_is_skipped_for_the_process_that_does_the_work() {
        let t = table();
        let r = find_match(&t, None, Some("timeout 60"), 20, false).unwrap();
        assert_eq!((r.pid, r.why), (10, None), "one match is just that");
        // timeout, sh and the gateway's master and workers match; the workers do the work,
        // and worker 14 holds the most memory.
        let r = find_match(&t, None, Some("--port 4000"), 20, false).unwrap();
        assert_eq!(r.pid, 14);
        let why = r.why.unwrap();
        assert!(
            why.starts_with(
                "5 processes match cmdline containing \"--port 4000\" (10 (timeout) wraps 11 (sh)"
            ),
            "{why}"
        );
        assert!(
            why.contains("watching 14 (gateway), the innermost match holding the most memory of 2"),
            "{why}"
        );
        // Through a wrapper chain with one inner match: the innermost.
        let r = find_match(&t, Some("sh"), None, 20, false).unwrap();
        assert_eq!(r.pid, 11);
        let t2 = Fake(
            t.0.iter()
                .copied()
                .filter(|p| p.0 != 14 && p.0 != 13)
                .collect(),
        );
        let r = find_match(&t2, None, Some("--port 4000"), 20, false).unwrap();
        assert_eq!(r.pid, 12);
        assert!(r
            .why
            .unwrap()
            .contains("watching 12 (gateway), the innermost: the wrapper only waits"));
        // With include_children: the outermost, whose tree holds them all.
        let r = find_match(&t, None, Some("--port 4000"), 20, true).unwrap();
        assert_eq!(r.pid, 10);
        assert!(r
            .why
            .unwrap()
            .contains("watching the tree of 10 (timeout), the outermost"));
        // Unrelated matches: the oldest, as before.
        let r = find_match(&t, Some("gateway"), Some("gateway --port"), 20, false).unwrap();
        assert_eq!(
            r.pid, 14,
            "12, 13, 14 are related; 30 is not a wrapper of any"
        );
        let r = find_match(&t, None, Some("--port 5000"), 20, false).unwrap();
        assert_eq!(r.pid, 30);
        let u = Fake(vec![
            (40, 1, "w", "w", MIB, None),
            (41, 1, "w", "w", MIB, None),
        ]);
        let r = find_match(&u, Some("w"), None, 0, false).unwrap();
        assert_eq!(r.pid, 40);
        assert!(r
            .why
            .unwrap()
            .contains("2 unrelated processes match name \"w\"; watching the oldest, 40 (w)"));
        assert!(find_match(&t, Some("nginx"), None, 20, false).is_none());
    }

    #[test]
    fn a_tree_sums_pss_fds_threads_and_lists_its_largest_children() {
        let t = table();
        let r = read_tree(&t, 10).unwrap();
        // 10, 11, 12, 13 by PSS; 14 has no PSS: its RSS.
        let want = (0.5 + 0.5 + 60.0 + 50.0 + 120.0) * MIB;
        assert_eq!(r.rss, Some(want));
        assert_eq!(
            (r.fds, r.threads, r.cpu),
            (Some(50.0), Some(10.0), Some(5.0))
        );
        let tree = r.tree.unwrap();
        assert_eq!(tree.members, 5);
        let largest: Vec<u32> = tree.largest.iter().map(|c| c.pid).collect();
        assert_eq!(
            largest,
            [14, 12, 13, 11, 10]
                .iter()
                .copied()
                .filter(|p| *p != 10)
                .collect::<Vec<_>>()
        );
        assert_eq!(tree.largest[0].memory_bytes, 120.0 * MIB);
        assert!(r.partial.unwrap().contains("PSS unreadable for 1 of 5"));
        assert_eq!(r.identity.pid, Some(10), "the root's identity");
        // A leaf is a tree of one.
        let leaf = read_tree(&t, 30).unwrap();
        assert_eq!(leaf.rss, Some(10.0 * MIB));
        assert_eq!(leaf.tree.unwrap().members, 1);
        assert!(matches!(read_tree(&t, 99), Err(SampleError::Gone(99))));
    }
}
