"""CONTEXT=SEARCH (RFC 5267): SEARCH RETURN (UPDATE) keeps the result up
to date with ADDTO and REMOVEFROM as messages arrive, change or go;
CANCELUPDATE; [NOUPDATE].  Compared with Dovecot on the same commands."""
import re
import time

import lib
import refimap


def mailbox(env, n=5):
    for i in range(n):
        refimap.deliver(env, i + 1, lib.make_msg("m%d" % i),
                        flags="S" if i % 2 else "")


NEW = lib.make_msg("new", eol="\r\n")
# the tags are those refimap.run gives: d000, d001, ...
SCRIPT = [
    "SELECT INBOX", "UID SEARCH RETURN (UPDATE) UNSEEN",
    "UID STORE 1 +FLAGS (\\Seen)",
    b"APPEND INBOX {%d+}\r\n" % len(NEW) + NEW, "NOOP",
    "UID STORE 2 -FLAGS (\\Seen)", "UID STORE 3 +FLAGS (\\Deleted)",
    "EXPUNGE", "SEARCH RETURN (UPDATE) UNSEEN", 'CANCELUPDATE "d001"',
    'CANCELUPDATE "nosuchtag"', "UID STORE 4 -FLAGS (\\Seen)",
    "UID SEARCH RETURN (UPDATE COUNT) ALL",
    "UID STORE 4 +FLAGS (\\Deleted)", "EXPUNGE",
    "UID SEARCH RETURN (CONTEXT MIN) ALL",
]


def esearches(answers):
    """per command: its status and its ESEARCH lines, in any order"""
    return [(t.split()[1], sorted(x for x in u if x.startswith(b"* ESEARCH")))
            for u, t in answers]


def test_context_capability(env):
    s = env.session()
    assert "CONTEXT=SEARCH" in lib.caps_of(s.ok("CAPABILITY")[0])


def test_context_matches_dovecot(env):
    """RFC 5267 section 4: ADDTO and REMOVEFROM (position 0) for a UID
    SEARCH and a SEARCH, the REMOVEFROM of an expunge before the
    EXPUNGE, CANCELUPDATE, CONTEXT as a hint"""
    mailbox(env)
    dmail = refimap.copy_maildir(env)
    dv = esearches(refimap.run(env, dmail, SCRIPT))
    ours_s = env.session()
    answers = []
    for i, c in enumerate(SCRIPT):
        tag = "d%03d" % i
        ours_s.send(tag.encode() + b" " + (c if isinstance(c, bytes)
                                           else c.encode()) + b"\r\n")
        answers.append(ours_s.collect(tag))
    ours = esearches(answers)
    assert ours == dv, "\n".join("%r\n  %r\n  %r" % (c[:30], o, d)
                                 for c, o, d in zip(SCRIPT, ours, dv)
                                 if o != d)
    # and the REMOVEFROM of an expunge comes before its EXPUNGE
    ours_s.ok("UID SEARCH RETURN (UPDATE) ALL")
    ours_s.ok("UID STORE 5 +FLAGS (\\Deleted)")
    u = ours_s.ok("EXPUNGE")
    assert re.search(rb"REMOVEFROM \(0 5\)", u[0]) and \
        re.match(rb"\* \d+ EXPUNGE", u[-1]), u


def test_context_other_sessions_and_idle(env):
    """changes by another imapd and a delivery agent reach the kept
    search, also while idling"""
    mailbox(env, 3)
    s = env.session()
    s.ok("SELECT INBOX")
    u = s.ok("UID SEARCH RETURN (UPDATE ALL) UNSEEN")
    assert b"ALL 1,3" in u[0], u
    t = env.session()
    t.ok("SELECT INBOX")
    t.ok("UID STORE 3 +FLAGS (\\Seen)")
    u = s.ok("NOOP")
    assert any(re.match(rb'\* ESEARCH \(TAG "a003"\) UID REMOVEFROM '
                        rb'\(0 3\)$', x) for x in u), u
    s.send("i1 IDLE\r\n")
    assert s.line().startswith(b"+")
    env.deliver(lib.make_msg("arrives"))
    deadline = time.time() + 10
    seen = []
    while time.time() < deadline:
        ln = s.line(timeout=max(0.1, deadline - time.time()))
        seen.append(ln)
        if b"ADDTO" in ln:
            break
    assert any(re.match(rb'\* ESEARCH \(TAG "a003"\) UID ADDTO \(0 4\)$',
                        x) for x in seen), seen
    s.send("DONE\r\n")
    s.collect("i1")


def test_context_noupdate_and_close(env):
    mailbox(env, 2)
    s = env.session()
    s.ok("SELECT INBOX")
    for i in range(8):
        u = s.ok("UID SEARCH RETURN (UPDATE) ALL")
        assert not [x for x in u if b"NOUPDATE" in x], u
    u, t = s.cmd("UID SEARCH RETURN (UPDATE) ALL", tag="x9")
    # RFC 5267 4.3.1: an untagged NO, and the other options still answered
    assert any(x.startswith(b'* NO [NOUPDATE "x9"]') for x in u), u
    assert u[-1] == b'* ESEARCH (TAG "x9") UID', u
    s.bad("UID SEARCH RETURN (UPDATE SAVE) ALL")
    # a kept program that names the saved result ("$") is freed cleanly
    s.ok("CANCELUPDATE \"a003\"")
    s.ok("UID SEARCH RETURN (SAVE) ALL")
    u, t = s.cmd("UID SEARCH RETURN (UPDATE) $", tag="k1")
    assert lib.is_ok(t), t
    s.ok("CANCELUPDATE \"k1\"")
    # RFC 5267 4.3: a tag that names an updating search is refused
    s.send(b'a004 UID SORT RETURN (UPDATE) (DATE) UTF-8 ALL\r\n')
    assert lib.is_bad(s.collect("a004")[1])
    s.ok("CANCELUPDATE \"a004\"")
    # a new SELECT ends them all
    s.ok("SELECT INBOX")
    env.deliver(lib.make_msg("later"))
    u = s.ok("NOOP")
    assert not [x for x in u if x.startswith(b"* ESEARCH")], u
