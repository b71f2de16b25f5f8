/* imapd.h: what the session (imapd.c), SEARCH (search.c) and login
 * (auth.c) share */
#ifndef IMAPD_H
#define IMAPD_H
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

/* imapd.c: a configured path: the environment variable env when set, else
 * def with a leading "~/" meaning the home directory */
void config_path(char *out, size_t size, const char *env, const char *def);

/* check.c: imapd -t, the configuration shown and checked; exit status */
int check_setup(void);

/* imapd.c: wait ms milliseconds, the client's output flushed first */
void pause_ms(long ms);

/* auth.c */
/* 1 when user may log in as want with pass, 0 when not, -1 when the check
 * could not be made (logged); label: the device line that matched */
int auth_check(const char *want, const char *user, const char *pass,
    const char *pwfile, char *label, size_t lsize);
int auth_hash(void);	/* imapd -H: read a password, print its hash */
/* logins are decided by a program of their own (PAM, checkpassword) */
int auth_spawns(void);
/* imapd -H label: a new random password for a device, appended */
int auth_device(const char *label, const char *pwfile);

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

/* imapd.c: a path from config.h, env overriding it, "~/" the home;
 * the start-up every session shares (user, paths, peer), and whether
 * the peer is this machine */
void config_path(char *out, size_t size, const char *env, const char *def);
void setup(void);
int remote_is_local(void);
/* deliver.c: imapd -d, the local delivery agent; managesieve.c: imapd -S */
int deliver_main(int argc, char *argv[]);
int managesieve_main(int argc, char *argv[]);

#endif
