/* notify.h: NOTIFY (RFC 5465), events pushed to a client that waits
 * between commands: STATUS of other folders as mail comes and goes, LIST
 * as folders are created, renamed, deleted, subscribed; the selected
 * mailbox's EXISTS, EXPUNGE and FETCH without a command. */
#ifndef NOTIFY_H
#define NOTIFY_H
#include <stddef.h>
#include <stdint.h>

int cmd_notify(const char *tag, int uid);

/* the command loop, before reading the next command: while NOTIFY is
 * set, push events until the client sends something */
void notify_wait(void);
/* after command name: its own folder and subscription changes are not
 * told back to it (RFC 5465 5) */
void notify_quiet(const char *name);

/* IDLE: the descriptor that wakes for watched folders (-1: none), what
 * to do then, and whether the selected mailbox's changes may be pushed
 * (not when NOTIFY left it out) */
int notify_fd(void);
void notify_run(void);
int notify_selected_push(void);

/* SEARCH RETURN (UPDATE (items)) of RFC 5465 7: the items parsed for
 * the search of the command running (view.c), and their FETCH before
 * an ADDTO tells of new messages (context.c) */
int notify_update_items(void);
void notify_update_fetch(const char *tag, const uint32_t *uids, size_t n);

#endif
