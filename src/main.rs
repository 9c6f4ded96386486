//! The `soakd` binary: parse the command line, load and validate the config before anything
//! binds a port, run, and map the result to an exit code (0 pass, 1 a threshold or leak
//! verdict failed, `compare` found a regression, `analyze` a leak or `verdict` a failed
//! threshold over a sharded run, 2 runtime failure, a file that cannot be read or a shard
//! missing, 78 bad config or arguments, 130 quit by a second signal).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use soakd::app::App;
use soakd::config::{self, ConfigError, Overrides};
use soakd::exit;
use soakd::phases::{Shutdown, SignalAction};

/// Soak-test daemon for AI proxies.
#[derive(Debug, Parser)]
#[command(name = "soakd", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a soak: drive the configured load, serve /metrics, exit with a verdict.
    Run(RunArgs),
    /// Run the built-in mock AI proxy (OpenAI and Anthropic, streaming, faults, leaks).
    Mock(soakd::mock::MockArgs),
    /// Validate a config file and print the effective config (secrets redacted).
    CheckConfig {
        /// The TOML file.
        file: PathBuf,
    },
    /// Compare two runs' summary JSON: exit 1 on a regression past the limits, 2 on a file
    /// that is not a summary.
    Compare(CompareArgs),
    /// Leak analysis of recorded series (CSV files or a Prometheus range query): exit 1 on a
    /// leak, 2 on input that cannot be read.
    Analyze(soakd::analyze::cli::AnalyzeArgs),
    /// One verdict for a sharded soak, from the Prometheus that scraped its shards: exit 1
    /// when a threshold fails over the merged run, 2 when Prometheus or a shard is missing.
    Verdict(soakd::fleet::cli::VerdictArgs),
}

#[derive(Debug, Args)]
struct CompareArgs {
    /// The reference run's summary JSON.
    base: PathBuf,
    /// The run to judge against it.
    new: PathBuf,
    /// Limits as key=limit, repeatable or comma-separated: p50_latency (10), p99_latency (25),
    /// p50_ttft (10), p99_ttft (25), rss_per_request (25), retained_after_burst (25) in
    /// relative %, error_ratio (1) in percentage points.
    #[arg(long, value_name = "KEY=LIMIT")]
    max_regression: Vec<String>,
    /// Print the comparison as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Config file (TOML). Without it: a plain steady soak of --target, or with no target the
    /// embedded demo config against the built-in mock.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    #[command(flatten)]
    overrides: Overrides,
    /// Stream the plain soak's responses (the default). Not with --config.
    #[arg(long, conflicts_with = "no_stream")]
    stream: bool,
    /// Ask the plain soak's scenario for non-streamed responses. Not with --config.
    #[arg(long)]
    no_stream: bool,
}

fn main() -> ExitCode {
    // A bad flag or flag value is bad configuration: 78, like a bad config file (clap's own
    // default, 2, would read as a runtime failure, or as unreadable input to `analyze`).
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::CONFIG } else { 0 });
        }
    };
    let code = match cli.command {
        Command::Run(args) => run(args),
        Command::Mock(args) => mock(args),
        Command::CheckConfig { file } => check_config(&file),
        Command::Compare(args) => compare(&args),
        Command::Analyze(args) => soakd::analyze::cli::run(&args),
        Command::Verdict(args) => soakd::fleet::cli::run(&args),
    };
    ExitCode::from(code)
}

fn load(args: &RunArgs) -> Result<config::Config, ConfigError> {
    let overrides = Overrides {
        stream: match (args.stream, args.no_stream) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        ..args.overrides.clone()
    };
    let env = std::env::vars().collect();
    config::load(args.config.as_deref(), &env, &overrides)?.validate()
}

fn run(args: RunArgs) -> u8 {
    // Validate before building a runtime or binding anything.
    let config = match load(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("soakd: {e}");
            return exit::CONFIG;
        }
    };
    let Some(rt) = runtime("soakd-load", "soakd") else {
        return exit::RUNTIME;
    };
    rt.block_on(async move {
        let telemetry = match soakd::telemetry::init(&config.log, config.otlp.as_ref()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("soakd: {e}");
                return exit::RUNTIME;
            }
        };
        if let Some(n) = soakd::sys::raise_fd_limit() {
            tracing::debug!(open_files = n, "open-file limit");
        }
        let shutdown = Arc::new(Shutdown::new());
        tokio::spawn(shutdown_signals(shutdown.clone()));
        let result = async {
            let app = App::build(config).await.context("cannot start the soak")?;
            app.run(shutdown).await.context("the soak failed")
        }
        .await;
        let code = match result {
            // The run printed its summary before it lingered.
            Ok(summary) => u8::try_from(summary.exit_code).unwrap_or(exit::FAIL),
            Err(e) => {
                tracing::error!("{e:#}");
                exit::RUNTIME
            }
        };
        telemetry.shutdown();
        code
    })
}

fn mock(args: soakd::mock::MockArgs) -> u8 {
    if let Err(e) = args.validate() {
        eprintln!("soakd mock: {e}");
        return exit::CONFIG;
    }
    let Some(rt) = runtime("soakd-mock", "soakd mock") else {
        return exit::RUNTIME;
    };
    rt.block_on(async move {
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(soakd::telemetry::stderr_colour())
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            )
            .try_init();
        let shutdown = Arc::new(Shutdown::new());
        tokio::spawn(shutdown_signals(shutdown.clone()));
        match soakd::mock::run(args, shutdown.stop().clone()).await {
            Ok(()) => exit::PASS,
            Err(e) => {
                eprintln!("soakd mock: {e}");
                exit::RUNTIME
            }
        }
    })
}

/// The multi-threaded runtime of `run` and `mock`, its threads named `thread_name`; `None`
/// (after saying why on stderr, prefixed by `prog`) when the OS refuses it.
fn runtime(thread_name: &str, prog: &str) -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name(thread_name)
        .build()
        .map_err(|e| eprintln!("{prog}: cannot start the runtime: {e}"))
        .ok()
}

fn check_config(file: &std::path::Path) -> u8 {
    let env = std::env::vars().collect();
    let raw = match config::load(Some(file), &env, &Overrides::default()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("soakd: {e}");
            return exit::CONFIG;
        }
    };
    match raw.check_with(&|k| std::env::var(k).ok()) {
        Ok((_, warnings)) => {
            print!("{}", raw.to_redacted_toml());
            for w in warnings {
                eprintln!("soakd: warning: {w}");
            }
            eprintln!("soakd: {} is valid", file.display());
            exit::PASS
        }
        Err(e) => {
            eprintln!("soakd: {e}");
            exit::CONFIG
        }
    }
}

fn compare(args: &CompareArgs) -> u8 {
    use soakd::compare::{self, Limits, RunSummary};
    let limits = match Limits::parse(&args.max_regression) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("soakd: {e}");
            return exit::CONFIG;
        }
    };
    let (base, new) = match (RunSummary::load(&args.base), RunSummary::load(&args.new)) {
        (Ok(b), Ok(n)) => (b, n),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("soakd compare: {e}");
            return exit::RUNTIME;
        }
    };
    let files = (
        args.base.display().to_string(),
        args.new.display().to_string(),
    );
    let c = compare::compare(&base, &new, &limits, (&files.0, &files.1));
    if args.json {
        println!("{}", c.to_json());
    } else {
        print!("{}", c.to_text());
    }
    c.exit_code()
}

/// Each SIGTERM/SIGINT goes to [`Shutdown::on_signal`]: the first stops the soak gracefully,
/// one during the linger ends it, a second one before that quits at once.
async fn shutdown_signals(shutdown: Arc<Shutdown>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        match shutdown.on_signal() {
            SignalAction::StopRun => tracing::info!(
                signal = name,
                "stopping: finishing in-flight requests (signal again to quit now)"
            ),
            SignalAction::EndLinger => {
                tracing::info!(signal = name, "ending the linger; exiting with the verdict")
            }
            SignalAction::QuitNow => {
                eprintln!("soakd: second signal, quitting now");
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
        }
    }
}
