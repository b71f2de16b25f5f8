"""NOTIFY (RFC 5465): a client that waits between commands hears of other
folders (STATUS), of folder names and subscriptions (LIST) and of the
selected mailbox (EXISTS, EXPUNGE or VANISHED, FETCH) without sending a
command.  The changes come from a second session, from files dropped into
new/ and from imapd -d; the client under test talks over a loopback
socket the way a launcher hands it one.  Where Dovecot has the behaviour,
its answers on a copy of the same Maildir are compared."""
import os
import re
import select
import socket
import subprocess

import lib
import refimap
from lib import is_bad, is_no, is_ok, make_msg, untagged

PUSH_LIMIT = 3.0	# seconds within which a waiting client must hear
QUIET = 0.6		# seconds of silence taken as "nothing pushed"

ALL_MSG = "MessageNew MessageExpunge FlagChange"
SUPPORTED = {"MessageNew", "MessageExpunge", "FlagChange", "MailboxName",
             "SubscriptionChange"}


# --- helpers ------------------------------------------------------------

class SockSession(lib.Session):
    """lib.Session's client over a TCP socket"""

    def __init__(self, sock):
        self.sock, self.buf, self.ntag = sock, b"", 0

    def _fill(self, timeout):
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            raise AssertionError("no answer within %.1f s; have %r"
                                 % (timeout, self.buf[-300:]))
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("imapd closed the connection")
        self.buf += data

    def pending(self, timeout=0.3):
        if self.buf:
            return True
        r, _, _ = select.select([self.sock], [], [], timeout)
        return bool(r)

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def close(self):
        self.sock.close()

    def logout(self):
        u, t = self.cmd("LOGOUT")
        assert untagged(u, "BYE") and is_ok(t), (u, t)
        self.sock.close()


def connect(env, listener):
    sock = socket.create_connection(("127.0.0.1", listener.port), timeout=10)
    s = SockSession(sock)
    assert s.greeting().startswith(b"* OK")
    s.ok("LOGIN %s %s" % (env.user, lib.quote(lib.PASSWORD)))
    return s


def pushed(s, n=1, timeout=PUSH_LIMIT):
    """the next n lines the server sends unasked"""
    return [s.line(timeout) for _ in range(n)]


def until(s, want, limit=10):
    """the lines pushed up to and including the one want matches"""
    out = []
    while not out or not re.match(want, out[-1]):
        assert len(out) < limit, out
        out.append(s.line(PUSH_LIMIT))
    return out


def drain(s, quiet=QUIET):
    """every line sent unasked until the server has been quiet a while"""
    out = []
    while s.pending(quiet):
        out.append(s.line(PUSH_LIMIT))
    return out


def text(v):
    """an atom or a string of a parsed response as str"""
    return v.decode() if isinstance(v, bytes) else str(v)


def status_of(line):
    """(mailbox, {item: int}) of a STATUS response"""
    v = lib.parse_imap(line[2:])
    assert str(v[0]).upper() == "STATUS", line
    items = v[2]
    return text(v[1]), {str(items[i]).upper(): int(items[i + 1])
                       for i in range(0, len(items), 2)}


def list_of(line):
    """(attributes, name, OLDNAME or None) of a LIST response"""
    v = lib.parse_imap(line[2:])
    assert str(v[0]).upper() == "LIST", line
    old = None
    if len(v) > 4:
        ext = v[4]
        assert text(ext[0]).upper() == "OLDNAME", line
        old = text(ext[1][0])
    return {str(a).lower() for a in v[1]}, text(v[3]), old


def dovecot(env, maildir):
    """a pre-authenticated Dovecot session on maildir, as a lib.Session"""
    return lib.dovecot_session(env, maildir)


def dovecot_copy(env):
    """Dovecot's copy of env's Maildir (refimap.copy_maildir) """
    return refimap.copy_maildir(env)


def result(t):
    """OK, NO or BAD of a tagged line"""
    return t.split(b" ")[1].decode()


# --- capability and syntax ------------------------------------------------

def test_notify_advertised(env):
    s = env.session()
    u = s.ok("CAPABILITY")
    assert b" NOTIFY" in untagged(u, "CAPABILITY")[0], u
    s.logout()


BAD_COMMANDS = [
    "NOTIFY",
    "NOTIFY BOGUS",
    "NOTIFY SET",
    "NOTIFY NONE extra",	# Dovecot takes it
    "NOTIFY SET (personal ())",
    "NOTIFY SET (bogus (MessageNew MessageExpunge))",
    "NOTIFY SET (personal (MessageNew))",
    "NOTIFY SET (personal (MessageExpunge))",
    "NOTIFY SET (personal (MessageNew (UID) MessageExpunge))",
    "NOTIFY SET (selected (MessageNew MessageExpunge)) "
    "(selected-delayed (MessageNew MessageExpunge))",
    "NOTIFY SET (selected (MessageNew MessageExpunge) FlagChange)",
    "NOTIFY SET (selected (MailboxName))",
    "NOTIFY SET (selected (MessageNew (BODY[]) MessageExpunge))",
    "NOTIFY SET (selected (MessageNew (NOSUCHATT) MessageExpunge))",
    "NOTIFY SET (selected (MessageNew () MessageExpunge))",
    "NOTIFY SET (subtree (MessageNew MessageExpunge))",
    "NOTIFY SET (mailboxes () (MessageNew MessageExpunge))",
    "NOTIFY SET (personal (MessageNew MessageExpunge)",
    "NOTIFY SET STATUS",
]


def test_bad_syntax_is_tagged_bad(env):
    """every malformed NOTIFY is a tagged BAD, and the session goes on
    with what it had: the NOTIFY set before still pushes"""
    env.make_folder("Lists")
    with env.listener() as L:
        s = connect(env, L)
        s.ok("NOTIFY SET (mailboxes Lists (MessageNew MessageExpunge))")
        for c in BAD_COMMANDS:
            u, t = s.cmd(c)
            assert is_bad(t), (c, t)
        env.deliver(make_msg("after"), folder="Lists")
        name, items = status_of(pushed(s)[0])
        assert name == "Lists" and items["MESSAGES"] == 1, items
        s.logout()


def test_bad_syntax_as_dovecot(env):
    """where Dovecot follows the RFC's grammar, it answers BAD too"""
    md = dovecot_copy(env)
    d = dovecot(env, md)
    s = env.session()
    both = [c for c in BAD_COMMANDS if c not in (
        # Dovecot takes these, against RFC 5465 5 and 6.1 and the ABNF
        "NOTIFY SET", "NOTIFY SET STATUS", "NOTIFY NONE extra",
        "NOTIFY SET (selected (MailboxName))",
        "NOTIFY SET (personal (MessageNew))",
        "NOTIFY SET (personal (MessageExpunge))",
        "NOTIFY SET (selected (MessageNew (BODY[]) MessageExpunge))")]
    for c in both:
        ours = result(s.cmd(c)[1])
        theirs = result(d.cmd(c)[1])
        assert ours == theirs == "BAD", (c, ours, theirs)
    s.logout()


def test_badevent_lists_supported_events(env):
    """an event this server lacks is NO [BADEVENT (...)] naming every
    event it has (RFC 5465 3.1); Dovecot refuses the same with NO
    [BADEVENT]"""
    md = dovecot_copy(env)
    d = dovecot(env, md)
    s = env.session()
    for c in ("NOTIFY SET (personal (MessageNew MessageExpunge "
              "AnnotationChange))",
              "NOTIFY SET (personal (MailboxMetadataChange))",
              "NOTIFY SET (personal (ServerMetadataChange))",
              "NOTIFY SET (selected (MessageNew MessageExpunge)) "
              "(inboxes (SomeFutureEvent))"):
        u, t = s.cmd(c)
        m = re.search(rb"NO \[BADEVENT \(([^)]*)\)\]", t)
        assert m, (c, t)
        assert set(m.group(1).decode().split()) == SUPPORTED, t
        if "Future" not in c:
            dt = d.cmd(c)[1]
            assert result(dt) == "NO" and b"[BADEVENT" in dt, (c, dt)
    # refused: nothing changed, NOTIFY still off
    assert not untagged(s.ok("NOOP"), "STATUS")
    s.logout()


# --- other folders: STATUS --------------------------------------------------

def test_set_status_as_dovecot(env):
    """NOTIFY SET STATUS tells every watched folder but the selected one
    before its OK, with the items Dovecot gives"""
    env.make_folder("Lists")
    env.make_folder("Lists.Old")
    env.make_folder("Other")
    refimap.deliver(env, 1, make_msg("a"), folder="Lists")
    refimap.deliver(env, 2, make_msg("b"), flags="S", folder="Lists")
    refimap.deliver(env, 3, make_msg("c"), folder="Other")
    refimap.deliver(env, 4, make_msg("d"), folder="INBOX")
    md = dovecot_copy(env)
    cmds = ["SELECT Other",
            "NOTIFY SET STATUS (subtree Lists (%s)) "
            "(mailboxes (INBOX Other Nonexistent) (MessageNew "
            "MessageExpunge))" % ALL_MSG]
    theirs = refimap.run(env, md, cmds)
    s = env.session()
    ours = [s.cmd(c) for c in cmds]

    def statuses(answer):
        u, t = answer
        assert is_ok(t), t
        return dict(status_of(x) for x in untagged(u, "STATUS"))
    a, b = statuses(ours[1]), statuses(theirs[1])
    assert set(a) == set(b) == {"INBOX", "Lists", "Lists.Old"}, (a, b)
    for name in a:
        assert set(a[name]) == set(b[name]), (name, a[name], b[name])
        for k in ("MESSAGES", "UIDNEXT", "UNSEEN"):
            assert a[name][k] == b[name][k], (name, k, a, b)
    assert a["Lists"]["MESSAGES"] == 2 and a["Lists"]["UNSEEN"] == 1
    s.logout()


def test_delivery_pushes_status_over_socket(env):
    """a file dropped into new/, imapd -d and a second session's APPEND
    and EXPUNGE each reach the waiting client as STATUS, with no command
    sent"""
    env.make_folder("Lists")
    with env.listener() as L:
        s = connect(env, L)
        s.ok("SELECT Lists")
        s.ok("NOTIFY SET (selected (MessageNew MessageExpunge)) "
             "(personal (MessageNew MessageExpunge))")
        s.ok("UNSELECT")
        env.deliver(make_msg("dropped"), folder="Lists")
        name, items = status_of(pushed(s)[0])
        assert name == "Lists", name
        assert items["MESSAGES"] == 1 and items["UIDNEXT"] == 2, items
        assert items["UNSEEN"] == 1, items

        e = env.env(IMAPD_SIEVE=os.path.join(env.dir, "no-script"),
                    IMAPD_SIEVE_STATE=os.path.join(env.dir, "state"))
        p = env.popen([lib.IMAPD, "-d"], stdin=subprocess.PIPE, env=e)
        p.communicate(make_msg("delivered"), timeout=20)
        assert p.returncode == 0
        lines = drain(s)
        got = dict(status_of(x) for x in lines)
        assert got["INBOX"]["MESSAGES"] == 1, lines

        t = env.session()
        lib.append(t, "Lists", make_msg("appended"))
        name, items = status_of(pushed(s)[0])
        assert (name, items["MESSAGES"], items["UIDNEXT"]) == \
            ("Lists", 2, 3), items
        t.ok("SELECT Lists")
        t.ok("UID STORE 1 +FLAGS.SILENT (\\Deleted)")
        t.ok("EXPUNGE")
        name, items = status_of(pushed(s)[0])
        assert (name, items["MESSAGES"], items["UIDNEXT"]) == \
            ("Lists", 1, 3), items
        # a flag change was not asked for: nothing
        t.ok("UID STORE 2 +FLAGS (\\Seen)")
        assert drain(s) == []
        t.logout()
        s.logout()


def test_flagchange_other_folder(env):
    """FlagChange on another folder: UNSEEN, and with CONDSTORE enabled
    HIGHESTMODSEQ and UIDVALIDITY (RFC 5465 5.1)"""
    env.make_folder("Lists")
    env.deliver(make_msg("one"), folder="Lists", flags="")
    with env.listener() as L:
        s = connect(env, L)
        s.ok("ENABLE CONDSTORE")
        u = s.ok("NOTIFY SET STATUS (mailboxes Lists (%s))" % ALL_MSG)
        name, before = status_of(untagged(u, "STATUS")[0])
        t = env.session()
        t.ok("SELECT Lists")
        t.ok("STORE 1 +FLAGS (\\Seen)")
        name, items = status_of(pushed(s)[0])
        assert name == "Lists" and items["UNSEEN"] == 0, items
        assert items["HIGHESTMODSEQ"] > before["HIGHESTMODSEQ"], items
        assert items["UIDVALIDITY"] == before["UIDVALIDITY"], items
        t.ok("STORE 1 +FLAGS ($Label1)")
        name, items = status_of(pushed(s)[0])
        assert "HIGHESTMODSEQ" in items and "MESSAGES" not in items, items
        t.logout()
        s.logout()


def test_own_changes_and_selected_not_as_status(env):
    """the selected mailbox speaks through EXISTS, never STATUS, even
    when PERSONAL names it too"""
    with env.listener() as L:
        s = connect(env, L)
        s.ok("SELECT INBOX")
        s.ok("NOTIFY SET (selected (MessageNew MessageExpunge)) "
             "(personal (MessageNew MessageExpunge))")
        env.deliver(make_msg("to the selected"))
        lines = pushed(s, 1)
        assert re.match(rb"\* 1 EXISTS$", lines[0]), lines
        lines += drain(s)
        assert not untagged(lines, "STATUS"), lines
        s.logout()


# --- the selected mailbox ----------------------------------------------------

FETCH_ATTS = "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"


def test_no_fetch_for_what_the_client_added_itself(env):
    """RFC 5465 5.2: a message this connection APPENDs or COPYs into the
    selected mailbox is told by EXISTS alone, with no FETCH; one a
    delivery agent brings meanwhile still gets its FETCH"""
    env.deliver(make_msg("old"), flags="S")
    with env.listener() as L:
        s = connect(env, L)
        s.ok("SELECT INBOX")
        s.ok("NOTIFY SET (selected (MessageNew %s MessageExpunge))"
             % FETCH_ATTS)
        u, t = lib.append(s, "INBOX", make_msg("mine"))
        assert re.match(rb"\S+ OK", t), t
        u += s.ok("COPY 1 INBOX")
        u += s.ok("NOOP") + drain(s)
        assert lib.exists(u) and lib.exists(u)[-1] == 3, u
        assert not lib.fetches(u), u
        env.deliver(make_msg("theirs"))
        lines = until(s, rb"\* \d+ FETCH")
        f = lib.fetches(lines + drain(s))
        assert list(f) == [4], lines
        assert b"Subject: theirs" in \
            lib.item(f[4], "BODY[HEADER.FIELDS (SUBJECT)]"), f
        s.logout()


def test_messagenew_fetch_in_selected(env):
    """MessageNew with FETCH items: EXISTS, then the FETCH, pushed"""
    env.deliver(make_msg("old"), flags="S")
    with env.listener() as L:
        s = connect(env, L)
        s.ok("SELECT INBOX")
        s.ok("NOTIFY SET (selected (MessageNew %s MessageExpunge))"
             % FETCH_ATTS)
        env.deliver(make_msg("fresh news"))
        lines = pushed(s, 2)
        assert re.match(rb"\* 2 EXISTS$", lines[0]), lines
        lines += drain(s)
        f = lib.fetches(lines)
        assert list(f) == [2], lines
        d = f[2]
        assert d["UID"] == "2", d
        assert b"Subject: fresh news" in \
            lib.item(d, "BODY[HEADER.FIELDS (SUBJECT)]"), d
        # PEEK: the message stays unseen
        assert "\\Seen" not in d["FLAGS"], d
        s.logout()


def test_messagenew_fetch_as_dovecot(env):
    """the same NOTIFY in Dovecot, a second session appending: the same
    EXISTS and FETCH items (Dovecot's at the next NOOP, imapd's pushed)"""
    refimap.deliver(env, 1, make_msg("old"), flags="S")
    md = dovecot_copy(env)
    msg = lib.crlf(make_msg("pushed subject"))
    answers = []
    for kind in ("imapd", "dovecot"):
        if kind == "dovecot":
            s, t = dovecot(env, md), dovecot(env, md)
        else:
            s, t = env.session(), env.session()
        s.ok("SELECT INBOX")
        s.ok("NOTIFY SET (selected (MessageNew %s MessageExpunge))"
             % FETCH_ATTS)
        lib.append(t, "INBOX", msg)
        if kind == "dovecot":
            # Dovecot 2.3 pushes nothing here until a command comes
            lines = s.ok("NOOP")
        else:
            lines = pushed(s, 2) + drain(s)
        lines = [x for x in lines if not x.startswith(b"* 2 RECENT")]
        answers.append(lines)
        t.ok("LOGOUT")
        s.ok("LOGOUT")
    ours, theirs = answers
    assert ours[0] == theirs[0] == b"* 2 EXISTS", answers
    a, b = lib.fetches(ours)[2], lib.fetches(theirs)[2]
    assert a["UID"] == b["UID"] == "2", answers
    assert a["BODY[HEADER.FIELDS (SUBJECT)]"] == \
        b["BODY[HEADER.FIELDS (SUBJECT)]"], answers


def test_selected_expunge_now_or_delayed(env):
    """SELECTED pushes EXPUNGE as it happens; SELECTED-DELAYED holds it
    until a command (here NOOP), but pushes EXISTS"""
    for i in range(3):
        env.deliver(make_msg("m%d" % i), flags="")
    with env.listener() as L:
        s = connect(env, L)
        s.ok("SELECT INBOX")
        s.ok("NOTIFY SET (selected (%s))" % ALL_MSG)
        t = env.session()
        t.ok("SELECT INBOX")
        t.ok("UID STORE 1 +FLAGS.SILENT (\\Deleted)")
        t.ok("EXPUNGE")
        until(s, rb"\* 1 EXPUNGE$")
        t.ok("UID STORE 2 +FLAGS (\\Flagged)")
        lines = pushed(s)
        assert re.match(rb"\* 1 FETCH \(UID 2 FLAGS \(\\Flagged\)\)$",
                        lines[0]), lines

        s.ok("NOTIFY SET (selected-delayed (MessageNew MessageExpunge))")
        t.ok("UID STORE 3 +FLAGS.SILENT (\\Deleted)")
        t.ok("EXPUNGE")
        env.deliver(make_msg("new one"))
        lines = pushed(s)
        assert re.match(rb"\* 3 EXISTS$", lines[0]), lines
        lines += drain(s)
        assert not [x for x in lines if b"EXPUNGE" in x], lines
        # no FlagChange: a flag change stays untold, even at NOOP
        t.ok("UID STORE 2 +FLAGS (\\Seen)")
        u = s.ok("NOOP")
        assert b"* 2 EXPUNGE" in u, u
        assert not lib.fetches(u), u
        t.logout()
        s.logout()


def test_qresync_vanished_and_uidonly(env):
    """with QRESYNC the pushed expunge is VANISHED; under UIDONLY the
    MessageNew FETCH is a UIDFETCH"""
    env.deliver(make_msg("one"), flags="")
    env.deliver(make_msg("two"), flags="")
    with env.listener() as L:
        s = connect(env, L)
        s.ok("ENABLE QRESYNC UIDONLY")
        s.ok("SELECT INBOX")
        s.ok("NOTIFY SET (selected (MessageNew (FLAGS) MessageExpunge))")
        t = env.session()
        t.ok("SELECT INBOX")
        t.ok("UID STORE 1 +FLAGS.SILENT (\\Deleted)")
        t.ok("EXPUNGE")
        assert pushed(s) == [b"* VANISHED 1"]
        env.deliver(make_msg("three"))
        lines = pushed(s) + drain(s)
        lines = [x for x in lines if not x.endswith(b" RECENT")]
        assert lines[0] == b"* 2 EXISTS", lines
        assert re.match(rb"\* UIDFETCH 3 \(FLAGS \((\\Recent)?\)\)$",
                        lines[1]), lines
        t.logout()
        s.logout()


def test_events_during_idle(env):
    """IDLE sends what NOTIFY asked for: another folder's STATUS too"""
    env.make_folder("Lists")
    with env.listener() as L:
        s = connect(env, L)
        s.ok("SELECT INBOX")
        s.ok("NOTIFY SET (selected (MessageNew MessageExpunge)) "
             "(mailboxes Lists (MessageNew MessageExpunge))")
        s.send("i1 IDLE\r\n")
        assert s.line().startswith(b"+ ")
        env.deliver(make_msg("list mail"), folder="Lists")
        name, items = status_of(pushed(s)[0])
        assert name == "Lists" and items["MESSAGES"] == 1, items
        env.deliver(make_msg("inbox mail"))
        assert pushed(s)[0] == b"* 1 EXISTS"
        s.send("DONE\r\n")
        u, t = s.collect("i1")
        assert is_ok(t), t
        s.logout()


def test_no_selected_events(env):
    """NOTIFY without SELECTED: nothing pushed for the selected mailbox,
    not even while idling; EXISTS still comes at the end of a command"""
    with env.listener() as L:
        s = connect(env, L)
        s.ok("SELECT INBOX")
        s.ok("NOTIFY SET (personal (MailboxName))")
        env.deliver(make_msg("quiet"))
        assert drain(s) == []
        assert b"* 1 EXISTS" in s.ok("NOOP")
        s.send("i1 IDLE\r\n")
        assert s.line().startswith(b"+ ")
        env.deliver(make_msg("quiet too"))
        assert drain(s) == []
        s.send("DONE\r\n")
        u, t = s.collect("i1")
        assert is_ok(t) and b"* 2 EXISTS" in u, (u, t)
        s.logout()


# --- names and subscriptions: LIST ----------------------------------------------

def test_mailboxname_create_rename_delete(env):
    """another session's CREATE, RENAME (children follow, untold) and
    DELETE reach the client as LIST; its own CREATE does not"""
    with env.listener() as L:
        s = connect(env, L)
        s.ok("NOTIFY SET (personal (MailboxName))")
        s.ok("CREATE Mine")
        t = env.session()
        t.ok("CREATE Project")
        assert [list_of(x) for x in pushed(s)] == \
            [({"\\hasnochildren"}, "Project", None)]
        t.ok("CREATE Project.Child")
        lines = pushed(s, 2) + drain(s)
        got = [list_of(x) for x in lines]
        # the new folder, and its parent that has a child now; never the
        # session's own CREATE
        assert got == [({"\\hasnochildren"}, "Project.Child", None),
                       ({"\\haschildren"}, "Project", None)], got

        t.ok("RENAME Project Work")
        lines = pushed(s) + drain(s)
        assert [list_of(x) for x in lines] == \
            [({"\\haschildren"}, "Work", "Project")], lines

        t.ok("DELETE Work.Child")
        lines = pushed(s) + drain(s)
        got = [list_of(x) for x in lines]
        assert got == [({"\\nonexistent"}, "Work.Child", None),
                       ({"\\hasnochildren"}, "Work", None)], got

        s.ok("DELETE Mine")
        assert drain(s) == []
        t.logout()
        s.logout()


def test_mailboxname_as_dovecot(env):
    """create, rename and delete by a second session, in imapd and in
    Dovecot: the same names, OLDNAME and \\NonExistent"""
    md = dovecot_copy(env)
    answers = []
    for kind in ("imapd", "dovecot"):
        if kind == "dovecot":
            s, t = dovecot(env, md), dovecot(env, md)
        else:
            s, t = env.session(), env.session()
        s.ok("NOTIFY SET (personal (MailboxName SubscriptionChange))")
        got = []
        for c in ("CREATE Foo", "RENAME Foo Bar", "SUBSCRIBE Bar",
                  "UNSUBSCRIBE Bar", "DELETE Bar"):
            t.ok(c)
            got.append([list_of(x) for x in pushed(s, 1, 8) + drain(s)])
        answers.append(got)
        t.ok("LOGOUT")
        s.ok("LOGOUT")
    ours, theirs = answers
    for a, b in zip(ours, theirs):
        assert [(x[1], x[2]) for x in a] == [(x[1], x[2]) for x in b], \
            answers
        for (fa, _, _), (fb, _, _) in zip(a, b):
            for flag in ("\\subscribed", "\\nonexistent"):
                assert (flag in fa) == (flag in fb), answers


def test_subscription_change(env):
    env.make_folder("News")
    with env.listener() as L:
        s = connect(env, L)
        s.ok("NOTIFY SET (subtree News (SubscriptionChange))")
        t = env.session()
        t.ok("SUBSCRIBE News")
        assert [list_of(x) for x in pushed(s)] == \
            [({"\\hasnochildren", "\\subscribed"}, "News", None)]
        t.ok("UNSUBSCRIBE News")
        assert [list_of(x) for x in pushed(s)] == \
            [({"\\hasnochildren"}, "News", None)]
        # outside the subtree: untold
        t.ok("CREATE Else")
        t.ok("SUBSCRIBE Else")
        assert drain(s) == []
        t.logout()
        s.logout()


def test_subscribed_group_follows_subscriptions(env):
    """SUBSCRIBED is evaluated again when the subscriptions change
    (RFC 5465 6.4)"""
    env.make_folder("Later")
    with env.listener() as L:
        s = connect(env, L)
        s.ok("NOTIFY SET (subscribed (MessageNew MessageExpunge))")
        env.deliver(make_msg("before"), folder="Later")
        assert drain(s) == []
        t = env.session()
        t.ok("SUBSCRIBE Later")
        drain(s)
        env.deliver(make_msg("after"), folder="Later")
        name, items = status_of(pushed(s)[0])
        assert name == "Later" and items["MESSAGES"] == 2, items
        t.logout()
        s.logout()


# --- NOTIFY NONE and overflow ----------------------------------------------

def test_notify_none_stops_events(env):
    env.make_folder("Lists")
    with env.listener() as L:
        s = connect(env, L)
        s.ok("NOTIFY SET (personal (MessageNew MessageExpunge MailboxName))")
        env.deliver(make_msg("one"), folder="Lists")
        assert status_of(pushed(s)[0])[0] == "Lists"
        s.ok("NOTIFY NONE")
        env.deliver(make_msg("two"), folder="Lists")
        t = env.session()
        t.ok("CREATE Other")
        assert drain(s) == []
        assert not untagged(s.ok("NOOP"), "STATUS")
        t.logout()
        s.logout()


def test_notification_overflow(env):
    """PERSONAL over more folders than NOTIFY_FOLDERS_MAX (100) is
    refused with NO [NOTIFICATIONOVERFLOW]; a tree that grows past it
    later ends NOTIFY with an untagged OK [NOTIFICATIONOVERFLOW]"""
    for i in range(98):
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(env.folder_path("F%03d" % i), sub))
    env.fix_owner()
    with env.listener() as L:
        s = connect(env, L)
        s.ok("NOTIFY SET (personal (MessageNew MessageExpunge MailboxName))")
        t = env.session()
        t.ok("CREATE Extra1")
        assert [list_of(x)[1] for x in pushed(s)] == ["Extra1"]
        t.ok("CREATE Extra2")
        lines = pushed(s) + drain(s)
        assert lines and b"[NOTIFICATIONOVERFLOW]" in lines[-1], lines
        assert lines[-1].startswith(b"* OK"), lines
        env.deliver(make_msg("unheard"), folder="F001")
        assert drain(s) == []
        u, tl = s.no("NOTIFY SET (personal (MessageNew MessageExpunge))",
                     "NOTIFICATIONOVERFLOW")
        # a narrower request is fine
        s.ok("NOTIFY SET (mailboxes F001 (MessageNew MessageExpunge))")
        env.deliver(make_msg("heard"), folder="F001")
        assert status_of(pushed(s)[0])[0] == "F001"
        t.logout()
        s.logout()


# --- SEARCH RETURN (UPDATE (items)) ------------------------------------------

def test_search_update_with_fetch_items(env):
    """RFC 5465 7, its own example: a new message that joins an updating
    search comes as EXISTS, FETCH of the items, then ESEARCH ADDTO; one
    that does not match brings EXISTS alone"""
    env.deliver(make_msg("hello", frm="Boss <boss@example.org>"), flags="")
    with env.listener() as L:
        s = connect(env, L)
        s.ok("SELECT INBOX")
        s.ok("NOTIFY SET (selected (MessageNew MessageExpunge))")
        u, t = s.cmd('SEARCH RETURN (COUNT UPDATE (UID BODY.PEEK['
                     'HEADER.FIELDS (TO FROM SUBJECT)])) FROM "boss"',
                     tag="a00")
        assert is_ok(t), t
        assert untagged(u, "ESEARCH") == [b'* ESEARCH (TAG "a00") COUNT 1'], u
        env.deliver(make_msg("good morning", frm="Boss <boss@example.org>"))
        lines = until(s, rb"\* ESEARCH ")
        lines = [x for x in lines if not x.endswith(b" RECENT")]
        assert lines[0] == b"* 2 EXISTS", lines
        f = lib.fetch_items(lines[1])
        assert f[0] == 2 and f[1]["UID"] == "2", lines
        assert b"Subject: good morning" in \
            lib.item(f[1], "BODY[HEADER.FIELDS"), lines
        assert lines[2] == b'* ESEARCH (TAG "a00") ADDTO (0 2)', lines
        env.deliver(make_msg("spam", frm="Other <o@example.org>"))
        assert pushed(s)[0] == b"* 3 EXISTS"
        assert not [x for x in drain(s) if b"FETCH" in x or
                    b"ESEARCH" in x]
        # a bad item is a BAD SEARCH
        assert is_bad(s.cmd('SEARCH RETURN (UPDATE (NOSUCH)) ALL')[1])
        s.logout()
