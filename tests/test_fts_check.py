"""How the full-text index narrows and checks: the stored text is sifted
many places at a time by two octets of the needle, so needles at every
offset from the start and end of a column, of every length, with repeated
octets, must be found exactly where a scan finds them; a trigram in most
messages keeps the list of those that lack it, which must narrow exactly;
a segment of an older format is built afresh without a word of damage."""
import os
import random

import lib
from lib import make_msg
from test_fts import (SEG_MAGIC, answers, compare, index_rows,
                      index_segments, put, search_uids)


def test_fts_sift_offsets_equal_scan(env):
    """a needle at each offset of a body 0 to 70 octets long, at its very
    start and end, and needles of 1 to 40 octets over those bodies"""
    rnd = random.Random(5)
    alpha = "abcdefgh"
    msgs, bodies = [], []
    for n in range(0, 71):
        body = "".join(rnd.choice(alpha) for _ in range(n))
        if n >= 7:
            k = rnd.randrange(n - 6)
            body = body[:k] + "qzjxkvw" + body[k + 7:]
        bodies.append(body)
        msgs.append(make_msg(subject="s%d" % n, body=body + "\n"))
    # the needle written over the last octets, and over the first
    msgs.append(make_msg(subject="end", body="x" * 45 + "wvkxjzq"))
    msgs.append(make_msg(subject="start", body="wvkxjzq" + "y" * 45))
    put(env, msgs)
    needles = ["qzjxkvw", "wvkxjzq", "zjx", "q", "w", "aa", "aaa", "abab",
               "hgfedcba", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
               "yyyyyyyyyyyyyyyyyyyy", "xwvkxjzq", "wvkxjzqy", "xxxxxwv"]
    for _ in range(60):
        b = rnd.choice([b for b in bodies if b])
        n = rnd.randint(1, min(40, len(b)))
        i = rnd.randrange(len(b) - n + 1)
        needles.append(b[i:i + n])
    queries = [(k, n) for n in sorted(set(needles)) for k in ("BODY", "TEXT")]
    want = compare(env, queries)
    table = dict(zip(queries, want))
    n_with = sum(1 for b in bodies if "qzjxkvw" in b)
    assert len(table[("BODY", "qzjxkvw")]) == n_with == 64
    assert table[("BODY", "wvkxjzq")] == [72, 73]
    assert table[("BODY", "xwvkxjzq")] == [72]
    assert table[("BODY", "wvkxjzqy")] == [73]


def test_fts_dense_trigrams_equal_scan(env):
    """trigrams most messages hold: a message holding every trigram of a
    needle but not the needle, and one lacking only one of them"""
    msgs = []
    for i in range(90):
        msgs.append(make_msg(subject="weekly %d" % i,
                             body="the meeting is at noon, item %d\n" % i))
    # MEE EET ETI TIN ING all there, "meeting" not
    msgs.append(make_msg(subject="odd", body="meet eeti settin gin\n"))
    # no ING at all
    msgs.append(make_msg(subject="odd2", body="a meetinx there\n"))
    # the word, but after a long run without it
    msgs.append(make_msg(subject="late", body="z" * 5000 + " meeting\n"))
    for i in range(10):
        msgs.append(make_msg(subject="other %d" % i, body="nothing here\n"))
    put(env, msgs)
    queries = [(k, n) for k in ("TEXT", "BODY", "SUBJECT")
               for n in ("meeting", "MEETING", "eeti", "meetinx", "noon",
                         "the meeting is", "nothing", "weekly", "zzzz m",
                         "ing", "tin", "odd", "gin")]
    want = compare(env, queries)
    table = dict(zip(queries, want))
    assert table[("BODY", "meeting")] == list(range(1, 91)) + [93]
    assert table[("BODY", "meetinx")] == [92]
    assert table[("SUBJECT", "weekly")] == list(range(1, 91))


def test_fts_older_format_rebuilt(env):
    """segments of an older version are rebuilt quietly, answers equal"""
    put(env, [make_msg(subject="note %d" % i, body="word%d common\n" % i)
              for i in range(40)])
    s = env.session()
    s.ok("SELECT INBOX")
    assert search_uids(s, "BODY", "word17 ") == [18]
    s.logout()
    old = index_segments(env)
    for seg in old:
        with open(seg, "r+b") as fh:
            fh.write(SEG_MAGIC[:7] + b"1")
    s = env.session()
    s.ok("SELECT INBOX")
    assert search_uids(s, "BODY", "word17 ") == [18]
    assert answers(s, [("TEXT", "common"), ("SUBJECT", "note 3")]) == [
        list(range(1, 41)), [4] + list(range(31, 41))]
    s.logout()
    new = index_segments(env)
    assert not set(old) & set(new)
    assert not any(os.path.exists(x) for x in old)
    assert index_rows(env) == 40
    env.log.flush()
    with open(env.logpath, "rb") as fh:
        assert b"damaged" not in fh.read()
