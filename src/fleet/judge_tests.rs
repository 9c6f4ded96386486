use super::*;
use crate::stats::wire::{document, HistogramsDoc};
use crate::stats::{Series, Stats};
use crate::verdict::RawThresholds;
use serde_json::json;

fn seen(shard: u32) -> Seen {
    Seen {
        shard,
        instance: format!("10.0.0.{shard}:9477"),
        state: Some("linger".into()),
        start: Some(1000.0),
    }
}

fn hist_doc(shard: u32, ttft_ms: &[u64]) -> HistogramsDoc {
    let s = Stats::new();
    for ms in ttft_ms {
        s.record(Series::Ttft, Duration::from_millis(*ms));
        s.record(Series::Duration, Duration::from_millis(*ms * 2));
    }
    document(&s, "r", shard)
}

fn process(name: &str, rss: &str, per_request: f64) -> Value {
    json!({
        "name": name,
        "fail_on_leak": true,
        "verdict": {"rss": rss, "fds": "ok", "threads": "unknown"},
        "windows": [
            {"window": "1m", "rss": {"slope_per_hour": 1e9, "r2": 0.9}, "fds": null, "threads": null,
             "request_rate_per_sec": 10.0, "rss_bytes_per_request": per_request,
             "avg_open_streams": 2.0, "rss_bytes_per_sec_per_open_stream": 100.0,
             "rss_bytes_per_request_by_scenario": {"growth_per_request": per_request,
                 "scenarios": [{"bytes_per_request": per_request, "std_error": 10.0}]}},
            {"window": "5m", "rss": null, "fds": {"slope_per_hour": 3.0, "r2": 0.5}, "threads": null}
        ]
    })
}

fn shard(i: u32, ttft_ms: &[u64], procs: Vec<Value>) -> Shard {
    let docs = ShardDocs {
        histograms: hist_doc(i, ttft_ms),
        status: json!({"monitor": {"processes": procs}, "shards": 3,
                       "phases": [{"state": "load", "seconds": 40.0}, {"state": "linger", "seconds": 3.0}]}),
    };
    Shard::new(seen(i), docs).unwrap()
}

/// requests (ok, http_5xx) and drops (in_flight_cap, shutdown) per shard.
fn fleet(rows: &[(u64, u64, u64, u64)], shards: Vec<Shard>) -> Fleet {
    let mut req = Tally::new();
    let mut drop = Tally::new();
    for (i, (ok, err, cap, shut)) in rows.iter().enumerate() {
        let i = i as u32;
        req.insert((i, "chat".into(), "ok".into()), *ok);
        req.insert((i, "chat".into(), "http_5xx".into()), *err);
        req.insert((i, "embed".into(), "cancelled".into()), 5);
        drop.insert((i, "chat".into(), "in_flight_cap".into()), *cap);
        drop.insert((i, "chat".into(), "shutdown".into()), *shut);
    }
    Fleet {
        shards,
        counters: [
            ("soakd_requests_total", req),
            ("soakd_requests_dropped_total", drop),
        ]
        .into(),
    }
}

#[test]
fn counters_sum_over_shards_and_judge_once() {
    let procs = |i| {
        vec![
            process("soakd", if i == 1 { "leak" } else { "ok" }, 0.0),
            process("target", "leak", 3000.0),
        ]
    };
    let f = fleet(
        &[(95, 5, 0, 1), (90, 10, 2, 0), (40, 60, 0, 3)],
        (0..3).map(|i| shard(i, &[10, 20, 30], procs(i))).collect(),
    );
    assert_eq!(
        f.requests(None),
        315,
        "cancelled requests count as finished"
    );
    assert_eq!(f.requests(Some(2)), 105);
    assert_eq!(f.errors(None), 75);
    assert_eq!(
        f.dropped_saturated(None),
        2,
        "shutdown drops are not saturation"
    );
    assert_eq!(f.breakdown("soakd_requests_total", None)["cancelled"], 15);
    assert_eq!(f.shards[0].sending_seconds, Some(40.0));

    let i = f.verdict_inputs();
    assert_eq!((i.requests, i.errors, i.dropped), (315, 75, 2));
    assert_eq!(
        i.p99_ttft,
        Some(Duration::from_micros(30_015)),
        "HDR bucket of 30 ms"
    );
    // One watched process, judged once (not three times), soakd's own left out.
    assert_eq!(f.watchers()["target"], vec![0, 1, 2]);
    assert!(!f.watchers().contains_key("soakd"));
    let leak_names: Vec<String> = i
        .leaks
        .iter()
        .map(|l| format!("{}:{}:{:?}", l.process, l.resource, l.state))
        .collect();
    assert_eq!(
        leak_names,
        ["target:rss:Leak", "target:fds:Ok", "target:threads:Unknown"]
    );
    assert_eq!(
        i.leaks[1].slope_per_hour,
        Some(3.0),
        "the longest window with a fit"
    );
    assert_eq!(i.leaks[1].window.as_deref(), Some("5m"));
    assert_eq!(i.rss_growth_per_hour["target"], Some(1e9));
    // soakd's own leak in shard 1 makes the fleet suspect, naming the shard.
    let why = f.suspicions();
    assert_eq!(why.len(), 1, "{why:?}");
    assert!(
        why[0].starts_with("shard 1: soakd itself leaks rss"),
        "{why:?}"
    );

    let t = RawThresholds {
        p99_ttft: Some("25ms".into()),
        ..RawThresholds::default()
    }
    .validate()
    .unwrap();
    let results = t.evaluate(&i, true);
    let by = |n: &str| results.iter().find(|r| r.name == n).unwrap();
    let err = by("error_ratio");
    assert!(!err.passed);
    assert_eq!(
        f.contributors(err, "target").unwrap(),
        "errors by shard: shard 2 60 (80% of the fleet's, 57.1% of its own); \
         shard 1 10 (13.3% of the fleet's, 9.5% of its own); \
         shard 0 5 (6.7% of the fleet's, 4.8% of its own)"
    );
    assert_eq!(
        f.contributors(by("dropped"), "target").unwrap(),
        "drops by shard: shard 1 2 (100% of the fleet's)"
    );
    // Every shard has one of its three TTFTs (30 ms) over 25 ms.
    let p99 = by("p99_ttft");
    assert!(!p99.passed, "{p99:?}");
    assert_eq!(
        f.contributors(p99, "target").unwrap(),
        "samples over the limit by shard: shard 0 1 (33.3% of the fleet's, 33.3% of its own); \
         shard 1 1 (33.3% of the fleet's, 33.3% of its own); \
         shard 2 1 (33.3% of the fleet's, 33.3% of its own)"
    );
    assert_eq!(
        f.contributors(by("leak:target:rss"), "target").unwrap(),
        "judged once, from shard 0 (shards that watched target: 0, 1, 2)"
    );
}

/// A shard divided the process's growth by its own requests, a third of what the process
/// served: the fleet's growth per request is a third of the shard's, and its rates three
/// times the shard's.
#[test]
fn growth_per_request_is_against_the_fleets_requests() {
    let f = fleet(
        &[(100, 0, 0, 0), (100, 0, 0, 0), (100, 0, 0, 0)],
        vec![
            shard(0, &[10], vec![process("target", "ok", 3000.0)]),
            shard(1, &[10], vec![]),
            shard(2, &[10], vec![process("target", "ok", 9999.0)]),
        ],
    );
    let (from, p) = f.process_report("target").unwrap();
    assert_eq!(from, 0, "the lowest shard that watched it");
    let w = &p["windows"][0];
    let close = |v: &Value, want: f64| {
        let got = v.as_f64().unwrap();
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    };
    close(&w["rss_bytes_per_request"], 1000.0);
    close(&w["rss_bytes_per_sec_per_open_stream"], 100.0 / 3.0);
    close(&w["request_rate_per_sec"], 30.0);
    close(&w["avg_open_streams"], 6.0);
    let a = &w["rss_bytes_per_request_by_scenario"];
    close(&a["growth_per_request"], 1000.0);
    close(&a["scenarios"][0]["bytes_per_request"], 1000.0);
    assert_eq!(
        p["windows"][1]["fds"]["slope_per_hour"], 3.0,
        "slopes untouched"
    );
}
