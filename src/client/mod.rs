//! The streaming client: HTTP, SSE reading, per-API stream parsing, outcome classification,
//! and every per-request traffic metric.
//!
//! Layers, from the bytes up:
//! - [`sse`]: an incremental SSE reader fed with network chunks at any split, bounded memory.
//! - [`openai`] (chat), [`completions`] (legacy), [`responses`] and [`anthropic`] behind
//!   [`parser::StreamParser`]: what each event means (a [`stream::Step`]: content and its kind,
//!   terminator, error frame, usage); [`embeddings`] checks the one API that never streams.
//! - [`drive`]: one stream's reader and parser together, deciding its outcome.
//! - [`classify`]: HTTP status / transport error → [`Outcome`], and a rate-limited warning.
//! - [`http1`] and [`wire`]: the plain-HTTP/1.1 fast path (soakd's own HTTP/1.1 client and a
//!   small pool), used instead of reqwest for `http://` targets when nothing asks for reqwest
//!   (proxy variables, HTTP/2, `SOAKD_HTTP_CLIENT=reqwest`); [`response`] puts either client's
//!   response behind one interface.
//! - [`exchange`]: [`Exchange::execute`] sends one request, reads the response as it arrives
//!   (a stream is never accumulated: its memory is the SSE reader's buffer), and records the
//!   request's metrics through [`record::ScenarioMetrics`] (Prometheus and HDR together).
//!
//! This module holds the shared types: [`ApiKind`], [`build_http_client`] (from the
//! [`settings`] of `[target]`), [`RequestSpec`] (URL and headers built once per scenario) and
//! the one list of secret headers ([`is_secret_header`]).

pub mod anthropic;
pub mod classify;
pub mod completions;
pub mod drive;
pub mod embeddings;
pub mod error_body;
pub mod exchange;
pub mod http1;
pub mod openai;
pub mod outcome;
pub mod parser;
pub mod record;
pub mod response;
pub mod responses;
pub mod settings;
pub mod sse;
pub mod stream;
pub mod wire;

#[cfg(test)]
mod http1_tests;
#[cfg(test)]
mod split_tests;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};

pub use classify::RequestWarnings;
pub use exchange::{CancelAt, Exchange, RequestReport, Tag};
pub use http1::{H1Head, Http1Pool};
pub use outcome::{Outcome, StreamResult};
pub use record::{Finished, ScenarioMetrics};
pub use settings::{ClientSettings, HttpVersion, RawTarget, Secret, TargetSettings, TlsSettings};
pub use stream::{DeltaKind, TtftOn};

/// The wire API a scenario speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiKind {
    /// OpenAI Chat Completions (`/v1/chat/completions`).
    OpenAiChat,
    /// OpenAI Responses (`/v1/responses`).
    OpenAiResponses,
    /// OpenAI legacy Completions (`/v1/completions`).
    OpenAiCompletions,
    /// OpenAI Embeddings (`/v1/embeddings`), never streamed.
    OpenAiEmbeddings,
    /// Anthropic Messages (`/v1/messages`).
    AnthropicMessages,
}

impl ApiKind {
    /// Every kind.
    pub const ALL: [ApiKind; 5] = [
        ApiKind::OpenAiChat,
        ApiKind::OpenAiResponses,
        ApiKind::OpenAiCompletions,
        ApiKind::OpenAiEmbeddings,
        ApiKind::AnthropicMessages,
    ];

    /// The config spelling: `openai`, `openai-responses`, `openai-completions`,
    /// `openai-embeddings` or `anthropic`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ApiKind::OpenAiChat => "openai",
            ApiKind::OpenAiResponses => "openai-responses",
            ApiKind::OpenAiCompletions => "openai-completions",
            ApiKind::OpenAiEmbeddings => "openai-embeddings",
            ApiKind::AnthropicMessages => "anthropic",
        }
    }

    /// The request path when a scenario does not set one.
    pub const fn default_path(self) -> &'static str {
        match self {
            ApiKind::OpenAiChat => "/v1/chat/completions",
            ApiKind::OpenAiResponses => "/v1/responses",
            ApiKind::OpenAiCompletions => "/v1/completions",
            ApiKind::OpenAiEmbeddings => "/v1/embeddings",
            ApiKind::AnthropicMessages => "/v1/messages",
        }
    }

    /// Whether the API can stream (every one but embeddings); also the default of `stream`.
    pub const fn streams(self) -> bool {
        !matches!(self, ApiKind::OpenAiEmbeddings)
    }

    /// Whether answers carry text deltas, so `ttft_on` means something.
    pub const fn has_text_deltas(self) -> bool {
        self.streams()
    }

    /// Parses the config spelling.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for ApiKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Anthropic API version header value sent with every Anthropic request.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Building the client or a request spec failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The CA file could not be read.
    #[error("cannot read CA file {path}: {error}")]
    CaFileRead {
        /// The configured path.
        path: PathBuf,
        /// The I/O error (in the message, not also a `source()`).
        error: std::io::Error,
    },
    /// The CA file holds no usable PEM certificate.
    #[error("invalid CA file {path}: {reason}")]
    CaFileInvalid {
        /// The configured path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// reqwest refused the configuration.
    #[error("reqwest refused the settings: {0}")]
    Build(reqwest::Error),
    /// A header name or value is not valid HTTP.
    #[error("invalid header {name:?}: {reason}")]
    Header {
        /// The header name as configured.
        name: String,
        /// What is wrong with it (never the value: it may be a secret).
        reason: &'static str,
    },
}

/// Builds the one shared HTTP client: rustls with the platform verifier (system roots), plus
/// an optional CA file, keep-alive pool, `TCP_NODELAY`, no redirects (a soak must see a 3xx),
/// no global timeouts (each request applies its own, see [`Exchange::execute`]). reqwest's
/// environment proxies stay on: `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` (and
/// their lowercase forms) are read once, here.
pub fn build_http_client(s: &ClientSettings) -> Result<reqwest::Client, ClientError> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(s.connect_timeout)
        .pool_max_idle_per_host(s.pool_max_idle_per_host)
        .pool_idle_timeout(s.pool_idle_timeout)
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(s.user_agent.clone());
    b = match s.http {
        HttpVersion::Auto => b,
        HttpVersion::Http1Only => b.http1_only(),
        HttpVersion::Http2PriorKnowledge => b.http2_prior_knowledge(),
    };
    if let Some(path) = &s.tls.ca_file {
        let pem = std::fs::read(path).map_err(|error| ClientError::CaFileRead {
            path: path.clone(),
            error,
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            ClientError::CaFileInvalid {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?;
        if certs.is_empty() {
            return Err(ClientError::CaFileInvalid {
                path: path.clone(),
                reason: "no PEM certificate found".into(),
            });
        }
        b = b.tls_certs_merge(certs);
    }
    if s.tls.insecure_skip_verify {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    b.build().map_err(ClientError::Build)
}

/// What a scenario sends: the URL and headers, built once and reused for every request.
#[derive(Debug)]
pub struct RequestSpec {
    /// The wire API.
    pub api: ApiKind,
    /// The full target URL.
    pub url: reqwest::Url,
    /// Content type, auth (marked sensitive) and the scenario's extra headers.
    pub headers: HeaderMap,
    /// Whether the request body asks for a stream (`"stream": true`).
    pub stream: bool,
    /// Which content deltas start TTFT.
    pub ttft_on: TtftOn,
    /// Inputs per request (embeddings: the answer must hold one embedding each).
    pub inputs: u32,
    /// The scenario name, for log fields only.
    pub scenario: String,
    /// Rate limit of this scenario's per-request warnings.
    pub warn: RequestWarnings,
}

impl Clone for RequestSpec {
    /// Clones the request shape; the clone gets its own (fresh) warning limiter.
    fn clone(&self) -> Self {
        RequestSpec {
            api: self.api,
            url: self.url.clone(),
            headers: self.headers.clone(),
            stream: self.stream,
            ttft_on: self.ttft_on,
            inputs: self.inputs,
            scenario: self.scenario.clone(),
            warn: RequestWarnings::default(),
        }
    }
}

impl RequestSpec {
    /// Builds the headers: `content-type: application/json`; for the OpenAI APIs
    /// `authorization: Bearer <key>`, for Anthropic `x-api-key` and `anthropic-version`;
    /// then `extra` (which may override any of them). Secrets are marked sensitive so they are
    /// never printed. Streams are on by default for every API that streams, see
    /// [`RequestSpec::with_stream`]; TTFT counts any delta and one input is sent.
    pub fn new(
        api: ApiKind,
        url: reqwest::Url,
        api_key: Option<&str>,
        extra: &[(String, String)],
    ) -> Result<Self, ClientError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match api {
            ApiKind::OpenAiChat
            | ApiKind::OpenAiResponses
            | ApiKind::OpenAiCompletions
            | ApiKind::OpenAiEmbeddings => {
                if let Some(key) = api_key {
                    let v = secret_value("authorization", &format!("Bearer {key}"))?;
                    headers.insert(AUTHORIZATION, v);
                }
            }
            ApiKind::AnthropicMessages => {
                if let Some(key) = api_key {
                    headers.insert(
                        HeaderName::from_static("x-api-key"),
                        secret_value("x-api-key", key)?,
                    );
                }
                headers.insert(
                    HeaderName::from_static("anthropic-version"),
                    HeaderValue::from_static(ANTHROPIC_VERSION),
                );
            }
        }
        for (name, value) in extra {
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| ClientError::Header {
                name: name.clone(),
                reason: "not a valid header name",
            })?;
            let mut v = HeaderValue::from_str(value).map_err(|_| ClientError::Header {
                name: name.clone(),
                reason: "value is not valid in a header",
            })?;
            if is_secret_header(n.as_str()) {
                v.set_sensitive(true);
            }
            headers.insert(n, v);
        }
        Ok(RequestSpec {
            api,
            url,
            headers,
            stream: api.streams(),
            ttft_on: TtftOn::Any,
            inputs: 1,
            scenario: String::new(),
            warn: RequestWarnings::default(),
        })
    }

    /// Sets whether requests stream.
    pub fn with_stream(mut self, stream: bool) -> Self {
        self.stream = stream;
        self
    }

    /// Sets which content deltas start TTFT.
    pub fn with_ttft_on(mut self, ttft_on: TtftOn) -> Self {
        self.ttft_on = ttft_on;
        self
    }

    /// Sets the number of inputs each request carries (embeddings).
    pub fn with_inputs(mut self, inputs: u32) -> Self {
        self.inputs = inputs;
        self
    }

    /// Sets the scenario name used in log fields.
    pub fn with_scenario(mut self, name: impl Into<String>) -> Self {
        self.scenario = name.into();
        self
    }
}

fn secret_value(name: &str, value: &str) -> Result<HeaderValue, ClientError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| ClientError::Header {
        name: name.into(),
        reason: "API key is not valid in a header",
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// Header names whose values are credentials: marked sensitive on the wire, never logged,
/// redacted when the config is printed. Case-insensitive.
pub fn is_secret_header(name: &str) -> bool {
    const SECRET: [&str; 5] = [
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "cookie",
    ];
    SECRET.iter().any(|s| s.eq_ignore_ascii_case(name))
}
