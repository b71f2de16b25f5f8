/* store.h: what the rooms of the message store share, private to them
 * (maildir.c: folders, the UID list and sync; index.c: the binary index
 * of a folder; msgcache.c: the message cache).  Nothing above the store
 * includes it. */
#include <sys/stat.h>

#define FL_SYSTEM	0x3fU	/* flags stored as info letters */
#define FL_GONE		(1U << 31)	/* until msgs_compact */

/* one expunge record: UIDs first..last went at modseq */
struct range {
	uint32_t first, last;
	uint64_t modseq;
};

/* cached RFC822.SIZE by UID (open addressing, uid 0 = empty) */
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

struct store_state {
	struct timespec mt_new, mt_cur;	/* mtimes at the last scan */
	int scanned;		/* msgs matched the directories once */
	struct timespec st_new, st_cur;	/* last scan stamp in the list */
	int stamped;		/* st_* are valid */
	int stale;		/* the stamp may be behind the directories */
	int dirty;		/* rescan whatever the mtimes say */
	int newseen;		/* msgs may name files in new/ */
	uint64_t gen;		/* header G of the list file applied */
	uint64_t idx_gen;	/* the index on disk describes list G ... */
	off_t idx_off;		/* ... up to this offset */
	struct msgcache *mc;	/* msgcache.c, opened when first used */
	dev_t list_dev;		/* the UID list file we have applied */
	ino_t list_ino;
	off_t list_off;		/* bytes of it applied to msgs */
	dev_t peek_dev;		/* the file peek_off refers to */
	ino_t peek_ino;
	off_t peek_off;		/* bytes scanned for maxima only */
	uint64_t peek_modseq;	/* highest modseq in the file so far */
	uint32_t peek_uidnext;
	size_t nrecords;	/* lines in the file, for compaction */
	uint64_t histfloor;	/* header H */
	struct range *exp;	/* expunge history */
	size_t nexp, expcap;
	int expsorted;		/* exp is sorted and merged */
	uint32_t *recent;	/* sorted UIDs recent in this process */
	size_t nrecent, recentcap;
	uint32_t *claimed;	/* UIDs taken from new/ since recent_settle */
	size_t nclaimed, claimedcap;
	uint32_t recent_top;	/* UIDs up to this are settled */
	struct vsize *vs;	/* RFC822.SIZE cache */
	size_t nvs, vscap;
	uint64_t *bh;		/* base name hash << 32 | uid; 0 = empty */
	size_t bhmask, nbh;
	struct timespec kw_mtime;	/* dovecot-keywords as loaded */
	ino_t kw_ino;
	off_t kw_size;
	size_t namesdead;	/* garbage bytes in folder.names */
	size_t msgscap;
	unsigned long changes;	/* grows with every change to msgs */
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

/* msgcache.c */
void msgcache_flush(struct folder *f);
void msgcache_close(struct folder *f);
