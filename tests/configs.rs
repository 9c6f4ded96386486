//! Every config shipped in the repository is valid, and `check-config` agrees.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use soakd::config::{load, Overrides};

fn shipped_configs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["config", "config/examples", "k8s/overlays/sidecar"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// Examples refer to API keys by environment variable; give each one a value.
fn env_with_keys(name: &str) -> Option<String> {
    (name.ends_with("KEY") || name.ends_with("API_KEY")).then(|| "sk-test".to_string())
}

#[test]
fn every_shipped_config_validates() {
    let files = shipped_configs();
    assert!(
        files.len() >= 7,
        "expected the default, kubernetes, four examples and the sidecar config: {files:?}"
    );
    // In-cluster configs read the key from a mounted Secret; stand a file in for it.
    let key = std::env::temp_dir().join(format!("soakd-key-{}", std::process::id()));
    std::fs::write(&key, "sk-test\n").unwrap();
    for f in &files {
        let mut raw = load(Some(f), &HashMap::new(), &Overrides::default())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        if raw.target.api_key_file.is_some() {
            raw.target.api_key_file = Some(key.clone());
        }
        raw.validate_with(&env_with_keys)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
}

#[test]
fn check_config_prints_the_effective_config_and_rejects_bad_files() {
    let exe = env!("CARGO_BIN_EXE_soakd");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(exe)
        .args(["check-config"])
        .arg(root.join("config/soakd.toml"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(
        printed.contains("[load]") && printed.contains("rate = 50.0"),
        "{printed}"
    );

    let dir = std::env::temp_dir().join(format!("soakd-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[load]\nrate = 10\nburst_every = \"1m\"\n").unwrap();
    let out = Command::new(exe)
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("burst_every"), "{err}");
    assert!(out.stdout.is_empty());

    std::fs::write(&bad, "[[scenarios]]\napi = \"cohere\"\n").unwrap();
    let out = Command::new(exe)
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("scenarios[0].api") && err.contains("cohere"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
