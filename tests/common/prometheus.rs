//! A real Prometheus for integration tests: found on PATH (Debian package `prometheus`,
//! installed by `scripts/test.sh`) or a hard failure naming the package; started on a free
//! loopback port with its own data directory; killed on drop.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{try_http_get, Proc};

/// The path of `name`, looked up on PATH and in /usr/bin; panics naming the Debian package.
pub fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` not found: install the Debian package `{package}` \
                 (apt-get install {package}; scripts/test.sh does it)"
            )
        })
}

/// A free loopback port: bound on 127.0.0.1:0, then released for a program that wants a port
/// number rather than a listener.
pub fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr")
}

/// Runs `bin args…` to completion within `timeout`; panics with its output when it fails.
pub fn run_tool(bin: &Path, args: &[&str], timeout: Duration) -> String {
    let mut p = Proc::spawn(&bin.display().to_string(), {
        let mut c = Command::new(bin);
        c.args(args);
        c
    });
    let st = p.wait(timeout);
    assert!(
        st.success(),
        "{} {args:?} failed: {st:?}\nstdout:\n{}\nstderr:\n{}",
        bin.display(),
        p.stdout_text(),
        p.stderr_text()
    );
    p.stdout_text()
}

/// A running Prometheus.
pub struct Prometheus {
    pub proc: Proc,
    pub addr: SocketAddr,
}

impl Prometheus {
    /// Starts Prometheus with `config_yml` (written into `dir`) on the TSDB at `tsdb` (created
    /// when missing; blocks already there are served) with a 100-year retention, so backfilled
    /// history is never dropped; waits until `/-/ready` answers 200.
    pub fn start(dir: &Path, config_yml: &str, tsdb: &Path) -> Prometheus {
        let bin = tool("prometheus", "prometheus");
        let cfg = dir.join("prometheus.yml");
        std::fs::write(&cfg, config_yml).expect("write prometheus.yml");
        std::fs::create_dir_all(tsdb).expect("mkdir tsdb");
        let addr = free_port();
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", tsdb.display()))
            .arg("--storage.tsdb.retention.time=100y")
            .arg(format!("--web.listen-address={addr}"));
        let proc = Proc::spawn("prometheus", cmd);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((200, _)) = try_http_get(addr, "/-/ready") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready on {addr} within 60s\nstderr:\n{}",
                proc.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Prometheus { proc, addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}
