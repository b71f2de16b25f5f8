/* sandbox.h: confining the process (sandbox.c) */
#ifndef SANDBOX_H
#define SANDBOX_H

enum {
	SANDBOX_LOGIN,		/* before the first command: login files too */
	SANDBOX_MAILDIR,	/* logged in: the Maildir alone */
};

/* the files the stages allow, set once at start-up */
void sandbox_paths(const char *maildir, const char *pwfile,
    const char *failfile);
/* enter a stage; resource limits always, the rest as configured and as
 * far as the system supports it (logged when it does not) */
void sandbox_enter(int stage);

#endif
