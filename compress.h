/* compress.h: the COMPRESS=DEFLATE layer (RFC 4978) */
struct layer;

/* built with zlib */
int compress_available(void);
/* a new deflate layer for io_push, or NULL */
struct layer *compress_start(void);
