#!/usr/bin/env python3
"""What a phone feels: imapd against Dovecot on the same mail, per
connection, alternating in one run.

A phone polls every few minutes with a fresh connection: connect, SELECT,
resync flags (CONDSTORE/QRESYNC), fetch the headers of what is new, now
and then a search or one message.  Each server here is started the way
inetd starts it, one process per connection over pipes, pre-authenticated
(imapd -p; Dovecot's imap binary with mail_location set), as the test
user, on its own hard-linked copy of the same Maildir (bench/genmaildir.py
makes one; messages are never rewritten in place, so the copies stay
independent).  Servers take turns path by path, run by run.

Measured (median and 95th percentile of the runs; for whole sessions also
the server's CPU time and peak RSS from wait4):

  cold SELECT        the first SELECT ever on the copy (no index yet)
  header sync first  UID FETCH 1:* of what Thunderbird asks in a header
                     sync, the first time (nothing cached); these two
                     on --cold-runs fresh copies (default 3)
  connect+SELECT     a whole session: greeting, SELECT INBOX, LOGOUT
  STATUS             a whole session: STATUS INBOX (MESSAGES UNSEEN ...)
  UID FETCH FLAGS    UID FETCH 1:* (UID FLAGS), the command alone
  CONDSTORE resync   a whole session: SELECT INBOX (CONDSTORE),
                     UID FETCH 1:* (FLAGS) (CHANGEDSINCE m), LOGOUT
  QRESYNC resync     a whole session: ENABLE QRESYNC,
                     SELECT INBOX (QRESYNC (v m)), LOGOUT
  header sync warm   the header sync again, the command alone
  SEARCH HEADER      UID SEARCH HEADER Subject "meeting"
  one FETCH          UID FETCH u (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER])
                     on 20 scattered messages after a first one, per command
  delivery+SELECT    a message put into new/ while no server runs, then a
                     whole session: SELECT INBOX (it finds it), LOGOUT
  IDLE wake-up       a file renamed into new/ until "* n EXISTS" arrives
  SORT (--sort)      SORT (DATE) and SORT (SUBJECT) after SELECT, the
                     first time and again (what a cache keeps)

usage: python3 bench/phone.py MAILDIR [--runs R] [--imapd BIN ...]
                              [--no-dovecot] [--heavy-runs H] [--cold-runs C]
                              [--light] [--sort] [--reader-mb M]
  MAILDIR   a Maildir to copy (not modified)
  --heavy-only  only the header syncs, UID FETCH FLAGS and SEARCH HEADER
A command timed alone ("header sync warm", "one FETCH", ...) also gets the
server's CPU time for that command alone (from /proc/PID/schedstat), as
"... cpu"; whole sessions get it from wait4.
  --imapd   imapd binaries to compare (default ./imapd); name one twice
            with a label as LABEL=PATH, e.g. before=/tmp/imapd.old
"""
import argparse
import itertools
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
os.environ.setdefault("READ_TIMEOUT", "900")	# 100k-message commands
import lib  # noqa: E402

DOVECOT = "/usr/lib/dovecot/imap"
HEADERS = ("UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE "
           "BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject "
           "Date Message-ID Priority X-Priority References Newsgroups "
           "In-Reply-To Content-Type Reply-To)])")
ONE = "UID FETCH %d (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER])"
DELIVERIES = itertools.count(1000)
READ_ROOM = 1 << 20		# room at least this big for each read


def split_lines(data):
    """the response lines in data, literals inlined, CRLFs dropped: in
    one pass over it, as an answer may be a hundred megabytes"""
    out, i = [], 0
    while i < len(data):
        parts = []
        while True:
            j = data.index(b"\r\n", i)
            parts.append(data[i:j])
            i = j + 2
            m = re.search(rb"\{(\d+)\}$", parts[-1])
            if not m:
                break
            n = int(m.group(1))
            parts.append(data[i:i + n])
            i += n
        out.append(b"".join(parts))
    return out


_room = [bytearray(0)]


def room(n):
    """the reader's buffer, at least n bytes: one, kept, made before any
    timing (--reader-mb) and grown after a timed answer that filled half
    of it, so that no timed read waits for fresh memory (in a VM a page
    fault per 4 KB read costs more than the server's work on a
    100,000-line answer)"""
    if len(_room[0]) < n:
        b = bytearray(max(n, 2 * len(_room[0])))
        b[:len(_room[0])] = _room[0]
        _room[0] = b
    return _room[0]


class Conn(lib.Session):
    """one server process over pipes; close() reaps it with wait4"""

    def __init__(self, server):
        self.server = server
        kw = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                  stderr=subprocess.DEVNULL, env=server.environ)
        if os.getuid() == 0:
            kw.update(user=server.uid, group=server.gid, extra_groups=[])
        self.t0 = time.perf_counter()
        self.p = subprocess.Popen(server.argv, **kw)
        self.buf = b""
        self.ntag = 0
        self.greeting()

    def cpu(self):
        """the server's CPU time so far, in seconds (schedstat: ns)"""
        try:
            with open("/proc/%d/schedstat" % self.p.pid) as f:
                return int(f.read().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            return 0.0

    def timed(self, text):
        """the answer to text, timed as the server sends it: the bytes
        are taken in blocks as they come until the tagged line is whole,
        and only then taken apart into lines, so a long answer (100,000
        FETCH lines) measures the server, not this reader"""
        c0 = self.cpu()
        t0 = time.perf_counter()
        tag = self.tag()
        end = b"\r\n" + tag.encode() + b" "
        self.send("%s %s\r\n" % (tag, text))
        fd = self.p.stdout.fileno()
        buf = room(len(self.buf) + READ_ROOM)
        buf[:len(self.buf)] = self.buf
        have = seen = len(self.buf)
        while True:
            i = buf.find(end, max(0, seen - len(end)), have)
            if i < 0 and buf.startswith(end[2:], 0, have):
                i = -2		# nothing untagged
            if i != -1 and buf.find(b"\r\n", i + 2, have) >= 0:
                break
            seen = have
            r, _, _ = select.select([fd], [], [], 900)
            assert r, "no answer to %r" % text
            buf = room(have + READ_ROOM)
            n = os.readv(fd, [memoryview(buf)[have:]])
            assert n, "the server closed the connection"
            have += n
        dt = time.perf_counter() - t0
        self.last_cpu = self.cpu() - c0
        lines = split_lines(bytes(buf[:have]))
        room(2 * have)
        self.buf = b""
        assert lines and re.match(rb"\S+ OK\b", lines[-1]), (text, lines[-1:])
        return dt, lines[:-1]

    def path(self, srv, key, text):
        """one command timed: wall and the server's CPU for it alone"""
        dt, u = self.timed(text)
        srv.add(key, dt)
        srv.add(key + " cpu", self.last_cpu)
        return u

    def finish(self):
        """LOGOUT; (wall seconds since spawn, CPU seconds, peak RSS KB).
        The peak is read before the end: wait4's would count the memory
        of the forking client before exec"""
        rss = 0
        with open("/proc/%d/status" % self.p.pid) as f:
            for ln in f:
                if ln.startswith("VmHWM:"):
                    rss = int(ln.split()[1])
        self.send("z LOGOUT\r\n")
        while not self.line().startswith(b"z "):
            pass
        self.p.stdin.close()
        _, _, ru = os.wait4(self.p.pid, 0)
        self.p.returncode = 0
        wall = time.perf_counter() - self.t0
        return wall, ru.ru_utime + ru.ru_stime, rss


class Server:
    def __init__(self, label, kind, path, maildir, uid, gid, user):
        self.label, self.kind, self.maildir = label, kind, maildir
        self.uid, self.gid = uid, gid
        home = os.path.dirname(maildir)
        if kind == "dovecot":
            self.argv = [path, "-o", "mail_location=maildir:" + maildir]
            self.environ = {"USER": user, "HOME": home,
                            "PATH": "/usr/bin:/bin"}
        else:
            self.argv = [path, "-p"]
            self.environ = {"USER": user, "HOME": home, "LOGNAME": user,
                            "MAILDIR": maildir, "PATH": "/usr/bin:/bin"}
        self.r = {}

    def add(self, key, v):
        self.r.setdefault(key, []).append(v)

    def session(self):
        return Conn(self)


def hms(lines):
    v = m = None
    for ln in lines:
        x = re.search(rb"UIDVALIDITY (\d+)", ln)
        v = int(x.group(1)) if x else v
        x = re.search(rb"HIGHESTMODSEQ (\d+)", ln)
        m = int(x.group(1)) if x else m
    return v, m


def exists(lines):
    for ln in lines:
        x = re.match(rb"\* (\d+) EXISTS", ln)
        if x:
            return int(x.group(1))
    return 0


def whole(s, key, srv):
    wall, cpu, rss = s.finish()
    srv.add(key, wall)
    srv.add(key + " cpu", cpu)
    srv.add(key + " rss", rss)


def cold(srv, light_only):
    s = srv.session()
    dt, _ = s.timed("SELECT INBOX")
    srv.add("cold SELECT", dt)
    if light_only:
        s.finish()
        return
    s.path(srv, "header sync first", HEADERS)
    whole(s, "header sync first session", srv)


def light(srv, uids):
    s = srv.session()
    dt, u = s.timed("SELECT INBOX")
    srv.add("  SELECT alone", dt)
    whole(s, "connect+SELECT+LOGOUT", srv)

    s = srv.session()
    s.ok("STATUS INBOX (MESSAGES UNSEEN UIDNEXT UIDVALIDITY HIGHESTMODSEQ)")
    whole(s, "STATUS session", srv)

    s = srv.session()
    u = s.ok("SELECT INBOX (CONDSTORE)")
    srv.uidv, srv.hms = hms(u)
    s.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % srv.hms)
    whole(s, "CONDSTORE resync session", srv)

    s = srv.session()
    s.ok("ENABLE QRESYNC")
    s.ok("SELECT INBOX (QRESYNC (%d %d))" % (srv.uidv, srv.hms))
    whole(s, "QRESYNC resync session", srv)

    s = srv.session()
    s.ok("SELECT INBOX")
    s.ok(ONE % uids[0])
    t, c = [], []
    for u in uids[1:]:
        t.append(s.timed(ONE % u)[0])
        c.append(s.last_cpu)
    srv.add("one FETCH", statistics.median(t))
    srv.add("one FETCH cpu", statistics.median(c))
    s.finish()


def delivered(srv):
    """mail came while no server ran: the poll that finds it (after the
    other paths, which it would otherwise change for the next run)"""
    deliver(srv.maildir, next(DELIVERIES), srv.uid, srv.gid)
    s = srv.session()
    dt, _ = s.timed("SELECT INBOX")
    srv.add("  SELECT after delivery", dt)
    whole(s, "delivery+SELECT+LOGOUT", srv)


def sort(srv, first):
    """SORT by date and by subject; the first time nothing is cached"""
    s = srv.session()
    s.ok("SELECT INBOX")
    for key in ("DATE", "SUBJECT"):
        dt, _ = s.timed("SORT (%s) UTF-8 ALL" % key)
        srv.add("SORT (%s) %s" % (key, "first" if first else "again"), dt)
    whole(s, "SORT session" + (" first" if first else ""), srv)


def heavy(srv):
    s = srv.session()
    s.ok("SELECT INBOX")
    s.path(srv, "UID FETCH 1:* (UID FLAGS)", "UID FETCH 1:* (UID FLAGS)")
    s.path(srv, "header sync warm", HEADERS)
    s.path(srv, "SEARCH HEADER Subject", 'UID SEARCH HEADER Subject "meeting"')
    whole(s, "heavy session", srv)


def deliver(maildir, n, uid, gid):
    base = "%d.M%dP%d.benchdeliver" % (time.time(), n, os.getpid())
    tmp = os.path.join(maildir, "tmp", base)
    with open(tmp, "wb") as f:
        f.write(lib.make_msg("delivered %d" % n))
    if os.getuid() == 0:
        os.chown(tmp, uid, gid)
    os.rename(tmp, os.path.join(maildir, "new", base))


def idle(srv, count):
    s = srv.session()
    n = exists(s.ok("SELECT INBOX"))
    s.send("i IDLE\r\n")
    assert s.line().startswith(b"+"), "no continuation for IDLE"
    for k in range(count):
        time.sleep(0.3)
        s.buf = b""
        while s.pending(0.05):
            s._fill(1)
            s.buf = b""
        t0 = time.perf_counter()
        deliver(srv.maildir, k, srv.uid, srv.gid)
        want = b"* %d EXISTS" % (n + k + 1)
        deadline = time.time() + 10
        while time.time() < deadline:
            ln = s.line(10)
            if ln == want:
                break
        srv.add("IDLE wake-up", time.perf_counter() - t0)
    s.send("DONE\r\n")
    while not s.line().startswith(b"i "):
        pass
    s.finish()


def recopy(srv, maildir):
    """a fresh copy for srv, as if it had never seen the mail"""
    shutil.rmtree(srv.maildir)
    copy_tree(os.path.abspath(maildir), srv.maildir, srv.uid, srv.gid)


def copy_tree(src, dst, uid, gid):
    subprocess.run(["cp", "-al", src, dst], check=True)
    if os.getuid() == 0:
        for d, dirs, files in os.walk(dst):
            os.chown(d, uid, gid)
            for f in files:
                os.chown(os.path.join(d, f), uid, gid)


def fmt(key, v):
    if key.endswith(" rss"):
        return "%.1f MB" % (v / 1024)
    if v >= 1:
        return "%.2f s" % v
    return "%.2f ms" % (v * 1000)


def report(servers):
    ref = servers[-1]
    head = "%-30s" % "path" + "".join("%24s" % s.label for s in servers)
    if ref.kind == "dovecot":
        head += "".join("%12s" % ("%s/dc" % s.label[:8])
                        for s in servers[:-1])
    print(head)
    for key in servers[0].r:
        if key not in ref.r:
            continue
        line = "%-30s" % key
        meds = []
        for s in servers:
            v = s.r.get(key, [])
            if not v:
                line += "%24s" % "-"
                meds.append(None)
                continue
            med = statistics.median(v)
            p95 = sorted(v)[max(0, int(round(0.95 * len(v))) - 1)]
            meds.append(med)
            line += "%24s" % ("%s (p95 %s)" % (fmt(key, med), fmt(key, p95))
                              if len(v) > 2 else fmt(key, med))
        if ref.kind == "dovecot" and meds[-1]:
            line += "".join("%12s" % ("%.2fx" % (m / meds[-1]) if m else "-")
                            for m in meds[:-1])
        print(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("maildir")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--heavy-runs", type=int, default=3)
    ap.add_argument("--cold-runs", type=int, default=3,
                    help="fresh copies for the cold SELECT and first sync")
    ap.add_argument("--idle", type=int, default=5)
    ap.add_argument("--imapd", action="append", default=[])
    ap.add_argument("--no-dovecot", action="store_true")
    ap.add_argument("--light", action="store_true",
                    help="only the per-connection paths: no header syncs")
    ap.add_argument("--heavy-only", action="store_true",
                    help="only the header syncs, FETCH FLAGS, SEARCH HEADER")
    ap.add_argument("--sort", action="store_true",
                    help="also SORT (DATE) and (SUBJECT), first and again")
    ap.add_argument("--work", default="/var/tmp/imapd-bench/run")
    ap.add_argument("--reader-mb", type=int, default=256,
                    help="the reader's buffer, made before timing: more "
                    "than the longest answer (a header sync of 100k "
                    "messages is about 140 MB)")
    a = ap.parse_args()
    room(a.reader_mb << 20)
    uid, gid, user = lib.run_user()
    bins = a.imapd or ["imapd=" + lib.IMAPD]
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    os.chmod(a.work, 0o755)
    if os.getuid() == 0:
        os.chown(a.work, uid, gid)
    servers = []
    for b in bins + ([] if a.no_dovecot else ["dovecot=" + DOVECOT]):
        label, _, path = b.rpartition("=")
        label = label or os.path.basename(path)
        home = os.path.join(a.work, label)
        os.makedirs(home)
        md = os.path.join(home, "Maildir")
        t0 = time.perf_counter()
        copy_tree(os.path.abspath(a.maildir), md, uid, gid)
        if os.getuid() == 0:
            os.chown(home, uid, gid)
        servers.append(Server(label, "dovecot" if path == DOVECOT
                              else "imapd", os.path.abspath(path), md,
                              uid, gid, user))
        print("copy for %s: %.1f s" % (label, time.perf_counter() - t0),
              file=sys.stderr)
    nfiles = sum(len(os.listdir(os.path.join(a.maildir, d)))
                 for d in ("cur", "new"))
    try:
        measure(servers, nfiles, a)
    finally:
        print("%d messages in %s; %d runs (%d of the whole-folder fetches, "
              "%d cold on fresh copies), servers alternating"
              % (nfiles, a.maildir, a.runs, a.heavy_runs, a.cold_runs))
        report(servers)


def prewarm(maildir):
    """every message read once, so no server pays for the disk alone (the
    copies are hard links: they share the page cache)"""
    for sub in ("cur", "new"):
        d = os.path.join(maildir, sub)
        for n in os.listdir(d):
            with open(os.path.join(d, n), "rb") as f:
                while f.read(1 << 20):
                    pass


def measure(servers, nfiles, a):
    prewarm(a.maildir)
    for k in range(a.cold_runs):
        for srv in servers:
            if k:
                recopy(srv, a.maildir)
            cold(srv, a.light)
    step = max(1, nfiles // 21)
    uids = [1 + k * step for k in range(21)]
    for run in range(a.runs):
        for srv in servers if not a.heavy_only else []:
            light(srv, uids)
        if run < a.heavy_runs and not a.light:
            for srv in servers:
                heavy(srv)
        print("run %d done" % (run + 1), file=sys.stderr)
    for run in range(a.runs if a.sort else 0):
        for srv in servers:
            sort(srv, run == 0)
    for run in range(a.runs if not a.heavy_only else 0):
        for srv in servers:
            delivered(srv)
    for srv in servers if not a.heavy_only else []:
        idle(srv, a.idle)


if __name__ == "__main__":
    main()
