/* progress.h: INPROGRESS (RFC 9585), "* OK [INPROGRESS ("tag" done
 * total)]" while a long command works, so a client can show progress.
 * Any part of a command may call progress(); the first report waits
 * INPROGRESS_MS from the command's start, and reports come no closer
 * together than that.  A command may work in steps, each counting from
 * 0: the client hears them one after the other, done always growing. */
#ifndef PROGRESS_H
#define PROGRESS_H
#include <stdint.h>

/* a command with this tag starts, and ends (the command loop calls
 * them) */
void progress_start(const char *tag);
void progress_end(void);
/* the store's count of messages done is this command's progress (a
 * COPY, a SELECT), not that of a command that opens many folders */
void progress_store(void);
/* done of total units of work (total 0: unknown, sent as NIL) */
void progress(uint64_t done, uint64_t total);

#endif
