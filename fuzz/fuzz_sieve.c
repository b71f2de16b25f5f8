/* libFuzzer target for the Sieve parser and interpreter: the input is a
 * script; one that parses is run against a fixed message, and its error
 * text must be a line with a position in it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../sieve.h"
#include "../util.h"

static const char msg[] =
    "Date: Fri, 4 May 2001 14:05:44 -0400\r\n"
    "From: \"Doe, John\" <john+lists@example.org>, other@ex.net\r\n"
    "To: undisclosed:;, me+tag@example.com\r\n"
    "Subject: =?utf-8?q?caf=C3=A9?= test\r\n"
    "Received: from a by b\r\nReceived: from c by d\r\n"
    "Content-Type: multipart/mixed; boundary=x\r\n\r\n"
    "--x\r\nContent-Type: text/plain\r\n\r\nhello unsubscribe\r\n--x--\r\n";

static char *
load(const char *name, int personal, size_t *len, void *arg)
{
	static const char inc[] = "require \"include\";\nkeep;\nreturn;\n";

	if (strcmp(name, "inc"))
		return NULL;
	*len = sizeof(inc) - 1;
	return xstrdup(inc);
}

static int
exists(const char *name)
{
	return !strcmp(name, "INBOX");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sv_script *s;
	struct sv_result r;
	struct sv_msg m = { msg, sizeof(msg) - 1, "a@b.c", "me+tag@example.com",
	    989000000, exists };
	char err[256];

	if (!(s = sieve_parse((const char *)data, size, err, sizeof(err)))) {
		if (strncmp(err, "line ", 5) && strncmp(err, "script larger", 13))
			abort();
		if (strchr(err, '\n'))
			abort();
		return 0;
	}
	if (sieve_run(s, &m, load, NULL, &r) < 0 && strncmp(r.err, "line ", 5))
		abort();
	sieve_result_free(&r);
	sieve_free(s);
	return 0;
}
