/* session.h: the state of one IMAP session (session.c), the replies,
 * and the client's view of the selected mailbox: what the command
 * handlers (mailbox.c, view.c, fetch.c, ...) share below them.  Include
 * after maildir.h and util.h. */
#ifndef SESSION_H
#define SESSION_H
#include <netinet/in.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>

struct seqset;

enum state { S_NOAUTH = 1, S_AUTH = 2, S_SELECTED = 4, S_LOGOUT = 8 };

/* what a handler hands back to the one place that answers the client */
enum { ST_OK, ST_NO, ST_BAD, ST_DONE, ST_LOST };

/* The messages as this session sees them, a message's sequence number
 * its index plus one: the store's records (struct msg) with the UID, the
 * flags (FL_* incl. FL_RECENT, and VM_GONE), keywords and modseq last
 * told to the client; their name means nothing here.  At first they are
 * the folder's own records, shared (folder_share) and read only: what
 * changes one takes view_w first, which makes the view its own copy. */
#define VM_GONE	(1U << 30)	/* expunged by another process, not yet told */

struct view {
	struct msg *m;
	size_t n, cap;
	int shared;		/* m is the folder's: no change through it */
};

/* the session: everything that lives from one command to the next */
struct session {
	enum state state;
	int preauth;		/* -p: started authenticated (ssh tunnel) */
	int tls;		/* the stream is encrypted */
	int compress;		/* COMPRESS=DEFLATE is active */
	int condstore;		/* CONDSTORE in use: MODSEQ in FETCH responses */
	int qresync;		/* QRESYNC enabled: VANISHED replaces EXPUNGE */
	int utf8;		/* UTF8=ACCEPT or IMAP4rev2: UTF-8 mailbox names */
	int rev2;		/* IMAP4rev2 enabled: its rules, not RFC 3501's */
	int uidonly;		/* UIDONLY enabled: no sequence numbers at all */
	int secure;		/* LOGIN allowed: TLS, loopback or preauth */
	int login_fails;
	int bad_streak;
	const char *tag;	/* of the command running */
	char remote[INET6_ADDRSTRLEN + 8];
	char user[256];
	char maildir[PATH_MAX];
	char pwfile[PATH_MAX];
	char failfile[PATH_MAX];	/* failed logins across connections */
	struct folder f;	/* the selected folder */
	int readonly;
	struct view v;
	int kw_told;		/* keywords of f named by the last FLAGS sent */
	struct seqset *search_saved;	/* SEARCHRES "$", as UIDs */
	/* the reply under construction */
	const char *code;
	struct buf codebuf;	/* a response code built at run time */
	char text[256];
};

extern struct session sess;

/* session.c: the reply, and leaving */
int no(const char *code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int bad(const char *why);
int ok(const char *code, const char *text);
const char *set_code(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
int no_errno(const char *what);
void bye(const char *why) __attribute__((noreturn));
/* the tagged reply of status r (ST_OK, ST_NO, ST_BAD) */
void answer(const char *tag, int r);
/* the capability line for the session's state */
void capability_line(struct buf *);

/* session.c: mailbox names as the client and the store spell them */
char *mailbox_arg(void);
const char *shown_name(const char *name);
void list_name(const char *);
/* STATUS items (RFC 9051 6.3.11, RFC 8438, RFC 8474, RFC 7889) */
enum {
	SI_MESSAGES = 1 << 0, SI_RECENT = 1 << 1, SI_UIDNEXT = 1 << 2,
	SI_UIDVALIDITY = 1 << 3, SI_UNSEEN = 1 << 4, SI_HIGHESTMODSEQ = 1 << 5,
	SI_SIZE = 1 << 6, SI_DELETED = 1 << 7, SI_MAILBOXID = 1 << 8,
	SI_APPENDLIMIT = 1 << 9, SI_DELETEDSTORAGE = 1 << 10,
};
struct mboxstatus;
/* the untagged STATUS response of mailbox name with those items: for
 * STATUS, LIST-STATUS and NOTIFY alike */
void status_line(const char *name, const struct mboxstatus *, int items);
const char *special_use_of(const char *name);

/* session.c: flags */
void flag_list(struct buf *, uint32_t flags, uint32_t kw);
long sysflag(const char *name);
int parse_flags(int bare, char ***names, size_t *n);
void flags_responses(void);
void condstore_on(void);

/* session.c: the messages of the selected mailbox as the client sees
 * them */
void view_load(void);
/* the client added uids to mailbox itself; were they its own doing */
void view_mark_own(const char *mailbox, const uint32_t *uids, size_t n);
int view_is_own(uint32_t uid);
/* message i of the view, to be changed */
struct msg *view_w(size_t i);
void view_sync(int expunge);
void fetch_open(size_t i);
void print_flags_fetch(size_t i);
long store_index(size_t i);
int set_indexes(struct seqset *, int uid, size_t **out, size_t *n);
/* the same, only the messages changed after modseq since (CHANGEDSINCE) */
int set_indexes_since(struct seqset *, int uid, uint64_t since,
    size_t **out, size_t *n);
void uid_set(struct buf *, const uint32_t *, size_t);
/* index of the first message of the view with a UID >= uid */
size_t view_lower(uint32_t uid);
void vanished_earlier(struct seqset *known, uint64_t since);
void search_save(struct seqset *);
void close_folder(void);

/* what a command handler keeps in step with the view (CONTEXT=SEARCH,
 * NOTIFY), told from below: before expunges are reported (sequence
 * numbers still valid), after every sync of the view, and when the
 * mailbox closes; whether flag changes are shown, and which messages
 * arrived (those above the UID top).  Any of them may be NULL. */
struct view_watch {
	void (*expunging)(void);
	void (*synced)(void);
	void (*closed)(void);
	int (*shows_flags)(void);
	void (*arrived)(uint32_t top);
};
void view_watch(const struct view_watch *);	/* once per watcher */

/* the commands */
int cmd_append(const char *, int);
int cmd_cancelupdate(const char *, int);
int cmd_check(const char *, int);
int cmd_close(const char *, int);
int cmd_copy(const char *, int);
int cmd_create(const char *, int);
int cmd_delete(const char *, int);
int cmd_examine(const char *, int);
int cmd_expunge(const char *, int);
int cmd_fetch(const char *, int);
/* fetch.c: the FETCH items kept as text (MessageNew's list) for view
 * indexes vi[0..nv); nv 0 only checks them.  ST_OK, else ST_BAD with
 * perr set (an unknown item, or one that would set \Seen) */
int fetch_items(char *const *items, size_t n, const size_t *vi, size_t nv);
int cmd_getquota(const char *, int);
int cmd_getquotaroot(const char *, int);
int cmd_list(const char *, int);
int cmd_lsub(const char *, int);
int cmd_move(const char *, int);
int cmd_rename(const char *, int);
int cmd_replace(const char *, int);
int cmd_search(const char *, int);
int cmd_select(const char *, int);
int cmd_setquota(const char *, int);
int cmd_sort(const char *, int);
int cmd_status(const char *, int);
int cmd_store(const char *, int);
int cmd_subscribe(const char *, int);
int cmd_thread(const char *, int);
int cmd_unselect(const char *, int);
int cmd_unsubscribe(const char *, int);

#endif
