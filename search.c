/* search.c: the SEARCH program.  Parsed into a tree whose AND lists are
 * ordered cheapest first, so flags and UIDs decide before a message file
 * is ever opened. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fts.h"
#include "imapform.h"
#include "search.h"
#include "io.h"
#include "maildir.h"
#include "mime.h"
#include "parse.h"
#include "savedate.h"
#include "util.h"
#include "session.h"

#define DEPTH_MAX 64

enum sktype {
	SK_ALL, SK_FLAG, SK_UNFLAG, SK_KEYWORD, SK_UNKEYWORD, SK_NEW, SK_OLD,
	SK_RECENT, SK_SEQ, SK_UID, SK_LARGER, SK_SMALLER, SK_BEFORE, SK_ON,
	SK_SINCE, SK_SENTBEFORE, SK_SENTON, SK_SENTSINCE, SK_HEADER, SK_BODY,
	SK_TEXT, SK_MODSEQ, SK_EMAILID, SK_THREADID, SK_OLDER, SK_YOUNGER,
	SK_SAVEDBEFORE, SK_SAVEDON, SK_SAVEDSINCE, SK_NOT, SK_OR, SK_AND
};

struct sk {
	enum sktype type;
	uint32_t flag;
	uint64_t n;
	long long day;
	time_t at;		/* OLDER, YOUNGER: now less the interval */
	const char *field, *str;
	struct seqset set;
	struct sk *a, *b;	/* NOT: a; OR: a, b; AND: list from a */
	struct sk *next;
	int cost;
	int fts;		/* the full-text index answered: FTS_EXACT */
	uint32_t *hits, *todo;	/* its UIDs that match, and to read */
	size_t nhits, ntodo;
};

struct search {
	struct sk *root;
	const char *charset;
	int modseq;		/* MODSEQ was used: the reply names the highest */
	int asked;		/* the full-text index was asked */
	int seq;		/* sequence numbers were used */
};

/* the state of one message while a program runs over it */
struct ctx {
	struct folder *f;
	struct view *v;
	size_t i;
	long k;			/* index in the store */
	struct msgmap mm;
	int mapped;
	struct mime *msg;	/* mapped: its part tree, one for every key */
	int info;
	time_t date;
	uint64_t size;
};

static const struct {
	const char *name;
	uint32_t flag;
	enum sktype type;
} flagkeys[] = {
	{ "ANSWERED", FL_ANSWERED, SK_FLAG },
	{ "DELETED", FL_DELETED, SK_FLAG },
	{ "DRAFT", FL_DRAFT, SK_FLAG },
	{ "FLAGGED", FL_FLAGGED, SK_FLAG },
	{ "SEEN", FL_SEEN, SK_FLAG },
	{ "UNANSWERED", FL_ANSWERED, SK_UNFLAG },
	{ "UNDELETED", FL_DELETED, SK_UNFLAG },
	{ "UNDRAFT", FL_DRAFT, SK_UNFLAG },
	{ "UNFLAGGED", FL_FLAGGED, SK_UNFLAG },
	{ "UNSEEN", FL_SEEN, SK_UNFLAG },
	{ "RECENT", FL_RECENT, SK_FLAG },
	{ "NEW", 0, SK_NEW },
	{ "OLD", FL_RECENT, SK_UNFLAG },
	{ "ALL", 0, SK_ALL },
	/* every mailbox here has save dates (RFC 8514) */
	{ "SAVEDATESUPPORTED", 0, SK_ALL },
};

static const struct {
	const char *name;
	enum sktype type;
} datekeys[] = {
	{ "BEFORE", SK_BEFORE }, { "ON", SK_ON }, { "SINCE", SK_SINCE },
	{ "SENTBEFORE", SK_SENTBEFORE }, { "SENTON", SK_SENTON },
	{ "SENTSINCE", SK_SENTSINCE },
	/* SAVEDATE (RFC 8514) */
	{ "SAVEDBEFORE", SK_SAVEDBEFORE }, { "SAVEDON", SK_SAVEDON },
	{ "SAVEDSINCE", SK_SAVEDSINCE },
};

static const struct {
	const char *name;
	const char *field;
} headerkeys[] = {
	{ "FROM", "From" }, { "TO", "To" }, { "CC", "Cc" }, { "BCC", "Bcc" },
	{ "SUBJECT", "Subject" },
};

static struct sk *parse_key(struct search *, int depth);

static struct sk *
node(enum sktype type, int cost)
{
	struct sk *k = p_alloc(sizeof(*k));

	memset(k, 0, sizeof(*k));
	k->type = type;
	k->cost = cost;
	return k;
}

static void *
badp(const char *why)
{
	if (!perr)
		perr = why;
	return NULL;
}

/* a search string, converted to UTF-8 from the CHARSET given */
static const char *
search_string(struct search *s)
{
	struct buf b = { 0 };
	const char *str;
	char *out;
	size_t n;

	if (p_sp() < 0 || !(str = p_astring(&n)))
		return NULL;
	if (!s->charset || !ascii_casecmp(s->charset, "UTF-8") ||
	    !ascii_casecmp(s->charset, "US-ASCII"))
		return str;
	if (mime_to_utf8(&b, s->charset, str, n) < 0) {
		buf_free(&b);
		return badp("Cannot convert the search string");
	}
	out = p_strdup(b.p ? b.p : "", b.len);
	buf_free(&b);
	return out;
}

/* AND the keys of a list, cheapest first */
static struct sk *
and_list(struct sk *first)
{
	struct sk *n = node(SK_AND, 0), *k, **pp, *next;

	for (k = first; k; k = next) {
		next = k->next;
		for (pp = &n->a; *pp && (*pp)->cost <= k->cost;
		    pp = &(*pp)->next)
			;
		k->next = *pp;
		*pp = k;
		n->cost = MAX(n->cost, k->cost);
	}
	return n;
}

static struct sk *
parse_list(struct search *s, int depth)
{
	struct sk *first = NULL, **tail = &first, *k;

	do {
		if (!(k = parse_key(s, depth)))
			return NULL;
		*tail = k;
		tail = &k->next;
	} while (p_char(' '));
	return and_list(first);
}

static struct sk *
parse_named(struct search *s, const char *w, int depth)
{
	struct sk *k;
	size_t i;

	for (i = 0; i < LEN(flagkeys); i++) {
		if (ascii_casecmp(w, flagkeys[i].name))
			continue;
		k = node(flagkeys[i].type, 0);
		k->flag = flagkeys[i].flag;
		return k;
	}
	for (i = 0; i < LEN(datekeys); i++) {
		if (ascii_casecmp(w, datekeys[i].name))
			continue;
		k = node(datekeys[i].type, i < 3 ? 1 : i < 6 ? 3 : 2);
		if (p_sp() < 0 || p_date(&k->day) < 0)
			return NULL;
		return k;
	}
	for (i = 0; i < LEN(headerkeys); i++) {
		if (ascii_casecmp(w, headerkeys[i].name))
			continue;
		k = node(SK_HEADER, 3);
		k->field = headerkeys[i].field;
		if (!(k->str = search_string(s)))
			return NULL;
		return k;
	}
	if (!ascii_casecmp(w, "KEYWORD") || !ascii_casecmp(w, "UNKEYWORD")) {
		k = node(w[0] == 'K' || w[0] == 'k' ? SK_KEYWORD :
		    SK_UNKEYWORD, 0);
		if (p_sp() < 0 || !(k->str = p_flag()))
			return NULL;
		return k;
	}
	if (!ascii_casecmp(w, "LARGER") || !ascii_casecmp(w, "SMALLER")) {
		k = node(w[0] == 'L' || w[0] == 'l' ? SK_LARGER : SK_SMALLER,
		    1);
		if (p_sp() < 0 || p_number64(&k->n) < 0)
			return NULL;
		return k;
	}
	if (!ascii_casecmp(w, "OLDER") || !ascii_casecmp(w, "YOUNGER")) {
		/* WITHIN (RFC 5032): an age in seconds, fixed when parsed */
		k = node(w[0] == 'O' || w[0] == 'o' ? SK_OLDER : SK_YOUNGER, 1);
		if (p_sp() < 0 || p_number64(&k->n) < 0 || k->n == 0 ||
		    k->n > UINT32_MAX)
			return badp("Expected an interval in seconds");
		k->at = time(NULL) - (time_t)k->n;
		return k;
	}
	if (!ascii_casecmp(w, "UID")) {
		k = node(SK_UID, 0);
		if (p_sp() < 0 || p_seqset(&k->set) < 0)
			return NULL;
		return k;
	}
	if (!ascii_casecmp(w, "HEADER")) {
		k = node(SK_HEADER, 3);
		if (p_sp() < 0 || !(k->field = p_astring(NULL)) ||
		    !(k->str = search_string(s)))
			return NULL;
		return k;
	}
	if (!ascii_casecmp(w, "BODY") || !ascii_casecmp(w, "TEXT")) {
		k = node(w[0] == 'B' || w[0] == 'b' ? SK_BODY : SK_TEXT, 4);
		if (!(k->str = search_string(s)))
			return NULL;
		return k;
	}
	if (!ascii_casecmp(w, "EMAILID") || !ascii_casecmp(w, "THREADID")) {
		/* OBJECTID (RFC 8474); no threads are kept, so no THREADID
		 * ever matches */
		k = node(w[0] == 'E' || w[0] == 'e' ? SK_EMAILID : SK_THREADID,
		    2);
		if (p_sp() < 0 || !(k->str = p_atom()))
			return NULL;
		return k;
	}
	if (!ascii_casecmp(w, "MODSEQ")) {
		/* MODSEQ ["/flags/name" priv|shared|all] modseq: flag
		 * changes share one modseq per message here, so the entry
		 * only has to be well formed */
		k = node(SK_MODSEQ, 0);
		if (p_sp() < 0)
			return NULL;
		if (p_peek() == '"') {
			if (!p_string(NULL) || p_sp() < 0 || !(w = p_atom()) ||
			    (ascii_casecmp(w, "priv") && ascii_casecmp(w,
			    "shared") && ascii_casecmp(w, "all")) || p_sp() < 0)
				return badp("Invalid MODSEQ entry");
		}
		if (p_number64(&k->n) < 0)
			return NULL;
		s->modseq = 1;
		return k;
	}
	if (!ascii_casecmp(w, "NOT")) {
		k = node(SK_NOT, 0);
		if (p_sp() < 0 || !(k->a = parse_key(s, depth + 1)))
			return NULL;
		k->cost = k->a->cost;
		return k;
	}
	if (!ascii_casecmp(w, "OR")) {
		k = node(SK_OR, 0);
		if (p_sp() < 0 || !(k->a = parse_key(s, depth + 1)) ||
		    p_sp() < 0 || !(k->b = parse_key(s, depth + 1)))
			return NULL;
		k->cost = MAX(k->a->cost, k->b->cost);
		return k;
	}
	return badp("Unknown search key");
}

static struct sk *
parse_key(struct search *s, int depth)
{
	struct sk *k;
	char *w;
	int c = p_peek();

	if (depth > DEPTH_MAX)
		return badp("Search program nested too deeply");
	if (c == '(') {
		p_char('(');
		if (!(k = parse_list(s, depth + 1)))
			return NULL;
		if (!p_char(')'))
			return badp("Expected ')'");
		return k;
	}
	if ((c >= '0' && c <= '9') || c == '*' || c == '$') {
		k = node(SK_SEQ, 0);
		if (p_seqset(&k->set) < 0)
			return NULL;
		s->seq = 1;
		return k;
	}
	if (!(w = p_atom()))
		return NULL;
	return parse_named(s, w, depth);
}

int
search_uses_modseq(struct search *s)
{
	return s->modseq;
}

static int
charset_known(const char *charset)
{
	struct buf b = { 0 };
	int r;

	if (!ascii_casecmp(charset, "UTF-8") ||
	    !ascii_casecmp(charset, "US-ASCII"))
		return 1;
	r = mime_to_utf8(&b, charset, "", 0) == 0;
	buf_free(&b);
	return r;
}

struct search *
search_parse_keys(const char *charset, const char **code)
{
	struct search *s = p_alloc(sizeof(*s));

	memset(s, 0, sizeof(*s));
	*code = NULL;
	if (charset && !charset_known(charset)) {
		*code = "BADCHARSET (US-ASCII UTF-8)";
		return badp("Unknown charset");
	}
	s->charset = charset;
	if (!(s->root = parse_list(s, 0)))
		return NULL;
	if (s->seq && sess.uidonly) {
		*code = "UIDREQUIRED";
		return badp("Message sequence numbers are not allowed");
	}
	return s;
}

struct search *
search_parse(int uid_cmd, const char **code)
{
	const char *charset = NULL;

	*code = NULL;
	if (p_keyword("CHARSET") && (p_sp() < 0 ||
	    !(charset = p_astring(NULL)) || p_sp() < 0))
		return NULL;
	return search_parse_keys(charset, code);
}

void
search_limits(struct search *s, uint32_t maxseq, uint32_t maxuid)
{
	struct sk *stack[DEPTH_MAX * 2 + 8], *k;
	size_t n = 0;

	stack[n++] = s->root;
	while (n) {
		k = stack[--n];
		for (; k; k = k->next) {
			if (k->type == SK_SEQ && !k->set.dollar)
				seq_resolve(&k->set, maxseq);
			if (k->type == SK_UID && !k->set.dollar)
				seq_resolve(&k->set, maxuid);
			if (k->a && n < LEN(stack))
				stack[n++] = k->a;
			if (k->b && n < LEN(stack))
				stack[n++] = k->b;
		}
	}
}

static int
need_info(struct ctx *c)
{
	if (!c->info) {
		if (c->k < 0 || msg_info(c->f, c->k, &c->date, &c->size) < 0)
			return -1;
		c->info = 1;
	}
	return 0;
}

static int
need_map(struct ctx *c)
{
	if (!c->mapped) {
		if (c->k < 0 || msg_map(c->f, c->k, &c->mm) < 0)
			return -1;
		c->mapped = 1;
		c->msg = mime_open(c->mm.p ? c->mm.p : "",
		    c->mm.p ? c->mm.len : 0);
	}
	return 0;
}

static long long
local_day(time_t t)
{
	struct tm tm;

	localtime_r(&t, &tm);
	return (t + tm.tm_gmtoff) / 86400 - ((t + tm.tm_gmtoff) % 86400 < 0);
}

static int
compare_day(enum sktype type, long long day, long long want)
{
	switch (type) {
	case SK_BEFORE:
	case SK_SENTBEFORE:
	case SK_SAVEDBEFORE:
		return day < want;
	case SK_ON:
	case SK_SENTON:
	case SK_SAVEDON:
		return day == want;
	default:
		return day >= want;
	}
}

/* "$" names the saved result, which is kept as UIDs whatever named it */
static int
in_set(const struct seqset *set, uint32_t v, uint32_t uid)
{
	if (set->dollar)
		return sess.search_saved && seq_has(sess.search_saved, uid);
	return seq_has(set, v);
}

static int eval(struct sk *, struct ctx *);

static void
search_emit(void *arg, const char *p, size_t n)
{
	buf_add(arg, p, n);
}

/* a cached header section holding field: "HEADER", or "HEADER.FIELDS
 * (...)" naming it (FETCH leaves those behind) */
struct hdrwant {
	struct sk *k;
	int match;
	char last[256];		/* the key last found to hold it */
	size_t lastlen;
};

static int
hdr_item(const char *key, size_t klen, const char *val, size_t len,
    void *arg)
{
	struct hdrwant *w = arg;
	size_t flen = strlen(w->k->field), i;
	const char *l;

	if (klen == 8 && !memcmp(key, "S:HEADER", 8))
		goto found;
	if (klen < 18 || memcmp(key, "S:HEADER.FIELDS (", 17))
		return 0;
	/* every message of a header sync has the same key */
	if (klen == w->lastlen && !memcmp(key, w->last, klen))
		goto found;
	for (i = 17; i + flen < klen; i++) {
		l = key + i;
		if ((l[-1] == '(' || l[-1] == ' ') && (l[flen] == ' ' ||
		    l[flen] == ')') && !ascii_ncasecmp(l, w->k->field, flen)) {
			if (klen <= sizeof(w->last)) {
				memcpy(w->last, key, klen);
				w->lastlen = klen;
			}
			goto found;
		}
	}
	return 0;
found:
	w->match = mime_match_header(val, len, w->k->field, w->k->str);
	return 1;
}

/* the field of a HEADER key as a section can name it: an atom */
static int
field_atom(const char *field)
{
	const char *p;

	for (p = field; p && *p && p_atomchar((unsigned char)*p); p++)
		;
	return p && p != field && !*p && strlen(field) <= 100;
}

/* HEADER field string from the message cache when a header section
 * there holds the field, else from the message; the field's lines are
 * cached for the next search */
static int
match_header(struct sk *k, struct ctx *c)
{
	struct hdrwant w = { .k = k };
	struct sectiondata *sd;
	struct section sec = { .text = SEC_FIELDS, .nfields = 1 };
	struct buf spec = { 0 }, b = { 0 };
	uint64_t size;

	if (!field_atom(k->field))
		goto whole;
	sec.fields = &k->field;
	if (msgcache_each(c->f, c->k, hdr_item, &w))
		return w.match;
	buf_adds(&spec, "S:");	/* the key FETCH gives this section */
	form_section(&spec, &sec);
	if (need_map(c) < 0) {
		buf_free(&spec);
		goto whole;
	}
	if ((sd = mime_section(c->msg, &sec, 0, &size))) {
		section_write(sd, 0, size, search_emit, &b);
		section_close(sd);
		msgcache_put(c->f, c->k, spec.p, b.p, b.len);
	}
	w.match = mime_match_header(b.p ? b.p : "", b.len, k->field, k->str);
	buf_free(&spec);
	buf_free(&b);
	return w.match;
whole:
	if (need_map(c) < 0)
		return 0;
	return mime_match_header(c->mm.p, c->mm.len, k->field, k->str);
}

/* A HEADER key answered from the message cache for the whole folder, as
 * the full-text index would answer it: the UIDs that match, and those
 * the cache lacks (to read).  A header sync leaves the fields clients
 * search for there, and then no message file and no index is read.  -1
 * when the cache lacks more than an eighth of the folder. */
static int
cache_answer(struct sk *k, struct folder *f)
{
	struct hdrwant w = { .k = k };
	size_t i, most = f->nmsgs / 8;

	if (!field_atom(k->field))
		return -1;
	k->hits = p_alloc((f->nmsgs + 1) * sizeof(*k->hits));
	k->todo = p_alloc((f->nmsgs + 1) * sizeof(*k->todo));
	k->nhits = k->ntodo = 0;
	for (i = 0; i < f->nmsgs; i++) {
		w.match = 0;
		if (!msgcache_each(f, i, hdr_item, &w)) {
			if (k->ntodo++ >= most)
				return -1;
			k->todo[k->ntodo - 1] = f->msgs[i].uid;
		} else if (w.match)
			k->hits[k->nhits++] = f->msgs[i].uid;
	}
	k->fts = FTS_EXACT;
	return 0;
}

static int
cmp_uid(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* what the full-text index says of a message: 1 it matches, 0 it does
 * not, -1 read it */
static int
index_answer(struct sk *k, uint32_t uid)
{
	if (bsearch(&uid, k->hits, k->nhits, sizeof(uid), cmp_uid))
		return 1;
	if (bsearch(&uid, k->todo, k->ntodo, sizeof(uid), cmp_uid))
		return -1;
	return 0;
}

/* the day the first Date field names, as written: RFC 3501 disregards
 * its time and zone; -1 when there is none */
static int
sent_day(const char *p, size_t n, long long *day)
{
	static const char *const date[] = { "Date" };
	struct buf v = { 0 };
	struct mail_date d;
	int r = -1;

	if (mime_headers(p, n, date, 1, &v) && date_parse(v.p, v.len, &d) == 0) {
		*day = date_days(&d);
		r = 0;
	}
	buf_free(&v);
	return r;
}

static int
eval_content(struct sk *k, struct ctx *c)
{
	long long day;

	if (k->type == SK_HEADER)
		return match_header(k, c);
	if (need_map(c) < 0)
		return 0;
	switch (k->type) {
	case SK_HEADER:
		return mime_match_header(c->mm.p, c->mm.len, k->field, k->str);
	case SK_BODY:
	case SK_TEXT:
		return mime_match_body(c->msg, k->str, k->type == SK_TEXT);
	default:
		if (sent_day(c->mm.p, c->mm.len, &day) < 0)
			return 0;
		return compare_day(k->type, day, k->day);
	}
}

static int
eval(struct sk *k, struct ctx *c)
{
	struct msg *m = &c->v->m[c->i];
	struct sk *x;
	char id[64];
	time_t t;
	int kw, r;

	switch (k->type) {
	case SK_ALL:
		return 1;
	case SK_FLAG:
		return (m->flags & k->flag) != 0;
	case SK_UNFLAG:
		return (m->flags & k->flag) == 0;
	case SK_NEW:
		return (m->flags & (FL_RECENT | FL_SEEN)) == FL_RECENT;
	case SK_KEYWORD:
	case SK_UNKEYWORD:
		if (!ascii_casecmp(k->str, "$Forwarded"))
			kw = (m->flags & FL_PASSED) != 0;
		else
			kw = (kw = folder_keyword(c->f, k->str, 0)) >= 0 &&
			    (m->kw & (1U << kw));
		return k->type == SK_KEYWORD ? kw : !kw;
	case SK_SEQ:
		return in_set(&k->set, c->i + 1, m->uid);
	case SK_UID:
		return in_set(&k->set, m->uid, m->uid);
	case SK_LARGER:
	case SK_SMALLER:
		if (need_info(c) < 0)
			return 0;
		return k->type == SK_LARGER ? c->size > k->n : c->size < k->n;
	case SK_BEFORE:
	case SK_ON:
	case SK_SINCE:
		if (need_info(c) < 0)
			return 0;
		return compare_day(k->type, local_day(c->date), k->day);
	case SK_SAVEDBEFORE:
	case SK_SAVEDON:
	case SK_SAVEDSINCE:
		return c->k >= 0 && savedate_get(c->f, c->k, &t) == 0 &&
		    compare_day(k->type, local_day(t), k->day);
	case SK_OLDER:
	case SK_YOUNGER:
		/* one or the other, never both: NOT YOUNGER is OLDER */
		if (need_info(c) < 0)
			return 0;
		return (c->date < k->at) == (k->type == SK_OLDER);
	case SK_MODSEQ:
		return c->k >= 0 && c->f->msgs[c->k].modseq >= k->n;
	case SK_EMAILID:
		return c->k >= 0 && msg_id(c->f, c->k, id, sizeof(id)) == 0 &&
		    !strcmp(id, k->str);
	case SK_THREADID:
		return 0;
	case SK_NOT:
		return !eval(k->a, c);
	case SK_OR:
		return eval(k->a, c) || eval(k->b, c);
	case SK_AND:
		for (x = k->a; x; x = x->next)
			if (!eval(x, c))
				return 0;
		return 1;
	default:
		if (k->fts == FTS_EXACT && (r = index_answer(k, m->uid)) >= 0)
			return r;
		return eval_content(k, c);
	}
}

#ifdef WITH_FTS
/* INPROGRESS (RFC 9585) while the index catches up; anything the client
 * sends stops it, and the messages left are read instead */
static int
progress(size_t done, size_t total)
{
	struct pollfd pfd;

	io_printf("* OK [INPROGRESS (\"%s\" %zu %zu)] Indexing\r\n",
	    sess.tag ? sess.tag : "", done, total);
	io_flush();
	pfd.fd = io_fd();
	pfd.events = POLLIN;
	return io_buffered() || poll(&pfd, 1, 0) > 0;
}
#endif

/* ask the message cache or the full-text index about every content key */
static void
ask_index(struct search *s, struct folder *f)
{
	struct sk *stack[DEPTH_MAX * 2 + 8], *k;
	size_t n = 0;

	stack[n++] = s->root;
	while (n) {
		for (k = stack[--n]; k; k = k->next) {
			if (k->a && n < LEN(stack))
				stack[n++] = k->a;
			if (k->b && n < LEN(stack))
				stack[n++] = k->b;
			if (k->type != SK_HEADER && k->type != SK_BODY &&
			    k->type != SK_TEXT)
				continue;
			if (k->type == SK_HEADER && cache_answer(k, f) == 0)
				continue;
#ifdef WITH_FTS
			k->hits = p_alloc((f->nmsgs + 1) * sizeof(*k->hits));
			k->todo = p_alloc((f->nmsgs + 1) * sizeof(*k->todo));
			k->fts = fts_search(f, k->type == SK_TEXT ? FTS_TEXT :
			    k->type == SK_BODY ? FTS_BODY : FTS_HEADER,
			    k->field, k->str, progress, k->hits, &k->nhits,
			    k->todo, &k->ntodo);
#endif
		}
	}
}

int
search_match(struct search *s, struct folder *f, struct view *v, size_t i)
{
	struct ctx c;
	int r;

	if (!s->asked)
		ask_index(s, f);
	s->asked = 1;
	memset(&c, 0, sizeof(c));
	c.f = f;
	c.v = v;
	c.i = i;
	c.k = v->m[i].flags & VM_GONE ? -1 : folder_find(f, v->m[i].uid);
	r = eval(s->root, &c);
	if (c.mapped) {
		mime_close(c.msg);
		msg_unmap(&c.mm);
	}
	return r;
}

/* --- programs kept beyond their command (CONTEXT=SEARCH) -------------- */

static char *
keep_str(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static struct sk *
keep_list(const struct sk *k)
{
	struct sk *first = NULL, **tail = &first, *c;

	for (; k; k = k->next) {
		c = xmalloc(sizeof(*c));
		*c = *k;
		c->field = keep_str(k->field);
		c->str = keep_str(k->str);
		c->set.r = NULL;
		if (k->set.n) {
			c->set.r = xreallocarray(NULL, k->set.n, sizeof(*k->set.r));
			memcpy(c->set.r, k->set.r, k->set.n * sizeof(*k->set.r));
		}
		c->a = keep_list(k->a);
		c->b = keep_list(k->b);
		c->next = NULL;
		*tail = c;
		tail = &c->next;
	}
	return first;
}

static void
free_list(struct sk *k)
{
	struct sk *next;

	for (; k; k = next) {
		next = k->next;
		free_list(k->a);
		free_list(k->b);
		free((char *)k->field);
		free((char *)k->str);
		free(k->set.r);
		free(k);
	}
}

struct search *
search_keep(const struct search *s)
{
	struct search *c = xcalloc(1, sizeof(*c));

	c->root = keep_list(s->root);
	c->charset = keep_str(s->charset);
	c->modseq = s->modseq;
	c->seq = s->seq;
	return c;
}

void
search_free(struct search *s)
{
	if (!s)
		return;
	free_list(s->root);
	free((char *)s->charset);
	free(s);
}
