"""imapd -d, the local delivery agent: the message on stdin goes into the
Maildir the safe way (tmp/, fsync, rename) with its UID recorded at once,
an IDLEing client hears of it at once, concurrent deliveries lose and
duplicate nothing, and failures answer 75 (EX_TEMPFAIL) leaving nothing
behind, so that the MTA's retry delivers exactly one copy.  What the Sieve
script decides is tested in test_sieve.py; here the actions are carried
out: folders, flags, redirect and vacation through a stand-in sendmail,
reject as a refusal."""
import os
import re
import resource
import stat
import subprocess
import threading
import time

import lib
from lib import make_msg, fetches, select_info

EX_OK, EX_USAGE, EX_NOPERM, EX_TEMPFAIL = 0, 64, 77, 75


def deliver(env, data, *args, script=None, extra=None, **kw):
    """run imapd -d with data on stdin; (exit code, stderr)"""
    e = env.env(**(extra or {}))
    if script is not None:
        path = os.path.join(env.dir, "test.sieve")
        with open(path, "w") as f:
            f.write(script)
        env.fix_owner()
        e["IMAPD_SIEVE"] = path
    else:
        e.setdefault("IMAPD_SIEVE", os.path.join(env.dir, "no-script"))
    e.setdefault("IMAPD_SIEVE_STATE", os.path.join(env.dir, "state"))
    p = env.popen([lib.IMAPD, "-d"] + list(args), stdin=subprocess.PIPE,
                  stderr=subprocess.PIPE, env=e, **kw)
    _, err = p.communicate(data, timeout=20)
    env.log.write(err)
    return p.returncode, err.decode("utf-8", "replace")


def files(env, folder="INBOX"):
    base = env.folder_path(folder)
    out = {}
    for sub in ("tmp", "new", "cur"):
        d = os.path.join(base, sub)
        out[sub] = sorted(os.listdir(d)) if os.path.isdir(d) else []
    return out


def bodies(env, folder="INBOX"):
    f = files(env, folder)
    out = []
    for sub in ("new", "cur"):
        for name in f[sub]:
            with open(os.path.join(env.folder_path(folder), sub, name),
                      "rb") as fh:
                out.append(fh.read())
    return out


def fake_sendmail(env):
    """a sendmail that records its arguments and input, one file a call"""
    out = os.path.join(env.dir, "sent")
    os.makedirs(out, exist_ok=True)
    path = os.path.join(env.dir, "sendmail")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nf=%s/$(date +%%s%%N).$$\n"
                "printf '%%s\\n' \"$@\" > $f.args\ncat > $f.msg\n" % out)
    os.chmod(path, 0o755)
    env.fix_owner()
    return path, out


def sent(out):
    """[(args, message)] of what the stand-in sendmail was given"""
    res = []
    for name in sorted(os.listdir(out)):
        if name.endswith(".args"):
            with open(os.path.join(out, name)) as f:
                args = f.read().split("\n")[:-1]
            with open(os.path.join(out, name[:-5] + ".msg"), "rb") as f:
                res.append((args, f.read()))
    return res


# --- delivery into INBOX ----------------------------------------------------

def test_deliver_to_inbox_with_uid(env):
    msg = make_msg("first delivery")
    rc, err = deliver(env, msg)
    assert rc == EX_OK, err
    f = files(env)
    assert f["tmp"] == [] and f["cur"] == [] and len(f["new"]) == 1, f
    assert bodies(env) == [msg]
    # the UID was recorded by the delivery, not found later by a scan
    with open(os.path.join(env.maildir, "imapd-uidlist"), "rb") as fh:
        assert f["new"][0].split(",")[0].encode() in fh.read()
    rc, err = deliver(env, make_msg("second delivery"))
    assert rc == EX_OK, err
    s = env.session()
    info = select_info(s.ok("SELECT INBOX"))
    assert info["exists"] == 2, info
    f = fetches(s.ok("FETCH 1:* (UID FLAGS)"))
    assert sorted(int(d["UID"]) for d in f.values()) == [1, 2], f
    s.logout()


def test_deliver_mbox_from_line_and_envelope_env(env):
    """a leading mbox "From " line is not part of the message; the
    envelope comes from -f/-a or SENDER/RECIPIENT as Postfix sets them"""
    msg = make_msg("from line")
    rc, err = deliver(env, b"From someone@example.org Mon Jan 1 00:00:00 2024\n"
                      + msg)
    assert rc == EX_OK, err
    assert bodies(env) == [msg]
    script = ('require ["envelope", "fileinto", "mailbox"];\n'
              'if envelope :is "from" "env@example.org" '
              '{ fileinto :create "ByEnv"; }\n')
    rc, err = deliver(env, msg, "-n", script=script,
                      extra={"SENDER": "env@example.org"})
    assert rc == EX_OK and err == "", err


def test_deliver_usage_and_too_large_input(env):
    rc, err = deliver(env, b"x", "-x")
    assert rc == EX_USAGE and "usage" in err, (rc, err)
    rc, err = deliver(env, b"x", "extra-arg")
    assert rc == EX_USAGE, (rc, err)


# --- IDLE and concurrency ------------------------------------------------------

def test_delivery_seen_by_idle_within_100ms(env):
    s = env.session()
    s.ok("SELECT INBOX")
    tag = s.tag()
    s.send("%s IDLE\r\n" % tag)
    assert s.line() == b"+ idling"
    latencies = []
    for i in range(3):
        rc, err = deliver(env, make_msg("idle %d" % i))
        t0 = time.monotonic()
        assert rc == EX_OK, err
        while True:
            ln = s.line(timeout=2)
            if ln == b"* %d EXISTS" % (i + 1):
                break
        latencies.append(time.monotonic() - t0)
    print("    delivery -> EXISTS: %s ms" %
          ", ".join("%.1f" % (x * 1000) for x in latencies))
    # the best of three: a loaded machine may delay one wake-up
    assert min(latencies) < 0.1, latencies
    s.send("DONE\r\n")
    u, t = s.collect(tag)
    assert b"OK" in t, t


def test_concurrent_deliveries_and_appends(env):
    """deliveries racing each other and an APPENDing session: every
    message once, UIDs unique"""
    n = 12
    results = []

    def one(i):
        results.append(deliver(env, make_msg("parallel %d" % i)))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    s = env.session()
    for t in threads:
        t.start()
    for i in range(4):
        lib.append(s, "INBOX", make_msg("append %d" % i))
    for t in threads:
        t.join(30)
    assert [r for r, _ in results] == [EX_OK] * n, results
    info = select_info(s.ok("SELECT INBOX"))
    assert info["exists"] == n + 4, info
    f = fetches(s.ok("FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    uids = [d["UID"] for d in f.values()]
    assert len(set(uids)) == n + 4, uids
    subjects = sorted(re.search(rb"Subject: (.*?)\r\n",
                                d["BODY[HEADER.FIELDS (SUBJECT)]"]).group(1)
                      for d in f.values())
    want = sorted([b"parallel %d" % i for i in range(n)] +
                  [b"append %d" % i for i in range(4)])
    assert subjects == want, subjects
    assert files(env)["tmp"] == []
    s.logout()


# --- failures ----------------------------------------------------------------------

def _small_fs(env):
    """a Maildir on a nearly full file system: a small tmpfs when mount
    is allowed; None otherwise"""
    mnt = os.path.join(env.dir, "small")
    os.makedirs(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs",
                        mnt], capture_output=True)
    if r.returncode != 0:
        return None
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(mnt, "Maildir", sub))
    env.fix_owner()
    return mnt


def test_full_disk_answers_tempfail(env):
    big = make_msg("big", body=("y" * 76 + "\n") * 4000)     # ~300 KB
    mnt = _small_fs(env)
    try:
        if mnt:
            md = os.path.join(mnt, "Maildir")
            rc, err = deliver(env, big, extra={"MAILDIR": md})
        else:
            # no mount here: the file size limit fails the write the
            # same way a full disk does
            md = env.maildir

            def limit():
                resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
            rc, err = deliver(env, big, preexec_fn=limit)
        assert rc == EX_TEMPFAIL, (rc, err)
        for sub in ("tmp", "new", "cur"):
            assert os.listdir(os.path.join(md, sub)) == [], sub
        # a message that fits still goes in afterwards
        rc, err = deliver(env, make_msg("small"), extra={"MAILDIR": md})
        assert rc == EX_OK, err
        assert len(os.listdir(os.path.join(md, "new"))) == 1
    finally:
        if mnt:
            subprocess.run(["umount", "-l", mnt])


def test_failure_takes_back_earlier_copies(env):
    """fileinto succeeds, then INBOX cannot be written: 75, and the copy
    in the folder is taken back so that the retry makes exactly one"""
    env.make_folder("Lists")
    script = 'require "fileinto";\nfileinto "Lists";\nkeep;\n'
    new = os.path.join(env.maildir, "new")
    cur = os.path.join(env.maildir, "cur")
    os.chmod(new, 0o500)
    os.chmod(cur, 0o500)
    try:
        rc, err = deliver(env, make_msg("retry me"), script=script)
    finally:
        os.chmod(new, 0o700)
        os.chmod(cur, 0o700)
    assert rc == EX_TEMPFAIL, (rc, err)
    f = files(env, "Lists")
    assert f["new"] == [] and f["cur"] == [] and f["tmp"] == [], f
    rc, err = deliver(env, make_msg("retry me"), script=script)
    assert rc == EX_OK, err
    assert len(bodies(env, "Lists")) == 1 and len(bodies(env)) == 1
    s = env.session()
    info = select_info(s.ok("SELECT Lists"))
    assert info["exists"] == 1, info
    s.logout()


def test_missing_maildir_is_tempfail(env):
    rc, err = deliver(env, make_msg("x"),
                      extra={"MAILDIR": "/nonexistent/dir/Maildir"})
    assert rc == EX_TEMPFAIL, (rc, err)


# --- carrying out Sieve actions -------------------------------------------------

def test_fileinto_flags_and_create(env):
    script = ('require ["fileinto", "imap4flags", "mailbox"];\n'
              'if header :contains "subject" "list" {\n'
              '  fileinto :create :flags ["\\\\Seen", "$Label1"] "Lists.dev";\n'
              '} else { addflag "\\\\Flagged"; }\n')
    rc, err = deliver(env, make_msg("a list message"), script=script)
    assert rc == EX_OK, err
    f = files(env, "Lists.dev")
    assert len(f["cur"]) == 1 and f["cur"][0].endswith(":2,Sa"), f
    assert bodies(env) == []
    rc, err = deliver(env, make_msg("personal"), script=script)
    assert rc == EX_OK, err
    assert files(env)["cur"][0].endswith(":2,F"), files(env)
    s = env.session()
    s.ok("SELECT Lists.dev")
    f = fetches(s.ok("FETCH 1 (FLAGS)"))
    assert set(f[1]["FLAGS"]) == {"\\Seen", "$Label1"}, f
    s.logout()


def test_fileinto_missing_folder_keeps_once(env):
    script = 'require "fileinto";\nfileinto "Nowhere";\nkeep;\n'
    rc, err = deliver(env, make_msg("lost?"), script=script)
    assert rc == EX_OK, err
    assert len(bodies(env)) == 1
    assert not os.path.exists(env.folder_path("Nowhere"))


def test_broken_script_keeps_and_tells_once(env):
    script = 'require "fileinto";\nif header :is "subject" {\n'
    rc, err = deliver(env, make_msg("one"), script=script)
    assert rc == EX_OK, err
    assert "line 3, column 1: expected '}'" in err, err
    got = bodies(env)
    assert len(got) == 2, got
    notice = [b for b in got if b"mail filter has an error" in b]
    assert len(notice) == 1 and b"line 3, column 1" in notice[0], got
    rc, err = deliver(env, make_msg("two"), script=script)
    assert rc == EX_OK and len(bodies(env)) == 3


def test_redirect_and_vacation_through_sendmail(env):
    sm, out = fake_sendmail(env)
    me = "bob@example.net"
    script = ('require ["vacation", "copy"];\n'
              'redirect :copy "archive@example.com";\n'
              'vacation :days 2 :subject "Away" "I am away.";\n')
    ext = {"IMAPD_SENDMAIL": sm}
    msg = make_msg("hello bob", to="Bob <%s>" % me)
    rc, err = deliver(env, msg, "-f", "alice@example.org", "-a", me,
                      script=script, extra=ext)
    assert rc == EX_OK, err
    got = sent(out)
    assert len(got) == 2, got
    redirect = [g for g in got if "archive@example.com" in g[0]]
    assert redirect and redirect[0][1] == msg, got
    assert redirect[0][0][:3] == ["-i", "-f", "alice@example.org"]
    reply = [g for g in got if "alice@example.org" in g[0][-1:]]
    assert reply and reply[0][0][2] == "<>", got
    r = reply[0][1]
    assert b"Subject: Away\r\n" in r and b"Auto-Submitted: auto-replied" in r
    assert b"In-Reply-To: <hellobob@example.org>" in r and r.endswith(
        b"I am away."), r
    assert len(bodies(env)) == 1
    # the :days memory: no reply to the same sender's next message
    msg2 = make_msg("hello bob", to="Bob <%s>" % me, msgid="<next@x.org>")
    rc, err = deliver(env, msg2, "-f", "alice@example.org", "-a", me,
                      script=script, extra=ext)
    assert rc == EX_OK and len(sent(out)) == 3, sent(out)
    # never to lists, bulk mail or the null sender
    for hdrs, frm in ((["List-Id: <dev.example.org>"], "carol@example.org"),
                      (["Precedence: bulk"], "dave@example.org"),
                      ([], "")):
        m = make_msg("news", to=me, headers=hdrs)
        rc, err = deliver(env, m, "-f", frm, "-a", me, script=script,
                          extra=ext)
        assert rc == EX_OK, err
    replies = [g for g in sent(out) if g[0][-1] != "archive@example.com"]
    assert len(replies) == 1, sent(out)
    # only to mail sent to the user: the recipient or one of :addresses
    other = make_msg("to someone else", to="eve@example.net")
    rc, err = deliver(env, other, "-f", "frank@example.org", "-a", me,
                      script=script, extra=ext)
    assert rc == EX_OK and "not in To, Cc or Bcc" in err, err
    alias = script.replace(':days 2', ':days 2 :addresses ["eve@example.net"]')
    other = make_msg("to someone else", to="eve@example.net",
                     msgid="<other2@example.net>")
    rc, err = deliver(env, other, "-f", "frank@example.org", "-a", me,
                      script=alias, extra=ext)
    assert rc == EX_OK, err
    replies = [g for g in sent(out) if g[0][-1] != "archive@example.com"]
    assert [g[0][-1] for g in replies] == ["alice@example.org",
                                           "frank@example.org"], replies


def test_reject_refuses_with_reason(env):
    script = 'require "reject";\nif size :over 10 { reject "too big\nhere"; }\n'
    rc, err = deliver(env, make_msg("x"), "-f", "a@example.org",
                      script=script)
    assert rc == EX_NOPERM and "too big here" in err, (rc, err)
    assert bodies(env) == []
    # to the null sender there is no one to tell: dropped, not bounced
    rc, err = deliver(env, make_msg("x"), "-f", "<>", script=script)
    assert rc == EX_OK and bodies(env) == [], (rc, err)
