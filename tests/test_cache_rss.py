"""What a session costs in memory when it answers from the message cache,
and that it answers the same: a header sync, SEARCH HEADER and FETCH FAST
in a new process read the cache through a bounded window (the peak stays
a few MB above the SELECT whatever the cache's size), a single FETCH reads
the cache's map rather than every entry, stale or damaged map and entries
are detected, and CONDSTORE/QRESYNC resyncs at the folder's HIGHESTMODSEQ
answer right after another process's STOREs."""
import datetime
import os
import re

import lib
from lib import fetches, make_msg

HEADERS = ("UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE "
           "BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (From To Cc Subject Date "
           "Message-ID References In-Reply-To Content-Type)])")
CACHE = "imapd-cache"
CACHEMAP = "imapd-cachemap"
MB = 1 << 20
N = 3000	# messages: a cache of about 17 MB


def big_header_msg(i):
    """a message whose cached items are large (long To and References),
    so that a few thousand make a cache of tens of megabytes"""
    to = ", ".join("Person %d-%d <p%d.%d@example.net>" % (i, k, i, k)
                   for k in range(40))
    refs = " ".join("<ref%d.%d.thread@example.org>" % (i, k)
                    for k in range(60))
    subject = "meeting %d" % i if i % 7 == 0 else "report %d" % i
    return make_msg(subject, "body %d\n" % i, to=to,
                    msgid="<m%d@example.org>" % i,
                    headers=("References: " + refs,
                             "In-Reply-To: <ref%d.0.thread@example.org>" % i))


def fill(env, n):
    for i in range(n):
        env.deliver(big_header_msg(i), flags="S",
                    mtime=1.5e9 + 3600 * (i % 97))


def memory(s):
    """(VmHWM, VmRSS, RssFile) of the server in bytes, and whether it
    runs under AddressSanitizer (whose heap makes VmHWM meaningless)"""
    v = {}
    with open("/proc/%d/status" % s.p.pid) as f:
        for ln in f:
            k, _, rest = ln.partition(":")
            if k in ("VmHWM", "VmRSS", "RssFile"):
                v[k] = int(rest.split()[0]) * 1024
    with open("/proc/%d/maps" % s.p.pid) as f:
        asan = "libasan" in f.read()
    return v["VmHWM"], v["VmRSS"], v["RssFile"], asan


def built(env, n):
    """n messages and their cache, made by a first header sync; its
    answer"""
    fill(env, n)
    s = env.preauth()
    s.ok("SELECT INBOX")
    first = s.ok(HEADERS)
    s.logout()
    return first


def test_header_sync_and_search_in_bounded_memory(env):
    """a new process's warm header sync and SEARCH HEADER over a cache of
    over 16 MB peak within 10 MB of its SELECT (the whole cache stayed
    mapped in before), answering byte for byte as the first sync did"""
    first = built(env, N)
    size = os.path.getsize(os.path.join(env.maildir, CACHE))
    assert size > 16 * MB, size
    assert os.path.getsize(os.path.join(env.maildir, CACHEMAP)) > N * 12
    s = env.preauth()
    s.ok("SELECT INBOX")
    _, base, basefile, asan = memory(s)
    assert s.ok(HEADERS) == first
    u = s.ok('UID SEARCH HEADER Subject "meeting"')
    found = [ln for ln in u if ln.startswith(b"* SEARCH")]
    meeting = [re.search(rb"UID (\d+)", ln).group(1) for ln in first
               if b'"meeting ' in ln]
    assert len(meeting) == len(range(0, N, 7))
    assert found == [b"* SEARCH " + b" ".join(sorted(meeting, key=int))], \
        found[:1]
    hwm, _, rssfile, asan = memory(s)
    s.logout()
    # the cache's pages do not stay: what is mapped in now is bounded
    assert rssfile - basefile < 10 * MB, (rssfile, basefile, size)
    if not asan:
        assert hwm - base < 10 * MB, (hwm, base, size)


def test_one_fetch_reads_the_map_not_the_cache(env):
    """a single FETCH in a new process finds its entry through the cache
    map: it maps in a few pages, not the whole cache; with the map
    deleted or damaged the answers stay the same (damage is logged) and
    the next process has a map again"""
    built(env, N)
    mapfile = os.path.join(env.maildir, CACHEMAP)
    want = None
    for damage in (None, "truncate", "flip", "delete"):
        if damage == "truncate":
            with open(mapfile, "r+b") as f:
                f.truncate(os.path.getsize(mapfile) - 12)
        elif damage == "flip":
            with open(mapfile, "r+b") as f:
                f.seek(os.path.getsize(mapfile) // 2)
                b = f.read(1)
                f.seek(-1, 1)
                f.write(bytes([b[0] ^ 0x40]))
        elif damage == "delete":
            os.unlink(mapfile)
        s = env.preauth()
        s.ok("SELECT INBOX")
        _, _, basefile, _ = memory(s)
        got = s.ok("UID FETCH 1300 (UID RFC822.SIZE INTERNALDATE ENVELOPE "
                   "BODY.PEEK[HEADER.FIELDS (References)])")
        _, _, rssfile, _ = memory(s)
        s.logout()
        assert want is None or got == want, (damage, got, want)
        want = got
        if damage is None:
            assert rssfile - basefile < 4 * MB, (rssfile, basefile)
        assert os.path.getsize(mapfile) == 56 + N * 12, damage
    assert re.search(CACHEMAP + r": damaged or cut short",
                     open(env.logpath, errors="replace").read())
    assert b"References: <ref" in want[0] and b"ENVELOPE" in want[0]


def expected_fast(env):
    """{message-id: (RFC822.SIZE, mtime)} from the files themselves"""
    out = {}
    cur = os.path.join(env.maildir, "cur")
    for n in os.listdir(cur):
        p = os.path.join(cur, n)
        with open(p, "rb") as f:
            data = f.read()
        mid = re.search(rb"Message-ID: <([^>]*)>", data).group(1)
        out[mid.decode()] = (len(data) + data.count(b"\n") -
                             data.count(b"\r\n"), int(os.stat(p).st_mtime))
    return out


def fast_answers(s):
    """{message-id: (RFC822.SIZE, INTERNALDATE as seconds)}"""
    d = fetches(s.ok("FETCH 1:* FAST"))
    ids = fetches(s.ok("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (Message-ID)])"))
    out = {}
    for seq, v in d.items():
        hdr = [x for k, x in ids[seq].items() if k.startswith("BODY[")][0]
        mid = re.search(rb"<([^>]*)>", hdr).group(1).decode()
        d = v["INTERNALDATE"]
        d = d.decode() if isinstance(d, bytes) else d
        t = datetime.datetime.strptime(d.strip(), "%d-%b-%Y %H:%M:%S %z"
                                       ).timestamp()
        out[mid] = (int(v["RFC822.SIZE"]), int(t))
    return out


def test_fetch_fast_from_the_cache_and_stale_entries(env):
    """FETCH FAST in a new process answers sizes and dates from the cache
    as the files have them; after a message is replaced by another file
    with other bytes, and after the UIDs are given anew to the files in
    another order (every cache entry then names another file), the
    answers are those of the files, not of the stale entries"""
    fill(env, 300)
    s = env.preauth()
    s.ok("SELECT INBOX")
    s.ok(HEADERS)
    s.logout()
    want = expected_fast(env)
    s = env.preauth()
    s.ok("SELECT INBOX")
    assert fast_answers(s) == want
    s.logout()
    # a program rewrites a message: a new file, a new name, a new size
    cur = os.path.join(env.maildir, "cur")
    victim = sorted(os.listdir(cur))[5]
    with open(os.path.join(cur, victim), "rb") as f:
        data = f.read()
    os.unlink(os.path.join(cur, victim))
    env.deliver(data.replace(b"body ", b"a much longer body now " * 20),
                flags="S", mtime=1.6e9)
    want = expected_fast(env)
    s = env.preauth()
    s.ok("SELECT INBOX")
    assert fast_answers(s) == want
    s.logout()
    # the same files, numbered anew in reverse order
    os.unlink(os.path.join(env.maildir, "imapd-uidlist"))
    os.unlink(os.path.join(env.maildir, "imapd-index"))
    names = sorted(os.listdir(cur))
    for i, n in enumerate(reversed(names)):
        os.rename(os.path.join(cur, n), os.path.join(cur, "%d.%s" % (i, n)))
    s = env.preauth()
    s.ok("SELECT INBOX")
    assert fast_answers(s) == want
    s.logout()


def flags_since(s, modseq):
    """{uid: flags} of UID FETCH 1:* (FLAGS) (CHANGEDSINCE modseq)"""
    d = fetches(s.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % modseq))
    return {int(v["UID"]): set(map(str, v["FLAGS"])) for v in d.values()}


def highest(lines):
    return int(re.search(rb"HIGHESTMODSEQ (\d+)", b" ".join(lines)).group(1))


def test_resync_at_highestmodseq_after_stores_elsewhere(env):
    """CHANGEDSINCE and QRESYNC at the HIGHESTMODSEQ a client knows: after
    another process's STOREs they name exactly the messages it changed,
    and at the new HIGHESTMODSEQ nothing, in the old session and in new
    ones"""
    for i in range(40):
        env.deliver(make_msg("m %d" % i), flags="S")
    a = env.preauth()
    u = a.ok("SELECT INBOX (CONDSTORE)")
    m1 = highest(u)
    v = int(re.search(rb"UIDVALIDITY (\d+)", b" ".join(u)).group(1))
    assert flags_since(a, m1) == {}
    b = env.preauth()
    b.ok("SELECT INBOX")
    b.ok("UID STORE 7,31 +FLAGS.SILENT (\\Flagged)")
    b.ok("UID STORE 12 -FLAGS.SILENT (\\Seen)")
    b.logout()
    changed = {7: {"\\Seen", "\\Flagged"}, 31: {"\\Seen", "\\Flagged"},
               12: set()}
    a.ok("NOOP")
    assert flags_since(a, m1) == changed
    a.logout()
    c = env.preauth()
    m2 = highest(c.ok("SELECT INBOX (CONDSTORE)"))
    assert m2 > m1
    assert flags_since(c, m2) == {}
    assert flags_since(c, m2 + 5) == {}
    assert flags_since(c, m1) == changed
    c.logout()
    for since, want in ((m1, {7, 12, 31}), (m2, set())):
        q = env.preauth()
        q.ok("ENABLE QRESYNC")
        u = q.ok("SELECT INBOX (QRESYNC (%d %d))" % (v, since))
        got = {int(x["UID"]) for x in fetches(u).values()}
        assert got == want, (since, got)
        q.logout()


def test_rewrite_under_a_reader_keeps_a_true_map(env):
    """a cache mostly dead (each entry superseded twice) is rewritten by
    the next process that opens it, with a map of the new generation; a
    process that still holds the old cache answers from it, and at its
    end does not put its map of the old one in place: the next process
    answers the same as the first sync did, reading the map"""
    n = 600
    first = built(env, n)
    cache = os.path.join(env.maildir, CACHE)
    mapfile = os.path.join(env.maildir, CACHEMAP)
    old = env.preauth()
    old.ok("SELECT INBOX")
    old.ok("UID FETCH 1 (ENVELOPE)")
    for extra in ("SORT (DATE) UTF-8 ALL", "FETCH 1:* (PREVIEW)"):
        s = env.preauth()
        s.ok("SELECT INBOX")
        s.ok(extra)
        s.logout()
    grown = os.path.getsize(cache)
    s = env.preauth()
    s.ok("SELECT INBOX")
    assert s.ok(HEADERS) == first
    s.logout()
    assert os.path.getsize(cache) < grown / 2, (grown, os.path.getsize(cache))
    assert os.path.getsize(mapfile) == 56 + n * 12
    with open(mapfile, "rb") as f:
        newmap = f.read()
    # the holder of the old file reads it and adds to it, then leaves
    assert old.ok(HEADERS) == first
    old.ok("UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (X-Not-There)])")
    old.logout()
    with open(mapfile, "rb") as f:
        assert f.read() == newmap
    s = env.preauth()
    s.ok("SELECT INBOX")
    assert s.ok(HEADERS) == first
    s.logout()
    assert "damaged" not in open(env.logpath, errors="replace").read()


def test_two_writers_and_a_delivery_then_the_map(env):
    """two processes fill the cache at once, in overlapping ranges, while
    a delivery agent adds messages; both leave a map; a new process
    answers from cache and map exactly as one with neither does"""
    fill(env, 400)
    a, b = env.preauth(), env.preauth()
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    a.ok(HEADERS.replace("1:*", "1:200"))
    b.ok(HEADERS.replace("1:*", "150:400"))
    for i in range(400, 420):
        env.deliver(big_header_msg(i))
    a.ok(HEADERS.replace("1:*", "380:*"))
    b.ok(HEADERS)
    a.ok(HEADERS)
    a.logout()
    b.logout()
    assert os.path.getsize(os.path.join(env.maildir, CACHEMAP)) > 56
    s = env.preauth()
    s.ok("SELECT INBOX")
    cached = s.ok(HEADERS)
    s.logout()
    os.unlink(os.path.join(env.maildir, CACHE))
    os.unlink(os.path.join(env.maildir, CACHEMAP))
    s = env.preauth()
    s.ok("SELECT INBOX")
    fresh = s.ok(HEADERS)
    s.logout()
    assert len(fresh) == 420
    assert cached == fresh
    assert "damaged" not in open(env.logpath, errors="replace").read()
