"""The launcher files in contrib/, each run by the real launcher from Debian
on loopback ports: openbsd-inetd, xinetd, ucspi-tcp's tcpserver, s6
(s6-svscan with tcpserver) and systemd's units (systemd-analyze verify,
then served by systemd-socket-activate).  Through each, a client logs in
on the plain port after STARTTLS and on the implicit-TLS port.

The files name port 143 and 993, the user alice and
/usr/local/bin/imapd; the tests substitute free high ports, the test user
and a wrapper that gives the built imapd the test's paths (the test user
has no home directory).  The launchers bind as root and must start imapd
as the test user: imapd refuses to serve as root, so a login proves it."""
import imaplib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time

import lib
import test_deploy

CONTRIB = os.path.join(lib.ROOT, "contrib")
XINETD = "/usr/local/lib/imapd-tests/xinetd/usr/sbin/xinetd"
MSG = lib.crlf("From: a@example.org\nTo: b@example.org\nSubject: launch\n"
               "Message-ID: <launch@x>\n\nthrough the launcher\n")


def need_root():
    if os.getuid() != 0:
        raise lib.Skip("launchers bind ports and change users as root")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Setup:
    """a certificate, one message, a wrapper around the built imapd and
    two free ports"""

    def __init__(self, env):
        need_root()
        self.env = env
        self.cert, self.key = test_deploy.make_cert(
            env, names="DNS:localhost,IP:127.0.0.1")
        env.deliver(MSG)
        self.plain, self.tls = free_port(), free_port()
        self.wrapper = os.path.join(env.dir, "imapd-wrapper")
        e = env.env(IMAPD_CERT=self.cert, IMAPD_KEY=self.key)
        with open(self.wrapper, "w") as f:
            f.write("#!/bin/sh\n")
            for k in ("HOME", "MAILDIR", "IMAPD_PASSWD", "IMAPD_CERT",
                      "IMAPD_KEY", "IMAPD_LOG_STDERR", "ASAN_OPTIONS",
                      "UBSAN_OPTIONS"):
                if k in e:
                    f.write("export %s=%s\n" % (k, lib.shquote(e[k])))
            f.write("exec 2>>%s\nexec %s \"$@\"\n"
                    % (lib.shquote(env.logpath), lib.shquote(lib.IMAPD)))
        os.chmod(self.wrapper, 0o755)
        os.chown(env.logpath, env.uid, env.gid)
        self.procs = []

    def text(self, path):
        """a contrib file with the test's user, binary and ports"""
        with open(os.path.join(CONTRIB, path)) as f:
            t = f.read()
        return t.replace("alice", self.env.user).replace(
            "/usr/local/bin/imapd", self.wrapper)

    def write(self, name, text, mode=0o644):
        path = os.path.join(self.env.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def start(self, cmd, **kw):
        out = open(os.path.join(self.env.dir, "launcher.log"), "ab")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=out, start_new_session=True, **kw)
        out.close()
        self.procs.append(p)
        return p

    def stop(self):
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)

    def launcher_log(self):
        try:
            with open(os.path.join(self.env.dir, "launcher.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_listening(self, timeout=15):
        deadline = time.time() + timeout
        for port in (self.plain, self.tls):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port),
                                             timeout=1).close()
                    break
                except OSError:
                    if time.time() > deadline:
                        raise AssertionError(
                            "nothing listens on port %d; launcher said: %s"
                            % (port, self.launcher_log()[-2000:]))
                    time.sleep(0.05)
        # the probes above were connections too: let their imapds go
        time.sleep(0.2)

    def log_in_both(self):
        """STARTTLS then LOGIN on the plain port, LOGIN over implicit TLS;
        both see the message"""
        self.wait_listening()
        ctx = ssl.create_default_context(cafile=self.cert)
        m = imaplib.IMAP4("127.0.0.1", self.plain, timeout=20)
        try:
            assert "STARTTLS" in m.capabilities, m.capabilities
            m.starttls(ctx)
            assert m.sock.version() == "TLSv1.2", m.sock.version()
            assert m.login(self.env.user, lib.PASSWORD)[0] == "OK"
            assert m.select("INBOX") == ("OK", [b"1"])
        finally:
            m.logout()
        m = imaplib.IMAP4_SSL("127.0.0.1", self.tls, ssl_context=ctx,
                              timeout=20)
        try:
            assert m.login(self.env.user, lib.PASSWORD)[0] == "OK"
            assert m.select("INBOX", readonly=True) == ("OK", [b"1"])
            typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            assert typ == "OK" and b"Subject: launch" in data[0][1], data
        finally:
            m.logout()
        assert lib.wait_until(lambda: self.logins() >= 2, 10), \
            self.logins()

    def logins(self):
        self.env.log.flush()
        with open(self.env.logpath) as f:
            return len(re.findall(r"login ok user=%s (device=\S+ )?"
                                  r"from=127\.0\.0\.1" % self.env.user,
                                  f.read()))


def run_launcher(env, start):
    s = Setup(env)
    try:
        start(s)
        s.log_in_both()
    except AssertionError:
        print("--- launcher output\n" + s.launcher_log()[-3000:])
        raise
    finally:
        s.stop()


def test_openbsd_inetd(env):
    def start(s):
        conf = s.text("inetd/inetd.conf")
        conf = re.sub(r"^imap2\t", "127.0.0.1:%d\t" % s.plain, conf,
                      flags=re.M)
        conf = re.sub(r"^imaps\t", "127.0.0.1:%d\t" % s.tls, conf,
                      flags=re.M)
        assert conf.count("127.0.0.1:") == 2, conf
        s.start(["/usr/sbin/inetd", "-i", s.write("inetd.conf", conf)])
    run_launcher(env, start)


def test_xinetd(env):
    def start(s):
        conf = s.text("xinetd/imapd")
        conf = conf.replace("= 143\n", "= %d\n\tbind\t\t= 127.0.0.1\n"
                            % s.plain)
        conf = conf.replace("= 993\n", "= %d\n\tbind\t\t= 127.0.0.1\n"
                            % s.tls)
        assert conf.count("127.0.0.1") == 2, conf
        path = s.write("xinetd.conf", conf)
        s.start([XINETD, "-dontfork", "-f", path, "-pidfile",
                 os.path.join(env.dir, "xinetd.pid"), "-filelog",
                 os.path.join(env.dir, "xinetd.log")])
    run_launcher(env, start)


def test_tcpserver(env):
    def start(s):
        script = s.text("tcpserver/imapd-tcpserver")
        script = script.replace(" 0 143 ", " 127.0.0.1 %d " % s.plain)
        script = script.replace(" 0 993 ", " 127.0.0.1 %d " % s.tls)
        assert script.count("127.0.0.1") == 2, script
        s.start(["sh", s.write("imapd-tcpserver", script, 0o755)])
    run_launcher(env, start)


def test_s6(env):
    def start(s):
        scan = os.path.join(env.dir, "service")
        for svc, port, real in (("imapd", s.plain, 143),
                                ("imapd-tls", s.tls, 993)):
            run = s.text("s6/%s/run" % svc)
            run = run.replace(" 0 %d " % real, " 127.0.0.1 %d " % port)
            assert "127.0.0.1 %d" % port in run, run
            s.write("service/%s/run" % svc, run, 0o755)
        s.start(["s6-svscan", scan])
    run_launcher(env, start)


def systemd_units(s):
    """the four units with the test's user and binary, in a directory"""
    d = os.path.join(s.env.dir, "units")
    for name in ("imapd.socket", "imapd@.service", "imapd-tls.socket",
                 "imapd-tls@.service"):
        s.write("units/" + name, s.text("systemd/" + name))
    return d


def unit_values(path):
    values = {}
    with open(path) as f:
        for line in f:
            k, eq, v = line.strip().partition("=")
            if eq and not line.startswith("#"):
                values[k] = v
    return values


def test_systemd_units_verify(env):
    s = Setup(env)
    d = systemd_units(s)
    for sock, svc in (("imapd.socket", "imapd@.service"),
                      ("imapd-tls.socket", "imapd-tls@.service")):
        r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                            os.path.join(d, sock), os.path.join(d, svc)],
                           capture_output=True, timeout=60)
        assert r.returncode == 0 and r.stdout == b"" and r.stderr == b"", \
            (sock, r)
    # a broken unit is caught
    bad = s.write("units/bad@.service", s.text("systemd/imapd@.service")
                  .replace("ExecStart=" + s.wrapper,
                           "ExecStart=/nonexistent/imapd"))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", bad],
                       capture_output=True, timeout=60)
    assert r.returncode != 0 and b"/nonexistent/imapd" in r.stderr, r


def test_systemd_socket_activate(env):
    """each socket unit's ListenStream and Accept=yes, and its service's
    User and ExecStart, served the same way by systemd-socket-activate"""
    def start(s):
        d = systemd_units(s)
        for unit, port, real in (("imapd", s.plain, "143"),
                                 ("imapd-tls", s.tls, "993")):
            sock = unit_values(os.path.join(d, unit + ".socket"))
            svc = unit_values(os.path.join(d, unit + "@.service"))
            assert sock["ListenStream"] == real and sock["Accept"] == "yes"
            assert svc["StandardInput"] == "socket"
            assert svc["StandardOutput"] == "socket"
            assert svc["User"] == env.user
            s.start(["systemd-socket-activate", "--accept", "--inetd",
                     "-l", "127.0.0.1:%d" % port, "setpriv",
                     "--reuid=%d" % env.uid, "--regid=%d" % env.gid,
                     "--clear-groups"] + svc["ExecStart"].split())
    run_launcher(env, start)
