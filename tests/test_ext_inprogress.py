"""INPROGRESS (RFC 9585): "* OK [INPROGRESS ("tag" done total)]" while
a long SEARCH, SORT, COPY, MOVE or first SELECT works.  With the interval
of config.h at 1 ms a search over a few hundred messages, or a copy of
1500, is long enough to be seen."""
import atexit
import glob
import os
import re
import shutil
import subprocess
import tempfile

import lib
import refimap

N = 300
_fast = {}


def fast_imapd():
    """imapd with INPROGRESS_MS 1 in config.h.  Only progress.c reads the
    knob, so the tree's objects are linked with progress.c compiled
    again: seconds, where a whole build under ASan takes minutes on a
    busy machine"""
    if _fast.get("bin") and os.path.exists(_fast["bin"]):
        return _fast["bin"]
    src = os.path.dirname(lib.IMAPD)
    readers = [os.path.basename(f) for f in glob.glob(os.path.join(src, "*.c"))
               if b"INPROGRESS_MS" in open(f, "rb").read()]
    assert readers == ["progress.c"], readers
    holder = tempfile.mkdtemp(prefix="imapd-inprogress-")
    os.chmod(holder, 0o755)
    atexit.register(shutil.rmtree, holder, True)
    bld = os.path.join(holder, "build")
    os.makedirs(bld)
    for f in os.listdir(src):
        if f.endswith((".c", ".h", ".o")) or f == "Makefile":
            shutil.copy2(os.path.join(src, f), bld)
    cfg = os.path.join(bld, "config.h")
    if not os.path.exists(cfg):
        shutil.copy(os.path.join(bld, "config.def.h"), cfg)
    with open(cfg) as f:
        text, n = re.subn(r"#define INPROGRESS_MS\s+\d+",
                          "#define INPROGRESS_MS 1", f.read())
    assert n == 1
    with open(cfg, "w") as f:
        f.write(text)
    # the headers as old as the objects: make compiles progress.c alone
    objs = glob.glob(os.path.join(bld, "*.o"))
    if objs:
        old = min(os.path.getmtime(o) for o in objs) - 10
        for h in glob.glob(os.path.join(bld, "*.h")):
            os.utime(h, (old, old))
        for c in glob.glob(os.path.join(bld, "*.c")):
            os.utime(c, (old, old))
    if os.path.exists(os.path.join(bld, "progress.o")):
        os.unlink(os.path.join(bld, "progress.o"))
    with open(lib.IMAPD, "rb") as f:
        asan = b"__asan_init" in f.read()
    flags = "-std=c99 -O1 -g -Wall -Wextra -Werror -Wno-unused-parameter"
    cmd = ["make", "-s", "imapd"]
    if asan:
        san = " -fsanitize=address,undefined -fno-omit-frame-pointer"
        cmd += ["CFLAGS=" + flags + san, "LDFLAGS=" + san.strip()]
    r = subprocess.run(cmd, cwd=bld, timeout=300, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    os.chmod(bld, 0o755)
    _fast["bin"] = os.path.join(bld, "imapd")
    return _fast["bin"]


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
    binary = fast_imapd()
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
    assert lib.is_ok(t), t
    # two steps, the search and then the sort of what it found: told
    # one after the other, done growing, out of the 2N of both
    r = reports(u, "B1")
    assert r and all(0 < d <= tot and tot in (N, 2 * N) for d, tot in r), r
    assert [d for d, _ in r] == sorted(set(d for d, _ in r)), r
    assert r[-1][1] == 2 * N, r
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
    s = refimap.session_of(env, fast_imapd())
    u, t = s.cmd("SELECT INBOX", tag="S1")
    assert lib.is_ok(t), t
    print("first SELECT", reports(u, "S1")[:3], reports(u, "S1")[-1:])
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
    s = refimap.session_of(env, fast_imapd())
    s.ok("SELECT INBOX")
    s.ok("CREATE Archive")
    s.ok("CREATE Later")
    u, t = s.cmd("COPY 1:* Archive", tag="C1")
    assert lib.is_ok(t) and b"COPYUID" in t, t
    print("COPY", reports(u, "C1")[:3], reports(u, "C1")[-1:])
    check_reports(reports(u, "C1"), n)
    u, t = s.cmd("UID MOVE 1:* Later", tag="M1")
    assert lib.is_ok(t), t
    check_reports(reports(u, "M1"), n)
    # reports end with their command: a later short one hears none
    u, t = s.cmd("NOOP", tag="N1")
    assert not [x for x in u if b"INPROGRESS" in x], u
    st = lib.status_items(s.ok("STATUS Later (MESSAGES)"))
    assert int(st["MESSAGES"]) == n, st
