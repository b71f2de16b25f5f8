/* imapd.h: what the session (imapd.c), SEARCH (search.c) and login
 * (auth.c) share */
#include <stdint.h>
#include <stddef.h>
#include <time.h>

struct folder;
struct seqset;

/* one message as this session sees it; its sequence number is its index
 * in the view plus one */
struct vmsg {
	uint32_t uid;
	uint32_t flags;		/* FL_* incl. FL_RECENT */
	uint32_t kw;
	uint32_t gone;		/* expunged by another process, not yet told */
	uint64_t modseq;	/* as last told to the client */
};

struct view {
	struct vmsg *m;
	size_t n, cap;
};

/* auth.c */
int auth_check(const char *user, const char *pass, const char *pwfile);
int auth_hash(void);	/* imapd -H: read a password, print its hash */

/* search.c: a SEARCH program parsed from the command line and run over
 * the messages of the view */
struct search;
struct search *search_parse(int uid_cmd, const char **code);
/* the keys alone, after a CHARSET given apart (SORT, THREAD) */
struct search *search_parse_keys(const char *charset, const char **code);
/* does message index i of the view match; -1 with errno on failure */
int search_match(struct search *, struct folder *, struct view *, size_t i);
/* UIDONLY: a program that names sequence numbers fails (UIDREQUIRED) */
extern int search_uidonly;
/* the saved result of the last SEARCH (SEARCHRES "$"), as UIDs */
extern struct seqset *search_saved;
/* a copy of a program that outlives its command (CONTEXT=SEARCH), and
 * its end */
struct search *search_keep(const struct search *);
void search_free(struct search *);
/* the program names MODSEQ: the reply gives the highest modseq found */
int search_uses_modseq(struct search *);
/* the highest sequence number and UID the program may name */
void search_limits(struct search *, uint32_t maxseq, uint32_t maxuid);
