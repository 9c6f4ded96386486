//! A plain Prometheus text-format line reader to check [`crate::monitor::expo`] against,
//! written from the format's grammar rather than from the parser:
//!
//! ```text
//! line    = blank* name labels? blank+ value (blank+ timestamp)? blank*
//! name    = [A-Za-z_:] [A-Za-z0-9_:]*
//! labels  = "{" ( any byte but a `}` outside quotes; `\` escapes the next byte inside quotes ) "}"
//! value   = "NaN" | [+-]? "Inf" | [+-]? ( digit+ ("." digit*)? | "." digit+ ) ([eE] [+-]? digit+)?
//! timestamp = [+-]? digit+   (an i64)
//! blank   = " " | "\t"
//! ```
//!
//! Lines are split at `\n` (a `\r` before it dropped); a blank line or one whose first non-blank
//! is `#` is skipped.

/// One sample: name, raw label block, value.
#[derive(Debug, Clone, PartialEq)]
pub struct RefSample<'a> {
    pub name: &'a str,
    pub labels: &'a str,
    pub value: f64,
}

fn blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn digits(s: &[u8]) -> usize {
    s.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// Whether `s` is a value of the grammar.
fn is_value(s: &[u8]) -> bool {
    let unsigned = match s {
        [b'+' | b'-', rest @ ..] => rest,
        _ => s,
    };
    if s == b"NaN" || unsigned == b"Inf" {
        return true;
    }
    let int = digits(unsigned);
    let mut at = int;
    let mut frac = 0;
    if unsigned.get(at) == Some(&b'.') {
        frac = digits(&unsigned[at + 1..]);
        at += 1 + frac;
    }
    if int + frac == 0 {
        return false;
    }
    if matches!(unsigned.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(unsigned.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let exp = digits(&unsigned[at..]);
        if exp == 0 {
            return false;
        }
        at += exp;
    }
    at == unsigned.len()
}

fn value_of(s: &str) -> f64 {
    match s {
        "NaN" => f64::NAN,
        "Inf" | "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s.parse().expect("a value of the grammar parses"),
    }
}

/// Reads one line that is neither blank nor a comment; `None` when it breaks the grammar.
pub fn line(line: &str) -> Option<RefSample<'_>> {
    let b = line.as_bytes();
    let mut at = b.iter().take_while(|&&c| blank(c)).count();
    let name_start = at;
    if !b
        .get(at)
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_' || *c == b':')
    {
        return None;
    }
    while b
        .get(at)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
    {
        at += 1;
    }
    let name = &line[name_start..at];
    let mut labels = "";
    if b.get(at) == Some(&b'{') {
        let open = at + 1;
        let (mut quoted, mut i) = (false, open);
        loop {
            match b.get(i)? {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b'}' if !quoted => break,
                _ => {}
            }
            i += 1;
        }
        labels = &line[open..i];
        at = i + 1;
    }
    let rest = &b[at..];
    if !rest.first().is_some_and(|&c| blank(c)) {
        return None;
    }
    let fields: Vec<&[u8]> = rest
        .split(|&c| blank(c))
        .filter(|f| !f.is_empty())
        .collect();
    match fields.as_slice() {
        [v] | [v, _] if !is_value(v) => None,
        [v] => Some(RefSample {
            name,
            labels,
            value: value_of(std::str::from_utf8(v).ok()?),
        }),
        [v, ts] => {
            let ts = std::str::from_utf8(ts).ok()?;
            let sign = usize::from(ts.starts_with(['+', '-']));
            if ts.len() == sign || digits(&ts.as_bytes()[sign..]) != ts.len() - sign {
                return None;
            }
            ts.parse::<i64>().ok()?;
            Some(RefSample {
                name,
                labels,
                value: value_of(std::str::from_utf8(v).ok()?),
            })
        }
        _ => None,
    }
}

/// Reads a whole exposition: its samples in order, or the 1-based number of the first line
/// that breaks the grammar.
pub fn parse(text: &str) -> Result<Vec<RefSample<'_>>, usize> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut n = 0usize;
    while !rest.is_empty() {
        n += 1;
        let (l, next) = match rest.find('\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        rest = next;
        let l = l.strip_suffix('\r').unwrap_or(l);
        let first = l.bytes().find(|&c| !blank(c));
        if first.is_none() || first == Some(b'#') {
            continue;
        }
        out.push(line(l).ok_or(n)?);
    }
    Ok(out)
}
