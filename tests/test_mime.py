"""Message content: ENVELOPE, BODY/BODYSTRUCTURE, sections, BINARY and the
content keys of SEARCH, through the real imapd.  Dovecot (Debian package
dovecot-imapd) is the reference: the shared corpus is fetched from both
and compared item by item.
"""
import base64
import glob
import os
import random
import re
import subprocess
import time

import lib

FUZZ = os.path.join(lib.ROOT, "fuzz", "fuzz_mime")
REGRESS = os.path.join(lib.ROOT, "fuzz", "regress")

# The differences from Dovecot that remain, by corpus file and the items
# that differ, each decided against the RFCs.  Everything else must match
# byte for byte (strings compared by value, so quoted vs literal does not
# matter).
_DELIM_CRLF_MULTI = (
    "A multipart that an enclosing multipart's delimiter ends, without a "
    "close delimiter of its own: the line end before that delimiter "
    "belongs to the delimiter (RFC 2046 5.1.1) for every part it ends; "
    "Dovecot gives it to the inner multipart's body.")
_DELIM_CRLF_MESSAGE = (
    "A message/rfc822 part whose message has a header and no body, right "
    "before a delimiter: the line end before the delimiter belongs to the "
    "delimiter (RFC 2046 5.1.1), so the part is one line end shorter than "
    "Dovecot counts it.  Dovecot leaves that line end out of the inner "
    "BODY[n.HEADER] and of BODY[1.MIME] of a part that ends the same way "
    "(thirdparty/011.eml), so its BODY[n] is longer than BODY[n.HEADER] "
    "plus BODY[n.TEXT]; ours is their sum.")
_LONG_BOUNDARY = (
    "Boundaries longer than RFC 2046's 70 characters: Dovecot compares "
    "only a prefix, so a line lacking the boundary's last character, or "
    "another boundary's delimiter, counts as a delimiter; we compare the "
    "whole boundary as RFC 2046 5.1.1 defines the delimiter line, and the "
    "longest open boundary that matches wins.  The mime4j test message "
    "itself says that line is body text.")
DIFFERENCES = {
    "mime4j/mimetools/double-semicolon.eml": (
        "BODYSTRUCTURE BODY BODY[1] BODY[1.MIME] BINARY[1] BINARY.SIZE[1]",
        "Content-Type: multipart/alternative;; boundary=foo.  Dovecot drops "
        "every parameter after \";;\" and shows no parts; RFC 2045 5.1 has "
        "no empty parameter, and skipping it keeps the boundary, so both "
        "alternatives show, as in Thunderbird."),
    "mime4j/testmsgs/very-long-boundary.eml": (
        "BODYSTRUCTURE BODY BODY[1] BINARY[1] BINARY.SIZE[1]",
        _LONG_BOUNDARY),
    "mime4j/testmsgs/very-very-long-boundary.eml": (
        "BODYSTRUCTURE BODY BODY[1] BINARY[1] BINARY.SIZE[1]",
        _LONG_BOUNDARY),
    "stalwart-mail-parser/malformed/016.eml": (
        "BODYSTRUCTURE BODY BODY[1]", _LONG_BOUNDARY),
    "mime4j/mimetools/hdr-fakeout.eml": (
        "BODYSTRUCTURE BODY",
        "Content-Transfer-Encoding: 7BIT in a header that never ends: "
        "Dovecot writes \"7bit\" in this message only; the value is case-"
        "insensitive (RFC 2045 6.1) and we pass it as written, as Dovecot "
        "does in every other message."),
    "mime4j/mimetools/multi-digest.eml": (
        "BODYSTRUCTURE BODY",
        "Content-type: text (no subtype) inside a message/rfc822: Dovecot "
        "answers \"text\" \"\" with a charset here, but \"\" \"\" NIL for "
        "the same header at the top (cpython/msg_14.eml); we answer every "
        "unreadable Content-Type (RFC 2045 5.1) the same way, \"\" \"\"."),
    "cpython/msg_38.eml": ("BODY[1]", _DELIM_CRLF_MULTI),
    "stalwart-mail-parser/malformed/020.eml": ("BODY[1]", _DELIM_CRLF_MULTI),
    "stalwart-mail-parser/malformed/021.eml": ("BODY[1]", _DELIM_CRLF_MULTI),
    "ruby-mail/attachment_emails/attachment_message_rfc822_inline_image.eml":
        ("BODYSTRUCTURE BODY", _DELIM_CRLF_MESSAGE),
    "stalwart-mail-parser/malformed/022.eml":
        ("BODYSTRUCTURE BODY", _DELIM_CRLF_MESSAGE),
    "stalwart-mail-parser/rfc/008.eml":
        ("BODYSTRUCTURE BODY", _DELIM_CRLF_MESSAGE),
    "stalwart-mail-parser/thirdparty/015.eml":
        ("BODYSTRUCTURE BODY", _DELIM_CRLF_MESSAGE),
}
# Also left out of the comparison (compare()): BINARY of a multipart or
# message/rfc822 part.  Dovecot decodes every nested part and rewrites
# its headers; such a part has no transfer encoding of its own (RFC 2045
# 6.4), so we send it as it is (RFC 3516 decodes the part's own
# Content-Transfer-Encoding).

FETCH_ITEMS = ("RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY BODY.PEEK[1] "
               "BODY.PEEK[1.MIME] BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)] "
               "BODY.PEEK[TEXT]<0.100> BODY.PEEK[]")
KEYS = (b"RFC822.SIZE", b"ENVELOPE", b"BODYSTRUCTURE", b"BODY", b"BODY[1]",
        b"BODY[1.MIME]", b"BODY[HEADER.FIELDS (FROM SUBJECT)]",
        b"BODY[TEXT]<0>", b"BINARY[1]", b"BINARY.SIZE[1]")


def corpus_files():
    files = sorted(glob.glob(os.path.join(lib.CORPUS, "**", "*.eml"),
                             recursive=True))
    if not files:
        raise lib.Skip("no corpus at %s" % lib.CORPUS)
    return files


# --- a small reader of FETCH responses --------------------------------

class _Reader:
    ATOM = re.compile(rb"[^ ()\r\n\[]+(\[[^\]]*\](<\d+>)?)?")
    LIT = re.compile(rb"~?\{(\d+)\}\r\n")

    def __init__(self, data):
        self.d, self.i = data, 0

    def value(self):
        while self.d[self.i:self.i + 1] == b" ":
            self.i += 1
        c = self.d[self.i:self.i + 1]
        if c == b"(":
            self.i += 1
            out = []
            while True:
                while self.d[self.i:self.i + 1] == b" ":
                    self.i += 1
                if self.d[self.i:self.i + 1] == b")":
                    self.i += 1
                    return out
                out.append(self.value())
        if c == b'"':
            self.i += 1
            out = bytearray()
            while self.d[self.i:self.i + 1] != b'"':
                if self.d[self.i:self.i + 1] == b"\\":
                    self.i += 1
                out += self.d[self.i:self.i + 1]
                self.i += 1
            self.i += 1
            return ("S", bytes(out))
        m = self.LIT.match(self.d, self.i)
        if m:
            n = int(m.group(1))
            self.i = m.end() + n
            return ("S", self.d[m.end():self.i])
        m = self.ATOM.match(self.d, self.i)
        assert m and m.end() > self.i, self.d[self.i:self.i + 80]
        self.i = m.end()
        return m.group(0)


def fetch_items(data):
    """{msgno: {item: value}} from the raw bytes of a session"""
    out = {}
    pos = 0
    fetch = re.compile(rb"\* (\d+) FETCH ")
    while True:
        m = fetch.search(data, pos)
        if not m:
            return out
        r = _Reader(data)
        r.i = m.end()
        try:
            lst = r.value()
        except (AssertionError, IndexError):
            raise ValueError("cut short: %r" % data[m.start():][-300:])
        items = out.setdefault(int(m.group(1)), {})
        for k in range(0, len(lst) - 1, 2):
            items[lst[k].upper()] = lst[k + 1]
        pos = r.i


def parse_value(text):
    return _Reader(text).value()


# --- the two servers ----------------------------------------------------

def dovecot_fetch(env, maildir, count):
    """FETCH everything from Dovecot: one session for all the commands,
    and a new one from the next command whenever a session stops short
    (on a loaded machine, or with BYE on the BINARY of some malformed
    parts).  A command that ends three sessions goes unanswered."""
    cmds = []
    for i in range(1, count + 1):
        cmds += ["FETCH %d (%s)" % (i, FETCH_ITEMS),
                 "FETCH %d (BINARY.PEEK[1])" % i,
                 "FETCH %d (BINARY.SIZE[1])" % i]
    out = {i: {} for i in range(1, count + 1)}
    pos, tries = 0, 0
    while pos < len(cmds):
        # after a session that answered nothing, the next command alone
        data = lib.dovecot_pipelined(env, maildir, cmds[pos:pos + 1]
                                     if tries else cmds[pos:])
        # Dovecot runs pipelined commands together: the tagged answers
        # may come in any order
        answered, end = set(), 0
        for m in re.finditer(rb"(?<=\n)c(\d+) [^\r\n]*\r\n", data):
            answered.add(int(m.group(1)))
            end = m.end()
        done = 0
        while done in answered:
            done += 1
        for i, items in fetch_items(data[:end]).items():
            out[i].update(items)
        tries = tries + 1 if not done else 0
        if tries == 3:
            done, tries = 1, 0
        pos += done
    return out


def imapd_fetch(env, count):
    s = env.session()
    s.ok("SELECT INBOX")
    raw = b""
    for i in range(1, count + 1):
        for cmd in ("FETCH %d (%s)" % (i, FETCH_ITEMS),
                    "FETCH %d (BINARY.PEEK[1])" % i,
                    "FETCH %d (BINARY.SIZE[1])" % i):
            u, t = s.cmd(cmd)
            raw += b"".join(x + b"\r\n" for x in u)
    s.logout()
    return fetch_items(raw)


def leaf_part1(bs):
    """is part 1 a leaf (BINARY of it is decoded) in this BODYSTRUCTURE"""
    p1 = bs[0] if isinstance(bs, list) and bs and isinstance(bs[0], list) \
        else bs
    if not isinstance(p1, list) or not p1 or isinstance(p1[0], list):
        return False
    t = (p1[0][1].lower(), p1[1][1].lower()) if isinstance(p1[0], tuple) \
        else (b"", b"")
    return t != (b"message", b"rfc822")


def compare(dv, me):
    """the items that differ; BINARY only for a leaf part 1 that Dovecot
    could decode (Dovecot leaves out BINARY.SIZE after some BINARY
    fetches: its length is the reference then)"""
    dv, me = dict(dv), dict(me)
    if not leaf_part1(dv.get(b"BODYSTRUCTURE")) or b"BINARY[1]" not in dv:
        for k in (b"BINARY[1]", b"BINARY.SIZE[1]"):
            dv.pop(k, None)
            me.pop(k, None)
    elif b"BINARY.SIZE[1]" not in dv:
        dv[b"BINARY.SIZE[1]"] = str(len(dv[b"BINARY[1]"][1])).encode()
    return [k.decode() for k in KEYS if dv.get(k) != me.get(k)]


def put(env, messages, maildir=None):
    """messages into cur/ under names that sort in list order, as imapd
    and Dovecot both number messages by file name"""
    md = maildir or env.maildir
    for i, data in enumerate(messages):
        if isinstance(data, str):
            data = data.encode()
        name = "%d.M%dP1.test:2,S" % (1000000000 + i, i)
        path = os.path.join(md, "cur", name)
        with open(path, "wb") as fh:
            fh.write(data)
        os.utime(path, (1000000000 + i, 1000000000 + i))
    env.fix_owner()


def load_corpus(env, files):
    """the corpus into imapd's Maildir and a copy for Dovecot, in the same
    order (both sort these names the same way)"""
    dmail = os.path.join(env.dir, "dovecot", "Maildir")
    for d in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(dmail, d))
    data = []
    for f in files:
        with open(f, "rb") as fh:
            data.append(fh.read())
    put(env, data)
    put(env, data, dmail)
    return dmail


def test_corpus_matches_dovecot(env):
    files = corpus_files()
    dmail = load_corpus(env, files)
    dv = dovecot_fetch(env, dmail, len(files))
    me = imapd_fetch(env, len(files))
    # the same message at the same number on both sides
    same, unexpected, listed = 0, [], set()
    for i, f in enumerate(files, 1):
        assert dv[i].get(b"BODY[]") == me[i].get(b"BODY[]"), f
        rel = os.path.relpath(f, lib.CORPUS)
        diff = compare(dv[i], me[i])
        if not diff:
            same += 1
            continue
        allowed = DIFFERENCES.get(rel, ("", ""))[0].split()
        if not set(diff) <= set(allowed):
            unexpected.append((rel, diff))
        else:
            listed.add(rel)
    print("corpus: %d/%d messages identical to Dovecot, %d differ as "
          "listed" % (same, len(files), len(listed)))
    assert not unexpected, unexpected[:10]
    # a listed difference that went away is taken off the list
    gone = set(DIFFERENCES) - listed
    assert not gone, sorted(gone)


def test_corpus_parses(env):
    """every corpus message: the structure items and whole sections come
    back, BODY[] is the file with CRLF line ends, RFC822.SIZE its length"""
    files = corpus_files()
    data = []
    for f in files:
        with open(f, "rb") as fh:
            data.append(fh.read())
    put(env, data)
    s = env.session()
    s.ok("SELECT INBOX")
    for i, f in enumerate(files, 1):
        u = s.ok("FETCH %d (RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY "
                 "BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT] "
                 "BODY.PEEK[1] BODY.PEEK[2.1.MIME])" % i)
        items = fetch_items(b"".join(x + b"\r\n" for x in u))[i]
        with open(f, "rb") as fh:
            want = lib.crlf(fh.read()).replace(b"\0", b"\x80")
        assert items[b"BODY[]"][1] == want, f
        assert int(items[b"RFC822.SIZE"]) == len(want), f
        hdr, text = items[b"BODY[HEADER]"][1], items[b"BODY[TEXT]"][1]
        assert hdr + text == want, f
    s.logout()


# --- RFC 3501 vectors (Dovecot's and imaptest's test data) -------------

def fetch1(env, data, items):
    env.deliver(data)
    s = env.session()
    s.ok("SELECT INBOX")
    u = s.ok("FETCH 1 (%s)" % items)
    s.logout()
    return fetch_items(b"".join(x + b"\r\n" for x in u))[1]


def test_envelope_groups_and_defaults(env):
    msg = ("From: user@domain (Real Name)\n"
           "Sender: \n"
           "To: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\n"
           "Cc: group:;, <@route:u@h>\n"
           "Subject: =?utf-8?q?caf=C3=A9?=\n"
           "Date: \n"
           "\n"
           "body\n")
    e = fetch1(env, msg, "ENVELOPE")[b"ENVELOPE"]
    frm = [[("S", b"Real Name"), b"NIL", ("S", b"user"), ("S", b"domain")]]
    assert e[0] == ("S", b""), e                  # present but empty
    assert e[1] == ("S", b"=?utf-8?q?caf=C3=A9?="), e    # not decoded
    assert e[2] == frm and e[3] == frm and e[4] == frm, e
    assert e[5] == [
        [b"NIL", b"NIL", ("S", b"group"), b"NIL"],
        [b"NIL", b"NIL", ("S", b"g1"), ("S", b"d1.org")],
        [b"NIL", b"NIL", ("S", b"g2"), ("S", b"d2.org")],
        [b"NIL", b"NIL", b"NIL", b"NIL"],
        [b"NIL", b"NIL", ("S", b"group2"), b"NIL"],
        [b"NIL", b"NIL", ("S", b"g3"), ("S", b"d3.org")],
        [b"NIL", b"NIL", b"NIL", b"NIL"]], e
    assert e[6] == [
        [b"NIL", b"NIL", ("S", b"group"), b"NIL"],
        [b"NIL", b"NIL", b"NIL", b"NIL"],
        [b"NIL", ("S", b"@route"), ("S", b"u"), ("S", b"h")]], e
    assert e[7:] == [b"NIL", b"NIL", b"NIL"], e


def test_bodystructure_vectors(env):
    msg = ("Content-Type: multipart/mixed; boundary=\"foo\n bar\"\n\n"
           "Root MIME prologue\n\n"
           "--foo bar\n"
           "Content-Type: text/x-myown; charset=us-ascii\n\nhello\n\n"
           "--foo bar\n"
           "Content-Type: message/rfc822\n\n"
           "From: a@b\nSubject: inner\n\nbody\n"
           "--foo bar\n"
           "Content-Type: image/png\n"
           "Content-Transfer-Encoding: base64\n"
           "Content-Disposition: attachment; filename*0*=utf-8''a%20;"
           " filename*1=b.png\n"
           "Content-Language: en, fi\n"
           "Content-Location: http://x/y\n"
           "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n\n"
           "aGVsbG8=\n"
           "--foo bar--\n"
           "Root MIME epilogue\n")
    it = fetch1(env, msg, "BODYSTRUCTURE BODY")
    bs, body = it[b"BODYSTRUCTURE"], it[b"BODY"]
    assert bs[0] == [("S", b"text"), ("S", b"x-myown"),
                     [("S", b"charset"), ("S", b"us-ascii")], b"NIL", b"NIL",
                     ("S", b"7bit"), b"7", b"1", b"NIL", b"NIL", b"NIL",
                     b"NIL"], bs
    inner = bs[1]
    assert inner[:7] == [("S", b"message"), ("S", b"rfc822"), b"NIL", b"NIL",
                         b"NIL", ("S", b"7bit"), b"33"], inner
    assert inner[7][1] == ("S", b"inner"), inner       # its own envelope
    assert inner[8][:2] == [("S", b"text"), ("S", b"plain")], inner
    assert inner[9] == b"3", inner          # lines of the whole message
    png = bs[2]
    assert png[2] == b"NIL" and png[6] == b"8", png
    assert png[7] == ("S", b"Q2hlY2sgSW50ZWdyaXR5IQ=="), png
    assert png[8] == [("S", b"attachment"),
                      [("S", b"filename*"), ("S", b"utf-8''a%20b.png")]], png
    assert png[9] == [("S", b"en"), ("S", b"fi")], png
    assert png[10] == ("S", b"http://x/y"), png
    assert bs[3:] == [("S", b"mixed"), [("S", b"boundary"),
                                        ("S", b"foo bar")],
                      b"NIL", b"NIL", b"NIL"], bs
    # BODY: no extension data anywhere
    assert len(body[0]) == 8 and len(body[2]) == 7, body
    assert body[3:] == [("S", b"mixed")], body


def test_sections(env):
    msg = ("From: a@b\nSubject: s\nX-Long: one\n two\n\n"
           "--b\nContent-Type: text/plain\n\nfirst\n"
           "--b\nContent-Type: message/rfc822\n\n"
           "Subject: inner\nContent-Type: multipart/alternative; b=x;"
           " boundary=in\n\n--in\n\ninner one\n--in\n\ninner two\n--in--\n"
           "--b--\n")
    msg = msg.replace("From: a@b\n", "From: a@b\n"
                      "Content-Type: multipart/mixed; boundary=b\n")
    env.deliver(msg)
    s = env.session()
    s.ok("SELECT INBOX")

    def sec(spec):
        u = s.ok("FETCH 1 (BODY.PEEK[%s])" % spec)
        items = fetch_items(b"".join(x + b"\r\n" for x in u))[1]
        (k, v), = items.items()
        return k, v[1] if isinstance(v, tuple) else v

    assert sec("1") == (b"BODY[1]", b"first")
    assert sec("1.MIME")[1] == b"Content-Type: text/plain\r\n\r\n"
    assert sec("2.HEADER")[1].startswith(b"Subject: inner\r\n")
    assert sec("2.HEADER")[1].endswith(b"\r\n\r\n")
    assert sec("2.1")[1] == b"inner one"
    assert sec("2.2")[1] == b"inner two"
    assert sec("2.2.MIME")[1] == b"\r\n"
    assert sec("2.TEXT")[1].startswith(b"--in\r\n")
    assert sec("3")[1] == b""                  # no such part: empty
    assert sec("2.1.1")[1] == b""    # only a message has a part 1 of its own
    k, v = sec("header.fields (subject x-long)")
    assert k == b"BODY[HEADER.FIELDS (SUBJECT X-LONG)]", k
    assert v == b"Subject: s\r\nX-Long: one\r\n two\r\n\r\n", v
    k, v = sec("HEADER.FIELDS.NOT (From Content-Type subject)")
    assert v == b"X-Long: one\r\n two\r\n\r\n", v
    # partial windows, also past the end
    u = s.ok("FETCH 1 (BODY.PEEK[1]<2.2> BODY.PEEK[1]<4.100> "
             "BODY.PEEK[1]<50.10>)")
    items = fetch_items(b"".join(x + b"\r\n" for x in u))[1]
    assert items[b"BODY[1]<2>"] == ("S", b"rs"), items
    assert items[b"BODY[1]<4>"] == ("S", b"t"), items
    assert items[b"BODY[1]<50>"] == ("S", b""), items
    s.bad("FETCH 1 (BODY[MIME])")
    s.bad("FETCH 1 (BODY[1.0])")
    s.bad("FETCH 1 (BINARY[HEADER])")
    s.logout()


def test_binary(env):
    data = bytes(range(256)) * 3
    b64 = base64.encodebytes(data).decode()
    msg = ("Content-Type: multipart/mixed; boundary=b\n\n"
           "--b\nContent-Transfer-Encoding: base64\n\n%s"
           "--b\nContent-Transfer-Encoding: quoted-printable\n\n"
           "caf=C3=A9 =\nsoft  \nx=3D\n"
           "--b\nContent-Transfer-Encoding: x-uuencode\n\nbegin\n"
           "--b--\n" % b64)
    env.deliver(msg)
    s = env.session()
    s.ok("SELECT INBOX")
    u = s.ok("FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[2] "
             "BINARY.SIZE[2] BINARY.PEEK[1]<256.10>)")
    items = fetch_items(b"".join(x + b"\r\n" for x in u))[1]
    assert items[b"BINARY[1]"][1] == data
    assert items[b"BINARY.SIZE[1]"] == str(len(data)).encode()
    # the line end before a boundary belongs to the boundary
    assert items[b"BINARY[2]"][1] == b"caf\xc3\xa9 soft\r\nx=", items
    assert items[b"BINARY.SIZE[2]"] == b"14"
    assert items[b"BINARY[1]<256>"][1] == data[256:266]
    u, t = s.cmd("FETCH 1 (BINARY.PEEK[3])")
    assert b"NO [UNKNOWN-CTE]" in t, t
    u, t = s.cmd("FETCH 1 (BINARY.SIZE[3])")
    assert b"NO [UNKNOWN-CTE]" in t, t
    s.logout()


def test_peek_does_not_set_seen(env):
    env.deliver("Subject: x\n\nbody\n")
    s = env.session()
    s.ok("SELECT INBOX")
    u = s.ok("FETCH 1 (BODY.PEEK[] BINARY.PEEK[1] BINARY.SIZE[1])")
    assert b"\\Seen" not in b"".join(u), u
    u = s.ok("FETCH 1 FLAGS")
    assert b"\\Seen" not in u[0], u
    u = s.ok("FETCH 1 BODY[]")
    assert b"\\Seen" in b"".join(u), u
    u = s.ok("FETCH 1 FLAGS")
    assert b"\\Seen" in u[0], u
    s.logout()


# --- malformed and hostile shapes ---------------------------------------

def nasty_messages():
    deep = "".join("Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n"
                   % (i, i) for i in range(200)) + "\ninnermost\n"
    rfc822 = "Content-Type: message/rfc822\n\n" * 300 + "Subject: x\n\nend\n"
    many = ("Content-Type: multipart/mixed; boundary=z\n\n" +
            "--z\n\npart\n" * 10500 + "--z--\n")
    huge_hdr = ("Subject: " + "x" * (2 << 20) + "\n" +
                "X-F: y\n" * 100000 + "\nbody\n")
    return {
        "deep multipart": deep,
        "deep rfc822": rfc822,
        "10k parts": many,
        "missing boundary": "Content-Type: multipart/mixed\n\n--x\n\nhi\n",
        "no close": "Content-Type: multipart/mixed; boundary=q\n\n--q\n\nno end",
        "bare CR": "Subject: a\rb\r\rContent-Type: text/plain\r\rbody\rmore",
        "mixed line ends": "Subject: a\r\nFrom: b@c\n\r\nx\ry\r\n\nz",
        "huge header": huge_hdr,
        "no separator": "Subject: only a header",
        "NUL bytes": "Subject: a\0b\n\nbo\0dy\n",
        "truncated": "Content-Type: multipart/mixed; boundary=t\n\n--t\nCont",
        "empty": "",
        "long line": "Subject: x\n\n" + "y" * (3 << 20),
        "same boundary nested": (
            "Content-Type: multipart/mixed; boundary=s\n\n--s\n"
            "Content-Type: multipart/mixed; boundary=s\n\n--s\n\na\n--s--\n"
            "--s--\n"),
    }


def balanced(b):
    """parentheses balance outside strings and literals"""
    v = parse_value(b)
    return isinstance(v, list)


def test_nasty_shapes(env):
    msgs = nasty_messages()
    put(env, list(msgs.values()))
    s = env.session()
    s.ok("SELECT INBOX")
    for i, name in enumerate(msgs, 1):
        t0 = time.time()
        u = s.ok("FETCH %d (RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY "
                 "BODY.PEEK[] BODY.PEEK[1] BODY.PEEK[2.1] BODY.PEEK[1.MIME] "
                 "BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT]<0.100> "
                 "BINARY.SIZE[1])" % i)
        items = fetch_items(b"".join(x + b"\r\n" for x in u))[i]
        want = lib.crlf(msgs[name].encode()).replace(b"\0", b"\x80")
        assert items[b"BODY[]"][1] == want, name
        assert int(items[b"RFC822.SIZE"]) == len(want), name
        assert isinstance(items[b"BODYSTRUCTURE"], list), name
        print("%-22s %.2fs" % (name, time.time() - t0))
    # the part limit: 10k parts are cut at 9999, and the last ones exist
    n = list(msgs).index("10k parts") + 1
    u = s.ok("FETCH %d (BODY BODY.PEEK[9999] BODY.PEEK[10001])" % n)
    items = fetch_items(b"".join(x + b"\r\n" for x in u))[n]
    parts = [p for p in items[b"BODY"] if isinstance(p, list)]
    assert len(parts) == 9999, len(parts)
    assert items[b"BODY[9999]"] == ("S", b"part"), items[b"BODY[9999]"]
    assert items[b"BODY[10001]"] == ("S", b""), items[b"BODY[10001]"]
    # nesting is cut: the innermost part is no part of its own
    n = list(msgs).index("deep rfc822") + 1
    u = s.ok("FETCH %d BODYSTRUCTURE" % n)
    assert b"application" in u[0] and b"octet-stream" in u[0], u[0][-300:]
    s.logout()


def test_fuzz_regressions(env):
    """inputs that once crashed the parser: through imapd, and through the
    fuzz target when it is built"""
    files = sorted(glob.glob(os.path.join(REGRESS, "*")))
    if not files:
        raise lib.Skip("no regression inputs")
    data = []
    for f in files:
        with open(f, "rb") as fh:
            data.append(fh.read())
    put(env, data)
    s = env.session()
    s.ok("SELECT INBOX")
    for i in range(1, len(files) + 1):
        s.ok("FETCH %d (ENVELOPE BODYSTRUCTURE BODY.PEEK[] BODY.PEEK[1] "
             "BODY.PEEK[1.MIME] BINARY.SIZE[2])" % i)
        s.ok("SEARCH TEXT hello")
    s.logout()
    if os.path.exists(FUZZ):
        r = subprocess.run([FUZZ] + files, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
        assert r.returncode == 0, r.stdout[-2000:]


# --- SEARCH -----------------------------------------------------------------

def search(s, charset, key, value):
    """SEARCH [CHARSET c] key <literal value>; the numbers found"""
    tag = s.tag()
    cs = "CHARSET %s " % charset if charset else ""
    s.send("%s SEARCH %s%s {%d}\r\n" % (tag, cs, key, len(value)))
    ln = s.line()
    assert ln.startswith(b"+"), ln
    s.send(value + b"\r\n")
    u, t = s.collect(tag)
    assert b" OK" in t, t
    hits = [x for x in u if x.startswith(b"* SEARCH")]
    return [int(n) for n in hits[0].split()[2:]]


def test_search_charsets(env):
    env.deliver(b"Subject: latin\nContent-Type: text/plain; "
                b"charset=ISO-8859-1\nContent-Transfer-Encoding: "
                b"quoted-printable\n\nUn caf=E9 cr=E8me, GR=C0CE=\n ici\n")
    env.deliver(b"Subject: =?utf-8?q?H=C3=A9llo?= =?utf-8?b?V8O2cmxk?=\n"
                b"Content-Type: text/plain; charset=utf-8\n"
                b"Content-Transfer-Encoding: base64\n\n" +
                base64.encodebytes("Grüße aus Köln".encode()))
    env.deliver("Subject: plain\nFrom: Zoë <zoe@x.org>\n\n"
                "ASCII only, caf\n".encode())
    s = env.session()
    s.ok("SELECT INBOX")
    assert search(s, "UTF-8", "BODY", "café".encode()) == [1]
    assert search(s, "UTF-8", "BODY", "CAFÉ CRÈME".encode()) == [1]
    assert search(s, "UTF-8", "BODY", "grâce".encode()) == []
    assert search(s, "UTF-8", "BODY", "GRÀCE ici".encode()) == [1]
    assert search(s, "ISO-8859-1", "BODY", "crème".encode("latin-1")) == [1]
    assert search(s, "UTF-8", "BODY", "grüsse".encode()) == []
    assert search(s, "UTF-8", "BODY", "GRÜSSE".encode()) == []
    assert search(s, "UTF-8", "BODY", "grüße aus köln".encode()) == [2]
    assert search(s, "UTF-8", "SUBJECT", "HÉLLOWÖRLD".encode()) == [2]
    assert search(s, "UTF-8", "TEXT", "héllo".encode()) == [2]
    assert search(s, "UTF-8", "BODY", "héllo".encode()) == []
    assert search(s, "UTF-8", "FROM", "zoë".encode()) == [3]
    assert search(s, None, "BODY", b"caf") == [1, 3]
    assert search(s, "UTF-8", "HEADER SUBJECT", b"") == [1, 2, 3]
    assert search(s, "UTF-8", "HEADER X-Nope", b"") == []
    s.no("SEARCH CHARSET FOO BODY x", "BADCHARSET")
    s.logout()


def test_sentday(env):
    env.deliver("Date: Mon, 1 Jan 2024 23:30:00 -0800\n\nx\n")
    env.deliver("Date: 2 Jan 24 00:10 +1400\n\nx\n")
    env.deliver("Date: garbage\n\nx\n")
    s = env.session()
    s.ok("SELECT INBOX")
    u = s.ok("SEARCH SENTON 1-Jan-2024")
    assert u[0].split()[2:] == [b"1"], u
    u = s.ok("SEARCH SENTSINCE 2-Jan-2024")
    assert u[0].split()[2:] == [b"2"], u
    s.logout()


# --- a 50 MB attachment --------------------------------------------------

def vmhwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmHWM:"):
                return int(ln.split()[1])
    return 0


def big_command(s, text, pid, peak):
    """one command whose answer may be tens of MB: read into one growing
    buffer (lib.Session copies its buffer on every read), sampling the
    server's VmHWM meanwhile; returns the answer and the peak in kB"""
    tag = s.tag()
    s.send("%s %s\r\n" % (tag, text))
    data = bytearray(s.buf)
    s.buf = b""
    fd = s.p.stdout.fileno()
    end = re.compile(rb"\r\n" + tag.encode() + rb" (OK|NO|BAD)[^\r]*\r\n$")
    deadline = time.time() + 90
    while not end.search(data[-300:]):
        assert time.time() < deadline, data[-300:]
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            raise EOFError(bytes(data[-300:]))
        data += chunk
        peak = max(peak, vmhwm_kb(pid))
    assert re.search(rb"\r\n%s OK" % tag.encode(), data[-300:]), data[-300:]
    return bytes(data), peak


def test_50mb_attachment_bounded_memory(env):
    """FETCH and SEARCH of a 52 MB message keep imapd's peak resident size
    small: the file is mapped, and scans give back the pages they passed
    (imapd must call mime_filemap(1), its messages being file mappings)"""
    rnd = random.Random(7)
    blob = bytes(rnd.getrandbits(8) for _ in range(1 << 16)) * 600
    size = len(blob)                          # 39 MB decoded, 52 MB encoded
    msg = (b"Subject: big\nContent-Type: multipart/mixed; boundary=B\n\n"
           b"--B\nContent-Type: text/plain\n\nsee attachment\n"
           b"--B\nContent-Type: application/octet-stream\n"
           b"Content-Transfer-Encoding: base64\n\n" +
           base64.encodebytes(blob) + b"--B--\n")
    put(env, [msg])
    want = lib.crlf(msg)
    s = env.session()
    s.ok("SELECT INBOX")
    pid = s.p.pid
    peak = vmhwm_kb(pid)
    data, peak = big_command(s, "FETCH 1 (RFC822.SIZE BODYSTRUCTURE "
                             "BINARY.SIZE[2])", pid, peak)
    items = fetch_items(data)[1]
    assert int(items[b"RFC822.SIZE"]) == len(want)
    assert int(items[b"BINARY.SIZE[2]"]) == size
    data, peak = big_command(s, "FETCH 1 (BODY.PEEK[])", pid, peak)
    assert fetch_items(data)[1][b"BODY[]"][1] == want
    data, peak = big_command(s, "FETCH 1 (BINARY.PEEK[2])", pid, peak)
    assert fetch_items(data)[1][b"BINARY[2]"][1] == blob
    data, peak = big_command(s, "SEARCH BODY \"not in there\"", pid, peak)
    assert b"* SEARCH\r\n" in data, data[-200:]
    del data
    peak = max(peak, vmhwm_kb(pid))
    print("imapd VmHWM %.1f MB for a %.1f MB message" %
          (peak / 1024, len(msg) / 1048576))
    s.logout()
    # AddressSanitizer's shadow memory and quarantine add their own
    # megabytes; the message itself must still never be in memory whole
    with open(lib.IMAPD, "rb") as f:
        limit = 40 if b"__asan_init" in f.read() else 20
    assert peak < limit * 1024, "VmHWM %d kB" % peak
