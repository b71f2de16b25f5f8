/* libFuzzer target for the message code (mime*.c) and its IMAP writer:
 * every entry point on one input, and the invariants the FETCH code
 * relies on: a section writes exactly the number of octets mime_section
 * announced, in any window, and the same from the message's one parse
 * as from a fresh one. */
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

#include "../binary.h"
#include "../imapform.h"
#include "../mime.h"
#include "../preview.h"
#include "../util.h"

struct count {
	uint64_t n;
	int nul;	/* a NUL was written */
};

static void
count_emit(void *arg, const char *p, size_t n)
{
	struct count *c = arg;

	c->n += n;
	if (memchr(p, '\0', n))
		c->nul = 1;
}

static void
check_section(struct mime *m, const char *p, size_t n,
    const struct section *s, int binary)
{
	struct sectiondata *sd, *fresh;
	struct count c = { 0 };
	struct buf name = { 0 };
	uint64_t size, size2;

	form_section(&name, s);
	sd = mime_section(m, s, binary, &size);
	fresh = section_open(p, n, s, binary, &size2);
	if (!sd != !fresh || (sd && size != size2))
		abort();
	if (sd) {
		section_write(sd, 0, UINT64_MAX, count_emit, &c);
		if (c.n != size || (!binary && c.nul))
			abort();
		memset(&c, 0, sizeof(c));
		section_write(sd, size / 3, size / 2 + 1, count_emit, &c);
		if (c.n != MIN(size / 2 + 1, size - size / 3))
			abort();
		memset(&c, 0, sizeof(c));
		section_write(sd, size + 5, 10, count_emit, &c);
		if (c.n != 0)
			abort();
		section_close(sd);
	}
	section_close(fresh);
	buf_free(&name);
}

/* an APPENDed literal8 made storable: once is enough, a second pass
 * finds nothing left to encode */
static void
check_binary(const char *p, size_t n)
{
	struct buf once = { 0 }, twice = { 0 };

	binary_encode(&once, p, n);
	binary_encode(&twice, once.p ? once.p : "", once.len);
	if (once.len != twice.len || memcmp(once.p, twice.p, once.len))
		abort();
	buf_free(&once);
	buf_free(&twice);
}

/* a preview is at most PREVIEW_CHARS characters of valid UTF-8 (as
 * mbrtowc in a UTF-8 locale sees it) without control characters */
static void
check_preview(struct mime *m)
{
	struct buf b = { 0 };
	size_t i, k, chars = 0;
	mbstate_t st;
	wchar_t wc;

	if (!setlocale(LC_CTYPE, "C.UTF-8"))
		abort();
	preview_make(&b, m);
	memset(&st, 0, sizeof(st));
	for (i = 0; i < b.len; i += k, chars++) {
		k = mbrtowc(&wc, b.p + i, b.len - i, &st);
		if (k == 0 || k > 4 || wc < 0x20 || wc == 0x7f ||
		    (wc >= 0xd800 && wc < 0xe000))
			abort();
	}
	if (chars > PREVIEW_CHARS)
		abort();
	buf_free(&b);
}

/* the sections fetched of every input: part paths and texts */
static const char *fields1[] = { "FROM", "SUBJECT" };
static const char *fields2[] = { "Content-Type", "X-A" };
static const struct section specs[] = {
	{ { 0 }, 0, SEC_ALL, NULL, 0 },
	{ { 0 }, 0, SEC_HEADER, NULL, 0 },
	{ { 0 }, 0, SEC_TEXT, NULL, 0 },
	{ { 1 }, 1, SEC_ALL, NULL, 0 },
	{ { 1 }, 1, SEC_MIME, NULL, 0 },
	{ { 2 }, 1, SEC_ALL, NULL, 0 },
	{ { 2 }, 1, SEC_MIME, NULL, 0 },
	{ { 1, 1 }, 2, SEC_ALL, NULL, 0 },
	{ { 2 }, 1, SEC_HEADER, NULL, 0 },
	{ { 2 }, 1, SEC_TEXT, NULL, 0 },
	{ { 1, 2, 3 }, 3, SEC_ALL, NULL, 0 },
	{ { 3, 1 }, 2, SEC_MIME, NULL, 0 },
	{ { 1, 1, 2 }, 3, SEC_MIME, NULL, 0 },
	{ { 2, 1, 1 }, 3, SEC_ALL, NULL, 0 },
	{ { 1, 2 }, 2, SEC_HEADER, NULL, 0 },
	{ { 2, 2 }, 2, SEC_TEXT, NULL, 0 },
	{ { 0 }, 0, SEC_FIELDS, fields1, 2 },
	{ { 1 }, 1, SEC_FIELDS_NOT, fields2, 2 },
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct buf b = { 0 };
	struct count c = { 0 };
	struct mime *m;
	struct mail_date date;
	size_t i;

	mime_crlf_write(p, size, 0, UINT64_MAX, count_emit, &c);
	if (c.n != mime_crlf_size(p, size) || c.nul)
		abort();
	m = mime_open(p, size);
	form_envelope(&b, m);
	form_body(&b, m, 0);
	form_body(&b, m, 1);
	for (i = 0; i < LEN(specs); i++)
		check_section(m, p, size, &specs[i], 0);
	for (i = 0; i < 14; i++)	/* part paths only */
		if (specs[i].text == SEC_ALL)
			check_section(m, p, size, &specs[i], 1);
	/* the keys and the preview look at the tree the items parsed */
	mime_match_body(m, "hello", 0);
	mime_match_body(m, "\xd0\x9f\xd1\x80", 1);
	check_preview(m);
	mime_close(m);
	mime_match_header(p, size, "Subject", "\xc3\xa9t\xc3\xa9");
	mime_match_header(p, size, "From", "");
	mime_match_header(p, size, "From", "a@b.c");
	mime_match_header(p, size, "To", "n <m@h>");
	mime_match_header(p, size, NULL, "x");
	if (date_parse(p, size, &date) == 0)
		(void)date_utc(&date);
	buf_reset(&b);
	mime_to_utf8(&b, "iso-8859-1", p, size);
	buf_reset(&b);
	mime_first_address(p, size, &b, &b, &b);
	check_binary(p, size);
	buf_free(&b);
	return 0;
}
