/* compress.h: the COMPRESS=DEFLATE layer (RFC 4978) */
#ifndef COMPRESS_H
#define COMPRESS_H
struct layer;

/* built with zlib */
int compress_available(void);
/* a new deflate layer for io_push, or NULL */
struct layer *compress_start(void);

#endif
