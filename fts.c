/* fts.c: the full-text index of a folder (fts.h): trigrams of the text
 * the content keys read, and that text itself.
 *
 * The index is a few immutable segment files beside a manifest naming
 * them (FTS_FILE).  A segment holds, for up to some ten thousand
 * messages, the text mime_search_text gives, folded as the keys fold it
 * and made valid UTF-8 (clean), column by column (header blocks, text
 * parts, Subject, From, To, Cc, Bcc); and for each octet trigram of that
 * text the messages holding it (or, for one most of them hold, those
 * lacking it).  A needle's trigrams narrow the messages to a few, and a
 * substring search of their stored text decides: the answer is exact for
 * every needle, short ones included, without opening a message.
 * Needles the stored text cannot answer (invalid UTF-8, holding SEP or
 * U+FFFD, empty) go back to reading the messages.
 *
 * New messages go into a new segment (merged with the last one while it
 * is small); gone ones stay until they are the majority, then the index
 * is built afresh.  Segments are written to a temporary name, synced and
 * renamed, then the manifest the same way: a crash leaves the old index.
 * A segment whose tables do not check out is logged and the index rebuilt. */
#ifdef WITH_FTS
#include <sys/types.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fts.h"
#include "maildir.h"
#include "mime.h"
#include "unicode.h"
#include "util.h"

#define SEP		'\001'	/* between pieces of text */
#define PATHLEN		(PATH_MAX + 320)	/* the folder and a name in it */
#define SEG_MAGIC	"IMFTSEG3"
#define SEG_SEED	0x3347455354464d49ULL	/* the magic's octets */
#define CHECK_ENTRIES	512	/* table entries read at once to check */
#define SEG_OLD		"IMFTSEG"	/* ... of any version */
#define MANIFEST_MAGIC	"imapd-fts 1"
#define SEG_MEMORY	(20 << 20)	/* what building a segment may hold */
#define SEG_SMALL	2000	/* a last segment this small takes new mail */
#define STALE_MIN	1000	/* entries of gone messages tolerated anyway */
#define PROGRESS_MIN	1000	/* an update this long tells its progress
				   from the start, ... */
#define TELL_MS		1000	/* ... any update every this many ms */
#define IDLE_MERGE	256	/* new mail while idle joins a last segment
				   this small */
#define IDLE_MERGE_MAX	1024	/* two small segments merged while idle */

/* header fields with a column of their own; others are looked for in the
 * header blocks, and confirmed from the message */
static const char *const fieldcol[] = {
	"Subject", "From", "To", "Cc", "Bcc",
};
#define NFIELDS LEN(fieldcol)
#define OTHER (2 + NFIELDS)	/* "name:value\n" of the other fields */
#define NCOLS (3 + NFIELDS)	/* head, body, the fields, the others */
#define DOC_UNSURE 1		/* OTHER cannot tell one field from the next */

/* --- the segment file: header | text | docs | trigrams | postings ------- */
struct seghdr {
	char magic[8];
	uint32_t uidvalidity, ndocs, ntri, pad;
	uint64_t text_off, docs_off, tri_off, post_off, size;
	uint64_t sum;		/* sum_bytes of the tables and this header (sum 0) */
};

struct segdoc {
	uint32_t uid;
	uint32_t len[NCOLS];	/* the columns, one after the other */
	uint32_t flags;		/* DOC_UNSURE */
	uint64_t text;		/* offset in the text area */
};

struct segtri {
	uint32_t key;		/* three octets */
	uint32_t n;		/* messages that hold it */
	uint64_t off;		/* postings: varint deltas of doc numbers, */
				/* of those that lack it when dense() */
	uint64_t len;
	uint64_t sum;		/* sum_bytes of the postings */
};

struct seg {
	char name[64];
	unsigned char *map;
	size_t size;
	struct stat st;		/* of the file mapped */
	const struct seghdr *h;
	const struct segdoc *docs;
	const struct segtri *tri;
	const unsigned char *post;
	const char *text;
	uint64_t ntext, npost;
};

/* the index of the folder last searched, kept between commands */
static struct {
	char dir[PATH_MAX];
	uint32_t uidvalidity;
	struct seg *segs;
	size_t nsegs;
	struct stat mst;	/* of the manifest when read */
	uint32_t *uids;		/* indexed, ascending */
	size_t nuids;
	int lockfd;
	int damaged;		/* found while searching: rebuild */
	int current;		/* fts_idle found nothing to do ... */
	unsigned long changes;	/* ... at this folder_changes */
} ix = { .lockfd = -1 };

static int
disabled(void)
{
	const char *e = getenv("IMAPD_FTS");

	return e && !strcmp(e, "off");
}

static void
path_of(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", ix.dir, name);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* a trigram in over half the messages of a segment: its postings name
 * those that lack it, so that no list is longer than half the segment
 * and every trigram still narrows the candidates */
static int
dense(uint32_t n, uint32_t ndocs)
{
	return n > ndocs / 2;
}

/* the segments mostly hold ascending UIDs one after the other: what they
 * give is often sorted already */
static void
sort_u32(uint32_t *v, size_t n)
{
	size_t i;

	for (i = 1; i < n && v[i - 1] < v[i]; i++)
		;
	if (i < n)
		qsort(v, n, sizeof(*v), cmp_u32);
}

/* --- the text ------------------------------------------------------------ */

/* text as the index keeps it: in i;unicode-casemap form as the content
 * keys match it (so valid UTF-8, each invalid octet U+FFFD), NUL (the end
 * of a piece) SEP.  A needle found in the keys' form is found here at the
 * same characters, and the other way round when it holds neither SEP nor
 * U+FFFD. */
static void
clean(struct buf *out, struct buf *in)
{
	struct buf map = { 0 };
	size_t i;

	if (!in->len)
		return;
	casemap(&map, in->p, in->len);
	for (i = 0; i < map.len; i++)
		buf_addc(out, map.p[i] == '\0' ? SEP : map.p[i]);
	buf_free(&map);
}

struct doctext {
	struct buf col[NCOLS];
	uint32_t flags;
};

static void
add_field(void *arg, const char *name, size_t nlen, const char *val,
    size_t vlen)
{
	struct doctext *d = arg;
	size_t i;

	for (i = 0; i < NFIELDS; i++) {
		if (strlen(fieldcol[i]) != nlen ||
		    ascii_ncasecmp(name, fieldcol[i], nlen))
			continue;
		buf_add(&d->col[2 + i], val, vlen);
		buf_addc(&d->col[2 + i], '\0');
		return;
	}
	for (i = 0; i < nlen; i++)
		if (name[i] <= ' ' || name[i] >= 0x7f || name[i] == ':')
			d->flags |= DOC_UNSURE;
	if (memchr(val, '\0', vlen) || memchr(val, SEP, vlen))
		d->flags |= DOC_UNSURE;
	buf_add(&d->col[OTHER], name, nlen);
	buf_addc(&d->col[OTHER], ':');
	buf_add(&d->col[OTHER], val, vlen);
	buf_addc(&d->col[OTHER], '\0');
}

/* the cleaned columns of message i of f into out; -1 when it is gone */
static int
doc_text(struct folder *f, size_t i, struct buf *out, uint32_t *len,
    uint32_t *flags)
{
	struct doctext d;
	struct msgmap mm;
	size_t c, before;

	if (msg_map(f, i, &mm) < 0)
		return -1;
	memset(&d, 0, sizeof(d));
	mime_search_text(mm.p, mm.len, &d.col[0], &d.col[1], add_field, &d);
	msg_unmap(&mm);
	for (c = 0; c < NCOLS; c++) {
		before = out->len;
		clean(out, &d.col[c]);
		len[c] = out->len - before;
		buf_free(&d.col[c]);
	}
	*flags = d.flags;
	return 0;
}

/* --- building a segment ---------------------------------------------------- */

struct plist {
	uint32_t key, n, last;	/* last: doc number + 1 of the last entry */
	uint32_t len, cap;
	unsigned char *p;
};
/* what a list costs beyond its postings: itself in an array that
 * doubles, the allocator's share of its buffer */
#define LIST_COST (2 * sizeof(struct plist) + 32)
/* the lists by key: a block of 256 slots (list index + 1) for each two
 * first octets found, a direct look-up for every trigram of the text */
#define DIR_BLOCK 256

struct builder {
	FILE *fp;
	char tmp[PATHLEN];
	uint32_t **dir;		/* [key >> 8][key & 0xff]: list index + 1 */
	struct plist *l;
	size_t nl, capl, mem;
	struct segdoc *docs;
	size_t ndocs, capd;
	uint64_t text;		/* text written so far */
};

static void
put_varint(struct plist *pl, uint32_t v)
{
	if (pl->len + 5 > pl->cap) {
		pl->cap = pl->cap ? pl->cap * 2 : 8;
		pl->p = xrealloc(pl->p, pl->cap);
	}
	while (v >= 0x80) {
		pl->p[pl->len++] = (v & 0x7f) | 0x80;
		v >>= 7;
	}
	pl->p[pl->len++] = v;
}

static struct plist *
b_list(struct builder *b, uint32_t key)
{
	uint32_t **blk = &b->dir[key >> 8];

	if (!*blk) {
		*blk = xcalloc(DIR_BLOCK, sizeof(**blk));
		b->mem += DIR_BLOCK * sizeof(**blk);
	}
	if ((*blk)[key & 0xff])
		return &b->l[(*blk)[key & 0xff] - 1];
	if (b->nl == b->capl) {
		b->capl = b->capl ? b->capl * 2 : 4096;
		b->l = xreallocarray(b->l, b->capl, sizeof(*b->l));
	}
	memset(&b->l[b->nl], 0, sizeof(*b->l));
	b->l[b->nl].key = key;
	(*blk)[key & 0xff] = ++b->nl;
	b->mem += LIST_COST;
	return &b->l[b->nl - 1];
}

static int
b_open(struct builder *b)
{
	static unsigned seq;
	struct seghdr h;
	int fd;

	memset(b, 0, sizeof(*b));
	snprintf(b->tmp, sizeof(b->tmp), "%s/tmp/imapd-fts.%ld.%d.%u", ix.dir,
	    (long)time(NULL), (int)getpid(), seq++);
	if ((fd = open(b->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) <
	    0 || !(b->fp = fdopen(fd, "w+"))) {
		if (fd >= 0)
			close(fd);
		logmsg(LOG_WARNING, "full-text index %s: %m", b->tmp);
		return -1;
	}
	memset(&h, 0, sizeof(h));
	fwrite(&h, sizeof(h), 1, b->fp);
	b->dir = xcalloc(1 << 16, sizeof(*b->dir));
	b->mem = (1 << 16) * sizeof(*b->dir);
	return 0;
}

/* one message's cleaned columns (text, len[]) into the segment */
static void
b_add(struct builder *b, uint32_t uid, const char *text, const uint32_t *len,
    uint32_t flags)
{
	struct segdoc *d;
	struct plist *pl;
	size_t i, n = 0, c;
	uint32_t key, doc = b->ndocs;

	for (c = 0; c < NCOLS; c++)
		n += len[c];
	if (b->ndocs == b->capd) {
		b->capd = b->capd ? b->capd * 2 : 1024;
		b->docs = xreallocarray(b->docs, b->capd, sizeof(*b->docs));
	}
	d = &b->docs[b->ndocs++];
	memset(d, 0, sizeof(*d));
	d->uid = uid;
	d->flags = flags;
	memcpy(d->len, len, sizeof(d->len));
	d->text = b->text;
	fwrite(text, 1, n, b->fp);
	b->text += n;
	for (i = 0; i + 2 < n; i++) {
		key = (unsigned char)text[i] << 16 |
		    (unsigned char)text[i + 1] << 8 | (unsigned char)text[i + 2];
		pl = b_list(b, key);
		if (pl->last == doc + 1)
			continue;
		b->mem -= pl->cap;
		put_varint(pl, pl->n ? doc - (pl->last - 1) : doc);
		b->mem += pl->cap;
		pl->last = doc + 1;
		pl->n++;
	}
}

static size_t
get_varint(const unsigned char *p, size_t n, size_t *i, uint32_t *v)
{
	unsigned shift = 0;

	*v = 0;
	while (*i < n && shift < 32) {
		*v |= (uint32_t)(p[*i] & 0x7f) << shift;
		if (!(p[(*i)++] & 0x80))
			return 1;
		shift += 7;
	}
	return 0;
}

/* the postings of a dense() list: the doc numbers of [0, ndocs) it does
 * not name, instead of those it names (pl->n stays their count) */
static void
b_invert(struct plist *pl, uint32_t ndocs)
{
	struct plist out = { 0 };
	size_t i = 0;
	uint32_t m, d = 0, v, next = 0, prev = 0;

	for (m = 0; m <= pl->n; m++) {
		if (m == pl->n)
			d = ndocs;
		else if (get_varint(pl->p, pl->len, &i, &v))
			d = m ? d + v : v;
		for (; next < d; next++) {
			put_varint(&out, out.n++ ? next - prev : next);
			prev = next;
		}
		next = d + 1;
	}
	free(pl->p);
	pl->p = out.p;
	pl->len = out.len;
	pl->cap = out.cap;
}

static int
cmp_plist(const void *a, const void *b)
{
	const struct plist *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

static void
b_free(struct builder *b)
{
	size_t i;

	for (i = 0; i < b->nl; i++)
		free(b->l[i].p);
	free(b->l);
	for (i = 0; b->dir && i < 1 << 16; i++)
		free(b->dir[i]);
	free(b->dir);
	free(b->docs);
	if (b->fp) {
		fclose(b->fp);
		unlink(b->tmp);
	}
	memset(b, 0, sizeof(*b));
}

/* the tables after the text, the header last; then sync and rename to a
 * fresh name, which goes to name */
static int
b_finish(struct builder *b, char *name, size_t size)
{
	static unsigned seq;
	struct seghdr h;
	struct segtri t;
	struct sum sum;
	uint64_t off = 0;
	size_t i;
	char path[PATHLEN];

	qsort(b->l, b->nl, sizeof(*b->l), cmp_plist);
	for (i = 0; i < b->nl; i++)
		if (dense(b->l[i].n, b->ndocs))
			b_invert(&b->l[i], b->ndocs);
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, SEG_MAGIC, 8);
	h.uidvalidity = ix.uidvalidity;
	h.ndocs = b->ndocs;
	h.ntri = b->nl;
	h.text_off = sizeof(h);
	h.docs_off = h.text_off + (b->text + 7) / 8 * 8;	/* aligned */
	fwrite("\0\0\0\0\0\0\0", 1, h.docs_off - h.text_off - b->text, b->fp);
	h.tri_off = h.docs_off + b->ndocs * sizeof(struct segdoc);
	h.post_off = h.tri_off + b->nl * sizeof(struct segtri);
	sum_init(&sum, SEG_SEED);
	sum_feed(&sum, b->docs, b->ndocs * sizeof(*b->docs));
	fwrite(b->docs, sizeof(*b->docs), b->ndocs, b->fp);
	for (i = 0; i < b->nl; i++) {
		memset(&t, 0, sizeof(t));
		t.key = b->l[i].key;
		t.n = b->l[i].n;
		t.off = off;
		t.len = b->l[i].len;
		t.sum = sum_bytes(b->l[i].p, t.len, SEG_SEED);
		off += t.len;
		sum_feed(&sum, &t, sizeof(t));
		fwrite(&t, sizeof(t), 1, b->fp);
	}
	for (i = 0; i < b->nl; i++)
		if (b->l[i].len)	/* not a dense list's empty one */
			fwrite(b->l[i].p, 1, b->l[i].len, b->fp);
	h.size = h.post_off + off;
	sum_feed(&sum, &h, sizeof(h));
	h.sum = sum_end(&sum);
	snprintf(name, size, "imapd-fts.%lx%x%x.seg", (long)time(NULL),
	    (unsigned)getpid(), seq++);
	path_of(path, sizeof(path), name);
	if (fseek(b->fp, 0, SEEK_SET) < 0 || fwrite(&h, sizeof(h), 1, b->fp)
	    != 1 || fflush(b->fp) || fsync(fileno(b->fp)) < 0 ||
	    rename(b->tmp, path) < 0) {
		logmsg(LOG_WARNING, "full-text index %s: %m", path);
		return -1;
	}
	fclose(b->fp);
	b->fp = NULL;
	return 0;
}

/* --- reading segments -------------------------------------------------- */

static void
seg_close(struct seg *s)
{
	if (s->map)
		munmap(s->map, s->size);
	memset(s, 0, sizeof(*s));
}

/* the docs table, read through a small buffer into the sum and checked:
 * what a check reads is not mapped into the process */
static int
docs_check(const struct seg *s, int fd, struct sum *sum)
{
	struct segdoc d[CHECK_ENTRIES];
	uint64_t i, n, k, end;
	size_t c;

	for (i = 0; i < s->h->ndocs; i += n) {
		n = MIN(CHECK_ENTRIES, s->h->ndocs - i);
		if (read_at(fd, d, n * sizeof(*d), s->h->docs_off +
		    i * sizeof(*d)) < 0)
			return -1;
		sum_feed(sum, d, n * sizeof(*d));
		for (k = 0; k < n; k++) {
			for (end = d[k].text, c = 0; c < NCOLS; c++)
				end += d[k].len[c];
			if (end > s->ntext || end < d[k].text)
				return -1;
		}
	}
	return 0;
}

/* the trigram table likewise: keys ascending, postings in the file */
static int
tri_check(const struct seg *s, int fd, struct sum *sum)
{
	struct segtri t[CHECK_ENTRIES];
	uint64_t i, n, k;
	uint32_t last = 0;

	for (i = 0; i < s->h->ntri; i += n) {
		n = MIN(CHECK_ENTRIES, s->h->ntri - i);
		if (read_at(fd, t, n * sizeof(*t), s->h->tri_off +
		    i * sizeof(*t)) < 0)
			return -1;
		sum_feed(sum, t, n * sizeof(*t));
		for (k = 0; k < n; k++) {
			if (t[k].off > s->npost || t[k].len > s->npost -
			    t[k].off || t[k].n > s->h->ndocs ||
			    (i + k && t[k].key <= last))
				return -1;
			last = t[k].key;
		}
	}
	return 0;
}

/* the header's bounds, then the tables under their sum; the text and
 * the postings are checked where a search reads them */
static int
seg_check(struct seg *s, int fd)
{
	const struct seghdr *h = s->h;
	struct seghdr c;
	struct sum sum;

	if (s->size < sizeof(*h) || memcmp(h->magic, SEG_MAGIC, 8) ||
	    h->size != s->size || h->text_off != sizeof(*h) ||
	    h->docs_off < h->text_off || h->docs_off > s->size ||
	    h->docs_off % 8 ||
	    (s->size - h->docs_off) / sizeof(struct segdoc) < h->ndocs ||
	    h->tri_off != h->docs_off + h->ndocs * sizeof(struct segdoc) ||
	    (s->size - h->tri_off) / sizeof(struct segtri) < h->ntri ||
	    h->post_off != h->tri_off + h->ntri * sizeof(struct segtri))
		return -1;
	s->docs = (const struct segdoc *)(s->map + h->docs_off);
	s->tri = (const struct segtri *)(s->map + h->tri_off);
	s->text = (const char *)s->map + h->text_off;
	s->ntext = h->docs_off - h->text_off;
	s->post = s->map + h->post_off;
	s->npost = h->size - h->post_off;
	c = *h;
	c.sum = 0;
	sum_init(&sum, SEG_SEED);
	if (docs_check(s, fd, &sum) < 0 || tri_check(s, fd, &sum) < 0)
		return -1;
	sum_feed(&sum, &c, sizeof(c));
	return sum_end(&sum) == h->sum ? 0 : -1;
}

static int
seg_open(struct seg *s, const char *name)
{
	char path[PATHLEN];
	struct stat st;
	int fd, old;

	memset(s, 0, sizeof(*s));
	if (strlen(name) >= sizeof(s->name)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(s->name, name, strlen(name) + 1);
	path_of(path, sizeof(path), name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	errno = EINVAL;
	if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(struct seghdr) ||
	    (s->map = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0)) ==
	    MAP_FAILED) {
		s->map = NULL;
		close(fd);
		return -1;
	}
	s->size = st.st_size;
	s->st = st;
	s->h = (const struct seghdr *)s->map;
	if (seg_check(s, fd) < 0 || s->h->uidvalidity != ix.uidvalidity) {
		old = memcmp(s->h->magic, SEG_MAGIC, 8) &&
		    !memcmp(s->h->magic, SEG_OLD, 7);
		close(fd);
		seg_close(s);
		errno = old ? ESTALE : EINVAL;
		return -1;
	}
	close(fd);
	return 0;
}

static void
segs_close(void)
{
	size_t i;

	for (i = 0; i < ix.nsegs; i++)
		seg_close(&ix.segs[i]);
	free(ix.segs);
	ix.segs = NULL;
	ix.nsegs = 0;
	free(ix.uids);
	ix.uids = NULL;
	ix.nuids = 0;
	memset(&ix.mst, 0, sizeof(ix.mst));
}

/* the UIDs the segments hold, sorted; -1 when one is there twice */
static int
uids_collect(void)
{
	size_t i, j, n = 0;

	for (i = 0; i < ix.nsegs; i++)
		n += ix.segs[i].h->ndocs;
	free(ix.uids);
	ix.uids = xcalloc(n + 1, sizeof(*ix.uids));
	ix.nuids = 0;
	for (i = 0; i < ix.nsegs; i++)
		for (j = 0; j < ix.segs[i].h->ndocs; j++)
			ix.uids[ix.nuids++] = ix.segs[i].docs[j].uid;
	qsort(ix.uids, ix.nuids, sizeof(*ix.uids), cmp_u32);
	for (i = 1; i < ix.nuids; i++)
		if (ix.uids[i] == ix.uids[i - 1])
			return -1;
	return 0;
}

/* the open segment of that name from old into s (0), or -1; the file
 * must still be the one mapped */
static int
seg_reuse(struct seg *s, const char *name, struct seg *old, size_t nold)
{
	char path[PATHLEN];
	struct stat st;
	size_t i;

	path_of(path, sizeof(path), name);
	if (stat(path, &st) < 0)
		return -1;
	for (i = 0; i < nold; i++)
		if (old[i].map && !strcmp(old[i].name, name) &&
		    st.st_ino == old[i].st.st_ino &&
		    st.st_size == old[i].st.st_size &&
		    st.st_mtim.tv_sec == old[i].st.st_mtim.tv_sec &&
		    st.st_mtim.tv_nsec == old[i].st.st_mtim.tv_nsec) {
			*s = old[i];
			memset(&old[i], 0, sizeof(old[i]));
			return 0;
		}
	return -1;
}

/* read the manifest (again when it changed); 0, 1 when there is none or
 * it is of another UIDVALIDITY, -1 when it or a segment is damaged */
static int
manifest_read1(void)
{
	char path[PATHLEN], line[128];
	struct seg *old;
	size_t nold;
	struct stat st;
	unsigned long uv;
	FILE *fp;
	int r = 0;

	path_of(path, sizeof(path), FTS_FILE);
	if (stat(path, &st) < 0) {
		segs_close();
		return 1;
	}
	errno = 0;
	if (ix.segs && st.st_ino == ix.mst.st_ino &&
	    st.st_mtim.tv_sec == ix.mst.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == ix.mst.st_mtim.tv_nsec)
		return 0;
	if (!(fp = fopen(path, "re"))) {
		segs_close();
		return 1;
	}
	/* segments are never changed under their name: those still named
	 * are kept open, without reading their tables again */
	old = ix.segs;
	nold = ix.nsegs;
	ix.segs = NULL;
	ix.nsegs = 0;
	segs_close();
	if (!fgets(line, sizeof(line), fp) || sscanf(line, MANIFEST_MAGIC
	    " %lu", &uv) != 1)
		r = -1;
	else if (uv != ix.uidvalidity)
		r = 1;
	while (r == 0 && fgets(line, sizeof(line), fp)) {
		line[strcspn(line, "\n")] = '\0';
		ix.segs = xreallocarray(ix.segs, ix.nsegs + 1,
		    sizeof(*ix.segs));
		if (seg_reuse(&ix.segs[ix.nsegs], line, old, nold) == 0 ||
		    (!strchr(line, '/') && seg_open(&ix.segs[ix.nsegs], line)
		    == 0))
			ix.nsegs++;
		else	/* of an older version: built afresh, as when none */
			r = errno == ENOENT ? 2 : errno == ESTALE ? 1 : -1;
	}
	fclose(fp);
	while (nold)
		seg_close(&old[--nold]);
	free(old);
	if (r != 0) {
		segs_close();
		return r;
	}
	if (uids_collect() < 0) {
		segs_close();
		return -1;
	}
	ix.mst = st;
	return 0;
}

/* a writer may replace the manifest and its segments as it is read */
static int
manifest_read(void)
{
	int r, tries = 0;

	while ((r = manifest_read1()) == 2 && ++tries < 5)
		;
	return r == 2 ? -1 : r;
}

static int
manifest_write(char names[][64], size_t n)
{
	char path[PATHLEN], tmp[PATHLEN + 8];
	FILE *fp;
	size_t i;
	int bad;

	path_of(path, sizeof(path), FTS_FILE);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (!(fp = fopen(tmp, "we")))
		return -1;
	fprintf(fp, "%s %lu\n", MANIFEST_MAGIC, (unsigned long)ix.uidvalidity);
	for (i = 0; i < n; i++)
		fprintf(fp, "%s\n", names[i]);
	bad = fflush(fp) || fsync(fileno(fp)) < 0;
	if (fclose(fp) || bad || rename(tmp, path) < 0) {
		logmsg(LOG_WARNING, "full-text index %s: %m", path);
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* remove segment files the manifest does not name */
static void
sweep(char names[][64], size_t n)
{
	struct dirent *e;
	char path[PATHLEN];
	size_t i;
	DIR *d;

	if (!(d = opendir(ix.dir)))
		return;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "imapd-fts.", 10) ||
		    !strstr(e->d_name, ".seg"))
			continue;
		for (i = 0; i < n && strcmp(names[i], e->d_name); i++)
			;
		if (i == n) {
			path_of(path, sizeof(path), e->d_name);
			unlink(path);
		}
	}
	closedir(d);
}

/* --- keeping up with the folder ------------------------------------------ */

/* the indexes in f->msgs of messages not indexed; *stale: entries of
 * gone messages */
static size_t
missing(struct folder *f, size_t *out, size_t *stale)
{
	size_t i, j = 0, n = 0;

	for (i = 0; i < f->nmsgs; i++) {
		while (j < ix.nuids && ix.uids[j] < f->msgs[i].uid)
			j++;
		if (j == ix.nuids || ix.uids[j] != f->msgs[i].uid)
			out[n++] = i;
	}
	*stale = ix.nuids - (f->nmsgs - n);
	return n;
}

/* 0, or -1 when another process is updating the index (or no lock can
 * be had): the search then reads what that one has not written yet */
static int
lock(void)
{
	char path[PATHLEN];

	path_of(path, sizeof(path), "imapd-fts.lock");
	if ((ix.lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return -1;
	if (flock(ix.lockfd, LOCK_EX | LOCK_NB) < 0) {
		close(ix.lockfd);
		ix.lockfd = -1;
		return -1;
	}
	return 0;
}

static void
unlock(void)
{
	if (ix.lockfd >= 0)
		close(ix.lockfd);
	ix.lockfd = -1;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* the messages ix.segs[from..] hold into b, in their order */
static void
b_add_segs(struct builder *b, size_t from)
{
	const struct seg *s;
	size_t j;

	for (; from < ix.nsegs; from++)
		for (s = &ix.segs[from], j = 0; j < s->h->ndocs; j++)
			b_add(b, s->docs[j].uid, s->text + s->docs[j].text,
			    s->docs[j].len, s->docs[j].flags);
}

/* the last merge segments and the messages todo[0..n) into new
 * segments; the manifest names them when done, or stopped by progress
 * or at the time until (ms, 0: none) */
static int
build(struct folder *f, const size_t *todo, size_t n, int fresh,
    size_t merge, fts_progress progress, long long until)
{
	struct builder b;
	struct buf text = { 0 };
	char (*names)[64];
	size_t keep, nn = 0, done = 0, j, cap, made = 0;
	uint32_t len[NCOLS], flags;
	long long next;
	int r = 0, open_b = 0;

	keep = fresh ? 0 : ix.nsegs - MIN(merge, ix.nsegs);
	cap = keep + 8;
	names = xcalloc(cap, sizeof(*names));
	for (j = 0; j < keep; j++)
		memcpy(names[nn++], ix.segs[j].name, 64);
	if (!fresh && keep < ix.nsegs && (r = b_open(&b)) == 0) {
		open_b = 1;
		b_add_segs(&b, keep);
	}
	/* told at once of a long update, of any other once it takes time:
	 * by the clock, not a count, as a message may be big */
	next = now_ms() + TELL_MS;
	for (; r == 0 && done < n; done++) {
		if (progress && ((!done && n >= PROGRESS_MIN) ||
		    now_ms() >= next)) {
			next = now_ms() + TELL_MS;
			if (progress(done, n))
				break;
		}
		if (until && done && now_ms() >= until)
			break;
		if (!open_b && (r = b_open(&b)) < 0)
			break;
		open_b = 1;
		buf_reset(&text);
		if (doc_text(f, todo[done], &text, len, &flags) == 0)
			b_add(&b, f->msgs[todo[done]].uid, text.p, len, flags);
		if (b.mem < SEG_MEMORY)
			continue;
		if (nn + 2 > cap) {
			cap *= 2;
			names = xreallocarray(names, cap, sizeof(*names));
		}
		r = b_finish(&b, names[nn], sizeof(names[nn]));
		nn += r == 0;
		made += r == 0;
		b_free(&b);
		open_b = 0;
	}
	if (open_b && r == 0) {
		r = b_finish(&b, names[nn], sizeof(names[nn]));
		nn += r == 0;
		made += r == 0;
	}
	if (open_b)
		b_free(&b);
	buf_free(&text);
	if (r == 0 && (made || fresh) && (r = manifest_write(names, nn)) == 0)
		sweep(names, nn);
	free(names);
#ifdef __GLIBC__
	/* the lists' memory back to the system: the session lives on */
	if (made)
		malloc_trim(0);
#endif
	return r;
}

/* how many of the last segments new mail goes in with: the last one
 * while it has fewer than small messages */
static size_t
last_small(size_t small)
{
	return ix.nsegs && ix.segs[ix.nsegs - 1].h->ndocs < small;
}

static int
update(struct folder *f, fts_progress progress)
{
	size_t *todo, n, stale;
	int r, fresh;

	if ((r = manifest_read()) < 0 || ix.damaged)
		logmsg(LOG_WARNING, "full-text index %s/%s: damaged; rebuilding"
		    " it", ix.dir, FTS_FILE);
	fresh = r != 0 || ix.damaged;
	ix.damaged = 0;
	todo = xcalloc(f->nmsgs + 1, sizeof(*todo));
	n = missing(f, todo, &stale);
	if (!n && !fresh) {
		free(todo);
		return 0;
	}
	if (lock() < 0) {
		free(todo);
		return fresh ? -1 : 0;
	}
	/* another process may have done it meanwhile */
	if (!fresh && manifest_read() == 0)
		n = missing(f, todo, &stale);
	if (stale > STALE_MIN && stale > f->nmsgs - n) {
		logmsg(LOG_INFO, "full-text index %s: %zu entries of gone"
		    " messages; rebuilding it", ix.dir, stale);
		fresh = 1;
	}
	if (fresh) {
		segs_close();
		n = missing(f, todo, &stale);
	}
	r = n || fresh ? build(f, todo, n, fresh, last_small(SEG_SMALL),
	    progress, 0) : 0;
	unlock();
	free(todo);
	if (r == 0)
		r = manifest_read() < 0 ? -1 : 0;
	return r;
}

static int
ix_open(struct folder *f)
{
	if (strcmp(ix.dir, f->path) || ix.uidvalidity != f->uidvalidity) {
		segs_close();
		if (strlen(f->path) >= sizeof(ix.dir))
			return -1;
		strcpy(ix.dir, f->path);
		ix.uidvalidity = f->uidvalidity;
		ix.current = 0;
	}
	return 0;
}

int
fts_update(struct folder *f, fts_progress progress)
{
	if (disabled() || ix_open(f) < 0)
		return -1;
	return update(f, progress);
}

/* the last two segments, when both are small and together not too big
 * for one slice while idle: slices leave many small segments behind */
static int
merge_due(void)
{
	uint32_t a, b;

	if (ix.nsegs < 2)
		return 0;
	a = ix.segs[ix.nsegs - 2].h->ndocs;
	b = ix.segs[ix.nsegs - 1].h->ndocs;
	return a < SEG_SMALL && b < SEG_SMALL && a + b <= IDLE_MERGE_MAX;
}

/* one slice: new mail for FTS_SLICE_MS, or else one merge; 1 when more
 * is left to do */
static int
idle_slice(struct folder *f)
{
	size_t *todo, n, stale;
	int r = 0;

	todo = xcalloc(f->nmsgs + 1, sizeof(*todo));
	if ((n = missing(f, todo, &stale)))
		r = build(f, todo, n, 0, last_small(IDLE_MERGE), NULL,
		    now_ms() + FTS_SLICE_MS);
	else if (merge_due())
		r = build(f, NULL, 0, 0, 2, NULL, 0);
	else {
		free(todo);
		return 0;
	}
	if (r == 0 && manifest_read() == 0)
		r = missing(f, todo, &stale) > 0 || merge_due();
	else
		r = 0;
	free(todo);
	return r;
}

int
fts_idle(struct folder *f)
{
	int r = 0;

	if (disabled() || ix_open(f) < 0 || (ix.current && ix.changes ==
	    folder_changes(f)))
		return 0;
	/* a folder never searched gets its index at its first search */
	if (manifest_read() == 0 && lock() == 0) {
		if (manifest_read() == 0)
			r = idle_slice(f);
		unlock();
	}
	ix.current = !r;
	ix.changes = folder_changes(f);
	return r;
}

/* --- answering ----------------------------------------------------------- */

/* what a key reads: columns [from, to), and for a field of the OTHER
 * column the "name:" its pieces must start with */
struct key {
	int from, to;
	char prefix[80];
	size_t plen;
};

/* -1 when the index cannot answer for this field */
static int
columns(int kind, const char *field, struct key *k)
{
	struct buf name = { 0 };
	size_t i;

	memset(k, 0, sizeof(*k));
	k->from = kind == FTS_BODY;
	k->to = kind == FTS_TEXT || kind == FTS_BODY ? 2 : 1;
	if (kind != FTS_HEADER)
		return 0;
	for (i = 0; i < NFIELDS; i++)
		if (!ascii_casecmp(field, fieldcol[i])) {
			k->from = 2 + i;
			k->to = 3 + i;
			return 0;
		}
	k->plen = strlen(field);
	if (!k->plen || k->plen + 1 >= sizeof(k->prefix))
		return -1;
	for (i = 0; i < k->plen; i++)
		if (field[i] <= ' ' || field[i] >= 0x7f || field[i] == ':')
			return -1;
	/* the name as the stored text has it: in the keys' case form */
	casemap(&name, field, k->plen);
	if (name.len + 1 >= sizeof(k->prefix)) {
		buf_free(&name);
		return -1;
	}
	memcpy(k->prefix, name.p, name.len);
	k->plen = name.len;
	k->prefix[k->plen++] = ':';
	buf_free(&name);
	k->from = OTHER;
	k->to = OTHER + 1;
	return 0;
}

/* the needle as the text is kept, or NULL when the stored text cannot
 * answer it */
static char *
needle_clean(const char *needle, size_t *len)
{
	struct buf raw = { 0 }, c = { 0 };
	size_t i, k;

	buf_adds(&raw, needle);
	clean(&c, &raw);
	buf_free(&raw);
	for (i = 0; i < c.len; i += k) {
		k = utf8_len((const unsigned char *)c.p + i, c.len - i);
		if (c.p[i] == SEP || (k == 3 && !memcmp(c.p + i,
		    "\xef\xbf\xbd", 3)))
			break;
	}
	if (!c.len || i < c.len) {
		buf_free(&c);
		return NULL;
	}
	*len = c.len;
	return c.p;
}

/* the candidates cand[0..n) that hold a trigram, in place */
static size_t
intersect(const struct seg *s, const struct segtri *t, uint32_t *cand,
    size_t n)
{
	size_t i = 0, j = 0, k = 0, m, len;
	uint32_t d = 0, v;
	int lack = dense(t->n, s->h->ndocs);

	if (sum_bytes(s->post + t->off, t->len, SEG_SEED) != t->sum) {
		ix.damaged = 1;
		return 0;
	}
	len = lack ? s->h->ndocs - t->n : t->n;
	for (m = 0; m < len && j < n; m++) {
		if (!get_varint(s->post + t->off, t->len, &i, &v))
			break;
		d = m ? d + v : v;
		for (; j < n && cand[j] < d; j++)
			if (lack)
				cand[k++] = cand[j];
		if (j < n && cand[j] == d) {
			if (!lack)
				cand[k++] = cand[j];
			j++;
		}
	}
	while (lack && j < n)
		cand[k++] = cand[j++];
	return k;
}

static const struct segtri *
tri_find(const struct seg *s, uint32_t key)
{
	size_t lo = 0, hi = s->h->ntri, mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (s->tri[mid].key == key)
			return &s->tri[mid];
		if (s->tri[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int
cmp_tri_n(const void *a, const void *b)
{
	const struct segtri *x = *(const struct segtri *const *)a;
	const struct segtri *y = *(const struct segtri *const *)b;

	return x->n < y->n ? -1 : x->n > y->n;
}

/* how common an octet is in mail text, most common first, in the form
 * the text is kept (i;unicode-casemap: upper case); the others count as
 * rare */
static const char common[] = " ETAOINSRHLDCUMFPGWYBV.,\n0123456789KX-:/";

/* a needle, and the two octets of it the text is sifted by: the rarest
 * (at r1) and the next rarest elsewhere in it (at r2) */
struct needle {
	const char *p;
	size_t len, r1, r2;
};

static size_t
rank(char c)
{
	const char *p = c ? strchr(common, c) : NULL;

	return p ? (size_t)(p - common) : sizeof(common);
}

static void
needle_sift(struct needle *nd)
{
	size_t i, r1 = 0, r2 = 0;

	for (i = 1; i < nd->len; i++)
		if (rank(nd->p[i]) > rank(nd->p[r1]))
			r1 = i;
	r2 = r1 ? 0 : nd->len > 1;
	for (i = 0; i < nd->len; i++)
		if (i != r1 && rank(nd->p[i]) > rank(nd->p[r2]))
			r2 = i;
	nd->r1 = r1;
	nd->r2 = r2;
}

#if defined(__GNUC__)
/* the text is sifted by vectors the compiler maps to the machine's (SSE2,
 * NEON): many places per step, none of memchr's stops at each octet */
#define SIFT 16	/* places at a time */
typedef unsigned char vsift __attribute__((vector_size(SIFT)));
typedef signed char vmask __attribute__((vector_size(SIFT)));

/* the first of the SIFT places from h whose octets at r1 and r2 are the
 * needle's, SIFT when none */
static size_t
sift(const char *h, const struct needle *nd, const vsift c1, const vsift c2)
{
	vsift a, b;
	vmask m;
	uint64_t w[SIFT / 8], any = 0;
	size_t k;

	memcpy(&a, h + nd->r1, sizeof(a));
	memcpy(&b, h + nd->r2, sizeof(b));
	m = (a == c1) & (b == c2);
	memcpy(w, &m, sizeof(w));
	for (k = 0; k < SIFT / 8; k++)
		any |= w[k];
	if (!any)
		return SIFT;
	for (k = 0; !m[k]; k++)
		;
	return k;
}

/* memmem, sifting SIFT places at a time by two octets of the needle */
static const char *
find(const char *h, size_t hn, const struct needle *nd)
{
	vsift c1, c2;
	size_t i = 0, k, end;

	if (hn < nd->len)
		return NULL;
	end = hn - nd->len + 1;		/* places the needle may start */
	memset(&c1, (unsigned char)nd->p[nd->r1], sizeof(c1));
	memset(&c2, (unsigned char)nd->p[nd->r2], sizeof(c2));
	while (i + SIFT <= end) {
		if ((k = sift(h + i, nd, c1, c2)) == SIFT) {
			i += SIFT;
			continue;
		}
		if (!memcmp(h + i + k, nd->p, nd->len))
			return h + i + k;
		i += k + 1;
	}
	for (; i < end; i++)
		if (h[i + nd->r1] == nd->p[nd->r1] && !memcmp(h + i, nd->p,
		    nd->len))
			return h + i;
	return NULL;
}
#else
/* memmem, by memchr for the rarest octet of the needle */
static const char *
find(const char *h, size_t hn, const struct needle *nd)
{
	const char *p, *e;
	size_t rare = nd->r1;

	if (hn < nd->len)
		return NULL;
	p = h + rare;
	e = h + hn - (nd->len - 1 - rare);
	while (p < e && (p = memchr(p, nd->p[rare], e - p))) {
		if (!memcmp(p - rare, nd->p, nd->len))
			return p - rare;
		p++;
	}
	return NULL;
}
#endif

/* does the text of a doc hold the needle where the key looks */
static int
doc_match(const struct seg *s, const struct segdoc *d,
    const struct needle *nd, const struct key *k)
{
	const char *t, *p, *ps;
	uint64_t len = 0;
	int c;

	for (t = s->text + d->text, c = 0; c < k->from; c++)
		t += d->len[c];
	for (; c < k->to; c++)
		len += d->len[c];
	/* TEXT: the body first, where words are more often found */
	if (k->from == 0 && k->to == 2)
		return find(t + d->len[0], d->len[1], nd) ||
		    find(t, d->len[0], nd);
	if (!k->plen)
		return find(t, len, nd) != NULL;
	/* a piece of OTHER: "name:value\n", ended by SEP */
	for (p = t; (p = find(p, len - (p - t), nd)); p++) {
		for (ps = p; ps > t && ps[-1] != SEP; ps--)
			;
		if (p - ps >= (ptrdiff_t)k->plen && !memcmp(ps, k->prefix,
		    k->plen))
			return 1;
	}
	return 0;
}

/* the index in f->msgs of the first message with a UID of uid or more */
static size_t
first_at(struct folder *f, uint32_t uid)
{
	size_t lo = 0, hi = f->nmsgs, mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (f->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* the messages of one segment that hold the needle (hits), or whose text
 * cannot tell (todo) */
static void
seg_search(const struct seg *s, const struct needle *nd,
    const struct key *k, struct folder *f, uint32_t *hits, size_t *nhits,
    uint32_t *todo, size_t *ntodo)
{
	const struct segtri **t;
	const struct segdoc *d;
	uint32_t *cand, key;
	size_t i, j = 0, n = s->h->ndocs, nt = 0;

	t = xcalloc(nd->len + 1, sizeof(*t));
	for (i = 0; i + 2 < nd->len; i++) {
		key = (unsigned char)nd->p[i] << 16 |
		    (unsigned char)nd->p[i + 1] << 8 |
		    (unsigned char)nd->p[i + 2];
		if (!(t[nt++] = tri_find(s, key))) {
			free(t);
			return;
		}
	}
	qsort(t, nt, sizeof(*t), cmp_tri_n);
	cand = xcalloc(n + 1, sizeof(*cand));
	for (i = 0; i < n; i++)
		cand[i] = i;
	for (i = 0; i < nt && n; i++)
		n = intersect(s, t[i], cand, n);
	/* the docs of a segment mostly ascend by UID, as f->msgs do */
	for (i = 0; i < n && *nhits < f->nmsgs; i++) {
		d = &s->docs[cand[i]];
		if (j && (j == f->nmsgs || f->msgs[j - 1].uid >= d->uid))
			j = first_at(f, d->uid);
		while (j < f->nmsgs && f->msgs[j].uid < d->uid)
			j++;
		if (j == f->nmsgs || f->msgs[j].uid != d->uid)
			continue;
		if (k->plen && (d->flags & DOC_UNSURE))
			todo[(*ntodo)++] = d->uid;
		else if (doc_match(s, d, nd, k))
			hits[(*nhits)++] = d->uid;
	}
	free(cand);
	free(t);
}

int
fts_search(struct folder *f, int kind, const char *field, const char *needle,
    fts_progress progress, uint32_t *hits, size_t *nhits, uint32_t *todo,
    size_t *ntodo)
{
	struct key k;
	struct needle nd;
	char *p;
	size_t i, stale, *miss, n;

	*nhits = *ntodo = 0;
	if (disabled() || columns(kind, field, &k) < 0 ||
	    !(p = needle_clean(needle, &nd.len)))
		return FTS_NONE;
	if (ix_open(f) < 0 || update(f, progress) < 0) {
		free(p);
		return FTS_NONE;
	}
	nd.p = p;
	needle_sift(&nd);
	for (i = 0; i < ix.nsegs; i++)
		seg_search(&ix.segs[i], &nd, &k, f, hits, nhits, todo, ntodo);
	free(p);
	if (ix.damaged) {
		segs_close();	/* read the messages; rebuild next time */
		*nhits = *ntodo = 0;
		return FTS_NONE;
	}
	sort_u32(hits, *nhits);
	miss = xcalloc(f->nmsgs + 1, sizeof(*miss));
	n = missing(f, miss, &stale);
	for (i = 0; i < n && *ntodo < f->nmsgs; i++)
		todo[(*ntodo)++] = f->msgs[miss[i]].uid;
	free(miss);
	sort_u32(todo, *ntodo);
	return FTS_EXACT;
}
#else
#include "fts.h"

int
fts_idle(struct folder *f)
{
	return 0;
}
#endif
