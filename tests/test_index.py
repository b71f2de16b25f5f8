"""The store's index and message cache through the real imapd: a damaged,
missing or outdated imapd-index or imapd-cache is detected, logged and
rebuilt without losing anything; kill -9 in the middle of STORE, APPEND,
EXPUNGE, COPY and MOVE leaves every message exactly once with its UID and
its last acknowledged flags; two imapds and a delivery agent at once; file
times in the future and the past; and \\Recent as RFC 3501 2.3.2 has it
(recent in exactly one session, the first told of the message)."""
import os
import random
import re
import signal
import struct
import time

from lib import (append, appenduid, fetches, make_msg, select_info,
                 untagged)

INDEX = "imapd-index"
CACHE = "imapd-cache"


def fill(env, n, folder="INBOX", flags="S"):
    for i in range(n):
        env.deliver(make_msg("msg %d" % i, "body %d\n" % i,
                             msgid="<m%d.%s@t>" % (i, folder)),
                    folder=folder, flags=flags)


def ids_and_flags(s):
    """{uid: (message-id, flags without \\Recent)} of the mailbox session
    s has selected, as it sees it now"""
    d = fetches(s.ok("UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS "
                     "(MESSAGE-ID)])"))
    out = {}
    for v in d.values():
        hdr = [x for k, x in v.items() if k.startswith("BODY[")][0]
        mid = re.search(rb"<([^>]*)>", hdr).group(1).decode()
        out[int(v["UID"])] = (mid, frozenset(map(str, v["FLAGS"])) -
                              {"\\Recent"})
    return out


def state(s, mailbox="INBOX"):
    """{uid: (message-id, flags without \\Recent)} of mailbox"""
    info = select_info(s.ok("EXAMINE %s" % mailbox))
    return ids_and_flags(s) if info["exists"] else {}


def log(env):
    env.log.flush()
    with open(env.logpath, "rb") as f:
        return f.read().decode("utf-8", "replace")


def index_path(env, folder="INBOX"):
    return os.path.join(env.folder_path(folder), INDEX)


# --- the index ------------------------------------------------------------

def damage(path, how):
    with open(path, "r+b") as f:
        data = f.read()
        if how == "truncated":
            f.truncate(len(data) // 2)
        elif how == "corrupt":
            f.seek(len(data) * 2 // 3)
            f.write(bytes(b ^ 0x5a for b in data[len(data) * 2 // 3:][:64]))
        elif how == "older":
            f.seek(8)
            f.write(struct.pack("=I", 0))       # the version field
        elif how == "foreign":
            f.seek(0)
            f.write(data[:8][::-1])             # another byte order


def test_index_written_and_used(env):
    fill(env, 40)
    s = env.session()
    s.ok("SELECT INBOX")
    s.ok("UID STORE 3 +FLAGS (\\Flagged)")
    s.logout()
    assert os.path.getsize(index_path(env)) > 40 * 32
    before = os.stat(index_path(env)).st_mtime_ns
    # a new process reads the index and the list's few new lines
    s = env.session()
    st = state(s)
    assert len(st) == 40 and "\\Flagged" in st[3][1], st[3]
    assert all("\\Seen" in fl for _, fl in st.values())
    s.logout()
    assert os.stat(index_path(env)).st_mtime_ns == before
    assert "rebuilding" not in log(env)


def test_index_damaged_is_rebuilt_and_logged(env):
    fill(env, 60)
    s = env.session()
    s.ok("SELECT INBOX")
    s.ok("UID STORE 1:10 +FLAGS (\\Answered)")
    good = state(s)
    s.logout()
    for how, word in (("truncated", "truncated"), ("corrupt", "damaged"),
                      ("older", "older format"),
                      ("foreign", "not an index of this machine"),
                      ("deleted", None)):
        if how == "deleted":
            os.unlink(index_path(env))
        else:
            damage(index_path(env), how)
        s = env.session()
        assert state(s) == good, how
        s.logout()
        if word:
            assert re.search(INDEX + r": " + word + ".*rebuilding",
                             log(env)), (how, log(env)[-500:])
        # rebuilt: the next process finds it sound
        mark = len(log(env))
        s = env.session()
        assert state(s) == good, how
        s.logout()
        assert "rebuilding" not in log(env)[mark:], how
        assert os.path.exists(index_path(env)), how


def test_index_of_an_older_list_is_not_trusted(env):
    """an index written for a UID list that was since rewritten (another
    generation) or removed by hand (another UIDVALIDITY) is ignored"""
    fill(env, 30)
    s = env.session()
    info = select_info(s.ok("SELECT INBOX"))
    s.logout()
    saved = open(index_path(env), "rb").read()
    os.unlink(os.path.join(env.maildir, "imapd-uidlist"))
    s = env.session()
    info2 = select_info(s.ok("SELECT INBOX"))
    assert info2["uidvalidity"] != info["uidvalidity"]
    assert info2["exists"] == 30
    s.logout()
    with open(index_path(env), "wb") as f:
        f.write(saved)
    env.fix_owner()
    s = env.session()
    info3 = select_info(s.ok("SELECT INBOX"))
    assert info3["uidvalidity"] == info2["uidvalidity"], (info2, info3)
    assert len(state(s)) == 30
    s.logout()


def test_many_changes_then_new_process(env):
    """the index is rewritten once the list has grown past it; every
    change survives into the next process"""
    fill(env, 200, flags="")
    s = env.session()
    s.ok("SELECT INBOX")
    for u in range(1, 201, 2):
        s.ok("UID STORE %d +FLAGS.SILENT (\\Seen)" % u)
    s.ok("UID STORE 1:20 +FLAGS.SILENT (\\Deleted)")
    s.ok("EXPUNGE")
    s.logout()
    s = env.session()
    st = state(s)
    assert sorted(st) == list(range(21, 201)), sorted(st)[:5]
    for u, (mid, fl) in st.items():
        assert ("\\Seen" in fl) == (u % 2 == 1), (u, fl)
    s.logout()


# --- the message cache ------------------------------------------------------

def headers(s):
    return {int(v["UID"]): (v["ENVELOPE"], v["BODYSTRUCTURE"],
                            [x for k, x in v.items()
                             if k.startswith("BODY[")][0])
            for v in fetches(s.ok(
                "UID FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER."
                "FIELDS (From Subject Message-ID)])")).values()}


def test_cache_answers_the_same(env):
    fill(env, 20)
    s = env.session()
    s.ok("SELECT INBOX")
    first = headers(s)
    s.logout()
    assert os.path.getsize(os.path.join(env.maildir, CACHE)) > 20 * 100
    s = env.session()
    s.ok("SELECT INBOX")
    assert headers(s) == first
    s.logout()


def test_cache_stale_and_damaged(env):
    fill(env, 20)
    s = env.session()
    s.ok("SELECT INBOX")
    first = headers(s)
    s.logout()
    cache = os.path.join(env.maildir, CACHE)
    # damaged entries are skipped and logged
    with open(cache, "r+b") as f:
        f.seek(os.path.getsize(cache) // 2)
        f.write(b"\xff" * 200)
    s = env.session()
    s.ok("SELECT INBOX")
    assert headers(s) == first
    s.logout()
    assert re.search(CACHE + r": \d+ damaged words skipped", log(env))
    # UIDs given anew (list removed by hand) to files in another order:
    # no entry of the old numbering may answer for the new
    os.unlink(os.path.join(env.maildir, "imapd-uidlist"))
    os.unlink(index_path(env))
    cur = os.path.join(env.maildir, "cur")
    names = sorted(os.listdir(cur))
    for i, n in enumerate(reversed(names)):
        os.rename(os.path.join(cur, n), os.path.join(cur, "%d.%s" % (i, n)))
    s = env.session()
    s.ok("SELECT INBOX")
    now = headers(s)
    assert sorted(v[2] for v in now.values()) == \
        sorted(v[2] for v in first.values())
    assert now[1][2] == first[20][2], (now[1], first[20])
    s.logout()
    assert "another UIDVALIDITY" in log(env)


# --- kill -9 at any instant ---------------------------------------------------

def after(model, kind, uid, arg, t):
    """the model once the operation is done; a message it adds gets its UID
    from the tagged answer t, or None when the server was killed first"""
    m = {b: dict(v) for b, v in model.items()}
    inbox, box = m["INBOX"], m["Box"]
    if kind == "store":
        inbox[uid] = (inbox[uid][0], inbox[uid][1] | {arg})
    elif kind == "expunge":
        del inbox[uid]
    elif kind == "append":
        inbox[appenduid(t)[1] if t else None] = (arg, frozenset(
            {"\\Flagged"}))
    else:
        c = re.search(rb"COPYUID \d+ \d+ (\d+)", t) if t else None
        box[int(c.group(1)) if c else None] = inbox[uid]
        if kind == "move":
            del inbox[uid]
    return m


def matches(got, cand):
    """got equals cand, where a message under UID None may have any UID
    above the others of its folder"""
    for b in got:
        g, c = dict(got[b]), dict(cand[b])
        new = c.pop(None, None)
        if new is not None:
            extra = sorted(set(g) - set(c))
            if len(extra) != 1 or g[extra[0]] != new or \
                    extra[0] <= max(c, default=0):
                return False
            del g[extra[0]]
        if g != c:
            return False
    return True


def pick(rnd, model, r, k):
    """(command text, kind, uid, argument) of a random operation"""
    inbox = model["INBOX"]
    kind = rnd.choice(["store", "append", "expunge", "copy", "move"])
    if kind == "append" or not inbox:
        mid = "a%d.%d@t" % (r, k)
        return None, "append", None, mid
    uid = rnd.choice(sorted(inbox))
    if kind == "store":
        fl = rnd.choice(["\\Seen", "\\Flagged", "\\Answered", "$Work"])
        return ("UID STORE %d +FLAGS.SILENT (%s)" % (uid, fl), kind, uid,
                fl)
    if kind == "expunge":
        return "UID EXPUNGE %d" % uid, kind, uid, None
    return "UID %s %d Box" % (kind.upper(), uid), kind, uid, None


def send(s, text, kind, arg, tag):
    if kind == "append":
        data = make_msg("app", "x\n", msgid="<%s>" % arg)
        s.send(b"%s APPEND INBOX (\\Flagged) {%d+}\r\n%s\r\n"
               % (tag.encode(), len(data), data))
    else:
        if kind == "expunge":
            s.ok(text.replace("EXPUNGE", "STORE") +
                 " +FLAGS.SILENT (\\Deleted)")
        s.send("%s %s\r\n" % (tag, text))


def test_kill9_loop(env):
    """a session doing STORE, APPEND, EXPUNGE, COPY and MOVE is killed at
    random instants; after each kill the store shows every acknowledged
    change, the killed command either done or not done, nothing twice,
    and every UID unchanged"""
    rnd = random.Random(7)
    fill(env, 12, flags="")
    env.make_folder("Box")
    s = env.session()
    model = {"INBOX": state(s), "Box": {}}
    s.logout()
    deadline = time.time() + 5
    rounds = 0
    # at least 6 kills, more while time allows, never more than 15
    while rounds < 15 and (rounds < 6 or time.time() < deadline):
        rounds += 1
        s = env.session()
        s.ok("SELECT INBOX")
        killed = None
        for k in range(rnd.randint(1, 4)):
            text, kind, uid, arg = pick(rnd, model, rounds, k)
            if kind == "expunge":
                model = after(model, "store", uid, "\\Deleted", None)
            send(s, text, kind, arg, "x%d" % k)
            if rnd.random() < 0.4:
                time.sleep(rnd.random() * 0.004)
                killed = (kind, uid, arg)
                break
            u, t = s.collect("x%d" % k)
            assert b" OK" in t, (text, t)
            # MOVE names the new UIDs in an untagged OK (RFC 6851)
            model = after(model, kind, uid, arg, b" ".join(u + [t]))
        os.kill(s.p.pid, signal.SIGKILL)
        s.p.wait()
        c = env.session()
        got = {"INBOX": state(c, "INBOX"), "Box": state(c, "Box")}
        c.logout()
        cands = [model]
        if killed:
            cands.append(after(model, killed[0], killed[1], killed[2], None))
        if killed and killed[0] == "move":
            # MOVE is COPY then EXPUNGE: killed between the two, the
            # message is in both folders (no loss; not yet atomic)
            cands.append(after(model, "copy", killed[1], None, None))
        assert any(matches(got, x) for x in cands), (killed, got, model)
        model = got


# --- several processes, a delivery agent, clocks ---------------------------

def test_two_imapds_and_a_delivery_agent(env):
    fill(env, 10, flags="")
    a, b = env.session(), env.session()
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    for i in range(30):
        env.deliver(make_msg("d%d" % i, msgid="<d%d@t>" % i))
        if i % 3 == 0:
            a.ok("UID STORE %d +FLAGS.SILENT (\\Seen)" % (i // 3 + 1))
        if i % 5 == 0:
            t = append(b, "INBOX", make_msg("b%d" % i,
                                            msgid="<b%d@t>" % i))[1]
            assert b" OK" in t, t
        if i % 4 == 0:
            a.ok("NOOP")
            b.ok("NOOP")
    a.ok("NOOP")
    b.ok("NOOP")
    a.logout()
    b.logout()
    c = env.session()
    st = state(c)
    mids = sorted(v[0] for v in st.values())
    assert len(mids) == 10 + 30 + 6 and len(set(mids)) == len(mids), mids
    for u in range(1, 11):
        assert "\\Seen" in st[u][1], (u, st[u])
    c.logout()
    c = env.session()
    assert state(c) == st
    c.logout()


def test_file_times_in_the_future_and_past(env):
    """mtimes (internal dates, directory times) far from the clock, and a
    clock that seems to go back, neither hide nor invent messages"""
    fill(env, 5)
    now = time.time()
    cur = os.path.join(env.maildir, "cur")
    for i, n in enumerate(sorted(os.listdir(cur))):
        t = now + 86400 * 365 if i % 2 else 86400
        os.utime(os.path.join(cur, n), (t, t))
    os.utime(cur, (now + 86400 * 30, now + 86400 * 30))
    s = env.session()
    assert len(state(s)) == 5
    s.logout()
    # the directories go back in time while files arrive: seen all the same
    env.deliver(make_msg("later", msgid="<later@t>"), flags="S")
    os.utime(cur, (now - 86400 * 30, now - 86400 * 30))
    os.utime(os.path.join(env.maildir, "new"),
             (now - 86400 * 30, now - 86400 * 30))
    s = env.session()
    st = state(s)
    assert len(st) == 6 and "later@t" in [v[0] for v in st.values()], st
    s.logout()


# --- \Recent: one session, the first told --------------------------------

def test_recent_for_a_copy_into_a_selected_folder(env):
    """a \Seen message copied into a folder another session has selected
    is recent there (it lands in cur/, not new/)"""
    fill(env, 2)
    env.make_folder("Box")
    env.deliver(make_msg("old", msgid="<old@t>"), folder="Box", flags="S")
    a = env.session()
    assert select_info(a.ok("SELECT Box"))["recent"] == 0
    b = env.session()
    b.ok("SELECT INBOX")
    b.ok("UID COPY 1 Box")
    u = a.ok("NOOP")
    assert b"* 2 EXISTS" in u and b"* 1 RECENT" in u, u
    fl = fetches(a.ok("FETCH 2 FLAGS"))[2]["FLAGS"]
    assert "\\Recent" in map(str, fl) and "\\Seen" in map(str, fl), fl
    # nobody else is told it is recent
    c = env.session()
    assert select_info(c.ok("SELECT Box"))["recent"] == 0
    fl = fetches(c.ok("FETCH 2 FLAGS"))[2]["FLAGS"]
    assert "\\Recent" not in map(str, fl), fl


def test_recent_for_a_delivery_into_cur(env):
    """mail another program puts straight into cur/ (mbsync, a filter)
    is recent for the first session told, once"""
    fill(env, 1)
    a = env.session()
    assert select_info(a.ok("SELECT INBOX"))["recent"] == 0
    env.deliver(make_msg("synced", msgid="<synced@t>"), flags="S")
    u = a.ok("NOOP")
    assert b"* 1 RECENT" in u, u
    b = env.session()
    info = select_info(b.ok("SELECT INBOX"))
    assert info["exists"] == 2 and info["recent"] == 0, info
    st = untagged(b.ok("STATUS INBOX (RECENT)"), "STATUS")
    assert b"RECENT 0" in st[0], st


def test_recent_examine_does_not_take_it(env):
    fill(env, 1)
    s = env.session()
    s.ok("SELECT INBOX")
    s.logout()
    env.deliver(make_msg("fresh", msgid="<fresh@t>"))
    e = env.session()
    assert select_info(e.ok("EXAMINE INBOX"))["recent"] == 1
    st = untagged(e.ok("STATUS INBOX (RECENT)"), "STATUS")
    assert b"RECENT 1" in st[0], st
    a = env.session()
    assert select_info(a.ok("SELECT INBOX"))["recent"] == 1
    b = env.session()
    assert select_info(b.ok("SELECT INBOX"))["recent"] == 0
