"""FETCH items read once: section specs and partial ranges through the one
command grammar, and one look at each message for all the items of a
FETCH (RFC 3501 6.4.5 and 9, RFC 3516)."""
import re

import lib
import test_mime as M
import test_sections as S


def items(lines):
    """{msgno: {item: value}} of untagged lines"""
    got = M.fetch_items(b"".join(x + b"\r\n" for x in lines))
    return {n: {k: v[1] if isinstance(v, tuple) else v
                for k, v in d.items()} for n, d in got.items()}


def session_with(env, messages):
    M.put(env, messages)
    s = env.session()
    s.ok("SELECT INBOX")
    return s


def test_many_items_answer_as_separate_fetches(env):
    """BODYSTRUCTURE, ENVELOPE and every section form of every part in
    one FETCH (one parse of the message) answer exactly as each item
    fetched on its own, in either order"""
    msgs = [m.encode() for m in S.MESSAGES.values()]
    msgs += [S.with_crlf(m) for m in S.MESSAGES.values()]
    s = session_with(env, msgs)
    compared = 0
    for n in range(1, len(msgs) + 1):
        bs = S.fetch(s, n, "BODYSTRUCTURE")[b"BODYSTRUCTURE"]
        forms = ["BODYSTRUCTURE", "ENVELOPE", "BODY", "BODY.PEEK[]",
                 "BODY.PEEK[HEADER]", "BODY.PEEK[TEXT]<2.40>"]
        for path, leaf in S.part_paths(bs) + [("9", True)]:
            forms += [f % path for f in
                      (S.FORMS if leaf else S.FORMS[:-2])]
        together = items(s.ok("FETCH %d (%s)" % (n, " ".join(forms))))[n]
        backwards = items(s.ok("FETCH %d (%s)" %
                               (n, " ".join(reversed(forms)))))[n]
        assert together == backwards, n
        alone = {}
        for f in forms:
            alone.update(items(s.ok("FETCH %d (%s)" % (n, f)))[n])
        assert together == alone, (n, set(together) ^ set(alone))
        compared += len(alone)
    assert compared > 150, compared
    s.logout()


SUBJECT = b"Subject: odd quoting\r\n"
QUOTED = (b"From: a@example.org\r\n" + SUBJECT +
          b"X Y: spaced name\r\na]b: bracket\r\na\"b: quote\r\n"
          b"\r\nbody\r\n")


def test_section_spec_quoting(env):
    """the forms one section may take parse to the same section: case,
    quoted names, atoms; the response names it in one canonical form"""
    s = session_with(env, [QUOTED])
    same = ['BODY.PEEK[HEADER.FIELDS (SUBJECT)]',
            'body.peek[header.fields (subject)]',
            'BODY.PEEK[HEADER.FIELDS ("Subject")]',
            'BODY.PEEK[Header.Fields ("SUBJECT")]']
    for f in same:
        got = items(s.ok("FETCH 1 (%s)" % f))[1]
        assert got == {b"BODY[HEADER.FIELDS (SUBJECT)]": SUBJECT + b"\r\n"}, \
            (f, got)
    # names that are no atom are echoed as strings, unchanged
    u = s.ok('FETCH 1 (BODY.PEEK[HEADER.FIELDS ("X Y" "a]b" "a\\"b" "")])')
    want = b"X Y: spaced name\r\na]b: bracket\r\na\"b: quote\r\n\r\n"
    assert u == [b'* 1 FETCH (BODY[HEADER.FIELDS ("X Y" "a]b" "a\\"b" "")] '
                 b'{%d}\r\n' % len(want) + want + b")"], u
    # HEADER.FIELDS.NOT with partial, BINARY and MIME of part 1 (of a
    # message that is no multipart: the message itself), in canonical form
    head = QUOTED[:QUOTED.index(b"\r\n\r\n") + 4]
    u = s.ok('FETCH 1 (body.peek[header.fields.not (from "X Y" "a]b" '
             '"a\\"b")]<0.13> binary.peek[1] body.peek[1.mime])')
    assert u == [b'* 1 FETCH (BODY[HEADER.FIELDS.NOT (FROM "X Y" "a]b" '
                 b'"a\\"b")]<0> {13}\r\n' + SUBJECT[:13] +
                 b" BINARY[1] ~{6}\r\nbody\r\n BODY[1.MIME] {%d}\r\n"
                 % len(head) + head + b")"], u
    s.logout()


BAD_SPECS = [
    "BODY[1.]", "BODY[0]", "BODY[1.0]", "BODY[01]", "BODY[MIME]",
    "BODY[1.2.]", "BODY[HEADERX]", "BODY[TEXT.HEADER]",
    "BODY[HEADER.FIELDS ()]", "BODY[HEADER.FIELDS (A  B)]",
    "BODY[HEADER.FIELDS(A)]", "BODY[HEADER.FIELDS (A)", "BODY[HEADER.FIELDS]",
    'BODY[HEADER.FIELDS ("A)]', 'BODY[HEADER.FIELDS ("\\a")]',
    "BODY[HEADER.FIELDS (A%B)]", "BODY[HEADER.FIELDS (A) ]",
    "BINARY[1.MIME]", "BINARY[HEADER]", "BINARY.SIZE[1]<0.1>",
    "BODY[]<0.0>", "BODY[]<.1>", "BODY[]<1>", "BODY[]<1.2", "BODY[]<-1.2>",
    "BODY[]<1.99999999999999999999>", "FOO[1]", "ENVELOPE[1]",
    "BODY[1]X", "BODY[99999999999]", "BODY[[]", "BODY[1]]",
    "BODY[" + ".".join(["1"] * 65) + "]",
]


def test_bad_section_specs(env):
    """a spec that is not the grammar gets a tagged BAD, fetches nothing
    and sets no flag; the session goes on"""
    M.put(env, [QUOTED])
    s = env.session()
    s.ok("SELECT INBOX")
    s.ok("STORE 1 -FLAGS.SILENT (\\Seen)")
    for spec in BAD_SPECS:
        u, t = s.bad("FETCH 1 (FLAGS %s)" % spec)
        assert not any(b"FETCH" in x for x in u), (spec, u)
        assert re.match(rb"\S+ BAD [\x20-\x7e]+$", t), (spec, t)
        s.ok("NOOP")	# twenty BADs in a row end the session
    flags = items(s.ok("FETCH 1 FLAGS"))[1][b"FLAGS"]
    assert b"\\Seen" not in flags, flags
    # at the deepest the grammar allows, a path is read (and names no part)
    deep = ".".join(["1"] * 64)
    got = items(s.ok("FETCH 1 (BODY.PEEK[%s])" % deep))[1]
    assert got == {("BODY[%s]" % deep).encode(): b""}, got
    s.logout()


def test_header_section_cache_keys(env):
    """a header section fetched with odd quoting is cached under its
    canonical name: the answer from the cache is the one first made, and
    SEARCH HEADER finds the field through it"""
    s = session_with(env, [QUOTED])
    first = items(s.ok('FETCH 1 (BODY.PEEK[HEADER.FIELDS ("subject")])'))
    again = items(s.ok('FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])'))
    assert first == again, (first, again)
    s.logout()
    s = env.session()
    s.ok("SELECT INBOX")
    assert items(s.ok('FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject)])')) \
        == first
    assert lib.search_result(s.ok('SEARCH HEADER SUBJECT "odd quot"')) \
        == [1]
    assert lib.search_result(s.ok('SEARCH HEADER SUBJECT "nothing"')) == []
    s.logout()
