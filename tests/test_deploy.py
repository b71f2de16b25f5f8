"""Deployment: imapd -t on good and broken set-ups, -h and -V, a missing
Maildir at run time, the log line of a STARTTLS port without a
certificate, the man page under mandoc -Tlint, and make install into a
DESTDIR."""
import imaplib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile

import lib

ROOT = lib.ROOT


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("timeout", 60)
    return subprocess.run(cmd, **kw)


def make_cert(env, days=90, cn="mail.example.org",
              names="DNS:mail.example.org,DNS:imap.example.org,IP:192.0.2.1",
              kind="ec", name="cert"):
    """a self-signed certificate and key at env.dir/NAME.pem and
    NAME.key, mode 600, owned by the imapd user"""
    cert = os.path.join(env.dir, name + ".pem")
    key = os.path.join(env.dir, name + ".key")
    newkey = (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
              if kind == "ec" else ["-newkey", "rsa:2048"])
    r = run(["openssl", "req", "-x509"] + newkey + [
        "-nodes", "-keyout", key, "-out", cert, "-days", str(days),
        "-subj", "/CN=%s/O=Example" % cn, "-addext",
        "subjectAltName=" + names])
    assert r.returncode == 0, r.stderr
    os.chmod(key, 0o600)
    env.fix_owner()
    return cert, key


def write_passwd(env, lines, mode=0o600):
    with open(env.passwd, "w") as f:
        f.write("".join(x + "\n" for x in lines))
    os.chmod(env.passwd, mode)
    env.fix_owner()


def check(env, **extra):
    """imapd -t as the imapd user: (status, stdout, stderr lines)"""
    p = env.popen([lib.IMAPD, "-t"], stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE, env=env.env(**extra))
    out, err = p.communicate(timeout=60)
    err = err.decode()
    assert "Sanitizer" not in err and "runtime error" not in err, err
    return p.returncode, out.decode(), err.splitlines()


def good_setup(env):
    cert, key = make_cert(env)
    write_passwd(env, ["# phone and laptop",
                       "phone:" + lib.make_hash("one"),
                       "laptop:" + lib.make_hash("two"),
                       lib.make_hash(lib.PASSWORD)])
    env.make_folder("Sent")
    return cert, key


def test_check_good(env):
    cert, key = good_setup(env)
    for sub in ("cur", "new", "tmp"):     # a folder being deleted
        os.makedirs(os.path.join(env.maildir, "..imapd-trash.1", sub))
    env.fix_owner()
    rc, out, err = check(env, IMAPD_CERT=cert, IMAPD_KEY=key)
    assert rc == 0 and err == [], (out, err)
    fields = {}
    for ln in out.splitlines():
        k, _, v = ln.partition(" ")
        fields.setdefault(k, v.strip())
    assert fields["version"] == "imapd " + makefile_version()
    assert fields["maildir"] == env.maildir + "  (from $MAILDIR)"
    assert fields["passwd"] == env.passwd + "  (from $IMAPD_PASSWD)"
    assert fields["cert"] == cert + "  (from $IMAPD_CERT)"
    assert fields["runs_as"].startswith(env.user + " (uid %d)" % env.uid)
    assert fields["timeout_preauth"] == "60 s"
    assert fields["maildir_check"] == "ok, 2 folders"
    assert fields["passwd_check"] == ("ok, 3 passwords, label(method): "
                                      "phone(sha512crypt) "
                                      "laptop(sha512crypt) -(sha512crypt)")
    assert fields["cert_subject"] == "CN=mail.example.org, O=Example"
    assert fields["cert_names"] == ("DNS:mail.example.org "
                                    "DNS:imap.example.org IP:192.0.2.1")
    assert fields["cert_key"] == "ECDSA P-256, matches the certificate"
    assert fields["cert_chain"] == "1 certificate"
    # the expiry openssl wrote, to the second
    r = run(["openssl", "x509", "-in", cert, "-noout", "-enddate",
             "-dateopt", "iso_8601"])
    assert r.returncode == 0, r.stderr
    end = r.stdout.decode().split("=", 1)[1].strip()    # 2027-03-06 03:58:50Z
    assert fields["cert_expires"].startswith(end.rstrip("Z") + " UTC ("), \
        (fields["cert_expires"], end)
    assert fields["cert_expires"].endswith(" (90 days)")
    assert out.splitlines()[-1] == "check ok"


def test_check_rsa_at_default_paths(env):
    """no environment overrides for the certificate: ~/.imapd/ is used"""
    good_setup(env)
    cert, key = make_cert(env, kind="rsa", names="DNS:localhost")
    d = os.path.join(env.dir, ".imapd")
    os.makedirs(d, mode=0o700)
    shutil.move(cert, os.path.join(d, "cert.pem"))
    shutil.move(key, os.path.join(d, "key.pem"))
    env.fix_owner()
    rc, out, err = check(env)
    assert rc == 0 and err == [], (out, err)
    assert "cert                   %s/cert.pem\n" % d in out, out
    assert "cert_key               RSA 2048 bits, matches" in out, out
    assert "cert_names             DNS:localhost\n" in out, out
    assert "maildir_check          ok, 2 folders\n" in out, out


def test_check_broken(env):
    """each problem is one line on stderr, and the status is 1"""
    cert, _ = make_cert(env)
    _, other_key = make_cert(env, name="other")
    os.chmod(other_key, 0o644)
    write_passwd(env, ["phone:$y$j9T$cut", "laptop:hunter2",
                       "tablet:" + lib.make_hash("x")], mode=0o644)
    missing = os.path.join(env.dir, "Mail")
    rc, out, err = check(env, MAILDIR=missing, IMAPD_CERT=cert,
                         IMAPD_KEY=other_key)
    assert rc == 1, (out, err)
    assert err == [
        "imapd: Maildir %s: No such file or directory (imapd does not "
        "create it: mkdir -p %s/cur %s/new %s/tmp)" % ((missing,) * 4),
        "imapd: password file %s: group or others may read it (mode "
        "0644): chmod 600 %s" % (env.passwd, env.passwd),
        "imapd: password file %s line 1: the yescrypt hash is cut short "
        "or damaged" % env.passwd,
        "imapd: password file %s line 2: not a crypt(3) hash (make one "
        "with imapd -H)" % env.passwd,
        "imapd: key %s: group or others may read it (mode 0644): chmod "
        "600 %s" % (other_key, other_key),
        "imapd: TLS: key %s does not match certificate %s"
        % (other_key, cert),
    ], err
    assert "passwd_check           1 password, label(method): " \
        "tablet(sha512crypt)\n" in out, out
    assert out.splitlines()[-1] == "check failed: 6 problems"
    assert not os.path.exists(missing)


def test_check_maildir_unsafe(env):
    good_setup(env)
    cert, key = make_cert(env)
    os.chmod(env.maildir, 0o777)
    rc, out, err = check(env, IMAPD_CERT=cert, IMAPD_KEY=key)
    assert rc == 1
    assert err == ["imapd: Maildir %s: writable by everyone (mode 0777): "
                   "chmod 700 %s" % (env.maildir, env.maildir)], err
    assert "\nmaildir_check          2 folders\n" in out, out
    if os.getuid() == 0:
        os.chmod(env.maildir, 0o755)
        os.chown(env.maildir, 0, 0)
        rc, out, err = check(env, IMAPD_CERT=cert, IMAPD_KEY=key)
        assert rc == 1
        assert err[0] == ("imapd: Maildir %s: owned by uid 0, not by uid "
                          "%d that imapd runs as" % (env.maildir, env.uid))


def test_check_no_certificate_and_no_password(env):
    write_passwd(env, ["# nothing yet"])
    rc, out, err = check(env)
    assert rc == 1
    path = os.path.join(env.dir, ".imapd", "cert.pem")
    assert err == [
        "imapd: password file %s: no password in it: nobody can log in "
        "(make one with imapd -H)" % env.passwd,
        "imapd: TLS: cannot read certificate %s: No such file or "
        "directory: no STARTTLS" % path], err


def test_check_garbage_certificate_and_encrypted_key(env):
    good_setup(env)
    cert, key = make_cert(env)
    bad = os.path.join(env.dir, "bad.pem")
    with open(bad, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n")
    env.fix_owner()
    rc, _, err = check(env, IMAPD_CERT=bad, IMAPD_KEY=key)
    assert rc == 1
    assert err == ["imapd: TLS: certificate %s: not a valid PEM file"
                   % bad], err
    enc = os.path.join(env.dir, "enc.key")
    r = run(["openssl", "pkey", "-in", key, "-aes256", "-passout",
             "pass:x", "-out", enc])
    assert r.returncode == 0, r.stderr
    os.chmod(enc, 0o600)
    env.fix_owner()
    rc, _, err = check(env, IMAPD_CERT=cert, IMAPD_KEY=enc)
    assert rc == 1
    assert err == ["imapd: TLS: key %s: encrypted keys are not supported"
                   % enc], err


def test_check_expiry_warning(env):
    """under 14 days: a warning, the status stays 0"""
    good_setup(env)
    cert, key = make_cert(env, days=5)
    rc, out, err = check(env, IMAPD_CERT=cert, IMAPD_KEY=key)
    assert rc == 0, (out, err)
    assert len(err) == 1 and re.fullmatch(
        r"imapd: warning: certificate %s expires in 5 days "
        r"\(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\): renew it"
        % re.escape(cert), err[0]), err
    assert out.splitlines()[-1] == "check ok"


def test_check_as_root_is_a_problem(env):
    if os.getuid() != 0:
        raise lib.Skip("the tests do not run as root")
    good_setup(env)
    p = subprocess.run([lib.IMAPD, "-t"], env=env.env(), capture_output=True,
                       timeout=60)
    assert p.returncode == 1
    assert (b"imapd: running as root: imapd never serves as root; check as "
            b"the mail user (runuser -u USER -- imapd -t)\n") in p.stderr


def makefile_version():
    with open(os.path.join(ROOT, "Makefile")) as f:
        return re.search(r"^VERSION = (\S+)$", f.read(), re.M).group(1)


def test_version_and_help(env):
    for arg in ("-V", "--version"):
        p = run([lib.IMAPD, arg], env=env.env())
        assert p.returncode == 0 and p.stderr == b""
        assert p.stdout.decode() == "imapd %s\n" % makefile_version()
    for arg in ("-h", "--help"):
        p = run([lib.IMAPD, arg], env=env.env())
        assert p.returncode == 0 and p.stderr == b"", p
        assert p.stdout.startswith(b"usage: imapd ")
        for opt in (b"-p", b"-s", b"-H", b"-t", b"-V", b"-h"):
            assert b"\n  " + opt + b" " in p.stdout, (opt, p.stdout)
    p = run([lib.IMAPD, "-Z"], env=env.env())
    assert p.returncode == 1 and p.stdout == b""
    assert b"usage: imapd " in p.stderr


def test_missing_maildir_is_an_error(env):
    missing = os.path.join(env.dir, "Typo")
    s = env.session(login=False, MAILDIR=missing)
    s.greeting()
    s.no("LOGIN %s %s" % (env.user, lib.quote(lib.PASSWORD)), "UNAVAILABLE")
    s.logout()
    assert not os.path.exists(missing)
    env.log.flush()
    with open(env.logpath) as f:
        log = f.read()
    assert "cannot open Maildir %s: No such file or directory" % missing \
        in log, log


def test_missing_maildir_preauth(env):
    missing = os.path.join(env.dir, "Typo")
    p = env.popen([lib.IMAPD, "-p"], stdin=subprocess.DEVNULL,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                  env=env.env(MAILDIR=missing))
    out, err = p.communicate(timeout=30)
    assert p.returncode != 0 and out == b""
    assert b"cannot open Maildir %s: No such file" % missing.encode() in err
    assert not os.path.exists(missing)


def test_starttls_port_without_certificate_logs_why(env):
    s = env.session(login=False)
    g = s.greeting()
    assert b"STARTTLS" not in g
    s.logout()
    env.log.flush()
    with open(env.logpath) as f:
        log = f.read()
    assert ("TLS: cannot read certificate %s/.imapd/cert.pem: No such file "
            "or directory: no STARTTLS" % env.dir) in log, log
    # with a certificate: offered, and nothing logged about it
    cert, key = make_cert(env)
    s = env.session(login=False, IMAPD_CERT=cert, IMAPD_KEY=key)
    assert b"STARTTLS" in s.greeting()
    s.logout()
    with open(env.logpath) as f:
        assert f.read().count("no STARTTLS") == 1


# --- the man page and make install -----------------------------------------

def test_man_page_lint(env):
    """mandoc -Tlint finds nothing but cross-references to manuals that
    are not installed here (which depends on the machine)"""
    page = os.path.join(ROOT, "imapd.8")
    r = run(["mandoc", "-Tlint", page])
    msgs = [x for x in (r.stdout + r.stderr).decode().splitlines()
            if "STYLE: referenced manual not found" not in x and
            "mandoc.db" not in x]
    assert msgs == [], msgs
    assert r.returncode in (0, 1), r     # 1: style messages only
    r = run(["mandoc", "-Tutf8", page])
    text = re.sub(r".\x08", "", r.stdout.decode())
    for section in ("SYNOPSIS", "DESCRIPTION", "ENVIRONMENT", "FILES",
                    "EXIT STATUS", "EXAMPLES", "STANDARDS"):
        assert "\n" + section + "\n" in text, section
    # every option of the usage text is in the page
    usage = run([lib.IMAPD, "-h"]).stdout.decode()
    for opt in re.findall(r"^  (-\w) ", usage, re.M):
        assert re.search(r"^\s+" + opt + r"\b", text, re.M), opt


def test_make_install_destdir(env):
    dest = tempfile.mkdtemp(prefix="imapd-dest-")
    try:
        r = run(["make", "-s", "install", "DESTDIR=" + dest,
                 "PREFIX=/usr", "MANPREFIX=/usr/share/man"], cwd=ROOT,
                timeout=120)
        assert r.returncode == 0, r.stderr
        binary = os.path.join(dest, "usr/bin/imapd")
        page = os.path.join(dest, "usr/share/man/man8/imapd.8")
        assert os.stat(binary).st_mode & 0o777 == 0o755
        assert os.stat(page).st_mode & 0o777 == 0o644
        with open(page, "rb") as a, open(os.path.join(ROOT, "imapd.8"),
                                          "rb") as b:
            assert a.read() == b.read()
        r = run(["readelf", "-S", binary])
        assert b".symtab" not in r.stdout and b".debug_info" not in r.stdout
        assert run([binary, "-V"]).stdout.startswith(b"imapd ")
        r = run(["make", "-s", "uninstall", "DESTDIR=" + dest,
                 "PREFIX=/usr", "MANPREFIX=/usr/share/man"], cwd=ROOT)
        assert r.returncode == 0, r.stderr
        assert not os.path.exists(binary) and not os.path.exists(page)
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def test_home_is_the_users_own(env):
    """a launcher running as root passes its HOME on: "~/" then follows
    the password database instead"""
    good_setup(env)
    rc, out, _ = check(env, MAILDIR="")
    assert "maildir                %s/Maildir\n" % env.dir in out, out
    if os.getuid() == 0:
        rc, out, _ = check(env, MAILDIR="", HOME="/root")
        home = pwd.getpwuid(env.uid).pw_dir
        assert "maildir                %s/Maildir\n" % home in out, out


def test_demo_removes_what_it_made(env):
    """make run's demo serves, and on SIGTERM removes its Maildir and
    (as root) its account"""
    demo = os.path.join(ROOT, "demo")
    made_dir = not os.path.exists(demo)
    made_user = os.getuid() == 0 and run(["id", "imapd-demo"]).returncode
    plain, tls = free_port(), free_port()
    p = subprocess.Popen(["sh", os.path.join(ROOT, "tests", "demo.sh")],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT,
                         env=dict(os.environ, PLAIN_PORT=str(plain),
                                  TLS_PORT=str(tls)))
    lib._procs.append(p)
    out = b""
    try:
        while b"password:" not in out or not out.endswith(b"\n\n"):
            line = p.stdout.readline()
            assert line, out
            out += line
        password = re.search(rb"password:\s+(\S+)", out).group(1).decode()
        user = re.search(rb"user:\s+(\S+)", out).group(1).decode()
        m = imaplib.IMAP4("127.0.0.1", plain, timeout=20)
        assert m.login(user, password)[0] == "OK"
        assert m.select("INBOX")[0] == "OK"
        m.logout()
    finally:
        p.terminate()
        rest = p.communicate(timeout=30)[0]
    assert b"demo: stopped" in rest, rest
    assert os.path.exists(demo) != made_dir
    if made_user:
        assert run(["id", "imapd-demo"]).returncode != 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
