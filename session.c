/* session.c: the state of one IMAP session and the one place that
 * answers the client: the replies, the capability line, mailbox names and
 * flags as the client spells them, and the client's view of the selected
 * mailbox.  Sequence numbers are indexes into the view, which changes only
 * at safe points (view_sync); the untagged EXPUNGE, VANISHED, EXISTS and
 * FETCH FLAGS that tell the client of changes are written here.  The
 * command handlers sit above and return a status (ST_*); the store sits
 * below. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "compress.h"
#include "config.h"
#include "io.h"
#include "maildir.h"
#include "mutf7.h"
#include "parse.h"
#include "tls.h"
#include "util.h"
#include "session.h"

struct session sess;

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

/* UIDs this connection itself put into the selected mailbox (APPEND,
 * COPY, MOVE), as ranges, the oldest dropped when full: a watcher need
 * not tell the client what it did itself (RFC 5465 5.2) */
static struct { uint32_t lo, hi; } own[OWN_RANGES];
static size_t nown;

/* the view's watchers (CONTEXT=SEARCH, NOTIFY), registered from above */
static const struct view_watch *watch[4];
static size_t nwatch;

/* tell every watcher that has it: FOR_WATCH(closed) */
#define FOR_WATCH(fn) do { size_t w_; for (w_ = 0; w_ < nwatch; w_++) \
	if (watch[w_]->fn) watch[w_]->fn(); } while (0)

/* flag changes are shown unless a watcher (NOTIFY) leaves them out */
static int
flags_shown(void)
{
	size_t w;

	for (w = 0; w < nwatch; w++)
		if (watch[w]->shows_flags && !watch[w]->shows_flags())
			return 0;
	return 1;
}

static void
tell_arrived(uint32_t top)
{
	size_t w;

	for (w = 0; w < nwatch; w++)
		if (watch[w]->arrived)
			watch[w]->arrived(top);
}

/* --- replies ---------------------------------------------------------- */

int
no(const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sess.text, sizeof(sess.text), fmt, ap);
	va_end(ap);
	sess.code = code;
	return ST_NO;
}

int
bad(const char *why)
{
	if (!perr)
		perr = why;
	return ST_BAD;
}

int
ok(const char *code, const char *text)
{
	snprintf(sess.text, sizeof(sess.text), "%s", text);
	sess.code = code;
	return ST_OK;
}

/* a response code built at run time: "APPENDUID 3 7" */
const char *
set_code(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	buf_reset(&sess.codebuf);
	buf_add(&sess.codebuf, p, n);
	free(p);
	sess.code = sess.codebuf.p;
	return sess.code;
}

/* a store failure as the client should hear it */
int
no_errno(const char *what)
{
	switch (errno) {
	case ENOENT:
		return no("NONEXISTENT", "%s: no such mailbox", what);
	case EEXIST:
		return no("ALREADYEXISTS", "%s: mailbox already exists", what);
	case EINVAL:
	case ENAMETOOLONG:
		return no("CANNOT", "%s: invalid mailbox name", what);
	case EPERM:
		return no("CANNOT", "%s: not allowed on INBOX", what);
	case ENOTEMPTY:
		return no("INUSE", "%s: mailbox has children", what);
	case ENOSPC:
	case EDQUOT:
		return no("OVERQUOTA", "%s: out of disk space", what);
	case EACCES:
		return no("NOPERM", "%s: permission denied", what);
	default:
		logmsg(LOG_ERR, "%s: %s", what, strerror(errno));
		return no("SERVERBUG", "%s failed", what);
	}
}

/* the capability line, which changes with the state */
void
capability_line(struct buf *b)
{
	buf_adds(b, "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE "
	    "UIDPLUS UNSELECT CHILDREN MOVE CONDSTORE QRESYNC ESEARCH "
	    "SEARCHRES SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED "
	    "LIST-STATUS STATUS=SIZE UTF8=ACCEPT MULTIAPPEND OBJECTID SORT "
	    "SORT=DISPLAY ESORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES");
	buf_adds(b, " WITHIN BINARY PARTIAL SAVEDATE PREVIEW QUOTA "
	    "QUOTA=RES-STORAGE QUOTA=RES-MESSAGE REPLACE UIDONLY I18NLEVEL=1 "
	    "CONTEXT=SEARCH CATENATE URL-PARTIAL NOTIFY");
	buf_adds(b, " CONTEXT=SORT");
	if (sess.state == S_NOAUTH) {
		if (!sess.tls && tls_available())
			buf_adds(b, " STARTTLS");
		if (sess.secure)
			buf_adds(b, " AUTH=PLAIN");
		else
			buf_adds(b, " LOGINDISABLED");
		if (sess.tls && tls_client_verified())
			buf_adds(b, " AUTH=EXTERNAL");
		return;
	}
	buf_printf(b, " APPENDLIMIT=%llu", (unsigned long long)APPEND_MAX);
	if (compress_available())
		buf_adds(b, " COMPRESS=DEFLATE");
}

void
bye(const char *why)
{
	io_printf("* BYE %s\r\n", why);
	io_close();
	exit(0);
}

/* the tagged reply: the status a handler returned, with the code and text
 * it left in the session */
void
answer(const char *tag, int r)
{
	const char *st = r == ST_OK ? "OK" : r == ST_NO ? "NO" : "BAD";
	char text[sizeof(sess.text)];

	if (r == ST_BAD) {
		sess.code = perr_code && !strcmp(perr_code, "TOOBIG") ?
		    "TOOBIG" : NULL;
		snprintf(sess.text, sizeof(sess.text), "%s",
		    perr ? perr : "Invalid command");
	}
	/* the text may quote the client (a mailbox name): never let it
	 * end the line or carry bytes that are not UTF-8 */
	esc(text, sizeof(text), sess.text);
	if (sess.code)
		io_printf("%s %s [%s] %s\r\n", tag, st, sess.code, text);
	else
		io_printf("%s %s %s\r\n", tag, st, text);
}

/* --- mailbox names ---------------------------------------------------- */

/* A mailbox name from the client, as the store names it: UTF-8 names
 * (UTF8=ACCEPT, IMAP4rev2) become modified UTF-7. */
char *
mailbox_arg(void)
{
	struct buf b = { 0 };
	char *name, *out;

	if (!(name = p_mailbox()) || !sess.utf8)
		return name;
	if (utf8_to_mutf7(&b, name) < 0) {
		buf_free(&b);
		perr = "Mailbox name is not valid UTF-8";
		return NULL;
	}
	out = p_strdup(b.p ? b.p : "", b.len);
	buf_free(&b);
	return out;
}

/* may go in a quoted string under UTF8=ACCEPT: no controls */
static int
utf8_quotable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

/* a stored mailbox name as the client sees it */
const char *
shown_name(const char *name)
{
	struct buf b = { 0 };
	char *out;

	if (!sess.utf8 || mutf7_to_utf8(&b, name) < 0) {
		buf_free(&b);
		return name;
	}
	out = p_strdup(b.p ? b.p : "", b.len);
	buf_free(&b);
	return out;
}

/* a mailbox name as an IMAP string */
void
list_name(const char *name)
{
	struct buf b = { 0 };

	name = shown_name(name);
	if (sess.utf8 && utf8_quotable(name)) {
		/* RFC 6855: UTF-8 goes in quoted strings once enabled */
		buf_addc(&b, '"');
		for (; *name; name++) {
			if (*name == '"' || *name == '\\')
				buf_addc(&b, '\\');
			buf_addc(&b, *name);
		}
		buf_addc(&b, '"');
	} else {
		buf_addstr(&b, name, strlen(name));
	}
	io_write(b.p, b.len);
	buf_free(&b);
}

void
status_line(const char *name, const struct mboxstatus *st, int items)
{
	const char *sep = "";

	io_puts("* STATUS ");
	list_name(name);
	io_puts(" (");
	if (items & SI_MESSAGES)
		io_printf("%sMESSAGES %u", sep, st->messages), sep = " ";
	if (items & SI_RECENT)
		io_printf("%sRECENT %u", sep, st->recent), sep = " ";
	if (items & SI_UIDNEXT)
		io_printf("%sUIDNEXT %u", sep, st->uidnext), sep = " ";
	if (items & SI_UIDVALIDITY)
		io_printf("%sUIDVALIDITY %u", sep, st->uidvalidity), sep = " ";
	if (items & SI_UNSEEN)
		io_printf("%sUNSEEN %u", sep, st->unseen), sep = " ";
	if (items & SI_DELETED)
		io_printf("%sDELETED %u", sep, st->deleted), sep = " ";
	if (items & SI_SIZE)
		io_printf("%sSIZE %llu", sep, (unsigned long long)st->size),
		    sep = " ";
	if (items & SI_DELETEDSTORAGE)
		io_printf("%sDELETED-STORAGE %llu", sep,
		    (unsigned long long)(st->deleted_size + 1023) / 1024),
		    sep = " ";
	if (items & SI_APPENDLIMIT)
		io_printf("%sAPPENDLIMIT %llu", sep,
		    (unsigned long long)APPEND_MAX), sep = " ";
	if (items & SI_MAILBOXID)
		io_printf("%sMAILBOXID (%s)", sep, st->mailboxid), sep = " ";
	if (items & SI_HIGHESTMODSEQ)
		io_printf("%sHIGHESTMODSEQ %llu", sep,
		    (unsigned long long)MAX(st->highestmodseq, 1));
	io_puts(")\r\n");
}

/* the special-use attribute of a folder, or NULL */
const char *
special_use_of(const char *name)
{
	size_t i;

	const char *use;

	/* what CREATE ... (USE ...) chose wins over the configured names */
	if ((use = mbox_special_use(name)))
		return use;
	for (i = 0; i < LEN(special_use); i++)
		if (!strcmp(name, special_use[i].name))
			return special_use[i].use;
	return NULL;
}

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

/* --- the session's view of the selected folder ------------------------ */

/* the view its own copy of the records it shared with the folder */
static void
view_own(void)
{
	struct msg *m;

	if (!sess.v.shared)
		return;
	sess.v.cap = sess.v.n + 64;
	m = xreallocarray(NULL, sess.v.cap, sizeof(*m));
	memcpy(m, sess.v.m, sess.v.n * sizeof(*m));
	folder_unshare(&sess.f);
	sess.v.m = m;
	sess.v.shared = 0;
}

struct msg *
view_w(size_t i)
{
	view_own();
	return &sess.v.m[i];
}

static void
view_add(uint32_t uid, uint32_t flags, uint32_t kw, uint64_t modseq)
{
	struct msg *m;

	view_own();
	if (sess.v.n == sess.v.cap) {
		sess.v.cap = sess.v.cap ? sess.v.cap * 2 : 64;
		sess.v.m = xreallocarray(sess.v.m, sess.v.cap, sizeof(*sess.v.m));
	}
	m = &sess.v.m[sess.v.n++];
	m->uid = uid;
	m->flags = flags;
	m->kw = kw;
	m->name = 0;
	m->modseq = modseq;
}

/* the folder may be closed already: it let go of what it shared then */
static void
view_free(void)
{
	if (!sess.v.shared)
		free(sess.v.m);
	else if (sess.f.st)
		folder_unshare(&sess.f);
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

	view_own();
	if ((sess.qresync || sess.uidonly) && expunge)
		van = xreallocarray(NULL, sess.v.n + 1, sizeof(*van));
	for (i = j = o = 0; i < sess.v.n; i++) {
		while (j < f->nmsgs && f->msgs[j].uid < sess.v.m[i].uid)
			j++;
		if (j == f->nmsgs || f->msgs[j].uid != sess.v.m[i].uid) {
			sess.v.m[i].flags |= VM_GONE;
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
			if (flags_shown())
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
		FOR_WATCH(synced);
		return;
	}
	if (expunge)
		FOR_WATCH(expunging);
	view_update(expunge);
	tell_arrived(top);
	FOR_WATCH(synced);
}

/* index of message i of the view in the store, or -1 when it is gone */
long
store_index(size_t i)
{
	if (sess.v.m[i].flags & VM_GONE)
		return -1;
	/* mostly where it is in the view: the view is shared, or nothing
	 * was expunged before it */
	return folder_find_near(&sess.f, i, sess.v.m[i].uid);
}

/* whether message i of the view changed after modseq since (0: any) */
static int
changed_since(size_t i, uint64_t since)
{
	long k;

	return !since || ((k = store_index(i)) >= 0 &&
	    sess.f.msgs[k].modseq > since);
}

/* the view indexes a resolved set names, into out unless it is NULL:
 * the ranges are sorted and apart, so they are walked, not the view */
static size_t
set_walk(const struct seqset *set, int uid, uint64_t since, size_t *out)
{
	size_t i, k, n = 0;
	uint32_t v;

	for (k = 0; k < set->n; k++) {
		i = uid ? view_lower(set->r[k].lo) : set->r[k].lo - 1;
		for (; i < sess.v.n; i++) {
			v = uid ? sess.v.m[i].uid : (uint32_t)(i + 1);
			if (v > set->r[k].hi)
				break;
			if (!changed_since(i, since))
				continue;
			if (out)
				out[n] = i;
			n++;
		}
	}
	return n;
}

/* Resolve a sequence set into the list of view indexes it names, in
 * ascending order, of the messages changed after since unless it is 0.
 * Sequence numbers beyond the view are an error; UIDs that do not exist
 * are skipped. */
int
set_indexes_since(struct seqset *set, int uid, uint64_t since, size_t **out,
    size_t *n)
{
	size_t k;

	*n = 0;
	*out = NULL;
	if (set->dollar) {
		if (!sess.search_saved)
			return ST_OK;
		set = sess.search_saved;
		uid = 1;
	} else if (uid) {
		seq_resolve(set, sess.v.n ? sess.v.m[sess.v.n - 1].uid : 0);
	} else {
		seq_resolve(set, sess.v.n);
	}
	for (k = 0; !uid && k < set->n; k++)
		if (set->r[k].lo == 0 || set->r[k].hi > sess.v.n)
			return bad("Invalid message sequence number");
	/* nothing has a modseq above the folder's highest: no record is
	 * read to learn that nothing changed */
	if (since && since >= sess.f.highestmodseq) {
		*out = p_alloc(sizeof(**out));
		return ST_OK;
	}
	/* counted first, then taken at once */
	*out = p_alloc((set_walk(set, uid, since, NULL) + 1) * sizeof(**out));
	*n = set_walk(set, uid, since, *out);
	return ST_OK;
}

int
set_indexes(struct seqset *set, int uid, size_t **out, size_t *n)
{
	return set_indexes_since(set, uid, 0, out, n);
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

/* the view of a folder just opened: every message in it */
void
view_load(void)
{
	size_t i;

	nown = 0;
	/* the folder's records as they are, shared until one side changes
	 * them: SELECT copies nothing */
	if ((sess.v.m = folder_share(&sess.f))) {
		sess.v.n = sess.v.cap = sess.f.nmsgs;
		sess.v.shared = 1;
		view_changes = folder_changes(&sess.f);
		view_gone = 0;
		return;
	}
	/* the view at its size at once: no doubling, no copy */
	sess.v.cap = sess.f.nmsgs + 64;
	sess.v.m = xreallocarray(NULL, sess.v.cap, sizeof(*sess.v.m));
	for (i = 0; i < sess.f.nmsgs; i++)
		view_add(sess.f.msgs[i].uid, sess.f.msgs[i].flags, sess.f.msgs[i].kw,
		    sess.f.msgs[i].modseq);
	view_changes = folder_changes(&sess.f);
	view_gone = 0;
}

void
view_mark_own(const char *mailbox, const uint32_t *uids, size_t n)
{
	size_t i;

	if (sess.state != S_SELECTED || strcmp(mailbox, sess.f.name))
		return;
	for (i = 0; i < n; i++) {
		if (nown && uids[i] == own[nown - 1].hi + 1) {
			own[nown - 1].hi = uids[i];
			continue;
		}
		if (nown == OWN_RANGES)
			memmove(own, own + 1, --nown * sizeof(*own));
		own[nown].lo = own[nown].hi = uids[i];
		nown++;
	}
}

int
view_is_own(uint32_t uid)
{
	size_t i;

	for (i = 0; i < nown; i++)
		if (uid >= own[i].lo && uid <= own[i].hi)
			return 1;
	return 0;
}

void
view_watch(const struct view_watch *w)
{
	size_t i;

	for (i = 0; i < nwatch; i++)
		if (watch[i] == w)
			return;
	if (nwatch < sizeof(watch) / sizeof(watch[0]))
		watch[nwatch++] = w;
}

/* the result SEARCH saved (SEARCHRES "$"), replacing the one before */
void
search_save(struct seqset *set)
{
	if (sess.search_saved) {
		free(sess.search_saved->r);
		free(sess.search_saved);
	}
	sess.search_saved = set;
}

void
close_folder(void)
{
	if (sess.state != S_SELECTED)
		return;
	folder_close(&sess.f);
	view_free();
	FOR_WATCH(closed);
	sess.state = S_AUTH;
	search_save(NULL);
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
