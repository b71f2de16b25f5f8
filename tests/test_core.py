"""The IMAP4rev1 core (RFC 3501) and the small extensions every command
handler relies on: UIDPLUS, ID, ENABLE, UNSELECT, NAMESPACE, SASL-IR,
LITERAL+, response codes (RFC 5530).  Every test drives the real imapd over
pipes and checks tagged status, response codes and untagged data."""
import base64
import calendar
import crypt
import os
import re
import subprocess
import time

from lib import (IMAPD, uid_set, PASSWORD, ROOT, Skip, append, appenduid, caps_of,
                 cmd_lit, crlf, fetch_items, fetches, item, list_entries, lit,
                 make_hash, make_msg, maildir_files, parse_imap, quote,
                 read_until_closed, search_result, select_info, status_items,
                 untagged, is_ok, is_no, is_bad, flagset)

REQUIRED_CAPS = {"IMAP4REV1", "LITERAL+", "SASL-IR", "ID", "ENABLE",
                 "NAMESPACE", "UIDPLUS", "UNSELECT", "CHILDREN", "AUTH=PLAIN"}
SYSTEM_FLAGS = {"\\ANSWERED", "\\FLAGGED", "\\DELETED", "\\SEEN", "\\DRAFT"}
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
          "Oct", "Nov", "Dec"]


# --- helpers ------------------------------------------------------------

def config_value(name):
    """a #define from config.h (config.def.h when not generated yet)"""
    for f in ("config.h", "config.def.h"):
        path = os.path.join(ROOT, f)
        if not os.path.exists(path):
            continue
        with open(path) as fh:
            for ln in fh:
                m = re.match(r"#define\s+%s\s+(.*?)\s*(/\*.*)?$" % name, ln)
                if m:
                    expr = re.sub(r"(\d+)U?L*L*", r"\1", m.group(1))
                    return int(eval(expr, {}))
    raise AssertionError("no %s in config.h" % name)


def imap_date(text):
    """epoch seconds of an IMAP date-time "dd-Mon-yyyy hh:mm:ss +zzzz" """
    if isinstance(text, bytes):
        text = text.decode()
    m = re.match(r"^([ \d]\d)-([A-Z][a-z]{2})-(\d{4}) (\d\d):(\d\d):(\d\d) "
                 r"([+-])(\d\d)(\d\d)$", text)
    assert m, "not an IMAP date-time: %r" % text
    d, mon, y, hh, mm, ss, sign, zh, zm = m.groups()
    t = calendar.timegm((int(y), MONTHS.index(mon) + 1, int(d), int(hh),
                         int(mm), int(ss)))
    off = (int(zh) * 60 + int(zm)) * 60
    return t - off if sign == "+" else t + off


def apply_expunges(seqs, lines):
    """the list after applying '* n EXPUNGE' lines in order"""
    seqs = list(seqs)
    for ln in lines:
        m = re.match(rb"\* (\d+) EXPUNGE$", ln)
        if m:
            n = int(m.group(1))
            assert 1 <= n <= len(seqs), (n, seqs, lines)
            del seqs[n - 1]
    return seqs


def expunged(lines):
    return [x for x in lines if re.match(rb"\* \d+ EXPUNGE$", x)]


def login_line(env, password=PASSWORD):
    return "LOGIN %s %s" % (env.user, quote(password))


def add(s, mailbox, msgs):
    """APPEND each (data, flags, date) and return the new UIDs"""
    uids = []
    for m in msgs:
        if isinstance(m, bytes):
            m = (m, None, None)
        data, fl, date = m
        u, t = append(s, mailbox, data, flags=fl, date=date)
        assert is_ok(t), (t, u)
        uids.append(appenduid(t)[1])
    return uids


def three(env):
    """a session with INBOX selected holding three appended messages:
    1 LF line ends and \\Seen, 2 CRLF, 3 larger; returns (session, msgs,
    uids)"""
    s = env.session()
    msgs = [make_msg("first", "line one\nline two\n"),
            make_msg("second", "body two\r\n", eol="\r\n"),
            make_msg("third", ("x" * 70 + "\n") * 40)]
    uids = add(s, "INBOX", [(msgs[0], ["\\Seen"], None), msgs[1], msgs[2]])
    assert uids == sorted(uids) and len(set(uids)) == 3, uids
    s.ok("SELECT INBOX")
    return s, msgs, uids


def no_plus(lines):
    assert not any(x.startswith(b"+") for x in lines), lines


# --- greeting, capabilities, login ---------------------------------------

def test_greeting_and_capability(env):
    s = env.session(login=False)
    g = s.greeting()
    assert re.match(rb"\* OK \[CAPABILITY [^\]]+\]", g), g
    c = caps_of(g)
    assert REQUIRED_CAPS <= c, REQUIRED_CAPS - c
    assert "LOGINDISABLED" not in c, c
    u = s.ok("CAPABILITY")
    lines = untagged(u, "CAPABILITY ")
    assert len(lines) == 1, u
    c2 = caps_of(lines[0])
    assert REQUIRED_CAPS <= c2, REQUIRED_CAPS - c2
    s.ok(login_line(env))
    u = s.ok("CAPABILITY")
    c3 = caps_of(untagged(u, "CAPABILITY ")[0])
    assert {"IMAP4REV1", "UIDPLUS", "UNSELECT", "NAMESPACE"} <= c3, c3
    assert s.logout() == 0


def test_commands_case_insensitive(env):
    s = env.session(login=False)
    s.greeting()
    s.ok("capability")
    s.ok("login %s %s" % (env.user, quote(PASSWORD)))
    s.ok("select inbox")
    s.ok("NoOp")
    s.ok("uid fetch 1:* flags")
    s.ok("Logout")


def test_login_wrong_state_and_logout(env):
    s = env.session(login=False)
    s.greeting()
    for c in ("SELECT INBOX", "LIST \"\" *", "CREATE Foo", "STATUS INBOX "
              "(MESSAGES)", "FETCH 1 FLAGS", "ENABLE CONDSTORE", "NAMESPACE",
              "LSUB \"\" *", "EXAMINE INBOX"):
        s.bad(c)
        s.ok("NOOP")
    s.ok(login_line(env))
    s.bad(login_line(env))
    s.ok("NOOP")
    s.bad("AUTHENTICATE PLAIN " + base64.b64encode(
        b"\0" + env.user.encode() + b"\0" + PASSWORD.encode()).decode())
    u, t = s.cmd("LOGOUT")
    assert u and u[0].startswith(b"* BYE"), u
    assert is_ok(t), t
    s.p.wait(timeout=10)
    assert s.p.returncode == 0, s.p.returncode
    assert s.p.stdout.read() == b""


def test_login_failure_delay_and_close(env):
    s = env.session(login=False)
    s.greeting()
    tries = config_value("LOGIN_TRIES")
    t0 = time.time()
    _, t = s.no(login_line(env, "wrong password"), "AUTHENTICATIONFAILED")
    assert time.time() - t0 >= 1.5, "failed login answered without delay"
    for i in range(tries - 2):
        _, t = s.no("LOGIN nosuchuser %s" % quote(PASSWORD),
                    "AUTHENTICATIONFAILED")
    # the third failure ends the connection
    s.send("a100 %s\r\n" % login_line(env, "still wrong"))
    rest = read_until_closed(s, timeout=15)
    assert any(x.startswith(b"* BYE") for x in rest), rest
    assert not any(re.match(rb"a100 OK", x) for x in rest), rest
    s.p.wait(timeout=10)


def test_login_after_failure_and_bad_args(env):
    s = env.session(login=False)
    s.greeting()
    s.no(login_line(env, PASSWORD + "x"), "AUTHENTICATIONFAILED")
    s.bad("LOGIN")
    s.bad("LOGIN %s" % env.user)
    s.bad("LOGIN %s a b" % env.user)
    s.ok(login_line(env))
    s.ok("SELECT INBOX")


def test_login_literals(env):
    s = env.session(login=False)
    s.greeting()
    u, t = cmd_lit(s, "LOGIN ", lit(env.user), " ", lit(PASSWORD))
    assert is_ok(t), (t, u)
    s.logout()
    s = env.session(login=False)
    s.greeting()
    # LITERAL+: no continuation request may be sent
    u, t = cmd_lit(s, "LOGIN ", lit(env.user, True), " ", lit(PASSWORD, True))
    assert is_ok(t), (t, u)
    no_plus(u)
    s.ok("NOOP")


def test_login_quoted_escapes(env):
    pw = 'pa"ss\\wo rd'
    with open(env.passwd, "w") as f:
        f.write(make_hash(pw) + "\n")
    env.fix_owner()
    s = env.session(login=False)
    s.greeting()
    s.no(login_line(env, PASSWORD), "AUTHENTICATIONFAILED")
    s.ok('LOGIN "%s" "pa\\"ss\\\\wo rd"' % env.user)


def test_passwd_file_labels(env):
    with open(env.passwd, "w") as f:
        f.write("phone:" + make_hash("phone secret") + "\n")
        f.write(make_hash("laptop secret") + "\n")
        f.write("\n")
    env.fix_owner()
    for pw in ("phone secret", "laptop secret"):
        s = env.session(login=False)
        s.greeting()
        s.ok(login_line(env, pw))
        s.logout()
    s = env.session(login=False)
    s.greeting()
    s.no(login_line(env, "phone"), "AUTHENTICATIONFAILED")


def test_hash_option(env):
    p = env.popen([IMAPD, "-H"], stdin=subprocess.PIPE,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(b"s3cret pass\n", timeout=30)
    assert p.returncode == 0, (p.returncode, err)
    h = out.decode().strip()
    assert "\n" not in h, out
    assert h.startswith("$y$"), "not a yescrypt hash: %r" % h
    assert crypt.crypt("s3cret pass", h) == h
    with open(env.passwd, "w") as f:
        f.write("mail:" + h + "\n")
    env.fix_owner()
    s = env.session(login=False)
    s.greeting()
    s.ok(login_line(env, "s3cret pass"))


def test_authenticate_plain(env):
    good = base64.b64encode(b"\0" + env.user.encode() + b"\0"
                            + PASSWORD.encode()).decode()
    # SASL-IR
    s = env.session(login=False)
    s.greeting()
    s.ok("AUTHENTICATE PLAIN " + good)
    s.ok("SELECT INBOX")
    s.logout()
    # with a continuation, and authzid equal to the user
    s = env.session(login=False)
    s.greeting()
    tag = s.tag()
    s.send("%s AUTHENTICATE PLAIN\r\n" % tag)
    ln = s.line()
    assert ln.startswith(b"+"), ln
    z = base64.b64encode(env.user.encode() + b"\0" + env.user.encode()
                         + b"\0" + PASSWORD.encode())
    s.send(z + b"\r\n")
    u, t = s.collect(tag)
    assert is_ok(t), (t, u)
    s.logout()
    # cancelled, wrong password, another authzid, unknown mechanism
    s = env.session(login=False)
    s.greeting()
    tag = s.tag()
    s.send("%s AUTHENTICATE PLAIN\r\n" % tag)
    assert s.line().startswith(b"+")
    s.send("*\r\n")
    u, t = s.collect(tag)
    assert is_bad(t), t
    bad = base64.b64encode(b"\0" + env.user.encode() + b"\0wrong").decode()
    s.no("AUTHENTICATE PLAIN " + bad, "AUTHENTICATIONFAILED")
    s4 = env.session(login=False)
    s4.greeting()
    s4.bad("AUTHENTICATE PLAIN !!!notbase64")
    other = base64.b64encode(b"root\0" + env.user.encode() + b"\0"
                             + PASSWORD.encode()).decode()
    s2 = env.session(login=False)
    s2.greeting()
    u, t = s2.cmd("AUTHENTICATE PLAIN " + other)
    assert is_no(t), t
    s3 = env.session(login=False)
    s3.greeting()
    u, t = s3.cmd("AUTHENTICATE X-NOSUCH-MECH")
    assert is_no(t) or is_bad(t), t
    s3.ok("NOOP")


def test_preauth(env):
    s = env.preauth()
    s.bad(login_line(env))
    u = s.ok("SELECT INBOX")
    assert select_info(u)["exists"] == 0
    s.logout()


def test_refuses_root(env):
    if os.getuid() != 0:
        raise Skip("not running as root")
    for args in ([], ["-p"]):
        p = subprocess.run([IMAPD] + args, input=b"a LOGOUT\r\n",
                           capture_output=True, env=env.env(), timeout=20)
        assert p.returncode != 0, (args, p)
        assert b"* OK" not in p.stdout and b"PREAUTH" not in p.stdout, p
        assert p.stderr.strip() or p.stdout.strip(), \
            "refused without saying why"


def test_bad_syntax(env):
    s = env.session()
    s.ok("SELECT INBOX")
    for c in ("FOOBAR", "NOOP extra", "SELECT", "CREATE", "LIST \"\"",
              "FETCH 1 (FLAGS", "STATUS INBOX", "STATUS INBOX (FOO)",
              "SELECT \"unterminated", "SEARCH", "UID", "UID FOO 1",
              "RENAME a", "COPY 1", "STORE 1 +FLAGS", "CHECK now"):
        s.bad(c)
        s.ok("NOOP")
    # a line with only a tag, and an empty line, then all is still well
    s.send("a900\r\n")
    u, t = s.collect("a900")
    assert is_bad(t), t
    s.send("\r\n")
    u = s.ok("NOOP")
    assert all(x.startswith(b"* BAD") or x.startswith(b"* OK") or
               re.match(rb"\* \d+ (EXISTS|RECENT)", x) for x in u), u


def test_too_many_bad_commands(env):
    limit = config_value("BAD_MAX")
    s = env.session()
    seen = []
    for i in range(limit + 5):
        try:
            s.send("b%d XYZZY\r\n" % i)
            while True:
                ln = s.line()
                seen.append(ln)
                if ln.startswith(b"b%d " % i) or ln.startswith(b"* BYE"):
                    break
        except EOFError:
            break
        except BrokenPipeError:
            # closed while we were writing: what it said is still to read
            seen += read_until_closed(s)
            break
    else:
        raise AssertionError("still open after %d BAD commands" % (limit + 5))
    assert any(x.startswith(b"* BYE") for x in seen), seen[-3:]
    assert sum(1 for x in seen if re.match(rb"b\d+ BAD", x)) >= limit - 1


def test_id(env):
    s = env.session(login=False)
    s.greeting()
    u = s.ok('ID ("name" "imapd-tests" "version" "1.0")')
    ids = untagged(u, "ID ")
    assert len(ids) == 1, u
    toks = parse_imap(ids[0])
    assert toks[:2] == ["*", "ID"], toks
    assert toks[2] is None or (isinstance(toks[2], list)
                               and len(toks[2]) % 2 == 0), toks
    s.ok(login_line(env))
    u = s.ok("ID NIL")
    assert len(untagged(u, "ID ")) == 1, u
    s.bad("ID")
    s.bad("ID (\"name\"")
    s.ok("NOOP")


def test_enable(env):
    s = env.session(login=False)
    s.greeting()
    s.bad("ENABLE X-NOSUCH")
    s.ok(login_line(env))
    u = s.ok("ENABLE X-NOSUCH")
    assert u == [b"* ENABLED"], u
    s.bad("ENABLE")
    s.ok("NOOP")


def test_namespace(env):
    s = env.session()
    u = s.ok("NAMESPACE")
    assert u == [b'* NAMESPACE (("" ".")) NIL NIL'], u


def test_noop_check(env):
    s = env.session()
    s.ok("NOOP")
    s.bad("CHECK")
    s.ok("SELECT INBOX")
    s.ok("CHECK")
    s.ok("NOOP")


def test_wrong_state_selected_commands(env):
    s = env.session()
    for c in ("FETCH 1 FLAGS", "STORE 1 +FLAGS (\\Seen)", "SEARCH ALL",
              "COPY 1 INBOX", "EXPUNGE", "CLOSE", "UNSELECT",
              "UID FETCH 1 FLAGS", "UID SEARCH ALL", "UID EXPUNGE 1",
              "UID STORE 1 FLAGS ()", "UID COPY 1 INBOX"):
        s.bad(c)
        s.ok("NOOP")


# --- mailboxes --------------------------------------------------------------

def test_list(env):
    for f in ("Archive", "Archive.2024", "Sent", "Entw&APw-rfe"):
        env.make_folder(f)
    s = env.session()
    u = s.ok('LIST "" ""')
    assert u == [b'* LIST (\\Noselect) "." ""'], u
    e = list_entries(s.ok('LIST "" "*"'))
    names = [n for _, _, n in e]
    assert sorted(names) == sorted(["INBOX", "Archive", "Archive.2024",
                                    "Sent", "Entw&APw-rfe"]), names
    assert len(names) == len(set(names)), names
    assert all(sep == b"." for _, sep, _ in e), e
    attrs = {n: a for a, _, n in e}
    assert "\\HASCHILDREN" in attrs["Archive"], attrs
    assert "\\HASNOCHILDREN" in attrs["Sent"], attrs
    assert "\\HASNOCHILDREN" in attrs["Archive.2024"], attrs
    assert "\\NOSELECT" not in attrs["Archive"], attrs
    assert "\\NOSELECT" not in attrs["INBOX"], attrs
    top = sorted(n for _, _, n in list_entries(s.ok('LIST "" "%"')))
    assert top == sorted(["INBOX", "Archive", "Sent", "Entw&APw-rfe"]), top
    sub = [n for _, _, n in list_entries(s.ok('LIST "" "Archive.%"'))]
    assert sub == ["Archive.2024"], sub
    sub = [n for _, _, n in list_entries(s.ok('LIST "Archive." "%"'))]
    assert sub == ["Archive.2024"], sub
    arch = sorted(n for _, _, n in list_entries(s.ok('LIST "" Arch*')))
    assert arch == ["Archive", "Archive.2024"], arch
    inbox = list_entries(s.ok('LIST "" inbox'))
    assert [n for _, _, n in inbox] == ["INBOX"], inbox
    assert s.ok('LIST "" "nothing*"') == []
    s.bad('LIST ""')


def test_list_quoting(env):
    s = env.session()
    s.ok('CREATE "with space"')
    u = s.ok('LIST "" "with*"')
    assert len(u) == 1 and u[0].endswith(b' "with space"'), u
    assert list_entries(u)[0][2] == "with space"
    assert os.path.isdir(os.path.join(env.maildir, ".with space", "cur"))
    s.ok('SELECT "with space"')
    u, t = cmd_lit(s, "STATUS ", lit("with space"), " (MESSAGES)")
    assert is_ok(t), t
    assert status_items(u)["MESSAGES"] == 0


def test_mutf7_names(env):
    s = env.session()
    s.ok('CREATE "Entw&APw-rfe"')
    assert os.path.isdir(os.path.join(env.maildir, ".Entw&APw-rfe", "cur"))
    e = list_entries(s.ok('LIST "" "Entw*"'))
    assert [n for _, _, n in e] == ["Entw&APw-rfe"], e
    s.ok('SELECT "Entw&APw-rfe"')
    # not valid modified UTF-7, and raw 8-bit: refused, nothing created
    for bad in (b'CREATE "Entw&APw"', b'CREATE "Entw\xc3\xbcrfe"',
                b'CREATE "a&-&AGE"'):
        tag = s.tag()
        s.send(tag.encode() + b" " + bad + b"\r\n")
        u, t = s.collect(tag)
        assert is_no(t) or is_bad(t), (bad, t)
    names = [n for _, _, n in list_entries(s.ok('LIST "" "*"'))]
    assert sorted(names) == ["Entw&APw-rfe", "INBOX"], names


def test_create_delete(env):
    s = env.session()
    s.ok("CREATE Work")
    d = os.path.join(env.maildir, ".Work")
    for sub in ("cur", "new", "tmp"):
        assert os.path.isdir(os.path.join(d, sub)), sub
    s.no("CREATE Work", "ALREADYEXISTS")
    s.no("CREATE INBOX")
    s.no("CREATE inbox")
    s.ok('CREATE "Foo."')
    names = [n for _, _, n in list_entries(s.ok('LIST "" "*"'))]
    assert "Foo" in names and "Foo." not in names, names
    s.ok("CREATE A.B.C")
    names = [n for _, _, n in list_entries(s.ok('LIST "" "A*"'))]
    assert {"A", "A.B", "A.B.C"} <= set(names), names
    s.ok("SELECT A.B.C")
    s.ok("UNSELECT")
    s.ok("DELETE Work")
    assert not os.path.exists(d)
    s.no("DELETE Work", "NONEXISTENT")
    s.no("DELETE INBOX")
    s.no("DELETE inbox")
    s.ok("SELECT INBOX")
    names = [n for _, _, n in list_entries(s.ok('LIST "" "*"'))]
    assert "Work" not in names and "INBOX" in names, names


def test_create_invalid_names(env):
    s = env.session()
    before = sorted(os.listdir(env.dir))
    for name in ('""', '"a..b"', '"../x"', '"a/b"', '".x"', '"/etc/x"',
                 '"~/x"', '"."', '".."', '"a.."'):
        u, t = s.cmd("CREATE " + name)
        assert is_no(t) or is_bad(t), (name, t)
        s.ok("NOOP")
    assert sorted(os.listdir(env.dir)) == before
    names = [n for _, _, n in list_entries(s.ok('LIST "" "*"'))]
    assert names == ["INBOX"], names
    dirs = [x for x in os.listdir(env.maildir) if x.startswith(".")
            and os.path.isdir(os.path.join(env.maildir, x))]
    assert dirs == [], dirs


def test_delete_with_children(env):
    s = env.session()
    s.ok("CREATE P")
    s.ok("CREATE P.Q")
    add(s, "P", [make_msg("in P")])
    add(s, "P.Q", [make_msg("in P.Q")])
    s.ok("DELETE P")
    e = {n: a for a, _, n in list_entries(s.ok('LIST "" "*"'))}
    assert "P" in e and "\\NOSELECT" in e["P"], e
    assert "P.Q" in e, e
    u, t = s.cmd("SELECT P")
    assert is_no(t), t
    s.bad("FETCH 1 FLAGS")
    u = s.ok("SELECT P.Q")
    assert select_info(u)["exists"] == 1
    s.ok("UNSELECT")
    s.no("DELETE P")
    s.ok("DELETE P.Q")
    names = [n for _, _, n in list_entries(s.ok('LIST "" "*"'))]
    assert names == ["INBOX"], names


def test_rename(env):
    s = env.session()
    s.ok("CREATE X")
    add(s, "X", [make_msg("x1"), make_msg("x2")])
    s.ok("RENAME X Y")
    names = [n for _, _, n in list_entries(s.ok('LIST "" "*"'))]
    assert "Y" in names and "X" not in names, names
    u = s.ok("SELECT Y")
    assert select_info(u)["exists"] == 2
    s.ok("UNSELECT")
    s.no("SELECT X", "NONEXISTENT")
    s.no("RENAME X Z", "NONEXISTENT")
    s.ok("CREATE Z")
    s.no("RENAME Y Z", "ALREADYEXISTS")
    s.no("RENAME Y INBOX")
    # children move along
    s.ok("CREATE P.Q")
    add(s, "P.Q", [make_msg("deep")])
    s.ok("RENAME P R")
    names = [n for _, _, n in list_entries(s.ok('LIST "" "*"'))]
    assert "R.Q" in names and "P.Q" not in names and "P" not in names, names
    u = s.ok("EXAMINE R.Q")
    assert select_info(u)["exists"] == 1


def test_rename_inbox(env):
    env.deliver(make_msg("one"), flags="S")
    env.deliver(make_msg("two"), flags="")
    env.deliver(make_msg("three"))
    s = env.session()
    s.ok("RENAME INBOX Old")
    u = s.ok("STATUS Old (MESSAGES)")
    assert status_items(u, "Old")["MESSAGES"] == 3
    u = s.ok("SELECT INBOX")
    assert select_info(u)["exists"] == 0
    u = s.ok("SELECT Old")
    assert select_info(u)["exists"] == 3
    d = fetches(s.ok("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    subjects = sorted(item(v, "BODY[HEADER").strip().decode()
                      for v in d.values())
    assert subjects == ["Subject: one", "Subject: three", "Subject: two"], \
        subjects


def test_subscribe_lsub(env):
    s = env.session()
    s.ok("CREATE A")
    s.ok("CREATE B")
    assert list_entries(s.ok('LSUB "" "*"'), "LSUB") == []
    s.ok("SUBSCRIBE A")
    s.ok("SUBSCRIBE INBOX")
    e = list_entries(s.ok('LSUB "" "*"'), "LSUB")
    assert sorted(n for _, _, n in e) == ["A", "INBOX"], e
    assert all(sep == b"." for _, sep, _ in e)
    s.logout()
    s = env.session()
    e = list_entries(s.ok('LSUB "" "*"'), "LSUB")
    assert sorted(n for _, _, n in e) == ["A", "INBOX"], e
    s.ok("UNSUBSCRIBE A")
    e = list_entries(s.ok('LSUB "" "%"'), "LSUB")
    assert [n for _, _, n in e] == ["INBOX"], e
    s.bad("SUBSCRIBE")


def test_status(env):
    env.deliver(make_msg("seen"), flags="S")
    env.deliver(make_msg("unseen"), flags="")
    env.deliver(make_msg("new one"))
    s = env.session()
    u = s.ok("STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)")
    st = status_items(u, "INBOX")
    assert set(st) == {"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY",
                       "UNSEEN"}, st
    assert st["MESSAGES"] == 3 and st["UNSEEN"] == 2, st
    assert st["RECENT"] == 1, st
    assert st["UIDVALIDITY"] > 0 and st["UIDNEXT"] > 3, st
    info = select_info(s.ok("EXAMINE INBOX"))
    assert info["uidvalidity"] == st["UIDVALIDITY"], (info, st)
    assert info["uidnext"] == st["UIDNEXT"], (info, st)
    uids = [int(v["UID"]) for v in fetches(s.ok("FETCH 1:* UID")).values()]
    assert max(uids) < st["UIDNEXT"]
    s.ok("UNSELECT")
    u = s.ok("STATUS inbox (MESSAGES)")
    assert status_items(u)["MESSAGES"] == 3
    s.no("STATUS Nope (MESSAGES)", "NONEXISTENT")
    s.bad("STATUS INBOX (MESSAGES FOO)")


# --- SELECT / EXAMINE -------------------------------------------------------

def test_select_response(env):
    env.deliver(make_msg("seen"), flags="S", mtime=1000000000)
    env.deliver(make_msg("unseen"), flags="", mtime=1000000100)
    env.deliver(make_msg("new one"), mtime=1000000200)
    s = env.session()
    u, t = s.cmd("SELECT INBOX")
    assert re.match(rb"\S+ OK \[READ-WRITE\]", t), t
    info = select_info(u)
    assert SYSTEM_FLAGS <= set(x.upper() for x in info["flags"]), info
    pf = set(x.upper() for x in info["permanentflags"])
    assert SYSTEM_FLAGS | {"\\*"} <= pf, info
    assert "\\RECENT" not in pf, info
    assert info["exists"] == 3 and info["recent"] == 1, info
    assert info["uidvalidity"] > 0 and info["uidnext"] > 3, info
    d = fetches(s.ok("FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    assert sorted(d) == [1, 2, 3], d
    first_unseen = min(n for n, v in d.items()
                       if "\\Seen" not in flagset(v["FLAGS"]))
    assert info["unseen"] == first_unseen, (info, d)
    recent = [n for n, v in d.items() if "\\Recent" in
              set(str(f) for f in v["FLAGS"])]
    assert len(recent) == 1, d
    # every untagged line is one SELECT may send
    for ln in u:
        assert re.match(rb"\* (\d+ EXISTS|\d+ RECENT|FLAGS \(|OK \[)", ln), ln
    # the message taken from new/ now lives in cur/
    assert os.listdir(os.path.join(env.maildir, "new")) == []


def test_select_all_seen_has_no_unseen(env):
    env.deliver(make_msg("a"), flags="S")
    s = env.session()
    info = select_info(s.ok("SELECT INBOX"))
    assert "unseen" not in info, info
    assert info["exists"] == 1 and info["recent"] == 0, info


def test_recent_claimed_once(env):
    env.deliver(make_msg("fresh"))
    a = env.session()
    ia = select_info(a.ok("SELECT INBOX"))
    assert ia["recent"] == 1, ia
    b = env.session()
    ib = select_info(b.ok("SELECT INBOX"))
    assert ib["recent"] == 0 and ib["exists"] == 1, ib
    fa = fetches(a.ok("FETCH 1 FLAGS"))[1]["FLAGS"]
    fb = fetches(b.ok("FETCH 1 FLAGS"))[1]["FLAGS"]
    assert "\\Recent" in fa and "\\Recent" not in fb, (fa, fb)
    assert len(os.listdir(os.path.join(env.maildir, "cur"))) == 1


def test_examine_read_only(env):
    env.deliver(make_msg("unseen"), flags="")
    env.deliver(make_msg("fresh"))
    env.deliver(make_msg("deleted"), flags="T")
    s = env.session()
    u, t = s.cmd("EXAMINE INBOX")
    assert re.match(rb"\S+ OK \[READ-ONLY\]", t), t
    info = select_info(u)
    assert info["exists"] == 3, info
    d = fetches(s.ok("FETCH 1:3 BODY[]"))
    assert all(v["BODY[]"].startswith(b"Date:") for v in d.values()), d
    d = fetches(s.ok("FETCH 1:3 FLAGS"))
    assert all("\\Seen" not in flagset(v["FLAGS"]) for v in d.values()), d
    s.no("STORE 1 +FLAGS (\\Seen)")
    # EXPUNGE in a read-only mailbox removes nothing (NO, or OK doing
    # nothing)
    u, t = s.cmd("EXPUNGE")
    assert not is_bad(t) and not [x for x in u if b"EXPUNGE" in x], (u, t)
    assert len(maildir_files(env.maildir)) == 3
    s.ok("CLOSE")
    assert len(maildir_files(env.maildir)) == 3
    # EXAMINE claimed nothing: a later SELECT still sees it recent
    s2 = env.session()
    info = select_info(s2.ok("SELECT INBOX"))
    assert info["recent"] == 1, info
    st = fetches(s2.ok("FETCH 1:* FLAGS"))
    assert all("\\Seen" not in flagset(v["FLAGS"]) for v in st.values()), st


def test_select_missing_deselects(env):
    s = env.session()
    s.no("SELECT Nope", "NONEXISTENT")
    s.bad("FETCH 1 FLAGS")
    s.no("EXAMINE Nope", "NONEXISTENT")
    s.ok("SELECT INBOX")
    s.ok("NOOP")
    s.no("SELECT Nope", "NONEXISTENT")
    s.bad("FETCH 1:* FLAGS")
    s.bad("SEARCH ALL")


# --- FETCH --------------------------------------------------------------------

def test_fetch_bodies_crlf(env):
    s, msgs, uids = three(env)
    for i, m in enumerate(msgs, 1):
        want = crlf(m)
        head, _, body = want.partition(b"\r\n\r\n")
        d = fetches(s.ok("FETCH %d (RFC822.SIZE BODY.PEEK[] BODY.PEEK[HEADER]"
                         " BODY.PEEK[TEXT])" % i))[i]
        assert d["BODY[]"] == want, (i, d["BODY[]"][:200])
        assert int(d["RFC822.SIZE"]) == len(want) == len(d["BODY[]"]), i
        assert d["BODY[HEADER]"] == head + b"\r\n\r\n", d["BODY[HEADER]"]
        assert d["BODY[TEXT]"] == body, d["BODY[TEXT]"][:100]
        d = fetches(s.ok("FETCH %d (RFC822.HEADER)" % i))[i]
        assert d["RFC822.HEADER"] == head + b"\r\n\r\n"
    # the LF-only file is stored as written and served with CRLF
    d = fetches(s.ok("FETCH 1 BODY.PEEK[]"))[1]
    assert b"\r\n" in d["BODY[]"] and b"\n" not in d["BODY[]"].replace(
        b"\r\n", b"")


def test_fetch_lf_file_and_no_final_newline(env):
    lf = make_msg("lf", "a\nb\n")
    env.deliver(lf, flags="S")
    env.deliver(b"Subject: nonl\n\nno final newline", flags="S")
    s = env.session()
    s.ok("SELECT INBOX")
    d = fetches(s.ok("FETCH 1:2 (RFC822.SIZE BODY.PEEK[] BODY.PEEK[TEXT])"))
    bodies = sorted(v["BODY[]"] for v in d.values())
    assert bodies == sorted([crlf(lf), b"Subject: nonl\r\n\r\nno final newline"])
    for v in d.values():
        assert int(v["RFC822.SIZE"]) == len(v["BODY[]"])
    texts = sorted(v["BODY[TEXT]"] for v in d.values())
    assert texts == [b"a\r\nb\r\n", b"no final newline"], texts


def test_fetch_uid_flags_internaldate(env):
    when = 1262347384  # 2010-01-01 12:03:04 UTC
    env.deliver(make_msg("dated"), flags="FS", mtime=when)
    s = env.session()
    info = select_info(s.ok("SELECT INBOX"))
    d = fetches(s.ok("FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE)"))[1]
    assert 0 < int(d["UID"]) < info["uidnext"]
    assert flagset(d["FLAGS"]) == {"\\Flagged", "\\Seen"}, d
    assert imap_date(d["INTERNALDATE"]) == when, d["INTERNALDATE"]
    # UID FETCH always carries UID
    u = s.ok("UID FETCH %s FLAGS" % d["UID"])
    n, d2 = fetch_items(untagged(u, "1 FETCH")[0])
    assert n == 1 and d2["UID"] == d["UID"], u


def test_fetch_partial(env):
    s, msgs, uids = three(env)
    full = crlf(msgs[2])
    d = fetches(s.ok("FETCH 3 (BODY.PEEK[]<0.10> BODY.PEEK[]<5.20>)"))[3]
    assert d["BODY[]<0>"] == full[:10], d
    assert d["BODY[]<5>"] == full[5:25], d
    d = fetches(s.ok("FETCH 3 BODY.PEEK[]<%d.100>" % (len(full) - 4)))[3]
    assert d["BODY[]<%d>" % (len(full) - 4)] == full[-4:], d
    d = fetches(s.ok("FETCH 3 BODY.PEEK[]<1000000.10>"))[3]
    assert d["BODY[]<1000000>"] == b"", d
    body = full.partition(b"\r\n\r\n")[2]
    d = fetches(s.ok("FETCH 3 BODY.PEEK[TEXT]<2.3>"))[3]
    assert d["BODY[TEXT]<2>"] == body[2:5], d
    s.bad("FETCH 3 BODY[]<1.>")
    s.ok("NOOP")
    s.bad("FETCH 3 BODY[]<a.2>")
    s.ok("NOOP")


def test_fetch_sets_seen(env):
    for i in range(5):
        env.deliver(make_msg("m%d" % i), flags="")
    s = env.session()
    s.ok("SELECT INBOX")
    s.ok("FETCH 1 BODY.PEEK[]")
    d = fetches(s.ok("FETCH 1 FLAGS"))[1]
    assert "\\Seen" not in flagset(d["FLAGS"]), d
    d = fetches(s.ok("FETCH 1 RFC822.HEADER"))[1]
    d = fetches(s.ok("FETCH 1 FLAGS"))[1]
    assert "\\Seen" not in flagset(d["FLAGS"]), d
    # every non-peek body fetch sets \Seen and reports the new FLAGS
    for n, item in ((1, "BODY[]"), (2, "RFC822"), (3, "RFC822.TEXT"),
                    (4, "BODY[HEADER]"), (5, "BODY[TEXT]<0.3>")):
        d = fetches(s.ok("FETCH %d %s" % (n, item)))[n]
        assert "FLAGS" in d and "\\Seen" in flagset(d["FLAGS"]), (item, d)
        d = fetches(s.ok("FETCH %d FLAGS" % n))[n]
        assert "\\Seen" in flagset(d["FLAGS"]), (item, d)
    files = maildir_files(env.maildir)
    assert len(files) == 5 and all("S" in (i or "") for i in files.values()), \
        files


def test_fetch_macros(env):
    s, msgs, uids = three(env)
    d = fetches(s.ok("FETCH 2 FAST"))[2]
    assert set(d) == {"FLAGS", "INTERNALDATE", "RFC822.SIZE"}, d
    d = fetches(s.ok("FETCH 2 ALL"))[2]
    assert set(d) == {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"}, d
    d = fetches(s.ok("FETCH 2 FULL"))[2]
    assert set(d) == {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE",
                      "BODY"}, d
    d = fetches(s.ok("UID FETCH %d FAST" % uids[1]))[2]
    assert set(d) == {"UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE"}, d
    s.bad("FETCH 2 (FAST)")
    s.ok("NOOP")


def test_fetch_envelope(env):
    m = make_msg("Hello world", "hi\n",
                 frm="Alice Example <alice@example.org>",
                 to="Bob <bob@example.net>, carol@example.com",
                 msgid="<id1@example.org>",
                 headers=["In-Reply-To: <id0@example.org>"])
    s = env.session()
    add(s, "INBOX", [m])
    s.ok("SELECT INBOX")
    env_ = fetches(s.ok("FETCH 1 ENVELOPE"))[1]["ENVELOPE"]
    alice = [[b"Alice Example", None, b"alice", b"example.org"]]
    want = [b"Mon, 7 Feb 1994 21:52:25 -0800", b"Hello world", alice, alice,
            alice, [[b"Bob", None, b"bob", b"example.net"],
                    [None, None, b"carol", b"example.com"]],
            None, None, b"<id0@example.org>", b"<id1@example.org>"]
    assert env_ == want, env_


def test_fetch_bodystructure_and_sections(env):
    simple = make_msg("plain", "one\ntwo\nthree\n",
                      headers=["MIME-Version: 1.0",
                               "Content-Type: text/plain; charset=utf-8"])
    multi = ("From: a@example.org\nSubject: multi\nMIME-Version: 1.0\n"
             "Content-Type: multipart/mixed; boundary=\"XX\"\n\n"
             "preamble\n--XX\nContent-Type: text/plain\n\npart one\n"
             "--XX\nContent-Type: text/html; charset=us-ascii\n\n"
             "<p>part two</p>\n--XX--\n").encode()
    s = env.session()
    add(s, "INBOX", [simple, multi])
    s.ok("SELECT INBOX")
    d = fetches(s.ok("FETCH 1 (BODYSTRUCTURE BODY)"))[1]
    bs, b = d["BODYSTRUCTURE"], d["BODY"]
    text = b"one\r\ntwo\r\nthree\r\n"
    assert bs[0].upper() == b"TEXT" and bs[1].upper() == b"PLAIN", bs
    assert [x.upper() for x in bs[2]] == [b"CHARSET", b"UTF-8"], bs
    assert bs[5].upper() == b"7BIT", bs
    assert int(bs[6]) == len(text) and int(bs[7]) == 3, bs
    assert len(b) == 8 and b[:8] == bs[:8], (b, bs)
    d = fetches(s.ok("FETCH 1 BODY.PEEK[1]"))[1]
    assert d["BODY[1]"] == text, d
    d = fetches(s.ok("FETCH 2 (BODYSTRUCTURE BODY.PEEK[1] BODY.PEEK[2] "
                     "BODY.PEEK[2.MIME])"))[2]
    bs = d["BODYSTRUCTURE"]
    assert isinstance(bs[0], list) and isinstance(bs[1], list), bs
    assert bs[2].upper() == b"MIXED", bs
    assert bs[1][1].upper() == b"HTML", bs
    assert d["BODY[1]"] == b"part one", d
    assert d["BODY[2]"] == b"<p>part two</p>", d
    assert d["BODY[2.MIME]"] == \
        b"Content-Type: text/html; charset=us-ascii\r\n\r\n", d
    u = s.ok("FETCH 2 BODY.PEEK[HEADER.FIELDS (Subject From)]")
    n, d = fetch_items(u[0])
    key = [k for k in d if k.startswith("BODY[HEADER.FIELDS")]
    assert len(key) == 1, d
    assert d[key[0]] == b"From: a@example.org\r\nSubject: multi\r\n\r\n", d
    u = s.ok("FETCH 2 BODY.PEEK[HEADER.FIELDS.NOT (Content-Type "
             "MIME-Version)]")
    n, d = fetch_items(u[0])
    key = [k for k in d if k.startswith("BODY[HEADER.FIELDS.NOT")]
    assert d[key[0]] == b"From: a@example.org\r\nSubject: multi\r\n\r\n", d


def test_fetch_sequence_sets(env):
    s, msgs, uids = three(env)
    assert sorted(fetches(s.ok("FETCH 1:* UID"))) == [1, 2, 3]
    assert sorted(fetches(s.ok("FETCH * UID"))) == [3]
    assert sorted(fetches(s.ok("FETCH 3:1 UID"))) == [1, 2, 3]
    assert sorted(fetches(s.ok("FETCH 1,3 UID"))) == [1, 3]
    assert sorted(fetches(s.ok("FETCH 2:2,1 UID"))) == [1, 2]
    # UID ranges: missing UIDs are simply absent
    assert s.ok("UID FETCH %d FLAGS" % (uids[2] + 100)) == []
    assert s.ok("UID FETCH %d:%d FLAGS" % (uids[2] + 1, uids[2] + 50)) == []
    d = fetches(s.ok("UID FETCH 1:* FLAGS"))
    assert sorted(int(v["UID"]) for v in d.values()) == uids, d
    # n:* always includes the highest UID (RFC 3501 6.4.8)
    d = fetches(s.ok("UID FETCH %d:* FLAGS" % (uids[2] + 100)))
    assert list(d) == [3] and int(d[3]["UID"]) == uids[2], d
    d = fetches(s.ok("UID FETCH %d,%d FLAGS" % (uids[0], uids[2])))
    assert sorted(d) == [1, 3], d


def test_fetch_errors(env):
    s = env.session()
    s.bad("FETCH 1 FLAGS")
    s.ok("NOOP")
    s, msgs, uids = three(env)
    for c in ("FETCH 4 FLAGS", "FETCH 1:4 FLAGS", "FETCH 0 FLAGS",
              "FETCH x FLAGS", "FETCH 1 FOO", "FETCH 1 (FLAGS",
              "FETCH 1 BODY[FOO]", "FETCH 1", "FETCH 1,,2 FLAGS",
              "FETCH 1: FLAGS", "FETCH -1 FLAGS", "FETCH 4294967296 FLAGS",
              "FETCH 1 (FLAGS))", "UID FETCH 0 FLAGS", "FETCH 1 BODY[1.]",
              "FETCH 1 BODY[HEADER.FIELDS]", "FETCH 1 BODY[TEXT",
              "STORE 4 +FLAGS (\\Seen)", "STORE 0 FLAGS ()",
              "COPY 4 INBOX"):
        u, t = s.cmd(c)
        assert is_bad(t), (c, t, u)
        assert not [x for x in u if re.match(rb"\* \d+ FETCH", x)], (c, u)
        s.ok("NOOP")
    s.ok("FETCH 1:3 FLAGS")


# --- STORE ----------------------------------------------------------------

def test_store(env):
    s, msgs, uids = three(env)
    u = s.ok("STORE 2 FLAGS (\\Flagged)")
    d = fetches(u)
    assert list(d) == [2] and flagset(d[2]["FLAGS"]) == {"\\Flagged"}, u
    d = fetches(s.ok("STORE 2 +FLAGS (\\Seen \\Answered)"))
    assert flagset(d[2]["FLAGS"]) == {"\\Flagged", "\\Seen", "\\Answered"}, d
    d = fetches(s.ok("STORE 2 -FLAGS (\\Flagged)"))
    assert flagset(d[2]["FLAGS"]) == {"\\Seen", "\\Answered"}, d
    u = s.ok("STORE 2 +FLAGS.SILENT (\\Draft)")
    assert not fetches(u), u
    d = fetches(s.ok("FETCH 2 FLAGS"))
    assert flagset(d[2]["FLAGS"]) == {"\\Seen", "\\Answered", "\\Draft"}, d
    u = s.ok("STORE 2 -FLAGS.SILENT (\\Answered)")
    assert not fetches(u), u
    d = fetches(s.ok("STORE 1:3 +FLAGS \\Deleted"))
    assert sorted(d) == [1, 2, 3], d
    assert all("\\Deleted" in flagset(v["FLAGS"]) for v in d.values()), d
    d = fetches(s.ok("STORE 1:3 FLAGS ()"))
    assert all(flagset(v["FLAGS"]) == set() for v in d.values()), d
    s.ok("STORE 1 FLAGS (\\Seen \\Draft)")
    info = [i for i in maildir_files(env.maildir).values()]
    assert sorted(info) == ["2,", "2,", "2,DS"], info


def test_store_keywords(env):
    s, msgs, uids = three(env)
    d = fetches(s.ok("STORE 1 +FLAGS (Work $Label1)"))
    assert flagset(d[1]["FLAGS"]) == {"\\Seen", "Work", "$Label1"}, d
    s.ok("STORE 2 FLAGS (Work)")
    d = fetches(s.ok("STORE 1 -FLAGS ($Label1)"))
    assert flagset(d[1]["FLAGS"]) == {"\\Seen", "Work"}, d
    s.logout()
    s = env.session()
    info = select_info(s.ok("SELECT INBOX"))
    assert "Work" in info["flags"], info
    assert "\\*" in info["permanentflags"], info
    d = fetches(s.ok("FETCH 1:3 FLAGS"))
    assert flagset(d[1]["FLAGS"]) == {"\\Seen", "Work"}, d
    assert flagset(d[2]["FLAGS"]) == {"Work"}, d
    assert flagset(d[3]["FLAGS"]) == set(), d
    assert search_result(s.ok("SEARCH KEYWORD Work")) == [1, 2]


def test_uid_store(env):
    s, msgs, uids = three(env)
    u = s.ok("UID STORE %d +FLAGS (\\Flagged)" % uids[1])
    n, d = fetch_items(u[0])
    assert len(u) == 1 and n == 2 and int(d["UID"]) == uids[1], u
    assert flagset(d["FLAGS"]) == {"\\Flagged"}, d
    assert s.ok("UID STORE %d +FLAGS (\\Flagged)" % (uids[2] + 10)) == []
    d = fetches(s.ok("UID STORE %d:* +FLAGS (\\Answered)" % uids[0]))
    assert sorted(d) == [1, 2, 3], d


def test_store_bad(env):
    s, msgs, uids = three(env)
    for c in ("STORE 1 FOO (\\Seen)", "STORE 1 +FLAGS (\\Seen",
              "STORE 1 +FLAGS.NOISY (\\Seen)", "STORE x +FLAGS (\\Seen)"):
        s.bad(c)
        s.ok("NOOP")
    d = fetches(s.ok("FETCH 1:3 FLAGS"))
    assert flagset(d[2]["FLAGS"]) == set(), d


# --- COPY, APPEND -----------------------------------------------------------

def test_copy(env):
    s, msgs, uids = three(env)
    s.ok("STORE 2 +FLAGS (\\Flagged Work)")
    s.ok("CREATE Dest")
    u, t = s.cmd("COPY 1:2 Dest")
    assert is_ok(t), t
    m = re.search(rb"\[COPYUID (\d+) ([\d:,]+) ([\d:,]+)\]", t)
    assert m, t
    src, dst = uid_set(m.group(2).decode()), uid_set(m.group(3).decode())
    assert src == uids[:2] and len(dst) == 2, (src, dst)
    v = status_items(s.ok("STATUS Dest (UIDVALIDITY MESSAGES)"))
    assert v["UIDVALIDITY"] == int(m.group(1)) and v["MESSAGES"] == 2, v
    d = fetches(s.ok("FETCH 1:2 (FLAGS INTERNALDATE)"))
    u, t = s.cmd("UID COPY %d,%d Dest" % (uids[2], uids[2] + 50))
    m2 = re.search(rb"\[COPYUID (\d+) ([\d:,]+) ([\d:,]+)\]", t)
    assert is_ok(t) and m2, t
    assert uid_set(m2.group(2).decode()) == [uids[2]], t
    dst3 = uid_set(m2.group(3).decode())
    assert len(dst3) == 1 and dst3[0] > max(dst), (dst, dst3)
    u, t = s.cmd("UID COPY %d Dest" % (uids[2] + 50))
    assert is_ok(t), t
    s.ok("SELECT Dest")
    got = fetches(s.ok("FETCH 1:* (UID FLAGS INTERNALDATE BODY.PEEK[])"))
    assert sorted(int(v["UID"]) for v in got.values()) == dst + dst3
    assert [got[i]["BODY[]"] for i in (1, 2, 3)] == [crlf(x) for x in msgs]
    assert flagset(got[1]["FLAGS"]) == {"\\Seen"}, got[1]
    assert flagset(got[2]["FLAGS"]) == {"\\Flagged", "Work"}, got[2]
    assert got[1]["INTERNALDATE"] == d[1]["INTERNALDATE"]


def test_copy_errors(env):
    s, msgs, uids = three(env)
    s.no("COPY 1 Missing", "TRYCREATE")
    s.no("UID COPY %d Missing" % uids[0], "TRYCREATE")
    s.bad("COPY 4 INBOX")
    s.bad("COPY 1")
    s.ok("NOOP")
    names = [n for _, _, n in list_entries(s.ok('LIST "" "*"'))]
    assert names == ["INBOX"], names


def test_append(env):
    s = env.session()
    m = make_msg("appended", "text\n")
    u, t = append(s, "INBOX", m)
    assert is_ok(t), t
    v, uid = appenduid(t)
    st = status_items(s.ok("STATUS INBOX (UIDVALIDITY UIDNEXT MESSAGES)"))
    assert st["UIDVALIDITY"] == v and st["UIDNEXT"] > uid, (st, t)
    assert st["MESSAGES"] == 1
    date = "14-Jul-2020 10:11:12 +0200"
    u, t = append(s, "INBOX", make_msg("flagged", "x\r\n", eol="\r\n"),
                  flags=["\\Seen", "\\Flagged", "Work"], date=date)
    assert is_ok(t), t
    v2, uid2 = appenduid(t)
    assert v2 == v and uid2 > uid, (uid, uid2)
    u, t = append(s, "INBOX", make_msg("plus"), plus=True)
    assert is_ok(t), t
    no_plus(u)
    uid3 = appenduid(t)[1]
    assert uid3 > uid2
    s.ok("SELECT INBOX")
    d = fetches(s.ok("UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE "
                     "BODY.PEEK[])"))
    by_uid = {int(x["UID"]): x for x in d.values()}
    assert sorted(by_uid) == [uid, uid2, uid3], by_uid.keys()
    assert by_uid[uid]["BODY[]"] == crlf(m)
    assert int(by_uid[uid]["RFC822.SIZE"]) == len(crlf(m))
    assert flagset(by_uid[uid2]["FLAGS"]) == {"\\Seen", "\\Flagged", "Work"}
    assert imap_date(by_uid[uid2]["INTERNALDATE"]) == \
        calendar.timegm((2020, 7, 14, 8, 11, 12))
    assert flagset(by_uid[uid]["FLAGS"]) & {"\\Seen", "\\Flagged"} == set()
    # on disk: tmp/ is empty again, one file per message
    assert os.listdir(os.path.join(env.maildir, "tmp")) == []
    assert len(maildir_files(env.maildir)) == 3


def test_append_errors(env):
    s = env.session()
    u, t = append(s, "Missing", make_msg("lost"))
    assert is_no(t) and b"[TRYCREATE]" in t, t
    u, t = append(s, "INBOX", make_msg("x"), date="31-Foo-2020 00:00:00 +0000")
    assert is_bad(t), t
    s.bad("APPEND INBOX")
    s.bad("APPEND INBOX (\\Seen)")
    s.bad("APPEND INBOX (\\Seen) {x}")
    s.ok("NOOP")
    assert status_items(s.ok("STATUS INBOX (MESSAGES)"))["MESSAGES"] == 0
    assert os.listdir(os.path.join(env.maildir, "tmp")) == []
    # \Recent is not the client's to set: refused, or ignored (never
    # stored as if it were a keyword)
    u, t = append(s, "INBOX", make_msg("x"), flags=["\\Recent", "\\Seen"])
    assert is_ok(t) or is_no(t) or is_bad(t), t
    if is_ok(t):
        s.ok("SELECT INBOX")
        s.ok("UNSELECT")
        s2 = env.session()
        s2.ok("SELECT INBOX")
        d = fetches(s2.ok("FETCH 1 FLAGS"))[1]
        assert set(str(f) for f in d["FLAGS"]) == {"\\Seen"}, d
    s2 = env.session(login=False)
    s2.greeting()
    u, t = append(s2, "INBOX", make_msg("x"))
    assert is_bad(t), t


def test_append_too_big(env):
    limit = config_value("APPEND_MAX")
    s = env.session()
    tag = s.tag()
    s.send("%s APPEND INBOX {%d}\r\n" % (tag, limit + 1))
    ln = s.line()
    assert not ln.startswith(b"+"), "continuation for an oversized APPEND"
    assert ln.startswith(tag.encode() + b" NO [TOOBIG]"), ln
    s.ok("NOOP")
    assert status_items(s.ok("STATUS INBOX (MESSAGES)"))["MESSAGES"] == 0


def test_append_to_selected(env):
    s = env.session()
    s.ok("SELECT INBOX")
    u, t = append(s, "INBOX", make_msg("live"))
    assert is_ok(t), t
    u += s.ok("NOOP")
    exists = [int(x.split()[1]) for x in u if re.match(rb"\* \d+ EXISTS", x)]
    assert exists and exists[-1] == 1, u
    d = fetches(s.ok("FETCH 1 (UID)"))
    assert int(d[1]["UID"]) == appenduid(t)[1]


def test_literal_too_big(env):
    limit = config_value("LITERAL_MAX")
    s = env.session()
    tag = s.tag()
    s.send("%s CREATE {%d}\r\n" % (tag, limit + 1))
    ln = s.line()
    assert not ln.startswith(b"+"), "continuation for an oversized literal"
    assert re.match(tag.encode() + rb" (BAD|NO)\b", ln), ln
    s.ok("NOOP")


def test_literals_in_commands(env):
    s = env.session()
    u, t = cmd_lit(s, "CREATE ", lit("Lit Box"))
    assert is_ok(t), t
    u, t = cmd_lit(s, "CREATE ", lit("Plus", True))
    assert is_ok(t), t
    no_plus(u)
    u, t = cmd_lit(s, "LIST ", lit(""), " ", lit("*"))
    names = sorted(n for _, _, n in list_entries(u))
    assert names == ["INBOX", "Lit Box", "Plus"], names
    # a literal may carry any octet except NUL, e.g. a quote in a name
    u, t = cmd_lit(s, "SELECT ", lit("Lit Box", True))
    assert is_ok(t), t


# --- EXPUNGE, CLOSE, UNSELECT ---------------------------------------------

def five(env):
    s = env.session()
    uids = add(s, "INBOX", [make_msg("m%d" % i) for i in range(1, 6)])
    s.ok("SELECT INBOX")
    return s, uids


def test_expunge(env):
    s, uids = five(env)
    s.ok("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    u = s.ok("EXPUNGE")
    # besides EXPUNGE only EXISTS/RECENT updates may come
    assert all(re.match(rb"\* \d+ (EXPUNGE|EXISTS|RECENT)$", x) for x in u), u
    assert len([x for x in u if x.endswith(b" EXPUNGE")]) == 2, u
    left = apply_expunges(uids, u)
    assert left == [uids[0], uids[2], uids[4]], (left, u)
    d = fetches(s.ok("FETCH 1:* UID"))
    assert [int(d[i]["UID"]) for i in sorted(d)] == left
    assert len(maildir_files(env.maildir)) == 3
    assert expunged(s.ok("EXPUNGE")) == []
    s.bad("FETCH 4 UID")


def test_uid_expunge(env):
    s, uids = five(env)
    s.ok("STORE 1,3 +FLAGS.SILENT (\\Deleted)")
    u = s.ok("UID EXPUNGE %d,%d" % (uids[2], uids[1]))
    assert expunged(u) == [b"* 3 EXPUNGE"], u
    d = fetches(s.ok("FETCH 1:* (UID FLAGS)"))
    assert [int(d[i]["UID"]) for i in sorted(d)] == [uids[0], uids[1],
                                                     uids[3], uids[4]]
    assert "\\Deleted" in flagset(d[1]["FLAGS"])
    assert expunged(s.ok("UID EXPUNGE %d" % (uids[4] + 10))) == []
    u = s.ok("UID EXPUNGE 1:*")
    assert expunged(u) == [b"* 1 EXPUNGE"], u
    s.bad("UID EXPUNGE")


def test_close_expunges_silently(env):
    s, uids = five(env)
    s.ok("STORE 1,5 +FLAGS.SILENT (\\Deleted)")
    u = s.ok("CLOSE")
    assert not [x for x in u if b"EXPUNGE" in x], u
    s.bad("FETCH 1 UID")
    s.bad("CLOSE")
    info = select_info(s.ok("SELECT INBOX"))
    assert info["exists"] == 3, info
    d = fetches(s.ok("FETCH 1:* UID"))
    assert [int(d[i]["UID"]) for i in sorted(d)] == uids[1:4]


def test_close_after_examine_keeps(env):
    s, uids = five(env)
    s.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    s.ok("EXAMINE INBOX")
    s.ok("CLOSE")
    assert select_info(s.ok("SELECT INBOX"))["exists"] == 5


def test_unselect(env):
    s, uids = five(env)
    s.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    u = s.ok("UNSELECT")
    assert not [x for x in u if b"EXPUNGE" in x], u
    s.bad("FETCH 1 UID")
    s.bad("UNSELECT")
    assert select_info(s.ok("SELECT INBOX"))["exists"] == 5


# --- SEARCH -----------------------------------------------------------------

def search_box(env):
    """seven messages with known flags, dates and sizes; 1-6 appended,
    7 delivered into new/"""
    s = env.session()
    msgs = [
        (make_msg("alpha", "nothing here\n"), ["\\Seen"],
         "01-Jan-2020 12:00:00 +0000"),
        (make_msg("beta", "the needle is here\n", frm="Carol <c@x.org>"),
         ["\\Answered", "\\Seen"], "15-Mar-2021 12:00:00 +0000"),
        (make_msg("gamma", "big\n" * 1500), ["\\Flagged"],
         "15-Mar-2021 13:00:00 +0000"),
        (make_msg("delta"), ["\\Deleted"], "10-Jun-2022 12:00:00 +0000"),
        (make_msg("epsilon"), ["\\Draft", "Work"],
         "10-Jun-2022 12:00:00 +0000"),
        (make_msg("zeta"), [], "01-Jan-2024 12:00:00 +0000"),
    ]
    uids = add(s, "INBOX", msgs)
    env.deliver(make_msg("eta", "fresh\n"))
    s.ok("SELECT INBOX")
    d = fetches(s.ok("FETCH 1:* (UID FLAGS RFC822.SIZE)"))
    assert sorted(d) == list(range(1, 8)), d
    assert [int(d[i]["UID"]) for i in range(1, 7)] == uids, (d, uids)
    return s, d


def test_search_flags(env):
    s, d = search_box(env)
    recent = [n for n in d if "\\Recent" in set(str(f) for f in d[n]["FLAGS"])]
    assert 7 in recent, d

    def q(keys):
        return search_result(s.ok("SEARCH " + keys))
    rest = lambda xs: [i for i in range(1, 8) if i not in xs]  # noqa
    assert q("ALL") == list(range(1, 8))
    assert q("SEEN") == [1, 2]
    assert q("UNSEEN") == rest([1, 2])
    assert q("ANSWERED") == [2]
    assert q("UNANSWERED") == rest([2])
    assert q("FLAGGED") == [3]
    assert q("UNFLAGGED") == rest([3])
    assert q("DELETED") == [4]
    assert q("UNDELETED") == rest([4])
    assert q("DRAFT") == [5]
    assert q("UNDRAFT") == rest([5])
    assert q("KEYWORD Work") == [5]
    assert q("UNKEYWORD Work") == rest([5])
    assert q("KEYWORD NoSuchKeyword") == []
    assert q("UNKEYWORD NoSuchKeyword") == list(range(1, 8))
    assert q("RECENT") == sorted(recent)
    assert q("OLD") == rest(recent)
    assert q("NEW") == [n for n in sorted(recent) if n not in (1, 2)]
    assert q("NOT SEEN") == rest([1, 2])
    assert q("OR SEEN FLAGGED") == [1, 2, 3]
    assert q("SEEN ANSWERED") == [2]
    assert q("(SEEN ANSWERED)") == [2]
    assert q("OR (SEEN ANSWERED) DRAFT") == [2, 5]
    assert q("NOT (OR SEEN DELETED)") == [3, 5, 6, 7]
    assert q("NOT NOT SEEN") == [1, 2]
    assert q("seen unanswered") == [1]


def test_search_sets_sizes_dates(env):
    s, d = search_box(env)
    uid = {n: int(v["UID"]) for n, v in d.items()}
    size = {n: int(v["RFC822.SIZE"]) for n, v in d.items()}

    def q(keys, cmd="SEARCH"):
        return search_result(s.ok(cmd + " " + keys))
    assert q("2:4") == [2, 3, 4]
    assert q("6:*") == [6, 7]
    assert q("*") == [7]
    assert q("1,3,5:6") == [1, 3, 5, 6]
    assert q("UID %d:%d" % (uid[2], uid[4])) == [2, 3, 4]
    assert q("UID %d,%d" % (uid[2], uid[5])) == [2, 5]
    assert q("UID %d" % (uid[7] + 100)) == []
    assert q("ALL", "UID SEARCH") == [uid[i] for i in range(1, 8)]
    assert q("SEEN", "UID SEARCH") == [uid[1], uid[2]]
    assert q("UID %d:*" % uid[6], "UID SEARCH") == [uid[6], uid[7]]
    assert q("LARGER %d" % (size[3] - 1)) == [3]
    assert q("LARGER %d" % size[3]) == []
    n = size[1]
    assert q("SMALLER %d" % (n + 1)) == sorted(i for i in size
                                               if size[i] <= n)
    assert q("SMALLER %d" % n) == sorted(i for i in size if size[i] < n)
    assert q("BEFORE 15-Mar-2021") == [1]
    assert q("ON 15-Mar-2021") == [2, 3]
    assert q("SINCE 10-Jun-2022") == [4, 5, 6, 7]
    assert q("SINCE 1-Jan-2024 BEFORE 1-Jan-2030") == [6, 7]
    assert q('ON "10-Jun-2022"') == [4, 5]
    assert q("NOT BEFORE 2-Jan-2020 BEFORE 10-Jun-2022") == [2, 3]
    assert q("2:5 SEEN") == [2]


def test_search_content_and_charset(env):
    s, d = search_box(env)

    def q(keys):
        return search_result(s.ok("SEARCH " + keys))
    assert q("SUBJECT alpha") == [1]
    assert q("SUBJECT ALPHA") == [1]
    assert q('SUBJECT "eps"') == [5]
    assert q("FROM carol") == [2]
    assert q("FROM alice") == [1, 3, 4, 5, 6, 7]
    assert q("BODY needle") == [2]
    assert q("TEXT needle") == [2]
    assert q("TEXT Epsilon") == [5]
    assert q('HEADER Message-ID "<gamma@example.org>"') == [3]
    assert q("TO bob") == list(range(1, 8))
    assert q("CHARSET UTF-8 SUBJECT beta") == [2]
    assert q("CHARSET US-ASCII SUBJECT beta") == [2]
    s.no("SEARCH CHARSET X-NOSUCH-CHARSET SUBJECT beta", "BADCHARSET")
    u, t = cmd_lit(s, "SEARCH CHARSET UTF-8 BODY ", lit("needle"))
    assert is_ok(t) and search_result(u) == [2], (u, t)


def test_search_errors(env):
    s = env.session()
    s.bad("SEARCH ALL")
    s.ok("SELECT INBOX")
    assert search_result(s.ok("SEARCH ALL")) == []
    assert search_result(s.ok("UID SEARCH ALL")) == []
    for c in ("SEARCH FOO", "SEARCH (SEEN", "SEARCH LARGER x",
              "SEARCH BEFORE 2021-03-15", "SEARCH OR SEEN", "SEARCH NOT",
              "SEARCH SEEN)", "SEARCH KEYWORD", "SEARCH UID x"):
        s.bad(c)
        s.ok("NOOP")


# --- long lines, literals ---------------------------------------------------

def test_long_uid_set_line(env):
    s, msgs, uids = three(env)
    limit = config_value("LINE_MAX_LEN")
    parts, n = [], uids[2] + 2
    head = "a999 UID FETCH %d:%d," % (uids[0], uids[2])
    tail = " (FLAGS)\r\n"
    length = len(head) + len(tail)
    while True:
        p = "%d:%d" % (n, n + 1)
        if length + len(p) + 1 > min(limit - 64, 65500):
            break
        parts.append(p)
        length += len(p) + 1
        n += 3
    line = head + ",".join(parts) + tail
    assert len(line) >= 64000, len(line)
    s.send(line)
    u, t = s.collect("a999")
    assert is_ok(t), t
    d = fetches(u)
    assert sorted(d) == [1, 2, 3], d


def test_overlong_line(env):
    limit = config_value("LINE_MAX_LEN")
    s, msgs, uids = three(env)
    line = "a998 UID FETCH " + ",".join(
        str(i) for i in range(1, limit)) [:limit + 10000] + " (FLAGS)\r\n"
    try:
        s.send(line)
    except BrokenPipeError:
        pass    # imapd stopped reading at the limit
    # the tag is right at the start of the line: the answer is tagged,
    # and since the rest of the line may never come, imapd closes
    ln = s.line(timeout=5)
    assert is_bad(ln) and ln.startswith(b"a998 BAD [TOOBIG]"), ln
    rest = read_until_closed(s, timeout=5)
    assert rest and rest[0].startswith(b"* BYE"), rest


# --- smaller things clients rely on -----------------------------------------

def test_reselect_does_not_expunge(env):
    s, uids = five(env)
    s.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    u = s.ok("SELECT INBOX")
    assert select_info(u)["exists"] == 5, u
    assert not expunged(u), u
    s.ok("CREATE Other")
    s.ok("SELECT Other")
    assert status_items(s.ok("STATUS INBOX (MESSAGES)"))["MESSAGES"] == 5


def test_copy_into_selected_mailbox(env):
    s, uids = five(env)
    u, t = s.cmd("COPY 2 INBOX")
    assert is_ok(t) and b"[COPYUID " in t, t
    u += s.ok("NOOP")
    ex = [int(x.split()[1]) for x in u if re.match(rb"\* \d+ EXISTS$", x)]
    assert ex and ex[-1] == 6, u
    d = fetches(s.ok("FETCH 6 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    assert int(d[6]["UID"]) > uids[-1], d
    assert item(d[6], "BODY[HEADER").strip() == b"Subject: m2", d


def test_enable_known_extension(env):
    s = env.session(login=False)
    c = caps_of(s.greeting())
    if "CONDSTORE" not in c:
        raise Skip("no CONDSTORE")
    s.ok(login_line(env))
    u = s.ok("ENABLE CONDSTORE X-NOSUCH")
    assert u == [b"* ENABLED CONDSTORE"], u
    u = s.ok("ENABLE CONDSTORE")
    assert len(u) == 1 and u[0].startswith(b"* ENABLED"), u


def test_move(env):
    s, uids = five(env)
    c = caps_of(untagged(s.ok("CAPABILITY"), "CAPABILITY ")[0])
    if "MOVE" not in c:
        raise Skip("no MOVE")
    s.ok("CREATE Dest")
    u, t = s.cmd("MOVE 2:3 Dest")
    assert is_ok(t), t
    cu = [x for x in u if x.startswith(b"* OK [COPYUID ")]
    assert len(cu) == 1, u
    m = re.match(rb"\* OK \[COPYUID \d+ ([\d:,]+) ([\d:,]+)\]", cu[0])
    assert uid_set(m.group(1).decode()) == uids[1:3], cu
    assert apply_expunges(uids, u) == [uids[0], uids[3], uids[4]], u
    u, t = s.cmd("UID MOVE %d Dest" % uids[4])
    assert is_ok(t), t
    assert expunged(u) == [b"* 3 EXPUNGE"], u
    s.no("MOVE 1 Missing", "TRYCREATE")
    s.bad("MOVE 9 Dest")
    s.ok("NOOP")
    assert status_items(s.ok("STATUS Dest (MESSAGES)"))["MESSAGES"] == 3
    assert len(maildir_files(env.maildir)) == 2


def test_pipelined_commands(env):
    env.deliver(make_msg("p1"), flags="S")
    s = env.session()
    s.send("p1 NOOP\r\np2 SELECT INBOX\r\np3 FETCH 1 (FLAGS)\r\n"
           "p4 STORE 1 +FLAGS (\\Flagged)\r\np5 FETCH 1 FLAGS\r\n"
           "p6 LOGOUT\r\n")
    tags = []
    out = []
    for _ in range(60):
        try:
            ln = s.line()
        except EOFError:
            break
        out.append(ln)
        if re.match(rb"p\d ", ln):
            tags.append(ln.split()[0:2])
    assert tags == [[b"p%d" % i, b"OK"] for i in range(1, 7)], out
    d = fetches(out)
    assert flagset(d[1]["FLAGS"]) == {"\\Seen", "\\Flagged"}, out
    assert any(x.startswith(b"* BYE") for x in out), out


def test_flags_case_insensitive(env):
    s, msgs, uids = three(env)
    d = fetches(s.ok("STORE 3 +FLAGS (\\SEEN \\flagged)"))
    assert flagset(d[3]["FLAGS"]) == {"\\Seen", "\\Flagged"}, d
    assert search_result(s.ok("SEARCH seen flagged")) == [3]


def test_append_interrupted_leaves_nothing(env):
    s = env.session()
    tag = s.tag()
    s.send("%s APPEND INBOX {5000}\r\n" % tag)
    assert s.line().startswith(b"+")
    s.send(b"Subject: half\r\n\r\n" + b"x" * 1000)
    s.close()
    assert s.p.returncode is not None
    s2 = env.session()
    assert status_items(s2.ok("STATUS INBOX (MESSAGES)"))["MESSAGES"] == 0
    assert maildir_files(env.maildir) == {}
    assert os.listdir(os.path.join(env.maildir, "tmp")) == []
