//! The two markers of a two-sided soak, both plain ASCII so they survive any proxy that
//! forwards message text (even one that re-encodes JSON with `ensure_ascii`):
//!
//! - **The request id** ` [soakd:0123456789abcdef]` (a space, then `[soakd:`, exactly 16
//!   lower-case hex digits, `]`) is appended to the end of the request's last user text, and
//!   the same 16 digits go in the header `x-soakd-request-id`. Proxies forward message content
//!   verbatim while they rewrite headers and drop unknown JSON fields, so the text is the one
//!   place an id reliably crosses a proxy; the upstream looks in both.
//! - **The chunk sequence** `~c<hex>~` (`~c`, 1–8 lower-case hex digits, `~`) overwrites the
//!   start of each content chunk's text the upstream sends, numbering the chunks of one answer
//!   from 0. Proxies re-chunk (merge or split events), so the client matches chunks by this
//!   number rather than by position.

/// The request-id header.
pub const ID_HEADER: &str = "x-soakd-request-id";

const ID_OPEN: &[u8] = b"[soakd:";
const ID_HEX: usize = 16;

/// The id as it is appended to a prompt: ` [soakd:<16 hex>]` (25 bytes).
pub fn id_tag(id: u64) -> [u8; 25] {
    let mut out = [0u8; 25];
    out[0] = b' ';
    out[1..8].copy_from_slice(ID_OPEN);
    out[8..24].copy_from_slice(&hex16(id));
    out[24] = b']';
    out
}

/// The id as the header value: 16 lower-case hex digits.
pub fn hex16(id: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        let nibble = (id >> (60 - 4 * i)) & 0xf;
        *b = HEX[nibble as usize];
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_value(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some(u64::from(b - b'0')),
        b'a'..=b'f' => Some(u64::from(b - b'a' + 10)),
        _ => None,
    }
}

/// Parses exactly 16 lower-case hex digits.
pub fn parse_hex16(s: &[u8]) -> Option<u64> {
    if s.len() != ID_HEX {
        return None;
    }
    s.iter()
        .try_fold(0u64, |acc, &b| Some((acc << 4) | hex_value(b)?))
}

/// The LAST request id tag in `body` (the tag is appended to the last user text, so the last
/// one wins over any id a conversation might quote earlier).
pub fn find_id(body: &[u8]) -> Option<u64> {
    let finder = memchr::memmem::FinderRev::new(ID_OPEN);
    let mut end = body.len();
    while let Some(at) = finder.rfind(&body[..end]) {
        let digits = at + ID_OPEN.len();
        if let Some(id) = body
            .get(digits..digits + ID_HEX + 1)
            .filter(|s| s[ID_HEX] == b']')
            .and_then(|s| parse_hex16(&s[..ID_HEX]))
        {
            return Some(id);
        }
        end = at;
    }
    None
}

/// Most bytes a chunk marker takes (`~c` + 8 hex digits + `~`).
pub const SEQ_MAX_LEN: usize = 11;

/// Writes the chunk marker of `seq` into `out`; returns its length.
pub fn seq_tag(seq: u32, out: &mut [u8; SEQ_MAX_LEN]) -> usize {
    let digits = if seq == 0 {
        1
    } else {
        (32 - seq.leading_zeros() as usize).div_ceil(4)
    };
    out[0] = b'~';
    out[1] = b'c';
    for i in 0..digits {
        let nibble = (seq >> (4 * (digits - 1 - i))) & 0xf;
        out[2 + i] = HEX[nibble as usize];
    }
    out[2 + digits] = b'~';
    3 + digits
}

/// Calls `f` with every chunk sequence number marked in `text`, in order.
pub fn each_seq(text: &[u8], mut f: impl FnMut(u32)) {
    let mut rest = text;
    while let Some(at) = memchr::memmem::find(rest, b"~c") {
        let digits = &rest[at + 2..];
        let n = digits
            .iter()
            .take(9)
            .take_while(|b| hex_value(**b).is_some())
            .count();
        if (1..=8).contains(&n) && digits.get(n) == Some(&b'~') {
            let seq = digits[..n].iter().fold(0u32, |acc, &b| {
                (acc << 4) | hex_value(b).unwrap_or(0) as u32
            });
            f(seq);
            rest = &digits[n + 1..];
        } else {
            rest = &rest[at + 2..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_a_body_and_the_header() {
        for id in [0u64, 1, 0xdead_beef, u64::MAX, 0x0123_4567_89ab_cdef] {
            let tag = id_tag(id);
            assert_eq!(tag.len(), 25);
            let body = [
                br#"{"messages":[{"role":"user","content":"hello"#.as_slice(),
                &tag,
                br#""}]}"#,
            ]
            .concat();
            assert_eq!(
                find_id(&body),
                Some(id),
                "{}",
                String::from_utf8_lossy(&body)
            );
            assert_eq!(parse_hex16(&hex16(id)), Some(id));
        }
        assert_eq!(&id_tag(0xab)[..], b" [soakd:00000000000000ab]");
    }

    #[test]
    fn the_last_valid_id_wins_and_broken_tags_are_skipped() {
        let body = b"quoted [soakd:0000000000000001] text [soakd:00000000000000zz] [soakd:00000000000000ff] end [soakd:123]";
        assert_eq!(find_id(body), Some(0xff));
        assert_eq!(
            find_id(b"[soakd:00000000000000FF]"),
            None,
            "lower-case only"
        );
        assert_eq!(find_id(b"nothing here"), None);
        assert_eq!(find_id(b"[soakd:0000000000000001"), None, "cut off");
        assert_eq!(parse_hex16(b"123"), None);
    }

    #[test]
    fn chunk_markers_round_trip_anywhere_in_text() {
        let mut buf = [0u8; SEQ_MAX_LEN];
        for seq in [0u32, 1, 9, 10, 15, 16, 255, 4096, 65_535, u32::MAX] {
            let n = seq_tag(seq, &mut buf);
            let mut got = vec![];
            each_seq(&buf[..n], |s| got.push(s));
            assert_eq!(got, [seq], "{}", String::from_utf8_lossy(&buf[..n]));
        }
        assert_eq!(seq_tag(0, &mut buf), 4);
        assert_eq!(&buf[..4], b"~c0~");
        assert_eq!(seq_tag(0x1a, &mut buf), 5);
        assert_eq!(&buf[..5], b"~c1a~");
        // Several markers in one merged event, a lone "~c", text around them.
        let mut got = vec![];
        each_seq(
            br#"{"delta":"~c3~rem ips"}{"delta":"~c4~rem ~c ~cZ~ ~c5~"}"#,
            |s| got.push(s),
        );
        assert_eq!(got, [3, 4, 5]);
        let mut none = 0;
        each_seq(b"~c123456789~ ~c~ c1~", |_| none += 1);
        assert_eq!(none, 0, "nine digits, no digits, no opener: not markers");
    }
}
