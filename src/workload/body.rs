//! Request bodies per API, from a template serialised once per scenario.
//!
//! The body is a JSON object of `model`, the API's token budget, `stream` (and for streamed
//! chat and legacy completions `stream_options.include_usage` when `include_usage` is on), the
//! scenario's `body` extras (which may add keys such as `temperature` or `tools`, or replace
//! `model` and the budget), and the one field soakd writes from the prompt:
//!
//! | `api` | budget key | prompt field | a prompt becomes |
//! |---|---|---|---|
//! | `openai` | `max_tokens` | `messages` | `[{"role":"user","content":TEXT}]`, or the file's conversation |
//! | `openai-responses` | `max_output_tokens` | `input` | `TEXT` (a string), or the conversation as input items |
//! | `openai-completions` | `max_tokens` | `prompt` | `TEXT` |
//! | `openai-embeddings` | — (no `stream` either) | `input` | `[TEXT, …]`, `inputs_per_request` texts |
//! | `anthropic` | `max_tokens` | `messages` | as chat; a conversation's leading system message becomes `system` |
//!
//! The prompt field and `stream` are never taken from `body` (validation rejects them, see
//! [`built_fields`]). Serialised once with a marker in the prompt field's place, the template
//! keeps the bytes before and after it, so a request costs its prompt text and one copy.

use bytes::Bytes;
use rand::Rng;
use serde_json::{Map, Value};

use super::{synthetic_prompt, FilePrompt, Prompts, Scenario, CHARS_PER_TOKEN};
use crate::client::ApiKind;

/// The key of the field soakd builds from the prompt.
pub const fn prompt_field(api: ApiKind) -> &'static str {
    match api {
        ApiKind::OpenAiChat | ApiKind::AnthropicMessages => "messages",
        ApiKind::OpenAiResponses | ApiKind::OpenAiEmbeddings => "input",
        ApiKind::OpenAiCompletions => "prompt",
    }
}

/// Fields soakd builds for `api`, which a scenario's `body` may not set.
pub fn built_fields(api: ApiKind) -> [&'static str; 2] {
    [prompt_field(api), "stream"]
}

/// The key of the output token budget, if the API has one.
pub const fn budget_field(api: ApiKind) -> Option<&'static str> {
    match api {
        ApiKind::OpenAiChat | ApiKind::OpenAiCompletions | ApiKind::AnthropicMessages => {
            Some("max_tokens")
        }
        ApiKind::OpenAiResponses => Some("max_output_tokens"),
        ApiKind::OpenAiEmbeddings => None,
    }
}

/// How prompt text is wrapped into the prompt field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `[{"role":"user","content":TEXT}]`.
    UserMessage,
    /// `TEXT`.
    Text,
    /// `[TEXT, …]`, `inputs` texts.
    Inputs,
}

const USER_OPEN: &[u8] = br#"[{"role":"user","content":"#;
const USER_CLOSE: &[u8] = b"}]";

/// The fixed parts of a scenario's request body around the prompt.
#[derive(Debug, Clone)]
pub struct BodyTemplate {
    prefix: Box<[u8]>,
    suffix: Box<[u8]>,
    shape: Shape,
    inputs: u32,
    prompts: Prompts,
}

const MARKER: &str = "\u{1}soakd-prompt\u{1}";

impl BodyTemplate {
    /// Serialises the scenario's body once with a marker where the prompt goes.
    pub fn new(s: &Scenario) -> BodyTemplate {
        let api = s.api;
        let mut body = Map::new();
        body.insert("model".into(), Value::from(s.model.clone()));
        if let Some(k) = budget_field(api) {
            body.insert(k.into(), Value::from(s.max_tokens));
        }
        let usage_option = matches!(api, ApiKind::OpenAiChat | ApiKind::OpenAiCompletions);
        if usage_option && s.stream && s.include_usage {
            body.insert(
                "stream_options".into(),
                serde_json::json!({ "include_usage": true }),
            );
        }
        for (k, v) in &s.body_extra {
            body.insert(k.clone(), v.clone());
        }
        // Ours even if an unvalidated `body` set them.
        body.insert(prompt_field(api).into(), Value::from(MARKER));
        if api.streams() {
            body.insert("stream".into(), Value::from(s.stream));
        }
        let text = Value::Object(body).to_string();
        let quoted = serde_json::to_string(MARKER).expect("a string serialises");
        let at = text
            .find(&quoted)
            .expect("the marker appears in the serialised body");
        BodyTemplate {
            prefix: text.as_bytes()[..at].into(),
            suffix: text.as_bytes()[at + quoted.len()..].into(),
            shape: match api {
                ApiKind::OpenAiChat | ApiKind::AnthropicMessages => Shape::UserMessage,
                ApiKind::OpenAiResponses | ApiKind::OpenAiCompletions => Shape::Text,
                ApiKind::OpenAiEmbeddings => Shape::Inputs,
            },
            inputs: s.inputs.max(1),
            prompts: s.prompts.clone(),
        }
    }

    /// Builds one request body.
    pub fn body(&self, rng: &mut impl Rng) -> Bytes {
        self.body_tagged(rng, None)
    }

    /// Builds one request body whose last user text ends with `tag` (plain ASCII, inserted
    /// before the text's closing quote), the two-sided soak's request id. A conversation
    /// whose last user message has no string text carries no tag.
    pub fn body_tagged(&self, rng: &mut impl Rng, tag: Option<&[u8]>) -> Bytes {
        let n = if self.shape == Shape::Inputs {
            self.inputs as usize
        } else {
            1
        };
        let guess = match &self.prompts {
            Prompts::Synthetic(l) => l.mean.max(1.0) as usize * CHARS_PER_TOKEN + 16,
            Prompts::File(_) => 256,
        };
        let mut out =
            Vec::with_capacity(self.prefix.len() + self.suffix.len() + USER_OPEN.len() + n * guess);
        out.extend_from_slice(&self.prefix);
        // Every text is a JSON string literal ending in its quote; the last one gets the tag.
        let mut written = 0;
        let mut tagged = |out: &mut Vec<u8>| {
            written += 1;
            if let (Some(tag), true) = (tag, written == n) {
                let quote = out.pop();
                out.extend_from_slice(tag);
                out.extend(quote);
            }
        };
        match &self.prompts {
            Prompts::Synthetic(lengths) => self.wrap(&mut out, n, |out| {
                let chars = lengths.sample(rng) as usize * CHARS_PER_TOKEN;
                // The corpus is plain ASCII words: no escaping needed.
                out.push(b'"');
                out.extend_from_slice(synthetic_prompt(rng, chars).as_bytes());
                out.push(b'"');
                tagged(out);
            }),
            Prompts::File(prompts) => {
                let first = &prompts[rng.random_range(0..prompts.len())];
                match first {
                    FilePrompt::Conversation(c, at) => match (tag, at) {
                        (Some(tag), Some(at)) => {
                            let (head, tail) = c.as_bytes().split_at(*at as usize);
                            out.extend_from_slice(head);
                            out.extend_from_slice(tag);
                            out.extend_from_slice(tail);
                        }
                        _ => out.extend_from_slice(c.as_bytes()),
                    },
                    FilePrompt::Text(_) => {
                        let mut next = Some(first);
                        self.wrap(&mut out, n, |out| {
                            let p = next
                                .take()
                                .unwrap_or_else(|| &prompts[rng.random_range(0..prompts.len())]);
                            // Conversations never reach an API that takes several inputs.
                            let (FilePrompt::Text(t) | FilePrompt::Conversation(t, _)) = p;
                            out.extend_from_slice(t.as_bytes());
                            tagged(out);
                        });
                    }
                }
            }
        }
        out.extend_from_slice(&self.suffix);
        Bytes::from(out)
    }

    /// Writes `n` texts (each by `text`) in the template's shape.
    fn wrap(&self, out: &mut Vec<u8>, n: usize, mut text: impl FnMut(&mut Vec<u8>)) {
        match self.shape {
            Shape::UserMessage => {
                out.extend_from_slice(USER_OPEN);
                text(out);
                out.extend_from_slice(USER_CLOSE);
            }
            Shape::Text => text(out),
            Shape::Inputs => {
                out.push(b'[');
                for i in 0..n {
                    if i > 0 {
                        out.push(b',');
                    }
                    text(out);
                }
                out.push(b']');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    use super::*;
    use crate::client::TtftOn;
    use crate::workload::PromptLengths;

    fn scenario(api: ApiKind, stream: bool) -> Scenario {
        Scenario {
            name: "s".into(),
            api,
            weight: 1,
            path: api.default_path().into(),
            model: "m-1".into(),
            stream,
            ttft_on: TtftOn::Any,
            include_usage: true,
            max_tokens: 64,
            inputs: 1,
            headers: vec![],
            body_extra: serde_json::from_str(
                r#"{"temperature":0.5,"tools":[{"type":"function","function":{"name":"f","parameters":{}}}]}"#,
            )
            .unwrap(),
            prompts: Prompts::Synthetic(PromptLengths {
                mean: 100.0,
                stddev: 0.0,
                min: 1,
                max: 1000,
            }),
            cancel: None,
        }
    }

    fn build(s: &Scenario, seed: u64) -> Value {
        let t = BodyTemplate::new(s);
        let mut rng = SmallRng::seed_from_u64(seed);
        let b = t.body(&mut rng);
        serde_json::from_slice(&b)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&b)))
    }

    /// 100 tokens ≈ 400 characters, cut on word boundaries.
    fn assert_synthetic(text: &Value) {
        let t = text
            .as_str()
            .unwrap_or_else(|| panic!("not a string: {text}"));
        assert!((380..=420).contains(&t.len()), "{}", t.len());
        assert!(!t.starts_with(' ') && !t.ends_with(' '));
    }

    #[test]
    fn every_api_gets_every_field_in_its_own_shape() {
        for api in ApiKind::ALL {
            for stream in [true, false] {
                if stream && !api.streams() {
                    continue;
                }
                let v = build(&scenario(api, stream), 1);
                let o = v.as_object().unwrap();
                assert_eq!(v["model"], "m-1", "{api}");
                assert_eq!(v["temperature"], 0.5, "{api}");
                assert_eq!(
                    v["tools"][0]["function"]["name"], "f",
                    "{api}: tools pass through"
                );
                match budget_field(api) {
                    Some(k) => assert_eq!(v[k], 64, "{api}"),
                    None => assert!(!o.contains_key("max_tokens"), "{api}"),
                }
                assert_eq!(
                    o.get("stream").and_then(Value::as_bool),
                    api.streams().then_some(stream),
                    "{api}"
                );
                let usage =
                    stream && matches!(api, ApiKind::OpenAiChat | ApiKind::OpenAiCompletions);
                assert_eq!(o.contains_key("stream_options"), usage, "{api} {stream}");
                if usage {
                    assert_eq!(v["stream_options"]["include_usage"], true);
                }
                let field = &v[prompt_field(api)];
                match api {
                    ApiKind::OpenAiChat | ApiKind::AnthropicMessages => {
                        assert_eq!(field[0]["role"], "user");
                        assert_synthetic(&field[0]["content"]);
                        assert_eq!(field.as_array().unwrap().len(), 1);
                    }
                    ApiKind::OpenAiResponses | ApiKind::OpenAiCompletions => {
                        assert_synthetic(field)
                    }
                    ApiKind::OpenAiEmbeddings => {
                        assert_eq!(field.as_array().unwrap().len(), 1);
                        assert_synthetic(&field[0]);
                    }
                }
                let keys: BTreeSet<&str> = o.keys().map(String::as_str).collect();
                let mut want: BTreeSet<&str> =
                    ["model", "temperature", "tools", prompt_field(api)].into();
                want.extend(budget_field(api));
                if api.streams() {
                    want.insert("stream");
                }
                if usage {
                    want.insert("stream_options");
                }
                assert_eq!(keys, want, "{api} {stream}");
            }
        }
    }

    #[test]
    fn embeddings_send_inputs_per_request_texts() {
        let mut s = scenario(ApiKind::OpenAiEmbeddings, false);
        s.inputs = 5;
        let v = build(&s, 3);
        let inputs = v["input"].as_array().unwrap();
        assert_eq!(inputs.len(), 5);
        inputs.iter().for_each(assert_synthetic);
        assert_ne!(inputs[0], inputs[1], "each input is drawn on its own");
    }

    #[test]
    fn extras_replace_defaults_but_never_the_prompt_or_stream() {
        let mut s = scenario(ApiKind::OpenAiChat, true);
        s.body_extra = serde_json::from_str(
            r#"{"model":"other","max_tokens":9,"messages":"x","stream":false}"#,
        )
        .unwrap();
        let v = build(&s, 1);
        assert_eq!(
            (v["model"].as_str(), v["max_tokens"].as_u64()),
            (Some("other"), Some(9))
        );
        assert_eq!(v["stream"], true);
        assert!(v["messages"].is_array());
    }

    #[test]
    fn file_prompts_in_every_shape() {
        let text = |s: &str| FilePrompt::Text(serde_json::to_string(s).unwrap().into_boxed_str());
        let conv = FilePrompt::Conversation(
            r#"[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"}],"system":"sys""#.into(),
            None,
        );
        let mut seen = BTreeSet::new();
        for api in [
            ApiKind::OpenAiChat,
            ApiKind::OpenAiResponses,
            ApiKind::AnthropicMessages,
        ] {
            let mut s = scenario(api, true);
            s.prompts = Prompts::File(Arc::from(vec![text("line \"q\"\n2"), conv.clone()]));
            let t = BodyTemplate::new(&s);
            let mut rng = SmallRng::seed_from_u64(4);
            for _ in 0..40 {
                let v: Value = serde_json::from_slice(&t.body(&mut rng)).unwrap();
                let field = &v[prompt_field(api)];
                let got = match (api, field) {
                    (ApiKind::OpenAiResponses, Value::String(s)) => s.clone(),
                    (_, Value::Array(a)) if a.len() == 3 => {
                        assert_eq!(v["system"], "sys", "{api}");
                        "conversation".to_string()
                    }
                    (_, Value::Array(a)) => a[0]["content"].as_str().unwrap().to_string(),
                    _ => panic!("{api}: {v}"),
                };
                seen.insert((api.as_str(), got));
            }
        }
        assert_eq!(
            seen.len(),
            6,
            "both prompts for each of three APIs: {seen:?}"
        );
        assert!(seen.contains(&("openai", "line \"q\"\n2".to_string())));

        let mut s = scenario(ApiKind::OpenAiEmbeddings, false);
        s.inputs = 3;
        s.prompts = Prompts::File(Arc::from(vec![text("one"), text("two")]));
        let v = build(&s, 8);
        let inputs = v["input"].as_array().unwrap();
        assert_eq!(inputs.len(), 3);
        assert!(inputs.iter().all(|i| i == "one" || i == "two"));
        let mut s = scenario(ApiKind::OpenAiCompletions, true);
        s.prompts = Prompts::File(Arc::from(vec![text("only")]));
        assert_eq!(build(&s, 1)["prompt"], "only");
    }
}
