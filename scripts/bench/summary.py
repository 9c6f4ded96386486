#!/usr/bin/env python3
"""Prints run.sh's one summary table from the JSON results in a directory.

Reads every `<bench>.<n>.json` written by the side-by-side scripts (`--json`), and Criterion's
`target/criterion/<group>/<case>/new/estimates.json`; a measure repeated n times shows the
range of its runs (`low–high`). The goal column holds the goals of issue 11.

    python3 scripts/bench/summary.py RESULTS_DIR [--criterion target/criterion]
"""

import argparse
import glob
import json
import os


def load(dirname, bench):
    out = []
    for p in sorted(glob.glob(os.path.join(dirname, f"{bench}.*.json"))):
        with open(p) as f:
            out.append(json.load(f))
    return out


def rng(values, fmt):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    lo, hi = min(values), max(values)
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}–{fmt.format(hi)}"


def verdict(values, ok):
    values = [v for v in values if v is not None]
    if not values:
        return "not run"
    good = sum(1 for v in values if ok(v))
    return "yes" if good == len(values) else ("no" if good == 0 else f"{good}/{len(values)} runs")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--criterion", default=None)
    args = ap.parse_args()
    rows = []
    loads = []

    ol = load(args.dir, "open_loop")
    if ol:
        s = [r["soakd"]["cpu_per_req"] * 1e6 for r in ol]
        o = [r["oha"]["cpu_per_req"] * 1e6 for r in ol]
        ratio = [a / b for a, b in zip(s, o)]
        rows.append(["CPU µs per request, open loop 10k rps", rng(s, "{:.1f}"), rng(o, "{:.1f}"), "-",
                     rng(ratio, "{:.2f}×"), "≤ 1.0× oha", verdict(ratio, lambda x: x <= 1.0)])
        acc = [(r["soakd"]["achieved"] / r["rate"] - 1) * 100 for r in ol]
        oacc = [(r["oha"]["achieved"] / r["rate"] - 1) * 100 for r in ol]
        rows.append(["achieved rate vs target, %", rng(acc, "{:+.2f}"), rng(oacc, "{:+.2f}"), "-", "-",
                     "within 0.5 %", verdict(acc, lambda x: abs(x) <= 0.5)])
        lag = [r["soakd"]["lag"]["p99"] * 1e3 for r in ol]
        rows.append(["schedule lag p99, ms", rng(lag, "{:.3f}"), "-", "-", "-", "< 1 ms",
                     verdict(lag, lambda x: x < 1.0)])
        scr = [max((t for t in r.get("scrapes", []) if t is not None), default=None) for r in ol]
        scr = [x * 1e3 if x is not None else None for x in scr]
        rows.append(["/metrics scrape at 10k rps, max ms", rng(scr, "{:.1f}"), "-", "-", "-", "< 100 ms",
                     verdict(scr, lambda x: x < 100)])
        loads += [r.get("loadavg_end") for r in ol]

    cl = load(args.dir, "closed_loop")
    if cl:
        runs = [x for r in cl for x in r["runs"]]
        s = [x["soakd"]["rps"] for x in runs]
        o = [x["oha"]["rps"] for x in runs]
        w = [x["wrk"]["rps"] for x in runs if "wrk" in x]
        ratio = [x["soakd"]["rps"] / x["oha"]["rps"] for x in runs]
        wr = [x["soakd"]["rps"] / x["wrk"]["rps"] for x in runs if "wrk" in x]
        rows.append(["closed loop 64 users, rps", rng(s, "{:.0f}"), rng(o, "{:.0f}"), rng(w, "{:.0f}"),
                     rng(ratio, "{:.2f}×") + (f" (wrk {rng(wr, '{:.2f}×')})" if wr else ""),
                     "≥ 1.0× oha", verdict(ratio, lambda x: x >= 1.0)])
        cs = [x["soakd"]["cpu_per_req"] * 1e6 for x in runs]
        co = [x["oha"]["cpu_per_req"] * 1e6 for x in runs]
        cw = [x["wrk"]["cpu_per_req"] * 1e6 for x in runs if "wrk" in x]
        rows.append(["closed loop CPU µs per request", rng(cs, "{:.1f}"), rng(co, "{:.1f}"),
                     rng(cw, "{:.1f}"), rng([a / b for a, b in zip(cs, co)], "{:.2f}×"), "-", "-"])
        loads += [r.get("loadavg_end") for r in cl]

    sse = load(args.dir, "sse_streams")
    if sse:
        r10 = [x for r in sse for x in r["soakd"] if x["rate"] == 10000]
        o10 = [x for r in sse for x in r["oha"] if x["mode"] == "-q 10000"]
        s = [x["cpu_per_stream"] * 1e6 for x in r10]
        o = [x["cpu_per"] * 1e6 for x in o10]
        ratio = [a / b for a, b in zip(s, o)] if len(s) == len(o) else []
        rows.append(["CPU µs per parsed 64-chunk stream at 10k/s", rng(s, "{:.1f}"),
                     rng(o, "{:.1f}") + " (no parsing)", "-", rng(ratio, "{:.2f}×"), "≤ 50 µs",
                     verdict(s, lambda x: x <= 50)])
        ok = [x["ok"] / max(x["sent"], 1) * 100 for x in r10]
        rows.append(["  streams ok at 10k/s, %", rng(ok, "{:.2f}"), "-", "-", "-", "-", "-"])
        loads += [r.get("loadavg_end") for r in sse]

    slow = load(args.dir, "slow_streams")
    if slow:
        kib = [r["bytes_per_stream"] / 1024 for r in slow]
        peak = [r["peak_active"] for r in slow]
        rss = [r["peak_rss"] / 2**20 for r in slow]
        rows.append(["KiB per open slow stream (peak RSS / streams)", rng(kib, "{:.1f}"), "-", "-", "-",
                     "≤ 16 KiB", verdict(kib, lambda x: x <= 16)])
        rows.append(["  peak streams open / peak RSS MiB", f"{rng(peak, '{:.0f}')} / {rng(rss, '{:.0f}')}",
                     "-", "-", "-", "10k ≤ 160 MiB", "-"])
        loads += [r.get("loadavg_end") for r in slow]

    if args.criterion and os.path.isdir(args.criterion):
        for est in sorted(glob.glob(os.path.join(args.criterion, "*", "*", "new", "estimates.json"))):
            parts = est.split(os.sep)
            name = f"{parts[-4]}/{parts[-3]}"
            with open(est) as f:
                e = json.load(f)
            t = (e.get("slope") or e["mean"])["point_estimate"]
            goal, met = "-", "-"
            if parts[-4] == "sse_64_chunk_stream":
                goal, met = "≤ 50 µs (parse only)", "yes" if t <= 50e3 else "no"
            unit = f"{t / 1e3:.2f} µs" if t >= 1e3 else f"{t:.0f} ns"
            rows.append([f"criterion {name}", unit, "-", "-", "-", goal, met])

    headers = ["measure", "soakd", "oha", "wrk", "ratio", "goal", "met?"]
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells:
        print(line(r))
    loads = [x for x in loads if x]
    if loads:
        print(f"\nload average at the end of each benchmark: {'; '.join(loads)}")


if __name__ == "__main__":
    main()
