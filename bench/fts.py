#!/usr/bin/env python3
"""SEARCH on a big folder with the full-text index, for one or more imapd
binaries side by side with Dovecot (no FTS plugin) on the same messages,
in one run.

The Maildir comes from bench/genmaildir.py (made once and kept in
/var/tmp: --src, default /var/tmp/fts-bench/mdN); each server gets its own
hard-linked copy under --work (only directories and new files are handed
to the test user: the linked messages stay as they are).  For each imapd
binary (--imapd LABEL=PATH, several to compare, default after=./imapd):
its index is built from scratch by the first search, timed with the
process's CPU time and peak memory; then the warm queries, the median of
RUNS each (one pass first fills the page cache); then DELIVER messages
arrive in new/ and the next search, which indexes them, gives the time
per delivered message.  Dovecot and the scan without the index
(IMAPD_FTS=off, the last binary) read every message for every query: one
run each; --no-scan leaves the scan out (at 100k each query of it takes
minutes).  Times are wall clock and the server's CPU time (from
/proc/PID/schedstat), both in ms.  Run as root: the servers run as the
test user.

usage: python3 bench/fts.py [--messages N] [--runs R] [--src DIR]
                            [--work DIR] [--imapd LABEL=PATH ...]
                            [--no-scan] [--deliver N]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
os.environ.setdefault("READ_TIMEOUT", "1200")	# a 100k build or scan
import lib  # noqa: E402

DOVECOT = "/usr/lib/dovecot/imap"
FTS_FILE = "imapd-fts"
QUERIES = [
    ("TEXT rare word", 'SEARCH TEXT "contract-42"'),
    ("TEXT rare phrase", 'SEARCH TEXT "budget kernel photos"'),
    ("TEXT common", "SEARCH TEXT meeting"),
    ("BODY rare phrase", 'SEARCH BODY "password security notice"'),
    ("BODY common", "SEARCH BODY release"),
    ("SUBJECT", 'SEARCH CHARSET UTF-8 SUBJECT "R\u00e9union"'),
    ("FROM", "SEARCH FROM kierkeg"),
    ("HEADER List-Id", "SEARCH HEADER List-Id hiking-club"),
]


def generate(path, n, seed):
    if not os.path.isdir(os.path.join(path, "cur")):
        subprocess.run([sys.executable, os.path.join(HERE, "genmaildir.py"),
                        path, str(n), "--seed", str(seed)], check=True)
    return path


def clone(env, src, dst):
    """hard links of src's messages in a new Maildir dst of the user's"""
    os.makedirs(dst)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(dst, sub))
        for f in os.listdir(os.path.join(src, sub)):
            os.link(os.path.join(src, sub, f), os.path.join(dst, sub, f))
        os.chown(os.path.join(dst, sub), env.uid, env.gid)
    if os.path.exists(os.path.join(src, "dovecot-keywords")):
        shutil.copy(os.path.join(src, "dovecot-keywords"), dst)
        os.chown(os.path.join(dst, "dovecot-keywords"), env.uid, env.gid)
    os.chown(dst, env.uid, env.gid)


def du(path):
    total = 0
    for sub in ("cur", "new"):
        for f in os.listdir(os.path.join(path, sub)):
            total += os.stat(os.path.join(path, sub, f)).st_size
    return total


def hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmHWM:"):
                return int(ln.split()[1])
    return 0


def cpu_ms(pid):
    with open("/proc/%d/schedstat" % pid) as f:
        return int(f.read().split()[0]) / 1e6


def dovecot(env, maildir):
    s = lib.Session.__new__(lib.Session)
    environ = {"USER": env.user, "HOME": env.dir, "PATH": "/usr/bin:/bin"}
    s.p = env.popen([DOVECOT, "-o", "mail_location=maildir:" + maildir],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL, env=environ)
    s.buf, s.ntag = b"", 0
    g = s.line(timeout=60)
    assert g.startswith(b"* PREAUTH"), g
    return s


def imapd(env, path, maildir, **extra):
    lib.IMAPD = path
    env.maildir = maildir
    s = env.preauth(**extra)
    s.ok("SELECT INBOX")
    return s


def timed(s, cmd, timeout=1200):
    """(wall ms, server CPU ms, hits, untagged lines)"""
    c0, t0 = cpu_ms(s.p.pid), time.time()
    tag = s.tag()
    s.send("%s %s\r\n" % (tag, cmd))
    u, t = collect(s, tag, timeout)
    wall, cpu = (time.time() - t0) * 1e3, cpu_ms(s.p.pid) - c0
    assert b" OK" in t, (cmd, t)
    hits = [x for x in u if x.startswith(b"* SEARCH")]
    n = len(hits[0].split()) - 2 if hits else 0
    return wall, cpu, n, u


def collect(s, tag, timeout):
    out = []
    t = tag.encode() + b" "
    while True:
        ln = s.line(timeout=timeout)
        if ln.startswith(t):
            return out, ln
        out.append(ln)


def warm(s, runs):
    """{label: (median wall ms, median CPU ms, hits)}; one pass first to
    fill the page cache"""
    timed(s, QUERIES[0][1])
    out = {}
    for label, cmd in QUERIES:
        walls, cpus = [], []
        for _ in range(runs):
            wall, cpu, n, _ = timed(s, cmd)
            walls.append(wall)
            cpus.append(cpu)
        out[label] = (statistics.median(walls), statistics.median(cpus), n)
    return out


def deliver(env, src, dst, n):
    files = sorted(os.listdir(os.path.join(src, "cur")))[:n]
    for i, f in enumerate(files):
        p = os.path.join(dst, "new", "9%09d.M%dP1.bench" % (i, i))
        shutil.copy(os.path.join(src, "cur", f), p)
        os.chown(p, env.uid, env.gid)


def index_size(maildir):
    with open(os.path.join(maildir, FTS_FILE)) as f:
        segs = f.read().split()[3:]
    return sum(os.path.getsize(os.path.join(maildir, x)) for x in segs), \
        len(segs)


def one_imapd(env, label, path, src, extra, maildir, args):
    """build, warm queries and deliveries for one binary; its results"""
    clone(env, src, maildir)
    s = imapd(env, path, maildir)
    wall, cpu, _, u = timed(s, QUERIES[0][1])
    r = {"build": (wall / 1e3, cpu / 1e3),
         "peak": hwm_kb(s.p.pid) / 1024,
         "progress": sum(1 for x in u if b"INPROGRESS" in x)}
    r["warm"] = warm(s, args.runs)
    r["isize"], r["nsegs"] = index_size(maildir)
    deliver(env, extra, maildir, args.deliver)
    s.ok("NOOP")
    wall, cpu, _, _ = timed(s, QUERIES[0][1])
    base = r["warm"][QUERIES[0][0]]
    r["per"] = ((wall - base[0]) / args.deliver, (cpu - base[1]) /
                args.deliver)
    s.logout()
    print("%s: build %.1f s (CPU %.1f s), peak %.1f MB, index %.1f MB in "
          "%d segments" % (label, r["build"][0], r["build"][1], r["peak"],
                           r["isize"] / 1e6, r["nsegs"]), flush=True)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--src")
    ap.add_argument("--work")
    ap.add_argument("--imapd", action="append", default=[])
    ap.add_argument("--no-scan", action="store_true")
    ap.add_argument("--deliver", type=int, default=1000)
    args = ap.parse_args()
    n = args.messages
    bins = [x.split("=", 1) if "=" in x else (x, x) for x in args.imapd] \
        or [("after", os.path.join(HERE, "..", "imapd"))]
    src = generate(args.src or "/var/tmp/fts-bench/md%d" % n, n, 7)
    extra = generate("/var/tmp/fts-bench/extra%d" % args.deliver,
                     args.deliver, 99)
    with lib.Env() as env:
        work = args.work or env.dir
        os.makedirs(work, exist_ok=True)
        os.chown(work, env.uid, env.gid)
        for x in os.listdir(work):
            if x.startswith("md-"):
                shutil.rmtree(os.path.join(work, x))
        size = du(src)
        n = sum(len(os.listdir(os.path.join(src, x))) for x in ("cur", "new"))
        print("%d messages, %.0f MB" % (n, size / 1e6), flush=True)
        res = {}
        for label, path in bins:
            res[label] = one_imapd(env, label, path, src, extra,
                                   os.path.join(work, "md-" + label), args)

        dmail = os.path.join(work, "md-dovecot")
        clone(env, src, dmail)
        d = dovecot(env, dmail)
        t0 = time.time()
        timed(d, "SELECT INBOX", timeout=1200)
        dsel = time.time() - t0
        res["dovecot"] = {"warm": warm(d, 1)}
        d.send("z LOGOUT\r\n")

        cols = [label for label, _ in bins] + ["dovecot"]
        if not args.no_scan:
            smail = os.path.join(work, "md-scan")
            clone(env, src, smail)
            s = imapd(env, bins[-1][1], smail, IMAPD_FTS="off")
            res["scan"] = {"warm": warm(s, 1)}
            s.logout()
            cols.append("scan")

        print("\nwarm, ms: wall / server CPU (median of %d runs; Dovecot%s "
              "one run)" % (args.runs, "" if args.no_scan else
                            " and the scan without the index"))
        print("%-18s" % "query" + "".join("%20s" % c for c in cols) +
              "%8s" % "hits")
        for label, _ in QUERIES:
            row = [res[c]["warm"][label] for c in cols]
            hits = set(x[2] for x in row)
            print("%-18s" % label + "".join("%11.1f /%7.1f" % (x[0], x[1])
                                            for x in row) +
                  "%8d%s" % (row[0][2], "" if len(hits) == 1 else
                             "  (hits differ: %s)" %
                             " ".join(str(x[2]) for x in row)))
        print()
        for label, _ in bins:
            r = res[label]
            print("%s: index build from scratch %.1f s wall, %.1f s CPU "
                  "(%d INPROGRESS), peak memory %.1f MB" % (
                      label, r["build"][0], r["build"][1], r["progress"],
                      r["peak"]))
            print("%s: index %.1f MB in %d segments, %.0f bytes per "
                  "message, %.1f%% of the Maildir" % (
                      label, r["isize"] / 1e6, r["nsegs"], r["isize"] / n,
                      100.0 * r["isize"] / size))
            print("%s: per delivered message (indexed at the next search) "
                  "%.2f ms wall, %.2f ms CPU" % (label, r["per"][0],
                                                 r["per"][1]))
        print("Dovecot SELECT (its own index from scratch): %.1f s" % dsel)
        for x in os.listdir(work):
            if x.startswith("md-"):
                shutil.rmtree(os.path.join(work, x))


if __name__ == "__main__":
    main()
