/* mimesearch.c: the content keys of SEARCH (RFC 3501 6.4.4) and the
 * text a full-text index keeps of a message.  Header values are matched
 * with their encoded words decoded, address fields also as ENVELOPE shows
 * them, text parts transfer-decoded and converted to UTF-8; all of it
 * folded (i;unicode-casemap) and streamed past a window, never held
 * whole. */
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "mimeint.h"
#include "unicode.h"
#include "util.h"


/* the needle of the last header match, as given and folded */
static char *last, *folded;
static size_t flen;

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
	struct html *html;	/* the text of an HTML part goes through it */
	size_t npend;
	char pend[16];	/* an incomplete sequence from the last chunk */
};

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

static iconv_t
conv_open(const char *cs)
{
	if (passthrough(cs))
		return (iconv_t)-1;
	return iconv_open("UTF-8", cs);
}

/* UTF-8 text of a part to the match: HTML as the reader sees it */
static void
text_emit(void *arg, const char *p, size_t n)
{
	struct conv *cv = arg;

	if (cv->html)
		html_feed(cv->html, p, n);
	else
		match_feed(cv->m, p, n);
}

static void
conv_emit(void *arg, const char *p, size_t n)
{
	struct conv *cv = arg;
	char in[CHUNK + 16];
	size_t take, left;

	if (cv->cd == (iconv_t)-1) {
		text_emit(cv, p, n);
		return;
	}
	while (n && !cv->m->found) {
		take = MIN(n, CHUNK);
		memcpy(in, cv->pend, cv->npend);
		memcpy(in + cv->npend, p, take);
		left = conv_run(cv->cd, in, cv->npend + take, text_emit, cv);
		memcpy(cv->pend, in + cv->npend + take - left, left);
		cv->npend = left;
		p += take;
		n -= take;
	}
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
	static const char *const names[] = {
		"From", "Sender", "Reply-To", "To", "Cc", "Bcc"
	};
	size_t i;

	for (i = 0; i < LEN(names); i++)
		if (!ascii_casecmp(name, names[i]))
			return 1;
	return 0;
}

/* "name <mailbox@host>" of an address as mime_addr_shown gives it, the
 * name decoded; the placeholder for a missing domain is left out */
static void
address_text(struct buf *t, const struct buf *name, const struct buf *mbox,
    const struct buf *host)
{
	if (t->len)
		buf_adds(t, ", ");
	if (name->len) {
		decode_header(t, name->p, name->len);
		buf_adds(t, " <");
	}
	buf_add(t, mbox->p, mbox->len);
	if (host->len && !eqstr(host->p, host->len, "MISSING_DOMAIN")) {
		buf_addc(t, '@');
		buf_add(t, host->p, host->len);
	}
	if (name->len)
		buf_addc(t, '>');
}

/* the addresses of a field as the client sees them in ENVELOPE, into a
 * match: "name <mailbox@host>, ...".  So an address written with
 * comments, quoting or folding inside it is found by the plain
 * mailbox@host.  An address without a mailbox is left out. */
static void
match_addresses(struct match *m, const struct field *f)
{
	struct buf v = { 0 }, t = { 0 }, name = { 0 }, mbox = { 0 },
	    host = { 0 };
	struct mime_addrs list;
	size_t i;

	unfold(&v, f->val, f->vlen);
	mime_addresses(v.p, v.len, &list);
	for (i = 0; i < list.n; i++) {
		buf_reset(&name);
		buf_reset(&mbox);
		buf_reset(&host);
		mime_addr_shown(&list.v[i], &name, &mbox, &host);
		if (mbox.len && !eqstr(mbox.p, mbox.len, "MISSING_MAILBOX"))
			address_text(&t, &name, &mbox, &host);
	}
	match_feed(m, t.len ? t.p : "", t.len);
	mime_addrs_free(&list);
	buf_free(&v);
	buf_free(&t);
	buf_free(&name);
	buf_free(&mbox);
	buf_free(&host);
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

/* the needle of the last header match folded: SEARCH asks the same of
 * every message */
static const char *
header_needle(const char *needle, size_t *len)
{
	if (!last || strcmp(last, needle)) {
		free(last);
		free(folded);
		last = xstrdup(needle);
		folded = fold_needle(needle, &flen);
	}
	*len = flen;
	return folded;
}

int
mime_match_header(const char *p, size_t n, const char *field,
    const char *needle)
{
	struct match m;
	struct field f;
	size_t i = 0, nlen;
	const char *nd = header_needle(needle, &nlen);
	int found = 0;

	match_init(&m, nd, nlen);
	/* the fields end at the blank line, where field_next stops */
	while (!found && field_next(p, n, &i, &f)) {
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
	return found;
}

/* the decoded text of a text part into a match */
static void
match_part(struct match *m, const struct tree *t, const struct mime_part *pt)
{
	struct mime_ctype ct;
	struct conv cv;
	struct dec *d;
	struct buf cte = { 0 };
	size_t cslen, s, step;
	int kind;
	const char *cs;
	char csname[64] = "";
	int text, html;

	ctype_parse(&ct, t->p, pt->hdr, pt->body, "Content-Type", 0);
	text = ct.type.len ? eqstr(ct.type.p, ct.type.len, "text") :
	    !pt->digest;
	html = text && eqstr(ct.subtype.p, ct.subtype.len, "html");
	if (text && (cs = mime_param(&ct.par, "charset", &cslen)) &&
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
	cv.html = NULL;
	if (html) {
		cv.html = xmalloc(sizeof(*cv.html));
		html_init(cv.html, 0, match_emit, m);
	}
	match_break(m);
	cte_get(t->p, pt->hdr, pt->body, &cte);
	kind = cte_kind(&cte);
	buf_free(&cte);
	d = xmalloc(sizeof(*d));
	d->out = conv_emit;
	d->arg = &cv;
	d->stop = &m->found;
	d->len = 0;
	if (kind == SEG_B64 || kind == SEG_QP)
		transfer_decode(kind, t->p + pt->body, pt->end - pt->body, d);
	else
		for (s = pt->body; s < pt->end && !m->found; s += step) {
			step = MIN(pt->end - s, DROP_STEP);
			conv_emit(&cv, t->p + s, step);
			drop(t->p + s, t->p + s + step);
		}
	free(d);
	if (cv.html)
		html_end(cv.html);
	free(cv.html);
	if (cv.cd != (iconv_t)-1)
		iconv_close(cv.cd);
}

int
mime_match_body(struct mime *mm, const char *needle, int with_headers)
{
	struct tree *t = mime_tree(mm);
	struct match m;
	struct field f;
	size_t nlen, pos;
	char *nd = fold_needle(needle, &nlen);
	int i, found;

	match_init(&m, nd, nlen);
	for (i = 0; i < t->nv && !m.found; i++) {
		/* each header block on its own: no match across two parts */
		if (with_headers) {
			match_break(&m);
			for (pos = t->v[i].hdr; !m.found &&
			    field_next(t->p, t->v[i].body, &pos, &f);)
				if (f.val)
					match_field(&m, t->p, &f, 1);
		}
		if (t->v[i].kind == MIME_LEAF)
			match_part(&m, t, &t->v[i]);
	}
	found = m.found;
	free(m.win);
	free(nd);
	return found;
}

void
mime_search_text(const char *p, size_t n, struct buf *head, struct buf *body,
    mime_field fieldfn, void *arg)
{
	struct mime *mm;
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
	mm = mime_open(p, n);
	t = mime_tree(mm);
	for (i = 0; i < t->nv; i++) {
		m.rec = head;
		match_break(&m);
		for (pos = t->v[i].hdr; field_next(p, t->v[i].body, &pos, &f);)
			if (f.val)
				match_field(&m, p, &f, 1);
		match_break(&m);
		m.rec = body;
		if (t->v[i].kind == MIME_LEAF)
			match_part(&m, t, &t->v[i]);
		match_break(&m);
	}
	mime_close(mm);
}
