/* imapform.c: IMAP syntax for message structures: the section names
 * FETCH echoes, ENVELOPE, and BODY/BODYSTRUCTURE.  The message code
 * (mime.h) hands out parts, addresses and header values; this file alone
 * turns them into parenthesised lists, strings and NILs. */
#include <string.h>

#include "imapform.h"
#include "parse.h"
#include "util.h"

/* --- section names ---------------------------------------------------- */

/* a header field name: an upper-case atom when it can be one, else a
 * string as it was given */
static void
field_name(struct buf *b, const char *f)
{
	const char *c;

	for (c = f; *c && p_atomchar((unsigned char)*c); c++)
		;
	if (*c || !*f) {
		buf_addstr(b, f, strlen(f));
		return;
	}
	for (c = f; *c; c++)
		buf_addc(b, *c >= 'a' && *c <= 'z' ? *c - 32 : *c);
}

void
form_section(struct buf *b, const struct section *s)
{
	static const char *const names[] = {
		"", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT",
		"MIME"
	};
	int i;

	for (i = 0; i < s->npart; i++)
		buf_printf(b, "%s%u", i ? "." : "", s->part[i]);
	if (s->text != SEC_ALL)
		buf_printf(b, "%s%s", s->npart ? "." : "", names[s->text]);
	if (s->text != SEC_FIELDS && s->text != SEC_FIELDS_NOT)
		return;
	buf_adds(b, " (");
	for (i = 0; i < s->nfields; i++) {
		if (i)
			buf_addc(b, ' ');
		field_name(b, s->fields[i]);
	}
	buf_addc(b, ')');
}
