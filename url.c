/* url.c: IMAP URLs (RFC 5092) for CATENATE: the client names a message
 * or a section of one it already has on the server instead of sending
 * it again (a forward with its attachments, a draft rebuilt around them).
 * Only this user's own mailboxes are reachable; anything else (another
 * user, URLAUTH, search URLs) is not a URL here. */
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "url.h"
#include "util.h"

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* s[0..n) percent-decoded into the arena; NULL for a bad escape or a
 * NUL */
static char *
decode(const char *s, size_t n)
{
	char *out = p_alloc(n + 1);
	size_t i, o = 0;
	int h, l;

	for (i = 0; i < n; i++) {
		if (s[i] != '%') {
			out[o++] = s[i];
			continue;
		}
		if (i + 2 >= n || (h = hexval(s[i + 1])) < 0 ||
		    (l = hexval(s[i + 2])) < 0 || (h == 0 && l == 0))
			return NULL;
		out[o++] = h << 4 | l;
		i += 2;
	}
	out[o] = '\0';
	return out;
}

/* a decimal number up to max at *s, which moves past it */
static int
number(const char **s, uint64_t max, uint64_t *v)
{
	const char *p = *s;

	*v = 0;
	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		*v = *v * 10 + (*p - '0');
		if (*v > max)
			return -1;
	}
	*s = p;
	return 0;
}

/* "imap://[user[;AUTH=*]@]host[:port]": the user must be ours */
static const char *
authority(const char *s, const char *user)
{
	const char *end = strchr(s, '/'), *at, *semi;
	char *name;

	if (!end)
		return NULL;
	at = memchr(s, '@', end - s);
	if (at) {
		semi = memchr(s, ';', at - s);
		if (!(name = decode(s, (semi ? semi : at) - s)) ||
		    strcmp(name, user))
			return NULL;
	}
	return end;
}

/* ";NAME=" at *s, case-insensitive */
static int
param(const char **s, const char *name)
{
	size_t n = strlen(name);

	if (**s != ';' || ascii_ncasecmp(*s + 1, name, n) || (*s)[n + 1] != '=')
		return 0;
	*s += n + 2;
	return 1;
}

/* "/;UID=n[;SECTION=s][/;PARTIAL=o[.l]]", or without the first "/" */
static int
iuid_part(const char *s, struct imapurl *u)
{
	const char *e;
	uint64_t v;

	if (*s == '/')
		s++;
	if (!param(&s, "UID") || number(&s, UINT32_MAX, &v) < 0 || !v)
		return -1;
	u->uid = v;
	u->section = "";
	if (!strncmp(s, "/;", 2))
		s++;
	if (param(&s, "SECTION")) {
		e = s + strcspn(s, "/");
		if (!(u->section = decode(s, e - s)))
			return -1;
		s = *e ? e + 1 : e;
	} else if (*s == '/') {
		return -1;
	}
	if (param(&s, "PARTIAL")) {
		u->partial = 1;
		if (number(&s, UINT64_MAX / 2, &u->offset) < 0)
			return -1;
		if (*s == '.' && (s++, number(&s, UINT64_MAX / 2,
		    &u->length) < 0 || !u->length))
			return -1;
	}
	return *s ? -1 : 0;
}

int
url_parse(const char *s, const char *user, struct imapurl *u)
{
	const char *e;
	uint64_t v;

	memset(u, 0, sizeof(*u));
	if (!ascii_ncasecmp(s, "imap://", 7) && !(s = authority(s + 7, user)))
		return -1;
	if (*s != '/')
		return iuid_part(s, u);
	s++;
	e = s + strcspn(s, ";/");
	if (e == s || !(u->mailbox = decode(s, e - s)))
		return -1;
	s = e;
	if (param(&s, "UIDVALIDITY")) {
		if (number(&s, UINT32_MAX, &v) < 0 || !v)
			return -1;
		u->uidvalidity = v;
	}
	if (*s != '/')
		return -1;
	return iuid_part(s, u);
}
