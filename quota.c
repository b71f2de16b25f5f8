/* quota.c: QUOTA (RFC 9208).  The whole Maildir is one quota root, named
 * "", with two resources: STORAGE (the sizes of all messages, in units of
 * 1024 octets) and MESSAGE (their number).  The limits come from
 * config.h; where one is 0 the file system is the limit, and the client
 * sees the usage against what the disk (or its inodes) still holds.
 * APPEND and COPY that would pass a configured limit fail with
 * [OVERQUOTA]; MOVE stays within the root and never does.  Limits are not
 * set over IMAP: there is no QUOTASET. */
#include <sys/statvfs.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "io.h"
#include "maildir.h"
#include "parse.h"
#include "quota.h"
#include "util.h"
#include "session.h"

struct usage {
	uint64_t bytes, msgs;
};

/* what every folder holds */
static int
usage(struct usage *u)
{
	struct mboxinfo *l;
	struct mboxstatus st;
	size_t n, i;

	memset(u, 0, sizeof(*u));
	if (mbox_list(&l, &n) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (l[i].noselect || mbox_status(l[i].name, &st) < 0)
			continue;
		u->bytes += st.size;
		u->msgs += st.messages;
	}
	mbox_list_free(l, n);
	return 0;
}

int
quota_room(uint64_t bytes, uint64_t msgs)
{
	struct usage u;

	if (!QUOTA_STORAGE_KB && !QUOTA_MESSAGES)
		return 0;
	if (usage(&u) < 0)
		return -1;
	if ((QUOTA_STORAGE_KB &&
	    (u.bytes + bytes + 1023) / 1024 > QUOTA_STORAGE_KB) ||
	    (QUOTA_MESSAGES && u.msgs + msgs > QUOTA_MESSAGES)) {
		errno = EDQUOT;
		return -1;
	}
	return 0;
}

/* "* QUOTA "" (STORAGE used limit MESSAGE used limit)" */
static int
quota_line(void)
{
	struct statvfs fs;
	struct usage u;
	uint64_t kb, klimit, mlimit;

	if (usage(&u) < 0)
		return no_errno("QUOTA");
	kb = (u.bytes + 1023) / 1024;
	klimit = QUOTA_STORAGE_KB;
	mlimit = QUOTA_MESSAGES;
	if ((!klimit || !mlimit) && statvfs(sess.maildir, &fs) < 0)
		return no_errno("QUOTA");
	if (!klimit)
		klimit = kb + (uint64_t)fs.f_bavail * fs.f_frsize / 1024;
	if (!mlimit)
		mlimit = u.msgs + fs.f_favail;
	io_printf("* QUOTA \"\" (STORAGE %llu %llu MESSAGE %llu %llu)\r\n",
	    (unsigned long long)kb, (unsigned long long)klimit,
	    (unsigned long long)u.msgs, (unsigned long long)mlimit);
	return ST_OK;
}

int
cmd_getquota(const char *tag, int uid)
{
	char *root;
	int r;

	if (p_sp() < 0 || !(root = p_astring(NULL)) || p_end() < 0)
		return ST_BAD;
	if (*root)
		return no("NONEXISTENT", "No such quota root");
	if ((r = quota_line()) != ST_OK)
		return r;
	return ok(NULL, "GETQUOTA completed");
}

int
cmd_getquotaroot(const char *tag, int uid)
{
	char *name;
	int r;

	if (p_sp() < 0 || !(name = mailbox_arg()) || p_end() < 0)
		return ST_BAD;
	if (!mbox_exists(name))
		return no("NONEXISTENT", "No such mailbox");
	io_puts("* QUOTAROOT ");
	list_name(name);
	io_puts(" \"\"\r\n");
	if ((r = quota_line()) != ST_OK)
		return r;
	return ok(NULL, "GETQUOTAROOT completed");
}

int
cmd_setquota(const char *tag, int uid)
{
	return no("NOPERM", "Quota limits are set in config.h");
}
