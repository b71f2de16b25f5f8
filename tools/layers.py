#!/usr/bin/env python3
"""The graph of the C files, and any circle in it.

An edge runs from a.c to b.c when a.o refers to a symbol b.o defines (read
with nm from the built objects: functions and data alike), or when a.c
includes b.h and b.c exists.  A circle is a set of files each reaching the
others (a strongly connected component of more than one file); the layers
must have none.

usage: layers.py [-v] [object ...]   (default: the objects of the Makefile's
SRC, in the directory of the Makefile; the .c beside each object is read
for its includes)
Prints each circle with the symbols or includes behind its edges and exits
1 when there is one; -v prints the files in layer order, top first.
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


def symbols(obj):
    """the global symbols obj defines and those it needs"""
    out = subprocess.run(["nm", obj], check=True, capture_output=True,
                         text=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            undefined.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBRCVWGS":
            defined.add(parts[2])
    return defined, undefined


def includes(src):
    """the local headers src includes"""
    if not os.path.exists(src):
        return []
    return re.findall(r'^\s*#\s*include\s+"([^"]+)\.h"', open(src).read(),
                      re.M)


def graph(objs):
    names = [os.path.splitext(os.path.basename(o))[0] for o in objs]
    owner, needs = {}, {}
    for name, obj in zip(names, objs):
        defined, needs[name] = symbols(obj)
        for s in defined:
            owner.setdefault(s, name)
    edges = {n: {} for n in names}
    for name in names:
        for s in needs[name]:
            to = owner.get(s)
            if to and to != name:
                edges[name].setdefault(to, []).append(s)
    for name, obj in zip(names, objs):
        for h in includes(os.path.splitext(obj)[0] + ".c"):
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


def main(args):
    verbose = "-v" in args
    objs = [a for a in args if a != "-v"] or makefile_objects(ROOT)
    missing = [o for o in objs if not os.path.exists(o)]
    if missing:
        sys.exit("layers.py: missing objects (build first): " +
                 " ".join(missing))
    edges = graph(objs)
    found = circles(edges)
    for comp in found:
        print("circle: " + " ".join(comp))
        for a in comp:
            for b in comp:
                if b in edges[a]:
                    why = sorted(edges[a][b])
                    print("  %s -> %s: %s%s" % (a, b, " ".join(why[:6]),
                                                 " ..." if len(why) > 6 else ""))
    if verbose and not found:
        for i, row in enumerate(layers(edges)):
            print("%2d  %s" % (i, " ".join(row)))
    print("%d files, %d edges, %d circles" % (
        len(edges), sum(len(e) for e in edges.values()), len(found)))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
