/*
 * tls_key.h: private keys in PEM, encrypted or not, and the passphrases
 * of a `password_file` that decrypt them (the server `tls` group's and an
 * upstream's). For the master, at config load only: the passphrases are
 * in memory from pt_tls_pass_read() to pt_tls_pass_free(), the time it
 * takes to load the keys of one context.
 */
#ifndef PT_TLS_KEY_H
#define PT_TLS_KEY_H

#include "core.h"
#include "module.h"

struct pt_conf;
struct ssl_ctx_st;

/* The longest passphrase (a line of the file): OpenSSL's PEM_BUFSIZE
 * less one, what its callbacks can take. */
#define PT_TLS_PASS_MAX      1023
/* The largest password file read. */
#define PT_TLS_PASS_FILE_MAX (64 * 1024)

/* The passphrases of a password file, in the order of its lines. */
struct pt_tls_pass {
	const char *file; /* NULL: no password file */
	char *buf;        /* the file's bytes, lines cut in place */
	size_t cap;       /* of buf */
	char **items;     /* NUL-terminated, in buf */
	unsigned n;
};

/*
 * Read the passphrases of file (NULL: none, pw is left empty) into pw:
 * one per line, a trailing "\r\n" or "\n" stripped, empty lines skipped.
 * A file that can not be read, one larger than PT_TLS_PASS_FILE_MAX, a
 * line longer than PT_TLS_PASS_MAX bytes or holding a NUL byte, and a
 * file with no passphrase are errors reported at node with
 * pt_conf_error: PT_ERROR. pw must be given to pt_tls_pass_free() in
 * every case (also after PT_ERROR).
 */
int pt_tls_pass_read(struct pt_conf *cf, const config_setting_t *node,
		     const char *file, struct pt_tls_pass *pw);

/* Overwrite the passphrases (OPENSSL_cleanse) and free them; pw is left
 * empty. */
void pt_tls_pass_free(struct pt_tls_pass *pw);

/*
 * Load the PEM private key in file into ctx (SSL_CTX_use_PrivateKey, the
 * slot of its type) and check that it matches the certificate set there
 * just before (cert names it in the error). An encrypted key is tried with each
 * passphrase of pw in turn (pw may be NULL or empty); OpenSSL never asks on a
 * terminal. Errors at node (pt_conf_error, "tls: key ..."), with
 * OpenSSL's error queue emptied: an encrypted key and no passphrase, no
 * passphrase that decrypts it, a file that is not a key, a key that does
 * not match the certificate. PT_OK or
 * PT_ERROR.
 */
int pt_tls_key_use(struct pt_conf *cf, const config_setting_t *node,
		   struct ssl_ctx_st *ctx, const char *file, const char *cert,
		   const struct pt_tls_pass *pw);

/*
 * A pem_password_cb that gives no passphrase (it returns -1, and OpenSSL
 * fails with "bad password read"): for every other PEM file the master
 * reads (certificates, CRLs), whose blocks may say "Proc-Type:
 * 4,ENCRYPTED" too. Without a callback OpenSSL falls back to its
 * default one, which asks on the terminal and waits.
 */
int pt_tls_no_passphrase(char *buf, int size, int rwflag, void *u);

#endif
