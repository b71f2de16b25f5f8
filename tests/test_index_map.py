"""The index used in place: imapd-index is mapped, its records and names
used without copying, and a session's view shares the records until
something changes.  An index of the previous format, or with any byte of
any area changed, is logged and rebuilt; the records' flags follow the
keyword table as it is now, not as it was when the index was written; a
process that has the index mapped sees what another changes after it, and
keeps working while the other replaces the file.  SELECT's UNSEEN comes
from the header when nothing changed after the index, and stays exact when
something did."""
import os
import re
import struct

from lib import append, fetches, make_msg, select_info, untagged
from test_index import fill, index_path, log, state

# struct ihead, as index.c lays it out (host byte order)
HEAD = struct.Struct("=QIIIIQQIIQQQIIQ4qIIIIQQIIQQQQQQQ")
FIELDS = ("magic version headsize recsize stamped gen listoff uidvalidity "
          "uidnext highestmodseq histfloor nrecords nmsgs nexp nameslen "
          "s0 s1 s2 s3 unseen deleted first_unseen spare size deleted_size "
          "sized nnew recoff "
          "namesoff kwsum recsum expsum namesum headsum").split()
REC = 24    # struct msg: uid, flags, kw, name, modseq


def head(env):
    with open(index_path(env), "rb") as f:
        return dict(zip(FIELDS, HEAD.unpack(f.read(HEAD.size))))


def flip(path, off, mask=0x01):
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ mask]))


def flags_of(s, uids="1:*"):
    return {int(v["UID"]): set(map(str, v["FLAGS"])) - {"\\Recent"}
            for v in fetches(s.ok("UID FETCH %s (FLAGS)" % uids)).values()}


def test_index_is_laid_out_for_mapping(env):
    fill(env, 30)
    s = env.session()
    s.ok("SELECT INBOX")
    s.logout()
    h = head(env)
    assert h["version"] == 4 and h["headsize"] == HEAD.size, h
    assert h["recsize"] == REC and h["nmsgs"] == 30, h
    # records and names each start on a page, the names run to the end
    assert h["recoff"] % 4096 == 0 and h["namesoff"] % 4096 == 0, h
    assert h["namesoff"] >= h["recoff"] + 30 * REC, h
    assert os.path.getsize(index_path(env)) == h["namesoff"] + h["nameslen"]
    with open(index_path(env), "rb") as f:
        f.seek(h["recoff"])
        uids = [struct.unpack_from("=I", f.read(REC))[0] for _ in range(30)]
    assert uids == list(range(1, 31)), uids


def test_index_of_the_previous_format_is_rebuilt(env):
    fill(env, 40)
    s = env.session()
    s.ok("SELECT INBOX")
    s.ok("UID STORE 5 +FLAGS (\\Flagged)")
    good = state(s)
    s.logout()
    with open(index_path(env), "r+b") as f:
        f.seek(8)
        f.write(struct.pack("=I", 3))
    s = env.session()
    assert state(s) == good
    s.logout()
    assert re.search(r"imapd-index: older format.*rebuilding", log(env))
    assert head(env)["version"] == 4
    mark = len(log(env))
    s = env.session()
    assert state(s) == good
    s.logout()
    assert "rebuilding" not in log(env)[mark:]


def test_every_area_of_the_index_is_checked(env):
    """one bit changed anywhere (header, expunge history, the zeros
    between areas, a record's modseq, a name) is found before anything is
    trusted, and the folder reads the same from the UID list"""
    fill(env, 50, flags="")
    s = env.session()
    s.ok("SELECT INBOX")
    s.ok("UID STORE 1:3 +FLAGS (\\Deleted)")
    s.ok("EXPUNGE")
    s.ok("UID STORE 10 +FLAGS (\\Answered)")
    good = state(s)
    s.logout()
    os.unlink(index_path(env))
    s = env.session()
    assert state(s) == good
    s.logout()
    h = head(env)
    assert h["nexp"] >= 1 and h["nmsgs"] == 47, h
    places = {
        "header": 4 * 8 + 4 * 4 + 8 + 8,            # a field in the header
        "expunged": HEAD.size + 4,                  # history's last UID
        "zeros": h["recoff"] + 47 * REC + 7,        # after the records
        "modseq": h["recoff"] + 20 * REC + 23,      # a record's modseq
        "name": h["namesoff"] + h["nameslen"] // 2,
    }
    for what, off in places.items():
        assert off < os.path.getsize(index_path(env)), what
        mark = len(log(env))
        flip(index_path(env), off, 0x04)
        s = env.session()
        assert state(s) == good, what
        s.logout()
        assert re.search(r"imapd-index: (damaged|truncated).*rebuilding",
                         log(env)[mark:]), (what, log(env)[mark:])
        mark = len(log(env))
        s = env.session()
        assert state(s) == good, what
        s.logout()
        assert "rebuilding" not in log(env)[mark:], what


def test_keywords_as_the_table_says_now(env):
    """names carry keyword letters; what a letter means is in
    dovecot-keywords, which may have changed since the index was written:
    a letter named only now shows, one no longer named does not"""
    kwfile = os.path.join(env.maildir, "dovecot-keywords")
    for i in range(6):
        env.deliver(make_msg("k%d" % i, msgid="<k%d@t>" % i),
                    flags="S" + ("a" if i < 3 else "b"))
    s = env.session()
    s.ok("SELECT INBOX")
    s.logout()
    assert head(env)["nmsgs"] == 6
    # letter a gets a name after the index was written
    with open(kwfile, "w") as f:
        f.write("0 work\n")
    env.fix_owner()
    s = env.session()
    s.ok("SELECT INBOX")
    fl = flags_of(s)
    assert all(("work" in fl[u]) == (u <= 3) for u in fl), fl
    s.logout()
    # the index is rewritten with that table; then a loses its name and
    # b gets one
    os.unlink(index_path(env))
    s = env.session()
    s.ok("SELECT INBOX")
    s.logout()
    with open(kwfile, "w") as f:
        f.write("1 home\n")
    env.fix_owner()
    s = env.session()
    lines = s.ok("SELECT INBOX")
    assert "work" not in select_info(lines)["flags"]
    fl = flags_of(s)
    for u in fl:
        assert "work" not in fl[u] and ("home" in fl[u]) == (u > 3), fl
    s.logout()


def test_a_process_with_the_index_mapped_sees_later_changes(env):
    """a keeps the index it mapped while b changes enough to write a new
    one (renamed over the old): a sees every change, and so does a third
    process that maps the new one"""
    fill(env, 300, flags="")
    s = env.session()
    s.ok("SELECT INBOX")
    s.logout()
    a, b = env.session(), env.session()
    a.ok("SELECT INBOX (CONDSTORE)")
    ino = os.stat(index_path(env)).st_ino
    b.ok("SELECT INBOX")
    b.ok("UID STORE 1:300 +FLAGS.SILENT (\\Seen)")
    b.ok("UID STORE 1:10 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    t = append(b, "INBOX", make_msg("late", msgid="<late@t>"))[1]
    assert b" OK" in t, t
    b.ok("UID STORE 20 +FLAGS.SILENT (\\Flagged)")
    b.ok("NOOP")
    assert os.stat(index_path(env)).st_ino != ino, "index not replaced"
    lines = a.ok("NOOP")
    assert len([x for x in lines if x.endswith(b" EXPUNGE")]) == 10, lines
    assert any(x == b"* 291 EXISTS" for x in lines), lines
    fl = flags_of(a)
    assert sorted(fl) == list(range(11, 302)), sorted(fl)[:3]
    assert all("\\Seen" in fl[u] for u in range(11, 301)), fl
    assert "\\Flagged" in fl[20] and "\\Seen" not in fl[301], fl
    # a's own change on top, seen by b and by a new process
    a.ok("UID STORE 30 +FLAGS.SILENT (\\Answered)")
    a.logout()
    assert "\\Answered" in flags_of(b, "30")[30]
    b.logout()
    c = env.session()
    c.ok("SELECT INBOX")
    fl2 = flags_of(c)
    assert sorted(fl2) == sorted(fl) and "\\Answered" in fl2[30], fl2[30]
    c.logout()


def test_the_shared_view_and_changes_on_both_sides(env):
    """a view that shares the folder's records after SELECT: the session's
    own FETCH that sets \\Seen, its STORE, and another's flag change and
    expunge all show, in order, with the right modseqs"""
    fill(env, 40, flags="")
    s = env.session()
    s.ok("SELECT INBOX")
    s.logout()
    a, b = env.session(), env.session()
    info = select_info(a.ok("SELECT INBOX (CONDSTORE)"))
    assert info["exists"] == 40
    mark = int(re.search(rb"HIGHESTMODSEQ (\d+)",
                         b"".join(a.ok("STATUS INBOX (HIGHESTMODSEQ)")))
               .group(1))
    assert not untagged(a.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)"
                             % mark), "")
    a.ok("UID FETCH 2 (BODY[])")
    a.ok("UID STORE 3 +FLAGS (\\Flagged)")
    b.ok("SELECT INBOX")
    b.ok("UID STORE 4 +FLAGS.SILENT (\\Answered)")
    b.ok("UID STORE 5 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    lines = a.ok("NOOP")
    assert b"* 5 EXPUNGE" in lines, lines
    assert any(x.startswith(b"* 4 FETCH") and b"\\Answered" in x
               for x in lines), lines
    got = fetches(a.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % mark))
    assert sorted(int(v["UID"]) for v in got.values()) == [2, 3, 4], got
    fl = flags_of(a)
    assert "\\Seen" in fl[2] and "\\Flagged" in fl[3], fl
    assert "\\Answered" in fl[4] and 5 not in fl and len(fl) == 39, fl
    a.logout()
    b.logout()


def first_unseen(s):
    """the sequence number and UID of the first message without \\Seen,
    by looking at every message's flags"""
    d = fetches(s.ok("FETCH 1:* (UID FLAGS)"))
    seqs = [n for n, v in d.items() if "\\Seen" not in map(str, v["FLAGS"])]
    return (min(seqs), int(d[min(seqs)]["UID"])) if seqs else (None, 0)


def select_unseen(env):
    """the UID of the first unseen message, after checking that a new
    process's SELECT names it (0: none, and SELECT says nothing)"""
    s = env.session()
    info = select_info(s.ok("SELECT INBOX"))
    seq, uid = first_unseen(s)
    s.logout()
    assert info.get("unseen") == seq, (info, seq)
    return uid


def uid_of(env, seq):
    s = env.session()
    s.ok("EXAMINE INBOX")
    uid = int(fetches(s.ok("FETCH %d (UID)" % seq))[seq]["UID"])
    s.logout()
    return uid


def test_select_unseen_from_the_header_stays_exact(env):
    """SELECT's UNSEEN comes from the index's header while nothing has
    changed since it was written, and stays exact when the UID list's
    lines after it change flags, when another program renames a file, and
    from an index written afresh"""
    fill(env, 30)
    for i in range(10):
        env.deliver(make_msg("new %d" % i, "body\n",
                             msgid="<u%d@t>" % i), flags="")
    first = select_unseen(env)
    h = head(env)
    assert first and h["first_unseen"] == first and h["unseen"] == 10, h
    assert select_unseen(env) == first
    # changes recorded only in the list's lines after the index
    one = uid_of(env, 1)
    assert one != first
    s = env.session()
    s.ok("SELECT INBOX")
    s.ok("UID STORE %d +FLAGS (\\Seen)" % first)
    s.ok("UID STORE %d -FLAGS (\\Seen)" % one)
    s.logout()
    assert head(env)["first_unseen"] == first
    assert head(env)["listoff"] == h["listoff"]
    assert select_unseen(env) == one
    s = env.session()
    s.ok("SELECT INBOX")
    s.ok("UID STORE %d +FLAGS (\\Seen)" % one)
    s.logout()
    second = select_unseen(env)
    assert second not in (0, one, first)
    # another program takes \Seen off the first message
    s = env.session()
    s.ok("EXAMINE INBOX")
    mid = re.search(rb"<[^>]*>", b"".join(s.ok(
        "FETCH 1 (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"))).group(0)
    s.logout()
    cur = os.path.join(env.folder_path("INBOX"), "cur")
    for name in sorted(os.listdir(cur)):
        with open(os.path.join(cur, name), "rb") as f:
            if mid in f.read():
                assert name.endswith(":2,S"), name
                os.rename(os.path.join(cur, name),
                          os.path.join(cur, name[:-1]))
    third = select_unseen(env)
    assert third == one, (third, one, second, mid)
    # an index written afresh, then used
    os.unlink(index_path(env))
    assert select_unseen(env) == third
    assert head(env)["first_unseen"] == third
    assert select_unseen(env) == third
    # nothing unseen: no UNSEEN at all, either way
    s = env.session()
    s.ok("SELECT INBOX")
    s.ok("STORE 1:* +FLAGS.SILENT (\\Seen)")
    s.logout()
    assert select_unseen(env) == 0
    os.unlink(index_path(env))
    assert select_unseen(env) == 0
    assert head(env)["first_unseen"] == 0
    assert select_unseen(env) == 0
