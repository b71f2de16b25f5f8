/* msgcache.c: the message cache of a folder, "imapd-cache".
 *
 * What FETCH, SEARCH and SORT derive from a message's bytes (ENVELOPE,
 * BODYSTRUCTURE, header fields, sizes) is kept by UID under short keys,
 * so that the next session answers a header sync without opening a file.
 * The file is a log of entries, each holding every item known of one
 * message; the last entry of a UID wins:
 *	struct chead				magic, version, UIDVALIDITY
 *	struct cent, items, padding to 8	one message
 * An item is a key length (1 byte), a value length (4 bytes), the key and
 * the value.  An entry carries a hash of the message file's base name,
 * so an entry of another file (UIDs given anew) reads as a miss, and a
 * sum of its items, checked when the entry is first read, so a damaged
 * entry reads as a miss.  Opening the file walks the entries' heads; past
 * one that is not whole it looks for the next at the next 8-byte
 * boundary.  Writers append whole entries, a batch of them with one
 * write(), without a lock.  A file of another UIDVALIDITY, or one grown
 * past MSGCACHE_MAX or mostly dead, is rewritten (to a temporary name,
 * then renamed) by the process that opens it.  Deleting it costs only
 * time.
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
#define CACHE_MAGIC8	0x454843414350414dULL	/* "MAPCACHE" */
#define CACHE_VERSION	3
#define ENT_MAGIC	0x31544e45U		/* "ENT1" */
#define COMPACT_FLOOR	(1 << 20)	/* smaller files are left alone */
#define BATCH		(64 << 10)	/* entries written at once */

struct chead {
	uint64_t magic;
	uint32_t version, uidvalidity;
};

struct cent {
	uint32_t magic, uid, check, len, sum, spare;
};

struct msgcache {
	int fd;			/* appending, or -1: the cache is off */
	char *map;
	size_t maplen;
	struct htab slots;	/* UID (hashed one to one) -> offset */
	size_t live;		/* bytes of entries the slots name */
	size_t end;		/* the file's size as last seen */
	struct buf pend;	/* items of pend_uid not written yet */
	uint32_t pend_uid, pend_check;
	int pend_dirty;
	size_t memo_i, memo_off;	/* the entry entry_of found last ... */
	uint32_t memo_uid;
	const char *memo_map;	/* ... in this mapping, or NULL */
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

/* the entry at off, if whole in the mapping */
static const struct cent *
ent_in(const struct msgcache *c, size_t off)
{
	const struct cent *e;

	if (off + sizeof(*e) > c->maplen || off % 8)
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

/* A slot holds an entry's offset (a multiple of 8), with SUMMED set once
 * its sum was checked: each entry is summed at most once, when first
 * read, so opening a large cache costs a walk over the entries' heads. */
#define SUMMED	1U

static void
slot_set(struct msgcache *c, uint32_t uid, size_t off, size_t len)
{
	htab_set(&c->slots, uid_hash(uid), off);
	c->live += len;
	c->memo_map = NULL;
}

static size_t
slot_get(const struct msgcache *c, uint32_t uid)
{
	size_t pos = 0;
	uint32_t off;

	return htab_next(&c->slots, uid_hash(uid), &pos, &off) ? off : 0;
}

static int
remap(struct msgcache *c)
{
	struct stat sb;

	if (c->map)
		munmap(c->map, c->maplen);
	c->map = NULL;
	c->maplen = 0;
	c->memo_map = NULL;
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

/* every whole entry into the slots (its sum is checked when it is read);
 * damage is skipped 8 bytes at a time */
static void
index_entries(struct folder *f, struct msgcache *c)
{
	const struct cent *e;
	size_t off = sizeof(struct chead), bad = 0;

	htab_init(&c->slots, 512);
	c->live = 0;
	while (off + sizeof(*e) <= c->maplen) {
		if (!(e = ent_in(c, off))) {
			off += 8;
			bad++;
			continue;
		}
		if (folder_find(f, e->uid) >= 0)
			slot_set(c, e->uid, off, sizeof(*e) + e->len);
		off += pad8(sizeof(*e) + e->len);
	}
	if (bad)
		logmsg(LOG_WARNING, "%s/" CACHEFILE ": %zu damaged words "
		    "skipped", f->path, bad);
}

/* a fresh file of the folder's live entries (the newest first when it
 * must shrink), renamed over the old one; the old descriptor is closed */
static int
rewrite(struct folder *f, struct msgcache *c)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	struct chead h = { CACHE_MAGIC8, CACHE_VERSION, f->uidvalidity };
	struct buf b = { 0 };
	const struct cent *e;
	size_t i, off, n, total = sizeof(h);
	int fd, err = 0;

	if (pathf(tmp, "%s/" CACHEFILE ".%ld.tmp", f->path,
	    (long)getpid()) < 0 || pathf(path, "%s/" CACHEFILE, f->path) < 0 ||
	    (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) < 0)
		return -1;
	buf_add(&b, &h, sizeof(h));
	for (i = f->nmsgs; i-- > 0 && c->map && !err; ) {
		if (!(off = slot_get(c, f->msgs[i].uid) & ~(size_t)SUMMED) ||
		    !(e = ent_at(c, off)) || e->check != check_of(f, i))
			continue;
		n = pad8(sizeof(*e) + e->len);
		if ((total += n) > MSGCACHE_MAX / 2)
			break;
		buf_add(&b, e, n);
		if (b.len >= 65536) {
			err = write_all(fd, b.p, b.len);
			buf_reset(&b);
		}
	}
	if (!err)
		err = write_all(fd, b.p, b.len);
	if (close(fd) < 0)
		err = -1;
	if (err || rename(tmp, path) < 0) {
		unlink(tmp);
		buf_free(&b);
		return -1;
	}
	buf_free(&b);
	close(c->fd);
	c->end = 0;
	c->fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
	return c->fd < 0 ? -1 : 0;
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
	}
	index_entries(f, c);
	if (c->maplen > COMPACT_FLOOR && (c->maplen > MSGCACHE_MAX ||
	    c->live < c->maplen / 2)) {
		if (rewrite(f, c) < 0 || remap(c) < 0)
			return -1;
		index_entries(f, c);
	}
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

/* the written entry of message i, if it is this file's */
static const struct cent *
entry_of(struct folder *f, struct msgcache *c, size_t i)
{
	const struct cent *e;
	size_t off, summed;

	/* the items of one message are asked for one after another */
	if (c->memo_map && c->memo_map == c->map && c->memo_i == i &&
	    c->memo_uid == f->msgs[i].uid)
		return c->memo_off ? (const struct cent *)(c->map +
		    c->memo_off) : NULL;
	if (!(off = slot_get(c, f->msgs[i].uid)))
		return NULL;
	summed = off & SUMMED;
	off &= ~(size_t)SUMMED;
	/* entries never change in place: once summed, only the bounds are
	 * checked again (this process's own may lie past the mapping) */
	if (off + sizeof(*e) > c->maplen && remap(c) < 0)
		return NULL;
	if (!(e = ent_in(c, off)) && remap(c) == 0)
		e = ent_in(c, off);
	if (e && !summed) {
		if (sum_of(e + 1, e->len) == e->sum)
			htab_set(&c->slots, uid_hash(e->uid), off | SUMMED);
		else {
			logmsg(LOG_WARNING, "%s/" CACHEFILE ": %zu damaged "
			    "words skipped", f->path,
			    pad8(sizeof(*e) + e->len) / 8);
			e = NULL;
		}
	}
	if (e && (e->uid != f->msgs[i].uid || e->check != check_of(f, i)))
		e = NULL;
	c->memo_map = c->map;
	c->memo_i = i;
	c->memo_uid = f->msgs[i].uid;
	c->memo_off = e ? off : 0;
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
	htab_free(&c->slots);
	buf_free(&c->pend);
	buf_free(&c->out);
	free(c->outs);
	free(c);
	f->st->mc = NULL;
}
