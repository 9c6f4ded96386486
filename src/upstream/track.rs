//! Joining the two sides of each request: a bounded table from soakd request id to the
//! request's [`Link`], and the recording of every two-sided measure.
//!
//! The client side opens a link when it sends (its actual send time), the upstream finds it by
//! the id it reads from the request ([`super::marker`]), and both sides keep an `Arc` to the
//! link until they end; whichever ends second joins them ([`super::measure::join`]) and records
//! the measures. The table only serves lookups: it holds at most `max_tracked` links and
//! forgets each after a TTL of `stream_timeout + orphan_after` (the longest a client side can
//! live, plus the longest an orphan is watched for), oldest first, so its memory is fixed
//! however long the soak runs. A link forgotten by the table still joins if both sides hold it.
//!
//! Each link also keeps the per-id record of its upstream attempts ([`super::attempts`]): the
//! fate of a client give-up ([`super::fate`]: propagated, upstream finished, not propagated,
//! orphaned, unknown) and the origin of a client-visible error ([`super::origin`]) are read
//! from it, through small hooks here (attempt began, answered, ended; client gave up or
//! failed).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prometheus::{Histogram, IntCounter};

use super::attempts::{Attempts, Output};
use super::fate::{self, FateHandles, FateState, Fates, Side};
use super::marker;
use super::measure::{self, ClientEnd, ClientSide, UpstreamSide, MAX_CHUNKS};
use super::origin::OriginHandles;
use super::report::{
    Added, Measure, ProxyReport, ProxyScenario, ProxyStats, Stage, ADDED_STAGES, UNTAGGED,
};
use crate::metrics::Metrics;
use crate::mock::{Answer, Probe, Tap};

const SHARDS: usize = 16;

/// The two-sided measures of one scenario (or of the untagged requests), resolved once.
struct ScenarioHandles {
    name: String,
    /// Requests whose two sides were joined (for the report; not a metric).
    joined: AtomicU64,
    request: Histogram,
    first_token: Histogram,
    chunk: Histogram,
    response: Histogram,
    buffered: IntCounter,
    coalesced: IntCounter,
    upstream_requests: IntCounter,
    retries: IntCounter,
    reported_overhead: Histogram,
    fates: FateHandles,
    origins: OriginHandles,
}

impl ScenarioHandles {
    fn new(m: &Metrics, scenario: &str) -> Self {
        let [request, first_token, chunk, response] =
            ADDED_STAGES.map(|stage| m.proxy_added_seconds.with_label_values(&[scenario, stage]));
        let s = [scenario];
        ScenarioHandles {
            name: scenario.to_string(),
            joined: AtomicU64::new(0),
            request,
            first_token,
            chunk,
            response,
            buffered: m.proxy_buffered_streams_total.with_label_values(&s),
            coalesced: m.proxy_coalesced_chunks_total.with_label_values(&s),
            upstream_requests: m.upstream_requests_total.with_label_values(&s),
            retries: m.proxy_retries_total.with_label_values(&s),
            reported_overhead: m.proxy_reported_overhead_seconds.with_label_values(&s),
            fates: FateHandles::new(m, scenario),
            origins: OriginHandles::new(m, scenario),
        }
    }
}

/// One soakd request, shared by its client side, its upstream attempts and the table.
pub struct Link {
    scenario: usize,
    send: Instant,
    attempts: AtomicU32,
    /// The table forgot the id (a later attempt for it cannot be matched).
    evicted: AtomicBool,
    state: Mutex<LinkState>,
}

#[derive(Default)]
struct LinkState {
    client: Option<ClientSide>,
    /// The attempt with the latest entry that has ended.
    upstream: Option<UpstreamSide>,
    joined: bool,
    /// Every attempt's record, for fates and error origins.
    attempts: Attempts,
    fate: FateState,
}

impl LinkState {
    /// What `link`'s fate is decided on.
    fn side(&mut self, link: &Link) -> Side<'_> {
        Side {
            fate: &mut self.fate,
            attempts: &mut self.attempts,
            last: self.upstream.as_ref(),
            evicted: link.evicted.load(Ordering::Relaxed),
        }
    }
}

struct Shard {
    links: HashMap<u64, Arc<Link>>,
    order: VecDeque<(u64, Instant)>,
}

/// Everything the client side records of one request while it reads the answer.
#[derive(Debug, Default)]
pub struct ClientStamps {
    pub first_content: Option<Instant>,
    pub arrivals: Vec<(u32, Instant)>,
    /// The proxy's own overhead claim, seconds, from the configured response header.
    pub reported_overhead: Option<f64>,
    /// When the last body bytes arrived.
    pub last_byte: Option<Instant>,
}

impl ClientStamps {
    /// Records the chunk markers found in one event's data, arrived at `at`.
    pub fn event(&mut self, data: &[u8], at: Instant) {
        marker::each_seq(data, |seq| {
            if self.arrivals.len() < MAX_CHUNKS {
                self.arrivals.push((seq, at));
            }
        });
    }
}

/// The table and the recorder of the two-sided measures.
pub struct Tracker {
    shards: Box<[Mutex<Shard>]>,
    cap_per_shard: usize,
    ttl: Duration,
    salt: u64,
    next: AtomicU64,
    handles: Vec<ScenarioHandles>,
    untagged: ScenarioHandles,
    untagged_warned: AtomicBool,
    overhead_header: Option<(reqwest::header::HeaderName, f64)>,
    /// Why buffering and coalescing cannot be seen under the run's settings
    /// ([`measure::unmeasurable`]); then they are neither counted nor reported as numbers.
    unmeasurable: Option<String>,
    stats: ProxyStats,
    fates: Fates<Arc<Link>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Tracker {
    /// A tracker for `scenarios` (in engine order) holding at most `max_tracked` links, each
    /// for at most `ttl`.
    pub fn new(
        metrics: &Metrics,
        scenarios: &[String],
        max_tracked: usize,
        ttl: Duration,
        orphan_after: Duration,
    ) -> Self {
        Tracker {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        links: HashMap::new(),
                        order: VecDeque::new(),
                    })
                })
                .collect(),
            cap_per_shard: max_tracked.div_ceil(SHARDS).max(1),
            ttl,
            salt: rand::random::<u64>(),
            next: AtomicU64::new(0),
            handles: scenarios
                .iter()
                .map(|s| ScenarioHandles::new(metrics, s))
                .collect(),
            untagged: ScenarioHandles::new(metrics, UNTAGGED),
            untagged_warned: AtomicBool::new(false),
            overhead_header: None,
            unmeasurable: None,
            stats: ProxyStats::default(),
            fates: Fates::new(orphan_after, max_tracked),
        }
    }

    /// The two-sided measures so far, for `/status`, the progress line and the summary.
    pub fn report(&self, upstream: &str) -> ProxyReport {
        let measure = |n: u64| match &self.unmeasurable {
            Some(why) => Measure::NotMeasurable(format!("not measurable ({why})")),
            None => Measure::Count(n),
        };
        let scenario = |h: &ScenarioHandles| ProxyScenario {
            name: h.name.clone(),
            upstream_requests: h.upstream_requests.get(),
            retries: h.retries.get(),
            joined: h.joined.load(Ordering::Relaxed),
            buffered_streams: measure(h.buffered.get()),
            coalesced_chunks: measure(h.coalesced.get()),
            orphans_now: h.fates.orphans_now(),
            orphans_total: h.fates.orphans_total(),
            give_ups: h.fates.report(),
            errors: h.origins.report(),
        };
        let scenarios: Vec<ProxyScenario> = self
            .handles
            .iter()
            .chain(std::iter::once(&self.untagged))
            .map(scenario)
            .collect();
        ProxyReport {
            upstream: upstream.to_string(),
            sent: self.next.load(Ordering::Relaxed),
            tracked: self.tracked(),
            added: Added {
                request: self.stats.percentiles(Stage::Request),
                first_token: self.stats.percentiles(Stage::FirstToken),
                chunk: self.stats.percentiles(Stage::Chunk),
                response: self.stats.percentiles(Stage::Response),
            },
            cancel_propagation: self.stats.percentiles(Stage::CancelPropagation),
            run_on: self.stats.percentiles(Stage::RunOn),
            reported_overhead: self.stats.percentiles(Stage::ReportedOverhead),
            give_ups: scenarios.iter().fold(Default::default(), |mut g, s| {
                g.add(&s.give_ups);
                g
            }),
            errors: scenarios.iter().fold(Default::default(), |mut e, s| {
                e.add(&s.errors);
                e
            }),
            scenarios,
        }
    }

    /// Buffering and coalescing cannot be seen under the run's settings, for reason `why`
    /// (e.g. `chunk_delay 5ms < 10ms`, from [`measure::unmeasurable`]): they are not counted,
    /// and the report says `not measurable (why)` instead of a number.
    pub fn with_unmeasurable(mut self, why: Option<String>) -> Self {
        self.unmeasurable = why;
        self
    }

    /// Reads the proxy's overhead claim from header `name`, whose value is in units of
    /// `seconds_per_unit` (0.001 for milliseconds).
    pub fn with_overhead_header(
        mut self,
        name: reqwest::header::HeaderName,
        seconds_per_unit: f64,
    ) -> Self {
        self.overhead_header = Some((name, seconds_per_unit));
        self
    }

    /// The proxy's overhead claim in a response's headers, in seconds, when configured and
    /// present as a finite, non-negative number.
    pub fn reported_overhead(&self, headers: &reqwest::header::HeaderMap) -> Option<f64> {
        let (name, scale) = self.overhead_header.as_ref()?;
        let v: f64 = headers.get(name)?.to_str().ok()?.trim().parse().ok()?;
        (v.is_finite() && v >= 0.0).then_some(v * scale)
    }

    /// A new request id: unique in this run, unguessable across runs (so two soaks behind one
    /// proxy never join each other's requests).
    pub fn next_id(&self) -> u64 {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // SplitMix64 of salt + n: a bijection, so ids never repeat within 2^64 requests.
        let mut z = self
            .salt
            .wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn shard(&self, id: u64) -> &Mutex<Shard> {
        &self.shards[(id % SHARDS as u64) as usize]
    }

    /// Links currently in the table.
    pub fn tracked(&self) -> usize {
        self.shards.iter().map(|s| lock(s).links.len()).sum()
    }

    /// The client side sends request `id` of scenario index `scenario` now.
    pub fn open(&self, id: u64, scenario: usize, send: Instant) -> Arc<Link> {
        let link = Arc::new(Link {
            scenario,
            send,
            attempts: AtomicU32::new(0),
            evicted: AtomicBool::new(false),
            state: Mutex::new(LinkState::default()),
        });
        let mut shard = lock(self.shard(id));
        while let Some(&(old, at)) = shard.order.front() {
            let expired = send.saturating_duration_since(at) >= self.ttl;
            if !expired && shard.order.len() < self.cap_per_shard {
                break;
            }
            shard.order.pop_front();
            if let Some(l) = shard.links.remove(&old) {
                l.evicted.store(true, Ordering::Relaxed);
            }
        }
        shard.order.push_back((id, send));
        shard.links.insert(id, link.clone());
        link
    }

    fn handles(&self, scenario: usize) -> &ScenarioHandles {
        self.handles.get(scenario).unwrap_or(&self.untagged)
    }

    /// The client side of `link` ended at `end`, `how`, with its `stamps`.
    pub fn client_done(
        &self,
        id: u64,
        link: &Arc<Link>,
        how: ClientEnd,
        end: Instant,
        stamps: ClientStamps,
    ) {
        let h = self.handles(link.scenario);
        if let Some(secs) = stamps.reported_overhead {
            h.reported_overhead.observe(secs);
            self.stats
                .record(Stage::ReportedOverhead, Duration::from_secs_f64(secs));
        }
        let client = ClientSide {
            send: link.send,
            first_content: stamps.first_content,
            arrivals: stamps.arrivals,
            last_byte: stamps.last_byte,
            end,
            how,
        };
        let mut st = lock(&link.state);
        st.client = Some(client);
        match how {
            ClientEnd::GaveUp => {
                let side = st.side(link);
                self.fates.gave_up(link, side, end, &h.fates, &self.stats);
            }
            ClientEnd::Failed => h.origins.record(&st.attempts),
            ClientEnd::Finished => {}
        }
        self.try_join(id, link, &mut st);
    }

    fn try_join(&self, id: u64, link: &Link, st: &mut LinkState) {
        if st.joined {
            return;
        }
        let (Some(c), Some(u)) = (&st.client, &st.upstream) else {
            return;
        };
        st.joined = true;
        let m = measure::join(c, u);
        let h = self.handles(link.scenario);
        h.joined.fetch_add(1, Ordering::Relaxed);
        if let Some(d) = m.first_token {
            h.first_token.observe(d.as_secs_f64());
            self.stats.record(Stage::FirstToken, d);
        }
        for d in &m.chunks {
            h.chunk.observe(d.as_secs_f64());
            self.stats.record(Stage::Chunk, *d);
        }
        if self.unmeasurable.is_none() {
            h.coalesced.inc_by(u64::from(m.coalesced));
            if m.buffered {
                h.buffered.inc();
            }
        }
        if let Some(d) = m.response {
            h.response.observe(d.as_secs_f64());
            self.stats.record(Stage::Response, d);
        }
        lock(self.shard(id)).links.remove(&id);
    }

    /// Decides every waiting give-up whose `orphan_after` has passed by `now`, and the oldest
    /// ones beyond `max_tracked` (see [`super::fate`]).
    pub fn sweep(&self, now: Instant) {
        self.sweep_with(now, false);
    }

    /// As [`Tracker::sweep`]; with `last`, every give-up still waiting is decided now.
    fn sweep_with(&self, now: Instant, last: bool) {
        for (link, overflow) in self.fates.due(now, last) {
            let h = &self.handles(link.scenario).fates;
            let mut st = lock(&link.state);
            self.fates
                .decide_due(st.side(&link), now, overflow, h, &self.stats);
        }
    }

    /// Give-ups without a fate yet, plus upstream answers still open that are not orphans
    /// (after the load: the upstream sides the summary would miss).
    pub fn pending(&self) -> u64 {
        self.fates.pending()
    }

    /// After the load: waits until every upstream side of a finished client request has
    /// ended or has its fate — at most `orphan_after`, at once when nothing is pending — then
    /// decides whatever give-up is still waiting. Returns how long it waited and what was
    /// still pending at the end of the wait.
    pub async fn settle(&self) -> (Duration, u64) {
        let start = Instant::now();
        let step = fate::sweep_interval(self.fates.orphan_after());
        let deadline = start + self.fates.orphan_after() + step;
        loop {
            let now = Instant::now();
            self.sweep(now);
            if self.pending() == 0 || now >= deadline {
                break;
            }
            tokio::time::sleep(step.min(Duration::from_millis(10))).await;
        }
        let left = self.pending();
        self.sweep_with(Instant::now(), true);
        (start.elapsed(), left)
    }

    /// Sweeps every [`fate::sweep_interval`] until `stop`.
    pub async fn sweep_every(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(fate::sweep_interval(self.fates.orphan_after()));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.sweep(Instant::now()),
                _ = stop.cancelled() => return,
            }
        }
    }

    fn find(&self, id: u64) -> Option<Arc<Link>> {
        lock(self.shard(id)).links.get(&id).cloned()
    }
}

/// The tap the upstream mock reports to.
pub struct TrackerTap(pub Arc<Tracker>);

impl Tap for TrackerTap {
    fn request(
        &self,
        entry: Instant,
        header_id: Option<&[u8]>,
        body: &[u8],
    ) -> Option<Box<dyn Probe>> {
        let t = &self.0;
        let id = marker::find_id(body).or_else(|| header_id.and_then(marker::parse_hex16));
        let Some((id, link)) = id.and_then(|id| Some((id, t.find(id)?))) else {
            t.untagged.upstream_requests.inc();
            if !t.untagged_warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "an upstream request carries no soakd id this run tracks (neither in its last \
                     message nor in the {} header): the proxy strips both, or is not soakd's; \
                     such requests count as scenario=\"{UNTAGGED}\" and are never joined",
                    marker::ID_HEADER
                );
            }
            return None;
        };
        let h = t.handles(link.scenario);
        h.upstream_requests.inc();
        if link.attempts.fetch_add(1, Ordering::Relaxed) == 0 {
            let added = entry.saturating_duration_since(link.send);
            h.request.observe(added.as_secs_f64());
            t.stats.record(Stage::Request, added);
        } else {
            h.retries.inc();
        }
        t.fates.began(lock(&link.state).side(&link));
        Some(Box::new(UpstreamProbe {
            tracker: t.clone(),
            id,
            link,
            entry,
            sends: Vec::new(),
            output: Output::default(),
        }))
    }

    fn id_header(&self) -> &'static str {
        marker::ID_HEADER
    }
}

/// One upstream attempt's stamps.
struct UpstreamProbe {
    tracker: Arc<Tracker>,
    id: u64,
    link: Arc<Link>,
    entry: Instant,
    sends: Vec<Instant>,
    output: Output,
}

impl Probe for UpstreamProbe {
    fn answer(&mut self, a: &Answer) {
        self.output = Output {
            chunks: self.output.chunks,
            ..Output::of(Some(a))
        };
        lock(&self.link.state).attempts.answered(self.entry, a);
    }

    fn chunk(&mut self, seq: u32, at: Instant, text: &mut [u8]) {
        let mut tag = [0u8; marker::SEQ_MAX_LEN];
        let n = marker::seq_tag(seq, &mut tag);
        if let Some(room) = text.get_mut(..n) {
            room.copy_from_slice(&tag[..n]);
        }
        if (seq as usize) == self.sends.len() && self.sends.len() < MAX_CHUNKS {
            self.sends.push(at);
        }
        self.output.streamed = true;
        self.output.chunks = self.output.chunks.saturating_add(1);
    }

    fn end(self: Box<Self>, completed: bool, at: Instant) {
        let t = &self.tracker;
        let up = UpstreamSide {
            entry: self.entry,
            sends: self.sends,
            end: at,
            completed,
            output: self.output,
        };
        let mut st = lock(&self.link.state);
        if st.upstream.as_ref().is_none_or(|u| u.entry <= up.entry) {
            st.upstream = Some(up);
        }
        let h = &t.handles(self.link.scenario).fates;
        t.fates.ended(st.side(&self.link), at, h, &t.stats);
        t.try_join(self.id, &self.link, &mut st);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(max: usize, ttl: Duration) -> (Arc<Tracker>, Arc<Metrics>) {
        let m = Arc::new(Metrics::new("t", "0").unwrap());
        let names = vec!["chat".to_string(), "msgs".to_string()];
        (
            Arc::new(Tracker::new(
                &m,
                &names,
                max,
                ttl,
                Duration::from_millis(50),
            )),
            m,
        )
    }

    fn body_with(id: u64) -> Vec<u8> {
        [
            br#"{"messages":[{"role":"user","content":"hi"#.as_slice(),
            &marker::id_tag(id),
            br#""}]}"#,
        ]
        .concat()
    }

    #[test]
    fn ids_are_unique_and_the_table_is_bounded() {
        let (t, _) = tracker(64, Duration::from_secs(60));
        let now = Instant::now();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = t.next_id();
            assert!(seen.insert(id));
            t.open(id, 0, now);
        }
        assert!(t.tracked() <= 64 + SHARDS, "{}", t.tracked());
    }

    #[test]
    fn expired_links_are_forgotten() {
        let (t, _) = tracker(1000, Duration::from_millis(10));
        let t0 = Instant::now();
        for i in 0..100 {
            t.open(i, 0, t0);
        }
        t.open(1000, 0, t0 + Duration::from_millis(20));
        // Each shard evicts what expired when it next opens a link; one shard saw one.
        assert!(t.tracked() < 100, "{}", t.tracked());
        for i in 0..SHARDS as u64 {
            t.open(2000 + i, 0, t0 + Duration::from_millis(20));
        }
        assert_eq!(t.tracked(), 1 + SHARDS);
    }

    #[test]
    fn both_sides_join_once_whichever_ends_last() {
        let (t, m) = tracker(100, Duration::from_secs(60));
        let tap = TrackerTap(t.clone());
        for client_first in [true, false] {
            let id = t.next_id();
            let t0 = Instant::now();
            let link = t.open(id, 1, t0);
            let mut probe = tap
                .request(t0 + Duration::from_millis(3), None, &body_with(id))
                .expect("tracked");
            let sends = [20u64, 120, 220];
            for (i, ms) in sends.iter().enumerate() {
                probe.chunk(i as u32, t0 + Duration::from_millis(*ms), &mut []);
            }
            let stamps = || ClientStamps {
                first_content: Some(t0 + Duration::from_millis(26)),
                arrivals: sends
                    .iter()
                    .enumerate()
                    .map(|(i, ms)| (i as u32, t0 + Duration::from_millis(ms + 4)))
                    .collect(),
                reported_overhead: Some(0.002),
                last_byte: Some(t0 + Duration::from_millis(234)),
            };
            let end = t0 + Duration::from_millis(230);
            if client_first {
                t.client_done(id, &link, ClientEnd::Finished, end, stamps());
                probe.end(true, end);
            } else {
                probe.end(true, end);
                t.client_done(id, &link, ClientEnd::Finished, end, stamps());
            }
            assert!(t.find(id).is_none(), "a joined link leaves the table");
        }
        let added = |stage: &str| {
            m.proxy_added_seconds
                .with_label_values(&["msgs", stage])
                .get_sample_count()
        };
        assert_eq!(
            (
                added("request"),
                added("first_token"),
                added("chunk"),
                added("response")
            ),
            (2, 2, 6, 2)
        );
        // The last byte arrived 4 ms after the upstream's end, twice.
        let response = m
            .proxy_added_seconds
            .with_label_values(&["msgs", "response"]);
        assert!((response.get_sample_sum() - 0.008).abs() < 1e-9);
        let first = m
            .proxy_added_seconds
            .with_label_values(&["msgs", "first_token"]);
        // 26 ms TTFT − (20 − 3) ms of the upstream's own = 9 ms, twice.
        assert!(
            (first.get_sample_sum() - 0.018).abs() < 1e-9,
            "{}",
            first.get_sample_sum()
        );
        let req = m
            .proxy_added_seconds
            .with_label_values(&["msgs", "request"]);
        assert!((req.get_sample_sum() - 0.006).abs() < 1e-9);
        assert_eq!(
            m.upstream_requests_total.with_label_values(&["msgs"]).get(),
            2
        );
        assert_eq!(
            m.proxy_reported_overhead_seconds
                .with_label_values(&["msgs"])
                .get_sample_count(),
            2
        );
        assert_eq!(
            m.proxy_buffered_streams_total
                .with_label_values(&["msgs"])
                .get(),
            0
        );
    }

    /// Three chunks sent 20 ms apart and released together: two coalesced chunks and a
    /// buffered stream, unless the settings make coalescing unmeasurable; then nothing is
    /// counted and the report says why instead of a number.
    #[test]
    fn an_unmeasurable_coalescing_is_not_counted_and_says_why() {
        for why in [None, Some("chunk_delay 5ms < 10ms".to_string())] {
            let m = Arc::new(Metrics::new("t", "0").unwrap());
            let t = Arc::new(
                Tracker::new(
                    &m,
                    &["chat".to_string()],
                    100,
                    Duration::from_secs(60),
                    Duration::from_millis(50),
                )
                .with_unmeasurable(why.clone()),
            );
            let tap = TrackerTap(t.clone());
            let id = t.next_id();
            let t0 = Instant::now();
            let link = t.open(id, 0, t0);
            let mut probe = tap.request(t0, None, &body_with(id)).expect("tracked");
            for i in 0..3u32 {
                probe.chunk(i, t0 + Duration::from_millis(20 * u64::from(i)), &mut []);
            }
            let at = t0 + Duration::from_millis(100);
            let stamps = ClientStamps {
                first_content: Some(at),
                arrivals: (0..3).map(|i| (i, at)).collect(),
                reported_overhead: None,
                last_byte: Some(at),
            };
            probe.end(true, at);
            t.client_done(id, &link, ClientEnd::Finished, at, stamps);
            let counted = (
                m.proxy_coalesced_chunks_total
                    .with_label_values(&["chat"])
                    .get(),
                m.proxy_buffered_streams_total
                    .with_label_values(&["chat"])
                    .get(),
            );
            let r = t.report("127.0.0.1:1");
            match why {
                None => {
                    assert_eq!(counted, (2, 1));
                    assert_eq!(r.scenarios[0].coalesced_chunks, Measure::Count(2));
                }
                Some(why) => {
                    assert_eq!(counted, (0, 0), "jitter is not counted");
                    assert_eq!(
                        r.scenarios[0].buffered_streams,
                        Measure::NotMeasurable(format!("not measurable ({why})"))
                    );
                }
            }
        }
    }

    #[test]
    fn retries_untagged_and_the_header_id() {
        let (t, m) = tracker(100, Duration::from_secs(60));
        let tap = TrackerTap(t.clone());
        let id = t.next_id();
        let t0 = Instant::now();
        let _link = t.open(id, 0, t0);
        let hex = marker::hex16(id);
        // Found by the header alone, twice: one retry.
        for _ in 0..2 {
            let p = tap.request(t0, Some(&hex), b"{}").expect("header id");
            p.end(true, t0);
        }
        assert!(tap.request(t0, None, b"{\"messages\":[]}").is_none());
        assert!(
            tap.request(t0, None, &body_with(12345)).is_none(),
            "an id this run never sent"
        );
        assert_eq!(m.proxy_retries_total.with_label_values(&["chat"]).get(), 1);
        assert_eq!(
            m.upstream_requests_total.with_label_values(&["chat"]).get(),
            2
        );
        assert_eq!(
            m.upstream_requests_total
                .with_label_values(&[UNTAGGED])
                .get(),
            2
        );
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn unary(tokens: u64) -> Answer {
        Answer {
            status: 200,
            failed: false,
            stream: false,
            output_tokens: tokens,
        }
    }

    fn stream() -> Answer {
        Answer {
            stream: true,
            ..unary(0)
        }
    }

    fn give_ups(m: &Metrics, fate: &str) -> u64 {
        m.proxy_give_ups_total
            .with_label_values(&["chat", fate])
            .get()
    }

    /// One request of scenario `chat` sent at `t0`, its upstream attempt entered at once.
    fn request(t: &Arc<Tracker>, t0: Instant, a: Answer) -> (u64, Arc<Link>, Box<dyn Probe>) {
        let id = t.next_id();
        let link = t.open(id, 0, t0);
        let mut probe = TrackerTap(t.clone())
            .request(t0, None, &body_with(id))
            .expect("tracked");
        probe.answer(&a);
        (id, link, probe)
    }

    fn give_up(t: &Tracker, id: u64, link: &Arc<Link>, at: Instant) {
        t.client_done(id, link, ClientEnd::GaveUp, at, ClientStamps::default());
    }

    #[test]
    fn every_give_up_gets_one_fate_from_its_stamps() {
        // orphan_after 50 ms.
        let (t, m) = tracker(100, Duration::from_secs(60));
        let t0 = Instant::now();
        let gauge = m.proxy_orphaned_requests.with_label_values(&["chat"]);
        let wasted = m
            .proxy_wasted_output_tokens_total
            .with_label_values(&["chat"]);

        // A stream still sending when its client gave up at 15 ms: orphaned at 65 ms by the
        // sweep, open until its end at 130 ms, then its 3 chunks after the give-up wasted.
        let (id, link, mut orphan) = request(&t, t0, stream());
        orphan.chunk(0, t0 + ms(10), &mut []);
        give_up(&t, id, &link, t0 + ms(15));
        orphan.chunk(1, t0 + ms(40), &mut []);
        t.sweep(t0 + ms(64));
        assert_eq!(
            (give_ups(&m, "orphaned"), gauge.get()),
            (0, 0),
            "49 ms < 50 ms"
        );
        t.sweep(t0 + ms(65));
        assert_eq!((give_ups(&m, "orphaned"), gauge.get()), (1, 1));
        orphan.chunk(2, t0 + ms(70), &mut []);
        orphan.chunk(3, t0 + ms(100), &mut []);
        orphan.end(false, t0 + ms(130));
        assert_eq!(gauge.get(), 0);
        assert_eq!(wasted.get(), 3);

        // A unary answer that sends nothing at all (a stall behind a proxy that ignores the
        // abort) is an orphan too; its 24 tokens count when it is sent at last.
        let (id, link, stall) = request(&t, t0, unary(24));
        give_up(&t, id, &link, t0 + ms(200));
        t.sweep(t0 + ms(250));
        assert_eq!((give_ups(&m, "orphaned"), gauge.get()), (2, 1));
        stall.end(true, t0 + ms(900));
        assert_eq!((gauge.get(), wasted.get()), (0, 3 + 24));

        // Dropped 20 ms after the give-up: propagated in 20 ms, nothing wasted.
        let (id, link, cut) = request(&t, t0, unary(24));
        give_up(&t, id, &link, t0 + ms(300));
        cut.end(false, t0 + ms(320));
        assert_eq!(give_ups(&m, "propagated"), 1);
        let prop = m
            .proxy_cancel_propagation_seconds
            .with_label_values(&["chat"]);
        assert_eq!(prop.get_sample_count(), 1);
        assert!((prop.get_sample_sum() - 0.020).abs() < 1e-9);

        // A stream that ran on to its end 30 ms after the give-up: not propagated, its two
        // chunks after the give-up wasted.
        let (id, link, mut on) = request(&t, t0, stream());
        on.chunk(0, t0 + ms(390), &mut []);
        give_up(&t, id, &link, t0 + ms(400));
        on.chunk(1, t0 + ms(410), &mut []);
        on.chunk(2, t0 + ms(420), &mut []);
        on.end(true, t0 + ms(430));
        assert_eq!(give_ups(&m, "not_propagated"), 1);
        assert_eq!(wasted.get(), 27 + 2);

        // Ended before the client gave up: nothing to cancel.
        let (id, link, done) = request(&t, t0, unary(24));
        done.end(true, t0 + ms(500));
        give_up(&t, id, &link, t0 + ms(501));
        assert_eq!(give_ups(&m, "upstream_finished"), 1);

        // Never reached: unknown once orphan_after has passed.
        let id = t.next_id();
        let lost = t.open(id, 0, t0);
        give_up(&t, id, &lost, t0 + ms(600));
        assert_eq!(t.pending(), 1);
        t.sweep(t0 + ms(650));
        assert_eq!(give_ups(&m, "unknown"), 1);
        let r = t.report("x");
        assert_eq!(r.give_ups.unknown_reasons.get("never_reached"), Some(&1));
        assert_eq!(
            (r.give_ups.total(), r.give_ups.wasted_output_tokens),
            (6, 29)
        );
        assert_eq!(r.give_ups.wasted_by_orphans, 27);
        assert_eq!((r.run_on.count, r.cancel_propagation.count), (1, 1));
        // Each give-up got exactly one fate, and nothing is left pending.
        assert_eq!(t.pending(), 0);
        let text = r.text();
        assert!(
            text.contains(
                "give-ups 6: propagated 1, upstream finished 1, not propagated 1 (tokens \
                 generated after give-up: 2), orphaned 2 (tokens generated after give-up: 27), \
                 unknown 1 (never reached 1)"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_end_of_the_run_waits_for_open_answers_only_while_they_can_end() {
        let (t, _m) = tracker(100, Duration::from_secs(60));
        let t0 = Instant::now();
        // A finished client request whose upstream answer is still open is pending, and so
        // is a give-up without a fate; an orphan is not.
        let (id, link, open) = request(&t, t0, unary(1));
        t.client_done(id, &link, ClientEnd::Finished, t0, ClientStamps::default());
        assert_eq!(t.pending(), 1);
        open.end(true, t0 + ms(1));
        assert_eq!(t.pending(), 0);
        let (id, link, _stuck) = request(&t, t0, unary(1));
        give_up(&t, id, &link, t0);
        assert_eq!(t.pending(), 2, "the give-up and its open attempt");
        t.sweep(t0 + ms(50));
        assert_eq!(t.pending(), 0, "orphaned: its fate is known");
    }

    #[test]
    fn errors_are_classed_by_what_the_upstream_saw() {
        let (t, m) = tracker(100, Duration::from_secs(60));
        let t0 = Instant::now();
        let failed = |id, link: &Arc<Link>| {
            t.client_done(id, link, ClientEnd::Failed, t0, ClientStamps::default())
        };
        // The upstream answered 500: passed through.
        let (id, link, p) = request(
            &t,
            t0,
            Answer {
                status: 500,
                failed: true,
                ..unary(0)
            },
        );
        p.end(true, t0);
        failed(id, &link);
        // The upstream answered 200, the client saw an error: the proxy's.
        let (id, link, p) = request(&t, t0, unary(5));
        p.end(true, t0);
        failed(id, &link);
        // Never reached.
        let id = t.next_id();
        let link = t.open(id, 0, t0);
        failed(id, &link);
        let origin = |o: &str| {
            m.proxy_error_origin_total
                .with_label_values(&["chat", o])
                .get()
        };
        assert_eq!((origin("upstream"), origin("proxy")), (1, 2));
        let e = t.report("x").errors;
        assert_eq!((e.upstream, e.proxy, e.never_reached), (1, 2, 1));
    }
}
