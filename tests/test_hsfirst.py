"""The first header sync of a folder (no message cache yet): the sizes and
line counts BODYSTRUCTURE gives for bodies of every shape, delimiters
found wherever they fall in the scan's blocks, messages read into memory
and mapped, headers too long to list, the Content-Type of many parts,
strings quoted or sent as literals, INTERNALDATE in zones off the hour,
flag lists of messages in a row, and files that are renamed or vanish
between SELECT and FETCH.  The answers are computed here from the bytes."""
import os
import random

import lib
from test_mime import put

from test_fetch_speedpath import DROP_STEP, HEADERS, READ_MAX


def crlf_size(b):
    """octets in CRLF form: every LF without a CR before it gains one"""
    return len(b) + sum(1 for i, c in enumerate(b)
                        if c == 10 and (i == 0 or b[i - 1] != 13))


def kids(bs):
    """the parts of a multipart's BODY or BODYSTRUCTURE: its first lists"""
    out = []
    for x in bs:
        if not isinstance(x, list):
            break
        out.append(x)
    return out


def by_uid(lines):
    out = {}
    for items in lib.fetches(lines).values():
        out[int(items["UID"])] = items
    return out


def bodies():
    """bodies whose line ends fall on and around the scan's 16-octet
    blocks and its steps: long lines, no final newline, CR alone, CRLF
    split by a block edge, nothing at all"""
    rnd = random.Random(12)
    out = [b"", b"\n", b"\r", b"\r\n", b"\n\r", b"x", b"x" * 100000,
           b"x" * 100000 + b"\n" + b"y" * 3, b"\r" * 40, b"\n" * 33,
           b"\r\n" * 17 + b"\n" + b"\r" * 5]
    for k in range(0, 40):
        out.append(b"a" * k + b"\r\n" + b"b" * (31 - k % 32) + b"\n")
        out.append(b"a" * k + b"\r" + b"\n" * (k % 3))
    for n in (15, 16, 17, 31, 32, 33, 255 * 16 + 1, 4081, 70000):
        out.append(bytes(rnd.choice(b"ab\r\n-") for _ in range(n)))
    return out


def text_message(body):
    return b"Subject: lines\n\n" + body


def test_text_sizes_and_lines(env):
    """a text/plain body of any shape: BODYSTRUCTURE's size is the body's
    in CRLF form and its lines its LFs; RFC822.SIZE the whole message's"""
    msgs = [text_message(b) for b in bodies()]
    put(env, msgs)
    s = env.session()
    s.ok("SELECT INBOX")
    got = by_uid(s.ok("UID FETCH 1:* (RFC822.SIZE BODYSTRUCTURE)"))
    s.logout()
    assert len(got) == len(msgs)
    for uid, (m, b) in enumerate(zip(msgs, bodies()), 1):
        bs = got[uid]["BODYSTRUCTURE"]
        assert bs[:2] == [b"text", b"plain"], bs
        assert (int(bs[6]), int(bs[7])) == (crlf_size(b), b.count(b"\n")), \
            (uid, b[:40])
        assert int(got[uid]["RFC822.SIZE"]) == crlf_size(m), uid


def multipart(parts, lf, pad):
    """parts of text/plain after a preamble of pad octets; each body ends
    where a delimiter line starts"""
    out = [b"Content-Type: multipart/mixed; boundary=B", b"", b"x" * pad]
    for p in parts:
        out += [b"--B", b"Content-Type: text/plain", b"", p]
    out.append(b"--B--")
    return lf.join(out) + lf


def test_delimiters_across_blocks(env):
    """a delimiter line at every offset of a 16-octet block, its LF the
    last octet of the block before, among lines that start with '-' and
    delimit nothing; LF and CRLF: the parts and their sizes"""
    decoys = b"-\n- x\n--\n-- \n--C\n---B\n-x-\n"
    msgs, want = [], []
    for pad in range(0, 34):
        for lf in (b"\n", b"\r\n"):
            parts = [b"a" * pad, decoys.replace(b"\n", lf) + b"z" * pad,
                     b"q" * (pad * 7 % 23)]
            msgs.append(multipart(parts, lf, pad))
            want.append(parts)
    put(env, msgs)
    s = env.session()
    s.ok("SELECT INBOX")
    got = by_uid(s.ok("UID FETCH 1:* (BODYSTRUCTURE)"))
    s.logout()
    for uid, parts in enumerate(want, 1):
        bs = got[uid]["BODYSTRUCTURE"]
        assert len(kids(bs)) == len(parts), (uid, bs)
        for k, p in zip(kids(bs), parts):
            assert (int(k[6]), int(k[7])) == \
                (crlf_size(p), p.count(b"\n")), (uid, p[:30])


def test_large_messages_read_and_mapped(env):
    """messages around the read limit and past a scan step, a delimiter
    beyond the first megabyte: the same sizes, lines and parts as the
    bytes give, and BODY[] the file itself"""
    line = b"0123456789" * 7 + b"\n"
    tail = b"tail\r\nend"
    msgs, want = [], []
    for total in (READ_MAX - 1, READ_MAX, READ_MAX + 1, DROP_STEP + 4097):
        room = total - len(multipart([b"", tail], b"\n", 0))
        parts = [(line * (room // len(line) + 1))[:room], tail]
        m = multipart(parts, b"\n", 0)
        assert len(m) == total
        msgs.append(m)
        want.append(parts)
    put(env, msgs)
    s = env.session()
    s.ok("SELECT INBOX")
    got = by_uid(s.ok("UID FETCH 1:* (RFC822.SIZE BODYSTRUCTURE)"))
    for uid, (m, parts) in enumerate(zip(msgs, want), 1):
        bs = got[uid]["BODYSTRUCTURE"]
        assert [(int(k[6]), int(k[7])) for k in kids(bs)] == \
            [(crlf_size(p), p.count(b"\n")) for p in parts], uid
        assert int(got[uid]["RFC822.SIZE"]) == crlf_size(m), uid
        whole = lib.fetches(s.ok("UID FETCH %d BODY.PEEK[]" % uid))
        assert list(whole.values())[0]["BODY[]"] == lib.crlf(m), uid
    s.logout()


def test_header_too_long_to_list(env):
    """a header of 1,500 fields before the ones that matter (more than the
    message code keeps in a list): the envelope, the type and the header
    fields as they are"""
    pad = b"".join(b"X-Pad-%d: %d\n" % (i, i) for i in range(1500))
    head = (b"From: Ann <ann@example.org>\nSubject: deep\n"
            b"Content-Type: text/html; charset=utf-8\n")
    msgs = [pad + head + b"\n<p>hi</p>\n", head + pad + b"\nbody\n"]
    put(env, msgs)
    s = env.session()
    s.ok("SELECT INBOX")
    got = by_uid(s.ok("UID FETCH 1:* (ENVELOPE BODYSTRUCTURE "
                      "BODY.PEEK[HEADER.FIELDS (Subject Content-Type)])"))
    s.logout()
    for uid in (1, 2):
        env_ = got[uid]["ENVELOPE"]
        assert env_[1] == b"deep", env_
        assert env_[2] == [[b"Ann", None, b"ann", b"example.org"]], env_
        bs = got[uid]["BODYSTRUCTURE"]
        assert bs[:3] == [b"text", b"html", [b"charset", b"utf-8"]], bs
        assert got[uid]["BODY[HEADER.FIELDS (SUBJECT CONTENT-TYPE)]"] == \
            b"Subject: deep\r\nContent-Type: text/html; charset=utf-8" \
            b"\r\n\r\n"


def test_many_parts_keep_their_types(env):
    """70 parts, each with its own type and charset (past the parts whose
    Content-Type parsing keeps): each as its header says"""
    out = [b"Content-Type: multipart/mixed; boundary=Z", b""]
    for i in range(70):
        out += [b"--Z", b"Content-Type: text/x-p%d; charset=c%d" % (i, i),
                b"Content-Disposition: inline; filename=f%d" % i, b"",
                b"body %d" % i]
    out.append(b"--Z--")
    put(env, [b"\n".join(out) + b"\n"])
    s = env.session()
    s.ok("SELECT INBOX")
    got = by_uid(s.ok("UID FETCH 1 (BODY BODYSTRUCTURE)"))
    s.logout()
    for item in ("BODY", "BODYSTRUCTURE"):
        parts = kids(got[1][item])
        assert len(parts) == 70, got[1][item]
        for i, k in enumerate(parts):
            assert k[:3] == [b"text", b"x-p%d" % i,
                             [b"charset", b"c%d" % i]], (item, i, k)
        if item == "BODYSTRUCTURE":
            assert parts[69][9] == [b"inline", [b"filename", b"f69"]]


def test_strings_quoted_or_literal(env):
    """quotes and backslashes escaped in a quoted string; 8-bit octets and
    values past 1,024 octets sent as literals, with what they hold"""
    subjects = [b'say "hi" \\ back', b"caf\xc3\xa9 \"x\"", b"s" * 1024,
                b"t" * 1025, b"\\"]
    msgs = [b"Subject: " + x + b"\nFrom: \"A \\\"q\\\"\" <a@b.c>\n\nx\n"
            for x in subjects]
    put(env, msgs)
    s = env.session()
    s.ok("SELECT INBOX")
    lines = s.ok("UID FETCH 1:* (ENVELOPE)")
    got = by_uid(lines)
    s.logout()
    raw = b"".join(lines)
    assert b'"say \\"hi\\" \\\\ back"' in raw
    assert b"{1025}\r\n" + b"t" * 1025 in raw
    assert b'"' + b"s" * 1024 + b'"' in raw
    for uid, x in enumerate(subjects, 1):
        e = got[uid]["ENVELOPE"]
        assert e[1] == x, (uid, e[1])
        assert e[2][0][0] == b'A "q"', e[2]


def test_internaldate_in_zones_off_the_hour(env):
    """INTERNALDATE as RFC 3501 writes it, in zones east and west of UTC
    by hours and a half (POSIX TZ strings: no zone files needed)"""
    t = 1700000000 + 3 * 86400 + 3723	# 2023-11-17 23:15:23 UTC
    put(env, [b"Subject: d\n\nx\n"])
    os.utime(os.path.join(env.maildir, "cur",
                          sorted(os.listdir(os.path.join(env.maildir,
                                                         "cur")))[0]), (t, t))
    for tz, want in (("UTC0", b"17-Nov-2023 23:15:23 +0000"),
                     ("IST-5:30", b"18-Nov-2023 04:45:23 +0530"),
                     ("NST3:30", b"17-Nov-2023 19:45:23 -0330"),
                     ("XST11", b"17-Nov-2023 12:15:23 -1100")):
        s = env.session(TZ=tz)
        s.ok("SELECT INBOX")
        got = by_uid(s.ok("UID FETCH 1 (INTERNALDATE)"))
        s.logout()
        assert got[1]["INTERNALDATE"] == want, (tz, got)


def test_flag_lists_in_a_row(env):
    """messages whose flags change from one to the next and back: each
    FETCH carries its own"""
    flags = ["S", "S", "", "FS", "FS", "S", "", "DRS", "S"]
    for i, f in enumerate(flags):
        env.deliver(b"Subject: f%d\n\nx\n" % i, flags=f)
    names = {"S": "\\Seen", "F": "\\Flagged", "D": "\\Draft",
             "R": "\\Answered"}
    s = env.session()
    s.ok("SELECT INBOX")
    got = by_uid(s.ok(HEADERS))
    s.logout()
    for uid, f in enumerate(flags, 1):
        assert sorted(got[uid]["FLAGS"]) == sorted(names[c] for c in f), \
            (uid, got[uid]["FLAGS"])
        assert got[uid]["ENVELOPE"][1] == b"f%d" % (uid - 1)


def test_files_renamed_or_gone_between_select_and_fetch(env):
    """after SELECT another program renames one file (a flag change) and
    deletes another: the renamed one answers in full, the rest too, and
    the command completes"""
    for i in range(6):
        env.deliver(b"From: x%d@example.org\nSubject: m%d\n\nbody %d\n"
                    % (i, i, i), flags="")
    s = env.session()
    s.ok("SELECT INBOX")
    cur = os.path.join(env.maildir, "cur")
    names = sorted(os.listdir(cur))
    os.rename(os.path.join(cur, names[1]),
              os.path.join(cur, names[1].replace(":2,", ":2,F")))
    os.unlink(os.path.join(cur, names[3]))
    lines, tagged = s.cmd(HEADERS)
    assert tagged.split()[1] in (b"OK", b"NO"), tagged
    got = by_uid(lines)
    for uid in (1, 2, 3, 5, 6):
        assert got[uid]["ENVELOPE"][1] == b"m%d" % (uid - 1), got[uid]
        assert int(got[uid]["RFC822.SIZE"]) == \
            len(b"From: x0@example.org\nSubject: m0\n\nbody 0\n") + 4
    # the next command still reads the folder, from the new name
    got = by_uid(s.ok("UID FETCH 2 (BODY.PEEK[TEXT])"))
    assert got[2]["BODY[TEXT]"] == b"body 1\r\n"
    s.logout()
