/* context.h: CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267), searches and
 * sorts kept up to date */
#ifndef CONTEXT_H
#define CONTEXT_H
#include <stddef.h>
#include <stdint.h>

struct search;
struct sortprog;

/* keep search s of command tag (a UID SEARCH or UID SORT when uid is
 * set), and for a SORT its program sort (else NULL); both are copies the
 * context then owns.  Its UIDs are uids[0..n): ascending, or for a SORT
 * in its order.  -1 when too many are kept already (the client hears
 * NOUPDATE), -2 when an updating search has that tag (BAD); s and sort
 * are freed then */
int context_add(const char *tag, int uid, struct search *s,
    struct sortprog *sort, const uint32_t *uids, size_t n);

#endif
