/* message.c: the messages of a folder: mapping and reading them, sizes
 * and ids, flags (renames in cur/), EXPUNGE, COPY and APPEND. */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "util.h"
#include "maildir.h"
#include "store.h"
#include "mutf7.h"

/* ---- messages ---------------------------------------------------------- */

#define SIZE_KEY	"Z"	/* RFC822.SIZE in the message cache */
#define DATE_KEY	"T"	/* the internal date (file mtime) there */

/* A message up to MSG_READ_MAX octets is read into this buffer rather
 * than mapped: one copy costs less than the page faults of a new mapping
 * and the TLB flush of its munmap.  One message at a time holds it (a
 * second mapped at once is mapped); it stays at the largest size read. */
#if MSG_READ_MAX >= (1 << 20)
#error "MSG_READ_MAX must stay under the message code's drop step (1 MB)"
#endif
static char *rbuf;
static size_t rcap;
static int rbusy;

/* message i was renamed by someone else: find it again by base name */
int
relocate(struct folder *f, size_t i)
{
	char base[NAME_MAX + 1];
	struct scan s = { 0 };
	const char *name = mname(f, &f->msgs[i]) + 4;
	size_t blen = base_len(name), j;

	msgs_thaw(f);
	snprintf(base, sizeof(base), "%.*s", (int)blen, name);
	if (scan_folder(&s, f->path) < 0)
		return -1;
	for (j = 0; j < s.n; j++) {
		if (s.e[j].blen == blen &&
		    !memcmp(ent_name(&s, j) + 4, base, blen)) {
			msg_setname(f, &f->msgs[i], ent_name(&s, j),
			    strlen(ent_name(&s, j)));
			scan_free(&s);
			return 0;
		}
	}
	scan_free(&s);
	errno = ENOENT;
	return -1;
}

int
msg_path(const struct folder *f, size_t i, char *path)
{
	return pathf(path, "%s/%s", f->path, mname(f, &f->msgs[i]));
}

/* The cur/ and new/ of the folder whose messages were opened last, kept
 * open: a message is opened by its name in them, not by a path walked
 * from the root each time (a header sync opens every file once). */
static char *dirpath;
static int mdirfd[2] = { -1, -1 };

static void
dirs_close(void)
{
	int k;

	for (k = 0; k < 2; k++) {
		if (mdirfd[k] >= 0)
			close(mdirfd[k]);
		mdirfd[k] = -1;
	}
	free(dirpath);
	dirpath = NULL;
}

/* the open directory of f that holds name ("cur/..." or "new/..."), or
 * -1 */
static int
msg_dir(struct folder *f, const char *name)
{
	char path[PATH_MAX];
	int k;

	if (!strncmp(name, "cur/", 4))
		k = 0;
	else if (!strncmp(name, "new/", 4))
		k = 1;
	else
		return -1;
	if (!dirpath || strcmp(dirpath, f->path)) {
		dirs_close();
		dirpath = xstrdup(f->path);
	}
	if (mdirfd[k] < 0 && pathf(path, "%s/%.3s", f->path, name) == 0)
		mdirfd[k] = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return mdirfd[k];
}

/* open message i, following a rename by another process */
static int
msg_open(struct folder *f, size_t i)
{
	char path[PATH_MAX];
	const char *name;
	int fd, dir;

	if (i >= f->nmsgs) {
		errno = ENOENT;
		return -1;
	}
	name = mname(f, &f->msgs[i]);
	if ((dir = msg_dir(f, name)) >= 0 &&
	    (fd = openat(dir, name + 4, O_RDONLY | O_CLOEXEC)) >= 0)
		return fd;
	/* the directory may have been replaced since it was opened: the
	 * path decides, and the next open looks it up again */
	if (dir >= 0)
		dirs_close();
	if (msg_path(f, i, path) < 0)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0 || errno != ENOENT)
		return fd;
	if (relocate(f, i) < 0 || msg_path(f, i, path) < 0)
		return -1;
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* the len octets of fd into rbuf; -1 on a read error or a short file */
static int
read_whole(int fd, size_t len)
{
	size_t n = 0;
	ssize_t k;

	if (len > rcap) {
		free(rbuf);
		rbuf = xmalloc(len);
		rcap = len;
	}
	while (n < len) {
		if ((k = pread(fd, rbuf + n, len - n, n)) < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			errno = k < 0 ? errno : EIO;
			return -1;
		}
		n += k;
	}
	return 0;
}

int
msg_map(struct folder *f, size_t i, struct msgmap *mm)
{
	struct stat sb;
	void *p;
	int fd, saved;

	memset(mm, 0, sizeof(*mm));
	if ((fd = msg_open(f, i)) < 0)
		return -1;
	if (fstat(fd, &sb) < 0)
		goto fail;
	if ((uint64_t)sb.st_size > SIZE_MAX) {
		errno = EFBIG;
		goto fail;
	}
	mm->internaldate = sb.st_mtime;
	mm->len = sb.st_size;
	if (mm->len == 0) {
		mm->p = "";
	} else if (mm->len <= MSG_READ_MAX && !rbusy) {
		if (read_whole(fd, mm->len) < 0)
			goto fail;
		mm->p = rbuf;
		rbusy = 1;
	} else {
		p = mmap(NULL, mm->len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED)
			goto fail;
		mm->p = p;
	}
	close(fd);
	return 0;
fail:
	saved = errno;
	close(fd);
	memset(mm, 0, sizeof(*mm));
	errno = saved;
	return -1;
}

ssize_t
msg_head(struct folder *f, size_t i, char *buf, size_t max)
{
	size_t n = 0;
	ssize_t k;
	int fd, saved;

	if ((fd = msg_open(f, i)) < 0)
		return -1;
	while (n < max) {
		if ((k = pread(fd, buf + n, max - n, n)) < 0) {
			if (errno == EINTR)
				continue;
			saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
		if (k == 0)
			break;
		n += k;
	}
	close(fd);
	return n;
}

void
msg_unmap(struct msgmap *mm)
{
	if (mm->p && mm->p == rbuf && rbusy)
		rbusy = 0;
	else if (mm->p && mm->len)
		munmap((void *)mm->p, mm->len);
	mm->p = NULL;
	mm->len = 0;
}

/* RFC822.SIZE: the size with every bare LF counted as CRLF */
static int
count_vsize(int fd, uint64_t *vsize)
{
	char buf[65536];
	uint64_t n = 0;
	ssize_t k, j;
	int prev = 0;

	while ((k = read(fd, buf, sizeof(buf))) != 0) {
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (j = 0; j < k; j++) {
			if (buf[j] == '\n' && prev != '\r')
				n++;
			prev = buf[j];
		}
		n += k;
	}
	*vsize = n;
	return 0;
}

/* RFC822.SIZE when the name (",W="), this process or the message cache
 * knows it */
int
msg_size(struct folder *f, size_t i, uint64_t *size)
{
	uint64_t *slot;
	const char *v;
	size_t len;

	if (name_field(mname(f, &f->msgs[i]) + 4, 'W', size) == 0)
		return 0;
	if ((slot = vsize_slot(f->st, f->msgs[i].uid, 0))) {
		*size = *slot;
		return 0;
	}
	if ((v = msgcache_get(f, i, SIZE_KEY, &len)) && len == sizeof(*size)) {
		memcpy(size, v, sizeof(*size));
		*vsize_slot(f->st, f->msgs[i].uid, 1) = *size;
		return 0;
	}
	return -1;
}

/* the internal date the message cache knows: -1 when it does not */
static int
cached_date(struct folder *f, size_t i, time_t *date)
{
	const char *v;
	int64_t t;
	size_t len;

	if (!(v = msgcache_get(f, i, DATE_KEY, &len)) || len != sizeof(t))
		return -1;
	memcpy(&t, v, sizeof(t));
	*date = t;
	return 0;
}

static void
date_known(struct folder *f, size_t i, time_t date)
{
	int64_t t = date;

	msgcache_put(f, i, DATE_KEY, &t, sizeof(t));
}

/* a size counted: kept for this process and the next */
static void
size_known(struct folder *f, size_t i, uint64_t size)
{
	*vsize_slot(f->st, f->msgs[i].uid, 1) = size;
	msgcache_put(f, i, SIZE_KEY, &size, sizeof(size));
}

int
msg_info_mapped(struct folder *f, size_t i, const struct msgmap *mm,
    time_t *date, uint64_t *size)
{
	uint64_t lf, crlf;

	*date = mm->internaldate;
	date_known(f, i, *date);
	if (msg_size(f, i, size) == 0)
		return 0;
	/* a mapping is not walked whole: its pages would all stay */
	if (mm->p != rbuf || !rbusy)
		return msg_info(f, i, date, size);
	count_lf(mm->p, mm->len, &lf, &crlf);
	*size = mm->len + lf - crlf;
	size_known(f, i, *size);
	return 0;
}

int
msg_info(struct folder *f, size_t i, time_t *date, uint64_t *size)
{
	char path[PATH_MAX];
	struct stat sb;
	int fd, r;

	if (i >= f->nmsgs) {
		errno = ENOENT;
		return -1;
	}
	/* both from the message cache: no file is looked at (a file's
	 * mtime is set before it is named in cur/ or new/, and kept by
	 * renames; opening the cache reads its map, not its entries) */
	if (cached_date(f, i, date) == 0 && msg_size(f, i, size) == 0)
		return 0;
	if (msg_path(f, i, path) < 0)
		return -1;
	if (stat(path, &sb) < 0) {
		if (errno != ENOENT || relocate(f, i) < 0 ||
		    msg_path(f, i, path) < 0 || stat(path, &sb) < 0)
			return -1;
	}
	*date = sb.st_mtime;
	date_known(f, i, *date);
	if (msg_size(f, i, size) == 0)
		return 0;
	/* nobody knows it yet: read the file once */
	if ((fd = msg_open(f, i)) < 0)
		return -1;
	if ((r = count_vsize(fd, size)) == 0)
		size_known(f, i, *size);
	close(fd);
	return r;
}

int
folder_keyword(struct folder *f, const char *name, int create)
{
	struct txn t;
	int k;

	if ((k = kw_index(f->kw, name)) >= 0 || !create)
		return k;
	if (!*name || strpbrk(name, " \t\r\n")) {
		errno = EINVAL;
		return -1;
	}
	if (txn_lock(&t, f->path) < 0)
		return -1;
	/* another process may have added it, or others, meanwhile */
	if (kw_refresh(f, 1) < 0)
		k = -1;
	else if ((k = kw_index(f->kw, name)) < 0) {
		if ((k = kw_add(f->kw, name)) < 0)
			errno = ENOSPC;
		else if (kw_save(f->path, f->kw) < 0) {
			free(f->kw[k]);
			f->kw[k] = NULL;
			k = -1;
		}
		f->nkw = kw_count(f->kw);
		if (k >= 0)
			kw_refresh(f, 1);
	}
	txn_end(&t);
	return k;
}

/* a modseq above every one in the file (lock held) */
static uint64_t
next_modseq(struct folder *f)
{
	struct store_state *st = f->st;

	st->peek_modseq = MAX(st->peek_modseq, f->highestmodseq) + 1;
	f->highestmodseq = st->peek_modseq;
	return st->peek_modseq;
}

/* append the records of a change already made on disk: a lost record
 * only costs a rescan, so it is logged and the folder marked for one */
static void
record_write(struct folder *f, struct txn *t)
{
	if (txn_write(t) < 0) {
		logmsg(LOG_WARNING, "%s/" UIDLIST ": %s", f->path,
		    strerror(errno));
		f->st->dirty = 1;
	} else {
		f->st->peek_off = t->size;
	}
}

int
folder_setflags(struct folder *f, size_t i, uint32_t flags, uint32_t kw)
{
	char nname[NAME_MAX + 8], from[PATH_MAX], to[PATH_MAX];
	uint32_t oldfl, oldkw, fl, k, cur, curkw;
	struct msg *m;
	struct txn t;
	int tries, r = -1;

	if (i >= f->nmsgs) {
		errno = ENOENT;
		return -1;
	}
	msgs_thaw(f);
	flags &= FL_SYSTEM;
	/* the caller computed flags from what it knew; another process may
	 * have changed the message since: apply the difference, so its
	 * change is not undone */
	oldfl = f->msgs[i].flags & FL_SYSTEM;
	oldkw = f->msgs[i].kw;
	if (txn_lock(&t, f->path) < 0)
		return -1;
	if (txn_open(&t, f->path) < 0 || txn_peek(f, &t) < 0)
		goto out;
	for (tries = 0;; tries++) {
		m = &f->msgs[i];
		/* the flags the file carries now (found again when another
		 * process renamed it) */
		fname_flags(f->kw, mname(f, m) + 4, &cur, &curkw);
		fl = ((cur & FL_SYSTEM) | (flags & ~oldfl)) & ~(oldfl & ~flags);
		k = (curkw | (kw & ~oldkw)) & ~(oldkw & ~kw);
		if (flag_name(f->kw, mname(f, m) + 4, fl, k, nname,
		    sizeof(nname)) < 0)
			goto out;
		if (!strcmp(nname, mname(f, m))) {
			r = 0;	/* already so */
			goto out;
		}
		if (msg_path(f, i, from) < 0 ||
		    pathf(to, "%s/%s", f->path, nname) < 0)
			goto out;
		if (rename(from, to) == 0)
			break;
		if (errno != ENOENT || tries || relocate(f, i) < 0)
			goto out;
	}
	m->modseq = next_modseq(f);
	rec_msg(&t, m->uid, m->modseq, nname);
	f->st->stale = 1;
	record_write(f, &t);
	msg_setname(f, m, nname, strlen(nname));
	msg_parse(f, m);
	r = 0;
out:
	txn_end(&t);
	return r;
}

int
folder_expunge(struct folder *f, size_t i)
{
	char path[PATH_MAX];
	struct txn t;
	int r = -1;

	if (i >= f->nmsgs) {
		errno = ENOENT;
		return -1;
	}
	msgs_thaw(f);
	if (txn_lock(&t, f->path) < 0)
		return -1;
	if (txn_open(&t, f->path) < 0 || txn_peek(f, &t) < 0 ||
	    msg_path(f, i, path) < 0)
		goto out;
	if (unlink(path) < 0) {
		if (errno != ENOENT)
			goto out;
		/* renamed meanwhile, or already gone: either way it goes */
		if (relocate(f, i) == 0 && (msg_path(f, i, path) < 0 ||
		    (unlink(path) < 0 && errno != ENOENT)))
			goto out;
	}
	rec_exp(&t, f->msgs[i].uid, f->msgs[i].uid, next_modseq(f));
	f->st->stale = 1;
	record_write(f, &t);
	r = 0;
out:
	txn_end(&t);
	return r;
}

static int
u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int
folder_vanished(struct folder *f, uint64_t since, uint32_t **out,
    size_t *np)
{
	struct store_state *st = f->st;
	uint32_t *v = NULL, u;
	size_t n = 0, cap = 0, i, o;

	*out = NULL;
	*np = 0;
	if (since < st->histfloor)
		return -1;
	for (i = 0; i < st->nexp; i++) {
		if (st->exp[i].modseq <= since)
			continue;
		for (u = st->exp[i].first; u <= st->exp[i].last &&
		    u < f->uidnext; u++) {
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				v = xreallocarray(v, cap, sizeof(*v));
			}
			v[n++] = u;
		}
	}
	if (n) {
		qsort(v, n, sizeof(*v), u32_cmp);
		for (i = o = 1; i < n; i++)
			if (v[i] != v[o - 1])
				v[o++] = v[i];
		n = o;
	}
	*out = v;
	*np = n;
	return 0;
}

/* ---- adding messages to a folder --------------------------------------- */

/* a folder messages are added to without loading it: lock held, its
 * header values and keywords known */
struct dst {
	char dir[PATH_MAX];
	struct txn t;
	struct hdr h;		/* maxima of the whole list */
	char *kw[KW_MAX];
	int kwdirty;
	int move;		/* rename the files in: MOVE, atomic per message */
};

static void
dst_end(struct dst *d)
{
	int saved = errno;

	txn_end(&d->t);
	kw_free(d->kw);
	errno = saved;
}

static int
dst_begin(struct dst *d, const char *name)
{
	struct buf b = { 0 };
	struct hdr head;
	char *nl;
	off_t off;
	int header = 1;

	memset(d, 0, sizeof(*d));
	d->t.fd = d->t.lockfd = -1;
	if (folder_dir(d->dir, name) < 0)
		return -1;
	if (!is_dir(d->dir)) {
		errno = ENOENT;
		return -1;
	}
	if (make_subdirs(d->dir) < 0 || list_ensure(d->dir, NULL) < 0 ||
	    txn_lock(&d->t, d->dir) < 0)
		return -1;
	if (txn_open(&d->t, d->dir) < 0 || kw_load(d->dir, d->kw, NULL) < 0 ||
	    read_range(d->t.fd, 0, MIN(d->t.size, REC_MAX), &b) < 0)
		goto fail;
	/* the cache spares reading the records it covers */
	off = 0;
	if ((nl = memchr(b.p, '\n', b.len)) &&
	    parse_header(b.p, nl, &head) == 0 &&
	    cache_get(&d->t, &head, &d->h, &off) == 0)
		header = 0;
	if (read_range(d->t.fd, off, d->t.size, &b) < 0)
		goto fail;
	if (scan_maxima(b.p, b.len, header, &d->h) == (size_t)-1) {
		errno = EIO;
		goto fail;
	}
	d->h.uidnext = MAX(d->h.uidnext, 1);
	buf_free(&b);
	return 0;
fail:
	buf_free(&b);
	dst_end(d);
	return -1;
}

/* keyword names to dst's letters, adding names it lacks; a keyword that
 * no longer fits is dropped */
static uint32_t
dst_keywords(struct dst *d, char *const *names, size_t n)
{
	uint32_t bits = 0;
	size_t i;
	int k;

	for (i = 0; i < n; i++) {
		if (!names[i] || !*names[i] || strpbrk(names[i], " \t\r\n"))
			continue;
		if ((k = kw_index(d->kw, names[i])) < 0) {
			if ((k = kw_add(d->kw, names[i])) < 0)
				continue;
			d->kwdirty = 1;
		}
		bits |= 1U << k;
	}
	return bits;
}

static void
uniq_base(char *buf, size_t sz)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	snprintf(buf, sz, "%lld.M%ldP%ldQ%lu.%.100s", (long long)tv.tv_sec,
	    (long)tv.tv_usec, (long)getpid(), ++uniqcount, host);
}

/* the name of a new file: in cur/ with its flags, or in new/ when it has
 * none, so that the next session sees it \Recent */
static int
final_name(struct dst *d, const char *base, uint64_t size, int vknown,
    uint64_t vsize, uint32_t flags, uint32_t kw, char *out, size_t outsz)
{
	char b[NAME_MAX + 1];
	int n;

	if (vknown)
		n = snprintf(b, sizeof(b), "%s,S=%llu,W=%llu", base,
		    (unsigned long long)size, (unsigned long long)vsize);
	else
		n = snprintf(b, sizeof(b), "%s,S=%llu", base,
		    (unsigned long long)size);
	if (n < 0 || (size_t)n >= sizeof(b)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (flags || kw)
		return flag_name(d->kw, b, flags, kw, out, outsz);
	n = snprintf(out, outsz, "new/%s", b);
	if (n < 0 || (size_t)n >= outsz) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* place from into dst under a fresh unique name: a hard link, or for MOVE
 * a rename, so that a crash at any moment leaves the message in exactly
 * one folder; EXDEV and friends are the caller's to handle */
static int
link_new(struct dst *d, const char *from, uint64_t size, int vknown,
    uint64_t vsize, uint32_t flags, uint32_t kw, char *name, size_t namesz)
{
	char base[NAME_MAX + 1], to[PATH_MAX];
	int tries;

	for (tries = 0; tries < 100; tries++) {
		uniq_base(base, sizeof(base));
		if (final_name(d, base, size, vknown, vsize, flags, kw, name,
		    namesz) < 0 || pathf(to, "%s/%s", d->dir, name) < 0)
			return -1;
		if (d->move && renameat2(AT_FDCWD, from, AT_FDCWD, to,
		    RENAME_NOREPLACE) == 0)
			return 0;
		if (d->move && errno == EINVAL) {	/* not on this fs */
			d->move = 0;
			tries--;
			continue;
		}
		/* following the link: from may be /proc/self/fd/N */
		if (!d->move && linkat(AT_FDCWD, from, AT_FDCWD, to,
		    AT_SYMLINK_FOLLOW) == 0)
			return 0;
		if (errno != EEXIST)
			return -1;
	}
	return -1;
}

static int
unlink_names(const char *dir, char **names, size_t n)
{
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < n; i++)
		if (pathf(path, "%s/%s", dir, names[i]) == 0)
			unlink(path);
	return -1;
}

/* fsync the directories new files went into */
static int
dst_sync_dirs(struct dst *d)
{
	char path[PATH_MAX];

	if (pathf(path, "%s/cur", d->dir) < 0 || fsync_path(path) < 0 ||
	    pathf(path, "%s/new", d->dir) < 0 || fsync_path(path) < 0)
		return -1;
	return 0;
}

/* UIDs for the files just placed, in one durable append */
static int
dst_assign(struct dst *d, char **names, size_t n, uint32_t *uids)
{
	size_t i;

	if (d->h.uidnext > UINT32_MAX - n) {
		errno = EOVERFLOW;
		return -1;
	}
	for (i = 0; i < n; i++) {
		uids[i] = d->h.uidnext++;
		rec_msg(&d->t, uids[i], ++d->h.modseq, names[i]);
	}
	d->t.durable = 1;
	if (txn_write(&d->t) < 0)
		return -1;
	cache_put(&d->t, d->h.gen, d->t.size, d->h.uidnext, d->h.modseq);
	return 0;
}

struct append *
append_begin(const char *folder)
{
	struct append *a;
	char dir[PATH_MAX], path[PATH_MAX];
	int tries;

	if (folder_dir(dir, folder) < 0)
		return NULL;
	if (!is_dir(dir)) {
		errno = ENOENT;
		return NULL;
	}
	if (make_subdirs(dir) < 0)
		return NULL;
	a = xcalloc(1, sizeof(*a));
	memcpy(a->dir, dir, sizeof(dir));
	a->folder = xstrdup(folder);
	uniq_base(a->base, sizeof(a->base));
#ifdef O_TMPFILE
	/* a file without a name: a process that dies half way through
	 * leaves nothing behind, not even in tmp/ */
	if (pathf(path, "%s/tmp", dir) == 0 &&
	    access("/proc/self/fd", X_OK) == 0 &&
	    (a->fd = open(path, O_TMPFILE | O_WRONLY | O_CLOEXEC,
	    0600)) >= 0) {
		a->anon = 1;
		return a;
	}
#endif
	for (tries = 0; tries < 100; tries++) {
		uniq_base(a->base, sizeof(a->base));
		if (pathf(path, "%s/tmp/%s", dir, a->base) < 0)
			break;
		if ((a->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600)) >= 0)
			return a;
		if (errno != EEXIST)
			break;
	}
	tries = errno;
	free(a->folder);
	free(a);
	errno = tries;
	return NULL;
}

static int
append_flush(struct append *a)
{
	if (!a->err && a->buflen && write_all(a->fd, a->buf, a->buflen) < 0)
		a->err = errno;
	a->buflen = 0;
	if (a->err) {
		errno = a->err;
		return -1;
	}
	return 0;
}

int
append_write(struct append *a, const void *p, size_t n)
{
	const char *c = p;
	size_t i, k;

	for (i = 0; i < n; i++) {
		if (c[i] == '\n' && !a->lastcr)
			a->vsize++;
		a->lastcr = c[i] == '\r';
	}
	a->size += n;
	a->vsize += n;
	while (n) {
		if (a->buflen == sizeof(a->buf) && append_flush(a) < 0)
			return -1;
		k = MIN(n, sizeof(a->buf) - a->buflen);
		memcpy(a->buf + a->buflen, c, k);
		a->buflen += k;
		c += k;
		n -= k;
	}
	return a->err ? (errno = a->err, -1) : 0;
}

void
append_abort(struct append *a)
{
	char path[PATH_MAX];
	int saved = errno;

	if (!a)
		return;
	if (a->fd >= 0)
		close(a->fd);
	if (!a->anon && pathf(path, "%s/tmp/%s", a->dir, a->base) == 0)
		unlink(path);
	free(a->folder);
	free(a);
	errno = saved;
}

int
append_commit(struct append *a, uint32_t flags, char *const *kw,
    size_t nkw, time_t date, uint32_t *uidvalidity, uint32_t *uid)
{
	char tmp[PATH_MAX], name[NAME_MAX + 8], *names[1];
	struct timespec ts[2];
	struct dst d;
	uint32_t bits;
	int r = -1;

	if (append_flush(a) < 0 || fsync(a->fd) < 0)
		goto out;
	if (date > 0) {
		ts[0].tv_sec = ts[1].tv_sec = date;
		ts[0].tv_nsec = ts[1].tv_nsec = 0;
		if (futimens(a->fd, ts) < 0)
			goto out;
	}
	if (a->anon) {
		if (pathf(tmp, "/proc/self/fd/%d", a->fd) < 0)
			goto out;
	} else {
		if (close(a->fd) < 0) {
			a->fd = -1;
			goto out;
		}
		a->fd = -1;
		if (pathf(tmp, "%s/tmp/%s", a->dir, a->base) < 0)
			goto out;
	}
	if (dst_begin(&d, a->folder) < 0)
		goto out;
	bits = dst_keywords(&d, kw, nkw);
	if ((d.kwdirty && kw_save(d.dir, d.kw) < 0) ||
	    link_new(&d, tmp, a->size, 1, a->vsize, flags & FL_SYSTEM, bits,
	    name, sizeof(name)) < 0) {
		dst_end(&d);
		goto out;
	}
	names[0] = name;
	if (dst_sync_dirs(&d) < 0 || dst_assign(&d, names, 1, uid) < 0) {
		unlink_names(d.dir, names, 1);
		dst_end(&d);
		goto out;
	}
	*uidvalidity = d.h.uidvalidity;
	dst_end(&d);
	r = 0;
out:
	append_abort(a);
	return r;
}

/* copy a file whose hard link is refused (another file system) */
static int
copy_file(const char *from, const char *dir, char *tmpname, size_t sz)
{
	char buf[65536], base[NAME_MAX + 1];
	struct timespec ts[2];
	struct stat sb;
	ssize_t k;
	int in, out = -1, saved;

	if ((in = open(from, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	uniq_base(base, sizeof(base));
	if (fstat(in, &sb) < 0 || pathf(tmpname, "%s/tmp/%s", dir, base) < 0 ||
	    (out = open(tmpname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) < 0)
		goto fail;
	while ((k = read(in, buf, sizeof(buf))) != 0) {
		if (k < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (write_all(out, buf, k) < 0)
			goto fail;
	}
	ts[0] = sb.st_atim;
	ts[1] = sb.st_mtim;
	if (fsync(out) < 0 || futimens(out, ts) < 0 || close(out) < 0) {
		out = -1;
		goto fail;
	}
	close(in);
	return 0;
fail:
	saved = errno;
	close(in);
	if (out >= 0) {
		close(out);
		unlink(tmpname);
	}
	errno = saved;
	return -1;
}

/* place one message of f into d; its new name lands in name */
static int
copy_one(struct folder *f, size_t i, struct dst *d, char *name, size_t sz)
{
	char from[PATH_MAX], tmp[PATH_MAX], *kwn[KW_MAX];
	const struct msg *m;
	struct stat sb;
	uint64_t size, vsize, *slot;
	uint32_t bits;
	int k, vknown, tries, r;
	size_t nk = 0;

	for (tries = 0;; tries++) {
		m = &f->msgs[i];
		if (msg_path(f, i, from) < 0)
			return -1;
		if (stat(from, &sb) == 0)
			break;
		if (errno != ENOENT || tries || relocate(f, i) < 0)
			return -1;
	}
	for (k = 0; k < KW_MAX; k++)
		if (m->kw & 1U << k && f->kw[k])
			kwn[nk++] = f->kw[k];
	bits = dst_keywords(d, kwn, nk);
	/* a keyword's letter has its name on disk before any file uses it:
	 * a crash in between must not leave a letter without a name */
	if (d->kwdirty) {
		if (kw_save(d->dir, d->kw) < 0)
			return -1;
		d->kwdirty = 0;
	}
	size = sb.st_size;
	vknown = name_field(mname(f, m) + 4, 'W', &vsize) == 0;
	if (!vknown && (slot = vsize_slot(f->st, m->uid, 0))) {
		vsize = *slot;
		vknown = 1;
	}
	if (link_new(d, from, size, vknown, vsize, m->flags & FL_SYSTEM, bits,
	    name, sz) == 0)
		return 0;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK &&
	    errno != ENOTSUP)
		return -1;
	if (copy_file(from, d->dir, tmp, sizeof(tmp)) < 0)
		return -1;
	r = link_new(d, tmp, size, vknown, vsize, m->flags & FL_SYSTEM, bits,
	    name, sz);
	unlink(tmp);
	return r;
}

/* a MOVE that failed half way: the files it renamed go back */
static void
unmove(struct folder *f, const size_t *idx, const char *dir, char **names,
    size_t n)
{
	char from[PATH_MAX], to[PATH_MAX];
	size_t i;

	for (i = 0; i < n; i++)
		if (pathf(from, "%s/%s", dir, names[i]) < 0 ||
		    msg_path(f, idx[i], to) < 0 || rename(from, to) < 0)
			logmsg(LOG_ERR, "MOVE: %s stays in %s", names[i], dir);
}

static int
place(struct folder *f, const size_t *idx, size_t n, const char *dst,
    uint32_t *uidvalidity, uint32_t *uids, int move)
{
	struct dst d;
	char **names;
	size_t i, done = 0;
	int r = -1;

	if (dst_begin(&d, dst) < 0)
		return -1;
	d.move = move;
	names = xcalloc(n + 1, sizeof(*names));
	for (i = 0; i < n; i++) {
		names[i] = xmalloc(NAME_MAX + 8);
		if (idx[i] >= f->nmsgs) {
			errno = ENOENT;
			goto out;
		}
		if (copy_one(f, idx[i], &d, names[i], NAME_MAX + 8) < 0)
			goto out;
		done++;
		if (store_progress)
			store_progress(done, n);
	}
	/* keyword letters must have their names before others see them;
	 * then the files must be on disk before their UIDs */
	if ((d.kwdirty && kw_save(d.dir, d.kw) < 0) || dst_sync_dirs(&d) < 0 ||
	    dst_assign(&d, names, n, uids) < 0)
		goto out;
	*uidvalidity = d.h.uidvalidity;
	r = 0;
out:
	if (r < 0 && move)
		unmove(f, idx, d.dir, names, done);
	else if (r < 0)
		unlink_names(d.dir, names, done);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	dst_end(&d);
	return r;
}
int
folder_copy(struct folder *f, const size_t *idx, size_t n, const char *dst,
    uint32_t *uidvalidity, uint32_t *uids)
{
	return place(f, idx, n, dst, uidvalidity, uids, 0);
}

int
folder_move(struct folder *f, const size_t *idx, size_t n, const char *dst,
    uint32_t *uidvalidity, uint32_t *uids)
{
	return place(f, idx, n, dst, uidvalidity, uids, 1);
}

