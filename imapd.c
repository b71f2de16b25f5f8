/* imapd.c: one IMAP session on stdin/stdout, started per connection by
 * inetd, s6, tcpserver or systemd.  The protocol lives here; the Maildir
 * lives in maildir.c, message content in mime.c, TLS in tls.c. */
#include <arpa/inet.h>
#include <netinet/in.h>
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

#include "config.h"
#include "imapd.h"
#include "io.h"
#include "maildir.h"
#include "mime.h"
#include "parse.h"
#include "tls.h"
#include "util.h"

enum state { S_NOAUTH = 1, S_AUTH = 2, S_SELECTED = 4, S_LOGOUT = 8 };

/* command flags */
enum {
	C_UID = 1 << 0,		/* has a UID variant */
	C_USESEQ = 1 << 1,	/* by sequence number: no EXPUNGE while it runs */
};

/* what a handler hands back to the one place that answers the client */
enum { ST_OK, ST_NO, ST_BAD, ST_DONE };

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
	char codebuf[1024];
	char text[256];
} s;

static int cmd_append(const char *, int);
static int cmd_authenticate(const char *, int);
static int cmd_capability(const char *, int);
static int cmd_check(const char *, int);
static int cmd_close(const char *, int);
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
static int cmd_starttls(const char *, int);
static int cmd_status(const char *, int);
static int cmd_store(const char *, int);
static int cmd_subscribe(const char *, int);
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
	{ "STARTTLS", cmd_starttls, S_NOAUTH, 0 },
	{ "STATUS", cmd_status, AUTHED, 0 },
	{ "STORE", cmd_store, S_SELECTED, C_UID | C_USESEQ },
	{ "SUBSCRIBE", cmd_subscribe, AUTHED, 0 },
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
ok(const char *code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int
ok(const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s.text, sizeof(s.text), fmt, ap);
	va_end(ap);
	s.code = code;
	return ST_OK;
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
	buf_adds(b, "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE "
	    "UIDPLUS UNSELECT CHILDREN MOVE");
	if (s.state == S_NOAUTH) {
		if (!s.tls && tls_available())
			buf_adds(b, " STARTTLS");
		if (s.secure)
			buf_adds(b, " AUTH=PLAIN");
		else
			buf_adds(b, " LOGINDISABLED");
		return;
	}
	buf_printf(b, " APPENDLIMIT=%llu", (unsigned long long)APPEND_MAX);
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
	if (flags & FL_RECENT)
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
view_add(uint32_t uid, uint32_t flags, uint32_t kw)
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
}

static void
view_free(void)
{
	free(s.v.m);
	memset(&s.v, 0, sizeof(s.v));
}

static void
print_flags_fetch(size_t i, int with_uid)
{
	struct buf b = { 0 };

	flag_list(&b, s.v.m[i].flags, s.v.m[i].kw);
	if (with_uid)
		io_printf("* %zu FETCH (UID %u FLAGS %s)\r\n", i + 1,
		    s.v.m[i].uid, b.p);
	else
		io_printf("* %zu FETCH (FLAGS %s)\r\n", i + 1, b.p);
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
	size_t i, j, o;
	uint32_t maxuid;
	size_t added = 0, recent = 0;
	struct msg *m;

	for (i = j = o = 0; i < s.v.n; i++) {
		while (j < f->nmsgs && f->msgs[j].uid < s.v.m[i].uid)
			j++;
		if (j == f->nmsgs || f->msgs[j].uid != s.v.m[i].uid) {
			s.v.m[i].gone = 1;
			if (expunge) {
				io_printf("* %zu EXPUNGE\r\n", o + 1);
				continue;
			}
		} else if ((f->msgs[j].flags & ~FL_RECENT) !=
		    (s.v.m[i].flags & ~FL_RECENT) ||
		    f->msgs[j].kw != s.v.m[i].kw) {
			s.v.m[i].flags = f->msgs[j].flags |
			    (s.v.m[i].flags & FL_RECENT);
			s.v.m[i].kw = f->msgs[j].kw;
			s.v.m[o] = s.v.m[i];
			print_flags_fetch(o, 0);
			o++;
			continue;
		}
		s.v.m[o++] = s.v.m[i];
	}
	s.v.n = o;
	maxuid = s.v.n ? s.v.m[s.v.n - 1].uid : 0;
	for (j = 0; j < f->nmsgs; j++) {
		m = &f->msgs[j];
		if (m->uid <= maxuid)
			continue;
		view_add(m->uid, m->flags, m->kw);
		added++;
	}
	if (added) {
		for (i = 0; i < s.v.n; i++)
			recent += !!(s.v.m[i].flags & FL_RECENT);
		io_printf("* %zu EXISTS\r\n* %zu RECENT\r\n", s.v.n, recent);
	}
}

static void
view_sync(int expunge)
{
	if (s.state != S_SELECTED)
		return;
	if (folder_sync(&s.f) < 0)
		logmsg(LOG_ERR, "sync of %s failed: %s", s.f.name,
		    strerror(errno));
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

	do {
		if (p_sp() < 0 || !p_atom()) {
			buf_free(&on);
			return ST_BAD;
		}
	} while (p_peek() == ' ');
	if (p_end() < 0) {
		buf_free(&on);
		return ST_BAD;
	}
	/* no extension that ENABLE switches on is supported yet */
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
	snprintf(s.codebuf, sizeof(s.codebuf), "%s", b.p);
	s.code = s.codebuf;
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

static int
b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
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
		if (pad || (v = b64val((unsigned char)s[i])) < 0)
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

static int
cmd_authenticate(const char *tag, int uid)
{
	char *mech, *resp, *authz, *user, *pass, *end;
	char line[1024];
	long n, r;

	if (p_sp() < 0 || !(mech = p_atom()))
		return ST_BAD;
	if (ascii_casecmp(mech, "PLAIN"))
		return no("CANNOT", "Unsupported authentication mechanism");
	if (!s.secure)
		return no("PRIVACYREQUIRED", "Use STARTTLS before AUTHENTICATE");
	if (p_char(' ')) {
		if (!(resp = p_atom()) || p_end() < 0)
			return ST_BAD;
		if (!strcmp(resp, "="))
			resp[0] = '\0';
	} else {
		if (p_end() < 0)
			return ST_BAD;
		io_puts("+ \r\n");
		if ((n = io_getline(line, sizeof(line))) < 0)
			return bad("Invalid authentication response");
		if (!strcmp(line, "*"))
			return bad("Authentication cancelled");
		resp = line;
	}
	if ((n = b64decode(resp)) < 0)
		return bad("Invalid base64");
	/* authzid NUL authcid NUL password */
	authz = resp;
	end = resp + n;
	if (!(user = memchr(authz, '\0', end - authz)))
		return bad("Invalid PLAIN response");
	user++;
	if (!(pass = memchr(user, '\0', end - user)))
		return bad("Invalid PLAIN response");
	pass++;
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
	if (!tls_available())
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

/* --- mailboxes -------------------------------------------------------- */

static void
close_folder(void)
{
	if (s.state != S_SELECTED)
		return;
	folder_close(&s.f);
	view_free();
	s.state = S_AUTH;
}

static void
select_responses(void)
{
	struct buf b = { 0 };
	size_t i, recent = 0, unseen = 0;
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
	io_printf("* %zu EXISTS\r\n* %zu RECENT\r\n", s.v.n, recent);
	if (unseen)
		io_printf("* OK [UNSEEN %zu] First unseen\r\n", unseen);
	io_printf("* OK [UIDVALIDITY %u] UIDs valid\r\n", s.f.uidvalidity);
	io_printf("* OK [UIDNEXT %u] Predicted next UID\r\n", s.f.uidnext);
	buf_free(&b);
}

static int
do_select(int readonly)
{
	char *name;
	size_t i;

	if (p_sp() < 0 || !(name = p_mailbox()) || p_end() < 0)
		return ST_BAD;
	close_folder();
	if (folder_open(&s.f, name, !readonly) < 0) {
		if (errno == ENOENT && mbox_exists(name))
			return no("CANNOT", "Mailbox cannot be selected");
		return no_errno(name);
	}
	s.readonly = readonly;
	s.state = S_SELECTED;
	for (i = 0; i < s.f.nmsgs; i++)
		view_add(s.f.msgs[i].uid, s.f.msgs[i].flags, s.f.msgs[i].kw);
	select_responses();
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

static int
cmd_create(const char *tag, int uid)
{
	char *name;
	size_t n;

	if (p_sp() < 0 || !(name = p_mailbox()) || p_end() < 0)
		return ST_BAD;
	/* "Foo." asks for Foo as a parent of names to come */
	n = strlen(name);
	if (n > 1 && name[n - 1] == STORE_SEP)
		name[n - 1] = '\0';
	if (!strcmp(name, "INBOX"))
		return no("ALREADYEXISTS", "INBOX always exists");
	if (mbox_create(name) < 0)
		return no_errno(name);
	return ok(NULL, "CREATE completed");
}

static int
cmd_delete(const char *tag, int uid)
{
	char *name;

	if (p_sp() < 0 || !(name = p_mailbox()) || p_end() < 0)
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

	if (p_sp() < 0 || !(from = p_mailbox()) || p_sp() < 0 ||
	    !(to = p_mailbox()) || p_end() < 0)
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

	if (p_sp() < 0 || !(name = p_mailbox()) || p_end() < 0)
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

	buf_addstr(&b, name, strlen(name));
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

static int
cmd_list(const char *tag, int uid)
{
	char *ref, *pat, *full, **sorted;
	struct mboxinfo *l;
	size_t n, i;
	char attrs[64];

	if (p_sp() < 0 || !(ref = p_mailbox()) || p_sp() < 0 ||
	    !(pat = p_listmailbox()) || p_end() < 0)
		return ST_BAD;
	if (!*pat) {
		io_printf("* LIST (\\Noselect) \"%c\" \"\"\r\n", STORE_SEP);
		return ok(NULL, "LIST completed");
	}
	full = p_alloc(strlen(ref) + strlen(pat) + 1);
	strcpy(full, ref);
	strcat(full, pat);
	if (mbox_list(&l, &n) < 0)
		return no_errno("LIST");
	sorted = p_alloc((n + 1) * sizeof(*sorted));
	for (i = 0; i < n; i++)
		sorted[i] = l[i].name;
	qsort(sorted, n, sizeof(*sorted), cmp_str);
	for (i = 0; i < n; i++) {
		if (!list_match(full, l[i].name))
			continue;
		snprintf(attrs, sizeof(attrs), "%s%s",
		    l[i].noselect ? "\\Noselect " : "",
		    has_children(sorted, n, l[i].name) ?
		    "\\HasChildren" : "\\HasNoChildren");
		list_line("LIST", attrs, l[i].name);
	}
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
		if (list_match(full, subs[i]) && !in_list(shown, nshown,
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
			if (list_match(full, anc) && !in_list(shown, nshown,
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
	struct buf b = { 0 };
	char *name, *item;
	int i = 0;

	if (p_sp() < 0 || !(name = p_mailbox()) || p_sp() < 0 ||
	    !p_char('('))
		return bad("Expected STATUS mailbox (items)");
	if (mbox_status(name, &st) < 0)
		return no_errno(name);
	do {
		if (!(item = p_atom()))
			goto fail;
		buf_adds(&b, i++ ? " " : "");
		if (!ascii_casecmp(item, "MESSAGES"))
			buf_printf(&b, "MESSAGES %u", st.messages);
		else if (!ascii_casecmp(item, "RECENT"))
			buf_printf(&b, "RECENT %u", st.recent);
		else if (!ascii_casecmp(item, "UIDNEXT"))
			buf_printf(&b, "UIDNEXT %u", st.uidnext);
		else if (!ascii_casecmp(item, "UIDVALIDITY"))
			buf_printf(&b, "UIDVALIDITY %u", st.uidvalidity);
		else if (!ascii_casecmp(item, "UNSEEN"))
			buf_printf(&b, "UNSEEN %u", st.unseen);
		else {
			bad("Unknown STATUS item");
			goto fail;
		}
	} while (p_char(' '));
	if (!p_char(')') || p_end() < 0)
		goto fail;
	io_puts("* STATUS ");
	list_name(name);
	io_printf(" (%s)\r\n", b.p);
	buf_free(&b);
	return ok(NULL, "STATUS completed");
fail:
	buf_free(&b);
	return ST_BAD;
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

static int
cmd_append(const char *tag, int uid)
{
	char *name, **flagnames = NULL;
	size_t nflags = 0, i, nkw = 0;
	long long date = -1, size;
	uint32_t flags = 0, uidv, newuid;
	long bit;
	char **kw;
	struct append *a;
	int r;

	if (p_sp() < 0 || !(name = p_mailbox()) || p_sp() < 0)
		return ST_BAD;
	if (p_peek() == '(') {
		if ((r = parse_flags(0, &flagnames, &nflags)) != ST_OK)
			return r;
		if (p_sp() < 0)
			return ST_BAD;
	}
	if (p_peek() == '"') {
		if (p_datetime(&date) < 0 || p_sp() < 0)
			return ST_BAD;
	}
	kw = p_alloc((nflags + 1) * sizeof(*kw));
	for (i = 0; i < nflags; i++) {
		if (!ascii_casecmp(flagnames[i], "\\Recent"))
			continue;
		if ((bit = sysflag(flagnames[i])) < 0)
			return bad("Invalid system flag");
		if (bit)
			flags |= bit;
		else
			kw[nkw++] = flagnames[i];
	}
	if (p_peek() != '{')
		return bad("Expected a message literal");
	if (!(a = append_begin(name))) {
		if (errno == ENOENT)
			return no("TRYCREATE", "No such mailbox");
		return no_errno(name);
	}
	if ((size = p_literal(APPEND_MAX)) < 0) {
		append_abort(a);
		if (perr_code && !strcmp(perr_code, "TOOBIG"))
			return no("TOOBIG", "Message larger than %llu bytes",
			    (unsigned long long)APPEND_MAX);
		return ST_BAD;
	}
	if ((r = append_data(a, size)) == -2) {
		append_abort(a);
		exit(0);
	}
	if (r < 0) {
		r = errno;
		append_abort(a);
		p_literal_done();
		p_skip();
		errno = r;
		return no_errno("APPEND");
	}
	if (p_literal_done() < 0 || p_end() < 0) {
		append_abort(a);
		return ST_BAD;
	}
	if (date < 0)
		date = time(NULL);
	if (append_commit(a, flags, kw, nkw, (time_t)date, &uidv, &newuid) < 0)
		return no_errno("APPEND");
	snprintf(s.codebuf, sizeof(s.codebuf), "APPENDUID %u %u", uidv,
	    newuid);
	return ok(s.codebuf, "APPEND completed");
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
expunge(struct seqset *uids)
{
	size_t i;
	int failed = 0;

	if (s.readonly)
		return no("READ-ONLY", "Mailbox is read-only");
	folder_sync(&s.f);
	for (i = 0; i < s.f.nmsgs; i++) {
		if (!(s.f.msgs[i].flags & FL_DELETED))
			continue;
		if (uids && !seq_has(uids, s.f.msgs[i].uid))
			continue;
		if (folder_expunge(&s.f, i) < 0 && errno != ENOENT)
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
	if ((r = expunge(uid ? &set : NULL)) != ST_OK)
		return r;
	return ok(NULL, "EXPUNGE completed");
}

static int
cmd_close(const char *tag, int uid)
{
	if (p_end() < 0)
		return ST_BAD;
	if (!s.readonly)
		expunge(NULL);
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
	if (!(name = p_mailbox()) || p_end() < 0)
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
	snprintf(s.codebuf, sizeof(s.codebuf), "%s", b.p);
	buf_free(&b);
	if (!move)
		return ok(s.codebuf, "COPY completed");
	/* RFC 6851: COPYUID comes untagged, before the expunges */
	io_printf("* OK [%s] Moved\r\n", s.codebuf);
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

static int
cmd_store(const char *tag, int uid)
{
	struct seqset set;
	char *item, **names;
	size_t *vi, nv, i, nnames;
	uint32_t fl, kw, nfl, nkw;
	int mode, silent, r, gone = 0;
	long k;

	if (p_sp() < 0 || p_seqset(&set) < 0 || p_sp() < 0 ||
	    !(item = p_atom()) || p_sp() < 0)
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
	for (i = 0; i < nv; i++) {
		struct vmsg *m = &s.v.m[vi[i]];

		nfl = m->flags & ~FL_RECENT;
		nkw = m->kw;
		if (mode > 0) {
			nfl |= fl;
			nkw |= kw;
		} else if (mode < 0) {
			nfl &= ~fl;
			nkw &= ~kw;
		} else {
			/* P has no IMAP name but $Forwarded: keep it unless
			 * the list names it */
			nfl = fl;
			nkw = kw;
		}
		if (nfl != (m->flags & ~FL_RECENT) || nkw != m->kw) {
			if ((k = store_index(vi[i])) < 0 ||
			    folder_setflags(&s.f, k, nfl, nkw) < 0) {
				gone = 1;
				continue;
			}
			m->flags = nfl | (m->flags & FL_RECENT);
			m->kw = nkw;
		}
		if (!silent)
			print_flags_fetch(vi[i], uid);
	}
	if (gone)
		return no("EXPUNGEISSUED", "Some of the messages no longer exist");
	return ok(NULL, "STORE completed");
}

/* --- FETCH ------------------------------------------------------------ */

enum fetchkind {
	FA_UID, FA_FLAGS, FA_INTERNALDATE, FA_SIZE, FA_ENVELOPE, FA_BODY,
	FA_BODYSTRUCTURE, FA_SECTION, FA_BINARYSIZE
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
	if (!ascii_casecmp(t, "UID"))
		att_add(r, FA_UID, "UID");
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
	    m->kw) == 0)
		m->flags |= FL_SEEN;
	io_printf("* %zu FETCH (", vi + 1);
	for (i = 0; i < r->n; i++) {
		struct fetchatt *a = &r->a[i];

		if (i)
			io_puts(" ");
		switch (a->kind) {
		case FA_UID:
			io_printf("UID %u", m->uid);
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

	if (p_sp() < 0 || p_seqset(&set) < 0 || p_sp() < 0)
		return ST_BAD;
	r = fetch_parse(&req, uid);
	if (r == ST_OK && p_end() < 0)
		r = ST_BAD;
	if (r == ST_OK)
		r = set_indexes(&set, uid, &vi, &nv);
	if (r != ST_OK) {
		free_sections(&req);
		return r;
	}
	for (i = 0; i < nv; i++)
		if (fetch_one(&req, vi[i], &cte) < 0)
			gone = 1;
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
    size_t n)
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
	io_puts("\r\n");
}

static int
cmd_search(const char *tag, int uid)
{
	struct search *srch;
	const char *code;
	uint32_t *hits, *uids;
	size_t i, n = 0;
	int ret = 0, r;

	if (p_sp() < 0)
		return ST_BAD;
	if (p_keyword("RETURN") && (r = search_return(&ret)) != ST_OK)
		return r;
	if (!(srch = search_parse(uid, &code))) {
		if (code)
			return no(code, "%s", perr);
		return ST_BAD;
	}
	if (p_end() < 0)
		return ST_BAD;
	search_limits(srch, s.v.n, s.v.n ? s.v.m[s.v.n - 1].uid : 0);
	hits = p_alloc((s.v.n + 1) * sizeof(*hits));
	uids = p_alloc((s.v.n + 1) * sizeof(*uids));
	for (i = 0; i < s.v.n; i++) {
		if (!search_match(srch, &s.f, &s.v, i))
			continue;
		uids[n] = s.v.m[i].uid;
		hits[n++] = uid ? s.v.m[i].uid : i + 1;
	}
	if (ret & RET_SAVE)
		save_result(uids, n);
	if (ret & 0xff & ~RET_SAVE) {
		esearch_reply(tag, uid, ret, hits, n);
	} else if (!(ret & RET_SAVE)) {
		io_puts("* SEARCH");
		for (i = 0; i < n; i++)
			io_printf(" %u", hits[i]);
		io_puts("\r\n");
	}
	return ok(NULL, "SEARCH completed");
}

/* --- IDLE ------------------------------------------------------------- */

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
	io_puts("+ idling\r\n");
	io_flush();
	start = now = time(NULL);
	ka = next_keepalive(now);
	check = now + IDLE_POLL;
	for (;;) {
		if (io_buffered())
			return idle_done();
		pfd[0].fd = io_fd();
		pfd[0].events = POLLIN;
		pfd[1].fd = s.state == S_SELECTED ? folder_watchfd(&s.f) : -1;
		pfd[1].events = POLLIN;
		now = time(NULL);
		wait = (int)(MIN(ka, check) - now);
		n = poll(pfd, 2, wait > 0 ? wait * 1000 : 0);
		if (n < 0 && errno != EINTR)
			exit(1);
		if (n > 0 && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
			return idle_done();
		now = time(NULL);
		if ((n > 0 && (pfd[1].revents & POLLIN)) || now >= check) {
			view_sync(1);
			check = now + IDLE_POLL;
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
		io_puts("* BAD [TOOBIG] Command line too long\r\n");
		s.bad_streak++;
		return;
	}
	if (!(tag = p_tag())) {
		p_skip();
		io_puts("* BAD Missing or invalid tag\r\n");
		s.bad_streak++;
	} else {
		r = run(tag);
		if (r == ST_BAD) {
			if (perr_code && !strcmp(perr_code, "EOF"))
				exit(0);
			p_skip();
			s.bad_streak++;
		} else {
			s.bad_streak = 0;
		}
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
