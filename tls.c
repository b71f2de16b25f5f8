/* tls.c: the TLS server layer, over BearSSL.
 *
 * One process serves one connection, so there is one TLS context, in
 * static storage (BearSSL allocates nothing; its 33 KB buffer lives here
 * and is only touched once TLS starts).  The engine is driven directly
 * rather than through br_sslio: ciphertext then goes through the layer
 * below, which owns the descriptors and the read timeout, and decrypted
 * bytes already held by the engine can be reported to IDLE's poll loop.
 *
 * Policy: TLS 1.2 only, ECDHE key exchange with AEAD ciphers only (the
 * TLS_SUITES list in config.h, filtered against the table below), server
 * preference, no renegotiation.  The certificate chain and key are read
 * from their files on every connection. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <bearssl.h>

#include "config.h"
#include "io.h"
#include "tls.h"
#include "util.h"

#define PEM_MAX	(1024 * 1024)	/* largest certificate or key file */
#define RSA_MAX_BYTES	512	/* BearSSL handles RSA keys up to 4096 bits */

enum { LOW_OK, LOW_EOF, LOW_ERR };	/* state of the layer below */

/* BearSSL's minimal X.509 engine, wrapped to remember whether the client
 * presented a chain that validated */
struct certcheck {
	const br_x509_class *vtable;
	br_x509_minimal_context xc;
	int verified;
};

struct certs {
	br_x509_certificate *v;
	size_t n;
};

static struct {
	struct layer l;		/* first: the layer pointer is the context */
	br_ssl_server_context sc;
	unsigned char iobuf[BR_SSL_BUFSIZE_BIDI];
	br_skey_decoder_context key;	/* the decoded key points in here */
	struct certs chain;	/* leaf first */
	unsigned issuer;	/* key type of the CA that signed the leaf */
	br_x509_trust_anchor *tas;	/* client CA */
	size_t ntas;
	struct certcheck cc;
	int loaded;		/* 1 loaded, -1 failed: tls_load runs once */
	int low;		/* LOW_*: once the layer below fails, stop */
	int low_errno;		/* and why, for LOW_ERR */
} tls;

static char cert_path[PATH_MAX], key_path[PATH_MAX], ca_path[PATH_MAX];

/* the suites the policy allows at all, whatever TLS_SUITES says */
static const struct {
	uint16_t id;
	unsigned keytype;
	const char *name;
} aead_suites[] = {
	{ BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, BR_KEYTYPE_EC,
	    "ECDHE-ECDSA-AES128-GCM-SHA256" },
	{ BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, BR_KEYTYPE_EC,
	    "ECDHE-ECDSA-AES256-GCM-SHA384" },
	{ BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, BR_KEYTYPE_EC,
	    "ECDHE-ECDSA-CHACHA20-POLY1305" },
	{ BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, BR_KEYTYPE_RSA,
	    "ECDHE-RSA-AES128-GCM-SHA256" },
	{ BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, BR_KEYTYPE_RSA,
	    "ECDHE-RSA-AES256-GCM-SHA384" },
	{ BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, BR_KEYTYPE_RSA,
	    "ECDHE-RSA-CHACHA20-POLY1305" },
};

static const uint16_t suites_conf[] = { TLS_SUITES };

/* engine errors worth a readable name in the log */
static const struct {
	int err;
	const char *msg;
} errors[] = {
	{ BR_ERR_BAD_PARAM, "bad engine parameters" },
	{ BR_ERR_UNSUPPORTED_VERSION, "not TLS, or a version other than TLS 1.2" },
	{ BR_ERR_BAD_VERSION, "record version changed" },
	{ BR_ERR_BAD_LENGTH, "bad record length (not TLS?)" },
	{ BR_ERR_TOO_LARGE, "record too large" },
	{ BR_ERR_BAD_MAC, "bad record MAC" },
	{ BR_ERR_NO_RANDOM, "no system randomness" },
	{ BR_ERR_UNKNOWN_TYPE, "unknown record type (not TLS?)" },
	{ BR_ERR_UNEXPECTED, "unexpected message" },
	{ BR_ERR_BAD_HANDSHAKE, "malformed handshake message" },
	{ BR_ERR_BAD_CIPHER_SUITE, "bad cipher suite" },
	{ BR_ERR_NO_CLIENT_AUTH, "no valid client certificate" },
	{ BR_ERR_BAD_SIGNATURE, "bad signature" },
	{ BR_ERR_WRONG_KEY_USAGE, "key usage forbids this" },
	{ BR_ERR_X509_EMPTY_CHAIN, "no client certificate" },
	{ BR_ERR_X509_EXPIRED, "client certificate expired or not yet valid" },
	{ BR_ERR_X509_NOT_TRUSTED, "client certificate not signed by the CA" },
	{ BR_ERR_X509_BAD_SIGNATURE, "client certificate signature invalid" },
};

/* TLS alerts, as numbered in RFC 5246 7.2 */
static const struct {
	int alert;
	const char *name;
} alerts[] = {
	{ 10, "unexpected_message" }, { 20, "bad_record_mac" },
	{ 40, "handshake_failure: no shared version or cipher suite" },
	{ 42, "bad_certificate" }, { 46, "certificate_unknown" },
	{ 47, "illegal_parameter" }, { 48, "unknown_ca" },
	{ 50, "decode_error" }, { 51, "decrypt_error" },
	{ 70, "protocol_version: not TLS 1.2" },
	{ 71, "insufficient_security" }, { 80, "internal_error" },
	{ 86, "inappropriate_fallback" }, { 90, "user_canceled" },
};

static const char *
errstr(int err)
{
	static char msg[96];
	const char *who;
	size_t i;

	for (i = 0; i < LEN(errors); i++)
		if (errors[i].err == err)
			return errors[i].msg;
	if (err >= BR_ERR_RECV_FATAL_ALERT) {
		who = err >= BR_ERR_SEND_FATAL_ALERT ? "sent" : "received";
		err &= 0xff;
		for (i = 0; i < LEN(alerts); i++)
			if (alerts[i].alert == err)
				break;
		snprintf(msg, sizeof(msg), "%s alert %d (%s)", who, err,
		    i < LEN(alerts) ? alerts[i].name : "?");
		return msg;
	}
	snprintf(msg, sizeof(msg), "BearSSL error %d", err);
	return msg;
}

/* a configured path (util.c); "" when it cannot be had */
static const char *
expand(char *dst, size_t size, const char *var, const char *path)
{
	if (path_expand(dst, size, var, path) < 0)
		dst[0] = '\0';
	return dst;
}

const char *
tls_cert_path(void)
{
	return expand(cert_path, sizeof(cert_path), "IMAPD_CERT",
	    tls_cert_file);
}

const char *
tls_key_path(void)
{
	return expand(key_path, sizeof(key_path), "IMAPD_KEY", tls_key_file);
}

int
tls_available(void)
{
	const char *c = tls_cert_path(), *k = tls_key_path();

	if (tls.loaded > 0)	/* loaded before the sandbox closed the files */
		return 1;
	return *c && *k && access(c, R_OK) == 0 && access(k, R_OK) == 0;
}

int
tls_explain(void)
{
	const char *what[2] = { "certificate", "key" };
	const char *path[2];
	int i;

	path[0] = tls_cert_path();
	path[1] = tls_key_path();
	for (i = 0; i < 2; i++) {
		if (!*path[i]) {
			logmsg(LOG_WARNING, "TLS: %s path too long: no STARTTLS",
			    what[i]);
			return 0;
		}
		if (access(path[i], R_OK) < 0) {
			logmsg(LOG_WARNING, "TLS: cannot read %s %s: %s: no "
			    "STARTTLS", what[i], path[i], strerror(errno));
			return 0;
		}
	}
	return 1;
}

const unsigned char *
tls_chain_cert(size_t i, size_t *len)
{
	if (tls.loaded <= 0 || i >= tls.chain.n)
		return NULL;
	*len = tls.chain.v[i].data_len;
	return tls.chain.v[i].data;
}

static void
wipe_free(void *p, size_t n)
{
	if (p)
		explicit_bzero(p, n);
	free(p);
}

/* the whole file plus a final newline (the PEM decoder needs a line end
 * after the last line, which some files lack), or NULL with errno set */
static unsigned char *
readfile(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *p;
	size_t n = 0, cap;
	ssize_t r = 0;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return NULL;
	if (fstat(fd, &st) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return NULL;
	}
	if (st.st_size > PEM_MAX) {
		close(fd);
		errno = EFBIG;
		return NULL;
	}
	cap = st.st_size + 1;	/* one more: notice a file that grew */
	p = xmalloc(cap + 1);
	while (n < cap && (r = read(fd, p + n, cap - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		n += r;
	}
	saved = n < cap && r < 0 ? errno : EAGAIN;
	close(fd);
	if (n == cap || r < 0) {
		/* a read error, or the file is being rewritten */
		wipe_free(p, cap + 1);
		errno = saved;
		return NULL;
	}
	p[n++] = '\n';
	*len = n;
	return p;
}

static void
append(void *ctx, const void *p, size_t n)
{
	buf_add(ctx, p, n);
}

/* call fn(name, der, arg) for every PEM object in p: 0, or -1 when the
 * file is not valid PEM or fn fails */
static int
pem_each(const unsigned char *p, size_t len,
    int (*fn)(const char *, struct buf *, void *), void *arg)
{
	br_pem_decoder_context pc;
	struct buf der = { 0 };
	size_t n;
	int ev, inobj = 0, ret = -1;

	/* DER is shorter than its PEM: sized once, never moved, so the
	 * key's bytes are wiped in the one place they were */
	buf_grow(&der, len);
	br_pem_decoder_init(&pc);
	while (len > 0) {
		n = br_pem_decoder_push(&pc, p, len);
		p += n;
		len -= n;
		ev = br_pem_decoder_event(&pc);
		if (ev == BR_PEM_BEGIN_OBJ) {
			buf_reset(&der);
			br_pem_decoder_setdest(&pc, append, &der);
			inobj = 1;
		} else if (ev == BR_PEM_END_OBJ) {
			inobj = 0;
			if (fn(br_pem_decoder_name(&pc), &der, arg) < 0)
				goto out;
		} else if (ev == BR_PEM_ERROR || n == 0) {
			goto out;
		}
	}
	ret = inobj ? -1 : 0;
out:
	explicit_bzero(&pc, sizeof(pc));
	wipe_free(der.p, der.cap);
	return ret;
}

static int
is_cert(const char *name)
{
	return !strcmp(name, "CERTIFICATE") || !strcmp(name, "X509 CERTIFICATE");
}

static int
add_cert(const char *name, struct buf *der, void *arg)
{
	struct certs *c = arg;

	if (!is_cert(name))
		return 0;
	c->v = xreallocarray(c->v, c->n + 1, sizeof(*c->v));
	c->v[c->n].data = memcpy(xmalloc(der->len), der->p, der->len);
	c->v[c->n].data_len = der->len;
	c->n++;
	return 0;
}

/* *state: 0 no key yet, 1 decoded, -1 undecodable, -2 encrypted */
static int
add_key(const char *name, struct buf *der, void *arg)
{
	int *state = arg;

	if (!strcmp(name, "ENCRYPTED PRIVATE KEY")) {
		*state = -2;
		return -1;
	}
	if (*state || (strcmp(name, "RSA PRIVATE KEY") &&
	    strcmp(name, "EC PRIVATE KEY") && strcmp(name, "PRIVATE KEY")))
		return 0;
	br_skey_decoder_init(&tls.key);
	br_skey_decoder_push(&tls.key, der->p, der->len);
	*state = br_skey_decoder_last_error(&tls.key) ? -1 : 1;
	return *state < 0 ? -1 : 0;
}

/* the file's certificates into c: 0, or -1 after logging why */
static int
load_certs(const char *what, const char *path, struct certs *c)
{
	unsigned char *p;
	size_t len;
	int r;

	if (!*path) {
		logmsg(LOG_ERR, "TLS: %s path too long", what);
		return -1;
	}
	if (!(p = readfile(path, &len))) {
		logmsg(LOG_ERR, "TLS: cannot read %s %s: %s", what, path,
		    strerror(errno));
		return -1;
	}
	r = pem_each(p, len, add_cert, c);
	free(p);
	if (r < 0 || c->n == 0) {
		logmsg(LOG_ERR, "TLS: %s %s: %s", what, path, r < 0 ?
		    "not a valid PEM file" : "no CERTIFICATE in it");
		return -1;
	}
	return 0;
}

static int
load_key(const char *path)
{
	unsigned char *p;
	size_t len;
	int state = 0;

	if (!*path) {
		logmsg(LOG_ERR, "TLS: key path too long");
		return -1;
	}
	if (!(p = readfile(path, &len))) {
		logmsg(LOG_ERR, "TLS: cannot read key %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (pem_each(p, len, add_key, &state) < 0 && state == 0)
		state = -3;
	wipe_free(p, len);
	if (state == 1)
		return 0;
	logmsg(LOG_ERR, "TLS: key %s: %s", path,
	    state == -2 ? "encrypted keys are not supported" :
	    state == -1 ? "cannot decode the private key" :
	    state == -3 ? "not a valid PEM file" :
	    "no RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY in it");
	return -1;
}

/* big-endian unsigned integers equal, leading zeros aside */
static int
bigeq(const unsigned char *a, size_t alen, const unsigned char *b,
    size_t blen)
{
	while (alen && !*a) {
		a++;
		alen--;
	}
	while (blen && !*b) {
		b++;
		blen--;
	}
	return alen == blen && !memcmp(a, b, alen);
}

/* the private key's public half is the one in the certificate */
static int
key_matches(const br_x509_pkey *pk)
{
	const br_rsa_private_key *rk;
	const br_ec_private_key *ek;
	unsigned char buf[RSA_MAX_BYTES > BR_EC_KBUF_PUB_MAX_SIZE ?
	    RSA_MAX_BYTES : BR_EC_KBUF_PUB_MAX_SIZE];
	size_t n;

	switch (br_skey_decoder_key_type(&tls.key)) {
	case BR_KEYTYPE_RSA:
		rk = br_skey_decoder_get_rsa(&tls.key);
		if (pk->key_type != BR_KEYTYPE_RSA)
			return 0;
		n = br_rsa_compute_modulus_get_default()(NULL, rk);
		if (n == 0 || n > sizeof(buf))
			return 0;
		/* p * q: the modulus fixes the key pair (BearSSL can only
		 * recompute e when p and q are 3 mod 4, which OpenSSL keys
		 * need not be) */
		br_rsa_compute_modulus_get_default()(buf, rk);
		return bigeq(buf, n, pk->key.rsa.n, pk->key.rsa.nlen);
	case BR_KEYTYPE_EC:
		ek = br_skey_decoder_get_ec(&tls.key);
		if (pk->key_type != BR_KEYTYPE_EC || pk->key.ec.curve != ek->curve)
			return 0;
		n = br_ec_compute_pub(br_ec_get_default(), NULL, buf, ek);
		return n && n == pk->key.ec.qlen && !memcmp(buf, pk->key.ec.q, n);
	}
	return 0;
}

/* decode the leaf: the key must match it; note who signed it */
static int
check_pair(void)
{
	br_x509_decoder_context dc;
	const br_x509_pkey *pk;

	br_x509_decoder_init(&dc, NULL, NULL);
	br_x509_decoder_push(&dc, tls.chain.v[0].data, tls.chain.v[0].data_len);
	if (br_x509_decoder_last_error(&dc) ||
	    !(pk = br_x509_decoder_get_pkey(&dc))) {
		logmsg(LOG_ERR, "TLS: certificate %s: cannot decode the first "
		    "certificate (error %d)", cert_path,
		    br_x509_decoder_last_error(&dc));
		return -1;
	}
	if (!key_matches(pk)) {
		logmsg(LOG_ERR, "TLS: key %s does not match certificate %s",
		    key_path, cert_path);
		return -1;
	}
	tls.issuer = br_x509_decoder_get_signer_key_type(&dc);
	if (tls.issuer != BR_KEYTYPE_RSA && tls.issuer != BR_KEYTYPE_EC)
		tls.issuer = pk->key_type;
	return 0;
}

static unsigned char *
memdup(const unsigned char *p, size_t n)
{
	return memcpy(xmalloc(n), p, n);
}

/* one client CA certificate as a trust anchor, copied out of the
 * decoder (which is gone when this returns) */
static int
add_anchor(const br_x509_certificate *c)
{
	br_x509_decoder_context dc;
	br_x509_trust_anchor *ta;
	const br_x509_pkey *pk;
	struct buf dn = { 0 };

	br_x509_decoder_init(&dc, append, &dn);
	br_x509_decoder_push(&dc, c->data, c->data_len);
	if (br_x509_decoder_last_error(&dc) ||
	    !(pk = br_x509_decoder_get_pkey(&dc))) {
		buf_free(&dn);
		return -1;
	}
	tls.tas = xreallocarray(tls.tas, tls.ntas + 1, sizeof(*tls.tas));
	ta = &tls.tas[tls.ntas++];
	buf_grow(&dn, 0);	/* never a NULL name */
	ta->dn.data = (unsigned char *)dn.p;
	ta->dn.len = dn.len;
	ta->flags = br_x509_decoder_isCA(&dc) ? BR_X509_TA_CA : 0;
	ta->pkey = *pk;
	if (pk->key_type == BR_KEYTYPE_RSA) {
		ta->pkey.key.rsa.n = memdup(pk->key.rsa.n, pk->key.rsa.nlen);
		ta->pkey.key.rsa.e = memdup(pk->key.rsa.e, pk->key.rsa.elen);
	} else {
		ta->pkey.key.ec.q = memdup(pk->key.ec.q, pk->key.ec.qlen);
	}
	return 0;
}

static int
load_ca(void)
{
	struct certs ca = { 0 };
	size_t i;
	int r = 0;

	expand(ca_path, sizeof(ca_path), NULL, tls_client_ca_file);
	if (load_certs("client CA", ca_path, &ca) < 0)
		return -1;
	for (i = 0; i < ca.n; i++) {
		if (r == 0 && add_anchor(&ca.v[i]) < 0) {
			logmsg(LOG_ERR, "TLS: client CA %s: cannot decode "
			    "certificate %zu", ca_path, i + 1);
			r = -1;
		}
		free(ca.v[i].data);
	}
	free(ca.v);
	return r;
}

int
tls_load(void)
{
	if (tls.loaded)
		return tls.loaded > 0 ? 0 : -1;
	tls.loaded = -1;
	tls_cert_path();
	tls_key_path();
	if (load_certs("certificate", cert_path, &tls.chain) < 0 ||
	    load_key(key_path) < 0 || check_pair() < 0 ||
	    (*tls_client_ca_file && load_ca() < 0))
		return -1;
	tls.loaded = 1;
	return 0;
}

/* the x509 class around the minimal engine */
static struct certcheck *
certcheck(const br_x509_class **ctx)
{
	return (struct certcheck *)(void *)ctx;
}

static void
cc_start_chain(const br_x509_class **ctx, const char *server_name)
{
	struct certcheck *c = certcheck(ctx);

	c->verified = 0;
	c->xc.vtable->start_chain(&c->xc.vtable, server_name);
}

static void
cc_start_cert(const br_x509_class **ctx, uint32_t length)
{
	struct certcheck *c = certcheck(ctx);

	c->xc.vtable->start_cert(&c->xc.vtable, length);
}

static void
cc_append(const br_x509_class **ctx, const unsigned char *p, size_t n)
{
	struct certcheck *c = certcheck(ctx);

	c->xc.vtable->append(&c->xc.vtable, p, n);
}

static void
cc_end_cert(const br_x509_class **ctx)
{
	struct certcheck *c = certcheck(ctx);

	c->xc.vtable->end_cert(&c->xc.vtable);
}

static unsigned
cc_end_chain(const br_x509_class **ctx)
{
	struct certcheck *c = certcheck(ctx);
	unsigned err;

	err = c->xc.vtable->end_chain(&c->xc.vtable);
	c->verified = err == BR_ERR_OK;
	if (err)
		logmsg(LOG_NOTICE, "TLS: client certificate rejected: %s",
		    errstr(err));
	return err;
}

static const br_x509_pkey *
cc_get_pkey(const br_x509_class *const *ctx, unsigned *usages)
{
	const struct certcheck *c = (const struct certcheck *)(const void *)ctx;

	return c->xc.vtable->get_pkey(&c->xc.vtable, usages);
}

static const br_x509_class certcheck_class = {
	sizeof(struct certcheck),
	cc_start_chain, cc_start_cert, cc_append, cc_end_cert, cc_end_chain,
	cc_get_pkey,
};

/* TLS_SUITES that the policy allows and the key can serve, no twice */
static size_t
pick_suites(uint16_t *out, unsigned keytype)
{
	size_t i, j, k, n = 0;

	for (i = 0; i < LEN(suites_conf); i++) {
		for (j = 0; j < LEN(aead_suites); j++)
			if (aead_suites[j].id == suites_conf[i])
				break;
		if (j == LEN(aead_suites) || aead_suites[j].keytype != keytype)
			continue;
		for (k = 0; k < n && out[k] != suites_conf[i]; k++)
			;
		if (k == n && n < LEN(aead_suites))
			out[n++] = suites_conf[i];
	}
	return n;
}

static const char *
suite_name(uint16_t id)
{
	size_t i;

	for (i = 0; i < LEN(aead_suites); i++)
		if (aead_suites[i].id == id)
			return aead_suites[i].name;
	return "?";
}

/* a fresh server context for this connection, seeded from the kernel */
static int
setup(void)
{
	br_ssl_engine_context *eng = &tls.sc.eng;
	uint16_t suites[LEN(aead_suites)];
	unsigned char seed[32];
	unsigned kt = br_skey_decoder_key_type(&tls.key);
	ssize_t r;
	size_t n;

	if (kt == BR_KEYTYPE_RSA)
		br_ssl_server_init_full_rsa(&tls.sc, tls.chain.v, tls.chain.n,
		    br_skey_decoder_get_rsa(&tls.key));
	else
		br_ssl_server_init_full_ec(&tls.sc, tls.chain.v, tls.chain.n,
		    tls.issuer, br_skey_decoder_get_ec(&tls.key));
	if ((n = pick_suites(suites, kt)) == 0) {
		logmsg(LOG_ERR, "TLS: TLS_SUITES has no ECDHE AEAD suite for "
		    "an %s key", kt == BR_KEYTYPE_RSA ? "RSA" : "EC");
		return -1;
	}
	br_ssl_engine_set_versions(eng, BR_TLS12, BR_TLS12);
	br_ssl_engine_set_suites(eng, suites, n);
	br_ssl_engine_add_flags(eng, BR_OPT_ENFORCE_SERVER_PREFERENCES |
	    BR_OPT_NO_RENEGOTIATION);
	if (tls.ntas) {
		br_x509_minimal_init_full(&tls.cc.xc, tls.tas, tls.ntas);
		tls.cc.vtable = &certcheck_class;
		tls.cc.verified = 0;
		br_ssl_engine_set_x509(eng, &tls.cc.vtable);
		br_ssl_engine_set_default_rsavrfy(eng);
		br_ssl_engine_set_default_ecdsa(eng);
		br_ssl_server_set_trust_anchor_names_alt(&tls.sc, tls.tas,
		    tls.ntas);
		if (!tls_client_cert_required)
			br_ssl_engine_add_flags(eng,
			    BR_OPT_TOLERATE_NO_CLIENT_AUTH);
	}
	br_ssl_engine_set_buffer(eng, tls.iobuf, sizeof(tls.iobuf), 1);
	/* BearSSL also seeds itself (RDRAND or /dev/urandom); the kernel's
	 * bytes make sure, and without them there is no TLS at all */
	while ((r = getrandom(seed, sizeof(seed), 0)) < 0 && errno == EINTR)
		;
	if (r != (ssize_t)sizeof(seed)) {
		logmsg(LOG_ERR, "TLS: no system randomness: %s",
		    r < 0 ? strerror(errno) : "short read");
		return -1;
	}
	br_ssl_engine_inject_entropy(eng, seed, sizeof(seed));
	explicit_bzero(seed, sizeof(seed));
	if (!br_ssl_server_reset(&tls.sc)) {
		logmsg(LOG_ERR, "TLS: engine reset failed: %s",
		    errstr(br_ssl_engine_last_error(eng)));
		return -1;
	}
	return 0;
}

/* why the connection failed */
static const char *
failure(void)
{
	if (tls.low == LOW_EOF)
		return "connection closed by the client";
	if (tls.low == LOW_ERR)
		return io_timedout() ? "timed out" : tls.low_errno ?
		    strerror(tls.low_errno) : "engine stalled";
	return errstr(br_ssl_engine_last_error(&tls.sc.eng));
}

/* hand every finished record to the layer below: 0 or -1 */
static int
send_records(void)
{
	br_ssl_engine_context *eng = &tls.sc.eng;
	struct layer *b = tls.l.below;
	unsigned char *p;
	size_t len;

	while (br_ssl_engine_current_state(eng) & BR_SSL_SENDREC) {
		p = br_ssl_engine_sendrec_buf(eng, &len);
		if (b->write(b, p, len) < 0) {
			tls.low = LOW_ERR;
			tls.low_errno = errno;
			return -1;
		}
		br_ssl_engine_sendrec_ack(eng, len);
	}
	return 0;
}

/* move records between the engine and the layer below until the engine
 * is in one of the states in want: 0, or -1 when the connection is
 * closed or failed (the engine's, or tls.low, says why) */
static int
pump(unsigned want)
{
	br_ssl_engine_context *eng = &tls.sc.eng;
	struct layer *b = tls.l.below;
	unsigned char *p;
	unsigned st;
	size_t len;
	ssize_t n;

	for (;;) {
		if (tls.low || send_records() < 0)
			return -1;
		st = br_ssl_engine_current_state(eng);
		if (st & BR_SSL_CLOSED)
			return -1;
		if (st & want)
			return 0;
		/* with a bidirectional buffer and no renegotiation the
		 * engine can always take input here; if not, give up
		 * rather than spin */
		if (!(st & BR_SSL_RECVREC)) {
			tls.low = LOW_ERR;
			tls.low_errno = 0;
			return -1;
		}
		/* never wait for input with output held back */
		if (b->flush(b) < 0) {
			tls.low = LOW_ERR;
			tls.low_errno = errno;
			return -1;
		}
		p = br_ssl_engine_recvrec_buf(eng, &len);
		if ((n = b->read(b, p, len)) <= 0) {
			tls.low = n == 0 ? LOW_EOF : LOW_ERR;
			tls.low_errno = errno;
			return -1;
		}
		br_ssl_engine_recvrec_ack(eng, n);
	}
}

static ssize_t
tls_read(struct layer *l, void *p, size_t n)
{
	br_ssl_engine_context *eng = &tls.sc.eng;
	unsigned char *app;
	size_t len;

	/* a caller that reads before flushing would wait forever for an
	 * answer to output still sitting in the engine */
	if (!(br_ssl_engine_current_state(eng) & BR_SSL_RECVAPP))
		br_ssl_engine_flush(eng, 0);
	if (pump(BR_SSL_RECVAPP) < 0) {
		if (tls.low == LOW_EOF || (tls.low == LOW_OK &&
		    br_ssl_engine_last_error(eng) == BR_ERR_OK))
			return 0;
		logmsg(LOG_INFO, "TLS: read failed: %s", failure());
		return -1;
	}
	app = br_ssl_engine_recvapp_buf(eng, &len);
	len = MIN(len, n);
	memcpy(p, app, len);
	br_ssl_engine_recvapp_ack(eng, len);
	return len;
}

static ssize_t
tls_write(struct layer *l, const void *p, size_t n)
{
	br_ssl_engine_context *eng = &tls.sc.eng;
	const unsigned char *s = p;
	unsigned char *app;
	size_t len, done = 0;

	while (done < n) {
		if (pump(BR_SSL_SENDAPP) < 0)
			return -1;
		app = br_ssl_engine_sendapp_buf(eng, &len);
		len = MIN(len, n - done);
		memcpy(app, s + done, len);
		br_ssl_engine_sendapp_ack(eng, len);
		done += len;
	}
	return n;
}

static int
tls_flush(struct layer *l)
{
	if (tls.low || (br_ssl_engine_current_state(&tls.sc.eng) &
	    BR_SSL_CLOSED))
		return -1;
	br_ssl_engine_flush(&tls.sc.eng, 0);
	if (send_records() < 0)
		return -1;
	return l->below->flush(l->below);
}

static size_t
tls_pending(struct layer *l)
{
	size_t len = 0;

	if (br_ssl_engine_current_state(&tls.sc.eng) & BR_SSL_RECVAPP)
		br_ssl_engine_recvapp_buf(&tls.sc.eng, &len);
	return len;
}

/* send close_notify without waiting for the client's (RFC 5246 7.2.1
 * allows it; a silent client would otherwise hold the process) */
static void
tls_close(struct layer *l)
{
	if (tls.low)
		return;
	br_ssl_engine_close(&tls.sc.eng);
	if (send_records() == 0)
		l->below->flush(l->below);
}

struct layer *
tls_start(struct layer *below)
{
	br_ssl_session_parameters sp;
	char sni[64];
	const char *s;
	size_t i;

	if (tls_load() < 0 || setup() < 0)
		return NULL;
	tls.low = LOW_OK;
	tls.l.read = tls_read;
	tls.l.write = tls_write;
	tls.l.flush = tls_flush;
	tls.l.pending = tls_pending;
	tls.l.close = tls_close;
	tls.l.below = below;
	/* the whole handshake has one deadline: a client sending a byte
	 * now and then cannot hold it open */
	io_deadline(TIMEOUT_PREAUTH * 1000);
	if (pump(BR_SSL_SENDAPP) < 0 || below->flush(below) < 0) {
		io_deadline(0);
		if (!tls.low)
			below->flush(below);	/* the alert, if any */
		logmsg(LOG_NOTICE, "TLS handshake failed: %s", failure());
		return NULL;
	}
	io_deadline(0);
	/* renegotiation is off: the key is never needed again */
	explicit_bzero(&tls.key, sizeof(tls.key));
	br_ssl_engine_get_session_parameters(&tls.sc.eng, &sp);
	/* the client's server name, made safe for the log */
	s = br_ssl_engine_get_server_name(&tls.sc.eng);
	for (i = 0; s[i] && i < sizeof(sni) - 1; i++)
		sni[i] = strchr("abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-", s[i]) ? s[i] : '?';
	sni[i] = '\0';
	logmsg(LOG_INFO, "TLS 1.2 %s%s%s%s", suite_name(sp.cipher_suite),
	    *sni ? " sni " : "", sni, tls.cc.verified ?
	    " client certificate verified" : "");
	return &tls.l;
}

int
tls_client_verified(void)
{
	return tls.cc.verified;
}

void
tls_switch(const char *remote)
{
	struct layer *l;

	io_flush();
	if (io_discard())
		logmsg(LOG_NOTICE, "discarded plaintext pipelined after "
		    "STARTTLS from %s", remote);
	if (!(l = tls_start(io_top())))
		exit(1);
	io_push(l);
}
