//! What one SSE event means for a stream, in words every API's parser shares.
//!
//! Each event becomes a [`Step`]; the caller turns steps into TTFT, chunk gaps, and the
//! stream's outcome. A body that ends before [`Step::Done`] is truncated. The per-API parsers
//! ([`super::openai`], [`super::completions`], [`super::responses`], [`super::anthropic`])
//! build their steps from the readers here ([`DeltaLens`] and the allocation-free JSON length
//! readers), and [`super::parser`] puts them behind one enum; this file imports neither.
//!
//! Every content step says which kind of output it carried ([`DeltaKind`]): text, tool-call
//! arguments or reasoning. A scenario's [`TtftOn`] decides which kinds start the TTFT clock;
//! chunk counts and chunk gaps always count every kind.

/// What kind of generated output a content delta carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaKind {
    /// Answer text (also a refusal, which is text shown to the user).
    Text,
    /// Tool-call (function) arguments.
    ToolCall,
    /// Reasoning ("thinking") text or a reasoning summary.
    Reasoning,
}

/// Which content deltas start the time to first token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TtftOn {
    /// The first output delta of any kind (text, tool-call arguments, reasoning).
    #[default]
    Any,
    /// The first text delta only; a stream with no text records no TTFT.
    Text,
}

impl TtftOn {
    /// Whether a delta of `kind` may be the first token.
    #[inline]
    pub fn counts(self, kind: DeltaKind) -> bool {
        match self {
            TtftOn::Any => true,
            TtftOn::Text => kind == DeltaKind::Text,
        }
    }

    /// The config spelling: `any` or `text`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TtftOn::Any => "any",
            TtftOn::Text => "text",
        }
    }
}

/// What one event means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Framing, metadata, keep-alive, usage or an unknown event type.
    Ignore,
    /// A content-bearing chunk with `bytes` bytes of generated output.
    Content {
        /// Decoded length of the generated output in this event, all kinds together.
        bytes: usize,
        /// The kind of output; text wins when one event carries several kinds.
        kind: DeltaKind,
    },
    /// The stream's terminator (`[DONE]`, `message_stop`, `response.completed`).
    Done,
    /// An error frame after a 2xx status.
    ErrorEvent,
    /// The target ended the answer in-band without completing it (Responses:
    /// `response.incomplete` for a reason other than `max_output_tokens`).
    Truncated(&'static str),
    /// Not a valid event for this API.
    Protocol(&'static str),
}

/// Generated output of one event, summed per kind (lengths only, nothing copied).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeltaLens {
    pub text: usize,
    pub tool: usize,
    pub reasoning: usize,
}

impl DeltaLens {
    /// Lengths of one kind.
    pub fn of(kind: DeltaKind, n: usize) -> DeltaLens {
        let mut d = DeltaLens::default();
        match kind {
            DeltaKind::Text => d.text = n,
            DeltaKind::ToolCall => d.tool = n,
            DeltaKind::Reasoning => d.reasoning = n,
        }
        d
    }

    /// The step for an event carrying these lengths: content when any is non-empty.
    pub fn step(self) -> Step {
        let bytes = self.text + self.tool + self.reasoning;
        let kind = if self.text > 0 {
            DeltaKind::Text
        } else if self.tool > 0 {
            DeltaKind::ToolCall
        } else {
            DeltaKind::Reasoning
        };
        if bytes > 0 {
            Step::Content { bytes, kind }
        } else {
            Step::Ignore
        }
    }
}

impl std::ops::AddAssign for DeltaLens {
    fn add_assign(&mut self, o: DeltaLens) {
        self.text += o.text;
        self.tool += o.tool;
        self.reasoning += o.reasoning;
    }
}

/// The length of a JSON string, read without allocating (escaped strings are decoded into
/// serde_json's scratch buffer, never into a `String`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TextLen(pub usize);

impl TextLen {
    /// The length of an optional string field: 0 when absent or `null`.
    pub fn of(s: Option<TextLen>) -> usize {
        s.map_or(0, |t| t.0)
    }
}

impl<'de> serde::Deserialize<'de> for TextLen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = TextLen;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TextLen, E> {
                Ok(TextLen(v.len()))
            }
        }
        d.deserialize_str(V)
    }
}

/// The output lengths of a JSON array's elements, summed without collecting them into a
/// `Vec`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SumLen<T>(pub DeltaLens, std::marker::PhantomData<T>);

/// An element of a `SumLen` array (a JSON array whose output lengths are summed).
pub trait HasLen {
    fn lens(&self) -> DeltaLens;
}

impl<'de, T: serde::Deserialize<'de> + HasLen> serde::Deserialize<'de> for SumLen<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de> + HasLen> serde::de::Visitor<'de> for V<T> {
            type Value = SumLen<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut n = DeltaLens::default();
                while let Some(e) = seq.next_element::<T>()? {
                    n += e.lens();
                }
                Ok(SumLen(n, std::marker::PhantomData))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// A JSON array whose elements are skipped unread: a shape check that allocates nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct IsArray(pub usize);

impl<'de> serde::Deserialize<'de> for IsArray {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = IsArray;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<IsArray, A::Error> {
                let mut n = 0;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(IsArray(n))
            }
        }
        d.deserialize_seq(V)
    }
}

/// A `usage` object read for its `output_tokens` alone (Responses and Anthropic).
#[derive(serde::Deserialize)]
pub(crate) struct OutputUsage {
    #[serde(default)]
    pub output_tokens: Option<u64>,
}

/// The last checks of a non-stream 2xx body, the same for every API that has them: an error
/// object fails it, then a missing content array (`missing` names it); else its output tokens.
pub(crate) fn checked_body(
    is_error: bool,
    has_content: bool,
    missing: &'static str,
    tokens: Option<u64>,
) -> Result<Option<u64>, &'static str> {
    if is_error {
        return Err("error object in a 2xx response");
    }
    if !has_content {
        return Err(missing);
    }
    Ok(tokens)
}
