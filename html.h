/* html.h: HTML reduced to the text a reader sees, for SEARCH (the scan
 * and the full-text index alike) and PREVIEW.  It takes UTF-8 (or any
 * ASCII-compatible text) in pieces of any size and hands out text in
 * pieces: tags, comments and the content of script, style and title
 * dropped, character references decoded, white space folded (a block
 * element is a line break, a table cell a space, an inline one nothing,
 * <pre> kept as it is).  Its state is a few bytes: any input is read once,
 * in linear time. */
#ifndef HTML_H
#define HTML_H
#include <stddef.h>

struct buf;

#define HTML_NO_QUOTES	1	/* leave out <blockquote> (a reply's quote) */

typedef void (*html_out)(void *arg, const char *p, size_t n);

struct html {
	html_out out;
	void *arg;
	int flags;
	int state;
	char name[12];		/* of the tag being read, lower case */
	size_t nlen;
	int end, eq, dashes;	/* an end tag; after '='; "--" in a comment */
	char quote;		/* of an attribute value */
	const char *raw;	/* the element whose raw text is skipped */
	size_t rawlen;
	char ent[32];		/* a character reference, after the '&' */
	size_t elen;
	int space;		/* white space due: 1 a space, 2 a line break */
	int started, pre;
	unsigned quoted;	/* depth of <blockquote> */
	char obuf[512];
	size_t olen;
};

void html_init(struct html *, int flags, html_out, void *arg);
void html_feed(struct html *, const char *p, size_t n);
/* the end of the HTML: what is pending goes out */
void html_end(struct html *);
/* all of s, n at once, appended to out */
void html_text(struct buf *out, const char *s, size_t n, int flags);

#endif
