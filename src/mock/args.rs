//! The mock's knobs: one struct that is both the `soakd mock` flags and the `[mock]` TOML section.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::drift::{self, LatencyDrift};
use crate::units::{self, ConfigError};

/// Largest `chunk_bytes` accepted (one content delta).
pub const MAX_CHUNK_BYTES: u32 = 1 << 20;
/// Largest answer (`chunks × chunk_bytes`) accepted; a non-stream answer is built in memory.
pub const MAX_ANSWER_BYTES: u64 = 256 << 20;
/// Smallest `sawtooth_bytes`: the sawtooth allocates in blocks of this size.
pub const SAWTOOTH_BLOCK: u64 = 1 << 20;
/// Per-request growth of `plateau_bytes` when `leak_bytes_per_request` is 0.
pub const PLATEAU_DEFAULT_STEP: u64 = 64 << 10;
/// Largest `leak_bytes_per_request` (and `leak_bytes_per_stream_second`) accepted.
pub const MAX_LEAK_PER_REQUEST: u64 = 1 << 30;

/// A class of requests a per-request leak can be limited to (`--leak-on`, `leak_on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LeakOn {
    /// Requests with `"stream": true`.
    Stream,
    /// Requests without `"stream": true`.
    Unary,
    /// Every OpenAI endpoint (chat, Responses, completions, embeddings).
    Openai,
    /// Anthropic `/v1/messages`.
    Anthropic,
}

impl<'de> serde::Deserialize<'de> for LeakOn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = String::deserialize(d)?;
        <LeakOn as clap::ValueEnum>::from_str(&v, false).map_err(|_| {
            serde::de::Error::custom(format!(
                "unknown request class {v:?}: must be stream, unary, openai or anthropic"
            ))
        })
    }
}

impl LeakOn {
    /// The flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            LeakOn::Stream => "stream",
            LeakOn::Unary => "unary",
            LeakOn::Openai => "openai",
            LeakOn::Anthropic => "anthropic",
        }
    }

    /// Whether a request of this kind is in the class.
    pub fn matches(self, stream: bool, anthropic: bool) -> bool {
        match self {
            LeakOn::Stream => stream,
            LeakOn::Unary => !stream,
            LeakOn::Openai => !anthropic,
            LeakOn::Anthropic => anthropic,
        }
    }
}

/// Every knob of the mock AI proxy.
///
/// Each field is a `--kebab-case` flag of `soakd mock` and a `snake_case` key of the `[mock]`
/// section of the config file. Durations are humantime strings in both (`"50ms"`, `"2m"`).
/// `Default` equals the clap defaults. Call [`MockArgs::validate`] before use
/// ([`crate::mock::serve`] and [`crate::mock::run`] do).
#[derive(Debug, Clone, PartialEq, clap::Args, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MockArgs {
    /// Address to listen on (`run` only; `serve` takes a bound listener).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// Streams: delay between the response headers (with the role/preamble frame) and the
    /// first content chunk.
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    #[serde(with = "units::serde_duration")]
    pub ttft: Duration,

    /// Streams: delay between two content chunks.
    #[arg(long, default_value = "5ms", value_parser = humantime::parse_duration)]
    #[serde(with = "units::serde_duration")]
    pub chunk_delay: Duration,

    /// Content chunks per answer (1 chunk ≈ 1 token); capped per request by a smaller
    /// `max_tokens`.
    #[arg(long, default_value_t = 16)]
    pub chunks: u32,

    /// Characters of text per content chunk.
    #[arg(long, default_value_t = 8)]
    pub chunk_bytes: u32,

    /// Chat, Responses and Anthropic: reasoning deltas sent before the answer (after `ttft`,
    /// `chunk_delay` apart like every content chunk; counted in the usage's output tokens).
    #[arg(long, default_value_t = 0)]
    pub reasoning_chunks: u32,

    /// Chat, Responses and Anthropic: fraction of answers that are one tool call (argument
    /// deltas forming a JSON object) and no text.
    #[arg(long, default_value_t = 0.0)]
    pub tool_call_rate: f64,

    /// Non-stream answers: delay before the response. Unset means the time the same answer
    /// takes streamed: `ttft + (reasoning_chunks + chunks) × chunk_delay` (with the request's
    /// effective chunks); embeddings: `ttft`.
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(
        with = "units::serde_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_delay: Option<Duration>,

    /// Latency that grows with the mock's uptime, `AMOUNT/PER` (e.g. `20ms/min`): after `u`
    /// of uptime every time to first token and every non-stream answer's delay is
    /// `AMOUNT × u / PER` longer (unset = none), so a soak can be made to creep.
    #[arg(long, value_parser = LatencyDrift::from_str_arg)]
    #[serde(with = "drift::serde_opt", skip_serializing_if = "Option::is_none")]
    pub latency_drift: Option<LatencyDrift>,

    /// Probability per request of an HTTP error (`error_status`) instead of an answer.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,

    /// Status of `error_rate` errors (400..=599); 429 and 503 also carry `retry-after: 1`.
    #[arg(long, default_value_t = 500)]
    pub error_status: u16,

    /// Probability per request of an in-band error: streams send an error frame after half the
    /// chunks and end; non-stream answers are HTTP 200 with an error JSON body.
    #[arg(long, default_value_t = 0.0)]
    pub error_event_rate: f64,

    /// Probability per request of a truncated answer: streams end cleanly after half the chunks
    /// with no terminator; non-stream bodies end after half the JSON.
    #[arg(long, default_value_t = 0.0)]
    pub truncate_rate: f64,

    /// Probability per request of a stall: headers (and for streams half the chunks) are sent,
    /// then nothing until the client goes away or the mock shuts down.
    #[arg(long, default_value_t = 0.0)]
    pub stall_rate: f64,

    /// Probability per request of HTTP 200 with a body that is neither SSE nor JSON.
    #[arg(long, default_value_t = 0.0)]
    pub garbage_rate: f64,

    /// Bytes allocated, made resident and kept forever per request (0 = none); a size such
    /// as `65536` or `64KiB`.
    #[arg(long, default_value = "0", value_parser = units::size_arg)]
    #[serde(with = "units::serde_size")]
    pub leak_bytes_per_request: u64,

    /// Limit the per-request byte leak (`leak_bytes_per_request`, and `plateau_bytes`'s
    /// growth) to one class of requests: `stream`, `unary`, `openai` or `anthropic` (unset =
    /// every request). fd and thread leaks are not affected.
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leak_on: Option<LeakOn>,

    /// Bytes leaked per second for every open stream (0 = none): while streams are open the
    /// mock keeps `N × open streams` more bytes each second, forever, so RSS grows with the
    /// number of open streams and not with requests; a size such as `256KiB`.
    #[arg(long, default_value = "0", value_parser = units::size_arg)]
    #[serde(with = "units::serde_size")]
    pub leak_bytes_per_stream_second: u64,

    /// Open `/dev/null` and keep it open every N requests (unset = never).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leak_fd_every: Option<u64>,

    /// Spawn an OS thread that parks forever every N streams (unset = never; at most 10,000).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leak_thread_every: Option<u64>,

    /// GC-like sawtooth: grow a resident allocation linearly to this size (`32MiB`) over
    /// `sawtooth_period`, free it all, repeat (needs `sawtooth_period`; at least 1 MiB).
    #[arg(long, value_parser = units::size_arg)]
    #[serde(
        with = "units::serde_opt_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub sawtooth_bytes: Option<u64>,

    /// Length of one sawtooth cycle (needs `sawtooth_bytes`).
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(
        with = "units::serde_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub sawtooth_period: Option<Duration>,

    /// Cache-like growth: per-request growth (`leak_bytes_per_request`, or 64 KiB when that is
    /// 0) that stops once this size (`48MiB`) is held in total.
    #[arg(long, value_parser = units::size_arg)]
    #[serde(
        with = "units::serde_opt_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub plateau_bytes: Option<u64>,

    /// After this long without an AI request, free what the memory leaks hold (the
    /// `plateau_bytes`, `leak_bytes_per_request` and `leak_bytes_per_stream_second` buffers)
    /// and hand the pages back to the OS, like a pool that shrinks when idle (unset = never).
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(
        with = "units::serde_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_release: Option<Duration>,

    /// Exit cleanly after this long (restart tests).
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(
        with = "units::serde_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub exit_after: Option<Duration>,

    /// Write the process id here at start and remove the file on exit (`run` only).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid_file: Option<PathBuf>,
}

impl Default for MockArgs {
    fn default() -> Self {
        MockArgs {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ttft: Duration::from_millis(20),
            chunk_delay: Duration::from_millis(5),
            chunks: 16,
            chunk_bytes: 8,
            reasoning_chunks: 0,
            tool_call_rate: 0.0,
            response_delay: None,
            latency_drift: None,
            error_rate: 0.0,
            error_status: 500,
            error_event_rate: 0.0,
            truncate_rate: 0.0,
            stall_rate: 0.0,
            garbage_rate: 0.0,
            leak_bytes_per_request: 0,
            leak_on: None,
            leak_bytes_per_stream_second: 0,
            leak_fd_every: None,
            leak_thread_every: None,
            sawtooth_bytes: None,
            sawtooth_period: None,
            plateau_bytes: None,
            idle_release: None,
            exit_after: None,
            pid_file: None,
        }
    }
}

impl MockArgs {
    /// The five fault probabilities with their field names, in the order faults are decided.
    pub(crate) fn fault_rates(&self) -> [(&'static str, f64); 5] {
        [
            ("error_rate", self.error_rate),
            ("error_event_rate", self.error_event_rate),
            ("truncate_rate", self.truncate_rate),
            ("stall_rate", self.stall_rate),
            ("garbage_rate", self.garbage_rate),
        ]
    }

    /// Check every knob; errors name the field as `mock.<field>`, the value and the reason.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut sum = 0.0;
        for (name, rate) in self.fault_rates() {
            if !(0.0..=1.0).contains(&rate) {
                return Err(ConfigError::invalid(
                    format!("mock.{name}"),
                    rate,
                    "must be a probability in 0..=1",
                ));
            }
            sum += rate;
        }
        if sum > 1.0 + 1e-9 {
            return Err(ConfigError::invalid(
                "mock.error_rate",
                sum,
                "error_rate + error_event_rate + truncate_rate + stall_rate + garbage_rate \
                 must not exceed 1",
            ));
        }
        if self.chunks == 0 {
            return Err(ConfigError::invalid("mock.chunks", 0, "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.tool_call_rate) {
            return Err(ConfigError::invalid(
                "mock.tool_call_rate",
                self.tool_call_rate,
                "must be a fraction in 0..=1",
            ));
        }
        if self.chunk_bytes == 0 || self.chunk_bytes > MAX_CHUNK_BYTES {
            return Err(ConfigError::invalid(
                "mock.chunk_bytes",
                self.chunk_bytes,
                format!("must be in 1..={MAX_CHUNK_BYTES}"),
            ));
        }
        let answer = (u64::from(self.chunks) + u64::from(self.reasoning_chunks))
            * u64::from(self.chunk_bytes);
        if answer > MAX_ANSWER_BYTES {
            return Err(ConfigError::invalid(
                "mock.chunks",
                self.chunks,
                format!(
                    "(chunks + reasoning_chunks) × chunk_bytes = {answer} bytes exceeds the \
                     {MAX_ANSWER_BYTES} byte limit of one answer"
                ),
            ));
        }
        if !(400..=599).contains(&self.error_status) {
            return Err(ConfigError::invalid(
                "mock.error_status",
                self.error_status,
                "must be an HTTP error status in 400..=599",
            ));
        }
        for (name, v) in [
            ("leak_bytes_per_request", self.leak_bytes_per_request),
            (
                "leak_bytes_per_stream_second",
                self.leak_bytes_per_stream_second,
            ),
        ] {
            if v > MAX_LEAK_PER_REQUEST {
                return Err(ConfigError::invalid(
                    format!("mock.{name}"),
                    v,
                    format!("must be at most {MAX_LEAK_PER_REQUEST}"),
                ));
            }
        }
        for (name, every) in [
            ("leak_fd_every", self.leak_fd_every),
            ("leak_thread_every", self.leak_thread_every),
        ] {
            if every == Some(0) {
                return Err(ConfigError::invalid(
                    format!("mock.{name}"),
                    0,
                    "must be at least 1 (leave it unset to disable)",
                ));
            }
        }
        match (self.sawtooth_bytes, self.sawtooth_period) {
            (None, None) => {}
            (Some(bytes), None) => {
                return Err(ConfigError::invalid(
                    "mock.sawtooth_period",
                    "unset",
                    format!("sawtooth_bytes = {bytes} needs a sawtooth_period"),
                ))
            }
            (None, Some(period)) => {
                return Err(ConfigError::invalid(
                    "mock.sawtooth_bytes",
                    "unset",
                    format!(
                        "sawtooth_period = {} needs sawtooth_bytes",
                        units::fmt_duration(period)
                    ),
                ))
            }
            (Some(bytes), Some(period)) => {
                if bytes < SAWTOOTH_BLOCK {
                    return Err(ConfigError::invalid(
                        "mock.sawtooth_bytes",
                        bytes,
                        format!("must be at least {SAWTOOTH_BLOCK} (one 1 MiB block)"),
                    ));
                }
                if period < Duration::from_millis(10) {
                    return Err(ConfigError::invalid(
                        "mock.sawtooth_period",
                        units::fmt_duration(period),
                        "must be at least 10ms",
                    ));
                }
            }
        }
        if self.plateau_bytes == Some(0) {
            return Err(ConfigError::invalid(
                "mock.plateau_bytes",
                0,
                "must be at least 1 (leave it unset to disable)",
            ));
        }
        if self.idle_release == Some(Duration::ZERO) {
            return Err(ConfigError::invalid(
                "mock.idle_release",
                "0s",
                "must be positive (leave it unset to keep what is held)",
            ));
        }
        if self.exit_after == Some(Duration::ZERO) {
            return Err(ConfigError::invalid(
                "mock.exit_after",
                "0s",
                "must be positive (leave it unset to run until shutdown)",
            ));
        }
        Ok(())
    }

    /// The argv (after `soakd mock`) that reproduces exactly these knobs.
    pub fn to_args(&self) -> Vec<String> {
        fn dur(d: Duration) -> String {
            humantime::format_duration(d).to_string()
        }
        let mut v: Vec<String> = Vec::with_capacity(48);
        let mut push = |flag: &str, value: String| {
            v.push(format!("--{flag}"));
            v.push(value);
        };
        push("listen", self.listen.to_string());
        push("ttft", dur(self.ttft));
        push("chunk-delay", dur(self.chunk_delay));
        push("chunks", self.chunks.to_string());
        push("chunk-bytes", self.chunk_bytes.to_string());
        push("reasoning-chunks", self.reasoning_chunks.to_string());
        push("tool-call-rate", self.tool_call_rate.to_string());
        if let Some(d) = self.response_delay {
            push("response-delay", dur(d));
        }
        if let Some(d) = self.latency_drift {
            push("latency-drift", d.to_string());
        }
        push("error-rate", self.error_rate.to_string());
        push("error-status", self.error_status.to_string());
        push("error-event-rate", self.error_event_rate.to_string());
        push("truncate-rate", self.truncate_rate.to_string());
        push("stall-rate", self.stall_rate.to_string());
        push("garbage-rate", self.garbage_rate.to_string());
        push(
            "leak-bytes-per-request",
            self.leak_bytes_per_request.to_string(),
        );
        if let Some(c) = self.leak_on {
            push("leak-on", c.as_str().to_string());
        }
        push(
            "leak-bytes-per-stream-second",
            self.leak_bytes_per_stream_second.to_string(),
        );
        if let Some(n) = self.leak_fd_every {
            push("leak-fd-every", n.to_string());
        }
        if let Some(n) = self.leak_thread_every {
            push("leak-thread-every", n.to_string());
        }
        if let Some(n) = self.sawtooth_bytes {
            push("sawtooth-bytes", n.to_string());
        }
        if let Some(d) = self.sawtooth_period {
            push("sawtooth-period", dur(d));
        }
        if let Some(n) = self.plateau_bytes {
            push("plateau-bytes", n.to_string());
        }
        if let Some(d) = self.idle_release {
            push("idle-release", dur(d));
        }
        if let Some(d) = self.exit_after {
            push("exit-after", dur(d));
        }
        if let Some(p) = &self.pid_file {
            push("pid-file", p.display().to_string());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        mock: MockArgs,
    }

    fn parse(argv: &[String]) -> MockArgs {
        let mut full = vec!["soakd-mock".to_string()];
        full.extend_from_slice(argv);
        Cli::try_parse_from(full).expect("argv parses").mock
    }

    fn every_knob_set() -> MockArgs {
        MockArgs {
            listen: "127.0.0.1:18080".parse().unwrap(),
            ttft: Duration::from_millis(50),
            chunk_delay: Duration::from_micros(1500),
            chunks: 32,
            chunk_bytes: 5,
            reasoning_chunks: 3,
            tool_call_rate: 0.25,
            response_delay: Some(Duration::from_secs(1) + Duration::from_millis(250)),
            latency_drift: Some("20ms/min".parse().unwrap()),
            error_rate: 0.1,
            error_status: 429,
            error_event_rate: 0.05,
            truncate_rate: 0.025,
            stall_rate: 0.001,
            garbage_rate: 0.3,
            leak_bytes_per_request: 65536,
            leak_on: Some(LeakOn::Anthropic),
            leak_bytes_per_stream_second: 1 << 18,
            leak_fd_every: Some(7),
            leak_thread_every: Some(3),
            sawtooth_bytes: Some(64 << 20),
            sawtooth_period: Some(Duration::from_secs(90)),
            plateau_bytes: Some(1 << 30),
            idle_release: Some(Duration::from_secs(5)),
            exit_after: Some(Duration::from_secs(3600)),
            pid_file: Some(PathBuf::from("/tmp/soakd mock.pid")),
        }
    }

    #[test]
    fn default_equals_clap_defaults() {
        assert_eq!(parse(&[]), MockArgs::default());
    }

    #[test]
    fn to_args_round_trips_through_clap() {
        let a = every_knob_set();
        a.validate().expect("valid");
        assert_eq!(parse(&a.to_args()), a);
        let d = MockArgs::default();
        assert_eq!(parse(&d.to_args()), d);
    }

    #[test]
    fn doc_example_flags_parse() {
        let argv: Vec<String> = "--ttft 50ms --chunks 32 --leak-bytes-per-request 65536"
            .split(' ')
            .map(String::from)
            .collect();
        let a = parse(&argv);
        assert_eq!(a.ttft, Duration::from_millis(50));
        assert_eq!(a.chunks, 32);
        assert_eq!(a.leak_bytes_per_request, 65536);
        assert_eq!(a.chunk_delay, MockArgs::default().chunk_delay);
    }

    fn from_toml(s: &str) -> Result<MockArgs, config::ConfigError> {
        config::Config::builder()
            .add_source(config::File::from_str(s, config::FileFormat::Toml))
            .build()?
            .try_deserialize()
    }

    #[test]
    fn toml_keys_and_humantime_durations() {
        let a = from_toml(
            r#"
            ttft = "50ms"
            chunk_delay = "1s 5ms"
            chunks = 4
            error_rate = 0.25
            error_status = 429
            leak_fd_every = 10
            sawtooth_bytes = 2097152
            sawtooth_period = "30s"
            exit_after = "2m"
            pid_file = "/run/mock.pid"
            latency_drift = "1ms/10s"
            "#,
        )
        .expect("toml deserializes");
        assert_eq!(a.ttft, Duration::from_millis(50));
        assert_eq!(a.chunk_delay, Duration::from_millis(1005));
        assert_eq!(a.chunks, 4);
        assert_eq!(a.error_rate, 0.25);
        assert_eq!(a.error_status, 429);
        assert_eq!(a.leak_fd_every, Some(10));
        assert_eq!(a.sawtooth_bytes, Some(2 << 20));
        assert_eq!(a.sawtooth_period, Some(Duration::from_secs(30)));
        assert_eq!(a.exit_after, Some(Duration::from_secs(120)));
        assert_eq!(a.pid_file, Some(PathBuf::from("/run/mock.pid")));
        assert_eq!(
            a.latency_drift,
            Some(LatencyDrift {
                amount: Duration::from_millis(1),
                per: Duration::from_secs(10)
            })
        );
        let e = from_toml("latency_drift = \"20ms\"").expect_err("no period");
        assert!(e.to_string().contains("latency_drift \"20ms\""), "{e}");
        let e = Cli::try_parse_from(["soakd-mock", "--latency-drift", "x/min"]).expect_err("bad");
        assert!(e.to_string().contains("--latency-drift"), "{e}");
        // Unset keys keep their defaults.
        assert_eq!(a.chunk_bytes, 8);
        assert_eq!(a.response_delay, None);
    }

    #[test]
    fn leak_on_accepts_the_four_classes_and_names_them_when_wrong() {
        for c in ["stream", "unary", "openai", "anthropic"] {
            let a = parse(&["--leak-on".to_string(), c.to_string()]);
            assert_eq!(a.leak_on.map(LeakOn::as_str), Some(c));
            let t = from_toml(&format!("leak_on = \"{c}\"")).expect("toml");
            assert_eq!(t.leak_on, a.leak_on);
        }
        let e = Cli::try_parse_from(["soakd-mock", "--leak-on", "grpc"]).expect_err("unknown");
        let e = e.to_string();
        assert!(e.contains("--leak-on") && e.contains("grpc"), "{e}");
        assert!(e.contains("stream, unary, openai, anthropic"), "{e}");
        let e = from_toml("leak_on = \"grpc\"").expect_err("unknown class");
        let e = e.to_string();
        assert!(e.contains("leak_on") && e.contains("grpc"), "{e}");
        assert!(e.contains("stream, unary, openai or anthropic"), "{e}");
    }

    #[test]
    fn leak_on_classes() {
        use LeakOn::*;
        // (stream, anthropic) → in the class?
        assert!(Stream.matches(true, false) && !Stream.matches(false, true));
        assert!(Unary.matches(false, true) && !Unary.matches(true, false));
        assert!(Openai.matches(true, false) && !Openai.matches(false, true));
        assert!(Anthropic.matches(false, true) && !Anthropic.matches(true, false));
    }

    #[test]
    fn toml_rejects_unknown_keys_and_bad_durations() {
        let e = from_toml("ttfb = \"5ms\"").expect_err("unknown key");
        assert!(e.to_string().contains("ttfb"), "{e}");
        let e = from_toml("ttft = \"fast\"").expect_err("bad duration");
        assert!(e.to_string().contains("fast"), "{e}");
    }

    #[test]
    fn serde_json_round_trip() {
        let a = every_knob_set();
        let s = serde_json::to_string(&a).unwrap();
        assert!(s.contains("\"ttft\":\"50ms\""), "{s}");
        let b: MockArgs = serde_json::from_str(&s).unwrap();
        assert_eq!(a, b);
        let d: MockArgs = serde_json::from_str("{}").unwrap();
        assert_eq!(d, MockArgs::default());
    }

    fn invalid_field(a: &MockArgs) -> (String, String, String) {
        match a.validate().expect_err("must be invalid") {
            ConfigError::Invalid {
                field,
                value,
                reason,
            } => (field, value, reason),
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn validation_names_field_value_and_reason() {
        MockArgs::default().validate().expect("defaults are valid");

        let (f, v, r) = invalid_field(&MockArgs {
            error_rate: 1.5,
            ..Default::default()
        });
        assert_eq!((f.as_str(), v.as_str()), ("mock.error_rate", "1.5"));
        assert!(r.contains("0..=1"), "{r}");

        let (f, _, _) = invalid_field(&MockArgs {
            stall_rate: -0.1,
            ..Default::default()
        });
        assert_eq!(f, "mock.stall_rate");

        let (f, _, _) = invalid_field(&MockArgs {
            garbage_rate: f64::NAN,
            ..Default::default()
        });
        assert_eq!(f, "mock.garbage_rate");

        let (f, v, r) = invalid_field(&MockArgs {
            error_rate: 0.6,
            truncate_rate: 0.5,
            ..Default::default()
        });
        assert_eq!((f.as_str(), v.as_str()), ("mock.error_rate", "1.1"));
        assert!(r.contains("must not exceed 1"), "{r}");

        // Exactly 1 in total is fine.
        MockArgs {
            error_rate: 0.5,
            truncate_rate: 0.25,
            stall_rate: 0.25,
            ..Default::default()
        }
        .validate()
        .expect("sum of exactly 1 is valid");

        // (what is set on the defaults, the field the error names)
        type Change = fn(&mut MockArgs);
        let cases: [(Change, &str); 17] = [
            (|a| a.chunks = 0, "mock.chunks"),
            (|a| a.chunk_bytes = 0, "mock.chunk_bytes"),
            (
                |a| {
                    a.chunks = 1 << 20;
                    a.chunk_bytes = 1 << 10;
                },
                "mock.chunks",
            ),
            (|a| a.error_status = 200, "mock.error_status"),
            (|a| a.tool_call_rate = 1.5, "mock.tool_call_rate"),
            (
                |a| {
                    a.chunks = 1;
                    a.reasoning_chunks = 1 << 20;
                    a.chunk_bytes = 1 << 10;
                },
                "mock.chunks",
            ),
            (|a| a.error_status = 600, "mock.error_status"),
            (|a| a.leak_fd_every = Some(0), "mock.leak_fd_every"),
            (|a| a.leak_thread_every = Some(0), "mock.leak_thread_every"),
            (
                |a| a.sawtooth_bytes = Some(64 << 20),
                "mock.sawtooth_period",
            ),
            (
                |a| a.sawtooth_period = Some(Duration::from_secs(60)),
                "mock.sawtooth_bytes",
            ),
            (
                |a| {
                    a.sawtooth_bytes = Some(4096);
                    a.sawtooth_period = Some(Duration::from_secs(60));
                },
                "mock.sawtooth_bytes",
            ),
            (|a| a.plateau_bytes = Some(0), "mock.plateau_bytes"),
            (|a| a.exit_after = Some(Duration::ZERO), "mock.exit_after"),
            (
                |a| a.idle_release = Some(Duration::ZERO),
                "mock.idle_release",
            ),
            (
                |a| a.leak_bytes_per_request = MAX_LEAK_PER_REQUEST + 1,
                "mock.leak_bytes_per_request",
            ),
            (
                |a| a.leak_bytes_per_stream_second = MAX_LEAK_PER_REQUEST + 1,
                "mock.leak_bytes_per_stream_second",
            ),
        ];
        for (set, field) in cases {
            let mut args = MockArgs::default();
            set(&mut args);
            let (f, _, r) = invalid_field(&args);
            assert_eq!(f, field, "reason: {r}");
            assert!(!r.is_empty());
        }
        let (_, v, r) = invalid_field(&MockArgs {
            error_status: 302,
            ..Default::default()
        });
        assert_eq!(v, "302");
        assert!(r.contains("400..=599"), "{r}");
    }
}
