/* quota.h: QUOTA (RFC 9208): one quota root, "", over the whole Maildir */
#ifndef QUOTA_H
#define QUOTA_H
#include <stdint.h>

/* room for bytes more octets in msgs more messages: 0, or -1 with errno
 * EDQUOT when a configured limit would be passed (the client hears
 * OVERQUOTA) or another errno when usage cannot be read.  Free when no
 * limit is configured. */
int quota_room(uint64_t bytes, uint64_t msgs);

#endif
