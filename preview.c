/* preview.c: PREVIEW (RFC 8970).  A phone fills its message list with
 * the sender, the subject and this: the first text part (HTML or not),
 * looked for in enclosed messages too, decoded to UTF-8, HTML tags and entities taken out, quoted lines
 * and blocks left out, white space folded, at most 200 characters. */
#include <stdio.h>
#include <string.h>

#include "mime.h"
#include "preview.h"
#include "util.h"

#define PREVIEW_SOURCE (64 * 1024)	/* octets of the part looked at */

/* elements whose content is no preview text */
static const char *const hidden[] = {
	"head", "style", "script", "title", "blockquote",
};

/* named character references: the Latin-1 ones from U+00A0 in order
 * (HTML 4), and those of common typography */
static const char *const latin1[96] = {
	"nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect",
	"uml", "copy", "ordf", "laquo", "not", "shy", "reg", "macr", "deg",
	"plusmn", "sup2", "sup3", "acute", "micro", "para", "middot", "cedil",
	"sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest",
	"Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig",
	"Ccedil", "Egrave", "Eacute", "Ecirc", "Euml", "Igrave", "Iacute",
	"Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute", "Ocirc",
	"Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc",
	"Uuml", "Yacute", "THORN", "szlig", "agrave", "aacute", "acirc",
	"atilde", "auml", "aring", "aelig", "ccedil", "egrave", "eacute",
	"ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth", "ntilde",
	"ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash",
	"ugrave", "uacute", "ucirc", "uuml", "yacute", "thorn", "yuml",
};

static const struct {
	const char *name;
	unsigned long c;
} entities[] = {
	{ "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' },
	{ "apos", '\'' }, { "ndash", 0x2013 }, { "mdash", 0x2014 },
	{ "lsquo", 0x2018 }, { "rsquo", 0x2019 }, { "sbquo", 0x201a },
	{ "ldquo", 0x201c }, { "rdquo", 0x201d }, { "bdquo", 0x201e },
	{ "bull", 0x2022 }, { "hellip", 0x2026 }, { "euro", 0x20ac },
	{ "trade", 0x2122 }, { "zwnj", 0x200c }, { "zwj", 0x200d },
	{ "ensp", 0x2002 }, { "emsp", 0x2003 }, { "thinsp", 0x2009 },
	{ "lrm", 0x200e }, { "rlm", 0x200f }, { "dagger", 0x2020 },
	{ "permil", 0x2030 }, { "lsaquo", 0x2039 }, { "rsaquo", 0x203a },
	{ "OElig", 0x152 }, { "oelig", 0x153 }, { "Scaron", 0x160 },
	{ "scaron", 0x161 }, { "Yuml", 0x178 }, { "circ", 0x2c6 },
	{ "tilde", 0x2dc },
};

/* the code point of a named reference (case matters: "Auml" is not
 * "auml"), 0 for none */
static unsigned long
named(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < LEN(latin1); i++)
		if (strlen(latin1[i]) == len && !memcmp(s, latin1[i], len))
			return 0xa0 + i;
	for (i = 0; i < LEN(entities); i++)
		if (strlen(entities[i].name) == len &&
		    !memcmp(s, entities[i].name, len))
			return entities[i].c;
	return 0;
}

/* code point c of the text, U+FFFD for one that cannot stand there */
static void
add_utf8(struct buf *b, unsigned long c)
{
	if (c == 0 || c > 0x10ffff || (c >= 0xd800 && c < 0xe000))
		c = 0xfffd;
	buf_add_utf8(b, c);
}

/* an entity at s ("&amp;", "&#233;", "&#xe9;"): its length, or 0 */
static size_t
entity(struct buf *b, const char *s, size_t n)
{
	const char *semi = memchr(s, ';', MIN(n, 12));
	unsigned long c = 0;
	size_t i, len;

	if (!semi)
		return 0;
	len = semi - s + 1;
	if (len > 3 && s[1] == '#') {
		int hex = s[2] == 'x' || s[2] == 'X';

		for (i = 2 + hex; s + i < semi; i++) {
			int d = s[i] >= '0' && s[i] <= '9' ? s[i] - '0' :
			    hex && s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10 :
			    hex && s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 10 :
			    -1;

			if (d < 0 || c > 0x10ffff)
				return 0;
			c = c * (hex ? 16 : 10) + d;
		}
		add_utf8(b, c == 0xa0 ? ' ' : c);
		return len;
	}
	if (!(c = named(s + 1, len - 2)))
		return 0;
	add_utf8(b, c == 0xa0 ? ' ' : c);
	return len;
}

/* the length of the tag at s, with the content of a hidden element */
static size_t
tag(const char *s, size_t n)
{
	const char *e, *from = s;
	char end[16];
	size_t i, k;

	if (n >= 4 && !memcmp(s, "<!--", 4))
		return (e = ascii_casestr(s, n, "-->", 3)) ?
		    (size_t)(e - s) + 3 : n;
	for (i = 0; i < LEN(hidden); i++) {
		k = strlen(hidden[i]);
		if (n > k + 1 && !ascii_ncasecmp(s + 1, hidden[i], k) &&
		    s[k + 1] && strchr("> \t\r\n", s[k + 1])) {
			snprintf(end, sizeof(end), "</%s", hidden[i]);
			if (!(from = ascii_casestr(s, n, end, k + 2)))
				return n;
			break;
		}
	}
	e = memchr(from, '>', n - (from - s));
	return e ? (size_t)(e - s) + 1 : n;
}

/* HTML to text: tags become spaces, entities their characters */
static void
strip_html(struct buf *out, const char *s, size_t n)
{
	size_t i = 0, k;

	while (i < n) {
		if (s[i] == '<') {
			i += tag(s + i, n - i);
			buf_addc(out, ' ');
		} else if (s[i] == '&' && (k = entity(out, s + i, n - i))) {
			i += k;
		} else {
			buf_addc(out, s[i++]);
		}
	}
}

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
preview_make(struct buf *out, const char *p, size_t n)
{
	struct buf raw = { 0 }, utf8 = { 0 }, text = { 0 };
	char cs[64];
	int kind;

	if ((kind = mime_first_text(p, n, PREVIEW_SOURCE, &raw, cs,
	    sizeof(cs))) >= 0) {
		if (mime_to_utf8(&utf8, cs, raw.p ? raw.p : "", raw.len) < 0) {
			buf_reset(&utf8);
			buf_add(&utf8, raw.p ? raw.p : "", raw.len);
		}
		if (kind)
			strip_html(&text, utf8.p ? utf8.p : "", utf8.len);
		else
			strip_quotes(&text, utf8.p ? utf8.p : "", utf8.len);
		fold(out, text.p ? text.p : "", text.len);
	}
	buf_free(&raw);
	buf_free(&utf8);
	buf_free(&text);
}
