/* imapd.c: one IMAP session on stdin/stdout, started per connection by
 * inetd, s6, tcpserver or systemd.  The protocol lives here; the Maildir
 * lives in maildir.c, message content in mime.c, TLS in tls.c. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "compress.h"
#include "config.h"
#include "imapd.h"
#include "io.h"
#include "maildir.h"
#include "mime.h"
#include "mutf7.h"
#include "parse.h"
#include "sort.h"
#include "tls.h"
#include "util.h"

enum state { S_NOAUTH = 1, S_AUTH = 2, S_SELECTED = 4, S_LOGOUT = 8 };

/* command flags */
enum {
	C_UID = 1 << 0,		/* has a UID variant */
	C_USESEQ = 1 << 1,	/* by sequence number: no EXPUNGE while it runs */
};

/* what a handler hands back to the one place that answers the client */
enum { ST_OK, ST_NO, ST_BAD, ST_DONE, ST_LOST };

struct cmd {
	const char *name;
	int (*fn)(const char *tag, int uid);
	int states;
	int flags;
};

/* the session: everything that lives from one command to the next */
static struct {
	enum state state;
	int preauth;		/* -p: started authenticated (ssh tunnel) */
	int tls;		/* the stream is encrypted */
	int compress;		/* COMPRESS=DEFLATE is active */
	int condstore;		/* CONDSTORE in use: MODSEQ in FETCH responses */
	int qresync;		/* QRESYNC enabled: VANISHED replaces EXPUNGE */
	int utf8;		/* UTF8=ACCEPT or IMAP4rev2: UTF-8 mailbox names */
	int rev2;		/* IMAP4rev2 enabled: its rules, not RFC 3501's */
	int secure;		/* LOGIN allowed: TLS, loopback or preauth */
	int login_fails;
	int bad_streak;
	char remote[INET6_ADDRSTRLEN + 8];
	char user[256];
	char maildir[PATH_MAX];
	char pwfile[PATH_MAX];
	struct folder f;	/* the selected folder */
	int readonly;
	struct view v;
	/* the reply under construction */
	const char *code;
	struct buf codebuf;	/* a response code built at run time */
	char text[256];
} s;

static void uid_set(struct buf *, const uint32_t *, size_t);
static const char *special_use_of(const char *);
static size_t search_run(struct search *, size_t *);
static void list_name(const char *);
static int cmd_append(const char *, int);
static int cmd_authenticate(const char *, int);
static int cmd_capability(const char *, int);
static int cmd_check(const char *, int);
static int cmd_close(const char *, int);
static int cmd_compress(const char *, int);
static int cmd_copy(const char *, int);
static int cmd_create(const char *, int);
static int cmd_delete(const char *, int);
static int cmd_enable(const char *, int);
static int cmd_examine(const char *, int);
static int cmd_expunge(const char *, int);
static int cmd_fetch(const char *, int);
static int cmd_id(const char *, int);
static int cmd_idle(const char *, int);
static int cmd_list(const char *, int);
static int cmd_login(const char *, int);
static int cmd_logout(const char *, int);
static int cmd_lsub(const char *, int);
static int cmd_move(const char *, int);
static int cmd_namespace(const char *, int);
static int cmd_noop(const char *, int);
static int cmd_rename(const char *, int);
static int cmd_search(const char *, int);
static int cmd_select(const char *, int);
static int cmd_sort(const char *, int);
static int cmd_starttls(const char *, int);
static int cmd_status(const char *, int);
static int cmd_store(const char *, int);
static int cmd_subscribe(const char *, int);
static int cmd_thread(const char *, int);
static int cmd_unselect(const char *, int);
static int cmd_unsubscribe(const char *, int);

#define ANY (S_NOAUTH | S_AUTH | S_SELECTED)
#define AUTHED (S_AUTH | S_SELECTED)

static const struct cmd cmds[] = {
	{ "APPEND", cmd_append, AUTHED, 0 },
	{ "AUTHENTICATE", cmd_authenticate, S_NOAUTH, 0 },
	{ "CAPABILITY", cmd_capability, ANY, 0 },
	{ "CHECK", cmd_check, S_SELECTED, 0 },
	{ "CLOSE", cmd_close, S_SELECTED, 0 },
	{ "COMPRESS", cmd_compress, AUTHED, 0 },
	{ "COPY", cmd_copy, S_SELECTED, C_UID | C_USESEQ },
	{ "CREATE", cmd_create, AUTHED, 0 },
	{ "DELETE", cmd_delete, AUTHED, 0 },
	{ "ENABLE", cmd_enable, AUTHED, 0 },
	{ "EXAMINE", cmd_examine, AUTHED, 0 },
	{ "EXPUNGE", cmd_expunge, S_SELECTED, C_UID },
	{ "FETCH", cmd_fetch, S_SELECTED, C_UID | C_USESEQ },
	{ "ID", cmd_id, ANY, 0 },
	{ "IDLE", cmd_idle, AUTHED, 0 },
	{ "LIST", cmd_list, AUTHED, 0 },
	{ "LOGIN", cmd_login, S_NOAUTH, 0 },
	{ "LOGOUT", cmd_logout, ANY, 0 },
	{ "LSUB", cmd_lsub, AUTHED, 0 },
	{ "MOVE", cmd_move, S_SELECTED, C_UID },
	{ "NAMESPACE", cmd_namespace, AUTHED, 0 },
	{ "NOOP", cmd_noop, ANY, 0 },
	{ "RENAME", cmd_rename, AUTHED, 0 },
	{ "SEARCH", cmd_search, S_SELECTED, C_UID | C_USESEQ },
	{ "SELECT", cmd_select, AUTHED, 0 },
	{ "SORT", cmd_sort, S_SELECTED, C_UID | C_USESEQ },
	{ "STARTTLS", cmd_starttls, S_NOAUTH, 0 },
	{ "STATUS", cmd_status, AUTHED, 0 },
	{ "STORE", cmd_store, S_SELECTED, C_UID | C_USESEQ },
	{ "SUBSCRIBE", cmd_subscribe, AUTHED, 0 },
	{ "THREAD", cmd_thread, S_SELECTED, C_UID | C_USESEQ },
	{ "UNSELECT", cmd_unselect, S_SELECTED, 0 },
	{ "UNSUBSCRIBE", cmd_unsubscribe, AUTHED, 0 },
};

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

/* --- replies ---------------------------------------------------------- */

static int
no(const char *code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int
no(const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s.text, sizeof(s.text), fmt, ap);
	va_end(ap);
	s.code = code;
	return ST_NO;
}

static int
bad(const char *why)
{
	if (!perr)
		perr = why;
	return ST_BAD;
}

static int
ok(const char *code, const char *text)
{
	snprintf(s.text, sizeof(s.text), "%s", text);
	s.code = code;
	return ST_OK;
}

/* a response code built at run time: "APPENDUID 3 7" */
static const char *
set_code(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static const char *
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
	buf_reset(&s.codebuf);
	buf_add(&s.codebuf, p, n);
	free(p);
	s.code = s.codebuf.p;
	return s.code;
}

/* a store failure as the client should hear it */
static int
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

static void
capabilities(struct buf *b)
{
	buf_adds(b, "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE "
	    "UIDPLUS UNSELECT CHILDREN MOVE CONDSTORE QRESYNC ESEARCH "
	    "SEARCHRES SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED "
	    "LIST-STATUS STATUS=SIZE UTF8=ACCEPT MULTIAPPEND OBJECTID SORT "
	    "SORT=DISPLAY ESORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES");
	if (s.state == S_NOAUTH) {
		if (!s.tls && tls_available())
			buf_adds(b, " STARTTLS");
		if (s.secure)
			buf_adds(b, " AUTH=PLAIN");
		else
			buf_adds(b, " LOGINDISABLED");
		if (s.tls && tls_client_verified())
			buf_adds(b, " AUTH=EXTERNAL");
		return;
	}
	buf_printf(b, " APPENDLIMIT=%llu", (unsigned long long)APPEND_MAX);
	if (compress_available())
		buf_adds(b, " COMPRESS=DEFLATE");
}

static void
bye(const char *why)
{
	io_printf("* BYE %s\r\n", why);
	io_close();
	exit(0);
}

/* --- flags ------------------------------------------------------------ */

static void
flag_list(struct buf *b, uint32_t flags, uint32_t kw)
{
	size_t i;
	int n = 0;

	buf_addc(b, '(');
	for (i = 0; i < LEN(sysflags); i++)
		if (flags & sysflags[i].bit)
			buf_printf(b, "%s%s", n++ ? " " : "", sysflags[i].name);
	for (i = 0; i < (size_t)s.f.nkw; i++)
		if (kw & (1U << i))
			buf_printf(b, "%s%s", n++ ? " " : "", s.f.kw[i]);
	if ((flags & FL_RECENT) && !s.rev2)
		buf_printf(b, "%s\\Recent", n ? " " : "");
	buf_addc(b, ')');
}

/* the bit of a system flag name, 0 for a keyword, -1 for a flag that may
 * not be stored */
static long
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
static int
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
		if ((k = folder_keyword(&s.f, names[i], create)) < 0) {
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

	if (s.v.n == s.v.cap) {
		s.v.cap = s.v.cap ? s.v.cap * 2 : 64;
		s.v.m = xreallocarray(s.v.m, s.v.cap, sizeof(*s.v.m));
	}
	m = &s.v.m[s.v.n++];
	m->uid = uid;
	m->flags = flags;
	m->kw = kw;
	m->gone = 0;
	m->modseq = modseq;
}

static void
view_free(void)
{
	free(s.v.m);
	memset(&s.v, 0, sizeof(s.v));
}

static void
print_flags_fetch(size_t i)
{
	struct buf b = { 0 };

	io_printf("* %zu FETCH (", i + 1);
	/* UID is always there: IMAP4rev2 and QRESYNC require it, and
	 * every other client can use it */
	io_printf("UID %u ", s.v.m[i].uid);
	flag_list(&b, s.v.m[i].flags, s.v.m[i].kw);
	io_printf("FLAGS %s", b.p);
	if (s.condstore)
		io_printf(" MODSEQ (%llu)",
		    (unsigned long long)s.v.m[i].modseq);
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
	struct folder *f = &s.f;
	size_t i, j, o, added = 0, recent = 0, nvan = 0;
	uint32_t maxuid, *van = NULL;
	struct msg *m;

	if (s.qresync && expunge)
		van = xreallocarray(NULL, s.v.n + 1, sizeof(*van));
	for (i = j = o = 0; i < s.v.n; i++) {
		while (j < f->nmsgs && f->msgs[j].uid < s.v.m[i].uid)
			j++;
		if (j == f->nmsgs || f->msgs[j].uid != s.v.m[i].uid) {
			s.v.m[i].gone = 1;
			if (expunge) {
				if (van)
					van[nvan++] = s.v.m[i].uid;
				else
					io_printf("* %zu EXPUNGE\r\n", o + 1);
				continue;
			}
		} else if ((f->msgs[j].flags & ~FL_RECENT) !=
		    (s.v.m[i].flags & ~FL_RECENT) ||
		    f->msgs[j].kw != s.v.m[i].kw ||
		    (s.condstore && f->msgs[j].modseq != s.v.m[i].modseq)) {
			s.v.m[i].flags = f->msgs[j].flags |
			    (s.v.m[i].flags & FL_RECENT);
			s.v.m[i].kw = f->msgs[j].kw;
			s.v.m[i].modseq = f->msgs[j].modseq;
			s.v.m[o] = s.v.m[i];
			print_flags_fetch(o);
			o++;
			continue;
		}
		s.v.m[o++] = s.v.m[i];
	}
	s.v.n = o;
	print_vanished("", van, nvan);
	free(van);
	maxuid = s.v.n ? s.v.m[s.v.n - 1].uid : 0;
	for (j = 0; j < f->nmsgs; j++) {
		m = &f->msgs[j];
		if (m->uid <= maxuid)
			continue;
		view_add(m->uid, m->flags, m->kw, m->modseq);
		added++;
	}
	if (added) {
		for (i = 0; i < s.v.n; i++)
			recent += !!(s.v.m[i].flags & FL_RECENT);
		io_printf("* %zu EXISTS\r\n", s.v.n);
		if (!s.rev2)
			io_printf("* %zu RECENT\r\n", recent);
	}
}

static void
view_sync(int expunge)
{
	uint32_t uidvalidity = s.f.uidvalidity;

	if (s.state != S_SELECTED)
		return;
	if (folder_sync(&s.f) < 0)
		logmsg(LOG_ERR, "sync of %s failed: %s", s.f.name,
		    strerror(errno));
	/* only when the UID list was removed by hand: the client's UIDs
	 * mean nothing any more, and it must start over */
	if (s.f.uidvalidity != uidvalidity)
		bye("UIDVALIDITY changed: please reconnect");
	view_update(expunge);
}

/* index of message i of the view in the store, or -1 when it is gone */
static long
store_index(size_t i)
{
	if (s.v.m[i].gone)
		return -1;
	return folder_find(&s.f, s.v.m[i].uid);
}

/* Resolve a sequence set into the list of view indexes it names, in
 * ascending order.  Sequence numbers beyond the view are an error; UIDs
 * that do not exist are skipped. */
static int
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
		seq_resolve(set, s.v.n ? s.v.m[s.v.n - 1].uid : 0);
	} else {
		seq_resolve(set, s.v.n);
	}
	for (k = 0; !uid && k < set->n; k++)
		if (set->r[k].lo == 0 || set->r[k].hi > s.v.n)
			return bad("Invalid message sequence number");
	for (i = 0; i < s.v.n; i++) {
		v = uid ? s.v.m[i].uid : (uint32_t)(i + 1);
		if (!seq_has(set, v))
			continue;
		if (*n == cap) {
			size_t *t = p_alloc(2 * cap * sizeof(*t));

			memcpy(t, *out, cap * sizeof(*t));
			*out = t;
			cap *= 2;
		}
		(*out)[(*n)++] = i;
	}
	return ST_OK;
}

/* a list of UIDs as a compact set "1:3,7" */
static void
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

/* A mailbox name from the client, as the store names it: UTF-8 names
 * (UTF8=ACCEPT, IMAP4rev2) become modified UTF-7. */
static char *
mailbox_arg(void)
{
	struct buf b = { 0 };
	char *name, *out;

	if (!(name = p_mailbox()) || !s.utf8)
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
static const char *
shown_name(const char *name)
{
	struct buf b = { 0 };
	char *out;

	if (!s.utf8 || mutf7_to_utf8(&b, name) < 0) {
		buf_free(&b);
		return name;
	}
	out = p_strdup(b.p ? b.p : "", b.len);
	buf_free(&b);
	return out;
}

/* --- any state -------------------------------------------------------- */

static int
cmd_capability(const char *tag, int uid)
{
	struct buf b = { 0 };

	if (p_end() < 0)
		return ST_BAD;
	capabilities(&b);
	io_printf("* CAPABILITY %s\r\n", b.p);
	buf_free(&b);
	return ok(NULL, "CAPABILITY completed");
}

static int
cmd_noop(const char *tag, int uid)
{
	if (p_end() < 0)
		return ST_BAD;
	return ok(NULL, "NOOP completed");
}

static int
cmd_logout(const char *tag, int uid)
{
	if (p_end() < 0)
		return ST_BAD;
	io_puts("* BYE Logging out\r\n");
	s.state = S_LOGOUT;
	return ok(NULL, "LOGOUT completed");
}

/* ID: the client's parameters are read and ignored, ours are sent */
static int
cmd_id(const char *tag, int uid)
{
	size_t n;
	int nil, i;

	if (p_sp() < 0)
		return ST_BAD;
	if (!p_char('(')) {
		if (!p_nstring(&n, &nil) || !nil)
			return bad("Expected NIL or a parameter list");
	} else {
		for (i = 0; !p_char(')'); i++) {
			if (i && p_sp() < 0)
				return ST_BAD;
			if (!p_string(&n) || p_sp() < 0 || !p_nstring(&n, &nil))
				return bad("Invalid ID parameter list");
			if (i >= 30)
				return bad("Too many ID parameters");
		}
	}
	if (p_end() < 0)
		return ST_BAD;
	io_puts("* ID (\"name\" \"imapd\" \"version\" \"" VERSION "\")\r\n");
	return ok(NULL, "ID completed");
}

static int
cmd_enable(const char *tag, int uid)
{
	struct buf on = { 0 };
	char *w;

	do {
		if (p_sp() < 0 || !(w = p_atom())) {
			buf_free(&on);
			return ST_BAD;
		}
		if (!ascii_casecmp(w, "CONDSTORE") && !s.condstore) {
			s.condstore = 1;
			buf_adds(&on, " CONDSTORE");
		} else if (!ascii_casecmp(w, "QRESYNC") && !s.qresync) {
			s.qresync = s.condstore = 1;
			buf_adds(&on, " QRESYNC");
		} else if (!ascii_casecmp(w, "IMAP4rev2") && !s.rev2) {
			s.rev2 = s.utf8 = 1;
			buf_adds(&on, " IMAP4rev2");
		} else if (!ascii_casecmp(w, "UTF8=ACCEPT") && !s.utf8) {
			s.utf8 = 1;
			buf_adds(&on, " UTF8=ACCEPT");
		}
	} while (p_peek() == ' ');
	if (p_end() < 0) {
		buf_free(&on);
		return ST_BAD;
	}
	io_printf("* ENABLED%s\r\n", on.len ? on.p : "");
	buf_free(&on);
	return ok(NULL, "ENABLE completed");
}

static int
cmd_namespace(const char *tag, int uid)
{
	if (p_end() < 0)
		return ST_BAD;
	io_printf("* NAMESPACE ((\"\" \"%c\")) NIL NIL\r\n", STORE_SEP);
	return ok(NULL, "NAMESPACE completed");
}

/* --- logging in ------------------------------------------------------- */

static void
login_delay(void)
{
	struct timespec ts = {
		LOGIN_DELAY_MS / 1000, (LOGIN_DELAY_MS % 1000) * 1000000L
	};

	io_flush();
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int
logged_in(void)
{
	struct buf b = { 0 };

	if (store_init(s.maildir) < 0) {
		logmsg(LOG_ERR, "cannot open Maildir %s: %s", s.maildir,
		    strerror(errno));
		return no("UNAVAILABLE", "Mailbox store unavailable");
	}
	s.state = S_AUTH;
	io_timeout(TIMEOUT_AUTH * 1000);
	/* the capability list changes at login: save the client a round
	 * trip by sending it in the reply */
	buf_adds(&b, "CAPABILITY ");
	capabilities(&b);
	set_code("%s", b.p);
	snprintf(s.text, sizeof(s.text), "Logged in");
	buf_free(&b);
	return ST_OK;
}

static int
try_login(const char *user, const char *pass)
{
	int r;

	r = strcmp(user, s.user) == 0 ?
	    auth_check(user, pass, s.pwfile) : 0;
	if (r > 0) {
		logmsg(LOG_INFO, "login user=%s from=%s", user, s.remote);
		return logged_in();
	}
	logmsg(LOG_NOTICE, "login failed user=%.64s from=%s", user, s.remote);
	login_delay();
	if (r < 0)
		return no("UNAVAILABLE", "Authentication unavailable");
	if (++s.login_fails >= LOGIN_TRIES) {
		io_puts("* BYE Too many failed logins\r\n");
		s.state = S_LOGOUT;
	}
	return no("AUTHENTICATIONFAILED", "Authentication failed");
}

static int
cmd_login(const char *tag, int uid)
{
	char *user, *pass;
	size_t n;
	int r;

	if (p_sp() < 0 || !(user = p_astring(&n)) || p_sp() < 0 ||
	    !(pass = p_astring(&n)) || p_end() < 0)
		return ST_BAD;
	if (!s.secure)
		return no("PRIVACYREQUIRED", "Use STARTTLS before LOGIN");
	r = try_login(user, pass);
	explicit_bzero(pass, n);
	return r;
}

/* decode base64 in place; -1 when it is not valid */
static long
b64decode(char *s)
{
	size_t i, o = 0;
	unsigned long acc = 0;
	int bits = 0, v, pad = 0;

	for (i = 0; s[i]; i++) {
		if (s[i] == '=') {
			pad++;
			continue;
		}
		if (pad || (v = base64_value((unsigned char)s[i], '/')) < 0)
			return -1;
		acc = acc << 6 | v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			s[o++] = acc >> bits;
		}
	}
	if ((i - pad) % 4 == 1 || pad > 2)
		return -1;
	return o;
}

/* read a SASL response: the initial one on the command line (SASL-IR),
 * or one line after an empty challenge; decoded in place */
static long
sasl_response(char *line, size_t size, char **resp)
{
	long n;

	if (p_char(' ')) {
		if (!(*resp = p_atom()) || p_end() < 0)
			return -1;
		if (!strcmp(*resp, "="))
			(*resp)[0] = '\0';
	} else {
		if (p_end() < 0)
			return -1;
		io_puts("+ \r\n");
		if ((n = io_getline(line, size)) < 0)
			return bad("Invalid authentication response"), -1;
		if (!strcmp(line, "*"))
			return bad("Authentication cancelled"), -1;
		*resp = line;
	}
	if ((n = b64decode(*resp)) < 0)
		return bad("Invalid base64"), -1;
	(*resp)[n] = '\0';	/* decoding only shrinks */
	return n;
}

/* EXTERNAL: the client certificate chained to the configured client CA
 * is the credential (RFC 4422 appendix A) */
static int
auth_external(void)
{
	char line[1024], *resp;
	long n;

	if ((n = sasl_response(line, sizeof(line), &resp)) < 0)
		return ST_BAD;
	if (!s.tls || !tls_client_verified())
		return no("AUTHENTICATIONFAILED", "No verified client "
		    "certificate");
	if (n && (memchr(resp, '\0', n) || strcmp(resp, s.user)))
		return no("AUTHORIZATIONFAILED", "Cannot act as another user");
	logmsg(LOG_INFO, "login user=%s from=%s (certificate)", s.user,
	    s.remote);
	return logged_in();
}

static int
cmd_authenticate(const char *tag, int uid)
{
	char *mech, *resp, *authz, *user, *pass, *end;
	char line[1024];
	long n, r;

	if (p_sp() < 0 || !(mech = p_atom()))
		return ST_BAD;
	if (!ascii_casecmp(mech, "EXTERNAL"))
		return auth_external();
	if (ascii_casecmp(mech, "PLAIN"))
		return no("CANNOT", "Unsupported authentication mechanism");
	if (!s.secure)
		return no("PRIVACYREQUIRED", "Use STARTTLS before AUTHENTICATE");
	if ((n = sasl_response(line, sizeof(line), &resp)) < 0)
		return ST_BAD;
	/* authzid NUL authcid NUL password */
	authz = resp;
	end = resp + n;
	if (!(user = memchr(authz, '\0', end - authz)))
		return bad("Invalid PLAIN response");
	user++;
	if (!(pass = memchr(user, '\0', end - user)))
		return bad("Invalid PLAIN response");
	pass++;
	authz = p_strdup(authz, strlen(authz));
	user = p_strdup(user, pass - 1 - user);
	pass = p_strdup(pass, end - pass);
	explicit_bzero(resp, n);
	if (*authz && strcmp(authz, user)) {
		explicit_bzero(pass, strlen(pass));
		login_delay();
		return no("AUTHORIZATIONFAILED", "Cannot act as another user");
	}
	r = try_login(user, pass);
	explicit_bzero(pass, strlen(pass));
	return r;
}

static int
cmd_starttls(const char *tag, int uid)
{
	struct layer *l;

	if (p_end() < 0)
		return ST_BAD;
	if (s.tls)
		return bad("TLS is already active");
	if (!tls_available() || tls_load() < 0)
		return no("UNAVAILABLE", "TLS is not configured");
	io_printf("%s OK Begin TLS negotiation now\r\n", tag);
	io_flush();
	/* Bytes the client sent after STARTTLS came in the clear: they
	 * must never be read as if they had arrived through TLS. */
	if (io_discard())
		logmsg(LOG_NOTICE, "discarded plaintext pipelined after "
		    "STARTTLS from %s", s.remote);
	if (!(l = tls_start(io_top())))
		exit(1);
	io_push(l);
	s.tls = s.secure = 1;
	return ST_DONE;
}

static int
cmd_compress(const char *tag, int uid)
{
	struct layer *l;
	char *mech;

	if (p_sp() < 0 || !(mech = p_atom()) || p_end() < 0)
		return ST_BAD;
	if (ascii_casecmp(mech, "DEFLATE") || !compress_available())
		return bad("Unknown compression mechanism");
	if (s.compress)
		return no("COMPRESSIONACTIVE", "Compression is already active");
	if (!(l = compress_start()))
		return no("SERVERBUG", "Cannot start compression");
	io_printf("%s OK DEFLATE active\r\n", tag);
	io_flush();
	io_push(l);
	s.compress = 1;
	return ST_DONE;
}

/* --- mailboxes -------------------------------------------------------- */

static void
close_folder(void)
{
	if (s.state != S_SELECTED)
		return;
	folder_close(&s.f);
	view_free();
	s.state = S_AUTH;
	if (search_saved) {
		free(search_saved->r);
		free(search_saved);
		search_saved = NULL;
	}
}

static void
select_responses(void)
{
	struct buf b = { 0 };
	size_t i, recent = 0, unseen = 0;
	char id[64];
	int k;

	buf_adds(&b, "\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded");
	for (k = 0; k < s.f.nkw; k++)
		buf_printf(&b, " %s", s.f.kw[k]);
	io_printf("* FLAGS (%s)\r\n", b.p);
	if (s.readonly)
		io_puts("* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n");
	else
		io_printf("* OK [PERMANENTFLAGS (%s%s)] Flags permitted\r\n",
		    b.p, s.f.nkw < KW_MAX ? " \\*" : "");
	for (i = 0; i < s.v.n; i++) {
		recent += !!(s.v.m[i].flags & FL_RECENT);
		if (!unseen && !(s.v.m[i].flags & FL_SEEN))
			unseen = i + 1;
	}
	io_printf("* %zu EXISTS\r\n", s.v.n);
	if (s.rev2) {
		/* RFC 9051 6.3.2: the mailbox's LIST response, no RECENT
		 * and no UNSEEN */
		io_printf("* LIST () \"%c\" ", STORE_SEP);
		list_name(s.f.name);
		io_puts("\r\n");
	} else {
		io_printf("* %zu RECENT\r\n", recent);
		if (unseen)
			io_printf("* OK [UNSEEN %zu] First unseen\r\n",
			    unseen);
	}
	io_printf("* OK [UIDVALIDITY %u] UIDs valid\r\n", s.f.uidvalidity);
	io_printf("* OK [UIDNEXT %u] Predicted next UID\r\n", s.f.uidnext);
	io_printf("* OK [HIGHESTMODSEQ %llu] Highest\r\n",
	    (unsigned long long)MAX(s.f.highestmodseq, 1));
	if (folder_id(&s.f, id, sizeof(id)) == 0)
		io_printf("* OK [MAILBOXID (%s)] Ok\r\n", id);
	buf_free(&b);
}

/* index of the first message of the view with a UID >= uid */
static size_t
view_lower(uint32_t uid)
{
	size_t lo = 0, hi = s.v.n, mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (s.v.m[mid].uid < uid)
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
		end = MIN(known->r[k].hi, s.f.uidnext - 1);
		for (i = view_lower(u); u <= end; i++) {
			/* the next UID that still exists, and the gap before */
			next = i < s.v.n ? s.v.m[i].uid : UINT32_MAX;
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
static void
vanished_earlier(struct seqset *known, uint64_t since)
{
	struct seqset all;
	struct range r;
	struct buf b = { 0 };
	uint32_t *u;
	size_t n, i, o;

	if (!known) {
		r.lo = 1;
		r.hi = s.f.uidnext > 1 ? s.f.uidnext - 1 : 1;
		all.r = &r;
		all.n = 1;
		all.dollar = 0;
		known = &all;
	}
	if (folder_vanished(&s.f, since, &u, &n) == 0) {
		for (i = o = 0; i < n; i++)
			if (seq_has(known, u[i]))
				u[o++] = u[i];
		print_vanished("(EARLIER) ", u, o);
		free(u);
		return;
	}
	/* the history does not reach back that far: every UID the client
	 * may know of that is not here any more */
	if (s.f.uidnext > 1)
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
		if (!s.qresync)
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

	if (q->uidvalidity != s.f.uidvalidity)
		return;
	if (q->has_known)
		seq_resolve(&q->known, s.f.uidnext > 1 ? s.f.uidnext - 1 : 1);
	vanished_earlier(q->has_known ? &q->known : NULL, q->modseq);
	for (i = 0; i < s.v.n; i++) {
		if (s.v.m[i].modseq <= q->modseq)
			continue;
		if (q->has_known && !seq_has(&q->known, s.v.m[i].uid))
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
	for (i = 0; i < s.f.nmsgs; i++) {
		if (msg_info(&s.f, i, &date, &size) < 0 || date >= cutoff)
			continue;
		if (folder_expunge(&s.f, i) == 0)
			n++;
	}
	if (n) {
		logmsg(LOG_INFO, "expired %zu messages older than %d days "
		    "from %s", n, days, name);
		folder_sync(&s.f);
	}
}

static int
do_select(int readonly)
{
	struct qresync q;
	char *name;
	size_t i;
	int r, condstore = 0, was_selected = s.state == S_SELECTED;

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
		s.condstore = 1;
	if (folder_open(&s.f, name, !readonly) < 0) {
		if (errno == ENOENT && mbox_exists(name))
			return no("CANNOT", "Mailbox cannot be selected");
		return no_errno(name);
	}
	s.readonly = readonly;
	s.state = S_SELECTED;
	if (!readonly)
		expire(name);
	for (i = 0; i < s.f.nmsgs; i++)
		view_add(s.f.msgs[i].uid, s.f.msgs[i].flags, s.f.msgs[i].kw,
		    s.f.msgs[i].modseq);
	select_responses();
	if (condstore == 2)
		qresync_changes(&q);
	if (readonly)
		return ok("READ-ONLY", "EXAMINE completed");
	return ok("READ-WRITE", "SELECT completed");
}

static int
cmd_select(const char *tag, int uid)
{
	return do_select(0);
}

static int
cmd_examine(const char *tag, int uid)
{
	return do_select(1);
}

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

static int
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

static int
cmd_delete(const char *tag, int uid)
{
	char *name;

	if (p_sp() < 0 || !(name = mailbox_arg()) || p_end() < 0)
		return ST_BAD;
	if (!strcmp(name, "INBOX"))
		return no("CANNOT", "INBOX cannot be deleted");
	if (s.state == S_SELECTED && !strcmp(name, s.f.name))
		close_folder();
	if (mbox_delete(name) < 0)
		return no_errno(name);
	return ok(NULL, "DELETE completed");
}

static int
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

static int
cmd_subscribe(const char *tag, int uid)
{
	return subscribe(1);
}

static int
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

/* a mailbox name as an IMAP string */
static void
list_name(const char *name)
{
	struct buf b = { 0 };

	name = shown_name(name);
	if (s.utf8 && utf8_quotable(name)) {
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

/* STATUS items */
enum {
	ST_MESSAGES = 1 << 0, ST_RECENT = 1 << 1, ST_UIDNEXT = 1 << 2,
	ST_UIDVALIDITY = 1 << 3, ST_UNSEEN = 1 << 4, ST_HIGHESTMODSEQ = 1 << 5,
	ST_SIZE = 1 << 6, ST_DELETED = 1 << 7, ST_MAILBOXID = 1 << 8,
	ST_APPENDLIMIT = 1 << 9,
};

static const struct {
	const char *name;
	int bit;
} status_names[] = {
	{ "MESSAGES", ST_MESSAGES }, { "RECENT", ST_RECENT },
	{ "UIDNEXT", ST_UIDNEXT }, { "UIDVALIDITY", ST_UIDVALIDITY },
	{ "UNSEEN", ST_UNSEEN }, { "HIGHESTMODSEQ", ST_HIGHESTMODSEQ },
	{ "SIZE", ST_SIZE }, { "DELETED", ST_DELETED },
	{ "MAILBOXID", ST_MAILBOXID }, { "APPENDLIMIT", ST_APPENDLIMIT },
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
	if (*items & ST_HIGHESTMODSEQ)
		s.condstore = 1;
	return ST_OK;
}

static void
status_line(const char *name, const struct mboxstatus *st, int items)
{
	const char *sep = "";

	io_puts("* STATUS ");
	list_name(name);
	io_puts(" (");
	if (items & ST_MESSAGES)
		io_printf("%sMESSAGES %u", sep, st->messages), sep = " ";
	if (items & ST_RECENT)
		io_printf("%sRECENT %u", sep, st->recent), sep = " ";
	if (items & ST_UIDNEXT)
		io_printf("%sUIDNEXT %u", sep, st->uidnext), sep = " ";
	if (items & ST_UIDVALIDITY)
		io_printf("%sUIDVALIDITY %u", sep, st->uidvalidity), sep = " ";
	if (items & ST_UNSEEN)
		io_printf("%sUNSEEN %u", sep, st->unseen), sep = " ";
	if (items & ST_DELETED)
		io_printf("%sDELETED %u", sep, st->deleted), sep = " ";
	if (items & ST_SIZE)
		io_printf("%sSIZE %llu", sep, (unsigned long long)st->size),
		    sep = " ";
	if (items & ST_APPENDLIMIT)
		io_printf("%sAPPENDLIMIT %llu", sep,
		    (unsigned long long)APPEND_MAX), sep = " ";
	if (items & ST_MAILBOXID)
		io_printf("%sMAILBOXID (%s)", sep, st->mailboxid), sep = " ";
	if (items & ST_HIGHESTMODSEQ)
		io_printf("%sHIGHESTMODSEQ %llu", sep,
		    (unsigned long long)MAX(st->highestmodseq, 1));
	io_puts(")\r\n");
}

/* SIZE makes the store read messages whose size it does not know */
static int
mailbox_status(const char *name, struct mboxstatus *st, int items)
{
	if (items & ST_SIZE)
		return mbox_status(name, st);
	return mbox_status_nosize(name, st);
}

/* the special-use attribute of a folder, or NULL */
static const char *
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
		if ((sub || childinfo) && list_matches(c, names[i]))
			list_one(c, names[i], 0, childinfo, sub);
	}
}

static int
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

static int
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

static int
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

/* stream the message literal into the store */
static int
append_data(struct append *a, unsigned long long size)
{
	char chunk[16384];
	size_t k;
	int failed = 0;

	while (size) {
		k = MIN(size, sizeof(chunk));
		if (io_readn(chunk, k) < 0)
			return -2;
		if (!failed && append_write(a, chunk, k) < 0)
			failed = errno;
		size -= k;
	}
	errno = failed;
	return failed ? -1 : 0;
}

/* one message of an APPEND, read into the store's tmp/ */
struct appendmsg {
	struct append *a;
	uint32_t flags;
	char **kw;
	size_t nkw;
	time_t date;
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

/* [flags SP] [date-time SP] (literal | UTF8 SP "(" literal8 ")") */
static int
append_one(const char *name, struct appendmsg *m)
{
	long long date = -1, size;
	int r, utf8 = 0;

	memset(m, 0, sizeof(*m));
	if (p_peek() == '(' && (r = append_flags(m)) != ST_OK)
		return r;
	if (p_peek() == '"' && (p_datetime(&date) < 0 || p_sp() < 0))
		return ST_BAD;
	m->date = date < 0 ? time(NULL) : (time_t)date;
	if (s.utf8 && p_keyword("UTF8")) {
		if (p_sp() < 0 || !p_char('(') || !p_char('~'))
			return bad("Expected UTF8 (~{size})");
		utf8 = 1;
	}
	if (p_peek() != '{')
		return bad("Expected a message literal");
	if (!(m->a = append_begin(name))) {
		if (errno == ENOENT)
			return no("TRYCREATE", "No such mailbox");
		return no_errno(name);
	}
	if ((size = p_literal(APPEND_MAX)) < 0) {
		if (perr_code && !strcmp(perr_code, "TOOBIG"))
			return no("TOOBIG", "Message larger than %llu bytes",
			    (unsigned long long)APPEND_MAX);
		return ST_BAD;
	}
	if ((r = append_data(m->a, size)) == -2)
		return ST_LOST;
	if (p_literal_done() < 0)
		return ST_BAD;
	if (r < 0)
		return no_errno("APPEND");
	if (utf8 && !p_char(')'))
		return bad("Expected ')'");
	return ST_OK;
}

/* APPEND, with MULTIAPPEND (RFC 3502): every message or none */
static int
cmd_append(const char *tag, int uid)
{
	struct appendmsg *m;
	struct buf b = { 0 };
	uint32_t uidv = 0, *uids;
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
	buf_printf(&b, "APPENDUID %u ", uidv);
	uid_set(&b, uids, n);
	set_code("%s", b.p);
	buf_free(&b);
	return ok(s.codebuf.p, "APPEND completed");
}

/* --- selected state --------------------------------------------------- */

static int
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
	if (s.readonly)
		return no("READ-ONLY", "Mailbox is read-only");
	folder_sync(&s.f);
	for (i = 0; i < s.f.nmsgs; i++) {
		if (!(s.f.msgs[i].flags & FL_DELETED))
			continue;
		if (uids && !seq_has(uids, s.f.msgs[i].uid))
			continue;
		if (folder_expunge(&s.f, i) == 0)
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

static int
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
		seq_resolve(&set, s.v.n ? s.v.m[s.v.n - 1].uid : 0);
	} else if (p_end() < 0) {
		return ST_BAD;
	}
	if ((r = expunge(uid ? &set : NULL, &n)) != ST_OK)
		return r;
	/* RFC 7162 3.2.7: with QRESYNC the new HIGHESTMODSEQ comes along */
	if (n && s.qresync) {
		view_sync(1);
		return ok(set_code("HIGHESTMODSEQ %llu",
		    (unsigned long long)s.f.highestmodseq), "EXPUNGE completed");
	}
	return ok(NULL, "EXPUNGE completed");
}

static int
cmd_close(const char *tag, int uid)
{
	size_t n;

	if (p_end() < 0)
		return ST_BAD;
	if (!s.readonly)
		expunge(NULL, &n);
	close_folder();
	return ok(NULL, "CLOSE completed");
}

static int
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
		(*srcuids)[(*n)++] = s.v.m[vi[i]].uid;
	}
	return ST_OK;
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
	if (move && s.readonly)
		return no("READ-ONLY", "Mailbox is read-only");
	if (!mbox_exists(name))
		return no("TRYCREATE", "No such mailbox");
	if (n == 0)
		return ok(NULL, "No messages");
	dst = p_alloc(n * sizeof(*dst));
	if (folder_copy(&s.f, idx, n, name, &uidv, dst) < 0) {
		if (errno == ENOENT)
			return no("EXPUNGEISSUED",
			    "Some of the messages no longer exist");
		return no_errno(move ? "MOVE" : "COPY");
	}
	buf_printf(&b, "COPYUID %u ", uidv);
	uid_set(&b, src, n);
	buf_addc(&b, ' ');
	uid_set(&b, dst, n);
	set_code("%s", b.p);
	buf_free(&b);
	if (!move)
		return ok(s.codebuf.p, "COPY completed");
	/* RFC 6851: COPYUID comes untagged, before the expunges */
	io_printf("* OK [%s] Moved\r\n", s.codebuf.p);
	for (i = n; i-- > 0;)
		if (folder_expunge(&s.f, idx[i]) < 0 && errno != ENOENT)
			logmsg(LOG_ERR, "MOVE: expunge of UID %u: %s", src[i],
			    strerror(errno));
	return ok(NULL, "MOVE completed");
}

static int
cmd_copy(const char *tag, int uid)
{
	return copy(uid, 0);
}

static int
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
	s.condstore = 1;
	return ST_OK;
}

static int
cmd_store(const char *tag, int uid)
{
	struct seqset set;
	struct buf modified = { 0 };
	char *item, **names;
	size_t *vi, nv, i, nnames;
	uint32_t fl, kw, nfl, nkw;
	uint64_t unchanged;
	int mode, silent, r, gone = 0;
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
	if (s.readonly)
		return no("READ-ONLY", "Mailbox is read-only");
	if ((r = flag_bits(names, nnames, mode >= 0, &fl, &kw)) != ST_OK)
		return r;
	/* start from the flags on disk, so a change another client made
	 * meanwhile is not undone */
	folder_sync(&s.f);
	for (i = 0; i < nv; i++) {
		struct vmsg *m = &s.v.m[vi[i]];

		if ((k = store_index(vi[i])) < 0) {
			gone = 1;
			continue;
		}
		if (s.f.msgs[k].modseq > unchanged) {
			buf_printf(&modified, "%s%u", modified.len ? "," : "",
			    uid ? m->uid : (uint32_t)vi[i] + 1);
			continue;
		}
		nfl = s.f.msgs[k].flags & ~FL_RECENT;
		nkw = s.f.msgs[k].kw;
		store_apply(mode, fl, kw, &nfl, &nkw);
		if ((nfl != (s.f.msgs[k].flags & ~FL_RECENT) ||
		    nkw != s.f.msgs[k].kw) &&
		    folder_setflags(&s.f, k, nfl, nkw) < 0) {
			gone = 1;
			continue;
		}
		/* the store merged our change with any made meanwhile */
		m->flags = (s.f.msgs[k].flags & ~FL_RECENT) |
		    (m->flags & FL_RECENT);
		m->kw = s.f.msgs[k].kw;
		m->modseq = s.f.msgs[k].modseq;
		if (!silent)
			print_flags_fetch(vi[i]);
		else if (unchanged != UINT64_MAX)
			io_printf("* %zu FETCH (UID %u MODSEQ (%llu))\r\n",
			    vi[i] + 1, m->uid, (unsigned long long)m->modseq);
	}
	if (modified.len) {
		set_code("MODIFIED %s", modified.p);
		buf_free(&modified);
		return ok(s.codebuf.p, "Conditional STORE failed for some");
	}
	if (gone)
		return no("EXPUNGEISSUED", "Some of the messages no longer exist");
	return ok(NULL, "STORE completed");
}

/* --- FETCH ------------------------------------------------------------ */

enum fetchkind {
	FA_UID, FA_FLAGS, FA_INTERNALDATE, FA_SIZE, FA_ENVELOPE, FA_BODY,
	FA_BODYSTRUCTURE, FA_SECTION, FA_BINARYSIZE, FA_MODSEQ, FA_EMAILID,
	FA_THREADID
};

/* one item of a FETCH request */
struct fetchatt {
	enum fetchkind kind;
	const char *name;	/* as the response names it */
	struct section *sec;
	int binary, peek;
	int partial;
	uint64_t from, count;
};

struct fetchreq {
	struct fetchatt *a;
	size_t n, cap;
	int map;		/* a message must be mapped */
	int seen;		/* the request sets \Seen */
	int flags;		/* FLAGS was asked for */
	int modseq;		/* MODSEQ was asked for */
	int uid;		/* UID is among the items */
	uint64_t changedsince;	/* CHANGEDSINCE: only messages changed since */
	int vanished;		/* ... and VANISHED (EARLIER) for expunged */
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
	if (kind == FA_ENVELOPE || kind == FA_BODY ||
	    kind == FA_BODYSTRUCTURE || kind == FA_SECTION ||
	    kind == FA_BINARYSIZE)
		r->map = 1;
	return a;
}

static void
free_sections(struct fetchreq *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (r->a[i].sec)
			section_free(r->a[i].sec);
}

/* BODY[...]<a.b>, BODY.PEEK[...], BINARY[...], BINARY.PEEK[...] and
 * BINARY.SIZE[...] */
static int
att_section(struct fetchreq *r, char *text)
{
	struct fetchatt *a;
	struct buf name = { 0 };
	char *open, *close, *spec, *end;
	int binary, peek, size;

	open = strchr(text, '[');
	*open = '\0';
	binary = !ascii_ncasecmp(text, "BINARY", 6);
	size = !ascii_casecmp(text, "BINARY.SIZE");
	peek = !ascii_casecmp(text, "BODY.PEEK") ||
	    !ascii_casecmp(text, "BINARY.PEEK");
	if (ascii_casecmp(text, "BODY") && ascii_casecmp(text, "BINARY") &&
	    !peek && !size)
		return bad("Unknown fetch attribute");
	if (!(close = strrchr(open + 1, ']')))
		return bad("Missing ]");
	spec = p_strdup(open + 1, close - open - 1);
	a = att_add(r, size ? FA_BINARYSIZE : FA_SECTION, NULL);
	a->binary = binary;
	a->peek = peek || size;
	if (!(a->sec = section_parse(spec, binary)))
		return bad("Invalid section");
	if (close[1] == '<') {
		if (size)
			return bad("BINARY.SIZE takes no partial range");
		a->partial = 1;
		a->from = strtoull(close + 2, &end, 10);
		if (end == close + 2 || *end != '.' || end[1] < '1' ||
		    end[1] > '9')
			return bad("Invalid partial range");
		a->count = strtoull(end + 1, &end, 10);
		if (strcmp(end, ">"))
			return bad("Invalid partial range");
	} else if (close[1]) {
		return bad("Invalid fetch attribute");
	}
	buf_adds(&name, size ? "BINARY.SIZE[" : binary ? "BINARY[" : "BODY[");
	section_name(&name, a->sec);
	buf_addc(&name, ']');
	if (a->partial)
		buf_printf(&name, "<%llu>", (unsigned long long)a->from);
	a->name = p_strdup(name.p, name.len);
	buf_free(&name);
	if (!a->peek)
		r->seen = 1;
	return ST_OK;
}

/* RFC822, RFC822.HEADER and RFC822.TEXT are sections under old names */
static int
att_rfc822(struct fetchreq *r, const char *name, const char *spec, int peek)
{
	struct fetchatt *a = att_add(r, FA_SECTION, name);

	a->peek = peek;
	if (!(a->sec = section_parse(spec, 0)))
		return bad("Invalid section");
	if (!peek)
		r->seen = 1;
	return ST_OK;
}

static int
fetch_att(struct fetchreq *r, char *t)
{
	if (strchr(t, '['))
		return att_section(r, t);
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
	else if (!ascii_casecmp(t, "MODSEQ")) {
		att_add(r, FA_MODSEQ, "MODSEQ");
		s.condstore = 1;
	}
	else if (!ascii_casecmp(t, "RFC822"))
		return att_rfc822(r, "RFC822", "", 0);
	else if (!ascii_casecmp(t, "RFC822.HEADER"))
		return att_rfc822(r, "RFC822.HEADER", "HEADER", 1);
	else if (!ascii_casecmp(t, "RFC822.TEXT"))
		return att_rfc822(r, "RFC822.TEXT", "TEXT", 0);
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
	char *t;
	int rc;

	memset(r, 0, sizeof(*r));
	if (uid)
		att_add(r, FA_UID, "UID");
	r->uid = uid;
	if (!p_char('(')) {
		if (!(t = p_fetchatt()))
			return ST_BAD;
		if (fetch_macro(r, t))
			return ST_OK;
		return fetch_att(r, t);
	}
	do {
		if (!(t = p_fetchatt()))
			return ST_BAD;
		if ((rc = fetch_att(r, t)) != ST_OK)
			return rc;
	} while (p_char(' '));
	if (!p_char(')'))
		return bad("Expected ')'");
	return ST_OK;
}

/* FETCH ... (CHANGEDSINCE modseq [VANISHED]) of RFC 7162, in any order */
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
		} else {
			return bad("Invalid FETCH modifier");
		}
	} while (p_char(' '));
	if (!p_char(')'))
		return bad("Expected ')'");
	if (r->vanished && (!uid || !s.qresync || !r->changedsince))
		return bad("VANISHED needs UID FETCH, QRESYNC and CHANGEDSINCE");
	s.condstore = 1;
	if (!r->modseq)
		att_add(r, FA_MODSEQ, "MODSEQ");
	return ST_OK;
}

static void
emit_io(void *arg, const char *p, size_t n)
{
	io_write(p, n);
}

static void
fetch_date(time_t t)
{
	static const char mon[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
	};
	struct tm tm;
	long off;

	localtime_r(&t, &tm);
	off = tm.tm_gmtoff / 60;
	io_printf("INTERNALDATE \"%02d-%s-%04d %02d:%02d:%02d %c%02ld%02ld\"",
	    tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+', labs(off) / 60,
	    labs(off) % 60);
}

static int
fetch_section(struct fetchatt *a, struct msgmap *mm)
{
	struct sectiondata *sd;
	uint64_t size, from = 0, count;

	if (!(sd = section_open(mm->p, mm->len, a->sec, a->binary, &size)))
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

/* one "* n FETCH (...)" response; -1 when the message is gone */
static int
fetch_one(struct fetchreq *r, size_t vi, int *cte)
{
	struct vmsg *m = &s.v.m[vi];
	char id[64];
	struct msgmap mm = { 0 };
	struct buf b = { 0 };
	time_t date = 0;
	uint64_t size = 0;
	size_t i;
	long k;

	if ((k = store_index(vi)) < 0)
		return -1;
	if (msg_info(&s.f, k, &date, &size) < 0)
		return -1;
	if (r->map && msg_map(&s.f, k, &mm) < 0)
		return -1;
	if (r->seen && !s.readonly && !(m->flags & FL_SEEN) &&
	    folder_setflags(&s.f, k, (m->flags & ~FL_RECENT) | FL_SEEN,
	    m->kw) == 0) {
		m->flags |= FL_SEEN;
		m->modseq = s.f.msgs[k].modseq;
	}
	io_printf("* %zu FETCH (", vi + 1);
	for (i = 0; i < r->n; i++) {
		struct fetchatt *a = &r->a[i];

		if (i)
			io_puts(" ");
		switch (a->kind) {
		case FA_UID:
			io_printf("UID %u", m->uid);
			break;
		case FA_EMAILID:
			if (msg_id(&s.f, k, id, sizeof(id)) < 0)
				io_puts("EMAILID NIL");
			else
				io_printf("EMAILID (%s)", id);
			break;
		case FA_THREADID:
			io_puts("THREADID NIL");	/* no threads kept */
			break;
		case FA_MODSEQ:
			m->modseq = s.f.msgs[k].modseq;
			io_printf("MODSEQ (%llu)",
			    (unsigned long long)m->modseq);
			break;
		case FA_FLAGS:
			flag_list(&b, m->flags, m->kw);
			io_printf("FLAGS %s", b.p);
			buf_reset(&b);
			break;
		case FA_INTERNALDATE:
			fetch_date(date);
			break;
		case FA_SIZE:
			io_printf("RFC822.SIZE %llu", (unsigned long long)size);
			break;
		case FA_ENVELOPE:
			mime_envelope(&b, mm.p, mm.len);
			io_printf("ENVELOPE %s", b.p);
			buf_reset(&b);
			break;
		case FA_BODY:
		case FA_BODYSTRUCTURE:
			mime_bodystructure(&b, mm.p, mm.len,
			    a->kind == FA_BODYSTRUCTURE);
			io_printf("%s %s", a->name, b.p);
			buf_reset(&b);
			break;
		case FA_SECTION:
		case FA_BINARYSIZE:
			if (fetch_section(a, &mm) < 0) {
				io_printf("%s NIL", a->name);
				*cte = 1;
			}
			break;
		}
	}
	if (r->seen && !r->flags) {
		flag_list(&b, m->flags, m->kw);
		io_printf(" FLAGS %s", b.p);
	}
	/* RFC 7162 3.1: every untagged FETCH carries MODSEQ once the
	 * client uses CONDSTORE */
	if (s.condstore && !r->modseq) {
		m->modseq = s.f.msgs[k].modseq;
		io_printf(" MODSEQ (%llu)", (unsigned long long)m->modseq);
	}
	io_puts(")\r\n");
	buf_free(&b);
	if (r->map)
		msg_unmap(&mm);
	return 0;
}

static int
cmd_fetch(const char *tag, int uid)
{
	struct seqset set;
	struct fetchreq req;
	size_t *vi, nv, i;
	int r, gone = 0, cte = 0;
	long k;

	if (p_sp() < 0 || p_seqset(&set) < 0 || p_sp() < 0)
		return ST_BAD;
	r = fetch_parse(&req, uid);
	if (r == ST_OK && p_char(' '))
		r = fetch_modifiers(&req, uid);
	if (r == ST_OK && p_end() < 0)
		r = ST_BAD;
	if (r == ST_OK)
		r = set_indexes(&set, uid, &vi, &nv);
	/* RFC 7162 3.2.4 and IMAP4rev2: every FETCH names its UID */
	if (r == ST_OK && !req.uid && (s.condstore || s.rev2))
		att_add(&req, FA_UID, "UID");
	if (r != ST_OK) {
		free_sections(&req);
		return r;
	}
	if (req.vanished)
		vanished_earlier(&set, req.changedsince);
	for (i = 0; i < nv; i++) {
		k = store_index(vi[i]);
		if (req.changedsince &&
		    (k < 0 || s.f.msgs[k].modseq <= req.changedsince))
			continue;
		if (fetch_one(&req, vi[i], &cte) < 0)
			gone = 1;
	}
	free_sections(&req);
	if (cte)
		return no("UNKNOWN-CTE", "Cannot decode a part's encoding");
	if (gone)
		return no("EXPUNGEISSUED", "Some of the messages no longer exist");
	return ok(NULL, "FETCH completed");
}

/* --- SEARCH ----------------------------------------------------------- */

enum { RET_MIN = 1, RET_MAX = 2, RET_COUNT = 4, RET_ALL = 8, RET_SAVE = 16 };

/* RETURN (MIN MAX COUNT ALL SAVE) of ESEARCH (RFC 4731) and SEARCHRES */
static int
search_return(int *ret)
{
	char *w;

	*ret = 0;
	if (p_sp() < 0 || !p_char('('))
		return bad("Expected RETURN options");
	while (!p_char(')')) {
		if (*ret && p_sp() < 0)
			return ST_BAD;
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
		else
			return bad("Unknown RETURN option");
		*ret |= 1 << 8;	/* RETURN was given */
	}
	if (!(*ret & 0xff))
		*ret |= RET_ALL;	/* RETURN () means ALL */
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

static void
esearch_reply(const char *tag, int uid, int ret, const uint32_t *hits,
    size_t n, uint64_t maxmod)
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
	if (maxmod)
		io_printf(" MODSEQ %llu", (unsigned long long)maxmod);
	io_puts("\r\n");
}

static int
cmd_search(const char *tag, int uid)
{
	struct search *srch;
	const char *code;
	uint32_t *hits, *uids;
	uint64_t maxmod = 0;
	size_t i, n, *idx;
	int ret = 0, r;
	long k;

	if (p_sp() < 0)
		return ST_BAD;
	if (p_keyword("RETURN") && (r = search_return(&ret)) != ST_OK)
		return r;
	if (s.rev2 && !(ret & 0xff))
		ret |= RET_ALL;	/* IMAP4rev2 answers SEARCH with ESEARCH */
	if (!(srch = search_parse(uid, &code))) {
		if (code)
			return no(code, "%s", perr);
		return ST_BAD;
	}
	if (p_end() < 0)
		return ST_BAD;
	hits = p_alloc((s.v.n + 1) * sizeof(*hits));
	uids = p_alloc((s.v.n + 1) * sizeof(*uids));
	idx = p_alloc((s.v.n + 1) * sizeof(*idx));
	if (search_uses_modseq(srch))
		s.condstore = 1;
	n = search_run(srch, idx);
	for (i = 0; i < n; i++) {
		uids[i] = s.v.m[idx[i]].uid;
		hits[i] = uid ? uids[i] : idx[i] + 1;
		if ((k = store_index(idx[i])) >= 0)
			maxmod = MAX(maxmod, s.f.msgs[k].modseq);
	}
	if (!search_uses_modseq(srch) || !n)
		maxmod = 0;
	if (ret & RET_SAVE)
		save_result(uids, n);
	if (ret & 0xff & ~RET_SAVE) {
		esearch_reply(tag, uid, ret, hits, n, maxmod);
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

	search_limits(srch, s.v.n, s.v.n ? s.v.m[s.v.n - 1].uid : 0);
	for (i = 0; i < s.v.n; i++)
		if (search_match(srch, &s.f, &s.v, i) > 0)
			idx[n++] = i;
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

/* ESORT (RFC 5267): like ESEARCH, with ALL in sort order */
static void
esort_reply(const char *tag, int uid, int ret, const size_t *idx, size_t n)
{
	size_t i;

	io_printf("* ESEARCH (TAG \"%s\")%s", tag, uid ? " UID" : "");
	if ((ret & RET_MIN) && n)
		io_printf(" MIN %u", uid ? s.v.m[idx[0]].uid :
		    (uint32_t)idx[0] + 1);
	if ((ret & RET_MAX) && n)
		io_printf(" MAX %u", uid ? s.v.m[idx[n - 1]].uid :
		    (uint32_t)idx[n - 1] + 1);
	if (ret & RET_COUNT)
		io_printf(" COUNT %zu", n);
	if ((ret & RET_ALL) && n) {
		io_puts(" ALL ");
		for (i = 0; i < n; i++)
			io_printf("%s%u", i ? "," : "", uid ?
			    s.v.m[idx[i]].uid : (uint32_t)idx[i] + 1);
	}
	io_puts("\r\n");
}

static int
cmd_sort(const char *tag, int uid)
{
	struct sortprog *prog;
	struct search *srch;
	size_t *idx, n, i;
	uint32_t *uids;
	int ret = 0, r;

	if (p_sp() < 0)
		return ST_BAD;
	if (p_keyword("RETURN") && (r = search_return(&ret)) != ST_OK)
		return r;
	if (!(prog = sort_parse()) || p_sp() < 0)
		return ST_BAD;
	if (!(srch = charset_and_keys()))
		return s.code ? ST_NO : ST_BAD;
	if (p_end() < 0)
		return ST_BAD;
	idx = p_alloc((s.v.n + 1) * sizeof(*idx));
	n = search_run(srch, idx);
	sort_run(prog, &s.f, &s.v, idx, n);
	if (ret & RET_SAVE) {
		uids = p_alloc((n + 1) * sizeof(*uids));
		for (i = 0; i < n; i++)
			uids[i] = s.v.m[idx[i]].uid;
		save_result(uids, n);
	}
	if (ret & 0xff & ~RET_SAVE) {
		esort_reply(tag, uid, ret, idx, n);
	} else if (!(ret & RET_SAVE)) {
		io_puts("* SORT");
		for (i = 0; i < n; i++)
			io_printf(" %u", uid ? s.v.m[idx[i]].uid :
			    (uint32_t)idx[i] + 1);
		io_puts("\r\n");
	}
	return ok(NULL, "SORT completed");
}

static int
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
		return s.code ? ST_NO : ST_BAD;
	if (p_end() < 0)
		return ST_BAD;
	idx = p_alloc((s.v.n + 1) * sizeof(*idx));
	n = search_run(srch, idx);
	thread_run(alg, &s.f, &s.v, idx, n, uid, &b);
	io_printf("* THREAD%s%s\r\n", b.len ? " " : "", b.len ? b.p : "");
	buf_free(&b);
	return ok(NULL, "THREAD completed");
}

/* --- IDLE ------------------------------------------------------------- */

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Keep-alives of every connection from one address fire at the same
 * moment, so a phone with one IDLE per folder wakes its radio once. */
static time_t
next_keepalive(time_t now)
{
	unsigned long h = 5381;
	const char *p;

	for (p = s.remote; *p; p++)
		h = h * 33 + (unsigned char)*p;
	return now + IDLE_KEEPALIVE - (now + h) % IDLE_KEEPALIVE;
}

/* seconds to the next look at the folder: a safety rescan when inotify
 * watches it, often when nothing else would tell */
static int
idle_poll(void)
{
	if (s.state == S_SELECTED && folder_watchfd(&s.f) < 0)
		return IDLE_POLL_UNWATCHED;
	return IDLE_POLL;
}

static int
idle_done(void)
{
	char line[64];
	long n;

	if ((n = io_getline(line, sizeof(line))) == -1)
		exit(0);
	if (n < 0 || ascii_casecmp(line, "DONE"))
		return bad("Expected DONE");
	return ok(NULL, "IDLE terminated");
}

static int
cmd_idle(const char *tag, int uid)
{
	struct pollfd pfd[2];
	time_t now, start, ka, check;
	int n, wait;

	if (p_end() < 0)
		return ST_BAD;
	/* watch first, then look: what lands in between is seen either way */
	if (s.state == S_SELECTED) {
		folder_watchfd(&s.f);
		view_sync(1);
	}
	io_puts("+ idling\r\n");
	io_flush();
	start = now = time(NULL);
	ka = next_keepalive(now);
	check = now + idle_poll();
	for (;;) {
		if (io_buffered())
			return idle_done();
		pfd[0].fd = io_fd();
		pfd[0].events = POLLIN;
		pfd[1].fd = s.state == S_SELECTED ? folder_watchfd(&s.f) : -1;
		pfd[1].events = POLLIN;
		/* wake on the second itself, so that the keep-alives of one
		 * address leave together */
		wait = (int)(MIN(ka, check) * 1000 - now_ms());
		n = poll(pfd, 2, wait > 0 ? wait : 0);
		if (n < 0 && errno != EINTR)
			exit(1);
		if (n > 0 && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
			return idle_done();
		now = time(NULL);
		if ((n > 0 && (pfd[1].revents & POLLIN)) || now >= check) {
			view_sync(1);
			check = now + idle_poll();
		}
		if (now >= ka) {
			io_puts("* OK Still here\r\n");
			ka = next_keepalive(now + 1);
		}
		if (now - start >= TIMEOUT_IDLE)
			bye("Autologout; idle for too long");
		io_flush();
	}
}

/* --- the command loop ------------------------------------------------- */

static const struct cmd *
lookup(const char *name, int uid)
{
	size_t i;

	for (i = 0; i < LEN(cmds); i++)
		if (!ascii_casecmp(name, cmds[i].name))
			return uid && !(cmds[i].flags & C_UID) ? NULL : &cmds[i];
	return NULL;
}

static void
reply(const char *tag, int r)
{
	const char *st = r == ST_OK ? "OK" : r == ST_NO ? "NO" : "BAD";

	if (r == ST_BAD) {
		s.code = perr_code && !strcmp(perr_code, "TOOBIG") ?
		    "TOOBIG" : NULL;
		snprintf(s.text, sizeof(s.text), "%s",
		    perr ? perr : "Invalid command");
	}
	if (s.code)
		io_printf("%s %s [%s] %s\r\n", tag, st, s.code, s.text);
	else
		io_printf("%s %s %s\r\n", tag, st, s.text);
}

static int
run(const char *tag)
{
	const struct cmd *c;
	char *name;
	int uid = 0, r;

	if (p_sp() < 0 || !(name = p_atom()))
		return bad("Missing command");
	if (!ascii_casecmp(name, "UID")) {
		uid = 1;
		if (p_sp() < 0 || !(name = p_atom()))
			return bad("Missing command after UID");
	}
	if (!(c = lookup(name, uid)))
		return bad("Unknown command");
	if (!(c->states & s.state))
		return bad(s.state == S_NOAUTH ? "Log in first" :
		    s.state == S_AUTH && c->states == S_SELECTED ?
		    "Select a mailbox first" : "Not allowed in this state");
	r = c->fn(tag, uid);
	if (r != ST_DONE && r != ST_BAD && s.state == S_SELECTED)
		view_sync(!(c->flags & C_USESEQ) || uid);
	return r;
}

static void
command(void)
{
	char *tag;
	int r;

	s.code = NULL;
	s.text[0] = '\0';
	r = p_begin();
	if (r == -1) {
		if (io_timedout())
			bye("Autologout; idle for too long");
		exit(0);
	}
	if (r == -2) {
		if ((tag = p_tag()) && p_peek() == ' ')
			io_printf("%s BAD [TOOBIG] Command line too long\r\n",
			    tag);
		else
			io_puts("* BAD [TOOBIG] Command line too long\r\n");
		s.bad_streak++;
		return;
	}
	if (!(tag = p_tag())) {
		if (p_skip() < 0)
			bye("Literal too large");
		io_puts("* BAD Missing or invalid tag\r\n");
		s.bad_streak++;
	} else {
		r = run(tag);
		if (perr_code && !strcmp(perr_code, "EOF"))
			exit(0);
		if (p_skip() < 0)
			bye("Literal too large");
		if (r == ST_BAD)
			s.bad_streak++;
		else
			s.bad_streak = 0;
		if (r != ST_DONE)
			reply(tag, r);
	}
	if (s.bad_streak >= BAD_MAX)
		bye("Too many invalid commands");
	if (s.state == S_LOGOUT) {
		io_close();
		exit(0);
	}
	io_flush();
}

/* --- start-up --------------------------------------------------------- */

static const char *
home(void)
{
	struct passwd *pw;
	const char *h = getenv("HOME");

	if (h && *h)
		return h;
	if ((pw = getpwuid(getuid())))
		return pw->pw_dir;
	die("cannot find the home directory");
}

/* a configured path, with "~/" meaning the home directory */
static void
config_path(char *out, size_t size, const char *env, const char *def)
{
	const char *v = getenv(env);
	int n;

	if (v && *v)
		n = snprintf(out, size, "%s", v);
	else if (!strncmp(def, "~/", 2))
		n = snprintf(out, size, "%s/%s", home(), def + 2);
	else
		n = snprintf(out, size, "%s", def);
	if (n < 0 || (size_t)n >= size)
		die("path too long: %s", def);
}

static void
find_remote(void)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const char *v;
	void *addr;

	if ((v = getenv("TCPREMOTEIP")) || (v = getenv("REMOTE_HOST")) ||
	    (v = getenv("REMOTE_ADDR"))) {
		snprintf(s.remote, sizeof(s.remote), "%.*s",
		    (int)strspn(v, "0123456789abcdefABCDEF.:"), v);
	} else if (getpeername(0, (struct sockaddr *)&ss, &len) == 0 &&
	    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)) {
		addr = ss.ss_family == AF_INET ?
		    (void *)&((struct sockaddr_in *)&ss)->sin_addr :
		    (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
		inet_ntop(ss.ss_family, addr, s.remote, sizeof(s.remote));
	}
	if (!s.remote[0])
		snprintf(s.remote, sizeof(s.remote), "local");
}

static int
remote_is_local(void)
{
	return !strcmp(s.remote, "local") || !strncmp(s.remote, "127.", 4) ||
	    !strcmp(s.remote, "::1") || !strncmp(s.remote, "::ffff:127.", 11);
}

static void
setup(void)
{
	struct passwd *pw;
	int one = 1;

	if (geteuid() == 0 || getuid() == 0)
		die("refusing to run as root: start imapd as the mail user");
	signal(SIGPIPE, SIG_IGN);
	config_path(s.maildir, sizeof(s.maildir), "MAILDIR", maildir_root);
	config_path(s.pwfile, sizeof(s.pwfile), "IMAPD_PASSWD", passwd_file);
	if (login_user[0])
		snprintf(s.user, sizeof(s.user), "%s", login_user);
	else if ((pw = getpwuid(getuid())))
		snprintf(s.user, sizeof(s.user), "%s", pw->pw_name);
	else
		die("cannot find the name of uid %ld", (long)getuid());
	find_remote();
	umask(077);
	/* responses are whole when flushed: send them at once (fails
	 * harmlessly when fd 1 is a pipe) */
	setsockopt(1, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void
greet(void)
{
	struct buf b = { 0 };

	capabilities(&b);
	if (s.preauth)
		io_printf("* PREAUTH [CAPABILITY %s] imapd ready, logged in "
		    "as %s\r\n", b.p, s.user);
	else
		io_printf("* OK [CAPABILITY %s] imapd ready\r\n", b.p);
	buf_free(&b);
	io_flush();
}

static void
usage(void)
{
	fputs("usage: imapd [-p | -s | -H]\n"
	    "  -p  pre-authenticated session (ssh tunnel)\n"
	    "  -s  TLS before the greeting (port 993)\n"
	    "  -H  read a password on stdin and print its hash\n", stderr);
	exit(1);
}

int
main(int argc, char *argv[])
{
	struct layer *l;
	int c, tls = 0;

	log_open("imapd");
	while ((c = getopt(argc, argv, "psH")) != -1) {
		switch (c) {
		case 'p':
			s.preauth = 1;
			break;
		case 's':
			tls = 1;
			break;
		case 'H':
			return auth_hash();
		default:
			usage();
		}
	}
	if (optind != argc || (tls && s.preauth))
		usage();
	setup();
	mime_filemap(1);	/* messages are read through file mappings */
	io_init(0, 1);
	io_timeout(TIMEOUT_PREAUTH * 1000);
	s.state = S_NOAUTH;
	if (tls) {
		if (!(l = tls_start(io_top())))
			return 1;
		io_push(l);
		s.tls = 1;
	}
	s.secure = s.tls || s.preauth ||
	    (loopback_is_secure && remote_is_local());
	if (s.preauth) {
		logmsg(LOG_INFO, "preauth session user=%s", s.user);
		if (logged_in() != ST_OK)
			die("cannot open the Maildir %s", s.maildir);
	}
	greet();
	for (;;)
		command();
}
