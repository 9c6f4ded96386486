#!/usr/bin/env python3
"""Benchmark 5: the cost of sampling 10 processes once a second.

Two soakd runs side by side (same machine, same time, each --duration s at 1 rps against nginx):
  * monitored: [monitor] sample_interval = "1s" with 10 [[monitor.processes]] entries, the pids
    of 10 `sleep` processes this script starts;
  * baseline: the same config with no [[monitor.processes]] (soakd still samples itself).
Their CPU totals (utime+stime at exit, wait4 rusage, same counter as /proc/<pid>/stat) differ by
the cost of sampling and fitting 10 more processes: reported as % of one core. --repeat runs
the pair several times to show the noise.

The estimator's cost per sample as the run grows is measured by the monitor module's own
ignored unit bench (`bench_estimator_cost_per_sample`); --estimator runs it (a release test
build, several minutes on a small machine).

    python3 scripts/bench/monitor_cost.py [--duration 60] [--repeat 2] [--estimator]
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import benchlib as b  # noqa: E402

REQUEST = b.chat_request(False, 16)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--processes", type=int, default=10)
    ap.add_argument("--estimator", action="store_true")
    ap.add_argument("--warmup", default="5s", help="[monitor] warmup")
    ap.add_argument("--windows", default="30s,1m",
                    help="[monitor] windows; short ones make the fits run during the run (the "
                         "defaults 5m/30m/2h need half their span of samples before any fit)")
    args = ap.parse_args()

    b.print_machine()
    rows = []
    with b.Cleanup() as c:
        nginx, url, ctype, body = b.nginx_with_mock_answer(c, REQUEST)
        sleepers = [c.add(b.Proc(["sleep", str(args.duration * args.repeat + 300)], f"sleep{i}"))
                    for i in range(args.processes)]
        procs = "".join(f'\n[[monitor.processes]]\nname = "p{i}"\npid = {p.pid}\n'
                        for i, p in enumerate(sleepers))
        windows = ", ".join(f'"{w}"' for w in args.windows.split(","))
        mon = f'\n[monitor]\nsample_interval = "1s"\nwarmup = "{args.warmup}"\nwindows = [{windows}]\n'
        for k in range(args.repeat):
            runs = {}
            for kind, extra in (("baseline", mon), ("monitored", mon + procs)):
                cfg = b.soakd_config(url, 1, f"{args.duration}s", "@SUMMARY@",
                                     {"stream": False, "max_tokens": 16}, max_in_flight=100,
                                     extra=extra, grace="5s")
                runs[kind] = b.Soakd(c, cfg, name=f"{kind}-{k}", interval=5.0)
            for kind, s in runs.items():
                s.wait(args.duration + 60)
            summ = runs["monitored"].summary()
            mon_report = summ.get("monitor") or {}
            watched = len(mon_report.get("processes", []))
            base, moni = runs["baseline"].proc, runs["monitored"].proc
            rows.append([k + 1, f"{base.cpu_total:.3f}", f"{moni.cpu_total:.3f}",
                         f"{moni.cpu_total - base.cpu_total:+.3f}",
                         f"{(moni.cpu_total - base.cpu_total) / moni.elapsed * 100:+.3f}",
                         watched, b.mib(moni.peak_rss)])
            print(f"  pair {k + 1}: baseline {base.cpu_total:.3f} s, monitored {moni.cpu_total:.3f} s "
                  f"over {moni.elapsed:.1f} s", flush=True)

    print()
    print(f"## monitor cost: {args.processes} processes sampled every 1 s, {args.duration} s runs at 1 rps, "
          f"warmup {args.warmup}, windows {args.windows}")
    print()
    b.table(["pair", "baseline CPU s", "monitored CPU s", "difference s", "% of one core",
             "processes in summary", "monitored peak RSS MiB"], rows)
    print(f"loadavg at end: {b.loadavg()}")

    if args.estimator:
        print()
        print("estimator cost per sample (monitor module unit bench, release):")
        subprocess.run(["cargo", "test", "--release", "--lib", "--", "--ignored", "--nocapture", "--exact",
                        "monitor::estimate::tests::bench_estimator_cost_per_sample"], cwd=b.REPO, check=False)


if __name__ == "__main__":
    main()
