"""imapd -d killed part way, then run again by the MTA: the delivery
memory (a line before the first copy is stored saying where each folder's
UIDs stood, a line when all is done) makes the retry store each copy
exactly once, whatever instant the kill came at.  IMAPD_KILL_AT makes the
delivery kill itself (SIGKILL) at a named point; the last test kills it
from outside at random instants instead."""
import os
import random
import signal
import subprocess
import time

import lib
from lib import make_msg, select_info
from test_deliver import EX_OK, bodies, deliver

SCRIPT = 'require "fileinto";\nfileinto "Lists";\nkeep;\n'


def copies(env, msgid, folder="INBOX"):
    """how many messages in folder carry this Message-ID"""
    return sum(1 for b in bodies(env, folder)
               if ("Message-ID: %s" % msgid).encode() in b)


def killed(env, msg, point, script=SCRIPT, *args):
    rc, err = deliver(env, msg, *args, script=script,
                      extra={"IMAPD_KILL_AT": point})
    assert rc == -signal.SIGKILL, (point, rc, err)


def test_retry_after_a_kill_at_each_point(env):
    env.make_folder("Lists")
    for point in ("intent", "stored", "done"):
        msgid = "<kill-%s@example.org>" % point
        msg = make_msg("kill at " + point, msgid=msgid)
        killed(env, msg, point)
        # the MTA heard no exit code: it delivers again
        rc, err = deliver(env, msg, script=SCRIPT)
        assert rc == EX_OK, (point, err)
        assert copies(env, msgid, "Lists") == 1, point
        assert copies(env, msgid) == 1, point
        # and once more, as after an exit code lost on the way: nothing
        rc, err = deliver(env, msg, script=SCRIPT)
        assert rc == EX_OK and "already delivered" in err, (point, err)
        assert copies(env, msgid, "Lists") == 1, point
        assert copies(env, msgid) == 1, point
    s = env.session()
    assert select_info(s.ok("SELECT Lists"))["exists"] == 3
    assert select_info(s.ok("SELECT INBOX"))["exists"] == 3
    s.logout()


def test_kill_between_rename_and_uid(env):
    """the file reached new/ but its UID was never written: the retry
    finds it (it gets its UID when the folder is read) and stores no
    second copy"""
    msgid = "<renamed@example.org>"
    msg = make_msg("renamed, no uid", msgid=msgid)
    killed(env, msg, "intent", "keep;\n")
    # what the rename of the killed delivery would have left
    path = os.path.join(env.maildir, "new", "1700000000.M1P1.host")
    with open(path, "wb") as f:
        f.write(msg)
    env.fix_owner()
    rc, err = deliver(env, msg, script="keep;\n")
    assert rc == EX_OK, err
    assert "already holds this message" in err, err
    assert copies(env, msgid) == 1
    s = env.session()
    assert select_info(s.ok("SELECT INBOX"))["exists"] == 1
    s.logout()


def test_what_the_memory_does_not_suppress(env):
    """a message with the same Message-ID from another sender (a list's
    copy), to another recipient, or a first delivery that failed and was
    taken back: each stored"""
    msgid = "<shared@example.org>"
    msg = make_msg("same id", msgid=msgid)
    for frm, to in (("a@example.org", "me@example.com"),
                    ("list-bounces@example.net", "me@example.com"),
                    ("a@example.org", "me+tag@example.com")):
        rc, err = deliver(env, msg, "-f", frm, "-a", to, script="keep;\n")
        assert rc == EX_OK and "already" not in err, err
    assert copies(env, msgid) == 3
    # without a Message-ID the octets tell messages apart
    a = b"From: x@example.org\nSubject: no id\n\none\n"
    b = b"From: x@example.org\nSubject: no id\n\ntwo\n"
    for m in (a, b, a):
        rc, err = deliver(env, m, script="keep;\n")
        assert rc == EX_OK, err
    got = bodies(env)
    assert got.count(a) == 1 and got.count(b) == 1, got


def test_kill_at_random_instants(env):
    """SIGKILL from outside at random instants of a delivery into two
    folders, then the retry: each folder holds the message once"""
    env.make_folder("Lists")
    rnd = random.Random(7)
    body = "line of text\n" * 20000
    e = env.env(IMAPD_SIEVE=os.path.join(env.dir, "test.sieve"),
                IMAPD_SIEVE_STATE=os.path.join(env.dir, "state"))
    with open(e["IMAPD_SIEVE"], "w") as f:
        f.write(SCRIPT)
    env.fix_owner()
    # how long one delivery takes here
    t0 = time.monotonic()
    rc, err = deliver(env, make_msg("timing", body=body), script=SCRIPT)
    took = time.monotonic() - t0
    assert rc == EX_OK, err
    hit = 0
    for i in range(8):
        msgid = "<random-%d@example.org>" % i
        msg = make_msg("random %d" % i, body=body, msgid=msgid)
        p = env.popen([lib.IMAPD, "-d"], stdin=subprocess.PIPE,
                      stderr=subprocess.PIPE, env=e)
        p.stdin.write(msg)
        p.stdin.close()
        time.sleep(rnd.uniform(0, took))
        p.send_signal(signal.SIGKILL)
        p.wait(20)
        env.log.write(p.stderr.read())
        p.stderr.close()
        hit += p.returncode == -signal.SIGKILL
        rc, err = deliver(env, msg, script=SCRIPT)
        assert rc == EX_OK, err
        assert copies(env, msgid, "Lists") == 1, (i, err)
        assert copies(env, msgid) == 1, (i, err)
    print("    %d of 8 deliveries killed before they ended" % hit)
    s = env.session()
    assert select_info(s.ok("SELECT Lists"))["exists"] == 9
    s.logout()
