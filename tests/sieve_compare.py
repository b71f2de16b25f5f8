"""The reference comparison for Sieve: a table of scripts run over corpus
messages by imapd -d -n and by Pigeonhole's sieve-test (Debian's
dovecot-sieve), each result reduced to the decisions that matter: the
folders stored into with their flags, the redirect addresses, reject and
vacation.  test_sieve.py runs it on a sample; run this file directly for
the whole corpus:  python3 tests/sieve_compare.py [MESSAGE-STEP]

A script that fails at run time counts as "error" on both sides, whatever
partial actions sieve-test lists (both keep the message).

Last whole run (every 3rd corpus message): 37 scripts x 147 messages =
5439 pairs, 5277 agree; without the ereject script 5277 of 5292 (99.7%);
the 35 scripts of the earlier runs alone: 4994 of 4998 (99.9%).  The
ereject script (147) differs because Pigeonhole 0.5 has no "ereject"
(RFC 5429 defines it) and refuses the script.  The other differences are
in DIFFERENCES below, each with its reason.
"""
import concurrent.futures
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lib  # noqa: E402

FROM = "sender+list@lists.example.org"
TO = "me+tag@example.com"

SCRIPTS = {
    "fileinto": 'require "fileinto";\n'
    'if header :contains "subject" "test" { fileinto "Test"; }',
    "size": 'require "fileinto";\n'
    'if size :over 4K { fileinto "Big"; }\n'
    'elsif size :under 500 { fileinto "Small"; } else { keep; }',
    "exists_stop": 'require "fileinto";\n'
    'if exists ["List-Id", "In-Reply-To"] { fileinto "Lists"; stop; }\n'
    'if not exists "date" { discard; }',
    "address_domain": 'require "fileinto";\n'
    'if address :domain :is "from" ["example.com", "zzz.org", '
    '"ddd.com", "mimekit.net"] { fileinto "Known"; }',
    "address_parts": 'require "fileinto";\n'
    'if address :localpart :matches "to" "*o*" { fileinto "O"; }\n'
    'if address :all :contains ["to", "cc", "bcc"] "example" '
    '{ fileinto "Ex"; }',
    "flags": 'require "imap4flags";\n'
    'if header :matches "subject" "*e*" { setflag "\\\\Seen"; }\n'
    'if header :contains "content-type" "multipart" '
    '{ addflag ["$Multi", "\\\\Flagged"]; removeflag "\\\\Seen"; }',
    "flags_fileinto": 'require ["imap4flags", "fileinto"];\n'
    'addflag "$a $b";\nif size :over 1K { fileinto :flags "\\\\Answered" '
    '"Flagged"; }\nif hasflag :contains "a" { removeflag "$a"; }',
    "anyof_not": 'if anyof (header :contains "from" "james", '
    'not exists "message-id") { discard; }',
    "allof_regex": 'require ["fileinto", "regex"];\n'
    'if allof (exists "message-id", header :regex "message-id" '
    '"^<[0-9a-f]+[.@]") { fileinto "Hexid"; }',
    "variables_from": 'require ["fileinto", "variables"];\n'
    'if address :domain :matches "from" "*.*" '
    '{ set :lower "d" "${1}"; fileinto "From.${d}"; }',
    "variables_captures": 'require ["fileinto", "variables"];\n'
    'if header :matches "subject" "*e*s*" '
    '{ fileinto "M.${1}|${2}|${3}"; }',
    "subaddress": 'require ["envelope", "subaddress", "fileinto"];\n'
    'if envelope :detail "to" "tag" { fileinto "Tagged"; }\n'
    'if envelope :user "from" "sender" { fileinto "User"; }\n'
    'if address :detail :is "to" "" { fileinto "EmptyDetail"; }',
    "relational_count": 'require ["relational", "fileinto", '
    '"comparator-i;ascii-numeric"];\n'
    'if header :count "ge" :comparator "i;ascii-numeric" "received" "2"'
    ' { fileinto "Hops"; }\n'
    'if address :count "gt" :comparator "i;ascii-numeric" ["to", "cc"] "1"'
    ' { fileinto "Many"; }',
    "relational_value": 'require ["relational", "fileinto"];\n'
    'if header :value "gt" :comparator "i;ascii-casemap" "subject" "m"'
    ' { fileinto "Late"; }',
    "date": 'require ["date", "fileinto", "relational", "imap4flags"];\n'
    'if date :is "date" "year" "2001" { fileinto "Y2001"; }\n'
    'if date :value "lt" "date" "date" "2005-01-01" { addflag "old"; }\n'
    'if date :originalzone :is "date" "weekday" ["0", "6"] '
    '{ fileinto "Weekend"; }\n'
    'if date :zone "+0530" :matches "date" "hour" "0*" '
    '{ fileinto "Night"; }',
    "index": 'require ["index", "fileinto"];\n'
    'if header :index 1 :last :contains "received" "localhost" '
    '{ fileinto "Local"; }\n'
    'if header :index 2 :matches "received" "*" { fileinto "Two"; }',
    "copy_redirect": 'require ["copy", "fileinto"];\n'
    'if header :contains "subject" "a" { fileinto :copy "A"; '
    'redirect :copy "archive@example.org"; }\n'
    'if size :over 3K { redirect "big@example.org"; }',
    "body": 'require ["body", "fileinto"];\n'
    'if body :contains "unsubscribe" { fileinto "Bulk"; }\n'
    'if body :raw :contains "base64" { fileinto "B64"; }',
    "body_content": 'require ["body", "fileinto"];\n'
    'if body :content "text/html" :contains "<a " { fileinto "Link"; }\n'
    'if body :content ["application", "image"] :contains "a" '
    '{ fileinto "Bin"; }\n'
    'if body :content "message/rfc822" :contains "subject" '
    '{ fileinto "Fwd"; }\n'
    'if body :content "multipart" :contains "mime" { fileinto "Pro"; }',
    "body_text": 'require ["body", "fileinto"];\n'
    'if body :text :matches "*thank*" { fileinto "Thanks"; }\n'
    'if body :content "text/plain" :is "" { fileinto "Empty"; }\n'
    'if body :content "text" :contains "\u00e9" { fileinto "Accent"; }',
    "encoded": 'require ["encoded-character", "fileinto"];\n'
    'if header :contains "subject" "${hex:74 65 73 74}" '
    '{ fileinto "${unicode:48 65}x"; }',
    "reject": 'require "reject";\nif size :over 8K { reject "too big"; }',
    "ereject": 'require "ereject";\n'
    'if header :contains "subject" "part" { ereject "no parts"; }',
    "vacation": 'require "vacation";\n'
    'if not header :contains "subject" "re:" '
    '{ vacation :days 3 :subject "away" "I am away"; }',
    "mailbox_create": 'require ["fileinto", "mailbox"];\n'
    'fileinto :create "New.Folder";',
    "octet": 'require "imap4flags";\n'
    'if header :is :comparator "i;octet" "mime-version" "1.0" '
    '{ addflag "v1"; }\n'
    'if header :is :comparator "i;octet" "Content-Transfer-Encoding" '
    '"base64" { addflag "lowerb64"; }',
    "matches_qmark": 'require "fileinto";\n'
    'if header :matches "subject" ["??", "???*s"] { fileinto "Q"; }\n'
    'if header :matches "from" "*\\\\**" { fileinto "Star"; }',
    "set_modifiers": 'require ["variables", "fileinto"];\n'
    'if header :matches "subject" "*" { set :upperfirst :lower "s" "${1}";'
    ' set :length "n" "${s}"; }\n'
    'if string :value "gt" :comparator "i;ascii-numeric" "${n}" "20" '
    '{ fileinto "Long"; }\n'
    'if string :matches "${s}" "A*" { fileinto "A"; }',
    "keep_discard": 'keep;\nif size :under 1K { discard; }',
    "elsif": 'require "fileinto";\n'
    'if header :contains "subject" "simple" { fileinto "S"; }\n'
    'elsif header :contains "subject" "test" { fileinto "T"; }\n'
    'elsif exists "x-mailer" { fileinto "X"; }\nelse { discard; }',
    "envelope_all": 'require ["envelope", "fileinto"];\n'
    'if envelope :all :is "from" "sender+list@lists.example.org" '
    '{ fileinto "Env"; }\n'
    'if envelope :domain :contains "to" "example" { fileinto "Dom"; }',
    "regex_captures": 'require ["regex", "variables", "fileinto"];\n'
    'if address :regex "from" "^([a-z]+)@([a-z]+)\\\\." '
    '{ fileinto "R.${2}"; }',
    "multiple_headers": 'require "fileinto";\n'
    'if header :contains ["subject", "from", "to"] ["mime", "test", "doe"] '
    '{ fileinto "Any"; }',
    "stop_early": 'require "fileinto";\nfileinto "First";\nstop;\n'
    'fileinto "Never";',
    "duplicate_fileinto": 'require ["fileinto", "imap4flags"];\n'
    'fileinto "Same";\naddflag "x";\nfileinto "Same";\nkeep;\nkeep;',
    "contains_empty": 'require "fileinto";\n'
    'if header :contains "subject" "" { fileinto "HasSubject"; }\n'
    'if address :is "from" "" { fileinto "EmptyFrom"; }',
    "count_ascii": 'require ["relational", "fileinto", "variables"];\n'
    'if string :count "eq" ["a", "", "b"] "2" { fileinto "Two"; }\n'
    'if header :count "eq" "x-nothing" "0" { fileinto "Zero"; }',
}

# pairs (script, corpus message) whose difference is intended, with the
# RFC that decides it; the sample test (test_sieve.py) checks the ones in
# its sample still show
DIFF_DIGEST = ("RFC 2046 5.1.5: a part of a multipart/digest without "
               "Content-Type is message/rfc822; Pigeonhole takes it as "
               "text/plain")
DIFF_CTE = ("RFC 2045 6.4: a part with an unknown transfer encoding is "
            "application/octet-stream; Pigeonhole keeps its declared type "
            "with nothing in it")
DIFF_UNFOLD = ("RFC 5322 2.2.3: unfolding removes the CRLF alone, so a "
               "folded Subject keeps its tab; sieve-test shows a space")
DIFFERENCES = {
    ("body_content", "cpython/msg_16.eml"):
        "RFC 2045 5.1: media types are case-insensitive; Pigeonhole "
        "takes only a lower-case message/rfc822 for one",
    ("body_content", "cpython/msg_30.eml"): DIFF_DIGEST,
    ("body_text", "cpython/msg_30.eml"): DIFF_DIGEST,
    ("body_content", "mime4j/mimetools/x-gzip64.eml"): DIFF_CTE,
    ("body_text", "mime4j/mimetools/x-gzip64.eml"): DIFF_CTE,
    ("body_content",
     "ruby-mail/error_emails/content_transfer_encoding_7-bit.eml"): DIFF_CTE,
    ("body_text",
     "ruby-mail/error_emails/content_transfer_encoding_7-bit.eml"): DIFF_CTE,
    ("body_content",
     "ruby-mail/error_emails/content_transfer_encoding_with_8bits.eml"):
        DIFF_CTE,
    ("body_text",
     "ruby-mail/error_emails/content_transfer_encoding_qp_with_space.eml"):
        DIFF_CTE,
    ("body_text", "stalwart-mail-parser/thirdparty/002.eml"):
        "RFC 2045 6.8: characters outside the base64 alphabet are "
        "ignored, so '?garbage' still decodes; Pigeonhole stops at the "
        "first and leaves the part empty",
    ("variables_captures", "cpython/msg_27.eml"): DIFF_UNFOLD,
    ("variables_captures", "ruby-mail/rfc2822/example14.eml"): DIFF_UNFOLD,
    ("address_parts",
     "ruby-mail/plain_emails/raw_email_with_at_display_name.eml"):
        "RFC 5228 2.7.4: only the malformed address of the list is "
        "invalid; the valid ones after it still match, where Pigeonhole "
        "drops the whole header",
    ("relational_count", "mimekit/messages/delivery-status-no-blank-line.eml"):
        "RFC 5322 3.4: 'unlisted-recipients:;' is a group without "
        "mailboxes, no address to count; Pigeonhole counts it as one",
    # not resolved: a part of zero octets between two delimiters (no
    # header, no blank line) has an empty body for Pigeonhole and none
    # here; a malformed message not examined yet
    ("body_text", "mime4j/testmsgs/multipartnestedemptyparts.eml"):
        "not resolved: an empty part is a body for Pigeonhole",
    ("body_text", "stalwart-mail-parser/malformed/020.eml"):
        "not resolved",
}

STORE = re.compile(r"\s*\* store message in folder: (.*)$")
FLAGS = re.compile(r"\s*\+ (?:add|set) IMAP flags: (.*)$")


def parse_reference(out, err):
    """sieve-test's report as a decision set"""
    if "final result: failed" in err or "final result: success" not in err:
        return {("error",)}
    res = set()
    cur = None
    for ln in out.splitlines():
        m = STORE.match(ln)
        if m:
            if cur:
                res.add(cur)
            cur = ("store", m.group(1), frozenset())
            continue
        m = FLAGS.match(ln)
        if m and cur:
            cur = (cur[0], cur[1], frozenset(
                f.lower() for f in m.group(1).split()))
            continue
        if ln.startswith(" * ") or ln.startswith("Implicit keep"):
            if cur:
                res.add(cur)
            cur = None
        m = re.match(r" \* redirect message to: <(.*)>$", ln)
        if m:
            res.add(("redirect", m.group(1)))
        if ln.startswith(" * reject message"):
            res.add(("reject",))
        if ln.startswith(" * send vacation message"):
            res.add(("vacation",))
    if cur:
        res.add(cur)
    return res


def unquote(s):
    return re.sub(r"\\(.)", r"\1", s)


def parse_ours(out, rc):
    """imapd -d -n's report as a decision set"""
    if rc != 0:
        return {("error",)}
    res = set()
    for ln in out.splitlines():
        ln = ln.split("  # ")[0]
        m = re.search(r':flags \[(.*?)\]', ln)
        flags = frozenset(unquote(f).lower() for f in
                          re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))
                          ) if m else frozenset()
        word = ln.split(" ")[0]
        arg = re.search(r'"((?:[^"\\]|\\.)*)"$', ln)
        arg = unquote(arg.group(1)) if arg else None
        if word == "fileinto":
            res.add(("store", arg, flags))
        elif word in ("keep", "implicit"):
            res.add(("store", "INBOX", flags))
        elif word == "redirect":
            res.add(("redirect", arg))
        elif word in ("reject", "ereject"):
            res.add(("reject",))
        elif word == "vacation":
            res.add(("vacation",))
    return res


# a few messages that reach many branches: list headers, many Received
# lines, encoded words, several recipients, multipart bodies
SAMPLE = ["cpython/msg_16.eml", "mimekit/messages/bounce.eml",
          "cpython/msg_01.eml"]


def messages(step):
    """every step'th corpus message; step 0: the sample"""
    if step == 0:
        return [os.path.join(lib.CORPUS, p) for p in SAMPLE]
    with open(os.path.join(lib.CORPUS, "MANIFEST.tsv")) as f:
        paths = [ln.split("\t")[0] for ln in f.read().splitlines()[1:]]
    return [os.path.join(lib.CORPUS, p) for p in paths[::step]]


def run_as(env, args, stdin=None):
    p = env.popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE,
                  env=env.env(TZ="UTC", IMAPD_SIEVE_STATE=os.path.join(
                      env.dir, "state")))
    out, err = p.communicate(stdin, timeout=30)
    return p.returncode, out.decode("utf-8", "replace"), \
        err.decode("utf-8", "replace")


def compare(env, step, scripts=SCRIPTS):
    """(pairs, [(script, message, ours, reference)] that differ)"""
    sdir = os.path.join(env.dir, "scripts")
    os.makedirs(sdir, exist_ok=True)
    for name, text in scripts.items():
        with open(os.path.join(sdir, name + ".sieve"), "w") as f:
            f.write(text + "\n")
    env.fix_owner()
    jobs = [(name, m) for name in scripts for m in messages(step)]

    def one(job):
        name, m = job
        path = os.path.join(sdir, name + ".sieve")
        with open(m, "rb") as f:
            data = f.read()
        rc, out, err = run_as(env, ["sieve-test", "-f", FROM, "-a", TO,
                                    "-r", TO, path, m])
        ref = parse_reference(out, err)
        rc2, out2, err2 = _ours(env, path, data)
        ours = parse_ours(out2, rc2)
        if ours != ref:
            return (name, os.path.relpath(m, lib.CORPUS), ours, ref, out,
                    out2 + err2)
        return None

    # two at a time: the reference takes most of the time
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        diffs = [d for d in ex.map(one, jobs) if d]
    return len(jobs), diffs


def _ours(env, path, data):
    p = env.popen([lib.IMAPD, "-d", "-n", "-f", FROM, "-a", TO],
                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE,
                  env=env.env(TZ="UTC", IMAPD_SIEVE=path))
    out, err = p.communicate(data, timeout=30)
    return p.returncode, out.decode("utf-8", "replace"), \
        err.decode("utf-8", "replace")


if __name__ == "__main__":
    step = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    with lib.Env() as env:
        pairs, diffs = compare(env, step)
        for d in diffs:
            print("DIFF %s %s\n  ours %s\n  ref  %s\n  why  %s" % (
                d[:4] + (DIFFERENCES.get(d[:2], "NOT LISTED"),)))
        print("%d scripts x %d messages = %d pairs, %d agree (%.1f%%)" % (
            len(SCRIPTS), len(messages(step)), pairs, pairs - len(diffs),
            100.0 * (pairs - len(diffs)) / pairs))
