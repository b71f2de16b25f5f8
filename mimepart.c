/* mimepart.c: the part tree of a message and what each part's header
 * says of its content.
 *
 * A message is parsed into a tree of offsets into the mapping; nothing of
 * the message is copied but single header values.  Parsing is one pass
 * over the lines with bounded nesting and part count, so no input makes
 * it recurse deeply, loop, or go quadratic.  A multipart or message
 * nested deeper than MIME_DEPTH, or past MIME_PARTS parts, is a leaf that
 * BODYSTRUCTURE shows as application/octet-stream (as Dovecot does).
 * One command parses a message's tree once (struct mime) and every item
 * it fetches looks at that. */
#include <stdlib.h>
#include <string.h>

#include "mimeint.h"
#include "util.h"

#define MIME_PARTS	10000	/* parts of one message */
#define NONE	((size_t)-1)	/* no such offset */

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
 * or the end of the message.  Only a line that starts with '-' can: the
 * next is looked for a drop step at a time, sixteen octets at once, not
 * a line at a time. */
static size_t
find_boundary(const struct tree *t, size_t i)
{
	const char *q = NULL;
	size_t mark = i, j, end;
	int close;

	if (!t->nb)
		return t->n;
	while (i < t->n) {
		if (t->p[i] == '-' && boundary(t, i, &close) >= 0)
			break;
		for (j = i + 1; ; j = end) {
			end = MIN(t->n, j + DROP_STEP);
			q = line_start(t->p + j, t->p + end, '-');
			if (q || end == t->n)
				break;
			drop(t->p + mark, t->p + end);
			mark = end;
		}
		i = q ? (size_t)(q - t->p) : t->n;
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
	struct mime_part *pt;

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
	struct mime_ctype ct;
	struct fwalk w;
	struct field f;
	const char *b;
	size_t blen;
	int kind = MIME_LEAF, found = 0;

	/* the first Content-Type decides, read from its own range */
	fwalk_init(&w, t->m, t->v[me].hdr, t->v[me].body);
	while (!found && fwalk_next(&w, &f))
		found = field_is(&f, "Content-Type");
	if (!found)
		f.start = f.end = t->v[me].hdr;
	ctype_parse(&ct, t->p, f.start, f.end, "Content-Type", 0);
	*digest = *pushed = 0;
	if (!ct.present || !ct.type.len) {
		if (t->v[me].digest)
			kind = MIME_MESSAGE;
	} else if (eqstr(ct.type.p, ct.type.len, "multipart")) {
		kind = MIME_MULTI;
		*digest = eqstr(ct.subtype.p, ct.subtype.len, "digest");
		b = mime_param(&ct.par, "boundary", &blen);
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
		kind = MIME_MESSAGE;
	}
	/* kept for BODYSTRUCTURE, which would read it again */
	if (me < CT_KEEP) {
		t->ct[me] = xmalloc(sizeof(ct));
		*t->ct[me] = ct;
	} else {
		ctype_free(&ct);
	}
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
	if (kind == MIME_MESSAGE) {
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
	if (kind != MIME_LEAF && (depth + 1 >= MIME_DEPTH ||
	    t->nv >= MIME_PARTS)) {
		if (pushed)
			pop_boundary(t);
		pushed = 0;
		t->v[me].trunc = 1;
		kind = MIME_LEAF;
	}
	t->v[me].kind = kind;
	/* a blank line and a delimiter: the body is empty, unless the
	 * delimiter is this multipart's own first one (its boundary the
	 * longest that matches) */
	if (blank != NONE && pushed && boundary(t, delim, &close) == t->nb - 1)
		delim = NONE;
	if (delim != NONE)
		return empty_entity(t, me, kind, pushed, delim, blank);
	if (kind == MIME_LEAF || (kind == MIME_MULTI && !pushed)) {
		/* a multipart without a boundary has no parts */
		j = find_boundary(t, t->v[me].body);
		t->v[me].end = cut(t, j, t->v[me].body);
		return j;
	}
	if (kind == MIME_MESSAGE) {
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
tree_parse(struct mime *m)
{
	struct tree *t = xcalloc(1, sizeof(*t));
	int root;

	t->m = m;
	t->p = m->p;
	t->n = m->n;
	parse_entity(t, 0, 0, 0, &root);
	return t;
}

static void
tree_free(struct tree *t)
{
	int i;

	if (!t)
		return;
	while (t->nb)
		pop_boundary(t);
	for (i = 0; i < CT_KEEP; i++)
		if (t->ct[i]) {
			ctype_free(t->ct[i]);
			free(t->ct[i]);
		}
	free(t->v);
	free(t);
}

/* ---- one command's look at a message --------------------------------- */

struct mime *
mime_open(const char *p, size_t n)
{
	struct mime *m = xcalloc(1, sizeof(*m));

	m->p = p;
	m->n = n;
	return m;
}

void
mime_close(struct mime *m)
{
	if (!m)
		return;
	tree_free(m->t);
	free(m->hf);
	free(m);
}

struct tree *
mime_tree(struct mime *m)
{
	if (!m->t)
		m->t = tree_parse(m);
	return m->t;
}

#define HF_MAX	1000	/* fields of a header kept in a list */

/* the message's header found: its fields listed, up to the blank line
 * that ends it (the first line with no text at all) */
static void
header_list(struct mime *m)
{
	struct field f;
	size_t i = 0, cap = 0;

	m->hknown = 1;
	while (field_next(m->p, m->n, &i, &f)) {
		if (m->nhf == HF_MAX) {
			free(m->hf);
			m->hf = NULL;
			m->hend = header_end(m->p, m->n, 0);
			return;
		}
		if (m->nhf == cap) {
			cap = cap ? 2 * cap : 32;
			m->hf = xreallocarray(m->hf, cap, sizeof(*m->hf));
		}
		m->hf[m->nhf++] = f;
	}
	m->hend = i + blankline(m->p, m->n, i);
}

size_t
mime_header_end(struct mime *m)
{
	if (!m->hknown)
		header_list(m);
	return m->hend;
}

void
fwalk_init(struct fwalk *w, struct mime *m, size_t hs, size_t he)
{
	w->p = m->p;
	w->i = hs;
	w->he = he;
	w->v = w->ve = NULL;
	if (hs == 0 && he == mime_header_end(m) && m->hf) {
		w->v = m->hf;
		w->ve = m->hf + m->nhf;
	}
}

int
fwalk_next(struct fwalk *w, struct field *f)
{
	if (!w->v)
		return field_next(w->p, w->he, &w->i, f);
	if (w->v == w->ve)
		return 0;
	*f = *w->v++;
	return 1;
}

const struct mime_part *
mime_part(struct mime *m, int i)
{
	return &mime_tree(m)->v[i];
}

/* the line ends of part i's body, counted once for its size and lines */
static const struct mime_part *
counted(struct mime *m, int i)
{
	struct mime_part *pt = &mime_tree(m)->v[i];

	if (!pt->counted)
		lf_census(m->p + pt->body, pt->end - pt->body, &pt->lf,
		    &pt->crlf);
	pt->counted = 1;
	return pt;
}

uint64_t
mime_size(struct mime *m, int i)
{
	const struct mime_part *pt = counted(m, i);

	return pt->end - pt->body + pt->lf - pt->crlf;
}

uint64_t
mime_lines(struct mime *m, int i)
{
	return counted(m, i)->lf;
}

/* ---- what a part's header says --------------------------------------- */

/* an nstring header value of the header [hs, he) */
static void
value_get(struct mime_value *v, const char *p, size_t hs, size_t he,
    const char *name)
{
	v->present = header_get(p, hs, he, name, &v->v);
}

/* Content-Language: its tags, a list of tokens separated by commas */
static void
languages(struct mime_desc *d, const char *p, size_t hs, size_t he)
{
	struct buf v = { 0 };
	struct lex l;

	if (header_get(p, hs, he, "Content-Language", &v)) {
		l.s = v.p;
		l.e = v.p + v.len;
		for (;;) {
			l.s = cfws_skip(l.s, l.e);
			if (l.s < l.e && *l.s == ',') {
				l.s++;
				continue;
			}
			if (!mtoken(&l, &d->lang))
				break;
			buf_addc(&d->lang, '\0');
			d->nlang++;
		}
	}
	buf_free(&v);
}

/* the fields mime_describe reads */
enum { D_TYPE, D_DISP, D_ID, D_DESC, D_MD5, D_LOC, D_LANG, D_CTE, D_N };
static const char *const descfield[D_N] = {
	"Content-Type", "Content-Disposition", "Content-ID",
	"Content-Description", "Content-MD5", "Content-Location",
	"Content-Language", "Content-Transfer-Encoding"
};

/* Where each of them is, from one walk over the header [hs, he): the
 * range of the one field header_get would take (the first Content-Type,
 * the last of the others), or an empty range.  Reading a field from its
 * range alone gives what the whole header would, at a fraction of eight
 * walks. */
static void
desc_fields(struct mime *m, size_t hs, size_t he, size_t at[D_N][2])
{
	struct fwalk w;
	struct field f;
	int k;

	for (k = 0; k < D_N; k++)
		at[k][0] = at[k][1] = hs;
	fwalk_init(&w, m, hs, he);
	while (fwalk_next(&w, &f)) {
		if (f.nlen < 8 || ascii_ncasecmp(f.name, "Content-", 8))
			continue;
		for (k = 0; k < D_N && !field_is(&f, descfield[k]); k++)
			;
		if (k < D_N && (k != D_TYPE || at[k][1] == hs)) {
			at[k][0] = f.start;
			at[k][1] = f.end;
		}
	}
}

void
mime_describe(struct mime *m, int i, struct mime_desc *d)
{
	const struct mime_part *pt = mime_part(m, i);
	struct tree *t = mime_tree(m);
	size_t at[D_N][2];

	memset(d, 0, sizeof(*d));
	desc_fields(m, pt->hdr, pt->body, at);
	/* the first Content-Type of the header, as parsing read it */
	if (i < CT_KEEP && t->ct[i]) {
		d->type = *t->ct[i];
		free(t->ct[i]);
		t->ct[i] = NULL;
	} else {
		ctype_parse(&d->type, m->p, at[D_TYPE][0], at[D_TYPE][1],
		    "Content-Type", 0);
	}
	ctype_parse(&d->disp, m->p, at[D_DISP][0], at[D_DISP][1],
	    "Content-Disposition", 1);
	value_get(&d->id, m->p, at[D_ID][0], at[D_ID][1], "Content-ID");
	value_get(&d->description, m->p, at[D_DESC][0], at[D_DESC][1],
	    "Content-Description");
	value_get(&d->md5, m->p, at[D_MD5][0], at[D_MD5][1], "Content-MD5");
	value_get(&d->location, m->p, at[D_LOC][0], at[D_LOC][1],
	    "Content-Location");
	languages(d, m->p, at[D_LANG][0], at[D_LANG][1]);
	cte_get(m->p, at[D_CTE][0], at[D_CTE][1], &d->cte);
}

void
mime_desc_free(struct mime_desc *d)
{
	ctype_free(&d->type);
	ctype_free(&d->disp);
	buf_free(&d->id.v);
	buf_free(&d->description.v);
	buf_free(&d->md5.v);
	buf_free(&d->location.v);
	buf_free(&d->lang);
	buf_free(&d->cte);
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
text_kind(const struct tree *t, const struct mime_part *pt, char *cs, size_t cssz)
{
	struct mime_ctype ct;
	const char *v;
	size_t len;
	int kind = -1;

	ctype_parse(&ct, t->p, pt->hdr, pt->body, "Content-Type", 0);
	if (!ct.type.len && !ct.invalid && !pt->digest)
		kind = 0;
	else if (eqstr(ct.type.p, ct.type.len, "text"))
		kind = eqstr(ct.subtype.p, ct.subtype.len, "html");
	cs[0] = '\0';
	if (kind >= 0 && (v = mime_param(&ct.par, "charset", &len)) &&
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
	struct mime_ctype ct;
	int j, k, alt;

	for (j = parent(t, i); j >= 0; j = parent(t, j)) {
		ctype_parse(&ct, t->p, t->v[j].hdr, t->v[j].body,
		    "Content-Type", 0);
		alt = eqstr(ct.subtype.p, ct.subtype.len, "alternative");
		ctype_free(&ct);
		for (k = t->v[j].child; alt && k >= 0; k = t->v[k].next)
			if (t->v[k].kind == MIME_LEAF &&
			    text_kind(t, &t->v[k], cs, cssz) == 0)
				return k;
	}
	return -1;
}

int
mime_first_text(struct mime *m, size_t max, struct buf *out, char *cs,
    size_t cssz)
{
	struct tree *t = mime_tree(m);
	struct capped c = { out, max, 0 };
	struct buf cte = { 0 };
	struct dec d;
	const struct mime_part *pt;
	int i, kind = -1, enc, k;

	for (i = 0; i < t->nv && kind < 0; i++)
		if (t->v[i].kind == MIME_LEAF)
			kind = text_kind(t, &t->v[i], cs, cssz);
	if (kind < 0)
		return -1;
	pt = &t->v[i - 1];
	if (kind == 1 && (k = plain_sibling(t, i - 1, cs, cssz)) >= 0) {
		pt = &t->v[k];
		kind = 0;
	} else if (kind == 1) {
		text_kind(t, pt, cs, cssz);	/* its own charset again */
	}
	cte_get(t->p, pt->hdr, pt->body, &cte);
	enc = cte_kind(&cte);
	buf_free(&cte);
	memset(&d, 0, sizeof(d));
	d.out = capped_emit;
	d.arg = &c;
	d.stop = &c.full;
	if (enc == SEG_B64 || enc == SEG_QP)
		transfer_decode(enc, t->p + pt->body, pt->end - pt->body, &d);
	else
		capped_emit(&c, t->p + pt->body, pt->end - pt->body);
	return kind;
}
