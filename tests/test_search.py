"""SEARCH beyond RFC 3501's answer: ESEARCH (RFC 4731: RETURN MIN MAX
COUNT ALL), SEARCHRES (RFC 5182: SAVE and "$"), and hostile search
programs.  Content keys and charsets are in test_mime.py, the simple keys
in test_core.py."""
import re

from lib import fetches, make_msg, search_result


def esearch(lines, tag):
    """(uid, {ITEM: value}) of the one ESEARCH line for tag"""
    found = [x for x in lines if x.startswith(b"* ESEARCH ")]
    assert len(found) == 1, lines
    m = re.match(rb'\* ESEARCH \(TAG "([^"]*)"\)( UID)?(.*)$', found[0])
    assert m and m.group(1) == tag.encode(), found[0]
    words = m.group(3).split()
    assert len(words) % 2 == 0, found[0]
    return bool(m.group(2)), {k.decode(): v.decode()
                              for k, v in zip(words[0::2], words[1::2])}


def five(env):
    """five messages, 2 and 4 flagged; UIDs 1..5, then 1 and 3 expunged
    by way of a fresh sixth and seventh so UIDs and numbers differ"""
    for i in range(1, 8):
        env.deliver(make_msg(subject="m%d" % i, body="text %d\n" % i),
                    flags="F" if i in (3, 5) else "")
    s = env.session()
    s.ok("SELECT INBOX")
    s.ok("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    s.ok("EXPUNGE")
    # now: seq 1..5 = UID 3..7; flagged: seq 1 (UID 3), seq 3 (UID 5)
    return s


def test_esearch_return_options(env):
    s = five(env)
    u = s.ok("SEARCH RETURN (MIN MAX COUNT ALL) ALL")
    assert esearch(u, "a%03d" % s.ntag) == (
        False, {"MIN": "1", "MAX": "5", "COUNT": "5", "ALL": "1:5"}), u
    u = s.ok("UID SEARCH RETURN (MIN MAX COUNT ALL) FLAGGED")
    assert esearch(u, "a%03d" % s.ntag) == (
        True, {"MIN": "3", "MAX": "5", "COUNT": "2", "ALL": "3,5"}), u
    u = s.ok("SEARCH RETURN (COUNT) FLAGGED")
    assert esearch(u, "a%03d" % s.ntag) == (False, {"COUNT": "2"}), u
    # RETURN () is ALL
    u = s.ok("SEARCH RETURN () UNFLAGGED")
    assert esearch(u, "a%03d" % s.ntag) == (False, {"ALL": "2,4:5"}), u
    # no match: MIN, MAX and ALL are left out, COUNT is 0
    u = s.ok("SEARCH RETURN (MIN MAX ALL COUNT) KEYWORD nothere")
    assert esearch(u, "a%03d" % s.ntag) == (False, {"COUNT": "0"}), u
    u = s.ok("SEARCH RETURN (MIN) KEYWORD nothere")
    assert esearch(u, "a%03d" % s.ntag) == (False, {}), u
    # plain SEARCH still answers SEARCH
    assert search_result(s.ok("SEARCH FLAGGED")) == [1, 3]
    s.bad("SEARCH RETURN (BOGUS) ALL")
    s.bad("SEARCH RETURN MIN ALL")


def test_searchres_save_and_dollar(env):
    s = five(env)
    u = s.ok("SEARCH RETURN (SAVE) FLAGGED")
    # SAVE alone: no SEARCH and no ESEARCH response
    assert not [x for x in u if b"SEARCH" in x], u
    f = fetches(s.ok("FETCH $ (UID)"))
    assert sorted(int(d["UID"]) for d in f.values()) == [3, 5], f
    f = fetches(s.ok("UID FETCH $ (FLAGS)"))
    assert sorted(f) == [1, 3], f
    assert search_result(s.ok("SEARCH $")) == [1, 3]
    assert search_result(s.ok("UID SEARCH $")) == [3, 5]
    assert search_result(s.ok("SEARCH NOT $")) == [2, 4, 5]
    assert search_result(s.ok("UID SEARCH UID $")) == [3, 5]
    s.ok("STORE $ +FLAGS.SILENT (\\Seen)")
    assert search_result(s.ok("SEARCH SEEN")) == [1, 3]
    s.ok("CREATE Saved")
    u, t = s.cmd("COPY $ Saved")
    assert re.search(rb"\[COPYUID \d+ 3,5 1:2\]", t), t
    # SAVE with other options answers ESEARCH too, and replaces $
    u = s.ok("SEARCH RETURN (SAVE MIN) UNFLAGGED")
    assert esearch(u, "a%03d" % s.ntag) == (False, {"MIN": "2"}), u
    assert search_result(s.ok("UID SEARCH $")) == [4, 6, 7]
    # an empty result saves an empty $
    s.ok("SEARCH RETURN (SAVE) KEYWORD nothere")
    assert search_result(s.ok("SEARCH $")) == []
    u, t = s.cmd("FETCH $ (UID)")
    assert re.match(rb"\S+ OK", t) and not fetches(u), (u, t)


def test_searchres_reset_by_select(env):
    s = five(env)
    s.ok("SEARCH RETURN (SAVE) ALL")
    assert len(search_result(s.ok("SEARCH $"))) == 5
    s.ok("SELECT INBOX")
    assert search_result(s.ok("SEARCH $")) == []
    # "$" survives expunges of the messages it names: only those left
    s.ok("SEARCH RETURN (SAVE) 1:2")
    s.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    s.ok("EXPUNGE")
    assert search_result(s.ok("UID SEARCH $")) == [4]


def test_hostile_programs(env):
    s = five(env)
    deep = "NOT " * 100 + "ALL"
    s.bad("SEARCH " + deep)
    nested = "(" * 100 + "ALL" + ")" * 100
    s.bad("SEARCH " + nested)
    # a long but legal program
    ors = "OR " * 60 + " ".join(["SEEN"] * 61)
    assert search_result(s.ok("SEARCH " + ors)) == []
    s.bad("SEARCH (ALL")
    s.bad("SEARCH ALL)")
    s.bad("SEARCH UID")
    s.bad("SEARCH LARGER x")
    s.bad("SEARCH SINCE 31-Foo-2020")
    s.bad("SEARCH 0")
    s.bad("SEARCH 1:*:2")
    s.ok("NOOP")
