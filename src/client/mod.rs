//! TEMPORARY stand-in (replaced by the client branch at merge).
use std::time::Duration;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKind {
    OpenAiChat,
    AnthropicMessages,
}
impl ApiKind {
    pub fn default_path(self) -> &'static str {
        match self {
            ApiKind::OpenAiChat => "/v1/chat/completions",
            ApiKind::AnthropicMessages => "/v1/messages",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKind::OpenAiChat => "openai",
            ApiKind::AnthropicMessages => "anthropic",
        }
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelAt {
    AfterChunks(u32),
    AfterTime(Duration),
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    Auto,
    Http1Only,
    Http2PriorKnowledge,
}
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    pub ca_file: Option<std::path::PathBuf>,
    pub insecure_skip_verify: bool,
}
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub stream_timeout: Duration,
    pub pool_max_idle_per_host: usize,
    pub pool_idle_timeout: Duration,
    pub http: HttpVersion,
    pub tls: TlsSettings,
    pub max_response_bytes: usize,
    pub max_event_bytes: usize,
    pub user_agent: String,
}
impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            stream_timeout: Duration::from_secs(600),
            pool_max_idle_per_host: 256,
            pool_idle_timeout: Duration::from_secs(90),
            http: HttpVersion::Auto,
            tls: TlsSettings::default(),
            max_response_bytes: 16 << 20,
            max_event_bytes: 1 << 20,
            user_agent: "soakd".into(),
        }
    }
}
#[derive(Debug, thiserror::Error)]
#[error("client error")]
pub struct ClientError;
pub struct RequestSpec {
    pub stream: bool,
}
impl RequestSpec {
    pub fn new(
        _api: ApiKind,
        _url: url::Url,
        _key: Option<&str>,
        _h: &[(String, String)],
        stream: bool,
    ) -> Result<Self, ClientError> {
        Ok(RequestSpec { stream })
    }
}
pub struct Exchange<'a> {
    pub client: &'a reqwest::Client,
    pub spec: &'a RequestSpec,
    pub settings: &'a ClientSettings,
    pub metrics: &'a crate::metrics::ScenarioMetrics,
    pub stats: &'a crate::stats::Stats,
}
pub struct RequestReport {
    pub outcome: crate::metrics::Outcome,
}
impl Exchange<'_> {
    pub async fn execute(
        &self,
        _b: bytes::Bytes,
        _i: tokio::time::Instant,
        _p: crate::metrics::Phase,
        _c: Option<CancelAt>,
    ) -> RequestReport {
        RequestReport {
            outcome: crate::metrics::Outcome::Ok,
        }
    }
}
pub fn build_http_client(_s: &ClientSettings) -> Result<reqwest::Client, ClientError> {
    Ok(reqwest::Client::new())
}
