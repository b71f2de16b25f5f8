/* fuzz_fts.c: libFuzzer target for the full-text index's segment reader
 * (fts.c, built in here to reach its file format).  The input's first
 * octet says what to repair, the rest is a segment file: it is put
 * beside a manifest naming it in a small Maildir, and SEARCHes and an
 * update run against it.  Repairing the checksums (and the size and
 * UIDVALIDITY the header must state) lets damage that a checksum would
 * catch reach the tables behind it: whatever the file holds, the index
 * must answer, refuse (FTS_NONE) or rebuild, and never read outside the
 * file.  Answers must name messages of the folder, ascending. */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../fts.c"

#define FIX_SUMS	1	/* the postings' and the header's checksums */
#define FIX_HEADER	2	/* size and UIDVALIDITY as the reader wants */

static const char *const messages[] = {
	"From: Zoe <zoe@example.org>\nTo: bob@example.net\nSubject: the"
	    " meeting notes\nX-Tail: sewing\n\nthe meeting is at noon\n",
	"Subject: =?utf-8?q?caf=C3=A9?=\nContent-Type: text/html\n\n"
	    "<p>Hel<b>lo</b> caf&eacute;</p>\n",
	"Subject: parts\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
	    "Content-Type: text/plain\n\nfirst part\n--b\nContent-Type: text/"
	    "plain; charset=iso-8859-1\n\nStra\xdf" "e\n--b--\n",
};

static const struct {
	int kind;
	const char *field, *needle;
} queries[] = {
	{ FTS_TEXT, NULL, "meeting" }, { FTS_BODY, NULL, "caf" },
	{ FTS_HEADER, "Subject", "the" }, { FTS_HEADER, "X-Tail", "sew" },
	{ FTS_TEXT, NULL, "e" }, { FTS_BODY, NULL, "stra\xc3\x9f" "e" },
};

static struct folder f;
static char root[64];

static void
write_file(const char *name, const void *p, size_t n)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", root, name);
	if (!(fp = fopen(path, "w")) || fwrite(p, 1, n, fp) != n ||
	    fclose(fp))
		abort();
}

static int
remove1(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

static void
cleanup(void)
{
	folder_close(&f);
	nftw(root, remove1, 8, FTW_DEPTH | FTW_PHYS);
}

static void
setup(void)
{
	char name[64];
	size_t i;

	snprintf(root, sizeof(root), "%s/fuzz-fts.XXXXXX",
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(root) || store_init(root) < 0)
		abort();
	for (i = 0; i < LEN(messages); i++) {
		snprintf(name, sizeof(name), "cur/%zu.M%zuP1.fuzz:2,S", 1000 + i,
		    i);
		write_file(name, messages[i], strlen(messages[i]));
	}
	if (folder_open(&f, "INBOX", 0) < 0 || f.nmsgs != LEN(messages))
		abort();
	atexit(cleanup);
}

/* the checksums and header fields a writer would have put there */
static void
repair(unsigned char *p, size_t n, int what)
{
	struct seghdr h;
	struct segtri t;
	struct sum s;
	uint64_t i;

	if (n < sizeof(h))
		return;
	memcpy(&h, p, sizeof(h));
	if (what & FIX_HEADER) {
		h.size = n;
		h.uidvalidity = f.uidvalidity;
	}
	if ((what & FIX_SUMS) && h.docs_off <= h.tri_off &&
	    h.tri_off <= h.post_off && h.post_off <= n &&
	    (h.post_off - h.tri_off) / sizeof(t) >= h.ntri) {
		for (i = 0; i < h.ntri; i++) {
			memcpy(&t, p + h.tri_off + i * sizeof(t), sizeof(t));
			if (t.off <= n - h.post_off &&
			    t.len <= n - h.post_off - t.off)
				t.sum = sum_bytes(p + h.post_off + t.off, t.len,
				    SEG_SEED);
			memcpy(p + h.tri_off + i * sizeof(t), &t, sizeof(t));
		}
		sum_init(&s, SEG_SEED);
		sum_feed(&s, p + h.docs_off, h.post_off - h.docs_off);
		h.sum = 0;
		sum_feed(&s, &h, sizeof(h));
		h.sum = sum_end(&s);
	}
	memcpy(p, &h, sizeof(h));
}

static void
check(const uint32_t *u, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (folder_find(&f, u[i]) < 0 || (i && u[i] <= u[i - 1]))
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	uint32_t hits[LEN(messages)], todo[LEN(messages)];
	char manifest[128], to[128];
	unsigned char *seg;
	size_t i, nh, nt;

	if (!ready++)
		setup();
	if (!size)
		return 0;
	seg = xmalloc(size);
	memcpy(seg, data + 1, size - 1);
	repair(seg, size - 1, data[0]);
	/* as a writer does it: a new file renamed over the old */
	write_file("imapd-fts.fuzz.new", seg, size - 1);
	free(seg);
	snprintf(manifest, sizeof(manifest), "%s/imapd-fts.fuzz.new", root);
	snprintf(to, sizeof(to), "%s/imapd-fts.fuzz.seg", root);
	if (rename(manifest, to) < 0)
		abort();
	snprintf(manifest, sizeof(manifest), "%s %lu\nimapd-fts.fuzz.seg\n",
	    MANIFEST_MAGIC, (unsigned long)f.uidvalidity);
	/* a new file each time, so the reader sees it changed */
	write_file("imapd-fts.new", manifest, strlen(manifest));
	snprintf(manifest, sizeof(manifest), "%s/imapd-fts.new", root);
	snprintf(to, sizeof(to), "%s/%s", root, FTS_FILE);
	if (rename(manifest, to) < 0)
		abort();
	for (i = 0; i < LEN(queries); i++) {
		if (fts_search(&f, queries[i].kind, queries[i].field,
		    queries[i].needle, NULL, hits, &nh, todo, &nt) != FTS_EXACT)
			continue;
		if (nh + nt > f.nmsgs)
			abort();
		check(hits, nh);
		check(todo, nt);
	}
	fts_update(&f, NULL);
	return 0;
}
