/* url.h: IMAP URLs (RFC 5092) that name a message or a part of one in
 * this user's own mailboxes, as CATENATE (RFC 4469) takes them */
#ifndef URL_H
#define URL_H
#include <stdint.h>

struct imapurl {
	const char *mailbox;	/* NULL: the selected mailbox */
	uint32_t uidvalidity;	/* 0: not given */
	uint32_t uid;
	const char *section;	/* "" for the whole message */
	int partial;		/* ;PARTIAL=offset[.length] */
	uint64_t offset, length;	/* length 0: to the end */
};

/* parse s, absolute ("imap://user@host/INBOX;UIDVALIDITY=1/;UID=2/
 * ;SECTION=1.2/;PARTIAL=0.100") or relative to the selected mailbox
 * (";UID=2", "/INBOX/;UID=2"), for user; strings go to the command's
 * arena.  -1 when it is not such a URL. */
int url_parse(const char *s, const char *user, struct imapurl *);

#endif
