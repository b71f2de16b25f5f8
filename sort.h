/* sort.h: SORT (RFC 5256, RFC 5957 DISPLAY) and THREAD (RFC 5256
 * ORDEREDSUBJECT and REFERENCES) over the messages of a view */
#ifndef SORT_H
#define SORT_H
#include <stddef.h>

struct buf;
struct folder;
struct view;

enum { THREAD_ORDEREDSUBJECT, THREAD_REFERENCES };

struct sortprog;
/* parse a sort criteria list "(REVERSE DATE SUBJECT)" with the parse.h
 * p_* functions (the parser is positioned at the '('); NULL with perr set
 * on a syntax error.  The program lives in the command arena. */
struct sortprog *sort_parse(void);
/* sort the view indexes idx[0..n) in place by the program; ties broken by
 * sequence number (RFC 5256) */
void sort_run(struct sortprog *, struct folder *, struct view *, size_t *idx,
    size_t n);
/* a copy of a program that outlives its command (free() ends it), and
 * the order of view indexes a and b by it: < 0, 0 or > 0 */
struct sortprog *sort_keep(const struct sortprog *);
int sort_cmp(struct sortprog *, struct folder *, struct view *, size_t a,
    size_t b);
/* "REFERENCES" or "ORDEREDSUBJECT" -> an algorithm number >= 0, -1
 * unknown */
int thread_alg(const char *name);
/* append the thread list "(1 2)(3 (4)(5))" for the messages idx[0..n)
 * (ascending view indexes) to out, numbers as UIDs when uid is set else
 * sequence numbers (view index + 1) */
void thread_run(int alg, struct folder *, struct view *, const size_t *idx,
    size_t n, int uid, struct buf *out);

#endif
