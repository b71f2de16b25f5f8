"""CONTEXT=SORT (RFC 5267): SORT RETURN (UPDATE) keeps a sorted result
up to date with ADDTO and REMOVEFROM that carry the position in the sorted
list, so a client that applies them in order holds what a fresh SORT would
answer (the client model here reads them as the RFC and Trojita do).  Dovecot 2.3 does not advertise CONTEXT=SORT: it answers an
updating SORT with the position 0 of an unsorted search, so the positions
are checked against imapd's own fresh SORT, not against Dovecot."""
import random
import re

import lib
import refimap


def dated(i, subject, day, hour=10):
    return lib.make_msg(subject, date="Mon, %d Feb 2014 %02d:00:00 +0000"
                        % (day, hour))


def pairs(line, tag):
    """[(ADDTO|REMOVEFROM, position, [numbers in order])] of an ESEARCH
    update line for tag, else None"""
    m = re.match(rb'\* ESEARCH \(TAG "([^"]+)"\)( UID)? (.*)$', line)
    if not m or m.group(1).decode() != tag:
        return None
    out = []
    for what, body in re.findall(rb"(ADDTO|REMOVEFROM) \(([^)]*)\)",
                                 m.group(3)):
        toks = body.split()
        for pos, sset in zip(toks[0::2], toks[1::2]):
            nums = []
            for part in sset.split(b","):
                a, _, b = part.partition(b":")
                a, b = int(a), int(b or a)
                assert a <= b, line     # ranges only ascend, as told
                nums.extend(range(a, b + 1))
            out.append((what.decode(), int(pos), nums))
    return out


class Client:
    """a client's copy of one updating sort, kept by the RFC's rules"""

    def __init__(self, tag, result, uid):
        self.tag, self.list, self.uid = tag, list(result), uid
        self.updates = 0

    def feed(self, lines):
        for ln in lines:
            p = pairs(ln, self.tag)
            m = re.match(rb"\* (\d+) EXPUNGE$", ln)
            if p:
                self.updates += 1
                for what, pos, nums in p:
                    assert pos >= 1, ln
                    if what == "ADDTO":
                        assert pos <= len(self.list) + 1, (ln, self.list)
                        self.list[pos - 1:pos - 1] = nums
                    else:
                        # one UID a pair: what Trojita reads right
                        assert len(nums) == 1, ln
                        got = self.list[pos - 1:pos - 1 + len(nums)]
                        assert got == nums, (ln, self.list)
                        del self.list[pos - 1:pos - 1 + len(nums)]
            elif m and not self.uid:
                n = int(m.group(1))
                assert n not in self.list, (ln, self.list)
                self.list = [x - 1 if x > n else x for x in self.list]


def sort_all(s, cmd):
    u = s.ok(cmd)
    line = [x for x in u if x.startswith(b"* SORT")][0]
    return [int(x) for x in line.split()[2:]]


def test_context_sort_capability(env):
    s = env.session()
    caps = lib.caps_of(s.ok("CAPABILITY")[0])
    assert "CONTEXT=SORT" in caps and "ESORT" in caps, caps


def test_context_sort_rfc_example(env):
    """RFC 5267 4.3.3: a result list 4:5 (in the RFC 2734:2735) gains
    1:3 in front: "ADDTO (1 1:3)"; then REMOVEFROM with the position the
    message held (4.3.4)"""
    for i in range(5):
        refimap.deliver(env, i + 1, dated(i, "m%d" % i, i + 1),
                        flags="F" if i >= 3 else "")
    s = env.session()
    s.ok("SELECT INBOX")
    u, t = s.cmd("UID SORT RETURN (UPDATE ALL) (DATE) UTF-8 FLAGGED",
                 tag="C01")
    assert u[-1] == b'* ESEARCH (TAG "C01") UID ALL 4:5', u
    u = s.ok("UID STORE 1:3 +FLAGS.SILENT (\\Flagged)")
    assert b'* ESEARCH (TAG "C01") UID ADDTO (1 1:3)' in u, u
    u = s.ok("UID STORE 2 -FLAGS.SILENT (\\Flagged)")
    assert b'* ESEARCH (TAG "C01") UID REMOVEFROM (2 2)' in u, u
    # the reverse order: a new message of the middle date goes between
    u, t = s.cmd("UID SORT RETURN (UPDATE ALL) (REVERSE DATE) UTF-8 "
                 "UNDELETED", tag="R1")
    assert u[-1] == b'* ESEARCH (TAG "R1") UID ALL 5,4,3,2,1', u
    msg = dated(0, "middle", 3, hour=12).replace(b"\n", b"\r\n")
    u = lib.append(s, "INBOX", msg, plus=True)[0] + s.ok("NOOP")
    assert b'* ESEARCH (TAG "R1") UID ADDTO (3 6)' in u, u
    assert not [x for x in u if b'"C01"' in x], u
    # an expunge: REMOVEFROM before the EXPUNGE, sequence numbers for SORT
    u, t = s.cmd("SORT RETURN (UPDATE) (DATE) UTF-8 ALL", tag="S1")
    s.ok("UID STORE 4 +FLAGS.SILENT (\\Deleted)")
    u = s.ok("EXPUNGE")
    # by date: 1 2 3 6 4 5, as sequence numbers 1 2 3 6 4 5
    want = b'* ESEARCH (TAG "S1") REMOVEFROM (5 4)'
    assert want in u and u.index(want) < u.index(b"* 4 EXPUNGE"), u


def test_context_sort_untagged_no_and_cancel(env):
    """RFC 5267 4.3.1 (NOUPDATE as an untagged NO, the other return
    options still answered) and 4.3.5 (CANCELUPDATE)"""
    for i in range(3):
        refimap.deliver(env, i + 1, dated(i, "m%d" % i, i + 1))
    s = env.session()
    s.ok("SELECT INBOX")
    for i in range(8):
        s.cmd("UID SORT RETURN (UPDATE) (SUBJECT) UTF-8 ALL", tag="k%d" % i)
    u, t = s.cmd("UID SORT RETURN (UPDATE COUNT) (SUBJECT) UTF-8 ALL",
                 tag="B02")
    assert lib.is_ok(t), t
    assert b'* NO [NOUPDATE "B02"] Too many updating searches' in u, u
    assert b'* ESEARCH (TAG "B02") UID COUNT 3' in u, u
    s.bad("UID SORT RETURN (UPDATE SAVE) (SUBJECT) UTF-8 ALL")
    s.ok('CANCELUPDATE "k0" "k1" "k2" "k3" "k4" "k5" "k6" "k7"')
    s.no('CANCELUPDATE "k1"')
    u, t = s.cmd("UID SORT RETURN (UPDATE) (SUBJECT) UTF-8 ALL", tag="a012")
    assert lib.is_ok(t) and not [x for x in u if b"NOUPDATE" in x], u
    s.ok("UID STORE 1 +FLAGS (\\Deleted)")
    u = s.ok("EXPUNGE")
    assert b'* ESEARCH (TAG "a012") UID REMOVEFROM (1 1)' in u, u
    assert not [x for x in u if b'"k1"' in x], u


SUBJECTS = ["pear", "Apple", "re: fig", "banana", "kiwi", "apple pie",
            "Fwd: cherry", "date", "elder", "grape"]


def test_context_sort_follows_changes(env):
    """UID SORT by subject of the unseen: ADDTO and REMOVEFROM keep the
    client's list equal to a fresh UID SORT through 40 random changes"""
    run_churn(env, True, "UNSEEN", "(SUBJECT REVERSE DATE)", 1)


def test_context_sort_follows_changes_seq(env):
    """the same for SORT with sequence numbers and an expunge-heavy mix,
    by reverse arrival of the flagged"""
    run_churn(env, False, "OR FLAGGED SEEN", "(REVERSE ARRIVAL)", 7)


def run_churn(env, uid, crit, order, seed):
    orig = lib.Session.collect
    holder = {}

    def collect(self, tag):
        u, t = orig(self, tag)
        if self is holder.get("s") and "client" in holder:
            holder["client"].feed(u)
        return u, t
    lib.Session.collect = collect
    try:
        churn_fed(env, uid, crit, order, seed, holder)
    finally:
        lib.Session.collect = orig


def churn_fed(env, uid, crit, order, seed, holder):
    rnd = random.Random(seed)
    for i in range(12):
        refimap.deliver(env, i + 1, dated(i, rnd.choice(SUBJECTS),
                                          rnd.randint(1, 28)),
                        flags=rnd.choice(["", "S", "F", "SF"]))
    s = env.session()
    holder["s"] = s
    s.ok("SELECT INBOX")
    pre = "UID " if uid else ""
    fresh = "%sSORT %s UTF-8 %s" % (pre, order, crit)
    start = sort_all(s, fresh)
    u, t = s.cmd("%sSORT RETURN (UPDATE) %s UTF-8 %s" % (pre, order, crit),
                 tag="K1")
    assert lib.is_ok(t), t
    holder["client"] = Client("K1", start, uid)
    other = env.session()
    other.ok("SELECT INBOX")
    for step in range(40):
        n = len(sort_all(s, "SORT (ARRIVAL) UTF-8 ALL"))
        op = rnd.randrange(6)
        subj = rnd.choice(SUBJECTS)
        day = rnd.randint(1, 28)
        if op == 0:
            lib.append(s, "INBOX", dated(0, subj, day)
                       .replace(b"\n", b"\r\n"), plus=True,
                       flags=rnd.choice([[], ["\\Seen"], ["\\Flagged"]]))
        elif op == 1:
            env.deliver(dated(0, subj, day))
        elif op == 2 and n > 3:
            other.ok("STORE %d +FLAGS (\\Deleted)" % rnd.randint(1, n))
            other.ok("EXPUNGE")
        elif n:
            flag = rnd.choice(["\\Seen", "\\Flagged"])
            what = "1:*" if rnd.random() < 0.15 else str(rnd.randint(1, n))
            s.ok("STORE %s %sFLAGS (%s)" % (what, rnd.choice("+-"), flag))
        s.ok("NOOP")
        want = sort_all(s, fresh)
        got = holder["client"].list
        assert got == want, (step, got, want)
    assert holder["client"].updates >= 8, holder["client"].updates


def test_context_sort_partial_update(env):
    """RFC 9394 (as RFC 5267 4.4): PARTIAL and UPDATE do not interact:
    the page is answered, and the notifications cover every result"""
    for i in range(4):
        refimap.deliver(env, i + 1, dated(i, "m%d" % i, 10 + i))
    s = env.session()
    s.ok("SELECT INBOX")
    u, t = s.cmd("UID SORT RETURN (PARTIAL -1:-2 UPDATE) (DATE) UTF-8 ALL",
                 tag="P1")
    assert lib.is_ok(t), t
    assert u[-1] == b'* ESEARCH (TAG "P1") UID PARTIAL (-1:-2 3,4)', u
    msg = dated(0, "oldest", 1).replace(b"\n", b"\r\n")
    u = lib.append(s, "INBOX", msg, plus=True)[0] + s.ok("NOOP")
    assert b'* ESEARCH (TAG "P1") UID ADDTO (1 5)' in u, u
    u = s.ok("UID STORE 2 +FLAGS (\\Deleted)") + s.ok("EXPUNGE")
    assert b'* ESEARCH (TAG "P1") UID REMOVEFROM (3 2)' in u, u
