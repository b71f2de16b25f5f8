"""The layers: no circle in the graph of the C files (tools/layers.py,
reading the built objects with nm and the sources for their includes), and
the check itself finding a circle of calls or of includes in small
programs made for it."""
import os
import re
import subprocess
import sys

import lib

ROOT = lib.ROOT
LAYERS = os.path.join(ROOT, "tools", "layers.py")


def layers(*args, cwd=ROOT):
    return subprocess.run([sys.executable, LAYERS] + list(args), cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def build(d, files):
    """compile each name: source in d, return the objects"""
    objs = []
    for name, src in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(src)
        if name.endswith(".c"):
            obj = os.path.join(d, name[:-2] + ".o")
            r = subprocess.run(["cc", "-c", "-o", obj, name], cwd=d,
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            objs.append(obj)
    return objs


def test_no_circle_between_files(env):
    # the objects as the sources are now (a no-op after make imapd)
    r = subprocess.run(["make", "-s", "imapd"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    r = layers("-v")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 circles between files and modules" in r.stdout, r.stdout
    rows = [line.split()[1:] for line in r.stdout.splitlines()
            if re.match(r" ?\d+  \S", line)]
    # the layers as the README draws them: start-up on top, util at the
    # bottom, the session below the handlers that use it
    assert rows[0] == ["imapd"], r.stdout
    assert rows[-1] == ["util"], r.stdout
    depth = {f: i for i, row in enumerate(rows) for f in row}
    for handler in ("view", "mailbox", "fetch", "search", "context"):
        assert depth[handler] < depth["session"], r.stdout
    assert depth["session"] < depth["io"], r.stdout
    # the store's rooms, top to bottom: the namespace; the messages and
    # sync; the listing of new/ and cur/ with the first UID list, the index
    # and the cache; changes to the UID list; the UID record with names
    # and paths
    for upper, lower in (("folders", "message"), ("folders", "sync"),
                         ("message", "scan"), ("sync", "scan"),
                         ("sync", "index"), ("sync", "msgcache"),
                         ("scan", "txn"), ("txn", "maildir"),
                         ("index", "maildir"), ("msgcache", "maildir")):
        assert depth[upper] < depth[lower], (upper, lower, r.stdout)


def test_finds_a_circle_of_calls(env):
    objs = build(env.dir, {
        "a.c": "int b(void); int c(void);\nint a(void) { return b() + c(); }\n",
        "b.c": "extern int d;\nint b(void) { return d; }\n",
        "c.c": "int c(void) { return 1; }\n",
        "d.c": "int a(void);\nint d = 1;\nint e(void) { return a(); }\n"})
    r = layers(*objs)
    assert r.returncode == 1, r.stdout + r.stderr
    # a calls b, b reads d's data, d calls a; c stays out of it
    assert "circle: a b d\n" in r.stdout, r.stdout
    assert "  b -> d: d\n" in r.stdout and "  d -> a: a\n" in r.stdout, \
        r.stdout
    # taken as one module, the circle is shown but passes
    r = layers("-m", "abd=a,b,d", *objs)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "circle inside a module: a b d" in r.stdout, r.stdout


def test_finds_a_circle_through_an_include(env):
    # low.c includes mid.h, which includes top.h: low reaches up to top
    objs = build(env.dir, {
        "low.h": "int low(void);\n",
        "top.h": "int top(void);\n",
        "mid.h": '#include "top.h"\n',
        "top.c": '#include "low.h"\nint top(void) { return low(); }\n',
        "low.c": '#include "mid.h"\nint low(void) { return 2; }\n'})
    r = layers(*objs)
    assert r.returncode == 1, r.stdout + r.stderr
    assert '  low -> top: #include "top.h"' in r.stdout, r.stdout
    # without the include going up, the two are layers
    with open(os.path.join(env.dir, "low.c"), "w") as f:
        f.write("int low(void) { return 2; }\n")
    r = layers("-v", *objs)
    assert r.returncode == 0, r.stdout + r.stderr
    assert " 0  top\n 1  low\n" in r.stdout, r.stdout


def test_nothing_exported_that_one_file_uses(env):
    """tools/exports.py: every function or variable a file exports is used
    by another file (or a fuzz target); the rest are static"""
    r = subprocess.run(["make", "-s", "imapd"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools",
                                                     "exports.py")],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stdout.strip(), r.stdout + r.stderr
