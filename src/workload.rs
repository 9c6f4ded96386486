//! Scenarios: which requests a soak sends, and how their bodies are made.
//!
//! A scenario is one kind of request (API, model, streaming or not, prompt lengths, headers,
//! body extras, client-side cancellation). Several weighted scenarios exercise a proxy's
//! routing. Bodies are built from a template serialised once per scenario: the JSON before and
//! after the prompt text is fixed, so a request costs one prompt slice and one copy.
//!
//! Synthetic prompts are slices of a fixed word corpus at a random offset, sized by a clamped
//! normal distribution of token counts (about 4 characters per token, as OpenAI's tokenizers
//! average on English text). Prompts from a JSONL file are read once at start-up and picked
//! uniformly.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use rand::Rng;
use serde_json::{Map, Value};

use crate::client::{ApiKind, CancelAt};
use crate::units::ConfigError;

/// Average characters per token used to size synthetic prompts.
pub const CHARS_PER_TOKEN: usize = 4;
/// Largest prompts file read at start-up.
pub const MAX_PROMPTS_FILE_BYTES: u64 = 256 * 1024 * 1024;

const WORDS: &[&str] = &[
    "the",
    "proxy",
    "routes",
    "each",
    "request",
    "to",
    "a",
    "model",
    "and",
    "streams",
    "tokens",
    "back",
    "while",
    "latency",
    "budgets",
    "hold",
    "under",
    "steady",
    "load",
    "with",
    "bursts",
    "of",
    "traffic",
    "that",
    "test",
    "memory",
    "file",
    "descriptors",
    "threads",
    "connection",
    "pools",
    "retries",
    "timeouts",
    "cache",
    "entries",
    "summarise",
    "explain",
    "compare",
    "write",
    "short",
    "story",
    "about",
    "distributed",
    "systems",
    "observability",
    "gateway",
    "upstream",
    "provider",
    "limits",
    "quota",
    "tenant",
    "region",
    "failover",
    "healthy",
    "server",
    "client",
    "event",
    "chunk",
    "delta",
    "usage",
    "count",
    "metric",
    "alert",
    "slope",
];

/// The shared corpus synthetic prompts are cut from (about 256 KiB of plain ASCII words, so
/// no JSON escaping is ever needed for synthetic prompts).
fn corpus() -> &'static str {
    static CORPUS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CORPUS.get_or_init(|| {
        use rand::SeedableRng;
        let mut rng = rand::rngs::SmallRng::seed_from_u64(0x50a6d);
        let mut s = String::with_capacity(256 * 1024 + 16);
        while s.len() < 256 * 1024 {
            s.push_str(WORDS[rng.random_range(0..WORDS.len())]);
            s.push(' ');
        }
        s
    })
}

/// Prompt lengths in tokens: a normal distribution clamped to `[min, max]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PromptLengths {
    pub mean: f64,
    pub stddev: f64,
    pub min: u32,
    pub max: u32,
}

impl Default for PromptLengths {
    fn default() -> Self {
        PromptLengths {
            mean: 200.0,
            stddev: 50.0,
            min: 1,
            max: 2000,
        }
    }
}

impl PromptLengths {
    /// Draws a length in tokens.
    pub fn sample(&self, rng: &mut impl Rng) -> u32 {
        // Box–Muller; one draw per call is plenty at request rates.
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let v = (self.mean + self.stddev * z).round();
        (v.max(f64::from(self.min)).min(f64::from(self.max))) as u32
    }
}

/// Where prompts come from.
#[derive(Debug, Clone)]
pub enum Prompts {
    /// Synthetic text with lengths from a distribution.
    Synthetic(PromptLengths),
    /// Prompts read from a JSONL file: each entry is the JSON-encoded `content` string
    /// (already escaped, with quotes), so building a body is a copy.
    File(Arc<[Box<str>]>),
}

/// When a fraction of streams is cancelled by the client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cancellation {
    pub fraction: f64,
    pub at: CancelAt,
}

/// One validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub api: ApiKind,
    pub weight: u32,
    pub path: String,
    pub model: String,
    pub stream: bool,
    pub include_usage: bool,
    pub max_tokens: u32,
    pub headers: Vec<(String, String)>,
    pub body_extra: Map<String, Value>,
    pub prompts: Prompts,
    pub cancel: Option<Cancellation>,
}

/// One scenario on one line, for the "soak started" log:
/// `chat-stream weight 3 (openai gpt-4o-mini stream, cancel 5% after 4 chunks)`.
impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} weight {} ({} {} {}",
            self.name,
            self.weight,
            self.api,
            self.model,
            if self.stream { "stream" } else { "no stream" }
        )?;
        if let Some(c) = &self.cancel {
            let pct = crate::units::trim_num(c.fraction * 100.0, 2);
            match c.at {
                CancelAt::AfterChunks(n) => write!(f, ", cancel {pct}% after {n} chunks")?,
                CancelAt::AfterTime(d) => {
                    write!(f, ", cancel {pct}% after {}", crate::units::fmt_duration(d))?
                }
            }
        }
        f.write_str(")")
    }
}

/// Scenarios joined for one log line: `a weight 3 (…), b weight 1 (…)`.
pub struct ScenarioList<'a>(pub &'a [Scenario]);

impl std::fmt::Display for ScenarioList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            s.fmt(f)?;
        }
        Ok(())
    }
}

/// The fixed parts of a scenario's request body around the prompt.
#[derive(Debug, Clone)]
pub struct BodyTemplate {
    prefix: Box<[u8]>,
    suffix: Box<[u8]>,
    prompts: Prompts,
}

const MARKER: &str = "\u{1}soakd-prompt\u{1}";

impl BodyTemplate {
    /// Serialises the scenario's body once with a marker where the prompt goes.
    pub fn new(s: &Scenario) -> BodyTemplate {
        let mut body = Map::new();
        body.insert("model".into(), Value::from(s.model.clone()));
        body.insert("max_tokens".into(), Value::from(s.max_tokens));
        body.insert("stream".into(), Value::from(s.stream));
        if s.api == ApiKind::OpenAiChat && s.stream && s.include_usage {
            body.insert(
                "stream_options".into(),
                serde_json::json!({ "include_usage": true }),
            );
        }
        // Extras may add keys (temperature, tools…) or replace defaults, but the
        // messages array is always ours.
        for (k, v) in &s.body_extra {
            body.insert(k.clone(), v.clone());
        }
        body.insert(
            "messages".into(),
            serde_json::json!([{ "role": "user", "content": MARKER }]),
        );
        let text = Value::Object(body).to_string();
        let quoted = serde_json::to_string(MARKER).expect("a string serialises");
        let at = text
            .find(&quoted)
            .expect("the marker appears in the serialised body");
        BodyTemplate {
            prefix: text.as_bytes()[..at].into(),
            suffix: text.as_bytes()[at + quoted.len()..].into(),
            prompts: s.prompts.clone(),
        }
    }

    /// Builds one request body.
    pub fn body(&self, rng: &mut impl Rng) -> Bytes {
        match &self.prompts {
            Prompts::Synthetic(lengths) => {
                let chars = lengths.sample(rng) as usize * CHARS_PER_TOKEN;
                let text = synthetic_prompt(rng, chars);
                let mut out =
                    Vec::with_capacity(self.prefix.len() + text.len() + 2 + self.suffix.len());
                out.extend_from_slice(&self.prefix);
                out.push(b'"');
                out.extend_from_slice(text.as_bytes());
                out.push(b'"');
                out.extend_from_slice(&self.suffix);
                Bytes::from(out)
            }
            Prompts::File(prompts) => {
                let p = &prompts[rng.random_range(0..prompts.len())];
                let mut out = Vec::with_capacity(self.prefix.len() + p.len() + self.suffix.len());
                out.extend_from_slice(&self.prefix);
                out.extend_from_slice(p.as_bytes());
                out.extend_from_slice(&self.suffix);
                Bytes::from(out)
            }
        }
    }
}

/// A slice of the corpus of about `chars` characters, starting and ending on word boundaries.
pub fn synthetic_prompt(rng: &mut impl Rng, chars: usize) -> &'static str {
    let c = corpus();
    let chars = chars.clamp(1, c.len() / 2);
    let mut start = rng.random_range(0..c.len() - chars);
    while start > 0 && c.as_bytes()[start - 1] != b' ' {
        start -= 1;
    }
    let mut end = (start + chars).min(c.len());
    while end < c.len() && c.as_bytes()[end - 1] != b' ' {
        end += 1;
    }
    c[start..end].trim_end()
}

/// Reads a JSONL prompts file. Each non-empty line is either a JSON string, or an object
/// with a `prompt` string (the form most prompt datasets use).
pub fn load_prompts(path: &Path, field: &str) -> Result<Arc<[Box<str>]>, ConfigError> {
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| ConfigError::invalid(field, &shown, format!("cannot read: {e}")))?;
    if meta.len() > MAX_PROMPTS_FILE_BYTES {
        return Err(ConfigError::invalid(
            field,
            &shown,
            format!(
                "file is {} bytes; the limit is {MAX_PROMPTS_FILE_BYTES}",
                meta.len()
            ),
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::invalid(field, &shown, format!("cannot read: {e}")))?;
    let mut prompts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: &str| ConfigError::invalid(field, &shown, format!("line {}: {why}", i + 1));
        let v: Value = serde_json::from_str(line).map_err(|e| bad(&e.to_string()))?;
        let prompt = match &v {
            Value::String(s) => s.as_str(),
            Value::Object(o) => o
                .get("prompt")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("expected a \"prompt\" string field"))?,
            _ => return Err(bad("expected a JSON string or an object with \"prompt\"")),
        };
        let quoted = serde_json::to_string(prompt).expect("a string serialises");
        prompts.push(quoted.into_boxed_str());
    }
    if prompts.is_empty() {
        return Err(ConfigError::invalid(field, &shown, "no prompts in file"));
    }
    Ok(prompts.into())
}

/// Picks scenarios by weight.
#[derive(Debug, Clone)]
pub struct Picker {
    cumulative: Vec<u64>,
}

impl Picker {
    pub fn new(weights: impl IntoIterator<Item = u32>) -> Picker {
        let mut total = 0u64;
        let cumulative = weights
            .into_iter()
            .map(|w| {
                total += u64::from(w);
                total
            })
            .collect();
        Picker { cumulative }
    }

    /// The index of a scenario, with probability proportional to its weight.
    pub fn pick(&self, rng: &mut impl Rng) -> usize {
        let total = *self.cumulative.last().unwrap_or(&0);
        if total == 0 {
            return 0;
        }
        let x = rng.random_range(0..total);
        self.cumulative.partition_point(|&c| c <= x)
    }
}

/// Decides whether one request is cancelled by the client, and when.
pub fn cancel_for(c: Option<&Cancellation>, rng: &mut impl Rng) -> Option<CancelAt> {
    let c = c?;
    (rng.random::<f64>() < c.fraction).then_some(c.at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn scenario(api: ApiKind) -> Scenario {
        Scenario {
            name: "chat".into(),
            api,
            weight: 1,
            path: api.default_path().into(),
            model: "m-1".into(),
            stream: true,
            include_usage: true,
            max_tokens: 64,
            headers: vec![],
            body_extra: serde_json::from_str(r#"{"temperature":0.5,"stream":true}"#).unwrap(),
            prompts: Prompts::Synthetic(PromptLengths {
                mean: 100.0,
                stddev: 0.0,
                min: 1,
                max: 1000,
            }),
            cancel: None,
        }
    }

    #[test]
    fn scenarios_read_on_one_line_with_weights() {
        let mut a = scenario(ApiKind::OpenAiChat);
        a.weight = 3;
        a.cancel = Some(Cancellation {
            fraction: 0.05,
            at: CancelAt::AfterChunks(4),
        });
        let mut b = scenario(ApiKind::AnthropicMessages);
        b.name = "msg".into();
        b.stream = false;
        assert_eq!(
            ScenarioList(&[a, b]).to_string(),
            "chat weight 3 (openai m-1 stream, cancel 5% after 4 chunks), \
             msg weight 1 (anthropic m-1 no stream)"
        );
    }

    #[test]
    fn openai_body_is_valid_json_with_every_field() {
        let t = BodyTemplate::new(&scenario(ApiKind::OpenAiChat));
        let mut rng = SmallRng::seed_from_u64(1);
        let v: Value = serde_json::from_slice(&t.body(&mut rng)).unwrap();
        assert_eq!(v["model"], "m-1");
        assert_eq!(v["max_tokens"], 64);
        assert_eq!(v["stream"], true);
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["temperature"], 0.5);
        let content = v["messages"][0]["content"].as_str().unwrap();
        assert_eq!(v["messages"][0]["role"], "user");
        // 100 tokens ≈ 400 characters, cut on word boundaries.
        assert!((380..=420).contains(&content.len()), "{}", content.len());
        assert!(!content.starts_with(' ') && !content.ends_with(' '));
    }

    #[test]
    fn anthropic_body_has_no_stream_options() {
        let t = BodyTemplate::new(&scenario(ApiKind::AnthropicMessages));
        let mut rng = SmallRng::seed_from_u64(1);
        let v: Value = serde_json::from_slice(&t.body(&mut rng)).unwrap();
        assert!(v.get("stream_options").is_none());
        assert_eq!(v["max_tokens"], 64);
    }

    #[test]
    fn prompt_lengths_follow_the_distribution() {
        let l = PromptLengths {
            mean: 200.0,
            stddev: 50.0,
            min: 150,
            max: 400,
        };
        let mut rng = SmallRng::seed_from_u64(9);
        let xs: Vec<u32> = (0..20_000).map(|_| l.sample(&mut rng)).collect();
        assert!(xs.iter().all(|&x| (150..=400).contains(&x)));
        // Clamping at 150 (μ − σ) lifts the mean to μ + σ·(φ(−1) − Φ(−1)) ≈ 204.2.
        let mean = xs.iter().map(|&x| f64::from(x)).sum::<f64>() / xs.len() as f64;
        assert!((mean - 204.2).abs() < 1.0, "{mean}");
        let at_min = xs.iter().filter(|&&x| x == 150).count() as f64 / xs.len() as f64;
        assert!((at_min - 0.159).abs() < 0.015, "{at_min}");
    }

    #[test]
    fn picker_respects_weights() {
        let p = Picker::new([3, 1, 0, 6]);
        let mut rng = SmallRng::seed_from_u64(5);
        let mut counts = [0u32; 4];
        for _ in 0..100_000 {
            counts[p.pick(&mut rng)] += 1;
        }
        assert_eq!(counts[2], 0);
        assert!(
            (f64::from(counts[0]) / 1e5 - 0.3).abs() < 0.01,
            "{counts:?}"
        );
        assert!(
            (f64::from(counts[3]) / 1e5 - 0.6).abs() < 0.01,
            "{counts:?}"
        );
    }

    #[test]
    fn prompts_file_strings_and_objects() {
        let dir = std::env::temp_dir().join(format!("soakd-prompts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("p.jsonl");
        std::fs::write(
            &f,
            "\"hello \\\"world\\\"\"\n\n{\"prompt\":\"line\\nbreak\",\"id\":3}\n",
        )
        .unwrap();
        let prompts = load_prompts(&f, "scenarios[0].prompts_file").unwrap();
        assert_eq!(prompts.len(), 2);
        let mut s = scenario(ApiKind::OpenAiChat);
        s.prompts = Prompts::File(prompts);
        let t = BodyTemplate::new(&s);
        let mut rng = SmallRng::seed_from_u64(2);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..50 {
            let v: Value = serde_json::from_slice(&t.body(&mut rng)).unwrap();
            seen.insert(v["messages"][0]["content"].as_str().unwrap().to_string());
        }
        let want: std::collections::BTreeSet<String> =
            ["hello \"world\"".to_string(), "line\nbreak".to_string()].into();
        assert_eq!(seen, want);

        std::fs::write(&f, "{\"text\":\"x\"}\n").unwrap();
        let err = load_prompts(&f, "scenarios[0].prompts_file").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        let err = load_prompts(&dir.join("missing.jsonl"), "scenarios[0].prompts_file")
            .unwrap_err()
            .to_string();
        assert!(err.contains("scenarios[0].prompts_file") && err.contains("cannot read"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cancellation_fraction() {
        let c = Cancellation {
            fraction: 0.25,
            at: CancelAt::AfterChunks(3),
        };
        let mut rng = SmallRng::seed_from_u64(3);
        let n = (0..40_000)
            .filter(|_| cancel_for(Some(&c), &mut rng).is_some())
            .count() as f64;
        assert!((n / 40_000.0 - 0.25).abs() < 0.01, "{n}");
        assert_eq!(cancel_for(None, &mut rng), None);
    }
}
