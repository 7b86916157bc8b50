/*
 * token.c — decoding enrolment tokens on the device (relasi/token.h).
 */
#include "relasi/token.h"
#include "relasi/error.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <mbedtls/base64.h>

#define TOKEN_PREFIX "rl1."

/* base64url (no padding) -> bytes; *out malloc'd. */
static int b64url_decode(const char *in, unsigned char **out, size_t *outlen)
{
	size_t len = strlen(in), i, need = 0;
	char *std;
	int rc;

	*out = NULL;
	if (!(std = malloc(len + 4)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	for (i = 0; i < len; i++)
		std[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
	while (i % 4)
		std[i++] = '=';
	rc = mbedtls_base64_decode(NULL, 0, &need, (unsigned char *)std, i);
	if (rc == MBEDTLS_ERR_BASE64_INVALID_CHARACTER || !(*out = malloc(need + 1)) ||
	    mbedtls_base64_decode(*out, need + 1, outlen, (unsigned char *)std, i) != 0) {
		free(std);
		free(*out);
		*out = NULL;
		return rl_error_set(RL_EINVALID, "the token is not valid base64url");
	}
	free(std);
	return RL_OK;
}

void rl_token_clear(struct rl_token *t)
{
	free(t->ca_pem);
	memset(t, 0, sizeof(*t));
}

int rl_token_decode(const char *token, struct rl_token *out)
{
	unsigned char *raw = NULL, *der = NULL;
	size_t rawlen = 0, derlen = 0, pemlen = 0;
	json_t *j = NULL;
	json_error_t jerr;
	const char *a, *n, *f, *c, *colon;
	char fp[RL_FINGERPRINT_BUFSZ], *end;
	int error;
	long port;

	memset(out, 0, sizeof(*out));
	if (strlen(token) > RL_TOKEN_MAX || strncmp(token, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) != 0)
		return rl_error_set(RL_EINVALID, "that is not a Relasi enrolment token (it starts "
				    "with 'rl1.')");
	if ((error = b64url_decode(token + strlen(TOKEN_PREFIX), &raw, &rawlen)) < 0)
		return error;
	if (!(j = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES, &jerr))) {
		error = rl_error_set(RL_EINVALID, "the token is damaged (not JSON)");
		goto cleanup;
	}
	a = json_string_value(json_object_get(j, "a"));
	n = json_string_value(json_object_get(j, "n"));
	f = json_string_value(json_object_get(j, "f"));
	c = json_string_value(json_object_get(j, "c"));
	if (!a || !n || !f || !c || strlen(f) != 64 || strlen(n) >= sizeof(out->server_name) ||
	    !json_is_string(json_object_get(j, "i")) || !json_is_string(json_object_get(j, "s"))) {
		error = rl_error_set(RL_EINVALID, "the token is damaged (fields missing)");
		goto cleanup;
	}
	colon = strrchr(a, ':');
	port = colon ? strtol(colon + 1, &end, 10) : 0;
	if (!colon || *end || port < 1 || port > 65535 || (size_t)(colon - a) >= sizeof(out->host)) {
		error = rl_error_set(RL_EINVALID, "the token's hub address '%s' is not HOST:PORT", a);
		goto cleanup;
	}
	if (a[0] == '[' && colon > a + 1 && colon[-1] == ']')
		snprintf(out->host, sizeof(out->host), "%.*s", (int)(colon - a - 2), a + 1);
	else
		snprintf(out->host, sizeof(out->host), "%.*s", (int)(colon - a), a);
	/* ":7443", "[]:7443", or an empty server name would only fail later,
	 * at connect or in the TLS name check: a mangled token fails here
	 * (relasi/token.h). Found by fuzz/fuzz_token. */
	if (!out->host[0] || !n[0]) {
		error = rl_error_set(RL_EINVALID, "the token's hub address '%s' or server name "
				     "'%s' is empty", a, n);
		goto cleanup;
	}
	out->port = (int)port;
	snprintf(out->server_name, sizeof(out->server_name), "%s", n);
	snprintf(out->fingerprint, sizeof(out->fingerprint), "%s", f);
	if ((error = b64url_decode(c, &der, &derlen)) < 0)
		goto cleanup;
	/* DER -> PEM, the form every tool (and mbedTLS) reads from a file. */
	{
		size_t b64len = 0, i, k = 0;
		unsigned char *b64;
		mbedtls_base64_encode(NULL, 0, &b64len, der, derlen);
		if (!(b64 = malloc(b64len + 1))) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto cleanup;
		}
		mbedtls_base64_encode(b64, b64len + 1, &b64len, der, derlen);
		pemlen = b64len + b64len / 64 + 80;
		if (!(out->ca_pem = malloc(pemlen))) {
			free(b64);
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto cleanup;
		}
		k = (size_t)snprintf(out->ca_pem, pemlen, "-----BEGIN CERTIFICATE-----\n");
		for (i = 0; i < b64len; i++) {
			out->ca_pem[k++] = (char)b64[i];
			if (i % 64 == 63)
				out->ca_pem[k++] = '\n';
		}
		if (b64len % 64)
			out->ca_pem[k++] = '\n';
		snprintf(out->ca_pem + k, pemlen - k, "-----END CERTIFICATE-----\n");
		free(b64);
	}
	if ((error = rl_pki_fingerprint_pem(out->ca_pem, fp)) < 0)
		goto cleanup;
	if (strcmp(fp, out->fingerprint) != 0) {
		error = rl_error_set(RL_EINVALID, "the token is damaged: its CA certificate does not "
				     "match its fingerprint");
		goto cleanup;
	}
cleanup:
	json_decref(j);
	free(raw);
	free(der);
	if (error < 0)
		rl_token_clear(out);
	return error;
}
