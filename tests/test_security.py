"""Logins and the process: failed logins slowed across connections (the
failure record), per-device passwords, the log lines fail2ban reads (with
the shipped filter and jail checked by fail2ban itself), PAM and
checkpassword builds against a real PAM stack and a real checkpassword
program, warnings about secrets open to others, and the sandbox.
"""
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

from lib import (IMAPD, PASSWORD, ROOT, Session, append, fetches, make_msg,
                 quote, is_ok, is_no, wait_until)

DELAY = 2.0         # LOGIN_DELAY_MS
SLACK = 0.25


def config_define(name):
    for f in ("config.h", "config.def.h"):
        path = os.path.join(ROOT, f)
        if os.path.exists(path):
            with open(path) as fh:
                m = re.search(r"#define\s+%s\s+(\d+)" % name, fh.read())
            if m:
                return int(m.group(1))
    raise AssertionError("no %s in config.h" % name)


class BinSession(Session):
    """a session with another build of imapd"""

    def __init__(self, env, binary, environ):
        self.p = env.popen([binary], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, env=environ)
        self.buf = b""
        self.ntag = 0


def attempt(env, password, addr=None, binary=None, **extra):
    """one connection, one LOGIN: (ok, seconds it took, session)"""
    if addr:
        extra["TCPREMOTEIP"] = addr
    if binary:
        s = BinSession(env, binary, env.env(**extra))
    else:
        s = env.session(login=False, **extra)
    s.greeting()
    t0 = time.time()
    _, t = s.cmd("LOGIN %s %s" % (env.user, quote(password)))
    took = time.time() - t0
    return is_ok(t), took, s


def record(env, path=None):
    """the failure record as {key: (count, last)}"""
    path = path or os.path.join(env.dir, ".imapd-failures")
    with open(path) as f:
        lines = f.read().splitlines()
    assert lines[0] == "imapd-failures 1", lines[:1]
    out = {}
    for ln in lines[1:]:
        k, c, t = ln.split()
        out[k] = (int(c), int(t))
    return out


def write_record(env, entries):
    path = os.path.join(env.dir, ".imapd-failures")
    with open(path, "w") as f:
        f.write("imapd-failures 1\n")
        for k, (c, t) in entries.items():
            f.write("%s %d %d\n" % (k, c, t))
    env.fix_owner()
    os.chmod(path, 0o600)


def in_parallel(*fns):
    """run each function in a thread; re-raise the first failure"""
    errors = []

    def wrap(fn):
        try:
            fn()
        except BaseException as e:  # noqa: reported below
            errors.append(e)
    threads = [threading.Thread(target=wrap, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=100)
    if errors:
        raise errors[0]


def log_text(env):
    env.log.flush()
    with open(env.logpath, "rb") as f:
        return f.read().decode("utf-8", "replace")


# --- the failure record -------------------------------------------------

def test_failures_slow_later_connections(env):
    free = config_define("AUTHFAIL_FREE")
    assert free == 3, "the test assumes AUTHFAIL_FREE 3"
    a, b, c = "127.0.0.2", "127.0.0.3", "127.0.0.4"
    now = int(time.time())
    halflife = config_define("AUTHFAIL_HALFLIFE")
    # b failed often, but long ago: the count has decayed to nothing;
    # c failed three times just now
    write_record(env, {"*": (13, now), b: (10, now - 4 * halflife),
                       c: (3, now)})

    def guesser():
        # three connections at once, one guess each: the per-connection
        # delay only, but all three are counted
        res = []
        in_parallel(*[lambda: res.append(attempt(env, "guess", a))] * 3)
        assert all(not ok and DELAY - SLACK <= t < 2 * DELAY
                   for ok, t, _ in res), res
        assert record(env)[a][0] == 3, record(env)
        # the fourth waits before the check, the fifth twice as long
        ok, t, _ = attempt(env, "guess", a)
        assert not ok and t >= 2 * DELAY - SLACK, t
        ok, t, _ = attempt(env, "guess", a)
        assert not ok and t >= 3 * DELAY - SLACK, t
        assert record(env)[a][0] == 5

    def decayed():
        ok, t, _ = attempt(env, "guess", b)
        assert not ok and t < DELAY + 1.5, t

    def success_clears():
        # the right password waits too (a fast answer would tell a
        # guesser it was right), then forgets the address
        ok, t, s = attempt(env, PASSWORD, c)
        assert ok and t >= DELAY - SLACK, t
        s.logout()
        assert c not in record(env), record(env)
        ok, t, _ = attempt(env, "guess", c)
        assert not ok and t < DELAY + 1.5, t

    in_parallel(guesser, decayed, success_clears)
    log = log_text(env)
    assert log.count("login failed user=%s from=%s" % (env.user, a)) == 5
    assert "login ok user=%s from=%s" % (env.user, c) in log


def test_failures_of_all_addresses_count(env):
    total_free = config_define("AUTHFAIL_TOTAL_FREE")
    now = int(time.time())
    # many addresses, one guess each: a new address waits as well
    write_record(env, {"*": (total_free, now)})
    ok, t, _ = attempt(env, "guess", "127.0.0.9")
    assert not ok and t >= 2 * DELAY - SLACK, t
    assert record(env)["*"][0] == total_free + 1


def test_failure_record_is_bounded(env):
    n = config_define("AUTHFAIL_ENTRIES")
    now = int(time.time())
    entries = {"*": (5, now)}
    for i in range(n):
        entries["10.%d.%d.1" % (i // 250, i % 250)] = (1, now - i)
    write_record(env, entries)
    ok, t, _ = attempt(env, "guess", "127.0.0.7")
    assert not ok
    r = record(env)
    assert len(r) == n + 1, len(r)
    assert r["127.0.0.7"][0] == 1
    # the least suspicious address made room: the oldest single failure
    assert "10.%d.%d.1" % ((n - 1) // 250, (n - 1) % 250) not in r


def test_ipv6_addresses_count_by_prefix(env):
    # an IPv6 host may own a whole /64: its addresses count as one
    for _ in range(2):
        ok, t, _ = attempt(env, "guess", "::1")
        assert not ok
    assert record(env)["::"][0] == 2, record(env)


def test_corrupt_or_unwritable_record_keeps_the_delay(env):
    path = os.path.join(env.dir, ".imapd-failures")
    with open(path, "w") as f:
        f.write("garbage\x00\nnot a record\n")
    env.fix_owner()
    ok, t, _ = attempt(env, "guess", "127.0.0.2")
    assert not ok and t >= DELAY - SLACK, t
    assert "is corrupt" in log_text(env)
    # it was started anew with this failure
    assert record(env)["127.0.0.2"][0] == 1
    # a record that cannot be opened at all: a directory in its place
    os.unlink(path)
    os.mkdir(path)
    env.fix_owner()
    ok, t, _ = attempt(env, "guess", "127.0.0.2")
    assert not ok and t >= DELAY - SLACK, t
    assert "unusable" in log_text(env)
    ok, t, s = attempt(env, PASSWORD, "127.0.0.2")
    assert ok
    s.ok("SELECT INBOX")


def test_login_name_escaped_in_log(env):
    s = env.session(login=False)
    s.greeting()
    tag = s.tag()
    name = b"x from=192.0.2.1\nforged line\\"
    s.send(b"%s LOGIN {%d+}\r\n%s guess\r\n" % (tag.encode(), len(name),
                                                name))
    _, t = s.collect(tag)
    assert is_no(t), t
    log = log_text(env)
    assert ("login failed user=x\\x20from=192.0.2.1\\x0aforged\\x20line"
            "\\x5c from=local") in log, log[-500:]
    assert "\nforged line" not in log


# --- per-device passwords -----------------------------------------------

def run_imapd(env, *args, stdin=b""):
    p = env.popen([IMAPD] + list(args), stdin=subprocess.PIPE,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(stdin, timeout=30)
    return p.returncode, out.decode(), err.decode()


def test_device_passwords(env):
    rc, out, err = run_imapd(env, "-H", "phone")
    assert rc == 0, err
    phone = out.strip()
    assert re.fullmatch(r"[a-z2-9]{4}(-[a-z2-9]{4}){4}", phone), out
    assert "phone" in err and phone not in err
    rc, out, err = run_imapd(env, "-H", "laptop")
    assert rc == 0, err
    laptop = out.strip()
    assert laptop != phone
    with open(env.passwd) as f:
        lines = f.read().splitlines()
    assert len(lines) == 3, lines          # the first password stays
    assert lines[1].startswith("phone:$") and lines[2].startswith("laptop:$")
    assert phone not in "".join(lines)
    # a taken name or a name that is not one word is refused
    rc, out, err = run_imapd(env, "-H", "phone")
    assert rc != 0 and not out and "already" in err, (rc, out, err)
    rc, out, err = run_imapd(env, "-H", "my phone:x")
    assert rc != 0 and not out, (rc, out, err)
    with open(env.passwd) as f:
        assert len(f.read().splitlines()) == 3
    # each logs in, and the log says which device it was
    for pw, label in ((phone, "phone"), (laptop, "laptop")):
        ok, _, s = attempt(env, pw)
        assert ok
        s.logout()
        assert "login ok user=%s device=%s from=local" % (env.user, label) \
            in log_text(env)
    ok, _, s = attempt(env, PASSWORD)
    assert ok
    s.logout()
    assert "login ok user=%s from=local" % env.user in log_text(env)
    # removing the line revokes the device at its next login
    with open(env.passwd, "w") as f:
        f.write("\n".join(ln for ln in lines if not ln.startswith("phone:"))
                + "\n")
    ok, _, s = attempt(env, phone)
    assert not ok
    ok, _, s = attempt(env, laptop)
    assert ok
    # a password file made by -H is for its owner's eyes only
    fresh = os.path.join(env.dir, "fresh-passwd")
    p = env.popen([IMAPD, "-H", "tablet"], stdout=subprocess.PIPE,
                  env=env.env(IMAPD_PASSWD=fresh))
    p.communicate(timeout=30)
    assert p.returncode == 0
    assert os.stat(fresh).st_mode & 0o777 == 0o600


def test_warns_about_secrets_open_to_others(env):
    key = os.path.join(env.dir, "key.pem")
    with open(key, "w") as f:
        f.write("not really a key\n")
    env.fix_owner()
    os.chmod(env.passwd, 0o600)
    os.chmod(key, 0o600)
    s = env.session(IMAPD_KEY=key)
    s.logout()
    assert "open to others" not in log_text(env)
    os.chmod(env.passwd, 0o644)
    os.chmod(key, 0o640)
    s = env.session(IMAPD_KEY=key)
    s.logout()
    log = log_text(env)
    assert re.search(r"password file %s is open to others \(mode 644\)"
                     % re.escape(env.passwd), log), log
    assert re.search(r"TLS key %s is open to others \(mode 640\)"
                     % re.escape(key), log), log


# --- fail2ban -----------------------------------------------------------

def test_fail2ban_filter_and_jail(env):
    """the shipped filter finds every failure the real binary logs, with
    its address, and nothing else; fail2ban accepts the jail"""
    addrs = ["127.0.0.5", "127.0.0.6", "::1"]
    for a in addrs:
        attempt(env, "guess", a)
    s = env.session(login=False, TCPREMOTEIP="127.0.0.8")
    s.greeting()
    tag = s.tag()
    name = b"evil from=203.0.113.9"
    s.send(b"%s LOGIN {%d+}\r\n%s guess\r\n" % (tag.encode(), len(name),
                                                name))
    s.collect(tag)
    ok, _, s = attempt(env, PASSWORD, "127.0.0.7")
    assert ok
    s.logout()
    # the lines as syslog writes them to /var/log/mail.log: its time
    # stamp and host before imapd's own "imapd[pid]: message"
    lines = [ln for ln in log_text(env).splitlines()
             if ln.startswith("imapd[")]
    assert sum("login failed" in ln for ln in lines) == 4, lines
    log = os.path.join(env.dir, "mail.log")
    stamp = time.strftime("%b %e %H:%M:%S")
    with open(log, "w") as f:
        for ln in lines:
            f.write("%s pi %s\n" % (stamp, ln))
    filt = os.path.join(ROOT, "contrib", "fail2ban", "imapd-filter.conf")
    conf = os.path.join(env.dir, "fail2ban")
    shutil.copytree("/etc/fail2ban", conf)
    shutil.copy(filt, os.path.join(conf, "filter.d", "imapd.conf"))
    shutil.copy(os.path.join(ROOT, "contrib", "fail2ban", "imapd-jail.conf"),
                os.path.join(conf, "jail.d", "imapd.conf"))
    r = subprocess.run(["fail2ban-regex", "--print-all-matched", log,
                        os.path.join(conf, "filter.d", "imapd.conf")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    m = re.search(r"Lines: (\d+) lines, (\d+) ignored, (\d+) matched, "
                  r"(\d+) missed", r.stdout)
    assert m, r.stdout
    assert int(m.group(3)) == 4, r.stdout
    assert int(m.group(1)) == len(lines)
    for a in addrs + ["127.0.0.8"]:
        assert re.search(r"from=%s\s*$" % re.escape(a), r.stdout, re.M), a
    assert "203.0.113.9 " not in r.stdout.replace("from=203", "")
    # the hosts fail2ban would ban
    matched = re.findall(r"^\|\s+(\S+)\s+\(", r.stdout, re.M)
    if matched:
        assert set(matched) == set(addrs + ["127.0.0.8"]), matched
    # the jail: fail2ban reads and checks the whole configuration with it
    os.makedirs(os.path.dirname(os.path.join(env.dir, "var", "x")),
                exist_ok=True)
    with open(os.path.join(conf, "jail.d", "zz-test.local"), "w") as f:
        f.write("[imapd]\nlogpath = %s\nbackend = polling\n" % log)
    r = subprocess.run(["fail2ban-client", "-c", conf, "-d"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "'imapd'" in r.stdout and "maxretry" in r.stdout, r.stdout[-2000:]
    assert re.search(r"\['set', 'imapd', 'maxretry', 5\]", r.stdout)


# --- the sandbox --------------------------------------------------------

def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(ln.split(":\t", 1) for ln in f.read().splitlines()
                    if ":\t" in ln)


def confined(pid):
    st = proc_status(pid)
    return st["NoNewPrivs"].strip() == "1" and st["Seccomp"].strip() == "2"


def plant_outside(env):
    """a message file and a whole folder outside the Maildir, reachable
    from inside it by symbolic links; the user itself can read both"""
    out = os.path.join(env.dir, "outside")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(out, sub))
    secret = make_msg("outside secret", body="the secret outside\n")
    with open(os.path.join(out, "cur", "1.M1P1.elsewhere:2,S"), "wb") as f:
        f.write(secret)
    with open(os.path.join(out, "letter"), "wb") as f:
        f.write(secret)
    os.symlink(os.path.join(out, "letter"), os.path.join(
        env.maildir, "cur", "2.M2P2.planted:2,S"))
    os.symlink(out, os.path.join(env.maildir, ".Elsewhere"))
    env.fix_owner()
    p = env.popen(["cat", os.path.join(env.maildir, "cur",
                                       "2.M2P2.planted:2,S"),
                   os.path.join(env.maildir, ".Elsewhere", "cur",
                                "1.M1P1.elsewhere:2,S")],
                  stdout=subprocess.PIPE)
    out_, _ = p.communicate(timeout=10)
    assert out_.count(b"the secret outside") == 2   # the user can read them


def assert_outside_unreachable(s):
    u, t = s.cmd("SELECT INBOX")
    u2, t2 = s.cmd("FETCH 1:* (BODY.PEEK[])")
    u3, t3 = s.cmd("SELECT Elsewhere")
    u4, t4 = s.cmd("FETCH 1:* (BODY.PEEK[])")
    every = b"\n".join(u + u2 + u3 + u4 + [t, t2, t3, t4])
    assert b"the secret outside" not in every, every[-600:]
    assert is_ok(t), t
    assert is_no(t3) or not is_ok(t4) or b"FETCH" not in b"".join(u4), \
        (t3, t4)


def test_sandbox_confines_the_session(env):
    env.deliver(make_msg("inside", body="the mail inside\n"))
    plant_outside(env)
    s = env.session(login=False)
    s.greeting()
    # confined before the first command already
    assert confined(s.p.pid), proc_status(s.p.pid)
    s.ok("LOGIN %s %s" % (env.user, quote(PASSWORD)))
    assert confined(s.p.pid)
    assert_outside_unreachable(s)
    # the mail inside is served as ever, APPEND and EXPUNGE work
    s.ok("SELECT INBOX")
    u, _ = s.cmd("FETCH 1:* (BODY.PEEK[])")
    assert b"the mail inside" in b"\n".join(u)
    _, t = append(s, "INBOX", make_msg("appended"))
    assert is_ok(t), t
    s.ok("STORE 1 +FLAGS (\\Deleted)")
    s.ok("EXPUNGE")
    s.logout()
    assert "sandbox" not in log_text(env), log_text(env)


def test_sandbox_preauth(env):
    plant_outside(env)
    s = env.preauth()
    assert confined(s.p.pid)
    assert_outside_unreachable(s)


# --- PAM and checkpassword builds -------------------------------------

def build(target):
    """another build of this tree: make imapd-pam, imapd-checkpassword
    (reusing the objects of the tested binary, with its sanitizers)"""
    with open(IMAPD, "rb") as f:
        asan = b"__asan_init" in f.read()
    flags = "-std=c99 -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter"
    cmd = ["make", "-s", target, "CFLAGS=" + flags]
    if asan:
        san = " -fsanitize=address,undefined -fno-omit-frame-pointer"
        cmd[-1] = "CFLAGS=" + flags.replace("-O2", "-O1") + san
        cmd += ["LDFLAGS=" + san.strip()]
    r = subprocess.run(cmd, cwd=os.path.dirname(IMAPD), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return os.path.join(os.path.dirname(IMAPD), target)


def wait_login_and_status(s, password, user):
    """LOGIN; the process status before and after it"""
    before = proc_status(s.p.pid)
    t0 = time.time()
    _, t = s.cmd("LOGIN %s %s" % (user, quote(password)))
    return is_ok(t), time.time() - t0, t, before, proc_status(s.p.pid)


PAM_SERVICE = "imapd-test"


def test_pam_login(env):
    if os.getuid() != 0:
        raise AssertionError("needs root to set up the PAM service")
    binary = build("imapd-pam")
    secret = "pam pass %d" % os.getpid()
    # a real stack: pam_unix checks the system password of the user imapd
    # runs as (with unix_chkpwd, as it does for any unprivileged program)
    with open("/etc/pam.d/" + PAM_SERVICE, "w") as f:
        f.write("auth required pam_unix.so\naccount required pam_unix.so\n")
    subprocess.run(["chpasswd"], input="%s:%s\n" % (env.user, secret),
                   text=True, check=True, timeout=30)
    try:
        env.deliver(make_msg("inside"))
        plant_outside(env)
        environ = env.env(IMAPD_PAM_SERVICE=PAM_SERVICE)
        s = BinSession(env, binary, environ)
        s.greeting()
        # the password file is not asked
        ok, took, t, _, _ = wait_login_and_status(s, PASSWORD, env.user)
        assert not ok and b"AUTHENTICATIONFAILED" in t and \
            took >= DELAY - SLACK, (t, took)
        assert record(env)["local"][0] == 1
        # the PAM password: before it, unix_chkpwd must still be able to
        # gain its group; after it, the session is confined
        ok, took, t, before, after = wait_login_and_status(s, secret,
                                                           env.user)
        assert ok, t
        assert before["NoNewPrivs"].strip() == "0", before
        assert confined(s.p.pid), after
        assert_outside_unreachable(s)
        s.logout()
        assert "login ok user=%s from=local" % env.user in log_text(env)
        # failures are slowed across connections as with the file
        assert "local" not in record(env)
        s = BinSession(env, binary, environ)
        s.greeting()
        ok, took, t, _, _ = wait_login_and_status(s, secret + "x", env.user)
        assert not ok and took >= DELAY - SLACK, took
        assert record(env)["local"][0] == 1
        # another user name is refused, even one PAM knows
        ok, took, t, _, _ = wait_login_and_status(s, secret, "root")
        assert not ok
    finally:
        subprocess.run(["usermod", "-p", "!", env.user], timeout=30)
        os.unlink("/etc/pam.d/" + PAM_SERVICE)


CHECKPASSWORD = r'''#!/usr/bin/python3
import os, sys
data = b""
while True:
    b = os.read(3, 512)
    if not b:
        break
    data += b
user, pw, stamp = data.split(b"\0")[:3]
with open(os.environ["HOME"] + "/checkpassword.log", "ab") as f:
    f.write(user + b" " + stamp + b"\n")
if pw == b"tempfail":
    sys.exit(111)
if user == os.environ["WANT"].encode() and pw == b"cp secret":
    os.execv(sys.argv[1], sys.argv[1:])
sys.exit(1)
'''


def test_checkpassword_login(env):
    binary = build("imapd-checkpassword")
    prog = os.path.join(env.dir, "checkpw")
    with open(prog, "w") as f:
        f.write(CHECKPASSWORD)
    os.chmod(prog, 0o755)
    env.deliver(make_msg("inside"))
    plant_outside(env)
    env.fix_owner()
    environ = env.env(IMAPD_CHECKPASSWORD=prog, WANT=env.user)
    s = BinSession(env, binary, environ)
    s.greeting()
    ok, took, t, _, _ = wait_login_and_status(s, "wrong", env.user)
    assert not ok and b"AUTHENTICATIONFAILED" in t and \
        took >= DELAY - SLACK, (t, took)
    ok, took, t, _, _ = wait_login_and_status(s, "tempfail", env.user)
    assert not ok and b"UNAVAILABLE" in t, t
    ok, took, t, before, after = wait_login_and_status(s, "cp secret",
                                                       env.user)
    assert ok, t
    assert before["NoNewPrivs"].strip() == "0", before
    assert confined(s.p.pid), after
    assert_outside_unreachable(s)
    s.logout()
    with open(os.path.join(env.dir, "checkpassword.log")) as f:
        seen = f.read().splitlines()
    assert len(seen) == 3 and all(
        re.fullmatch(r"%s <\d+\.\d+@imapd>" % env.user, x) for x in seen), seen
    assert "login ok user=%s from=local" % env.user in log_text(env)
    assert "checkpassword %s: exit 111" % prog in log_text(env)
