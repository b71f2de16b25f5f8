/* startup.h: what every mode of imapd does first (startup.c): IMAP
 * (imapd.c), delivery (deliver.c), ManageSieve (managesieve.c) and the
 * set-up check (check.c) */
#ifndef STARTUP_H
#define STARTUP_H
#include <stddef.h>

/* a path from config.h, the environment variable env overriding it, a
 * leading "~/" meaning the home directory */
void config_path(char *out, size_t size, const char *env, const char *def);
/* the start-up every session shares (user, paths, peer, refusing root),
 * into sess */
void setup(void);
/* the peer is this machine */
int remote_is_local(void);
/* wait ms milliseconds, the client's output flushed first */
void pause_ms(long ms);

#endif
