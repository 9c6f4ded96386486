//! Checks of `prometheus/`: the real `promtool` and `amtool` validate the rules, the example
//! Prometheus config and the Alertmanager config, and run the promtool unit tests; then
//! cross-checks that no tool does: every alert carries severity, summary, description and a
//! runbook link whose section exists in `docs/runbooks.md`, every alert has a promtool test in
//! which it fires and one in which it stays silent, and every `soakd_*` metric named in rules
//! and tests is in [`soakd::metrics::CATALOG`].
//!
//! The rule files are parsed with a small line-based reader (they are our own, regular YAML);
//! validity as YAML and PromQL is promtool's job.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use soakd::metrics::{Kind, CATALOG};

const RUNBOOK_BASE: &str = "https://github.com/soakd/soakd/blob/main/docs/runbooks.md#";
const TOOL_TIMEOUT: Duration = Duration::from_secs(300);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn prom_dir() -> PathBuf {
    root().join("prometheus")
}

/// `*.yml` files of a folder, sorted, as paths relative to `base`.
fn yml_files(dir: &Path, base: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .map(|p| {
            p.strip_prefix(base)
                .expect("file under base")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .yml files in {}", dir.display());
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Output of a finished tool run.
struct Run {
    ok: bool,
    out: String,
}

/// Runs an external tool in `cwd`, bounded by [`TOOL_TIMEOUT`]. A missing binary is a hard
/// failure naming the Debian package that provides it.
fn run_tool(bin: &str, package: &str, args: &[&str], cwd: &Path) -> Run {
    let mut child = match Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("{bin} not found: install Debian package {package} (scripts/test.sh does)")
        }
        Err(e) => panic!("cannot start {bin}: {e}"),
    };
    // Read both pipes on their own threads so a chatty tool cannot block on a full pipe.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + TOOL_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for tool") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{bin} {args:?} did not finish within {TOOL_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = format!(
        "{}{}",
        out_t.join().expect("stdout reader"),
        err_t.join().expect("stderr reader")
    );
    Run {
        ok: status.success(),
        out,
    }
}

fn must_pass(bin: &str, package: &str, args: &[&str], cwd: &Path) -> String {
    let r = run_tool(bin, package, args, cwd);
    assert!(r.ok, "{bin} {args:?} failed:\n{}", r.out);
    r.out
}

fn promtool(args: &[&str]) -> String {
    must_pass("promtool", "prometheus", args, &prom_dir())
}

fn amtool(args: &[&str]) -> Run {
    run_tool("amtool", "prometheus-alertmanager", args, &prom_dir())
}

/// Indentation (leading spaces) of a line.
fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    let v = v
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v);
    v.to_string()
}

/// One `- alert:` block: its name and every `key: value` line inside it (labels, annotations,
/// `for`, single-line `expr`).
#[derive(Debug)]
struct AlertRule {
    name: String,
    fields: BTreeMap<String, String>,
    has_labels: bool,
    has_annotations: bool,
}

fn parse_alerts(text: &str) -> Vec<AlertRule> {
    let mut alerts: Vec<AlertRule> = Vec::new();
    let mut block_indent = None;
    for line in text.lines() {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if let Some(name) = t.strip_prefix("- alert:") {
            block_indent = Some(indent(line));
            alerts.push(AlertRule {
                name: name.trim().to_string(),
                fields: BTreeMap::new(),
                has_labels: false,
                has_annotations: false,
            });
            continue;
        }
        match block_indent {
            Some(i) if indent(line) > i => {}
            _ => {
                block_indent = None;
                continue;
            }
        }
        let alert = alerts.last_mut().expect("inside an alert block");
        match t {
            "labels:" => alert.has_labels = true,
            "annotations:" => alert.has_annotations = true,
            _ => {
                if let Some((k, v)) = t.split_once(": ") {
                    if !k.contains(' ') && !k.is_empty() {
                        alert.fields.insert(k.to_string(), unquote(v));
                    }
                }
            }
        }
    }
    alerts
}

fn all_alerts() -> Vec<AlertRule> {
    let dir = prom_dir();
    yml_files(&dir.join("rules"), &dir)
        .iter()
        .flat_map(|f| parse_alerts(&read(&dir.join(f))))
        .collect()
}

/// GitHub's anchor for a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn runbook_anchors() -> BTreeSet<String> {
    read(&root().join("docs/runbooks.md"))
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(anchor)
        .collect()
}

/// Every `soakd_*` metric name in `text` (comments included), histogram suffixes removed.
fn soakd_metric_names(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while let Some(pos) = text[i..].find("soakd_") {
        let start = i + pos;
        let preceded = start > 0 && {
            let c = bytes[start - 1];
            c.is_ascii_alphanumeric() || c == b'_' || c == b':'
        };
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .map_or(text.len(), |e| start + e);
        if !preceded {
            names.insert(strip_histogram_suffix(&text[start..end]).to_string());
        }
        i = end.max(start + 1);
    }
    names
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

/// Alert names with a promtool test case expecting them to fire / expecting silence.
fn tested_alerts() -> (BTreeSet<String>, BTreeSet<String>) {
    let dir = prom_dir();
    let mut fires = BTreeSet::new();
    let mut silent = BTreeSet::new();
    for f in yml_files(&dir.join("tests"), &dir) {
        let text = read(&dir.join(&f));
        let lines: Vec<&str> = text.lines().collect();
        let mut current: Option<String> = None;
        for (n, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            if let Some(name) = t.strip_prefix("alertname:") {
                current = Some(name.trim().to_string());
            } else if let Some(rest) = t.strip_prefix("exp_alerts:") {
                let name = current
                    .clone()
                    .unwrap_or_else(|| panic!("{f}:{}: exp_alerts before alertname", n + 1));
                let rest = rest.trim();
                let non_empty = if rest == "[]" {
                    false
                } else if rest.is_empty() {
                    lines[n + 1..]
                        .iter()
                        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                        .is_some_and(|next| {
                            indent(next) > indent(line) && next.trim_start().starts_with('-')
                        })
                } else {
                    panic!("{f}:{}: unexpected exp_alerts value {rest:?}", n + 1)
                };
                if non_empty {
                    fires.insert(name);
                } else {
                    silent.insert(name);
                }
                current = None;
            }
        }
    }
    (fires, silent)
}

#[test]
fn promtool_accepts_rules_and_prometheus_config() {
    let dir = prom_dir();
    let rules = yml_files(&dir.join("rules"), &dir);
    let mut args = vec!["check", "rules"];
    args.extend(rules.iter().map(String::as_str));
    let out = promtool(&args);
    assert_eq!(
        out.matches("SUCCESS").count(),
        rules.len(),
        "every rule file must be checked:\n{out}"
    );
    // The example config loads rules/*.yml relative to its own folder.
    let out = promtool(&["check", "config", "prometheus.yml"]);
    assert!(
        out.contains(&format!("SUCCESS: {} rule files found", rules.len())),
        "prometheus.yml must load every rule file:\n{out}"
    );
}

#[test]
fn promtool_unit_tests_pass() {
    let dir = prom_dir();
    let tests = yml_files(&dir.join("tests"), &dir);
    let mut args = vec!["test", "rules"];
    args.extend(tests.iter().map(String::as_str));
    let out = promtool(&args);
    assert_eq!(
        out.matches("SUCCESS").count(),
        tests.len(),
        "every test file must pass:\n{out}"
    );
}

#[test]
fn amtool_accepts_config_and_routes_by_severity() {
    let check = amtool(&["check-config", "alertmanager.yml"]);
    assert!(check.ok, "amtool check-config failed:\n{}", check.out);
    for (severity, receiver, other) in [("critical", "pager", "chat"), ("warning", "chat", "pager")]
    {
        let label = format!("severity={severity}");
        let ok = amtool(&[
            "config",
            "routes",
            "test",
            "--config.file=alertmanager.yml",
            &format!("--verify.receivers={receiver}"),
            "alertname=SoakdFdLeak",
            &label,
        ]);
        assert!(ok.ok, "{severity} must route to {receiver}:\n{}", ok.out);
        let wrong = amtool(&[
            "config",
            "routes",
            "test",
            "--config.file=alertmanager.yml",
            &format!("--verify.receivers={other}"),
            "alertname=SoakdFdLeak",
            &label,
        ]);
        assert!(!wrong.ok, "{severity} must not route to {other}");
    }
}

#[test]
fn alertmanager_inhibits_leak_alerts_of_a_down_process() {
    let text = read(&prom_dir().join("alertmanager.yml"));
    let names: BTreeSet<String> = all_alerts().into_iter().map(|a| a.name).collect();
    let rule = text
        .split("- source_matchers:")
        .find(|block| block.contains("alertname=\"SoakdTargetDown\""))
        .expect("an inhibit rule with SoakdTargetDown as source");
    assert!(
        rule.contains("equal: [process]"),
        "must inhibit per process"
    );
    let targets: BTreeSet<&str> = rule
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| w.starts_with("Soakd") && *w != "SoakdTargetDown")
        .collect();
    for leak in [
        "SoakdMemoryLeakSuspected",
        "SoakdMemoryGrowthSlope",
        "SoakdMemoryGrowing",
        "SoakdMemoryLimitPredicted",
        "SoakdFdLeak",
        "SoakdThreadLeak",
    ] {
        assert!(targets.contains(leak), "{leak} is not inhibited");
    }
    for t in &targets {
        assert!(names.contains(*t), "inhibit rule names unknown alert {t}");
    }
}

#[test]
fn every_alert_has_severity_annotations_and_a_runbook_section() {
    let alerts = all_alerts();
    assert!(
        alerts.len() >= 15,
        "expected the full alert set, got {}",
        alerts.len()
    );
    let anchors = runbook_anchors();
    let mut seen = BTreeSet::new();
    for a in &alerts {
        assert!(seen.insert(a.name.clone()), "duplicate alert {}", a.name);
        assert!(
            a.has_labels && a.has_annotations,
            "{}: labels/annotations",
            a.name
        );
        let sev = a.fields.get("severity").map(String::as_str);
        assert!(
            matches!(sev, Some("warning" | "critical")),
            "{}: severity {sev:?}",
            a.name
        );
        for key in ["summary", "description"] {
            assert!(
                a.fields.get(key).is_some_and(|v| v.len() > 10),
                "{}: missing {key}",
                a.name
            );
        }
        let url = a
            .fields
            .get("runbook_url")
            .unwrap_or_else(|| panic!("{}: missing runbook_url", a.name));
        let anchor = url
            .strip_prefix(RUNBOOK_BASE)
            .unwrap_or_else(|| panic!("{}: runbook_url {url} not under {RUNBOOK_BASE}", a.name));
        assert_eq!(anchor, a.name.to_lowercase(), "{}: anchor", a.name);
        assert!(
            anchors.contains(anchor),
            "{}: docs/runbooks.md has no section #{anchor}",
            a.name
        );
    }
    // and no runbook section for an alert that does not exist
    for anchor in &anchors {
        assert!(
            alerts.iter().any(|a| a.name.to_lowercase() == *anchor),
            "runbook section #{anchor} has no alert"
        );
    }
}

#[test]
fn rules_and_tests_name_only_catalog_metrics() {
    let dir = prom_dir();
    let mut files = yml_files(&dir.join("rules"), &dir);
    files.extend(yml_files(&dir.join("tests"), &dir));
    let mut used = BTreeSet::new();
    for f in &files {
        for name in soakd_metric_names(&read(&dir.join(f))) {
            assert!(
                CATALOG.iter().any(|d| d.name == name),
                "{f} names {name}, which is not in soakd::metrics::CATALOG"
            );
            used.insert(name);
        }
    }
    // The alerts cover the contract's leak, traffic and stream signals.
    for must in [
        "soakd_leak_suspected",
        "soakd_process_rss_growth_bytes_per_second",
        "soakd_process_growth_lower_bound_per_second",
        "soakd_process_resident_memory_bytes",
        "soakd_process_open_fds",
        "soakd_process_threads",
        "soakd_process_up",
        "soakd_process_restarts_total",
        "soakd_streams_active",
        "soakd_requests_total",
        "soakd_requests_dropped_total",
        "soakd_streams_finished_total",
        "soakd_request_duration_seconds",
        "soakd_time_to_first_token_seconds",
        "soakd_build_info",
    ] {
        assert!(used.contains(must), "rules do not use {must}");
    }
}

#[test]
fn every_alert_has_a_test_where_it_fires_and_one_where_it_is_silent() {
    let (fires, silent) = tested_alerts();
    let names: BTreeSet<String> = all_alerts().into_iter().map(|a| a.name).collect();
    for name in &names {
        assert!(fires.contains(name), "no promtool test fires {name}");
        assert!(
            silent.contains(name),
            "no promtool test expects {name} silent"
        );
    }
    for name in fires.union(&silent) {
        assert!(names.contains(name), "tests name unknown alert {name}");
    }
}

#[test]
fn metric_name_scanner_finds_names_and_strips_histogram_suffixes() {
    let names = soakd_metric_names(
        "rate(soakd_request_duration_seconds_bucket{a=\"b\"}[5m]) / soakd:requests:rate5m \
         + x_soakd_nope + soakd_streams_active",
    );
    let want: BTreeSet<String> = ["soakd_request_duration_seconds", "soakd_streams_active"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(names, want);
    // a counter's `_count`-like suffix is not stripped unless the base is a histogram
    assert_eq!(
        strip_histogram_suffix("soakd_schedule_lag_seconds_count"),
        "soakd_schedule_lag_seconds"
    );
    assert_eq!(strip_histogram_suffix("soakd_x_count"), "soakd_x_count");
    assert_eq!(anchor("SoakdFdLeak"), "soakdfdleak");
}
