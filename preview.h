/* preview.h: PREVIEW (RFC 8970), the start of a message's text for the
 * message list */
#ifndef PREVIEW_H
#define PREVIEW_H
#include <stddef.h>

struct buf;
struct mime;

#define PREVIEW_CHARS 200	/* characters at most, as RFC 8970 allows */
/* its key in the message cache; a new one when the text made changes */
#define PREVIEW_CACHE_KEY "P1"

/* the preview of a message as UTF-8 text into out: empty when the
 * message has no text.  It looks at the part tree the other items of
 * the command share. */
void preview_make(struct buf *out, struct mime *);

#endif
