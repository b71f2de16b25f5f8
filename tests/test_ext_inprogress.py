"""INPROGRESS (RFC 9585): "* OK [INPROGRESS ("tag" done total)]" while
a long SEARCH or SORT works.  With the interval of config.h at 1 ms a
search over a few hundred messages is long enough to be seen."""
import re

import lib
import refimap

N = 300


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
    binary = refimap.configured_imapd()     # INPROGRESS_MS 1
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
    assert lib.is_ok(t) and reports(u, "B1"), u
    # the answer itself stays whole and last
    assert u[-1].startswith(b"* SORT ") and len(u[-1].split()) == N + 2


def test_inprogress_quiet_for_short_commands(env):
    for i in range(5):
        refimap.deliver(env, i + 1, lib.make_msg("m%d" % i))
    s = env.session()
    s.ok("SELECT INBOX")
    u = s.ok('SEARCH BODY "hello"')
    assert not [x for x in u if b"INPROGRESS" in x], u
