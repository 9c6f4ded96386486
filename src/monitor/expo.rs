//! A small parser for the Prometheus text exposition format, enough to read a process's
//! `process_*` samples.
//!
//! Lines are `name{label="value",...} value [timestamp]`, split at `\n` (a `\r` before it
//! dropped), their parts separated by blanks (spaces and tabs, as in the format; other
//! whitespace is not a separator); `#` lines are comments (HELP, TYPE or free text); blank
//! lines are skipped. The fuzzing harness (`crate::fuzzing::expo_ref`) checks the parser
//! against a reference written from the grammar. Values accept Go float syntax as Prometheus
//! writes it: decimals, exponents, `NaN`, `+Inf`, `-Inf`. Label values may hold escaped
//! quotes, backslashes and newlines, and `}` or `,` inside quotes.
//!
//! When a name occurs several times (several label sets), [`find_first`] takes the FIRST
//! sample in document order. The `process_*` metrics of the standard client libraries carry no
//! labels, so the first sample is the only one; summing would be wrong for exporters that
//! publish one series per worker alongside a total.

/// One parsed sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// Metric name.
    pub name: &'a str,
    /// Raw label block without braces (empty when none).
    pub labels: &'a str,
    /// The value.
    pub value: f64,
}

/// Why a line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub reason: &'static str,
}

/// The separators of the format.
const BLANKS: [char; 2] = [' ', '\t'];

/// Parses one non-comment, non-blank line.
pub fn parse_line(line: &str) -> Result<Sample<'_>, &'static str> {
    let line = line.trim_matches(BLANKS);
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("missing metric name");
    }
    let mut rest = &line[name_end..];
    let mut labels = "";
    if let Some(after) = rest.strip_prefix('{') {
        let close = label_block_end(after).ok_or("unterminated label block")?;
        labels = &after[..close];
        rest = &after[close + 1..];
    }
    if !rest.starts_with([' ', '\t']) {
        return Err("missing value");
    }
    let mut parts = rest.split(BLANKS).filter(|p| !p.is_empty());
    let value = parts.next().ok_or("missing value")?;
    let value = parse_value(value).ok_or("value is not a number")?;
    if let Some(ts) = parts.next() {
        ts.parse::<i64>()
            .map_err(|_| "timestamp is not an integer")?;
    }
    if parts.next().is_some() {
        return Err("trailing text after timestamp");
    }
    Ok(Sample {
        name,
        labels,
        value,
    })
}

/// Index of the `}` closing a label block, honouring quotes and escapes.
fn label_block_end(s: &str) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '}' if !in_quotes => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => {
            // Rust's parser accepts "inf"/"nan" spellings the format does not; reject them.
            if s.chars()
                .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
            {
                return None;
            }
            s.parse().ok()
        }
    }
}

/// Parses a whole exposition, calling `f` for each sample.
pub fn parse<'a>(text: &'a str, mut f: impl FnMut(Sample<'a>)) -> Result<(), ParseError> {
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let trimmed = line.trim_matches(BLANKS);
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let s = parse_line(trimmed).map_err(|reason| ParseError {
            line: i + 1,
            reason,
        })?;
        f(s);
    }
    Ok(())
}

/// The first sample of each of `names` (in document order), after checking the whole text
/// parses. Index `i` of the result belongs to `names[i]`.
pub fn find_first<const N: usize>(
    text: &str,
    names: [&str; N],
) -> Result<[Option<f64>; N], ParseError> {
    let mut out = [None; N];
    parse(text, |s| {
        for (slot, n) in out.iter_mut().zip(names) {
            if slot.is_none() && s.name == n {
                *slot = Some(s.value);
            }
        }
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = r#"# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.47
# HELP process_open_fds Number of open file descriptors.
# TYPE process_open_fds gauge
process_open_fds 87
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 4.1238528e+08
process_start_time_seconds 1.71234567891e+09
# free-form comment with { braces }
http_requests_total{method="post",code="200",path="/a}b,c=\"d\""} 1027 1395066363000
http_requests_total{method="get"} 3
process_threads{worker="1"} 5
process_threads 9
weird_gauge NaN
up_inf +Inf
down_inf -Inf
tiny 1.5E-3

"#;

    #[test]
    fn parses_real_looking_exposition() {
        let got = find_first(
            REAL,
            [
                "process_resident_memory_bytes",
                "process_open_fds",
                "process_threads",
                "process_start_time_seconds",
                "process_cpu_seconds_total",
                "absent_metric",
            ],
        )
        .unwrap();
        assert_eq!(got[0], Some(412_385_280.0));
        assert_eq!(got[1], Some(87.0));
        // First sample in document order, labelled or not.
        assert_eq!(got[2], Some(5.0));
        assert_eq!(got[3], Some(1_712_345_678.91));
        assert_eq!(got[4], Some(12.47));
        assert_eq!(got[5], None);
    }

    #[test]
    fn special_values_and_labels() {
        let [nan, pinf, ninf, tiny] =
            find_first(REAL, ["weird_gauge", "up_inf", "down_inf", "tiny"]).unwrap();
        assert!(nan.unwrap().is_nan());
        assert_eq!(pinf, Some(f64::INFINITY));
        assert_eq!(ninf, Some(f64::NEG_INFINITY));
        assert_eq!(tiny, Some(0.0015));
        let s = parse_line(
            r#"http_requests_total{method="post",path="/a}b,c=\"d\""} 1027 1395066363000"#,
        )
        .unwrap();
        assert_eq!(s.name, "http_requests_total");
        assert_eq!(s.labels, r#"method="post",path="/a}b,c=\"d\"""#);
        assert_eq!(s.value, 1027.0);
    }

    #[test]
    fn only_spaces_and_tabs_separate() {
        // Found by the differential fuzzing: Unicode whitespace was read as a separator.
        for bad in ["\u{3000}up 1", "up\u{a0}1", "up 1\u{2003}2"] {
            assert!(find_first(bad, ["up"]).is_err(), "{bad:?}");
        }
        assert_eq!(find_first("\tup \t 1 \t\r\n", ["up"]).unwrap(), [Some(1.0)]);
        assert_eq!(find_first("up 2\r", ["up"]).unwrap(), [Some(2.0)]);
    }

    #[test]
    fn garbage_is_an_error_with_a_line_number() {
        let e = find_first("ok 1\n<html>not metrics</html>\n", ["ok"]).unwrap_err();
        assert_eq!(e.line, 2);
        for bad in [
            "name",
            "name{a=\"b\" 1",
            "name abc",
            "name 1 2 3",
            "name inf",
            "name 1 1.5",
            "{a=\"b\"} 1",
            "name{a=\"b\"}1",
        ] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
    }
}
