//! The `soakd verdict` command: arguments, the wait for the shards, and the exit code.
//!
//! # Arguments
//! `--prometheus URL` (or the environment variable `SOAKD_PROMETHEUS_URL`), `--run-id ID`
//! (the shards' `[run] run_id`: a Kubernetes Job's name), `--config FILE` (its `[thresholds]`
//! are judged, read exactly as `soakd run` reads them, `SOAKD__*` environment included;
//! without it the defaults: `error_ratio` 5 %, `max_dropped` 0, leak verdicts on), `--shards
//! N` (default: the config's `[run] shards`, else 1), `--wait DUR` (default `0s`: judge now),
//! `--json`. Every one is checked before anything is asked of Prometheus (exit 78).
//!
//! # The wait
//! Every [`POLL`] the shards are looked up ([`super::discover`]); each one found lingering
//! is read at once from its admin port (`/histograms`, `/status`), so shards need not linger
//! at the same time — each only long enough to be seen (a scrape in its linger) and read.
//! The wait ends when all N are read, or at `--wait` with exit 2 naming the others. A
//! Prometheus that cannot be reached at the first look is an error at once (a wrong URL
//! should not wait hours); later failures are retried until the deadline. A line on stderr
//! says whenever the set of shards read changes.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use url::Url;

use super::collect::{counters, run_range_secs, shard_docs, ShardDocs};
use super::discover::{describe, look, Seen};
use super::judge::{Fleet, Shard};
use super::summary::FleetSummary;
use super::FleetError;
use crate::config::{self, Overrides};
use crate::exit;
use crate::units::{self, ConfigError};
use crate::verdict::{RawThresholds, Thresholds};

/// How often the shards are looked up while waiting.
pub const POLL: Duration = Duration::from_secs(1);

/// Timeout of each Prometheus request.
pub const REQUEST_TIMEOUT: Duration = crate::analyze::cli::REQUEST_TIMEOUT;

/// `soakd verdict`: one verdict for a sharded soak.
#[derive(Debug, Clone, Default, Args)]
pub struct VerdictArgs {
    /// Base URL of the Prometheus that scrapes the shards, e.g. http://prometheus:9090.
    #[arg(long, env = "SOAKD_PROMETHEUS_URL", value_name = "URL")]
    pub prometheus: Option<String>,
    /// The run's id, soakd_run_info{run_id} of its shards (in Kubernetes: the Job's name).
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
    /// soakd config whose [thresholds] are judged (and whose [run] shards is the default N).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Shards in the run (default: the config's [run] shards, else 1).
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
    /// How long to wait for every shard to linger, e.g. "6h30m" (default 0s: judge now).
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub wait: String,
    /// Print the fleet summary as JSON (the run summary's layout plus shards[]).
    #[arg(long)]
    pub json: bool,
}

/// The validated command.
#[derive(Debug, Clone)]
pub struct Command {
    /// Prometheus.
    pub base: Url,
    /// The run.
    pub run_id: String,
    /// N.
    pub shards: u32,
    /// The longest wait for the shards.
    pub wait: Duration,
    /// What is judged.
    pub thresholds: Thresholds,
    /// JSON output.
    pub json: bool,
}

/// More shards than this is a typo.
const MAX_SHARDS: u32 = 10_000;

impl VerdictArgs {
    /// Validates the arguments and reads the config; `env` is the environment for
    /// `SOAKD__*` overrides of the file.
    pub fn command(&self, env: &HashMap<String, String>) -> Result<Command, ConfigError> {
        let url = self.prometheus.as_deref().ok_or_else(|| {
            ConfigError::invalid(
                "--prometheus",
                "(none)",
                "required (or SOAKD_PROMETHEUS_URL): the Prometheus that scrapes the shards",
            )
        })?;
        let base = units::http_url("--prometheus", url)?;
        let run_id = match self.run_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => id.to_owned(),
            Some(id) => return Err(ConfigError::invalid("--run-id", id, "must not be empty")),
            None => {
                return Err(ConfigError::invalid(
                    "--run-id",
                    "(none)",
                    "required: the shards' [run] run_id (a Kubernetes Job's name)",
                ))
            }
        };
        let wait = units::duration("--wait", &self.wait)?;
        let (thresholds, config_shards) = match &self.config {
            Some(path) => {
                let raw = config::load(Some(path), env, &Overrides::default())?;
                (raw.thresholds.validate()?, Some(raw.run.shards))
            }
            None => (RawThresholds::default().validate()?, None),
        };
        let (flag, shards) = match (self.shards, config_shards) {
            (Some(n), _) => ("--shards", n),
            (None, Some(n)) => ("run.shards", n),
            (None, None) => ("--shards", 1),
        };
        if shards == 0 || shards > MAX_SHARDS {
            return Err(ConfigError::invalid(
                flag,
                shards,
                format!("must be 1..={MAX_SHARDS}"),
            ));
        }
        Ok(Command {
            base,
            run_id,
            shards,
            wait,
            thresholds,
            json: self.json,
        })
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `soakd verdict`: the exit code (module docs).
pub fn run(args: &VerdictArgs) -> u8 {
    let env: HashMap<String, String> = std::env::vars().collect();
    let cmd = match args.command(&env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("soakd verdict: {e}");
            return exit::CONFIG;
        }
    };
    let client = match reqwest::Client::builder()
        .connect_timeout(crate::analyze::cli::CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("soakd verdict: cannot build the HTTP client: {e}");
            return exit::RUNTIME;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("soakd verdict: cannot start the runtime: {e}");
            return exit::RUNTIME;
        }
    };
    let note = |line: &str| eprintln!("soakd verdict: {line}");
    match rt.block_on(verdict(&client, &cmd, note)) {
        Ok(summary) => {
            let text = if cmd.json {
                serde_json::to_string_pretty(&summary).unwrap_or_default() + "\n"
            } else {
                summary.to_text()
            };
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            u8::try_from(summary.exit_code).unwrap_or(exit::FAIL)
        }
        Err(e) => {
            eprintln!("soakd verdict: {e}");
            exit::RUNTIME
        }
    }
}

/// Waits for the fleet, reads it and judges it; `note` receives progress lines.
pub async fn verdict(
    client: &reqwest::Client,
    cmd: &Command,
    note: impl Fn(&str),
) -> Result<FleetSummary, FleetError> {
    let read = wait(client, cmd, &note).await?;
    let now = unix_now();
    let seen: Vec<Seen> = read.iter().map(|(s, _)| s.clone()).collect();
    let range = run_range_secs(&seen, now);
    let counters = counters(client, &cmd.base, &cmd.run_id, range, now).await?;
    let mut shards = Vec::with_capacity(read.len());
    for (s, docs) in read {
        let (shard, instance) = (s.shard, s.instance.clone());
        shards.push(Shard::new(s, docs).map_err(|e| FleetError::Shard {
            shard,
            instance,
            reason: e.to_string(),
        })?);
    }
    let fleet = Fleet { shards, counters };
    let mut results = cmd.thresholds.evaluate(&fleet.verdict_inputs(), true);
    for r in &mut results {
        if let Some(c) = fleet.contributors(r, &cmd.thresholds.rss_process) {
            r.message.push_str("; ");
            r.message.push_str(&c);
        }
    }
    Ok(FleetSummary::new(
        &fleet,
        &cmd.run_id,
        cmd.base.as_str(),
        now,
        results,
    ))
}

/// Reads one lingering shard's admin port, checking it runs with `cmd.shards`.
async fn read_shard(
    client: &reqwest::Client,
    cmd: &Command,
    s: &Seen,
) -> Result<ShardDocs, FleetError> {
    let docs = shard_docs(client, s, &cmd.run_id).await?;
    match docs.status["shards"].as_u64() {
        Some(n) if n != u64::from(cmd.shards) => Err(FleetError::Shard {
            shard: s.shard,
            instance: s.instance.clone(),
            reason: format!("it runs with [run] shards = {n}, not {}", cmd.shards),
        }),
        _ => Ok(docs),
    }
}

/// Looks the shards up until each of `cmd.shards` has lingered and been read (module docs):
/// a shard is read as soon as it lingers, so shards that started minutes apart need not
/// linger at the same time.
async fn wait(
    client: &reqwest::Client,
    cmd: &Command,
    note: &impl Fn(&str),
) -> Result<Vec<(Seen, ShardDocs)>, FleetError> {
    let deadline = Instant::now() + cmd.wait;
    let mut first = true;
    let mut last_line = String::new();
    let mut read: BTreeMap<u32, (Seen, ShardDocs)> = BTreeMap::new();
    // The latest word on each shard not read yet: what Prometheus said, or why reading failed.
    let mut last: BTreeMap<u32, Seen> = BTreeMap::new();
    let mut failed: BTreeMap<u32, String> = BTreeMap::new();
    loop {
        match look(client, &cmd.base, &cmd.run_id, unix_now()).await {
            Ok(seen) => {
                for s in seen.into_iter().filter(|s| s.shard < cmd.shards) {
                    if read.contains_key(&s.shard) {
                        continue;
                    }
                    if s.lingering() {
                        match read_shard(client, cmd, &s).await {
                            Ok(docs) => {
                                failed.remove(&s.shard);
                                read.insert(s.shard, (s, docs));
                                continue;
                            }
                            Err(e) => {
                                failed.insert(s.shard, e.to_string());
                            }
                        }
                    }
                    last.insert(s.shard, s);
                }
                if read.len() as u32 == cmd.shards {
                    return Ok(read.into_values().collect());
                }
                let line = format!(
                    "waiting for run {:?}: {} of {} shards lingered and read{}",
                    cmd.run_id,
                    read.len(),
                    cmd.shards,
                    if read.is_empty() {
                        String::new()
                    } else {
                        let done: Vec<String> = read.keys().map(u32::to_string).collect();
                        format!(" ({})", done.join(", "))
                    }
                );
                if line != last_line {
                    note(&line);
                    last_line = line;
                }
            }
            Err(e) if first => return Err(e.into()),
            Err(e) => note(&format!("{e}; retrying")),
        }
        first = false;
        if Instant::now() >= deadline {
            let gone = (0..cmd.shards)
                .filter(|i| !read.contains_key(i))
                .map(|i| match failed.remove(&i) {
                    Some(e) => (i, format!("lingered, but {e}")),
                    None => (i, describe(last.get(&i))),
                })
                .collect();
            return Err(FleetError::Missing {
                total: cmd.shards,
                wait: cmd.wait_text(),
                missing: gone,
            });
        }
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(POLL.min(left.max(Duration::from_millis(1)))).await;
    }
}

impl Command {
    fn wait_text(&self) -> String {
        units::fmt_duration(self.wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: impl FnOnce(&mut VerdictArgs)) -> VerdictArgs {
        let mut a = VerdictArgs {
            prometheus: Some("http://127.0.0.1:9090".into()),
            run_id: Some("soak".into()),
            wait: "0s".into(),
            ..VerdictArgs::default()
        };
        extra(&mut a);
        a
    }

    fn err(a: VerdictArgs) -> String {
        a.command(&HashMap::new()).unwrap_err().to_string()
    }

    #[test]
    fn arguments_are_checked_and_named() {
        let c = args(|_| {}).command(&HashMap::new()).unwrap();
        assert_eq!((c.shards, c.wait), (1, Duration::ZERO));
        assert_eq!(c.thresholds.error_ratio, Some(0.05), "the defaults apply");
        let e = err(args(|a| a.prometheus = Some("ftp://x".into())));
        assert!(e.contains("--prometheus") && e.contains("http://"), "{e}");
        let e = err(args(|a| a.prometheus = None));
        assert!(e.contains("SOAKD_PROMETHEUS_URL"), "{e}");
        let e = err(args(|a| a.run_id = Some("  ".into())));
        assert!(e.contains("--run-id"), "{e}");
        let e = err(args(|a| a.wait = "soon".into()));
        assert!(e.contains("--wait"), "{e}");
        let e = err(args(|a| a.shards = Some(0)));
        assert!(e.contains("--shards") && e.contains("1..="), "{e}");
    }

    #[test]
    fn thresholds_and_shards_come_from_the_config() {
        let dir = crate::scratch::ScratchDir::new("verdict-cli");
        let ok = dir.write(
            "ok.toml",
            "[run]\nshards = 3\n[thresholds]\np99_ttft = \"2s\"\nerror_ratio = 0.1\n",
        );
        let c = args(|a| a.config = Some(ok.clone()))
            .command(&HashMap::new())
            .unwrap();
        assert_eq!(c.shards, 3);
        assert_eq!(c.thresholds.p99_ttft, Some(Duration::from_secs(2)));
        assert_eq!(c.thresholds.error_ratio, Some(0.1));
        let c = args(|a| {
            a.config = Some(ok);
            a.shards = Some(4);
        })
        .command(&HashMap::new())
        .unwrap();
        assert_eq!(c.shards, 4, "--shards wins");
        let bad = dir.write("bad.toml", "[thresholds]\nerror_ratio = 2.0\n");
        let e = err(args(|a| a.config = Some(bad)));
        assert!(e.contains("thresholds.error_ratio"), "{e}");
    }
}
