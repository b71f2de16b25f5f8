/* context.h: CONTEXT=SEARCH (RFC 5267), searches kept up to date */
#ifndef CONTEXT_H
#define CONTEXT_H
#include <stddef.h>
#include <stdint.h>

struct search;

/* keep search s (a copy the context then owns) of command tag (a UID
 * SEARCH when uid is set), whose UIDs, ascending, are uids[0..n); -1 when
 * too many are kept already (the client hears NOUPDATE, and s is freed) */
int context_add(const char *tag, int uid, struct search *s,
    const uint32_t *uids, size_t n);
/* tell the client how the kept results changed: what was expunged just
 * before the view tells of it (the numbers are still valid), the rest
 * after every sync of the view */
void context_expunged(void);
void context_update(void);
/* forget every kept search: the mailbox is closed */
void context_clear(void);

#endif
