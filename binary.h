/* binary.h: storing binary content (APPEND of a literal8, RFC 3516).  A
 * Maildir message must read as a valid RFC 5322 message, so the parts
 * that hold NUL octets are re-encoded as base64, without loss. */
#ifndef BINARY_H
#define BINARY_H
struct buf;

/* Append to out the message p, n with every leaf part whose content holds
 * a NUL given Content-Transfer-Encoding base64; the rest is copied as it
 * is.  Multipart and message/rfc822 parts are followed up to a fixed
 * depth; deeper ones are leaves. */
void binary_encode(struct buf *out, const char *p, size_t n);

#endif
