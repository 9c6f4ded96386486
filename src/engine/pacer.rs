//! The open model's pacer: one OS thread (`soakd-pacer`) that walks the plan's arrivals.
//!
//! It sleeps until each intended send instant (an OS-thread sleep wakes within tens of
//! microseconds, where a tokio timer rounds up to the next millisecond), at least the plan's
//! `batch_window` (`[load] batch_window`, default 500 µs) at a time, so that at high rates one
//! wake-up hands a batch of due requests to the runtime. The window trades CPU for send
//! precision: at 10k rps on 2 cores, 200 µs cost 1.1–1.2× oha's CPU per request with a
//! schedule-lag p50 of 0.16 ms, 500 µs 0.92–0.97× at 0.35 ms, 1 ms 0.78–0.83× at 0.6 ms
//! (BENCHMARKS.md, issue 11); below 1/window requests per second it changes nothing.
//! A due arrival takes a permit of the in-flight cap without waiting — no permit means the
//! request is counted in `soakd_requests_dropped_total{reason="in_flight_cap"}` and forgotten,
//! never queued — and the batch is spawned on the load runtime in one hand-over, each request
//! with its intended send time. At a stop (`wake`), the arrivals already due are counted as
//! dropped, `shutdown`.
//!
//! Why a thread and not a task on the load runtime (issue 11 measured both): a pacer task
//! sleeping on a `timerfd` saved 10–25 % of the CPU per request at 10k rps, but waited behind
//! the runtime's queued request tasks whenever the machine was busy, and the schedule-lag p99
//! went from 1–4 ms to 31–428 ms (BENCHMARKS.md, "Issue 11: hot path").

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::request::{self, Due, Request};
use super::{DropReason, Shared};
use crate::plan::{Arrivals, OpenPlan, Phase};
use crate::stats::Series;
use crate::workload::{cancel_for, MixCursor};

pub(super) struct Pacer {
    pub shared: Arc<Shared>,
    pub plan: OpenPlan,
    pub start: Instant,
    pub duration: Option<Duration>,
    pub permits: Arc<Semaphore>,
    pub tracker: TaskTracker,
    pub abort: CancellationToken,
    pub seed: u64,
    pub handle: tokio::runtime::Handle,
}

impl Pacer {
    /// Walks the arrivals until the duration ends or `wake` says stop.
    pub fn run(self, wake: std::sync::mpsc::Receiver<()>) {
        use std::sync::mpsc::RecvTimeoutError;
        let mut arrivals = Arrivals::new(self.plan.clone(), self.seed);
        let mut rng = SmallRng::seed_from_u64(self.seed.rotate_left(17) ^ 0x5eed);
        let mut mix = self.shared.mix.cursor();
        let start = self.start.into_std();
        let mut batch = Vec::with_capacity(64);
        loop {
            let Some((offset, at)) = arrivals.next_offset() else {
                self.flush(&mut batch);
                // The plan sends nothing more; wait for the end or a stop.
                match self.duration {
                    Some(d) => {
                        let _ = wake.recv_timeout(d.saturating_sub(start.elapsed()));
                    }
                    None => {
                        let _ = wake.recv();
                    }
                }
                return;
            };
            if self.duration.is_some_and(|d| offset >= d) {
                self.flush(&mut batch);
                return;
            }
            let intended = start + offset;
            let now = std::time::Instant::now();
            if intended > now {
                // Hand over what is due, then sleep until the next arrival — but at least
                // the batch window, so that at high rates one wake-up (and one hand-over to
                // the runtime) serves several arrivals instead of one each.
                self.flush(&mut batch);
                match wake.recv_timeout((intended - now).max(self.plan.batch_window)) {
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => {
                        self.drop_backlog(&mut arrivals, &mut rng, &mut mix, offset);
                        return;
                    }
                }
            } else if wake.try_recv().is_ok() {
                self.flush(&mut batch);
                self.drop_backlog(&mut arrivals, &mut rng, &mut mix, offset);
                return;
            }
            let i = mix.pick(&mut rng, offset);
            self.prepare(
                &mut rng,
                i,
                Instant::from_std(intended),
                at.phase,
                &mut batch,
            );
        }
    }

    /// Counts arrivals that were due at the stop but never sent (`reason="shutdown"`).
    fn drop_backlog(
        &self,
        arrivals: &mut Arrivals,
        rng: &mut SmallRng,
        mix: &mut MixCursor<'_>,
        first: Duration,
    ) {
        let now = self.start.elapsed();
        let mut offset = first;
        while offset <= now {
            let i = mix.pick(rng, offset);
            self.shared.scenarios[i]
                .dropped
                .get(DropReason::Shutdown)
                .inc();
            match arrivals.next_offset() {
                Some((o, _)) => offset = o,
                None => break,
            }
        }
    }

    /// Takes a permit and builds a request of scenario `i`; one over the cap is dropped here.
    fn prepare(
        &self,
        rng: &mut SmallRng,
        i: usize,
        intended: Instant,
        phase: Phase,
        batch: &mut Vec<Due>,
    ) {
        let shared = &self.shared;
        let sc = &shared.scenarios[i];
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            sc.dropped.get(DropReason::InFlightCap).inc();
            return;
        };
        let lag = Instant::now().saturating_duration_since(intended);
        shared
            .metrics
            .schedule_lag_seconds
            .observe(lag.as_secs_f64());
        shared.stats.record(Series::ScheduleLag, lag);
        shared.metrics.in_flight_requests.inc();
        shared.signals.requests_sent.fetch_add(1, Ordering::Relaxed);
        let (body, tag) = shared.body(i, rng);
        batch.push(Due {
            permit,
            request: Request {
                scenario: i,
                body,
                tag,
                cancel: cancel_for(sc.scenario.cancel.as_ref(), rng),
                intended,
                phase,
            },
        });
    }

    /// Spawns the due requests on the load runtime: one hand-over for the whole batch, whose
    /// task then spawns each request from inside the runtime.
    fn flush(&self, batch: &mut Vec<Due>) {
        match batch.len() {
            0 => {}
            1 => {
                let due = batch.pop().expect("one request");
                self.tracker.spawn_on(
                    request::open_request(self.shared.clone(), due, self.abort.clone()),
                    &self.handle,
                );
            }
            _ => {
                let dues = std::mem::replace(batch, Vec::with_capacity(64));
                let (shared, abort, tracker) = (
                    self.shared.clone(),
                    self.abort.clone(),
                    self.tracker.clone(),
                );
                self.tracker.spawn_on(
                    async move {
                        for due in dues {
                            tracker.spawn(request::open_request(
                                shared.clone(),
                                due,
                                abort.clone(),
                            ));
                        }
                    },
                    &self.handle,
                );
            }
        }
    }
}
