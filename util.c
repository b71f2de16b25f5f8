/* util.c: the base every part stands on: allocation, growable buffers,
 * logging and its escaping, configured paths, ASCII case, base64, the
 * dates of mail (the one reader of an RFC 5322 Date field), and scans of
 * text for line ends sixteen octets at a time */
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
	size_t room = b->cap > b->len ? b->cap - b->len : 0;
	int n;

	/* formatted once where it fits, twice only when the buffer grows */
	va_start(ap, fmt);
	n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n < 0) {
		if (room)
			b->p[b->len] = '\0';
		return;
	}
	if ((size_t)n >= room) {
		buf_grow(b, n);
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, n + 1, fmt, ap);
		va_end(ap);
	}
	b->len += n;
}

/* decimal digits of v at the end of the room ending at e; their start */
char *
dec_digits(char *e, uint64_t v)
{
	do
		*--e = '0' + v % 10;
	while (v /= 10);
	return e;
}

void
buf_addnum(struct buf *b, uint64_t v)
{
	char room[24], *s = dec_digits(room + sizeof(room), v);

	buf_add(b, s, room + sizeof(room) - s);
}

void
buf_addstr(struct buf *b, const char *s, size_t n)
{
	size_t i;
	char *o;

	if (!s) {
		buf_adds(b, "NIL");
		return;
	}
	/* quoted, escaped as it is copied, when it is short and every
	 * octet a 7-bit one but CR, LF and NUL; else taken back for a
	 * literal at the first octet a quoted string cannot hold */
	if (n <= 1024) {
		buf_grow(b, 2 * n + 2);
		o = b->p + b->len;
		*o++ = '"';
		for (i = 0; i < n; i++) {
			if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0' ||
			    (unsigned char)s[i] >= 0x80)
				break;
			if (s[i] == '"' || s[i] == '\\')
				*o++ = '\\';
			*o++ = s[i];
		}
		if (i == n) {
			*o++ = '"';
			b->len = o - b->p;
			b->p[b->len] = '\0';
			return;
		}
		b->p[b->len] = '\0';
	}
	buf_printf(b, "{%zu}\r\n", n);
	buf_add(b, s, n);
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

/* the escaper of esc and esc_word: word also escapes the space, the
 * backslash and every octet past ASCII */
static char *
escape(char *dst, size_t size, const char *src, int word)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0, n = strlen(src), k;

	for (; *s && size; s += k, n -= k) {
		if (word)
			k = *s > ' ' && *s < 0x7f && *s != '\\';
		else
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

char *
esc(char *dst, size_t size, const char *src)
{
	return escape(dst, size, src, 0);
}

char *
esc_word(char *dst, size_t size, const char *src)
{
	return escape(dst, size, src, 1);
}

/* $HOME when it is the running user's own directory; else the home in
 * the password database.  A launcher running as root (inetd, s6,
 * tcpserver -U) passes its own HOME along to the mail user. */
static const char *
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

int
path_expand(char *out, size_t size, const char *env, const char *def)
{
	const char *v = env ? getenv(env) : NULL, *home = "";
	int n;

	if (v && *v)
		def = v;
	if (!strncmp(def, "~/", 2) && !(home = home_dir())) {
		errno = ENOENT;
		return -1;
	}
	if (*home)
		n = snprintf(out, size, "%s/%s", home, def + 2);
	else
		n = snprintf(out, size, "%s", def);
	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
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
ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

int
ascii_casecmp(const char *a, const char *b)
{
	while (*a && ascii_lower((unsigned char)*a) ==
	    ascii_lower((unsigned char)*b)) {
		a++;
		b++;
	}
	return ascii_lower((unsigned char)*a) - ascii_lower((unsigned char)*b);
}

int
ascii_ncasecmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (ascii_lower((unsigned char)*a) !=
		    ascii_lower((unsigned char)*b))
			return ascii_lower((unsigned char)*a) -
			    ascii_lower((unsigned char)*b);
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
			if (ascii_lower((unsigned char)hay[i + j]) !=
			    ascii_lower((unsigned char)needle[j]))
				break;
		if (j == nlen)
			return hay + i;
	}
	return NULL;
}

/* ---- a small hash table ----------------------------------------------- */

uint32_t
hash_bytes(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint32_t h = 2166136261U;	/* FNV-1a */

	while (n--)
		h = (h ^ *s++) * 16777619U;
	return h;
}

/* linear probing from the hash; the table is never more than 3/4 full,
 * so every probe ends at an empty slot */
static void
htab_insert(struct htab *t, uint64_t e)
{
	size_t k;

	for (k = (e >> 32) & t->mask; t->slot[k]; k = (k + 1) & t->mask)
		;
	t->slot[k] = e;
	t->n++;
}

void
htab_init(struct htab *t, size_t n)
{
	size_t cap = 64;

	while (cap < n * 2)
		cap *= 2;
	free(t->slot);
	t->slot = xcalloc(cap, sizeof(*t->slot));
	t->mask = cap - 1;
	t->n = 0;
}

void
htab_put(struct htab *t, uint32_t hash, uint32_t value)
{
	uint64_t *old = t->slot;
	size_t cap = t->slot ? t->mask + 1 : 0, i;

	if (!t->slot || (t->n + 1) * 4 > cap * 3) {
		t->slot = NULL;
		htab_init(t, cap);
		for (i = 0; i < cap; i++)
			if (old[i])
				htab_insert(t, old[i]);
		free(old);
	}
	htab_insert(t, (uint64_t)hash << 32 | value);
}

void
htab_set(struct htab *t, uint32_t hash, uint32_t value)
{
	size_t k;

	if (t->slot)
		for (k = hash & t->mask; t->slot[k]; k = (k + 1) & t->mask)
			if (t->slot[k] >> 32 == hash) {
				t->slot[k] = (uint64_t)hash << 32 | value;
				return;
			}
	htab_put(t, hash, value);
}

int
htab_next(const struct htab *t, uint32_t hash, size_t *pos, uint32_t *value)
{
	uint64_t e;

	if (!t->slot)
		return 0;
	while ((e = t->slot[(hash + *pos) & t->mask])) {
		++*pos;
		if (e >> 32 == hash) {
			*value = (uint32_t)e;
			return 1;
		}
	}
	return 0;
}

void
htab_free(struct htab *t)
{
	free(t->slot);
	t->slot = NULL;
	t->mask = t->n = 0;
}

/* ---- base64 (RFC 4648) ------------------------------------------------ */

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

/* the octets of a group cut short by "=" or the end: 2 digits give one,
 * 3 give two, 1 gives none and is an error */
static size_t
base64_flush(struct base64 *b, unsigned char *out)
{
	size_t o = 0;

	if (b->k == 1)
		b->bad = 1;
	else if (b->k == 2)
		out[o++] = b->acc >> 4;
	else if (b->k == 3) {
		out[o++] = b->acc >> 10;
		out[o++] = b->acc >> 2;
	}
	b->k = 0;
	b->acc = 0;
	return o;
}

size_t
base64_step(struct base64 *b, const char *s, size_t n, unsigned char *out)
{
	size_t i, o = 0;
	int v;

	for (i = 0; i < n; i++) {
		if (s[i] == '=') {
			o += base64_flush(b, out + o);
			if (++b->pad > 2)
				b->bad = 1;
			continue;
		}
		if ((v = base64_value((unsigned char)s[i], '/')) < 0) {
			b->bad = 1;
			continue;
		}
		if (b->pad)
			b->bad = 1;	/* data after the padding */
		b->pad = 0;
		b->acc = (b->acc << 6 | v) & 0xffffff;
		if (++b->k == 4) {
			out[o++] = b->acc >> 16;
			out[o++] = b->acc >> 8;
			out[o++] = b->acc;
			b->k = 0;
			b->acc = 0;
		}
	}
	return o;
}

size_t
base64_end(struct base64 *b, unsigned char *out)
{
	return base64_flush(b, out);
}

long
base64_decode(char *s)
{
	struct base64 b = { 0 };
	size_t n = strlen(s), o;

	/* the output never passes the input: 3 octets for 4 digits */
	o = base64_step(&b, s, n, (unsigned char *)s);
	o += base64_end(&b, (unsigned char *)s + o);
	return b.bad ? -1 : (long)o;
}

/* ---- dates ------------------------------------------------------------ */

const char month_names[12][4] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

int
month_of(const char *s, size_t n)
{
	int i;

	if (n < 3)
		return 0;
	for (i = 0; i < 12; i++)
		if (!ascii_ncasecmp(s, month_names[i], 3))
			return i + 1;
	return 0;
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

const char *
cfws_skip(const char *s, const char *e)
{
	int depth;

	while (s < e) {
		if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
			s++;
			continue;
		}
		if (*s != '(')
			return s;
		for (depth = 0; s < e; s++) {
			if (*s == '\\' && s + 1 < e)
				s++;
			else if (*s == '(')
				depth++;
			else if (*s == ')' && --depth == 0) {
				s++;
				break;
			}
		}
	}
	return s;
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
is_letter(int c)
{
	return (c | 32) >= 'a' && (c | 32) <= 'z';
}

/* a run of digits at *s: its value (from at most 9 of them) and length */
static long
date_number(const char **s, const char *e, size_t *len)
{
	const char *t = *s;
	long v = 0;

	while (*s < e && is_digit((unsigned char)**s)) {
		if (*s - t < 9)
			v = v * 10 + (**s - '0');
		(*s)++;
	}
	*len = *s - t;
	return v;
}

/* the rest of hh:mm[:ss] after the hours, comments allowed around the
 * ':' ('.' is taken for one too): seconds into the day, -1 when it is
 * not a valid time */
static long
date_clock(const char **s, const char *e, long hh)
{
	long v[3] = { hh, 0, 0 };
	const char *t;
	size_t len;
	int k;

	for (k = 1; k < 3; k++) {
		t = cfws_skip(*s, e);
		if (t >= e || (*t != ':' && *t != '.'))
			break;
		t = cfws_skip(t + 1, e);
		v[k] = date_number(&t, e, &len);
		*s = t;
		if (len != 2)
			return -1;
	}
	if (k < 2 || v[0] > 23 || v[1] > 59 || v[2] > 60)
		return -1;
	return v[0] * 3600 + v[1] * 60 + v[2];
}

/* a zone name of RFC 5322 4.3 as seconds east of UTC: 1 when it is one;
 * the military letters and other words are not, and leave the zone UTC */
static int
date_zone_name(const char *w, size_t n, long *zone)
{
	static const struct {
		char name[4];
		int hours;
	} zones[] = {
		{ "UT", 0 }, { "GMT", 0 }, { "EST", -5 }, { "EDT", -4 },
		{ "CST", -6 }, { "CDT", -5 }, { "MST", -7 }, { "MDT", -6 },
		{ "PST", -8 }, { "PDT", -7 }
	};
	size_t i;

	for (i = 0; i < LEN(zones); i++)
		if (strlen(zones[i].name) == n &&
		    !ascii_ncasecmp(w, zones[i].name, n)) {
			*zone = zones[i].hours * 3600L;
			return 1;
		}
	return 0;
}

/* "+hhmm" or "-hhmm" at *s as seconds east of UTC, 1 when it is one */
static int
date_zone_number(const char **s, const char *e, long *zone)
{
	const char *t = *s + 1;
	size_t len;
	long v;

	if (t >= e || !is_digit((unsigned char)*t))
		return 0;
	v = date_number(&t, e, &len);
	if (len != 4)
		return 0;
	*zone = v % 100 > 59 ? 0 : (v / 100 * 3600 + v % 100 * 60) *
	    (**s == '-' ? -1 : 1);
	*s = t;
	return 1;
}

/* a run of digits: the day, the hours of the time, or the year */
static void
date_digits(struct mail_date *d, const char **s, const char *e)
{
	size_t len;
	long v = date_number(s, e, &len);
	const char *t = cfws_skip(*s, e);

	if (d->day && !d->timed && len <= 2 && t < e &&
	    (*t == ':' || *t == '.')) {
		d->timed = 1;
		/* RFC 5256 2.2: a bad time is midnight, its zone UTC */
		if ((d->secs = date_clock(s, e, v)) < 0) {
			d->secs = 0;
			d->zoned = 1;
		}
	} else if (!d->day && len <= 2)
		d->day = v;
	else if (d->day && d->mon && !d->year && len >= 2 && len <= 4)
		d->year = len == 2 ? v + (v < 50 ? 2000 : 1900) :
		    len == 3 ? v + 1900 : v;
}

/* a run of letters: the month, a zone name after the time or year, or a
 * word to pass over (the day of the week) */
static void
date_letters(struct mail_date *d, const char **s, const char *e)
{
	const char *w = *s;

	while (*s < e && is_letter((unsigned char)**s))
		(*s)++;
	if (!d->mon && (d->mon = month_of(w, *s - w)))
		return;
	if ((d->timed || d->year) && !d->zoned &&
	    date_zone_name(w, *s - w, &d->zone))
		d->zoned = 1;
}

int
date_parse(const char *s, size_t n, struct mail_date *d)
{
	const char *e = s + n;

	memset(d, 0, sizeof(*d));
	while ((s = cfws_skip(s, e)) < e) {
		if (is_digit((unsigned char)*s))
			date_digits(d, &s, e);
		else if (is_letter((unsigned char)*s))
			date_letters(d, &s, e);
		else if ((*s == '+' || *s == '-') && (d->timed || d->year) &&
		    !d->zoned && date_zone_number(&s, e, &d->zone))
			d->zoned = 1;
		else
			s++;	/* ",", the "-" of 1-Jan-2026, stray octets */
	}
	if (d->day < 1 || d->day > 31 || !d->mon || d->year < 1)
		return -1;
	return 0;
}

long long
date_days(const struct mail_date *d)
{
	return days_from_civil(d->year, d->mon, d->day);
}

time_t
date_utc(const struct mail_date *d)
{
	return (time_t)date_days(d) * 86400 + d->secs - d->zone;
}

/* ---- checksums of what the store keeps on disk ---------------------- */

#define SUM_PRIME	0x100000001b3ULL
#define SUM_LANE	0x9e3779b97f4a7c15ULL	/* odd */

void
sum_init(struct sum *s, uint64_t seed)
{
	int i;

	for (i = 0; i < 4; i++)
		s->l[i] = seed + i;
	s->nc = 0;
}

static uint64_t
mix(uint64_t h, uint64_t w)
{
	h = (h ^ w) * SUM_PRIME;
	return h ^ h >> 29;
}

/* in a lane a word only multiplies in (odd, so every change of one word
 * changes the lane); the lanes are mixed at the end */
static void
sum_block(struct sum *s, const unsigned char *c)
{
	uint64_t w[4];
	int i;

	memcpy(w, c, SUM_BLOCK);
	for (i = 0; i < 4; i++)
		s->l[i] = (s->l[i] ^ w[i]) * SUM_LANE;
}

/* the same over nb blocks, the lanes kept in registers */
static void
sum_blocks(struct sum *s, const unsigned char *c, size_t nb)
{
	uint64_t a = s->l[0], b = s->l[1], d = s->l[2], e = s->l[3], w[4];

	for (; nb; nb--, c += SUM_BLOCK) {
		memcpy(w, c, SUM_BLOCK);
		a = (a ^ w[0]) * SUM_LANE;
		b = (b ^ w[1]) * SUM_LANE;
		d = (d ^ w[2]) * SUM_LANE;
		e = (e ^ w[3]) * SUM_LANE;
	}
	s->l[0] = a;
	s->l[1] = b;
	s->l[2] = d;
	s->l[3] = e;
}

void
sum_feed(struct sum *s, const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t k;

	if (!n)
		return;
	if (s->nc) {
		k = MIN(n, SUM_BLOCK - s->nc);
		memcpy(s->carry + s->nc, c, k);
		s->nc += k;
		c += k;
		n -= k;
		if (s->nc < SUM_BLOCK)
			return;
		sum_block(s, s->carry);
		s->nc = 0;
	}
	if (n >= SUM_BLOCK) {
		sum_blocks(s, c, n / SUM_BLOCK);
		c += n / SUM_BLOCK * SUM_BLOCK;
		n %= SUM_BLOCK;
	}
	memcpy(s->carry, c, n);
	s->nc = n;
}

uint64_t
sum_end(const struct sum *s)
{
	uint64_t h = s->l[0];
	size_t i;

	for (i = 0; i < s->nc; i++)
		h = mix(h, s->carry[i]);
	return mix(mix(mix(h, s->l[1]), s->l[2]), s->l[3]);
}

uint64_t
sum_bytes(const void *p, size_t n, uint64_t seed)
{
	struct sum s;

	sum_init(&s, seed);
	sum_feed(&s, p, n);
	return sum_end(&s);
}

/* n bytes at off, all of them, or -1 */
int
read_at(int fd, void *p, size_t n, off_t off)
{
	ssize_t k;

	while (n) {
		if ((k = pread(fd, p, n, off)) <= 0) {
			if (k < 0 && errno == EINTR)
				continue;
			return -1;
		}
		p = (char *)p + k;
		n -= k;
		off += k;
	}
	return 0;
}

/* ---- scanning text ---------------------------------------------------- */

/* Sixteen octets at a time, in vectors the compiler maps onto the
 * machine's (SSE2, NEON) or does in words: a message's lines are short,
 * and a memchr() a line would cost more than the bytes. */
typedef unsigned char v16 __attribute__((vector_size(16)));

static v16
v16_load(const char *p)
{
	v16 v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static v16
v16_splat(int c)
{
	v16 v;

	memset(&v, c, sizeof(v));
	return v;
}

static uint64_t
v16_sum(v16 v)
{
	uint64_t n = 0;
	int k;

	for (k = 0; k < 16; k++)
		n += v[k];
	return n;
}

void
count_lf(const char *p, size_t n, uint64_t *lf, uint64_t *crlf)
{
	v16 nl = v16_splat('\n'), cr = v16_splat('\r'), a, b, la, ca;
	size_t i = 1, stop;
	uint64_t l = 0, c = 0;

	if (n)
		l = p[0] == '\n';
	/* 255 rounds at most, so that no lane of the counts wraps */
	while (n >= i + 16) {
		stop = i + 16 * MIN((n - i) / 16, 255);
		la = ca = v16_splat(0);
		for (; i < stop; i += 16) {
			a = (v16)(v16_load(p + i) == nl);
			b = (v16)(v16_load(p + i - 1) == cr);
			la -= a;
			ca -= a & b;
		}
		l += v16_sum(la);
		c += v16_sum(ca);
	}
	for (; i < n; i++) {
		l += p[i] == '\n';
		c += p[i] == '\n' && p[i - 1] == '\r';
	}
	*lf = l;
	*crlf = c;
}

const char *
line_start(const char *s, const char *e, int c)
{
	v16 nl = v16_splat('\n'), want = v16_splat(c), hit;
	uint64_t w[2];
	int k;

	for (; e - s >= 16; s += 16) {
		hit = (v16)(v16_load(s) == want) & (v16)(v16_load(s - 1) == nl);
		memcpy(w, &hit, sizeof(w));
		if (!(w[0] | w[1]))
			continue;
		for (k = 0; k < 16; k++)
			if (hit[k])
				return s + k;
	}
	for (; s < e; s++)
		if (*s == c && s[-1] == '\n')
			return s;
	return NULL;
}
