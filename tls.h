/* tls.h: the TLS server layer (BearSSL, TLS 1.2, ECDHE with AEAD only).
 *
 * The certificate chain and key are read from their files on every call
 * of tls_load or tls_start, so a renewed certificate is served from the
 * next connection on without a restart. */
#ifndef TLS_H
#define TLS_H
struct layer;

/* the PEM files in use: IMAPD_CERT / IMAPD_KEY from the environment, else
 * the paths in config.h, with a leading "~/" taken from $HOME; "" when
 * the path does not fit */
const char *tls_cert_path(void);
const char *tls_key_path(void);

/* cert and key files exist and are readable (no parsing): whether to
 * offer STARTTLS at all */
int tls_available(void);

/* read and check the chain, the key (and the client CA): 0, or -1 after
 * logging why.  Optional: call it before answering STARTTLS with OK to
 * answer NO instead when the key is unusable; tls_start calls it when it
 * has not been called. */
int tls_load(void);

/* certificate i of the chain (0: the server's own) as DER after tls_load
 * succeeded, NULL past the end: for imapd -t */
const unsigned char *tls_chain_cert(size_t i, size_t *len);

/* the certificate and key are readable: 1, or 0 after logging why not
 * (a plain connection, so that a STARTTLS port never fails silently) */
int tls_explain(void);

/* run the handshake over below (ciphertext goes through below->read,
 * write and flush) and return the TLS layer for io_push, or NULL after
 * logging the reason; the connection is then unusable and must close */
struct layer *tls_start(struct layer *below);

/* STARTTLS, once its OK is sent: what the client pipelined behind the
 * command came in the clear and is thrown away (logged with remote), never
 * read as if it had come through TLS; then TLS goes on top of the client's
 * stack.  A failed handshake ends the process. */
void tls_switch(const char *remote);

/* 1 when the client presented a certificate that chains to the
 * configured client CA, 0 otherwise */
int tls_client_verified(void);

#endif
