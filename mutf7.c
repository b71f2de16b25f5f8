/* mutf7.c: modified UTF-7 <-> UTF-8 for mailbox names */
#include <stdint.h>
#include <string.h>

#include "mutf7.h"
#include "util.h"

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* decode one "&...-" run starting after the '&'; returns the position
 * after the '-', or NULL */
static const char *
decode_run(struct buf *b, const char *p)
{
	uint32_t acc = 0, hi = 0, u;
	int bits = 0, v, n = 0;

	for (; *p != '-'; p++) {
		if ((v = base64_value((unsigned char)*p, ',')) < 0)
			return NULL;
		acc = acc << 6 | v;
		bits += 6;
		if (bits < 16)
			continue;
		bits -= 16;
		u = acc >> bits & 0xffff;
		n++;
		if (hi) {
			if (u < 0xdc00 || u > 0xdfff)
				return NULL;
			buf_add_utf8(b, 0x10000 + ((hi - 0xd800) << 10) +
			    (u - 0xdc00));
			hi = 0;
		} else if (u >= 0xd800 && u <= 0xdbff) {
			hi = u;
		} else if ((u >= 0xdc00 && u <= 0xdfff) ||
		    (u >= 0x20 && u < 0x7f)) {
			return NULL;	/* printable ASCII must stand as itself */
		} else {
			buf_add_utf8(b, u);
		}
	}
	if (hi || n == 0 || bits >= 6 || (acc & ((1U << bits) - 1)))
		return NULL;
	return p + 1;
}

int
mutf7_to_utf8(struct buf *b, const char *s)
{
	const char *p = s;

	while (*p) {
		if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
			return -1;
		if (*p != '&') {
			buf_addc(b, *p++);
			continue;
		}
		if (p[1] == '-') {
			buf_addc(b, '&');
			p += 2;
			continue;
		}
		if (!(p = decode_run(b, p + 1)))
			return -1;
	}
	return 0;
}

/* the next code point of UTF-8 text, or -1 */
static long
next_utf8(const unsigned char **pp)
{
	const unsigned char *p = *pp;
	uint32_t c;
	int n, i;

	if (p[0] < 0x80)
		n = 0, c = p[0];
	else if ((p[0] & 0xe0) == 0xc0)
		n = 1, c = p[0] & 0x1f;
	else if ((p[0] & 0xf0) == 0xe0)
		n = 2, c = p[0] & 0x0f;
	else if ((p[0] & 0xf8) == 0xf0)
		n = 3, c = p[0] & 0x07;
	else
		return -1;
	for (i = 1; i <= n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		c = c << 6 | (p[i] & 0x3f);
	}
	if ((n == 1 && c < 0x80) || (n == 2 && c < 0x800) ||
	    (n == 3 && c < 0x10000) || c > 0x10ffff ||
	    (c >= 0xd800 && c <= 0xdfff))
		return -1;
	*pp = p + n + 1;
	return c;
}

static void
put_bits(struct buf *b, uint32_t *acc, int *bits, uint32_t u16)
{
	*acc = *acc << 16 | u16;
	*bits += 16;
	while (*bits >= 6) {
		*bits -= 6;
		buf_addc(b, b64[*acc >> *bits & 0x3f]);
	}
}

int
utf8_to_mutf7(struct buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t acc = 0;
	int bits = 0, open = 0;
	long c;

	while (*p) {
		if ((c = next_utf8(&p)) < 0)
			return -1;
		if (c >= 0x20 && c < 0x7f) {
			if (open) {
				if (bits)
					buf_addc(b, b64[acc << (6 - bits) & 0x3f]);
				buf_addc(b, '-');
				open = bits = 0;
				acc = 0;
			}
			buf_adds(b, c == '&' ? "&-" : (char[]){ c, 0 });
			continue;
		}
		if (!open) {
			buf_addc(b, '&');
			open = 1;
		}
		if (c >= 0x10000) {
			put_bits(b, &acc, &bits, 0xd800 + ((c - 0x10000) >> 10));
			put_bits(b, &acc, &bits, 0xdc00 + ((c - 0x10000) & 0x3ff));
		} else {
			put_bits(b, &acc, &bits, c);
		}
	}
	if (open) {
		if (bits)
			buf_addc(b, b64[acc << (6 - bits) & 0x3f]);
		buf_addc(b, '-');
	}
	return 0;
}
