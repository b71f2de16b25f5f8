/* unicode.h: the i;unicode-casemap collation of RFC 5051 (I18NLEVEL=1) */
#ifndef UNICODE_H
#define UNICODE_H
#include <stddef.h>

struct buf;

/* s, n in i;unicode-casemap form (each character titlecased, then the
 * whole in NFKD) appended to out; invalid UTF-8 becomes U+FFFD.  Two
 * strings are equal under the collation when their forms are, and one
 * contains the other when the forms do. */
void casemap(struct buf *out, const char *s, size_t n);

#endif
