//! The built-in mock AI proxy (`soakd mock`): a realistic, fault- and leak-injecting stand-in
//! for an OpenAI- or Anthropic-compatible proxy (chat, Responses, legacy completions,
//! embeddings, messages), used for demos and as the target of every integration test.
//!
//! ```text
//! soakd mock --ttft 50ms --chunks 32 --leak-bytes-per-request 65536
//! soakd-mock listening on http://127.0.0.1:41337
//! ```
//!
//! The same knobs are the `[mock]` section of soakd's config file (`ttft = "50ms"`,
//! `leak_bytes_per_request = 65536`); see [`MockArgs`]. `soakd run` spawns the mock as a child
//! with `current_exe mock <MockArgs::to_args()>` and reads the port from the one stdout line.
//!
//! # Endpoints
//! Every AI endpoint answers `stream: true` with `text/event-stream` (the head at once, after
//! `ttft` the first content chunk, `chunk_delay` between content chunks, then the tail) and
//! otherwise with one JSON body after `response_delay`; with `latency_drift` (`20ms/min`) both
//! the time to first token and that delay grow linearly with the mock's uptime. An answer has `reasoning_chunks`
//! reasoning deltas and then N answer chunks of `chunk_bytes` characters, N being `chunks`
//! lowered by a smaller `max_tokens` / `max_completion_tokens` / `max_output_tokens` (1 chunk ≈
//! 1 token; a lowered N finishes as `length` / `max_tokens` / `response.incomplete` with
//! reason `max_output_tokens`). With probability `tool_call_rate` the answer is one tool call
//! (argument deltas that form a JSON object) and no text. Usage counts reasoning and answer
//! chunks. The wire formats, one file each under `frames/`:
//! - `POST /v1/chat/completions` (OpenAI chat): a role-only chunk, `reasoning_content`
//!   deltas, `content` or `tool_calls` deltas, a finish chunk, a usage chunk (`choices: []`)
//!   only with `stream_options.include_usage`, `data: [DONE]`; or a `chat.completion`.
//! - `POST /v1/responses` (OpenAI Responses): typed events (`event:` line = JSON `type`) from
//!   `response.created` through reasoning-summary, output-text or function-call-arguments
//!   deltas to `response.completed`; or a `response` object.
//! - `POST /v1/completions` (legacy): `text_completion` chunks with `choices[].text`, a finish
//!   chunk, the optional usage chunk, `data: [DONE]` (no reasoning, no tools); or one object.
//! - `POST /v1/embeddings`: a `list` with one `embedding` (256 numbers, or the request's
//!   `dimensions`) per input, after `response_delay` or else `ttft`. Never streamed: `stream:
//!   true`, a missing `input`, more than 2048 inputs or `dimensions` over 8192 are a 400.
//! - `POST /v1/messages` (Anthropic): `message_start`, `content_block_start`, `ping`, a
//!   `thinking` block, a `text` or `tool_use` block, `content_block_stop`, `message_delta`
//!   (final cumulative `usage.output_tokens`), `message_stop`; or a `message`.
//! - `GET /metrics`: the mock's own registry: `process_*`,
//!   `soakd_mock_requests_total{endpoint, fault}` (endpoint: `chat_completions`, `responses`,
//!   `completions`, `embeddings`, `messages`), `soakd_mock_streams_active`,
//!   `soakd_mock_leaked_{bytes,fds,threads}`, `soakd_mock_sawtooth_bytes`. This is the
//!   exposition of the mock as a stand-in proxy (as a real proxy has its own), outside soakd's
//!   metric catalog: served in-process as the two-sided soak's upstream, the mock's registry
//!   is not exported, and the faults it injects (its dice and the storms) are counted in the
//!   catalog's `soakd_upstream_faults_total{storm,kind}` through the tap.
//! - `GET /healthz`: `ok`. Unknown paths: 404 with an error JSON. A body that is not JSON: 400
//!   with an error JSON in the endpoint's own shape (both shapes have `error.type` and
//!   `error.message`). `prompt_tokens` is estimated as body bytes / 4.
//!
//! # Faults
//! One cheap draw per request picks at most one fault, with the `*_rate` probabilities, in
//! the shape of the endpoint's API: an HTTP error (`error_status`, `retry-after: 1` on
//! 429/503/529, an OpenAI or Anthropic error body); an in-band error (after half the content
//! chunks the API's error frame — OpenAI `data: {"error":…}`, Responses `error` then
//! `response.failed`, Anthropic `event: error` — then the end; non-stream: HTTP 200 with an
//! error object, for Responses a `failed` response); a truncation (the body ends cleanly after
//! half the content chunks, with no terminator and no `response.completed`, or after half the
//! JSON); a stall (headers and half the chunks, then nothing until the client disconnects or
//! shutdown); garbage (HTTP 200, a body that is neither SSE nor JSON).
//!
//! A [`Tap`] (the two-sided soak's upstream) may replace an answer with an [`Injected`]
//! fault (a storm's status with its own `Retry-After` or none, a delay, a stall, a reset) and
//! refuse new connections at accept; see [`crate::upstream::storm`].
//!
//! # Leaks
//! `leak_bytes_per_request`, `plateau_bytes`, `leak_fd_every`, `leak_thread_every`,
//! `leak_bytes_per_stream_second` and the `sawtooth_*` pair really move RSS, `/proc/self/fd`
//! and the thread count (memory is touched page by page; the sawtooth maps its own 1 MiB
//! blocks so freeing them returns RSS to the OS). `leak_on` limits the per-request byte leak
//! to one class of requests (`stream`, `unary`, `openai`, `anthropic`): a known truth for
//! attribution by scenario. `leak_bytes_per_stream_second` leaks only while streams are open:
//! every 100 ms it keeps `N × open streams × elapsed` bytes (open streams read from
//! `soakd_mock_streams_active`, which counts stalled bodies too), a known truth for growth
//! per open stream.
//!
//! # Design
//! axum over HTTP/1.1 (keep-alive, `TCP_NODELAY`). A streamed body is a hand-written state
//! machine over one reused tokio `Sleep`; all its frames are slices of one per-request buffer,
//! and no per-request state outlives the request unless a leak knob asks for it; on glibc the
//! free heap is trimmed every 10 s so the RSS baseline stays flat without leak knobs. Shutdown:
//! the `shutdown` token (or `exit_after`) stops accepting, ends stalls at once, lets the other
//! streams finish for up to [`SHUTDOWN_GRACE`], and then returns.

mod args;
mod body;
mod drift;
mod fault;
mod frames;
mod handlers;
mod leak;
#[cfg(test)]
mod leak_tasks_tests;
mod state;
mod tap;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use args::{LeakOn, MockArgs};
pub use drift::LatencyDrift;
pub use frames::text_stream_writes;
pub use tap::{Answer, Fault, Injected, Probe, Tap};

use crate::units::ConfigError;

/// How long in-flight streams may run on after shutdown before [`serve`] returns anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the mock could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    /// A knob is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listen address could not be bound.
    #[error("mock: cannot listen on {addr}: {error}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error (in the message, not also a `source()`).
        error: std::io::Error,
    },
    /// The pid file could not be written.
    #[error("mock: cannot write pid file {path}: {source}")]
    PidFile {
        /// The path asked for.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The metric registry could not be built.
    #[error("mock: metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// Another I/O failure (listener address, stdout, serving).
    #[error("mock: {0}")]
    Io(#[from] std::io::Error),
}

fn random_seed() -> u64 {
    use rand::{RngCore as _, SeedableRng as _};
    rand::rngs::SmallRng::from_os_rng().next_u64()
}

/// Serve on an already-bound listener until `shutdown` is cancelled (or `exit_after` passes),
/// then close gracefully: stop accepting, end stalls, let other streams finish for up to
/// [`SHUTDOWN_GRACE`].
pub async fn serve(
    args: MockArgs,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), MockError> {
    serve_with_tap(args, listener, shutdown, None).await
}

/// [`serve`], reporting every request and stream to `tap` (see [`Tap`]).
pub async fn serve_with_tap(
    args: MockArgs,
    listener: TcpListener,
    shutdown: CancellationToken,
    tap: Option<Arc<dyn Tap>>,
) -> Result<(), MockError> {
    args.validate()?;
    let stop = shutdown.child_token();
    let mut shared = state::Shared::new(&args, stop.clone(), random_seed())?;
    shared.tap = tap;
    let shared = Arc::new(shared);
    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        ttft = ?args.ttft,
        chunk_delay = ?args.chunk_delay,
        chunks = args.chunks,
        chunk_bytes = args.chunk_bytes,
        reasoning_chunks = args.reasoning_chunks,
        tool_call_rate = args.tool_call_rate,
        response_delay = ?args.response_delay,
        latency_drift = ?args.latency_drift.map(|d| d.to_string()),
        error_rate = args.error_rate,
        error_status = args.error_status,
        error_event_rate = args.error_event_rate,
        truncate_rate = args.truncate_rate,
        stall_rate = args.stall_rate,
        garbage_rate = args.garbage_rate,
        leak_bytes_per_request = args.leak_bytes_per_request,
        leak_on = ?args.leak_on.map(LeakOn::as_str),
        leak_bytes_per_stream_second = args.leak_bytes_per_stream_second,
        leak_fd_every = ?args.leak_fd_every,
        leak_thread_every = ?args.leak_thread_every,
        sawtooth_bytes = ?args.sawtooth_bytes,
        sawtooth_period = ?args.sawtooth_period,
        plateau_bytes = ?args.plateau_bytes,
        idle_release = ?args.idle_release,
        exit_after = ?args.exit_after,
        "mock serving"
    );

    let tasks = TaskTracker::new();
    if let (Some(bytes), Some(period)) = (args.sawtooth_bytes, args.sawtooth_period) {
        let plan = leak::SawtoothPlan::new(bytes, period);
        tasks.spawn(leak::run_sawtooth(
            plan,
            shared.metrics.leaks.sawtooth.clone(),
            stop.clone(),
        ));
    }
    if args.leak_bytes_per_stream_second > 0 {
        tasks.spawn(leak::run_stream_leak(
            shared.leaks.clone(),
            shared.metrics.streams_active.clone(),
            args.leak_bytes_per_stream_second,
            stop.clone(),
        ));
    }
    if let Some(after) = args.idle_release {
        tasks.spawn(leak::run_idle_release(
            shared.leaks.clone(),
            after,
            stop.clone(),
        ));
    }
    if let Some(after) = args.exit_after {
        let stop = stop.clone();
        tasks.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(after) => {
                    tracing::info!(exit_after = ?after, "mock exit_after reached, shutting down");
                    stop.cancel();
                }
                _ = stop.cancelled() => {}
            }
        });
    }

    tasks.spawn(crate::sys::trim_heap_every(
        crate::sys::TRIM_EVERY,
        stop.clone(),
    ));

    let listener = tap::Gate::new(listener, shared.tap.clone()).tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "mock: cannot set TCP_NODELAY");
        }
    });
    let app = handlers::router(shared.clone());
    let server = axum::serve(listener, app).with_graceful_shutdown(stop.clone().cancelled_owned());
    let grace = {
        let stop = stop.clone();
        async move {
            stop.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        }
    };
    let result = tokio::select! {
        r = server => r,
        _ = grace => {
            tracing::warn!(
                streams = shared.metrics.streams_active.get(),
                grace = ?SHUTDOWN_GRACE,
                "mock: streams still open after the shutdown grace; returning anyway"
            );
            Ok(())
        }
    };
    stop.cancel();
    tasks.close();
    tasks.wait().await;
    tracing::info!(%addr, "mock stopped");
    result.map_err(MockError::Io)
}

/// Bind `args.listen`, print exactly one line `soakd-mock listening on http://<bound addr>` to
/// stdout (flushed), then [`serve`]. With `pid_file`, the pid is written before that line and
/// the file removed when serving ends. Also raises the soft open-files limit to the hard one
/// so thousands of concurrent streams fit.
pub async fn run(args: MockArgs, shutdown: CancellationToken) -> Result<(), MockError> {
    args.validate()?;
    crate::sys::raise_fd_limit();
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|error| MockError::Bind {
            addr: args.listen,
            error,
        })?;
    let addr = listener.local_addr()?;
    if let Some(path) = &args.pid_file {
        std::fs::write(path, format!("{}\n", std::process::id())).map_err(|source| {
            MockError::PidFile {
                path: path.clone(),
                source,
            }
        })?;
    }
    let pid_file = args.pid_file.clone();
    let printed = {
        let mut out = std::io::stdout().lock();
        writeln!(out, "soakd-mock listening on http://{addr}").and_then(|()| out.flush())
    };
    let result = match printed {
        Ok(()) => serve(args, listener, shutdown).await,
        Err(e) => Err(MockError::Io(e)),
    };
    if let Some(path) = pid_file {
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), error = %e, "mock: cannot remove pid file");
            }
        }
    }
    result
}
