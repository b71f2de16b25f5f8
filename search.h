/* search.h: a SEARCH program (search.c) parsed from the command line and
 * run over the messages of the view */
#ifndef SEARCH_H
#define SEARCH_H
#include <stddef.h>
#include <stdint.h>

struct folder;
struct search;
struct view;

struct search *search_parse(int uid_cmd, const char **code);
/* the keys alone, after a CHARSET given apart (SORT, THREAD) */
struct search *search_parse_keys(const char *charset, const char **code);
/* does message index i of the view match; -1 with errno on failure */
int search_match(struct search *, struct folder *, struct view *, size_t i);
/* a copy of a program that outlives its command (CONTEXT=SEARCH), and
 * its end */
struct search *search_keep(const struct search *);
void search_free(struct search *);
/* the program names MODSEQ: the reply gives the highest modseq found */
int search_uses_modseq(struct search *);
/* the highest sequence number and UID the program may name */
void search_limits(struct search *, uint32_t maxseq, uint32_t maxuid);

#endif
