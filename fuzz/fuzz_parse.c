/* fuzz_parse.c: libFuzzer target for the command parser (parse.c) and
 * the SEARCH program parser (search.c).  The input is the client's byte
 * stream; each command is taken apart token by token the way the
 * handlers do. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../imapform.h"
#include "../io.h"
#include "../maildir.h"
#include "../parse.h"
#include "../partial.h"
#include "../url.h"
#include "../search.h"
#include "../util.h"
#include "../session.h"

/* the session state search.c reads (UIDONLY, the saved result): none
 * enabled, nothing saved */
struct session sess;

/* a section written as the response names it reads back as itself */
static void
section_again(const struct section *sec, int binary)
{
	struct section again;
	struct buf name = { 0 };
	int i;

	form_section(&name, sec);
	buf_add(&name, "", 0);
	if (!memchr(name.p, '{', name.len)) {
		if (p_section(name.p, &again, binary) < 0 ||
		    again.npart != sec->npart || again.text != sec->text ||
		    again.nfields != sec->nfields ||
		    memcmp(again.part, sec->part, sec->npart *
		    sizeof(sec->part[0])))
			abort();
		for (i = 0; i < sec->nfields; i++)
			if (ascii_casecmp(again.fields[i], sec->fields[i]))
				abort();
	}
	buf_free(&name);
}

static int
fetchatt(void)
{
	struct fetchitem it;

	if (p_fetchatt(&it) < 0)
		return -1;
	if (it.section)
		section_again(&it.sec, !ascii_ncasecmp(it.name, "BINARY", 6));
	return 0;
}

static int
token(void)
{
	struct seqset set;
	long long t, d;
	uint32_t n;
	size_t len;
	int c = p_peek();

	if (c == '(' || c == ')' || c == ' ')
		return p_char(c) ? 0 : -1;
	if (c == '"' || c == '{')
		return p_astring(&len) ? 0 : -1;
	if (c == '*' || c == '$')
		return p_seqset(&set);
	if (c >= '0' && c <= '9') {
		if (p_seqset(&set) == 0) {
			seq_resolve(&set, 100);
			return seq_has(&set, 7) >= 0 ? 0 : -1;
		}
		return p_number(&n);
	}
	if (c == '\\')
		return p_flag() ? 0 : -1;
	if (c == '-' && p_datetime(&t) < 0)
		return p_date(&d);
	return fetchatt();
}

static void
command(void)
{
	const char *code;
	struct search *s;
	char *w;
	int i;

	if (!p_tag() || p_sp() < 0 || !(w = p_atom()))
		return;
	if (!ascii_casecmp(w, "URL")) {
		struct imapurl u;
		char *s;

		if (p_sp() == 0 && (s = p_astring(NULL)) &&
		    url_parse(s, "alice", &u) == 0 && (!u.uid || !u.section))
			abort();
		return;
	}
	if (!ascii_casecmp(w, "SECTION")) {
		struct section sec;
		char *s;

		if (p_sp() == 0 && (s = p_astring(NULL)) &&
		    p_section(s, &sec, 0) == 0)
			section_again(&sec, 0);
		return;
	}
	if (!ascii_casecmp(w, "PARTIAL")) {
		struct partial pr;
		size_t from, n;

		if (p_sp() == 0 && partial_parse(&pr) == 0 &&
		    ((n = partial_window(&pr, 50, &from)) > 50 || from + n > 50))
			abort();
		return;
	}
	if (!ascii_casecmp(w, "SEARCH")) {
		if (p_sp() == 0 && (s = search_parse(0, &code)))
			search_limits(s, 50, 500);
		return;
	}
	for (i = 0; i < 200 && p_peek() != -1; i++)
		if (token() < 0)
			return;
	p_end();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd, out, i;

	if ((fd = memfd_create("in", 0)) < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size ||
	    lseek(fd, 0, SEEK_SET) != 0 ||
	    (out = open("/dev/null", O_WRONLY)) < 0) {
		close(fd);
		return 0;
	}
	io_init(fd, out);
	for (i = 0; i < 64 && p_begin() != -1; i++) {
		command();
		if (p_skip() < 0)
			break;
	}
	io_flush();
	close(out);
	close(fd);
	return 0;
}
