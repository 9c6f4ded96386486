//! What an HTTP error's body says, made safe to log: a short one-line excerpt with anything
//! that looks like a credential removed, and per scenario and outcome the most frequent one.
//!
//! A proxy's error answer usually says what went wrong (`connect ECONNREFUSED
//! 127.0.0.1:19799`), where the status alone (`http_5xx`, 500) does not. The exchange reads
//! the first [`READ_BYTES`] of an error status's body (it drains the body anyway, to reuse the
//! connection) through the same [`super::response::Resp`] for both clients, so the fast
//! HTTP/1.1 path and reqwest give the same text. [`excerpt`] then:
//! - decodes it as UTF-8 (invalid bytes replaced) and puts it on one line: control characters
//!   and runs of whitespace become one space;
//! - removes credentials: the configured key's value (any sensitive header the request sent,
//!   and the token of its `Bearer` value) becomes `<redacted>`, as does the token after any
//!   `Bearer ` and any `sk-…` key (`sk-` and at least 8 key characters, at a word start);
//! - keeps at most [`EXCERPT_BYTES`] bytes (on a character boundary), with `…` when cut.
//!
//! Redaction runs before the cut, on up to [`READ_BYTES`], so a key that straddles the cut is
//! not half shown.
//!
//! [`ErrorBodies`] keeps, per outcome, a fixed table of [`SLOTS`] excerpts with counts
//! (space-saving: a new excerpt takes the least counted slot and inherits its count + 1), so
//! memory is bounded (at most `SLOTS × EXCERPT_BYTES` per outcome) whatever the bodies; the
//! most counted one is reported. Counts are exact while at most [`SLOTS`] distinct excerpts
//! were seen, an upper bound after.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

use super::outcome::Outcome;

/// Most bytes of an excerpt.
pub const EXCERPT_BYTES: usize = 256;
/// Most bytes of an error body read for an excerpt (redaction sees all of them).
pub const READ_BYTES: usize = 1024;
/// Distinct excerpts counted per outcome.
pub const SLOTS: usize = 8;

const REDACTED: &str = "<redacted>";

/// Whether `c` can be part of a token or key.
fn key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '+' | '/' | '=')
}

/// The body's first bytes as one redacted line of at most [`EXCERPT_BYTES`] bytes (module
/// docs). `secrets` are values to remove wherever they appear (the configured key).
pub fn excerpt(body: &[u8], secrets: &[&str]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(READ_BYTES)]);
    let mut line = String::with_capacity(text.len());
    for word in text.split(|c: char| c.is_whitespace() || c.is_control()) {
        if word.is_empty() {
            continue;
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    for s in secrets {
        if s.len() >= 4 {
            line = line.replace(s, REDACTED);
        }
    }
    let line = redact_bearer(&line);
    let line = redact_sk(&line);
    if line.len() <= EXCERPT_BYTES {
        return line;
    }
    let mut end = EXCERPT_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

/// `Bearer <token>` (any case) → `Bearer <redacted>`.
fn redact_bearer(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.to_ascii_lowercase().find("bearer ") {
        let (head, tail) = rest.split_at(i + "bearer ".len());
        out.push_str(head);
        let end = tail.find(|c: char| !key_char(c)).unwrap_or(tail.len());
        if end > 0 && &tail[..end] != REDACTED {
            out.push_str(REDACTED);
        } else {
            out.push_str(&tail[..end]);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// `sk-` and at least 8 key characters, at a word start → `sk-<redacted>`.
fn redact_sk(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("sk-") {
        let at_word_start = rest[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(|c: char| !key_char(c)).unwrap_or(tail.len());
        if at_word_start && end >= 8 {
            out.push_str(REDACTED);
        } else {
            out.push_str(&tail[..end]);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// The most frequent error body of one outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopBody {
    /// The excerpt ([`excerpt`]).
    pub body: String,
    /// How often it was seen (exact unless more than [`SLOTS`] distinct excerpts were seen;
    /// then an upper bound).
    pub count: u64,
    /// Error bodies of this outcome seen in all.
    pub of: u64,
}

#[derive(Debug, Default)]
struct Table {
    slots: Vec<(String, u64)>,
    total: u64,
}

impl Table {
    fn record(&mut self, body: &str) {
        self.total += 1;
        if let Some(slot) = self.slots.iter_mut().find(|(b, _)| b == body) {
            slot.1 += 1;
        } else if self.slots.len() < SLOTS {
            self.slots.push((body.to_owned(), 1));
        } else if let Some(min) = self.slots.iter_mut().min_by_key(|(_, n)| *n) {
            *min = (body.to_owned(), min.1 + 1);
        }
    }

    fn top(&self) -> Option<TopBody> {
        self.slots
            .iter()
            .max_by_key(|(_, n)| *n)
            .map(|(body, count)| TopBody {
                body: body.clone(),
                count: *count,
                of: self.total,
            })
    }
}

/// The most frequent error bodies of one scenario, per outcome, in fixed memory (module
/// docs).
#[derive(Debug)]
pub struct ErrorBodies {
    tables: Box<[Mutex<Table>]>,
}

impl Default for ErrorBodies {
    fn default() -> Self {
        ErrorBodies {
            tables: Outcome::ALL
                .iter()
                .map(|_| Mutex::new(Table::default()))
                .collect(),
        }
    }
}

impl ErrorBodies {
    /// Counts one excerpt of an error body of `outcome`.
    pub fn record(&self, outcome: Outcome, excerpt: &str) {
        if let Some(t) = self.tables.get(outcome.index()) {
            t.lock().unwrap_or_else(|p| p.into_inner()).record(excerpt);
        }
    }

    /// The most frequent excerpt per outcome that had any.
    pub fn top(&self) -> BTreeMap<&'static str, TopBody> {
        Outcome::ALL
            .iter()
            .zip(self.tables.iter())
            .filter_map(|(o, t)| {
                let top = t.lock().unwrap_or_else(|p| p.into_inner()).top()?;
                Some((o.as_str(), top))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_is_one_bounded_line_without_credentials() {
        let body = b"{\"error\": {\"message\": \"connect ECONNREFUSED 127.0.0.1:19799\",\n\t\"hint\": \
                     \"Authorization: Bearer eyJhbGciOi.J9-x_y and sk-proj-AAAABBBBCCCC, task-12345678 \
                     key my-configured-key\"}}\r\n";
        assert_eq!(
            excerpt(body, &["my-configured-key"]),
            "{\"error\": {\"message\": \"connect ECONNREFUSED 127.0.0.1:19799\", \"hint\": \
             \"Authorization: Bearer <redacted> and sk-<redacted>, task-12345678 key \
             <redacted>\"}}"
        );
        // Short `sk-` words are not keys; `bearer` in any case is.
        assert_eq!(excerpt(b"sk-1 BEARER abc", &[]), "sk-1 BEARER <redacted>");
        // Bounded, on a character boundary, with the cut marked.
        let long = "é".repeat(300);
        let e = excerpt(long.as_bytes(), &[]);
        assert!(e.len() <= EXCERPT_BYTES + "…".len(), "{}", e.len());
        assert!(e.ends_with('…') && e.starts_with("éé"));
        // A key straddling the cut is redacted before the cut.
        let body = format!("{} sk-{}", "x".repeat(250), "K".repeat(40));
        let e = excerpt(body.as_bytes(), &[]);
        assert!(!e.contains("KKK"), "{e}");
        // Invalid UTF-8 does not stop it.
        assert_eq!(excerpt(b"bad \xff byte", &[]), "bad \u{fffd} byte");
    }

    #[test]
    fn the_table_keeps_the_most_frequent_body_in_fixed_memory() {
        let b = ErrorBodies::default();
        for _ in 0..5 {
            b.record(Outcome::Http5xx, "connect ECONNREFUSED");
        }
        b.record(Outcome::Http5xx, "timeout");
        b.record(Outcome::Http429, "slow down");
        for i in 0..1000 {
            b.record(Outcome::Http4xx, &format!("bad request {i}"));
        }
        let top = b.top();
        assert_eq!(
            top["http_5xx"],
            TopBody {
                body: "connect ECONNREFUSED".into(),
                count: 5,
                of: 6
            }
        );
        assert_eq!(top["http_429"].count, 1);
        assert_eq!(top["http_4xx"].of, 1000);
        assert!(!top.contains_key("ok"));
        let t = b.tables[Outcome::Http4xx.index()].lock().unwrap();
        assert_eq!(t.slots.len(), SLOTS, "bounded");
    }
}
