/* libFuzzer target for mime.c: every entry point on one input, and the
 * invariant the FETCH code relies on: a section writes exactly the
 * number of octets section_open announced, in any window. */
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

#include "../binary.h"
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
check_section(const char *p, size_t n, const char *spec, int binary)
{
	struct section *s = section_parse(spec, binary);
	struct sectiondata *sd;
	struct count c = { 0 };
	struct buf name = { 0 };
	uint64_t size;

	if (!s)
		abort();
	section_name(&name, s);
	if ((sd = section_open(p, n, s, binary, &size))) {
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
	section_free(s);
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
check_preview(const char *p, size_t n)
{
	struct buf b = { 0 };
	size_t i, k, chars = 0;
	mbstate_t st;
	wchar_t wc;

	if (!setlocale(LC_CTYPE, "C.UTF-8"))
		abort();
	preview_make(&b, p, n);
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const specs[] = {
		"", "HEADER", "TEXT", "1", "1.MIME", "2", "2.MIME", "1.1",
		"2.HEADER", "2.TEXT", "1.2.3", "3.1.MIME", "1.1.2.MIME",
		"2.1.1", "1.2.HEADER", "2.2.TEXT",
		"HEADER.FIELDS (FROM SUBJECT)",
		"1.HEADER.FIELDS.NOT (Content-Type \"X-A\")",
	};
	static const char *const bins[] = { "", "1", "2", "1.1", "2.3" };
	const char *p = (const char *)data;
	struct buf b = { 0 };
	struct count c = { 0 };
	struct mail_date date;
	char spec[128];
	size_t i;

	mime_crlf_write(p, size, 0, UINT64_MAX, count_emit, &c);
	if (c.n != mime_crlf_size(p, size) || c.nul)
		abort();
	mime_envelope(&b, p, size);
	mime_bodystructure(&b, p, size, 0);
	mime_bodystructure(&b, p, size, 1);
	for (i = 0; i < LEN(specs); i++)
		check_section(p, size, specs[i], 0);
	for (i = 0; i < LEN(bins); i++)
		check_section(p, size, bins[i], 1);
	mime_match_header(p, size, "Subject", "\xc3\xa9t\xc3\xa9");
	mime_match_header(p, size, "From", "");
	mime_match_header(p, size, "From", "a@b.c");
	mime_match_header(p, size, "To", "n <m@h>");
	mime_match_header(p, size, NULL, "x");
	mime_match_body(p, size, "hello", 0);
	mime_match_body(p, size, "\xd0\x9f\xd1\x80", 1);
	if (date_parse(p, size, &date) == 0)
		(void)date_utc(&date);
	buf_reset(&b);
	mime_to_utf8(&b, "iso-8859-1", p, size);
	/* the input's first line as a section spec */
	for (i = 0; i < size && i < sizeof(spec) - 1 && p[i] != '\n' &&
	    p[i] != '\0'; i++)
		spec[i] = p[i];
	spec[i] = '\0';
	section_free(section_parse(spec, 0));
	section_free(section_parse(spec, 1));
	check_binary(p, size);
	check_preview(p, size);
	buf_free(&b);
	return 0;
}
