"""The first unseen message SELECT reports ([UNSEEN n]) when the UID list
has lines after the index: the index's header names the first unseen
message as it was, and the lines since (flag changes, expunges, new
messages, by this process or another) move it.  Every answer is checked
against the flags the session then fetches."""
import os
import re

from lib import append, select_info
from test_index import fill, index_path


def first_unseen_by_flags(s):
    """the sequence number of the first message without \\Seen, 0: none"""
    for ln in s.ok("FETCH 1:* (FLAGS)"):
        m = re.match(rb"\* (\d+) FETCH \(FLAGS \(([^)]*)\)", ln)
        if m and b"\\Seen" not in m.group(2).split():
            return int(m.group(1))
    return 0


def check(env, want):
    """SELECT in a fresh process reports want, as the flags say"""
    s = env.session()
    info = select_info(s.ok("SELECT INBOX"))
    truth = first_unseen_by_flags(s)
    s.logout()
    assert truth == want, (truth, want)
    assert info.get("unseen", 0) == want, (info, want)


def change(env, *cmds):
    s = env.session()
    s.ok("SELECT INBOX")
    for c in cmds:
        s.ok(c)
    s.logout()


def test_unseen_follows_lines_after_the_index(env):
    fill(env, 12)			# all \Seen
    change(env, "STORE 6,9 -FLAGS (\\Seen)")
    check(env, 6)
    st = os.stat(index_path(env))
    # the first unseen made seen: the next one further on
    change(env, "STORE 6 +FLAGS (\\Seen)")
    check(env, 9)
    # one before it made unseen
    change(env, "STORE 2 -FLAGS (\\Seen)")
    check(env, 2)
    # it goes away: the one after it again
    change(env, "STORE 2 +FLAGS (\\Deleted)", "EXPUNGE")
    check(env, 8)
    # none unseen, then a new unseen message at the end
    change(env, "STORE 8 +FLAGS (\\Seen)")
    check(env, 0)
    s = env.session()
    append(s, "INBOX", b"Subject: late\r\n\r\nnew\r\n")
    s.logout()
    check(env, 12)
    # all that was read from lines after the same index
    now = os.stat(index_path(env))
    assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)


def test_unseen_after_outside_flag_renames(env):
    """another program renames files (mutt marks read): the scan that
    finds it writes lines the next process applies"""
    fill(env, 5, flags="")
    check(env, 1)
    cur = os.path.join(env.maildir, "cur")
    for n in sorted(os.listdir(cur)):
        if n.endswith(":2,"):
            os.rename(os.path.join(cur, n), os.path.join(cur, n + "S"))
            break
    # which file was first is not known here: the flags decide
    s = env.session()
    info = select_info(s.ok("SELECT INBOX"))
    truth = first_unseen_by_flags(s)
    s.logout()
    assert info.get("unseen", 0) == truth and truth in (1, 2), (info, truth)
    check(env, truth)
