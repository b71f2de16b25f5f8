/* maildir.h: the message store, Maildir++ on disk.
 *
 * Knows nothing of IMAP syntax: it speaks of folders by their IMAP name
 * ("INBOX", "Archive.2024", with '.' as the hierarchy separator and names in
 * modified UTF-7 exactly as Dovecot and Courier keep them on disk), of
 * messages by UID, and of flags as bits.  Every path lives here. */
#ifndef MAILDIR_H
#define MAILDIR_H
#include <sys/types.h>
#include <stdint.h>
#include <stddef.h>
#include <time.h>

#define STORE_SEP '.'	/* hierarchy separator, shown by LIST and NAMESPACE */
#define KW_MAX 26	/* keywords a folder can hold: letters a..z in names */

/* system flags, kept as Maildir info letters (":2,DFPRST") */
enum {
	FL_DRAFT = 1 << 0,	/* D  \Draft */
	FL_FLAGGED = 1 << 1,	/* F  \Flagged */
	FL_PASSED = 1 << 2,	/* P  no IMAP system flag: shown as $Forwarded */
	FL_ANSWERED = 1 << 3,	/* R  \Answered */
	FL_SEEN = 1 << 4,	/* S  \Seen */
	FL_DELETED = 1 << 5,	/* T  \Deleted */
	FL_RECENT = 1 << 6,	/* never stored: this process took it from new/ */
};

struct msg {
	uint32_t uid;
	uint32_t flags;		/* FL_* */
	uint32_t kw;		/* bit i set: keyword folder.kw[i] */
	uint32_t name;		/* offset in folder.names: "cur/..." or "new/..." */
	uint64_t modseq;
};

struct store_state;		/* private to maildir.c */

struct folder {
	char *name;		/* IMAP name as opened */
	char *path;		/* its directory */
	int rw;			/* opened read-write: claims new/ (\Recent) */
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	struct msg *msgs;	/* sorted by uid, ascending */
	size_t nmsgs;
	char *names;		/* file names, NUL-separated */
	size_t nameslen, namescap;
	char *kw[KW_MAX];	/* keyword names, index = bit in msg.kw */
	int nkw;
	struct store_state *st;
};

struct mboxinfo {
	char *name;		/* IMAP name */
	int noselect;		/* only implied by a child: no directory of its own */
};

struct mboxstatus {
	uint32_t messages, recent, unseen, deleted, uidnext, uidvalidity;
	uint64_t highestmodseq, size;	/* size: sum of RFC822.SIZE */
	uint64_t deleted_size;		/* ... of the \\Deleted ones */
	char mailboxid[32];		/* OBJECTID */
};

/* The root Maildir; created (with cur/ new/ tmp/) when missing. -1 on
 * failure with errno set. */
int store_init(const char *root);

/* Folder names.  All return -1 with errno set on failure: ENOENT (no such
 * folder), EEXIST, EINVAL (name not allowed), EPERM (INBOX where not
 * allowed), ENOTEMPTY (\Noselect name with children cannot be deleted). */
int mbox_exists(const char *name);
int mbox_list(struct mboxinfo **list, size_t *n);	/* sorted, INBOX first */
void mbox_list_free(struct mboxinfo *, size_t);
int mbox_create(const char *name);	/* parents implied, as Maildir++ does */
int mbox_delete(const char *name);
int mbox_rename(const char *from, const char *to);	/* INBOX: moves its mail */
int mbox_status(const char *name, struct mboxstatus *);
/* the same without SIZE, which may have to read every message without
 * ",W=" in its name: for STATUS and LIST-STATUS that do not ask for it */
int mbox_status_nosize(const char *name, struct mboxstatus *);
/* special-use attributes given by CREATE ... (USE (\Sent)), kept in the
 * root's imapd-special-use; NULL when the folder has none */
const char *mbox_special_use(const char *name);
int mbox_set_special_use(const char *name, const char *use);

/* subscriptions: Dovecot's "subscriptions" or Courier's
 * "courierimapsubscribed", whichever the Maildir already has */
int subs_list(char ***names, size_t *n);
void subs_free(char **, size_t);
int subs_set(const char *name, int subscribe);

/* Open a folder: load the UID list (adopting dovecot-uidlist or
 * courierimapuiddb the first time) and scan new/ and cur/ (unless the
 * list vouches for them).  With rw set, files in new/ are moved to cur/
 * and carry FL_RECENT in this process.  The folder is followed (inotify)
 * while open; one still open at exit() is stamped for the next process
 * then, so the struct must outlive it (or be closed first). */
int folder_open(struct folder *, const char *name, int rw);
void folder_close(struct folder *);
/* Bring msgs up to date with the disk: new files get UIDs, vanished files
 * drop out, flag renames by others are seen.  Cheap when nothing changed
 * (inotify, else directory mtimes), and after this or another imapd's own
 * changes.  1: something changed, 0: nothing, -1: error.
 * msgs and names may move: keep indexes and UIDs across it, not pointers.
 * Only this changes which messages msgs holds; folder_setflags updates
 * message i in place and folder_expunge leaves it for the next sync.
 * uidvalidity changes only if someone removed the UID list by hand. */
int folder_sync(struct folder *);
/* a number that grows whenever msgs changes other than by this process's
 * folder_setflags: equal numbers, nothing to tell a client */
unsigned long folder_changes(struct folder *);
/* the UID of the first message without \Seen (0: none) when the store
 * knows it without looking at every message, else -1 */
int folder_first_unseen(struct folder *, uint32_t *uid);
/* the UIDs this process has found \Recent, sorted (some may be gone):
 * no other message is \Recent */
const uint32_t *folder_recent(struct folder *, size_t *n);
/* descriptor that becomes readable when the folder may have changed
 * (inotify), or -1 when only polling can tell; the lookup of messages by
 * file name the next sync needs is made ready here */
int folder_watchfd(struct folder *);
/* the watch told of names the last sync left for the next: look again
 * soon, as the watch may stay quiet */
int folder_unsettled(struct folder *);
/* index in msgs of uid, or -1 */
long folder_find(struct folder *, uint32_t uid);
/* the same, looked for at index near first */
long folder_find_near(struct folder *, size_t near, uint32_t uid);
/* msgs as they are now, for a reader that keeps them as its own (the
 * session's view) instead of copying them: they stay as they are, and
 * must not be written, until folder_unshare or folder_close; the store
 * changes a copy meanwhile, made when it first changes something.  NULL
 * when they are shared already or there are none. */
struct msg *folder_share(struct folder *);
void folder_unshare(struct folder *);

/* Map message i read-only.  A file renamed meanwhile by another process is
 * found again; -1 with errno ENOENT when it is gone (expunged). */
struct msgmap {
	const char *p;
	size_t len;
	time_t internaldate;	/* file mtime */
};
int msg_map(struct folder *, size_t i, struct msgmap *);
void msg_unmap(struct msgmap *);
/* the first max bytes (or fewer: the whole message) of message i into
 * buf, without mapping it: enough for its header in most cases, at a
 * fraction of the cost.  Bytes read, or -1 (ENOENT: gone). */
ssize_t msg_head(struct folder *, size_t i, char *buf, size_t max);
/* internal date and RFC822.SIZE (CRLF line ends) without mapping when the
 * file name or the index knows them; -1 when the message is gone */
int msg_info(struct folder *, size_t i, time_t *date, uint64_t *size);
/* the same for message i mapped in mm: from that look at the file */
int msg_info_mapped(struct folder *, size_t i, const struct msgmap *,
    time_t *date, uint64_t *size);

/* OBJECTID (RFC 8474): MAILBOXID of a folder, EMAILID of message i;
 * -1 when it is gone */
int folder_id(struct folder *, char *buf, size_t size);
int msg_id(struct folder *, size_t i, char *buf, size_t size);

/* when the file of message i was made (its birth time; the mtime where
 * the file system keeps none): when it entered the folder, unless it came
 * as a hard link (COPY, MOVE); -1 when it is gone */
int msg_born(struct folder *, size_t i, time_t *);
/* the directory of a folder (PATH_MAX bytes), for records kept beside it */
int mbox_dir(const char *name, char *buf);

/* keyword index for name, adding it to the folder when create is set;
 * -1 when unknown (or the folder already holds KW_MAX keywords) */
int folder_keyword(struct folder *, const char *name, int create);

/* Set flags and keywords of message i (rename in cur/); bumps its modseq.
 * -1 with errno ENOENT when the message is gone. */
int folder_setflags(struct folder *, size_t i, uint32_t flags, uint32_t kw);
/* Remove message i (unlink) and remember its UID as expunged; the next
 * folder_sync drops it from msgs. */
int folder_expunge(struct folder *, size_t i);

/* told now and then how far a long store operation got (a copy or move,
 * a folder's first scan): done of total units; NULL: nobody asks */
extern void (*store_progress)(uint64_t done, uint64_t total);

/* Copy n messages (indexes idx) into folder dst, keeping flags, keywords and
 * internal date (hard links where possible).  All or nothing.  The new UIDs
 * land in uids[0..n-1] in order; *uidvalidity is dst's. */
int folder_copy(struct folder *, const size_t *idx, size_t n,
    const char *dst, uint32_t *uidvalidity, uint32_t *uids);
/* the same, the files renamed rather than linked: each message is in
 * exactly one of the two folders at every moment; the caller expunges
 * the sources */
int folder_move(struct folder *, const size_t *idx, size_t n,
    const char *dst, uint32_t *uidvalidity, uint32_t *uids);

/* Deliver one message into a folder: tmp/, fsync, rename.  kw holds
 * keyword names.  ENOENT: no such folder (the client hears TRYCREATE). */
struct append;
struct append *append_begin(const char *folder);
int append_write(struct append *, const void *, size_t);
int append_commit(struct append *, uint32_t flags, char *const *kw,
    size_t nkw, time_t date, uint32_t *uidvalidity, uint32_t *uid);
void append_abort(struct append *);

/* UIDs expunged after modseq since, for QRESYNC VANISHED; -1 when the
 * history does not reach that far back (report every unknown UID) */
int folder_vanished(struct folder *, uint64_t since, uint32_t **uids,
    size_t *n);

/* The message cache (msgcache.c): what is derived from the bytes of
 * message i (ENVELOPE, BODYSTRUCTURE, header sections, ...), kept under
 * a short key for later sessions.  get: the value or NULL (len set);
 * it stays valid until the next store call.  put: remembered for message
 * i and written with its other items once another message is put or
 * the folder closes. */
const char *msgcache_get(struct folder *, size_t i, const char *key,
    size_t *len);
void msgcache_put(struct folder *, size_t i, const char *key,
    const void *val, size_t len);
/* keys of the items SORT keeps: the sent date (RFC 5256 2.2, an int64_t)
 * and the base subject (2.1, case-mapped, without its NUL) */
#define MC_SENTDATE	"Dt"
#define MC_BASESUBJECT	"Sj"
/* each cached item of message i to fn, until fn returns nonzero: that */
int msgcache_each(struct folder *, size_t i, int (*fn)(const char *key,
    size_t klen, const char *val, size_t len, void *arg), void *arg);

#endif
