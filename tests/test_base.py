"""The base every part shares, seen through the commands that use it: one
reader of the Date field for SEARCH SENTON/SENTBEFORE/SENTSINCE, SORT
(DATE) and Sieve's date test, so that an odd Date header is read the same
way by all three."""
import calendar

import lib
from test_sieve import dry
from test_sort import put, msg, sort_result

# internal dates: 2001-09-09 plus seconds (test_sort.BASE)
BASE = 1000000000


def utc(y, mo, d, h=0, mi=0, s=0):
    return calendar.timegm((y, mo, d, h, mi, s))


# Date headers as mailers write them, with the day they name as written
# (SENTON disregards the time and zone, RFC 3501) and the moment they
# name (SORT, RFC 5256 2.2: a bad time is midnight, an unknown zone UTC)
ODD_DATES = [
    ("Fri, 3 Jan 2026 10:00:00 +0000", 3, utc(2026, 1, 3, 10)),
    # an obsolete zone name whose UTC moment is the next day
    ("Sat, 3 Jan 2026 23:30:00 EST", 3, utc(2026, 1, 4, 4, 30)),
    # no seconds
    ("Sat, 3 Jan 2026 10:05 +0100", 3, utc(2026, 1, 3, 9, 5)),
    # a two-digit year, no weekday
    ("3 Jan 26 11:00:00 GMT", 3, utc(2026, 1, 3, 11)),
    # comments everywhere, one of them holding a date of its own
    ("(sent) Sat, (5 Feb) 3 (x) Jan (y) 2026 12:00:00 -0100 (CET)", 3,
     utc(2026, 1, 3, 13)),
    # asctime's order
    ("Sat Jan  3 14:00:00 2026", 3, utc(2026, 1, 3, 14)),
    # the IMAP form, and a military zone letter read as UTC
    ("3-Jan-2026 15:00:00 Z", 3, utc(2026, 1, 3, 15)),
    # lower case, a time that is not one: midnight of the day
    ("sat, 2 jan 2026 25:61:00 +0000", 2, utc(2026, 1, 2)),
    # folded over two lines
    ("Sun, 4 Jan 2026\n 08:00:00 +0200", 4, utc(2026, 1, 4, 6)),
]
GARBAGE = ["soon, maybe", "32 Jan 2026 10:00:00 +0000", "Jan 2026",
           "Sat, 3 Foo 2026 10:00:00 +0000", ""]


def odd_folder(env):
    """the odd dates, then the garbage ones, with internal dates in the
    reverse order of the Date headers, so that a Date read wrongly (and
    replaced by the internal date) shows in SORT; returns each message's
    sort moment by sequence number"""
    n = len(ODD_DATES) + len(GARBAGE)
    messages, moments = [], {}
    for i, (date, _, when) in enumerate(ODD_DATES):
        idate = BASE + 10 * (n - i)
        messages.append((msg(["Date: " + date, "Subject: %d" % i]),
                         idate - BASE))
        moments[i + 1] = when
    for k, date in enumerate(GARBAGE):
        i = len(ODD_DATES) + k
        idate = BASE + 10 * (n - i)
        messages.append((msg(["Date: " + date, "Subject: %d" % i]),
                         idate - BASE))
        moments[i + 1] = idate
    put(env, messages)
    return moments


def search(s, crit):
    return lib.search_result(s.ok("SEARCH " + crit))


def test_odd_dates_read_alike_by_search_and_sort(env):
    moments = odd_folder(env)
    s = env.session()
    s.ok("SELECT INBOX")
    by_day = {}
    for i, (_, day, _) in enumerate(ODD_DATES):
        by_day.setdefault(day, set()).add(i + 1)
    for day in (1, 2, 3, 4, 5):
        got = set(search(s, "SENTON %d-Jan-2026" % day))
        assert got == by_day.get(day, set()), (day, got)
    before = set(search(s, "SENTBEFORE 3-Jan-2026"))
    since = set(search(s, "SENTSINCE 4-Jan-2026"))
    assert before == by_day[2] and since == by_day[4], (before, since)
    # the garbage ones have no sent date: no SENT* key matches them
    assert set(search(s, "OR SENTBEFORE 1-Jan-2100 SENTSINCE 1-Jan-1900")) \
        == set(range(1, len(ODD_DATES) + 1))
    # SORT takes the same moments, the internal date for garbage
    want = sorted(moments, key=lambda k: (moments[k], k))
    assert sort_result(s.ok("SORT (DATE) UTF-8 ALL")) == want
    s.logout()


SIEVE_DATE = '''require ["date", "relational", "fileinto"];
if date :originalzone "date" "date" "%s" { fileinto "OrigDay"; }
if date :zone "+0000" "date" "iso8601" "%s" { fileinto "Utc"; }
'''


def test_odd_dates_read_alike_by_sieve(env):
    """Sieve's date test: the day as written (:originalzone) is the day
    SENTON finds, the moment (:zone +0000) the one SORT orders by"""
    import time
    for date, day, when in ODD_DATES:
        iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(when))
        script = SIEVE_DATE % ("2026-01-%02d" % day, iso)
        rc, out, err = dry(env, script, msg(["Date: " + date,
                                             "Subject: x"]))
        assert rc == 0, (date, rc, err)
        got = [line.split("  #")[0] for line in out.splitlines()]
        assert got == ['fileinto "OrigDay"', 'fileinto "Utc"'], (date, out)
    for date in GARBAGE:
        rc, out, err = dry(env, SIEVE_DATE % ("2026-01-03", "x"),
                           msg(["Date: " + date, "Subject: x"]))
        assert rc == 0 and out == "implicit keep\n", (date, out)


def test_sasl_base64_strict_and_mime_base64_lenient(env):
    """one base64 decoder, two uses: a SASL response must be strict
    base64 (RFC 4422), a MIME body is decoded past line breaks, stray
    octets and concatenated encodings (RFC 2045 6.8)"""
    import base64
    from test_core import PASSWORD
    good = base64.b64encode(b"\0" + env.user.encode() + b"\0" +
                            PASSWORD.encode()).decode()
    for resp in (good + "x", good[:-4] + "=" + good[-4:], good + "A",
                 good.rstrip("=") + "===", good[:8] + " " + good[8:]):
        s = env.session(login=False)
        s.greeting()
        s.bad("AUTHENTICATE PLAIN " + resp)
        s.close()
    s = env.session(login=False)
    s.greeting()
    s.ok("AUTHENTICATE PLAIN " + good.rstrip("="))   # padding may go
    s.logout()
    body = (base64.b64encode(b"first part,").decode() + "\n!*" +
            base64.b64encode(b" second").decode()[:6] + "\n" +
            base64.b64encode(b" second").decode()[6:] + "\n")
    env.deliver(lib.crlf("Subject: b\nMIME-Version: 1.0\n"
                         "Content-Type: text/plain\n"
                         "Content-Transfer-Encoding: base64\n\n" + body))
    s = env.session()
    s.ok("SELECT INBOX")
    u = s.ok("FETCH 1 (BINARY.PEEK[1])")
    assert any(x.endswith(b"first part, second)") for x in u), u
    s.logout()
