"""Dovecot (Debian package dovecot-imapd) as the reference server for the
extension tests: the same commands against a copy of the same Maildir, so
that imapd's answers can be compared with Dovecot's."""
import os
import shutil
import subprocess

import lib

DOVECOT = "/usr/lib/dovecot/imap"


def copy_maildir(env, name="dovecot"):
    """a copy of env's Maildir for Dovecot, keeping the file times"""
    if not os.path.exists(DOVECOT):
        raise AssertionError("dovecot-imapd is not installed (tests/deps.sh)")
    home = os.path.join(env.dir, name)
    dst = os.path.join(home, "Maildir")
    shutil.copytree(env.maildir, dst, symlinks=True,
                    ignore=shutil.ignore_patterns("imapd-*"))
    env.fix_owner()
    return dst


def run(env, maildir, commands, timeout=30):
    """run the commands (without tags, each a str or bytes that already
    holds its literals, sent as LITERAL+) one after the other in one
    preauthenticated Dovecot session; returns a list of (untagged lines,
    tagged line), one per command, lines as bytes without CRLF, with
    literals inlined as lib.Session.line does.  One at a time: Dovecot
    runs pipelined commands side by side and mixes their answers."""
    environ = {"USER": env.user, "HOME": os.path.dirname(maildir),
               "PATH": "/usr/bin:/bin"}
    p = env.popen([DOVECOT, "-o", "mail_location=maildir:" + maildir],
                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                  stderr=subprocess.DEVNULL, env=environ)
    s = lib.Session.__new__(lib.Session)
    s.p, s.buf, s.ntag = p, b"", 0
    s.line(timeout)
    answers = []
    for i, c in enumerate(commands):
        if isinstance(c, str):
            c = c.encode()
        tag = "d%03d" % i
        s.send(tag.encode() + b" " + c + b"\r\n")
        answers.append(s.collect(tag))
    s.send(b"zz LOGOUT\r\n")
    s.collect("zz")
    p.wait(timeout=timeout)
    return answers


def imapd(session, commands):
    """the same commands through an imapd lib.Session"""
    return [session.cmd(c) for c in commands]


def status(tagged):
    """OK, NO or BAD of a tagged line"""
    return tagged.split()[1].decode()
