//! Kubernetes manifests: render the base and every overlay with `kubectl kustomize` and check
//! what a cluster admin relies on — restricted Pod Security on every pod, probes, resources,
//! the Job/Indexed-Job shapes, Prometheus Operator objects matching the pods and the rule
//! files, dashboards matching grafana/dashboards/, the NetworkPolicy, no inline secrets — then
//! validate the core kinds with `kubernetes-validate --strict`.
//!
//! Needs `kubectl` (with its built-in kustomize), `python3` with PyYAML (the PrometheusRule
//! generator) and `kubernetes-validate` (`pip install kubernetes-validate`). A missing tool
//! fails the test with a message saying what to install.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

/// Kubernetes version whose schemas `kubernetes-validate` checks against (matches kubectl 1.32).
const K8S_VERSION: &str = "1.32.0";
const NAMESPACE: &str = "soakd";
const METRICS_PORT: u64 = 9477;
const OVERLAYS: &[&str] = &[
    "k8s/base",
    "k8s/overlays/job",
    "k8s/overlays/sharded",
    "k8s/overlays/sidecar",
    "k8s/overlays/kube-prometheus-stack",
];
const RULE_FILES: &[&str] = &[
    "prometheus/rules/soakd-recording.yml",
    "prometheus/rules/soakd-alerts.yml",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command, install_hint: &str) -> std::process::Output {
    let program = cmd.get_program().to_string_lossy().into_owned();
    match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("`{program}` not found on PATH: {install_hint}")
        }
        Err(e) => panic!("running `{program}`: {e}"),
    }
}

/// `kubectl kustomize DIR` parsed into one JSON value per document.
fn kustomize(dir: &Path) -> Vec<Value> {
    let out = run(
        Command::new("kubectl").arg("kustomize").arg(dir),
        "install kubectl (v1.32+, it includes kustomize v5) to test the k8s/ manifests",
    );
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8 output");
    let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).expect("kustomize output is YAML"))
        .filter(|v| !v.is_null())
        .collect();
    assert!(!docs.is_empty(), "{} rendered nothing", dir.display());
    docs
}

fn render(overlay: &str) -> Vec<Value> {
    kustomize(&root().join(overlay))
}

fn all_rendered() -> Vec<(&'static str, Vec<Value>)> {
    OVERLAYS.iter().map(|o| (*o, render(o))).collect()
}

fn kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or_default()
}

fn name(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or_default()
}

fn of_kind<'a>(docs: &'a [Value], k: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| kind(d) == k).collect()
}

fn one<'a>(docs: &'a [Value], k: &str, n: &str) -> &'a Value {
    let found: Vec<_> = docs
        .iter()
        .filter(|d| kind(d) == k && name(d) == n)
        .collect();
    assert_eq!(found.len(), 1, "expected exactly one {k}/{n}");
    found[0]
}

/// Every (object, pod template) in the output.
fn pod_templates(docs: &[Value]) -> Vec<(&Value, &Value)> {
    docs.iter()
        .filter(|d| matches!(kind(d), "Deployment" | "Job" | "StatefulSet" | "DaemonSet"))
        .map(|d| (d, &d["spec"]["template"]))
        .collect()
}

fn containers(pod_spec: &Value) -> Vec<&Value> {
    let mut v: Vec<&Value> = pod_spec["containers"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    if let Some(init) = pod_spec["initContainers"].as_array() {
        v.extend(init.iter());
    }
    v
}

fn soakd_container(pod_spec: &Value) -> Option<&Value> {
    containers(pod_spec)
        .into_iter()
        .find(|c| c["name"] == "soakd")
}

fn env_value<'a>(container: &'a Value, key: &str) -> Option<&'a Value> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == key)
}

fn labels(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn selector_matches(selector: &Value, pod_labels: &Value) -> bool {
    let sel = labels(&selector["matchLabels"]);
    let pod = labels(pod_labels);
    assert!(!sel.is_empty(), "empty selector {selector}");
    sel.iter().all(|(k, v)| pod.get(k) == Some(v))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// A duration key of a config file (`"45s"`), or `default` when unset.
fn config_duration(c: &config::Config, key: &str, default: &str) -> Duration {
    let v = c.get_string(key).unwrap_or_else(|_| default.to_string());
    humantime::parse_duration(&v).unwrap_or_else(|e| panic!("{key} = {v:?}: {e}"))
}

/// `[run]` grace, idle, cooldown and linger of `config/kubernetes.toml` (soakd's defaults for
/// keys it leaves unset).
fn run_times() -> [Duration; 4] {
    let c = toml_config("config/kubernetes.toml");
    [
        config_duration(&c, "run.grace", "30s"),
        config_duration(&c, "run.idle", "0s"),
        config_duration(&c, "run.cooldown", "0s"),
        config_duration(&c, "run.linger", "0s"),
    ]
}

fn toml_config(rel: &str) -> config::Config {
    config::Config::builder()
        .add_source(config::File::from_str(&read(rel), config::FileFormat::Toml))
        .build()
        .unwrap_or_else(|e| panic!("{rel} is not valid TOML: {e}"))
}

#[test]
fn overlays_render_into_the_soakd_namespace_with_resolvable_references() {
    for (overlay, docs) in all_rendered() {
        let namespaces = of_kind(&docs, "Namespace");
        assert_eq!(namespaces.len(), 1, "{overlay}");
        let ns = namespaces[0];
        assert_eq!(name(ns), NAMESPACE);
        assert_eq!(
            ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted",
            "{overlay}"
        );
        for d in &docs {
            if kind(d) != "Namespace" {
                assert_eq!(
                    d["metadata"]["namespace"],
                    NAMESPACE,
                    "{overlay}: {}/{} outside the soakd namespace",
                    kind(d),
                    name(d)
                );
            }
        }
        let config_maps: BTreeSet<&str> =
            of_kind(&docs, "ConfigMap").into_iter().map(name).collect();
        let accounts: BTreeSet<&str> = of_kind(&docs, "ServiceAccount")
            .into_iter()
            .map(name)
            .collect();
        let pods = pod_templates(&docs);
        assert!(!pods.is_empty(), "{overlay}: no workload");
        for (obj, tpl) in pods {
            let spec = &tpl["spec"];
            let sa = spec["serviceAccountName"]
                .as_str()
                .expect("serviceAccountName");
            assert!(
                accounts.contains(sa),
                "{overlay}: {} uses missing SA {sa}",
                name(obj)
            );
            for vol in spec["volumes"].as_array().into_iter().flatten() {
                if let Some(cm) = vol["configMap"]["name"].as_str() {
                    assert!(
                        config_maps.contains(cm),
                        "{overlay}: {} mounts ConfigMap {cm}, which is not rendered (have {config_maps:?})",
                        name(obj)
                    );
                }
            }
        }
    }
}

#[test]
fn expected_workloads_per_overlay() {
    let kinds = |docs: &[Value]| -> Vec<String> {
        pod_templates(docs)
            .iter()
            .map(|(d, _)| format!("{}/{}", kind(d), name(d)))
            .collect()
    };
    assert_eq!(kinds(&render("k8s/base")), ["Deployment/soakd"]);
    assert_eq!(
        kinds(&render("k8s/overlays/kube-prometheus-stack")),
        ["Deployment/soakd"]
    );
    assert_eq!(kinds(&render("k8s/overlays/job")), ["Job/soakd"]);
    assert_eq!(
        kinds(&render("k8s/overlays/sharded")),
        ["Job/soakd", "Job/soakd-verdict"]
    );
    assert_eq!(
        kinds(&render("k8s/overlays/sidecar")),
        ["Deployment/ai-proxy-example"]
    );
}

/// The restricted Pod Security Standard, resources and the soakd container's contract.
#[test]
fn every_pod_is_restricted_with_resources_probes_and_mounts() {
    let mut pods_checked = 0;
    let mut verdicts_checked = 0;
    let mut images = BTreeSet::new();
    for (overlay, docs) in all_rendered() {
        for (obj, tpl) in pod_templates(&docs) {
            let ctx = format!("{overlay}: {}/{}", kind(obj), name(obj));
            let spec = &tpl["spec"];
            let psc = &spec["securityContext"];
            assert_eq!(psc["runAsNonRoot"], true, "{ctx}");
            assert_eq!(psc["runAsUser"], 65532, "{ctx}");
            assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault", "{ctx}");
            for host in ["hostNetwork", "hostPID", "hostIPC"] {
                assert_ne!(spec[host], true, "{ctx}: {host}");
            }
            assert!(
                spec["terminationGracePeriodSeconds"].as_u64().unwrap_or(30) >= 60,
                "{ctx}: grace period must cover soakd's drain + summary"
            );
            assert_eq!(spec["automountServiceAccountToken"], false, "{ctx}");
            for c in containers(spec) {
                let cctx = format!("{ctx} container {}", c["name"]);
                let sc = &c["securityContext"];
                assert_eq!(sc["allowPrivilegeEscalation"], false, "{cctx}");
                assert_eq!(sc["readOnlyRootFilesystem"], true, "{cctx}");
                assert_eq!(sc["runAsNonRoot"], true, "{cctx}");
                assert_eq!(
                    sc["capabilities"]["drop"],
                    serde_json::json!(["ALL"]),
                    "{cctx}"
                );
                assert!(
                    sc["capabilities"]["add"].is_null(),
                    "{cctx}: adds capabilities"
                );
                assert_ne!(sc["privileged"], true, "{cctx}");
                assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{cctx}");
                let uid = sc["runAsUser"].as_u64().or(psc["runAsUser"].as_u64());
                assert_eq!(uid, Some(65532), "{cctx}");
                for side in ["requests", "limits"] {
                    for res in ["cpu", "memory"] {
                        assert!(
                            c["resources"][side][res].is_string(),
                            "{cctx}: resources.{side}.{res} missing"
                        );
                    }
                }
                // A server has probes; the verdict Job's container serves nothing (no port).
                if c["ports"].is_array() {
                    assert!(c["livenessProbe"].is_object(), "{cctx}: no liveness probe");
                    assert!(
                        c["readinessProbe"].is_object(),
                        "{cctx}: no readiness probe"
                    );
                } else {
                    assert_eq!(c["name"], "verdict", "{cctx}: a container without a port");
                }
            }
            if let Some(c) = containers(spec).iter().find(|c| c["name"] == "verdict") {
                images.insert(c["image"].as_str().expect("image").to_owned());
                verdicts_checked += 1;
                continue;
            }

            let c = soakd_container(spec).unwrap_or_else(|| panic!("{ctx}: no soakd container"));
            images.insert(c["image"].as_str().expect("image").to_owned());
            assert_eq!(
                c["args"],
                serde_json::json!(["run", "--config", "/etc/soakd/soakd.toml"]),
                "{ctx}"
            );
            assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz", "{ctx}");
            assert_eq!(c["livenessProbe"]["httpGet"]["port"], "metrics", "{ctx}");
            assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz", "{ctx}");
            assert_eq!(c["readinessProbe"]["httpGet"]["port"], "metrics", "{ctx}");
            let port = c["ports"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["name"] == "metrics"))
                .unwrap_or_else(|| panic!("{ctx}: no port named metrics"));
            assert_eq!(port["containerPort"], METRICS_PORT, "{ctx}");
            assert!(
                env_value(c, "SOAKD__RUN__RUN_ID")
                    .is_some_and(|e| e["valueFrom"]["fieldRef"].is_object()),
                "{ctx}: run id from the downward API"
            );

            // Mounts: config, optional API key Secret, writable /tmp.
            let volumes: BTreeMap<&str, &Value> = spec["volumes"]
                .as_array()
                .expect("volumes")
                .iter()
                .map(|v| (v["name"].as_str().expect("volume name"), v))
                .collect();
            let mounts: BTreeMap<&str, &Value> = c["volumeMounts"]
                .as_array()
                .expect("volumeMounts")
                .iter()
                .map(|m| (m["mountPath"].as_str().expect("mountPath"), m))
                .collect();
            let vol_at = |path: &str| -> &Value {
                let m = mounts
                    .get(path)
                    .unwrap_or_else(|| panic!("{ctx}: nothing mounted at {path}"));
                volumes[m["name"].as_str().expect("mount name")]
            };
            assert!(
                vol_at("/tmp")["emptyDir"].is_object(),
                "{ctx}: /tmp not an emptyDir"
            );
            assert!(
                vol_at("/etc/soakd")["configMap"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("soakd-config")),
                "{ctx}"
            );
            let secret = &vol_at("/var/run/secrets/soakd")["secret"];
            assert_eq!(secret["secretName"], "soakd-api-key", "{ctx}");
            assert_eq!(secret["optional"], true, "{ctx}");
            assert_eq!(mounts["/var/run/secrets/soakd"]["readOnly"], true, "{ctx}");
            pods_checked += 1;
        }
    }
    assert_eq!(pods_checked, OVERLAYS.len());
    assert_eq!(verdicts_checked, 1, "the sharded overlay's verdict Job");
    assert_eq!(
        images.len(),
        1,
        "soakd image differs between manifests: {images:?}"
    );
}

#[test]
fn job_overlay_is_a_fixed_duration_verdict_job() {
    let docs = render("k8s/overlays/job");
    let job = one(&docs, "Job", "soakd");
    assert_eq!(job["spec"]["backoffLimit"], 0);
    let spec = &job["spec"]["template"]["spec"];
    assert_eq!(spec["restartPolicy"], "Never");
    let c = soakd_container(spec).expect("soakd container");
    let duration = env_value(c, "SOAKD__RUN__DURATION").expect("SOAKD__RUN__DURATION")["value"]
        .as_str()
        .expect("duration string");
    let duration = humantime::parse_duration(duration).expect("duration parses");
    assert!(duration > Duration::ZERO, "a Job needs a fixed duration");
    let grace = spec["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("grace");
    let deadline = job["spec"]["activeDeadlineSeconds"]
        .as_u64()
        .expect("activeDeadlineSeconds");
    // The whole run: idle, load, drain, cooldown and linger, then the pod's own grace.
    let [drain, idle, cooldown, linger] = run_times();
    let run = duration + idle + drain + cooldown + linger;
    assert!(
        deadline > run.as_secs() + grace,
        "activeDeadlineSeconds {deadline} must exceed the run ({}s: duration, idle, grace, \
         cooldown and linger of config/kubernetes.toml) + terminationGracePeriodSeconds {grace}s",
        run.as_secs()
    );
    assert_eq!(
        env_value(c, "SOAKD__RUN__RUN_ID").expect("run id")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.labels['batch.kubernetes.io/job-name']"
    );
    assert!(
        of_kind(&docs, "Deployment").is_empty(),
        "the Job replaces the Deployment"
    );
}

#[test]
fn sharded_overlay_is_an_indexed_job_with_matching_shard_count() {
    let docs = render("k8s/overlays/sharded");
    let job = one(&docs, "Job", "soakd");
    let s = &job["spec"];
    assert_eq!(s["completionMode"], "Indexed");
    let completions = s["completions"].as_u64().expect("completions");
    assert!(completions > 1, "a sharded run needs more than one shard");
    assert_eq!(
        s["parallelism"].as_u64(),
        Some(completions),
        "all shards run at once"
    );
    assert_eq!(s["backoffLimit"], 0);
    assert_eq!(s["template"]["spec"]["restartPolicy"], "Never");
    let c = soakd_container(&s["template"]["spec"]).expect("soakd container");
    let shards: u64 = env_value(c, "SOAKD__RUN__SHARDS").expect("SOAKD__RUN__SHARDS")["value"]
        .as_str()
        .expect("string env")
        .parse()
        .expect("number");
    assert_eq!(shards, completions);
    // The shard index comes from JOB_COMPLETION_INDEX, set by Kubernetes.
    assert!(env_value(c, "SOAKD__RUN__SHARD_INDEX").is_none());
    assert!(env_value(c, "JOB_COMPLETION_INDEX").is_none());
}

/// The verdict Job of the sharded overlay: N and the run id agree with the shards' Job, it
/// waits for their whole run, needs no RBAC, reaches Prometheus (its one URL setting) and the
/// shards' admin ports through its NetworkPolicy, and the shards linger long enough to be
/// read.
#[test]
fn sharded_overlay_judges_the_fleet_in_its_own_job() {
    let docs = render("k8s/overlays/sharded");
    let shards_job = one(&docs, "Job", "soakd");
    let job = one(&docs, "Job", "soakd-verdict");
    assert_eq!(job["spec"]["backoffLimit"], 0);
    let spec = &job["spec"]["template"]["spec"];
    assert_eq!(spec["restartPolicy"], "Never");
    let c = containers(spec)
        .into_iter()
        .find(|c| c["name"] == "verdict")
        .expect("verdict container");
    let args: Vec<&str> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg"))
        .collect();
    assert_eq!(args[0], "verdict");
    let arg = |flag: &str| -> &str {
        let i = args
            .iter()
            .position(|a| *a == flag)
            .unwrap_or_else(|| panic!("{flag} missing from {args:?}"));
        args[i + 1]
    };
    // N: completions, parallelism, SOAKD__RUN__SHARDS and --shards.
    let completions = shards_job["spec"]["completions"]
        .as_u64()
        .expect("completions");
    assert_eq!(
        shards_job["spec"]["parallelism"].as_u64(),
        Some(completions)
    );
    let shard_c = soakd_container(&shards_job["spec"]["template"]["spec"]).expect("soakd");
    let env_n = env_value(shard_c, "SOAKD__RUN__SHARDS").expect("SOAKD__RUN__SHARDS")["value"]
        .as_str()
        .expect("string");
    assert_eq!(env_n, completions.to_string());
    assert_eq!(arg("--shards"), completions.to_string());
    // The shards' run id is their Job's name.
    assert_eq!(
        env_value(shard_c, "SOAKD__RUN__RUN_ID").expect("run id")["valueFrom"]["fieldRef"]
            ["fieldPath"],
        "metadata.labels['batch.kubernetes.io/job-name']"
    );
    assert_eq!(arg("--run-id"), name(shards_job));
    // The same config (its [thresholds]), from the mounted ConfigMap.
    assert_eq!(arg("--config"), "/etc/soakd/soakd.toml");
    let mounted = spec["volumes"][0]["configMap"]["name"]
        .as_str()
        .expect("cm");
    assert!(mounted.starts_with("soakd-config"), "{mounted}");
    assert_eq!(c["volumeMounts"][0]["mountPath"], "/etc/soakd");
    // It waits for the shards' whole run, and its deadline for the wait.
    let duration = humantime::parse_duration(
        env_value(shard_c, "SOAKD__RUN__DURATION").expect("duration")["value"]
            .as_str()
            .expect("string"),
    )
    .expect("duration");
    let [drain, idle, cooldown, linger] = run_times();
    let wait = humantime::parse_duration(arg("--wait")).expect("--wait");
    assert!(
        wait >= duration + idle + drain + cooldown + Duration::from_secs(5 * 60),
        "--wait {wait:?} must cover the shards' run and their start-up"
    );
    let deadline = job["spec"]["activeDeadlineSeconds"]
        .as_u64()
        .expect("deadline");
    assert!(
        deadline > wait.as_secs(),
        "activeDeadlineSeconds {deadline} <= --wait"
    );
    // The shards linger long enough to be read: two scrapes of the PodMonitor, then a poll
    // and the reads.
    let pm = one(&docs, "PodMonitor", "soakd");
    let scrape = humantime::parse_duration(
        pm["spec"]["podMetricsEndpoints"][0]["interval"]
            .as_str()
            .expect("interval"),
    )
    .expect("interval parses");
    assert!(
        linger >= 2 * scrape + Duration::from_secs(10),
        "run.linger {linger:?} < two scrapes ({scrape:?}) + 10 s"
    );
    // No RBAC: no token, no Role or binding anywhere.
    assert_eq!(spec["automountServiceAccountToken"], false);
    for k in ["Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"] {
        assert!(of_kind(&docs, k).is_empty(), "{k}");
    }
    // One setting: the Prometheus URL; the NetworkPolicy lets the pod reach it (its port, in
    // the namespace the URL names) and the shards' admin port, nothing else but DNS.
    let prom = env_value(c, "SOAKD_PROMETHEUS_URL").expect("SOAKD_PROMETHEUS_URL")["value"]
        .as_str()
        .expect("string");
    let prom = url::Url::parse(prom).expect("URL");
    let prom_ns = prom
        .host_str()
        .and_then(|h| h.split('.').nth(1))
        .expect("a Service name: NAME.NAMESPACE.svc");
    let np = one(&docs, "NetworkPolicy", "soakd-verdict");
    assert!(selector_matches(
        &np["spec"]["podSelector"],
        &job["spec"]["template"]["metadata"]["labels"]
    ));
    assert!(
        !selector_matches(
            &np["spec"]["podSelector"],
            &shards_job["spec"]["template"]["metadata"]["labels"]
        ),
        "the verdict's policy is its own"
    );
    assert_eq!(
        np["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    assert_eq!(np["spec"]["ingress"], serde_json::json!([]));
    let egress = np["spec"]["egress"].as_array().expect("egress");
    let port_of = |r: &Value| -> Vec<u64> {
        r["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .map(|p| p["port"].as_u64().expect("numeric port"))
            .collect()
    };
    let to_prom = egress
        .iter()
        .find(|r| port_of(r).contains(&prom.port().expect("URL port").into()))
        .expect("egress to Prometheus's port");
    assert_eq!(
        to_prom["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        prom_ns
    );
    let to_shards = egress
        .iter()
        .find(|r| port_of(r) == [METRICS_PORT])
        .expect("egress to the shards' admin port");
    assert!(selector_matches(
        &to_shards["to"][0]["podSelector"],
        &shards_job["spec"]["template"]["metadata"]["labels"]
    ));
    assert!(egress.iter().all(|r| r["to"].is_array()), "no open egress");
    assert_eq!(egress.len(), 3, "Prometheus, the shards, DNS");
    // The shards' own policy admits the verdict on the admin port.
    let shard_np = one(&docs, "NetworkPolicy", "soakd");
    assert!(shard_np["spec"]["ingress"]
        .as_array()
        .expect("ingress")
        .iter()
        .any(|r| r["from"].is_null() && port_of(r) == [METRICS_PORT]));
}

/// job.yaml repeats the Deployment's pod template; only restartPolicy and env may differ.
#[test]
fn job_pod_template_matches_the_deployment() {
    let strip = |tpl: &Value| -> Value {
        let mut t = tpl.clone();
        let spec = t["spec"].as_object_mut().expect("pod spec");
        spec.remove("restartPolicy");
        for c in spec["containers"].as_array_mut().expect("containers") {
            c.as_object_mut().expect("container").remove("env");
        }
        t
    };
    let base = render("k8s/base");
    let job = render("k8s/overlays/job");
    assert_eq!(
        strip(&one(&base, "Deployment", "soakd")["spec"]["template"]),
        strip(&one(&job, "Job", "soakd")["spec"]["template"])
    );
}

#[test]
fn sidecar_overlay_shares_the_process_namespace_with_one_uid() {
    let docs = render("k8s/overlays/sidecar");
    let proxy = one(&docs, "Deployment", "ai-proxy-example");
    let spec = &proxy["spec"]["template"]["spec"];
    assert_eq!(spec["shareProcessNamespace"], true);
    let uids: BTreeSet<u64> = containers(spec)
        .iter()
        .map(|c| {
            c["securityContext"]["runAsUser"]
                .as_u64()
                .expect("runAsUser")
        })
        .collect();
    assert_eq!(
        uids.len(),
        1,
        "soakd must run as the proxy's UID to read /proc/<pid>/fd"
    );
    assert_eq!(containers(spec).len(), 2);
    // The standalone load generator, its Service and its NetworkPolicy are gone.
    assert!(docs
        .iter()
        .all(|d| name(d) != "soakd"
            || !matches!(kind(d), "Deployment" | "Service" | "NetworkPolicy")));
    // The sidecar config is in the ConfigMap the pod mounts.
    let cm_name = spec["volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == "config"))
        .expect("config volume")["configMap"]["name"]
        .as_str()
        .expect("name");
    let toml = one(&docs, "ConfigMap", cm_name)["data"]["soakd.toml"]
        .as_str()
        .expect("soakd.toml key");
    assert_eq!(toml, read("k8s/overlays/sidecar/soakd-sidecar.toml"));
}

#[test]
fn pod_monitor_and_service_select_the_soakd_pods() {
    for (overlay, docs) in all_rendered() {
        let pm = one(&docs, "PodMonitor", "soakd");
        assert_eq!(pm["apiVersion"], "monitoring.coreos.com/v1");
        let eps = pm["spec"]["podMetricsEndpoints"]
            .as_array()
            .expect("endpoints");
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0]["port"], "metrics");
        assert_eq!(eps[0]["path"], "/metrics");
        assert!(
            of_kind(&docs, "ServiceMonitor").is_empty(),
            "{overlay}: double scrape"
        );
        for (obj, tpl) in pod_templates(&docs) {
            // Every pod that serves /metrics is scraped, and no other (the verdict Job).
            let serves = containers(&tpl["spec"]).iter().any(|c| {
                c["ports"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == "metrics"))
            });
            assert_eq!(
                selector_matches(&pm["spec"]["selector"], &tpl["metadata"]["labels"]),
                serves,
                "{overlay}: PodMonitor selects {} (serves /metrics: {serves})",
                name(obj)
            );
            // Workload selectors must match their own pods.
            if let Some(sel) = obj["spec"]["selector"].as_object() {
                assert!(selector_matches(
                    &Value::Object(sel.clone()),
                    &tpl["metadata"]["labels"]
                ));
            }
        }
        for svc in of_kind(&docs, "Service") {
            let ports = svc["spec"]["ports"].as_array().expect("ports");
            assert_eq!(ports.len(), 1, "{overlay}");
            assert_eq!(ports[0]["name"], "metrics");
            assert_eq!(ports[0]["port"], METRICS_PORT);
            assert_eq!(ports[0]["targetPort"], "metrics");
            let sel = serde_json::json!({ "matchLabels": svc["spec"]["selector"] });
            let selected = pod_templates(&docs)
                .iter()
                .filter(|(_, t)| selector_matches(&sel, &t["metadata"]["labels"]))
                .count();
            assert_eq!(
                selected, 1,
                "{overlay}: Service selects {selected} workloads"
            );
        }
    }
    assert_eq!(of_kind(&render("k8s/base"), "Service").len(), 1);
}

#[test]
fn prometheus_rule_is_generated_from_the_rule_files() {
    // 1. The committed file is exactly what the generator produces now.
    let out = run(
        Command::new("python3")
            .arg(root().join("scripts/gen-prometheusrule.py"))
            .arg("--stdout"),
        "install Python 3 with PyYAML (pip install pyyaml) to regenerate the PrometheusRule",
    );
    assert!(
        out.status.success(),
        "gen-prometheusrule.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(
        generated,
        read("k8s/base/prometheusrule.yaml"),
        "k8s/base/prometheusrule.yaml is stale: run scripts/gen-prometheusrule.py"
    );

    // 2. Independently of the generator: the rendered spec holds exactly the files' groups.
    let mut groups = Vec::new();
    for f in RULE_FILES {
        let doc: Value = serde_yaml_ng::from_str(&read(f)).expect("rule file is YAML");
        groups.extend(doc["groups"].as_array().expect("groups").iter().cloned());
    }
    assert!(!groups.is_empty());
    for (overlay, docs) in all_rendered() {
        let rule = one(&docs, "PrometheusRule", "soakd");
        assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
        assert_eq!(
            rule["spec"]["groups"],
            Value::Array(groups.clone()),
            "{overlay}"
        );
    }
}

#[test]
fn dashboard_config_maps_match_the_grafana_directory() {
    let dir = root().join("grafana/dashboards");
    let files: BTreeMap<String, String> = std::fs::read_dir(&dir)
        .expect("grafana/dashboards")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let n = p.file_name().expect("name").to_string_lossy().into_owned();
            (n, std::fs::read_to_string(&p).expect("read dashboard"))
        })
        .collect();
    assert!(!files.is_empty(), "no dashboards in grafana/dashboards");
    for (overlay, docs) in all_rendered() {
        let mut keys = BTreeMap::new();
        for cm in of_kind(&docs, "ConfigMap") {
            if cm["metadata"]["labels"]["grafana_dashboard"] != "1" {
                continue;
            }
            for (k, v) in cm["data"].as_object().expect("data") {
                let text = v.as_str().expect("string data").to_owned();
                serde_json::from_str::<Value>(&text).expect("dashboard is JSON");
                assert!(
                    keys.insert(k.clone(), text).is_none(),
                    "{overlay}: {k} twice"
                );
            }
        }
        assert_eq!(
            keys, files,
            "{overlay}: dashboard ConfigMaps differ from grafana/dashboards/"
        );
    }
}

#[test]
fn kube_prometheus_stack_overlay_adds_the_release_label() {
    let base = render("k8s/base");
    let kps = render("k8s/overlays/kube-prometheus-stack");
    for k in ["PodMonitor", "PrometheusRule"] {
        assert!(one(&base, k, "soakd")["metadata"]["labels"]["release"].is_null());
        assert_eq!(
            one(&kps, k, "soakd")["metadata"]["labels"]["release"],
            "kube-prometheus-stack",
            "{k}"
        );
    }
}

fn assert_network_policy(ctx: &str, docs: &[Value]) -> Vec<(String, u64)> {
    let np = one(docs, "NetworkPolicy", "soakd");
    assert_eq!(
        np["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"]),
        "{ctx}"
    );
    let (_, tpl) = pod_templates(docs)[0];
    assert!(
        selector_matches(&np["spec"]["podSelector"], &tpl["metadata"]["labels"]),
        "{ctx}"
    );
    let ingress = np["spec"]["ingress"].as_array().expect("ingress rules");
    assert!(!ingress.is_empty(), "{ctx}");
    for rule in ingress {
        let ports = rule["ports"]
            .as_array()
            .expect("every ingress rule names its ports");
        assert_eq!(ports.len(), 1, "{ctx}");
        assert_eq!(ports[0]["port"], METRICS_PORT, "{ctx}");
        assert_eq!(ports[0]["protocol"], "TCP", "{ctx}");
    }
    let mut egress = Vec::new();
    for rule in np["spec"]["egress"].as_array().expect("egress rules") {
        assert!(
            rule["to"].is_array(),
            "{ctx}: egress rule open to everywhere"
        );
        for p in rule["ports"].as_array().expect("egress ports") {
            egress.push((
                p["protocol"].as_str().expect("protocol").to_owned(),
                p["port"].as_u64().expect("numeric port"),
            ));
        }
    }
    assert!(egress.contains(&("UDP".into(), 53)), "{ctx}: DNS");
    assert!(egress.contains(&("TCP".into(), 8080)), "{ctx}: target");
    egress
}

#[test]
fn network_policy_admits_only_the_metrics_port() {
    for overlay in ["k8s/base", "k8s/overlays/job", "k8s/overlays/sharded"] {
        let egress = assert_network_policy(overlay, &render(overlay));
        assert!(
            !egress.contains(&("TCP".into(), 4317)),
            "{overlay}: OTLP only with the component"
        );
    }
}

/// The otlp component on top of the job overlay (composed in a scratch kustomization).
#[test]
fn otlp_component_opens_egress_and_sets_the_endpoint() {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("k8s-otlp");
    std::fs::create_dir_all(&tmp).expect("scratch dir");
    let rel = tmp
        .strip_prefix(root())
        .expect("target dir inside the repository");
    let up = "../".repeat(rel.components().count());
    std::fs::write(
        tmp.join("kustomization.yaml"),
        format!("resources: [{up}k8s/overlays/job]\ncomponents: [{up}k8s/components/otlp]\n"),
    )
    .expect("write kustomization");
    let docs = kustomize(&tmp);
    let egress = assert_network_policy("job+otlp", &docs);
    assert!(egress.contains(&("TCP".into(), 4317)));
    let job = one(&docs, "Job", "soakd");
    let c = soakd_container(&job["spec"]["template"]["spec"]).expect("soakd container");
    let endpoint = env_value(c, "SOAKD__OTLP__ENDPOINT").expect("endpoint env")["value"]
        .as_str()
        .expect("string");
    assert!(endpoint.ends_with(":4317"), "{endpoint}");
}

/// The upstream component on top of the job overlay: the listen address, the container port,
/// the Service and the NetworkPolicy's ingress from the proxy agree on one port.
#[test]
fn upstream_component_serves_the_proxy_on_one_port() {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("k8s-upstream");
    std::fs::create_dir_all(&tmp).expect("scratch dir");
    let rel = tmp
        .strip_prefix(root())
        .expect("target dir inside the repository");
    let up = "../".repeat(rel.components().count());
    std::fs::write(
        tmp.join("kustomization.yaml"),
        format!("resources: [{up}k8s/overlays/job]\ncomponents: [{up}k8s/components/upstream]\n"),
    )
    .expect("write kustomization");
    let docs = kustomize(&tmp);
    let job = one(&docs, "Job", "soakd");
    let c = soakd_container(&job["spec"]["template"]["spec"]).expect("soakd container");
    let listen = env_value(c, "SOAKD__UPSTREAM__LISTEN").expect("listen env")["value"]
        .as_str()
        .expect("string")
        .to_string();
    let port: u64 = listen.rsplit(':').next().unwrap().parse().expect("a port");
    let container_port = c["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == "upstream")
        .expect("an upstream container port");
    assert_eq!(container_port["containerPort"].as_u64(), Some(port));
    let svc = one(&docs, "Service", "soakd-upstream");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "upstream");
    assert_eq!(svc["spec"]["ports"][0]["port"].as_u64(), Some(port));
    // The Service selects the soakd pod.
    let labels = &job["spec"]["template"]["metadata"]["labels"];
    for (k, v) in svc["spec"]["selector"].as_object().expect("selector") {
        assert_eq!(&labels[k], v, "selector {k}");
    }
    let np = one(&docs, "NetworkPolicy", "soakd");
    let opened = np["spec"]["ingress"]
        .as_array()
        .expect("ingress")
        .iter()
        .any(|r| {
            !r["from"].is_null()
                && r["ports"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["port"].as_u64() == Some(port)))
        });
    assert!(
        opened,
        "ingress to {port} from the proxy's pods: {}",
        np["spec"]
    );
    // The config agrees: soakd serves the upstream only with a target (the proxy).
    let cfg = read("config/kubernetes.toml");
    assert!(
        cfg.contains("[target]") && cfg.contains("url"),
        "config/kubernetes.toml names the proxy"
    );
}

#[test]
fn no_secret_values_in_any_output() {
    for (overlay, docs) in all_rendered() {
        for s in of_kind(&docs, "Secret") {
            assert!(
                s["data"].is_null() && s["stringData"].is_null(),
                "{overlay}: Secret {} carries data",
                name(s)
            );
        }
        // And no API key inlined into a container's env.
        for (_, tpl) in pod_templates(&docs) {
            for c in containers(&tpl["spec"]) {
                for e in c["env"].as_array().into_iter().flatten() {
                    let n = e["name"].as_str().unwrap_or_default().to_ascii_lowercase();
                    assert!(
                        !n.contains("api_key") || e["value"].is_null(),
                        "{overlay}: {n}"
                    );
                }
            }
        }
    }
}

/// The configs agree with the manifests: admin port, secret path, writable summary path.
#[test]
fn config_files_agree_with_the_manifests() {
    let base = render("k8s/base");
    let cm = of_kind(&base, "ConfigMap")
        .into_iter()
        .find(|c| name(c).starts_with("soakd-config"))
        .expect("soakd-config");
    assert_eq!(cm["data"]["soakd.toml"], read("config/kubernetes.toml"));
    // The final state is scraped: the linger covers at least two 15 s PodMonitor scrapes,
    // and a SIGTERM'd pod has time to drain, summarise and linger before it is killed.
    let [drain, _, _, linger] = run_times();
    assert!(linger >= Duration::from_secs(30), "run.linger {linger:?}");
    for overlay in ["k8s/base", "k8s/overlays/job", "k8s/overlays/sharded"] {
        for (obj, tpl) in pod_templates(&render(overlay)) {
            let kill = tpl["spec"]["terminationGracePeriodSeconds"]
                .as_u64()
                .unwrap_or(30);
            assert!(
                kill >= (drain + linger).as_secs() + 10,
                "{overlay} {}: terminationGracePeriodSeconds {kill} must cover run.grace \
                 {drain:?} + run.linger {linger:?} + 10 s",
                name(obj)
            );
        }
    }
    for (file, in_pod) in [
        ("config/kubernetes.toml", false),
        ("k8s/overlays/sidecar/soakd-sidecar.toml", true),
    ] {
        let c = toml_config(file);
        let get = |k: &str| {
            c.get_string(k)
                .unwrap_or_else(|e| panic!("{file}: {k}: {e}"))
        };
        assert_eq!(
            get("admin.listen"),
            format!("0.0.0.0:{METRICS_PORT}"),
            "{file}"
        );
        assert!(
            get("target.api_key_file").starts_with("/var/run/secrets/soakd/"),
            "{file}"
        );
        assert!(
            get("run.summary_json").starts_with("/tmp/"),
            "{file}: root fs is read-only"
        );
        assert_eq!(
            get("run.duration"),
            "forever",
            "{file}: open-ended unless overridden"
        );
        assert_eq!(get("log.format"), "json", "{file}");
        let target = url::Url::parse(&get("target.url")).expect("target url");
        let procs = c.get_array("monitor.processes").expect("monitor.processes");
        let first = procs[0].clone().into_table().expect("process table");
        if in_pod {
            assert_eq!(target.host_str(), Some("127.0.0.1"), "{file}");
            assert!(first.contains_key("match_cmdline"), "{file}");
        } else {
            assert_eq!(
                target.port(),
                Some(8080),
                "{file}: NetworkPolicy opens 8080"
            );
            assert!(first.contains_key("scrape_url"), "{file}");
        }
    }
}

#[test]
fn dockerfile_matches_the_manifests() {
    let df = read("Dockerfile");
    let has = |line: &str| df.lines().any(|l| l.trim() == line);
    assert!(has("FROM rust:1-bookworm AS build"));
    assert!(has("FROM gcr.io/distroless/cc-debian12:nonroot"));
    assert!(df.contains("cargo build --release --locked"));
    assert!(has("USER 65532:65532"));
    assert!(has(&format!("EXPOSE {METRICS_PORT}")));
    assert!(has(r#"ENTRYPOINT ["/usr/local/bin/soakd"]"#));
    // The image's default command is the one every manifest runs.
    assert!(has(r#"CMD ["run", "--config", "/etc/soakd/soakd.toml"]"#));
    assert!(read(".dockerignore").lines().any(|l| l.trim() == "target/"));
}

/// Writes the core kinds of `docs` to a file and runs `kubernetes-validate --strict` on it.
fn kubernetes_validate(label: &str, docs: &[Value]) -> (bool, String, usize) {
    const CORE: &[&str] = &[
        "Deployment",
        "Job",
        "Service",
        "ConfigMap",
        "ServiceAccount",
        "NetworkPolicy",
        "Namespace",
    ];
    let core: Vec<&Value> = docs.iter().filter(|d| CORE.contains(&kind(d))).collect();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("k8s-validate");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let file = dir.join(format!("{}.yaml", label.replace('/', "_")));
    let text: Vec<String> = core.iter().map(|d| d.to_string()).collect();
    std::fs::write(&file, text.join("\n---\n")).expect("write manifests");
    let out = run(
        Command::new("kubernetes-validate")
            .args(["--strict", "--kubernetes-version", K8S_VERSION])
            .arg(&file),
        "install it with `pip install kubernetes-validate`",
    );
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report, core.len())
}

#[test]
fn core_kinds_pass_kubernetes_validate_strict() {
    for (overlay, docs) in all_rendered() {
        let (ok, report, n) = kubernetes_validate(overlay, &docs);
        assert!(
            ok,
            "{overlay} failed kubernetes-validate --strict:\n{report}"
        );
        let passed = report.matches("passed for resource").count();
        assert_eq!(
            passed, n,
            "{overlay}: validated {passed} of {n} documents:\n{report}"
        );
        assert!(n >= 6, "{overlay}: only {n} core objects");
    }
    // The validator really is strict: an unknown field in a pod spec fails.
    let mut docs = render("k8s/base");
    let dep = docs
        .iter_mut()
        .find(|d| kind(d) == "Deployment")
        .expect("deployment");
    dep["spec"]["template"]["spec"]["bogusField"] = Value::Bool(true);
    let (ok, report, _) = kubernetes_validate("negative-control", &docs);
    assert!(
        !ok,
        "kubernetes-validate accepted an unknown field:\n{report}"
    );
    assert!(report.contains("bogusField"), "{report}");
}
