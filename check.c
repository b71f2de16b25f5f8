/* check.c: imapd -t, the set-up checked before going live.  Prints the
 * compiled-in configuration and the paths in effect on stdout, then looks
 * at the Maildir, the password file, the certificate and key and the
 * client CA the way a session would use them.  Every problem is one line
 * on stderr ("imapd: ..."); the exit status is 1 when there was one.
 * Warnings (a certificate close to its end) leave the status at 0. */
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>

#include <crypt.h>
#include <limits.h>
#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <bearssl.h>

#include "config.h"
#include "startup.h"
#include "tls.h"
#include "util.h"

#define EXPIRY_WARN_DAYS	14
#define BR_DAYS_TO_1970		719528	/* BearSSL counts days from year 0 */

static int problems;

static void
problem(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	va_start(ap, fmt);
	fputs("imapd: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	problems++;
}

static void
warning(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	va_start(ap, fmt);
	fputs("imapd: warning: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* --- the configuration ------------------------------------------------ */

static void
show_path(const char *name, const char *env, const char *def, char *out,
    size_t size)
{
	const char *v = getenv(env);

	config_path(out, size, env, def);
	if (v && *v)
		printf("%-22s %s  (from $%s)\n", name, out, env);
	else
		printf("%-22s %s\n", name, out);
}

static void
show_limits(void)
{
	size_t i;

	printf("%-22s %s\n", "loopback_is_secure", loopback_is_secure ?
	    "yes" : "no");
#ifdef WITH_ZLIB
	printf("%-22s %s\n", "compress", "DEFLATE");
#else
	printf("%-22s %s\n", "compress", "none (built without zlib)");
#endif
	printf("%-22s %d\n", "line_max", LINE_MAX_LEN);
	printf("%-22s %d\n", "literal_max", LITERAL_MAX);
	printf("%-22s %llu\n", "append_max", (unsigned long long)APPEND_MAX);
	printf("%-22s %d\n", "login_tries", LOGIN_TRIES);
	printf("%-22s %d ms\n", "login_delay", LOGIN_DELAY_MS);
	printf("%-22s %d\n", "bad_max", BAD_MAX);
	printf("%-22s %d s\n", "timeout_preauth", TIMEOUT_PREAUTH);
	printf("%-22s %d s\n", "timeout_auth", TIMEOUT_AUTH);
	printf("%-22s %d s\n", "timeout_idle", TIMEOUT_IDLE);
	printf("%-22s %d s\n", "idle_keepalive", IDLE_KEEPALIVE);
	printf("%-22s %d s\n", "idle_poll", IDLE_POLL);
	for (i = 0; i < LEN(special_use); i++)
		printf("%-22s %s %s\n", "special_use", special_use[i].use,
		    special_use[i].name);
	for (i = 0; i < LEN(retention); i++)
		printf("%-22s %s %d days\n", "retention", retention[i].use,
		    retention[i].days);
}

/* --- the Maildir ------------------------------------------------------ */

static int
has_subdirs(const char *dir)
{
	static const char *const sub[] = { "cur", "new", "tmp" };
	char path[PATH_MAX];
	struct stat st;
	size_t i;

	for (i = 0; i < LEN(sub); i++)
		if (snprintf(path, sizeof(path), "%s/%s", dir, sub[i]) >=
		    (int)sizeof(path) || stat(path, &st) < 0 ||
		    !S_ISDIR(st.st_mode))
			return 0;
	return 1;
}

static int
count_folders(const char *root)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int n = 1;	/* INBOX */

	if (!(d = opendir(root)))
		return 0;
	while ((de = readdir(d)))	/* ".A.B", never ".." or "..x" */
		if (de->d_name[0] == '.' && de->d_name[1] &&
		    de->d_name[1] != '.' &&
		    snprintf(path, sizeof(path), "%s/%s", root, de->d_name) <
		    (int)sizeof(path) && has_subdirs(path))
			n++;
	closedir(d);
	return n;
}

static void
check_maildir(const char *path)
{
	struct stat st;
	int before = problems, n;

	if (stat(path, &st) < 0) {
		problem("Maildir %s: %s (imapd does not create it: "
		    "mkdir -p %s/cur %s/new %s/tmp)", path, strerror(errno),
		    path, path, path);
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		problem("Maildir %s: not a directory", path);
		return;
	}
	if (st.st_uid != getuid())
		problem("Maildir %s: owned by uid %ld, not by uid %ld that "
		    "imapd runs as", path, (long)st.st_uid, (long)getuid());
	if (st.st_mode & S_IWOTH)
		problem("Maildir %s: writable by everyone (mode %04o): "
		    "chmod 700 %s", path, (unsigned)st.st_mode & 07777, path);
	if (access(path, R_OK | W_OK | X_OK) < 0)
		problem("Maildir %s: %s", path, strerror(errno));
	if (!has_subdirs(path))
		warning("Maildir %s: no cur/, new/ and tmp/ yet: imapd makes "
		    "them at the first login", path);
	n = count_folders(path);
	printf("%-22s %s%d folder%s\n", "maildir_check",
	    problems == before ? "ok, " : "", n, n == 1 ? "" : "s");
}

/* --- the password file ------------------------------------------------ */

static const char *
hash_method(const char *h)
{
	static const struct {
		const char *prefix, *name;
	} methods[] = {
		{ "$y$", "yescrypt" }, { "$gy$", "gost-yescrypt" },
		{ "$7$", "scrypt" }, { "$2b$", "bcrypt" }, { "$2y$", "bcrypt" },
		{ "$6$", "sha512crypt" }, { "$5$", "sha256crypt" },
		{ "$1$", "md5crypt" },
	};
	size_t i;

	for (i = 0; i < LEN(methods); i++)
		if (!strncmp(h, methods[i].prefix, strlen(methods[i].prefix)))
			return methods[i].name;
	return "unknown method";
}

/* a whole hash reproduces itself: a salt alone or a cut line does not */
static int
hash_complete(const char *hash)
{
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	const char *out = crypt_r("", hash, cd);
	int ok = out && out[0] != '*' && strlen(out) == strlen(hash);

	free(cd);
	return ok;
}

/* one "label:hash" or "hash" line; the label into out: 0, or -1 */
static int
check_entry(const char *pwfile, size_t lineno, char *line, struct buf *out)
{
	char *hash = line, *colon;
	size_t i;
	int r;

	if ((colon = strchr(line, ':'))) {
		*colon = '\0';
		hash = colon + 1;
		for (i = 0; line[i]; i++)
			if ((unsigned char)line[i] <= ' ' ||
			    (unsigned char)line[i] >= 0x7f) {
				problem("password file %s line %zu: the label "
				    "holds a space or control character",
				    pwfile, lineno);
				return -1;
			}
	}
	while (*hash == ' ' || *hash == '\t')
		hash++;
	if (hash[0] != '$' || (r = crypt_checksalt(hash)) == CRYPT_SALT_INVALID) {
		problem("password file %s line %zu: not a crypt(3) hash (make "
		    "one with imapd -H)", pwfile, lineno);
		return -1;
	}
	if (!hash_complete(hash)) {
		problem("password file %s line %zu: the %s hash is cut short "
		    "or damaged", pwfile, lineno, hash_method(hash));
		return -1;
	}
	if (r != CRYPT_SALT_OK)
		warning("password file %s line %zu: %s is a weak or disabled "
		    "hash method: make a new one with imapd -H", pwfile, lineno,
		    hash_method(hash));
	buf_printf(out, " %s(%s)", colon ? line : "-", hash_method(hash));
	return 0;
}

static void
check_passwd(const char *path)
{
	struct buf labels = { 0 };
	char *line = NULL;
	size_t cap = 0, lineno = 0, n = 0, bad = 0;
	struct stat st;
	ssize_t len;
	FILE *fp;

	if (!(fp = fopen(path, "r"))) {
		problem("password file %s: %s (make one with imapd -H)", path,
		    strerror(errno));
		return;
	}
	if (fstat(fileno(fp), &st) == 0 && st.st_mode & 077)
		problem("password file %s: group or others may read it (mode "
		    "%04o): chmod 600 %s", path, (unsigned)st.st_mode & 07777,
		    path);
	while ((len = getline(&line, &cap, fp)) > 0) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[strspn(line, " \t")] == '\0')
			continue;
		if (check_entry(path, lineno, line, &labels) == 0)
			n++;
		else
			bad++;
	}
	if (line)
		explicit_bzero(line, cap);
	free(line);
	fclose(fp);
	if (n == 0)
		problem("password file %s: no password in it: nobody can log "
		    "in (make one with imapd -H)", path);
	else
		printf("%-22s %s%zu password%s, label(method):%s\n",
		    "passwd_check", bad ? "" : "ok, ", n, n == 1 ? "" : "s",
		    labels.p);
	buf_free(&labels);
}

/* --- the certificate -------------------------------------------------- */

/* a piece of DER */
struct der {
	const unsigned char *p;
	size_t n;
};

/* the next element of d: 0 with its tag and contents, or -1 at the end
 * or when malformed (only the one-byte tags of certificates) */
static int
der_next(struct der *d, int *tag, struct der *val)
{
	size_t len, i = 2, k;

	if (d->n < 2)
		return -1;
	*tag = d->p[0];
	len = d->p[1];
	if (len & 0x80) {
		k = len & 0x7f;
		if (k == 0 || k > 4 || d->n < 2 + k)
			return -1;
		for (len = 0; k > 0; k--)
			len = len << 8 | d->p[i++];
	}
	if (len > d->n - i)
		return -1;
	val->p = d->p + i;
	val->n = len;
	d->p += i + len;
	d->n -= i + len;
	return 0;
}

/* printable ASCII of a name, anything else as '?' */
static void
add_text(struct buf *b, struct der v)
{
	size_t i;

	for (i = 0; i < v.n; i++)
		buf_addc(b, v.p[i] >= 0x20 && v.p[i] < 0x7f ? v.p[i] : '?');
}

/* "CN=mail.example.org, O=Example" */
static void
add_dn(struct buf *b, struct der dn)
{
	static const char *const names[] = {
		[3] = "CN", [6] = "C", [7] = "L", [8] = "ST", [10] = "O",
		[11] = "OU",
	};
	struct der set, atv, oid, val;
	int tag;

	while (der_next(&dn, &tag, &set) == 0)
		while (der_next(&set, &tag, &atv) == 0) {
			if (der_next(&atv, &tag, &oid) < 0 || tag != 6 ||
			    der_next(&atv, &tag, &val) < 0 || oid.n != 3 ||
			    oid.p[0] != 0x55 || oid.p[1] != 4 ||
			    oid.p[2] >= LEN(names) || !names[oid.p[2]])
				continue;
			buf_printf(b, "%s%s=", b->len ? ", " : "",
			    names[oid.p[2]]);
			add_text(b, val);
		}
}

/* the subjectAltName entries of the extensions ([3] of the TBS) */
static void
add_names(struct buf *b, struct der ext)
{
	static const unsigned char san[] = { 0x55, 0x1d, 0x11 };
	struct der list, e, oid, v, names, name;
	char ip[64];
	int tag;

	if (der_next(&ext, &tag, &list) < 0)
		return;
	while (der_next(&list, &tag, &e) == 0) {
		if (der_next(&e, &tag, &oid) < 0 || oid.n != sizeof(san) ||
		    memcmp(oid.p, san, sizeof(san)) ||
		    der_next(&e, &tag, &v) < 0 ||
		    (tag == 1 && der_next(&e, &tag, &v) < 0) ||
		    der_next(&v, &tag, &names) < 0)
			continue;
		while (der_next(&names, &tag, &name) == 0) {
			if (tag == 0x82) {
				buf_adds(b, " DNS:");
				add_text(b, name);
			} else if (tag == 0x87 && (name.n == 4 || name.n == 16) &&
			    inet_ntop(name.n == 4 ? AF_INET : AF_INET6, name.p,
			    ip, sizeof(ip))) {
				buf_printf(b, " IP:%s", ip);
			}
		}
	}
}

/* subject and names of a DER certificate into the two buffers */
static void
describe(const unsigned char *cert, size_t len, struct buf *subj,
    struct buf *names)
{
	struct der d = { cert, len }, c, tbs, f;
	int tag, i = 0;

	if (der_next(&d, &tag, &c) < 0 || der_next(&c, &tag, &tbs) < 0)
		return;
	while (der_next(&tbs, &tag, &f) == 0) {
		if (tag == 0xa0)	/* version */
			continue;
		if (i++ == 4)	/* serial, algorithm, issuer, validity */
			add_dn(subj, f);
		if (tag == 0xa3)
			add_names(names, f);
	}
}

static const char *
key_desc(const br_x509_pkey *pk)
{
	static char s[32];
	size_t n = pk->key.rsa.nlen;
	const unsigned char *p = pk->key.rsa.n;

	if (pk->key_type == BR_KEYTYPE_EC)
		return pk->key.ec.curve == BR_EC_secp256r1 ? "ECDSA P-256" :
		    pk->key.ec.curve == BR_EC_secp384r1 ? "ECDSA P-384" :
		    pk->key.ec.curve == BR_EC_secp521r1 ? "ECDSA P-521" :
		    "ECDSA (other curve)";
	while (n && !*p) {
		p++;
		n--;
	}
	snprintf(s, sizeof(s), "RSA %zu bits", n * 8);
	return s;
}

static time_t
br_time(uint32_t days, uint32_t seconds)
{
	return ((time_t)days - BR_DAYS_TO_1970) * 86400 + seconds;
}

static void
check_dates(const char *path, time_t from, time_t until)
{
	time_t now = time(NULL);
	long days = (long)((until - now + 43200) / 86400);	/* rounded */
	char when[32];

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&until));
	printf("%-22s %s (%ld days)\n", "cert_expires", when, days);
	if (now >= until)
		problem("certificate %s expired on %s", path, when);
	else if (now < from)
		problem("certificate %s is not valid yet", path);
	else if (days < EXPIRY_WARN_DAYS)
		warning("certificate %s expires in %ld days (%s): renew it",
		    path, days, when);
}

/* the leaf after tls_load: what it says, and for how long */
static void
show_cert(const char *path)
{
	br_x509_decoder_context dc;
	const unsigned char *der;
	struct buf subj = { 0 }, names = { 0 };
	size_t len, n;

	der = tls_chain_cert(0, &len);
	br_x509_decoder_init(&dc, NULL, NULL);
	br_x509_decoder_push(&dc, der, len);
	describe(der, len, &subj, &names);
	for (n = 1; tls_chain_cert(n, &len); n++)
		;
	printf("%-22s %s\n", "cert_subject", subj.p ? subj.p : "(empty)");
	printf("%-22s%s\n", "cert_names", names.p ? names.p : " (none)");
	printf("%-22s %s, matches the certificate\n", "cert_key",
	    key_desc(br_x509_decoder_get_pkey(&dc)));
	printf("%-22s %zu certificate%s\n", "cert_chain", n, n == 1 ? "" : "s");
	if (!names.p)
		warning("certificate %s names no host (no subjectAltName): "
		    "clients will refuse it", path);
	check_dates(path, br_time(dc.notbefore_days, dc.notbefore_seconds),
	    br_time(dc.notafter_days, dc.notafter_seconds));
	buf_free(&subj);
	buf_free(&names);
}

static void
check_private(const char *what, const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0 && st.st_mode & 077)
		problem("%s %s: group or others may read it (mode %04o): "
		    "chmod 600 %s", what, path, (unsigned)st.st_mode & 07777,
		    path);
}

static void
check_tls(void)
{
	fflush(stdout);
	if (!tls_explain()) {	/* says why on stderr */
		problems++;
		return;
	}
	check_private("key", tls_key_path());
	if (tls_load() < 0) {	/* says why on stderr */
		problems++;
		return;
	}
	show_cert(tls_cert_path());
	if (*tls_client_ca_file)
		printf("%-22s ok, %s\n", "client_ca_check",
		    tls_client_cert_required ? "a client certificate is "
		    "required" : "a client certificate is optional");
}

/* --- the whole check --------------------------------------------------- */

int
check_setup(void)
{
	char maildir[PATH_MAX], pwfile[PATH_MAX], path[PATH_MAX];
	struct passwd *pw = getpwuid(getuid());

	log_terminal();
	printf("%-22s imapd %s\n", "version", VERSION);
	printf("%-22s %s (uid %ld)\n", "runs_as", pw ? pw->pw_name : "?",
	    (long)getuid());
	printf("%-22s %s\n", "login", login_user[0] ? login_user :
	    pw ? pw->pw_name : "?");
	show_path("maildir", "MAILDIR", maildir_root, maildir, sizeof(maildir));
	show_path("passwd", "IMAPD_PASSWD", passwd_file, pwfile,
	    sizeof(pwfile));
	show_path("cert", "IMAPD_CERT", tls_cert_file, path, sizeof(path));
	show_path("key", "IMAPD_KEY", tls_key_file, path, sizeof(path));
	printf("%-22s %s\n", "client_ca", *tls_client_ca_file ?
	    tls_client_ca_file : "none");
	show_limits();
	fflush(stdout);
	if (getuid() == 0 || geteuid() == 0)
		problem("running as root: imapd never serves as root; check "
		    "as the mail user (runuser -u USER -- imapd -t)");
	check_maildir(maildir);
	check_passwd(pwfile);
	check_tls();
	if (problems)
		printf("check failed: %d problem%s\n", problems,
		    problems == 1 ? "" : "s");
	else
		printf("check ok\n");
	return problems ? 1 : 0;
}
