#!/usr/bin/env python3
"""Writes run.json: what scripts/gateways/run.sh ran, on what, beside soakd's summary.json.

Usage: record.py --name NAME --installed VERSION --minutes N --rate R --started UTC
                 --ended UTC --load-start "1 5 15" --load-end "1 5 15" --soakd-exit RC
                 --features FILE --network FILE --concurrent "NAMES" --config FILE
                 --commit SHA --dirty true|false --binary release|given
The JSON goes to stdout. Fields: gateway (name, title, source, package, version as
installed, pins), programme (minutes, rate, the times of programme.plan, the storms run,
cancel after, the mock's shape), machine (cpus, cpu model, memory, kernel, OS, load averages
at start and end), soakd (the git commit at the start, whether the work tree had changes,
and whether run.sh built the release binary or SOAKD_BIN gave one), features
(programme.py features), network (netwatch.py), concurrent (other gateways soaked at the same
time), started/ended (UTC), soakd_exit (0 pass, 1 a threshold failed) and gateway_process
(from the summary beside the config: whether the gateway's process was still up at the end
of the soak, its restarts, and, when it was not up or restarted, the evidence: the last lines
of its log and the kernel's lines about its pid, where dmesg can be read).
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import manifest  # noqa: E402
import programme  # noqa: E402


def machine(load_start, load_end):
    model = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    osname = platform.system()
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                osname = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_bytes": mem,
        "kernel": platform.release(),
        "os": osname,
        "loadavg_start": [float(x) for x in load_start.split()],
        "loadavg_end": [float(x) for x in load_end.split()],
    }


def gateway_process(name, run_dir):
    """The gateway's process at the end of the soak, from soakd's summary: up, restarts, and
    the evidence when it went away (None without a summary or a watched process)."""
    try:
        s = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    p = next((p for p in (s.get("monitor") or {}).get("processes", []) if p["name"] == name),
             None)
    if p is None:
        return None
    out = {"up_at_end": bool(p.get("up")), "restarts": p.get("restarts", 0), "pid": p.get("pid"),
           "samples": p.get("samples")}
    if out["up_at_end"] and not out["restarts"]:
        return out
    try:
        lines = (run_dir / "gateway.log").read_text(errors="replace").splitlines()
        out["log_tail"] = lines[-15:]
    except OSError:
        out["log_tail"] = None
    kernel = None
    if out["pid"]:
        try:
            d = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=10)
            if d.returncode == 0:
                pat = re.compile(rf"\[{out['pid']}\]|\b{out['pid']}\b.*(killed|oom)", re.I)
                kernel = [ln.strip() for ln in d.stdout.splitlines() if pat.search(ln)][-5:]
        except (OSError, subprocess.SubprocessError):
            pass
    out["kernel"] = kernel
    return out


def main():
    ap = argparse.ArgumentParser()
    for k in ("name", "installed", "started", "ended", "load-start", "load-end", "features",
              "network", "concurrent", "config", "commit", "binary"):
        ap.add_argument(f"--{k}", required=True)
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--soakd-exit", type=int, required=True)
    ap.add_argument("--dirty", choices=["true", "false"], required=True)
    a = ap.parse_args()
    m = manifest.load(a.name)
    feats = json.loads(Path(a.features).read_text())
    cfg = tomllib.loads(Path(a.config).read_text())
    try:
        network = json.loads(Path(a.network).read_text())
    except (OSError, ValueError):
        network = None
    plan = programme.plan(a.minutes)
    out = {
        "schema": 1,
        "gateway": {
            "name": m["name"], "title": m["title"], "source": m["source"],
            "package": m["package"], "version": a.installed,
            "pins": {p["package"]: p["version"] for p in m["pins"]},
        },
        "programme": {
            "minutes": a.minutes,
            "rate": a.rate,
            "idle_secs": plan["idle"],
            "cooldown_secs": plan["cooldown"],
            "warmup_secs": plan["warmup"],
            "windows_secs": plan["windows"],
            "creep_window_secs": plan["creep_window"] if feats["creep"]["present"] else None,
            "storms": cfg.get("upstream", {}).get("storms", []),
            "scenarios": [s["name"] for s in cfg.get("scenarios", [])],
            "cancel_after": programme.CANCEL_AFTER,
            "mock": programme.MOCK,
            "include_children": bool(cfg["monitor"]["processes"][0].get("include_children")),
        },
        "machine": machine(a.load_start, a.load_end),
        "soakd": {"commit": a.commit, "dirty": a.dirty == "true", "binary": a.binary},
        "features": feats,
        "network": network,
        "concurrent": a.concurrent.split(),
        "started": a.started,
        "ended": a.ended,
        "soakd_exit": a.soakd_exit,
        "gateway_process": gateway_process(a.name, Path(a.config).parent),
    }
    json.dump(out, sys.stdout, indent=2, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
