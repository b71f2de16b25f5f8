/* savedate.c: SAVEDATE (RFC 8514), the moment a message entered its
 * mailbox.  A message that arrived as a file of its own (delivery,
 * APPEND) was saved when that file was born.  One that came by COPY or
 * MOVE is a hard link to the source's inode and carries the source's
 * birth time, so the destination keeps a line "uidvalidity uid time" per
 * such message in its imapd-savedates, appended and never rewritten. */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maildir.h"
#include "savedate.h"
#include "util.h"

#define SAVEDATE_FILE "imapd-savedates"
#define SAVEDATE_MAX (32 * 1024 * 1024)	/* read no more of it than this */

struct rec {
	uint32_t uid;
	time_t t;
};

/* the records of the last folder asked about, while its file is unchanged */
static struct {
	char path[PATH_MAX];
	uint32_t uidvalidity;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	struct rec *r;
	size_t n;
} cache;

int
savedate_add(const char *folder, uint32_t uidvalidity, const uint32_t *uids,
    size_t n, time_t t)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct buf b = { 0 };
	ssize_t w;
	size_t i;
	int fd, r = 0;

	if (mbox_dir(folder, dir) < 0)
		return -1;
	if (snprintf(path, sizeof(path), "%s/%s", dir, SAVEDATE_FILE) >=
	    (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (i = 0; i < n; i++)
		buf_printf(&b, "%u %u %lld\n", uidvalidity, uids[i],
		    (long long)t);
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0600)) < 0) {
		buf_free(&b);
		return -1;
	}
	/* one write: O_APPEND keeps the lines of two processes apart */
	if (b.len && (w = write(fd, b.p, b.len)) != (ssize_t)b.len) {
		if (w >= 0)
			errno = EIO;
		r = -1;
	}
	if (close(fd) < 0)
		r = -1;
	buf_free(&b);
	return r;
}

static int
rec_cmp(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* the records of this UID validity in the file's text */
static void
parse(const char *p, size_t len, uint32_t uidvalidity)
{
	size_t cap = 0;
	const char *e, *end = p + len;
	unsigned long v, uid;
	long long t;
	char *q;

	for (; p < end; p = e + 1) {
		if (!(e = memchr(p, '\n', end - p)))
			break;	/* a line still being written */
		v = strtoul(p, &q, 10);
		if (q == p || *q != ' ' || v != uidvalidity)
			continue;
		uid = strtoul(q + 1, &q, 10);
		if (*q != ' ' || uid == 0 || uid > UINT32_MAX)
			continue;
		t = strtoll(q + 1, &q, 10);
		if (q != e)
			continue;
		if (cache.n == cap)
			cache.r = xreallocarray(cache.r, cap = cap ? cap * 2 : 64,
			    sizeof(*cache.r));
		cache.r[cache.n].uid = uid;
		cache.r[cache.n++].t = (time_t)t;
	}
	qsort(cache.r, cache.n, sizeof(*cache.r), rec_cmp);
}

/* bring the cache up to the folder's file */
static void
load(struct folder *f)
{
	char path[PATH_MAX];
	struct stat st;
	char *text;
	ssize_t got;
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", f->path, SAVEDATE_FILE) >=
	    (int)sizeof(path) || stat(path, &st) < 0)
		memset(&st, 0, sizeof(st));
	if (!strcmp(cache.path, path) && cache.uidvalidity == f->uidvalidity &&
	    cache.dev == st.st_dev && cache.ino == st.st_ino &&
	    cache.size == st.st_size &&
	    cache.mtime.tv_sec == st.st_mtim.tv_sec &&
	    cache.mtime.tv_nsec == st.st_mtim.tv_nsec)
		return;
	free(cache.r);
	memset(&cache, 0, sizeof(cache));
	snprintf(cache.path, sizeof(cache.path), "%s", path);
	cache.uidvalidity = f->uidvalidity;
	cache.dev = st.st_dev;
	cache.ino = st.st_ino;
	cache.size = st.st_size;
	cache.mtime = st.st_mtim;
	if (!st.st_size || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	text = xmalloc(MIN(st.st_size, SAVEDATE_MAX) + 1);
	got = read(fd, text, MIN(st.st_size, SAVEDATE_MAX));
	close(fd);
	if (got > 0)
		parse(text, got, f->uidvalidity);
	free(text);
}

int
savedate_get(struct folder *f, size_t i, time_t *t)
{
	struct rec key, *r;

	if (i >= f->nmsgs) {
		errno = ENOENT;
		return -1;
	}
	load(f);
	key.uid = f->msgs[i].uid;
	if (cache.n && (r = bsearch(&key, cache.r, cache.n, sizeof(*r),
	    rec_cmp))) {
		*t = r->t;
		return 0;
	}
	return msg_born(f, i, t);
}
