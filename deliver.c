/* deliver.c: imapd -d, the local delivery agent.  The mail transfer agent
 * runs it once per message with the message on stdin; it runs the user's
 * Sieve script (sieve.c, sievexec.c) and carries out what the script
 * decided: copies into folders through the store's append path (tmp/,
 * fsync, rename, UID recorded at once), redirects and vacation replies
 * through sendmail(8), rejects as a refusal the MTA bounces.  With -n it
 * only prints what it would do.  Exit codes follow sysexits.h: 0
 * delivered, 75 (EX_TEMPFAIL) when the MTA should try again; a failure
 * takes back the copies already made, so a retry never duplicates. */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "startup.h"
#include "maildir.h"
#include "mime.h"
#include "mutf7.h"
#include "sieve.h"
#include "util.h"
#include "session.h"

/* what this delivery knows */
static struct {
	int dryrun;
	const char *from, *to;
	char maildir[PATH_MAX], script[PATH_MAX], dir[PATH_MAX];
	char global[PATH_MAX], script_id[PATH_MAX];
	char state[PATH_MAX], sendmail[PATH_MAX];
	const char *p;		/* the message */
	size_t n;
} dl;

/* a copy made, to take back if a later one fails */
struct made {
	char *folder;
	uint32_t uidvalidity, uid;
};

static struct made made[64];
static size_t nmade;

static int stored_before(const char *folder);
static void kill_point(const char *point);

/* --- input ----------------------------------------------------------- */

/* the whole of fd into b, at most max bytes: 0, 1 when too large, -1 */
static int
read_all(int fd, struct buf *b, size_t max)
{
	ssize_t k;

	for (;;) {
		buf_grow(b, 65536);
		k = read(fd, b->p + b->len, b->cap - b->len - 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		if (k == 0)
			return 0;
		b->len += k;
		b->p[b->len] = '\0';
		if (b->len > max)
			return 1;
	}
}

/* a file's text, NULL when it cannot be read or is over max */
static char *
read_file(const char *path, size_t max, size_t *len)
{
	struct buf b = { 0 };
	int fd, r;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return NULL;
	r = read_all(fd, &b, max);
	close(fd);
	if (r != 0) {
		buf_free(&b);
		errno = r > 0 ? EFBIG : errno;
		return NULL;
	}
	buf_addc(&b, '\0');	/* an empty file still gets a buffer */
	*len = b.len - 1;
	return b.p;
}

/* include :personal "name" finds dir/name.sieve, include :global
 * "name" global/name.sieve; each is known by its real path */
static char *
load_include(const char *name, int personal, size_t *len, char *id,
    size_t idsz, void *arg)
{
	char path[PATH_MAX], real[PATH_MAX];
	char *text;

	if (!*name || strchr(name, '/') || name[0] == '.')
		return NULL;
	if (snprintf(path, sizeof(path), "%s/%s.sieve", personal ? dl.dir :
	    dl.global, name) >= (int)sizeof(path))
		return NULL;
	if ((text = read_file(path, SIEVE_SIZE_MAX, len)) &&
	    realpath(path, real))
		snprintf(id, idsz, "%s", real);
	return text;
}

/* --- the store ------------------------------------------------------- */

/* split flag names into system flag bits and keywords */
static uint32_t
split_flags(char **names, size_t n, char **kw, size_t *nkw)
{
	uint32_t bits = 0;
	long b;
	size_t i;

	*nkw = 0;
	for (i = 0; i < n; i++) {
		if ((b = sysflag(names[i])) > 0)
			bits |= b;
		else if (b == 0 && *nkw < KW_MAX)
			kw[(*nkw)++] = names[i];
	}
	return bits;
}

/* a folder as Sieve names it (UTF-8) as the store names it */
static int
store_name(struct buf *b, const char *utf8)
{
	buf_reset(b);
	if (utf8_to_mutf7(b, utf8) < 0 || !b->len) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

static int
folder_exists(const char *utf8)
{
	struct buf b = { 0 };
	int r = store_name(&b, utf8) == 0 && mbox_exists(b.p) == 1;

	buf_free(&b);
	return r;
}

static struct append *
open_folder(const char *utf8, int create)
{
	struct buf b = { 0 };
	struct append *a = NULL;

	if (store_name(&b, utf8) == 0 && !(a = append_begin(b.p)) &&
	    errno == ENOENT && create &&
	    (mbox_create(b.p) == 0 || errno == EEXIST))
		a = append_begin(b.p);
	buf_free(&b);
	return a;
}

static int
store_one(const char *folder, int create, char **flags, size_t nflags)
{
	struct append *a;
	char *kw[KW_MAX];
	size_t nkw;
	uint32_t bits, uidv, uid;

	if (stored_before(folder)) {
		logmsg(LOG_INFO, "%s already holds this message: stored by an "
		    "attempt that did not finish", folder);
		return 0;
	}
	if (!(a = open_folder(folder, create)))
		return -1;
	if (append_write(a, dl.p, dl.n) < 0) {
		append_abort(a);
		return -1;
	}
	bits = split_flags(flags, nflags, kw, &nkw);
	if (append_commit(a, bits, kw, nkw, 0, &uidv, &uid) < 0)
		return -1;
	if (nmade < LEN(made)) {
		made[nmade].folder = xstrdup(folder);	/* INBOX or UTF-8 */
		made[nmade].uidvalidity = uidv;
		made[nmade++].uid = uid;
	}
	logmsg(LOG_INFO, "delivered to %s uid=%u", folder, uid);
	kill_point("stored");
	return 0;
}

/* take back the copies made so far: the MTA will deliver again */
static void
unmake(void)
{
	struct folder f;
	struct buf name = { 0 };
	long i;

	while (nmade > 0) {
		nmade--;
		memset(&f, 0, sizeof(f));
		if (store_name(&name, made[nmade].folder) == 0 &&
		    folder_open(&f, name.p, 0) == 0) {
			if (f.uidvalidity == made[nmade].uidvalidity &&
			    (i = folder_find(&f, made[nmade].uid)) >= 0)
				folder_expunge(&f, i);
			folder_close(&f);
		}
		free(made[nmade].folder);
	}
	buf_free(&name);
}

/* a store action: 0 done, 1 when the folder does not exist and may not
 * be created (the message is then kept in INBOX, RFC 5228 2.10.6), -1 */
static int
store_action(const char *folder, int create, char **flags, size_t nflags)
{
	if (store_one(folder, create, flags, nflags) == 0)
		return 0;
	if (errno != ENOENT && errno != EINVAL && errno != EPERM)
		return -1;
	logmsg(LOG_NOTICE, "fileinto %.200s: %s; keeping in INBOX", folder,
	    strerror(errno));
	return 1;
}

/* --- sending mail ------------------------------------------------------ */

/* run sendmail with args, text on its stdin: 0 when it took the mail */
static int
sendmail(const char *envfrom, const char *rcpt, const char *head,
    const char *body, size_t bodylen)
{
	int fds[2], status;
	pid_t pid;
	struct buf b = { 0 };

	if (pipe(fds) < 0)
		return -1;
	if ((pid = fork()) < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fds[0], 0);
		close(fds[0]);
		close(fds[1]);
		execl(dl.sendmail, "sendmail", "-i", "-f", envfrom, "--", rcpt,
		    (char *)NULL);
		_exit(EX_UNAVAILABLE);
	}
	close(fds[0]);
	signal(SIGPIPE, SIG_IGN);
	if (head)
		buf_adds(&b, head);
	buf_add(&b, body, bodylen);
	status = write(fds[1], b.p, b.len) == (ssize_t)b.len ? 0 : -1;
	buf_free(&b);
	close(fds[1]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* a string fit for a header line: no line breaks, bounded */
static void
header_safe(struct buf *b, const char *s, size_t max)
{
	for (; *s && max; s++, max--)
		buf_addc(b, *s == '\r' || *s == '\n' ? ' ' : *s);
}

/* an address fit for a command line and an envelope */
static int
addr_ok(const char *a)
{
	const char *at = strchr(a, '@');

	if (!at || at == a || !at[1] || a[0] == '-' || strlen(a) > 254)
		return 0;
	for (; *a; a++)
		if ((unsigned char)*a <= ' ' || strchr("<>()[]\\,;:\"", *a))
			return 0;
	return 1;
}

/* --- the vacation memory and daily limits -------------------------------
 * One line per reply sent, "expiry hash", and one line per day count,
 * "day kind count", in sieve_state; flock serialises deliveries. */

struct sstate {
	int fd;
	struct buf text;
};

static int
state_open(struct sstate *s)
{
	memset(s, 0, sizeof(*s));
	if ((s->fd = open(dl.state, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return -1;
	if (flock(s->fd, LOCK_EX) < 0 || read_all(s->fd, &s->text, 1 << 20)) {
		close(s->fd);
		buf_free(&s->text);
		return -1;
	}
	return 0;
}

/* the value of key in the state, 0 when absent */
static long long
state_get(struct sstate *s, const char *key)
{
	const char *p = s->text.p;
	size_t k = strlen(key);

	for (; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, key, k) && p[k] == ' ')
			return strtoll(p + k + 1, NULL, 10);
	return 0;
}

/* write the state back with key set to v, dropping expired entries */
static void
state_put(struct sstate *s, const char *key, long long v, time_t now)
{
	struct buf out = { 0 };
	const char *p, *e;
	long long t;

	for (p = s->text.p; p && *p; p = *e ? e + 1 : e) {
		e = p + strcspn(p, "\n");
		t = strtoll(strchr(p, ' ') ? strchr(p, ' ') + 1 : p, NULL, 10);
		if (strncmp(p, key, strlen(key)) == 0 && p[strlen(key)] == ' ')
			continue;
		if ((*p == 'v' && t < now) || (*p == 'd' &&
		    strtoll(p + 1, NULL, 10) != now / 86400))
			continue;
		buf_add(&out, p, e - p);
		buf_addc(&out, '\n');
	}
	buf_printf(&out, "%s %lld\n", key, v);
	if (lseek(s->fd, 0, SEEK_SET) == 0 && ftruncate(s->fd, 0) == 0 &&
	    write(s->fd, out.p, out.len) == (ssize_t)out.len)
		fsync(s->fd);
	buf_free(&out);
}

static void
state_close(struct sstate *s)
{
	close(s->fd);
	buf_free(&s->text);
}

/* count one more of kind today; 0 while under max */
static int
day_limit(const char *kind, long max, time_t now)
{
	struct sstate s;
	char key[64];
	long long n;

	if (state_open(&s) < 0)
		return -1;
	snprintf(key, sizeof(key), "d%lld.%s", (long long)now / 86400, kind);
	if ((n = state_get(&s, key)) >= max) {
		state_close(&s);
		return -1;
	}
	state_put(&s, key, n + 1, now);
	state_close(&s);
	return 0;
}

/* FNV-1a of the strings, for the vacation memory */
static unsigned long long
hash2(const char *a, const char *b)
{
	unsigned long long h = 1469598103934665603ULL;

	for (; *a; a++)
		h = (h ^ (unsigned char)*a) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL;
	for (; *b; b++)
		h = (h ^ (unsigned char)*b) * 1099511628211ULL;
	return h;
}

/* --- the delivery memory -------------------------------------------------
 * A delivery killed after storing but before the MTA heard its exit code
 * is tried again; this memory keeps the retry from storing twice.  Before
 * the first copy is stored, one line per folder the delivery may store
 * into, "i KEY TIME UIDVALIDITY UIDNEXT FOLDER", says where that
 * folder's UIDs stood; after the last action "d KEY TIME" replaces them.
 * A retry that finds "d" has nothing to do; one that finds "i" looks in
 * that folder from that UID on for the message (the same Message-ID, or
 * the same octets when it has none) and does not store a copy it finds.
 * So a kill at any point leaves the message stored once: before the
 * intent nothing was stored; after it, what was stored is found.  KEY
 * names recipient, sender and Message-ID (or the octets); the file is
 * rewritten whole (tmp, fsync, rename) under the state file's lock, and
 * lines older than DELIVER_MEMORY seconds are dropped. */

struct intent {
	char folder[256];
	uint32_t uidvalidity, uidnext;
};

static struct {
	char path[PATH_MAX + 16];
	char key[24];
	int done;		/* a delivery of this message completed */
	struct intent prior[16];	/* what an earlier attempt meant to store */
	size_t nprior;
} mem;

/* FNV-1a over n octets, continuing from h */
static unsigned long long
fnv(unsigned long long h, const char *p, size_t n)
{
	while (n--)
		h = (h ^ (unsigned char)*p++) * 1099511628211ULL;
	return h;
}

/* what tells this message from others: its Message-ID, else its octets */
static unsigned long long
message_hash(const char *p, size_t n)
{
	static const char *const names[] = { "Message-ID" };
	struct buf v = { 0 };
	unsigned long long h = 1469598103934665603ULL;

	if (mime_headers(p, n, names, 1, &v) && v.len)
		h = fnv(fnv(h, "id", 2), v.p, v.len);
	else
		h = fnv(fnv(h, "octets", 6), p, n);
	buf_free(&v);
	return h;
}

/* hex of s, for a folder name in a line of the memory */
static void
hex(char *out, size_t size, const char *s)
{
	for (*out = '\0'; *s && size > 2; s++, out += 2, size -= 2)
		snprintf(out, 3, "%02x", (unsigned char)*s);
}

static void
unhex(char *out, size_t size, const char *s)
{
	unsigned v;

	for (; size > 1 && sscanf(s, "%2x", &v) == 1; s += 2, size--)
		*out++ = v;
	*out = '\0';
}

/* fsync the directory path is in, so a rename in it is on disk */
static int
sync_dir(const char *path)
{
	char dir[PATH_MAX + 32], *slash;
	int fd, r;

	snprintf(dir, sizeof(dir), "%s", path);
	if (!(slash = strrchr(dir, '/')))
		snprintf(dir, sizeof(dir), ".");
	else
		slash[slash == dir] = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

/* the memory's lines; under the state file's lock (state_open) */
static int
mem_read(struct buf *b)
{
	int fd, r;

	buf_reset(b);
	if ((fd = open(mem.path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : -1;
	r = read_all(fd, b, 8 << 20);
	close(fd);
	return r ? -1 : 0;
}

/* write lines back: those still young and not of this message, then add */
static int
mem_write(const struct buf *old, const struct buf *add, time_t now)
{
	struct buf out = { 0 };
	char tmp[PATH_MAX + 32], key[24];
	const char *p, *e;
	long long t;
	int fd, ok;

	for (p = old->p; p && *p; p = *e ? e + 1 : e) {
		e = p + strcspn(p, "\n");
		if (sscanf(p, "%*c %23s %lld", key, &t) == 2 &&
		    strcmp(key, mem.key) && t + DELIVER_MEMORY > now) {
			buf_add(&out, p, e - p);
			buf_addc(&out, '\n');
		}
	}
	if (add->len)
		buf_add(&out, add->p, add->len);
	snprintf(tmp, sizeof(tmp), "%s.tmp", mem.path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) < 0) {
		buf_free(&out);
		return -1;
	}
	ok = (!out.len || write(fd, out.p, out.len) == (ssize_t)out.len) &&
	    fsync(fd) == 0;
	ok = close(fd) == 0 && ok && rename(tmp, mem.path) == 0 &&
	    sync_dir(mem.path) == 0;
	buf_free(&out);
	return ok ? 0 : -1;
}

/* the message's name in the memory: recipient, sender, message */
static void
mem_key(void)
{
	const char *to = dl.to ? dl.to : "", *from = dl.from ? dl.from : "";
	unsigned long long h = message_hash(dl.p, dl.n);

	/* each with its NUL, so that no two pairs run together alike */
	h = fnv(fnv(h, to, strlen(to) + 1), from, strlen(from) + 1);
	snprintf(mem.key, sizeof(mem.key), "%016llx", h);
}

/* what the memory holds of this message: mem.done, mem.prior */
static int
mem_load(void)
{
	struct sstate s;
	struct buf b = { 0 };
	const char *p;
	char key[24], f[600];
	struct intent *in;
	int r;

	mem_key();
	if (state_open(&s) < 0)
		return -1;
	r = mem_read(&b);
	state_close(&s);
	for (p = b.p; r == 0 && p && *p; p = strchr(p, '\n') ?
	    strchr(p, '\n') + 1 : NULL) {
		if (sscanf(p, "%*c %23s", key) != 1 || strcmp(key, mem.key))
			continue;
		if (*p == 'd')
			mem.done = 1;
		in = &mem.prior[mem.nprior];
		if (*p == 'i' && mem.nprior < LEN(mem.prior) &&
		    sscanf(p, "i %*s %*d %u %u %599s", &in->uidvalidity,
		    &in->uidnext, f) == 3) {
			unhex(in->folder, sizeof(in->folder), f);
			mem.nprior++;
		}
	}
	buf_free(&b);
	return r;
}

/* the earlier attempt's intent for folder, or NULL */
static const struct intent *
prior_intent(const char *folder)
{
	size_t i;

	for (i = 0; i < mem.nprior; i++)
		if (!strcmp(mem.prior[i].folder, folder))
			return &mem.prior[i];
	return NULL;
}

/* the lines of this message: "d", or an "i" for each folder */
static int
mem_save(const struct intent *v, size_t n, int done)
{
	struct sstate s;
	struct buf old = { 0 }, add = { 0 };
	const struct intent *in;
	char f[600];
	time_t now = time(NULL);
	size_t i;
	int r;

	if (done)
		buf_printf(&add, "d %s %lld\n", mem.key, (long long)now);
	for (i = 0; !done && i < n; i++) {
		/* an earlier attempt's line stays: it reaches further back */
		in = prior_intent(v[i].folder) ? prior_intent(v[i].folder) :
		    &v[i];
		hex(f, sizeof(f), in->folder);
		buf_printf(&add, "i %s %lld %u %u %s\n", mem.key,
		    (long long)now, in->uidvalidity, in->uidnext, f);
	}
	if (state_open(&s) < 0)
		return -1;
	r = mem_read(&old) == 0 && mem_write(&old, &add, now) == 0 ? 0 : -1;
	state_close(&s);
	buf_free(&old);
	buf_free(&add);
	return r;
}

/* did the earlier attempt store this message in folder */
static int
stored_before(const char *folder)
{
	const struct intent *in = prior_intent(folder);
	struct folder f;
	struct msgmap mm;
	struct buf name = { 0 };
	unsigned long long want;
	size_t i;
	int found = 0;

	if (!in)
		return 0;
	want = message_hash(dl.p, dl.n);
	memset(&f, 0, sizeof(f));
	if (store_name(&name, folder) < 0 ||
	    folder_open(&f, name.p, 0) < 0) {
		buf_free(&name);
		return 0;
	}
	for (i = 0; i < f.nmsgs && !found; i++) {
		/* a new UID list renumbered everything: look at all */
		if (f.uidvalidity == in->uidvalidity &&
		    f.msgs[i].uid < in->uidnext)
			continue;
		if (msg_map(&f, i, &mm) == 0) {
			found = message_hash(mm.p, mm.len) == want;
			msg_unmap(&mm);
		}
	}
	folder_close(&f);
	buf_free(&name);
	return found;
}

/* where each folder r may store into stands now, INBOX always (the
 * fallback when a fileinto cannot be done) */
static int
mem_intend(const struct sv_result *r)
{
	struct intent v[LEN(mem.prior)];
	struct mboxstatus st;
	struct buf name = { 0 };
	const char *folder;
	size_t n = 0, i, k;

	for (i = 0; i <= r->n && n < LEN(v); i++) {
		folder = i == r->n ? "INBOX" : r->a[i].type == SV_FILEINTO ?
		    r->a[i].arg : r->a[i].type == SV_KEEP ? "INBOX" : NULL;
		for (k = 0; folder && k < n; k++)
			if (!strcmp(v[k].folder, folder))
				folder = NULL;
		if (!folder || strlen(folder) >= sizeof(v[n].folder))
			continue;
		snprintf(v[n].folder, sizeof(v[n].folder), "%s", folder);
		memset(&st, 0, sizeof(st));
		if (store_name(&name, folder) == 0)
			mbox_status_nosize(name.p, &st);
		v[n].uidvalidity = st.uidvalidity;
		v[n++].uidnext = st.uidnext;
	}
	buf_free(&name);
	return mem_save(v, n, 0);
}

/* for the tests of this memory only: die here when IMAPD_KILL_AT names
 * the point, as a kill -9 from outside would */
static void
kill_point(const char *point)
{
	const char *k = getenv("IMAPD_KILL_AT");

	if (k && !strcmp(k, point))
		raise(SIGKILL);
}

/* --- vacation (RFC 5230) ---------------------------------------------- */

/* why no reply goes out, or NULL when one may */
static const char *
vacation_refused(const struct sv_action *a)
{
	static const char *const lists[] = { "List-Id", "List-Help",
	    "List-Subscribe", "List-Unsubscribe", "List-Post", "List-Owner",
	    "List-Archive" };
	static const char *const heads[] = { "Precedence", "Auto-Submitted",
	    "X-Auto-Response-Suppress" };
	static const char *const mine[] = { "To", "Cc", "Bcc", "Resent-To",
	    "Resent-Cc", "Resent-Bcc" };
	struct buf v[LEN(lists)] = { { 0 } };
	const char *f = dl.from;
	unsigned got;
	size_t i, k;
	int found = 0;

	if (!f || !*f || !addr_ok(f))
		return "no usable sender";
	if (!ascii_ncasecmp(f, "mailer-daemon@", 14) ||
	    !ascii_ncasecmp(f, "owner-", 6) || !ascii_ncasecmp(f, "listserv@", 9) ||
	    !ascii_ncasecmp(f, "majordomo@", 10) ||
	    ascii_casestr(f, strcspn(f, "@"), "-request", 8))
		return "sender is a mailer or a list";
	got = mime_headers(dl.p, dl.n, lists, LEN(lists), v);
	for (i = 0; i < LEN(v); i++)
		buf_reset(&v[i]);
	if (got) {
		for (i = 0; i < LEN(v); i++)
			buf_free(&v[i]);
		return "message from a mailing list";
	}
	got = mime_headers(dl.p, dl.n, heads, LEN(heads), v);
	if (((got & 1) && (ascii_casestr(v[0].p, v[0].len, "bulk", 4) ||
	    ascii_casestr(v[0].p, v[0].len, "list", 4) ||
	    ascii_casestr(v[0].p, v[0].len, "junk", 4))) ||
	    ((got & 2) && !ascii_casestr(v[1].p, v[1].len, "no", 2)) ||
	    (got & 4))
		found = -1;
	for (i = 0; i < LEN(v); i++)
		buf_free(&v[i]);
	if (found < 0)
		return "bulk or automatic message";
	if (dl.to && *dl.to)
		for (i = 0; i < LEN(mine) && !found; i++)
			found = mime_match_header(dl.p, dl.n, mine[i], dl.to);
	for (k = 0; k < a->naddresses && !found; k++)
		for (i = 0; i < LEN(mine) && !found; i++)
			found = mime_match_header(dl.p, dl.n, mine[i],
			    a->addresses[k]);
	if (!found)
		return "the recipient is not in To, Cc or Bcc";
	return NULL;
}

static void
vacation_message(struct buf *b, const struct sv_action *a, time_t now)
{
	static const char *const names[] = { "Subject", "Message-ID" };
	struct buf v[2] = { { 0 } };
	char date[64];

	mime_headers(dl.p, dl.n, names, 2, v);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000",
	    gmtime(&now));
	buf_adds(b, "From: ");
	header_safe(b, a->from ? a->from : dl.to ? dl.to : "", 500);
	buf_adds(b, "\r\nTo: ");
	header_safe(b, dl.from, 500);
	buf_adds(b, "\r\nSubject: ");
	if (a->subject)
		header_safe(b, a->subject, 500);
	else {
		buf_adds(b, "Auto: ");
		header_safe(b, v[0].len ? v[0].p : "Your message", 500);
	}
	buf_printf(b, "\r\nDate: %s\r\nAuto-Submitted: auto-replied "
	    "(vacation)\r\nPrecedence: bulk\r\n", date);
	if (v[1].len) {
		buf_adds(b, "In-Reply-To: ");
		header_safe(b, v[1].p, 500);
		buf_adds(b, "\r\nReferences: ");
		header_safe(b, v[1].p, 500);
		buf_adds(b, "\r\n");
	}
	buf_adds(b, "MIME-Version: 1.0\r\n");
	if (!a->mime)
		buf_adds(b, "Content-Type: text/plain; charset=utf-8\r\n"
		    "Content-Transfer-Encoding: 8bit\r\n\r\n");
	buf_free(&v[0]);
	buf_free(&v[1]);
}

static void
vacation(const struct sv_action *a, time_t now)
{
	struct sstate s;
	struct buf head = { 0 };
	char key[40];
	const char *why;

	if ((why = vacation_refused(a))) {
		logmsg(LOG_INFO, "vacation: no reply: %s", why);
		return;
	}
	snprintf(key, sizeof(key), "v%016llx",
	    hash2(dl.from, a->handle ? a->handle : a->arg));
	if (state_open(&s) < 0) {
		logmsg(LOG_ERR, "vacation: %s: %s", dl.state, strerror(errno));
		return;
	}
	if (state_get(&s, key) > now) {
		state_close(&s);
		logmsg(LOG_INFO, "vacation: already replied to this sender");
		return;
	}
	state_put(&s, key, now + a->seconds, now);
	state_close(&s);
	if (day_limit("vacation", SIEVE_VACATION_DAY, now) < 0) {
		logmsg(LOG_NOTICE, "vacation: daily limit reached");
		return;
	}
	vacation_message(&head, a, now);
	if (sendmail("<>", dl.from, head.p, a->arg, strlen(a->arg)) < 0)
		logmsg(LOG_ERR, "vacation: sendmail failed");
	else
		logmsg(LOG_INFO, "vacation: replied to %.200s", dl.from);
	buf_free(&head);
}

/* --- carrying out the actions ------------------------------------------ */

static int
redirect(const struct sv_action *a, time_t now)
{
	if (!addr_ok(a->arg) ||
	    day_limit("redirect", SIEVE_REDIRECT_DAY, now) < 0 ||
	    sendmail(dl.from && *dl.from ? dl.from : "<>", a->arg, NULL,
	    dl.p, dl.n) < 0) {
		logmsg(LOG_ERR, "redirect to %.200s failed", a->arg);
		return -1;
	}
	logmsg(LOG_INFO, "redirected to %.200s", a->arg);
	return 0;
}

/* stores first (they can be taken back), then mail to others; a store
 * or redirect that cannot be done leaves one copy in INBOX instead */
static int
carry_out(struct sv_result *r, time_t now)
{
	size_t i;
	int inbox = r->implicit_keep, need_inbox = 0, k;

	for (i = 0; i < r->n; i++) {
		struct sv_action *a = &r->a[i];

		if (a->type != SV_KEEP && a->type != SV_FILEINTO)
			continue;
		if ((k = store_action(a->type == SV_KEEP ? "INBOX" : a->arg,
		    a->create, a->flags, a->nflags)) < 0)
			return -1;
		need_inbox |= k;
		inbox |= a->type == SV_KEEP;
	}
	if (r->implicit_keep &&
	    store_action("INBOX", 0, r->keepflags, r->nkeepflags) < 0)
		return -1;
	if (need_inbox && !inbox && store_one("INBOX", 0, NULL, 0) < 0)
		return -1;
	inbox |= need_inbox;
	for (i = 0; i < r->n; i++) {
		if (r->a[i].type == SV_REDIRECT && redirect(&r->a[i], now) < 0 &&
		    !inbox && store_one("INBOX", 0, NULL, 0) == 0)
			inbox = 1;
		if (r->a[i].type == SV_VACATION)
			vacation(&r->a[i], now);
	}
	return 0;
}

/* reject and ereject: the MTA bounces on our refusal (RFC 5429 2.1
 * allows a DSN); to the null sender there is no one to tell */
static int
refuse(const struct sv_action *a)
{
	struct buf b = { 0 };

	if (!dl.from || !*dl.from) {
		logmsg(LOG_INFO, "reject of a message from <>: discarded");
		return EX_OK;
	}
	header_safe(&b, a->arg, 400);
	fprintf(stderr, "%s\n", b.p ? b.p : "rejected");
	logmsg(LOG_INFO, "rejected: %s", b.p ? b.p : "");
	buf_free(&b);
	return EX_NOPERM;
}

/* --- dry run ----------------------------------------------------------- */

static void
print_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		if ((unsigned char)*s < ' ' && *s != '\t')
			printf("\\x%02x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void
print_flags(char **flags, size_t n)
{
	size_t i;

	if (!n)
		return;
	fputs(" :flags [", stdout);
	for (i = 0; i < n; i++) {
		if (i)
			fputs(", ", stdout);
		print_str(flags[i]);
	}
	putchar(']');
}

static void
print_action(const struct sv_action *a)
{
	static const char *const names[] = { "keep", "fileinto", "redirect",
	    "discard", "reject", "ereject", "vacation" };
	const char *why;

	fputs(names[a->type], stdout);
	if (a->copy)
		fputs(" :copy", stdout);
	if (a->create)
		fputs(" :create", stdout);
	print_flags(a->flags, a->nflags);
	if (a->type == SV_VACATION) {
		printf(" :seconds %lld", a->seconds);
		if (a->subject) {
			fputs(" :subject ", stdout);
			print_str(a->subject);
		}
		if (a->from) {
			fputs(" :from ", stdout);
			print_str(a->from);
		}
	}
	if (a->arg) {
		putchar(' ');
		print_str(a->arg);
	}
	if (a->type == SV_VACATION && (why = vacation_refused(a)))
		printf("  # not sent: %s", why);
	if (a->type == SV_FILEINTO && !a->create && !folder_exists(a->arg))
		fputs("  # no such folder: goes to INBOX", stdout);
	putchar('\n');
}

static void
print_result(const struct sv_result *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		print_action(&r->a[i]);
	if (r->implicit_keep) {
		fputs("implicit keep", stdout);
		print_flags(r->keepflags, r->nkeepflags);
		putchar('\n');
	}
}

/* --- the script ---------------------------------------------------------- */

/* tell the user once a day, in INBOX, that the script is broken */
static void
notice(const char *why)
{
	struct buf b = { 0 };
	char path[PATH_MAX], date[64];
	struct append *a;
	struct stat sb;
	uint32_t uidv, uid;
	time_t now = time(NULL);
	int fd;

	if (snprintf(path, sizeof(path), "%s.notice", dl.state) >=
	    (int)sizeof(path) || (stat(path, &sb) == 0 &&
	    now - sb.st_mtime < 86400))
		return;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0)
		close(fd);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000",
	    gmtime(&now));
	buf_printf(&b, "From: Mail delivery <MAILER-DAEMON>\r\nDate: %s\r\n"
	    "Subject: Your mail filter has an error\r\nAuto-Submitted: "
	    "auto-generated\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; "
	    "charset=utf-8\r\n\r\nYour Sieve script %s could not be used, so "
	    "new mail goes to INBOX unfiltered:\r\n\r\n  ", date, dl.script);
	header_safe(&b, why, 400);
	buf_adds(&b, "\r\n\r\nThis notice comes at most once a day.\r\n");
	if ((a = append_begin("INBOX"))) {
		if (append_write(a, b.p, b.len) < 0)
			append_abort(a);
		else
			append_commit(a, 0, NULL, 0, 0, &uidv, &uid);
	}
	buf_free(&b);
}

/* parse and run the script: 0 with actions, -1 after logging why (the
 * message is then kept) */
static int
filter(struct sv_result *r)
{
	struct sv_script *s;
	struct sv_msg m;
	char err[256], *text;
	size_t len;
	int rc;

	if (!(text = read_file(dl.script, SIEVE_SIZE_MAX, &len))) {
		if (errno == ENOENT)
			return 1;
		snprintf(err, sizeof(err), "cannot read %.120s: %s", dl.script,
		    errno == EFBIG ? "larger than the limit" : strerror(errno));
		goto fail;
	}
	s = sieve_parse(text, len, err, sizeof(err));
	free(text);
	if (!s)
		goto fail;
	m.p = dl.p;
	m.n = dl.n;
	m.from = dl.from ? dl.from : "";
	m.to = dl.to ? dl.to : "";
	m.now = time(NULL);
	m.mbox_exists = folder_exists;
	m.script_id = realpath(dl.script, dl.script_id) ? dl.script_id : NULL;
	rc = sieve_run(s, &m, load_include, NULL, r);
	sieve_free(s);
	if (rc == 0)
		return 0;
	snprintf(err, sizeof(err), "%s", r->err);
fail:
	if (dl.dryrun) {
		fprintf(stderr, "%s: %s\n", dl.script, err);
		return -1;
	}
	logmsg(LOG_ERR, "sieve %s: %s; keeping in INBOX", dl.script, err);
	notice(err);
	return -1;
}

/* --- start-up ------------------------------------------------------------ */

static void
usage(void)
{
	fputs("usage: imapd -d [-n] [-f sender] [-a recipient]\n", stderr);
	exit(EX_USAGE);
}

static void
options(int argc, char *argv[])
{
	int c;

	optind = 2;
	while ((c = getopt(argc, argv, "nf:a:")) != -1) {
		switch (c) {
		case 'n':
			dl.dryrun = 1;
			break;
		case 'f':
			dl.from = optarg;
			break;
		case 'a':
			dl.to = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	/* Postfix and others pass the envelope in the environment */
	if (!dl.from)
		dl.from = getenv("SENDER");
	if (!dl.to && !(dl.to = getenv("ORIGINAL_RECIPIENT")))
		dl.to = getenv("RECIPIENT");
	if (dl.from && (!strcmp(dl.from, "<>") || !strcmp(dl.from, "<>@")))
		dl.from = "";
	if (dl.from && dl.from[0] == '<' && dl.from[1]) {
		char *s = xstrdup(dl.from + 1);

		s[strcspn(s, ">")] = '\0';
		dl.from = s;
	}
}

/* the message on stdin, without an mbox "From " line in front */
static int
read_message(struct buf *b)
{
	int r = read_all(0, b, APPEND_MAX);
	char *e;

	if (r < 0) {
		logmsg(LOG_ERR, "reading the message: %s", strerror(errno));
		return EX_TEMPFAIL;
	}
	if (r > 0) {
		fputs("message larger than the limit\n", stderr);
		return EX_DATAERR;
	}
	dl.p = b->p ? b->p : "";
	dl.n = b->len;
	if (dl.n > 5 && !strncmp(dl.p, "From ", 5) &&
	    (e = memchr(dl.p, '\n', dl.n))) {
		dl.n -= e + 1 - dl.p;
		dl.p = e + 1;
	}
	return 0;
}

int
deliver_main(int argc, char *argv[])
{
	struct sv_result r;
	struct buf msg = { 0 };
	int rc;
	size_t i;

	options(argc, argv);
	if (geteuid() == 0 || getuid() == 0) {
		fputs("imapd -d: refusing to deliver as root\n", stderr);
		return EX_TEMPFAIL;
	}
	umask(077);
	config_path(dl.maildir, sizeof(dl.maildir), "MAILDIR", maildir_root);
	config_path(dl.script, sizeof(dl.script), "IMAPD_SIEVE", sieve_script);
	config_path(dl.dir, sizeof(dl.dir), "IMAPD_SIEVE_DIR", sieve_dir);
	config_path(dl.global, sizeof(dl.global), "IMAPD_SIEVE_GLOBAL",
	    sieve_global);
	config_path(dl.state, sizeof(dl.state), "IMAPD_SIEVE_STATE",
	    sieve_state);
	config_path(dl.sendmail, sizeof(dl.sendmail), "IMAPD_SENDMAIL",
	    sendmail_path);
	if ((rc = read_message(&msg)))
		return rc;
	if (store_init(dl.maildir) < 0 && !dl.dryrun) {
		logmsg(LOG_ERR, "Maildir %s: %s", dl.maildir, strerror(errno));
		return EX_TEMPFAIL;
	}
	/* without its memory a delivery goes on: a retry may then store
	 * twice, which is better than holding up the mail */
	snprintf(mem.path, sizeof(mem.path), "%s.delivered", dl.state);
	if (!dl.dryrun && mem_load() < 0)
		logmsg(LOG_ERR, "%s: %s", mem.path, strerror(errno));
	if (!dl.dryrun && mem.done) {
		logmsg(LOG_INFO, "already delivered: a retry of a delivery "
		    "that completed");
		buf_free(&msg);
		return EX_OK;
	}
	memset(&r, 0, sizeof(r));
	rc = filter(&r);
	if (rc != 0) {
		sieve_result_free(&r);
		memset(&r, 0, sizeof(r));
		r.implicit_keep = 1;
	}
	if (dl.dryrun) {
		print_result(&r);
		sieve_result_free(&r);
		return rc < 0 ? EX_DATAERR : EX_OK;
	}
	for (i = 0; i < r.n; i++)
		if (r.a[i].type == SV_REJECT || r.a[i].type == SV_EREJECT) {
			rc = refuse(&r.a[i]);
			sieve_result_free(&r);
			return rc;
		}
	if (mem_intend(&r) < 0)
		logmsg(LOG_ERR, "%s: %s", mem.path, strerror(errno));
	kill_point("intent");
	rc = EX_OK;
	if (carry_out(&r, time(NULL)) < 0) {
		logmsg(LOG_ERR, "delivery failed: %s; the MTA will retry",
		    strerror(errno));
		unmake();
		rc = EX_TEMPFAIL;
	} else if (mem_save(NULL, 0, 1) < 0)
		logmsg(LOG_ERR, "%s: %s", mem.path, strerror(errno));
	kill_point("done");
	sieve_result_free(&r);
	buf_free(&msg);
	return rc;
}
