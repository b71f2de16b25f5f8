/* maildir.c: the message store: Maildir++ folders, the UID list, flags in
 * file names, subscriptions.
 *
 * Layout: INBOX is the root Maildir, folder "A.B" is the directory ".A.B"
 * beside it (names in modified UTF-7, as Dovecot and Courier keep them).
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

#define UIDLIST		"imapd-uidlist"
#define UIDLIST_LOCK	"imapd-uidlist.lock"
#define UIDLIST_MAGIC	"imapd-uidlist 1 "
#define KEYWORDS	"dovecot-keywords"
#define DOVECOT_UIDLIST	"dovecot-uidlist"
#define COURIER_UIDDB	"courierimapuiddb"
#define SUBS_FILE	"subscriptions"
#define SUBS_CFILE	"courierimapsubscribed"
#define SUBS_V2_HEADER	"V\t2\n\n"
#define UIDV_FILE	"imapd-uidvalidity"
#define TRASH_PREFIX	"..imapd-trash."	/* never a folder name */
#define FOLDER_MARKER	"maildirfolder"
#define SPECIAL_USE	"imapd-special-use"

#define LOCK_TIMEOUT_MS	30000	/* give up on a lock held so long */
#define STAMP_WAIT_MS	20	/* closing: for the clock to pass a change */
#define TMP_MAX_AGE	(36 * 3600)	/* Maildir: stale tmp/ files */
#define COMPACT_MIN	64	/* dead records worth a rewrite */
#define REC_MAX		1024	/* longest line of a UID list */
#define CACHE_MAGIC	"imapd-uidlist-cache "
#define CACHE_LEN	128	/* the lock file's line, newline included */
#define RECENT_MAGIC	"imapd-recent "
#define RECENT_LEN	32	/* its second line */


static const char sysletters[] = "DFPRST";	/* bit i = letter i */

/* a transaction on a UID list: lock held, file open for appending */
struct txn {
	int lockfd;
	int fd;
	off_t size;		/* complete lines in the file */
	struct stat st;
	struct buf out;		/* records to append in one write */
	int durable;		/* out assigns UIDs: fsync it */
};

/* entries of new/ and cur/ from one readdir pass */
struct ent {
	uint32_t off;		/* in names: "new/..." or "cur/..." */
	uint32_t blen;		/* base name length (before ':') */
	uint32_t recent;	/* taken from new/ by this process */
};

struct scan {
	struct buf names;
	struct ent *e;
	size_t n, cap;
};

/* base name -> index in msgs */
struct hash {
	uint64_t *slot;		/* hash << 32 | index + 1; 0 = empty */
	size_t mask;
};

struct append {
	char *folder;
	char dir[PATH_MAX];
	char base[NAME_MAX + 1];	/* unique name in tmp/ */
	int fd;
	int anon;		/* O_TMPFILE: no name until commit links it */
	int err;		/* errno of a failed write: commit refuses */
	uint64_t size, vsize;
	int lastcr;
	size_t buflen;
	char buf[65536];
};

/* one parsed line of a UID list */
struct rec {
	int type;		/* 'M' message, 'E' expunge, 'S' scan stamp */
	struct timespec stamp[2];
	uint32_t uid, last;
	uint64_t modseq;
	const char *name;
	size_t namelen;
};

static char *root;		/* the Maildir root, set by store_init */
static struct folder *exit_folder;	/* open, watched: stamped at exit */
static int exit_hooked;		/* stamp_at_exit is registered */
static char host[256];		/* host name for unique names, escaped */
static unsigned long uniqcount;	/* Q<n> of unique names */

static int rename_inbox(const char *);
static int special_update(const char *, const char *, const char *);

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

static int
is_inbox(const char *name)
{
	return !ascii_casecmp(name, "INBOX");
}

static int
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
static int
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
static int
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
static int
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

static int
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
static int
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
static int
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

static void
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

static void
rm_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- names ------------------------------------------------------------- */

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
static int
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

static char *
canonical_name(const char *name)
{
	char *s = xstrdup(name);

	if (is_inbox(name) || !ascii_ncasecmp(name, "INBOX.", 6))
		memcpy(s, "INBOX", 5);
	return s;
}

static int
is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int
mbox_exists(const char *name)
{
	char path[PATH_MAX];

	if (folder_dir(path, name) < 0)
		return 0;
	return is_dir(path);
}

/* a directory entry of the root that is a folder: its IMAP name */
static const char *
entry_folder(const struct dirent *d)
{
	char path[PATH_MAX];
	const char *name = d->d_name + 1;

	if (d->d_name[0] != '.' || !mbox_valid(name) || is_inbox(name))
		return NULL;
	/* ".inbox.x" would be listed under a name that opens ".INBOX.x" */
	if (!ascii_ncasecmp(name, "INBOX.", 6) && strncmp(name, "INBOX.", 6))
		return NULL;
	if (d->d_type != DT_DIR) {
		if (d->d_type != DT_UNKNOWN && d->d_type != DT_LNK)
			return NULL;
		if (pathf(path, "%s/%s", root, d->d_name) < 0 ||
		    !is_dir(path))
			return NULL;
	}
	return name;
}

static int
info_cmp(const void *a, const void *b)
{
	const struct mboxinfo *x = a, *y = b;
	int c;

	if (is_inbox(x->name) != is_inbox(y->name))
		return is_inbox(x->name) ? -1 : 1;
	if ((c = strcmp(x->name, y->name)))
		return c;
	return x->noselect - y->noselect;
}

static void
info_add(struct mboxinfo **l, size_t *n, size_t *cap, const char *name,
    size_t len, int noselect)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 32;
		*l = xreallocarray(*l, *cap, sizeof(**l));
	}
	(*l)[*n].name = xmalloc(len + 1);
	memcpy((*l)[*n].name, name, len);
	(*l)[*n].name[len] = '\0';
	(*l)[*n].noselect = noselect;
	(*n)++;
}

int
mbox_list(struct mboxinfo **list, size_t *np)
{
	struct mboxinfo *l = NULL;
	struct dirent *d;
	const char *name, *p;
	size_t n = 0, cap = 0, i, o, real;
	DIR *dir;

	if (!(dir = opendir(root)))
		return -1;
	info_add(&l, &n, &cap, "INBOX", 5, 0);
	while ((d = readdir(dir)))
		if ((name = entry_folder(d)))
			info_add(&l, &n, &cap, name, strlen(name), 0);
	closedir(dir);
	/* parents that exist only through their children */
	real = n;
	for (i = 1; i < real; i++)
		for (p = l[i].name; (p = strchr(p, STORE_SEP)); p++)
			info_add(&l, &n, &cap, l[i].name, p - l[i].name, 1);
	qsort(l, n, sizeof(*l), info_cmp);
	for (i = o = 0; i < n; i++) {
		if (o && !strcmp(l[o - 1].name, l[i].name)) {
			free(l[i].name);
			continue;
		}
		l[o++] = l[i];
	}
	*list = l;
	*np = o;
	return 0;
}

void
mbox_list_free(struct mboxinfo *l, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(l[i].name);
	free(l);
}

/* directory names (".name" and ".name.*") of a folder and its children */
static int
family(const char *name, char ***out, size_t *np)
{
	char **v = NULL, path[PATH_MAX];
	const char *base;
	struct dirent *d;
	size_t n = 0, cap = 0, len;
	DIR *dir;

	if (folder_dir(path, name) < 0)
		return -1;
	base = strrchr(path, '/') + 1;
	len = strlen(base);
	if (!(dir = opendir(root)))
		return -1;
	while ((d = readdir(dir))) {
		if (strncmp(d->d_name, base, len) ||
		    (d->d_name[len] && d->d_name[len] != STORE_SEP) ||
		    !entry_folder(d))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[n++] = xstrdup(d->d_name);
	}
	closedir(dir);
	*out = v;
	*np = n;
	return 0;
}

static void
strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int
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

int
mbox_create(const char *name)
{
	char path[PATH_MAX], marker[PATH_MAX];
	int fd;

	if (folder_dir(path, name) < 0)
		return -1;
	if (is_inbox(name)) {
		errno = EEXIST;
		return -1;
	}
	if (mkdir(path, 0700) < 0)
		return -1;
	if (make_subdirs(path) < 0 ||
	    pathf(marker, "%s/" FOLDER_MARKER, path) < 0 ||
	    (fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) < 0)
		goto fail;
	close(fd);
	if (fsync_path(path) < 0 || fsync_path(root) < 0)
		goto fail;
	return 0;
fail:
	fd = errno;
	rm_tree(path);
	errno = fd;
	return -1;
}

/* move a directory out of sight, then remove it: nobody ever sees a
 * folder half deleted */
static int
trash_dir(const char *path)
{
	static unsigned long n;
	char trash[PATH_MAX];

	if (pathf(trash, "%s/" TRASH_PREFIX "%ld.%ld.%lu", root,
	    (long)getpid(), (long)time(NULL), ++n) < 0)
		return -1;
	if (rename(path, trash) < 0)
		return -1;
	fsync_path(root);
	rm_tree(trash);
	return 0;
}

/* trash directories left behind by a crash */
static void
trash_sweep(void)
{
	char path[PATH_MAX];
	struct dirent *d;
	DIR *dir;

	if (!(dir = opendir(root)))
		return;
	while ((d = readdir(dir)))
		if (!strncmp(d->d_name, TRASH_PREFIX, strlen(TRASH_PREFIX)) &&
		    pathf(path, "%s/%s", root, d->d_name) == 0)
			rm_tree(path);
	closedir(dir);
}

int
mbox_delete(const char *name)
{
	char path[PATH_MAX], **fam, *canon;
	size_t n;

	if (folder_dir(path, name) < 0)
		return -1;
	if (is_inbox(name)) {
		errno = EPERM;
		return -1;
	}
	if (!is_dir(path)) {
		if (family(name, &fam, &n) < 0)
			return -1;
		strv_free(fam, n);
		errno = n ? ENOTEMPTY : ENOENT;
		return -1;
	}
	trash_sweep();
	if (trash_dir(path) < 0)
		return -1;
	canon = canonical_name(name);
	if (special_update(canon, NULL, NULL) < 0)
		logmsg(LOG_WARNING, "%s: %s", SPECIAL_USE, strerror(errno));
	free(canon);
	return 0;
}


int
mbox_rename(const char *from, const char *to)
{
	char src[PATH_MAX], dst[PATH_MAX], sbase[NAME_MAX + 1];
	char dbase[NAME_MAX + 1], **fam, **tfam;
	size_t n, tn, i, slen;
	int saved;

	if (folder_dir(src, from) < 0 || folder_dir(dst, to) < 0)
		return -1;
	if (is_inbox(to)) {
		errno = EEXIST;
		return -1;
	}
	if (is_inbox(from))
		return rename_inbox(to);
	/* ".from" and ".to": their children share the prefix */
	snprintf(sbase, sizeof(sbase), "%s", strrchr(src, '/') + 1);
	snprintf(dbase, sizeof(dbase), "%s", strrchr(dst, '/') + 1);
	slen = strlen(sbase);
	if (!strncmp(dbase, sbase, slen) &&
	    (!dbase[slen] || dbase[slen] == STORE_SEP)) {
		errno = EINVAL;	/* into its own subtree */
		return -1;
	}
	if (family(from, &fam, &n) < 0)
		return -1;
	if (!n) {
		free(fam);
		errno = ENOENT;
		return -1;
	}
	if (family(to, &tfam, &tn) < 0) {
		strv_free(fam, n);
		return -1;
	}
	strv_free(tfam, tn);
	if (tn || is_dir(dst)) {
		strv_free(fam, n);
		errno = EEXIST;
		return -1;
	}
	for (i = 0; i < n; i++)
		if (pathf(src, "%s/%s", root, fam[i]) < 0 ||
		    pathf(dst, "%s/%s%s", root, dbase, fam[i] + slen) < 0 ||
		    rename(src, dst) < 0)
			break;
	if (i < n) {
		saved = errno;
		/* put back what moved: all or nothing */
		while (i-- > 0)
			if (pathf(src, "%s/%s", root, fam[i]) == 0 &&
			    pathf(dst, "%s/%s%s", root, dbase,
			    fam[i] + slen) == 0)
				rename(dst, src);
		strv_free(fam, n);
		errno = saved;
		return -1;
	}
	strv_free(fam, n);
	if (fsync_path(root) < 0)
		return -1;
	/* the names in the files are canonical: ".A" is "A" */
	if (special_update(sbase + 1, dbase + 1, NULL) < 0)
		logmsg(LOG_WARNING, "%s: %s", SPECIAL_USE, strerror(errno));
	return 0;
}

/* ---- subscriptions ----------------------------------------------------- */

enum { SUBS_NONE, SUBS_DOVECOT, SUBS_DOVECOT2, SUBS_COURIER };

/* which file the Maildir keeps, and its lines */
static int
subs_read(char ***out, size_t *np, int *fmt)
{
	char path[PATH_MAX], **v = NULL, *line, *next, *p, *q;
	struct buf b = { 0 };
	size_t n = 0, cap = 0, i;

	*fmt = SUBS_DOVECOT;
	if (pathf(path, "%s/" SUBS_FILE, root) < 0)
		return -1;
	if (read_file(path, &b) < 0) {
		if (errno != ENOENT || pathf(path, "%s/" SUBS_CFILE,
		    root) < 0)
			return -1;
		*fmt = SUBS_COURIER;
		if (read_file(path, &b) < 0) {
			buf_free(&b);
			if (errno != ENOENT)
				return -1;
			*fmt = SUBS_NONE;
			*out = NULL;
			*np = 0;
			return 0;
		}
	}
	line = b.p ? b.p : "";
	if (*fmt == SUBS_DOVECOT && !strncmp(line, SUBS_V2_HEADER,
	    strlen(SUBS_V2_HEADER))) {
		*fmt = SUBS_DOVECOT2;
		line += strlen(SUBS_V2_HEADER);
	}
	for (; *line; line = next) {
		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		else
			next = line + strlen(line);
		if (*fmt == SUBS_DOVECOT2) {
			/* TAB separates levels; \001 escapes */
			for (p = q = line; *p; p++) {
				if (*p == '\t')
					*q++ = STORE_SEP;
				else if (*p == '\001' && p[1]) {
					p++;
					*q++ = *p == 't' ? '\t' : *p == 'r' ?
					    '\r' : *p == 'n' ? '\n' :
					    *p == '1' ? '\001' : *p;
				} else
					*q++ = *p;
			}
			*q = '\0';
		}
		if (*fmt == SUBS_COURIER && !ascii_ncasecmp(line, "INBOX.", 6))
			line += 6;
		if (!*line)
			continue;
		if (is_inbox(line))
			line = "INBOX";
		for (i = 0; i < n && strcmp(v[i], line); i++)
			;
		if (i < n)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[n++] = xstrdup(line);
	}
	buf_free(&b);
	*out = v;
	*np = n;
	return 0;
}

int
subs_list(char ***names, size_t *n)
{
	int fmt;

	return subs_read(names, n, &fmt);
}

void
subs_free(char **v, size_t n)
{
	strv_free(v, n);
}

static void
subs_format(struct buf *b, const char *name, int fmt)
{
	const char *p;

	if (fmt == SUBS_COURIER && !is_inbox(name))
		buf_adds(b, "INBOX.");
	if (fmt != SUBS_DOVECOT2) {
		buf_adds(b, name);
		buf_addc(b, '\n');
		return;
	}
	for (p = name; *p; p++) {
		if (*p == STORE_SEP)
			buf_addc(b, '\t');
		else if (*p == '\001' || *p == '\t' || *p == '\r' ||
		    *p == '\n') {
			buf_addc(b, '\001');
			buf_addc(b, *p == '\001' ? '1' : *p == '\t' ? 't' :
			    *p == '\r' ? 'r' : 'n');
		} else
			buf_addc(b, *p);
	}
	buf_addc(b, '\n');
}

int
subs_set(const char *name, int subscribe)
{
	struct buf b = { 0 };
	char **v, *canon;
	size_t n, i;
	int fd, fmt, found = 0, r = 0;

	if (!mbox_valid(name)) {
		errno = EINVAL;
		return -1;
	}
	canon = canonical_name(name);
	if ((fd = lock_root()) < 0) {
		free(canon);
		return -1;
	}
	if (subs_read(&v, &n, &fmt) < 0) {
		unlock_fd(fd);
		free(canon);
		return -1;
	}
	if (fmt == SUBS_NONE)
		fmt = SUBS_DOVECOT;
	if (fmt == SUBS_DOVECOT2)
		buf_adds(&b, SUBS_V2_HEADER);
	for (i = 0; i < n; i++) {
		if (!strcmp(v[i], canon)) {
			found = 1;
			if (!subscribe)
				continue;
		}
		subs_format(&b, v[i], fmt);
	}
	if (subscribe && !found)
		subs_format(&b, canon, fmt);
	if (found != subscribe)
		r = write_file(root, fmt == SUBS_COURIER ? SUBS_CFILE :
		    SUBS_FILE, b.p ? b.p : "", b.len);
	unlock_fd(fd);
	buf_free(&b);
	strv_free(v, n);
	free(canon);
	return r;
}

/* ---- messages in memory ------------------------------------------------ */

const char *
mname(const struct folder *f, const struct msg *m)
{
	return f->names + m->name;
}

/* length of the base name: the part before the info */
static size_t
base_len(const char *fname)
{
	const char *p = strchr(fname, ':');

	return p ? (size_t)(p - fname) : strlen(fname);
}

static uint32_t
hash_str(const char *s, size_t n)
{
	uint32_t h = 2166136261U;

	while (n--)
		h = (h ^ (unsigned char)*s++) * 16777619U;
	return h;
}

static uint32_t
names_add(struct folder *f, const char *s, size_t len)
{
	uint32_t off;

	if (f->nameslen + len + 1 > f->namescap) {
		f->namescap = MAX(f->namescap * 2, f->nameslen + len + 4096);
		f->names = xrealloc(f->names, f->namescap);
	}
	off = f->nameslen;
	memcpy(f->names + off, s, len);
	f->names[off + len] = '\0';
	f->nameslen += len + 1;
	return off;
}

/* name must not point into f->names */
static void
msg_setname(struct folder *f, struct msg *m, const char *name, size_t len)
{
	f->st->namesdead += strlen(mname(f, m)) + 1;
	m->name = names_add(f, name, len);
}

/* drop the garbage left in the arena by renames */
static void
names_compact(struct folder *f)
{
	struct store_state *st = f->st;
	char *old = f->names;
	size_t i, len;

	if (st->namesdead < 65536 || st->namesdead < f->nameslen / 2)
		return;
	f->namescap = f->nameslen - st->namesdead + 4096;
	f->names = xmalloc(f->namescap);
	f->nameslen = 0;
	for (i = 0; i < f->nmsgs; i++) {
		len = strlen(old + f->msgs[i].name);
		f->msgs[i].name = names_add(f, old + f->msgs[i].name, len);
	}
	free(old);
	st->namesdead = 0;
}

static long
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

/* ---- finding a message by file name: base name -> UID ----------------- */

static void
bh_put(struct store_state *st, uint64_t v)
{
	size_t k;

	for (k = (v >> 32) & st->bhmask; st->bh[k]; k = (k + 1) & st->bhmask)
		;
	st->bh[k] = v;
	st->nbh++;
}

/* built when first needed; msg_insert adds to it, and entries of
 * messages dropped since are skipped by name_find */
static void
bh_build(struct folder *f)
{
	struct store_state *st = f->st;
	const char *b;
	size_t cap = 1024, i;

	while (cap < f->nmsgs * 2)
		cap *= 2;
	free(st->bh);
	st->bh = xcalloc(cap, sizeof(*st->bh));
	st->bhmask = cap - 1;
	st->nbh = 0;
	for (i = 0; i < f->nmsgs; i++) {
		b = mname(f, &f->msgs[i]) + 4;
		bh_put(st, (uint64_t)hash_str(b, base_len(b)) << 32 |
		    f->msgs[i].uid);
	}
}

static void
bh_add(struct store_state *st, const char *name, uint32_t uid)
{
	const char *b = name + 4;

	if (!st->bh)
		return;
	if ((st->nbh + 1) * 4 > (st->bhmask + 1) * 3) {
		free(st->bh);	/* full: built again when next needed */
		st->bh = NULL;
		return;
	}
	bh_put(st, (uint64_t)hash_str(b, base_len(b)) << 32 | uid);
}

/* index of the live message whose file is name ("cur/..."), or -1 */
static long
name_find(struct folder *f, const char *name)
{
	struct store_state *st = f->st;
	const char *b = name + 4;
	uint32_t hv = hash_str(b, base_len(b));
	size_t k;
	long i;

	if (!st->bh)
		bh_build(f);
	for (k = hv & st->bhmask; st->bh[k]; k = (k + 1) & st->bhmask) {
		if (st->bh[k] >> 32 != hv)
			continue;
		i = folder_find(f, st->bh[k] & 0xffffffffU);
		if (i >= 0 && !strcmp(mname(f, &f->msgs[i]), name))
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

static void
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

static void
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
static uint64_t *
vsize_slot(struct store_state *st, uint32_t uid, int create)
{
	struct vsize *old;
	size_t i, oldcap;

	if (create && (st->nvs + 1) * 2 > st->vscap) {
		old = st->vs;
		oldcap = st->vscap;
		st->vscap = oldcap ? oldcap * 2 : 256;
		st->vs = xcalloc(st->vscap, sizeof(*st->vs));
		st->nvs = 0;
		for (i = 0; i < oldcap; i++)
			if (old[i].uid)
				*vsize_slot(st, old[i].uid, 1) = old[i].size;
		free(old);
	}
	if (!st->vscap)
		return NULL;
	for (i = uid * 2654435761U & (st->vscap - 1); st->vs[i].uid;
	    i = (i + 1) & (st->vscap - 1))
		if (st->vs[i].uid == uid)
			return &st->vs[i].size;
	if (!create)
		return NULL;
	st->vs[i].uid = uid;
	st->nvs++;
	return &st->vs[i].size;
}

/* flags and keywords of a file name ("X:2,FSa", without new/ or cur/) */
static void
parse_flags(char *const *kwnames, const char *fname, uint32_t *flags,
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

	parse_flags(f->kw, name + 4, &m->flags, &m->kw);
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
static int
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
static int
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

static void
kw_free(char **kw)
{
	int i;

	for (i = 0; i < KW_MAX; i++) {
		free(kw[i]);
		kw[i] = NULL;
	}
}

static int
kw_count(char *const *kw)
{
	int i, n = 0;

	for (i = 0; i < KW_MAX; i++)
		if (kw[i])
			n = i + 1;
	return n;
}

/* dovecot-keywords: "<index> <name>" lines */
static int
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

static int
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

static int
kw_index(char *const *kw, const char *name)
{
	int i;

	for (i = 0; i < KW_MAX; i++)
		if (kw[i] && !ascii_casecmp(kw[i], name))
			return i;
	return -1;
}

static int
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
static int
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

static int
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

static int
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

static void
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
	const struct range *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

/* sort the expunge history and join ranges that no live UID separates
 * (VANISHED may name UIDs the client never knew, never a live one) */
static void
hist_merge(struct folder *f)
{
	struct store_state *st = f->st;
	struct range *r = st->exp;
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
static void
msgs_compact(struct folder *f)
{
	size_t i, o;

	if (!f->st->ngone)
		return;
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

static struct msg *
msg_insert(struct folder *f, size_t at, uint32_t uid, uint64_t modseq,
    const char *name, size_t len)
{
	struct store_state *st = f->st;
	struct msg *m;

	if (f->nmsgs == st->msgscap) {
		st->msgscap = st->msgscap ? st->msgscap * 2 : 256;
		f->msgs = xreallocarray(f->msgs, st->msgscap, sizeof(*f->msgs));
	}
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
				f->msgs[i].flags |= FL_GONE;
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
		st->changes++;
		return;
	}
	/* a record of a UID already expunged and dropped */
	if (i < f->nmsgs && hist_has(st, r->uid))
		return;
	msg_insert(f, i, r->uid, r->modseq, r->name, r->namelen);
}

/* apply the complete lines of p; returns the bytes they took */
static size_t
apply_lines(struct folder *f, const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len, *nl;
	struct rec r;

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
static size_t
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

/* the UID list from the index and the lines appended after it; -1 when
 * there is no index that describes this list */
static int
list_from_index(struct folder *f, int fd, const struct stat *sb)
{
	struct store_state *st = f->st;
	struct buf b = { 0 };
	char line[REC_MAX + 1], *nl;
	struct hdr h;
	off_t off;
	ssize_t k;

	if ((k = pread(fd, line, REC_MAX, 0)) <= 0)
		return -1;
	line[k] = '\0';
	if (!(nl = memchr(line, '\n', k)) || parse_header(line, nl, &h) < 0)
		return -1;
	free(st->bh);
	st->bh = NULL;
	st->namesdead = 0;
	if (index_load(f, fd, &h, sb->st_size, &off) < 0 ||
	    read_range(fd, off, sb->st_size, &b) < 0) {
		f->nmsgs = 0;
		buf_free(&b);
		return -1;
	}
	st->list_off = off + apply_lines(f, b.p, b.len);
	st->list_dev = sb->st_dev;
	st->list_ino = sb->st_ino;
	st->changes++;
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
	if (read_range(fd, 0, sb->st_size, &b) < 0)
		goto fail;
	if (!b.len || !(nl = memchr(b.p, '\n', b.len)) ||
	    parse_header(b.p, nl, &h) < 0) {
		logmsg(LOG_ERR, "%s/" UIDLIST ": bad header", f->path);
		errno = EIO;
		goto fail;
	}
	/* room for everything at once: no copying while it grows */
	if (f->namescap < b.len) {
		free(f->names);
		f->names = xmalloc(b.len);
		f->namescap = b.len;
	}
	for (lines = 0, p = b.p; (p = memchr(p, '\n', b.p + b.len - p)); p++)
		lines++;
	if (st->msgscap < lines) {
		free(f->msgs);
		f->msgs = xreallocarray(NULL, lines, sizeof(*f->msgs));
		st->msgscap = lines;
	}
	f->nmsgs = 0;
	f->nameslen = 0;
	free(st->bh);
	st->bh = NULL;
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

/* ---- the UID list: writing --------------------------------------------- */

static void
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
static int
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

static int
txn_lock(struct txn *t, const char *dir)
{
	return txn_lock_how(t, dir, 1);
}

/* open the list for appending (lock held); a last line without its
 * newline is what a crash left behind: cut it off */
static int
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

static void
rec_msg(struct txn *t, uint32_t uid, uint64_t modseq, const char *name)
{
	buf_printf(&t->out, "%u %llu %s\n", uid, (unsigned long long)modseq,
	    name);
}

static void
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
static int
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

static int
ts_eq(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static int
ts_lt(struct timespec a, struct timespec b)
{
	return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec &&
	    a.tv_nsec < b.tv_nsec);
}

/* new/ or cur/ of a folder; a missing one reads as zeros */
static int
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
static int
fs_now(struct txn *t, struct timespec *now)
{
	struct stat sb;

	if (futimens(t->lockfd, NULL) < 0 || fstat(t->lockfd, &sb) < 0)
		return -1;
	*now = sb.st_mtim;
	return 0;
}

/* a generation for a list file written whole: G in its header */
static uint64_t
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
static void
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
static int
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

/* the highest modseq in the file, reading only what was appended since
 * we last looked: for changes made between two syncs */
static int
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
static int
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

/* ---- scanning new/ and cur/ -------------------------------------------- */

static const char *
ent_name(const struct scan *s, size_t j)
{
	return s->names.p + s->e[j].off;
}

static void
scan_free(struct scan *s)
{
	buf_free(&s->names);
	free(s->e);
	memset(s, 0, sizeof(*s));
}

/* readdir only: no stat, no open per message */
static int
scan_dir(struct scan *s, const char *dir, const char *sub)
{
	char path[PATH_MAX];
	struct dirent *d;
	size_t len;
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
		len = strlen(d->d_name);
		if (s->n == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 256;
			s->e = xreallocarray(s->e, s->cap, sizeof(*s->e));
		}
		s->e[s->n].off = s->names.len;
		s->e[s->n].blen = base_len(d->d_name);
		s->e[s->n].recent = 0;
		s->n++;
		buf_add(&s->names, sub, 3);
		buf_addc(&s->names, '/');
		buf_add(&s->names, d->d_name, len + 1);
	}
	saved = errno;
	closedir(dp);
	errno = saved;
	return saved ? -1 : 0;
}

static int
scan_folder(struct scan *s, const char *dir)
{
	if (scan_dir(s, dir, "new") < 0 || scan_dir(s, dir, "cur") < 0) {
		scan_free(s);
		return -1;
	}
	return 0;
}

static void
hash_build(struct hash *h, const struct folder *f)
{
	const char *b;
	size_t cap = 64, i, k;
	uint32_t hv;

	while (cap < f->nmsgs * 2)
		cap *= 2;
	h->slot = xcalloc(cap, sizeof(*h->slot));
	h->mask = cap - 1;
	for (i = 0; i < f->nmsgs; i++) {
		b = mname(f, &f->msgs[i]) + 4;
		hv = hash_str(b, base_len(b));
		for (k = hv & h->mask; h->slot[k]; k = (k + 1) & h->mask)
			;
		h->slot[k] = (uint64_t)hv << 32 | (i + 1);
	}
}

static long
hash_get(const struct hash *h, const struct folder *f, const char *base,
    size_t blen)
{
	const char *b;
	uint32_t hv = hash_str(base, blen), i;
	size_t k;

	for (k = hv & h->mask; h->slot[k]; k = (k + 1) & h->mask) {
		if (h->slot[k] >> 32 != hv)
			continue;
		i = (h->slot[k] & 0xffffffffU) - 1;
		b = mname(f, &f->msgs[i]) + 4;
		if (!memcmp(b, base, blen) && (b[blen] == ':' || !b[blen]))
			return i;
	}
	return -1;
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
	size_t dx = strspn(p, "0123456789"), dy = strspn(q, "0123456789");
	int c;

	/* the leading seconds compare as numbers */
	if (dx != dy && dx && dy)
		return dx < dy ? -1 : 1;
	if ((c = memcmp(p, q, MIN(x->blen, y->blen))))
		return c;
	return x->blen < y->blen ? -1 : x->blen > y->blen;
}

static void
sort_ents(const struct scan *s, size_t *v, size_t n)
{
	sort_scan = s;
	qsort(v, n, sizeof(*v), ent_cmp);
	sort_scan = NULL;
}

static int
same_base(const struct scan *s, size_t a, size_t b)
{
	return s->e[a].blen == s->e[b].blen && !memcmp(ent_name(s, a) + 4,
	    ent_name(s, b) + 4, s->e[a].blen);
}

/* move new/X to cur/X:2, (keeping any info X already has) */
static int
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
				stamp = 0;
			} else if (errno == ENOENT)
				continue;	/* taken meanwhile */
		}
		buf_printf(&b, "%u %llu %s\n", v[j].uid, (unsigned long long)m0,
		    name);
	}
	if (stamp)
		buf_printf(&b, "S %lld.%09ld %lld.%09ld\n",
		    (long long)sn.st_mtim.tv_sec, (long)sn.st_mtim.tv_nsec,
		    (long long)sc.st_mtim.tv_sec, (long)sc.st_mtim.tv_nsec);
	r = write_file(dir, UIDLIST, b.p, b.len);
	buf_free(&b);
	free(v);
	free(unk);
	scan_free(&s);
	adopt_free(&a);
	return r;
}

/* the folder has a UID list, creating it the first time (for f, when
 * given: see list_create); 1 when this call created it */
static int
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
		if ((name_find(f, name) >= 0) == st->pend[i].present)
			continue;
		st->pend[o] = st->pend[i];
		st->pend[o++].off = keep.len;
		buf_add(&keep, name, strlen(name) + 1);
	}
	buf_free(&st->pendnames);
	st->pendnames = keep;
	st->npend = o;
	return o;
}

/* ---- syncing a folder with its directories ----------------------------- */

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
		/* just opened: the list's stamp may vouch for it */
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

	parse_flags(f->kw, name + 4, &fl, &kw);
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
		rec_msg(t, m->uid, m->modseq, name);
		t->durable = 1;
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

/* compare the directories with msgs and record every difference (lock
 * held, the list read to its end) */
static int
reconcile(struct folder *f, struct txn *t)
{
	struct store_state *st = f->st;
	struct scan s = { 0 }, s2 = { 0 };
	struct timespec now;
	struct hash h;
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
	st->mt_new = sn.st_mtim;
	st->mt_cur = sc.st_mtim;
	st->scanned = 1;
	st->stale = 1;
	st->dirty = 0;
	/* without inotify only a scan can stamp the list, and a directory
	 * changed within the current clock tick may change again unseen */
	if (st->watchfd < 0) {
		if (ts_lt(sn.st_mtim, now) && ts_lt(sc.st_mtim, now))
			stamp_put(f, t, &sn, &sc);
		else
			st->dirty = 1;
	}
	r = 0;
out:
	scan_free(&s);
	scan_free(&s2);
	free(h.slot);
	free(seen);
	free(unk);
	return r;
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
	if (txn_open(&t, f->path) < 0 || list_refresh(f, &t) < 0)
		goto out;
	msgs_compact(f);
	/* an event that looked unexplained may be a rename whose record its
	 * imapd was still writing: with the lock, the list has it */
	if (full && st->scanned && !st->dirty && st->watchfd >= 0) {
		watch_read(f);
		full = st->dirty || pend_check(f) > 0;
	}
	if (full) {
		if (reconcile(f, &t) < 0)
			goto out;
	} else if (f->rw && st->newseen)
		claim_known(f, &t);
	stamp_try(f, &t);
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

/* the lock file's "imapd-recent" line: the highest UID a session has
 * been told of; -1 when there is none */
static long long
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

/* where recent begins when no session has said yet: above what the
 * folder holds outside new/, but for what this process took from new/ */
static int
uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static uint32_t
recent_floor(struct folder *f)
{
	struct store_state *st = f->st;
	size_t i;

	qsort(st->claimed, st->nclaimed, sizeof(*st->claimed), uid_cmp);
	for (i = f->nmsgs; i > 0; i--)
		if (strncmp(mname(f, &f->msgs[i - 1]), "new/", 4) &&
		    !bsearch(&f->msgs[i - 1].uid, st->claimed, st->nclaimed,
		    sizeof(*st->claimed), uid_cmp))
			return f->msgs[i - 1].uid;
	return 0;
}

static void
recent_mark(struct folder *f, size_t i)
{
	if (f->msgs[i].flags & FL_GONE)
		return;
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
static int
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
	if (rw)
		tmp_sweep(f->path);
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
		free(st->bh);
		free(st->pend);
		buf_free(&st->pendnames);
		free(st->recent);
		free(st->claimed);
		free(st->vs);
		free(st);
	}
	kw_free(f->kw);
	free(f->name);
	free(f->path);
	free(f->msgs);
	free(f->names);
	memset(f, 0, sizeof(*f));
}

unsigned long
folder_changes(struct folder *f)
{
	return f->st->changes;
}

int
folder_watchfd(struct folder *f)
{
	/* what changed before it was there is not queued: scan once */
	if (f->st->watchfd < 0 && watch_start(f) == 0)
		f->st->dirty = 1;
	return f->st->watchfd;
}

/* ---- messages ---------------------------------------------------------- */

/* message i was renamed by someone else: find it again by base name */
static int
relocate(struct folder *f, size_t i)
{
	char base[NAME_MAX + 1];
	struct scan s = { 0 };
	const char *name = mname(f, &f->msgs[i]) + 4;
	size_t blen = base_len(name), j;

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

static int
msg_path(const struct folder *f, size_t i, char *path)
{
	return pathf(path, "%s/%s", f->path, mname(f, &f->msgs[i]));
}

/* open message i, following a rename by another process */
static int
msg_open(struct folder *f, size_t i)
{
	char path[PATH_MAX];
	int fd;

	if (i >= f->nmsgs) {
		errno = ENOENT;
		return -1;
	}
	if (msg_path(f, i, path) < 0)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0 || errno != ENOENT)
		return fd;
	if (relocate(f, i) < 0 || msg_path(f, i, path) < 0)
		return -1;
	return open(path, O_RDONLY | O_CLOEXEC);
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
	if (mm->p && mm->len)
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

/* RFC822.SIZE when the name (",W=") or the cache knows it */
static int
msg_size(struct folder *f, size_t i, uint64_t *size)
{
	uint64_t *slot;

	if (name_field(mname(f, &f->msgs[i]) + 4, 'W', size) == 0)
		return 0;
	if ((slot = vsize_slot(f->st, f->msgs[i].uid, 0))) {
		*size = *slot;
		return 0;
	}
	return -1;
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
	if (msg_path(f, i, path) < 0)
		return -1;
	if (stat(path, &sb) < 0) {
		if (errno != ENOENT || relocate(f, i) < 0 ||
		    msg_path(f, i, path) < 0 || stat(path, &sb) < 0)
			return -1;
	}
	*date = sb.st_mtime;
	if (msg_size(f, i, size) == 0)
		return 0;
	/* nobody knows it yet: read the file once */
	if ((fd = msg_open(f, i)) < 0)
		return -1;
	if ((r = count_vsize(fd, size)) == 0)
		*vsize_slot(f->st, f->msgs[i].uid, 1) = *size;
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
		parse_flags(f->kw, mname(f, m) + 4, &cur, &curkw);
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

/* hard link from into dst under a fresh unique name; EXDEV and friends
 * are the caller's to handle */
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
		/* following the link: from may be /proc/self/fd/N */
		if (linkat(AT_FDCWD, from, AT_FDCWD, to,
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

int
folder_copy(struct folder *f, const size_t *idx, size_t n, const char *dst,
    uint32_t *uidvalidity, uint32_t *uids)
{
	struct dst d;
	char **names;
	size_t i, done = 0;
	int r = -1;

	if (dst_begin(&d, dst) < 0)
		return -1;
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
	}
	/* keyword letters must have their names before others see them;
	 * then the files must be on disk before their UIDs */
	if ((d.kwdirty && kw_save(d.dir, d.kw) < 0) || dst_sync_dirs(&d) < 0 ||
	    dst_assign(&d, names, n, uids) < 0)
		goto out;
	*uidvalidity = d.h.uidvalidity;
	r = 0;
out:
	if (r < 0)
		unlink_names(d.dir, names, done);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	dst_end(&d);
	return r;
}

/* ---- folder status, INBOX rename, start-up ----------------------------- */

static int
status(const char *name, struct mboxstatus *s, int want_size)
{
	struct folder f;
	time_t date;
	uint64_t size;
	size_t i;

	memset(s, 0, sizeof(*s));
	if (open_folder(&f, name, 0, 0) < 0)
		return -1;
	s->messages = f.nmsgs;
	s->uidnext = f.uidnext;
	s->uidvalidity = f.uidvalidity;
	s->highestmodseq = f.highestmodseq;
	folder_id(&f, s->mailboxid, sizeof(s->mailboxid));
	for (i = 0; i < f.nmsgs; i++) {
		s->recent += !!(f.msgs[i].flags & FL_RECENT);
		s->unseen += !(f.msgs[i].flags & FL_SEEN);
		s->deleted += !!(f.msgs[i].flags & FL_DELETED);
		if (want_size && (msg_size(&f, i, &size) == 0 ||
		    msg_info(&f, i, &date, &size) == 0))
			s->size += size;
	}
	folder_close(&f);
	return 0;
}

/*
 * OBJECTID (RFC 8474).  A folder keeps its directory's inode through
 * RENAME, and its UIDVALIDITY marks each incarnation of a name.  A message
 * keeps its file's inode through flag renames, MOVE and COPY (hard links),
 * and its mtime is the internal date, which never changes.
 */
int
folder_id(struct folder *f, char *buf, size_t size)
{
	struct stat sb;

	if (stat(f->path, &sb) < 0)
		return -1;
	snprintf(buf, size, "F%08x%llx", f->uidvalidity,
	    (unsigned long long)sb.st_ino);
	return 0;
}

int
msg_id(struct folder *f, size_t i, char *buf, size_t size)
{
	char path[PATH_MAX];
	struct statx sx;
	unsigned long long born;

	if (i >= f->nmsgs || msg_path(f, i, path) < 0) {
		errno = ENOENT;
		return -1;
	}
	if (statx(AT_FDCWD, path, 0, STATX_INO | STATX_MTIME | STATX_BTIME,
	    &sx) < 0 && (errno != ENOENT || relocate(f, i) < 0 ||
	    msg_path(f, i, path) < 0 ||
	    statx(AT_FDCWD, path, 0, STATX_INO | STATX_MTIME | STATX_BTIME,
	    &sx) < 0))
		return -1;
	/* an inode is reused once its file is gone: the birth time tells
	 * the next file apart (the internal date where it is not kept) */
	if (sx.stx_mask & STATX_BTIME)
		born = (unsigned long long)sx.stx_btime.tv_sec * 1000000000ULL +
		    sx.stx_btime.tv_nsec;
	else
		born = (unsigned long long)sx.stx_mtime.tv_sec;
	snprintf(buf, size, "M%llx%llx", (unsigned long long)sx.stx_ino,
	    born);
	return 0;
}

int
mbox_status(const char *name, struct mboxstatus *s)
{
	return status(name, s, 1);
}

int
mbox_status_nosize(const char *name, struct mboxstatus *s)
{
	return status(name, s, 0);
}

/* RENAME INBOX: a new folder takes all of INBOX's mail; INBOX stays */
static int
rename_inbox(const char *to)
{
	char from[PATH_MAX], dst[PATH_MAX], src[PATH_MAX], path[PATH_MAX];
	struct buf b = { 0 };
	struct folder f;
	size_t i;
	int r = -1;

	if (mbox_create(to) < 0 || folder_dir(dst, to) < 0)
		return -1;
	/* keyword letters keep their meaning in the new folder */
	if (pathf(path, "%s/" KEYWORDS, root) == 0 &&
	    read_file(path, &b) == 0 &&
	    write_file(dst, KEYWORDS, b.p ? b.p : "", b.len) < 0)
		goto out;
	if (open_folder(&f, "INBOX", 0, 0) < 0)
		goto out;
	for (i = 0; i < f.nmsgs; i++) {
		if (msg_path(&f, i, from) < 0 ||
		    pathf(src, "%s/%s", dst, mname(&f, &f.msgs[i])) < 0)
			continue;
		if (rename(from, src) < 0 && (errno != ENOENT ||
		    relocate(&f, i) < 0 || msg_path(&f, i, from) < 0 ||
		    pathf(src, "%s/%s", dst, mname(&f, &f.msgs[i])) < 0 ||
		    rename(from, src) < 0))
			logmsg(LOG_WARNING, "rename INBOX: %s: %s", from,
			    strerror(errno));
	}
	/* both lists catch up: expunges in INBOX, new UIDs in the other */
	f.st->dirty = 1;
	r = folder_sync(&f) < 0 ? -1 : 0;
	folder_close(&f);
	if (r == 0 && (r = open_folder(&f, to, 0, 0)) == 0)
		folder_close(&f);
out:
	buf_free(&b);
	return r;
}

/* SPECIAL-USE attributes given by CREATE (USE ...): the root's
 * "imapd-special-use", lines "<name> TAB <attribute>" */
static int
special_read(struct buf *b)
{
	char path[PATH_MAX];

	if (pathf(path, "%s/" SPECIAL_USE, root) < 0)
		return -1;
	if (read_file(path, b) == 0 || errno == ENOENT)
		return 0;
	return -1;
}

const char *
mbox_special_use(const char *name)
{
	static char use[64];
	struct buf b = { 0 };
	char *line, *next, *tab, *canon = canonical_name(name);
	const char *r = NULL;

	if (special_read(&b) < 0 || !b.p)
		goto out;
	for (line = b.p; *line && !r; line = next) {
		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		else
			next = line + strlen(line);
		if (!(tab = strchr(line, '\t')))
			continue;
		*tab++ = '\0';
		if (!strcmp(line, canon) && strlen(tab) < sizeof(use)) {
			memcpy(use, tab, strlen(tab) + 1);
			r = use;
		}
	}
out:
	buf_free(&b);
	free(canon);
	return r;
}

/* rename the entries of name and its children to to; without to, drop
 * name's own entry and, with use, give it that one */
static int
special_update(const char *name, const char *to, const char *use)
{
	struct buf b = { 0 }, out = { 0 };
	char *line, *next, *tab;
	size_t len = strlen(name);
	int fd, r = -1, changed = 0;

	if ((fd = lock_root()) < 0)
		return -1;
	if (special_read(&b) < 0)
		goto out;
	for (line = b.p ? b.p : ""; *line; line = next) {
		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		else
			next = line + strlen(line);
		if (!(tab = strchr(line, '\t')))
			continue;
		*tab++ = '\0';
		if (strncmp(line, name, len) || (line[len] &&
		    line[len] != STORE_SEP)) {
			buf_printf(&out, "%s\t%s\n", line, tab);
			continue;
		}
		if (to)
			buf_printf(&out, "%s%s\t%s\n", to, line + len, tab);
		else if (line[len])
			buf_printf(&out, "%s\t%s\n", line, tab);
		changed = 1;
	}
	if (use) {
		buf_printf(&out, "%s\t%s\n", name, use);
		changed = 1;
	}
	r = changed ? write_file(root, SPECIAL_USE, out.p ? out.p : "",
	    out.len) : 0;
out:
	unlock_fd(fd);
	buf_free(&b);
	buf_free(&out);
	return r;
}

int
mbox_set_special_use(const char *name, const char *use)
{
	char *canon;
	int r;

	if (!mbox_exists(name)) {
		errno = ENOENT;
		return -1;
	}
	if (!use || use[0] != '\\' || strlen(use) > 32 ||
	    strpbrk(use, " \t\r\n")) {
		errno = EINVAL;
		return -1;
	}
	canon = canonical_name(name);
	r = special_update(canon, NULL, use);
	free(canon);
	return r;
}

static int
mkdirs(const char *path)
{
	char buf[PATH_MAX], *p;

	if (pathf(buf, "%s", path) < 0)
		return -1;
	for (p = buf + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* the host name for unique file names: '/' and ':' cannot be in a file
 * name, and ',' would start a field */
static void
set_host(void)
{
	char name[sizeof(host)];
	size_t i, o = 0;

	if (gethostname(name, sizeof(name) - 1) < 0 || !*name)
		snprintf(name, sizeof(name), "localhost");
	name[sizeof(name) - 1] = '\0';
	for (i = 0; name[i] && o + 5 < sizeof(host); i++) {
		if (strchr("/:,", name[i])) {
			snprintf(host + o, 5, "\\%03o", (unsigned char)name[i]);
			o += 4;
		} else
			host[o++] = name[i];
	}
	host[o] = '\0';
}

int
store_init(const char *path)
{
	char *p;

	if (!*path) {
		errno = ENOENT;
		return -1;
	}
	if (mkdirs(path) < 0 || make_subdirs(path) < 0)
		return -1;
	free(root);
	root = xstrdup(path);
	for (p = root + strlen(root); p > root + 1 && p[-1] == '/'; p--)
		p[-1] = '\0';
	set_host();
	return 0;
}
