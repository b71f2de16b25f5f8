# imapd: a small IMAP server for one person's Maildir
.POSIX:

VERSION = 0.1
PREFIX = /usr/local
MANPREFIX = $(PREFIX)/share/man

CC = cc
STRIP = strip
CPPFLAGS = -D_DEFAULT_SOURCE -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -D_TIME_BITS=64 \
	   -DVERSION=\"$(VERSION)\"
CFLAGS = -std=c99 -O2 -g -Wall -Wextra -Wno-unused-parameter
LDFLAGS =
LDLIBS = -lbearssl -lcrypt -lutf8proc
# COMPRESS=DEFLATE (RFC 4978); empty both to build without zlib
ZCPPFLAGS = -DWITH_ZLIB
ZLIBS = -lz
# logins decided by a PAM service (make PAM=1) or by a qmail checkpassword
# program (make CHECKPASSWORD=1) instead of the password file
AUTHFLAGS = $(PAMFLAGS$(PAM)) $(CPFLAGS$(CHECKPASSWORD))
AUTHLIBS = $(PAMLIBS$(PAM))
PAMFLAGS1 = -DWITH_PAM
PAMLIBS1 = -lpam
CPFLAGS1 = -DWITH_CHECKPASSWORD
# the full-text index for SEARCH (fts.c); empty to build without it
FTSCPPFLAGS = -DWITH_FTS

SRC = imapd.c mailbox.c view.c fetch.c parse.c io.c util.c auth.c search.c \
      imapform.c mimehdr.c mimepart.c mimeaddr.c mimesect.c mimesearch.c \
      check.c authfail.c sandbox.c \
      maildir.c mime.c tls.c \
      index.c msgcache.c folders.c sync.c scan.c txn.c message.c \
      compress.c mutf7.c sort.c \
      deliver.c sieve.c sievexec.c managesieve.c fts.c \
      binary.c partial.c savedate.c preview.c quota.c unicode.c context.c \
      url.c progress.c \
      session.c startup.c html.c notify.c
HDR = util.h io.h parse.h imapd.h session.h maildir.h mime.h tls.h compress.h mutf7.h \
      imapform.h mimeint.h \
      sort.h authfail.h sandbox.h sieve.h fts.h config.h \
      binary.h partial.h savedate.h preview.h quota.h unicode.h context.h \
      url.h progress.h store.h \
      search.h auth.h startup.h html.h notify.h
OBJ = $(SRC:.c=.o)

all: imapd

config.h:
	cp config.def.h $@

$(OBJ): $(HDR)

.c.o:
	$(CC) $(CPPFLAGS) $(ZCPPFLAGS) $(FTSCPPFLAGS) $(AUTHFLAGS) $(CFLAGS) -c $<

imapd: $(OBJ)
	$(CC) $(LDFLAGS) -o $@ $(OBJ) $(LDLIBS) $(ZLIBS) $(AUTHLIBS)

# the PAM and checkpassword builds beside the usual one (the tests use
# them): only auth.c differs
imapd-pam: $(OBJ)
	$(CC) $(CPPFLAGS) -DWITH_PAM $(CFLAGS) $(LDFLAGS) -o $@ auth.c \
	    $(OBJ:auth.o=) $(LDLIBS) $(ZLIBS) -lpam

imapd-checkpassword: $(OBJ)
	$(CC) $(CPPFLAGS) -DWITH_CHECKPASSWORD $(CFLAGS) $(LDFLAGS) -o $@ \
	    auth.c $(OBJ:auth.o=) $(LDLIBS) $(ZLIBS)

# everything the build and the tests need on Debian
deps:
	@sh tests/deps.sh

check: deps
	$(MAKE) imapd
	python3 tests/run.py

# the tests again, against a build with AddressSanitizer and UBSan
check-asan: deps
	$(MAKE) clean
	$(MAKE) CFLAGS="-std=c99 -O1 -g -Wall -Wextra -Werror -Wno-unused-parameter -fsanitize=address,undefined -fno-omit-frame-pointer" LDFLAGS="-fsanitize=address,undefined" imapd
	ASAN_OPTIONS=detect_leaks=0 python3 tests/run.py

# the demo needs only the server's packages; it removes what it made
run:
	@sh tests/deps.sh server
	@$(MAKE) -s imapd
	@sh tests/demo.sh

install: imapd
	mkdir -p $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(MANPREFIX)/man8
	cp -f imapd $(DESTDIR)$(PREFIX)/bin/imapd
	$(STRIP) $(DESTDIR)$(PREFIX)/bin/imapd
	chmod 755 $(DESTDIR)$(PREFIX)/bin/imapd
	cp -f imapd.8 $(DESTDIR)$(MANPREFIX)/man8/imapd.8
	chmod 644 $(DESTDIR)$(MANPREFIX)/man8/imapd.8

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/imapd $(DESTDIR)$(MANPREFIX)/man8/imapd.8

# Raspberry Pi: ARCH=arm64 (64-bit OS) or armhf (32-bit) with Debian's
# cross compilers; BearSSL, zlib and libxcrypt are built for the target from
# Debian's source packages in cross/ (tests/cross.sh).  Result: cross/ARCH/imapd
ARCH = arm64
cross:
	@sh tests/deps.sh cross
	@sh tests/cross.sh $(ARCH)

# the test suite (or the tests named in TESTS) against cross/ARCH/imapd
# under qemu-user
cross-check:
	@sh tests/deps.sh cross
	@sh tests/deps.sh
	@sh tests/cross.sh $(ARCH) check
	IMAPD_BIN=$(CURDIR)/cross/$(ARCH)/imapd-qemu python3 tests/run.py $(TESTS)

# the MIME parser under libFuzzer for FUZZTIME seconds, seeded with the
# shared corpus (copied: new inputs go to the copy); crashes land in
# fuzz/regress/, which the tests replay
FUZZTIME = 60
FUZZCC = clang
FUZZFLAGS = -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined

# the message code, and its IMAP writer
MIMESRC = mime.c mimehdr.c mimepart.c mimeaddr.c mimesect.c mimesearch.c \
    html.c
MIMEHDR = mime.h mimeint.h imapform.h html.h
fuzz/fuzz_mime: fuzz/fuzz_mime.c $(MIMESRC) imapform.c parse.c io.c util.c \
    binary.c preview.c unicode.c $(MIMEHDR) util.h binary.h preview.h \
    unicode.h parse.h io.h config.h
	$(FUZZCC) $(CPPFLAGS) $(FUZZFLAGS) -o $@ fuzz/fuzz_mime.c $(MIMESRC) \
	    imapform.c parse.c io.c util.c binary.c preview.c unicode.c \
	    -lutf8proc

# the command and SEARCH parsers, fed a client's byte stream
FUZZSTORE = maildir.c folders.c sync.c scan.c txn.c message.c index.c msgcache.c
fuzz/fuzz_parse: fuzz/fuzz_parse.c parse.c io.c util.c search.c $(FUZZSTORE) \
    $(MIMESRC) imapform.c mutf7.c partial.c savedate.c unicode.c url.c $(HDR)
	$(FUZZCC) $(CPPFLAGS) $(FUZZFLAGS) -o $@ fuzz/fuzz_parse.c parse.c io.c \
	    util.c search.c $(FUZZSTORE) $(MIMESRC) imapform.c mutf7.c \
	    partial.c savedate.c unicode.c url.c -lutf8proc

# the failure record (authfail.c) as read from any bytes
fuzz/fuzz_authfail: fuzz/fuzz_authfail.c authfail.c util.c authfail.h util.h \
    config.h
	$(FUZZCC) $(CPPFLAGS) $(FUZZFLAGS) -o $@ fuzz/fuzz_authfail.c authfail.c \
	    util.c

# the Sieve parser and interpreter, fed scripts
fuzz/fuzz_sieve: fuzz/fuzz_sieve.c sieve.c sievexec.c $(MIMESRC) unicode.c \
    util.c sieve.h $(MIMEHDR) unicode.h util.h config.h
	$(FUZZCC) $(CPPFLAGS) $(FUZZFLAGS) -o $@ fuzz/fuzz_sieve.c sieve.c \
	    sievexec.c $(MIMESRC) unicode.c util.c -lutf8proc

# the full-text index's segment reader, fed damaged segment files
fuzz/fuzz_fts: fuzz/fuzz_fts.c fts.c $(FUZZSTORE) $(MIMESRC) mutf7.c \
    unicode.c util.c $(HDR)
	$(FUZZCC) $(CPPFLAGS) -DWITH_FTS $(FUZZFLAGS) -o $@ fuzz/fuzz_fts.c \
	    $(FUZZSTORE) $(MIMESRC) mutf7.c unicode.c util.c -lutf8proc

fuzz: fuzz/fuzz_mime fuzz/fuzz_parse fuzz/fuzz_sieve fuzz/fuzz_fts
	d=$$(mktemp -d) && cp -R ../shared/corpus/. $$d/ && \
	./fuzz/fuzz_mime -max_total_time=$(FUZZTIME) -timeout=10 \
	    -artifact_prefix=fuzz/regress/ $$d fuzz/regress; \
	rc=$$?; rm -rf $$d; [ $$rc -eq 0 ] || exit $$rc; \
	d=$$(mktemp -d) && cp fuzz/seeds/* $$d/ && \
	./fuzz/fuzz_parse -max_total_time=$(FUZZTIME) -timeout=10 \
	    -artifact_prefix=fuzz/regress-parse/ $$d fuzz/regress-parse; \
	rc=$$?; rm -rf $$d; [ $$rc -eq 0 ] || exit $$rc; \
	d=$$(mktemp -d) && cp fuzz/seeds-sieve/* $$d/ && \
	./fuzz/fuzz_sieve -max_total_time=$(FUZZTIME) -timeout=10 \
	    -artifact_prefix=fuzz/regress-sieve/ $$d fuzz/regress-sieve; \
	rc=$$?; rm -rf $$d; [ $$rc -eq 0 ] || exit $$rc; \
	d=$$(mktemp -d) && cp fuzz/seeds-fts/* $$d/ && \
	./fuzz/fuzz_fts -max_total_time=$(FUZZTIME) -timeout=10 \
	    -artifact_prefix=fuzz/regress-fts/ $$d fuzz/regress-fts; \
	rc=$$?; rm -rf $$d; exit $$rc

clean:
	rm -f imapd imapd-pam imapd-checkpassword $(OBJ) fuzz/*.o fuzz/fuzz_mime fuzz/fuzz_parse \
	    fuzz/fuzz_authfail fuzz/fuzz_sieve fuzz/fuzz_fts

.PHONY: all deps check check-asan run install uninstall clean fuzz cross \
	cross-check
