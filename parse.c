/* parse.c: IMAP command tokens, literals and sequence sets */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "io.h"
#include "parse.h"
#include "util.h"

#define ARENA_CHUNK 8192

struct chunk {
	struct chunk *next;
	size_t used, size;
	char data[];
};

const char *perr;
const char *perr_code;

static char line[LINE_MAX_LEN];	/* the current line of the command */
static size_t len, pos;
static long lit_at = -1;	/* offset of a literal's '{' at the line end */
static unsigned long long lit_size;
static int lit_sync;
static struct chunk *arena;
static int overflow;		/* a line passed the limit: the rest is unread */

static int
fail(const char *why)
{
	if (!perr)
		perr = why;
	return -1;
}

static void *
failp(const char *why)
{
	fail(why);
	return NULL;
}

void *
p_alloc(size_t n)
{
	struct chunk *c;
	size_t sz;

	n = (n + 15) & ~(size_t)15;
	if (!arena || arena->size - arena->used < n) {
		sz = MAX(n, ARENA_CHUNK);
		c = xmalloc(sizeof(*c) + sz);
		c->size = sz;
		c->used = 0;
		c->next = arena;
		arena = c;
	}
	arena->used += n;
	return arena->data + arena->used - n;
}

char *
p_strdup(const char *s, size_t n)
{
	char *d = p_alloc(n + 1);

	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

static void
arena_free(void)
{
	struct chunk *c;

	while ((c = arena)) {
		arena = c->next;
		free(c);
	}
}

/* find "{n}" or "{n+}" closing the line */
static void
find_literal(void)
{
	size_t i, brace;
	unsigned long long n = 0;

	lit_at = -1;
	if (len < 3 || line[len - 1] != '}')
		return;
	i = len - 2;
	lit_sync = 1;
	if (line[i] == '+') {
		lit_sync = 0;
		i--;
	}
	if (i == 0 || line[i] < '0' || line[i] > '9')
		return;
	while (i > 0 && line[i] >= '0' && line[i] <= '9')
		i--;
	if (line[i] != '{')
		return;
	brace = i;
	/* a size past 2^64 would wrap: it stays a literal, too big for
	 * every limit */
	for (i++; line[i] != '}' && line[i] != '+'; i++)
		n = n > (ULLONG_MAX - 9) / 10 ? ULLONG_MAX :
		    n * 10 + (line[i] - '0');
	lit_size = n;
	lit_at = (long)brace;
}

/* read the next line of the command: 0, or -1 with perr set */
static int
next_line(void)
{
	long r;

	r = io_getline(line, sizeof(line));
	if (r == -2) {
		overflow = 1;
		perr_code = "TOOBIG";
		return fail("Command line too long");
	}
	if (r < 0) {
		perr_code = "EOF";
		return fail("Connection closed");
	}
	len = r;
	pos = 0;
	find_literal();
	return 0;
}

int
p_begin(void)
{
	arena_free();
	perr = perr_code = NULL;
	overflow = 0;
	if (next_line() < 0) {
		if (!overflow)
			return -1;
		len = strlen(line);	/* what fitted, to find the tag in */
		pos = 0;
		lit_at = -1;
		return -2;
	}
	return 0;
}

int
p_skip(void)
{
	char sink[4096];
	unsigned long long n;

	if (overflow)
		return -1;
	/* a synchronizing literal the client was never invited to send
	 * does not follow; a non-synchronizing one does and is dropped */
	while (lit_at >= 0 && (size_t)lit_at >= pos && !lit_sync) {
		if (lit_size > APPEND_MAX * 2)
			return -1;
		for (n = lit_size; n; n -= MIN(n, sizeof(sink)))
			if (io_readn(sink, MIN(n, sizeof(sink))) < 0)
				return -1;
		if (next_line() < 0)
			return -1;
	}
	pos = len;
	lit_at = -1;
	return 0;
}

int
p_peek(void)
{
	return pos < len ? (unsigned char)line[pos] : -1;
}

int
p_char(int c)
{
	if (p_peek() != c)
		return 0;
	pos++;
	return 1;
}

int
p_sp(void)
{
	if (!p_char(' '))
		return fail("Expected a space");
	return 0;
}

int
p_end(void)
{
	if (pos != len)
		return fail("Unexpected characters at the end of the command");
	return 0;
}

static int
is_atom_char(int c)
{
	return c > 0x20 && c < 0x7f && !strchr("(){%*\"\\]", c);
}

static char *
span(int (*ok)(int), const char *what)
{
	size_t start = pos;

	while (pos < len && ok((unsigned char)line[pos]))
		pos++;
	if (pos == start)
		return failp(what);
	return p_strdup(line + start, pos - start);
}

static int
is_tag_char(int c)
{
	return is_atom_char(c) && c != '+';
}

int
p_keyword(const char *w)
{
	size_t n = strlen(w);

	if (len - pos < n || ascii_ncasecmp(line + pos, w, n) ||
	    (pos + n < len && is_atom_char((unsigned char)line[pos + n])))
		return 0;
	pos += n;
	return 1;
}

char *
p_tag(void)
{
	return span(is_tag_char, "Missing or invalid tag");
}

char *
p_atom(void)
{
	return span(is_atom_char, "Expected an atom");
}

static int
is_astring_char(int c)
{
	return is_atom_char(c) || c == ']';
}

/* The quoted string at s (its opening quote), unescaped into out, which
 * has room for n octets; returns the octets it took, or 0 with perr set */
static size_t
unquote(const char *s, size_t n, char *out, size_t *olen)
{
	size_t i = 1, o = 0;

	while (i < n && s[i] != '"') {
		if (s[i] == '\\') {
			i++;
			if (i >= n || (s[i] != '\\' && s[i] != '"')) {
				fail("Invalid escape in quoted string");
				return 0;
			}
		}
		out[o++] = s[i++];
	}
	if (i >= n) {
		fail("Unterminated quoted string");
		return 0;
	}
	out[o] = '\0';
	*olen = o;
	return i + 1;
}

static char *
quoted(size_t *n)
{
	char *out = p_alloc(len - pos + 1);
	size_t used, o;

	if (!(used = unquote(line + pos, len - pos, out, &o)))
		return NULL;
	pos += used;
	if (n)
		*n = o;
	return out;
}

long long
p_literal(unsigned long long max)
{
	if (lit_at < 0 || (size_t)lit_at != pos)
		return fail("Expected a literal");
	if (lit_size > max) {
		perr_code = "TOOBIG";
		return fail("Literal too large");
	}
	if (lit_sync) {
		io_puts("+ Ready for literal data\r\n");
		io_flush();
	}
	pos = len;
	lit_at = -1;
	return (long long)lit_size;
}

int
p_literal_done(void)
{
	return next_line();
}

static char *
literal(size_t *n)
{
	long long size;
	char *s;

	if ((size = p_literal(LITERAL_MAX)) < 0)
		return NULL;
	s = p_alloc(size + 1);
	if (io_readn(s, size) < 0) {
		perr_code = "EOF";
		return failp("Connection closed");
	}
	s[size] = '\0';
	if (n)
		*n = size;
	if (p_literal_done() < 0)
		return NULL;
	return s;
}

char *
p_string(size_t *n)
{
	if (p_peek() == '"')
		return quoted(n);
	if (p_peek() == '{')
		return literal(n);
	return failp("Expected a string");
}

char *
p_astring(size_t *n)
{
	char *s;

	if (p_peek() == '"' || p_peek() == '{')
		return p_string(n);
	if (!(s = span(is_astring_char, "Expected a string")))
		return NULL;
	if (n)
		*n = strlen(s);
	return s;
}

char *
p_nstring(size_t *n, int *nil)
{
	*nil = 0;
	if (pos + 3 <= len && !ascii_ncasecmp(line + pos, "NIL", 3) &&
	    (pos + 3 == len || !is_atom_char((unsigned char)line[pos + 3]))) {
		pos += 3;
		*nil = 1;
		return p_strdup("", 0);
	}
	return p_string(n);
}

char *
p_mailbox(void)
{
	char *s;
	size_t n;

	if (!(s = p_astring(&n)))
		return NULL;
	if (strlen(s) != n)
		return failp("NUL in mailbox name");
	if (!ascii_casecmp(s, "INBOX"))
		memcpy(s, "INBOX", 5);
	return s;
}

static int
is_list_char(int c)
{
	return is_astring_char(c) || c == '%' || c == '*';
}

char *
p_listmailbox(void)
{
	if (p_peek() == '"' || p_peek() == '{')
		return p_string(NULL);
	return span(is_list_char, "Expected a mailbox pattern");
}

char *
p_flag(void)
{
	size_t start = pos;

	if (p_char('\\')) {
		if (p_char('*'))
			return p_strdup("\\*", 2);
		if (!span(is_atom_char, "Invalid flag"))
			return NULL;
		return p_strdup(line + start, pos - start);
	}
	return span(is_atom_char, "Invalid flag");
}

/* --- FETCH items and section specs (RFC 3501 9, RFC 3516) --- */

/* a section spec being read from text that need not be the command
 * line: s[at..n) */
struct spec {
	const char *s;
	size_t n, at;
};

static int
spec_word(struct spec *sp, const char *w)
{
	size_t k = strlen(w);

	if (sp->n - sp->at < k || ascii_ncasecmp(sp->s + sp->at, w, k))
		return 0;
	sp->at += k;
	return 1;
}

/* a header-fld-name: an atom or a quoted string */
static char *
spec_field(struct spec *sp)
{
	size_t start = sp->at, used, o;
	char *out;

	if (sp->at < sp->n && sp->s[sp->at] == '"') {
		out = p_alloc(sp->n - sp->at + 1);
		if (!(used = unquote(sp->s + sp->at, sp->n - sp->at, out, &o)))
			return NULL;
		sp->at += used;
		return out;
	}
	while (sp->at < sp->n && is_atom_char((unsigned char)sp->s[sp->at]))
		sp->at++;
	if (sp->at == start)
		return failp("Invalid header field list");
	return p_strdup(sp->s + start, sp->at - start);
}

/* SP "(" header-fld-name *(SP header-fld-name) ")" */
static int
spec_fields(struct spec *sp, struct section *sec)
{
	size_t cap = 4;
	const char **v;

	if (!spec_word(sp, " ("))
		return fail("Invalid header field list");
	sec->fields = p_alloc(cap * sizeof(*sec->fields));
	do {
		if ((size_t)sec->nfields == cap) {
			v = p_alloc(2 * cap * sizeof(*v));
			memcpy(v, sec->fields, cap * sizeof(*v));
			sec->fields = v;
			cap *= 2;
		}
		if (!(sec->fields[sec->nfields++] = spec_field(sp)))
			return -1;
	} while (spec_word(sp, " "));
	if (!spec_word(sp, ")"))
		return fail("Invalid header field list");
	return 0;
}

/* section-part: nz-number *("." nz-number); a "." not followed by a
 * digit is left for the section text */
static int
spec_parts(struct spec *sp, struct section *sec)
{
	unsigned long v;
	const char *s = sp->s;

	while (sp->at < sp->n && s[sp->at] >= '1' && s[sp->at] <= '9') {
		for (v = 0; sp->at < sp->n && s[sp->at] >= '0' &&
		    s[sp->at] <= '9'; sp->at++)
			if ((v = v * 10 + (s[sp->at] - '0')) > 0x7fffffffUL)
				return fail("Invalid section");
		if (sec->npart == SECTION_DEPTH)
			return fail("Invalid section");
		sec->part[sec->npart++] = v;
		if (sp->at + 1 >= sp->n || s[sp->at] != '.' ||
		    s[sp->at + 1] < '0' || s[sp->at + 1] > '9')
			break;
		sp->at++;
	}
	return 0;
}

/* the text after the part numbers: HEADER, HEADER.FIELDS[.NOT] (...),
 * TEXT, MIME (after a part only); BINARY takes part numbers only */
static int
spec_text(struct spec *sp, struct section *sec, int binary)
{
	if (sp->at == sp->n || sp->s[sp->at] == ']')
		return 0;
	if (binary || (sec->npart && !spec_word(sp, ".")))
		return fail("Invalid section");
	if (spec_word(sp, "HEADER.FIELDS.NOT")) {
		sec->text = SEC_FIELDS_NOT;
		return spec_fields(sp, sec);
	}
	if (spec_word(sp, "HEADER.FIELDS")) {
		sec->text = SEC_FIELDS;
		return spec_fields(sp, sec);
	}
	if (spec_word(sp, "HEADER"))
		sec->text = SEC_HEADER;
	else if (spec_word(sp, "TEXT"))
		sec->text = SEC_TEXT;
	else if (sec->npart && spec_word(sp, "MIME"))
		sec->text = SEC_MIME;
	else
		return fail("Invalid section");
	return 0;
}

static int
spec_read(struct spec *sp, struct section *sec, int binary)
{
	memset(sec, 0, sizeof(*sec));
	if (spec_parts(sp, sec) < 0 || spec_text(sp, sec, binary) < 0)
		return -1;
	return 0;
}

int
p_section(const char *s, struct section *sec, int binary)
{
	struct spec sp = { s, strlen(s), 0 };
	const char *was = perr;

	if (spec_read(&sp, sec, binary) == 0 && sp.at == sp.n)
		return 0;
	perr = was;	/* the caller answers for the command */
	return -1;
}

/* "<" number "." nz-number ">" */
static int
partial_range(struct fetchitem *it)
{
	if (p_number64(&it->from) < 0 || !p_char('.') ||
	    p_peek() < '1' || p_peek() > '9' || p_number64(&it->count) < 0 ||
	    !p_char('>'))
		return fail("Invalid partial range");
	it->partial = 1;
	return 0;
}

static int
is_name_char(int c)
{
	return is_atom_char(c) && c != '[';
}

int
p_fetchatt(struct fetchitem *it)
{
	struct spec sp;
	int binary;

	memset(it, 0, sizeof(*it));
	if (!(it->name = span(is_name_char, "Invalid fetch attribute")))
		return -1;
	if (!p_char('['))
		return 0;
	binary = !ascii_ncasecmp(it->name, "BINARY", 6);
	if (ascii_casecmp(it->name, "BODY") &&
	    ascii_casecmp(it->name, "BODY.PEEK") &&
	    ascii_casecmp(it->name, "BINARY") &&
	    ascii_casecmp(it->name, "BINARY.PEEK") &&
	    ascii_casecmp(it->name, "BINARY.SIZE"))
		return fail("Unknown fetch attribute");
	it->section = 1;
	sp.s = line;
	sp.n = len;
	sp.at = pos;
	if (spec_read(&sp, &it->sec, binary) < 0)
		return -1;
	pos = sp.at;
	if (!p_char(']'))
		return fail("Invalid section");
	if (!p_char('<'))
		return 0;
	if (!ascii_casecmp(it->name, "BINARY.SIZE"))
		return fail("BINARY.SIZE takes no partial range");
	return partial_range(it);
}

/* a fetch item kept as text (NOTIFY's MessageNew list), read with the
 * same grammar: the command being read is set aside meanwhile */
int
p_fetchatt_text(const char *s, struct fetchitem *it)
{
	size_t n = strlen(s), slen = len, spos = pos;
	long slit = lit_at;
	char *saved;
	int r;

	if (n >= sizeof(line))
		return fail("Fetch item too long");
	saved = xmalloc(slen + 1);
	memcpy(saved, line, slen);
	memcpy(line, s, n);
	len = n;
	pos = 0;
	lit_at = -1;
	r = p_fetchatt(it);
	if (r == 0 && pos != len)
		r = fail("Invalid fetch attribute");
	memcpy(line, saved, slen);
	len = slen;
	pos = spos;
	lit_at = slit;
	free(saved);
	return r;
}

int
p_atomchar(int c)
{
	return is_atom_char(c);
}

int
p_number64(uint64_t *v)
{
	uint64_t n = 0;
	size_t start = pos;

	while (pos < len && line[pos] >= '0' && line[pos] <= '9') {
		if (n > (UINT64_MAX - 9) / 10)
			return fail("Number too large");
		n = n * 10 + (line[pos++] - '0');
	}
	if (pos == start)
		return fail("Expected a number");
	*v = n;
	return 0;
}

int
p_number(uint32_t *v)
{
	uint64_t n;

	if (p_number64(&n) < 0)
		return -1;
	if (n > UINT32_MAX)
		return fail("Number too large");
	*v = n;
	return 0;
}

/* one sequence number: a non-zero number or '*' (kept as 0) */
static int
seqnum(uint32_t *v)
{
	if (p_char('*')) {
		*v = 0;
		return 0;
	}
	if (p_number(v) < 0 || *v == 0)
		return fail("Invalid sequence set");
	return 0;
}

int
p_seqset(struct seqset *s)
{
	size_t cap = 8;
	struct range *r;

	memset(s, 0, sizeof(*s));
	if (p_char('$')) {
		s->dollar = 1;
		return 0;
	}
	s->r = p_alloc(cap * sizeof(*s->r));
	do {
		if (s->n == cap) {
			r = p_alloc(2 * cap * sizeof(*r));
			memcpy(r, s->r, cap * sizeof(*r));
			s->r = r;
			cap *= 2;
		}
		r = &s->r[s->n++];
		if (seqnum(&r->lo) < 0)
			return -1;
		r->hi = r->lo;
		if (p_char(':') && seqnum(&r->hi) < 0)
			return -1;
	} while (p_char(','));
	if (p_peek() != -1 && p_peek() != ' ' && p_peek() != ')')
		return fail("Invalid sequence set");
	return 0;
}

static int
cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

void
seq_resolve(struct seqset *s, uint32_t max)
{
	size_t i, o;
	uint32_t t;

	for (i = 0; i < s->n; i++) {
		if (s->r[i].lo == 0)
			s->r[i].lo = max;
		if (s->r[i].hi == 0)
			s->r[i].hi = max;
		if (s->r[i].lo > s->r[i].hi) {
			t = s->r[i].lo;
			s->r[i].lo = s->r[i].hi;
			s->r[i].hi = t;
		}
	}
	qsort(s->r, s->n, sizeof(*s->r), cmp_range);
	for (i = o = 0; i < s->n; i++) {
		if (o && s->r[i].lo <= s->r[o - 1].hi + 1ULL) {
			s->r[o - 1].hi = MAX(s->r[o - 1].hi, s->r[i].hi);
			continue;
		}
		s->r[o++] = s->r[i];
	}
	s->n = o;
}

int
seq_has(const struct seqset *s, uint32_t v)
{
	size_t lo = 0, hi = s->n, mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (v < s->r[mid].lo)
			hi = mid;
		else if (v > s->r[mid].hi)
			lo = mid + 1;
		else
			return 1;
	}
	return 0;
}

static int
digits(int n, int *v)
{
	int i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (pos >= len || line[pos] < '0' || line[pos] > '9')
			return -1;
		*v = *v * 10 + (line[pos++] - '0');
	}
	return 0;
}

static int
date_text(int *day, int *mon, int *year, int fixed)
{
	if (fixed && p_char(' ')) {
		if (digits(1, day) < 0)
			return fail("Invalid date");
	} else if (digits(1, day) < 0) {
		return fail("Invalid date");
	} else if (pos < len && line[pos] >= '0' && line[pos] <= '9') {
		*day = *day * 10 + (line[pos++] - '0');
	}
	if (!p_char('-') || pos + 4 > len || !(*mon = month_of(line + pos, 3)))
		return fail("Invalid date");
	pos += 3;
	if (!p_char('-') || digits(4, year) < 0)
		return fail("Invalid date");
	if (*day < 1 || *day > 31)
		return fail("Invalid date");
	return 0;
}

int
p_date(long long *days)
{
	int q = p_char('"'), day, mon, year;

	if (date_text(&day, &mon, &year, 0) < 0)
		return -1;
	if (q && !p_char('"'))
		return fail("Invalid date");
	*days = days_from_civil(year, mon, day);
	return 0;
}

int
p_datetime(long long *t)
{
	int day, mon, year, hh, mm, ss, zh, zm, sign;

	if (!p_char('"') || date_text(&day, &mon, &year, 1) < 0 ||
	    !p_char(' ') || digits(2, &hh) < 0 || !p_char(':') ||
	    digits(2, &mm) < 0 || !p_char(':') || digits(2, &ss) < 0 ||
	    !p_char(' '))
		return fail("Invalid date-time");
	if (p_char('+'))
		sign = 1;
	else if (p_char('-'))
		sign = -1;
	else
		return fail("Invalid date-time");
	if (digits(2, &zh) < 0 || digits(2, &zm) < 0 || !p_char('"'))
		return fail("Invalid date-time");
	if (hh > 23 || mm > 59 || ss > 60 || zm > 59)
		return fail("Invalid date-time");
	*t = days_from_civil(year, mon, day) * 86400 + hh * 3600 + mm * 60 +
	    ss - sign * (zh * 3600 + zm * 60);
	return 0;
}
