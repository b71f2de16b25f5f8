/* auth.c: deciding a login: the password file of crypt(3) hashes, one
 * line per device, or (chosen at build time) a PAM service or a qmail
 * checkpassword program; and imapd -H, which writes the password file */
#include <sys/random.h>
#include <sys/wait.h>

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "auth.h"
#include "util.h"

/* compare without leaking where the first difference is */
static int
same(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b), i;
	unsigned char d = na != nb;

	for (i = 0; i < na && i < nb; i++)
		d |= a[i] ^ b[i];
	return d == 0;
}

/* the hash on a line "label:hash" or "hash"; the label goes to label */
static char *
line_hash(char *line, char *label, size_t lsize)
{
	char *p;

	line[strcspn(line, "\r\n")] = '\0';
	label[0] = '\0';
	if ((p = strchr(line, ':'))) {
		snprintf(label, lsize, "%.*s", (int)(p - line), line);
		line = p + 1;
	}
	while (*line == ' ' || *line == '\t')
		line++;
	return line;
}

#if !defined(WITH_PAM) && !defined(WITH_CHECKPASSWORD)
static int
check_hash(const char *pass, const char *hash)
{
	struct crypt_data *cd;
	const char *out;
	int ok;

	if (hash[0] != '$')	/* never a plaintext or DES password */
		return 0;
	cd = xcalloc(1, sizeof(*cd));
	out = crypt_r(pass, hash, cd);
	ok = out && out[0] != '*' && same(out, hash);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

static int
check_file(const char *pass, const char *pwfile, char *label, size_t lsize)
{
	char line[1024];
	FILE *fp;
	int ok = 0;

	if (!(fp = fopen(pwfile, "r"))) {
		logmsg(LOG_ERR, "cannot read password file %s: %s", pwfile,
		    strerror(errno));
		return -1;
	}
	while (!ok && fgets(line, sizeof(line), fp))
		if (line[0] != '#')
			ok = check_hash(pass, line_hash(line, label, lsize));
	if (!ok)
		label[0] = '\0';
	explicit_bzero(line, sizeof(line));
	fclose(fp);
	return ok;
}
#endif

#if defined(WITH_PAM)
#include <security/pam_appl.h>

/* the password for every hidden prompt; nothing for the others */
static int
pam_talk(int n, const struct pam_message **msg, struct pam_response **resp,
    void *pass)
{
	struct pam_response *r;
	int i;

	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	r = xcalloc(n, sizeof(*r));
	for (i = 0; i < n; i++)
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF)
			r[i].resp = xstrdup(pass);
	*resp = r;
	return PAM_SUCCESS;
}

/* imapd waits by its own rules: no delay of PAM's */
static void
pam_nodelay(int status, unsigned usec, void *data)
{
}

static int
check_backend(const char *user, const char *pass)
{
	struct pam_conv conv = { pam_talk, (void *)pass };
	const char *service = getenv("IMAPD_PAM_SERVICE");
	pam_handle_t *h;
	int r;

	if (!service || !*service)
		service = pam_service;
	if ((r = pam_start(service, user, &conv, &h)) != PAM_SUCCESS) {
		logmsg(LOG_ERR, "PAM service %s: cannot start", service);
		return -1;
	}
	pam_set_item(h, PAM_FAIL_DELAY, (const void *)pam_nodelay);
	r = pam_authenticate(h, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
	if (r == PAM_SUCCESS)
		r = pam_acct_mgmt(h, PAM_SILENT);
	if (r != PAM_SUCCESS && r != PAM_AUTH_ERR && r != PAM_USER_UNKNOWN &&
	    r != PAM_MAXTRIES && r != PAM_ACCT_EXPIRED &&
	    r != PAM_PERM_DENIED)
		logmsg(LOG_ERR, "PAM service %s: %s", service,
		    pam_strerror(h, r));
	pam_end(h, r);
	return r == PAM_SUCCESS ? 1 : r == PAM_AUTHINFO_UNAVAIL ||
	    r == PAM_SYSTEM_ERR || r == PAM_SERVICE_ERR ||
	    r == PAM_BUF_ERR ? -1 : 0;
}
#elif defined(WITH_CHECKPASSWORD)
/* the qmail interface: "user\0password\0timestamp\0" on fd 3, exit 0
 * when it is right, 1 when not, anything else when it could not tell */
static void
run_checkpassword(const char *prog, int fd)
{
	if (fd != 3 && (dup2(fd, 3) < 0 || close(fd) < 0))
		_exit(111);
	execl(prog, prog, "/bin/true", (char *)NULL);
	_exit(111);
}

static int
wait_child(pid_t pid)
{
	struct timespec ts = { 0, 20 * 1000000L };
	int st, i;
	pid_t r;

	for (i = 0; i < CHECKPASSWORD_TIMEOUT * 50; i++) {
		if ((r = waitpid(pid, &st, WNOHANG)) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 111;
		if (r < 0 && errno != EINTR)
			return 111;
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return 111;
}

static int
check_backend(const char *user, const char *pass)
{
	const char *prog = getenv("IMAPD_CHECKPASSWORD");
	struct buf b = { 0 };
	int fd[2], st;
	pid_t pid;

	if (!prog || !*prog)
		prog = checkpassword_prog;
	if (pipe2(fd, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		logmsg(LOG_ERR, "checkpassword: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		close(fd[1]);
		fcntl(fd[0], F_SETFD, 0);
		run_checkpassword(prog, fd[0]);
	}
	close(fd[0]);
	buf_add(&b, user, strlen(user) + 1);
	buf_add(&b, pass, strlen(pass) + 1);
	buf_printf(&b, "<%ld.%lld@imapd>", (long)getpid(),
	    (long long)time(NULL));
	/* a program that does not read it says so by its exit status */
	if (write(fd[1], b.p, b.len + 1) < 0 && errno != EPIPE)
		logmsg(LOG_ERR, "checkpassword: %s", strerror(errno));
	explicit_bzero(b.p, b.len);
	buf_free(&b);
	close(fd[1]);
	if ((st = wait_child(pid)) != 0 && st != 1)
		logmsg(LOG_ERR, "checkpassword %s: exit %d", prog, st);
	return st == 0 ? 1 : st == 1 ? 0 : -1;
}
#endif

int
auth_check(const char *want, const char *user, const char *pass,
    const char *pwfile, char *label, size_t lsize)
{
	int r, me = same(user, want);

	label[0] = '\0';
#if defined(WITH_PAM) || defined(WITH_CHECKPASSWORD)
	if (!me)
		return 0;
	r = check_backend(user, pass);
	(void)pwfile;
#else
	r = check_file(pass, pwfile, label, lsize);
#endif
	return r < 0 ? r : r && me;
}

int
auth_spawns(void)
{
#if defined(WITH_PAM) || defined(WITH_CHECKPASSWORD)
	return 1;
#else
	return 0;
#endif
}

/* a device name for the password file: letters, digits, ".", "_", "-" */
static int
valid_label(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 32 && strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static int
label_taken(const char *label, const char *pwfile)
{
	char line[1024], have[64];
	FILE *fp;
	int taken = 0;

	if (!(fp = fopen(pwfile, "r")))
		return 0;
	while (!taken && fgets(line, sizeof(line), fp)) {
		line_hash(line, have, sizeof(have));
		taken = !strcmp(have, label);
	}
	fclose(fp);
	return taken;
}

/* 20 letters and digits that cannot be mistaken for each other: 100 bits */
static int
make_password(char *out, size_t size)
{
	static const char digits[] = "abcdefghijkmnpqrstuvwxyz23456789";
	unsigned char r[20];
	size_t i, o = 0;

	if (size < 25 || getrandom(r, sizeof(r), 0) != sizeof(r))
		return -1;
	for (i = 0; i < sizeof(r); i++) {
		if (i && i % 4 == 0)
			out[o++] = '-';
		out[o++] = digits[r[i] % 32];
	}
	out[o] = '\0';
	explicit_bzero(r, sizeof(r));
	return 0;
}

static void
read_password(char *buf, size_t size)
{
	struct termios t, quiet;
	int tty = isatty(0) && tcgetattr(0, &t) == 0;

	if (tty) {
		quiet = t;
		quiet.c_lflag &= ~ECHO;
		fputs("Password: ", stderr);
		tcsetattr(0, TCSAFLUSH, &quiet);
	}
	if (!fgets(buf, size, stdin))
		buf[0] = '\0';
	if (tty) {
		tcsetattr(0, TCSAFLUSH, &t);
		fputc('\n', stderr);
	}
	buf[strcspn(buf, "\r\n")] = '\0';
}

static const char *
make_hash(const char *pass)
{
	const char *salt, *hash;

	if (!(salt = crypt_gensalt("$y$", 0, NULL, 0)))
		salt = crypt_gensalt("$6$", 0, NULL, 0);
	if (!salt || !(hash = crypt(pass, salt)) || hash[0] == '*') {
		fputs("imapd: cannot make a hash\n", stderr);
		return NULL;
	}
	return hash;
}

int
auth_hash(void)
{
	char pass[512];
	const char *hash;

	read_password(pass, sizeof(pass));
	if (!pass[0]) {
		fputs("imapd: empty password\n", stderr);
		return 1;
	}
	hash = make_hash(pass);
	explicit_bzero(pass, sizeof(pass));
	if (!hash)
		return 1;
	puts(hash);
	return 0;
}

int
auth_device(const char *label, const char *pwfile)
{
	char pass[32], line[256];
	const char *hash;
	int fd, n;

	if (!valid_label(label)) {
		fputs("imapd: a device name is 1 to 32 letters, digits, "
		    "'.', '_' or '-'\n", stderr);
		return 1;
	}
	if (label_taken(label, pwfile)) {
		fprintf(stderr, "imapd: %s already has a password in %s; "
		    "remove its line first\n", label, pwfile);
		return 1;
	}
	if (make_password(pass, sizeof(pass)) < 0 || !(hash = make_hash(pass)))
		return 1;
	n = snprintf(line, sizeof(line), "%s:%s\n", label, hash);
	if ((fd = open(pwfile, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0600)) < 0 || n <= 0 || (size_t)n >= sizeof(line) ||
	    write(fd, line, n) != n || fsync(fd) < 0 || close(fd) < 0) {
		fprintf(stderr, "imapd: %s: %s\n", pwfile, strerror(errno));
		return 1;
	}
	fprintf(stderr, "imapd: the password of %s, shown only this once:\n",
	    label);
	puts(pass);
	explicit_bzero(pass, sizeof(pass));
	return 0;
}
