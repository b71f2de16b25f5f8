/* mimehdr.c: header fields and MIME header values.  A field is found
 * in place, its value unfolded when asked for (SORT and THREAD read
 * theirs here too); Content-Type and
 * Content-Disposition are read as RFC 2045 tokens, quoted strings and
 * comments.  RFC 2231 parameter continuations (name*0, name*1*, ...) are
 * joined into one parameter, named "name*" when any piece is extended,
 * with the value left encoded (charset'language'%XX...): RFC 3501 passes
 * parameters through as attribute/value pairs and leaves the decoding to
 * the client, and joining the pieces keeps the list short and gives
 * clients that read "name*" the whole value (as Dovecot does). */
#include <stdlib.h>
#include <string.h>

#include "mimeint.h"
#include "util.h"

/* case-insensitive comparison of a counted string with a C string */
int
eqstr(const char *s, size_t n, const char *t)
{
	/* most names compared differ in their first octet by more than
	 * case: no strlen(t) for those */
	if (n && ((unsigned char)(*s ^ *t) & ~0x20))
		return 0;
	return n == strlen(t) && ascii_ncasecmp(s, t, n) == 0;
}

/* the line at i is empty: the end of a header */
size_t
blankline(const char *p, size_t n, size_t i)
{
	if (i < n && p[i] == '\n')
		return 1;
	if (i + 1 < n && p[i] == '\r' && p[i + 1] == '\n')
		return 2;
	return 0;
}

/* ---- header fields ---------------------------------------------------- */

/* the end of the header that starts at i: just past the blank line, or
 * the end of the message when there is none */
size_t
header_end(const char *p, size_t n, size_t i)
{
	size_t k;

	for (; i < n; i = nextline(p, n, i))
		if ((k = blankline(p, n, i)))
			return i + k;
	return n;
}

/* the next field of the header block [*i, hend); 0 at its end */
int
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

int
field_is(const struct field *f, const char *name)
{
	return f->val && eqstr(f->name, f->nlen, name);
}

/* the value unfolded: line ends dropped, white space before the first
 * line's text skipped,
 * NUL (not allowed in an IMAP string) as 0x80 */
void
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
int
header_get(const char *p, size_t hs, size_t he, const char *name,
    struct buf *out)
{
	struct field f, last;
	size_t i = hs;
	int found = 0, first = eqstr(name, strlen(name), "Content-Type");

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

void
mime_human(struct buf *t, const char *s, size_t n)
{
	size_t i, start = t->len;
	char *o;
	int sp = 0;

	/* never longer than s: written in place, no growth a character */
	if (!n)
		return;
	buf_grow(t, n);
	o = t->p + t->len;
	for (i = 0; i < n; i++) {
		if (iswsp((unsigned char)s[i]) || s[i] == '\r' || s[i] == '\n') {
			sp = o > t->p + start;
			continue;
		}
		if (sp)
			*o++ = ' ';
		sp = 0;
		*o++ = s[i] ? s[i] : (char)0x80;
	}
	t->len = o - t->p;
	t->p[t->len] = '\0';
}

/* ---- MIME header values (RFC 2045 tokens, RFC 822 comments) ---------- */

static int
tspecial(int c)
{
	switch (c) {
	case '(': case ')': case '<': case '>': case '@': case ',': case ';':
	case ':': case '\\': case '"': case '/': case '[': case ']': case '?':
	case '=':
		return 1;
	}
	return c <= ' ' || c == 0x7f;
}

/* a token (8-bit octets allowed); 0 when there is none */
int
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
params_add(struct mime_params *pp, const char *name, size_t nlen,
    const char *val, size_t vlen)
{
	struct mime_param *q;
	const char *star;
	char *end;

	if (pp->n >= MIME_PARAMS)
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
pname(const struct mime_params *pp, int i)
{
	return pp->s.p + pp->v[i].name;
}

/* RFC 2231 parameters sort by name, then by piece */
static int
pcmp(const struct mime_params *pp, const struct mime_param *a,
    const struct mime_param *b)
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
samename(const struct mime_params *pp, const struct mime_param *a,
    const struct mime_param *b)
{
	return a->nlen == b->nlen && !ascii_ncasecmp(pp->s.p + a->name,
	    pp->s.p + b->name, a->nlen);
}

/* a parameter into another list; star: written "name*", full: with
 * the name as it was, continuation number and all */
static struct mime_param *
param_copy(struct mime_params *to, const struct mime_params *from,
    const struct mime_param *q, int star, int full)
{
	struct mime_param *r = &to->v[to->n++];

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
params_join(struct mime_params *pp)
{
	struct mime_params out = { 0 };
	struct mime_param v[MIME_PARAMS], tmp, *r;
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
params_parse(struct lex *l, struct mime_params *pp)
{
	struct buf name = { 0 }, val = { 0 };

	for (;;) {
		l->s = cfws_skip(l->s, l->e);
		if (l->s >= l->e)
			break;
		if (*l->s != ';') {
			param_skip(l);
			continue;
		}
		/* empty parameters (";;") are skipped */
		while (l->s < l->e && (*l->s == ';' || iswsp((unsigned char)*l->s)))
			l->s++;
		l->s = cfws_skip(l->s, l->e);
		buf_reset(&name);
		buf_reset(&val);
		if (!mtoken(l, &name))
			continue;
		l->s = cfws_skip(l->s, l->e);
		if (l->s >= l->e || *l->s != '=')
			continue;
		l->s++;
		l->s = cfws_skip(l->s, l->e);
		if (!pvalue(l, &val))
			continue;
		params_add(pp, name.p, name.len, val.len ? val.p : "", val.len);
	}
	buf_free(&name);
	buf_free(&val);
	params_join(pp);
}

const char *
mime_param(const struct mime_params *pp, const char *name, size_t *len)
{
	int i;

	for (i = 0; i < pp->n; i++)
		if (eqstr(pname(pp, i), pp->v[i].nlen, name)) {
			*len = pp->v[i].vlen;
			return pp->s.p + pp->v[i].val;
		}
	return NULL;
}

void
ctype_free(struct mime_ctype *ct)
{
	buf_free(&ct->type);
	buf_free(&ct->subtype);
	buf_free(&ct->par.s);
	ct->par.n = 0;
}

/* Content-Type (type "/" subtype params) or, with disp set,
 * Content-Disposition (type params), of the header [hs, he) */
void
ctype_parse(struct mime_ctype *ct, const char *p, size_t hs, size_t he,
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
	l.s = cfws_skip(l.s, l.e);
	if (!mtoken(&l, &ct->type))
		goto bad;
	l.s = cfws_skip(l.s, l.e);
	if (!disp) {
		if (l.s >= l.e || *l.s != '/')
			goto bad;
		l.s++;
		l.s = cfws_skip(l.s, l.e);
		if (!mtoken(&l, &ct->subtype))
			goto bad;
		l.s = cfws_skip(l.s, l.e);
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
void
cte_get(const char *p, size_t hs, size_t he, struct buf *out)
{
	struct buf v = { 0 };
	struct lex l;

	if (header_get(p, hs, he, "Content-Transfer-Encoding", &v)) {
		l.s = v.p;
		l.e = v.p + v.len;
		l.s = cfws_skip(l.s, l.e);
		mtoken(&l, out);
		l.s = cfws_skip(l.s, l.e);
		if (l.s < l.e)
			buf_reset(out);
	}
	if (!out->len)
		buf_adds(out, "7bit");
	buf_free(&v);
}

/* the decoder a transfer encoding needs: SEG_RAW for none, SEG_B64,
 * SEG_QP, or -1 when it is unknown */
int
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
