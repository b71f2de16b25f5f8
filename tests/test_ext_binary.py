"""BINARY (RFC 3516): APPEND of a literal8 (~{n}), the only place a NUL
may come in; parts holding NULs stored in base64 and handed back exact by
FETCH BINARY; [UNKNOWN-CTE] and [UNAVAILABLE].  Compared with Dovecot."""
import base64
import os
import re

import lib
import refimap

SINGLE = (b"From: a@example.org\r\nSubject: single\r\n"
          b"Content-Type: application/octet-stream\r\n"
          b"Content-Transfer-Encoding: binary\r\n\r\n"
          b"ab\x00cd\x00\xff\xfe\r\nend\r\n")
ATTACH = bytes(range(256)) * 3
MULTI = (b"From: a@example.org\r\nSubject: multi\r\nMIME-Version: 1.0\r\n"
         b"Content-Type: multipart/mixed; boundary=\"xyz\"\r\n\r\n"
         b"preamble\r\n--xyz\r\nContent-Type: text/plain\r\n\r\n"
         b"hello \xc3\xa9\r\n--xyz\r\nContent-Type: image/png\r\n"
         b"Content-Transfer-Encoding: binary\r\n\r\n" + ATTACH +
         b"\r\n--xyz--\r\nepilogue\r\n")
EIGHTBIT = (b"From: a@example.org\r\nSubject: 8bit\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9\r\n")


def lit8(data):
    return ("lit8", data)


def append8(s, data, mailbox="INBOX", extra=""):
    """APPEND mailbox [extra] ~{n} with a synchronizing literal8"""
    tag = s.tag()
    s.send("%s APPEND %s %s~{%d}\r\n" % (tag, mailbox, extra, len(data)))
    ln = s.line()
    if not ln.startswith(b"+"):
        return [], ln
    s.send(data + b"\r\n")
    return s.collect(tag)


def fetch1(s, n, items):
    u = s.ok("FETCH %d (%s)" % (n, items))
    return lib.fetches(u)[n]


def test_binary_capability(env):
    s = env.session()
    assert "BINARY" in lib.caps_of(s.ok("CAPABILITY")[0])


def test_binary_append_single_part(env):
    s = env.session()
    u, t = append8(s, SINGLE)
    assert lib.is_ok(t) and b"[APPENDUID " in t, t
    s.ok("SELECT INBOX")
    d = fetch1(s, 1, "BINARY.PEEK[1] BINARY.SIZE[1] BODY.PEEK[] "
               "BODYSTRUCTURE")
    body = SINGLE.split(b"\r\n\r\n", 1)[1]
    assert d["BINARY[1]"] == body
    assert int(d["BINARY.SIZE[1]"]) == len(body)
    assert b"\x00" not in d["BODY[]"]
    assert b"Content-Transfer-Encoding: base64" in d["BODY[]"]
    assert b"binary" not in d["BODY[]"].lower().split(b"\r\n\r\n")[0]
    assert str(d["BODYSTRUCTURE"][5]).upper() == "BASE64" or \
        d["BODYSTRUCTURE"][5].upper() == b"BASE64", d["BODYSTRUCTURE"]
    # the literal8 form is used for content with a NUL
    u = s.ok("FETCH 1 (BINARY.PEEK[1])")
    assert re.search(rb"BINARY\[1\] ~\{%d\}" % len(body), u[0]), u


def test_binary_append_multipart(env):
    s = env.session()
    u, t = append8(s, MULTI, extra="(\\Seen) ")
    assert lib.is_ok(t), t
    s.ok("SELECT INBOX")
    d = fetch1(s, 1, "BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[1] "
               "BODY.PEEK[1] BODY.PEEK[2] BODYSTRUCTURE FLAGS")
    assert d["BINARY[2]"] == ATTACH
    assert int(d["BINARY.SIZE[2]"]) == len(ATTACH)
    assert d["BODY[1]"] == b"hello \xc3\xa9"
    assert d["BINARY[1]"] == b"hello \xc3\xa9"
    assert base64.b64decode(d["BODY[2]"]) == ATTACH
    parts = d["BODYSTRUCTURE"]
    assert parts[1][5].upper() == b"BASE64", parts
    assert "\\Seen" in lib.flagset(d["FLAGS"])
    whole = fetch1(s, 1, "BODY.PEEK[]")["BODY[]"]
    assert b"preamble\r\n--xyz\r\n" in whole and whole.endswith(
        b"--xyz--\r\nepilogue\r\n"), whole[-80:]


def test_binary_append_without_nul_is_kept_exact(env):
    s = env.session()
    u, t = append8(s, EIGHTBIT)
    assert lib.is_ok(t), t
    s.ok("SELECT INBOX")
    d = fetch1(s, 1, "BODY.PEEK[] BINARY.PEEK[1] RFC822.SIZE")
    assert d["BODY[]"] == EIGHTBIT
    assert d["BINARY[1]"] == b"caf\xc3\xa9\r\n"
    assert int(d["RFC822.SIZE"]) == len(EIGHTBIT)


def test_binary_nul_only_in_literal8(env):
    """a NUL in an ordinary literal is refused and nothing is stored"""
    s = env.session()
    u, t = lib.append(s, "INBOX", SINGLE)
    assert lib.is_bad(t) and b"literal8" in t, t
    u, t = lib.append(s, "INBOX", SINGLE, plus=True)
    assert lib.is_bad(t), t
    st = lib.status_items(s.ok("STATUS INBOX (MESSAGES)"))
    assert st["MESSAGES"] == 0
    assert not [f for f in os.listdir(os.path.join(env.maildir, "tmp"))]
    s.ok("NOOP")


def test_binary_multiappend_mixed(env):
    """MULTIAPPEND with a literal and a literal8: both, or none"""
    s = env.session()
    plain = lib.make_msg("plain", eol="\r\n")
    tag = s.tag()
    s.send("%s APPEND INBOX {%d+}\r\n" % (tag, len(plain)))
    s.send(plain + b" ~{%d+}\r\n" % len(SINGLE) + SINGLE + b"\r\n")
    u, t = s.collect(tag)
    assert lib.is_ok(t) and re.search(rb"APPENDUID \d+ 1:2", t), t
    s.ok("SELECT INBOX")
    d = lib.fetches(s.ok("FETCH 1:2 (BINARY.PEEK[1])"))
    assert d[1]["BINARY[1]"] == b"hello\r\n"
    assert d[2]["BINARY[1]"] == SINGLE.split(b"\r\n\r\n", 1)[1]


def test_binary_unknown_cte(env):
    env.deliver(b"From: a@example.org\r\nSubject: odd\r\n"
                b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 a\r\n")
    s = env.session()
    s.ok("SELECT INBOX")
    s.no("FETCH 1 (BINARY.PEEK[1])", "UNKNOWN-CTE")
    s.no("FETCH 1 (BINARY.SIZE[1])", "UNKNOWN-CTE")
    d = fetch1(s, 1, "BODY.PEEK[1]")
    assert d["BODY[1]"] == b"begin 644 a\r\n"


def test_binary_unavailable(env):
    """a message file imapd may not read: NO [UNAVAILABLE], not a claim
    that it was expunged"""
    path = env.deliver(lib.make_msg("locked"), flags="")
    s = env.session()
    s.ok("SELECT INBOX")
    os.chmod(path, 0)
    try:
        s.no("FETCH 1 (BINARY.PEEK[1])", "UNAVAILABLE")
        s.no("FETCH 1 (BODY.PEEK[])", "UNAVAILABLE")
    finally:
        os.chmod(path, 0o600)
    d = fetch1(s, 1, "BINARY.PEEK[1]")
    assert d["BINARY[1]"] == b"hello\n" or d["BINARY[1]"] == b"hello\r\n"


def test_binary_matches_dovecot(env):
    """the same literal8 APPENDs into imapd and Dovecot: the decoded
    parts, their sizes and the refusals agree"""
    dmail = refimap.copy_maildir(env)
    msgs = [SINGLE, MULTI, EIGHTBIT]
    cmds = [b"APPEND INBOX ~{%d+}\r\n" % len(m) + m for m in msgs]
    items = ("BINARY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[2] BINARY.SIZE[2] "
             "BINARY.PEEK[]")
    cmds += ["SELECT INBOX", "FETCH 1:3 (%s)" % items,
             "FETCH 2 (BINARY.PEEK[3])", "FETCH 1 (BINARY.PEEK[1]<2.4>)"]
    dv = refimap.run(env, dmail, cmds)
    s = env.session()
    ours = refimap.imapd(s, cmds)
    for c, (du, dt), (ou, ot) in zip(cmds, dv, ours):
        assert refimap.status(dt) == refimap.status(ot), (c[:30], dt, ot)
    df, of = lib.fetches(dv[4][0]), lib.fetches(ours[4][0])
    for n in (1, 2, 3):
        for k in ("BINARY[1]", "BINARY.SIZE[1]", "BINARY[2]",
                  "BINARY.SIZE[2]"):
            assert df[n].get(k) == of[n].get(k), (n, k, df[n].get(k),
                                                  of[n].get(k))
    assert lib.fetches(dv[6][0]) == lib.fetches(ours[6][0])
