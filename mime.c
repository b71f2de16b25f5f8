/* mime.c: the encodings of message text: line ends as CRLF (every size
 * the client sees counts them so: a bare LF is sent as CRLF, CRLF and a
 * bare CR as they are), the transfer encodings base64 and
 * quoted-printable, RFC 2047 encoded words and charsets.  Long
 * scans of a file mapping give back the pages they have passed. */
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "mimeint.h"
#include "util.h"

static const char lit_crlf[] = "\r\n";

/* messages are read-only file mappings (mime_filemap) */
static int filemap;

static int
upper(int c)
{
	return c >= 'a' && c <= 'z' ? c - 32 : c;
}

void
mime_filemap(int on)
{
	filemap = on;
}

/* Give back the whole pages of [from, to), part of a file mapping a scan
 * has passed: they are read from the file again when needed, and a scan
 * of a large message does not leave all of it resident.  Scans call it
 * every DROP_STEP octets.  A shorter range is left alone: giving back a
 * few pages costs more (a TLB flush) than the munmap that ends the
 * mapping anyway, and a message smaller than the step may not be a
 * mapping at all (message.c reads small ones into memory). */
void
drop(const char *from, const char *to)
{
	uintptr_t pg, a, b;

	if (!filemap || to - from < DROP_STEP)
		return;
	pg = sysconf(_SC_PAGESIZE);
	a = ((uintptr_t)from + pg - 1) & ~(pg - 1);
	b = (uintptr_t)to & ~(pg - 1);
	if (b > a)
		madvise((void *)a, b - a, MADV_DONTNEED);
}

/* ---- CRLF form ------------------------------------------------------ */

/* (mimeint.h) counted a drop step at a time, the pages passed given back */
void
lf_census(const char *p, size_t n, uint64_t *lf, uint64_t *crlf)
{
	uint64_t l, c;
	size_t i, k;

	*lf = *crlf = 0;
	for (i = 0; i < n; i += k) {
		k = MIN(n - i, DROP_STEP);
		count_lf(p + i, k, &l, &c);
		/* a CRLF across the step */
		c += i && p[i] == '\n' && p[i - 1] == '\r';
		*lf += l;
		*crlf += c;
		drop(p + i, p + i + k);
	}
}

uint64_t
mime_crlf_size(const char *p, size_t n)
{
	uint64_t lf, crlf;

	lf_census(p, n, &lf, &crlf);
	return n + lf - crlf;
}

void
clip_init(struct clip *c, uint64_t from, uint64_t count, mime_emit emit,
    void *arg)
{
	c->pos = 0;
	c->from = from;
	c->end = count > UINT64_MAX - from ? UINT64_MAX : from + count;
	c->emit = emit;
	c->arg = arg;
	c->done = c->from >= c->end;
}

/* pass n octets of output; the part inside the window is emitted */
void
clip_put(struct clip *c, const char *p, size_t n)
{
	uint64_t skip, take;

	if (c->done || !n)
		return;
	if (c->pos + n <= c->from) {
		c->pos += n;
		return;
	}
	skip = c->from > c->pos ? c->from - c->pos : 0;
	take = MIN((uint64_t)n - skip, c->end - c->pos - skip);
	c->emit(c->arg, p + skip, take);
	c->pos += n;
	if (c->pos >= c->end)
		c->done = 1;
}

void
clip_emit(void *arg, const char *p, size_t n)
{
	clip_put(arg, p, n);
}

/* the next c in [s, e), or e */
static const char *
find(const char *s, const char *e, int c)
{
	const char *q = s < e ? memchr(s, c, e - s) : NULL;

	return q ? q : e;
}

/* p as CRLF into the window: runs between bare LFs go out unchanged.
 * With text set, a NUL (which an IMAP literal may not hold) goes out as
 * 0x80; a literal8 (BINARY) takes it as it is.  Works in blocks of
 * DROP_STEP, which it gives back when done. */
void
crlf_put(const char *p, size_t n, struct clip *c, int text)
{
	const char *run, *e = p + n, *b, *be, *q, *z;

	for (b = p; b < e && !c->done; b = be) {
		be = b + MIN((size_t)(e - b), DROP_STEP);
		run = b;
		q = find(b, be, '\n');
		z = text ? find(b, be, '\0') : be;
		while (!c->done) {
			if (z < q) {
				clip_put(c, run, z - run);
				clip_put(c, "\x80", 1);
				run = z + 1;
				z = find(run, be, '\0');
				continue;
			}
			if (q == be)
				break;
			if (q == p || q[-1] != '\r') {
				clip_put(c, run, q - run);
				clip_put(c, lit_crlf, 2);
				run = q + 1;
			}
			q = find(q + 1, be, '\n');
		}
		clip_put(c, run, be - run);
		drop(b, be);
	}
}

void
mime_crlf_write(const char *p, size_t n, uint64_t from, uint64_t count,
    mime_emit emit, void *arg)
{
	struct clip c;

	clip_init(&c, from, count, emit, arg);
	crlf_put(p, n, &c, 1);
}

/* ---- transfer decoding ------------------------------------------------ */

static void
dec_flush(struct dec *d)
{
	if (d->len)
		d->out(d->arg, d->buf, d->len);
	d->len = 0;
}

static void
dec_putc(struct dec *d, int c)
{
	d->buf[d->len++] = c;
	if (d->len == sizeof(d->buf))
		dec_flush(d);
}

static int
dec_stopped(const struct dec *d)
{
	return d->stop && *d->stop;
}

/* base64 (util.c) in steps of CHUNK, handing back pages as it goes */
static void
b64_decode(const char *s, size_t n, struct dec *d)
{
	struct base64 b = { 0 };
	unsigned char out[CHUNK / 4 * 3 + 3];
	size_t i, k, o;

	dec_flush(d);
	for (i = 0; i < n; i += k) {
		if (dec_stopped(d))
			return;
		if (i && (i % DROP_STEP) == 0)
			drop(s + i - DROP_STEP, s + i);
		k = MIN(n - i, CHUNK);
		if ((o = base64_step(&b, s + i, k, out)))
			d->out(d->arg, (char *)out, o);
	}
	if ((o = base64_end(&b, out)))
		d->out(d->arg, (char *)out, o);
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* index just past the line that starts at i */
size_t
nextline(const char *p, size_t n, size_t i)
{
	const char *e;

	if (i >= n)
		return n;
	e = memchr(p + i, '\n', n - i);
	return e ? (size_t)(e - p) + 1 : n;
}

/* quoted-printable (RFC 2045 6.7): white space at line ends is dropped,
 * "=" at a line end joins lines, hard line ends become CRLF; an "=" not
 * followed by two hex digits is taken literally */
static void
qp_decode(const char *s, size_t n, struct dec *d)
{
	size_t i = 0, e, next, k, mark = 0;
	int soft, h1, h2;

	while (i < n && !dec_stopped(d)) {
		if (i - mark >= DROP_STEP) {
			drop(s + mark, s + i);
			mark = i;
		}
		next = nextline(s, n, i);
		e = next;
		if (e > i && s[e - 1] == '\n')
			e--;
		if (e > i && s[e - 1] == '\r')
			e--;
		while (e > i && iswsp((unsigned char)s[e - 1]))
			e--;
		soft = e > i && s[e - 1] == '=';
		if (soft)
			e--;
		for (k = i; k < e; k++) {
			if (s[k] == '=' && k + 2 < e &&
			    (h1 = hexval((unsigned char)s[k + 1])) >= 0 &&
			    (h2 = hexval((unsigned char)s[k + 2])) >= 0) {
				dec_putc(d, h1 << 4 | h2);
				k += 2;
				continue;
			}
			dec_putc(d, s[k]);
		}
		if (!soft && next > i && s[next - 1] == '\n') {
			dec_putc(d, '\r');
			dec_putc(d, '\n');
		}
		i = next;
	}
	dec_flush(d);
}

void
transfer_decode(int kind, const char *s, size_t n, struct dec *d)
{
	if (kind == SEG_B64)
		b64_decode(s, n, d);
	else
		qp_decode(s, n, d);
}

static void
count_emit(void *arg, const char *p, size_t n)
{
	*(uint64_t *)arg += n;
}

/* the decoded length of s */
uint64_t
decoded_size(int kind, const char *s, size_t n)
{
	struct dec *d = xmalloc(sizeof(*d));
	uint64_t size = 0;

	d->out = count_emit;
	d->arg = &size;
	d->stop = NULL;
	d->len = 0;
	transfer_decode(kind, s, n, d);
	free(d);
	return size;
}

/* ---- charsets and encoded words (RFC 2047) ---------------------------- */

/* charsets that are UTF-8, or that are read as they are */
int
passthrough(const char *cs)
{
	return !*cs || !ascii_casecmp(cs, "utf-8") ||
	    !ascii_casecmp(cs, "utf8") || !ascii_casecmp(cs, "us-ascii") ||
	    !ascii_casecmp(cs, "ascii");
}

/* n octets through iconv to out; an invalid octet becomes U+FFFD.  Returns
 * how many octets at the end are an incomplete sequence, not converted */
size_t
conv_run(iconv_t cd, const char *s, size_t n, mime_emit out, void *arg)
{
	char obuf[CHUNK], *ip = (char *)s, *op;
	size_t il = n, ol, r;

	while (il) {
		op = obuf;
		ol = sizeof(obuf);
		r = iconv(cd, &ip, &il, &op, &ol);
		if (op > obuf)
			out(arg, obuf, op - obuf);
		if (r != (size_t)-1 || errno == E2BIG)
			continue;
		if (errno == EINVAL && il < 16)
			return il;
		out(arg, "\xef\xbf\xbd", 3);
		ip++;
		il--;
		iconv(cd, NULL, NULL, NULL, NULL);
	}
	return 0;
}

/* the encoded text of an encoded-word, B or Q, decoded into raw */
static void
ew_text(int enc, const char *t, const char *e, struct buf *raw)
{
	struct base64 b = { 0 };
	unsigned char *out;
	size_t o;
	int h1, h2;

	if (enc == 'Q') {
		for (; t < e; t++) {
			if (*t == '_')
				buf_addc(raw, ' ');
			else if (*t == '=' && t + 2 < e &&
			    (h1 = hexval((unsigned char)t[1])) >= 0 &&
			    (h2 = hexval((unsigned char)t[2])) >= 0) {
				buf_addc(raw, h1 << 4 | h2);
				t += 2;
			} else
				buf_addc(raw, *t);
		}
		return;
	}
	buf_grow(raw, (e - t) / 4 * 3 + 3);
	out = (unsigned char *)raw->p + raw->len;
	o = base64_step(&b, t, e - t, out);
	o += base64_end(&b, out + o);
	raw->len += o;
	raw->p[raw->len] = '\0';
}

/* the length of the RFC 2047 encoded-word at s, or 0; its charset goes
 * to cs and, unless raw is NULL, its decoded octets to raw */
static size_t
encoded_word(const char *s, size_t n, struct buf *raw, char *cs, size_t cssz)
{
	const char *q1, *q2, *q3, *e = s + n, *t;
	size_t len;
	int enc;

	if (n < 8 || s[0] != '=' || s[1] != '?')
		return 0;
	if (!(q1 = memchr(s + 2, '?', n - 2)) || q1 + 3 >= e || q1[2] != '?')
		return 0;
	enc = upper((unsigned char)q1[1]);
	if (enc != 'B' && enc != 'Q')
		return 0;
	q2 = q1 + 2;
	for (q3 = q2 + 1; q3 + 1 < e && !(q3[0] == '?' && q3[1] == '='); q3++)
		if (*q3 == ' ' || *q3 == '\t' || *q3 == '\r' || *q3 == '\n')
			return 0;
	if (q3 + 1 >= e)
		return 0;
	len = q1 - (s + 2);
	if ((t = memchr(s + 2, '*', len)))	/* RFC 2231 language */
		len = t - (s + 2);
	if (len == 0 || len >= cssz)
		return 0;
	memcpy(cs, s + 2, len);
	cs[len] = '\0';
	if (raw)
		ew_text(enc, q2 + 1, q3, raw);
	return q3 + 2 - s;
}

static void
buf_emit(void *arg, const char *p, size_t n)
{
	buf_add(arg, p, n);
}

int
mime_to_utf8(struct buf *b, const char *charset, const char *s, size_t n)
{
	iconv_t cd;
	size_t left;

	if (passthrough(charset)) {
		buf_add(b, s, n);
		return 0;
	}
	if ((cd = iconv_open("UTF-8", charset)) == (iconv_t)-1)
		return -1;
	left = conv_run(cd, s, n, buf_emit, b);
	if (left)
		buf_add(b, "\xef\xbf\xbd", 3);
	iconv_close(cd);
	return 0;
}

/* decoded octets of one charset to UTF-8; raw octets when the charset
 * is unknown */
static void
flush_words(struct buf *out, const char *cs, struct buf *raw)
{
	if (raw->len && mime_to_utf8(out, cs, raw->p, raw->len) < 0)
		buf_add(out, raw->p, raw->len);
	buf_reset(raw);
}

/* an unfolded header value with its encoded words decoded to UTF-8;
 * adjacent words of one charset are converted together (a character may
 * be split across them), and white space between encoded words is
 * dropped */
void
decode_header(struct buf *out, const char *s, size_t n)
{
	struct buf raw = { 0 }, word = { 0 };
	char cs[64], pcs[64] = "";
	const char *q;
	size_t i = 0, w, j;

	while (i < n) {
		buf_reset(&word);
		if (s[i] != '=' || !(w = encoded_word(s + i, n - i, &word, cs,
		    sizeof(cs)))) {
			flush_words(out, pcs, &raw);
			/* as it is up to the next '=', where a word may start */
			q = memchr(s + i + 1, '=', n - i - 1);
			j = q ? (size_t)(q - s) : n;
			buf_add(out, s + i, j - i);
			i = j;
			continue;
		}
		if (strcmp(cs, pcs))
			flush_words(out, pcs, &raw);
		memcpy(pcs, cs, sizeof(cs));
		buf_add(&raw, word.p, word.len);
		i += w;
		for (j = i; j < n && (iswsp((unsigned char)s[j]) ||
		    s[j] == '\r' || s[j] == '\n'); j++)
			;
		if (j > i && j < n && encoded_word(s + j, n - j, NULL, cs,
		    sizeof(cs)))
			i = j;
	}
	flush_words(out, pcs, &raw);
	buf_free(&raw);
	buf_free(&word);
}

void
mime_decode(struct buf *out, const char *s, size_t n)
{
	decode_header(out, n ? s : "", n);
}
