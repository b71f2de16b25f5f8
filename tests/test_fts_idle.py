"""The full-text index's work while the client is quiet (IDLE, or between
commands): new mail goes in by slices bounded in time, not in count, so
big messages do not hold DONE back; and the small segments such slices
leave are merged there too, a merge a slice."""
import os
import signal
import time

import lib
from lib import make_msg
from test_fts import index_rows, index_segments, search_uids, wait_exists


def big_body(i, size):
    line = "lorem%d ipsum dolor sit amet %d consectetur adipiscing %d\n"
    out, n = [], 0
    while n < size:
        out.append(line % (i, n, n * 7))
        n += len(out[-1])
    return "".join(out)


def test_fts_idle_slice_bounded_in_time(env):
    """big arrivals during IDLE: each slice takes a few of them, not a
    fixed count, so DONE is answered after a few; the rest goes in
    later.  The server is stopped (SIGSTOP) once a first slice is
    written, DONE queued, and it goes on: what it indexed by the answer
    is the slice under way.  Should this slow test process have looked
    too late, another batch arrives and it is tried again."""
    env.deliver(make_msg(subject="first", body="alpha\n"))
    s = env.session()
    s.ok("SELECT INBOX")
    assert search_uids(s, "BODY", "alpha") == [1]
    s.send("i IDLE\r\n")
    assert s.line().startswith(b"+")
    tmp = os.path.join(env.maildir, "tmp")
    total = 1
    for attempt in range(3):
        names = []
        for i in range(32):
            names.append("%d.M%dP3.big%d" % (1700000000 + i, i, attempt))
            with open(os.path.join(tmp, names[-1]), "w") as fh:
                fh.write(make_msg(subject="big%d" % i,
                                  body=big_body(i, 1000000)).decode())
        env.fix_owner()
        before = index_rows(env)
        for name in names:
            os.rename(os.path.join(tmp, name),
                      os.path.join(env.maildir, "new", name))
        total += 32
        wait_exists(s, total, timeout=60)
        end = time.time() + 30
        while index_rows(env) == before and time.time() < end:
            time.sleep(0.005)
        os.kill(s.p.pid, signal.SIGSTOP)
        stopped = index_rows(env)
        if stopped < total - 24:
            break
        os.kill(s.p.pid, signal.SIGCONT)
    else:
        raise AssertionError("every batch was indexed before DONE")
    s.send("DONE\r\n")
    os.kill(s.p.pid, signal.SIGCONT)
    u, t = s.collect("i")
    assert b"OK" in t, t
    rows = index_rows(env)
    print("    %d of %d indexed when stopped, %d when DONE was answered"
          % (stopped, total, rows))
    # the slice under way finished, no more: some big messages, where a
    # slice of a fixed count (32) would have taken them all
    assert rows < total, (stopped, rows)
    scan = env.session(IMAPD_FTS="off")
    scan.ok("SELECT INBOX")
    for n in ("lorem31 ipsum", "lorem7 ", "alpha"):
        assert search_uids(s, "BODY", n) == search_uids(scan, "BODY", n)
    assert index_rows(env) == total
    s.logout()
    scan.logout()


def wait_index(env, rows, segs, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if (index_rows(env) == rows and
                len(index_segments(env)) == segs):
            return
        time.sleep(0.05)
    raise AssertionError("index: %d rows in %d segments, not %d in %d" % (
        index_rows(env), len(index_segments(env)), rows, segs))


def test_fts_idle_merges_small_segments(env):
    """batches of arrivals during IDLE make segments of their own; the
    quiet time after them merges small ones, and answers stay exact"""
    env.deliver(make_msg(subject="first", body="alpha\n"))
    s = env.session()
    s.ok("SELECT INBOX")
    assert search_uids(s, "BODY", "alpha") == [1]
    s.send("i IDLE\r\n")
    assert s.line().startswith(b"+")
    total = 1
    for batch in range(3):
        for i in range(300):
            env.deliver(make_msg(subject="b%d m%d" % (batch, i),
                                 body="bravo%d item %d\n" % (batch, i)))
        total += 300
        wait_exists(s, total, timeout=60)
        # one segment holds them all: 301, 601, 901 messages
        wait_index(env, total, 1)
    s.send("DONE\r\n")
    u, t = s.collect("i")
    assert b"OK" in t, t
    scan = env.session(IMAPD_FTS="off")
    scan.ok("SELECT INBOX")
    for n in ("bravo0 item 7", "bravo2", "item 299", "alpha", "m17"):
        for key in ("BODY", "TEXT", "SUBJECT"):
            assert search_uids(s, key, n) == search_uids(scan, key, n)
    s.logout()
    scan.logout()
