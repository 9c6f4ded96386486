//! What a valid config will quietly do that changes the answer: warnings, one sentence each,
//! that `soakd check-config` prints and `soakd run` logs once at start-up.
//!
//! - **A window longer than the run.** A growth window plus `monitor.warmup` longer than
//!   `run.duration` never fills, so the progress line never shows its slope; when even half
//!   of it (what a fit needs) does not fit after the warm-up, it never gets a fit, and when it
//!   is the longest window every leak verdict ends "not judged".
//! - **`max_tokens` caps the mock.** With the built-in mock (no `target.url`) or `[upstream]`,
//!   the mock answers `min(chunks, max_tokens)` chunks: a scenario whose `max_tokens` is under
//!   `mock.chunks` silently gets shorter answers than `[mock]` says.
//! - **Coalescing cannot be seen.** With `[upstream]` and `mock.chunk_delay` under 10 ms,
//!   buffered streams and coalesced chunks are not measurable (the summary says so).

use std::time::Duration;

use super::Config;
use crate::units::fmt_duration;
use crate::upstream::measure::SENT_APART;
use crate::workload::body::budget_field;

impl Config {
    /// The config's warnings (module docs), in a fixed order; empty when there is nothing to
    /// say.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = self.window_warnings();
        out.extend(self.max_tokens_warnings());
        if let Some(w) = self.chunk_delay_warning() {
            out.push(w);
        }
        out
    }

    fn window_warnings(&self) -> Vec<String> {
        let Some(run) = self.run.duration else {
            return Vec::new();
        };
        let warmup = self.monitor.warmup;
        let windows = &self.monitor.windows;
        windows
            .iter()
            .enumerate()
            .filter(|(_, w)| warmup + w.duration > run)
            .map(|(i, w)| {
                let mut s = format!(
                    "monitor.windows: the {} window plus monitor.warmup {} ({}) is longer than \
                     run.duration {}: it never fills, so the progress line shows no slope from \
                     it",
                    w.label,
                    fmt_duration(warmup),
                    fmt_duration(warmup + w.duration),
                    fmt_duration(run)
                );
                if warmup + w.duration / 2 >= run {
                    s.push_str(
                        "; it never gets a fit either (that needs half of it after the warm-up)",
                    );
                    if i + 1 == windows.len() {
                        s.push_str(
                            ", and it is the longest window, so every leak verdict will be \
                             \"not judged\"",
                        );
                    }
                }
                s
            })
            .collect()
    }

    /// Whether the run's answers come from soakd's own mock: the embedded child (no target)
    /// or the two-sided upstream.
    fn mock_answers(&self) -> bool {
        self.target.url.is_none() || self.upstream.is_some()
    }

    fn max_tokens_warnings(&self) -> Vec<String> {
        if !self.mock_answers() {
            return Vec::new();
        }
        let chunks = self.mock.chunks;
        self.scenarios
            .iter()
            .enumerate()
            .filter(|(_, s)| budget_field(s.api).is_some() && s.max_tokens < chunks)
            .map(|(i, s)| {
                format!(
                    "scenarios[{i}] ({}): max_tokens {} caps the mock's chunks {chunks}: its \
                     answers have {} chunks, not {chunks} (raise scenarios[{i}].max_tokens or \
                     lower mock.chunks)",
                    s.name, s.max_tokens, s.max_tokens
                )
            })
            .collect()
    }

    fn chunk_delay_warning(&self) -> Option<String> {
        let d: Duration = self.mock.chunk_delay;
        (self.upstream.is_some() && d < SENT_APART).then(|| {
            format!(
                "mock.chunk_delay {} is under {}: buffered streams and coalesced chunks cannot \
                 be seen (they read \"not measurable\")",
                fmt_duration(d),
                fmt_duration(SENT_APART)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::RawConfig;

    fn config(text: &str) -> RawConfig {
        toml::from_str(text).unwrap()
    }

    fn warnings(toml: &str) -> Vec<String> {
        config(toml).validate_with(&|_| None).unwrap().warnings()
    }

    #[test]
    fn a_window_longer_than_the_run_is_named_once_with_what_it_costs() {
        let w = warnings(
            "[run]\nduration = \"60s\"\n[monitor]\nsample_interval = \"1s\"\nwarmup = \"20s\"\nwindows = [\"20s\", \"40s\", \"90s\"]\n",
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(
            w[0],
            "monitor.windows: the 90s window plus monitor.warmup 20s (1m 50s) is longer than \
             run.duration 1m: it never fills, so the progress line shows no slope from it; it \
             never gets a fit either (that needs half of it after the warm-up), and it is the \
             longest window, so every leak verdict will be \"not judged\""
        );
        // 40 s + 10 s fits in 60 s; a 60 s window would fill only half: named, but fitted.
        let w = warnings(
            "[run]\nduration = \"60s\"\n[monitor]\nsample_interval = \"1s\"\nwarmup = \"10s\"\nwindows = [\"20s\", \"60s\"]\n",
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].ends_with("shows no slope from it"), "{}", w[0]);
        // Forever, or windows that fit: nothing.
        assert!(warnings("[run]\nduration = \"forever\"\n").is_empty());
        assert!(warnings(
            "[run]\nduration = \"2m\"\n[monitor]\nsample_interval = \"1s\"\nwarmup = \"10s\"\nwindows = [\"30s\", \"90s\"]\n"
        )
        .is_empty());
    }

    #[test]
    fn max_tokens_under_the_mock_chunks_is_named_per_scenario() {
        let two = "[[scenarios]]\nname = \"short\"\nmax_tokens = 256\n\
                   [[scenarios]]\nname = \"long\"\nmax_tokens = 512\n\
                   [[scenarios]]\nname = \"vec\"\napi = \"openai-embeddings\"\nstream = false\n\
                   [mock]\nchunks = 400\n";
        let w = warnings(&format!("[run]\nduration = \"forever\"\n{two}"));
        assert_eq!(
            w,
            [
                "scenarios[0] (short): max_tokens 256 caps the mock's chunks 400: its answers \
              have 256 chunks, not 400 (raise scenarios[0].max_tokens or lower mock.chunks)"
            ],
            "embeddings have no budget; 512 does not cap 400"
        );
        // A real target answers for itself: no warning.
        let w = warnings(&format!(
            "[run]\nduration = \"forever\"\n[target]\nurl = \"http://127.0.0.1:1\"\n{two}"
        ));
        assert!(w.is_empty(), "{w:?}");
        // The two-sided upstream is the mock again, and its chunk_delay is checked too.
        let w = warnings(&format!(
            "[run]\nduration = \"forever\"\n[target]\nurl = \"http://127.0.0.1:1\"\n\
             [upstream]\nlisten = \"127.0.0.1:0\"\n{two}chunk_delay = \"5ms\"\n"
        ));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("scenarios[0] (short)"), "{w:?}");
        assert_eq!(
            w[1],
            "mock.chunk_delay 5ms is under 10ms: buffered streams and coalesced chunks cannot \
             be seen (they read \"not measurable\")"
        );
    }

    #[test]
    fn check_config_takes_a_missing_key_as_a_warning_and_run_refuses_it() {
        let raw = config("[run]\nduration = \"forever\"\n[target]\napi_key_env = \"SOAK_KEY\"\n");
        let (c, w) = raw.check_with(&|_| None).unwrap();
        assert!(c.target.api_key.is_none());
        assert_eq!(
            w,
            [
                "target.api_key_env = \"SOAK_KEY\": the environment variable is not set; the \
              reference is valid, but soakd run refuses to start without the key"
            ]
        );
        let e = raw.validate_with(&|_| None).unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid config: target.api_key_env = \"SOAK_KEY\": the environment variable is \
             not set"
        );
        // With the key set, no warning; a missing file is a warning as well; both keys set
        // stays an error.
        let (c, w) = raw
            .check_with(&|k| (k == "SOAK_KEY").then(|| "sk-x".into()))
            .unwrap();
        assert!(c.target.api_key.is_some() && w.is_empty(), "{w:?}");
        let raw = config("[target]\napi_key_file = \"/nonexistent/soakd-key\"\n");
        let (_, w) = raw.check_with(&|_| None).unwrap();
        assert!(
            w.len() == 1
                && w[0]
                    .starts_with("target.api_key_file = \"/nonexistent/soakd-key\": cannot read"),
            "{w:?}"
        );
        assert!(raw.validate_with(&|_| None).is_err());
        let raw = config("[target]\napi_key_env = \"A\"\napi_key_file = \"/k\"\n");
        assert!(raw.check_with(&|_| None).is_err());
    }
}
