#!/usr/bin/env python3
"""IDLE wake-up latency: a message renamed into new/ (as a delivery agent
does) until "* n EXISTS" reaches the idling client.

Two transports, the way imapd is started in production: pipes (inetd,
s6, a mbsync Tunnel) and a loopback TCP socket (tcpserver, systemd
Accept=yes); the TCP case also with COMPRESS=DEFLATE.  For each, one
session idles on INBOX and N deliveries are made one after the other,
each waiting for its EXISTS.  Reported: median, 90th percentile and max.

usage: python3 bench/idle.py [deliveries]     (default 50)
"""
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import lib  # noqa: E402
import test_push  # noqa: E402


def measure(env, s, n, pause):
    base = lib.select_info(s.ok("SELECT INBOX"))["exists"]
    idle = test_push.Idle(s)
    lats = []
    for i in range(n):
        time.sleep(pause)	# a delivery does not follow "+ idling" at once
        want = b"* %d EXISTS" % (base + i + 1)
        t0 = time.monotonic()
        env.deliver(lib.make_msg("bench %d" % i))
        lats.append(idle.wait(lambda ln: ln == want, t0, limit=10))
    u, t = idle.done()
    assert test_push.is_ok(t), t
    return lats


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    rows = []
    with lib.Env() as env:
        s = env.session()
        rows.append(("pipes (inetd)", measure(env, s, n, 0.02)))
        s.logout()
        with env.listener() as l:
            s = test_push.connect(env, l)
            rows.append(("TCP loopback", measure(env, s, n, 0.02)))
            s.logout()
            s = test_push.connect(env, l)
            s.compress()
            rows.append(("TCP + DEFLATE", measure(env, s, n, 0.02)))
            s.logout()
            # the first push right after "+ idling" (no pause)
            s = test_push.connect(env, l)
            first = []
            for i in range(10):
                first.extend(measure(env, s, 1, 0))
            rows.append(("TCP, right after +", first))
            s.logout()
    print("IDLE wake-up: rename into new/ -> '* n EXISTS' at the client")
    print("%-20s %6s %10s %10s %10s" % ("transport", "n", "median",
                                         "p90", "max"))
    for name, v in rows:
        v = [x * 1000 for x in v]
        print("%-20s %6d %7.2f ms %7.2f ms %7.2f ms"
              % (name, len(v), statistics.median(v), pct(v, 0.9), max(v)))


if __name__ == "__main__":
    main()
