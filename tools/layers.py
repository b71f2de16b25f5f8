#!/usr/bin/env python3
"""The graph of the C files, and any circle in it.

An edge runs from a.c to b.c when a.o refers to a symbol b.o defines (read
with nm from the built objects: functions and data alike), or when a.c
includes b.h (itself or through another header) and b.c exists.  A circle is a set of files each reaching the
others (a strongly connected component of more than one file); the layers
must have none.

usage: layers.py [-v] [-m name=a,b,...] [object ...]
  objects: default the objects of the Makefile's SRC, beside the Makefile;
    the .c beside each object is read for its includes
  -m: files that are one module (sharing a private header): the graph is
    checked between modules, and circles inside one are only shown
  -v: the files in layer order, top first
Prints each circle with the symbols or includes behind its edges and exits
1 when there is one between modules.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def makefile_objects(root):
    text = open(os.path.join(root, "Makefile")).read().replace("\\\n", " ")
    m = re.search(r"^SRC\s*=(.*)$", text, re.M)
    return [os.path.join(root, s[:-2] + ".o") for s in m.group(1).split()]


def symbols(objs):
    """the global symbols each object defines and those it needs (one nm
    for all of them)"""
    out = subprocess.run(["nm", "-A"] + objs, check=True,
                         capture_output=True, text=True).stdout
    syms = {o: (set(), set()) for o in objs}
    for line in out.splitlines():
        obj, _, rest = line.rpartition(":")
        parts = rest.split()
        if obj not in syms:
            continue
        if len(parts) == 2 and parts[0] == "U":
            syms[obj][1].add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBRCVWGS":
            syms[obj][0].add(parts[2])
    return syms


def includes(src, seen=None):
    """the local headers src includes, and those they include"""
    seen = set() if seen is None else seen
    if not os.path.exists(src):
        return seen
    for h in re.findall(r'^\s*#\s*include\s+"([^"]+)\.h"',
                        open(src).read(), re.M):
        h = os.path.normpath(os.path.join(os.path.dirname(src), h))
        if h not in seen:
            seen.add(h)
            includes(h + ".h", seen)
    return seen


def graph(objs):
    names = [os.path.splitext(os.path.basename(o))[0] for o in objs]
    owner, needs, syms = {}, {}, symbols(objs)
    for name, obj in zip(names, objs):
        defined, needs[name] = syms[obj]
        for s in defined:
            owner.setdefault(s, name)
    edges = {n: {} for n in names}
    for name in names:
        for s in needs[name]:
            to = owner.get(s)
            if to and to != name:
                edges[name].setdefault(to, []).append(s)
    for name, obj in zip(names, objs):
        for h in sorted(includes(os.path.splitext(obj)[0] + ".c")):
            h = os.path.basename(h)
            if h in edges and h != name:
                edges[name].setdefault(h, []).append('#include "%s.h"' % h)
    return edges


def circles(edges):
    """strongly connected components of more than one node (Tarjan)"""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
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
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def layers(edges):
    """the files by depth: a file sits above everything it reaches"""
    depth = {}

    def d(v, seen=()):
        if v not in depth:
            depth[v] = 1 + max((d(w, seen + (v,)) for w in edges[v]
                                if w not in seen), default=-1)
        return depth[v]
    for v in edges:
        d(v)
    rows = {}
    for v, k in depth.items():
        rows.setdefault(k, []).append(v)
    return [sorted(rows[k]) for k in sorted(rows, reverse=True)]


def merge(edges, modules):
    """the graph between modules: each file of a module stands for it"""
    of = {f: name for name, files in modules.items() for f in files}
    out = {}
    for a, to in edges.items():
        ea = out.setdefault(of.get(a, a), {})
        for b, why in to.items():
            if of.get(b, b) != of.get(a, a):
                ea.setdefault(of.get(b, b), []).extend(
                    "%s->%s %s" % (a, b, w) if b in of or a in of else w
                    for w in why)
    return out


def show(label, comps, edges):
    for comp in comps:
        print("%s: %s" % (label, " ".join(comp)))
        for a in comp:
            for b in comp:
                if b in edges[a]:
                    why = sorted(edges[a][b])
                    print("  %s -> %s: %s%s" % (a, b, " ".join(why[:6]),
                                                 " ..." if len(why) > 6 else ""))


def main(args):
    verbose, modules, objs = False, {}, []
    while args:
        a = args.pop(0)
        if a == "-v":
            verbose = True
        elif a == "-m" and args:
            name, _, files = args.pop(0).partition("=")
            modules[name] = files.split(",")
        else:
            objs.append(a)
    objs = objs or makefile_objects(ROOT)
    missing = [o for o in objs if not os.path.exists(o)]
    if missing:
        sys.exit("layers.py: missing objects (build first): " +
                 " ".join(missing))
    edges = graph(objs)
    inside = [c for c in circles(edges)
              if any(set(c) <= set(f) for f in modules.values())]
    show("circle inside a module", inside, edges)
    medges = merge(edges, modules)
    found = circles(medges)
    show("circle", found, medges)
    if verbose and not found:
        for i, row in enumerate(layers(medges)):
            print("%2d  %s" % (i, " ".join(row)))
    print("%d files, %d edges, %d circles between files and modules" % (
        len(edges), sum(len(e) for e in edges.values()), len(found)))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
