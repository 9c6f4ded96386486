//! The gateways harness without the gateways: cheap checks that run in every CI.
//!
//! - Every manifest in `gateways/` parses and passes `scripts/gateways/manifest.py check`
//!   (every key known, every API served or listed as not served with its reason, the three
//!   scripts present and executable), and the checker rejects bad manifests, naming the key.
//! - The standard programme (`scripts/gateways/programme.py`) gives, for every gateway, a
//!   config that this soakd accepts (`soakd check-config`), with every part in it: the storms,
//!   the memory arc, the process tree and creep (their branches are merged, so a part the
//!   probe finds missing is a bug).
//! - `GATEWAYS.md` is exactly what `scripts/gateways/table.py` makes of the committed results
//!   (`results/gateways/*/`), byte for byte; and the script fills the storm, memory-arc and
//!   creep cells from the fields those parts of soakd write (its self-test).
//! - The harness's shell scripts parse (`bash -n`).
//!
//! Nothing is installed or started here. The real gateways run only when asked:
//! `SOAKD_GATEWAYS=litellm,portkey scripts/test.sh` (see `scripts/gateways/run.sh`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod common;

use common::TempDir;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn ok(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let out = run(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn python(script: &str) -> Command {
    let mut c = Command::new("python3");
    c.arg(root().join("scripts/gateways").join(script));
    c
}

/// The gateways: folders of `gateways/` with a manifest.
fn gateways() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("gateways"))
        .expect("read gateways/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.join("gateway.toml").is_file())
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_manifest_parses_and_bad_ones_are_rejected_by_key() {
    let names = gateways();
    for want in ["litellm", "nginx", "nginx-buffering", "portkey"] {
        assert!(
            names.iter().any(|n| n == want),
            "gateways/{want} is missing"
        );
    }
    let out = ok(python("manifest.py").arg("check"));
    assert_eq!(
        out.trim(),
        format!(
            "{} gateway manifests checked: {}",
            names.len(),
            names.join(", ")
        )
    );
    let out = ok(python("manifest.py").arg("self-test"));
    assert!(out.contains("bad manifests rejected"), "{out}");

    // Every manifest is TOML to Rust's reader too, with the shape the harness relies on.
    for n in &names {
        let text = std::fs::read_to_string(root().join("gateways").join(n).join("gateway.toml"))
            .expect("read manifest");
        let v: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{n}: {e}"));
        assert_eq!(v["name"].as_str(), Some(n.as_str()));
        let apis = v["apis"].as_array().expect("apis");
        assert_eq!(apis[0]["api"].as_str(), Some("openai"), "{n}: first API");
    }
}

#[test]
fn the_programme_is_a_valid_config_for_every_gateway() {
    let soakd = env!("CARGO_BIN_EXE_soakd");
    let scratch = TempDir::new("gateways");
    let dir = scratch.path();
    let features = dir.join("features.json");
    let out = ok(python("programme.py").args(["features", "--soakd", soakd]));
    let parsed: serde_json::Value = serde_json::from_str(&out).expect("features JSON");
    // Every part's branch is merged: this soakd runs them all (a probe it refuses, like the
    // memory arc's once did for want of `[run] idle`, would drop the part from every run).
    let feats = parsed.as_object().expect("features object");
    let mut names: Vec<&str> = feats.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["creep", "memory_arc", "process_tree", "storms"]);
    for (name, f) in feats {
        assert_eq!(f["present"].as_bool(), Some(true), "{name}: {f}");
        assert!(f.get("reason").is_none(), "{name}: {f}");
    }
    scratch.write("features.json", &out);
    // Every gateway's config, then one `soakd check-config` each, all at once.
    let mut checks = Vec::new();
    for n in gateways() {
        let cfg = ok(python("programme.py").args([
            "config",
            &n,
            "--minutes",
            "30",
            "--rate",
            "5",
            "--port",
            "18080",
            "--upstream-port",
            "19600",
            "--run-dir",
            dir.to_str().expect("utf-8 path"),
            "--features",
            features.to_str().expect("utf-8 path"),
        ]));
        // The give-ups, the watched gateway, and the storms exactly when this soakd has them.
        assert!(cfg.contains("name = \"cancel-stream\""), "{n}");
        assert!(cfg.contains("name = \"cancel-unary\""), "{n}");
        assert!(cfg.contains(&format!("name = \"{n}\"\npid_file = ")), "{n}");
        // The storms, the memory arc (idle and cooldown), creep judged within the run (a
        // window of N/3: 10 min of 30), and the process tree where the manifest asks for it.
        assert!(
            cfg.contains("status = 429\nrate = 1.0\nretry_after = 2"),
            "{n}: the 429 storm"
        );
        assert!(
            cfg.contains("status = 500\nrate = 0.5"),
            "{n}: the 5xx burst"
        );
        assert!(
            cfg.contains("idle = \"30s\"\ncooldown = \"300s\""),
            "{n}: {cfg}"
        );
        assert!(cfg.contains("creep_window = \"600s\""), "{n}: {cfg}");
        if n == "litellm" {
            assert!(cfg.contains("include_children = true"), "{n}: {cfg}");
        }
        let path = scratch.write(&format!("{n}.toml"), &cfg);
        let child = Command::new(soakd)
            .arg("check-config")
            .arg(&path)
            .env("SOAKD_GATEWAY_KEY", "sk-test")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn soakd check-config");
        checks.push((n, cfg, child));
    }
    for (n, cfg, child) in checks {
        let out = child.wait_with_output().expect("soakd check-config");
        assert!(
            out.status.success(),
            "{n}: soakd rejects the programme's config:\n{}\n{cfg}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn gateways_md_is_regenerated_byte_for_byte_from_the_committed_results() {
    let out = run(python("table.py").arg("--check"));
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The cells of the storms, the memory arc and creep, from the fields those bring.
    let out = ok(python("table.py").arg("--self-test"));
    assert!(out.contains("as expected"), "{out}");
    let page = std::fs::read_to_string(root().join("GATEWAYS.md")).expect("GATEWAYS.md");
    assert!(page.contains("**The figures are from a 2-core shared VM.**"));
    // Every committed result has its row.
    for d in std::fs::read_dir(root().join("results/gateways")).expect("results/gateways") {
        let d = d.expect("dir entry").path();
        if d.join("run.json").is_file() {
            let name = d.file_name().expect("name").to_string_lossy().into_owned();
            assert!(
                page.contains(&format!("| **{name}** |")),
                "no row for {name}"
            );
        }
    }
}

#[test]
fn the_harness_scripts_parse() {
    let mut scripts = vec![
        root().join("scripts/gateways/run.sh"),
        root().join("scripts/gateways/lib.sh"),
    ];
    for n in gateways() {
        for s in ["install", "start", "stop"] {
            scripts.push(root().join("gateways").join(&n).join(s));
        }
    }
    for s in &scripts {
        ok(Command::new("bash").arg("-n").arg(s));
    }
    assert!(scripts.iter().all(|s| Path::new(s).is_file()));
}
