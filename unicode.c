/* unicode.c: i;unicode-casemap (RFC 5051), the collation I18NLEVEL=1
 * (RFC 5255) asks SEARCH and SORT to use, through libutf8proc: every
 * character is replaced by its (simple) titlecase form and the result is
 * put in normalization form KD, so "résumé", "RÉSUMÉ" and
 * "re\u0301sume\u0301" are one string, as are "ﬁ" and "FI" or a
 * full-width "ＡＢＣ" and "abc", in any script Unicode knows (Dovecot
 * answers the same).  ASCII-only text takes a short way. */
#include <stdlib.h>

#include <utf8proc.h>

#include "unicode.h"
#include "util.h"

void
casemap(struct buf *out, const char *s, size_t n)
{
	const utf8proc_uint8_t *u = (const utf8proc_uint8_t *)s;
	utf8proc_uint8_t enc[4], *nfkd;
	utf8proc_int32_t cp;
	utf8proc_ssize_t k, len;
	struct buf t = { 0 };
	size_t i;

	for (i = 0; i < n && u[i] < 0x80; i++)
		;
	if (i == n) {
		buf_grow(out, n);
		for (i = 0; i < n; i++)
			out->p[out->len++] = u[i] >= 'a' && u[i] <= 'z' ?
			    u[i] - 32 : u[i];
		out->p[out->len] = '\0';
		return;
	}
	for (i = 0; i < n; i += k > 0 ? (size_t)k : 1) {
		k = utf8proc_iterate(u + i, n - i, &cp);
		cp = k < 0 ? 0xfffd : utf8proc_totitle(cp);
		buf_add(&t, enc, utf8proc_encode_char(cp, enc));
	}
	len = utf8proc_map((const utf8proc_uint8_t *)(t.p ? t.p : ""), t.len,
	    &nfkd, UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_DECOMPOSE);
	if (len >= 0) {
		buf_add(out, nfkd, len);
		free(nfkd);
	} else {
		buf_add(out, t.p ? t.p : "", t.len);
	}
	buf_free(&t);
}
