"""ManageSieve (imapd -S) logins beyond PLAIN: the mechanisms the IMAP
side offers (PLAIN, and EXTERNAL with a verified client certificate),
UNAUTHENTICATE (RFC 5804 2.14.1), and a cancelled exchange."""
import base64

import lib
import test_tls
from test_sieve import Sieve, _managesieve_env


class SockSieve(Sieve):
    """the ManageSieve client of test_sieve on a socket already made"""

    def __init__(self, sock):
        self.sock = sock
        self.f = sock.makefile("rb")


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
    binary = test_tls.build_with_client_ca(env, pki.ca, 0)
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
