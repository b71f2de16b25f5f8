"""Real clients against the real imapd: python imaplib over a pipe (as
IMAP4_stream / an ssh tunnel would), curl over loopback TCP (one imapd per
connection, as tcpserver starts it), and mbsync syncing a Maildir++ tree
both ways."""
import imaplib
import os
import re
import shutil
import subprocess
import time

from lib import (PASSWORD, Skip, crlf, fetches, item, list_entries, make_msg,
                 select_info, status_items)


def need(tool):
    path = shutil.which(tool)
    if not path:
        raise Skip("%s not installed" % tool)
    return path


# --- python imaplib ---------------------------------------------------------

def test_imaplib_session(env):
    env.deliver(make_msg("hello one", "first body\n"), flags="")
    env.deliver(make_msg("hello two", "second body\n"), flags="S")
    env.make_folder("Archive")
    m = imaplib.IMAP4_stream(env.stream_command())
    try:
        assert "IMAP4REV1" in m.capabilities and "UIDPLUS" in m.capabilities
        typ, data = m.login(env.user, PASSWORD)
        assert typ == "OK", data
        typ, data = m.list()
        assert typ == "OK"
        names = sorted(re.search(rb'"\." "?([^"]*)"?$', x).group(1)
                       for x in data)
        assert names == [b"Archive", b"INBOX"], data
        typ, data = m.select("INBOX")
        assert typ == "OK" and data == [b"2"], data
        typ, data = m.search(None, "SUBJECT", '"hello two"')
        assert typ == "OK" and len(data[0].split()) == 1, data
        typ, data = m.search(None, "UNSEEN")
        unseen = data[0].split()
        assert len(unseen) == 1, data
        n = unseen[0].decode()
        typ, data = m.fetch(n, "(RFC822)")
        assert typ == "OK" and b"first body\r\n" in data[0][1], data
        typ, data = m.fetch(n, "(FLAGS)")
        assert b"\\Seen" in data[0], data
        typ, data = m.store(n, "+FLAGS", "(\\Flagged)")
        assert typ == "OK" and b"\\Flagged" in data[0], data
        typ, data = m.copy(n, "Archive")
        assert typ == "OK", data
        typ, data = m.uid("SEARCH", None, "FLAGGED")
        assert typ == "OK" and len(data[0].split()) == 1, data
        uid = data[0].decode()
        typ, data = m.uid("FETCH", uid, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK" and b"Subject: hello one" in data[0][1], data
        typ, data = m.store(n, "+FLAGS", "(\\Deleted)")
        typ, data = m.expunge()
        assert typ == "OK" and data == [n.encode()], data
        msg = crlf(make_msg("appended by imaplib", "x\n"))
        typ, data = m.append("Archive", "(\\Seen)",
                             imaplib.Time2Internaldate(time.time()), msg)
        assert typ == "OK" and b"APPENDUID" in data[0], data
        typ, data = m.status("Archive", "(MESSAGES UNSEEN)")
        assert typ == "OK" and b"MESSAGES 2" in data[0] and \
            b"UNSEEN 0" in data[0], data
        typ, data = m.select("Archive", readonly=True)
        assert typ == "OK" and data == [b"2"], data
        typ, data = m.fetch("1:*", "(UID FLAGS RFC822.SIZE)")
        assert typ == "OK" and len(data) == 2, data
        m.close()
        typ, data = m.logout()
        assert typ == "BYE", (typ, data)
    finally:
        try:
            m.shutdown()
        except Exception:
            pass


def test_imaplib_uid_commands(env):
    m = imaplib.IMAP4_stream(env.stream_command())
    m.login(env.user, PASSWORD)
    m.create("Dest")
    for i in range(5):
        m.append("INBOX", None, None, crlf(make_msg("n%d" % i)))
    m.select("INBOX")
    typ, data = m.uid("SEARCH", None, "ALL")
    uids = data[0].split()
    assert len(uids) == 5, data
    typ, data = m.uid("COPY", b",".join(uids[1:3]).decode(), "Dest")
    assert typ == "OK", data
    typ, data = m.uid("STORE", uids[0].decode(), "+FLAGS", "(\\Deleted)")
    assert typ == "OK", data
    typ, data = m.uid("EXPUNGE", uids[0].decode())
    assert typ == "OK", data
    typ, data = m.uid("SEARCH", None, "ALL")
    assert data[0].split() == uids[1:], data
    typ, data = m.status("Dest", "(MESSAGES)")
    assert b"MESSAGES 2" in data[0], data
    m.logout()


# --- curl -------------------------------------------------------------------

def curl(env, url, *args, timeout=30):
    p = subprocess.run([need("curl"), "-s", "-S", "--max-time", "20",
                        "-u", "%s:%s" % (env.user, PASSWORD)] + list(args)
                       + [url], capture_output=True, timeout=timeout)
    assert p.returncode == 0, (url, args, p.returncode, p.stderr)
    return p.stdout


def test_curl(env):
    need("curl")
    first = make_msg("curl one", "curl body\n")
    env.deliver(first, flags="S")
    env.deliver(make_msg("curl two", "second\n"), flags="")
    env.make_folder("Archive")
    s = env.session()
    s.ok("SELECT INBOX")
    d = fetches(s.ok("FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    uid1 = [int(v["UID"]) for v in d.values()
            if b"curl one" in item(v, "BODY[HEADER")][0]
    s.logout()
    with env.listener() as L:
        base = "imap://127.0.0.1:%d/" % L.port
        out = curl(env, base + "INBOX;UID=%d" % uid1)
        assert out == crlf(first), out
        out = curl(env, base + "INBOX;UID=%d;SECTION=TEXT" % uid1)
        assert out == b"curl body\r\n", out
        out = curl(env, base + "INBOX;UID=%d" % uid1,
                   "--login-options", "AUTH=PLAIN")
        assert out == crlf(first), out
        out = curl(env, base)
        names = sorted(n for _, _, n in list_entries(out.splitlines()))
        assert names == ["Archive", "INBOX"], out
        out = curl(env, base + "INBOX?SUBJECT%20%22curl%20two%22")
        assert re.match(rb"\* SEARCH \d+\r?\n$", out), out
        out = curl(env, base, "-X", "STATUS INBOX (MESSAGES)")
        assert b"MESSAGES 2" in out, out
        upload = os.path.join(env.dir, "upload.eml")
        new = make_msg("uploaded by curl", "up\n", eol="\r\n")
        with open(upload, "wb") as f:
            f.write(new)
        curl(env, base + "Archive", "-T", upload)
        out = curl(env, base + "Archive;UID=1")
        assert out == new, out
    s = env.session()
    u = s.ok("STATUS Archive (MESSAGES)")
    assert status_items(u)["MESSAGES"] == 1


def test_curl_wrong_password(env):
    need("curl")
    with env.listener() as L:
        t0 = time.time()
        p = subprocess.run(["curl", "-s", "--max-time", "20", "-u",
                            "%s:wrong" % env.user,
                            "imap://127.0.0.1:%d/INBOX;UID=1" % L.port],
                           capture_output=True, timeout=30)
        assert p.returncode == 67, p  # CURLE_LOGIN_DENIED
        assert time.time() - t0 >= 1.5


# --- mbsync -----------------------------------------------------------------

def mbsync_config(env, local, tunnel=None, port=None):
    path = os.path.join(env.dir, "mbsyncrc")
    if tunnel:
        acct = 'Tunnel "%s"\n' % tunnel.replace("\\", "\\\\").replace(
            '"', '\\"')
    else:
        acct = "Host 127.0.0.1\nPort %d\nSSLType None\n" % port
    with open(path, "w") as f:
        f.write("IMAPAccount remote\n" + acct +
                "User %s\nPass \"%s\"\nAuthMechs LOGIN\nTimeout 20\n\n"
                "IMAPStore remote\nAccount remote\n\n"
                "MaildirStore local\nInbox %s\nSubFolders Maildir++\n\n"
                "Channel sync\nFar :remote:\nNear :local:\nPatterns *\n"
                "Create Both\nExpunge Both\nSyncState *\n"
                % (env.user, PASSWORD, local))
    return path


def mbsync(env, conf, *args):
    p = subprocess.run([need("mbsync"), "-c", conf] + list(args) + ["-a"],
                       capture_output=True, timeout=120,
                       env=dict(os.environ, HOME=env.dir))
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert b"rror" not in p.stderr, p.stderr
    return p.stdout + p.stderr


def local_box(root, folder):
    """{subject: (path, flag letters)} of a local Maildir++ folder"""
    d = root if folder == "INBOX" else os.path.join(root, "." + folder)
    out = {}
    for sub in ("new", "cur"):
        for f in os.listdir(os.path.join(d, sub)):
            p = os.path.join(d, sub, f)
            with open(p, "rb") as fh:
                m = re.search(rb"^Subject: (.*?)\r?$", fh.read(), re.M)
            info = f.split(":2,")[1] if ":2," in f else ""
            out[m.group(1).decode()] = (p, info)
    return out


def server_state(env, folders):
    """{folder: (uidnext, {uid: (subject, flags)})} as imapd reports it"""
    s = env.session()
    out = {}
    for f in folders:
        info = select_info(s.ok('EXAMINE "%s"' % f))
        state = {}
        if info["exists"]:
            d = fetches(s.ok("FETCH 1:* (UID FLAGS "
                             "BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
            for v in d.values():
                subj = item(v, "BODY[HEADER").strip().decode()[9:]
                fl = set(str(x) for x in v["FLAGS"]) - {"\\Recent"}
                state[int(v["UID"])] = (subj, frozenset(fl))
        out[f] = (info["uidnext"], state)
    s.logout()
    return out


def local_listing(root):
    out = []
    for d, dirs, files in os.walk(root):
        out += [os.path.relpath(os.path.join(d, f), root) for f in files
                if not f.startswith(".mbsyncstate")]
    return sorted(out)


def by_subject(state):
    return {subj: fl for subj, fl in state[1].values()}


def two_way_sync(env, conf, local):
    env.deliver(make_msg("s1"), flags="")
    env.deliver(make_msg("s2"), flags="")
    env.deliver(make_msg("s3"), flags="S")
    env.deliver(make_msg("a1"), "Archive", flags="S")
    env.deliver(make_msg("a2"), "Archive", flags="FS")
    env.deliver(make_msg("deep"), "Archive.2024", flags="")
    # a folder that exists only on the laptop
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(local, ".Local", sub))
        os.makedirs(os.path.join(local, sub), exist_ok=True)
    with open(os.path.join(local, ".Local", "cur", "1.laptop:2,S"),
              "wb") as f:
        f.write(make_msg("laptop only"))
    folders = ["INBOX", "Archive", "Archive.2024", "Local"]

    mbsync(env, conf)
    assert sorted(local_box(local, "INBOX")) == ["s1", "s2", "s3"]
    assert sorted(local_box(local, "Archive")) == ["a1", "a2"]
    assert local_box(local, "Archive")["a2"][1] == "FS"
    assert sorted(local_box(local, "Archive.2024")) == ["deep"]
    srv = server_state(env, folders)
    assert by_subject(srv["Local"]) == {"laptop only":
                                        frozenset({"\\Seen"})}, srv

    # flags change on both sides, the server expunges one, the laptop
    # files a new message
    p, info = local_box(local, "INBOX")["s1"]
    os.rename(p, p.split(":2,")[0].replace("/new/", "/cur/") + ":2,F")
    with open(os.path.join(local, ".Archive", "new", "2.laptop"), "wb") as f:
        f.write(make_msg("filed on laptop"))
    s = env.session()
    s.ok("SELECT INBOX")
    d = fetches(s.ok("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    seq = {item(v, "BODY[HEADER").strip().decode()[9:]: n
           for n, v in d.items()}
    s.ok("STORE %d +FLAGS (\\Seen \\Answered)" % seq["s2"])
    s.ok("STORE %d +FLAGS (\\Deleted)" % seq["s3"])
    s.ok("EXPUNGE")
    s.logout()
    time.sleep(1.1)    # mbsync ignores Maildir changes of the last second

    mbsync(env, conf)
    srv = server_state(env, folders)
    assert by_subject(srv["INBOX"]) == {
        "s1": frozenset({"\\Flagged"}),
        "s2": frozenset({"\\Seen", "\\Answered"})}, srv["INBOX"]
    assert set(by_subject(srv["Archive"])) == {"a1", "a2",
                                               "filed on laptop"}, srv
    loc = local_box(local, "INBOX")
    assert sorted(loc) == ["s1", "s2"], loc
    assert loc["s1"][1] == "F" and loc["s2"][1] == "RS", loc

    # nothing changed: a resync moves nothing either way
    before_local = local_listing(local)
    time.sleep(1.1)
    mbsync(env, conf)
    assert server_state(env, folders) == srv
    assert local_listing(local) == before_local


def test_mbsync_tunnel(env):
    need("mbsync")
    local = os.path.join(env.dir, "laptop")
    conf = mbsync_config(env, local, tunnel=env.stream_command())
    two_way_sync(env, conf, local)


def test_mbsync_tcp(env):
    need("mbsync")
    local = os.path.join(env.dir, "laptop")
    with env.listener() as L:
        conf = mbsync_config(env, local, port=L.port)
        two_way_sync(env, conf, local)


def test_list_after_mbsync_create(env):
    """folders mbsync created show up with the right hierarchy"""
    need("mbsync")
    local = os.path.join(env.dir, "laptop")
    for f in (".A", ".A.B", ".C"):
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(local, f, sub), exist_ok=True)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(local, sub), exist_ok=True)
    conf = mbsync_config(env, local, tunnel=env.stream_command())
    mbsync(env, conf)
    s = env.session()
    e = {n: a for a, _, n in list_entries(s.ok('LIST "" "*"'))}
    assert sorted(e) == ["A", "A.B", "C", "INBOX"], e
    assert "\\HASCHILDREN" in e["A"] and "\\HASNOCHILDREN" in e["C"], e
    assert os.path.isdir(os.path.join(env.maildir, ".A.B", "cur"))


def test_compress_sends_no_empty_blocks(env):
    """mbsync 1.4 stops with "IMAP error: empty response" when a read of
    the compressed stream inflates to nothing: after COMPRESS the server
    must not send a flush that carries no data"""
    import zlib
    s = env.session()
    u, t = s.cmd("COMPRESS DEFLATE")
    assert re.match(rb"\S+ OK", t), t
    early = s.buf
    if not early and s.pending(0.5):
        early = os.read(s.p.stdout.fileno(), 100)
    assert early == b"", "output after COMPRESS with no command: %r" % early
    comp = zlib.compressobj(wbits=-15)
    inf = zlib.decompressobj(wbits=-15)
    s.send(comp.compress(b"z1 NOOP\r\n") + comp.flush(zlib.Z_SYNC_FLUSH))
    out = b""
    for _ in range(50):
        if b"z1 " in out:
            break
        assert s.pending(5), out
        chunk = os.read(s.p.stdout.fileno(), 65536)
        assert chunk, "closed"
        data = inf.decompress(chunk)
        assert data, "a compressed write that inflates to nothing: %r" % chunk
        out += data
    assert re.search(rb"(^|\n)z1 OK", out), out
