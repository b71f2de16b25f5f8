#!/usr/bin/env python3
"""Resynchronising a big folder: QRESYNC against a full flag download.

A folder of N messages (default 100,000) is written straight into cur/
(small messages, varied flags, sizes in the names as Dovecot writes
them).  Measured, each over pipes with a fresh imapd as inetd starts it:

  SELECT         the first SELECT ever (cold: every file gets its UID and
                 modseq) and later ones (warm); wall time and imapd's peak
                 RSS (VmHWM)
  resync         with nothing changed: SELECT (QRESYNC (v m)) against
                 SELECT + UID FETCH 1:* (FLAGS); and again after 100 flag
                 changes and 10 expunges by another session; wall time
                 and bytes the client receives

usage: python3 bench/qresync.py [messages] [runs]    (default 100000 3)
"""
import os
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import lib  # noqa: E402
from benchlib import hwm  # noqa: E402


class Counting(lib.Session):
    """lib.Session that counts the bytes imapd sends"""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.received = 0

    def _fill(self, timeout):
        n = len(self.buf)
        super()._fill(timeout)
        self.received += len(self.buf) - n


def session(env):
    s = Counting(env, [], env.env())
    s.greeting()
    s.ok("LOGIN %s %s" % (env.user, lib.quote(lib.PASSWORD)))
    return s



def fill(env, n):
    cur = os.path.join(env.maildir, "cur")
    now = int(time.time()) - 86400
    for i in range(n):
        body = ("From: sender%d@example.org\r\nTo: me@example.net\r\n"
                "Subject: message %d\r\nMessage-ID: <%d@bench>\r\n"
                "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n"
                "body of message %d\r\n" % (i % 97, i, i, i)).encode()
        flags = "S" if i % 3 else ""
        if i % 17 == 0:
            flags = "FS"
        name = "%d.M%dP1.bench,S=%d,W=%d:2,%s" % (now + i // 100, i,
                                                  len(body), len(body),
                                                  flags)
        with open(os.path.join(cur, name), "wb") as f:
            f.write(body)
    env.fix_owner()


def timed_select(env, extra=None):
    s = session(env)
    if extra:
        s.ok(extra)
    t0 = time.perf_counter()
    u = s.ok("SELECT INBOX")
    dt = time.perf_counter() - t0
    rss = hwm(s.p.pid)
    info = lib.select_info(u)
    m = [int(x) for x in re.findall(rb"\[HIGHESTMODSEQ (\d+)\]", b"".join(u))]
    s.logout()
    return dt, rss, info, m[0]


def qresync(env, v, m):
    s = session(env)
    s.ok("ENABLE QRESYNC")
    r0 = s.received
    t0 = time.perf_counter()
    u = s.ok("SELECT INBOX (QRESYNC (%d %d))" % (v, m))
    dt = time.perf_counter() - t0
    got = s.received - r0
    rss = hwm(s.p.pid)
    s.logout()
    nf = sum(1 for x in u if b" FETCH " in x)
    nv = sum(len(x) for x in u if x.startswith(b"* VANISHED"))
    return dt, got, rss, nf, nv


def full(env):
    s = session(env)
    r0 = s.received
    t0 = time.perf_counter()
    s.ok("SELECT INBOX")
    u = s.ok("UID FETCH 1:* (FLAGS)")
    dt = time.perf_counter() - t0
    got = s.received - r0
    rss = hwm(s.p.pid)
    s.logout()
    return dt, got, rss, len(u)


def changes(env, nflags, nexp):
    s = session(env)
    u = s.ok("SELECT INBOX")
    n = lib.select_info(u)["exists"]
    step = n // (nflags + 1)
    for k in range(1, nflags + 1):
        s.ok("STORE %d +FLAGS.SILENT ($Touched)" % (k * step))
    for k in range(1, nexp + 1):
        s.ok("STORE %d +FLAGS.SILENT (\\Deleted)" % (k * step + 1))
    s.ok("EXPUNGE")
    s.logout()


def row(name, times, nbytes, rss, note=""):
    print("%-34s %9.1f ms %9.1f ms %12s %9s %s" % (
        name, statistics.median(times) * 1000, max(times) * 1000,
        "%d" % nbytes if nbytes is not None else "-",
        "%d KB" % rss if rss else "-", note))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with lib.Env() as env:
        t0 = time.perf_counter()
        fill(env, n)
        print("%d messages written in %.1f s" % (n, time.perf_counter() - t0))
        cold = timed_select(env)
        assert cold[2]["exists"] == n, cold[2]
        warm = [timed_select(env) for _ in range(runs)]
        v, m = warm[-1][2]["uidvalidity"], warm[-1][3]
        print()
        print("%-34s %12s %12s %12s %9s" % ("", "median", "max", "bytes in",
                                            "peak RSS"))
        row("SELECT, cold (first ever)", [cold[0]], None, cold[1])
        row("SELECT, warm", [w[0] for w in warm], None,
            max(w[1] for w in warm))
        q = [qresync(env, v, m) for _ in range(runs)]
        f = [full(env) for _ in range(runs)]
        row("no change: SELECT (QRESYNC)", [x[0] for x in q], q[0][1],
            max(x[2] for x in q), "(%d FETCH)" % q[0][3])
        row("no change: SELECT + UID FETCH", [x[0] for x in f], f[0][1],
            max(x[2] for x in f), "(%d lines)" % f[0][3])
        changes(env, 100, 10)
        q = [qresync(env, v, m) for _ in range(runs)]
        f = [full(env) for _ in range(runs)]
        row("100 flags+10 gone: QRESYNC", [x[0] for x in q], q[0][1],
            max(x[2] for x in q), "(%d FETCH, VANISHED %d B)"
            % (q[0][3], q[0][4]))
        row("100 flags+10 gone: UID FETCH 1:*", [x[0] for x in f], f[0][1],
            max(x[2] for x in f))


if __name__ == "__main__":
    main()
