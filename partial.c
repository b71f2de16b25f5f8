/* partial.c: PARTIAL ranges (RFC 9394), which let a client page through
 * the results of a SEARCH, SORT or UID FETCH on a large mailbox: "1:50"
 * is the first fifty results, "-1:-50" the last fifty, in either order
 * of the two ends. */
#include "parse.h"
#include "partial.h"
#include "util.h"

static int
position(uint32_t *v, int minus)
{
	if (minus && !p_char('-'))
		return -1;
	if (p_number(v) < 0 || *v == 0)
		return -1;
	return 0;
}

int
partial_parse(struct partial *pr)
{
	uint32_t a, b;

	pr->last = p_peek() == '-';
	if (position(&a, pr->last) < 0 || !p_char(':') ||
	    position(&b, pr->last) < 0) {
		perr = "Invalid PARTIAL range";
		return -1;
	}
	pr->lo = MIN(a, b);
	pr->hi = MAX(a, b);
	return 0;
}

size_t
partial_window(const struct partial *pr, size_t n, size_t *from)
{
	size_t count;

	*from = 0;
	if (pr->lo == 0 || pr->lo > n)
		return 0;
	count = MIN((size_t)pr->hi, n) - pr->lo + 1;
	*from = pr->last ? n - (pr->lo - 1) - count : pr->lo - 1;
	return count;
}

void
partial_name(struct buf *b, const struct partial *pr)
{
	if (pr->last)
		buf_printf(b, "-%u:-%u", pr->lo, pr->hi);
	else
		buf_printf(b, "%u:%u", pr->lo, pr->hi);
}
