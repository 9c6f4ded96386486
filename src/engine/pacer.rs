//! The open model's pacers: [`count`] tasks on the load runtime, each with its share of the
//! plan.
//!
//! A pacer walks its arrivals ([`Arrivals::shard`]) and sleeps on its own [`Timer`]
//! until each intended send instant — at least [`MIN_WAKE`] at a time, so that at high rates
//! one wake-up sends every arrival due by then. A due arrival takes an in-flight permit without
//! waiting (none: counted as dropped, `in_flight_cap`) and is spawned from the pacer's task
//! (onto its worker's own queue) with its intended send time. While behind schedule it yields
//! to the other tasks every [`YIELD_EVERY`] sends. At a stop, the arrivals already due are counted as dropped,
//! `shutdown`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::request::{self, Due};
use super::timer::Timer;
use super::{Ctx, DropReason};
use crate::plan::{Arrivals, OpenPlan, Phase};
use crate::stats::Series;
use crate::workload::{cancel_for, MixCursor};

/// Requests per second of the plan's peak rate that one pacer is given.
pub const RATE_PER_PACER: f64 = 20_000.0;

/// Most pacers, whatever the core count.
const MAX_PACERS: u32 = 16;

/// Pacers for `plan`: one per [`RATE_PER_PACER`] of its peak rate, at most one per core.
pub fn count(plan: &OpenPlan) -> u32 {
    let cores = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_PACERS as usize) as u32;
    ((plan.peak_rate() / RATE_PER_PACER).ceil() as u32).clamp(1, cores)
}

/// Shortest pacer sleep: arrivals closer than this to the previous wake-up wait for the next
/// one, which bounds wake-ups at 5,000 a second per pacer and adds at most 200 µs of
/// schedule lag.
pub const MIN_WAKE: Duration = Duration::from_micros(200);

/// Sends in a row, without a sleep, after which a late pacer lets its requests run.
pub const YIELD_EVERY: u32 = 64;

/// Walks pacer `k`'s arrivals (of `n`) until the duration ends or `stop` is cancelled.
pub(super) async fn run(ctx: &Ctx, k: u32, n: u32, plan: OpenPlan, stop: &CancellationToken) {
    // Pacer 0 keeps the run's seed, so one pacer draws what the single pacer always drew.
    let seed = ctx.seed ^ u64::from(k).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut arrivals = Arrivals::shard(plan, seed, k, n);
    let mut rng = SmallRng::seed_from_u64(seed.rotate_left(17) ^ 0x5eed);
    let mut mix = ctx.shared.mix.cursor();
    let timer = Timer::new();
    let start = ctx.start.into_std();
    let mut in_a_row = 0u32;
    loop {
        let Some((offset, at)) = arrivals.next_offset() else {
            // The plan sends nothing more; wait for the end or a stop.
            match ctx.duration {
                Some(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(ctx.start + d) => {}
                        _ = stop.cancelled() => {}
                    }
                }
                None => stop.cancelled().await,
            }
            return;
        };
        if ctx.duration.is_some_and(|d| offset >= d) {
            return;
        }
        let intended = start + offset;
        let now = std::time::Instant::now();
        if intended > now {
            in_a_row = 0;
            tokio::select! {
                biased;
                _ = stop.cancelled() => {
                    drop_backlog(ctx, &mut arrivals, &mut rng, &mut mix, offset);
                    return;
                }
                _ = timer.sleep((intended - now).max(MIN_WAKE)) => {}
            }
        } else if stop.is_cancelled() {
            drop_backlog(ctx, &mut arrivals, &mut rng, &mut mix, offset);
            return;
        } else {
            in_a_row += 1;
            if in_a_row >= YIELD_EVERY {
                in_a_row = 0;
                tokio::task::yield_now().await;
            }
        }
        let i = mix.pick(&mut rng, offset);
        dispatch(ctx, &mut rng, i, Instant::from_std(intended), at.phase);
    }
}

/// Counts arrivals that were due at the stop but never sent (`reason="shutdown"`).
fn drop_backlog(
    ctx: &Ctx,
    arrivals: &mut Arrivals,
    rng: &mut SmallRng,
    mix: &mut MixCursor<'_>,
    first: Duration,
) {
    let now = ctx.start.elapsed();
    let mut offset = first;
    while offset <= now {
        let i = mix.pick(rng, offset);
        ctx.shared.scenarios[i]
            .dropped
            .get(DropReason::Shutdown)
            .inc();
        match arrivals.next_offset() {
            Some((o, _)) => offset = o,
            None => break,
        }
    }
}

/// Takes a permit and spawns a request of scenario `i`; one over the cap is dropped here.
fn dispatch(ctx: &Ctx, rng: &mut SmallRng, i: usize, intended: Instant, phase: Phase) {
    let shared = &ctx.shared;
    let sc = &shared.scenarios[i];
    let Ok(permit) = ctx.permits.clone().try_acquire_owned() else {
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
    let due = Due {
        permit,
        scenario: i,
        body,
        tag,
        cancel: cancel_for(sc.scenario.cancel.as_ref(), rng),
        intended,
        phase,
    };
    ctx.tracker.spawn(request::open_request(
        shared.clone(),
        due,
        ctx.abort.clone(),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacers_follow_the_peak_rate_up_to_the_cores() {
        let cores = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_PACERS as usize) as u32;
        assert_eq!(count(&OpenPlan::steady(10.0)), 1);
        assert_eq!(count(&OpenPlan::steady(RATE_PER_PACER)), 1);
        assert_eq!(count(&OpenPlan::steady(RATE_PER_PACER * 1.5)), 2.min(cores));
        assert_eq!(count(&OpenPlan::steady(1e12)), cores);
    }
}
