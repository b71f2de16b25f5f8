"""Dovecot (Debian package dovecot-imapd) as the reference server for the
extension tests: the same commands against a copy of the same Maildir, so
that imapd's answers can be compared with Dovecot's."""
import atexit
import os
import shutil
import tempfile
import types

import lib


def copy_maildir(env, name="dovecot"):
    """a copy of env's Maildir for Dovecot, keeping the file times"""
    if not os.path.exists(lib.DOVECOT):
        raise AssertionError("dovecot-imapd is not installed (tests/deps.sh)")
    home = os.path.join(env.dir, name)
    dst = os.path.join(home, "Maildir")
    shutil.copytree(env.maildir, dst, symlinks=True,
                    ignore=shutil.ignore_patterns("imapd-*"))
    env.fix_owner()
    return dst


def deliver(env, n, data, flags="", mtime=None, folder="INBOX"):
    """message number n into cur/ with a file name that sorts by n, so
    that imapd and Dovecot give the same UIDs in the same order"""
    if isinstance(data, str):
        data = data.encode()
    path = env.folder_path(folder)
    if not os.path.isdir(os.path.join(path, "cur")):
        env.make_folder(folder)
    name = "%010d.M%06dP1.reftest:2,%s" % (1700000000 + n, n,
                                            "".join(sorted(flags)))
    dst = os.path.join(path, "cur", name)
    with open(dst, "wb") as f:
        f.write(data)
    if mtime is not None:
        os.utime(dst, (mtime, mtime))
    if os.getuid() == 0:
        os.chown(dst, env.uid, env.gid)
    return dst


def run(env, maildir, commands, timeout=30, options=()):
    """run the commands (without tags, each a str or bytes that already
    holds its literals, sent as LITERAL+) one after the other in one
    Dovecot session (lib.dovecot_session); returns a list of (untagged
    lines, tagged line), one per command, lines as bytes without CRLF,
    with literals inlined as lib.Session.line does; options are Dovecot
    settings ("name=value")"""
    s = lib.dovecot_session(env, maildir, options)
    answers = [s.cmd(c, tag="d%03d" % i) for i, c in enumerate(commands)]
    s.cmd("LOGOUT", tag="zz")
    s.p.wait(timeout=timeout)
    return answers


def imapd(session, commands):
    """the same commands through an imapd lib.Session"""
    return [session.cmd(c) for c in commands]


def status(tagged):
    """OK, NO or BAD of a tagged line"""
    return tagged.split()[1].decode()


def esearch_items(line):
    """{NAME: value} of an untagged ESEARCH line, without the TAG; UID
    given as {"UID": True}"""
    toks = lib.parse_imap(line)
    assert toks[:2] == ["*", "ESEARCH"], line
    toks = toks[2:]
    if toks and isinstance(toks[0], list):
        toks = toks[1:]
    out = {}
    if toks and toks[0].upper() == "UID":
        out["UID"] = True
        toks = toks[1:]
    for k, v in zip(toks[0::2], toks[1::2]):
        out[k.upper()] = v
    return out


def session_of(env, binary):
    """a preauthenticated lib.Session with another imapd binary"""
    old = lib.IMAPD
    lib.IMAPD = binary
    try:
        s = lib.Session(env, ["-p"], env.env())
    finally:
        lib.IMAPD = old
    s.greeting()
    return s


# the config.h the extension tests need beyond the default, built once
# per run: QUOTA limits to pass, and INPROGRESS reports every millisecond
CONFIGURED = [
    (r"#define QUOTA_STORAGE_KB\s+0", "#define QUOTA_STORAGE_KB 8"),
    (r"#define QUOTA_MESSAGES\s+0", "#define QUOTA_MESSAGES 4"),
    (r"#define INPROGRESS_MS\s+\d+", "#define INPROGRESS_MS 1"),
]
_configured = {}


def configured_imapd():
    """the path of an imapd built with CONFIGURED (once per run)"""
    path = _configured.get("bin")
    if path and os.path.exists(path):
        return path
    holder = tempfile.mkdtemp(prefix="imapd-ext-build-")
    os.chmod(holder, 0o755)
    atexit.register(shutil.rmtree, holder, True)
    path = lib.build_with_config(types.SimpleNamespace(dir=holder), "build",
                                 CONFIGURED)
    _configured["bin"] = path
    return path
