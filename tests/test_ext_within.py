"""WITHIN (RFC 5032): SEARCH OLDER n and YOUNGER n on the internal date,
checked against the RFC's example and against Dovecot on the same
Maildir."""
import time

import lib
import refimap

DAY = 86400


def mailbox(env):
    """five messages 10, 5, 2 days, 2 hours and 1 minute old; the first
    and the fourth seen"""
    now = time.time()
    ages = (10 * DAY, 5 * DAY, 2 * DAY, 7200, 60)
    for i, age in enumerate(ages):
        refimap.deliver(env, i, lib.make_msg("m%d" % i),
                        flags="S" if i in (0, 3) else "", mtime=now - age)


def test_within_capability(env):
    s = env.session()
    u = s.ok("CAPABILITY")
    assert "WITHIN" in lib.caps_of(u[0])


def test_within_rfc_example(env):
    """RFC 5032 section 3: SEARCH UNSEEN YOUNGER 259200"""
    mailbox(env)
    s = env.session()
    s.ok("SELECT INBOX")
    assert lib.search_result(s.ok("SEARCH UNSEEN YOUNGER 259200")) == [3, 5]
    assert lib.search_result(s.ok("SEARCH YOUNGER 259200")) == [3, 4, 5]
    assert lib.search_result(s.ok("SEARCH OLDER 259200")) == [1, 2]
    assert lib.search_result(s.ok("SEARCH NOT YOUNGER 259200")) == [1, 2]
    assert lib.search_result(s.ok("UID SEARCH OLDER 3600 YOUNGER 604800")) \
        == [2, 3, 4]
    assert lib.search_result(s.ok("SEARCH OR OLDER 800000 YOUNGER 120")) \
        == [1, 5]
    assert lib.search_result(s.ok("SEARCH YOUNGER 1")) == []


def test_within_bad_intervals(env):
    mailbox(env)
    s = env.session()
    s.ok("SELECT INBOX")
    for arg in ("OLDER 0", "YOUNGER", "YOUNGER -5", "OLDER 4294967296",
                "YOUNGER abc"):
        s.bad("SEARCH " + arg)
    s.ok("NOOP")


def test_within_matches_dovecot(env):
    mailbox(env)
    dmail = refimap.copy_maildir(env)
    cmds = ["SELECT INBOX", "SEARCH UNSEEN YOUNGER 259200",
            "SEARCH OLDER 259200", "SEARCH YOUNGER 86400",
            "UID SEARCH OLDER 3600 YOUNGER 604800",
            "SEARCH NOT OLDER 300", "SEARCH OR OLDER 800000 YOUNGER 120",
            "SEARCH RETURN (COUNT MIN) YOUNGER 500000", "SEARCH OLDER 0"]
    dv = refimap.run(env, dmail, cmds)
    s = env.session()
    ours = refimap.imapd(s, cmds)
    for c, (du, dt), (ou, ot) in zip(cmds[1:], dv[1:], ours[1:]):
        assert refimap.status(dt) == refimap.status(ot), (c, dt, ot)
        d = [x for x in du if x.startswith((b"* SEARCH", b"* ESEARCH"))]
        o = [x for x in ou if x.startswith((b"* SEARCH", b"* ESEARCH"))]
        if d and d[0].startswith(b"* ESEARCH"):
            d = [refimap.esearch_items(x) for x in d]
            o = [refimap.esearch_items(x) for x in o]
        assert d == o, (c, d, o)
