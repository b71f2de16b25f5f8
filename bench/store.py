#!/usr/bin/env python3
"""Changing a big folder: what one flag change, one expunge and one new
message cost in a folder of N messages (default 100,000), and what the
next process pays to SELECT it afterwards.

The folder is written once into cur/ (small messages, sizes in the names
as Dovecot writes them, mtimes a minute old) and copied afresh for every
binary measured, so several builds can be compared side by side in one
run.  Each imapd runs over pipes as inetd starts it.  Measured:

  SELECT warm            a new process, UID list present, nothing changed
  STORE                  K single "UID STORE u +FLAGS.SILENT (\\Flagged)"
                         commands in one session, each on its own message
  EXPUNGE                one message marked \\Deleted, then EXPUNGE
  SELECT after change    the first new process right after that session
                         logged out, then the median of the next ones
  APPEND                 into the big folder from a session that has
                         nothing selected
  COPY                   one message from a small folder into the big one
  SELECT after APPEND    the first new process after the APPENDs and COPYs
                         (a delivery by others: the folder must be read),
                         then the median of the next ones

usage: python3 bench/store.py [messages] [stores] [runs] [imapd ...]
       (default 100000 100 3, and $IMAPD_BIN or ./imapd)
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import lib  # noqa: E402
from benchlib import hwm  # noqa: E402

MSG = lib.crlf(lib.make_msg("appended", "a body line\n" * 20))



def fill(path, n):
    """a settled Maildir of n messages in cur/ at path"""
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub))
    cur = os.path.join(path, "cur")
    now = int(time.time()) - 86400
    for i in range(n):
        body = ("From: sender%d@example.org\r\nTo: me@example.net\r\n"
                "Subject: message %d\r\nMessage-ID: <%d@bench>\r\n"
                "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n"
                "body of message %d\r\n" % (i % 97, i, i, i)).encode()
        name = "%d.M%dP1.bench,S=%d,W=%d:2,%s" % (
            now + i // 100, i, len(body), len(body), "S" if i % 3 else "")
        with open(os.path.join(cur, name), "wb") as f:
            f.write(body)
    t = time.time() - 60
    for sub in ("cur", "new"):
        os.utime(os.path.join(path, sub), (t, t))


def timed(s, text):
    t0 = time.perf_counter()
    u = s.ok(text)
    return time.perf_counter() - t0, u


def select(env):
    s = env.session()
    dt, u = timed(s, "SELECT INBOX")
    rss = hwm(s.p.pid)
    s.logout()
    return dt, rss, lib.select_info(u)


def measure(env, n, k, runs):
    r = {}
    select(env)                             # the UID list is created
    sel = [select(env) for _ in range(runs)]
    r["SELECT warm"] = ([x[0] for x in sel], max(x[1] for x in sel))

    s = env.session()
    s.ok("SELECT INBOX")
    step = max(1, n // (k + runs + 2))
    t = [timed(s, "UID STORE %d +FLAGS.SILENT (\\Flagged)" % (j * step))[0]
         for j in range(1, k + 1)]
    r["STORE (one message)"] = (t, None)
    r["%d STOREs, total" % k] = ([sum(t)], None)
    t = []
    for j in range(runs):
        s.ok("UID STORE %d +FLAGS.SILENT (\\Deleted)" % ((k + 1 + j) * step))
        t.append(timed(s, "EXPUNGE")[0])
    r["EXPUNGE (one message)"] = (t, hwm(s.p.pid))
    s.logout()
    sel = [select(env) for _ in range(runs + 1)]
    assert sel[0][2]["exists"] == n - runs, sel[0][2]
    r["SELECT after change, 1st"] = ([sel[0][0]], sel[0][1])
    r["SELECT after change, next"] = ([x[0] for x in sel[1:]],
                                      max(x[1] for x in sel[1:]))

    s = env.session()
    t = []
    for j in range(runs * 3):
        t0 = time.perf_counter()
        u, tag = lib.append(s, "INBOX", MSG)
        t.append(time.perf_counter() - t0)
        assert b" OK" in tag, tag
    r["APPEND (nothing selected)"] = (t, hwm(s.p.pid))
    s.logout()
    env.deliver(lib.make_msg("small"), folder="Small", flags="S")
    s = env.session()
    s.ok("SELECT Small")
    t = [timed(s, "COPY 1 INBOX")[0] for _ in range(runs * 3)]
    r["COPY (one message)"] = (t, hwm(s.p.pid))
    s.logout()
    sel = [select(env) for _ in range(runs + 1)]
    assert sel[0][2]["exists"] == n - runs + runs * 6, sel[0][2]
    r["SELECT after APPEND, 1st"] = ([sel[0][0]], sel[0][1])
    r["SELECT after APPEND, next"] = ([x[0] for x in sel[1:]],
                                      max(x[1] for x in sel[1:]))
    return r


def main():
    a = sys.argv[1:]
    n = int(a[0]) if len(a) > 0 else 100000
    k = int(a[1]) if len(a) > 1 else 100
    runs = int(a[2]) if len(a) > 2 else 3
    bins = [os.path.abspath(b) for b in a[3:]] or [lib.IMAPD]
    tmpl = tempfile.mkdtemp(prefix="imapd-bench-")
    try:
        t0 = time.perf_counter()
        fill(os.path.join(tmpl, "Maildir"), n)
        print("%d messages written in %.1f s; %d STOREs, median of %d"
              % (n, time.perf_counter() - t0, k, runs))
        results = []
        for b in bins:
            lib.IMAPD = b
            with lib.Env() as env:
                shutil.rmtree(env.maildir)
                subprocess.run(["cp", "-a", os.path.join(tmpl, "Maildir"),
                                env.maildir], check=True)
                env.fix_owner()
                results.append(measure(env, n, k, runs))
        print()
        print("%-28s" % "" + "".join("%22s" % ("imapd %d (%s)" % (
            i + 1, os.path.basename(os.path.dirname(b)) or b))[-22:]
            for i, b in enumerate(bins)))
        for key in results[0]:
            line = "%-28s" % key
            for r in results:
                t, rss = r[key]
                cell = "%.1f ms" % (statistics.median(t) * 1000)
                if rss:
                    cell += " %5.1f MB" % (rss / 1024)
                line += "%22s" % cell
            print(line)
        print()
        print("(times: median wall time per command; MB: peak RSS)")
    finally:
        shutil.rmtree(tmpl, ignore_errors=True)


if __name__ == "__main__":
    main()
