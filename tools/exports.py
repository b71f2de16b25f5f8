#!/usr/bin/env python3
"""Names a file exports that no other file uses: each should be static.

Reads the symbols of the built objects with nm (the objects of the
Makefile's SRC, so run `make imapd` first): a function or variable that
one object defines and no other object, and no fuzz target, refers to.
A name no file uses at all is listed as unused.

usage: tools/exports.py     exits 1 when it lists any
"""
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def objects():
    text = open(os.path.join(ROOT, "Makefile")).read().replace("\\\n", " ")
    src = re.search(r"^SRC\s*=(.*)$", text, re.M).group(1).split()
    return [os.path.join(ROOT, s[:-2] + ".o") for s in src]


def symbols(obj):
    out = subprocess.run(["nm", obj], check=True, capture_output=True,
                         text=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        f = line.split()
        if len(f) == 2 and f[0] == "U":
            used.add(f[1])
        elif len(f) == 3 and f[1] in "TDBRCG" and \
                not f[2].startswith("__"):
            # "__" names are the compiler's own (__odr_asan.* under ASan)
            defined.add(f[2])
    return defined, used


def main():
    table = {o: symbols(o) for o in objects()}
    fuzz = "".join(open(p).read()
                   for p in glob.glob(os.path.join(ROOT, "fuzz", "*.c")))
    found = 0
    for obj, (defined, _) in sorted(table.items()):
        for name in sorted(defined - {"main"}):
            users = [o for o, (_, used) in table.items()
                     if o != obj and name in used]
            if users or re.search(r"\b%s\b" % re.escape(name), fuzz):
                continue
            src = obj[:-2] + ".c"
            own = len(re.findall(r"\b%s\b" % re.escape(name),
                                 open(src).read())) > 1
            print("%s: %s %s" % (os.path.basename(src), name,
                                 "(used only here)" if own else "(unused)"))
            found += 1
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
