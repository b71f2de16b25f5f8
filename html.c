/* html.c: HTML reduced to the text a reader sees (html.h).
 *
 * One pass of a small state machine, in the manner of HTML5's tokenizer
 * but only as far as the visible text needs: a '<' not followed by a
 * letter, '/', '!' or '?' is text; quoted attribute values may hold '>';
 * "<!--" runs to "-->", other "<!" and "<?" to '>'; script, style and
 * title hold raw text up to their end tag, which is dropped.  What is
 * pending between pieces (a tag name, a reference, an end tag being
 * matched) is held in fixed buffers, so no input makes it grow. */
#include <string.h>

#include "html.h"
#include "util.h"

enum { TEXT, OPEN, ENDOPEN, NAME, ATTRS, BANG, BANGDASH, COMMENT, BOGUS,
    RAW, REF };

/* elements whose content is not text; their end tag is looked for */
static const char *const rawtext[] = { "script", "style", "title" };

/* elements that start a line, and those that stand apart like words */
static const char *const block[] = {
	"address", "article", "aside", "blockquote", "br", "caption",
	"center", "dd", "div", "dl", "dt", "fieldset", "figcaption", "figure",
	"footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
	"li", "main", "nav", "ol", "option", "p", "pre", "section", "table",
	"tbody", "tfoot", "thead", "tr", "ul",
};
static const char *const cell[] = { "td", "th", "img", "input" };

/* named references: the Latin-1 ones from U+00A0 in order (HTML 4), and
 * those of common typography */
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
} named[] = {
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
	{ "tilde", 0x2dc }, { "NewLine", '\n' }, { "Tab", '\t' },
};

/* numeric references 128-159 name windows-1252 characters (HTML5 13.2.5.80) */
static const unsigned short cp1252[32] = {
	0x20ac, 0, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6,
	0x2030, 0x160, 0x2039, 0x152, 0, 0x17d, 0, 0, 0x2018, 0x2019, 0x201c,
	0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153,
	0, 0x17e, 0x178,
};

static int
in(const char *const *set, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(set[i], name))
			return 1;
	return 0;
}

static int
white(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static int
letter(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static void
flush(struct html *h)
{
	if (h->olen)
		h->out(h->arg, h->obuf, h->olen);
	h->olen = 0;
}

static void
put(struct html *h, const char *p, size_t n)
{
	if (h->olen + n > sizeof(h->obuf))
		flush(h);
	memcpy(h->obuf + h->olen, p, n);	/* n is at most 4 */
	h->olen += n;
}

static int
hidden(const struct html *h)
{
	return (h->flags & HTML_NO_QUOTES) && h->quoted;
}

/* text the reader sees: the white space due before it first */
static void
visible(struct html *h, const char *p, size_t n)
{
	if (hidden(h))
		return;
	if (h->space && h->started)
		put(h, h->space == 2 ? "\n" : " ", 1);
	h->space = 0;
	h->started = 1;
	put(h, p, n);
}

static void
blank(struct html *h, int c)
{
	if (hidden(h))
		return;
	if (!h->pre) {
		h->space = MAX(h->space, 1);
		return;
	}
	if (c != '\r')
		visible(h, c == '\n' ? "\n" : " ", 1);
}

/* code point c of the text */
static void
codepoint(struct html *h, unsigned long c)
{
	char u[4];
	size_t n;

	if (c >= 0x80 && c < 0xa0 && cp1252[c - 0x80])
		c = cp1252[c - 0x80];
	if (c == 0xa0 || (c < 0x80 && white(c))) {
		blank(h, (int)c == 0xa0 ? ' ' : (int)c);
		return;
	}
	if (c == 0 || c > 0x10ffff || (c >= 0xd800 && c < 0xe000) ||
	    (c >= 0x80 && c < 0xa0))
		c = 0xfffd;
	if (c < 0x80) {
		u[0] = c;
		n = 1;
	} else if (c < 0x800) {
		u[0] = 0xc0 | c >> 6;
		u[1] = 0x80 | (c & 0x3f);
		n = 2;
	} else if (c < 0x10000) {
		u[0] = 0xe0 | c >> 12;
		u[1] = 0x80 | (c >> 6 & 0x3f);
		u[2] = 0x80 | (c & 0x3f);
		n = 3;
	} else {
		u[0] = 0xf0 | c >> 18;
		u[1] = 0x80 | (c >> 12 & 0x3f);
		u[2] = 0x80 | (c >> 6 & 0x3f);
		u[3] = 0x80 | (c & 0x3f);
		n = 4;
	}
	visible(h, u, n);
}

/* the reference in h->ent (without '&' and ';'): its code point, or -1
 * when it names none */
static long
reference(const struct html *h)
{
	const char *s = h->ent;
	unsigned long c = 0;
	size_t i, n = h->elen;
	int hex, d;

	if (n >= 2 && s[0] == '#') {
		hex = s[1] == 'x' || s[1] == 'X';
		if (n == 1 + (size_t)hex)
			return -1;
		for (i = 1 + hex; i < n; i++) {
			d = s[i] >= '0' && s[i] <= '9' ? s[i] - '0' :
			    hex && lower(s[i]) >= 'a' && lower(s[i]) <= 'f' ?
			    lower(s[i]) - 'a' + 10 : -1;
			if (d < 0)
				return -1;
			c = MIN(c * (hex ? 16 : 10) + d, 0x110000UL);
		}
		return c;
	}
	for (i = 0; i < LEN(latin1); i++)
		if (strlen(latin1[i]) == n && !memcmp(s, latin1[i], n))
			return 0xa0 + i;
	for (i = 0; i < LEN(named); i++)
		if (strlen(named[i].name) == n && !memcmp(s, named[i].name, n))
			return named[i].c;
	return -1;
}

/* the reference ends (semi: with ';'): decoded, or kept as it was */
static void
ref_end(struct html *h, int semi)
{
	long c = reference(h);
	size_t i;

	h->state = TEXT;
	/* a name needs its ';', a number does not (HTML5 allows both) */
	if (c >= 0 && (semi || h->ent[0] == '#')) {
		codepoint(h, c);
		return;
	}
	visible(h, "&", 1);
	for (i = 0; i < h->elen; i++)
		visible(h, &h->ent[i], 1);
	if (semi)
		visible(h, ";", 1);
}

/* a whole tag has been read: what it does to the text */
static void
tag_end(struct html *h)
{
	size_t i;

	h->name[h->nlen] = '\0';
	h->state = TEXT;
	if (!strcmp(h->name, "blockquote")) {
		if (h->end && h->quoted)
			h->quoted--;
		else if (!h->end && h->quoted < 1000)
			h->quoted++;
	}
	if (!strcmp(h->name, "pre"))
		h->pre = !h->end;
	if (in(block, LEN(block), h->name))
		h->space = 2;
	else if (in(cell, LEN(cell), h->name))
		h->space = MAX(h->space, 1);
	for (i = 0; !h->end && i < LEN(rawtext); i++)
		if (!strcmp(h->name, rawtext[i])) {
			h->raw = rawtext[i];
			h->rawlen = 0;
			h->state = RAW;
		}
}

/* raw text: only "</name" followed by a space, '/' or '>' ends it */
static void
raw_char(struct html *h, int c)
{
	size_t n = strlen(h->raw);

	if (h->rawlen == n + 2 && (white(c) || c == '/' || c == '>')) {
		h->end = 1;
		memcpy(h->name, h->raw, n);
		h->nlen = n;
		h->state = ATTRS;
		h->eq = 0;
		h->quote = 0;
		if (c == '>')
			tag_end(h);
		return;
	}
	if (h->rawlen == 0 ? c == '<' : h->rawlen == 1 ? c == '/' :
	    h->rawlen < n + 2 && lower(c) == h->raw[h->rawlen - 2])
		h->rawlen++;
	else
		h->rawlen = c == '<';
}

static void text_char(struct html *, int);

static void
tag_char(struct html *h, int c)
{
	switch (h->state) {
	case OPEN:
		if (letter(c) || c == '/') {
			h->end = c == '/';
			h->nlen = 0;
			h->state = h->end ? ENDOPEN : NAME;
			if (!h->end)
				h->name[h->nlen++] = lower(c);
		} else if (c == '!') {
			h->state = BANG;
		} else if (c == '?') {
			h->state = BOGUS;
		} else {
			h->state = TEXT;
			visible(h, "<", 1);
			text_char(h, c);
		}
		break;
	case ENDOPEN:
		h->state = letter(c) ? NAME : c == '>' ? TEXT : BOGUS;
		if (letter(c))
			h->name[h->nlen++] = lower(c);
		break;
	case NAME:
		if (white(c) || c == '/' || c == '>') {
			h->state = ATTRS;
			h->eq = 0;
			h->quote = 0;
			if (c == '>')
				tag_end(h);
		} else if (h->nlen + 1 < sizeof(h->name)) {
			h->name[h->nlen++] = lower(c);
		} else {
			h->name[0] = '?';	/* too long to be one we know */
		}
		break;
	case ATTRS:
		if (h->quote) {
			if (c == h->quote)
				h->quote = h->eq = 0;
		} else if (c == '>') {
			tag_end(h);
		} else if ((c == '"' || c == '\'') && h->eq) {
			h->quote = c;
		} else if (!white(c)) {
			h->eq = c == '=';
		}
		break;
	}
}

static void
markup_char(struct html *h, int c)
{
	switch (h->state) {
	case BANG:
		h->state = c == '-' ? BANGDASH : c == '>' ? TEXT : BOGUS;
		break;
	case BANGDASH:
		/* "<!-->" and "<!--->" are empty comments */
		h->state = c == '-' ? COMMENT : c == '>' ? TEXT : BOGUS;
		h->dashes = 2;
		break;
	case COMMENT:
		if (c == '>' && h->dashes >= 2)
			h->state = TEXT;
		h->dashes = c == '-' ? h->dashes + (h->dashes < 2) : 0;
		break;
	case BOGUS:
		if (c == '>')
			h->state = TEXT;
		break;
	}
}

static void
text_char(struct html *h, int c)
{
	char o = c;

	if (c == '<')
		h->state = OPEN;
	else if (c == '&') {
		h->state = REF;
		h->elen = 0;
	} else if (white(c))
		blank(h, c);
	else
		visible(h, &o, 1);
}

static void
ref_char(struct html *h, int c)
{
	if (c == ';') {
		ref_end(h, 1);
	} else if ((letter(c) || (c >= '0' && c <= '9') || (c == '#' &&
	    !h->elen)) && h->elen < sizeof(h->ent)) {
		h->ent[h->elen++] = c;
	} else {
		ref_end(h, 0);
		text_char(h, c);
	}
}

void
html_init(struct html *h, int flags, html_out out, void *arg)
{
	memset(h, 0, sizeof(*h));
	h->flags = flags;
	h->out = out;
	h->arg = arg;
}

void
html_feed(struct html *h, const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t i;

	for (i = 0; i < n; i++)
		switch (h->state) {
		case TEXT:
			text_char(h, s[i]);
			break;
		case REF:
			ref_char(h, s[i]);
			break;
		case RAW:
			raw_char(h, s[i]);
			break;
		case OPEN: case ENDOPEN: case NAME: case ATTRS:
			tag_char(h, s[i]);
			break;
		default:
			markup_char(h, s[i]);
		}
	flush(h);
}

void
html_end(struct html *h)
{
	if (h->state == REF)
		ref_end(h, 0);
	else if (h->state == OPEN)
		visible(h, "<", 1);
	h->state = TEXT;
	flush(h);
}

static void
to_buf(void *arg, const char *p, size_t n)
{
	buf_add(arg, p, n);
}

void
html_text(struct buf *out, const char *s, size_t n, int flags)
{
	struct html h;

	html_init(&h, flags, to_buf, out);
	html_feed(&h, s, n);
	html_end(&h);
}
