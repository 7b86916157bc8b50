/*
 * pki.c — keys and certificates for the hub and its devices (see
 * relasi/pki.h), made with mbedTLS 2.28: P-256 keys, the two self-signed
 * CAs, CSRs, certificates issued from CSRs and SHA-256 fingerprints.
 *
 * mbedTLS 2.28's certificate writer has helpers for basicConstraints and
 * keyUsage only; extendedKeyUsage and subjectAltName are DER-encoded here and
 * added as raw extensions. Subject and issuer names go through mbedTLS's
 * "CN=...,O=..." string parser, which is why names are validated strictly
 * before they get near it.
 */
#include "relasi/pki.h"
#include "relasi/error.h"

#include <mbedtls/asn1write.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/x509_csr.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RL_PKI_FILE_MAX   (64 * 1024)  /* PEM files are a few hundred bytes */
#define RL_PKI_PEM_MAX    (16 * 1024)  /* room for a certificate with many SANs */
#define RL_PKI_CN_MAX     64           /* X.520 ub-common-name */
#define RL_PKI_DNS_MAX    253
#define RL_PKI_DAYS_MAX   36500
#define RL_PKI_BACKDATE   (5 * 60)     /* tolerate clocks a few minutes apart */
#define RL_PKI_SUBJ_MAX   (RL_PKI_CN_MAX + 16)

/* A DRBG seeded from the system's entropy, one per call (key generation and
 * signing are rare; sharing one would need locking for no gain). */
struct rl_pki_rng {
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
};

/* Record an mbedTLS failure with mbedTLS's own text. */
static int rl_pki_mbed_error(int code, int mret, const char *what)
{
	char text[160];

	mbedtls_strerror(mret, text, sizeof(text));
	return rl_error_set(code, "%s: %s (-0x%04x)", what, text, (unsigned)-mret);
}

static void rl_pki_rng_init(struct rl_pki_rng *r)
{
	mbedtls_entropy_init(&r->entropy);
	mbedtls_ctr_drbg_init(&r->drbg);
}

static void rl_pki_rng_free(struct rl_pki_rng *r)
{
	mbedtls_ctr_drbg_free(&r->drbg);
	mbedtls_entropy_free(&r->entropy);
}

static int rl_pki_rng_seed(struct rl_pki_rng *r)
{
	static const char pers[] = "relasi-pki";
	int ret = mbedtls_ctr_drbg_seed(&r->drbg, mbedtls_entropy_func, &r->entropy,
					(const unsigned char *)pers, sizeof(pers) - 1);

	if (ret != 0)
		return rl_pki_mbed_error(RL_ERROR, ret, "seeding the random generator");
	return RL_OK;
}

/* ---- names ---- */

/*
 * A CN goes into "CN=<cn>,O=Relasi" for mbedTLS's name parser, so the
 * characters that parser (or an RFC 4514 reader) treats specially are
 * refused, as is anything outside printable ASCII: the CN ends up in logs
 * and in the hub's device list.
 */
static int rl_pki_cn_valid(const char *cn)
{
	size_t i, n;

	if (!cn)
		return 0;
	n = strlen(cn);
	if (n == 0 || n > RL_PKI_CN_MAX || cn[0] == ' ' || cn[n - 1] == ' ')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)cn[i];
		if (c < 0x20 || c > 0x7e || strchr(",=+\\\"<>;#", c))
			return 0;
	}
	return 1;
}

static int rl_pki_check_cn(const char *cn)
{
	if (!rl_pki_cn_valid(cn))
		return rl_error_set(RL_EINVALID,
				    "'%.80s' is not a valid common name (1-%d printable ASCII "
				    "characters, none of , = + \\ \" < > ; #)",
				    cn ? cn : "(null)", RL_PKI_CN_MAX);
	return RL_OK;
}

/* A host name: dot-separated LDH labels of 1-63 characters, no empty label. */
static int rl_pki_dns_valid(const char *s)
{
	size_t i, n = strlen(s), label = 0;

	if (n == 0 || n > RL_PKI_DNS_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return 0;
		if (c == '-' && label == 0)
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && s[n - 1] != '-';
}

/* IPv4 or IPv6 literal → 4 or 16 address bytes; 0 when s is not one. */
static size_t rl_pki_ip_parse(const char *s, unsigned char out[16])
{
	if (inet_pton(AF_INET, s, out) == 1)
		return 4;
	if (inet_pton(AF_INET6, s, out) == 1)
		return 16;
	return 0;
}

/* ---- files ---- */

int rl_pki_read_file(const char *path, char **out)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0, size;
	int fd, rc = RL_OK;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return rl_error_set(RL_EIO, "cannot open '%s': %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		rc = rl_error_set(RL_EIO, "cannot stat '%s': %s", path, strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > RL_PKI_FILE_MAX) {
		rc = rl_error_set(RL_EIO, "'%s' is not a regular file of at most %d bytes", path,
				  RL_PKI_FILE_MAX);
		goto done;
	}
	size = (size_t)st.st_size;
	if (!(buf = malloc(size + 1))) {
		rc = rl_error_set(RL_ENOMEM, "out of memory reading '%s'", path);
		goto done;
	}
	while (got < size) {
		ssize_t n = read(fd, buf + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = rl_error_set(RL_EIO, "cannot read '%s': %s", path, strerror(errno));
			goto done;
		}
		if (n == 0)
			break;  /* shrank under us: take what is there */
		got += (size_t)n;
	}
	buf[got] = '\0';
	/* Callers hand strlen()+1 to mbedTLS's PEM parsers; a NUL inside would
	 * silently cut the input short. */
	if (strlen(buf) != got) {
		rc = rl_error_set(RL_EINVALID, "'%s' contains NUL bytes (not PEM text)", path);
		goto done;
	}
	*out = buf;
	buf = NULL;
done:
	if (buf) {
		mbedtls_platform_zeroize(buf, size + 1);
		free(buf);
	}
	close(fd);
	return rc;
}

int rl_pki_write_file(const char *path, const char *data, int mode, int replace)
{
	size_t len = strlen(data), done = 0;
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (replace ? O_TRUNC | O_NOFOLLOW : O_EXCL);
	int fd, rc = RL_OK;

	fd = open(path, flags, (mode_t)mode);
	if (fd < 0)
		return rl_error_set(RL_EIO, "cannot create '%s': %s", path, strerror(errno));
	/* A replaced file keeps its old mode unless told otherwise. */
	if (replace && fchmod(fd, (mode_t)mode) != 0) {
		rc = rl_error_set(RL_EIO, "cannot chmod '%s': %s", path, strerror(errno));
		goto done;
	}
	while (done < len) {
		ssize_t n = write(fd, data + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = rl_error_set(RL_EIO, "cannot write '%s': %s", path, strerror(errno));
			goto done;
		}
		done += (size_t)n;
	}
	/* Keys and certificates are written once and must survive a crash. */
	if (fsync(fd) != 0)
		rc = rl_error_set(RL_EIO, "cannot sync '%s': %s", path, strerror(errno));
done:
	if (close(fd) != 0 && rc == RL_OK)
		rc = rl_error_set(RL_EIO, "cannot close '%s': %s", path, strerror(errno));
	if (rc != RL_OK && !replace)
		unlink(path);  /* we created it (O_EXCL): leave no half file */
	return rc;
}

/* ---- loading ---- */

/* A P-256 private key from a PEM file. */
static int rl_pki_load_key(const char *path, mbedtls_pk_context *pk)
{
	char *pem = NULL;
	int ret, rc;

	if ((rc = rl_pki_read_file(path, &pem)) != RL_OK)
		return rc;
	ret = mbedtls_pk_parse_key(pk, (const unsigned char *)pem, strlen(pem) + 1, NULL, 0);
	mbedtls_platform_zeroize(pem, strlen(pem));
	free(pem);
	if (ret != 0) {
		rc = rl_pki_mbed_error(RL_EINVALID, ret, "parsing the key");
		rl_error_prefix("'%s'", path);
		return rc;
	}
	if (mbedtls_pk_get_type(pk) != MBEDTLS_PK_ECKEY ||
	    mbedtls_pk_ec(*pk)->grp.id != MBEDTLS_ECP_DP_SECP256R1)
		return rl_error_set(RL_EINVALID, "'%s' is not a P-256 key", path);
	return RL_OK;
}

static int rl_pki_load_cert(const char *path, mbedtls_x509_crt *crt)
{
	char *pem = NULL;
	int ret, rc;

	if ((rc = rl_pki_read_file(path, &pem)) != RL_OK)
		return rc;
	ret = mbedtls_x509_crt_parse(crt, (const unsigned char *)pem, strlen(pem) + 1);
	free(pem);
	/* A positive value counts certificates that failed to parse. */
	if (ret != 0) {
		if (ret > 0)
			return rl_error_set(RL_EINVALID, "'%s': %d certificate(s) failed to parse",
					    path, ret);
		rc = rl_pki_mbed_error(RL_EINVALID, ret, "parsing the certificate");
		rl_error_prefix("'%s'", path);
		return rc;
	}
	return RL_OK;
}

/*
 * Parse a CSR and check its self-signature: proof that whoever sent it holds
 * the private key (mbedtls_x509_csr_parse only parses).
 */
static int rl_pki_csr_load(const char *csr_pem, mbedtls_x509_csr *csr)
{
	unsigned char hash[MBEDTLS_MD_MAX_SIZE];
	const mbedtls_md_info_t *md;
	size_t len;
	int ret;

	if (!csr_pem)
		return rl_error_set(RL_EINVALID, "no CSR given");
	len = strlen(csr_pem);
	if (len > RL_PKI_FILE_MAX)
		return rl_error_set(RL_EINVALID, "CSR is larger than %d bytes", RL_PKI_FILE_MAX);
	ret = mbedtls_x509_csr_parse(csr, (const unsigned char *)csr_pem, len + 1);
	if (ret != 0)
		return rl_pki_mbed_error(RL_EINVALID, ret, "parsing the CSR");
	if (csr->sig_md != MBEDTLS_MD_SHA256 && csr->sig_md != MBEDTLS_MD_SHA384 &&
	    csr->sig_md != MBEDTLS_MD_SHA512)
		return rl_error_set(RL_EINVALID, "CSR is not signed with SHA-2 (256 or more)");
	if (!(md = mbedtls_md_info_from_type(csr->sig_md)))
		return rl_error_set(RL_EINVALID, "CSR uses an unknown digest");
	if ((ret = mbedtls_md(md, csr->cri.p, csr->cri.len, hash)) != 0)
		return rl_pki_mbed_error(RL_ERROR, ret, "hashing the CSR");
	ret = mbedtls_pk_verify_ext(csr->sig_pk, csr->sig_opts, &csr->pk, csr->sig_md, hash,
				    mbedtls_md_get_size(md), csr->sig.p, csr->sig.len);
	if (ret != 0)
		return rl_pki_mbed_error(RL_EINVALID, ret, "the CSR's signature does not verify");
	return RL_OK;
}

/* The CN of a parsed name, validated; RL_EINVALID when absent or odd. */
static int rl_pki_name_cn(const mbedtls_x509_name *name, char *cn, size_t cnsz)
{
	for (; name; name = name->next) {
		if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &name->oid) != 0)
			continue;
		if (name->val.len >= cnsz || name->val.len > RL_PKI_CN_MAX)
			return rl_error_set(RL_EINVALID, "CN is too long (%zu bytes)",
					    name->val.len);
		memcpy(cn, name->val.p, name->val.len);
		cn[name->val.len] = '\0';
		if (!rl_pki_cn_valid(cn)) {
			cn[0] = '\0';
			return rl_error_set(RL_EINVALID, "CN contains characters Relasi refuses");
		}
		return RL_OK;
	}
	return rl_error_set(RL_EINVALID, "no CN in the subject");
}

/* ---- small encoders ---- */

/* "YYYYMMDDhhmmss" in UTC, the form mbedtls_x509write_crt_set_validity wants. */
static int rl_pki_time(time_t t, char out[16])
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(out, 16, "%Y%m%d%H%M%S", &tm) != 14)
		return rl_error_set(RL_ERROR, "cannot format a certificate date");
	return RL_OK;
}

static int rl_pki_set_validity(mbedtls_x509write_cert *wr, int days, int64_t at)
{
	char nb[16], na[16];
	time_t now = at ? (time_t)at : time(NULL);
	int ret, rc;

	if ((rc = rl_pki_time(now - RL_PKI_BACKDATE, nb)) != RL_OK ||
	    (rc = rl_pki_time(now + (time_t)days * 86400, na)) != RL_OK)
		return rc;
	if ((ret = mbedtls_x509write_crt_set_validity(wr, nb, na)) != 0)
		return rl_pki_mbed_error(RL_ERROR, ret, "setting the validity");
	return RL_OK;
}

static void rl_pki_hex(const unsigned char *d, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 0xf];
	}
	out[2 * n] = '\0';
}

/*
 * extendedKeyUsage ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId, with one
 * purpose: a server certificate cannot act as a device and vice versa.
 * DER is written backwards from the end of buf; *der points into it.
 */
static int rl_pki_eku_der(int server, unsigned char *buf, size_t size, unsigned char **der,
			  size_t *len)
{
	unsigned char *p = buf + size;
	const char *oid = server ? MBEDTLS_OID_SERVER_AUTH : MBEDTLS_OID_CLIENT_AUTH;
	size_t n = 0;
	int ret;

	if ((ret = mbedtls_asn1_write_oid(&p, buf, oid, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH))) < 0)
		goto fail;
	n += (size_t)ret;
	if ((ret = mbedtls_asn1_write_len(&p, buf, n)) < 0)
		goto fail;
	n += (size_t)ret;
	if ((ret = mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) < 0)
		goto fail;
	n += (size_t)ret;
	*der = p;
	*len = n;
	return RL_OK;
fail:
	return rl_pki_mbed_error(RL_ERROR, ret, "encoding extendedKeyUsage");
}

/*
 * subjectAltName ::= GeneralNames ::= SEQUENCE OF GeneralName, with
 * dNSName [2] IA5String and iPAddress [7] OCTET STRING (4 or 16 bytes), both
 * IMPLICIT. Entries are written last to first so they appear in the order
 * given. Names were validated by the caller.
 */
static int rl_pki_san_der(const char *const *sans, size_t nsans, unsigned char *buf, size_t size,
			  unsigned char **der, size_t *len)
{
	unsigned char *p = buf + size;
	size_t i, n = 0;
	int ret;

	for (i = nsans; i-- > 0;) {
		unsigned char ip[16];
		size_t iplen = rl_pki_ip_parse(sans[i], ip), item = 0;
		unsigned char tag = MBEDTLS_ASN1_CONTEXT_SPECIFIC | (iplen ? 7 : 2);

		if (iplen)
			ret = mbedtls_asn1_write_raw_buffer(&p, buf, ip, iplen);
		else
			ret = mbedtls_asn1_write_raw_buffer(&p, buf, (const unsigned char *)sans[i],
							    strlen(sans[i]));
		if (ret < 0)
			goto fail;
		item += (size_t)ret;
		if ((ret = mbedtls_asn1_write_len(&p, buf, item)) < 0)
			goto fail;
		item += (size_t)ret;
		if ((ret = mbedtls_asn1_write_tag(&p, buf, tag)) < 0)
			goto fail;
		item += (size_t)ret;
		n += item;
	}
	if ((ret = mbedtls_asn1_write_len(&p, buf, n)) < 0)
		goto fail;
	n += (size_t)ret;
	if ((ret = mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) < 0)
		goto fail;
	n += (size_t)ret;
	*der = p;
	*len = n;
	return RL_OK;
fail:
	return rl_pki_mbed_error(RL_ERROR, ret, "encoding subjectAltName");
}

/* ---- keys ---- */

int rl_pki_key_generate(const char *path)
{
	struct rl_pki_rng rng;
	mbedtls_pk_context pk;
	unsigned char pem[2048];
	int ret, rc;

	rl_pki_rng_init(&rng);
	mbedtls_pk_init(&pk);
	pem[0] = '\0';

	if ((rc = rl_pki_rng_seed(&rng)) != RL_OK)
		goto cleanup;
	if ((ret = mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY))) != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "setting up the key");
		goto cleanup;
	}
	ret = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk),
				  mbedtls_ctr_drbg_random, &rng.drbg);
	if (ret != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "generating a P-256 key");
		goto cleanup;
	}
	if ((ret = mbedtls_pk_write_key_pem(&pk, pem, sizeof(pem))) != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "encoding the key");
		goto cleanup;
	}
	rc = rl_pki_write_file(path, (const char *)pem, 0600, 0);
cleanup:
	mbedtls_platform_zeroize(pem, sizeof(pem));
	mbedtls_pk_free(&pk);
	rl_pki_rng_free(&rng);
	return rc;
}

/* ---- certificates ---- */

int rl_pki_ca_create(const char *key_path, const char *cert_path, const char *common_name,
		     int days)
{
	struct rl_pki_rng rng;
	mbedtls_pk_context key;
	mbedtls_x509write_cert wr;
	mbedtls_mpi serial;
	unsigned char sbytes[16];
	unsigned char *pem = NULL;
	char subject[RL_PKI_SUBJ_MAX];
	int ret, rc;

	rl_pki_rng_init(&rng);
	mbedtls_pk_init(&key);
	mbedtls_x509write_crt_init(&wr);
	mbedtls_mpi_init(&serial);

	if ((rc = rl_pki_check_cn(common_name)) != RL_OK)
		goto cleanup;
	if (days < 1 || days > RL_PKI_DAYS_MAX) {
		rc = rl_error_set(RL_EINVALID, "validity of %d days is out of range", days);
		goto cleanup;
	}
	if ((rc = rl_pki_load_key(key_path, &key)) != RL_OK || (rc = rl_pki_rng_seed(&rng)) != RL_OK)
		goto cleanup;
	/* 127 random bits, high bits fixed so the serial is positive, non-zero
	 * and always 16 bytes long (RFC 5280 allows up to 20). */
	if ((ret = mbedtls_ctr_drbg_random(&rng.drbg, sbytes, sizeof(sbytes))) != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "drawing a serial number");
		goto cleanup;
	}
	sbytes[0] = (unsigned char)((sbytes[0] & 0x3f) | 0x40);
	if ((ret = mbedtls_mpi_read_binary(&serial, sbytes, sizeof(sbytes))) != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "setting the serial number");
		goto cleanup;
	}
	snprintf(subject, sizeof(subject), "CN=%s,O=Relasi", common_name);

	mbedtls_x509write_crt_set_version(&wr, MBEDTLS_X509_CRT_VERSION_3);
	mbedtls_x509write_crt_set_md_alg(&wr, MBEDTLS_MD_SHA256);
	mbedtls_x509write_crt_set_subject_key(&wr, &key);
	mbedtls_x509write_crt_set_issuer_key(&wr, &key);
	if ((ret = mbedtls_x509write_crt_set_subject_name(&wr, subject)) != 0 ||
	    (ret = mbedtls_x509write_crt_set_issuer_name(&wr, subject)) != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "setting the CA's name");
		goto cleanup;
	}
	if ((ret = mbedtls_x509write_crt_set_serial(&wr, &serial)) != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "setting the serial number");
		goto cleanup;
	}
	if ((rc = rl_pki_set_validity(&wr, days, 0)) != RL_OK)
		goto cleanup;
	/* pathlen 0: the CA signs leaf certificates only, never another CA. */
	if ((ret = mbedtls_x509write_crt_set_basic_constraints(&wr, 1, 0)) != 0 ||
	    (ret = mbedtls_x509write_crt_set_key_usage(&wr, MBEDTLS_X509_KU_KEY_CERT_SIGN |
						       MBEDTLS_X509_KU_CRL_SIGN)) != 0 ||
	    (ret = mbedtls_x509write_crt_set_subject_key_identifier(&wr)) != 0 ||
	    (ret = mbedtls_x509write_crt_set_authority_key_identifier(&wr)) != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "setting the CA's extensions");
		goto cleanup;
	}
	if (!(pem = malloc(RL_PKI_PEM_MAX))) {
		rc = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	ret = mbedtls_x509write_crt_pem(&wr, pem, RL_PKI_PEM_MAX, mbedtls_ctr_drbg_random,
					&rng.drbg);
	if (ret != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "signing the CA certificate");
		goto cleanup;
	}
	rc = rl_pki_write_file(cert_path, (const char *)pem, 0644, 0);
cleanup:
	free(pem);
	mbedtls_mpi_free(&serial);
	mbedtls_x509write_crt_free(&wr);
	mbedtls_pk_free(&key);
	rl_pki_rng_free(&rng);
	return rc;
}

int rl_pki_csr_create(const char *key_path, const char *cn, char **csr_pem)
{
	struct rl_pki_rng rng;
	mbedtls_pk_context key;
	mbedtls_x509write_csr wr;
	unsigned char pem[4096];
	char subject[RL_PKI_SUBJ_MAX];
	int ret, rc;

	*csr_pem = NULL;
	rl_pki_rng_init(&rng);
	mbedtls_pk_init(&key);
	mbedtls_x509write_csr_init(&wr);

	if ((rc = rl_pki_check_cn(cn)) != RL_OK)
		goto cleanup;
	if ((rc = rl_pki_load_key(key_path, &key)) != RL_OK || (rc = rl_pki_rng_seed(&rng)) != RL_OK)
		goto cleanup;
	snprintf(subject, sizeof(subject), "CN=%s", cn);
	mbedtls_x509write_csr_set_key(&wr, &key);
	mbedtls_x509write_csr_set_md_alg(&wr, MBEDTLS_MD_SHA256);
	if ((ret = mbedtls_x509write_csr_set_subject_name(&wr, subject)) != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "setting the CSR's subject");
		goto cleanup;
	}
	ret = mbedtls_x509write_csr_pem(&wr, pem, sizeof(pem), mbedtls_ctr_drbg_random, &rng.drbg);
	if (ret != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "signing the CSR");
		goto cleanup;
	}
	if (!(*csr_pem = strdup((const char *)pem)))
		rc = rl_error_set(RL_ENOMEM, "out of memory");
cleanup:
	mbedtls_x509write_csr_free(&wr);
	mbedtls_pk_free(&key);
	rl_pki_rng_free(&rng);
	return rc;
}

int rl_pki_csr_subject_cn(const char *csr_pem, char *cn, size_t cnsz)
{
	mbedtls_x509_csr csr;
	int rc;

	mbedtls_x509_csr_init(&csr);
	if (cnsz > 0)
		cn[0] = '\0';
	if ((rc = rl_pki_csr_load(csr_pem, &csr)) == RL_OK)
		rc = rl_pki_name_cn(&csr.subject, cn, cnsz);
	mbedtls_x509_csr_free(&csr);
	return rc;
}

int rl_pki_csr_key_hash(const char *csr_pem, char out[RL_FINGERPRINT_BUFSZ])
{
	mbedtls_x509_csr csr;
	unsigned char der[1024], digest[32];
	int rc, n;

	out[0] = '\0';
	mbedtls_x509_csr_init(&csr);
	if ((rc = rl_pki_csr_load(csr_pem, &csr)) == RL_OK) {
		/* Written at the end of the buffer; n bytes. */
		if ((n = mbedtls_pk_write_pubkey_der(&csr.pk, der, sizeof(der))) <= 0)
			rc = rl_pki_mbed_error(RL_EINVALID, n, "reading the CSR's key");
		else if ((n = mbedtls_sha256_ret(der + sizeof(der) - (size_t)n, (size_t)n, digest,
						 0)) != 0)
			rc = rl_pki_mbed_error(RL_ERROR, n, "hashing the CSR's key");
		else
			rl_pki_hex(digest, sizeof(digest), out);
	}
	mbedtls_x509_csr_free(&csr);
	return rc;
}

int rl_pki_sign_opts_check(const struct rl_pki_sign_opts *opts)
{
	unsigned char ip[16];
	size_t i;
	int rc;

	if (!opts)
		return rl_error_set(RL_EINVALID, "no signing options");
	if ((rc = rl_pki_check_cn(opts->subject_cn)) != RL_OK)
		return rc;
	if (opts->days < 1 || opts->days > RL_PKI_DAYS_MAX)
		return rl_error_set(RL_EINVALID, "validity of %d days is out of range", opts->days);
	if (opts->serial == 0)
		return rl_error_set(RL_EINVALID, "serial number must be > 0");
	if (opts->nsans > RL_PKI_SANS_MAX || (opts->nsans > 0 && !opts->sans))
		return rl_error_set(RL_EINVALID, "at most %d subjectAltNames", RL_PKI_SANS_MAX);
	for (i = 0; i < opts->nsans; i++) {
		const char *s = opts->sans[i];
		if (!s || (!rl_pki_ip_parse(s, ip) && !rl_pki_dns_valid(s)))
			return rl_error_set(RL_EINVALID,
					    "'%.80s' is neither a host name nor an IP address",
					    s ? s : "(null)");
	}
	return RL_OK;
}

int rl_pki_sign_csr(const char *ca_key_path, const char *ca_cert_path, const char *csr_pem,
		    const struct rl_pki_sign_opts *opts, char **cert_pem)
{
	struct rl_pki_rng rng;
	mbedtls_pk_context ca_key;
	mbedtls_x509_crt ca_crt, issued;
	mbedtls_x509_csr csr;
	mbedtls_x509write_cert wr;
	mbedtls_mpi serial;
	unsigned char sbytes[8], *ext = NULL, *pem = NULL;
	unsigned char ekubuf[64], sanbuf[RL_PKI_SANS_MAX * (RL_PKI_DNS_MAX + 8) + 16];
	char subject[RL_PKI_SUBJ_MAX], issuer[512], info[512];
	uint32_t flags = 0;
	size_t extlen = 0, i;
	int ret, rc;

	*cert_pem = NULL;
	rl_pki_rng_init(&rng);
	mbedtls_pk_init(&ca_key);
	mbedtls_x509_crt_init(&ca_crt);
	mbedtls_x509_crt_init(&issued);
	mbedtls_x509_csr_init(&csr);
	mbedtls_x509write_crt_init(&wr);
	mbedtls_mpi_init(&serial);

	if ((rc = rl_pki_sign_opts_check(opts)) != RL_OK)
		goto cleanup;
	if ((rc = rl_pki_load_key(ca_key_path, &ca_key)) != RL_OK ||
	    (rc = rl_pki_load_cert(ca_cert_path, &ca_crt)) != RL_OK)
		goto cleanup;
	if (!ca_crt.ca_istrue) {
		rc = rl_error_set(RL_EINVALID, "'%s' is not a CA certificate", ca_cert_path);
		goto cleanup;
	}
	if ((ret = mbedtls_pk_check_pair(&ca_crt.pk, &ca_key)) != 0) {
		rc = rl_pki_mbed_error(RL_EINVALID, ret, "the CA key does not match the CA certificate");
		goto cleanup;
	}
	if ((rc = rl_pki_csr_load(csr_pem, &csr)) != RL_OK)
		goto cleanup;
	/* Only P-256 keys: the TLS configuration offers no other curve. */
	if (mbedtls_pk_get_type(&csr.pk) != MBEDTLS_PK_ECKEY ||
	    mbedtls_pk_ec(csr.pk)->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
		rc = rl_error_set(RL_EINVALID, "the CSR's key is not a P-256 key");
		goto cleanup;
	}
	if ((rc = rl_pki_rng_seed(&rng)) != RL_OK)
		goto cleanup;

	/* The issuer must equal the CA's subject for chain building; mbedTLS
	 * 2.28 takes names only as strings, so print the CA's and parse it
	 * back. The self-check at the end catches any drift. */
	if ((ret = mbedtls_x509_dn_gets(issuer, sizeof(issuer), &ca_crt.subject)) < 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "reading the CA's subject");
		goto cleanup;
	}
	snprintf(subject, sizeof(subject), "CN=%s,O=Relasi", opts->subject_cn);
	for (i = 0; i < sizeof(sbytes); i++)
		sbytes[i] = (unsigned char)(opts->serial >> (56 - 8 * i));
	if ((ret = mbedtls_mpi_read_binary(&serial, sbytes, sizeof(sbytes))) != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "setting the serial number");
		goto cleanup;
	}

	mbedtls_x509write_crt_set_version(&wr, MBEDTLS_X509_CRT_VERSION_3);
	mbedtls_x509write_crt_set_md_alg(&wr, MBEDTLS_MD_SHA256);
	mbedtls_x509write_crt_set_subject_key(&wr, &csr.pk);
	mbedtls_x509write_crt_set_issuer_key(&wr, &ca_key);
	if ((ret = mbedtls_x509write_crt_set_subject_name(&wr, subject)) != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "setting the subject");
		goto cleanup;
	}
	if ((ret = mbedtls_x509write_crt_set_issuer_name(&wr, issuer)) != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "setting the issuer");
		goto cleanup;
	}
	if ((ret = mbedtls_x509write_crt_set_serial(&wr, &serial)) != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "setting the serial number");
		goto cleanup;
	}
	if ((rc = rl_pki_set_validity(&wr, opts->days, opts->now)) != RL_OK)
		goto cleanup;
	if ((ret = mbedtls_x509write_crt_set_basic_constraints(&wr, 0, -1)) != 0 ||
	    (ret = mbedtls_x509write_crt_set_key_usage(&wr, MBEDTLS_X509_KU_DIGITAL_SIGNATURE |
						       MBEDTLS_X509_KU_KEY_AGREEMENT)) != 0 ||
	    (ret = mbedtls_x509write_crt_set_subject_key_identifier(&wr)) != 0 ||
	    (ret = mbedtls_x509write_crt_set_authority_key_identifier(&wr)) != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "setting the certificate's extensions");
		goto cleanup;
	}
	if ((rc = rl_pki_eku_der(opts->server, ekubuf, sizeof(ekubuf), &ext, &extlen)) != RL_OK)
		goto cleanup;
	ret = mbedtls_x509write_crt_set_extension(&wr, MBEDTLS_OID_EXTENDED_KEY_USAGE,
						  MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE), 0,
						  ext, extlen);
	if (ret != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "adding extendedKeyUsage");
		goto cleanup;
	}
	if (opts->nsans > 0) {
		rc = rl_pki_san_der(opts->sans, opts->nsans, sanbuf, sizeof(sanbuf), &ext, &extlen);
		if (rc != RL_OK)
			goto cleanup;
		ret = mbedtls_x509write_crt_set_extension(&wr, MBEDTLS_OID_SUBJECT_ALT_NAME,
							  MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME),
							  0, ext, extlen);
		if (ret != 0) {
			rc = rl_pki_mbed_error(RL_ERROR, ret, "adding subjectAltName");
			goto cleanup;
		}
	}
	if (!(pem = malloc(RL_PKI_PEM_MAX))) {
		rc = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	ret = mbedtls_x509write_crt_pem(&wr, pem, RL_PKI_PEM_MAX, mbedtls_ctr_drbg_random,
					&rng.drbg);
	if (ret != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "signing the certificate");
		goto cleanup;
	}

	/* Self-check: what we issue must parse and chain to the CA, or a
	 * device would only find out at its first handshake. */
	ret = mbedtls_x509_crt_parse(&issued, pem, strlen((const char *)pem) + 1);
	if (ret != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "parsing the issued certificate");
		goto cleanup;
	}
	ret = mbedtls_x509_crt_verify(&issued, &ca_crt, NULL, NULL, &flags, NULL, NULL);
	/* Issued for another "now" (opts->now: tests and drills of an expired
	 * certificate), it may lie outside its validity at the clock's time;
	 * everything else must hold. */
	if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED && opts->now &&
	    (flags & ~(uint32_t)(MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE)) == 0)
		ret = 0;
	if (ret != 0) {
		if (mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags) < 0)
			info[0] = '\0';
		info[strcspn(info, "\n")] = '\0';
		rc = rl_error_set(RL_ERROR, "the issued certificate does not verify against '%s': %s",
				  ca_cert_path, info[0] ? info : "unknown reason");
		goto cleanup;
	}
	if (!(*cert_pem = strdup((const char *)pem)))
		rc = rl_error_set(RL_ENOMEM, "out of memory");
cleanup:
	free(pem);
	mbedtls_mpi_free(&serial);
	mbedtls_x509write_crt_free(&wr);
	mbedtls_x509_csr_free(&csr);
	mbedtls_x509_crt_free(&issued);
	mbedtls_x509_crt_free(&ca_crt);
	mbedtls_pk_free(&ca_key);
	rl_pki_rng_free(&rng);
	return rc;
}

/* ---- fingerprints ---- */

/* An X.509 time as seconds since the epoch (UTC): days from the civil
 * date (the proleptic Gregorian calendar), without timegm or TZ. */
static int64_t rl_pki_epoch(const mbedtls_x509_time *t)
{
	int64_t y = t->year - (t->mon <= 2), era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400, m = t->mon;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + t->day - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	int64_t days = era * 146097 + doe - 719468;

	return days * 86400 + t->hour * 3600 + t->min * 60 + t->sec;
}

int rl_pki_cert_info_file(const char *path, struct rl_pki_cert_info *info)
{
	const mbedtls_x509_sequence *san;
	mbedtls_x509_crt crt;
	char *pem = NULL;
	int rc, ret;

	memset(info, 0, sizeof(*info));
	if ((rc = rl_pki_read_file(path, &pem)) != RL_OK)
		return rc;
	mbedtls_x509_crt_init(&crt);
	if ((ret = mbedtls_x509_crt_parse(&crt, (const unsigned char *)pem, strlen(pem) + 1)) != 0) {
		rc = rl_pki_mbed_error(RL_EINVALID, ret, path);
		goto cleanup;
	}
	info->not_before = rl_pki_epoch(&crt.valid_from);
	info->not_after = rl_pki_epoch(&crt.valid_to);
	if (rl_pki_name_cn(&crt.subject, info->cn, sizeof(info->cn)) != RL_OK)
		info->cn[0] = '\0';
	for (san = &crt.subject_alt_names; san && san->buf.p && info->nsans < RL_PKI_SANS_MAX;
	     san = san->next) {
		int tag = san->buf.tag & 0x1F;
		char *out = info->sans[info->nsans];
		if (tag == 2 && san->buf.len < RL_PKI_NAME_MAX) {        /* dNSName */
			memcpy(out, san->buf.p, san->buf.len);
			out[san->buf.len] = '\0';
		} else if (tag == 7 && (san->buf.len == 4 || san->buf.len == 16)) { /* iPAddress */
			if (!inet_ntop(san->buf.len == 4 ? AF_INET : AF_INET6, san->buf.p, out,
				       RL_PKI_NAME_MAX))
				continue;
		} else {
			continue;
		}
		info->nsans++;
	}
	rc = RL_OK;
cleanup:
	mbedtls_x509_crt_free(&crt);
	free(pem);
	return rc;
}

int rl_pki_cert_der(const char *cert_pem, unsigned char **der, size_t *len,
		    char fp[RL_FINGERPRINT_BUFSZ])
{
	unsigned char digest[32];
	mbedtls_x509_crt crt;
	int ret, rc = RL_OK;

	mbedtls_x509_crt_init(&crt);
	fp[0] = '\0';
	if (der)
		*der = NULL;
	if (!cert_pem) {
		rc = rl_error_set(RL_EINVALID, "no certificate given");
		goto cleanup;
	}
	ret = mbedtls_x509_crt_parse(&crt, (const unsigned char *)cert_pem, strlen(cert_pem) + 1);
	if (ret != 0) {
		rc = ret > 0 ? rl_error_set(RL_EINVALID, "%d certificate(s) failed to parse", ret)
			     : rl_pki_mbed_error(RL_EINVALID, ret, "parsing the certificate");
		goto cleanup;
	}
	if ((ret = mbedtls_sha256_ret(crt.raw.p, crt.raw.len, digest, 0)) != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "hashing the certificate");
		goto cleanup;
	}
	if (der) {
		if (!(*der = malloc(crt.raw.len))) {
			rc = rl_error_set(RL_ENOMEM, "out of memory");
			goto cleanup;
		}
		memcpy(*der, crt.raw.p, crt.raw.len);
		*len = crt.raw.len;
	}
	rl_pki_hex(digest, sizeof(digest), fp);
cleanup:
	mbedtls_x509_crt_free(&crt);
	return rc;
}

int rl_pki_fingerprint_pem(const char *cert_pem, char out[RL_FINGERPRINT_BUFSZ])
{
	return rl_pki_cert_der(cert_pem, NULL, NULL, out);
}

int rl_pki_fingerprint_file(const char *path, char out[RL_FINGERPRINT_BUFSZ])
{
	char *pem = NULL;
	int rc;

	out[0] = '\0';
	if ((rc = rl_pki_read_file(path, &pem)) != RL_OK)
		return rc;
	if ((rc = rl_pki_fingerprint_pem(pem, out)) != RL_OK)
		rl_error_prefix("'%s'", path);
	free(pem);
	return rc;
}

/* ---- signatures (offline bundles) ---- */

int rl_pki_sign_data(const char *key_path, const unsigned char *data, size_t len,
		     unsigned char *sig, size_t *siglen)
{
	unsigned char hash[32];
	unsigned char buf[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
	struct rl_pki_rng rng;
	mbedtls_pk_context pk;
	size_t n = 0;
	int ret, rc;

	*siglen = 0;
	mbedtls_pk_init(&pk);
	rl_pki_rng_init(&rng);
	if ((rc = rl_pki_rng_seed(&rng)) != RL_OK || (rc = rl_pki_load_key(key_path, &pk)) != RL_OK)
		goto cleanup;
	if ((ret = mbedtls_sha256_ret(data, len, hash, 0)) != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "hashing the data to sign");
		goto cleanup;
	}
	if ((ret = mbedtls_pk_sign(&pk, MBEDTLS_MD_SHA256, hash, sizeof(hash), buf, &n,
				   mbedtls_ctr_drbg_random, &rng.drbg)) != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "signing");
		goto cleanup;
	}
	/* An ECDSA P-256 signature in DER is at most 72 bytes. */
	if (n > RL_PKI_SIG_MAX) {
		rc = rl_error_set(RL_ERROR, "signature of %zu bytes is larger than expected", n);
		goto cleanup;
	}
	memcpy(sig, buf, n);
	*siglen = n;
cleanup:
	mbedtls_pk_free(&pk);
	rl_pki_rng_free(&rng);
	return rc;
}

/* Parse exactly one certificate from a PEM buffer of len bytes (not
 * necessarily NUL-terminated: it comes out of an archive). */
static int rl_pki_parse_one(const char *pem, size_t len, mbedtls_x509_crt *crt)
{
	char *copy;
	int ret;

	if (len == 0 || len > RL_PKI_PEM_MAX)
		return rl_error_set(RL_EINVALID, "a certificate of %zu bytes (limit %d)", len,
				    RL_PKI_PEM_MAX);
	if (!(copy = malloc(len + 1)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	memcpy(copy, pem, len);
	copy[len] = '\0';
	/* PEM parsing needs the terminating NUL counted in the length. */
	ret = mbedtls_x509_crt_parse(crt, (const unsigned char *)copy, strlen(copy) + 1);
	free(copy);
	if (ret != 0)
		return ret > 0 ? rl_error_set(RL_EINVALID, "the certificate does not parse")
			       : rl_pki_mbed_error(RL_EINVALID, ret, "parsing the certificate");
	if (crt->next)
		return rl_error_set(RL_EINVALID, "more than one certificate where one was expected");
	return RL_OK;
}

int rl_pki_cert_check(const char *ca_path, const char *cert_pem, size_t len, char *cn,
		      size_t cnsz, char fp[RL_FINGERPRINT_BUFSZ])
{
	mbedtls_x509_crt ca, crt;
	unsigned char digest[32];
	uint32_t flags = 0;
	char info[256];
	int ret, rc;

	cn[0] = '\0';
	fp[0] = '\0';
	mbedtls_x509_crt_init(&ca);
	mbedtls_x509_crt_init(&crt);
	if ((rc = rl_pki_load_cert(ca_path, &ca)) != RL_OK ||
	    (rc = rl_pki_parse_one(cert_pem, len, &crt)) != RL_OK)
		goto cleanup;
	if (ca.next) {
		rc = rl_error_set(RL_EINVALID, "'%s' holds more than one certificate", ca_path);
		goto cleanup;
	}
	/* No name check (NULL CN): who the signer is comes from its CN below. */
	if ((ret = mbedtls_x509_crt_verify(&crt, &ca, NULL, NULL, &flags, NULL, NULL)) != 0) {
		if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED)
			rc = rl_error_set(RL_EAUTH, "the certificate is not issued by this CA "
					  "(another hub's?)");
		else if (mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags) > 0)
			rc = rl_error_set(RL_EAUTH, "the certificate is not valid: %.*s",
					  (int)strcspn(info, "\n"), info);
		else
			rc = rl_pki_mbed_error(RL_EAUTH, ret, "the certificate is not valid");
		goto cleanup;
	}
	if ((rc = rl_pki_name_cn(&crt.subject, cn, cnsz)) != RL_OK)
		goto cleanup;
	if ((ret = mbedtls_sha256_ret(crt.raw.p, crt.raw.len, digest, 0)) != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "hashing the certificate");
		goto cleanup;
	}
	rl_pki_hex(digest, sizeof(digest), fp);
cleanup:
	mbedtls_x509_crt_free(&crt);
	mbedtls_x509_crt_free(&ca);
	return rc;
}

int rl_pki_verify_data(const char *cert_pem, size_t cert_len, const unsigned char *data,
		       size_t len, const unsigned char *sig, size_t siglen)
{
	mbedtls_x509_crt crt;
	unsigned char hash[32];
	int ret, rc;

	mbedtls_x509_crt_init(&crt);
	if ((rc = rl_pki_parse_one(cert_pem, cert_len, &crt)) != RL_OK)
		goto cleanup;
	if ((ret = mbedtls_sha256_ret(data, len, hash, 0)) != 0) {
		rc = rl_pki_mbed_error(RL_ERROR, ret, "hashing the signed data");
		goto cleanup;
	}
	if (siglen == 0 || siglen > RL_PKI_SIG_MAX ||
	    mbedtls_pk_verify(&crt.pk, MBEDTLS_MD_SHA256, hash, sizeof(hash), sig, siglen) != 0)
		rc = rl_error_set(RL_EAUTH, "the signature does not verify (the bundle was changed, "
				  "or signed with another key than its certificate's)");
cleanup:
	mbedtls_x509_crt_free(&crt);
	return rc;
}
