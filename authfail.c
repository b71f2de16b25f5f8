/* authfail.c: failed logins remembered across connections, so that a
 * guesser who opens a new connection for every try is slowed down too.
 *
 * The record is a small text file under the user's control, read and
 * rewritten under flock(2):
 *	imapd-failures 1
 *	* 41 1733460000			every address together
 *	192.0.2.7 12 1733459990		address, failures, time of the last
 * An attempt counts as a failure before the password is checked (so that
 * parallel connections see each other), a success from the address clears
 * its line.  Counts halve every AUTHFAIL_HALFLIFE seconds. */
#include <sys/file.h>
#include <sys/stat.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "authfail.h"
#include "util.h"

#define HEADER "imapd-failures 1\n"
#define KEY_MAX 64

struct entry {
	char key[KEY_MAX];
	unsigned count;
	long long last;
};

struct record {
	struct entry e[AUTHFAIL_ENTRIES + 1];	/* [0] is the total, "*" */
	size_t n;
};

/* the count as it stands now, after the halvings since the last failure */
static unsigned
decayed(const struct entry *e, long long now)
{
	long long halvings = now > e->last ? (now - e->last) / AUTHFAIL_HALFLIFE : 0;

	return halvings >= 32 ? 0 : e->count >> halvings;
}

/* the wait before checking a password after n recent failures */
static long
delay_after(unsigned n, unsigned free)
{
	unsigned shift;

	if (n < free)
		return 0;
	shift = MIN(n - free, 16);
	return MIN((long)LOGIN_DELAY_MS << shift, (long)AUTHFAIL_MAX_MS);
}

/* IPv6 addresses count by their /64: one host may hold all of it */
static void
address_key(char *key, const char *addr)
{
	unsigned char a[16];

	snprintf(key, KEY_MAX, "%s", addr);
	if (!strchr(addr, ':') || !strncmp(addr, "::ffff:", 7) ||
	    inet_pton(AF_INET6, addr, a) != 1)
		return;
	memset(a + 8, 0, 8);
	inet_ntop(AF_INET6, a, key, KEY_MAX);
}

static void
reset(struct record *r)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->e[0].key, KEY_MAX, "*");
	r->n = 1;
}

/* 0, or -1 when the text is not a record */
static int
parse(struct record *r, char *text)
{
	char *line, *next;
	struct entry *e;

	if (!*text) {		/* a new file */
		reset(r);
		return 0;
	}
	if (strncmp(text, HEADER, strlen(HEADER)))
		return -1;
	r->n = 0;
	for (line = text + strlen(HEADER); *line; line = next) {
		if (!(next = strchr(line, '\n')) || r->n > AUTHFAIL_ENTRIES)
			return -1;
		*next++ = '\0';
		e = &r->e[r->n++];
		if (sscanf(line, "%63s %u %lld", e->key, &e->count, &e->last) != 3)
			return -1;
	}
	return r->n && !strcmp(r->e[0].key, "*") ? 0 : -1;
}

static struct entry *
find(struct record *r, const char *key)
{
	size_t i;

	for (i = 1; i < r->n; i++)
		if (!strcmp(r->e[i].key, key))
			return &r->e[i];
	return NULL;
}

/* is a less suspicious than b: fewer failures, or as many but older */
static int
milder(const struct entry *a, const struct entry *b, long long now)
{
	unsigned da = decayed(a, now), db = decayed(b, now);

	return da < db || (da == db && a->last < b->last);
}

/* a line for key, making room by forgetting the least suspicious one */
static struct entry *
add(struct record *r, const char *key, long long now)
{
	size_t i, low = 1;
	struct entry *e;

	if ((e = find(r, key)))
		return e;
	if (r->n <= AUTHFAIL_ENTRIES)
		e = &r->e[r->n++];
	else {
		for (i = 2; i < r->n; i++)
			if (milder(&r->e[i], &r->e[low], now))
				low = i;
		e = &r->e[low];
	}
	snprintf(e->key, KEY_MAX, "%s", key);
	e->count = 0;
	e->last = now;
	return e;
}

static void
bump(struct entry *e, long long now)
{
	e->count = decayed(e, now) + 1;
	e->last = now;
}

static int
save(int fd, const struct record *r, long long now)
{
	struct buf b = { 0 };
	size_t i;
	int rc = 0;

	buf_adds(&b, HEADER);
	for (i = 0; i < r->n; i++)
		if (i == 0 || decayed(&r->e[i], now) > 0)
			buf_printf(&b, "%s %u %lld\n", r->e[i].key,
			    r->e[i].count, r->e[i].last);
	if (pwrite(fd, b.p, b.len, 0) != (ssize_t)b.len ||
	    ftruncate(fd, b.len) < 0)
		rc = -1;
	buf_free(&b);
	return rc;
}

/* open and lock the record and read it; -1 (logged) when it cannot be
 * used, with *fd still open when the file itself is there */
static int
load(const char *path, int *fd, struct record *r)
{
	char text[AUTHFAIL_ENTRIES * 100 + 64];
	ssize_t n;

	if ((*fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0600)) < 0 || flock(*fd, LOCK_EX) < 0) {
		logmsg(LOG_ERR, "failure record %s unusable: %s; using the "
		    "per-connection delay", path, strerror(errno));
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return -1;
	}
	n = pread(*fd, text, sizeof(text) - 1, 0);
	if (n < 0 || n == (ssize_t)sizeof(text) - 1 ||
	    (text[n] = '\0', parse(r, text) < 0)) {
		logmsg(LOG_ERR, "failure record %s is corrupt; using the "
		    "per-connection delay and starting it anew", path);
		return -1;
	}
	return 0;
}

long
authfail_begin(const char *path, const char *addr)
{
	static struct record r;
	char key[KEY_MAX];
	long long now = time(NULL);
	struct entry *e;
	long wait;
	int fd;

	address_key(key, addr);
	if (load(path, &fd, &r) < 0) {
		if (fd >= 0) {	/* heal: this failure alone from now on */
			reset(&r);
			bump(&r.e[0], now);
			bump(add(&r, key, now), now);
			save(fd, &r, now);
			close(fd);
		}
		return -1;
	}
	e = add(&r, key, now);
	wait = MAX(delay_after(decayed(e, now), AUTHFAIL_FREE),
	    delay_after(decayed(&r.e[0], now), AUTHFAIL_TOTAL_FREE));
	bump(e, now);
	bump(&r.e[0], now);
	if (save(fd, &r, now) < 0) {
		logmsg(LOG_ERR, "cannot write failure record %s: %s; using "
		    "the per-connection delay", path, strerror(errno));
		wait = -1;
	}
	close(fd);
	return wait;
}

void
authfail_clear(const char *path, const char *addr)
{
	static struct record r;
	char key[KEY_MAX];
	long long now = time(NULL);
	struct entry *e;
	int fd;

	address_key(key, addr);
	if (load(path, &fd, &r) < 0) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if ((e = find(&r, key))) {
		r.e[0].count -= MIN(r.e[0].count, e->count);
		*e = r.e[--r.n];
		save(fd, &r, now);
	}
	close(fd);
}
