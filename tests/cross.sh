#!/bin/sh
# make cross ARCH=arm64|armhf: imapd for a Raspberry Pi (arm64: 64-bit
# Raspberry Pi OS / Debian on a Pi 3, 4 or 5; armhf: 32-bit) with Debian's
# cross compilers.
#
# The target's libraries are not taken from Debian's multiarch packages
# (they refuse to install beside native ones of another version, and
# libcrypt has no cross package): BearSSL, zlib, libxcrypt and utf8proc are
# built for the target from Debian's source packages (the upstream tarball
# with Debian's patches), at pinned versions whose files are checked by
# SHA-256, inside cross/ (nothing is installed system-wide).  Only Debian's archive is reached: apt-get source, with a
# private deb-src list in cross/apt.  imapd links them statically and needs
# only the target's C library.  The result is cross/ARCH/imapd, stripped.
#
#   sh tests/cross.sh ARCH          build
#   sh tests/cross.sh ARCH check    also write cross/ARCH/imapd-qemu, which
#                                   runs it under qemu-user (for IMAPD_BIN)
set -eu

arch=${1:-}
case $arch in
arm64) triple=aarch64-linux-gnu qemu=qemu-aarch64 ;;
armhf) triple=arm-linux-gnueabihf qemu=qemu-arm ;;
*) echo "usage: make cross ARCH=arm64|armhf" >&2; exit 1 ;;
esac

top=$(cd "$(dirname "$0")/.." && pwd)
cross=$top/cross
out=$cross/$arch
sysroot=$out/sysroot
jobs=$(nproc 2>/dev/null || echo 2)

# source package and version; then each of its files with its SHA-256
PINS="bearssl 0.6+dfsg.1-3
bearssl_0.6+dfsg.1.orig.tar.xz
102a625bd8f6155260867a50c508df8d8c3f796985dd744df1a68e5cd1a79004
bearssl_0.6+dfsg.1-3.debian.tar.xz
051264300dffd810e7ea08f8210d3f9f61773dcd322086c0cbd02bee8d1f73df
zlib 1:1.2.13.dfsg-1
zlib_1.2.13.dfsg.orig.tar.bz2
71feb7947e3c00ef125f83b79a4e529bde31171e5babe48b391f06758d1ab0a1
zlib_1.2.13.dfsg-1.debian.tar.xz
f66cf3d4f2d7defcd4d1fd1fb0a11ee39f1e01b42ec7d059c9dc5c1695133c44
libxcrypt 1:4.4.33-2
libxcrypt_4.4.33.orig.tar.xz
5e2da5cb5f263e9ac4c4b3f49c75e3b8523889210f45c60bb7e97b229c75a10b
libxcrypt_4.4.33-2.debian.tar.xz
23194c9b0642533fb27fe8c33391d3fa838a55e17e5a88a419ed31548b0721c9
utf8proc 2.8.0-1
utf8proc_2.8.0.orig.tar.gz
a0a60a79fe6f6d54e7d411facbfcc867a6e198608f2cd992490e46f04b1bcecc
utf8proc_2.8.0-1.debian.tar.xz
eae4af835e46ccd258d3eebb501b3610330a434ec6194a0d11c0569fe4c8480b"

say()
{
	echo "cross($arch): $*" >&2
}

# apt with a private deb-src list and state: the system's sources.list
# is left alone, and no root is needed
apt_private()
{
	cmd=$1
	shift
	"$cmd" -o Dir::Etc::sourcelist="$cross/apt/sources.list" \
	    -o Dir::Etc::sourceparts=- -o Dir::State::Lists="$cross/apt/lists" \
	    -o Dir::Cache="$cross/apt/cache" -o APT::Sandbox::User="$(id -un)" \
	    -o Debug::NoLocking=1 "$@"
}

fetch()
{
	mkdir -p "$cross/apt/lists/partial" "$cross/apt/cache/archives/partial" \
	    "$cross/src"
	[ -s "$cross/apt/sources.list" ] || printf '%s\n' \
	    "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]" \
	    "http://deb.debian.org/debian bookworm main" | paste -sd' ' \
	    >"$cross/apt/sources.list"
	echo "$PINS" | paste - - - - - | while read -r pkg ver orig osum deb dsum
	do
		if [ ! -s "$cross/src/$orig" ] || [ ! -s "$cross/src/$deb" ]; then
			if ! ls "$cross"/apt/lists/*Sources* >/dev/null 2>&1; then
				say "reading Debian's source index"
				apt_private apt-get -qq update
			fi
			say "apt-get source $pkg=$ver"
			(cd "$cross/src" &&
			    apt_private apt-get -qq source --download-only \
			    "$pkg=$ver" >/dev/null)
		fi
		for f in "$orig $osum" "$deb $dsum"; do
			set -- $f
			echo "$2  $cross/src/$1" | sha256sum -c --quiet - || {
				say "$1: checksum mismatch"
				rm -f "$cross/src/$1"
				exit 1
			}
		done
	done
}

# a fresh tree in $out/build/DIR from the upstream tarball ORIG, with the
# patches of the Debian tarball DEB applied: unpack ORIG DEB DIR
unpack()
{
	rm -rf "$out/build/$3"
	mkdir -p "$out/build"
	tar -xf "$cross/src/$1" -C "$out/build"
	tar -xf "$cross/src/$2" -C "$out/build/$3"
	if [ -f "$out/build/$3/debian/patches/series" ]; then
		sed -e 's/#.*//' -e '/^[[:space:]]*$/d' \
		    "$out/build/$3/debian/patches/series" | while read -r p _; do
			patch -s -p1 -d "$out/build/$3" \
			    <"$out/build/$3/debian/patches/$p"
		done
	fi
}

build_bearssl()
{
	[ -s "$sysroot/lib/libbearssl.a" ] && return 0
	say "BearSSL"
	unpack bearssl_0.6+dfsg.1.orig.tar.xz \
	    bearssl_0.6+dfsg.1-3.debian.tar.xz bearssl-0.6
	make -s -C "$out/build/bearssl-0.6" -j"$jobs" CONF=Unix \
	    CC="$triple-gcc" AR="$triple-ar" LD="$triple-gcc" \
	    LDDLL="$triple-gcc" BUILD=build lib >/dev/null
	mkdir -p "$sysroot/lib" "$sysroot/include"
	cp "$out/build/bearssl-0.6/build/libbearssl.a" "$sysroot/lib/"
	cp "$out/build/bearssl-0.6"/inc/*.h "$sysroot/include/"
}

build_zlib()
{
	[ -s "$sysroot/lib/libz.a" ] && return 0
	say "zlib"
	unpack zlib_1.2.13.dfsg.orig.tar.bz2 zlib_1.2.13.dfsg-1.debian.tar.xz \
	    zlib-1.2.13.dfsg
	(cd "$out/build/zlib-1.2.13.dfsg" &&
	    CHOST=$triple CC=$triple-gcc CFLAGS=-O2 ./configure --static \
	    --prefix="$sysroot" >/dev/null &&
	    make -s -j"$jobs" libz.a >/dev/null &&
	    make -s install >/dev/null)
}

build_libxcrypt()
{
	[ -s "$sysroot/lib/libcrypt.a" ] && return 0
	say "libxcrypt"
	unpack libxcrypt_4.4.33.orig.tar.xz libxcrypt_4.4.33-2.debian.tar.xz \
	    libxcrypt-4.4.33
	(cd "$out/build/libxcrypt-4.4.33" &&
	    autoreconf -fi >/dev/null 2>&1 &&
	    ./configure -q --host="$triple" --prefix="$sysroot" \
	    --disable-shared --enable-static --enable-hashes=strong,glibc \
	    --enable-obsolete-api=no --disable-failure-tokens \
	    --disable-werror >/dev/null &&
	    make -s -j"$jobs" >/dev/null 2>&1 &&
	    make -s install >/dev/null)
}

build_utf8proc()
{
	[ -s "$sysroot/lib/libutf8proc.a" ] && return 0
	say "utf8proc"
	unpack utf8proc_2.8.0.orig.tar.gz utf8proc_2.8.0-1.debian.tar.xz \
	    utf8proc-2.8.0
	make -s -C "$out/build/utf8proc-2.8.0" -j"$jobs" CC="$triple-gcc" \
	    AR="$triple-ar" libutf8proc.a >/dev/null
	mkdir -p "$sysroot/lib" "$sysroot/include"
	cp "$out/build/utf8proc-2.8.0/libutf8proc.a" "$sysroot/lib/"
	cp "$out/build/utf8proc-2.8.0/utf8proc.h" "$sysroot/include/"
}

# imapd from the sources in $top, built in $out so that the native
# objects are left alone
build_imapd()
{
	say "imapd"
	[ -f "$top/config.h" ] || cp "$top/config.def.h" "$top/config.h"
	rm -rf "$out/obj"	# the flags may have changed: all anew
	mkdir -p "$out/obj"
	printf 'vpath %%.c %s\nvpath %%.h %s\ninclude %s/Makefile\n' \
	    "$top" "$top" "$top" >"$out/obj/Makefile"
	make -s -C "$out/obj" CC="$triple-gcc" \
	    CFLAGS="-std=c99 -O2 -Wall -Wextra -Wno-unused-parameter -Werror -I$sysroot/include" \
	    LDFLAGS="-L$sysroot/lib" imapd
	"$triple-strip" -o "$out/imapd" "$out/obj/imapd"
	say "$out/imapd: $(wc -c <"$out/imapd") bytes stripped"
}

# the target's iconv modules for the tests under qemu (Debian's cross C
# library lacks them, a Pi has them): from the target's libc6 package,
# unpacked, never installed
target_gconv()
{
	gconv=$out/target/usr/lib/$triple/gconv
	[ -d "$gconv" ] && return 0
	mkdir -p "$cross/apt-$arch/lists/partial" \
	    "$cross/apt-$arch/cache/archives/partial" "$cross/apt-$arch/deb"
	echo "deb [arch=$arch signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main" \
	    >"$cross/apt-$arch/sources.list"
	set -- -o Dir::Etc::sourcelist="$cross/apt-$arch/sources.list" \
	    -o Dir::Etc::sourceparts=- -o Dir::State::Lists="$cross/apt-$arch/lists" \
	    -o Dir::Cache="$cross/apt-$arch/cache" -o Dir::State::status=/dev/null \
	    -o APT::Sandbox::User="$(id -un)" -o Debug::NoLocking=1 \
	    -o APT::Architectures::="$arch"
	say "the target's libc6 (iconv modules for qemu)"
	apt-get "$@" -qq update
	(cd "$cross/apt-$arch/deb" && apt-get "$@" -qq download "libc6:$arch")
	dpkg-deb -x "$cross/apt-$arch/deb"/libc6_*.deb "$out/target"
}

qemu_wrapper()
{
	command -v "$qemu" >/dev/null || { say "$qemu missing (qemu-user)"; exit 1; }
	target_gconv
	cat >"$out/imapd-qemu" <<EOF
#!/bin/sh
# imapd built for $arch, run under qemu-user
GCONV_PATH=$gconv QEMU_LD_PREFIX=/usr/$triple exec $qemu "$out/imapd" "\$@"
EOF
	chmod 755 "$out/imapd-qemu"
}

command -v "$triple-gcc" >/dev/null ||
    { say "$triple-gcc missing: sh tests/deps.sh cross"; exit 1; }
fetch
build_bearssl
build_zlib
build_libxcrypt
build_utf8proc
build_imapd
[ "${2:-}" = check ] && qemu_wrapper
exit 0
