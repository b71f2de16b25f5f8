/* index.c: the binary index of a folder, "imapd-index".
 *
 * The text UID list stays the durable record; the index is a snapshot of
 * what a process holds after applying the list's first O bytes (list
 * generation G): the messages as fixed records, the expunge history, the
 * file names, the scan stamp and the header values.  A new process maps
 * it privately (MAP_PRIVATE) and uses its records and names in place as
 * folder.msgs and folder.names, parsing only the list's lines after O:
 * opening a folder copies nothing and reads no name.  A page of the map
 * the process changes (a flag, \Recent) becomes its own copy, never the
 * file's; msgs or names that grow move to the heap first (msgs_reserve,
 * names_reserve).  Since other processes may hold it mapped, an index
 * file is never changed in place: it is written whole to a temporary
 * name and renamed over the old one.
 *
 * Layout (host byte order; the magic tells another order apart):
 *	struct ihead			version, sizes, G, O, header values,
 *					where the areas start, their sums
 *	struct expunged	[nexp]		expunge history
 *	struct msg	[nmsgs]		UID, system flags, keywords, name,
 *					modseq: folder.msgs as it is
 *	names		[nameslen]	"cur/..." NUL-separated, to the end
 * The header's first_unseen, the UID of the first record without \Seen,
 * answers SELECT's UNSEEN while msgs are the records unchanged (nothing
 * after O changed them, nothing since): SELECT then reads no record but
 * those a binary search meets.
 * The records and the names start on a page (zeros before them), so that
 * each is mapped on its own, with room after it to grow in place: new
 * messages and the names of renamed files are added there without
 * copying the rest.  Each area has its sum, the zeros after it
 * included, and headsum covers the header (with itself at 0), the other
 * sums with it: no byte of the file goes unchecked.  A record's flags
 * and keywords are those its name carries, read with the keyword table
 * whose sum is kwsum: while dovecot-keywords says the same, no name is
 * read when loading; else every name is parsed again.  The sums of the
 * records and the names are checked through a small buffer (pread), so
 * checking them costs no memory: a page of the map is only read in
 * when a record or name on it is used.  A file of another version,
 * a foreign byte order, a wrong size or sum is logged and ignored, never
 * trusted; the next sync writes a good one.  It is written by whichever
 * process has grown the list past the last index, with no lock: every
 * index any process writes is true of the list it names.  Deleting it
 * costs one parse of the list; changing it in place is not allowed (a
 * process that has it mapped could fault on a shorter file).
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
#define INDEX_VERSION	4
#define INDEX_TAIL	16384	/* list bytes worth a new index */
#define CHUNK		4096	/* records per check */
#define NAMES_BUF	65536	/* bytes of names per read to check them */
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
	uint32_t first_unseen;	/* UID of the first unseen record, or 0 */
	uint32_t spare;		/* 0: what follows stays aligned */
	uint64_t size, deleted_size;	/* RFC822.SIZE sums, when sized */
	uint32_t sized;		/* every name tells its size (",W=") */
	uint32_t nnew;		/* names in new/ */
	uint64_t recoff, namesoff;	/* where records and names start */
	uint64_t kwsum;		/* the keyword table flags were read with */
	uint64_t recsum, expsum, namesum;	/* of each area */
	uint64_t headsum;	/* of this header, itself at 0 */
};


static uint64_t
sum_of(const void *p, size_t n)
{
	return sum_bytes(p, n, INDEX_MAGIC);
}

static uint64_t
head_sum(const struct ihead *ih)
{
	struct ihead hz = *ih;

	hz.headsum = 0;
	return sum_of(&hz, sizeof(hz));
}

/* the keyword table: which letter names what */
static uint64_t
kw_sum(char *const *kw)
{
	struct sum s;
	unsigned char i;

	sum_init(&s, INDEX_MAGIC);
	for (i = 0; i < KW_MAX; i++)
		if (kw[i]) {
			sum_feed(&s, &i, 1);
			sum_feed(&s, kw[i], strlen(kw[i]) + 1);
		}
	return sum_end(&s);
}

static uint64_t
page_size(void)
{
	static long ps;

	if (!ps && (ps = sysconf(_SC_PAGESIZE)) < 4096)
		ps = 4096;
	return ps;
}

static uint64_t
page_up(uint64_t n)
{
	return (n + page_size() - 1) / page_size() * page_size();
}

/* the areas in order, each where this machine can map it */
static int
areas_ok(const struct ihead *ih, off_t fsize)
{
	return ih->recoff >= sizeof(*ih) + (uint64_t)ih->nexp *
	    sizeof(struct expunged) && ih->namesoff >= ih->recoff +
	    (uint64_t)ih->nmsgs * sizeof(struct msg) &&
	    ih->namesoff + ih->nameslen == (uint64_t)fsize &&
	    ih->recoff % page_size() == 0 && ih->namesoff % page_size() == 0;
}

static int
head_ok(const struct ihead *ih, const struct hdr *h, off_t fsize,
    const char *path)
{
	const char *why = NULL;

	if (fsize < (off_t)sizeof(*ih))
		why = "truncated";
	else if (ih->magic != INDEX_MAGIC)
		why = "not an index of this machine";
	else if (ih->version != INDEX_VERSION ||
	    ih->headsize != sizeof(*ih) || ih->recsize != sizeof(struct msg))
		why = "older format";
	else if (!areas_ok(ih, fsize))
		why = "truncated";
	else if (head_sum(ih) != ih->headsum)
		why = "damaged";
	if (why) {
		logmsg(LOG_WARNING, "%s: %s: rebuilding it", path, why);
		return 0;
	}
	/* an index of an older list, or of another incarnation: not an
	 * error, just out of date */
	return ih->gen == h->gen && ih->uidvalidity == h->uidvalidity;
}

/* the records read through a small buffer, with the zeros after them:
 * in UID order, naming names there are; the pages of the map stay
 * untouched until a record is used */
static int
recs_ok(int fd, const struct ihead *ih)
{
	struct msg *r = xreallocarray(NULL, CHUNK, sizeof(*r));
	uint64_t off = ih->recoff, end = ih->namesoff, n;
	uint32_t i = 0, k, last = 0;
	struct sum s;
	int ret = -1;

	sum_init(&s, INDEX_MAGIC);
	for (; off < end; off += n) {
		n = MIN(CHUNK * sizeof(*r), end - off);
		if (read_at(fd, r, n, off) < 0)
			goto out;
		sum_feed(&s, r, n);
		/* the records of this piece; the rest of it is padding */
		for (k = 0; i < ih->nmsgs && k < n / sizeof(*r); k++, i++) {
			if (r[k].uid <= last || r[k].uid >= ih->uidnext ||
			    r[k].name >= ih->nameslen ||
			    (r[k].flags & ~FL_SYSTEM))
				goto out;
			last = r[k].uid;
		}
	}
	if (sum_end(&s) == ih->recsum)
		ret = 0;
out:
	free(r);
	return ret;
}

/* the expunge history into st->exp, and the zeros after it */
static int
exp_load(struct store_state *st, int fd, const struct ihead *ih)
{
	size_t elen = ih->nexp * sizeof(*st->exp);
	size_t plen = ih->recoff - sizeof(*ih) - elen;
	char *pad;
	struct sum s;
	uint32_t i;
	int r;

	if (st->expcap < ih->nexp) {
		free(st->exp);
		st->exp = xreallocarray(NULL, ih->nexp, sizeof(*st->exp));
		st->expcap = ih->nexp;
	}
	if (ih->nexp && read_at(fd, st->exp, ih->nexp * sizeof(*st->exp),
	    sizeof(*ih)) < 0)
		return -1;
	for (i = 0; i < ih->nexp; i++)
		if (!st->exp[i].first || st->exp[i].last < st->exp[i].first)
			return -1;
	sum_init(&s, INDEX_MAGIC);
	sum_feed(&s, st->exp, elen);
	pad = xmalloc(plen + 1);
	r = read_at(fd, pad, plen, sizeof(*ih) + elen);
	sum_feed(&s, pad, plen);
	free(pad);
	return r == 0 && sum_end(&s) == ih->expsum ? 0 : -1;
}

/* the names read through a small buffer: the pages of the map stay
 * untouched until a name is used */
static int
names_ok(int fd, off_t off, const struct ihead *ih)
{
	char *b = xmalloc(NAMES_BUF), lastc = '\0';
	uint64_t left = ih->nameslen;
	struct sum s;
	size_t n;
	int r = -1;

	sum_init(&s, INDEX_MAGIC);
	for (; left; left -= n, off += n) {
		n = MIN(NAMES_BUF, left);
		if (read_at(fd, b, n, off) < 0)
			goto out;
		sum_feed(&s, b, n);
		lastc = b[n - 1];
	}
	if (lastc == '\0' && sum_end(&s) == ih->namesum)
		r = 0;
out:
	free(b);
	return r;
}

void
index_release(struct folder *f)
{
	struct store_state *st = f->st;

	/* msgs shared with a reader are left to it */
	if (f->msgs == st->shared)
		;
	else if (st->msgs_map)
		munmap(f->msgs, st->msgs_map);
	else
		free(f->msgs);
	if (st->names_map)
		munmap(f->names, st->names_map);
	else
		free(f->names);
	f->msgs = NULL;
	f->names = NULL;
	f->nmsgs = f->nameslen = f->namescap = 0;
	st->msgscap = st->msgs_map = st->names_map = 0;
}

/* len bytes of fd from off mapped privately, with room after them up to
 * *cap bytes (rounded up to pages): anonymous memory after the file's */
static void *
map_area(int fd, off_t off, size_t len, size_t *cap)
{
	char *p;

	*cap = page_up(*cap);
	if ((p = mmap(NULL, *cap, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS, -1, 0)) == MAP_FAILED)
		return NULL;
	if (len && mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_FIXED, fd, off) == MAP_FAILED) {
		munmap(p, *cap);
		return NULL;
	}
	return p;
}

/* flags as msg_parse would leave them: \Recent and new/ */
static void
flags_settle(struct folder *f, const struct ihead *ih)
{
	struct store_state *st = f->st;
	size_t i, k;

	st->first_unseen = ih->first_unseen;
	st->unseen_known = 1;
	if (ih->kwsum != kw_sum(f->kw)) {
		st->unseen_known = 0;
		for (i = 0; i < f->nmsgs; i++)
			msg_parse(f, &f->msgs[i]);
		return;
	}
	if (ih->nnew)
		st->newseen = 1;
	for (k = 0; k < st->nrecent; k++) {
		i = lower_bound(f, st->recent[k]);
		if (i < f->nmsgs && f->msgs[i].uid == st->recent[k])
			f->msgs[i].flags |= FL_RECENT;
	}
}

/* f takes the mapped records and names, with room to grow */
static void
install(struct folder *f, const struct ihead *ih, struct msg *msgs,
    size_t mcap, char *names, size_t ncap)
{
	struct store_state *st = f->st;

	index_release(f);
	f->msgs = msgs;
	f->nmsgs = ih->nmsgs;
	st->msgs_map = mcap;
	st->msgscap = mcap / sizeof(*msgs);
	f->names = names;
	f->nameslen = ih->nameslen;
	f->namescap = st->names_map = ncap;
	st->nexp = ih->nexp;
	st->expsorted = 0;
	st->gen = ih->gen;
	st->nrecords = ih->nrecords;
	st->histfloor = ih->histfloor;
	f->uidvalidity = ih->uidvalidity;
	f->uidnext = ih->uidnext;
	f->highestmodseq = ih->highestmodseq;
	st->stamped = ih->stamped;
	st->st_new.tv_sec = ih->stamp[0];
	st->st_new.tv_nsec = ih->stamp[1];
	st->st_cur.tv_sec = ih->stamp[2];
	st->st_cur.tv_nsec = ih->stamp[3];
	st->idx_gen = ih->gen;
	st->idx_off = ih->listoff;
	flags_settle(f, ih);
}

/* the areas after a sound header, mapped and checked */
static int
load_areas(struct folder *f, int fd, const struct ihead *ih)
{
	size_t rlen = (size_t)ih->nmsgs * sizeof(struct msg);
	size_t mcap = rlen + (ih->nmsgs / 4 + 1024) * sizeof(struct msg);
	size_t ncap = ih->nameslen + ih->nameslen / 4 + 65536;
	struct msg *m = NULL;
	char *names = NULL;

	if (!(m = map_area(fd, ih->recoff, rlen, &mcap)) ||
	    !(names = map_area(fd, ih->namesoff, ih->nameslen, &ncap))) {
		if (m)
			munmap(m, mcap);
		return -1;
	}
	if (recs_ok(fd, ih) < 0 || exp_load(f->st, fd, ih) < 0 ||
	    names_ok(fd, ih->namesoff, ih) < 0) {
		munmap(m, mcap);
		munmap(names, ncap);
		errno = EINVAL;
		return -1;
	}
	install(f, ih, m, mcap, names, ncap);
	return 0;
}

int
index_load(struct folder *f, int listfd, const struct hdr *h, off_t size,
    off_t *off)
{
	char path[PATH_MAX], nl;
	struct ihead ih;
	struct stat sb;
	int fd, r = -1;

	if (!h->gen || pathf(path, "%s/" INDEX, f->path) < 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	memset(&ih, 0, sizeof(ih));
	if (fstat(fd, &sb) < 0 || (sb.st_size >= (off_t)sizeof(ih) &&
	    read_at(fd, &ih, sizeof(ih), 0) < 0)) {
		logmsg(LOG_WARNING, "%s: unreadable: rebuilding it", path);
		goto out;
	}
	if (!head_ok(&ih, h, sb.st_size, path) || ih.listoff > (uint64_t)size)
		goto out;
	/* it must end a line of the list as it is now */
	if (ih.listoff > 0 && (pread(listfd, &nl, 1, ih.listoff - 1) != 1 ||
	    nl != '\n'))
		goto out;
	if (load_areas(f, fd, &ih) < 0) {
		logmsg(LOG_WARNING, "%s: %s: rebuilding it", path, errno ==
		    EINVAL ? "damaged" : strerror(errno));
		goto out;
	}
	*off = ih.listoff;
	r = 0;
out:
	close(fd);
	return r;
}

/* a writer that sums each area of what it writes as the reader does */
struct iw {
	int fd, err;
	struct buf b;
	struct sum s;
	uint64_t pos;		/* bytes put */
};

static void
iw_flush(struct iw *w)
{
	sum_feed(&w->s, w->b.p, w->b.len);
	if (!w->err && write_all(w->fd, w->b.p, w->b.len) < 0)
		w->err = errno ? errno : EIO;
	w->b.len = 0;
}

static void
iw_put(struct iw *w, const void *p, size_t n)
{
	buf_add(&w->b, p, n);
	w->pos += n;
	if (w->b.len >= 65536)
		iw_flush(w);
}

/* zeros up to where the next area starts */
static void
iw_pad(struct iw *w, uint64_t to)
{
	static const char zero[256];

	while (w->pos < to)
		iw_put(w, zero, MIN(sizeof(zero), to - w->pos));
}

/* the end of an area: its sum, and a fresh one for the next */
static uint64_t
iw_area(struct iw *w)
{
	uint64_t v;

	iw_flush(w);
	v = sum_end(&w->s);
	sum_init(&w->s, INDEX_MAGIC);
	return v;
}

static void
head_fill(struct folder *f, struct ihead *ih)
{
	struct store_state *st = f->st;
	uint64_t size = 0;
	const char *name;
	size_t i;

	memset(ih, 0, sizeof(*ih));
	ih->magic = INDEX_MAGIC;
	ih->version = INDEX_VERSION;
	ih->headsize = sizeof(*ih);
	ih->recsize = sizeof(struct msg);
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
	ih->kwsum = kw_sum(f->kw);
	for (i = 0; i < f->nmsgs; i++) {
		if (f->msgs[i].flags & FL_GONE)
			continue;
		name = mname(f, &f->msgs[i]);
		ih->nmsgs++;
		ih->nameslen += strlen(name) + 1;
		ih->nnew += !strncmp(name, "new/", 4);
		ih->unseen += !(f->msgs[i].flags & FL_SEEN);
		ih->deleted += !!(f->msgs[i].flags & FL_DELETED);
		if (name_field(name + 4, 'W', &size) < 0)
			ih->sized = 0;
		ih->size += size;
		if (f->msgs[i].flags & FL_DELETED)
			ih->deleted_size += size;
	}
	if (!ih->sized)
		ih->size = ih->deleted_size = 0;
	ih->recoff = page_up(sizeof(*ih) + (uint64_t)ih->nexp *
	    sizeof(struct expunged));
	ih->namesoff = page_up(ih->recoff + (uint64_t)ih->nmsgs *
	    sizeof(struct msg));
}

/* the areas after the header, each with its sum; a record's flags are
 * read from its name, as a loader that parses names would */
static void
put_body(struct folder *f, struct iw *w, struct ihead *ih)
{
	struct msg r;
	uint32_t name = 0;
	const char *p;
	size_t i;

	if (f->st->nexp)
		iw_put(w, f->st->exp, f->st->nexp * sizeof(*f->st->exp));
	iw_pad(w, ih->recoff);
	ih->expsum = iw_area(w);
	memset(&r, 0, sizeof(r));
	for (i = 0; i < f->nmsgs; i++) {
		if (f->msgs[i].flags & FL_GONE)
			continue;
		p = mname(f, &f->msgs[i]);
		r.uid = f->msgs[i].uid;
		fname_flags(f->kw, p + 4, &r.flags, &r.kw);
		r.name = name;
		r.modseq = f->msgs[i].modseq;
		if (!ih->first_unseen && !(r.flags & FL_SEEN))
			ih->first_unseen = r.uid;
		iw_put(w, &r, sizeof(r));
		name += strlen(p) + 1;
	}
	iw_pad(w, ih->namesoff);
	ih->recsum = iw_area(w);
	for (i = 0; i < f->nmsgs; i++) {
		if (f->msgs[i].flags & FL_GONE)
			continue;
		p = mname(f, &f->msgs[i]);
		iw_put(w, p, strlen(p) + 1);
	}
	ih->namesum = iw_area(w);
}

void
index_save(struct folder *f)
{
	struct store_state *st = f->st;
	char tmp[PATH_MAX], path[PATH_MAX];
	struct iw w = { .fd = -1 };
	struct ihead ih;

	if (!st->gen || !st->list_ino || (st->idx_gen == st->gen &&
	    st->list_off - st->idx_off < INDEX_TAIL))
		return;
	if (pathf(tmp, "%s/" INDEX ".%ld.tmp", f->path, (long)getpid()) < 0 ||
	    pathf(path, "%s/" INDEX, f->path) < 0 ||
	    (w.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) < 0)
		return;
	head_fill(f, &ih);
	iw_put(&w, &ih, sizeof(ih));
	iw_area(&w);
	put_body(f, &w, &ih);
	ih.headsum = head_sum(&ih);
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
	const struct msg *rec;	/* the index's records, mapped */
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
	const struct msg *r;
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
	struct stat sb;

	if (fstat(fd, &sb) < 0 || read_at(fd, ih, sizeof(*ih), 0) < 0 ||
	    ih->magic != INDEX_MAGIC || ih->version != INDEX_VERSION ||
	    ih->headsize != sizeof(*ih) || ih->recsize != sizeof(struct msg))
		return -1;
	if (head_sum(ih) != ih->headsum || !areas_ok(ih, sb.st_size) ||
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
	maplen = ih.namesoff + ih.nameslen;
	if ((map = mmap(NULL, maplen, PROT_READ, MAP_SHARED, ifd, 0)) ==
	    MAP_FAILED)
		goto out;
	ts.ih = &ih;
	ts.rec = (const struct msg *)((char *)map + ih.recoff);
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
