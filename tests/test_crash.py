"""Proof that nothing is lost, over the protocol only: imapd killed with
SIGKILL at random moments of APPEND, COPY, MOVE, STORE and EXPUNGE, a
thousand times and more; a full disk and a file system that fails every
write; and a soak of several sessions, a delivery agent and an outside
program renaming and deleting files at once.

After every crash a fresh session must see every message exactly once,
every UID unchanged and none reused, and the flags as last acknowledged.
"""
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import IMAPD, flagset, make_msg, parse_imap, uid_set  # noqa: E402

FOLDERS = ("INBOX", "Other")
CRASHES = 1000          # at least this many kills
CRASH_BUDGET = 50.0     # seconds; the test fails if the kills take longer
FLAGS = ("\\Seen", "\\Flagged", "\\Answered", "\\Draft", "$Label1")


class Conn(lib.Session):
    """imapd -p over pipes (lib.Session), commands and tags as bytes; with
    env None, started as the user this process runs as"""

    def __init__(self, env, extra=None):
        if env is None:
            self.p = subprocess.Popen([IMAPD, "-p"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE)
        else:
            self.p = env.popen([IMAPD, "-p"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE,
                               env=env.env(**(extra or {})))
        self.buf = b""
        self.ntag = 0

    def tag(self):
        self.ntag += 1
        return b"t%d" % self.ntag

    def kill(self):
        """SIGKILL now; whatever it had answered before"""
        try:
            os.kill(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.wait()       # at once: nothing survives SIGKILL
        rest = self.p.stdout.read()
        self.p.stdin.close()
        self.p.stdout.close()
        return self.buf + rest


def message(mid, size=200):
    return make_msg("crash " + mid, body=("x" * 70 + "\n") * (size // 71),
                    headers=["X-Id: " + mid], msgid="<%s@crash>" % mid)


VIEW_FETCH = b"UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (X-Id)])"


def view_request(conn, folders, then=None, how=b"SELECT"):
    """the commands that show folders, and select then: sent at once"""
    req, tags = b"", []
    for f in folders:
        tags.append((conn.tag(), conn.tag()))
        req += tags[-1][0] + b" " + how + b" " + f.encode() + b"\r\n"
        req += tags[-1][1] + b" " + VIEW_FETCH + b"\r\n"
    if then:
        tags.append((conn.tag(),))
        req += tags[-1][0] + b" SELECT " + then.encode() + b"\r\n"
    conn.send(req)
    return tags


def view_parse(lines):
    """{uid: (id, flags)} from the FETCH responses"""
    out = {}
    for ln in lines:
        if not re.match(rb"\* \d+ FETCH ", ln):
            continue
        toks = parse_imap(ln)[3]
        d = {str(k).upper(): v for k, v in zip(toks[0::2], toks[1::2])}
        uid = int(d["UID"])
        hdr = [v for k, v in d.items() if k.startswith("BODY[")][0]
        m = re.search(rb"X-Id: (\S+)", hdr)
        assert m, ln
        assert uid not in out, ("UID twice", uid, lines)
        out[uid] = (m.group(1).decode(), frozenset(flagset(d["FLAGS"])))
    return out


def views(conn, folders, then=None, how=b"SELECT"):
    """{folder: {uid: (id, flags)}} as a session sees them, in one round
    trip; then: the folder to select after"""
    out = {}
    for f, tags in zip(list(folders) + [then], view_request(
            conn, folders, then, how)):
        for tag in tags:
            lines, t = conn.collect(tag)
            assert b" OK " in t, t
        if len(tags) == 2:
            out[f] = view_parse(lines)
    return out


def view(conn, folder, how=b"SELECT"):
    return views(conn, [folder], how=how)[folder]


class Model:
    """what the store must hold: per folder {uid: (id, flags)}, and the
    highest UID ever seen, which no new message may get again"""

    def __init__(self):
        self.f = {f: {} for f in FOLDERS}
        self.maxuid = {f: 0 for f in FOLDERS}
        self.pending = None
        self.acked = False
        self.started = False    # the first view is adopted as it is
        self.stats = {}

    def check(self, seen):
        """compare a fresh session's view with what may have happened to
        the operation interrupted last; then adopt it"""
        op = self.pending or ("none",)
        kind = op[0]
        for f in FOLDERS if self.started else ():
            old, new = self.f[f], seen[f]
            for uid, (mid, flags) in old.items():
                if uid in new:
                    assert new[uid][0] == mid, ("message changed", f, uid,
                                                old[uid], new[uid])
                    if kind == "store" and op[1] == f and op[2] == uid:
                        allowed = {op[3]} if self.acked else {flags, op[3]}
                        assert new[uid][1] in allowed, (op, new[uid])
                    else:
                        assert new[uid][1] == flags, ("flags changed", op,
                                                      f, uid, flags, new[uid])
                else:
                    gone_ok = (kind == "move" and op[1] == f and
                               op[2] == uid) or \
                        (kind == "expunge" and op[1] == f and uid in op[2])
                    assert gone_ok, ("message lost", op, f, uid, old[uid])
            fresh = sorted(u for u in new if u not in old)
            for u in fresh:
                assert u > self.maxuid[f], ("UID reused", f, u,
                                            self.maxuid[f], op)
            if kind in ("append", "copy", "move") and op[-1] == f:
                assert len(fresh) <= 1, ("duplicated", op, fresh)
                for u in fresh:
                    assert new[u][0] == op[-2][0], (op, new[u])
                    assert new[u][1] == op[-2][1], ("flags", op, new[u])
            else:
                assert not fresh, ("message appeared", op, f, fresh)
        if kind in ("append", "copy"):
            landed = len(seen[op[-1]]) - len(self.f[op[-1]])
            assert landed == 1 or not self.acked, ("acknowledged, lost", op)
        if kind == "move":
            src, uid, dst = op[1], op[2], op[-1]
            there = uid in seen[src]
            landed = len(seen[dst]) - len(self.f[dst])
            assert there != bool(landed), ("MOVE must leave exactly one",
                                           op, there, landed)
            assert not (self.acked and there), ("acknowledged, not moved",
                                                op)
        if kind == "expunge" and self.acked:
            assert not set(op[2]) & set(seen[op[1]]), ("not expunged", op)
        self.started = True
        for f in FOLDERS:
            self.f[f] = dict(seen[f])
            if seen[f]:
                self.maxuid[f] = max(self.maxuid[f], max(seen[f]))
        self.pending, self.acked = None, False


def pick(model, rnd, serial, src):
    """an operation on the model: (kind, ..., (id, flags), target), and
    the command that does it; src: the folder selected for it"""
    full = {f: len(model.f[f]) for f in FOLDERS}
    kinds = ["append", "copy", "move", "store", "store", "expunge"]
    if max(full.values()) > 24:
        kinds = ["expunge", "store", "move"]
    while True:
        kind = rnd.choice(kinds)
        if kind != "append" and not model.f[src]:
            kind = "append"
        dst = FOLDERS[1 - FOLDERS.index(src)]
        msgs = model.f[src]
        if kind == "append":
            mid = "a%d" % serial
            flags = frozenset(rnd.sample(FLAGS, rnd.randint(0, 2)))
            data = message(mid, rnd.choice((200, 3000, 40000)))
            cmd = (b"APPEND %s (%s) {%d+}\r\n" % (
                dst.encode(), " ".join(sorted(flags)).encode(), len(data))
                + data)
            return ("append", (mid, flags), dst), cmd
        if not msgs:
            continue
        uid = rnd.choice(sorted(msgs))
        mid, flags = msgs[uid]
        if kind in ("copy", "move"):
            cmd = b"UID %s %d %s" % (kind.upper().encode(), uid, dst.encode())
            return (kind, src, uid, (mid, flags), dst), cmd
        if kind == "store":
            new = frozenset(rnd.sample(FLAGS + ("\\Deleted",),
                                       rnd.randint(0, 3)))
            cmd = b"UID STORE %d FLAGS (%s)" % (uid, " ".join(
                sorted(new)).encode())
            return ("store", src, uid, new), cmd
        gone = sorted(u for u, (_, fl) in msgs.items() if "\\Deleted" in fl)
        if not gone:
            continue
        cmd = b"UID EXPUNGE " + b",".join(b"%d" % u for u in gone)
        return ("expunge", src, gone), cmd


def crash_loop(kills_wanted, budget, seed):
    """the kills, run as the user imapd runs as (no user switch for each
    of a thousand processes); returns the figures"""
    rnd = random.Random(seed)
    model = Model()
    serial = kills = acked = 0
    t0 = time.time()
    op = cmd = None
    while kills < kills_wanted:
        assert time.time() - t0 < budget, \
            "only %d kills in %.0f s" % (kills, budget)
        conn = Conn(None)
        serial += 1
        # one round trip: look at both folders, select the source of the
        # next operation (sent before the greeting is read)
        src = rnd.choice(FOLDERS)
        tags = view_request(conn, FOLDERS, src)
        assert conn.line().startswith(b"* PREAUTH")
        seen = {}
        for f, tt in zip(FOLDERS, tags):
            conn.collect(tt[0])
            lines, t = conn.collect(tt[1])
            assert b" OK " in t, t
            seen[f] = view_parse(lines)
        _, t = conn.collect(tags[-1][0])
        assert b" OK " in t, t
        model.check(seen)
        op, cmd = pick(model, rnd, serial, src)
        tag = b"k%d" % serial
        # kill early, in the middle or just after the reply is written
        wait = rnd.random() ** 2 * 0.008
        conn.send(tag + b" " + cmd + b"\r\n")
        time.sleep(wait)
        out = conn.kill()
        m = re.search(rb"\r\n" + tag + rb" (OK|NO|BAD)[^\r]*", b"\r\n" + out)
        if m and m.group(1) != b"OK":
            raise AssertionError((op, m.group(0)))
        model.pending = op
        model.acked = bool(m)
        acked += model.acked
        model.stats[op[0]] = model.stats.get(op[0], 0) + 1
        kills += 1
    conn = Conn(None)
    conn.line()
    model.check(views(conn, FOLDERS))
    conn.cmd(b"LOGOUT")
    return {"kills": kills, "seconds": time.time() - t0, "acked": acked,
            "stats": model.stats,
            "messages": sum(len(v) for v in model.f.values())}


WORKERS = 4             # Maildirs crashed side by side


def test_crash_kill9_never_loses_mail(env):
    seed = int(os.environ.get("CRASH_SEED", time.time()))
    # a sanitized imapd costs five times the CPU to start and to tear
    # down: under the sanitizers a fifth of the kills look at the recovery
    # paths; the thousand are the plain build's proof
    with open(IMAPD, "rb") as f:
        wanted = CRASHES // 5 if b"__asan_init" in f.read() else CRASHES
    budget = CRASH_BUDGET
    procs = []
    for w in range(WORKERS):
        md = os.path.join(env.dir, "crash%d" % w)
        for i in range(10):
            env.deliver(message("d%d" % i), folder="INBOX")
        os.rename(env.maildir, md)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(env.maildir, sub))
        os.makedirs(os.path.join(md, ".Other", "cur"))
        env.fix_owner()
        procs.append(env.popen(
            ["/usr/bin/python3", os.path.abspath(__file__), "crash",
             str(-(-wanted // WORKERS)), str(budget), str(seed + w)],
            stdout=subprocess.PIPE, env=env.env(MAILDIR=md)))
    total = {"kills": 0, "acked": 0, "messages": 0, "seconds": 0}
    stats = {}
    for w, p in enumerate(procs):
        out, _ = p.communicate(timeout=budget + 30)
        r = json.loads(out.decode().strip().splitlines()[-1])
        assert "error" not in r, "crash loop %d failed (seed %d):\n%s" % (
            w, seed + w, r["error"])
        for k in ("kills", "acked", "messages"):
            total[k] += r[k]
        total["seconds"] = max(total["seconds"], r["seconds"])
        for k, v in r["stats"].items():
            stats[k] = stats.get(k, 0) + v
    assert total["kills"] >= wanted
    print("    crash test: %d kills -9 in %.1f s (%s), %d of them after "
          "the reply, nothing lost; %d messages at the end (seed %d)"
          % (total["kills"], total["seconds"], ", ".join(
              "%s %d" % kv for kv in sorted(stats.items())),
             total["acked"], total["messages"], seed))


# --- a full disk, a file system that fails every write ----------------

class SmallDisk:
    """a tmpfs of a few hundred KiB holding a Maildir of the imapd user"""

    def __init__(self, env, size="512k"):
        if os.getuid() != 0:
            raise AssertionError("needs root to mount a tmpfs")
        self.env = env
        self.dir = os.path.join(env.dir, "small")
        os.makedirs(self.dir)
        subprocess.run(["mount", "-t", "tmpfs", "-o",
                        "size=%s,mode=0755" % size, "tmpfs", self.dir],
                       check=True, timeout=30)
        self.maildir = os.path.join(self.dir, "Maildir")
        for sub in ("cur", "new", "tmp", ".Other/cur", ".Other/new",
                    ".Other/tmp"):
            os.makedirs(os.path.join(self.maildir, sub))
        env.fix_owner()

    def fill(self):
        """every free page taken"""
        with open(os.path.join(self.dir, "filler"), "wb",
                  buffering=0) as f:
            for chunk in (1 << 16, 4096, 1):
                try:
                    while f.write(b"\0" * chunk):
                        pass
                except OSError:
                    pass

    def free(self):
        os.unlink(os.path.join(self.dir, "filler"))

    def remount(self, mode):
        subprocess.run(["mount", "-o", "remount," + mode, self.dir],
                       check=True, timeout=30)

    def conn(self):
        c = Conn(self.env, {"MAILDIR": self.maildir})
        assert c.line().startswith(b"* PREAUTH")
        return c

    def close(self):
        subprocess.run(["umount", "-l", self.dir], timeout=30)

    def tmp_files(self):
        return [f for d in ("", ".Other") for f in os.listdir(
            os.path.join(self.maildir, d, "tmp"))]


def refused(t, codes=(b"OVERQUOTA",)):
    """a tagged NO with one of the codes"""
    m = re.match(rb"\S+ NO \[([A-Z]+)", t)
    assert m and m.group(1) in codes, t
    return True


def append_cmd(conn, folder, data, flags=""):
    tag = conn.tag()
    conn.send(tag + b" APPEND %s (%s) {%d+}\r\n" % (
        folder.encode(), flags.encode(), len(data)) + data + b"\r\n")
    return conn.collect(tag)


def fill_and_check(disk, expected, how=b"SELECT"):
    """a fresh session sees exactly expected {folder: {uid: (id, flags)}}"""
    c = disk.conn()
    seen = views(c, FOLDERS, how=how)
    c.kill()
    assert seen == expected, (seen, expected)
    return seen


def test_full_disk(env):
    disk = SmallDisk(env)
    try:
        c = disk.conn()
        for i in range(5):
            _, t = append_cmd(c, "INBOX", message("f%d" % i, 3000))
            assert b" OK " in t, t
        before = views(c, FOLDERS)
        c.cmd(b"SELECT INBOX")
        disk.fill()
        # a message does not fit: NO, and not a byte of it anywhere
        _, t = append_cmd(c, "INBOX", message("big", 40000))
        refused(t)
        _, t = append_cmd(c, "Other", message("big2", 40000))
        refused(t)
        assert not disk.tmp_files(), disk.tmp_files()
        u, t = c.cmd(b"NOOP")
        assert not [x for x in u if x.endswith(b"EXISTS")], u
        # copies and flag changes until the disk refuses them; each answer
        # tells the truth
        expected = before
        counts = {"COPY no": 0, "COPY ok": 0, "STORE no": 0, "STORE ok": 0}
        for i in range(60):
            _, t = c.cmd(b"UID COPY 1:5 Other")
            if b" OK " in t:
                counts["COPY ok"] += 1
                m = re.search(rb"COPYUID \d+ \S+ (\d+):(\d+)", t)
                assert m, t
                first = int(m.group(1))
                for k, uid in enumerate(range(first, first + 5)):
                    expected["Other"][uid] = expected["INBOX"][k + 1]
            else:
                refused(t)
                counts["COPY no"] += 1
            flag = "\\Flagged" if i % 2 else "\\Seen"
            _, t = c.cmd(b"UID STORE %d FLAGS (%s)" % (i % 5 + 1,
                                                       flag.encode()))
            if b" OK " in t:
                counts["STORE ok"] += 1
                mid = expected["INBOX"][i % 5 + 1][0]
                expected["INBOX"][i % 5 + 1] = (mid, frozenset([flag]))
            else:
                refused(t)
                counts["STORE no"] += 1
        assert counts["COPY no"], counts
        assert not disk.tmp_files(), disk.tmp_files()
        # still full: a fresh session reads it all, or says why not
        c = disk.conn()
        _, t = c.cmd(b"EXAMINE INBOX")
        full_read = b" OK " in t or not refused(t)
        c.kill()
        if full_read:
            fill_and_check(disk, expected, b"EXAMINE")
        # space again: the next session sees every acknowledged change
        # and works as ever
        disk.free()
        fill_and_check(disk, expected)
        c = disk.conn()
        _, t = append_cmd(c, "INBOX", message("after", 40000), "\\Seen")
        assert b" OK " in t, t
        uid = int(re.search(rb"APPENDUID \d+ (\d+)", t).group(1))
        expected["INBOX"][uid] = ("after", frozenset(["\\Seen"]))
        c.cmd(b"SELECT INBOX")
        _, t = c.cmd(b"UID COPY %d Other" % uid)
        assert b" OK " in t, t
        ouid = int(re.search(rb"COPYUID \d+ \d+ (\d+)", t).group(1))
        expected["Other"][ouid] = ("after", frozenset(["\\Seen"]))
        c.kill()
        fill_and_check(disk, expected)
        print("    full disk: APPEND refused [OVERQUOTA]; %s; nothing "
              "half-written; a new session %s while full; all well with "
              "space again" % (", ".join("%s %d" % kv for kv in sorted(
                  counts.items())), "reads" if full_read else
                  "answers NO [OVERQUOTA]"))
    finally:
        disk.close()


def test_write_errors(env):
    """a file system that fails every write (remounted read-only under
    the running session): NO with a code, nothing changed, and the next
    session works once it is writable again"""
    disk = SmallDisk(env)
    try:
        c = disk.conn()
        for i in range(3):
            _, t = append_cmd(c, "INBOX", message("w%d" % i), "\\Seen")
            assert b" OK " in t, t
        before = views(c, FOLDERS)
        c.cmd(b"SELECT INBOX")
        disk.remount("ro")
        codes = (b"SERVERBUG", b"UNAVAILABLE", b"CANNOT", b"NOPERM")
        _, t = append_cmd(c, "INBOX", message("ro"))
        refused(t, codes)
        _, t = c.cmd(b"UID COPY 1:3 Other")
        refused(t, codes)
        _, t = c.cmd(b"UID STORE 1 +FLAGS (\\Flagged)")
        refused(t, codes)
        _, t = c.cmd(b"UID MOVE 2 Other")
        refused(t, codes)
        c.kill()
        disk.remount("rw")
        fill_and_check(disk, before)
        c = disk.conn()
        _, t = append_cmd(c, "INBOX", message("rw"))
        assert b" OK " in t, t
        c.cmd(b"SELECT INBOX")
        _, t = c.cmd(b"UID STORE 1 +FLAGS (\\Flagged)")
        assert b" OK " in t, t
        _, t = c.cmd(b"UID MOVE 2 Other")
        assert b" OK " in t, t
        c.kill()
    finally:
        disk.close()


# --- the soak -----------------------------------------------------------

SOAK_SECONDS = 15
SESSIONS = 3


class Soak:
    """what the Maildir must hold at the end, kept by everyone who
    changes it: {folder: Counter of ids}"""

    def __init__(self, env):
        from collections import Counter
        self.env = env
        self.lock = threading.Lock()
        self.expected = {f: Counter() for f in FOLDERS}
        self.uid_id = {}            # (folder, uid) -> id, for every session
        self.stop = threading.Event()
        self.ops = Counter()
        self.errors = []

    def count(self, what, n=1):
        with self.lock:
            self.ops[what] += n

    def add(self, folder, mid, n=1):
        with self.lock:
            self.expected[folder][mid] += n

    def same_uid(self, folder, uid, mid):
        """a UID names one message for ever, in every session"""
        with self.lock:
            have = self.uid_id.setdefault((folder, uid), mid)
        assert have == mid, ("UID names two messages", folder, uid, have,
                             mid)

    def run(self, fn, *args):
        try:
            fn(*args)
        except BaseException as e:  # noqa: reported by the test
            import traceback
            self.errors.append("".join(traceback.format_exception(e)))
            self.stop.set()


def soak_delivery(soak):
    n = 0
    while not soak.stop.is_set():
        n += 1
        mid = "s%d" % n
        soak.env.deliver(message(mid))
        soak.add("INBOX", mid)
        soak.count("delivered")
        time.sleep(0.04)


def soak_outsider(soak, rnd):
    """a mail client working on the files: flags renamed, files deleted"""
    base = soak.env.maildir
    while not soak.stop.is_set():
        time.sleep(0.015)
        files = [(sub, f) for sub in ("new", "cur")
                 for f in os.listdir(os.path.join(base, sub))]
        if not files:
            continue
        sub, f = rnd.choice(files)
        path = os.path.join(base, sub, f)
        if rnd.random() < 0.3:
            try:
                with open(path, "rb") as fh:
                    mid = re.search(rb"X-Id: (\S+)", fh.read()).group(1)
                os.unlink(path)
            except FileNotFoundError:
                continue
            soak.add("INBOX", mid.decode(), -1)
            soak.count("deleted outside")
            continue
        name, _, info = f.partition(":2,")
        flags = set(info) ^ {rnd.choice("FSR")}
        try:
            os.rename(path, os.path.join(base, "cur", name + ":2," +
                                         "".join(sorted(flags))))
            soak.count("renamed outside")
        except FileNotFoundError:
            pass


class SoakSession:
    """one client: its view checked after every command"""

    def __init__(self, soak, k, rnd):
        self.soak, self.k, self.rnd = soak, k, rnd
        self.c = Conn(soak.env, {"IMAPD_LOG_STDERR": "1"})
        assert self.c.line().startswith(b"* PREAUTH")
        self.folder = None
        self.exists = 0
        self.ids = {}               # uid -> id in the selected folder

    def cmd(self, text, data=b""):
        lines, t = self.c.cmd(text + data)
        self.log = (getattr(self, "log", []) + [(text[:60], [
            x[:60] for x in lines if not x.startswith(b"* OK")], t)])[-12:]
        for ln in lines:
            m = re.match(rb"\* (\d+) (EXISTS|EXPUNGE)$", ln)
            if m and m.group(2) == b"EXISTS":
                assert int(m.group(1)) >= self.exists or \
                    text.startswith(b"SELECT"), (ln, self.exists)
                self.exists = int(m.group(1))
            elif m:
                assert 1 <= int(m.group(1)) <= self.exists, ln
                self.exists -= 1
        self.soak.count(text.split()[0].decode()
                        if not text.startswith(b"UID") else
                        text.split()[1].decode())
        return lines, t

    def select(self, folder):
        self.exists = 0
        _, t = self.cmd(b"SELECT " + folder.encode())
        assert b" OK " in t, t
        self.folder = folder
        self.ids = {}
        self.fetch_all()

    def fetch_all(self):
        before = self.exists
        lines, t = self.cmd(b"FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS "
                            b"(X-Id)])")
        if not self.exists and b" BAD " in t:
            return
        assert b" OK " in t or b"EXPUNGEISSUED" in t, t
        seqs, uids = [], []
        for ln in lines:
            if not re.match(rb"\* \d+ FETCH ", ln):
                continue
            toks = parse_imap(ln)
            d = {str(k).upper(): v for k, v in zip(toks[3][0::2],
                                                    toks[3][1::2])}
            hdr = [v for k, v in d.items() if k.startswith("BODY[")]
            if not hdr:         # flags another client changed
                continue
            uid = int(d["UID"])
            # no header: deleted from outside, its EXPUNGE still to come;
            # the view answers with what it last knew (RFC 2180 4.1.3)
            m = re.search(rb"X-Id: (\S+)", hdr[0])
            if m:
                mid = m.group(1).decode()
                self.soak.same_uid(self.folder, uid, mid)
                self.ids[uid] = mid
            seqs.append(int(toks[1]))
            uids.append(uid)
        # the view: sequence numbers 1..n, UIDs rising with them; a
        # message deleted from outside meanwhile is left out, and said so
        assert seqs == sorted(set(seqs)) and uids == sorted(set(uids)), \
            (seqs, uids)
        assert not seqs or seqs[-1] <= self.exists, (seqs, self.exists)
        if b"EXPUNGEISSUED" not in t:
            assert seqs == list(range(1, len(seqs) + 1)), seqs
            assert before <= len(seqs) <= self.exists, (before, len(seqs),
                                                        self.exists, self.log)

    def some_uids(self, n):
        uids = sorted(self.ids)
        return self.rnd.sample(uids, min(n, len(uids)))

    def step(self):
        r = self.rnd.random()
        other = FOLDERS[1 - FOLDERS.index(self.folder)]
        uids = self.some_uids(self.rnd.randint(1, 3))
        if r < 0.1 or (not self.exists and r < 0.5):
            self.select(other)
        elif self.exists and (r < 0.3 or not uids):
            self.fetch_all()
        elif not uids:
            self.append(other)
        elif r < 0.5:
            flag = self.rnd.choice(("\\Seen", "\\Flagged", "$Soak"))
            self.cmd(b"UID STORE %s %sFLAGS (%s)" % (
                b",".join(b"%d" % u for u in uids),
                self.rnd.choice((b"+", b"-")), flag.encode()))
        elif r < 0.62:
            self.copy(uids, other, b"COPY")
        elif r < 0.74 and self.folder == "INBOX":
            self.copy(uids, other, b"MOVE")
        elif r < 0.86 and self.folder == "Other":
            mine = [u for u in uids if u % SESSIONS == self.k]
            if mine:
                self.expunge(mine)
        else:
            self.append(other)

    def append(self, folder):
        mid = "p%d-%d" % (self.k, self.soak.ops["APPEND"])
        data = message(mid)
        lines, t = self.cmd(b"APPEND %s {%d+}\r\n" % (
            folder.encode(), len(data)), data)
        assert b" OK " in t, t
        self.soak.add(folder, mid)

    def copy(self, uids, dst, how):
        lines, t = self.cmd(b"UID %s %s %s" % (
            how, b",".join(b"%d" % u for u in uids), dst.encode()))
        if b" NO " in t:
            assert b"EXPUNGEISSUED" in t, t     # deleted from outside
            return
        if t.endswith(b"OK No messages"):       # expunged meanwhile
            return
        assert b" OK " in t, t
        m = re.search(rb"COPYUID \d+ ([\d:,]+) ([\d:,]+)",
                      b" ".join(lines + [t]))
        assert m, (lines, t)
        src, new = uid_set(m.group(1)), uid_set(m.group(2))
        assert len(src) == len(new) and set(src) <= set(uids), (m, uids)
        for u, nu in zip(src, new):
            self.soak.add(dst, self.ids[u])
            if how == b"MOVE":
                self.soak.add(self.folder, self.ids[u], -1)

    def expunge(self, uids):
        """only this session expunges these UIDs of Other, and nothing
        else removes messages from Other: they must go"""
        s = b",".join(b"%d" % u for u in uids)
        _, t = self.cmd(b"UID STORE %s +FLAGS.SILENT (\\Deleted)" % s)
        assert b" OK " in t, t
        _, t = self.cmd(b"UID EXPUNGE " + s)
        assert b" OK " in t, t
        for u in uids:
            self.soak.add("Other", self.ids.pop(u), -1)


def soak_session(soak, k, rnd):
    s = SoakSession(soak, k, rnd)
    s.select(rnd.choice(FOLDERS))
    while not soak.stop.is_set():
        try:
            s.step()
        except EOFError as e:
            raise AssertionError((str(e), getattr(s, "log", None)))
    s.fetch_all()
    s.cmd(b"LOGOUT")


def disk_ids(path):
    from collections import Counter
    out = Counter()
    for sub in ("new", "cur"):
        for f in os.listdir(os.path.join(path, sub)):
            with open(os.path.join(path, sub, f), "rb") as fh:
                out[re.search(rb"X-Id: (\S+)", fh.read()).group(1)
                    .decode()] += 1
    return out


def test_soak(env):
    """sessions, a delivery agent and an outsider at once for a fixed
    time: every view consistent, and the Maildir exact at the end"""
    seed = int(os.environ.get("SOAK_SEED", time.time()))
    env.make_folder("Other")
    soak = Soak(env)
    for i in range(20):
        env.deliver(message("i%d" % i))
        soak.add("INBOX", "i%d" % i)
    workers = [threading.Thread(target=soak.run, args=(soak_delivery, soak)),
               threading.Thread(target=soak.run, args=(
                   soak_outsider, soak, random.Random(seed)))]
    workers += [threading.Thread(target=soak.run, args=(
        soak_session, soak, k, random.Random(seed + 1 + k)))
        for k in range(SESSIONS)]
    for w in workers:
        w.start()
    soak.stop.wait(SOAK_SECONDS)
    soak.stop.set()
    for w in workers:
        w.join(timeout=60)
    assert not soak.errors, "seed %d:\n%s" % (seed, soak.errors[0])
    # a fresh session, and the files themselves, hold exactly what the
    # delivery, the outsider and the sessions left
    from collections import Counter
    c = Conn(env)
    c.line()
    for f in FOLDERS:
        seen = view(c, f)
        want = +soak.expected[f]
        assert Counter(mid for mid, _ in seen.values()) == want, \
            (f, seed, Counter(mid for mid, _ in seen.values()) - want,
             want - Counter(mid for mid, _ in seen.values()))
        assert disk_ids(env.folder_path(f)) == want, f
    c.cmd(b"LOGOUT")
    total = sum(v for k, v in soak.ops.items())
    print("    soak: %d s, %d operations (%s), %d messages at the end, "
          "views consistent, Maildir exact (seed %d)"
          % (SOAK_SECONDS, total, ", ".join(
              "%s %d" % kv for kv in sorted(soak.ops.items())),
             sum(len(+soak.expected[f]) for f in FOLDERS), seed))


if __name__ == "__main__" and sys.argv[1] == "crash":
    try:
        print(json.dumps(crash_loop(int(sys.argv[2]), float(sys.argv[3]),
                                    int(sys.argv[4]))))
    except BaseException:  # noqa: the test reports it
        import traceback
        print(json.dumps({"error": traceback.format_exc(limit=4)[-2000:]}))
