/* auth.c: password checks against crypt(3) hashes */
#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <termios.h>
#include <unistd.h>

#include "imapd.h"
#include "util.h"

/* compare without leaking where the first difference is */
static int
same(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b), i;
	unsigned char d = na != nb;

	for (i = 0; i < na && i < nb; i++)
		d |= a[i] ^ b[i];
	return d == 0;
}

/* the hash on a line "label:hash" or "hash" */
static char *
line_hash(char *line)
{
	char *p;

	line[strcspn(line, "\r\n")] = '\0';
	if ((p = strchr(line, ':')))
		line = p + 1;
	while (*line == ' ' || *line == '\t')
		line++;
	return line;
}

static int
check_hash(const char *pass, const char *hash)
{
	struct crypt_data *cd;
	const char *out;
	int ok;

	if (hash[0] != '$')	/* never a plaintext or DES password */
		return 0;
	cd = xcalloc(1, sizeof(*cd));
	out = crypt_r(pass, hash, cd);
	ok = out && out[0] != '*' && same(out, hash);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

int
auth_check(const char *user, const char *pass, const char *pwfile)
{
	char line[1024];
	FILE *fp;
	int ok = 0;

	if (!(fp = fopen(pwfile, "r"))) {
		logmsg(LOG_ERR, "cannot read password file %s: %s", pwfile,
		    strerror(errno));
		return -1;
	}
	while (!ok && fgets(line, sizeof(line), fp))
		if (line[0] != '#')
			ok = check_hash(pass, line_hash(line));
	explicit_bzero(line, sizeof(line));
	fclose(fp);
	return ok;
}

static void
read_password(char *buf, size_t size)
{
	struct termios t, quiet;
	int tty = isatty(0) && tcgetattr(0, &t) == 0;

	if (tty) {
		quiet = t;
		quiet.c_lflag &= ~ECHO;
		fputs("Password: ", stderr);
		tcsetattr(0, TCSAFLUSH, &quiet);
	}
	if (!fgets(buf, size, stdin))
		buf[0] = '\0';
	if (tty) {
		tcsetattr(0, TCSAFLUSH, &t);
		fputc('\n', stderr);
	}
	buf[strcspn(buf, "\r\n")] = '\0';
}

int
auth_hash(void)
{
	char pass[512];
	const char *salt, *hash;

	read_password(pass, sizeof(pass));
	if (!pass[0]) {
		fputs("imapd: empty password\n", stderr);
		return 1;
	}
	if (!(salt = crypt_gensalt("$y$", 0, NULL, 0)))
		salt = crypt_gensalt("$6$", 0, NULL, 0);
	if (!salt || !(hash = crypt(pass, salt)) || hash[0] == '*') {
		fputs("imapd: cannot make a hash\n", stderr);
		return 1;
	}
	explicit_bzero(pass, sizeof(pass));
	puts(hash);
	return 0;
}
