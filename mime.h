/* mime.h: message content, for a message mapped read-only (p, n).  The
 * message code hands out structures: the part tree, what each part's
 * header says, the envelope's fields and addresses, the octets of a
 * section; and the content keys of SEARCH.  It writes no IMAP syntax
 * (imapform.h does) and never copies a whole message into the heap.
 *
 * mime.c      line ends, transfer encodings, encoded words, charsets
 * mimehdr.c   header fields and MIME header values (RFC 2045, RFC 2231)
 * mimepart.c  the part tree and what each part's header says
 * mimeaddr.c  addresses and the envelope (RFC 5322)
 * mimesect.c  the octets of a fetch section
 * mimesearch.c  the content keys of SEARCH */
#ifndef MIME_H
#define MIME_H
#include <stdint.h>
#include <stddef.h>
#include <time.h>

#include "util.h"

/* receives output octets */
typedef void (*mime_emit)(void *arg, const char *p, size_t n);

/* length of p with every line end written as CRLF (RFC822.SIZE) */
uint64_t mime_crlf_size(const char *p, size_t n);
/* emit p[from..from+count) of the CRLF form of p */
void mime_crlf_write(const char *p, size_t n, uint64_t from, uint64_t count,
    mime_emit, void *arg);

/* --- the message and its part tree --- */

/* A message being looked at by one command.  Its part tree is parsed
 * when first needed and then kept, so the items of one FETCH share one
 * parse.  p must stay mapped until mime_close. */
struct mime;
struct mime *mime_open(const char *p, size_t n);
void mime_close(struct mime *);

/* One entity: the message (part 0), a body part, or an encapsulated
 * message.  Offsets into the message: the header is [hdr, body), the body
 * [body, end); the line end before a boundary belongs to the boundary. */
enum { MIME_LEAF, MIME_MULTI, MIME_MESSAGE };
struct mime_part {
	size_t hdr, body, end;
	int kind;	/* MIME_... */
	int digest;	/* no Content-Type means message/rfc822 */
	int trunc;	/* a multipart or message beyond the limits */
	int child, next, nchild;	/* indices, -1 for none */
	int counted;	/* lf and crlf are known: */
	uint64_t lf, crlf;	/* the body's LFs, and of them those after a CR */
};
const struct mime_part *mime_part(struct mime *, int i);
/* the body of part i: its size with CRLF line ends, and its lines */
uint64_t mime_size(struct mime *, int i);
uint64_t mime_lines(struct mime *, int i);

/* the parameters of a Content-Type or Content-Disposition; names and
 * values are at offsets into s, RFC 2231 continuations joined */
#define MIME_PARAMS	64
struct mime_param {
	size_t name, nlen, val, vlen;
	size_t flen;	/* the name with its RFC 2231 suffix */
	int ext;	/* RFC 2231 "name*" */
	long idx;	/* RFC 2231 continuation number, -1 for none */
};
struct mime_params {
	struct buf s;
	struct mime_param v[MIME_PARAMS];
	int n;
};
/* the value of parameter name, or NULL */
const char *mime_param(const struct mime_params *, const char *name,
    size_t *len);

/* a Content-Type or Content-Disposition value; one that cannot be read
 * is present and invalid, with an empty type */
struct mime_ctype {
	struct buf type, subtype;
	struct mime_params par;
	int present, invalid;
};

/* a header value that may be missing: present 0 */
struct mime_value {
	struct buf v;		/* unfolded */
	int present;
};

/* what the header of a part says of its content */
struct mime_desc {
	struct mime_ctype type, disp;
	struct mime_value id, description, md5, location;
	struct buf lang;	/* Content-Language tags, each ended by NUL */
	int nlang;
	struct buf cte;		/* Content-Transfer-Encoding, "7bit" if none */
};
void mime_describe(struct mime *, int i, struct mime_desc *);
void mime_desc_free(struct mime_desc *);

/* --- addresses and the envelope --- */

/* one element of an address list: an address, or the start (its name in
 * mbox) or the end of a group; parts the text lacks are empty */
enum { ADDR_MAILBOX, ADDR_GROUP, ADDR_GROUP_END };
struct mime_addr {
	int kind;	/* ADDR_... */
	struct buf name, adl, mbox, host;
};
struct mime_addrs {
	struct mime_addr *v;
	size_t n, cap;
};
/* an address-list value, read as far as it reads (RFC 5322 3.4) */
void mime_addresses(const char *s, size_t n, struct mime_addrs *);
void mime_addrs_free(struct mime_addrs *);
/* The display name, mailbox and host of an element as ENVELOPE shows
 * them (Dovecot's choices): the name with white space made one space,
 * "MISSING_MAILBOX" and "MISSING_DOMAIN" for what an address lacks, a
 * group's name as its mailbox and no host, nothing for a group's end. */
void mime_addr_shown(const struct mime_addr *, struct buf *name,
    struct buf *mbox, struct buf *host);
/* The first address of an address-list value as mime_addr_shown gives
 * it; 0 when the list holds no address. */
int mime_first_address(const char *s, size_t n, struct buf *name,
    struct buf *mbox, struct buf *host);

/* the envelope fields of a header: the last Date, Subject, In-Reply-To
 * and Message-ID; each address field's occurrences as one list */
enum { ENV_FROM, ENV_SENDER, ENV_REPLYTO, ENV_TO, ENV_CC, ENV_BCC, ENV_NADDR };
struct mime_envelope {
	struct mime_value date, subject, inreplyto, msgid;
	struct mime_addrs addr[ENV_NADDR];
};
/* of the header of part i (0: the message, which needs no part tree) */
void mime_envelope(struct mime *, int i, struct mime_envelope *);
void mime_envelope_free(struct mime_envelope *);

/* a value for humans (subject, display name): runs of white space as one
 * space, trimmed, NUL as 0x80 */
void mime_human(struct buf *out, const char *s, size_t n);

/* --- sections --- */

/* A section of BODY[...] / BINARY[...] as the command parser reads it
 * (parse.c): the part numbers, then what of that part; fields are the
 * names a HEADER.FIELDS or HEADER.FIELDS.NOT lists. */
#define SECTION_DEPTH	64	/* part numbers in a section */
enum { SEC_ALL, SEC_HEADER, SEC_FIELDS, SEC_FIELDS_NOT, SEC_TEXT, SEC_MIME };
struct section {
	unsigned part[SECTION_DEPTH];
	int npart;
	int text;		/* SEC_... */
	const char **fields;
	int nfields;
};

/* Resolve a section of a message.  On success fills size with the total
 * length of the section as the client sees it (CRLF line ends; decoded
 * for binary).  A part that does not exist is empty.  NULL for BINARY of
 * a part whose transfer encoding is unknown (UNKNOWN-CTE). */
struct sectiondata;
struct sectiondata *mime_section(struct mime *, const struct section *,
    int binary, uint64_t *size);
/* the same for a message looked at once */
struct sectiondata *section_open(const char *p, size_t n,
    const struct section *, int binary, uint64_t *size);
/* emit count octets of the section starting at from */
void section_write(struct sectiondata *, uint64_t from, uint64_t count,
    mime_emit, void *arg);
void section_close(struct sectiondata *);

/* --- SEARCH and the full-text index --- */

/* Needles are UTF-8; matching is a case-insensitive substring
 * test on RFC 2047-decoded header values and decoded, UTF-8 converted text
 * parts.  field NULL in mime_match_header means any header, which reads
 * a header block alone (the message's, or a cached header section);
 * BODY and TEXT look at the part tree every key of the program shares. */
int mime_match_header(const char *p, size_t n, const char *field,
    const char *needle);
int mime_match_body(struct mime *, const char *needle,
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
int mime_first_text(struct mime *, size_t max, struct buf *out, char *cs,
    size_t cssz);
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

#endif
