/* sievexec.c: running a parsed Sieve script (sieve.c) against one
 * message: the tests with their comparators and match types, variables,
 * flags, include, and the list of actions with the implicit keep
 * (RFC 5228 2.10).  It decides; deliver.c does. */
#include <ctype.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "mime.h"
#include "sieve.h"
#include "util.h"

struct var {
	char *name, *val;
};

struct vars {
	struct var *v;
	size_t n;
};

struct strs;

/* what every script of one run shares: the global variables and the
 * scripts included so far (RFC 6609) */
struct shared {
	struct vars global;
	char **included;
	size_t nincluded;
	char *bodykey;		/* the last body test's transform and types */
	struct strs *bodyvals;	/* and the strings it read */
};

/* one script's run; an include runs with its own */
struct ctx {
	const struct sv_msg *m;
	struct sv_result *r;
	sv_loader load;
	void *loadarg;
	unsigned ext;
	struct vars local;
	char **globals;		/* names this script declared global */
	size_t nglobals;
	char *match[10];	/* ${0} .. ${9} of the last match */
	int depth;		/* of include */
	const char *id;		/* the script, as the loader names it */
	const struct ctx *parent;	/* the script that included this one */
	struct shared *sh;
	int *redirects;
	struct buf *flags;	/* the internal flags variable, space separated */
};

enum { RUN_ON, RUN_STOP, RUN_RETURN, RUN_ERR = -1 };

static int
run_error(struct ctx *c, const struct sv_node *n, const char *why)
{
	if (!c->r->err[0])
		snprintf(c->r->err, sizeof(c->r->err), "line %d: %s",
		    n->line, why);
	return RUN_ERR;
}

/* --- variables (RFC 5229; global ones RFC 6609 5) ------------------------ */

static void
vars_free(struct vars *vs)
{
	while (vs->n--) {
		free(vs->v[vs->n].name);
		free(vs->v[vs->n].val);
	}
	free(vs->v);
	vs->v = NULL;
	vs->n = 0;
}

/* the set a name lives in, the name made bare: "global.x" and names
 * declared global are in the shared set */
static struct vars *
var_scope(struct ctx *c, const char **name, size_t *len)
{
	size_t i;

	if (!(c->ext & SX_INCLUDE))
		return &c->local;
	if (*len > 7 && !ascii_ncasecmp(*name, "global.", 7)) {
		*name += 7;
		*len -= 7;
		return &c->sh->global;
	}
	for (i = 0; i < c->nglobals; i++)
		if (strlen(c->globals[i]) == *len &&
		    !ascii_ncasecmp(c->globals[i], *name, *len))
			return &c->sh->global;
	return &c->local;
}

static struct var *
var_find(struct ctx *c, const char *name, size_t len)
{
	struct vars *vs = var_scope(c, &name, &len);
	size_t i;

	for (i = 0; i < vs->n; i++)
		if (strlen(vs->v[i].name) == len &&
		    !ascii_ncasecmp(vs->v[i].name, name, len))
			return &vs->v[i];
	return NULL;
}

static int
var_set(struct ctx *c, const char *name, const char *val)
{
	struct var *v = var_find(c, name, strlen(name));
	size_t n = strlen(val), k = strlen(name);
	struct vars *vs;

	if (!v) {
		vs = var_scope(c, &name, &k);
		if (vs->n >= SIEVE_VARS_MAX)
			return -1;
		vs->v = xreallocarray(vs->v, vs->n + 1, sizeof(*v));
		v = &vs->v[vs->n++];
		v->name = xstrdup(name);
	} else
		free(v->val);
	/* cut at SIEVE_VAR_MAX, not inside a UTF-8 sequence */
	if (n > SIEVE_VAR_MAX)
		for (n = SIEVE_VAR_MAX; n && (val[n] & 0xc0) == 0x80; n--)
			;
	v->val = xmalloc(n + 1);
	memcpy(v->val, val, n);
	v->val[n] = '\0';
	return 0;
}

/* length of a variable name at s ("a.b_c" or digits), 0 for none */
static size_t
var_name(const char *s)
{
	size_t i = 0;

	if (isdigit((unsigned char)*s)) {
		while (isdigit((unsigned char)s[i]))
			i++;
		return i;
	}
	for (;;) {
		if (!isalpha((unsigned char)s[i]) && s[i] != '_')
			return 0;
		while (isalnum((unsigned char)s[i]) || s[i] == '_')
			i++;
		if (s[i] != '.')
			return i;
		i++;
	}
}

/* a name set may take: an identifier, or one in the global namespace */
static int
var_settable(struct ctx *c, const char *name)
{
	if ((c->ext & SX_INCLUDE) && !ascii_ncasecmp(name, "global.", 7))
		name += 7;
	return var_name(name) == strlen(name) &&
	    !isdigit((unsigned char)*name) && !strchr(name, '.');
}

static const char *
var_value(struct ctx *c, const char *name, size_t len)
{
	struct var *v;
	long k;

	if (isdigit((unsigned char)*name)) {
		k = strtol(name, NULL, 10);
		return k < 10 && c->match[k] ? c->match[k] : "";
	}
	v = var_find(c, name, len);
	return v ? v->val : "";
}

/* s with its variables substituted, malloc'd */
static char *
expand(struct ctx *c, const char *s)
{
	struct buf b = { 0 };
	size_t k;

	if (!(c->ext & SX_VARIABLES) || !strstr(s, "${"))
		return xstrdup(s);
	while (*s) {
		if (s[0] == '$' && s[1] == '{' && (k = var_name(s + 2)) &&
		    s[2 + k] == '}') {
			buf_adds(&b, var_value(c, s + 2, k));
			s += 3 + k;
		} else
			buf_addc(&b, *s++);
		if (b.len > SIEVE_VAR_MAX * 4)
			break;
	}
	buf_addc(&b, '\0');
	return b.p;
}

struct strs {
	char **v;
	size_t n;
};

static void
strs_add(struct strs *l, const char *s, size_t n)
{
	l->v = xreallocarray(l->v, l->n + 1, sizeof(char *));
	l->v[l->n] = xmalloc(n + 1);
	memcpy(l->v[l->n], s, n);
	l->v[l->n++][n] = '\0';
}

static void
strs_free(struct strs *l)
{
	while (l->n)
		free(l->v[--l->n]);
	free(l->v);
	l->v = NULL;
}

static void
strs_expand(struct ctx *c, const struct sv_arg *a, struct strs *out)
{
	size_t i;
	char *s;

	for (i = 0; i < a->ns; i++) {
		s = expand(c, a->s[i]);
		strs_add(out, s, strlen(s));
		free(s);
	}
}

/* --- arguments ------------------------------------------------------------ */

static const struct sv_arg *
tag_value(const struct sv_node *n, const char *tag)
{
	size_t i;

	for (i = 0; i + 1 < n->nargs; i++)
		if (n->args[i].type == SA_TAG && !strcmp(n->args[i].tag, tag))
			return &n->args[i + 1];
	return NULL;
}

static int
has_tag(const struct sv_node *n, const char *tag)
{
	size_t i;

	for (i = 0; i < n->nargs; i++)
		if (n->args[i].type == SA_TAG && !strcmp(n->args[i].tag, tag))
			return 1;
	return 0;
}

/* positional argument k counted from the end (0: the last) */
static const struct sv_arg *
from_end(const struct sv_node *n, size_t k)
{
	return &n->args[n->nargs - 1 - k];
}

/* --- comparators and match types (RFC 5228 2.7, RFC 4790, RFC 5231) ----- */

enum { CMP_OCTET, CMP_CASE, CMP_NUM };
enum { M_IS, M_CONTAINS, M_MATCHES, M_REGEX, M_COUNT, M_VALUE };

struct matcher {
	int cmp, type;
	const char *rel;	/* :count / :value relation */
};

static void
matcher_of(const struct sv_node *n, struct matcher *mt)
{
	const struct sv_arg *a;

	mt->cmp = CMP_CASE;
	if ((a = tag_value(n, "comparator")))
		mt->cmp = !strcmp(a->s[0], "i;octet") ? CMP_OCTET :
		    !strcmp(a->s[0], "i;ascii-numeric") ? CMP_NUM : CMP_CASE;
	mt->type = has_tag(n, "contains") ? M_CONTAINS :
	    has_tag(n, "matches") ? M_MATCHES : has_tag(n, "regex") ? M_REGEX :
	    has_tag(n, "count") ? M_COUNT : has_tag(n, "value") ? M_VALUE : M_IS;
	mt->rel = NULL;
	if ((a = tag_value(n, "count")) || (a = tag_value(n, "value")))
		mt->rel = a->s[0];
}

static int
fold(int c, int cmp)
{
	return cmp == CMP_CASE && c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* i;ascii-numeric: the leading digits as a number; none is infinity */
static int
num_cmp(const char *a, const char *b)
{
	size_t la, lb;
	int ia = isdigit((unsigned char)*a), ib = isdigit((unsigned char)*b);

	if (!ia || !ib)
		return ia == ib ? 0 : ia ? -1 : 1;
	while (*a == '0' && isdigit((unsigned char)a[1]))
		a++;
	while (*b == '0' && isdigit((unsigned char)b[1]))
		b++;
	for (la = 0; isdigit((unsigned char)a[la]); la++)
		;
	for (lb = 0; isdigit((unsigned char)b[lb]); lb++)
		;
	if (la != lb)
		return la < lb ? -1 : 1;
	return strncmp(a, b, la);
}

static int
str_cmp(const char *a, const char *b, int cmp)
{
	int x, y;

	if (cmp == CMP_NUM)
		return num_cmp(a, b);
	for (;; a++, b++) {
		x = fold((unsigned char)*a, cmp);
		y = fold((unsigned char)*b, cmp);
		if (x != y || !x)
			return x - y;
	}
}

static int
relation(const char *rel, int d)
{
	if (!ascii_casecmp(rel, "gt"))
		return d > 0;
	if (!ascii_casecmp(rel, "ge"))
		return d >= 0;
	if (!ascii_casecmp(rel, "lt"))
		return d < 0;
	if (!ascii_casecmp(rel, "le"))
		return d <= 0;
	if (!ascii_casecmp(rel, "eq"))
		return d == 0;
	return d != 0;
}

static int
contains(const char *s, const char *key, int cmp)
{
	size_t i, k, n = strlen(s), kn = strlen(key);

	for (i = 0; i + kn <= n; i++) {
		for (k = 0; k < kn && fold((unsigned char)s[i + k], cmp) ==
		    fold((unsigned char)key[k], cmp); k++)
			;
		if (k == kn)
			return 1;
	}
	return 0;
}

/* :matches with "*", "?" and "\" escapes; wildcards' spans into caps.
 * Scans once, going back only to the last "*": O(len(s) * len(pat)). */
struct span {
	size_t from, len;
};

static int
glob(const char *pat, const char *s, int cmp, struct span *caps, int *ncaps)
{
	size_t pi = 0, si = 0, star_p = 0, star_s = 0;
	int wc = 0, star_wc = 0, have_star = 0;

	for (;;) {
		if (pat[pi] == '*') {
			if (wc < 9)
				caps[wc] = (struct span){ si, 0 };
			star_wc = wc++;
			star_p = ++pi;
			star_s = si;
			have_star = 1;
			continue;
		}
		if (!s[si] && !pat[pi])
			break;
		if (s[si] && pat[pi] == '?') {
			if (wc < 9)
				caps[wc] = (struct span){ si, 1 };
			wc++;
			pi++;
			si++;
			continue;
		}
		if (s[si] && pat[pi] && pat[pi] != '?') {
			size_t q = pi + (pat[pi] == '\\' && pat[pi + 1]);

			if (fold((unsigned char)pat[q], cmp) ==
			    fold((unsigned char)s[si], cmp)) {
				pi = q + 1;
				si++;
				continue;
			}
		}
		if (!have_star || !s[star_s])
			return 0;
		/* give the last "*" one more character */
		star_s++;
		si = star_s;
		pi = star_p;
		wc = star_wc + 1;
		if (star_wc < 9)
			caps[star_wc].len = star_s - caps[star_wc].from;
	}
	*ncaps = wc;
	return 1;
}

static void
set_match(struct ctx *c, const char *s, const struct span *caps, int n)
{
	int i;

	for (i = 0; i < 10; i++) {
		free(c->match[i]);
		c->match[i] = NULL;
	}
	c->match[0] = xstrdup(s);
	for (i = 0; i < n && i < 9; i++) {
		c->match[i + 1] = xmalloc(caps[i].len + 1);
		memcpy(c->match[i + 1], s + caps[i].from, caps[i].len);
		c->match[i + 1][caps[i].len] = '\0';
	}
}

static int
regex_match(struct ctx *c, const char *s, const char *key, int cmp)
{
	regex_t re;
	regmatch_t m[10];
	struct span caps[9];
	int i, r;

	if (regcomp(&re, key, REG_EXTENDED |
	    (cmp == CMP_CASE ? REG_ICASE : 0)) != 0)
		return -1;
	r = regexec(&re, s, 10, m, 0) == 0;
	regfree(&re);
	if (r && (c->ext & SX_VARIABLES)) {
		for (i = 0; i < 9; i++)
			caps[i] = m[i + 1].rm_so < 0 ? (struct span){ 0, 0 } :
			    (struct span){ m[i + 1].rm_so,
			    m[i + 1].rm_eo - m[i + 1].rm_so };
		set_match(c, s, caps, 9);
		free(c->match[0]);
		c->match[0] = xmalloc(m[0].rm_eo - m[0].rm_so + 1);
		memcpy(c->match[0], s + m[0].rm_so, m[0].rm_eo - m[0].rm_so);
		c->match[0][m[0].rm_eo - m[0].rm_so] = '\0';
	}
	return r;
}

static int
match_one(struct ctx *c, const struct matcher *mt, const char *s,
    const char *key)
{
	struct span caps[9];
	int n;

	switch (mt->type) {
	case M_IS:
		return str_cmp(s, key, mt->cmp) == 0;
	case M_CONTAINS:
		return mt->cmp != CMP_NUM && contains(s, key, mt->cmp);
	case M_MATCHES:
		if (mt->cmp == CMP_NUM || !glob(key, s, mt->cmp, caps, &n))
			return 0;
		if (c->ext & SX_VARIABLES)
			set_match(c, s, caps, n);
		return 1;
	case M_REGEX:
		return regex_match(c, s, key, mt->cmp);
	default:
		return relation(mt->rel, str_cmp(s, key, mt->cmp));
	}
}

/* do any of the values match any of the keys */
static int
match_values(struct ctx *c, const struct matcher *mt, struct strs *vals,
    const struct sv_arg *keyarg)
{
	struct strs keys = { 0 };
	char num[24];
	size_t i, k, count;
	int r = 0;

	strs_expand(c, keyarg, &keys);
	if (mt->type == M_COUNT) {
		count = vals->n;
		snprintf(num, sizeof(num), "%zu", count);
		for (k = 0; k < keys.n && !r; k++)
			r = relation(mt->rel, num_cmp(num, keys.v[k]));
	} else
		for (i = 0; i < vals->n && r == 0; i++)
			for (k = 0; k < keys.n && r == 0; k++)
				r = match_one(c, mt, vals->v[i], keys.v[k]);
	strs_free(&keys);
	return r;
}

/* --- the message ------------------------------------------------------------ */

/* each field name: its values in order, unfolded, without the leading
 * white space */
static void
header_values(const struct sv_msg *m, const char *name, struct strs *out)
{
	const char *p = m->p, *e = m->p + m->n, *colon, *le;
	size_t k = strlen(name), n;
	struct buf v = { 0 };

	while (p < e && *p != '\n' && !(*p == '\r' && p + 1 < e &&
	    p[1] == '\n')) {
		le = memchr(p, '\n', e - p);
		le = le ? le + 1 : e;
		colon = memchr(p, ':', le - p);
		if (colon && (size_t)(colon - p) >= k &&
		    !ascii_ncasecmp(p, name, k) &&
		    strspn(p + k, " \t") == (size_t)(colon - p - k)) {
			buf_reset(&v);
			for (p = colon + 1;;) {
				n = le - p;
				while (n && (p[n - 1] == '\n' || p[n - 1] == '\r'))
					n--;
				buf_add(&v, p, n);
				p = le;
				if (p >= e || (*p != ' ' && *p != '\t'))
					break;
				le = memchr(p, '\n', e - p);
				le = le ? le + 1 : e;
			}
			n = 0;
			while (n < v.len && (v.p[n] == ' ' || v.p[n] == '\t'))
				n++;
			while (v.len > n && (v.p[v.len - 1] == ' ' ||
			    v.p[v.len - 1] == '\t'))
				v.len--;
			strs_add(out, v.p ? v.p + n : "", v.len - n);
			continue;
		}
		p = le;
	}
	buf_free(&v);
}

/* keep only the index'th value (:index, :last) */
static int
pick_index(const struct sv_node *n, struct strs *v)
{
	const struct sv_arg *a = tag_value(n, "index");
	size_t i, k;

	if (!a)
		return 0;
	if (a->num > v->n) {
		strs_free(v);
		return 0;
	}
	k = has_tag(n, "last") ? v->n - a->num : a->num - 1;
	for (i = 0; i < v->n; i++)
		if (i != k)
			free(v->v[i]);
	v->v[0] = v->v[k];
	v->n = 1;
	return 0;
}

/* split an address list at its top level commas; group names dropped */
static void
split_addresses(const char *s, struct strs *out)
{
	const char *start = s;
	int q = 0, par = 0, ang = 0;

	for (;; s++) {
		if (q && *s == '\\' && s[1])
			s++;
		else if (*s == '"' && !par)
			q = !q;
		else if (!q && *s == '(')
			par++;
		else if (!q && par && *s == ')')
			par--;
		else if (!q && !par && *s == '<')
			ang = 1;
		else if (!q && !par && *s == '>')
			ang = 0;
		else if (!q && !par && !ang && *s == ':')
			start = s + 1;	/* a group's name */
		if (*s && (q || par || ang || (*s != ',' && *s != ';')))
			continue;
		if (s > start)
			strs_add(out, start, s - start);
		if (!*s)
			return;
		start = s + 1;
	}
}

/* the address part asked for, or -1 when the address has none */
static int
addr_part(const struct sv_node *n, const char *mbox, const char *host,
    struct buf *out)
{
	const char *plus;

	buf_reset(out);
	if (has_tag(n, "localpart"))
		buf_adds(out, mbox);
	else if (has_tag(n, "domain"))
		buf_adds(out, host);
	else if (has_tag(n, "user") || has_tag(n, "detail")) {
		plus = strchr(mbox, '+');
		if (has_tag(n, "detail") && !plus)
			return -1;
		if (has_tag(n, "user"))
			buf_add(out, mbox, plus ? (size_t)(plus - mbox) :
			    strlen(mbox));
		else
			buf_adds(out, plus + 1);
	} else {
		buf_adds(out, mbox);
		if (*host) {
			buf_addc(out, '@');
			buf_adds(out, host);
		}
	}
	buf_addc(out, '\0');
	return 0;
}

/* s without the white space around it */
static void
strs_add_trimmed(struct strs *l, const char *s)
{
	size_t n;

	s += strspn(s, " \t\r\n");
	for (n = strlen(s); n && strchr(" \t\r\n", s[n - 1]); n--)
		;
	strs_add(l, s, n);
}

static void
address_values(const struct sv_node *n, struct strs *raw, struct strs *out)
{
	struct strs one = { 0 };
	struct buf name = { 0 }, mbox = { 0 }, host = { 0 }, part = { 0 };
	size_t i, k;

	for (i = 0; i < raw->n; i++) {
		split_addresses(raw->v[i], &one);
		for (k = 0; k < one.n; k++) {
			buf_reset(&name);
			buf_reset(&mbox);
			buf_reset(&host);
			if (!mime_first_address(one.v[k], strlen(one.v[k]),
			    &name, &mbox, &host))
				continue;
			buf_addc(&mbox, '\0');
			buf_addc(&host, '\0');
			/* one the MIME code had to complete (no mailbox or no
			 * domain) is not valid: :localpart and :domain do not
			 * see it, :all sees it as written (RFC 5228 2.7.4) */
			if (!strcmp(mbox.p, "MISSING_MAILBOX") ||
			    !strcmp(host.p, "MISSING_DOMAIN")) {
				if (!has_tag(n, "localpart") && !has_tag(n,
				    "domain") && !has_tag(n, "user") &&
				    !has_tag(n, "detail"))
					strs_add_trimmed(out, one.v[k]);
				continue;
			}
			if (addr_part(n, mbox.p, host.p, &part) == 0)
				strs_add(out, part.p, strlen(part.p));
		}
		strs_free(&one);
	}
	buf_free(&name);
	buf_free(&mbox);
	buf_free(&host);
	buf_free(&part);
}

/* --- dates (RFC 5260) --------------------------------------------------------- */

/* "+hhmm" or "-hhmm" as seconds east of UTC; 1 when it is one */
static int
zone_offset(const char *s, long *off)
{
	if ((s[0] != '+' && s[0] != '-') || strspn(s + 1, "0123456789") != 4 ||
	    s[5])
		return 0;
	*off = ((s[1] - '0') * 10 + (s[2] - '0')) * 3600 +
	    ((s[3] - '0') * 10 + (s[4] - '0')) * 60;
	if (s[0] == '-')
		*off = -*off;
	return 1;
}

static long
local_offset(time_t t)
{
	struct tm tm;

	localtime_r(&t, &tm);
	return tm.tm_gmtoff;
}

/* the date part of t, shown in zone off */
static int
date_part(const char *part, time_t t, long off, struct buf *out)
{
	static const char *const wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat" };
	time_t lt = t + off;
	struct tm tm;
	long ao = (off < 0 ? -off : off) % 86400;
	char z[16];

	gmtime_r(&lt, &tm);
	snprintf(z, sizeof(z), "%c%02ld%02ld", off < 0 ? '-' : '+',
	    ao / 3600, ao / 60 % 60);
	buf_reset(out);
	if (!ascii_casecmp(part, "year"))
		buf_printf(out, "%04d", tm.tm_year + 1900);
	else if (!ascii_casecmp(part, "month"))
		buf_printf(out, "%02d", tm.tm_mon + 1);
	else if (!ascii_casecmp(part, "day"))
		buf_printf(out, "%02d", tm.tm_mday);
	else if (!ascii_casecmp(part, "date"))
		buf_printf(out, "%04d-%02d-%02d", tm.tm_year + 1900,
		    tm.tm_mon + 1, tm.tm_mday);
	else if (!ascii_casecmp(part, "julian"))
		buf_printf(out, "%lld", days_from_civil(tm.tm_year + 1900,
		    tm.tm_mon + 1, tm.tm_mday) + 40587);
	else if (!ascii_casecmp(part, "hour"))
		buf_printf(out, "%02d", tm.tm_hour);
	else if (!ascii_casecmp(part, "minute"))
		buf_printf(out, "%02d", tm.tm_min);
	else if (!ascii_casecmp(part, "second"))
		buf_printf(out, "%02d", tm.tm_sec);
	else if (!ascii_casecmp(part, "time"))
		buf_printf(out, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min,
		    tm.tm_sec);
	else if (!ascii_casecmp(part, "iso8601"))
		buf_printf(out, "%04d-%02d-%02dT%02d:%02d:%02d%.3s:%.2s",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec, z, z + 3);
	else if (!ascii_casecmp(part, "std11"))
		buf_printf(out, "%s, %02d %s %04d %02d:%02d:%02d %s",
		    wd[tm.tm_wday], tm.tm_mday, month_names[tm.tm_mon],
		    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, z);
	else if (!ascii_casecmp(part, "zone"))
		buf_adds(out, z);
	else if (!ascii_casecmp(part, "weekday"))
		buf_printf(out, "%d", tm.tm_wday);
	else
		return -1;
	buf_addc(out, '\0');
	return 0;
}

/* --- tests ----------------------------------------------------------------------- */

static int test(struct ctx *, const struct sv_node *);

/* the header names of a test, expanded */
static void
names_of(struct ctx *c, const struct sv_arg *a, struct strs *out)
{
	strs_expand(c, a, out);
}

static int
test_header(struct ctx *c, const struct sv_node *n, int address)
{
	struct matcher mt;
	struct strs names = { 0 }, raw = { 0 }, vals = { 0 };
	struct buf d = { 0 };
	size_t i;
	int r;

	matcher_of(n, &mt);
	names_of(c, from_end(n, 1), &names);
	for (i = 0; i < names.n; i++)
		header_values(c->m, names.v[i], &raw);
	pick_index(n, &raw);
	if (address)
		address_values(n, &raw, &vals);
	else
		for (i = 0; i < raw.n; i++) {
			buf_reset(&d);
			mime_decode(&d, raw.v[i], strlen(raw.v[i]));
			strs_add(&vals, d.p ? d.p : "", d.len);
		}
	r = match_values(c, &mt, &vals, from_end(n, 0));
	buf_free(&d);
	strs_free(&names);
	strs_free(&raw);
	strs_free(&vals);
	return r;
}

static int
test_envelope(struct ctx *c, const struct sv_node *n)
{
	struct matcher mt;
	struct strs parts = { 0 }, vals = { 0 };
	struct buf b = { 0 };
	const char *addr, *at;
	char *mbox;
	size_t i;
	int r;

	matcher_of(n, &mt);
	names_of(c, from_end(n, 1), &parts);
	for (i = 0; i < parts.n; i++) {
		addr = !ascii_casecmp(parts.v[i], "from") ? c->m->from :
		    !ascii_casecmp(parts.v[i], "to") ? c->m->to : NULL;
		if (!addr)
			continue;
		if (!*addr) {	/* the null sender: "" for every part */
			strs_add(&vals, "", 0);
			continue;
		}
		at = strrchr(addr, '@');
		mbox = xstrdup(addr);
		mbox[at ? at - addr : (long)strlen(addr)] = '\0';
		if (addr_part(n, mbox, at ? at + 1 : "", &b) == 0)
			strs_add(&vals, b.p, strlen(b.p));
		free(mbox);
	}
	r = match_values(c, &mt, &vals, from_end(n, 0));
	buf_free(&b);
	strs_free(&parts);
	strs_free(&vals);
	return r;
}

static int
test_exists(struct ctx *c, const struct sv_node *n)
{
	struct strs names = { 0 }, v = { 0 };
	size_t i;
	int r = 1;

	names_of(c, from_end(n, 0), &names);
	for (i = 0; i < names.n && r; i++) {
		header_values(c->m, names.v[i], &v);
		r = v.n > 0;
		strs_free(&v);
	}
	strs_free(&names);
	return r;
}

/* the body after the header */
static const char *
body_of(const struct sv_msg *m, size_t *len)
{
	const char *p = m->p, *e = m->p + m->n, *le;

	while (p < e) {
		le = memchr(p, '\n', e - p);
		if (!le)
			break;
		if (le == p || (le == p + 1 && *p == '\r')) {
			*len = e - (le + 1);
			return le + 1;
		}
		p = le + 1;
	}
	*len = 0;
	return "";
}

/* --- body (RFC 5173) ----------------------------------------------------------
 * The MIME code's part tree names each part: its type, charset and place
 * in the tree, from which its section number follows; a part wanted is
 * then read through that section, BINARY undoing the transfer encoding,
 * and a text part converted to UTF-8. */

/* a part of the tree as body sees it: where it is, what it is */
struct bpart {
	struct section sec;	/* its section; none for the message */
	char type[96];		/* "type/subtype", lower case */
	char charset[48];
	char boundary[128];	/* of a multipart */
	int top;		/* a message's own body, not one of its parts */
};

static void
emit_buf(void *arg, const char *p, size_t n)
{
	buf_add(arg, p, n);
}

/* the octets of a section into out; with binary set decoded, which
 * fails (-1, and out holds them as they are) for a part whose transfer
 * encoding is unknown */
static int
section_text(struct mime *mm, const struct section *s, int binary,
    struct buf *out)
{
	struct sectiondata *sd = NULL;
	uint64_t size;
	int r = 0;

	buf_reset(out);
	if (binary) {
		sd = mime_section(mm, s, 1, &size);
		r = sd ? 0 : -1;
	}
	if (!sd)
		sd = mime_section(mm, s, 0, &size);
	if (sd) {
		section_write(sd, 0, size, emit_buf, out);
		section_close(sd);
	}
	return r;
}

/* the section sec with what of it set: SEC_TEXT, SEC_HEADER, ... */
static struct section
section_as(const struct section *sec, int what)
{
	struct section s = *sec;

	s.text = what;
	return s;
}

/* a part has a body when its header ends with a line end: the blank
 * line after it, or the one a delimiter right after it took (a header
 * cut short by a delimiter, or an empty part, has none).  A part without
 * a body matches nothing, as in Pigeonhole. */
static int
has_body(struct mime *mm, const struct section *sec, struct buf *t)
{
	struct section s = section_as(sec, SEC_MIME);

	section_text(mm, &s, 0, t);
	return t->len >= 2 && !memcmp(t->p + t->len - 2, "\r\n", 2);
}

/* the prologue and epilogue of a multipart body: what comes before its
 * first delimiter line and after the closing one */
static void
multipart_ends(const struct buf *t, const char *bnd, struct strs *out)
{
	const char *p = t->p, *e = t->p + t->len, *ln, *first = NULL,
	    *last = NULL;
	size_t k = strlen(bnd);

	for (ln = p; p && ln < e; ln = p) {
		p = memchr(ln, '\n', e - ln);
		p = p ? p + 1 : e;
		if (e - ln < (long)k + 2 || ln[0] != '-' || ln[1] != '-' ||
		    memcmp(ln + 2, bnd, k))
			continue;
		if (!first)
			first = ln;
		if (e - ln >= (long)k + 4 && ln[k + 2] == '-' && ln[k + 3] == '-')
			last = p;
	}
	if (!*bnd || !first)
		return;
	/* the line end before a delimiter belongs to it */
	k = first - t->p;
	if (k && t->p[k - 1] == '\n')
		k -= k > 1 && t->p[k - 2] == '\r' ? 2 : 1;
	strs_add(out, t->p, k);
	if (last)
		strs_add(out, last, e - last);
}

/* text for matching: NUL, which no key can hold, as a space */
static void
strs_add_text(struct strs *l, struct buf *b)
{
	size_t i;

	for (i = 0; i < b->len; i++)
		if (!b->p[i])
			b->p[i] = ' ';
	strs_add(l, b->len ? b->p : "", b->len);
}

/* does type ("type/subtype") match one of the :content types: "" all,
 * "type" its main type, "type/subtype" exactly */
static int
type_wanted(const char *type, struct strs *want)
{
	size_t i, k = strcspn(type, "/");

	for (i = 0; i < want->n; i++)
		if (!want->v[i][0] || (strchr(want->v[i], '/') ?
		    !ascii_casecmp(want->v[i], type) :
		    strlen(want->v[i]) == k &&
		    !ascii_ncasecmp(want->v[i], type, k)))
			return 1;
	return 0;
}

/* The strings a body test matches: the raw body for :raw; otherwise
 * each part whose type is wanted, decoded (text converted to UTF-8); a
 * multipart gives its prologue and epilogue, a message/rfc822 the header
 * of the message it holds (RFC 5173 5). */
/* a part's type as BODYSTRUCTURE gives it, lower case, its charset and
 * a multipart's boundary */
static void
bpart_describe(struct mime *mm, int i, struct bpart *b)
{
	const struct mime_part *pt = mime_part(mm, i);
	struct mime_desc d;
	const char *v;
	size_t k, len;

	mime_describe(mm, i, &d);
	if (pt->trunc)
		snprintf(b->type, sizeof(b->type), "application/octet-stream");
	else if (pt->kind == MIME_MESSAGE)
		snprintf(b->type, sizeof(b->type), "message/rfc822");
	else if (d.type.invalid)
		snprintf(b->type, sizeof(b->type), "/");
	else if (d.type.type.len)
		snprintf(b->type, sizeof(b->type), "%.*s/%.*s",
		    (int)MIN(d.type.type.len, 40), d.type.type.p,
		    (int)MIN(d.type.subtype.len, 40), d.type.subtype.p);
	else
		snprintf(b->type, sizeof(b->type), "text/plain");
	for (k = 0; b->type[k]; k++)
		b->type[k] = tolower((unsigned char)b->type[k]);
	b->charset[0] = b->boundary[0] = '\0';
	if ((v = mime_param(&d.type.par, "charset", &len)) &&
	    len < sizeof(b->charset) && !memchr(v, '\0', len))
		snprintf(b->charset, sizeof(b->charset), "%.*s", (int)len, v);
	if (pt->kind == MIME_MULTI && (v = mime_param(&d.type.par,
	    "boundary", &len)) && len < sizeof(b->boundary) &&
	    !memchr(v, '\0', len))
		snprintf(b->boundary, sizeof(b->boundary), "%.*s", (int)len, v);
	mime_desc_free(&d);
}

/* the strings of one part wanted (below), t and u as scratch */
static void
bpart_values(struct mime *mm, const struct mime_part *pt,
    const struct bpart *b, struct strs *want, struct strs *out,
    struct buf *t, struct buf *u)
{
	struct section s;
	const char *type;

	if (pt->kind == MIME_MULTI) {
		s = section_as(&b->sec, b->top ? SEC_TEXT : SEC_ALL);
		section_text(mm, &s, 0, t);
		multipart_ends(t, b->boundary, out);
		return;
	}
	if (pt->kind == MIME_MESSAGE && pt->child >= 0) {
		s = section_as(&b->sec, SEC_HEADER);
		section_text(mm, &s, 0, t);
		strs_add_text(out, t);
		return;
	}
	if (!has_body(mm, &b->sec, t))
		return;
	/* with an unknown transfer encoding a part is
	 * application/octet-stream, whatever it says (RFC 2045 6.4) */
	type = section_text(mm, &b->sec, 1, t) < 0 ?
	    "application/octet-stream" : b->type;
	if (!type_wanted(type, want))
		return;
	buf_reset(u);
	if (!strncmp(type, "text/", 5) &&
	    mime_to_utf8(u, b->charset[0] ? b->charset : "us-ascii",
	    t->len ? t->p : "", t->len) == 0)
		strs_add_text(out, u);
	else
		strs_add_text(out, t);
}

/* Part i and what it holds, in tree order; sec is where its parts are
 * numbered from (none for the message, a message/rfc822 part's own
 * number for the message it holds), top set for a message's own body.
 * *left counts down the parts a test may read. */
static void
body_walk(struct mime *mm, int i, const struct section *sec, int top,
    struct strs *want, struct strs *out, int *left)
{
	const struct mime_part *pt = mime_part(mm, i);
	struct buf t = { 0 }, u = { 0 };
	struct bpart b;
	struct section kid;
	int c, k;

	if ((*left)-- <= 0 || sec->npart >= SECTION_DEPTH - 1)
		return;
	memset(&b, 0, sizeof(b));
	b.sec = *sec;
	b.top = top;
	/* a leaf or message that is a message's body is its part 1 */
	if (top && pt->kind != MIME_MULTI)
		b.sec.part[b.sec.npart++] = 1;
	bpart_describe(mm, i, &b);
	if (type_wanted(b.type, want) || (pt->kind == MIME_LEAF &&
	    type_wanted("application/octet-stream", want)))
		bpart_values(mm, pt, &b, want, out, &t, &u);
	buf_free(&t);
	buf_free(&u);
	if (pt->kind == MIME_MULTI) {
		for (c = pt->child, k = 1; c >= 0;
		    c = mime_part(mm, c)->next, k++) {
			kid = b.sec;
			kid.part[kid.npart++] = k;
			body_walk(mm, c, &kid, 0, want, out, left);
		}
	} else if (pt->kind == MIME_MESSAGE && pt->child >= 0)
		body_walk(mm, pt->child, &b.sec, 1, want, out, left);
}

static void
body_values(const struct sv_msg *m, struct strs *want, struct strs *out)
{
	struct mime *mm = mime_open(m->p, m->n);
	struct section none;
	int left = SIEVE_BODY_PARTS;

	memset(&none, 0, sizeof(none));
	body_walk(mm, 0, &none, 1, want, out, &left);
	mime_close(mm);
}

/* the strings a body test matches, read once per run for each transform
 * and list of types, as scripts often hold many body tests */
static struct strs *
body_strings(struct ctx *c, const struct sv_node *n)
{
	struct strs want = { 0 };
	struct buf key = { 0 }, raw = { 0 };
	const struct sv_arg *ct = tag_value(n, "content");
	const char *b;
	size_t len, i;

	if (has_tag(n, "raw"))
		buf_adds(&key, "raw");
	else if (ct)
		strs_expand(c, ct, &want);
	else	/* :text: the text parts */
		strs_add(&want, "text", 4);
	for (i = 0; i < want.n; i++) {
		buf_adds(&key, want.v[i]);
		buf_addc(&key, '\n');
	}
	buf_addc(&key, '\0');
	if (c->sh->bodykey && !strcmp(c->sh->bodykey, key.p)) {
		strs_free(&want);
		buf_free(&key);
		return c->sh->bodyvals;
	}
	free(c->sh->bodykey);
	c->sh->bodykey = key.p;
	if (!c->sh->bodyvals)
		c->sh->bodyvals = xcalloc(1, sizeof(struct strs));
	strs_free(c->sh->bodyvals);
	if (has_tag(n, "raw")) {
		b = body_of(c->m, &len);
		buf_add(&raw, b, len);
		strs_add_text(c->sh->bodyvals, &raw);
		buf_free(&raw);
	} else
		body_values(c->m, &want, c->sh->bodyvals);
	strs_free(&want);
	return c->sh->bodyvals;
}

static int
test_body(struct ctx *c, const struct sv_node *n)
{
	struct matcher mt;

	matcher_of(n, &mt);
	return match_values(c, &mt, body_strings(c, n), from_end(n, 0));
}

static int
test_date(struct ctx *c, const struct sv_node *n, int current)
{
	struct matcher mt;
	struct strs raw = { 0 }, vals = { 0 };
	struct buf part = { 0 };
	struct mail_date d = { 0 };
	const struct sv_arg *za = tag_value(n, "zone");
	char *hname, *pname, *zs = za ? expand(c, za->s[0]) : NULL;
	time_t t = c->m->now;
	long off = 0;
	size_t i;
	int r, zoned = zs && zone_offset(zs, &off);

	matcher_of(n, &mt);
	pname = expand(c, from_end(n, 1)->s[0]);
	if (current)
		strs_add(&raw, "", 0);
	else {
		hname = expand(c, from_end(n, 2)->s[0]);
		header_values(c->m, hname, &raw);
		free(hname);
		pick_index(n, &raw);
	}
	for (i = 0; i < raw.n; i++) {
		if (!current) {
			if (date_parse(raw.v[i], strlen(raw.v[i]), &d) < 0)
				continue;
			t = date_utc(&d);
		}
		if (has_tag(n, "originalzone"))
			off = d.zone;
		else if (!zoned)
			off = local_offset(t);
		if (date_part(pname, t, off, &part) == 0)
			strs_add(&vals, part.p, strlen(part.p));
	}
	r = match_values(c, &mt, &vals, from_end(n, 0));
	free(zs);
	free(pname);
	buf_free(&part);
	strs_free(&raw);
	strs_free(&vals);
	return r;
}

/* the flags in a list of strings, each split at spaces */
static void
flags_split(struct strs *in, struct strs *out)
{
	size_t i, k, j;
	const char *s;

	for (i = 0; i < in->n; i++)
		for (s = in->v[i]; *s; s += k) {
			s += strspn(s, " ");
			if (!(k = strcspn(s, " ")))
				break;
			for (j = 0; j < out->n; j++)
				if (strlen(out->v[j]) == k &&
				    !ascii_ncasecmp(out->v[j], s, k))
					break;
			if (j == out->n)
				strs_add(out, s, k);
		}
}

static int
test_hasflag(struct ctx *c, const struct sv_node *n)
{
	struct matcher mt;
	struct strs vars = { 0 }, in = { 0 }, flags = { 0 };
	size_t i;
	int r;

	matcher_of(n, &mt);
	if (n->npos == 2) {
		strs_expand(c, from_end(n, 1), &vars);
		for (i = 0; i < vars.n; i++)
			strs_add(&in, var_value(c, vars.v[i],
			    strlen(vars.v[i])), strlen(var_value(c, vars.v[i],
			    strlen(vars.v[i]))));
	} else
		strs_add(&in, c->flags->p ? c->flags->p : "", c->flags->len);
	flags_split(&in, &flags);
	r = match_values(c, &mt, &flags, from_end(n, 0));
	strs_free(&vars);
	strs_free(&in);
	strs_free(&flags);
	return r;
}

static int
test_string(struct ctx *c, const struct sv_node *n)
{
	struct matcher mt;
	struct strs src = { 0 }, vals = { 0 };
	size_t i;
	int r;

	matcher_of(n, &mt);
	strs_expand(c, from_end(n, 1), &src);
	/* :count counts the strings that are not empty (RFC 5229 5) */
	for (i = 0; i < src.n; i++)
		if (mt.type != M_COUNT || src.v[i][0])
			strs_add(&vals, src.v[i], strlen(src.v[i]));
	r = match_values(c, &mt, &vals, from_end(n, 0));
	strs_free(&src);
	strs_free(&vals);
	return r;
}

static int
test_mailboxexists(struct ctx *c, const struct sv_node *n)
{
	struct strs names = { 0 };
	size_t i;
	int r = 1;

	strs_expand(c, from_end(n, 0), &names);
	for (i = 0; i < names.n && r; i++)
		r = c->m->mbox_exists && c->m->mbox_exists(names.v[i]) == 1;
	strs_free(&names);
	return r;
}

static int
test(struct ctx *c, const struct sv_node *n)
{
	size_t i;
	int r;

	if (!strcmp(n->name, "true") || !strcmp(n->name, "false"))
		return n->name[0] == 't';
	if (!strcmp(n->name, "not"))
		return (r = test(c, &n->tests[0])) < 0 ? r : !r;
	if (!strcmp(n->name, "allof") || !strcmp(n->name, "anyof")) {
		for (i = 0; i < n->ntests; i++)
			if ((r = test(c, &n->tests[i])) != (n->name[1] == 'l'))
				return r;
		return n->name[1] == 'l';
	}
	if (!strcmp(n->name, "size"))
		return has_tag(n, "over") ? c->m->n > from_end(n, 0)->num :
		    c->m->n < from_end(n, 0)->num;
	if (!strcmp(n->name, "exists"))
		return test_exists(c, n);
	if (!strcmp(n->name, "header") || !strcmp(n->name, "address"))
		return test_header(c, n, n->name[0] == 'a');
	if (!strcmp(n->name, "envelope"))
		return test_envelope(c, n);
	if (!strcmp(n->name, "body"))
		return test_body(c, n);
	if (!strcmp(n->name, "string"))
		return test_string(c, n);
	if (!strcmp(n->name, "hasflag"))
		return test_hasflag(c, n);
	if (!strcmp(n->name, "mailboxexists"))
		return test_mailboxexists(c, n);
	if (!strcmp(n->name, "date") || !strcmp(n->name, "currentdate"))
		return test_date(c, n, n->name[0] == 'c');
	return run_error(c, n, "unknown test");
}

/* --- actions ------------------------------------------------------------------------- */

static void
copy_flags(struct strs *f, char ***out, size_t *n)
{
	size_t i;

	*out = f->n ? xcalloc(f->n, sizeof(char *)) : NULL;
	for (i = 0; i < f->n; i++)
		(*out)[i] = xstrdup(f->v[i]);
	*n = f->n;
}

/* the flags an action stores with: :flags, else the internal variable */
static void
action_flags(struct ctx *c, const struct sv_node *n, struct sv_action *a)
{
	struct strs in = { 0 }, f = { 0 };
	const struct sv_arg *fa = tag_value(n, "flags");

	if (!(c->ext & SX_IMAP4FLAGS))
		return;
	if (fa)
		strs_expand(c, fa, &in);
	else
		strs_add(&in, c->flags->p ? c->flags->p : "", c->flags->len);
	flags_split(&in, &f);
	copy_flags(&f, &a->flags, &a->nflags);
	strs_free(&in);
	strs_free(&f);
}

static int
conflicts(struct ctx *c, const struct sv_node *n, int type)
{
	size_t i;
	int t;

	for (i = 0; i < c->r->n; i++) {
		t = c->r->a[i].type;
		if (((type == SV_REJECT || type == SV_EREJECT) &&
		    (t == SV_KEEP || t == SV_FILEINTO || t == SV_REDIRECT ||
		    t == SV_REJECT || t == SV_EREJECT || t == SV_VACATION)) ||
		    ((t == SV_REJECT || t == SV_EREJECT) && (type == SV_KEEP ||
		    type == SV_FILEINTO || type == SV_REDIRECT ||
		    type == SV_VACATION)))
			return run_error(c, n, "reject conflicts with another "
			    "action");
		if (t == SV_VACATION && type == SV_VACATION)
			return run_error(c, n, "more than one vacation");
	}
	return 0;
}

static struct sv_action *
add_action(struct ctx *c, const struct sv_node *n, int type, char *arg)
{
	struct sv_action *a;
	size_t i;

	if (conflicts(c, n, type) < 0) {
		free(arg);
		return NULL;
	}
	/* the same fileinto, redirect or keep twice is done once */
	for (i = 0; i < c->r->n; i++)
		if (c->r->a[i].type == type && (type == SV_KEEP ||
		    type == SV_DISCARD || (arg && c->r->a[i].arg &&
		    (type == SV_FILEINTO || type == SV_REDIRECT) &&
		    !strcmp(c->r->a[i].arg, arg)))) {
			free(arg);
			return &c->r->a[i];
		}
	c->r->a = xreallocarray(c->r->a, c->r->n + 1, sizeof(*a));
	a = &c->r->a[c->r->n++];
	memset(a, 0, sizeof(*a));
	a->type = type;
	a->arg = arg;
	a->line = n->line;
	return a;
}

static void
free_flags(struct sv_action *a)
{
	while (a->nflags)
		free(a->flags[--a->nflags]);
	free(a->flags);
	a->flags = NULL;
}

static int
do_store(struct ctx *c, const struct sv_node *n, int type)
{
	struct sv_action *a;
	char *arg = type == SV_FILEINTO ? expand(c, from_end(n, 0)->s[0]) :
	    NULL;

	if (arg && !*arg) {
		free(arg);
		return run_error(c, n, "fileinto an empty folder name");
	}
	if (!(a = add_action(c, n, type, arg)))
		return RUN_ERR;
	/* a repeated store keeps the later flags */
	free_flags(a);
	action_flags(c, n, a);
	a->copy |= has_tag(n, "copy");
	a->create |= has_tag(n, "create");
	if (!a->copy)
		c->r->implicit_keep = 0;
	return RUN_ON;
}

static int
do_redirect(struct ctx *c, const struct sv_node *n)
{
	struct sv_action *a;
	char *to = expand(c, from_end(n, 0)->s[0]);
	const char *at = strchr(to, '@');

	if (!at || at == to || !at[1] || strpbrk(to, " \t\r\n<>,;\"")) {
		free(to);
		return run_error(c, n, "redirect to an invalid address");
	}
	if (++*c->redirects > SIEVE_REDIRECT_MAX) {
		free(to);
		return run_error(c, n, "too many redirects");
	}
	if (!(a = add_action(c, n, SV_REDIRECT, to)))
		return RUN_ERR;
	a->copy |= has_tag(n, "copy");
	if (!a->copy)
		c->r->implicit_keep = 0;
	return RUN_ON;
}

static int
do_vacation(struct ctx *c, const struct sv_node *n)
{
	struct sv_action *a;
	const struct sv_arg *t;
	long long days = 7;

	if (!(a = add_action(c, n, SV_VACATION, expand(c,
	    from_end(n, 0)->s[0]))))
		return RUN_ERR;
	if ((t = tag_value(n, "days")))
		days = t->num < 1 ? 1 : t->num > 365 ? 365 : t->num;
	a->seconds = days * 86400;
	if ((t = tag_value(n, "subject")))
		a->subject = expand(c, t->s[0]);
	if ((t = tag_value(n, "from")))
		a->from = expand(c, t->s[0]);
	if ((t = tag_value(n, "handle")))
		a->handle = expand(c, t->s[0]);
	if ((t = tag_value(n, "addresses"))) {
		struct strs l = { 0 };

		strs_expand(c, t, &l);
		a->addresses = l.v;
		a->naddresses = l.n;
	}
	a->mime = has_tag(n, "mime");
	return RUN_ON;
}

static int
do_reject(struct ctx *c, const struct sv_node *n, int type)
{
	if (!add_action(c, n, type, expand(c, from_end(n, 0)->s[0])))
		return RUN_ERR;
	c->r->implicit_keep = 0;
	return RUN_ON;
}

/* setflag, addflag, removeflag, on a variable or the internal one */
static int
do_flags(struct ctx *c, const struct sv_node *n)
{
	struct strs in = { 0 }, cur = { 0 }, add = { 0 }, out = { 0 };
	struct buf b = { 0 };
	char *var = n->npos == 2 ? expand(c, from_end(n, 1)->s[0]) :
	    NULL;
	size_t i, k;

	strs_expand(c, from_end(n, 0), &in);
	flags_split(&in, &add);
	strs_free(&in);
	strs_add(&in, var ? var_value(c, var, strlen(var)) : c->flags->p ?
	    c->flags->p : "", var ? strlen(var_value(c, var, strlen(var))) :
	    c->flags->len);
	flags_split(&in, &cur);
	if (n->name[0] == 's')
		strs_free(&cur);
	for (i = 0; i < cur.n; i++) {
		for (k = 0; n->name[0] == 'r' && k < add.n; k++)
			if (!ascii_casecmp(cur.v[i], add.v[k]))
				break;
		if (n->name[0] != 'r' || k == add.n)
			strs_add(&out, cur.v[i], strlen(cur.v[i]));
	}
	if (n->name[0] != 'r')
		for (i = 0; i < add.n; i++)
			strs_add(&out, add.v[i], strlen(add.v[i]));
	strs_free(&in);
	flags_split(&out, &in);
	for (i = 0; i < in.n; i++) {
		if (i)
			buf_addc(&b, ' ');
		buf_adds(&b, in.v[i]);
	}
	buf_addc(&b, '\0');
	if (var)
		var_set(c, var, b.p);
	else {
		buf_reset(c->flags);
		buf_adds(c->flags, b.p);
	}
	free(var);
	buf_free(&b);
	strs_free(&in);
	strs_free(&cur);
	strs_free(&add);
	strs_free(&out);
	return RUN_ON;
}

/* set with its modifiers, applied highest precedence first */
static int
do_set(struct ctx *c, const struct sv_node *n)
{
	char *name = expand(c, from_end(n, 1)->s[0]), *v;
	struct buf b = { 0 };
	size_t i, len;
	int r;

	v = expand(c, from_end(n, 0)->s[0]);
	if (!var_settable(c, name)) {
		free(name);
		free(v);
		return run_error(c, n, "set: not a variable name");
	}
	for (i = 0; v[i]; i++)
		if (has_tag(n, "lower"))
			v[i] = tolower((unsigned char)v[i]);
		else if (has_tag(n, "upper"))
			v[i] = toupper((unsigned char)v[i]);
	if (has_tag(n, "lowerfirst"))
		v[0] = tolower((unsigned char)v[0]);
	if (has_tag(n, "upperfirst"))
		v[0] = toupper((unsigned char)v[0]);
	for (i = 0; v[i]; i++) {
		if ((has_tag(n, "quotewildcard") && strchr("*?\\", v[i])) ||
		    (has_tag(n, "quoteregex") && strchr("*?\\.^$[]{}()|+",
		    v[i])))
			buf_addc(&b, '\\');
		buf_addc(&b, v[i]);
	}
	buf_addc(&b, '\0');
	if (has_tag(n, "length")) {
		/* characters, not bytes */
		for (i = len = 0; b.p[i]; i++)
			len += (b.p[i] & 0xc0) != 0x80;
		buf_reset(&b);
		buf_printf(&b, "%zu", len);
	}
	r = var_set(c, name, b.p) < 0 ? run_error(c, n, "too many variables") :
	    RUN_ON;
	free(name);
	free(v);
	buf_free(&b);
	return r;
}

static int run_block(struct ctx *, const struct sv_node *, size_t);

/* is the script id running now, this one or one that included it */
static int
in_chain(const struct ctx *c, const char *id)
{
	for (; c; c = c->parent)
		if (c->id && !strcmp(c->id, id))
			return 1;
	return 0;
}

/* the run's own copy of a script id once included, or NULL */
static const char *
was_included(const struct shared *sh, const char *id)
{
	size_t i;

	for (i = 0; i < sh->nincluded; i++)
		if (!strcmp(sh->included[i], id))
			return sh->included[i];
	return NULL;
}

static const char *
mark_included(struct shared *sh, const char *id)
{
	const char *have = was_included(sh, id);

	if (have)
		return have;
	sh->included = xreallocarray(sh->included, sh->nincluded + 1,
	    sizeof(char *));
	return sh->included[sh->nincluded++] = xstrdup(id);
}

/* run a script another includes, with its own variables and matches */
static int
run_included(struct ctx *c, struct sv_script *s, const char *id)
{
	struct ctx sub = *c;
	int r, i;

	sub.ext = s->ext;
	memset(&sub.local, 0, sizeof(sub.local));
	sub.globals = NULL;
	sub.nglobals = 0;
	memset(sub.match, 0, sizeof(sub.match));
	sub.depth = c->depth + 1;
	sub.id = id;
	sub.parent = c;
	r = run_block(&sub, s->cmds, s->ncmds);
	for (i = 0; i < 10; i++)
		free(sub.match[i]);
	vars_free(&sub.local);
	while (sub.nglobals)
		free(sub.globals[--sub.nglobals]);
	free(sub.globals);
	return r == RUN_RETURN ? RUN_ON : r;
}

/* include (RFC 6609 3.2): a script including itself, directly or
 * through others, is an error unless :once makes it a no-op */
static int
do_include(struct ctx *c, const struct sv_node *n)
{
	struct sv_script *s;
	char *name = expand(c, from_end(n, 0)->s[0]), *text, err[256];
	char id[PATH_MAX];
	size_t len;
	int r, once = has_tag(n, "once");

	if (c->depth >= SIEVE_INCLUDE_MAX) {
		free(name);
		return run_error(c, n, "include nested too deeply");
	}
	/* the loader names the script; else its location and name do */
	snprintf(id, sizeof(id), "%s:%s", has_tag(n, "global") ? "global" :
	    "personal", name);
	text = c->load ? c->load(name, !has_tag(n, "global"), &len, id,
	    sizeof(id), c->loadarg) : NULL;
	free(name);
	if (!text)
		return has_tag(n, "optional") ? RUN_ON :
		    run_error(c, n, "include: no such script");
	if ((once && was_included(c->sh, id)) || (in_chain(c, id) && once)) {
		free(text);
		return RUN_ON;
	}
	if (in_chain(c, id)) {
		free(text);
		return run_error(c, n, "include: the script includes itself");
	}
	s = sieve_parse(text, len, err, sizeof(err));
	free(text);
	if (!s)
		return run_error(c, n, "include: the script has an error");
	r = run_included(c, s, mark_included(c->sh, id));
	sieve_free(s);
	return r;
}

/* global (RFC 6609 3.4): these names are the variables every script
 * that declares them shares */
static int
do_global(struct ctx *c, const struct sv_node *n)
{
	const struct sv_arg *a = from_end(n, 0);
	size_t i;

	for (i = 0; i < a->ns; i++) {
		if (!var_settable(c, a->s[i]) || strchr(a->s[i], '.'))
			return run_error(c, n, "global: not a variable name");
		if (c->nglobals >= SIEVE_VARS_MAX)
			return run_error(c, n, "too many variables");
		c->globals = xreallocarray(c->globals, c->nglobals + 1,
		    sizeof(char *));
		c->globals[c->nglobals++] = xstrdup(a->s[i]);
	}
	return RUN_ON;
}

static int
command(struct ctx *c, const struct sv_node *n)
{
	const char *s = n->name;

	if (!strcmp(s, "require"))
		return RUN_ON;
	if (!strcmp(s, "stop"))
		return RUN_STOP;
	if (!strcmp(s, "return"))
		return RUN_RETURN;
	if (!strcmp(s, "keep"))
		return do_store(c, n, SV_KEEP);
	if (!strcmp(s, "fileinto"))
		return do_store(c, n, SV_FILEINTO);
	if (!strcmp(s, "discard")) {
		c->r->implicit_keep = 0;
		return add_action(c, n, SV_DISCARD, NULL) ? RUN_ON : RUN_ERR;
	}
	if (!strcmp(s, "redirect"))
		return do_redirect(c, n);
	if (!strcmp(s, "setflag") || !strcmp(s, "addflag") ||
	    !strcmp(s, "removeflag"))
		return do_flags(c, n);
	if (!strcmp(s, "set"))
		return do_set(c, n);
	if (!strcmp(s, "vacation"))
		return do_vacation(c, n);
	if (!strcmp(s, "reject") || !strcmp(s, "ereject"))
		return do_reject(c, n, s[0] == 'r' ? SV_REJECT : SV_EREJECT);
	if (!strcmp(s, "include"))
		return do_include(c, n);
	if (!strcmp(s, "global"))
		return do_global(c, n);
	return run_error(c, n, "unknown command");
}

static int
run_block(struct ctx *c, const struct sv_node *v, size_t nv)
{
	size_t i;
	int r, taken = 0;

	for (i = 0; i < nv; i++) {
		const struct sv_node *n = &v[i];

		if (!strcmp(n->name, "if") || !strcmp(n->name, "elsif")) {
			if (n->name[0] == 'e' && taken)
				continue;
			/* a regex that does not compile as the comparator
			 * asks, or one a variable made */
			if ((taken = test(c, &n->tests[0])) < 0)
				return run_error(c, n, "the test cannot be "
				    "evaluated (a regex that does not compile?)");
			if (taken && (r = run_block(c, n->block, n->nblock)))
				return r;
			continue;
		}
		if (!strcmp(n->name, "else")) {
			if (!taken && (r = run_block(c, n->block, n->nblock)))
				return r;
			continue;
		}
		if ((r = command(c, n)) != RUN_ON)
			return r;
	}
	return RUN_ON;
}

void
sieve_result_free(struct sv_result *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		free(r->a[i].arg);
		free_flags(&r->a[i]);
		free(r->a[i].subject);
		free(r->a[i].from);
		free(r->a[i].handle);
		while (r->a[i].naddresses)
			free(r->a[i].addresses[--r->a[i].naddresses]);
		free(r->a[i].addresses);
	}
	free(r->a);
	for (i = 0; i < r->nkeepflags; i++)
		free(r->keepflags[i]);
	free(r->keepflags);
	r->a = NULL;
	r->n = 0;
	r->keepflags = NULL;
	r->nkeepflags = 0;
}

int
sieve_run(struct sv_script *s, const struct sv_msg *m, sv_loader load,
    void *loadarg, struct sv_result *r)
{
	struct ctx c;
	struct shared sh;
	struct buf flags = { 0 };
	struct strs in = { 0 }, f = { 0 };
	int rc, redirects = 0, i;

	memset(r, 0, sizeof(*r));
	memset(&c, 0, sizeof(c));
	memset(&sh, 0, sizeof(sh));
	c.sh = &sh;
	c.id = m->script_id;
	r->implicit_keep = 1;
	c.m = m;
	c.r = r;
	c.load = load;
	c.loadarg = loadarg;
	c.ext = s->ext;
	c.redirects = &redirects;
	c.flags = &flags;
	rc = run_block(&c, s->cmds, s->ncmds);
	if (rc != RUN_ERR && r->implicit_keep && (s->ext & SX_IMAP4FLAGS)) {
		strs_add(&in, flags.p ? flags.p : "", flags.len);
		flags_split(&in, &f);
		copy_flags(&f, &r->keepflags, &r->nkeepflags);
	}
	strs_free(&in);
	strs_free(&f);
	buf_free(&flags);
	for (i = 0; i < 10; i++)
		free(c.match[i]);
	vars_free(&c.local);
	while (c.nglobals)
		free(c.globals[--c.nglobals]);
	free(c.globals);
	vars_free(&sh.global);
	free(sh.bodykey);
	if (sh.bodyvals)
		strs_free(sh.bodyvals);
	free(sh.bodyvals);
	while (sh.nincluded)
		free(sh.included[--sh.nincluded]);
	free(sh.included);
	return rc == RUN_ERR ? -1 : 0;
}
