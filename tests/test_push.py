"""Push and resynchronisation: IDLE (RFC 2177), ENABLE (RFC 5161),
CONDSTORE and QRESYNC (RFC 7162), MOVE (RFC 6851) and COMPRESS=DEFLATE
(RFC 4978).  Changes come from a second imapd process, or from outside
(files renamed, removed or delivered in the Maildir), and the session
under test must see them: while idling within two seconds, and after a
reconnect through modification sequences and VANISHED (EARLIER).

The IDLE keep-alive ("* OK Still here" every IDLE_KEEPALIVE = 120 s) is
not tested: there is no knob to shorten it and tests do not sleep that
long."""
import os
import re
import select
import shutil
import socket
import ssl
import subprocess
import time
import zlib

import lib
from lib import is_ok, is_no, is_bad, flagset
from lib import (PASSWORD, Skip, append, appenduid, crlf, fetch_items,
                 fetches, make_msg, maildir_files, quote, select_info,
                 status_items, uid_set, untagged, expunges, exists)

PUSH_LIMIT = 2.0	# seconds within which an idling client must hear


# --- helpers ------------------------------------------------------------

def modseq_of(d):
    """the number in a FETCH item MODSEQ (n)"""
    v = d["MODSEQ"]
    assert isinstance(v, list) and len(v) == 1, v
    return int(v[0])


def highestmodseq(lines):
    """the HIGHESTMODSEQ response code among untagged lines"""
    found = [int(m.group(1)) for m in
             (re.match(rb"\* OK \[HIGHESTMODSEQ (\d+)\]", x) for x in lines)
             if m]
    assert len(found) == 1, lines
    return found[0]


def vanished(lines, earlier):
    """UIDs of the VANISHED (EARLIER) lines, or of the plain VANISHED
    lines when earlier is false, in order"""
    out = []
    for ln in lines:
        m = re.match(rb"\* VANISHED (\(EARLIER\) )?([\d:,]+)$", ln)
        assert ln.startswith(b"* VANISHED") == bool(m), ln
        if m and bool(m.group(1)) == earlier:
            out.extend(uid_set(m.group(2)))
    return out


def add(s, n, mailbox="INBOX", flags=None, prefix="msg"):
    """APPEND n small messages; returns their UIDs"""
    uids = []
    for i in range(n):
        u, t = append(s, mailbox, make_msg("%s %d" % (prefix, i),
                                           "body %d\n" % i), flags=flags)
        assert is_ok(t), (t, u)
        uids.append(appenduid(t)[1])
    return uids


def uid_map(s):
    """[uid, ...] of the selected mailbox in sequence order"""
    f = fetches(s.ok("UID FETCH 1:* (FLAGS)"))
    return [int(f[n]["UID"]) for n in sorted(f)]


def by_uid(lines):
    """{uid: items} of the FETCH lines (each must carry UID)"""
    out = {}
    for n, d in fetches(lines).items():
        assert "UID" in d, ("FETCH without UID", n, d, lines)
        out[int(d["UID"])] = d
    return out


def modseqs(s, set_="1:*", uid=True):
    """{uid: modseq} of the selected mailbox"""
    cmd = "UID FETCH %s (MODSEQ)" % set_ if uid else \
        "FETCH %s (UID MODSEQ)" % set_
    return {u: modseq_of(d) for u, d in by_uid(s.ok(cmd)).items()}


def file_of(path, subject):
    """the current path of the message with this Subject in a folder"""
    for sub in ("cur", "new"):
        d = os.path.join(path, sub)
        for f in os.listdir(d):
            with open(os.path.join(d, f), "rb") as fh:
                if re.search(rb"^Subject: %s\r?$" % re.escape(
                        subject.encode()), fh.read(4096), re.M):
                    return os.path.join(d, f)
    raise AssertionError("no message %r in %s" % (subject, path))


def qresync_session(env, **kw):
    s = env.session(**kw)
    u = s.ok("ENABLE QRESYNC")
    assert u == [b"* ENABLED QRESYNC"], u
    return s


class Idle:
    """an IDLE command in progress on session s"""

    def __init__(self, s):
        self.s = s
        self.tag = s.tag()
        s.send("%s IDLE\r\n" % self.tag)
        ln = s.line()
        assert ln == b"+ idling", ln
        self.lines = []

    def wait(self, pred, start, limit=PUSH_LIMIT):
        """read what the server pushes until pred(line) holds; returns
        the seconds since start (time.monotonic()) when it came"""
        deadline = start + limit
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "not pushed within %.1f s; got %r" % (
                limit, self.lines)
            ln = self.s.line(timeout=left)
            self.lines.append(ln)
            assert not ln.startswith(self.tag.encode()), (
                "IDLE ended by itself", self.lines)
            if pred(ln):
                return time.monotonic() - start

    def done(self, text="DONE"):
        self.s.send(text + "\r\n")
        u, t = self.s.collect(self.tag)
        self.lines.extend(u)
        return u, t


def report(what, seconds):
    print("    latency %-28s %6.1f ms" % (what, seconds * 1000))


# --- IDLE (RFC 2177) ----------------------------------------------------

def test_idle_continuation_and_done(env):
    s = env.session()
    add(s, 2)
    s.ok("SELECT INBOX")
    idle = Idle(s)
    assert not s.pending(0.3), "IDLE with nothing to report sent %r" % s.buf
    u, t = idle.done()
    assert u == [] and is_ok(t), (u, t)
    # DONE is an atom like any other keyword: case does not matter
    idle = Idle(s)
    u, t = idle.done("done")
    assert is_ok(t), (u, t)
    # the session works normally afterwards
    f = fetches(s.ok("FETCH 1:* (UID)"))
    assert sorted(f) == [1, 2], f


def test_idle_reports_other_session(env):
    a = env.session()
    b = env.session()
    uids = add(b, 3)
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    idle = Idle(a)

    t0 = time.monotonic()
    tag = b.tag()
    append_parts = [tag + " APPEND INBOX ",
                    lib.lit(make_msg("while idling"), True)]
    lib._send_literal_cmd(b, tag, append_parts)
    lat = idle.wait(lambda ln: ln == b"* 4 EXISTS", t0)
    report("APPEND -> EXISTS", lat)
    u, t = b.collect(tag)
    assert is_ok(t), t

    t0 = time.monotonic()
    tag = b.tag()
    b.send("%s UID STORE %d +FLAGS (\\Flagged $Pushed)\r\n" % (tag, uids[1]))
    # the keyword is new to the idler: an update that races with the
    # keyword list may come first, but the final word must be complete
    lat = idle.wait(lambda ln: re.match(rb"\* 2 FETCH ", ln) is not None
                    and b"$Pushed" in ln, t0)
    report("STORE -> FETCH FLAGS", lat)
    _, d = fetch_items(idle.lines[-1])
    assert flagset(d["FLAGS"]) == {"\\Flagged", "$Pushed"}, idle.lines
    u, t = b.collect(tag)
    assert is_ok(t), t

    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    t0 = time.monotonic()
    tag = b.tag()
    b.send("%s EXPUNGE\r\n" % tag)
    lat = idle.wait(lambda ln: ln == b"* 1 EXPUNGE", t0)
    report("EXPUNGE -> EXPUNGE", lat)
    u, t = b.collect(tag)
    assert is_ok(t), t

    u, t = idle.done()
    assert is_ok(t), (u, t)
    assert expunges(idle.lines) == [1], idle.lines
    # the idler's view matches the store: UIDs 2, 3 and the new one
    assert uid_map(a)[:2] == uids[1:], uid_map(a)
    assert len(uid_map(a)) == 3


def test_idle_wakes_on_delivery(env):
    """a delivery agent renaming into new/ wakes the idler (inotify, not
    the 30 s rescan)"""
    s = env.session()
    add(s, 1)
    s.ok("SELECT INBOX")
    idle = Idle(s)
    lats = []
    for n in range(2, 6):
        t0 = time.monotonic()
        env.deliver(make_msg("delivered %d" % n))
        lats.append(idle.wait(lambda ln, n=n: ln == b"* %d EXISTS" % n, t0))
    report("delivery -> EXISTS (max of 4)", max(lats))
    # IMAP4rev1: new messages are \Recent for the session that saw them
    assert b"* 1 RECENT" in idle.lines or any(
        re.match(rb"\* \d+ RECENT$", x) for x in idle.lines), idle.lines
    u, t = idle.done()
    assert is_ok(t), t
    info = select_info(s.ok("SELECT INBOX"))
    assert info["exists"] == 5, info
    # the delivered files were claimed into cur/
    assert os.listdir(os.path.join(env.maildir, "new")) == []


def test_idle_delivery_right_after_continuation(env):
    """a message that lands between the last sync and the start of the
    watch is not missed (it would wait for the 30 s rescan)"""
    s = env.session()
    s.ok("SELECT INBOX")
    for n in range(1, 16):
        idle = Idle(s)
        t0 = time.monotonic()
        env.deliver(make_msg("race %d" % n))
        idle.wait(lambda ln, n=n: ln == b"* %d EXISTS" % n, t0)
        u, t = idle.done()
        assert is_ok(t), t


def test_idle_sees_outside_flag_change_and_removal(env):
    s = env.session()
    add(s, 3)
    s.ok("SELECT INBOX")
    path = file_of(env.maildir, "msg 1")
    assert re.search(r":2,$", path), path
    idle = Idle(s)
    t0 = time.monotonic()
    os.rename(path, path + "F")
    lat = idle.wait(lambda ln: re.match(rb"\* 2 FETCH ", ln) is not None, t0)
    report("rename in cur/ -> FETCH", lat)
    _, d = fetch_items(idle.lines[-1])
    assert flagset(d["FLAGS"]) == {"\\Flagged"}, idle.lines
    t0 = time.monotonic()
    os.unlink(file_of(env.maildir, "msg 2"))
    lat = idle.wait(lambda ln: ln == b"* 3 EXPUNGE", t0)
    report("unlink in cur/ -> EXPUNGE", lat)
    u, t = idle.done()
    assert is_ok(t), t
    assert len(uid_map(s)) == 2


def test_idle_authenticated_state(env):
    """IDLE with no mailbox selected only waits for DONE"""
    s = env.session()
    idle = Idle(s)
    env.deliver(make_msg("nobody is watching"))
    assert not s.pending(0.5), "IDLE without a mailbox sent %r" % s.buf
    u, t = idle.done()
    assert u == [] and is_ok(t), (u, t)
    s.ok("NOOP")


def test_idle_not_before_login(env):
    s = env.session(login=False)
    s.greeting()
    u, t = s.bad("IDLE")
    assert not any(x.startswith(b"+") for x in u), u


def test_idle_garbage_instead_of_done(env):
    s = env.session()
    add(s, 1)
    s.ok("SELECT INBOX")
    idle = Idle(s)
    u, t = idle.done("a NOOP")
    assert is_bad(t), (u, t)
    # still logged in and selected
    f = fetches(s.ok("FETCH 1 (UID)"))
    assert list(f) == [1], f
    # a line far longer than DONE (within the command line limit) is
    # swallowed whole: one BAD, no leftovers
    for junk in ("X" * 60000, "DONE extra", ""):
        idle = Idle(s)
        u, t = idle.done(junk)
        assert u == [] and is_bad(t), (junk[:20], u, t)
        assert not s.pending(0.3), s.buf[:200]
        s.ok("NOOP")
    # arguments to IDLE are not allowed
    u, t = s.bad("IDLE now")
    assert not any(x.startswith(b"+") for x in u), u


def test_idle_client_goes_away(env):
    """a client that vanishes while idling does not leave imapd behind"""
    s = env.session()
    s.ok("SELECT INBOX")
    Idle(s)
    s.p.stdin.close()
    s.p.wait(timeout=5)
    assert s.p.returncode == 0, s.p.returncode


def test_idle_done_pipelined_with_next_command(env):
    """DONE and the next command in one packet: both are handled"""
    s = env.session()
    add(s, 2)
    s.ok("SELECT INBOX")
    idle = Idle(s)
    tag = s.tag()
    s.send("DONE\r\n%s FETCH 2 (UID)\r\n" % tag)
    u, t = s.collect(idle.tag)
    assert is_ok(t), (u, t)
    u, t = s.collect(tag)
    assert is_ok(t) and list(fetches(u)) == [2], (u, t)


def test_idle_vanished_with_qresync(env):
    a = qresync_session(env)
    b = env.session()
    uids = add(b, 3)
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    idle = Idle(a)
    b.ok("UID STORE %d +FLAGS.SILENT (\\Deleted)" % uids[1])
    t0 = time.monotonic()
    b.ok("EXPUNGE")
    idle.wait(lambda ln: ln.startswith(b"* VANISHED"), t0)
    u, t = idle.done()
    assert is_ok(t), t
    assert vanished(idle.lines, False) == [uids[1]], idle.lines
    assert vanished(idle.lines, True) == [], idle.lines
    assert expunges(idle.lines) == [], idle.lines
    # QRESYNC: the \Deleted change came with UID and MODSEQ
    ch = [x for x in idle.lines if b" FETCH " in x]
    for ln in ch:
        _, d = fetch_items(ln)
        assert "UID" in d and "MODSEQ" in d, ln


# --- ENABLE (RFC 5161) --------------------------------------------------

def test_enable(env):
    s = env.session(login=False)
    s.greeting()
    s.bad("ENABLE CONDSTORE")
    s.ok("LOGIN %s %s" % (env.user, quote(PASSWORD)))
    caps = s.ok("CAPABILITY")
    u = s.ok("ENABLE CONDSTORE")
    assert u == [b"* ENABLED CONDSTORE"], u
    # already on: each ENABLED lists only what this command turned on
    u = s.ok("ENABLE CONDSTORE")
    assert u == [b"* ENABLED"], u
    # unknown names are ignored, and ENABLED is still sent
    u = s.ok("ENABLE X-NO-SUCH-THING FOO")
    assert u == [b"* ENABLED"], u
    s.bad("ENABLE")
    # 3.1: ENABLE does not change the capability list
    assert s.ok("CAPABILITY") == caps
    u = s.ok("enable qresync x-unknown")
    assert u == [b"* ENABLED QRESYNC"], u


def test_enable_condstore_qresync(env):
    s = env.session()
    u = s.ok("ENABLE CONDSTORE QRESYNC")
    assert len(u) == 1 and u[0].startswith(b"* ENABLED "), u
    assert sorted(u[0].split()[2:]) == [b"CONDSTORE", b"QRESYNC"], u
    u = s.ok("ENABLE QRESYNC CONDSTORE")
    assert u == [b"* ENABLED"], u
    # ENABLE QRESYNC alone implies CONDSTORE (RFC 7162 3.2.3): a flag
    # change pushed to the session carries UID and MODSEQ
    q = qresync_session(env)
    add(q, 1)
    q.ok("SELECT INBOX")
    other = env.session()
    other.ok("SELECT INBOX")
    other.ok("STORE 1 +FLAGS (\\Answered)")
    u = q.ok("NOOP")
    f = fetches(u)
    assert list(f) == [1] and "MODSEQ" in f[1] and "UID" in f[1], u


# --- CONDSTORE (RFC 7162 3.1) -------------------------------------------

def test_condstore_select_and_fetch_modseq(env):
    s = env.session()
    add(s, 3)
    u, t = s.cmd("SELECT INBOX (CONDSTORE)")
    assert is_ok(t) and b"[READ-WRITE]" in t, (u, t)
    h = highestmodseq(u)
    ms = modseqs(s)
    assert len(ms) == 3 and all(0 < m <= h for m in ms.values()), (ms, h)
    assert max(ms.values()) == h, (ms, h)
    # EXAMINE (CONDSTORE) reports the same
    u, t = s.cmd("EXAMINE INBOX (CONDSTORE)")
    assert is_ok(t) and highestmodseq(u) == h, (u, t)
    # FETCH MODSEQ by sequence number, with and without other items
    f = fetches(s.ok("FETCH 2 (FLAGS MODSEQ)"))
    assert modseq_of(f[2]) in ms.values(), f
    # a plain SELECT (no CONDSTORE) still reports HIGHESTMODSEQ: the
    # server keeps modseqs persistently (3.1.2.1), never NOMODSEQ
    u = env.session().ok("SELECT INBOX")
    assert highestmodseq(u) == h and not any(b"NOMODSEQ" in x for x in u), u


def test_condstore_store_bumps_modseq(env):
    s = env.session()
    add(s, 3)
    h = highestmodseq(s.ok("SELECT INBOX (CONDSTORE)"))
    before = modseqs(s)
    u = s.ok("STORE 2 +FLAGS (\\Flagged)")
    f = fetches(u)
    assert list(f) == [2], u
    assert flagset(f[2]["FLAGS"]) == {"\\Flagged"}, u
    m2 = modseq_of(f[2])
    assert m2 > h, (m2, h)
    after = modseqs(s)
    uids = sorted(before)
    assert after[uids[1]] == m2, after
    assert after[uids[0]] == before[uids[0]], (before, after)
    assert after[uids[2]] == before[uids[2]], (before, after)
    o = env.session()
    st = status_items(o.ok("STATUS INBOX (HIGHESTMODSEQ MESSAGES)"), "INBOX")
    assert st == {"HIGHESTMODSEQ": m2, "MESSAGES": 3}, st
    assert highestmodseq(o.ok("SELECT INBOX")) == m2
    # a second change bumps again, past every modseq seen so far
    f = fetches(s.ok("UID STORE %d FLAGS (\\Seen)" % uids[0]))
    m1 = modseq_of(f[1])
    assert m1 > m2 and int(f[1]["UID"]) == uids[0], f
    st = status_items(o.ok("STATUS INBOX (HIGHESTMODSEQ)"))
    assert st["HIGHESTMODSEQ"] == m1, st


def test_condstore_changedsince(env):
    s = env.session()
    uids = add(s, 5)
    h = highestmodseq(s.ok("SELECT INBOX (CONDSTORE)"))
    s.ok("STORE 1,4 +FLAGS.SILENT (\\Seen)")
    u = s.ok("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % h)
    f = fetches(u)
    assert sorted(f) == [1, 4], u
    for n in (1, 4):
        assert flagset(f[n]["FLAGS"]) == {"\\Seen"}, u
        assert modseq_of(f[n]) > h, u
    # UID FETCH: the same, with UIDs
    u = s.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % h)
    assert sorted(by_uid(u)) == [uids[0], uids[3]], u
    # nothing changed since the newest modseq
    top = max(modseqs(s).values())
    u = s.ok("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % top)
    assert fetches(u) == {}, u
    # the set still limits the answer
    u = s.ok("FETCH 2:5 (FLAGS) (CHANGEDSINCE %d)" % h)
    assert sorted(fetches(u)) == [4], u
    # mod-sequence values are 1 or more (7: mod-sequence-value)
    s.bad("FETCH 1:* (FLAGS) (CHANGEDSINCE 0)")
    s.bad("FETCH 1:* (FLAGS) (CHANGEDSINCE)")
    s.bad("FETCH 1:* (FLAGS) (CHANGEDSINCE x)")


def test_condstore_unchangedsince(env):
    a = env.session()
    uids = add(a, 3)
    h = highestmodseq(a.ok("SELECT INBOX (CONDSTORE)"))
    b = env.session()
    b.ok("SELECT INBOX")
    b.ok("STORE 2 +FLAGS (\\Answered)")
    # message 2 changed after h: the conditional STORE skips it
    u, t = a.cmd("STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % h)
    assert is_ok(t) and b"[MODIFIED 2]" in t, (u, t)
    f = fetches(u)
    for n in (1, 3):
        assert "\\Seen" in flagset(f[n]["FLAGS"]) and modseq_of(f[n]) > h, u
    assert 2 not in f or "\\Seen" not in flagset(f[2]["FLAGS"]), u
    fb = fetches(b.ok("FETCH 1:3 (FLAGS)"))
    assert flagset(fb[2]["FLAGS"]) == {"\\Answered"}, fb
    assert "\\Seen" in flagset(fb[1]["FLAGS"]), fb
    names = [f for f in os.listdir(os.path.join(env.maildir, "cur"))]
    assert sorted(re.sub(r".*:2,", "", n) for n in names) == \
        ["R", "S", "S"], names
    # UID STORE names the UIDs that failed
    u, t = a.cmd("UID STORE %d (UNCHANGEDSINCE %d) -FLAGS (\\Answered)"
                 % (uids[1], h))
    assert is_ok(t) and (b"[MODIFIED %d]" % uids[1]) in t, (u, t)
    assert "\\Answered" in flagset(fetches(
        b.ok("FETCH 2 (FLAGS)"))[2]["FLAGS"])
    # 3.1.3 example 8: UNCHANGEDSINCE 0 always fails
    u, t = a.cmd("STORE 3 (UNCHANGEDSINCE 0) +FLAGS.SILENT ($MDNSent)")
    assert is_ok(t) and b"[MODIFIED 3]" in t, (u, t)
    assert "$MDNSent" not in flagset(fetches(
        b.ok("FETCH 3 (FLAGS)"))[3]["FLAGS"])
    # with a current modseq it succeeds; .SILENT still sends FETCH with
    # MODSEQ (3.1.3: "An untagged FETCH response MUST be sent, even if the
    # .SILENT suffix is specified")
    cur = modseqs(a)
    u, t = a.cmd("STORE 3 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Draft)"
                 % cur[uids[2]])
    assert is_ok(t) and b"MODIFIED" not in t, (u, t)
    f = fetches(u)
    assert list(f) == [3] and modseq_of(f[3]) > cur[uids[2]], u
    assert "FLAGS" not in f[3], u
    u, t = a.cmd("UID STORE %d (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Flagged)"
                 % (uids[0], modseqs(a)[uids[0]]))
    assert is_ok(t), t
    f = fetches(u)
    assert list(f) == [1] and int(f[1]["UID"]) == uids[0] and \
        "MODSEQ" in f[1], u
    assert flagset(fetches(b.ok("FETCH 1 (FLAGS)"))[1]["FLAGS"]) == \
        {"\\Seen", "\\Flagged"}
    # the largest mod-sequence-value, 2^63-1 (RFC 7162 7)
    top = 9223372036854775807
    u, t = a.cmd("STORE 1 (UNCHANGEDSINCE %d) -FLAGS (\\Flagged)" % top)
    assert is_ok(t) and b"MODIFIED" not in t and 1 in fetches(u), (u, t)
    assert fetches(a.ok("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % top)) == {}
    assert a.ok("SEARCH MODSEQ %d" % top) == [b"* SEARCH"]
    a.bad("STORE 1 (UNCHANGEDSINCE) +FLAGS (\\Seen)")
    a.bad("STORE 1 (NOSUCHMOD 5) +FLAGS (\\Seen)")


def test_condstore_unsolicited_fetch_has_uid_and_modseq(env):
    """RFC 7162 3.2.4: on a QRESYNC server, once a CONDSTORE enabling
    command was given, every untagged FETCH caused by a STORE or by
    another agent carries UID and MODSEQ"""
    a = env.session()
    uids = add(a, 2)
    a.ok("SELECT INBOX (CONDSTORE)")
    b = env.session()
    b.ok("SELECT INBOX")
    b.ok("STORE 2 +FLAGS (\\Flagged)")
    u = a.ok("NOOP")
    f = fetches(u)
    assert list(f) == [2], u
    assert "MODSEQ" in f[2], u
    assert int(f[2].get("UID", 0)) == uids[1], \
        "unsolicited FETCH without UID: %r" % u
    u = a.ok("STORE 1 +FLAGS (\\Seen)")
    f = fetches(u)
    assert "MODSEQ" in f[1] and int(f[1].get("UID", 0)) == uids[0], u
    # also the conditional .SILENT STORE and a FETCH that sets \Seen
    u = a.ok("STORE 2 (UNCHANGEDSINCE 1000000) +FLAGS.SILENT (\\Draft)")
    f = fetches(u)
    assert "MODSEQ" in f[2] and int(f[2].get("UID", 0)) == uids[1], u
    u = a.ok("FETCH 2 (BODY[TEXT])")
    f = fetches(u)
    assert "\\Seen" in flagset(f[2]["FLAGS"]), u
    assert "MODSEQ" in f[2] and int(f[2].get("UID", 0)) == uids[1], u


def test_condstore_enabling_commands(env):
    """RFC 7162 3.1: after any CONDSTORE enabling command, every later
    untagged FETCH carries MODSEQ, including changes by others"""
    s = env.session()
    add(s, 2)
    enablers = ["ENABLE CONDSTORE", "STATUS INBOX (HIGHESTMODSEQ)",
                "FETCH 1 (MODSEQ)", "FETCH 1 (FLAGS) (CHANGEDSINCE 1)",
                "STORE 1 (UNCHANGEDSINCE 1000000) +FLAGS (\\Draft)",
                "SEARCH MODSEQ 1", "SELECT INBOX (CONDSTORE)"]
    other = env.session()
    other.ok("SELECT INBOX")
    for i, cmd in enumerate(enablers):
        a = env.session()
        a.ok("SELECT INBOX")
        u = a.ok(cmd)
        other.ok("STORE 2 %sFLAGS ($Mark)" % "+-"[i % 2])
        f = fetches(a.ok("NOOP"))
        assert 2 in f and "MODSEQ" in f[2], (cmd, f)
    # and without one: no MODSEQ
    a = env.session()
    a.ok("SELECT INBOX")
    other.ok("STORE 2 +FLAGS (\\Seen)")
    f = fetches(a.ok("NOOP"))
    assert 2 in f and "MODSEQ" not in f[2], f


def test_condstore_search_modseq(env):
    s = env.session()
    uids = add(s, 4)
    h = highestmodseq(s.ok("SELECT INBOX"))
    s.ok("STORE 2 +FLAGS (\\Flagged)")
    s.ok("STORE 4 +FLAGS (\\Seen)")
    ms = modseqs(s)
    top = max(ms[uids[1]], ms[uids[3]])
    u = s.ok("SEARCH MODSEQ %d" % (h + 1))
    assert u == [b"* SEARCH 2 4 (MODSEQ %d)" % top], u
    u = s.ok("UID SEARCH MODSEQ %d" % (h + 1))
    assert u == [b"* SEARCH %d %d (MODSEQ %d)" % (uids[1], uids[3], top)], u
    # "equal to or greater than"
    u = s.ok("SEARCH MODSEQ %d" % ms[uids[3]])
    assert u == [b"* SEARCH 4 (MODSEQ %d)" % ms[uids[3]]], u
    # no match: no MODSEQ (3.1.6)
    u = s.ok("SEARCH MODSEQ %d" % (top + 1000))
    assert u == [b"* SEARCH"], u
    # the entry name and type are accepted (one modseq per message here)
    u = s.ok('SEARCH MODSEQ "/flags/\\\\draft" all %d' % (h + 1))
    assert u == [b"* SEARCH 2 4 (MODSEQ %d)" % top], u
    u = s.ok("SEARCH NOT MODSEQ %d" % (h + 1))
    assert u == [b"* SEARCH 1 3 (MODSEQ %d)"
                 % max(ms[uids[0]], ms[uids[2]])], u
    # SEARCH MODSEQ is a CONDSTORE enabling command: later pushed FETCH
    # responses carry MODSEQ
    o = env.session()
    o.ok("SELECT INBOX")
    o.ok("STORE 1 +FLAGS (\\Answered)")
    f = fetches(s.ok("NOOP"))
    assert list(f) == [1] and "MODSEQ" in f[1], f


def test_condstore_status_highestmodseq(env):
    s = env.session()
    st = status_items(s.ok("STATUS INBOX (HIGHESTMODSEQ)"))
    assert set(st) == {"HIGHESTMODSEQ"}, st
    add(s, 2)
    st1 = status_items(s.ok("STATUS INBOX (HIGHESTMODSEQ)"))
    assert st1["HIGHESTMODSEQ"] > 0
    h = highestmodseq(s.ok("SELECT INBOX"))
    assert h == st1["HIGHESTMODSEQ"], (h, st1)
    s.ok("STORE 1 +FLAGS (\\Seen)")
    o = env.session()
    st2 = status_items(o.ok("STATUS INBOX (HIGHESTMODSEQ)"))
    assert st2["HIGHESTMODSEQ"] > h, (st2, h)
    # a new folder too
    o.ok("CREATE Other")
    st3 = status_items(o.ok("STATUS Other (HIGHESTMODSEQ MESSAGES)"))
    assert st3["MESSAGES"] == 0 and st3["HIGHESTMODSEQ"] >= 0, st3


def test_condstore_outside_changes(env):
    """flags renamed and files removed by another program get a new
    modseq, seen by the next session"""
    for i in range(4):
        env.deliver(make_msg("ext %d" % i), flags="")
    s = env.session()
    h = highestmodseq(s.ok("SELECT INBOX (CONDSTORE)"))
    uids = uid_map(s)
    before = modseqs(s)
    s.logout()
    p = file_of(env.maildir, "ext 1")
    os.rename(p, p + "FS")
    os.unlink(file_of(env.maildir, "ext 2"))
    s = env.session()
    u = s.ok("SELECT INBOX (CONDSTORE)")
    h2 = highestmodseq(u)
    assert h2 > h and select_info(u)["exists"] == 3, (h, u)
    u = s.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % h)
    f = by_uid(u)
    assert list(f) == [uids[1]], u
    assert flagset(f[uids[1]]["FLAGS"]) == {"\\Flagged", "\\Seen"}, u
    assert modseq_of(f[uids[1]]) > h, u
    after = modseqs(s)
    assert after[uids[0]] == before[uids[0]], (before, after)
    assert after[uids[3]] == before[uids[3]], (before, after)
    # while selected: an outside rename is pushed with a newer modseq
    p = file_of(env.maildir, "ext 3")
    os.rename(p, p + "D")
    u = s.ok("NOOP")
    f = fetches(u)
    assert list(f) == [3], u
    assert modseq_of(f[3]) > h2 and flagset(f[3]["FLAGS"]) == {"\\Draft"}, u
    st = status_items(env.session().ok("STATUS INBOX (HIGHESTMODSEQ)"))
    assert st["HIGHESTMODSEQ"] == modseq_of(f[3]), (st, u)


def test_condstore_modseqs_persist(env):
    s = env.session()
    add(s, 4)
    s.ok("SELECT INBOX (CONDSTORE)")
    s.ok("STORE 2 +FLAGS (\\Flagged)")
    s.ok("STORE 3 +FLAGS (\\Seen)")
    ms = modseqs(s)
    h = highestmodseq(s.ok("EXAMINE INBOX (CONDSTORE)"))
    s.logout()
    for _ in range(2):
        s = env.session()
        u = s.ok("SELECT INBOX (CONDSTORE)")
        assert highestmodseq(u) == h, (u, h)
        assert modseqs(s) == ms
        st = status_items(s.ok("STATUS INBOX (HIGHESTMODSEQ)"))
        assert st["HIGHESTMODSEQ"] == h
        s.logout()
    # and a change in a later session still goes up from there
    s = env.session()
    s.ok("SELECT INBOX (CONDSTORE)")
    f = fetches(s.ok("STORE 1 +FLAGS (\\Answered)"))
    assert modseq_of(f[1]) > h, f


# --- QRESYNC (RFC 7162 3.2) ---------------------------------------------

def qresync_scene(env, n=10):
    """n messages; remember (uidvalidity, highestmodseq) from a QRESYNC
    session, then change things from a second session and from outside:
    flags of uids[2] and uids[3] (session), uids[9] (outside rename),
    expunge uids[4] and uids[6] (session) and uids[8] (outside unlink).
    Returns (uids, uidvalidity, modseq)."""
    s = env.session()
    uids = add(s, n)
    s.logout()
    q = qresync_session(env)
    u = q.ok("SELECT INBOX")
    v = select_info(u)["uidvalidity"]
    m = highestmodseq(u)
    q.logout()
    b = env.session()
    b.ok("SELECT INBOX")
    b.ok("UID STORE %d +FLAGS (\\Flagged)" % uids[2])
    b.ok("UID STORE %d +FLAGS ($Label1)" % uids[3])
    b.ok("UID STORE %d,%d +FLAGS (\\Deleted)" % (uids[4], uids[6]))
    b.ok("EXPUNGE")
    b.logout()
    os.unlink(file_of(env.maildir, "msg 8"))
    p = file_of(env.maildir, "msg 9")
    os.rename(p, p + "S")
    return uids, v, m


def test_qresync_select_reports_changes(env):
    uids, v, m = qresync_scene(env)
    q = qresync_session(env)
    u, t = q.cmd("SELECT INBOX (QRESYNC (%d %d))" % (v, m))
    assert is_ok(t) and b"[READ-WRITE]" in t, (u, t)
    info = select_info(u)
    assert info["exists"] == 7 and info["uidvalidity"] == v, info
    assert highestmodseq(u) > m
    assert sorted(vanished(u, True)) == [uids[4], uids[6], uids[8]], u
    assert vanished(u, False) == [], u
    f = by_uid(u)
    assert sorted(f) == [uids[2], uids[3], uids[9]], u
    assert flagset(f[uids[2]]["FLAGS"]) == {"\\Flagged"}, u
    assert flagset(f[uids[3]]["FLAGS"]) == {"$Label1"}, u
    assert flagset(f[uids[9]]["FLAGS"]) == {"\\Seen"}, u
    for d in f.values():
        assert modseq_of(d) > m, u
    # the FETCH sequence numbers are those after the expunges
    now = uid_map(q)
    for n, d in fetches(u).items():
        assert now[n - 1] == int(d["UID"]), (n, d, now)
    # 3.2.6: VANISHED (EARLIER) comes before any FETCH
    iv = [i for i, x in enumerate(u) if x.startswith(b"* VANISHED")]
    ifetch = [i for i, x in enumerate(u) if b" FETCH " in x]
    assert max(iv) < min(ifetch), u
    assert expunges(u) == [], u


def test_qresync_known_uids(env):
    uids, v, m = qresync_scene(env)
    q = qresync_session(env)
    u = q.ok("SELECT INBOX (QRESYNC (%d %d %d:%d))"
             % (v, m, uids[0], uids[5]))
    assert vanished(u, True) == [uids[4]], u
    assert sorted(by_uid(u)) == [uids[2], uids[3]], u
    # with the sequence match data as well (3.2.5.2), and as EXAMINE
    u, t = q.cmd("EXAMINE INBOX (QRESYNC (%d %d %d:%d (1:3 %d:%d)))"
                 % (v, m, uids[5], uids[9], uids[0], uids[2]))
    assert is_ok(t) and b"[READ-ONLY]" in t, (u, t)
    assert u[0].startswith(b"* OK [CLOSED]"), u
    assert sorted(vanished(u, True)) == [uids[6], uids[8]], u
    assert sorted(by_uid(u)) == [uids[9]], u
    # the whole history from modseq 1
    u = q.ok("SELECT INBOX (QRESYNC (%d 1))" % v)
    assert sorted(vanished(u, True)) == [uids[4], uids[6], uids[8]], u
    assert sorted(by_uid(u)) == sorted(set(uids) - {uids[4], uids[6],
                                                    uids[8]}), u


def test_qresync_nothing_changed(env):
    s = env.session()
    add(s, 5)
    q = qresync_session(env)
    u = q.ok("SELECT INBOX")
    v, h = select_info(u)["uidvalidity"], highestmodseq(u)
    q.logout()
    q = qresync_session(env)
    u = q.ok("SELECT INBOX (QRESYNC (%d %d))" % (v, h))
    assert not any(x.startswith(b"* VANISHED") or b" FETCH " in x
                   for x in u), u
    assert highestmodseq(u) == h


def test_qresync_wrong_uidvalidity(env):
    uids, v, m = qresync_scene(env)
    q = qresync_session(env)
    u, t = q.cmd("SELECT INBOX (QRESYNC (%d %d %d:%d))"
                 % (v + 1, m, uids[0], uids[-1]))
    assert is_ok(t), (u, t)
    assert select_info(u)["uidvalidity"] == v, u
    assert not any(x.startswith(b"* VANISHED") or b" FETCH " in x
                   for x in u), u


def test_qresync_needs_enable(env):
    s = env.session()
    add(s, 2)
    u = s.ok("SELECT INBOX")
    v = select_info(u)["uidvalidity"]
    s.ok("UNSELECT")
    # 3.2.5: BAD without ENABLE QRESYNC, and nothing is selected
    s.bad("SELECT INBOX (QRESYNC (%d 1))" % v)
    s.bad("FETCH 1 (FLAGS)")
    s.ok("SELECT INBOX")
    # 3.2.6: the VANISHED modifier too
    s.bad("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    s.ok("ENABLE CONDSTORE")
    s.bad("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    # syntax: BAD, and the mailbox stays unselected
    q = qresync_session(env)
    for bad in ("(QRESYNC (0 1))", "(QRESYNC (%d 0))" % v,
                "(QRESYNC (%d))" % v, "(QRESYNC %d 1)" % v,
                "(QRESYNC (%d 1 x))" % v, "(NOSUCHPARAM)"):
        q.bad("SELECT INBOX " + bad)
        q.bad("FETCH 1 (FLAGS)")


def test_qresync_expunge_is_vanished(env):
    a = qresync_session(env)
    uids = add(a, 6)
    a.ok("SELECT INBOX")
    a.ok("STORE 2:3,5 +FLAGS.SILENT (\\Deleted)")
    u = a.ok("EXPUNGE")
    assert vanished(u, False) == [uids[1], uids[2], uids[4]], u
    assert expunges(u) == [] and vanished(u, True) == [], u
    assert b"* VANISHED %d:%d,%d" % (uids[1], uids[2], uids[4]) in u, u
    assert uid_map(a) == [uids[0], uids[3], uids[5]]
    # UID EXPUNGE
    a.ok("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
    u = a.ok("UID EXPUNGE %d" % uids[3])
    assert vanished(u, False) == [uids[3]] and expunges(u) == [], u
    # another session expunges: reported by NOOP as VANISHED
    b = env.session()
    b.ok("SELECT INBOX")
    b.ok("EXPUNGE")
    u = a.ok("NOOP")
    assert sorted(vanished(u, False)) == [uids[0], uids[5]], u
    assert expunges(u) == [] and uid_map(a) == []


def test_qresync_expunge_highestmodseq(env):
    """RFC 7162 3.2 and 3.2.7/3.2.9: EXPUNGE, UID EXPUNGE, CLOSE and MOVE
    raise the mailbox modseq; with QRESYNC, EXPUNGE and UID EXPUNGE send
    the new one in the tagged OK, CLOSE must not"""
    a = qresync_session(env)
    uids = add(a, 6)
    a.ok("CREATE Target")
    h0 = highestmodseq(a.ok("SELECT INBOX"))
    a.ok("STORE 1:4 +FLAGS.SILENT (\\Deleted)")
    h1 = status_items(env.session().ok("STATUS INBOX (HIGHESTMODSEQ)"))[
        "HIGHESTMODSEQ"]
    assert h1 > h0
    u, t = a.cmd("UID EXPUNGE %d" % uids[0])
    assert is_ok(t) and vanished(u, False) == [uids[0]], (u, t)
    m = re.search(rb"\[HIGHESTMODSEQ (\d+)\]", t)
    assert m, "UID EXPUNGE with QRESYNC: no HIGHESTMODSEQ in %r" % t
    h2 = int(m.group(1))
    assert h2 > h1, (h1, h2)
    st = status_items(env.session().ok("STATUS INBOX (HIGHESTMODSEQ)"))
    assert st["HIGHESTMODSEQ"] == h2, (st, h2)
    u, t = a.cmd("EXPUNGE")
    assert is_ok(t) and vanished(u, False) == uids[1:4], (u, t)
    m = re.search(rb"\[HIGHESTMODSEQ (\d+)\]", t)
    assert m, "EXPUNGE with QRESYNC: no HIGHESTMODSEQ in %r" % t
    h3 = int(m.group(1))
    assert h3 > h2
    # MOVE raises it too
    a.ok("MOVE 1 Target")
    st = status_items(env.session().ok("STATUS INBOX (HIGHESTMODSEQ)"))
    assert st["HIGHESTMODSEQ"] > h3, (h3, st)
    a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    st = status_items(env.session().ok("STATUS INBOX (HIGHESTMODSEQ)"))
    h4 = st["HIGHESTMODSEQ"]
    # CLOSE: raised, but not reported in the tagged OK
    u, t = a.cmd("CLOSE")
    assert is_ok(t) and b"HIGHESTMODSEQ" not in t and u == [], (u, t)
    st = status_items(env.session().ok("STATUS INBOX (HIGHESTMODSEQ)"))
    assert st["HIGHESTMODSEQ"] > h4, (st, h4)
    # and the QRESYNC resync from h0 names every one of them
    u = a.ok("SELECT INBOX (QRESYNC (%d %d))"
             % (select_info(a.ok("EXAMINE INBOX"))["uidvalidity"], h0))
    assert sorted(vanished(u, True)) == uids, u
    assert select_info(u)["exists"] == 0, u


def test_qresync_vanished_only_for_announced(env):
    """3.2.10.2: VANISHED never names a message the client was not told
    about with EXISTS"""
    a = qresync_session(env)
    uids = add(a, 2)
    a.ok("SELECT INBOX")
    b = env.session()
    u, t = append(b, "INBOX", make_msg("short-lived"))
    gone = appenduid(t)[1]
    b.ok("SELECT INBOX")
    b.ok("UID STORE %d +FLAGS.SILENT (\\Deleted)" % gone)
    b.ok("UID EXPUNGE %d" % gone)
    u = a.ok("NOOP")
    assert not any(x.startswith(b"* VANISHED") for x in u), u
    assert uid_map(a) == uids


def test_qresync_uid_fetch_vanished(env):
    uids, v, m = qresync_scene(env)
    q = qresync_session(env)
    q.ok("SELECT INBOX")
    u = q.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % m)
    assert sorted(vanished(u, True)) == [uids[4], uids[6], uids[8]], u
    f = by_uid(u)
    assert sorted(f) == [uids[2], uids[3], uids[9]], u
    assert all(modseq_of(d) > m for d in f.values()), u
    iv = [i for i, x in enumerate(u) if x.startswith(b"* VANISHED")]
    ifetch = [i for i, x in enumerate(u) if b" FETCH " in x]
    assert max(iv) < min(ifetch), u
    # limited to the UID set given
    u = q.ok("UID FETCH %d:%d (FLAGS) (CHANGEDSINCE %d VANISHED)"
             % (uids[0], uids[5], m))
    assert vanished(u, True) == [uids[4]], u
    assert sorted(by_uid(u)) == [uids[2], uids[3]], u
    # modifiers come in any order (RFC 4466 fetch-modifiers)
    u2 = q.ok("UID FETCH %d:%d (FLAGS) (VANISHED CHANGEDSINCE %d)"
              % (uids[0], uids[5], m))
    assert u2 == u, (u2, u)
    # VANISHED only with UID FETCH and only with CHANGEDSINCE
    q.bad("FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % m)
    q.bad("UID FETCH 1:* (FLAGS) (VANISHED)")


def test_qresync_closed(env):
    q = qresync_session(env)
    add(q, 1)
    q.ok("CREATE Other")
    q.ok("SELECT INBOX")
    u = q.ok("SELECT Other")
    assert u[0].startswith(b"* OK [CLOSED]"), u
    assert sum(x.startswith(b"* OK [CLOSED]") for x in u) == 1, u
    u = q.ok("EXAMINE INBOX")
    assert u[0].startswith(b"* OK [CLOSED]"), u
    # CLOSE and UNSELECT need no CLOSED
    u = q.ok("UNSELECT")
    assert not any(b"[CLOSED]" in x for x in u), u
    u = q.ok("SELECT INBOX")
    assert not any(b"[CLOSED]" in x for x in u), u
    # a failing SELECT still closes the old mailbox
    u, t = q.no("SELECT NoSuchBox")
    assert any(x.startswith(b"* OK [CLOSED]") for x in u), (u, t)
    q.bad("FETCH 1 (FLAGS)")


def test_full_resync_uid_fetch(env):
    """the fallback when QRESYNC cannot be used (new UIDVALIDITY): the
    whole folder's UIDs and flags, each message once and each item once"""
    s = env.session()
    uids = add(s, 5)
    s.ok("SELECT INBOX")
    s.ok("STORE 2 +FLAGS (\\Seen)")
    u = s.ok("UID FETCH 1:* (UID FLAGS)")
    assert len(u) == 5, u
    f = fetches(u)	# fetch_items refuses an item sent twice
    assert [int(f[n]["UID"]) for n in sorted(f)] == uids, u
    assert flagset(f[2]["FLAGS"]) == {"\\Seen"}, u
    u = s.ok("UID FETCH 1:* (FLAGS UID MODSEQ)")
    assert sorted(by_uid(u)) == uids, u


def test_closed_without_enable(env):
    """3.2.11: a server advertising CONDSTORE or QRESYNC returns CLOSED
    when SELECT/EXAMINE closes a mailbox, whether or not a CONDSTORE
    enabling command was issued (RFC 9051 7.1 says the same for
    IMAP4rev2 servers)"""
    s = env.session()
    s.ok("CREATE Other")
    s.ok("SELECT INBOX")
    u = s.ok("SELECT Other")
    assert u and u[0].startswith(b"* OK [CLOSED]"), u


# --- MOVE (RFC 6851) ----------------------------------------------------

def move_scene(env):
    s = env.session()
    s.ok("CREATE Target")
    msgs = [make_msg("move %d" % i, ("line %d\n" % i) * 20)
            for i in range(4)]
    uids = []
    for i, m in enumerate(msgs):
        fl = [["\\Flagged", "$Label1"], ["\\Seen"], [], ["\\Answered"]][i]
        u, t = append(s, "INBOX", m, flags=fl)
        uids.append(appenduid(t)[1])
    return s, msgs, uids


def test_move(env):
    s, msgs, uids = move_scene(env)
    s.ok("SELECT INBOX")
    tv = status_items(env.session().ok("STATUS Target (UIDVALIDITY)"))
    u, t = s.cmd("MOVE 1:2 Target")
    assert is_ok(t), (u, t)
    cu = [x for x in u if x.startswith(b"* OK [COPYUID ")]
    assert len(cu) == 1, u
    m = re.match(rb"\* OK \[COPYUID (\d+) ([\d:,]+) ([\d:,]+)\]", cu[0])
    assert m, cu
    assert int(m.group(1)) == tv["UIDVALIDITY"]
    assert uid_set(m.group(2)) == uids[:2], cu
    dst = uid_set(m.group(3))
    assert len(dst) == 2, cu
    # COPYUID before the expunges, which remove exactly 1 and 2
    assert u.index(cu[0]) < min(i for i, x in enumerate(u)
                                if x.endswith(b" EXPUNGE")), u
    ex = expunges(u)
    seq = list(uids)
    for n in ex:
        del seq[n - 1]
    assert seq == uids[2:], (ex, u)
    assert uid_map(s) == uids[2:]
    # on disk: two files left in INBOX, two in Target
    assert len(maildir_files(env.maildir)) == 2
    assert len(maildir_files(env.folder_path("Target"))) == 2
    # in the target with flags and content kept
    o = env.session()
    o.ok("EXAMINE Target")
    f = by_uid(o.ok("UID FETCH 1:* (FLAGS BODY.PEEK[])"))
    assert sorted(f) == sorted(dst), f
    assert flagset(f[dst[0]]["FLAGS"]) == {"\\Flagged", "$Label1"}, f
    assert flagset(f[dst[1]]["FLAGS"]) == {"\\Seen"}, f
    assert f[dst[0]]["BODY[]"] == crlf(msgs[0]), f
    assert f[dst[1]]["BODY[]"] == crlf(msgs[1]), f


def test_uid_move_with_qresync(env):
    s, msgs, uids = move_scene(env)
    q = qresync_session(env)
    q.ok("SELECT INBOX")
    u, t = q.cmd("UID MOVE %d,%d Target" % (uids[1], uids[3]))
    assert is_ok(t), (u, t)
    assert u[0].startswith(b"* OK [COPYUID "), u
    m = re.match(rb"\* OK \[COPYUID \d+ ([\d:,]+) ([\d:,]+)\]", u[0])
    assert uid_set(m.group(1)) == [uids[1], uids[3]], u
    assert expunges(u) == [], u
    assert vanished(u, False) == [uids[1], uids[3]], u
    assert uid_map(q) == [uids[0], uids[2]]
    names = maildir_files(env.folder_path("Target"))
    assert sorted(names.values()) == ["2,R", "2,S"], names
    # an idling observer of INBOX hears the expunges
    o = env.session()
    o.ok("SELECT INBOX")
    idle = Idle(o)
    t0 = time.monotonic()
    q.ok("MOVE 1 Target")
    idle.wait(lambda ln: ln == b"* 1 EXPUNGE", t0)
    u, t = idle.done()
    assert is_ok(t)


def test_move_to_missing_mailbox(env):
    s, msgs, uids = move_scene(env)
    s.ok("SELECT INBOX")
    before = maildir_files(env.maildir)
    u, t = s.no("MOVE 1:3 NoSuchBox", "TRYCREATE")
    assert expunges(u) == [] and not any(b"COPYUID" in x for x in u), u
    assert maildir_files(env.maildir) == before
    assert uid_map(s) == uids
    u, t = s.no("UID MOVE %d NoSuchBox" % uids[0], "TRYCREATE")
    assert expunges(u) == [], u
    # bad sequence numbers move nothing either
    s.bad("MOVE 9 Target")
    assert len(maildir_files(env.folder_path("Target"))) == 0
    # a read-only mailbox cannot lose messages
    s.ok("EXAMINE INBOX")
    u, t = s.no("MOVE 1 Target")
    assert maildir_files(env.maildir) == before
    assert len(maildir_files(env.folder_path("Target"))) == 0


# --- COMPRESS=DEFLATE (RFC 4978) ----------------------------------------

class SockSession(lib.Session):
    """the raw client of lib.Session over a socket (plain or TLS), able to
    switch on DEFLATE in both directions; counts bytes on the wire"""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.ntag = 0
        self.inflate = self.deflate = None
        self.wire_in = self.wire_out = 0

    def _ready(self, timeout):
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
        r, _, _ = select.select([self.sock], [], [], timeout)
        return bool(r)

    def _fill(self, timeout):
        if not self._ready(timeout):
            raise AssertionError("no answer within %.0f s; have %r"
                                 % (timeout, self.buf[-300:]))
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("imapd closed the connection; have %r"
                           % self.buf[-300:])
        self.wire_in += len(data)
        if self.inflate:
            data = self.inflate.decompress(data)
        self.buf += data

    def pending(self, timeout=0.3):
        return bool(self.buf) or self._ready(timeout)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        if self.deflate:
            data = self.deflate.compress(data) + \
                self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self.wire_out += len(data)
        self.sock.sendall(data)

    def compress(self):
        u, t = self.cmd("COMPRESS DEFLATE")
        assert u == [] and is_ok(t), (u, t)
        # whatever followed the tagged OK is already compressed
        rest, self.buf = self.buf, b""
        self.inflate = zlib.decompressobj(wbits=-15)
        self.deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.buf = self.inflate.decompress(rest)

    def close(self):
        self.sock.close()

    def logout(self):
        u, t = self.cmd("LOGOUT")
        assert any(x.startswith(b"* BYE") for x in u), u
        assert is_ok(t), t
        self.sock.close()


def connect(env, listener, ctx=None):
    sock = socket.create_connection(("127.0.0.1", listener.port), timeout=20)
    if ctx:
        sock = ctx.wrap_socket(sock, server_hostname="localhost")
    s = SockSession(sock)
    g = s.greeting()
    assert g.startswith(b"* OK"), g
    s.ok("LOGIN %s %s" % (env.user, quote(PASSWORD)))
    return s


def big_message():
    """about 600 KB of varied text: compressible, not trivially"""
    lines = ["Line %05d of a long report: %s" % (i, "abcdefghij"[i % 10] *
                                                 (20 + i % 37))
             for i in range(12000)]
    return make_msg("big", "\n".join(lines) + "\n", eol="\r\n")


def compressed_workout(env, s):
    """SELECT, FETCH of a large message and IDLE through a compressed
    connection s"""
    caps = lib.caps_of(untagged(s.ok("CAPABILITY"), "CAPABILITY")[0])
    assert "COMPRESS=DEFLATE" in caps, caps
    big = big_message()
    u, t = append(env.session(), "INBOX", big)
    assert is_ok(t), t
    s.compress()
    w_in = s.wire_in
    info = select_info(s.ok("SELECT INBOX"))
    assert info["exists"] == 1, info
    f = fetches(s.ok("FETCH 1 (RFC822.SIZE BODY[])"))
    assert f[1]["BODY[]"] == big, len(f[1]["BODY[]"])
    assert int(f[1]["RFC822.SIZE"]) == len(big)
    got = s.wire_in - w_in
    assert got < len(big) / 2, (got, len(big))
    print("    %d bytes of message came as %d compressed" % (len(big), got))
    # a large APPEND upstream, compressed by the client
    up = big.replace(b"Line", b"Upstream line")
    w_out = s.wire_out
    u, t = append(s, "INBOX", up)
    assert is_ok(t), (u, t)
    assert s.wire_out - w_out < len(up) / 2, (s.wire_out - w_out, len(up))
    o = env.session()
    o.ok("EXAMINE INBOX")
    f = fetches(o.ok("UID FETCH %d (BODY.PEEK[])" % appenduid(t)[1]))
    assert list(f.values())[0]["BODY[]"] == up
    o.logout()
    s.ok("NOOP")
    # pipelined commands in one compressed write
    t1, t2 = s.tag(), s.tag()
    s.send("%s NOOP\r\n%s FETCH 1 (FLAGS)\r\n" % (t1, t2))
    u, t = s.collect(t1)
    assert is_ok(t), t
    u, t = s.collect(t2)
    assert is_ok(t) and list(fetches(u)) == [1], (u, t)
    # IDLE through DEFLATE: the push arrives inflated, DONE is understood
    idle = Idle(s)
    t0 = time.monotonic()
    env.deliver(make_msg("pushed while compressed"))
    lat = idle.wait(lambda ln: ln == b"* 3 EXISTS", t0)
    report("delivery -> EXISTS (DEFLATE)", lat)
    u, t = idle.done()
    assert is_ok(t), t
    # a second COMPRESS is refused and the stream stays intact
    u, t = s.cmd("COMPRESS DEFLATE")
    assert is_no(t) and b"[COMPRESSIONACTIVE]" in t, (u, t)
    f = fetches(s.ok("FETCH 3 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    assert b"pushed while compressed" in lib.item(f[3], "BODY["), f
    s.logout()


def test_compress_deflate(env):
    with env.listener() as l:
        s = connect(env, l)
        compressed_workout(env, s)


def test_compress_raw_deflate_on_the_wire(env):
    """after OK both directions are raw deflate (no zlib header): a
    plaintext command is not understood, and the answer is compressed"""
    with env.listener() as l:
        s = connect(env, l)
        s.ok("SELECT INBOX")
        u, t = s.cmd("COMPRESS DEFLATE")
        assert u == [] and is_ok(t), (u, t)
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        data = c.compress(b"z1 NOOP\r\n") + c.flush(zlib.Z_SYNC_FLUSH)
        assert data[:1] != b"\x78"	# raw: no zlib header
        s.sock.sendall(data)
        raw = b""
        d = zlib.decompressobj(wbits=-15)
        out = b""
        deadline = time.monotonic() + 10
        while b"z1 OK" not in out:
            assert time.monotonic() < deadline, (raw, out)
            assert s._ready(deadline - time.monotonic()), (raw, out)
            chunk = s.sock.recv(65536)
            assert chunk, (raw, out)
            raw += chunk
            out += d.decompress(chunk)
        assert b"z1 OK" not in raw and b"NOOP" not in raw, raw
        # plaintext now is corrupt input: the server closes, no crash
        s.sock.sendall(b"z2 NOOP\r\n")
        s.sock.settimeout(10)
        rest = b""
        try:
            while True:
                chunk = s.sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
        except ConnectionResetError:
            pass
        text = d.decompress(rest) if rest else b""
        assert b"z2 OK" not in text, text
    time.sleep(0.2)
    for p in l.procs:
        p.wait(timeout=10)
        assert p.returncode is not None and p.returncode >= 0, p.returncode


def test_compress_bad_arguments(env):
    s = env.session()
    s.bad("COMPRESS")
    s.bad("COMPRESS DEFLATE extra")
    # RFC 4978 3: "BAD Command unknown, invalid or unknown argument"
    u, t = s.cmd("COMPRESS LZW")
    assert is_bad(t), (u, t)
    # still uncompressed
    s.ok("NOOP")
    s2 = env.session(login=False)
    s2.greeting()
    u, t = s2.cmd("COMPRESS DEFLATE")
    assert not is_ok(t), t
    s2.ok("NOOP")


def make_cert(env):
    if not shutil.which("openssl"):
        raise Skip("openssl not installed")
    d = os.path.join(env.dir, ".imapd")
    os.makedirs(d, mode=0o700, exist_ok=True)
    r = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
         "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", os.path.join(d, "key.pem"),
         "-out", os.path.join(d, "cert.pem")],
        capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    os.chmod(os.path.join(d, "key.pem"), 0o600)
    env.fix_owner()
    ctx = ssl.create_default_context(cafile=os.path.join(d, "cert.pem"))
    return ctx


def test_compress_over_tls(env):
    ctx = make_cert(env)
    with env.listener("-s") as l:
        s = connect(env, l, ctx)
        assert s.sock.version() == "TLSv1.2", s.sock.version()
        compressed_workout(env, s)


# --- through python's imaplib -------------------------------------------

def test_imaplib_condstore_and_move(env):
    import imaplib
    for i in range(3):
        env.deliver(make_msg("lib %d" % i), flags="")
    env.make_folder("Archive")
    m = imaplib.IMAP4_stream(env.stream_command())
    try:
        typ, data = m.login(env.user, PASSWORD)
        assert typ == "OK", data
        typ, data = m.enable("CONDSTORE")
        assert typ == "OK", data
        assert m.response("ENABLED")[1] == [b"CONDSTORE"]
        typ, data = m.select("INBOX")
        assert typ == "OK" and data == [b"3"], data
        typ, hms = m.response("HIGHESTMODSEQ")
        h = int(hms[0])
        typ, data = m.uid("STORE", "1:*", "+FLAGS", "(\\Seen)")
        assert typ == "OK" and len(data) == 3, data
        assert all(b"MODSEQ" in d for d in data), data
        typ, data = m.fetch("1:*", "(FLAGS) (CHANGEDSINCE %d)" % h)
        assert typ == "OK" and len(data) == 3, data
        typ, data = m.uid("MOVE", "1:2", "Archive")
        assert typ == "OK", data
        typ, code = m.response("COPYUID")
        assert code and code[0] is not None and code[0].split()[1:] == \
            [b"1:2", b"1:2"], code
        typ, data = m.select("Archive")
        assert typ == "OK" and data == [b"2"], data
        typ, data = m.fetch("1:*", "(FLAGS)")
        assert all(b"\\Seen" in d for d in data), data
        m.logout()
    finally:
        try:
            m.shutdown()
        except Exception:
            pass
