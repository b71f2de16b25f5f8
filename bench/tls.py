#!/usr/bin/env python3
"""TLS cost per connection: imapd -s (implicit TLS, RSA 2048 and ECDSA
P-256 certificates) against plaintext, side by side in one run.

For each mode, N connections run one after the other, each one imapd
process on a socketpair as inetd would start it: connect, greeting (for
TLS this includes the whole handshake), LOGIN, SELECT, FETCH of a 20 KB
message, LOGOUT.  Reported per mode: time to greeting and for the whole
session (median, 95th percentile), CPU time of the imapd process (user +
system, median) and its peak RSS (VmHWM, read after the FETCH).

usage: python3 bench/tls.py [connections]     (default 200)
"""
import os
import socket
import ssl
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import lib  # noqa: E402
from benchlib import hwm  # noqa: E402

CLIENT = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
CLIENT.check_hostname = False
CLIENT.verify_mode = ssl.CERT_NONE


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True,
                   capture_output=True)


def make_cert(env, kind):
    d = os.path.join(env.dir, kind)
    os.makedirs(d)
    key, crt = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    newkey = (["-newkey", "rsa:2048"] if kind == "rsa" else
              ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
    openssl("req", "-x509", *newkey, "-nodes", "-keyout", key, "-out",
            crt, "-days", "2", "-subj", "/CN=localhost")
    return crt, key


def recv_until(sock, buf, tag):
    while tag not in buf:
        d = sock.recv(65536)
        if not d:
            raise EOFError(buf[-200:])
        buf += d
    return buf


def one(env, tls, extra):
    ours, theirs = socket.socketpair()
    e = env.env(TCPREMOTEIP="127.0.0.1", **extra)
    e.pop("IMAPD_LOG_STDERR", None)		# syslog, as in production
    kw = {}
    if os.getuid() == 0:
        kw = {"user": env.uid, "group": env.gid, "extra_groups": []}
    t0 = time.perf_counter()
    p = subprocess.Popen([lib.IMAPD] + (["-s"] if tls else []),
                         stdin=theirs, stdout=theirs, env=e, **kw)
    theirs.close()
    sock = ours
    if tls:
        sock = CLIENT.wrap_socket(ours, server_hostname="localhost")
    buf = recv_until(sock, b"", b"\r\n")
    t1 = time.perf_counter()
    sock.sendall(b'a LOGIN %s "%s"\r\nb SELECT INBOX\r\n'
                 b"c FETCH 1 BODY[]\r\n"
                 % (env.user.encode(), lib.PASSWORD.encode()))
    buf = recv_until(sock, buf, b"c OK")
    rss = hwm(p.pid)
    sock.sendall(b"d LOGOUT\r\n")
    buf = recv_until(sock, buf, b"d OK")
    sock.close()
    _, status, ru = os.wait4(p.pid, 0)
    t2 = time.perf_counter()
    p.returncode = status
    assert status == 0, status
    return t1 - t0, t2 - t0, rss, (ru.ru_utime + ru.ru_stime)



def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with lib.Env() as env:
        env.deliver(lib.crlf("From: a@b\nSubject: bench\n\n" +
                             "0123456789abcdef" * 1280 + "\n"))
        rsa, ec = make_cert(env, "rsa"), make_cert(env, "ec")
        env.fix_owner()
        modes = [("plaintext", False, {}),
                 ("TLS RSA-2048", True, {"IMAPD_CERT": rsa[0],
                                         "IMAPD_KEY": rsa[1]}),
                 ("TLS ECDSA-P256", True, {"IMAPD_CERT": ec[0],
                                           "IMAPD_KEY": ec[1]})]
        res = {m[0]: [] for m in modes}
        for i in range(n):		# interleaved: same conditions
            for name, tls, extra in modes:
                res[name].append(one(env, tls, extra))
    print("%d sessions per mode (connect .. greeting; whole session: "
          "LOGIN SELECT FETCH 20KB LOGOUT)" % n)
    print("%-16s %12s %12s %12s %12s %12s %10s" % (
        "mode", "greet med", "greet p95", "session med", "session p95",
        "imapd CPU", "peak RSS"))
    for name, _, _ in modes:
        g = [r[0] * 1000 for r in res[name]]
        s = [r[1] * 1000 for r in res[name]]
        cpu = [r[3] * 1000 for r in res[name]]
        rss = max(r[2] for r in res[name])
        print("%-16s %9.2f ms %9.2f ms %9.2f ms %9.2f ms %9.2f ms %7d KB"
              % (name, statistics.median(g), pct(g, 0.95),
                 statistics.median(s), pct(s, 0.95),
                 statistics.median(cpu), rss))


if __name__ == "__main__":
    main()
