/* sync.c: folder sync: reading the UID list (or the index), comparing it
 * with new/ and cur/ (scan.c lists them) and giving new files UIDs,
 * following the directories with inotify, and
 * folder_open/folder_sync/folder_close. */
#include <sys/types.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <dirent.h>
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

/* ---- the UID list: reading it into memory ------------------------------ */

/* the lines after the index changed msgs: the first unseen message is
 * found again from its header's and from the messages the lines left
 * unseen, with a walk only past a first unseen message they made seen,
 * and only as far as the next unseen one */
static void
unseen_after_lines(struct folder *f)
{
	struct store_state *st = f->st;
	uint32_t first = st->first_unseen;
	size_t i, k;
	long j;

	if (st->nunseen > MOVED_MAX)
		return;
	if (first && st->unseen_hit) {
		for (i = lower_bound(f, first); i < f->nmsgs; i++)
			if (!(f->msgs[i].flags & (FL_SEEN | FL_GONE)))
				break;
		first = i < f->nmsgs ? f->msgs[i].uid : 0;
	}
	/* unseen when noted, and still so? */
	for (k = 0; k < st->nunseen; k++)
		if ((!first || st->unseen[k] < first) &&
		    (j = folder_find(f, st->unseen[k])) >= 0 &&
		    !(f->msgs[j].flags & FL_SEEN))
			first = st->unseen[k];
	st->first_unseen = first;
	st->unseen_known = 1;
}

/* the UID list from the index and the lines appended after it; -1 when
 * there is no index that describes this list */
static int
list_from_index(struct folder *f, int fd, const struct stat *sb)
{
	struct store_state *st = f->st;
	struct buf b = { 0 };
	char line[REC_MAX + 1], *nl;
	struct hdr h;
	unsigned long before;
	off_t off;
	ssize_t k;
	int known;

	if ((k = pread(fd, line, REC_MAX, 0)) <= 0)
		return -1;
	line[k] = '\0';
	if (!(nl = memchr(line, '\n', k)) || parse_header(line, nl, &h) < 0)
		return -1;
	htab_free(&st->bh);
	st->namesdead = 0;
	st->unseen_known = 0;
	if (index_load(f, fd, &h, sb->st_size, &off) < 0 ||
	    read_range(fd, off, sb->st_size, &b) < 0) {
		f->nmsgs = 0;
		st->unseen_known = 0;
		buf_free(&b);
		return -1;
	}
	before = st->changes;
	known = st->unseen_known;	/* a change clears it */
	st->nunseen = 0;
	st->unseen_hit = 0;
	st->list_off = off + apply_lines(f, b.p, b.len);
	st->list_dev = sb->st_dev;
	st->list_ino = sb->st_ino;
	if (st->changes != before && known)
		unseen_after_lines(f);
	st->changes++;
	st->unseen_at = st->changes;
	msgs_compact(f);
	buf_free(&b);
	return 0;
}

/* read the whole UID list into f, replacing what it held */
static int
list_load(struct folder *f, int fd, const struct stat *sb)
{
	struct store_state *st = f->st;
	struct buf b = { 0 };
	struct hdr h;
	char *nl, *p;
	size_t used, lines;

	if (list_from_index(f, fd, sb) == 0)
		return 0;
	if (st->made.p && st->made_dev == sb->st_dev &&
	    st->made_ino == sb->st_ino && (off_t)st->made.len == sb->st_size) {
		b = st->made;
		memset(&st->made, 0, sizeof(st->made));
	} else {
		buf_free(&st->made);
		if (read_range(fd, 0, sb->st_size, &b) < 0)
			goto fail;
	}
	if (!b.len || !(nl = memchr(b.p, '\n', b.len)) ||
	    parse_header(b.p, nl, &h) < 0) {
		logmsg(LOG_ERR, "%s/" UIDLIST ": bad header", f->path);
		errno = EIO;
		goto fail;
	}
	/* room for everything at once: no copying while it grows */
	for (lines = 0, p = b.p; (p = memchr(p, '\n', b.p + b.len - p)); p++)
		lines++;
	f->nmsgs = 0;
	f->nameslen = 0;
	names_reserve(f, b.len);
	msgs_reserve(f, lines);
	htab_free(&st->bh);
	st->namesdead = 0;
	st->stamped = 0;
	st->nexp = 0;
	st->nrecords = 0;
	st->gen = h.gen;
	f->uidvalidity = h.uidvalidity;
	f->uidnext = MAX(h.uidnext, 1);
	f->highestmodseq = h.modseq;
	st->histfloor = h.floor;
	used = nl + 1 - b.p;
	used += apply_lines(f, b.p + used, b.len - used);
	st->list_dev = sb->st_dev;
	st->list_ino = sb->st_ino;
	st->list_off = used;
	st->changes++;
	msgs_compact(f);
	buf_free(&b);
	return 0;
fail:
	buf_free(&b);
	return -1;
}

/* apply what was appended since we last looked; reload a replaced file */
static int
list_refresh(struct folder *f, struct txn *t)
{
	struct store_state *st = f->st;
	char path[PATH_MAX];
	struct buf b = { 0 };
	struct stat sb;
	int fd, r = -1;

	if (t) {
		fd = t->fd;
		sb = t->st;
		sb.st_size = t->size;
	} else {
		if (pathf(path, "%s/" UIDLIST, f->path) < 0 ||
		    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			return -1;
		if (fstat(fd, &sb) < 0)
			goto out;
	}
	if (sb.st_dev != st->list_dev || sb.st_ino != st->list_ino ||
	    sb.st_size < st->list_off) {
		r = list_load(f, fd, &sb);
	} else if (sb.st_size > st->list_off) {
		if (read_range(fd, st->list_off, sb.st_size, &b) < 0)
			goto out;
		st->list_off += apply_lines(f, b.p, b.len);
		r = 0;
	} else
		r = 0;
out:
	if (!t)
		close(fd);
	buf_free(&b);
	return r;
}

/* ---- following new/ and cur/ with inotify ------------------------------ */

static void
pend_clear(struct store_state *st)
{
	st->npend = 0;
	buf_reset(&st->pendnames);
}

/* inotify is gone (or was never there): the mtimes decide from now on */
static void
watch_stop(struct folder *f)
{
	struct store_state *st = f->st;

	if (st->watchfd >= 0)
		close(st->watchfd);
	st->watchfd = -1;
	pend_clear(st);
	st->dirty = 1;
}

/* from now on every change in new/ and cur/ is queued */
static int
watch_start(struct folder *f)
{
	const uint32_t mask = IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM |
	    IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
	struct store_state *st = f->st;
	char path[PATH_MAX];
	int fd;

	if ((fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
		return -1;
	if (pathf(path, "%s/new", f->path) < 0 ||
	    (st->wd_new = inotify_add_watch(fd, path, mask)) < 0 ||
	    pathf(path, "%s/cur", f->path) < 0 ||
	    (st->wd_cur = inotify_add_watch(fd, path, mask)) < 0) {
		close(fd);
		return -1;
	}
	st->watchfd = fd;
	return 0;
}

static void
pend_add(struct store_state *st, const char *sub, const char *name,
    int present)
{
	if (st->npend == st->pendcap) {
		st->pendcap = st->pendcap ? st->pendcap * 2 : 64;
		st->pend = xreallocarray(st->pend, st->pendcap,
		    sizeof(*st->pend));
	}
	st->pend[st->npend].off = st->pendnames.len;
	st->pend[st->npend].seq = st->pendseq++;
	st->pend[st->npend].present = present;
	st->npend++;
	buf_add(&st->pendnames, sub, 3);
	buf_addc(&st->pendnames, '/');
	buf_add(&st->pendnames, name, strlen(name) + 1);
}

/* take what inotify queued: names in new/ and cur/ go to pend; the
 * number of events read */
static size_t
watch_read(struct folder *f)
{
	struct store_state *st = f->st;
	union {
		struct inotify_event ev;
		char b[8192];
	} u;
	const struct inotify_event *ev;
	const char *sub;
	size_t n = 0;
	ssize_t k, o;

	while (st->watchfd >= 0) {
		if ((k = read(st->watchfd, u.b, sizeof(u.b))) < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				watch_stop(f);
			break;
		}
		if (k == 0)
			break;
		st->stale = 1;
		for (o = 0; o + (ssize_t)sizeof(*ev) <= k;
		    o += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)(u.b + o);
			n++;
			if (ev->mask & (IN_IGNORED | IN_DELETE_SELF |
			    IN_MOVE_SELF | IN_UNMOUNT)) {
				watch_stop(f);
				return n;
			}
			if (ev->mask & IN_Q_OVERFLOW)
				st->dirty = 1;
			/* what scan_dir skips */
			if (ev->mask & (IN_ISDIR | IN_Q_OVERFLOW) || !ev->len ||
			    ev->name[0] == '.' || strchr(ev->name, '\n'))
				continue;
			sub = ev->wd == st->wd_new ? "new" :
			    ev->wd == st->wd_cur ? "cur" : NULL;
			if (sub)
				pend_add(st, sub, ev->name, !!(ev->mask &
				    (IN_CREATE | IN_MOVED_TO)));
		}
	}
	return n;
}

/* A rename, link or unlink holds its directory's lock until inotify has
 * queued its events, and reading the directory takes that lock: after
 * this, the events of every change the mtimes show are in the queue. */
static int
watch_barrier(struct folder *f)
{
	static const char *const sub[] = { "new", "cur" };
	char path[PATH_MAX];
	DIR *dp;
	size_t i;

	for (i = 0; i < LEN(sub); i++) {
		if (pathf(path, "%s/%s", f->path, sub[i]) < 0 ||
		    !(dp = opendir(path)))
			return -1;
		readdir(dp);
		closedir(dp);
	}
	return 0;
}

static const struct store_state *sort_pend;

static int
pev_cmp(const void *a, const void *b)
{
	const struct pev *x = a, *y = b;
	int c;

	if ((c = strcmp(sort_pend->pendnames.p + x->off,
	    sort_pend->pendnames.p + y->off)))
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Drop the events msgs explains: the last event on a name says whether a
 * file has that name now, and a live message must have it exactly when
 * one does.  A rename recorded in the list (by this process or another)
 * explains its own two events.  Returns how many names remain. */
static size_t
pend_check(struct folder *f)
{
	struct store_state *st = f->st;
	struct buf keep = { 0 };
	const char *name;
	size_t i, o;
	long j;

	if (!st->npend)
		return 0;
	sort_pend = st;
	qsort(st->pend, st->npend, sizeof(*st->pend), pev_cmp);
	sort_pend = NULL;
	for (i = o = 0; i < st->npend; i++) {
		name = st->pendnames.p + st->pend[i].off;
		if (i + 1 < st->npend &&
		    !strcmp(name, st->pendnames.p + st->pend[i + 1].off))
			continue;
		if (!moved_find(f, name, &j))
			j = name_find(f, name);
		if ((j >= 0) == st->pend[i].present)
			continue;
		st->pend[o] = st->pend[i];
		st->pend[o++].off = keep.len;
		buf_add(&keep, name, strlen(name) + 1);
	}
	buf_free(&st->pendnames);
	st->pendnames = keep;
	st->npend = o;
	st->nmoved = 0;		/* their events are read */
	return o;
}

/* ---- syncing a folder with its directories ----------------------------- */

/* base name -> index in msgs + 1 */
static void
hash_build(struct htab *h, const struct folder *f)
{
	const char *b;
	size_t i;

	htab_init(h, f->nmsgs);
	for (i = 0; i < f->nmsgs; i++) {
		b = mname(f, &f->msgs[i]) + 4;
		htab_put(h, hash_bytes(b, base_len(b)), i + 1);
	}
}

static long
hash_get(const struct htab *h, const struct folder *f, const char *base,
    size_t blen)
{
	const char *b;
	size_t pos = 0;
	uint32_t i;

	while (htab_next(h, hash_bytes(base, blen), &pos, &i)) {
		b = mname(f, &f->msgs[i - 1]) + 4;
		if (!memcmp(b, base, blen) && (b[blen] == ':' || !b[blen]))
			return i - 1;
	}
	return -1;
}


/* new/ and cur/ may hold what msgs does not: read them */
static int
scan_due(struct folder *f)
{
	struct store_state *st = f->st;
	struct stat sn, sc;

	if (st->dirty)
		return 1;
	if (dir_stat(f->path, "new", &sn) < 0 ||
	    dir_stat(f->path, "cur", &sc) < 0)
		return 1;
	if (!st->scanned) {
		/* just opened: the list's stamp may vouch for it, or for
		 * cur/ alone when a delivery came since */
		st->newonly = st->stamped && ts_eq(sc.st_mtim, st->st_cur);
		if (!st->stamped || !ts_eq(sn.st_mtim, st->st_new) ||
		    !ts_eq(sc.st_mtim, st->st_cur))
			return 1;
		st->mt_new = sn.st_mtim;
		st->mt_cur = sc.st_mtim;
		st->scanned = 1;
		return 0;
	}
	if (st->watchfd >= 0) {
		watch_read(f);
		return st->dirty || pend_check(f) > 0;
	}
	return !ts_eq(sn.st_mtim, st->mt_new) || !ts_eq(sc.st_mtim, st->mt_cur);
}

/* a scan stamp for these mtimes, unless the list's last one says so */
static void
stamp_put(struct folder *f, struct txn *t, const struct stat *sn,
    const struct stat *sc)
{
	struct store_state *st = f->st;

	if (st->stamped && ts_eq(st->st_new, sn->st_mtim) &&
	    ts_eq(st->st_cur, sc->st_mtim))
		return;
	buf_printf(&t->out, "S %lld.%09ld %lld.%09ld\n",
	    (long long)sn->st_mtim.tv_sec, (long)sn->st_mtim.tv_nsec,
	    (long long)sc->st_mtim.tv_sec, (long)sc->st_mtim.tv_nsec);
	st->st_new = sn->st_mtim;
	st->st_cur = sc->st_mtim;
	st->stamped = 1;
}

/*
 * Stamp the list for new/ and cur/ as they are now (lock held, list read
 * to its end), without reading them: msgs follows them through inotify.
 * The clock first, then the mtimes, then every event they include: a
 * change after the mtimes were read leaves them above the clock.  0 done
 * (or nothing to do), 1 too early (a change within the current clock
 * tick), -1 not possible before a scan.
 */
static int
stamp_try(struct folder *f, struct txn *t)
{
	struct store_state *st = f->st;
	struct timespec now;
	struct stat sn, sc;
	size_t nev;

	if (!st->stale || st->watchfd < 0 || !st->scanned || st->dirty)
		return st->stale ? -1 : 0;
	if (fs_now(t, &now) < 0 || dir_stat(f->path, "new", &sn) < 0 ||
	    dir_stat(f->path, "cur", &sc) < 0 || watch_barrier(f) < 0) {
		st->stale = 0;	/* until the next change */
		return -1;
	}
	nev = watch_read(f);
	if (st->dirty || pend_check(f) > 0)
		return -1;
	if (!ts_lt(sn.st_mtim, now) || !ts_lt(sc.st_mtim, now))
		return 1;
	stamp_put(f, t, &sn, &sc);
	/* events read just now may be of changes after the mtimes */
	st->stale = nev > 0;
	return 0;
}

/* a file of a known message seen under name: new flags get a new modseq */
static void
msg_update(struct folder *f, struct txn *t, size_t i, const char *name)
{
	struct msg *m = &f->msgs[i];
	uint32_t fl, kw;
	int same = !strcmp(mname(f, m), name);

	fname_flags(f->kw, name + 4, &fl, &kw);
	if (fl == (m->flags & FL_SYSTEM) && kw == m->kw) {
		if (same)
			return;
	} else
		m->modseq = ++f->highestmodseq;
	if (!same)
		msg_setname(f, m, name, strlen(name));
	msg_parse(f, m);
	rec_msg(t, m->uid, m->modseq, name);
	f->st->changes++;
}

/* messages whose files are gone: expunged, in ranges of neighbours */
static void
expunge_missing(struct folder *f, struct txn *t, const unsigned char *seen)
{
	size_t i, j;

	for (i = 0; i < f->nmsgs; i = j) {
		if (seen[i]) {
			j = i + 1;
			continue;
		}
		for (j = i; j < f->nmsgs && !seen[j]; j++) {
			f->msgs[j].flags |= FL_GONE;
			f->st->ngone++;
		}
		rec_exp(t, f->msgs[i].uid, f->msgs[j - 1].uid,
		    ++f->highestmodseq);
		hist_add(f->st, f->msgs[i].uid, f->msgs[j - 1].uid,
		    f->highestmodseq);
		f->st->changes++;
	}
}

/* files nobody has seen yet: UIDs in one block, in delivery order */
static int
assign_new(struct folder *f, struct txn *t, struct scan *s, size_t *unk,
    size_t nunk)
{
	char claimed[NAME_MAX + 8];
	const char *name;
	struct msg *m;
	size_t j;
	int recent;

	sort_ents(s, unk, nunk);
	for (j = 0; j < nunk; j++) {
		if (j && same_base(s, unk[j - 1], unk[j]))
			continue;
		name = ent_name(s, unk[j]);
		recent = 0;
		if (f->rw && !strncmp(name, "new/", 4)) {
			if (claim(f->path, name, claimed,
			    sizeof(claimed)) == 0) {
				name = claimed;
				recent = 1;
			} else if (errno == ENOENT)
				continue;	/* taken meanwhile */
		}
		if (f->uidnext >= UINT32_MAX) {
			logmsg(LOG_ERR, "%s: out of UIDs", f->path);
			errno = EOVERFLOW;
			return -1;
		}
		if (recent)
			claimed_add(f->st, f->uidnext);
		m = msg_insert(f, f->nmsgs, f->uidnext, ++f->highestmodseq,
		    name, strlen(name));
		if (recent)
			moved_note(f, m->uid);
		rec_msg(t, m->uid, m->modseq, name);
		t->durable = 1;
		if (store_progress)
			store_progress(j + 1, nunk);
	}
	return 0;
}

/* known messages still in new/: this read-write session takes them */
static void
claim_known(struct folder *f, struct txn *t)
{
	char claimed[NAME_MAX + 8], name[NAME_MAX + 8];
	struct msg *m;
	size_t i;

	f->st->newseen = 0;
	for (i = 0; i < f->nmsgs; i++) {
		m = &f->msgs[i];
		if (m->flags & FL_GONE || strncmp(mname(f, m), "new/", 4))
			continue;
		snprintf(name, sizeof(name), "%s", mname(f, m));
		if (claim(f->path, name, claimed, sizeof(claimed)) < 0)
			continue;
		claimed_add(f->st, m->uid);
		msg_setname(f, m, claimed, strlen(claimed));
		msg_parse(f, m);
		rec_msg(t, m->uid, m->modseq, claimed);
		f->st->changes++;
	}
}

/* msgs matches new/ and cur/ as they were at the mtimes sn, sc */
static int
scan_done(struct folder *f, struct txn *t, const struct timespec *now,
    const struct stat *sn, const struct stat *sc)
{
	struct store_state *st = f->st;

	st->mt_new = sn->st_mtim;
	st->mt_cur = sc->st_mtim;
	st->scanned = 1;
	st->stale = 1;
	st->dirty = 0;
	st->newonly = 0;
	/* without inotify only a scan can stamp the list, and a directory
	 * changed within the current clock tick may change again unseen */
	if (st->watchfd < 0) {
		if (ts_lt(sn->st_mtim, *now) && ts_lt(sc->st_mtim, *now))
			stamp_put(f, t, sn, sc);
		else
			st->dirty = 1;
	}
	return 0;
}

/* messages of msgs whose file is in new/ */
static size_t
count_new(const struct folder *f)
{
	size_t i, n = 0;

	if (!f->st->newseen)
		return 0;
	for (i = 0; i < f->nmsgs; i++)
		n += !(f->msgs[i].flags & FL_GONE) &&
		    !strncmp(mname(f, &f->msgs[i]), "new/", 4);
	return n;
}

/*
 * Only new/ changed since the list's stamp (a delivery while no server
 * watched): read new/ alone, as cur/ holds what the list says.  cur/ is
 * looked at again after the scan: a file moved into it meanwhile, or a
 * file of new/ that is gone, and the whole folder is read after all.
 * 0 done, 1 not enough, -1 error.
 */
static int
reconcile_new(struct folder *f, struct txn *t)
{
	struct store_state *st = f->st;
	struct scan s = { 0 };
	struct timespec now;
	struct stat sn, sc, sc2;
	const char **names;
	size_t *unk, nunk = 0, known = 0, j;
	long i, *idx;
	int r = -1;

	if (fs_now(t, &now) < 0 || dir_stat(f->path, "new", &sn) < 0 ||
	    dir_stat(f->path, "cur", &sc) < 0)
		return -1;
	if (!ts_eq(sc.st_mtim, st->st_cur))
		return 1;
	watch_read(f);
	if (scan_dir(&s, f->path, "new") < 0)
		return -1;
	unk = xreallocarray(NULL, s.n + 1, sizeof(*unk));
	names = xreallocarray(NULL, s.n + 1, sizeof(*names));
	idx = xreallocarray(NULL, s.n + 1, sizeof(*idx));
	for (j = 0; j < s.n; j++)
		names[j] = ent_name(&s, j);
	bases_find(f, names, s.n, idx);
	for (j = 0; j < s.n; j++) {
		if ((i = idx[j]) < 0)
			unk[nunk++] = j;
		else if (!strncmp(mname(f, &f->msgs[i]), "new/", 4)) {
			known++;
			msg_update(f, t, i, ent_name(&s, j));
		} else {
			r = 1;	/* a file of cur/ back in new/ */
			goto out;
		}
	}
	if (dir_stat(f->path, "cur", &sc2) < 0 ||
	    !ts_eq(sc2.st_mtim, sc.st_mtim) || known != count_new(f)) {
		r = 1;
		goto out;
	}
	pend_clear(st);
	if (assign_new(f, t, &s, unk, nunk) < 0)
		goto out;
	if (f->rw && st->newseen)
		claim_known(f, t);
	r = scan_done(f, t, &now, &sn, &sc);
out:
	scan_free(&s);
	free(unk);
	free(names);
	free(idx);
	return r;
}

/* compare the directories with msgs and record every difference (lock
 * held, the list read to its end) */
static int
reconcile(struct folder *f, struct txn *t)
{
	struct store_state *st = f->st;
	struct scan s = { 0 }, s2 = { 0 };
	struct timespec now;
	struct htab h = { 0 };
	struct stat sn, sc;
	unsigned char *seen;
	size_t *unk, nunk = 0, j, missing = 0;
	long i;
	int r = -1;

	/* the clock, then the mtimes, then the names: a change after the
	 * mtimes were read leaves them above the clock */
	if (fs_now(t, &now) < 0 || dir_stat(f->path, "new", &sn) < 0 ||
	    dir_stat(f->path, "cur", &sc) < 0)
		return -1;
	if (st->newonly && !st->scanned && (r = reconcile_new(f, t)) <= 0)
		return r;
	r = -1;
	/* whatever inotify queued so far, the scan sees */
	watch_read(f);
	pend_clear(st);
	if (scan_folder(&s, f->path) < 0)
		return -1;
	hash_build(&h, f);
	seen = xcalloc(f->nmsgs + 1, 1);
	unk = xreallocarray(NULL, s.n + 1, sizeof(*unk));
	for (j = 0; j < s.n; j++) {
		if ((i = hash_get(&h, f, ent_name(&s, j) + 4, s.e[j].blen)) < 0)
			unk[nunk++] = j;
		else if (!seen[i]) {
			seen[i] = 1;
			msg_update(f, t, i, ent_name(&s, j));
		}
	}
	for (j = 0; j < f->nmsgs; j++)
		missing += !seen[j];
	/* readdir can miss a file renamed during the scan: look again
	 * before calling anything expunged */
	if (missing) {
		if (scan_folder(&s2, f->path) < 0)
			goto out;
		for (j = 0; j < s2.n; j++) {
			i = hash_get(&h, f, ent_name(&s2, j) + 4, s2.e[j].blen);
			if (i >= 0 && !seen[i]) {
				seen[i] = 1;
				msg_update(f, t, i, ent_name(&s2, j));
			}
		}
		expunge_missing(f, t, seen);
	}
	if (assign_new(f, t, &s, unk, nunk) < 0)
		goto out;
	if (f->rw)
		claim_known(f, t);
	r = scan_done(f, t, &now, &sn, &sc);
out:
	scan_free(&s);
	scan_free(&s2);
	htab_free(&h);
	free(seen);
	free(unk);
	return r;
}

/* does a file have this name ("new/..." or "cur/...") now? */
static int
name_exists(struct folder *f, const char *name)
{
	char path[PATH_MAX];
	struct stat sb;

	return pathf(path, "%s/%s", f->path, name) == 0 &&
	    stat(path, &sb) == 0 && !S_ISDIR(sb.st_mode);
}

static void
expunge_one(struct folder *f, struct txn *t, size_t i)
{
	struct msg *m = &f->msgs[i];

	moved_note(f, m->uid);
	m->flags |= FL_GONE;
	f->st->ngone++;
	rec_exp(t, m->uid, m->uid, ++f->highestmodseq);
	hist_add(f->st, m->uid, m->uid, f->highestmodseq);
	f->st->changes++;
}

/*
 * What inotify named and msgs does not explain, applied name by name
 * instead of reading the directories (lock held, the list read to its
 * end, so every change an imapd made is in msgs already): a file of an
 * unknown base name gets a UID, a known one under another name gets that
 * name and its flags, and a message whose file is gone under every name
 * is expunged.  What the names leave open falls to a scan: -1.
 */
static int
pend_apply(struct folder *f, struct txn *t)
{
	struct store_state *st = f->st;
	struct scan s = { 0 };
	const char *name;
	size_t *unk, *gone, nunk = 0, ngone = 0, j;
	long i;
	int r = -1;

	unk = xreallocarray(NULL, st->npend + 1, sizeof(*unk));
	gone = xreallocarray(NULL, st->npend + 1, sizeof(*gone));
	for (j = 0; j < st->npend; j++) {
		name = st->pendnames.p + st->pend[j].off;
		if (!name_exists(f, name))
			continue;
		if ((i = base_find(f, name)) >= 0) {
			/* a second file of one message: only a scan can say
			 * which one it is */
			if (name_exists(f, mname(f, &f->msgs[i])))
				goto out;
			msg_update(f, t, i, name);
			continue;
		}
		unk[nunk++] = scan_add(&s, name, name + 4);
	}
	for (j = 0; j < st->npend; j++) {
		name = st->pendnames.p + st->pend[j].off;
		if ((i = name_find(f, name)) >= 0 && !name_exists(f, name))
			gone[ngone++] = i;
	}
	/* A rename queues both its events before it lets the directory go:
	 * past the barrier, the new name of a file renamed away is queued
	 * unless it left new/ and cur/.  Anything queued: start over. */
	if (ngone && (watch_barrier(f) < 0 || watch_read(f) > 0))
		goto out;
	for (j = 0; j < ngone; j++)
		if (!name_exists(f, mname(f, &f->msgs[gone[j]])))
			expunge_one(f, t, gone[j]);
	if (assign_new(f, t, &s, unk, nunk) < 0)
		goto out;
	pend_clear(st);
	r = 0;
out:
	scan_free(&s);
	free(unk);
	free(gone);
	return r;
}

/* The stamp's look reads what inotify queued meanwhile: names it cannot
 * explain are applied now, with the lock still held, since the watch may
 * have nothing more to say of them.  A stream of arrivals that outlasts
 * the rounds leaves the rest pending, and folder_unsettled says so. */
static int
settle(struct folder *f, struct txn *t)
{
	struct store_state *st = f->st;
	int k;

	for (k = 0; k < SETTLE_ROUNDS; k++) {
		if (stamp_try(f, t) >= 0 || !st->npend || st->dirty)
			return 0;
		msgs_thaw(f);
		if (pend_apply(f, t) < 0 && reconcile(f, t) < 0)
			return -1;
	}
	return 0;
}

/* The locked part of a sync: read the list to its end, then compare it
 * with the directories when full is set and what inotify told does not
 * settle it, take what waits in new/, stamp, append, compact. */
static int
sync_locked(struct folder *f, int full)
{
	struct store_state *st = f->st;
	struct txn t;
	size_t dead;
	int durable, r = -1;

	if (txn_lock(&t, f->path) < 0)
		return -1;
	/* what changes msgs takes them from a reader first (apply_lines,
	 * msg_insert, msgs_compact do so themselves): a sync that only
	 * stamps the list copies nothing */
	if (full || (f->rw && st->newseen))
		msgs_thaw(f);
	if (txn_open(&t, f->path) < 0 || list_refresh(f, &t) < 0)
		goto out;
	msgs_compact(f);
	/* an event that looked unexplained may be a rename whose record its
	 * imapd was still writing: with the lock, the list has it */
	if (full && st->scanned && !st->dirty && st->watchfd >= 0) {
		watch_read(f);
		full = st->dirty || (pend_check(f) > 0 &&
		    pend_apply(f, &t) < 0);
	}
	if (full) {
		if (reconcile(f, &t) < 0)
			goto out;
	} else if (f->rw && st->newseen)
		claim_known(f, &t);
	if (settle(f, &t) < 0)
		goto out;
	for (dead = 0; dead < t.out.len; dead++)
		st->nrecords += t.out.p[dead] == '\n';
	durable = t.durable;
	if (txn_write(&t) < 0)
		goto out;
	if (durable)
		cache_put(&t, st->gen, t.size, f->uidnext, f->highestmodseq);
	st->list_off = t.size;
	st->peek_dev = t.st.st_dev;
	st->peek_ino = t.st.st_ino;
	st->peek_off = t.size;
	st->peek_modseq = f->highestmodseq;
	st->peek_uidnext = f->uidnext;
	msgs_compact(f);
	dead = st->nrecords > f->nmsgs ? st->nrecords - f->nmsgs : 0;
	if (dead > f->nmsgs && dead >= COMPACT_MIN && list_compact(f, &t) < 0)
		logmsg(LOG_WARNING, "%s: compaction failed: %s", f->path,
		    strerror(errno));
	r = 0;
out:
	if (r < 0) {
		/* memory may be ahead of the file: start over next time */
		st->list_ino = 0;
		st->dirty = 1;
	}
	txn_end(&t);
	return r;
}

static void
recent_write(int fd, uint32_t uid)
{
	char line[RECENT_LEN + 1];
	int n;

	n = snprintf(line, sizeof(line), RECENT_MAGIC "%u", uid);
	memset(line + n, ' ', RECENT_LEN - 1 - n);
	line[RECENT_LEN - 1] = '\n';
	if (pwrite(fd, line, RECENT_LEN, CACHE_LEN) != RECENT_LEN)
		logmsg(LOG_WARNING, UIDLIST_LOCK ": %s", strerror(errno));
}

static int
uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* where recent begins when no session has said yet: above what the
 * folder holds outside new/, but for what this process took from new/ */
static uint32_t
recent_floor(struct folder *f)
{
	struct store_state *st = f->st;
	size_t i;

	if (st->nclaimed)
		qsort(st->claimed, st->nclaimed, sizeof(*st->claimed),
		    uid_cmp);
	for (i = f->nmsgs; i > 0; i--)
		if (strncmp(mname(f, &f->msgs[i - 1]), "new/", 4) &&
		    (!st->nclaimed || !bsearch(&f->msgs[i - 1].uid,
		    st->claimed, st->nclaimed, sizeof(*st->claimed), uid_cmp)))
			return f->msgs[i - 1].uid;
	return 0;
}

static void
recent_mark(struct folder *f, size_t i)
{
	if (f->msgs[i].flags & FL_GONE)
		return;
	msgs_thaw(f);
	recent_add(f->st, f->msgs[i].uid);
	f->msgs[i].flags |= FL_RECENT;
}

static void
recent_settle(struct folder *f)
{
	struct store_state *st = f->st;
	char path[PATH_MAX];
	struct txn t = { -1, -1, 0, { 0 }, { 0 }, 0 };
	uint32_t floor, top = f->nmsgs ? f->msgs[f->nmsgs - 1].uid : 0;
	long long r;
	size_t i;
	long k;

	if (f->rw) {
		if (txn_lock(&t, f->path) < 0)
			return;
	} else if (pathf(path, "%s/" UIDLIST_LOCK, f->path) == 0)
		t.lockfd = open(path, O_RDONLY | O_CLOEXEC);
	r = recent_read(t.lockfd);
	floor = r >= 0 ? (uint32_t)r : recent_floor(f);
	for (i = 0; r < 0 && i < st->nclaimed; i++)
		if ((k = folder_find(f, st->claimed[i])) >= 0)
			recent_mark(f, k);
	st->nclaimed = 0;
	for (i = lower_bound(f, floor + 1); i < f->nmsgs; i++)
		recent_mark(f, i);
	for (i = 0; r < 0 && !f->rw && i < f->nmsgs; i++)
		if (!strncmp(mname(f, &f->msgs[i]), "new/", 4))
			recent_mark(f, i);
	if (f->rw && (r < 0 || top > floor))
		recent_write(t.lockfd, MAX(top, floor));
	st->recent_top = MAX(top, floor);
	txn_end(&t);
}

int
folder_sync(struct folder *f)
{
	struct store_state *st = f->st;
	size_t dead;
	unsigned long before = st->changes;
	int full;

	if (kw_refresh(f, 0) < 0)
		return -1;
	/* a list removed by hand starts over, with a new UIDVALIDITY */
	if (list_refresh(f, NULL) < 0 && (errno != ENOENT ||
	    list_ensure(f->path, NULL) < 0 || list_refresh(f, NULL) < 0))
		return -1;
	msgs_compact(f);
	full = scan_due(f);
	dead = st->nrecords > f->nmsgs ? st->nrecords - f->nmsgs : 0;
	if ((full || (f->rw && st->newseen) || (st->stale && st->watchfd >= 0) ||
	    (dead > f->nmsgs && dead >= COMPACT_MIN)) &&
	    sync_locked(f, full) < 0)
		return -1;
	/* a keyword is named in dovecot-keywords before any file name
	 * carries its letter: look again, so a letter just seen has its
	 * name */
	if (kw_refresh(f, 0) < 0)
		return -1;
	msgs_compact(f);
	names_compact(f);
	if (st->nclaimed || (f->nmsgs &&
	    f->msgs[f->nmsgs - 1].uid > st->recent_top))
		recent_settle(f);
	index_save(f);
	return st->changes != before;
}

/* Closing after changes: stamp the list for the next process, waiting a
 * little for the clock to pass the last change.  At exit the lock may be
 * this process's own (a failure half way through): it is not waited for. */
static void
stamp_last(struct folder *f, int wait)
{
	struct store_state *st = f->st;
	struct timespec ms = { 0, 1000000 };
	struct txn t;
	int i;

	if (!st->stale || st->watchfd < 0 || !st->scanned || st->dirty ||
	    txn_lock_how(&t, f->path, wait) < 0)
		return;
	msgs_thaw(f);
	if (txn_open(&t, f->path) == 0 && list_refresh(f, &t) == 0) {
		msgs_compact(f);
		for (i = 0; stamp_try(f, &t) == 1 && i < STAMP_WAIT_MS; i++)
			nanosleep(&ms, NULL);
		if (txn_write(&t) < 0)
			logmsg(LOG_WARNING, "%s/" UIDLIST ": %s", f->path,
			    strerror(errno));
	}
	txn_end(&t);
}

/* Maildir: readers delete tmp/ files untouched for 36 hours */
static void
tmp_sweep(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *d;
	struct stat sb;
	time_t now = time(NULL);
	DIR *dp;
	int fd;

	if (pathf(path, "%s/tmp", dir) < 0 || !(dp = opendir(path)))
		return;
	fd = dirfd(dp);
	while ((d = readdir(dp))) {
		if (d->d_name[0] == '.' ||
		    fstatat(fd, d->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(sb.st_mode) || now - sb.st_atime < TMP_MAX_AGE ||
		    now - sb.st_mtime < TMP_MAX_AGE)
			continue;
		unlinkat(fd, d->d_name, 0);
	}
	closedir(dp);
}

/* The state files (UID list, index, cache and its map) are written to
 * NAME.PID.tmp and renamed: a writer killed half way leaves that name
 * behind, perhaps hundreds of MB of cache.  One older than any write
 * takes goes. */
static void
state_sweep(const char *dir)
{
	char name[4 * NAME_MAX + 1];
	struct dirent *d;
	struct stat sb;
	time_t now = time(NULL);
	size_t n;
	DIR *dp;

	if (!(dp = opendir(dir)))
		return;
	while ((d = readdir(dp))) {
		n = strlen(d->d_name);
		if (strncmp(d->d_name, "imapd-", 6) || n < 10 ||
		    strcmp(d->d_name + n - 4, ".tmp") ||
		    fstatat(dirfd(dp), d->d_name, &sb,
		    AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode) ||
		    now - sb.st_mtime < STATE_TMP_AGE)
			continue;
		if (unlinkat(dirfd(dp), d->d_name, 0) == 0)
			logmsg(LOG_NOTICE, "%s: removed a stale %s", dir,
			    esc(name, sizeof(name), d->d_name));
	}
	closedir(dp);
}

/* a session that ends without closing its folder (LOGOUT, a dropped
 * connection) leaves the next process a list it can trust */
static void
stamp_at_exit(void)
{
	if (exit_folder) {
		msgcache_flush(exit_folder);
		stamp_last(exit_folder, 0);
	}
}

/* watch: follow the folder with inotify while it is open */
int
open_folder(struct folder *f, const char *name, int rw, int watch)
{
	char path[PATH_MAX];
	int saved, created;

	memset(f, 0, sizeof(*f));
	if (folder_dir(path, name) < 0)
		return -1;
	if (!is_dir(path)) {
		errno = ENOENT;
		return -1;
	}
	if (rw && make_subdirs(path) < 0)
		return -1;
	f->name = canonical_name(name);
	f->path = xstrdup(path);
	f->rw = rw;
	f->st = xcalloc(1, sizeof(*f->st));
	f->st->watchfd = -1;
	/* before anything is read: what changes after this is queued, and
	 * without it the mtimes decide */
	if (watch)
		watch_start(f);
	if (kw_refresh(f, 1) < 0 || (created = list_ensure(f->path, f)) < 0)
		goto fail;
	/* made just now from a scan inotify was watching */
	if (created && f->st->watchfd >= 0)
		f->st->scanned = f->st->stale = 1;
	if (folder_sync(f) < 0)
		goto fail;
	if (rw) {
		tmp_sweep(f->path);
		state_sweep(f->path);
	}
	if (watch) {
		if (!exit_hooked)
			exit_hooked = atexit(stamp_at_exit) == 0;
		exit_folder = f;
	}
	return 0;
fail:
	saved = errno;
	folder_close(f);
	errno = saved;
	return -1;
}

int
folder_open(struct folder *f, const char *name, int rw)
{
	return open_folder(f, name, rw, 1);
}

void
folder_close(struct folder *f)
{
	struct store_state *st = f->st;

	if (exit_folder == f)
		exit_folder = NULL;
	if (st) {
		msgcache_close(f);
		stamp_last(f, 1);
		if (st->watchfd >= 0)
			close(st->watchfd);
		free(st->exp);
		htab_free(&st->bh);
		htab_free(&st->vsidx);
		free(st->pend);
		buf_free(&st->pendnames);
		buf_free(&st->made);
		free(st->recent);
		free(st->claimed);
		free(st->vs);
		if (st->shared && st->shared != f->msgs)
			shared_free(st);
		st->shared = NULL;
		index_release(f);
		free(st);
	}
	kw_free(f->kw);
	free(f->name);
	free(f->path);
	memset(f, 0, sizeof(*f));
}

unsigned long
folder_changes(struct folder *f)
{
	return f->st->changes;
}

int
folder_first_unseen(struct folder *f, uint32_t *uid)
{
	struct store_state *st = f->st;

	if (!st->unseen_known || st->changes != st->unseen_at)
		return -1;
	*uid = st->first_unseen;
	return 0;
}

const uint32_t *
folder_recent(struct folder *f, size_t *n)
{
	*n = f->st->nrecent;
	return f->st->recent;
}

int
folder_unsettled(struct folder *f)
{
	return f->st->watchfd >= 0 && (f->st->npend || f->st->dirty);
}

int
folder_watchfd(struct folder *f)
{
	/* what changed before it was there is not queued: scan once */
	if (f->st->watchfd < 0 && watch_start(f) == 0)
		f->st->dirty = 1;
	/* a change inotify names is looked up by its file's name: the
	 * table is made while nothing waits, not at the first change */
	if (f->st->watchfd >= 0)
		names_ready(f);
	return f->st->watchfd;
}
