/* imapd compile-time configuration.  Copy to config.h (make does it the
 * first time) and edit; there is no run-time configuration file.  The
 * environment variables MAILDIR, IMAPD_PASSWD, IMAPD_CERT and IMAPD_KEY
 * override the paths below. */
#ifndef CONFIG_H
#define CONFIG_H

/* The Maildir root.  A leading "~/" is the home of the user imapd runs as. */
static const char maildir_root[] = "~/Maildir";

/* Password hash file: one crypt(3) hash per line (yescrypt or SHA-512),
 * optionally "label:" in front of it.  Make one with "imapd -H". */
static const char passwd_file[] = "~/.imapd-passwd";

/* The login name clients must use; empty: the name of the account imapd
 * runs as. */
static const char login_user[] = "";

/* TLS certificate chain and private key (PEM), read on every connection so
 * a renewed certificate needs no restart. */
static const char tls_cert_file[] = "~/.imapd/cert.pem";
static const char tls_key_file[] = "~/.imapd/key.pem";
/* PEM file of the CA that signs client certificates; empty: none asked */
static const char tls_client_ca_file[] = "";
/* with a client CA: 1 = a valid client certificate is required in addition
 * to the password; 0 = optional, and allows AUTHENTICATE EXTERNAL alone */
static const int tls_client_cert_required = 1;
/* TLS 1.2 cipher suites, most preferred first (names from bearssl_ssl.h).
 * tls.c uses the ones that fit the key (RSA or ECDSA) and ignores any
 * suite that is not ECDHE with an AEAD cipher. */
#define TLS_SUITES \
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, \
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, \
	BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, \
	BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, \
	BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, \
	BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256

/* Connections from loopback count as secure: LOGIN works there without
 * STARTTLS (webmail on the same machine). */
static const int loopback_is_secure = 1;

/* Limits */
#define LINE_MAX_LEN	(64 * 1024 + 16)	/* one command line */
#define LITERAL_MAX	(64 * 1024)	/* a literal that is not a message */
#define APPEND_MAX	(64ULL * 1024 * 1024)	/* APPENDLIMIT */
#define LOGIN_TRIES	3	/* failed logins before the connection closes */
#define LOGIN_DELAY_MS	2000	/* wait before answering a failed login */
#define BAD_MAX		20	/* consecutive BAD commands before closing */
/* QUOTA (RFC 9208) over the whole Maildir: the most it may hold in KiB of
 * messages and in messages; 0: no limit but the file system's */
#define QUOTA_STORAGE_KB	0
#define QUOTA_MESSAGES		0
/* INPROGRESS (RFC 9585): a long command reports how far it got this
 * often, in milliseconds */
#define INPROGRESS_MS		1000
/* full-text index: while the client is quiet, new mail is indexed in
 * slices of at most this many milliseconds (and a message), so that a
 * command or DONE waits no longer */
#define FTS_SLICE_MS		100

/* Failed logins across connections, kept in a small file (environment:
 * IMAPD_FAILURES).  From the AUTHFAIL_FREE-th recent failure of an address
 * on (or the AUTHFAIL_TOTAL_FREE-th of all addresses together), a login
 * waits LOGIN_DELAY_MS, then twice as long for every further failure, up
 * to AUTHFAIL_MAX_MS; counts halve every AUTHFAIL_HALFLIFE seconds, and a
 * success clears its address. */
static const char authfail_file[] = "~/.imapd-failures";
#define AUTHFAIL_FREE	3
#define AUTHFAIL_TOTAL_FREE 30
#define AUTHFAIL_MAX_MS	60000
#define AUTHFAIL_HALFLIFE 600
#define AUTHFAIL_ENTRIES 128	/* addresses remembered */

/* make PAM=1: logins are decided by this PAM service (environment:
 * IMAPD_PAM_SERVICE) instead of the password file */
static const char pam_service[] = "imapd";
/* make CHECKPASSWORD=1: logins are decided by this qmail checkpassword
 * program (environment: IMAPD_CHECKPASSWORD) */
static const char checkpassword_prog[] = "/usr/local/bin/checkpassword";
#define CHECKPASSWORD_TIMEOUT 30	/* seconds before it is killed */

/* Confine the process (Linux: Landlock, seccomp, no new privileges, no
 * new processes) once start-up is done; 0 turns it off. */
static const int sandbox = 1;
/* resource limits: a safety net against a runaway session */
#define LIMIT_MEMORY	(1024ULL * 1024 * 1024)	/* address space */
#define LIMIT_FILESIZE	(4 * APPEND_MAX)	/* largest file written */
#define LIMIT_FILES	256	/* open file descriptors */

/* Timeouts, in seconds */
#define TIMEOUT_PREAUTH	60	/* before login */
#define TIMEOUT_AUTH	(30 * 60)	/* after login: RFC 3501 autologout */
#define TIMEOUT_IDLE	(30 * 60)	/* IDLE without DONE */
#define IDLE_KEEPALIVE	120	/* "* OK Still here" while idling */
#define IDLE_POLL	30	/* rescan while idling when inotify is quiet */
#define IDLE_POLL_UNWATCHED 1	/* rescan while idling without inotify */
#define IDLE_SETTLE_MS	50	/* look again this soon when a sync left
				   names the watch told of unapplied */
/* NOTIFY (RFC 5465): folders one session watches for other folders'
 * events (two inotify watches each); more is NOTIFICATIONOVERFLOW */
#define NOTIFY_FOLDERS_MAX 100
#define OWN_RANGES	16	/* runs of UIDs a session added itself, kept so
				   NOTIFY sends no FETCH for them */

/* SPECIAL-USE (RFC 6154): the folders clients should use for sent mail,
 * drafts, trash, junk and archive, by name.  The first name of each use is
 * the one a client sees first; the others are names phones and desktop
 * clients create on their own.  CREATE ... (USE (\Sent)) adds more. */
static const struct {
	const char *name;
	const char *use;
} special_use[] = {
	{ "Sent", "\\Sent" },
	{ "Sent Messages", "\\Sent" },
	{ "Sent Items", "\\Sent" },
	{ "Drafts", "\\Drafts" },
	{ "Trash", "\\Trash" },
	{ "Deleted Messages", "\\Trash" },
	{ "Deleted Items", "\\Trash" },
	{ "Junk", "\\Junk" },
	{ "Spam", "\\Junk" },
	{ "Archive", "\\Archive" },
};

/* Retention: when a folder with this special use is selected read-write,
 * messages whose internal date is older than this many days are expunged
 * from it.  0 keeps them forever. */
static const struct {
	const char *use;
	int days;
} retention[] = {
	{ "\\Trash", 30 },
	{ "\\Junk", 30 },
};

/* Delivery (imapd -d) and Sieve.  IMAPD_SIEVE, IMAPD_SIEVE_DIR,
 * IMAPD_SIEVE_GLOBAL and IMAPD_SENDMAIL override the paths. */
static const char sieve_script[] = "~/.dovecot.sieve";	/* the active script */
static const char sieve_dir[] = "~/sieve";	/* include :personal, ManageSieve */
/* include :global, where Pigeonhole's documentation puts sieve_global */
static const char sieve_global[] = "/var/lib/dovecot/sieve/global";
static const char sieve_state[] = "~/.imapd-sieve-state";	/* vacation memory */
static const char sendmail_path[] = "/usr/sbin/sendmail";
#define SIEVE_SIZE_MAX	(256 * 1024)	/* a script, in bytes */
#define SIEVE_DEPTH_MAX	32	/* nested blocks and tests */
#define SIEVE_INCLUDE_MAX 8	/* include depth */
#define SIEVE_VAR_MAX	4096	/* bytes in one variable */
#define SIEVE_VARS_MAX	256	/* variables in one script */
#define SIEVE_REDIRECT_MAX 4	/* redirects of one message */
#define SIEVE_REDIRECT_DAY 100	/* redirects a day, all messages */
#define SIEVE_VACATION_DAY 100	/* vacation replies a day */
#define SIEVE_SCRIPTS_MAX 64	/* scripts ManageSieve keeps */
#define SIEVE_BODY_PARTS 64	/* MIME parts one body test reads */
/* how long imapd -d remembers a message it delivered, so that the MTA's
 * retry of a delivery killed before it could answer stores no copy twice */
#define DELIVER_MEMORY	(2 * 86400)
/* The message cache of a folder (imapd-cache: ENVELOPE, BODYSTRUCTURE,
 * header fields) grows to at most this many bytes; past it, the oldest
 * messages' entries are dropped. */
#define MSGCACHE_MAX	(512UL << 20)
/* A message up to this size is read into memory rather than mapped: one
 * copy costs less than the page faults and the munmap of a mapping (the
 * buffer stays at the largest size read).  Keep it under 1 MB: the message
 * code gives back the pages of larger scans, which only a mapping may
 * have taken from it. */
#define MSG_READ_MAX	(1000UL << 10)

#endif
