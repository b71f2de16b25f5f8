"""Several processes on one Maildir: two imapd sessions and a delivery
agent.  Unsolicited EXISTS/EXPUNGE/FETCH at the right moments (RFC 3501
7.4.1, 5.2), and no lost or duplicated UIDs or flag changes when they all
write at once."""
import os
import re
import threading
import time

from lib import (append, flagset, appenduid, fetches, item, make_msg, maildir_files,
                 search_result, select_info, expunges, exists, writers)


def uids_in_order(s):
    d = fetches(s.ok("FETCH 1:* UID"))
    assert sorted(d) == list(range(1, len(d) + 1)), d
    return [int(d[i]["UID"]) for i in sorted(d)]


def two_sessions(env, n):
    for i in range(n):
        env.deliver(make_msg("m%d" % i), flags="")
    a = env.session()
    a.ok("SELECT INBOX")
    b = env.session()
    b.ok("SELECT INBOX")
    return a, b


def test_delivery_reported_by_noop(env):
    a, b = two_sessions(env, 1)
    env.deliver(make_msg("new mail"))
    u = a.ok("NOOP")
    assert exists(u) == [2], u
    d = fetches(a.ok("FETCH 2 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    assert "\\Recent" in [str(f) for f in d[2]["FLAGS"]], d
    assert item(d[2], "BODY[HEADER").strip() == b"Subject: new mail", d
    # the other session learns of it too, without \Recent
    u = b.ok("NOOP")
    assert exists(u) == [2], u
    d = fetches(b.ok("FETCH 2 FLAGS"))
    assert "\\Recent" not in [str(f) for f in d[2]["FLAGS"]], d
    # nothing more to say now
    assert not exists(a.ok("NOOP")) and not exists(b.ok("NOOP"))


def test_flag_change_reported(env):
    a, b = two_sessions(env, 2)
    b.ok("STORE 1 +FLAGS (\\Flagged)")
    u = a.ok("NOOP")
    d = fetches(u)
    assert list(d) == [1] and flagset(d[1]["FLAGS"]) == {"\\Flagged"}, u
    # a flag change made by renaming the file (a mail reader working on
    # the Maildir directly)
    cur = os.path.join(env.maildir, "cur")
    names = sorted(os.listdir(cur))
    uid2 = uids_in_order(a)[1]
    target = None
    for f in names:
        if ":2," in f and "F" not in f.split(":2,")[1]:
            target = f
    assert target, names
    os.rename(os.path.join(cur, target),
              os.path.join(cur, target.split(":2,")[0] + ":2,RS"))
    u = a.ok("NOOP")
    d = fetches(u)
    assert list(d) == [2], u
    assert flagset(d[2]["FLAGS"]) == {"\\Answered", "\\Seen"}, u
    assert "UID" not in d[2] or int(d[2]["UID"]) == uid2, d
    assert not fetches(a.ok("NOOP"))


def test_expunge_reported(env):
    a, b = two_sessions(env, 4)
    uids = uids_in_order(a)
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    u = a.ok("NOOP")
    assert expunges(u) == [2], u
    assert uids_in_order(a) == [uids[0], uids[2], uids[3]]
    # a file removed behind everyone's back
    d = fetches(a.ok("FETCH 3 BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"))
    msgid = item(d[3], "BODY[HEADER").split(b":", 1)[1].strip()
    gone = []
    for sub in ("cur", "new"):
        for f in os.listdir(os.path.join(env.maildir, sub)):
            with open(os.path.join(env.maildir, sub, f), "rb") as fh:
                if msgid in fh.read():
                    gone.append(os.path.join(env.maildir, sub, f))
    assert len(gone) == 1, (msgid, gone)
    gone = gone[0]
    os.unlink(gone)
    u = a.ok("NOOP")
    assert expunges(u) == [3], u
    assert uids_in_order(a) == [uids[0], uids[2]]
    u = b.ok("NOOP")
    assert expunges(u) == [3], u


def test_no_expunge_during_fetch_store_search(env):
    a, b = two_sessions(env, 3)
    uids = uids_in_order(a)
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    for c in ("FETCH 1:3 FLAGS", "FETCH 1:3 (UID RFC822.SIZE)",
              "STORE 1:3 +FLAGS (\\Seen)", "STORE 1,3 -FLAGS.SILENT (\\Seen)",
              "SEARCH ALL", "SEARCH UNSEEN", "FETCH 2 BODY.PEEK[]"):
        u, t = a.cmd(c)
        assert re.match(rb"\S+ (OK|NO)\b", t), (c, t)
        assert not expunges(u), (c, u)
        if c == "SEARCH ALL":
            assert set(search_result(u)) <= {1, 2, 3}, u
    u = a.ok("NOOP")
    assert expunges(u) == [2], u
    assert uids_in_order(a) == [uids[0], uids[2]]


def test_expunge_renumbers_by_other_session(env):
    a, b = two_sessions(env, 5)
    uids = uids_in_order(a)
    b.ok("STORE 1,3,5 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    u = a.ok("NOOP")
    left = list(uids)
    for n in expunges(u):
        del left[n - 1]
    assert left == [uids[1], uids[3]], (u, left)
    assert uids_in_order(a) == left
    d = fetches(a.ok("STORE 2 +FLAGS (\\Flagged)"))
    assert list(d) == [2], d
    u = b.ok("NOOP")
    assert fetches(u) and list(fetches(u)) == [2], u


def test_parallel_flag_changes_not_lost(env):
    a, b = two_sessions(env, 40)
    errors = []

    def work(s, flag):
        try:
            for i in range(1, 41):
                s.ok("STORE %d +FLAGS.SILENT (%s)" % (i, flag))
        except BaseException as e:  # noqa: reported below
            errors.append(e)
    ta = threading.Thread(target=work, args=(a, "\\Seen"))
    tb = threading.Thread(target=work, args=(b, "\\Flagged"))
    ta.start()
    tb.start()
    ta.join(60)
    tb.join(60)
    assert not ta.is_alive() and not tb.is_alive(), "STORE loop hung"
    assert not errors, errors
    c = env.session()
    c.ok("SELECT INBOX")
    d = fetches(c.ok("FETCH 1:* FLAGS"))
    assert len(d) == 40, len(d)
    bad = {n: v["FLAGS"] for n, v in d.items()
           if flagset(v["FLAGS"]) != {"\\Seen", "\\Flagged"}}
    assert not bad, bad
    info = maildir_files(env.maildir)
    assert len(info) == 40 and all(i == "2,FS" for i in info.values()), info


def test_parallel_appends_and_delivery(env):
    per = 50
    observer = env.session()
    info = select_info(observer.ok("SELECT INBOX"))
    assert info["exists"] == 0
    threads, got, errors = writers(env, [env.session(), env.session()], per)
    seen = []
    # the observer keeps asking while the writers run
    while any(t.is_alive() for t in threads):
        u = observer.ok("NOOP")
        assert not expunges(u), u
        seen += exists(u)
        if len(seen) > 2000:
            break
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "writer hung"
    assert not errors, errors
    appended = got[0] + got[1]
    assert len(appended) == 2 * per and len(set(appended)) == 2 * per, \
        appended
    u = observer.ok("NOOP")
    seen += exists(u)
    assert seen == sorted(seen), seen
    assert seen and seen[-1] == 3 * per, seen[-5:]
    obs = uids_in_order(observer)
    assert len(obs) == 3 * per and len(set(obs)) == 3 * per
    assert obs == sorted(obs)
    assert set(appended) <= set(obs)
    # a fresh session agrees on every UID and every message
    c = env.session()
    info = select_info(c.ok("SELECT INBOX"))
    assert info["exists"] == 3 * per, info
    d = fetches(c.ok("FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    assert [int(d[i]["UID"]) for i in sorted(d)] == obs
    subjects = sorted(item(v, "BODY[HEADER").strip() for v in d.values())
    want = sorted(("Subject: %s-%d" % (k, i)).encode()
                  for k in ("s1", "s2", "lda") for i in range(per))
    assert subjects == want
    assert info["uidnext"] > max(obs)
    assert len(maildir_files(env.maildir)) == 3 * per
    assert os.listdir(os.path.join(env.maildir, "tmp")) == []


def idle_until(s, pred, timeout=10):
    """lines the server sends while idling, until pred(lines) holds"""
    out = []
    deadline = time.time() + timeout
    while not pred(out):
        left = deadline - time.time()
        assert left > 0, "not reported while idling: %r" % out
        out.append(s.line(timeout=left))
    return out


def test_idle_reports_changes(env):
    a, b = two_sessions(env, 2)
    tag = a.tag()
    a.send("%s IDLE\r\n" % tag)
    assert a.line().startswith(b"+"), "no continuation for IDLE"
    env.deliver(make_msg("while idle"))
    idle_until(a, lambda ls: exists(ls) and exists(ls)[-1] == 3)
    b.ok("STORE 1 +FLAGS (\\Flagged)")
    out = idle_until(a, lambda ls: 1 in fetches(ls))
    assert "\\Flagged" in flagset(fetches(out)[1]["FLAGS"]), out
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    idle_until(a, lambda ls: expunges(ls) == [2])
    a.send("DONE\r\n")
    u, t = a.collect(tag)
    assert re.match(rb"\S+ OK", t), (u, t)
    assert len(uids_in_order(a)) == 2
