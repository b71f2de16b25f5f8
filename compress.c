/* compress.c: COMPRESS=DEFLATE (RFC 4978), a layer of raw deflate above
 * the plain or TLS stream.  Every io_flush ends in a sync flush, so each
 * response reaches the client whole. */
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "compress.h"
#include "io.h"
#include "util.h"

#ifdef WITH_ZLIB
#include <zlib.h>

#define ZBUF 16384

struct zlayer {
	struct layer l;
	z_stream in, out;
	unsigned char ibuf[ZBUF];	/* compressed input from below */
	unsigned char obuf[ZBUF];	/* compressed output for below */
	int eof;
	int dirty;			/* written since the last flush */
};

static ssize_t
z_read(struct layer *l, void *p, size_t n)
{
	struct zlayer *z = (struct zlayer *)l;
	ssize_t r;
	int zr;

	z->in.next_out = p;
	z->in.avail_out = n;
	for (;;) {
		if (z->in.avail_in == 0) {
			if (z->eof)
				return 0;
			r = l->below->read(l->below, z->ibuf, sizeof(z->ibuf));
			if (r < 0)
				return -1;
			if (r == 0)
				z->eof = 1;
			z->in.next_in = z->ibuf;
			z->in.avail_in = r;
		}
		zr = inflate(&z->in, Z_SYNC_FLUSH);
		if (zr != Z_OK && zr != Z_BUF_ERROR && zr != Z_STREAM_END) {
			logmsg(LOG_NOTICE, "COMPRESS: corrupt input");
			return -1;
		}
		if (z->in.avail_out < n)
			return n - z->in.avail_out;
		if (zr == Z_STREAM_END || z->eof)
			return 0;
	}
}

/* run deflate over the pending input with the given flush mode, handing
 * every full output buffer to the layer below */
static int
z_pump(struct zlayer *z, int mode)
{
	size_t have;
	int zr;

	do {
		z->out.next_out = z->obuf;
		z->out.avail_out = sizeof(z->obuf);
		zr = deflate(&z->out, mode);
		if (zr == Z_STREAM_ERROR)
			return -1;
		have = sizeof(z->obuf) - z->out.avail_out;
		if (have && z->l.below->write(z->l.below, z->obuf, have) < 0)
			return -1;
	} while (z->out.avail_out == 0 || z->out.avail_in > 0);
	return 0;
}

static ssize_t
z_write(struct layer *l, const void *p, size_t n)
{
	struct zlayer *z = (struct zlayer *)l;

	z->out.next_in = (unsigned char *)p;
	z->out.avail_in = n;
	z->dirty |= n > 0;
	if (z_pump(z, Z_NO_FLUSH) < 0)
		return -1;
	return n;
}

static int
z_flush(struct layer *l)
{
	struct zlayer *z = (struct zlayer *)l;

	/* an empty sync block confuses some clients, and costs a packet */
	if (z->dirty) {
		z->out.avail_in = 0;
		if (z_pump(z, Z_SYNC_FLUSH) < 0)
			return -1;
		z->dirty = 0;
	}
	return l->below->flush(l->below);
}

static size_t
z_pending(struct layer *l)
{
	struct zlayer *z = (struct zlayer *)l;

	return z->in.avail_in + l->below->pending(l->below);
}

struct layer *
compress_start(void)
{
	struct zlayer *z = xcalloc(1, sizeof(*z));

	if (inflateInit2(&z->in, -15) != Z_OK ||
	    deflateInit2(&z->out, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK) {
		free(z);
		return NULL;
	}
	z->l.read = z_read;
	z->l.write = z_write;
	z->l.flush = z_flush;
	z->l.pending = z_pending;
	z->l.close = NULL;
	return &z->l;
}

int
compress_available(void)
{
	return 1;
}

#else

struct layer *
compress_start(void)
{
	return NULL;
}

int
compress_available(void)
{
	return 0;
}

#endif
