#!/usr/bin/env python3
"""Watches a gateway's sockets: does anything in its process tree talk to a non-loopback address?

Usage: netwatch.py PID_FILE OUT_JSON [--interval SECS]

Every interval (default 1 s) until SIGTERM or SIGINT: the process in PID_FILE and all its
descendants; the sockets among their open fds; those sockets' remote addresses in
/proc/net/{tcp,tcp6,udp,udp6}. Listening sockets and unconnected UDP sockets have no remote
address and are skipped. At exit, OUT_JSON gets {"samples": N, "interval_secs": S,
"non_loopback": [{"proto", "remote", "first_seen_secs"}...]}: every remote address outside
127.0.0.0/8 and ::1 seen at least once. Sampling can miss a connection that opens and closes
between two samples; the gateways' documented env (no telemetry, no cost-map fetch) is what
prevents them, this is the evidence that none stayed open.
"""

import ipaddress
import json
import os
import signal
import sys
import time

PROTOS = ["tcp", "tcp6", "udp", "udp6"]


def tree(root):
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def inodes(pids):
    out = set()
    for p in pids:
        try:
            fds = os.listdir(f"/proc/{p}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{p}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                out.add(link[8:-1])
    return out


def addr(hex_addr):
    ip, port = hex_addr.split(":")
    raw = bytes.fromhex(ip)
    if len(raw) == 4:
        a = ipaddress.IPv4Address(raw[::-1])
    else:  # four little-endian 32-bit words
        a = ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
    return a, int(port, 16)


def remotes(wanted):
    out = []
    for proto in PROTOS:
        try:
            with open(f"/proc/net/{proto}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) < 10 or cols[9] not in wanted:
                continue
            a, port = addr(cols[2])
            if port == 0:
                continue  # listening, or UDP not connected
            if a.is_loopback or (a.version == 6 and a.ipv4_mapped and a.ipv4_mapped.is_loopback):
                continue
            out.append((proto, f"[{a}]:{port}" if a.version == 6 else f"{a}:{port}"))
    return out


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    pid_file, out_path = sys.argv[1], sys.argv[2]
    interval = float(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--interval" else 1.0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    start, samples, seen = time.monotonic(), 0, {}
    while not stop:
        try:
            root = int(open(pid_file).read().strip())
        except (OSError, ValueError):
            root = None
        if root is not None and os.path.exists(f"/proc/{root}"):
            samples += 1
            for proto, remote in remotes(inodes(tree(root))):
                seen.setdefault((proto, remote), round(time.monotonic() - start, 1))
        time.sleep(interval)
    result = {
        "samples": samples,
        "interval_secs": interval,
        "non_loopback": [{"proto": p, "remote": r, "first_seen_secs": t}
                         for (p, r), t in sorted(seen.items(), key=lambda kv: kv[1])],
    }
    with open(out_path, "w") as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
