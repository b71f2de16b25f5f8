/* mimeaddr.c: address lists (RFC 5322 3.4, read tolerantly) and the
 * envelope of a header, as structures.
 *
 * Where RFC 3501 leaves a choice open the result follows Dovecot, the
 * server most clients are tested against:
 *   - the last Date/Subject/In-Reply-To/Message-ID field wins; repeated
 *     address fields are merged as if they were one comma separated list;
 *   - an address without a domain gets host "MISSING_DOMAIN", a display
 *     name without an address gets mailbox "MISSING_MAILBOX", and <...>
 *     that holds no addr-spec gets host "SYNTAX_ERROR", so a host is NIL
 *     only in group markers (mime_addr_shown).
 */
#include <stdlib.h>
#include <string.h>

#include "mimeint.h"
#include "util.h"

/* ---- addresses -------------------------------------------------------- */

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
	switch (c) {
	case '(': case ')': case '<': case '>': case '[': case ']': case ':':
	case ';': case '@': case '\\': case ',': case '.': case '"':
		return 0;
	}
	return c >= 0x80 || (c > ' ' && c != 0x7f);
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

/* a new element at the end of the list */
static struct mime_addr *
addr_new(struct mime_addrs *l)
{
	struct mime_addr *a;

	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 4;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	a = &l->v[l->n++];
	memset(a, 0, sizeof(*a));
	return a;
}

static void
copy(struct buf *to, const struct buf *from)
{
	if (from && from->len)
		buf_add(to, from->p, from->len);
}

static void
addr_put(struct mime_addrs *l, const struct buf *name, const struct buf *adl,
    const struct buf *mbox, const struct buf *host)
{
	struct mime_addr *a = addr_new(l);

	a->kind = ADDR_MAILBOX;
	copy(&a->name, name);
	copy(&a->adl, adl);
	copy(&a->mbox, mbox);
	copy(&a->host, host);
}

/* "<" [route ":"] addr-spec ">", after the "<" */
static int group(struct alex *, struct mime_addrs *);

static void
angle_addr(struct alex *l, struct mime_addrs *out, const struct buf *name)
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
	addr_put(out, name, &adl, &mbox, &host);
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
mailbox(struct alex *l, struct mime_addrs *out, int ingroup)
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
		angle_addr(l, out, &words);
	} else if (isspecial(&t, '@') && n <= 1) {
		alex_next(l, &t);
		domain(l, &host);
		alex_peek(l, &t);	/* a comment after it is the name */
		addr_put(out, &l->comment, NULL, &words, &host);
	} else if (isspecial(&t, ':') && !ingroup && n) {
		alex_next(l, &t);
		addr_new(out)->kind = ADDR_GROUP;
		copy(&out->v[out->n - 1].mbox, &words);
		ok = group(l, out);
		addr_new(out)->kind = ADDR_GROUP_END;
	} else if (n == 1) {
		addr_put(out, NULL, NULL, &words, NULL);
	} else if (n > 1) {
		addr_put(out, &words, NULL, NULL, NULL);
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
group(struct alex *l, struct mime_addrs *out)
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
		if (!mailbox(l, out, 1))
			return 0;
	}
}

/* Reading stops at the first thing that is not an address, keeping
 * those before it; an empty element between commas is an address with
 * nothing known. */
void
mime_addresses(const char *s, size_t n, struct mime_addrs *list)
{
	struct alex l = { 0 };
	struct tok t;

	memset(list, 0, sizeof(*list));
	if (!n)
		return;
	l.s = s;
	l.e = s + n;
	for (;;) {
		alex_peek(&l, &t);
		if (t.type == T_END)
			break;
		if (isspecial(&t, ',')) {
			alex_next(&l, &t);
			addr_put(list, NULL, NULL, NULL, NULL);
			continue;
		}
		if (!mailbox(&l, list, 0))
			break;
	}
	buf_free(&l.comment);
}

void
mime_addrs_free(struct mime_addrs *list)
{
	size_t i;

	for (i = 0; i < list->n; i++) {
		buf_free(&list->v[i].name);
		buf_free(&list->v[i].adl);
		buf_free(&list->v[i].mbox);
		buf_free(&list->v[i].host);
	}
	free(list->v);
	memset(list, 0, sizeof(*list));
}

void
mime_addr_shown(const struct mime_addr *a, struct buf *name,
    struct buf *mbox, struct buf *host)
{
	if (a->kind == ADDR_GROUP)
		mime_human(mbox, a->mbox.p, a->mbox.len);
	if (a->kind != ADDR_MAILBOX)
		return;
	mime_human(name, a->name.p, a->name.len);
	if (a->mbox.len)
		buf_add(mbox, a->mbox.p, a->mbox.len);
	else
		buf_adds(mbox, "MISSING_MAILBOX");
	if (a->host.len)
		buf_add(host, a->host.p, a->host.len);
	else
		buf_adds(host, "MISSING_DOMAIN");
}

int
mime_first_address(const char *s, size_t n, struct buf *name,
    struct buf *mbox, struct buf *host)
{
	struct mime_addrs list;
	int ok;

	mime_addresses(s, n, &list);
	if ((ok = list.n > 0))
		mime_addr_shown(&list.v[0], name, mbox, host);
	mime_addrs_free(&list);
	return ok;
}

/* ---- the envelope ----------------------------------------------------- */

enum { E_DATE, E_SUBJECT, E_INREPLYTO, E_MSGID, E_FROM, E_SENDER,
	E_REPLYTO, E_TO, E_CC, E_BCC, E_N };

static const char *const envfields[E_N] = {
	"Date", "Subject", "In-Reply-To", "Message-ID", "From", "Sender",
	"Reply-To", "To", "Cc", "Bcc"
};

/* the envelope field a header field is, or -1 */
static int
envfield(const struct field *f)
{
	int i;

	/* most fields of a header are none: told by their first letter */
	if (!f->nlen || !strchr("dsimfrtcb", f->name[0] | 0x20))
		return -1;
	for (i = 0; i < E_N; i++)
		if (field_is(f, envfields[i]))
			return i;
	return -1;
}

void
mime_envelope(struct mime *m, int i, struct mime_envelope *e)
{
	struct mime_value *v[E_FROM], addr[E_N - E_FROM];
	struct mime_value *x;
	struct fwalk w;
	struct field f;
	size_t pos, he;
	int k;

	memset(e, 0, sizeof(*e));
	memset(addr, 0, sizeof(addr));
	v[E_DATE] = &e->date;
	v[E_SUBJECT] = &e->subject;
	v[E_INREPLYTO] = &e->inreplyto;
	v[E_MSGID] = &e->msgid;
	pos = i ? mime_part(m, i)->hdr : 0;
	he = i ? mime_part(m, i)->body : mime_header_end(m);
	fwalk_init(&w, m, pos, he);
	while (fwalk_next(&w, &f)) {
		if ((k = envfield(&f)) < 0)
			continue;
		x = k < E_FROM ? v[k] : &addr[k - E_FROM];
		if (k >= E_FROM && x->present)
			buf_addc(&x->v, ',');
		else
			buf_reset(&x->v);
		unfold(&x->v, f.val, f.vlen);
		x->present = 1;
	}
	for (k = 0; k < ENV_NADDR; k++) {
		mime_addresses(addr[k].v.p, addr[k].v.len, &e->addr[k]);
		buf_free(&addr[k].v);
	}
}

void
mime_envelope_free(struct mime_envelope *e)
{
	int k;

	buf_free(&e->date.v);
	buf_free(&e->subject.v);
	buf_free(&e->inreplyto.v);
	buf_free(&e->msgid.v);
	for (k = 0; k < ENV_NADDR; k++)
		mime_addrs_free(&e->addr[k]);
}
