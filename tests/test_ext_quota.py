"""QUOTA (RFC 9208): GETQUOTAROOT and GETQUOTA on the one root "",
STORAGE and MESSAGE usage, STATUS DELETED and DELETED-STORAGE, and
[OVERQUOTA] for APPEND and COPY beyond configured limits (MOVE stays in
the root).  Usage and refusals compared with Dovecot's quota plugin."""
import os
import re

import lib
import refimap

DOVECOT_QUOTA = ("mail_plugins=quota imap_quota",
                 "plugin/quota=maildir:User quota",
                 "plugin/quota_rule=*:storage=%dK:messages=%d")


def msg(i, size=1500):
    body = ("line %d " % i) * (size // 8) + "\n"
    return lib.make_msg("q%d" % i, body=body, eol="\r\n")


def quota_of(lines):
    q = [x for x in lines if x.startswith(b"* QUOTA ")]
    assert len(q) == 1, lines
    toks = lib.parse_imap(q[0])
    res = toks[3]
    return toks[2], {str(k).upper(): (int(u), int(l)) for k, u, l in
                     zip(res[0::3], res[1::3], res[2::3])}


def test_quota_capability(env):
    s = env.session()
    caps = lib.caps_of(s.ok("CAPABILITY")[0])
    assert {"QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE"} <= caps
    assert "QUOTASET" not in caps


def test_quota_usage_without_limits(env):
    """RFC 9208 section 4.3.2 example: GETQUOTAROOT INBOX; with no limit
    configured the file system is the limit"""
    sizes = 0
    for i in range(3):
        m = msg(i)
        sizes += len(m)
        refimap.deliver(env, i + 1, m)
    refimap.deliver(env, 4, msg(4), folder="Archive")
    sizes += len(msg(4))
    s = env.session()
    u = s.ok("GETQUOTAROOT INBOX")
    qr = [lib.parse_imap(x) for x in u if x.startswith(b"* QUOTAROOT ")]
    assert len(qr) == 1 and qr[0][2:] in (["INBOX", b""], [b"INBOX", b""]), u
    root, q = quota_of(u)
    assert root == b""
    assert q["STORAGE"][0] == (sizes + 1023) // 1024
    assert q["MESSAGE"][0] == 4
    fs = os.statvfs(env.maildir)
    free_kb = fs.f_bavail * fs.f_frsize // 1024
    assert abs(q["STORAGE"][1] - (q["STORAGE"][0] + free_kb)) < \
        max(1024, free_kb // 100), (q, free_kb)
    assert q["MESSAGE"][1] >= 4
    root, q2 = quota_of(s.ok('GETQUOTA ""'))
    assert q2["STORAGE"][0] == q["STORAGE"][0] and q2["MESSAGE"][0] == 4
    u = s.ok("GETQUOTAROOT Archive")
    assert any(lib.parse_imap(x)[2:] in (["Archive", b""], [b"Archive", b""])
               for x in u if x.startswith(b"* QUOTAROOT ")), u
    s.no('GETQUOTA "User quota"', "NONEXISTENT")
    s.no("GETQUOTAROOT Nowhere", "NONEXISTENT")
    s.no('SETQUOTA "" (STORAGE 512)', "NOPERM")
    s.bad("GETQUOTA")


def test_quota_status_deleted(env):
    """RFC 9208 section 4.2: STATUS DELETED and DELETED-STORAGE"""
    for i in range(4):
        refimap.deliver(env, i + 1, msg(i, 3000), flags="T" if i < 2 else "")
    s = env.session()
    st = lib.status_items(s.ok("STATUS INBOX (MESSAGES DELETED "
                               "DELETED-STORAGE)"))
    assert st["MESSAGES"] == 4 and st["DELETED"] == 2
    assert st["DELETED-STORAGE"] == (len(msg(0, 3000)) +
                                     len(msg(1, 3000)) + 1023) // 1024
    s.ok("SELECT INBOX")
    s.ok("STORE 3 +FLAGS (\\Deleted)")
    s.ok("EXPUNGE")
    st = lib.status_items(s.ok("STATUS INBOX (DELETED DELETED-STORAGE)"))
    assert st == {"DELETED": 0, "DELETED-STORAGE": 0}


def test_quota_limits_and_overquota(env):
    """limits from config.h: APPEND and COPY past them fail with
    [OVERQUOTA] and store nothing; MOVE is allowed; Dovecot's quota plugin
    with the same limits agrees on usage and refusals"""
    binary = refimap.configured_imapd()     # 8 KiB, 4 messages
    env.make_folder("Archive")
    dmail = refimap.copy_maildir(env)
    small, big = msg(1, 1500), msg(2, 9000)
    cmds = [b"APPEND INBOX {%d+}\r\n" % len(small) + small,
            b"APPEND INBOX {%d+}\r\n" % len(big) + big,
            b"APPEND INBOX {%d+}\r\n" % len(small) + small,
            b"APPEND INBOX {%d+}\r\n" % len(small) + small,
            "GETQUOTAROOT INBOX", "SELECT INBOX", "COPY 1:3 Archive",
            "COPY 1 Archive", "MOVE 2 Archive", "GETQUOTAROOT Archive",
            b"APPEND INBOX {%d+}\r\n" % len(small) + small,
            "STATUS INBOX (MESSAGES)", "STATUS Archive (MESSAGES)"]
    opts = DOVECOT_QUOTA[:2] + (DOVECOT_QUOTA[2] % (8, 4),)
    dv = refimap.run(env, dmail, cmds, options=opts)
    s = refimap.session_of(env, binary)
    ours = refimap.imapd(s, cmds)
    want = ["OK", "NO", "OK", "OK", "OK", "OK", "NO", "OK", "OK", "OK",
            "NO", "OK", "OK"]
    for c, w, (du, dt), (ou, ot) in zip(cmds, want, dv, ours):
        assert refimap.status(ot) == w, (c[:30], ot)
        assert refimap.status(dt) == w, (c[:30], dt)
    for i in (1, 6, 10):
        assert b"[OVERQUOTA]" in ours[i][1], ours[i]
    for i in (4, 9):
        _, dq = quota_of(dv[i][0])
        _, oq = quota_of(ours[i][0])
        assert dq == oq, (cmds[i], dq, oq)
    assert lib.status_items(ours[11][0])["MESSAGES"] == 2
    assert lib.status_items(ours[12][0])["MESSAGES"] == 2
    assert lib.status_items(dv[11][0]) == lib.status_items(ours[11][0])
