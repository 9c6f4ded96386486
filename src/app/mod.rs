//! `soakd run`: build everything from a validated [`Config`], run until the end of the
//! duration or a stop, then summarise and map the verdict to an exit code.
//!
//! Build, then run: [`App::build`] binds the admin port, starts the embedded mock when no
//! target is configured, builds the HTTP client, the engine and the monitor, and can fail
//! early (exit 2); [`App::run`] only spawns and waits. The admin server, the monitor and the
//! once-a-second ticker (recent rate, progress line, live thresholds) run on a separate OS
//! thread with its own runtime, off the load path.
//!
//! A run goes through the states of [`crate::phases`]: idle (sampling only), load, drain
//! (the engine's grace), cooldown (sampling only), then the summary — sampling, the ticker and
//! the live thresholds stop there, the final thresholds are set, the summary is printed and
//! written — and the linger, during which the admin server still serves the final state.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::engine::{Engine, EngineParts};
use crate::exit;
use crate::metrics::Metrics;
use crate::monitor::settings::{MonitorSettings, ProcessSpec, Source, WATCH_PID_NAME};
use crate::monitor::{Monitor, Resource};
use crate::phases::{RunPhases, RunState, Shutdown};
use crate::report::{RunView, RunViewParts, Summary};
use crate::series::{LiveParts, LiveSeries};
use crate::signals::LoadSignals;
use crate::stats::creep::{AddedMeasure, Creep, CreepScenario};
use crate::stats::window::Windows;
use crate::stats::Stats;
use crate::upstream::report::{streams_only, ADDED_STAGES};
use crate::upstream::storm::ScenarioShape;
use crate::upstream::{Tracker, Upstream};
use crate::verdict::{
    creep_threshold_name, leak_threshold_name, released_threshold_name, ExitVerdict,
};
use crate::workload::ScenarioList;

mod side;

use side::{spawn_side_thread, SideParts};

/// A failure that stops the run before it produced a verdict.
///
/// Each message is whole (it names the cause, e.g. the OS error of a bind), so no variant
/// also returns that cause as its `source()`: a chain printed as `{:#}` says it once.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot bind the admin server on {addr}: {error}")]
    AdminBind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("cannot start the embedded mock: {0}")]
    Mock(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(crate::client::ClientError),
    #[error("cannot build the engine: {0}")]
    Engine(crate::engine::EngineError),
    #[error("cannot build the monitor: {0}")]
    Monitor(crate::monitor::MonitorError),
    #[error("metrics registry: {0}")]
    Metrics(prometheus::Error),
    #[error("cannot start the admin thread: {0}")]
    Thread(std::io::Error),
    #[error("{0}")]
    Upstream(crate::upstream::UpstreamError),
}

/// `From` for the variants that wrap another error whole (see [`AppError`]).
macro_rules! app_error_from {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        $(impl From<$ty> for AppError {
            fn from(e: $ty) -> Self {
                AppError::$variant(e)
            }
        })*
    };
}

app_error_from!(
    Client(crate::client::ClientError),
    Engine(crate::engine::EngineError),
    Monitor(crate::monitor::MonitorError),
    Metrics(prometheus::Error),
    Upstream(crate::upstream::UpstreamError),
);

/// The embedded mock, running as a child process.
struct MockChild {
    child: tokio::process::Child,
    addr: SocketAddr,
}

impl MockChild {
    /// Starts `soakd mock` on a free loopback port and reads the port it bound.
    async fn start(config: &Config) -> Result<MockChild, AppError> {
        let exe = std::env::current_exe().map_err(|e| AppError::Mock(e.to_string()))?;
        let mut args = config.mock.clone();
        args.listen = "127.0.0.1:0".parse().expect("a literal address");
        let mut child = tokio::process::Command::new(exe)
            .arg("mock")
            .args(args.to_args())
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| AppError::Mock(e.to_string()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .map_err(|_| AppError::Mock("no address line within 10 s".into()))?
            .map_err(|e| AppError::Mock(e.to_string()))?
            .ok_or_else(|| AppError::Mock("the mock exited before listening".into()))?;
        let addr = line
            .rsplit("http://")
            .next()
            .and_then(|a| a.trim().parse().ok())
            .ok_or_else(|| AppError::Mock(format!("unexpected first line {line:?}")))?;
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(MockChild { child, addr })
    }

    fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGTERM, then SIGKILL if it has not exited within 5 s.
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) with a pid we spawned and still own.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// A built run, ready to start.
pub struct App {
    config: Config,
    metrics: Arc<Metrics>,
    view: Arc<RunView>,
    engine: Engine,
    monitor: Arc<Monitor>,
    series: Arc<LiveSeries>,
    phases: Arc<RunPhases>,
    /// The creep windows, counted over the load (unless `creep_window = "off"`).
    creep: Option<Arc<Creep>>,
    admin: std::net::TcpListener,
    mock: Option<MockChild>,
    upstream: Option<Upstream>,
    /// The two-sided soak's tracker, while `[upstream]` is on.
    tracker: Option<Arc<Tracker>>,
}

impl App {
    /// Builds every part; fails before any load is sent.
    pub async fn build(mut config: Config) -> Result<App, AppError> {
        for w in config.warnings() {
            tracing::warn!("{w}");
        }
        let admin = std::net::TcpListener::bind(config.admin_listen).map_err(|error| {
            AppError::AdminBind {
                addr: config.admin_listen,
                error,
            }
        })?;
        admin
            .set_nonblocking(true)
            .map_err(|error| AppError::AdminBind {
                addr: config.admin_listen,
                error,
            })?;
        let metrics = Arc::new(Metrics::new(
            &config.run.run_id,
            &config.run.shard_index.to_string(),
        )?);
        let (target, mock) = match &config.target.url {
            Some(u) => (u.clone(), None),
            None => {
                let mock = MockChild::start(&config).await?;
                let url = url::Url::parse(&format!("http://{}", mock.addr))
                    .map_err(|e| AppError::Mock(e.to_string()))?;
                // Watch the mock as the target, unless the config names a target process.
                if let Some(pid) = mock.pid() {
                    let m = &mut config.monitor;
                    if !m.processes.iter().any(|p| p.name == WATCH_PID_NAME) {
                        m.processes.push(ProcessSpec {
                            name: WATCH_PID_NAME.into(),
                            source: Source::Pid(pid),
                            fail_on_leak: true,
                            include_children: false,
                        });
                    }
                }
                tracing::info!(addr = %mock.addr, pid = mock.pid().unwrap_or_default(), "started the embedded mock");
                (url, Some(mock))
            }
        };
        let client = crate::client::build_http_client(&config.client)?;
        // Creep is measured over the load: its first window starts `[monitor] warmup` after
        // the load does (App::run starts and finishes the clock).
        let creep = config.thresholds.creep_window.map(|window| {
            let scenarios: Vec<CreepScenario> = config
                .scenarios
                .iter()
                .map(|s| CreepScenario {
                    name: s.name.clone(),
                    stream: s.stream,
                })
                .collect();
            // The stages of the time the proxy adds, when the soak is two-sided.
            let added: Vec<AddedMeasure> = match config.upstream {
                Some(_) => ADDED_STAGES
                    .iter()
                    .map(|s| AddedMeasure {
                        name: format!("added_{s}"),
                        streams_only: streams_only(s),
                    })
                    .collect(),
                None => Vec::new(),
            };
            Arc::new(Creep::new(
                Windows {
                    warmup: config.monitor.warmup,
                    window,
                },
                &scenarios,
                &added,
                Some(metrics.creep_ratio.clone()),
            ))
        });
        let (two_sided, upstream) = match &config.upstream {
            None => (None, None),
            Some(u) => {
                let names: Vec<String> = config.scenarios.iter().map(|s| s.name.clone()).collect();
                let mut tracker = Tracker::new(
                    &metrics,
                    &names,
                    u.max_tracked,
                    config.client.stream_timeout + u.orphan_after,
                    u.orphan_after,
                );
                if let Some((name, scale)) = &u.overhead_header {
                    tracker = tracker.with_overhead_header(name.clone(), *scale);
                }
                tracker = tracker.with_unmeasurable(crate::upstream::measure::unmeasurable(
                    config.mock.chunk_delay,
                    config.mock.chunks,
                ));
                if !u.storms.is_empty() {
                    let shapes: Vec<ScenarioShape> = config
                        .scenarios
                        .iter()
                        .map(|s| ScenarioShape {
                            name: s.name.clone(),
                            api: s.api.as_str(),
                            stream: s.stream,
                        })
                        .collect();
                    tracker = tracker.with_storms(
                        &metrics,
                        &shapes,
                        u.storms.clone(),
                        config.monitor.burst_settle,
                    );
                }
                if let Some(c) = &creep {
                    tracker = tracker.with_creep(c);
                }
                let tracker = Arc::new(tracker);
                let up = Upstream::start(u, config.mock.clone(), tracker.clone())?;
                tracing::info!(
                    addr = %up.addr(),
                    "upstream listening on http://{} (point the proxy's provider here)",
                    up.addr()
                );
                (Some(tracker), Some(up))
            }
        };
        let stats = Arc::new(match &creep {
            Some(c) => Stats::with_creep(c.clone()),
            None => Stats::new(),
        });
        let signals = Arc::new(LoadSignals::for_scenarios(
            config.scenarios.iter().map(|s| s.name.clone()).collect(),
        ));
        let engine = Engine::build(EngineParts {
            client,
            settings: config.client.clone(),
            target: target.clone(),
            api_key: config
                .target
                .api_key
                .as_ref()
                .map(|k| k.expose().to_string()),
            scenarios: config.scenarios.clone(),
            plan: config.plan.clone(),
            duration: config.run.duration,
            max_in_flight: config.max_in_flight.get() as usize,
            mix_variation: config.mix_variation.period(),
            seed: config.run.seed,
            trace_requests: config.otlp.is_some(),
            metrics: metrics.clone(),
            stats: stats.clone(),
            signals: signals.clone(),
            two_sided: two_sided.clone(),
        })?;
        let phases = Arc::new(RunPhases::new(&metrics));
        let monitor = Arc::new(
            Monitor::new(
                MonitorSettings {
                    load_period: config.plan.load_period(),
                    ..config.monitor.clone()
                },
                metrics.clone(),
                signals.clone(),
            )?
            .with_phases(phases.clone()),
        );
        let series = Arc::new(LiveSeries::new(LiveParts {
            stats: stats.clone(),
            signals: signals.clone(),
            scenarios: engine.scenario_handles(),
            monitor: Some(monitor.clone()),
            phases: Some(phases.clone()),
            spans: two_sided
                .iter()
                .map(|t| Arc::new(StormSpans(t.clone())) as Arc<dyn crate::series::SpanSource>)
                .collect(),
        }));
        let view = Arc::new(RunView::new(RunViewParts {
            run_id: config.run.run_id.clone(),
            shard: config.run.shard_index,
            shards: config.run.shards.get(),
            target: redact_url(&target),
            metrics: metrics.clone(),
            stats,
            state: engine.state(),
            signals,
            scenarios: engine.scenario_handles(),
            monitor: Some(monitor.clone()),
            phases: Some(phases.clone()),
            proxy: two_sided
                .as_ref()
                .zip(upstream.as_ref())
                .map(|(t, u)| (t.clone(), u.addr().to_string())),
        }));
        for name in config.thresholds.names() {
            metrics.threshold_passing.with_label_values(&[name]).set(1);
        }
        if config.thresholds.leak_verdicts {
            // soakd itself is not in the list: its leak makes the soak suspect, not failed.
            for p in config.monitor.processes.iter().filter(|p| p.fail_on_leak) {
                for r in Resource::ALL {
                    let name = leak_threshold_name(&p.name, r.as_str());
                    metrics.threshold_passing.with_label_values(&[&name]).set(1);
                }
            }
        }
        if config.thresholds.min_released_share.is_some() {
            for p in config.monitor.processes.iter().filter(|p| p.fail_on_leak) {
                let name = released_threshold_name(&p.name);
                metrics.threshold_passing.with_label_values(&[&name]).set(1);
            }
        }
        if let (Some(c), Some(_)) = (&creep, &config.thresholds.creep) {
            for (scenario, measure) in c.names() {
                let name = creep_threshold_name(&scenario, &measure);
                metrics.threshold_passing.with_label_values(&[&name]).set(1);
            }
        }
        Ok(App {
            config,
            metrics,
            view,
            engine,
            monitor,
            series,
            phases,
            creep,
            admin,
            mock,
            upstream,
            tracker: two_sided,
        })
    }

    /// The bound admin address (useful with port 0).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.local_addr().ok()
    }

    /// Runs through the run's states ([`crate::phases`]): idle, load (until the end of the
    /// duration or a stop), drain, cooldown; then summarises (the summary is printed, and
    /// written where configured) and lingers. Returns the summary.
    pub async fn run(self, shutdown: Arc<Shutdown>) -> Result<Summary, AppError> {
        let stop = shutdown.stop().clone();
        let sample_stop = CancellationToken::new();
        let admin_stop = CancellationToken::new();
        if let Ok(addr) = self.admin.local_addr() {
            tracing::info!(%addr, "admin server listening on http://{addr}");
        }
        let (sampling_done, sampling_ended) = tokio::sync::oneshot::channel();
        let side = spawn_side_thread(SideParts {
            admin: self.admin,
            view: self.view.clone(),
            monitor: self.monitor,
            series: self.series.clone(),
            thresholds: self.config.thresholds.clone(),
            metrics: self.metrics.clone(),
            progress: self.config.log.progress_interval,
            stop_run: stop.clone(),
            shutdown: sample_stop.clone(),
            admin_stop: admin_stop.clone(),
            sampling_done,
        })?;
        let r = &self.config.run;
        tracing::info!(
            run_id = %r.run_id,
            shard = r.shard_index,
            shards = r.shards.get(),
            target = %self.view.target(),
            duration = %r.duration.map_or("forever".to_string(), |d| humantime::format_duration(d).to_string()),
            idle = %humantime::format_duration(r.idle),
            cooldown = %humantime::format_duration(r.cooldown),
            linger = %humantime::format_duration(r.linger),
            plan = %self.config.plan,
            scenarios = %ScenarioList(&self.config.scenarios),
            "soak started"
        );
        let phases = &self.phases;
        if !r.idle.is_zero() {
            phases.enter(RunState::Idle);
            crate::phases::wait_unless_stopped(r.idle, &stop).await;
        }
        phases.enter(RunState::Load);
        // Storms count from the start of load.
        let tracker = self.tracker.clone();
        if let Some(t) = &tracker {
            t.weather().start_load(std::time::Instant::now());
        }
        if let Some(c) = &self.creep {
            c.start();
        }
        // The engine cancels its own token when the plan ends; a stop cancels it too.
        let load_stop = stop.child_token();
        let drain = async {
            load_stop.cancelled().await;
            phases.enter(RunState::Drain);
        };
        let (sending, ()) = tokio::join!(self.engine.run(load_stop.clone(), r.grace), drain);
        if let Some(t) = &tracker {
            t.weather().end_load(sending);
        }
        // Still draining: the run ends when both sides have.
        if let Some(t) = &self.tracker {
            settle_upstream_sides(t).await;
        }
        if let Some(c) = &self.creep {
            c.finish();
        }
        if !r.cooldown.is_zero() && !stop.is_cancelled() {
            phases.enter(RunState::Cooldown);
            crate::phases::wait_unless_stopped(r.cooldown, &stop).await;
        }
        // Sampling and the live thresholds end here: the summary and the linger show the
        // final state.
        sample_stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), sampling_ended).await;
        tracing::info!("load finished; summarising");
        let mut snapshot = self.view.snapshot();
        let results = self
            .config
            .thresholds
            .evaluate(&snapshot.verdict_inputs(), true);
        for r in &results {
            self.metrics
                .threshold_passing
                .with_label_values(&[r.name.as_str()])
                .set(i64::from(r.passed));
        }
        self.view.set_thresholds(results.clone());
        let verdict = ExitVerdict::from_results(&results);
        snapshot.thresholds = results;
        let (verdict, code) = match verdict {
            ExitVerdict::Fail => ("fail", exit::FAIL),
            ExitVerdict::Pass => ("pass", exit::PASS),
        };
        let summary = Summary::new(snapshot, sending, verdict, i32::from(code));
        self.series.finish(summary.snapshot.monitor.as_ref());
        if let Some(path) = &self.config.run.report_html {
            let html = crate::page::report::html(&self.series.to_json(), &summary);
            match crate::page::report::write(path, &html) {
                Ok(()) => tracing::info!(path = %path.display(), "wrote the HTML report"),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "cannot write the HTML report")
                }
            }
        }
        if let Some(u) = self.upstream {
            u.stop().await;
        }
        if let Some(m) = self.mock {
            m.stop().await;
        }
        if let Some(path) = &self.config.run.summary_json {
            match serde_json::to_vec_pretty(&summary) {
                Ok(json) => {
                    if let Err(e) = std::fs::write(path, json) {
                        tracing::error!(path = %path.display(), error = %e, "cannot write the summary JSON");
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot serialise the summary"),
            }
        }
        print_summary(&summary);
        let linger = self.config.run.linger;
        if !linger.is_zero() {
            phases.enter(RunState::Linger);
            tracing::info!(
                linger = %humantime::format_duration(linger),
                verdict = summary.verdict,
                "lingering: /metrics, /status and /series keep the final state (signal to exit now)"
            );
            shutdown.linger(linger).await;
        }
        admin_stop.cancel();
        let _ = tokio::task::spawn_blocking(move || side.join()).await;
        Ok(summary)
    }
}

/// The storms on the two-sided soak's upstream, as `storm` spans on the page's charts.
struct StormSpans(Arc<Tracker>);

impl crate::series::SpanSource for StormSpans {
    fn spans(&self, now: std::time::Instant, now_unix: f64, out: &mut Vec<crate::series::Span>) {
        self.0.weather().each_span(now, now_unix, |name, from, to| {
            out.push(crate::series::Span {
                kind: "storm",
                label: name.to_string().into(),
                from,
                to: Some(to),
            })
        });
    }
}

/// After the load, before the summary: the run ends when both sides have. Waits until every
/// upstream side of a finished client request has ended or has its fate (at most
/// `orphan_after`, at once when nothing is pending), so `joined` counts every request the
/// upstream received and every give-up has a fate.
async fn settle_upstream_sides(tracker: &Tracker) {
    let (waited, left) = tracker.settle().await;
    if left > 0 {
        tracing::info!(
            waited = ?waited,
            open = left,
            "upstream answers still open after orphan_after; summarising without them"
        );
    } else {
        tracing::debug!(waited = ?waited, "every upstream side ended");
    }
}

/// Prints the summary to stdout.
pub fn print_summary(summary: &Summary) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(summary.to_text().as_bytes());
    let _ = out.flush();
}

fn redact_url(u: &url::Url) -> String {
    let mut u = u.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("redacted"));
    }
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chain as `{:#}` prints it (anyhow's alternate form, what `soakd run` logs): each
    /// error's message, then its sources', joined by ": ".
    fn chain(e: &dyn std::error::Error) -> String {
        let mut out = e.to_string();
        let mut next = e.source();
        while let Some(s) = next {
            out.push_str(": ");
            out.push_str(&s.to_string());
            next = s.source();
        }
        out
    }

    /// Issue 27, item 3: `… Address already in use (os error 98): Address already in use (os
    /// error 98)` said the OS error twice.
    #[test]
    fn a_bind_error_says_the_os_error_once() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        let taken = || std::net::TcpListener::bind(addr).unwrap_err();
        let os = taken().to_string();
        assert!(os.contains("os error"), "{os}");
        let errors = [
            AppError::AdminBind {
                addr,
                error: taken(),
            },
            AppError::from(crate::upstream::UpstreamError::Bind {
                addr,
                error: taken(),
            }),
            AppError::from(crate::client::ClientError::CaFileRead {
                path: "/nonexistent/ca.pem".into(),
                error: std::fs::read("/nonexistent/ca.pem").unwrap_err(),
            }),
            AppError::from(crate::engine::EngineError::Request {
                scenario: "chat".into(),
                error: crate::client::ClientError::Header {
                    name: "x y".into(),
                    reason: "not a valid header name",
                },
            }),
        ];
        for e in &errors {
            let text = chain(e);
            let once = ["(os error", "not a valid header name"]
                .iter()
                .map(|n| text.matches(n).count())
                .sum::<usize>();
            assert_eq!(once, 1, "{text}");
        }
        assert_eq!(
            chain(&errors[1]),
            format!("cannot listen for the upstream on {addr}: {os}")
        );
        assert_eq!(
            chain(&errors[0]),
            format!("cannot bind the admin server on {addr}: {os}")
        );
    }
}
