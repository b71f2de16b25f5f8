/* partial.h: the PARTIAL range of RFC 9394 ("1:100" from the first result,
 * "-1:-100" from the last), for SEARCH and SORT RETURN (PARTIAL ...) and
 * the FETCH modifier (PARTIAL ...) */
#ifndef PARTIAL_H
#define PARTIAL_H
#include <stddef.h>
#include <stdint.h>

struct buf;

struct partial {
	uint32_t lo, hi;	/* 1-based positions, lo <= hi; 0: none given */
	int last;		/* counted from the last result backwards */
};

/* the range at the parser's position; -1 (perr set) when malformed */
int partial_parse(struct partial *);
/* the positions [*from, *from + count) of n results that the range
 * selects; returns count */
size_t partial_window(const struct partial *, size_t n, size_t *from);
/* the range as the response echoes it */
void partial_name(struct buf *, const struct partial *);

#endif
