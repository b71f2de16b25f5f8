/* context.c: CONTEXT=SEARCH (RFC 5267).  SEARCH RETURN (UPDATE ...)
 * keeps its program, and from then on the client hears "* ESEARCH (TAG
 * "t") [UID] ADDTO (0 set)" and "REMOVEFROM (0 set)" whenever messages
 * start or stop matching: new mail, flag changes, expunges, from this
 * session or another, at the moments it would hear EXPUNGE or FETCH (an
 * expunge's REMOVEFROM comes first, while its number is still valid).
 * The result is kept as UIDs and told as numbers to a SEARCH without UID.
 * Only messages whose modification sequence moved are looked at again,
 * so an update costs little even for a body search.  CANCELUPDATE ends
 * one; closing the mailbox ends all.
 *
 * CONTEXT=SORT: a SORT RETURN (UPDATE ...) also keeps its order, and
 * each change is told with the position the client's sorted list has it
 * at: "REMOVEFROM (3 7)" takes 7 from position 3, "ADDTO (1 9,4)" puts
 * 9 at position 1 and 4 after it.  A message's sort keys never change,
 * so a newcomer's place is found by a binary search among the kept
 * order, reading a few headers, not by sorting again. */
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "search.h"
#include "io.h"
#include "maildir.h"
#include "notify.h"
#include "parse.h"
#include "util.h"
#include "session.h"
#include "sort.h"

#define CONTEXT_MAX 8	/* updating searches one session may keep */

struct context {
	char *tag;		/* NULL: the slot is free */
	int uid;		/* UID SEARCH: results are told as UIDs */
	struct search *s;
	uint32_t *uids;		/* the result as last told, ascending */
	size_t n;
	struct sortprog *sort;	/* SORT: its program, else NULL */
	uint32_t *order;	/* SORT: uids[0..n) in the sort's order */
	uint64_t modseq;	/* messages changed after this are looked at */
};

static struct context ctx[CONTEXT_MAX];

/* how the kept results changed, told from below (session.c): what was
 * expunged just before the view tells of it (the numbers still valid),
 * the rest after every sync of the view; and the mailbox closed */
static void context_expunged(void);
static void context_update(void);
static void context_clear(void);

/* the view tells of its changes from below, once a search is kept */
static const struct view_watch watch = {
	.expunging = context_expunged, .synced = context_update,
	.closed = context_clear
};
static int
uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

int
context_add(const char *tag, int uid, struct search *s,
    struct sortprog *sort, const uint32_t *uids, size_t n)
{
	size_t i, free_slot = CONTEXT_MAX;

	for (i = 0; i < CONTEXT_MAX; i++) {
		if (ctx[i].tag && !strcmp(ctx[i].tag, tag)) {
			free_slot = CONTEXT_MAX + 1;
			break;
		}
		if (!ctx[i].tag && free_slot == CONTEXT_MAX)
			free_slot = i;
	}
	if (free_slot >= CONTEXT_MAX) {
		search_free(s);
		free(sort);
		return free_slot == CONTEXT_MAX ? -1 : -2;
	}
	i = free_slot;
	ctx[i].tag = xstrdup(tag);
	ctx[i].uid = uid;
	ctx[i].s = s;
	ctx[i].uids = xreallocarray(NULL, n + 1, sizeof(*uids));
	memcpy(ctx[i].uids, uids, n * sizeof(*uids));
	ctx[i].n = n;
	ctx[i].modseq = sess.f.highestmodseq;
	view_watch(&watch);
	if ((ctx[i].sort = sort)) {
		ctx[i].order = xreallocarray(NULL, n + 1, sizeof(*uids));
		memcpy(ctx[i].order, uids, n * sizeof(*uids));
		qsort(ctx[i].uids, n, sizeof(*uids), uid_cmp);
	}
	return 0;
}

static void
drop(struct context *c)
{
	free(c->tag);
	search_free(c->s);
	free(c->uids);
	free(c->sort);
	free(c->order);
	memset(c, 0, sizeof(*c));
}

static void
context_clear(void)
{
	size_t i;

	for (i = 0; i < CONTEXT_MAX; i++)
		if (ctx[i].tag)
			drop(&ctx[i]);
}

/* is uid among the ascending u[0..n) */
static int
among(const uint32_t *u, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (u[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && u[lo] == uid;
}

static int
has(const struct context *c, uint32_t uid)
{
	return among(c->uids, c->n, uid);
}

/* the sequence number of uid in the view, 0 for none */
static uint32_t
seqno(uint32_t uid)
{
	size_t i = view_lower(uid);

	return i < sess.v.n && sess.v.m[i].uid == uid ? i + 1 : 0;
}

/* u[0..n) ascending UIDs: told as UIDs, or as their numbers */
static void
say(const struct context *c, const char *what, uint32_t *u, size_t n)
{
	struct buf b = { 0 };
	size_t i;

	if (!n)
		return;
	for (i = 0; !c->uid && i < n; i++)
		u[i] = seqno(u[i]);
	uid_set(&b, u, n);
	io_printf("* ESEARCH (TAG \"%s\")%s %s (0 %s)\r\n", c->tag,
	    c->uid ? " UID" : "", what, b.p);
	buf_free(&b);
}

/* a UID as the context tells it: itself, or its sequence number */
static uint32_t
told(const struct context *c, uint32_t uid)
{
	return c->uid ? uid : seqno(uid);
}

/* the numbers u[0..n) in the order given, ascending runs as ranges */
static void
ordered_set(struct buf *b, const uint32_t *u, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && u[j] == u[j - 1] + 1; j++)
			;
		buf_printf(b, "%s%u", i ? "," : "", u[i]);
		if (j - i > 1)
			buf_printf(b, ":%u", u[j - 1]);
	}
}

/* one "position set" pair of ADDTO or REMOVEFROM: the UIDs u[0..n) in
 * the sort's order, as the context tells them */
static void
pair(struct buf *b, const struct context *c, size_t pos, const uint32_t *u,
    size_t n)
{
	uint32_t *t = xreallocarray(NULL, n + 1, sizeof(*t));
	size_t i;

	for (i = 0; i < n; i++)
		t[i] = told(c, u[i]);
	buf_printf(b, "%s%zu ", b->len ? " " : "", pos);
	ordered_set(b, t, n);
	free(t);
}

static void
say_pairs(const struct context *c, const char *what, const struct buf *b)
{
	if (b->len)
		io_printf("* ESEARCH (TAG \"%s\")%s %s (%s)\r\n", c->tag,
		    c->uid ? " UID" : "", what, b->p);
}

/* SORT: the ascending rm[0..nrm) leave the order, each as a pair of
 * its own with the position it has once those before it are gone.  A
 * run as one pair would say the same (RFC 5267 4.3.4), but Trojita, the
 * client that keeps sorted contexts, looks for the second UID of a pair
 * one place further on once it took out the first. */
static void
sorted_remove(struct context *c, const uint32_t *rm, size_t nrm)
{
	struct buf b = { 0 };
	size_t i, o;

	if (!nrm)
		return;
	for (i = o = 0; i < c->n; i++) {
		if (among(rm, nrm, c->order[i]))
			pair(&b, c, o + 1, c->order + i, 1);
		else
			c->order[o++] = c->order[i];
	}
	say_pairs(c, "REMOVEFROM", &b);
	buf_free(&b);
}

/* where among order[lo..n) the message at view index vi goes */
static size_t
place(struct context *c, size_t lo, size_t n, size_t vi)
{
	size_t hi = n, mid, w;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		w = view_lower(c->order[mid]);
		if (w >= sess.v.n || sess.v.m[w].uid != c->order[mid] ||
		    sort_cmp(c->sort, &sess.f, &sess.v, w, vi) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* SORT: the ascending add[0..nadd) join the order of the n kept, each
 * run that goes to one place told as one pair */
static void
sorted_add(struct context *c, const uint32_t *add, size_t nadd, size_t n)
{
	struct buf b = { 0 };
	uint32_t *order, *u;
	size_t *vi, *at, i, j, o, k;

	if (!nadd)
		return;
	vi = xreallocarray(NULL, nadd, sizeof(*vi));
	at = xreallocarray(NULL, nadd, sizeof(*at));
	u = xreallocarray(NULL, nadd, sizeof(*u));
	for (i = 0; i < nadd; i++)
		vi[i] = view_lower(add[i]);
	sort_run(c->sort, &sess.f, &sess.v, vi, nadd);
	for (i = 0; i < nadd; i++) {
		at[i] = place(c, i ? at[i - 1] : 0, n, vi[i]);
		u[i] = sess.v.m[vi[i]].uid;
	}
	order = xreallocarray(NULL, n + nadd + 1, sizeof(*order));
	for (i = j = o = 0; i < nadd; i = k) {
		while (j < at[i])
			order[o++] = c->order[j++];
		for (k = i; k < nadd && at[k] == at[i]; k++)
			order[o++] = u[k];
		pair(&b, c, at[i] + i + 1, u + i, k - i);
	}
	while (j < n)
		order[o++] = c->order[j++];
	free(c->order);
	c->order = order;
	say_pairs(c, "ADDTO", &b);
	buf_free(&b);
	free(vi);
	free(at);
	free(u);
}

/* the messages of a kept result that the store no longer has, told
 * while the view still shows them */
static void
expunged_one(struct context *c)
{
	uint32_t *rm = xreallocarray(NULL, c->n + 1, sizeof(*rm));
	size_t i, o, nrm = 0;

	for (i = o = 0; i < c->n; i++) {
		if (folder_find(&sess.f, c->uids[i]) < 0)
			rm[nrm++] = c->uids[i];
		else
			c->uids[o++] = c->uids[i];
	}
	if (c->sort)
		sorted_remove(c, rm, nrm);
	else
		say(c, "REMOVEFROM", rm, nrm);
	c->n = o;
	free(rm);
}

static void
context_expunged(void)
{
	size_t i;

	for (i = 0; i < CONTEXT_MAX; i++)
		if (ctx[i].tag)
			expunged_one(&ctx[i]);
}

/* the new result of one kept search, and what changed in it; a message
 * expunged but still in the view waits for its EXPUNGE */
static void
update_one(struct context *c)
{
	uint32_t *now, *add, *rm;
	size_t i, nnow = 0, nadd = 0, nrm = 0;
	long k;
	int match;

	now = xreallocarray(NULL, c->n + sess.v.n + 1, sizeof(*now));
	add = xreallocarray(NULL, sess.v.n + 1, sizeof(*add));
	rm = xreallocarray(NULL, c->n + 1, sizeof(*rm));
	search_limits(c->s, sess.v.n, sess.v.n ? sess.v.m[sess.v.n - 1].uid :
	    0);
	for (i = 0; i < sess.v.n; i++) {
		if ((k = store_index(i)) < 0) {
			if (has(c, sess.v.m[i].uid))
				now[nnow++] = sess.v.m[i].uid;
			continue;
		}
		if (sess.f.msgs[k].modseq <= c->modseq) {
			if (has(c, sess.v.m[i].uid))
				now[nnow++] = sess.v.m[i].uid;
			continue;
		}
		match = search_match(c->s, &sess.f, &sess.v, i) > 0;
		if (match)
			now[nnow++] = sess.v.m[i].uid;
		if (match && !has(c, sess.v.m[i].uid))
			add[nadd++] = sess.v.m[i].uid;
		else if (!match && has(c, sess.v.m[i].uid))
			rm[nrm++] = sess.v.m[i].uid;
	}
	if (c->sort) {
		sorted_remove(c, rm, nrm);
		notify_update_fetch(c->tag, add, nadd);
		sorted_add(c, add, nadd, c->n - nrm);
	} else {
		say(c, "REMOVEFROM", rm, nrm);
		notify_update_fetch(c->tag, add, nadd);
		say(c, "ADDTO", add, nadd);
	}
	free(c->uids);
	c->uids = now;
	c->n = nnow;
	c->modseq = sess.f.highestmodseq;
	free(add);
	free(rm);
}

static void
context_update(void)
{
	size_t i;

	for (i = 0; i < CONTEXT_MAX; i++)
		if (ctx[i].tag)
			update_one(&ctx[i]);
}

/* CANCELUPDATE "tag" ... */
int
cmd_cancelupdate(const char *tag, int uid)
{
	char **tags;
	size_t n = 0, i, j;

	tags = p_alloc(CONTEXT_MAX * 4 * sizeof(*tags));
	do {
		if (p_sp() < 0 || !(tags[n] = p_string(NULL)))
			return ST_BAD;
		if (++n == CONTEXT_MAX * 4)
			return bad("Too many tags");
	} while (p_peek() == ' ');
	if (p_end() < 0)
		return ST_BAD;
	for (i = 0; i < n; i++) {
		for (j = 0; j < CONTEXT_MAX; j++)
			if (ctx[j].tag && !strcmp(ctx[j].tag, tags[i]))
				break;
		if (j == CONTEXT_MAX)
			return no(NULL, "No updating search has that tag");
	}
	for (i = 0; i < n; i++)
		for (j = 0; j < CONTEXT_MAX; j++)
			if (ctx[j].tag && !strcmp(ctx[j].tag, tags[i]))
				drop(&ctx[j]);
	return ok(NULL, "CANCELUPDATE completed");
}
