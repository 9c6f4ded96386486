//! Differential checks of soakd's hand-written parsers, shared by the bounded property tests
//! (`cargo test`, every CI run) and the cargo-fuzz targets in `fuzz/` (`scripts/fuzz.sh`):
//! - [`check_h1`]: the fast path's HTTP/1.1 response reading ([`crate::client::wire`]) against
//!   hyper's client connection ([`h1`]), for any bytes in any pieces;
//! - [`check_sse`]: [`crate::client::sse::SseReader`] in any pieces against a whole-body
//!   reference reader ([`sse_ref`]);
//! - [`check_expo`]: [`crate::monitor::expo`] against a grammar-first reference ([`expo_ref`]).
//!
//! Each returns the divergence as text (the fuzz targets panic with it); [`gen`] builds the
//! inputs. Compiled for tests and with the `fuzzing` feature only.

pub mod expo_ref;
pub mod gen;
pub mod h1;
pub mod sse_ref;

#[cfg(test)]
mod tests;

use std::ops::ControlFlow;

use crate::client::sse::SseReader;
use crate::monitor::expo;

/// soakd's fast path and hyper read `input`, fed in pieces of `splits`, the same way: the same
/// failure, or the same status, headers, body bytes, end of body and connection reuse.
pub fn check_h1(input: &[u8], splits: &[usize]) -> Result<h1::H1Read, String> {
    let ours = h1::soakd(input, splits);
    let theirs = h1::hyper(input, splits);
    if ours == theirs {
        Ok(ours)
    } else {
        Err(format!(
            "fast path and hyper disagree on {:?} (pieces {splits:?}):\n  soakd: {ours:?}\n  hyper: {theirs:?}",
            String::from_utf8_lossy(&input[..input.len().min(600)])
        ))
    }
}

/// The incremental SSE reader fed `body` in pieces of `splits` reports what the reference
/// reader does for the whole body; its buffers (the partial line, the event) never exceed
/// `max`.
pub fn check_sse(body: &[u8], splits: &[usize], max: usize) -> Result<sse_ref::SseRead, String> {
    let want = sse_ref::read(body, max);
    let mut r = SseReader::new(max);
    let mut got = sse_ref::SseRead {
        events: Vec::new(),
        error: None,
        tail: None,
        foreign_lines: 0,
    };
    let (mut at, mut i) = (0, 0);
    while at < body.len() && got.error.is_none() {
        let n = splits
            .get(i % splits.len().max(1))
            .copied()
            .unwrap_or(usize::MAX);
        let end = at + n.max(1).min(body.len() - at);
        let pushed = r.push(&body[at..end], |e| {
            got.events.push(sse_ref::Event {
                event: e.event.into(),
                data: e.data.into(),
            });
            ControlFlow::Continue(())
        });
        if let Err(e) = pushed {
            got.error = Some(e);
        }
        let (line, event) = r.buffered();
        if line > max.max(1) || event > max.max(1) {
            return Err(format!(
                "{line} bytes of line and {event} of event buffered, over max {max}"
            ));
        }
        at = end;
        i += 1;
    }
    if got.error.is_none() {
        got.tail = Some(r.finish());
    }
    got.foreign_lines = r.foreign_lines();
    if got == want {
        Ok(got)
    } else {
        Err(format!(
            "SSE reader and reference disagree on {:?} (max {max}, pieces {splits:?}):\n  reader:    {got:?}\n  reference: {want:?}",
            String::from_utf8_lossy(body)
        ))
    }
}

/// [`expo::parse`] accepts exactly the expositions the reference does, with the same samples
/// (NaN equal to NaN), or fails at the same line.
pub fn check_expo(text: &str) -> Result<(), String> {
    let want = expo_ref::parse(text);
    let mut samples = Vec::new();
    let got = expo::parse(text, |s| samples.push(s)).map(|()| samples);
    let same = match (&got, &want) {
        (Ok(a), Ok(b)) => {
            a.len() == b.len()
                && a.iter().zip(b).all(|(x, y)| {
                    x.name == y.name
                        && x.labels == y.labels
                        && (x.value == y.value || x.value.is_nan() && y.value.is_nan())
                })
        }
        (Err(e), Err(line)) => e.line == *line,
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(format!(
            "exposition parser and reference disagree on {text:?}:\n  parser:    {got:?}\n  reference: {want:?}"
        ))
    }
}
