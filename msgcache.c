/* msgcache.c: the message cache of a folder, "imapd-cache".
 *
 * What FETCH, SEARCH and SORT derive from a message's bytes (ENVELOPE,
 * BODYSTRUCTURE, header fields, sizes) is kept by UID under short keys,
 * so that the next session answers a header sync without opening a file.
 * The file is a log of entries, each holding every item known of one
 * message; the last entry of a UID wins:
 *	struct chead				magic, version, UIDVALIDITY,
 *						generation
 *	struct cent, items, padding to 8	one message
 * An item is a key length (1 byte), a value length (4 bytes), the key and
 * the value.  An entry carries a hash of the message file's base name,
 * so an entry of another file (UIDs given anew) reads as a miss, and a
 * sum of its items, checked when the entry is first read, so a damaged
 * entry reads as a miss.  Writers append whole entries, a batch of them
 * with one write(), without a lock.  A file of another UIDVALIDITY, or
 * one grown past MSGCACHE_MAX or mostly dead, is rewritten (to a
 * temporary name, then renamed, under a new generation) by the process
 * that opens it.  Deleting it costs only time.
 *
 * Beside it, "imapd-cachemap" says where the entries are: the UID,
 * offset and size of the last entry of each message, sorted by UID, true
 * of the cache of its generation up to an offset (the entries after it
 * are walked when the cache is opened), with a sum over all of it.  So
 * opening a cache of 100,000 messages reads 1.2 MB instead of walking
 * 130 MB, and a single FETCH reads one entry.  Like the index, it is
 * written whole by any process that has walked a long tail (or rewritten
 * the cache) and renamed over the old one; one of another generation,
 * damaged or cut short is ignored, and deleting it costs one walk.
 *
 * A session's memory must not grow with the cache: the entries a
 * command asks for are read (pread) through a window of at most
 * WIN_MAX bytes, which grows while the reads go on in file order, as a
 * header sync's and SEARCH HEADER's do; the walk over the entries'
 * heads (when the map is missing or behind) and a rewrite go through a
 * mapping whose pages are given back after every CACHE_RSS bytes.  So
 * a header sync of 100,000 messages peaks at a few megabytes above its
 * SELECT, whatever the folder's size.
 */
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "util.h"
#include "maildir.h"
#include "store.h"

#define CACHEFILE	"imapd-cache"
#define CACHEMAP	"imapd-cachemap"
#define CACHE_MAGIC8	0x454843414350414dULL	/* "MAPCACHE" */
#define CACHE_VERSION	4
#define MAP_MAGIC8	0x50414d4548434143ULL	/* "CACHEMAP" */
#define MAP_VERSION	1
#define ENT_MAGIC	0x31544e45U		/* "ENT1" */
#define COMPACT_FLOOR	(1 << 20)	/* smaller files are left alone */
#define BATCH		(64 << 10)	/* entries written at once */
#define MAP_TAIL	(64 << 10)	/* bytes walked past the map: a new one */
#define CACHE_RSS	(4 << 20)	/* bytes read through the mapping
					 * before its pages are given back */

struct chead {
	uint64_t magic;
	uint32_t version, uidvalidity;
	uint64_t gen;		/* set anew whenever the file is written whole */
};

struct cent {
	uint32_t magic, uid, check, len, sum, spare;
};

/* imapd-cachemap: a head, then n struct where sorted by UID */
struct mhead {
	uint64_t magic;
	uint32_t version, uidvalidity;
	uint64_t gen;		/* the cache's it describes ... */
	uint64_t covered;	/* ... up to this offset */
	uint64_t live;		/* bytes of the entries it names */
	uint32_t n, spare;
	uint64_t sum;		/* of the head (with sum 0) and the records */
};

/* where the last entry of a UID is: its offset (with SUMMED once its sum
 * was checked) and the bytes it takes */
struct where {
	uint32_t uid, off, size;
};

struct msgcache {
	int fd;			/* appending, or -1: the cache is off */
	char *map;
	size_t maplen;
	size_t touched;		/* bytes read through map since last given back */
	uint64_t gen;		/* the file's */
	struct where *tab;	/* from the cache map, sorted by UID, and */
	size_t ntab, tabcap;	/* ... the entries of higher UIDs found since */
	size_t covered;		/* tab describes the file up to here */
	struct where *xt;	/* other entries found past covered, or written */
	size_t nxt, xtcap;
	struct htab slots;	/* UID (hashed one to one) -> index in xt + 1 */
	size_t walked;		/* every entry before this is in tab or xt */
	size_t live;		/* bytes of entries tab and xt name */
	size_t end;		/* the file's size as last seen */
	struct buf pend;	/* items of pend_uid not written yet */
	uint32_t pend_uid, pend_check;
	int pend_dirty;
	char *win;		/* win_len bytes of the file from win_off */
	size_t win_off, win_len, wincap;
	size_t win_want;	/* bytes the next read takes */
	int memo_ok;		/* memo_e is what entry_of found last ... */
	size_t memo_i;		/* ... for message memo_i, UID memo_uid */
	uint32_t memo_uid;
	const struct cent *memo_e;
	struct buf out;		/* whole entries not written yet */
	struct outent *outs;	/* ... which are these */
	size_t nouts, outcap;
};

/* an entry in msgcache.out: its slot is set once it is written */
struct outent {
	uint32_t uid;
	size_t off, len;
};

static uint32_t
fnv(uint32_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	while (n--)
		h = (h ^ *c++) * 16777619U;
	return h;
}

/* the sum of an entry's items */
static uint32_t
sum_of(const void *p, size_t n)
{
	uint64_t h = sum_bytes(p, n, CACHE_MAGIC8 ^ n);

	return h ^ h >> 32;
}

/* which file message i is: its base name, hashed */
static uint32_t
check_of(struct folder *f, size_t i)
{
	const char *b = mname(f, &f->msgs[i]) + 4;
	const char *c = strchr(b, ':');

	return fnv(2166136261U, b, c ? (size_t)(c - b) : strlen(b)) | 1;
}

static size_t
pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* n more bytes read through the mapping: past CACHE_RSS, its pages are
 * given back (a pointer into it stays good: the page comes back from the
 * file, which never changes in place) */
static void
touch(struct msgcache *c, size_t n)
{
	if ((c->touched += n) < CACHE_RSS)
		return;
	if (c->map)
		madvise(c->map, c->maplen, MADV_DONTNEED);
	c->touched = 0;
}

/* the entry at off, if whole in the mapping */
static const struct cent *
ent_in(const struct msgcache *c, size_t off)
{
	const struct cent *e;

	if (off < sizeof(struct chead) || off + sizeof(*e) > c->maplen ||
	    off % 8)
		return NULL;
	e = (const struct cent *)(c->map + off);
	if (e->magic != ENT_MAGIC || e->len > c->maplen - off - sizeof(*e))
		return NULL;
	return e;
}

/* the entry at off, if whole and sound */
static const struct cent *
ent_at(const struct msgcache *c, size_t off)
{
	const struct cent *e = ent_in(c, off);

	return e && sum_of(e + 1, e->len) == e->sum ? e : NULL;
}

/* a UID times an odd constant is a hash that names one UID */
static uint32_t
uid_hash(uint32_t uid)
{
	return uid * 2654435761U;
}

/* Each entry is summed at most once, when first read: its offset (a
 * multiple of 8) gets SUMMED. */
#define SUMMED	1U

static struct where *
tab_find(const struct msgcache *c, uint32_t uid)
{
	size_t lo = 0, hi = c->ntab, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (c->tab[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->ntab && c->tab[lo].uid == uid ? &c->tab[lo] : NULL;
}

/* where the last entry of uid is, or NULL */
static struct where *
slot_get(const struct msgcache *c, uint32_t uid)
{
	size_t pos = 0;
	uint32_t k;

	while (htab_next(&c->slots, uid_hash(uid), &pos, &k))
		if (c->xt[k - 1].uid == uid)
			return &c->xt[k - 1];
	return tab_find(c, uid);
}

/* a slot for uid, which has none: at the end of tab while UIDs come in
 * order (a first header sync, a walk), else in xt */
static struct where *
slot_add(struct msgcache *c, uint32_t uid)
{
	if (!c->ntab || uid > c->tab[c->ntab - 1].uid) {
		if (c->ntab == c->tabcap) {
			c->tabcap = c->tabcap ? 2 * c->tabcap : 256;
			c->tab = xreallocarray(c->tab, c->tabcap,
			    sizeof(*c->tab));
		}
		return &c->tab[c->ntab++];
	}
	if (c->nxt == c->xtcap) {
		c->xtcap = c->xtcap ? 2 * c->xtcap : 256;
		c->xt = xreallocarray(c->xt, c->xtcap, sizeof(*c->xt));
	}
	htab_set(&c->slots, uid_hash(uid), c->nxt + 1);
	return &c->xt[c->nxt++];
}

/* the entry of uid at off, size bytes in all, is its last */
static void
slot_set(struct msgcache *c, uint32_t uid, size_t off, size_t size)
{
	struct where *w = slot_get(c, uid);

	c->memo_ok = 0;
	if (w)
		c->live -= MIN(c->live, w->size);
	c->live += size;
	if (!w)
		w = slot_add(c, uid);
	w->uid = uid;
	w->off = off;
	w->size = size;
}

static int
remap(struct msgcache *c)
{
	struct stat sb;

	if (c->map)
		munmap(c->map, c->maplen);
	c->map = NULL;
	c->maplen = 0;
	c->touched = 0;
	if (fstat(c->fd, &sb) < 0)
		return -1;
	if (!sb.st_size)
		return 0;
	if ((size_t)sb.st_size > UINT32_MAX)
		return -1;
	c->map = mmap(NULL, sb.st_size, PROT_READ, MAP_SHARED, c->fd, 0);
	if (c->map == MAP_FAILED) {
		c->map = NULL;
		return -1;
	}
	c->maplen = sb.st_size;
	c->end = MAX(c->end, c->maplen);
	return 0;
}

/* the whole entries from walked to the end of the mapping into the
 * slots (their sums are checked when they are read); damage is skipped
 * 8 bytes at a time, an entry not whole yet (another process's batch
 * seen in part) ends the walk: the next one starts there */
static void
walk(struct folder *f, struct msgcache *c)
{
	const struct cent *e;
	size_t off = MAX(c->walked, sizeof(struct chead)), bad = 0, n;

	while (off + sizeof(*e) <= c->maplen) {
		if (!(e = ent_in(c, off))) {
			e = (const struct cent *)(c->map + off);
			if (off % 8 == 0 && e->magic == ENT_MAGIC &&
			    e->len <= MSGCACHE_MAX)
				break;
			off += 8;
			bad++;
			touch(c, 8);
			continue;
		}
		n = pad8(sizeof(*e) + e->len);
		if (folder_find(f, e->uid) >= 0)
			slot_set(c, e->uid, off, n);
		off += n;
		touch(c, n);
	}
	c->walked = off;
	if (bad)
		logmsg(LOG_WARNING, "%s/" CACHEFILE ": %zu damaged words "
		    "skipped", f->path, bad);
}

static uint64_t
map_sum(const struct mhead *h, const struct where *t)
{
	struct mhead z = *h;

	z.sum = 0;
	return sum_bytes(&z, sizeof(z), sum_bytes(t, (size_t)h->n *
	    sizeof(*t), MAP_MAGIC8));
}

/* the records of a cache map, if sound and of this cache */
static int
map_check(const struct msgcache *c, const struct mhead *h,
    const struct where *t)
{
	size_t i;

	if (map_sum(h, t) != h->sum)
		return -1;
	for (i = 0; i < h->n; i++)
		if ((i && t[i].uid <= t[i - 1].uid) || t[i].off % 8 ||
		    t[i].off < sizeof(struct chead) ||
		    t[i].size < sizeof(struct cent) ||
		    (uint64_t)t[i].off + t[i].size > c->maplen)
			return -1;
	return 0;
}

/* where the entries up to the map's offset are, from the cache map when
 * it is of this cache; else the cache is walked from its start */
static void
map_load(struct folder *f, struct msgcache *c)
{
	char path[PATH_MAX];
	struct mhead h;
	struct where *t;
	struct stat sb;
	int fd;

	if (pathf(path, "%s/" CACHEMAP, f->path) < 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	/* one of another generation is left by a rewrite: not damage */
	if (fstat(fd, &sb) < 0 || read_at(fd, &h, sizeof(h), 0) < 0 ||
	    h.magic != MAP_MAGIC8 || h.version != MAP_VERSION ||
	    h.uidvalidity != f->uidvalidity || h.gen != c->gen) {
		close(fd);
		return;
	}
	t = NULL;
	if ((uint64_t)sb.st_size != sizeof(h) + (uint64_t)h.n * sizeof(*t) ||
	    h.covered < sizeof(struct chead) || h.covered > c->maplen ||
	    read_at(fd, t = xreallocarray(NULL, (size_t)h.n + 1,
	    sizeof(*t)), (size_t)h.n * sizeof(*t), sizeof(h)) < 0 ||
	    map_check(c, &h, t) < 0) {
		logmsg(LOG_NOTICE, "%s: damaged or cut short: walking the "
		    "cache instead", path);
		free(t);
		close(fd);
		return;
	}
	close(fd);
	c->tab = t;
	c->ntab = h.n;
	c->tabcap = (size_t)h.n + 1;
	c->covered = c->walked = h.covered;
	c->live = MIN(h.live, c->maplen);
}

/* whether the cache file in the folder is still of generation gen (a
 * process that rewrote it writes the map of the new one) */
static int
is_current(struct folder *f, uint64_t gen)
{
	char path[PATH_MAX];
	struct chead h;
	int fd, r;

	if (pathf(path, "%s/" CACHEFILE, f->path) < 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	r = read_at(fd, &h, sizeof(h), 0) == 0 && h.magic == CACHE_MAGIC8 &&
	    h.gen == gen;
	close(fd);
	return r;
}

/* the cache map written anew from tab (to a temporary name, renamed);
 * the entries are taken as not summed yet, as the file has them */
static void
map_write(struct folder *f, struct msgcache *c)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	struct mhead h = { MAP_MAGIC8, MAP_VERSION, f->uidvalidity, c->gen,
	    c->covered, c->live, c->ntab, 0, 0 };
	size_t i;
	int fd, err;

	if (!is_current(f, c->gen) || pathf(tmp, "%s/" CACHEMAP ".%ld.tmp",
	    f->path, (long)getpid()) < 0 ||
	    pathf(path, "%s/" CACHEMAP, f->path) < 0)
		return;
	for (i = 0; i < c->ntab; i++)
		c->tab[i].off &= ~SUMMED;
	c->memo_ok = 0;
	h.sum = map_sum(&h, c->tab);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) < 0)
		return;
	err = write_all(fd, &h, sizeof(h)) < 0 ||
	    write_all(fd, c->tab, c->ntab * sizeof(*c->tab)) < 0;
	if (close(fd) < 0 || err || rename(tmp, path) < 0)
		unlink(tmp);
}

static int
by_uid(const void *a, const void *b)
{
	const struct where *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* tab and xt merged into one table of the folder's messages (an entry
 * of xt is the newer), walked to the end of the file first, and that
 * table written as the cache map; xt and its hash go first, so that
 * the memory of the three is never needed at once */
static void
map_save(struct folder *f, struct msgcache *c)
{
	struct where *t;
	size_t i, a = 0, b = 0, n = 0, m, live = 0;
	uint32_t u;

	if (remap(c) < 0)
		return;
	walk(f, c);
	htab_free(&c->slots);
	if (c->nxt)
		qsort(c->xt, c->nxt, sizeof(*c->xt), by_uid);
	m = MIN(f->nmsgs, c->ntab + c->nxt) + 1;
	t = xreallocarray(NULL, m, sizeof(*t));
	for (i = 0; i < f->nmsgs; i++) {
		u = f->msgs[i].uid;
		while (a < c->ntab && c->tab[a].uid < u)
			a++;
		while (b < c->nxt && c->xt[b].uid < u)
			b++;
		if (b < c->nxt && c->xt[b].uid == u)
			t[n] = c->xt[b];
		else if (a < c->ntab && c->tab[a].uid == u)
			t[n] = c->tab[a];
		else
			continue;
		live += t[n++].size;
	}
	free(c->tab);
	free(c->xt);
	c->xt = NULL;
	c->nxt = c->xtcap = 0;
	c->tab = t;
	c->ntab = n;
	c->tabcap = m;
	c->live = live;
	c->covered = c->walked;
	c->memo_ok = 0;
	map_write(f, c);
}

/* the entries to keep when the cache is rewritten: from message *first
 * on, the newest that fit in half of MSGCACHE_MAX */
static size_t
keep_from(struct folder *f, struct msgcache *c)
{
	const struct where *w;
	size_t i, total = sizeof(struct chead);

	for (i = f->nmsgs; i-- > 0; )
		if ((w = slot_get(c, f->msgs[i].uid)) &&
		    (total += w->size) > MSGCACHE_MAX / 2)
			return i + 1;
	return 0;
}

/* a fresh file of the folder's live entries in UID order (the newest
 * when it must shrink), of a new generation, renamed over the old one;
 * the old descriptor is closed, and the cache map written for the new */
static int
rewrite(struct folder *f, struct msgcache *c)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	struct chead h = { CACHE_MAGIC8, CACHE_VERSION, f->uidvalidity,
	    new_gen() };
	struct buf b = { 0 };
	const struct cent *e;
	const struct where *w;
	struct where *t;
	size_t i, n, nt = 0, total = sizeof(h);
	int fd, err = 0;

	if (pathf(tmp, "%s/" CACHEFILE ".%ld.tmp", f->path,
	    (long)getpid()) < 0 || pathf(path, "%s/" CACHEFILE, f->path) < 0 ||
	    (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) < 0)
		return -1;
	t = xreallocarray(NULL, f->nmsgs + 1, sizeof(*t));
	buf_add(&b, &h, sizeof(h));
	for (i = keep_from(f, c); i < f->nmsgs && c->map && !err; i++) {
		if (!(w = slot_get(c, f->msgs[i].uid)) ||
		    !(e = ent_at(c, w->off & ~(size_t)SUMMED)) ||
		    e->uid != f->msgs[i].uid || e->check != check_of(f, i))
			continue;
		n = pad8(sizeof(*e) + e->len);
		touch(c, n);
		t[nt].uid = e->uid;
		t[nt].off = total | SUMMED;
		t[nt++].size = n;
		total += n;
		buf_add(&b, e, n);
		if (b.len >= 65536) {
			err = write_all(fd, b.p, b.len);
			buf_reset(&b);
		}
	}
	if (!err)
		err = write_all(fd, b.p, b.len);
	buf_free(&b);
	if (close(fd) < 0)
		err = -1;
	if (err || rename(tmp, path) < 0) {
		unlink(tmp);
		free(t);
		return -1;
	}
	close(c->fd);
	free(c->tab);
	free(c->xt);
	htab_free(&c->slots);
	c->xt = NULL;
	c->nxt = c->xtcap = 0;
	c->tab = t;
	c->ntab = nt;
	c->tabcap = f->nmsgs + 1;
	c->gen = h.gen;
	c->covered = c->walked = c->live = total;
	c->end = 0;
	c->memo_ok = 0;
	c->win_len = 0;
	if ((c->fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC)) < 0)
		return -1;
	if (nt)
		map_write(f, c);
	return 0;
}

static int
cache_open(struct folder *f, struct msgcache *c)
{
	char path[PATH_MAX];
	const struct chead *h;

	if (pathf(path, "%s/" CACHEFILE, f->path) < 0 ||
	    (c->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC,
	    0600)) < 0 || remap(c) < 0)
		return -1;
	h = (const struct chead *)c->map;
	if (c->maplen < sizeof(*h) || h->magic != CACHE_MAGIC8 ||
	    h->version != CACHE_VERSION || h->uidvalidity != f->uidvalidity) {
		if (c->maplen)
			logmsg(LOG_NOTICE, "%s: of another UIDVALIDITY or "
			    "format: starting it afresh", path);
		if (c->map)
			munmap(c->map, c->maplen);
		c->map = NULL;
		c->maplen = 0;
		if (rewrite(f, c) < 0 || remap(c) < 0)
			return -1;
	} else {
		c->gen = h->gen;
		map_load(f, c);
	}
	walk(f, c);
	if (c->maplen > COMPACT_FLOOR && (c->maplen > MSGCACHE_MAX ||
	    c->live < c->maplen / 2)) {
		if (rewrite(f, c) < 0 || remap(c) < 0)
			return -1;
	} else if (c->walked - c->covered >= MAP_TAIL)
		map_save(f, c);
	return 0;
}

static struct msgcache *
cache_of(struct folder *f)
{
	struct msgcache *c = f->st->mc;

	if (c)
		return c->fd >= 0 ? c : NULL;
	c = f->st->mc = xcalloc(1, sizeof(*c));
	if (cache_open(f, c) < 0) {
		logmsg(LOG_WARNING, "%s/" CACHEFILE ": %s: not caching",
		    f->path, strerror(errno));
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		return NULL;
	}
	return c;
}

/* the value of key among items p..end, or NULL */
static const char *
item_find(const char *p, const char *end, const char *key, size_t *len)
{
	size_t klen = strlen(key), kl;
	uint32_t vl;

	while (end - p >= 5) {
		kl = (unsigned char)p[0];
		memcpy(&vl, p + 1, 4);
		if ((size_t)(end - p - 5) < kl + (size_t)vl)
			return NULL;
		if (kl == klen && !memcmp(p + 5, key, kl)) {
			*len = vl;
			return p + 5 + kl;
		}
		p += 5 + kl + vl;
	}
	return NULL;
}

/* Entries are read through a window, not the mapping: a walk over
 * many keeps one window's worth of memory, and reads them in large
 * pieces when it goes on in file order (as a header sync does: entries
 * are written in UID order); elsewhere it reads little more than the
 * entry. */
#define WIN_MIN		4096
#define WIN_MAX		(256 << 10)

/* the entry at off, size bytes, if whole: read into the window unless
 * it is there already */
static const struct cent *
ent_read(struct msgcache *c, size_t off, size_t size)
{
	const struct cent *e;
	size_t end = c->win_off + c->win_len, n, avail;
	ssize_t k;

	if (off < c->win_off || off + MAX(size, sizeof(*e)) > end) {
		/* reading on past the last window (the entry it cut short,
		 * or one a little after it): read more at once */
		if (c->win_len && off > c->win_off && off < end + c->win_want)
			c->win_want = MIN(2 * c->win_want, WIN_MAX);
		else
			c->win_want = WIN_MIN;
		n = MAX(pad8(size), c->win_want);
		if (n > c->wincap) {
			free(c->win);
			c->win = xmalloc(c->wincap = n);
		}
		c->memo_ok = 0;
		c->win_len = 0;
		while ((k = pread(c->fd, c->win, n, off)) < 0 && errno == EINTR)
			;
		if (k < 0)
			return NULL;
		c->win_off = off;
		c->win_len = k;
	}
	avail = c->win_off + c->win_len - off;
	e = (const struct cent *)(c->win + (off - c->win_off));
	if (avail < sizeof(*e) || e->magic != ENT_MAGIC ||
	    e->len > avail - sizeof(*e))
		return NULL;
	return e;
}

/* the written entry of message i, if it is this file's */
static const struct cent *
entry_of(struct folder *f, struct msgcache *c, size_t i)
{
	const struct cent *e;
	struct where *w;
	size_t off, summed;

	/* the items of one message are asked for one after another */
	if (c->memo_ok && c->memo_i == i && c->memo_uid == f->msgs[i].uid)
		return c->memo_e;
	if (!(w = slot_get(c, f->msgs[i].uid)))
		return NULL;
	summed = w->off & SUMMED;
	off = w->off & ~(size_t)SUMMED;
	/* entries never change in place: once summed, only the bounds are
	 * checked again */
	if ((e = ent_read(c, off, w->size)) && !summed) {
		if (sum_of(e + 1, e->len) == e->sum)
			w->off |= SUMMED;
		else
			e = NULL;
	}
	if (!e)
		logmsg(LOG_WARNING, "%s/" CACHEFILE ": %zu damaged words "
		    "skipped", f->path, (size_t)w->size / 8);
	if (e && (e->uid != f->msgs[i].uid || e->check != check_of(f, i)))
		e = NULL;
	c->memo_ok = 1;
	c->memo_e = e;
	c->memo_i = i;
	c->memo_uid = f->msgs[i].uid;
	return e;
}

const char *
msgcache_get(struct folder *f, size_t i, const char *key, size_t *len)
{
	struct msgcache *c;
	const struct cent *e;
	const char *v;

	if (i >= f->nmsgs || !(c = cache_of(f)))
		return NULL;
	if (c->pend_uid == f->msgs[i].uid && c->pend_check == check_of(f, i))
		return item_find(c->pend.p, c->pend.p + c->pend.len, key, len);
	if (!(e = entry_of(f, c, i)))
		return NULL;
	v = item_find((const char *)(e + 1), (const char *)(e + 1) + e->len,
	    key, len);
	return v;
}

/* each item of message i to fn until it returns nonzero; that value */
int
msgcache_each(struct folder *f, size_t i, int (*fn)(const char *key,
    size_t klen, const char *val, size_t len, void *arg), void *arg)
{
	struct msgcache *c;
	const struct cent *e;
	const char *p, *end;
	size_t kl;
	uint32_t vl;
	int r;

	if (i >= f->nmsgs || !(c = cache_of(f)))
		return 0;
	if (c->pend_uid == f->msgs[i].uid && c->pend_check == check_of(f, i)) {
		p = c->pend.p;
		end = p + c->pend.len;
	} else if ((e = entry_of(f, c, i))) {
		p = (const char *)(e + 1);
		end = p + e->len;
	} else
		return 0;
	for (; end - p >= 5; p += 5 + kl + vl) {
		kl = (unsigned char)p[0];
		memcpy(&vl, p + 1, 4);
		if ((size_t)(end - p - 5) < kl + (size_t)vl)
			break;
		if ((r = fn(p + 5, kl, p + 5 + kl, vl, arg)))
			return r;
	}
	return 0;
}

/* the pending items into the batch as a whole entry */
static void
pend_end(struct msgcache *c)
{
	struct cent e = { ENT_MAGIC, 0, 0, 0, 0, 0 };
	static const char zero[8];
	struct outent *o;

	if (!c->pend_dirty)
		return;
	c->pend_dirty = 0;
	e.uid = c->pend_uid;
	e.check = c->pend_check;
	e.len = c->pend.len;
	e.sum = sum_of(c->pend.p, c->pend.len);
	if (c->nouts == c->outcap) {
		c->outcap = c->outcap ? 2 * c->outcap : 64;
		c->outs = xreallocarray(c->outs, c->outcap, sizeof(*c->outs));
	}
	o = &c->outs[c->nouts++];
	o->uid = e.uid;
	o->off = c->out.len;
	buf_add(&c->out, &e, sizeof(e));
	buf_add(&c->out, c->pend.p, c->pend.len);
	buf_add(&c->out, zero, pad8(c->out.len) - c->out.len);
	o->len = c->out.len - o->off;
}

/* the batch appended with one write; its entries into the slots */
static void
out_write(struct msgcache *c)
{
	off_t end;
	size_t i, start;

	if (c->out.len && c->end + c->out.len <= MSGCACHE_MAX &&
	    write_all(c->fd, c->out.p, c->out.len) == 0 &&
	    (end = lseek(c->fd, 0, SEEK_CUR)) >= (off_t)c->out.len &&
	    (uint64_t)end <= UINT32_MAX) {
		start = end - c->out.len;
		for (i = 0; i < c->nouts; i++)
			slot_set(c, c->outs[i].uid, (start + c->outs[i].off) |
			    SUMMED, c->outs[i].len);
		/* nobody appended since the walk: no need to walk these */
		if (start == c->walked)
			c->walked = end;
		c->end = end;
	}
	buf_reset(&c->out);
	c->nouts = 0;
}

void
msgcache_flush(struct folder *f)
{
	struct msgcache *c = f->st ? f->st->mc : NULL;

	if (!c || c->fd < 0)
		return;
	pend_end(c);
	out_write(c);
	/* what this process added is found by the next without a walk */
	if (c->end > c->covered + MAP_TAIL)
		map_save(f, c);
}

/* the newest entry of the pending message in the batch not written yet */
static const struct cent *
batched(const struct msgcache *c)
{
	const struct cent *e;
	size_t i;

	for (i = c->nouts; i-- > 0; ) {
		e = (const struct cent *)(c->out.p + c->outs[i].off);
		if (e->uid == c->pend_uid)
			return e->check == c->pend_check ? e : NULL;
	}
	return NULL;
}

void
msgcache_put(struct folder *f, size_t i, const char *key, const void *val,
    size_t len)
{
	struct msgcache *c;
	const struct cent *e;
	size_t klen = strlen(key), have;
	uint32_t vl = len;

	if (i >= f->nmsgs || klen > 255 || len > UINT32_MAX ||
	    !(c = cache_of(f)))
		return;
	if (c->pend_uid != f->msgs[i].uid || c->pend_check != check_of(f, i)) {
		pend_end(c);
		if (c->out.len >= BATCH)
			out_write(c);
		buf_reset(&c->pend);
		c->pend_uid = f->msgs[i].uid;
		c->pend_check = check_of(f, i);
		/* the new entry replaces the old: it takes its items */
		if ((e = batched(c)) || (e = entry_of(f, c, i)))
			buf_add(&c->pend, e + 1, e->len);
	}
	if (item_find(c->pend.p, c->pend.p + c->pend.len, key, &have))
		return;
	buf_addc(&c->pend, klen);
	buf_add(&c->pend, &vl, 4);
	buf_add(&c->pend, key, klen);
	buf_add(&c->pend, val, len);
	c->pend_dirty = 1;
}

void
msgcache_close(struct folder *f)
{
	struct msgcache *c = f->st ? f->st->mc : NULL;

	if (!c)
		return;
	msgcache_flush(f);
	if (c->map)
		munmap(c->map, c->maplen);
	if (c->fd >= 0)
		close(c->fd);
	free(c->tab);
	free(c->xt);
	free(c->win);
	htab_free(&c->slots);
	buf_free(&c->pend);
	buf_free(&c->out);
	free(c->outs);
	free(c);
	f->st->mc = NULL;
}
