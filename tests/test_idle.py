"""IDLE timing (RFC 2177 leaves it to the server).  Keep-alives every
IDLE_KEEPALIVE seconds, aligned per remote address so that all of one
phone's IDLE connections (one per pushed folder) wake its radio at the same
moment (checked on a build with a 4-second interval); and pushes that still
come within seconds when inotify cannot be had."""
import os
import select
import subprocess
import time

import lib

INTERVAL = 4


def phase(ip):
    """the server's hash of an address, as an offset into the interval"""
    h = 5381
    for c in ip.encode():
        h = (h * 33 + c) & 0xffffffffffffffff
    return h % INTERVAL


def idle_session(env, binary, ip):
    e = env.env(TCPREMOTEIP=ip)
    p = env.popen([binary, "-p"], stdin=subprocess.PIPE,
                  stdout=subprocess.PIPE, env=e)
    out = p.stdout.fileno()
    p.stdin.write(b"a SELECT INBOX\r\nb IDLE\r\n")
    p.stdin.flush()
    buf = b""
    deadline = time.time() + 10
    while b"+ idling" not in buf:
        assert time.time() < deadline, buf
        r, _, _ = select.select([out], [], [], 1)
        if r:
            buf += os.read(out, 4096)
    return p


def collect(procs, seconds):
    """times at which each process sent '* OK Still here'"""
    seen = {p: [] for p in procs}
    bufs = {p: b"" for p in procs}
    end = time.time() + seconds
    while time.time() < end:
        fds = {p.stdout.fileno(): p for p in procs}
        r, _, _ = select.select(list(fds), [], [], 0.1)
        for fd in r:
            p = fds[fd]
            data = os.read(fd, 4096)
            assert data, "imapd closed the connection while idling"
            bufs[p] += data
            while b"\r\n" in bufs[p]:
                line, bufs[p] = bufs[p].split(b"\r\n", 1)
                assert line.startswith(b"* OK"), line
                seen[p].append(time.time())
    return seen


def test_keepalives_aligned_per_address(env):
    binary = lib.build_with_config(env, "ka", [
        (r"#define IDLE_KEEPALIVE\s+\d+", "#define IDLE_KEEPALIVE %d"
         % INTERVAL)])
    phone = "192.0.2.7"
    other = next("198.51.100.%d" % i for i in range(1, 200)
                 if abs(phase("198.51.100.%d" % i) - phase(phone)) == 2)
    a = idle_session(env, binary, phone)
    time.sleep(1.3)
    b = idle_session(env, binary, phone)
    c = idle_session(env, binary, other)
    # the first moments belong to the sessions' own start (SELECT, the
    # first sync) on a busy machine: judge the steady state after them
    t0 = time.time() + 1.5
    seen = collect([a, b, c], 2 * INTERVAL + 3)
    ta, tb, tc = ([x for x in seen[p] if x > t0] for p in (a, b, c))
    assert len(ta) >= 2 and len(tb) >= 2 and len(tc) >= 2, seen
    # the two connections of one address fire together...
    for x in tb:
        assert min(abs(x - y) for y in ta) < 0.5, (ta, tb)
    # ... every interval ...
    for t in (ta, tb, tc):
        gaps = [y - x for x, y in zip(t, t[1:])]
        assert all(INTERVAL - 1.2 < g < INTERVAL + 1.2 for g in gaps), t
    # ... and another address has its own moment (half an interval off)
    for x in tc:
        assert min(abs(x - y) for y in ta) > 1.0, (ta, tc)
    for p in (a, b, c):
        p.stdin.write(b"DONE\r\nc LOGOUT\r\n")
        p.stdin.flush()
        p.wait(timeout=10)


HOLDER = r"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
n = 0
while libc.inotify_init() >= 0:
    n += 1
print(n, flush=True)
sys.stdin.read()
"""


def test_idle_without_inotify(env):
    """when inotify cannot be had (the user's instances are used up),
    IDLE still reports a delivery within a couple of seconds by polling"""
    holder = env.popen(["python3", "-c", HOLDER], stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE)
    line = holder.stdout.readline()
    assert line.strip().isdigit(), line
    try:
        s = env.session()
        s.ok("SELECT INBOX")
        s.send("i IDLE\r\n")
        assert s.line().startswith(b"+")
        t0 = time.time()
        env.deliver(lib.make_msg(subject="late"))
        ln = s.line(timeout=5)
        took = time.time() - t0
        assert ln == b"* 1 EXISTS", ln
        print("    delivery seen after %.2f s without inotify" % took)
        assert took < 3, took
        s.send("DONE\r\n")
        u, t = s.collect("i")
        assert b"OK" in t, t
    finally:
        holder.stdin.close()
        holder.wait(timeout=5)
