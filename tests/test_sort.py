"""SORT, UID SORT, ESORT (RFC 5267 RETURN options) and THREAD
(ORDEREDSUBJECT, REFERENCES) of RFC 5256, through the real imapd.

Hand-made folders with orders worked out by hand from the RFC's rules
(every sort key, REVERSE, ties by sequence number, the base subject rules
of section 2.1, the six steps of THREAD=REFERENCES), and the shared
corpus compared with Dovecot (Debian package dovecot-imapd).
"""
import glob
import os
import re

import lib

BASE = 1000000000       # internal dates: 2001-09-09 plus the given seconds

# Corpus messages whose Date: Dovecot reads differently, on purpose
# (RFC 5256 section 2.2 is followed here).  They are left out of the
# comparison; the rules are tested on hand-made messages below.
INTENDED = {
    # years before 1970: Dovecot's date is unsigned and sorts them last
    "ruby-mail/rfc2822/example04.eml": "Date in 1969",
    "ruby-mail/rfc2822/example10.eml": "Date in 1969",
    # a year past 2106: Dovecot drops the date and takes INTERNALDATE
    "ruby-mail/plain_emails/raw_email_bad_time.eml": "Date in 3609",
    # a valid date with an invalid time: RFC 5256 2.2 says midnight of
    # that day, Dovecot takes INTERNALDATE
    "ruby-mail/error_emails/bad_date_header2.eml": "hour 59",
    "stalwart-mail-parser/malformed/019.eml": "time 10:00:t",
}


def put(env, messages, maildir=None):
    """messages into cur/ under names that sort in list order (imapd and
    Dovecot both number new files by name); each item is bytes/str, or
    (data, internal date offset from BASE)"""
    md = maildir or env.maildir
    for i, m in enumerate(messages):
        data, when = m if isinstance(m, tuple) else (m, i)
        if isinstance(data, str):
            data = data.encode()
        name = "%d.M%dP1.test:2,S" % (BASE + i, i)
        path = os.path.join(md, "cur", name)
        with open(path, "wb") as fh:
            fh.write(data)
        os.utime(path, (BASE + when, BASE + when))
    env.fix_owner()


def msg(headers, body="body\n"):
    return lib.crlf("\n".join(headers) + "\n\n" + body)


def sort_result(lines):
    found = [x for x in lines if re.match(rb"\* SORT\b", x)]
    assert len(found) == 1, lines
    return [int(t) for t in found[0].split()[2:]]


def thread_result(lines):
    found = [x for x in lines if re.match(rb"\* THREAD\b", x)]
    assert len(found) == 1, lines
    assert re.match(rb"\* THREAD( \(.*\))?$", found[0]), found[0]
    return found[0][len(b"* THREAD"):].strip().decode()


def esearch(lines, tag):
    """{ITEM: value} of the one ESEARCH line for tag, with ALL expanded
    into the list it names in order (a range must ascend)"""
    found = [x for x in lines if x.startswith(b"* ESEARCH")]
    assert len(found) == 1, lines
    toks = found[0].decode().split()
    assert toks[2] == '(TAG' and toks[3] == '"%s")' % tag, found[0]
    rest, items = toks[4:], {}
    if rest and rest[0] == "UID":
        items["UID"] = True
        rest = rest[1:]
    assert len(rest) % 2 == 0, found[0]
    for k, v in zip(rest[0::2], rest[1::2]):
        if k == "ALL":
            out = []
            for part in v.split(","):
                lo, _, hi = part.partition(":")
                lo, hi = int(lo), int(hi or lo)
                assert lo <= hi, ("descending range in ESORT ALL", v)
                out.extend(range(lo, hi + 1))
            items[k] = out
        else:
            items[k] = int(v)
    return items


# --- the key set -----------------------------------------------------------

# (headers, internal date offset); sequence numbers 1..6.  Sent dates in
# UTC: 1 = 1994-02-08 05:52:25, 2 = 1994-02-08 01:00:00, 3 has no Date:
# (its INTERNALDATE, 2001-09-09, counts), 4, 5 and 6 name one instant,
# 2001-01-01 00:01:33, in three zones.
KEYSET = [
    (["Date: Mon, 7 Feb 1994 21:52:25 -0800",
      "From: Zed <zed@example.org>", "To: bob@example.org",
      "Cc: Carol <carol@example.org>",
      "Subject: Re: [list] Fwd: hello (fwd)",
      "Message-ID: <k1@example.org>"], 50),
    (["Date: Tue, 8 Feb 1994 01:00:00 +0000",
      'From: "Alice" <Alice@example.org>', "To: Dave <dave@example.org>",
      "Subject: HELLO", "Message-ID: <k2@example.org>"], 40),
    (["From: bob@example.org",
      "To: =?utf-8?q?=C3=89mile?= <emile@example.org>",
      "Subject: =?utf-8?q?=C3=A9t=C3=A9?=",
      "Message-ID: <k3@example.org>"], 30),
    (["Date: 31 Dec 2000 16:01:33 -0800", "From: carol@example.org",
      "Subject:", "Message-ID: <k4@example.org>"], 60),
    (["Date: Mon, 01 Jan 2001 00:01:33 +0000",
      "From: Carol <CAROL@example.org>", "To: alice@example.org",
      "Subject: [fwd: Hello]", "Message-ID: <k5@example.org>"], 10),
    (["Date: Mon, 1 Jan 2001 00:01:33 GMT",
      "From: _under@example.org", 'To: "Zoe" <zoe@example.org>',
      "Subject: other", "Message-ID: <k6@example.org>"], 20),
]

# worked out by hand; see the comments above KEYSET
KEY_ORDERS = {
    "ARRIVAL": [5, 6, 3, 2, 1, 4],
    "REVERSE ARRIVAL": [4, 1, 2, 3, 6, 5],
    "DATE": [2, 1, 4, 5, 6, 3],
    # REVERSE leaves the implicit sequence order of ties alone
    "REVERSE DATE": [3, 4, 5, 6, 1, 2],
    # i;ascii-casemap maps to upper case: "_" (0x5F) sorts after "Z"
    "FROM": [2, 3, 4, 5, 1, 6],
    "REVERSE FROM": [6, 1, 4, 5, 3, 2],
    # no To: is the empty string, first
    "TO": [4, 5, 1, 2, 3, 6],
    "CC": [2, 3, 4, 5, 6, 1],
    "REVERSE CC": [1, 2, 3, 4, 5, 6],
    # "" < "ÉTÉ" (decomposed: E U+0301 ...) < "HELLO" x3 < "OTHER"
    "SUBJECT": [4, 3, 1, 2, 5, 6],
    "REVERSE SUBJECT": [6, 1, 2, 5, 3, 4],
    "SUBJECT REVERSE DATE": [4, 3, 5, 1, 2, 6],
    "REVERSE SUBJECT DATE": [6, 2, 1, 5, 3, 4],
    "FROM SUBJECT": [2, 3, 4, 5, 1, 6],
    "FROM REVERSE SUBJECT": [2, 3, 5, 4, 1, 6],
    # RFC 5957: display name, else the addr-spec
    "DISPLAYFROM": [2, 3, 5, 4, 1, 6],
    "DISPLAYTO": [4, 5, 1, 2, 3, 6],
}


def keyset(env):
    put(env, [(msg(h), t) for h, t in KEYSET])
    s = env.session()
    s.ok("SELECT INBOX")
    return s


def test_capabilities(env):
    s = env.session()
    u = s.ok("CAPABILITY")
    caps = lib.caps_of([x for x in u if x.startswith(b"* CAPABILITY")][0])
    for c in ("SORT", "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT",
              "ESORT"):
        assert c in caps, (c, caps)


def test_sort_every_key(env):
    s = keyset(env)
    for crit, want in KEY_ORDERS.items():
        got = sort_result(s.ok("SORT (%s) UTF-8 ALL" % crit))
        assert got == want, (crit, got, want)


def test_sort_size(env):
    """SIZE is RFC822.SIZE; equal sizes go by sequence number"""
    msgs = [msg(["Subject: s%d" % i, "Message-ID: <s%d@x>" % i],
                "x" * n + "\n") for i, n in enumerate([50, 10, 30, 10, 99])]
    put(env, msgs)
    s = env.session()
    s.ok("SELECT INBOX")
    assert sort_result(s.ok("SORT (SIZE) UTF-8 ALL")) == [2, 4, 3, 1, 5]
    assert sort_result(s.ok("SORT (REVERSE SIZE) UTF-8 ALL")) == \
        [5, 1, 3, 2, 4]
    u = s.ok("FETCH 1:5 RFC822.SIZE")
    sizes = {n: int(d["RFC822.SIZE"]) for n, d in lib.fetches(u).items()}
    assert sorted(range(1, 6), key=lambda n: (sizes[n], n)) == \
        [2, 4, 3, 1, 5], sizes


def test_sort_case_and_spelling(env):
    """keywords and key names in any case; US-ASCII charset"""
    s = keyset(env)
    assert sort_result(s.ok("sort (reverse date) us-ascii all")) == \
        KEY_ORDERS["REVERSE DATE"]
    assert sort_result(s.ok('SORT (Date) "UTF-8" ALL')) == \
        KEY_ORDERS["DATE"]


def test_uid_sort(env):
    """after an expunge UIDs and sequence numbers differ"""
    s = keyset(env)
    s.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    s.ok("EXPUNGE")
    # FROM without Alice (UID 2): bob 3, carol 4, CAROL 5, zed 1, _under 6
    assert sort_result(s.ok("UID SORT (FROM) UTF-8 ALL")) == [3, 4, 5, 1, 6]
    assert sort_result(s.ok("SORT (FROM) UTF-8 ALL")) == [2, 3, 4, 1, 5]


def test_sort_with_search(env):
    s = keyset(env)
    assert sort_result(s.ok("SORT (SUBJECT) UTF-8 FROM carol")) == [4, 5]
    assert sort_result(s.ok("SORT (REVERSE ARRIVAL) UTF-8 2:5")) == \
        [4, 2, 3, 5]
    assert sort_result(s.ok("UID SORT (DATE) UTF-8 UID 1:3 NOT FROM bob")) \
        == [2, 1]
    assert sort_result(s.ok("SORT (DATE) UTF-8 SUBJECT nothing-like-it")) \
        == []
    # a UTF-8 search string in a literal
    u, t = lib.cmd_lit(s, "SORT (DATE) UTF-8 SUBJECT ",
                       lib.lit("\u00e9t\u00e9".encode()))
    assert b" OK" in t, t
    assert sort_result(u) == [3]
    u, t = lib.cmd_lit(s, "SORT (DATE) UTF-8 TO ",
                       lib.lit("\u00c9mile".encode()))
    assert b" OK" in t, t
    assert sort_result(u) == [3]


def test_sort_other_charset(env):
    """a charset iconv knows converts the search strings"""
    s = keyset(env)
    u, t = lib.cmd_lit(s, "SORT (DATE) ISO-8859-1 SUBJECT ",
                       lib.lit(b"\xe9t\xe9"))
    assert b" OK" in t, t
    assert sort_result(u) == [3]


def test_sort_errors(env):
    s = keyset(env)
    s.no("SORT (DATE) X-NO-SUCH-CHARSET ALL", "BADCHARSET")
    s.no("THREAD REFERENCES X-NO-SUCH-CHARSET ALL", "BADCHARSET")
    for bad in ("SORT (DATE FOO) UTF-8 ALL", "SORT () UTF-8 ALL",
                "SORT DATE UTF-8 ALL", "SORT (DATE) UTF-8",
                "SORT (DATE)", "SORT (REVERSE) UTF-8 ALL",
                "SORT (REVERSE REVERSE DATE) UTF-8 ALL",
                "SORT (DATE  SUBJECT) UTF-8 ALL", "SORT (DATE UTF-8 ALL",
                "SORT (DATE) UTF-8 NOSUCHKEY", "SORT",
                "THREAD FOO UTF-8 ALL", "THREAD REFERENCES",
                "THREAD REFERENCES UTF-8", "THREAD (REFERENCES) UTF-8 ALL",
                "UID THREAD ORDEREDSUBJECT UTF-8 FROB"):
        s.bad(bad)
    # still usable afterwards
    assert sort_result(s.ok("SORT (DATE) UTF-8 ALL")) == KEY_ORDERS["DATE"]


def test_sort_needs_selected(env):
    s = env.session()
    u, t = s.cmd("SORT (DATE) UTF-8 ALL")
    assert re.match(rb"\S+ (BAD|NO)\b", t), t
    u, t = s.cmd("THREAD REFERENCES UTF-8 ALL")
    assert re.match(rb"\S+ (BAD|NO)\b", t), t


def test_sort_empty_folder(env):
    s = env.session()
    s.ok("SELECT INBOX")
    assert sort_result(s.ok("SORT (SUBJECT) UTF-8 ALL")) == []
    assert thread_result(s.ok("THREAD REFERENCES UTF-8 ALL")) == ""
    assert thread_result(s.ok("THREAD ORDEREDSUBJECT UTF-8 ALL")) == ""


def test_esort(env):
    s = keyset(env)
    # DATE order: 2 1 4 5 6 3
    u = s.ok("SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL")
    tag = "a%03d" % s.ntag
    e = esearch(u, tag)
    assert not [x for x in u if x.startswith(b"* SORT")], u
    # MIN and MAX: the first and the last in sort order
    assert e == {"MIN": 2, "MAX": 3, "COUNT": 6,
                 "ALL": [2, 1, 4, 5, 6, 3]}, e
    u = s.ok("UID SORT RETURN (ALL) (REVERSE DATE) UTF-8 ALL")
    e = esearch(u, "a%03d" % s.ntag)
    assert e == {"UID": True, "ALL": [3, 4, 5, 6, 1, 2]}, e
    u = s.ok("SORT RETURN () (SUBJECT) UTF-8 ALL")
    e = esearch(u, "a%03d" % s.ntag)
    assert e == {"ALL": KEY_ORDERS["SUBJECT"]}, e
    u = s.ok("SORT RETURN (COUNT) (DATE) UTF-8 SUBJECT nothing-like-it")
    assert esearch(u, "a%03d" % s.ntag) == {"COUNT": 0}
    u = s.ok("SORT RETURN (MIN MAX) (DATE) UTF-8 SUBJECT nothing-like-it")
    assert esearch(u, "a%03d" % s.ntag) == {}
    u = s.ok("SORT RETURN (MIN COUNT) (REVERSE FROM) UTF-8 FROM carol")
    assert esearch(u, "a%03d" % s.ntag) == {"MIN": 4, "COUNT": 2}
    s.bad("SORT RETURN (BOGUS) (DATE) UTF-8 ALL")


def test_esort_save(env):
    """RETURN (SAVE) keeps the result for "$" (RFC 5182) and, alone,
    sends no ESEARCH"""
    s = keyset(env)
    u = s.ok("SORT RETURN (SAVE) (DATE) UTF-8 FROM carol")
    assert not [x for x in u if x.startswith(b"* ESEARCH")
                or x.startswith(b"* SORT")], u
    u = s.ok("SEARCH $")
    found = [x for x in u if x.startswith(b"* SEARCH")]
    assert found == [b"* SEARCH 4 5"], u
    u = s.ok("SORT RETURN (SAVE COUNT) (DATE) UTF-8 FROM nobody-at-all")
    assert esearch(u, "a%03d" % s.ntag) == {"COUNT": 0}, u
    u = s.ok("SEARCH $")
    assert [x for x in u if x.startswith(b"* SEARCH")] == [b"* SEARCH"], u


# --- base subjects (RFC 5256 2.1) -------------------------------------------

SUBJECTS = [
    "Re: [list] Fwd: subject (fwd)",           # 1  SUBJECT
    "subject",                                 # 2  SUBJECT
    "[fwd: Re: subject]",                      # 3  SUBJECT
    "RE:  re : [x]  Fw[y]: SUBJECT  (fwd) (FWD)",   # 4  SUBJECT
    "[blob]",                                  # 5  [BLOB]: nothing after it
    "=?utf-8?q?Re=3A_subject?=",               # 6  SUBJECT: decoded first
    "=?iso-8859-1?q?=E9t=E9?=",                # 7  ÉTÉ
    "=?utf-8?b?w6l0w6k=?=",                    # 8  ÉTÉ
    "Re:",                                     # 9  empty
    "(fwd)",                                   # 10 empty
    "Fwd: [fwd: subject]",                     # 11 SUBJECT
    "Sub\t  Ject",                             # 12 SUB JECT
    "Re: sub ject",                            # 13 SUB JECT
    "[a][b] subject",                          # 14 SUBJECT
    "Rex: subject",                            # 15 REX: SUBJECT
    None,                                      # 16 no Subject: empty
    "\u00c9t\u00e9",                           # 17 ÉTÉ in raw UTF-8
]


def subject_set(env):
    msgs = []
    for i, subj in enumerate(SUBJECTS, 1):
        h = ["Date: Wed, 1 Jan 2020 %02d:00:00 +0000" % i,
             "From: a@example.org", "Message-ID: <b%d@example.org>" % i]
        if subj is not None:
            h.append("Subject: " + subj)
        msgs.append(msg(h))
    put(env, msgs)
    s = env.session()
    s.ok("SELECT INBOX")
    return s


def test_base_subject(env):
    s = subject_set(env)
    # "" < "E\u0301TE\u0301" < "REX: SUBJECT" < "SUB JECT" < "SUBJECT"
    # < "[BLOB]"; ties by sequence number
    assert sort_result(s.ok("SORT (SUBJECT) UTF-8 ALL")) == \
        [9, 10, 16, 7, 8, 17, 15, 12, 13, 1, 2, 3, 4, 6, 11, 14, 5]
    # one thread per base subject, dates ascending with the numbers
    assert thread_result(s.ok("THREAD ORDEREDSUBJECT UTF-8 ALL")) == \
        "(1 (2)(3)(4)(6)(11)(14))(5)(7 (8)(17))(9 (10)(16))(12 13)(15)"


def test_base_subject_threads(env):
    """REFERENCES without any references: threads by base subject only;
    within one subject a message that is not a reply leads, and two
    that are not replies share a dummy parent"""
    s = subject_set(env)
    # replies (refwd, (fwd), [fwd:]): 1 3 4 6 9 10 11 13;  not: 2 5 7 8
    # 12 14 15 16 17 (a blob does not make a reply).  SUBJECT: 2 is the
    # first that is not a reply, so 1 3 4 6 11 become its children, in
    # date order; then 14, not a reply either, and 2 go under a dummy.
    # ÉTÉ: 7 8 17, none a reply: a dummy for 7 and 8, which 17 joins.
    # SUB JECT: 13 is a reply to 12.  Empty subjects stay alone.
    assert thread_result(s.ok("THREAD REFERENCES UTF-8 ALL")) == \
        "((2 (1)(3)(4)(6)(11))(14))(5)((7)(8)(17))(9)(10)(12 13)(15)(16)"


# --- dates (RFC 5256 2.2) ---------------------------------------------------

def test_sent_date_rules(env):
    msgs = [
        # 1: 1969-12-31 23:30 UTC, before 1970
        (msg(["Date: Wed, 31 Dec 1969 20:00:00 -0330", "Subject: a"]), 5),
        # 2: no Date: INTERNALDATE (BASE + 1)
        (msg(["Subject: b"]), 1),
        # 3: unreadable Date: INTERNALDATE (BASE + 2)
        (msg(["Date: sometime soon", "Subject: c"]), 2),
        # 4: a day with a bad time: midnight UTC of that day
        (msg(["Date: 2 Jan 1980 25:61 +0100", "Subject: d"]), 0),
        # 5: an unknown zone is UTC; 1 Jan 1980 12:00
        (msg(["Date: 1 Jan 1980 12:00:00 XYZ", "Subject: e"]), 0),
        # 6: two-digit year 80 is 1980; 1 Jan 1980 11:59 UTC
        (msg(["Date: Tue, 01 Jan 80 06:59:00 EST", "Subject: f"]), 0),
        # 7: the year 1900
        (msg(["Date: 1 Jan 1900 00:00:00 +0000", "Subject: g"]), 0),
        # 8: comments and folding inside
        (msg(["Date: Thu (day), 3 Jan\n 1980 00:00:00 (midnight) +0000",
              "Subject: h"]), 0),
    ]
    put(env, msgs)
    s = env.session()
    s.ok("SELECT INBOX")
    assert sort_result(s.ok("SORT (DATE) UTF-8 ALL")) == \
        [7, 1, 6, 5, 4, 8, 2, 3]
    assert sort_result(s.ok("SORT (ARRIVAL) UTF-8 ALL")) == \
        [4, 5, 6, 7, 8, 2, 3, 1]


# --- threads ---------------------------------------------------------------

def thread_msg(n, mid, subject, refs=None, irt=None, date=None):
    h = ["Date: %s" % (date or "Wed, 1 Jan 2020 %02d:00:00 +0000" % n),
         "From: t%d@example.org" % n, "Subject: " + subject,
         "Message-ID: " + mid]
    if refs:
        h.append("References: " + refs)
    if irt:
        h.append("In-Reply-To: " + irt)
    return msg(h)


THREADSET = [
    thread_msg(1, "<a@x>", "thread one"),
    thread_msg(2, "<b@x>", "Re: thread one", refs="<a@x>"),
    thread_msg(3, "<c@x>", "Re: thread one", irt="<b@x> (Bob's message)"),
    thread_msg(4, "<d@x>", "Re: thread one", refs="<a@x>\n <missing1@x>"),
    thread_msg(5, '<"e"@x>', "lonely"),
    thread_msg(6, "<f@x>", "Re: lonely", refs="<e@x>"),
    thread_msg(7, "<g@x>", "orphans", refs="<gone@x>"),
    thread_msg(8, "<h@x>", "Re: orphans", refs="<gone@x>"),
    thread_msg(9, "<i@x>", "single", refs="<gone2@x>"),
    thread_msg(10, "<a@x>", "dup"),
    thread_msg(11, "<k@x>", "Re: thread one", refs="<a@x>",
               date="Wed, 1 Jan 2020 01:30:00 +0000"),
    thread_msg(12, "<l@x>", "Re: lonely"),
    thread_msg(13, "<m@x>", "orphans"),
    thread_msg(14, "<n@x>", "fresh"),
    thread_msg(15, "<o@x>", "fresh"),
    thread_msg(16, "<p@x>", "Re: loop", refs="<q@x>"),
    thread_msg(17, "<q@x>", "loop", refs="<p@x>"),
]


def test_thread_references(env):
    """Worked through RFC 5256 section 3 by hand:
    (1) 2->1, 3->2 (In-Reply-To), 4->missing1->1, 6->5 ("e"@x is e@x),
        7,8->gone, 9->gone2, 10 repeats 1's Message-ID and stands
        alone, 11->1, 17 is 16's parent and 17->16 would loop;
    (3) missing1 goes, 4 under 1; gone keeps 7 and 8; gone2 gives way
        to 9;
    (5) 12 (a reply) joins 5; 13 joins the dummy gone; 14 and 15 (no
        replies) get a new dummy;
    (6) siblings by date: 11 (01:30) before 2."""
    put(env, THREADSET)
    s = env.session()
    s.ok("SELECT INBOX")
    assert thread_result(s.ok("THREAD REFERENCES UTF-8 ALL")) == \
        "(1 (11)(2 3)(4))(5 (6)(12))((7)(8)(13))(9)(10)((14)(15))(17 16)"
    assert thread_result(s.ok("THREAD ORDEREDSUBJECT UTF-8 ALL")) == \
        "(1 (11)(2)(3)(4))(5 (6)(12))(7 (8)(13))(9)(10)(14 15)(16 17)"
    # only the messages searched: 1 is not there, so a@x is a dummy
    assert thread_result(s.ok("THREAD REFERENCES UTF-8 2:4")) == \
        "((2 3)(4))"
    assert thread_result(s.ok("THREAD REFERENCES UTF-8 SUBJECT orphans")) \
        == "((7)(8)(13))"
    assert thread_result(s.ok("UID THREAD REFERENCES UTF-8 ALL")) == \
        "(1 (11)(2 3)(4))(5 (6)(12))((7)(8)(13))(9)(10)((14)(15))(17 16)"


def test_uid_thread_after_expunge(env):
    """without 1, message 10 is the first to carry <a@x> and becomes the
    parent of 1's children"""
    put(env, THREADSET)
    s = env.session()
    s.ok("SELECT INBOX")
    s.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    s.ok("EXPUNGE")
    assert thread_result(s.ok("UID THREAD REFERENCES UTF-8 ALL")) == \
        "(5 (6)(12))((7)(8)(13))(9)(10 (11)(2 3)(4))((14)(15))(17 16)"
    assert thread_result(s.ok("THREAD REFERENCES UTF-8 ALL")) == \
        "(4 (5)(11))((6)(7)(12))(8)(9 (10)(1 2)(3))((13)(14))(16 15)"
    assert thread_result(s.ok("UID THREAD ORDEREDSUBJECT UTF-8 ALL")) == \
        "(11 (2)(3)(4))(5 (6)(12))(7 (8)(13))(9)(10)(14 15)(16 17)"


def test_thread_deep_and_wide(env):
    """a chain of 3000 replies and 3000 siblings: no recursion limit, no
    quadratic time (the test timeout would catch it)"""
    msgs = [thread_msg(0, "<r0@x>", "root",
                       date="Wed, 1 Jan 2020 00:00:00 +0000")]
    for i in range(1, 3000):
        msgs.append(thread_msg(0, "<r%d@x>" % i, "Re: root",
                               irt="<r%d@x>" % (i - 1),
                               date="Wed, 1 Jan 2020 00:00:%02d +0000"
                               % (i % 60)))
    for i in range(3000):
        msgs.append(thread_msg(0, "<w%d@x>" % i, "Re: wide",
                               refs="<wide-root@x>",
                               date="Thu, 2 Jan 2020 00:00:00 +0000"))
    put(env, msgs)
    s = env.session()
    s.ok("SELECT INBOX")
    t = thread_result(s.ok("THREAD REFERENCES UTF-8 ALL"))
    chain = "(" + " ".join(str(i) for i in range(1, 3001)) + ")"
    wide = "(" + "".join("(%d)" % i for i in range(3001, 6001)) + ")"
    assert t == chain + wide, t[:200]


# --- the corpus against Dovecot ----------------------------------------------

CORPUS_COMMANDS = [
    "SORT (ARRIVAL) UTF-8 ALL", "SORT (DATE) UTF-8 ALL",
    "SORT (SIZE) UTF-8 ALL", "SORT (SUBJECT) UTF-8 ALL",
    "SORT (FROM) UTF-8 ALL", "SORT (TO) UTF-8 ALL", "SORT (CC) UTF-8 ALL",
    "SORT (DISPLAYFROM) UTF-8 ALL", "SORT (DISPLAYTO) UTF-8 ALL",
    "SORT (REVERSE SUBJECT REVERSE DATE) UTF-8 ALL",
    "SORT (FROM REVERSE SIZE) UTF-8 1:200",
    "THREAD ORDEREDSUBJECT UTF-8 ALL", "THREAD REFERENCES UTF-8 ALL",
]


def corpus(env):
    files = sorted(glob.glob(os.path.join(lib.CORPUS, "**", "*.eml"),
                             recursive=True))
    files = [f for f in files
             if os.path.relpath(f, lib.CORPUS) not in INTENDED]
    if not files:
        raise lib.Skip("no corpus at %s" % lib.CORPUS)
    data = []
    for f in files:
        with open(f, "rb") as fh:
            data.append(fh.read())
    return data


def dovecot_run(env, maildir, commands):
    """the SORT or THREAD line Dovecot answers each command with, after
    SELECT INBOX, one command at a time"""
    s = lib.dovecot_session(env, maildir)
    s.ok("SELECT INBOX")
    res = []
    for c in commands:
        found = [x.rstrip() for x in s.ok(c)
                 if re.match(rb"\* (SORT|THREAD)\b", x)]
        assert len(found) == 1, (c, found)
        res += found
    s.logout()
    return res


def test_corpus_matches_dovecot(env):
    data = corpus(env)
    dmail = os.path.join(env.dir, "dovecot", "Maildir")
    for d in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(dmail, d))
    put(env, data)
    put(env, data, dmail)
    dv = dovecot_run(env, dmail, CORPUS_COMMANDS)
    s = env.session()
    s.ok("SELECT INBOX")
    diff = []
    for c, want in zip(CORPUS_COMMANDS, dv):
        got = [x.rstrip() for x in s.ok(c)
               if re.match(rb"\* (SORT|THREAD)\b", x)]
        if got != [want]:
            diff.append(c)
    print("corpus: %d messages, %d/%d commands as Dovecot answers them"
          % (len(data), len(CORPUS_COMMANDS) - len(diff),
             len(CORPUS_COMMANDS)))
    assert not diff, diff
