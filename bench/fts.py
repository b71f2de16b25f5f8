#!/usr/bin/env python3
"""SEARCH on a big folder with and without the full-text index, side by
side with Dovecot (no FTS plugin) on the same messages, in one run.

The Maildir comes from bench/genmaildir.py (made once and kept in
/var/tmp: SRC, default /var/tmp/fts-bench/mdN); each server gets its own
hard-linked copy.  imapd runs twice: with IMAPD_FTS=off (reading every
message, as a build without the index does) and with the index, whose
first build from scratch is timed with the peak memory of the process.
Warm times: one pass fills the page cache, then the median of RUNS runs
with the index, one run without it and for Dovecot (each a linear scan).
Then DELIVER messages arrive in new/ and the next search, which indexes
them, gives the time per delivered message.  Run as root: the servers
run as the test user.

usage: python3 bench/fts.py [messages] [runs]
"""
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import lib  # noqa: E402

DOVECOT = "/usr/lib/dovecot/imap"
FTS_FILE = "imapd-fts"
DELIVER = 1000
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


def clone(src, dst):
    os.makedirs(dst)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(dst, sub))
        for f in os.listdir(os.path.join(src, sub)):
            os.link(os.path.join(src, sub, f), os.path.join(dst, sub, f))
    for f in ("dovecot-keywords",):
        if os.path.exists(os.path.join(src, f)):
            shutil.copy(os.path.join(src, f), dst)


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


def timed(s, cmd, timeout=600):
    t0 = time.time()
    tag = s.tag()
    s.send("%s %s\r\n" % (tag, cmd))
    u, t = collect(s, tag, timeout)
    assert b" OK" in t, (cmd, t)
    hits = [x for x in u if x.startswith(b"* SEARCH")]
    n = len(hits[0].split()) - 2 if hits else 0
    return (time.time() - t0) * 1e3, n, u


def collect(s, tag, timeout):
    out = []
    t = tag.encode() + b" "
    while True:
        ln = s.line(timeout=timeout)
        if ln.startswith(t):
            return out, ln
        out.append(ln)


def warm(s, runs):
    """{label: (median ms, hits)}; one pass first to fill the page cache"""
    timed(s, QUERIES[0][1])
    out = {}
    for label, cmd in QUERIES:
        times = []
        for _ in range(runs):
            ms, n, _ = timed(s, cmd)
            times.append(ms)
        out[label] = (statistics.median(times), n)
    return out


def deliver(env, src, dst, n):
    files = sorted(os.listdir(os.path.join(src, "cur")))[:n]
    for i, f in enumerate(files):
        shutil.copy(os.path.join(src, "cur", f),
                    os.path.join(dst, "new", "9%09d.M%dP1.bench" % (i, i)))
    env.fix_owner()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    src = generate(os.environ.get("SRC", "/var/tmp/fts-bench/md%d" % n), n, 7)
    extra = generate("/var/tmp/fts-bench/extra%d" % DELIVER, DELIVER, 99)
    with lib.Env() as env:
        shutil.rmtree(env.maildir)
        clone(src, env.maildir)
        dmail = os.path.join(env.dir, "dovecot")
        clone(src, dmail)
        env.fix_owner()
        size = du(env.maildir)
        print("%d messages, %.0f MB" % (n, size / 1e6))
        res = {}

        s = env.session(IMAPD_FTS="off")
        s.ok("SELECT INBOX")
        res["before"] = warm(s, 1)
        s.logout()

        s = env.session()
        s.ok("SELECT INBOX")
        ms, _, u = timed(s, QUERIES[0][1], timeout=1200)
        build = ms / 1e3
        peak = hwm_kb(s.p.pid) / 1024
        prog = sum(1 for x in u if b"INPROGRESS" in x)
        res["after"] = warm(s, runs)
        segs = open(os.path.join(env.maildir, FTS_FILE)).read().split()[3:]
        isize = sum(os.path.getsize(os.path.join(env.maildir, x))
                    for x in segs)
        deliver(env, extra, env.maildir, DELIVER)
        s.ok("NOOP")
        ms, _, _ = timed(s, QUERIES[0][1])
        per = (ms - res["after"][QUERIES[0][0]][0]) / DELIVER
        s.logout()

        d = dovecot(env, dmail)
        t0 = time.time()
        timed(d, "SELECT INBOX", timeout=1200)
        dsel = time.time() - t0
        res["dovecot"] = warm(d, 1)
        timed(d, "LOGOUT")

        print("\n%-20s %12s %12s %12s %8s" % ("query (warm, ms)", "before",
              "after", "dovecot", "hits"))
        for label, _ in QUERIES:
            b, a, v = (res[k][label] for k in ("before", "after", "dovecot"))
            print("%-20s %12.0f %12.1f %12.0f %8d%s" % (
                label, b[0], a[0], v[0], a[1],
                "" if a[1] == b[1] == v[1] else
                "  (hits differ: %d %d %d)" % (b[1], a[1], v[1])))
        print("\nindex build from scratch: %.1f s (%d INPROGRESS), peak "
              "memory of imapd %.1f MB" % (build, prog, peak))
        print("index size: %.1f MB in %d segments, %.0f bytes per message, "
              "%.1f%% of the Maildir" % (isize / 1e6, len(segs), isize / n,
                                          100.0 * isize / size))
        print("per delivered message (indexed at the next search): "
              "%.2f ms" % per)
        print("Dovecot SELECT (its own index from scratch): %.1f s" % dsel)


if __name__ == "__main__":
    main()
