"""What modern clients rely on beyond RFC 3501: SPECIAL-USE and
CREATE-SPECIAL-USE (RFC 6154), LIST-EXTENDED (RFC 5258), LIST-STATUS
(RFC 5819), the retention of old mail in Trash and Junk, IMAP4rev2
(RFC 9051), UTF8=ACCEPT (RFC 6855), STATUS=SIZE (RFC 8438), APPENDLIMIT
(RFC 7889), MULTIAPPEND (RFC 3502) and OBJECTID (RFC 8474).

The RFC examples are adapted to this server: the hierarchy separator is
"." and INBOX is the Maildir root, so "Fruit/Banana" of an RFC is the
directory ".Fruit.Banana" here.  A parent that has no directory of its own
(".A.B" without ".A") is \\Noselect \\HasChildren."""
import calendar
import glob
import os
import re
import subprocess
import time

import lib
from lib import is_ok, is_no, is_bad
from lib import (CORPUS, IMAPD, ROOT, append, appenduid, caps_of, cmd_lit,
                 crlf, fetches, lit, make_msg, maildir_files, parse_imap,
                 status_items, untagged)

DAY = 86400
OBJECTID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
          "Oct", "Nov", "Dec"]
USE_ATTRS = {"\\ALL", "\\ARCHIVE", "\\DRAFTS", "\\FLAGGED", "\\JUNK",
             "\\SENT", "\\TRASH"}


# --- helpers ------------------------------------------------------------

def config_text():
    for f in ("config.h", "config.def.h"):
        path = os.path.join(ROOT, f)
        if os.path.exists(path):
            with open(path) as fh:
                return fh.read()
    raise AssertionError("no config.h")


def config_table(name):
    """the { "a", "b" } pairs of a static table in config.h, with C
    string escapes undone: [("Sent", "\\Sent"), ...]"""
    text = config_text()
    m = re.search(r"\b%s\[\]\s*=\s*\{(.*?)\n\};" % name, text, re.S)
    assert m, "no %s[] in config.h" % name
    body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
    out = []
    for a, b in re.findall(r'\{\s*"((?:[^"\\]|\\.)*)"\s*,\s*'
                           r'("(?:[^"\\]|\\.)*"|\d+)\s*\}', body):
        a = a.replace("\\\\", "\\")
        b = b[1:-1].replace("\\\\", "\\") if b.startswith('"') else int(b)
        out.append((a, b))
    assert out, name
    return out


def config_define(name):
    m = re.search(r"#define\s+%s\s+(.*?)\s*(/\*.*)?$" % name, config_text(),
                  re.M)
    assert m, name
    return int(eval(re.sub(r"(\d+)U?L*", r"\1", m.group(1)), {}))


def special_names():
    """{folder name: attribute} of config.h's special_use[]"""
    return dict(config_table("special_use"))


def retention_days(use):
    return dict(config_table("retention")).get(use, 0)


def lists(lines):
    """[(attrs upper-case set, name str, extended data or None)] of the
    untagged LIST lines in order; the separator must be "." """
    out = []
    for ln in lines:
        if not ln.startswith(b"* LIST "):
            continue
        toks = parse_imap(ln)
        assert len(toks) in (5, 6) and isinstance(toks[2], list), ln
        assert toks[3] == b".", ln
        name = toks[4]
        name = name.decode() if isinstance(name, bytes) else str(name)
        ext = toks[5] if len(toks) == 6 else None
        out.append((set(str(a).upper() for a in toks[2]), name, ext))
    return out


def by_name(lines):
    """{name: attrs} of the LIST lines; every name listed once"""
    e = lists(lines)
    d = {}
    for attrs, name, _ in e:
        assert name not in d, ("listed twice", name, lines)
        d[name] = attrs
    return d


def childinfo(ext):
    """the CHILDINFO selection criteria of a LIST extended data item"""
    assert isinstance(ext, list) and len(ext) == 2, ext
    key = ext[0].decode() if isinstance(ext[0], bytes) else str(ext[0])
    assert key.upper() == "CHILDINFO" and isinstance(ext[1], list), ext
    return set((x.decode() if isinstance(x, bytes) else str(x)).upper()
               for x in ext[1])


def status_of(line):
    """(name, {ITEM: value}) of one '* STATUS' line; MAILBOXID stays a
    string"""
    toks = parse_imap(line)
    assert len(toks) == 4 and toks[1] == "STATUS" and \
        isinstance(toks[3], list), line
    name = toks[2]
    name = name.decode() if isinstance(name, bytes) else str(name)
    it = toks[3]
    assert len(it) % 2 == 0, line
    d = {}
    for k, v in zip(it[0::2], it[1::2]):
        k = str(k).upper()
        assert k not in d, line
        if isinstance(v, list):
            assert len(v) == 1, line
            d[k] = str(v[0])
        else:
            d[k] = int(v)
    return name, d


def imap_date(text):
    """epoch seconds of an IMAP date-time"""
    if isinstance(text, bytes):
        text = text.decode()
    m = re.match(r"^ ?(\d{1,2})-(\w{3})-(\d{4}) (\d\d):(\d\d):(\d\d) "
                 r"([+-])(\d\d)(\d\d)$", text)
    assert m, text
    d, mon, y, hh, mi, ss, sign, zh, zm = m.groups()
    t = calendar.timegm((int(y), MONTHS.index(mon) + 1, int(d), int(hh),
                         int(mi), int(ss)))
    off = (int(zh) * 60 + int(zm)) * 60
    return t - off if sign == "+" else t + off


def use_attrs(attrs):
    return attrs & USE_ATTRS


def mailboxid_code(text):
    """the id of a [MAILBOXID (id)] response code"""
    m = re.search(rb"\[MAILBOXID \(([^)\s]*)\)\]", text)
    assert m, text
    mid = m.group(1).decode()
    assert OBJECTID.match(mid), mid
    return mid


def selected_mailboxid(lines):
    found = [mailboxid_code(x) for x in lines
             if x.startswith(b"* OK [MAILBOXID ")]
    assert len(found) == 1, lines
    return found[0]


def status_mailboxid(s, name):
    u, t = s.cmd('STATUS %s (MAILBOXID)' % lib.quote(name))
    assert is_ok(t), (name, t)
    found = [status_of(x) for x in u if x.startswith(b"* STATUS ")]
    assert len(found) == 1 and found[0][0] == name, u
    mid = found[0][1]["MAILBOXID"]
    assert OBJECTID.match(mid), mid
    return mid


def emailids(s, seqs="1:*", uid=False):
    """{uid: EMAILID} of the selected mailbox"""
    u = s.ok("%sFETCH %s (UID EMAILID)" % ("UID " if uid else "", seqs))
    out = {}
    for n, d in fetches(u).items():
        v = d["EMAILID"]
        assert isinstance(v, list) and len(v) == 1, d
        assert OBJECTID.match(str(v[0])), v
        out[int(d["UID"])] = str(v[0])
    return out


def crlf_size(data):
    return len(crlf(data))


def corpus_messages(n):
    """n real messages of the shared corpus: plain ones (no bare CR, no
    NUL, under 64 KB), so their RFC822.SIZE is their size with CRLF line
    ends"""
    files = sorted(glob.glob(os.path.join(CORPUS, "**", "*.eml"),
                             recursive=True))
    out = []
    for f in files:
        with open(f, "rb") as fh:
            data = fh.read()
        if not data or len(data) > 65536 or b"\0" in data or \
                re.search(rb"\r(?!\n)", data):
            continue
        out.append(data)
        if len(out) == n:
            return out
    raise lib.Skip("not enough corpus messages in %s" % CORPUS)


def make_dirs(env, folder):
    """a folder directory tree without chowning the whole Maildir (the
    caller calls env.fix_owner() once)"""
    path = env.folder_path(folder)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    open(os.path.join(path, "maildirfolder"), "a").close()
    return path


class LoggedSession(lib.Session):
    """a session whose stderr (imapd logs there with IMAPD_LOG_STDERR)
    goes to a file"""

    def __init__(self, env, logfile):
        self.p = env.popen([IMAPD], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=logfile,
                           env=env.env())
        self.buf = b""
        self.ntag = 0


def logged_session(env, logpath):
    with open(logpath, "ab") as f:
        s = LoggedSession(env, f)
    s.greeting()
    s.ok("LOGIN %s %s" % (env.user, lib.quote(lib.PASSWORD)))
    return s


def rev2_session(env):
    s = env.session()
    u = s.ok("ENABLE IMAP4rev2")
    assert u == [b"* ENABLED IMAP4rev2"], u
    return s


# --- SPECIAL-USE and CREATE-SPECIAL-USE (RFC 6154) ------------------------

def test_special_use_default_names(env):
    table = special_names()
    assert {"Sent", "Drafts", "Trash", "Junk", "Archive", "Sent Messages",
            "Deleted Messages", "Spam"} <= set(table), table
    for name in table:
        env.make_folder(name)
    for name in ("Work", "Sent.2024", "Archived"):
        env.make_folder(name)
    s = env.session()
    caps = caps_of(untagged(s.ok("CAPABILITY"), "CAPABILITY ")[0])
    assert {"SPECIAL-USE", "CREATE-SPECIAL-USE", "LIST-EXTENDED"} <= caps
    everything = set(table) | {"INBOX", "Work", "Sent.2024", "Archived"}

    # plain LIST carries the attributes (RFC 6154 2, example 5.1)
    plain = by_name(s.ok('LIST "" "*"'))
    assert set(plain) == everything, plain
    for name, attrs in plain.items():
        assert "\\NONEXISTENT" not in attrs and "\\NOSELECT" not in attrs, \
            (name, attrs)
        want = {table[name].upper()} if name in table else set()
        assert use_attrs(attrs) == want, (name, attrs)
    assert "\\HASCHILDREN" in plain["Sent"], plain["Sent"]

    # RETURN (SPECIAL-USE): the same names with the same attributes
    ret = by_name(s.ok('LIST "" "*" RETURN (SPECIAL-USE)'))
    assert set(ret) == everything, ret
    for name, attrs in ret.items():
        assert use_attrs(attrs) == use_attrs(plain[name]), (name, attrs)

    # selection option: only the special-use folders (example 5.2, t3)
    sel = by_name(s.ok('LIST (SPECIAL-USE) "" "*"'))
    assert set(sel) == set(table), sel
    for name, attrs in sel.items():
        assert use_attrs(attrs) == {table[name].upper()}, (name, attrs)
        assert "\\NONEXISTENT" not in attrs, (name, attrs)
    # with both, and with a pattern that limits them
    both = by_name(s.ok('LIST (SPECIAL-USE) "" "*" RETURN (SPECIAL-USE)'))
    assert both == sel, (both, sel)
    sent = by_name(s.ok('LIST (SPECIAL-USE) "" "Sent*"'))
    assert set(sent) == {n for n in table if n.startswith("Sent")}, sent
    assert all(use_attrs(a) == {"\\SENT"} for a in sent.values()), sent
    top = by_name(s.ok('LIST "" "%" RETURN (SPECIAL-USE)'))
    assert "Sent.2024" not in top and use_attrs(top["Trash"]) == \
        {"\\TRASH"}, top


def test_special_use_missing_folder_not_listed(env):
    """a configured name without a folder is simply absent, never shown
    as \\NonExistent or \\Noselect"""
    env.make_folder("Sent")
    s = env.session()
    sel = by_name(s.ok('LIST (SPECIAL-USE) "" "*"'))
    assert sel == {"Sent": sel["Sent"]}, sel
    assert use_attrs(sel["Sent"]) == {"\\SENT"}, sel
    assert set(by_name(s.ok('LIST "" "*"'))) == {"INBOX", "Sent"}
    assert s.ok('LIST "" "Trash"') == []


def test_create_special_use_persists(env):
    s = env.session()
    t = s.cmd("CREATE Stash (USE (\\Archive))")[1]
    assert is_ok(t), t
    created_id = mailboxid_code(t)
    assert os.path.isdir(os.path.join(env.maildir, ".Stash", "cur"))
    assert use_attrs(by_name(s.ok('LIST "" "Stash"'))["Stash"]) == \
        {"\\ARCHIVE"}
    t = s.cmd("CREATE Outbox.Done (USE (\\sent))")[1]
    assert is_ok(t), t
    s.logout()

    s2 = env.session()
    d = by_name(s2.ok('LIST "" "*"'))
    assert use_attrs(d["Stash"]) == {"\\ARCHIVE"}, d
    assert use_attrs(d["Outbox.Done"]) == {"\\SENT"}, d
    assert use_attrs(d["Outbox"]) == set() and "\\NOSELECT" in d["Outbox"], d
    sel = by_name(s2.ok('LIST (SPECIAL-USE) "" "*"'))
    assert set(sel) == {"Stash", "Outbox.Done"}, sel
    assert status_mailboxid(s2, "Stash") == created_id
    # a new folder with a configured name gets its attribute too
    s2.ok("CREATE Junk")
    assert use_attrs(by_name(s2.ok('LIST "" Junk'))["Junk"]) == {"\\JUNK"}


def test_create_special_use_refused(env):
    s = env.session()
    u, t = s.cmd("CREATE Odd (USE (\\Bogus))")
    assert is_no(t) and b"[USEATTR]" in t, t
    assert not os.path.exists(os.path.join(env.maildir, ".Odd"))
    assert s.ok('LIST "" "Odd"') == []
    # more than one use: the server may refuse (RFC 6154 3), but then it
    # MUST NOT create the folder
    u, t = s.cmd("CREATE Both (USE (\\Drafts \\Sent))")
    if is_no(t):
        assert b"[USEATTR]" in t, t
        assert not os.path.exists(os.path.join(env.maildir, ".Both"))
    else:
        assert is_ok(t), t
        assert use_attrs(by_name(s.ok('LIST "" Both'))["Both"]) == \
            {"\\DRAFTS", "\\SENT"}
    # syntax errors are BAD, and create nothing
    for c in ("CREATE X1 (USE \\Sent)", "CREATE X2 (USE (\\Sent)",
              "CREATE X3 (FOO (\\Sent))", "CREATE X4 (USE (Sent))"):
        u, t = s.cmd(c)
        assert is_bad(t) or (is_no(t) and b"[USEATTR]" in t), (c, t)
    for n in ("X1", "X2", "X3", "X4"):
        assert not os.path.exists(os.path.join(env.maildir, "." + n)), n
    s.ok("NOOP")


def test_create_special_use_on_configured_name(env):
    """RFC 6154 3: a server that cannot give the folder the use asked for
    "MUST NOT create the mailbox, and MUST respond to the CREATE command
    with a tagged NO response"; when it says OK, LIST shows that use"""
    s = env.session()
    u, t = s.cmd("CREATE Sent (USE (\\Archive))")
    if is_no(t):
        assert b"[USEATTR]" in t, t
        assert not os.path.exists(os.path.join(env.maildir, ".Sent"))
    else:
        assert is_ok(t), t
        d = by_name(s.ok('LIST "" Sent'))
        assert use_attrs(d["Sent"]) == {"\\ARCHIVE"}, d
    # the same use as configured is no conflict
    s.ok("CREATE Junk (USE (\\Junk))")
    assert use_attrs(by_name(s.ok('LIST "" Junk'))["Junk"]) == {"\\JUNK"}
    # an existing folder is not changed by a refused CREATE
    s.ok("CREATE Stash (USE (\\Archive))")
    s.no("CREATE Stash (USE (\\Trash))", "ALREADYEXISTS")
    assert use_attrs(by_name(s.ok('LIST "" Stash'))["Stash"]) == \
        {"\\ARCHIVE"}


def test_create_special_use_empty_list(env):
    """RFC 6154 6: create-param =/ "USE" SP "(" [use-attr *(SP use-attr)]
    ")": an empty list is valid and gives a plain folder"""
    s = env.session()
    s.ok("CREATE Plain (USE ())")
    d = by_name(s.ok('LIST "" Plain'))
    assert use_attrs(d["Plain"]) == set(), d


def test_special_use_follows_rename_and_vanishes_with_delete(env):
    s = env.session()
    s.ok("CREATE Old (USE (\\Archive))")
    s.ok("CREATE Tree.Leaf (USE (\\Drafts))")
    s.ok("RENAME Old New")
    d = by_name(s.ok('LIST "" "*"'))
    assert "Old" not in d and use_attrs(d["New"]) == {"\\ARCHIVE"}, d
    # a renamed parent takes its children's attributes along
    s.ok("RENAME Tree Grove")
    d = by_name(s.ok('LIST "" "*"'))
    assert "Tree.Leaf" not in d, d
    assert use_attrs(d["Grove.Leaf"]) == {"\\DRAFTS"}, d
    s.ok("DELETE New")
    s.ok("CREATE New")
    d = by_name(s.ok('LIST "" "*"'))
    assert use_attrs(d["New"]) == set(), d
    s.ok("DELETE Grove.Leaf")
    s.ok("CREATE Grove.Leaf")
    assert use_attrs(by_name(s.ok('LIST "" "Grove.Leaf"'))["Grove.Leaf"]) \
        == set()
    assert by_name(s.ok('LIST (SPECIAL-USE) "" "*"')) == {}
    # a folder renamed to a configured name takes that name's use
    s.ok("CREATE Bin")
    s.ok("RENAME Bin Trash")
    assert use_attrs(by_name(s.ok('LIST "" Trash'))["Trash"]) == {"\\TRASH"}


# --- LIST-EXTENDED (RFC 5258) -------------------------------------------

def fruit_tree(env):
    """the hierarchy of RFC 5258 example 1 (INBOX is always there)"""
    for f in ("Fruit", "Fruit.Apple", "Fruit.Banana", "Tofu", "Vegetable",
              "Vegetable.Broccoli", "Vegetable.Corn"):
        env.make_folder(f)


def test_list_extended_subscribed(env):
    fruit_tree(env)
    env.make_folder("Fruit.Peach")
    s = env.session()
    for n in ("INBOX", "Fruit.Banana", "Fruit.Peach", "Vegetable",
              "Vegetable.Broccoli"):
        s.ok("SUBSCRIBE %s" % n)
    s.ok("DELETE Fruit.Peach")     # subscribed, then deleted
    # example 2
    e = lists(s.ok('LIST (SUBSCRIBED) "" "*"'))
    d = {n: a for a, n, _ in e}
    assert len(d) == len(e) == 5, e
    assert set(d) == {"INBOX", "Fruit.Banana", "Fruit.Peach", "Vegetable",
                      "Vegetable.Broccoli"}, d
    assert all("\\SUBSCRIBED" in a for a in d.values()), d
    assert "\\NONEXISTENT" in d["Fruit.Peach"], d
    for n in ("INBOX", "Fruit.Banana", "Vegetable", "Vegetable.Broccoli"):
        assert "\\NONEXISTENT" not in d[n] and "\\NOSELECT" not in d[n], d
    assert all(x is None for _, _, x in e), e     # no CHILDINFO
    # example 5: REMOTE changes nothing on a server without remote boxes
    assert by_name(s.ok('LIST (REMOTE SUBSCRIBED) "" "*"')) == d
    # example 6: RETURN (SUBSCRIBED) lists what exists, marked
    r = by_name(s.ok('LIST (REMOTE) "" "*" RETURN (SUBSCRIBED)'))
    assert set(r) == {"INBOX", "Fruit", "Fruit.Apple", "Fruit.Banana",
                      "Tofu", "Vegetable", "Vegetable.Broccoli",
                      "Vegetable.Corn"}, r
    subbed = {n for n, a in r.items() if "\\SUBSCRIBED" in a}
    assert subbed == {"INBOX", "Fruit.Banana", "Vegetable",
                      "Vegetable.Broccoli"}, r
    assert not any("\\NONEXISTENT" in a for a in r.values()), r
    # plain LIST says nothing of subscriptions
    assert not any("\\SUBSCRIBED" in a
                   for a in by_name(s.ok('LIST "" "*"')).values())
    # example 3: RETURN (CHILDREN)
    c = by_name(s.ok('LIST () "" "%" RETURN (CHILDREN)'))
    assert set(c) == {"INBOX", "Fruit", "Tofu", "Vegetable"}, c
    assert "\\HASCHILDREN" in c["Fruit"] and "\\HASCHILDREN" in \
        c["Vegetable"], c
    assert "\\HASNOCHILDREN" in c["Tofu"], c
    assert "\\HASNOCHILDREN" in c["INBOX"] or "\\NOINFERIORS" in c["INBOX"]
    for a in c.values():
        assert not ({"\\HASCHILDREN", "\\HASNOCHILDREN"} <= a), c
    # SUBSCRIBED with a pattern
    p = by_name(s.ok('LIST (SUBSCRIBED) "" "Fruit.*"'))
    assert set(p) == {"Fruit.Banana", "Fruit.Peach"}, p
    # unsubscribing the deleted name removes it
    s.ok("UNSUBSCRIBE Fruit.Peach")
    assert "Fruit.Peach" not in by_name(s.ok('LIST (SUBSCRIBED) "" "*"'))


def test_list_subscribed_none(env):
    """no subscription at all (no subscriptions file): empty answers,
    and (under make check-asan) no undefined behaviour on the empty
    list"""
    env.make_folder("Work")
    s = env.session()
    assert s.ok('LIST (SUBSCRIBED) "" "*"') == []
    assert s.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"') == []
    d = by_name(s.ok('LIST "" "*" RETURN (SUBSCRIBED)'))
    assert set(d) == {"INBOX", "Work"}, d
    assert not any("\\SUBSCRIBED" in a for a in d.values()), d
    assert s.ok('LSUB "" "*"') == []


def foo_tree(env, subscribed):
    """RFC 5258 example 8's hierarchy with some names subscribed"""
    for f in ("Foo", "Foo.Bar", "Foo.Baz", "Moo"):
        env.make_folder(f)
    s = env.session()
    for n in subscribed:
        s.ok("SUBSCRIBE %s" % n)
    return s


def test_list_recursivematch_example8(env):
    # A: only Foo.Baz subscribed
    s = foo_tree(env, ["Foo.Baz"])
    e = lists(s.ok('LIST (SUBSCRIBED) "" "*"'))
    assert [(n, "\\SUBSCRIBED" in a) for a, n, _ in e] == \
        [("Foo.Baz", True)], e
    assert s.ok('LIST (SUBSCRIBED) "" "%"') == []
    e = lists(s.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"'))
    assert len(e) == 1, e
    attrs, name, ext = e[0]
    assert name == "Foo", e
    assert childinfo(ext) == {"SUBSCRIBED"}, e
    assert "\\SUBSCRIBED" not in attrs and "\\NONEXISTENT" not in attrs, e
    # the options in the other order mean the same
    assert lists(s.ok('LIST (RECURSIVEMATCH SUBSCRIBED) "" "%"')) == e
    # A1: Foo subscribed too
    s.ok("SUBSCRIBE Foo")
    e = lists(s.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"'))
    assert len(e) == 1 and e[0][1] == "Foo", e
    assert "\\SUBSCRIBED" in e[0][0], e
    assert childinfo(e[0][2]) == {"SUBSCRIBED"}, e
    # C: Foo and Moo subscribed, none of Foo's children
    s.ok("UNSUBSCRIBE Foo.Baz")
    s.ok("SUBSCRIBE Moo")
    e = lists(s.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" '
                   'RETURN (CHILDREN)'))
    d = {n: (a, x) for a, n, x in e}
    assert set(d) == {"Foo", "Moo"}, e
    assert {"\\HASCHILDREN", "\\SUBSCRIBED"} <= d["Foo"][0], e
    assert {"\\HASNOCHILDREN", "\\SUBSCRIBED"} <= d["Moo"][0], e
    assert d["Foo"][1] is None and d["Moo"][1] is None, e   # no CHILDINFO
    # B: nothing subscribed: nothing listed
    s.ok("UNSUBSCRIBE Foo")
    s.ok("UNSUBSCRIBE Moo")
    assert s.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"') == []


def test_list_recursivematch_nonexistent_parent(env):
    """example 8 A2: the parent is no folder at all, only a subscription
    of its child exists"""
    s = env.session()
    s.ok("CREATE Foo.Baz")
    s.ok("SUBSCRIBE Foo.Baz")
    s.ok("DELETE Foo.Baz")
    e = lists(s.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"'))
    assert len(e) == 1 and e[0][1] == "Foo", e
    assert "\\NONEXISTENT" in e[0][0], e
    assert childinfo(e[0][2]) == {"SUBSCRIBED"}, e


def test_list_recursivematch_example9(env):
    for f in ("foo2", "foo2.bar1", "foo2.bar2", "baz2", "baz2.bar2",
              "baz2.bar22", "baz2.bar222", "eps2", "eps2.mamba", "qux2.bar2"):
        env.make_folder(f)
    s = env.session()
    subs = ["foo2.bar1", "foo2.bar2", "baz2.bar2", "baz2.bar22",
            "baz2.bar222", "eps2", "eps2.mamba", "qux2.bar2"]
    for n in subs:
        s.ok("SUBSCRIBE %s" % n)
    d = by_name(s.ok('LIST (SUBSCRIBED) "" "*"'))
    assert set(d) == set(subs), d
    e = lists(s.ok('LIST (RECURSIVEMATCH SUBSCRIBED) "" "*2"'))
    got = {n: (a, x) for a, n, x in e}
    assert len(got) == len(e), e
    must = {"foo2": False, "foo2.bar2": True, "baz2.bar2": True,
            "baz2.bar22": True, "baz2.bar222": True, "eps2": True,
            "qux2.bar2": True}
    for n, sub in must.items():
        assert n in got, (n, e)
        assert ("\\SUBSCRIBED" in got[n][0]) == sub, (n, e)
    for n in ("foo2", "eps2"):
        assert childinfo(got[n][1]) == {"SUBSCRIBED"}, (n, e)
    for n in ("foo2.bar2", "baz2.bar2", "baz2.bar22", "baz2.bar222",
              "qux2.bar2"):
        assert got[n][1] is None, (n, e)
    # the RFC allows these two as well (redundant CHILDINFO)
    extra = set(got) - set(must)
    assert extra <= {"baz2", "qux2"}, e
    for n in extra:
        assert childinfo(got[n][1]) == {"SUBSCRIBED"}, (n, e)
        assert "\\SUBSCRIBED" not in got[n][0], (n, e)
    assert "foo2.bar1" not in got, e
    # with "*" every subscribed name; the parents foo2 and baz2 are not
    # listed, since all their subscribed children are (RFC 5258 3.5:
    # no redundant CHILDINFO, as Dovecot does); eps2 is subscribed itself
    e = lists(s.ok('LIST (RECURSIVEMATCH SUBSCRIBED) "" "*"'))
    got = {n: (a, x) for a, n, x in e}
    assert set(got) == set(subs), e
    assert childinfo(got["eps2"][1]) == {"SUBSCRIBED"}, e
    for n in subs:
        assert "\\SUBSCRIBED" in got[n][0], (n, e)


def test_list_example10_childinfo_without_children(env):
    s = env.session()
    s.ok("CREATE foo")
    s.ok("CREATE foo.bar")
    s.ok("SUBSCRIBE foo.bar")
    s.ok("DELETE foo.bar")
    e = lists(s.ok('LIST "" ("foo" "foo.*")'))
    assert [n for _, n, _ in e] == ["foo"], e
    e = lists(s.ok('LIST (SUBSCRIBED) "" "foo.*"'))
    assert [n for _, n, _ in e] == ["foo.bar"], e
    assert {"\\SUBSCRIBED", "\\NONEXISTENT"} <= e[0][0], e
    e = lists(s.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" foo '
                   'RETURN (CHILDREN)'))
    assert len(e) == 1 and e[0][1] == "foo", e
    assert "\\HASNOCHILDREN" in e[0][0], e
    assert "\\SUBSCRIBED" not in e[0][0], e
    assert childinfo(e[0][2]) == {"SUBSCRIBED"}, e


def test_list_multiple_patterns(env):
    for f in ("Sent", "Sent.2023", "Sent Items", "Drafts", "Work"):
        env.make_folder(f)
    s = env.session()
    e = lists(s.ok('LIST "" ("INBOX" "Sent*")'))
    names = [n for _, n, _ in e]
    assert sorted(names) == ["INBOX", "Sent", "Sent Items", "Sent.2023"], e
    # example 7: a name matched by two patterns comes once
    e = lists(s.ok('LIST "" ("INBOX" "Drafts" "Sent.%" "Sent" "S*")'))
    names = [n for _, n, _ in e]
    assert len(names) == len(set(names)), names
    assert set(names) == {"INBOX", "Drafts", "Sent", "Sent.2023",
                          "Sent Items"}, names
    # one pattern in parentheses, and the empty name ignored there
    assert [n for _, n, _ in lists(s.ok('LIST "" ("Work")'))] == ["Work"]
    assert [n for _, n, _ in lists(s.ok('LIST "" ("" "Work")'))] == ["Work"]
    # with return options
    e = by_name(s.ok('LIST "" ("Drafts" "Sent") RETURN (SPECIAL-USE '
                     'CHILDREN)'))
    assert set(e) == {"Drafts", "Sent"}, e
    assert {"\\SENT", "\\HASCHILDREN"} <= e["Sent"], e
    assert {"\\DRAFTS", "\\HASNOCHILDREN"} <= e["Drafts"], e
    s.bad('LIST "" ("INBOX" "Sent"')
    s.bad('LIST "" ()')


def test_list_options_syntax(env):
    env.make_folder("Work")
    s = env.session()
    base = by_name(s.ok('LIST "" "*"'))
    # accepted: empty lists, REMOTE, any case, RETURN ()
    for c in ('LIST () "" "*"', 'LIST (REMOTE) "" "*"',
              'LIST "" "*" RETURN ()', 'list (remote) "" "*" return '
              '(children)', 'LIST () "" "*" RETURN (CHILDREN SUBSCRIBED '
              'SPECIAL-USE)'):
        d = by_name(s.ok(c))
        assert set(d) == set(base), (c, d)
    for c in ('LIST (BOGUS) "" "*"', 'LIST (SUBSCRIBED BOGUS) "" "*"',
              'LIST "" "*" RETURN (BOGUS)', 'LIST "" "*" RETURN CHILDREN',
              'LIST "" "*" RETURN (STATUS)', 'LIST "" "*" RETURN '
              '(STATUS (BOGUS))', 'LIST "" "*" RETURN (STATUS ())',
              'LIST "" "*" BOGUS (CHILDREN)', 'LIST (SUBSCRIBED "" "*"',
              'LIST "" "*" RETURN (CHILDREN', 'LIST (RECURSIVEMATCH) "" "*"',
              'LIST (RECURSIVEMATCH REMOTE) "" "*"',
              'LIST (SUBSCRIBED)"" "*" RETURN (CHILDREN) extra'):
        u, t = s.cmd(c)
        assert is_bad(t), (c, t)
        assert not any(x.startswith(b"* LIST") for x in u), (c, u)
    s.ok("NOOP")


def test_list_recursivematch_needs_base_option(env):
    """RFC 5258 6: "If a list-select-mod-opt appears, then a
    list-select-base-opt must also appear"; SPECIAL-USE is a
    list-select-independent-opt (RFC 6154 6), not a base option"""
    s = env.session()
    s.ok("CREATE Projects.Sent (USE (\\Sent))")
    for c in ('LIST (RECURSIVEMATCH) "" "%"',
              'LIST (REMOTE RECURSIVEMATCH) "" "%"',
              'LIST (SPECIAL-USE RECURSIVEMATCH) "" "%"',
              'LIST (RECURSIVEMATCH SPECIAL-USE) "" "*"'):
        u, t = s.cmd(c)
        assert is_bad(t), (c, t, u)
        assert u == [], (c, u)
    e = lists(s.ok('LIST (SPECIAL-USE) "" "*"'))
    assert [n for _, n, _ in e] == ["Projects.Sent"], e


def test_list_extended_empty_pattern(env):
    """RFC 5258 3: an extended LIST MUST NOT treat "" as the request for
    the hierarchy delimiter; with several names "" is ignored"""
    env.make_folder("Work")
    s = env.session()
    assert s.ok('LIST "" ""') == [b'* LIST (\\Noselect) "." ""']
    for c in ('LIST () "" ""', 'LIST "" ("")', 'LIST "" "" RETURN ()',
              'LIST "" "" RETURN (CHILDREN)', 'LIST (SUBSCRIBED) "" ""',
              'LIST (REMOTE) "" ""'):
        u = s.ok(c)
        assert u == [], (c, u)
    assert [n for _, n, _ in lists(s.ok('LIST () "" ("" "Work")'))] == \
        ["Work"]


def test_list_children_and_implied_parents(env):
    # .A.B and .A.C.D without .A and .A.C: implied parents
    for f in ("A.B", "A.C.D", "Solo", "Deep", "Deep.One"):
        env.make_folder(f)
    s = env.session()
    d = by_name(s.ok('LIST "" "*"'))
    assert set(d) == {"INBOX", "A", "A.B", "A.C", "A.C.D", "Solo", "Deep",
                      "Deep.One"}, d
    for n in ("A", "A.C"):
        assert {"\\NOSELECT", "\\HASCHILDREN"} <= d[n], (n, d)
        assert "\\NONEXISTENT" not in d[n], (n, d)
    for n in ("A.B", "A.C.D", "Solo", "Deep.One"):
        assert "\\HASNOCHILDREN" in d[n] and "\\NOSELECT" not in d[n], (n, d)
    assert "\\HASCHILDREN" in d["Deep"] and "\\NOSELECT" not in d["Deep"]
    for a in d.values():
        assert not ({"\\HASCHILDREN", "\\HASNOCHILDREN"} <= a), d
    top = by_name(s.ok('LIST "" "%"'))
    assert set(top) == {"INBOX", "A", "Solo", "Deep"}, top
    assert {"\\NOSELECT", "\\HASCHILDREN"} <= top["A"], top
    mid = by_name(s.ok('LIST "" "A.%"'))
    assert set(mid) == {"A.B", "A.C"}, mid
    assert "\\NOSELECT" in mid["A.C"], mid
    u, t = s.cmd("SELECT A")
    assert is_no(t), t
    u, t = s.cmd("STATUS A (MESSAGES)")
    assert is_no(t), t
    # removing the last child removes the implied parent
    s.ok("DELETE A.B")
    s.ok("DELETE A.C.D")
    d = by_name(s.ok('LIST "" "*"'))
    assert not any(n == "A" or n.startswith("A.") for n in d), d
    s.ok("DELETE Deep.One")
    assert "\\HASNOCHILDREN" in by_name(s.ok('LIST "" Deep'))["Deep"]


# --- LIST-STATUS (RFC 5819) ---------------------------------------------

def check_list_status(lines, items, expect):
    """every LIST line of a selectable folder is followed at once by its
    STATUS line; returns {name: {item: value}}; expect: {name: attrs} to
    check names against"""
    got = {}
    i = 0
    while i < len(lines):
        ln = lines[i]
        assert ln.startswith(b"* LIST "), (i, ln)
        e = lists([ln])[0]
        attrs, name = e[0], e[1]
        noselect = bool(attrs & {"\\NOSELECT", "\\NONEXISTENT"})
        nxt = lines[i + 1] if i + 1 < len(lines) else b""
        if noselect:
            assert not nxt.startswith(b"* STATUS "), (name, nxt)
            got[name] = None
            i += 1
            continue
        assert nxt.startswith(b"* STATUS "), (name, nxt)
        sname, st = status_of(nxt)
        assert sname == name, (sname, name)
        assert set(st) == set(items), (st, items)
        assert name not in got, ("listed twice", name)
        got[name] = st
        i += 2
    assert set(got) == set(expect), (sorted(got), sorted(expect))
    return got


def test_list_status(env):
    msgs = corpus_messages(6)
    env.make_folder("foo")
    env.make_folder("bar.baz")      # bar: \Noselect
    env.make_folder("Trash")
    for m in msgs[:3]:
        env.deliver(m)                        # INBOX: 3 unseen, in new/
    env.deliver(msgs[3], "foo", flags="S")
    env.deliver(msgs[4], "foo")
    env.deliver(msgs[5], "bar.baz", flags="ST")
    s = env.session()
    items = ["MESSAGES", "UNSEEN", "UIDNEXT", "SIZE"]
    u = s.ok('LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN UIDNEXT SIZE))')
    got = check_list_status(u, items, ["INBOX", "foo", "bar", "bar.baz",
                                       "Trash"])
    sz = [crlf_size(m) for m in msgs]
    assert got["INBOX"] == {"MESSAGES": 3, "UNSEEN": 3, "UIDNEXT": 4,
                            "SIZE": sum(sz[:3])}, got
    assert got["foo"] == {"MESSAGES": 2, "UNSEEN": 1, "UIDNEXT": 3,
                          "SIZE": sz[3] + sz[4]}, got
    assert got["bar.baz"] == {"MESSAGES": 1, "UNSEEN": 0, "UIDNEXT": 2,
                              "SIZE": sz[5]}, got
    assert got["Trash"] == {"MESSAGES": 0, "UNSEEN": 0, "UIDNEXT": 1,
                            "SIZE": 0}, got
    assert got["bar"] is None
    # RFC 5819 example A01: "%" and two items
    u = s.ok('LIST "" % RETURN (STATUS (MESSAGES UNSEEN))')
    got2 = check_list_status(u, ["MESSAGES", "UNSEEN"],
                             ["INBOX", "foo", "bar", "Trash"])
    assert got2["foo"] == {"MESSAGES": 2, "UNSEEN": 1}, got2
    # the numbers agree with STATUS, and with other return options
    for name in ("INBOX", "foo", "bar.baz"):
        st = status_items(s.ok("STATUS %s (MESSAGES UNSEEN UIDNEXT SIZE)"
                               % name))
        assert st == got[name], (name, st, got[name])
    u = s.ok('LIST "" "*" RETURN (CHILDREN STATUS (MESSAGES DELETED '
             'UIDVALIDITY) SPECIAL-USE)')
    got3 = check_list_status(u, ["MESSAGES", "DELETED", "UIDVALIDITY"],
                             got)
    assert got3["bar.baz"]["DELETED"] == 1, got3
    assert all(v is None or v["UIDVALIDITY"] > 0 for v in got3.values())
    # STATUS comes along for the special-use selection too
    u = s.ok('LIST (SPECIAL-USE) "" "*" RETURN (STATUS (MESSAGES))')
    assert check_list_status(u, ["MESSAGES"], ["Trash"]) == \
        {"Trash": {"MESSAGES": 0}}
    # with a mailbox selected, and after a change, the numbers follow
    s.ok("SELECT foo")
    s.ok("STORE 2 +FLAGS (\\Seen)")
    u = s.ok('LIST "" foo RETURN (STATUS (UNSEEN MESSAGES))')
    assert check_list_status(u, ["UNSEEN", "MESSAGES"], ["foo"]) == \
        {"foo": {"UNSEEN": 0, "MESSAGES": 2}}


def test_list_status_subscribed_recursivematch(env):
    """RFC 5819 3 example A02: a parent listed only for its CHILDINFO
    does not meet the selection criteria and gets no STATUS"""
    env.make_folder("foo")
    env.make_folder("foo.bar")
    env.deliver(make_msg("a"), "foo")
    env.deliver(make_msg("b"))
    s = env.session()
    s.ok("SUBSCRIBE INBOX")
    s.ok("SUBSCRIBE foo.bar")
    u = s.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" % RETURN (STATUS '
             '(MESSAGES))')
    assert len(u) == 3, u
    e = lists(u[:1])
    assert e[0][1] == "INBOX" and "\\SUBSCRIBED" in e[0][0], u
    assert status_of(u[1]) == ("INBOX", {"MESSAGES": 1}), u
    e = lists(u[2:])
    assert e[0][1] == "foo" and "\\SUBSCRIBED" not in e[0][0], u
    assert childinfo(e[0][2]) == {"SUBSCRIBED"}, u
    # the subscribed child itself does get one
    u = s.ok('LIST (SUBSCRIBED) "" "*" RETURN (STATUS (MESSAGES))')
    got = check_list_status(u, ["MESSAGES"], ["INBOX", "foo.bar"])
    assert got["foo.bar"] == {"MESSAGES": 0}, got


def test_list_status_subscribed_nonexistent(env):
    s = env.session()
    s.ok("CREATE Gone")
    s.ok("SUBSCRIBE Gone")
    s.ok("DELETE Gone")
    u = s.ok('LIST (SUBSCRIBED) "" "*" RETURN (STATUS (MESSAGES))')
    e = lists(u)
    assert len(u) == 1 and e[0][1] == "Gone", u
    assert {"\\NONEXISTENT", "\\SUBSCRIBED"} <= e[0][0], u


def test_list_status_many_folders(env):
    """a few hundred folders made on disk, listed with their STATUS in
    one command"""
    expect = {"INBOX": (0, 0, 0)}
    names = []
    for p in range(20):
        names.append("Proj%02d" % p)
        names.extend("Proj%02d.Sub%02d" % (p, c) for c in range(14))
    for i, name in enumerate(names):
        make_dirs(env, name)
    for n in range(5):                       # an implied parent's family
        make_dirs(env, "Ghost.Child%d" % n)
    env.fix_owner()
    seq = 0
    for i, name in enumerate(names + ["Ghost.Child%d" % n
                                      for n in range(5)]):
        count = i % 4
        unseen = size = 0
        for k in range(count):
            seq += 1
            data = make_msg("m%d" % seq, "body %d\n" % seq)
            seen = k % 2 == 0
            env.deliver(data, name, flags="S" if seen else None)
            unseen += not seen
            size += crlf_size(data)
        expect[name] = (count, unseen, size)
    assert len(names) == 300
    s = env.session()
    t0 = time.time()
    u = s.ok('LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN UIDNEXT SIZE))')
    took = time.time() - t0
    t0 = time.time()
    again = s.ok('LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN UIDNEXT '
                 'SIZE))')
    print("LIST-STATUS of %d folders: %.3f s the first time (UIDs "
          "assigned), %.3f s the second" % (len(expect), took,
                                            time.time() - t0))
    assert again == u
    got = check_list_status(u, ["MESSAGES", "UNSEEN", "UIDNEXT", "SIZE"],
                            list(expect) + ["Ghost"])
    assert got["Ghost"] is None
    for name, (count, unseen, size) in expect.items():
        assert got[name] == {"MESSAGES": count, "UNSEEN": unseen,
                             "UIDNEXT": count + 1, "SIZE": size}, \
            (name, got[name], expect[name])


# --- retention ----------------------------------------------------------

def test_retention_trash_and_junk(env):
    days = retention_days("\\Trash")
    assert days > 0 and retention_days("\\Junk") > 0
    old = time.time() - (days + 10) * DAY
    recent = time.time() - (days - 1) * DAY
    paths = {}
    for box in ("Trash", "Junk", "Spam", "Deleted Messages", "Work"):
        paths[box] = (env.deliver(make_msg("old " + box), box, flags="S",
                                  mtime=old),
                      env.deliver(make_msg("old2 " + box), box, mtime=old),
                      env.deliver(make_msg("new " + box), box, flags="",
                                  mtime=recent))
    log = os.path.join(env.dir, "imapd.log")
    s = logged_session(env, log)
    # EXAMINE leaves everything
    for box in ("Trash", "Junk"):
        u = s.ok('EXAMINE "%s"' % box)
        assert b"* 3 EXISTS" in u, u
    assert all(len(maildir_files(env.folder_path(b))) == 3
               for b in paths), "EXAMINE removed mail"
    for box in ("Trash", "Junk", "Spam", "Deleted Messages"):
        u = s.ok('SELECT "%s"' % box)
        assert b"* 1 EXISTS" in u, (box, u)
        f = fetches(s.ok("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
        assert list(f) == [1], f
        subj = [v for k, v in f[1].items() if k.startswith("BODY[")][0]
        assert subj.strip() == b"Subject: new " + box.encode(), subj
        left = maildir_files(env.folder_path(box))
        assert len(left) == 1, (box, left)
        assert os.path.basename(paths[box][2]).split(":")[0] in left
    # a folder without a special use keeps its old mail
    u = s.ok("SELECT Work")
    assert b"* 3 EXISTS" in u, u
    assert len(maildir_files(env.folder_path("Work"))) == 3
    s.logout()
    with open(log, "rb") as f:
        text = f.read()
    for box in ("Trash", "Junk", "Spam", "Deleted Messages"):
        assert re.search(rb"expired 2 messages.*" + box.encode(), text), \
            (box, text)
    assert b"Work" not in text, text


def test_retention_created_use_and_status(env):
    """a folder made \\Trash by CREATE expires too; STATUS and LIST do
    not expunge"""
    days = retention_days("\\Trash")
    s = env.session()
    s.ok("CREATE Bin (USE (\\Trash))")
    s.ok("CREATE Keep (USE (\\Archive))")
    old = time.time() - (days + 1) * DAY
    for box in ("Bin", "Keep"):
        env.deliver(make_msg("old"), box, flags="S", mtime=old)
        env.deliver(make_msg("fresh"), box)
    s.ok('LIST "" "*" RETURN (STATUS (MESSAGES))')
    assert status_items(s.ok("STATUS Bin (MESSAGES)"))["MESSAGES"] == 2
    u = s.ok("SELECT Bin")
    assert b"* 1 EXISTS" in u, u
    assert status_items(s.ok("STATUS Bin (MESSAGES)"))["MESSAGES"] == 1
    u = s.ok("SELECT Keep")
    assert b"* 2 EXISTS" in u, u
    # an old date given by APPEND counts as well
    u, t = append(s, "Bin", make_msg("appended old"),
                  date="01-Jan-2001 00:00:00 +0000")
    assert is_ok(t), t
    u = s.ok("SELECT Bin")
    assert b"* 1 EXISTS" in u, u


# --- IMAP4rev2 (RFC 9051) -----------------------------------------------

def test_rev2_enable_and_select(env):
    env.deliver(make_msg("one"))
    env.deliver(make_msg("two"), flags="S")
    env.make_folder("Other")
    s = env.session()
    caps = caps_of(untagged(s.ok("CAPABILITY"), "CAPABILITY ")[0])
    assert {"IMAP4REV2", "IMAP4REV1", "ENABLE"} <= caps, caps
    u = s.ok("ENABLE IMAP4rev2")
    assert u == [b"* ENABLED IMAP4rev2"], u
    # enabling again reports nothing new
    u = s.ok("ENABLE IMAP4rev2")
    assert u in ([b"* ENABLED"], [b"* ENABLED "]), u
    u = s.ok("SELECT INBOX")
    l = [x for x in u if x.startswith(b"* LIST ")]
    assert len(l) == 1, u
    assert lists(l)[0][1] == "INBOX", l
    assert not any(re.match(rb"\* \d+ RECENT$", x) for x in u), u
    assert not any(b"[UNSEEN " in x for x in u), u
    assert b"* 2 EXISTS" in u, u
    for code in (b"[UIDVALIDITY ", b"[UIDNEXT ", b"[PERMANENTFLAGS "):
        assert sum(code in x for x in u) == 1, (code, u)
    assert sum(x.startswith(b"* FLAGS (") for x in u) == 1, u
    # selecting while selected: [CLOSED] first
    u = s.ok("EXAMINE Other")
    assert u[0].startswith(b"* OK [CLOSED]"), u
    assert lists([x for x in u if x.startswith(b"* LIST ")])[0][1] == \
        "Other"
    u = s.ok("SELECT inbox")
    assert u[0].startswith(b"* OK [CLOSED]"), u
    assert lists([x for x in u if x.startswith(b"* LIST ")])[0][1] == \
        "INBOX"
    # a SELECT that fails still closes the mailbox (RFC 9051 6.3.2)
    u, t = s.cmd("SELECT Missing")
    assert is_no(t), t
    assert u == [b"* OK [CLOSED] Previous mailbox closed"] or \
        (len(u) == 1 and u[0].startswith(b"* OK [CLOSED]")), u
    u, t = s.cmd("FETCH 1 (FLAGS)")
    assert is_bad(t), t


def test_rev2_no_recent_and_uid_in_unsolicited_fetch(env):
    env.deliver(make_msg("fresh"))               # in new/: \Recent
    s = rev2_session(env)
    s.ok("SELECT INBOX")
    d = fetches(s.ok("FETCH 1 (FLAGS)"))[1]
    assert "\\Recent" not in [str(f) for f in d["FLAGS"]], d
    d = fetches(s.ok("UID FETCH 1:* (FLAGS)"))[1]
    assert "\\Recent" not in [str(f) for f in d["FLAGS"]], d
    u = s.ok("STORE 1 +FLAGS (\\Flagged)")
    d = fetches(u)[1]
    assert set(str(f) for f in d["FLAGS"]) == {"\\Flagged"}, u
    # another session changes the flags and delivers: no RECENT, and the
    # unsolicited FETCH names the UID
    s2 = env.session()
    s2.ok("SELECT INBOX")
    s2.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
    env.deliver(make_msg("later"))
    u = s.ok("NOOP")
    f = fetches(u)
    assert 1 in f and int(f[1]["UID"]) == 1, u
    assert set(str(x) for x in f[1]["FLAGS"]) == {"\\Flagged", "\\Seen"}, u
    assert b"* 2 EXISTS" in u, u
    assert not any(x.endswith(b" RECENT") for x in u), u
    d = fetches(s.ok("FETCH 2 (FLAGS)"))[2]
    assert list(d["FLAGS"]) == [], d


def test_rev2_search_answers_esearch(env):
    s = rev2_session(env)
    for i in range(5):
        u, t = append(s, "INBOX", make_msg("msg %d" % i),
                      flags=["\\Seen"] if i < 2 else None)
        assert is_ok(t), t
    s.ok("SELECT INBOX")
    s.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    s.ok("EXPUNGE")             # UIDs 2..5 are now 1..4
    tag = s.tag()
    u, t = s.cmd("SEARCH ALL", tag=tag)
    assert is_ok(t), t
    assert u == [b'* ESEARCH (TAG "%s") ALL 1:4' % tag.encode()], u
    tag = s.tag()
    u, t = s.cmd("UID SEARCH UNSEEN", tag=tag)
    assert u == [b'* ESEARCH (TAG "%s") UID ALL 3:5' % tag.encode()], u
    tag = s.tag()
    u, t = s.cmd("SEARCH SUBJECT nothing-like-this", tag=tag)
    assert is_ok(t), t
    assert u == [b'* ESEARCH (TAG "%s")' % tag.encode()], u
    tag = s.tag()
    u, t = s.cmd("UID SEARCH SUBJECT nothing-like-this", tag=tag)
    assert u == [b'* ESEARCH (TAG "%s") UID' % tag.encode()], u
    tag = s.tag()
    u, t = s.cmd("SEARCH RETURN (MIN MAX COUNT) SEEN", tag=tag)
    assert u == [b'* ESEARCH (TAG "%s") MIN 1 MAX 1 COUNT 1'
                 % tag.encode()], u
    assert not any(x.startswith(b"* SEARCH") for x in u)


def test_rev2_status_deleted_and_size(env):
    msgs = corpus_messages(4)
    s = rev2_session(env)
    for i, m in enumerate(msgs):
        u, t = append(s, "INBOX", m, flags=["\\Deleted"] if i % 2 else None)
        assert is_ok(t), t
    u = s.ok("STATUS INBOX (MESSAGES DELETED SIZE UIDNEXT)")
    st = status_items(u, "INBOX")
    assert st == {"MESSAGES": 4, "DELETED": 2, "UIDNEXT": 5,
                  "SIZE": sum(crlf_size(m) for m in msgs)}, st


def test_rev2_utf8_mailbox_names(env):
    s = rev2_session(env)
    s.ok('CREATE "Entwürfe"')
    assert os.path.isdir(os.path.join(env.maildir, ".Entw&APw-rfe", "cur"))
    d = by_name(s.ok('LIST "" "*"'))
    assert set(d) == {"INBOX", "Entwürfe"}, d
    assert set(by_name(s.ok('LIST "" "Entw*"'))) == {"Entwürfe"}
    u = s.ok('SELECT "Entwürfe"')
    assert lists([x for x in u if x.startswith(b"* LIST ")])[0][1] == \
        "Entwürfe", u
    st = [status_of(x) for x in s.ok('STATUS "Entwürfe" (MESSAGES)')
          if x.startswith(b"* STATUS")]
    assert st == [("Entwürfe", {"MESSAGES": 0})], st
    s.ok('RENAME "Entwürfe" "Брудершафт.日本"')
    assert os.path.isdir(os.path.join(
        env.maildir, ".&BBEEQARDBDQENQRABEgEMAREBEI-.&ZeVnLA-"))
    d = by_name(s.ok('LIST "" "*"'))
    assert set(d) == {"INBOX", "Брудершафт", "Брудершафт.日本"}, d


# --- UTF8=ACCEPT (RFC 6855) ---------------------------------------------

def test_utf8_accept_names(env):
    env.make_folder("Entw&APw-rfe")
    s = env.session()
    caps = caps_of(untagged(s.ok("CAPABILITY"), "CAPABILITY ")[0])
    assert "UTF8=ACCEPT" in caps, caps
    # before ENABLE: modified UTF-7 both ways
    assert set(by_name(s.ok('LIST "" "*"'))) == {"INBOX", "Entw&APw-rfe"}
    s.ok('STATUS "Entw&APw-rfe" (MESSAGES)')
    u = s.ok("ENABLE UTF8=ACCEPT")
    assert u == [b"* ENABLED UTF8=ACCEPT"], u
    assert set(by_name(s.ok('LIST "" "*"'))) == {"INBOX", "Entwürfe"}
    s.ok('SELECT "Entwürfe"')
    s.ok('CREATE "Ärger"')
    assert os.path.isdir(os.path.join(env.maildir, ".&AMQ-rger"))
    # with UTF-8 names "&" is just a character
    s.ok('CREATE "Tom&Jerry"')
    assert set(by_name(s.ok('LIST "" "*"'))) == {
        "INBOX", "Entwürfe", "Ärger", "Tom&Jerry"}
    assert os.path.isdir(os.path.join(env.maildir, ".Tom&-Jerry"))
    # invalid UTF-8 is refused and creates nothing
    before = sorted(os.listdir(env.maildir))
    tag = s.tag()
    s.send(tag.encode() + b' CREATE "bad\xff\xfename"\r\n')
    u, t = s.collect(tag)
    assert is_bad(t) or is_no(t), t
    assert sorted(os.listdir(env.maildir)) == before
    # a literal name works as well
    u, t = cmd_lit(s, "CREATE ", lit("Grüße".encode()))
    assert is_ok(t), t
    assert os.path.isdir(os.path.join(env.maildir, ".Gr&APwA3w-e"))
    # a second session without ENABLE sees modified UTF-7
    s2 = env.session()
    assert set(by_name(s2.ok('LIST "" "*"'))) == {
        "INBOX", "Entw&APw-rfe", "&AMQ-rger", "Tom&-Jerry", "Gr&APwA3w-e"}


def test_utf8_accept_append(env):
    msg = crlf("From: Jörg <jörg@bücher.example>\nTo: a@example.org\n"
               "Subject: Grüße aus Köln\nDate: Mon, 7 Feb 1994 21:52:25 "
               "-0800\nMessage-ID: <1@bücher.example>\n\nHallo Jörg\n")
    s = env.session()
    s.ok("ENABLE UTF8=ACCEPT")
    u, t = cmd_lit(s, "APPEND INBOX UTF8 (~", lit(msg), ")")
    assert is_ok(t), t
    uid1 = appenduid(t)[1]
    # with flags and a date, and a non-synchronizing literal
    u, t = cmd_lit(s, 'APPEND INBOX (\\Seen) "02-Mar-2020 10:00:00 +0000" '
                   'UTF8 (~', lit(msg, plus=True), ")")
    assert is_ok(t), t
    uid2 = appenduid(t)[1]
    assert uid2 > uid1
    s.ok("SELECT INBOX")
    f = fetches(s.ok("UID FETCH %d:%d (BODY.PEEK[] FLAGS INTERNALDATE "
                     "RFC822.SIZE)" % (uid1, uid2)))
    assert len(f) == 2, f
    for n in (1, 2):
        assert f[n]["BODY[]"] == msg, f[n]
        assert int(f[n]["RFC822.SIZE"]) == len(msg)
    assert [str(x) for x in f[2]["FLAGS"]] == ["\\Seen"], f[2]
    assert imap_date(f[2]["INTERNALDATE"]) == \
        imap_date("02-Mar-2020 10:00:00 +0000"), f[2]
    # broken UTF8 syntax: BAD, nothing stored
    u, t = cmd_lit(s, "APPEND INBOX UTF8 (", lit(msg), ")")
    assert is_bad(t), t
    u, t = cmd_lit(s, "APPEND INBOX UTF8 ~", lit(msg))
    assert is_bad(t), t
    assert status_items(s.ok("STATUS INBOX (MESSAGES)"))["MESSAGES"] == 2


# --- STATUS=SIZE, APPENDLIMIT ---------------------------------------------

def test_status_size_and_deleted(env):
    msgs = corpus_messages(12)
    for i, m in enumerate(msgs):
        env.deliver(m, flags=("T" if i % 3 == 0 else "S") if i % 2 else None)
    s = env.session()
    caps = caps_of(untagged(s.ok("CAPABILITY"), "CAPABILITY ")[0])
    assert "STATUS=SIZE" in caps, caps
    st = status_items(s.ok("STATUS INBOX (SIZE DELETED MESSAGES)"), "INBOX")
    s.ok("EXAMINE INBOX")
    f = fetches(s.ok("FETCH 1:* (RFC822.SIZE FLAGS)"))
    assert len(f) == len(msgs)
    total = sum(int(d["RFC822.SIZE"]) for d in f.values())
    assert total == sum(crlf_size(m) for m in msgs)
    deleted = sum("\\Deleted" in [str(x) for x in d["FLAGS"]]
                  for d in f.values())
    assert st == {"SIZE": total, "DELETED": deleted,
                  "MESSAGES": len(msgs)}, (st, total, deleted)
    assert deleted == 2
    # changes show at once
    s.ok("SELECT INBOX")
    s.ok("STORE 1:* +FLAGS.SILENT (\\Deleted)")
    s.ok("STORE 1 -FLAGS.SILENT (\\Deleted)")
    s.ok("EXPUNGE")
    one = int(fetches(s.ok("FETCH 1 RFC822.SIZE"))[1]["RFC822.SIZE"])
    st = status_items(s.ok("STATUS INBOX (SIZE DELETED MESSAGES)"))
    assert st == {"SIZE": one, "DELETED": 0, "MESSAGES": 1}, st
    st = status_items(s.ok("STATUS INBOX (SIZE)"))
    assert st == {"SIZE": one}, st


def test_appendlimit(env):
    limit = config_define("APPEND_MAX")
    s = env.session()
    caps = caps_of(untagged(s.ok("CAPABILITY"), "CAPABILITY ")[0])
    assert "APPENDLIMIT=%d" % limit in caps, caps
    assert len([c for c in caps if c.startswith("APPENDLIMIT")]) == 1, caps
    tag = s.tag()
    s.send("%s APPEND INBOX (\\Seen) {%d}\r\n" % (tag, limit + 1))
    ln = s.line()
    assert ln.startswith(tag.encode() + b" NO [TOOBIG]"), ln
    u, t = append(s, "INBOX", make_msg("fits"))
    assert is_ok(t), t
    assert status_items(s.ok("STATUS INBOX (MESSAGES)"))["MESSAGES"] == 1


def test_appendlimit_status_item(env):
    """RFC 7889 3.1, 3.2 and 5: status-att =/ "APPENDLIMIT"; "The IMAP
    server MUST recognize the APPENDLIMIT attribute and include an
    appropriate STATUS response for each matching mailbox" """
    limit = config_define("APPEND_MAX")
    env.make_folder("Work")
    s = env.session()
    u = s.ok("STATUS INBOX (APPENDLIMIT)")
    assert u == [b'* STATUS "INBOX" (APPENDLIMIT %d)' % limit] or \
        u == [b"* STATUS INBOX (APPENDLIMIT %d)" % limit], u
    u = s.ok('LIST "" % RETURN (STATUS (APPENDLIMIT MESSAGES))')
    got = check_list_status(u, ["APPENDLIMIT", "MESSAGES"],
                            ["INBOX", "Work"])
    assert all(v == {"APPENDLIMIT": limit, "MESSAGES": 0}
               for v in got.values()), got


# --- MULTIAPPEND (RFC 3502) ---------------------------------------------

def test_multiappend(env):
    env.make_folder("Box")
    s = env.session()
    caps = caps_of(untagged(s.ok("CAPABILITY"), "CAPABILITY ")[0])
    assert "MULTIAPPEND" in caps, caps
    m = [make_msg("multi %d" % i, "text %d\n" % i, eol="\r\n")
         for i in range(4)]
    u, t = cmd_lit(s, "APPEND Box (\\Seen) \"01-Jan-2020 10:00:00 +0000\" ",
                   lit(m[0]), " (\\Flagged $Work) ", lit(m[1], plus=True),
                   ' "15-Feb-2021 23:59:59 -0500" ', lit(m[2]), " ",
                   lit(m[3]))
    assert is_ok(t), t
    code = re.search(rb"\[APPENDUID (\d+) (\d+):(\d+)\]", t)
    assert code, t
    uv, a, b = (int(x) for x in code.groups())
    assert b - a == 3, t
    s.ok("SELECT Box")
    assert "%d" % uv in s.ok("STATUS Box (UIDVALIDITY)")[0].decode()
    f = fetches(s.ok("UID FETCH %d:%d (FLAGS INTERNALDATE BODY.PEEK[])"
                     % (a, b)))
    assert sorted(f) == [1, 2, 3, 4], f
    assert [int(f[n]["UID"]) for n in (1, 2, 3, 4)] == list(range(a, b + 1))
    for n in (1, 2, 3, 4):
        assert f[n]["BODY[]"] == m[n - 1], (n, f[n])
    fl = [set(str(x) for x in f[n]["FLAGS"]) - {"\\Recent"}
          for n in (1, 2, 3, 4)]
    assert fl == [{"\\Seen"}, {"\\Flagged", "$Work"}, set(), set()], fl
    # the same instants (a server may show them in another zone)
    assert imap_date(f[1]["INTERNALDATE"]) == \
        imap_date("01-Jan-2020 10:00:00 +0000"), f[1]
    assert imap_date(f[3]["INTERNALDATE"]) == \
        imap_date("15-Feb-2021 23:59:59 -0500"), f[3]
    for n in (2, 4):
        assert abs(imap_date(f[n]["INTERNALDATE"]) - time.time()) < 300, \
            f[n]
    # one message is an ordinary APPEND
    u, t = append(s, "Box", make_msg("single"))
    assert appenduid(t) == (uv, b + 1), t


def multi_refused(env, s, parts, box="Box"):
    """a MULTIAPPEND that must store nothing: the mailbox and its tmp/
    stay as they were, and the session goes on"""
    before = maildir_files(env.folder_path(box))
    u, t = cmd_lit(s, *parts)
    assert is_no(t) or is_bad(t), t
    assert maildir_files(env.folder_path(box)) == before
    assert os.listdir(os.path.join(env.folder_path(box), "tmp")) == []
    assert status_items(s.ok("STATUS %s (MESSAGES)" % box))["MESSAGES"] == \
        len(before)
    s.ok("NOOP")
    return t


def test_multiappend_all_or_nothing(env):
    limit = config_define("APPEND_MAX")
    env.make_folder("Box")
    env.deliver(make_msg("already here"), "Box")
    s = env.session()
    s.ok("SELECT Box")
    m1, m2 = make_msg("first"), make_msg("second")
    # an invalid system flag on the second message
    t = multi_refused(env, s, ["APPEND Box ", lit(m1), " (\\Bogus) ",
                               lit(m2)])
    assert is_bad(t), t
    # a bad date on the third
    multi_refused(env, s, ["APPEND Box ", lit(m1), " ", lit(m2, plus=True),
                           ' "31-Foo-2020 10:00:00 +0000" ', lit(m1)])
    # a literal beyond APPENDLIMIT as the third
    tag = s.tag()
    s.send("%s APPEND Box (\\Seen) {%d+}\r\n" % (tag, len(m1)))
    s.send(m1 + b" {%d}\r\n" % len(m2))
    ln = s.line()
    assert ln.startswith(b"+"), ln
    s.send(m2 + b" {%d}\r\n" % (limit + 1))
    u, t = s.collect(tag)
    assert not any(x.startswith(b"+") for x in u), u
    assert t.startswith(tag.encode() + b" NO [TOOBIG]"), t
    assert len(maildir_files(env.folder_path("Box"))) == 1
    assert os.listdir(os.path.join(env.folder_path("Box"), "tmp")) == []
    # garbage after the last message
    multi_refused(env, s, ["APPEND Box ", lit(m1), " ", lit(m2), " junk"])
    # the selected session heard of no new message
    u = s.ok("NOOP")
    assert not any(x.endswith(b" EXISTS") for x in u), u
    # and a good one still works afterwards
    u, t = cmd_lit(s, "APPEND Box ", lit(m1), " ", lit(m2))
    assert is_ok(t), t
    u += s.ok("NOOP")
    assert b"* 3 EXISTS" in u, u


def test_multiappend_interrupted(env):
    """the client goes away in the middle of the second message: the
    first is not stored either, and tmp/ is left clean"""
    env.make_folder("Box")
    s = env.session()
    m1, m2 = make_msg("whole"), make_msg("cut", "x" * 5000 + "\n")
    tag = s.tag()
    s.send("%s APPEND Box {%d}\r\n" % (tag, len(m1)))
    assert s.line().startswith(b"+")
    s.send(m1 + b" (\\Seen) {%d}\r\n" % len(m2))
    assert s.line().startswith(b"+")
    s.send(m2[:1000])
    s.p.stdin.close()
    s.p.wait(timeout=10)
    assert maildir_files(env.folder_path("Box")) == {}
    assert os.listdir(os.path.join(env.folder_path("Box"), "tmp")) == []
    s2 = env.session()
    assert status_items(s2.ok("STATUS Box (MESSAGES)"))["MESSAGES"] == 0


def test_multiappend_trycreate(env):
    s = env.session()
    tag = s.tag()
    m = make_msg("x")
    s.send("%s APPEND Missing {%d}\r\n" % (tag, len(m)))
    ln = s.line()
    assert ln.startswith(tag.encode() + b" NO [TRYCREATE]"), ln
    s.ok("NOOP")
    # with LITERAL+ the messages arrive anyway and are thrown away
    u, t = cmd_lit(s, "APPEND Missing ", lit(m, plus=True), " ",
                   lit(m, plus=True))
    assert is_no(t) and b"[TRYCREATE]" in t, t
    assert not os.path.exists(os.path.join(env.maildir, ".Missing"))
    s.ok("NOOP")


# --- OBJECTID (RFC 8474) ------------------------------------------------

def test_objectid_mailboxid(env):
    s = env.session()
    caps = caps_of(untagged(s.ok("CAPABILITY"), "CAPABILITY ")[0])
    assert "OBJECTID" in caps, caps
    u, t = s.cmd("CREATE Projects")
    assert is_ok(t), t
    created = mailboxid_code(t)
    u, t = s.cmd("CREATE Other")
    other = mailboxid_code(t)
    assert other != created
    sel = selected_mailboxid(s.ok("SELECT Projects"))
    assert sel == created
    assert selected_mailboxid(s.ok("EXAMINE Projects")) == created
    assert status_mailboxid(s, "Projects") == created
    inbox = selected_mailboxid(s.ok("SELECT INBOX"))
    assert status_mailboxid(s, "INBOX") == inbox
    assert len({inbox, created, other}) == 3
    # the same from another session
    s2 = env.session()
    assert status_mailboxid(s2, "Projects") == created
    # RENAME keeps it (RFC 8474 4.2), for children too
    s.ok("CREATE Projects.Sub")
    sub = status_mailboxid(s, "Projects.Sub")
    s.ok("RENAME Projects Done")
    assert status_mailboxid(s, "Done") == created
    assert status_mailboxid(s, "Done.Sub") == sub
    assert selected_mailboxid(s.ok("SELECT Done")) == created
    # a new folder under an old name gets a new one
    s.ok("UNSELECT")
    s.ok("DELETE Done.Sub")
    s.ok("DELETE Done")
    u, t = s.cmd("CREATE Done")
    again = mailboxid_code(t)
    assert again != created, again
    assert status_mailboxid(s, "Done") == again
    # with other STATUS items
    u = s.ok("STATUS Done (MESSAGES MAILBOXID UIDNEXT)")
    name, st = status_of(untagged(u, "STATUS")[0])
    assert st == {"MESSAGES": 0, "MAILBOXID": again, "UIDNEXT": 1}, st


def test_objectid_emailid(env):
    s = env.session()
    s.ok("CREATE Dest")
    s.ok("CREATE Moved")
    for i in range(3):
        u, t = append(s, "INBOX", make_msg("message %d" % i, "body %d\n" % i))
        assert is_ok(t), t
    s.ok("SELECT INBOX")
    u = s.ok("FETCH 1:* (EMAILID THREADID)")
    f = fetches(u)
    assert sorted(f) == [1, 2, 3], u
    for d in f.values():
        assert d["THREADID"] is None, d
        assert isinstance(d["EMAILID"], list) and len(d["EMAILID"]) == 1
    ids = emailids(s)
    assert len(set(ids.values())) == 3, ids
    # flags do not change it
    s.ok("STORE 1:* +FLAGS (\\Seen \\Flagged $Label1)")
    s.ok("STORE 2 -FLAGS (\\Seen)")
    assert emailids(s) == ids
    # nor does another session reading it
    s2 = env.session()
    s2.ok("SELECT INBOX")
    assert emailids(s2) == ids
    # SEARCH EMAILID finds exactly that message
    for uid, eid in ids.items():
        u = s.ok("UID SEARCH EMAILID %s" % eid)
        assert lib.search_result(u) == [uid], (eid, u)
    assert lib.search_result(s.ok("SEARCH EMAILID Mnosuchid0")) == []
    assert lib.search_result(s.ok("SEARCH THREADID T1")) == []
    # COPY keeps it in the copy
    s.ok("COPY 1:3 Dest")
    s.ok("SELECT Dest")
    copied = emailids(s)
    assert sorted(copied.values()) == sorted(ids.values()), (copied, ids)
    for uid, eid in copied.items():
        assert lib.search_result(s.ok("UID SEARCH EMAILID %s" % eid)) == \
            [uid]
    # MOVE keeps it
    s.ok("SELECT INBOX")
    u = s.ok("UID MOVE %d Moved" % min(ids))
    s.ok("SELECT Moved")
    moved = emailids(s)
    assert list(moved.values()) == [ids[min(ids)]], (moved, ids)
    # the source keeps the others unchanged
    s.ok("SELECT INBOX")
    left = emailids(s)
    assert left == {k: v for k, v in ids.items() if k != min(ids)}, left


def test_objectid_emailid_not_reused(env):
    """an expunged message's EMAILID never names a different message
    later, even one with the same internal date"""
    s = env.session()
    date = "05-May-2022 12:00:00 +0000"
    s.ok("SELECT INBOX")
    seen = {}
    for i in range(12):
        data = make_msg("round %d" % i, "different body %d\n" % i)
        u, t = append(s, "INBOX", data, date=date)
        assert is_ok(t), t
        uid = appenduid(t)[1]
        s.ok("NOOP")
        eid = emailids(s, str(uid), uid=True)[uid]
        assert eid not in seen, ("EMAILID reused", eid, seen[eid], i)
        seen[eid] = i
        s.ok("UID STORE %d +FLAGS.SILENT (\\Deleted)" % uid)
        s.ok("UID EXPUNGE %d" % uid)
