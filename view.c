/* view.c: the commands on the selected mailbox: SELECT and EXAMINE with
 * QRESYNC, STORE, COPY and MOVE, EXPUNGE, CLOSE, and the replies of
 * SEARCH, SORT and THREAD.  The view itself (sequence numbers, what the
 * client has been told) is the session's, in session.c. */
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
#include "search.h"
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

/* the view's \Recent messages: only those the store names can be */
static size_t
recent_count(void)
{
	const uint32_t *u;
	size_t nu, i, k, n = 0;

	u = folder_recent(&sess.f, &nu);
	if (nu > sess.v.n) {
		for (i = 0; i < sess.v.n; i++)
			n += !!(sess.v.m[i].flags & FL_RECENT);
		return n;
	}
	for (k = 0; k < nu; k++) {
		i = view_lower(u[k]);
		n += i < sess.v.n && sess.v.m[i].uid == u[k] &&
		    (sess.v.m[i].flags & FL_RECENT);
	}
	return n;
}

/* the sequence number of the first unseen message, 0 for none: from
 * what the store knows, else by looking.  Right after view_load the view
 * holds the folder's messages as they are. */
static size_t
first_unseen(void)
{
	uint32_t uid;
	size_t i;

	if (folder_first_unseen(&sess.f, &uid) == 0)
		return uid ? view_lower(uid) + 1 : 0;
	for (i = 0; i < sess.v.n; i++)
		if (!(sess.v.m[i].flags & FL_SEEN))
			return i + 1;
	return 0;
}

static void
select_responses(void)
{
	size_t recent = recent_count(), unseen = first_unseen();
	char id[64];

	flags_responses();
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
	/* no record is read to learn that nothing changed */
	for (i = 0; q->modseq < sess.f.highestmodseq && i < sess.v.n; i++) {
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
	progress_store();	/* a folder's first scan can be long */
	if (folder_open(&sess.f, name, !readonly) < 0) {
		if (errno == ENOENT && mbox_exists(name))
			return no("CANNOT", "Mailbox cannot be selected");
		return no_errno(name);
	}
	sess.readonly = readonly;
	sess.state = S_SELECTED;
	if (!readonly)
		expire(name);
	view_load();
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
	progress_store();
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
	view_mark_own(name, dst, n);
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
		struct msg *m = &sess.v.m[vi[i]];

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
		m = view_w(vi[i]);
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

/* RETURN (UPDATE): the result kept (CONTEXT=SEARCH and CONTEXT=SORT),
 * or declined with NOUPDATE; a tag that names one already is refused */
static int
context_update_add(const char *tag, int uid, struct search *s,
    struct sortprog *sort, const uint32_t *uids, size_t n)
{
	int r = context_add(tag, uid, s, sort, uids, n);

	if (r == -2)
		return bad("Tag reuse: an updating search has this tag");
	if (r < 0)
		io_printf("* NO [NOUPDATE \"%s\"] Too many updating searches\r\n",
		    tag);
	return ST_OK;
}

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

	set = xcalloc(1, sizeof(*set));
	set->r = xcalloc(n + 1, sizeof(*set->r));
	for (i = 0; i < n; i++)
		set->r[i].lo = set->r[i].hi = uids[i];
	set->n = n;
	seq_resolve(set, 0);
	search_save(set);
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
	if ((ret & RET_UPDATE) && (r = context_update_add(tag, uid,
	    search_keep(srch), NULL, uids, n)) != ST_OK)
		return r;
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
	if ((ret & RET_UPDATE) && (ret & RET_SAVE))
		return bad("UPDATE and SAVE cannot be used together");
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
	/* CONTEXT=SORT (RFC 5267): kept in its order, and updated */
	if (ret & RET_UPDATE) {
		uids = p_alloc((n + 1) * sizeof(*uids));
		for (i = 0; i < n; i++)
			uids[i] = sess.v.m[idx[i]].uid;
		if ((r = context_update_add(tag, uid, search_keep(srch),
		    sort_keep(prog), uids, n)) != ST_OK)
			return r;
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
