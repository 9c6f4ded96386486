"""Shared helpers of the soakd benchmarks in scripts/bench/ (python3 standard library only).

Every benchmark script starts its own targets (nginx with a generated config, or `soakd mock`)
on 127.0.0.1, runs soakd and a reference load generator (oha, wrk) for a bounded time, reads
their CPU time from /proc/<pid>/stat (utime + stime, in CLK_TCK ticks) and their memory from
/proc/<pid>/status (VmRSS, VmHWM), and prints a markdown result table.

A process's CPU total is taken at its exit from wait4()'s rusage, which is the same kernel
counter as utime + stime in /proc/<pid>/stat, read at the last moment (the /proc entry is gone
once the process is reaped). While the process runs, a sampler thread reads /proc every
`interval` seconds so a script can compute CPU over a window and RSS at given times.

Nothing here is part of the test suite: these are measurements, not assertions.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def soakd_bin():
    """The soakd binary: $SOAKD_BIN, else the repo's release build."""
    path = os.environ.get("SOAKD_BIN", os.path.join(REPO, "target", "release", "soakd"))
    if not os.access(path, os.X_OK):
        die(f"no soakd binary at {path}: run `cargo build --release` or set SOAKD_BIN")
    return path


def tool(name):
    """A reference tool (oha, wrk, nginx) from $PATH or /work/tools/bin; dies if missing."""
    extra = os.environ.get("BENCH_TOOLS", "/work/tools/bin")
    path = shutil.which(name, path=os.environ.get("PATH", "") + os.pathsep + extra + os.pathsep + "/usr/sbin")
    if not path:
        die(f"{name} not found on PATH (nor in {extra}); install it (oha: cargo install oha)")
    return path


def die(msg):
    print(f"bench: {msg}", file=sys.stderr)
    sys.exit(2)


# ---------------------------------------------------------------------------------------------
# /proc readers


def cpu_seconds(pid):
    """utime + stime of `pid` in seconds from /proc/<pid>/stat, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_bytes(pid, key):
    """A `kB` line of /proc/<pid>/status (VmRSS, VmHWM) in bytes, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def threads(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return None


def thread_stats(pid):
    """Per thread name: [CPU seconds, voluntary, involuntary context switches] summed over the
    process's threads of that name (/proc/<pid>/task/*/stat and status)."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        base = f"/proc/{pid}/task/{tid}"
        try:
            with open(base + "/comm") as f:
                comm = f.read().strip()
            cpu = cpu_seconds(f"{pid}/task/{tid}")
            vol = invol = 0
            with open(base + "/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        vol = int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        invol = int(line.split()[1])
        except (OSError, ValueError):
            continue
        acc = out.setdefault(comm, [0.0, 0, 0])
        acc[0] += cpu or 0.0
        acc[1] += vol
        acc[2] += invol
    return out


def thread_delta(a, z, per, secs):
    """Rows [thread, % core, CPU µs per unit, context switches per unit] between two
    thread_stats snapshots, over `per` units of work in `secs` seconds."""
    rows = []
    for comm in sorted(z):
        za, aa = z[comm], a.get(comm, [0.0, 0, 0])
        cpu = za[0] - aa[0]
        rows.append([comm, f"{cpu / secs * 100:.1f}", f"{cpu / per * 1e6:.1f}",
                     f"{(za[1] - aa[1]) / per:.2f}", f"{(za[2] - aa[2]) / per:.2f}"])
    return rows


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": os.uname().release,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "loadavg_at_start": loadavg(),
    }


def print_machine():
    m = machine()
    print(f"machine: {m['nproc']} cpus, {m['cpu']}, kernel {m['kernel']}, {m['date']}, "
          f"loadavg {m['loadavg_at_start']}")


# ---------------------------------------------------------------------------------------------
# Process handling


class Proc:
    """A started process with a /proc sampler thread; `finish()` reaps it with wait4()."""

    def __init__(self, argv, name, env=None, stdout=None, stderr=None, interval=0.5, cwd=None):
        self.name = name
        self.argv = argv
        self.popen = subprocess.Popen(argv, env=env, stdout=stdout, stderr=stderr, cwd=cwd,
                                      start_new_session=True)
        self.pid = self.popen.pid
        self.t0 = time.monotonic()
        self.samples = []  # (seconds since start, cpu seconds, rss bytes)
        self.peak_rss = 0
        self.cpu_total = None
        self.rc = None
        self._stop = threading.Event()
        self._interval = interval
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        while not self._stop.is_set():
            cpu = cpu_seconds(self.pid)
            rss = status_bytes(self.pid, "VmRSS")
            hwm = status_bytes(self.pid, "VmHWM")
            if cpu is None or rss is None:
                break
            self.samples.append((time.monotonic() - self.t0, cpu, rss))
            self.peak_rss = max(self.peak_rss, rss, hwm or 0)
            self._stop.wait(self._interval)

    def cpu_now(self):
        return cpu_seconds(self.pid)

    def rss_now(self):
        return status_bytes(self.pid, "VmRSS")

    def sample_at(self, t):
        """The first sample taken at or after `t` seconds from the start (or the last one)."""
        for s in self.samples:
            if s[0] >= t:
                return s
        return self.samples[-1] if self.samples else None

    def finish(self, timeout):
        """Waits up to `timeout` s for the exit (then SIGTERM, SIGKILL); returns the exit code."""
        if self.rc is not None:
            return self.rc
        if self._reap_within(timeout) is None:
            self.stop()
        return self.rc

    def stop(self, sig=signal.SIGTERM, grace=10.0):
        """Signals the process and reaps it (SIGKILL after `grace` s)."""
        if self.rc is not None:
            return self.rc
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass
        if self._reap_within(grace) is not None:
            return self.rc
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, status, ru = self._wait4(0)
        return self._reaped(status, ru)

    def _reap_within(self, timeout):
        """Polls every 50 ms, up to `timeout` s, for the exit; returns the exit code once reaped,
        None while the process still runs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status, ru = self._wait4(os.WNOHANG)
            if pid:
                return self._reaped(status, ru)
            time.sleep(0.05)
        return None

    def running(self):
        """True while the process runs; reaps it (keeping its rusage) once it has exited."""
        if self.rc is not None:
            return False
        pid, status, ru = self._wait4(os.WNOHANG)
        if pid:
            self._reaped(status, ru)
            return False
        return True

    def _wait4(self, flags):
        try:
            return os.wait4(self.pid, flags)
        except ChildProcessError:  # reaped elsewhere (Popen.poll)
            return self.pid, 0, None

    def _reaped(self, status, ru):
        self._stop.set()
        if ru is None:
            self.cpu_total = self.samples[-1][1] if self.samples else 0.0
            self.rc = self.popen.returncode if self.popen.returncode is not None else -1
        else:
            self.cpu_total = ru.ru_utime + ru.ru_stime
            self.peak_rss = max(self.peak_rss, ru.ru_maxrss * 1024)
            self.rc = os.waitstatus_to_exitcode(status)
        self.popen.returncode = self.rc
        self.elapsed = time.monotonic() - self.t0
        return self.rc


class Cleanup:
    """Stops every registered Proc on exit, whatever happens (Ctrl-C included)."""

    def __init__(self):
        self.procs = []
        self.tmp = tempfile.mkdtemp(prefix="soakd-bench-")

    def add(self, p):
        self.procs.append(p)
        return p

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in reversed(self.procs):
            if p.rc is None:
                p.stop(grace=5.0)
        if not os.environ.get("BENCH_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)
        return False


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    die(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# Targets


def start_mock(cleanup, args, name="mock"):
    """Starts `soakd mock --listen 127.0.0.1:0 ARGS`; returns (Proc, base URL)."""
    log = open(os.path.join(cleanup.tmp, f"{name}.log"), "w+")
    p = cleanup.add(Proc([soakd_bin(), "mock", "--listen", "127.0.0.1:0", *args], name,
                         stdout=subprocess.PIPE, stderr=log))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        line = p.popen.stdout.readline().decode()
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            # Keep draining stdout so the mock never blocks on a full pipe.
            threading.Thread(target=p.popen.stdout.read, daemon=True).start()
            return p, m.group(1).rstrip("/")
        if not line:
            break
    die(f"soakd mock did not start (see {log.name})")


def fetch(url, body, timeout=10):
    req = urllib.request.Request(url, data=body.encode(), method="POST",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.headers.get("content-type"), r.read()


def capture_mock_answer(cleanup, mock_args, request_body):
    """Starts a mock, POSTs one chat completion, stops it; returns (content-type, body bytes).

    The nginx targets serve exactly what soakd's own mock answers, so soakd's parser sees a body
    it classifies as ok.
    """
    p, url = start_mock(cleanup, mock_args, name="capture-mock")
    status, ctype, body = fetch(url + "/v1/chat/completions", request_body)
    p.stop()
    if status != 200:
        die(f"mock answered {status} to the capture request")
    return ctype.split(";")[0], body


def nginx_with_mock_answer(cleanup, request, chunks=16):
    """nginx (one process) serving as a static body `soakd mock`'s answer to `request`: `chunks`
    chunks of 8 bytes, no delays; returns (Proc, base URL, content-type, body)."""
    ctype, body = capture_mock_answer(
        cleanup, ["--ttft", "0ms", "--chunk-delay", "0ms", "--chunks", str(chunks), "--chunk-bytes", "8"],
        request)
    nginx, url = start_nginx(cleanup, ctype, body)
    return nginx, url, ctype, body


def nginx_escape(body):
    text = body.decode()
    if "$" in text:
        die("a static body with '$' cannot be served by nginx `return` (variable syntax)")
    return (text.replace("\\", "\\\\").replace("'", "\\'")
            .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))


def run_nginx(cleanup, name, servers, workers=1):
    """Starts nginx from a config under cleanup.tmp/`name`: `workers` worker(s) (1: a single
    process, master_process off), keep-alive tuned for load, temp files under its root, and
    `servers(root, port)`'s text (upstream and server blocks) inside `http`. Waits for the
    port; returns (Proc, port)."""
    root = os.path.join(cleanup.tmp, name)
    os.makedirs(os.path.join(root, "logs"), exist_ok=True)
    port = free_port()
    conf = f"""
worker_processes {workers};
master_process {'off' if workers == 1 else 'on'};
daemon off;
pid {root}/nginx.pid;
error_log {root}/logs/error.log warn;
worker_rlimit_nofile 65536;
events {{ worker_connections 32768; multi_accept on; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_temp_path {root}/cbt;
    proxy_temp_path {root}/pt;
    fastcgi_temp_path {root}/ft;
    uwsgi_temp_path {root}/ut;
    scgi_temp_path {root}/st;
{servers(root, port)}
}}
"""
    path = os.path.join(root, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    p = cleanup.add(Proc([tool("nginx"), "-p", root, "-c", path], name))
    wait_port(port)
    return p, port


def start_nginx(cleanup, ctype, body, workers=1):
    """nginx, `workers` worker(s) (1: a single process, master_process off), answering any
    POST /v1/chat/completions with the static `body`; returns (Proc, base URL)."""
    escaped = nginx_escape(body)

    def servers(root, port):
        if len(escaped) < 3500:
            # Small bodies: `return` from memory.
            location = f"""        location = /v1/chat/completions {{
            default_type {ctype};
            return 200 '{escaped}';
        }}"""
        else:
            # Larger bodies do not fit one nginx config token (4 KiB): serve a file. The static
            # handler answers POST with 405, which `error_page 405 =200 $uri` turns into the
            # file (an internal redirect as GET).
            www = os.path.join(root, "www")
            os.makedirs(os.path.join(www, "v1", "chat"), exist_ok=True)
            with open(os.path.join(www, "v1", "chat", "completions"), "wb") as f:
                f.write(body)
            location = f"""        location = /v1/chat/completions {{
            root {www};
            types {{ }}
            default_type {ctype};
            etag off;
            error_page 405 =200 $uri;
        }}"""
        return f"""    server {{
        listen 127.0.0.1:{port} backlog=8192 reuseport;
{location}
        location = /nginx_status {{ stub_status; }}
    }}"""

    p, port = run_nginx(cleanup, "nginx", servers, workers)
    url = f"http://127.0.0.1:{port}"
    status, got_ctype, got = fetch(url + "/v1/chat/completions", "{}")
    if status != 200 or got != body:
        die(f"nginx does not serve the expected body (status {status}, {len(got)} vs {len(body)} bytes)")
    return p, url


def nginx_requests(url):
    """Requests nginx has served so far (stub_status), counting the status fetches themselves."""
    with urllib.request.urlopen(url + "/nginx_status", timeout=5) as r:
        text = r.read().decode()
    # "server accepts handled requests\n A B C"
    return int(text.splitlines()[2].split()[2])


# ---------------------------------------------------------------------------------------------
# soakd


# soakd's synthetic prompt: 8 tokens = 32 characters, the size of the reference tools' prompt.
SMALL_PROMPT = {"mean_tokens": 8, "stddev_tokens": 0, "min_tokens": 8, "max_tokens": 8}
# The request body oha and wrk send: the same shape and prompt size as soakd's.
PROMPT_32 = "benchmark prompt of 32 chars ok."


def chat_request(stream, max_tokens):
    body = {"model": "gpt-4o-mini", "stream": stream, "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": PROMPT_32}]}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body)


def soakd_config(target, rate, duration, summary, scenario, max_in_flight=10000, extra="",
                 target_extra="", grace="15s"):
    """A soakd run config: constant arrivals, one openai scenario, progress off."""
    def toml(v):
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {toml(x)}" for k, x in v.items()) + " }"
        return json.dumps(v)

    scenario = {"prompt": SMALL_PROMPT, **scenario}
    sc = "\n".join(f"{k} = {toml(v)}" for k, v in scenario.items())
    return f"""
[run]
duration = "{duration}"
grace = "{grace}"
summary_json = "{summary}"

[target]
url = "{target}"
{target_extra}

[load]
model = "open"
rate = {rate}
arrivals = "constant"
max_in_flight = {max_in_flight}

[[scenarios]]
name = "bench"
api = "openai"
model = "gpt-4o-mini"
{sc}

[log]
progress_interval = "off"
{extra}
"""


class Soakd:
    """A running `soakd run`: its Proc, admin URL (parsed from the log) and summary path."""

    def __init__(self, cleanup, config_text, name="soakd", interval=0.5):
        self.dir = os.path.join(cleanup.tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.config = os.path.join(self.dir, "soakd.toml")
        self.summary_path = os.path.join(self.dir, "summary.json")
        with open(self.config, "w") as f:
            f.write(config_text.replace("@SUMMARY@", self.summary_path))
        self.log = os.path.join(self.dir, "soakd.log")
        self.admin = None
        argv = [soakd_bin(), "run", "--config", self.config, "--admin-listen", "127.0.0.1:0"]
        self.proc = cleanup.add(Proc(argv, name, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, interval=interval))
        self._found = threading.Event()
        threading.Thread(target=self._read_log, daemon=True).start()
        if not self._found.wait(20):
            die(f"soakd did not report its admin address (log {self.log})")

    def _read_log(self):
        with open(self.log, "wb") as out:
            for line in self.proc.popen.stderr:
                out.write(line)
                out.flush()
                if self.admin is None:
                    m = re.search(rb"listening on (http://[0-9.:]+)", line)
                    if m and b"admin" in line:
                        self.admin = m.group(1).decode()
                        self._found.set()

    def metric(self, name):
        """Sum of every series of `name` on /metrics (None if unreachable)."""
        try:
            with urllib.request.urlopen(self.admin + "/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return None
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def wait(self, timeout):
        rc = self.proc.finish(timeout)
        if rc not in (0, 1):
            print(f"bench: soakd exited with {rc}; log tail:", file=sys.stderr)
            with open(self.log, errors="replace") as f:
                print("".join(f.readlines()[-15:]), file=sys.stderr)
        return rc

    def summary(self):
        try:
            with open(self.summary_path) as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            die(f"no soakd summary at {self.summary_path}: {e} (log {self.log})")


# ---------------------------------------------------------------------------------------------
# oha / wrk


def run_oha(cleanup, args, url, timeout, name="oha", interval=0.5, during=None):
    """Runs `oha --no-tui --output-format json ARGS URL`; returns (Proc, parsed JSON).

    `during(proc)`, if given, is called while oha runs (to take measurements)."""
    out = os.path.join(cleanup.tmp, f"{name}.json")
    with open(out, "w") as f:
        p = cleanup.add(Proc([tool("oha"), "--no-tui", "--output-format", "json", *args, url],
                             name, stdout=f, stderr=subprocess.DEVNULL, interval=interval))
        if during:
            during(p)
        p.finish(timeout)
    try:
        with open(out) as f:
            return p, json.load(f)
    except ValueError:
        die(f"oha printed no JSON (exit {p.rc}); see {out}")


def oha_ok_requests(report):
    dist = report.get("statusCodeDistribution", {})
    return sum(v for k, v in dist.items() if k.startswith("2"))


def oha_total_requests(report):
    dist = report.get("statusCodeDistribution", {})
    errs = report.get("errorDistribution", {})
    return sum(dist.values()) + sum(errs.values())


# ---------------------------------------------------------------------------------------------
# Output


def table(headers, rows):
    """Prints a markdown table."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells:
        print(line(r))


def write_json(path, result):
    """Writes a benchmark's results for scripts/bench/run.sh's summary (nothing if no path)."""
    if path:
        result = {**result, "loadavg_end": loadavg()}
        with open(path, "w") as f:
            json.dump(result, f, indent=1)


def scrape_metrics(admin, timeout=10):
    """One GET of soakd's /metrics on a new connection: (seconds from connect to last byte,
    body bytes), or (None, 0) on failure."""
    t = time.monotonic()
    try:
        with urllib.request.urlopen(admin + "/metrics", timeout=timeout) as r:
            n = len(r.read())
    except OSError:
        return None, 0
    return time.monotonic() - t, n


def ms(seconds):
    return "-" if seconds is None else f"{seconds * 1e3:.3f}"


def mib(b):
    return "-" if b is None else f"{b / 2**20:.1f}"


def us(seconds):
    return "-" if seconds is None else f"{seconds * 1e6:.1f}"
