//! A real nginx on loopback for a test: TLS, HTTP/2, and reverse-proxy routes to soakd's mock.
//!
//! [`NginxConfig`] describes upstream groups, servers (each with one `listen` on its own free
//! 127.0.0.1 port, optionally `ssl` and/or `http2`) and locations with arbitrary directives;
//! [`Nginx::start`] renders it into a [`TempDir`] and runs
//! `nginx -p DIR -c DIR/nginx.conf -e stderr -g 'daemon off;'` in its own process group.
//!
//! Rules the harness keeps:
//! - nginx runs as the current user: the `pid` file, lock file, logs and every temp path
//!   (`client_body_temp_path`, `proxy_temp_path`, and the fastcgi/uwsgi/scgi ones when the
//!   binary has those modules) live in the TempDir; as root it says `user root root;` so the
//!   worker can write there too. No root-owned directory is touched.
//! - One worker process, so `$connection` serial numbers are one sequence.
//! - Ports: each server's port is picked by binding 127.0.0.1:0 and releasing it; if nginx
//!   then cannot bind (another process took the port), the start is retried with new ports,
//!   three times at most.
//! - Ready means every listen port accepts a TCP connection (within 10 s); an nginx that
//!   exits first fails the test with its stderr.
//! - On drop: SIGTERM to the master (a fast shutdown that waits for the worker), up to 5 s,
//!   then SIGKILL to the process group nginx was started in (only processes this harness
//!   started are in it).
//! - The access log uses the JSON `log_format` [`LOG_FORMAT`] (every field a string, empty
//!   when nginx has no value), read back as [`AccessEntry`]; the error log is at `info` level
//!   unless [`NginxConfig::error_log_level`] says otherwise.
//!
//! The binary is `nginx` on PATH, else `/usr/sbin/nginx` (Debian's `nginx-light`, installed
//! by `scripts/test.sh`); neither is a hard failure.
//!
//! nginx 1.22 notes: HTTP/2 is a `listen` parameter (`listen … ssl http2;`; there is no
//! `http2 on;`); a plain `listen … http2;` speaks h2c with prior knowledge only (an HTTP/1.1
//! request there fails), so HTTP/1.1 and h2c need separate servers.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{Proc, TempDir};

/// Name of the access-log format the harness defines.
pub const LOG_FORMAT: &str = "soakd";

/// The access-log fields: JSON key and nginx variable. [`AccessEntry`] reads them back.
pub const LOG_FIELDS: &[(&str, &str)] = &[
    ("msec", "$msec"),
    ("port", "$server_port"),
    ("protocol", "$server_protocol"),
    ("alpn", "$ssl_alpn_protocol"),
    ("ssl_protocol", "$ssl_protocol"),
    ("connection", "$connection"),
    ("connection_requests", "$connection_requests"),
    ("method", "$request_method"),
    ("uri", "$request_uri"),
    ("status", "$status"),
    ("request_time", "$request_time"),
    ("request_completion", "$request_completion"),
    ("bytes_sent", "$bytes_sent"),
    ("upstream_addr", "$upstream_addr"),
    ("upstream_status", "$upstream_status"),
    ("upstream_response_time", "$upstream_response_time"),
];

/// The nginx binary: `nginx` on PATH, else `/usr/sbin/nginx`; panics when neither exists.
pub fn nginx_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let on_path = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("nginx"))
                .find(|p| p.is_file())
        });
        let bin = on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"));
        assert!(
            bin.is_file(),
            "nginx not found on PATH nor at /usr/sbin/nginx: install Debian's nginx-light \
             (scripts/test.sh does)"
        );
        bin
    })
    .clone()
}

/// `nginx -V` output (it prints to stderr), for the module list.
fn nginx_build_info() -> &'static str {
    static INFO: OnceLock<String> = OnceLock::new();
    INFO.get_or_init(|| {
        let out = Command::new(nginx_bin())
            .arg("-V")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {} -V: {e}", nginx_bin().display()));
        String::from_utf8_lossy(&out.stderr).into_owned()
    })
}

fn has_module(name: &str) -> bool {
    !nginx_build_info().contains(&format!("--without-http_{name}_module"))
}

/// Appends `;` unless the directive already ends a statement or a block.
fn statement(d: &str) -> String {
    let d = d.trim();
    if d.ends_with(';') || d.ends_with('}') {
        d.to_string()
    } else {
        format!("{d};")
    }
}

/// An `upstream NAME { … }` group.
#[derive(Clone, Debug)]
pub struct Upstream {
    name: String,
    servers: Vec<String>,
    directives: Vec<String>,
}

impl Upstream {
    /// An empty group; `proxy_pass http://NAME` reaches it.
    pub fn new(name: &str) -> Upstream {
        Upstream {
            name: name.to_string(),
            servers: Vec::new(),
            directives: Vec::new(),
        }
    }

    /// `server ADDR;`
    pub fn server(self, addr: impl std::fmt::Display) -> Upstream {
        self.server_with(addr, "")
    }

    /// `server ADDR PARAMS;` (e.g. `max_fails=0`, `backup`).
    pub fn server_with(mut self, addr: impl std::fmt::Display, params: &str) -> Upstream {
        self.servers
            .push(format!("server {addr} {params}").trim().to_string());
        self
    }

    /// Any other directive in the block (`keepalive 16`, `least_conn`, …).
    pub fn directive(mut self, d: &str) -> Upstream {
        self.directives.push(d.to_string());
        self
    }
}

/// A `location PATH { … }` block.
#[derive(Clone, Debug)]
pub struct Location {
    path: String,
    directives: Vec<String>,
}

impl Location {
    /// An empty location (`PATH` may carry a modifier: `= /x`, `~ ^/v1/`).
    pub fn new(path: &str) -> Location {
        Location {
            path: path.to_string(),
            directives: Vec::new(),
        }
    }

    /// A location that starts with `proxy_pass TARGET` (`http://UPSTREAM` or a URL).
    pub fn proxy(path: &str, target: &str) -> Location {
        Location::new(path).directive(&format!("proxy_pass {target}"))
    }

    /// Any directive (`proxy_buffering off`, `proxy_read_timeout 5s`, `return 503`, …).
    pub fn directive(mut self, d: &str) -> Location {
        self.directives.push(d.to_string());
        self
    }
}

/// A `server { … }` with one `listen` on a port chosen at start.
#[derive(Clone, Debug)]
pub struct Server {
    tls: Option<(PathBuf, PathBuf)>,
    http2: bool,
    directives: Vec<String>,
    locations: Vec<Location>,
}

impl Server {
    /// Plain HTTP (HTTP/1.x; with [`Server::http2`], h2c by prior knowledge only).
    pub fn plain() -> Server {
        Server {
            tls: None,
            http2: false,
            directives: Vec::new(),
            locations: Vec::new(),
        }
    }

    /// HTTPS with this certificate chain and key (PEM files).
    pub fn tls(cert: &Path, key: &Path) -> Server {
        Server {
            tls: Some((cert.to_path_buf(), key.to_path_buf())),
            ..Server::plain()
        }
    }

    /// Adds `http2` to the `listen` (ALPN `h2` with TLS, h2c prior knowledge without).
    pub fn http2(mut self) -> Server {
        self.http2 = true;
        self
    }

    /// Any server-level directive (`keepalive_timeout 5s`, `http2_max_concurrent_streams 8`).
    pub fn directive(mut self, d: &str) -> Server {
        self.directives.push(d.to_string());
        self
    }

    /// Adds a location.
    pub fn location(mut self, l: Location) -> Server {
        self.locations.push(l);
        self
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// A whole nginx configuration, rendered at [`Nginx::start`].
#[derive(Clone, Debug)]
pub struct NginxConfig {
    main: Vec<String>,
    http: Vec<String>,
    upstreams: Vec<Upstream>,
    servers: Vec<Server>,
    error_log_level: String,
}

impl Default for NginxConfig {
    fn default() -> Self {
        NginxConfig {
            main: Vec::new(),
            http: Vec::new(),
            upstreams: Vec::new(),
            servers: Vec::new(),
            error_log_level: "info".into(),
        }
    }
}

impl NginxConfig {
    /// An empty config (add servers).
    pub fn new() -> NginxConfig {
        NginxConfig::default()
    }

    /// A main-context directive (`worker_shutdown_timeout 1s`).
    pub fn main_directive(mut self, d: &str) -> NginxConfig {
        self.main.push(d.to_string());
        self
    }

    /// An http-context directive (`keepalive_requests 5`, `proxy_read_timeout 3s`).
    pub fn http_directive(mut self, d: &str) -> NginxConfig {
        self.http.push(d.to_string());
        self
    }

    /// Adds an upstream group.
    pub fn upstream(mut self, u: Upstream) -> NginxConfig {
        self.upstreams.push(u);
        self
    }

    /// Adds a server; servers are numbered from 0 in the order added.
    pub fn server(mut self, s: Server) -> NginxConfig {
        self.servers.push(s);
        self
    }

    /// The `error_log` level (`debug` needs a `--with-debug` build, which Debian's is).
    pub fn error_log_level(mut self, level: &str) -> NginxConfig {
        self.error_log_level = level.to_string();
        self
    }

    /// The config text for a prefix directory and one port per server.
    pub fn render(&self, dir: &Path, ports: &[u16]) -> String {
        assert_eq!(ports.len(), self.servers.len(), "one port per server");
        let d = dir.display();
        let mut c = String::new();
        c.push_str("# generated by tests/common/nginx.rs\n");
        c.push_str("worker_processes 1;\n");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            // As root the worker would otherwise switch to `nobody`, which cannot write the
            // temp paths in the TempDir.
            c.push_str("user root root;\n");
        }
        writeln!(c, "pid {d}/nginx.pid;").unwrap();
        writeln!(c, "lock_file {d}/nginx.lock;").unwrap();
        writeln!(c, "error_log {d}/error.log {};", self.error_log_level).unwrap();
        for m in &self.main {
            writeln!(c, "{}", statement(m)).unwrap();
        }
        c.push_str("events {\n    worker_connections 1024;\n}\n");
        c.push_str("http {\n");
        c.push_str("    default_type application/octet-stream;\n");
        writeln!(c, "    client_body_temp_path {d}/tmp/client_body;").unwrap();
        for m in ["proxy", "fastcgi", "uwsgi", "scgi"] {
            if has_module(m) {
                writeln!(c, "    {m}_temp_path {d}/tmp/{m};").unwrap();
            }
        }
        let fields: Vec<String> = LOG_FIELDS
            .iter()
            .map(|(k, v)| format!("\"{k}\":\"{v}\""))
            .collect();
        writeln!(
            c,
            "    log_format {LOG_FORMAT} escape=json '{{{}}}';",
            fields.join(",")
        )
        .unwrap();
        writeln!(c, "    access_log {d}/access.log {LOG_FORMAT};").unwrap();
        for h in &self.http {
            writeln!(c, "    {}", statement(h)).unwrap();
        }
        for u in &self.upstreams {
            writeln!(c, "    upstream {} {{", u.name).unwrap();
            for s in &u.servers {
                writeln!(c, "        {};", s).unwrap();
            }
            for x in &u.directives {
                writeln!(c, "        {}", statement(x)).unwrap();
            }
            c.push_str("    }\n");
        }
        for (s, port) in self.servers.iter().zip(ports) {
            c.push_str("    server {\n");
            let mut listen = format!("listen 127.0.0.1:{port}");
            if s.tls.is_some() {
                listen.push_str(" ssl");
            }
            if s.http2 {
                listen.push_str(" http2");
            }
            writeln!(c, "        {listen};").unwrap();
            c.push_str("        server_name localhost;\n");
            if let Some((cert, key)) = &s.tls {
                writeln!(c, "        ssl_certificate {};", cert.display()).unwrap();
                writeln!(c, "        ssl_certificate_key {};", key.display()).unwrap();
            }
            for x in &s.directives {
                writeln!(c, "        {}", statement(x)).unwrap();
            }
            for l in &s.locations {
                writeln!(c, "        location {} {{", l.path).unwrap();
                for x in &l.directives {
                    writeln!(c, "            {}", statement(x)).unwrap();
                }
                c.push_str("        }\n");
            }
            c.push_str("    }\n");
        }
        c.push_str("}\n");
        c
    }
}

/// A free loopback port: bound to 127.0.0.1:0, then released.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A running nginx; stopped on drop.
pub struct Nginx {
    proc: Proc,
    dir: TempDir,
    ports: Vec<u16>,
    schemes: Vec<&'static str>,
    config: String,
}

impl Nginx {
    /// Renders `cfg` into a new TempDir and starts nginx, waiting until every port accepts.
    pub fn start(cfg: &NginxConfig) -> Nginx {
        assert!(!cfg.servers.is_empty(), "an nginx config needs a server");
        let dir = TempDir::new("nginx");
        for sub in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir_all(dir.path().join("tmp").join(sub)).unwrap();
        }
        let mut last_err = String::new();
        for _attempt in 0..3 {
            let ports: Vec<u16> = cfg.servers.iter().map(|_| free_port()).collect();
            let config = cfg.render(dir.path(), &ports);
            let conf_path = dir.write("nginx.conf", &config);
            let mut cmd = Command::new(nginx_bin());
            cmd.arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(&conf_path)
                .args(["-e", "stderr", "-g", "daemon off;"])
                .process_group(0);
            let mut proc = Proc::spawn("nginx", cmd);
            match wait_ready(&mut proc, &ports) {
                Ok(()) => {
                    return Nginx {
                        proc,
                        dir,
                        ports,
                        schemes: cfg.servers.iter().map(Server::scheme).collect(),
                        config,
                    }
                }
                Err(e) if e.contains("Address already in use") => last_err = e,
                Err(e) => panic!("nginx did not start: {e}\nconfig:\n{config}"),
            }
        }
        panic!("nginx could not bind its ports in 3 attempts: {last_err}");
    }

    /// Server `i`'s port.
    pub fn port(&self, i: usize) -> u16 {
        self.ports[i]
    }

    /// Server `i`'s address.
    pub fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports[i]))
    }

    /// Server `i`'s base URL, by IP: `https://127.0.0.1:PORT`.
    pub fn url(&self, i: usize) -> String {
        format!("{}://127.0.0.1:{}", self.schemes[i], self.ports[i])
    }

    /// The prefix directory (config, logs, pid, temp paths).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The rendered config, as nginx read it.
    pub fn config(&self) -> &str {
        &self.config
    }

    /// The master's pid.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Sends a signal to the master (`SIGHUP` reloads the config file in [`Nginx::dir`]).
    pub fn signal(&self, sig: i32) {
        self.proc.signal(sig);
    }

    /// nginx's own stderr (start-up messages; the rest goes to the error log).
    pub fn stderr(&self) -> String {
        self.proc.stderr_text()
    }

    /// The error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Waits until exactly `n` error-log lines contain `needle`; panics if there are more, or
    /// fewer by the deadline.
    pub fn wait_error_log(&self, needle: &str, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.error_log();
            let got = log.lines().filter(|l| l.contains(needle)).count();
            assert!(
                got <= n,
                "{got} error-log lines with {needle:?}, want {n}:\n{log}"
            );
            if got == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{got} of {n} error-log lines with {needle:?} within {timeout:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every access-log entry so far, in log order.
    pub fn access_log(&self) -> Vec<AccessEntry> {
        let text = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(AccessEntry::parse)
            .collect()
    }

    /// How many access-log entries there are now: pass it to [`Nginx::wait_access_since`] to
    /// see only the requests that come after.
    pub fn access_mark(&self) -> usize {
        self.access_log().len()
    }

    /// Waits until at least `n` entries follow `mark` and returns every entry after `mark`
    /// (nginx writes an entry when the request ends, which can be a moment after the client
    /// saw its last byte).
    pub fn wait_access_since(&self, mark: usize, n: usize, timeout: Duration) -> Vec<AccessEntry> {
        let deadline = Instant::now() + timeout;
        loop {
            let all = self.access_log();
            if all.len() >= mark + n {
                return all[mark..].to_vec();
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} access-log entries within {timeout:?}; error log:\n{}",
                all.len().saturating_sub(mark),
                self.error_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn wait_ready(proc: &mut Proc, ports: &[u16]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pending: Vec<u16> = ports.to_vec();
    while !pending.is_empty() {
        if let Some(st) = proc.child.try_wait().unwrap() {
            std::thread::sleep(Duration::from_millis(100));
            return Err(format!("exited with {st}; stderr:\n{}", proc.stderr_text()));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "ports {pending:?} not accepting within 10 s; stderr:\n{}",
                proc.stderr_text()
            ));
        }
        pending.retain(|p| {
            let a = SocketAddr::from(([127, 0, 0, 1], *p));
            TcpStream::connect_timeout(&a, Duration::from_millis(200)).is_err()
        });
        if !pending.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.proc.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.proc.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The master has not been reaped, so its pid (= the group id) is still ours.
        // SAFETY: kill(2) on the process group this harness created.
        unsafe {
            libc::kill(-(self.proc.pid() as libc::pid_t), libc::SIGKILL);
        }
    }
}

/// One access-log line.
#[derive(Clone, Debug)]
pub struct AccessEntry {
    /// `$server_port`: which server answered.
    pub port: u16,
    /// `$server_protocol`: `HTTP/1.1`, `HTTP/2.0`.
    pub protocol: String,
    /// `$ssl_alpn_protocol`: `h2`, `http/1.1`, or empty (no TLS or no ALPN).
    pub alpn: String,
    /// `$connection`: the connection's serial number.
    pub connection: u64,
    /// `$connection_requests`: requests made on the connection so far, this one included.
    pub connection_requests: u64,
    /// `$request_method`.
    pub method: String,
    /// `$request_uri`.
    pub uri: String,
    /// `$status`.
    pub status: u16,
    /// `$msec`: when the entry was written (the request's end), Unix seconds.
    pub msec: f64,
    /// `$request_time`: seconds from the first byte read from the client to the log write.
    pub request_time: f64,
    /// `$upstream_addr` (empty when nginx answered itself).
    pub upstream_addr: String,
    /// Every field as logged, the above included.
    pub fields: BTreeMap<String, String>,
}

impl AccessEntry {
    /// Parses one line of the [`LOG_FORMAT`] JSON.
    pub fn parse(line: &str) -> AccessEntry {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("access-log line is not JSON ({e}): {line}"));
        let fields: BTreeMap<String, String> = v
            .as_object()
            .unwrap_or_else(|| panic!("access-log line is not an object: {line}"))
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        let s = |k: &str| fields.get(k).cloned().unwrap_or_default();
        fn n<T: std::str::FromStr>(fields: &BTreeMap<String, String>, k: &str, line: &str) -> T {
            fields
                .get(k)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("access-log field {k} is not a number: {line}"))
        }
        AccessEntry {
            port: n(&fields, "port", line),
            protocol: s("protocol"),
            alpn: s("alpn"),
            connection: n(&fields, "connection", line),
            connection_requests: n(&fields, "connection_requests", line),
            method: s("method"),
            uri: s("uri"),
            status: n(&fields, "status", line),
            msec: n(&fields, "msec", line),
            request_time: n(&fields, "request_time", line),
            upstream_addr: s("upstream_addr"),
            fields,
        }
    }

    /// When nginx started reading the request (`msec - request_time`).
    pub fn started(&self) -> f64 {
        self.msec - self.request_time
    }
}

/// The distinct `$connection` values among `entries`.
pub fn connections(entries: &[AccessEntry]) -> BTreeSet<u64> {
    entries.iter().map(|e| e.connection).collect()
}

/// The most requests in progress at once on nginx's side, from start/end times in the log
/// (millisecond resolution; a request ending at the instant another starts does not overlap).
pub fn peak_concurrency(entries: &[AccessEntry]) -> usize {
    let ms = |t: f64| (t * 1000.0).round() as i64;
    let mut edges: Vec<(i64, i32)> = Vec::with_capacity(entries.len() * 2);
    for e in entries {
        edges.push((ms(e.started()), 1));
        edges.push((ms(e.msec), -1));
    }
    // Ends sort before starts at the same millisecond.
    edges.sort();
    let (mut cur, mut peak) = (0i32, 0i32);
    for (_, d) in edges {
        cur += d;
        peak = peak.max(cur);
    }
    peak as usize
}
