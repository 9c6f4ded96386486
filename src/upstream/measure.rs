//! What the proxy added, held back and dropped, computed from both ends of one request.
//!
//! Both ends run in one process and stamp one monotonic clock (`std::time::Instant`), so
//! differences between a client stamp and an upstream stamp are the proxy's own doing (plus the
//! loopback and scheduling noise of this process, which the zero-proxy calibration — the
//! target pointed at the upstream itself — measures).
//!
//! The rules, for one soakd request whose client side and serving upstream attempt have both
//! ended (the attempt with the latest entry serves; earlier ones only count as retries):
//! - **request** = upstream handler entry − client's actual send (observed when the first
//!   attempt arrives, see [`super::Tracker`]);
//! - **first_token** = (client's first content arrival − client's actual send) − (upstream's
//!   first content send − upstream entry): the client's TTFT from the actual send minus the
//!   upstream's own time to its first chunk;
//! - **chunk** = client arrival of chunk `n` − upstream send of chunk `n`, for every chunk whose
//!   sequence marker the client saw (its first arrival counts);
//! - **coalesced chunk**: in the client's arrival order, a chunk that arrived within
//!   [`COALESCE_WITHIN`] of the previous one although the upstream sent the two at least
//!   [`SENT_APART`] apart. Neighbours are compared, not the first chunk, whose delay is as large
//!   as the rest's when a proxy holds a whole answer back;
//! - **buffered stream**: at least [`MIN_PAIRS`] neighbour pairs sent [`SENT_APART`] apart, and
//!   more than half of them coalesced;
//! - **response** = client's last body byte received − upstream's last byte sent, for an answer
//!   the upstream sent whole and the client read to its end (unary or streamed): what the
//!   proxy adds on the way back after the answer ended.
//!
//! What became of a client's give-up (cancel propagation among it) is the upstream side's
//! fate, decided in [`super::fate`].

use std::time::{Duration, Instant};

use super::attempts::Output;

/// Arrivals this close together count as one release by the proxy.
pub const COALESCE_WITHIN: Duration = Duration::from_millis(1);
/// Chunks sent at least this far apart can show coalescing.
pub const SENT_APART: Duration = Duration::from_millis(10);
/// Fewest comparable neighbour pairs before a stream is judged buffered or not.
pub const MIN_PAIRS: u32 = 2;
/// Most chunks per answer tracked on either side (stamps beyond are not kept).
pub const MAX_CHUNKS: usize = 4096;

/// Why buffered streams and coalesced chunks cannot be seen when the upstream sends chunks
/// `chunk_delay` apart, `chunks` per answer: chunks sent under [`SENT_APART`] apart are never
/// comparable (any that count are timer jitter), and an answer of one chunk has no neighbours.
/// `None` when both can be seen.
pub fn unmeasurable(chunk_delay: Duration, chunks: u32) -> Option<String> {
    let ms = |d: Duration| crate::units::fmt_duration(d);
    if chunk_delay < SENT_APART {
        Some(format!(
            "chunk_delay {} < {}",
            ms(chunk_delay),
            ms(SENT_APART)
        ))
    } else if chunks < 2 {
        Some(format!("chunks {chunks} < 2"))
    } else {
        None
    }
}

/// How the client side of a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientEnd {
    /// The answer was read to its end and was good (`ok`).
    Finished,
    /// The client saw an error (any outcome but `ok` and a give-up): it gets an origin.
    Failed,
    /// The client gave up: a workload cancel, a timeout, or the end of the grace period. It
    /// gets a fate.
    GaveUp,
}

/// The client's stamps of one request.
#[derive(Debug, Clone)]
pub struct ClientSide {
    /// The actual send.
    pub send: Instant,
    /// The first content delta of any kind.
    pub first_content: Option<Instant>,
    /// `(sequence, arrival)` of each chunk marker seen, in arrival order.
    pub arrivals: Vec<(u32, Instant)>,
    /// When the last body bytes arrived.
    pub last_byte: Option<Instant>,
    /// When the client side ended, and how.
    pub end: Instant,
    pub how: ClientEnd,
}

/// The serving upstream attempt's stamps.
#[derive(Debug, Clone)]
pub struct UpstreamSide {
    /// Handler entry (before the body was read).
    pub entry: Instant,
    /// Send time of chunk `n` at index `n`.
    pub sends: Vec<Instant>,
    /// When the body ended: sent its end, or was dropped.
    pub end: Instant,
    /// Whether the whole answer was sent.
    pub completed: bool,
    /// What it generated.
    pub output: Output,
}

/// The measures of one joined request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measures {
    pub first_token: Option<Duration>,
    /// Proxy-added time per chunk matched by sequence.
    pub chunks: Vec<Duration>,
    /// Neighbour pairs sent at least [`SENT_APART`] apart.
    pub comparable: u32,
    /// Of those, pairs whose second chunk arrived coalesced.
    pub coalesced: u32,
    pub buffered: bool,
    pub response: Option<Duration>,
}

/// Joins both sides of one request by the rules of the module doc.
pub fn join(c: &ClientSide, u: &UpstreamSide) -> Measures {
    let mut m = Measures {
        first_token: match (c.first_content, u.sends.first()) {
            (Some(first), Some(up_first)) => {
                let client_ttft = first.saturating_duration_since(c.send);
                let upstream_own = up_first.saturating_duration_since(u.entry);
                Some(client_ttft.saturating_sub(upstream_own))
            }
            _ => None,
        },
        ..Measures::default()
    };
    let mut seen = vec![false; u.sends.len()];
    let mut prev: Option<(Instant, Instant)> = None;
    for &(seq, arrived) in &c.arrivals {
        let Some(&sent) = u.sends.get(seq as usize) else {
            continue;
        };
        if std::mem::replace(&mut seen[seq as usize], true) {
            continue;
        }
        m.chunks.push(arrived.saturating_duration_since(sent));
        if let Some((prev_sent, prev_arrived)) = prev {
            if sent.saturating_duration_since(prev_sent) >= SENT_APART {
                m.comparable += 1;
                if arrived.saturating_duration_since(prev_arrived) <= COALESCE_WITHIN {
                    m.coalesced += 1;
                }
            }
        }
        prev = Some((sent, arrived));
    }
    m.buffered = m.comparable >= MIN_PAIRS && 2 * m.coalesced > m.comparable;
    if let (Some(last), ClientEnd::Finished, true) = (c.last_byte, c.how, u.completed) {
        m.response = Some(last.saturating_duration_since(u.end));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// An upstream that entered at `t0 + 2 ms`, sent its first chunk 20 ms later and then one
    /// every 100 ms.
    fn upstream(t0: Instant, n: usize, completed: bool) -> UpstreamSide {
        let entry = t0 + ms(2);
        let sends: Vec<Instant> = (0..n).map(|i| entry + ms(20 + 100 * i as u64)).collect();
        UpstreamSide {
            entry,
            end: *sends.last().unwrap() + ms(1),
            output: Output {
                streamed: true,
                chunks: n as u32,
                unary_tokens: 0,
            },
            sends,
            completed,
        }
    }

    /// A client that sent at `t0` and finished at its last chunk.
    fn finished(t0: Instant, arrivals: Vec<(u32, Instant)>) -> ClientSide {
        let last = arrivals.last().expect("a chunk").1;
        ClientSide {
            send: t0,
            first_content: Some(arrivals[0].1),
            end: last,
            last_byte: Some(last),
            arrivals,
            how: ClientEnd::Finished,
        }
    }

    #[test]
    fn a_pass_through_proxy_adds_little_and_buffers_nothing() {
        let t0 = Instant::now();
        let u = upstream(t0, 10, true);
        let arrivals: Vec<(u32, Instant)> = u
            .sends
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u32, *s + ms(3)))
            .collect();
        let c = finished(t0, arrivals);
        let m = join(&c, &u);
        // TTFT 25 ms from the send, the upstream's own 20 ms: 5 ms added (2 before, 3 after).
        assert_eq!(m.first_token, Some(ms(5)));
        assert_eq!(m.chunks, vec![ms(3); 10]);
        assert_eq!((m.comparable, m.coalesced, m.buffered), (9, 0, false));
        // The last chunk arrived 3 ms after it was sent, 2 ms after the upstream's end.
        assert_eq!(m.response, Some(ms(2)));
    }

    #[test]
    fn a_buffering_proxy_releases_bunches_and_is_caught() {
        let t0 = Instant::now();
        let u = upstream(t0, 12, true);
        // Released in three bunches of four, at the send time of each bunch's last chunk:
        // every chunk but a bunch's first arrives with the one before it.
        let arrivals: Vec<(u32, Instant)> = (0..12)
            .map(|i| (i as u32, u.sends[(i / 4) * 4 + 3] + ms(1)))
            .collect();
        let c = finished(t0, arrivals);
        let m = join(&c, &u);
        assert_eq!((m.comparable, m.coalesced), (11, 9));
        assert!(m.buffered);
        // The first chunk waited for three more: 301 ms added; TTFT shows the same.
        assert_eq!(m.chunks[0], ms(301));
        assert_eq!(m.first_token, Some(ms(2 + 301)));
    }

    #[test]
    fn re_chunked_duplicated_and_unknown_markers_are_handled() {
        let t0 = Instant::now();
        let u = upstream(t0, 3, true);
        let at = |i: usize| u.sends[i] + ms(2);
        // Chunk 1 and 2 merged into one event (same arrival), a duplicate of 0, and a
        // sequence the upstream never sent.
        let c = ClientSide {
            send: t0,
            first_content: Some(at(0)),
            arrivals: vec![(0, at(0)), (0, at(1)), (1, at(2)), (2, at(2)), (7, at(2))],
            last_byte: Some(at(2)),
            end: at(2),
            how: ClientEnd::Finished,
        };
        let m = join(&c, &u);
        assert_eq!(m.chunks, vec![ms(2), ms(102), ms(2)]);
        assert_eq!((m.comparable, m.coalesced), (2, 1));
        assert!(!m.buffered, "one of two is not most");
    }

    #[test]
    fn the_response_stage_is_the_way_back_after_the_answer_ended() {
        let t0 = Instant::now();
        // A unary answer sent whole at 3 s; a proxy that held it 40 ms on the way back.
        let mut u = UpstreamSide {
            entry: t0 + ms(1),
            sends: vec![],
            end: t0 + ms(3000),
            completed: true,
            output: Output {
                streamed: false,
                chunks: 0,
                unary_tokens: 24,
            },
        };
        let c = ClientSide {
            send: t0,
            first_content: None,
            arrivals: vec![],
            last_byte: Some(t0 + ms(3040)),
            end: t0 + ms(3041),
            how: ClientEnd::Finished,
        };
        assert_eq!(join(&c, &u).response, Some(ms(40)));
        // No response stage for an answer cut short, a client that gave up or failed, or a
        // client that read no body.
        u.completed = false;
        assert_eq!(join(&c, &u).response, None);
        u.completed = true;
        for how in [ClientEnd::GaveUp, ClientEnd::Failed] {
            assert_eq!(join(&ClientSide { how, ..c.clone() }, &u).response, None);
        }
        let no_body = ClientSide {
            last_byte: None,
            ..c
        };
        assert_eq!(join(&no_body, &u).response, None);
    }

    #[test]
    fn no_content_means_no_first_token_and_no_chunks() {
        let t0 = Instant::now();
        let u = UpstreamSide {
            entry: t0,
            sends: vec![],
            end: t0 + ms(5),
            completed: true,
            output: Output::default(),
        };
        let c = ClientSide {
            send: t0,
            first_content: None,
            arrivals: vec![],
            last_byte: None,
            end: t0 + ms(6),
            how: ClientEnd::Finished,
        };
        assert_eq!(join(&c, &u), Measures::default());
    }
}
