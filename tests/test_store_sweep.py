"""What a writer killed half way leaves beside a folder's state files
(imapd-uidlist, -index, -cache, -cachemap are written to NAME.PID.tmp and
renamed) is removed by the next read-write open once it is older than any
write takes; a fresh one, a read-only open and other files are left."""
import os
import time

from test_index import fill, log


def put(path, age):
    with open(path, "wb") as f:
        f.write(b"x" * 4096)
    t = time.time() - age
    os.utime(path, (t, t))


def test_stale_state_temporaries_removed(env):
    fill(env, 3)
    md = env.maildir
    old = ["imapd-cache.4242.tmp", "imapd-index.4243.tmp",
           "imapd-cachemap.4244.tmp", "imapd-uidlist.4245.tmp"]
    for n in old:
        put(os.path.join(md, n), 2 * 3600)
    put(os.path.join(md, "imapd-cache.4246.tmp"), 60)	# being written
    put(os.path.join(md, "mine.tmp"), 2 * 3600)		# not imapd's
    s = env.session()
    s.ok("EXAMINE INBOX")		# read-only: nothing removed
    s.logout()
    assert all(os.path.exists(os.path.join(md, n)) for n in old)
    s = env.session()
    s.ok("SELECT INBOX")
    s.logout()
    left = sorted(n for n in os.listdir(md) if n.endswith(".tmp"))
    assert left == ["imapd-cache.4246.tmp", "mine.tmp"], left
    assert "removed a stale imapd-cache.4242.tmp" in log(env)
