#!/bin/sh
# SELECT of a big folder: the time imapd takes to answer
# "SELECT INBOX" + "LOGOUT" for a Maildir of N messages (default 100000),
# cold (no imapd-uidlist yet: every file gets its UID) and warm (list
# present, new process), then STATUS, and the peak RSS of each run
# (/usr/bin/time -v).  When run as root, imapd runs as the test user
# "imapdtest" (tests/lib.py creates it), since it refuses to serve as root.
#
# usage: sh bench/select.sh [messages] [runs]
set -eu

n=${1:-100000}
runs=${2:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
imapd=${IMAPD_BIN:-$here/imapd}
dir=$(mktemp -d /tmp/imapd-bench-XXXXXX)
trap 'rm -rf "$dir"' EXIT INT TERM
chmod 755 "$dir"
md=$dir/Maildir

[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (GNU time)" >&2; exit 1; }
[ -x "$imapd" ] || { echo "no $imapd: run make" >&2; exit 1; }

# messages the way a delivery agent and a previous client left them:
# two thirds seen in cur/, a few unread in new/, sizes in the names
python3 - "$md" "$n" <<'EOF'
import os, sys
md, n = sys.argv[1], int(sys.argv[2])
for d in ("cur", "new", "tmp"):
    os.makedirs(os.path.join(md, d))
body = (b"From: a@example.org\nTo: b@example.org\nSubject: bench %d\n"
        b"Message-ID: <%d@example.org>\n\n" + b"hello world\n" * 20)
for i in range(n):
    data = body % (i, i)
    base = "%d.M%dP4242Q%d.bench,S=%d,W=%d" % (
        1700000000 + i // 10, i % 1000000, i, len(data),
        len(data) + data.count(b"\n"))
    if i >= n - 10:
        path = os.path.join(md, "new", base)
    else:
        path = os.path.join(md, "cur", base + (":2,S" if i % 3 else ":2,"))
    with open(path, "wb") as f:
        f.write(data)
# a Maildir that has settled: nothing changed in the last minute
t = os.path.getmtime(md) - 60
for d in ("cur", "new"):
    os.utime(os.path.join(md, d), (t, t))
EOF

as_user=""
if [ "$(id -u)" = 0 ]; then
	id imapdtest >/dev/null 2>&1 || useradd --system --no-create-home \
	    --home-dir /nonexistent --shell /usr/sbin/nologin imapdtest
	chown -R imapdtest: "$dir"
	as_user="setpriv --reuid=imapdtest --regid=imapdtest --clear-groups"
fi

# one imapd over pipes, as inetd starts it; prints "seconds maxrss-KB"
run() {
	printf '%s\r\na9 LOGOUT\r\n' "$1" >"$dir/in"
	start=$(date +%s.%N)
	$as_user env -i PATH="$PATH" HOME="$dir" MAILDIR="$md" \
	    IMAPD_LOG_STDERR=1 /usr/bin/time -v "$imapd" -p <"$dir/in" \
	    >"$dir/out" 2>"$dir/err"
	end=$(date +%s.%N)
	grep -q '^a1 OK' "$dir/out" || { cat "$dir/out" "$dir/err" >&2; exit 1; }
	rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$dir/err")
	echo "$start $end $rss" | awk '{ printf "%.3f s  %6d KB\n", $2 - $1, $3 }'
}

echo "$n messages"
printf 'SELECT cold (no imapd-uidlist):  '
run 'a1 SELECT INBOX'
grep -E '^\* [0-9]+ (EXISTS|RECENT)' "$dir/out" | tr -d '\r' | tr '\n' ' '
echo
ls -l "$md/imapd-uidlist" | awk '{ print "imapd-uidlist: " $5 " bytes" }'
i=0
while [ $i -lt "$runs" ]; do
	printf 'SELECT warm:                     '
	run 'a1 SELECT INBOX'
	i=$((i + 1))
done
printf 'EXAMINE warm:                    '
run 'a1 EXAMINE INBOX'
printf 'STATUS (MESSAGES UNSEEN UIDNEXT): '
run 'a1 STATUS INBOX (MESSAGES UNSEEN UIDNEXT)'
printf 'STATUS (SIZE):                   '
run 'a1 STATUS INBOX (SIZE)'
printf 'baseline (LOGOUT only):          '
run 'a1 NOOP'
