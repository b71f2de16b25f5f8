/* imapd.c: one IMAP session on stdin/stdout, started per connection by
 * inetd, s6, tcpserver or systemd: start-up, the command loop and its
 * dispatch table, and the commands of any state: logging in, STARTTLS,
 * COMPRESS, ENABLE and IDLE.  The commands on mailboxes are in mailbox.c,
 * those on the selected mailbox in view.c and fetch.c; the session's
 * state, its replies and the client's view are in session.c, the Maildir
 * in maildir.c, message content in mime.c, TLS in tls.c. */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "authfail.h"
#include "compress.h"
#include "config.h"
#include "auth.h"
#include "fts.h"
#include "imapd.h"
#include "io.h"
#include "maildir.h"
#include "mime.h"
#include "notify.h"
#include "parse.h"
#include "progress.h"
#include "tls.h"
#include "util.h"
#include "sandbox.h"
#include "startup.h"
#include "session.h"

/* command flags */
enum {
	C_UID = 1 << 0,		/* has a UID variant */
	C_USESEQ = 1 << 1,	/* by sequence number: no EXPUNGE while it runs */
};

struct cmd {
	const char *name;
	int (*fn)(const char *tag, int uid);
	int states;
	int flags;
};

#define ANY (S_NOAUTH | S_AUTH | S_SELECTED)
#define AUTHED (S_AUTH | S_SELECTED)

/* the commands of any state, here below */
static int cmd_authenticate(const char *, int);
static int cmd_capability(const char *, int);
static int cmd_compress(const char *, int);
static int cmd_enable(const char *, int);
static int cmd_id(const char *, int);
static int cmd_idle(const char *, int);
static int cmd_login(const char *, int);
static int cmd_logout(const char *, int);
static int cmd_namespace(const char *, int);
static int cmd_noop(const char *, int);
static int cmd_starttls(const char *, int);

static const struct cmd cmds[] = {
	{ "APPEND", cmd_append, AUTHED, 0 },
	{ "AUTHENTICATE", cmd_authenticate, S_NOAUTH, 0 },
	{ "CANCELUPDATE", cmd_cancelupdate, S_SELECTED, 0 },
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
	{ "GETQUOTA", cmd_getquota, AUTHED, 0 },
	{ "GETQUOTAROOT", cmd_getquotaroot, AUTHED, 0 },
	{ "ID", cmd_id, ANY, 0 },
	{ "IDLE", cmd_idle, AUTHED, 0 },
	{ "LIST", cmd_list, AUTHED, 0 },
	{ "LOGIN", cmd_login, S_NOAUTH, 0 },
	{ "LOGOUT", cmd_logout, ANY, 0 },
	{ "LSUB", cmd_lsub, AUTHED, 0 },
	{ "MOVE", cmd_move, S_SELECTED, C_UID },
	{ "NAMESPACE", cmd_namespace, AUTHED, 0 },
	{ "NOOP", cmd_noop, ANY, 0 },
	{ "NOTIFY", cmd_notify, AUTHED, 0 },
	{ "RENAME", cmd_rename, AUTHED, 0 },
	{ "REPLACE", cmd_replace, S_SELECTED, C_UID },
	{ "SEARCH", cmd_search, S_SELECTED, C_UID | C_USESEQ },
	{ "SELECT", cmd_select, AUTHED, 0 },
	{ "SETQUOTA", cmd_setquota, AUTHED, 0 },
	{ "SORT", cmd_sort, S_SELECTED, C_UID | C_USESEQ },
	{ "STARTTLS", cmd_starttls, S_NOAUTH, 0 },
	{ "STATUS", cmd_status, AUTHED, 0 },
	{ "STORE", cmd_store, S_SELECTED, C_UID | C_USESEQ },
	{ "SUBSCRIBE", cmd_subscribe, AUTHED, 0 },
	{ "THREAD", cmd_thread, S_SELECTED, C_UID | C_USESEQ },
	{ "UNSELECT", cmd_unselect, S_SELECTED, 0 },
	{ "UNSUBSCRIBE", cmd_unsubscribe, AUTHED, 0 },
};

/* --- any state -------------------------------------------------------- */

static int
cmd_capability(const char *tag, int uid)
{
	struct buf b = { 0 };

	if (p_end() < 0)
		return ST_BAD;
	capability_line(&b);
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
	sess.state = S_LOGOUT;
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
		if (!ascii_casecmp(w, "CONDSTORE") && !sess.condstore) {
			condstore_on();
			buf_adds(&on, " CONDSTORE");
		} else if (!ascii_casecmp(w, "QRESYNC") && !sess.qresync) {
			sess.qresync = 1;
			condstore_on();
			buf_adds(&on, " QRESYNC");
		} else if (!ascii_casecmp(w, "IMAP4rev2") && !sess.rev2) {
			sess.rev2 = sess.utf8 = 1;
			buf_adds(&on, " IMAP4rev2");
		} else if (!ascii_casecmp(w, "UIDONLY") && !sess.uidonly) {
			sess.uidonly = 1;
			buf_adds(&on, " UIDONLY");
		} else if (!ascii_casecmp(w, "UTF8=ACCEPT") && !sess.utf8) {
			sess.utf8 = 1;
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
	pause_ms(LOGIN_DELAY_MS);
}

static int
logged_in(void)
{
	struct buf b = { 0 };

	if (store_init(sess.maildir) < 0) {
		logmsg(LOG_ERR, "cannot open Maildir %s: %s", sess.maildir,
		    strerror(errno));
		return no("UNAVAILABLE", "Mailbox store unavailable");
	}
	sess.state = S_AUTH;
	sandbox_enter(SANDBOX_MAILDIR);
	io_timeout(TIMEOUT_AUTH * 1000);
	/* the capability list changes at login: save the client a round
	 * trip by sending it in the reply */
	buf_adds(&b, "CAPABILITY ");
	capability_line(&b);
	set_code("%s", b.p);
	snprintf(sess.text, sizeof(sess.text), "Logged in");
	buf_free(&b);
	return ST_OK;
}

/* the attempt counts as a failure from the start, so that a guesser's
 * parallel connections slow each other down; a success clears it */
static int
try_login(const char *user, const char *pass)
{
	char label[64], name[4 * 64 + 8];
	long wait;
	int r;

	if ((wait = authfail_begin(sess.failfile, sess.remote)) > 0)
		pause_ms(wait);
	r = auth_check(sess.user, user, pass, sess.pwfile, label,
	    sizeof(label));
	esc_word(name, sizeof(name), user);
	if (r > 0) {
		authfail_clear(sess.failfile, sess.remote);
		logmsg(LOG_INFO, "login ok user=%s%s%s from=%s", name,
		    label[0] ? " device=" : "", label, sess.remote);
		return logged_in();
	}
	logmsg(LOG_NOTICE, "login failed user=%s from=%s", name, sess.remote);
	login_delay();
	if (r < 0)
		return no("UNAVAILABLE", "Authentication unavailable");
	if (++sess.login_fails >= LOGIN_TRIES) {
		io_puts("* BYE Too many failed logins\r\n");
		sess.state = S_LOGOUT;
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
	if (!sess.secure)
		return no("PRIVACYREQUIRED", "Use STARTTLS before LOGIN");
	r = try_login(user, pass);
	explicit_bzero(pass, n);
	return r;
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
		if ((n = io_getline(line, size)) == -2 &&
		    io_skipline(LINE_MAX_LEN) < 0)
			bye("Authentication response too long");
		if (n < 0)
			return bad("Invalid authentication response"), -1;
		if (!strcmp(line, "*"))
			return bad("Authentication cancelled"), -1;
		*resp = line;
	}
	if ((n = base64_decode(*resp)) < 0)
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
	if (!sess.tls || !tls_client_verified())
		return no("AUTHENTICATIONFAILED", "No verified client "
		    "certificate");
	if (n && (memchr(resp, '\0', n) || strcmp(resp, sess.user)))
		return no("AUTHORIZATIONFAILED", "Cannot act as another user");
	logmsg(LOG_INFO, "login ok user=%s from=%s (certificate)", sess.user,
	    sess.remote);
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
	if (!sess.secure)
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
	if (p_end() < 0)
		return ST_BAD;
	if (sess.tls)
		return bad("TLS is already active");
	if (!tls_available() || tls_load() < 0)
		return no("UNAVAILABLE", "TLS is not configured");
	answer(tag, ok(NULL, "Begin TLS negotiation now"));
	tls_switch(sess.remote);
	sess.tls = sess.secure = 1;
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
	if (sess.compress)
		return no("COMPRESSIONACTIVE", "Compression is already active");
	if (!(l = compress_start()))
		return no("SERVERBUG", "Cannot start compression");
	answer(tag, ok(NULL, "DEFLATE active"));
	io_flush();
	io_push(l);
	sess.compress = 1;
	return ST_DONE;
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

	for (p = sess.remote; *p; p++)
		h = h * 33 + (unsigned char)*p;
	return now + IDLE_KEEPALIVE - (now + h) % IDLE_KEEPALIVE;
}

/* seconds to the next look at the folder: a safety rescan when inotify
 * watches it, often when nothing else would tell */
static int
idle_poll(void)
{
	if (sess.state == S_SELECTED && folder_watchfd(&sess.f) < 0)
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
	/* a long line goes whole, as long as it ends within the limit */
	if (n == -2 && io_skipline(LINE_MAX_LEN) < 0)
		bye("Line too long");
	if (n < 0 || ascii_casecmp(line, "DONE"))
		return bad("Expected DONE");
	return ok(NULL, "IDLE terminated");
}

/* new mail into the full-text index, a slice at a time, once the client
 * has sent nothing for wait ms and as long as it sends nothing and the
 * folder's watch (fd, -1 for none) has nothing new to tell: EXISTS goes
 * out before indexing goes on, and the next SEARCH finds it current */
static void
index_while_quiet(int wait, int fd)
{
	struct pollfd p[2] = {
		{ .fd = io_fd(), .events = POLLIN }, { .fd = fd, .events = POLLIN }
	};

	while (sess.state == S_SELECTED && !io_buffered() &&
	    poll(p, 2, wait) == 0 && fts_idle(&sess.f))
		wait = 0;
}

static int
cmd_idle(const char *tag, int uid)
{
	struct pollfd pfd[3];
	time_t now, start, ka, check;
	int n, wait, sel, soon;

	if (p_end() < 0)
		return ST_BAD;
	/* watch first, then look: what lands in between is seen either way */
	if (sess.state == S_SELECTED) {
		folder_watchfd(&sess.f);
		view_sync(1);
	}
	io_puts("+ idling\r\n");
	io_flush();
	start = now = time(NULL);
	ka = next_keepalive(now);
	check = now + idle_poll();
	for (;;) {
		index_while_quiet(0, sess.state == S_SELECTED &&
		    notify_selected_push() ? folder_watchfd(&sess.f) : -1);
		if (io_buffered())
			return idle_done();
		pfd[0].fd = io_fd();
		pfd[0].events = POLLIN;
		/* NOTIFY may leave the selected mailbox out, and watch others */
		sel = sess.state == S_SELECTED && notify_selected_push();
		pfd[1].fd = sel ? folder_watchfd(&sess.f) : -1;
		pfd[1].events = POLLIN;
		pfd[2].fd = notify_fd();
		pfd[2].events = POLLIN;
		/* wake on the second itself, so that the keep-alives of one
		 * address leave together */
		wait = (int)(MIN(ka, check) * 1000 - now_ms());
		soon = sel && folder_unsettled(&sess.f);
		if (soon)
			wait = MIN(wait, IDLE_SETTLE_MS);
		n = poll(pfd, 3, wait > 0 ? wait : 0);
		if (n < 0 && errno != EINTR)
			exit(1);
		if (n > 0 && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
			return idle_done();
		now = time(NULL);
		if ((n > 0 && (pfd[1].revents & POLLIN)) || now >= check ||
		    (soon && n == 0)) {
			if (sel)
				view_sync(1);
			check = now + idle_poll();
		}
		if (n > 0 && (pfd[2].revents & POLLIN))
			notify_run();
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
	if (!(c->states & sess.state))
		return bad(sess.state == S_NOAUTH ? "Log in first" :
		    sess.state == S_AUTH && c->states == S_SELECTED ?
		    "Select a mailbox first" : "Not allowed in this state");
	sess.tag = tag;
	/* UIDONLY (RFC 9586): every command that could name messages by
	 * number must use UIDs */
	if (sess.uidonly && (c->flags & C_UID) && !uid && c->fn != cmd_expunge)
		return no("UIDREQUIRED", "Use the UID form of the command");
	progress_start(tag);
	r = c->fn(tag, uid);
	notify_quiet(c->name);
	if (r != ST_DONE && r != ST_BAD && sess.state == S_SELECTED)
		view_sync(!(c->flags & C_USESEQ) || uid);
	progress_end();
	return r;
}

static void
command(void)
{
	char *tag;
	int r;

	sess.code = NULL;
	sess.text[0] = '\0';
	/* before login a whole command, however slowly it trickles in, has
	 * the time one read would have */
	io_deadline(sess.state == S_NOAUTH ? TIMEOUT_PREAUTH * 1000 : 0);
	notify_wait();
	r = p_begin();
	if (r == -1) {
		if (io_timedout())
			bye("Autologout; idle for too long");
		exit(0);
	}
	if (r == -2) {
		/* the rest of the line may never come: answer at once and
		 * close rather than read on */
		if ((tag = p_tag()) && p_peek() == ' ')
			io_printf("%s BAD [TOOBIG] Command line too long\r\n",
			    tag);
		else
			io_puts("* BAD [TOOBIG] Command line too long\r\n");
		bye("Command line too long");
	}
	if (!(tag = p_tag())) {
		if (p_skip() < 0)
			bye("Command too long");
		io_puts("* BAD Missing or invalid tag\r\n");
		sess.bad_streak++;
	} else {
		r = run(tag);
		if (perr_code && !strcmp(perr_code, "EOF"))
			exit(0);
		if (p_skip() < 0) {
			answer(tag, r == ST_DONE ? ST_BAD : r);
			bye("Command too long");
		}
		if (r == ST_BAD)
			sess.bad_streak++;
		else
			sess.bad_streak = 0;
		if (r != ST_DONE)
			answer(tag, r);
	}
	if (sess.bad_streak >= BAD_MAX)
		bye("Too many invalid commands");
	if (sess.state == S_LOGOUT) {
		io_close();
		exit(0);
	}
	io_flush();
}

/* --- start-up --------------------------------------------------------- */

/* secrets others can read are secrets no more */
static void
warn_readable(const char *what, const char *path)
{
	struct stat sb;

	if (*path && stat(path, &sb) == 0 && (sb.st_mode & 077))
		logmsg(LOG_WARNING, "%s %s is open to others (mode %03o): "
		    "chmod 600 it", what, path, (unsigned)(sb.st_mode & 0777));
}

/* what the session needs from outside the Maildir, read before the
 * sandbox closes the door */
static void
preload(void)
{
	warn_readable("password file", sess.pwfile);
	warn_readable("TLS key", tls_key_path());
	if (tls_available() && tls_load() < 0)
		logmsg(LOG_ERR, "cannot load the TLS certificate and key");
	sandbox_paths(sess.maildir, sess.pwfile, sess.failfile);
}

static void
greet(void)
{
	struct buf b = { 0 };

	capability_line(&b);
	if (sess.preauth)
		io_printf("* PREAUTH [CAPABILITY %s] imapd ready, logged in "
		    "as %s\r\n", b.p, sess.user);
	else
		io_printf("* OK [CAPABILITY %s] imapd ready\r\n", b.p);
	buf_free(&b);
	io_flush();
}

static void __attribute__((noreturn))
usage(int status)
{
	fputs("usage: imapd [-p | -s | -H [label] | -d | -S | -t | -V | -h]\n"
	    "  -p  pre-authenticated session (ssh tunnel)\n"
	    "  -s  TLS before the greeting (port 993)\n"
	    "  -H  read a password on stdin and print its hash\n"
	    "  -H label  make a password for a device, add it to the "
	    "password file\n"
	    "  -d  deliver a message (imapd -d [-n] [-f from] [-a to])\n"
	    "  -S  ManageSieve session (port 4190)\n"
	    "  -t  show the configuration, check the set-up and exit\n"
	    "  -V  print the version\n"
	    "  -h  this help\n", status ? stderr : stdout);
	exit(status);
}

int
main(int argc, char *argv[])
{
	struct layer *l;
	int c, tls = 0;

	log_open("imapd");
	if (argc > 1 && !strcmp(argv[1], "-d"))
		return deliver_main(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "-S"))
		return managesieve_main(argc, argv);
	if (argc == 2 && !strcmp(argv[1], "--help"))
		argv[1] = "-h";
	if (argc == 2 && !strcmp(argv[1], "--version"))
		argv[1] = "-V";
	while ((c = getopt(argc, argv, "psHtVh")) != -1) {
		switch (c) {
		case 'p':
			sess.preauth = 1;
			break;
		case 's':
			tls = 1;
			break;
		case 'H':
			if (optind == argc)
				return auth_hash();
			config_path(sess.pwfile, sizeof(sess.pwfile),
			    "IMAPD_PASSWD", passwd_file);
			return auth_device(argv[optind], sess.pwfile);
		case 't':
			return check_setup();
		case 'V':
			puts("imapd " VERSION);
			return 0;
		case 'h':
			usage(0);
		default:
			usage(1);
		}
	}
	if (optind != argc || (tls && sess.preauth))
		usage(1);
	setup();
	preload();
	mime_filemap(1);	/* messages are read through file mappings */
	io_init(0, 1);
	io_timeout(TIMEOUT_PREAUTH * 1000);
	sess.state = S_NOAUTH;
	if (tls) {
		if (!(l = tls_start(io_top())))
			return 1;
		io_push(l);
		sess.tls = 1;
	}
	if (!tls && !sess.preauth)
		tls_explain();	/* a STARTTLS port never fails silently */
	sess.secure = sess.tls || sess.preauth ||
	    (loopback_is_secure && remote_is_local());
	if (sess.preauth) {
		logmsg(LOG_INFO, "preauth session user=%s", sess.user);
		if (logged_in() != ST_OK)
			die("cannot open the Maildir %s", sess.maildir);
	} else
		sandbox_enter(SANDBOX_LOGIN);
	greet();
	for (;;) {
		index_while_quiet(FTS_QUIET_MS, -1);
		command();
	}
}
