/* fetch.c: FETCH and UID FETCH: the request parsed into items, then one
 * response per message, bodies streamed from the mapped file. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "imapform.h"
#include "io.h"
#include "maildir.h"
#include "mime.h"
#include "parse.h"
#include "partial.h"
#include "preview.h"
#include "savedate.h"
#include "util.h"
#include "session.h"

/* --- FETCH ------------------------------------------------------------ */

enum fetchkind {
	FA_UID, FA_FLAGS, FA_INTERNALDATE, FA_SIZE, FA_ENVELOPE, FA_BODY,
	FA_BODYSTRUCTURE, FA_SECTION, FA_BINARYSIZE, FA_MODSEQ, FA_EMAILID,
	FA_THREADID, FA_SAVEDATE, FA_PREVIEW
};

/* one item of a FETCH request */
struct fetchatt {
	enum fetchkind kind;
	const char *name;	/* as the response names it */
	struct section sec;
	int binary, peek;
	int partial;
	uint64_t from, count;
	const char *ckey;	/* its key in the message cache, or NULL */
};

struct fetchreq {
	struct fetchatt *a;
	size_t n, cap;
	int map;		/* a message must be mapped */
	int info;		/* INTERNALDATE or RFC822.SIZE: msg_info */
	int seen;		/* the request sets \Seen */
	int flags;		/* FLAGS was asked for */
	int modseq;		/* MODSEQ was asked for */
	int uid;		/* UID is among the items */
	uint64_t changedsince;	/* CHANGEDSINCE: only messages changed since */
	int vanished;		/* ... and VANISHED (EARLIER) for expunged */
	struct partial partial;	/* PARTIAL: one page of the messages */
	struct buf fl;		/* the flag list of flflags and flkw, */
	uint32_t flflags, flkw;	/* made once for each pair in a row */
};

static struct fetchatt *
att_add(struct fetchreq *r, enum fetchkind kind, const char *name)
{
	struct fetchatt *a;

	if (r->n == r->cap) {
		struct fetchatt *t;

		r->cap = r->cap ? 2 * r->cap : 8;
		t = p_alloc(r->cap * sizeof(*t));
		if (r->n)
			memcpy(t, r->a, r->n * sizeof(*t));
		r->a = t;
	}
	a = &r->a[r->n++];
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	a->name = name;
	if (kind == FA_FLAGS)
		r->flags = 1;
	if (kind == FA_MODSEQ)
		r->modseq = 1;
	if (kind == FA_INTERNALDATE || kind == FA_SIZE)
		r->info = 1;
	if (kind == FA_ENVELOPE || kind == FA_BODY ||
	    kind == FA_BODYSTRUCTURE || kind == FA_SECTION ||
	    kind == FA_BINARYSIZE || kind == FA_PREVIEW)
		r->map = 1;
	a->ckey = kind == FA_ENVELOPE ? "E" : kind == FA_BODY ? "b" :
	    kind == FA_BODYSTRUCTURE ? "B" : kind == FA_PREVIEW ?
	    PREVIEW_CACHE_KEY : NULL;
	return a;
}

/* the cache key of a header section of the message as a whole
 * ("S:HEADER.FIELDS (SUBJECT)"), or NULL for sections worth no entry */
static const char *
section_key(const struct section *sec, const char *name)
{
	size_t i, n = strlen(name);
	char *k;

	if (sec->npart || (sec->text != SEC_HEADER &&
	    sec->text != SEC_FIELDS && sec->text != SEC_FIELDS_NOT) ||
	    n > 200)
		return NULL;
	k = p_alloc(n + 3);
	memcpy(k, "S:", 2);
	for (i = 0; i < n; i++)
		k[i + 2] = name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32 :
		    name[i];
	k[n + 2] = '\0';
	return k;
}

/* BODY[...]<a.b>, BODY.PEEK[...], BINARY[...], BINARY.PEEK[...] and
 * BINARY.SIZE[...], as the parser read them */
static int
att_section(struct fetchreq *r, const struct fetchitem *it)
{
	struct fetchatt *a;
	struct buf spec = { 0 }, name = { 0 };
	int binary, size;

	binary = !ascii_ncasecmp(it->name, "BINARY", 6);
	size = !ascii_casecmp(it->name, "BINARY.SIZE");
	a = att_add(r, size ? FA_BINARYSIZE : FA_SECTION, NULL);
	a->binary = binary;
	a->peek = size || !ascii_casecmp(it->name, "BODY.PEEK") ||
	    !ascii_casecmp(it->name, "BINARY.PEEK");
	a->sec = it->sec;
	a->partial = it->partial;
	a->from = it->from;
	a->count = it->count;
	form_section(&spec, &a->sec);
	buf_printf(&name, "%s[%s]", size ? "BINARY.SIZE" : binary ? "BINARY" :
	    "BODY", spec.len ? spec.p : "");
	if (a->partial)
		buf_printf(&name, "<%llu>", (unsigned long long)a->from);
	a->name = p_strdup(name.p, name.len);
	if (!a->peek)
		r->seen = 1;
	if (!binary && !a->partial)
		a->ckey = section_key(&a->sec, spec.len ? spec.p : "");
	buf_free(&spec);
	buf_free(&name);
	return ST_OK;
}

/* RFC822, RFC822.HEADER and RFC822.TEXT are sections under old names */
static int
att_rfc822(struct fetchreq *r, const char *name, int text, int peek)
{
	struct fetchatt *a = att_add(r, FA_SECTION, name);

	a->peek = peek;
	a->sec.text = text;
	if (!peek)
		r->seen = 1;
	return ST_OK;
}

static int
fetch_att(struct fetchreq *r, const struct fetchitem *it)
{
	const char *t = it->name;

	if (it->section)
		return att_section(r, it);
	if (!ascii_casecmp(t, "UID")) {
		if (!r->uid)
			att_add(r, FA_UID, "UID");
		r->uid = 1;
	}
	else if (!ascii_casecmp(t, "FLAGS"))
		att_add(r, FA_FLAGS, "FLAGS");
	else if (!ascii_casecmp(t, "INTERNALDATE"))
		att_add(r, FA_INTERNALDATE, "INTERNALDATE");
	else if (!ascii_casecmp(t, "RFC822.SIZE"))
		att_add(r, FA_SIZE, "RFC822.SIZE");
	else if (!ascii_casecmp(t, "ENVELOPE"))
		att_add(r, FA_ENVELOPE, "ENVELOPE");
	else if (!ascii_casecmp(t, "BODY"))
		att_add(r, FA_BODY, "BODY");
	else if (!ascii_casecmp(t, "BODYSTRUCTURE"))
		att_add(r, FA_BODYSTRUCTURE, "BODYSTRUCTURE");
	else if (!ascii_casecmp(t, "EMAILID"))
		att_add(r, FA_EMAILID, "EMAILID");
	else if (!ascii_casecmp(t, "THREADID"))
		att_add(r, FA_THREADID, "THREADID");
	else if (!ascii_casecmp(t, "SAVEDATE"))
		att_add(r, FA_SAVEDATE, "SAVEDATE");
	else if (!ascii_casecmp(t, "PREVIEW")) {
		/* (LAZY) may put it off: it comes from the message cache
		 * when there, else it is made (and cached) at once */
		p_keyword(" (LAZY)");
		att_add(r, FA_PREVIEW, "PREVIEW");
	}
	else if (!ascii_casecmp(t, "MODSEQ"))
		att_add(r, FA_MODSEQ, "MODSEQ");
	else if (!ascii_casecmp(t, "RFC822"))
		return att_rfc822(r, "RFC822", SEC_ALL, 0);
	else if (!ascii_casecmp(t, "RFC822.HEADER"))
		return att_rfc822(r, "RFC822.HEADER", SEC_HEADER, 1);
	else if (!ascii_casecmp(t, "RFC822.TEXT"))
		return att_rfc822(r, "RFC822.TEXT", SEC_TEXT, 0);
	else
		return bad("Unknown fetch attribute");
	return ST_OK;
}

static int
fetch_macro(struct fetchreq *r, const char *t)
{
	int full = !ascii_casecmp(t, "FULL");

	if (!full && ascii_casecmp(t, "ALL") && ascii_casecmp(t, "FAST"))
		return 0;
	att_add(r, FA_FLAGS, "FLAGS");
	att_add(r, FA_INTERNALDATE, "INTERNALDATE");
	att_add(r, FA_SIZE, "RFC822.SIZE");
	if (ascii_casecmp(t, "FAST"))
		att_add(r, FA_ENVELOPE, "ENVELOPE");
	if (full)
		att_add(r, FA_BODY, "BODY");
	return 1;
}

static int
fetch_parse(struct fetchreq *r, int uid)
{
	struct fetchitem it;
	int rc;

	memset(r, 0, sizeof(*r));
	if (uid)
		att_add(r, FA_UID, "UID");
	r->uid = uid;
	if (!p_char('(')) {
		if (p_fetchatt(&it) < 0)
			return ST_BAD;
		if (!it.section && fetch_macro(r, it.name))
			return ST_OK;
		return fetch_att(r, &it);
	}
	do {
		if (p_fetchatt(&it) < 0)
			return ST_BAD;
		if ((rc = fetch_att(r, &it)) != ST_OK)
			return rc;
	} while (p_char(' '));
	if (!p_char(')'))
		return bad("Expected ')'");
	return ST_OK;
}

/* FETCH ... (CHANGEDSINCE modseq [VANISHED]) of RFC 7162 and (PARTIAL
 * range) of RFC 9394, in any order */
static int
fetch_modifiers(struct fetchreq *r, int uid)
{
	if (!p_char('('))
		return bad("Invalid FETCH modifier");
	do {
		if (p_keyword("CHANGEDSINCE")) {
			if (p_sp() < 0 || p_number64(&r->changedsince) < 0 ||
			    r->changedsince == 0)
				return bad("Invalid CHANGEDSINCE");
		} else if (p_keyword("VANISHED")) {
			r->vanished = 1;
		} else if (p_keyword("PARTIAL") && !r->partial.lo) {
			if (p_sp() < 0 || partial_parse(&r->partial) < 0)
				return ST_BAD;
		} else {
			return bad("Invalid FETCH modifier");
		}
	} while (p_char(' '));
	if (!p_char(')'))
		return bad("Expected ')'");
	if (r->vanished && (!uid || !sess.qresync || !r->changedsince))
		return bad("VANISHED needs UID FETCH, QRESYNC and CHANGEDSINCE");
	if (!r->changedsince)
		return ST_OK;
	if (!r->modseq)
		att_add(r, FA_MODSEQ, "MODSEQ");
	return ST_OK;
}

static void
emit_io(void *arg, const char *p, size_t n)
{
	io_write(p, n);
}

static char *
put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

static char *
put_num(char *p, uint64_t v)
{
	char room[24], *s = dec_digits(room + sizeof(room), v);

	return put(p, s, room + sizeof(room) - s);
}

/* "name v", without printf */
static void
io_num(const char *name, uint64_t v)
{
	char room[24], *s = dec_digits(room + sizeof(room), v);

	io_puts(name);
	io_write(s, room + sizeof(room) - s);
}

/* two digits of v, at most 99 */
static char *
put2(char *p, int v)
{
	*p++ = '0' + v / 10;
	*p++ = '0' + v % 10;
	return p;
}

static void
fetch_date(const char *name, time_t t)
{
	char room[64], *p = room;
	struct tm tm;
	long off;

	localtime_r(&t, &tm);
	off = tm.tm_gmtoff / 60;
	if (tm.tm_year + 1900 < 1000 || tm.tm_year + 1900 > 9999 ||
	    labs(off) / 60 > 99) {
		io_printf("%s \"%02d-%s-%04d %02d:%02d:%02d %c%02ld%02ld\"",
		    name, tm.tm_mday, month_names[tm.tm_mon],
		    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
		    off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
		return;
	}
	/* the common case by hand: a header sync dates every message */
	p = put(p, " \"", 2);
	p = put2(p, tm.tm_mday);
	*p++ = '-';
	p = put(p, month_names[tm.tm_mon], 3);
	*p++ = '-';
	p = put2(put2(p, (tm.tm_year + 1900) / 100), (tm.tm_year + 1900) % 100);
	*p++ = ' ';
	p = put2(p, tm.tm_hour);
	*p++ = ':';
	p = put2(p, tm.tm_min);
	*p++ = ':';
	p = put2(p, tm.tm_sec);
	*p++ = ' ';
	*p++ = off < 0 ? '-' : '+';
	p = put2(put2(p, labs(off) / 60), labs(off) % 60);
	*p++ = '"';
	io_puts(name);
	io_write(room, p - room);
}

static int
fetch_section(struct fetchatt *a, struct mime *m)
{
	struct sectiondata *sd;
	uint64_t size, from = 0, count;

	if (!(sd = mime_section(m, &a->sec, a->binary, &size)))
		return -1;
	if (a->kind == FA_BINARYSIZE) {
		io_printf("%s %llu", a->name, (unsigned long long)size);
		section_close(sd);
		return 0;
	}
	count = size;
	if (a->partial) {
		from = MIN(a->from, size);
		count = MIN(a->count, size - from);
	}
	io_printf("%s %s{%llu}\r\n", a->name, a->binary ? "~" : "",
	    (unsigned long long)count);
	section_write(sd, from, count, emit_io, NULL);
	section_close(sd);
	return 0;
}

/* a message that is there but cannot be read: logged, -2 */
static int
unreadable(uint32_t uid)
{
	logmsg(LOG_ERR, "FETCH: cannot read UID %u: %s", uid,
	    strerror(errno));
	return -2;
}

static void
emit_buf(void *arg, const char *p, size_t n)
{
	buf_add(arg, p, n);
}

/* the message must be mapped: some item it asks for is not cached */
static int
needs_map(struct fetchreq *r, long k)
{
	size_t i, len;

	if (!r->map)
		return 0;
	for (i = 0; i < r->n; i++)
		if ((r->a[i].kind == FA_ENVELOPE || r->a[i].kind == FA_BODY ||
		    r->a[i].kind == FA_BODYSTRUCTURE ||
		    r->a[i].kind == FA_SECTION || r->a[i].kind == FA_PREVIEW ||
		    r->a[i].kind == FA_BINARYSIZE) && (!r->a[i].ckey ||
		    !msgcache_get(&sess.f, k, r->a[i].ckey, &len)))
			return 1;
	return 0;
}

/* the message mapped if an item needs it, its internal date and size if
 * asked for: from one look at the file when it is mapped anyway */
static int
look(struct fetchreq *r, long k, struct msgmap *mm, int *map, time_t *date,
    uint64_t *size)
{
	if (!(*map = needs_map(r, k)))
		return r->info ? msg_info(&sess.f, k, date, size) : 0;
	if (msg_map(&sess.f, k, mm) < 0)
		return -1;
	if (r->info && msg_info_mapped(&sess.f, k, mm, date, size) < 0) {
		msg_unmap(mm);
		*map = 0;
		return -1;
	}
	return 0;
}

/* an item the cache does not have, made from the mapped message and
 * cached; in b.  -1 when it could not be had */
static int
made(struct fetchatt *a, long k, const struct msgmap *mm, struct mime *m,
    struct buf *b)
{
	struct sectiondata *sd;
	uint64_t size;

	if (!mm->p) {		/* the cache failed between two looks */
		if (a->kind != FA_PREVIEW)
			buf_adds(b, "NIL");
		return -1;
	}
	if (a->kind == FA_PREVIEW)
		preview_make(b, m);
	else if (a->kind == FA_ENVELOPE)
		form_envelope(b, m);
	else if (a->kind == FA_SECTION) {
		if (!(sd = mime_section(m, &a->sec, 0, &size)))
			return -1;
		section_write(sd, 0, size, emit_buf, b);
		section_close(sd);
	} else
		form_body(b, m, a->kind == FA_BODYSTRUCTURE);
	if (k >= 0)
		msgcache_put(&sess.f, k, a->ckey, b->p, b->len);
	return 0;
}

/* an item derived from the message: from the cache, else made; in b */
static int
derived(struct fetchatt *a, long k, const struct msgmap *mm, struct mime *m,
    struct buf *b)
{
	const char *v;
	size_t len;

	if (k >= 0 && (v = msgcache_get(&sess.f, k, a->ckey, &len))) {
		buf_add(b, v, len);
		return 0;
	}
	return made(a, k, mm, m, b);
}

/* a derived item as derived() gives it, straight from the message cache
 * when it is there (written from there, not copied) */
static const char *
item_of(struct fetchatt *a, long k, const struct msgmap *mm, struct mime *m,
    struct buf *b, size_t *len)
{
	const char *v;

	if (k >= 0 && (v = msgcache_get(&sess.f, k, a->ckey, len)))
		return v;
	made(a, k, mm, m, b);
	*len = b->len;
	return b->p ? b->p : "";
}

/* one "* n FETCH (...)" response; -2 when the message is there but cannot
 * be read.  A message another session expunged (its EXPUNGE not sent yet)
 * answers as an empty one, with the UID, flags and modseq last told
 * (RFC 2180 4.1.3). */
static int
fetch_one(struct fetchreq *r, size_t vi, int *cte)
{
	struct msg *m = &sess.v.m[vi];
	char id[64];
	struct msgmap mm = { 0 };
	struct mime *msg;
	struct buf b = { 0 };
	time_t date = 0, saved;
	uint64_t size = 0;
	const char *v;
	size_t i, len;
	long k;
	int seen = 0, map = 0;

	/* UID and FLAGS come from memory: no file is looked at */
	if ((k = store_index(vi)) >= 0 &&
	    look(r, k, &mm, &map, &date, &size) < 0) {
		if (errno != ENOENT)
			return unreadable(m->uid);
		k = -1;
		map = 0;
	}
	if (k < 0) {
		mm.p = "";
		mm.len = 0;
	}
	if (k >= 0 && r->seen && !sess.readonly && !(m->flags & FL_SEEN) &&
	    folder_setflags(&sess.f, k, (m->flags & ~FL_RECENT) | FL_SEEN,
	    m->kw) == 0) {
		m = view_w(vi);
		m->flags |= FL_SEEN;
		m->modseq = sess.f.msgs[k].modseq;
		seen = 1;
	}
	/* one look at the message for all the items: its part tree is
	 * parsed once, when the first item needs it */
	msg = mime_open(mm.p ? mm.p : "", mm.p ? mm.len : 0);
	fetch_open(vi);
	for (i = 0; i < r->n; i++) {
		struct fetchatt *a = &r->a[i];

		if (i)
			io_puts(" ");
		switch (a->kind) {
		case FA_UID:
			io_num("UID ", m->uid);
			break;
		case FA_EMAILID:
			if (k < 0 || msg_id(&sess.f, k, id, sizeof(id)) < 0)
				io_puts("EMAILID NIL");
			else
				io_printf("EMAILID (%s)", id);
			break;
		case FA_THREADID:
			io_puts("THREADID NIL");	/* no threads kept */
			break;
		case FA_MODSEQ:
			if (k >= 0 && m->modseq != sess.f.msgs[k].modseq)
				(m = view_w(vi))->modseq = sess.f.msgs[k].modseq;
			io_printf("MODSEQ (%llu)",
			    (unsigned long long)m->modseq);
			break;
		case FA_FLAGS:
			if (!r->fl.len || m->flags != r->flflags ||
			    m->kw != r->flkw) {
				buf_reset(&r->fl);
				flag_list(&r->fl, m->flags, m->kw);
				r->flflags = m->flags;
				r->flkw = m->kw;
			}
			io_puts("FLAGS ");
			io_write(r->fl.p, r->fl.len);
			break;
		case FA_INTERNALDATE:
			fetch_date("INTERNALDATE", date);
			break;
		case FA_PREVIEW:
			io_puts("PREVIEW ");
			if (derived(a, k, &mm, msg, &b) < 0) {
				io_puts("NIL");
			} else if (b.len) {
				struct buf q = { 0 };

				buf_addstr(&q, b.p, b.len);
				io_write(q.p, q.len);
				buf_free(&q);
			} else {
				io_puts("\"\"");
			}
			buf_reset(&b);
			break;
		case FA_SAVEDATE:
			if (savedate_get(&sess.f, k, &saved) < 0)
				io_puts("SAVEDATE NIL");
			else
				fetch_date("SAVEDATE", saved);
			break;
		case FA_SIZE:
			io_num("RFC822.SIZE ", size);
			break;
		case FA_ENVELOPE:
		case FA_BODY:
		case FA_BODYSTRUCTURE:
			v = item_of(a, k, &mm, msg, &b, &len);
			io_puts(a->name);
			io_write(" ", 1);
			io_write(v, len);
			buf_reset(&b);
			break;
		case FA_SECTION:
			if (a->ckey) {
				v = item_of(a, k, &mm, msg, &b, &len);
				io_puts(a->name);
				io_num(" {", len);
				io_write("}\r\n", 3);
				io_write(v, len);
				buf_reset(&b);
				break;
			}
			/* FALLTHROUGH */
		case FA_BINARYSIZE:
			if (fetch_section(a, msg) < 0) {
				io_printf("%s NIL", a->name);
				*cte |= k >= 0;
			}
			break;
		}
	}
	if (seen && !r->flags) {
		flag_list(&b, m->flags, m->kw);
		io_printf(" FLAGS %s", b.p);
	}
	/* RFC 7162 3.2.4: a FETCH that set \Seen changed the flags, and
	 * then carries UID and MODSEQ like any flag change; otherwise the
	 * items asked for and no more */
	if (seen && sess.condstore && !r->uid)
		io_printf(" UID %u", m->uid);
	if (seen && sess.condstore && !r->modseq)
		io_printf(" MODSEQ (%llu)", (unsigned long long)m->modseq);
	io_puts(")\r\n");
	mime_close(msg);
	buf_free(&b);
	if (map)
		msg_unmap(&mm);
	return 0;
}

/* only UID, FLAGS and MODSEQ, nothing set: answered from the view alone */
static int
flags_only(const struct fetchreq *r)
{
	size_t i;

	if (r->seen)
		return 0;
	for (i = 0; i < r->n; i++)
		if (r->a[i].kind != FA_UID && r->a[i].kind != FA_FLAGS &&
		    r->a[i].kind != FA_MODSEQ)
			return 0;
	return 1;
}

/* The responses of a flags_only request, one write each: what a client
 * resyncing a folder asks of every message.  No file is looked at, and a
 * flag list is formatted once for each new (flags, keywords) pair. */
static void
fetch_flags(const struct fetchreq *r, const size_t *vi, size_t nv)
{
	struct buf fl = { 0 };
	uint32_t flags = 0, kw = 0;
	size_t i, j, cap = 0, need;
	char *line = NULL, *p;
	long k;
	int have = 0;

	for (i = 0; i < nv; i++) {
		struct msg *m = &sess.v.m[vi[i]];

		if (r->flags && (!have || m->flags != flags || m->kw != kw)) {
			buf_reset(&fl);
			flag_list(&fl, m->flags, m->kw);
			flags = m->flags;
			kw = m->kw;
			have = 1;
		}
		/* numbers of 20 digits at most, words of 16 octets */
		if ((need = 64 + r->n * (48 + fl.len)) > cap) {
			free(line);
			line = xmalloc(cap = 2 * need);
		}
		p = line;
		if (sess.uidonly)
			p = put(put_num(put(p, "* UIDFETCH ", 11), m->uid), " (",
			    2);
		else
			p = put(put_num(put(p, "* ", 2), vi[i] + 1), " FETCH (",
			    8);
		for (j = 0; j < r->n; j++) {
			if (j)
				*p++ = ' ';
			switch (r->a[j].kind) {
			case FA_UID:
				p = put_num(put(p, "UID ", 4), m->uid);
				break;
			case FA_FLAGS:
				p = put(put(p, "FLAGS ", 6), fl.p, fl.len);
				break;
			default:	/* FA_MODSEQ */
				k = store_index(vi[i]);
				if (k >= 0 && m->modseq != sess.f.msgs[k].modseq)
					(m = view_w(vi[i]))->modseq =
					    sess.f.msgs[k].modseq;
				p = put(put_num(put(p, "MODSEQ (", 8),
				    m->modseq), ")", 1);
				break;
			}
		}
		p = put(p, ")\r\n", 3);
		io_write(line, p - line);
	}
	free(line);
	buf_free(&fl);
}

int
cmd_fetch(const char *tag, int uid)
{
	struct seqset set;
	struct fetchreq req;
	size_t *vi, nv, i, n, from = 0;
	int r, cte = 0, unavailable = 0;
	long k;

	if (p_sp() < 0 || p_seqset(&set) < 0 || p_sp() < 0)
		return ST_BAD;
	r = fetch_parse(&req, uid);
	if (r == ST_OK && p_char(' '))
		r = fetch_modifiers(&req, uid);
	if (r == ST_OK && p_end() < 0)
		r = ST_BAD;
	if (r == ST_OK)
		r = set_indexes_since(&set, uid, req.changedsince, &vi, &nv);
	/* IMAP4rev2: every FETCH names its UID */
	if (r == ST_OK && !req.uid && sess.rev2)
		att_add(&req, FA_UID, "UID");
	if (r != ST_OK)
		return r;
	if (req.modseq)
		condstore_on();
	if (req.vanished)
		vanished_earlier(&set, req.changedsince);
	for (i = n = 0; i < nv; i++) {
		k = store_index(vi[i]);
		if (req.changedsince &&
		    (k < 0 || sess.f.msgs[k].modseq <= req.changedsince))
			continue;
		vi[n++] = vi[i];
	}
	/* PARTIAL pages through the messages that would be fetched */
	nv = req.partial.lo ? partial_window(&req.partial, n, &from) : n;
	if (flags_only(&req)) {
		fetch_flags(&req, vi + from, nv);
		nv = 0;
	}
	for (i = 0; i < nv; i++) {
		if (fetch_one(&req, vi[from + i], &cte) == -2)
			unavailable = 1;
	}
	buf_free(&req.fl);
	if (unavailable)
		return no("UNAVAILABLE", "Some messages cannot be read now");
	if (cte)
		return no("UNKNOWN-CTE", "Cannot decode a part's encoding");
	return ok(NULL, "FETCH completed");
}

/* NOTIFY's FETCH items (MessageNew, UPDATE), for messages that just
 * arrived */
int
fetch_items(char *const *items, size_t n, const size_t *vi, size_t nv)
{
	struct fetchreq req;
	struct fetchitem it;
	size_t i;
	int r = ST_OK, cte = 0;

	memset(&req, 0, sizeof(req));
	for (i = 0; i < n && r == ST_OK; i++)
		r = p_fetchatt_text(items[i], &it) < 0 ? ST_BAD :
		    fetch_att(&req, &it);
	if (r == ST_OK && req.seen)
		r = bad("Items for new messages must not set \\Seen (use "
		    "BODY.PEEK)");
	if (r == ST_OK && !req.uid && sess.rev2)
		att_add(&req, FA_UID, "UID");
	for (i = 0; r == ST_OK && i < nv; i++)
		fetch_one(&req, vi[i], &cte);
	buf_free(&req.fl);
	return r;
}
