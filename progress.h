/* progress.h: INPROGRESS (RFC 9585), "* OK [INPROGRESS ("tag" done
 * total)]" while a long command works, so a client can show progress.
 * Any part of a command may call progress(); the first report waits
 * INPROGRESS_MS from the command's start, reports come no closer
 * together than that, and the share done never goes back. */
#ifndef PROGRESS_H
#define PROGRESS_H
#include <stdint.h>

/* a command with this tag starts, and ends (the command loop calls
 * them); the store reports through progress() while one runs */
void progress_start(const char *tag);
void progress_end(void);
/* done of total units of work (total 0: unknown, sent as NIL) */
void progress(uint64_t done, uint64_t total);

#endif
