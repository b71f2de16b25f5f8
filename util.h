/* util.h: allocation, growable buffers, logging and small helpers shared by every part */
#ifndef UTIL_H
#define UTIL_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

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
void buf_printf(struct buf *, const char *, ...)
	__attribute__((format(printf, 2, 3)));
/* append s as an IMAP string: quoted when it can be, a literal otherwise,
 * NIL when s is NULL */
void buf_addstr(struct buf *, const char *s, size_t n);
void buf_reset(struct buf *);
void buf_free(struct buf *);
/* "Jan" ... "Dec": dates in IMAP, RFC 5322 and Sieve */
extern const char month_names[12][4];
/* code point c (at most U+10FFFF) as UTF-8 */
void buf_add_utf8(struct buf *, uint32_t c);
/* the length of the valid UTF-8 sequence at s, n octets left (RFC 3629:
 * no overlong forms, surrogates or code points past U+10FFFF); 1 for
 * ASCII, 0 for none */
size_t utf8_len(const unsigned char *s, size_t n);

/* the home directory that "~/" in config.h stands for; NULL when none */
const char *home_dir(void);

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
/* fatal start-up error: log, then exit(111); a trailing ':' appends strerror */
void die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

/* case-insensitive ASCII helpers that do not depend on the locale */
int ascii_casecmp(const char *, const char *);
int ascii_ncasecmp(const char *, const char *, size_t);
const char *ascii_casestr(const char *hay, size_t haylen,
    const char *needle, size_t nlen);

/* the value of a base64 digit, -1 for none; c63 is the 64th digit: '/',
 * or ',' in the modified base64 of mailbox names */
int base64_value(int c, int c63);
/* decode base64 in place; the length, -1 when it is not valid */
long base64_decode(char *s);

/* days since 1970-01-01 of a date in the proleptic Gregorian calendar */
long long days_from_civil(long long y, int m, int d);

#endif
