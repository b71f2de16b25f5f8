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
    "Content-Type: multipart/mixed; boundary=x\r\n\r\nprologue\r\n"
    "--x\r\nContent-Type: text/plain\r\n\r\nhello unsubscribe\r\n"
    "--x\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9\r\n"
    "--x\r\nContent-Type: application/octet-stream\r\n"
    "Content-Transfer-Encoding: base64\r\n\r\naGkAdGhlcmU=\r\n"
    "--x\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\n"
    "inner body\r\n--x--\r\nepilogue\r\n";

/* "inc" returns at once; the global "glob" sets a global variable and
 * includes itself once (a no-op) and then without :once (a loop) */
static char *
load(const char *name, int personal, size_t *len, char *id, size_t idsz,
    void *arg)
{
	static const char inc[] = "require \"include\";\nkeep;\nreturn;\n";
	static const char glob[] = "require [\"include\", \"variables\"];\n"
	    "global \"g\";\nset \"g\" \"${g}x\";\ninclude :global :once "
	    "\"glob\";\nif string \"${g}\" \"xx\" { include :global "
	    "\"glob\"; }\n";
	const char *t = personal && !strcmp(name, "inc") ? inc :
	    !personal && !strcmp(name, "glob") ? glob : NULL;

	if (!t)
		return NULL;
	*len = strlen(t);
	return xstrdup(t);
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
