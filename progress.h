/* progress.h: INPROGRESS (RFC 9585), "* OK [INPROGRESS ("tag" done
 * total)]" while a long command works, so a client can show progress.
 * Any part of a command may call progress(); the first report waits
 * INPROGRESS_MS from the command's start, and reports come no closer
 * together than that. */
#ifndef PROGRESS_H
#define PROGRESS_H
#include <stdint.h>

/* a command with this tag starts (the command loop calls it) */
void progress_start(const char *tag);
/* done of total units of work (total 0: unknown, sent as NIL) */
void progress(uint64_t done, uint64_t total);

#endif
