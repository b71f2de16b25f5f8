/* mimesect.c: the octets of a fetch section (RFC 3501 6.4.5, RFC 3516):
 * a list of ranges of the message, each given as it is in CRLF form, as
 * a literal CRLF, or transfer-decoded for BINARY; their sizes are known
 * before the first octet is sent. */
#include <stdlib.h>
#include <string.h>

#include "mimeint.h"
#include "util.h"

struct seg {
	int kind;	/* SEG_... */
	size_t off, len;	/* range of the message, or of a literal */
	uint64_t size;	/* octets the segment gives */
};

struct sectiondata {
	const char *p;
	int binary;	/* a literal8: NUL goes out as it is */
	struct seg *v;
	size_t nv, cap;
};

static void
seg_add(struct sectiondata *sd, int kind, size_t off, size_t len)
{
	struct seg *g;

	/* ranges start at line starts, so sizes of adjacent ranges add up */
	if (kind == SEG_RAW && sd->nv && sd->v[sd->nv - 1].kind == SEG_RAW &&
	    sd->v[sd->nv - 1].off + sd->v[sd->nv - 1].len == off) {
		g = &sd->v[sd->nv - 1];
		g->len += len;
		g->size += mime_crlf_size(sd->p + off, len);
		return;
	}
	if (sd->nv == sd->cap) {
		sd->cap = sd->cap ? sd->cap * 2 : 4;
		sd->v = xreallocarray(sd->v, sd->cap, sizeof(*sd->v));
	}
	g = &sd->v[sd->nv++];
	g->kind = kind;
	g->off = off;
	g->len = len;
	switch (kind) {
	case SEG_RAW:
		g->size = mime_crlf_size(sd->p + off, len);
		break;
	case SEG_LIT:
		g->size = len;
		break;
	default:
		g->size = decoded_size(kind, sd->p + off, len);
	}
}

static int
field_listed(const struct section *s, const struct field *f)
{
	int i;

	for (i = 0; i < s->nfields; i++)
		if (f->val && eqstr(f->name, f->nlen, s->fields[i]))
			return 1;
	return 0;
}

/* HEADER.FIELDS and HEADER.FIELDS.NOT of the header [hs, he) */
static void
fields_select(struct sectiondata *sd, struct mime *m, const struct section *s,
    size_t hs, size_t he)
{
	struct fwalk w;
	struct field f;
	int want = s->text == SEC_FIELDS;

	fwalk_init(&w, m, hs, he);
	while (fwalk_next(&w, &f)) {
		if (field_listed(s, &f) != want)
			continue;
		seg_add(sd, SEG_RAW, f.start, f.end - f.start);
		if (f.end == f.start || sd->p[f.end - 1] != '\n')
			seg_add(sd, SEG_LIT, 0, 2);
	}
	seg_add(sd, SEG_LIT, 0, 2);
}

/* The part a section names; -1 when there is none.  Each number picks a
 * part of the multipart it is in: the message's body, a multipart part
 * itself, or the body of an encapsulated message.  The body of a message
 * that is no multipart is its part 1 (RFC 3501 6.4.5); a leaf part has
 * no parts of its own. */
static int
resolve(const struct tree *t, const struct section *s, int *part)
{
	int m = 0, pt = -1, i, c;
	unsigned k;

	for (i = 0; i < s->npart; i++) {
		if (pt >= 0) {
			if (t->v[pt].kind == MIME_MULTI)
				m = pt;
			else if (t->v[pt].kind == MIME_MESSAGE &&
			    t->v[pt].child >= 0)
				m = t->v[pt].child;
			else
				return -1;
			pt = -1;
		}
		if (t->v[m].kind == MIME_MULTI) {
			for (c = t->v[m].child, k = 1; c >= 0 &&
			    k < s->part[i]; k++)
				c = t->v[c].next;
			if (c < 0)
				return -1;
			pt = c;
		} else if (s->part[i] == 1) {
			pt = m;
		} else {
			return -1;
		}
	}
	*part = pt;
	return 0;
}

/* the ranges of a HEADER, TEXT or HEADER.FIELDS of message m */
static void
message_text(struct sectiondata *sd, struct mime *m, const struct section *s,
    size_t hdr, size_t body, size_t end)
{
	switch (s->text) {
	case SEC_HEADER:
		seg_add(sd, SEG_RAW, hdr, body - hdr);
		break;
	case SEC_TEXT:
		seg_add(sd, SEG_RAW, body, end - body);
		break;
	default:
		fields_select(sd, m, s, hdr, body);
	}
}

/* the ranges of a section that starts with part numbers; -1 for BINARY
 * of a part whose transfer encoding is unknown */
static int
part_text(struct sectiondata *sd, struct mime *m, const struct section *s,
    int binary)
{
	struct tree *t = mime_tree(m);
	const struct mime_part *pt;
	struct buf cte = { 0 };
	int part, kind = SEG_RAW;

	if (resolve(t, s, &part) < 0)
		return 0;
	pt = &t->v[part];
	switch (s->text) {
	case SEC_ALL:
		if (binary) {
			cte_get(m->p, pt->hdr, pt->body, &cte);
			kind = cte_kind(&cte);
			buf_free(&cte);
		}
		if (kind < 0)
			return -1;
		seg_add(sd, kind, pt->body, pt->end - pt->body);
		break;
	case SEC_MIME:
		seg_add(sd, SEG_RAW, pt->hdr, pt->body - pt->hdr);
		break;
	default:
		if (pt->kind != MIME_MESSAGE || pt->child < 0)
			break;
		pt = &t->v[pt->child];
		message_text(sd, m, s, pt->hdr, pt->body, pt->end);
	}
	return 0;
}

struct sectiondata *
mime_section(struct mime *m, const struct section *s, int binary,
    uint64_t *size)
{
	struct sectiondata *sd = xcalloc(1, sizeof(*sd));
	size_t i;

	sd->p = m->p;
	sd->binary = binary;
	/* the whole message needs no part tree */
	if (!s->npart && s->text == SEC_ALL)
		seg_add(sd, SEG_RAW, 0, m->n);
	else if (!s->npart)
		message_text(sd, m, s, 0, mime_header_end(m), m->n);
	else if (part_text(sd, m, s, binary) < 0) {
		section_close(sd);
		return NULL;
	}
	for (*size = 0, i = 0; i < sd->nv; i++)
		*size += sd->v[i].size;
	return sd;
}

struct sectiondata *
section_open(const char *p, size_t n, const struct section *s, int binary,
    uint64_t *size)
{
	struct mime *m = mime_open(p, n);
	struct sectiondata *sd = mime_section(m, s, binary, size);

	mime_close(m);
	return sd;
}

void
section_write(struct sectiondata *sd, uint64_t from, uint64_t count,
    mime_emit emit, void *arg)
{
	struct clip c;
	struct dec *d;
	const struct seg *g;
	size_t i;

	clip_init(&c, from, count, emit, arg);
	for (i = 0; i < sd->nv && !c.done; i++) {
		g = &sd->v[i];
		if (c.pos + g->size <= c.from) {
			c.pos += g->size;
			continue;
		}
		switch (g->kind) {
		case SEG_RAW:
			crlf_put(sd->p + g->off, g->len, &c, !sd->binary);
			break;
		case SEG_LIT:
			clip_put(&c, "\r\n", g->len);
			break;
		default:
			d = xmalloc(sizeof(*d));
			d->out = clip_emit;
			d->arg = &c;
			d->stop = &c.done;
			d->len = 0;
			transfer_decode(g->kind, sd->p + g->off, g->len, d);
			free(d);
		}
	}
}

void
section_close(struct sectiondata *sd)
{
	if (!sd)
		return;
	free(sd->v);
	free(sd);
}
