//! Lint of the Grafana dashboards in `grafana/dashboards/` and their provisioning files.
//!
//! Every dashboard parses, has a stable unique uid and schemaVersion ≥ 41, a `datasource`
//! variable used by every panel, target and annotation, `job`/`instance` (and, where used,
//! `scenario`/`process`) query variables that every selector applies, `$__rate_interval` in
//! every `rate`/`irate`/`increase`, and a unit on every data panel. Every `soakd_*` metric a
//! dashboard names is in [`soakd::metrics::CATALOG`] and is really exported by
//! [`soakd::metrics::Metrics::encode`], so a renamed metric breaks this test, not a dashboard.
//!
//! The dashboards are generated with Grafana's own SDK (`grafana/generate_dashboards.py`, which
//! pins `grafana-foundation-sdk` for Grafana 11.6, schemaVersion 41): the committed JSON is what
//! the generator makes, and it reads into the SDK's types and back without loss. Needs
//! `python3` with the SDK (`scripts/test.sh` installs it; a missing SDK fails the test with
//! the pip command).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use soakd::metrics::{Kind, Metrics, CATALOG};

const UIDS: [&str; 4] = [
    "soakd-leak",
    "soakd-overview",
    "soakd-proxy",
    "soakd-streaming",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// (file name, parsed JSON) of every dashboard, sorted by file name.
fn dashboards() -> Vec<(String, Value)> {
    let dir = root().join("grafana/dashboards");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let v: Value = serde_json::from_str(&read(&p))
                .unwrap_or_else(|e| panic!("{name} is not valid JSON: {e}"));
            (name, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(out.len(), UIDS.len(), "expected {} dashboards", UIDS.len());
    out
}

/// Every panel, including those nested in collapsed rows.
fn panels(d: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            if let Some(inner) = p.get("panels") {
                walk(inner, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&d["panels"], &mut out);
    out
}

fn is_data_panel(p: &Value) -> bool {
    !matches!(p["type"].as_str(), Some("row" | "text"))
}

fn variables(d: &Value) -> Vec<&Value> {
    d["templating"]["list"]
        .as_array()
        .map(|l| l.iter().collect())
        .unwrap_or_default()
}

fn variable<'a>(d: &'a Value, name: &str) -> Option<&'a Value> {
    variables(d).into_iter().find(|v| v["name"] == name)
}

fn datasource_ref() -> Value {
    serde_json::json!({"type": "prometheus", "uid": "${datasource}"})
}

/// Every PromQL expression of a dashboard: targets, annotation queries, variable queries.
fn exprs(d: &Value) -> Vec<String> {
    let mut out: Vec<String> = panels(d)
        .into_iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    for a in d["annotations"]["list"].as_array().into_iter().flatten() {
        if let Some(e) = a["expr"].as_str() {
            out.push(e.to_string());
        }
    }
    for v in variables(d) {
        if let Some(q) = v["query"]["query"].as_str() {
            out.push(q.to_string());
        }
    }
    out
}

fn strip_histogram_suffix(name: &str) -> &str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if CATALOG
                .iter()
                .any(|d| d.name == base && d.kind == Kind::Histogram)
            {
                return base;
            }
        }
    }
    name
}

/// Each metric selector in `expr`: (exported series name, base metric name, the `{...}`
/// matcher text right after it or "" when there is none). Only plain metric names (not
/// recording rules with `:`), starting with `soakd_` or `process_`.
fn selectors(expr: &str) -> Vec<(String, String, String)> {
    let bytes = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let starts_ident = (c.is_ascii_alphabetic() || c == b'_')
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
        if !starts_ident {
            i += 1;
            continue;
        }
        let end = expr[i..]
            .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == ':'))
            .map_or(expr.len(), |e| i + e);
        let word = &expr[i..end];
        // skip label names inside {...}, function names, and keywords
        let inside_braces = expr[..i].matches('{').count() > expr[..i].matches('}').count();
        let is_call = expr[end..].trim_start().starts_with('(');
        if !inside_braces
            && !is_call
            && !word.contains(':')
            && (word.starts_with("soakd_") || word.starts_with("process_"))
        {
            let matchers = if expr[end..].starts_with('{') {
                let close = expr[end..].find('}').expect("closing brace") + end;
                expr[end..=close].to_string()
            } else {
                String::new()
            };
            out.push((
                word.to_string(),
                strip_histogram_suffix(word).to_string(),
                matchers,
            ));
        }
        i = end;
    }
    out
}

/// Checks that every `rate(`, `irate(` and `increase(` call's range is `$__rate_interval`.
fn rate_calls_use_rate_interval(expr: &str) -> Result<(), String> {
    for func in ["rate(", "increase("] {
        let mut from = 0;
        while let Some(pos) = expr[from..].find(func) {
            let open = from + pos + func.len() - 1;
            // find the matching parenthesis
            let mut depth = 0;
            let mut close = None;
            for (k, ch) in expr[open..].char_indices() {
                match ch {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            close = Some(open + k);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let close = close.ok_or_else(|| format!("unbalanced {func} in {expr}"))?;
            let arg = &expr[open + 1..close];
            if !arg.trim_end().ends_with("[$__rate_interval]") {
                return Err(format!("{func}...) without [$__rate_interval]: {expr}"));
            }
            from = close;
        }
    }
    Ok(())
}

/// The text exposition of a registry with every label set touched once.
fn exported_families() -> BTreeSet<String> {
    let m = Metrics::new("r", "0").expect("registry");
    let _scenario = soakd::client::ScenarioMetrics::new(
        &m,
        "s",
        std::sync::Arc::new(soakd::stats::Stats::new()),
    );
    let _dropped = soakd::engine::DropCounters::new(&m, "s");
    let _process = soakd::monitor::ProcessMetrics::new(&m, "p");
    let _phases = soakd::phases::RunPhases::new(&m);
    let storm = soakd::upstream::storm::RawStorm {
        name: Some("st".into()),
        start: std::time::Duration::from_secs(1),
        duration: std::time::Duration::from_secs(1),
        every: None,
        kind: "stall".into(),
        status: None,
        retry_after: None,
        delay: None,
        after_chunks: None,
        rate: 1.0,
        scenarios: None,
        apis: None,
    }
    .validate(0)
    .expect("a valid storm");
    let shape = soakd::upstream::storm::ScenarioShape {
        name: "s".into(),
        api: "openai",
        stream: true,
    };
    let _two_sided = soakd::upstream::Tracker::new(
        &m,
        &["s".to_string()],
        16,
        std::time::Duration::from_secs(60),
        std::time::Duration::from_secs(5),
    )
    .with_storms(
        &m,
        &[shape],
        vec![storm],
        std::time::Duration::from_secs(30),
    );
    // Published once a storm has ended.
    m.proxy_recovery_seconds.with_label_values(&["st"]).set(0.0);
    for g in [
        &m.process_resident_memory_bytes,
        &m.process_open_fds,
        &m.process_threads,
        &m.process_rss_idle,
        &m.process_rss_plateau_seconds,
        &m.process_rss_plateau_bytes,
        &m.process_rss_recovered,
    ] {
        g.with_label_values(&["p"]).set(1.0);
    }
    m.process_rss_growth
        .with_label_values(&["p", "5m"])
        .set(1.0);
    m.process_fd_growth.with_label_values(&["p", "5m"]).set(0.0);
    m.process_thread_growth
        .with_label_values(&["p", "5m"])
        .set(0.0);
    m.process_growth_fit_r2
        .with_label_values(&["p", "rss", "5m"])
        .set(0.9);
    m.process_growth_lower_bound
        .with_label_values(&["p", "rss", "5m"])
        .set(0.5);
    m.process_rss_growth_per_request
        .with_label_values(&["p", "5m"])
        .set(1.0);
    m.process_rss_growth_per_request_by_scenario
        .with_label_values(&["p", "s", "5m"])
        .set(1.0);
    m.threshold_passing.with_label_values(&["t"]).set(1);
    m.creep_ratio.with_label_values(&["s", "ttft"]).set(1.0);
    m.encode()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn dashboards_parse_with_stable_unique_uids() {
    let mut uids = BTreeSet::new();
    for (name, d) in dashboards() {
        let uid = d["uid"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no uid"));
        assert_eq!(name, format!("{uid}.json"), "file name follows the uid");
        assert!(uids.insert(uid.to_string()), "duplicate uid {uid}");
        let schema = d["schemaVersion"].as_u64().unwrap_or(0);
        assert!(schema >= 41, "{name}: schemaVersion {schema}");
        assert!(
            d["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{name}: title"
        );
        assert!(
            panels(&d).iter().any(|p| is_data_panel(p)),
            "{name}: no panels"
        );
        // panel ids are unique within a dashboard
        let mut ids = BTreeSet::new();
        for p in panels(&d) {
            let id = p["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("{name}: panel without id"));
            assert!(ids.insert(id), "{name}: duplicate panel id {id}");
        }
    }
    let want: BTreeSet<String> = UIDS.iter().map(|s| s.to_string()).collect();
    assert_eq!(uids, want);
}

#[test]
fn datasource_variable_is_used_everywhere() {
    let ds = datasource_ref();
    for (name, d) in dashboards() {
        let var = variable(&d, "datasource").unwrap_or_else(|| panic!("{name}: no datasource var"));
        assert_eq!(var["type"], "datasource", "{name}");
        assert_eq!(var["query"], "prometheus", "{name}");
        for p in panels(&d).into_iter().filter(|p| is_data_panel(p)) {
            let title = p["title"].as_str().unwrap_or("?");
            assert_eq!(p["datasource"], ds, "{name}/{title}: panel datasource");
            let targets = p["targets"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}/{title}: no targets"));
            assert!(!targets.is_empty(), "{name}/{title}: no targets");
            for t in targets {
                assert_eq!(t["datasource"], ds, "{name}/{title}: target datasource");
                assert!(
                    t["expr"].as_str().is_some_and(|e| !e.is_empty()),
                    "{name}/{title}: expr"
                );
            }
        }
        for a in d["annotations"]["list"].as_array().into_iter().flatten() {
            if a.get("expr").is_some() {
                assert_eq!(a["datasource"], ds, "{name}: annotation {}", a["name"]);
            }
        }
        for v in variables(&d).into_iter().filter(|v| v["type"] == "query") {
            assert_eq!(v["datasource"], ds, "{name}: variable {}", v["name"]);
        }
    }
}

#[test]
fn label_variables_exist_and_every_selector_applies_them() {
    for (name, d) in dashboards() {
        for var in ["job", "instance"] {
            assert!(variable(&d, var).is_some(), "{name}: no {var} variable");
        }
        let all = exprs(&d).join("\n");
        for var in ["job", "instance", "scenario", "process"] {
            let declared = variable(&d, var);
            let used = all.contains(&format!("${var}"));
            assert_eq!(
                declared.is_some(),
                used,
                "{name}: variable {var} declared={} used={used}",
                declared.is_some()
            );
            if let Some(v) = declared {
                assert_eq!(v["type"], "query", "{name}: {var}");
                assert_eq!(v["multi"], true, "{name}: {var} multi");
                assert_eq!(v["includeAll"], true, "{name}: {var} includeAll");
                let q = v["query"]["query"].as_str().unwrap_or("");
                assert!(
                    q.starts_with("label_values(") && q.trim_end().ends_with(&format!(", {var})")),
                    "{name}: {var} query {q}"
                );
            }
        }
        let has_scenario = variable(&d, "scenario").is_some();
        let has_process = variable(&d, "process").is_some();
        for expr in exprs(&d) {
            for (series, base, matchers) in selectors(&expr) {
                if series == "soakd_build_info" && !matchers.contains("$instance") {
                    continue; // the job/instance variable queries themselves
                }
                assert!(
                    matchers.contains("job=~\"$job\"")
                        && matchers.contains("instance=~\"$instance\""),
                    "{name}: {series} without job/instance matchers in {expr}"
                );
                let Some(def) = CATALOG.iter().find(|d| d.name == base) else {
                    continue;
                };
                if expr.starts_with("label_values(") {
                    continue; // a variable's own query cannot filter by itself
                }
                if has_scenario && def.labels.contains(&"scenario") {
                    assert!(
                        matchers.contains("scenario=~\"$scenario\""),
                        "{name}: {series} without the scenario matcher in {expr}"
                    );
                }
                if has_process && def.labels.contains(&"process") {
                    assert!(
                        matchers.contains("process=~\"$process\"")
                            || matchers.contains("process=\""),
                        "{name}: {series} without a process matcher in {expr}"
                    );
                }
            }
        }
    }
}

#[test]
fn rates_use_rate_interval_and_panels_have_units() {
    for (name, d) in dashboards() {
        for expr in exprs(&d) {
            rate_calls_use_rate_interval(&expr).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        for p in panels(&d).into_iter().filter(|p| is_data_panel(p)) {
            let title = p["title"].as_str().unwrap_or("?");
            let unit = p["fieldConfig"]["defaults"]["unit"].as_str().unwrap_or("");
            assert!(!unit.is_empty(), "{name}/{title}: no unit");
            if p["type"] == "heatmap" {
                for t in p["targets"].as_array().into_iter().flatten() {
                    assert_eq!(t["format"], "heatmap", "{name}/{title}: heatmap format");
                    let e = t["expr"].as_str().unwrap_or("");
                    assert!(
                        e.starts_with("sum by (le) (rate(") && e.contains("_bucket{"),
                        "{name}/{title}: heatmap query {e}"
                    );
                }
            }
        }
    }
}

#[test]
fn dashboards_name_only_exported_catalog_metrics() {
    let exported = exported_families();
    let mut used = BTreeSet::new();
    for (name, d) in dashboards() {
        for expr in exprs(&d) {
            for (series, base, _) in selectors(&expr) {
                if series.starts_with("soakd_") {
                    assert!(
                        CATALOG.iter().any(|d| d.name == base),
                        "{name}: {series} is not in soakd::metrics::CATALOG"
                    );
                }
                assert!(
                    exported.contains(&base),
                    "{name}: {series} is not exported by Metrics::encode()"
                );
                used.insert(base);
            }
        }
    }
    // The dashboards together show every metric of the contract except the info metrics.
    for d in CATALOG {
        if d.name == "soakd_run_info" {
            continue;
        }
        assert!(used.contains(d.name), "no dashboard shows {}", d.name);
    }
}

#[test]
fn overview_marks_bursts_and_has_heatmaps() {
    let (_, d) = dashboards()
        .into_iter()
        .find(|(_, d)| d["uid"] == "soakd-overview")
        .expect("overview");
    let burst = d["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| {
            a["expr"]
                .as_str()
                .is_some_and(|e| e.contains("soakd_burst_active"))
        })
        .expect("burst annotation");
    assert!(burst["expr"].as_str().unwrap_or("").ends_with("== 1"));
    let heatmaps = panels(&d).iter().filter(|p| p["type"] == "heatmap").count();
    assert!(heatmaps >= 2, "overview needs latency and TTFT heatmaps");
}

#[test]
fn provisioning_points_at_the_dashboards_and_datasource() {
    let ds = read(&root().join("grafana/provisioning/datasources/prometheus.yml"));
    assert!(ds.contains("uid: prometheus"), "datasource uid");
    assert!(ds.contains("type: prometheus"), "datasource type");
    assert!(ds.contains("url: http://127.0.0.1:9090"), "datasource url");
    let dash = read(&root().join("grafana/provisioning/dashboards/soakd.yml"));
    assert!(dash.contains("type: file"), "file provider");
    let path = dash
        .lines()
        .find_map(|l| l.trim().strip_prefix("path:"))
        .expect("provider path")
        .trim();
    assert!(path.ends_with("/dashboards/soakd"), "provider path {path}");
    assert!(
        dash.contains("grafana/dashboards"),
        "the provider file says which folder to mount at {path}"
    );
}

/// Runs `grafana/generate_dashboards.py ARG` and returns its stdout; fails the test with the
/// script's own message (the pip command when the SDK is missing) if it fails.
fn generator(arg: &str) -> String {
    let out = std::process::Command::new("python3")
        .arg(root().join("grafana/generate_dashboards.py"))
        .arg(arg)
        .output()
        .expect("run python3 (install Python 3 to check the dashboards)");
    assert!(
        out.status.success(),
        "generate_dashboards.py {arg} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Every difference between two JSON values, as `lost PATH`, `added PATH = VALUE` or
/// `changed PATH`.
fn json_diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => json_diff(v, w, &format!("{path}/{k}"), out),
                    None => out.push(format!("lost {path}/{k}")),
                }
            }
            for (k, w) in y {
                if !x.contains_key(k) {
                    out.push(format!("added {path}/{k} = {w}"));
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                json_diff(v, w, &format!("{path}/{i}"), out);
            }
        }
        _ if a == b => {}
        _ => out.push(format!("changed {path}: {a} -> {b}")),
    }
}

/// The committed dashboards are exactly what the generator makes through the SDK, and each
/// one read into the SDK's model (`Dashboard.from_json`, panel options and queries typed by
/// their plugins) and written back keeps every field and value and adds none. The one
/// exception is named: the three fields of the bursts annotation that the SDK's
/// `AnnotationQuery` cannot hold (the generator adds them to the SDK's JSON).
#[test]
fn dashboards_are_the_sdks_and_round_trip_through_its_types() {
    assert_eq!(generator("--check").trim(), "ok");
    let back: Value = serde_json::from_str(&generator("--round-trip")).expect("round-trip JSON");
    for (file, dash) in dashboards() {
        let name = file.trim_end_matches(".json");
        let again = back
            .get(name)
            .unwrap_or_else(|| panic!("{name} not round-tripped"));
        assert_eq!(
            dash["schemaVersion"], 41,
            "{name}: the SDK's schema version"
        );
        let mut diff = Vec::new();
        json_diff(&dash, again, "", &mut diff);
        let bursts = dash["annotations"]["list"]
            .as_array()
            .and_then(|l| l.iter().position(|a| a["name"] == "Bursts"))
            .unwrap_or_else(|| panic!("{name}: no bursts annotation"));
        let mut expected: Vec<String> = ["step", "textFormat", "titleFormat"]
            .iter()
            .map(|f| format!("lost /annotations/list/{bursts}/{f}"))
            .collect();
        diff.sort();
        expected.sort();
        assert_eq!(diff, expected, "{name}: what the SDK's types do not keep");
    }
}

#[test]
fn round_trip_diff_sees_losses_additions_and_changes() {
    let a = serde_json::json!({"k": 1, "l": [{"x": "a"}], "gone": true});
    let b = serde_json::json!({"k": 2, "l": [{"x": "a", "y": null}]});
    let mut d = Vec::new();
    json_diff(&a, &b, "", &mut d);
    d.sort();
    assert_eq!(
        d,
        ["added /l/0/y = null", "changed /k: 1 -> 2", "lost /gone"]
    );
}

#[test]
fn lint_helpers_catch_violations() {
    assert!(rate_calls_use_rate_interval("sum(rate(x[5m]))").is_err());
    assert!(rate_calls_use_rate_interval("irate(x[1m])").is_err());
    assert!(rate_calls_use_rate_interval("increase(x{a=\"b\"}[$__rate_interval])").is_ok());
    assert!(rate_calls_use_rate_interval("rate(x[$__rate_interval]) / rate(y[1h])").is_err());
    let s = selectors(
        "histogram_quantile(0.9, sum by (le) (rate(soakd_time_to_first_token_seconds_bucket{job=~\"$job\"}[$__rate_interval]))) / soakd:x + process_open_fds",
    );
    assert_eq!(
        s,
        vec![
            (
                "soakd_time_to_first_token_seconds_bucket".to_string(),
                "soakd_time_to_first_token_seconds".to_string(),
                "{job=~\"$job\"}".to_string()
            ),
            (
                "process_open_fds".to_string(),
                "process_open_fds".to_string(),
                String::new()
            ),
        ]
    );
}
