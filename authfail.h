/* authfail.h: failed logins remembered across connections (authfail.c) */
#ifndef AUTHFAIL_H
#define AUTHFAIL_H

/* Count a login attempt from addr as a failure until authfail_clear; the
 * milliseconds to wait before checking the password, or -1 (logged) when
 * the record cannot be used and the per-connection delay must do. */
long authfail_begin(const char *path, const char *addr);
/* a success: forget the failures of addr */
void authfail_clear(const char *path, const char *addr);

#endif
