"""HTML parts are searched as the text a reader sees (html.c), by the scan
and by the full-text index alike: tags, comments, scripts and styles are
not found, character references are found as the characters they name,
white space is folded.  Each test runs the same binary with the index off
and on (test_fts.compare) and checks the meaning once."""
import base64
import time

import lib
from test_fts import compare, put, search_uids


def html_msg(body, charset="utf-8", cte=None, subject="html"):
    head = ("Subject: %s\nMIME-Version: 1.0\nContent-Type: text/html; "
            "charset=%s\n" % (subject, charset)).encode()
    if cte == "base64":
        body = base64.encodebytes(body)
        head += b"Content-Transfer-Encoding: base64\n"
    elif cte == "quoted-printable":
        head += b"Content-Transfer-Encoding: quoted-printable\n"
    return head + b"\n" + body


MESSAGES = [
    # 1: inline tags inside a word, references, a style and a script
    html_msg(b"<html><head><title>Zorgtitle</title><style>.zorglub{color:"
             b"red}</style></head><body><p>Hel<b>lo</b> caf&eacute; "
             b"&amp; AT&amp;T &#8364;5 &#x263A; &lt;tag&gt;</p><script>"
             b"var hidden = 'scriptword';</script><a href=\"http://"
             b"hrefonly.example/\">the link</a></body></html>\n"),
    # 2: blocks and cells, white space folded, <pre> kept, a comment
    html_msg(b"<div>one</div><div>two</div>three\n   four<table><tr><td>"
             b"cellA</td><td>cellB</td></tr></table><!-- commentword -->"
             b"<pre>pre  kept</pre>nbsp&nbsp;space\n"),
    # 3: Latin-1 through iconv, base64; a reference beside raw 8-bit
    html_msg("<p>Gr\u00fc\u00dfe &uuml;ber Stra&szlig;e</p>\n"
             .encode("latin-1"), charset="iso-8859-1", cte="base64"),
    # 4: quoted-printable with a soft break inside a tag and a reference
    html_msg(b"<p>soft<sp=\nan>break</span> caf=\n&eacute;s</p>\n",
             cte="quoted-printable"),
    # 5: a plain and an HTML alternative, both searched
    b"Subject: alt\nMIME-Version: 1.0\nContent-Type: multipart/alternative;"
    b" boundary=b\n\n--b\nContent-Type: text/plain\n\nplainside *bold*\n"
    b"--b\nContent-Type: text/html\n\n<p>htmlside <b>bold</b></p>\n--b--\n",
    # 6: text/plain that looks like HTML stays as it is
    b"Subject: plain\nContent-Type: text/plain\n\nraw <b>markup</b> &amp;\n",
]

NEEDLES = [
    "hello", "hel<b>lo", "<b>", "café", "caf&eacute;", "& at&t", "at&t",
    "€5", "\u263a", "<tag>", "scriptword", "zorglub", "zorgtitle",
    "hrefonly", "the link", "onetwo", "one\ntwo", "three four", "cella cellb",
    "commentword", "pre  kept", "nbsp space", "grüße über straße",
    "softbreak", "cafés", "plainside", "htmlside bold", "<b>markup</b>",
    "&amp;", "html",
]


def test_fts_html_searched_as_text(env):
    put(env, MESSAGES)
    keys = ("TEXT", "BODY")
    queries = [(k, n) for n in NEEDLES for k in keys]
    want = compare(env, queries, expect_hits=False)
    table = dict(zip(queries, want))
    for k in keys:
        assert table[(k, "hello")] == [1]
        assert table[(k, "café")] == [1, 4]
        assert table[(k, "at&t")] == [1]
        assert table[(k, "€5")] == [1]
        assert table[(k, "\u263a")] == [1]
        assert table[(k, "<tag>")] == [1]
        assert table[(k, "the link")] == [1]
        for hidden in ("hel<b>lo", "caf&eacute;", "scriptword", "zorglub",
                       "zorgtitle", "hrefonly", "commentword", "onetwo"):
            assert table[(k, hidden)] == [], hidden
        assert table[(k, "one\ntwo")] == [2]
        assert table[(k, "three four")] == [2]
        assert table[(k, "cella cellb")] == [2]
        assert table[(k, "pre  kept")] == [2]
        assert table[(k, "nbsp space")] == [2]
        assert table[(k, "grüße über straße")] == [3]
        assert table[(k, "softbreak")] == [4]
        assert table[(k, "cafés")] == [4]
        assert table[(k, "plainside")] == [5]
        assert table[(k, "htmlside bold")] == [5]
        # only text/html is reduced
        assert table[(k, "<b>markup</b>")] == [6]
        assert table[(k, "&amp;")] == [6]
    # a header is not HTML: TEXT finds "html" in Subject and Content-Type
    assert table[("TEXT", "html")] == [1, 2, 3, 4, 5]


def test_fts_html_across_pieces(env):
    """a tag, a reference and a script's end tag at every offset around the
    decoders' 8 KB steps: found (or not) the same everywhere"""
    msgs = []
    tail = b"<b>Wo</b>rd&eacute;x <script>no('</scr' + 'ipt>')</script>yes"
    for pad in range(8192 - 70, 8192 + 8):
        body = b"p" * pad + b" " + tail + b"\n"
        msgs.append(html_msg(body, charset="iso-8859-1"))
        msgs.append(html_msg(body, cte="base64"))
    put(env, msgs)
    queries = [("BODY", "wordéx yes"), ("BODY", "ipt>"), ("TEXT", "no(")]
    want = compare(env, queries, expect_hits=False)
    assert want[0] == list(range(1, len(msgs) + 1))
    assert want[1] == [] and want[2] == []


HOSTILE = [
    b"<" * 200000,
    b"<!--" + b"-" * 100000 + b"x",
    b"&#" + b"9" * 5000 + b";" + b"&" * 100000 + b"&#x110000;&#xd800;&#0;",
    b"<blockquote>" * 50000 + b"deepword" + b"</blockquote>" * 60000,
    b"<" + b"a" * 100000 + b" x='" + b">" * 1000 + b"' >afterword",
    b"<script>" + b"</scrip" * 30000 + b"</script >scriptend",
    b"<p a=\"" + b"\"\"=" * 30000 + b">attrend",
]


def test_fts_html_hostile_input(env):
    put(env, [html_msg(b) for b in HOSTILE])
    queries = [("BODY", n) for n in ("deepword", "afterword", "scriptend",
                                     "attrend", "\ufffd", "<<<")]
    t0 = time.time()
    want = compare(env, queries, expect_hits=False)
    assert time.time() - t0 < 60
    assert want[0] == [4]
    assert want[1] == [5]       # '>' inside a quoted value
    assert want[2] == [6]
    assert want[3] == [7]
    assert want[4] == [3]
    assert want[5] == [1]
    s = env.session()
    s.ok("SELECT INBOX")
    assert search_uids(s, "BODY", "deepword") == [4]
    s.logout()
