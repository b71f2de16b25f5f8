#!/usr/bin/env python3
"""SORT and THREAD on a big folder: the time imapd takes to answer each
command for a Maildir of N messages (default 10000) with threads (a third
of the messages reply to an earlier one, with References and "Re:"),
three runs each in one session after SELECT, median reported.  When run
as root, imapd runs as the test user (tests/lib.py creates it).

usage: python3 bench/sort.py [messages] [runs]
"""
import os
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import lib  # noqa: E402

COMMANDS = [
    "SORT (ARRIVAL) UTF-8 ALL", "SORT (SIZE) UTF-8 ALL",
    "SORT (DATE) UTF-8 ALL", "SORT (SUBJECT) UTF-8 ALL",
    "SORT (FROM) UTF-8 ALL", "SORT (REVERSE SUBJECT DATE) UTF-8 ALL",
    "SORT (DISPLAYFROM) UTF-8 ALL",
    "THREAD ORDEREDSUBJECT UTF-8 ALL", "THREAD REFERENCES UTF-8 ALL",
    "UID THREAD REFERENCES UTF-8 ALL",
]


def build(md, n):
    rnd = random.Random(1)
    words = ("alpha beta gamma delta release build meeting lunch report "
             "patch review bug fix server mail").split()
    subjects = [" ".join(rnd.sample(words, 3)) for _ in range(n // 6 + 1)]
    ids = []
    for i in range(n):
        mid = "<%d.%d@example.org>" % (i, rnd.getrandbits(30))
        subj = rnd.choice(subjects)
        h = ["Received: from h%d.example.net by mx.example.org; "
             "Mon, 1 Jan 2024 00:00:00 +0000" % k for k in range(6)]
        h += ["Date: %d %s %d %02d:%02d:00 %+05d" % (
            rnd.randint(1, 28), rnd.choice(["Jan", "Feb", "Mar"]),
            rnd.randint(2015, 2024), rnd.randint(0, 23),
            rnd.randint(0, 59), rnd.choice([0, 100, -500, 530])),
            "From: User %d <user%d@example.org>" % (i % 300, i % 300),
            "To: list@example.org", "Message-ID: " + mid]
        if ids and rnd.random() < 0.33:
            j = rnd.randrange(len(ids))
            h.append("References: " + " ".join(ids[max(0, j - 5):j + 1]))
            subj = "Re: " + subj
        h.append("Subject: " + subj)
        body = "line of text\n" * rnd.randint(5, 200)
        name = "%d.M%d.bench:2,S" % (1500000000 + i, i)
        path = os.path.join(md, "cur", name)
        with open(path, "w") as f:
            f.write("\n".join(h) + "\n\n" + body)
        os.utime(path, (1500000000 + i, 1500000000 + i))
        ids.append(mid)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with lib.Env() as env:
        build(env.maildir, n)
        env.fix_owner()
        s = env.session()
        t0 = time.time()
        s.ok("SELECT INBOX")
        print("%d messages; SELECT %.0f ms" % (n, (time.time() - t0) * 1e3))
        for c in COMMANDS:
            times = []
            for _ in range(runs):
                t0 = time.time()
                s.ok(c)
                times.append((time.time() - t0) * 1e3)
            print("%-40s median %7.0f ms  (first %5.0f ms)"
                  % (c, statistics.median(times), times[0]))
        s.logout()


if __name__ == "__main__":
    main()
