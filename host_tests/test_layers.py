"""Which way the imports in lib/ run (the rooms of README "Layout"): every lib/ and native/
module is parsed with ast, imports inside functions included, and each import between them must
go from a room to one it may import; no two modules may import each other round a circle.

A lib package or top-level module missing from ROOMS fails the test: give it a room. Rules for
a room that does not exist yet simply match nothing."""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "lib")
NATIVE = os.path.join(ROOT, "native")

# The ground floor: shims, the log ring, JSON files, input checks (SKI, documents), the UTF-8
# validator. Everyone may import it.
GROUND = ("compat", "log", "jsonfile", "check", "doccheck", "utf8")

# native/: the viper modules, each in the room it serves (utf8 is on the ground floor)
NATIVE_ROOMS = {"ws_mask": "ws", "eejson_lexer": "eejson", "eejson_escape": "eejson"}

# room -> the rooms it may import (besides itself and the ground floor)
ALLOWED = {
    "ground": (),
    "charger": (),  # the charger model
    "ws": (),
    "eejson": (),
    "modbus": (),  # pure Modbus: no charger model
    "ship": ("ws",),
    "spine": ("eejson",),
    "usecases": ("spine", "eejson", "charger"),
    "controller": ("modbus", "charger"),  # register-map interpreter and bridge
    "echonet": ("charger",),
    "mdns": (),
    "gateway": ("ship", "ws", "usecases", "spine", "eejson", "controller", "modbus", "echonet", "mdns", "charger"),
}


def room(mod):
    """The room of a lib module (dotted name), or None when ROOMS does not know it."""
    top = mod.split(".", 1)[0]
    if top in GROUND:
        return "ground"
    if top in NATIVE_ROOMS:
        return NATIVE_ROOMS[top]
    return top if top in ALLOWED else None


def lib_modules():
    """{dotted name: path} of every .py under lib/ and native/ (one import path on the device)."""
    out = {}
    for top in (LIB, NATIVE):
        for d, dirs, files in os.walk(top):
            dirs[:] = [x for x in dirs if not x.startswith((".", "__pycache__"))]
            for f in files:
                if f.endswith(".py"):
                    rel = os.path.relpath(os.path.join(d, f), top)[:-3].replace(os.sep, ".")
                    out[rel[: -len(".__init__")] if rel.endswith(".__init__") else rel] = os.path.join(d, f)
    return out


def _package(mod, path):
    return mod if path.endswith("__init__.py") else mod.rpartition(".")[0]


def imports(mods):
    """[(importer, line, imported lib module)] for every import between lib modules."""
    out = []
    for mod in sorted(mods):
        path = mods[mod]
        tree = ast.parse(open(path).read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the importer's package upwards
                    pkg = _package(mod, path).split(".")
                    pkg = pkg[: len(pkg) - node.level + 1]
                    base = ".".join(pkg + ([base] if base else []))
                # from a import b: the submodule a.b when there is one, else a itself
                names = [base + "." + a.name if base + "." + a.name in mods else base for a in node.names]
            else:
                continue
            for name in sorted(set(names)):
                # import a.b.c: the longest lib module it names
                parts = name.split(".")
                while parts and ".".join(parts) not in mods:
                    parts.pop()
                if parts:
                    out.append((mod, node.lineno, ".".join(parts)))
    return out


def _where(mods, mod, line):
    return "%s:%d" % (os.path.relpath(mods[mod], ROOT), line)


def test_every_lib_module_has_a_room():
    mods = lib_modules()
    assert mods, LIB
    missing = sorted(m for m in mods if room(m) is None)
    assert not missing, "lib modules in no room (add them to ALLOWED or GROUND): %s" % ", ".join(missing)


def test_imports_run_downward_only():
    mods = lib_modules()
    bad = []
    for mod, line, target in imports(mods):
        src, dst = room(mod), room(target)
        if src is None or dst is None or src == dst or dst == "ground":
            continue
        if dst not in ALLOWED[src]:
            may = ", ".join(ALLOWED[src] + ("ground",))
            bad.append("%s: %s imports %s: room %s may import %s only"
                       % (_where(mods, mod, line), mod, target, src, may))
    assert not bad, "imports against the layer table (%d):\n  %s" % (len(bad), "\n  ".join(bad))


def test_no_import_circles_between_modules():
    mods = lib_modules()
    graph = {m: set() for m in mods}
    first = {}
    for mod, line, target in imports(mods):
        if target != mod:
            graph[mod].add(target)
            first.setdefault((mod, target), line)
    cycles = _cycles(graph)
    text = []
    for c in cycles:
        hops = ["%s -> %s (%s)" % (a, b, _where(mods, a, first[(a, b)])) for a, b in zip(c, c[1:] + c[:1])]
        text.append("; ".join(hops))
    assert not cycles, "import circles (%d):\n  %s" % (len(cycles), "\n  ".join(text))


def test_the_layer_table_has_no_circle():
    graph = {r: set(ALLOWED[r]) for r in ALLOWED}
    assert not _cycles(graph), _cycles(graph)


def _cycles(graph):
    """One cycle (a list of nodes) per strongly connected component with more than one node
    (Tarjan's algorithm, iterative)."""
    index = {}
    low = {}
    stack = []
    on = set()
    comps = []
    counter = [0]
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in graph:
                    continue
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        comps.append(_path(graph, set(comp)))
    return comps


def _path(graph, comp):
    # a concrete circle inside a strongly connected component: walk from its smallest node
    # until a node repeats
    start = min(comp)
    seen = [start]
    v = start
    while True:
        v = min(w for w in graph[v] if w in comp)
        if v in seen:
            return seen[seen.index(v):]
        seen.append(v)


def test_the_checker_sees_circles_and_function_level_imports(tmp_path):
    # the checker itself: a circle closed by an import inside a function is found
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from gateway import app\n")
    found = imports({"gateway.diag": str(src), "gateway.app": str(src), "gateway": str(src)})
    assert ("gateway.diag", 2, "gateway.app") in found
