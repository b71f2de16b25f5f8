/* mime.c: the structure and content of a message mapped read-only:
 * ENVELOPE, BODY/BODYSTRUCTURE, fetch sections and the content keys of
 * SEARCH.
 *
 * A message is parsed into a tree of offsets into the mapping (struct
 * tree); nothing of the message is copied but single header values.
 * Every size the client sees counts line ends as CRLF: a bare LF is sent
 * as CRLF, CRLF and a bare CR are sent as they are.  Parsing is one pass
 * over the lines with bounded nesting and part count, so no input makes
 * it recurse deeply, loop, or go quadratic.
 *
 * Where RFC 3501 leaves a choice open the output follows Dovecot, the
 * server most clients are tested against:
 *   - the last Date/Subject/In-Reply-To/Message-ID field wins; repeated
 *     address fields are merged as if they were one comma separated list;
 *   - an address without a domain gets host "MISSING_DOMAIN", a display
 *     name without an address gets mailbox "MISSING_MAILBOX", and <...>
 *     that holds no addr-spec gets host "SYNTAX_ERROR", so a host is NIL
 *     only in group markers;
 *   - RFC 2231 parameter continuations (name*0, name*1*, ...) are joined
 *     into one parameter, named "name*" when any piece is extended, with
 *     the value left encoded (charset'language'%XX...).  RFC 3501 passes
 *     parameters through as RFC 2045 attribute/value pairs and leaves the
 *     decoding to the client; joining the pieces keeps the list short
 *     and gives clients that read "name*" the whole value;
 *   - a multipart or message nested deeper than MIME_DEPTH, or past
 *     MIME_PARTS parts, is shown as application/octet-stream.
 */
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "mime.h"
#include "unicode.h"
#include "util.h"

#define MIME_DEPTH	32	/* nested multiparts and messages */
#define MIME_PARTS	10000	/* parts of one message */
#define PARAMS_MAX	64	/* parameters kept from one header field */
#define SECTION_DEPTH	64	/* part numbers in a section */
#define CHUNK		8192	/* decoding and conversion step */
#define DROP_STEP	(1 << 20)	/* scans give back pages this often */

enum { LEAF, MULTI, MESSAGE };

#define NONE	((size_t)-1)	/* no such offset */

/* One entity: the message, a body part, or an encapsulated message.
 * Offsets into the mapping: the header is [hdr, body), the body
 * [body, end); the line end before a boundary belongs to the boundary. */
struct part {
	size_t hdr, body, end;
	int kind;
	int digest;	/* no Content-Type means message/rfc822 */
	int trunc;	/* a multipart or message beyond the limits */
	int child, next, nchild;	/* indices, -1 for none */
};

struct tree {
	const char *p;
	size_t n;
	struct part *v;
	int nv, cap;
	/* boundaries of the open multiparts, innermost last */
	char *bnd[MIME_DEPTH];
	size_t blen[MIME_DEPTH];
	int nb;
};

/* a header field: [start, end) with its folded lines and line end */
struct field {
	size_t start, end;
	const char *name, *val;	/* val NULL: a line without a colon */
	size_t nlen, vlen;	/* vlen excludes the final line end */
};

struct param {
	size_t name, nlen, val, vlen;	/* offsets into params.s */
	size_t flen;	/* the name with its RFC 2231 suffix */
	int ext;	/* RFC 2231 "name*" */
	long idx;	/* RFC 2231 continuation number, -1 for none */
};

struct params {
	struct buf s;
	struct param v[PARAMS_MAX];
	int n;
};

/* a Content-Type or Content-Disposition value */
struct ctype {
	struct buf type, subtype;
	struct params par;
	int present, invalid;
};

/* where section output goes: the window [from, end) of the octets that
 * pass through put() */
struct clip {
	uint64_t pos, from, end;
	mime_emit emit;
	void *arg;
	int done;
};

/* a decoder's output, collected into chunks */
struct dec {
	mime_emit out;
	void *arg;
	const int *stop;	/* set when no more output is wanted */
	size_t len;
	char buf[CHUNK];
};

enum { SEG_RAW, SEG_LIT, SEG_B64, SEG_QP };

struct seg {
	int kind;
	size_t off, len;	/* range of the message, or of lit */
	uint64_t size;	/* octets the segment gives */
};

struct sectiondata {
	const char *p;
	int binary;	/* a literal8: NUL goes out as it is */
	struct seg *v;
	size_t nv, cap;
};

enum { S_ALL, S_HEADER, S_FIELDS, S_FIELDS_NOT, S_TEXT, S_MIME };

struct section {
	unsigned part[SECTION_DEPTH];
	int npart;
	int text;
	char **fields;
	int nfields;
};

/* SEARCH: folded text is matched against a folded needle; the last
 * nlen - 1 octets are kept so a match across two chunks is found */
struct match {
	const char *needle;	/* in i;unicode-casemap form */
	size_t nlen;
	char *win;		/* the mapped text's last nlen - 1 octets */
	size_t wlen, wcap;
	char pend[4];		/* an incomplete UTF-8 sequence */
	size_t npend;
	int found;
	struct buf *rec;	/* recording for an index: text kept, not searched */
};

/* charset conversion in front of a match */
struct conv {
	iconv_t cd;	/* (iconv_t)-1: the text is taken as it is */
	struct match *m;
	size_t npend;
	char pend[16];	/* an incomplete sequence from the last chunk */
};

static const char lit_crlf[] = "\r\n";

/* messages are read-only file mappings (mime_filemap) */
static int filemap;

static int
upper(int c)
{
	return c >= 'a' && c <= 'z' ? c - 32 : c;
}

static int
iswsp(int c)
{
	return c == ' ' || c == '\t';
}

static int
isdigit_(int c)
{
	return c >= '0' && c <= '9';
}

/* case-insensitive comparison of a counted string with a C string */
static int
eqstr(const char *s, size_t n, const char *t)
{
	size_t m = strlen(t);

	return n == m && ascii_ncasecmp(s, t, n) == 0;
}

/* index just past the line that starts at i */
static size_t
nextline(const char *p, size_t n, size_t i)
{
	const char *e;

	if (i >= n)
		return n;
	e = memchr(p + i, '\n', n - i);
	return e ? (size_t)(e - p) + 1 : n;
}

/* the line at i is empty: the end of a header */
static size_t
blankline(const char *p, size_t n, size_t i)
{
	if (i < n && p[i] == '\n')
		return 1;
	if (i + 1 < n && p[i] == '\r' && p[i + 1] == '\n')
		return 2;
	return 0;
}

void
mime_filemap(int on)
{
	filemap = on;
}

/* Give back the whole pages of [from, to), part of a file mapping a scan
 * has passed: they are read from the file again when needed, and a scan
 * of a large message does not leave all of it resident.  Scans call it
 * every DROP_STEP octets. */
static void
drop(const char *from, const char *to)
{
	uintptr_t pg, a, b;

	if (!filemap)
		return;
	pg = sysconf(_SC_PAGESIZE);
	a = ((uintptr_t)from + pg - 1) & ~(pg - 1);
	b = (uintptr_t)to & ~(pg - 1);
	if (b > a)
		madvise((void *)a, b - a, MADV_DONTNEED);
}

/* ---- CRLF form ------------------------------------------------------ */

uint64_t
mime_crlf_size(const char *p, size_t n)
{
	const char *s = p, *e = p + n, *q, *mark = p;
	uint64_t size = n;

	while (s < e && (q = memchr(s, '\n', e - s))) {
		if (q == p || q[-1] != '\r')
			size++;
		s = q + 1;
		if (s - mark >= DROP_STEP) {
			drop(mark, s);
			mark = s;
		}
	}
	drop(mark, e);
	return size;
}

static void
clip_init(struct clip *c, uint64_t from, uint64_t count, mime_emit emit,
    void *arg)
{
	c->pos = 0;
	c->from = from;
	c->end = count > UINT64_MAX - from ? UINT64_MAX : from + count;
	c->emit = emit;
	c->arg = arg;
	c->done = c->from >= c->end;
}

/* pass n octets of output; the part inside the window is emitted */
static void
clip_put(struct clip *c, const char *p, size_t n)
{
	uint64_t skip, take;

	if (c->done || !n)
		return;
	if (c->pos + n <= c->from) {
		c->pos += n;
		return;
	}
	skip = c->from > c->pos ? c->from - c->pos : 0;
	take = MIN((uint64_t)n - skip, c->end - c->pos - skip);
	c->emit(c->arg, p + skip, take);
	c->pos += n;
	if (c->pos >= c->end)
		c->done = 1;
}

static void
clip_emit(void *arg, const char *p, size_t n)
{
	clip_put(arg, p, n);
}

/* the next c in [s, e), or e */
static const char *
find(const char *s, const char *e, int c)
{
	const char *q = s < e ? memchr(s, c, e - s) : NULL;

	return q ? q : e;
}

/* p as CRLF into the window: runs between bare LFs go out unchanged.
 * With text set, a NUL (which an IMAP literal may not hold) goes out as
 * 0x80; a literal8 (BINARY) takes it as it is.  Works in blocks of
 * DROP_STEP, which it gives back when done. */
static void
crlf_put(const char *p, size_t n, struct clip *c, int text)
{
	const char *run, *e = p + n, *b, *be, *q, *z;

	for (b = p; b < e && !c->done; b = be) {
		be = b + MIN((size_t)(e - b), DROP_STEP);
		run = b;
		q = find(b, be, '\n');
		z = text ? find(b, be, '\0') : be;
		while (!c->done) {
			if (z < q) {
				clip_put(c, run, z - run);
				clip_put(c, "\x80", 1);
				run = z + 1;
				z = find(run, be, '\0');
				continue;
			}
			if (q == be)
				break;
			if (q == p || q[-1] != '\r') {
				clip_put(c, run, q - run);
				clip_put(c, lit_crlf, 2);
				run = q + 1;
			}
			q = find(q + 1, be, '\n');
		}
		clip_put(c, run, be - run);
		drop(b, be);
	}
}

void
mime_crlf_write(const char *p, size_t n, uint64_t from, uint64_t count,
    mime_emit emit, void *arg)
{
	struct clip c;

	clip_init(&c, from, count, emit, arg);
	crlf_put(p, n, &c, 1);
}

/* lines as RFC 3501 counts them: the LFs of the range */
static uint64_t
countlines(const char *p, size_t n)
{
	const char *s = p, *e = p + n, *q, *mark = p;
	uint64_t lines = 0;

	while (s < e && (q = memchr(s, '\n', e - s))) {
		lines++;
		s = q + 1;
		if (s - mark >= DROP_STEP) {
			drop(mark, s);
			mark = s;
		}
	}
	drop(mark, e);
	return lines;
}

/* ---- header fields ---------------------------------------------------- */

/* the end of the header that starts at i: just past the blank line, or
 * the end of the message when there is none */
static size_t
header_end(const char *p, size_t n, size_t i)
{
	size_t k;

	for (; i < n; i = nextline(p, n, i))
		if ((k = blankline(p, n, i)))
			return i + k;
	return n;
}

/* the next field of the header block [*i, hend); 0 at its end */
static int
field_next(const char *p, size_t hend, size_t *i, struct field *f)
{
	size_t s = *i, e, first;
	const char *colon;

	if (s >= hend || blankline(p, hend, s))
		return 0;
	first = e = nextline(p, hend, s);
	while (e < hend && iswsp((unsigned char)p[e]))
		e = nextline(p, hend, e);
	f->start = s;
	f->end = e;
	*i = e;
	f->name = p + s;
	colon = memchr(p + s, ':', first - s);
	if (!colon) {
		f->nlen = first - s;
		f->val = NULL;
		f->vlen = 0;
		return 1;
	}
	f->nlen = colon - (p + s);
	while (f->nlen && iswsp((unsigned char)f->name[f->nlen - 1]))
		f->nlen--;
	f->val = colon + 1;
	f->vlen = (p + e) - f->val;
	if (f->vlen && f->val[f->vlen - 1] == '\n')
		f->vlen--;
	if (f->vlen && f->val[f->vlen - 1] == '\r')
		f->vlen--;
	return 1;
}

static int
field_is(const struct field *f, const char *name)
{
	return f->val && eqstr(f->name, f->nlen, name);
}

/* the value unfolded: line ends dropped, white space before the first
 * line's text skipped,
 * NUL (not allowed in an IMAP string) as 0x80 */
static void
unfold(struct buf *b, const char *v, size_t n)
{
	size_t i, run;

	while (n && iswsp((unsigned char)*v)) {
		v++;
		n--;
	}
	buf_grow(b, n);
	for (i = 0; i < n; i += run) {
		for (run = 0; i + run < n && v[i + run] != '\r' &&
		    v[i + run] != '\n' && v[i + run] != '\0'; run++)
			;
		buf_add(b, v + i, run);
		if (i + run < n) {
			if (v[i + run] == '\0')
				buf_addc(b, 0x80);
			run++;
		}
	}
}

/* the unfolded value of the field called name in the header [hs, he):
 * the first Content-Type, which decides the structure, and the last of
 * any other field; 0 when there is none */
static int
header_get(const char *p, size_t hs, size_t he, const char *name,
    struct buf *out)
{
	struct field f, last;
	size_t i = hs;
	int found = 0, first = !ascii_casecmp(name, "Content-Type");

	while (field_next(p, he, &i, &f))
		if (field_is(&f, name)) {
			last = f;
			found = 1;
			if (first)
				break;
		}
	if (found)
		unfold(out, last.val, last.vlen);
	return found;
}

/* ---- MIME header values (RFC 2045 tokens, RFC 822 comments) ---------- */

struct lex {
	const char *s, *e;
};

static int
tspecial(int c)
{
	return c <= ' ' || c == 0x7f || strchr("()<>@,;:\\\"/[]?=", c);
}

/* skip white space and comments */
static void
skipcfws(struct lex *l)
{
	int depth;

	while (l->s < l->e) {
		if (iswsp((unsigned char)*l->s) || *l->s == '\r' ||
		    *l->s == '\n') {
			l->s++;
			continue;
		}
		if (*l->s != '(')
			return;
		for (depth = 0; l->s < l->e; l->s++) {
			if (*l->s == '\\' && l->s + 1 < l->e)
				l->s++;
			else if (*l->s == '(')
				depth++;
			else if (*l->s == ')' && --depth == 0) {
				l->s++;
				break;
			}
		}
	}
}

/* a token (8-bit octets allowed); 0 when there is none */
static int
mtoken(struct lex *l, struct buf *out)
{
	const char *t = l->s;

	while (l->s < l->e && ((unsigned char)*l->s >= 0x80 ||
	    !tspecial((unsigned char)*l->s)))
		l->s++;
	buf_add(out, t, l->s - t);
	return l->s > t;
}

/* a quoted string at l->s, unescaped; an unterminated one runs to the end */
static void
qstring(struct lex *l, struct buf *out)
{
	const char *t;

	for (l->s++; l->s < l->e && *l->s != '"'; l->s++) {
		if (*l->s == '\\' && l->s + 1 < l->e)
			l->s++;
		if (*l->s == '\r' || *l->s == '\n')
			continue;
		t = l->s;
		buf_add(out, t, 1);
	}
	if (l->s < l->e)
		l->s++;
}

static void
params_add(struct params *pp, const char *name, size_t nlen,
    const char *val, size_t vlen)
{
	struct param *q;
	const char *star;
	char *end;

	if (pp->n >= PARAMS_MAX)
		return;
	q = &pp->v[pp->n++];
	q->ext = 0;
	q->idx = -1;
	q->name = pp->s.len;
	q->nlen = q->flen = nlen;
	buf_add(&pp->s, name, nlen);
	q->val = pp->s.len;
	q->vlen = vlen;
	buf_add(&pp->s, val, vlen);
	/* RFC 2231: name*, name*N, name*N* */
	if (nlen && name[nlen - 1] == '*') {
		q->ext = 1;
		nlen--;
	}
	star = memchr(name, '*', nlen);
	if (star && star + 1 < name + nlen && isdigit_((unsigned char)star[1]) &&
	    star + 1 + 9 >= name + nlen) {
		q->idx = strtol(star + 1, &end, 10);
		if (end != name + nlen)
			q->idx = -1;
		else
			nlen = star - name;
	}
	q->nlen = nlen;
}

static const char *
pname(const struct params *pp, int i)
{
	return pp->s.p + pp->v[i].name;
}

/* RFC 2231 parameters sort by name, then by piece */
static int
pcmp(const struct params *pp, const struct param *a, const struct param *b)
{
	int c = ascii_ncasecmp(pp->s.p + a->name, pp->s.p + b->name,
	    MIN(a->nlen, b->nlen));

	if (c)
		return c;
	if (a->nlen != b->nlen)
		return a->nlen < b->nlen ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static int
samename(const struct params *pp, const struct param *a,
    const struct param *b)
{
	return a->nlen == b->nlen && !ascii_ncasecmp(pp->s.p + a->name,
	    pp->s.p + b->name, a->nlen);
}

/* a parameter into another list; star: written "name*", full: with
 * the name as it was, continuation number and all */
static struct param *
param_copy(struct params *to, const struct params *from,
    const struct param *q, int star, int full)
{
	struct param *r = &to->v[to->n++];

	*r = *q;
	r->name = to->s.len;
	buf_add(&to->s, from->s.p + q->name, full ? q->flen : q->nlen);
	if (star && !full)
		buf_addc(&to->s, '*');
	r->nlen = to->s.len - r->name;
	r->val = to->s.len;
	buf_add(&to->s, from->s.p + q->val, q->vlen);
	r->idx = -1;
	return r;
}

/* Plain parameters first, in their order; then the RFC 2231 ones sorted
 * by name, continuations (name*0, name*1*, ...) joined into one value up
 * to the first missing piece, named "name*" when a piece is extended. */
static void
params_join(struct params *pp)
{
	struct params out = { 0 };
	struct param v[PARAMS_MAX], tmp, *r;
	int i, j, k, n = 0, want, ext;

	for (i = 0; i < pp->n; i++)
		if (pp->v[i].idx < 0 && !pp->v[i].ext)
			param_copy(&out, pp, &pp->v[i], 0, 0);
		else
			v[n++] = pp->v[i];
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && pcmp(pp, &v[j - 1], &v[j]) > 0; j--) {
			tmp = v[j];
			v[j] = v[j - 1];
			v[j - 1] = tmp;
		}
	for (i = 0; i < n; i = j) {
		j = i + 1;
		if (v[i].idx < 0) {
			param_copy(&out, pp, &v[i], v[i].ext, 0);
			continue;
		}
		while (j < n && samename(pp, &v[i], &v[j]))
			j++;
		if (v[i].idx != 0) {
			/* no first piece: passed on as they are */
			for (k = i; k < j; k++)
				param_copy(&out, pp, &v[k], 0, 1);
			continue;
		}
		for (k = i, want = 0, ext = 0; k < j; k++)
			if (v[k].idx == want) {
				ext |= v[k].ext;
				want++;
			}
		r = param_copy(&out, pp, &v[i], ext, 0);
		if (ext && !v[i].ext) {
			/* an extended value starts with charset'language' */
			out.s.len = r->val;
			buf_adds(&out.s, "''");
			buf_add(&out.s, pp->s.p + v[i].val, v[i].vlen);
		}
		for (k = i + 1, want = 1; k < j; k++)
			if (v[k].idx == want) {
				buf_add(&out.s, pp->s.p + v[k].val, v[k].vlen);
				want++;
			}
		r->vlen = out.s.len - r->val;
		r->ext = ext;
	}
	buf_free(&pp->s);
	*pp = out;
}

/* a parameter value: a quoted string or a token; a value that starts
 * like an encoded word runs to the next ";" or white space, as broken
 * mailers write them unquoted.  0 when there is none or it is not
 * terminated. */
static int
pvalue(struct lex *l, struct buf *val)
{
	const char *t = l->s;

	if (l->s < l->e && *l->s == '"') {
		qstring(l, val);
		return l->s[-1] == '"' && l->s - t >= 2;
	}
	if (l->e - l->s >= 2 && l->s[0] == '=' && l->s[1] == '?') {
		while (l->s < l->e && *l->s != ';' && !iswsp((unsigned char)*l->s))
			l->s++;
		buf_add(val, t, l->s - t);
		return 1;
	}
	return mtoken(l, val);
}

/* past what a parameter list cannot read, up to the next ";" outside a
 * quoted string */
static void
param_skip(struct lex *l)
{
	while (l->s < l->e && *l->s != ';') {
		if (*l->s++ != '"')
			continue;
		for (; l->s < l->e && *l->s != '"'; l->s++)
			if (*l->s == '\\' && l->s + 1 < l->e)
				l->s++;
		if (l->s < l->e)
			l->s++;
	}
}

/* (";" attribute "=" value)*.  What cannot be read, such as a missing
 * ";" between two parameters (RFC 2046 5.2.3.7 has one), is skipped up
 * to the next ";", keeping the parameters around it */
static void
params_parse(struct lex *l, struct params *pp)
{
	struct buf name = { 0 }, val = { 0 };

	for (;;) {
		skipcfws(l);
		if (l->s >= l->e)
			break;
		if (*l->s != ';') {
			param_skip(l);
			continue;
		}
		/* empty parameters (";;") are skipped */
		while (l->s < l->e && (*l->s == ';' || iswsp((unsigned char)*l->s)))
			l->s++;
		skipcfws(l);
		buf_reset(&name);
		buf_reset(&val);
		if (!mtoken(l, &name))
			continue;
		skipcfws(l);
		if (l->s >= l->e || *l->s != '=')
			continue;
		l->s++;
		skipcfws(l);
		if (!pvalue(l, &val))
			continue;
		params_add(pp, name.p, name.len, val.len ? val.p : "", val.len);
	}
	buf_free(&name);
	buf_free(&val);
	params_join(pp);
}

/* the value of parameter name, or NULL */
static const char *
param_get(const struct params *pp, const char *name, size_t *len)
{
	int i;

	for (i = 0; i < pp->n; i++)
		if (eqstr(pname(pp, i), pp->v[i].nlen, name)) {
			*len = pp->v[i].vlen;
			return pp->s.p + pp->v[i].val;
		}
	return NULL;
}

static void
ctype_free(struct ctype *ct)
{
	buf_free(&ct->type);
	buf_free(&ct->subtype);
	buf_free(&ct->par.s);
	ct->par.n = 0;
}

/* Content-Type (type "/" subtype params) or, with disp set,
 * Content-Disposition (type params), of the header [hs, he) */
static void
ctype_parse(struct ctype *ct, const char *p, size_t hs, size_t he,
    const char *field, int disp)
{
	struct buf v = { 0 };
	struct lex l;

	memset(ct, 0, sizeof(*ct));
	if (!header_get(p, hs, he, field, &v))
		return;
	ct->present = 1;
	l.s = v.p;
	l.e = v.p + v.len;
	skipcfws(&l);
	if (!mtoken(&l, &ct->type))
		goto bad;
	skipcfws(&l);
	if (!disp) {
		if (l.s >= l.e || *l.s != '/')
			goto bad;
		l.s++;
		skipcfws(&l);
		if (!mtoken(&l, &ct->subtype))
			goto bad;
		skipcfws(&l);
	}
	if (l.s < l.e && *l.s != ';')
		goto bad;
	params_parse(&l, &ct->par);
	buf_free(&v);
	return;
bad:
	/* unreadable: shown with an empty type and subtype */
	buf_reset(&ct->type);
	buf_reset(&ct->subtype);
	ct->invalid = 1;
	buf_free(&v);
}

/* the Content-Transfer-Encoding of the header [hs, he); "7bit" when
 * there is none or it is not one token */
static void
cte_get(const char *p, size_t hs, size_t he, struct buf *out)
{
	struct buf v = { 0 };
	struct lex l;

	if (header_get(p, hs, he, "Content-Transfer-Encoding", &v)) {
		l.s = v.p;
		l.e = v.p + v.len;
		skipcfws(&l);
		mtoken(&l, out);
		skipcfws(&l);
		if (l.s < l.e)
			buf_reset(out);
	}
	if (!out->len)
		buf_adds(out, "7bit");
	buf_free(&v);
}

/* the decoder a transfer encoding needs: SEG_RAW for none, SEG_B64,
 * SEG_QP, or -1 when it is unknown */
static int
cte_kind(const struct buf *cte)
{
	if (eqstr(cte->p, cte->len, "base64"))
		return SEG_B64;
	if (eqstr(cte->p, cte->len, "quoted-printable"))
		return SEG_QP;
	if (eqstr(cte->p, cte->len, "7bit") || eqstr(cte->p, cte->len,
	    "8bit") || eqstr(cte->p, cte->len, "binary"))
		return SEG_RAW;
	return -1;
}

/* ---- the part tree ---------------------------------------------------- */

/* the open boundary the line at i delimits, -1 for none; the longest
 * match wins, the innermost on a tie.  *close: a close delimiter */
static int
boundary(const struct tree *t, size_t i, int *close)
{
	const char *s = t->p + i;
	size_t avail = t->n - i, j;
	int k, best = -1;

	if (avail < 2 || s[0] != '-' || s[1] != '-')
		return -1;
	for (k = t->nb - 1; k >= 0; k--)
		if (t->blen[k] <= avail - 2 &&
		    !memcmp(s + 2, t->bnd[k], t->blen[k]) &&
		    (best < 0 || t->blen[k] > t->blen[best]))
			best = k;
	if (best >= 0) {
		j = 2 + t->blen[best];
		*close = j + 2 <= avail && s[j] == '-' && s[j + 1] == '-';
	}
	return best;
}

/* the start of the next line from i that delimits an open multipart,
 * or the end of the message */
static size_t
find_boundary(const struct tree *t, size_t i)
{
	size_t mark = i;
	int close;

	if (!t->nb)
		return t->n;
	for (; i < t->n; i = nextline(t->p, t->n, i)) {
		if (t->p[i] == '-' && boundary(t, i, &close) >= 0)
			break;
		if (i - mark >= DROP_STEP) {
			drop(t->p + mark, t->p + i);
			mark = i;
		}
	}
	drop(t->p + mark, t->p + i);
	return i;
}

/* the end of a body that stops at the boundary line at k: the line end
 * before the boundary belongs to it (RFC 2046 5.1.1) */
static size_t
cut(const struct tree *t, size_t k, size_t lo)
{
	if (k >= t->n)
		return t->n;
	if (k > lo && t->p[k - 1] == '\n') {
		k--;
		if (k > lo && t->p[k - 1] == '\r')
			k--;
	}
	return k;
}

static int
newpart(struct tree *t, size_t hdr)
{
	struct part *pt;

	if (t->nv == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 8;
		t->v = xreallocarray(t->v, t->cap, sizeof(*t->v));
	}
	pt = &t->v[t->nv];
	memset(pt, 0, sizeof(*pt));
	pt->hdr = pt->body = pt->end = hdr;
	pt->child = pt->next = -1;
	return t->nv++;
}

static void
pop_boundary(struct tree *t)
{
	free(t->bnd[--t->nb]);
}

/* what the Content-Type of a part makes it; the boundary of a multipart
 * is pushed onto the stack (*pushed) */
static int
classify(struct tree *t, int me, int *digest, int *pushed)
{
	struct ctype ct;
	const char *b;
	size_t blen;
	int kind = LEAF;

	ctype_parse(&ct, t->p, t->v[me].hdr, t->v[me].body, "Content-Type",
	    0);
	*digest = *pushed = 0;
	if (!ct.present || !ct.type.len) {
		if (t->v[me].digest)
			kind = MESSAGE;
	} else if (eqstr(ct.type.p, ct.type.len, "multipart")) {
		kind = MULTI;
		*digest = eqstr(ct.subtype.p, ct.subtype.len, "digest");
		b = param_get(&ct.par, "boundary", &blen);
		if (b && blen > 0 && t->nb < MIME_DEPTH) {
			t->bnd[t->nb] = xmalloc(blen);
			memcpy(t->bnd[t->nb], b, blen);
			t->blen[t->nb++] = blen;
			*pushed = 1;
		}
	} else if (eqstr(ct.type.p, ct.type.len, "message") &&
	    eqstr(ct.subtype.p, ct.subtype.len, "rfc822")) {
		/* not message/global (RFC 6532): an IMAP4rev1 client does
		 * not expect an envelope after it */
		kind = MESSAGE;
	}
	ctype_free(&ct);
	return kind;
}

/* Where the header of entity me ends, setting its body: at a blank line,
 * else at a delimiter of an enclosing multipart or the end.  Returns the
 * start of the delimiter line that leaves the entity without a body, or
 * NONE; *blank is the start of the blank line before that delimiter, or
 * NONE when there was none.  The line end before a delimiter belongs to
 * it (RFC 2046 5.1.1), also when it ends a header or its blank line. */
static size_t
header_scan(struct tree *t, int me, size_t *blank)
{
	size_t i, k;
	int close;

	*blank = NONE;
	for (i = t->v[me].hdr;; i = nextline(t->p, t->n, i)) {
		if (i >= t->n) {
			t->v[me].body = t->n;
			return NONE;
		}
		if ((k = blankline(t->p, t->n, i))) {
			t->v[me].body = i + k;
			if (!t->nb || i + k >= t->n || t->p[i + k] != '-' ||
			    boundary(t, i + k, &close) < 0)
				return NONE;
			*blank = i;
			return i + k;
		}
		if (t->nb && t->p[i] == '-' && boundary(t, i, &close) >= 0) {
			t->v[me].body = cut(t, i, t->v[me].hdr);
			return i;
		}
	}
}

/* an entity whose header the delimiter line at delim ends: no body, no
 * parts; a message gets an empty message */
static size_t
empty_entity(struct tree *t, int me, int kind, int pushed, size_t delim,
    size_t blank)
{
	int c;

	if (pushed)
		pop_boundary(t);
	if (blank != NONE)
		t->v[me].body = blank;
	t->v[me].end = t->v[me].body;
	if (kind == MESSAGE) {
		c = newpart(t, t->v[me].body);
		t->v[me].child = c;
		t->v[me].nchild = 1;
	}
	return delim;
}

/* Parse the entity whose header starts at start into part *out.  Returns
 * where it ends: the start of a line that delimits an enclosing
 * multipart, or the end of the message. */
static size_t
parse_entity(struct tree *t, size_t start, int depth, int digest, int *out)
{
	size_t k, j, delim, blank;
	int me, kind, close = 0, sub = -1, c, last = -1, subdigest, pushed;

	me = *out = newpart(t, start);
	t->v[me].digest = digest;
	delim = header_scan(t, me, &blank);
	kind = classify(t, me, &subdigest, &pushed);
	if (kind != LEAF && (depth + 1 >= MIME_DEPTH ||
	    t->nv >= MIME_PARTS)) {
		if (pushed)
			pop_boundary(t);
		pushed = 0;
		t->v[me].trunc = 1;
		kind = LEAF;
	}
	t->v[me].kind = kind;
	/* a blank line and a delimiter: the body is empty, unless the
	 * delimiter is this multipart's own first one (its boundary the
	 * longest that matches) */
	if (blank != NONE && pushed && boundary(t, delim, &close) == t->nb - 1)
		delim = NONE;
	if (delim != NONE)
		return empty_entity(t, me, kind, pushed, delim, blank);
	if (kind == LEAF || (kind == MULTI && !pushed)) {
		/* a multipart without a boundary has no parts */
		j = find_boundary(t, t->v[me].body);
		t->v[me].end = cut(t, j, t->v[me].body);
		return j;
	}
	if (kind == MESSAGE) {
		j = parse_entity(t, t->v[me].body, depth + 1, 0, &c);
		t->v[me].child = c;
		t->v[me].nchild = 1;
		/* the message ends where its content does: a close
		 * delimiter inside keeps its line end */
		t->v[me].end = t->v[c].end;
		return j;
	}
	/* multipart: preamble, parts, epilogue */
	j = t->v[me].body;
	while (j < t->n) {
		if ((sub = boundary(t, j, &close)) < 0) {
			j = nextline(t->p, t->n, j);
			continue;
		}
		if (sub != t->nb - 1 || close)
			break;
		if (t->nv >= MIME_PARTS) {
			j = nextline(t->p, t->n, j);
			continue;
		}
		j = parse_entity(t, nextline(t->p, t->n, j), depth + 1,
		    subdigest, &c);
		if (last < 0)
			t->v[me].child = c;
		else
			t->v[last].next = c;
		last = c;
		t->v[me].nchild++;
	}
	pop_boundary(t);
	k = t->v[me].body;
	if (j < t->n && sub == t->nb && close) {
		/* the epilogue: the close delimiter keeps its line end */
		k = nextline(t->p, t->n, j);
		j = find_boundary(t, k);
	}
	t->v[me].end = cut(t, j, k);
	return j;
}

static struct tree *
tree_parse(const char *p, size_t n)
{
	struct tree *t = xcalloc(1, sizeof(*t));
	int root;

	t->p = p;
	t->n = n;
	parse_entity(t, 0, 0, 0, &root);
	return t;
}

static void
tree_free(struct tree *t)
{
	if (!t)
		return;
	while (t->nb)
		pop_boundary(t);
	free(t->v);
	free(t);
}

/* ---- IMAP strings ----------------------------------------------------- */

/* a value for humans (subject, display name): runs of white space as one
 * space, trimmed; quoted when it can be, a literal otherwise */
static void
addhuman(struct buf *b, const char *s, size_t n)
{
	struct buf t = { 0 };
	size_t i;
	int sp = 0;

	for (i = 0; i < n; i++) {
		if (iswsp((unsigned char)s[i]) || s[i] == '\r' || s[i] == '\n') {
			sp = t.len > 0;
			continue;
		}
		if (sp)
			buf_addc(&t, ' ');
		sp = 0;
		buf_addc(&t, s[i] ? s[i] : 0x80);
	}
	buf_addstr(b, t.len ? t.p : "", t.len);
	buf_free(&t);
}

/* a string from a buffer that may never have been written to */
static void
addbuf(struct buf *b, const struct buf *v)
{
	buf_addstr(b, v->len ? v->p : "", v->len);
}

/* an nstring from an unfolded value (NULL: NIL) */
static void
addnstr(struct buf *b, const struct buf *v)
{
	if (!v)
		buf_adds(b, "NIL");
	else
		buf_addstr(b, v->len ? v->p : "", v->len);
}

/* ---- addresses (RFC 5322 3.4, tolerant) ------------------------------- */

enum { T_END, T_WORD, T_QSTR, T_DLIT, T_SPECIAL };

struct tok {
	int type, c;
	const char *s;
	size_t n;
	int sp;	/* white space or a comment came before it */
};

struct alex {
	const char *s, *e;
	struct buf comment;	/* the text of the last comment skipped */
};

static void
alex_skip(struct alex *l, int *sp)
{
	const char *c;
	int depth;

	while (l->s < l->e) {
		if (iswsp((unsigned char)*l->s) || *l->s == '\r' ||
		    *l->s == '\n') {
			l->s++;
			*sp = 1;
			continue;
		}
		if (*l->s != '(')
			return;
		*sp = 1;
		buf_reset(&l->comment);
		for (depth = 0; l->s < l->e; l->s++) {
			c = l->s;
			if (*c == '\\' && c + 1 < l->e) {
				l->s++;
				buf_addc(&l->comment, c[1]);
				continue;
			}
			if (*c == '(' && depth++ == 0)
				continue;
			if (*c == ')' && --depth == 0) {
				l->s++;
				break;
			}
			buf_addc(&l->comment, *c);
		}
	}
}

static int
atext(int c)
{
	return c >= 0x80 || (c > ' ' && c != 0x7f &&
	    !strchr("()<>[]:;@\\,.\"", c));
}

static void
alex_next(struct alex *l, struct tok *t)
{
	t->sp = 0;
	alex_skip(l, &t->sp);
	t->s = l->s;
	t->n = 0;
	if (l->s >= l->e) {
		t->type = T_END;
		return;
	}
	if (*l->s == '"') {
		t->type = T_QSTR;
		for (l->s++; l->s < l->e && *l->s != '"'; l->s++)
			if (*l->s == '\\' && l->s + 1 < l->e)
				l->s++;
		t->s++;
		t->n = l->s - t->s;
		if (l->s < l->e)
			l->s++;
		return;
	}
	if (*l->s == '[') {
		t->type = T_DLIT;
		while (l->s < l->e && *l->s != ']')
			l->s++;
		if (l->s < l->e)
			l->s++;
		t->n = l->s - t->s;
		return;
	}
	if (atext((unsigned char)*l->s)) {
		t->type = T_WORD;
		while (l->s < l->e && atext((unsigned char)*l->s))
			l->s++;
		t->n = l->s - t->s;
		return;
	}
	t->type = T_SPECIAL;
	t->c = (unsigned char)*l->s++;
	t->n = 1;
}

static void
alex_peek(struct alex *l, struct tok *t)
{
	const char *s = l->s;

	alex_next(l, t);
	l->s = s;
}

/* append a word token, a quoted string unescaped */
static void
addword(struct buf *b, const struct tok *t)
{
	size_t i;

	if (t->type != T_QSTR) {
		buf_add(b, t->s, t->n);
		return;
	}
	for (i = 0; i < t->n; i++) {
		if (t->s[i] == '\\' && i + 1 < t->n)
			i++;
		buf_addc(b, t->s[i]);
	}
}

static int
isword(const struct tok *t)
{
	return t->type == T_WORD || t->type == T_QSTR ||
	    (t->type == T_SPECIAL && t->c == '.');
}

static int
isspecial(const struct tok *t, int c)
{
	return t->type == T_SPECIAL && t->c == c;
}

/* does t, read after a word, start a new word: white space or a comment
 * between two words that no dot joins (RFC 5322 3.4.1, 4.4: a local
 * part and a domain are words joined by dots, CFWS allowed around them) */
static int
newword(const struct tok *t, int prevdot)
{
	return t->sp && !prevdot && !(t->type == T_SPECIAL && t->c == '.');
}

/* words up to something else: a phrase, or with local set a local part,
 * which stops before a second word not joined by a dot and keeps no
 * white space ("john . doe" is john.doe); returns how many words
 * separated by white space it had */
static int
phrase(struct alex *l, struct buf *b, int local)
{
	struct tok t;
	int words = 0, prevdot = 1;

	for (;;) {
		alex_peek(l, &t);
		if (!isword(&t) || (local && words && newword(&t, prevdot)))
			return words;
		alex_next(l, &t);
		if (local)
			t.sp = 0;
		if ((t.sp || !b->len) && t.type != T_SPECIAL)
			words++;
		if (b->len && t.sp)
			buf_addc(b, ' ');
		addword(b, &t);
		prevdot = isspecial(&t, '.');
	}
}

/* a domain: words and literals joined by dots; it ends before a word
 * that follows another without a dot between */
static void
domain(struct alex *l, struct buf *b)
{
	struct tok t;
	int prevdot = 1;

	for (;;) {
		alex_peek(l, &t);
		if (t.type != T_WORD && t.type != T_DLIT &&
		    !isspecial(&t, '.'))
			return;
		if (b->len && newword(&t, prevdot))
			return;
		alex_next(l, &t);
		buf_add(b, t.s, t.n);
		prevdot = isspecial(&t, '.');
	}
}

static void
addr_write(struct buf *b, const struct buf *name, const struct buf *adl,
    const struct buf *mbox, const struct buf *host)
{
	buf_addc(b, '(');
	if (name && name->len)
		addhuman(b, name->p, name->len);
	else
		buf_adds(b, "NIL");
	buf_addc(b, ' ');
	addnstr(b, adl && adl->len ? adl : NULL);
	buf_addc(b, ' ');
	if (mbox && mbox->len)
		buf_addstr(b, mbox->p, mbox->len);
	else
		buf_addstr(b, "MISSING_MAILBOX", 15);
	buf_addc(b, ' ');
	if (host && host->len)
		buf_addstr(b, host->p, host->len);
	else
		buf_addstr(b, "MISSING_DOMAIN", 14);
	buf_addc(b, ')');
}

/* "<" [route ":"] addr-spec ">", after the "<" */
static int group(struct alex *, struct buf *);

static void
angle_addr(struct alex *l, struct buf *b, const struct buf *name)
{
	struct buf adl = { 0 }, mbox = { 0 }, host = { 0 };
	struct tok t;
	int bad = 0;

	alex_peek(l, &t);
	while (t.type == T_SPECIAL && (t.c == '@' || t.c == ',')) {
		alex_next(l, &t);
		if (t.c == '@') {
			if (adl.len)
				buf_addc(&adl, ',');
			buf_addc(&adl, '@');
			domain(l, &adl);
		}
		alex_peek(l, &t);
	}
	if (adl.len && t.type == T_SPECIAL && t.c == ':')
		alex_next(l, &t);
	phrase(l, &mbox, 1);
	alex_peek(l, &t);
	if (t.type == T_SPECIAL && t.c == '@') {
		alex_next(l, &t);
		domain(l, &host);
		bad = !host.len;
	}
	/* whatever else up to ">" makes it no addr-spec: the host says so,
	 * as Dovecot and UW imapd do, rather than a domain made up */
	for (;;) {
		alex_next(l, &t);
		if (t.type == T_END || (t.type == T_SPECIAL && t.c == '>'))
			break;
		bad = 1;
	}
	if (bad) {
		buf_reset(&host);
		buf_adds(&host, "SYNTAX_ERROR");
	}
	addr_write(b, name, &adl, &mbox, &host);
	buf_free(&adl);
	buf_free(&mbox);
	buf_free(&host);
}

/* after an address: a "," is eaten; 0 when what follows is neither a
 * separator nor the end (in a group, ";" too), and the list stops */
static int
separator(struct alex *l, int ingroup)
{
	struct tok t;

	alex_peek(l, &t);
	if (isspecial(&t, ','))
		alex_next(l, &t);
	return t.type == T_END || isspecial(&t, ',') ||
	    (ingroup && isspecial(&t, ';'));
}

/* one mailbox, or a group when groups are allowed; 0 when the list
 * stops here: nothing readable, or no separator after it */
static int
mailbox(struct alex *l, struct buf *b, int ingroup)
{
	struct buf words = { 0 }, host = { 0 }, local = { 0 };
	struct tok t;
	const char *start, *after;
	int n, ok = 1;

	buf_reset(&l->comment);
	start = l->s;
	n = phrase(l, &words, 0);
	alex_peek(l, &t);
	if (isspecial(&t, '@')) {
		/* the words are a local part if, read as one, they are all
		 * that comes before the "@" */
		after = l->s;
		l->s = start;
		phrase(l, &local, 1);
		alex_peek(l, &t);
		if (isspecial(&t, '@')) {
			buf_reset(&words);
			buf_add(&words, local.p, local.len);
			n = 1;
		} else {
			l->s = after;
			alex_peek(l, &t);
		}
	}
	if (isspecial(&t, '<')) {
		alex_next(l, &t);
		angle_addr(l, b, &words);
	} else if (isspecial(&t, '@') && n <= 1) {
		alex_next(l, &t);
		domain(l, &host);
		alex_peek(l, &t);	/* a comment after it is the name */
		addr_write(b, &l->comment, NULL, &words, &host);
	} else if (isspecial(&t, ':') && !ingroup && n) {
		alex_next(l, &t);
		buf_adds(b, "(NIL NIL ");
		addhuman(b, words.p, words.len);
		buf_adds(b, " NIL)");
		ok = group(l, b);
		buf_adds(b, "(NIL NIL NIL NIL)");
	} else if (n == 1) {
		addr_write(b, NULL, NULL, &words, NULL);
	} else if (n > 1) {
		addr_write(b, &words, NULL, NULL, NULL);
	} else {
		ok = 0;
	}
	buf_free(&words);
	buf_free(&host);
	buf_free(&local);
	return ok && separator(l, ingroup);
}

/* the mailboxes of a group after its ":", up to the ";"; 0 when the list
 * stops inside it */
static int
group(struct alex *l, struct buf *b)
{
	struct tok t;

	for (;;) {
		alex_peek(l, &t);
		if (t.type == T_END)
			return 0;
		if (isspecial(&t, ';')) {
			alex_next(l, &t);
			return 1;
		}
		if (isspecial(&t, ',')) {
			alex_next(l, &t);
			continue;
		}
		if (!mailbox(l, b, 1))
			return 0;
	}
}

/* an address list as a parenthesised list, or NIL when empty.  Reading
 * stops at the first thing that is not an address, keeping those before
 * it; an empty element between commas is an address with nothing known. */
static void
addrlist(struct buf *b, const struct buf *v)
{
	struct alex l = { 0 };
	struct tok t;
	size_t start = b->len;

	if (!v->len) {
		buf_adds(b, "NIL");
		return;
	}
	buf_addc(b, '(');
	l.s = v->p;
	l.e = v->p + v->len;
	for (;;) {
		alex_peek(&l, &t);
		if (t.type == T_END)
			break;
		if (isspecial(&t, ',')) {
			alex_next(&l, &t);
			addr_write(b, NULL, NULL, NULL, NULL);
			continue;
		}
		if (!mailbox(&l, b, 0))
			break;
	}
	buf_free(&l.comment);
	if (b->len == start + 1) {
		b->len = start;
		buf_adds(b, "NIL");
		return;
	}
	buf_addc(b, ')');
}

/* an IMAP string or NIL as addrlist() writes them, appended to out */
static int
imapstr_read(const char **s, const char *e, struct buf *out)
{
	const char *q = *s;
	unsigned long len;
	char *end;

	if (e - q >= 3 && !memcmp(q, "NIL", 3)) {
		*s = q + 3;
		return 1;
	}
	if (q < e && *q == '"') {
		for (q++; q < e && *q != '"'; q++) {
			if (*q == '\\' && q + 1 < e)
				q++;
			buf_addc(out, *q);
		}
		*s = q + (q < e);
		return 1;
	}
	if (q >= e || *q != '{')
		return 0;
	len = strtoul(q + 1, &end, 10);
	if (end > e || e - end < 3 || memcmp(end, "}\r\n", 3) ||
	    (unsigned long)(e - (end + 3)) < len)
		return 0;
	buf_add(out, end + 3, len);
	*s = end + 3 + len;
	return 1;
}

/* the next (name adl mailbox host) of a list addrlist() wrote, at *q
 * (after the list's "(" or a previous address); 1 when one was read */
static int
addr_read(const char **q, const char *e, struct buf *dst[4])
{
	int i;

	if (*q < e && **q == ' ')
		(*q)++;
	if (*q >= e || **q != '(')
		return 0;
	(*q)++;
	for (i = 0; i < 4; i++) {
		if (i && *q < e && **q == ' ')
			(*q)++;
		if (!imapstr_read(q, e, dst[i]))
			return 0;
	}
	if (*q >= e || **q != ')')
		return 0;
	(*q)++;
	return 1;
}

/* ---- ENVELOPE --------------------------------------------------------- */

enum { E_DATE, E_SUBJECT, E_FROM, E_SENDER, E_REPLYTO, E_TO, E_CC, E_BCC,
	E_INREPLYTO, E_MSGID, E_N };

static const char *const envfields[E_N] = {
	"Date", "Subject", "From", "Sender", "Reply-To", "To", "Cc", "Bcc",
	"In-Reply-To", "Message-ID"
};

static int
isaddrfield(int i)
{
	return i >= E_FROM && i <= E_BCC;
}

static void
envelope(struct buf *b, const char *p, size_t hs, size_t he)
{
	struct buf v[E_N], lists[E_N];
	int have[E_N] = { 0 }, i;
	struct field f;
	size_t pos = hs;

	memset(v, 0, sizeof(v));
	memset(lists, 0, sizeof(lists));
	while (field_next(p, he, &pos, &f)) {
		for (i = 0; i < E_N; i++)
			if (field_is(&f, envfields[i]))
				break;
		if (i == E_N)
			continue;
		if (isaddrfield(i) && have[i])
			buf_addc(&v[i], ',');
		else
			buf_reset(&v[i]);
		unfold(&v[i], f.val, f.vlen);
		have[i] = 1;
	}
	for (i = E_FROM; i <= E_BCC; i++)
		addrlist(&lists[i], &v[i]);
	for (i = E_SENDER; i <= E_REPLYTO; i++)
		if (!strcmp(lists[i].p, "NIL")) {
			buf_reset(&lists[i]);
			buf_add(&lists[i], lists[E_FROM].p, lists[E_FROM].len);
		}
	buf_addc(b, '(');
	addnstr(b, have[E_DATE] ? &v[E_DATE] : NULL);
	buf_addc(b, ' ');
	if (have[E_SUBJECT])
		addhuman(b, v[E_SUBJECT].p, v[E_SUBJECT].len);
	else
		buf_adds(b, "NIL");
	for (i = E_FROM; i <= E_BCC; i++) {
		buf_addc(b, ' ');
		buf_add(b, lists[i].p, lists[i].len);
	}
	buf_addc(b, ' ');
	addnstr(b, have[E_INREPLYTO] ? &v[E_INREPLYTO] : NULL);
	buf_addc(b, ' ');
	addnstr(b, have[E_MSGID] ? &v[E_MSGID] : NULL);
	buf_addc(b, ')');
	for (i = 0; i < E_N; i++) {
		buf_free(&v[i]);
		buf_free(&lists[i]);
	}
}

void
mime_envelope(struct buf *b, const char *p, size_t n)
{
	envelope(b, p, 0, header_end(p, n, 0));
}

/* ---- BODY and BODYSTRUCTURE ------------------------------------------ */

static void
params_write(struct buf *b, const struct params *pp, int charset)
{
	size_t len;
	int i;

	if (!pp->n && !charset) {
		buf_adds(b, "NIL");
		return;
	}
	buf_addc(b, '(');
	for (i = 0; i < pp->n; i++) {
		if (i)
			buf_addc(b, ' ');
		buf_addstr(b, pname(pp, i), pp->v[i].nlen);
		buf_addc(b, ' ');
		buf_addstr(b, pp->s.p + pp->v[i].val, pp->v[i].vlen);
	}
	if (charset && !param_get(pp, "charset", &len)) {
		if (pp->n)
			buf_addc(b, ' ');
		buf_adds(b, "\"charset\" \"us-ascii\"");
	}
	buf_addc(b, ')');
}

/* an nstring header value of the header [hs, he) */
static void
header_nstr(struct buf *b, const char *p, size_t hs, size_t he,
    const char *name)
{
	struct buf v = { 0 };

	if (header_get(p, hs, he, name, &v))
		addnstr(b, &v);
	else
		buf_adds(b, "NIL");
	buf_free(&v);
}

/* disposition, language and location: the extension data every body has */
static void
ext_write(struct buf *b, const char *p, size_t hs, size_t he)
{
	struct ctype d;
	struct buf v = { 0 }, t = { 0 };
	struct lex l;
	int n = 0;

	ctype_parse(&d, p, hs, he, "Content-Disposition", 1);
	buf_addc(b, ' ');
	if (d.present) {
		/* one that cannot be read has an empty type */
		buf_addc(b, '(');
		addbuf(b, &d.type);
		buf_addc(b, ' ');
		params_write(b, &d.par, 0);
		buf_addc(b, ')');
	} else {
		buf_adds(b, "NIL");
	}
	ctype_free(&d);
	buf_addc(b, ' ');
	if (header_get(p, hs, he, "Content-Language", &v)) {
		l.s = v.p;
		l.e = v.p + v.len;
		for (;;) {
			skipcfws(&l);
			if (l.s < l.e && *l.s == ',') {
				l.s++;
				continue;
			}
			buf_reset(&t);
			if (!mtoken(&l, &t))
				break;
			buf_adds(b, n++ ? " " : "(");
			buf_addstr(b, t.p, t.len);
		}
	}
	buf_adds(b, n ? ")" : "NIL");
	buf_addc(b, ' ');
	header_nstr(b, p, hs, he, "Content-Location");
	buf_free(&v);
	buf_free(&t);
}

static void body_write(struct buf *, const struct tree *, int, int);

static void
multipart_write(struct buf *b, const struct tree *t, int i, int ext)
{
	const struct part *pt = &t->v[i];
	struct ctype ct;
	int c;

	buf_addc(b, '(');
	if (!pt->nchild)
		buf_adds(b, ext ? "(\"text\" \"plain\" (\"charset\" \"us-ascii\")"
		    " NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)" :
		    "(\"text\" \"plain\" (\"charset\" \"us-ascii\")"
		    " NIL NIL \"7bit\" 0 0)");
	for (c = pt->child; c >= 0; c = t->v[c].next)
		body_write(b, t, c, ext);
	ctype_parse(&ct, t->p, pt->hdr, pt->body, "Content-Type", 0);
	buf_addc(b, ' ');
	addbuf(b, &ct.subtype);
	if (ext) {
		buf_addc(b, ' ');
		params_write(b, &ct.par, 0);
		ext_write(b, t->p, pt->hdr, pt->body);
	}
	ctype_free(&ct);
	buf_addc(b, ')');
}

static void
body_write(struct buf *b, const struct tree *t, int i, int ext)
{
	const struct part *pt = &t->v[i];
	const char *p = t->p;
	struct ctype ct;
	struct buf cte = { 0 };
	int text;

	if (pt->kind == MULTI) {
		multipart_write(b, t, i, ext);
		return;
	}
	ctype_parse(&ct, p, pt->hdr, pt->body, "Content-Type", 0);
	buf_addc(b, '(');
	if (pt->trunc) {
		buf_adds(b, "\"application\" \"octet-stream\" ");
		params_write(b, &ct.par, 0);
		text = 0;
	} else if (ct.invalid) {
		buf_adds(b, "\"\" \"\" NIL");
		text = 0;
	} else if (pt->kind == MESSAGE && ct.type.len) {
		/* written the way the parser knows it */
		buf_adds(b, "\"message\" \"rfc822\" ");
		params_write(b, &ct.par, 0);
		text = 0;
	} else if (ct.type.len) {
		addbuf(b, &ct.type);
		buf_addc(b, ' ');
		addbuf(b, &ct.subtype);
		buf_addc(b, ' ');
		text = eqstr(ct.type.p, ct.type.len, "text");
		params_write(b, &ct.par, text);
	} else if (pt->digest) {
		buf_adds(b, "\"message\" \"rfc822\" NIL");
		text = 0;
	} else {
		buf_adds(b, "\"text\" \"plain\" (\"charset\" \"us-ascii\")");
		text = 1;
	}
	ctype_free(&ct);
	buf_addc(b, ' ');
	header_nstr(b, p, pt->hdr, pt->body, "Content-ID");
	buf_addc(b, ' ');
	header_nstr(b, p, pt->hdr, pt->body, "Content-Description");
	cte_get(p, pt->hdr, pt->body, &cte);
	buf_addc(b, ' ');
	addbuf(b, &cte);
	buf_free(&cte);
	buf_printf(b, " %llu", (unsigned long long)mime_crlf_size(p +
	    pt->body, pt->end - pt->body));
	if (text)
		buf_printf(b, " %llu", (unsigned long long)countlines(p +
		    pt->body, pt->end - pt->body));
	if (pt->kind == MESSAGE && pt->child >= 0) {
		buf_addc(b, ' ');
		envelope(b, p, t->v[pt->child].hdr, t->v[pt->child].body);
		buf_addc(b, ' ');
		body_write(b, t, pt->child, ext);
		buf_printf(b, " %llu", (unsigned long long)countlines(p +
		    pt->body, pt->end - pt->body));
	}
	if (ext) {
		buf_addc(b, ' ');
		header_nstr(b, p, pt->hdr, pt->body, "Content-MD5");
		ext_write(b, p, pt->hdr, pt->body);
	}
	buf_addc(b, ')');
}

void
mime_bodystructure(struct buf *b, const char *p, size_t n, int extended)
{
	struct tree *t = tree_parse(p, n);

	body_write(b, t, 0, extended);
	tree_free(t);
}

/* ---- transfer decoding ------------------------------------------------ */

static void
dec_flush(struct dec *d)
{
	if (d->len)
		d->out(d->arg, d->buf, d->len);
	d->len = 0;
}

static void
dec_putc(struct dec *d, int c)
{
	d->buf[d->len++] = c;
	if (d->len == sizeof(d->buf))
		dec_flush(d);
}

static int
dec_stopped(const struct dec *d)
{
	return d->stop && *d->stop;
}

/* base64 (util.c) in steps of CHUNK, handing back pages as it goes */
static void
b64_decode(const char *s, size_t n, struct dec *d)
{
	struct base64 b = { 0 };
	unsigned char out[CHUNK / 4 * 3 + 3];
	size_t i, k, o;

	dec_flush(d);
	for (i = 0; i < n; i += k) {
		if (dec_stopped(d))
			return;
		if (i && (i % DROP_STEP) == 0)
			drop(s + i - DROP_STEP, s + i);
		k = MIN(n - i, CHUNK);
		if ((o = base64_step(&b, s + i, k, out)))
			d->out(d->arg, (char *)out, o);
	}
	if ((o = base64_end(&b, out)))
		d->out(d->arg, (char *)out, o);
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* quoted-printable (RFC 2045 6.7): white space at line ends is dropped,
 * "=" at a line end joins lines, hard line ends become CRLF; an "=" not
 * followed by two hex digits is taken literally */
static void
qp_decode(const char *s, size_t n, struct dec *d)
{
	size_t i = 0, e, next, k, mark = 0;
	int soft, h1, h2;

	while (i < n && !dec_stopped(d)) {
		if (i - mark >= DROP_STEP) {
			drop(s + mark, s + i);
			mark = i;
		}
		next = nextline(s, n, i);
		e = next;
		if (e > i && s[e - 1] == '\n')
			e--;
		if (e > i && s[e - 1] == '\r')
			e--;
		while (e > i && iswsp((unsigned char)s[e - 1]))
			e--;
		soft = e > i && s[e - 1] == '=';
		if (soft)
			e--;
		for (k = i; k < e; k++) {
			if (s[k] == '=' && k + 2 < e &&
			    (h1 = hexval((unsigned char)s[k + 1])) >= 0 &&
			    (h2 = hexval((unsigned char)s[k + 2])) >= 0) {
				dec_putc(d, h1 << 4 | h2);
				k += 2;
				continue;
			}
			dec_putc(d, s[k]);
		}
		if (!soft && next > i && s[next - 1] == '\n') {
			dec_putc(d, '\r');
			dec_putc(d, '\n');
		}
		i = next;
	}
	dec_flush(d);
}

static void
count_emit(void *arg, const char *p, size_t n)
{
	*(uint64_t *)arg += n;
}

/* the decoded length of s */
static uint64_t
decoded_size(int kind, const char *s, size_t n)
{
	struct dec *d = xmalloc(sizeof(*d));
	uint64_t size = 0;

	d->out = count_emit;
	d->arg = &size;
	d->stop = NULL;
	d->len = 0;
	if (kind == SEG_B64)
		b64_decode(s, n, d);
	else
		qp_decode(s, n, d);
	free(d);
	return size;
}

/* ---- sections --------------------------------------------------------- */

static int
fldchar(int c)
{
	return c > ' ' && c < 0x7f && !strchr("(){%*\"\\]", c);
}

static int
section_fields(struct section *s, const char *p)
{
	struct buf name = { 0 };
	int ok = 0;

	if (*p++ != ' ' || *p++ != '(')
		return 0;
	for (;;) {
		buf_reset(&name);
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1])
					p++;
				if (*p == '\r' || *p == '\n')
					goto out;
				buf_addc(&name, *p);
			}
			if (*p++ != '"')
				goto out;
		} else {
			while (fldchar((unsigned char)*p))
				buf_addc(&name, *p++);
			if (!name.len)
				goto out;
		}
		s->fields = xreallocarray(s->fields, s->nfields + 1,
		    sizeof(*s->fields));
		s->fields[s->nfields++] = xstrdup(name.p ? name.p : "");
		if (*p == ')')
			break;
		if (*p++ != ' ')
			goto out;
	}
	ok = p[1] == '\0';
out:
	buf_free(&name);
	return ok;
}

struct section *
section_parse(const char *spec, int binary)
{
	struct section *s = xcalloc(1, sizeof(*s));
	const char *p = spec;
	unsigned long v;

	while (*p >= '1' && *p <= '9') {
		for (v = 0; isdigit_((unsigned char)*p); p++) {
			v = v * 10 + (*p - '0');
			if (v > 0x7fffffffUL)
				goto bad;
		}
		if (s->npart == SECTION_DEPTH)
			goto bad;
		s->part[s->npart++] = v;
		if (*p != '.')
			break;
		p++;
		if (!isdigit_((unsigned char)*p))
			break;
	}
	if (!*p && (s->npart == 0 || p[-1] != '.'))
		return s;
	if (binary)
		goto bad;
	if (!ascii_ncasecmp(p, "HEADER.FIELDS.NOT", 17)) {
		s->text = S_FIELDS_NOT;
		if (!section_fields(s, p + 17))
			goto bad;
	} else if (!ascii_ncasecmp(p, "HEADER.FIELDS", 13)) {
		s->text = S_FIELDS;
		if (!section_fields(s, p + 13))
			goto bad;
	} else if (!ascii_casecmp(p, "HEADER")) {
		s->text = S_HEADER;
	} else if (!ascii_casecmp(p, "TEXT")) {
		s->text = S_TEXT;
	} else if (!ascii_casecmp(p, "MIME") && s->npart) {
		s->text = S_MIME;
	} else {
		goto bad;
	}
	return s;
bad:
	section_free(s);
	return NULL;
}

void
section_free(struct section *s)
{
	int i;

	if (!s)
		return;
	for (i = 0; i < s->nfields; i++)
		free(s->fields[i]);
	free(s->fields);
	free(s);
}

void
section_name(struct buf *b, const struct section *s)
{
	static const char *const names[] = {
		"", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT",
		"MIME"
	};
	const char *f;
	int i;

	for (i = 0; i < s->npart; i++)
		buf_printf(b, "%s%u", i ? "." : "", s->part[i]);
	if (s->text != S_ALL)
		buf_printf(b, "%s%s", s->npart ? "." : "", names[s->text]);
	if (s->text != S_FIELDS && s->text != S_FIELDS_NOT)
		return;
	buf_adds(b, " (");
	for (i = 0; i < s->nfields; i++) {
		if (i)
			buf_addc(b, ' ');
		for (f = s->fields[i]; *f && fldchar((unsigned char)*f); f++)
			;
		if (*f || !*s->fields[i]) {
			buf_addstr(b, s->fields[i], strlen(s->fields[i]));
			continue;
		}
		for (f = s->fields[i]; *f; f++)
			buf_addc(b, upper((unsigned char)*f));
	}
	buf_addc(b, ')');
}

static void
seg_add(struct sectiondata *sd, int kind, size_t off, size_t len)
{
	struct seg *g;

	/* ranges start at line starts, so sizes of adjacent ranges add up */
	if (kind == SEG_RAW && sd->nv && sd->v[sd->nv - 1].kind == SEG_RAW &&
	    sd->v[sd->nv - 1].off + sd->v[sd->nv - 1].len == off) {
		g = &sd->v[sd->nv - 1];
		g->len += len;
		g->size += mime_crlf_size(sd->p + off, len);
		return;
	}
	if (sd->nv == sd->cap) {
		sd->cap = sd->cap ? sd->cap * 2 : 4;
		sd->v = xreallocarray(sd->v, sd->cap, sizeof(*sd->v));
	}
	g = &sd->v[sd->nv++];
	g->kind = kind;
	g->off = off;
	g->len = len;
	switch (kind) {
	case SEG_RAW:
		g->size = mime_crlf_size(sd->p + off, len);
		break;
	case SEG_LIT:
		g->size = len;
		break;
	default:
		g->size = decoded_size(kind, sd->p + off, len);
	}
}

static int
field_listed(const struct section *s, const struct field *f)
{
	int i;

	for (i = 0; i < s->nfields; i++)
		if (f->val && eqstr(f->name, f->nlen, s->fields[i]))
			return 1;
	return 0;
}

/* HEADER.FIELDS and HEADER.FIELDS.NOT of the header [hs, he) */
static void
fields_select(struct sectiondata *sd, const struct section *s, size_t hs,
    size_t he)
{
	struct field f;
	size_t i = hs;
	int want = s->text == S_FIELDS;

	while (field_next(sd->p, he, &i, &f)) {
		if (field_listed(s, &f) != want)
			continue;
		seg_add(sd, SEG_RAW, f.start, f.end - f.start);
		if (f.end == f.start || sd->p[f.end - 1] != '\n')
			seg_add(sd, SEG_LIT, 0, 2);
	}
	seg_add(sd, SEG_LIT, 0, 2);
}

/* The part a section names; -1 when there is none.  Each number picks a
 * part of the multipart it is in: the message's body, a multipart part
 * itself, or the body of an encapsulated message.  The body of a message
 * that is no multipart is its part 1 (RFC 3501 6.4.5); a leaf part has
 * no parts of its own. */
static int
resolve(const struct tree *t, const struct section *s, int *part)
{
	int m = 0, pt = -1, i, c;
	unsigned k;

	for (i = 0; i < s->npart; i++) {
		if (pt >= 0) {
			if (t->v[pt].kind == MULTI)
				m = pt;
			else if (t->v[pt].kind == MESSAGE &&
			    t->v[pt].child >= 0)
				m = t->v[pt].child;
			else
				return -1;
			pt = -1;
		}
		if (t->v[m].kind == MULTI) {
			for (c = t->v[m].child, k = 1; c >= 0 &&
			    k < s->part[i]; k++)
				c = t->v[c].next;
			if (c < 0)
				return -1;
			pt = c;
		} else if (s->part[i] == 1) {
			pt = m;
		} else {
			return -1;
		}
	}
	*part = pt;
	return 0;
}

/* the ranges of a HEADER, TEXT or HEADER.FIELDS of message m */
static void
message_text(struct sectiondata *sd, const struct section *s, size_t hdr,
    size_t body, size_t end)
{
	switch (s->text) {
	case S_HEADER:
		seg_add(sd, SEG_RAW, hdr, body - hdr);
		break;
	case S_TEXT:
		seg_add(sd, SEG_RAW, body, end - body);
		break;
	default:
		fields_select(sd, s, hdr, body);
	}
}

struct sectiondata *
section_open(const char *p, size_t n, const struct section *s, int binary,
    uint64_t *size)
{
	struct sectiondata *sd = xcalloc(1, sizeof(*sd));
	struct tree *t;
	const struct part *pt;
	struct buf cte = { 0 };
	size_t body;
	int part, kind;
	size_t i;

	sd->p = p;
	sd->binary = binary;
	if (!s->npart) {
		/* the whole message needs no part tree */
		if (s->text == S_ALL)
			seg_add(sd, SEG_RAW, 0, n);
		else {
			body = header_end(p, n, 0);
			message_text(sd, s, 0, body, n);
		}
		goto done;
	}
	t = tree_parse(p, n);
	if (resolve(t, s, &part) < 0)
		goto free;
	pt = &t->v[part];
	switch (s->text) {
	case S_ALL:
		kind = SEG_RAW;
		if (binary) {
			cte_get(p, pt->hdr, pt->body, &cte);
			kind = cte_kind(&cte);
			buf_free(&cte);
		}
		if (kind < 0) {
			tree_free(t);
			section_close(sd);
			return NULL;
		}
		seg_add(sd, kind, pt->body, pt->end - pt->body);
		break;
	case S_MIME:
		seg_add(sd, SEG_RAW, pt->hdr, pt->body - pt->hdr);
		break;
	default:
		if (pt->kind != MESSAGE || pt->child < 0)
			break;
		pt = &t->v[pt->child];
		message_text(sd, s, pt->hdr, pt->body, pt->end);
	}
free:
	tree_free(t);
done:
	for (*size = 0, i = 0; i < sd->nv; i++)
		*size += sd->v[i].size;
	return sd;
}

void
section_write(struct sectiondata *sd, uint64_t from, uint64_t count,
    mime_emit emit, void *arg)
{
	struct clip c;
	struct dec *d;
	const struct seg *g;
	size_t i;

	clip_init(&c, from, count, emit, arg);
	for (i = 0; i < sd->nv && !c.done; i++) {
		g = &sd->v[i];
		if (c.pos + g->size <= c.from) {
			c.pos += g->size;
			continue;
		}
		switch (g->kind) {
		case SEG_RAW:
			crlf_put(sd->p + g->off, g->len, &c, !sd->binary);
			break;
		case SEG_LIT:
			clip_put(&c, lit_crlf, g->len);
			break;
		default:
			d = xmalloc(sizeof(*d));
			d->out = clip_emit;
			d->arg = &c;
			d->stop = &c.done;
			d->len = 0;
			if (g->kind == SEG_B64)
				b64_decode(sd->p + g->off, g->len, d);
			else
				qp_decode(sd->p + g->off, g->len, d);
			free(d);
		}
	}
}

void
section_close(struct sectiondata *sd)
{
	if (!sd)
		return;
	free(sd->v);
	free(sd);
}

/* ---- SEARCH ----------------------------------------------------------- */

/* the length of s less an incomplete UTF-8 sequence at its end, which
 * must wait for the rest */
static size_t
complete(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t j, need;

	for (j = n; j > 0 && n - j < 4; j--) {
		if ((u[j - 1] & 0xc0) == 0x80)
			continue;
		need = u[j - 1] >= 0xf0 ? 4 : u[j - 1] >= 0xe0 ? 3 :
		    u[j - 1] >= 0xc0 ? 2 : 1;
		return j - 1 + need > n ? j - 1 : n;
	}
	return n;
}

static void
match_init(struct match *m, const char *needle, size_t nlen)
{
	memset(m, 0, sizeof(*m));
	m->needle = needle;
	m->nlen = nlen;
	m->wcap = nlen + CHUNK + 8;
	m->win = xmalloc(m->wcap);
	m->found = nlen == 0;
}

/* text (UTF-8) into the window: case-mapped (i;unicode-casemap, as
 * I18NLEVEL=1 asks), looked at, its tail kept for the next piece */
static void
match_feed(struct match *m, const char *p, size_t n)
{
	struct buf in = { 0 }, map = { 0 };
	size_t take, cut, keep;

	if (m->rec) {
		buf_add(m->rec, p, n);
		return;
	}
	while (n && !m->found) {
		take = MIN(n, CHUNK);
		buf_add(&in, m->pend, m->npend);
		buf_add(&in, p, take);
		p += take;
		n -= take;
		cut = complete(in.p, in.len);
		m->npend = in.len - cut;
		memcpy(m->pend, in.p + cut, m->npend);
		buf_add(&map, m->win, m->wlen);
		casemap(&map, in.p, cut);
		if (map.len && memmem(map.p, map.len, m->needle, m->nlen))
			m->found = 1;
		keep = MIN(map.len, m->nlen - 1);
		memcpy(m->win, map.p + map.len - keep, keep);
		m->wlen = keep;
		buf_reset(&in);
		buf_reset(&map);
	}
	buf_free(&in);
	buf_free(&map);
}

/* the text so far ends a piece: no match spans it */
static void
match_break(struct match *m)
{
	m->wlen = m->npend = 0;
	if (m->rec && m->rec->len && m->rec->p[m->rec->len - 1] != '\0')
		buf_addc(m->rec, '\0');
}

static void
match_emit(void *arg, const char *p, size_t n)
{
	match_feed(arg, p, n);
}

/* charsets that are UTF-8, or that are read as they are */
static int
passthrough(const char *cs)
{
	return !*cs || !ascii_casecmp(cs, "utf-8") ||
	    !ascii_casecmp(cs, "utf8") || !ascii_casecmp(cs, "us-ascii") ||
	    !ascii_casecmp(cs, "ascii");
}

static iconv_t
conv_open(const char *cs)
{
	if (passthrough(cs))
		return (iconv_t)-1;
	return iconv_open("UTF-8", cs);
}

/* n octets through iconv to out; an invalid octet becomes U+FFFD.  Returns
 * how many octets at the end are an incomplete sequence, not converted */
static size_t
conv_run(iconv_t cd, const char *s, size_t n, mime_emit out, void *arg)
{
	char obuf[CHUNK], *ip = (char *)s, *op;
	size_t il = n, ol, r;

	while (il) {
		op = obuf;
		ol = sizeof(obuf);
		r = iconv(cd, &ip, &il, &op, &ol);
		if (op > obuf)
			out(arg, obuf, op - obuf);
		if (r != (size_t)-1 || errno == E2BIG)
			continue;
		if (errno == EINVAL && il < 16)
			return il;
		out(arg, "\xef\xbf\xbd", 3);
		ip++;
		il--;
		iconv(cd, NULL, NULL, NULL, NULL);
	}
	return 0;
}

static void
conv_emit(void *arg, const char *p, size_t n)
{
	struct conv *cv = arg;
	char in[CHUNK + 16];
	size_t take, left;

	if (cv->cd == (iconv_t)-1) {
		match_feed(cv->m, p, n);
		return;
	}
	while (n && !cv->m->found) {
		take = MIN(n, CHUNK);
		memcpy(in, cv->pend, cv->npend);
		memcpy(in + cv->npend, p, take);
		left = conv_run(cv->cd, in, cv->npend + take, match_emit, cv->m);
		memcpy(cv->pend, in + cv->npend + take - left, left);
		cv->npend = left;
		p += take;
		n -= take;
	}
}

/* the encoded text of an encoded-word, B or Q, decoded into raw */
static void
ew_text(int enc, const char *t, const char *e, struct buf *raw)
{
	struct base64 b = { 0 };
	unsigned char *out;
	size_t o;
	int h1, h2;

	if (enc == 'Q') {
		for (; t < e; t++) {
			if (*t == '_')
				buf_addc(raw, ' ');
			else if (*t == '=' && t + 2 < e &&
			    (h1 = hexval((unsigned char)t[1])) >= 0 &&
			    (h2 = hexval((unsigned char)t[2])) >= 0) {
				buf_addc(raw, h1 << 4 | h2);
				t += 2;
			} else
				buf_addc(raw, *t);
		}
		return;
	}
	buf_grow(raw, (e - t) / 4 * 3 + 3);
	out = (unsigned char *)raw->p + raw->len;
	o = base64_step(&b, t, e - t, out);
	o += base64_end(&b, out + o);
	raw->len += o;
	raw->p[raw->len] = '\0';
}

/* the length of the RFC 2047 encoded-word at s, or 0; its charset goes
 * to cs and, unless raw is NULL, its decoded octets to raw */
static size_t
encoded_word(const char *s, size_t n, struct buf *raw, char *cs, size_t cssz)
{
	const char *q1, *q2, *q3, *e = s + n, *t;
	size_t len;
	int enc;

	if (n < 8 || s[0] != '=' || s[1] != '?')
		return 0;
	if (!(q1 = memchr(s + 2, '?', n - 2)) || q1 + 3 >= e || q1[2] != '?')
		return 0;
	enc = upper((unsigned char)q1[1]);
	if (enc != 'B' && enc != 'Q')
		return 0;
	q2 = q1 + 2;
	for (q3 = q2 + 1; q3 + 1 < e && !(q3[0] == '?' && q3[1] == '='); q3++)
		if (*q3 == ' ' || *q3 == '\t' || *q3 == '\r' || *q3 == '\n')
			return 0;
	if (q3 + 1 >= e)
		return 0;
	len = q1 - (s + 2);
	if ((t = memchr(s + 2, '*', len)))	/* RFC 2231 language */
		len = t - (s + 2);
	if (len == 0 || len >= cssz)
		return 0;
	memcpy(cs, s + 2, len);
	cs[len] = '\0';
	if (raw)
		ew_text(enc, q2 + 1, q3, raw);
	return q3 + 2 - s;
}

static void
buf_emit(void *arg, const char *p, size_t n)
{
	buf_add(arg, p, n);
}

int
mime_to_utf8(struct buf *b, const char *charset, const char *s, size_t n)
{
	iconv_t cd;
	size_t left;

	if (passthrough(charset)) {
		buf_add(b, s, n);
		return 0;
	}
	if ((cd = iconv_open("UTF-8", charset)) == (iconv_t)-1)
		return -1;
	left = conv_run(cd, s, n, buf_emit, b);
	if (left)
		buf_add(b, "\xef\xbf\xbd", 3);
	iconv_close(cd);
	return 0;
}

/* decoded octets of one charset to UTF-8; raw octets when the charset
 * is unknown */
static void
flush_words(struct buf *out, const char *cs, struct buf *raw)
{
	if (raw->len && mime_to_utf8(out, cs, raw->p, raw->len) < 0)
		buf_add(out, raw->p, raw->len);
	buf_reset(raw);
}

/* an unfolded header value with its encoded words decoded to UTF-8;
 * adjacent words of one charset are converted together (a character may
 * be split across them), and white space between encoded words is
 * dropped */
static void
decode_header(struct buf *out, const char *s, size_t n)
{
	struct buf raw = { 0 }, word = { 0 };
	char cs[64], pcs[64] = "";
	size_t i = 0, w, j;

	while (i < n) {
		buf_reset(&word);
		if (s[i] != '=' || !(w = encoded_word(s + i, n - i, &word, cs,
		    sizeof(cs)))) {
			flush_words(out, pcs, &raw);
			buf_addc(out, s[i++]);
			continue;
		}
		if (strcmp(cs, pcs))
			flush_words(out, pcs, &raw);
		memcpy(pcs, cs, sizeof(cs));
		buf_add(&raw, word.p, word.len);
		i += w;
		for (j = i; j < n && (iswsp((unsigned char)s[j]) ||
		    s[j] == '\r' || s[j] == '\n'); j++)
			;
		if (j > i && j < n && encoded_word(s + j, n - j, NULL, cs,
		    sizeof(cs)))
			i = j;
	}
	flush_words(out, pcs, &raw);
	buf_free(&raw);
	buf_free(&word);
}

/* a header field, name and decoded value, into a match */
static void
match_field(struct match *m, const char *p, const struct field *f,
    int withname)
{
	struct buf v = { 0 }, d = { 0 };

	unfold(&v, f->val, f->vlen);
	if (withname) {
		buf_add(&d, f->name, f->nlen);
		buf_adds(&d, ": ");
	}
	decode_header(&d, v.len ? v.p : "", v.len);
	buf_addc(&d, '\n');
	match_feed(m, d.p, d.len);
	buf_free(&v);
	buf_free(&d);
}

static int
address_field(const char *name)
{
	int i;

	for (i = E_FROM; i <= E_BCC; i++)
		if (!ascii_casecmp(name, envfields[i]))
			return 1;
	return 0;
}

/* the addresses of a field as the client sees them in ENVELOPE, into a
 * match: "name <mailbox@host>, ...", names decoded.  So an address
 * written with comments, quoting or folding inside it is found by the
 * plain mailbox@host.  The placeholders for a missing mailbox or domain
 * are left out. */
static void
match_addresses(struct match *m, const struct field *f)
{
	struct buf v = { 0 }, list = { 0 }, t = { 0 }, a[4];
	struct buf *dst[4] = { &a[0], &a[1], &a[2], &a[3] };
	const char *q, *e;
	int i;

	memset(a, 0, sizeof(a));
	unfold(&v, f->val, f->vlen);
	addrlist(&list, &v);
	q = list.p + 1;
	e = list.p + list.len;
	while (list.len && list.p[0] == '(' && addr_read(&q, e, dst)) {
		if (a[2].len && !eqstr(a[2].p, a[2].len, "MISSING_MAILBOX")) {
			if (t.len)
				buf_adds(&t, ", ");
			if (a[0].len) {
				decode_header(&t, a[0].p, a[0].len);
				buf_adds(&t, " <");
			}
			buf_add(&t, a[2].p, a[2].len);
			if (a[3].len && !eqstr(a[3].p, a[3].len,
			    "MISSING_DOMAIN")) {
				buf_addc(&t, '@');
				buf_add(&t, a[3].p, a[3].len);
			}
			if (a[0].len)
				buf_addc(&t, '>');
		}
		for (i = 0; i < 4; i++)
			buf_reset(&a[i]);
	}
	match_feed(m, t.len ? t.p : "", t.len);
	for (i = 0; i < 4; i++)
		buf_free(&a[i]);
	buf_free(&v);
	buf_free(&list);
	buf_free(&t);
}

static char *
fold_needle(const char *needle, size_t *len)
{
	struct buf b = { 0 };

	casemap(&b, needle, strlen(needle));
	buf_addc(&b, '\0');
	*len = b.len - 1;
	return b.p;
}

int
mime_match_header(const char *p, size_t n, const char *field,
    const char *needle)
{
	struct match m;
	struct field f;
	size_t i = 0, he = header_end(p, n, 0), nlen;
	char *nd = fold_needle(needle, &nlen);
	int found = 0;

	match_init(&m, nd, nlen);
	while (!found && field_next(p, he, &i, &f)) {
		if (!f.val || (field && !eqstr(f.name, f.nlen, field)))
			continue;
		if (!nlen) {
			found = 1;
			break;
		}
		/* each field on its own: no match across two fields */
		m.wlen = m.npend = 0;
		match_field(&m, p, &f, 0);
		if (!m.found && field && address_field(field)) {
			m.wlen = 0;
			match_addresses(&m, &f);
		}
		found = m.found;
	}
	free(m.win);
	free(nd);
	return found;
}

/* the decoded text of a text part into a match */
static void
match_part(struct match *m, const struct tree *t, const struct part *pt)
{
	struct ctype ct;
	struct conv cv;
	struct dec *d;
	struct buf cte = { 0 };
	size_t cslen, s, step;
	int kind;
	const char *cs;
	char csname[64] = "";
	int text;

	ctype_parse(&ct, t->p, pt->hdr, pt->body, "Content-Type", 0);
	text = ct.type.len ? eqstr(ct.type.p, ct.type.len, "text") :
	    !pt->digest;
	if (text && (cs = param_get(&ct.par, "charset", &cslen)) &&
	    cslen < sizeof(csname) && !memchr(cs, '\0', cslen)) {
		memcpy(csname, cs, cslen);
		csname[cslen] = '\0';
	}
	ctype_free(&ct);
	if (!text)
		return;
	cv.cd = conv_open(csname);
	cv.m = m;
	cv.npend = 0;
	match_break(m);
	cte_get(t->p, pt->hdr, pt->body, &cte);
	kind = cte_kind(&cte);
	buf_free(&cte);
	d = xmalloc(sizeof(*d));
	d->out = conv_emit;
	d->arg = &cv;
	d->stop = &m->found;
	d->len = 0;
	if (kind == SEG_B64)
		b64_decode(t->p + pt->body, pt->end - pt->body, d);
	else if (kind == SEG_QP)
		qp_decode(t->p + pt->body, pt->end - pt->body, d);
	else
		for (s = pt->body; s < pt->end && !m->found; s += step) {
			step = MIN(pt->end - s, DROP_STEP);
			conv_emit(&cv, t->p + s, step);
			drop(t->p + s, t->p + s + step);
		}
	free(d);
	if (cv.cd != (iconv_t)-1)
		iconv_close(cv.cd);
}

int
mime_match_body(const char *p, size_t n, const char *needle,
    int with_headers)
{
	struct tree *t;
	struct match m;
	struct field f;
	size_t nlen, pos;
	char *nd = fold_needle(needle, &nlen);
	int i, found;

	match_init(&m, nd, nlen);
	t = tree_parse(p, n);
	for (i = 0; i < t->nv && !m.found; i++) {
		/* each header block on its own: no match across two parts */
		if (with_headers) {
			match_break(&m);
			for (pos = t->v[i].hdr; !m.found &&
			    field_next(p, t->v[i].body, &pos, &f);)
				if (f.val)
					match_field(&m, p, &f, 1);
		}
		if (t->v[i].kind == LEAF)
			match_part(&m, t, &t->v[i]);
	}
	found = m.found;
	tree_free(t);
	free(m.win);
	free(nd);
	return found;
}

void
mime_search_text(const char *p, size_t n, struct buf *head, struct buf *body,
    mime_field fieldfn, void *arg)
{
	struct tree *t;
	struct match m;
	struct field f;
	struct buf v = { 0 };
	size_t pos, he = header_end(p, n, 0);
	char name[8];
	int i;

	memset(&m, 0, sizeof(m));
	m.rec = &v;
	for (pos = 0; field_next(p, he, &pos, &f);) {
		if (!f.val)
			continue;
		buf_reset(&v);
		match_field(&m, p, &f, 0);
		fieldfn(arg, f.name, f.nlen, v.p, v.len);
		/* the addresses as ENVELOPE shows them: a piece of their own,
		 * as the FROM/TO/CC/BCC keys look at them */
		if (f.nlen < sizeof(name)) {
			memcpy(name, f.name, f.nlen);
			name[f.nlen] = '\0';
			if (!address_field(name))
				continue;
			buf_reset(&v);
			match_addresses(&m, &f);
			fieldfn(arg, f.name, f.nlen, v.p, v.len);
		}
	}
	buf_free(&v);
	t = tree_parse(p, n);
	for (i = 0; i < t->nv; i++) {
		m.rec = head;
		match_break(&m);
		for (pos = t->v[i].hdr; field_next(p, t->v[i].body, &pos, &f);)
			if (f.val)
				match_field(&m, p, &f, 1);
		match_break(&m);
		m.rec = body;
		if (t->v[i].kind == LEAF)
			match_part(&m, t, &t->v[i]);
		match_break(&m);
	}
	tree_free(t);
}

/* ---- the first text (PREVIEW) ---------------------------------------- */

/* decoded octets into a buffer until it holds max */
struct capped {
	struct buf *b;
	size_t max;
	int full;
};

static void
capped_emit(void *arg, const char *p, size_t n)
{
	struct capped *c = arg;

	buf_add(c->b, p, MIN(n, c->max - c->b->len));
	c->full = c->b->len >= c->max;
}

/* is leaf pt text: 1 text/html, 0 other text/..., -1 no text; the
 * charset goes to cs */
static int
text_kind(const struct tree *t, const struct part *pt, char *cs, size_t cssz)
{
	struct ctype ct;
	const char *v;
	size_t len;
	int kind = -1;

	ctype_parse(&ct, t->p, pt->hdr, pt->body, "Content-Type", 0);
	if (!ct.type.len && !ct.invalid && !pt->digest)
		kind = 0;
	else if (eqstr(ct.type.p, ct.type.len, "text"))
		kind = eqstr(ct.subtype.p, ct.subtype.len, "html");
	cs[0] = '\0';
	if (kind >= 0 && (v = param_get(&ct.par, "charset", &len)) &&
	    len < cssz && !memchr(v, '\0', len)) {
		memcpy(cs, v, len);
		cs[len] = '\0';
	}
	ctype_free(&ct);
	return kind;
}

/* the index of the multipart holding part i, -1 for none */
static int
parent(const struct tree *t, int i)
{
	int j, k;

	for (j = 0; j < t->nv; j++)
		for (k = t->v[j].child; k >= 0; k = t->v[k].next)
			if (k == i)
				return j;
	return -1;
}

/* an HTML part i inside a multipart/alternative gives way to the plain
 * text alternative: the text the author wrote */
static int
plain_sibling(const struct tree *t, int i, char *cs, size_t cssz)
{
	struct ctype ct;
	int j, k, alt;

	for (j = parent(t, i); j >= 0; j = parent(t, j)) {
		ctype_parse(&ct, t->p, t->v[j].hdr, t->v[j].body,
		    "Content-Type", 0);
		alt = eqstr(ct.subtype.p, ct.subtype.len, "alternative");
		ctype_free(&ct);
		for (k = t->v[j].child; alt && k >= 0; k = t->v[k].next)
			if (t->v[k].kind == LEAF &&
			    text_kind(t, &t->v[k], cs, cssz) == 0)
				return k;
	}
	return -1;
}

int
mime_first_text(const char *p, size_t n, size_t max, struct buf *out,
    char *cs, size_t cssz)
{
	struct tree *t = tree_parse(p, n);
	struct capped c = { out, max, 0 };
	struct buf cte = { 0 };
	struct dec d;
	const struct part *pt;
	int i, kind = -1, enc, k;

	for (i = 0; i < t->nv && kind < 0; i++)
		if (t->v[i].kind == LEAF)
			kind = text_kind(t, &t->v[i], cs, cssz);
	if (kind < 0) {
		tree_free(t);
		return -1;
	}
	pt = &t->v[i - 1];
	if (kind == 1 && (k = plain_sibling(t, i - 1, cs, cssz)) >= 0) {
		pt = &t->v[k];
		kind = 0;
	} else if (kind == 1) {
		text_kind(t, pt, cs, cssz);	/* its own charset again */
	}
	cte_get(p, pt->hdr, pt->body, &cte);
	enc = cte_kind(&cte);
	buf_free(&cte);
	memset(&d, 0, sizeof(d));
	d.out = capped_emit;
	d.arg = &c;
	d.stop = &c.full;
	if (enc == SEG_B64)
		b64_decode(p + pt->body, pt->end - pt->body, &d);
	else if (enc == SEG_QP)
		qp_decode(p + pt->body, pt->end - pt->body, &d);
	else
		capped_emit(&c, p + pt->body, pt->end - pt->body);
	tree_free(t);
	return kind;
}

/* --- header access for SORT and THREAD --- */

unsigned
mime_headers(const char *p, size_t n, const char *const *names, int nnames,
    struct buf *values)
{
	struct field f;
	size_t i = 0, he = header_end(p, n, 0);
	unsigned found = 0;
	int k;

	while (field_next(p, he, &i, &f))
		for (k = 0; k < nnames && k < 32; k++)
			if (!(found & 1u << k) && field_is(&f, names[k])) {
				unfold(&values[k], f.val, f.vlen);
				found |= 1u << k;
			}
	return found;
}

void
mime_decode(struct buf *out, const char *s, size_t n)
{
	decode_header(out, n ? s : "", n);
}

int
mime_first_address(const char *s, size_t n, struct buf *name,
    struct buf *mbox, struct buf *host)
{
	struct buf v = { 0 }, list = { 0 }, adl = { 0 };
	struct buf *dst[4];
	const char *q;
	int ok = 0;

	dst[0] = name;
	dst[1] = &adl;
	dst[2] = mbox;
	dst[3] = host;
	buf_add(&v, n ? s : "", n);
	addrlist(&list, &v);
	if (list.len && list.p[0] == '(') {
		q = list.p + 1;
		ok = addr_read(&q, list.p + list.len, dst);
	}
	buf_free(&v);
	buf_free(&list);
	buf_free(&adl);
	return ok;
}
