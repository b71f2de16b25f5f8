#!/usr/bin/env python3
"""A realistic Maildir, the same bytes for the same arguments.

usage: python3 bench/genmaildir.py DIR N [--seed S]

Writes N messages into the Maildir DIR (cur/, new/, tmp/ created; DIR
must not hold messages yet), the way a mailbox looks after a few years
of use, so that benchmarks and tests see the mail a phone sees:

  - conversations: threads of 1 to 30 messages with Message-ID,
    In-Reply-To, References and "Re:"/"Fwd:" subjects, a few mailing
    lists (List-Id, List-Unsubscribe) and newsletters;
  - MIME: plain text (LF line ends, some quoted-printable), text+HTML
    multipart/alternative, multipart/mixed with base64 attachments
    (PDF, PNG, ZIP, calendar invitations) from a few KB to 400 KB,
    multipart/related with inline images, and forwarded message/rfc822;
  - RFC 2047 encoded words in Subject, From, To (UTF-8 B and Q,
    ISO-8859-1 Q), non-ASCII display names, Received chains, DKIM;
  - flags in Maildir names as Dovecot writes them ("S=size,W=vsize"):
    about 85% \\Seen (all but the newest), some \\Answered, \\Flagged,
    $Forwarded (P), \\Draft, and keywords (letters a.. in the names,
    named by dovecot-keywords); the newest few messages unread in new/;
  - internal dates (file mtimes) equal to each message's Date, ascending
    over about five years ending 2026-01-01.

Nothing depends on the clock or the host: file names, contents, flags and
mtimes follow from N and the seed alone.  The average message is about
16 KB, so 100,000 messages take some 1.6 GB.
"""
import argparse
import base64
import os
import random
import sys
import time

END = 1767225600            # 2026-01-01 00:00:00 UTC: the newest message
SPAN = 5 * 365 * 86400      # the mailbox covers five years
KEYWORDS = ["$Label1", "$Label2", "Junk", "NonJunk", "$MDNSent", "work"]

FIRST = ("Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory "
         "Niaj Olivia Peggy Rupert Sybil Trent Victor Walter Yolanda").split()
LAST = ("Smith Jones Martin Bernard Dubois Schmidt Novak Rossi Tanaka "
        "Kowalski Nguyen Garcia Silva Jensen Murphy Kim").split()
INTL = ["Jürgen Müller", "François Lefèvre", "Zoë Brontë", "Søren Kierkegård",
        "Łukasz Żółw", "José Núñez", "Åsa Öberg", "Дмитрий Иванов",
        "山田 太郎", "Ελένη Παππά", "Ngọc Trần", "Renée Ångström"]
DOMAINS = ["example.org", "example.com", "example.net", "mail.example.org",
           "lists.example.net", "corp.example.com", "uni.example.edu"]
WORDS = ("the a to of and in for on with project meeting release build "
         "server mail invoice report patch review draft budget quarter "
         "schedule travel dinner weekend photos update question answer "
         "status plan design test deploy backup disk network kernel phone "
         "laptop calendar contract offer order shipping delivery account "
         "password security notice reminder summary minutes agenda").split()
SUBJ_INTL = ["Réunion de l'équipe", "Über die Änderungen", "Привет из Москвы",
             "会議の予定", "Año nuevo: ¡felicidades!", "Smörgåsbord på fredag",
             "Ελληνικά νέα", "Café ☕ at noon?", "Zürich ↔ Genève"]
LISTS = ["dev", "announce", "users", "security", "hiking-club"]
ATTACH = [("application/pdf", "pdf"), ("image/png", "png"),
          ("application/zip", "zip"), ("image/jpeg", "jpg"),
          ("application/vnd.oasis.opendocument.text", "odt")]


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.people = [self.person() for _ in range(300)]
        self.me = ("Pat Owner", "pat@example.org")

    def person(self):
        r = self.r
        if r.random() < 0.15:
            name = r.choice(INTL)
        else:
            name = "%s %s" % (r.choice(FIRST), r.choice(LAST))
        local = "".join(c for c in name.lower() if c.isascii() and c.isalnum())
        return name, "%s%d@%s" % (local or "user", r.randrange(100),
                                  r.choice(DOMAINS))

    def words(self, n):
        return " ".join(self.r.choice(WORDS) for _ in range(n))

    def sentence(self):
        s = self.words(self.r.randint(6, 16))
        return s[0].upper() + s[1:] + "."

    def paragraph(self):
        text = " ".join(self.sentence() for _ in range(self.r.randint(2, 6)))
        return wrap(text)

    def body_text(self, lo=2, hi=8):
        return "\n\n".join(self.paragraph()
                           for _ in range(self.r.randint(lo, hi))) + "\n"

    def blob(self, n):
        """n bytes that compress like real attachments (not at all)"""
        return self.r.randbytes(n)

    def boundary(self):
        return "----=_Part_%d_%d.%d" % (self.r.randrange(10**6),
                                        self.r.randrange(10**9),
                                        self.r.randrange(10**12))


def wrap(text, width=72):
    out, line = [], ""
    for w in text.split():
        if line and len(line) + 1 + len(w) > width:
            out.append(line)
            line = w
        else:
            line = line + " " + w if line else w
    out.append(line)
    return "\n".join(out)


def enc_word(text, r):
    """RFC 2047 encoding of text, the way different mailers write it"""
    if text.isascii():
        return text
    k = r.random()
    if k < 0.5:
        return "=?UTF-8?B?%s?=" % base64.b64encode(text.encode()).decode()
    if k < 0.8 or not all(ord(c) < 256 for c in text):
        q = "".join(c if c.isascii() and c.isalnum() else
                    "_" if c == " " else
                    "".join("=%02X" % b for b in c.encode())
                    for c in text)
        return "=?utf-8?q?%s?=" % q
    q = "".join(c if c.isascii() and c.isalnum() else
                "_" if c == " " else "=%02X" % ord(c) for c in text)
    return "=?ISO-8859-1?Q?%s?=" % q


def addr(p, r):
    name, mail = p
    if r.random() < 0.1:
        return mail
    if name.isascii():
        return '"%s" <%s>' % (name, mail) if r.random() < 0.3 \
            else "%s <%s>" % (name, mail)
    return "%s <%s>" % (enc_word(name, r), mail)


def rfc_date(t, tz):
    tm = time.gmtime(t + tz * 60)
    sign = "+" if tz >= 0 else "-"
    return "%s, %d %s %d %02d:%02d:%02d %s%02d%02d" % (
        ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[tm.tm_wday],
        tm.tm_mday, ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
                     "Sep", "Oct", "Nov", "Dec")[tm.tm_mon - 1],
        tm.tm_year, tm.tm_hour, tm.tm_min, tm.tm_sec, sign,
        abs(tz) // 60, abs(tz) % 60)


def b64lines(data):
    s = base64.b64encode(data).decode()
    return "\n".join(s[i:i + 76] for i in range(0, len(s), 76)) + "\n"


def qp(text):
    """quoted-printable of text (UTF-8), soft line breaks at 76"""
    out = []
    for line in text.split("\n"):
        enc, cur = [], ""
        for b in line.encode():
            c = chr(b) if 32 < b < 127 and b != 61 else "=%02X" % b
            if b == 32:
                c = " "
            if len(cur) + len(c) > 75:
                enc.append(cur + "=")
                cur = ""
            cur += c
        if cur.endswith(" "):
            cur = cur[:-1] + "=20"
        enc.append(cur)
        out.append("\n".join(enc))
    return "\n".join(out)


class Thread:
    def __init__(self, g, subject, people, lst):
        self.subject = subject
        self.people = people
        self.list = lst
        self.ids = []
        self.left = g.r.randint(1, 30) if g.r.random() < 0.6 else 1


def html_of(text):
    paras = text.strip().split("\n\n")
    return ("<html><head><meta charset=\"utf-8\"></head><body>\n" +
            "".join("<p>%s</p>\n" % p.replace("\n", " ") for p in paras) +
            "</body></html>\n")


def text_part(g, text):
    r = g.r
    if not text.isascii() or r.random() < 0.1:
        return ("Content-Type: text/plain; charset=utf-8\n"
                "Content-Transfer-Encoding: quoted-printable\n\n" + qp(text)
                + "\n")
    return ("Content-Type: text/plain; charset=us-ascii; format=flowed\n"
            "Content-Transfer-Encoding: 7bit\n\n" + text)


def alternative(g, text):
    b = g.boundary()
    return ("Content-Type: multipart/alternative; boundary=\"%s\"\n\n"
            "--%s\n%s\n--%s\n"
            "Content-Type: text/html; charset=utf-8\n"
            "Content-Transfer-Encoding: quoted-printable\n\n%s\n"
            "--%s--\n" % (b, b, text_part(g, text), b, qp(html_of(text)), b))


def attachment(g):
    r = g.r
    ctype, ext = r.choice(ATTACH)
    size = int(r.lognormvariate(10.3, 1.0))      # median ~30 KB
    size = max(2000, min(size, 400000))
    name = "%s-%d.%s" % (r.choice(WORDS), r.randrange(1000), ext)
    if r.random() < 0.15:
        fname = "filename*=utf-8''%s" % (
            "r%C3%A9sum%C3%A9-" + name)
    else:
        fname = 'filename="%s"' % name
    return ("Content-Type: %s; name=\"%s\"\n"
            "Content-Disposition: attachment; %s\n"
            "Content-Transfer-Encoding: base64\n\n%s"
            % (ctype, name, fname, b64lines(g.blob(size))))


def invitation(g, t):
    ics = ("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//bench//EN\n"
           "METHOD:REQUEST\nBEGIN:VEVENT\nUID:%d@bench\n"
           "DTSTART:20250101T100000Z\nSUMMARY:%s\nEND:VEVENT\n"
           "END:VCALENDAR\n" % (t, g.words(4)))
    return ("Content-Type: text/calendar; charset=utf-8; method=REQUEST\n"
            "Content-Transfer-Encoding: 7bit\n\n" + ics)


def mixed(g, text, t):
    b = g.boundary()
    parts = [alternative(g, text) if g.r.random() < 0.5
             else text_part(g, text)]
    for _ in range(g.r.choice((1, 1, 1, 2, 3))):
        parts.append(attachment(g) if g.r.random() < 0.9
                     else invitation(g, t))
    return ("Content-Type: multipart/mixed; boundary=\"%s\"\n\n"
            "This is a multi-part message in MIME format.\n" % b +
            "".join("--%s\n%s\n" % (b, p) for p in parts) + "--%s--\n" % b)


def related(g, text):
    b = g.boundary()
    cid = "img%d@bench" % g.r.randrange(10**6)
    html = html_of(text).replace("</body>",
                                 '<img src="cid:%s"></body>' % cid)
    return ("Content-Type: multipart/related; boundary=\"%s\"; "
            "type=\"text/html\"\n\n--%s\n"
            "Content-Type: text/html; charset=utf-8\n"
            "Content-Transfer-Encoding: quoted-printable\n\n%s\n"
            "--%s\nContent-Type: image/png\nContent-ID: <%s>\n"
            "Content-Transfer-Encoding: base64\n\n%s--%s--\n"
            % (b, b, qp(html), b, cid,
               b64lines(g.blob(g.r.randint(1000, 20000))), b))


def forwarded(g, text, inner):
    b = g.boundary()
    return ("Content-Type: multipart/mixed; boundary=\"%s\"\n\n"
            "--%s\n%s\n--%s\nContent-Type: message/rfc822\n"
            "Content-Disposition: inline\n\n%s\n--%s--\n"
            % (b, b, text_part(g, text), b, inner, b))


def message(g, t, threads, i):
    r = g.r
    tz = r.choice((0, 60, 120, -300, -480, 330, 540))
    if threads and r.random() < 0.55:
        th = r.choice(threads)
    else:
        lst = r.choice(LISTS) if r.random() < 0.3 else None
        subj = (r.choice(SUBJ_INTL) if r.random() < 0.12
                else g.words(r.randint(2, 7)).capitalize())
        people = r.sample(g.people, r.randint(1, 4))
        th = Thread(g, subj, people, lst)
        threads.append(th)
    th.left -= 1
    if th.left <= 0:
        threads.remove(th)
    n = len(th.ids)
    frm = r.choice(th.people)
    subject = th.subject
    if n:
        subject = ("Re: " if r.random() < 0.9 else "RE: ") + subject
    elif r.random() < 0.05:
        subject = "Fwd: " + subject
    mid = "<%d.%d.%s@%s>" % (t, i, "%x" % r.getrandbits(32),
                            frm[1].split("@")[1])
    hops = r.randint(2, 4)
    h = ["Return-Path: <%s>" % frm[1],
         "Delivered-To: %s" % g.me[1]]
    for k in range(hops):
        h.append("Received: from mx%d.%s (mx%d.%s [192.0.2.%d])\n"
                 "\tby mx.example.org (Postfix) with ESMTPS id %X\n"
                 "\tfor <%s>; %s" % (k, frm[1].split("@")[1], k,
                                     frm[1].split("@")[1], r.randrange(255),
                                     r.getrandbits(40), g.me[1],
                                     rfc_date(t - k, 0)))
    if r.random() < 0.5:
        h.append("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\n"
                 "\td=%s; s=sel; t=%d;\n\tbh=%s;\n\tb=%s" % (
                     frm[1].split("@")[1], t,
                     base64.b64encode(g.blob(32)).decode(),
                     "\n\t  ".join(base64.b64encode(g.blob(192)).decode()
                                   [j:j + 64] for j in range(0, 256, 64))))
    h.append("Date: %s" % rfc_date(t, tz))
    h.append("From: %s" % addr(frm, r))
    tos = [g.me] + [p for p in th.people if p is not frm][:3]
    if th.list:
        h.append("To: %s@lists.example.net" % th.list)
    else:
        h.append("To: %s" % ",\n ".join(addr(p, r) for p in tos))
        if r.random() < 0.2:
            h.append("Cc: %s" % addr(r.choice(g.people), r))
    h.append("Subject: %s" % enc_word(subject, r))
    h.append("Message-ID: %s" % mid)
    if n:
        h.append("In-Reply-To: %s" % th.ids[-1])
        h.append("References: %s" % "\n ".join(th.ids[-10:]))
    if th.list:
        h.append("List-Id: %s list <%s.lists.example.net>"
                 % (th.list.capitalize(), th.list))
        h.append("List-Unsubscribe: <mailto:%s-leave@lists.example.net>"
                 % th.list)
        h.append("Precedence: list")
    h.append("X-Mailer: %s" % r.choice(
        ("Thunderbird 115.6", "Apple Mail (2.3774)", "K-9 Mail 6.7",
         "Microsoft Outlook 16.0", "mutt 2.2.12", "Roundcube 1.6")))
    h.append("MIME-Version: 1.0")
    th.ids.append(mid)

    text = g.body_text()
    if n and r.random() < 0.7:
        text += "\nOn earlier, someone wrote:\n" + "".join(
            "> " + ln + "\n" for ln in g.paragraph().split("\n"))
    if r.random() < 0.2:
        text += "\n-- \n%s\n" % frm[0]
    k = r.random()
    if k < 0.55:
        body = text_part(g, text)
    elif k < 0.80:
        body = alternative(g, text)
    elif k < 0.95:
        body = mixed(g, text, t)
    elif k < 0.98:
        body = related(g, text)
    else:
        inner = ("From: %s\nTo: %s\nSubject: %s\nDate: %s\n"
                 "Message-ID: <inner.%d@bench>\nMIME-Version: 1.0\n%s"
                 % (addr(r.choice(g.people), r), addr(g.me, r),
                    g.words(4), rfc_date(t - 86400, 0), i,
                    text_part(g, g.body_text(1, 3))))
        body = forwarded(g, g.body_text(1, 2), inner)
    return ("\n".join(h) + "\n" + body).encode()


def flags_of(g, i, n):
    r = g.r
    recent = i >= n * 0.85
    f = set()
    if not recent or r.random() < 0.1:
        f.add("S")
    if r.random() < 0.04:
        f.add("F")
    if "S" in f and r.random() < 0.12:
        f.add("R")
    if "S" in f and r.random() < 0.02:
        f.add("P")
    if r.random() < 0.003:
        f.add("D")
    kw = ""
    if r.random() < 0.08:
        kw = "".join(sorted(set(chr(97 + r.randrange(len(KEYWORDS)))
                                for _ in range(r.randint(1, 2)))))
    return "".join(sorted(f)) + kw


def vsize(data):
    return len(data) + data.count(b"\n") - data.count(b"\r\n")


def generate(md, n, seed):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(md, sub), exist_ok=True)
    if os.listdir(os.path.join(md, "cur")) or \
            os.listdir(os.path.join(md, "new")):
        sys.exit("%s already holds messages" % md)
    with open(os.path.join(md, "dovecot-keywords"), "w") as f:
        f.write("".join("%d %s\n" % (k, w) for k, w in enumerate(KEYWORDS)))
    g = Gen(seed)
    threads = []
    unread_new = min(20, n // 100)
    step = SPAN / max(n, 1)
    for i in range(n):
        t = int(END - SPAN + i * step + g.r.random() * step * 0.5)
        data = message(g, t, threads, i)
        fl = flags_of(g, i, n)
        base = "%d.M%dP%d.bench,S=%d,W=%d" % (t, i, 1000 + i % 30000,
                                             len(data), vsize(data))
        if i >= n - unread_new:
            path = os.path.join(md, "new", base)
        else:
            path = os.path.join(md, "cur", base + ":2," + fl)
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (t, t))
    for sub in ("cur", "new", "tmp"):
        os.utime(os.path.join(md, sub), (END, END))


def main():
    ap = argparse.ArgumentParser(
        description="write a realistic, deterministic Maildir")
    ap.add_argument("dir", help="the Maildir to fill (created)")
    ap.add_argument("n", type=int, help="number of messages")
    ap.add_argument("--seed", type=int, default=1,
                    help="different seeds give different mailboxes")
    a = ap.parse_args()
    if a.n < 0:
        ap.error("N must not be negative")
    generate(a.dir, a.n, a.seed)


if __name__ == "__main__":
    main()
