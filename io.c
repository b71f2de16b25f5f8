/* io.c: buffered client input and output over a stack of layers */
#include <errno.h>
#include <stdarg.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "io.h"
#include "util.h"

#define IBUF_SIZE 16384
/* a pipe's or socket's usual room: a 100,000-line FETCH leaves in 55
 * writes, not 220, and a short answer touches only its first page */
#define OBUF_SIZE 65536

/* the bottom layer: file descriptors 0 and 1 */
struct plain {
	struct layer l;
	int rfd, wfd;
};

static struct plain plain;
static struct layer *top;
static int timeout_ms;		/* per read; <= 0: no limit */
static long long deadline;	/* CLOCK_MONOTONIC ms, for all reads; 0: none */
static int timed_out;

static char ibuf[IBUF_SIZE];	/* input read from top, not yet consumed */
static size_t ipos, ilen;
static char obuf[OBUF_SIZE];	/* output not yet handed to top */
static size_t olen;
static int dirty;		/* written since the last io_flush */

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* how long the next poll for input may wait: the per-read timeout, cut
 * to what is left before the deadline; -1 forever */
static int
wait_ms(void)
{
	long long left;

	if (!deadline)
		return timeout_ms > 0 ? timeout_ms : -1;
	left = MAX(deadline - mono_ms(), 0);
	return timeout_ms > 0 ? (int)MIN(left, timeout_ms) : (int)left;
}

static ssize_t
plain_read(struct layer *l, void *p, size_t n)
{
	struct plain *pl = (struct plain *)l;
	struct pollfd pfd;
	ssize_t r;
	int pr;

	for (;;) {
		pfd.fd = pl->rfd;
		pfd.events = POLLIN;
		pr = poll(&pfd, 1, wait_ms());
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0) {
			timed_out = 1;
			return -1;
		}
		if (pr < 0)
			return -1;
		r = read(pl->rfd, p, n);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		return r;
	}
}

static ssize_t
plain_write(struct layer *l, const void *p, size_t n)
{
	struct plain *pl = (struct plain *)l;
	const char *s = p;
	size_t done = 0;
	ssize_t r;

	while (done < n) {
		r = write(pl->wfd, s + done, n - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += r;
	}
	return n;
}

static int
plain_flush(struct layer *l)
{
	return 0;
}

static size_t
plain_pending(struct layer *l)
{
	return 0;
}

void
io_init(int rfd, int wfd)
{
	plain.l.read = plain_read;
	plain.l.write = plain_write;
	plain.l.flush = plain_flush;
	plain.l.pending = plain_pending;
	plain.l.close = NULL;
	plain.l.below = NULL;
	plain.rfd = rfd;
	plain.wfd = wfd;
	top = &plain.l;
	ipos = ilen = olen = 0;
	dirty = timed_out = 0;
}

void
io_push(struct layer *l)
{
	io_flush();
	l->below = top;
	top = l;
}

struct layer *
io_top(void)
{
	return top;
}

int
io_fd(void)
{
	return plain.rfd;
}

int
io_buffered(void)
{
	struct layer *l;

	if (ipos < ilen)
		return 1;
	for (l = top; l; l = l->below)
		if (l->pending(l))
			return 1;
	return 0;
}

size_t
io_discard(void)
{
	size_t n = ilen - ipos;

	ipos = ilen = 0;
	return n;
}

void
io_timeout(int ms)
{
	timeout_ms = ms;
}

void
io_deadline(int ms)
{
	deadline = ms > 0 ? mono_ms() + ms : 0;
}

int
io_timedout(void)
{
	return timed_out;
}

/* refill the input buffer: 0, or -1 on EOF, error or timeout */
static int
fill(void)
{
	ssize_t r;

	if (ipos < ilen)
		return 0;
	if (dirty)
		io_flush();	/* never wait for input with a reply unsent */
	ipos = ilen = 0;
	r = top->read(top, ibuf, sizeof(ibuf));
	if (r <= 0)
		return -1;
	ilen = r;
	return 0;
}

long
io_getline(char *buf, size_t max)
{
	size_t len = 0, n;
	char *nl;

	for (;;) {
		if (fill() < 0)
			return -1;
		nl = memchr(ibuf + ipos, '\n', ilen - ipos);
		n = nl ? (size_t)(nl - (ibuf + ipos)) : ilen - ipos;
		if (len + n >= max) {
			/* keep what fits, so the tag can be answered, and
			 * read no further: the line may never end */
			memcpy(buf + len, ibuf + ipos, max - 1 - len);
			ipos += max - 1 - len;
			buf[max - 1] = '\0';
			return -2;
		}
		memcpy(buf + len, ibuf + ipos, n);
		len += n;
		ipos += n;
		if (nl) {
			ipos++;
			break;
		}
	}
	if (len && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	return len;
}

int
io_skipline(size_t max)
{
	size_t n;
	char *nl;

	while (max) {
		if (fill() < 0)
			return -1;
		nl = memchr(ibuf + ipos, '\n', MIN(ilen - ipos, max));
		n = nl ? (size_t)(nl - (ibuf + ipos)) + 1 : MIN(ilen - ipos, max);
		ipos += n;
		max -= n;
		if (nl)
			return 0;
	}
	return -1;
}

int
io_readn(void *p, size_t n)
{
	char *d = p;
	size_t k;

	while (n) {
		if (fill() < 0)
			return -1;
		k = MIN(n, ilen - ipos);
		memcpy(d, ibuf + ipos, k);
		ipos += k;
		d += k;
		n -= k;
	}
	return 0;
}

static void
lost(void)
{
	logmsg(LOG_INFO, "connection lost while writing");
	_exit(0);
}

void
io_write(const void *p, size_t n)
{
	const char *s = p;

	dirty = 1;
	if (olen + n > sizeof(obuf)) {
		if (olen && top->write(top, obuf, olen) < 0)
			lost();
		olen = 0;
		if (n >= sizeof(obuf)) {
			if (top->write(top, s, n) < 0)
				lost();
			return;
		}
	}
	memcpy(obuf + olen, s, n);
	olen += n;
}

void
io_puts(const char *s)
{
	io_write(s, strlen(s));
}

void
io_printf(const char *fmt, ...)
{
	char small[512];
	va_list ap;
	char *big;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		io_write(small, n);
		return;
	}
	big = xmalloc(n + 1);
	va_start(ap, fmt);
	vsnprintf(big, n + 1, fmt, ap);
	va_end(ap);
	io_write(big, n);
	free(big);
}

void
io_flush(void)
{
	if (olen && top->write(top, obuf, olen) < 0)
		lost();
	olen = 0;
	dirty = 0;
	if (top->flush(top) < 0)
		lost();
}

void
io_close(void)
{
	struct layer *l;

	io_flush();
	for (l = top; l; l = l->below)
		if (l->close)
			l->close(l);
}
