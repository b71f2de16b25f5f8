"""The fast paths of what a phone fetches and searches give the answers
the slow ones gave: small messages read into memory and large ones mapped
answer alike (and as Dovecot does), a multipart's boundaries are found
past the point where a scan gives pages back, a cached header sync and
SEARCH HEADER open no message file, and UID FETCH of flags alone is
written as the general path writes it."""
import base64
import os
import random
import re

import lib
from lib import make_msg
from test_mime import put

READ_MAX = 1000 << 10		# config.def.h MSG_READ_MAX
DROP_STEP = 1 << 20		# mimeint.h: scans give pages back this often

HEADERS = ("UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE "
           "BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject "
           "Date Message-ID Priority X-Priority References Newsgroups "
           "In-Reply-To Content-Type Reply-To)])")
ITEMS = ("RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS "
         "(Subject From)] BODY.PEEK[1] BINARY.SIZE[2] BODY.PEEK[2.MIME]")


def multipart(total, lf=b"\n"):
    """a multipart/mixed message of exactly total octets: a text part
    with lines that start with '-' but delimit nothing, a base64 part, and
    a last text part padded to the size"""
    text = lf.join([b"Dear reader,", b"-- ", b"--C", b"---B not quite",
                    b"----- forwarded -----", b"- a list item", b"-", b""])
    head = lf.join([b"From: Bob <bob@example.org>", b"To: a@example.org",
                    b"Subject: =?utf-8?q?gr=C3=BC=C3=9Fe?= size %d" % total,
                    b"Date: Mon, 2 Jan 2023 10:00:00 +0000",
                    b"MIME-Version: 1.0",
                    b"Content-Type: multipart/mixed; boundary=B", b"", b""])
    rnd = random.Random(total)
    raw = bytes(rnd.getrandbits(8) for _ in range(max(0, total - 2000)
                                                      * 7 // 10))
    b64 = base64.encodebytes(raw).replace(b"\n", lf)
    msg = (head + b"--B" + lf + b"Content-Type: text/plain" + lf + lf +
           text + b"--B" + lf + b"Content-Type: application/octet-stream" +
           lf + b"Content-Transfer-Encoding: base64" + lf + lf + b64 +
           b"--B" + lf + b"Content-Type: text/plain; charset=us-ascii" +
           lf + lf + b"the end" + lf)
    pad = total - len(msg) - len(b"--B--" + lf) - len(lf)
    assert pad >= 0, (total, len(msg))
    line = b"x" * 70 + lf
    return (msg + line * (pad // len(line)) + b"y" * (pad % len(line)) +
            lf + b"--B--" + lf)


def fetch_each(s, n, items):
    out = {}
    for i in range(1, n + 1):
        u = s.ok("FETCH %d (%s)" % (i, items))
        out.update(lib.fetches(u))
    return out


def test_read_and_mapped_messages_answer_alike(env):
    """messages just under and over the size read into memory, and past
    a drop step (a boundary beyond the first megabyte), with LF and CRLF
    line ends: the structure items, sections and sizes as Dovecot gives
    them, BODY[] the file itself"""
    sizes = [2000, READ_MAX - 1, READ_MAX, READ_MAX + 1,
             DROP_STEP + 4096, 2 * DROP_STEP + 100]
    msgs = [multipart(n) for n in sizes] + [multipart(READ_MAX - 10, b"\r\n"),
                                            multipart(DROP_STEP + 9, b"\r\n")]
    assert [len(m) for m in msgs[:6]] == sizes
    dmail = os.path.join(env.dir, "dovecot", "Maildir")
    for d in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(dmail, d))
    put(env, msgs)
    put(env, msgs, dmail)
    s = env.session()
    s.ok("SELECT INBOX")
    me = fetch_each(s, len(msgs), ITEMS)
    whole = fetch_each(s, len(msgs), "BODY.PEEK[]")
    s.logout()
    d = lib.dovecot_session(env, dmail)
    d.ok("SELECT INBOX")
    dv = fetch_each(d, len(msgs), ITEMS)
    d.logout()
    for i, m in enumerate(msgs, 1):
        assert me[i] == dv[i], (i, len(m), me[i].keys())
        assert whole[i]["BODY[]"] == lib.crlf(m), i
        assert int(me[i]["RFC822.SIZE"]) == len(lib.crlf(m)), i


def test_cached_header_sync_opens_no_file(env):
    """the header sync a second time, in a new session, with every message
    file unreadable (mode 000, the server not root) and names without
    ",W=": the same answer, from the message cache; so are SEARCH HEADER
    on a cached field and UID FETCH of flags"""
    msgs = [multipart(3000 + 500 * i) for i in range(6)]
    msgs += [make_msg("meeting %d" % i, frm="Carol <c%d@example.org>" % i)
             for i in range(6)]
    msgs += [make_msg("=?utf-8?q?Meeting_caf=C3=A9?="), make_msg("other")]
    put(env, msgs)
    searches = ['UID SEARCH HEADER Subject "meeting"',
                'UID SEARCH HEADER Subject "CAFÉ"',
                'UID SEARCH HEADER From "c3@example"',
                'UID SEARCH NOT HEADER Subject "meeting"']
    s = env.session()
    s.ok("SELECT INBOX")
    first = s.ok(HEADERS)
    found = [lib.search_result(s.ok(c)) for c in searches]
    flags = s.ok("UID FETCH 1:* (UID FLAGS)")
    s.logout()
    assert found[0] == [7, 8, 9, 10, 11, 12, 13], found
    assert found[1] == [13], found
    assert found[2] == [10], found
    cur = os.path.join(env.maildir, "cur")
    for n in os.listdir(cur):
        os.chmod(os.path.join(cur, n), 0)
    try:
        s = env.session()
        s.ok("SELECT INBOX")
        assert s.ok(HEADERS) == first
        assert [lib.search_result(s.ok(c)) for c in searches] == found
        assert s.ok("UID FETCH 1:* (UID FLAGS)") == flags
        # a section not cached needs the file: it cannot be read
        u, t = s.cmd("FETCH 1 (BODY.PEEK[TEXT])")
        assert re.match(rb"\S+ NO\b", t) or \
            not re.search(rb"BODY\[TEXT\] \{[1-9]", b"".join(u)), (u, t)
        s.logout()
    finally:
        for n in os.listdir(cur):
            os.chmod(os.path.join(cur, n), 0o600)


def test_search_header_without_cache_agrees(env):
    """SEARCH HEADER answered from the message cache, from the messages
    (the cache deleted) and with part of the folder cached give the same
    UIDs"""
    msgs = [make_msg(("Re: meeting %d" if i % 3 else "lunch %d") % i,
                     frm="P%d <p%d@example.org>" % (i, i)) for i in range(40)]
    put(env, msgs)
    cmds = ['UID SEARCH HEADER Subject "meeting"',
            'UID SEARCH HEADER From "p1"',
            'UID SEARCH OR HEADER Subject "lunch" HEADER X-None ""']
    s = env.session()
    s.ok("SELECT INBOX")
    plain = [s.ok(c)[-1:] for c in cmds]
    s.ok("FETCH 1:10 (BODY.PEEK[HEADER.FIELDS (Subject From)])")
    part = [s.ok(c)[-1:] for c in cmds]
    s.ok(HEADERS)
    full = [s.ok(c)[-1:] for c in cmds]
    s.logout()
    assert plain == part == full, (plain, part, full)
    assert lib.search_result(plain[0]) == [i + 1 for i in range(40) if i % 3]


def test_flags_only_fetch_as_general_path(env):
    """UID FETCH of UID, FLAGS and MODSEQ alone (the quick path) says what
    the general path says with another item beside: keywords, \\Recent,
    sequence numbers, MODSEQ after CONDSTORE, a flag change in between"""
    for i in range(12):
        env.deliver(make_msg("m%d" % i),
                    flags=[None, "S", "SF", "RS"][i % 4])
    s = env.session()
    s.ok("SELECT INBOX")
    s.ok("STORE 3,7 +FLAGS ($Label1 work)")
    s.ok("ENABLE CONDSTORE")

    def strip(lines, item):
        return [re.sub(rb" %s [^ )]+" % item, b"", x) for x in lines
                if x.startswith(b"* ")]
    for items in ("UID FLAGS", "FLAGS", "FLAGS UID MODSEQ", "MODSEQ",
                  "FLAGS FLAGS"):
        quick = s.ok("UID FETCH 1:* (%s)" % items)
        general = s.ok("UID FETCH 1:* (%s RFC822.SIZE)" % items)
        assert [x for x in quick if x.startswith(b"* ")] == \
            strip(general, b"RFC822.SIZE"), items
        assert len(quick) == 12
        assert re.search(rb"\$Label1 work", b"".join(quick)) or \
            b"FLAGS" not in items.encode()
    seq = s.ok("FETCH 2:4 (FLAGS)")
    assert [x.split(b" ")[1] for x in seq] == [b"2", b"3", b"4"]
    s.logout()


def test_cached_commands_look_at_no_message_file(env):
    """traced: after a first header sync, a new session's UID FETCH of
    flags, the header sync and SEARCH HEADER on a cached field neither
    open nor stat any message file"""
    from test_store_inotify import Trace
    put(env, [make_msg("meeting %d" % i) for i in range(30)] +
        [multipart(5000)])
    s = env.session()
    s.ok("SELECT INBOX")
    s.ok(HEADERS)
    s.logout()
    s = env.session()
    s.ok("SELECT INBOX")
    s.ok("NOOP")
    tr = Trace(s.p.pid, os.path.join(env.dir, "strace.out"),
               "openat,open,stat,lstat,newfstatat,statx,access")
    try:
        flags = s.ok("UID FETCH 1:* (UID FLAGS)")
        sync = s.ok(HEADERS)
        found = lib.search_result(s.ok('UID SEARCH HEADER Subject "ting 2"'))
    finally:
        out = tr.stop()
    s.logout()
    assert len(flags) == 31 and len(sync) == 31
    assert found == [3] + list(range(21, 31)), found
    touched = re.findall(r'"[^"]*/(?:cur|new)/[^"]+"', out)
    assert not touched, touched[:5]
