/*
 * relasi/pki.h — keys and certificates for the hub and its devices, made
 * with mbedTLS (2.28): the hub's two CAs (one signs the hub's server
 * certificate, the other signs device certificates, so a device certificate
 * can never pose as the hub), the server certificate with subjectAltNames,
 * device keys and certificate signing requests, and SHA-256 fingerprints for
 * pinning.
 *
 * Keys are ECDSA on P-256 (what mbedTLS 2.28's X.509 signs and verifies).
 * Private keys are written with mode 0600 and never overwrite an existing
 * file (O_EXCL). All PEM strings returned are malloc'd and owned by the
 * caller. Errors: RL_EIO (files), RL_EINVALID (malformed PEM, a CSR whose
 * signature does not verify, bad names), RL_ERROR (mbedTLS failure; the
 * message carries mbedTLS's own text).
 */
#ifndef RELASI_PKI_H
#define RELASI_PKI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* SHA-256 in lower-case hex plus NUL. */
#define RL_FINGERPRINT_BUFSZ 65

/* Generate a P-256 key and write it as PEM to path (0600, must not exist). */
int rl_pki_key_generate(const char *path);

/* Create a self-signed CA certificate (basicConstraints CA:TRUE, keyCertSign)
 * for the key at key_path, valid `days` days, written as PEM to cert_path. */
int rl_pki_ca_create(const char *key_path, const char *cert_path, const char *common_name,
		     int days);

/* A certificate signing request for the key at key_path, subject CN=cn. */
int rl_pki_csr_create(const char *key_path, const char *cn, char **csr_pem);

/* The subject CN of a CSR, after verifying the CSR's self-signature. */
int rl_pki_csr_subject_cn(const char *csr_pem, char *cn, size_t cnsz);

/* SHA-256 of the CSR's public key (its SubjectPublicKeyInfo, DER), hex, after
 * verifying the self-signature: which key a certificate was issued for. */
int rl_pki_csr_key_hash(const char *csr_pem, char out[RL_FINGERPRINT_BUFSZ]);

struct rl_pki_sign_opts {
	const char *subject_cn;       /* CN of the issued certificate (the CSR's is ignored) */
	const char *const *sans;      /* server: DNS names or IPv4/IPv6 literals; NULL for none */
	size_t nsans;
	int days;                     /* validity from now */
	int server;                   /* 1: extendedKeyUsage serverAuth; 0: clientAuth */
	uint64_t serial;              /* > 0, unique per issuing CA */
	int64_t now;                  /* "now" in seconds since the epoch; 0: the clock's */
};

/*
 * Issue a certificate for the public key in csr_pem (self-signature checked),
 * signed by the CA at ca_key_path / ca_cert_path. *cert_pem is malloc'd.
 */
int rl_pki_sign_csr(const char *ca_key_path, const char *ca_cert_path, const char *csr_pem,
		    const struct rl_pki_sign_opts *opts, char **cert_pem);

/* RL_OK when rl_pki_sign_csr would accept opts (the common name, days,
 * serial, every subjectAltName a host name or an IP address); else
 * RL_EINVALID naming the first bad one. For a caller that checks its
 * input before it writes anything. */
int rl_pki_sign_opts_check(const struct rl_pki_sign_opts *opts);

/* What a certificate file says of itself (relasi-hub cert): its validity
 * in seconds since the epoch (UTC), its subject CN, and its subjectAltNames
 * as text (DNS names, IPv4/IPv6 literals; others are left out). */
#define RL_PKI_SANS_MAX 16
#define RL_PKI_NAME_MAX 256
struct rl_pki_cert_info {
	int64_t not_before, not_after;
	char cn[RL_PKI_NAME_MAX];
	char sans[RL_PKI_SANS_MAX][RL_PKI_NAME_MAX];
	size_t nsans;
};
int rl_pki_cert_info_file(const char *path, struct rl_pki_cert_info *info);

/* SHA-256 of the DER form of the first certificate in a PEM string. */
int rl_pki_fingerprint_pem(const char *cert_pem, char out[RL_FINGERPRINT_BUFSZ]);
/* The first certificate of cert_pem as DER (*der malloc'd: the caller
 * frees; der NULL: not wanted) and its fingerprint, from one parse.
 * RL_EINVALID naming why it does not parse; RL_ENOMEM. */
int rl_pki_cert_der(const char *cert_pem, unsigned char **der, size_t *len,
		    char fp[RL_FINGERPRINT_BUFSZ]);
/* Same, of the certificate file at path. */
int rl_pki_fingerprint_file(const char *path, char out[RL_FINGERPRINT_BUFSZ]);

/*
 * Sign data with the P-256 key at key_path: ECDSA over its SHA-256, DER
 * encoded into sig (at least RL_PKI_SIG_MAX bytes); *siglen its length.
 * (Offline bundles, relasi/bundle.h.)
 */
#define RL_PKI_SIG_MAX 160
int rl_pki_sign_data(const char *key_path, const unsigned char *data, size_t len,
		     unsigned char *sig, size_t *siglen);

/*
 * Check that the certificate cert_pem (len bytes, PEM) was issued by the
 * single CA certificate in the file ca_path and is valid now. Returns its
 * subject CN (validated like every Relasi CN) and fingerprint. RL_EAUTH
 * with the reason ("not issued by ...", "expired") when it does not chain;
 * RL_EINVALID when it does not parse.
 */
int rl_pki_cert_check(const char *ca_path, const char *cert_pem, size_t len, char *cn,
		      size_t cnsz, char fp[RL_FINGERPRINT_BUFSZ]);

/* Verify sig over data with the public key of cert_pem (SHA-256).
 * RL_EAUTH when it does not verify. */
int rl_pki_verify_data(const char *cert_pem, size_t cert_len, const unsigned char *data,
		       size_t len, const unsigned char *sig, size_t siglen);

/* Read a whole (small, <= 64 KiB) PEM file into a malloc'd string. */
int rl_pki_read_file(const char *path, char **out);
/* Write a string to a new file with the given mode (O_EXCL unless replace). */
int rl_pki_write_file(const char *path, const char *data, int mode, int replace);

#ifdef __cplusplus
}
#endif
#endif
