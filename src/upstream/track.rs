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
//! Orphans are found by the upstream itself: when it sends a chunk `orphan_after` or more after
//! its client side gave up, the stream becomes an orphan (counted once in
//! `soakd_proxy_orphaned_streams_total`, and in the gauge until it ends).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prometheus::{Histogram, IntCounter, IntGauge};

use super::marker;
use super::measure::{self, ClientEnd, ClientSide, UpstreamSide, MAX_CHUNKS};
use super::report::{AddedStats, ProxyReport, ProxyScenario, ProxyStats, Stage, UNTAGGED};
use super::stage::AddedStage;
use crate::metrics::Metrics;
use crate::mock::{Probe, Tap};
use crate::stats::creep::{Creep, Measure, ScenarioCreep};

const SHARDS: usize = 16;

/// The two-sided measures of one scenario (or of the untagged requests), resolved once.
struct ScenarioHandles {
    name: String,
    /// Requests whose two sides were joined (for the report; not a metric).
    joined: AtomicU64,
    /// `soakd_proxy_added_seconds{stage}`, by [`AddedStage::index`].
    added: Vec<Histogram>,
    /// The same for the report: HDR histograms per stage.
    added_hdr: AddedStats,
    /// The scenario's creep measures, when the run measures creep.
    creep: Option<Arc<ScenarioCreep>>,
    buffered: IntCounter,
    coalesced: IntCounter,
    upstream_requests: IntCounter,
    retries: IntCounter,
    cancel_propagation: Histogram,
    orphans: IntGauge,
    orphans_total: IntCounter,
    reported_overhead: Histogram,
}

impl ScenarioHandles {
    fn new(m: &Metrics, scenario: &str) -> Self {
        let s = [scenario];
        ScenarioHandles {
            name: scenario.to_string(),
            joined: AtomicU64::new(0),
            added: AddedStage::ALL
                .iter()
                .map(|st| {
                    m.proxy_added_seconds
                        .with_label_values(&[scenario, st.as_str()])
                })
                .collect(),
            added_hdr: AddedStats::default(),
            creep: None,
            buffered: m.proxy_buffered_streams_total.with_label_values(&s),
            coalesced: m.proxy_coalesced_chunks_total.with_label_values(&s),
            upstream_requests: m.upstream_requests_total.with_label_values(&s),
            retries: m.proxy_retries_total.with_label_values(&s),
            cancel_propagation: m.proxy_cancel_propagation_seconds.with_label_values(&s),
            orphans: m.proxy_orphaned_streams.with_label_values(&s),
            orphans_total: m.proxy_orphaned_streams_total.with_label_values(&s),
            reported_overhead: m.proxy_reported_overhead_seconds.with_label_values(&s),
        }
    }
}

/// One soakd request, shared by its client side, its upstream attempts and the table.
pub struct Link {
    scenario: usize,
    send: Instant,
    /// Nanoseconds from the tracker's epoch to the client side giving up, plus one; 0 while
    /// it has not (or when it finished normally).
    gave_up_at: AtomicU64,
    attempts: AtomicU32,
    state: Mutex<LinkState>,
}

#[derive(Default)]
struct LinkState {
    client: Option<ClientSide>,
    /// The attempt with the latest entry that has ended.
    upstream: Option<UpstreamSide>,
    joined: bool,
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
    orphan_after: Duration,
    epoch: Instant,
    salt: u64,
    next: AtomicU64,
    handles: Vec<ScenarioHandles>,
    untagged: ScenarioHandles,
    untagged_warned: AtomicBool,
    overhead_header: Option<(reqwest::header::HeaderName, f64)>,
    stats: ProxyStats,
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
            orphan_after,
            epoch: Instant::now(),
            salt: rand::random::<u64>(),
            next: AtomicU64::new(0),
            handles: scenarios
                .iter()
                .map(|s| ScenarioHandles::new(metrics, s))
                .collect(),
            untagged: ScenarioHandles::new(metrics, UNTAGGED),
            untagged_warned: AtomicBool::new(false),
            overhead_header: None,
            stats: ProxyStats::default(),
        }
    }

    /// The two-sided measures so far, for `/status`, the progress line and the summary.
    pub fn report(&self, upstream: &str) -> ProxyReport {
        let scenario = |h: &ScenarioHandles| ProxyScenario {
            name: h.name.clone(),
            upstream_requests: h.upstream_requests.get(),
            retries: h.retries.get(),
            joined: h.joined.load(Ordering::Relaxed),
            buffered_streams: h.buffered.get(),
            coalesced_chunks: h.coalesced.get(),
            orphans_now: h.orphans.get(),
            orphans_total: h.orphans_total.get(),
            added: h.added_hdr.added(),
        };
        ProxyReport {
            upstream: upstream.to_string(),
            tracked: self.tracked(),
            added: self.stats.added(),
            cancel_propagation: self.stats.percentiles(Stage::CancelPropagation),
            reported_overhead: self.stats.percentiles(Stage::ReportedOverhead),
            scenarios: self
                .handles
                .iter()
                .chain(std::iter::once(&self.untagged))
                .map(scenario)
                .collect(),
        }
    }

    /// Records each scenario's added time in its creep measures too.
    pub fn with_creep(mut self, creep: &Creep) -> Self {
        for h in &mut self.handles {
            h.creep = creep.scenario(&h.name);
        }
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
            gave_up_at: AtomicU64::new(0),
            attempts: AtomicU32::new(0),
            state: Mutex::new(LinkState::default()),
        });
        let mut shard = lock(self.shard(id));
        while let Some(&(old, at)) = shard.order.front() {
            let expired = send.saturating_duration_since(at) >= self.ttl;
            if !expired && shard.order.len() < self.cap_per_shard {
                break;
            }
            shard.order.pop_front();
            shard.links.remove(&old);
        }
        shard.order.push_back((id, send));
        shard.links.insert(id, link.clone());
        link
    }

    fn handles(&self, scenario: usize) -> &ScenarioHandles {
        self.handles.get(scenario).unwrap_or(&self.untagged)
    }

    /// Records `d` of `stage` for scenario handles `h`: the metric, the scenario's and the
    /// merged HDR histograms, and the scenario's creep measure.
    fn added(&self, h: &ScenarioHandles, stage: AddedStage, d: Duration) {
        h.added[stage.index()].observe(d.as_secs_f64());
        h.added_hdr.record(stage, d);
        self.stats.record(Stage::Added(stage), d);
        if let Some(c) = &h.creep {
            c.record(Measure::Added(stage.index()), d);
        }
    }

    /// The client side of `link` ended at `end`, `how`, with its `stamps`.
    pub fn client_done(
        &self,
        id: u64,
        link: &Link,
        how: ClientEnd,
        end: Instant,
        stamps: ClientStamps,
    ) {
        if how == ClientEnd::GaveUp {
            let nanos = end.saturating_duration_since(self.epoch).as_nanos();
            link.gave_up_at.store(
                u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1,
                Ordering::Relaxed,
            );
        }
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
            end,
            how,
        };
        let mut st = lock(&link.state);
        st.client = Some(client);
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
            self.added(h, AddedStage::FirstToken, d);
        }
        for d in &m.chunks {
            self.added(h, AddedStage::Chunk, *d);
        }
        h.coalesced.inc_by(u64::from(m.coalesced));
        if m.buffered {
            h.buffered.inc();
        }
        if let Some(d) = m.cancel_propagation {
            h.cancel_propagation.observe(d.as_secs_f64());
            self.stats.record(Stage::CancelPropagation, d);
        }
        lock(self.shard(id)).links.remove(&id);
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
            t.added(
                h,
                AddedStage::Request,
                entry.saturating_duration_since(link.send),
            );
        } else {
            h.retries.inc();
        }
        Some(Box::new(UpstreamProbe {
            tracker: t.clone(),
            id,
            link,
            entry,
            sends: Vec::new(),
            orphan: false,
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
    orphan: bool,
}

impl Probe for UpstreamProbe {
    fn chunk(&mut self, seq: u32, at: Instant, text: &mut [u8]) {
        let mut tag = [0u8; marker::SEQ_MAX_LEN];
        let n = marker::seq_tag(seq, &mut tag);
        if let Some(room) = text.get_mut(..n) {
            room.copy_from_slice(&tag[..n]);
        }
        if (seq as usize) == self.sends.len() && self.sends.len() < MAX_CHUNKS {
            self.sends.push(at);
        }
        if self.orphan {
            return;
        }
        let gave_up = self.link.gave_up_at.load(Ordering::Relaxed);
        if gave_up == 0 {
            return;
        }
        let since = at.saturating_duration_since(self.tracker.epoch);
        let gave_up = Duration::from_nanos(gave_up - 1);
        if since.saturating_sub(gave_up) >= self.tracker.orphan_after {
            self.orphan = true;
            let h = self.tracker.handles(self.link.scenario);
            h.orphans.inc();
            h.orphans_total.inc();
        }
    }

    fn end(self: Box<Self>, completed: bool, at: Instant) {
        let t = &self.tracker;
        if self.orphan {
            t.handles(self.link.scenario).orphans.dec();
        }
        let up = UpstreamSide {
            entry: self.entry,
            sends: self.sends,
            end: at,
            completed,
        };
        let mut st = lock(&self.link.state);
        if st.upstream.as_ref().is_none_or(|u| u.entry <= up.entry) {
            st.upstream = Some(up);
        }
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
            (added("request"), added("first_token"), added("chunk")),
            (2, 2, 6)
        );
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

    #[test]
    fn an_upstream_still_sending_after_the_client_gave_up_is_an_orphan() {
        let (t, m) = tracker(100, Duration::from_secs(60));
        let tap = TrackerTap(t.clone());
        let id = t.next_id();
        let t0 = Instant::now();
        let link = t.open(id, 0, t0);
        let mut probe = tap.request(t0, None, &body_with(id)).unwrap();
        probe.chunk(0, t0 + Duration::from_millis(10), &mut []);
        t.client_done(
            id,
            &link,
            ClientEnd::GaveUp,
            t0 + Duration::from_millis(15),
            ClientStamps::default(),
        );
        let gauge = m.proxy_orphaned_streams.with_label_values(&["chat"]);
        probe.chunk(1, t0 + Duration::from_millis(40), &mut []);
        assert_eq!(gauge.get(), 0, "35 ms < orphan_after 50 ms");
        probe.chunk(2, t0 + Duration::from_millis(70), &mut []);
        probe.chunk(3, t0 + Duration::from_millis(100), &mut []);
        assert_eq!(gauge.get(), 1);
        assert_eq!(
            m.proxy_orphaned_streams_total
                .with_label_values(&["chat"])
                .get(),
            1
        );
        probe.end(false, t0 + Duration::from_millis(130));
        assert_eq!(gauge.get(), 0);
        let prop = m
            .proxy_cancel_propagation_seconds
            .with_label_values(&["chat"]);
        assert_eq!(prop.get_sample_count(), 1);
        assert!((prop.get_sample_sum() - 0.115).abs() < 1e-9);
    }
}
