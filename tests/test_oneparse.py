"""One look at a message per command: the items of one FETCH (PREVIEW
among them) and the content keys of one SEARCH program share the part
tree parsed once for that message.  What shows from outside is that the
answers are the very ones the items and keys give one command each, over
the shared corpus (nasty MIME) and hand-made messages."""
import os

import lib

# FETCH items that look at the part tree.  Each folder keeps a cache of some of them, so the combined
# command and the single ones run over two copies of the same messages.
ITEMS = ["BODYSTRUCTURE", "BODY.PEEK[1]", "BODY.PEEK[2]",
         "BODY.PEEK[1.MIME]", "PREVIEW", "BODY.PEEK[2.1]",
         "BODY.PEEK[1.HEADER]", "ENVELOPE", "BODY"]

# content keys; the programs put several of them on one message
KEYS = ["BODY the", "TEXT http", "BODY boundary", "TEXT charset",
        "HEADER Content-Type multipart", "TEXT \"Content-Transfer\"",
        "BODY =3D", "SUBJECT re", "BODY zzzqqq"]

HAND = [
    lib.make_msg("plain", body="the plain body http://x\n"),
    (b"From: a@example.org\nSubject: alt\nMIME-Version: 1.0\n"
     b"Content-Type: multipart/alternative; boundary=x\n\n--x\n"
     b"Content-Type: text/html; charset=utf-8\n\n<b>the html</b>\n--x\n"
     b"Content-Type: text/plain\nContent-Transfer-Encoding: quoted-"
     b"printable\n\nthe plain =3D part\n--x--\n"),
    (b"From: b@example.org\nSubject: fwd\nMIME-Version: 1.0\n"
     b"Content-Type: multipart/mixed; boundary=y\n\n--y\n"
     b"Content-Type: message/rfc822\n\nSubject: inner\n"
     b"Content-Type: text/plain; charset=iso-8859-1\n"
     b"Content-Transfer-Encoding: base64\n\nY2Fm6SBjcuhtZQ==\n--y--\n"),
]


def corpus():
    out = []
    for d, _, files in sorted(os.walk(lib.CORPUS)):
        out += [os.path.join(d, f) for f in sorted(files)
                if f.endswith(".eml")]
    assert out, lib.CORPUS
    msgs = []
    for path in out:
        with open(path, "rb") as fh:
            msgs.append(fh.read())
    return msgs + HAND


def put(env, folder, msgs):
    """the messages in cur/ under names that sort as they are given"""
    path = env.make_folder(folder)
    for i, data in enumerate(msgs):
        name = "%d.M%dP1.once:2,S" % (1000000000 + i, i)
        with open(os.path.join(path, "cur", name), "wb") as fh:
            fh.write(data)
    env.fix_owner()


def test_fetch_items_together_as_alone(env):
    msgs = corpus()
    put(env, "INBOX", msgs)
    put(env, "Alone", msgs)
    s = env.session()
    s.ok("SELECT INBOX")
    together = lib.fetches(s.ok("FETCH 1:* (%s)" % " ".join(ITEMS)))
    s.ok("SELECT Alone")
    alone = {}
    for item in ITEMS:
        for n, d in lib.fetches(s.ok("FETCH 1:* (%s)" % item)).items():
            alone.setdefault(n, {}).update(d)
    assert len(together) == len(msgs) == len(alone)
    for n in range(1, len(msgs) + 1):
        assert together[n] == alone[n], n
    # the hand-made ones say what they should
    k = len(msgs) - len(HAND)
    assert together[k + 1]["PREVIEW"] == b"the plain body http://x"
    assert together[k + 2]["PREVIEW"] == b"the plain = part"
    assert together[k + 3]["PREVIEW"] == "caf\u00e9 cr\u00e8me".encode()


def found(s, program):
    return set(lib.search_result(s.ok("SEARCH " + program)))


def check_programs(s, total):
    one = {k: found(s, k) for k in KEYS}
    every = set(range(1, total + 1))
    for a, b, c in zip(KEYS, KEYS[1:] + KEYS[:1], KEYS[2:] + KEYS[:2]):
        assert found(s, "%s %s %s" % (a, b, c)) == one[a] & one[b] & one[c]
        assert found(s, "OR %s %s" % (a, b)) == one[a] | one[b]
        assert found(s, "NOT %s %s" % (a, b)) == (every - one[a]) & one[b]
        assert found(s, "OR (%s %s) NOT %s" % (a, b, c)) == \
            (one[a] & one[b]) | (every - one[c])
    return one


def test_search_keys_together_as_alone(env):
    """several BODY, TEXT and HEADER keys on one message answer as each
    alone does, reading the messages and from the full-text index"""
    msgs = corpus()
    put(env, "INBOX", msgs)
    scan = env.session(IMAPD_FTS="off")
    scan.ok("SELECT INBOX")
    one = check_programs(scan, len(msgs))
    assert all(one[k] for k in KEYS[:-1]) and not one["BODY zzzqqq"], one
    k = len(msgs) - len(HAND)
    assert k + 1 in one["BODY the"] & one["TEXT http"]
    assert k + 2 in one["BODY the"] - one["BODY =3D"]  # decoded
    idx = env.session()
    idx.ok("SELECT INBOX")
    assert check_programs(idx, len(msgs)) == one
