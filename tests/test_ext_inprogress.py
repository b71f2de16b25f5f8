"""INPROGRESS (RFC 9585): "* OK [INPROGRESS ("tag" done total)]" while
a long SEARCH, SORT, COPY, MOVE or first SELECT works.  With the interval
of config.h at 1 ms (and no quota in the way of a big COPY) a search over
a few hundred messages, or a copy of 1500, is long enough to be seen."""
import os
import re

import lib
import refimap

N = 300
FAST = [(r"#define INPROGRESS_MS\s+\d+", "#define INPROGRESS_MS 1")]


def mailbox(env):
    for i in range(N):
        refimap.deliver(env, i + 1, lib.make_msg("s%d" % (N - i),
                                                 body="text %d\n" % i * 40))


def reports(lines, tag):
    out = []
    for x in lines:
        m = re.match(rb'\* OK \[INPROGRESS \("([^"]+)" (\d+) (\d+|NIL)\)\] ',
                     x)
        if m:
            assert m.group(1).decode() == tag, x
            out.append((int(m.group(2)), int(m.group(3))))
    return out


def test_inprogress_reports(env):
    binary = refimap.configured_imapd(FAST)
    mailbox(env)
    s = refimap.session_of(env, binary)
    s.ok("SELECT INBOX")
    u, t = s.cmd('SEARCH BODY "no such text"', tag="A005")
    assert lib.is_ok(t), t
    r = reports(u, "A005")
    assert r, u
    assert all(0 < d <= tot == N for d, tot in r), r
    assert [d for d, _ in r] == sorted(d for d, _ in r)
    assert u[-1] == b"* SEARCH", u
    u, t = s.cmd("SORT (SUBJECT) UTF-8 ALL", tag="B1")
    assert lib.is_ok(t) and reports(u, "B1"), u
    # the answer itself stays whole and last
    assert u[-1].startswith(b"* SORT ") and len(u[-1].split()) == N + 2


def test_inprogress_quiet_for_short_commands(env):
    for i in range(5):
        refimap.deliver(env, i + 1, lib.make_msg("m%d" % i))
    s = env.session()
    s.ok("SELECT INBOX")
    u = s.ok('SEARCH BODY "hello"')
    assert not [x for x in u if b"INPROGRESS" in x], u


def fill_new(env, n, folder="INBOX"):
    """n messages in new/ of a folder no imapd has opened yet, as a
    delivery agent leaves them"""
    path = env.folder_path(folder)
    if not os.path.isdir(os.path.join(path, "new")):
        env.make_folder(folder)
    for i in range(n):
        name = "%d.M%dP1.host" % (1700000000 + i, i)
        with open(os.path.join(path, "new", name), "wb") as f:
            f.write(lib.make_msg("n%d" % i))
    env.fix_owner()


def check_reports(r, total):
    """at least one report, every one of this total, done increasing"""
    assert r, r
    assert all(0 < d <= tot == total for d, tot in r), r
    assert [d for d, _ in r] == sorted(d for d, _ in r), r


def test_inprogress_first_select(env):
    """the first SELECT of a big folder takes every file from new/ and
    gives it a UID: it reports how many of them are done"""
    n = 1500
    fill_new(env, n)
    s = refimap.session_of(env, refimap.configured_imapd(FAST))
    u, t = s.cmd("SELECT INBOX", tag="S1")
    assert lib.is_ok(t), t
    check_reports(reports(u, "S1"), n)
    assert b"* %d EXISTS" % n in u, u
    # the next SELECT finds the folder known: nothing long to tell
    u, t = s.cmd("EXAMINE INBOX", tag="S2")
    assert lib.is_ok(t) and not reports(u, "S2"), u


def test_inprogress_copy_and_move(env):
    """COPY and MOVE of many messages report messages done of those
    asked for; the tagged answer follows the last report"""
    n = 1500
    fill_new(env, n)
    s = refimap.session_of(env, refimap.configured_imapd(FAST))
    s.ok("SELECT INBOX")
    s.ok("CREATE Archive")
    s.ok("CREATE Later")
    u, t = s.cmd("COPY 1:* Archive", tag="C1")
    assert lib.is_ok(t) and b"COPYUID" in t, t
    check_reports(reports(u, "C1"), n)
    u, t = s.cmd("UID MOVE 1:* Later", tag="M1")
    assert lib.is_ok(t), t
    check_reports(reports(u, "M1"), n)
    # reports end with their command: a later short one hears none
    u, t = s.cmd("NOOP", tag="N1")
    assert not [x for x in u if b"INPROGRESS" in x], u
    st = lib.status_items(s.ok("STATUS Later (MESSAGES)"))
    assert int(st["MESSAGES"]) == n, st
