"""REPLACE (RFC 8508): REPLACE and UID REPLACE store the new version of a
message first and then expunge the old one; a failure leaves the old one
alone.  The RFC's examples over a real session."""
import re

import lib

DRAFT = lib.make_msg("draft v1", body="first version\n", eol="\r\n")
NEW = lib.make_msg("draft v2", body="second version\n", eol="\r\n")


def setup(env, n=4):
    env.make_folder("Drafts")
    s = env.session()
    for i in range(n):
        lib.append(s, "INBOX", lib.make_msg("m%d" % i))
    return s


def replace(s, head, data):
    """a REPLACE with a synchronizing literal; (untagged, tagged, whether
    the server asked for the literal)"""
    tag = s.tag()
    s.send("%s %s {%d}\r\n" % (tag, head, len(data)))
    ln = s.line()
    if not ln.startswith(b"+"):
        return [], ln, False
    s.send(data + b"\r\n")
    u, t = s.collect(tag)
    return u, t, True


def test_replace_capability(env):
    s = env.session()
    assert "REPLACE" in lib.caps_of(s.ok("CAPABILITY")[0])


def test_replace_same_mailbox(env):
    """RFC 8508 section 3.3 first example: REPLACE 4 in the selected
    mailbox itself"""
    s = setup(env)
    s.ok("SELECT INBOX")
    u, t, asked = replace(s, "REPLACE 4 INBOX (\\Seen \\Draft)", NEW)
    assert lib.is_ok(t), t
    ok = [x for x in u if x.startswith(b"* OK [APPENDUID ")]
    assert len(ok) == 1 and u.index(ok[0]) == 0, u
    newuid = int(re.search(rb"APPENDUID \d+ (\d+)", ok[0]).group(1))
    assert newuid == 5
    assert b"* 4 EXPUNGE" in u and b"* 4 EXISTS" in u, u
    f = lib.fetches(s.ok("FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS "
                         "(SUBJECT)])"))
    assert [int(d["UID"]) for d in f.values()] == [1, 2, 3, 5]
    assert lib.flagset(f[4]["FLAGS"]) == {"\\Seen", "\\Draft"}
    assert b"draft v2" in lib.item(f[4], "BODY[HEADER")


def test_uid_replace_other_mailbox_qresync(env):
    """RFC 8508 section 3.3: UID REPLACE into another mailbox; with
    QRESYNC the old one goes as VANISHED"""
    s = setup(env, 2)
    lib.append(s, "INBOX", DRAFT, flags=["\\Draft"])
    s.ok("ENABLE QRESYNC")
    s.ok("SELECT INBOX")
    u, t, _ = replace(s, "UID REPLACE 3 Drafts (\\Draft)", NEW)
    assert lib.is_ok(t), t
    assert any(re.match(rb"\* OK \[APPENDUID \d+ 1\]", x) for x in u), u
    assert b"* VANISHED 3" in u, u
    st = lib.status_items(s.ok("STATUS Drafts (MESSAGES)"))
    assert st["MESSAGES"] == 1
    s.ok("SELECT Drafts")
    f = lib.fetches(s.ok("FETCH 1 (FLAGS BODY.PEEK[])"))
    assert f[1]["BODY[]"] == NEW
    assert lib.flagset(f[1]["FLAGS"]) == {"\\Draft"}


def test_replace_failures_keep_the_original(env):
    s = setup(env, 2)
    s.ok("SELECT INBOX")
    # no such mailbox: TRYCREATE, and message 2 stays
    u, t, asked = replace(s, "REPLACE 2 Nowhere", NEW)
    assert lib.is_no(t) and b"[TRYCREATE]" in t, t
    # a sequence number beyond the mailbox: refused before the literal
    u, t, asked = replace(s, "REPLACE 9 INBOX", NEW)
    assert lib.is_bad(t) and not asked, t
    u, t, asked = replace(s, "UID REPLACE 77 INBOX", NEW)
    assert lib.is_no(t) and not asked, t
    u, t, asked = replace(s, "REPLACE 1:2 INBOX", NEW)
    assert lib.is_bad(t) and not asked, t
    f = lib.fetches(s.ok("FETCH 1:* (UID)"))
    assert [int(d["UID"]) for d in f.values()] == [1, 2]
    st = lib.status_items(s.ok("STATUS Drafts (MESSAGES)"))
    assert st["MESSAGES"] == 0
    # read-only: nothing may be expunged
    s.ok("EXAMINE INBOX")
    u, t, asked = replace(s, "REPLACE 1 Drafts", NEW)
    assert lib.is_no(t) and b"[READ-ONLY]" in t and not asked, t
    assert lib.status_items(s.ok("STATUS Drafts (MESSAGES)"))["MESSAGES"] \
        == 0


def test_replace_literal8(env):
    """the new version may come as a literal8 (BINARY)"""
    s = setup(env, 1)
    s.ok("SELECT INBOX")
    tag = s.tag()
    s.send("%s REPLACE 1 INBOX ~{%d+}\r\n" % (tag, len(NEW)))
    s.send(NEW + b"\r\n")
    u, t = s.collect(tag)
    assert lib.is_ok(t), t
    f = lib.fetches(s.ok("FETCH 1 (UID BODY.PEEK[])"))
    assert int(f[1]["UID"]) == 2 and f[1]["BODY[]"] == NEW
