#!/usr/bin/env python3
"""Gateway manifests: gateways/<name>/gateway.toml, read and checked in one place.

A gateway is one folder under gateways/ holding:
  gateway.toml   what it is, where it comes from, how it is reached (this module checks it)
  install        installs it into $INSTALL_DIR (a venv, a node_modules: a folder of its own)
  start          starts it on 127.0.0.1:$PORT with its provider at $UPSTREAM_URL, writes $PID_FILE
  stop           stops what start started (the pid file's process group), nothing else
and whatever files those three read (a config template, a preload).

Usage:
  manifest.py check [NAME...]     check every manifest (or the named ones); exit 1 on an error
  manifest.py self-test           bad manifests are rejected, each error naming its key
  manifest.py shell NAME          shell assignments for scripts/gateways/run.sh (eval them)
  manifest.py json NAME           the checked manifest as JSON

Every key is checked: an unknown key, a missing one, or a value of the wrong kind is an error
naming the file, the key and the reason. Every API soakd speaks is either served ([[apis]]) or
not ([[unsupported]], with the reason): none is silently left out.
"""

import json
import re
import shlex
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GATEWAYS = ROOT / "gateways"

# The APIs soakd speaks (README, "APIs"), in its order, with what they can do.
API_KINDS = ["openai", "openai-responses", "openai-completions", "openai-embeddings", "anthropic"]
STREAMS = {k: k != "openai-embeddings" for k in API_KINDS}
SOURCES = ["pypi", "npm", "debian"]
SCRIPTS = ["install", "start", "stop"]
# Placeholders a header value may hold, filled in by the harness at run time.
PLACEHOLDERS = {"upstream", "key"}

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
ENV_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class ManifestError(Exception):
    pass


def _fail(path, key, why):
    raise ManifestError(f"{path}: {key}: {why}")


class _Table:
    """One TOML table being read: every key taken is marked, the rest are unknown keys."""

    def __init__(self, path, where, data):
        if not isinstance(data, dict):
            _fail(path, where or "(top)", "expected a table")
        self.path, self.where, self.data, self.seen = path, where, data, set()

    def key(self, k):
        return f"{self.where}.{k}" if self.where else k

    def take(self, k, kind, required=True, default=None):
        self.seen.add(k)
        if k not in self.data:
            if required:
                _fail(self.path, self.key(k), "missing")
            return default
        v = self.data[k]
        if kind is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
            _fail(self.path, self.key(k), f"expected {kind.__name__}, got {v!r}")
        return v

    def text(self, k, required=True, default=None):
        v = self.take(k, str, required, default)
        if v is not None and not v.strip():
            _fail(self.path, self.key(k), "empty")
        return v

    def done(self):
        extra = sorted(set(self.data) - self.seen)
        if extra:
            _fail(self.path, self.key(extra[0]), "unknown key")


def _headers(path, where, raw):
    t = _Table(path, where, raw)
    out = {}
    for name in list(raw):
        v = t.text(name)
        for ph in re.findall(r"\{([^}]*)\}", v):
            if ph not in PLACEHOLDERS:
                _fail(path, t.key(name), f"unknown placeholder {{{ph}}} (known: "
                      + ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS)) + ")")
        out[name.lower()] = v
    t.done()
    return out


def load(name, base=None):
    """The checked manifest of gateways/NAME (or BASE/NAME), as a dict."""
    base = GATEWAYS if base is None else Path(base)
    folder = base / name
    path = folder / "gateway.toml"
    rel = path.relative_to(base.parent)
    if not path.is_file():
        raise ManifestError(f"{rel}: no such manifest (gateways: "
                            f"{', '.join(names(base)) or 'none'})")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ManifestError(f"{rel}: not TOML: {e}") from None
    top = _Table(rel, "", raw)
    m = {"name": top.text("name")}
    if m["name"] != name:
        _fail(rel, "name", f"{m['name']!r} is not the folder's name {name!r}")
    if not NAME_RE.match(name):
        _fail(rel, "name", "lower-case letters, digits and '-' only")
    m["title"] = top.text("title")
    m["source"] = top.text("source")
    if m["source"] not in SOURCES:
        _fail(rel, "source", f"{m['source']!r} is not one of {', '.join(SOURCES)}")
    m["package"] = top.text("package")
    m["version"] = top.text("version", required=m["source"] != "debian")
    if m["source"] == "debian" and m["version"] is not None:
        _fail(rel, "version", "a Debian package is not pinned here: its installed version is "
              "recorded with each run")
    m["homepage"] = top.text("homepage")
    m["key"] = top.text("key", required=False)
    m["ready_path"] = top.text("ready_path", required=False)
    if m["ready_path"] is not None and not m["ready_path"].startswith("/"):
        _fail(rel, "ready_path", "must start with /")
    m["overhead_header"] = top.text("overhead_header", required=False)
    m["overhead_header_unit"] = top.text("overhead_header_unit", required=False)
    if (m["overhead_header"] is None) != (m["overhead_header_unit"] is None):
        _fail(rel, "overhead_header_unit", "set with overhead_header, or neither")
    if m["overhead_header_unit"] not in (None, "ms", "s", "us"):
        _fail(rel, "overhead_header_unit", "one of ms, s, us")
    m["notes"] = top.take("notes", list, required=False, default=[])
    for i, n in enumerate(m["notes"]):
        if not isinstance(n, str) or not n.strip():
            _fail(rel, f"notes[{i}]", "expected a non-empty string")

    pins = top.take("pins", list, required=False, default=[])
    m["pins"] = []
    for i, p in enumerate(pins):
        t = _Table(rel, f"pins[{i}]", p)
        pin = {"package": t.text("package"), "version": t.text("version"),
               "env": t.text("env"), "why": t.text("why")}
        t.done()
        if not ENV_RE.match(pin["env"]):
            _fail(rel, f"pins[{i}].env", "an upper-case environment variable name")
        m["pins"].append(pin)

    w = _Table(rel, "watch", top.take("watch", dict))
    m["watch"] = {"include_children": w.take("include_children", bool),
                  "what": w.text("what")}
    w.done()

    m["env"] = []
    for i, e in enumerate(top.take("env", list, required=False, default=[])):
        t = _Table(rel, f"env[{i}]", e)
        env = {"name": t.text("name"), "value": t.take("value", str), "why": t.text("why")}
        t.done()
        if not ENV_RE.match(env["name"]):
            _fail(rel, f"env[{i}].name", "an upper-case environment variable name")
        m["env"].append(env)

    m["apis"] = []
    for i, a in enumerate(top.take("apis", list)):
        t = _Table(rel, f"apis[{i}]", a)
        api = {"api": t.text("api"), "path": t.text("path"), "model": t.text("model"),
               "upstream_path": t.text("upstream_path"),
               "headers": _headers(rel, f"apis[{i}].headers",
                                   t.take("headers", dict, required=False, default={})),
               "note": t.text("note", required=False)}
        t.done()
        if api["api"] not in API_KINDS:
            _fail(rel, f"apis[{i}].api", f"{api['api']!r} is not one of {', '.join(API_KINDS)}")
        for k in ("path", "upstream_path"):
            if not api[k].startswith("/"):
                _fail(rel, f"apis[{i}].{k}", "must start with /")
        m["apis"].append(api)
    if not m["apis"]:
        _fail(rel, "apis", "a gateway serves at least one API")
    if m["apis"][0]["api"] != "openai":
        _fail(rel, "apis[0].api", "the first API is OpenAI chat (the cancels and the storms "
              "run on it)")

    m["unsupported"] = []
    for i, u in enumerate(top.take("unsupported", list, required=False, default=[])):
        t = _Table(rel, f"unsupported[{i}]", u)
        un = {"api": t.text("api"), "reason": t.text("reason")}
        t.done()
        if un["api"] not in API_KINDS:
            _fail(rel, f"unsupported[{i}].api", f"{un['api']!r} is not one of "
                  f"{', '.join(API_KINDS)}")
        m["unsupported"].append(un)
    top.done()

    listed = [a["api"] for a in m["apis"]] + [u["api"] for u in m["unsupported"]]
    for k in API_KINDS:
        n = listed.count(k)
        if n == 0:
            _fail(rel, "apis", f"{k} is neither in [[apis]] nor in [[unsupported]] (with the "
                  "reason)")
        if n > 1:
            _fail(rel, "apis", f"{k} is listed {n} times")
    if m["key"] is None and any("{key}" in v for a in m["apis"] for v in a["headers"].values()):
        _fail(rel, "key", "a header uses {key}, but the manifest sets no key")

    for s in SCRIPTS:
        f = folder / s
        if not f.is_file():
            _fail(rel, s, f"{f.relative_to(base.parent)} is missing")
        if not f.stat().st_mode & 0o111:
            _fail(rel, s, f"{f.relative_to(base.parent)} is not executable")
    return m


def names(base=None):
    """The gateways: every folder of gateways/ with a gateway.toml, sorted."""
    base = GATEWAYS if base is None else Path(base)
    if not base.is_dir():
        return []
    return sorted(p.parent.name for p in base.glob("*/gateway.toml"))


def shell(m):
    """Shell assignments for run.sh: GW_* facts, the pins' variables, and GW_ENV (the start
    environment, one NAME=VALUE word each, for `env`)."""
    q = shlex.quote
    lines = [
        f"GW_TITLE={q(m['title'])}",
        f"GW_SOURCE={q(m['source'])}",
        f"GW_PACKAGE={q(m['package'])}",
        f"GW_VERSION={q(m['version'] or '')}",
        f"GW_KEY={q(m['key'] or '')}",
        f"GW_READY_PATH={q(m['ready_path'] or '')}",
        "GW_PINS=(" + " ".join(q(f"{p['env']}={p['version']}") for p in m["pins"]) + ")",
        "GW_ENV=(" + " ".join(q(f"{e['name']}={e['value']}") for e in m["env"]) + ")",
    ]
    return "\n".join(lines) + "\n"


GOOD = """
name = "probe"
title = "A probe"
source = "pypi"
package = "probe"
version = "1.0"
homepage = "https://example.invalid"
key = "k"
[watch]
include_children = true
what = "the probe"
[[env]]
name = "PROBE_OFF"
value = "1"
why = "quiet"
[[apis]]
api = "openai"
path = "/v1/chat/completions"
model = "m"
upstream_path = "/v1/chat/completions"
headers = { x-host = "{upstream}/v1", authorization = "Bearer {key}" }
[[apis]]
api = "openai-responses"
path = "/v1/responses"
model = "m"
upstream_path = "/v1/responses"
[[apis]]
api = "openai-completions"
path = "/v1/completions"
model = "m"
upstream_path = "/v1/completions"
[[apis]]
api = "openai-embeddings"
path = "/v1/embeddings"
model = "m"
upstream_path = "/v1/embeddings"
[[unsupported]]
api = "anthropic"
reason = "no such route"
"""

# (what the mutation does, old text, new text, what the error must say)
BAD = [
    ("unknown top-level key", 'title = "A probe"', 'title = "A probe"\ncolour = "red"',
     "colour: unknown key"),
    ("unknown key in an API", 'model = "m"\nupstream_path = "/v1/responses"',
     'model = "m"\nupstream_path = "/v1/responses"\nrout = "/x"', "apis[1].rout: unknown key"),
    ("name other than the folder", 'name = "probe"', 'name = "other"', "name: 'other' is not"),
    ("unknown source", 'source = "pypi"', 'source = "cargo"', "source: 'cargo' is not one of"),
    ("a PyPI package without its pin", 'version = "1.0"\n', "", "version: missing"),
    ("a Debian package with a pin", 'source = "pypi"', 'source = "debian"',
     "version: a Debian package is not pinned"),
    ("an API dropped silently", '[[unsupported]]\napi = "anthropic"\nreason = "no such route"\n',
     "", "anthropic is neither in [[apis]] nor in [[unsupported]]"),
    ("an API twice", 'api = "openai-embeddings"', 'api = "openai-responses"',
     "openai-responses is listed 2 times"),
    ("unknown API", 'api = "openai-embeddings"', 'api = "gemini"', "apis[3].api: 'gemini'"),
    ("unsupported without its reason", 'reason = "no such route"\n', "",
     "unsupported[0].reason: missing"),
    ("unknown placeholder", '{upstream}/v1', '{upstreams}/v1', "unknown placeholder {upstreams}"),
    ("{key} without a key", 'key = "k"\n', "", "key: a header uses {key}"),
    ("a path without its slash", 'path = "/v1/completions"', 'path = "v1/completions"',
     "apis[2].path: must start with /"),
    ("an env name in lower case", 'name = "PROBE_OFF"', 'name = "probe_off"',
     "env[0].name: an upper-case"),
    ("include_children not a boolean", "include_children = true", 'include_children = "yes"',
     "watch.include_children: expected bool"),
    ("not TOML", 'title = "A probe"', "title = ", "not TOML"),
]


def self_test():
    """Each mutation of a good manifest fails with its key named; the good one passes; a
    missing or non-executable script fails."""
    import tempfile
    failures = []
    with tempfile.TemporaryDirectory() as d:
        base = Path(d) / "gateways"
        folder = base / "probe"
        folder.mkdir(parents=True)
        for s in SCRIPTS:
            (folder / s).write_text("#!/bin/sh\n")
            (folder / s).chmod(0o755)
        (folder / "gateway.toml").write_text(GOOD)
        m = load("probe", base)
        assert [a["api"] for a in m["apis"]] == API_KINDS[:4], m["apis"]
        assert m["unsupported"] == [{"api": "anthropic", "reason": "no such route"}]
        for what, old, new, want in BAD:
            assert old in GOOD, f"self-test case {what!r}: {old!r} is not in the good manifest"
            (folder / "gateway.toml").write_text(GOOD.replace(old, new, 1))
            try:
                load("probe", base)
                failures.append(f"{what}: accepted")
            except ManifestError as e:
                if want not in str(e):
                    failures.append(f"{what}: {e} (wanted {want!r})")
        (folder / "gateway.toml").write_text(GOOD)
        (folder / "stop").chmod(0o644)
        try:
            load("probe", base)
            failures.append("a stop script that is not executable: accepted")
        except ManifestError as e:
            if "stop is not executable" not in str(e):
                failures.append(f"non-executable stop: {e}")
        (folder / "stop").unlink()
        try:
            load("probe", base)
            failures.append("a missing stop script: accepted")
        except ManifestError as e:
            if "stop is missing" not in str(e):
                failures.append(f"missing stop: {e}")
    for f in failures:
        print(f"manifest self-test: {f}", file=sys.stderr)
    if not failures:
        print(f"manifest self-test: {len(BAD) + 2} bad manifests rejected, each naming its key")
    return 1 if failures else 0


def main(argv):
    if len(argv) >= 2 and argv[1] == "self-test":
        return self_test()
    if len(argv) < 2 or argv[1] not in ("check", "shell", "json"):
        print(__doc__, file=sys.stderr)
        return 2
    cmd, rest = argv[1], argv[2:]
    try:
        if cmd == "check":
            todo = rest or names()
            if not todo:
                raise ManifestError("gateways/: no manifest found")
            for n in todo:
                load(n)
            print(f"{len(todo)} gateway manifests checked: {', '.join(todo)}")
            return 0
        if len(rest) != 1:
            print(f"manifest.py {cmd} NAME", file=sys.stderr)
            return 2
        m = load(rest[0])
        print(shell(m) if cmd == "shell" else json.dumps(m, indent=2), end="" if cmd == "shell" else "\n")
        return 0
    except ManifestError as e:
        print(f"manifest: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
