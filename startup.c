/* startup.c: what every mode of imapd does first, whether it serves IMAP
 * (imapd.c), delivers (deliver.c), speaks ManageSieve (managesieve.c) or
 * checks the set-up (check.c): the user, the configured paths and the
 * peer, into the session; and the one pause that flushes the client's
 * output first. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "io.h"
#include "maildir.h"
#include "startup.h"
#include "util.h"
#include "session.h"

void
pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	io_flush();
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* a configured path (util.c); none is a start-up error */
void
config_path(char *out, size_t size, const char *env, const char *def)
{
	if (path_expand(out, size, env, def) < 0)
		die("%s: %s", def, errno == ENOENT ?
		    "cannot find the home directory" : "path too long");
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
		snprintf(sess.remote, sizeof(sess.remote), "%.*s",
		    (int)strspn(v, "0123456789abcdefABCDEF.:"), v);
	} else if (getpeername(0, (struct sockaddr *)&ss, &len) == 0 &&
	    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)) {
		addr = ss.ss_family == AF_INET ?
		    (void *)&((struct sockaddr_in *)&ss)->sin_addr :
		    (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
		inet_ntop(ss.ss_family, addr, sess.remote, sizeof(sess.remote));
	}
	if (!sess.remote[0])
		snprintf(sess.remote, sizeof(sess.remote), "local");
}

int
remote_is_local(void)
{
	return !strcmp(sess.remote, "local") || !strncmp(sess.remote, "127.", 4) ||
	    !strcmp(sess.remote, "::1") || !strncmp(sess.remote, "::ffff:127.", 11);
}

void
setup(void)
{
	struct passwd *pw;
	int one = 1;

	if (geteuid() == 0 || getuid() == 0)
		die("refusing to run as root: start imapd as the mail user");
	signal(SIGPIPE, SIG_IGN);
	config_path(sess.maildir, sizeof(sess.maildir), "MAILDIR", maildir_root);
	config_path(sess.pwfile, sizeof(sess.pwfile), "IMAPD_PASSWD", passwd_file);
	config_path(sess.failfile, sizeof(sess.failfile), "IMAPD_FAILURES",
	    authfail_file);
	if (login_user[0])
		snprintf(sess.user, sizeof(sess.user), "%s", login_user);
	else if ((pw = getpwuid(getuid())))
		snprintf(sess.user, sizeof(sess.user), "%s", pw->pw_name);
	else
		die("cannot find the name of uid %ld", (long)getuid());
	find_remote();
	umask(077);
	/* responses are whole when flushed: send them at once (fails
	 * harmlessly when fd 1 is a pipe) */
	setsockopt(1, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}
