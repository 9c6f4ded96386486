//! One request: the open model's spawned request, the closed model's users, and [`send`],
//! which runs the [`Exchange`] (it records every way a request ends).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use tokio_util::task::TaskTracker;

use super::Shared;
use crate::client::{Exchange, Tag};
use crate::plan::{ClosedPlan, Phase};
use crate::upstream::marker;
use crate::workload::cancel_for;

/// A request whose send time has come, with its in-flight permit.
pub(super) struct Due {
    pub permit: tokio::sync::OwnedSemaphorePermit,
    pub request: Request,
}

/// An open-model request: sends it, then gives back its in-flight permit.
pub(super) async fn open_request(shared: Arc<Shared>, due: Due, abort: CancellationToken) {
    let Due { permit, request } = due;
    send(&shared, request, &abort).await;
    shared.metrics.in_flight_requests.dec();
    drop(permit);
}

/// One request, ready to send.
pub(super) struct Request {
    pub scenario: usize,
    pub body: bytes::Bytes,
    pub tag: Option<Tag>,
    pub intended: Instant,
    pub phase: Phase,
    pub cancel: Option<crate::client::CancelAt>,
}

impl Shared {
    /// A body for scenario `i`, carrying a new soakd id while the two-sided soak is on.
    pub(super) fn body(&self, i: usize, rng: &mut SmallRng) -> (bytes::Bytes, Option<Tag>) {
        let template = &self.scenarios[i].template;
        match &self.two_sided {
            Some(t) => {
                let id = t.next_id();
                let body = template.body_tagged(rng, Some(&marker::id_tag(id)));
                (body, Some(Tag { id, scenario: i }))
            }
            None => (template.body(rng), None),
        }
    }
}

/// Sends one request; the exchange records it, an abort included (as aborted).
async fn send(shared: &Shared, r: Request, abort: &CancellationToken) {
    let i = r.scenario;
    let sc = &shared.scenarios[i];
    let exchange = Exchange {
        client: &shared.client,
        fast: shared.fast.as_ref().zip(sc.head.as_ref()),
        spec: &sc.spec,
        settings: &shared.settings,
        metrics: &sc.metrics,
        tracker: shared.two_sided.as_deref(),
        open_streams: Some(&shared.signals.streams_open),
    };
    let span = if shared.trace_requests {
        tracing::info_span!(
            parent: None,
            "request",
            scenario = %sc.scenario.name,
            api = sc.scenario.api.as_str(),
            phase = r.phase.as_str(),
            outcome = tracing::field::Empty,
        )
    } else {
        tracing::Span::none()
    };
    let report = tracing::Instrument::instrument(
        exchange.execute(r.body, r.intended, r.phase, r.cancel, abort, r.tag),
        span.clone(),
    )
    .await;
    span.record("outcome", report.outcome.as_str());
    shared.signals.finish(i);
}

/// Spawns the closed-model users on the current runtime; they end when `stop` is cancelled.
pub(super) fn spawn_users(
    shared: &Arc<Shared>,
    plan: ClosedPlan,
    start: Instant,
    seed: u64,
    tracker: &TaskTracker,
    stop: &CancellationToken,
    abort: &CancellationToken,
) {
    for user in plan.user_ids(0, 1) {
        tracker.spawn(closed_user(
            shared.clone(),
            plan,
            user,
            start,
            seed ^ u64::from(user).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            stop.clone(),
            abort.clone(),
        ));
    }
}

/// One closed-model user: request → think time, until stopped.
async fn closed_user(
    shared: Arc<Shared>,
    plan: ClosedPlan,
    user: u32,
    start: Instant,
    seed: u64,
    stop: CancellationToken,
    abort: CancellationToken,
) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut mix = shared.mix.cursor();
    let begin = start + plan.start_of(user);
    tokio::select! {
        _ = tokio::time::sleep_until(begin) => {}
        _ = stop.cancelled() => return,
    }
    while !stop.is_cancelled() {
        let i = mix.pick(&mut rng, start.elapsed());
        let sc = &shared.scenarios[i];
        let (body, tag) = shared.body(i, &mut rng);
        shared.metrics.in_flight_requests.inc();
        shared.signals.requests_sent.fetch_add(1, Ordering::Relaxed);
        let request = Request {
            scenario: i,
            body,
            tag,
            cancel: cancel_for(sc.scenario.cancel.as_ref(), &mut rng),
            phase: plan.phase_at(start.elapsed()),
            intended: Instant::now(),
        };
        send(&shared, request, &abort).await;
        shared.metrics.in_flight_requests.dec();
        if !plan.think_time.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(plan.think_time) => {}
                _ = stop.cancelled() => return,
            }
        }
    }
}
