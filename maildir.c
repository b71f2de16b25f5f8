/* maildir.c: the message store's UID record: the UID list of a folder,
 * the messages in memory, flags and keywords in file names, folder names
 * and their directories.  The lowest of the store's rooms, calling none
 * of the others: folders.c (the folder namespace), message.c (the
 * messages), sync.c (folder sync with new/ and cur/), scan.c (listing
 * them, a first UID list), txn.c (changing the UID list under its lock),
 * index.c (the binary index), msgcache.c (the message cache).
 *
 * Layout: INBOX is the root Maildir, folder "A.B" is the directory ".A.B"
 * beside it (names in modified UTF-7, as Dovecot and Courier keep them).
 *
 * The text UID list is the durable record of UIDs, modseqs and expunges,
 * and the only one adoption (dovecot-uidlist, courierimapuiddb) writes.
 * The binary index (imapd-index, index.c) is a snapshot of it that a new
 * process reads instead of parsing; it may always be deleted.
 *
 * Each folder has a UID list, "imapd-uidlist": a header line
 *	imapd-uidlist 1 V<uidvalidity> N<uidnext> M<highestmodseq> H<floor>
 *	    G<generation>
 * then records appended one line each:
 *	<uid> <modseq> <cur/name:2,flags>	a message (the last one wins)
 *	E <uid>[-<uid>] <modseq>		expunged at modseq
 *	S <new/ mtime> <cur/ mtime>		scan stamp (below)
 * Readers take no lock and ignore an unterminated last line.  Writers hold
 * an exclusive flock on "imapd-uidlist.lock", read what others appended,
 * then append with one write(); a compaction rewrites the file and renames
 * it into place.  H is the modseq below which expunges are not known (the
 * list was adopted from another server); G tells one file written whole
 * from the next.
 *
 * A scan stamp says the records before it describe new/ and cur/ as they
 * were while their mtimes were these.  It is written only when no later
 * change can leave those mtimes as they are: the file system's own clock
 * (the lock file touched) must have moved past them before they were
 * read.  A process that finds the mtimes equal to the last stamp needs no
 * readdir.  An open folder follows new/ and cur/ with inotify, set up
 * before anything is read: an event the list explains (a rename this or
 * another imapd made and recorded) costs nothing, anything else means a
 * scan; so the process that changes a folder can stamp it again.  Without
 * inotify the directory mtimes decide when to scan.
 *
 * The lock file holds one line caching the highest UID and modseq of the
 * list up to an offset (see cache_put), so that adding a message reads
 * only the records appended since.
 *
 * \Recent (RFC 3501 2.3.2): a message is recent in the one session first
 * told of it.  The lock file's second line, "imapd-recent <uid>", holds
 * the highest UID any read-write session has been told of; a session
 * that finds UIDs above it takes them as recent and raises it, lock held
 * (recent_settle).  A folder without that line yet counts what it holds
 * outside new/ as told before.
 *
 * Keywords are letters a..z after the system flags in file names, mapped
 * to names by Dovecot's "dovecot-keywords" so Dovecot keeps understanding
 * them, and written under the same lock.
 */
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

#include "util.h"
#include "maildir.h"
#include "store.h"
#include "mutf7.h"

static const char sysletters[] = "DFPRST";	/* bit i = letter i */

char *root;		/* the Maildir root, set by store_init */
struct folder *exit_folder;	/* open, watched: stamped at exit */
int exit_hooked;		/* stamp_at_exit is registered */
char host[256];		/* host name for unique names, escaped */
unsigned long uniqcount;	/* Q<n> of unique names */

/* ---- small helpers ----------------------------------------------------- */

int
pathf(char *buf, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, PATH_MAX, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
is_inbox(const char *name)
{
	return !ascii_casecmp(name, "INBOX");
}

int
fsync_path(const char *path)
{
	int fd, r;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

int
write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	ssize_t k;

	while (n) {
		if ((k = write(fd, c, n)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += k;
		n -= k;
	}
	return 0;
}

/* read [off, end) of fd into b */
int
read_range(int fd, off_t off, off_t end, struct buf *b)
{
	ssize_t k;

	buf_reset(b);
	if (end <= off)
		return 0;
	buf_grow(b, end - off);
	while (off < end) {
		if ((k = pread(fd, b->p + b->len, end - off, off)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (k == 0)
			break;
		b->len += k;
		off += k;
	}
	b->p[b->len] = '\0';
	return 0;
}

/* a whole small file, NUL-terminated; -1 with errno (ENOENT) */
int
read_file(const char *path, struct buf *b)
{
	struct stat st;
	int fd, r;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if ((r = fstat(fd, &st)) == 0)
		r = read_range(fd, 0, st.st_size, b);
	close(fd);
	return r;
}

/* replace path by data: temporary file, fsync, rename, fsync dir */
int
write_file(const char *dir, const char *name, const char *data, size_t len)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	int fd;

	if (pathf(tmp, "%s/%s.%ld.tmp", dir, name, (long)getpid()) < 0 ||
	    pathf(path, "%s/%s", dir, name) < 0)
		return -1;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) < 0)
		return -1;
	if (write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return fsync_path(dir);
}

int
getnum(const char **pp, const char *end, uint64_t *v)
{
	const char *p = *pp;
	uint64_t x = 0;

	if (p >= end || *p < '0' || *p > '9')
		return -1;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		if (x > (UINT64_MAX - 9) / 10)
			return -1;
		x = x * 10 + (*p - '0');
	}
	*pp = p;
	*v = x;
	return 0;
}

/* wait for an exclusive flock, but not forever: a stopped process must
 * not hang every other one */
int
lock_fd(int fd)
{
	struct timespec ts;
	long waited = 0, delay = 1;

	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK)
			return -1;
		if (waited >= LOCK_TIMEOUT_MS) {
			logmsg(LOG_ERR, "lock wait timed out");
			errno = ETIMEDOUT;
			return -1;
		}
		ts.tv_sec = 0;
		ts.tv_nsec = delay * 1000000L;
		nanosleep(&ts, NULL);
		waited += delay;
		delay = MIN(delay * 2, 16);
	}
	return 0;
}

/* the root directory, locked: serialises subscriptions and UIDVALIDITY */
int
lock_root(void)
{
	int fd;

	if ((fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	if (lock_fd(fd) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

void
unlock_fd(int fd)
{
	int saved = errno;

	if (fd >= 0)
		close(fd);
	errno = saved;
}

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	if (remove(path) < 0 && errno != ENOENT)
		logmsg(LOG_WARNING, "remove %s: %s", path, strerror(errno));
	return 0;
}

void
rm_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- folder names and their directories -------------------------------- */

/* a folder name the store can keep as a directory */
int
mbox_valid(const char *name)
{
	struct buf b = { 0 };
	const char *p;
	size_t len = strlen(name);
	int r;

	if (is_inbox(name))
		return 1;
	/* ".name" must fit a directory entry */
	if (len == 0 || len > NAME_MAX - 1)
		return 0;
	if (name[0] == STORE_SEP || name[len - 1] == STORE_SEP)
		return 0;
	for (p = name; *p; p++) {
		if (*p < 0x20 || *p > 0x7e || *p == '/')
			return 0;
		if (*p == STORE_SEP && p[1] == STORE_SEP)
			return 0;
	}
	/* the "&...-" runs must be modified UTF-7 */
	r = mutf7_to_utf8(&b, name) == 0;
	buf_free(&b);
	return r;
}

/* the directory of a folder; INBOX as a first component is canonical */
int
folder_dir(char *buf, const char *name)
{
	if (!mbox_valid(name)) {
		errno = EINVAL;
		return -1;
	}
	if (is_inbox(name))
		return pathf(buf, "%s", root);
	if (!ascii_ncasecmp(name, "INBOX.", 6))
		return pathf(buf, "%s/.INBOX%s", root, name + 5);
	return pathf(buf, "%s/.%s", root, name);
}

char *
canonical_name(const char *name)
{
	char *s = xstrdup(name);

	if (is_inbox(name) || !ascii_ncasecmp(name, "INBOX.", 6))
		memcpy(s, "INBOX", 5);
	return s;
}

int
is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int
make_subdirs(const char *dir)
{
	static const char *const sub[] = { "cur", "new", "tmp" };
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < LEN(sub); i++) {
		if (pathf(path, "%s/%s", dir, sub[i]) < 0)
			return -1;
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return -1;
	}
	return 0;
}

/* ---- messages in memory ------------------------------------------------ */

const char *
mname(const struct folder *f, const struct msg *m)
{
	return f->names + m->name;
}

/* length of the base name: the part before the info */
size_t
base_len(const char *fname)
{
	const char *p = strchr(fname, ':');

	return p ? (size_t)(p - fname) : strlen(fname);
}

/* room for n messages in msgs, those there kept; msgs that lie in the
 * index's private map move to the heap when they outgrow its room */
void
msgs_reserve(struct folder *f, size_t n)
{
	struct store_state *st = f->st;
	struct msg *p;

	msgs_thaw(f);
	if (n <= st->msgscap)
		return;
	if (st->msgs_map) {
		p = xreallocarray(NULL, n, sizeof(*p));
		memcpy(p, f->msgs, f->nmsgs * sizeof(*p));
		munmap(f->msgs, st->msgs_map);
		f->msgs = p;
		st->msgs_map = 0;
	} else
		f->msgs = xreallocarray(f->msgs, n, sizeof(*f->msgs));
	st->msgscap = n;
}

/* msgs handed out by folder_share are not changed: the store takes a
 * copy of them before its first change */
void
msgs_thaw(struct folder *f)
{
	struct store_state *st = f->st;
	struct msg *p;

	st->unseen_known = 0;	/* a change is coming */
	if (!st->shared || f->msgs != st->shared)
		return;
	p = xreallocarray(NULL, MAX(st->msgscap, f->nmsgs + 64), sizeof(*p));
	memcpy(p, f->msgs, f->nmsgs * sizeof(*p));
	f->msgs = p;
	st->msgscap = MAX(st->msgscap, f->nmsgs + 64);
	st->msgs_map = 0;	/* the map is the reader's now */
}

struct msg *
folder_share(struct folder *f)
{
	struct store_state *st = f->st;

	if (st->shared || !f->nmsgs)
		return NULL;
	st->shared = f->msgs;
	st->shared_map = st->msgs_map;
	/* what must not change cannot: a stray write faults */
	if (st->shared_map)
		mprotect(st->shared, st->shared_map, PROT_READ);
	return f->msgs;
}

void
shared_free(struct store_state *st)
{
	if (st->shared_map)
		munmap(st->shared, st->shared_map);
	else
		free(st->shared);
	st->shared = NULL;
	st->shared_map = 0;
}

void
folder_unshare(struct folder *f)
{
	struct store_state *st = f->st;

	if (!st->shared)
		return;
	if (st->shared != f->msgs)
		shared_free(st);
	else if (st->shared_map)
		mprotect(st->shared, st->shared_map, PROT_READ | PROT_WRITE);
	st->shared = NULL;
	st->shared_map = 0;
}

/* room for n bytes of names, the same way */
void
names_reserve(struct folder *f, size_t n)
{
	struct store_state *st = f->st;
	char *p;

	if (n <= f->namescap)
		return;
	if (st->names_map) {
		p = xmalloc(n);
		memcpy(p, f->names, f->nameslen);
		munmap(f->names, st->names_map);
		f->names = p;
		st->names_map = 0;
	} else
		f->names = xrealloc(f->names, n);
	f->namescap = n;
}

static uint32_t
names_add(struct folder *f, const char *s, size_t len)
{
	uint32_t off;

	if (f->nameslen + len + 1 > f->namescap)
		names_reserve(f, MAX(f->namescap * 2, f->nameslen + len + 4096));
	off = f->nameslen;
	memcpy(f->names + off, s, len);
	f->names[off + len] = '\0';
	f->nameslen += len + 1;
	return off;
}

/* name must not point into f->names */
void
msg_setname(struct folder *f, struct msg *m, const char *name, size_t len)
{
	/* m is f's own: msgs_thaw came before it was taken */
	moved_note(f, m->uid);
	f->st->namesdead += strlen(mname(f, m)) + 1;
	m->name = names_add(f, name, len);
}

/* drop the garbage left in the arena by renames */
void
names_compact(struct folder *f)
{
	struct store_state *st = f->st;
	char *old = f->names;
	size_t i, len, oldmap = st->names_map;

	if (st->namesdead < 65536 || st->namesdead < f->nameslen / 2)
		return;
	msgs_thaw(f);
	f->namescap = f->nameslen - st->namesdead + 4096;
	f->names = xmalloc(f->namescap);
	f->nameslen = 0;
	st->names_map = 0;
	for (i = 0; i < f->nmsgs; i++) {
		len = strlen(old + f->msgs[i].name);
		f->msgs[i].name = names_add(f, old + f->msgs[i].name, len);
	}
	if (oldmap)
		munmap(old, oldmap);
	else
		free(old);
	st->namesdead = 0;
}

long
lower_bound(const struct folder *f, uint32_t uid)
{
	size_t lo = 0, hi = f->nmsgs, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (f->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

long
folder_find(struct folder *f, uint32_t uid)
{
	long i = lower_bound(f, uid);

	if ((size_t)i < f->nmsgs && f->msgs[i].uid == uid &&
	    !(f->msgs[i].flags & FL_GONE))
		return i;
	return -1;
}

long
folder_find_near(struct folder *f, size_t near, uint32_t uid)
{
	if (near < f->nmsgs && f->msgs[near].uid == uid)
		return f->msgs[near].flags & FL_GONE ? -1 : (long)near;
	return folder_find(f, uid);
}

/* ---- finding a message by file name: base name -> UID ----------------- */

/* built when first needed; msg_insert adds to it, and entries of
 * messages dropped since are skipped by name_find */
static void
bh_build(struct folder *f)
{
	struct store_state *st = f->st;
	const char *b;
	size_t i;

	htab_init(&st->bh, f->nmsgs);
	for (i = 0; i < f->nmsgs; i++) {
		b = mname(f, &f->msgs[i]) + 4;
		htab_put(&st->bh, hash_bytes(b, base_len(b)), f->msgs[i].uid);
	}
}

void
names_ready(struct folder *f)
{
	if (!f->st->bh.slot)
		bh_build(f);
}

static void
bh_add(struct store_state *st, const char *name, uint32_t uid)
{
	const char *b = name + 4;

	if (st->bh.slot)
		htab_put(&st->bh, hash_bytes(b, base_len(b)), uid);
}

/* A short session that renames a few files (one STORE) reads back
 * their inotify events: the message each names is found from the UIDs
 * noted here, as a base name belongs to one message for good, and the
 * hash of every base name (100,000 of them) need not be built for it */
void
moved_note(struct folder *f, uint32_t uid)
{
	struct store_state *st = f->st;

	if (st->watchfd < 0 || st->bh.slot)
		return;
	if (st->nmoved < MOVED_MAX)
		st->moved[st->nmoved] = uid;
	st->nmoved++;
}

/* 1 when name's base is that of a message noted above, with *i its
 * index when it is live and has name, else -1; 0 when not known here */
int
moved_find(struct folder *f, const char *name, long *i)
{
	struct store_state *st = f->st;
	const char *b = name + 4, *m;
	size_t k, blen = base_len(b);
	long j;

	if (st->bh.slot || st->nmoved > MOVED_MAX)
		return 0;
	for (k = 0; k < st->nmoved; k++) {
		j = lower_bound(f, st->moved[k]);
		if ((size_t)j >= f->nmsgs || f->msgs[j].uid != st->moved[k])
			continue;
		m = mname(f, &f->msgs[j]);
		if (strncmp(m + 4, b, blen) || (m[4 + blen] != ':' &&
		    m[4 + blen]))
			continue;
		*i = !(f->msgs[j].flags & FL_GONE) && !strcmp(m, name) ? j : -1;
		return 1;
	}
	return 0;
}

/* index of the live message whose file is name ("cur/..."), or -1 */
long
name_find(struct folder *f, const char *name)
{
	struct store_state *st = f->st;
	const char *b = name + 4;
	size_t pos = 0;
	uint32_t uid;
	long i;

	if (!st->bh.slot)
		bh_build(f);
	while (htab_next(&st->bh, hash_bytes(b, base_len(b)), &pos, &uid)) {
		i = folder_find(f, uid);
		if (i >= 0 && !strcmp(mname(f, &f->msgs[i]), name))
			return i;
	}
	return -1;
}

/* base_find for a few names ("new/..." or "cur/...") at once: one pass
 * over the messages' names costs less than hashing them all (100,000 at
 * 100k) when the hash is not there yet; idx[j] for names[j] */
void
bases_find(struct folder *f, const char *const *names, size_t n, long *idx)
{
	const char *m;
	size_t i, j, blen[BASES_FEW];

	if (f->st->bh.slot || n > BASES_FEW) {
		for (j = 0; j < n; j++)
			idx[j] = base_find(f, names[j]);
		return;
	}
	for (j = 0; j < n; j++) {
		idx[j] = -1;
		blen[j] = base_len(names[j] + 4);
	}
	for (i = 0; i < f->nmsgs; i++) {
		if (f->msgs[i].flags & FL_GONE)
			continue;
		m = mname(f, &f->msgs[i]) + 4;
		for (j = 0; j < n; j++)
			if (!memcmp(m, names[j] + 4, blen[j]) &&
			    (m[blen[j]] == ':' || !m[blen[j]]))
				idx[j] = i;
	}
}

/* index of the live message whose file has the base name of name
 * ("cur/..." or "new/...", with any flags), or -1 */
long
base_find(struct folder *f, const char *name)
{
	struct store_state *st = f->st;
	const char *b = name + 4, *m;
	size_t blen = base_len(b), pos = 0;
	uint32_t uid;
	long i;

	if (!st->bh.slot)
		bh_build(f);
	while (htab_next(&st->bh, hash_bytes(b, blen), &pos, &uid)) {
		if ((i = folder_find(f, uid)) < 0)
			continue;
		m = mname(f, &f->msgs[i]) + 4;
		if (!strncmp(m, b, blen) && (m[blen] == ':' || !m[blen]))
			return i;
	}
	return -1;
}

static int
recent_has(const struct store_state *st, uint32_t uid)
{
	size_t lo = 0, hi = st->nrecent, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (st->recent[mid] == uid)
			return 1;
		if (st->recent[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

void
recent_add(struct store_state *st, uint32_t uid)
{
	size_t i;

	if (recent_has(st, uid))
		return;
	if (st->nrecent == st->recentcap) {
		st->recentcap = st->recentcap ? st->recentcap * 2 : 64;
		st->recent = xreallocarray(st->recent, st->recentcap,
		    sizeof(*st->recent));
	}
	/* UIDs mostly arrive in ascending order */
	for (i = st->nrecent; i > 0 && st->recent[i - 1] > uid; i--)
		st->recent[i] = st->recent[i - 1];
	st->recent[i] = uid;
	st->nrecent++;
}

void
claimed_add(struct store_state *st, uint32_t uid)
{
	if (st->nclaimed == st->claimedcap) {
		st->claimedcap = st->claimedcap ? st->claimedcap * 2 : 64;
		st->claimed = xreallocarray(st->claimed, st->claimedcap,
		    sizeof(*st->claimed));
	}
	st->claimed[st->nclaimed++] = uid;
}

/* the cached RFC822.SIZE slot of uid */
uint64_t *
vsize_slot(struct store_state *st, uint32_t uid, int create)
{
	uint32_t hv = hash_bytes(&uid, sizeof(uid)), k;
	size_t pos = 0;

	while (htab_next(&st->vsidx, hv, &pos, &k))
		if (st->vs[k - 1].uid == uid)
			return &st->vs[k - 1].size;
	if (!create)
		return NULL;
	if (st->nvs == st->vscap) {
		st->vscap = st->vscap ? st->vscap * 2 : 256;
		st->vs = xreallocarray(st->vs, st->vscap, sizeof(*st->vs));
	}
	st->vs[st->nvs].uid = uid;
	htab_put(&st->vsidx, hv, ++st->nvs);
	return &st->vs[st->nvs - 1].size;
}
/* flags and keywords of a file name ("X:2,FSa", without new/ or cur/) */
void
fname_flags(char *const *kwnames, const char *fname, uint32_t *flags,
    uint32_t *kw)
{
	const char *p, *c;

	*flags = *kw = 0;
	if (!(p = strchr(fname, ':')) || strncmp(p, ":2,", 3))
		return;
	for (p += 3; *p && *p != ','; p++) {
		if ((c = strchr(sysletters, *p)))
			*flags |= 1U << (c - sysletters);
		else if (*p >= 'a' && *p <= 'z' && kwnames[*p - 'a'])
			*kw |= 1U << (*p - 'a');
	}
}

void
msg_parse(struct folder *f, struct msg *m)
{
	const char *name = mname(f, m);

	fname_flags(f->kw, name + 4, &m->flags, &m->kw);
	if (!strncmp(name, "new/", 4))
		f->st->newseen = 1;
	if (recent_has(f->st, m->uid))
		m->flags |= FL_RECENT;
}

/*
 * "cur/<base>:2,<letters>" for fname with these flags.  Letters are sorted
 * (ASCII: system flags, other capitals, then keywords); letters this store
 * does not manage and anything after a ',' in the info are kept.
 */
int
flag_name(char *const *kwnames, const char *fname, uint32_t flags,
    uint32_t kw, char *out, size_t outsz)
{
	unsigned char have[256] = { 0 };
	char letters[256];
	const char *info, *rest = "", *c;
	size_t blen = base_len(fname), nl = 0;
	int i, n;

	if ((info = strchr(fname, ':')) && !strncmp(info, ":2,", 3)) {
		for (info += 3; *info && *info != ','; info++) {
			if ((c = strchr(sysletters, *info)) ||
			    (*info >= 'a' && *info <= 'z' &&
			    kwnames[*info - 'a']))
				continue;
			have[(unsigned char)*info] = 1;
		}
		rest = info;
	}
	for (i = 0; i < 6; i++)
		if (flags & 1U << i)
			have[(unsigned char)sysletters[i]] = 1;
	for (i = 0; i < KW_MAX; i++)
		if (kw & 1U << i && kwnames[i])
			have['a' + i] = 1;
	for (i = 1; i < 256; i++)
		if (have[i])
			letters[nl++] = i;
	n = snprintf(out, outsz, "cur/%.*s:2,%.*s%s", (int)blen, fname,
	    (int)nl, letters, rest);
	if (n < 0 || (size_t)n >= outsz || n - 4 > NAME_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* ",S=123" or ",W=456" in the base name */
int
name_field(const char *fname, int key, uint64_t *v)
{
	const char *p = fname, *end = fname + base_len(fname), *q;

	while ((p = memchr(p, ',', end - p))) {
		p++;
		if (end - p > 2 && p[0] == key && p[1] == '=') {
			q = p + 2;
			if (getnum(&q, end, v) == 0 && (q == end || *q == ','))
				return 0;
		}
	}
	return -1;
}

/* ---- keywords ---------------------------------------------------------- */

void
kw_free(char **kw)
{
	int i;

	for (i = 0; i < KW_MAX; i++) {
		free(kw[i]);
		kw[i] = NULL;
	}
}

int
kw_count(char *const *kw)
{
	int i, n = 0;

	for (i = 0; i < KW_MAX; i++)
		if (kw[i])
			n = i + 1;
	return n;
}

/* dovecot-keywords: "<index> <name>" lines */
int
kw_load(const char *dir, char **kw, struct stat *sb)
{
	char path[PATH_MAX], *line, *next, *p;
	struct buf b = { 0 };
	uint64_t idx;

	kw_free(kw);
	if (sb)
		memset(sb, 0, sizeof(*sb));
	if (pathf(path, "%s/" KEYWORDS, dir) < 0)
		return -1;
	if (sb && stat(path, sb) < 0)
		return errno == ENOENT ? 0 : -1;
	if (read_file(path, &b) < 0) {
		buf_free(&b);
		return errno == ENOENT ? 0 : -1;
	}
	for (line = b.p; line && *line; line = next) {
		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		p = line;
		if (getnum((const char **)&p, line + strlen(line), &idx) < 0 ||
		    *p != ' ' || !p[1] || idx >= KW_MAX || kw[idx])
			continue;
		kw[idx] = xstrdup(p + 1);
	}
	buf_free(&b);
	return 0;
}

int
kw_save(const char *dir, char *const *kw)
{
	struct buf b = { 0 };
	int i, r;

	for (i = 0; i < KW_MAX; i++)
		if (kw[i])
			buf_printf(&b, "%d %s\n", i, kw[i]);
	r = write_file(dir, KEYWORDS, b.p ? b.p : "", b.len);
	buf_free(&b);
	return r;
}

int
kw_index(char *const *kw, const char *name)
{
	int i;

	for (i = 0; i < KW_MAX; i++)
		if (kw[i] && !ascii_casecmp(kw[i], name))
			return i;
	return -1;
}

int
kw_add(char **kw, const char *name)
{
	int i;

	for (i = 0; i < KW_MAX; i++)
		if (!kw[i]) {
			kw[i] = xstrdup(name);
			return i;
		}
	return -1;
}

/* reload dovecot-keywords when another process changed it */
int
kw_refresh(struct folder *f, int force)
{
	struct store_state *st = f->st;
	char path[PATH_MAX];
	struct stat sb;
	uint32_t fl, kw;
	size_t i;

	if (pathf(path, "%s/" KEYWORDS, f->path) < 0)
		return -1;
	if (stat(path, &sb) < 0) {
		if (errno != ENOENT)
			return -1;
		memset(&sb, 0, sizeof(sb));
	}
	if (!force && sb.st_ino == st->kw_ino && sb.st_size == st->kw_size &&
	    sb.st_mtim.tv_sec == st->kw_mtime.tv_sec &&
	    sb.st_mtim.tv_nsec == st->kw_mtime.tv_nsec)
		return 0;
	msgs_thaw(f);
	if (kw_load(f->path, f->kw, &sb) < 0)
		return -1;
	st->kw_ino = sb.st_ino;
	st->kw_size = sb.st_size;
	st->kw_mtime = sb.st_mtim;
	f->nkw = kw_count(f->kw);
	for (i = 0; i < f->nmsgs; i++) {
		fl = f->msgs[i].flags;
		kw = f->msgs[i].kw;
		msg_parse(f, &f->msgs[i]);
		f->msgs[i].flags |= fl & FL_GONE;
		if (f->msgs[i].kw != kw)
			st->changes++;
	}
	return 0;
}

/* ---- the UID list: parsing and applying -------------------------------- */

int
parse_header(const char *p, const char *end, struct hdr *h)
{
	size_t mlen = strlen(UIDLIST_MAGIC);
	uint64_t v;
	int c;

	memset(h, 0, sizeof(*h));
	if ((size_t)(end - p) < mlen || strncmp(p, UIDLIST_MAGIC, mlen))
		return -1;
	for (p += mlen; p < end; ) {
		c = *p++;
		if (getnum(&p, end, &v) < 0)
			return -1;
		if ((c == 'V' || c == 'N') && v > UINT32_MAX)
			return -1;
		if (c == 'V')
			h->uidvalidity = v;
		else if (c == 'N')
			h->uidnext = v;
		else if (c == 'M')
			h->modseq = v;
		else if (c == 'H')
			h->floor = v;
		else if (c == 'G')
			h->gen = v;
		if (p < end && *p++ != ' ')
			return -1;
	}
	return h->uidvalidity ? 0 : -1;
}

static int
valid_fname(const char *p, size_t len)
{
	if (len < 5 || len - 4 > NAME_MAX || p[4] == '.' ||
	    (strncmp(p, "cur/", 4) && strncmp(p, "new/", 4)))
		return 0;
	return !memchr(p + 4, '/', len - 4) && !memchr(p, '\0', len);
}

int
parse_rec(const char *p, const char *end, struct rec *r)
{
	uint64_t a, b, m;

	if (*p == 'S') {
		/* S <sec>.<nsec> <sec>.<nsec>: mtimes of new/ and cur/ when
		 * the list last matched the directories */
		uint64_t v[4];
		int k;

		for (p++, k = 0; k < 4; k++)
			if (p == end || *p++ != (k % 2 ? '.' : ' ') ||
			    getnum(&p, end, &v[k]) < 0)
				return -1;
		if (p != end)
			return -1;
		r->type = 'S';
		r->stamp[0].tv_sec = v[0];
		r->stamp[0].tv_nsec = v[1];
		r->stamp[1].tv_sec = v[2];
		r->stamp[1].tv_nsec = v[3];
		r->uid = r->last = 0;
		r->modseq = 0;
		return 0;
	}
	if (*p == 'E') {
		p++;
		if (p == end || *p++ != ' ' || getnum(&p, end, &a) < 0)
			return -1;
		b = a;
		if (p < end && *p == '-' && (p++, getnum(&p, end, &b) < 0))
			return -1;
		if (p == end || *p++ != ' ' || getnum(&p, end, &m) < 0 ||
		    p != end || !a || b < a || b >= UINT32_MAX)
			return -1;
		r->type = 'E';
		r->uid = a;
		r->last = b;
		r->modseq = m;
		return 0;
	}
	if (getnum(&p, end, &a) < 0 || p == end || *p++ != ' ' ||
	    getnum(&p, end, &m) < 0 || p == end || *p++ != ' ' ||
	    !a || a >= UINT32_MAX || !valid_fname(p, end - p))
		return -1;
	r->type = 'M';
	r->uid = r->last = a;
	r->modseq = m;
	r->name = p;
	r->namelen = end - p;
	return 0;
}

void
hist_add(struct store_state *st, uint32_t first, uint32_t last,
    uint64_t modseq)
{
	if (st->nexp == st->expcap) {
		st->expcap = st->expcap ? st->expcap * 2 : 16;
		st->exp = xreallocarray(st->exp, st->expcap, sizeof(*st->exp));
	}
	st->exp[st->nexp].first = first;
	st->exp[st->nexp].last = last;
	st->exp[st->nexp].modseq = modseq;
	st->nexp++;
	st->expsorted = 0;
}

static int
hist_has(const struct store_state *st, uint32_t uid)
{
	size_t i;

	for (i = 0; i < st->nexp; i++)
		if (st->exp[i].first <= uid && uid <= st->exp[i].last)
			return 1;
	return 0;
}

static int
range_cmp(const void *a, const void *b)
{
	const struct expunged *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

/* sort the expunge history and join ranges that no live UID separates
 * (VANISHED may name UIDs the client never knew, never a live one) */
void
hist_merge(struct folder *f)
{
	struct store_state *st = f->st;
	struct expunged *r = st->exp;
	size_t i, o;
	long j;

	if (st->expsorted || !st->nexp)
		return;
	qsort(r, st->nexp, sizeof(*r), range_cmp);
	for (i = o = 0; i < st->nexp; i++) {
		if (o) {
			j = lower_bound(f, r[o - 1].last + 1);
			if ((size_t)j == f->nmsgs ||
			    f->msgs[j].uid > r[i].last ||
			    r[i].first <= r[o - 1].last + 1) {
				r[o - 1].last = MAX(r[o - 1].last, r[i].last);
				r[o - 1].modseq = MAX(r[o - 1].modseq,
				    r[i].modseq);
				continue;
			}
		}
		r[o++] = r[i];
	}
	st->nexp = o;
	st->expsorted = 1;
}

/* drop messages marked gone */
void
msgs_compact(struct folder *f)
{
	size_t i, o;

	if (!f->st->ngone)
		return;
	msgs_thaw(f);
	f->st->ngone = 0;
	for (i = o = 0; i < f->nmsgs; i++) {
		if (f->msgs[i].flags & FL_GONE) {
			f->st->namesdead += strlen(mname(f, &f->msgs[i])) + 1;
			continue;
		}
		f->msgs[o++] = f->msgs[i];
	}
	f->nmsgs = o;
}

struct msg *
msg_insert(struct folder *f, size_t at, uint32_t uid, uint64_t modseq,
    const char *name, size_t len)
{
	struct store_state *st = f->st;
	struct msg *m;

	msgs_thaw(f);
	if (f->nmsgs == st->msgscap)
		msgs_reserve(f, st->msgscap ? st->msgscap * 2 : 256);
	memmove(f->msgs + at + 1, f->msgs + at,
	    (f->nmsgs - at) * sizeof(*f->msgs));
	f->nmsgs++;
	m = &f->msgs[at];
	m->uid = uid;
	m->modseq = modseq;
	m->name = names_add(f, name, len);
	msg_parse(f, m);
	bh_add(st, mname(f, m), uid);
	if (uid >= f->uidnext)
		f->uidnext = uid + 1;
	st->changes++;
	return m;
}

/* m was changed by a line of the list: what that does to the first
 * unseen message the index's header named */
static void
unseen_note(struct store_state *st, const struct msg *m)
{
	if (!(m->flags & (FL_SEEN | FL_GONE))) {
		if (st->nunseen < MOVED_MAX)
			st->unseen[st->nunseen] = m->uid;
		st->nunseen++;
	} else if (m->uid == st->first_unseen)
		st->unseen_hit = 1;
}

static void
apply_rec(struct folder *f, const struct rec *r)
{
	struct store_state *st = f->st;
	struct msg *m;
	size_t i;

	if (r->type == 'S') {
		st->st_new = r->stamp[0];
		st->st_cur = r->stamp[1];
		st->stamped = 1;
		return;
	}
	if (r->modseq > f->highestmodseq)
		f->highestmodseq = r->modseq;
	if (r->last >= f->uidnext)
		f->uidnext = r->last + 1;
	i = lower_bound(f, r->uid);
	if (r->type == 'E') {
		hist_add(st, r->uid, r->last, r->modseq);
		for (; i < f->nmsgs && f->msgs[i].uid <= r->last; i++) {
			if (!(f->msgs[i].flags & FL_GONE)) {
				moved_note(f, f->msgs[i].uid);
				f->msgs[i].flags |= FL_GONE;
				unseen_note(st, &f->msgs[i]);
				st->ngone++;
				st->changes++;
			}
		}
		return;
	}
	if (i < f->nmsgs && f->msgs[i].uid == r->uid) {
		m = &f->msgs[i];
		if (m->flags & FL_GONE)
			return;
		if (strlen(mname(f, m)) == r->namelen &&
		    !memcmp(mname(f, m), r->name, r->namelen) &&
		    m->modseq == r->modseq)
			return;
		if (strlen(mname(f, m)) != r->namelen ||
		    memcmp(mname(f, m), r->name, r->namelen))
			msg_setname(f, m, r->name, r->namelen);
		m->modseq = r->modseq;
		msg_parse(f, m);
		unseen_note(st, m);
		st->changes++;
		return;
	}
	/* a record of a UID already expunged and dropped */
	if (i < f->nmsgs && hist_has(st, r->uid))
		return;
	unseen_note(st, msg_insert(f, i, r->uid, r->modseq, r->name,
	    r->namelen));
}

/* apply the complete lines of p; returns the bytes they took */
size_t
apply_lines(struct folder *f, const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len, *nl;
	struct rec r;

	if (len)
		msgs_thaw(f);
	while (p < end && (nl = memchr(p, '\n', end - p))) {
		if (parse_rec(p, nl, &r) == 0)
			apply_rec(f, &r);
		else
			logmsg(LOG_WARNING, "%s/" UIDLIST ": bad line "
			    "skipped", f->path);
		f->st->nrecords++;
		p = nl + 1;
	}
	return p - buf;
}

/* highest UID and modseq of UID list text, without applying it */
size_t
scan_maxima(const char *buf, size_t len, int header, struct hdr *h)
{
	const char *p = buf, *end = buf + len, *nl;
	struct hdr hh;
	struct rec r;

	while (p < end && (nl = memchr(p, '\n', end - p))) {
		if (header) {
			if (parse_header(p, nl, &hh) < 0)
				return -1;
			h->uidvalidity = hh.uidvalidity;
			h->gen = hh.gen;
			h->uidnext = MAX(h->uidnext, hh.uidnext);
			h->modseq = MAX(h->modseq, hh.modseq);
			header = 0;
		} else if (parse_rec(p, nl, &r) == 0) {
			h->uidnext = MAX(h->uidnext, r.last + 1);
			h->modseq = MAX(h->modseq, r.modseq);
		}
		p = nl + 1;
	}
	if (header)
		return -1;
	return p - buf;
}
