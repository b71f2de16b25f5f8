"""The Maildir store through the real imapd: UIDs that survive flag renames,
restarts and other programs, adoption of Dovecot's and Courier's UID lists,
keywords in dovecot-keywords, a Maildir++ tree left by another server with
its subscriptions, and UID assignment while several writers work at once."""
import os
import re
import time

from lib import (writers, append, appenduid, fetches, list_entries, make_msg,
                 maildir_files, select_info, status_items, untagged)


# --- helpers ------------------------------------------------------------

def uid_flags(s, mailbox="INBOX", examine=False):
    """(select info, {uid: set of flags without \\Recent})"""
    info = select_info(s.ok("%s %s" % ("EXAMINE" if examine else "SELECT",
                                       mailbox)))
    d = fetches(s.ok("UID FETCH 1:* (FLAGS)")) if info["exists"] else {}
    return info, {int(v["UID"]): set(map(str, v["FLAGS"])) - {"\\Recent"}
                  for v in d.values()}


def uid_subjects(s):
    """{uid: subject} of the selected folder"""
    d = fetches(s.ok("UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    out = {}
    for v in d.values():
        hdr = [x for k, x in v.items() if k.startswith("BODY[HEADER")][0]
        m = re.search(rb"Subject: (.*?)\r\n", hdr)
        out[int(v["UID"])] = m.group(1).decode()
    return out


def put(env, folder, sub, name, data, mtime=None):
    """a message file written by another program, exactly as named"""
    path = os.path.join(env.make_folder(folder), sub, name)
    with open(path, "wb") as f:
        f.write(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    env.fix_owner()
    return path


def write(env, path, text):
    with open(path, "w") as f:
        f.write(text)
    env.fix_owner()


def cur_names(env, folder="INBOX"):
    return sorted(os.listdir(os.path.join(env.folder_path(folder), "cur")))


# --- UIDs ---------------------------------------------------------------

def test_uids_survive_flag_renames_and_restart(env):
    for i in range(5):
        env.deliver(make_msg("m%d" % i))
    s = env.session()
    info, before = uid_flags(s)
    assert info["exists"] == 5 and info["recent"] == 5, info
    assert sorted(before) == [1, 2, 3, 4, 5], before
    assert uid_subjects(s) == {i + 1: "m%d" % i for i in range(5)}
    s.ok("UID STORE 2 +FLAGS (\\Seen \\Answered)")
    s.ok("UID STORE 4 +FLAGS (\\Flagged)")
    # the messages were moved to cur/ and renamed with sorted letters
    infos = sorted(maildir_files(env.maildir).values())
    assert infos == ["2,", "2,", "2,", "2,F", "2,RS"], infos
    # another program renames a file: a flag change, not a new message
    name = [n for n in cur_names(env) if n.endswith(":2,RS")][0]
    os.rename(os.path.join(env.maildir, "cur", name),
              os.path.join(env.maildir, "cur", name[:-3] + ",DRS"))
    u = s.ok("NOOP")
    assert not untagged(u, "VANISHED") and not any(b"EXPUNGE" in x for x in u)
    d = fetches(u)
    assert len(d) == 1, u
    assert set(map(str, list(d.values())[0]["FLAGS"])) - {"\\Recent"} == \
        {"\\Draft", "\\Answered", "\\Seen"}, u
    s.logout()
    # a new process: same UIDVALIDITY, same UIDs, same flags, none recent
    s = env.session()
    info2, after = uid_flags(s)
    assert info2["uidvalidity"] == info["uidvalidity"], (info, info2)
    assert info2["recent"] == 0 and info2["uidnext"] == 6, info2
    assert after == {1: set(), 2: {"\\Draft", "\\Answered", "\\Seen"},
                     3: set(), 4: {"\\Flagged"}, 5: set()}, after
    assert uid_subjects(s) == {i + 1: "m%d" % i for i in range(5)}
    s.logout()


def test_uids_never_reused_after_expunge(env):
    s = env.session()
    s.ok("SELECT INBOX")
    for i in range(3):
        append(s, "INBOX", make_msg("a%d" % i))
    s.ok("UID STORE 3 +FLAGS.SILENT (\\Deleted)")
    s.ok("EXPUNGE")
    s.logout()
    # the file of the highest UID is gone; a restart must not hand out 3
    env.deliver(make_msg("late"))
    s = env.session()
    info, got = uid_flags(s)
    assert sorted(got) == [1, 2, 4], got
    assert info["uidnext"] == 5, info
    s.logout()


def test_external_delete_and_new_file_seen_by_open_session(env):
    paths = [env.deliver(make_msg("x%d" % i), flags="S") for i in range(3)]
    s = env.session()
    s.ok("SELECT INBOX")
    os.unlink(paths[1])
    env.deliver(make_msg("fresh"))
    u = s.ok("NOOP")
    assert b"* 2 EXPUNGE" in u, u
    assert b"* 3 EXISTS" in u, u
    assert uid_subjects(s) == {1: "x0", 3: "x2", 4: "fresh"}
    s.logout()


def test_append_visible_to_selected_folder_same_uids(env):
    s = env.session()
    s.ok("SELECT INBOX")
    u, t = append(s, "INBOX", make_msg("one"), flags=["\\Seen"])
    v, uid = appenduid(t)
    assert uid == 1
    assert b"* 1 EXISTS" in b"\n".join(u + s.ok("NOOP")), u
    d = fetches(s.ok("UID FETCH %d (FLAGS RFC822.SIZE)" % uid))
    (item,) = d.values()
    assert int(item["UID"]) == 1 and "\\Seen" in map(str, item["FLAGS"])
    assert int(item["RFC822.SIZE"]) == len(make_msg("one", eol="\r\n"))
    # the file carries its sizes in the name, Dovecot style
    (name,) = cur_names(env)
    assert re.search(r",S=\d+,W=%d:2,S$" % len(make_msg("one", eol="\r\n")),
                     name), name
    s.logout()


# --- adoption of other servers' UID lists ---------------------------------

def test_adopt_dovecot_uidlist(env):
    msg = make_msg("dove")
    put(env, "INBOX", "cur", "1275660000.M1P1.mail,S=%d:2,S" % len(msg), msg)
    put(env, "INBOX", "cur", "1275660001.M2P1.mail:2,Fb", make_msg("kw"))
    put(env, "INBOX", "cur", "1275660002.M3P1.mail:2,", make_msg("plain"))
    put(env, "INBOX", "new", "1275660003.M4P1.mail", make_msg("unlisted"))
    write(env, os.path.join(env.maildir, "dovecot-uidlist"),
          "3 V1275660208 N25022 G3085f01b7f11094c501100008c4a11c1\n"
          "25006 :1275660000.M1P1.mail,S=%d:2,\n"
          "25010 W2481 :1275660001.M2P1.mail:2,F\n"
          "25012 :1275659999.M9P9.mail:2,S\n"
          "25017 :1275660002.M3P1.mail\n" % len(msg))
    write(env, os.path.join(env.maildir, "dovecot-keywords"),
          "0 $Junk\n1 $NonJunk\n")
    s = env.session()
    info, got = uid_flags(s)
    assert info["uidvalidity"] == 1275660208, info
    assert info["uidnext"] == 25023, info
    assert got == {25006: {"\\Seen"}, 25010: {"\\Flagged", "$NonJunk"},
                   25017: set(), 25022: set()}, got
    assert uid_subjects(s) == {25006: "dove", 25010: "kw", 25017: "plain",
                               25022: "unlisted"}
    # CONDSTORE: modseqs start above any Dovecot could have handed out
    st = status_items(s.ok("STATUS INBOX (HIGHESTMODSEQ)"))
    assert st["HIGHESTMODSEQ"] > 10 ** 9, st
    s.logout()
    # the adoption happens once: our own list holds the UIDs from now on
    os.unlink(os.path.join(env.maildir, "dovecot-uidlist"))
    s = env.session()
    info2, got2 = uid_flags(s)
    assert info2["uidvalidity"] == 1275660208 and got2 == got, (info2, got2)
    s.logout()


def test_adopt_courier_uiddb_in_folder(env):
    put(env, "Lists.dev", "cur", "1600000000.M1P1.h:2,S", make_msg("c1"))
    put(env, "Lists.dev", "cur", "1600000001.M1P1.h:2,", make_msg("c2"))
    put(env, "Lists.dev", "new", "1600000002.M1P1.h", make_msg("c3"))
    write(env, os.path.join(env.folder_path("Lists.dev"), "courierimapuiddb"),
          "1 1111 300\n100 1600000000.M1P1.h:2,S\n"
          "200 1600000001.M1P1.h\n")
    s = env.session()
    info, got = uid_flags(s, "Lists.dev", examine=True)
    assert info["uidvalidity"] == 1111 and info["uidnext"] == 301, info
    assert sorted(got) == [100, 200, 300], got
    assert uid_subjects(s) == {100: "c1", 200: "c2", 300: "c3"}
    # EXAMINE showed the new/ file as recent without taking it
    assert info["recent"] == 1, info
    assert os.listdir(os.path.join(env.folder_path("Lists.dev"), "new"))
    st = status_items(s.ok("STATUS Lists.dev (MESSAGES UIDNEXT UIDVALIDITY "
                           "UNSEEN RECENT)"))
    assert st == {"MESSAGES": 3, "UIDNEXT": 301, "UIDVALIDITY": 1111,
                  "UNSEEN": 2, "RECENT": 1}, st
    s.logout()


# --- keywords -------------------------------------------------------------

def test_keywords_persist_in_dovecot_keywords(env):
    env.deliver(make_msg("k"), flags="")
    env.deliver(make_msg("l"), flags="")
    s = env.session()
    s.ok("SELECT INBOX")
    s.ok("UID STORE 1 +FLAGS (Work $Label1)")
    s.ok("UID STORE 2 +FLAGS ($label1)")
    s.logout()
    with open(os.path.join(env.maildir, "dovecot-keywords")) as f:
        kw = dict(ln.split(" ", 1) for ln in f.read().splitlines())
    assert sorted(kw.values()) == ["$Label1", "Work"], kw
    letter = {v: chr(ord("a") + int(k)) for k, v in kw.items()}
    infos = sorted(maildir_files(env.maildir).values())
    assert infos == sorted(["2," + "".join(sorted(letter.values())),
                            "2," + letter["$Label1"]]), infos
    s = env.session()
    _, got = uid_flags(s)
    assert got == {1: {"Work", "$Label1"}, 2: {"$Label1"}}, got
    s.ok("UID STORE 1 -FLAGS (work)")
    s.logout()
    s = env.session()
    _, got = uid_flags(s)
    assert got == {1: {"$Label1"}, 2: {"$Label1"}}, got
    s.logout()


def test_unknown_info_letters_survive_flag_change(env):
    path = env.deliver(make_msg("odd"), flags="SX")
    base = os.path.basename(path).split(":")[0]
    s = env.session()
    s.ok("SELECT INBOX")
    s.ok("UID STORE 1 +FLAGS (\\Flagged)")
    s.logout()
    assert cur_names(env) == [base + ":2,FSX"], cur_names(env)


# --- folders and subscriptions left by Dovecot or Courier -----------------

def test_dovecot_tree_list_and_lsub(env):
    for f in ("Sent", "Archive.2024", "Lists.foo.bar", "&ZeVnLIqe-"):
        env.make_folder(f)
    write(env, os.path.join(env.maildir, "subscriptions"),
          "Sent\nArchive.2024\nLists.foo.bar\nGone\n")
    s = env.session()
    got = {n: a for a, sep, n in list_entries(s.ok('LIST "" "*"'))}
    assert set(got) == {"INBOX", "Sent", "Archive", "Archive.2024", "Lists",
                        "Lists.foo", "Lists.foo.bar", "&ZeVnLIqe-"}, got
    assert "\\NOSELECT" in got["Lists"] and "\\NOSELECT" in got["Lists.foo"]
    assert "\\NOSELECT" not in got["Archive.2024"]
    subs = {n for a, sep, n in list_entries(s.ok('LSUB "" "*"'), "LSUB")}
    assert {"Sent", "Archive.2024", "Lists.foo.bar"} <= subs, subs
    s.ok("SUBSCRIBE &ZeVnLIqe-")
    s.ok("UNSUBSCRIBE Sent")
    s.logout()
    with open(os.path.join(env.maildir, "subscriptions")) as f:
        lines = f.read().splitlines()
    assert sorted(lines) == sorted(["Archive.2024", "Lists.foo.bar", "Gone",
                                    "&ZeVnLIqe-"]), lines


def test_dovecot_v2_subscriptions(env):
    env.make_folder("Archive.2024")
    write(env, os.path.join(env.maildir, "subscriptions"),
          "V\t2\n\nArchive\t2024\nINBOX\n")
    s = env.session()
    subs = {n for a, sep, n in list_entries(s.ok('LSUB "" "*"'), "LSUB")}
    assert subs >= {"Archive.2024", "INBOX"}, subs
    s.ok("CREATE Trash")
    s.ok("SUBSCRIBE Trash")
    s.logout()
    with open(os.path.join(env.maildir, "subscriptions")) as f:
        assert f.read() == "V\t2\n\nArchive\t2024\nINBOX\nTrash\n"


def test_courier_tree_and_subscriptions(env):
    env.make_folder("Sent")
    env.make_folder("Lists.dev")
    write(env, os.path.join(env.maildir, "courierimapsubscribed"),
          "INBOX\nINBOX.Sent\nINBOX.Lists.dev\n")
    s = env.session()
    subs = {n for a, sep, n in list_entries(s.ok('LSUB "" "*"'), "LSUB")}
    assert subs >= {"INBOX", "Sent", "Lists.dev"}, subs
    s.ok("UNSUBSCRIBE Lists.dev")
    s.ok("CREATE Drafts")
    s.ok("SUBSCRIBE Drafts")
    s.logout()
    assert not os.path.exists(os.path.join(env.maildir, "subscriptions"))
    with open(os.path.join(env.maildir, "courierimapsubscribed")) as f:
        assert sorted(f.read().splitlines()) == \
            ["INBOX", "INBOX.Drafts", "INBOX.Sent"]


def test_create_rename_delete_on_disk(env):
    s = env.session()
    s.ok("CREATE Projects.Alpha")
    p = env.folder_path("Projects.Alpha")
    assert all(os.path.isdir(os.path.join(p, d)) for d in ("cur", "new", "tmp"))
    assert os.path.exists(os.path.join(p, "maildirfolder"))
    assert not os.path.exists(env.folder_path("Projects"))
    append(s, "Projects.Alpha", make_msg("p1"))
    s.ok("CREATE Projects")
    s.ok("RENAME Projects Work")
    assert os.path.isdir(env.folder_path("Work.Alpha"))
    assert not os.path.exists(env.folder_path("Projects.Alpha"))
    info, got = uid_flags(s, "Work.Alpha")
    assert sorted(got) == [1], got
    s.ok("CLOSE")
    s.ok("DELETE Work")
    assert not os.path.exists(env.folder_path("Work"))
    got = {n: a for a, sep, n in list_entries(s.ok('LIST "" "Work*"'))}
    assert "\\NOSELECT" in got["Work"] and "Work.Alpha" in got, got
    # nothing half deleted is left in the root
    assert not [d for d in os.listdir(env.maildir) if d.startswith("..")]
    s.logout()


def test_rename_inbox_moves_mail(env):
    for i in range(3):
        env.deliver(make_msg("in%d" % i), flags="S")
    s = env.session()
    s.ok("RENAME INBOX Old")
    info, got = uid_flags(s, "Old")
    assert len(got) == 3 and info["uidvalidity"], got
    assert sorted(uid_subjects(s).values()) == ["in0", "in1", "in2"]
    info, got = uid_flags(s, "INBOX")
    assert got == {} and info["uidnext"] == 4, (info, got)
    s.logout()


# --- several writers at once ------------------------------------------------

def test_two_imapds_and_delivery_at_once(env):
    per = 40
    s1, s2, flagger = env.session(), env.session(), env.session()
    flagger.ok("SELECT INBOX")
    threads, got, errors = writers(env, [s1, s2], per,
                                   lambda i: ["\\Seen"] if i % 2 else None)
    # meanwhile a third session takes new/ and renames files in cur/
    deadline = time.time() + 60
    while any(t.is_alive() for t in threads) and time.time() < deadline:
        flagger.ok("NOOP")
        flagger.ok("UID STORE 1:* +FLAGS.SILENT (\\Flagged)")
    for t in threads:
        t.join(60)
        assert not t.is_alive(), "writer hung"
    assert not errors, errors
    appended = got[0] + got[1]
    assert len(set(appended)) == 2 * per, appended
    for s in (s1, s2, flagger):
        s.logout()
    # a fresh process: every message once, with one distinct UID
    c = env.session()
    info, flags = uid_flags(c)
    subj = uid_subjects(c)
    assert info["exists"] == 3 * per == len(subj), (info, len(subj))
    want = sorted("%s-%d" % (k, i) for k in ("s1", "s2", "lda")
                  for i in range(per))
    assert sorted(subj.values()) == want
    for k in range(2):
        for i, uid in enumerate(got[k]):
            assert subj[uid] == "s%d-%d" % (k + 1, i), (uid, subj.get(uid))
    assert info["uidnext"] == 3 * per + 1, info
    assert len(maildir_files(env.maildir)) == 3 * per
    c.logout()
