"""ManageSieve (imapd -S) logins beyond PLAIN: the mechanisms the IMAP
side offers (PLAIN, and EXTERNAL with a verified client certificate),
UNAUTHENTICATE (RFC 5804 2.14.1), and a cancelled exchange."""
import base64
import os
import re
import shutil
import subprocess
import time

import lib
import test_tls
from test_sieve import Sieve, _managesieve_env


class SockSieve(Sieve):
    """the ManageSieve client of test_sieve on a socket already made"""

    def __init__(self, sock):
        self.sock = sock
        self.f = sock.makefile("rb")


def build_with_client_ca(env, ca):
    """imapd with a client CA in config.h, made from this tree's objects:
    only the files that read that setting (tls.c, check.c) are compiled
    again, the others are taken as built (make -o config.h)"""
    src = os.path.dirname(lib.IMAPD)
    bld = os.path.join(env.dir, "build-ca")
    os.makedirs(bld)
    for f in os.listdir(src):
        if f.endswith((".c", ".h", ".o")) or f == "Makefile":
            shutil.copy2(os.path.join(src, f), bld)
    path = os.path.join(bld, "config.h")
    with open(path) as f:
        cfg = f.read()
    cfg, n = re.subn(r'tls_client_ca_file\[\] = "[^"]*"',
                     'tls_client_ca_file[] = "%s"' % ca, cfg)
    assert n == 1
    # optional: a session without a certificate is also tried
    cfg, n = re.subn(r"tls_client_cert_required = \d",
                     "tls_client_cert_required = 0", cfg)
    assert n == 1
    with open(path, "w") as f:
        f.write(cfg)
    later = time.time() + 2
    for f in ("tls.c", "check.c"):
        os.utime(os.path.join(bld, f), (later, later))
    with open(lib.IMAPD, "rb") as f:
        asan = b"__asan_init" in f.read()
    flags = "-std=c99 -O1 -g -Wall -Wextra -Werror -Wno-unused-parameter"
    cmd = ["make", "-s", "-o", "config.h", "imapd"]
    if asan:
        san = " -fsanitize=address,undefined -fno-omit-frame-pointer"
        cmd += ["CFLAGS=" + flags + san, "LDFLAGS=" + san.strip()]
    r = subprocess.run(cmd, cwd=bld, timeout=100, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    os.chmod(bld, 0o755)
    return os.path.join(bld, "imapd")


def caps_of(lines):
    return {ln.split(b'"')[1]: ln for ln in lines}


def test_unauthenticate_and_cancel(env):
    pki, ctx, lst = _managesieve_env(env)
    with lst:
        c = Sieve(lst.port)
        caps, t = c.response()
        assert b'"UNAUTHENTICATE"' in caps, caps
        caps, t = c.starttls(ctx)
        # no client certificate: PLAIN only
        assert caps_of(caps)[b"SASL"] == b'"SASL" "PLAIN"', caps
        u, t = c.cmd("UNAUTHENTICATE")
        assert t.startswith(b"NO"), t
        # the client gives up half way (RFC 5804 2.1: "*")
        c.send('AUTHENTICATE "PLAIN"\r\n')
        assert c.f.readline() == b'""\r\n'
        c.send('"*"\r\n')
        u, t = c.response()
        assert t.startswith(b"NO") and b"cancelled" in t, t
        u, t = c.login(env.user, lib.PASSWORD)
        assert t.startswith(b"OK"), t
        u, t = c.put("one", "keep;\n")
        assert t.startswith(b"OK"), t
        u, t = c.cmd("UNAUTHENTICATE")
        assert t.startswith(b"OK"), t
        # back to the state before login, TLS still on
        u, t = c.cmd("LISTSCRIPTS")
        assert t.startswith(b"NO"), t
        caps, t = c.cmd("CAPABILITY")
        assert b'"SASL" "PLAIN"' in caps and b'"STARTTLS"' not in caps, caps
        u, t = c.login(env.user, "wrong")
        assert t.startswith(b"NO"), t
        u, t = c.login(env.user, lib.PASSWORD)
        assert t.startswith(b"OK"), t
        u, t = c.cmd("LISTSCRIPTS")
        assert u == [b'"one"'], u
        c.cmd("LOGOUT")


def test_external_with_a_client_certificate(env):
    """a build with a client CA: EXTERNAL is offered once the certificate
    is verified, as on the IMAP side, and logs in as the user"""
    pki = test_tls.setup_tls(env, "ec")
    binary = build_with_client_ca(env, pki.ca)
    good = pki.issue("ec", cn="me", client=True)
    env.fix_owner()

    def session(cert):
        p, sock = test_tls.spawn(env, ["-S", "-s"], binary=binary)
        ctx = pki.context()
        if cert:
            ctx.load_cert_chain(*cert)
        c = SockSieve(ctx.wrap_socket(sock, server_hostname="localhost"))
        caps, t = c.response()
        assert t.startswith(b"OK"), t
        return p, c, caps_of(caps)

    p, c, caps = session(good)
    assert caps[b"SASL"] == b'"SASL" "PLAIN EXTERNAL"', caps
    # another user as the authorization identity is refused
    other = base64.b64encode(b"root").decode()
    u, t = c.cmd('AUTHENTICATE "EXTERNAL" "%s"' % other)
    assert t.startswith(b"NO"), t
    u, t = c.cmd('AUTHENTICATE "EXTERNAL" ""')
    assert t.startswith(b"OK"), t
    u, t = c.cmd("LISTSCRIPTS")
    assert t.startswith(b"OK"), t
    c.cmd("LOGOUT")
    log = test_tls.finish(p)
    assert "managesieve login user=%s" % env.user in log, log
    assert "(certificate)" in log, log
    # without a certificate there is no EXTERNAL
    p, c, caps = session(None)
    assert caps[b"SASL"] == b'"SASL" "PLAIN"', caps
    u, t = c.cmd('AUTHENTICATE "EXTERNAL" ""')
    assert t.startswith(b"NO"), t
    c.cmd("LOGOUT")
    test_tls.finish(p)
