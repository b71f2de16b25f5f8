/* view.c: the selected mailbox as the client sees it.  Sequence numbers
 * are indexes into the view, which changes only at safe points
 * (view_sync); SELECT and EXAMINE with QRESYNC, flags and STORE, COPY and
 * MOVE, EXPUNGE, CLOSE, and the replies of SEARCH, SORT and THREAD. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "context.h"
#include "imapd.h"
#include "io.h"
#include "maildir.h"
#include "notify.h"
#include "parse.h"
#include "partial.h"
#include "progress.h"
#include "quota.h"
#include "savedate.h"
#include "sort.h"
#include "util.h"
#include "session.h"

/* the store's change count the view last matched, and whether messages
 * gone from the store wait in it for their EXPUNGE */
static unsigned long view_changes;
static int view_gone;

/* system flags in the order FLAGS lists them; P is shown as $Forwarded */
static const struct {
	uint32_t bit;
	const char *name;
} sysflags[] = {
	{ FL_ANSWERED, "\\Answered" },
	{ FL_FLAGGED, "\\Flagged" },
	{ FL_DELETED, "\\Deleted" },
	{ FL_SEEN, "\\Seen" },
	{ FL_DRAFT, "\\Draft" },
	{ FL_PASSED, "$Forwarded" },
};

/* --- flags ------------------------------------------------------------ */

void
flag_list(struct buf *b, uint32_t flags, uint32_t kw)
{
	size_t i;
	int n = 0;

	buf_addc(b, '(');
	for (i = 0; i < LEN(sysflags); i++)
		if (flags & sysflags[i].bit)
			buf_printf(b, "%s%s", n++ ? " " : "", sysflags[i].name);
	for (i = 0; i < (size_t)sess.f.nkw; i++)
		if (kw & (1U << i))
			buf_printf(b, "%s%s", n++ ? " " : "", sess.f.kw[i]);
	if ((flags & FL_RECENT) && !sess.rev2)
		buf_printf(b, "%s\\Recent", n ? " " : "");
	buf_addc(b, ')');
}

/* the bit of a system flag name, 0 for a keyword, -1 for a flag that may
 * not be stored */
long
sysflag(const char *name)
{
	size_t i;

	for (i = 0; i < LEN(sysflags); i++)
		if (!ascii_casecmp(name, sysflags[i].name))
			return sysflags[i].bit;
	if (name[0] == '\\')
		return -1;
	return 0;
}

/* a parenthesised flag list, or (bare) flags separated by spaces */
int
parse_flags(int bare, char ***names, size_t *n)
{
	size_t cap = 8;
	char *fl;

	*n = 0;
	*names = p_alloc(cap * sizeof(char *));
	if (!bare && !p_char('('))
		return bad("Expected a flag list");
	if (!bare && p_char(')'))
		return ST_OK;
	for (;;) {
		if (!(fl = p_flag()))
			return ST_BAD;
		if (*n == cap) {
			char **t = p_alloc(2 * cap * sizeof(char *));

			memcpy(t, *names, cap * sizeof(char *));
			*names = t;
			cap *= 2;
		}
		(*names)[(*n)++] = fl;
		if (!p_char(' '))
			break;
	}
	if (!bare && !p_char(')'))
		return bad("Expected ')' after flags");
	return ST_OK;
}

/* turn flag names into bits; keywords are created when create is set */
static int
flag_bits(char **names, size_t n, int create, uint32_t *flags, uint32_t *kw)
{
	size_t i;
	long bit;
	int k;

	*flags = *kw = 0;
	for (i = 0; i < n; i++) {
		if (!strcmp(names[i], "\\Recent") ||
		    !ascii_casecmp(names[i], "\\Recent"))
			continue;
		if ((bit = sysflag(names[i])) < 0)
			return bad("Invalid system flag");
		if (bit) {
			*flags |= bit;
			continue;
		}
		if ((k = folder_keyword(&sess.f, names[i], create)) < 0) {
			if (create)
				return no("LIMIT", "Too many keywords");
			continue;
		}
		*kw |= 1U << k;
	}
	return ST_OK;
}

/* --- the session's view of the selected folder ------------------------ */

static void
view_add(uint32_t uid, uint32_t flags, uint32_t kw, uint64_t modseq)
{
	struct vmsg *m;

	if (sess.v.n == sess.v.cap) {
		sess.v.cap = sess.v.cap ? sess.v.cap * 2 : 64;
		sess.v.m = xreallocarray(sess.v.m, sess.v.cap, sizeof(*sess.v.m));
	}
	m = &sess.v.m[sess.v.n++];
	m->uid = uid;
	m->flags = flags;
	m->kw = kw;
	m->gone = 0;
	m->modseq = modseq;
}

static void
view_free(void)
{
	free(sess.v.m);
	memset(&sess.v, 0, sizeof(sess.v));
}

/* "* n FETCH (", or under UIDONLY (RFC 9586) "* UIDFETCH uid (" */
void
fetch_open(size_t i)
{
	if (sess.uidonly)
		io_printf("* UIDFETCH %u (", sess.v.m[i].uid);
	else
		io_printf("* %zu FETCH (", i + 1);
}

void
print_flags_fetch(size_t i)
{
	struct buf b = { 0 };

	fetch_open(i);
	/* UID is always there: IMAP4rev2 and QRESYNC require it, and
	 * every other client can use it */
	io_printf("UID %u ", sess.v.m[i].uid);
	flag_list(&b, sess.v.m[i].flags, sess.v.m[i].kw);
	io_printf("FLAGS %s", b.p);
	if (sess.condstore)
		io_printf(" MODSEQ (%llu)",
		    (unsigned long long)sess.v.m[i].modseq);
	io_puts(")\r\n");
	buf_free(&b);
}

/* VANISHED of RFC 7162 for a list of UIDs */
static void
print_vanished(const char *earlier, const uint32_t *u, size_t n)
{
	struct buf b = { 0 };

	if (!n)
		return;
	uid_set(&b, u, n);
	io_printf("* VANISHED %s%s\r\n", earlier, b.p);
	buf_free(&b);
}

/*
 * Compare the view with the store and tell the client what changed.
 * Expunges are only reported when expunge is set: while a command works
 * by sequence number, a vanished message keeps its number (marked gone)
 * so numbers never shift under the client.
 */
static void
view_update(int expunge)
{
	struct folder *f = &sess.f;
	size_t i, j, o, added = 0, recent = 0, nvan = 0;
	uint32_t maxuid, *van = NULL;
	struct msg *m;

	if (f->nkw != sess.kw_told)
		flags_responses();
	view_changes = folder_changes(f);
	view_gone = 0;

	if ((sess.qresync || sess.uidonly) && expunge)
		van = xreallocarray(NULL, sess.v.n + 1, sizeof(*van));
	for (i = j = o = 0; i < sess.v.n; i++) {
		while (j < f->nmsgs && f->msgs[j].uid < sess.v.m[i].uid)
			j++;
		if (j == f->nmsgs || f->msgs[j].uid != sess.v.m[i].uid) {
			sess.v.m[i].gone = 1;
			view_gone = !expunge;
			if (expunge) {
				if (van)
					van[nvan++] = sess.v.m[i].uid;
				else
					io_printf("* %zu EXPUNGE\r\n", o + 1);
				continue;
			}
		} else if ((f->msgs[j].flags & ~FL_RECENT) !=
		    (sess.v.m[i].flags & ~FL_RECENT) ||
		    f->msgs[j].kw != sess.v.m[i].kw ||
		    (sess.condstore && f->msgs[j].modseq != sess.v.m[i].modseq)) {
			sess.v.m[i].flags = f->msgs[j].flags |
			    (sess.v.m[i].flags & FL_RECENT);
			sess.v.m[i].kw = f->msgs[j].kw;
			sess.v.m[i].modseq = f->msgs[j].modseq;
			sess.v.m[o] = sess.v.m[i];
			if (notify_flag_changes())
				print_flags_fetch(o);
			o++;
			continue;
		}
		sess.v.m[o++] = sess.v.m[i];
	}
	sess.v.n = o;
	print_vanished("", van, nvan);
	free(van);
	maxuid = sess.v.n ? sess.v.m[sess.v.n - 1].uid : 0;
	for (j = f->nmsgs; j > 0 && f->msgs[j - 1].uid > maxuid; j--)
		;
	for (; j < f->nmsgs; j++) {
		m = &f->msgs[j];
		view_add(m->uid, m->flags, m->kw, m->modseq);
		added++;
	}
	if (added) {
		for (i = 0; i < sess.v.n; i++)
			recent += !!(sess.v.m[i].flags & FL_RECENT);
		io_printf("* %zu EXISTS\r\n", sess.v.n);
		if (!sess.rev2)
			io_printf("* %zu RECENT\r\n", recent);
	}
}

void
view_sync(int expunge)
{
	uint32_t uidvalidity = sess.f.uidvalidity;
	uint32_t top = sess.v.n ? sess.v.m[sess.v.n - 1].uid : 0;

	if (sess.state != S_SELECTED)
		return;
	if (folder_sync(&sess.f) < 0)
		logmsg(LOG_ERR, "sync of %s failed: %s", sess.f.name,
		    strerror(errno));
	/* only when the UID list was removed by hand: the client's UIDs
	 * mean nothing any more, and it must start over */
	if (sess.f.uidvalidity != uidvalidity)
		bye("UIDVALIDITY changed: please reconnect");
	/* nothing changed and nothing held back: no walk over the view
	 * (the session's own STORE may still move an updating search) */
	if (folder_changes(&sess.f) == view_changes && !(expunge && view_gone)) {
		context_update();
		return;
	}
	if (expunge)
		context_expunged();
	view_update(expunge);
	notify_fetch_new(top);
	context_update();
}

/* index of message i of the view in the store, or -1 when it is gone */
long
store_index(size_t i)
{
	if (sess.v.m[i].gone)
		return -1;
	return folder_find(&sess.f, sess.v.m[i].uid);
}

/* Resolve a sequence set into the list of view indexes it names, in
 * ascending order.  Sequence numbers beyond the view are an error; UIDs
 * that do not exist are skipped. */
int
set_indexes(struct seqset *set, int uid, size_t **out, size_t *n)
{
	size_t i, k, cap = 16;
	uint32_t v;

	*n = 0;
	*out = p_alloc(cap * sizeof(**out));
	if (set->dollar) {
		if (!search_saved)
			return ST_OK;
		set = search_saved;
		uid = 1;
	} else if (uid) {
		seq_resolve(set, sess.v.n ? sess.v.m[sess.v.n - 1].uid : 0);
	} else {
		seq_resolve(set, sess.v.n);
	}
	for (k = 0; !uid && k < set->n; k++)
		if (set->r[k].lo == 0 || set->r[k].hi > sess.v.n)
			return bad("Invalid message sequence number");
	/* the ranges are sorted and apart: walk them, not the view */
	for (k = 0; k < set->n; k++) {
		i = uid ? view_lower(set->r[k].lo) : set->r[k].lo - 1;
		for (; i < sess.v.n; i++) {
			v = uid ? sess.v.m[i].uid : (uint32_t)(i + 1);
			if (v > set->r[k].hi)
				break;
			if (*n == cap) {
				size_t *t = p_alloc(2 * cap * sizeof(*t));

				memcpy(t, *out, cap * sizeof(*t));
				*out = t;
				cap *= 2;
			}
			(*out)[(*n)++] = i;
		}
	}
	return ST_OK;
}

/* a list of UIDs as a compact set "1:3,7" */
void
uid_set(struct buf *b, const uint32_t *u, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && u[j] == u[j - 1] + 1; j++)
			;
		if (i)
			buf_addc(b, ',');
		if (j - i > 1)
			buf_printf(b, "%u:%u", u[i], u[j - 1]);
		else
			buf_printf(b, "%u", u[i]);
	}
}

void
close_folder(void)
{
	if (sess.state != S_SELECTED)
		return;
	folder_close(&sess.f);
	view_free();
	context_clear();
	sess.state = S_AUTH;
	if (search_saved) {
		free(search_saved->r);
		free(search_saved);
		search_saved = NULL;
	}
}

/* FLAGS and PERMANENTFLAGS: at SELECT, and again before any FETCH names
 * a keyword the client has not been told of (RFC 3501 7.2.6) */
void
flags_responses(void)
{
	struct buf b = { 0 };
	int k;

	buf_adds(&b, "\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded");
	for (k = 0; k < sess.f.nkw; k++)
		buf_printf(&b, " %s", sess.f.kw[k]);
	io_printf("* FLAGS (%s)\r\n", b.p);
	if (sess.readonly)
		io_puts("* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n");
	else
		io_printf("* OK [PERMANENTFLAGS (%s%s)] Flags permitted\r\n",
		    b.p, sess.f.nkw < KW_MAX ? " \\*" : "");
	sess.kw_told = sess.f.nkw;
	buf_free(&b);
}

/* the first CONDSTORE enabling command with a mailbox selected tells its
 * HIGHESTMODSEQ (RFC 7162 3.1) */
void
condstore_on(void)
{
	if (sess.condstore)
		return;
	sess.condstore = 1;
	if (sess.state == S_SELECTED)
		io_printf("* OK [HIGHESTMODSEQ %llu] Highest\r\n",
		    (unsigned long long)MAX(sess.f.highestmodseq, 1));
}

static void
select_responses(void)
{
	size_t i, recent = 0, unseen = 0;
	char id[64];

	flags_responses();
	for (i = 0; i < sess.v.n; i++) {
		recent += !!(sess.v.m[i].flags & FL_RECENT);
		if (!unseen && !(sess.v.m[i].flags & FL_SEEN))
			unseen = i + 1;
	}
	io_printf("* %zu EXISTS\r\n", sess.v.n);
	if (sess.rev2) {
		/* RFC 9051 6.3.2: the mailbox's LIST response, no RECENT
		 * and no UNSEEN */
		io_printf("* LIST () \"%c\" ", STORE_SEP);
		list_name(sess.f.name);
		io_puts("\r\n");
	} else {
		io_printf("* %zu RECENT\r\n", recent);
		if (unseen && !sess.uidonly)
			io_printf("* OK [UNSEEN %zu] First unseen\r\n",
			    unseen);
	}
	io_printf("* OK [UIDVALIDITY %u] UIDs valid\r\n", sess.f.uidvalidity);
	io_printf("* OK [UIDNEXT %u] Predicted next UID\r\n", sess.f.uidnext);
	io_printf("* OK [HIGHESTMODSEQ %llu] Highest\r\n",
	    (unsigned long long)MAX(sess.f.highestmodseq, 1));
	if (folder_id(&sess.f, id, sizeof(id)) == 0)
		io_printf("* OK [MAILBOXID (%s)] Ok\r\n", id);
}

size_t
view_lower(uint32_t uid)
{
	size_t lo = 0, hi = sess.v.n, mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (sess.v.m[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* the UIDs of known (resolved) that are not in the view, as a set */
static void
missing_uids(struct buf *b, const struct seqset *known)
{
	size_t k, i;
	uint32_t u, end, next, last;

	for (k = 0; k < known->n; k++) {
		u = known->r[k].lo;
		end = MIN(known->r[k].hi, sess.f.uidnext - 1);
		for (i = view_lower(u); u <= end; i++) {
			/* the next UID that still exists, and the gap before */
			next = i < sess.v.n ? sess.v.m[i].uid : UINT32_MAX;
			if (next > u) {
				last = MIN(next - 1, end);
				buf_adds(b, b->len ? "," : "");
				if (last > u)
					buf_printf(b, "%u:%u", u, last);
				else
					buf_printf(b, "%u", u);
			}
			if (next >= end)
				break;
			u = next + 1;
		}
	}
}

/* VANISHED (EARLIER): UIDs of known expunged after modseq since */
void
vanished_earlier(struct seqset *known, uint64_t since)
{
	struct seqset all;
	struct range r;
	struct buf b = { 0 };
	uint32_t *u;
	size_t n, i, o;

	if (!known) {
		r.lo = 1;
		r.hi = sess.f.uidnext > 1 ? sess.f.uidnext - 1 : 1;
		all.r = &r;
		all.n = 1;
		all.dollar = 0;
		known = &all;
	}
	if (folder_vanished(&sess.f, since, &u, &n) == 0) {
		for (i = o = 0; i < n; i++)
			if (seq_has(known, u[i]))
				u[o++] = u[i];
		print_vanished("(EARLIER) ", u, o);
		free(u);
		return;
	}
	/* the history does not reach back that far: every UID the client
	 * may know of that is not here any more */
	if (sess.f.uidnext > 1)
		missing_uids(&b, known);
	if (b.len)
		io_printf("* VANISHED (EARLIER) %s\r\n", b.p);
	buf_free(&b);
}

/* SELECT ... (QRESYNC (uidvalidity modseq [known-uids [seq-match]])) */
struct qresync {
	uint32_t uidvalidity;
	uint64_t modseq;
	struct seqset known;
	int has_known;
};

static int
select_params(int *condstore, struct qresync *q)
{
	char *w;
	struct seqset seqs, uids;

	if (!p_char('('))
		return bad("Expected SELECT parameters");
	do {
		if (!(w = p_atom()))
			return ST_BAD;
		if (!ascii_casecmp(w, "CONDSTORE")) {
			*condstore = 1;
			continue;
		}
		if (ascii_casecmp(w, "QRESYNC"))
			return bad("Unknown SELECT parameter");
		if (!sess.qresync)
			return bad("QRESYNC is not enabled");
		if (p_sp() < 0 || !p_char('(') || p_number(&q->uidvalidity) < 0 ||
		    q->uidvalidity == 0 || p_sp() < 0 ||
		    p_number64(&q->modseq) < 0 || q->modseq == 0)
			return bad("Invalid QRESYNC parameters");
		if (p_char(' ') && p_peek() != '(') {
			if (p_seqset(&q->known) < 0 || q->known.dollar)
				return bad("Invalid known UIDs");
			q->has_known = 1;
			p_char(' ');
		}
		/* the sequence match data only narrows what we send */
		if (p_char('(') && (p_seqset(&seqs) < 0 || p_sp() < 0 ||
		    p_seqset(&uids) < 0 || !p_char(')')))
			return bad("Invalid sequence match data");
		if (!p_char(')'))
			return bad("Expected ')'");
		*condstore = 2;
	} while (p_char(' '));
	if (!p_char(')'))
		return bad("Expected ')'");
	return ST_OK;
}

static void
qresync_changes(struct qresync *q)
{
	size_t i;

	if (q->uidvalidity != sess.f.uidvalidity)
		return;
	if (q->has_known)
		seq_resolve(&q->known, sess.f.uidnext > 1 ? sess.f.uidnext - 1 : 1);
	vanished_earlier(q->has_known ? &q->known : NULL, q->modseq);
	for (i = 0; i < sess.v.n; i++) {
		if (sess.v.m[i].modseq <= q->modseq)
			continue;
		if (q->has_known && !seq_has(&q->known, sess.v.m[i].uid))
			continue;
		print_flags_fetch(i);
	}
}

/* Retention: a folder whose special use has a maximum age loses the
 * messages older than that whenever it is selected read-write. */
static void
expire(const char *name)
{
	const char *use = special_use_of(name);
	time_t date, cutoff;
	uint64_t size;
	size_t i, n = 0;
	int days = 0;

	for (i = 0; use && i < LEN(retention); i++)
		if (!strcmp(retention[i].use, use))
			days = retention[i].days;
	if (days <= 0)
		return;
	cutoff = time(NULL) - (time_t)days * 86400;
	for (i = 0; i < sess.f.nmsgs; i++) {
		if (msg_info(&sess.f, i, &date, &size) < 0 || date >= cutoff)
			continue;
		if (folder_expunge(&sess.f, i) == 0)
			n++;
	}
	if (n) {
		logmsg(LOG_INFO, "expired %zu messages older than %d days "
		    "from %s", n, days, name);
		folder_sync(&sess.f);
	}
}

static int
do_select(int readonly)
{
	struct qresync q;
	char *name;
	size_t i;
	int r, condstore = 0, was_selected = sess.state == S_SELECTED;

	memset(&q, 0, sizeof(q));
	if (p_sp() < 0 || !(name = mailbox_arg()))
		return ST_BAD;
	if (p_char(' ') && (r = select_params(&condstore, &q)) != ST_OK)
		return r;
	if (p_end() < 0)
		return ST_BAD;
	close_folder();
	/* RFC 7162 3.2.11: a CONDSTORE server says so, enabled or not */
	if (was_selected)
		io_puts("* OK [CLOSED] Previous mailbox closed\r\n");
	if (condstore)
		sess.condstore = 1;
	if (folder_open(&sess.f, name, !readonly) < 0) {
		if (errno == ENOENT && mbox_exists(name))
			return no("CANNOT", "Mailbox cannot be selected");
		return no_errno(name);
	}
	sess.readonly = readonly;
	sess.state = S_SELECTED;
	if (!readonly)
		expire(name);
	/* the view at its size at once: no doubling, no copy */
	sess.v.cap = sess.f.nmsgs + 64;
	sess.v.m = xreallocarray(NULL, sess.v.cap, sizeof(*sess.v.m));
	for (i = 0; i < sess.f.nmsgs; i++)
		view_add(sess.f.msgs[i].uid, sess.f.msgs[i].flags, sess.f.msgs[i].kw,
		    sess.f.msgs[i].modseq);
	view_changes = folder_changes(&sess.f);
	view_gone = 0;
	select_responses();
	if (condstore == 2)
		qresync_changes(&q);
	if (readonly)
		return ok("READ-ONLY", "EXAMINE completed");
	return ok("READ-WRITE", "SELECT completed");
}

int
cmd_select(const char *tag, int uid)
{
	return do_select(0);
}

int
cmd_examine(const char *tag, int uid)
{
	return do_select(1);
}

/* --- selected state --------------------------------------------------- */

int
cmd_check(const char *tag, int uid)
{
	if (p_end() < 0)
		return ST_BAD;
	return ok(NULL, "CHECK completed");
}

/* remove the \Deleted messages (of set, when given) from the store */
static int
expunge(struct seqset *uids, size_t *n)
{
	size_t i;
	int failed = 0;

	*n = 0;
	if (sess.readonly)
		return no("READ-ONLY", "Mailbox is read-only");
	folder_sync(&sess.f);
	for (i = 0; i < sess.f.nmsgs; i++) {
		if (!(sess.f.msgs[i].flags & FL_DELETED))
			continue;
		if (uids && !seq_has(uids, sess.f.msgs[i].uid))
			continue;
		if (folder_expunge(&sess.f, i) == 0)
			(*n)++;
		else if (errno != ENOENT)
			failed = errno;
	}
	if (failed) {
		errno = failed;
		return no_errno("EXPUNGE");
	}
	return ST_OK;
}

int
cmd_expunge(const char *tag, int uid)
{
	struct seqset set;
	size_t n;
	int r;

	if (uid) {
		if (p_sp() < 0 || p_seqset(&set) < 0 || p_end() < 0)
			return ST_BAD;
		if (set.dollar)
			return bad("$ is not allowed here");
		seq_resolve(&set, sess.v.n ? sess.v.m[sess.v.n - 1].uid : 0);
	} else if (p_end() < 0) {
		return ST_BAD;
	}
	if ((r = expunge(uid ? &set : NULL, &n)) != ST_OK)
		return r;
	/* RFC 7162 3.2.7: with QRESYNC the new HIGHESTMODSEQ comes along */
	if (n && sess.qresync) {
		view_sync(1);
		return ok(set_code("HIGHESTMODSEQ %llu",
		    (unsigned long long)sess.f.highestmodseq), "EXPUNGE completed");
	}
	return ok(NULL, "EXPUNGE completed");
}

int
cmd_close(const char *tag, int uid)
{
	size_t n;

	if (p_end() < 0)
		return ST_BAD;
	if (!sess.readonly)
		expunge(NULL, &n);
	close_folder();
	return ok(NULL, "CLOSE completed");
}

int
cmd_unselect(const char *tag, int uid)
{
	if (p_end() < 0)
		return ST_BAD;
	close_folder();
	return ok(NULL, "UNSELECT completed");
}

/* COPY and MOVE: the store indexes of the messages in set */
static int
copy_sources(int uid, size_t **idx, size_t *n, uint32_t **srcuids)
{
	struct seqset set;
	size_t *vi, nv, i;
	long k;
	int r;

	if (p_sp() < 0 || p_seqset(&set) < 0 || p_sp() < 0)
		return ST_BAD;
	if ((r = set_indexes(&set, uid, &vi, &nv)) != ST_OK)
		return r;
	*idx = p_alloc((nv + 1) * sizeof(**idx));
	*srcuids = p_alloc((nv + 1) * sizeof(**srcuids));
	for (*n = i = 0; i < nv; i++) {
		if ((k = store_index(vi[i])) < 0)
			return no("EXPUNGEISSUED",
			    "Some of the messages no longer exist");
		(*idx)[*n] = k;
		(*srcuids)[(*n)++] = sess.v.m[vi[i]].uid;
	}
	return ST_OK;
}

/* QUOTA: room for copies of messages idx */
static int
copy_room(const size_t *idx, size_t n)
{
	uint64_t total = 0, size;
	time_t date;
	size_t i;

	for (i = 0; i < n; i++)
		if (msg_info(&sess.f, idx[i], &date, &size) == 0)
			total += size;
	return quota_room(total, n);
}

static int
copy(int uid, int move)
{
	size_t *idx, n, i;
	uint32_t *src, *dst, uidv;
	struct buf b = { 0 };
	char *name;
	int r;

	if ((r = copy_sources(uid, &idx, &n, &src)) != ST_OK)
		return r;
	if (!(name = mailbox_arg()) || p_end() < 0)
		return ST_BAD;
	if (move && sess.readonly)
		return no("READ-ONLY", "Mailbox is read-only");
	if (!mbox_exists(name))
		return no("TRYCREATE", "No such mailbox");
	if (n == 0)
		return ok(NULL, "No messages");
	/* a MOVE stays within the one quota root */
	if (!move && copy_room(idx, n) < 0)
		return errno == EDQUOT ? no("OVERQUOTA", "Over quota") :
		    no_errno("COPY");
	dst = p_alloc(n * sizeof(*dst));
	if ((move ? folder_move : folder_copy)(&sess.f, idx, n, name, &uidv,
	    dst) < 0) {
		if (errno == ENOENT)
			return no("EXPUNGEISSUED",
			    "Some of the messages no longer exist");
		return no_errno(move ? "MOVE" : "COPY");
	}
	/* the copies share the source's inode, and so its birth time */
	if (savedate_add(name, uidv, dst, n, time(NULL)) < 0)
		logmsg(LOG_ERR, "%s: save dates not recorded: %s",
		    move ? "MOVE" : "COPY", strerror(errno));
	buf_printf(&b, "COPYUID %u ", uidv);
	uid_set(&b, src, n);
	buf_addc(&b, ' ');
	uid_set(&b, dst, n);
	set_code("%s", b.p);
	buf_free(&b);
	if (!move)
		return ok(sess.codebuf.p, "COPY completed");
	/* RFC 6851: COPYUID comes untagged, before the expunges */
	io_printf("* OK [%s] Moved\r\n", sess.codebuf.p);
	for (i = n; i-- > 0;)
		if (folder_expunge(&sess.f, idx[i]) < 0 && errno != ENOENT)
			logmsg(LOG_ERR, "MOVE: expunge of UID %u: %s", src[i],
			    strerror(errno));
	return ok(NULL, "MOVE completed");
}

int
cmd_copy(const char *tag, int uid)
{
	return copy(uid, 0);
}

int
cmd_move(const char *tag, int uid)
{
	return copy(uid, 1);
}

/* --- STORE ------------------------------------------------------------ */

/* the new flags of a message under STORE's mode */
static void
store_apply(int mode, uint32_t fl, uint32_t kw, uint32_t *nfl, uint32_t *nkw)
{
	if (mode > 0) {
		*nfl |= fl;
		*nkw |= kw;
	} else if (mode < 0) {
		*nfl &= ~fl;
		*nkw &= ~kw;
	} else {
		*nfl = fl;
		*nkw = kw;
	}
}

/* STORE's optional (UNCHANGEDSINCE modseq) */
static int
store_modifier(uint64_t *unchanged)
{
	*unchanged = UINT64_MAX;
	if (!p_char('('))
		return ST_OK;
	if (!p_keyword("UNCHANGEDSINCE") || p_sp() < 0 ||
	    p_number64(unchanged) < 0 || !p_char(')') || p_sp() < 0)
		return bad("Invalid STORE modifier");
	condstore_on();
	return ST_OK;
}

int
cmd_store(const char *tag, int uid)
{
	struct seqset set;
	struct buf modified = { 0 };
	char *item, **names;
	size_t *vi, nv, i, nnames;
	uint32_t fl, kw, nfl, nkw;
	uint64_t unchanged;
	int mode, silent, r, failed = 0;
	long k;

	if (p_sp() < 0 || p_seqset(&set) < 0 || p_sp() < 0)
		return ST_BAD;
	if ((r = store_modifier(&unchanged)) != ST_OK)
		return r;
	if (!(item = p_atom()) || p_sp() < 0)
		return ST_BAD;
	mode = item[0] == '+' ? 1 : item[0] == '-' ? -1 : 0;
	if (mode)
		item++;
	silent = !ascii_casecmp(item, "FLAGS.SILENT");
	if (!silent && ascii_casecmp(item, "FLAGS"))
		return bad("Expected FLAGS, +FLAGS or -FLAGS");
	if ((r = parse_flags(p_peek() != '(', &names, &nnames)) != ST_OK)
		return r;
	if (p_end() < 0)
		return ST_BAD;
	if ((r = set_indexes(&set, uid, &vi, &nv)) != ST_OK)
		return r;
	if (sess.readonly)
		return no("READ-ONLY", "Mailbox is read-only");
	if ((r = flag_bits(names, nnames, mode >= 0, &fl, &kw)) != ST_OK)
		return r;
	/* start from the flags on disk, so a change another client made
	 * meanwhile is not undone */
	folder_sync(&sess.f);
	if (sess.f.nkw != sess.kw_told)
		flags_responses();
	for (i = 0; i < nv; i++) {
		struct vmsg *m = &sess.v.m[vi[i]];

		/* expunged meanwhile: nothing to change, and its EXPUNGE
		 * comes soon (RFC 2180 4.2) */
		if ((k = store_index(vi[i])) < 0)
			continue;
		if (sess.f.msgs[k].modseq > unchanged) {
			buf_printf(&modified, "%s%u", modified.len ? "," : "",
			    uid ? m->uid : (uint32_t)vi[i] + 1);
			continue;
		}
		nfl = sess.f.msgs[k].flags & ~FL_RECENT;
		nkw = sess.f.msgs[k].kw;
		store_apply(mode, fl, kw, &nfl, &nkw);
		if ((nfl != (sess.f.msgs[k].flags & ~FL_RECENT) ||
		    nkw != sess.f.msgs[k].kw) &&
		    folder_setflags(&sess.f, k, nfl, nkw) < 0) {
			if (errno != ENOENT)
				failed = errno;
			continue;
		}
		/* the store merged our change with any made meanwhile */
		m->flags = (sess.f.msgs[k].flags & ~FL_RECENT) |
		    (m->flags & FL_RECENT);
		m->kw = sess.f.msgs[k].kw;
		m->modseq = sess.f.msgs[k].modseq;
		if (!silent)
			print_flags_fetch(vi[i]);
		else if (unchanged != UINT64_MAX) {
			fetch_open(vi[i]);
			io_printf("UID %u MODSEQ (%llu))\r\n", m->uid,
			    (unsigned long long)m->modseq);
		}
	}
	if (modified.len) {
		set_code("MODIFIED %s", modified.p);
		buf_free(&modified);
		return ok(sess.codebuf.p, "Conditional STORE failed for some");
	}
	if (failed) {
		errno = failed;
		return no_errno("STORE");
	}
	return ok(NULL, "STORE completed");
}

static size_t search_run(struct search *, size_t *);

/* --- SEARCH ----------------------------------------------------------- */

enum { RET_MIN = 1, RET_MAX = 2, RET_COUNT = 4, RET_ALL = 8, RET_SAVE = 16,
	RET_PARTIAL = 32, RET_UPDATE = 64, RET_CONTEXT = 128 };

/* RETURN (MIN MAX COUNT ALL SAVE) of ESEARCH (RFC 4731) and SEARCHRES,
 * and PARTIAL range (RFC 9394) */
static int
search_return(int *ret, struct partial *pr)
{
	char *w;

	*ret = 0;
	if (p_sp() < 0 || !p_char('('))
		return bad("Expected RETURN options");
	while (!p_char(')')) {
		if (*ret && p_sp() < 0)
			return ST_BAD;
		/* UPDATE (items): FETCH of new matches (NOTIFY) */
		if (p_peek() == '(' && (*ret & RET_UPDATE)) {
			if (notify_update_items() != ST_OK)
				return ST_BAD;
			continue;
		}
		if (!(w = p_atom()))
			return ST_BAD;
		if (!ascii_casecmp(w, "MIN"))
			*ret |= RET_MIN;
		else if (!ascii_casecmp(w, "MAX"))
			*ret |= RET_MAX;
		else if (!ascii_casecmp(w, "COUNT"))
			*ret |= RET_COUNT;
		else if (!ascii_casecmp(w, "ALL"))
			*ret |= RET_ALL;
		else if (!ascii_casecmp(w, "SAVE"))
			*ret |= RET_SAVE;
		else if (!ascii_casecmp(w, "UPDATE"))
			*ret |= RET_UPDATE;
		else if (!ascii_casecmp(w, "CONTEXT"))
			*ret |= RET_CONTEXT;	/* a hint: results are cheap */
		else if (!ascii_casecmp(w, "PARTIAL") && !(*ret & RET_PARTIAL)) {
			if (p_sp() < 0 || partial_parse(pr) < 0)
				return ST_BAD;
			*ret |= RET_PARTIAL;
		} else
			return bad("Unknown RETURN option");
		*ret |= 1 << 8;	/* RETURN was given */
	}
	if (!(*ret & 0xff))
		*ret |= RET_ALL;	/* RETURN () means ALL */
	if ((*ret & RET_ALL) && (*ret & RET_PARTIAL))
		return bad("PARTIAL and ALL cannot be used together");
	return p_sp() < 0 ? ST_BAD : ST_OK;
}

static void
save_result(const uint32_t *uids, size_t n)
{
	struct seqset *set;
	size_t i;

	if (search_saved) {
		free(search_saved->r);
		free(search_saved);
	}
	set = xcalloc(1, sizeof(*set));
	set->r = xcalloc(n + 1, sizeof(*set->r));
	for (i = 0; i < n; i++)
		set->r[i].lo = set->r[i].hi = uids[i];
	set->n = n;
	seq_resolve(set, 0);
	search_saved = set;
}

/* the MODSEQ of a result whose program names MODSEQ (RFC 4731 3.2): of
 * the message MIN or MAX returns alone, of the two with MIN and MAX, else
 * the highest of all the view indexes idx; 0 for none */
static uint64_t
result_modseq(int ret, const size_t *idx, size_t n)
{
	uint64_t max = 0;
	size_t i;
	long k;

	for (i = 0; i < n; i++) {
		if ((ret & 0xff & ~RET_SAVE) && !(ret & (RET_ALL | RET_COUNT)) &&
		    !((ret & RET_MIN) && i == 0) &&
		    !((ret & RET_MAX) && i == n - 1))
			continue;
		if ((k = store_index(idx[i])) >= 0)
			max = MAX(max, sess.f.msgs[k].modseq);
		else
			max = MAX(max, sess.v.m[idx[i]].modseq);
	}
	return max;
}

/* " PARTIAL (range set)" of the results res[0..n), NIL for none; the
 * set is in ascending order for SEARCH, in the given order for SORT */
static void
partial_reply(const struct partial *pr, const uint32_t *res, size_t n,
    int sorted)
{
	struct buf b = { 0 };
	size_t from, count, i;

	count = partial_window(pr, n, &from);
	buf_adds(&b, " PARTIAL (");
	partial_name(&b, pr);
	buf_addc(&b, ' ');
	if (!count)
		buf_adds(&b, "NIL");
	else if (!sorted)
		uid_set(&b, res + from, count);
	for (i = 0; sorted && i < count; i++)
		buf_printf(&b, "%s%u", i ? "," : "", res[from + i]);
	buf_addc(&b, ')');
	io_puts(b.p);
	buf_free(&b);
}

static void
esearch_reply(const char *tag, int uid, int ret, const uint32_t *hits,
    size_t n, uint64_t maxmod, const struct partial *pr)
{
	struct buf b = { 0 };

	io_printf("* ESEARCH (TAG \"%s\")%s", tag, uid ? " UID" : "");
	if ((ret & RET_MIN) && n)
		io_printf(" MIN %u", hits[0]);
	if ((ret & RET_MAX) && n)
		io_printf(" MAX %u", hits[n - 1]);
	if (ret & RET_COUNT)
		io_printf(" COUNT %zu", n);
	if ((ret & RET_ALL) && n) {
		uid_set(&b, hits, n);
		io_printf(" ALL %s", b.p);
		buf_free(&b);
	}
	if (ret & RET_PARTIAL)
		partial_reply(pr, hits, n, 0);
	if (maxmod)
		io_printf(" MODSEQ %llu", (unsigned long long)maxmod);
	io_puts("\r\n");
}

int
cmd_search(const char *tag, int uid)
{
	struct search *srch;
	const char *code;
	uint32_t *hits, *uids;
	uint64_t maxmod = 0;
	size_t i, n, *idx, from = 0, count;
	struct partial pr = { 0 };
	int ret = 0, r;

	if (p_sp() < 0)
		return ST_BAD;
	if (p_keyword("RETURN") && (r = search_return(&ret, &pr)) != ST_OK)
		return r;
	if (sess.rev2 && !(ret & 0xff))
		ret |= RET_ALL;	/* IMAP4rev2 answers SEARCH with ESEARCH */
	if (!(srch = search_parse(uid, &code))) {
		if (code)
			return no(code, "%s", perr);
		return ST_BAD;
	}
	if (p_end() < 0)
		return ST_BAD;
	if ((ret & RET_UPDATE) && (ret & RET_SAVE))
		return bad("UPDATE and SAVE cannot be used together");
	hits = p_alloc((sess.v.n + 1) * sizeof(*hits));
	uids = p_alloc((sess.v.n + 1) * sizeof(*uids));
	idx = p_alloc((sess.v.n + 1) * sizeof(*idx));
	if (search_uses_modseq(srch))
		condstore_on();
	n = search_run(srch, idx);
	for (i = 0; i < n; i++) {
		uids[i] = sess.v.m[idx[i]].uid;
		hits[i] = uid ? uids[i] : idx[i] + 1;
	}
	if (search_uses_modseq(srch))
		maxmod = result_modseq(ret, idx, n);
	/* with PARTIAL, SAVE keeps the page the client sees */
	count = ret & RET_PARTIAL ? partial_window(&pr, n, &from) : n;
	if (ret & RET_SAVE)
		save_result(uids + from, count);
	/* CONTEXT=SEARCH (RFC 5267): kept, and updated from now on */
	if ((ret & RET_UPDATE) && context_add(tag, uid, search_keep(srch),
	    uids, n) < 0)
		io_printf("* OK [NOUPDATE \"%s\"] Too many updating searches\r\n",
		    tag);
	if (ret & 0xff & ~RET_SAVE) {
		esearch_reply(tag, uid, ret, hits, n, maxmod, &pr);
	} else if (!(ret & RET_SAVE)) {
		io_puts("* SEARCH");
		for (i = 0; i < n; i++)
			io_printf(" %u", hits[i]);
		if (maxmod)
			io_printf(" (MODSEQ %llu)", (unsigned long long)maxmod);
		io_puts("\r\n");
	}
	return ok(NULL, "SEARCH completed");
}

/* --- SORT and THREAD (RFC 5256) ---------------------------------------- */

/* the view indexes of the messages a search program matches */
static size_t
search_run(struct search *srch, size_t *idx)
{
	size_t i, n = 0;

	search_limits(srch, sess.v.n, sess.v.n ? sess.v.m[sess.v.n - 1].uid : 0);
	for (i = 0; i < sess.v.n; i++) {
		if (search_match(srch, &sess.f, &sess.v, i) > 0)
			idx[n++] = i;
		progress(i + 1, sess.v.n);
	}
	return n;
}

/* charset SP search-keys, as SORT and THREAD take them */
static struct search *
charset_and_keys(void)
{
	struct search *srch;
	const char *code;
	char *charset;

	if (!(charset = p_astring(NULL)) || p_sp() < 0)
		return NULL;
	if (!(srch = search_parse_keys(charset, &code)) && code)
		no(code, "%s", perr);
	return srch;
}

/* ESORT (RFC 5267): like ESEARCH, with ALL and PARTIAL in sort order */
static void
esort_reply(const char *tag, int uid, int ret, const size_t *idx, size_t n,
    uint64_t maxmod, const struct partial *pr)
{
	struct buf b = { 0 };
	uint32_t *u;
	size_t i;

	io_printf("* ESEARCH (TAG \"%s\")%s", tag, uid ? " UID" : "");
	if ((ret & RET_MIN) && n)
		io_printf(" MIN %u", uid ? sess.v.m[idx[0]].uid :
		    (uint32_t)idx[0] + 1);
	if ((ret & RET_MAX) && n)
		io_printf(" MAX %u", uid ? sess.v.m[idx[n - 1]].uid :
		    (uint32_t)idx[n - 1] + 1);
	if (ret & RET_COUNT)
		io_printf(" COUNT %zu", n);
	if ((ret & RET_ALL) && n) {
		u = p_alloc(n * sizeof(*u));
		for (i = 0; i < n; i++)
			u[i] = uid ? sess.v.m[idx[i]].uid : (uint32_t)idx[i] + 1;
		uid_set(&b, u, n);
		io_printf(" ALL %s", b.p);
		buf_free(&b);
	}
	if (maxmod)
		io_printf(" MODSEQ %llu", (unsigned long long)maxmod);
	if (ret & RET_PARTIAL) {
		uint32_t *res = p_alloc((n + 1) * sizeof(*res));

		for (i = 0; i < n; i++)
			res[i] = uid ? sess.v.m[idx[i]].uid :
			    (uint32_t)idx[i] + 1;
		partial_reply(pr, res, n, 1);
	}
	io_puts("\r\n");
}

int
cmd_sort(const char *tag, int uid)
{
	struct sortprog *prog;
	struct search *srch;
	struct partial pr = { 0 };
	size_t *idx, n, i, from = 0, count;
	uint32_t *uids;
	uint64_t maxmod = 0;
	int ret = 0, r;

	if (p_sp() < 0)
		return ST_BAD;
	if (p_keyword("RETURN") && (r = search_return(&ret, &pr)) != ST_OK)
		return r;
	if (ret & RET_UPDATE)
		return bad("UPDATE is for SEARCH only");
	if (!(prog = sort_parse()) || p_sp() < 0)
		return ST_BAD;
	if (!(srch = charset_and_keys()))
		return sess.code ? ST_NO : ST_BAD;
	if (p_end() < 0)
		return ST_BAD;
	idx = p_alloc((sess.v.n + 1) * sizeof(*idx));
	n = search_run(srch, idx);
	sort_run(prog, &sess.f, &sess.v, idx, n);
	if (ret & RET_SAVE) {
		count = ret & RET_PARTIAL ? partial_window(&pr, n, &from) : n;
		uids = p_alloc((count + 1) * sizeof(*uids));
		for (i = 0; i < count; i++)
			uids[i] = sess.v.m[idx[from + i]].uid;
		save_result(uids, count);
	}
	/* RFC 7162 3.1.10: a MODSEQ criterion adds the highest modseq */
	if (search_uses_modseq(srch)) {
		condstore_on();
		maxmod = result_modseq(ret, idx, n);
	}
	if (ret & 0xff & ~RET_SAVE) {
		esort_reply(tag, uid, ret, idx, n, maxmod, &pr);
	} else if (!(ret & RET_SAVE)) {
		io_puts("* SORT");
		for (i = 0; i < n; i++)
			io_printf(" %u", uid ? sess.v.m[idx[i]].uid :
			    (uint32_t)idx[i] + 1);
		if (maxmod)
			io_printf(" (MODSEQ %llu)", (unsigned long long)maxmod);
		io_puts("\r\n");
	}
	return ok(NULL, "SORT completed");
}

int
cmd_thread(const char *tag, int uid)
{
	struct search *srch;
	struct buf b = { 0 };
	size_t *idx, n;
	char *name;
	int alg;

	if (p_sp() < 0 || !(name = p_atom()) || p_sp() < 0)
		return ST_BAD;
	if ((alg = thread_alg(name)) < 0)
		return bad("Unknown threading algorithm");
	if (!(srch = charset_and_keys()))
		return sess.code ? ST_NO : ST_BAD;
	if (p_end() < 0)
		return ST_BAD;
	idx = p_alloc((sess.v.n + 1) * sizeof(*idx));
	n = search_run(srch, idx);
	thread_run(alg, &sess.f, &sess.v, idx, n, uid, &b);
	io_printf("* THREAD%s%s\r\n", b.len ? " " : "", b.len ? b.p : "");
	buf_free(&b);
	return ok(NULL, "THREAD completed");
}
