/* sieve.c: the Sieve language (RFC 5228): the lexer, the grammar into a
 * tree of commands and tests, and the check of every command against
 * what it accepts, with the extensions "require" must name.  Errors give
 * the line and column and what was expected.  Running a script is
 * sievexec.c's job. */
#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "sieve.h"
#include "util.h"

const char sieve_extensions[] = "fileinto envelope encoded-character "
    "imap4flags copy mailbox body variables relational subaddress date "
    "index regex vacation reject ereject include comparator-i;ascii-numeric";

static const struct {
	const char *name;
	unsigned bit;
} exts[] = {
	{ "fileinto", SX_FILEINTO }, { "envelope", SX_ENVELOPE },
	{ "encoded-character", SX_ENCODED }, { "imap4flags", SX_IMAP4FLAGS },
	{ "copy", SX_COPY }, { "mailbox", SX_MAILBOX }, { "body", SX_BODY },
	{ "variables", SX_VARIABLES }, { "relational", SX_RELATIONAL },
	{ "subaddress", SX_SUBADDRESS }, { "date", SX_DATE },
	{ "index", SX_INDEX }, { "regex", SX_REGEX },
	{ "vacation", SX_VACATION }, { "reject", SX_REJECT },
	{ "ereject", SX_EREJECT }, { "include", SX_INCLUDE },
	{ "comparator-i;ascii-numeric", SX_NUMERIC },
	{ "comparator-i;octet", 0 }, { "comparator-i;ascii-casemap", 0 },
};

/* --- the lexer ------------------------------------------------------- */

enum { T_EOF, T_ID, T_TAG, T_NUM, T_STR, T_PUNCT };

struct lexer {
	const char *p, *end;
	int line, col;		/* of p */
	/* the current token */
	int t;
	int tline, tcol;
	struct buf text;	/* identifier, tag or string */
	unsigned long long num;
	char err[200];
	int depth;
	unsigned ext;
};

static int
fail(struct lexer *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int
fail(struct lexer *l, const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	if (l->err[0])
		return -1;
	n = snprintf(l->err, sizeof(l->err), "line %d, column %d: ",
	    l->tline, l->tcol);
	va_start(ap, fmt);
	vsnprintf(l->err + n, sizeof(l->err) - n, fmt, ap);
	va_end(ap);
	/* script text quoted in the message goes to logs: one line */
	for (p = l->err; *p; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			*p = '?';
	return -1;
}

static void
adv(struct lexer *l, size_t k)
{
	for (; k && l->p < l->end; k--, l->p++) {
		if (*l->p == '\n') {
			l->line++;
			l->col = 1;
		} else
			l->col++;
	}
}

static int
skip_space(struct lexer *l)
{
	const char *e;

	while (l->p < l->end) {
		if (*l->p == ' ' || *l->p == '\t' || *l->p == '\r' ||
		    *l->p == '\n')
			adv(l, 1);
		else if (*l->p == '#')
			while (l->p < l->end && *l->p != '\n')
				adv(l, 1);
		else if (l->end - l->p >= 2 && !memcmp(l->p, "/*", 2)) {
			l->tline = l->line;
			l->tcol = l->col;
			for (e = l->p + 2; e + 1 < l->end &&
			    memcmp(e, "*/", 2); e++)
				;
			if (e + 1 >= l->end)
				return fail(l, "comment not closed");
			adv(l, e + 2 - l->p);
		} else
			break;
	}
	return 0;
}

static int
isidchar(int c, int first)
{
	return isalpha(c) || c == '_' || (!first && isdigit(c));
}

static int
lex_number(struct lexer *l)
{
	unsigned long long v = 0, mul = 1;

	while (l->p < l->end && isdigit((unsigned char)*l->p)) {
		if (v > (~0ULL - 9) / 10)
			return fail(l, "number too large");
		v = v * 10 + (*l->p - '0');
		adv(l, 1);
	}
	if (l->p < l->end && strchr("KkMmGg", *l->p)) {
		mul = strchr("Kk", *l->p) ? 1024ULL :
		    strchr("Mm", *l->p) ? 1024ULL * 1024 : 1024ULL * 1024 * 1024;
		adv(l, 1);
	}
	if (mul > 1 && v > ~0ULL / mul)
		return fail(l, "number too large");
	l->num = v * mul;
	l->t = T_NUM;
	return 0;
}

static int
lex_quoted(struct lexer *l)
{
	adv(l, 1);
	while (l->p < l->end && *l->p != '"') {
		/* "\x" is x for any x (RFC 5228 2.4.2) */
		if (*l->p == '\\')
			adv(l, 1);
		if (l->p >= l->end)
			break;
		buf_addc(&l->text, *l->p);
		adv(l, 1);
	}
	if (l->p >= l->end)
		return fail(l, "string not closed: expected '\"'");
	adv(l, 1);
	l->t = T_STR;
	return 0;
}

/* "text:" up to a line of a single ".", dot-stuffing undone */
static int
lex_multiline(struct lexer *l)
{
	const char *e;
	size_t n;

	adv(l, 5);
	while (l->p < l->end && (*l->p == ' ' || *l->p == '\t'))
		adv(l, 1);
	if (l->p < l->end && *l->p == '#')
		while (l->p < l->end && *l->p != '\n')
			adv(l, 1);
	if (l->p < l->end && *l->p == '\r')
		adv(l, 1);
	if (l->p >= l->end || *l->p != '\n')
		return fail(l, "expected a line end after \"text:\"");
	adv(l, 1);
	for (;;) {
		if (l->p >= l->end)
			return fail(l, "text: not ended by a line \".\"");
		e = memchr(l->p, '\n', l->end - l->p);
		n = (e ? e : l->end) - l->p;
		if ((n == 1 && *l->p == '.') ||
		    (n == 2 && !memcmp(l->p, ".\r", 2))) {
			adv(l, n + 1);
			break;
		}
		if (*l->p == '.')
			buf_add(&l->text, l->p + 1, n - 1);
		else
			buf_add(&l->text, l->p, n);
		if (e)
			buf_addc(&l->text, '\n');
		adv(l, n + (e != NULL));
	}
	l->t = T_STR;
	return 0;
}

static int
next(struct lexer *l)
{
	if (skip_space(l) < 0)
		return -1;
	l->tline = l->line;
	l->tcol = l->col;
	buf_reset(&l->text);
	if (l->p >= l->end) {
		l->t = T_EOF;
		return 0;
	}
	if (isdigit((unsigned char)*l->p))
		return lex_number(l);
	if (*l->p == '"')
		return lex_quoted(l);
	if (l->end - l->p >= 5 && !ascii_ncasecmp(l->p, "text:", 5))
		return lex_multiline(l);
	if (*l->p == ':' || isidchar((unsigned char)*l->p, 1)) {
		l->t = *l->p == ':' ? T_TAG : T_ID;
		if (*l->p == ':')
			adv(l, 1);
		if (l->p >= l->end || !isidchar((unsigned char)*l->p, 1))
			return fail(l, "expected a tag name after ':'");
		while (l->p < l->end && isidchar((unsigned char)*l->p, 0)) {
			buf_addc(&l->text, tolower((unsigned char)*l->p));
			adv(l, 1);
		}
		return 0;
	}
	if (strchr("[](){},;", *l->p)) {
		l->t = T_PUNCT;
		buf_addc(&l->text, *l->p);
		adv(l, 1);
		return 0;
	}
	return fail(l, "unexpected character '%s%c'",
	    (unsigned char)*l->p < ' ' ? "\\" : "",
	    (unsigned char)*l->p < ' ' ? '?' : *l->p);
}

static int
ispunct_(struct lexer *l, char c)
{
	return l->t == T_PUNCT && l->text.p[0] == c;
}

static const char *
tokname(struct lexer *l)
{
	static char s[48];

	switch (l->t) {
	case T_EOF:
		return "the end of the script";
	case T_NUM:
		return "a number";
	case T_STR:
		return "a string";
	case T_TAG:
		snprintf(s, sizeof(s), "\":%.30s\"", l->text.p);
		return s;
	case T_ID:
		snprintf(s, sizeof(s), "\"%.30s\"", l->text.p);
		return s;
	default:
		snprintf(s, sizeof(s), "'%c'", l->text.p[0]);
		return s;
	}
}

/* --- encoded-character (RFC 5228 2.4.2.4) ------------------------------ */

static int
hexval(int c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
}

/* the units of "${hex:...}" or "${unicode:...}" between s and e into b:
 * -1 when one is malformed (the text is then left as it is) */
static int
encoded_units(struct buf *b, const char *s, const char *e, int uni)
{
	unsigned long v;
	int n, d;

	while (s < e) {
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		if (s == e)
			break;
		for (v = 0, n = 0; s < e && (d = hexval((unsigned char)*s)) >= 0;
		    s++, n++) {
			if (n >= (uni ? 6 : 2))
				return -1;
			v = v * 16 + d;
		}
		if (!n || (s < e && *s != ' ' && *s != '\t'))
			return -1;
		if (uni && (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)))
			return -1;
		if (uni)
			buf_add_utf8(b, v);
		else
			buf_addc(b, v);
	}
	return 0;
}

static char *
decode_encoded(const char *s)
{
	struct buf b = { 0 };
	const char *e;
	size_t save;
	int uni;

	while (*s) {
		uni = !ascii_ncasecmp(s, "${unicode:", 10);
		if ((uni || !ascii_ncasecmp(s, "${hex:", 6)) &&
		    (e = strchr(s, '}'))) {
			save = b.len;
			if (encoded_units(&b, s + (uni ? 10 : 6), e, uni) == 0) {
				s = e + 1;
				continue;
			}
			b.len = save;
		}
		buf_addc(&b, *s++);
	}
	buf_addc(&b, '\0');
	return b.p;
}

/* --- the grammar ----------------------------------------------------- */

static int parse_test(struct lexer *, struct sv_node *);

static char *
take_text(struct lexer *l)
{
	char *s;

	if (memchr(l->text.p ? l->text.p : "", '\0', l->text.len) &&
	    l->text.len) {
		fail(l, "a NUL in a string");
		return NULL;
	}
	s = l->text.p ? xstrdup(l->text.p) : xstrdup("");
	if ((l->ext & SX_ENCODED) && strstr(s, "${")) {
		char *d = decode_encoded(s);

		free(s);
		s = d;
	}
	return s;
}

static int
parse_strlist(struct lexer *l, struct sv_arg *a)
{
	size_t cap = 0;

	a->list = 1;
	if (next(l) < 0)
		return -1;
	for (;;) {
		if (l->t != T_STR)
			return fail(l, "expected a string in the list, found %s",
			    tokname(l));
		if (a->ns == cap)
			a->s = xreallocarray(a->s, cap = cap ? cap * 2 : 4,
			    sizeof(char *));
		if (!(a->s[a->ns] = take_text(l)))
			return -1;
		a->ns++;
		if (next(l) < 0)
			return -1;
		if (ispunct_(l, ']'))
			return next(l);
		if (!ispunct_(l, ','))
			return fail(l, "expected ',' or ']', found %s",
			    tokname(l));
		if (next(l) < 0)
			return -1;
	}
}

static struct sv_arg *
new_arg(struct sv_node *n, struct lexer *l)
{
	struct sv_arg *a;

	n->args = xreallocarray(n->args, n->nargs + 1, sizeof(*a));
	a = &n->args[n->nargs++];
	memset(a, 0, sizeof(*a));
	a->line = l->tline;
	a->col = l->tcol;
	return a;
}

/* arguments, then a test or a test list when one follows */
static int
parse_args(struct lexer *l, struct sv_node *n)
{
	struct sv_arg *a;

	for (;;) {
		if (l->t == T_NUM) {
			a = new_arg(n, l);
			a->type = SA_NUM;
			a->num = l->num;
		} else if (l->t == T_TAG) {
			a = new_arg(n, l);
			a->type = SA_TAG;
			a->tag = xstrdup(l->text.p);
		} else if (l->t == T_STR) {
			a = new_arg(n, l);
			a->type = SA_STR;
			a->s = xmalloc(sizeof(char *));
			if (!(a->s[0] = take_text(l)))
				return -1;
			a->ns = 1;
		} else if (ispunct_(l, '[')) {
			a = new_arg(n, l);
			a->type = SA_STR;
			if (parse_strlist(l, a) < 0)
				return -1;
			continue;
		} else
			break;
		if (next(l) < 0)
			return -1;
	}
	if (l->t == T_ID) {
		n->tests = xcalloc(1, sizeof(struct sv_node));
		n->ntests = 1;
		return parse_test(l, n->tests);
	}
	if (!ispunct_(l, '('))
		return 0;
	do {
		if (next(l) < 0)
			return -1;
		n->tests = xreallocarray(n->tests, n->ntests + 1,
		    sizeof(struct sv_node));
		memset(&n->tests[n->ntests], 0, sizeof(struct sv_node));
		if (parse_test(l, &n->tests[n->ntests++]) < 0)
			return -1;
	} while (ispunct_(l, ','));
	if (!ispunct_(l, ')'))
		return fail(l, "expected ',' or ')' in the test list, found %s",
		    tokname(l));
	return next(l);
}

static int
parse_test(struct lexer *l, struct sv_node *n)
{
	int r;

	if (l->t != T_ID)
		return fail(l, "expected a test, found %s", tokname(l));
	if (++l->depth > SIEVE_DEPTH_MAX)
		return fail(l, "tests nested too deeply");
	n->name = xstrdup(l->text.p);
	n->line = l->tline;
	n->col = l->tcol;
	r = next(l) < 0 ? -1 : parse_args(l, n);
	l->depth--;
	return r;
}

static int parse_commands(struct lexer *, struct sv_node **, size_t *,
    int inblock);

static int
parse_command(struct lexer *l, struct sv_node *n)
{
	n->name = xstrdup(l->text.p);
	n->line = l->tline;
	n->col = l->tcol;
	if (next(l) < 0 || parse_args(l, n) < 0)
		return -1;
	if (ispunct_(l, ';'))
		return next(l);
	if (!ispunct_(l, '{'))
		return fail(l, "expected ';' or '{' after \"%s\", found %s",
		    n->name, tokname(l));
	if (++l->depth > SIEVE_DEPTH_MAX)
		return fail(l, "blocks nested too deeply");
	n->hasblock = 1;
	if (next(l) < 0 || parse_commands(l, &n->block, &n->nblock, 1) < 0)
		return -1;
	l->depth--;
	return next(l);
}

static int check_command(struct lexer *, struct sv_node *, struct sv_node *,
    int first);

static int
parse_commands(struct lexer *l, struct sv_node **v, size_t *n, int inblock)
{
	size_t cap = 0;
	int line, col;

	for (;;) {
		if (inblock && ispunct_(l, '}'))
			return 0;
		if (l->t == T_EOF) {
			if (inblock)
				return fail(l, "expected '}' before the end");
			return 0;
		}
		if (l->t != T_ID)
			return fail(l, "expected a command, found %s",
			    tokname(l));
		if (*n == cap)
			*v = xreallocarray(*v, cap = cap ? cap * 2 : 8,
			    sizeof(**v));
		memset(&(*v)[*n], 0, sizeof(**v));
		/* counted before it is whole, so that an error frees it */
		if (parse_command(l, &(*v)[(*n)++]) < 0)
			return -1;
		/* the check moves the error position: keep the token's */
		line = l->tline;
		col = l->tcol;
		if (check_command(l, &(*v)[*n - 1], *n > 1 ? &(*v)[*n - 2] :
		    NULL, !inblock && (*n == 1 ||
		    !strcmp((*v)[*n - 2].name, "require"))) < 0)
			return -1;
		l->tline = line;
		l->tcol = col;
	}
}

/* --- checking commands and tests ------------------------------------- *
 * Each takes tags (":name" alone, or followed by a value: "=s" string,
 * "=l" string list, "=n" number) and positional arguments ("s" string,
 * "l" string list, "n" number; "?" makes the next one optional in front,
 * as in addflag ["var"] <flags>). */

enum { K_CMD, K_TEST };

struct spec {
	const char *name;
	int kind;
	unsigned ext;
	const char *tags;
	const char *pos;
	int tests;		/* -1 a list, 1 one test, 0 none */
	int block;
};

#define MATCH " :is :contains :matches :regex :count=s :value=s :comparator=s "
#define ADDR " :all :localpart :domain :user :detail "
#define IDX " :index=n :last "

static const struct spec specs[] = {
	{ "require", K_CMD, 0, "", "l", 0, 0 },
	{ "if", K_CMD, 0, "", "", 1, 1 },
	{ "elsif", K_CMD, 0, "", "", 1, 1 },
	{ "else", K_CMD, 0, "", "", 0, 1 },
	{ "stop", K_CMD, 0, "", "", 0, 0 },
	{ "keep", K_CMD, 0, " :flags=l ", "", 0, 0 },
	{ "discard", K_CMD, 0, "", "", 0, 0 },
	{ "redirect", K_CMD, 0, " :copy ", "s", 0, 0 },
	{ "fileinto", K_CMD, SX_FILEINTO, " :copy :create :flags=l ", "s", 0, 0 },
	{ "setflag", K_CMD, SX_IMAP4FLAGS, "", "?sl", 0, 0 },
	{ "addflag", K_CMD, SX_IMAP4FLAGS, "", "?sl", 0, 0 },
	{ "removeflag", K_CMD, SX_IMAP4FLAGS, "", "?sl", 0, 0 },
	{ "set", K_CMD, SX_VARIABLES, " :lower :upper :lowerfirst "
	    ":upperfirst :quotewildcard :quoteregex :length ", "ss", 0, 0 },
	{ "vacation", K_CMD, SX_VACATION, " :days=n :subject=s :from=s "
	    ":addresses=l :mime :handle=s ", "s", 0, 0 },
	{ "reject", K_CMD, SX_REJECT, "", "s", 0, 0 },
	{ "ereject", K_CMD, SX_EREJECT, "", "s", 0, 0 },
	{ "include", K_CMD, SX_INCLUDE, " :personal :global :once "
	    ":optional ", "s", 0, 0 },
	{ "return", K_CMD, SX_INCLUDE, "", "", 0, 0 },
	{ "global", K_CMD, SX_INCLUDE, "", "l", 0, 0 },
	{ "true", K_TEST, 0, "", "", 0, 0 },
	{ "false", K_TEST, 0, "", "", 0, 0 },
	{ "not", K_TEST, 0, "", "", 1, 0 },
	{ "allof", K_TEST, 0, "", "", -1, 0 },
	{ "anyof", K_TEST, 0, "", "", -1, 0 },
	{ "exists", K_TEST, 0, "", "l", 0, 0 },
	{ "size", K_TEST, 0, " :over :under ", "n", 0, 0 },
	{ "header", K_TEST, 0, MATCH IDX, "ll", 0, 0 },
	{ "address", K_TEST, 0, MATCH ADDR IDX, "ll", 0, 0 },
	{ "envelope", K_TEST, SX_ENVELOPE, MATCH ADDR, "ll", 0, 0 },
	{ "body", K_TEST, SX_BODY, MATCH " :raw :text :content=l ", "l", 0, 0 },
	{ "string", K_TEST, SX_VARIABLES, MATCH, "ll", 0, 0 },
	{ "hasflag", K_TEST, SX_IMAP4FLAGS, MATCH, "?ll", 0, 0 },
	{ "mailboxexists", K_TEST, SX_MAILBOX, "", "l", 0, 0 },
	{ "date", K_TEST, SX_DATE, MATCH IDX " :zone=s :originalzone ",
	    "sll", 0, 0 },
	{ "currentdate", K_TEST, SX_DATE, MATCH " :zone=s ", "sl", 0, 0 },
};

/* the tags each extension brings to commands that exist without it */
static const struct {
	const char *tag;
	unsigned ext;
} tag_exts[] = {
	{ "copy", SX_COPY }, { "create", SX_MAILBOX }, { "flags",
	    SX_IMAP4FLAGS }, { "regex", SX_REGEX }, { "count", SX_RELATIONAL },
	{ "value", SX_RELATIONAL }, { "user", SX_SUBADDRESS },
	{ "detail", SX_SUBADDRESS }, { "index", SX_INDEX },
	{ "last", SX_INDEX }, { "quoteregex", SX_REGEX },
};

static const char *const relations[] = { "gt", "ge", "lt", "le", "eq", "ne" };

static const struct spec *
find_spec(const char *name, int kind)
{
	size_t i;

	for (i = 0; i < LEN(specs); i++)
		if (specs[i].kind == kind && !strcmp(specs[i].name, name))
			return &specs[i];
	return NULL;
}

static const char *
ext_name(unsigned bit)
{
	size_t i;

	for (i = 0; i < LEN(exts); i++)
		if (exts[i].bit == bit)
			return exts[i].name;
	return "?";
}

/* the value type of tag in a tag list: 0 none, 's', 'l', 'n'; -1 when
 * the list does not hold it */
static int
tag_in(const char *tags, const char *tag)
{
	const char *p = tags;
	size_t k = strlen(tag);

	while ((p = strstr(p, tag))) {
		if (p > tags && p[-1] == ':' && (p[k] == ' ' || p[k] == '='))
			return p[k] == '=' ? p[k + 1] : 0;
		p += k;
	}
	return -1;
}

static int
check_arg_type(struct lexer *l, struct sv_arg *a, int want, const char *what)
{
	l->tline = a->line;
	l->tcol = a->col;
	if (want == 'n' && a->type != SA_NUM)
		return fail(l, "expected a number for %s", what);
	if ((want == 's' || want == 'l') && a->type != SA_STR)
		return fail(l, "expected a %s for %s", want == 's' ? "string" :
		    "string list", what);
	if (want == 's' && a->list && a->ns != 1)
		return fail(l, "expected a single string for %s", what);
	return 0;
}

/* what a tag's value must hold */
static int
check_tag_value(struct lexer *l, const char *tag, struct sv_arg *v)
{
	size_t i;

	if (!strcmp(tag, "comparator")) {
		if (strcmp(v->s[0], "i;octet") &&
		    strcmp(v->s[0], "i;ascii-casemap") &&
		    (strcmp(v->s[0], "i;ascii-numeric") ||
		    !(l->ext & SX_NUMERIC)))
			return fail(l, "comparator \"%.40s\" not known or "
			    "not required", v->s[0]);
	} else if (!strcmp(tag, "count") || !strcmp(tag, "value")) {
		for (i = 0; i < LEN(relations); i++)
			if (!ascii_casecmp(v->s[0], relations[i]))
				return 0;
		return fail(l, "expected a relation (gt, ge, lt, le, eq, ne)");
	} else if (!strcmp(tag, "index") && v->num == 0)
		return fail(l, "the index counts from 1");
	return 0;
}

/* the tags of n, each known, allowed by a required extension, and with
 * its value; the index of the first positional argument into *first */
static int
check_tags(struct lexer *l, const struct spec *sp, struct sv_node *n,
    size_t *first, int *groups)
{
	size_t i, k;
	int t;

	for (i = 0; i < n->nargs && n->args[i].type == SA_TAG; i++) {
		struct sv_arg *a = &n->args[i];

		l->tline = a->line;
		l->tcol = a->col;
		if ((t = tag_in(sp->tags, a->tag)) < 0)
			return fail(l, "\"%s\" takes no tag \":%.30s\"", n->name,
			    a->tag);
		for (k = 0; k < LEN(tag_exts); k++)
			if (!strcmp(tag_exts[k].tag, a->tag) &&
			    !(l->ext & tag_exts[k].ext))
				return fail(l, "\":%s\" needs require \"%s\"",
				    a->tag, ext_name(tag_exts[k].ext));
		if (tag_in(MATCH, a->tag) >= 0 && strcmp(a->tag, "comparator"))
			groups[0]++;
		if (tag_in(ADDR, a->tag) >= 0)
			groups[1]++;
		if (!t)
			continue;
		if (i + 1 >= n->nargs)
			return fail(l, "\":%s\" needs a value", a->tag);
		if (check_arg_type(l, &n->args[i + 1], t, a->tag) < 0 ||
		    check_tag_value(l, a->tag, &n->args[++i]) < 0)
			return -1;
	}
	*first = i;
	return 0;
}

static int
check_regex(struct lexer *l, struct sv_node *n, struct sv_arg *keys)
{
	regex_t re;
	size_t i;
	const char *s;

	for (i = 0; i < keys->ns; i++) {
		for (s = keys->s[i]; (s = strchr(s, '\\')); s += 2)
			if (isdigit((unsigned char)s[1]))
				return fail(l, "back-references are not allowed "
				    "in a regex");
			else if (!s[1])
				break;
		if (strstr(keys->s[i], "${") && (l->ext & SX_VARIABLES))
			continue;	/* known when it runs */
		/* as either comparator will compile it when it runs */
		if (regcomp(&re, keys->s[i], REG_EXTENDED | REG_NOSUB) != 0)
			return fail(l, "not a valid regex: \"%.40s\"",
			    keys->s[i]);
		regfree(&re);
		if (regcomp(&re, keys->s[i], REG_EXTENDED | REG_NOSUB |
		    REG_ICASE) != 0)
			return fail(l, "not a valid regex: \"%.40s\"",
			    keys->s[i]);
		regfree(&re);
	}
	return 0;
}

static int
has_tag(struct sv_node *n, const char *tag)
{
	size_t i;

	for (i = 0; i < n->nargs; i++)
		if (n->args[i].type == SA_TAG && !strcmp(n->args[i].tag, tag))
			return 1;
	return 0;
}

/* positional arguments, in order after the tags */
static int
check_positional(struct lexer *l, const struct spec *sp, struct sv_node *n,
    size_t first)
{
	const char *pos = sp->pos;
	size_t have = n->nargs - first, want = strlen(pos), i;

	if (*pos == '?') {
		pos++;
		want--;
		if (have == want - 1)
			pos++, want--;
	}
	if (have != want) {
		if (have < want || !n->nargs)
			return fail(l, "\"%s\" needs %zu argument%s after its "
			    "tags", n->name, want, want == 1 ? "" : "s");
		l->tline = n->args[first + want].line;
		l->tcol = n->args[first + want].col;
		return fail(l, "\"%s\" takes %zu argument%s after its tags",
		    n->name, want, want == 1 ? "" : "s");
	}
	for (i = 0; i < want; i++)
		if (check_arg_type(l, &n->args[first + i], pos[i],
		    n->name) < 0)
			return -1;
	return 0;
}

static int check_node(struct lexer *, struct sv_node *, int kind);

static int
check_subtests(struct lexer *l, const struct spec *sp, struct sv_node *n)
{
	size_t i;

	if ((sp->tests == 0 && n->ntests) || (sp->tests == 1 &&
	    n->ntests != 1) || (sp->tests == -1 && !n->ntests))
		return fail(l, sp->tests ? "\"%s\" needs %s" :
		    "\"%s\" takes no test", n->name, sp->tests == 1 ?
		    "one test" : "a list of tests in ( )");
	for (i = 0; i < n->ntests; i++)
		if (check_node(l, &n->tests[i], K_TEST) < 0)
			return -1;
	return 0;
}

static int
check_node(struct lexer *l, struct sv_node *n, int kind)
{
	const struct spec *sp;
	size_t first = 0;
	int groups[2] = { 0, 0 };

	l->tline = n->line;
	l->tcol = n->col;
	if (!(sp = find_spec(n->name, kind)))
		return fail(l, "unknown %s \"%.40s\"", kind == K_CMD ?
		    "command" : "test", n->name);
	if (sp->ext && !(l->ext & sp->ext))
		return fail(l, "\"%s\" needs require \"%s\"", n->name,
		    ext_name(sp->ext));
	if (check_tags(l, sp, n, &first, groups) < 0)
		return -1;
	l->tline = n->line;
	l->tcol = n->col;
	if (groups[0] > 1 || groups[1] > 1)
		return fail(l, "\"%s\" has more than one %s", n->name,
		    groups[0] > 1 ? "match type" : "address part");
	n->npos = n->nargs - first;
	if (check_positional(l, sp, n, first) < 0 ||
	    check_subtests(l, sp, n) < 0)
		return -1;
	if (sp->block != n->hasblock)
		return fail(l, sp->block ? "\"%s\" needs a block { }" :
		    "\"%s\" takes no block; expected ';'", n->name);
	if (has_tag(n, "regex"))
		return check_regex(l, n, &n->args[n->nargs - 1]);
	return 0;
}

static int
check_require(struct lexer *l, struct sv_node *n)
{
	size_t i, k;
	struct sv_arg *a = &n->args[0];

	for (i = 0; i < a->ns; i++) {
		for (k = 0; k < LEN(exts); k++)
			if (!strcmp(a->s[i], exts[k].name))
				break;
		if (k == LEN(exts)) {
			l->tline = a->line;
			l->tcol = a->col;
			return fail(l, "extension \"%.40s\" is not supported",
			    a->s[i]);
		}
		l->ext |= exts[k].bit;
	}
	return 0;
}

static int
check_command(struct lexer *l, struct sv_node *n, struct sv_node *prev,
    int first)
{
	if (!strcmp(n->name, "require")) {
		l->tline = n->line;
		l->tcol = n->col;
		if (!first)
			return fail(l, "\"require\" must come before any other "
			    "command");
		if (check_node(l, n, K_CMD) < 0)
			return -1;
		return check_require(l, n);
	}
	if ((!strcmp(n->name, "elsif") || !strcmp(n->name, "else")) &&
	    (!prev || (strcmp(prev->name, "if") &&
	    strcmp(prev->name, "elsif")))) {
		l->tline = n->line;
		l->tcol = n->col;
		return fail(l, "\"%s\" without \"if\" before it", n->name);
	}
	if (check_node(l, n, K_CMD) < 0)
		return -1;
	if (!strcmp(n->name, "global") && !(l->ext & SX_VARIABLES))
		return fail(l, "\"global\" needs require \"variables\"");
	if (!strcmp(n->name, "include") && has_tag(n, "personal") &&
	    has_tag(n, "global"))
		return fail(l, "\"include\" takes :personal or :global, "
		    "not both");
	if (!strcmp(n->name, "include") && (strchr(n->args[n->nargs - 1].s[0],
	    '/') || !n->args[n->nargs - 1].s[0][0]))
		return fail(l, "an included script's name holds no \"/\" "
		    "and is not empty");
	return 0;
}

/* --- the tree -------------------------------------------------------- */

static void
free_nodes(struct sv_node *v, size_t n)
{
	size_t i, k, j;

	for (i = 0; i < n; i++) {
		for (k = 0; k < v[i].nargs; k++) {
			for (j = 0; j < v[i].args[k].ns; j++)
				free(v[i].args[k].s[j]);
			free(v[i].args[k].s);
			free(v[i].args[k].tag);
		}
		free(v[i].args);
		free_nodes(v[i].tests, v[i].ntests);
		free_nodes(v[i].block, v[i].nblock);
		free(v[i].name);
	}
	free(v);
}

void
sieve_free(struct sv_script *s)
{
	if (!s)
		return;
	free_nodes(s->cmds, s->ncmds);
	free(s);
}

struct sv_script *
sieve_parse(const char *p, size_t n, char *err, size_t errsz)
{
	struct lexer l;
	struct sv_script *s = xcalloc(1, sizeof(*s));

	memset(&l, 0, sizeof(l));
	l.p = p;
	l.end = p + n;
	l.line = l.col = 1;
	if (n > SIEVE_SIZE_MAX) {
		snprintf(err, errsz, "script larger than %d bytes",
		    SIEVE_SIZE_MAX);
		sieve_free(s);
		return NULL;
	}
	if (next(&l) < 0 || parse_commands(&l, &s->cmds, &s->ncmds, 0) < 0) {
		snprintf(err, errsz, "%s", l.err);
		buf_free(&l.text);
		sieve_free(s);
		return NULL;
	}
	s->ext = l.ext;
	buf_free(&l.text);
	return s;
}
