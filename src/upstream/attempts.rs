//! What the upstream side of one soakd request saw, over all of its attempts: the per-id record
//! that fates ([`super::fate`]) and error origins ([`super::origin`]) read.
//!
//! One record per link, kept under the link's lock and updated by the upstream's probe as each
//! attempt begins, is answered and ends. Each question asked of the upstream side is a field
//! here, so another measure (the faults injected per request, say) adds a field, not a table.

use std::time::Instant;

use crate::mock::Answer;

/// What the upstream answered one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    /// The attempt's handler entry (the latest entry wins).
    pub entry: Instant,
    /// The HTTP status it answered with.
    pub status: u16,
    /// The answer carried a failure (an error status, an in-band error, a truncation, a
    /// stall, garbage).
    pub failed: bool,
}

/// The upstream side of one request, over its attempts.
#[derive(Debug, Default)]
pub struct Attempts {
    /// Attempts that reached the upstream.
    pub began: u32,
    /// Of those, the ones whose answer has not ended yet.
    pub open: u32,
    /// The answer of the latest attempt that got one.
    pub latest_answer: Option<Answered>,
}

impl Attempts {
    /// An attempt reached the upstream.
    pub fn began(&mut self) {
        self.began += 1;
        self.open += 1;
    }

    /// An attempt's answer ended (sent whole, or dropped).
    pub fn ended(&mut self) {
        self.open = self.open.saturating_sub(1);
    }

    /// The attempt that entered at `entry` is answered with `a`.
    pub fn answered(&mut self, entry: Instant, a: &Answer) {
        if self.latest_answer.is_none_or(|l| l.entry <= entry) {
            self.latest_answer = Some(Answered {
                entry,
                status: a.status,
                failed: a.failed,
            });
        }
    }
}

/// What one attempt generated, for the tokens generated after a give-up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Output {
    /// A streamed answer: its tokens are its content chunks (one token each).
    pub streamed: bool,
    /// Content chunks handed to the connection.
    pub chunks: u32,
    /// A unary answer's output tokens (generated whole, sent at once).
    pub unary_tokens: u64,
}

impl Output {
    /// The output of an attempt answered with `a` (none yet when it was not).
    pub fn of(a: Option<&Answer>) -> Output {
        a.map_or_else(Output::default, |a| Output {
            streamed: a.stream,
            chunks: 0,
            unary_tokens: if a.stream { 0 } else { a.output_tokens },
        })
    }
}
