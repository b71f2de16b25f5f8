"""Fetch sections of nested messages (RFC 3501 6.4.5, RFC 3516), address
keys of SEARCH, and MIME edge cases, through the real imapd.  Where
Dovecot (dovecot-imapd) is the reference, every section form is fetched
from both and compared.
"""
import base64
import os

import lib
import test_mime as M

PNG = bytes(range(200))
ZIP = b"PK\x03\x04" + bytes(range(256)) * 2

# multipart/mixed -> (multipart/alternative -> text/plain, text/html)
#                    + a base64 attachment
NESTED = """From: Ann <ann@example.org>
To: Bob <bob@example.org>
Subject: nested
Content-Type: multipart/mixed; boundary="outer"

This is a multi-part message in MIME format.
--outer
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

plain caf=C3=A9
second line
--alt
Content-Type: text/html; charset=utf-8

<p>html</p>
--alt--
--outer
Content-Type: application/zip; name="a.zip"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="a.zip"

%s--outer--
""" % base64.encodebytes(ZIP).decode()

# depth 3: mixed -> (related -> (alternative -> plain, html) + image)
#                   + attachment
DEEP = """Subject: deep
Content-Type: multipart/mixed; boundary=b1

--b1
Content-Type: multipart/related; boundary=b2

--b2
Content-Type: multipart/alternative; boundary=b3

--b3
Content-Type: text/plain

deep plain
--b3
Content-Type: text/html

<b>deep html</b>
--b3--
--b2
Content-Type: image/png
Content-Transfer-Encoding: base64
Content-ID: <img1>

%s
--b2--
--b1
Content-Type: text/plain; name=notes.txt
Content-Disposition: attachment

notes
--b1--
""" % base64.b64encode(PNG).decode()

# message/rfc822 inside a multipart, with its own nested multipart and a
# message inside that
FORWARD = """Subject: fwd
Content-Type: multipart/mixed; boundary=o

--o
Content-Type: text/plain

see below
--o
Content-Type: message/rfc822
Content-Description: forwarded

From: Carl <carl@example.org>
Subject: inner
Content-Type: multipart/mixed; boundary=i

--i
Content-Type: multipart/alternative; boundary=a

--a
Content-Type: text/plain
Content-Transfer-Encoding: quoted-printable

inner=20plain
--a
Content-Type: text/html

<i>inner</i>
--a--
--i
Content-Type: message/rfc822

Subject: innermost
X-Depth: 3

innermost body
--i--
--o--
"""

MESSAGES = {"nested": NESTED, "deep": DEEP, "forward": FORWARD}


def with_crlf(text):
    return lib.crlf(text.encode())


def deliver_all(env, crlf):
    """the messages, LF or CRLF, in MESSAGES order; a session on them"""
    M.put(env, [with_crlf(m) if crlf else m.encode()
                for m in MESSAGES.values()])
    s = env.session()
    s.ok("SELECT INBOX")
    return s


def fetch(s, n, items):
    u = s.ok("FETCH %d (%s)" % (n, items))
    got = M.fetch_items(b"".join(x + b"\r\n" for x in u))[n]
    return {k: v[1] if isinstance(v, tuple) else v for k, v in got.items()}


def nl(text):
    """expected octets: every line end CRLF, as the client sees them"""
    return lib.crlf(text.encode())


def check_nested(s, n):
    got = fetch(s, n, "BODY.PEEK[1.1] BODY.PEEK[1.2] BODY.PEEK[1.1.MIME] "
                "BODY.PEEK[1.2.MIME] BODY.PEEK[1.1]<6.9> BINARY.PEEK[1.1] "
                "BINARY.SIZE[1.1] BINARY.PEEK[2] BINARY.SIZE[2] "
                "BODY.PEEK[1.1.HEADER] BODY.PEEK[1.1.TEXT] BODY.PEEK[1.3] "
                "BODY.PEEK[1.MIME]")
    assert got[b"BODY[1.1]"] == nl("plain caf=C3=A9\nsecond line"), got
    assert got[b"BODY[1.2]"] == b"<p>html</p>", got
    assert got[b"BODY[1.1.MIME]"] == nl(
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: quoted-printable\n\n"), got
    assert got[b"BODY[1.2.MIME]"] == nl(
        "Content-Type: text/html; charset=utf-8\n\n"), got
    assert got[b"BODY[1.1]<6>"] == b"caf=C3=A9", got
    assert got[b"BINARY[1.1]"] == nl("plain caf\u00e9\nsecond line"), got
    assert got[b"BINARY.SIZE[1.1]"] == b"24", got
    assert got[b"BINARY[2]"] == ZIP, got
    assert got[b"BINARY.SIZE[2]"] == str(len(ZIP)).encode(), got
    # a text part is no message: no header or text of its own
    assert got[b"BODY[1.1.HEADER]"] == b"", got
    assert got[b"BODY[1.1.TEXT]"] == b"", got
    assert got[b"BODY[1.3]"] == b"", got
    assert got[b"BODY[1.MIME]"].startswith(
        b"Content-Type: multipart/alternative"), got


def test_nested_multipart_sections(env):
    """BODY[1.1], BODY[1.2], BODY[1.1.MIME], partial and BINARY of parts
    inside a multipart inside a multipart, LF and CRLF files"""
    s = deliver_all(env, crlf=False)
    check_nested(s, 1)
    s.logout()
    for f in os.listdir(os.path.join(env.maildir, "cur")):
        os.unlink(os.path.join(env.maildir, "cur", f))
    s = deliver_all(env, crlf=True)
    check_nested(s, 1)
    s.logout()


def test_depth3_sections(env):
    for crlf in (False, True):
        s = deliver_all(env, crlf)
        n = 2
        got = fetch(s, n, "BODY.PEEK[1.1.1] BODY.PEEK[1.1.2] "
                    "BODY.PEEK[1.1.1.MIME] BODY.PEEK[1.1.MIME] "
                    "BODY.PEEK[1.2.MIME] BINARY.PEEK[1.2] BINARY.SIZE[1.2] "
                    "BODY.PEEK[1.1.2]<3.4> BODY.PEEK[2] BODY.PEEK[2.MIME] "
                    "BODY.PEEK[1.1.3] BODY.PEEK[1.1.1.1]")
        assert got[b"BODY[1.1.1]"] == b"deep plain", got
        assert got[b"BODY[1.1.2]"] == b"<b>deep html</b>", got
        assert got[b"BODY[1.1.1.MIME]"] == nl(
            "Content-Type: text/plain\n\n"), got
        assert got[b"BODY[1.1.MIME]"] == nl(
            "Content-Type: multipart/alternative; boundary=b3\n\n")
        assert got[b"BODY[1.2.MIME]"].endswith(
            nl("Content-ID: <img1>\n\n")), got
        assert got[b"BINARY[1.2]"] == PNG, got
        assert got[b"BINARY.SIZE[1.2]"] == b"200", got
        assert got[b"BODY[1.1.2]<3>"] == b"deep", got
        assert got[b"BODY[2]"] == b"notes", got
        assert got[b"BODY[2.MIME]"].startswith(b"Content-Type: text/plain;")
        assert got[b"BODY[1.1.3]"] == b"", got
        assert got[b"BODY[1.1.1.1]"] == b"", got
        s.logout()
        for f in os.listdir(os.path.join(env.maildir, "cur")):
            os.unlink(os.path.join(env.maildir, "cur", f))


def test_rfc822_in_multipart_sections(env):
    """every section form on a message/rfc822 part and on the parts of
    its nested multipart, down to a message inside that message"""
    s = deliver_all(env, crlf=False)
    n = 3
    got = fetch(s, n, "BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT]<0.5> "
                "BODY.PEEK[2.HEADER.FIELDS (SUBJECT)] "
                "BODY.PEEK[2.HEADER.FIELDS.NOT (SUBJECT CONTENT-TYPE)] "
                "BODY.PEEK[2.MIME] BODY.PEEK[2.1.1] BODY.PEEK[2.1.2] "
                "BODY.PEEK[2.1.1.MIME] BINARY.PEEK[2.1.1] BINARY.SIZE[2.1.1] "
                "BODY.PEEK[2.1.MIME] BODY.PEEK[2.2.HEADER] "
                "BODY.PEEK[2.2.TEXT] BODY.PEEK[2.2.1] "
                "BODY.PEEK[2.2.HEADER.FIELDS (X-DEPTH)] BODY.PEEK[2.2.MIME] "
                "BODY.PEEK[2.2.1.MIME] BODY.PEEK[2.2.1]<3.5>")
    assert got[b"BODY[2.HEADER]"] == nl(
        "From: Carl <carl@example.org>\nSubject: inner\n"
        "Content-Type: multipart/mixed; boundary=i\n\n"), got
    assert got[b"BODY[2.TEXT]<0>"] == nl("--i\n"), got
    assert got[b"BODY[2.HEADER.FIELDS (SUBJECT)]"] == nl(
        "Subject: inner\n\n"), got
    assert got[b"BODY[2.HEADER.FIELDS.NOT (SUBJECT CONTENT-TYPE)]"] == nl(
        "From: Carl <carl@example.org>\n\n"), got
    assert got[b"BODY[2.MIME]"] == nl(
        "Content-Type: message/rfc822\n"
        "Content-Description: forwarded\n\n"), got
    assert got[b"BODY[2.1.1]"] == b"inner=20plain", got
    assert got[b"BODY[2.1.2]"] == b"<i>inner</i>", got
    assert got[b"BODY[2.1.1.MIME]"] == nl(
        "Content-Type: text/plain\n"
        "Content-Transfer-Encoding: quoted-printable\n\n"), got
    assert got[b"BINARY[2.1.1]"] == b"inner plain", got
    assert got[b"BINARY.SIZE[2.1.1]"] == b"11", got
    assert got[b"BODY[2.1.MIME]"] == nl(
        "Content-Type: multipart/alternative; boundary=a\n\n"), got
    assert got[b"BODY[2.2.HEADER]"] == nl(
        "Subject: innermost\nX-Depth: 3\n\n"), got
    assert got[b"BODY[2.2.TEXT]"] == b"innermost body", got
    # the body of a message that is no multipart is its part 1
    assert got[b"BODY[2.2.1]"] == b"innermost body", got
    assert got[b"BODY[2.2.HEADER.FIELDS (X-DEPTH)]"] == nl(
        "X-Depth: 3\n\n"), got
    assert got[b"BODY[2.2.MIME]"] == nl("Content-Type: message/rfc822\n\n")
    # ... and its MIME header is the header of that message
    assert got[b"BODY[2.2.1.MIME]"] == got[b"BODY[2.2.HEADER]"], got
    assert got[b"BODY[2.2.1]<3>"] == b"ermos", got
    s.logout()


# --- the same against Dovecot ------------------------------------------

FORMS = ("BODY.PEEK[%s]", "BODY.PEEK[%s.MIME]", "BODY.PEEK[%s.HEADER]",
         "BODY.PEEK[%s.TEXT]", "BODY.PEEK[%s.HEADER.FIELDS (SUBJECT FROM)]",
         "BODY.PEEK[%s.HEADER.FIELDS.NOT (SUBJECT)]", "BODY.PEEK[%s]<3.7>",
         "BINARY.PEEK[%s]", "BINARY.SIZE[%s]")


def part_paths(bs, prefix=""):
    """the part numbers of a BODYSTRUCTURE, with whether each is a leaf
    that is no message (BINARY decodes it)"""
    out = []
    if isinstance(bs[0], list):
        for i, sub in enumerate(x for x in bs if isinstance(x, list)):
            if not isinstance(sub, list) or not sub:
                break
            path = "%s%d" % (prefix, i + 1)
            out += [(path, _is_leaf(sub))] + part_paths(sub, path + ".")
        return out
    if _type(bs) == (b"message", b"rfc822"):
        inner = bs[8]
        if isinstance(inner[0], list):
            return part_paths(inner, prefix)
        return [(prefix + "1", _is_leaf(inner))]
    return []


def _type(bs):
    return (bs[0][1].lower(), bs[1][1].lower())


def _is_leaf(bs):
    return not isinstance(bs[0], list) and _type(bs) != (b"message",
                                                         b"rfc822")


def test_sections_match_dovecot(env):
    """every section form of every part of the nested messages, LF and
    CRLF, answered as Dovecot answers it.  Left out where RFC 3501 and
    RFC 3516 leave the answer open and the two differ: BINARY of a
    multipart or message/rfc822 part (Dovecot decodes the parts inside and
    rewrites their headers; such a part has no transfer encoding of its
    own, RFC 2045 6.4, so imapd sends it as it is), and part 1 of a leaf
    part (Dovecot answers the leaf; imapd nothing, as only a message has a
    part 1 of its own)."""
    msgs = [m.encode() for m in MESSAGES.values()]
    msgs += [with_crlf(m) for m in MESSAGES.values()]
    dmail = os.path.join(env.dir, "dovecot", "Maildir")
    for d in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(dmail, d))
    M.put(env, msgs)
    M.put(env, msgs, dmail)
    s = env.session()
    s.ok("SELECT INBOX")
    compared = 0
    for n in range(1, len(msgs) + 1):
        bs = fetch(s, n, "BODYSTRUCTURE")[b"BODYSTRUCTURE"]
        cmds = []
        for path, leaf in part_paths(bs) + [("9", True)]:
            forms = FORMS if leaf else FORMS[:-2]
            cmds.append("FETCH %d (%s)" % (n, " ".join(f % path
                                                     for f in forms)))
        raw = b""
        for c in cmds:
            u, t = s.cmd(c)
            assert b" OK" in t, (c, t)
            raw += b"".join(x + b"\r\n" for x in u)
        mine = M.fetch_items(raw)[n]
        theirs = M.fetch_items(lib.dovecot_pipelined(env, dmail, cmds))[n]
        theirs.pop(b"FLAGS", None)
        assert set(mine) == set(theirs), set(mine) ^ set(theirs)
        for k in theirs:
            assert mine[k] == theirs[k], (n, k, mine[k], theirs[k])
            compared += 1
    print("%d section answers identical to Dovecot" % compared)
    assert compared > 300, compared
    s.logout()


# --- SEARCH on addresses ---------------------------------------------------

def test_search_matches_parsed_addresses(env):
    """FROM/TO/CC/BCC find an address as ENVELOPE shows it (display name
    decoded, mailbox@host as one string), not only in the raw header"""
    env.deliver("From: <user-from (comment)@ (comment) domain.org>\n"
                "To: \"Doe, John\" <john (x) . doe@example.com>\n"
                "Cc: =?utf-8?q?J=C3=BCrgen?= <juergen@x.de>, group: "
                "g1@y.org;\n"
                "Bcc: fold@\n example.net\nSubject: one\n\nbody\n")
    env.deliver("From: other@domain.org\nTo: undisclosed-recipients:;\n"
                "Subject: two\n\nbody\n")
    s = env.session()
    s.ok("SELECT INBOX")
    search = M.search
    assert search(s, None, "FROM", b"user-from@domain.org") == [1]
    assert search(s, None, "FROM", b"(comment)") == [1]       # raw text
    assert search(s, None, "FROM", b"@domain.org") == [1, 2]
    assert search(s, None, "TO", b"john.doe@example.com") == [1]
    assert search(s, None, "TO", b"Doe, John <john.doe@example") == [1]
    assert search(s, "UTF-8", "CC", "jürgen <juergen@x.de>".encode()) == [1]
    assert search(s, None, "CC", b"g1@y.org") == [1]
    assert search(s, None, "BCC", b"fold@example.net") == [1]
    # no placeholder for what the header lacks, no match across fields
    assert search(s, None, "TO", b"MISSING_DOMAIN") == []
    assert search(s, None, "TO", b"undisclosed-recipients") == [2]
    assert search(s, None, "FROM", b"john.doe") == []
    s.logout()


# --- ENVELOPE addresses, parameters and part ends (corpus cases) -----------

def dovecot_items(env, msgs, items):
    """FETCH 1:* (items) from Dovecot over the same messages"""
    dmail = os.path.join(env.dir, "dovecot", "Maildir")
    for d in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(dmail, d), exist_ok=True)
    M.put(env, msgs, dmail)
    return M.fetch_items(lib.dovecot_pipelined(env, dmail,
                                               ["FETCH 1:* (%s)" % items]))


ADDRESSES = [
    # a domain ends before the next word (RFC 5322 3.4.1): the list stops
    ("tim@powerupdev.com concierge@powerupdev.com",
     [[b"NIL", b"NIL", b"tim", b"powerupdev.com"]]),
    ("a@b, c@d e@f", [[b"NIL", b"NIL", b"a", b"b"],
                      [b"NIL", b"NIL", b"c", b"d"]]),
    # inside <> anything but an addr-spec is a syntax error, and says so
    ("<Undisclosed Recipients>",
     [[b"NIL", b"NIL", b"Undisclosed", b"SYNTAX_ERROR"]]),
    ("<Undisclosed-Recipient:@mailman.enron.com;>",
     [[b"NIL", b"NIL", b"Undisclosed-Recipient", b"SYNTAX_ERROR"]]),
    ("<john@>", [[b"NIL", b"NIL", b"john", b"SYNTAX_ERROR"]]),
    ("<a@b c>", [[b"NIL", b"NIL", b"a", b"SYNTAX_ERROR"]]),
    ("<john>", [[b"NIL", b"NIL", b"john", b"MISSING_DOMAIN"]]),
    ("john doe@x.org",
     [[b"john doe", b"NIL", b"MISSING_MAILBOX", b"MISSING_DOMAIN"]]),
]
# RFC 5322 4.4 (obs-local-part, obs-domain): white space and comments
# around the dots are no part of the address.  Dovecot reads these as
# a display name or a syntax error; imapd as the address they are.
OBSOLETE = [
    ("john . doe @ example . com",
     [[b"NIL", b"NIL", b"john.doe", b"example.com"]]),
    ("\"Doe, John\" <john (x) . doe@example . com>",
     [[b"Doe, John", b"NIL", b"john.doe", b"example.com"]]),
]


def plain(v):
    """a parsed value with strings as bytes"""
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v[1] if isinstance(v, tuple) else v


def test_envelope_address_syntax(env):
    cases = ADDRESSES + OBSOLETE
    msgs = [("To: %s\nSubject: %d\n\nx\n" % (a, i)).encode()
            for i, (a, _) in enumerate(cases)]
    M.put(env, msgs)
    s = env.session()
    s.ok("SELECT INBOX")
    u = s.ok("FETCH 1:* ENVELOPE")
    s.logout()
    mine = M.fetch_items(b"".join(x + b"\r\n" for x in u))
    theirs = dovecot_items(env, msgs, "ENVELOPE")
    for i, (addr, want) in enumerate(cases, 1):
        got = plain(mine[i][b"ENVELOPE"][5])
        assert got == want, (addr, got)
        if i <= len(ADDRESSES):
            assert mine[i][b"ENVELOPE"] == theirs[i][b"ENVELOPE"], addr


def test_parameter_after_missing_semicolon(env):
    """RFC 2046 5.2.3.7's own example lacks a ";": the parameters after
    the unreadable one are kept"""
    msg = ("Subject: x\nContent-Type: multipart/alternative; boundary=b\n\n"
           "--b\nContent-Type: message/external-body;\n"
           "    access-type=mail-server\n"
           "    server=\"listserv@bogus.bitnet\";\n"
           "    expiration=\"Fri, 14 Jun 1991 19:13:14 -0400 (EDT)\"\n\n"
           "Content-type: application/postscript\n\nget rfc-mime\n"
           "--b\nContent-Type: text/plain; a=1 junk \"q;x\"; b=2\n\ny\n"
           "--b--\n").encode()
    M.put(env, [msg])
    s = env.session()
    s.ok("SELECT INBOX")
    bs = fetch(s, 1, "BODYSTRUCTURE")[b"BODYSTRUCTURE"]
    s.logout()
    assert plain(bs[0][2]) == [
        b"access-type", b"mail-server", b"expiration",
        b"Fri, 14 Jun 1991 19:13:14 -0400 (EDT)"], bs[0]
    assert plain(bs[1][2]) == [b"a", b"1", b"b", b"2", b"charset",
                               b"us-ascii"], bs[1]
    theirs = dovecot_items(env, [msg], "BODYSTRUCTURE")[1]
    assert theirs[b"BODYSTRUCTURE"][0] == bs[0], theirs


# the line end before a delimiter belongs to the delimiter (RFC 2046
# 5.1.1), also when it ends a header or the blank line after one
PART_ENDS = [
    # an empty part: its MIME header without the blank line
    "Subject: 1\nContent-Type: multipart/mixed; boundary=b\n\n"
    "--b\nContent-Type: text/plain\nContent-Transfer-Encoding: 7bit\n\n"
    "--b\nContent-Type: text/plain\n\nsecond\n--b--\n",
    # a header that an enclosing delimiter ends ("a" is a prefix of the
    # "ab" it announces): no body, so no parts; "--ab" delimits "a"
    "Subject: 2\nContent-Type: multipart/mixed; boundary=\"a\"\n\n"
    "--a\nContent-Type: multipart/mixed; boundary=\"ab\"\nMIME-Version: 1.0\n"
    "--ab\nContent-Type: text/plain\n\n--ab--\n--a--\n",
    # the same after a blank line, the outer boundary the longer one
    "Subject: 3\nContent-Type: multipart/mixed; boundary=\"ab\"\n\n"
    "--ab\nContent-Type: multipart/mixed; boundary=\"a\"\n\n"
    "--ab\nContent-Type: text/plain\n\n--a\n\nx\n--ab--\n",
    # the inner boundary the longer one: its own first delimiter
    "Subject: 4\nContent-Type: multipart/mixed; boundary=a\n\n"
    "--a\nContent-Type: multipart/mixed; boundary=ab\n\n--ab\n\nx\n--ab--\n"
    "--a\n\ny\n--a--\n",
]


def test_part_ends_at_delimiters(env):
    msgs = [m.encode() for m in PART_ENDS] + [with_crlf(m)
                                              for m in PART_ENDS]
    items = ("BODYSTRUCTURE BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[2] "
             "BODY.PEEK[2.MIME] BODY.PEEK[3] BODY.PEEK[1.1]")
    M.put(env, msgs)
    s = env.session()
    s.ok("SELECT INBOX")
    u = s.ok("FETCH 1:* (%s)" % items)
    s.logout()
    mine = M.fetch_items(b"".join(x + b"\r\n" for x in u))
    for n in (1, 5):
        assert mine[n][b"BODY[1.MIME]"][1] == (
            b"Content-Type: text/plain\r\nContent-Transfer-Encoding: "
            b"7bit\r\n"), mine[n]
        assert mine[n][b"BODY[1]"][1] == b"", mine[n]
        assert mine[n][b"BODY[2]"][1] == b"second", mine[n]
    for n in (2, 6):
        bs = mine[n][b"BODYSTRUCTURE"]
        assert [isinstance(p, list) for p in bs[:4]] == [True] * 3 + [False]

        assert mine[n][b"BODY[1.MIME]"][1].endswith(b"MIME-Version: 1.0")
        assert mine[n][b"BODY[1]"][1] == b"", mine[n]
    for n in (4, 8):
        assert mine[n][b"BODY[1.1]"][1] == b"x", mine[n]
        assert mine[n][b"BODY[2]"][1] == b"y", mine[n]
    theirs = dovecot_items(env, msgs, items.replace(".PEEK", ""))
    for n in mine:
        mine[n].pop(b"FLAGS", None)
        theirs[n].pop(b"FLAGS", None)
        assert mine[n] == theirs[n], (n, mine[n], theirs[n])
