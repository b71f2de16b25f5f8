/* sieve.h: Sieve mail filters (RFC 5228 and the extensions of sieve.c):
 * a script is parsed into a tree (sieve.c), then run against one message
 * to give the list of actions to take (sievexec.c).  Neither touches the
 * store or sends mail: deliver.c carries the actions out. */
#ifndef SIEVE_H
#define SIEVE_H
#include <stddef.h>
#include <time.h>

/* an argument: a number, a tag (":is", kept without the colon, lower
 * case) or a string list (a lone string is a list of one) */
enum { SA_NUM, SA_TAG, SA_STR };

struct sv_arg {
	int type;
	int line, col;
	unsigned long long num;
	char *tag;
	char **s;
	size_t ns;
	int list;		/* written as [...] */
};

/* a command or a test; identifiers are kept in lower case */
struct sv_node {
	char *name;
	int line, col;
	struct sv_arg *args;
	size_t nargs;
	size_t npos;		/* positional arguments, at the end of args */
	struct sv_node *tests;	/* a test, or the members of a test list */
	size_t ntests;
	struct sv_node *block;	/* the commands of { ... } */
	size_t nblock;
	int hasblock;
};

struct sv_script {
	struct sv_node *cmds;
	size_t ncmds;
	unsigned ext;		/* SX_* required */
};

/* extensions, by the name "require" gives them */
enum {
	SX_FILEINTO = 1 << 0, SX_ENVELOPE = 1 << 1, SX_ENCODED = 1 << 2,
	SX_IMAP4FLAGS = 1 << 3, SX_COPY = 1 << 4, SX_MAILBOX = 1 << 5,
	SX_BODY = 1 << 6, SX_VARIABLES = 1 << 7, SX_RELATIONAL = 1 << 8,
	SX_SUBADDRESS = 1 << 9, SX_DATE = 1 << 10, SX_INDEX = 1 << 11,
	SX_REGEX = 1 << 12, SX_VACATION = 1 << 13, SX_REJECT = 1 << 14,
	SX_EREJECT = 1 << 15, SX_INCLUDE = 1 << 16, SX_NUMERIC = 1 << 17,
};

/* the names of the extensions this implementation has, space separated
 * (ManageSieve's SIEVE capability) */
extern const char sieve_extensions[];

/* Parse a script of n bytes.  NULL on error, with "line L, column C: what
 * was expected" in err. */
struct sv_script *sieve_parse(const char *p, size_t n, char *err,
    size_t errsz);
void sieve_free(struct sv_script *);

/* --- running a script -------------------------------------------------- */

enum { SV_KEEP, SV_FILEINTO, SV_REDIRECT, SV_DISCARD, SV_REJECT,
    SV_EREJECT, SV_VACATION };

struct sv_action {
	int type;
	char *arg;		/* folder, address or reason */
	char **flags;		/* imap4flags for keep and fileinto */
	size_t nflags;
	int copy, create;
	/* vacation */
	char *subject, *from, *handle;
	char **addresses;	/* :addresses, the user's other addresses */
	size_t naddresses;
	long long seconds;
	int mime;
	int line;
};

/* the message and its envelope as the script sees them */
struct sv_msg {
	const char *p;
	size_t n;
	const char *from;	/* envelope sender, "" for the null sender */
	const char *to;		/* envelope recipient */
	time_t now;
	/* mailboxexists: 1 when the folder (UTF-8 name) exists */
	int (*mbox_exists)(const char *name);
	/* the script being run, named as the loader names the scripts it
	 * finds (an include of it is a loop); NULL when unknown */
	const char *script_id;
};

/* finds the script "include" names: personal set for :personal, else
 * :global; a malloc'd script text and its length, or NULL.  It may
 * replace id (idsz bytes, "personal:NAME" or "global:NAME" on entry)
 * with a name that tells two scripts apart, such as the file's real
 * path: :once and the loop check compare these. */
typedef char *(*sv_loader)(const char *name, int personal, size_t *len,
    char *id, size_t idsz, void *arg);

struct sv_result {
	struct sv_action *a;
	size_t n;
	int implicit_keep;
	char **keepflags;	/* flags for the implicit keep */
	size_t nkeepflags;
	char err[256];		/* a run-time error: line and why */
};

/* Run script s against m.  0 with the actions in r, or -1 with r->err
 * set (the caller then keeps the message, as RFC 5228 2.10.6 asks). */
int sieve_run(struct sv_script *s, const struct sv_msg *m, sv_loader,
    void *loadarg, struct sv_result *r);
void sieve_result_free(struct sv_result *);

#endif
