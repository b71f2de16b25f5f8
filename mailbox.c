/* mailbox.c: the commands on mailboxes by name: CREATE, DELETE, RENAME,
 * SUBSCRIBE, LIST (with LIST-EXTENDED, LIST-STATUS and SPECIAL-USE),
 * LSUB, STATUS and APPEND; and mailbox names between the client's form
 * (modified UTF-7, or UTF-8 once enabled) and the store's. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "binary.h"
#include "config.h"
#include "io.h"
#include "maildir.h"
#include "mime.h"
#include "mutf7.h"
#include "parse.h"
#include "quota.h"
#include "url.h"
#include "util.h"
#include "session.h"

/* --- mailboxes -------------------------------------------------------- */

/* CREATE-SPECIAL-USE (RFC 6154): "(USE (\Sent))" */
static int
create_use(const char **use)
{
	static const char *known[] = {
		"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk",
		"\\Sent", "\\Trash"
	};
	char *w;
	size_t i;

	if (!p_char('(') || !p_keyword("USE") || p_sp() < 0 || !p_char('('))
		return bad("Expected (USE (attribute))");
	if (p_char(')')) {
		*use = NULL;	/* USE (): no special use */
		return p_char(')') ? ST_OK : bad("Expected ')'");
	}
	if (!(w = p_flag()))
		return ST_BAD;
	if (p_peek() == ' ')
		return no("USEATTR", "Only one special use per folder");
	if (!p_char(')') || !p_char(')'))
		return bad("Expected ')'");
	for (i = 0; i < LEN(known); i++)
		if (!ascii_casecmp(w, known[i])) {
			*use = known[i];
			return ST_OK;
		}
	return no("USEATTR", "Unknown special use");
}

int
cmd_create(const char *tag, int uid)
{
	struct mboxstatus st;
	const char *use = NULL;
	char *name;
	size_t n;
	int r;

	if (p_sp() < 0 || !(name = mailbox_arg()))
		return ST_BAD;
	if (p_char(' ') && (r = create_use(&use)) != ST_OK)
		return r;
	if (p_end() < 0)
		return ST_BAD;
	/* "Foo." asks for Foo as a parent of names to come */
	n = strlen(name);
	if (n > 1 && name[n - 1] == STORE_SEP)
		name[n - 1] = '\0';
	if (!strcmp(name, "INBOX"))
		return no("ALREADYEXISTS", "INBOX always exists");
	if (mbox_create(name) < 0)
		return no_errno(name);
	if (use && mbox_set_special_use(name, use) < 0)
		return no_errno(name);
	if (mbox_status_nosize(name, &st) == 0 && st.mailboxid[0])
		return ok(set_code("MAILBOXID (%s)", st.mailboxid),
		    "CREATE completed");
	return ok(NULL, "CREATE completed");
}

int
cmd_delete(const char *tag, int uid)
{
	char *name;

	if (p_sp() < 0 || !(name = mailbox_arg()) || p_end() < 0)
		return ST_BAD;
	if (!strcmp(name, "INBOX"))
		return no("CANNOT", "INBOX cannot be deleted");
	if (sess.state == S_SELECTED && !strcmp(name, sess.f.name))
		close_folder();
	if (mbox_delete(name) < 0)
		return no_errno(name);
	return ok(NULL, "DELETE completed");
}

int
cmd_rename(const char *tag, int uid)
{
	char *from, *to;

	if (p_sp() < 0 || !(from = mailbox_arg()) || p_sp() < 0 ||
	    !(to = mailbox_arg()) || p_end() < 0)
		return ST_BAD;
	if (!strcmp(to, "INBOX"))
		return no("ALREADYEXISTS", "INBOX already exists");
	if (mbox_exists(to) && strcmp(from, to))
		return no("ALREADYEXISTS", "%s already exists", to);
	if (mbox_rename(from, to) < 0)
		return no_errno(from);
	return ok(NULL, "RENAME completed");
}

static int
subscribe(int on)
{
	char *name;

	if (p_sp() < 0 || !(name = mailbox_arg()) || p_end() < 0)
		return ST_BAD;
	if (on && !mbox_exists(name))
		return no("NONEXISTENT", "No such mailbox");
	if (subs_set(name, on) < 0)
		return no_errno(name);
	return ok(NULL, on ? "SUBSCRIBE completed" : "UNSUBSCRIBE completed");
}

int
cmd_subscribe(const char *tag, int uid)
{
	return subscribe(1);
}

int
cmd_unsubscribe(const char *tag, int uid)
{
	return subscribe(0);
}

/* LIST wildcards: '*' matches anything, '%' anything but the separator */
static int
match(const char *pat, const char *name)
{
	for (; *pat; pat++, name++) {
		if (*pat == '*' || *pat == '%') {
			for (;; name++) {
				if (match(pat + 1, name))
					return 1;
				if (!*name || (*pat == '%' && *name == STORE_SEP))
					return 0;
			}
		}
		if (*pat != *name)
			return 0;
	}
	return *name == '\0';
}

/* pattern "INBOX" in any case names INBOX */
static int
list_match(const char *pat, const char *name)
{
	if (!strcmp(name, "INBOX") && !ascii_ncasecmp(pat, "INBOX", 5))
		return match(pat + 5, name + 5);
	return match(pat, name);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* does a name in the sorted list start with name + separator */
static int
has_children(char **sorted, size_t n, const char *name)
{
	size_t lo = 0, hi = n, mid, len = strlen(name);
	char *key = p_alloc(len + 2);

	memcpy(key, name, len);
	key[len] = STORE_SEP;
	key[len + 1] = '\0';
	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (strcmp(sorted[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && !strncmp(sorted[lo], key, len + 1);
}

static void
list_line(const char *cmd, const char *attrs, const char *name)
{
	io_printf("* %s (%s) \"%c\" ", cmd, attrs, STORE_SEP);
	list_name(name);
	io_puts("\r\n");
}

/* LIST-EXTENDED (RFC 5258) selection and return options */
enum {
	LS_SUBSCRIBED = 1 << 0,		/* selection */
	LS_RECURSIVE = 1 << 1,
	LS_SPECIALUSE = 1 << 2,
	LR_SUBSCRIBED = 1 << 3,		/* return */
	LR_CHILDREN = 1 << 4,
	LR_SPECIALUSE = 1 << 5,
	LR_STATUS = 1 << 6,
	LS_EXTENDED = 1 << 7,		/* the RFC 5258 syntax was used */
};

static const struct {
	const char *name;
	int bit;
} status_names[] = {
	{ "MESSAGES", SI_MESSAGES }, { "RECENT", SI_RECENT },
	{ "UIDNEXT", SI_UIDNEXT }, { "UIDVALIDITY", SI_UIDVALIDITY },
	{ "UNSEEN", SI_UNSEEN }, { "HIGHESTMODSEQ", SI_HIGHESTMODSEQ },
	{ "SIZE", SI_SIZE }, { "DELETED", SI_DELETED },
	{ "MAILBOXID", SI_MAILBOXID }, { "APPENDLIMIT", SI_APPENDLIMIT },
	{ "DELETED-STORAGE", SI_DELETEDSTORAGE },	/* QUOTA, in KiB */
};

/* "(MESSAGES UNSEEN ...)" */
static int
status_items(int *items)
{
	char *w;
	size_t i;

	*items = 0;
	if (!p_char('('))
		return bad("Expected STATUS items");
	do {
		if (!(w = p_atom()))
			return ST_BAD;
		for (i = 0; i < LEN(status_names); i++)
			if (!ascii_casecmp(w, status_names[i].name))
				break;
		if (i == LEN(status_names))
			return bad("Unknown STATUS item");
		*items |= status_names[i].bit;
	} while (p_char(' '));
	if (!p_char(')'))
		return bad("Expected ')'");
	if (*items & SI_HIGHESTMODSEQ)
		condstore_on();
	return ST_OK;
}

/* SIZE makes the store read messages whose size it does not know */
static int
mailbox_status(const char *name, struct mboxstatus *st, int items)
{
	if (items & (SI_SIZE | SI_DELETEDSTORAGE))
		return mbox_status(name, st);
	return mbox_status_nosize(name, st);
}

static int
list_options(int *opt)
{
	char *w;
	int n = 0;

	*opt = 0;
	if (!p_char('('))
		return ST_OK;
	while (!p_char(')')) {
		if (n++ && p_sp() < 0)
			return ST_BAD;
		if (!(w = p_atom()))
			return ST_BAD;
		if (!ascii_casecmp(w, "SUBSCRIBED"))
			*opt |= LS_SUBSCRIBED | LR_SUBSCRIBED;
		else if (!ascii_casecmp(w, "RECURSIVEMATCH"))
			*opt |= LS_RECURSIVE;
		else if (!ascii_casecmp(w, "SPECIAL-USE"))
			*opt |= LS_SPECIALUSE | LR_SPECIALUSE;
		else if (ascii_casecmp(w, "REMOTE"))
			return bad("Unknown LIST selection option");
	}
	*opt |= LS_EXTENDED;
	if ((*opt & LS_RECURSIVE) && !(*opt & LS_SUBSCRIBED))
		return bad("RECURSIVEMATCH needs SUBSCRIBED");
	return p_sp() < 0 ? ST_BAD : ST_OK;
}

static int
list_return(int *opt, int *items)
{
	char *w;
	int n = 0, r;

	if (!p_char(' '))
		return ST_OK;
	if (!p_keyword("RETURN") || p_sp() < 0 || !p_char('('))
		return bad("Expected RETURN (options)");
	*opt |= LS_EXTENDED;
	while (!p_char(')')) {
		if (n++ && p_sp() < 0)
			return ST_BAD;
		if (!(w = p_atom()))
			return ST_BAD;
		if (!ascii_casecmp(w, "SUBSCRIBED"))
			*opt |= LR_SUBSCRIBED;
		else if (!ascii_casecmp(w, "CHILDREN"))
			*opt |= LR_CHILDREN;
		else if (!ascii_casecmp(w, "SPECIAL-USE"))
			*opt |= LR_SPECIALUSE;
		else if (!ascii_casecmp(w, "STATUS")) {
			if (p_sp() < 0 || (r = status_items(items)) != ST_OK)
				return ST_BAD;
			*opt |= LR_STATUS;
		} else
			return bad("Unknown LIST return option");
	}
	return ST_OK;
}

/* one pattern, or a parenthesised list of them */
static int
list_patterns(char ***pats, size_t *n, int *opt)
{
	size_t cap = 4;
	char *p;
	int paren = p_char('(');

	*n = 0;
	*pats = p_alloc(cap * sizeof(char *));
	do {
		if (!(p = p_listmailbox()))
			return ST_BAD;
		if (*n == cap) {
			char **t = p_alloc(2 * cap * sizeof(char *));

			memcpy(t, *pats, cap * sizeof(char *));
			*pats = t;
			cap *= 2;
		}
		(*pats)[(*n)++] = p;
	} while (paren && p_char(' '));
	if (paren && !p_char(')'))
		return bad("Expected ')'");
	if (paren)
		*opt |= LS_EXTENDED;
	return ST_OK;
}

static int
sorted_has(char **sorted, size_t n, const char *name)
{
	return n && bsearch(&name, sorted, n, sizeof(*sorted), cmp_str);
}

struct listctx {
	int opt, items;
	char **pats;
	size_t npats;
	const char *ref;
	char **boxes;		/* existing names, sorted */
	size_t nboxes;
	char **subs;		/* subscribed names, sorted */
	size_t nsubs;
};

static int
list_matches(struct listctx *c, const char *name)
{
	size_t i, rl = strlen(c->ref);
	char *full;

	name = shown_name(name);
	for (i = 0; i < c->npats; i++) {
		full = p_alloc(rl + strlen(c->pats[i]) + 1);
		memcpy(full, c->ref, rl);
		strcpy(full + rl, c->pats[i]);
		if (list_match(full, name))
			return 1;
	}
	return 0;
}

static void
list_one(struct listctx *c, const char *name, int noselect,
    int subscribed_child, int selected)
{
	struct mboxstatus st;
	struct buf a = { 0 };
	const char *use = special_use_of(name);
	int exists = sorted_has(c->boxes, c->nboxes, name);
	int kids = has_children(c->boxes, c->nboxes, name);

	/* a parent implied by its children is \Noselect; only a name that
	 * is neither a folder nor a parent is \NonExistent */
	if (!exists && !kids)
		buf_adds(&a, " \\NonExistent");
	else if (!exists || noselect)
		buf_adds(&a, " \\Noselect");
	if (exists || kids)
		buf_adds(&a, kids ? " \\HasChildren" : " \\HasNoChildren");
	if ((c->opt & LR_SUBSCRIBED) && sorted_has(c->subs, c->nsubs, name))
		buf_adds(&a, " \\Subscribed");
	if (use)
		buf_printf(&a, " %s", use);
	io_printf("* LIST (%s) \"%c\" ", a.len ? a.p + 1 : "", STORE_SEP);
	list_name(name);
	if (subscribed_child)
		io_puts(" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	io_puts("\r\n");
	buf_free(&a);
	/* RFC 5819: STATUS only for names that meet the selection, not for
	 * a parent listed for its CHILDINFO */
	if ((c->opt & LR_STATUS) && selected && exists && !noselect &&
	    mailbox_status(name, &st, c->items) == 0)
		status_line(name, &st, c->items);
}

/* does name have a subscribed descendant that the patterns do not list
 * itself: only then is a parent that is not subscribed worth a line of
 * its own (RFC 5258 3.5: no redundant CHILDINFO) */
static int
hidden_subscribed_child(struct listctx *c, const char *name)
{
	size_t i, len = strlen(name);

	for (i = 0; i < c->nsubs; i++)
		if (!strncmp(c->subs[i], name, len) &&
		    c->subs[i][len] == STORE_SEP && !list_matches(c, c->subs[i]))
			return 1;
	return 0;
}

/* LIST (SUBSCRIBED ...): the subscribed names, and with RECURSIVEMATCH
 * also the parents of subscribed names, with CHILDINFO (RFC 5258 3.5) */
static void
list_subscribed(struct listctx *c)
{
	char **names, *anc, *sep;
	size_t i, n = 0;
	int sub, childinfo;

	for (i = 0; i < c->nsubs; i++)
		for (sep = c->subs[i]; (sep = strchr(sep, STORE_SEP)); sep++)
			n++;
	names = p_alloc((c->nsubs + n + 1) * sizeof(char *));
	for (i = n = 0; i < c->nsubs; i++) {
		names[n++] = c->subs[i];
		if (!(c->opt & LS_RECURSIVE))
			continue;
		anc = p_strdup(c->subs[i], strlen(c->subs[i]));
		while ((sep = strrchr(anc, STORE_SEP))) {
			*sep = '\0';
			names[n++] = p_strdup(anc, strlen(anc));
		}
	}
	qsort(names, n, sizeof(char *), cmp_str);
	for (i = 0; i < n; i++) {
		if (i && !strcmp(names[i], names[i - 1]))
			continue;
		sub = sorted_has(c->subs, c->nsubs, names[i]);
		childinfo = (c->opt & LS_RECURSIVE) &&
		    has_children(c->subs, c->nsubs, names[i]);
		if (!sub && childinfo &&
		    !hidden_subscribed_child(c, names[i]))
			continue;
		if ((sub || childinfo) && list_matches(c, names[i]))
			list_one(c, names[i], 0, childinfo, sub);
	}
}

int
cmd_list(const char *tag, int uid)
{
	struct listctx c;
	struct mboxinfo *l;
	size_t n, i;
	int r;

	memset(&c, 0, sizeof(c));
	if (p_sp() < 0 || (r = list_options(&c.opt)) != ST_OK ||
	    !(c.ref = p_mailbox()) || p_sp() < 0 ||
	    (r = list_patterns(&c.pats, &c.npats, &c.opt)) != ST_OK ||
	    (r = list_return(&c.opt, &c.items)) != ST_OK || p_end() < 0)
		return ST_BAD;
	/* only plain RFC 3501 LIST asks for the delimiter this way */
	if (c.npats == 1 && !*c.pats[0] && !(c.opt & LS_EXTENDED)) {
		io_printf("* LIST (\\Noselect) \"%c\" \"\"\r\n", STORE_SEP);
		return ok(NULL, "LIST completed");
	}
	if (mbox_list(&l, &n) < 0)
		return no_errno("LIST");
	c.boxes = p_alloc((n + 1) * sizeof(char *));
	for (i = 0; i < n; i++)
		if (!l[i].noselect)
			c.boxes[c.nboxes++] = l[i].name;
	if (c.nboxes)
		qsort(c.boxes, c.nboxes, sizeof(char *), cmp_str);
	if (c.opt & (LR_SUBSCRIBED | LS_SUBSCRIBED)) {
		if (subs_list(&c.subs, &c.nsubs) < 0) {
			mbox_list_free(l, n);
			return no_errno("LIST");
		}
		if (c.nsubs)
			qsort(c.subs, c.nsubs, sizeof(char *), cmp_str);
	}
	if (c.opt & LS_SUBSCRIBED) {
		list_subscribed(&c);
	} else {
		for (i = 0; i < n; i++) {
			if (!list_matches(&c, l[i].name))
				continue;
			if ((c.opt & LS_SPECIALUSE) &&
			    !special_use_of(l[i].name))
				continue;
			list_one(&c, l[i].name, l[i].noselect, 0, 1);
		}
	}
	if (c.subs)
		subs_free(c.subs, c.nsubs);
	mbox_list_free(l, n);
	return ok(NULL, "LIST completed");
}

static int
in_list(char **names, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return 1;
	return 0;
}

int
cmd_lsub(const char *tag, int uid)
{
	char *ref, *pat, *full, **subs, **shown, *anc, *sep;
	size_t n, i, nshown = 0;

	if (p_sp() < 0 || !(ref = p_mailbox()) || p_sp() < 0 ||
	    !(pat = p_listmailbox()) || p_end() < 0)
		return ST_BAD;
	full = p_alloc(strlen(ref) + strlen(pat) + 1);
	strcpy(full, ref);
	strcat(full, pat);
	if (subs_list(&subs, &n) < 0)
		return no_errno("LSUB");
	shown = p_alloc((2 * n + 1) * sizeof(*shown));
	for (i = 0; i < n; i++) {
		if (list_match(full, shown_name(subs[i])) && !in_list(shown, nshown,
		    subs[i])) {
			list_line("LSUB", "", subs[i]);
			shown[nshown++] = p_strdup(subs[i], strlen(subs[i]));
		}
	}
	/* with '%', a parent that is not subscribed itself shows as
	 * \Noselect when one of its children is (RFC 3501 6.3.9) */
	for (i = 0; i < n && strchr(full, '%'); i++) {
		anc = p_strdup(subs[i], strlen(subs[i]));
		while ((sep = strrchr(anc, STORE_SEP))) {
			*sep = '\0';
			if (list_match(full, shown_name(anc)) && !in_list(shown, nshown,
			    anc) && !in_list(subs, n, anc)) {
				list_line("LSUB", "\\Noselect", anc);
				shown[nshown++] = p_strdup(anc, strlen(anc));
			}
		}
	}
	subs_free(subs, n);
	return ok(NULL, "LSUB completed");
}

int
cmd_status(const char *tag, int uid)
{
	struct mboxstatus st;
	char *name;
	int items, r;

	if (p_sp() < 0 || !(name = mailbox_arg()) || p_sp() < 0 ||
	    (r = status_items(&items)) != ST_OK || p_end() < 0)
		return ST_BAD;
	if (mailbox_status(name, &st, items) < 0)
		return no_errno(name);
	status_line(name, &st, items);
	return ok(NULL, "STATUS completed");
}

/* --- APPEND ----------------------------------------------------------- */

/* A literal8 (BINARY, RFC 3516) may hold NULs: it is read whole, and the
 * parts that hold one are stored in base64. */
static int
append_binary(struct append *a, unsigned long long size)
{
	struct buf in = { 0 }, enc = { 0 }, *b = &in;
	int r = 0;

	buf_grow(&in, size);
	if (io_readn(in.p, size) < 0) {
		buf_free(&in);
		return -2;
	}
	in.len = size;
	if (memchr(in.p, '\0', in.len)) {
		binary_encode(&enc, in.p, in.len);
		b = &enc;
	}
	if (b->len && append_write(a, b->p, b->len) < 0)
		r = -1;
	buf_free(&in);
	buf_free(&enc);
	return r;
}

/* stream the message literal into the store; -3: it held a NUL, which
 * only a literal8 may */
static int
append_data(struct append *a, unsigned long long size, int binary)
{
	char chunk[16384];
	size_t k;
	int failed = 0, nul = 0;

	if (binary)
		return append_binary(a, size);
	while (size) {
		k = MIN(size, sizeof(chunk));
		if (io_readn(chunk, k) < 0)
			return -2;
		if (memchr(chunk, '\0', k))
			nul = 1;
		if (!failed && !nul && append_write(a, chunk, k) < 0)
			failed = errno;
		size -= k;
	}
	errno = failed;
	return nul ? -3 : failed ? -1 : 0;
}

/* one message of an APPEND, read into the store's tmp/ */
struct appendmsg {
	struct append *a;
	uint32_t flags;
	char **kw;
	size_t nkw;
	time_t date;
	uint64_t size;		/* octets, for QUOTA */
};

static int
append_flags(struct appendmsg *m)
{
	char **names;
	size_t n, i;
	long bit;
	int r;

	if ((r = parse_flags(0, &names, &n)) != ST_OK || p_sp() < 0)
		return ST_BAD;
	m->kw = p_alloc((n + 1) * sizeof(*m->kw));
	for (i = 0; i < n; i++) {
		if (!ascii_casecmp(names[i], "\\Recent"))
			continue;
		if ((bit = sysflag(names[i])) < 0)
			return bad("Invalid system flag");
		if (bit)
			m->flags |= bit;
		else
			m->kw[m->nkw++] = names[i];
	}
	return ST_OK;
}

/* one literal or literal8 into the store, at most room octets; adds its
 * size to *total */
static int
append_literal(struct append *a, int binary, uint64_t room, uint64_t *total)
{
	long long size;
	int r;

	if ((size = p_literal(room)) < 0) {
		if (perr_code && !strcmp(perr_code, "TOOBIG"))
			return no("TOOBIG", "Message larger than %llu bytes",
			    (unsigned long long)APPEND_MAX);
		return ST_BAD;
	}
	*total += size;
	if ((r = append_data(a, size, binary)) == -2)
		return ST_LOST;
	if (p_literal_done() < 0)
		return ST_BAD;
	if (r == -3)
		return bad("NUL in a literal: send the message as a literal8");
	if (r < 0)
		return no_errno("APPEND");
	return ST_OK;
}

static void
emit_append(void *arg, const char *p, size_t n)
{
	append_write(arg, p, n);
}

/* NO [BADURL url]: the URL as the client sent it, less what cannot go
 * in a response code */
static int
badurl(const char *url)
{
	char shown[256];
	size_t i;

	for (i = 0; url[i] && i < sizeof(shown) - 1; i++)
		shown[i] = (unsigned char)url[i] < 0x20 || url[i] == ']' ||
		    url[i] == 0x7f ? '?' : url[i];
	shown[i] = '\0';
	set_code("BADURL %s", shown);
	snprintf(sess.text, sizeof(sess.text), "Cannot use that URL");
	return ST_NO;
}

/* the octets a URL names, appended to the message being built */
static int
append_url(struct append *a, const char *url, uint64_t *total)
{
	struct imapurl u;
	struct folder f, *fp = &sess.f;
	struct msgmap mm;
	struct section sec;
	struct sectiondata *sd = NULL;
	struct buf name = { 0 };
	uint64_t size, from = 0, count;
	long k = -1;
	int opened = 0, toobig = 0;

	if (url_parse(url, sess.user, &u) < 0 ||
	    (!u.mailbox && sess.state != S_SELECTED))
		return badurl(url);
	if (u.mailbox && (utf8_to_mutf7(&name, u.mailbox) < 0 ||
	    folder_open(&f, name.p, 0) < 0)) {
		buf_free(&name);
		return badurl(url);
	}
	buf_free(&name);
	if (u.mailbox) {
		fp = &f;
		opened = 1;
	}
	if ((!u.uidvalidity || u.uidvalidity == fp->uidvalidity) &&
	    (k = folder_find(fp, u.uid)) >= 0 &&
	    p_section(u.section, &sec, 0) == 0 && msg_map(fp, k, &mm) == 0) {
		if ((sd = section_open(mm.p, mm.len, &sec, 0, &size))) {
			from = u.partial ? MIN(u.offset, size) : 0;
			count = u.partial && u.length ?
			    MIN(u.length, size - from) : size - from;
			if (*total + count > APPEND_MAX)
				toobig = 1;
			else
				section_write(sd, from, count, emit_append, a);
			*total += count;
			section_close(sd);
		}
		msg_unmap(&mm);
	}
	if (opened)
		folder_close(&f);
	if (!sd)
		return badurl(url);
	if (toobig)
		return no("TOOBIG", "Message larger than %llu bytes",
		    (unsigned long long)APPEND_MAX);
	return ST_OK;
}

/* CATENATE (RFC 4469): the message made of TEXT literals and URLs of
 * messages or parts already here, in order */
static int
append_catenate(struct appendmsg *m)
{
	uint64_t total = 0;
	char *url;
	int r;

	if (p_sp() < 0 || !p_char('('))
		return bad("Expected CATENATE parts");
	do {
		if (p_keyword("TEXT")) {
			if (p_sp() < 0)
				return ST_BAD;
			r = append_literal(m->a, p_char('~'), APPEND_MAX - total,
			    &total);
		} else if (p_keyword("URL")) {
			if (p_sp() < 0 || !(url = p_astring(NULL)))
				return ST_BAD;
			r = append_url(m->a, url, &total);
		} else {
			return bad("Expected TEXT or URL");
		}
		if (r != ST_OK)
			return r;
	} while (p_char(' '));
	if (!p_char(')'))
		return bad("Expected ')'");
	m->size = total;
	return ST_OK;
}

/* [flags SP] [date-time SP] (literal | literal8 | UTF8 SP "(" literal8 ")"
 * | CATENATE SP "(" parts ")") */
static int
append_one(const char *name, struct appendmsg *m)
{
	long long date = -1;
	int r, utf8 = 0, binary, cat;

	memset(m, 0, sizeof(*m));
	if (p_peek() == '(' && (r = append_flags(m)) != ST_OK)
		return r;
	if (p_peek() == '"' && (p_datetime(&date) < 0 || p_sp() < 0))
		return ST_BAD;
	m->date = date < 0 ? time(NULL) : (time_t)date;
	if (sess.utf8 && p_keyword("UTF8")) {
		if (p_sp() < 0 || !p_char('(') || !p_char('~'))
			return bad("Expected UTF8 (~{size})");
		utf8 = 1;
	}
	cat = !utf8 && p_keyword("CATENATE");
	binary = utf8 || (!cat && p_char('~'));
	if (!cat && p_peek() != '{')
		return bad("Expected a message literal");
	if (!(m->a = append_begin(name))) {
		if (errno == ENOENT)
			return no("TRYCREATE", "No such mailbox");
		return no_errno(name);
	}
	if (cat)
		return append_catenate(m);
	if ((r = append_literal(m->a, binary, APPEND_MAX, &m->size)) != ST_OK)
		return r;
	if (utf8 && !p_char(')'))
		return bad("Expected ')'");
	return ST_OK;
}

/* APPEND, with MULTIAPPEND (RFC 3502): every message or none */
int
cmd_append(const char *tag, int uid)
{
	struct appendmsg *m;
	struct buf b = { 0 };
	uint32_t uidv = 0, *uids;
	uint64_t total = 0;
	size_t n = 0, i, cap = 4;
	char *name;
	int r = ST_OK;

	if (p_sp() < 0 || !(name = mailbox_arg()) || p_sp() < 0)
		return ST_BAD;
	m = xcalloc(cap, sizeof(*m));
	do {
		if (n == cap)
			m = xreallocarray(m, cap *= 2, sizeof(*m));
		r = append_one(name, &m[n]);
		if (m[n].a)
			n++;
	} while (r == ST_OK && p_char(' '));
	if (r == ST_OK && p_end() < 0)
		r = ST_BAD;
	for (i = 0; i < n; i++)
		total += m[i].size;
	if (r == ST_OK && quota_room(total, n) < 0)
		r = errno == EDQUOT ? no("OVERQUOTA", "Over quota") :
		    no_errno("APPEND");
	uids = p_alloc((n + 1) * sizeof(*uids));
	for (i = 0; i < n; i++) {
		if (r != ST_OK) {
			append_abort(m[i].a);
			continue;
		}
		if (append_commit(m[i].a, m[i].flags, m[i].kw, m[i].nkw,
		    m[i].date, &uidv, &uids[i]) < 0)
			r = no_errno("APPEND");
	}
	free(m);
	if (r == ST_LOST)
		exit(0);	/* the client went away mid-message */
	if (r != ST_OK)
		return r;
	view_mark_own(name, uids, n);
	buf_printf(&b, "APPENDUID %u ", uidv);
	uid_set(&b, uids, n);
	set_code("%s", b.p);
	buf_free(&b);
	return ok(sess.codebuf.p, "APPEND completed");
}

/* REPLACE (RFC 8508): the new version of a message (a draft being edited)
 * is stored first, and the old one expunged only once the new one is
 * safe, so a failure leaves the old one in place and nothing is lost */
int
cmd_replace(const char *tag, int uid)
{
	struct seqset set;
	struct appendmsg m;
	uint32_t uidv = 0, newuid;
	size_t *vi, nv;
	char *name;
	long k;
	int r;

	if (p_sp() < 0 || p_seqset(&set) < 0 || p_sp() < 0)
		return ST_BAD;
	if (set.dollar || set.n != 1 || set.r[0].lo != set.r[0].hi)
		return bad("REPLACE takes one message");
	if ((r = set_indexes(&set, uid, &vi, &nv)) != ST_OK)
		return r;
	if (!nv || (k = store_index(vi[0])) < 0)
		return no("EXPUNGEISSUED", "No such message");
	if (sess.readonly)
		return no("READ-ONLY", "Mailbox is read-only");
	if (!(name = mailbox_arg()) || p_sp() < 0)
		return ST_BAD;
	r = append_one(name, &m);
	if (r == ST_OK && p_end() < 0)
		r = ST_BAD;
	if (r == ST_OK && append_commit(m.a, m.flags, m.kw, m.nkw, m.date,
	    &uidv, &newuid) < 0) {
		r = no_errno("REPLACE");
	} else if (r != ST_OK) {
		append_abort(m.a);
	}
	if (r == ST_LOST)
		exit(0);	/* the client went away mid-message */
	if (r != ST_OK)
		return r;
	view_mark_own(name, &newuid, 1);
	io_printf("* OK [APPENDUID %u %u] Replacement stored\r\n", uidv,
	    newuid);
	if ((k = store_index(vi[0])) >= 0 && folder_expunge(&sess.f, k) < 0 &&
	    errno != ENOENT)
		logmsg(LOG_ERR, "REPLACE: expunge of UID %u: %s",
		    sess.v.m[vi[0]].uid, strerror(errno));
	return ok(NULL, "REPLACE completed");
}
