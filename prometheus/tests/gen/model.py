# Shared model for the promtool test generators: series builders and a small re-implementation
# of the PromQL functions the alerts use (Prometheus 2.42 semantics, 1m samples), so the
# expected alert times and annotation values are computed independently of promtool.
import os
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MiB = 1048576

# The head of every alert test file: both rule files, recording groups evaluated first.
ALERT_TESTS_HEADER = """rule_files:
  - ../rules/soakd-recording.yml
  - ../rules/soakd-alerts.yml
evaluation_interval: 1m
# Recording rules first, so an alert reads the recorded series of the same evaluation
# (promtool's default group order is not fixed, so every group is listed).
group_eval_order:
  - soakd-recording-traffic
  - soakd-recording-latency
  - soakd-memory
  - soakd-resources
  - soakd-traffic
  - soakd-availability
tests:
"""
N = 300  # samples at 1m

def compress(vals):
    """values list -> promtool 'a+bxn' segments."""
    out = []
    i = 0
    while i < len(vals):
        if i + 1 < len(vals):
            d = vals[i + 1] - vals[i]
            j = i + 1
            while j + 1 < len(vals) and vals[j + 1] - vals[j] == d:
                j += 1
            n = j - i
            a = vals[i]
            if d == 0:
                out.append(f"{fmt(a)}x{n}")
            else:
                out.append(f"{fmt(a)}{'+' if d >= 0 else ''}{fmt(d)}x{n}")
            i = j + 1
        else:
            out.append(fmt(vals[i]))
            i += 1
    return " ".join(out)

def fmt(v):
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v)

def saw(base, step, period=10, n=N):
    return [base + (i % period) * step for i in range(n)]

def cum(per_min):
    c, out = 0, [0]
    for x in per_min:
        c += x
        out.append(c)
    return out

def series(name, labels, vals):
    lab = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"      - series: '{name}{{{lab}}}'\n        values: '{compress(vals) if isinstance(vals, list) else vals}'\n"

# histogram helper: per-minute counts per bucket (non-cumulative bucket index) -> cumulative series
LES = ["0.25", "0.5", "1", "2", "4", "+Inf"]
def hist(name, labels, minutes):
    """minutes: list of dicts {bucket_index: count} per minute."""
    s = ""
    for bi, le in enumerate(LES):
        per = [sum(c for b, c in m.items() if b <= bi) for m in minutes]
        s += series(name + "_bucket", {**labels, "le": le}, cum(per))
    per = [sum(m.values()) for m in minutes]
    s += series(name + "_count", labels, cum(per))
    return s

FAST = {1: 60}   # all in (0.25, 0.5]
SLOW = {3: 60}   # all in (1, 2]

# ---- tiny PromQL-semantics helpers (Prometheus 2.42: ranges are [t-r, t], samples every 1m) ----
def window(vals, t, r, offset=0):
    """samples (ts_seconds, v) in [t-offset-r, t-offset], t/r/offset in minutes."""
    end = t - offset
    return [(i * 60, vals[i]) for i in range(max(0, end - r), min(end, len(vals) - 1) + 1) if i >= end - r]

def linreg(s, at):
    n = len(s)
    xs = [x - at for x, _ in s]
    ys = [y for _, y in s]
    mx, my = sum(xs) / n, sum(ys) / n
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    var = sum((x - mx) ** 2 for x in xs)
    slope = cov / var
    return slope, my - slope * mx

def deriv(vals, t, r):
    s = window(vals, t, r)
    return None if len(s) < 2 else linreg(s, t * 60)[0]

def predict(vals, t, r, d):
    s = window(vals, t, r)
    if len(s) < 2:
        return None
    sl, ic = linreg(s, t * 60)
    return sl * d + ic

def mx(vals, t, r, offset=0):
    s = window(vals, t, r, offset)
    return None if not s else max(v for _, v in s)

def mn(vals, t, r, offset=0):
    s = window(vals, t, r, offset)
    return None if not s else min(v for _, v in s)

def active_since(cond, for_min, n=N):
    """first eval minute at which an alert with `for_min` fires; None if never. Also returns
    the set of minutes it is firing."""
    firing, since = [], None
    for t in range(n):
        c = cond(t)
        if c:
            since = t if since is None else since
            if t - since >= for_min:
                firing.append(t)
        else:
            since = None
    return firing

def h1024(v):
    if abs(v) <= 1:
        return "%.4g" % v
    p = ""
    for pre in ["ki", "Mi", "Gi", "Ti"]:
        if abs(v) < 1024:
            break
        p = pre
        v /= 1024
    return "%.4g%s" % (v, p)

def hq(q, buckets):
    """histogram_quantile over [(le, cumulative_rate)] sorted, last +Inf."""
    total = buckets[-1][1]
    if total == 0:
        return float("nan")
    rank = q * total
    for i, (le, c) in enumerate(buckets):
        if c >= rank:
            if le == float("inf"):
                return buckets[-2][0]
            start, cstart = (0.0, 0.0) if i == 0 else buckets[i - 1]
            return start + (le - start) * (rank - cstart) / (c - cstart)

def q(s):
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'

class Alert:
    def __init__(self, name, sev, for_min, keys, value, labels, summary, desc):
        self.name, self.sev, self.for_min, self.keys = name, sev, for_min, keys
        self.value, self.labels, self.summary, self.desc = value, labels, summary, desc

    def firing(self, key, n):
        return active_since(lambda t: self.value(key, t) is not None, self.for_min, n)

def render_tests(alerts, n, extra_times=()):
    out = "    alert_rule_test:\n"
    for a in alerts:
        fire = {k: set(a.firing(k, n)) for k in a.keys}
        times = set(extra_times)
        for k, f in fire.items():
            if f:
                first = min(f)
                times |= {first - 1, first}
                # and the step where it stops, if it does
                after = [t for t in range(first, n) if t not in f]
                if after:
                    times |= {after[0] - 1, after[0]}
        for t in sorted(times):
            if t < 0 or t >= n:
                continue
            ks = [k for k in a.keys if t in fire[k]]
            out += f"      - eval_time: {t}m\n        alertname: {a.name}\n"
            if not ks:
                out += "        exp_alerts: []\n"
                continue
            out += "        exp_alerts:\n"
            for k in ks:
                v = a.value(k, t)
                labels = {"severity": a.sev, **a.labels(k)}
                lab = ", ".join(f"{kk}: {q(vv)}" for kk, vv in labels.items())
                out += f"          - exp_labels: {{{lab}}}\n"
                out += "            exp_annotations:\n"
                out += f"              summary: {q(a.summary(k))}\n"
                out += f"              description: {q(a.desc(k, v))}\n"
                out += f"              runbook_url: {q('https://github.com/soakd/soakd/blob/main/docs/runbooks.md#' + a.name.lower())}\n"
    return out, {a.name: {k: sorted(a.firing(k, n)) for k in a.keys} for a in alerts}

def humanize(v):
    import math
    if v == 0 or math.isnan(v) or math.isinf(v):
        return "%.4g" % v
    if abs(v) >= 1:
        p = ""
        for pre in ["k", "M", "G", "T", "P", "E", "Z", "Y"]:
            if abs(v) < 1000:
                break
            p = pre
            v /= 1000
        return "%.4g%s" % (v, p)
    p = ""
    for pre in ["m", "u", "n", "p", "f", "a", "z", "y"]:
        if abs(v) >= 1:
            break
        p = pre
        v *= 1000
    return "%.4g%s" % (v, p)

def hdur(v):
    if v < 1:
        p = ""
        for pre in ["m", "u", "n"]:
            if abs(v) >= 1:
                break
            p = pre
            v *= 1000
        return "%.4g%ss" % (v, p)
    assert v < 60
    return "%.4gs" % v

def inc(vals, t, r):
    """increase over [t-r, t] for counters that start at 0 at t=0 (no extrapolation needed)."""
    return vals[t] - vals[max(0, t - r)]
