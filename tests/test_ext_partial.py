"""PARTIAL (RFC 9394): SEARCH and SORT RETURN (PARTIAL m:n) and (PARTIAL
-m:-n), and UID FETCH ... (PARTIAL ...), for paging through a large
mailbox; positive ranges compared with Dovecot (whose CONTEXT=SEARCH has
the RFC 5267 form)."""
import re

import lib
import refimap

N = 120


def mailbox(env):
    """N messages; every third one \\Deleted, subjects in reverse order"""
    for i in range(1, N + 1):
        refimap.deliver(env, i, lib.make_msg("s%04d" % (N - i)),
                        flags="T" if i % 3 == 0 else "")


def esearch(lines):
    found = [x for x in lines if x.startswith(b"* ESEARCH")]
    assert len(found) == 1, lines
    return found[0]


def partial_of(line):
    m = re.search(rb"PARTIAL \((\S+) ([^)]*)\)", line)
    assert m, line
    return m.group(1).decode(), m.group(2).decode()


def expand(s):
    out = []
    for part in s.split(","):
        a, _, b = part.partition(":")
        out.extend(range(int(a), int(b or a) + 1))
    return out


UNDELETED = [i for i in range(1, N + 1) if i % 3]


def test_partial_capability(env):
    s = env.session()
    assert "PARTIAL" in lib.caps_of(s.ok("CAPABILITY")[0])


def test_partial_search_first_and_last(env):
    """RFC 9394 section 3.1: the first page, the last page"""
    mailbox(env)
    s = env.session()
    s.ok("SELECT INBOX")
    rng, res = partial_of(esearch(s.ok(
        "UID SEARCH RETURN (PARTIAL 1:50) UNDELETED")))
    assert rng == "1:50" and expand(res) == UNDELETED[:50], res
    rng, res = partial_of(esearch(s.ok(
        "UID SEARCH RETURN (PARTIAL -1:-30) UNDELETED")))
    assert rng == "-1:-30" and expand(res) == UNDELETED[-30:], res
    # the two ends in either order; a page past the end is NIL
    rng, res = partial_of(esearch(s.ok(
        "SEARCH RETURN (PARTIAL 60:51) UNDELETED")))
    assert rng == "51:60" and expand(res) == UNDELETED[50:60]
    rng, res = partial_of(esearch(s.ok(
        "SEARCH RETURN (PARTIAL 70:100) UNDELETED")))
    assert expand(res) == UNDELETED[69:80], res
    rng, res = partial_of(esearch(s.ok(
        "SEARCH RETURN (PARTIAL 81:100) UNDELETED")))
    assert res == "NIL"
    rng, res = partial_of(esearch(s.ok(
        "SEARCH RETURN (PARTIAL -81:-90) UNDELETED")))
    assert res == "NIL"
    # with COUNT: the total comes along, for the scroll bar
    ln = esearch(s.ok("UID SEARCH RETURN (COUNT PARTIAL -1:-10) "
                      "UNDELETED"))
    assert b" COUNT 80" in ln, ln
    assert expand(partial_of(ln)[1]) == UNDELETED[-10:]


def test_partial_search_errors(env):
    mailbox(env)
    s = env.session()
    s.ok("SELECT INBOX")
    for ret in ("PARTIAL 0:10", "PARTIAL 1:*", "PARTIAL -1:10",
                "PARTIAL 1", "PARTIAL", "PARTIAL 1:10 ALL",
                "PARTIAL 1:2 PARTIAL 3:4", "PARTIAL 1:4294967296"):
        s.bad("SEARCH RETURN (%s) ALL" % ret)
    s.ok("NOOP")


def test_partial_save(env):
    """SAVE with PARTIAL keeps the page (SEARCHRES)"""
    mailbox(env)
    s = env.session()
    s.ok("SELECT INBOX")
    u = s.ok("UID SEARCH RETURN (SAVE PARTIAL -1:-5) UNDELETED")
    assert len(lib.fetches(s.ok("UID FETCH $ (FLAGS)"))) == 5
    got = sorted(d["UID"] for d in
                 lib.fetches(s.ok("UID FETCH $ (UID)")).values())
    assert [int(x) for x in got] == UNDELETED[-5:]


def test_partial_sort(env):
    """ESORT: the page is taken in sort order"""
    mailbox(env)
    s = env.session()
    s.ok("SELECT INBOX")
    ln = esearch(s.ok("UID SORT RETURN (PARTIAL 1:5) (SUBJECT) UTF-8 "
                      "UNDELETED"))
    rng, res = partial_of(ln)
    # subjects run backwards, so subject order is reverse UID order
    assert [int(x) for x in res.split(",")] == UNDELETED[::-1][:5], res
    ln = esearch(s.ok("SORT RETURN (PARTIAL -1:-3 COUNT) (SUBJECT) UTF-8 "
                      "ALL"))
    assert partial_of(ln)[1] == "3,2,1", ln


def test_partial_uid_fetch(env):
    """UID FETCH 1:* (FLAGS) (PARTIAL -1:-30): the newest thirty"""
    mailbox(env)
    s = env.session()
    s.ok("SELECT INBOX")
    f = lib.fetches(s.ok("UID FETCH 1:* (FLAGS) (PARTIAL -1:-30)"))
    assert sorted(f) == list(range(N - 29, N + 1))
    f = lib.fetches(s.ok("UID FETCH 10:* (UID) (PARTIAL 1:5)"))
    assert sorted(int(d["UID"]) for d in f.values()) == list(range(10, 15))
    f = lib.fetches(s.ok("UID FETCH 1:* (UID) (PARTIAL 200:300)"))
    assert f == {}
    s.bad("UID FETCH 1:* (UID) (PARTIAL 0:3)")
    # with CHANGEDSINCE the page is taken among the changed messages
    s.ok("UID STORE 5,7,9,11 +FLAGS (\\Flagged)")
    ms = [int(d["MODSEQ"][0]) for d in lib.fetches(
        s.ok("UID FETCH 5 (MODSEQ)")).values()][0]
    f = lib.fetches(s.ok("UID FETCH 1:* (UID) (CHANGEDSINCE %d PARTIAL "
                         "-1:-2)" % (ms - 1)))
    assert sorted(int(d["UID"]) for d in f.values()) == [9, 11], f


def test_partial_matches_dovecot(env):
    """RFC 5267's positive ranges, as Dovecot's CONTEXT=SEARCH answers
    them"""
    mailbox(env)
    dmail = refimap.copy_maildir(env)
    cmds = ["SELECT INBOX", "UID SEARCH RETURN (PARTIAL 1:50) UNDELETED",
            "SEARCH RETURN (PARTIAL 51:100) UNDELETED",
            "SEARCH RETURN (PARTIAL 100:200) UNDELETED",
            "SEARCH RETURN (COUNT PARTIAL 5:7) DELETED",
            "SEARCH RETURN (PARTIAL 0:7) DELETED"]
    dv = refimap.run(env, dmail, cmds)
    s = env.session()
    ours = refimap.imapd(s, cmds)
    for c, (du, dt), (ou, ot) in zip(cmds[1:], dv[1:], ours[1:]):
        assert refimap.status(dt) == refimap.status(ot), (c, dt, ot)
        if refimap.status(dt) != "OK":
            continue
        d, o = esearch(du), esearch(ou)
        assert refimap.esearch_items(d) == refimap.esearch_items(o), \
            (c, d, o)
