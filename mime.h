/* mime.h: message content.  Works on a message mapped read-only (p, n):
 * ENVELOPE, BODYSTRUCTURE, the octets of a fetch section, and the content
 * keys of SEARCH.  Never copies a whole message into the heap. */
#ifndef MIME_H
#define MIME_H
#include <stdint.h>
#include <stddef.h>
#include <time.h>

struct buf;

/* receives output octets */
typedef void (*mime_emit)(void *arg, const char *p, size_t n);

/* length of p with every line end written as CRLF (RFC822.SIZE) */
uint64_t mime_crlf_size(const char *p, size_t n);
/* emit p[from..from+count) of the CRLF form of p */
void mime_crlf_write(const char *p, size_t n, uint64_t from, uint64_t count,
    mime_emit, void *arg);

/* the parenthesised ENVELOPE / BODY / BODYSTRUCTURE value */
void mime_envelope(struct buf *, const char *p, size_t n);
void mime_bodystructure(struct buf *, const char *p, size_t n, int extended);

/* A section of BODY[...] / BINARY[...].  section_parse takes the text
 * between the brackets ("", "HEADER", "1.2.MIME",
 * "HEADER.FIELDS (From To)") and returns NULL when it is not valid syntax
 * (binary set: only part numbers are allowed).  section_name writes the
 * canonical form to echo in the response. */
struct section;
struct section *section_parse(const char *spec, int binary);
void section_name(struct buf *, const struct section *);
void section_free(struct section *);

/* Resolve a section of a message.  On success fills size with the total
 * length of the section as the client sees it (CRLF line ends; decoded
 * for binary).  A part that does not exist is empty.  Returns 0, or -1 for
 * BINARY of a part whose transfer encoding is unknown (UNKNOWN-CTE). */
struct sectiondata;
struct sectiondata *section_open(const char *p, size_t n,
    const struct section *, int binary, uint64_t *size);
/* emit count octets of the section starting at from */
void section_write(struct sectiondata *, uint64_t from, uint64_t count,
    mime_emit, void *arg);
void section_close(struct sectiondata *);

/* SEARCH.  Needles are UTF-8; matching is a case-insensitive substring
 * test on RFC 2047-decoded header values and decoded, UTF-8 converted text
 * parts.  field NULL in mime_match_header means any header. */
int mime_match_header(const char *p, size_t n, const char *field,
    const char *needle);
int mime_match_body(const char *p, size_t n, const char *needle,
    int with_headers);	/* BODY: 0, TEXT: 1 */
/* The text those keys look at, for a full-text index, as UTF-8 not yet
 * folded: the header block of every part (each field "Name: value\n", as
 * TEXT sees it) appended to head, the decoded text parts to body, each
 * piece ended by a NUL octet (no match spans one); and each field of the
 * message's own header to fieldfn, its value decoded as HEADER sees it
 * (and for From, To, Cc and Bcc once more, its addresses as ENVELOPE shows
 * them, which those keys also match). */
typedef void (*mime_field)(void *arg, const char *name, size_t nlen,
    const char *val, size_t vlen);
void mime_search_text(const char *p, size_t n, struct buf *head,
    struct buf *body, mime_field fieldfn, void *arg);
/* PREVIEW: the content of the first text part,
 * transfer-decoded, its first max octets appended to out and its charset
 * (empty: none given) to cs; 1 for HTML, 0 for plain text, -1 when the
 * message has no such part */
int mime_first_text(const char *p, size_t n, size_t max, struct buf *out,
    char *cs, size_t cssz);
/* convert s from charset to UTF-8; -1 for an unknown charset */
int mime_to_utf8(struct buf *, const char *charset, const char *s, size_t n);

/* Set when every message handed to these functions is a read-only file
 * mapping (mmap PROT_READ of the message file): long scans then give back
 * the pages they have passed (MADV_DONTNEED), so FETCH or SEARCH of a
 * 50 MB message does not keep 50 MB resident.  Off by default; never set
 * it when a message may be in ordinary memory. */
void mime_filemap(int);

/* --- header access for SORT and THREAD --- */
/* The first field of each of names[0..nnames) (at most 32) in the header
 * of p, its value unfolded and appended to values[k]; returns a mask with
 * bit k set for each name found.  One pass over the header. */
unsigned mime_headers(const char *p, size_t n, const char *const *names,
    int nnames, struct buf *values);
/* a header value with its RFC 2047 encoded words decoded, as UTF-8 */
void mime_decode(struct buf *out, const char *s, size_t n);
/* The first address of an address-list value, parsed as for ENVELOPE:
 * its display name (encoded words left as they are), local part and
 * domain appended to name, mbox and host (a group gives its name as the
 * mailbox).  0 when the list holds no address. */
int mime_first_address(const char *s, size_t n, struct buf *name,
    struct buf *mbox, struct buf *host);

#endif
