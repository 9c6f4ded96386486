//! Generated and mutated inputs for the differential harnesses: HTTP/1.1 responses built from
//! the parts a broken or hostile peer varies (versions, statuses, every framing header in valid
//! and invalid spellings, chunk syntax, trailers, truncation, trailing bytes), SSE bodies and
//! Prometheus expositions, then optionally mutated byte by byte.
//!
//! Every choice draws from an [`Entropy`]: a seeded RNG for the bounded property tests, or the
//! fuzzer's input bytes for cargo-fuzz (so libFuzzer's mutations steer the structure).

use rand::{Rng, SeedableRng};

/// A source of choices.
pub trait Entropy {
    fn next_u64(&mut self) -> u64;

    /// A number below `n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True `num` times in `den`.
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next_u64() % den < num
    }

    fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[self.below(from.len())]
    }
}

/// Choices from a seeded RNG.
pub struct Seeded(rand::rngs::SmallRng);

impl Seeded {
    pub fn new(seed: u64) -> Seeded {
        Seeded(rand::rngs::SmallRng::seed_from_u64(seed))
    }
}

impl Entropy for Seeded {
    fn next_u64(&mut self) -> u64 {
        self.0.random()
    }
}

/// Choices read from bytes (a fuzzer's input); zeros once they run out.
pub struct FromBytes<'a> {
    data: &'a [u8],
}

impl<'a> FromBytes<'a> {
    pub fn new(data: &'a [u8]) -> FromBytes<'a> {
        FromBytes { data }
    }
}

impl Entropy for FromBytes<'_> {
    fn next_u64(&mut self) -> u64 {
        let n = self.data.len().min(2);
        let (now, rest) = self.data.split_at(n);
        self.data = rest;
        now.iter().fold(0u64, |v, &b| v << 8 | u64::from(b))
    }
}

/// Piece sizes to feed an input in (at most 8 KiB: hyper reads at least that much at once, so
/// both clients see the same pieces).
pub fn splits(e: &mut impl Entropy) -> Vec<usize> {
    const SIZES: [usize; 9] = [1, 2, 3, 5, 7, 16, 64, 1000, 8192];
    (0..1 + e.below(4)).map(|_| *e.pick(&SIZES)).collect()
}

/// Bytes that often matter to a parser, for insertions.
const SPICE: &[u8] = b"\r\n \t;:,0aF\"\\{}=#\x80\xff\x00\x7f";

/// Mutates `v` in place: byte flips, insertions, deletions, a duplicated span.
pub fn mutate(e: &mut impl Entropy, v: &mut Vec<u8>) {
    for _ in 0..1 + e.below(3) {
        let at = e.below(v.len() + 1);
        match e.below(4) {
            0 if at < v.len() => v[at] ^= 1 << e.below(8),
            1 => v.insert(at, *e.pick(SPICE)),
            2 if at < v.len() => {
                v.remove(at);
            }
            _ if at < v.len() => {
                let end = (at + 1 + e.below(16)).min(v.len());
                let span = v[at..end].to_vec();
                v.splice(at..at, span);
            }
            _ => v.push(*e.pick(SPICE)),
        }
    }
}

fn push_str(v: &mut Vec<u8>, s: impl AsRef<[u8]>) {
    v.extend_from_slice(s.as_ref());
}

/// A response's status line.
fn status_line(e: &mut impl Entropy, out: &mut Vec<u8>) -> (bool, u16) {
    const VERSIONS: [&str; 6] = [
        "HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2", "http/1.1",
    ];
    const CODES: [u16; 14] = [
        200, 200, 200, 200, 204, 304, 101, 404, 429, 500, 302, 99, 999, 150,
    ];
    const REASONS: [&str; 4] = ["OK", "", "Whatever It Is", "Bad\x7fReason"];
    let version = *e.pick(&VERSIONS);
    let code = *e.pick(&CODES);
    push_str(out, format!("{version} {code:03} {}", e.pick(&REASONS)));
    (version == "HTTP/1.0", code)
}

/// A line end, mostly CRLF.
fn eol(e: &mut impl Entropy) -> &'static str {
    if e.chance(1, 12) {
        "\n"
    } else {
        "\r\n"
    }
}

/// How the generated body is framed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Frame {
    Length,
    Chunked,
    Close,
}

/// The framing headers (and a few others), in valid and invalid spellings.
fn headers(e: &mut impl Entropy, frame: Frame, body_len: usize, out: &mut Vec<u8>) {
    let mut lines: Vec<String> = Vec::new();
    if e.chance(2, 3) {
        lines.push(
            (*e.pick(&[
                "content-type: application/json",
                "Content-Type: text/event-stream",
            ]))
            .into(),
        );
    }
    let len = match e.below(12) {
        0 => format!("{}", body_len + 1),
        1 => format!("{}", body_len.saturating_sub(1)),
        2 => format!("{}{body_len}", "0".repeat(1 + e.below(30))),
        3 => format!("{body_len}, {body_len}"),
        4 => format!("{body_len},{}", body_len + 2),
        5 => (*e.pick(&["", "+5", "-1", "0x10", "18446744073709551616", " ", "5,"])).into(),
        6 => "18446744073709551614".into(),
        _ => format!("{body_len}"),
    };
    let te = *e.pick(&[
        "chunked",
        "chunked",
        "Chunked",
        "gzip, chunked",
        "chunked, gzip",
        "gzip",
        "chunked\u{e9}",
        " chunked ",
        "",
    ]);
    match frame {
        Frame::Length => {
            lines.push(format!("content-length: {len}"));
            if e.chance(1, 8) {
                lines.push(format!("Content-Length: {len}"));
            }
        }
        Frame::Chunked => {
            lines.push(format!("transfer-encoding: {te}"));
            if e.chance(1, 5) {
                lines.push(format!("content-length: {len}"));
            }
            if e.chance(1, 10) {
                lines.push(format!(
                    "transfer-encoding: {}",
                    e.pick(&["chunked", "gzip"])
                ));
            }
        }
        Frame::Close => {}
    }
    for _ in 0..e.below(3) {
        lines.push(
            (*e.pick(&[
                "connection: close",
                "connection: keep-alive",
                "Connection: Keep-Alive, Upgrade",
                "connection: close, keep-alive",
                "connection: close, \u{e9}",
                "connection: foo",
            ]))
            .into(),
        );
    }
    for _ in 0..e.below(3) {
        lines.push(
            (*e.pick(&[
                "x-a: b",
                "x-obs: caf\u{e9}",
                "x-empty:",
                "x-tab:\tv\t",
                "bad header",
                "x-sp : v",
                "x-ctl: a\x01b",
                "x\u{e9}: v",
                "x-folded: a\r\n b",
            ]))
            .into(),
        );
    }
    if e.chance(1, 40) {
        let n = 95 + e.below(10);
        lines.extend((0..n).map(|i| format!("x-{i}: v")));
    }
    if e.chance(1, 200) {
        lines.push(format!(
            "x-big: {}",
            "b".repeat(400 * 1024 + e.below(32 * 1024))
        ));
    }
    for l in lines {
        push_str(out, &l);
        push_str(out, eol(e));
    }
}

/// A chunked body: chunks of `data` with size lines, extensions and trailers in valid and
/// invalid spellings.
fn chunked(e: &mut impl Entropy, data: &[u8], out: &mut Vec<u8>) {
    let mut rest = data;
    while !rest.is_empty() {
        let n = (1 + e.below(rest.len())).min(rest.len());
        size_line(e, n, out);
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        push_str(
            out,
            if e.chance(1, 20) {
                e.pick(&["\n", "", "\r", "\r\r\n", " \r\n"])
            } else {
                "\r\n"
            },
        );
    }
    size_line(e, 0, out);
    for _ in 0..e.below(3) {
        let t: String = if e.chance(1, 60) {
            format!("x-t: {}", "v".repeat(16 * 1024 - 20 + e.below(40)))
        } else {
            (*e.pick(&[
                "x-t: v",
                "Expires: now",
                "garbage",
                "bad name: v",
                "x-t:v\u{e9}",
                ": v",
                "x-ctl: \x01",
            ]))
            .into()
        };
        push_str(out, &t);
        push_str(out, eol(e));
    }
    if e.chance(1, 40) {
        for i in 0..99 + e.below(4) {
            push_str(out, format!("t{i}: v\r\n"));
        }
    }
    push_str(out, eol(e));
}

fn size_line(e: &mut impl Entropy, n: usize, out: &mut Vec<u8>) {
    let zeros = if e.chance(1, 6) { e.below(40) } else { 0 };
    let hex = if e.chance(1, 4) {
        format!("{n:X}")
    } else {
        format!("{n:x}")
    };
    let pre = if e.chance(1, 30) { " " } else { "" };
    push_str(out, format!("{pre}{}{hex}", "0".repeat(zeros)));
    if e.chance(1, 8) {
        push_str(out, e.pick(&[" ", "\t", "  \t"]));
    }
    if e.chance(1, 5) {
        let ext: String = if e.chance(1, 50) {
            format!(";e={}", "x".repeat(16 * 1024 - 8 + e.below(16)))
        } else {
            (*e.pick(&[";a=b", ";", "; a = \"b\"", ";a\rb", ";a\nb", ";\u{e9}"])).into()
        };
        push_str(out, &ext);
    }
    push_str(out, eol(e));
}

/// One generated response and the pieces to feed it in.
pub fn response(e: &mut impl Entropy) -> (Vec<u8>, Vec<usize>) {
    let mut out = Vec::new();
    for _ in 0..e.below(8).saturating_sub(5) {
        push_str(&mut out, "\r\n");
    }
    if e.chance(1, 10) {
        push_str(
            &mut out,
            e.pick(&[
                "HTTP/1.1 100 Continue\r\n\r\n",
                "HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n",
                "HTTP/1.0 100 Continue\r\ntransfer-encoding: chunked\r\n\r\n",
            ]),
        );
    }
    status_line(e, &mut out);
    push_str(&mut out, eol(e));
    let frame = *e.pick(&[Frame::Length, Frame::Chunked, Frame::Chunked, Frame::Close]);
    let body: Vec<u8> = (0..e.below(60))
        .map(|_| *e.pick(b"data: {}\n\r\nxyz0123456789 \x80"))
        .collect();
    headers(e, frame, body.len(), &mut out);
    push_str(&mut out, eol(e));
    match frame {
        Frame::Chunked => chunked(e, &body, &mut out),
        _ => out.extend_from_slice(&body),
    }
    if e.chance(1, 7) {
        let cut = e.below(out.len() + 1);
        out.truncate(cut);
    }
    if e.chance(1, 7) {
        push_str(
            &mut out,
            e.pick(&["HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", "x", "\r\n"]),
        );
    }
    if e.chance(1, 4) {
        mutate(e, &mut out);
    }
    (out, splits(e))
}

/// One generated SSE body, its pieces and the event bound to read it with.
pub fn sse(e: &mut impl Entropy) -> (Vec<u8>, Vec<usize>, usize) {
    const LINES: [&str; 16] = [
        "data: x",
        "data:{\"a\":1}",
        "data",
        "data:",
        "data:  two",
        "event: e",
        "event:",
        "id: 1",
        "retry: 5",
        ": comment",
        ":",
        "foo: bar",
        "",
        "",
        "data: caf\u{e9} \u{1f389}",
        "<html>",
    ];
    let mut out = Vec::new();
    if e.chance(1, 10) {
        out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    for _ in 0..e.below(30) {
        push_str(&mut out, e.pick(&LINES));
        if e.chance(1, 30) {
            out.extend_from_slice(e.pick::<&[u8]>(&[&b"\xff"[..], b"\xc3", b"\xe2\x82"]));
        }
        push_str(&mut out, e.pick(&["\n", "\n", "\r\n", "\r"]));
    }
    if e.chance(1, 3) {
        mutate(e, &mut out);
    }
    let max = *e.pick(&[4, 8, 16, 64, 1 << 20]);
    (out, splits(e), max)
}

/// One generated Prometheus exposition.
pub fn exposition(e: &mut impl Entropy) -> String {
    const NAMES: [&str; 6] = [
        "process_resident_memory_bytes",
        "up",
        "a:b_c",
        "_x",
        "9bad",
        "",
    ];
    const LABELS: [&str; 9] = [
        "",
        "{}",
        "{a=\"b\"}",
        "{a=\"b\",c=\"d\"}",
        "{path=\"/a}b,c=\\\"d\\\"\"}",
        "{a=\"\\\\\"}",
        "{a=\"b\"",
        "{garbage}",
        "{a=\"\u{e9}\"}",
    ];
    const VALUES: [&str; 20] = [
        "1",
        "1.5",
        "1e3",
        "1.5E-3",
        "NaN",
        "+Inf",
        "-Inf",
        "Inf",
        "inf",
        "nan",
        ".5",
        "5.",
        "+.5",
        "-0",
        "0x1",
        "",
        "1e",
        "1_0",
        "--1",
        "4.1238528e+08",
    ];
    const TS: [&str; 6] = ["", " 1395066363000", " -5", " 1.5", " x", " 1 2"];
    const GAPS: [&str; 5] = [" ", "\t", "  ", "", "\u{a0}"];
    let mut out = String::new();
    for _ in 0..e.below(12) {
        match e.below(8) {
            0 => out.push_str(e.pick::<&str>(&["# HELP up Up.", "# TYPE up gauge", "#", ""])),
            _ => {
                out.push_str(e.pick::<&str>(&["", " ", "\t", "\u{3000}"]));
                out.push_str(e.pick::<&str>(&NAMES));
                out.push_str(e.pick::<&str>(&LABELS));
                out.push_str(e.pick::<&str>(&GAPS));
                out.push_str(e.pick::<&str>(&VALUES));
                out.push_str(e.pick::<&str>(&TS));
                out.push_str(e.pick::<&str>(&["", " ", "\r"]));
            }
        }
        out.push('\n');
    }
    if e.chance(1, 3) {
        let mut v = out.into_bytes();
        mutate(e, &mut v);
        return String::from_utf8_lossy(&v).into_owned();
    }
    out
}
