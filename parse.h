/* parse.h: reading one IMAP command from the client, token by token.
 *
 * The parser reads a line at a time and fetches literals only when a
 * handler asks for the token that holds one, so a command that fails
 * early never makes the client send a synchronizing literal.  Every token
 * is copied into a per-command arena that is freed when the next command
 * begins. */
#ifndef PARSE_H
#define PARSE_H
#include <stddef.h>
#include <stdint.h>

#include "mime.h"

/* a sequence set, as written by the client; '*' is kept as 0 until the
 * set is resolved against a mailbox */
struct range {
	uint32_t lo, hi;
};
struct seqset {
	struct range *r;
	size_t n;
	int dollar;		/* "$": the saved search result (SEARCHRES) */
};

/* why the current command failed: the text after BAD or NO */
extern const char *perr;
/* a response code for a failed literal ("TOOBIG"), else NULL */
extern const char *perr_code;

/* start a new command: -1 end of input, -2 line too long, else 0 */
int p_begin(void);
/* throw away what is left of the current command; -1 when that cannot
 * be done (a non-synchronizing literal too large to read through, or a
 * line past the limit): then the connection must close */
int p_skip(void);
/* allocate in the command arena */
void *p_alloc(size_t);
char *p_strdup(const char *, size_t);

int p_peek(void);	/* next character, -1 at the end of the command */
int p_char(int c);	/* consume c if it comes next */
int p_sp(void);		/* exactly one space, else error */
int p_end(void);	/* the command is complete */
int p_keyword(const char *);	/* consume this word if it comes next */

char *p_tag(void);
char *p_atom(void);			/* command names, flags, keywords */
char *p_astring(size_t *len);		/* atom, quoted string or literal */
char *p_string(size_t *len);		/* quoted string or literal */
char *p_nstring(size_t *len, int *nil);
char *p_mailbox(void);			/* astring; "inbox" becomes INBOX */
char *p_listmailbox(void);		/* astring or list-chars (% * ]) */
char *p_flag(void);			/* \Flag or keyword */
int p_atomchar(int c);			/* an ATOM-CHAR */
int p_number(uint32_t *);
int p_number64(uint64_t *);
int p_seqset(struct seqset *);
int p_date(long long *days);	/* date, quoted or not: days since 1970 */
int p_datetime(long long *t);		/* "dd-Mon-yyyy hh:mm:ss +zzzz" */

/* One FETCH item, read once: its name and, for BODY[...], BODY.PEEK[...],
 * BINARY[...], BINARY.PEEK[...] and BINARY.SIZE[...], the section and
 * the partial range <from.count>.  The names of HEADER.FIELDS live in
 * the command arena. */
struct fetchitem {
	char *name;		/* as written: "FLAGS", "body.peek" */
	int section;		/* a [section] followed the name */
	struct section sec;
	int partial;
	uint64_t from, count;
};
int p_fetchatt(struct fetchitem *);
int p_fetchatt_text(const char *, struct fetchitem *);
/* a section spec on its own (a URL's ";SECTION="): the text between the
 * brackets, -1 when it is none (perr is left alone) */
int p_section(const char *spec, struct section *, int binary);

/* A literal that the handler streams itself (APPEND): at a literal,
 * return its size, after sending the continuation if it synchronizes;
 * -1 if the next token is not a literal or it is larger than max (perr
 * says which).  The caller then reads exactly size bytes with io_readn and
 * calls p_literal_done. */
long long p_literal(unsigned long long max);
int p_literal_done(void);

/* seqset helpers: resolve '*' to max and sort and merge the ranges */
void seq_resolve(struct seqset *, uint32_t max);
int seq_has(const struct seqset *, uint32_t);	/* after seq_resolve */

#endif
