"""TLS: implicit TLS (imapd -s) and STARTTLS with real clients (openssl
s_client, python ssl/imaplib, curl, mbsync), the protocol and cipher
policy (TLS 1.2, ECDHE + AEAD only), broken input during the handshake,
certificate and key problems, renewal, and client certificates.

Certificates are made at test time with openssl: a test CA signs server
certificates (RSA or ECDSA) for localhost / 127.0.0.1, installed at the
default paths ~/.imapd/cert.pem and ~/.imapd/key.pem ($HOME is the test
directory)."""
import imaplib
import os
import re
import shutil
import socket
import ssl
import subprocess
import time

import lib
from lib import PASSWORD, crlf, quote

MSG = crlf("From: a@example.org\nTo: b@example.org\nSubject: tls test\n"
           "Date: Mon, 1 Jan 2024 10:00:00 +0000\nMessage-ID: <t1@x>\n\n"
           "hello through TLS\n")
REMOTE = "192.0.2.7"	# not loopback: plaintext LOGIN is refused


def need(tool):
    if not shutil.which(tool):
        raise lib.Skip("%s not installed" % tool)


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("timeout", 30)
    return subprocess.run(cmd, **kw)


class PKI:
    """a test CA in env.dir/pki that issues server and client certs"""

    def __init__(self, env, name="pki"):
        need("openssl")
        self.env = env
        self.dir = os.path.join(env.dir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.n = 0
        self.ca = self.path("ca.crt")
        self.ca_key = self.path("ca.key")
        r = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                 self.ca_key, "-out", self.ca, "-days", "2", "-subj",
                 "/CN=imapd test CA", "-addext",
                 "basicConstraints=critical,CA:TRUE", "-addext",
                 "keyUsage=critical,keyCertSign"])
        assert r.returncode == 0, r.stderr

    def path(self, name):
        return os.path.join(self.dir, name)

    def issue(self, kind="rsa", cn="localhost", client=False):
        """a new key and a certificate signed by the CA: (cert, key)"""
        self.n += 1
        base = self.path("%s%d" % (kind, self.n))
        if kind == "rsa":
            newkey = ["-newkey", "rsa:2048"]
        else:
            newkey = ["-newkey", "ec", "-pkeyopt",
                      "ec_paramgen_curve:P-256"]
        r = run(["openssl", "req"] + newkey + ["-nodes", "-keyout",
                 base + ".key", "-out", base + ".csr", "-subj",
                 "/CN=" + cn])
        assert r.returncode == 0, r.stderr
        with open(base + ".ext", "w") as f:
            if client:
                f.write("extendedKeyUsage=clientAuth\n")
            else:
                f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                        "extendedKeyUsage=serverAuth\n")
        r = run(["openssl", "x509", "-req", "-in", base + ".csr", "-CA",
                 self.ca, "-CAkey", self.ca_key, "-set_serial",
                 str(1000 + self.n), "-days", "2", "-extfile",
                 base + ".ext", "-out", base + ".crt"])
        assert r.returncode == 0, r.stderr
        return base + ".crt", base + ".key"

    def install(self, cert, key):
        """put a cert and key at imapd's default paths (replaced by
        rename, the way certbot's deploy hooks should)"""
        d = os.path.join(self.env.dir, ".imapd")
        os.makedirs(d, mode=0o700, exist_ok=True)
        for src, name in ((cert, "cert.pem"), (key, "key.pem")):
            tmp = os.path.join(d, name + ".new")
            shutil.copyfile(src, tmp)
            os.chmod(tmp, 0o600)
            os.rename(tmp, os.path.join(d, name))
        self.env.fix_owner()

    def context(self):
        ctx = ssl.create_default_context(cafile=self.ca)
        return ctx


def setup_tls(env, kind="rsa"):
    pki = PKI(env)
    pki.install(*pki.issue(kind))
    return pki


def s_client(port, *args, data=b"", timeout=30):
    need("openssl")
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
           "-crlf", "-ign_eof"] + list(args)
    # -crlf turns each LF into CRLF itself
    return run(cmd, input=data.replace(b"\r\n", b"\n"), timeout=timeout)


def login_line(env, tag="a1"):
    return "%s LOGIN %s %s\r\n" % (tag, env.user, quote(PASSWORD))


def wait_exit(listener, n=1, timeout=5.0):
    """the n-th imapd the listener started has exited within timeout:
    returns (returncode, seconds from now)"""
    t0 = time.time()
    assert lib.wait_until(lambda: len(listener.procs) >= n, timeout), \
        "no imapd started"
    p = listener.procs[n - 1]
    try:
        p.wait(timeout=max(0.1, timeout - (time.time() - t0)))
    except subprocess.TimeoutExpired:
        raise AssertionError("imapd still running after %.1f s" % timeout)
    return p.returncode, time.time() - t0


def spawn(env, args, binary=None, **extra):
    """one imapd on a socketpair, as inetd would start it, with its log
    captured: (process, our end of the socket)"""
    ours, theirs = socket.socketpair()
    e = env.env(TCPREMOTEIP=REMOTE)
    e.update({k: str(v) for k, v in extra.items()})
    p = env.popen([binary or lib.IMAPD] + args, stdin=theirs,
                  stdout=theirs, stderr=subprocess.PIPE, env=e)
    theirs.close()
    ours.settimeout(lib.READ_TIMEOUT)
    return p, ours


def finish(p, timeout=5):
    """wait for the process; its log"""
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("imapd still running after %d s" % timeout)
    err = err.decode(errors="replace")
    assert "Sanitizer" not in err and "runtime error" not in err, err
    return err


class Lines:
    """read CRLF lines from a (TLS) socket"""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError("closed; have %r" % self.buf)
            self.buf += d
        i = self.buf.index(b"\r\n")
        ln, self.buf = self.buf[:i], self.buf[i + 2:]
        return ln

    def until(self, tag):
        out = []
        while True:
            ln = self.line()
            out.append(ln)
            if ln.startswith(tag.encode() + b" "):
                return out


def client_hello():
    """the bytes of a real TLS 1.2 ClientHello"""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


# --- implicit TLS ---------------------------------------------------------

def implicit_s_client(env, kind, suite):
    env.deliver(MSG)
    setup_tls(env, kind)
    pki_ca = os.path.join(env.dir, "pki", "ca.crt")
    with env.listener("-s") as li:
        data = (login_line(env) + "a2 SELECT INBOX\r\n"
                "a3 FETCH 1 BODY[]\r\na4 LOGOUT\r\n").encode()
        r = s_client(li.port, "-CAfile", pki_ca, "-verify_return_error",
                     "-servername", "localhost", data=data)
        out = r.stdout.decode(errors="replace")
        assert r.returncode == 0, (out, r.stderr)
        assert "Protocol  : TLSv1.2" in out, out
        assert "Cipher    : " + suite in out, out
        assert "Verify return code: 0 (ok)" in out, out
        assert re.search(r"^\* OK", out, re.M), out
        assert "a1 OK" in out and "a2 OK" in out, out
        assert "hello through TLS" in out and "a3 OK" in out, out
        assert "* BYE" in out and "a4 OK" in out, out
        assert wait_exit(li)[0] == 0


def test_implicit_s_client_rsa(env):
    implicit_s_client(env, "rsa", "ECDHE-RSA-AES128-GCM-SHA256")


def test_implicit_s_client_ecdsa(env):
    implicit_s_client(env, "ec", "ECDHE-ECDSA-AES128-GCM-SHA256")


def test_each_allowed_suite(env):
    """all six AEAD suites work, each with its key type"""
    pki = PKI(env)
    for kind, auth in (("rsa", "RSA"), ("ec", "ECDSA")):
        pki.install(*pki.issue(kind))
        with env.listener("-s") as li:
            for c in ("AES128-GCM-SHA256", "AES256-GCM-SHA384",
                      "CHACHA20-POLY1305"):
                suite = "ECDHE-%s-%s" % (auth, c)
                r = s_client(li.port, "-tls1_2", "-cipher", suite,
                             data=b"a1 LOGOUT\r\n")
                out = r.stdout.decode(errors="replace")
                assert "Cipher    : " + suite in out, (suite, out)
                assert "a1 OK" in out, out


def test_imaplib_ssl(env):
    env.deliver(MSG)
    pki = setup_tls(env, "ec")
    with env.listener("-s") as li:
        m = imaplib.IMAP4_SSL("127.0.0.1", li.port,
                              ssl_context=pki.context(), timeout=20)
        assert m.sock.version() == "TLSv1.2"
        assert "STARTTLS" not in m.capabilities
        assert "LOGINDISABLED" not in m.capabilities
        typ, _ = m.login(env.user, PASSWORD)
        assert typ == "OK"
        typ, data = m.select("INBOX")
        assert typ == "OK" and data == [b"1"], data
        typ, data = m.fetch("1", "(RFC822)")
        assert typ == "OK" and data[0][1] == MSG, data
        typ, _ = m.logout()
        assert typ == "BYE"
        assert wait_exit(li)[0] == 0


def test_curl_imaps(env):
    need("curl")
    env.deliver(MSG)
    pki = setup_tls(env, "rsa")
    with env.listener("-s") as li:
        r = run(["curl", "-sS", "--max-time", "20", "--cacert", pki.ca,
                 "--user", "%s:%s" % (env.user, PASSWORD),
                 "imaps://127.0.0.1:%d/INBOX;UID=1" % li.port])
        assert r.returncode == 0, r.stderr
        assert r.stdout == MSG, r.stdout


def test_mbsync_imaps(env):
    need("mbsync")
    for i in range(3):
        env.deliver(MSG.replace(b"<t1@x>", b"<t%d@x>" % i))
    pki = setup_tls(env, "ec")
    local = os.path.join(env.dir, "local")
    os.makedirs(local)
    rc = os.path.join(env.dir, "mbsyncrc")
    with env.listener("-s") as li:
        with open(rc, "w") as f:
            f.write("IMAPAccount t\nHost localhost\nPort %d\nUser %s\n"
                    "Pass \"%s\"\nSSLType IMAPS\nCertificateFile %s\n\n"
                    "IMAPStore remote\nAccount t\n\n"
                    "MaildirStore local\nPath %s/\nInbox %s/INBOX\n\n"
                    "Channel c\nFar :remote:\nNear :local:\n"
                    "Patterns INBOX\nCreate Near\nSync Pull\n"
                    "SyncState *\n" % (li.port, env.user, PASSWORD,
                                        pki.ca, local, local))
        r = run(["mbsync", "-c", rc, "-a"], timeout=60)
        assert r.returncode == 0, (r.stdout, r.stderr)
    got = os.listdir(os.path.join(local, "INBOX", "new")) + \
        os.listdir(os.path.join(local, "INBOX", "cur"))
    assert len(got) == 3, got


# --- STARTTLS -------------------------------------------------------------

def test_starttls_s_client(env):
    env.deliver(MSG)
    pki = setup_tls(env, "rsa")
    with env.listener(TCPREMOTEIP=REMOTE) as li:
        data = (login_line(env) + "a2 CAPABILITY\r\na3 LOGOUT\r\n").encode()
        r = s_client(li.port, "-starttls", "imap", "-CAfile", pki.ca,
                     "-verify_return_error", data=data)
        out = r.stdout.decode(errors="replace")
        assert r.returncode == 0, (out, r.stderr)
        assert "Protocol  : TLSv1.2" in out, out
        assert "a1 OK" in out, out
        cap = [x for x in out.splitlines() if x.startswith("* CAPABILITY")]
        # the last CAPABILITY is the one inside TLS, after login
        assert cap and "STARTTLS" not in cap[-1], out
        assert "LOGINDISABLED" not in cap[-1], out
        assert "a3 OK" in out, out


def test_starttls_imaplib(env):
    env.deliver(MSG)
    pki = setup_tls(env, "ec")
    with env.listener(TCPREMOTEIP=REMOTE) as li:
        m = imaplib.IMAP4("127.0.0.1", li.port, timeout=20)
        assert "STARTTLS" in m.capabilities, m.capabilities
        assert "LOGINDISABLED" in m.capabilities, m.capabilities
        assert not any(c.startswith("AUTH=") for c in m.capabilities)
        typ, _ = m.starttls(ssl_context=pki.context())
        assert typ == "OK"
        assert m.sock.version() == "TLSv1.2"
        assert "STARTTLS" not in m.capabilities, m.capabilities
        assert "LOGINDISABLED" not in m.capabilities, m.capabilities
        typ, _ = m.login(env.user, PASSWORD)
        assert typ == "OK"
        typ, data = m.select("INBOX")
        assert typ == "OK" and data == [b"1"], data
        typ, data = m.fetch("1", "(BODY.PEEK[])")
        assert typ == "OK" and data[0][1] == MSG, data
        assert m.logout()[0] == "BYE"


def test_plaintext_login_refused(env):
    """before STARTTLS, from a non-loopback address: STARTTLS and
    LOGINDISABLED offered, no AUTH=, LOGIN answered NO"""
    setup_tls(env)
    p, sock = spawn(env, [])
    rd = Lines(sock)
    assert rd.line().startswith(b"* OK")
    sock.sendall(b"a1 CAPABILITY\r\n")
    out = rd.until("a1")
    cap = [x for x in out if x.startswith(b"* CAPABILITY")]
    assert len(cap) == 1, out
    assert b" STARTTLS" in cap[0] and b" LOGINDISABLED" in cap[0], cap
    assert b"AUTH=" not in cap[0], cap
    sock.sendall(login_line(env).encode())
    out = rd.until("a1")
    assert out[-1].startswith(b"a1 NO"), out
    sock.sendall(b"a2 LOGOUT\r\n")
    assert rd.until("a2")[-1].startswith(b"a2 OK")
    sock.close()
    finish(p)


def test_starttls_injection(env):
    """commands pipelined after STARTTLS in the same plaintext write are
    never executed inside TLS"""
    pki = setup_tls(env)
    p, sock = spawn(env, [])
    rd = Lines(sock)
    assert rd.line().startswith(b"* OK")
    sock.sendall(b"a STARTTLS\r\nb CAPABILITY\r\n")
    out = rd.until("a")
    assert out[-1].startswith(b"a OK"), out
    assert rd.buf == b"", rd.buf
    ts = pki.context().wrap_socket(sock, server_hostname="localhost")
    assert ts.version() == "TLSv1.2"
    ts.settimeout(1.0)
    try:
        early = ts.recv(4096)
    except socket.timeout:
        early = b""
    assert early == b"", early	# no answer to b
    ts.settimeout(lib.READ_TIMEOUT)
    rd = Lines(ts)
    ts.sendall(b"c CAPABILITY\r\n")
    out = rd.until("c")
    assert not any(x.startswith(b"b ") for x in out), out
    cap = [x for x in out if x.startswith(b"* CAPABILITY")]
    assert cap and b"STARTTLS" not in cap[0], out
    assert b"LOGINDISABLED" not in cap[0], out
    ts.sendall(login_line(env, "d").encode())
    assert rd.until("d")[-1].startswith(b"d OK")
    ts.sendall(b"e LOGOUT\r\n")
    assert rd.until("e")[-1].startswith(b"e OK")
    ts.close()
    finish(p)


def test_idle_pipelined_done(env):
    """DONE and the next command in one TLS record: the second is
    answered without more input (buffered plaintext counts as input)"""
    pki = setup_tls(env)
    p, sock = spawn(env, ["-s"])
    ts = pki.context().wrap_socket(sock, server_hostname="localhost")
    rd = Lines(ts)
    assert rd.line().startswith(b"* OK")
    ts.sendall(login_line(env).encode() + b"a2 SELECT INBOX\r\n")
    assert rd.until("a2")[-1].startswith(b"a2 OK")
    ts.sendall(b"a3 IDLE\r\n")
    assert rd.line().startswith(b"+ ")
    ts.sendall(b"DONE\r\na4 NOOP\r\n")
    ts.settimeout(5)
    assert rd.until("a3")[-1].startswith(b"a3 OK")
    assert rd.until("a4")[-1].startswith(b"a4 OK")
    ts.close()
    finish(p)


# --- policy ---------------------------------------------------------------

def refused(env, *args):
    setup_tls(env)
    with env.listener("-s") as li:
        r = s_client(li.port, *args, data=b"a1 LOGOUT\r\n")
        out = r.stdout.decode(errors="replace")
        assert r.returncode != 0, out
        assert "a1 OK" not in out, out
        assert "Cipher is (NONE)" in out or "Cipher    : 0000" in out, out
        rc, t = wait_exit(li)
        assert rc != 0


def test_tls11_refused(env):
    refused(env, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")


def test_tls10_refused(env):
    refused(env, "-tls1", "-cipher", "DEFAULT@SECLEVEL=0")


def test_tls13_only_refused(env):
    refused(env, "-tls1_3")


def test_cbc_suite_refused(env):
    refused(env, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA")


def test_rsa_key_exchange_refused(env):
    """no forward secrecy: plain RSA key exchange is not offered"""
    refused(env, "-tls1_2", "-cipher", "AES128-GCM-SHA256")


def test_python_default_client_gets_tls12(env):
    """a client that prefers TLS 1.3 falls back to TLS 1.2 with an
    ECDHE AEAD suite"""
    pki = setup_tls(env, "rsa")
    p, sock = spawn(env, ["-s"])
    ts = pki.context().wrap_socket(sock, server_hostname="localhost")
    assert ts.version() == "TLSv1.2"
    name, proto, bits = ts.cipher()
    assert name.startswith("ECDHE-RSA-") and ("GCM" in name or
                                             "CHACHA" in name), name
    ts.close()
    finish(p)


# --- broken handshakes --------------------------------------------------

def test_garbage_instead_of_client_hello(env):
    """plaintext IMAP on the TLS port: the process ends at once, without
    waiting for a timeout, with a log line saying why"""
    setup_tls(env)
    p, sock = spawn(env, ["-s"])
    t0 = time.time()
    sock.sendall(b"a001 CAPABILITY\r\n")
    err = finish(p, timeout=5)	# the socket stays open
    assert time.time() - t0 < 3
    assert p.returncode != 0
    assert "TLS handshake failed" in err, err
    sock.close()


def test_truncated_client_hello(env):
    setup_tls(env)
    hello = client_hello()
    assert hello[:1] == b"\x16" and len(hello) > 100
    p, sock = spawn(env, ["-s"])
    t0 = time.time()
    sock.sendall(hello[:len(hello) // 2])
    sock.shutdown(socket.SHUT_WR)
    err = finish(p, timeout=5)
    assert time.time() - t0 < 3
    assert p.returncode != 0
    assert "TLS handshake failed: connection closed" in err, err


def test_truncated_client_hello_listener(env):
    """the same over TCP, the way a port scanner would do it"""
    setup_tls(env)
    hello = client_hello()
    with env.listener("-s") as li:
        s = socket.create_connection(("127.0.0.1", li.port))
        s.sendall(hello[:40])
        s.shutdown(socket.SHUT_WR)
        rc, t = wait_exit(li, timeout=5)
        assert rc != 0 and t < 3
        s.close()


def test_peer_vanishes_mid_record(env):
    """after the handshake, half a record and then EOF: imapd ends
    promptly instead of waiting for the rest"""
    pki = setup_tls(env)
    p, sock = spawn(env, ["-s"])
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = pki.context().wrap_bio(inc, out, server_hostname="localhost")
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            sock.sendall(out.read())
            d = sock.recv(65536)
            assert d, "closed during handshake"
            inc.write(d)
    sock.sendall(out.read())
    greeting = b""
    while b"\r\n" not in greeting:
        try:
            greeting += obj.read(4096)
        except ssl.SSLWantReadError:
            inc.write(sock.recv(65536))
    assert greeting.startswith(b"* OK"), greeting
    obj.write(b"a1 NOOP\r\n")
    rec = out.read()
    assert len(rec) > 20
    t0 = time.time()
    sock.sendall(rec[:len(rec) // 2])
    sock.shutdown(socket.SHUT_WR)
    finish(p, timeout=5)
    assert time.time() - t0 < 3
    sock.close()


# --- certificates and keys ---------------------------------------------

def test_key_not_matching_cert(env):
    pki = PKI(env)
    cert, _ = pki.issue("rsa")
    _, other = pki.issue("rsa")
    pki.install(cert, other)
    p, sock = spawn(env, ["-s"])
    ctx = pki.context()
    try:
        ctx.wrap_socket(sock, server_hostname="localhost")
        raise AssertionError("handshake succeeded with a wrong key")
    except (ssl.SSLError, ConnectionError, OSError):
        pass
    err = finish(p)
    assert p.returncode != 0
    assert re.search(r"TLS: key \S+/\.imapd/key\.pem does not match "
                     r"certificate \S+/\.imapd/cert\.pem", err), err


def test_key_of_other_type(env):
    """an EC key for an RSA certificate is a mismatch too"""
    pki = PKI(env)
    cert, _ = pki.issue("rsa")
    _, eckey = pki.issue("ec")
    pki.install(cert, eckey)
    p, sock = spawn(env, ["-s"])
    sock.close()
    err = finish(p)
    assert "does not match" in err, err


def test_unreadable_cert(env):
    setup_tls(env)
    missing = os.path.join(env.dir, "nonexistent.pem")
    p, sock = spawn(env, ["-s"], IMAPD_CERT=missing)
    sock.settimeout(5)
    assert sock.recv(100) == b""	# closed, nothing sent
    err = finish(p)
    assert p.returncode != 0
    assert "TLS: cannot read certificate %s: No such file" % missing in err, \
        err


def test_garbage_key_file(env):
    pki = setup_tls(env)
    bad = pki.path("bad.key")
    with open(bad, "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\nAAAA\n"
                "-----END PRIVATE KEY-----\n")
    env.fix_owner()
    p, sock = spawn(env, ["-s"], IMAPD_KEY=bad)
    sock.close()
    err = finish(p)
    assert "TLS: key %s: cannot decode the private key" % bad in err, err


def test_env_paths_and_traditional_key_formats(env):
    """IMAPD_CERT/IMAPD_KEY override the configured paths; PKCS#1 RSA and
    SEC1 EC keys load as well as PKCS#8; a chain file with the
    intermediate after the leaf is served whole"""
    pki = PKI(env)
    for kind, conv in (("rsa", ["rsa", "-traditional"]),
                       ("ec", ["ec"])):
        cert, key = pki.issue(kind)
        trad = key + ".trad"
        r = run(["openssl"] + conv + ["-in", key, "-out", trad])
        assert r.returncode == 0, r.stderr
        with open(trad) as f:
            head = f.readline()
        assert head.startswith("-----BEGIN %s PRIVATE KEY"
                               % kind.upper()), head
        chain = cert + ".chain"
        with open(chain, "w") as f:
            f.write(open(cert).read() + open(pki.ca).read())
        env.fix_owner()
        p, sock = spawn(env, ["-s"], IMAPD_CERT=chain, IMAPD_KEY=trad)
        ts = pki.context().wrap_socket(sock, server_hostname="localhost")
        rd = Lines(ts)
        assert rd.line().startswith(b"* OK")
        ts.sendall(b"a LOGOUT\r\n")
        assert rd.until("a")[-1].startswith(b"a OK")
        ts.close()
        finish(p)


def peer_cert(port, ctx):
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as ts:
            der = ts.getpeercert(binary_form=True)
            ts.sendall(b"a LOGOUT\r\n")
            Lines(ts).until("a")
            return der


def test_renewed_cert_served_on_next_connection(env):
    pki = PKI(env)
    first = pki.issue("rsa")
    pki.install(*first)
    with env.listener("-s") as li:
        a = peer_cert(li.port, pki.context())
        renewed = pki.issue("ec")
        pki.install(*renewed)
        b = peer_cert(li.port, pki.context())
    assert a != b
    with open(renewed[0]) as f:
        assert ssl.PEM_cert_to_DER_cert(f.read()) == b


# --- client certificates (a build with tls_client_ca_file set) -----------

def build_with_client_ca(env, ca, required):
    """imapd built from this tree with a client CA in config.h"""
    need("make")
    src = os.path.dirname(lib.IMAPD)
    bld = os.path.join(env.dir, "build%d" % required)
    os.makedirs(bld)
    for f in os.listdir(src):
        if f.endswith((".c", ".h")) or f == "Makefile":
            shutil.copy(os.path.join(src, f), bld)
    with open(os.path.join(bld, "config.h")) as f:
        cfg = f.read()
    cfg, n1 = re.subn(r'tls_client_ca_file\[\] = "[^"]*"',
                      'tls_client_ca_file[] = "%s"' % ca, cfg)
    cfg, n2 = re.subn(r"tls_client_cert_required = \d",
                      "tls_client_cert_required = %d" % required, cfg)
    assert n1 == 1 and n2 == 1
    with open(os.path.join(bld, "config.h"), "w") as f:
        f.write(cfg)
    with open(lib.IMAPD, "rb") as f:
        asan = b"__asan_init" in f.read()
    flags = "-std=c99 -O1 -g -Wall -Wextra -Werror -Wno-unused-parameter"
    cmd = ["make", "-s", "-j%d" % (os.cpu_count() or 2), "imapd"]
    if asan:
        san = " -fsanitize=address,undefined -fno-omit-frame-pointer"
        cmd += ["CFLAGS=" + flags + san, "LDFLAGS=" + san.strip()]
    r = run(cmd, cwd=bld, timeout=110)
    assert r.returncode == 0, r.stderr
    os.chmod(bld, 0o755)
    return os.path.join(bld, "imapd")


def client_cert_session(env, pki, binary, cert=None):
    """a TLS session with an optional client certificate: the log, and
    whether the server greeted us"""
    p, sock = spawn(env, ["-s"], binary=binary)
    ctx = pki.context()
    if cert:
        ctx.load_cert_chain(*cert)
    greeted = False
    try:
        ts = ctx.wrap_socket(sock, server_hostname="localhost")
        rd = Lines(ts)
        greeted = rd.line().startswith(b"* OK")
        ts.sendall(b"a LOGOUT\r\n")
        rd.until("a")
        ts.close()
    except (ssl.SSLError, ConnectionError, EOFError, OSError):
        sock.close()
    return finish(p), greeted


def test_client_cert_required(env):
    pki = setup_tls(env, "ec")
    binary = build_with_client_ca(env, pki.ca, 1)
    good = pki.issue("rsa", cn="me", client=True)
    bad = PKI(env, "untrusted").issue("ec", cn="me", client=True)
    env.fix_owner()
    log, greeted = client_cert_session(env, pki, binary, good)
    assert greeted and "client certificate verified" in log, log
    log, greeted = client_cert_session(env, pki, binary, None)
    assert not greeted and "TLS handshake failed" in log, log
    log, greeted = client_cert_session(env, pki, binary, bad)
    assert not greeted and "client certificate rejected" in log, log


def test_client_cert_optional(env):
    pki = setup_tls(env, "rsa")
    binary = build_with_client_ca(env, pki.ca, 0)
    good = pki.issue("ec", cn="me", client=True)
    env.fix_owner()
    log, greeted = client_cert_session(env, pki, binary, good)
    assert greeted and "client certificate verified" in log, log
    log, greeted = client_cert_session(env, pki, binary, None)
    assert greeted and "client certificate verified" not in log, log
