/* imapform.h: the one writer of the IMAP forms the message code's
 * structures take in a response: ENVELOPE, BODY and BODYSTRUCTURE, and
 * the section names FETCH echoes. */
#ifndef IMAPFORM_H
#define IMAPFORM_H
#include "mime.h"

struct buf;

/* the canonical text of a section, as between the brackets of
 * BODY[...] in a response: "1.2.HEADER.FIELDS (SUBJECT)" */
void form_section(struct buf *, const struct section *);

/* the parenthesised ENVELOPE of the message */
void form_envelope(struct buf *, struct mime *);
/* the parenthesised BODY (extended 0) or BODYSTRUCTURE of the message */
void form_body(struct buf *, struct mime *, int extended);

#endif
