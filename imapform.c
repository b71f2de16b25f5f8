/* imapform.c: IMAP syntax for message structures: the section names
 * FETCH echoes, ENVELOPE, and BODY/BODYSTRUCTURE (RFC 3501 7.4.2).  The
 * message code (mime.h) hands out parts, addresses and header values;
 * this file alone turns them into parenthesised lists, strings and NILs.
 * Where RFC 3501 leaves the form open it follows Dovecot. */
#include <string.h>

#include "imapform.h"
#include "parse.h"
#include "util.h"

/* --- section names ---------------------------------------------------- */

/* a header field name: an upper-case atom when it can be one, else a
 * string as it was given */
static void
field_name(struct buf *b, const char *f)
{
	const char *c;

	for (c = f; *c && p_atomchar((unsigned char)*c); c++)
		;
	if (*c || !*f) {
		buf_addstr(b, f, strlen(f));
		return;
	}
	for (c = f; *c; c++)
		buf_addc(b, *c >= 'a' && *c <= 'z' ? *c - 32 : *c);
}

void
form_section(struct buf *b, const struct section *s)
{
	static const char *const names[] = {
		"", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT",
		"MIME"
	};
	int i;

	for (i = 0; i < s->npart; i++)
		buf_printf(b, "%s%u", i ? "." : "", s->part[i]);
	if (s->text != SEC_ALL)
		buf_printf(b, "%s%s", s->npart ? "." : "", names[s->text]);
	if (s->text != SEC_FIELDS && s->text != SEC_FIELDS_NOT)
		return;
	buf_adds(b, " (");
	for (i = 0; i < s->nfields; i++) {
		if (i)
			buf_addc(b, ' ');
		field_name(b, s->fields[i]);
	}
	buf_addc(b, ')');
}

/* --- strings ----------------------------------------------------------- */

/* what an address or a human value shows, before it is quoted: reused,
 * so that a header sync does not allocate them for every address */
static struct buf shown[3];

/* a scratch buffer a huge value grew is not kept */
static void
shown_trim(void)
{
	int i;

	for (i = 0; i < 3; i++)
		if (shown[i].cap > 65536)
			buf_free(&shown[i]);
}

/* a value for humans (subject, display name): white space made one
 * space; quoted when it can be, a literal otherwise */
static void
addhuman(struct buf *b, const char *s, size_t n)
{
	struct buf *t = &shown[0];

	buf_reset(t);
	mime_human(t, s, n);
	buf_addstr(b, t->len ? t->p : "", t->len);
	shown_trim();
}

/* a string from a buffer that may never have been written to */
static void
addbuf(struct buf *b, const struct buf *v)
{
	buf_addstr(b, v->len ? v->p : "", v->len);
}

/* a space and a number, without printf's cost of a format twice read */
static void
addnum(struct buf *b, uint64_t v)
{
	char room[24], *s = dec_digits(room + sizeof(room), v);

	*--s = ' ';
	buf_add(b, s, room + sizeof(room) - s);
}

/* an nstring: NIL when the header has no such field */
static void
addnstr(struct buf *b, const struct mime_value *v)
{
	if (!v->present)
		buf_adds(b, "NIL");
	else
		addbuf(b, &v->v);
}

/* --- ENVELOPE ---------------------------------------------------------- */

static void
address(struct buf *b, const struct mime_addr *a)
{
	struct buf *name = &shown[0], *mbox = &shown[1], *host = &shown[2];

	buf_reset(name);
	buf_reset(mbox);
	buf_reset(host);
	mime_addr_shown(a, name, mbox, host);
	if (a->kind == ADDR_GROUP_END) {
		buf_adds(b, "(NIL NIL NIL NIL)");
	} else if (a->kind == ADDR_GROUP) {
		buf_adds(b, "(NIL NIL ");
		addbuf(b, mbox);
		buf_adds(b, " NIL)");
	} else {
		buf_addc(b, '(');
		if (a->name.len)
			addbuf(b, name);
		else
			buf_adds(b, "NIL");
		buf_addc(b, ' ');
		if (a->adl.len)
			addbuf(b, &a->adl);
		else
			buf_adds(b, "NIL");
		buf_addc(b, ' ');
		addbuf(b, mbox);
		buf_addc(b, ' ');
		addbuf(b, host);
		buf_addc(b, ')');
	}
	shown_trim();
}

/* a parenthesised address list, or NIL when it holds none */
static void
addresses(struct buf *b, const struct mime_addrs *l)
{
	size_t i;

	if (!l->n) {
		buf_adds(b, "NIL");
		return;
	}
	buf_addc(b, '(');
	for (i = 0; i < l->n; i++)
		address(b, &l->v[i]);
	buf_addc(b, ')');
}

/* the envelope of the header of part i (0: the message) */
static void
envelope(struct buf *b, struct mime *m, int i)
{
	struct mime_envelope e;
	int k, from;

	mime_envelope(m, i, &e);
	buf_addc(b, '(');
	addnstr(b, &e.date);
	buf_addc(b, ' ');
	if (e.subject.present)
		addhuman(b, e.subject.v.p, e.subject.v.len);
	else
		buf_adds(b, "NIL");
	for (k = 0; k < ENV_NADDR; k++) {
		/* Sender and Reply-To default to From (RFC 3501 7.4.2) */
		from = (k == ENV_SENDER || k == ENV_REPLYTO) && !e.addr[k].n;
		buf_addc(b, ' ');
		addresses(b, &e.addr[from ? ENV_FROM : k]);
	}
	buf_addc(b, ' ');
	addnstr(b, &e.inreplyto);
	buf_addc(b, ' ');
	addnstr(b, &e.msgid);
	buf_addc(b, ')');
	mime_envelope_free(&e);
}

void
form_envelope(struct buf *b, struct mime *m)
{
	envelope(b, m, 0);
}

/* --- BODY and BODYSTRUCTURE -------------------------------------------- */

static void
params(struct buf *b, const struct mime_params *pp, int charset)
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
		buf_addstr(b, pp->s.p + pp->v[i].name, pp->v[i].nlen);
		buf_addc(b, ' ');
		buf_addstr(b, pp->s.p + pp->v[i].val, pp->v[i].vlen);
	}
	if (charset && !mime_param(pp, "charset", &len)) {
		if (pp->n)
			buf_addc(b, ' ');
		buf_adds(b, "\"charset\" \"us-ascii\"");
	}
	buf_addc(b, ')');
}

/* disposition, language and location: the extension data every body has */
static void
extension(struct buf *b, const struct mime_desc *d)
{
	const char *t;
	int k;

	buf_addc(b, ' ');
	if (d->disp.present) {
		/* one that cannot be read has an empty type */
		buf_addc(b, '(');
		addbuf(b, &d->disp.type);
		buf_addc(b, ' ');
		params(b, &d->disp.par, 0);
		buf_addc(b, ')');
	} else {
		buf_adds(b, "NIL");
	}
	buf_addc(b, ' ');
	for (k = 0, t = d->lang.p; k < d->nlang; k++, t += strlen(t) + 1) {
		buf_adds(b, k ? " " : "(");
		buf_addstr(b, t, strlen(t));
	}
	buf_adds(b, d->nlang ? ")" : "NIL");
	buf_addc(b, ' ');
	addnstr(b, &d->location);
}

static void body(struct buf *, struct mime *, int, int);

static void
multipart(struct buf *b, struct mime *m, int i, int ext)
{
	const struct mime_part *pt = mime_part(m, i);
	struct mime_desc d;
	int c;

	buf_addc(b, '(');
	if (!pt->nchild)
		buf_adds(b, ext ? "(\"text\" \"plain\" (\"charset\" \"us-ascii\")"
		    " NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)" :
		    "(\"text\" \"plain\" (\"charset\" \"us-ascii\")"
		    " NIL NIL \"7bit\" 0 0)");
	for (c = pt->child; c >= 0; c = mime_part(m, c)->next)
		body(b, m, c, ext);
	mime_describe(m, i, &d);
	buf_addc(b, ' ');
	addbuf(b, &d.type.subtype);
	if (ext) {
		buf_addc(b, ' ');
		params(b, &d.type.par, 0);
		extension(b, &d);
	}
	mime_desc_free(&d);
	buf_addc(b, ')');
}

/* the media type and parameters of a part that is no multipart; 1 when
 * it is text, which counts its lines */
static int
media_type(struct buf *b, const struct mime_part *pt,
    const struct mime_ctype *ct)
{
	int text = 0;

	if (pt->trunc) {
		buf_adds(b, "\"application\" \"octet-stream\" ");
		params(b, &ct->par, 0);
	} else if (ct->invalid) {
		buf_adds(b, "\"\" \"\" NIL");
	} else if (pt->kind == MIME_MESSAGE && ct->type.len) {
		/* written the way the parser knows it */
		buf_adds(b, "\"message\" \"rfc822\" ");
		params(b, &ct->par, 0);
	} else if (ct->type.len) {
		addbuf(b, &ct->type);
		buf_addc(b, ' ');
		addbuf(b, &ct->subtype);
		buf_addc(b, ' ');
		text = ct->type.len == 4 &&
		    !ascii_ncasecmp(ct->type.p, "text", 4);
		params(b, &ct->par, text);
	} else if (pt->digest) {
		buf_adds(b, "\"message\" \"rfc822\" NIL");
	} else {
		buf_adds(b, "\"text\" \"plain\" (\"charset\" \"us-ascii\")");
		text = 1;
	}
	return text;
}

static void
body(struct buf *b, struct mime *m, int i, int ext)
{
	const struct mime_part *pt = mime_part(m, i);
	struct mime_desc d;
	int text, child = pt->kind == MIME_MESSAGE ? pt->child : -1;

	if (pt->kind == MIME_MULTI) {
		multipart(b, m, i, ext);
		return;
	}
	mime_describe(m, i, &d);
	buf_addc(b, '(');
	text = media_type(b, pt, &d.type);
	buf_addc(b, ' ');
	addnstr(b, &d.id);
	buf_addc(b, ' ');
	addnstr(b, &d.description);
	buf_addc(b, ' ');
	addbuf(b, &d.cte);
	addnum(b, mime_size(m, i));
	if (text)
		addnum(b, mime_lines(m, i));
	if (child >= 0) {
		buf_addc(b, ' ');
		envelope(b, m, child);
		buf_addc(b, ' ');
		body(b, m, child, ext);
		addnum(b, mime_lines(m, i));
	}
	if (ext) {
		buf_addc(b, ' ');
		addnstr(b, &d.md5);
		extension(b, &d);
	}
	mime_desc_free(&d);
	buf_addc(b, ')');
}

void
form_body(struct buf *b, struct mime *m, int extended)
{
	body(b, m, 0, extended);
}
