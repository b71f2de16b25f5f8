#!/bin/sh
# Install what building imapd and running its tests need on Debian, when
# something is missing.  Quiet when everything is there.
set -eu

# needed to build and to run the test runner at all
BUILD="build-essential libbearssl-dev libcrypt-dev zlib1g-dev python3"
BUILD="$BUILD libutf8proc-dev"
# the real clients and tools the tests drive (tests skip when absent)
TOOLS="isync curl openssl dovecot-imapd clang libclang-rt-14-dev"

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
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	echo "deps: installing$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
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
