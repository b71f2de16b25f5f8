/* progress.c: INPROGRESS (RFC 9585).  A search through a large mailbox,
 * a sort, a full-text index build, a copy or move of many messages or
 * the first scan of a big folder takes seconds on a small machine;
 * every INPROGRESS_MS the client hears how far it got, and its user sees
 * something move instead of a frozen window.  The response is flushed at
 * once, and costs nothing for commands that finish sooner. */
#include <string.h>
#include <time.h>

#include "config.h"
#include "io.h"
#include "maildir.h"
#include "progress.h"

static char cur_tag[64];	/* "": the tag is not one we can quote */
static long long next_ms;
static uint64_t base;		/* units of the command's earlier steps */
static uint64_t step_done, step_total;	/* the step as last called */

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
progress_start(const char *tag)
{
	size_t n = strlen(tag);

	/* a tag is an atom, so it needs no escape in a quoted string */
	if (n < sizeof(cur_tag) && !strpbrk(tag, "\"\\"))
		memcpy(cur_tag, tag, n + 1);
	else
		cur_tag[0] = '\0';
	next_ms = now_ms() + INPROGRESS_MS;
	base = step_done = step_total = 0;
	store_progress = NULL;
}

void
progress_store(void)
{
	store_progress = progress;
}

void
progress_end(void)
{
	cur_tag[0] = '\0';
	store_progress = NULL;
}

void
progress(uint64_t done, uint64_t total)
{
	long long now;

	/* a later step of the command (a SORT sorts what its search
	 * found) counts from 0 again: it goes on after the steps before,
	 * so that what the client hears as done only grows */
	if (done < step_done)
		base += step_total ? step_total : step_done;
	step_done = done;
	step_total = total;
	if (!cur_tag[0] || (now = now_ms()) < next_ms)
		return;
	next_ms = now + INPROGRESS_MS;
	if (total)
		io_printf("* OK [INPROGRESS (\"%s\" %llu %llu)] Working\r\n",
		    cur_tag, (unsigned long long)(base + done),
		    (unsigned long long)(base + total));
	else
		io_printf("* OK [INPROGRESS (\"%s\" %llu NIL)] Working\r\n",
		    cur_tag, (unsigned long long)(base + done));
	io_flush();
}
