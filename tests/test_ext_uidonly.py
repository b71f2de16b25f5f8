"""UIDONLY (RFC 9586): after ENABLE UIDONLY, sequence numbers are refused
with [UIDREQUIRED], FETCH data comes as UIDFETCH and expunges as
VANISHED.  The RFC's examples over a real session."""
import re

import lib
import refimap


def setup(env, n=5):
    env.make_folder("Archive")
    for i in range(n):
        refimap.deliver(env, i + 1, lib.make_msg("m%d" % i))
    return env.session()


def test_uidonly_capability_and_enable(env):
    s = env.session()
    assert "UIDONLY" in lib.caps_of(s.ok("CAPABILITY")[0])
    u = s.ok("ENABLE UIDONLY")
    assert u == [b"* ENABLED UIDONLY"], u
    # once is enough: a second ENABLE names nothing
    assert s.ok("ENABLE UIDONLY") == [b"* ENABLED"]


def test_uidonly_refuses_sequence_numbers(env):
    """RFC 9586 section 3: every command that takes message numbers"""
    s = setup(env)
    s.ok("ENABLE UIDONLY")
    u = s.ok("SELECT INBOX")
    assert b"* 5 EXISTS" in u
    assert not [x for x in u if b"[UNSEEN " in x], u
    for c in ("FETCH 1:* (FLAGS)", "STORE 1 +FLAGS (\\Seen)",
              "SEARCH ALL", "COPY 1 Archive", "MOVE 1 Archive",
              "SORT (DATE) UTF-8 ALL", "THREAD REFERENCES UTF-8 ALL",
              "UID SEARCH 1:3", "UID SORT (DATE) UTF-8 2",
              "UID SEARCH OR UID 1 1"):
        s.no(c, "UIDREQUIRED")
    # UID commands and EXPUNGE go on working
    u = s.ok("UID SEARCH UID 2:4")
    assert lib.search_result(u) == [2, 3, 4]
    s.ok("EXPUNGE")


def test_uidonly_uidfetch_and_vanished(env):
    """RFC 9586 sections 3.3 and 3.4: UIDFETCH responses, VANISHED
    instead of EXPUNGE, also without QRESYNC"""
    s = setup(env)
    s.ok("ENABLE UIDONLY")
    s.ok("SELECT INBOX")
    u = s.ok("UID FETCH 3:4 (FLAGS)")
    assert u == [b"* UIDFETCH 3 (UID 3 FLAGS ())",
                 b"* UIDFETCH 4 (UID 4 FLAGS ())"], u
    u = s.ok("UID STORE 2 +FLAGS (\\Deleted)")
    assert u == [b"* UIDFETCH 2 (UID 2 FLAGS (\\Deleted))"], u
    u = s.ok("UID STORE 4 +FLAGS.SILENT (\\Deleted)")
    assert u == [], u
    u = s.ok("EXPUNGE")
    assert u == [b"* VANISHED 2,4"], u
    u = s.ok("UID MOVE 5 Archive")
    assert [x for x in u if x.startswith(b"* VANISHED")] == \
        [b"* VANISHED 5"], u
    assert not [x for x in u if re.match(rb"\* \d+ (EXPUNGE|FETCH)", x)]
    # another session's flag change shows as UIDFETCH
    t = env.session()
    t.ok("SELECT INBOX")
    t.ok("UID STORE 3 +FLAGS (\\Flagged)")
    u = s.ok("NOOP")
    assert any(re.match(rb"\* UIDFETCH 3 \(.*\\Flagged", x) for x in u), u
    # CONDSTORE: MODSEQ rides along in UIDFETCH
    # (the first MODSEQ also tells HIGHESTMODSEQ, RFC 7162 3.1)
    u = s.ok("UID FETCH 1 (MODSEQ)")
    u = [x for x in u if not x.startswith(b"* OK [HIGHESTMODSEQ ")]
    assert re.match(rb"\* UIDFETCH 1 \(UID 1 MODSEQ \(\d+\)\)$", u[0]), u
    u = s.ok("UID STORE 1 (UNCHANGEDSINCE 999999) +FLAGS.SILENT (\\Seen)")
    assert re.match(rb"\* UIDFETCH 1 \(UID 1 MODSEQ \(\d+\)\)$", u[0]), u


def test_uidonly_is_per_session(env):
    s = setup(env, 2)
    t = env.session()
    s.ok("ENABLE UIDONLY")
    t.ok("SELECT INBOX")
    u = t.ok("FETCH 1 (FLAGS)")
    assert re.match(rb"\* 1 FETCH ", u[0]), u
