/* binary.c: binary content made storable.  A message APPENDed as a
 * literal8 may carry NUL octets, which IMAP can only hand out again
 * through BINARY; each leaf part holding one is re-encoded as base64 (RFC
 * 3516 4.4 allows a lossless change of the transfer encoding), so BODY[]
 * and BODYSTRUCTURE describe a valid message and BINARY[] still gives
 * back the exact octets. */
#include <string.h>

#include "binary.h"
#include "util.h"

#define DEPTH_MAX 32

struct entity {
	const char *p;		/* the whole part: header and body */
	size_t n, hdrlen;	/* hdrlen: up to the empty line, excluded */
	size_t bodyat;		/* after the empty line */
	char type[64];		/* "multipart/mixed", lower case */
	char boundary[80];
	size_t cte_at, cte_len;	/* the Content-Transfer-Encoding field */
	int has_cte;
};

static void entity(struct buf *, const char *, size_t, int depth);

/* length of the line at p (up to and with its LF) */
static size_t
line_len(const char *p, size_t n)
{
	const char *e = memchr(p, '\n', n);

	return e ? (size_t)(e - p) + 1 : n;
}

static int
blank_line(const char *p, size_t n)
{
	return (n >= 1 && p[0] == '\n') || (n >= 2 && p[0] == '\r' &&
	    p[1] == '\n');
}

/* the value of a parameter of a Content-Type value, quoted or not */
static void
param(const char *v, size_t n, const char *name, char *out, size_t size)
{
	size_t k = strlen(name), i, o = 0;
	const char *at;

	out[0] = '\0';
	for (at = v; (at = ascii_casestr(at, n - (at - v), name, k)); at += k) {
		if (at == v || (at[-1] != ';' && at[-1] != ' ' &&
		    at[-1] != '\t') || at + k >= v + n || at[k] != '=')
			continue;
		i = (at - v) + k + 1;
		if (i < n && v[i] == '"') {
			for (i++; i < n && v[i] != '"' && o + 1 < size; i++)
				out[o++] = v[i] == '\\' && i + 1 < n ? v[++i] :
				    v[i];
		} else {
			for (; i < n && !strchr(" \t;\r\n", v[i]) &&
			    o + 1 < size; i++)
				out[o++] = v[i];
		}
		out[o] = '\0';
		return;
	}
}

/* note the fields of the header that decide how the part is handled */
static void
header_field(struct entity *e, size_t at, size_t len)
{
	const char *f = e->p + at, *v;
	size_t i, o = 0;

	if (len > 13 && !ascii_ncasecmp(f, "Content-Type:", 13)) {
		v = f + 13;
		while (v < f + len && (*v == ' ' || *v == '\t'))
			v++;
		for (i = 0; v + i < f + len && !strchr(" \t;\r\n", v[i]) &&
		    o + 1 < sizeof(e->type); i++)
			e->type[o++] = v[i] >= 'A' && v[i] <= 'Z' ?
			    v[i] + 32 : v[i];
		e->type[o] = '\0';
		param(v, f + len - v, "boundary", e->boundary,
		    sizeof(e->boundary));
	} else if (len > 26 &&
	    !ascii_ncasecmp(f, "Content-Transfer-Encoding:", 26)) {
		e->cte_at = at;
		e->cte_len = len;
		e->has_cte = 1;
	}
}

/* split a part into header and body, and read the fields it needs */
static void
parse_entity(struct entity *e, const char *p, size_t n)
{
	size_t at = 0, len, fstart = 0;
	int infield = 0;

	memset(e, 0, sizeof(*e));
	e->p = p;
	e->n = n;
	strcpy(e->type, "text/plain");
	while (at < n && !blank_line(p + at, n - at)) {
		len = line_len(p + at, n - at);
		if (infield && p[at] != ' ' && p[at] != '\t') {
			header_field(e, fstart, at - fstart);
			infield = 0;
		}
		if (!infield) {
			fstart = at;
			infield = 1;
		}
		at += len;
	}
	if (infield)
		header_field(e, fstart, at - fstart);
	e->hdrlen = at;
	e->bodyat = at < n ? at + line_len(p + at, n - at) : n;
}

static void
base64_body(struct buf *out, const unsigned char *p, size_t n,
    const char *eol)
{
	static const char digits[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, col = 0;
	unsigned long v;
	char q[4];

	for (i = 0; i < n; i += 3) {
		v = (unsigned long)p[i] << 16;
		if (i + 1 < n)
			v |= (unsigned long)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		q[0] = digits[v >> 18 & 63];
		q[1] = digits[v >> 12 & 63];
		q[2] = i + 1 < n ? digits[v >> 6 & 63] : '=';
		q[3] = i + 2 < n ? digits[v & 63] : '=';
		buf_add(out, q, 4);
		if ((col += 4) == 76) {
			buf_adds(out, eol);
			col = 0;
		}
	}
	if (col)
		buf_adds(out, eol);
}

/* a leaf: as it is, or with its content in base64 when it holds a NUL */
static void
leaf(struct buf *out, struct entity *e)
{
	const char *eol;

	if (!memchr(e->p + e->bodyat, '\0', e->n - e->bodyat)) {
		buf_add(out, e->p, e->n);
		return;
	}
	if (e->has_cte) {
		buf_add(out, e->p, e->cte_at);
		buf_add(out, e->p + e->cte_at + e->cte_len,
		    e->hdrlen - e->cte_at - e->cte_len);
	} else {
		buf_add(out, e->p, e->hdrlen);
	}
	/* new lines end as the header's own lines do */
	eol = e->hdrlen >= 2 && e->p[e->hdrlen - 2] == '\r' ? "\r\n" :
	    e->hdrlen ? "\n" : "\r\n";
	buf_printf(out, "Content-Transfer-Encoding: base64%s%s", eol, eol);
	base64_body(out, (const unsigned char *)e->p + e->bodyat,
	    e->n - e->bodyat, eol);
}

/* is the line at p the delimiter "--boundary", and is it the last one */
static int
delimiter(const char *p, size_t len, const char *b, size_t blen, int *last)
{
	if (len < blen + 2 || p[0] != '-' || p[1] != '-' ||
	    memcmp(p + 2, b, blen))
		return 0;
	*last = len >= blen + 4 && p[blen + 2] == '-' && p[blen + 3] == '-';
	return 1;
}

/* the body of a multipart: delimiter lines, preamble and epilogue as
 * they are, each part in between handled on its own.  A part ends before
 * the line end that precedes the next delimiter. */
static void
multipart(struct buf *out, struct entity *e, int depth)
{
	const char *p = e->p + e->bodyat;
	size_t n = e->n - e->bodyat, blen = strlen(e->boundary);
	size_t at = 0, len, start = 0, end;
	int inpart = 0, last = 0;

	while (at < n) {
		len = line_len(p + at, n - at);
		if (!delimiter(p + at, len, e->boundary, blen, &last)) {
			at += len;
			continue;
		}
		end = at;
		if (end > start && p[end - 1] == '\n')
			end -= end - 1 > start && p[end - 2] == '\r' ? 2 : 1;
		if (inpart)
			entity(out, p + start, end - start, depth + 1);
		else
			buf_add(out, p + start, end - start);
		buf_add(out, p + end, at + len - end);
		at += len;
		start = at;
		inpart = !last;
		if (last)
			break;
	}
	if (inpart)
		entity(out, p + start, n - start, depth + 1);
	else
		buf_add(out, p + start, n - start);
}

static void
entity(struct buf *out, const char *p, size_t n, int depth)
{
	struct entity e;

	parse_entity(&e, p, n);
	if (depth < DEPTH_MAX && !strncmp(e.type, "multipart/", 10) &&
	    e.boundary[0]) {
		buf_add(out, p, e.bodyat);
		multipart(out, &e, depth);
	} else if (depth < DEPTH_MAX && (!strcmp(e.type, "message/rfc822") ||
	    !strcmp(e.type, "message/global"))) {
		buf_add(out, p, e.bodyat);
		entity(out, p + e.bodyat, n - e.bodyat, depth + 1);
	} else {
		leaf(out, &e);
	}
}

void
binary_encode(struct buf *out, const char *p, size_t n)
{
	entity(out, p, n, 0);
}
