#!/usr/bin/env python3
"""Benchmark 2: soakd's RSS stays flat after warm-up; oha's grows with requests.

soakd (open loop, constant arrivals, --rate rps, stream=false) and oha (-q RATE -z DURATION)
run CONCURRENTLY for --minutes against the same nginx (one process) serving a static chat
completion captured from `soakd mock`. Each tool's VmRSS (/proc/<pid>/status) is read at
10 s, 1 min, 5 min and 10 min (the checkpoints inside --minutes), and the growth between the
first and last checkpoint is reported in bytes per request.

    python3 scripts/bench/rss_flat.py [--rate 2000] [--minutes 10] [--json FILE]
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import benchlib as b  # noqa: E402

REQUEST = b.chat_request(False, 16)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--json", help="write the results here as JSON (for run.sh)")
    args = ap.parse_args()
    rate, total = args.rate, int(args.minutes * 60)
    points = [t for t in (10, 60, 300, 600) if t <= total - 2]
    if total - 2 not in points and total - 2 > points[-1]:
        points.append(total - 2)

    b.print_machine()
    with b.Cleanup() as c:
        nginx, url, ctype, body = b.nginx_with_mock_answer(c, REQUEST)
        target = url + "/v1/chat/completions"
        cfg = b.soakd_config(url, rate, f"{total}s", "@SUMMARY@",
                             {"stream": False, "max_tokens": 16}, max_in_flight=10000)
        s = b.Soakd(c, cfg, interval=1.0)
        out = os.path.join(c.tmp, "oha.json")
        f = open(out, "w")
        o = c.add(b.Proc([b.tool("oha"), "--no-tui", "--output-format", "json", "-q", str(int(rate)),
                          "-z", f"{total}s", "-m", "POST", "-d", REQUEST,
                          "-H", "content-type: application/json", target],
                         "oha", stdout=f, stderr=open(os.devnull, "w"), interval=1.0))
        start = time.monotonic()
        rows = []
        for t in points:
            time.sleep(max(0, start + t - time.monotonic()))
            rows.append((t, s.proc.rss_now(), o.rss_now(), s.metric("soakd_requests_total"),
                         b.loadavg()))
            print(f"  t={t:>4}s soakd {b.mib(rows[-1][1])} MiB, oha {b.mib(rows[-1][2])} MiB, "
                  f"loadavg {rows[-1][4]}", flush=True)
        s.wait(120)
        o.finish(120)
        f.close()
        summ = s.summary()
        rep = json.load(open(out))

    o_total = b.oha_total_requests(rep)
    print()
    print(f"## RSS at {rate:.0f} rps, soakd and oha concurrently, {total} s, against nginx (1 process)")
    print()
    hdr = ["t (s)", "soakd requests", "soakd RSS MiB", "oha requests (≈)", "oha RSS MiB"]
    b.table(hdr, [[t, int(n or 0), b.mib(sr), int(rate * t), b.mib(orr)] for t, sr, orr, n, _ in rows])
    t_a, s_a, o_a, n_a, _ = rows[1] if len(rows) > 2 else rows[0]
    t_z, s_z, o_z, n_z, _ = rows[-1]
    print()
    print(f"soakd: sent {summ['requests_sent']}, achieved {summ['achieved_rate_avg']:.1f} rps, "
          f"outcomes {summ['outcomes']}, dropped {summ['dropped']}")
    print(f"oha:   {o_total} requests, {rep['summary']['requestsPerSec']:.1f} rps, "
          f"status {rep.get('statusCodeDistribution')}")
    dn = (n_z - n_a) if n_a is not None and n_z is not None else rate * (t_z - t_a)
    print(f"growth {t_a} s -> {t_z} s: soakd {(s_z - s_a) / 2**20:+.2f} MiB "
          f"({(s_z - s_a) / dn:+.2f} B/request); oha {(o_z - o_a) / 2**20:+.2f} MiB "
          f"({(o_z - o_a) / (rate * (t_z - t_a)):+.1f} B/request)")
    print(f"peak RSS: soakd {b.mib(s.proc.peak_rss)} MiB, oha {b.mib(o.peak_rss)} MiB")
    b.write_json(args.json, {
        "bench": "rss_flat", "rate": rate, "seconds": total,
        "checkpoints": [{"t": t, "soakd_rss": sr, "oha_rss": orr, "soakd_requests": n}
                        for t, sr, orr, n, _ in rows],
        "soakd": {"bytes_per_request": (s_z - s_a) / dn, "peak_rss": s.proc.peak_rss,
                  "requests_sent": summ["requests_sent"]},
        "oha": {"bytes_per_request": (o_z - o_a) / (rate * (t_z - t_a)), "peak_rss": o.peak_rss,
                "requests": o_total},
    })


if __name__ == "__main__":
    main()
