//! `[[scenarios]]`: raw structs mirroring the file, validated into [`Scenario`]s.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::client::{ApiKind, CancelAt};
use crate::units::{self, ConfigError};
use crate::workload::{Cancellation, PromptLengths, Prompts, Scenario};

/// `[[scenarios]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawScenario {
    /// Label value of `scenario`: letters, digits, `_`, `-`.
    pub name: String,
    /// "openai" (chat completions) or "anthropic" (messages).
    pub api: String,
    /// Relative share of requests.
    pub weight: u32,
    /// Request path; default by API (`/v1/chat/completions`, `/v1/messages`).
    pub path: Option<String>,
    /// Model name sent in the body.
    pub model: String,
    /// Stream the response (SSE).
    pub stream: bool,
    /// OpenAI: ask for the usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    /// `max_tokens` sent in the body.
    pub max_tokens: u32,
    /// Extra request headers (a proxy's routing or tenant headers).
    pub headers: BTreeMap<String, String>,
    /// Extra body fields passed through (temperature, tools…).
    pub body: serde_json::Map<String, serde_json::Value>,
    /// Synthetic prompt lengths in tokens (ignored with `prompts_file`).
    pub prompt: RawPrompt,
    /// JSONL file of prompts (JSON strings or objects with a "prompt" field).
    pub prompts_file: Option<PathBuf>,
    /// Client-side cancellation of a fraction of streams.
    pub cancel: Option<RawCancel>,
}

impl Default for RawScenario {
    fn default() -> Self {
        RawScenario {
            name: "chat".into(),
            api: "openai".into(),
            weight: 1,
            path: None,
            model: "gpt-4o-mini".into(),
            stream: true,
            include_usage: true,
            max_tokens: 256,
            headers: BTreeMap::new(),
            body: serde_json::Map::new(),
            prompt: RawPrompt::default(),
            prompts_file: None,
            cancel: None,
        }
    }
}

/// `[scenarios.prompt]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPrompt {
    pub mean_tokens: f64,
    pub stddev_tokens: f64,
    pub min_tokens: u32,
    pub max_tokens: u32,
}

impl Default for RawPrompt {
    fn default() -> Self {
        let d = PromptLengths::default();
        RawPrompt {
            mean_tokens: d.mean,
            stddev_tokens: d.stddev,
            min_tokens: d.min,
            max_tokens: d.max,
        }
    }
}

/// `[scenarios.cancel]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCancel {
    /// Fraction of streams cancelled (0..=1).
    pub fraction: f64,
    /// Cancel after this many content chunks (exclusive with `after`).
    pub after_chunks: Option<u32>,
    /// Cancel this long after the send (exclusive with `after_chunks`).
    pub after: Option<String>,
}

/// Validates `[[scenarios]]` (one default OpenAI streaming scenario when none is given).
pub fn validate_scenarios(scenarios: &[RawScenario]) -> Result<Vec<Scenario>, ConfigError> {
    let raws = if scenarios.is_empty() {
        vec![RawScenario::default()]
    } else {
        scenarios.to_vec()
    };
    let mut names = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(raws.len());
    for (i, s) in raws.iter().enumerate() {
        let f = |k: &str| format!("scenarios[{i}].{k}");
        units::label_value(&f("name"), &s.name)?;
        if !names.insert(s.name.clone()) {
            return Err(ConfigError::invalid(
                f("name"),
                &s.name,
                "duplicate scenario name",
            ));
        }
        let api = match s.api.as_str() {
            "openai" => ApiKind::OpenAiChat,
            "anthropic" => ApiKind::AnthropicMessages,
            other => {
                return Err(ConfigError::invalid(
                    f("api"),
                    other,
                    "unknown API kind; must be \"openai\" or \"anthropic\"",
                ))
            }
        };
        let path = s.path.clone().unwrap_or_else(|| api.default_path().into());
        if !path.starts_with('/') {
            return Err(ConfigError::invalid(
                f("path"),
                &path,
                "must start with '/'",
            ));
        }
        if s.model.trim().is_empty() {
            return Err(ConfigError::invalid(
                f("model"),
                &s.model,
                "must not be empty",
            ));
        }
        if s.max_tokens == 0 {
            return Err(ConfigError::invalid(
                f("max_tokens"),
                0,
                "must be at least 1",
            ));
        }
        for (k, v) in &s.headers {
            reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| ConfigError::invalid(f("headers"), k, "not a valid header name"))?;
            reqwest::header::HeaderValue::from_str(v).map_err(|_| {
                ConfigError::invalid(
                    format!("{}.{k}", f("headers")),
                    "<value>",
                    "not a valid header value",
                )
            })?;
        }
        if s.body.contains_key("messages") {
            return Err(ConfigError::invalid(
                f("body"),
                "messages",
                "soakd writes the messages; use prompt or prompts_file",
            ));
        }
        let prompts = match &s.prompts_file {
            Some(p) => Prompts::File(crate::workload::load_prompts(p, &f("prompts_file"))?),
            None => {
                let p = &s.prompt;
                if !(p.mean_tokens.is_finite() && p.mean_tokens >= 1.0) {
                    return Err(ConfigError::invalid(
                        f("prompt.mean_tokens"),
                        p.mean_tokens,
                        "must be at least 1",
                    ));
                }
                if !(p.stddev_tokens.is_finite() && p.stddev_tokens >= 0.0) {
                    return Err(ConfigError::invalid(
                        f("prompt.stddev_tokens"),
                        p.stddev_tokens,
                        "must be 0 or more",
                    ));
                }
                if p.min_tokens == 0 || p.min_tokens > p.max_tokens {
                    return Err(ConfigError::invalid(
                        f("prompt.min_tokens"),
                        p.min_tokens,
                        format!("must be between 1 and prompt.max_tokens = {}", p.max_tokens),
                    ));
                }
                Prompts::Synthetic(PromptLengths {
                    mean: p.mean_tokens,
                    stddev: p.stddev_tokens,
                    min: p.min_tokens,
                    max: p.max_tokens,
                })
            }
        };
        let cancel = match &s.cancel {
            None => None,
            Some(c) => {
                let fraction = units::fraction(&f("cancel.fraction"), c.fraction)?;
                if !s.stream {
                    return Err(ConfigError::invalid(
                        f("cancel"),
                        "(set)",
                        "cancellation applies to streaming scenarios only",
                    ));
                }
                let at = match (c.after_chunks, &c.after) {
                    (Some(n), None) if n > 0 => CancelAt::AfterChunks(n),
                    (None, Some(d)) => {
                        CancelAt::AfterTime(units::positive_duration(&f("cancel.after"), d)?)
                    }
                    _ => {
                        return Err(ConfigError::invalid(
                            f("cancel"),
                            "(set)",
                            "set exactly one of after_chunks (≥ 1) or after",
                        ))
                    }
                };
                Some(Cancellation { fraction, at })
            }
        };
        out.push(Scenario {
            name: s.name.clone(),
            api,
            weight: s.weight,
            path,
            model: s.model.clone(),
            stream: s.stream,
            include_usage: s.include_usage,
            max_tokens: s.max_tokens,
            headers: s
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            body_extra: s.body.clone(),
            prompts,
            cancel,
        });
    }
    if out.iter().all(|s| s.weight == 0) {
        return Err(ConfigError::invalid(
            "scenarios[].weight",
            0,
            "at least one scenario needs a weight above 0",
        ));
    }
    Ok(out)
}
