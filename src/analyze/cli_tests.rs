//! Argument validation of `soakd analyze`: inputs, settings and the errors that exit 78.

use std::collections::HashMap;

use super::*;
use crate::scratch::ScratchDir;

const NOW: f64 = 1_700_000_000.0;

fn args(f: impl FnOnce(&mut AnalyzeArgs)) -> AnalyzeArgs {
    let mut a = AnalyzeArgs {
        resource: "rss".into(),
        ..AnalyzeArgs::default()
    };
    f(&mut a);
    a
}

fn prom(a: &mut AnalyzeArgs) {
    a.prometheus = Some("http://127.0.0.1:9090".into());
    a.query = Some("process_resident_memory_bytes".into());
    a.range = Some("6h".into());
}

fn cmd(a: &AnalyzeArgs) -> Result<Command, ConfigError> {
    a.command(NOW, &HashMap::new())
}

fn err(a: &AnalyzeArgs) -> String {
    cmd(a).unwrap_err().to_string()
}

/// The labels of the command's windows, in order.
fn labels(c: &Command) -> Vec<&str> {
    c.settings
        .windows
        .iter()
        .map(|w| w.label.as_str())
        .collect()
}

#[test]
fn csv_files_with_the_monitor_defaults() {
    let c = cmd(&args(|a| a.files = vec!["a.csv".into(), "b.csv".into()])).unwrap();
    assert_eq!(c.input, Input::Csv(vec!["a.csv".into(), "b.csv".into()]));
    assert_eq!(labels(&c), ["5m", "30m", "2h"]);
    assert_eq!(c.settings.rules, LeakRules::default());
    assert_eq!(c.settings.resource, Resource::Rss);
    assert_eq!(
        c.settings.warmup, 0.0,
        "recorded data: no warm-up by default"
    );
    assert_eq!(c.settings.confidence, 0.95);
    assert_eq!(c.settings.load_period, None);
    assert!(!c.json && c.warnings.is_empty());
}

#[test]
fn windows_warmup_and_resource_flags() {
    let c = cmd(&args(|a| {
        a.files = vec!["a.csv".into()];
        a.windows = Some(vec!["20s".into(), " 10s".into()]);
        a.warmup = Some("3m".into());
        a.load_period = Some("15s".into());
        a.resource = "fds".into();
        a.json = true;
    }))
    .unwrap();
    let w: Vec<(&str, u64)> = c
        .settings
        .windows
        .iter()
        .map(|w| (w.label.as_str(), w.duration.as_secs()))
        .collect();
    assert_eq!(w, [("10s", 10), ("20s", 20)]);
    assert_eq!(c.settings.warmup, 180.0);
    assert_eq!(c.settings.load_period, Some(15.0));
    assert_eq!(c.settings.resource, Resource::Fds);
    assert!(c.json);
}

#[test]
fn prometheus_query_with_default_step_and_end() {
    let c = cmd(&args(prom)).unwrap();
    let Input::Prometheus(q) = c.input else {
        panic!("not a query")
    };
    assert_eq!(q.base.as_str(), "http://127.0.0.1:9090/");
    assert_eq!(q.query, "process_resident_memory_bytes");
    assert_eq!((q.start, q.end, q.step), (NOW - 6.0 * 3600.0, NOW, 15.0));
    let c = cmd(&args(|a| {
        prom(a);
        a.range = Some("30d".into());
        a.end = Some("2023-11-14T22:13:20Z".into());
        a.step = None;
    }))
    .unwrap();
    let Input::Prometheus(q) = c.input else {
        panic!("not a query")
    };
    // 30 days / 40,000 points = 64.8 s, rounded up.
    assert_eq!((q.end, q.step), (NOW, 65.0));
    assert_eq!(default_step(7.0 * 86_400.0), 16.0);
    assert_eq!(default_step(6.0 * 86_400.0), 15.0);
}

#[test]
fn end_accepts_unix_seconds_and_rfc3339_with_offsets() {
    assert_eq!(parse_end("1700000000").unwrap(), NOW);
    assert_eq!(parse_end("1700000000.5").unwrap(), NOW + 0.5);
    assert_eq!(parse_end("2023-11-14T22:13:20Z").unwrap(), NOW);
    assert_eq!(parse_end("2023-11-14T22:13:20").unwrap(), NOW);
    assert_eq!(parse_end("2023-11-14 22:13:20.25Z").unwrap(), NOW + 0.25);
    assert_eq!(parse_end("2023-11-15T00:13:20+02:00").unwrap(), NOW);
    assert_eq!(parse_end("2023-11-14T17:43:20-04:30").unwrap(), NOW);
    for bad in [
        "yesterday",
        "2023-11-14T25:00:00Z",
        "-5",
        "2023-11-14T22:13:20+2x:00",
        "2023-11-14T22:13:20ü00:00", // the offset position inside a character
        "ü",
    ] {
        let e = parse_end(bad).unwrap_err().to_string();
        assert!(e.contains("--end"), "{bad}: {e}");
    }
}

/// A change to valid Prometheus arguments.
type Edit = fn(&mut AnalyzeArgs);

#[test]
fn contradictory_or_missing_arguments_are_named() {
    let cases: [(Edit, &[&str]); 7] = [
        (|_| {}, &["give CSV files"]),
        (
            |a| {
                prom(a);
                a.files = vec!["mem.csv".into()];
            },
            &[
                "--prometheus",
                "cannot be combined with CSV files (mem.csv)",
            ],
        ),
        (
            |a| {
                prom(a);
                a.query = None;
            },
            &["needs --query"],
        ),
        (
            |a| {
                prom(a);
                a.query = Some("  ".into());
            },
            &["--query", "must not be empty"],
        ),
        (
            |a| {
                prom(a);
                a.range = None;
            },
            &["needs --range"],
        ),
        (
            |a| {
                a.files = vec!["mem.csv".into()];
                a.query = Some("up".into());
            },
            &["--query", "applies only with --prometheus"],
        ),
        (
            |a| {
                a.files = vec!["mem.csv".into()];
                a.step = Some("15s".into());
            },
            &["--step"],
        ),
    ];
    for (edit, wants) in cases {
        let e = err(&args(edit));
        for want in wants {
            assert!(e.contains(want), "{want}: {e}");
        }
    }
}

#[test]
fn bad_values_are_named() {
    let cases: [(&str, Edit); 11] = [
        ("--range", |a| a.range = Some("six hours".into())),
        ("--range", |a| a.range = Some("0s".into())),
        ("--step", |a| a.step = Some("0s".into())),
        ("--step", |a| {
            a.range = Some("1000d".into());
            a.step = Some("1s".into());
        }),
        ("--prometheus", |a| {
            a.prometheus = Some("localhost:9090".into())
        }),
        ("--resource", |a| a.resource = "heap".into()),
        ("--windows[1]", |a| {
            a.windows = Some(vec!["5m".into(), "soon".into()])
        }),
        ("--windows[1]", |a| {
            a.windows = Some(vec!["5m".into(), "300s".into()])
        }),
        ("--windows", |a| a.windows = Some(vec![String::new()])),
        ("--warmup", |a| a.warmup = Some("long".into())),
        ("--load-period", |a| a.load_period = Some("0s".into())),
    ];
    for (field, f) in cases {
        let e = err(&args(|a| {
            prom(a);
            f(a);
        }));
        assert!(e.contains(&format!("{field} = ")), "{field}: {e}");
    }
    let e = err(&args(|a| {
        prom(a);
        a.range = Some("1000d".into());
        a.step = Some("1s".into());
    }));
    assert!(e.contains("use a larger step"), "{e}");
    let e = err(&args(|a| {
        prom(a);
        a.end = Some("100".into());
    }));
    assert!(e.contains("before 1970"), "{e}");
}

#[test]
fn config_monitor_section_applies_and_bad_ones_are_config_errors() {
    let dir = ScratchDir::new("analyze-cli");
    let good = dir.write(
        "good.toml",
        "[monitor]\nwindows = [\"10m\", \"1h\"]\n[monitor.thresholds]\nrss_mib_per_hour = 8\n\
         rss_percent_per_hour = 1\nfds_per_hour = 5\nmin_r2 = 0.5\nmin_growth_bytes = \"1MiB\"\n",
    );
    let c = cmd(&args(|a| {
        a.files = vec!["a.csv".into()];
        a.config = Some(good.clone());
    }))
    .unwrap();
    assert_eq!(labels(&c), ["10m", "1h"]);
    assert_eq!(c.settings.rules.rss_bytes_per_hour, 8.0 * units::MIB);
    assert_eq!(c.settings.rules.rss_fraction_per_hour, 0.01);
    assert_eq!(c.settings.rules.fds_per_hour, 5.0);
    assert_eq!(c.settings.rules.min_growth_bytes, units::MIB);
    assert_eq!(c.settings.rules.min_growth_fraction, 0.02, "the default");
    assert_eq!(c.warnings.len(), 1, "min_r2 is deprecated");
    assert!(c.warnings[0].contains("min_r2 = 0.5"), "{:?}", c.warnings);
    // --windows overrides the file's.
    let c = cmd(&args(|a| {
        a.files = vec!["a.csv".into()];
        a.config = Some(good.clone());
        a.windows = Some(vec!["2h".into()]);
    }))
    .unwrap();
    assert_eq!(c.settings.windows.len(), 1);
    // A bad [monitor], an unknown key, a missing file.
    let bad = dir.write("bad.toml", "[monitor]\nwindows = [\"5m\", \"banana\"]\n");
    let e = err(&args(|a| {
        a.files = vec!["a.csv".into()];
        a.config = Some(bad.clone());
    }));
    assert!(
        e.starts_with("invalid config: monitor.windows[1] = \"banana\""),
        "{e}"
    );
    std::fs::write(&bad, "[monitor]\nwindowz = [\"5m\"]\n").unwrap();
    let e = err(&args(|a| {
        a.files = vec!["a.csv".into()];
        a.config = Some(bad.clone());
    }));
    assert!(e.contains("windowz"), "{e}");
    let e = err(&args(|a| {
        a.files = vec!["a.csv".into()];
        a.config = Some(dir.join("missing.toml"));
    }));
    assert!(e.contains("--config") && e.contains("cannot read"), "{e}");
}

#[test]
fn exit_codes_follow_the_verdict() {
    assert_eq!(exit_code(Verdict::Leak), exit::FAIL);
    assert_eq!(exit_code(Verdict::Ok), exit::PASS);
    assert_eq!(exit_code(Verdict::Unknown), exit::PASS);
}
