//! The Prometheus input of `soakd analyze --prometheus URL --query Q --range 6h [--step 15s]`.
//!
//! Prometheus refuses a `query_range` whose `(end − start) / step` exceeds 11,000, so a long
//! range is cut into chunks of at most [`MAX_POINTS_PER_REQUEST`] evaluation points each,
//! fetched in time order: chunk `j` covers the points `start + i·step` for
//! `i ∈ [j·M, (j+1)·M − 1]` (M = 10,000), so chunks never overlap and stay on one step grid.
//! Series are matched across chunks by their full label set and keep their labels; they are
//! returned in the order first seen. `NaN` and infinite samples (stale markers, division by
//! zero) are skipped. A response body is read up to [`MAX_BODY_BYTES`].
//!
//! Errors name the server: unreachable, a non-2xx answer (with Prometheus's own `error`
//! text), a body that is not a `matrix` result, no series at all, or more than
//! [`MAX_SERIES`] series / [`MAX_POINTS`] points.
//!
//! [`query_instant`] is the instant query (`api/v1/query`) of `soakd verdict`, through the same
//! request, size limit and error reporting; an empty answer is not an error there.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use url::Url;

use super::{InputError, Series, MAX_POINTS, MAX_SERIES};

/// Evaluation points per series per request (Prometheus's limit is 11,000).
pub const MAX_POINTS_PER_REQUEST: u64 = 10_000;

/// Largest response body read, bytes.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// A range query.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeQuery {
    /// The server's base URL, e.g. `http://127.0.0.1:9090` (a path prefix is kept).
    pub base: Url,
    /// PromQL.
    pub query: String,
    /// First evaluation time, Unix seconds.
    pub start: f64,
    /// Last evaluation time, Unix seconds.
    pub end: f64,
    /// Resolution, seconds.
    pub step: f64,
}

/// The `(start, end)` of each request for points `start + i·step` up to `end` (module rules).
pub fn plan_chunks(
    start: f64,
    end: f64,
    step: f64,
    max_points: u64,
) -> Result<Vec<(f64, f64)>, InputError> {
    if !(step.is_finite() && step > 0.0) {
        return Err(InputError::Request(format!(
            "step must be a positive number of seconds, got {step}"
        )));
    }
    if !(start.is_finite() && end.is_finite() && end >= start) {
        return Err(InputError::Request(format!(
            "range must end after it starts: {start} … {end}"
        )));
    }
    let last = ((end - start) / step + 1e-9).floor() as u64; // index of the last point
    if last + 1 > MAX_POINTS as u64 {
        return Err(InputError::Request(format!(
            "range / step = {} points per series, more than {MAX_POINTS}; use a larger step",
            last + 1
        )));
    }
    let m = max_points.max(1);
    let mut chunks = Vec::with_capacity((last / m + 1) as usize);
    let mut i = 0;
    while i <= last {
        let j = (i + m - 1).min(last);
        chunks.push((start + i as f64 * step, start + j as f64 * step));
        i = j + 1;
    }
    Ok(chunks)
}

/// The `query_range` URL for one chunk.
pub fn chunk_url(q: &RangeQuery, start: f64, end: f64) -> Url {
    let mut url = q.base.clone();
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    let mut url = url.join("api/v1/query_range").unwrap_or(url);
    url.query_pairs_mut()
        .clear()
        .append_pair("query", &q.query)
        .append_pair("start", &fmt_secs(start))
        .append_pair("end", &fmt_secs(end))
        .append_pair("step", &fmt_secs(q.step));
    url
}

/// Seconds with up to millisecond precision, no exponent.
fn fmt_secs(s: f64) -> String {
    let t = format!("{s:.3}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[derive(Deserialize)]
struct Response {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<MatrixSeries>,
}

#[derive(Deserialize)]
struct MatrixSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// One sample of an instant query's `vector` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels (`__name__` when the query keeps it).
    pub labels: BTreeMap<String, String>,
    /// The value; never NaN or infinite (such samples are left out).
    pub value: f64,
}

/// The `query` URL of an instant query at `time` (Unix seconds).
pub fn instant_url(base: &Url, query: &str, time: f64) -> Url {
    let mut url = base.clone();
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    let mut url = url.join("api/v1/query").unwrap_or(url);
    url.query_pairs_mut()
        .clear()
        .append_pair("query", query)
        .append_pair("time", &fmt_secs(time));
    url
}

#[derive(Deserialize)]
struct InstantResponse {
    status: String,
    #[serde(default)]
    data: Option<InstantData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct InstantData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<VectorSample>,
}

#[derive(Deserialize)]
struct VectorSample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

/// Runs an instant query at `time`: the finite samples of its `vector` answer (possibly none),
/// at most [`MAX_SERIES`].
pub async fn query_instant(
    client: &reqwest::Client,
    base: &Url,
    query: &str,
    time: f64,
) -> Result<Vec<Sample>, InputError> {
    let fail = |reason: String| InputError::Prometheus {
        url: base.to_string(),
        reason,
    };
    let body = get(client, instant_url(base, query, time))
        .await
        .map_err(&fail)?;
    let r: InstantResponse =
        serde_json::from_slice(&body).map_err(|e| fail(format!("not a query answer: {e}")))?;
    if r.status != "success" {
        return Err(fail(format!(
            "query {query:?} failed: {}: {}",
            r.error_type.unwrap_or_default(),
            r.error.unwrap_or_default()
        )));
    }
    let data = r.data.ok_or_else(|| fail("answer has no data".into()))?;
    if data.result_type != "vector" {
        return Err(fail(format!(
            "expected a vector result, got {:?}",
            data.result_type
        )));
    }
    let samples = data.result;
    if samples.len() > MAX_SERIES {
        return Err(fail(format!(
            "more than {MAX_SERIES} series; narrow the query"
        )));
    }
    Ok(samples
        .into_iter()
        .filter_map(|s| {
            let v = s.value.1.trim().parse::<f64>().ok()?;
            v.is_finite().then_some(Sample {
                labels: s.metric,
                value: v,
            })
        })
        .collect())
}

/// Fetches `q` in chunks and merges the series (module rules).
pub async fn fetch_range(
    client: &reqwest::Client,
    q: &RangeQuery,
) -> Result<Vec<Series>, InputError> {
    let base = q.base.to_string();
    let fail = |reason: String| InputError::Prometheus {
        url: base.clone(),
        reason,
    };
    let mut out: Vec<Series> = Vec::new();
    let mut index: HashMap<BTreeMap<String, String>, usize> = HashMap::new();
    let mut total = 0usize;
    for (start, end) in plan_chunks(q.start, q.end, q.step, MAX_POINTS_PER_REQUEST)? {
        let url = chunk_url(q, start, end);
        let body = get(client, url).await.map_err(&fail)?;
        for s in parse_matrix(&body).map_err(&fail)? {
            let i = match index.get(&s.metric) {
                Some(&i) => i,
                None => {
                    if out.len() >= MAX_SERIES {
                        return Err(fail(format!(
                            "more than {MAX_SERIES} series; narrow the query"
                        )));
                    }
                    index.insert(s.metric.clone(), out.len());
                    out.push(Series {
                        labels: s.metric,
                        points: Vec::new(),
                    });
                    out.len() - 1
                }
            };
            let pts = &mut out[i].points;
            for (t, v) in s.values {
                let Ok(v) = v.trim().parse::<f64>() else {
                    return Err(fail(format!("sample value {v:?} is not a number")));
                };
                if !v.is_finite() || !t.is_finite() || pts.last().is_some_and(|&(p, _)| t <= p) {
                    continue;
                }
                total += 1;
                if total > MAX_POINTS {
                    return Err(fail(format!(
                        "more than {MAX_POINTS} points; use a larger step or a shorter range"
                    )));
                }
                pts.push((t, v));
            }
        }
    }
    out.retain(|s| !s.points.is_empty());
    if out.is_empty() {
        return Err(InputError::NoSeries {
            url: base,
            query: q.query.clone(),
        });
    }
    Ok(out)
}

async fn get(client: &reqwest::Client, url: Url) -> Result<Vec<u8>, String> {
    let mut resp = client.get(url).send().await.map_err(|e| {
        let kind = if e.is_connect() {
            "cannot connect"
        } else if e.is_timeout() {
            "timed out"
        } else {
            "request failed"
        };
        format!("{kind}: {}", chain(e))
    })?;
    let status = resp.status();
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("reading the answer: {}", chain(e)))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(format!(
                "answer larger than {} MiB; use a larger step",
                MAX_BODY_BYTES >> 20
            ));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        let detail = serde_json::from_slice::<Response>(&body)
            .ok()
            .and_then(|r| {
                r.error
                    .map(|e| format!(": {}: {e}", r.error_type.unwrap_or_default()))
            })
            .unwrap_or_default();
        return Err(format!("HTTP {status}{detail}"));
    }
    Ok(body)
}

/// A reqwest error without its URL (the caller names the server), with its causes:
/// "error sending request: client error (Connect): tcp connect error: Connection refused".
fn chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.ends_with(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    text
}

/// The series of a `query_range` answer body.
fn parse_matrix(body: &[u8]) -> Result<Vec<MatrixSeries>, String> {
    let r: Response =
        serde_json::from_slice(body).map_err(|e| format!("not a query_range answer: {e}"))?;
    if r.status != "success" {
        return Err(format!(
            "query failed: {}: {}",
            r.error_type.unwrap_or_default(),
            r.error.unwrap_or_default()
        ));
    }
    let data = r.data.ok_or("answer has no data")?;
    if data.result_type != "matrix" {
        return Err(format!(
            "expected a matrix result, got {:?}",
            data.result_type
        ));
    }
    Ok(data.result)
}

#[cfg(test)]
#[path = "prometheus_tests.rs"]
mod tests;
