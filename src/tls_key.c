/*
 * tls_key.c: loading private keys that may be encrypted, with the
 * passphrases of a password_file, as nginx's ssl_password_file.
 *
 * The master reads the file when it builds a context (so a file readable
 * by root only works, as root-only keys do), tries every passphrase in
 * turn on each encrypted key, and overwrites and frees them once the
 * context's keys are loaded. The passphrases live in one malloc'ed
 * buffer, not in the cycle's pool: that would keep them for the life of
 * the configuration and never clear them.
 *
 * OpenSSL is always given our own passphrase callback, so it never falls
 * back to its default one, which asks on the terminal ("Enter PEM pass
 * phrase:") and would hang `portier -t` or a start in the foreground. The
 * callback also tells whether the key was encrypted at all: a key that
 * asks for a passphrase and gets none that works is reported as such,
 * not with OpenSSL's "bad decrypt". The other PEM files (certificates,
 * CRLs) get pt_tls_no_passphrase for the same reason: any PEM block may
 * carry a "Proc-Type: 4,ENCRYPTED" header.
 */
#include "core.h"
#include "conf.h"
#include "sockio.h"
#include "tls_key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

/* ---- the password file ------------------------------------------------- */

/* Cut buf's len bytes into lines, keep those that are not empty. */
static int
tls_pass_split(struct pt_conf *cf, const config_setting_t *node,
	       struct pt_tls_pass *pw, size_t len)
{
	char *p = pw->buf, *end = pw->buf + len;
	size_t lines = 1;
	unsigned lineno = 0;

	for (size_t i = 0; i < len; i++)
		lines += pw->buf[i] == '\n';
	pw->items = calloc(lines, sizeof(*pw->items));
	if (pw->items == NULL) {
		pt_conf_error(cf, node,
			      "tls: password_file \"%s\": out of "
			      "memory",
			      pw->file);
		return PT_ERROR;
	}
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *eol = nl != NULL ? nl : end;
		size_t n = (size_t)(eol - p);

		lineno++;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n > PT_TLS_PASS_MAX) {
			pt_conf_error(cf, node,
				      "tls: password_file \"%s\": line %u is "
				      "longer than %d bytes",
				      pw->file, lineno, PT_TLS_PASS_MAX);
			return PT_ERROR;
		}
		if (memchr(p, '\0', n) != NULL) {
			pt_conf_error(cf, node,
				      "tls: password_file \"%s\": line %u "
				      "holds a NUL byte",
				      pw->file, lineno);
			return PT_ERROR;
		}
		p[n] = '\0'; /* buf has a byte past len for the last line */
		if (n > 0)
			pw->items[pw->n++] = p;
		p = eol + 1;
	}
	if (pw->n == 0) {
		pt_conf_error(cf, node,
			      "tls: password_file \"%s\" holds no passphrase",
			      pw->file);
		return PT_ERROR;
	}
	return PT_OK;
}

int
pt_tls_pass_read(struct pt_conf *cf, const config_setting_t *node,
		 const char *file, struct pt_tls_pass *pw)
{
	size_t len = 0;
	ssize_t n = 0;
	int fd, err;

	memset(pw, 0, sizeof(*pw));
	if (file == NULL)
		return PT_OK;
	pw->file = file;
	pw->cap = PT_TLS_PASS_FILE_MAX + 1;
	pw->buf = malloc(pw->cap);
	if (pw->buf == NULL) {
		pw->cap = 0;
		pt_conf_error(cf, node,
			      "tls: password_file \"%s\": out of "
			      "memory",
			      file);
		return PT_ERROR;
	}
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pt_conf_error(cf, node, "tls: password_file \"%s\": %s", file,
			      strerror(errno));
		return PT_ERROR;
	}
	while (len < pw->cap) {
		n = read(fd, pw->buf + len, pw->cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	err = errno;
	close(fd);
	if (n < 0) {
		pt_conf_error(cf, node, "tls: password_file \"%s\": %s", file,
			      strerror(err));
		return PT_ERROR;
	}
	if (len == pw->cap) {
		pt_conf_error(cf, node,
			      "tls: password_file \"%s\" is larger than %d "
			      "bytes",
			      file, PT_TLS_PASS_FILE_MAX);
		return PT_ERROR;
	}
	return tls_pass_split(cf, node, pw, len);
}

void
pt_tls_pass_free(struct pt_tls_pass *pw)
{
	if (pw->buf != NULL) {
		OPENSSL_cleanse(pw->buf, pw->cap);
		free(pw->buf);
	}
	free(pw->items);
	memset(pw, 0, sizeof(*pw));
}

/* ---- keys --------------------------------------------------------------- */

/* One attempt at reading a key: the passphrase to give, if any, and
 * whether OpenSSL asked for one (the key is encrypted). */
struct tls_key_try {
	const char *pass;
	int asked;
};

static int
tls_key_pass_cb(char *buf, int size, int rwflag, void *u)
{
	struct tls_key_try *t = u;
	size_t n;

	(void)rwflag;
	t->asked = 1;
	if (t->pass == NULL)
		return -1;
	n = strlen(t->pass);
	if (size < 0 || n > (size_t)size)
		return -1;
	memcpy(buf, t->pass, n);
	return (int)n;
}

int
pt_tls_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* The key of bio, read from its start, with t's passphrase. */
static EVP_PKEY *
tls_key_read(BIO *bio, struct tls_key_try *t)
{
	t->asked = 0;
	ERR_clear_error();
	/* a file BIO: 0 on success, -1 on a failure */
	if (BIO_reset(bio) < 0)
		return NULL;
	return PEM_read_bio_PrivateKey(bio, NULL, tls_key_pass_cb, t);
}

int
pt_tls_key_use(struct pt_conf *cf, const config_setting_t *node,
	       struct ssl_ctx_st *ctx, const char *file, const char *cert,
	       const struct pt_tls_pass *pw)
{
	struct tls_key_try t = {NULL, 0};
	unsigned npass = pw != NULL ? pw->n : 0;
	EVP_PKEY *pkey = NULL;
	char why[256];
	BIO *bio;
	int rc = PT_ERROR;

	ERR_clear_error();
	bio = BIO_new_file(file, "r");
	if (bio == NULL) {
		pt_conf_error(cf, node, "tls: key \"%s\": %s", file,
			      pt_tls_reason(why, sizeof(why),
					    "not a PEM private key"));
		return PT_ERROR;
	}
	/* a key that is not encrypted does not ask: one read is enough */
	for (unsigned i = 0; pkey == NULL && i < PT_MAX(npass, 1u); i++) {
		t.pass = i < npass ? pw->items[i] : NULL;
		pkey = tls_key_read(bio, &t);
		if (!t.asked)
			break;
	}
	if (pkey == NULL && t.asked && npass == 0)
		pt_conf_error(cf, node,
			      "tls: key \"%s\" is encrypted: set password_file",
			      file);
	else if (pkey == NULL && t.asked)
		pt_conf_error(cf, node,
			      "tls: key \"%s\": no passphrase in \"%s\" "
			      "decrypts it",
			      file, pw->file);
	else if (pkey == NULL)
		pt_conf_error(cf, node, "tls: key \"%s\": %s", file,
			      pt_tls_reason(why, sizeof(why),
					    "not a PEM private key"));
	else if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1)
		pt_conf_error(cf, node, "tls: key \"%s\": %s", file,
			      pt_tls_reason(why, sizeof(why),
					    "not a PEM private key"));
	/* the pair just set (the slot of the key's type) */
	else if (SSL_CTX_check_private_key(ctx) != 1)
		pt_conf_error(cf, node,
			      "tls: key \"%s\" does not match cert \"%s\": %s",
			      file, cert,
			      pt_tls_reason(why, sizeof(why), NULL));
	else
		rc = PT_OK;
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	ERR_clear_error();
	return rc;
}
