/* fts.h: the full-text index of a folder, for SEARCH's content keys.
 *
 * Files in the folder's directory (the manifest FTS_FILE and the
 * segments it names) hold the text the content keys look at, decoded and
 * folded by mime.c, keyed by UID under the folder's UIDVALIDITY.  It is
 * brought up to date lazily, when a search needs it: messages it does not
 * know are indexed then, and those gone from the folder are left in it
 * (their UIDs never come back) until they outnumber the living, when it
 * is built afresh.  Deleting the files loses nothing but time; a damaged
 * one is logged and rebuilt.  Built without WITH_FTS, or with
 * IMAPD_FTS=off in the environment, every search reads the messages as it
 * always did. */
#ifndef FTS_H
#define FTS_H
#include <stddef.h>
#include <stdint.h>

#define FTS_FILE "imapd-fts"

struct folder;

/* what a key asks: TEXT, BODY, or a header field (HEADER, SUBJECT, ...) */
enum { FTS_TEXT, FTS_BODY, FTS_HEADER };
/* whether the index answered */
enum { FTS_NONE = -1, FTS_EXACT = 1 };

/* told about the progress of a long update about once a second; a
 * non-zero return stops it (what is done so far is kept) */
typedef int (*fts_progress)(size_t done, size_t total);

/* The messages of f that match a key.  hits and todo have room for
 * f->nmsgs UIDs each.  FTS_EXACT: hits holds the UIDs that match,
 * ascending; todo those the index cannot tell (not indexed yet, or a
 * header it cannot take apart), whose text must be read; the others do
 * not match.  FTS_NONE: the index cannot answer this key (a needle that
 * is empty or not valid UTF-8); read every message. */
int fts_search(struct folder *f, int kind, const char *field,
    const char *needle, fts_progress, uint32_t *hits, size_t *nhits,
    uint32_t *todo, size_t *ntodo);
/* index the messages of f the index does not know yet; 0 or -1 */
int fts_update(struct folder *f, fts_progress);
/* while the client is quiet, one short slice of work on the index of f:
 * the messages it lacks, for FTS_SLICE_MS, or else two small segments
 * merged (a folder not indexed yet is left to its first search); 1 when
 * more remains, 0 when it is current or cannot be updated now */
int fts_idle(struct folder *f);
/* between commands, a client this many milliseconds quiet is idle */
#define FTS_QUIET_MS 250

#endif
