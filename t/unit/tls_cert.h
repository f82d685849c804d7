/*
 * tls_cert.h: a self-signed ECDSA P-256 certificate made in code for the
 * TLS unit tests, so that no key is committed. Included by the test
 * programs that need one (static functions, no object of its own).
 */
#ifndef PT_TEST_TLS_CERT_H
#define PT_TEST_TLS_CERT_H

#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/x509.h>

/* A new P-256 key, or NULL. */
static EVP_PKEY *
t_tls_ec_key(void)
{
	EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
	EVP_PKEY *key = NULL;

	if (kc == NULL || EVP_PKEY_keygen_init(kc) != 1 ||
	    EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kc, NID_X9_62_prime256v1) !=
		    1 ||
	    EVP_PKEY_keygen(kc, &key) != 1)
		key = NULL;
	EVP_PKEY_CTX_free(kc);
	return key;
}

/* A certificate for cn signed by its own key, valid from an hour ago for
 * a day, with the serial number given; NULL on a failure. */
static X509 *
t_tls_self_signed(EVP_PKEY *key, const char *cn, long serial)
{
	X509 *crt = X509_new();
	X509_NAME *name;

	if (crt == NULL)
		return NULL;
	X509_set_version(crt, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(crt), serial);
	X509_gmtime_adj(X509_getm_notBefore(crt), -3600);
	X509_gmtime_adj(X509_getm_notAfter(crt), 86400);
	name = X509_get_subject_name(crt);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(crt, name);
	X509_set_pubkey(crt, key);
	if (X509_sign(crt, key, EVP_sha256()) <= 0) {
		X509_free(crt);
		return NULL;
	}
	return crt;
}

#endif
