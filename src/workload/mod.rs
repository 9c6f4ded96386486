//! Scenarios: which requests a soak sends, and how their bodies are made.
//!
//! A scenario is one kind of request (API, model, streaming or not, prompt lengths, headers,
//! body extras, client-side cancellation, which deltas start TTFT). Several weighted scenarios
//! exercise a proxy's routing. This room owns the `[[scenarios]]` config section:
//! - [`settings`]: the raw section ([`RawScenario`]) and its validation into [`Scenario`]s;
//! - [`body`]: request bodies per API, from a template serialised once per scenario (the JSON
//!   before and after the prompt is fixed, so a request costs one prompt slice and one copy);
//! - [`prompts`]: prompts read from a JSONL file (strings, `{"prompt": …}` or multi-turn
//!   `{"messages": […]}`), converted once to the scenario API's wire form;
//! - [`mix`]: which scenario each request is, over time (fixed weights or a slowly varied mix).
//!
//! Synthetic prompts are slices of a fixed word corpus at a random offset, sized by a clamped
//! normal distribution of token counts (about 4 characters per token, as OpenAI's tokenizers
//! average on English text). Prompts from a file are read once at start-up and picked
//! uniformly.

pub mod body;
pub mod mix;
pub mod prompts;
pub mod settings;

use std::sync::Arc;

use rand::Rng;
use serde_json::{Map, Value};

use crate::client::{ApiKind, CancelAt, TtftOn};

pub use body::BodyTemplate;
pub use mix::{Mix, MixCursor};
pub use prompts::{load_prompts, FilePrompt, LoadedPrompts, MAX_PROMPTS_FILE_BYTES};
pub use settings::{validate_scenarios, RawCancel, RawPrompt, RawScenario};

/// Average characters per token used to size synthetic prompts.
pub const CHARS_PER_TOKEN: usize = 4;

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
    /// Prompts read from a JSONL file, already JSON-encoded for the scenario's API, so
    /// building a body is a copy.
    File(Arc<[FilePrompt]>),
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
    /// Which content deltas start TTFT (streams only).
    pub ttft_on: TtftOn,
    pub include_usage: bool,
    pub max_tokens: u32,
    /// Inputs per request: embeddings send this many texts (1 for every other API).
    pub inputs: u32,
    pub headers: Vec<(String, String)>,
    pub body_extra: Map<String, Value>,
    pub prompts: Prompts,
    pub cancel: Option<Cancellation>,
}

/// One scenario on one line, for the "soak started" log:
/// `chat-stream weight 3 (openai gpt-4o-mini stream, max_tokens 64, cancel 5% after 4
/// chunks)`. The output budget is named as the body sends it (`max_output_tokens` for
/// Responses; embeddings have none), since a default of 256 caps a target's answers.
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
        if let Some(key) = body::budget_field(self.api) {
            write!(f, ", {key} {}", self.max_tokens)?;
        }
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
