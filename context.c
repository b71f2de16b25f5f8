/* context.c: CONTEXT=SEARCH (RFC 5267).  SEARCH RETURN (UPDATE ...)
 * keeps its program, and from then on the client hears "* ESEARCH (TAG
 * "t") [UID] ADDTO (0 set)" and "REMOVEFROM (0 set)" whenever messages
 * start or stop matching: new mail, flag changes, expunges, from this
 * session or another, at the moments it would hear EXPUNGE or FETCH (an
 * expunge's REMOVEFROM comes first, while its number is still valid).
 * The result is kept as UIDs and told as numbers to a SEARCH without UID.
 * Only messages whose modification sequence moved are looked at again,
 * so an update costs little even for a body search.  CANCELUPDATE ends
 * one; closing the mailbox ends all. */
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "imapd.h"
#include "io.h"
#include "maildir.h"
#include "notify.h"
#include "parse.h"
#include "util.h"
#include "session.h"

#define CONTEXT_MAX 8	/* updating searches one session may keep */

struct context {
	char *tag;		/* NULL: the slot is free */
	int uid;		/* UID SEARCH: results are told as UIDs */
	struct search *s;
	uint32_t *uids;		/* the result as last told, ascending */
	size_t n;
	uint64_t modseq;	/* messages changed after this are looked at */
};

static struct context ctx[CONTEXT_MAX];

int
context_add(const char *tag, int uid, struct search *s,
    const uint32_t *uids, size_t n)
{
	size_t i;

	for (i = 0; i < CONTEXT_MAX && ctx[i].tag; i++)
		;
	if (i == CONTEXT_MAX) {
		search_free(s);
		return -1;
	}
	ctx[i].tag = xstrdup(tag);
	ctx[i].uid = uid;
	ctx[i].s = s;
	ctx[i].uids = xreallocarray(NULL, n + 1, sizeof(*uids));
	memcpy(ctx[i].uids, uids, n * sizeof(*uids));
	ctx[i].n = n;
	ctx[i].modseq = sess.f.highestmodseq;
	return 0;
}

static void
drop(struct context *c)
{
	free(c->tag);
	search_free(c->s);
	free(c->uids);
	memset(c, 0, sizeof(*c));
}

void
context_clear(void)
{
	size_t i;

	for (i = 0; i < CONTEXT_MAX; i++)
		if (ctx[i].tag)
			drop(&ctx[i]);
}

static int
has(const struct context *c, uint32_t uid)
{
	size_t lo = 0, hi = c->n, mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (c->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->n && c->uids[lo] == uid;
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
	c->n = o;
	say(c, "REMOVEFROM", rm, nrm);
	free(rm);
}

void
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
	say(c, "REMOVEFROM", rm, nrm);
	notify_update_fetch(c->tag, add, nadd);
	say(c, "ADDTO", add, nadd);
	free(c->uids);
	c->uids = now;
	c->n = nnow;
	c->modseq = sess.f.highestmodseq;
	free(add);
	free(rm);
}

void
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
