//! The weather driven on a synthetic clock by a model proxy: every client request is sent,
//! tried upstream up to `tries` times (1 ms apart, the next try only after a fault) and
//! answered; ticks once a second. Checks amplification, masking, Retry-After, ghosts,
//! recovery and the occurrence list against counts known by construction.

use std::sync::Arc;

use super::*;

const MS: Duration = Duration::from_millis(1);

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn spec(name: &str, start: f64, duration: f64, fault: StormFault, rate: f64) -> StormSpec {
    StormSpec {
        name: name.into(),
        start: secs(start),
        duration: secs(duration),
        every: None,
        fault,
        rate,
        scenarios: None,
        apis: None,
    }
}

const RETRY_429: StormFault = StormFault::Status {
    status: 429,
    retry_after: Some(1),
};

struct Sim {
    w: Weather,
    m: Arc<Metrics>,
    t0: Instant,
}

impl Sim {
    fn new(storms: Vec<StormSpec>) -> Sim {
        let m = Arc::new(Metrics::new("t", "0").unwrap());
        let shapes = vec![
            ScenarioShape {
                name: "chat".into(),
                api: "openai",
                stream: false,
            },
            ScenarioShape {
                name: "msgs".into(),
                api: "anthropic",
                stream: true,
            },
        ];
        let t0 = Instant::now();
        let w = Weather::new(&m, &shapes, storms, (t0, 99), 1024, secs(2.0));
        w.start_load(t0);
        Sim { w, m, t0 }
    }

    fn at(&self, s: f64) -> Instant {
        self.t0 + secs(s)
    }

    /// One request of scenario 0 sent at `s`, tried up to `tries` times; returns the link.
    fn request(&self, s: f64, tries: u32, latency: f64) -> LinkWeather {
        let send = self.at(s);
        let w = self.w.open(0, send);
        let mut attempts = 0;
        let mut ok = false;
        for a in 0..tries {
            let entry = send + MS * (a + 1);
            attempts += 1;
            self.w.attempt(0, send, &w, entry);
            if self
                .w
                .inject(Some((0, &w)), "chat_completions", entry)
                .is_none()
            {
                ok = true;
                break;
            }
        }
        let result = if ok {
            ClientResult::Ok
        } else {
            ClientResult::Error
        };
        self.w
            .client_done(0, send, &w, send + secs(latency), (result, attempts));
        w
    }

    /// Requests every `step` seconds over `[from, to)`.
    fn load(&self, from: f64, to: f64, step: f64, tries: u32) {
        let mut s = from;
        while s < to - 1e-9 {
            self.request(s, tries, 0.02);
            s += step;
        }
    }

    fn ticks(&self, from: u32, to: u32) {
        for s in from..=to {
            self.w.tick(self.at(f64::from(s)));
        }
    }
}

#[test]
fn a_retrying_proxy_triples_the_attempts_in_a_429_storm_and_masks_nothing() {
    let sim = Sim::new(vec![spec("429s", 2.0, 4.0, RETRY_429, 1.0)]);
    sim.load(0.0, 12.0, 0.25, 3);
    sim.ticks(0, 12);
    sim.w.end_load(secs(12.0));
    let r = sim.w.report();
    let o = &r.storms[0];
    assert_eq!((o.start_secs, o.end_secs), (2.0, 6.0));
    assert_eq!(o.client_requests, 16);
    assert_eq!((o.upstream_requests, o.upstream_faults), (48, 48));
    assert_eq!(o.amplification, Some(3.0));
    assert_eq!((o.masked_ratio, o.passed_ratio), (Some(0.0), Some(1.0)));
    assert_eq!(o.client_errors, 16);
    // Two retries per request, each 1 ms after a Retry-After of 1 s; the third answer has
    // no next attempt to judge.
    assert_eq!((o.retry_after_honoured, o.retry_after_violations), (0, 32));
    assert_eq!(r.amplification.fair_weather, Some(1.0));
    assert_eq!(r.amplification.fair_client_requests, 48 - 16);
    assert_eq!(r.amplification.in_storms, Some(3.0));
    assert_eq!((o.recovered, o.recovery_secs), (Some(true), Some(0.0)));
    assert_eq!(r.retry_after.violations, 32);
    let m = &sim.m;
    assert_eq!(
        m.upstream_faults_total
            .with_label_values(&["429s", "status"])
            .get(),
        48
    );
    assert_eq!(
        m.proxy_retry_after_violations_total
            .with_label_values(&["chat"])
            .get(),
        32
    );
    let attempts = m.proxy_upstream_attempts.with_label_values(&["chat"]);
    assert_eq!(attempts.get_sample_count(), 48);
    assert_eq!(attempts.get_sample_sum(), 16.0 * 3.0 + 32.0);
    assert_eq!(
        m.proxy_recovery_seconds.with_label_values(&["429s"]).get(),
        0.0
    );
    assert_eq!(
        m.upstream_storm_active.with_label_values(&["429s"]).get(),
        0
    );
}

#[test]
fn a_pass_through_proxy_passes_every_fault_and_a_retrying_one_masks_half_faults() {
    let pass = Sim::new(vec![spec("429s", 2.0, 4.0, RETRY_429, 1.0)]);
    pass.load(0.0, 12.0, 0.25, 1);
    pass.ticks(0, 12);
    let o = &pass.w.report().storms[0];
    assert_eq!(o.amplification, Some(1.0));
    assert_eq!(o.client_errors, o.upstream_faults);
    assert_eq!(o.masked_ratio, Some(0.0));
    assert_eq!(o.retry_after_violations, 0, "no next attempt");
    let half = StormFault::Status {
        status: 500,
        retry_after: None,
    };
    let mask = Sim::new(vec![spec("500s", 1.0, 100.0, half, 0.5)]);
    mask.load(1.0, 101.0, 0.05, 3);
    let o = &mask.w.report().storms[0];
    // 2000 requests: half meet a fault on their first try; of those, a quarter fail all
    // three tries (passed) and three quarters succeed on a later one (masked).
    let masked = o.masked_ratio.unwrap();
    assert!((masked - 0.75).abs() < 0.05, "{o:?}");
    assert!((o.passed_ratio.unwrap() - 0.25).abs() < 0.05, "{o:?}");
    assert!((o.amplification.unwrap() - 1.75).abs() < 0.08, "{o:?}");
    assert_eq!(
        o.retry_after_honoured + o.retry_after_violations,
        0,
        "no Retry-After sent"
    );
}

#[test]
fn errors_that_outlast_the_storm_are_never_recovered_and_publish_infinity() {
    let mut s = spec("stall", 5.0, 2.0, StormFault::Stall, 1.0);
    s.every = Some(secs(20.0));
    let sim = Sim::new(vec![s]);
    // Clean before; after the first occurrence every request fails until the second starts.
    for i in 0..100 {
        let t = f64::from(i) * 0.25;
        let send = sim.at(t);
        let w = sim.w.open(0, send);
        sim.w.attempt(0, send, &w, send + MS);
        let bad = (7.0..25.0).contains(&t);
        let how = if bad {
            ClientResult::Error
        } else {
            ClientResult::Ok
        };
        sim.w.client_done(0, send, &w, send + secs(0.02), (how, 1));
        sim.w.tick(send);
    }
    sim.ticks(25, 26);
    assert_eq!(sim.w.outcomes("stall")[0], Outcome::Never);
    assert_eq!(sim.w.recovery_k("stall"), Some(0));
    let g = sim.m.proxy_recovery_seconds.with_label_values(&["stall"]);
    assert_eq!(g.get(), f64::INFINITY);
    let r = sim.w.report();
    assert_eq!(r.storms.len(), 2, "the second occurrence started at 25 s");
    assert_eq!(
        (r.storms[0].recovered, r.storms[0].recovery_secs),
        (Some(false), None)
    );
}

#[test]
fn ghosts_are_counted_with_their_delay_even_after_their_id_left_the_table() {
    let sim = Sim::new(vec![]);
    let ids = RunIds { salt: 99 };
    let send = sim.at(1.0);
    let w = sim.w.open(0, send);
    sim.w.attempt(0, send, &w, send + MS);
    sim.w
        .client_done(0, send, &w, send + secs(0.5), (ClientResult::Cancelled, 1));
    // Still in the table: a ghost 1.5 s after the client gave up.
    sim.w.attempt(0, send, &w, send + secs(2.0));
    // Joined and gone from the table: the finished cache knows it (0.5 s → 3 s).
    sim.w.retire(ids.id(0), 0, send, &w);
    assert_eq!(
        sim.w.stray(ids.id(0), send + secs(3.0), 2),
        Stray::Finished(0)
    );
    // Older and forgotten: still this run's (request 1 of 2 issued), delay unknown.
    assert_eq!(sim.w.stray(ids.id(1), send, 2), Stray::Expired);
    assert_eq!(
        sim.w.stray(ids.id(7), send, 2),
        Stray::Foreign,
        "not issued yet"
    );
    assert_eq!(sim.w.stray(0x5eed, send, 2), Stray::Foreign);
    let r = sim.w.report();
    assert_eq!(
        (r.ghost_attempts.total, r.ghost_attempts.delay_unknown),
        (3, 1)
    );
    assert_eq!(r.ghost_attempts.delay.count, 2);
    assert!(
        (r.ghost_attempts.delay.max - 2.5).abs() < 0.03,
        "{:?}",
        r.ghost_attempts
    );
    assert_eq!(
        sim.m
            .proxy_ghost_attempts_total
            .with_label_values(&[crate::upstream::retries::EXPIRED])
            .get(),
        1
    );
    assert_eq!(r.amplification.overall, Some(4.0), "1 request, 4 attempts");
}

#[test]
fn filters_refuse_and_constant_faults_count_where_they_belong() {
    let mut only_msgs = spec("msgs", 0.0, 10.0, RETRY_429, 1.0);
    only_msgs.scenarios = Some(vec!["msgs".into()]);
    let mut anthropic = spec("anthropic", 0.0, 10.0, StormFault::Stall, 1.0);
    anthropic.apis = Some(vec!["anthropic"]);
    let refuse = spec("refuse", 20.0, 5.0, StormFault::Refuse, 1.0);
    let sim = Sim::new(vec![only_msgs, anthropic, refuse]);
    let t = sim.at(1.0);
    let chat = sim.w.open(0, t);
    assert_eq!(chat.storms, 0, "chat is in no storm's filter");
    assert!(sim
        .w
        .inject(Some((0, &chat)), "chat_completions", t)
        .is_none());
    let msgs = sim.w.open(1, t);
    assert_eq!(msgs.storms, 0b011);
    assert_eq!(
        sim.w.inject(Some((1, &msgs)), "messages", t),
        Some(Injected::Status {
            status: 429,
            retry_after: Some(1)
        }),
        "the first storm in file order"
    );
    // Not followed: only storms without a scenario filter, by endpoint.
    assert_eq!(sim.w.inject(None, "messages", t), Some(Injected::Stall));
    assert_eq!(sim.w.inject(None, "chat_completions", t), None);
    assert!(sim.w.accept(t), "refuse blows later");
    assert!(!sim.w.accept(sim.at(21.0)));
    sim.w.faulted(Some(&chat), Fault::Error, Some(1), t);
    sim.w.faulted(None, Fault::Truncate, None, t);
    assert!(chat.take_retry_after().is_some());
    let f = |storm: &str, kind: &str| {
        sim.m
            .upstream_faults_total
            .with_label_values(&[storm, kind])
            .get()
    };
    assert_eq!(
        (
            f("msgs", "status"),
            f("anthropic", "stall"),
            f("refuse", "refuse")
        ),
        (1, 1, 1)
    );
    assert_eq!((f("", "status"), f("", "truncate")), (1, 1));
    sim.w.tick(sim.at(22.0));
    let a = |s: &str| sim.m.upstream_storm_active.with_label_values(&[s]).get();
    assert_eq!((a("msgs"), a("refuse")), (0, 1));
}

#[test]
fn a_forever_storm_keeps_its_last_occurrences_and_totals() {
    let mut s = spec("tick", 0.5, 0.5, RETRY_429, 1.0);
    s.every = Some(secs(1.0));
    let sim = Sim::new(vec![s]);
    let n = state::MAX_KEPT as u32 + 36;
    for i in 0..n {
        sim.request(f64::from(i) + 0.6, 1, 0.01);
        sim.w.tick(sim.at(f64::from(i) + 0.7));
    }
    let r = sim.w.report();
    assert_eq!(r.storms.len(), state::MAX_KEPT);
    let t = &r.storm_totals[0];
    assert_eq!((t.occurrences, t.not_listed), (u64::from(n), 36));
    assert_eq!(t.client_requests, u64::from(n));
    assert_eq!(r.storms[0].start_secs, 36.5, "the oldest kept");
    let mut spans = Vec::new();
    sim.w
        .each_span(sim.at(f64::from(n)), 1000.0, |name, from, to| {
            spans.push((name.to_string(), from, to))
        });
    assert_eq!(spans.len(), state::MAX_KEPT);
    let (name, from, to) = spans.last().unwrap().clone();
    assert_eq!(name, "tick");
    assert!((to - from - 0.5).abs() < 1e-6);
    // Occurrence 99 ran over [99.5 s, 100 s): it ended just now.
    assert!((to - 1000.0).abs() < 1e-6, "{from} {to}");
}

#[test]
fn bits_lists_the_set_bits() {
    assert_eq!(bits(0).count(), 0);
    assert_eq!(bits(0b1010_0001).collect::<Vec<_>>(), [0, 5, 7]);
    assert_eq!(bits(1 << 63).collect::<Vec<_>>(), [63]);
    assert_eq!(bits(u64::MAX).count(), 64);
}

/// Another storm's requests are neither baseline nor recovery: a storm right after this one
/// does not delay its recovery, and this one does not spoil the next one's baseline.
#[test]
fn recovery_and_baseline_are_fair_weather_only() {
    let first = spec("first", 2.0, 2.0, RETRY_429, 1.0);
    let second = spec(
        "second",
        5.0,
        3.0,
        StormFault::Status {
            status: 500,
            retry_after: None,
        },
        1.0,
    );
    let sim = Sim::new(vec![first, second]);
    sim.load(0.0, 16.0, 0.1, 1);
    sim.ticks(0, 16);
    sim.w.end_load(secs(16.0));
    let r = sim.w.report();
    let get = |name: &str| r.storms.iter().find(|o| o.name == name).unwrap().clone();
    // [4 s, 9 s) holds the second storm's errors, but only fair weather is judged.
    assert_eq!(get("first").recovery_secs, Some(0.0));
    // Its baseline is [0 s, 2 s) and [4 s, 5 s): no error, so one would fail the band.
    assert_eq!(get("second").recovered, Some(true));
    assert_eq!(get("second").recovery_secs, Some(0.0));
}
