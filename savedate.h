/* savedate.h: SAVEDATE (RFC 8514), when a message entered its mailbox */
#ifndef SAVEDATE_H
#define SAVEDATE_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct folder;

/* note that the messages uids of folder (IMAP name) arrived at t by COPY
 * or MOVE; -1 with errno on failure */
int savedate_add(const char *folder, uint32_t uidvalidity,
    const uint32_t *uids, size_t n, time_t t);
/* the save date of message i of an open folder; -1 when it is gone */
int savedate_get(struct folder *, size_t i, time_t *);

#endif
