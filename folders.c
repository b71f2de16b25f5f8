/* folders.c: the folder namespace of the store: LIST, CREATE, DELETE,
 * RENAME (INBOX too), subscriptions, special use, STATUS, and start-up.
 * Knows nothing of IMAP syntax. */
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

static int rename_inbox(const char *);
static int special_update(const char *, const char *, const char *);

/* ---- names ------------------------------------------------------------- */

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

/* ---- folder status, INBOX rename, start-up ----------------------------- */

/* OBJECTID of the folder in dir: see folder_id */
static int
dir_id(const char *dir, uint32_t uidvalidity, char *buf, size_t size)
{
	struct stat sb;

	if (stat(dir, &sb) < 0)
		return -1;
	snprintf(buf, size, "F%08x%llx", uidvalidity,
	    (unsigned long long)sb.st_ino);
	return 0;
}

static int
status(const char *name, struct mboxstatus *s, int want_size)
{
	char path[PATH_MAX];
	struct folder f;
	time_t date;
	uint64_t size;
	size_t i;

	memset(s, 0, sizeof(*s));
	/* the index's header, when the folder is as it describes */
	if (folder_dir(path, name) == 0 && index_status(path, s,
	    want_size) == 0) {
		dir_id(path, s->uidvalidity, s->mailboxid,
		    sizeof(s->mailboxid));
		return 0;
	}
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
		    msg_info(&f, i, &date, &size) == 0)) {
			s->size += size;
			if (f.msgs[i].flags & FL_DELETED)
				s->deleted_size += size;
		}
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
	return dir_id(f->path, f->uidvalidity, buf, size);
}

/* inode number, mtime and birth time of message i, found again when
 * renamed meanwhile */
static int
msg_statx(struct folder *f, size_t i, struct statx *sx)
{
	char path[PATH_MAX];

	if (i >= f->nmsgs || msg_path(f, i, path) < 0) {
		errno = ENOENT;
		return -1;
	}
	if (statx(AT_FDCWD, path, 0, STATX_INO | STATX_MTIME | STATX_BTIME,
	    sx) < 0 && (errno != ENOENT || relocate(f, i) < 0 ||
	    msg_path(f, i, path) < 0 ||
	    statx(AT_FDCWD, path, 0, STATX_INO | STATX_MTIME | STATX_BTIME,
	    sx) < 0))
		return -1;
	return 0;
}

int
msg_born(struct folder *f, size_t i, time_t *t)
{
	struct statx sx;

	if (msg_statx(f, i, &sx) < 0)
		return -1;
	*t = sx.stx_mask & STATX_BTIME ? (time_t)sx.stx_btime.tv_sec :
	    (time_t)sx.stx_mtime.tv_sec;
	return 0;
}

int
mbox_dir(const char *name, char *buf)
{
	return folder_dir(buf, name);
}

int
msg_id(struct folder *f, size_t i, char *buf, size_t size)
{
	struct statx sx;
	unsigned long long born;

	if (msg_statx(f, i, &sx) < 0)
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

/* the root must exist: a mistyped path is an error in the log, never a
 * new empty Maildir */
static int
root_exists(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
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
	if (root_exists(path) < 0 || make_subdirs(path) < 0)
		return -1;
	free(root);
	root = xstrdup(path);
	for (p = root + strlen(root); p > root + 1 && p[-1] == '/'; p--)
		p[-1] = '\0';
	set_host();
	return 0;
}
