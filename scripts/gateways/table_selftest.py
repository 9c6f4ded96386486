#!/usr/bin/env python3
"""table.py's self-test (`table.py --self-test`): the cells the table makes of fields that
today's committed results may not show (storms, the memory arc, creep, a gateway process gone
before the end, an incident), from a committed run given those fields."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import table  # noqa: E402


def self_test():
    """The storm, memory-arc and creep cells, from a committed run given the fields those
    branches add (the shapes of their summary JSON), and their reasons when absent; and a
    gateway whose process was gone before the end, with its evidence."""
    import shutil
    import tempfile
    src = next((d for d in sorted(table.RESULTS.iterdir()) if (d / "run.json").is_file()), None) \
        if table.RESULTS.is_dir() else None
    if src is None:
        print("table self-test: no committed result to start from", file=sys.stderr)
        return 1
    failures = []
    with tempfile.TemporaryDirectory() as d:
        dst = Path(d) / src.name
        shutil.copytree(src, dst)
        run = json.loads((dst / "run.json").read_text())
        summ = json.loads((dst / "summary.json").read_text())
        for f in run["features"].values():
            f["present"] = True
            f.pop("reason", None)
        run["programme"]["include_children"] = True
        run["gateway_process"] = {"up_at_end": False, "restarts": 0, "pid": 4242, "samples": 23,
                                  "log_tail": ["INFO: served", "INFO: last request"],
                                  "kernel": ["[1.0] gw[4242]: segfault at 1"]}
        occ = {"start_secs": 720.0, "end_secs": 780.0, "client_requests": 180,
               "upstream_requests": 540, "upstream_faults": 540, "client_errors": 180,
               "masked_ratio": 0.0, "passed_ratio": 1.0, "amplification": 3.0,
               "ghost_attempts": 7, "retry_after_honoured": 0, "retry_after_violations": 360,
               "rss_before_bytes": {}, "rss_after_bytes": {}}
        summ["proxy"]["storms"] = [
            dict(occ, name="rate-limited", recovery_secs=4.5, recovered=True),
            dict(occ, name="5xx-burst", start_secs=1080.0, end_secs=1100.0,
                 amplification=1.0, retry_after_violations=0, recovery_secs=None,
                 recovered=False),
        ]
        proc = next(p for p in summ["monitor"]["processes"] if p["name"] == src.name)
        mb = 2**20
        proc["arc"] = {"memory": "pss", "idle": {"rss": 90 * mb}, "peak": {"rss": 140 * mb},
                       "plateau": {"rss": {"reached": True, "seconds": 690.0,
                                           "level": 128 * mb, "troughs": 40}},
                       "recovered": {"rss": 100 * mb}, "released_share": {"rss": 0.8}}
        proc["tree"] = {"members": 2, "largest": []}
        summ["creep"] = {"window_secs": 360.0, "measures": [
            {"scenario": "chat", "measure": "duration", "first": {"count": 900, "p99": 1.2},
             "last": {"count": 900, "p99": 1.8}, "ratio": 1.5},
            {"scenario": "chat", "measure": "ttft", "first": {"count": 900, "p99": 0.2},
             "last": {"count": 900, "p99": 0.22}, "ratio": 1.1}]}
        summ["thresholds"].append({"name": "creep:chat:duration", "status": "fail"})
        (dst / "incidents.json").write_text(json.dumps([{
            "started": "2026-01-02T03:04:00Z", "stopped": "2026-01-02T03:09:00Z",
            "command": "run.sh gw", "soakd_commit": "0123456789abc", "what": "it died",
            "kernel": ["gw[1]: segfault"], "log_tail": ["a", "b "], "then": "run again"}]))
        (dst / "run.json").write_text(json.dumps(run))
        (dst / "summary.json").write_text(json.dumps(summ))
        text = table.page(Path(d))
        for want in ["| 3.00 | 360 | never (a storm) |",
                     "| rate-limited (720.00s–780.00s) | 540 / 180 | 3.00 | 7 | 0 / 360 | 0.0 % "
                     "| 4.50s |",
                     "| 5xx-burst (1080.00s–1100.00s) | 540 / 180 | 1.00 | 7 |",
                     "| never |",
                     "| tree (PSS), 2 processes at the end |",
                     "128.0 MiB after 11.5 min",
                     "90.0 MiB / 100.0 MiB / 80.0 %",
                     "×1.50 (chat duration: 1.20s → 1.80s); 1 of 2 measures failed",
                     "×1.50, 1 failed",
                     "| gone before the end (",
                     " (its process was gone before the end: see Runs) |",
                     f"the {src.name} process (pid 4242) was not running when the soak ended, "
                     "after 23 memory samples",
                     "Kernel: `[1.0] gw[4242]: segfault at 1`. Last line of its log: "
                     "`INFO: last request`.",
                     f"- **{src.name}**, 2026-01-02 03:04 → 03:09 UTC (`run.sh gw`, soakd "
                     "0123456789): it died.\n  - Kernel: `gw[1]: segfault`\n  - Last line of "
                     "its log: `b`\n  - Then: run again."]:
            if want not in text:
                failures.append(f"missing {want!r}")
        if "waits for branch" in text:
            failures.append("a 'waits for branch' reason with every feature present")
    for f in failures:
        print(f"table self-test: {f}", file=sys.stderr)
    if not failures:
        print("table self-test: storms, memory arc, creep, gateway process and incident cells "
              "as expected")
    return 1 if failures else 0
