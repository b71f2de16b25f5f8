/* store.h: what the rooms of the message store share, private to them.
 * Top to bottom, each calling only the ones below it: folders.c (the
 * folder namespace), message.c (the messages), sync.c (folder sync and
 * reading the UID list), index.c (the binary index) and msgcache.c (the
 * message cache), maildir.c (the UID record, names and paths).  Nothing
 * above the store includes it.
 *
 * folder.msgs and folder.names may lie in a private mapping of the
 * folder's imapd-index (index.c): changed in place (the kernel copies a
 * page on its first write, the file never changes), grown in place up to
 * the room mapped after them, then moved to the heap (msgs_reserve,
 * names_reserve).  Records handed to a session's view (folder_share) are
 * not changed at all: every change starts with msgs_thaw, which gives the
 * store a copy of its own the first time.  The UID list (imapd-uidlist)
 * is the durable record; the index and the cache may be deleted at any
 * time. */
#ifndef STORE_H
#define STORE_H
#include <sys/stat.h>

#define FL_SYSTEM	0x3fU	/* flags stored as info letters */
#define FL_GONE		(1U << 31)	/* until msgs_compact */

/* one expunge record: UIDs first..last went at modseq */
struct expunged {
	uint32_t first, last;
	uint64_t modseq;
};

/* a cached RFC822.SIZE, found by UID through store_state's vsidx */
struct vsize {
	uint32_t uid;
	uint64_t size;
};

/* an inotify event on a name in new/ or cur/, not yet matched with msgs */
struct pev {
	uint32_t off;		/* in pendnames: "new/..." or "cur/..." */
	uint32_t seq;		/* order of arrival */
	int present;		/* created or moved there, else gone */
};

#define MOVED_MAX	64	/* renames explained without the name hash */
#define BASES_FEW	16	/* names looked up without it */

struct store_state {
	struct timespec mt_new, mt_cur;	/* mtimes at the last scan */
	int scanned;		/* msgs matched the directories once */
	struct timespec st_new, st_cur;	/* last scan stamp in the list */
	int stamped;		/* st_* are valid */
	int stale;		/* the stamp may be behind the directories */
	int dirty;		/* rescan whatever the mtimes say */
	int newonly;		/* since the stamp only new/ changed */
	int newseen;		/* msgs may name files in new/ */
	uint64_t gen;		/* header G of the list file applied */
	uint64_t idx_gen;	/* the index on disk describes list G ... */
	off_t idx_off;		/* ... up to this offset */
	struct msgcache *mc;	/* msgcache.c, opened when first used */
	dev_t list_dev;		/* the UID list file we have applied */
	ino_t list_ino;
	off_t list_off;		/* bytes of it applied to msgs */
	struct buf made;	/* the UID list as list_create wrote it, */
	dev_t made_dev;		/* until list_load takes it instead of */
	ino_t made_ino;		/* reading the file back */
	dev_t peek_dev;		/* the file peek_off refers to */
	ino_t peek_ino;
	off_t peek_off;		/* bytes scanned for maxima only */
	uint64_t peek_modseq;	/* highest modseq in the file so far */
	uint32_t peek_uidnext;
	size_t nrecords;	/* lines in the file, for compaction */
	uint64_t histfloor;	/* header H */
	struct expunged *exp;	/* expunge history */
	size_t nexp, expcap;
	int expsorted;		/* exp is sorted and merged */
	uint32_t *recent;	/* sorted UIDs recent in this process */
	size_t nrecent, recentcap;
	uint32_t *claimed;	/* UIDs taken from new/ since recent_settle */
	size_t nclaimed, claimedcap;
	uint32_t recent_top;	/* UIDs up to this are settled */
	struct vsize *vs;	/* RFC822.SIZE cache */
	size_t nvs, vscap;
	struct htab vsidx;	/* hash of UID -> index in vs + 1 */
	struct htab bh;		/* hash of base name -> UID */
	/* UIDs whose file this process saw renamed or removed since the
	 * last pend_check, while bh is not built; nmoved past MOVED_MAX:
	 * too many to keep */
	uint32_t moved[MOVED_MAX];
	size_t nmoved;
	struct timespec kw_mtime;	/* dovecot-keywords as loaded */
	ino_t kw_ino;
	off_t kw_size;
	size_t namesdead;	/* garbage bytes in folder.names */
	size_t msgscap;
	/* bytes of the private mapping of the index (index.c) f->msgs,
	 * f->names start, 0 when on the heap: each grows in place up to
	 * msgscap, namescap, then moves to the heap */
	size_t msgs_map, names_map;
	/* msgs handed to a reader (folder_share): unchanged until it lets
	 * go, and readable only while they lie in the map (shared_map
	 * bytes of it, else 0); the store changes a copy (msgs_thaw) */
	struct msg *shared;
	size_t shared_map;
	unsigned long changes;	/* grows with every change to msgs */
	/* the UID of the first unseen message (0: none) as the index's
	 * header says, true while unseen_known and changes is unseen_at:
	 * nothing has changed msgs since they were the index's records */
	uint32_t first_unseen;
	int unseen_known;
	unsigned long unseen_at;
	/* while the lines after the index are applied: UIDs they left
	 * unseen (nunseen past MOVED_MAX: too many to keep), and whether
	 * they touched the first unseen one */
	uint32_t unseen[MOVED_MAX];
	size_t nunseen;
	int unseen_hit;
	size_t ngone;		/* msgs marked FL_GONE, for msgs_compact */
	int watchfd;		/* inotify on new/ and cur/, or -1 */
	int wd_new, wd_cur;
	struct pev *pend;	/* events msgs does not explain yet */
	size_t npend, pendcap;
	uint32_t pendseq;
	struct buf pendnames;
};

/* UID list header */
struct hdr {
	uint32_t uidvalidity, uidnext;
	uint64_t modseq, floor, gen;
};

/* maildir.c */
int pathf(char *buf, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int write_all(int fd, const void *p, size_t n);
const char *mname(const struct folder *f, const struct msg *m);
void msg_parse(struct folder *f, struct msg *m);

/* index.c: a binary snapshot of a folder's UID list, read instead of
 * parsing the list; index_load fills f as the list's first *off bytes
 * would (header h, file size size), index_save writes one when the list
 * has grown past the last. */
int index_load(struct folder *f, int listfd, const struct hdr *h,
    off_t size, off_t *off);
void index_save(struct folder *f);
/* frees f->msgs and f->names or unmaps them */
void index_release(struct folder *f);
/* STATUS of the folder in dir from the index's header and the list's
 * lines after it, when the directories are as the list last saw them;
 * -1 when only opening the folder can tell */
int index_status(const char *dir, struct mboxstatus *s, int want_size);

/* msgcache.c */
void msgcache_flush(struct folder *f);
void msgcache_close(struct folder *f);

/* ---- shared by maildir.c, folders.c, sync.c and message.c ---- */

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
#define STATE_TMP_AGE	3600	/* imapd-*.PID.tmp a killed writer left */
#define COMPACT_MIN	64	/* dead records worth a rewrite */
#define SETTLE_ROUNDS	8	/* looks for more arrivals within one sync */
#define REC_MAX		1024	/* longest line of a UID list */
#define CACHE_MAGIC	"imapd-uidlist-cache "
#define CACHE_LEN	128	/* the lock file's line, newline included */
#define RECENT_MAGIC	"imapd-recent "
#define RECENT_LEN	32	/* its second line */

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
	uint64_t when;		/* sort key of the leading digits, 0: none */
};

struct scan {
	struct buf names;
	struct ent *e;
	size_t n, cap;
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

extern char *root;
extern struct folder *exit_folder;
extern int exit_hooked;
extern char host[256];
extern unsigned long uniqcount;

/* maildir.c */
int is_inbox(const char *name);
int fsync_path(const char *path);
int read_range(int fd, off_t off, off_t end, struct buf *b);
int read_file(const char *path, struct buf *b);
int write_file(const char *dir, const char *name, const char *data, size_t len);
int getnum(const char **pp, const char *end, uint64_t *v);
int lock_root(void);
int lock_fd(int fd);
void unlock_fd(int fd);
void rm_tree(const char *path);
int mbox_valid(const char *name);
int folder_dir(char *buf, const char *name);
char *canonical_name(const char *name);
int is_dir(const char *path);
int make_subdirs(const char *dir);
size_t base_len(const char *fname);
void msg_setname(struct folder *f, struct msg *m, const char *name, size_t len);
void msgs_reserve(struct folder *f, size_t n);
void msgs_thaw(struct folder *f);
void shared_free(struct store_state *st);
void names_reserve(struct folder *f, size_t n);
void names_compact(struct folder *f);
long lower_bound(const struct folder *f, uint32_t uid);
long name_find(struct folder *f, const char *name);
void moved_note(struct folder *f, uint32_t uid);
int moved_find(struct folder *f, const char *name, long *i);
long base_find(struct folder *f, const char *name);
void bases_find(struct folder *f, const char *const *names, size_t n,
    long *idx);
void names_ready(struct folder *f);
void recent_add(struct store_state *st, uint32_t uid);
void claimed_add(struct store_state *st, uint32_t uid);
uint64_t *vsize_slot(struct store_state *st, uint32_t uid, int create);
void fname_flags(char *const *kwnames, const char *fname, uint32_t *flags, uint32_t *kw);
int flag_name(char *const *kwnames, const char *fname, uint32_t flags, uint32_t kw, char *out, size_t outsz);
int name_field(const char *fname, int key, uint64_t *v);
void kw_free(char **kw);
int kw_count(char *const *kw);
int kw_load(const char *dir, char **kw, struct stat *sb);
int kw_save(const char *dir, char *const *kw);
int kw_index(char *const *kw, const char *name);
int kw_add(char **kw, const char *name);
int kw_refresh(struct folder *f, int force);
int parse_header(const char *p, const char *end, struct hdr *h);
int parse_rec(const char *p, const char *end, struct rec *r);
void hist_add(struct store_state *st, uint32_t first, uint32_t last, uint64_t modseq);
void hist_merge(struct folder *f);
void msgs_compact(struct folder *f);
struct msg *msg_insert(struct folder *f, size_t at, uint32_t uid, uint64_t modseq, const char *name, size_t len);
size_t scan_maxima(const char *buf, size_t len, int header, struct hdr *h);
size_t apply_lines(struct folder *f, const char *buf, size_t len);

/* txn.c */
void txn_end(struct txn *t);
int txn_lock_how(struct txn *t, const char *dir, int wait);
int txn_lock(struct txn *t, const char *dir);
int txn_open(struct txn *t, const char *dir);
void rec_msg(struct txn *t, uint32_t uid, uint64_t modseq, const char *name);
void rec_exp(struct txn *t, uint32_t first, uint32_t last, uint64_t modseq);
int txn_write(struct txn *t);
int ts_eq(struct timespec a, struct timespec b);
int ts_lt(struct timespec a, struct timespec b);
int dir_stat(const char *dir, const char *sub, struct stat *sb);
int fs_now(struct txn *t, struct timespec *now);
uint64_t new_gen(void);
void cache_put(struct txn *t, uint64_t gen, off_t off, uint32_t uidnext, uint64_t modseq);
int cache_get(struct txn *t, const struct hdr *head, struct hdr *h, off_t *off);
int txn_peek(struct folder *f, struct txn *t);
int list_compact(struct folder *f, struct txn *t);
long long recent_read(int fd);

/* scan.c */
const char *ent_name(const struct scan *s, size_t j);
void scan_free(struct scan *s);
int scan_folder(struct scan *s, const char *dir);
int scan_dir(struct scan *s, const char *dir, const char *sub);
size_t scan_add(struct scan *s, const char *sub, const char *name);
void sort_ents(const struct scan *s, size_t *v, size_t n);
int same_base(const struct scan *s, size_t a, size_t b);
int claim(const char *dir, const char *name, char *out, size_t outsz);
int list_ensure(const char *dir, struct folder *f);

/* sync.c */
int open_folder(struct folder *f, const char *name, int rw, int watch);

/* message.c */
int relocate(struct folder *f, size_t i);
int msg_path(const struct folder *f, size_t i, char *path);
int msg_size(struct folder *f, size_t i, uint64_t *size);

#endif
