/*
 * fuzz_token.c — the enrolment token decoder on the device
 * (sync/src/token.c, rl_token_decode): "rl1." + base64url(JSON {a, n, f, c,
 * i, s}) as a rep pastes it into `relasi enroll TOKEN`. The input is the
 * token text (cut at the first NUL, as a command-line argument would be).
 *
 * Asserts:
 *  - on error: RL_EINVALID (or RL_ETOOBIG) with a message, and the output
 *    struct cleared (no CA PEM left behind, nothing leaked);
 *  - on success: a non-empty host and server name, a port 1..65535, a
 *    64-hex-digit fingerprint that is the SHA-256 of the CA certificate
 *    handed out (re-computed here);
 *  - round trip: a token re-encoded from what was decoded (the way
 *    relasi-hub writes one, hub/people.c) decodes to the same host, port,
 *    server name, fingerprint and CA certificate.
 */
#include "fuzz_util.h"

#include <string.h>

#include <mbedtls/base64.h>

#include "relasi/error.h"
#include "relasi/pki.h"
#include "relasi/token.h"

static char *b64url(const unsigned char *in, size_t len)
{
	size_t need = 0, i;
	char *out;

	mbedtls_base64_encode(NULL, 0, &need, in, len);
	out = malloc(need + 1);
	FZ_CHECK(out != NULL, "out of memory");
	FZ_CHECK(mbedtls_base64_encode((unsigned char *)out, need + 1, &need, in, len) == 0, "b64");
	for (i = 0; i < need; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	while (need && out[need - 1] == '=')
		need--;
	out[need] = '\0';
	return out;
}

/* The DER bytes of a one-certificate PEM (the body between the markers). */
static unsigned char *pem_to_der(const char *pem, size_t *derlen)
{
	const char *b = strstr(pem, "-----BEGIN CERTIFICATE-----\n");
	const char *e = b ? strstr(b, "-----END CERTIFICATE-----") : NULL;
	char *body;
	unsigned char *der;
	size_t k = 0, need = 0;
	const char *p;

	FZ_CHECK(b && e, "the decoded CA is not one PEM certificate:\n%s", pem);
	body = malloc((size_t)(e - b) + 1);
	FZ_CHECK(body != NULL, "out of memory");
	for (p = b + strlen("-----BEGIN CERTIFICATE-----\n"); p < e; p++)
		if (*p != '\n')
			body[k++] = *p;
	body[k] = '\0';
	mbedtls_base64_decode(NULL, 0, &need, (unsigned char *)body, k);
	der = malloc(need + 1);
	FZ_CHECK(der != NULL, "out of memory");
	FZ_CHECK(mbedtls_base64_decode(der, need + 1, derlen, (unsigned char *)body, k) == 0,
		 "the decoded CA's PEM is not base64");
	free(body);
	return der;
}

static char *reencode(const struct rl_token *t)
{
	char addr[300], *ca, *json, *body, *tok;
	unsigned char *der;
	size_t derlen = 0;
	json_t *j;

	if (strchr(t->host, ':'))
		snprintf(addr, sizeof(addr), "[%s]:%d", t->host, t->port);
	else
		snprintf(addr, sizeof(addr), "%s:%d", t->host, t->port);
	der = pem_to_der(t->ca_pem, &derlen);
	ca = b64url(der, derlen);
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "a", addr, "n", t->server_name,
		      "f", t->fingerprint, "c", ca, "i", "00112233445566778899aabbccddeeff",
		      "s", "0011223344556677889900112233445566778899001122334455667788990011");
	FZ_CHECK(j != NULL, "re-encoding: the decoded strings are not JSON strings");
	json = json_dumps(j, JSON_COMPACT);
	FZ_CHECK(json != NULL, "out of memory");
	body = b64url((const unsigned char *)json, strlen(json));
	tok = malloc(strlen(body) + 5);
	FZ_CHECK(tok != NULL, "out of memory");
	memcpy(tok, "rl1.", 4);
	memcpy(tok + 4, body, strlen(body) + 1);
	free(body);
	free(json);
	json_decref(j);
	free(ca);
	free(der);
	return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rl_token t, back;
	char fp[RL_FINGERPRINT_BUFSZ], *text = fz_strndup(data, size), *again;
	int rc;
	size_t i;

	FZ_CHECK(text != NULL, "out of memory");
	memset(&t, 0x5a, sizeof(t));
	rc = rl_token_decode(text, &t);
	free(text);
	if (rc != RL_OK) {
		FZ_CHECK(rc == RL_EINVALID || rc == RL_ETOOBIG, "error code %d", rc);
		FZ_CHECK(rl_error_message()[0], "error without a message");
		FZ_CHECK(t.ca_pem == NULL && t.host[0] == '\0' && t.port == 0,
			 "a failed decode left data behind");
		return 0;
	}
	FZ_CHECK(t.host[0] && t.server_name[0], "empty host '%s' or server name '%s'", t.host,
		 t.server_name);
	FZ_CHECK(t.port >= 1 && t.port <= 65535, "port %d", t.port);
	FZ_CHECK(strlen(t.fingerprint) == 64, "fingerprint '%s'", t.fingerprint);
	for (i = 0; i < 64; i++)
		FZ_CHECK((t.fingerprint[i] >= '0' && t.fingerprint[i] <= '9') ||
			 (t.fingerprint[i] >= 'a' && t.fingerprint[i] <= 'f'), "fingerprint '%s'",
			 t.fingerprint);
	FZ_CHECK(t.ca_pem && rl_pki_fingerprint_pem(t.ca_pem, fp) == RL_OK, "the CA does not parse");
	FZ_CHECK(strcmp(fp, t.fingerprint) == 0, "fingerprint does not match the CA");

	again = reencode(&t);
	rc = rl_token_decode(again, &back);
	FZ_CHECK(rc == RL_OK, "a re-encoded token does not decode (%s): %s", rl_error_message(),
		 again);
	FZ_CHECK(strcmp(t.host, back.host) == 0, "host '%s' came back as '%s'", t.host, back.host);
	FZ_CHECK(t.port == back.port, "port %d came back as %d", t.port, back.port);
	FZ_CHECK(strcmp(t.server_name, back.server_name) == 0, "server name changed");
	FZ_CHECK(strcmp(t.fingerprint, back.fingerprint) == 0, "fingerprint changed");
	FZ_CHECK(strcmp(t.ca_pem, back.ca_pem) == 0, "CA certificate changed");
	free(again);
	rl_token_clear(&back);
	rl_token_clear(&t);
	return 0;
}
