/* sort.c: SORT (RFC 5256, and DISPLAYFROM/DISPLAYTO of RFC 5957) and
 * THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256) over the
 * messages of a view.
 *
 * Each message is mapped once and what the keys need of its header is
 * kept in a small record: dates as UTC seconds, strings already reduced
 * (base subject, first address) and case-mapped, so that comparing two
 * records is strcmp() and integer compares.  The strings of one run live
 * in one arena; records hold offsets into it.
 *
 * Strings collate by i;unicode-casemap (RFC 5051, which RFC 5256 asks
 * for through I18NLEVEL=1): every character is titlecased and then
 * decomposed (NFD), and the UTF-8 that results is compared octet by
 * octet.  The table covers the two-octet UTF-8 range (U+0080..U+07FF:
 * Latin, Greek, Cyrillic, ...); other characters compare as they are.
 *
 * THREAD=REFERENCES follows RFC 5256 section 3 step by step.  Message-IDs
 * and base subjects are found through hash tables and the tree is walked
 * without recursion, so neither large folders nor deep threads make it
 * slow or exhaust the stack.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imapd.h"
#include "maildir.h"
#include "mime.h"
#include "parse.h"
#include "sort.h"
#include "util.h"

#define SORT_MAX	16	/* criteria in one sort program */
#define HEAD_MAX	16384	/* first bytes read for a header */
#define NONE		((size_t)-1)
#define CLOSE		((size_t)-2)	/* thread output: end of a list */
#define CMP(a, b)	(((a) > (b)) - ((a) < (b)))

/* the header fields read, in the order of hdrnames */
enum { H_SUBJECT, H_FROM, H_TO, H_CC, H_DATE, H_MSGID, H_REFS, H_IRT, H_N };

/* sort keys; the string keys come first and index key.str */
enum {
	K_SUBJECT, K_FROM, K_TO, K_CC, K_DISPLAYFROM, K_DISPLAYTO,
	K_NSTR,
	K_ARRIVAL = K_NSTR, K_DATE, K_SIZE
};

struct crit {
	int key, reverse;
};

struct sortprog {
	struct crit c[SORT_MAX];
	int n;
	unsigned want;		/* bit per K_* */
};

/* one message's header fields and what the store knows of it */
struct fields {
	struct buf v[H_N];
	unsigned have;		/* bit per H_* */
	time_t idate;		/* internal date */
	uint64_t size;
};

/* what the sort keys need of one message */
struct key {
	size_t vi;		/* view index */
	time_t arrival, date;
	uint64_t size;
	size_t str[K_NSTR];	/* offsets into the arena */
};

/* a message to thread */
struct tmsg {
	size_t vi;
	time_t date;		/* sent date */
	size_t subj;		/* base subject, offset into the arena */
	size_t id;		/* Message-ID in the arena, or NONE */
	size_t ref, nref;	/* its references: thread.refs[ref..+nref) */
	int reply;		/* the subject says reply or forward */
};

/* a node of the thread tree: a message or a dummy; node 0 is the root */
struct tnode {
	size_t parent, child, next;	/* node indexes, NONE */
	size_t msg;		/* index into thread.msgs, NONE: a dummy */
	time_t date;		/* sort order; a dummy's is its first child's */
	size_t vi;
	size_t nkids;		/* step (1): children linked to it so far */
};

struct thread {
	struct tmsg *msgs;
	size_t nmsgs;
	size_t *refs;		/* arena offsets of the references */
	size_t nrefs, caprefs;
	struct buf arena;	/* NUL-terminated strings */
	struct tnode *nodes;
	size_t nnodes, capnodes;
	size_t *tmp;		/* scratch for sorting one set of siblings */
	size_t tmpcap;
};

/* string to node index, open addressing; keys point into an arena that
 * no longer grows */
struct htab {
	const char **key;
	size_t *val;
	size_t mask;
};

/* titlecase + NFD of U+0080..U+07FF where it differs from the character
 * (generated from UnicodeData 14.0 with Python's unicodedata: simple
 * titlecase, then normalize("NFD")) */
struct cmap {
	uint16_t cp;
	char s[7];
};

static const char *const hdrnames[H_N] = {
	"Subject", "From", "To", "Cc", "Date", "Message-ID", "References",
	"In-Reply-To"
};

static const struct {
	const char *name;
	int key;
} keynames[] = {
	{ "ARRIVAL", K_ARRIVAL }, { "CC", K_CC }, { "DATE", K_DATE },
	{ "FROM", K_FROM }, { "SIZE", K_SIZE }, { "SUBJECT", K_SUBJECT },
	{ "TO", K_TO }, { "DISPLAYFROM", K_DISPLAYFROM },
	{ "DISPLAYTO", K_DISPLAYTO }
};

static const struct cmap cmap[] = {
	{ 0x00b5, "\xce\x9c" }, { 0x00c0, "A\xcc\x80" },
	{ 0x00c1, "A\xcc\x81" }, { 0x00c2, "A\xcc\x82" },
	{ 0x00c3, "A\xcc\x83" }, { 0x00c4, "A\xcc\x88" },
	{ 0x00c5, "A\xcc\x8a" }, { 0x00c7, "C\xcc\xa7" },
	{ 0x00c8, "E\xcc\x80" }, { 0x00c9, "E\xcc\x81" },
	{ 0x00ca, "E\xcc\x82" }, { 0x00cb, "E\xcc\x88" },
	{ 0x00cc, "I\xcc\x80" }, { 0x00cd, "I\xcc\x81" },
	{ 0x00ce, "I\xcc\x82" }, { 0x00cf, "I\xcc\x88" },
	{ 0x00d1, "N\xcc\x83" }, { 0x00d2, "O\xcc\x80" },
	{ 0x00d3, "O\xcc\x81" }, { 0x00d4, "O\xcc\x82" },
	{ 0x00d5, "O\xcc\x83" }, { 0x00d6, "O\xcc\x88" },
	{ 0x00d9, "U\xcc\x80" }, { 0x00da, "U\xcc\x81" },
	{ 0x00db, "U\xcc\x82" }, { 0x00dc, "U\xcc\x88" },
	{ 0x00dd, "Y\xcc\x81" }, { 0x00e0, "A\xcc\x80" },
	{ 0x00e1, "A\xcc\x81" }, { 0x00e2, "A\xcc\x82" },
	{ 0x00e3, "A\xcc\x83" }, { 0x00e4, "A\xcc\x88" },
	{ 0x00e5, "A\xcc\x8a" }, { 0x00e6, "\xc3\x86" },
	{ 0x00e7, "C\xcc\xa7" }, { 0x00e8, "E\xcc\x80" },
	{ 0x00e9, "E\xcc\x81" }, { 0x00ea, "E\xcc\x82" },
	{ 0x00eb, "E\xcc\x88" }, { 0x00ec, "I\xcc\x80" },
	{ 0x00ed, "I\xcc\x81" }, { 0x00ee, "I\xcc\x82" },
	{ 0x00ef, "I\xcc\x88" }, { 0x00f0, "\xc3\x90" },
	{ 0x00f1, "N\xcc\x83" }, { 0x00f2, "O\xcc\x80" },
	{ 0x00f3, "O\xcc\x81" }, { 0x00f4, "O\xcc\x82" },
	{ 0x00f5, "O\xcc\x83" }, { 0x00f6, "O\xcc\x88" },
	{ 0x00f8, "\xc3\x98" }, { 0x00f9, "U\xcc\x80" },
	{ 0x00fa, "U\xcc\x81" }, { 0x00fb, "U\xcc\x82" },
	{ 0x00fc, "U\xcc\x88" }, { 0x00fd, "Y\xcc\x81" },
	{ 0x00fe, "\xc3\x9e" }, { 0x00ff, "Y\xcc\x88" },
	{ 0x0100, "A\xcc\x84" }, { 0x0101, "A\xcc\x84" },
	{ 0x0102, "A\xcc\x86" }, { 0x0103, "A\xcc\x86" },
	{ 0x0104, "A\xcc\xa8" }, { 0x0105, "A\xcc\xa8" },
	{ 0x0106, "C\xcc\x81" }, { 0x0107, "C\xcc\x81" },
	{ 0x0108, "C\xcc\x82" }, { 0x0109, "C\xcc\x82" },
	{ 0x010a, "C\xcc\x87" }, { 0x010b, "C\xcc\x87" },
	{ 0x010c, "C\xcc\x8c" }, { 0x010d, "C\xcc\x8c" },
	{ 0x010e, "D\xcc\x8c" }, { 0x010f, "D\xcc\x8c" },
	{ 0x0111, "\xc4\x90" }, { 0x0112, "E\xcc\x84" },
	{ 0x0113, "E\xcc\x84" }, { 0x0114, "E\xcc\x86" },
	{ 0x0115, "E\xcc\x86" }, { 0x0116, "E\xcc\x87" },
	{ 0x0117, "E\xcc\x87" }, { 0x0118, "E\xcc\xa8" },
	{ 0x0119, "E\xcc\xa8" }, { 0x011a, "E\xcc\x8c" },
	{ 0x011b, "E\xcc\x8c" }, { 0x011c, "G\xcc\x82" },
	{ 0x011d, "G\xcc\x82" }, { 0x011e, "G\xcc\x86" },
	{ 0x011f, "G\xcc\x86" }, { 0x0120, "G\xcc\x87" },
	{ 0x0121, "G\xcc\x87" }, { 0x0122, "G\xcc\xa7" },
	{ 0x0123, "G\xcc\xa7" }, { 0x0124, "H\xcc\x82" },
	{ 0x0125, "H\xcc\x82" }, { 0x0127, "\xc4\xa6" },
	{ 0x0128, "I\xcc\x83" }, { 0x0129, "I\xcc\x83" },
	{ 0x012a, "I\xcc\x84" }, { 0x012b, "I\xcc\x84" },
	{ 0x012c, "I\xcc\x86" }, { 0x012d, "I\xcc\x86" },
	{ 0x012e, "I\xcc\xa8" }, { 0x012f, "I\xcc\xa8" },
	{ 0x0130, "I\xcc\x87" }, { 0x0131, "I" }, { 0x0133, "\xc4\xb2" },
	{ 0x0134, "J\xcc\x82" }, { 0x0135, "J\xcc\x82" },
	{ 0x0136, "K\xcc\xa7" }, { 0x0137, "K\xcc\xa7" },
	{ 0x0139, "L\xcc\x81" }, { 0x013a, "L\xcc\x81" },
	{ 0x013b, "L\xcc\xa7" }, { 0x013c, "L\xcc\xa7" },
	{ 0x013d, "L\xcc\x8c" }, { 0x013e, "L\xcc\x8c" },
	{ 0x0140, "\xc4\xbf" }, { 0x0142, "\xc5\x81" },
	{ 0x0143, "N\xcc\x81" }, { 0x0144, "N\xcc\x81" },
	{ 0x0145, "N\xcc\xa7" }, { 0x0146, "N\xcc\xa7" },
	{ 0x0147, "N\xcc\x8c" }, { 0x0148, "N\xcc\x8c" },
	{ 0x014b, "\xc5\x8a" }, { 0x014c, "O\xcc\x84" },
	{ 0x014d, "O\xcc\x84" }, { 0x014e, "O\xcc\x86" },
	{ 0x014f, "O\xcc\x86" }, { 0x0150, "O\xcc\x8b" },
	{ 0x0151, "O\xcc\x8b" }, { 0x0153, "\xc5\x92" },
	{ 0x0154, "R\xcc\x81" }, { 0x0155, "R\xcc\x81" },
	{ 0x0156, "R\xcc\xa7" }, { 0x0157, "R\xcc\xa7" },
	{ 0x0158, "R\xcc\x8c" }, { 0x0159, "R\xcc\x8c" },
	{ 0x015a, "S\xcc\x81" }, { 0x015b, "S\xcc\x81" },
	{ 0x015c, "S\xcc\x82" }, { 0x015d, "S\xcc\x82" },
	{ 0x015e, "S\xcc\xa7" }, { 0x015f, "S\xcc\xa7" },
	{ 0x0160, "S\xcc\x8c" }, { 0x0161, "S\xcc\x8c" },
	{ 0x0162, "T\xcc\xa7" }, { 0x0163, "T\xcc\xa7" },
	{ 0x0164, "T\xcc\x8c" }, { 0x0165, "T\xcc\x8c" },
	{ 0x0167, "\xc5\xa6" }, { 0x0168, "U\xcc\x83" },
	{ 0x0169, "U\xcc\x83" }, { 0x016a, "U\xcc\x84" },
	{ 0x016b, "U\xcc\x84" }, { 0x016c, "U\xcc\x86" },
	{ 0x016d, "U\xcc\x86" }, { 0x016e, "U\xcc\x8a" },
	{ 0x016f, "U\xcc\x8a" }, { 0x0170, "U\xcc\x8b" },
	{ 0x0171, "U\xcc\x8b" }, { 0x0172, "U\xcc\xa8" },
	{ 0x0173, "U\xcc\xa8" }, { 0x0174, "W\xcc\x82" },
	{ 0x0175, "W\xcc\x82" }, { 0x0176, "Y\xcc\x82" },
	{ 0x0177, "Y\xcc\x82" }, { 0x0178, "Y\xcc\x88" },
	{ 0x0179, "Z\xcc\x81" }, { 0x017a, "Z\xcc\x81" },
	{ 0x017b, "Z\xcc\x87" }, { 0x017c, "Z\xcc\x87" },
	{ 0x017d, "Z\xcc\x8c" }, { 0x017e, "Z\xcc\x8c" }, { 0x017f, "S" },
	{ 0x0180, "\xc9\x83" }, { 0x0183, "\xc6\x82" },
	{ 0x0185, "\xc6\x84" }, { 0x0188, "\xc6\x87" },
	{ 0x018c, "\xc6\x8b" }, { 0x0192, "\xc6\x91" },
	{ 0x0195, "\xc7\xb6" }, { 0x0199, "\xc6\x98" },
	{ 0x019a, "\xc8\xbd" }, { 0x019e, "\xc8\xa0" },
	{ 0x01a0, "O\xcc\x9b" }, { 0x01a1, "O\xcc\x9b" },
	{ 0x01a3, "\xc6\xa2" }, { 0x01a5, "\xc6\xa4" },
	{ 0x01a8, "\xc6\xa7" }, { 0x01ad, "\xc6\xac" },
	{ 0x01af, "U\xcc\x9b" }, { 0x01b0, "U\xcc\x9b" },
	{ 0x01b4, "\xc6\xb3" }, { 0x01b6, "\xc6\xb5" },
	{ 0x01b9, "\xc6\xb8" }, { 0x01bd, "\xc6\xbc" },
	{ 0x01bf, "\xc7\xb7" }, { 0x01c4, "\xc7\x85" },
	{ 0x01c6, "\xc7\x85" }, { 0x01c7, "\xc7\x88" },
	{ 0x01c9, "\xc7\x88" }, { 0x01ca, "\xc7\x8b" },
	{ 0x01cc, "\xc7\x8b" }, { 0x01cd, "A\xcc\x8c" },
	{ 0x01ce, "A\xcc\x8c" }, { 0x01cf, "I\xcc\x8c" },
	{ 0x01d0, "I\xcc\x8c" }, { 0x01d1, "O\xcc\x8c" },
	{ 0x01d2, "O\xcc\x8c" }, { 0x01d3, "U\xcc\x8c" },
	{ 0x01d4, "U\xcc\x8c" }, { 0x01d5, "U\xcc\x88\xcc\x84" },
	{ 0x01d6, "U\xcc\x88\xcc\x84" }, { 0x01d7, "U\xcc\x88\xcc\x81" },
	{ 0x01d8, "U\xcc\x88\xcc\x81" }, { 0x01d9, "U\xcc\x88\xcc\x8c" },
	{ 0x01da, "U\xcc\x88\xcc\x8c" }, { 0x01db, "U\xcc\x88\xcc\x80" },
	{ 0x01dc, "U\xcc\x88\xcc\x80" }, { 0x01dd, "\xc6\x8e" },
	{ 0x01de, "A\xcc\x88\xcc\x84" }, { 0x01df, "A\xcc\x88\xcc\x84" },
	{ 0x01e0, "A\xcc\x87\xcc\x84" }, { 0x01e1, "A\xcc\x87\xcc\x84" },
	{ 0x01e2, "\xc3\x86\xcc\x84" }, { 0x01e3, "\xc3\x86\xcc\x84" },
	{ 0x01e5, "\xc7\xa4" }, { 0x01e6, "G\xcc\x8c" },
	{ 0x01e7, "G\xcc\x8c" }, { 0x01e8, "K\xcc\x8c" },
	{ 0x01e9, "K\xcc\x8c" }, { 0x01ea, "O\xcc\xa8" },
	{ 0x01eb, "O\xcc\xa8" }, { 0x01ec, "O\xcc\xa8\xcc\x84" },
	{ 0x01ed, "O\xcc\xa8\xcc\x84" }, { 0x01ee, "\xc6\xb7\xcc\x8c" },
	{ 0x01ef, "\xc6\xb7\xcc\x8c" }, { 0x01f0, "j\xcc\x8c" },
	{ 0x01f1, "\xc7\xb2" }, { 0x01f3, "\xc7\xb2" },
	{ 0x01f4, "G\xcc\x81" }, { 0x01f5, "G\xcc\x81" },
	{ 0x01f8, "N\xcc\x80" }, { 0x01f9, "N\xcc\x80" },
	{ 0x01fa, "A\xcc\x8a\xcc\x81" }, { 0x01fb, "A\xcc\x8a\xcc\x81" },
	{ 0x01fc, "\xc3\x86\xcc\x81" }, { 0x01fd, "\xc3\x86\xcc\x81" },
	{ 0x01fe, "\xc3\x98\xcc\x81" }, { 0x01ff, "\xc3\x98\xcc\x81" },
	{ 0x0200, "A\xcc\x8f" }, { 0x0201, "A\xcc\x8f" },
	{ 0x0202, "A\xcc\x91" }, { 0x0203, "A\xcc\x91" },
	{ 0x0204, "E\xcc\x8f" }, { 0x0205, "E\xcc\x8f" },
	{ 0x0206, "E\xcc\x91" }, { 0x0207, "E\xcc\x91" },
	{ 0x0208, "I\xcc\x8f" }, { 0x0209, "I\xcc\x8f" },
	{ 0x020a, "I\xcc\x91" }, { 0x020b, "I\xcc\x91" },
	{ 0x020c, "O\xcc\x8f" }, { 0x020d, "O\xcc\x8f" },
	{ 0x020e, "O\xcc\x91" }, { 0x020f, "O\xcc\x91" },
	{ 0x0210, "R\xcc\x8f" }, { 0x0211, "R\xcc\x8f" },
	{ 0x0212, "R\xcc\x91" }, { 0x0213, "R\xcc\x91" },
	{ 0x0214, "U\xcc\x8f" }, { 0x0215, "U\xcc\x8f" },
	{ 0x0216, "U\xcc\x91" }, { 0x0217, "U\xcc\x91" },
	{ 0x0218, "S\xcc\xa6" }, { 0x0219, "S\xcc\xa6" },
	{ 0x021a, "T\xcc\xa6" }, { 0x021b, "T\xcc\xa6" },
	{ 0x021d, "\xc8\x9c" }, { 0x021e, "H\xcc\x8c" },
	{ 0x021f, "H\xcc\x8c" }, { 0x0223, "\xc8\xa2" },
	{ 0x0225, "\xc8\xa4" }, { 0x0226, "A\xcc\x87" },
	{ 0x0227, "A\xcc\x87" }, { 0x0228, "E\xcc\xa7" },
	{ 0x0229, "E\xcc\xa7" }, { 0x022a, "O\xcc\x88\xcc\x84" },
	{ 0x022b, "O\xcc\x88\xcc\x84" }, { 0x022c, "O\xcc\x83\xcc\x84" },
	{ 0x022d, "O\xcc\x83\xcc\x84" }, { 0x022e, "O\xcc\x87" },
	{ 0x022f, "O\xcc\x87" }, { 0x0230, "O\xcc\x87\xcc\x84" },
	{ 0x0231, "O\xcc\x87\xcc\x84" }, { 0x0232, "Y\xcc\x84" },
	{ 0x0233, "Y\xcc\x84" }, { 0x023c, "\xc8\xbb" },
	{ 0x023f, "\xe2\xb1\xbe" }, { 0x0240, "\xe2\xb1\xbf" },
	{ 0x0242, "\xc9\x81" }, { 0x0247, "\xc9\x86" },
	{ 0x0249, "\xc9\x88" }, { 0x024b, "\xc9\x8a" },
	{ 0x024d, "\xc9\x8c" }, { 0x024f, "\xc9\x8e" },
	{ 0x0250, "\xe2\xb1\xaf" }, { 0x0251, "\xe2\xb1\xad" },
	{ 0x0252, "\xe2\xb1\xb0" }, { 0x0253, "\xc6\x81" },
	{ 0x0254, "\xc6\x86" }, { 0x0256, "\xc6\x89" },
	{ 0x0257, "\xc6\x8a" }, { 0x0259, "\xc6\x8f" },
	{ 0x025b, "\xc6\x90" }, { 0x025c, "\xea\x9e\xab" },
	{ 0x0260, "\xc6\x93" }, { 0x0261, "\xea\x9e\xac" },
	{ 0x0263, "\xc6\x94" }, { 0x0265, "\xea\x9e\x8d" },
	{ 0x0266, "\xea\x9e\xaa" }, { 0x0268, "\xc6\x97" },
	{ 0x0269, "\xc6\x96" }, { 0x026a, "\xea\x9e\xae" },
	{ 0x026b, "\xe2\xb1\xa2" }, { 0x026c, "\xea\x9e\xad" },
	{ 0x026f, "\xc6\x9c" }, { 0x0271, "\xe2\xb1\xae" },
	{ 0x0272, "\xc6\x9d" }, { 0x0275, "\xc6\x9f" },
	{ 0x027d, "\xe2\xb1\xa4" }, { 0x0280, "\xc6\xa6" },
	{ 0x0282, "\xea\x9f\x85" }, { 0x0283, "\xc6\xa9" },
	{ 0x0287, "\xea\x9e\xb1" }, { 0x0288, "\xc6\xae" },
	{ 0x0289, "\xc9\x84" }, { 0x028a, "\xc6\xb1" },
	{ 0x028b, "\xc6\xb2" }, { 0x028c, "\xc9\x85" },
	{ 0x0292, "\xc6\xb7" }, { 0x029d, "\xea\x9e\xb2" },
	{ 0x029e, "\xea\x9e\xb0" }, { 0x0340, "\xcc\x80" },
	{ 0x0341, "\xcc\x81" }, { 0x0343, "\xcc\x93" },
	{ 0x0344, "\xcc\x88\xcc\x81" }, { 0x0345, "\xce\x99" },
	{ 0x0371, "\xcd\xb0" }, { 0x0373, "\xcd\xb2" },
	{ 0x0374, "\xca\xb9" }, { 0x0377, "\xcd\xb6" },
	{ 0x037b, "\xcf\xbd" }, { 0x037c, "\xcf\xbe" },
	{ 0x037d, "\xcf\xbf" }, { 0x037e, "\x3b" },
	{ 0x0385, "\xc2\xa8\xcc\x81" }, { 0x0386, "\xce\x91\xcc\x81" },
	{ 0x0387, "\xc2\xb7" }, { 0x0388, "\xce\x95\xcc\x81" },
	{ 0x0389, "\xce\x97\xcc\x81" }, { 0x038a, "\xce\x99\xcc\x81" },
	{ 0x038c, "\xce\x9f\xcc\x81" }, { 0x038e, "\xce\xa5\xcc\x81" },
	{ 0x038f, "\xce\xa9\xcc\x81" },
	{ 0x0390, "\xce\xb9\xcc\x88\xcc\x81" },
	{ 0x03aa, "\xce\x99\xcc\x88" }, { 0x03ab, "\xce\xa5\xcc\x88" },
	{ 0x03ac, "\xce\x91\xcc\x81" }, { 0x03ad, "\xce\x95\xcc\x81" },
	{ 0x03ae, "\xce\x97\xcc\x81" }, { 0x03af, "\xce\x99\xcc\x81" },
	{ 0x03b0, "\xcf\x85\xcc\x88\xcc\x81" }, { 0x03b1, "\xce\x91" },
	{ 0x03b2, "\xce\x92" }, { 0x03b3, "\xce\x93" },
	{ 0x03b4, "\xce\x94" }, { 0x03b5, "\xce\x95" },
	{ 0x03b6, "\xce\x96" }, { 0x03b7, "\xce\x97" },
	{ 0x03b8, "\xce\x98" }, { 0x03b9, "\xce\x99" },
	{ 0x03ba, "\xce\x9a" }, { 0x03bb, "\xce\x9b" },
	{ 0x03bc, "\xce\x9c" }, { 0x03bd, "\xce\x9d" },
	{ 0x03be, "\xce\x9e" }, { 0x03bf, "\xce\x9f" },
	{ 0x03c0, "\xce\xa0" }, { 0x03c1, "\xce\xa1" },
	{ 0x03c2, "\xce\xa3" }, { 0x03c3, "\xce\xa3" },
	{ 0x03c4, "\xce\xa4" }, { 0x03c5, "\xce\xa5" },
	{ 0x03c6, "\xce\xa6" }, { 0x03c7, "\xce\xa7" },
	{ 0x03c8, "\xce\xa8" }, { 0x03c9, "\xce\xa9" },
	{ 0x03ca, "\xce\x99\xcc\x88" }, { 0x03cb, "\xce\xa5\xcc\x88" },
	{ 0x03cc, "\xce\x9f\xcc\x81" }, { 0x03cd, "\xce\xa5\xcc\x81" },
	{ 0x03ce, "\xce\xa9\xcc\x81" }, { 0x03d0, "\xce\x92" },
	{ 0x03d1, "\xce\x98" }, { 0x03d3, "\xcf\x92\xcc\x81" },
	{ 0x03d4, "\xcf\x92\xcc\x88" }, { 0x03d5, "\xce\xa6" },
	{ 0x03d6, "\xce\xa0" }, { 0x03d7, "\xcf\x8f" },
	{ 0x03d9, "\xcf\x98" }, { 0x03db, "\xcf\x9a" },
	{ 0x03dd, "\xcf\x9c" }, { 0x03df, "\xcf\x9e" },
	{ 0x03e1, "\xcf\xa0" }, { 0x03e3, "\xcf\xa2" },
	{ 0x03e5, "\xcf\xa4" }, { 0x03e7, "\xcf\xa6" },
	{ 0x03e9, "\xcf\xa8" }, { 0x03eb, "\xcf\xaa" },
	{ 0x03ed, "\xcf\xac" }, { 0x03ef, "\xcf\xae" },
	{ 0x03f0, "\xce\x9a" }, { 0x03f1, "\xce\xa1" },
	{ 0x03f2, "\xcf\xb9" }, { 0x03f3, "\xcd\xbf" },
	{ 0x03f5, "\xce\x95" }, { 0x03f8, "\xcf\xb7" },
	{ 0x03fb, "\xcf\xba" }, { 0x0400, "\xd0\x95\xcc\x80" },
	{ 0x0401, "\xd0\x95\xcc\x88" }, { 0x0403, "\xd0\x93\xcc\x81" },
	{ 0x0407, "\xd0\x86\xcc\x88" }, { 0x040c, "\xd0\x9a\xcc\x81" },
	{ 0x040d, "\xd0\x98\xcc\x80" }, { 0x040e, "\xd0\xa3\xcc\x86" },
	{ 0x0419, "\xd0\x98\xcc\x86" }, { 0x0430, "\xd0\x90" },
	{ 0x0431, "\xd0\x91" }, { 0x0432, "\xd0\x92" },
	{ 0x0433, "\xd0\x93" }, { 0x0434, "\xd0\x94" },
	{ 0x0435, "\xd0\x95" }, { 0x0436, "\xd0\x96" },
	{ 0x0437, "\xd0\x97" }, { 0x0438, "\xd0\x98" },
	{ 0x0439, "\xd0\x98\xcc\x86" }, { 0x043a, "\xd0\x9a" },
	{ 0x043b, "\xd0\x9b" }, { 0x043c, "\xd0\x9c" },
	{ 0x043d, "\xd0\x9d" }, { 0x043e, "\xd0\x9e" },
	{ 0x043f, "\xd0\x9f" }, { 0x0440, "\xd0\xa0" },
	{ 0x0441, "\xd0\xa1" }, { 0x0442, "\xd0\xa2" },
	{ 0x0443, "\xd0\xa3" }, { 0x0444, "\xd0\xa4" },
	{ 0x0445, "\xd0\xa5" }, { 0x0446, "\xd0\xa6" },
	{ 0x0447, "\xd0\xa7" }, { 0x0448, "\xd0\xa8" },
	{ 0x0449, "\xd0\xa9" }, { 0x044a, "\xd0\xaa" },
	{ 0x044b, "\xd0\xab" }, { 0x044c, "\xd0\xac" },
	{ 0x044d, "\xd0\xad" }, { 0x044e, "\xd0\xae" },
	{ 0x044f, "\xd0\xaf" }, { 0x0450, "\xd0\x95\xcc\x80" },
	{ 0x0451, "\xd0\x95\xcc\x88" }, { 0x0452, "\xd0\x82" },
	{ 0x0453, "\xd0\x93\xcc\x81" }, { 0x0454, "\xd0\x84" },
	{ 0x0455, "\xd0\x85" }, { 0x0456, "\xd0\x86" },
	{ 0x0457, "\xd0\x86\xcc\x88" }, { 0x0458, "\xd0\x88" },
	{ 0x0459, "\xd0\x89" }, { 0x045a, "\xd0\x8a" },
	{ 0x045b, "\xd0\x8b" }, { 0x045c, "\xd0\x9a\xcc\x81" },
	{ 0x045d, "\xd0\x98\xcc\x80" }, { 0x045e, "\xd0\xa3\xcc\x86" },
	{ 0x045f, "\xd0\x8f" }, { 0x0461, "\xd1\xa0" },
	{ 0x0463, "\xd1\xa2" }, { 0x0465, "\xd1\xa4" },
	{ 0x0467, "\xd1\xa6" }, { 0x0469, "\xd1\xa8" },
	{ 0x046b, "\xd1\xaa" }, { 0x046d, "\xd1\xac" },
	{ 0x046f, "\xd1\xae" }, { 0x0471, "\xd1\xb0" },
	{ 0x0473, "\xd1\xb2" }, { 0x0475, "\xd1\xb4" },
	{ 0x0476, "\xd1\xb4\xcc\x8f" }, { 0x0477, "\xd1\xb4\xcc\x8f" },
	{ 0x0479, "\xd1\xb8" }, { 0x047b, "\xd1\xba" },
	{ 0x047d, "\xd1\xbc" }, { 0x047f, "\xd1\xbe" },
	{ 0x0481, "\xd2\x80" }, { 0x048b, "\xd2\x8a" },
	{ 0x048d, "\xd2\x8c" }, { 0x048f, "\xd2\x8e" },
	{ 0x0491, "\xd2\x90" }, { 0x0493, "\xd2\x92" },
	{ 0x0495, "\xd2\x94" }, { 0x0497, "\xd2\x96" },
	{ 0x0499, "\xd2\x98" }, { 0x049b, "\xd2\x9a" },
	{ 0x049d, "\xd2\x9c" }, { 0x049f, "\xd2\x9e" },
	{ 0x04a1, "\xd2\xa0" }, { 0x04a3, "\xd2\xa2" },
	{ 0x04a5, "\xd2\xa4" }, { 0x04a7, "\xd2\xa6" },
	{ 0x04a9, "\xd2\xa8" }, { 0x04ab, "\xd2\xaa" },
	{ 0x04ad, "\xd2\xac" }, { 0x04af, "\xd2\xae" },
	{ 0x04b1, "\xd2\xb0" }, { 0x04b3, "\xd2\xb2" },
	{ 0x04b5, "\xd2\xb4" }, { 0x04b7, "\xd2\xb6" },
	{ 0x04b9, "\xd2\xb8" }, { 0x04bb, "\xd2\xba" },
	{ 0x04bd, "\xd2\xbc" }, { 0x04bf, "\xd2\xbe" },
	{ 0x04c1, "\xd0\x96\xcc\x86" }, { 0x04c2, "\xd0\x96\xcc\x86" },
	{ 0x04c4, "\xd3\x83" }, { 0x04c6, "\xd3\x85" },
	{ 0x04c8, "\xd3\x87" }, { 0x04ca, "\xd3\x89" },
	{ 0x04cc, "\xd3\x8b" }, { 0x04ce, "\xd3\x8d" },
	{ 0x04cf, "\xd3\x80" }, { 0x04d0, "\xd0\x90\xcc\x86" },
	{ 0x04d1, "\xd0\x90\xcc\x86" }, { 0x04d2, "\xd0\x90\xcc\x88" },
	{ 0x04d3, "\xd0\x90\xcc\x88" }, { 0x04d5, "\xd3\x94" },
	{ 0x04d6, "\xd0\x95\xcc\x86" }, { 0x04d7, "\xd0\x95\xcc\x86" },
	{ 0x04d9, "\xd3\x98" }, { 0x04da, "\xd3\x98\xcc\x88" },
	{ 0x04db, "\xd3\x98\xcc\x88" }, { 0x04dc, "\xd0\x96\xcc\x88" },
	{ 0x04dd, "\xd0\x96\xcc\x88" }, { 0x04de, "\xd0\x97\xcc\x88" },
	{ 0x04df, "\xd0\x97\xcc\x88" }, { 0x04e1, "\xd3\xa0" },
	{ 0x04e2, "\xd0\x98\xcc\x84" }, { 0x04e3, "\xd0\x98\xcc\x84" },
	{ 0x04e4, "\xd0\x98\xcc\x88" }, { 0x04e5, "\xd0\x98\xcc\x88" },
	{ 0x04e6, "\xd0\x9e\xcc\x88" }, { 0x04e7, "\xd0\x9e\xcc\x88" },
	{ 0x04e9, "\xd3\xa8" }, { 0x04ea, "\xd3\xa8\xcc\x88" },
	{ 0x04eb, "\xd3\xa8\xcc\x88" }, { 0x04ec, "\xd0\xad\xcc\x88" },
	{ 0x04ed, "\xd0\xad\xcc\x88" }, { 0x04ee, "\xd0\xa3\xcc\x84" },
	{ 0x04ef, "\xd0\xa3\xcc\x84" }, { 0x04f0, "\xd0\xa3\xcc\x88" },
	{ 0x04f1, "\xd0\xa3\xcc\x88" }, { 0x04f2, "\xd0\xa3\xcc\x8b" },
	{ 0x04f3, "\xd0\xa3\xcc\x8b" }, { 0x04f4, "\xd0\xa7\xcc\x88" },
	{ 0x04f5, "\xd0\xa7\xcc\x88" }, { 0x04f7, "\xd3\xb6" },
	{ 0x04f8, "\xd0\xab\xcc\x88" }, { 0x04f9, "\xd0\xab\xcc\x88" },
	{ 0x04fb, "\xd3\xba" }, { 0x04fd, "\xd3\xbc" },
	{ 0x04ff, "\xd3\xbe" }, { 0x0501, "\xd4\x80" },
	{ 0x0503, "\xd4\x82" }, { 0x0505, "\xd4\x84" },
	{ 0x0507, "\xd4\x86" }, { 0x0509, "\xd4\x88" },
	{ 0x050b, "\xd4\x8a" }, { 0x050d, "\xd4\x8c" },
	{ 0x050f, "\xd4\x8e" }, { 0x0511, "\xd4\x90" },
	{ 0x0513, "\xd4\x92" }, { 0x0515, "\xd4\x94" },
	{ 0x0517, "\xd4\x96" }, { 0x0519, "\xd4\x98" },
	{ 0x051b, "\xd4\x9a" }, { 0x051d, "\xd4\x9c" },
	{ 0x051f, "\xd4\x9e" }, { 0x0521, "\xd4\xa0" },
	{ 0x0523, "\xd4\xa2" }, { 0x0525, "\xd4\xa4" },
	{ 0x0527, "\xd4\xa6" }, { 0x0529, "\xd4\xa8" },
	{ 0x052b, "\xd4\xaa" }, { 0x052d, "\xd4\xac" },
	{ 0x052f, "\xd4\xae" }, { 0x0561, "\xd4\xb1" },
	{ 0x0562, "\xd4\xb2" }, { 0x0563, "\xd4\xb3" },
	{ 0x0564, "\xd4\xb4" }, { 0x0565, "\xd4\xb5" },
	{ 0x0566, "\xd4\xb6" }, { 0x0567, "\xd4\xb7" },
	{ 0x0568, "\xd4\xb8" }, { 0x0569, "\xd4\xb9" },
	{ 0x056a, "\xd4\xba" }, { 0x056b, "\xd4\xbb" },
	{ 0x056c, "\xd4\xbc" }, { 0x056d, "\xd4\xbd" },
	{ 0x056e, "\xd4\xbe" }, { 0x056f, "\xd4\xbf" },
	{ 0x0570, "\xd5\x80" }, { 0x0571, "\xd5\x81" },
	{ 0x0572, "\xd5\x82" }, { 0x0573, "\xd5\x83" },
	{ 0x0574, "\xd5\x84" }, { 0x0575, "\xd5\x85" },
	{ 0x0576, "\xd5\x86" }, { 0x0577, "\xd5\x87" },
	{ 0x0578, "\xd5\x88" }, { 0x0579, "\xd5\x89" },
	{ 0x057a, "\xd5\x8a" }, { 0x057b, "\xd5\x8b" },
	{ 0x057c, "\xd5\x8c" }, { 0x057d, "\xd5\x8d" },
	{ 0x057e, "\xd5\x8e" }, { 0x057f, "\xd5\x8f" },
	{ 0x0580, "\xd5\x90" }, { 0x0581, "\xd5\x91" },
	{ 0x0582, "\xd5\x92" }, { 0x0583, "\xd5\x93" },
	{ 0x0584, "\xd5\x94" }, { 0x0585, "\xd5\x95" },
	{ 0x0586, "\xd5\x96" }, { 0x0622, "\xd8\xa7\xd9\x93" },
	{ 0x0623, "\xd8\xa7\xd9\x94" }, { 0x0624, "\xd9\x88\xd9\x94" },
	{ 0x0625, "\xd8\xa7\xd9\x95" }, { 0x0626, "\xd9\x8a\xd9\x94" },
	{ 0x06c0, "\xdb\x95\xd9\x94" }, { 0x06c2, "\xdb\x81\xd9\x94" },
	{ 0x06d3, "\xdb\x92\xd9\x94" }
};

/* qsort() passes no context: the program, arena and nodes of the sort
 * being run */
static const struct sortprog *cur_prog;
static const char *cur_arena;
static const struct tnode *cur_nodes;
static const struct tmsg *cur_msgs;

static struct sortprog *
fail(const char *why)
{
	if (!perr)
		perr = why;
	return NULL;
}

/* ---- strings --------------------------------------------------------- */

/* s in i;unicode-casemap form, appended to out */
static void
casemap(struct buf *out, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i, lo, hi, mid;
	unsigned cp;

	for (i = 0; i < n; i++) {
		if (u[i] >= 'a' && u[i] <= 'z') {
			buf_addc(out, u[i] - 32);
			continue;
		}
		if (u[i] < 0xc2 || u[i] >= 0xe0 || i + 1 >= n ||
		    (u[i + 1] & 0xc0) != 0x80) {
			buf_addc(out, u[i]);
			continue;
		}
		cp = (u[i] & 0x1f) << 6 | (u[i + 1] & 0x3f);
		for (lo = 0, hi = LEN(cmap); lo < hi;) {
			mid = (lo + hi) / 2;
			if (cmap[mid].cp < cp)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < LEN(cmap) && cmap[lo].cp == cp)
			buf_adds(out, cmap[lo].s);
		else
			buf_add(out, s + i, 2);
		i++;
	}
}

/* subj-blob at s[*p] (RFC 5256 section 5): "[" *BLOBCHAR "]" and the
 * white space after it */
static int
blob(const char *s, size_t *p, size_t e)
{
	size_t i = *p;

	if (i >= e || s[i] != '[')
		return 0;
	for (i++; i < e && s[i] != '[' && s[i] != ']'; i++)
		;
	if (i >= e || s[i] != ']')
		return 0;
	i++;
	if (i < e && s[i] == ' ')
		i++;
	*p = i;
	return 1;
}

/* step (3), subj-leader: a space, or blobs and "RE"/"FW"/"FWD" [blob] ":" */
static int
leader(const char *s, size_t *b, size_t e, int *reply)
{
	size_t p = *b;
	int found = 0;

	if (p < e && s[p] == ' ') {
		*b = ++p;
		found = 1;
	}
	while (p < e && s[p] == '[')
		if (!blob(s, &p, e))
			return found;
	if (e - p >= 2 && !memcmp(s + p, "RE", 2))
		p += 2;
	else if (e - p >= 3 && !memcmp(s + p, "FWD", 3))
		p += 3;
	else if (e - p >= 2 && !memcmp(s + p, "FW", 2))
		p += 2;
	else
		return found;
	if (p < e && s[p] == ' ')
		p++;
	if (p < e && s[p] == '[' && !blob(s, &p, e))
		return found;
	if (p >= e || s[p] != ':')
		return found;
	*b = p + 1;
	*reply = 1;
	return 1;
}

/* The base subject (RFC 5256 2.1) of a Subject: value, case-mapped,
 * appended to out; returns whether the extraction says reply or
 * forward.  Works on the case-mapped text, so the artifacts to strip are
 * upper case. */
static int
base_subject(struct buf *out, const char *v, size_t n)
{
	struct buf dec = { 0 }, map = { 0 };
	size_t i, b, e, k;
	int reply = 0, found, sp = 0;
	char *s;

	/* (1) decode, then every run of white space becomes one space */
	mime_decode(&dec, v, n);
	casemap(&map, dec.p, dec.len);
	buf_addc(&map, '\0');	/* never NULL */
	map.len--;
	s = map.p;
	for (i = k = 0; i < map.len; i++) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' ||
		    s[i] == '\n') {
			if (!sp)
				s[k++] = ' ';
			sp = 1;
			continue;
		}
		sp = 0;
		s[k++] = s[i];
	}
	b = 0;
	e = k;
	for (;;) {
		/* (2) trailers: white space and "(fwd)" */
		while (e > b) {
			if (s[e - 1] == ' ')
				e--;
			else if (e - b >= 5 && !memcmp(s + e - 5, "(FWD)", 5)) {
				e -= 5;
				reply = 1;
			} else
				break;
		}
		/* (3)-(5): leaders, and a blob when text remains after it */
		do {
			found = leader(s, &b, e, &reply);
			k = b;
			if (blob(s, &k, e) && k < e) {
				b = k;
				found = 1;
			}
		} while (found);
		/* (6) "[fwd:" ... "]" around it all */
		if (e - b < 6 || memcmp(s + b, "[FWD:", 5) || s[e - 1] != ']')
			break;
		b += 5;
		e--;
		reply = 1;
	}
	buf_add(out, s + b, e - b);
	buf_free(&dec);
	buf_free(&map);
	return reply;
}

/* the next msg-id in s[*i..n), normalized (quotes and white space
 * dropped) and appended to out with its NUL; 0 when there is none.  A
 * msg-id needs its angle brackets and an "@". */
static int
next_msgid(const char *s, size_t n, size_t *i, struct buf *out)
{
	size_t j, start;
	int at, c;

	while (*i < n) {
		while (*i < n && s[*i] != '<')
			(*i)++;
		if (*i >= n)
			return 0;
		start = out->len;
		at = 0;
		for (j = *i + 1; j < n && s[j] != '>' && s[j] != '<'; j++) {
			c = (unsigned char)s[j];
			if (c == '"' || c == ' ' || c == '\t' || c == '\r' ||
			    c == '\n')
				continue;
			if (c == '\\' && j + 1 < n)
				c = (unsigned char)s[++j];
			at |= c == '@';
			buf_addc(out, c);
		}
		*i = j < n && s[j] == '>' ? j + 1 : j;
		if (j < n && s[j] == '>' && at) {
			buf_addc(out, '\0');
			return 1;
		}
		out->len = start;
	}
	return 0;
}

/* ---- reading messages ------------------------------------------------ */

static int has(const struct fields *, int);

/* the first bytes of a message hold its whole header: a blank line ends
 * it there, or the message ends before the buffer does */
static int
head_whole(const char *p, size_t n, size_t max)
{
	size_t i;

	if (n < max)
		return 1;
	for (i = 0; i + 1 < n; i++)
		if (p[i] == '\n' && (p[i + 1] == '\n' ||
		    (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n')))
			return 1;
	return 0;
}

/* what a message gives: its header when needhdr is set (read from the
 * first bytes of the file when they hold it, else from a mapping), the
 * internal date, and only with needinfo the size, which the store may have
 * to read the whole file for */
static void
fields_read(struct folder *f, struct view *v, size_t vi, int needhdr,
    int needinfo, struct fields *fl)
{
	char head[HEAD_MAX];
	struct msgmap mm;
	uint64_t size;
	ssize_t n;
	time_t t;
	long k;
	int i;

	for (i = 0; i < H_N; i++)
		buf_reset(&fl->v[i]);
	fl->have = 0;
	fl->idate = 0;
	fl->size = 0;
	if (v->m[vi].gone || (k = folder_find(f, v->m[vi].uid)) < 0)
		return;
	if (needinfo && msg_info(f, k, &fl->idate, &fl->size) < 0)
		return;
	if (!needhdr)
		return;
	if ((n = msg_head(f, k, head, sizeof(head))) >= 0 &&
	    head_whole(head, n, sizeof(head))) {
		fl->have = mime_headers(head, n, hdrnames, H_N, fl->v);
		/* the internal date stands in for a Date: that is missing */
		if (!needinfo && (!has(fl, H_DATE) || mime_date(fl->v[H_DATE].p,
		    fl->v[H_DATE].len, &t) != 0))
			msg_info(f, k, &fl->idate, &size);
		return;
	}
	if (msg_map(f, k, &mm) < 0)
		return;
	fl->idate = mm.internaldate;
	fl->have = mime_headers(mm.p, mm.len, hdrnames, H_N, fl->v);
	msg_unmap(&mm);
}

static void
fields_free(struct fields *fl)
{
	int i;

	for (i = 0; i < H_N; i++)
		buf_free(&fl->v[i]);
}

static int
has(const struct fields *fl, int h)
{
	return (fl->have >> h) & 1;
}

/* RFC 5256 2.2: the Date: header in UTC, else the internal date */
static time_t
sent_date(const struct fields *fl)
{
	time_t t;

	if (has(fl, H_DATE) &&
	    mime_date(fl->v[H_DATE].p, fl->v[H_DATE].len, &t) == 0)
		return t;
	return fl->idate;
}

/* the key of an address field: the first address's mailbox, or for
 * DISPLAY (RFC 5957) its decoded display name, else its addr-spec */
static void
addr_key(struct buf *out, const struct fields *fl, int h, int display)
{
	struct buf name = { 0 }, mbox = { 0 }, host = { 0 }, t = { 0 };

	if (!has(fl, h) || !mime_first_address(fl->v[h].p, fl->v[h].len,
	    &name, &mbox, &host))
		goto done;
	if (display)
		mime_decode(&t, name.p, name.len);
	if (!t.len) {
		buf_add(&t, mbox.p ? mbox.p : "", mbox.len);
		if (display && host.len) {
			buf_addc(&t, '@');
			buf_add(&t, host.p, host.len);
		}
	}
	casemap(out, t.p, t.len);
done:
	buf_free(&name);
	buf_free(&mbox);
	buf_free(&host);
	buf_free(&t);
}

/* ---- SORT ------------------------------------------------------------ */

struct sortprog *
sort_parse(void)
{
	struct sortprog *sp;
	char *w;
	size_t i;
	int rev;

	if (!p_char('('))
		return fail("Expected a parenthesized list of sort criteria");
	sp = p_alloc(sizeof(*sp));
	memset(sp, 0, sizeof(*sp));
	do {
		if (sp->n == SORT_MAX)
			return fail("Too many sort criteria");
		if (!(w = p_atom()))
			return NULL;
		if ((rev = !ascii_casecmp(w, "REVERSE")) &&
		    (p_sp() < 0 || !(w = p_atom())))
			return NULL;
		for (i = 0; i < LEN(keynames); i++)
			if (!ascii_casecmp(w, keynames[i].name))
				break;
		if (i == LEN(keynames))
			return fail("Unknown sort criterion");
		sp->c[sp->n].key = keynames[i].key;
		sp->c[sp->n].reverse = rev;
		sp->want |= 1u << keynames[i].key;
		sp->n++;
	} while (p_char(' '));
	if (!p_char(')'))
		return fail("Expected ')' after the sort criteria");
	return sp;
}

static void
key_load(struct key *k, const struct sortprog *sp, struct folder *f,
    struct view *v, size_t vi, struct fields *fl, struct buf *arena)
{
	static const int addr[K_NSTR] = { -1, H_FROM, H_TO, H_CC, H_FROM,
		H_TO };
	unsigned want = sp->want;
	int s;

	fields_read(f, v, vi, (want & ((1u << K_NSTR) - 1)) ||
	    (want & 1u << K_DATE), want & (1u << K_SIZE | 1u << K_ARRIVAL),
	    fl);
	k->vi = vi;
	k->arrival = fl->idate;
	k->size = fl->size;
	k->date = want & 1u << K_DATE ? sent_date(fl) : 0;
	for (s = 0; s < K_NSTR; s++) {
		k->str[s] = arena->len;
		if ((want & 1u << s) && s == K_SUBJECT) {
			if (has(fl, H_SUBJECT))
				base_subject(arena, fl->v[H_SUBJECT].p,
				    fl->v[H_SUBJECT].len);
		} else if (want & 1u << s)
			addr_key(arena, fl, addr[s], s >= K_DISPLAYFROM);
		buf_addc(arena, '\0');
	}
}

static int
key_cmp(const void *a, const void *b)
{
	const struct key *x = a, *y = b;
	int i, k, r;

	for (i = 0; i < cur_prog->n; i++) {
		k = cur_prog->c[i].key;
		if (k == K_ARRIVAL)
			r = CMP(x->arrival, y->arrival);
		else if (k == K_DATE)
			r = CMP(x->date, y->date);
		else if (k == K_SIZE)
			r = CMP(x->size, y->size);
		else
			r = strcmp(cur_arena + x->str[k],
			    cur_arena + y->str[k]);
		if (r)
			return cur_prog->c[i].reverse ? -r : r;
	}
	return CMP(x->vi, y->vi);
}

void
sort_run(struct sortprog *sp, struct folder *f, struct view *v, size_t *idx,
    size_t n)
{
	struct fields fl;
	struct buf arena = { 0 };
	struct key *keys;
	size_t i;

	if (n < 2)
		return;
	memset(&fl, 0, sizeof(fl));
	keys = xcalloc(n, sizeof(*keys));
	for (i = 0; i < n; i++)
		key_load(&keys[i], sp, f, v, idx[i], &fl, &arena);
	cur_prog = sp;
	cur_arena = arena.p;
	qsort(keys, n, sizeof(*keys), key_cmp);
	for (i = 0; i < n; i++)
		idx[i] = keys[i].vi;
	fields_free(&fl);
	buf_free(&arena);
	free(keys);
}

/* ---- THREAD: the tree ------------------------------------------------ */

int
thread_alg(const char *name)
{
	if (!ascii_casecmp(name, "ORDEREDSUBJECT"))
		return THREAD_ORDEREDSUBJECT;
	if (!ascii_casecmp(name, "REFERENCES"))
		return THREAD_REFERENCES;
	return -1;
}

static const char *
str(const struct thread *t, size_t off)
{
	return t->arena.p + off;
}

static size_t
node_new(struct thread *t, size_t msg)
{
	struct tnode *nd;

	if (t->nnodes == t->capnodes) {
		t->capnodes = t->capnodes ? t->capnodes * 2 : 64;
		t->nodes = xreallocarray(t->nodes, t->capnodes,
		    sizeof(*t->nodes));
	}
	nd = &t->nodes[t->nnodes];
	nd->parent = nd->child = nd->next = NONE;
	nd->nkids = 0;
	nd->msg = msg;
	nd->date = msg == NONE ? 0 : t->msgs[msg].date;
	nd->vi = msg == NONE ? 0 : t->msgs[msg].vi;
	return t->nnodes++;
}

static int
isdummy(const struct thread *t, size_t x)
{
	return t->nodes[x].msg == NONE;
}

/* make x the first child of p */
static void
adopt(struct thread *t, size_t p, size_t x)
{
	t->nodes[x].parent = p;
	t->nodes[x].next = t->nodes[p].child;
	t->nodes[p].child = x;
}

/* the nodes below the root, parents before children */
static size_t
walk_order(struct thread *t, size_t *order)
{
	size_t n = 1, i, c;

	order[0] = 0;
	for (i = 0; i < n; i++)
		for (c = t->nodes[order[i]].child; c != NONE;
		    c = t->nodes[c].next)
			order[n++] = c;
	return n;
}

static int
node_cmp(const void *a, const void *b)
{
	const struct tnode *x = &cur_nodes[*(const size_t *)a];
	const struct tnode *y = &cur_nodes[*(const size_t *)b];

	if (x->date != y->date)
		return CMP(x->date, y->date);
	return CMP(x->vi, y->vi);
}

static void
sort_children(struct thread *t, size_t p)
{
	size_t n = 0, c, i;

	for (c = t->nodes[p].child; c != NONE; c = t->nodes[c].next) {
		if (n == t->tmpcap) {
			t->tmpcap = t->tmpcap ? t->tmpcap * 2 : 64;
			t->tmp = xreallocarray(t->tmp, t->tmpcap,
			    sizeof(*t->tmp));
		}
		t->tmp[n++] = c;
	}
	if (n < 2)
		return;
	cur_nodes = t->nodes;
	qsort(t->tmp, n, sizeof(*t->tmp), node_cmp);
	t->nodes[p].child = t->tmp[0];
	for (i = 0; i + 1 < n; i++)
		t->nodes[t->tmp[i]].next = t->tmp[i + 1];
	t->nodes[t->tmp[n - 1]].next = NONE;
}

/* steps (4) and (6): every set of siblings by sent date, the youngest
 * first, so a dummy can take the date of its first child */
static void
sort_tree(struct thread *t)
{
	size_t *order = xreallocarray(NULL, t->nnodes, sizeof(*order));
	size_t n = walk_order(t, order), x, c;

	while (n-- > 0) {
		x = order[n];
		sort_children(t, x);
		if (x && isdummy(t, x) && (c = t->nodes[x].child) != NONE) {
			t->nodes[x].date = t->nodes[c].date;
			t->nodes[x].vi = t->nodes[c].vi;
		}
	}
	free(order);
}

static void
thread_print(struct thread *t, struct view *v, int uid, struct buf *out)
{
	size_t *stack = xreallocarray(NULL, 2 * t->nnodes + 1,
	    sizeof(*stack));
	size_t sp = 0, x, c, start;
	const struct tnode *nd;

	for (c = t->nodes[0].child; c != NONE; c = t->nodes[c].next)
		stack[sp++] = c;
	for (start = 0; start < sp / 2; start++) {	/* first on top */
		x = stack[start];
		stack[start] = stack[sp - 1 - start];
		stack[sp - 1 - start] = x;
	}
	while (sp) {
		if ((x = stack[--sp]) == CLOSE) {
			buf_addc(out, ')');
			continue;
		}
		buf_addc(out, '(');
		for (;;) {
			nd = &t->nodes[x];
			if (nd->msg != NONE)
				buf_printf(out, "%lu", uid ?
				    (unsigned long)v->m[nd->vi].uid :
				    (unsigned long)nd->vi + 1);
			if ((c = nd->child) == NONE) {
				buf_addc(out, ')');
				break;
			}
			if (nd->msg != NONE)
				buf_addc(out, ' ');
			if (nd->msg != NONE && t->nodes[c].next == NONE) {
				x = c;
				continue;
			}
			/* two or more: each child its own list */
			stack[sp++] = CLOSE;
			start = sp;
			for (; c != NONE; c = t->nodes[c].next)
				stack[sp++] = c;
			for (c = 0; c < (sp - start) / 2; c++) {
				x = stack[start + c];
				stack[start + c] = stack[sp - 1 - c];
				stack[sp - 1 - c] = x;
			}
			break;
		}
	}
	free(stack);
}

/* ---- THREAD: reading the messages ------------------------------------ */

static void
ref_add(struct thread *t, size_t off)
{
	if (t->nrefs == t->caprefs) {
		t->caprefs = t->caprefs ? t->caprefs * 2 : 256;
		t->refs = xreallocarray(t->refs, t->caprefs, sizeof(*t->refs));
	}
	t->refs[t->nrefs++] = off;
}

/* RFC 5256 REFERENCES: the msg-ids of References:, else the first of
 * In-Reply-To: */
static void
msg_refs(struct thread *t, struct tmsg *m, const struct fields *fl)
{
	size_t i = 0, off = t->arena.len;

	m->ref = t->nrefs;
	if (has(fl, H_REFS))
		while (next_msgid(fl->v[H_REFS].p, fl->v[H_REFS].len, &i,
		    &t->arena)) {
			ref_add(t, off);
			off = t->arena.len;
		}
	i = 0;
	if (t->nrefs == m->ref && has(fl, H_IRT) &&
	    next_msgid(fl->v[H_IRT].p, fl->v[H_IRT].len, &i, &t->arena))
		ref_add(t, off);
	m->nref = t->nrefs - m->ref;
}

static void
thread_load(struct thread *t, int alg, struct folder *f, struct view *v,
    const size_t *idx, size_t n)
{
	struct fields fl;
	struct tmsg *m;
	size_t i, pos;

	memset(&fl, 0, sizeof(fl));
	t->msgs = xcalloc(n ? n : 1, sizeof(*t->msgs));
	t->nmsgs = n;
	for (i = 0; i < n; i++) {
		m = &t->msgs[i];
		fields_read(f, v, idx[i], 1, 0, &fl);
		m->vi = idx[i];
		m->date = sent_date(&fl);
		m->subj = t->arena.len;
		if (has(&fl, H_SUBJECT))
			m->reply = base_subject(&t->arena,
			    fl.v[H_SUBJECT].p, fl.v[H_SUBJECT].len);
		buf_addc(&t->arena, '\0');
		m->id = NONE;
		if (alg != THREAD_REFERENCES)
			continue;
		pos = 0;
		if (has(&fl, H_MSGID)) {
			m->id = t->arena.len;
			if (!next_msgid(fl.v[H_MSGID].p, fl.v[H_MSGID].len,
			    &pos, &t->arena))
				m->id = NONE;
		}
		msg_refs(t, m, &fl);
	}
	fields_free(&fl);
	buf_addc(&t->arena, '\0');	/* never NULL */
}

/* ---- THREAD: the algorithms ------------------------------------------ */

static void
ht_init(struct htab *h, size_t n)
{
	size_t cap = 16;

	while (cap < 2 * n + 1)
		cap *= 2;
	h->key = xcalloc(cap, sizeof(*h->key));
	h->val = xcalloc(cap, sizeof(*h->val));
	h->mask = cap - 1;
}

static void
ht_free(struct htab *h)
{
	free(h->key);
	free(h->val);
}

/* the slot of k: where it is, or the empty slot where it belongs */
static size_t
ht_find(const struct htab *h, const char *k)
{
	const unsigned char *p;
	uint64_t x = 14695981039346656037ULL;	/* FNV-1a */
	size_t i;

	for (p = (const unsigned char *)k; *p; p++)
		x = (x ^ *p) * 1099511628211ULL;
	for (i = x & h->mask; h->key[i] && strcmp(h->key[i], k);
	    i = (i + 1) & h->mask)
		;
	return i;
}

/* the node that carries a Message-ID: a dummy until its message comes */
static size_t
id_node(struct thread *t, struct htab *ids, const char *id)
{
	size_t i = ht_find(ids, id);

	if (!ids->key[i]) {
		ids->key[i] = id;
		ids->val[i] = node_new(t, NONE);
	}
	return ids->val[i];
}

/* is x p itself or above it: linking p under x would make a loop */
static int
above(const struct thread *t, size_t x, size_t p)
{
	if (!t->nodes[x].nkids)
		return x == p;
	for (; p != NONE; p = t->nodes[p].parent)
		if (p == x)
			return 1;
	return 0;
}

/* step (1): make p the parent of x (NONE: none) */
static void
relink(struct thread *t, size_t x, size_t p)
{
	if (t->nodes[x].parent != NONE)
		t->nodes[t->nodes[x].parent].nkids--;
	t->nodes[x].parent = p;
	if (p != NONE)
		t->nodes[p].nkids++;
}

/* step (1): link every message to its references */
static void
link_refs(struct thread *t, struct htab *ids)
{
	struct tmsg *m;
	size_t i, r, k, me, prev, cur;

	for (i = 0; i < t->nmsgs; i++) {
		m = &t->msgs[i];
		/* a duplicate Message-ID is only the first message's */
		me = NONE;
		if (m->id != NONE) {
			k = ht_find(ids, str(t, m->id));
			if (!ids->key[k]) {
				ids->key[k] = str(t, m->id);
				ids->val[k] = me = node_new(t, i);
			} else if (isdummy(t, ids->val[k])) {
				me = ids->val[k];
				t->nodes[me].msg = i;
				t->nodes[me].date = m->date;
				t->nodes[me].vi = m->vi;
			}
		}
		if (me == NONE)
			me = node_new(t, i);
		/* (A) each reference the parent of the next */
		for (r = 0, prev = NONE; r < m->nref; r++, prev = cur) {
			cur = id_node(t, ids, str(t, t->refs[m->ref + r]));
			if (prev != NONE && t->nodes[cur].parent == NONE &&
			    !above(t, cur, prev))
				relink(t, cur, prev);
		}
		/* (B) the last reference is the parent, whatever came
		 * before */
		relink(t, me, NONE);
		if (prev != NONE && !above(t, me, prev))
			relink(t, me, prev);
	}
}

/* steps (2) and (3): the parentless nodes go under the root; dummies
 * vanish, their messages moving up to the nearest message above, or to
 * the topmost dummy, which stays only when it holds two or more */
static void
prune(struct thread *t)
{
	size_t *order = xreallocarray(NULL, t->nnodes, sizeof(*order));
	size_t *top = xreallocarray(NULL, t->nnodes, sizeof(*top));
	size_t i, n, x, p, c;

	for (x = 1; x < t->nnodes; x++)
		adopt(t, t->nodes[x].parent == NONE ? 0 :
		    t->nodes[x].parent, x);
	n = walk_order(t, order);
	/* top[x]: where a message below x goes */
	top[0] = 0;
	for (i = 1; i < n; i++) {
		x = order[i];
		p = t->nodes[x].parent;
		top[x] = !isdummy(t, x) || p == 0 ? x : top[p];
	}
	for (x = 0; x < t->nnodes; x++)
		t->nodes[x].child = NONE;
	for (i = 1; i < n; i++) {
		x = order[i];
		p = t->nodes[x].parent;
		if (p == 0)
			adopt(t, 0, x);
		else if (!isdummy(t, x))
			adopt(t, top[p], x);
	}
	/* a dummy under the root with one child gives way to it */
	c = t->nodes[0].child;
	t->nodes[0].child = NONE;
	for (; c != NONE; c = x) {
		x = t->nodes[c].next;
		if (!isdummy(t, c))
			adopt(t, 0, c);
		else if ((p = t->nodes[c].child) != NONE &&
		    t->nodes[p].next == NONE)
			adopt(t, 0, p);
		else if (p != NONE)
			adopt(t, 0, c);
	}
	free(order);
	free(top);
}

/* the base subject of a thread under the root: the message's, or a
 * dummy's first child's */
static const char *
thread_subject(const struct thread *t, size_t x, int *reply)
{
	if (isdummy(t, x))
		x = t->nodes[x].child;
	*reply = 0;
	if (x == NONE || isdummy(t, x))
		return "";
	*reply = t->msgs[t->nodes[x].msg].reply;
	return str(t, t->msgs[t->nodes[x].msg].subj);
}

static void
merge_one(struct thread *t, struct htab *subj, size_t k, size_t x)
{
	size_t tt = subj->val[k], c, next, d;
	int xr, tr;

	thread_subject(t, x, &xr);
	thread_subject(t, tt, &tr);
	if (isdummy(t, x) && isdummy(t, tt)) {
		for (c = t->nodes[x].child; c != NONE; c = next) {
			next = t->nodes[c].next;
			adopt(t, tt, c);
		}
		t->nodes[x].child = NONE;
		t->nodes[x].parent = NONE;
	} else if (isdummy(t, tt) || (xr && !tr && !isdummy(t, x))) {
		adopt(t, tt, x);
	} else {
		d = node_new(t, NONE);
		t->nodes[d].parent = 0;
		adopt(t, d, tt);
		adopt(t, d, x);
		subj->val[k] = d;
	}
}

/* step (5): threads under the root with one base subject come together */
static void
merge_subjects(struct thread *t)
{
	struct htab subj;
	size_t *roots, n = 0, i, k, x, first;
	const char *s;
	int xr, tr;

	for (x = t->nodes[0].child; x != NONE; x = t->nodes[x].next)
		n++;
	roots = xreallocarray(NULL, n ? n : 1, sizeof(*roots));
	for (n = 0, x = t->nodes[0].child; x != NONE; x = t->nodes[x].next)
		roots[n++] = x;
	ht_init(&subj, n);
	/* (B) one thread per subject: a dummy, else one not a reply */
	for (i = 0; i < n; i++) {
		x = roots[i];
		if (!*(s = thread_subject(t, x, &xr)))
			continue;
		k = ht_find(&subj, s);
		if (!subj.key[k]) {
			subj.key[k] = s;
			subj.val[k] = x;
			continue;
		}
		thread_subject(t, subj.val[k], &tr);
		if (!isdummy(t, subj.val[k]) && (isdummy(t, x) ||
		    (tr && !xr)))
			subj.val[k] = x;
	}
	/* (C) the others join it; the root's list is rebuilt after */
	first = t->nnodes;
	for (i = 0; i < n; i++) {
		x = roots[i];
		if (t->nodes[x].parent != 0 ||
		    !*(s = thread_subject(t, x, &xr)))
			continue;
		k = ht_find(&subj, s);
		if (subj.val[k] != x)
			merge_one(t, &subj, k, x);
	}
	t->nodes[0].child = NONE;
	for (i = 0; i < n; i++)
		if (t->nodes[roots[i]].parent == 0)
			adopt(t, 0, roots[i]);
	for (x = first; x < t->nnodes; x++)
		if (t->nodes[x].parent == 0)
			adopt(t, 0, x);
	ht_free(&subj);
	free(roots);
}

static void
references(struct thread *t)
{
	struct htab ids;

	ht_init(&ids, t->nmsgs + t->nrefs);
	link_refs(t, &ids);
	ht_free(&ids);
	prune(t);
	sort_tree(t);
	merge_subjects(t);
	sort_tree(t);
}

static int
subject_cmp(const void *a, const void *b)
{
	const struct tmsg *x = &cur_msgs[*(const size_t *)a];
	const struct tmsg *y = &cur_msgs[*(const size_t *)b];
	int r;

	if ((r = strcmp(cur_arena + x->subj, cur_arena + y->subj)))
		return r;
	if (x->date != y->date)
		return CMP(x->date, y->date);
	return CMP(x->vi, y->vi);
}

/* by base subject, then sent date; the first of each subject holds the
 * others as its children */
static void
ordered_subject(struct thread *t)
{
	size_t *order = xreallocarray(NULL, t->nmsgs ? t->nmsgs : 1,
	    sizeof(*order));
	size_t i, head = 0;

	for (i = 0; i < t->nmsgs; i++) {
		order[i] = i;
		node_new(t, i);		/* node i + 1 */
	}
	cur_msgs = t->msgs;
	cur_arena = t->arena.p;
	qsort(order, t->nmsgs, sizeof(*order), subject_cmp);
	for (i = 0; i < t->nmsgs; i++) {
		if (i == 0 || strcmp(str(t, t->msgs[order[i]].subj),
		    str(t, t->msgs[order[head]].subj))) {
			head = i;
			adopt(t, 0, order[i] + 1);
		} else
			adopt(t, order[head] + 1, order[i] + 1);
	}
	free(order);
	sort_tree(t);
}

void
thread_run(int alg, struct folder *f, struct view *v, const size_t *idx,
    size_t n, int uid, struct buf *out)
{
	struct thread t;

	memset(&t, 0, sizeof(t));
	thread_load(&t, alg, f, v, idx, n);
	node_new(&t, NONE);	/* the root */
	if (alg == THREAD_REFERENCES)
		references(&t);
	else
		ordered_subject(&t);
	thread_print(&t, v, uid, out);
	free(t.msgs);
	free(t.refs);
	free(t.nodes);
	free(t.tmp);
	buf_free(&t.arena);
}
