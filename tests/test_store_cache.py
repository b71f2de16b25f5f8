"""What the store answers without opening message files: SORT by date
and subject from the message cache (the same order as from the files),
and STATUS from the index's header, current after changes made by
another imapd and by other programs."""
import os
import re
import shutil

import lib
from lib import append, make_msg, status_items
from test_index import fill
from test_store_inotify import Trace

SORTS = ["SORT (DATE) UTF-8 ALL", "SORT (SUBJECT) UTF-8 ALL",
         "SORT (REVERSE DATE) UTF-8 ALL", "SORT (SUBJECT DATE) UTF-8 ALL",
         "SORT (REVERSE SUBJECT ARRIVAL) UTF-8 ALL",
         "UID SORT (DATE SUBJECT) UTF-8 ALL"]


def corpus(n):
    """n messages of the shared corpus, spread over it"""
    with open(os.path.join(lib.CORPUS, "MANIFEST.tsv")) as f:
        paths = [ln.split("\t")[0] for ln in f.read().splitlines()[1:]]
    return [os.path.join(lib.CORPUS, p) for p in paths[::len(paths) // n]]


def sorted_all(s):
    out = []
    for c in SORTS:
        u = s.ok(c)
        out.append([ln for ln in u if ln.startswith(b"* SORT")])
    return out


def test_sort_from_cache_equals_sort_from_files(env):
    """SORT (DATE)/(SUBJECT) a second time answers from the message cache:
    with every message file unreadable it still gives the order the files
    gave (messages without Date or Subject, encoded and reply subjects
    among them), and a session without the cache agrees"""
    for i, p in enumerate(corpus(60)):
        with open(p, "rb") as f:
            env.deliver(f.read(), flags="S", mtime=1e9 + 3600 * (i * 7 % 13))
    env.deliver(make_msg("Re: [list] Fwd: =?utf-8?q?caf=C3=A9?= (fwd)",
                         date="Tue, 1 Jan 2030 00:00:00 +0000"), flags="")
    env.deliver(make_msg("no date here", date=None), flags="", mtime=5e8)
    s = env.session()
    s.ok("SELECT INBOX")
    first = sorted_all(s)
    seq = [b"* SORT " + b" ".join(b"%d" % i for i in range(1, 63))]
    assert first[0] != seq and first[1] != seq, first[:2]
    s.logout()
    cur = os.path.join(env.maildir, "cur")
    for n in os.listdir(cur):
        os.chmod(os.path.join(cur, n), 0)
    try:
        s = env.session()
        s.ok("SELECT INBOX")
        u, t = s.cmd("FETCH 1 BODY.PEEK[HEADER.FIELDS (X-NOT-CACHED)]")
        assert not re.search(rb"X-NOT-CACHED: \S", b"".join(u)), u
        again = sorted_all(s)
        for c, x, y in zip(SORTS, first, again):
            assert x == y, (c, x, y)
        s.logout()
    finally:
        for n in os.listdir(cur):
            os.chmod(os.path.join(cur, n), 0o600)
    os.unlink(os.path.join(env.maildir, "imapd-cache"))
    s = env.session()
    s.ok("SELECT INBOX")
    assert sorted_all(s) == first
    s.logout()


STATUS = "STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ%s)"


def deliver_sized(env, data, flags=None, folder="INBOX"):
    """a delivery whose file name tells its sizes (",S=" and ",W="), as
    Dovecot's and imapd's own do"""
    path = env.deliver(data, folder=folder, flags=flags)
    d, n = os.path.split(path)
    base, sep, info = n.partition(":")
    sized = "%s,S=%d,W=%d%s%s" % (base, len(data), len(data) +
                                  data.count(b"\n"), sep, info)
    os.rename(path, os.path.join(d, sized))


def status_of(s, size):
    return status_items(s.ok(STATUS % (" SIZE" if size else "")), "INBOX")


def reference(env):
    """what a session that selects the folder counts"""
    s = env.session()
    s.ok("SELECT INBOX")
    v = status_of(s, True)
    s.logout()
    return v


def test_status_after_outside_changes(env):
    """STATUS from a fresh process after each kind of change, by another
    imapd and by other programs, equals what a SELECTed session counts,
    and is answered from the index's header (mapped, not read record by
    record) where the list and the directories are as it says; an index
    deleted or damaged is not trusted"""
    for i in range(30):
        deliver_sized(env, make_msg("m%d" % i, msgid="<m%d@t>" % i),
                      flags="")
    fill(env, 5, folder="Other")
    a = env.session()
    a.ok("SELECT INBOX")
    a.ok("STORE 1:10 +FLAGS.SILENT (\\Seen)")
    a.logout()
    header = []

    def check(why):
        s = env.session()
        s.ok("SELECT Other")	# STATUS of a folder not selected
        tr = Trace(s.p.pid, os.path.join(env.dir, "st%d.out" % len(header)),
                   "mmap")
        got = status_of(s, False)
        out = tr.stop()
        sized = status_of(s, True)
        s.logout()
        want = reference(env)
        assert sized == want, (why, sized, want)
        del want["SIZE"]
        assert got == want, (why, got, want)
        header.append((why, "PROT_READ, MAP_SHARED" in out))
        return sized

    v = check("at rest")
    assert v["UNSEEN"] == 20 and v["MESSAGES"] == 30, v
    b = env.session()
    b.ok("SELECT INBOX")
    b.ok("STORE 11:12 +FLAGS.SILENT (\\Seen)")
    append(b, "INBOX", make_msg("appended"))
    b.ok("STORE 3 +FLAGS.SILENT (\\Deleted)")
    b.ok("STORE 4 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    b.logout()
    check("another imapd stored, appended, expunged")
    deliver_sized(env, make_msg("delivered to new"))
    check("a delivery into new/")
    cur = os.path.join(env.maildir, "cur")
    n = sorted(os.listdir(cur))[5]
    os.rename(os.path.join(cur, n),
              os.path.join(cur, n.split(":")[0] + ":2,ST"))
    check("a flag rename by another program")
    os.unlink(os.path.join(cur, sorted(os.listdir(cur))[7]))
    check("a file deleted by another program")
    for i in range(300):	# enough records for the index to be written
        deliver_sized(env, make_msg("more %d" % i), flags="S" if i % 2
                      else "")
    check("many deliveries")
    check("many deliveries, then at rest")
    idx = os.path.join(env.maildir, "imapd-index")
    with open(idx, "r+b") as f:
        f.seek(100)
        f.write(b"\xff" * 16)
    check("a damaged index")
    os.unlink(idx)
    check("no index")
    used = [w for w, h in header if h]
    assert used[:2] == ["at rest", "another imapd stored, appended, "
                        "expunged"], header
    assert "many deliveries, then at rest" in used, header
    assert "a damaged index" not in used, header
