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

#endif
