# imapd: a small IMAP server for one person's Maildir
.POSIX:

VERSION = 0.1
PREFIX = /usr/local
MANPREFIX = $(PREFIX)/share/man

CC = cc
CPPFLAGS = -D_DEFAULT_SOURCE -D_GNU_SOURCE -DVERSION=\"$(VERSION)\"
CFLAGS = -std=c99 -O2 -g -Wall -Wextra -Wno-unused-parameter
LDFLAGS =
LDLIBS = -lbearssl -lcrypt
# COMPRESS=DEFLATE (RFC 4978); empty both to build without zlib
ZCPPFLAGS = -DWITH_ZLIB
ZLIBS = -lz

SRC = imapd.c mailbox.c view.c fetch.c parse.c io.c util.c auth.c search.c \
      maildir.c mime.c tls.c \
      index.c msgcache.c folders.c sync.c message.c \
      compress.c mutf7.c sort.c
HDR = util.h io.h parse.h imapd.h session.h maildir.h mime.h tls.h compress.h mutf7.h \
      sort.h config.h \
      store.h
OBJ = $(SRC:.c=.o)

all: imapd

config.h:
	cp config.def.h $@

$(OBJ): $(HDR)

.c.o:
	$(CC) $(CPPFLAGS) $(ZCPPFLAGS) $(CFLAGS) -c $<

imapd: $(OBJ)
	$(CC) $(LDFLAGS) -o $@ $(OBJ) $(LDLIBS) $(ZLIBS)

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

run: deps imapd
	@sh tests/demo.sh

install: imapd
	mkdir -p $(DESTDIR)$(PREFIX)/bin
	cp -f imapd $(DESTDIR)$(PREFIX)/bin
	chmod 755 $(DESTDIR)$(PREFIX)/bin/imapd

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/imapd

# the MIME parser under libFuzzer for FUZZTIME seconds, seeded with the
# shared corpus (copied: new inputs go to the copy); crashes land in
# fuzz/regress/, which the tests replay
FUZZTIME = 60
FUZZCC = clang
FUZZFLAGS = -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined

fuzz/fuzz_mime: fuzz/fuzz_mime.c mime.c util.c mime.h util.h
	$(FUZZCC) $(CPPFLAGS) $(FUZZFLAGS) -o $@ fuzz/fuzz_mime.c mime.c util.c

# the command and SEARCH parsers, fed a client's byte stream
fuzz/fuzz_parse: fuzz/fuzz_parse.c parse.c io.c util.c search.c maildir.c mime.c \
    mutf7.c $(HDR)
	$(FUZZCC) $(CPPFLAGS) $(FUZZFLAGS) -o $@ fuzz/fuzz_parse.c parse.c io.c \
	    util.c search.c maildir.c mime.c mutf7.c

fuzz: fuzz/fuzz_mime fuzz/fuzz_parse
	d=$$(mktemp -d) && cp -R ../shared/corpus/. $$d/ && \
	./fuzz/fuzz_mime -max_total_time=$(FUZZTIME) -timeout=10 \
	    -artifact_prefix=fuzz/regress/ $$d fuzz/regress; \
	rc=$$?; rm -rf $$d; [ $$rc -eq 0 ] || exit $$rc; \
	d=$$(mktemp -d) && cp fuzz/seeds/* $$d/ && \
	./fuzz/fuzz_parse -max_total_time=$(FUZZTIME) -timeout=10 \
	    -artifact_prefix=fuzz/regress-parse/ $$d fuzz/regress-parse; \
	rc=$$?; rm -rf $$d; exit $$rc

clean:
	rm -f imapd $(OBJ) fuzz/*.o fuzz/fuzz_mime fuzz/fuzz_parse

.PHONY: all deps check check-asan run install uninstall clean fuzz
