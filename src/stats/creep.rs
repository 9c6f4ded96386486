//! Creep measures: did the run get slower? Per scenario, the p99 of request duration, of time
//! to first token and (in a two-sided soak) of every stage of the time the proxy adds, in the
//! first full `creep_window` after the warm-up and in the last full one, and their ratio
//! (`soakd_creep_ratio{scenario,measure}`). The verdict on these numbers is
//! [`crate::verdict::creep`]'s.
//!
//! # Measures
//! `duration` (requests whose outcome is `ok`: a fast connect error or a timeout would move
//! the p99 by what failed, not by how slow answers got), `ttft` (streaming scenarios), and in
//! a two-sided soak one per stage of the time the proxy adds ([`AddedMeasure`]: the caller
//! passes `crate::upstream::stage::AddedStage::ALL`, `added_<stage>`, the streams-only stages
//! for streaming scenarios only). A sample belongs to the moment it
//! is recorded: when the request ends, when its first token arrives, when both sides of a
//! two-sided request are joined.
//!
//! # Windows and memory
//! [`super::window`]: the first window `[warmup, warmup + window)` is kept, the last full one
//! rolls in steps of `window / 6`; a measure is compared once both hold at least
//! [`MIN_WINDOW_SAMPLES`] samples and do not overlap. Each measure costs at most
//! [`BYTES_PER_MEASURE`] (106 KiB), allocated at its first sample: 213 KiB for a streaming
//! scenario (duration, TTFT), 106 KiB for a non-streaming one, and 638 KiB for a streaming
//! scenario of a two-sided soak (four added stages), whatever the run's length.
//!
//! # Time
//! The windows count from the start of the load ([`Creep::start`], after any `[run] idle`),
//! and the measures stop at its end ([`Creep::finish`], after the drain): a cooldown, the
//! summary and a linger see the windows as the load left them. The clock is tokio's
//! ([`tokio::time::Instant`]): the run's real clock, or a paused test clock. Recording takes
//! one uncontended lock of the scenario's measure.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use prometheus::{Gauge, GaugeVec};
use serde::Serialize;
use tokio::time::Instant;

pub use super::window::BYTES_PER_MEASURE;
use super::window::{count_p99, Span, WindowedHistogram, Windows, SUB_WINDOWS};

/// Fewest samples a window needs before its p99 is compared (with fewer, the p99 is the
/// largest value or next to it).
pub const MIN_WINDOW_SAMPLES: u64 = 100;

/// What a sample measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// End-to-end duration of a request whose outcome is `ok`.
    Duration,
    /// Time to first token.
    Ttft,
    /// One stage of the time the proxy adds: the index of its [`AddedMeasure`] in the list
    /// given to [`Creep::new`] (the stage's index in `AddedStage::ALL`).
    Added(usize),
}

impl Measure {
    fn index(self) -> usize {
        match self {
            Measure::Duration => 0,
            Measure::Ttft => 1,
            Measure::Added(i) => 2 + i,
        }
    }
}

/// A stage of the time the proxy adds, as a creep measure.
#[derive(Debug, Clone)]
pub struct AddedMeasure {
    /// The `measure` label: `added_<stage>`.
    pub name: String,
    /// Only streamed answers have it.
    pub streams_only: bool,
}

/// What the creep measures need to know of a scenario.
#[derive(Debug, Clone)]
pub struct CreepScenario {
    pub name: String,
    /// Its requests stream (it has a TTFT).
    pub stream: bool,
}

/// One measure of one scenario.
struct Track {
    name: String,
    hist: Mutex<WindowedHistogram>,
    /// `soakd_creep_ratio{scenario,measure}`, resolved when it first has a value.
    gauge: Mutex<Option<Gauge>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// When the load started and ended, each set once.
#[derive(Debug, Default)]
struct Clock {
    start: OnceLock<Instant>,
    end: OnceLock<Instant>,
}

impl Clock {
    /// Time since the start of the load, now (or at its end, once it ended); `None` before it
    /// started.
    fn since_start(&self) -> Option<Duration> {
        let start = *self.start.get()?;
        let now = self.end.get().copied().unwrap_or_else(Instant::now);
        Some(now.saturating_duration_since(start))
    }
}

/// The measures of one scenario, shared with its recorders.
pub struct ScenarioCreep {
    name: String,
    clock: Arc<Clock>,
    windows: Windows,
    tracks: Vec<Option<Track>>,
}

impl ScenarioCreep {
    /// Records one sample of `measure` now; ignored before the load starts, during the
    /// warm-up, after the load ended and for a measure the scenario does not have.
    pub fn record(&self, measure: Measure, d: Duration) {
        let Some(Some(t)) = self.tracks.get(measure.index()) else {
            return;
        };
        if self.clock.end.get().is_some() {
            return;
        }
        let Some(slot) = self.clock.since_start().and_then(|s| self.windows.slot(s)) else {
            return;
        };
        lock(&t.hist).record(slot, d);
    }
}

/// The run's creep measures.
pub struct Creep {
    windows: Windows,
    clock: Arc<Clock>,
    scenarios: Vec<Arc<ScenarioCreep>>,
    ratio: Option<GaugeVec>,
}

/// p99 and sample count of one window of one measure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowStat {
    pub count: u64,
    /// Seconds; 0 without samples.
    pub p99: f64,
}

/// One measure of one scenario in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreepMeasure {
    pub scenario: String,
    pub measure: String,
    /// The first window, once it is complete.
    pub first: Option<WindowStat>,
    /// The last full window, once there is one after the first.
    pub last: Option<WindowStat>,
    /// Last p99 ÷ first p99, once both windows hold [`MIN_WINDOW_SAMPLES`].
    pub ratio: Option<f64>,
}

/// The creep part of `/status` and the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreepReport {
    /// `creep_window`, seconds.
    pub window_secs: f64,
    /// How far the last window moves at a time, seconds.
    pub step_secs: f64,
    /// Where the first window lies.
    pub first: Span,
    /// Whether the first window is complete.
    pub first_complete: bool,
    /// The last full window, once there is one after the first.
    pub last: Option<Span>,
    /// Seconds into the run from which the two windows can be compared.
    pub comparable_from_secs: f64,
    pub measures: Vec<CreepMeasure>,
}

impl Creep {
    /// Measures for `scenarios` (in engine order) — `duration`, `ttft` when it streams, and
    /// each of `added` (empty unless the soak is two-sided) it has — in windows `windows`,
    /// from now on. `ratio` is the `soakd_creep_ratio` family (`None` in tests that export
    /// nothing).
    pub fn new(
        windows: Windows,
        scenarios: &[CreepScenario],
        added: &[AddedMeasure],
        ratio: Option<GaugeVec>,
    ) -> Self {
        let clock = Arc::new(Clock::default());
        let track = |name: String| {
            Some(Track {
                name,
                hist: Mutex::default(),
                gauge: Mutex::new(None),
            })
        };
        let scenarios = scenarios
            .iter()
            .map(|s| {
                let mut tracks: Vec<Option<Track>> = vec![track("duration".into())];
                tracks.push(if s.stream { track("ttft".into()) } else { None });
                tracks.extend(added.iter().map(|a| {
                    if s.stream || !a.streams_only {
                        track(a.name.clone())
                    } else {
                        None
                    }
                }));
                Arc::new(ScenarioCreep {
                    name: s.name.clone(),
                    clock: clock.clone(),
                    windows,
                    tracks,
                })
            })
            .collect();
        Creep {
            windows,
            clock,
            scenarios,
            ratio,
        }
    }

    /// The recorder of scenario `name`.
    pub fn scenario(&self, name: &str) -> Option<Arc<ScenarioCreep>> {
        self.scenarios.iter().find(|s| s.name == name).cloned()
    }

    /// Where the windows lie.
    pub fn windows(&self) -> Windows {
        self.windows
    }

    /// `(scenario, measure)` of every measure, in report order (the creep thresholds).
    pub fn names(&self) -> Vec<(String, String)> {
        self.scenarios
            .iter()
            .flat_map(|s| {
                s.tracks
                    .iter()
                    .flatten()
                    .map(|t| (s.name.clone(), t.name.clone()))
            })
            .collect()
    }

    /// Heap bytes the windows hold now.
    pub fn heap_bytes(&self) -> usize {
        self.scenarios
            .iter()
            .flat_map(|s| s.tracks.iter().flatten())
            .map(|t| lock(&t.hist).heap_bytes())
            .sum()
    }

    /// The load starts now: the windows count from here (only the first call counts).
    pub fn start(&self) {
        let _ = self.clock.start.set(Instant::now());
    }

    /// The load ended now (drain included): later samples are ignored and the windows stay as
    /// they are (only the first call counts).
    pub fn finish(&self) {
        let _ = self.clock.end.set(Instant::now());
    }

    /// The measures now (at the end of the load, once it ended), with every window moved on
    /// to that moment; sets (or removes) each measure's `soakd_creep_ratio` gauge to match.
    pub fn report(&self) -> CreepReport {
        let slot = self.clock.since_start().and_then(|s| self.windows.slot(s));
        let mut measures = Vec::new();
        for s in &self.scenarios {
            for t in s.tracks.iter().flatten() {
                let (first, last) = {
                    let mut h = lock(&t.hist);
                    if let Some(slot) = slot {
                        h.advance(slot);
                    }
                    let first = h.first_complete().then(|| {
                        let (count, p99) = h.first().map_or((0, 0.0), count_p99);
                        WindowStat { count, p99 }
                    });
                    let last = h.last().map(|l| {
                        let (count, p99) = count_p99(&l);
                        WindowStat { count, p99 }
                    });
                    (first, last)
                };
                let ratio = ratio(first, last);
                self.publish(&s.name, t, ratio);
                measures.push(CreepMeasure {
                    scenario: s.name.clone(),
                    measure: t.name.clone(),
                    first,
                    last,
                    ratio,
                });
            }
        }
        CreepReport {
            window_secs: self.windows.window.as_secs_f64(),
            step_secs: self.windows.slot_len().as_secs_f64(),
            first: self.windows.first(),
            first_complete: slot.is_some_and(|s| s >= SUB_WINDOWS),
            last: slot.and_then(|s| self.windows.last(s)),
            comparable_from_secs: self.windows.needed().as_secs_f64(),
            measures,
        }
    }

    fn publish(&self, scenario: &str, t: &Track, ratio: Option<f64>) {
        let Some(family) = &self.ratio else {
            return;
        };
        let mut g = lock(&t.gauge);
        match (ratio, g.as_ref()) {
            (Some(r), Some(gauge)) => gauge.set(r),
            (Some(r), None) => {
                let gauge = family.with_label_values(&[scenario, &t.name]);
                gauge.set(r);
                *g = Some(gauge);
            }
            (None, Some(_)) => {
                let _ = family.remove_label_values(&[scenario, &t.name]);
                *g = None;
            }
            (None, None) => {}
        }
    }
}

impl CreepReport {
    /// The summary's creep block: the two windows, then one row per measure with each
    /// window's p99 and sample count and the ratio; one line while there is no last window.
    pub fn text(&self) -> String {
        use crate::units::{fmt_elapsed, fmt_secs};
        use std::fmt::Write;
        let span = |s: &Span| format!("{}–{}", fmt_elapsed(s.from_secs), fmt_elapsed(s.to_secs));
        let window = crate::units::fmt_duration(Duration::from_secs_f64(self.window_secs));
        let Some(last) = &self.last else {
            return format!(
                "  creep (p99 per {window} window): not compared: the first window is {}, the \
                 last full one lies after it from {} into the run\n",
                span(&self.first),
                fmt_elapsed(self.comparable_from_secs)
            );
        };
        let mut out = format!(
            "  creep (p99 per {window} window): first {}, last {}\n",
            span(&self.first),
            span(last)
        );
        let name_w = self
            .measures
            .iter()
            .map(|m| m.scenario.len())
            .max()
            .unwrap_or(0)
            .max(8);
        let measure_w = self
            .measures
            .iter()
            .map(|m| m.measure.len())
            .max()
            .unwrap_or(0)
            .max(7);
        let cell = |w: &Option<WindowStat>| {
            w.map_or_else(
                || "-".to_string(),
                |w| format!("{:>9} n={:<7}", fmt_secs(w.p99), w.count),
            )
        };
        let _ = writeln!(
            out,
            "    {:<name_w$}  {:<measure_w$}  {:<19}  {:<19}  ratio",
            "scenario", "measure", "first", "last"
        );
        for m in &self.measures {
            let _ = writeln!(
                out,
                "    {:<name_w$}  {:<measure_w$}  {:<19}  {:<19}  {}",
                m.scenario,
                m.measure,
                cell(&m.first),
                cell(&m.last),
                m.ratio.map_or("-".to_string(), |r| format!("×{r:.2}")),
            );
        }
        out
    }
}

/// Last p99 ÷ first p99, when both windows hold enough samples.
fn ratio(first: Option<WindowStat>, last: Option<WindowStat>) -> Option<f64> {
    let (f, l) = (first?, last?);
    (f.count >= MIN_WINDOW_SAMPLES && l.count >= MIN_WINDOW_SAMPLES && f.p99 > 0.0)
        .then(|| l.p99 / f.p99)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenarios() -> Vec<CreepScenario> {
        vec![
            CreepScenario {
                name: "chat".into(),
                stream: true,
            },
            CreepScenario {
                name: "embed".into(),
                stream: false,
            },
        ]
    }

    fn windows() -> Windows {
        Windows {
            warmup: Duration::from_secs(5),
            window: Duration::from_secs(60),
        }
    }

    /// The stages as the app passes them (the upstream's stage list).
    fn added() -> Vec<AddedMeasure> {
        use crate::upstream::report::{streams_only, ADDED_STAGES};
        ADDED_STAGES
            .iter()
            .map(|s| AddedMeasure {
                name: format!("added_{s}"),
                streams_only: streams_only(s),
            })
            .collect()
    }

    #[test]
    fn measures_follow_the_scenario_and_the_stage_list() {
        use crate::upstream::report::{streams_only, ADDED_STAGES};
        let c = Creep::new(windows(), &scenarios(), &[], None);
        let names = c.names();
        assert_eq!(
            names,
            [
                ("chat", "duration"),
                ("chat", "ttft"),
                ("embed", "duration")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        let two = Creep::new(windows(), &scenarios(), &added(), None);
        let n: Vec<String> = two.names().into_iter().map(|(s, m)| s + ":" + &m).collect();
        // Every stage of the one list, streams-only stages for the streaming scenario only.
        let mut want = vec!["chat:duration".to_string(), "chat:ttft".into()];
        want.extend(ADDED_STAGES.iter().map(|s| format!("chat:added_{s}")));
        want.push("embed:duration".into());
        want.extend(
            ADDED_STAGES
                .iter()
                .filter(|s| !streams_only(s))
                .map(|s| format!("embed:added_{s}")),
        );
        assert_eq!(n, want);
        assert!(want.contains(&"chat:added_first_token".to_string()));
        assert!(want.contains(&"embed:added_response".to_string()));
        assert!(!want.contains(&"embed:added_chunk".to_string()));
    }

    fn family() -> (prometheus::Registry, GaugeVec) {
        let reg = prometheus::Registry::new();
        let family = GaugeVec::new(
            prometheus::Opts::new("soakd_creep_ratio", "test"),
            &["scenario", "measure"],
        )
        .unwrap();
        reg.register(Box::new(family.clone())).unwrap();
        (reg, family)
    }

    /// `(scenario, measure, value)` of every exported ratio.
    fn exported(reg: &prometheus::Registry) -> Vec<(String, String, f64)> {
        reg.gather()
            .iter()
            .flat_map(|f| f.get_metric().to_vec())
            .map(|m| {
                let l = m.get_label();
                (
                    l[1].value().to_string(),
                    l[0].value().to_string(),
                    m.get_gauge().get_value(),
                )
            })
            .collect()
    }

    /// On tokio's paused clock: a TTFT that grows by 20 ms a minute is later in the last
    /// window by what the drift says; a steady duration is not; the warm-up is not counted;
    /// the gauges follow.
    #[tokio::test(start_paused = true)]
    async fn a_drift_shows_in_the_ratio_and_a_steady_measure_does_not() {
        let (reg, family) = family();
        let c = Creep::new(windows(), &scenarios(), &[], Some(family));
        let chat = c.scenario("chat").unwrap();
        chat.record(Measure::Ttft, Duration::from_secs(60)); // before the load: ignored
        tokio::time::advance(Duration::from_secs(30)).await; // an idle stretch
        c.start();
        let tick = Duration::from_millis(100);
        let mut t = Duration::ZERO;
        while t < Duration::from_secs(150) {
            // TTFT: 50 ms + 20 ms per minute of run time; duration: 100 ms flat.
            let ttft = Duration::from_secs_f64(0.050 + 0.020 * t.as_secs_f64() / 60.0);
            chat.record(Measure::Ttft, ttft);
            chat.record(Measure::Duration, Duration::from_millis(100));
            // A huge value inside the warm-up would dominate the first window if counted.
            if t < Duration::from_secs(5) {
                chat.record(Measure::Duration, Duration::from_secs(30));
            }
            if t == Duration::from_secs(120) {
                // Before warmup + 2 windows nothing is compared, and nothing is exported.
                let r = c.report();
                assert!(r.first_complete && r.last.is_none());
                assert!(r.measures.iter().all(|m| m.ratio.is_none()));
                assert!(exported(&reg).is_empty());
            }
            tokio::time::advance(tick).await;
            t += tick;
        }
        let r = c.report();
        assert_eq!(
            r.first,
            Span {
                from_secs: 5.0,
                to_secs: 65.0
            }
        );
        // 150 s in, slot 14 (10 s slots from 5 s) is in progress: the last window is 85..145.
        assert_eq!(
            r.last,
            Some(Span {
                from_secs: 85.0,
                to_secs: 145.0
            })
        );
        assert_eq!((r.window_secs, r.step_secs), (60.0, 10.0));
        assert_eq!(r.comparable_from_secs, 125.0);
        let get = |m: &str| {
            r.measures
                .iter()
                .find(|x| x.scenario == "chat" && x.measure == m)
                .unwrap()
        };
        let ttft = get("ttft");
        let (f, l) = (ttft.first.unwrap(), ttft.last.unwrap());
        assert_eq!((f.count, l.count), (600, 600));
        // The p99 of each window is the value near its end: 64.4 s and 144.4 s in.
        let at = |secs: f64| 0.050 + 0.020 * secs / 60.0;
        assert!((f.p99 - at(64.4)).abs() < at(64.4) * 0.01, "{f:?}");
        assert!((l.p99 - at(144.4)).abs() < at(144.4) * 0.01, "{l:?}");
        assert_eq!(ttft.ratio, Some(l.p99 / f.p99));
        assert!(ttft.ratio.unwrap() > 1.3, "{ttft:?}");
        let dur = get("duration");
        assert_eq!(
            dur.first.unwrap().count,
            600,
            "warm-up samples are not counted"
        );
        assert!((dur.ratio.unwrap() - 1.0).abs() < 0.01, "{dur:?}");
        // The embeddings scenario had no samples: windows complete but empty, no ratio.
        let embed = r.measures.iter().find(|m| m.scenario == "embed").unwrap();
        assert_eq!(embed.first, Some(WindowStat { count: 0, p99: 0.0 }));
        assert_eq!(embed.ratio, None);
        // One gauge per measure with a ratio.
        let mut g = exported(&reg);
        g.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(
            g,
            [
                ("chat".into(), "duration".into(), dur.ratio.unwrap()),
                ("chat".into(), "ttft".into(), ttft.ratio.unwrap())
            ]
        );
        assert_eq!(c.heap_bytes(), 2 * BYTES_PER_MEASURE, "chat's two measures");
        assert_eq!(
            r.text(),
            "  creep (p99 per 1m window): first 0m05s–1m05s, last 1m25s–2m25s
    scenario  measure   first                last                 ratio
    chat      duration    100.4ms n=600        100.4ms n=600      ×1.00
    chat      ttft         71.7ms n=600         98.3ms n=600      ×1.37
    embed     duration          - n=0                - n=0        -
"
        );
        // The load ends: a cooldown's silence and later samples change nothing.
        c.finish();
        chat.record(Measure::Ttft, Duration::from_secs(9));
        tokio::time::advance(Duration::from_secs(300)).await;
        assert_eq!(c.report(), r);
    }

    #[tokio::test(start_paused = true)]
    async fn few_samples_give_no_ratio_and_a_silent_stretch_removes_the_gauge() {
        let (reg, family) = family();
        let c = Creep::new(windows(), &scenarios(), &[], Some(family));
        c.start();
        let (chat, embed) = (c.scenario("chat").unwrap(), c.scenario("embed").unwrap());
        tokio::time::advance(Duration::from_secs(5)).await;
        for _ in 0..200 {
            embed.record(Measure::Duration, Duration::from_millis(10));
            // Not a measure of a non-streaming scenario: ignored.
            embed.record(Measure::Ttft, Duration::from_millis(10));
        }
        // 99 samples in chat's first window: too few for a p99.
        for _ in 0..99 {
            chat.record(Measure::Duration, Duration::from_millis(10));
        }
        tokio::time::advance(Duration::from_secs(60)).await;
        for _ in 0..200 {
            embed.record(Measure::Duration, Duration::from_millis(20));
            chat.record(Measure::Duration, Duration::from_millis(20));
        }
        tokio::time::advance(Duration::from_secs(60)).await;
        let r = c.report();
        let early = Creep::new(windows(), &scenarios(), &[], None).report();
        assert_eq!(
            early.text(),
            "  creep (p99 per 1m window): not compared: the first window is 0m05s–1m05s, the last \
             full one lies after it from 2m05s into the run\n"
        );
        let find = |s: &str| {
            r.measures
                .iter()
                .find(|m| m.scenario == s && m.measure == "duration")
                .unwrap()
                .clone()
        };
        let chat_d = find("chat");
        assert_eq!(chat_d.first.unwrap().count, 99);
        assert_eq!(chat_d.last.unwrap().count, 200);
        assert_eq!(chat_d.ratio, None);
        let embed_d = find("embed");
        assert!((embed_d.ratio.unwrap() - 2.0).abs() < 0.02, "{embed_d:?}");
        assert_eq!(exported(&reg).len(), 1, "embed's duration only");
        // A minute of silence: the last window is empty, its gauge goes away.
        tokio::time::advance(Duration::from_secs(70)).await;
        let r = c.report();
        assert!(r.measures.iter().all(|m| m.ratio.is_none()));
        assert!(exported(&reg).is_empty());
    }
}
