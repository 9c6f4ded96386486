//! The CSV input of `soakd analyze FILE.csv`.
//!
//! Rules: the first line is exactly the header `timestamp_seconds,value` (surrounding spaces
//! and a UTF-8 byte-order mark are ignored); every other non-blank line holds two
//! comma-separated numbers — seconds (Unix time or any origin) and the value; both must be
//! finite, and timestamps must strictly increase. Blank lines are skipped and `\r\n` endings
//! accepted. Any violation is an error naming the file and the 1-based line. At most
//! [`MAX_POINTS`] rows.

use std::io::BufRead;
use std::path::Path;

use super::{InputError, Series, MAX_POINTS};

/// The required header.
pub const HEADER: &str = "timestamp_seconds,value";

/// Reads the CSV file at `path`.
pub fn read_csv(path: &Path) -> Result<Series, InputError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| InputError::Io {
        file: name.clone(),
        source,
    })?;
    parse_csv(&name, std::io::BufReader::new(file))
}

/// Parses CSV text from `reader`; `name` is used in errors.
pub fn parse_csv(name: &str, reader: impl BufRead) -> Result<Series, InputError> {
    let err = |line: usize, reason: String| InputError::Csv {
        file: name.to_string(),
        line,
        reason,
    };
    let mut series = Series::default();
    let mut header_seen = false;
    for (i, line) in reader.lines().enumerate() {
        let no = i + 1;
        let line = line.map_err(|e| err(no, format!("cannot read: {e}")))?;
        let text = line.trim().trim_start_matches('\u{feff}').trim();
        if !header_seen {
            if text != HEADER {
                return Err(err(
                    no,
                    format!("expected the header {HEADER:?}, found {text:?}"),
                ));
            }
            header_seen = true;
            continue;
        }
        if text.is_empty() {
            continue;
        }
        let mut fields = text.split(',');
        let (Some(ts), Some(val), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(err(
                no,
                format!("expected two fields `timestamp_seconds,value`, found {text:?}"),
            ));
        };
        let number = |what: &str, s: &str| -> Result<f64, InputError> {
            let s = s.trim();
            match s.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                Ok(_) => Err(err(no, format!("{what} {s:?} is not a finite number"))),
                Err(_) => Err(err(no, format!("{what} {s:?} is not a number"))),
            }
        };
        let t = number("timestamp", ts)?;
        let v = number("value", val)?;
        if let Some(&(prev, _)) = series.points.last() {
            if t <= prev {
                return Err(err(
                    no,
                    format!("timestamp {t} is not after the previous one ({prev}); rows must be in increasing time order"),
                ));
            }
        }
        if series.points.len() >= MAX_POINTS {
            return Err(err(no, format!("more than {MAX_POINTS} rows")));
        }
        series.points.push((t, v));
    }
    if !header_seen {
        return Err(err(
            1,
            format!("empty file; expected the header {HEADER:?}"),
        ));
    }
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::ScratchDir;

    fn parse(text: &str) -> Result<Series, InputError> {
        parse_csv("mem.csv", text.as_bytes())
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn reads_rows_with_crlf_bom_spaces_and_blank_lines() {
        let s = parse("\u{feff}timestamp_seconds,value\r\n1700000000,100\r\n\r\n 1700000015.5 , 1.5e2 \n1700000030,-3\n").unwrap();
        assert!(s.labels.is_empty());
        assert_eq!(
            s.points,
            [
                (1_700_000_000.0, 100.0),
                (1_700_000_015.5, 150.0),
                (1_700_000_030.0, -3.0)
            ]
        );
        // Header only: an empty series.
        assert!(parse("timestamp_seconds,value\n")
            .unwrap()
            .points
            .is_empty());
    }

    #[test]
    fn wrong_header_names_file_and_line() {
        assert_eq!(
            error("time,value\n1,2\n"),
            r#"mem.csv:1: expected the header "timestamp_seconds,value", found "time,value""#
        );
        assert_eq!(
            error(""),
            r#"mem.csv:1: empty file; expected the header "timestamp_seconds,value""#
        );
    }

    #[test]
    fn bad_rows_name_the_line() {
        let e = error("timestamp_seconds,value\n1,2\n2,abc\n");
        assert_eq!(e, r#"mem.csv:3: value "abc" is not a number"#);
        let e = error("timestamp_seconds,value\nx,2\n");
        assert_eq!(e, r#"mem.csv:2: timestamp "x" is not a number"#);
        let e = error("timestamp_seconds,value\n1,NaN\n");
        assert_eq!(e, r#"mem.csv:2: value "NaN" is not a finite number"#);
        let e = error("timestamp_seconds,value\n1,2,3\n");
        assert!(e.starts_with("mem.csv:2: expected two fields"), "{e}");
        let e = error("timestamp_seconds,value\n1\n");
        assert!(e.starts_with("mem.csv:2: expected two fields"), "{e}");
    }

    #[test]
    fn out_of_order_or_repeated_timestamps_are_errors() {
        let e = error("timestamp_seconds,value\n10,1\n\n20,1\n15,1\n");
        assert_eq!(
            e,
            "mem.csv:5: timestamp 15 is not after the previous one (20); rows must be in increasing time order"
        );
        let e = error("timestamp_seconds,value\n10,1\n10,2\n");
        assert!(e.starts_with("mem.csv:3: timestamp 10 is not after"), "{e}");
    }

    #[test]
    fn files_are_read_and_missing_files_named() {
        let dir = ScratchDir::new("csv");
        let path = dir.write("rss.csv", "timestamp_seconds,value\n0,1\n5,2\n");
        assert_eq!(read_csv(&path).unwrap().points.len(), 2);
        let missing = dir.join("nope.csv");
        let e = read_csv(&missing).unwrap_err().to_string();
        assert!(e.starts_with(&missing.display().to_string()), "{e}");
    }
}
