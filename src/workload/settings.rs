//! The `[[scenarios]]` config section: raw structs mirroring the file, and their validation
//! into [`Scenario`]s. Errors name the field as `scenarios[i].key`, the value and the reason.
//!
//! Rules beyond each key's own range:
//! - `api` picks the wire API and the default `path`; `stream` defaults to true for every API
//!   but `openai-embeddings`, which never streams (an explicit `stream = true` there is an
//!   error);
//! - `ttft_on` (`"any"`, the default, or `"text"`) needs an API with text deltas (not
//!   embeddings) and a streaming scenario;
//! - `inputs_per_request` (1..=2048, default 1) is for `openai-embeddings` only;
//! - `body` may not set the fields soakd builds: the API's prompt field (`messages`, `input` or
//!   `prompt`) and `stream`; for Anthropic not `system` either when the prompts file has a
//!   conversation with a system message;
//! - `cancel` takes `fraction` and exactly one of `after` (any scenario: a unary request is
//!   abandoned that long after its send) or `after_chunks` (streaming scenarios only);
//! - at least one scenario has a weight above 0. With no scenario at all, one default
//!   (`RawScenario::default()`, an OpenAI chat stream) is used.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::body::built_fields;
use super::{load_prompts, Cancellation, PromptLengths, Prompts, Scenario};
use crate::client::{ApiKind, CancelAt, TtftOn};
use crate::units::{self, ConfigError};

/// Most inputs one embeddings request may carry (OpenAI's limit).
pub const MAX_INPUTS_PER_REQUEST: u32 = 2048;

/// `[[scenarios]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawScenario {
    /// Label value of `scenario`: letters, digits, `_`, `-`.
    pub name: String,
    /// "openai" (chat completions), "openai-responses", "openai-completions" (legacy),
    /// "openai-embeddings" or "anthropic" (messages).
    pub api: String,
    /// Relative share of requests.
    pub weight: u32,
    /// Request path; default by API (`/v1/chat/completions`, `/v1/responses`,
    /// `/v1/completions`, `/v1/embeddings`, `/v1/messages`).
    pub path: Option<String>,
    /// Model name sent in the body.
    pub model: String,
    /// Stream the response (SSE); default true, except for openai-embeddings (never).
    pub stream: Option<bool>,
    /// Which deltas start TTFT: "any" (text, tool-call arguments or reasoning; the default)
    /// or "text".
    pub ttft_on: Option<String>,
    /// Chat and legacy completions streams: ask for the usage chunk
    /// (`stream_options.include_usage`).
    pub include_usage: bool,
    /// The output token budget sent in the body (`max_tokens`, or `max_output_tokens` for
    /// openai-responses; embeddings send none).
    pub max_tokens: u32,
    /// openai-embeddings: texts per request (default 1).
    pub inputs_per_request: Option<u32>,
    /// Extra request headers (a proxy's routing or tenant headers).
    pub headers: BTreeMap<String, String>,
    /// Extra body fields passed through (temperature, tools…).
    pub body: serde_json::Map<String, serde_json::Value>,
    /// Synthetic prompt lengths in tokens (ignored with `prompts_file`).
    pub prompt: RawPrompt,
    /// JSONL file of prompts: JSON strings, objects with a "prompt" string, or objects with a
    /// "messages" array (chat, Responses and Anthropic only).
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
            stream: None,
            ttft_on: None,
            include_usage: true,
            max_tokens: 256,
            inputs_per_request: None,
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
    /// Fraction of requests cancelled (0..=1).
    pub fraction: f64,
    /// Cancel after this many content chunks (exclusive with `after`; streams only).
    pub after_chunks: Option<u32>,
    /// Cancel this long after the send, whatever has arrived (exclusive with `after_chunks`;
    /// streaming and unary scenarios).
    pub after: Option<String>,
}

// Local stand-ins for the config's unit parsers (the shared units module will own them).
/// The names `api` accepts, for error messages.
fn api_names() -> String {
    let names: Vec<String> = ApiKind::ALL
        .iter()
        .map(|k| format!("\"{}\"", k.as_str()))
        .collect();
    names.join(", ")
}

/// Validates the `[[scenarios]]` section (the default scenario when it is empty).
pub fn validate_scenarios(raws: &[RawScenario]) -> Result<Vec<Scenario>, ConfigError> {
    let default = [RawScenario::default()];
    let raws = if raws.is_empty() { &default[..] } else { raws };
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
        out.push(validate_one(s, &f)?);
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

fn validate_one(s: &RawScenario, f: &dyn Fn(&str) -> String) -> Result<Scenario, ConfigError> {
    let api = ApiKind::from_name(&s.api).ok_or_else(|| {
        ConfigError::invalid(
            f("api"),
            &s.api,
            format!("unknown API kind; must be one of {}", api_names()),
        )
    })?;
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
    let stream = match s.stream {
        Some(true) if !api.streams() => {
            return Err(ConfigError::invalid(
                f("stream"),
                true,
                format!("{api} responses are never streamed"),
            ))
        }
        Some(v) => v,
        None => api.streams(),
    };
    let ttft_on = match s.ttft_on.as_deref() {
        None => TtftOn::Any,
        Some(v) => {
            if !api.has_text_deltas() {
                return Err(ConfigError::invalid(
                    f("ttft_on"),
                    v,
                    format!("{api} answers have no deltas, so there is no first token"),
                ));
            }
            if !stream {
                return Err(ConfigError::invalid(
                    f("ttft_on"),
                    v,
                    "TTFT is measured on streaming scenarios only",
                ));
            }
            units::one_of(
                f("ttft_on"),
                v,
                &[("any", TtftOn::Any), ("text", TtftOn::Text)],
            )?
        }
    };
    let inputs = match s.inputs_per_request {
        None => 1,
        Some(n) if api != ApiKind::OpenAiEmbeddings => {
            return Err(ConfigError::invalid(
                f("inputs_per_request"),
                n,
                "applies to openai-embeddings scenarios only",
            ))
        }
        Some(n) if !(1..=MAX_INPUTS_PER_REQUEST).contains(&n) => {
            return Err(ConfigError::invalid(
                f("inputs_per_request"),
                n,
                format!("must be in 1..={MAX_INPUTS_PER_REQUEST}"),
            ))
        }
        Some(n) => n,
    };
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
    for key in built_fields(api) {
        if s.body.contains_key(key) {
            return Err(ConfigError::invalid(
                format!("{}.{key}", f("body")),
                key,
                format!(
                    "soakd writes {key} for {api} requests; use prompt or prompts_file \
                     (and the scenario's stream key)"
                ),
            ));
        }
    }
    let prompts = match &s.prompts_file {
        Some(p) => {
            let loaded = load_prompts(p, &f("prompts_file"), api)?;
            if let (Some(line), true) = (loaded.system_line, s.body.contains_key("system")) {
                return Err(ConfigError::invalid(
                    format!("{}.system", f("body")),
                    "system",
                    format!(
                        "{} line {line} has a system message, which becomes the system field",
                        p.display()
                    ),
                ));
            }
            Prompts::File(loaded.prompts)
        }
        None => Prompts::Synthetic(prompt_lengths(&s.prompt, f)?),
    };
    let cancel = match &s.cancel {
        None => None,
        Some(c) => {
            let fraction = units::fraction(&f("cancel.fraction"), c.fraction)?;
            if let (Some(n), false) = (c.after_chunks, stream) {
                return Err(ConfigError::invalid(
                    f("cancel.after_chunks"),
                    n,
                    "counts stream chunks: use cancel.after for a non-streaming scenario",
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
    Ok(Scenario {
        name: s.name.clone(),
        api,
        weight: s.weight,
        path,
        model: s.model.clone(),
        stream,
        ttft_on,
        include_usage: s.include_usage,
        max_tokens: s.max_tokens,
        inputs,
        headers: s
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        body_extra: s.body.clone(),
        prompts,
        cancel,
    })
}

fn prompt_lengths(p: &RawPrompt, f: &dyn Fn(&str) -> String) -> Result<PromptLengths, ConfigError> {
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
    Ok(PromptLengths {
        mean: p.mean_tokens,
        stddev: p.stddev_tokens,
        min: p.min_tokens,
        max: p.max_tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::ScratchFile;

    /// Validates the `[[scenarios]]` tables of `toml`.
    fn validate(toml_text: &str) -> Result<Vec<Scenario>, String> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            scenarios: Vec<RawScenario>,
        }
        let file: File = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        validate_scenarios(&file.scenarios).map_err(|e| e.to_string())
    }

    #[test]
    fn every_api_validates_with_its_defaults() {
        for api in ApiKind::ALL {
            let s = validate(&format!("[[scenarios]]\napi = \"{api}\"\n")).unwrap();
            let s = &s[0];
            assert_eq!(s.api, api);
            assert_eq!(s.path, api.default_path());
            assert_eq!(s.stream, api != ApiKind::OpenAiEmbeddings, "{api}");
            assert_eq!((s.ttft_on, s.inputs), (TtftOn::Any, 1));
        }
        let s = validate("").unwrap();
        assert_eq!(
            (s.len(), s[0].api, s[0].stream),
            (1, ApiKind::OpenAiChat, true)
        );
    }

    /// The "soak started" line names each scenario's output budget (issue 27: a default of
    /// 256 silently capped the mock's 400 chunks).
    #[test]
    fn the_plan_line_shows_max_tokens_per_scenario() {
        let s = validate(
            "[[scenarios]]\nname = \"chat\"\nweight = 3\nmax_tokens = 64\n\
             cancel = { fraction = 0.05, after_chunks = 4 }\n\
             [[scenarios]]\nname = \"resp\"\napi = \"openai-responses\"\n\
             [[scenarios]]\nname = \"vec\"\napi = \"openai-embeddings\"\nstream = false\n",
        )
        .unwrap();
        assert_eq!(
            crate::workload::ScenarioList(&s).to_string(),
            "chat weight 3 (openai gpt-4o-mini stream, max_tokens 64, cancel 5% after 4 \
             chunks), resp weight 1 (openai-responses gpt-4o-mini stream, max_output_tokens \
             256), vec weight 1 (openai-embeddings gpt-4o-mini no stream)"
        );
    }

    #[test]
    fn embeddings_inputs_and_ttft_on() {
        let s = validate(
            "[[scenarios]]\napi = \"openai-embeddings\"\nstream = false\ninputs_per_request = 16\n\
             [[scenarios]]\nname = \"t\"\napi = \"openai-responses\"\nttft_on = \"text\"\n",
        )
        .unwrap();
        assert_eq!((s[0].stream, s[0].inputs), (false, 16));
        assert_eq!(s[1].ttft_on, TtftOn::Text);
    }

    #[test]
    fn bad_scenarios_name_the_field() {
        let conv = ScratchFile::with(
            "settings",
            "conversation.jsonl",
            "\"plain\"\n{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"u\"}]}\n",
        );
        let conv_s = conv.path().display().to_string();
        let cases: Vec<(String, &str, &str)> = vec![
            (
                "api = \"gemini\"".into(),
                "scenarios[0].api",
                "openai-responses",
            ),
            (
                "api = \"openai-embeddings\"\nstream = true".into(),
                "scenarios[0].stream",
                "never streamed",
            ),
            (
                "api = \"openai-embeddings\"\nttft_on = \"any\"".into(),
                "scenarios[0].ttft_on",
                "no deltas",
            ),
            (
                "stream = false\nttft_on = \"text\"".into(),
                "scenarios[0].ttft_on",
                "streaming",
            ),
            (
                "ttft_on = \"first\"".into(),
                "scenarios[0].ttft_on",
                "\"any\" or \"text\"",
            ),
            (
                "inputs_per_request = 2".into(),
                "scenarios[0].inputs_per_request",
                "embeddings",
            ),
            (
                "api = \"openai-embeddings\"\ninputs_per_request = 0".into(),
                "scenarios[0].inputs_per_request",
                "1..=2048",
            ),
            (
                "body = { messages = [] }".into(),
                "scenarios[0].body.messages",
                "soakd writes messages",
            ),
            (
                "body = { stream = false }".into(),
                "scenarios[0].body.stream",
                "soakd writes stream",
            ),
            (
                "api = \"openai-responses\"\nbody = { input = \"x\" }".into(),
                "scenarios[0].body.input",
                "input",
            ),
            (
                "api = \"openai-completions\"\nbody = { prompt = \"x\" }".into(),
                "scenarios[0].body.prompt",
                "prompt",
            ),
            (
                "api = \"openai-embeddings\"\nbody = { input = [\"x\"] }".into(),
                "scenarios[0].body.input",
                "input",
            ),
            (
                "api = \"anthropic\"\nbody = { messages = [] }".into(),
                "scenarios[0].body.messages",
                "anthropic",
            ),
            (
                format!(
                    "api = \"anthropic\"\nprompts_file = {conv_s:?}\nbody = {{ system = \"x\" }}"
                ),
                "scenarios[0].body.system",
                "line 2 has a system message",
            ),
            (
                format!("api = \"openai-completions\"\nprompts_file = {conv_s:?}"),
                "scenarios[0].prompts_file",
                "line 2",
            ),
            (
                "api = \"openai-embeddings\"\ncancel = { fraction = 0.5, after_chunks = 2 }".into(),
                "scenarios[0].cancel.after_chunks",
                "cancel.after for a non-streaming scenario",
            ),
            (
                "stream = false\ncancel = { fraction = 0.5, after_chunks = 2 }".into(),
                "scenarios[0].cancel.after_chunks",
                "counts stream chunks",
            ),
            ("weight = 0".into(), "scenarios[].weight", "above 0"),
            (
                "max_tokens = 0".into(),
                "scenarios[0].max_tokens",
                "at least 1",
            ),
            (
                "prompt = { min_tokens = 0 }".into(),
                "scenarios[0].prompt.min_tokens",
                "between 1",
            ),
        ];
        for (body, field, needle) in cases {
            let e = validate(&format!("[[scenarios]]\n{body}\n")).unwrap_err();
            assert!(e.contains(field), "{body:?}: {e}");
            assert!(e.contains(needle), "{body:?}: {e}");
        }
        // Without the conflicting body.system, the conversation file is fine for Anthropic.
        let s = validate(&format!(
            "[[scenarios]]\napi = \"anthropic\"\nprompts_file = {conv_s:?}\n"
        ))
        .unwrap();
        assert!(matches!(&s[0].prompts, Prompts::File(p) if p.len() == 2));
        // Body extras that soakd does not build pass through, tools included.
        let s = validate(
            "[[scenarios]]\napi = \"openai-responses\"\nbody = { tools = [{ type = \"function\", name = \"f\" }], temperature = 0.2 }\n",
        )
        .unwrap();
        assert_eq!(s[0].body_extra["tools"][0]["name"], "f");
    }
}
