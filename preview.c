/* preview.c: PREVIEW (RFC 8970).  A phone fills its message list with
 * the sender, the subject and this: the first text part (HTML or not),
 * looked for in enclosed messages too, decoded to UTF-8, HTML reduced to
 * its text (html.c), quoted lines
 * and blocks left out, white space folded, at most 200 characters. */
#include <string.h>

#include "html.h"
#include "mime.h"
#include "preview.h"
#include "util.h"

#define PREVIEW_SOURCE (64 * 1024)	/* octets of the part looked at */

/* plain text without the quoted lines of a reply */
static void
strip_quotes(struct buf *out, const char *s, size_t n)
{
	const char *e;
	size_t len;

	while (n) {
		e = memchr(s, '\n', n);
		len = e ? (size_t)(e - s) + 1 : n;
		if (s[0] != '>')
			buf_add(out, s, len);
		else
			buf_addc(out, '\n');
		s += len;
		n -= len;
	}
}

/* white space folded to one space, controls and broken sequences left
 * out, PREVIEW_CHARS characters at most */
static void
fold(struct buf *out, const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t i = 0, k, chars = 0;
	int space = 0, broken = 0;

	while (i < n && chars < PREVIEW_CHARS) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' ||
		    s[i] == '\n' || (i + 1 < n && s[i] == 0xc2 &&
		    s[i + 1] == 0xa0)) {
			space = 1;
			broken = 0;
			i += s[i] == 0xc2 ? 2 : 1;
			continue;
		}
		if (s[i] < 0x20 || s[i] == 0x7f) {
			i++;
			continue;
		}
		/* a run of broken octets is one U+FFFD */
		if (!(k = utf8_len(s + i, n - i)) && broken) {
			i++;
			continue;
		}
		if (space && out->len) {
			if (chars + 1 >= PREVIEW_CHARS)
				break;
			buf_addc(out, ' ');
			chars++;
		}
		space = 0;
		if ((broken = !k))
			buf_adds(out, "\xef\xbf\xbd");
		else
			buf_add(out, s + i, k);
		i += k ? k : 1;
		chars++;
	}
}

void
preview_make(struct buf *out, struct mime *m)
{
	struct buf raw = { 0 }, utf8 = { 0 }, text = { 0 };
	char cs[64];
	int kind;

	if ((kind = mime_first_text(m, PREVIEW_SOURCE, &raw, cs,
	    sizeof(cs))) >= 0) {
		if (mime_to_utf8(&utf8, cs, raw.p ? raw.p : "", raw.len) < 0) {
			buf_reset(&utf8);
			buf_add(&utf8, raw.p ? raw.p : "", raw.len);
		}
		if (kind)
			html_text(&text, utf8.p ? utf8.p : "", utf8.len,
			    HTML_NO_QUOTES);
		else
			strip_quotes(&text, utf8.p ? utf8.p : "", utf8.len);
		fold(out, text.p ? text.p : "", text.len);
	}
	buf_free(&raw);
	buf_free(&utf8);
	buf_free(&text);
}
