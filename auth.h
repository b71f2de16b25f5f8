/* auth.h: logins (auth.c): the password file, PAM, checkpassword */
#ifndef AUTH_H
#define AUTH_H
#include <stddef.h>

/* 1 when user may log in as want with pass, 0 when not, -1 when the check
 * could not be made (logged); label: the device line that matched */
int auth_check(const char *want, const char *user, const char *pass,
    const char *pwfile, char *label, size_t lsize);
int auth_hash(void);	/* imapd -H: read a password, print its hash */
/* logins are decided by a program of their own (PAM, checkpassword) */
int auth_spawns(void);
/* imapd -H label: a new random password for a device, appended */
int auth_device(const char *label, const char *pwfile);

#endif
