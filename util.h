/* util.h: allocation, growable buffers, logging and small helpers shared by every part */
#ifndef UTIL_H
#define UTIL_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* a growable byte buffer; p is always NUL-terminated after len bytes */
struct buf {
	char *p;
	size_t len, cap;
};

void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
void *xrealloc(void *, size_t);
void *xreallocarray(void *, size_t, size_t);
char *xstrdup(const char *);

void buf_grow(struct buf *, size_t);
void buf_add(struct buf *, const void *, size_t);
void buf_addc(struct buf *, int);
void buf_adds(struct buf *, const char *);
/* decimal digits of v at the end of the room ending at e; their start */
char *dec_digits(char *e, uint64_t v);
void buf_addnum(struct buf *, uint64_t);
void buf_printf(struct buf *, const char *, ...)
	__attribute__((format(printf, 2, 3)));
/* append s as an IMAP string: quoted when it can be, a literal otherwise,
 * NIL when s is NULL */
void buf_addstr(struct buf *, const char *s, size_t n);
void buf_reset(struct buf *);
void buf_free(struct buf *);
/* code point c (at most U+10FFFF) as UTF-8 */
void buf_add_utf8(struct buf *, uint32_t c);
/* the length of the valid UTF-8 sequence at s, n octets left (RFC 3629:
 * no overlong forms, surrogates or code points past U+10FFFF); 1 for
 * ASCII, 0 for none */
size_t utf8_len(const unsigned char *s, size_t n);

/* a configured path into out: the environment variable env (may be
 * NULL) when it is set and not empty, else def; a leading "~/" stands
 * for home_dir().  0, or -1 with errno ENOENT when there is no home
 * directory, ENAMETOOLONG when the path does not fit */
int path_expand(char *out, size_t size, const char *env, const char *def);

/* logging goes to syslog (LOG_MAIL) or, when IMAPD_LOG_STDERR is set or
 * stderr is not a socket/pipe to the launcher, to stderr */
void log_open(const char *ident);
/* imapd -t: log lines go to stderr as "imapd: ...", for a person to read */
void log_terminal(void);
void logmsg(int prio, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* src made safe for a log or response line, into dst (size bytes, always
 * terminated): control characters and bytes that are not valid UTF-8
 * become \xHH; cut short rather than overflow.  Returns dst. */
char *esc(char *dst, size_t size, const char *src);
/* the same for a word of a log line (a login name): the space, the
 * backslash and octets past ASCII become \xHH too */
char *esc_word(char *dst, size_t size, const char *src);
/* fatal start-up error: log, then exit(111); a trailing ':' appends strerror */
void die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

/* case-insensitive ASCII helpers that do not depend on the locale */
int ascii_casecmp(const char *, const char *);
int ascii_ncasecmp(const char *, const char *, size_t);
const char *ascii_casestr(const char *hay, size_t haylen,
    const char *needle, size_t nlen);

/* FNV-1a of n bytes, the hash of the table below */
uint32_t hash_bytes(const void *, size_t n);
/* a small open-addressing hash table of 32-bit values under 32-bit
 * hashes, for any table the caller keeps: the value is its key (a UID)
 * or an index into its own array (plus one: 0 is not a value).  The
 * caller hashes, and checks each value htab_next finds under a hash
 * against its own key.  Zeroed is empty; it grows as values are put. */
struct htab {
	uint64_t *slot;		/* hash << 32 | value; 0 = empty */
	size_t mask, n;
};
/* empty, sized for about n values */
void htab_init(struct htab *, size_t n);
void htab_put(struct htab *, uint32_t hash, uint32_t value);
/* the value under hash replaced, else put: for a table whose hash names
 * one key (a UID times an odd constant) */
void htab_set(struct htab *, uint32_t hash, uint32_t value);
/* the values under hash one by one: *pos 0 for the first; 0 when there
 * are no more */
int htab_next(const struct htab *, uint32_t hash, size_t *pos,
    uint32_t *value);
void htab_free(struct htab *);

/* the value of a base64 digit, -1 for none; c63 is the 64th digit: '/',
 * or ',' in the modified base64 of mailbox names */
int base64_value(int c, int c63);
/* base64 decoded in steps, for input that comes in pieces.  Octets
 * outside the alphabet are passed over and "=" ends a group, so that
 * concatenated encodings decode one after the other; bad records
 * whether anything was not strict base64. */
struct base64 {
	unsigned long acc;
	int k, pad, bad;
};
/* decodes n octets of s to out, which has room for n * 3 / 4 + 2
 * octets; returns the number written */
size_t base64_step(struct base64 *, const char *s, size_t n,
    unsigned char *out);
/* the octets of a last, short group (at most 2) */
size_t base64_end(struct base64 *, unsigned char *out);
/* strict base64 (SASL) decoded in place: the length, -1 if s is not
 * base64 */
long base64_decode(char *s);

/* where the RFC 5322 comments and folding white space from s on end */
const char *cfws_skip(const char *s, const char *e);

/* "Jan" ... "Dec": dates in IMAP, RFC 5322 and Sieve */
extern const char month_names[12][4];
/* 1 to 12 for a month name (its first three letters, any case), 0 for
 * none */
int month_of(const char *s, size_t n);
/* days since 1970-01-01 of a date in the proleptic Gregorian calendar */
long long days_from_civil(long long y, int m, int d);

/* a Date field (RFC 5322 3.3 with the obsolete forms of 4.3, and what
 * mailers write besides: no weekday, no seconds, two-digit years, zone
 * names, asctime's order, 1-Jan-2026).  SEARCH SENTON, SORT DATE and
 * Sieve's date test all read a Date through date_parse. */
struct mail_date {
	int year, mon, day;	/* as written, in the writer's zone */
	long secs;		/* into that day; 0 without a valid time */
	long zone;		/* seconds east of UTC; 0 when unknown */
	int timed, zoned;	/* a time, a zone was written */
};
/* 0, or -1 when s holds no day, month and year */
int date_parse(const char *s, size_t n, struct mail_date *);
/* days since 1970-01-01 of the date as written, its zone disregarded */
long long date_days(const struct mail_date *);
/* the moment it names, in seconds since the epoch */
time_t date_utc(const struct mail_date *);

/* a running checksum in four lanes, fast over whole words, fed in pieces
 * of any length (what does not fill a block waits for the next piece):
 * for the files the store writes, to tell damage from data */
#define SUM_BLOCK	32	/* bytes the sum takes at once */
struct sum {
	uint64_t l[4];
	unsigned char carry[SUM_BLOCK];
	size_t nc;
};
void sum_init(struct sum *, uint64_t seed);
void sum_feed(struct sum *, const void *, size_t);
uint64_t sum_end(const struct sum *);
uint64_t sum_bytes(const void *, size_t, uint64_t seed);

/* n bytes of fd at off into p: 0, or -1 (a short file, an error) */
int read_at(int fd, void *p, size_t n, off_t off);

/* the LFs of [p, p + n), and how many of them follow a CR in the range:
 * its lines, and its size in CRLF form is n + *lf - *crlf */
void count_lf(const char *p, size_t n, uint64_t *lf, uint64_t *crlf);
/* the first line start in [s, e) where c stands, or NULL; s[-1] must be
 * readable (a line starts after an LF) */
const char *line_start(const char *s, const char *e, int c);

#endif
