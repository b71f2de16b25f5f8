"""Following a selected folder by the names inotify reports: a delivery,
a flag rename by another program, a message moved away or deleted are
applied name by name, without reading new/ and cur/ again; a second imapd
and a delivery agent working at the same time leave every message exactly
once with one UID; and when the kernel's event queue overflows (the
server stopped while a burst arrives) a full scan still finds everything.
"""
import os
import re
import signal
import subprocess
import threading
import time

from lib import append, appenduid, fetches, make_msg, select_info
from test_index import fill, ids_and_flags, state
from test_push import Idle


def exists_is(n):
    return lambda ln: ln == b"* %d EXISTS" % n


def cur_file(env, mid):
    """the name in cur/ of the message whose Message-ID is <mid>"""
    cur = os.path.join(env.maildir, "cur")
    for n in os.listdir(cur):
        with open(os.path.join(cur, n), "rb") as f:
            if (b"<%s>" % mid.encode()) in f.read():
                return n
    raise AssertionError("no file of %s" % mid)


class Trace:
    """strace on a running imapd: the system calls it makes"""

    def __init__(self, pid, path, calls="getdents64"):
        self.path = path
        self.p = subprocess.Popen(
            ["strace", "-q", "-e", "trace=" + calls, "-o", path,
             "-p", str(pid)], stderr=subprocess.DEVNULL)
        # attached once the first system call shows
        deadline = time.time() + 5
        while time.time() < deadline:
            if os.path.exists(path):
                break
            time.sleep(0.05)
        time.sleep(0.3)

    def stop(self):
        self.p.send_signal(signal.SIGINT)
        self.p.wait(timeout=10)
        with open(self.path) as f:
            return f.read()


def test_delivery_in_idle_reads_no_directory(env):
    """a message renamed into new/ reaches the idling client without a
    listing of new/ or cur/: a full scan reads a directory to its end
    (getdents64 returns 0), the name-by-name path never does"""
    fill(env, 50)
    s = env.session()
    n = select_info(s.ok("SELECT INBOX"))["exists"]
    idle = Idle(s)
    tr = Trace(s.p.pid, os.path.join(env.dir, "strace.out"))
    try:
        for k in range(3):
            env.deliver(make_msg("new %d" % k, msgid="<new%d@t>" % k))
            idle.wait(exists_is(n + k + 1), time.monotonic())
        env.deliver(make_msg("flagged", msgid="<fl@t>"), flags="S")
        idle.wait(exists_is(n + 4), time.monotonic())
    finally:
        out = tr.stop()
    # traced: the stamp's barrier reads the first entries of each
    assert "getdents64(" in out, out
    ends = [ln for ln in out.splitlines() if re.search(r"\) = 0$", ln)]
    assert not ends, out
    idle.done()
    st = ids_and_flags(s)
    assert len(st) == n + 4
    mids = [v[0] for v in st.values()]
    assert len(set(mids)) == len(mids)
    assert [v for v in st.values() if v[0] == "fl@t"][0][1] == {"\\Seen"}
    s.logout()


def test_outside_renames_and_deletes_in_idle(env):
    """mutt's flag rename in cur/, a move from new/ to cur/, a file moved
    to another folder and one deleted: each reaches the idling client as
    FETCH or EXPUNGE, and a fresh session agrees"""
    fill(env, 6, flags="")
    newfile = env.deliver(make_msg("in new", msgid="<innew@t>"))
    env.make_folder("Other")
    s = env.session()
    s.ok("EXAMINE INBOX")	# read-only: new/ stays where it is
    before = ids_and_flags(s)
    assert len(before) == 7
    idle = Idle(s)
    cur = os.path.join(env.maildir, "cur")
    # a flag rename by another program
    n = cur_file(env, "m2.INBOX@t")
    base = n.split(":")[0]
    os.rename(os.path.join(cur, n), os.path.join(cur, base + ":2,FS"))
    idle.wait(lambda ln: re.match(rb"\* 3 FETCH \(.*FLAGS \(.*\\Flagged",
                                  ln) is not None, time.monotonic())
    # new/ to cur/ with a flag, as a mail reader does
    os.rename(newfile, os.path.join(cur, os.path.basename(newfile) +
                                    ":2,S"))
    idle.wait(lambda ln: re.match(rb"\* 7 FETCH \(.*\\Seen", ln) is not None,
              time.monotonic())
    # moved out of the folder, then one deleted
    n = cur_file(env, "m4.INBOX@t")
    os.rename(os.path.join(cur, n),
              os.path.join(env.folder_path("Other"), "cur", n))
    idle.wait(lambda ln: ln == b"* 5 EXPUNGE", time.monotonic())
    n = cur_file(env, "m0.INBOX@t")
    os.unlink(os.path.join(cur, n))
    idle.wait(lambda ln: ln == b"* 1 EXPUNGE", time.monotonic())
    assert not any(b"EXISTS" in ln for ln in idle.lines), idle.lines
    idle.done()
    mine = ids_and_flags(s)
    s.logout()
    assert sorted(v[0] for v in mine.values()) == sorted(
        ["m1.INBOX@t", "m2.INBOX@t", "m3.INBOX@t", "m5.INBOX@t",
         "innew@t"])
    # UIDs kept: the same UID for each message as before the changes
    uid_of = {v[0]: u for u, v in before.items()}
    assert all(uid_of[v[0]] == u for u, v in mine.items()), (before, mine)
    c = env.session()
    assert state(c) == mine
    c.logout()


def test_idle_beside_second_imapd_and_delivery_agent(env):
    """while one session idles, a second imapd appends, flags, expunges
    and moves out, and a delivery agent delivers into new/ and cur/: the
    idling session ends with what a fresh one sees, every message once,
    and the UIDs the second imapd was given"""
    fill(env, 20, flags="")
    env.make_folder("Archive")
    a, b = env.session(), env.session()
    n = select_info(a.ok("SELECT INBOX"))["exists"]
    b.ok("SELECT INBOX")
    idle = Idle(a)
    stop = threading.Event()
    delivered = []

    def agent():
        k = 0
        while not stop.is_set() and k < 40:
            env.deliver(make_msg("agent %d" % k, msgid="<ag%d@t>" % k),
                        flags=None if k % 2 else "S")
            delivered.append(k)
            k += 1
            time.sleep(0.01)
    th = threading.Thread(target=agent)
    th.start()
    uids = []
    moves = {1: 14, 5: 17, 9: 19}
    try:
        for i in range(12):
            t = append(b, "INBOX", make_msg("b%d" % i, msgid="<b%d@t>" % i))[1]
            uids.append(appenduid(t)[1])
            b.ok("UID STORE %d +FLAGS.SILENT (\\Flagged)" % (i + 1))
            if i % 3 == 0:
                b.ok("UID STORE %d +FLAGS.SILENT (\\Deleted)" % (i + 2))
                b.ok("EXPUNGE")
            if i in moves:
                b.ok("UID MOVE %d Archive" % moves[i])
    finally:
        stop.set()
        th.join(timeout=30)
    time.sleep(0.5)
    idle.done()
    mine = ids_and_flags(a)
    a.logout()
    b.logout()
    c = env.session()
    fresh = state(c)
    c.logout()
    assert mine == fresh, (mine, fresh)
    mids = [v[0] for v in fresh.values()]
    assert len(set(mids)) == len(mids), mids
    for k in delivered:
        assert "ag%d@t" % k in mids, k
    for i, u in enumerate(uids):
        assert fresh[int(u)][0] == "b%d@t" % i, (u, fresh.get(int(u)))
    assert len(fresh) == n + len(delivered) + 12 - 4 - 3, len(fresh)


def test_event_queue_overflow_falls_back_to_a_scan(env):
    """the idling server is stopped while more files arrive than the
    kernel queues events for (IN_Q_OVERFLOW), a file is renamed and one
    deleted; once it runs again it reports them all"""
    fill(env, 5, flags="")
    with open("/proc/sys/fs/inotify/max_queued_events") as f:
        burst = min(int(f.read()) + 200, 40000)
    s = env.session()
    n = select_info(s.ok("EXAMINE INBOX"))["exists"]
    idle = Idle(s)
    cur = os.path.join(env.maildir, "cur")
    os.kill(s.p.pid, signal.SIGSTOP)
    try:
        src = os.path.join(env.maildir, "tmp", "burst")
        with open(src, "wb") as f:
            f.write(make_msg("burst", msgid="<burst@t>"))
        os.chown(src, env.uid, env.gid)
        new = os.path.join(env.maildir, "new")
        t0 = int(time.time())
        for k in range(burst):
            os.link(src, os.path.join(new, "%d.B%dQ%d.burst" % (t0, k, k)))
        os.unlink(src)
        x = cur_file(env, "m1.INBOX@t")
        os.rename(os.path.join(cur, x),
                  os.path.join(cur, x.split(":")[0] + ":2,T"))
        os.unlink(os.path.join(cur, cur_file(env, "m3.INBOX@t")))
    finally:
        os.kill(s.p.pid, signal.SIGCONT)
    start = time.monotonic()
    # EXISTS counts the deleted one until its EXPUNGE is sent
    idle.wait(lambda ln: ln in (b"* %d EXISTS" % (n + burst),
                                b"* %d EXISTS" % (n - 1 + burst)),
              start, limit=30)
    idle.done()
    assert b"* 4 EXPUNGE" in idle.lines, idle.lines[:20]
    d = fetches(s.ok("FETCH 2 (FLAGS)"))
    assert "\\Deleted" in map(str, d[2]["FLAGS"]), d
    s.logout()
    c = env.session()
    info = select_info(c.ok("EXAMINE INBOX"))
    assert info["exists"] == n - 1 + burst
    c.logout()


def test_burst_of_arrivals_in_idle_all_told(env):
    """600 files renamed into new/ in a burst while a client idles: every
    one is told within seconds, not at IDLE's 30 s safety look.  Names the
    watch reports while a sync is under way must be applied by that sync
    or by one that follows at once, even when the watch has gone quiet."""
    fill(env, 20)
    s = env.session()
    n = select_info(s.ok("SELECT INBOX"))["exists"]
    path = env.folder_path("INBOX")
    staged = []
    for k in range(600):
        base = "%d.B%dP%d.burst" % (time.time(), k, os.getpid())
        tmp = os.path.join(path, "tmp", base)
        with open(tmp, "wb") as f:
            f.write(make_msg("burst %d" % k, msgid="<b%d@t>" % k))
        os.chown(tmp, env.uid, env.gid)
        staged.append((tmp, os.path.join(path, "new", base)))
    idle = Idle(s)
    t0 = time.monotonic()
    for tmp, dst in staged:
        os.rename(tmp, dst)
    idle.wait(exists_is(n + 600), t0, limit=10.0)
    idle.done()
    st = ids_and_flags(s)
    assert len(st) == n + 600
    assert len({v[0] for v in st.values()}) == n + 600
    s.logout()


def test_own_store_then_outside_renames_before_next_command(env):
    """the events of the server's own flag rename are explained by the
    message it renamed; a second rename of that same file by another
    program right after, and one of another message, still reach the
    client at the next command, and a fresh session agrees"""
    fill(env, 4, flags="")
    s = env.session()
    s.ok("SELECT INBOX")
    s.ok("NOOP")
    out = s.ok("STORE 2 +FLAGS (\\Flagged)")
    assert any(re.match(rb"\* 2 FETCH \(.*FLAGS \(\\Flagged\)", ln)
               for ln in out), out
    cur = os.path.join(env.maildir, "cur")
    n = cur_file(env, "m1.INBOX@t")
    assert n.endswith(":2,F"), n
    os.rename(os.path.join(cur, n),
              os.path.join(cur, n.split(":")[0] + ":2,FS"))
    n = cur_file(env, "m2.INBOX@t")
    os.rename(os.path.join(cur, n),
              os.path.join(cur, n.split(":")[0] + ":2,D"))
    out = s.ok("NOOP")
    assert any(re.match(rb"\* 2 FETCH \(.*FLAGS \(\\Flagged \\Seen\)", ln)
               for ln in out), out
    assert any(re.match(rb"\* 3 FETCH \(.*FLAGS \(\\Draft\)", ln)
               for ln in out), out
    mine = ids_and_flags(s)
    s.logout()
    assert mine[2] == ("m1.INBOX@t", frozenset(["\\Flagged", "\\Seen"]))
    assert mine[3] == ("m2.INBOX@t", frozenset(["\\Draft"]))
    c = env.session()
    assert state(c) == mine
    c.logout()


def dirs_read_to_end(out):
    """the directories (new or cur) the traced process listed to their
    end: getdents64 returning 0 on the descriptor openat gave for it"""
    fds, ends = {}, set()
    for ln in out.splitlines():
        m = re.search(r'openat\(.*"[^"]*/(new|cur)".*\) = (\d+)$', ln)
        if m:
            fds[m.group(2)] = m.group(1)
        m = re.match(r"getdents64\((\d+),.*\) = 0$", ln)
        if m and m.group(1) in fds:
            ends.add(fds[m.group(1)])
    return ends


def test_delivery_while_no_server_reads_new_only(env):
    """mail delivered while no server ran: the next SELECT lists new/
    alone, as cur/ is as the list's stamp says, and still gets every
    message once with the next UIDs"""
    fill(env, 40)
    s = env.session()
    before = ids_and_flags(s) if select_info(s.ok("SELECT INBOX")) else {}
    s.logout()
    for k in range(2):
        env.deliver(make_msg("late %d" % k, msgid="<late%d@t>" % k))
    s = env.session()
    tr = Trace(s.p.pid, os.path.join(env.dir, "strace.out"),
               calls="openat,getdents64")
    try:
        info = select_info(s.ok("SELECT INBOX"))
    finally:
        out = tr.stop()
    assert dirs_read_to_end(out) == {"new"}, out
    assert info["exists"] == 42
    mine = ids_and_flags(s)
    s.logout()
    assert {u: v for u, v in mine.items() if u in before} == before
    late = sorted((v[0], u) for u, v in mine.items() if u not in before)
    top = max(before)
    assert late == [("late0@t", top + 1), ("late1@t", top + 2)], late
    assert not os.listdir(os.path.join(env.maildir, "new"))
    c = env.session()
    assert state(c) == mine
    c.logout()


def test_new_only_changes_that_need_the_whole_folder(env):
    """while no server ran: a file of new/ a read-only session knew was
    deleted, and a copy of a file of cur/ put into new/ under its base
    name; each time the next SELECT still answers as a full scan does"""
    fill(env, 6)
    gone = env.deliver(make_msg("seen in new", msgid="<innew@t>"))
    s = env.session()
    s.ok("EXAMINE INBOX")	# read-only: innew stays in new/
    s.logout()
    os.unlink(gone)
    env.deliver(make_msg("other", msgid="<other@t>"))
    c = env.session()
    info = select_info(c.ok("SELECT INBOX"))
    mids = sorted(v[0] for v in ids_and_flags(c).values())
    c.logout()
    assert info["exists"] == 7, info
    assert "innew@t" not in mids and "other@t" in mids, mids
    # a file of cur/ copied into new/ under its own base name
    n = cur_file(env, "m3.INBOX@t")
    with open(os.path.join(env.maildir, "cur", n), "rb") as f:
        data = f.read()
    dup = os.path.join(env.maildir, "new", n.split(":")[0])
    with open(dup, "wb") as f:
        f.write(data)
    if os.getuid() == 0:
        os.chown(dup, env.uid, env.gid)
    c = env.session()
    info = select_info(c.ok("SELECT INBOX"))
    mids = [v[0] for v in ids_and_flags(c).values()]
    c.logout()
    assert info["exists"] == 7, info
    assert sorted(mids) == sorted(set(mids)), mids
