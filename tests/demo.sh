#!/bin/sh
# make run: serve a demo Maildir on 127.0.0.1, one imapd per connection the
# way inetd does it:
#   127.0.0.1:1143  plain IMAP with STARTTLS
#   127.0.0.1:1993  implicit TLS (imapd -s)
# Everything lives in ./demo (Maildir, password hash, self-signed
# certificate).  Ctrl-C stops both listeners and removes what the demo
# created: ./demo and, when run as root, the imapd-demo account.  Ports can
# be changed with PLAIN_PORT and TLS_PORT.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
demo=$top/demo
imapd=$top/imapd
plain_port=${PLAIN_PORT:-1143}
tls_port=${TLS_PORT:-1993}

[ -x "$imapd" ] || { echo "demo: build imapd first (make)" >&2; exit 1; }

# imapd never runs as root: then serve as a dedicated unprivileged user
asuser=""
made_user=""
made_demo=""
if [ "$(id -u)" -eq 0 ]; then
	user=imapd-demo
	if ! id "$user" >/dev/null 2>&1; then
		useradd --system --no-create-home --home-dir /nonexistent \
		    --shell /usr/sbin/nologin "$user"
		made_user=$user
	fi
	asuser="setpriv --reuid=$(id -u $user) --regid=$(id -g $user) \
--clear-groups"
else
	user=$(id -un)
fi

[ -d "$demo" ] || made_demo=$demo
mkdir -p "$demo"
chmod 755 "$demo"
maildir=$demo/Maildir

message()
{
	# message dir name subject body
	{
		printf 'Date: %s\n' "$(LC_ALL=C date -R)"
		printf 'From: Demo Sender <sender@example.org>\n'
		printf 'To: %s@localhost\n' "$user"
		printf 'Subject: %s\n' "$3"
		printf 'Message-ID: <%s@imapd.demo>\n' "$2"
		printf 'MIME-Version: 1.0\n'
		printf 'Content-Type: text/plain; charset=utf-8\n\n'
		printf '%s\n' "$4"
	} >"$1/tmp/$2"
	mv "$1/tmp/$2" "$1/$5"
}

if [ ! -d "$maildir" ]; then
	for d in "$maildir" "$maildir/.Archive" "$maildir/.Archive.2024" \
	    "$maildir/.Sent"; do
		mkdir -p "$d/cur" "$d/new" "$d/tmp"
	done
	touch "$maildir/.Archive/maildirfolder" \
	    "$maildir/.Archive.2024/maildirfolder" "$maildir/.Sent/maildirfolder"
	now=$(date +%s)
	message "$maildir" "$now.M1P1.demo" "Welcome to imapd" \
	    "This message is new: it waits in new/." "new/$now.M1P1.demo"
	message "$maildir" "$now.M2P1.demo" "Already read" \
	    "This one carries the \\Seen flag." "cur/$now.M2P1.demo:2,S"
	message "$maildir" "$now.M3P1.demo" "Flagged and unread" \
	    "Flagged, not seen yet." "cur/$now.M3P1.demo:2,F"
	message "$maildir/.Archive" "$now.M4P1.demo" "An archived message" \
	    "Filed away." "cur/$now.M4P1.demo:2,RS"
	message "$maildir/.Archive.2024" "$now.M5P1.demo" "From last year" \
	    "Older mail." "cur/$now.M5P1.demo:2,S"
	message "$maildir/.Sent" "$now.M6P1.demo" "Something I sent" \
	    "Sent mail." "cur/$now.M6P1.demo:2,S"
	printf 'INBOX\nArchive\nSent\n' >"$maildir/subscriptions"
fi

if [ ! -s "$demo/password" ]; then
	(umask 077; printf 'demo-%s\n' \
	    "$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')" >"$demo/password")
fi
password=$(cat "$demo/password")
if [ ! -s "$demo/passwd" ] || [ "$demo/password" -nt "$demo/passwd" ]; then
	printf '%s\n' "$password" | $asuser "$imapd" -H >"$demo/passwd.new"
	mv "$demo/passwd.new" "$demo/passwd"
fi

if [ ! -s "$demo/cert.pem" ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$demo/key.pem" -out "$demo/cert.pem" -days 825 \
	    -subj /CN=localhost \
	    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
fi
chmod 600 "$demo/key.pem" "$demo/passwd" "$demo/password"
[ -n "$asuser" ] && chown -R "$user:" "$demo"

envs="MAILDIR=$maildir IMAPD_PASSWD=$demo/passwd IMAPD_CERT=$demo/cert.pem \
IMAPD_KEY=$demo/key.pem IMAPD_LOG_STDERR=1"

sa=$(command -v systemd-socket-activate || true)
for f in /usr/bin/systemd-socket-activate /lib/systemd/systemd-socket-activate \
    /usr/lib/systemd/systemd-socket-activate; do
	[ -z "$sa" ] && [ -x "$f" ] && sa=$f
done

# one listener: inetd-style, a new imapd per connection
serve()
{
	port=$1
	shift
	if [ -n "$sa" ]; then
		eargs=""
		for e in $envs; do
			eargs="$eargs -E $e"
		done
		# shellcheck disable=SC2086
		"$sa" -a --inetd -l "127.0.0.1:$port" $eargs $asuser \
		    "$imapd" "$@" &
	else
		# shellcheck disable=SC2086
		env $envs python3 - "$port" $asuser "$imapd" "$@" <<'PY' &
import os, socket, subprocess, sys
port, cmd = int(sys.argv[1]), sys.argv[2:]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(16)
children = []
while True:
    c, addr = s.accept()
    env = dict(os.environ, TCPREMOTEIP=addr[0], TCPREMOTEPORT=str(addr[1]))
    children.append(subprocess.Popen(cmd, stdin=c, stdout=c, env=env))
    c.close()
    children = [p for p in children if p.poll() is None]
PY
	fi
	pids="$pids $!"
}

pids=""
stop()
{
	trap - INT TERM EXIT
	# shellcheck disable=SC2086
	[ -n "$pids" ] && kill $pids 2>/dev/null
	wait 2>/dev/null || true
	if [ -n "$made_user" ]; then
		# the sessions end with their connections: give them 10 s
		i=0
		while [ $i -lt 100 ] && ps -u "$made_user" >/dev/null 2>&1; do
			sleep 0.1
			i=$((i + 1))
		done
		userdel "$made_user" 2>/dev/null || {
			echo "demo: user $made_user still has processes" >&2
			made_user=""
		}
	fi
	[ -z "$made_demo" ] || rm -rf "$made_demo"
	echo
	echo "demo: stopped${made_demo:+, $made_demo removed}${made_user:+, \
user $made_user removed}"
	exit 0
}
trap stop INT TERM EXIT

serve "$plain_port"
serve "$tls_port" -s
sleep 0.5
# shellcheck disable=SC2086
for p in $pids; do
	kill -0 "$p" 2>/dev/null || { echo "demo: a listener failed \
(ports $plain_port/$tls_port in use?)" >&2; stop; }
done

cat <<EOM

imapd demo is running (Ctrl-C stops it)
  Maildir:   $maildir
  user:      $user
  password:  $password
  plain+STARTTLS  127.0.0.1:$plain_port     implicit TLS  127.0.0.1:$tls_port
  (self-signed certificate: $demo/cert.pem)

Try:
  curl -u '$user:$password' imap://127.0.0.1:$plain_port/
  curl -u '$user:$password' 'imap://127.0.0.1:$plain_port/INBOX;UID=1'
  curl --ssl-reqd --cacert $demo/cert.pem -u '$user:$password' imap://localhost:$plain_port/INBOX?ALL
  curl --cacert $demo/cert.pem -u '$user:$password' 'imaps://localhost:$tls_port/INBOX;UID=2'
  openssl s_client -quiet -connect 127.0.0.1:$tls_port
  openssl s_client -quiet -starttls imap -connect 127.0.0.1:$plain_port
    then type:  a LOGIN $user "$password"
                b SELECT INBOX
                c FETCH 1:* (FLAGS ENVELOPE)
                d LOGOUT

EOM
wait
