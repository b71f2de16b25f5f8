#!/usr/bin/env python3
"""FETCH of several parts of every message, side by side with Dovecot on
the same messages, in one run: one look at each message answers all the
items (the part tree parsed once per message).

The messages are the shared corpus (441 real-world messages with nasty
MIME) repeated COPIES times.  Each FETCH names only sections, which no
cache keeps, so every run parses the messages again.  IMAPD_OLD, when set,
names a second imapd binary timed the same way (a build from before a
change).  Run as root: the servers run as the test user.

usage: python3 bench/fetchparts.py [copies] [runs]
"""
import glob
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import lib  # noqa: E402
from benchlib import print_times  # noqa: E402
import test_mime as M  # noqa: E402

COMMANDS = [
    "FETCH 1:* (BODY.PEEK[1] BODY.PEEK[2] BODY.PEEK[1.MIME] "
    "BINARY.PEEK[1] BINARY.SIZE[2] BODY.PEEK[1.1])",
    "FETCH 1:* (BODY.PEEK[1])",
]


def corpus(copies):
    files = sorted(f for f in glob.glob(lib.CORPUS + "/**/*", recursive=True)
                   if os.path.isfile(f) and not f.endswith((".md", ".tsv")))
    data = [open(f, "rb").read() for f in files]
    return data * copies


def cpu_ms(pid):
    """user and system time of a process so far"""
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) * 1e3 / os.sysconf("SC_CLK_TCK")


def raw_cmd(s, tag, c):
    """a command and its answer read as raw bytes, as for Dovecot"""
    s.send("%s %s\r\n" % (tag, c))
    out = bytearray()
    end = re.compile(rb"(^|\r\n)%s (OK|NO|BAD)[^\r]*\r\n$" % tag.encode())
    while not end.search(out[-300:]):
        chunk = os.read(s.p.stdout.fileno(), 1 << 16)
        assert chunk, bytes(out[-300:])
        out += chunk


def imapd_times(env, binary, runs):
    """median wall and CPU time of each command"""
    lib.IMAPD = binary
    s = env.session()
    s.ok("SELECT INBOX")
    out = []
    for c in COMMANDS:
        wall, cpu = [], []
        for _ in range(runs):
            t0, c0 = time.time(), cpu_ms(s.p.pid)
            raw_cmd(s, "r%d" % len(wall), c)
            wall.append((time.time() - t0) * 1e3)
            cpu.append(cpu_ms(s.p.pid) - c0)
        out.append((statistics.median(wall), statistics.median(cpu)))
    s.logout()
    return out


def dovecot_times(env, maildir, runs):
    out = []
    for c in COMMANDS:
        times = []
        for _ in range(runs):
            t0 = time.time()
            M.dovecot_run(env, maildir, [c])
            times.append((time.time() - t0) * 1e3)
        out.append((statistics.median(times), None))
    return out


def main():
    copies = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with lib.Env() as env:
        msgs = corpus(copies)
        dmail = os.path.join(env.dir, "dovecot", "Maildir")
        for d in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(dmail, d))
        M.put(env, msgs)
        M.put(env, msgs, dmail)
        subprocess.run(["cat"] + glob.glob(env.maildir + "/cur/*"),
                       stdout=subprocess.DEVNULL)	# warm the page cache
        rows = [("imapd", imapd_times(env, lib.IMAPD, runs))]
        if os.environ.get("IMAPD_OLD"):
            rows.append(("imapd (IMAPD_OLD)",
                         imapd_times(env, os.environ["IMAPD_OLD"], runs)))
        rows.append(("dovecot", dovecot_times(env, dmail, runs)))
        print_times(len(msgs), runs, COMMANDS,
                    [(name, dict(zip(COMMANDS, t))) for name, t in rows])


if __name__ == "__main__":
    main()
