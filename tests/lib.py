"""Test helpers: a throwaway Maildir and password file, the real imapd run
the way inetd runs it (over pipes, or one process per accepted loopback
connection), and a small raw IMAP client that checks exact responses.

When the tests run as root, imapd runs as the unprivileged user
"imapdtest", which this module creates; everything it serves is chowned to
that user first.
"""
import crypt
import os
import pwd
import re
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAPD = os.environ.get("IMAPD_BIN", os.path.join(ROOT, "imapd"))
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared"))
CORPUS = os.path.join(SHARED, "corpus")
TEST_USER = "imapdtest"
PASSWORD = "correct horse battery"
READ_TIMEOUT = float(os.environ.get("READ_TIMEOUT", "20"))

_procs = []


class Skip(Exception):
    """raise to skip a test whose tool is missing (not a pass)"""


def reap_all():
    """kill whatever a test left running"""
    while _procs:
        p = _procs.pop()
        if p.poll() is None:
            p.kill()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def _ensure_user():
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home",
                        "--home-dir", "/nonexistent", "--shell",
                        "/usr/sbin/nologin", TEST_USER], check=True)
        return pwd.getpwnam(TEST_USER)


def run_user():
    """(uid, gid, name) imapd runs as"""
    if os.getuid() == 0:
        pw = _ensure_user()
        return pw.pw_uid, pw.pw_gid, pw.pw_name
    pw = pwd.getpwuid(os.getuid())
    return pw.pw_uid, pw.pw_gid, pw.pw_name


def chown_tree(path, uid, gid):
    if os.getuid() != 0:
        return
    for d, dirs, files in os.walk(path):
        for p in [d] + [os.path.join(d, f) for f in files]:
            try:
                os.lchown(p, uid, gid)
            except FileNotFoundError:
                pass    # renamed or removed by a running imapd


def make_hash(password, method=None):
    return crypt.crypt(password, crypt.mksalt(method or crypt.METHOD_SHA512))


def crlf(data):
    """bytes with every line end as CRLF"""
    if isinstance(data, str):
        data = data.encode()
    return re.sub(rb"\r?\n", b"\r\n", data)


class Env:
    """A fresh directory with a Maildir and a password file, owned by the
    user imapd runs as.  Use as a context manager; tests receive one."""

    def __enter__(self):
        self.uid, self.gid, self.user = run_user()
        self.dir = tempfile.mkdtemp(prefix="imapd-test-")
        os.chmod(self.dir, 0o755)
        self.maildir = os.path.join(self.dir, "Maildir")
        self.passwd = os.path.join(self.dir, "passwd")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.maildir, sub))
        with open(self.passwd, "w") as f:
            f.write(make_hash(PASSWORD) + "\n")
        self.extra_env = {}
        self._seq = 0
        self.fix_owner()
        # what imapd logs goes here, and is shown when the test fails
        self.logpath = os.path.join(self.dir, "imapd.log")
        self.log = open(self.logpath, "ab")
        return self

    def __exit__(self, exc_type, exc, tb):
        reap_all()
        self.log.close()
        with open(self.logpath, "rb") as f:
            log = f.read()
        # a sanitizer report fails the test even when the client side
        # looked fine
        if exc_type is None and (b"ERROR: AddressSanitizer" in log or
                                 b"runtime error:" in log or
                                 b"ERROR: LeakSanitizer" in log):
            print(log.decode("utf-8", "replace")[-3000:])
            shutil.rmtree(self.dir, ignore_errors=True)
            raise AssertionError("imapd reported a sanitizer error")
        if exc_type is not None and exc_type is not Skip:
            with open(self.logpath, "rb") as f:
                tail = f.read().decode("utf-8", "replace").splitlines()[-20:]
            if tail:
                print("--- imapd log (last %d lines)" % len(tail))
                print("\n".join(tail))
        shutil.rmtree(self.dir, ignore_errors=True)
        return False

    def fix_owner(self):
        """hand everything under the test directory to the imapd user"""
        chown_tree(self.dir, self.uid, self.gid)

    def env(self, **extra):
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
             "HOME": self.dir, "USER": self.user, "LOGNAME": self.user,
             "MAILDIR": self.maildir, "IMAPD_PASSWD": self.passwd,
             "IMAPD_LOG_STDERR": "1"}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                e[k] = os.environ[k]
        e.update(self.extra_env)
        e.update({k: str(v) for k, v in extra.items()})
        return e

    def popen(self, args, **kw):
        kw.setdefault("env", self.env())
        kw.setdefault("stderr", self.log)
        if os.getuid() == 0:
            kw["user"] = self.uid
            kw["group"] = self.gid
            kw["extra_groups"] = []
        p = subprocess.Popen(args, **kw)
        _procs.append(p)
        return p

    # --- messages on disk ---------------------------------------------

    def folder_path(self, folder="INBOX"):
        if folder.upper() == "INBOX":
            return self.maildir
        return os.path.join(self.maildir, "." + folder)

    def make_folder(self, folder):
        path = self.folder_path(folder)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(path, sub), exist_ok=True)
        if folder.upper() != "INBOX":
            open(os.path.join(path, "maildirfolder"), "a").close()
        self.fix_owner()
        return path

    def deliver(self, data, folder="INBOX", flags=None, mtime=None):
        """put a message into new/ (flags None) or cur/ with those flag
        letters, the way a delivery agent or mbsync would; returns its path"""
        if isinstance(data, str):
            data = data.encode()
        path = self.folder_path(folder)
        if not os.path.isdir(os.path.join(path, "tmp")):
            self.make_folder(folder)
        self._seq += 1
        base = "%d.M%dP%dQ%d.testhost" % (time.time(), self._seq,
                                          os.getpid(), self._seq)
        tmp = os.path.join(path, "tmp", base)
        with open(tmp, "wb") as f:
            f.write(data)
        if mtime is not None:
            os.utime(tmp, (mtime, mtime))
        if flags is None:
            dst = os.path.join(path, "new", base)
        else:
            dst = os.path.join(path, "cur",
                               base + ":2," + "".join(sorted(flags)))
        if os.getuid() == 0:
            os.chown(tmp, self.uid, self.gid)
        os.rename(tmp, dst)
        return dst

    # --- running imapd --------------------------------------------------

    def session(self, *args, login=True, **envextra):
        """imapd over pipes, as inetd would start it; logged in unless
        login=False"""
        s = Session(self, list(args), self.env(**envextra))
        if login:
            s.greeting()
            s.ok("LOGIN %s %s" % (self.user, quote(PASSWORD)))
        return s

    def preauth(self, **envextra):
        s = Session(self, ["-p"], self.env(**envextra))
        g = s.greeting()
        assert g.startswith(b"* PREAUTH"), g
        return s

    def listener(self, *args, **envextra):
        """imapd per connection on a loopback port (like tcpserver)"""
        return Listener(self, list(args), self.env(**envextra))

    def stream_command(self, *args):
        """a shell command line that runs imapd as the test user, for
        imaplib.IMAP4_stream and mbsync's Tunnel"""
        e = self.env()
        parts = ["env", "-i"] + ["%s=%s" % (k, v) for k, v in e.items()]
        if os.getuid() == 0:
            parts = ["setpriv", "--reuid=%d" % self.uid,
                     "--regid=%d" % self.gid, "--clear-groups"] + parts
        return " ".join(shquote(p) for p in parts + [IMAPD] + list(args))


def shquote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Listener:
    """accept loopback connections and start one imapd per connection on
    the socket, with TCPREMOTEIP set as tcpserver does"""

    def __init__(self, env, args, environ):
        self.env, self.args, self.environ = env, args, environ
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        self.procs = []
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        self.sock.settimeout(0.2)
        while not self.stopped:
            try:
                conn, addr = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            e = dict(self.environ)
            e.setdefault("TCPREMOTEIP", addr[0])
            e.setdefault("TCPREMOTEPORT", str(addr[1]))
            p = self.env.popen([IMAPD] + self.args, stdin=conn, stdout=conn,
                               env=e)
            self.procs.append(p)
            conn.close()

    def close(self):
        self.stopped = True
        self.sock.close()
        self.thread.join(timeout=2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Session:
    """A raw IMAP conversation with one imapd process over pipes."""

    def __init__(self, env, args, environ):
        self.p = env.popen([IMAPD] + args, stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, env=environ)
        self.buf = b""
        self.ntag = 0

    # reading
    def _fill(self, timeout):
        fd = self.p.stdout.fileno()
        r, _, _ = select.select([fd], [], [], timeout)
        if not r:
            raise AssertionError("no answer within %.0f s; have %r"
                                 % (timeout, self.buf[-300:]))
        data = os.read(fd, 65536)
        if not data:
            try:
                rc = self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                rc = None
            raise EOFError("the server closed the connection, exit %s; "
                           "have %r" % (rc, self.buf[-300:]))
        self.buf += data

    def line(self, timeout=READ_TIMEOUT):
        """one response line, with any literals it carries inlined:
        returned as bytes without the final CRLF"""
        out = b""
        deadline = time.time() + timeout
        while True:
            while b"\r\n" not in self.buf:
                self._fill(max(0.01, deadline - time.time()))
            i = self.buf.index(b"\r\n")
            part, self.buf = self.buf[:i], self.buf[i + 2:]
            out += part
            m = re.search(rb"\{(\d+)\}$", part)
            if not m:
                return out
            n = int(m.group(1))
            while len(self.buf) < n:
                self._fill(max(0.01, deadline - time.time()))
            out += b"\r\n" + self.buf[:n]
            self.buf = self.buf[n:]

    def greeting(self):
        return self.line()

    def pending(self, timeout=0.3):
        """True when the server sent something we have not read"""
        if self.buf:
            return True
        r, _, _ = select.select([self.p.stdout.fileno()], [], [], timeout)
        return bool(r)

    # writing
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def tag(self):
        self.ntag += 1
        return "a%03d" % self.ntag

    def cmd(self, text, tag=None):
        """send one command line (str or bytes); return (untagged lines,
        tagged line)"""
        tag = tag or self.tag()
        if isinstance(text, bytes):
            self.send(_bytes(tag) + b" " + text + b"\r\n")
        else:
            self.send("%s %s\r\n" % (tag, text))
        return self.collect(tag)

    def collect(self, tag):
        untagged = []
        t = _bytes(tag) + b" "
        while True:
            ln = self.line()
            if ln.startswith(t):
                return untagged, ln
            untagged.append(ln)

    def ok(self, text):
        """command must end in OK; returns the untagged lines"""
        u, t = self.cmd(text)
        assert re.match(rb"\S+ OK\b", t), (text, t, u)
        return u

    def no(self, text, code=None):
        u, t = self.cmd(text)
        assert re.match(rb"\S+ NO\b", t), (text, t, u)
        if code:
            assert (b"[" + code.encode()) in t, (text, t)
        return u, t

    def bad(self, text):
        u, t = self.cmd(text)
        assert re.match(rb"\S+ BAD\b", t), (text, t, u)
        return u, t

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        self.p.wait(timeout=10)

    def logout(self):
        u, t = self.cmd("LOGOUT")
        assert any(x.startswith(b"* BYE") for x in u), u
        assert b" OK" in t, t
        self.p.wait(timeout=10)
        return self.p.returncode


def _bytes(s):
    return s if isinstance(s, bytes) else s.encode()


# --- Dovecot, the reference server ------------------------------------------

DOVECOT = "/usr/lib/dovecot/imap"


def dovecot(env, maildir, options=()):
    """Dovecot's imap binary (Debian's dovecot-imapd, installed by
    tests/deps.sh), preauthenticated on maildir, over pipes as imapd runs:
    the Popen; options are Dovecot settings ("name=value")"""
    if not os.path.exists(DOVECOT):
        raise AssertionError("dovecot-imapd is not installed (tests/deps.sh)")
    args = [DOVECOT, "-o", "mail_location=maildir:" + maildir]
    for o in options:
        args += ["-o", o]
    return env.popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL,
                     env={"USER": env.user, "HOME": os.path.dirname(maildir),
                          "PATH": "/usr/bin:/bin"})


def dovecot_session(env, maildir, options=()):
    """a Session with Dovecot instead of imapd, greeted.  One command at a
    time: Dovecot runs pipelined commands side by side and mixes their
    answers."""
    s = Session.__new__(Session)
    s.p, s.buf, s.ntag = dovecot(env, maildir, options), b"", 0
    assert s.greeting().startswith(b"* PREAUTH"), "Dovecot did not start"
    return s


def dovecot_pipelined(env, maildir, commands, folder="INBOX", timeout=30):
    """Dovecot's raw answer to the commands (without tags) sent at once
    after SELECT, tagged c0, c1, ... in order, then LOGOUT; the answers
    may come in any order.  Its input stays open until LOGOUT is
    answered: Dovecot stops writing when its input ends under it."""
    p = dovecot(env, maildir)
    text = "a SELECT %s\r\n%sz LOGOUT\r\n" % (folder, "".join(
        "c%d %s\r\n" % (i, c) for i, c in enumerate(commands)))
    # written from a thread: the answers must be read while it writes
    w = threading.Thread(target=_write_all, args=(p.stdin, text.encode()))
    w.start()
    out = bytearray()
    deadline = time.time() + timeout
    fd = p.stdout.fileno()
    while not re.search(rb"(^|\r\n)z (OK|NO|BAD)[^\r]*\r\n$", out[-300:]):
        assert time.time() < deadline, bytes(out[-300:])
        r, _, _ = select.select([fd], [], [], max(0.01,
                                                 deadline - time.time()))
        chunk = os.read(fd, 1 << 16) if r else b""
        if r and not chunk:
            break
        out += chunk
    w.join(timeout=10)
    try:
        p.stdin.close()
    except BrokenPipeError:
        pass
    p.wait(timeout=10)
    return bytes(out)


def _write_all(f, data):
    try:
        f.write(data)
        f.flush()
    except (BrokenPipeError, ValueError):
        pass


def untagged(lines, prefix):
    """the untagged lines starting with '* ' + prefix (bytes or str)"""
    if isinstance(prefix, str):
        prefix = prefix.encode()
    return [x for x in lines if x.startswith(b"* " + prefix)]


def wait_until(pred, timeout=10, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


# --- response parsing and message building (added helpers) ---------------

class Atom(str):
    """an IMAP atom or number as sent (quoted strings and literals are
    bytes, NIL is None, parenthesised lists are lists)"""


def parse_imap(data):
    """tokens of one response line (with literals inlined as Session.line
    returns them): atoms as Atom, strings as bytes, NIL as None, lists as
    list.  A "[...]" inside an atom (BODY[HEADER.FIELDS (A B)]<0>) stays
    part of the atom."""
    if isinstance(data, str):
        data = data.encode()
    pos = [0]

    def value():
        i = pos[0]
        c = data[i:i + 1]
        if c == b"(":
            pos[0] = i + 1
            out = []
            while True:
                skip()
                if pos[0] >= len(data):
                    raise ValueError("unclosed list in %r" % data)
                if data[pos[0]:pos[0] + 1] == b")":
                    pos[0] += 1
                    return out
                out.append(value())
        if c == b'"':
            j = i + 1
            s = bytearray()
            while data[j:j + 1] != b'"':
                if j >= len(data):
                    raise ValueError("unclosed string in %r" % data)
                if data[j:j + 1] == b"\\":
                    j += 1
                s += data[j:j + 1]
                j += 1
            pos[0] = j + 1
            return bytes(s)
        m = re.match(rb"~?\{(\d+)\+?\}\r\n", data[i:])
        if m:
            n = int(m.group(1))
            start = i + m.end()
            pos[0] = start + n
            return data[start:start + n]
        j = i
        depth = 0
        while j < len(data):
            ch = data[j:j + 1]
            if ch == b"[":
                depth += 1
            elif ch == b"]":
                depth -= 1
            elif depth == 0 and ch in (b" ", b"(", b")"):
                break
            j += 1
        if j == i:
            raise ValueError("unexpected %r at %d in %r" % (c, i, data))
        pos[0] = j
        tok = data[i:j].decode("latin-1")
        return None if tok.upper() == "NIL" else Atom(tok)

    def skip():
        while data[pos[0]:pos[0] + 1] == b" ":
            pos[0] += 1

    out = []
    while True:
        skip()
        if pos[0] >= len(data):
            return out
        out.append(value())


def fetch_items(line):
    """(sequence number, {ITEM: value}) of one '* n FETCH (...)' line;
    item names upper case exactly as sent (BODY[]<0>)"""
    toks = parse_imap(line)
    assert len(toks) == 4 and toks[0] == "*" and toks[2].upper() == "FETCH" \
        and isinstance(toks[3], list), line
    items = toks[3]
    assert len(items) % 2 == 0, line
    d = {}
    for k, v in zip(items[0::2], items[1::2]):
        assert isinstance(k, Atom), (k, line)
        assert k.upper() not in d, ("item twice", k, line)
        d[k.upper()] = v
    return int(toks[1]), d


def fetches(lines):
    """{seq: items} of every untagged FETCH in lines; a sequence number
    seen twice is merged"""
    out = {}
    for ln in lines:
        if re.match(rb"\* \d+ FETCH ", ln):
            n, d = fetch_items(ln)
            out.setdefault(n, {}).update(d)
    return out


def caps_of(text):
    """set of upper-case capabilities in a '* CAPABILITY ...' line or a
    greeting carrying [CAPABILITY ...]"""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    m = re.search(r"\[CAPABILITY ([^\]]*)\]", text)
    if m:
        words = m.group(1)
    else:
        m = re.match(r"\* CAPABILITY (.*)", text)
        assert m, text
        words = m.group(1)
    return set(w.upper() for w in words.split())


def search_result(lines):
    """the numbers of the one '* SEARCH' line, as a list"""
    found = [x for x in lines if re.match(rb"\* SEARCH\b", x)]
    assert len(found) == 1, lines
    return [int(t) for t in found[0].split()[2:]]


def select_info(lines):
    """what SELECT/EXAMINE reported: exists, recent, flags,
    permanentflags, uidvalidity, uidnext, unseen (missing: absent)"""
    info = {}
    for ln in lines:
        s = ln.decode("latin-1")
        m = re.match(r"\* (\d+) (EXISTS|RECENT)$", s)
        if m:
            info[m.group(2).lower()] = int(m.group(1))
            continue
        m = re.match(r"\* FLAGS \((.*)\)$", s)
        if m:
            info["flags"] = set(m.group(1).split())
            continue
        m = re.match(r"\* OK \[PERMANENTFLAGS \((.*?)\)\]", s)
        if m:
            info["permanentflags"] = set(m.group(1).split())
            continue
        m = re.match(r"\* OK \[(UIDVALIDITY|UIDNEXT|UNSEEN) (\d+)\]", s)
        if m:
            info[m.group(1).lower()] = int(m.group(2))
    return info


def list_entries(lines, kind="LIST"):
    """[(set of upper-case attributes, separator, name as str)] of the
    untagged LIST (or LSUB) lines"""
    out = []
    for ln in lines:
        if not ln.startswith(("* %s " % kind).encode()):
            continue
        toks = parse_imap(ln)
        assert len(toks) == 5 and isinstance(toks[2], list), ln
        attrs = set(str(a).upper() for a in toks[2])
        sep = toks[3]
        name = toks[4]
        name = name.decode() if isinstance(name, bytes) else str(name)
        out.append((attrs, sep, name))
    return out


def status_items(lines, mailbox=None):
    """{ITEM: int} of the one '* STATUS' line"""
    found = [x for x in lines if x.startswith(b"* STATUS ")]
    assert len(found) == 1, lines
    toks = parse_imap(found[0])
    assert len(toks) == 4 and isinstance(toks[3], list), found[0]
    if mailbox is not None:
        name = toks[2]
        name = name.decode() if isinstance(name, bytes) else str(name)
        assert name == mailbox, (name, mailbox)
    it = toks[3]
    return {str(k).upper(): int(v) for k, v in zip(it[0::2], it[1::2])}


def writers(env, sessions, per, flags=lambda i: None):
    """threads that APPEND per messages to INBOX through each of sessions
    (flags(i) for the i-th) while a delivery agent drops per more into
    new/, started; returns (threads, got, errors): got[k] the UIDs the
    k-th session was given, errors what any thread raised"""
    got = [[] for _ in sessions]
    errors = []

    def appender(k):
        try:
            for i in range(per):
                u, t = append(sessions[k], "INBOX",
                              make_msg("s%d-%d" % (k + 1, i)), flags=flags(i))
                assert re.match(rb"\S+ OK", t), t
                got[k].append(appenduid(t)[1])
        except BaseException as e:  # noqa: reported by the caller
            errors.append(e)

    def deliverer():
        try:
            for i in range(per):
                env.deliver(make_msg("lda-%d" % i))
        except BaseException as e:  # noqa: reported by the caller
            errors.append(e)
    threads = [threading.Thread(target=appender, args=(k,))
               for k in range(len(sessions))]
    threads.append(threading.Thread(target=deliverer))
    for t in threads:
        t.start()
    return threads, got, errors


def uid_set(text):
    """the numbers of a sequence set like 3:5,9 (bytes or str), in the
    order written, each range low to high"""
    if isinstance(text, bytes):
        text = text.decode()
    out = []
    for part in text.split(","):
        a, _, b = part.partition(":")
        a, b = int(a), int(b or a)
        out.extend(range(min(a, b), max(a, b) + 1))
    return out


def expunges(lines):
    """the sequence numbers of the '* n EXPUNGE' lines, in order"""
    return [int(x.split()[1]) for x in lines
            if re.match(rb"\* \d+ EXPUNGE$", x)]


def exists(lines):
    """the counts of the '* n EXISTS' lines, in order"""
    return [int(x.split()[1]) for x in lines
            if re.match(rb"\* \d+ EXISTS$", x)]


def make_msg(subject="test", body="hello\n", frm="Alice <alice@example.org>",
             to="Bob <bob@example.net>", date="Mon, 7 Feb 1994 21:52:25 -0800",
             headers=(), eol="\n", msgid=None):
    """a simple RFC 5322 message as bytes, with eol as every line end"""
    lines = []
    if date:
        lines.append("Date: " + date)
    if frm:
        lines.append("From: " + frm)
    if to:
        lines.append("To: " + to)
    lines.append("Subject: " + subject)
    lines.append("Message-ID: " + (msgid or "<%s@example.org>"
                                   % re.sub(r"\W", "", subject)))
    lines.extend(headers)
    text = "\n".join(lines) + "\n\n" + body
    return re.sub(r"\r?\n", eol, text).encode()


def _send_literal_cmd(s, tag, parts):
    """send a command made of strings and ("lit", bytes, plus) items,
    waiting for '+' before every synchronizing literal; returns the
    untagged lines seen while waiting and the tagged line when the server
    answered before a continuation (refusal), else None"""
    untagged = []
    out = b""
    for p in parts:
        if isinstance(p, tuple):
            _, data, plus = p
            out += b"{%d%s}\r\n" % (len(data), b"+" if plus else b"")
            s.send(out)
            out = b""
            if not plus:
                while True:
                    ln = s.line()
                    if ln.startswith(b"+"):
                        break
                    if ln.startswith(tag.encode() + b" "):
                        return untagged, ln
                    untagged.append(ln)
            s.send(data)
        else:
            out += p.encode() if isinstance(p, str) else p
    s.send(out + b"\r\n")
    return untagged, None


def cmd_lit(s, *parts, tag=None):
    """a command with literals: cmd_lit(s, "APPEND INBOX ", lit(data)).
    Returns (untagged, tagged) like Session.cmd."""
    tag = tag or s.tag()
    u, t = _send_literal_cmd(s, tag, [tag + " "] + list(parts))
    if t is not None:
        return u, t
    u2, t = s.collect(tag)
    return u + u2, t


def lit(data, plus=False):
    if isinstance(data, str):
        data = data.encode()
    return ("lit", data, plus)


def append(s, mailbox, data, flags=None, date=None, plus=False):
    """APPEND with a literal; returns (untagged, tagged)"""
    head = "APPEND %s " % mailbox
    if flags is not None:
        head += "(%s) " % " ".join(flags)
    if date is not None:
        head += '"%s" ' % date
    return cmd_lit(s, head, lit(data, plus))


def appenduid(tagged):
    """(uidvalidity, uid) from OK [APPENDUID v uid]"""
    m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", tagged)
    assert m, tagged
    return int(m.group(1)), int(m.group(2))


def read_until_closed(s, timeout=10):
    """every line the server still sends until it closes the connection"""
    lines = []
    deadline = time.time() + timeout
    while True:
        try:
            lines.append(s.line(timeout=max(0.1, deadline - time.time())))
        except EOFError:
            return lines


def maildir_files(path):
    """{base name: info ("2,FS" or None for new/)} of the messages in a
    Maildir folder"""
    out = {}
    for sub in ("new", "cur"):
        d = os.path.join(path, sub)
        if not os.path.isdir(d):
            continue
        for f in os.listdir(d):
            base, _, info = f.partition(":")
            out[base] = info if sub == "cur" else None
    return out


def item(d, prefix):
    """the value of the one FETCH item whose name starts with prefix
    (BODY[HEADER.FIELDS comes back with the field names echoed)"""
    keys = [k for k in d if k.startswith(prefix.upper())]
    assert len(keys) == 1, (prefix, list(d))
    return d[keys[0]]


def build_with_config(env, name, substitutions, timeout=150):
    """imapd built from this tree in env.dir/name with config.h edited by
    (regex, replacement) pairs (each must match exactly once); the ASan
    flags of the tested binary are kept.  Returns the binary's path."""
    src = os.path.dirname(IMAPD)
    bld = os.path.join(env.dir, name)
    os.makedirs(bld)
    for f in os.listdir(src):
        if f.endswith((".c", ".h")) or f == "Makefile":
            shutil.copy(os.path.join(src, f), bld)
    path = os.path.join(bld, "config.h")
    if not os.path.exists(path):
        shutil.copy(os.path.join(bld, "config.def.h"), path)
    with open(path) as f:
        cfg = f.read()
    for pattern, repl in substitutions:
        cfg, n = re.subn(pattern, repl, cfg)
        assert n == 1, (pattern, n)
    with open(path, "w") as f:
        f.write(cfg)
    with open(IMAPD, "rb") as f:
        asan = b"__asan_init" in f.read()
    flags = "-std=c99 -O1 -g -Wall -Wextra -Werror -Wno-unused-parameter"
    cmd = ["make", "-s", "-j%d" % (os.cpu_count() or 2), "imapd"]
    if asan:
        san = " -fsanitize=address,undefined -fno-omit-frame-pointer"
        cmd += ["CFLAGS=" + flags + san, "LDFLAGS=" + san.strip()]
    r = subprocess.run(cmd, cwd=bld, timeout=timeout, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    os.chmod(bld, 0o755)
    return os.path.join(bld, "imapd")


def is_ok(t):
    return re.match(rb"\S+ OK\b", t) is not None


def is_no(t):
    return re.match(rb"\S+ NO\b", t) is not None


def is_bad(t):
    return re.match(rb"\S+ BAD\b", t) is not None


def flagset(v):
    """the flags of a FETCH FLAGS value, without \\Recent"""
    return set(str(f) for f in v) - {"\\Recent"}
