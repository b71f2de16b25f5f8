#!/bin/sh
# Install what building imapd and running its tests need on Debian, when
# something is missing.  Quiet when everything is there.
#   sh tests/deps.sh          the server and the test tools (make check)
#   sh tests/deps.sh server   only what building and serving need (make run)
set -eu

# needed to build and to run the test runner at all
BUILD="build-essential libbearssl-dev libcrypt-dev zlib1g-dev python3"
BUILD="$BUILD libutf8proc-dev"
# the real clients and tools the tests drive (tests skip when absent)
TOOLS="isync curl openssl dovecot-imapd clang libclang-rt-14-dev"
# the man page's lint and the launchers started for real (xinetd conflicts
# with openbsd-inetd: it is unpacked beside it, see below)
TOOLS="$TOOLS mandoc openbsd-inetd ucspi-tcp s6 systemd libtirpc3 libwrap0"
# the PAM build, and the fail2ban filter's check
TOOLS="$TOOLS libpam0g-dev fail2ban"
# Sieve: Pigeonhole's sieve-test as the reference, a ManageSieve client
TOOLS="$TOOLS dovecot-sieve sieve-connect"
# strace: which directory reads a sync makes (test_store_inotify)
TOOLS="$TOOLS strace"
# make run: the demo serves with systemd-socket-activate and openssl
[ "${1:-}" = server ] && TOOLS="openssl systemd"
# make cross: Debian's cross compilers, what builds libxcrypt from its
# source package, and qemu-user for the tests
[ "${1:-}" = cross ] && TOOLS="gcc-aarch64-linux-gnu libc6-dev-arm64-cross
gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user autoconf automake
libtool pkg-config xz-utils bzip2 patch"
XINETD_DIR=/usr/local/lib/imapd-tests/xinetd

# the launchers' own daemons must not hold real ports: the tests start
# their own instances with their own configuration
quiet_daemons()
{
	for s in inetd openbsd-inetd xinetd; do
		if command -v systemctl >/dev/null 2>&1 &&
		    [ -d /run/systemd/system ]; then
			systemctl disable --now "$s" >/dev/null 2>&1 || true
		elif [ -x "/etc/init.d/$s" ]; then
			"/etc/init.d/$s" stop >/dev/null 2>&1 || true
		fi
	done
}

# xinetd from Debian's archive, unpacked (not installed) for the tests
unpack_xinetd()
{
	[ -n "${1:-}" ] || [ -x "$XINETD_DIR/usr/sbin/xinetd" ] && return 0
	[ "$(id -u)" -eq 0 ] || { echo "deps: as root: sh tests/deps.sh" \
	    "(unpacks xinetd)" >&2; return 0; }
	d=$(mktemp -d)
	(cd "$d" && apt-get download -qq xinetd >/dev/null 2>&1) ||
	    { apt-get update -qq >/dev/null;
	    (cd "$d" && apt-get download -qq xinetd >/dev/null 2>&1); }
	mkdir -p "$XINETD_DIR"
	dpkg-deb -x "$d"/xinetd_*.deb "$XINETD_DIR"
	rm -rf "$d"
}

missing=""
if command -v dpkg-query >/dev/null 2>&1; then
	for p in $BUILD $TOOLS; do
		if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
		    grep -q ' installed$'; then
			missing="$missing $p"
		fi
	done
else
	echo "deps: not Debian; install by hand: $BUILD $TOOLS" >&2
	exit 0
fi
if [ -z "$missing" ]; then
	unpack_xinetd "${1:-}"
	exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
	echo "deps: installing$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
	quiet_daemons
	unpack_xinetd "${1:-}"
	exit 0
fi

echo "deps: missing packages:$missing" >&2
echo "deps: as root: apt-get install$missing" >&2
for p in $missing; do
	case " $BUILD " in
	*" $p "*) exit 1 ;;
	esac
done
echo "deps: only test tools are missing; the tests that need them skip" >&2
exit 0
