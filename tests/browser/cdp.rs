//! Headless Chromium driven over the DevTools protocol through `--remote-debugging-pipe`.
//!
//! Why the pipe: no port to pick or leak, no WebSocket client to carry, and the protocol is
//! plain JSON messages separated by NUL bytes on file descriptors 3 (to Chromium) and 4
//! (from Chromium). Console errors are read as protocol events (`Runtime.consoleAPICalled`
//! of type error/assert, `Runtime.exceptionThrown`, `Log.entryAdded` of level error), which,
//! unlike Chromium's stderr log, carry the page they came from and do not depend on logging
//! flags. Every wait has a deadline; the browser is killed when the handle drops.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The Chromium binary: `$CHROMIUM`, else `chromium` on PATH (Debian's package).
fn chromium_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(p);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("chromium"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "chromium not found on PATH: install the Debian package `chromium` \
             (scripts/test.sh does) or set CHROMIUM=/path/to/chromium"
        )
    })
}

/// A running headless Chromium.
pub struct Browser {
    child: Child,
    to: File,
    from: Receiver<Value>,
    next_id: u64,
    /// Every event received, in order.
    pub events: Arc<Mutex<Vec<Value>>>,
    profile: PathBuf,
    stderr_path: PathBuf,
}

/// One tab, attached with a flat session.
pub struct Tab {
    pub session: String,
}

fn pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    (fds[0], fds[1])
}

impl Browser {
    /// Starts Chromium with a fresh profile under `dir`.
    pub fn launch(dir: &Path) -> Browser {
        let profile = dir.join("chromium-profile");
        std::fs::create_dir_all(&profile).unwrap();
        let stderr_path = dir.join("chromium.stderr");
        // to_chromium: we write [1], Chromium reads [0] as fd 3; from_chromium: it writes [1]
        // as fd 4, we read [0].
        let (to_read, to_write) = pipe();
        let (from_read, from_write) = pipe();
        let mut cmd = Command::new(chromium_bin());
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&stderr_path).unwrap());
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Move both ends above 3/4 first, so placing one cannot overwrite the other.
                let a = libc::fcntl(to_read, libc::F_DUPFD, 10);
                let b = libc::fcntl(from_write, libc::F_DUPFD, 10);
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start chromium: {e}"));
        // SAFETY: the parent's ends, owned from here on; the child's ends are closed below.
        let to = unsafe { File::from_raw_fd(to_write) };
        let from = unsafe { File::from_raw_fd(from_read) };
        unsafe {
            libc::close(to_read);
            libc::close(from_write);
        }
        let (tx, rx) = mpsc::channel();
        let events = Arc::new(Mutex::new(Vec::new()));
        let ev = events.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(from);
            loop {
                let mut buf = Vec::new();
                match r.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                if buf.last() == Some(&0) {
                    buf.pop();
                }
                let Ok(msg) = serde_json::from_slice::<Value>(&buf) else {
                    continue;
                };
                if msg.get("id").is_some() {
                    if tx.send(msg).is_err() {
                        break;
                    }
                } else {
                    ev.lock().unwrap().push(msg);
                }
            }
        });
        Browser {
            child,
            to,
            from: rx,
            next_id: 0,
            events,
            profile,
            stderr_path,
        }
    }

    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Sends one command (to the browser, or to a tab's session) and waits for its answer.
    pub fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to
            .write_all(&bytes)
            .unwrap_or_else(|e| panic!("{method}: {e}\n{}", self.stderr_tail()));
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.from.recv_timeout(left) {
                Ok(m) if m["id"] == id => {
                    if let Some(e) = m.get("error") {
                        panic!("{method} failed: {e}");
                    }
                    return m["result"].clone();
                }
                Ok(_) => {}
                Err(_) => panic!(
                    "{method}: no answer within {CALL_TIMEOUT:?}\n{}",
                    self.stderr_tail()
                ),
            }
        }
    }

    /// Opens a tab at about:blank with the Runtime, Log, Page and Network domains on and a
    /// 1400 px wide viewport.
    pub fn tab(&mut self) -> Tab {
        let target = self.call(None, "Target.createTarget", json!({ "url": "about:blank" }));
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        );
        let session = attached["sessionId"].as_str().unwrap().to_string();
        for domain in [
            "Runtime.enable",
            "Log.enable",
            "Page.enable",
            "Network.enable",
        ] {
            self.call(Some(&session), domain, json!({}));
        }
        self.call(
            Some(&session),
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": false }),
        );
        Tab { session }
    }

    /// Navigates and waits for the load event.
    pub fn navigate(&mut self, tab: &Tab, url: &str) {
        let before = self.events.lock().unwrap().len();
        let r = self.call(Some(&tab.session), "Page.navigate", json!({ "url": url }));
        assert!(r.get("errorText").is_none(), "navigate {url}: {r}");
        self.wait_event(tab, "Page.loadEventFired", before, Duration::from_secs(30));
    }

    fn wait_event(&self, tab: &Tab, method: &str, from: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let ev = self.events.lock().unwrap();
                if ev[from..]
                    .iter()
                    .any(|e| e["method"] == method && e["sessionId"] == tab.session.as_str())
                {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "no {method} within {timeout:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Evaluates `expr` in the tab and returns its JSON value.
    pub fn eval(&mut self, tab: &Tab, expr: &str) -> Value {
        let r = self.call(
            Some(&tab.session),
            "Runtime.evaluate",
            json!({ "expression": expr, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expr} threw: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Polls `expr` every 200 ms until it is `true`, or panics after `timeout` with `what`.
    pub fn wait_true(&mut self, tab: &Tab, expr: &str, timeout: Duration, what: &str) {
        let deadline = Instant::now() + timeout;
        while self.eval(tab, expr) != json!(true) {
            assert!(
                Instant::now() < deadline,
                "{what}: not true within {timeout:?}: {expr}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Console errors, uncaught exceptions and error log entries of the tab so far.
    pub fn console_errors(&self, tab: &Tab) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["sessionId"] == tab.session.as_str())
            .filter(|e| match e["method"].as_str() {
                Some("Runtime.consoleAPICalled") => {
                    matches!(e["params"]["type"].as_str(), Some("error" | "assert"))
                }
                Some("Runtime.exceptionThrown") => true,
                Some("Log.entryAdded") => e["params"]["entry"]["level"] == "error",
                _ => false,
            })
            .cloned()
            .collect()
    }

    /// URLs the tab requested.
    pub fn requests(&self, tab: &Tab) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| {
                e["sessionId"] == tab.session.as_str() && e["method"] == "Network.requestWillBeSent"
            })
            .filter_map(|e| e["params"]["request"]["url"].as_str().map(String::from))
            .collect()
    }

    /// A PNG of the whole page, written to `path`.
    pub fn screenshot(&mut self, tab: &Tab, path: &Path) {
        let m = self.call(Some(&tab.session), "Page.getLayoutMetrics", json!({}));
        let h = m["cssContentSize"]["height"]
            .as_f64()
            .unwrap_or(1000.0)
            .ceil();
        self.call(
            Some(&tab.session),
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 1400, "height": h, "deviceScaleFactor": 1, "mobile": false }),
        );
        let shot = self.call(
            Some(&tab.session),
            "Page.captureScreenshot",
            json!({ "format": "png", "captureBeyondViewport": true }),
        );
        let png = base64_decode(shot["data"].as_str().unwrap());
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
        self.call(
            Some(&tab.session),
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": false }),
        );
    }

    /// Closes the browser and waits for it.
    pub fn close(mut self) {
        self.next_id += 1;
        let msg = format!("{{\"id\":{},\"method\":\"Browser.close\"}}\0", self.next_id);
        let _ = self.to.write_all(msg.as_bytes());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Standard base64 (with padding), as in `Page.captureScreenshot`'s `data`.
pub fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let bytes: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let data: Vec<u8> = chunk.iter().copied().filter(|&c| c != b'=').collect();
        let mut n = 0u32;
        for (i, &c) in data.iter().enumerate() {
            n |= val(c) << (18 - 6 * i);
        }
        let take = data.len().saturating_sub(1);
        out.extend_from_slice(&n.to_be_bytes()[1..1 + take]);
    }
    out
}

#[test]
fn base64_round_trips_known_values() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGVsbG8hIQ=="), b"hello!!");
    assert_eq!(base64_decode("YWJj"), b"abc");
}
