"""Sieve (RFC 5228 and extensions) as imapd -d -n reports it: the same
decisions as Pigeonhole's sieve-test on corpus messages (the table is in
sieve_compare.py), errors with line and column, hostile scripts refused
quickly, include :personal, and the dry-run output itself."""
import os
import re
import subprocess
import time

import lib
import sieve_compare
from lib import make_msg


def dry(env, script, msg=None, *args, files=None):
    """imapd -d -n with script; (exit code, stdout, stderr)"""
    path = os.path.join(env.dir, "test.sieve")
    with open(path, "w") as f:
        f.write(script)
    for name, text in (files or {}).items():
        p = os.path.join(env.dir, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
    env.fix_owner()
    p = env.popen([lib.IMAPD, "-d", "-n"] + list(args),
                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE,
                  env=env.env(IMAPD_SIEVE=path, TZ="UTC"))
    out, err = p.communicate(msg if msg is not None else make_msg("hi"),
                             timeout=20)
    env.log.write(err)
    return p.returncode, out.decode(), err.decode()


# --- the reference -------------------------------------------------------

# scripts whose difference is intended: Pigeonhole has no "ereject"
# (RFC 5429 defines it; sieve-test refuses the require)
KNOWN = {"ereject"}


def test_same_decisions_as_sieve_test(env):
    """every script of the table over a sample of the corpus chosen for
    its variety; the whole corpus: python3 tests/sieve_compare.py.  The
    differences listed with their reason in sieve_compare.DIFFERENCES
    must show, and no other"""
    pairs, diffs = sieve_compare.compare(env, 0)
    n = len(sieve_compare.messages(0))
    listed = sieve_compare.DIFFERENCES
    bad = [d for d in diffs if d[0] not in KNOWN and d[:2] not in listed]
    print("    %d scripts x %d messages: %d of %d agree" % (
        len(sieve_compare.SCRIPTS), n, pairs - len(diffs), pairs))
    assert not bad, "\n".join(
        "%s %s\n ours %s\n ref  %s\n--- ref output\n%s--- ours\n%s" % d
        for d in bad[:3])
    # the known ones differ only because the reference refuses them
    assert all(d[3] == {("error",)} for d in diffs if d[0] in KNOWN), diffs
    sample = set(sieve_compare.SAMPLE)
    gone = [k for k in listed if k[1] in sample and k not in
            [d[:2] for d in diffs]]
    assert not gone, "listed differences that no longer show: %s" % gone


# --- errors ----------------------------------------------------------------

def test_errors_name_line_and_column(env):
    cases = [
        ('keep;\nfileinto "x";\n', "line 2, column 1",
         '"fileinto" needs require "fileinto"'),
        ('require "fileinto";\nif header :is "subject" { keep; }\n',
         "line 2, column 4", '"header" needs 2 arguments'),
        ('if true { keep; }\nelse keep;', "line 2, column 1",
         '"else" takes no test'),
        ('if true { keep; }\nkeep\n', "line 3, column 1",
         "expected ';' or '{' after \"keep\", found the end"),
        ('require "nosuch";', "line 1, column 9",
         'extension "nosuch" is not supported'),
        ('keep;\nrequire "fileinto";', "line 2, column 1",
         '"require" must come before'),
        ('if header :bogus "a" "b" { keep; }', "line 1, column 11",
         'takes no tag ":bogus"'),
        ('keep "x";', "line 1, column 6", '"keep" takes 0 arguments'),
        ('if true { keep; ', "line 1, column 17", "expected '}'"),
        ('discard; "unclosed', "line 1, column 10", "string not closed"),
        ('if header :contains :is "a" "b" { keep; }', "line 1, column 4",
         "more than one match type"),
        ('require "regex";\nif header :regex "a" "(" { keep; }',
         "line 2", "not a valid regex"),
        ('else { keep; }', "line 1, column 1", '"else" without "if"'),
        ('if header :comparator "i;nope" "a" "b" { keep; }',
         "line 1", 'comparator "i;nope"'),
        ('redirect text:\nno end', "line 1, column 10", "not ended"),
    ]
    for script, where, what in cases:
        rc, out, err = dry(env, script)
        assert rc == 65, (script, rc, out, err)
        assert where in err and what in err, (script, err)
        # the message would be kept
        assert out == "implicit keep\n", (script, out)


def test_hostile_scripts_fail_fast(env):
    deep = "if true {" * 5000 + "}" * 5000
    nots = "if " + "not " * 5000 + "true { keep; }"
    cases = [
        (deep, "nested too deeply"),
        (nots, "nested too deeply"),
        ('require "variables";\nset "a" "' + "x" * 300000 + '";',
         "larger than"),
        ('require "regex";\nif header :regex "subject" "(a)\\\\1" {keep;}',
         "back-references are not allowed"),
        ("[" * 100000, "expected a command"),
    ]
    for script, what in cases:
        t0 = time.monotonic()
        rc, out, err = dry(env, script)
        assert rc == 65 and what in err, (script[:60], rc, err[:300])
        assert time.monotonic() - t0 < 5, script[:60]
    # patterns that backtrack a lot still end: matching is bounded by
    # the product of the lengths, not exponential
    subject = "a" * 20000
    script = ('require ["regex", "variables"];\n'
              'if header :matches "subject" "*a*a*a*a*a*a*a*a*b" { discard; }\n'
              'if header :regex "subject" "^(a|aa)+$" { keep; }\n'
              'set "v" "${0}${0}${0}${0}${0}${0}${0}${0}";\n')
    t0 = time.monotonic()
    rc, out, err = dry(env, script, make_msg(subject))
    assert rc == 0 and out.startswith("keep"), (rc, out, err)
    assert time.monotonic() - t0 < 10


# --- behaviour ---------------------------------------------------------------

def test_dry_run_lists_every_action(env):
    script = ('require ["fileinto", "imap4flags", "copy", "mailbox", '
              '"vacation", "variables"];\n'
              'if header :matches "subject" "Re: *" { set "t" "${1}"; }\n'
              'addflag "\\\\Seen";\n'
              'fileinto :copy :create "Lists.${t}";\n'
              'redirect :copy "other@example.org";\n'
              'vacation :days 2 :subject "Away" "Back soon";\n')
    rc, out, err = dry(env, script, make_msg("Re: plans", to="me@example.com"),
                       "-f", "alice@example.org", "-a", "me@example.com")
    assert rc == 0, err
    assert out.splitlines() == [
        'fileinto :copy :create :flags ["\\\\Seen"] "Lists.plans"',
        'redirect :copy "other@example.org"',
        'vacation :seconds 172800 :subject "Away" "Back soon"',
        'implicit keep :flags ["\\\\Seen"]'], out
    # nothing was delivered
    assert os.listdir(os.path.join(env.maildir, "new")) == []
    assert not os.path.exists(env.folder_path("Lists.plans"))


def test_include_personal_scripts(env):
    script = ('require ["include", "fileinto"];\n'
              'include :personal "lists";\n'
              'include :personal :optional "missing";\n'
              'fileinto "After";\n')
    lists = ('require ["fileinto", "include"];\n'
             'if header :contains "subject" "skip" { return; }\n'
             'fileinto "FromInclude";\n')
    rc, out, err = dry(env, script, make_msg("hello"),
                       files={"sieve/lists.sieve": lists})
    assert rc == 0, err
    assert out.splitlines() == ['fileinto "FromInclude"  # no such folder: '
                                'goes to INBOX', 'fileinto "After"  # no such'
                                ' folder: goes to INBOX'], out
    rc, out, err = dry(env, script, make_msg("please skip"),
                       files={"sieve/lists.sieve": lists})
    assert out.splitlines()[0].startswith('fileinto "After"'), out
    # a missing script that is not optional is a run-time error
    rc, out, err = dry(env, 'require "include";\ninclude "nope";\n')
    assert rc == 65 and "line 2: include: no such script" in err, err


def test_mailboxexists_and_encoded_character(env):
    env.make_folder("Archive")
    script = ('require ["mailbox", "fileinto", "encoded-character"];\n'
              'if mailboxexists "Archive" { fileinto "${hex:41}rchive"; }\n'
              'if mailboxexists "Nope" { discard; }\n'
              'if header :is "subject" "${unicode:263a}" '
              '{ fileinto "Smile"; }\n')
    rc, out, err = dry(env, script, make_msg("\u263a"))
    assert rc == 0, err
    assert out.splitlines() == ['fileinto "Archive"',
                                'fileinto "Smile"  # no such folder: '
                                'goes to INBOX'], out


def test_reject_conflicts_are_errors(env):
    rc, out, err = dry(env, 'require ["reject", "fileinto"];\n'
                       'fileinto "A";\nreject "no";\n')
    assert rc == 65 and "line 3: reject conflicts" in err, (rc, err)
    assert out == "implicit keep\n"


def test_fuzz_regressions(env):
    """scripts that once broke the parser (fuzz/regress-sieve): through
    imapd -d -n, and through the fuzz target when it is built"""
    d = os.path.join(lib.ROOT, "fuzz", "regress-sieve")
    files = sorted(os.path.join(d, f) for f in os.listdir(d)
                   if not f.startswith("."))
    assert files
    for f in files:
        with open(f, encoding="latin-1") as fh:
            rc, out, err = dry(env, fh.read())
        assert rc in (0, 65), (f, rc, err)
        assert err.count("\n") <= 1, (f, err)
    fuzz = os.path.join(lib.ROOT, "fuzz", "fuzz_sieve")
    if os.path.exists(fuzz):
        r = subprocess.run([fuzz] + files, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
        assert r.returncode == 0, r.stdout[-2000:]


# --- ManageSieve (RFC 5804) ------------------------------------------------------

class Sieve:
    """a small ManageSieve client over a loopback socket"""

    def __init__(self, port):
        import socket
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.f = self.sock.makefile("rb")

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.f.flush()
        self.sock.sendall(data)

    def response(self):
        """(lines before, final OK/NO/BYE line); literals inlined"""
        lines = []
        while True:
            ln = self.f.readline()
            assert ln.endswith(b"\r\n"), (ln, lines)
            ln = ln[:-2]
            m = re.search(rb"\{(\d+)\}$", ln)
            if m:
                ln += b"\r\n" + self.f.read(int(m.group(1)))
                rest = self.f.readline()
                assert rest.endswith(b"\r\n"), rest
                ln += rest[:-2]
            if re.match(rb"(OK|NO|BYE)\b", ln):
                return lines, ln
            lines.append(ln)

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.response()

    def starttls(self, ctx):
        u, t = self.cmd("STARTTLS")
        assert t.startswith(b"OK"), t
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.f = self.sock.makefile("rb")
        return self.response()

    def login(self, user, password):
        import base64
        auth = base64.b64encode(("\0%s\0%s" % (user, password)).encode())
        return self.cmd('AUTHENTICATE "PLAIN" "%s"' % auth.decode())

    def put(self, name, text):
        data = text.encode()
        self.send('PUTSCRIPT "%s" {%d+}\r\n' % (name, len(data)))
        self.send(data + b"\r\n")
        return self.response()


def _managesieve_env(env):
    import test_tls
    pki = test_tls.setup_tls(env)
    ctx = pki.context()
    # the sessions come from a non-loopback view: no login in the clear
    lst = env.listener("-S", TCPREMOTEIP="192.0.2.7")
    return pki, ctx, lst


def test_managesieve_over_starttls(env):
    pki, ctx, lst = _managesieve_env(env)
    with lst:
        c = Sieve(lst.port)
        caps, t = c.response()
        assert t.startswith(b"OK"), t
        assert b'"STARTTLS"' in caps and b'"SASL" ""' in caps, caps
        assert any(x.startswith(b'"SIEVE" "fileinto') for x in caps), caps
        # no password before TLS
        u, t = c.login(env.user, lib.PASSWORD)
        assert t.startswith(b"NO (ENCRYPT-NEEDED)"), t
        caps, t = c.starttls(ctx)
        assert b'"SASL" "PLAIN"' in caps and b'"STARTTLS"' not in caps, caps
        u, t = c.login(env.user, lib.PASSWORD)
        assert t.startswith(b"OK"), t
        good = 'require "fileinto";\nif header :contains "subject" "x" ' \
               '{ fileinto "X"; }\n'
        u, t = c.put("main", good)
        assert t.startswith(b"OK"), t
        # uploads are checked: the error names line and column
        u, t = c.put("broken", 'if true { fileinto "x"; }')
        assert t.startswith(b"NO") and b"line 1, column 11" in t, t
        data = b"keep;"
        c.send("CHECKSCRIPT {%d+}\r\n" % len(data))
        c.send(data + b"\r\n")
        u, t = c.response()
        assert t.startswith(b"OK"), t
        u, t = c.cmd('HAVESPACE "main" 99999999')
        assert t.startswith(b"NO (QUOTA/MAXSIZE)"), t
        u, t = c.cmd('SETACTIVE "main"')
        assert t.startswith(b"OK"), t
        u, t = c.cmd("LISTSCRIPTS")
        assert u == [b'"main" ACTIVE'], u
        u, t = c.cmd('GETSCRIPT "main"')
        assert u == [("{%d}\r\n" % len(good)).encode() + good.encode()], u
        u, t = c.cmd('DELETESCRIPT "main"')
        assert t.startswith(b"NO (ACTIVE)"), t
        u, t = c.cmd('RENAMESCRIPT "main" "filters"')
        assert t.startswith(b"OK"), t
        u, t = c.cmd("LISTSCRIPTS")
        assert u == [b'"filters" ACTIVE'], u
        u, t = c.cmd('GETSCRIPT "../../etc/passwd"')
        assert t.startswith(b"NO"), t
        u, t = c.cmd("LOGOUT")
        assert t.startswith(b"OK"), t
    # the active script is the one delivery runs
    link = os.path.join(env.dir, ".dovecot.sieve")
    assert os.path.islink(link)
    assert os.readlink(link).endswith("/sieve/filters.sieve")
    env.make_folder("X")
    p = env.popen([lib.IMAPD, "-d"], stdin=subprocess.PIPE,
                  env=env.env(IMAPD_SIEVE=link))
    p.communicate(make_msg("x marks"), timeout=20)
    assert p.returncode == 0
    assert len(os.listdir(os.path.join(env.folder_path("X"), "new"))) == 1


def test_managesieve_with_sieve_connect(env):
    pki, ctx, lst = _managesieve_env(env)
    local = os.path.join(env.dir, "local.sieve")
    with open(local, "w") as f:
        f.write('require "fileinto";\nfileinto "Archive";\n')
    pw = os.path.join(env.dir, "pw")
    with open(pw, "w") as f:
        f.write(lib.PASSWORD + "\n")
    with lst:
        base = ["sieve-connect", "--server", "localhost", "--port",
                str(lst.port), "--user", env.user, "--tlscafile", pki.ca,
                "--noclearauth"]

        def run(*args):
            with open(pw) as f:
                r = subprocess.run(base + ["--passwordfd", str(f.fileno())] +
                                   list(args), pass_fds=(f.fileno(),),
                                   stdin=subprocess.DEVNULL,
                                   capture_output=True, timeout=30)
            return r
        r = run("--localsieve", local, "--remotesieve", "arch", "--upload")
        assert r.returncode == 0, r.stderr
        r = run("--remotesieve", "arch", "--activate")
        assert r.returncode == 0, r.stderr
        r = run("--list")
        assert r.returncode == 0 and "arch" in r.stdout.decode(), r
        assert "ACTIVE" in r.stdout.decode() or "<-" in r.stdout.decode(), r
        bad = os.path.join(env.dir, "bad.sieve")
        with open(bad, "w") as f:
            f.write("fileinto \"x\";\n")
        r = run("--localsieve", bad, "--remotesieve", "bad", "--upload")
        assert r.returncode != 0 and b"fileinto" in r.stderr + r.stdout, r


# --- body (RFC 5173) and include (RFC 6609) against sieve-test ----------------

BODY_MSG = b"""From: a@example.org
To: me@example.com
Subject: body test
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XX"

This is the prologue.
--XX
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

caf=E9 unsubscribe=20here
--XX
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

aGlkZGVuIHBheWxvYWQ=
--XX
Content-Type: message/rfc822

Subject: inner subject
From: b@example.org

inner body text
--XX--
The epilogue.
"""


def both(env, script, msg, personal=None, glob=None):
    """the decisions of imapd -d -n and of sieve-test for one script and
    message, with personal (~/sieve) and global scripts to include"""
    sdir = os.path.join(env.dir, "sieve")
    gdir = os.path.join(env.dir, "global")
    for d, files in ((sdir, personal or {}), (gdir, glob or {})):
        os.makedirs(d, exist_ok=True)
        for name, text in files.items():
            with open(os.path.join(d, name + ".sieve"), "w") as f:
                f.write(text)
    path = os.path.join(env.dir, "main.sieve")
    mpath = os.path.join(env.dir, "msg.eml")
    with open(path, "w") as f:
        f.write(script)
    with open(mpath, "wb") as f:
        f.write(msg)
    env.fix_owner()
    e = env.env(TZ="UTC", IMAPD_SIEVE=path, IMAPD_SIEVE_DIR=sdir,
                IMAPD_SIEVE_GLOBAL=gdir)
    p = env.popen([lib.IMAPD, "-d", "-n"], stdin=subprocess.PIPE,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
    out, err = p.communicate(msg, timeout=20)
    ours = sieve_compare.parse_ours(out.decode(), p.returncode)
    p = env.popen(["sieve-test", "-o", "plugin/sieve_global=" + gdir,
                   "-o", "plugin/sieve=file:" + sdir, path, mpath],
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
    rout, rerr = p.communicate(timeout=20)
    ref = sieve_compare.parse_reference(rout.decode(), rerr.decode())
    return ours, ref, out.decode() + err.decode()


def test_body_transforms_read_decoded_parts(env):
    """:text and :content see the parts decoded (quoted-printable and
    base64 undone, Latin-1 as UTF-8), a multipart its prologue and
    epilogue, a message/rfc822 the header it holds; :raw the body as
    sent: each test as sieve-test decides it"""
    tests = [
        ('body :contains "caf\u00e9"', True),
        ('body :contains "caf=E9"', False),
        ('body :raw :contains "caf=E9"', True),
        ('body :text :contains "hidden"', False),
        ('body :content "application" :contains "hidden payload"', True),
        ('body :content "" :is "hidden payload"', True),
        ('body :content "multipart" :contains "prologue"', True),
        ('body :content "multipart" :contains "epilogue"', True),
        ('body :content "message/rfc822" :contains "inner subject"', True),
        ('body :content "message" :contains "inner body"', False),
        ('body :content "text" :contains "inner body"', True),
        ('body :content "text/plain" :matches "caf* here*"', True),
    ]
    for test, want in tests:
        script = ('require ["body", "fileinto"];\nif %s { fileinto "Y"; }\n'
                  % test)
        ours, ref, log = both(env, script, BODY_MSG)
        assert ours == ref, (test, ours, ref, log)
        assert (("store", "Y", frozenset()) in ours) == want, (test, ours)


def test_include_global_once_and_loops(env):
    glob = {"spam": 'require ["include", "variables"];\nglobal "dest";\n'
            'if header :contains "subject" "hi" { set "dest" "Spam"; }\n'
            'set "global.count" "${global.count}1";\n'}
    personal = {
        "once": 'require ["include", "variables"];\n'
                'set "global.n" "${global.n}o";\n'
                'include :personal :once "once";\n',
        "loop": 'require "include";\ninclude :personal "loop";\n'}
    script = ('require ["include", "variables", "fileinto"];\n'
              'global "dest";\nset "dest" "Default";\n'
              'include :global "spam";\ninclude :global :once "spam";\n'
              'include :global "spam";\n'
              'include :personal :optional "missing";\n'
              'include :personal "once";\ninclude :personal "once";\n'
              'fileinto "${dest}.${global.count}.${global.n}";\n')
    ours, ref, log = both(env, script, make_msg("hi there"), personal, glob)
    assert ours == ref == {("store", "Spam.11.oo", frozenset())}, (
        ours, ref, log)
    # a variable not declared global stays the script's own
    local = script.replace('global "dest";\nset', 'set')
    ours, ref, log = both(env, local, make_msg("hi there"), personal, glob)
    assert ours == ref == {("store", "Default.11.oo", frozenset())}, (
        ours, ref, log)
    # a script that includes itself is an error (the message is kept)
    loop = 'require "include";\ninclude :personal "loop";\n'
    ours, ref, log = both(env, loop, make_msg("x"), personal, glob)
    assert ours == ref == {("error",)}, (ours, ref, log)
    assert "includes itself" in log, log


def test_body_of_many_parts_is_bounded(env):
    """a message of thousands of parts: body tests read at most
    SIEVE_BODY_PARTS of them and end quickly"""
    parts = "".join("--b\nContent-Type: text/plain\n\npart %d\n" % i
                    for i in range(1000))
    msg = ("Subject: many\nContent-Type: multipart/mixed; boundary=b\n\n" +
           parts + "--b--\n").encode()
    script = ('require ["body", "fileinto"];\n'
              'if body :contains "part 3" { fileinto "Early"; }\n'
              'if body :contains "part 999" { fileinto "Late"; }\n')
    t0 = time.monotonic()
    rc, out, err = dry(env, script, msg)
    assert rc == 0, err
    assert out.startswith('fileinto "Early"') and "Late" not in out, out
    assert time.monotonic() - t0 < 10
