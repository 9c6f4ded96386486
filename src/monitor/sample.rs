//! One sample of every watched process: the run's state and the load signals read once, then
//! each process read from its source — a local pid, pid file or match through the platform's
//! process table ([`super::local`]), alone or with its descendants, or a scraped endpoint —
//! and applied.

use std::sync::Mutex;

use futures_util::future::join_all;

use super::local;
use super::source::{self, SampleError};
use super::{attribution, lock, Monitor, ProcState, Source, Tick};
use crate::phases::{RunPhases, RunState};

impl Monitor {
    /// Takes one sample of every process now (what [`Monitor::run`] does each tick).
    pub async fn sample_once(&self) {
        let mut counts = Vec::new();
        let phases = self.phases.as_deref();
        let state = phases.and_then(RunPhases::current);
        let since = |s: RunState| {
            phases
                .and_then(|p| p.entered_at(s))
                .map(|at| at.saturating_duration_since(self.start).as_secs_f64())
        };
        let tick = Tick {
            state,
            since: state.and_then(since),
            load_start: since(RunState::Load),
            t: self.start.elapsed().as_secs_f64(),
            requests: self.signals.requests_finished(),
            streams: self.signals.streams_open() as f64,
            burst: self.signals.burst_active(),
            mix: attribution::MixTick::read(&self.signals, &mut counts),
        };
        join_all(self.procs.iter().map(|p| self.sample_process(p, tick))).await;
    }

    pub(super) async fn sample_process(&self, cell: &Mutex<ProcState>, tick: Tick<'_>) {
        let (source, resolved, tree) = {
            let st = lock(cell);
            (st.source.clone(), st.resolved, st.include_children)
        };
        let table = &*self.table;
        let read = |pid: u32| {
            if tree {
                local::read_tree(table, pid)
            } else {
                table.read(pid)
            }
        };
        // Why a match was picked among several, logged when it picks a new process.
        let mut why = None;
        let result = match &source {
            Source::Pid(pid) => read(*pid),
            Source::PidFile(path) => source::read_pid_file(path).and_then(read),
            Source::Match { name, cmdline } => {
                let (n, c) = (name.as_deref(), cmdline.as_deref());
                match resolved.map(read) {
                    Some(Ok(r)) => Ok(r),
                    _ => match local::find_match(table, n, c, self.self_pid, tree) {
                        Some(m) => {
                            why = m.why;
                            read(m.pid)
                        }
                        None => Err(SampleError::NoMatch(source::describe_match(n, c))),
                    },
                }
            }
            Source::Scrape { url, names } => match &self.client {
                Some(client) => source::read_scrape(client, url, names).await,
                None => Err(SampleError::Scrape("no HTTP client".into())),
            },
        };
        let mut st = lock(cell);
        match result {
            Ok(reading) => {
                if let Some(why) = why.filter(|_| st.resolved != reading.identity.pid) {
                    tracing::info!(process = %st.name, pid = ?reading.identity.pid, "{why}");
                }
                self.apply(&mut st, reading, tick)
            }
            Err(e) => self.apply_error(&mut st, e),
        }
    }
}
