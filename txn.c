/* txn.c: changing a folder's UID list: its lock, the records appended
 * under it (txn_write), the list's end remembered in the lock file so the
 * next writer need not read the list (cache_put, cache_get), the clock
 * and mtimes a scan stamp is taken from, and compaction. */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "maildir.h"
#include "store.h"

/* ---- the UID list: writing --------------------------------------------- */

void
txn_end(struct txn *t)
{
	int saved = errno;

	if (t->fd >= 0)
		close(t->fd);
	if (t->lockfd >= 0)
		close(t->lockfd);
	t->fd = t->lockfd = -1;
	buf_free(&t->out);
	errno = saved;
}

/* take the list's lock; without wait, only when it is free */
int
txn_lock_how(struct txn *t, const char *dir, int wait)
{
	char path[PATH_MAX];

	memset(t, 0, sizeof(*t));
	t->fd = t->lockfd = -1;
	if (pathf(path, "%s/" UIDLIST_LOCK, dir) < 0)
		return -1;
	if ((t->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return -1;
	if (wait ? lock_fd(t->lockfd) < 0 :
	    flock(t->lockfd, LOCK_EX | LOCK_NB) < 0) {
		txn_end(t);
		return -1;
	}
	return 0;
}

int
txn_lock(struct txn *t, const char *dir)
{
	return txn_lock_how(t, dir, 1);
}

/* open the list for appending (lock held); a last line without its
 * newline is what a crash left behind: cut it off */
int
txn_open(struct txn *t, const char *dir)
{
	char path[PATH_MAX], tail[4 * REC_MAX];
	off_t from;
	ssize_t k;

	if (pathf(path, "%s/" UIDLIST, dir) < 0 ||
	    (t->fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC)) < 0 ||
	    fstat(t->fd, &t->st) < 0)
		return -1;
	t->size = t->st.st_size;
	if (t->size == 0)
		goto corrupt;
	from = MAX(t->size - (off_t)sizeof(tail), 0);
	if ((k = pread(t->fd, tail, t->size - from, from)) != t->size - from)
		goto corrupt;
	while (k > 0 && tail[k - 1] != '\n')
		k--;
	if (k == 0)
		goto corrupt;
	if (from + k < t->size) {
		logmsg(LOG_WARNING, "%s: cutting a partial last line", path);
		if (ftruncate(t->fd, from + k) < 0)
			return -1;
		t->size = from + k;
	}
	return 0;
corrupt:
	logmsg(LOG_ERR, "%s: damaged, not touching it", path);
	errno = EIO;
	return -1;
}

void
rec_msg(struct txn *t, uint32_t uid, uint64_t modseq, const char *name)
{
	buf_printf(&t->out, "%u %llu %s\n", uid, (unsigned long long)modseq,
	    name);
}

void
rec_exp(struct txn *t, uint32_t first, uint32_t last, uint64_t modseq)
{
	if (first == last)
		buf_printf(&t->out, "E %u %llu\n", first,
		    (unsigned long long)modseq);
	else
		buf_printf(&t->out, "E %u-%u %llu\n", first, last,
		    (unsigned long long)modseq);
}

/* append the records in one write; all or nothing */
int
txn_write(struct txn *t)
{
	int saved;

	if (!t->out.len)
		return 0;
	if (write_all(t->fd, t->out.p, t->out.len) < 0 ||
	    (t->durable && fdatasync(t->fd) < 0)) {
		saved = errno;
		if (ftruncate(t->fd, t->size) < 0)
			logmsg(LOG_ERR, "cannot cut a failed append: %s",
			    strerror(errno));
		errno = saved;
		return -1;
	}
	t->size += t->out.len;
	buf_reset(&t->out);
	t->durable = 0;
	return 0;
}

int
ts_eq(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

int
ts_lt(struct timespec a, struct timespec b)
{
	return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec &&
	    a.tv_nsec < b.tv_nsec);
}

/* new/ or cur/ of a folder; a missing one reads as zeros */
int
dir_stat(const char *dir, const char *sub, struct stat *sb)
{
	char path[PATH_MAX];

	if (pathf(path, "%s/%s", dir, sub) < 0)
		return -1;
	if (stat(path, sb) == 0)
		return 0;
	memset(sb, 0, sizeof(*sb));
	return errno == ENOENT ? 0 : -1;
}

/* The file system's clock now, read by touching the lock file (lock held).
 * A directory whose mtime is below it cannot change again and keep that
 * mtime, whatever the time stamp granularity or a file server's clock. */
int
fs_now(struct txn *t, struct timespec *now)
{
	struct stat sb;

	if (futimens(t->lockfd, NULL) < 0 || fstat(t->lockfd, &sb) < 0)
		return -1;
	*now = sb.st_mtim;
	return 0;
}

/* a generation for a list file written whole: G in its header */
uint64_t
new_gen(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000U + ts.tv_nsec;
}

static uint64_t
cache_sum(uint64_t g, uint64_t o, uint64_t n, uint64_t m)
{
	uint64_t v[4], h = 14695981039346656037ULL;
	size_t i, j;

	v[0] = g;
	v[1] = o;
	v[2] = n;
	v[3] = m;
	for (i = 0; i < 4; i++)
		for (j = 0; j < 8; j++)
			h = (h ^ (v[i] >> 8 * j & 0xff)) * 1099511628211ULL;
	return h >> 1;	/* fits getnum */
}

/*
 * The lock file's one line
 *	imapd-uidlist-cache G<gen> O<offset> N<uidnext> M<modseq> C<sum>
 * says the list whose header carries G holds no UID at or above N and no
 * modseq above M before offset O.  It is written (lock held) only after a
 * durable append or a rewrite, so it is never ahead of what a crash
 * leaves; a list cut or rewritten since fails its checks, a torn line its
 * sum.
 */
void
cache_put(struct txn *t, uint64_t gen, off_t off, uint32_t uidnext,
    uint64_t modseq)
{
	char line[CACHE_LEN];
	int n;

	if (!gen)
		return;
	n = snprintf(line, sizeof(line), CACHE_MAGIC "G%llu O%llu N%u M%llu "
	    "C%llu", (unsigned long long)gen, (unsigned long long)off, uidnext,
	    (unsigned long long)modseq, (unsigned long long)cache_sum(gen, off,
	    uidnext, modseq));
	if (n < 0 || n >= CACHE_LEN - 1)
		return;
	/* fixed length: no tail of a longer line survives */
	memset(line + n, ' ', CACHE_LEN - 1 - n);
	line[CACHE_LEN - 1] = '\n';
	if (pwrite(t->lockfd, line, CACHE_LEN, 0) != CACHE_LEN)
		logmsg(LOG_WARNING, UIDLIST_LOCK ": %s", strerror(errno));
}

/* the cached maxima for the list with header head, if they hold: h gets
 * them, *off where reading must go on */
int
cache_get(struct txn *t, const struct hdr *head, struct hdr *h, off_t *off)
{
	char line[CACHE_LEN + 1], nl;
	const char *p, *end;
	uint64_t v[5];
	size_t mlen = strlen(CACHE_MAGIC);
	int i;

	if (!head->gen || pread(t->lockfd, line, CACHE_LEN, 0) != CACHE_LEN ||
	    line[CACHE_LEN - 1] != '\n' || strncmp(line, CACHE_MAGIC, mlen))
		return -1;
	end = line + CACHE_LEN - 1;
	for (p = line + mlen, i = 0; i < 5; i++) {
		if (p == end || *p++ != "GONMC"[i] || getnum(&p, end, &v[i]) < 0)
			return -1;
		while (p < end && *p == ' ')
			p++;
	}
	if (v[0] != head->gen || v[4] != cache_sum(v[0], v[1], v[2], v[3]) ||
	    v[1] > (uint64_t)t->size || v[2] > UINT32_MAX)
		return -1;
	/* it must end a line of this file */
	if (v[1] > 0 && (pread(t->fd, &nl, 1, v[1] - 1) != 1 || nl != '\n'))
		return -1;
	h->uidvalidity = head->uidvalidity;
	h->uidnext = MAX(head->uidnext, v[2]);
	h->modseq = MAX(head->modseq, v[3]);
	h->floor = head->floor;
	h->gen = head->gen;
	*off = v[1];
	return 0;
}
/* the lock file's "imapd-recent" line: the highest UID a session has
 * been told of; -1 when there is none */
long long
recent_read(int fd)
{
	char line[RECENT_LEN + 1];
	size_t mlen = strlen(RECENT_MAGIC);
	const char *p = line + mlen;
	uint64_t v;

	if (fd < 0 || pread(fd, line, RECENT_LEN, CACHE_LEN) != RECENT_LEN ||
	    line[RECENT_LEN - 1] != '\n' || strncmp(line, RECENT_MAGIC, mlen) ||
	    getnum(&p, line + RECENT_LEN - 1, &v) < 0 || v > UINT32_MAX)
		return -1;
	return v;
}


/* the highest modseq in the file, reading only what was appended since
 * we last looked: for changes made between two syncs */
int
txn_peek(struct folder *f, struct txn *t)
{
	struct store_state *st = f->st;
	struct buf b = { 0 };
	struct hdr h = { 0 };
	size_t used;

	if (st->peek_dev != t->st.st_dev || st->peek_ino != t->st.st_ino ||
	    st->peek_off > t->size)
		st->peek_off = 0;
	/* what msgs holds counts already: its maxima are f's */
	if (st->list_dev == t->st.st_dev && st->list_ino == t->st.st_ino &&
	    st->list_off <= t->size && st->list_off > st->peek_off) {
		st->peek_dev = st->list_dev;
		st->peek_ino = st->list_ino;
		st->peek_off = st->list_off;
	}
	if (read_range(t->fd, st->peek_off, t->size, &b) < 0) {
		buf_free(&b);
		return -1;
	}
	h.modseq = st->peek_modseq;
	h.uidnext = st->peek_uidnext;
	if ((used = scan_maxima(b.p, b.len, st->peek_off == 0, &h)) ==
	    (size_t)-1) {
		buf_free(&b);
		errno = EIO;
		return -1;
	}
	st->peek_dev = t->st.st_dev;
	st->peek_ino = t->st.st_ino;
	st->peek_off += used;
	st->peek_modseq = MAX(h.modseq, f->highestmodseq);
	st->peek_uidnext = MAX(h.uidnext, f->uidnext);
	buf_free(&b);
	return 0;
}

/* rewrite the list without dead records (lock held, msgs up to date) */
int
list_compact(struct folder *f, struct txn *t)
{
	struct store_state *st = f->st;
	struct buf b = { 0 };
	char path[PATH_MAX];
	uint64_t gen = new_gen();
	size_t i;
	int fd;

	hist_merge(f);
	buf_printf(&b, UIDLIST_MAGIC "V%u N%u M%llu H%llu G%llu\n",
	    f->uidvalidity, f->uidnext, (unsigned long long)f->highestmodseq,
	    (unsigned long long)st->histfloor, (unsigned long long)gen);
	for (i = 0; i < st->nexp; i++) {
		if (st->exp[i].first == st->exp[i].last)
			buf_printf(&b, "E %u %llu\n", st->exp[i].first,
			    (unsigned long long)st->exp[i].modseq);
		else
			buf_printf(&b, "E %u-%u %llu\n", st->exp[i].first,
			    st->exp[i].last,
			    (unsigned long long)st->exp[i].modseq);
	}
	for (i = 0; i < f->nmsgs; i++)
		buf_printf(&b, "%u %llu %s\n", f->msgs[i].uid,
		    (unsigned long long)f->msgs[i].modseq,
		    mname(f, &f->msgs[i]));
	if (st->stamped)
		buf_printf(&b, "S %lld.%09ld %lld.%09ld\n",
		    (long long)st->st_new.tv_sec, (long)st->st_new.tv_nsec,
		    (long long)st->st_cur.tv_sec, (long)st->st_cur.tv_nsec);
	if (write_file(f->path, UIDLIST, b.p, b.len) < 0 ||
	    pathf(path, "%s/" UIDLIST, f->path) < 0 ||
	    (fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC)) < 0) {
		buf_free(&b);
		return -1;
	}
	close(t->fd);
	t->fd = fd;
	fstat(fd, &t->st);
	t->size = b.len;
	st->list_dev = st->peek_dev = t->st.st_dev;
	st->list_ino = st->peek_ino = t->st.st_ino;
	st->list_off = st->peek_off = t->size;
	st->nrecords = st->nexp + f->nmsgs + !!st->stamped;
	st->gen = gen;
	cache_put(t, gen, t->size, f->uidnext, f->highestmodseq);
	buf_free(&b);
	return 0;
}
