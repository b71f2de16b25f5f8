/* mimeint.h: what the files of the message code (mime*.c) share among
 * themselves; nothing outside them includes it. */
#ifndef MIMEINT_H
#define MIMEINT_H
#include <iconv.h>

#include "mime.h"

#define MIME_DEPTH	32	/* nested multiparts and messages */
#define CHUNK		8192	/* decoding and conversion step */
#define DROP_STEP	(1 << 20)	/* scans give back pages this often */
#define CT_KEEP		64	/* parts whose Content-Type a tree keeps */

static inline int
iswsp(int c)
{
	return c == ' ' || c == '\t';
}

static inline int
isdigit_(int c)
{
	return c >= '0' && c <= '9';
}

/* --- mime.c: scans, output, decoding --- */

/* give back the pages of a file mapping a scan has passed */
void drop(const char *from, const char *to);

/* where section output goes: the window [from, end) of the octets that
 * pass through clip_put() */
struct clip {
	uint64_t pos, from, end;
	mime_emit emit;
	void *arg;
	int done;
};
void clip_init(struct clip *, uint64_t from, uint64_t count, mime_emit,
    void *arg);
void clip_put(struct clip *, const char *p, size_t n);
void clip_emit(void *arg, const char *p, size_t n);
/* p in CRLF form into the window; text: a NUL goes out as 0x80 */
void crlf_put(const char *p, size_t n, struct clip *, int text);
/* the LFs of [p, p + n), and of them those after a CR in the range */
void lf_census(const char *p, size_t n, uint64_t *lf, uint64_t *crlf);

/* how a range of the message gives its octets: as it is (CRLF form), a
 * literal CRLF, or transfer-decoded */
enum { SEG_RAW, SEG_LIT, SEG_B64, SEG_QP };

/* a decoder's output, collected into chunks */
struct dec {
	mime_emit out;
	void *arg;
	const int *stop;	/* set when no more output is wanted */
	size_t len;
	char buf[CHUNK];
};
/* s decoded as kind (SEG_B64 or SEG_QP) into d, and its decoded length */
void transfer_decode(int kind, const char *s, size_t n, struct dec *d);
uint64_t decoded_size(int kind, const char *s, size_t n);

/* charsets that are UTF-8, or that are read as they are */
int passthrough(const char *cs);
/* n octets through iconv to out; how many at the end were left over */
size_t conv_run(iconv_t, const char *s, size_t n, mime_emit out,
    void *arg);
/* an unfolded header value with its encoded words decoded to UTF-8 */
void decode_header(struct buf *out, const char *s, size_t n);

/* --- mimehdr.c: header fields and values --- */

int eqstr(const char *s, size_t n, const char *t);
size_t nextline(const char *p, size_t n, size_t i);
size_t blankline(const char *p, size_t n, size_t i);
size_t header_end(const char *p, size_t n, size_t i);

/* a header field: [start, end) with its folded lines and line end */
struct field {
	size_t start, end;
	const char *name, *val;	/* val NULL: a line without a colon */
	size_t nlen, vlen;	/* vlen excludes the final line end */
};
int field_next(const char *p, size_t hend, size_t *i, struct field *);
int field_is(const struct field *, const char *name);
void unfold(struct buf *, const char *v, size_t n);
int header_get(const char *p, size_t hs, size_t he, const char *name,
    struct buf *out);

/* a MIME header value being read */
struct lex {
	const char *s, *e;
};
int mtoken(struct lex *, struct buf *out);

void ctype_parse(struct mime_ctype *, const char *p, size_t hs, size_t he,
    const char *field, int disp);
void ctype_free(struct mime_ctype *);
void cte_get(const char *p, size_t hs, size_t he, struct buf *out);
int cte_kind(const struct buf *cte);

/* --- mimepart.c: the part tree --- */

/* the message of a struct mime with its part tree (parsed on first use) */
struct tree {
	struct mime *m;
	const char *p;
	size_t n;
	struct mime_part *v;
	int nv, cap;
	/* boundaries of the open multiparts, innermost last, while parsing */
	char *bnd[MIME_DEPTH];
	size_t blen[MIME_DEPTH];
	int nb;
	/* the Content-Type of each of the first parts as parsing read it,
	 * until mime_describe takes it */
	struct mime_ctype *ct[CT_KEEP];
};
struct mime {
	const char *p;
	size_t n;
	struct tree *t;
	/* the message's header: where it ends and its fields, found once
	 * (hf NULL: too many fields to keep a list of) */
	int hknown;
	size_t hend;
	struct field *hf;
	size_t nhf;
};
struct tree *mime_tree(struct mime *);
/* where the message's header ends */
size_t mime_header_end(struct mime *);

/* the fields of the header [hs, he) of m one by one: the message's own
 * header from the list found the first time, any other from its bytes */
struct fwalk {
	const char *p;
	size_t i, he;
	const struct field *v, *ve;	/* the list, or NULL */
};
void fwalk_init(struct fwalk *, struct mime *, size_t hs, size_t he);
int fwalk_next(struct fwalk *, struct field *);

#endif
