/* util.c: allocation, growable buffers, logging */
#include <sys/stat.h>

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "util.h"

static int log_stderr;		/* 1: to stderr instead of syslog; 2: bare */

static void
oom(void)
{
	logmsg(LOG_ERR, "out of memory");
	_exit(111);
}

void *
xmalloc(size_t n)
{
	void *p;

	if (!(p = malloc(n ? n : 1)))
		oom();
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p;

	if (!(p = calloc(n ? n : 1, size ? size : 1)))
		oom();
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	if (!(p = realloc(p, n ? n : 1)))
		oom();
	return p;
}

void *
xreallocarray(void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		oom();
	return xrealloc(p, n * size);
}

char *
xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(xmalloc(n), s, n);
}

void
buf_grow(struct buf *b, size_t n)
{
	size_t cap;

	if (b->len + n + 1 <= b->cap)
		return;
	if (n > SIZE_MAX / 2 - b->len)
		oom();
	cap = b->cap ? b->cap : 64;
	while (cap < b->len + n + 1)
		cap *= 2;
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
}

void
buf_add(struct buf *b, const void *p, size_t n)
{
	buf_grow(b, n);
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
buf_addc(struct buf *b, int c)
{
	char ch = c;

	buf_add(b, &ch, 1);
}

void
buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_grow(b, n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, n + 1, fmt, ap);
	va_end(ap);
	b->len += n;
}

/* a quoted string may hold any 7-bit character but CR, LF and NUL */
static int
quotable(const char *s, size_t n)
{
	size_t i;

	if (n > 1024)
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0' ||
		    (unsigned char)s[i] >= 0x80)
			return 0;
	return 1;
}

void
buf_addstr(struct buf *b, const char *s, size_t n)
{
	size_t i;

	if (!s) {
		buf_adds(b, "NIL");
		return;
	}
	if (!quotable(s, n)) {
		buf_printf(b, "{%zu}\r\n", n);
		buf_add(b, s, n);
		return;
	}
	buf_addc(b, '"');
	for (i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			buf_addc(b, '\\');
		buf_addc(b, s[i]);
	}
	buf_addc(b, '"');
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

void
buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void
log_open(const char *ident)
{
	if (getenv("IMAPD_LOG_STDERR"))
		log_stderr = 1;
	else
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

const char month_names[12][4] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

size_t
utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0], lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	/* no overlong forms, no surrogates, nothing above U+10FFFF */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

void
buf_add_utf8(struct buf *b, uint32_t c)
{
	if (c < 0x80) {
		buf_addc(b, c);
	} else if (c < 0x800) {
		buf_addc(b, 0xc0 | c >> 6);
		buf_addc(b, 0x80 | (c & 0x3f));
	} else if (c < 0x10000) {
		buf_addc(b, 0xe0 | c >> 12);
		buf_addc(b, 0x80 | (c >> 6 & 0x3f));
		buf_addc(b, 0x80 | (c & 0x3f));
	} else {
		buf_addc(b, 0xf0 | c >> 18);
		buf_addc(b, 0x80 | (c >> 12 & 0x3f));
		buf_addc(b, 0x80 | (c >> 6 & 0x3f));
		buf_addc(b, 0x80 | (c & 0x3f));
	}
}

char *
esc(char *dst, size_t size, const char *src)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0, n = strlen(src), k;

	for (; *s && size; s += k, n -= k) {
		k = *s >= 0x80 ? utf8_len(s, n) : *s >= 0x20 && *s != 0x7f;
		if (k) {
			if (o + k >= size)
				break;
			memcpy(dst + o, s, k);
			o += k;
			continue;
		}
		if (o + 4 >= size)
			break;
		snprintf(dst + o, 5, "\\x%02x", *s);
		o += 4;
		k = 1;
	}
	if (size)
		dst[o] = '\0';
	return dst;
}

/* $HOME when it is the running user's own directory; else the home in
 * the password database.  A launcher running as root (inetd, s6,
 * tcpserver -U) passes its own HOME along to the mail user. */
const char *
home_dir(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;
	struct stat st;

	if (h && *h && stat(h, &st) == 0 && st.st_uid == getuid())
		return h;
	if ((pw = getpwuid(getuid())) && pw->pw_dir && *pw->pw_dir)
		return pw->pw_dir;
	return h && *h ? h : NULL;
}

void
log_terminal(void)
{
	log_stderr = 2;
}

void
logmsg(int prio, const char *fmt, ...)
{
	char msg[1024], safe[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* client bytes in a log line never start a line of their own */
	esc(safe, sizeof(safe), msg);
	if (log_stderr == 2)
		fprintf(stderr, "imapd: %s\n", safe);
	else if (log_stderr)
		fprintf(stderr, "imapd[%ld]: %s\n", (long)getpid(), safe);
	else
		syslog(prio, "%s", safe);
}

void
die(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	size_t n;
	int saved = errno;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = strlen(msg);
	if (n && msg[n - 1] == ':')
		snprintf(msg + n, sizeof(msg) - n, " %s", strerror(saved));
	logmsg(LOG_ERR, "%s", msg);
	if (!log_stderr)
		fprintf(stderr, "imapd: %s\n", msg);
	exit(111);
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

int
ascii_casecmp(const char *a, const char *b)
{
	while (*a && lower((unsigned char)*a) == lower((unsigned char)*b)) {
		a++;
		b++;
	}
	return lower((unsigned char)*a) - lower((unsigned char)*b);
}

int
ascii_ncasecmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (lower((unsigned char)*a) != lower((unsigned char)*b))
			return lower((unsigned char)*a) - lower((unsigned char)*b);
		if (!*a)
			return 0;
	}
	return 0;
}

const char *
ascii_casestr(const char *hay, size_t haylen, const char *needle, size_t nlen)
{
	size_t i, j;

	if (nlen == 0)
		return hay;
	for (i = 0; i + nlen <= haylen; i++) {
		for (j = 0; j < nlen; j++)
			if (lower((unsigned char)hay[i + j]) !=
			    lower((unsigned char)needle[j]))
				break;
		if (j == nlen)
			return hay + i;
	}
	return NULL;
}

int
base64_value(int c, int c63)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == c63 && c)
		return 63;
	return -1;
}

/* decode base64 in place; -1 when it is not valid */
long
base64_decode(char *s)
{
	size_t i, o = 0;
	unsigned long acc = 0;
	int bits = 0, v, pad = 0;

	for (i = 0; s[i]; i++) {
		if (s[i] == '=') {
			pad++;
			continue;
		}
		if (pad || (v = base64_value((unsigned char)s[i], '/')) < 0)
			return -1;
		acc = acc << 6 | v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			s[o++] = acc >> bits;
		}
	}
	if ((i - pad) % 4 == 1 || pad > 2)
		return -1;
	return o;
}

long long
days_from_civil(long long y, int m, int d)
{
	long long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}
