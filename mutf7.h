/* mutf7.h: mailbox names between modified UTF-7 (RFC 3501 5.1.3, as
 * stored on disk and spoken to IMAP4rev1 clients) and UTF-8 (IMAP4rev2
 * and UTF8=ACCEPT) */
#ifndef MUTF7_H
#define MUTF7_H
struct buf;

/* append the UTF-8 form of a modified UTF-7 name; -1 if it is not valid */
int mutf7_to_utf8(struct buf *, const char *);
/* append the modified UTF-7 form of a UTF-8 name; -1 if not valid UTF-8 */
int utf8_to_mutf7(struct buf *, const char *);

#endif
