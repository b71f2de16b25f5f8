/* sort.c: SORT (RFC 5256, and DISPLAYFROM/DISPLAYTO of RFC 5957) and
 * THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256) over the
 * messages of a view.
 *
 * Each message is mapped once and what the keys need of its header is
 * kept in a small record: dates as UTC seconds, strings already reduced
 * (base subject, first address) and case-mapped, so that comparing two
 * records is strcmp() and integer compares.  The strings of one run live
 * in one arena; records hold offsets into it.
 *
 * Strings collate by i;unicode-casemap (RFC 5051, which RFC 5256 asks
 * for through I18NLEVEL=1; unicode.c): the UTF-8 of their case-mapped
 * forms is compared octet by octet.
 *
 * THREAD=REFERENCES follows RFC 5256 section 3 step by step.  Message-IDs
 * and base subjects are found through hash tables and the tree is walked
 * without recursion, so neither large folders nor deep threads make it
 * slow or exhaust the stack.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "search.h"
#include "maildir.h"
#include "mime.h"
#include "parse.h"
#include "progress.h"
#include "sort.h"
#include "unicode.h"
#include "util.h"
#include "session.h"

#define SORT_MAX	16	/* criteria in one sort program */
#define HEAD_MAX	16384	/* first bytes read for a header */
#define NONE		((size_t)-1)
#define CLOSE		((size_t)-2)	/* thread output: end of a list */
#define CMP(a, b)	(((a) > (b)) - ((a) < (b)))

/* the header fields read, in the order of hdrnames */
enum { H_SUBJECT, H_FROM, H_TO, H_CC, H_DATE, H_MSGID, H_REFS, H_IRT, H_N };

/* sort keys; the string keys come first and index key.str */
enum {
	K_SUBJECT, K_FROM, K_TO, K_CC, K_DISPLAYFROM, K_DISPLAYTO,
	K_NSTR,
	K_ARRIVAL = K_NSTR, K_DATE, K_SIZE
};

struct crit {
	int key, reverse;
};

struct sortprog {
	struct crit c[SORT_MAX];
	int n;
	unsigned want;		/* bit per K_* */
};

/* one message's header fields and what the store knows of it */
struct fields {
	struct buf v[H_N];
	unsigned have;		/* bit per H_* */
	int read;		/* the header was read (have may be 0) */
	time_t idate;		/* internal date */
	uint64_t size;
};

/* what the sort keys need of one message */
struct key {
	size_t vi;		/* view index */
	time_t arrival, date;
	uint64_t size;
	size_t str[K_NSTR];	/* offsets into the arena */
};

/* a message to thread */
struct tmsg {
	size_t vi;
	time_t date;		/* sent date */
	size_t subj;		/* base subject, offset into the arena */
	size_t id;		/* Message-ID in the arena, or NONE */
	size_t ref, nref;	/* its references: thread.refs[ref..+nref) */
	int reply;		/* the subject says reply or forward */
};

/* a node of the thread tree: a message or a dummy; node 0 is the root */
struct tnode {
	size_t parent, child, next;	/* node indexes, NONE */
	size_t msg;		/* index into thread.msgs, NONE: a dummy */
	time_t date;		/* sort order; a dummy's is its first child's */
	size_t vi;
	size_t nkids;		/* step (1): children linked to it so far */
};

struct thread {
	struct tmsg *msgs;
	size_t nmsgs;
	size_t *refs;		/* arena offsets of the references */
	size_t nrefs, caprefs;
	struct buf arena;	/* NUL-terminated strings */
	struct tnode *nodes;
	size_t nnodes, capnodes;
	size_t *tmp;		/* scratch for sorting one set of siblings */
	size_t tmpcap;
};

/* string to node index: entries found through the base hash table;
 * keys point into an arena that no longer grows */
struct strtab {
	struct htab h;		/* hash of key -> entry + 1 */
	const char **key;
	size_t *val, n, cap;
};


static const char *const hdrnames[H_N] = {
	"Subject", "From", "To", "Cc", "Date", "Message-ID", "References",
	"In-Reply-To"
};

static const struct {
	const char *name;
	int key;
} keynames[] = {
	{ "ARRIVAL", K_ARRIVAL }, { "CC", K_CC }, { "DATE", K_DATE },
	{ "FROM", K_FROM }, { "SIZE", K_SIZE }, { "SUBJECT", K_SUBJECT },
	{ "TO", K_TO }, { "DISPLAYFROM", K_DISPLAYFROM },
	{ "DISPLAYTO", K_DISPLAYTO }
};

/* qsort() passes no context: the program, arena and nodes of the sort
 * being run */
static const struct sortprog *cur_prog;
static const char *cur_arena;
static const struct tnode *cur_nodes;
static const struct tmsg *cur_msgs;

/* the first error of the command, as parse.c's failp keeps it */
static struct sortprog *
failp(const char *why)
{
	if (!perr)
		perr = why;
	return NULL;
}

/* ---- strings --------------------------------------------------------- */

/* subj-blob at s[*p] (RFC 5256 section 5): "[" *BLOBCHAR "]" and the
 * white space after it */
static int
blob(const char *s, size_t *p, size_t e)
{
	size_t i = *p;

	if (i >= e || s[i] != '[')
		return 0;
	for (i++; i < e && s[i] != '[' && s[i] != ']'; i++)
		;
	if (i >= e || s[i] != ']')
		return 0;
	i++;
	if (i < e && s[i] == ' ')
		i++;
	*p = i;
	return 1;
}

/* step (3), subj-leader: a space, or blobs and "RE"/"FW"/"FWD" [blob] ":" */
static int
leader(const char *s, size_t *b, size_t e, int *reply)
{
	size_t p = *b;
	int found = 0;

	if (p < e && s[p] == ' ') {
		*b = ++p;
		found = 1;
	}
	while (p < e && s[p] == '[')
		if (!blob(s, &p, e))
			return found;
	if (e - p >= 2 && !memcmp(s + p, "RE", 2))
		p += 2;
	else if (e - p >= 3 && !memcmp(s + p, "FWD", 3))
		p += 3;
	else if (e - p >= 2 && !memcmp(s + p, "FW", 2))
		p += 2;
	else
		return found;
	if (p < e && s[p] == ' ')
		p++;
	if (p < e && s[p] == '[' && !blob(s, &p, e))
		return found;
	if (p >= e || s[p] != ':')
		return found;
	*b = p + 1;
	*reply = 1;
	return 1;
}

/* The base subject (RFC 5256 2.1) of a Subject: value, case-mapped,
 * appended to out; returns whether the extraction says reply or
 * forward.  Works on the case-mapped text, so the artifacts to strip are
 * upper case. */
static int
base_subject(struct buf *out, const char *v, size_t n)
{
	struct buf dec = { 0 }, map = { 0 };
	size_t i, b, e, k;
	int reply = 0, found, sp = 0;
	char *s;

	/* (1) decode, then every run of white space becomes one space */
	mime_decode(&dec, v, n);
	casemap(&map, dec.p, dec.len);
	buf_addc(&map, '\0');	/* never NULL */
	map.len--;
	s = map.p;
	for (i = k = 0; i < map.len; i++) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' ||
		    s[i] == '\n') {
			if (!sp)
				s[k++] = ' ';
			sp = 1;
			continue;
		}
		sp = 0;
		s[k++] = s[i];
	}
	b = 0;
	e = k;
	for (;;) {
		/* (2) trailers: white space and "(fwd)" */
		while (e > b) {
			if (s[e - 1] == ' ')
				e--;
			else if (e - b >= 5 && !memcmp(s + e - 5, "(FWD)", 5)) {
				e -= 5;
				reply = 1;
			} else
				break;
		}
		/* (3)-(5): leaders, and a blob when text remains after it */
		do {
			found = leader(s, &b, e, &reply);
			k = b;
			if (blob(s, &k, e) && k < e) {
				b = k;
				found = 1;
			}
		} while (found);
		/* (6) "[fwd:" ... "]" around it all */
		if (e - b < 6 || memcmp(s + b, "[FWD:", 5) || s[e - 1] != ']')
			break;
		b += 5;
		e--;
		reply = 1;
	}
	buf_add(out, s + b, e - b);
	buf_free(&dec);
	buf_free(&map);
	return reply;
}

/* the next msg-id in s[*i..n), normalized (quotes and white space
 * dropped) and appended to out with its NUL; 0 when there is none.  A
 * msg-id needs its angle brackets and an "@". */
static int
next_msgid(const char *s, size_t n, size_t *i, struct buf *out)
{
	size_t j, start;
	int at, c;

	while (*i < n) {
		while (*i < n && s[*i] != '<')
			(*i)++;
		if (*i >= n)
			return 0;
		start = out->len;
		at = 0;
		for (j = *i + 1; j < n && s[j] != '>' && s[j] != '<'; j++) {
			c = (unsigned char)s[j];
			if (c == '"' || c == ' ' || c == '\t' || c == '\r' ||
			    c == '\n')
				continue;
			if (c == '\\' && j + 1 < n)
				c = (unsigned char)s[++j];
			at |= c == '@';
			buf_addc(out, c);
		}
		*i = j < n && s[j] == '>' ? j + 1 : j;
		if (j < n && s[j] == '>' && at) {
			buf_addc(out, '\0');
			return 1;
		}
		out->len = start;
	}
	return 0;
}

/* ---- reading messages ------------------------------------------------ */

static int has(const struct fields *, int);

/* the first bytes of a message hold its whole header: a blank line ends
 * it there, or the message ends before the buffer does */
static int
head_whole(const char *p, size_t n, size_t max)
{
	size_t i;

	if (n < max)
		return 1;
	for (i = 0; i + 1 < n; i++)
		if (p[i] == '\n' && (p[i + 1] == '\n' ||
		    (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n')))
			return 1;
	return 0;
}

/* what a message gives: its header when needhdr is set (read from the
 * first bytes of the file when they hold it, else from a mapping), the
 * internal date, and only with needinfo the size, which the store may have
 * to read the whole file for */
static void
fields_read(struct folder *f, struct view *v, size_t vi, int needhdr,
    int needinfo, struct fields *fl)
{
	char head[HEAD_MAX];
	struct msgmap mm;
	uint64_t size;
	struct mail_date d;
	ssize_t n;
	long k;
	int i;

	for (i = 0; i < H_N; i++)
		buf_reset(&fl->v[i]);
	fl->have = 0;
	fl->read = 0;
	fl->idate = 0;
	fl->size = 0;
	if ((v->m[vi].flags & VM_GONE) || (k = folder_find(f, v->m[vi].uid)) < 0)
		return;
	if (needinfo && msg_info(f, k, &fl->idate, &fl->size) < 0)
		return;
	if (!needhdr)
		return;
	if ((n = msg_head(f, k, head, sizeof(head))) >= 0 &&
	    head_whole(head, n, sizeof(head))) {
		fl->have = mime_headers(head, n, hdrnames, H_N, fl->v);
		fl->read = 1;
		/* the internal date stands in for a Date: that is missing */
		if (!needinfo && (!has(fl, H_DATE) || date_parse(fl->v[H_DATE].p,
		    fl->v[H_DATE].len, &d) != 0))
			msg_info(f, k, &fl->idate, &size);
		return;
	}
	if (msg_map(f, k, &mm) < 0)
		return;
	fl->idate = mm.internaldate;
	fl->have = mime_headers(mm.p, mm.len, hdrnames, H_N, fl->v);
	fl->read = 1;
	msg_unmap(&mm);
}

static void
fields_free(struct fields *fl)
{
	int i;

	for (i = 0; i < H_N; i++)
		buf_free(&fl->v[i]);
}

static int
has(const struct fields *fl, int h)
{
	return (fl->have >> h) & 1;
}

/* RFC 5256 2.2: the Date: header in UTC, else the internal date */
static time_t
sent_date(const struct fields *fl)
{
	struct mail_date d;

	if (has(fl, H_DATE) &&
	    date_parse(fl->v[H_DATE].p, fl->v[H_DATE].len, &d) == 0)
		return date_utc(&d);
	return fl->idate;
}

/* the key of an address field: the first address's mailbox, or for
 * DISPLAY (RFC 5957) its decoded display name, else its addr-spec */
static void
addr_key(struct buf *out, const struct fields *fl, int h, int display)
{
	struct buf name = { 0 }, mbox = { 0 }, host = { 0 }, t = { 0 };

	if (!has(fl, h) || !mime_first_address(fl->v[h].p, fl->v[h].len,
	    &name, &mbox, &host))
		goto done;
	if (display)
		mime_decode(&t, name.p, name.len);
	if (!t.len) {
		buf_add(&t, mbox.p ? mbox.p : "", mbox.len);
		if (display && host.len) {
			buf_addc(&t, '@');
			buf_add(&t, host.p, host.len);
		}
	}
	casemap(out, t.p, t.len);
done:
	buf_free(&name);
	buf_free(&mbox);
	buf_free(&host);
	buf_free(&t);
}

/* ---- SORT ------------------------------------------------------------ */

struct sortprog *
sort_parse(void)
{
	struct sortprog *sp;
	char *w;
	size_t i;
	int rev;

	if (!p_char('('))
		return failp("Expected a parenthesized list of sort criteria");
	sp = p_alloc(sizeof(*sp));
	memset(sp, 0, sizeof(*sp));
	do {
		if (sp->n == SORT_MAX)
			return failp("Too many sort criteria");
		if (!(w = p_atom()))
			return NULL;
		if ((rev = !ascii_casecmp(w, "REVERSE")) &&
		    (p_sp() < 0 || !(w = p_atom())))
			return NULL;
		for (i = 0; i < LEN(keynames); i++)
			if (!ascii_casecmp(w, keynames[i].name))
				break;
		if (i == LEN(keynames))
			return failp("Unknown sort criterion");
		sp->c[sp->n].key = keynames[i].key;
		sp->c[sp->n].reverse = rev;
		sp->want |= 1u << keynames[i].key;
		sp->n++;
	} while (p_char(' '));
	if (!p_char(')'))
		return failp("Expected ')' after the sort criteria");
	return sp;
}

/* The sent date and base subject of a message as an earlier SORT left
 * them in the message cache: 1 when every one wanted was there (k->date
 * and the subject at the arena's end are set), so no file is read */
static int
key_cached(struct key *k, unsigned want, struct folder *f, long fi,
    struct buf *arena)
{
	const char *d, *subj = NULL;
	size_t dlen, slen = 0;
	int64_t t;

	if (fi < 0 || (want & ((1u << K_NSTR) - 1) & ~(1u << K_SUBJECT)))
		return 0;
	if (want & 1u << K_DATE) {
		if (!(d = msgcache_get(f, fi, MC_SENTDATE, &dlen)) ||
		    dlen != sizeof(t))
			return 0;
		memcpy(&t, d, sizeof(t));
		k->date = t;
	}
	if ((want & 1u << K_SUBJECT) &&
	    !(subj = msgcache_get(f, fi, MC_BASESUBJECT, &slen)))
		return 0;
	k->str[K_SUBJECT] = arena->len;
	buf_add(arena, subj ? subj : "", slen);
	return 1;
}

static void
key_load(struct key *k, const struct sortprog *sp, struct folder *f,
    struct view *v, size_t vi, struct fields *fl, struct buf *arena)
{
	static const int addr[K_NSTR] = { -1, H_FROM, H_TO, H_CC, H_FROM,
		H_TO };
	unsigned want = sp->want;
	long fi = v->m[vi].flags & VM_GONE ? -1 : folder_find(f, v->m[vi].uid);
	int64_t t;
	size_t at;
	int s;

	k->vi = vi;
	if (key_cached(k, want, f, fi, arena)) {
		buf_addc(arena, '\0');
		for (s = 0; s < K_NSTR; s++)
			if (s != K_SUBJECT)
				k->str[s] = arena->len - 1;
		fields_read(f, v, vi, 0, want & (1u << K_SIZE |
		    1u << K_ARRIVAL), fl);
		k->arrival = fl->idate;
		k->size = fl->size;
		return;
	}
	fields_read(f, v, vi, (want & ((1u << K_NSTR) - 1)) ||
	    (want & 1u << K_DATE), want & (1u << K_SIZE | 1u << K_ARRIVAL),
	    fl);
	k->arrival = fl->idate;
	k->size = fl->size;
	k->date = want & 1u << K_DATE ? sent_date(fl) : 0;
	if ((want & 1u << K_DATE) && fi >= 0 && fl->read) {
		t = k->date;
		msgcache_put(f, fi, MC_SENTDATE, &t, sizeof(t));
	}
	for (s = 0; s < K_NSTR; s++) {
		at = k->str[s] = arena->len;
		if ((want & 1u << s) && s == K_SUBJECT) {
			if (has(fl, H_SUBJECT))
				base_subject(arena, fl->v[H_SUBJECT].p,
				    fl->v[H_SUBJECT].len);
			if (fi >= 0 && fl->read)
				msgcache_put(f, fi, MC_BASESUBJECT,
				    arena->p + at, arena->len - at);
		} else if (want & 1u << s)
			addr_key(arena, fl, addr[s], s >= K_DISPLAYFROM);
		buf_addc(arena, '\0');
	}
}

static int
key_cmp(const void *a, const void *b)
{
	const struct key *x = a, *y = b;
	int i, k, r;

	for (i = 0; i < cur_prog->n; i++) {
		k = cur_prog->c[i].key;
		if (k == K_ARRIVAL)
			r = CMP(x->arrival, y->arrival);
		else if (k == K_DATE)
			r = CMP(x->date, y->date);
		else if (k == K_SIZE)
			r = CMP(x->size, y->size);
		else
			r = strcmp(cur_arena + x->str[k],
			    cur_arena + y->str[k]);
		if (r)
			return cur_prog->c[i].reverse ? -r : r;
	}
	return CMP(x->vi, y->vi);
}

void
sort_run(struct sortprog *sp, struct folder *f, struct view *v, size_t *idx,
    size_t n)
{
	struct fields fl;
	struct buf arena = { 0 };
	struct key *keys;
	size_t i;

	if (n < 2)
		return;
	memset(&fl, 0, sizeof(fl));
	keys = xcalloc(n, sizeof(*keys));
	for (i = 0; i < n; i++) {
		key_load(&keys[i], sp, f, v, idx[i], &fl, &arena);
		progress(i + 1, n);
	}
	cur_prog = sp;
	cur_arena = arena.p;
	qsort(keys, n, sizeof(*keys), key_cmp);
	for (i = 0; i < n; i++)
		idx[i] = keys[i].vi;
	fields_free(&fl);
	buf_free(&arena);
	free(keys);
}

/* ---- a sort kept up to date (CONTEXT=SORT) ----------------------------- */

struct sortprog *
sort_keep(const struct sortprog *sp)
{
	struct sortprog *c = xmalloc(sizeof(*c));

	*c = *sp;
	return c;
}

int
sort_cmp(struct sortprog *sp, struct folder *f, struct view *v, size_t a,
    size_t b)
{
	struct fields fl;
	struct buf arena = { 0 };
	struct key ka, kb;
	int r;

	memset(&fl, 0, sizeof(fl));
	key_load(&ka, sp, f, v, a, &fl, &arena);
	key_load(&kb, sp, f, v, b, &fl, &arena);
	cur_prog = sp;
	cur_arena = arena.p;
	r = key_cmp(&ka, &kb);
	fields_free(&fl);
	buf_free(&arena);
	return r;
}

/* ---- THREAD: the tree ------------------------------------------------ */

int
thread_alg(const char *name)
{
	if (!ascii_casecmp(name, "ORDEREDSUBJECT"))
		return THREAD_ORDEREDSUBJECT;
	if (!ascii_casecmp(name, "REFERENCES"))
		return THREAD_REFERENCES;
	return -1;
}

static const char *
str(const struct thread *t, size_t off)
{
	return t->arena.p + off;
}

static size_t
node_new(struct thread *t, size_t msg)
{
	struct tnode *nd;

	if (t->nnodes == t->capnodes) {
		t->capnodes = t->capnodes ? t->capnodes * 2 : 64;
		t->nodes = xreallocarray(t->nodes, t->capnodes,
		    sizeof(*t->nodes));
	}
	nd = &t->nodes[t->nnodes];
	nd->parent = nd->child = nd->next = NONE;
	nd->nkids = 0;
	nd->msg = msg;
	nd->date = msg == NONE ? 0 : t->msgs[msg].date;
	nd->vi = msg == NONE ? 0 : t->msgs[msg].vi;
	return t->nnodes++;
}

static int
isdummy(const struct thread *t, size_t x)
{
	return t->nodes[x].msg == NONE;
}

/* make x the first child of p */
static void
adopt(struct thread *t, size_t p, size_t x)
{
	t->nodes[x].parent = p;
	t->nodes[x].next = t->nodes[p].child;
	t->nodes[p].child = x;
}

/* the nodes below the root, parents before children */
static size_t
walk_order(struct thread *t, size_t *order)
{
	size_t n = 1, i, c;

	order[0] = 0;
	for (i = 0; i < n; i++)
		for (c = t->nodes[order[i]].child; c != NONE;
		    c = t->nodes[c].next)
			order[n++] = c;
	return n;
}

static int
node_cmp(const void *a, const void *b)
{
	const struct tnode *x = &cur_nodes[*(const size_t *)a];
	const struct tnode *y = &cur_nodes[*(const size_t *)b];

	if (x->date != y->date)
		return CMP(x->date, y->date);
	return CMP(x->vi, y->vi);
}

static void
sort_children(struct thread *t, size_t p)
{
	size_t n = 0, c, i;

	for (c = t->nodes[p].child; c != NONE; c = t->nodes[c].next) {
		if (n == t->tmpcap) {
			t->tmpcap = t->tmpcap ? t->tmpcap * 2 : 64;
			t->tmp = xreallocarray(t->tmp, t->tmpcap,
			    sizeof(*t->tmp));
		}
		t->tmp[n++] = c;
	}
	if (n < 2)
		return;
	cur_nodes = t->nodes;
	qsort(t->tmp, n, sizeof(*t->tmp), node_cmp);
	t->nodes[p].child = t->tmp[0];
	for (i = 0; i + 1 < n; i++)
		t->nodes[t->tmp[i]].next = t->tmp[i + 1];
	t->nodes[t->tmp[n - 1]].next = NONE;
}

/* steps (4) and (6): every set of siblings by sent date, the youngest
 * first, so a dummy can take the date of its first child */
static void
sort_tree(struct thread *t)
{
	size_t *order = xreallocarray(NULL, t->nnodes, sizeof(*order));
	size_t n = walk_order(t, order), x, c;

	while (n-- > 0) {
		x = order[n];
		sort_children(t, x);
		if (x && isdummy(t, x) && (c = t->nodes[x].child) != NONE) {
			t->nodes[x].date = t->nodes[c].date;
			t->nodes[x].vi = t->nodes[c].vi;
		}
	}
	free(order);
}

static void
thread_print(struct thread *t, struct view *v, int uid, struct buf *out)
{
	size_t *stack = xreallocarray(NULL, 2 * t->nnodes + 1,
	    sizeof(*stack));
	size_t sp = 0, x, c, start;
	const struct tnode *nd;

	for (c = t->nodes[0].child; c != NONE; c = t->nodes[c].next)
		stack[sp++] = c;
	for (start = 0; start < sp / 2; start++) {	/* first on top */
		x = stack[start];
		stack[start] = stack[sp - 1 - start];
		stack[sp - 1 - start] = x;
	}
	while (sp) {
		if ((x = stack[--sp]) == CLOSE) {
			buf_addc(out, ')');
			continue;
		}
		buf_addc(out, '(');
		for (;;) {
			nd = &t->nodes[x];
			if (nd->msg != NONE)
				buf_printf(out, "%lu", uid ?
				    (unsigned long)v->m[nd->vi].uid :
				    (unsigned long)nd->vi + 1);
			if ((c = nd->child) == NONE) {
				buf_addc(out, ')');
				break;
			}
			if (nd->msg != NONE)
				buf_addc(out, ' ');
			if (nd->msg != NONE && t->nodes[c].next == NONE) {
				x = c;
				continue;
			}
			/* two or more: each child its own list */
			stack[sp++] = CLOSE;
			start = sp;
			for (; c != NONE; c = t->nodes[c].next)
				stack[sp++] = c;
			for (c = 0; c < (sp - start) / 2; c++) {
				x = stack[start + c];
				stack[start + c] = stack[sp - 1 - c];
				stack[sp - 1 - c] = x;
			}
			break;
		}
	}
	free(stack);
}

/* ---- THREAD: reading the messages ------------------------------------ */

static void
ref_add(struct thread *t, size_t off)
{
	if (t->nrefs == t->caprefs) {
		t->caprefs = t->caprefs ? t->caprefs * 2 : 256;
		t->refs = xreallocarray(t->refs, t->caprefs, sizeof(*t->refs));
	}
	t->refs[t->nrefs++] = off;
}

/* RFC 5256 REFERENCES: the msg-ids of References:, else the first of
 * In-Reply-To: */
static void
msg_refs(struct thread *t, struct tmsg *m, const struct fields *fl)
{
	size_t i = 0, off = t->arena.len;

	m->ref = t->nrefs;
	if (has(fl, H_REFS))
		while (next_msgid(fl->v[H_REFS].p, fl->v[H_REFS].len, &i,
		    &t->arena)) {
			ref_add(t, off);
			off = t->arena.len;
		}
	i = 0;
	if (t->nrefs == m->ref && has(fl, H_IRT) &&
	    next_msgid(fl->v[H_IRT].p, fl->v[H_IRT].len, &i, &t->arena))
		ref_add(t, off);
	m->nref = t->nrefs - m->ref;
}

static void
thread_load(struct thread *t, int alg, struct folder *f, struct view *v,
    const size_t *idx, size_t n)
{
	struct fields fl;
	struct tmsg *m;
	size_t i, pos;

	memset(&fl, 0, sizeof(fl));
	t->msgs = xcalloc(n ? n : 1, sizeof(*t->msgs));
	t->nmsgs = n;
	for (i = 0; i < n; i++) {
		m = &t->msgs[i];
		fields_read(f, v, idx[i], 1, 0, &fl);
		m->vi = idx[i];
		m->date = sent_date(&fl);
		m->subj = t->arena.len;
		if (has(&fl, H_SUBJECT))
			m->reply = base_subject(&t->arena,
			    fl.v[H_SUBJECT].p, fl.v[H_SUBJECT].len);
		buf_addc(&t->arena, '\0');
		m->id = NONE;
		if (alg != THREAD_REFERENCES)
			continue;
		pos = 0;
		if (has(&fl, H_MSGID)) {
			m->id = t->arena.len;
			if (!next_msgid(fl.v[H_MSGID].p, fl.v[H_MSGID].len,
			    &pos, &t->arena))
				m->id = NONE;
		}
		msg_refs(t, m, &fl);
	}
	fields_free(&fl);
	buf_addc(&t->arena, '\0');	/* never NULL */
}

/* ---- THREAD: the algorithms ------------------------------------------ */

static void
ht_init(struct strtab *t, size_t n)
{
	memset(t, 0, sizeof(*t));
	htab_init(&t->h, n);
}

static void
ht_free(struct strtab *t)
{
	htab_free(&t->h);
	free(t->key);
	free(t->val);
}

/* the entry of k: where it is, or a new one with no key yet, which the
 * caller gives k and a value */
static size_t
ht_find(struct strtab *t, const char *k)
{
	uint32_t hv = hash_bytes(k, strlen(k)), e;
	size_t pos = 0;

	while (htab_next(&t->h, hv, &pos, &e))
		if (t->key[e - 1] && !strcmp(t->key[e - 1], k))
			return e - 1;
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->key = xreallocarray(t->key, t->cap, sizeof(*t->key));
		t->val = xreallocarray(t->val, t->cap, sizeof(*t->val));
	}
	t->key[t->n] = NULL;
	htab_put(&t->h, hv, t->n + 1);
	return t->n++;
}

/* the node that carries a Message-ID: a dummy until its message comes */
static size_t
id_node(struct thread *t, struct strtab *ids, const char *id)
{
	size_t i = ht_find(ids, id);

	if (!ids->key[i]) {
		ids->key[i] = id;
		ids->val[i] = node_new(t, NONE);
	}
	return ids->val[i];
}

/* is x p itself or above it: linking p under x would make a loop */
static int
above(const struct thread *t, size_t x, size_t p)
{
	if (!t->nodes[x].nkids)
		return x == p;
	for (; p != NONE; p = t->nodes[p].parent)
		if (p == x)
			return 1;
	return 0;
}

/* step (1): make p the parent of x (NONE: none) */
static void
relink(struct thread *t, size_t x, size_t p)
{
	if (t->nodes[x].parent != NONE)
		t->nodes[t->nodes[x].parent].nkids--;
	t->nodes[x].parent = p;
	if (p != NONE)
		t->nodes[p].nkids++;
}

/* step (1): link every message to its references */
static void
link_refs(struct thread *t, struct strtab *ids)
{
	struct tmsg *m;
	size_t i, r, k, me, prev, cur;

	for (i = 0; i < t->nmsgs; i++) {
		m = &t->msgs[i];
		/* a duplicate Message-ID is only the first message's */
		me = NONE;
		if (m->id != NONE) {
			k = ht_find(ids, str(t, m->id));
			if (!ids->key[k]) {
				ids->key[k] = str(t, m->id);
				ids->val[k] = me = node_new(t, i);
			} else if (isdummy(t, ids->val[k])) {
				me = ids->val[k];
				t->nodes[me].msg = i;
				t->nodes[me].date = m->date;
				t->nodes[me].vi = m->vi;
			}
		}
		if (me == NONE)
			me = node_new(t, i);
		/* (A) each reference the parent of the next */
		for (r = 0, prev = NONE; r < m->nref; r++, prev = cur) {
			cur = id_node(t, ids, str(t, t->refs[m->ref + r]));
			if (prev != NONE && t->nodes[cur].parent == NONE &&
			    !above(t, cur, prev))
				relink(t, cur, prev);
		}
		/* (B) the last reference is the parent, whatever came
		 * before */
		relink(t, me, NONE);
		if (prev != NONE && !above(t, me, prev))
			relink(t, me, prev);
	}
}

/* steps (2) and (3): the parentless nodes go under the root; dummies
 * vanish, their messages moving up to the nearest message above, or to
 * the topmost dummy, which stays only when it holds two or more */
static void
prune(struct thread *t)
{
	size_t *order = xreallocarray(NULL, t->nnodes, sizeof(*order));
	size_t *top = xreallocarray(NULL, t->nnodes, sizeof(*top));
	size_t i, n, x, p, c;

	for (x = 1; x < t->nnodes; x++)
		adopt(t, t->nodes[x].parent == NONE ? 0 :
		    t->nodes[x].parent, x);
	n = walk_order(t, order);
	/* top[x]: where a message below x goes */
	top[0] = 0;
	for (i = 1; i < n; i++) {
		x = order[i];
		p = t->nodes[x].parent;
		top[x] = !isdummy(t, x) || p == 0 ? x : top[p];
	}
	for (x = 0; x < t->nnodes; x++)
		t->nodes[x].child = NONE;
	for (i = 1; i < n; i++) {
		x = order[i];
		p = t->nodes[x].parent;
		if (p == 0)
			adopt(t, 0, x);
		else if (!isdummy(t, x))
			adopt(t, top[p], x);
	}
	/* a dummy under the root with one child gives way to it */
	c = t->nodes[0].child;
	t->nodes[0].child = NONE;
	for (; c != NONE; c = x) {
		x = t->nodes[c].next;
		if (!isdummy(t, c))
			adopt(t, 0, c);
		else if ((p = t->nodes[c].child) != NONE &&
		    t->nodes[p].next == NONE)
			adopt(t, 0, p);
		else if (p != NONE)
			adopt(t, 0, c);
	}
	free(order);
	free(top);
}

/* the base subject of a thread under the root: the message's, or a
 * dummy's first child's */
static const char *
thread_subject(const struct thread *t, size_t x, int *reply)
{
	if (isdummy(t, x))
		x = t->nodes[x].child;
	*reply = 0;
	if (x == NONE || isdummy(t, x))
		return "";
	*reply = t->msgs[t->nodes[x].msg].reply;
	return str(t, t->msgs[t->nodes[x].msg].subj);
}

static void
merge_one(struct thread *t, struct strtab *subj, size_t k, size_t x)
{
	size_t tt = subj->val[k], c, next, d;
	int xr, tr;

	thread_subject(t, x, &xr);
	thread_subject(t, tt, &tr);
	if (isdummy(t, x) && isdummy(t, tt)) {
		for (c = t->nodes[x].child; c != NONE; c = next) {
			next = t->nodes[c].next;
			adopt(t, tt, c);
		}
		t->nodes[x].child = NONE;
		t->nodes[x].parent = NONE;
	} else if (isdummy(t, tt) || (xr && !tr && !isdummy(t, x))) {
		adopt(t, tt, x);
	} else {
		d = node_new(t, NONE);
		t->nodes[d].parent = 0;
		adopt(t, d, tt);
		adopt(t, d, x);
		subj->val[k] = d;
	}
}

/* step (5): threads under the root with one base subject come together */
static void
merge_subjects(struct thread *t)
{
	struct strtab subj;
	size_t *roots, n = 0, i, k, x, first;
	const char *s;
	int xr, tr;

	for (x = t->nodes[0].child; x != NONE; x = t->nodes[x].next)
		n++;
	roots = xreallocarray(NULL, n ? n : 1, sizeof(*roots));
	for (n = 0, x = t->nodes[0].child; x != NONE; x = t->nodes[x].next)
		roots[n++] = x;
	ht_init(&subj, n);
	/* (B) one thread per subject: a dummy, else one not a reply */
	for (i = 0; i < n; i++) {
		x = roots[i];
		if (!*(s = thread_subject(t, x, &xr)))
			continue;
		k = ht_find(&subj, s);
		if (!subj.key[k]) {
			subj.key[k] = s;
			subj.val[k] = x;
			continue;
		}
		thread_subject(t, subj.val[k], &tr);
		if (!isdummy(t, subj.val[k]) && (isdummy(t, x) ||
		    (tr && !xr)))
			subj.val[k] = x;
	}
	/* (C) the others join it; the root's list is rebuilt after */
	first = t->nnodes;
	for (i = 0; i < n; i++) {
		x = roots[i];
		if (t->nodes[x].parent != 0 ||
		    !*(s = thread_subject(t, x, &xr)))
			continue;
		k = ht_find(&subj, s);
		if (subj.val[k] != x)
			merge_one(t, &subj, k, x);
	}
	t->nodes[0].child = NONE;
	for (i = 0; i < n; i++)
		if (t->nodes[roots[i]].parent == 0)
			adopt(t, 0, roots[i]);
	for (x = first; x < t->nnodes; x++)
		if (t->nodes[x].parent == 0)
			adopt(t, 0, x);
	ht_free(&subj);
	free(roots);
}

static void
references(struct thread *t)
{
	struct strtab ids;

	ht_init(&ids, t->nmsgs + t->nrefs);
	link_refs(t, &ids);
	ht_free(&ids);
	prune(t);
	sort_tree(t);
	merge_subjects(t);
	sort_tree(t);
}

static int
subject_cmp(const void *a, const void *b)
{
	const struct tmsg *x = &cur_msgs[*(const size_t *)a];
	const struct tmsg *y = &cur_msgs[*(const size_t *)b];
	int r;

	if ((r = strcmp(cur_arena + x->subj, cur_arena + y->subj)))
		return r;
	if (x->date != y->date)
		return CMP(x->date, y->date);
	return CMP(x->vi, y->vi);
}

/* by base subject, then sent date; the first of each subject holds the
 * others as its children */
static void
ordered_subject(struct thread *t)
{
	size_t *order = xreallocarray(NULL, t->nmsgs ? t->nmsgs : 1,
	    sizeof(*order));
	size_t i, head = 0;

	for (i = 0; i < t->nmsgs; i++) {
		order[i] = i;
		node_new(t, i);		/* node i + 1 */
	}
	cur_msgs = t->msgs;
	cur_arena = t->arena.p;
	qsort(order, t->nmsgs, sizeof(*order), subject_cmp);
	for (i = 0; i < t->nmsgs; i++) {
		if (i == 0 || strcmp(str(t, t->msgs[order[i]].subj),
		    str(t, t->msgs[order[head]].subj))) {
			head = i;
			adopt(t, 0, order[i] + 1);
		} else
			adopt(t, order[head] + 1, order[i] + 1);
	}
	free(order);
	sort_tree(t);
}

void
thread_run(int alg, struct folder *f, struct view *v, const size_t *idx,
    size_t n, int uid, struct buf *out)
{
	struct thread t;

	memset(&t, 0, sizeof(t));
	thread_load(&t, alg, f, v, idx, n);
	node_new(&t, NONE);	/* the root */
	if (alg == THREAD_REFERENCES)
		references(&t);
	else
		ordered_subject(&t);
	thread_print(&t, v, uid, out);
	free(t.msgs);
	free(t.refs);
	free(t.nodes);
	free(t.tmp);
	buf_free(&t.arena);
}
