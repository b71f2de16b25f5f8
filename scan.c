/* scan.c: what a folder's directories hold, by name: new/ and cur/ read
 * without a stat or an open per message, names sorted in delivery order,
 * a new file taken into cur/; and a folder's first UID list, adopting
 * another server's UIDs (Dovecot's, Courier's) or giving new ones. */
#include <sys/types.h>
#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
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

void (*store_progress)(uint64_t, uint64_t);

/* ---- scanning new/ and cur/ -------------------------------------------- */

const char *
ent_name(const struct scan *s, size_t j)
{
	return s->names.p + s->e[j].off;
}

void
scan_free(struct scan *s)
{
	buf_free(&s->names);
	free(s->e);
	memset(s, 0, sizeof(*s));
}

/* the leading digits of a name (the delivery's seconds) as a number that
 * sorts as ent_cmp would: their count in the top bits, shorter first;
 * 0 when there are none or too many to fit */
static uint64_t
digits_key(const char *name)
{
	uint64_t v = 0;
	size_t n;

	for (n = 0; name[n] >= '0' && name[n] <= '9'; n++) {
		if (n == 17)
			return 0;
		v = v * 10 + (name[n] - '0');
	}
	return n ? (uint64_t)n << 57 | v : 0;
}

/* sub/name as the scan's next entry; its index */
size_t
scan_add(struct scan *s, const char *sub, const char *name)
{
	struct ent *e;

	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 256;
		s->e = xreallocarray(s->e, s->cap, sizeof(*s->e));
	}
	e = &s->e[s->n];
	e->off = s->names.len;
	e->blen = base_len(name);
	e->recent = 0;
	e->when = digits_key(name);
	buf_add(&s->names, sub, 3);
	buf_addc(&s->names, '/');
	buf_add(&s->names, name, strlen(name) + 1);
	return s->n++;
}

/* readdir only: no stat, no open per message */
int
scan_dir(struct scan *s, const char *dir, const char *sub)
{
	char path[PATH_MAX];
	struct dirent *d;
	DIR *dp;
	int saved;

	if (pathf(path, "%s/%s", dir, sub) < 0)
		return -1;
	if (!(dp = opendir(path)))
		return errno == ENOENT ? 0 : -1;
	for (;;) {
		errno = 0;
		if (!(d = readdir(dp)))
			break;
		if (d->d_name[0] == '.' || d->d_type == DT_DIR ||
		    strchr(d->d_name, '\n'))
			continue;
		scan_add(s, sub, d->d_name);
	}
	saved = errno;
	closedir(dp);
	errno = saved;
	return saved ? -1 : 0;
}

int
scan_folder(struct scan *s, const char *dir)
{
	if (scan_dir(s, dir, "new") < 0 || scan_dir(s, dir, "cur") < 0) {
		scan_free(s);
		return -1;
	}
	return 0;
}

/* sort of scan entries by base name, which starts with the delivery time */
static const struct scan *sort_scan;

static int
ent_cmp(const void *a, const void *b)
{
	const struct ent *x = &sort_scan->e[*(const size_t *)a];
	const struct ent *y = &sort_scan->e[*(const size_t *)b];
	const char *p = sort_scan->names.p + x->off + 4;
	const char *q = sort_scan->names.p + y->off + 4;
	size_t dx, dy;
	int c;

	if (x->when && y->when && x->when != y->when)
		return x->when < y->when ? -1 : 1;
	/* the leading seconds compare as numbers */
	dx = strspn(p, "0123456789");
	dy = strspn(q, "0123456789");
	if (dx != dy && dx && dy)
		return dx < dy ? -1 : 1;
	if ((c = memcmp(p, q, MIN(x->blen, y->blen))))
		return c;
	return x->blen < y->blen ? -1 : x->blen > y->blen;
}

void
sort_ents(const struct scan *s, size_t *v, size_t n)
{
	sort_scan = s;
	qsort(v, n, sizeof(*v), ent_cmp);
	sort_scan = NULL;
}

int
same_base(const struct scan *s, size_t a, size_t b)
{
	return s->e[a].blen == s->e[b].blen && !memcmp(ent_name(s, a) + 4,
	    ent_name(s, b) + 4, s->e[a].blen);
}

/* move new/X to cur/X:2, (keeping any info X already has) */
int
claim(const char *dir, const char *name, char *out, size_t outsz)
{
	char from[PATH_MAX], to[PATH_MAX];
	int n;

	n = snprintf(out, outsz, "cur/%s%s", name + 4,
	    strchr(name + 4, ':') ? "" : ":2,");
	if (n < 0 || (size_t)n >= outsz || n - 4 > NAME_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (pathf(from, "%s/%s", dir, name) < 0 ||
	    pathf(to, "%s/%s", dir, out) < 0)
		return -1;
	return rename(from, to);
}

/* ---- creating a UID list, adopting another server's ------------------- */

struct adopted {
	const char *base;
	uint32_t uid;
};

struct adopt {
	struct buf text;
	struct adopted *v;
	size_t n, cap;
	uint32_t uidvalidity, uidnext;
	int dovecot;		/* had modseqs: clients may hold old ones */
};

static int
adopted_cmp(const void *a, const void *b)
{
	return strcmp(((const struct adopted *)a)->base,
	    ((const struct adopted *)b)->base);
}

/*
 * dovecot-uidlist: "3 V<uidv> N<next> ..." then "<uid> [fields] :<file>";
 * version 1, and Courier's courierimapuiddb: "1 <uidv> <next>" then
 * "<uid> <file>".  1 when there is nothing to adopt.
 */
static int
adopt_read(const char *dir, struct adopt *a)
{
	char path[PATH_MAX], *line, *next, *p, *name;
	uint64_t ver, v, uid;
	int i, c, fields;

	memset(a, 0, sizeof(*a));
	for (i = 0; i < 2; i++) {
		if (pathf(path, "%s/%s", dir, i ? COURIER_UIDDB :
		    DOVECOT_UIDLIST) < 0)
			return -1;
		if (read_file(path, &a->text) == 0)
			break;
		if (errno != ENOENT)
			return -1;
	}
	if (i == 2)
		return 1;
	a->dovecot = i == 0;
	line = a->text.p ? a->text.p : "";
	if ((next = strchr(line, '\n')))
		*next++ = '\0';
	p = line;
	if (getnum((const char **)&p, p + strlen(p), &ver) < 0)
		goto bad;
	/* "1 <uidv> <next>" or "3 V<uidv> N<next> G<guid> ..." */
	for (fields = 0; (p = strchr(p, ' ')); fields++) {
		c = *++p;
		if (ver != 1 && c != 'V' && c != 'N')
			continue;
		if (ver != 1)
			p++;
		else
			c = fields == 0 ? 'V' : fields == 1 ? 'N' : 0;
		if (getnum((const char **)&p, p + strlen(p), &v) < 0 ||
		    v > UINT32_MAX)
			goto bad;
		if (c == 'V')
			a->uidvalidity = v;
		else if (c == 'N')
			a->uidnext = v;
	}
	if (!a->uidvalidity)
		goto bad;
	for (line = next; line && *line; line = next) {
		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		p = line;
		if (getnum((const char **)&p, p + strlen(p), &uid) < 0 ||
		    *p != ' ' || !uid || uid >= UINT32_MAX)
			continue;
		if (ver == 1)
			name = p + 1;
		else if ((name = strstr(p, " :")))
			name += 2;
		else
			continue;
		name[base_len(name)] = '\0';
		if (!*name)
			continue;
		if (a->n == a->cap) {
			a->cap = a->cap ? a->cap * 2 : 256;
			a->v = xreallocarray(a->v, a->cap, sizeof(*a->v));
		}
		a->v[a->n].base = name;
		a->v[a->n].uid = uid;
		a->n++;
		if (uid >= a->uidnext)
			a->uidnext = uid + 1;
	}
	if (a->n)
		qsort(a->v, a->n, sizeof(*a->v), adopted_cmp);
	logmsg(LOG_INFO, "%s: adopting UIDs of %s", dir, path);
	return 0;
bad:
	logmsg(LOG_WARNING, "%s: unreadable, not adopted", path);
	buf_free(&a->text);
	memset(a, 0, sizeof(*a));
	return 1;
}

static void
adopt_free(struct adopt *a)
{
	buf_free(&a->text);
	free(a->v);
}

static uint32_t
adopt_find(const struct adopt *a, const char *base, size_t blen)
{
	size_t lo = 0, hi = a->n, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strncmp(a->v[mid].base, base, blen);
		if (!c && a->v[mid].base[blen])
			c = 1;
		if (!c)
			return a->v[mid].uid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* a UIDVALIDITY no earlier folder of this Maildir had, even one deleted
 * and created again within the same second */
static uint32_t
new_uidvalidity(void)
{
	char path[PATH_MAX], num[32];
	struct buf b = { 0 };
	uint32_t v = time(NULL), last = 0;
	int fd;

	if ((fd = lock_root()) < 0)
		return v;
	if (pathf(path, "%s/" UIDV_FILE, root) == 0 && read_file(path, &b) == 0)
		last = strtoul(b.p ? b.p : "0", NULL, 10);
	if (last >= v && last < UINT32_MAX)
		v = last + 1;
	snprintf(num, sizeof(num), "%u\n", v);
	if (write_file(root, UIDV_FILE, num, strlen(num)) < 0)
		logmsg(LOG_WARNING, "%s: %s", path, strerror(errno));
	unlock_fd(fd);
	buf_free(&b);
	return v;
}

struct newrec {
	uint32_t uid;
	size_t ent;
};

static int
newrec_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct newrec *)a)->uid;
	uint32_t y = ((const struct newrec *)b)->uid;

	return x < y ? -1 : x > y;
}

/* the list just written, kept for f's first list_load: the same bytes
 * need not be read back (the file is replaced, never rewritten in place,
 * so its inode and size say whether it is still this one) */
static void
list_keep(struct folder *f, const char *dir, struct buf *b)
{
	char path[PATH_MAX];
	struct stat sb;

	if (pathf(path, "%s/" UIDLIST, dir) < 0 || stat(path, &sb) < 0 ||
	    sb.st_size != (off_t)b->len)
		return;
	buf_free(&f->st->made);
	f->st->made = *b;
	f->st->made_dev = sb.st_dev;
	f->st->made_ino = sb.st_ino;
	memset(b, 0, sizeof(*b));
}

/* first UID list of a folder (lock held by t): another server's UIDs
 * where it left some, new ones for every other file.  A read-write f
 * takes the files in new/ on the way (one record each, in cur/). */
static int
list_create(const char *dir, struct txn *t, struct folder *f)
{
	char claimed[NAME_MAX + 8];
	struct adopt a;
	struct scan s = { 0 };
	struct newrec *v;
	struct buf b = { 0 };
	struct timespec now;
	struct stat sn, sc;
	const char *name;
	size_t *unk, nunk = 0, n = 0, j;
	uint32_t uidv, next, uid;
	uint64_t m0;
	int none, r, stamp;

	if ((none = adopt_read(dir, &a)) < 0)
		return -1;
	/* the clock, the mtimes, then the names: see stamp_try */
	stamp = fs_now(t, &now) == 0 && dir_stat(dir, "new", &sn) == 0 &&
	    dir_stat(dir, "cur", &sc) == 0 && ts_lt(sn.st_mtim, now) &&
	    ts_lt(sc.st_mtim, now);
	if (scan_folder(&s, dir) < 0) {
		adopt_free(&a);
		return -1;
	}
	uidv = none ? new_uidvalidity() : a.uidvalidity;
	next = none ? 1 : MAX(a.uidnext, 1);
	/* a client may hold Dovecot's modseqs: start above any it has */
	m0 = !none && a.dovecot ? (uint64_t)time(NULL) : 1;
	v = xreallocarray(NULL, s.n + 1, sizeof(*v));
	unk = xreallocarray(NULL, s.n + 1, sizeof(*unk));
	for (j = 0; j < s.n; j++) {
		uid = none ? 0 : adopt_find(&a, ent_name(&s, j) + 4,
		    s.e[j].blen);
		if (uid) {
			v[n].uid = uid;
			v[n++].ent = j;
		} else
			unk[nunk++] = j;
	}
	qsort(v, n, sizeof(*v), newrec_cmp);
	sort_ents(&s, unk, nunk);
	for (j = 0; j < nunk; j++) {
		if (j && same_base(&s, unk[j - 1], unk[j]))
			continue;
		v[n].uid = next++;
		v[n++].ent = unk[j];
	}
	buf_printf(&b, UIDLIST_MAGIC "V%u N%u M%llu H%llu G%llu\n", uidv, next,
	    (unsigned long long)m0,
	    (unsigned long long)(!none && a.dovecot ? m0 : 0),
	    (unsigned long long)new_gen());
	for (j = 0; j < n; j++) {
		/* two files with one base name: only the first keeps it */
		if (j && v[j].uid == v[j - 1].uid)
			continue;
		name = ent_name(&s, v[j].ent);
		if (f && f->rw && !strncmp(name, "new/", 4)) {
			if (claim(dir, name, claimed, sizeof(claimed)) == 0) {
				name = claimed;
				claimed_add(f->st, v[j].uid);
				moved_note(f, v[j].uid);
				stamp = 0;
			} else if (errno == ENOENT)
				continue;	/* taken meanwhile */
		}
		/* "UID MODSEQ NAME", without printf: 100,000 of them */
		buf_addnum(&b, v[j].uid);
		buf_addc(&b, ' ');
		buf_addnum(&b, m0);
		buf_addc(&b, ' ');
		buf_adds(&b, name);
		buf_addc(&b, '\n');
		if (store_progress)
			store_progress(j + 1, n);
	}
	if (stamp)
		buf_printf(&b, "S %lld.%09ld %lld.%09ld\n",
		    (long long)sn.st_mtim.tv_sec, (long)sn.st_mtim.tv_nsec,
		    (long long)sc.st_mtim.tv_sec, (long)sc.st_mtim.tv_nsec);
	if ((r = write_file(dir, UIDLIST, b.p, b.len)) == 0 && f)
		list_keep(f, dir, &b);
	buf_free(&b);
	free(v);
	free(unk);
	scan_free(&s);
	adopt_free(&a);
	return r;
}

/* the folder has a UID list, creating it the first time (for f, when
 * given: see list_create); 1 when this call created it */
int
list_ensure(const char *dir, struct folder *f)
{
	char path[PATH_MAX];
	struct txn t;
	int r;

	if (pathf(path, "%s/" UIDLIST, dir) < 0)
		return -1;
	if (access(path, F_OK) == 0)
		return 0;
	if (errno != ENOENT || txn_lock(&t, dir) < 0)
		return -1;
	r = access(path, F_OK);
	if (r < 0 && errno == ENOENT && (r = list_create(dir, &t, f)) == 0)
		r = 1;
	txn_end(&t);
	return r;
}
