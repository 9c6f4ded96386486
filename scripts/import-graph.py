#!/usr/bin/env python3
"""Checks that the library's production imports point one way: no cycle between modules.

Usage: scripts/import-graph.py [--list | --dot] [--src DIR]   (from anywhere in the repository)
       scripts/import-graph.py --self-test   (the check finds the cycles it should, on a toy crate)

Reads the module tree from src/lib.rs (`mod x;` declarations; `#[path]` honoured) and, in
every production file, each reference to another module of the crate:
  - `use` declarations (`crate::`, `super::`, `self::`, or a child module's name), braces
    expanded;
  - path expressions anywhere in the code (`crate::x::y(...)`, `super::z::W`, `child::f()`).
Comments, string literals and every item under `#[cfg(test)]` (test modules, test-only
functions and imports, whole files declared by a test-only `mod`) are left out, so tests may
reach anywhere. A name that a module re-exports or imports (`pub use track::Tracker`, read as
`upstream::Tracker`) is followed to the module that defines it.

A cycle is checked at every level of the tree:
  - rooms: the top-level modules (`client`, `upstream`, `report`, ...), each with its whole
    subtree;
  - inside each folder module: its children (files, or sub-folders with their subtrees). The
    folder's own `mod.rs` is the room's face and is not a node there: children may use what
    it declares, and it may re-export theirs.
Exit 1 and every cycle with the references that close it (file:line, the path used); else exit
0 and one line of counts. `--list` prints the arrows between rooms; `--dot` prints that graph
in Graphviz form. Python 3 standard library only.
"""

import os
import re
import shutil
import sys
import tempfile
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
RAW_STR = re.compile(r'b?r(#*)"')
CHAR = re.compile(r"b?'(?:[^'\\\n]|\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|\\.)'")


def strip_code(text):
    """The text with comments, string and char literals blanked (newlines kept for lines)."""
    out = []
    i, n = 0, len(text)

    def blank(s):
        return re.sub(r"[^\n]", " ", s)

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(text[i:j]))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(text[i:j]))
            i = j
        else:
            m = RAW_STR.match(text, i)
            if m and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
                close = '"' + m.group(1)
                j = text.find(close, m.end())
                j = n if j < 0 else j + len(close)
                out.append(blank(text[i:j]))
                i = j
                continue
            if c == '"' or (c == "b" and text.startswith('b"', i)
                            and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_"))):
                j = i + (2 if c == "b" else 1)
                while j < n and text[j] != '"':
                    j += 2 if text[j] == "\\" else 1
                out.append(blank(text[i:j + 1]))
                i = j + 1
                continue
            m = CHAR.match(text, i)
            if m and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
                out.append(blank(m.group(0)))
                i = m.end()
                continue
            out.append(c)
            i += 1
    return "".join(out)


def item_end(code, i):
    """Index just past the item starting at `i`: its `;` at depth 0, or its closing brace."""
    depth, n = 0, len(code)
    while i < n:
        c = code[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0 and c == "}":
                return i + 1
        elif c == ";" and depth == 0:
            return i + 1
        i += 1
    return n


def bracket_end(code, i):
    """Index just past the bracket that closes the one at `i`."""
    depth = 0
    for j in range(i, len(code)):
        if code[j] in "([{":
            depth += 1
        elif code[j] in ")]}":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(code)


CFG_TEST = re.compile(r"#\[cfg\((?:test|all\(test\b[^\]]*)\)\]")
ATTR = re.compile(r"\s*#\[")


def strip_tests(code):
    """The code with every `#[cfg(test)]` item blanked. None when the file is test-only."""
    if re.search(r"#!\[cfg\(test\)\]", code):
        return None
    out = list(code)
    pos = 0
    while True:
        m = CFG_TEST.search(code, pos)
        if not m:
            break
        j = m.end()
        while True:  # further attributes on the same item
            a = ATTR.match(code, j)
            if not a:
                break
            j = bracket_end(code, a.end() - 1)
        end = item_end(code, j)
        for k in range(m.start(), end):
            if out[k] != "\n":
                out[k] = " "
        pos = end
    return "".join(out)


class Module:
    def __init__(self, path, file):
        self.path = path  # tuple of segments below the crate
        self.file = file
        self.children = {}  # name -> Module
        self.code = ""
        self.aliases = {}  # name -> absolute path (tuple) of what a `use` brings in


def child_file(parent_file, name, attr_path):
    base = os.path.dirname(parent_file)
    stem = os.path.basename(parent_file)
    if attr_path:
        return os.path.join(base, attr_path)
    if stem not in ("lib.rs", "mod.rs", "main.rs"):
        base = os.path.join(base, stem[:-3])
    for f in (os.path.join(base, name + ".rs"), os.path.join(base, name, "mod.rs")):
        if os.path.exists(f):
            return f
    raise SystemExit(f"import-graph: module {name} declared in {parent_file} has no file")


MOD_DECL = re.compile(
    r"((?:#\[[^\]]*\]\s*)*)(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;")


def load(path, file, modules):
    mod = Module(path, file)
    modules[path] = mod
    with open(file, encoding="utf-8") as f:
        code = strip_tests(strip_code(f.read()))
    mod.code = code or ""
    for m in MOD_DECL.finditer(mod.code):
        attrs, name = m.group(1), m.group(2)
        p = re.search(r'#\[path\s*=\s*"([^"]*)"\]', attrs)
        sub = child_file(file, name, p.group(1) if p else None)
        mod.children[name] = load(path + (name,), sub, modules)
    return mod


def use_trees(code):
    """(line, [segments...]) for every path a `use` declaration names, braces expanded."""
    for m in re.finditer(r"(?<![A-Za-z0-9_])use\s+", code):
        end = item_end(code, m.end())
        tree = code[m.end():end].rstrip().rstrip(";")
        tree = re.sub(r"\s+", "", re.sub(r"\s+as\s+", "@", tree))
        line = code.count("\n", 0, m.start()) + 1
        for segs, alias in expand(tree, []):
            yield line, segs, alias


def expand(tree, prefix):
    """[(segments, bound name)] of a use tree such as `a::{b, c::{self, D as E}}`."""
    if tree.startswith("::"):
        tree = tree[2:]
    i = tree.find("{")
    if i < 0:
        segs = prefix + [x for x in tree.split("::") if x]
        if segs and "@" in segs[-1]:
            last, alias = segs[-1].split("@")
            return [(segs[:-1] + [last], alias)]
        return [(segs, segs[-1] if segs else None)]
    head = [s for s in tree[:i].split("::") if s]
    inner = tree[i + 1:tree.rfind("}")]
    results, parts, depth, cur = [], [], 0, ""
    for ch in inner:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    for p in parts:
        if not p:
            continue
        if p == "self" or p.startswith("self@"):
            alias = p.split("@")[1] if "@" in p else (head or prefix)[-1]
            results.append((prefix + head, alias))
        else:
            results.extend(expand(p, prefix + head))
    return results


class Graph:
    def __init__(self, src):
        self.src = src
        self.modules = {}
        self.refs = []  # (from path, to path, file, line, text)

    def absolute(self, mod, segs):
        """The absolute segments of a path written in `mod`, or None outside the crate."""
        if not segs:
            return None
        if segs[0] == "crate":
            return tuple(segs[1:])
        if segs[0] in ("self", "super"):
            base = list(mod.path)
            k = 0
            while k < len(segs) and segs[k] in ("self", "super"):
                if segs[k] == "super":
                    if not base:
                        return None
                    base.pop()
                k += 1
            return tuple(base) + tuple(segs[k:])
        if segs[0] in mod.children:
            return mod.path + tuple(segs)
        return None

    def resolve(self, path, seen=None):
        """The module defining what `path` names: the deepest module on it, aliases followed."""
        seen = seen or set()
        k = 0
        while k < len(path) and path[:k + 1] in self.modules:
            k += 1
        mod = self.modules[path[:k]]
        if k < len(path) and path[k] in mod.aliases and (mod.path, path[k]) not in seen:
            seen.add((mod.path, path[k]))
            target = mod.aliases[path[k]] + path[k + 1:]
            return self.resolve(target, seen)
        return mod.path

    def build(self):
        root = load((), os.path.join(self.src, "lib.rs"), self.modules)
        pending = []
        for mod in self.modules.values():
            for line, segs, bound in use_trees(mod.code):
                a = self.absolute(mod, segs)
                if a is None:
                    continue
                if segs[-1] == "*":
                    pending.append((mod, a[:-1], line, "::".join(segs)))
                    continue
                if bound and bound != "_":
                    mod.aliases[bound] = a
                pending.append((mod, a, line, "::".join(segs)))
        pat = re.compile(r"(?<![A-Za-z0-9_:])((?:" + IDENT + r")(?:::" + IDENT + r")+)")
        for mod in self.modules.values():
            uses = [(m.start(), item_end(mod.code, m.end()))
                    for m in re.finditer(r"(?<![A-Za-z0-9_])use\s+", mod.code)]
            for m in pat.finditer(mod.code):
                if any(s <= m.start() < e for s, e in uses):
                    continue
                segs = m.group(1).split("::")
                if segs[0] not in ("crate", "self", "super") and segs[0] not in mod.children:
                    continue
                a = self.absolute(mod, segs)
                if a is None:
                    continue
                line = mod.code.count("\n", 0, m.start()) + 1
                pending.append((mod, a, line, m.group(1)))
        for mod, a, line, text in pending:
            target = self.resolve(a)
            if target != mod.path:
                file = os.path.relpath(mod.file, os.path.dirname(self.src))
                self.refs.append((mod.path, target, file, line, text))
        return root


def tarjan(nodes, edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def name(path):
    return "::".join(path) or "crate"


def check(src):
    """(cycles as printable text, the arrows between rooms, a line of counts)."""
    g = Graph(src)
    root = g.build()
    problems = []
    levels = 0
    room_edges = defaultdict(set)
    for parent in g.modules.values():
        if not parent.children:
            continue
        levels += 1
        depth = len(parent.path)
        nodes = {parent.path + (c,) for c in parent.children}
        edges = defaultdict(set)
        why = defaultdict(list)
        for src_, dst, file, line, text in g.refs:
            if src_[:depth] != parent.path or dst[:depth] != parent.path:
                continue
            if len(src_) <= depth or len(dst) <= depth:
                continue  # the folder's own mod.rs: its face
            a, b = src_[:depth + 1], dst[:depth + 1]
            if a != b:
                edges[a].add(b)
                why[(a, b)].append(f"{file}:{line} {text}")
        if parent is root:
            room_edges = edges
        for comp in tarjan(nodes, edges):
            lines = [f"cycle among {', '.join(name(c) for c in comp)}:"]
            for a in comp:
                for b in sorted(edges[a]):
                    if b in comp:
                        lines.append(f"  {name(a)} -> {name(b)}")
                        for w in why[(a, b)][:4]:
                            lines.append(f"      {w}")
                        if len(why[(a, b)]) > 4:
                            lines.append(f"      ... and {len(why[(a, b)]) - 4} more")
            problems.append("\n".join(lines))
    n_edges = sum(len(v) for v in room_edges.values())
    counts = (f"{len(g.modules)} modules, {len(g.refs)} references, {len(root.children)} rooms "
              f"with {n_edges} arrows between them, {levels} levels checked")
    return problems, room_edges, counts


SELF_TEST = {
    # rooms a -> b -> a, closed by a path expression; comments, strings and tests don't count
    "lib.rs": "pub mod a;\npub mod b;\npub mod c;\n",
    "a.rs": "use crate::b::B;\n// crate::c::X\nconst S: &str = \"crate::c::X\";\n"
            "#[cfg(test)]\nmod tests {\n    use crate::c::X;\n}\n",
    "b.rs": "pub struct B;\npub fn f() { crate::a::g(); }\n",
    # inside c: x -> y directly, y -> x through c's re-export; mod.rs <-> children is no cycle
    "c/mod.rs": "mod x;\nmod y;\npub use x::X;\npub fn h() { y::k(); }\n",
    "c/x.rs": "use super::y::Y;\npub struct X;\nfn u() { super::h(); }\n",
    "c/y.rs": "pub struct Y;\n#[cfg(test)]\n#[allow(dead_code)]\nfn t() { crate::a::g(); }\n"
              "pub fn k() { let _ = super::X; }\n",
}


def self_test():
    tmp = tempfile.mkdtemp(prefix="import-graph-")
    try:
        src = os.path.join(tmp, "src")
        for rel, text in SELF_TEST.items():
            os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
            with open(os.path.join(src, rel), "w", encoding="utf-8") as f:
                f.write(text)
        problems, rooms, _ = check(src)
        got = sorted(p.splitlines()[0] for p in problems)
        want = ["cycle among a, b:", "cycle among c::x, c::y:"]
        arrows = {(name(a), name(b)) for a in rooms for b in rooms[a]}
        ok = got == want and arrows == {("a", "b"), ("b", "a")}
        print(f"import-graph self-test: {'ok' if ok else 'FAILED'}: {got} {sorted(arrows)}")
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp)


def main(argv):
    if "--self-test" in argv:
        return self_test()
    src = argv[argv.index("--src") + 1] if "--src" in argv else os.path.join(ROOT, "src")
    problems, room_edges, counts = check(src)
    if "--dot" in argv:
        print("digraph rooms {")
        for a in sorted(room_edges):
            for b in sorted(room_edges[a]):
                print(f'  "{name(a)}" -> "{name(b)}";')
        print("}")
    if "--list" in argv:
        for a in sorted(room_edges):
            print(f"{name(a)} -> {', '.join(name(b) for b in sorted(room_edges[a]))}")
    if problems:
        print("import-graph: production imports close a cycle (README: dependencies point one way)",
              file=sys.stderr)
        for p in problems:
            print(p, file=sys.stderr)
        return 1
    print(f"import-graph: no cycle ({counts})", file=sys.stderr if "--dot" in argv else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
