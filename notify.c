/* notify.c: NOTIFY (RFC 5465).  The client names groups of mailboxes and
 * the events it wants of each.  While it waits between commands, and
 * while it idles, inotify on the watched folders' new/ and cur/ and on
 * the Maildir root wakes the session: a changed folder's STATUS is
 * compared with the one last told, the folder list and the subscriptions
 * with the ones last told, and the difference is pushed as STATUS and
 * LIST responses.  The selected mailbox follows the usual rules (EXISTS,
 * EXPUNGE or VANISHED, FETCH), pushed as they happen.  At most
 * NOTIFY_FOLDERS_MAX folders are watched: beyond that NOTIFY SET is
 * refused, and a tree that grows past it later ends NOTIFY with
 * NOTIFICATIONOVERFLOW. */
#include <sys/inotify.h>

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
#include "imapform.h"
#include "io.h"
#include "maildir.h"
#include "notify.h"
#include "parse.h"
#include "util.h"
#include "session.h"

enum {
	EV_NEW = 1 << 0, EV_EXPUNGE = 1 << 1, EV_FLAG = 1 << 2,
	EV_ANNOTATION = 1 << 3, EV_NAME = 1 << 4, EV_SUBSCRIPTION = 1 << 5,
	EV_MAILBOXMETA = 1 << 6, EV_SERVERMETA = 1 << 7, EV_UNKNOWN = 1 << 8,
};
#define EV_MESSAGE	(EV_NEW | EV_EXPUNGE | EV_FLAG | EV_ANNOTATION)
/* no ANNOTATE and no METADATA here: their events are refused */
#define EV_SUPPORTED	(EV_NEW | EV_EXPUNGE | EV_FLAG | EV_NAME | \
			EV_SUBSCRIPTION)

static const struct {
	const char *name;
	int bit;
} event_names[] = {
	{ "MessageNew", EV_NEW }, { "MessageExpunge", EV_EXPUNGE },
	{ "FlagChange", EV_FLAG }, { "AnnotationChange", EV_ANNOTATION },
	{ "MailboxName", EV_NAME }, { "SubscriptionChange", EV_SUBSCRIPTION },
	{ "MailboxMetadataChange", EV_MAILBOXMETA },
	{ "ServerMetadataChange", EV_SERVERMETA },
};

/* the mailboxes of an event group; INBOXES is PERSONAL, since a Sieve
 * fileinto can deliver to any folder */
enum { G_PERSONAL, G_SUBSCRIBED, G_SUBTREE, G_MAILBOXES };
enum { SEL_NONE, SEL_NOW, SEL_DELAYED };

struct group {
	int kind;
	int events;
	char **names;		/* SUBTREE and MAILBOXES */
	size_t n;
};

/* what one NOTIFY SET asked for */
struct request {
	int status;		/* STATUS: each watched folder told at once */
	int sel;		/* SELECTED or SELECTED-DELAYED named */
	int selevents;
	char **fetch;		/* MessageNew's items for the selected mailbox */
	size_t nfetch;
	struct group *g;
	size_t ng;
	int used;		/* every event named, for BADEVENT */
};

/* a folder whose messages are watched, and its STATUS as last told */
struct watched {
	char *name;
	int events;
	int wd_new, wd_cur;
	int dirty;
	struct mboxstatus told;
};

/* a folder rename seen in the root (the two halves share a cookie) */
struct move {
	uint32_t cookie;
	char *from, *to;
};

#define ROOT_MASK	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | \
			IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR)
#define DIR_MASK	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | \
			IN_MOVED_TO | IN_ONLYDIR)
#define NAMES_MAX	1000	/* names in one SUBTREE or MAILBOXES */
#define GROUPS_MAX	64	/* event groups in one NOTIFY SET */
#define FETCH_MAX	32	/* MessageNew items */
#define MOVES_MAX	1024	/* renames remembered between two looks */
#define SETTLE_MS	30	/* the root still this long: a change is whole */
#define SETTLE_ROUNDS	20
#define UPDATES_MAX	8	/* updating searches with FETCH items */

static int on;			/* a NOTIFY SET is in effect */
static struct request rq;
static int ifd = -1;		/* inotify: the root and the watched folders */
static int wd_root = -1;
static struct watched *w;
static size_t nw;
static struct mboxinfo *boxes;	/* the folder list as last told */
static size_t nboxes;
static char **subs;		/* the subscriptions as last told */
static size_t nsubs;
static int names_dirty;		/* the root changed since */
static struct move *moves;
static size_t nmoves;

/* --- lists of names -------------------------------------------------- */

static void
strv_add(char ***v, size_t *n, const char *s)
{
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = xstrdup(s);
}

static void
strv_clear(char ***v, size_t *n)
{
	size_t i;

	for (i = 0; i < *n; i++)
		free((*v)[i]);
	free(*v);
	*v = NULL;
	*n = 0;
}

static int
strv_has(char *const *v, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return 1;
	return 0;
}

static long
box_find(const struct mboxinfo *l, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(l[i].name, name))
			return i;
	return -1;
}

/* name is base or lies below it */
static int
in_subtree(const char *name, const char *base)
{
	size_t len = strlen(base);

	return !strncmp(name, base, len) &&
	    (!name[len] || name[len] == STORE_SEP);
}

static int
has_kids(const struct mboxinfo *l, size_t n, const char *name)
{
	size_t i, len = strlen(name);

	for (i = 0; i < n; i++)
		if (!strncmp(l[i].name, name, len) &&
		    l[i].name[len] == STORE_SEP)
			return 1;
	return 0;
}

/* --- the request ----------------------------------------------------- */

static void
request_free(struct request *r)
{
	size_t i;

	for (i = 0; i < r->ng; i++)
		strv_clear(&r->g[i].names, &r->g[i].n);
	free(r->g);
	strv_clear(&r->fetch, &r->nfetch);
	memset(r, 0, sizeof(*r));
}

static int
group_has(const struct group *g, char *const *sv, size_t ns,
    const char *name)
{
	size_t i;

	if (g->kind == G_PERSONAL)
		return 1;
	if (g->kind == G_SUBSCRIBED)
		return strv_has(sv, ns, name);
	for (i = 0; i < g->n; i++)
		if (g->kind == G_SUBTREE ? in_subtree(name, g->names[i]) :
		    !strcmp(name, g->names[i]))
			return 1;
	return 0;
}

/* the events asked for on a folder, given the subscriptions sv */
static int
events_for(const struct request *r, char *const *sv, size_t ns,
    const char *name)
{
	size_t i;
	int ev = 0;

	for (i = 0; i < r->ng; i++)
		if (group_has(&r->g[i], sv, ns, name))
			ev |= r->g[i].events;
	return ev;
}

/* --- parsing NOTIFY SET ---------------------------------------------- */

/* a fetch item kept as text, to be read again when mail comes */
static void
item_add(char ***items, size_t *n, const struct fetchitem *it)
{
	struct buf b = { 0 };

	buf_adds(&b, it->name);
	if (it->section) {
		buf_addc(&b, '[');
		form_section(&b, &it->sec);
		buf_addc(&b, ']');
	}
	if (it->partial)
		buf_printf(&b, "<%llu.%llu>", (unsigned long long)it->from,
		    (unsigned long long)it->count);
	strv_add(items, n, b.p);
	buf_free(&b);
}

/* "(uid body.peek[header.fields (from)])" after MessageNew or UPDATE */
static int
parse_fetch(char ***items, size_t *n)
{
	struct fetchitem it;

	if (!p_char('('))
		return bad("Expected '('");
	strv_clear(items, n);
	do {
		if (p_fetchatt(&it) < 0)
			return ST_BAD;
		if (!ascii_casecmp(it.name, "PREVIEW"))
			p_keyword(" (LAZY)");
		if (*n == FETCH_MAX)
			return bad("Too many FETCH items");
		item_add(items, n, &it);
	} while (p_char(' '));
	if (!p_char(')'))
		return bad("Expected ')'");
	return fetch_items(*items, *n, NULL, 0);
}

static int
event_bit(const char *name)
{
	size_t i;

	for (i = 0; i < LEN(event_names); i++)
		if (!ascii_casecmp(name, event_names[i].name))
			return event_names[i].bit;
	return EV_UNKNOWN;	/* an extension's: refused with BADEVENT */
}

/* "NONE" or "(MessageNew MessageExpunge ...)"; the rules of RFC 5465 5
 * and 6.1 */
static int
parse_events(struct request *r, int selected, int *mask)
{
	char *name;
	int bit, rc;

	*mask = 0;
	if (p_keyword("NONE"))
		return ST_OK;
	if (!p_char('('))
		return bad("Expected an event list or NONE");
	for (;;) {
		if (!(name = p_atom()))
			return ST_BAD;
		*mask |= bit = event_bit(name);
		if (!p_char(' '))
			break;
		if (bit == EV_NEW && p_peek() == '(') {
			if (!selected)
				return bad("MessageNew takes FETCH items only "
				    "for the selected mailbox");
			if ((rc = parse_fetch(&r->fetch, &r->nfetch)) != ST_OK)
				return rc;
			if (!p_char(' '))
				break;
		}
	}
	if (!p_char(')'))
		return bad("Expected ')'");
	if (!(*mask & EV_NEW) != !(*mask & EV_EXPUNGE))
		return bad("MessageNew and MessageExpunge go together");
	if ((*mask & (EV_FLAG | EV_ANNOTATION)) && !(*mask & EV_NEW))
		return bad("FlagChange needs MessageNew and MessageExpunge");
	if (selected && (*mask & ~(EV_MESSAGE | EV_UNKNOWN)))
		return bad("Only message events for the selected mailbox");
	return ST_OK;
}

/* one mailbox or a parenthesised list of them */
static int
parse_names(struct group *g)
{
	char *name;
	int list;

	if (p_sp() < 0)
		return ST_BAD;
	list = p_char('(');
	do {
		if (!(name = mailbox_arg()))
			return ST_BAD;
		if (g->n == NAMES_MAX)
			return bad("Too many mailbox names");
		strv_add(&g->names, &g->n, name);
	} while (list && p_char(' '));
	if (list && !p_char(')'))
		return bad("Expected ')'");
	return ST_OK;
}

static int
filter_kind(const char *f, int *sel, int *kind)
{
	*sel = SEL_NONE;
	if (!ascii_casecmp(f, "SELECTED"))
		*sel = SEL_NOW;
	else if (!ascii_casecmp(f, "SELECTED-DELAYED"))
		*sel = SEL_DELAYED;
	else if (!ascii_casecmp(f, "INBOXES") || !ascii_casecmp(f, "PERSONAL"))
		*kind = G_PERSONAL;
	else if (!ascii_casecmp(f, "SUBSCRIBED"))
		*kind = G_SUBSCRIBED;
	else if (!ascii_casecmp(f, "SUBTREE"))
		*kind = G_SUBTREE;
	else if (!ascii_casecmp(f, "MAILBOXES"))
		*kind = G_MAILBOXES;
	else
		return bad("Unknown mailbox filter");
	return ST_OK;
}

/* "(filter-mailboxes events)" */
static int
parse_group(struct request *r)
{
	struct group g = { 0 };
	char *f;
	int sel, rc;

	if (!p_char('(') || !(f = p_atom()))
		return bad("Expected an event group");
	if ((rc = filter_kind(f, &sel, &g.kind)) != ST_OK)
		return rc;
	if (sel && r->sel)
		return bad("SELECTED or SELECTED-DELAYED only once");
	if (!sel && (g.kind == G_SUBTREE || g.kind == G_MAILBOXES))
		rc = parse_names(&g);
	if (rc == ST_OK && p_sp() < 0)
		rc = ST_BAD;
	if (rc == ST_OK)
		rc = parse_events(r, sel, &g.events);
	if (rc == ST_OK && !p_char(')'))
		rc = bad("Expected ')'");
	r->used |= g.events;
	if (rc == ST_OK && r->ng == GROUPS_MAX)
		rc = bad("Too many event groups");
	if (rc != ST_OK || sel || !g.events) {
		if (sel) {
			r->sel = sel;
			r->selevents = g.events;
		}
		strv_clear(&g.names, &g.n);
		return rc;
	}
	r->g = xreallocarray(r->g, r->ng + 1, sizeof(*r->g));
	r->g[r->ng++] = g;
	return ST_OK;
}

/* RFC 5465 3.1: the events this server knows, all of them */
static int
badevent(void)
{
	struct buf b = { 0 };
	size_t i;

	for (i = 0; i < LEN(event_names); i++)
		if (event_names[i].bit & EV_SUPPORTED)
			buf_printf(&b, "%s%s", b.len ? " " : "",
			    event_names[i].name);
	set_code("BADEVENT (%s)", b.p);
	buf_free(&b);
	return no(sess.code, "Unsupported NOTIFY event");
}

/* --- watching -------------------------------------------------------- */

static void
moves_clear(void)
{
	size_t i;

	for (i = 0; i < nmoves; i++) {
		free(moves[i].from);
		free(moves[i].to);
	}
	free(moves);
	moves = NULL;
	nmoves = 0;
}

static void
notify_off(void)
{
	size_t i;

	if (ifd >= 0)
		close(ifd);
	ifd = wd_root = -1;
	for (i = 0; i < nw; i++)
		free(w[i].name);
	free(w);
	w = NULL;
	nw = 0;
	mbox_list_free(boxes, nboxes);
	boxes = NULL;
	nboxes = 0;
	strv_clear(&subs, &nsubs);
	moves_clear();
	request_free(&rq);
	names_dirty = on = 0;
}

static void
unwatch(struct watched *f)
{
	if (f->wd_new >= 0)
		inotify_rm_watch(ifd, f->wd_new);
	if (f->wd_cur >= 0)
		inotify_rm_watch(ifd, f->wd_cur);
	free(f->name);
}

/* inotify on new/ and cur/, and the STATUS the client is taken to know */
static int
watch(struct watched *f)
{
	char dir[PATH_MAX], path[PATH_MAX];

	if (mbox_dir(f->name, dir) < 0 ||
	    snprintf(path, sizeof(path), "%s/new", dir) >= (int)sizeof(path) ||
	    (f->wd_new = inotify_add_watch(ifd, path, DIR_MASK)) < 0 ||
	    snprintf(path, sizeof(path), "%s/cur", dir) >= (int)sizeof(path) ||
	    (f->wd_cur = inotify_add_watch(ifd, path, DIR_MASK)) < 0)
		return errno == ENOENT ? 0 : -1;	/* gone meanwhile */
	if (mbox_status_nosize(f->name, &f->told) < 0)
		memset(&f->told, 0, sizeof(f->told));
	return 0;
}

/* the folders with message events, from the folder list: those watched
 * already keep their watches and what they were told.  -1 past
 * NOTIFY_FOLDERS_MAX or when inotify refuses more watches */
static int
watch_rebuild(void)
{
	struct watched *v = NULL;
	size_t n = 0, i, j;
	int ev;

	for (i = 0; i < nboxes; i++) {
		ev = events_for(&rq, subs, nsubs, boxes[i].name) & EV_MESSAGE;
		if (!ev || boxes[i].noselect)
			continue;
		v = xreallocarray(v, n + 1, sizeof(*v));
		memset(&v[n], 0, sizeof(*v));
		v[n].name = xstrdup(boxes[i].name);
		v[n].events = ev;
		v[n].wd_new = v[n].wd_cur = -1;
		n++;
	}
	/* first what stops, so that a renamed folder's directories are
	 * watched anew under the new name */
	for (j = 0; j < nw; j++) {
		for (i = 0; i < n && strcmp(v[i].name, w[j].name); i++)
			;
		if (i == n) {
			unwatch(&w[j]);
			continue;
		}
		v[i].wd_new = w[j].wd_new;
		v[i].wd_cur = w[j].wd_cur;
		v[i].dirty = w[j].dirty;
		v[i].told = w[j].told;
		free(w[j].name);
	}
	free(w);
	w = v;
	nw = n;
	if (nw > NOTIFY_FOLDERS_MAX) {
		errno = ENOSPC;
		return -1;
	}
	for (i = 0; i < nw; i++)
		if (w[i].wd_new < 0 && watch(&w[i]) < 0)
			return -1;
	return 0;
}

static void
overflow(void)
{
	io_printf("* OK [NOTIFICATIONOVERFLOW] More than %d folders to "
	    "watch: NOTIFY is off\r\n", NOTIFY_FOLDERS_MAX);
	notify_off();
}

/* the two halves of a rename in the root, ".old" then ".new" */
static void
move_seen(const struct inotify_event *ev)
{
	size_t i;

	if (ev->mask & IN_MOVED_TO) {
		for (i = nmoves; i-- > 0;)
			if (moves[i].cookie == ev->cookie && !moves[i].to) {
				moves[i].to = xstrdup(ev->name + 1);
				return;
			}
		return;
	}
	if (nmoves == MOVES_MAX)
		return;		/* told as a deletion and a creation */
	moves = xreallocarray(moves, nmoves + 1, sizeof(*moves));
	moves[nmoves].cookie = ev->cookie;
	moves[nmoves].from = xstrdup(ev->name + 1);
	moves[nmoves].to = NULL;
	nmoves++;
}

/* the root holds the folders (".name"), the subscriptions and INBOX's
 * own files, which tell nothing about names */
static void
root_event(const struct inotify_event *ev)
{
	const char *name = ev->len ? ev->name : "";

	if (name[0] == '.' && name[1]) {
		if (ev->mask & (IN_MOVED_FROM | IN_MOVED_TO))
			move_seen(ev);
		names_dirty = 1;
		return;
	}
	if (!strncmp(name, "imapd-", 6) || !strncmp(name, "dovecot", 7) ||
	    !strcmp(name, "new") || !strcmp(name, "cur") ||
	    !strcmp(name, "tmp"))
		return;
	names_dirty = 1;
}

static void
read_events(void)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	ssize_t n;
	size_t i;
	char *p;

	while ((n = read(ifd, buf, sizeof(buf))) > 0) {
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			if (ev->mask & IN_Q_OVERFLOW) {
				names_dirty = 1;
				for (i = 0; i < nw; i++)
					w[i].dirty = 1;
			} else if (ev->wd == wd_root) {
				root_event(ev);
			} else {
				for (i = 0; i < nw; i++)
					if (ev->wd == w[i].wd_new ||
					    ev->wd == w[i].wd_cur)
						w[i].dirty = 1;
			}
		}
	}
}

/* --- telling --------------------------------------------------------- */

/* what changed since the client was told, as STATUS items (RFC 5465
 * 5.1-5.3) */
static int
status_changes(const struct watched *f, const struct mboxstatus *st)
{
	const struct mboxstatus *o = &f->told;
	int items = 0;

	if (st->uidvalidity != o->uidvalidity)
		items |= SI_MESSAGES | SI_UIDNEXT | SI_UIDVALIDITY | SI_UNSEEN;
	if (st->messages != o->messages || st->uidnext != o->uidnext)
		items |= SI_MESSAGES | SI_UIDNEXT | SI_UNSEEN;
	if ((f->events & EV_FLAG) && st->unseen != o->unseen)
		items |= SI_UNSEEN;
	if ((f->events & EV_FLAG) && sess.condstore &&
	    st->highestmodseq != o->highestmodseq)
		items |= SI_UIDVALIDITY;
	if (items && sess.condstore)
		items |= SI_HIGHESTMODSEQ;
	return items;
}

/* the selected mailbox speaks for itself (RFC 5465 3.1) */
static int
is_selected(const char *name)
{
	return sess.state == S_SELECTED && !strcmp(sess.f.name, name);
}

static void
flush_status(void)
{
	struct mboxstatus st;
	size_t i;
	int items;

	for (i = 0; i < nw; i++) {
		if (!w[i].dirty)
			continue;
		w[i].dirty = 0;
		if (is_selected(w[i].name) ||
		    mbox_status_nosize(w[i].name, &st) < 0)
			continue;
		if ((items = status_changes(&w[i], &st)))
			status_line(w[i].name, &st, items);
		w[i].told = st;
	}
}

/* NOTIFY SET STATUS: what a client needs to follow each folder */
static void
status_all(void)
{
	size_t i;
	int items;

	for (i = 0; i < nw; i++) {
		if (is_selected(w[i].name) || w[i].wd_new < 0)
			continue;
		items = SI_MESSAGES | SI_UIDNEXT | SI_UIDVALIDITY | SI_UNSEEN;
		if ((rq.used & EV_FLAG) || sess.condstore)
			items |= SI_HIGHESTMODSEQ;
		status_line(w[i].name, &w[i].told, items);
	}
}

/* "* LIST (attributes) "." name", accurate after the change (RFC 5465
 * 5.4, 5.5) */
static void
list_tell(const struct mboxinfo *l, size_t n, char *const *sv, size_t ns,
    const char *name, const char *oldname)
{
	struct buf a = { 0 };
	long i = box_find(l, n, name);
	const char *use;

	if (i < 0)
		buf_adds(&a, " \\NonExistent");
	else if (l[i].noselect)
		buf_adds(&a, " \\Noselect");
	if (i >= 0)
		buf_adds(&a, has_kids(l, n, name) ? " \\HasChildren" :
		    " \\HasNoChildren");
	if (strv_has(sv, ns, name))
		buf_adds(&a, " \\Subscribed");
	if (i >= 0 && (use = special_use_of(name)))
		buf_printf(&a, " %s", use);
	io_printf("* LIST (%s) \"%c\" ", a.len ? a.p + 1 : "", STORE_SEP);
	list_name(name);
	if (oldname) {
		io_puts(" (\"OLDNAME\" (");
		list_name(oldname);
		io_puts("))");
	}
	io_puts("\r\n");
	buf_free(&a);
}

static int
name_wanted(int ev, char *const *sv, size_t ns, const char *name)
{
	return events_for(&rq, sv, ns, name) & ev;
}

/* a child moved along with its renamed parent */
static int
under_move(const struct move *m)
{
	size_t k;

	for (k = 0; k < nmoves; k++)
		if (&moves[k] != m && moves[k].to &&
		    strcmp(moves[k].from, m->from) &&
		    in_subtree(m->from, moves[k].from))
			return 1;
	return 0;
}

/* renames: one line for the folder, none for its children (RFC 5465
 * 5.4); the names they account for are marked done */
static void
renames_tell(const struct mboxinfo *l, size_t n, char *const *sv,
    size_t ns, char *olddone, char *newdone)
{
	const struct move *m;
	size_t k, i;

	for (k = 0; k < nmoves; k++) {
		m = &moves[k];
		if (!m->to || under_move(m) ||
		    box_find(boxes, nboxes, m->from) < 0 ||
		    box_find(l, n, m->from) >= 0 || box_find(l, n, m->to) < 0 ||
		    box_find(boxes, nboxes, m->to) >= 0)
			continue;
		if (name_wanted(EV_NAME, sv, ns, m->to) ||
		    name_wanted(EV_NAME, subs, nsubs, m->from))
			list_tell(l, n, sv, ns, m->to, m->from);
		for (i = 0; i < nboxes; i++)
			if (in_subtree(boxes[i].name, m->from))
				olddone[i] = 1;
		for (i = 0; i < n; i++)
			if (in_subtree(l[i].name, m->to))
				newdone[i] = 1;
	}
}

/* the parent of a folder created or deleted is affected too (RFC 5465
 * 5.4): told when it gained its first child or lost its last */
static void
parent_tell(const struct mboxinfo *l, size_t n, char *const *sv, size_t ns,
    const char *name)
{
	const char *dot = strrchr(name, STORE_SEP);
	char *parent;
	long o, i;

	if (!dot)
		return;
	parent = xstrdup(name);
	parent[dot - name] = '\0';
	o = box_find(boxes, nboxes, parent);
	i = box_find(l, n, parent);
	if (o >= 0 && i >= 0 && boxes[o].noselect == l[i].noselect &&
	    has_kids(boxes, nboxes, parent) != has_kids(l, n, parent) &&
	    name_wanted(EV_NAME, sv, ns, parent))
		list_tell(l, n, sv, ns, parent, NULL);
	free(parent);
}

static void
names_tell(const struct mboxinfo *l, size_t n, char *const *sv, size_t ns)
{
	char *olddone = xcalloc(nboxes + 1, 1), *newdone = xcalloc(n + 1, 1);
	long o;
	size_t i;

	renames_tell(l, n, sv, ns, olddone, newdone);
	for (i = 0; i < nboxes; i++) {
		if (olddone[i] || box_find(l, n, boxes[i].name) >= 0)
			continue;
		if (name_wanted(EV_NAME, subs, nsubs, boxes[i].name))
			list_tell(l, n, sv, ns, boxes[i].name, NULL);
		parent_tell(l, n, sv, ns, boxes[i].name);
	}
	for (i = 0; i < n; i++) {
		o = box_find(boxes, nboxes, l[i].name);
		if (newdone[i] || (o >= 0 && boxes[o].noselect == l[i].noselect))
			continue;
		if (name_wanted(EV_NAME, sv, ns, l[i].name))
			list_tell(l, n, sv, ns, l[i].name, NULL);
		if (o < 0)
			parent_tell(l, n, sv, ns, l[i].name);
	}
	for (i = 0; i < nsubs; i++)
		if (!strv_has(sv, ns, subs[i]) &&
		    name_wanted(EV_SUBSCRIPTION, subs, nsubs, subs[i]))
			list_tell(l, n, sv, ns, subs[i], NULL);
	for (i = 0; i < ns; i++)
		if (!strv_has(subs, nsubs, sv[i]) &&
		    name_wanted(EV_SUBSCRIPTION, sv, ns, sv[i]))
			list_tell(l, n, sv, ns, sv[i], NULL);
	free(olddone);
	free(newdone);
}

/* the folder list and subscriptions read again; told when tell is set,
 * else taken as known (the session's own change) */
static void
names_update(int tell)
{
	struct mboxinfo *l;
	char **sv = NULL;
	size_t n, ns = 0;

	names_dirty = 0;
	if (mbox_list(&l, &n) < 0) {
		logmsg(LOG_ERR, "NOTIFY: cannot list folders: %s",
		    strerror(errno));
		moves_clear();
		return;
	}
	if (subs_list(&sv, &ns) < 0)
		sv = NULL, ns = 0;
	if (tell)
		names_tell(l, n, sv, ns);
	mbox_list_free(boxes, nboxes);
	strv_clear(&subs, &nsubs);
	boxes = l;
	nboxes = n;
	subs = sv;
	nsubs = ns;
	moves_clear();
	if (watch_rebuild() < 0)
		overflow();
}

/* --- the hooks ------------------------------------------------------- */

/* a RENAME moves a folder's children one by one: the names are read
 * once the root has been still for a moment */
static void
root_settle(void)
{
	struct pollfd pfd = { ifd, POLLIN, 0 };
	int i;

	for (i = 0; i < SETTLE_ROUNDS && poll(&pfd, 1, SETTLE_MS) > 0; i++)
		read_events();
}

void
notify_run(void)
{
	if (!on || ifd < 0)
		return;
	read_events();
	if (names_dirty)
		root_settle();
	if (names_dirty)
		names_update(1);
	if (on)
		flush_status();
}

void
notify_quiet(const char *name)
{
	static const char *renaming[] = {
		"CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE"
	};
	size_t i;

	for (i = 0; i < LEN(renaming) && ascii_casecmp(name, renaming[i]); i++)
		;
	if (!on || ifd < 0 || i == LEN(renaming))
		return;
	read_events();
	if (names_dirty)
		names_update(0);
}

int
notify_fd(void)
{
	return on ? ifd : -1;
}

int
notify_selected_push(void)
{
	return !on || (rq.selevents & EV_NEW);
}

static int
notify_flag_changes(void)
{
	return !on || (rq.selevents & EV_FLAG);
}

static void
notify_fetch_new(uint32_t top)
{
	size_t i, k, *vi;

	if (!on || !rq.nfetch || !(rq.selevents & EV_NEW) ||
	    sess.state != S_SELECTED)
		return;
	if ((i = view_lower(top + 1)) >= sess.v.n)
		return;
	/* RFC 5465 5.2: no FETCH for what the client added itself */
	vi = xreallocarray(NULL, sess.v.n - i, sizeof(*vi));
	for (k = 0; i < sess.v.n; i++)
		if (!view_is_own(sess.v.m[i].uid))
			vi[k++] = i;
	if (k)
		fetch_items(rq.fetch, rq.nfetch, vi, k);
	free(vi);
}

/* the selected mailbox's view tells NOTIFY of flag changes and arrivals */
static const struct view_watch selected_watch = {
	.shows_flags = notify_flag_changes, .arrived = notify_fetch_new
};

/* the client waits for its next command's reply no more: it listens.
 * Push what happens until it sends something. */
void
notify_wait(void)
{
	struct pollfd pfd[3];
	time_t start = time(NULL);
	int sel, wait;

	while (on) {
		notify_run();
		sel = sess.state == S_SELECTED && notify_selected_push() && on;
		if (sel)
			view_sync(rq.sel == SEL_NOW);
		io_flush();
		if (!on || io_buffered())
			return;
		pfd[0].fd = io_fd();
		pfd[1].fd = ifd;
		pfd[2].fd = sel ? folder_watchfd(&sess.f) : -1;
		pfd[0].events = pfd[1].events = pfd[2].events = POLLIN;
		wait = !sel ? TIMEOUT_AUTH : pfd[2].fd < 0 ?
		    IDLE_POLL_UNWATCHED : IDLE_POLL;
		wait = MIN(wait, start + TIMEOUT_AUTH - time(NULL));
		if (wait <= 0)
			bye("Autologout; idle for too long");
		wait *= 1000;
		if (sel && folder_unsettled(&sess.f))
			wait = MIN(wait, IDLE_SETTLE_MS);
		if (poll(pfd, 3, wait) < 0 && errno != EINTR)
			exit(1);
		if (pfd[0].revents)
			return;
	}
}

/* --- SEARCH RETURN (UPDATE (items)) ----------------------------------- */

/* RFC 5465 7: an updating search (context.c) may name FETCH items for
 * the new messages it gains, kept here by the search's tag */
static struct update {
	char *tag;
	char **items;
	size_t n;
	uint32_t seen;		/* messages up to this UID are not new */
} updates[UPDATES_MAX];

static uint32_t
view_top(void)
{
	return sess.v.n ? sess.v.m[sess.v.n - 1].uid : 0;
}

/* the slot of tag: its own, else a free one, else the least recent */
static struct update *
update_slot(const char *tag)
{
	size_t i, best = 0;

	for (i = 0; i < UPDATES_MAX; i++)
		if (updates[i].tag && !strcmp(updates[i].tag, tag))
			return &updates[i];
	for (i = 0; i < UPDATES_MAX; i++) {
		if (!updates[i].tag)
			return &updates[i];
		if (updates[i].seen < updates[best].seen)
			best = i;
	}
	return &updates[best];
}

int
notify_update_items(void)
{
	struct update *u = update_slot(sess.tag);

	free(u->tag);
	strv_clear(&u->items, &u->n);
	u->tag = xstrdup(sess.tag);
	u->seen = view_top();
	return parse_fetch(&u->items, &u->n);
}

void
notify_update_fetch(const char *tag, const uint32_t *uids, size_t n)
{
	struct update *u = update_slot(tag);
	size_t i, k, *vi;

	if (!u->tag || strcmp(u->tag, tag))
		return;
	vi = xreallocarray(NULL, n + 1, sizeof(*vi));
	for (i = k = 0; i < n; i++)
		if (uids[i] > u->seen)
			vi[k++] = view_lower(uids[i]);
	if (k)
		fetch_items(u->items, u->n, vi, k);
	free(vi);
	u->seen = view_top();
}

/* --- the command ----------------------------------------------------- */

/* the folders it would watch, counted before anything changes: a
 * refused NOTIFY SET leaves the one before in effect */
static int
too_many(const struct request *r, const struct mboxinfo *l, size_t n,
    char *const *sv, size_t ns)
{
	size_t i, count = 0;

	for (i = 0; i < n; i++)
		if (!l[i].noselect &&
		    (events_for(r, sv, ns, l[i].name) & EV_MESSAGE))
			count++;
	return count > NOTIFY_FOLDERS_MAX;
}

/* r becomes the request in effect */
static int
install(struct request *r)
{
	struct mboxinfo *l = NULL;
	char **sv = NULL;
	size_t n = 0, ns = 0;

	if (r->ng && mbox_list(&l, &n) < 0)
		return no_errno("NOTIFY");
	if (r->ng && subs_list(&sv, &ns) < 0)
		sv = NULL, ns = 0;
	if (too_many(r, l, n, sv, ns)) {
		mbox_list_free(l, n);
		strv_clear(&sv, &ns);
		return no("NOTIFICATIONOVERFLOW", "More than %d folders to "
		    "watch", NOTIFY_FOLDERS_MAX);
	}
	notify_off();
	rq = *r;
	memset(r, 0, sizeof(*r));
	boxes = l;
	nboxes = n;
	subs = sv;
	nsubs = ns;
	on = 1;
	view_watch(&selected_watch);
	if (rq.ng && ((ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0 ||
	    (wd_root = inotify_add_watch(ifd, sess.maildir, ROOT_MASK)) < 0 ||
	    watch_rebuild() < 0)) {
		logmsg(LOG_NOTICE, "NOTIFY: cannot watch: %s", strerror(errno));
		notify_off();
		return no("NOTIFICATIONOVERFLOW", "Cannot watch the folders");
	}
	if (rq.status)
		status_all();
	return ok(NULL, "NOTIFY completed");
}

int
cmd_notify(const char *tag, int uid)
{
	struct request r = { 0 };
	char *what;
	int rc = ST_OK;

	if (p_sp() < 0 || !(what = p_atom()))
		return ST_BAD;
	if (!ascii_casecmp(what, "NONE")) {
		if (p_end() < 0)
			return ST_BAD;
		notify_off();
		return ok(NULL, "NOTIFY completed");
	}
	if (ascii_casecmp(what, "SET"))
		return bad("Expected NOTIFY SET or NOTIFY NONE");
	r.status = p_keyword(" STATUS");
	do {
		if (p_sp() < 0)
			rc = ST_BAD;
		else
			rc = parse_group(&r);
	} while (rc == ST_OK && p_peek() == ' ');
	if (rc == ST_OK && p_end() < 0)
		rc = ST_BAD;
	if (rc == ST_OK && (r.used & ~EV_SUPPORTED))
		rc = badevent();
	if (rc == ST_OK)
		rc = install(&r);
	request_free(&r);
	return rc;
}
