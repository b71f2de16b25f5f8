"""SAVEDATE (RFC 8514): FETCH SAVEDATE and SEARCH SAVEDBEFORE, SAVEDON,
SAVEDSINCE and SAVEDATESUPPORTED.  The save date is when the message
entered this mailbox: APPEND and delivery make it now whatever the
internal date, COPY and MOVE give the copy a date of its own.  Compared
with Dovecot on the same commands."""
import os
import re
import time

import lib
import refimap


def today():
    return time.strftime("%d-%b-%Y", time.localtime())


def savedate(d):
    return time.mktime(time.strptime(d["SAVEDATE"].decode()[:20],
                                     "%d-%b-%Y %H:%M:%S"))


def uidvalidity(lines):
    return lib.select_info(lines)["uidvalidity"]


def test_savedate_capability(env):
    s = env.session()
    assert "SAVEDATE" in lib.caps_of(s.ok("CAPABILITY")[0])


def test_savedate_append_and_delivery(env):
    """an old internal date, a fresh save date"""
    env.deliver(lib.make_msg("delivered"), mtime=time.time() - 10 * 86400)
    s = env.session()
    u, t = lib.append(s, "INBOX", lib.make_msg("appended"),
                      date="01-Jan-2020 10:00:00 +0000")
    assert lib.is_ok(t), t
    s.ok("SELECT INBOX")
    f = lib.fetches(s.ok("FETCH 1:2 (INTERNALDATE SAVEDATE)"))
    for n in (1, 2):
        assert re.match(rb'\d\d-\w{3}-\d{4} \d\d:\d\d:\d\d [+-]\d{4}$',
                        f[n]["SAVEDATE"]), f[n]
        assert abs(savedate(f[n]) - time.time()) < 120, f[n]
    assert f[2]["INTERNALDATE"].startswith(b"01-Jan-2020")
    assert lib.search_result(s.ok("SEARCH SAVEDON %s" % today())) == [1, 2]
    assert lib.search_result(s.ok("SEARCH SAVEDSINCE %s" % today())) == \
        [1, 2]
    assert lib.search_result(s.ok("SEARCH SAVEDBEFORE %s" % today())) == []
    assert lib.search_result(s.ok("SEARCH SAVEDATESUPPORTED")) == [1, 2]
    assert lib.search_result(s.ok("SEARCH BEFORE 1-Jan-2021")) == [2]


def test_savedate_copy_and_move(env):
    """RFC 8514 section 3: a copy is saved when it is copied; the
    original keeps its date"""
    env.make_folder("Archive")
    s = env.session()
    for i in range(3):
        lib.append(s, "INBOX", lib.make_msg("m%d" % i))
    v = uidvalidity(s.ok("SELECT INBOX"))
    # messages 1 and 2 were saved long ago (as a record from an earlier
    # COPY would say)
    with open(os.path.join(env.maildir, "imapd-savedates"), "a") as f:
        f.write("%d 1 1620000000\n%d 2 1620000000\n" % (v, v))
        # of another UID validity (a UID list removed by hand): ignored
        f.write("%d 3 1620000000\n" % (v + 1))
    lib.chown_tree(env.dir, env.uid, env.gid)
    f = lib.fetches(s.ok("FETCH 1:3 (SAVEDATE)"))
    assert f[1]["SAVEDATE"].startswith(b"0") and b"-May-2021" in \
        f[1]["SAVEDATE"], f
    assert abs(savedate(f[3]) - time.time()) < 120
    assert lib.search_result(s.ok("SEARCH SAVEDBEFORE 1-Jan-2022")) == [1, 2]
    assert lib.search_result(s.ok("SEARCH SAVEDON 3-May-2021")) == [1, 2]
    s.ok("COPY 1 Archive")
    s.ok("MOVE 2 Archive")
    s.ok("SELECT Archive")
    f = lib.fetches(s.ok("FETCH 1:2 (SAVEDATE UID)"))
    for n in (1, 2):
        assert abs(savedate(f[n]) - time.time()) < 120, f[n]
    assert lib.search_result(s.ok("SEARCH SAVEDBEFORE 1-Jan-2022")) == []
    assert lib.search_result(s.ok("SEARCH SAVEDSINCE %s" % today())) == [1, 2]
    # the original stays where it was saved
    s.ok("SELECT INBOX")
    f = lib.fetches(s.ok("FETCH 1 (SAVEDATE)"))
    assert b"-May-2021" in f[1]["SAVEDATE"]
    # another session reads the same record
    s2 = env.session()
    s2.ok("SELECT INBOX")
    assert lib.search_result(s2.ok("SEARCH NOT SAVEDSINCE %s" % today())) \
        == [1]


def test_savedate_bad_dates(env):
    s = env.session()
    lib.append(s, "INBOX", lib.make_msg("x"))
    s.ok("SELECT INBOX")
    for k in ("SAVEDBEFORE", "SAVEDON 32-Jan-2020", "SAVEDSINCE 1-Foo-2020",
              "SAVEDON yesterday"):
        s.bad("SEARCH " + k)
    s.ok("NOOP")


def test_savedate_matches_dovecot(env):
    env.make_folder("Archive")
    dmail = refimap.copy_maildir(env)
    m1, m2 = lib.make_msg("one", eol="\r\n"), lib.make_msg("two",
                                                          eol="\r\n")
    cmds = [b'APPEND INBOX "01-Jan-2020 10:00:00 +0000" {%d+}\r\n' % len(m1)
            + m1, b"APPEND INBOX {%d+}\r\n" % len(m2) + m2, "SELECT INBOX",
            "SEARCH SAVEDATESUPPORTED", "SEARCH SAVEDON %s" % today(),
            "SEARCH SAVEDBEFORE %s" % today(),
            "SEARCH SAVEDSINCE 1-Jan-2020", "COPY 1:2 Archive",
            "SELECT Archive", "SEARCH SAVEDON %s" % today(),
            "SEARCH OR SAVEDBEFORE 1-Jan-2021 BEFORE 1-Jan-2021",
            "SEARCH SAVEDON"]
    dv = refimap.run(env, dmail, cmds)
    s = env.session()
    ours = refimap.imapd(s, cmds)
    for c, (du, dt), (ou, ot) in zip(cmds, dv, ours):
        assert refimap.status(dt) == refimap.status(ot), (c[:40], dt, ot)
        d = [x for x in du if x.startswith(b"* SEARCH")]
        o = [x for x in ou if x.startswith(b"* SEARCH")]
        assert d == o, (c, d, o)
    # the save dates themselves: the same day and minute, or nearly
    d = lib.fetches(refimap.run(env, dmail, ["SELECT INBOX",
                                             "FETCH 1:2 (SAVEDATE)"])[1][0])
    o = lib.fetches(s.ok("FETCH 1:2 (SAVEDATE)"))
    for n in (1, 2):
        assert abs(savedate(d[n]) - savedate(o[n])) < 120, (d, o)
