//! Helpers for integration tests that run the real `soakd` binary and its mock over loopback.
//!
//! Every process started here is killed when its handle drops, every wait has a deadline, and
//! every address is 127.0.0.1.
#![allow(dead_code)]

pub mod nginx;
pub mod pki;
pub mod prometheus;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn soakd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_soakd")
}

/// The library's scratch directory (`src/scratch.rs`, compiled into the tests from its source
/// because the library builds it only for its own unit tests): fresh per test, removed on drop.
#[path = "../../src/scratch.rs"]
mod scratch;
pub use scratch::ScratchDir as TempDir;

/// A child process whose stdout and stderr lines are collected by reader threads.
pub struct Proc {
    pub child: Child,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
    lines: mpsc::Receiver<String>,
    name: String,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let (tx, rx) = mpsc::channel();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        collect(child.stdout.take().unwrap(), stdout.clone(), tx.clone());
        collect(child.stderr.take().unwrap(), stderr.clone(), tx);
        Proc {
            child,
            stdout,
            stderr,
            lines: rx,
            name: name.to_string(),
        }
    }

    /// Waits for an output line containing `needle` and returns it.
    pub fn wait_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!(
                    "{}: no line containing {needle:?} within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                    self.name,
                    self.stdout.lock().unwrap().join("\n"),
                    self.stderr.lock().unwrap().join("\n")
                ),
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on a child we own.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }

    /// Waits for exit, panicking after `timeout` (the child is then killed by drop).
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                // Let the reader threads drain the pipes.
                std::thread::sleep(Duration::from_millis(100));
                return st;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not exit within {timeout:?}\nstderr:\n{}",
                    self.name,
                    self.stderr_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stdout_text(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(
    pipe: impl Read + Send + 'static,
    sink: Arc<Mutex<Vec<String>>>,
    tx: mpsc::Sender<String>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line.clone());
            let _ = tx.send(line);
        }
    });
}

/// The embedded mock as a separate process on a free loopback port.
pub struct Mock {
    pub proc: Proc,
    pub addr: SocketAddr,
}

impl Mock {
    pub fn start(args: &[&str]) -> Mock {
        let mut cmd = Command::new(soakd_bin());
        cmd.arg("mock")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(args);
        cmd.env("RUST_LOG", "warn");
        let mut proc = Proc::spawn("soakd mock", cmd);
        let line = proc.wait_line("listening on http://", Duration::from_secs(20));
        let addr = line
            .rsplit("http://")
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        Mock { proc, addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A mock that answers in a few milliseconds (first token at 2 ms, 4 chunks 1 ms apart),
    /// with `extra` flags (leaks, sawtooth…) on top.
    pub fn quick(extra: &[&str]) -> Mock {
        let mut args = vec!["--ttft", "2ms", "--chunk-delay", "1ms", "--chunks", "4"];
        args.extend_from_slice(extra);
        Mock::start(&args)
    }
}

/// A soak config that drives `mock` at `rate` rps of 4-token chat completions (constant
/// arrivals) and watches it by pid as process `target`; `monitor` is the body of the
/// `[monitor]` section (its windows, sample interval, thresholds). Text appended after it
/// can add tables such as another `[[monitor.processes]]` entry.
pub fn watch_mock_toml(mock: &Mock, rate: f64, monitor: &str) -> String {
    format!(
        r#"
[run]
grace = "3s"

[target]
url = "{url}"

[load]
rate = {rate:?}
arrivals = "constant"

[[scenarios]]
name = "chat"
api = "openai"
max_tokens = 4

[log]
progress_interval = "off"

[monitor]
{monitor}

[[monitor.processes]]
name = "target"
pid = {pid}
"#,
        url = mock.url(),
        pid = mock.proc.pid()
    )
}

/// `soakd run` with a config file written from `toml`.
pub struct Run {
    pub proc: Proc,
    pub dir: TempDir,
    pub summary_path: PathBuf,
}

impl Run {
    /// Starts `soakd run --config <toml>` with the admin server on a free port and a summary
    /// file; `extra` are more command-line arguments.
    pub fn start(toml: &str, extra: &[&str]) -> Run {
        Self::start_env(toml, extra, &[])
    }

    pub fn start_env(toml: &str, extra: &[&str], env: &[(&str, &str)]) -> Run {
        Self::start_with(Some(toml), extra, env)
    }

    /// Starts `soakd run` without `--config` (flags and environment only), with the admin
    /// server on a free port and a summary file.
    pub fn start_cli(args: &[&str], env: &[(&str, &str)]) -> Run {
        Self::start_with(None, args, env)
    }

    fn start_with(toml: Option<&str>, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let dir = TempDir::new("run");
        let summary_path = dir.path().join("summary.json");
        let mut cmd = Command::new(soakd_bin());
        cmd.arg("run");
        if let Some(toml) = toml {
            cmd.arg("--config").arg(dir.write("soakd.toml", toml));
        }
        if !extra.contains(&"--admin-listen") {
            cmd.args(["--admin-listen", "127.0.0.1:0"]);
        }
        cmd.args(extra)
            .env("SOAKD__RUN__SUMMARY_JSON", &summary_path)
            .env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run {
            proc: Proc::spawn("soakd run", cmd),
            dir,
            summary_path,
        }
    }

    /// Waits for the admin server and returns its address.
    /// Everything the run printed, stdout (the summary) then stderr (the log), for a
    /// failure message.
    pub fn output(&self) -> String {
        format!("{}\n{}", self.proc.stdout_text(), self.proc.stderr_text())
    }

    pub fn admin_addr(&mut self) -> SocketAddr {
        let line = self
            .proc
            .wait_line("admin server listening on http://", Duration::from_secs(30));
        let tail = line.rsplit("http://").next().unwrap();
        let addr: String = tail
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
            .collect();
        addr.parse().unwrap()
    }

    /// For a run with `[run] linger` set: waits until it lingers (its summary printed and
    /// written), reads `/metrics` and `/status` there — the final state, which stays put until
    /// the linger ends — then ends the linger with SIGTERM. Returns (metrics, status JSON);
    /// [`Run::finish`] then reads the exit code and the summary.
    pub fn final_state(
        &mut self,
        admin: SocketAddr,
        timeout: Duration,
    ) -> (String, serde_json::Value) {
        self.proc.wait_line("lingering", timeout);
        let (_, metrics) = http_get(admin, "/metrics");
        let (_, status) = http_get(admin, "/status");
        self.proc.signal(libc::SIGTERM);
        (metrics, serde_json::from_str(&status).unwrap())
    }

    /// Waits for exit and reads the JSON summary.
    pub fn finish(&mut self, timeout: Duration) -> (ExitStatus, serde_json::Value) {
        let st = self.proc.wait(timeout);
        let text = std::fs::read_to_string(&self.summary_path).unwrap_or_else(|e| {
            panic!(
                "no summary at {} ({e}); exit {st:?}\nstderr:\n{}",
                self.summary_path.display(),
                self.proc.stderr_text()
            )
        });
        (st, serde_json::from_str(&text).unwrap())
    }
}

/// A GET over loopback with reqwest; returns (status, body), or the transport error. 20 s at
/// most (a Prometheus range query on a loaded machine included).
pub fn try_http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), reqwest::Error> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .no_proxy()
        .build()?;
    let resp = client.get(format!("http://{addr}{path}")).send()?;
    let status = resp.status().as_u16();
    Ok((status, resp.text()?))
}

/// A GET over loopback; returns (status, body). Panics when the server cannot be reached.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    try_http_get(addr, path).unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}"))
}

/// Polls `GET path` until it answers 200 or the timeout passes.
pub fn wait_http_ok(addr: SocketAddr, path: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok((200, body)) = try_http_get(addr, path) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} on {addr} not ready in {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Polls `check` every 100 ms until it returns `Ok`, and returns its value; panics after
/// `timeout` naming `what` (the condition the test waits for) and the last `Err` (what was
/// seen instead). Tests wait for what they need with this instead of sleeping a fixed time.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) => assert!(
                Instant::now() < deadline,
                "{what}: not within {timeout:?}; last: {last}"
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sum of the samples of `name` whose labels contain every `k="v"` in `labels`, parsed with
/// soakd's own exposition parser (which also rejects a malformed exposition).
pub fn metric_sum(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut sum = 0.0;
    soakd::monitor::expo::parse(exposition, |s| {
        let ok = s.name == name
            && labels
                .iter()
                .all(|(k, v)| s.labels.split(',').any(|p| p == format!("{k}=\"{v}\"")));
        if ok {
            sum += s.value;
        }
    })
    .unwrap_or_else(|e| panic!("malformed exposition: {e}"));
    sum
}

/// `summary[path…]` as u64, 0 when absent.
pub fn count(v: &serde_json::Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(n) => cur = n,
            None => return 0,
        }
    }
    cur.as_u64().unwrap_or(0)
}

/// `summary[path…]` as f64.
pub fn num(v: &serde_json::Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for p in path {
        cur = cur
            .get(p)
            .unwrap_or_else(|| panic!("no {path:?} in summary: {v}"));
    }
    cur.as_f64()
        .unwrap_or_else(|| panic!("{path:?} is not a number: {cur}"))
}

/// The names of the thresholds a run summary reports as failed.
pub fn failed_thresholds(summary: &serde_json::Value) -> Vec<&str> {
    summary["thresholds"]
        .as_array()
        .unwrap_or_else(|| panic!("no thresholds in summary: {summary}"))
        .iter()
        .filter(|t| t["status"] == "fail")
        .map(|t| t["name"].as_str().unwrap())
        .collect()
}

/// The monitor's report of process `name` in a run summary.
pub fn process<'a>(summary: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    summary["monitor"]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no process {name} in {}", summary["monitor"]))
}

/// Window `w` (its label) of a process report.
pub fn window<'a>(p: &'a serde_json::Value, w: &str) -> &'a serde_json::Value {
    p["windows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["window"] == w)
        .unwrap_or_else(|| panic!("no window {w} in {p}"))
}
