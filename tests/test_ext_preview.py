"""PREVIEW (RFC 8970): FETCH PREVIEW and PREVIEW (LAZY), up to 200
characters of the first text part, decoded to UTF-8, HTML taken out;
checked on hand-made messages and against Dovecot over the shared
corpus."""
import glob
import os

import lib
import refimap

# Where the preview is meant to differ from Dovecot's, by reason.
# Dovecot looks no further than the first leaf of the top level: it gives
# nothing (or the headers) for a forwarded or digested message/rfc822,
# for HTML inside multipart/related, for a delivery report, and for a
# text part whose transfer encoding it does not know; we show the text.
ENCLOSED = {
    "cpython/msg_11.eml", "cpython/msg_28.eml", "cpython/msg_30.eml",
    "cpython/msg_46.eml", "imaptest/fetch-body-message-rfc822-mime.eml",
    "imaptest/fetch-body-message-rfc822-x2.eml",
    "imaptest/fetch-body-message-rfc822.eml",
    "mime4j/mimetools/multi-digest.eml", "mime4j/mimetools/re-fwd.eml",
    "mimekit/messages/multipart-digest.eml",
    "mimekit/messages/delivery-status-no-blank-line.eml",
    "mimekit/messages/delivery-status.eml",
    "ruby-mail/multipart_report_emails/multipart_report_multiple_status.eml",
    "stalwart-mail-parser/thirdparty/004.eml",
    "stalwart-mail-parser/thirdparty/007.eml",
    "stalwart-mail-parser/malformed/010.eml",
    "stalwart-mail-parser/malformed/012.eml",
    "enmime/low-quality/html-only-inline.eml",
    "enmime/mail/html-only-inline.eml",
    "mime4j/mimetools/double-semicolon.eml",
    "mime4j/testmsgs/multipartdigestnestedemptyparts.eml",
}
UNKNOWN_CTE = {
    "mime4j/mimetools/x-gzip64.eml",
    "ruby-mail/error_emails/content_transfer_encoding_7-bit.eml",
    "ruby-mail/error_emails/content_transfer_encoding_empty.eml",
    "ruby-mail/error_emails/content_transfer_encoding_plain.eml",
    "ruby-mail/error_emails/content_transfer_encoding_qp_with_space.eml",
    "ruby-mail/error_emails/content_transfer_encoding_spam.eml",
    "ruby-mail/error_emails/content_transfer_encoding_text-html.eml",
    "ruby-mail/error_emails/content_transfer_encoding_with_8bits.eml",
}
# We leave out control characters and HTML <title>, fold a no-break space
# like any white space, and hide what a <style> element holds.
CLEANER = {
    "enmime/mail/mime-bad-content-transfer-encoding.eml",
    "enmime/mail/non-mime-html-charset-header-only.eml",
    "enmime/mail/non-mime-html.eml", "enmime/parts/chardet-fail.eml",
    "nodemailer-mailparser/spam.eml",
    "ruby-mail/error_emails/empty_group_lists.eml",
}
# Boundaries longer than RFC 2046's 70 characters: see test_mime.
LONG_BOUNDARY = {
    "mime4j/testmsgs/very-long-boundary.eml",
    "mime4j/testmsgs/very-very-long-boundary.eml",
}
INTENDED = ENCLOSED | UNKNOWN_CTE | CLEANER | LONG_BOUNDARY

HTML = (b"From: a@example.org\nSubject: html\n"
        b"Content-Type: text/html; charset=utf-8\n\n<html><head><title>T"
        b"</title><style>p{color:red}</style></head><body><p>Hi &amp; "
        b"welcome&nbsp;here &#233;t&#xe9; &Uuml;ber &bdquo;so&ldquo;</p>"
        b"<blockquote>old text</blockquote><!-- hidden --><div>end</div>"
        b"</body></html>\n")
LATIN1 = (b"From: a@example.org\nSubject: b64\n"
          b"Content-Type: text/plain; charset=iso-8859-1\n"
          b"Content-Transfer-Encoding: base64\n\nY2Fm6SBjcuhtZQ==\n")
ALT = (b"From: a@example.org\nSubject: alt\nMIME-Version: 1.0\n"
       b"Content-Type: multipart/alternative; boundary=x\n\n--x\n"
       b"Content-Type: text/html\n\n<b>html part</b>\n--x\n"
       b"Content-Type: text/plain\n\nplain part\n--x--\n")
IMAGE = b"From: a@example.org\nSubject: img\nContent-Type: image/png\n\nxx\n"


def previews(env, msgs):
    for i, m in enumerate(msgs):
        refimap.deliver(env, i + 1, m)
    s = env.session()
    s.ok("SELECT INBOX")
    return s, lib.fetches(s.ok("FETCH 1:* (PREVIEW)"))


def test_preview_capability(env):
    s = env.session()
    assert "PREVIEW" in lib.caps_of(s.ok("CAPABILITY")[0])


def test_preview_rfc_example(env):
    """RFC 8970 section 3: FETCH PREVIEW and PREVIEW (LAZY) answer with
    the item PREVIEW; the message is not marked \\Seen"""
    body = "Hello Bob,\n\nthis is   a   test of the preview.\n" \
        "> a quoted line\n> another\nBye\n"
    s, f = previews(env, [lib.make_msg("plain", body=body)])
    assert f[1]["PREVIEW"] == b"Hello Bob, this is a test of the preview. Bye"
    u = s.ok("FETCH 1 (PREVIEW (LAZY) FLAGS)")
    d = lib.fetches(u)[1]
    assert d["PREVIEW"] == f[1]["PREVIEW"]
    assert "\\Seen" not in lib.flagset(d["FLAGS"])
    u = s.ok("UID FETCH 1 (PREVIEW)")
    assert lib.fetches(u)[1]["PREVIEW"] == f[1]["PREVIEW"]
    s.bad("FETCH 1 (PREVIEW (FOO))")
    s.bad("FETCH 1 (PREVIEW (LAZY)")


def test_preview_kinds(env):
    long_body = "word " * 100
    s, f = previews(env, [HTML, LATIN1, ALT, IMAGE,
                          lib.make_msg("long", body=long_body)])
    assert f[1]["PREVIEW"] == ("Hi & welcome here \u00e9t\u00e9 \u00dcber "
                               "\u201eso\u201c end").encode()
    assert f[2]["PREVIEW"] == "caf\u00e9 cr\u00e8me".encode()
    assert f[3]["PREVIEW"] == b"plain part"
    assert f[4]["PREVIEW"] == b""
    p = f[5]["PREVIEW"].decode()
    assert len(p) <= 200 and p == ("word " * 40).strip(), p
    # non-ASCII goes as a literal unless UTF-8 is enabled
    u = s.ok("FETCH 2 (PREVIEW)")
    assert b"PREVIEW {" in u[0], u


def test_preview_matches_dovecot(env):
    files = sorted(glob.glob(os.path.join(lib.CORPUS, "**", "*.eml"),
                             recursive=True))
    assert files, lib.CORPUS
    for i, path in enumerate(files):
        with open(path, "rb") as fh:
            refimap.deliver(env, i + 1, fh.read())
    dmail = refimap.copy_maildir(env)
    dv = lib.fetches(refimap.run(env, dmail, ["SELECT INBOX",
                                              "FETCH 1:* (PREVIEW)"])[1][0])
    s = env.session()
    s.ok("SELECT INBOX")
    ours = lib.fetches(s.ok("FETCH 1:* (PREVIEW)"))
    same, differ = 0, []
    for i, path in enumerate(files):
        name = os.path.relpath(path, lib.CORPUS)
        d, o = dv[i + 1].get("PREVIEW"), ours[i + 1].get("PREVIEW")
        assert o is not None and len(o.decode()) <= 200, (name, o)
        if d == o:
            same += 1
            assert name not in INTENDED, ("now the same as Dovecot", name)
        elif name not in INTENDED:
            differ.append((name, d, o))
    print("preview: %d/%d as Dovecot, %d differences meant" %
          (same, len(files), len(INTENDED)))
    assert not differ, differ[:5]


def test_preview_cached(env):
    """the preview is kept with the message's other cached data: once
    made, FETCH PREVIEW and PREVIEW (LAZY) answer it with the message file
    unreadable (mode 000: the server, not root, cannot open it), in this
    session and the next; a message never previewed cannot be answered"""
    body = "Dear reader,\n\nthe cached preview.\n"
    paths = [refimap.deliver(env, i + 1, lib.make_msg("c%d" % i, body=body))
             for i in range(2)]
    s = env.session()
    s.ok("SELECT INBOX")
    want = b"Dear reader, the cached preview."
    assert lib.fetches(s.ok("FETCH 1 (PREVIEW)"))[1]["PREVIEW"] == want
    for p in paths:
        os.chmod(p, 0)
    # the file is unreadable indeed: its text cannot be fetched
    s.no("FETCH 1 (BODY.PEEK[TEXT])", code="UNAVAILABLE")
    s.no("FETCH 2 (PREVIEW)", code="UNAVAILABLE")
    for item in ("PREVIEW", "PREVIEW (LAZY)"):
        f = lib.fetches(s.ok("FETCH 1 (%s)" % item))[1]
        assert f["PREVIEW"] == want, (item, f)
    s.logout()
    t = env.session()
    t.ok("SELECT INBOX")
    f = lib.fetches(t.ok("UID FETCH 1 (PREVIEW (LAZY) FLAGS)"))[1]
    assert f["PREVIEW"] == want, f
    t.no("FETCH 1 (BODY.PEEK[TEXT])", code="UNAVAILABLE")
