/* io.h: buffered client input and output over a stack of layers.
 *
 * The bottom layer is the plain file descriptors 0 and 1; TLS (tls.c) and
 * DEFLATE (COMPRESS) push themselves on top.  The rest of the program sees
 * only the io_* calls and never knows which layers are active. */
#ifndef IO_H
#define IO_H
#include <sys/types.h>

struct layer {
	/* read up to n bytes: >0 bytes read, 0 end of stream, -1 error or
	 * timeout (io_timeout) */
	ssize_t (*read)(struct layer *, void *, size_t);
	/* write all n bytes (may buffer): n, or -1 on error */
	ssize_t (*write)(struct layer *, const void *, size_t);
	/* push buffered output to the layer below and flush it: 0 or -1 */
	int (*flush)(struct layer *);
	/* bytes of input already decoded and readable without blocking */
	size_t (*pending)(struct layer *);
	/* orderly shutdown of this layer (TLS close_notify); may be NULL */
	void (*close)(struct layer *);
	struct layer *below;
};

void io_init(int rfd, int wfd);
/* put a layer on top of the stack; its below is set to the current top */
void io_push(struct layer *);
struct layer *io_top(void);
/* the descriptor to poll for client input, and whether input is already
 * buffered somewhere above it (then poll would wrongly block) */
int io_fd(void);
int io_buffered(void);
/* drop every byte of input buffered above the top layer: after STARTTLS,
 * pipelined plaintext must never be read as if it came through TLS */
size_t io_discard(void);
/* milliseconds a read may wait before it fails as a timeout; <= 0: forever */
void io_timeout(int ms);
/* one limit for every read from now on, however the bytes trickle in:
 * a whole command line or TLS handshake before login; <= 0: none */
void io_deadline(int ms);
int io_timedout(void);

/* read one line ending in LF (CRLF or bare LF) into buf, without the line
 * end.  Returns the length, -1 on EOF or error, -2 as soon as the line is
 * longer than max (buf then holds what fitted; the rest is left unread,
 * and the stream can only be closed). */
long io_getline(char *buf, size_t max);
/* after io_getline's -2: drop the rest of the line if it ends within max
 * more bytes: 0, else -1 (the stream can only be closed) */
int io_skipline(size_t max);
/* read exactly n bytes: 0, or -1 on EOF or error */
int io_readn(void *, size_t);

void io_write(const void *, size_t);
void io_puts(const char *);
void io_printf(const char *, ...) __attribute__((format(printf, 1, 2)));
/* flush every layer down to the socket; on a write error the client is
 * gone and the process exits */
void io_flush(void);
/* close_notify and friends, top down, then flush */
void io_close(void);

#endif
