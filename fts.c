/* fts.c: the full-text index of a folder (fts.h), in SQLite FTS5 with its
 * trigram tokenizer.
 *
 * The index holds, per message, the very text SEARCH's content keys read
 * (mime_search_text), folded as they fold it and made valid UTF-8.  A
 * needle of three or more characters is looked up as an FTS5 phrase,
 * which with positions kept is an exact substring test; pieces of text
 * that no match may span are kept apart by SEP, which no indexed needle
 * holds.  Needles the index cannot answer exactly (shorter, invalid
 * UTF-8, holding SEP or U+FFFD) go back to reading the messages. */
#ifdef WITH_FTS
#include <sys/types.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fts.h"
#include "maildir.h"
#include "mime.h"
#include "util.h"

#define SCHEMA_VERSION	1
#define SEP		'\001'	/* between pieces of text */
#define BATCH_SECONDS	1	/* a write transaction lasts about this long */
#define STALE_MIN	1000	/* rows of gone messages tolerated anyway */
#define PROGRESS_MIN	1000	/* an update this long tells its progress */

/* header fields with a column of their own; others are looked for in the
 * header blocks, and confirmed from the message */
static const char *const fieldcol[] = {
	"Subject", "From", "To", "Cc", "Bcc",
};
#define NFIELDS LEN(fieldcol)
#define NCOLS (2 + NFIELDS)	/* head, body, then the fields */

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER);"
	"CREATE TABLE IF NOT EXISTS doc(uid INTEGER PRIMARY KEY);"
	"CREATE VIRTUAL TABLE IF NOT EXISTS text USING fts5(head, body,"
	" subject, hfrom, hto, hcc, hbcc, content='',"
	" tokenize='trigram case_sensitive 1', detail=full);";

/* the index of the folder last searched, kept open between commands */
static struct {
	sqlite3 *db;
	char path[PATH_MAX];
	uint32_t uidvalidity;
	uint32_t *uids;		/* indexed, ascending */
	size_t nuids, cap;
	long long version;	/* PRAGMA data_version when uids was read */
	int corrupt;		/* seen: start afresh at the next open */
} ix;

static int
disabled(void)
{
	const char *e = getenv("IMAPD_FTS");

	return e && !strcmp(e, "off");
}

static int
is_corrupt(int rc)
{
	rc &= 0xff;
	return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

/* log a failure; a corrupt file is dropped at the next open */
static int
db_err(int rc, const char *what)
{
	if (is_corrupt(rc))
		ix.corrupt = 1;
	logmsg(LOG_WARNING, "full-text index %s: %s: %s%s", ix.path, what,
	    ix.db ? sqlite3_errmsg(ix.db) : sqlite3_errstr(rc),
	    is_corrupt(rc) ? "; rebuilding it" : "");
	return -1;
}

static int
exec(const char *sql)
{
	int rc = sqlite3_exec(ix.db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : db_err(rc, "statement failed");
}

static void
db_close(void)
{
	if (ix.db)
		sqlite3_close(ix.db);
	ix.db = NULL;
	ix.nuids = 0;
	ix.version = -1;
}

/* remove the file and what SQLite keeps beside it */
static void
db_unlink(void)
{
	static const char *const ext[] = { "", "-wal", "-shm", "-journal" };
	char p[PATH_MAX + 16];
	size_t i;

	for (i = 0; i < LEN(ext); i++) {
		snprintf(p, sizeof(p), "%s%s", ix.path, ext[i]);
		unlink(p);
	}
}

static long long
meta_get(const char *k)
{
	sqlite3_stmt *st;
	long long v = -1;

	if (sqlite3_prepare_v2(ix.db, "SELECT v FROM meta WHERE k=?", -1, &st,
	    NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* the tables, empty, stamped with the folder's UIDVALIDITY */
static int
db_create(uint32_t uidvalidity)
{
	char sql[256];

	if (exec("DROP TABLE IF EXISTS text; DROP TABLE IF EXISTS doc;"
	    "DROP TABLE IF EXISTS meta;") < 0 || exec(schema) < 0)
		return -1;
	snprintf(sql, sizeof(sql), "INSERT INTO meta VALUES('version', %d),"
	    "('uidvalidity', %lu)", SCHEMA_VERSION, (unsigned long)uidvalidity);
	return exec(sql);
}

static int
db_open1(uint32_t uidvalidity)
{
	int rc;

	rc = sqlite3_open_v2(ix.path, &ix.db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		return db_err(rc, "cannot open");
	sqlite3_busy_timeout(ix.db, 5000);
	if (exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
	    "PRAGMA cache_size=-8000;") < 0 || exec(schema) < 0)
		return -1;
	if (meta_get("version") != SCHEMA_VERSION ||
	    meta_get("uidvalidity") != (long long)uidvalidity) {
		if (exec("BEGIN IMMEDIATE") < 0)
			return -1;
		if (db_create(uidvalidity) < 0) {
			exec("ROLLBACK");
			return -1;
		}
		return exec("COMMIT");
	}
	return 0;
}

/* the index of folder f, opened (and made afresh when missing, of another
 * UIDVALIDITY, or corrupt); -1 when there is none to use */
static int
db_open(struct folder *f)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/%s", f->path, FTS_FILE) >=
	    (int)sizeof(path))
		return -1;
	if (ix.db && !ix.corrupt && !strcmp(path, ix.path) &&
	    ix.uidvalidity == f->uidvalidity)
		return 0;
	db_close();
	memcpy(ix.path, path, sizeof(path));
	ix.uidvalidity = f->uidvalidity;
	if (ix.corrupt)
		db_unlink();
	ix.corrupt = 0;
	if (db_open1(f->uidvalidity) == 0)
		return 0;
	db_close();
	if (!ix.corrupt)
		return -1;
	db_unlink();
	ix.corrupt = 0;
	if (db_open1(f->uidvalidity) == 0)
		return 0;
	db_close();
	return -1;
}

static long long
data_version(void)
{
	sqlite3_stmt *st;
	long long v = -1;

	if (sqlite3_prepare_v2(ix.db, "PRAGMA data_version", -1, &st, NULL) !=
	    SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void
uids_add(uint32_t uid)
{
	if (ix.nuids == ix.cap) {
		ix.cap = ix.cap ? ix.cap * 2 : 1024;
		ix.uids = xreallocarray(ix.uids, ix.cap, sizeof(*ix.uids));
	}
	ix.uids[ix.nuids++] = uid;
}

static int
cmp_uid(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* the UIDs indexed, read again when another process has written */
static int
uids_load(void)
{
	sqlite3_stmt *st;
	long long v = data_version();
	int rc;

	if (v >= 0 && v == ix.version)
		return 0;
	rc = sqlite3_prepare_v2(ix.db, "SELECT uid FROM doc ORDER BY uid", -1,
	    &st, NULL);
	if (rc != SQLITE_OK)
		return db_err(rc, "cannot read");
	ix.nuids = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		uids_add((uint32_t)sqlite3_column_int64(st, 0));
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_err(rc, "cannot read");
	ix.version = v;
	return 0;
}

static int
indexed(uint32_t uid)
{
	return bsearch(&uid, ix.uids, ix.nuids, sizeof(uid), cmp_uid) != NULL;
}

/* --- the text ------------------------------------------------------------ */

/* the length of the valid UTF-8 sequence at s (RFC 3629), 0 for none */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0], lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/* folded text as the index keeps it: valid UTF-8, each invalid octet
 * U+FFFD, NUL (the end of a piece) SEP.  A valid needle found in the
 * folded text is found here at the same characters, and the other way
 * round when it holds neither SEP nor U+FFFD. */
static void
clean(struct buf *out, struct buf *in)
{
	const unsigned char *s;
	size_t i, k;

	buf_reset(out);
	if (!in->len)
		return;
	mime_fold(in->p, in->len);
	s = (const unsigned char *)in->p;
	for (i = 0; i < in->len; i += k) {
		if (!(k = utf8_len(s + i, in->len - i))) {
			buf_add(out, "\xef\xbf\xbd", 3);
			k = 1;
		} else if (s[i] == '\0')
			buf_addc(out, SEP);
		else
			buf_add(out, s + i, k);
	}
}

struct doctext {
	struct buf head, body, field[NFIELDS];
};

static void
add_field(void *arg, const char *name, size_t nlen, const char *val,
    size_t vlen)
{
	struct doctext *d = arg;
	size_t i;

	for (i = 0; i < NFIELDS; i++) {
		if (strlen(fieldcol[i]) != nlen ||
		    ascii_ncasecmp(name, fieldcol[i], nlen))
			continue;
		buf_add(&d->field[i], val, vlen);
		buf_addc(&d->field[i], '\0');
	}
}

static void
doctext_free(struct doctext *d)
{
	size_t i;

	buf_free(&d->head);
	buf_free(&d->body);
	for (i = 0; i < NFIELDS; i++)
		buf_free(&d->field[i]);
}

/* the row of message i; 1: added, 0: gone or indexed already, -1: error */
static int
index_msg(struct folder *f, size_t i, sqlite3_stmt *doc, sqlite3_stmt *ins,
    struct buf *tmp)
{
	struct doctext d;
	struct msgmap mm;
	struct buf *col;
	int rc, c;

	if (msg_map(f, i, &mm) < 0)
		return 0;	/* gone: read it (or not) when searching */
	sqlite3_reset(doc);
	sqlite3_bind_int64(doc, 1, f->msgs[i].uid);
	if ((rc = sqlite3_step(doc)) != SQLITE_DONE || !sqlite3_changes(ix.db)) {
		msg_unmap(&mm);
		return rc == SQLITE_DONE ? 0 : db_err(rc, "cannot write");
	}
	memset(&d, 0, sizeof(d));
	mime_search_text(mm.p, mm.len, &d.head, &d.body, add_field, &d);
	msg_unmap(&mm);
	sqlite3_reset(ins);
	sqlite3_bind_int64(ins, 1, f->msgs[i].uid);
	for (c = 0; c < (int)NCOLS; c++) {
		col = c == 0 ? &d.head : c == 1 ? &d.body : &d.field[c - 2];
		clean(&tmp[c], col);
		sqlite3_bind_text(ins, c + 2, tmp[c].p ? tmp[c].p : "",
		    tmp[c].len, SQLITE_STATIC);
	}
	rc = sqlite3_step(ins);
	doctext_free(&d);
	if (rc != SQLITE_DONE)
		return db_err(rc, "cannot write");
	return 1;
}

/* --- keeping up with the folder ------------------------------------------ */

/* the indexes in f->msgs of messages not indexed; *stale: rows of gone
 * messages */
static size_t
missing(struct folder *f, size_t *out, size_t *stale)
{
	size_t i, j = 0, n = 0, live = 0;

	for (i = 0; i < f->nmsgs; i++) {
		while (j < ix.nuids && ix.uids[j] < f->msgs[i].uid)
			j++;
		if (j < ix.nuids && ix.uids[j] == f->msgs[i].uid)
			live++;
		else
			out[n++] = i;
	}
	*stale = ix.nuids - live;
	return n;
}

static int
add_batch(struct folder *f, const size_t *todo, size_t n, size_t *done,
    struct buf *tmp)
{
	static const char insert[] = "INSERT INTO text(rowid, head, body,"
	    " subject, hfrom, hto, hcc, hbcc) VALUES(?,?,?,?,?,?,?,?)";
	sqlite3_stmt *doc = NULL, *ins = NULL;
	time_t end = time(NULL) + BATCH_SECONDS;
	int rc, r = 0;

	if (exec("BEGIN IMMEDIATE") < 0)
		return -1;
	if ((rc = sqlite3_prepare_v2(ix.db, "INSERT OR IGNORE INTO doc"
	    " VALUES(?)", -1, &doc, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(ix.db, insert, -1, &ins, NULL)) !=
	    SQLITE_OK)
		r = db_err(rc, "cannot write");
	while (r == 0 && *done < n) {
		if (index_msg(f, todo[(*done)++], doc, ins, tmp) < 0)
			r = -1;
		if (*done % 64 == 0 && time(NULL) >= end)
			break;
	}
	sqlite3_finalize(doc);
	sqlite3_finalize(ins);
	if (r < 0) {
		exec("ROLLBACK");
		return -1;
	}
	return exec("COMMIT");
}

static int
update(struct folder *f, fts_progress progress)
{
	struct buf tmp[NCOLS];
	size_t *todo, n, stale, done = 0, i;
	time_t next = 0;
	int r = 0;

	if (uids_load() < 0)
		return -1;
	todo = xcalloc(f->nmsgs + 1, sizeof(*todo));
	n = missing(f, todo, &stale);
	if (stale > STALE_MIN && stale > f->nmsgs - n) {
		logmsg(LOG_INFO, "full-text index %s: %zu of %zu rows are of"
		    " gone messages; rebuilding it", ix.path, stale, ix.nuids);
		if (exec("BEGIN IMMEDIATE") < 0 || db_create(f->uidvalidity) <
		    0 || exec("COMMIT") < 0) {
			free(todo);
			return -1;
		}
		ix.nuids = 0;
		n = missing(f, todo, &stale);
	}
	memset(tmp, 0, sizeof(tmp));
	if (n < PROGRESS_MIN)
		progress = NULL;
	while (r == 0 && done < n) {
		if (progress && (!done || time(NULL) >= next)) {
			next = time(NULL) + 1;
			if (progress(done, n))
				break;
		}
		r = add_batch(f, todo, n, &done, tmp);
	}
	for (i = 0; i < NCOLS; i++)
		buf_free(&tmp[i]);
	free(todo);
	ix.version = -1;	/* our own writes: read the UIDs again */
	if (r < 0 || uids_load() < 0)
		return -1;
	return 0;
}

int
fts_update(struct folder *f, fts_progress progress)
{
	if (disabled() || db_open(f) < 0)
		return -1;
	return update(f, progress);
}

/* --- answering ----------------------------------------------------------- */

/* the column filter of a key; *exact: the column holds just that */
static const char *
columns(int kind, const char *field, int *exact)
{
	static const char *const fcols[] = {
		"{subject}", "{hfrom}", "{hto}", "{hcc}", "{hbcc}",
	};
	size_t i;

	*exact = 1;
	if (kind == FTS_TEXT)
		return "{head body}";
	if (kind == FTS_BODY)
		return "{body}";
	for (i = 0; i < NFIELDS; i++)
		if (!ascii_casecmp(field, fieldcol[i]))
			return fcols[i];
	*exact = 0;
	return "{head}";
}

/* the FTS5 query for a needle, or NULL when the index cannot answer it */
static char *
query(int kind, const char *field, const char *needle, int *exact)
{
	struct buf raw = { 0 }, c = { 0 }, q = { 0 };
	size_t i, chars = 0, k;
	const char *cols = columns(kind, field, exact);

	buf_adds(&raw, needle);
	clean(&c, &raw);
	buf_free(&raw);
	/* clean() changes only what is not valid UTF-8 */
	for (i = 0; i < c.len; i += k, chars++) {
		k = utf8_len((const unsigned char *)c.p + i, c.len - i);
		if (c.p[i] == SEP || (k == 3 && !memcmp(c.p + i,
		    "\xef\xbf\xbd", 3)))
			chars = 0, i = c.len;
	}
	if (chars < 3 || c.len != strlen(needle)) {
		buf_free(&c);
		return NULL;
	}
	buf_printf(&q, "%s : \"", cols);
	for (i = 0; i < c.len; i++) {
		if (c.p[i] == '"')
			buf_addc(&q, '"');
		buf_addc(&q, c.p[i]);
	}
	buf_addc(&q, '"');
	buf_free(&c);
	return q.p;
}

static int
in_folder(struct folder *f, uint32_t uid)
{
	return folder_find(f, uid) >= 0;
}

int
fts_search(struct folder *f, int kind, const char *field, const char *needle,
    fts_progress progress, uint32_t *hits, size_t *nhits, uint32_t *todo,
    size_t *ntodo)
{
	sqlite3_stmt *st;
	char *q;
	int exact, rc;
	size_t i;
	uint32_t uid;

	*nhits = *ntodo = 0;
	if (disabled() || !(q = query(kind, field, needle, &exact)))
		return FTS_NONE;
	if (db_open(f) < 0 || update(f, progress) < 0) {
		free(q);
		return FTS_NONE;
	}
	rc = sqlite3_prepare_v2(ix.db, "SELECT rowid FROM text WHERE text"
	    " MATCH ? ORDER BY rowid", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		free(q);
		db_err(rc, "cannot search");
		return FTS_NONE;
	}
	sqlite3_bind_text(st, 1, q, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uid = (uint32_t)sqlite3_column_int64(st, 0);
		if (*nhits < f->nmsgs && in_folder(f, uid))
			hits[(*nhits)++] = uid;
	}
	sqlite3_finalize(st);
	free(q);
	if (rc != SQLITE_DONE) {
		db_err(rc, "cannot search");
		return FTS_NONE;
	}
	for (i = 0; i < f->nmsgs; i++)
		if (!indexed(f->msgs[i].uid))
			todo[(*ntodo)++] = f->msgs[i].uid;
	return exact ? FTS_EXACT : FTS_CANDIDATES;
}
#else
typedef int fts_unused;	/* ISO C wants something in a file */
#endif
