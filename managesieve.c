/* managesieve.c: imapd -S, one ManageSieve session (RFC 5804) on
 * stdin/stdout, started per connection on port 4190 like the IMAP side
 * and sharing its start-up, TLS and password check.  Scripts live in
 * sieve_dir as NAME.sieve; the active one is sieve_script, a symbolic
 * link to one of them, as Pigeonhole keeps them, so a Dovecot user's
 * scripts carry over.  Every upload is parsed before it is stored. */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "authfail.h"
#include "config.h"
#include "imapd.h"
#include "io.h"
#include "maildir.h"
#include "sieve.h"
#include "tls.h"
#include "util.h"
#include "session.h"

#define WORDS_MAX 4	/* arguments of the longest command */

static struct {
	char dir[PATH_MAX], active[PATH_MAX];
	int authed;
	int fails;
	/* the command being read: words (atoms or strings) */
	struct buf w[WORDS_MAX + 1];
	int nw;
	int toolarge;		/* a literal over the limit was skipped */
} ms;

/* --- replies ------------------------------------------------------------ */

static void
put_string(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] == '"' || s[i] == '\\' || s[i] == '\r' ||
		    s[i] == '\n' || s[i] == '\0' || i >= 1000)
			break;
	if (i == n) {
		io_printf("\"%.*s\"", (int)n, s);
		return;
	}
	io_printf("{%zu}\r\n", n);
	io_write(s, n);
}

/* OK / NO / BYE with an optional response code and text */
static int
reply(const char *what, const char *code, const char *text)
{
	io_puts(what);
	if (code)
		io_printf(" (%s)", code);
	if (text) {
		io_puts(" ");
		put_string(text, strlen(text));
	}
	io_puts("\r\n");
	io_flush();
	return 0;
}

static void
capabilities(void)
{
	io_puts("\"IMPLEMENTATION\" \"imapd " VERSION "\"\r\n");
	io_printf("\"SIEVE\" \"%s\"\r\n", sieve_extensions);
	if (!ms.authed)
		io_printf("\"SASL\" \"%s\"\r\n", sess.secure ? "PLAIN" : "");
	if (!sess.tls && tls_available())
		io_puts("\"STARTTLS\"\r\n");
	io_printf("\"MAXREDIRECTS\" \"%d\"\r\n", SIEVE_REDIRECT_MAX);
	io_puts("\"VERSION\" \"1.0\"\r\n");
}

/* --- reading a command: atoms, quoted strings and literals -------------- */

static int
read_literal(struct buf *b, unsigned long long n)
{
	char chunk[4096];
	size_t k;

	if (n > SIEVE_SIZE_MAX) {
		/* read it to stay in step, keep none of it */
		ms.toolarge = 1;
		for (; n; n -= k) {
			k = MIN(n, sizeof(chunk));
			if (io_readn(chunk, k) < 0)
				return -1;
		}
		return 0;
	}
	buf_grow(b, n + 1);
	if (n && io_readn(b->p + b->len, n) < 0)
		return -1;
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

/* one line into words; 1 when a literal ends it and the line goes on */
static int
split_line(char *p, int *more)
{
	unsigned long long n;
	char *e;

	*more = 0;
	for (;;) {
		while (*p == ' ')
			p++;
		if (!*p)
			return 0;
		if (ms.nw > WORDS_MAX)
			return -1;
		buf_reset(&ms.w[ms.nw]);
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
					p++;
				buf_addc(&ms.w[ms.nw], *p);
			}
			if (*p++ != '"')
				return -1;
		} else if (*p == '{') {
			n = strtoull(p + 1, &e, 10);
			if (e == p + 1 || (strcmp(e, "+}") && strcmp(e, "}")))
				return -1;
			if (*e == '}')	/* synchronising: say go on */
				io_puts("+ \"\"\r\n"), io_flush();
			if (read_literal(&ms.w[ms.nw++], n) < 0)
				return -1;
			*more = 1;
			return 0;
		} else {
			e = p + strcspn(p, " ");
			buf_add(&ms.w[ms.nw], p, e - p);
			p = e;
		}
		buf_addc(&ms.w[ms.nw], '\0');
		ms.w[ms.nw].len--;
		ms.nw++;
	}
}

/* 0 with the words of the next command, -1 at the end */
static int
read_command(void)
{
	char line[1024];
	long n;
	int more = 1;

	ms.nw = 0;
	ms.toolarge = 0;
	while (more) {
		if ((n = io_getline(line, sizeof(line))) == -1)
			return -1;
		if (n == -2 || split_line(line, &more) < 0) {
			ms.nw = -1;
			return 0;
		}
	}
	return 0;
}

static const char *
word(int i)
{
	return i < ms.nw ? ms.w[i].p : NULL;
}

/* --- the scripts ------------------------------------------------------- */

/* a script name that is a safe file name */
static int
name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 200 || *s == '.' || strchr(s, '/'))
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			return 0;
	return 1;
}

static int
script_path(char *out, const char *name)
{
	return snprintf(out, PATH_MAX, "%s/%s.sieve", ms.dir, name) >=
	    PATH_MAX ? -1 : 0;
}

/* the name of the active script, "" for none */
static void
active_name(char *out, size_t size)
{
	char target[PATH_MAX], *base;
	ssize_t n;
	size_t k;

	out[0] = '\0';
	if ((n = readlink(ms.active, target, sizeof(target) - 1)) <= 0)
		return;
	target[n] = '\0';
	base = strrchr(target, '/') ? strrchr(target, '/') + 1 : target;
	k = strlen(base);
	if (k > 6 && !strcmp(base + k - 6, ".sieve"))
		snprintf(out, size, "%.*s", (int)(k - 6), base);
}

static char *
read_script(const char *name, size_t *len)
{
	char path[PATH_MAX];
	struct buf b = { 0 };
	char chunk[4096];
	ssize_t k;
	int fd;

	if (script_path(path, name) < 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return NULL;
	while ((k = read(fd, chunk, sizeof(chunk))) > 0 &&
	    b.len <= SIEVE_SIZE_MAX)
		buf_add(&b, chunk, k);
	close(fd);
	buf_addc(&b, '\0');
	*len = b.len - 1;
	return b.p;
}

/* tmp file, fsync, rename: a script is whole or absent */
static int
write_script(const char *name, const char *p, size_t n)
{
	char path[PATH_MAX], tmp[PATH_MAX + 32];
	int fd, ok;

	if (mkdir(ms.dir, 0700) < 0 && errno != EEXIST)
		return -1;
	if (script_path(path, name) < 0)
		return -1;
	snprintf(tmp, sizeof(tmp), "%s/.tmp.%ld", ms.dir, (long)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) < 0)
		return -1;
	ok = write(fd, p, n) == (ssize_t)n && fsync(fd) == 0;
	if (close(fd) < 0 || !ok || rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int
count_scripts(void)
{
	DIR *d = opendir(ms.dir);
	struct dirent *e;
	size_t k;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && (k = strlen(e->d_name)) > 6 &&
		    !strcmp(e->d_name + k - 6, ".sieve"))
			n++;
	closedir(d);
	return n;
}

/* parse a script: NULL when it is good, else the error */
static const char *
check(const char *p, size_t n)
{
	static char err[256];
	struct sv_script *s;

	if (memchr(p, '\0', n))
		return "the script holds a NUL";
	if (!(s = sieve_parse(p, n, err, sizeof(err))))
		return err;
	sieve_free(s);
	return NULL;
}

/* --- commands ------------------------------------------------------------ */

static int
cmd_listscripts(void)
{
	DIR *d = opendir(ms.dir);
	struct dirent *e;
	char active[256];
	size_t k;

	active_name(active, sizeof(active));
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.' || (k = strlen(e->d_name)) <= 6 ||
		    strcmp(e->d_name + k - 6, ".sieve"))
			continue;
		put_string(e->d_name, k - 6);
		if (strlen(active) == k - 6 && !strncmp(active, e->d_name, k - 6))
			io_puts(" ACTIVE");
		io_puts("\r\n");
	}
	if (d)
		closedir(d);
	return reply("OK", NULL, "Listscripts completed");
}

static int
cmd_putscript(const char *name, const struct buf *text)
{
	const char *err;
	char path[PATH_MAX];

	if (!name_ok(name))
		return reply("NO", NULL, "Invalid script name");
	if (ms.toolarge)
		return reply("NO", "QUOTA/MAXSIZE", "Script too large");
	if ((err = check(text->p ? text->p : "", text->len)))
		return reply("NO", NULL, err);
	if (script_path(path, name) < 0)
		return reply("NO", NULL, "Invalid script name");
	if (access(path, F_OK) < 0 && count_scripts() >= SIEVE_SCRIPTS_MAX)
		return reply("NO", "QUOTA/MAXSCRIPTS", "Too many scripts");
	if (write_script(name, text->p ? text->p : "", text->len) < 0) {
		logmsg(LOG_ERR, "putscript: %s", strerror(errno));
		return reply("NO", NULL, "Cannot store the script");
	}
	return reply("OK", NULL, "Putscript completed");
}

static int
cmd_getscript(const char *name)
{
	char *p;
	size_t n;

	if (!name_ok(name) || !(p = read_script(name, &n)))
		return reply("NO", "NONEXISTENT", "No such script");
	io_printf("{%zu}\r\n", n);
	io_write(p, n);
	io_puts("\r\n");
	free(p);
	return reply("OK", NULL, "Getscript completed");
}

/* a user's own ~/.dovecot.sieve file (not a link) is kept as a script
 * before the link replaces it */
static int
adopt_plain_active(void)
{
	struct stat sb;
	char path[PATH_MAX];

	if (lstat(ms.active, &sb) < 0 || !S_ISREG(sb.st_mode))
		return 0;
	if ((mkdir(ms.dir, 0700) < 0 && errno != EEXIST) ||
	    script_path(path, "dovecot-orig") < 0)
		return -1;
	return rename(ms.active, path);
}

static int
cmd_setactive(const char *name)
{
	char path[PATH_MAX], tmp[PATH_MAX + 32];

	if (!*name) {
		if (unlink(ms.active) < 0 && errno != ENOENT)
			return reply("NO", NULL, "Cannot deactivate");
		return reply("OK", NULL, "No script is active");
	}
	if (!name_ok(name) || script_path(path, name) < 0 ||
	    access(path, R_OK) < 0)
		return reply("NO", "NONEXISTENT", "No such script");
	snprintf(tmp, sizeof(tmp), "%s.tmp%ld", ms.active, (long)getpid());
	unlink(tmp);
	if (adopt_plain_active() < 0 || symlink(path, tmp) < 0 ||
	    rename(tmp, ms.active) < 0) {
		unlink(tmp);
		logmsg(LOG_ERR, "setactive: %s", strerror(errno));
		return reply("NO", NULL, "Cannot activate the script");
	}
	return reply("OK", NULL, "Setactive completed");
}

static int
cmd_deletescript(const char *name)
{
	char path[PATH_MAX], active[256];

	active_name(active, sizeof(active));
	if (!name_ok(name) || script_path(path, name) < 0)
		return reply("NO", "NONEXISTENT", "No such script");
	if (!strcmp(active, name))
		return reply("NO", "ACTIVE", "The script is active");
	if (unlink(path) < 0)
		return reply("NO", "NONEXISTENT", "No such script");
	return reply("OK", NULL, "Deletescript completed");
}

static int
cmd_renamescript(const char *from, const char *to)
{
	char a[PATH_MAX], b[PATH_MAX], active[256];

	active_name(active, sizeof(active));
	if (!name_ok(from) || !name_ok(to) || script_path(a, from) < 0 ||
	    script_path(b, to) < 0 || access(a, F_OK) < 0)
		return reply("NO", "NONEXISTENT", "No such script");
	if (access(b, F_OK) == 0)
		return reply("NO", "ALREADYEXISTS", "The new name is taken");
	if (rename(a, b) < 0)
		return reply("NO", NULL, "Cannot rename the script");
	if (!strcmp(active, from) && cmd_setactive(to) == 0)
		return 0;	/* its reply was the answer */
	return reply("OK", NULL, "Renamescript completed");
}

static int
cmd_havespace(const char *name, const char *size)
{
	char *e;
	unsigned long long n = strtoull(size ? size : "", &e, 10);

	if (!name_ok(name) || !size || *e)
		return reply("NO", NULL, "Invalid arguments");
	if (n > SIEVE_SIZE_MAX)
		return reply("NO", "QUOTA/MAXSIZE", "Script too large");
	return reply("OK", NULL, NULL);
}

static void
login_failed(void)
{
	struct timespec ts = {
		LOGIN_DELAY_MS / 1000, (LOGIN_DELAY_MS % 1000) * 1000000L
	};

	logmsg(LOG_NOTICE, "managesieve login failed from=%s", sess.remote);
	io_flush();
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	if (++ms.fails >= LOGIN_TRIES) {
		reply("BYE", NULL, "Too many failed logins");
		exit(0);
	}
	reply("NO", NULL, "Authentication failed");
}

/* AUTHENTICATE "PLAIN" [initial response] */
static int
ms_authenticate(const char *mech, const char *initial)
{
	char line[1024], label[64] = "", *resp, *user, *pass, *end;
	long n, wait;
	int r = 0;

	if (ascii_casecmp(mech, "PLAIN"))
		return reply("NO", NULL, "Unsupported mechanism");
	if (!sess.secure)
		return reply("NO", "ENCRYPT-NEEDED", "Use STARTTLS first");
	if (initial)
		snprintf(line, sizeof(line), "%s", initial);
	else {
		io_puts("\"\"\r\n");
		io_flush();
		if (io_getline(line, sizeof(line)) < 0)
			return -1;
		if (line[0] == '"' && (end = strrchr(line + 1, '"'))) {
			*end = '\0';
			memmove(line, line + 1, end - line);
		}
	}
	resp = line;
	if ((n = base64_decode(resp)) < 0 ||
	    !(user = memchr(resp, '\0', n)) ||
	    !(pass = memchr(user + 1, '\0', resp + n - user - 1)))
		return reply("NO", NULL, "Invalid PLAIN response");
	user++;
	*pass++ = '\0';
	resp[n] = '\0';
	if (!*resp || !strcmp(resp, user)) {
		if ((wait = authfail_begin(sess.failfile, sess.remote)) > 0)
			pause_ms(wait);
		r = auth_check(sess.user, user, pass, sess.pwfile, label,
		    sizeof(label));
	}
	explicit_bzero(line, sizeof(line));
	if (r <= 0) {
		login_failed();
		return 0;
	}
	authfail_clear(sess.failfile, sess.remote);
	logmsg(LOG_INFO, "managesieve login user=%s%s%s from=%s", sess.user,
	    label[0] ? " device=" : "", label, sess.remote);
	ms.authed = 1;
	io_timeout(TIMEOUT_AUTH * 1000);
	return reply("OK", NULL, "Logged in");
}

static int
ms_starttls(void)
{
	if (sess.tls || !tls_available() || tls_load() < 0)
		return reply("NO", NULL, "TLS is not available");
	reply("OK", NULL, "Begin TLS negotiation now");
	tls_switch(sess.remote);
	sess.tls = sess.secure = 1;
	capabilities();
	return reply("OK", NULL, "TLS active");
}

/* the command in ms.w; -1 ends the session */
static int
run(void)
{
	const char *c = word(0), *a = word(1), *b = word(2);
	int n = ms.nw - 1;

	if (ms.nw < 1 || !c)
		return reply("NO", NULL, "Invalid command");
	if (!ascii_casecmp(c, "LOGOUT")) {
		reply("OK", NULL, "Bye");
		return -1;
	}
	if (!ascii_casecmp(c, "CAPABILITY") && n == 0) {
		capabilities();
		return reply("OK", NULL, "Capability completed");
	}
	if (!ascii_casecmp(c, "NOOP") && n <= 1) {
		/* the tag comes back, so a client can resynchronise */
		if (a) {
			io_puts("OK (TAG ");
			put_string(a, strlen(a));
			io_puts(") \"Done\"\r\n");
			io_flush();
			return 0;
		}
		return reply("OK", NULL, "Done");
	}
	if (!ms.authed) {
		if (!ascii_casecmp(c, "STARTTLS") && n == 0)
			return ms_starttls();
		if (!ascii_casecmp(c, "AUTHENTICATE") && (n == 1 || n == 2))
			return ms_authenticate(a, b);
		return reply("NO", NULL, "Log in first");
	}
	if (!ascii_casecmp(c, "LISTSCRIPTS") && n == 0)
		return cmd_listscripts();
	if (!ascii_casecmp(c, "PUTSCRIPT") && n == 2)
		return cmd_putscript(a, &ms.w[2]);
	if (!ascii_casecmp(c, "CHECKSCRIPT") && n == 1)
		return ms.toolarge ? reply("NO", "QUOTA/MAXSIZE", "Script too "
		    "large") : check(ms.w[1].p ? ms.w[1].p : "", ms.w[1].len) ?
		    reply("NO", NULL, check(ms.w[1].p ? ms.w[1].p : "",
		    ms.w[1].len)) : reply("OK", NULL, "Script is valid");
	if (!ascii_casecmp(c, "GETSCRIPT") && n == 1)
		return cmd_getscript(a);
	if (!ascii_casecmp(c, "SETACTIVE") && n == 1)
		return cmd_setactive(a);
	if (!ascii_casecmp(c, "DELETESCRIPT") && n == 1)
		return cmd_deletescript(a);
	if (!ascii_casecmp(c, "RENAMESCRIPT") && n == 2)
		return cmd_renamescript(a, b);
	if (!ascii_casecmp(c, "HAVESPACE") && n == 2)
		return cmd_havespace(a, b);
	return reply("NO", NULL, "Unknown command or wrong arguments");
}

int
managesieve_main(int argc, char *argv[])
{
	int tls = argc == 3 && !strcmp(argv[2], "-s");
	struct layer *l;

	if (argc != 2 && !tls) {
		fputs("usage: imapd -S [-s]\n", stderr);
		return 1;
	}
	setup();
	config_path(ms.dir, sizeof(ms.dir), "IMAPD_SIEVE_DIR", sieve_dir);
	config_path(ms.active, sizeof(ms.active), "IMAPD_SIEVE", sieve_script);
	io_init(0, 1);
	io_timeout(TIMEOUT_PREAUTH * 1000);
	if (tls) {
		if (!(l = tls_start(io_top())))
			return 1;
		io_push(l);
		sess.tls = 1;
	}
	sess.secure = sess.tls || (loopback_is_secure && remote_is_local());
	capabilities();
	reply("OK", NULL, "imapd ManageSieve ready");
	for (;;) {
		if (read_command() < 0)
			break;
		if (ms.nw < 0) {
			reply("NO", NULL, "Invalid command syntax");
			continue;
		}
		if (run() < 0)
			break;
	}
	io_close();
	return 0;
}
