/*
 * test_tls_key.c: password files and encrypted keys (src/tls_key.c).
 *
 * The lines of a password file as pt_tls_pass_read cuts them (CR LF,
 * empty lines, the limits) and its errors; keys made here (a P-256 key
 * written plain, as encrypted PKCS#8 and as an encrypted traditional
 * "EC PRIVATE KEY") loaded by pt_tls_key_use with and without the right
 * passphrase; and the server `tls` group's password_file through a real
 * config load (pt_cycle_load, conf_load.h), errors compared whole with
 * file:line; and no other PEM file of the server (a certificate, a CRL,
 * client_ca) marked encrypted asks through OpenSSL's UI, which a counting
 * UI method shows. Loading from outside, the terminal and the upstream's
 * password_file are t/86-tls-password.t's.
 */
#include "core.h"
#include "conf.h"
#include "cycle.h"
#include "http.h"
#include "tls_key.h"
#include "conf_load.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/ui.h>

#include "tls_cert.h"

static char t_path[PATH_MAX + 64];

/* Call f(arg) with stderr captured into t_err; its return value. */
static int
t_capture(int (*f)(void *), void *arg)
{
	char errfile[PATH_MAX + 16];
	int saved, fd, rc;
	ssize_t n;

	snprintf(errfile, sizeof(errfile), "%s/.stderr", t_dir);
	fd = open(errfile, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
	rc = f(arg);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, t_err, sizeof(t_err) - 1, 0);
	close(fd);
	unlink(errfile);
	t_err[n > 0 ? n : 0] = '\0';
	return rc;
}

/* t_err must be exactly want ("@D" is the test's directory). */
static void
t_err_is(const char *want)
{
	char w[4096];

	t_expand(want, w, sizeof(w));
	ck_assert_msg(strcmp(t_err, w) == 0, "stderr:\n%s-- want:\n%s", t_err,
		      w);
}

/* Write len bytes to t_dir/name; its path in t_path. */
static const char *
t_write_bytes(const char *name, const char *data, size_t len)
{
	FILE *f;

	snprintf(t_path, sizeof(t_path), "%s/%s", t_dir, name);
	f = fopen(t_path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
	return t_path;
}

/* ---- the password file --------------------------------------------------- */

static struct pt_tls_pass t_pw;

static int
t_read_pass(void *file)
{
	struct pt_conf cf = {.to_stderr = 1};

	return pt_tls_pass_read(&cf, NULL, file, &t_pw);
}

/* Read a password file holding len bytes of data. */
static int
t_pass(const char *data, size_t len)
{
	const char *f = t_write_bytes("pass", data, len);

	return t_capture(t_read_pass, (void *)(uintptr_t)f);
}
#define T_PASS(lit) t_pass(lit, sizeof(lit) - 1)

START_TEST(test_pass_lines)
{
	ck_assert_int_eq(T_PASS("one\r\n\n\r\n  two \nthree"), PT_OK);
	ck_assert_uint_eq(t_pw.n, 3);
	ck_assert_str_eq(t_pw.items[0], "one");
	ck_assert_str_eq(t_pw.items[1], "  two "); /* spaces are kept */
	ck_assert_str_eq(t_pw.items[2], "three");
	ck_assert_str_eq(t_err, "");
	pt_tls_pass_free(&t_pw);
	ck_assert_ptr_null(t_pw.buf);
	ck_assert_ptr_null(t_pw.items);
	ck_assert_uint_eq(t_pw.n, 0);

	/* only the last CR of a line goes; a lone CR line is empty */
	ck_assert_int_eq(T_PASS("a\r\r\n\r\nb\r"), PT_OK);
	ck_assert_uint_eq(t_pw.n, 2);
	ck_assert_str_eq(t_pw.items[0], "a\r");
	ck_assert_str_eq(t_pw.items[1], "b");
	pt_tls_pass_free(&t_pw);

	/* no file: nothing, no error */
	ck_assert_int_eq(t_read_pass(NULL), PT_OK);
	ck_assert_uint_eq(t_pw.n, 0);
	ck_assert_ptr_null(t_pw.file);
	pt_tls_pass_free(&t_pw);
}
END_TEST

START_TEST(test_pass_errors)
{
	static char big[PT_TLS_PASS_FILE_MAX + 1];

	ck_assert_int_eq(T_PASS(""), PT_ERROR);
	t_err_is("portier: tls: password_file \"@D/pass\" holds no "
		 "passphrase\n");
	pt_tls_pass_free(&t_pw);
	ck_assert_int_eq(T_PASS("\n\r\n\n"), PT_ERROR);
	t_err_is("portier: tls: password_file \"@D/pass\" holds no "
		 "passphrase\n");
	pt_tls_pass_free(&t_pw);
	ck_assert_int_eq(T_PASS("a\nb\0c\n"), PT_ERROR);
	t_err_is("portier: tls: password_file \"@D/pass\": line 2 holds a "
		 "NUL byte\n");
	pt_tls_pass_free(&t_pw);
	ck_assert_int_eq(
		t_capture(t_read_pass, (void *)(uintptr_t) "/nonexistent/pass"),
		PT_ERROR);
	t_err_is("portier: tls: password_file \"/nonexistent/pass\": No such "
		 "file or directory\n");
	pt_tls_pass_free(&t_pw);
	ck_assert_int_eq(t_capture(t_read_pass, t_dir), PT_ERROR);
	t_err_is("portier: tls: password_file \"@D\": Is a directory\n");
	pt_tls_pass_free(&t_pw);

	/* the longest line, with its CR LF; one byte more */
	memset(big, 'x', sizeof(big));
	big[0] = '\n';
	big[1 + PT_TLS_PASS_MAX] = '\r';
	big[2 + PT_TLS_PASS_MAX] = '\n';
	ck_assert_int_eq(t_pass(big, 3 + PT_TLS_PASS_MAX), PT_OK);
	ck_assert_uint_eq(t_pw.n, 1);
	ck_assert_uint_eq(strlen(t_pw.items[0]), PT_TLS_PASS_MAX);
	pt_tls_pass_free(&t_pw);
	big[1 + PT_TLS_PASS_MAX] = 'x';
	ck_assert_int_eq(t_pass(big, 3 + PT_TLS_PASS_MAX), PT_ERROR);
	t_err_is("portier: tls: password_file \"@D/pass\": line 2 is longer "
		 "than 1023 bytes\n");
	pt_tls_pass_free(&t_pw);

	/* the largest file, lines of 63 bytes; one byte more */
	memset(big, 'y', sizeof(big));
	for (size_t i = 63; i < sizeof(big); i += 64)
		big[i] = '\n';
	ck_assert_int_eq(t_pass(big, PT_TLS_PASS_FILE_MAX), PT_OK);
	ck_assert_uint_eq(t_pw.n, PT_TLS_PASS_FILE_MAX / 64);
	pt_tls_pass_free(&t_pw);
	ck_assert_int_eq(t_pass(big, sizeof(big)), PT_ERROR);
	t_err_is("portier: tls: password_file \"@D/pass\" is larger than "
		 "65536 bytes\n");
	pt_tls_pass_free(&t_pw);
}
END_TEST

/* ---- keys -----------------------------------------------------------------
 */

static EVP_PKEY *t_key;
static X509 *t_crt;

/* Before the tests run (Check's asserts work only inside them). */
static void
t_make_key(void)
{
	t_key = t_tls_ec_key();
	t_crt = t_key ? t_tls_self_signed(t_key, "a.test", 1) : NULL;
	if (t_crt == NULL) {
		fprintf(stderr, "cannot make the test key\n");
		exit(EXIT_FAILURE);
	}
}

enum { T_PLAIN, T_PKCS8, T_TRADITIONAL };

/* t_key in t_dir/name, encrypted with pass as how says. */
static void
t_write_key(const char *name, int how, const char *pass)
{
	const EVP_CIPHER *c = how == T_PLAIN ? NULL : EVP_aes_256_cbc();
	int plen = pass ? (int)strlen(pass) : 0;
	unsigned char *p = (unsigned char *)(uintptr_t)pass;
	char path[PATH_MAX + 64];
	BIO *b;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", t_dir, name);
	b = BIO_new_file(path, "w");
	ck_assert_ptr_nonnull(b);
	if (how == T_TRADITIONAL)
		ok = PEM_write_bio_PrivateKey_traditional(b, t_key, c, p, plen,
							  NULL, NULL);
	else
		ok = PEM_write_bio_PrivateKey(b, t_key, c, p, plen, NULL, NULL);
	ck_assert_int_eq(ok, 1);
	BIO_free(b);
}

struct t_use {
	const char *key;  /* name in t_dir */
	const char *pass; /* the password file's text, or NULL */
};

static int
t_use_key(void *arg)
{
	const struct t_use *u = arg;
	struct pt_conf cf = {.to_stderr = 1};
	struct pt_tls_pass pw;
	char key[PATH_MAX + 64], pass[PATH_MAX + 64];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	int rc;

	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(SSL_CTX_use_certificate(ctx, t_crt), 1);
	snprintf(key, sizeof(key), "%s/%s", t_dir, u->key);
	snprintf(pass, sizeof(pass), "%s/pass", t_dir);
	if (u->pass != NULL)
		t_write("pass", u->pass);
	rc = pt_tls_pass_read(&cf, NULL, u->pass ? pass : NULL, &pw);
	if (rc == PT_OK)
		rc = pt_tls_key_use(&cf, NULL, ctx, key, "t_crt", &pw);
	pt_tls_pass_free(&pw);
	if (rc == PT_OK)
		ck_assert_int_eq(SSL_CTX_check_private_key(ctx), 1);
	ck_assert_uint_eq(ERR_peek_error(), 0); /* the queue left empty */
	SSL_CTX_free(ctx);
	return rc;
}

static int
t_use(const char *key, const char *pass)
{
	struct t_use u = {key, pass};

	return t_capture(t_use_key, &u);
}

START_TEST(test_key_plain)
{
	t_write_key("plain.key", T_PLAIN, NULL);
	ck_assert_int_eq(t_use("plain.key", NULL), PT_OK);
	ck_assert_str_eq(t_err, "");
	/* a password file does not stop a plain key */
	ck_assert_int_eq(t_use("plain.key", "unused\n"), PT_OK);
	ck_assert_str_eq(t_err, "");
}
END_TEST

START_TEST(test_key_encrypted)
{
	static const int hows[] = {T_PKCS8, T_TRADITIONAL};

	for (size_t i = 0; i < PT_ARRAY_SIZE(hows); i++) {
		t_write_key("enc.key", hows[i], "s3cret");
		/* the right one on the second line, after a wrong one */
		ck_assert_int_eq(t_use("enc.key", "wrong\r\n\ns3cret\r\n"),
				 PT_OK);
		ck_assert_str_eq(t_err, "");
		ck_assert_int_eq(t_use("enc.key", "s3cret\n"), PT_OK);
		ck_assert_int_eq(t_use("enc.key", NULL), PT_ERROR);
		t_err_is("portier: tls: key \"@D/enc.key\" is encrypted: set "
			 "password_file\n");
		ck_assert_int_eq(t_use("enc.key", "wrong\ns3cre\ns3cret0\n"),
				 PT_ERROR);
		t_err_is("portier: tls: key \"@D/enc.key\": no passphrase in "
			 "\"@D/pass\" decrypts it\n");
	}
}
END_TEST

START_TEST(test_key_not_a_key)
{
	t_write("garbage.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n"
			       "-----END PRIVATE KEY-----\n");
	ck_assert_int_eq(t_use("garbage.key", "pass\n"), PT_ERROR);
	ck_assert_msg(strncmp(t_err, "portier: tls: key \"", 19) == 0 &&
			      strstr(t_err, "decrypts") == NULL &&
			      strstr(t_err, "encrypted") == NULL,
		      "%s", t_err);
	ck_assert_int_eq(t_use("none.key", NULL), PT_ERROR);
	ck_assert_msg(strncmp(t_err, "portier: tls: key \"", 19) == 0, "%s",
		      t_err);
}
END_TEST

/* ---- the server's tls group, loaded ---------------------------------------
 */

#define T_TLS_SRV                                                              \
	"servers = ( { listen = \"127.0.0.1:1 ssl\"; return = \"200 x\"; } "   \
	");\n"

START_TEST(test_conf_server)
{
	char crt[PATH_MAX + 64];
	struct pt_cycle *c;
	FILE *f;

	snprintf(crt, sizeof(crt), "%s/a.crt", t_dir);
	f = fopen(crt, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(PEM_write_X509(f, t_crt), 1);
	fclose(f);
	t_write_key("a.key", T_PKCS8, "pw2");
	t_write("pass", "pw1\npw2\n");
	t_write("bad", "pw1\n");

	/* relative to the config's directory, inherited from main level */
	c = t_ok("tls = { certificates = ( { cert = \"a.crt\"; "
		 "key = \"a.key\"; } );\n"
		 "  password_file = \"pass\"; };\n" T_TLS_SRV,
		 NULL);
	pt_cycle_free(c);
	t_fails("tls = { certificates = ( { cert = \"a.crt\"; "
		"key = \"a.key\"; } ); };\n" T_TLS_SRV,
		"portier: @F:1: tls: key \"@D/a.key\" is encrypted: set "
		"password_file\n");
	t_fails("tls = { password_file = \"bad\";\n"
		"  certificates = ( { cert = \"a.crt\"; key = \"a.key\"; } ); "
		"};\n" T_TLS_SRV,
		"portier: @F:2: tls: key \"@D/a.key\": no passphrase in "
		"\"@D/bad\" decrypts it\n");
	/* the server's own password_file wins over the main level's */
	c = t_ok("tls = { password_file = \"bad\";\n"
		 "  certificates = ( { cert = \"a.crt\"; key = \"a.key\"; } ); "
		 "};\n"
		 "servers = ( { listen = \"127.0.0.1:1 ssl\";\n"
		 "  tls = { password_file = \"pass\"; }; return = \"200\"; } "
		 ");\n",
		 NULL);
	pt_cycle_free(c);
	t_fails("tls = { password_file = \"none\";\n"
		"  certificates = ( { cert = \"a.crt\"; key = \"a.key\"; } ); "
		"};\n" T_TLS_SRV,
		"portier: @F:1: tls: password_file \"@D/none\": No such file "
		"or directory\n");
	t_fails("tls = { password_file = \"\"; };\n" T_SRV,
		"portier: @F:1: \"password_file\": empty file name\n");
}
END_TEST

/* ---- no prompt, whatever the file -----------------------------------------
 */

/* OpenSSL's default passphrase callback asks through the default UI
 * (the terminal): this one counts the questions and answers none. */
static int t_ui_calls;

static int
t_ui_open(UI *ui)
{
	(void)ui;
	t_ui_calls++;
	return 0;
}

/* A PEM block of type with a "Proc-Type: 4,ENCRYPTED" header: reading
 * it asks for a passphrase before its (dummy) body is looked at. */
static void
t_write_encrypted_pem(const char *name, const char *type)
{
	char text[512];

	snprintf(text, sizeof(text),
		 "-----BEGIN %s-----\n"
		 "Proc-Type: 4,ENCRYPTED\n"
		 "DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\n"
		 "AAAAAAAAAAAAAAAAAAAAAA==\n"
		 "-----END %s-----\n",
		 type, type);
	t_write(name, text);
}

/* t_crt in a PEM block encrypted with the empty passphrase. */
static void
t_write_empty_pass_crt(const char *name)
{
	unsigned char none[1] = {0};
	char path[PATH_MAX + 64];
	BIO *b;

	snprintf(path, sizeof(path), "%s/%s", t_dir, name);
	b = BIO_new_file(path, "w");
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(PEM_ASN1_write_bio(
				 (i2d_of_void *)i2d_X509, PEM_STRING_X509, b,
				 t_crt, EVP_aes_128_cbc(), none, 0, NULL, NULL),
			 1);
	BIO_free(b);
}

START_TEST(test_conf_no_prompt)
{
	UI_METHOD *m = UI_create_method("t_count");
	char crt[PATH_MAX + 64];
	FILE *f;

	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(UI_method_set_opener(m, t_ui_open), 0);
	UI_set_default_method(m);
	snprintf(crt, sizeof(crt), "%s/a.crt", t_dir);
	f = fopen(crt, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(PEM_write_X509(f, t_crt), 1);
	fclose(f);
	t_write_key("a.key", T_PLAIN, NULL);
	t_write_encrypted_pem("enc.crl", "X509 CRL");
	t_write_encrypted_pem("enc.crt", "CERTIFICATE");

	/* a CRL file whose block says it is encrypted */
	t_fails("tls = { certificates = ( { cert = \"a.crt\"; "
		"key = \"a.key\"; } );\n"
		"  client_ca = \"a.crt\";\n  crl = \"enc.crl\"; };\n" T_TLS_SRV,
		"portier: @F:3: tls: crl \"@D/enc.crl\": CRL 1: bad password "
		"read\n");
	ck_assert_int_eq(t_ui_calls, 0);
	/* a certificate file likewise */
	t_fails("tls = { certificates = ( { cert = \"enc.crt\"; "
		"key = \"a.key\"; } ); };\n" T_TLS_SRV,
		"portier: @F:1: tls: cert \"@D/enc.crt\": bad password read\n");
	ck_assert_int_eq(t_ui_calls, 0);
	/* a CA certificate encrypted with the empty passphrase: OpenSSL's
	 * trust store reads it, the names sent to clients are read apart */
	t_write_empty_pass_crt("empty.crt");
	t_fails("tls = { certificates = ( { cert = \"a.crt\"; "
		"key = \"a.key\"; } );\n"
		"  client_ca = \"empty.crt\"; };\n" T_TLS_SRV,
		"portier: @F:2: tls: client_ca \"@D/empty.crt\": bad password "
		"read\n");
	ck_assert_int_eq(t_ui_calls, 0);
	UI_set_default_method(UI_OpenSSL());
	UI_destroy_method(m);
}
END_TEST

static Suite *
tls_key_suite(void)
{
	Suite *s = suite_create("tls_key");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, t_setup, t_teardown);
	tcase_add_test(tc, test_pass_lines);
	tcase_add_test(tc, test_pass_errors);
	tcase_add_test(tc, test_key_plain);
	tcase_add_test(tc, test_key_encrypted);
	tcase_add_test(tc, test_key_not_a_key);
	tcase_add_test(tc, test_conf_server);
	tcase_add_test(tc, test_conf_no_prompt);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	t_make_key();
	return pt_unit_run(tls_key_suite());
}
