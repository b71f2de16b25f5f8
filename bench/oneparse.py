#!/usr/bin/env python3
"""One part tree per message per command, side by side with Dovecot on
the same messages, in one run: a FETCH of PREVIEW with the structure and
a part, and a SEARCH whose four content keys all read every message
(OR of needles found nowhere, read without the full-text index).

The messages are the shared corpus repeated COPIES times.  PREVIEW and
BODYSTRUCTURE are cached once made, so each FETCH run gets a fresh copy
of the folder.  IMAPD_OLD, when set, names a second imapd binary timed
the same way (a build from before a change).  Run as root: the servers
run as the test user.

usage: python3 bench/oneparse.py [copies] [runs]
"""
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import lib  # noqa: E402
import test_mime as M  # noqa: E402
from fetchparts import corpus, cpu_ms, raw_cmd  # noqa: E402
from benchlib import print_times  # noqa: E402

FETCH = "FETCH 1:* (BODYSTRUCTURE PREVIEW BODY.PEEK[1])"
SEARCH = ("SEARCH OR OR BODY zqxjzqxj BODY qjxzqjxz "
          "OR TEXT xjqzxjqz TEXT jzxqjzxq")


def folder(env, name, msgs):
    path = os.path.join(env.maildir, "." + name)
    for d in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, d))
    M.put(env, msgs, path)
    return path


def imapd_times(env, binary, names):
    """median wall and CPU ms of FETCH (a fresh folder each run) and of
    SEARCH"""
    lib.IMAPD = binary
    s = env.session(IMAPD_FTS="off")
    out = {FETCH: ([], []), SEARCH: ([], [])}
    for name in names:
        s.ok("SELECT " + name)
        for c in (FETCH, SEARCH):
            t0, c0 = time.time(), cpu_ms(s.p.pid)
            raw_cmd(s, "b", c)
            out[c][0].append((time.time() - t0) * 1e3)
            out[c][1].append(cpu_ms(s.p.pid) - c0)
    s.logout()
    return {c: (statistics.median(w), statistics.median(u))
            for c, (w, u) in out.items()}


def dovecot_times(env, msgs, runs):
    out = {FETCH: [], SEARCH: []}
    for r in range(runs):
        dmail = os.path.join(env.dir, "dovecot%d" % r, "Maildir")
        for d in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(dmail, d))
        M.put(env, msgs, dmail)
        s = lib.dovecot_session(env, dmail)
        s.ok("SELECT INBOX")
        for c in (FETCH, SEARCH):
            t0 = time.time()
            raw_cmd(s, "b", c)
            out[c].append((time.time() - t0) * 1e3)
        s.logout()
    return {c: (statistics.median(w), None) for c, w in out.items()}


def main():
    copies = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with lib.Env() as env:
        msgs = corpus(copies)
        rows = []
        bins = [("imapd", lib.IMAPD)]
        if os.environ.get("IMAPD_OLD"):
            bins.append(("imapd (IMAPD_OLD)", os.environ["IMAPD_OLD"]))
        for k, (label, binary) in enumerate(bins):
            names = ["B%dR%d" % (k, r) for r in range(runs)]
            for n in names:
                folder(env, n, msgs)
            rows.append((label, imapd_times(env, binary, names)))
        rows.append(("dovecot", dovecot_times(env, msgs, runs)))
        print_times(len(msgs), runs, (FETCH, SEARCH), rows)


if __name__ == "__main__":
    main()
