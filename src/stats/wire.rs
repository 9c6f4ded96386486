//! A run's HDR histograms as a document another process can merge exactly: what a shard serves
//! at `GET /histograms` and what `soakd verdict` reads from every shard.
//!
//! # Format
//! One JSON object ([`HistogramsDoc`]): the run id and shard it belongs to, the unit
//! (`microseconds`), and per series (`duration`, `ttft`, `chunk_gap`, `schedule_lag`) the
//! whole run's histogram in HdrHistogram's V2 format, deflate-compressed and base64-encoded
//! (the interchange format of HdrHistogram's own log tools, `HISTFAAA…`). The histograms hold
//! 3 significant digits from 1 µs to 1 h ([`crate::stats`]).
//!
//! # Why the merge is exact
//! Every shard records into histograms of the same bounds and precision, so adding the shards'
//! bucket counts ([`merge`]) gives the very histogram one process would have recorded had it
//! seen every request: a percentile of the sum is the percentile over all requests together,
//! within the histogram's own resolution ([`RELATIVE_ERROR`]), whatever the number of shards.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::{Series, Stats, MAX_MICROS, SIGNIFICANT_DIGITS};

/// The largest relative difference between a percentile read from the histograms and the
/// exact value of the recorded sample at that rank: 3 significant digits give sub-buckets of
/// 1/1024 of their power-of-two range, so a value is reported within 0.098 % above it (or
/// 1 µs, the unit, for values under a millisecond).
pub const RELATIVE_ERROR: f64 = 1.0 / 1024.0;

/// The series names of the document, in [`Series`] order.
pub const SERIES_NAMES: [(&str, Series); 4] = [
    ("duration", Series::Duration),
    ("ttft", Series::Ttft),
    ("chunk_gap", Series::ChunkGap),
    ("schedule_lag", Series::ScheduleLag),
];

/// What `GET /histograms` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramsDoc {
    /// The run id (`soakd_run_info{run_id}`).
    pub run_id: String,
    /// The shard index.
    pub shard: u32,
    /// Always `microseconds`.
    pub unit: String,
    /// Always `hdrhistogram-v2-deflate-base64`.
    pub encoding: String,
    /// `duration`, `ttft`, `chunk_gap`, `schedule_lag`: each series' whole-run histogram.
    pub series: std::collections::BTreeMap<String, String>,
}

/// A document that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Not base64, not V2, or a histogram of other bounds.
    #[error("histogram {series:?}: {reason}")]
    Histogram {
        /// The series name.
        series: String,
        /// What is wrong.
        reason: String,
    },
    /// The unit or encoding is not this version's.
    #[error("unsupported histograms document: {0}")]
    Unsupported(String),
}

const UNIT: &str = "microseconds";
const ENCODING: &str = "hdrhistogram-v2-deflate-base64";

/// The document of `stats`, for run `run_id` shard `shard`.
pub fn document(stats: &Stats, run_id: &str, shard: u32) -> HistogramsDoc {
    let series = SERIES_NAMES
        .iter()
        .map(|(name, s)| ((*name).to_owned(), encode(&stats.histogram(*s))))
        .collect();
    HistogramsDoc {
        run_id: run_id.to_owned(),
        shard,
        unit: UNIT.to_owned(),
        encoding: ENCODING.to_owned(),
        series,
    }
}

/// One histogram as V2 + deflate + base64.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut buf = Vec::with_capacity(4096);
    // Serialising into a Vec fails only for histograms the V2 format cannot hold (counts past
    // i64), which a run never records.
    if V2DeflateSerializer::new().serialize(h, &mut buf).is_err() {
        buf.clear();
    }
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// The histogram of an [`encode`]d string, checked to have this build's bounds and precision
/// (so adding it to another is exact).
pub fn decode(series: &str, text: &str) -> Result<Histogram<u64>, WireError> {
    let bad = |reason: String| WireError::Histogram {
        series: series.to_owned(),
        reason,
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| bad(format!("not base64: {e}")))?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| bad(format!("not an HdrHistogram V2 encoding: {e:?}")))?;
    if h.sigfig() != SIGNIFICANT_DIGITS || h.high() < MAX_MICROS || h.low() != 1 {
        return Err(bad(format!(
            "bounds {}..{} µs with {} digits, expected 1..{MAX_MICROS} with {SIGNIFICANT_DIGITS}",
            h.low(),
            h.high(),
            h.sigfig()
        )));
    }
    Ok(h)
}

impl HistogramsDoc {
    /// The histogram of series `name` (`duration`, `ttft`, `chunk_gap`, `schedule_lag`).
    pub fn histogram(&self, name: &str) -> Result<Histogram<u64>, WireError> {
        if self.unit != UNIT || self.encoding != ENCODING {
            return Err(WireError::Unsupported(format!(
                "unit {:?}, encoding {:?} (this soakd reads {UNIT:?}, {ENCODING:?})",
                self.unit, self.encoding
            )));
        }
        let text = self.series.get(name).ok_or_else(|| WireError::Histogram {
            series: name.to_owned(),
            reason: "missing".into(),
        })?;
        decode(name, text)
    }
}

/// The sum of histograms of this build's bounds: the histogram of all their values together.
pub fn merge<'a>(parts: impl IntoIterator<Item = &'a Histogram<u64>>) -> Histogram<u64> {
    let mut all = super::empty();
    for h in parts {
        // Same bounds and precision (checked by `decode`), so adding cannot fail.
        let _ = all.add(h);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Percentiles;
    use std::time::Duration;

    fn stats_with(values_ms: impl Iterator<Item = u64>) -> Stats {
        let s = Stats::new();
        for v in values_ms {
            s.record(Series::Ttft, Duration::from_micros(v));
        }
        s
    }

    #[test]
    fn a_document_round_trips_every_series_exactly() {
        let s = stats_with((1..=5000).map(|i| i * 37));
        s.record(Series::Duration, Duration::from_secs(3));
        let doc = document(&s, "run-a", 2);
        assert_eq!((doc.run_id.as_str(), doc.shard), ("run-a", 2));
        let json = serde_json::to_string(&doc).unwrap();
        let back: HistogramsDoc = serde_json::from_str(&json).unwrap();
        assert!(back.series["ttft"].starts_with("HISTF"), "{json}");
        for (name, series) in SERIES_NAMES {
            let h = back.histogram(name).unwrap();
            assert_eq!(h, s.histogram(series), "{name}");
        }
    }

    /// Three shards' histograms added give exactly the histogram of all their values recorded
    /// in one, so every percentile is the one over all values together.
    #[test]
    fn merged_shards_equal_one_histogram_of_everything() {
        // Three different distributions: the merged p99 is no shard's p99.
        let shards: Vec<Vec<u64>> = vec![
            (0..3000).map(|i| 2_000 + (i * 7919) % 40_000).collect(),
            (0..2000)
                .map(|i| 10_000 + (i * 104_729) % 400_000)
                .collect(),
            (0..1000).map(|i| 1_000 + (i * 31) % 5_000).collect(),
        ];
        let docs: Vec<HistogramsDoc> = shards
            .iter()
            .enumerate()
            .map(|(i, v)| document(&stats_with(v.iter().copied()), "r", i as u32))
            .collect();
        let parts: Vec<Histogram<u64>> =
            docs.iter().map(|d| d.histogram("ttft").unwrap()).collect();
        let merged = merge(&parts);
        let all = stats_with(shards.iter().flatten().copied());
        assert_eq!(merged, all.histogram(Series::Ttft));
        let p = Percentiles::of_micros(&merged);
        assert_eq!(p.count, 6000);
        // Against the exact p99 of the sorted values: within the stated resolution.
        let mut sorted: Vec<u64> = shards.iter().flatten().copied().collect();
        sorted.sort_unstable();
        let exact = sorted[(0.99 * 6000.0_f64).ceil() as usize - 1] as f64 / 1e6;
        assert!(
            (p.p99 - exact).abs() <= exact * RELATIVE_ERROR + 1e-6,
            "merged p99 {} exact {exact}",
            p.p99
        );
        let shard_p99: Vec<f64> = parts
            .iter()
            .map(|h| Percentiles::of_micros(h).p99)
            .collect();
        assert!(
            shard_p99.iter().all(|s| (s - p.p99).abs() > 1e-3),
            "{shard_p99:?}"
        );
    }

    #[test]
    fn other_bounds_and_garbage_are_refused() {
        let mut other = Histogram::<u64>::new_with_bounds(1, 1000, 2).unwrap();
        other.record(5).unwrap();
        let err = decode("ttft", &encode(&other)).unwrap_err().to_string();
        assert!(err.contains("bounds 1..1000 µs with 2 digits"), "{err}");
        let err = decode("ttft", "not base64 !").unwrap_err().to_string();
        assert!(err.contains("not base64"), "{err}");
        let err = decode("ttft", "aGVsbG8=").unwrap_err().to_string();
        assert!(err.contains("not an HdrHistogram"), "{err}");
        let mut doc = document(&Stats::new(), "r", 0);
        doc.encoding = "json".into();
        assert!(doc.histogram("ttft").is_err());
    }
}
