"""CATENATE (RFC 4469) with IMAP URLs (RFC 5092, URL-PARTIAL): APPEND
builds a message from TEXT literals and URLs of messages and parts
already in this user's mailboxes; [BADURL] and [TOOBIG].  The RFC's
example, and Dovecot's answers on the same mailbox."""
import lib
import refimap

BOUNDARY = b"------------030308070208000400050907"
ORIG = (b"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\n"
        b"Subject: draft with attachment\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=\"" + BOUNDARY + b"\"\r\n"
        b"\r\n--" + BOUNDARY + b"\r\nContent-Type: text/plain\r\n\r\n"
        b"first text\r\n--" + BOUNDARY + b"\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgcICQ==\r\n--"
        + BOUNDARY + b"--\r\n")


def lit(data):
    return b"{%d+}\r\n" % len(data) + data


def catenate_cmds(uidv):
    url = "/Drafts;UIDVALIDITY=%d/;UID=1" % uidv
    t1 = b"\r\n--" + BOUNDARY + b"\r\n"
    t2 = b"\r\n--" + BOUNDARY + b"\r\nContent-Type: text/plain\r\n\r\n" \
        b"new text\r\n--" + BOUNDARY + b"\r\n"
    t3 = b"\r\n--" + BOUNDARY + b"--\r\n"
    # RFC 4469 section 5: the header and the attachment by URL, the new
    # text in between
    return [
        b'APPEND Drafts (\\Seen \\Draft $MDNSent) CATENATE (URL "' +
        url.encode() + b'/;section=HEADER" TEXT ' + lit(t1)[:-0 or None] +
        b' URL "' + url.encode() + b'/;section=1.MIME" URL "' +
        url.encode() + b'/;section=1" TEXT ' + lit(t2) +
        b' URL "' + url.encode() + b'/;section=2.MIME" URL "' +
        url.encode() + b'/;section=2" TEXT ' + lit(t3) + b")",
    ]


def setup(env):
    env.make_folder("Drafts")
    refimap.deliver(env, 1, ORIG, flags="SD", folder="Drafts")


def uidvalidity(s):
    return lib.status_items(s.ok("STATUS Drafts (UIDVALIDITY)"))[
        "UIDVALIDITY"]


def send(s, c):
    tag = s.tag()
    s.send(tag.encode() + b" " + c + b"\r\n")
    return s.collect(tag)


def test_catenate_capability(env):
    s = env.session()
    caps = lib.caps_of(s.ok("CAPABILITY")[0])
    assert {"CATENATE", "URL-PARTIAL"} <= caps


def test_catenate_rfc_example(env):
    setup(env)
    s = env.session()
    v = uidvalidity(s)
    u, t = send(s, catenate_cmds(v)[0])
    assert lib.is_ok(t) and b"[APPENDUID %d 2]" % v in t, t
    s.ok("SELECT Drafts")
    f = lib.fetches(s.ok("FETCH 2 (BODY.PEEK[] FLAGS BINARY.PEEK[3])"))[2]
    body = f["BODY[]"]
    assert body.startswith(ORIG.split(b"\r\n\r\n")[0] + b"\r\n\r\n"), body
    assert b"first text" in body and b"new text" in body
    assert f["BINARY[3]"] == b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09"
    assert {"\\Seen", "\\Draft", "$MDNSent"} <= lib.flagset(f["FLAGS"])


def test_catenate_urls(env):
    """relative and absolute URLs, PARTIAL, and the refusals"""
    setup(env)
    s = env.session()
    v = uidvalidity(s)
    s.ok("SELECT Drafts")
    cases = [
        (b'CATENATE (URL ";UID=1/;SECTION=1" TEXT {2+}\r\n!!)',
         b"first text!!"),
        (b'CATENATE (URL "/Drafts/;UID=1/;SECTION=1/;PARTIAL=6")',
         b"text"),
        (b'CATENATE (URL "imap://%s@localhost/Drafts;UIDVALIDITY=%d/;UID=1'
         b'/;SECTION=1/;PARTIAL=0.5")' % (env.user.encode(), v), b"first"),
        (b'CATENATE (TEXT {3+}\r\nabc TEXT ~{4+}\r\ndef\n)', b"abcdef\r\n"),
    ]
    for i, (cat, want) in enumerate(cases):
        u, t = send(s, b"APPEND Drafts " + cat)
        assert lib.is_ok(t), (cat, t)
        s.ok("NOOP")
        f = lib.fetches(s.ok("UID FETCH %d (BODY.PEEK[])" % (i + 2)))
        assert list(f.values())[0]["BODY[]"] == want, (cat, f)
    bad = [
        b'URL "/Drafts;UIDVALIDITY=%d/;UID=1"' % (v + 1),
        b'URL "/Drafts/;UID=99"', b'URL "/Nowhere/;UID=1"',
        b'URL "imap://mallory@localhost/Drafts/;UID=1"',
        b'URL "/Drafts/;UID=1/;SECTION=BOGUS"', b'URL "nonsense"',
        b"URL " + lit(b"/Drafts/;UID=1]\x01\r\nX"),
    ]
    n = lib.status_items(s.ok("STATUS Drafts (MESSAGES)"))["MESSAGES"]
    for b in bad:
        u, t = send(s, b"APPEND Drafts CATENATE (TEXT {1+}\r\nx " + b +
                    b" TEXT {1+}\r\ny)")
        assert lib.is_no(t) and b"[BADURL " in t, (b, t)
        assert b"\r" not in t and b"\x01" not in t and \
            t.count(b"]") == 1, t
    s.bad("APPEND Drafts CATENATE ()")
    s.bad("APPEND Drafts CATENATE (FOO \"x\")")
    assert lib.status_items(s.ok("STATUS Drafts (MESSAGES)"))["MESSAGES"] \
        == n


def test_catenate_matches_dovecot(env):
    setup(env)
    dmail = refimap.copy_maildir(env)
    s = env.session()
    v = uidvalidity(s)
    d = refimap.run(env, dmail, ["STATUS Drafts (UIDVALIDITY)"])
    dv_v = lib.status_items(d[0][0])["UIDVALIDITY"]
    fetch = "FETCH 2 (BODY.PEEK[] BODYSTRUCTURE)"
    dv = refimap.run(env, dmail, catenate_cmds(dv_v) + ["SELECT Drafts",
                                                        fetch])
    ours = [send(s, c) for c in catenate_cmds(v)]
    ours += [send(s, c.encode()) for c in ["SELECT Drafts", fetch]]
    assert refimap.status(dv[0][1]) == refimap.status(ours[0][1]) == "OK"
    df, of = lib.fetches(dv[2][0])[2], lib.fetches(ours[2][0])[2]
    assert df["BODY[]"] == of["BODY[]"], (df["BODY[]"], of["BODY[]"])
    assert df["BODYSTRUCTURE"] == of["BODYSTRUCTURE"]
