//! Chunk planning, and the reader against a tiny `query_range` server on 127.0.0.1 (real HTTP
//! over loopback) that answers from the request's own start/end/step.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::*;

#[test]
fn chunks_cover_the_grid_without_overlap() {
    // 25,000 steps → 25,001 points → 10,000 + 10,000 + 5,001.
    let c = plan_chunks(1000.0, 1000.0 + 25_000.0 * 15.0, 15.0, 10_000).unwrap();
    assert_eq!(
        c,
        [
            (1000.0, 1000.0 + 9_999.0 * 15.0),
            (1000.0 + 10_000.0 * 15.0, 1000.0 + 19_999.0 * 15.0),
            (1000.0 + 20_000.0 * 15.0, 1000.0 + 25_000.0 * 15.0),
        ]
    );
    // Exactly 10,000 points: one request; 10,001: two, the second a single point.
    assert_eq!(plan_chunks(0.0, 9_999.0, 1.0, 10_000).unwrap().len(), 1);
    assert_eq!(
        plan_chunks(0.0, 10_000.0, 1.0, 10_000).unwrap(),
        [(0.0, 9_999.0), (10_000.0, 10_000.0)]
    );
    // An end off the grid stops at the last grid point before it.
    assert_eq!(plan_chunks(0.0, 44.0, 15.0, 10_000).unwrap(), [(0.0, 30.0)]);
    // One point.
    assert_eq!(plan_chunks(5.0, 5.0, 15.0, 10_000).unwrap(), [(5.0, 5.0)]);
    // Every chunk within Prometheus's limit.
    for (s, e) in plan_chunks(0.0, 7.0 * 86_400.0, 15.0, MAX_POINTS_PER_REQUEST).unwrap() {
        assert!((e - s) / 15.0 <= 11_000.0);
    }
}

#[test]
fn bad_ranges_are_request_errors() {
    for (s, e, step) in [
        (0.0, 10.0, 0.0),
        (0.0, 10.0, -1.0),
        (10.0, 0.0, 1.0),
        (0.0, f64::NAN, 1.0),
    ] {
        assert!(
            matches!(plan_chunks(s, e, step, 100), Err(InputError::Request(_))),
            "{s} {e} {step}"
        );
    }
    let e = plan_chunks(0.0, 1e9, 1.0, 100).unwrap_err().to_string();
    assert!(e.contains("use a larger step"), "{e}");
}

#[test]
fn urls_keep_a_path_prefix_and_encode_the_query() {
    let q = RangeQuery {
        base: Url::parse("http://127.0.0.1:9090/prom").unwrap(),
        query: r#"process_resident_memory_bytes{job="litellm"}"#.into(),
        start: 1_700_000_000.5,
        end: 1_700_003_600.0,
        step: 15.0,
    };
    let u = chunk_url(&q, q.start, q.end);
    assert_eq!(u.path(), "/prom/api/v1/query_range");
    let pairs: Vec<(String, String)> = u.query_pairs().into_owned().collect();
    assert_eq!(
        pairs,
        [
            ("query".into(), q.query.clone()),
            ("start".into(), "1700000000.5".into()),
            ("end".into(), "1700003600".into()),
            ("step".into(), "15".into()),
        ]
    );
}

#[derive(Default)]
struct Seen {
    requests: Vec<(String, f64, f64, f64)>,
}

type Shared = Arc<Mutex<Seen>>;

/// Answers like Prometheus: query "none" → no series; "bad" → HTTP 400 with an error body;
/// anything else → two series (`instance` a and b) on the requested grid, value = 2·t for a
/// and t for b, with "NaN" at t = start + step in the first request only.
async fn query_range(
    State(seen): State<Shared>,
    Query(p): Query<HashMap<String, String>>,
) -> impl IntoResponse {
    let num = |k: &str| {
        p.get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let (query, start, end, step) = (
        p.get("query").cloned().unwrap_or_default(),
        num("start"),
        num("end"),
        num("step"),
    );
    let first = {
        let mut s = seen.lock().unwrap();
        s.requests.push((query.clone(), start, end, step));
        s.requests.len() == 1
    };
    if query == "bad" {
        let body = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 4"}"#;
        return (StatusCode::BAD_REQUEST, body.to_string());
    }
    let series = if query == "none" {
        vec![]
    } else {
        vec![("a", 2.0), ("b", 1.0)]
    };
    let result: Vec<serde_json::Value> = series
        .into_iter()
        .map(|(inst, k)| {
            let n = ((end - start) / step).round() as u64;
            let values: Vec<serde_json::Value> = (0..=n)
                .map(|i| {
                    let t = start + i as f64 * step;
                    let v = if first && i == 1 {
                        "NaN".to_string()
                    } else {
                        format!("{}", k * t)
                    };
                    serde_json::json!([t, v])
                })
                .collect();
            serde_json::json!({"metric": {"__name__": "rss", "instance": inst}, "values": values})
        })
        .collect();
    let body = serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": result}});
    (StatusCode::OK, body.to_string())
}

async fn server() -> (Url, Shared, tokio::task::JoinHandle<()>) {
    let seen: Shared = Arc::default();
    let app = Router::new()
        .route("/prom/api/v1/query_range", get(query_range))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (
        Url::parse(&format!("http://{addr}/prom/")).unwrap(),
        seen,
        task,
    )
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn fetch(q: &RangeQuery) -> Result<Vec<Series>, InputError> {
    tokio::time::timeout(Duration::from_secs(20), fetch_range(&client(), q))
        .await
        .expect("fetch finishes")
}

#[tokio::test]
async fn long_ranges_are_fetched_in_chunks_and_merged() {
    let (base, seen, task) = server().await;
    let start = 1_700_000_000.0;
    let q = RangeQuery {
        base,
        query: "rss".into(),
        start,
        end: start + 25_000.0 * 15.0,
        step: 15.0,
    };
    let series = fetch(&q).await.unwrap();
    let reqs = seen.lock().unwrap().requests.clone();
    let planned = plan_chunks(q.start, q.end, q.step, MAX_POINTS_PER_REQUEST).unwrap();
    assert_eq!(reqs.len(), 3);
    for ((query, s, e, step), (ps, pe)) in reqs.iter().zip(&planned) {
        assert_eq!((query.as_str(), *s, *e, *step), ("rss", *ps, *pe, 15.0));
    }
    assert_eq!(series.len(), 2);
    let a = &series[0];
    assert_eq!(a.labels.get("instance").map(String::as_str), Some("a"));
    assert_eq!(a.labels.get("__name__").map(String::as_str), Some("rss"));
    // 25,001 points minus the NaN one, in order, values from the right series.
    assert_eq!(a.points.len(), 25_000);
    assert!(a.points.windows(2).all(|w| w[1].0 - w[0].0 >= 15.0 - 1e-6));
    assert_eq!(a.points[0], (start, 2.0 * start));
    assert_eq!(a.points[1].0, start + 30.0, "the NaN sample is skipped");
    assert_eq!(*a.points.last().unwrap(), (q.end, 2.0 * q.end));
    assert_eq!(series[1].points[5].1, series[1].points[5].0);
    task.abort();
}

#[tokio::test]
async fn no_series_errors_and_prometheus_errors_are_reported() {
    let (base, _seen, task) = server().await;
    let q = |query: &str| RangeQuery {
        base: base.clone(),
        query: query.into(),
        start: 0.0,
        end: 600.0,
        step: 15.0,
    };
    let e = fetch(&q("none")).await.unwrap_err();
    assert!(matches!(e, InputError::NoSeries { .. }), "{e:?}");
    assert!(
        e.to_string().contains(r#"query "none" returned no series"#),
        "{e}"
    );
    let e = fetch(&q("bad")).await.unwrap_err().to_string();
    assert!(
        e.contains(base.as_str())
            && e.contains("HTTP 400")
            && e.contains("bad_data: parse error at char 4"),
        "{e}"
    );
    // Not Prometheus at all (404 from the router).
    let mut other = q("rss");
    other.base = base.join("/elsewhere/").unwrap();
    let e = fetch(&other).await.unwrap_err().to_string();
    assert!(e.contains("HTTP 404"), "{e}");
    task.abort();
}

#[tokio::test]
async fn unreachable_prometheus_is_named() {
    // A port that was just free: connection refused.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let q = RangeQuery {
        base: Url::parse(&format!("http://{addr}")).unwrap(),
        query: "up".into(),
        start: 0.0,
        end: 60.0,
        step: 15.0,
    };
    let e = fetch(&q).await.unwrap_err().to_string();
    assert!(
        e.contains(&addr.to_string()) && e.contains("cannot connect"),
        "{e}"
    );
}
