/* index.c: the binary index of a folder, "imapd-index".
 *
 * The text UID list stays the durable record; the index is a snapshot of
 * what a process holds after applying the list's first O bytes (list
 * generation G): the messages as fixed records, the expunge history, the
 * file names, the scan stamp and the header values.  A new process reads
 * it straight into memory and parses only the list's lines after O, so
 * SELECT costs what the folder holds in bytes, not what its text says.
 *
 * Layout (host byte order; the magic tells another order apart):
 *	struct ihead			version, sizes, G, O, header values
 *	struct irec	[nmsgs]		UID, flags, keywords, name, modseq,
 *					save date (0: unknown)
 *	struct expunged	[nexp]		expunge history
 *	names		[nameslen]	"cur/..." NUL-separated
 * ihead.sum covers everything after the header and the header itself
 * (with both sums 0); ihead.headsum the header alone, for STATUS, which
 * reads only the header and the records the list's tail names.  A file of another version, a foreign byte order, a
 * wrong size or sum is logged and ignored; the next sync writes a good
 * one.  It is written whole to a temporary name and renamed, by whichever
 * process has grown the list past the last index, with no lock: every
 * index any process writes is true of the list it names.  Deleting it
 * costs one parse of the list.
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
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "maildir.h"
#include "store.h"

#define INDEX		"imapd-index"
#define INDEX_MAGIC	0x58444e4950414d49ULL	/* "IMAPINDX" */
#define INDEX_VERSION	2
#define INDEX_TAIL	16384	/* list bytes worth a new index */
#define CHUNK		4096	/* records per read or write */
#define STATUS_TAIL	65536	/* list bytes STATUS applies to the header */
#define STATUS_UIDS	4096	/* UIDs the tail may name for that */

struct ihead {
	uint64_t magic;
	uint32_t version, headsize, recsize, stamped;
	uint64_t gen, listoff;	/* list G and the bytes described */
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq, histfloor, nrecords;
	uint32_t nmsgs, nexp;
	uint64_t nameslen;
	int64_t stamp[4];	/* new/ and cur/ mtimes: sec, nsec */
	uint32_t unseen, deleted;	/* counts of the records */
	uint64_t size, deleted_size;	/* RFC822.SIZE sums, when sized */
	uint32_t sized, spare;	/* every name tells its size (",W=") */
	uint64_t headsum;	/* of this header alone, sums at 0 */
	uint64_t sum;
};

struct irec {
	uint32_t uid, flags, kw, name;
	uint64_t modseq;
	uint32_t savedate;	/* when it came into this folder; 0: unknown */
	uint32_t spare;
};

/* a running checksum, fast on whole words */
static uint64_t
sum_add(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;
	uint64_t w;

	for (; n >= 8; n -= 8, c += 8) {
		memcpy(&w, c, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	while (n--)
		h = (h ^ *c++) * 0x100000001b3ULL;
	return h;
}

static int
read_at(int fd, void *p, size_t n, off_t off)
{
	ssize_t k;

	while (n) {
		if ((k = pread(fd, p, n, off)) <= 0) {
			if (k < 0 && errno == EINTR)
				continue;
			return -1;
		}
		p = (char *)p + k;
		n -= k;
		off += k;
	}
	return 0;
}

static int
head_ok(const struct ihead *ih, const struct hdr *h, off_t fsize,
    const char *path)
{
	const char *why = NULL;

	if (ih->magic != INDEX_MAGIC)
		why = "not an index of this machine";
	else if (ih->version != INDEX_VERSION ||
	    ih->headsize != sizeof(*ih) || ih->recsize != sizeof(struct irec))
		why = "older format";
	else if (fsize != (off_t)(sizeof(*ih) +
	    (uint64_t)ih->nmsgs * sizeof(struct irec) +
	    (uint64_t)ih->nexp * sizeof(struct expunged) + ih->nameslen))
		why = "truncated";
	if (why) {
		logmsg(LOG_WARNING, "%s: %s: rebuilding it", path, why);
		return 0;
	}
	/* an index of an older list, or of another incarnation: not an
	 * error, just out of date */
	return ih->gen == h->gen && ih->uidvalidity == h->uidvalidity;
}

/* the records into f->msgs, checked as they come */
static int
load_recs(struct folder *f, int fd, const struct ihead *ih, uint64_t *sum)
{
	struct irec *r = xreallocarray(NULL, CHUNK, sizeof(*r));
	off_t off = sizeof(*ih);
	uint32_t i, k, n, last = 0;
	struct msg *m;

	for (i = 0; i < ih->nmsgs; i += n) {
		n = MIN(CHUNK, ih->nmsgs - i);
		if (read_at(fd, r, n * sizeof(*r), off) < 0)
			goto fail;
		off += n * sizeof(*r);
		*sum = sum_add(*sum, r, n * sizeof(*r));
		for (k = 0; k < n; k++) {
			if (r[k].uid <= last || r[k].uid >= ih->uidnext ||
			    r[k].name >= ih->nameslen)
				goto fail;
			last = r[k].uid;
			m = &f->msgs[i + k];
			m->uid = r[k].uid;
			m->flags = r[k].flags;
			m->kw = r[k].kw;
			m->name = r[k].name;
			m->modseq = r[k].modseq;
		}
	}
	free(r);
	return 0;
fail:
	free(r);
	return -1;
}

static int
load_body(struct folder *f, int fd, const struct ihead *ih)
{
	struct store_state *st = f->st;
	struct ihead hz = *ih;
	uint64_t sum;
	size_t i;
	off_t off;

	hz.sum = 0;
	hz.headsum = 0;
	sum = sum_add(INDEX_MAGIC, &hz, sizeof(hz));

	if (st->msgscap < ih->nmsgs) {
		free(f->msgs);
		f->msgs = xreallocarray(NULL, ih->nmsgs, sizeof(*f->msgs));
		st->msgscap = ih->nmsgs;
	}
	if (load_recs(f, fd, ih, &sum) < 0)
		return -1;
	off = sizeof(*ih) + (off_t)ih->nmsgs * sizeof(struct irec);
	if (st->expcap < ih->nexp) {
		free(st->exp);
		st->exp = xreallocarray(NULL, ih->nexp, sizeof(*st->exp));
		st->expcap = ih->nexp;
	}
	if (ih->nexp && read_at(fd, st->exp, ih->nexp * sizeof(*st->exp),
	    off) < 0)
		return -1;
	if (ih->nexp)
		sum = sum_add(sum, st->exp, ih->nexp * sizeof(*st->exp));
	off += ih->nexp * sizeof(*st->exp);
	if (f->namescap < ih->nameslen + 1) {
		free(f->names);
		f->namescap = ih->nameslen + 4096;
		f->names = xmalloc(f->namescap);
	}
	if (read_at(fd, f->names, ih->nameslen, off) < 0)
		return -1;
	sum = sum_add(sum, f->names, ih->nameslen);
	if (ih->nameslen && f->names[ih->nameslen - 1] != '\0')
		return -1;
	for (i = 0; i < ih->nexp; i++)
		if (!st->exp[i].first || st->exp[i].last < st->exp[i].first)
			return -1;
	return sum == ih->sum ? 0 : -1;
}

int
index_load(struct folder *f, int listfd, const struct hdr *h, off_t size,
    off_t *off)
{
	struct store_state *st = f->st;
	char path[PATH_MAX], nl;
	struct ihead ih;
	struct stat sb;
	uint32_t i;
	int fd, r = -1;

	if (!h->gen || pathf(path, "%s/" INDEX, f->path) < 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(fd, &sb) < 0 || read_at(fd, &ih, sizeof(ih), 0) < 0) {
		logmsg(LOG_WARNING, "%s: unreadable: rebuilding it", path);
		goto out;
	}
	if (!head_ok(&ih, h, sb.st_size, path) || ih.listoff > (uint64_t)size)
		goto out;
	/* it must end a line of the list as it is now */
	if (ih.listoff > 0 && (pread(listfd, &nl, 1, ih.listoff - 1) != 1 ||
	    nl != '\n'))
		goto out;
	if (load_body(f, fd, &ih) < 0) {
		logmsg(LOG_WARNING, "%s: damaged: rebuilding it", path);
		goto out;
	}
	f->nmsgs = ih.nmsgs;
	f->nameslen = ih.nameslen;
	st->nexp = ih.nexp;
	st->expsorted = 0;
	st->gen = ih.gen;
	st->nrecords = ih.nrecords;
	st->histfloor = ih.histfloor;
	f->uidvalidity = ih.uidvalidity;
	f->uidnext = ih.uidnext;
	f->highestmodseq = ih.highestmodseq;
	st->stamped = ih.stamped;
	st->st_new.tv_sec = ih.stamp[0];
	st->st_new.tv_nsec = ih.stamp[1];
	st->st_cur.tv_sec = ih.stamp[2];
	st->st_cur.tv_nsec = ih.stamp[3];
	/* flags follow the names and the keywords as they are now */
	for (i = 0; i < ih.nmsgs; i++)
		msg_parse(f, &f->msgs[i]);
	st->idx_gen = ih.gen;
	st->idx_off = ih.listoff;
	*off = ih.listoff;
	r = 0;
out:
	close(fd);
	return r;
}

/* a writer that sums what it writes in whole words, as the reader does */
struct iw {
	int fd, err;
	struct buf b;
	uint64_t sum;
};

static void
iw_flush(struct iw *w, int all)
{
	size_t n = all ? w->b.len : w->b.len & ~(size_t)7;

	w->sum = sum_add(w->sum, w->b.p, n);
	if (!w->err && write_all(w->fd, w->b.p, n) < 0)
		w->err = errno ? errno : EIO;
	memmove(w->b.p, w->b.p + n, w->b.len - n);
	w->b.len -= n;
}

static void
iw_put(struct iw *w, const void *p, size_t n)
{
	buf_add(&w->b, p, n);
	if (w->b.len >= 65536)
		iw_flush(w, 0);
}

static void
head_fill(struct folder *f, struct ihead *ih)
{
	struct store_state *st = f->st;
	uint64_t size = 0;
	size_t i;

	memset(ih, 0, sizeof(*ih));
	ih->magic = INDEX_MAGIC;
	ih->version = INDEX_VERSION;
	ih->headsize = sizeof(*ih);
	ih->recsize = sizeof(struct irec);
	ih->gen = st->gen;
	ih->listoff = st->list_off;
	ih->uidvalidity = f->uidvalidity;
	ih->uidnext = f->uidnext;
	ih->highestmodseq = f->highestmodseq;
	ih->histfloor = st->histfloor;
	ih->nrecords = st->nrecords;
	ih->nexp = st->nexp;
	ih->stamped = st->stamped;
	ih->stamp[0] = st->st_new.tv_sec;
	ih->stamp[1] = st->st_new.tv_nsec;
	ih->stamp[2] = st->st_cur.tv_sec;
	ih->stamp[3] = st->st_cur.tv_nsec;
	ih->sized = 1;
	for (i = 0; i < f->nmsgs; i++) {
		if (f->msgs[i].flags & FL_GONE)
			continue;
		ih->nmsgs++;
		ih->nameslen += strlen(mname(f, &f->msgs[i])) + 1;
		ih->unseen += !(f->msgs[i].flags & FL_SEEN);
		ih->deleted += !!(f->msgs[i].flags & FL_DELETED);
		if (name_field(mname(f, &f->msgs[i]) + 4, 'W', &size) < 0)
			ih->sized = 0;
		ih->size += size;
		if (f->msgs[i].flags & FL_DELETED)
			ih->deleted_size += size;
	}
	if (!ih->sized)
		ih->size = ih->deleted_size = 0;
	ih->headsum = sum_add(INDEX_MAGIC, ih, sizeof(*ih));
}

static void
put_body(struct folder *f, struct iw *w)
{
	struct irec r;
	uint32_t name = 0;
	const char *p;
	size_t i;

	memset(&r, 0, sizeof(r));
	for (i = 0; i < f->nmsgs; i++) {
		if (f->msgs[i].flags & FL_GONE)
			continue;
		r.uid = f->msgs[i].uid;
		r.flags = f->msgs[i].flags & FL_SYSTEM;
		r.kw = f->msgs[i].kw;
		r.name = name;
		r.modseq = f->msgs[i].modseq;
		iw_put(w, &r, sizeof(r));
		name += strlen(mname(f, &f->msgs[i])) + 1;
	}
	if (f->st->nexp)
		iw_put(w, f->st->exp, f->st->nexp * sizeof(*f->st->exp));
	for (i = 0; i < f->nmsgs; i++) {
		if (f->msgs[i].flags & FL_GONE)
			continue;
		p = mname(f, &f->msgs[i]);
		iw_put(w, p, strlen(p) + 1);
	}
	iw_flush(w, 1);
}

void
index_save(struct folder *f)
{
	struct store_state *st = f->st;
	char tmp[PATH_MAX], path[PATH_MAX];
	struct iw w = { -1, 0, { 0 }, 0 };
	struct ihead ih, hz;

	if (!st->gen || !st->list_ino || (st->idx_gen == st->gen &&
	    st->list_off - st->idx_off < INDEX_TAIL))
		return;
	if (pathf(tmp, "%s/" INDEX ".%ld.tmp", f->path, (long)getpid()) < 0 ||
	    pathf(path, "%s/" INDEX, f->path) < 0 ||
	    (w.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) < 0)
		return;
	head_fill(f, &ih);
	hz = ih;
	hz.headsum = 0;
	w.sum = INDEX_MAGIC;
	iw_put(&w, &hz, sizeof(hz));
	put_body(f, &w);
	ih.sum = w.sum;
	if (!w.err && pwrite(w.fd, &ih, sizeof(ih), 0) != sizeof(ih))
		w.err = errno ? errno : EIO;
	if (close(w.fd) < 0 && !w.err)
		w.err = errno;
	if (w.err || rename(tmp, path) < 0) {
		logmsg(LOG_WARNING, "%s: %s", path, strerror(w.err ? w.err :
		    errno));
		unlink(tmp);
	} else {
		st->idx_gen = st->gen;
		st->idx_off = st->list_off;
	}
	buf_free(&w.b);
}

/* ---- STATUS from the header -------------------------------------------- */

/* a UID the list's tail names: its state now */
struct tuid {
	uint32_t uid, flags;
	uint64_t size;
	int live, gone;		/* gone: expunged in the tail */
};

struct tstat {
	const struct ihead *ih;
	const struct irec *rec;	/* the index's records, mapped */
	const char *names;
	struct tuid *u;
	size_t nu;
	struct mboxstatus *s;
	int sized;		/* every size known so far */
};

/* the first of the index's records with a UID >= uid */
static size_t
rec_lower(const struct tstat *ts, uint32_t uid)
{
	size_t lo = 0, hi = ts->ih->nmsgs, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (ts->rec[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uint64_t
name_size(struct tstat *ts, const char *name)
{
	uint64_t v;

	if (name_field(name + 4, 'W', &v) == 0)
		return v;
	ts->sized = 0;
	return 0;
}

/* a message's part of the counts, added (sign 1) or taken away (-1) */
static void
count(struct mboxstatus *s, const struct tuid *u, int sign)
{
	s->messages += sign;
	s->unseen += sign * !(u->flags & FL_SEEN);
	s->deleted += sign * !!(u->flags & FL_DELETED);
	s->size += sign * (int64_t)u->size;
	if (u->flags & FL_DELETED)
		s->deleted_size += sign * (int64_t)u->size;
}

/* the tail's entry of uid, made from the index's record when first
 * named; NULL when there are too many */
static struct tuid *
tuid_of(struct tstat *ts, uint32_t uid)
{
	const struct irec *r;
	struct tuid *u;
	size_t i;

	for (i = 0; i < ts->nu; i++)
		if (ts->u[i].uid == uid)
			return &ts->u[i];
	if (ts->nu == STATUS_UIDS)
		return NULL;
	u = &ts->u[ts->nu++];
	memset(u, 0, sizeof(*u));
	u->uid = uid;
	i = rec_lower(ts, uid);
	if (i < ts->ih->nmsgs && (r = &ts->rec[i])->uid == uid) {
		u->live = 1;
		u->flags = r->flags & FL_SYSTEM;
		u->size = name_size(ts, ts->names + r->name);
	}
	return u;
}

static void
gone(struct tstat *ts, struct tuid *u)
{
	if (u->live)
		count(ts->s, u, -1);
	u->live = 0;
	u->gone = 1;
}

/* an expunge record: the index's messages in its range, then the
 * tail's own */
static int
tail_expunge(struct tstat *ts, const struct rec *r)
{
	struct tuid *u;
	size_t i, n = ts->nu;

	for (i = rec_lower(ts, r->uid); i < ts->ih->nmsgs &&
	    ts->rec[i].uid <= r->last; i++) {
		if (!(u = tuid_of(ts, ts->rec[i].uid)))
			return -1;
		gone(ts, u);
	}
	for (i = 0; i < n; i++)
		if (ts->u[i].uid >= r->uid && ts->u[i].uid <= r->last)
			gone(ts, &ts->u[i]);
	return 0;
}

/* one line of the tail into the counts; -1 for what only a full load
 * can tell */
static int
tail_apply(struct tstat *ts, const struct rec *r)
{
	static char *const nokw[KW_MAX];
	char name[REC_MAX + 1];
	struct tuid *u;
	uint32_t kw;

	if (r->type == 'S')
		return 0;
	if (r->modseq > ts->s->highestmodseq)
		ts->s->highestmodseq = r->modseq;
	if (r->last >= ts->s->uidnext)
		ts->s->uidnext = r->last + 1;
	if (r->type == 'E')
		return tail_expunge(ts, r);
	if (!(u = tuid_of(ts, r->uid)))
		return -1;
	if (u->gone)
		return 0;
	/* below the index's UIDNEXT but not in it: expunged before it was
	 * written, which its history would have to say */
	if (!u->live && r->uid < ts->ih->uidnext)
		return -1;
	if (u->live)
		count(ts->s, u, -1);
	memcpy(name, r->name, r->namelen);
	name[r->namelen] = '\0';
	fname_flags(nokw, name + 4, &u->flags, &kw);
	u->flags &= FL_SYSTEM;
	u->size = name_size(ts, name);
	u->live = 1;
	count(ts->s, u, 1);
	return 0;
}

/* live messages above the highest UID a session has been told of */
static int
tail_recent(struct tstat *ts, long long told)
{
	size_t i, k, first = rec_lower(ts, told + 1);
	int live;

	if (ts->ih->nmsgs - first > STATUS_UIDS)
		return -1;
	for (i = first; i < ts->ih->nmsgs; i++) {
		live = 1;
		for (k = 0; k < ts->nu; k++)
			if (ts->u[k].uid == ts->rec[i].uid)
				live = ts->u[k].live;
		ts->s->recent += live;
	}
	for (k = 0; k < ts->nu; k++)
		ts->s->recent += ts->u[k].live && ts->u[k].uid > told &&
		    ts->u[k].uid >= ts->ih->uidnext;
	return 0;
}

/* the index's header, if sound and of list generation gen */
static int
status_head(int fd, struct ihead *ih, const struct hdr *h, off_t lsize)
{
	struct ihead hz;
	struct stat sb;

	if (fstat(fd, &sb) < 0 || read_at(fd, ih, sizeof(*ih), 0) < 0 ||
	    ih->magic != INDEX_MAGIC || ih->version != INDEX_VERSION ||
	    ih->headsize != sizeof(*ih) || ih->recsize != sizeof(struct irec))
		return -1;
	hz = *ih;
	hz.sum = hz.headsum = 0;
	if (sum_add(INDEX_MAGIC, &hz, sizeof(hz)) != ih->headsum ||
	    sb.st_size != (off_t)(sizeof(*ih) +
	    (uint64_t)ih->nmsgs * sizeof(struct irec) +
	    (uint64_t)ih->nexp * sizeof(struct expunged) + ih->nameslen) ||
	    ih->gen != h->gen || ih->uidvalidity != h->uidvalidity ||
	    ih->listoff > (uint64_t)lsize ||
	    lsize - ih->listoff > STATUS_TAIL)
		return -1;
	return 0;
}

/* the list's lines after the index into the counts */
static int
status_tail(struct tstat *ts, const char *p, const char *end)
{
	const char *nl;
	struct rec r;

	for (; p < end && (nl = memchr(p, '\n', end - p)); p = nl + 1)
		if (parse_rec(p, nl, &r) < 0 || tail_apply(ts, &r) < 0)
			return -1;
	return 0;
}

/* the directories are as the list's last scan stamp (in the tail, else
 * the index's) says */
static int
status_stamped(const char *dir, const struct ihead *ih, const char *p,
    const char *end)
{
	struct timespec stamp[2];
	struct stat sn, sc;
	const char *nl;
	struct rec r;

	stamp[0].tv_sec = ih->stamp[0];
	stamp[0].tv_nsec = ih->stamp[1];
	stamp[1].tv_sec = ih->stamp[2];
	stamp[1].tv_nsec = ih->stamp[3];
	for (; p < end && (nl = memchr(p, '\n', end - p)); p = nl + 1)
		if (*p == 'S' && parse_rec(p, nl, &r) == 0) {
			stamp[0] = r.stamp[0];
			stamp[1] = r.stamp[1];
		}
	return dir_stat(dir, "new", &sn) == 0 && dir_stat(dir, "cur",
	    &sc) == 0 && ts_eq(sn.st_mtim, stamp[0]) &&
	    ts_eq(sc.st_mtim, stamp[1]);
}

int
index_status(const char *dir, struct mboxstatus *s, int want_size)
{
	char path[PATH_MAX], line[REC_MAX + 1], *nl;
	struct tstat ts = { 0 };
	struct buf tail = { 0 };
	struct ihead ih;
	struct stat lsb;
	struct hdr h;
	void *map = MAP_FAILED;
	size_t maplen = 0;
	ssize_t k;
	long long told;
	int lfd = -1, ifd = -1, r = -1;

	if (pathf(path, "%s/" UIDLIST, dir) < 0 ||
	    (lfd = open(path, O_RDONLY | O_CLOEXEC)) < 0 ||
	    fstat(lfd, &lsb) < 0 || (k = pread(lfd, line, REC_MAX, 0)) <= 0)
		goto out;
	line[k] = '\0';
	if (!(nl = memchr(line, '\n', k)) || parse_header(line, nl, &h) < 0 ||
	    pathf(path, "%s/" INDEX, dir) < 0 ||
	    (ifd = open(path, O_RDONLY | O_CLOEXEC)) < 0 ||
	    status_head(ifd, &ih, &h, lsb.st_size) < 0 ||
	    (want_size && !ih.sized) || !ih.stamped)
		goto out;
	if (read_range(lfd, ih.listoff, lsb.st_size, &tail) < 0 ||
	    (ih.listoff > 0 && (pread(lfd, line, 1, ih.listoff - 1) != 1 ||
	    line[0] != '\n')) ||
	    !status_stamped(dir, &ih, tail.p, tail.p + tail.len))
		goto out;
	maplen = sizeof(ih) + (size_t)ih.nmsgs * sizeof(struct irec) +
	    (size_t)ih.nexp * sizeof(struct expunged) + ih.nameslen;
	if ((map = mmap(NULL, maplen, PROT_READ, MAP_SHARED, ifd, 0)) ==
	    MAP_FAILED)
		goto out;
	ts.ih = &ih;
	ts.rec = (const struct irec *)((char *)map + sizeof(ih));
	ts.names = (char *)map + maplen - ih.nameslen;
	ts.u = xreallocarray(NULL, STATUS_UIDS, sizeof(*ts.u));
	ts.s = s;
	ts.sized = ih.sized;
	s->messages = ih.nmsgs;
	s->unseen = ih.unseen;
	s->deleted = ih.deleted;
	s->size = ih.size;
	s->deleted_size = ih.deleted_size;
	s->uidnext = MAX(ih.uidnext, 1);
	s->uidvalidity = ih.uidvalidity;
	s->highestmodseq = ih.highestmodseq;
	if (status_tail(&ts, tail.p, tail.p + tail.len) < 0 ||
	    (want_size && !ts.sized))
		goto out;
	/* who was told of what: the lock file's line */
	close(lfd);
	if (pathf(path, "%s/" UIDLIST_LOCK, dir) < 0)
		lfd = -1;
	else
		lfd = open(path, O_RDONLY | O_CLOEXEC);
	if ((told = recent_read(lfd)) < 0 || tail_recent(&ts, told) < 0)
		goto out;
	r = 0;
out:
	if (map != MAP_FAILED)
		munmap(map, maplen);
	if (lfd >= 0)
		close(lfd);
	if (ifd >= 0)
		close(ifd);
	free(ts.u);
	buf_free(&tail);
	return r;
}
