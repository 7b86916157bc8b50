/*
 * relasi/token.h — reading an enrolment token on the device.
 *
 * A token is "rl1." + base64url(JSON {a: "HOST:PORT", n: server name,
 * f: SHA-256 of the hub's server CA certificate, c: that certificate (DER,
 * base64url), i: token id, s: secret}). Decoding checks the size, the
 * prefix, the JSON, and that the certificate carried matches the
 * fingerprint carried, so a mangled token fails here and not at the hub.
 */
#ifndef RELASI_TOKEN_H
#define RELASI_TOKEN_H

#include "relasi/pki.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Tokens longer than this are refused before decoding. */
#define RL_TOKEN_MAX 8192

struct rl_token {
	char host[256];
	int port;
	char server_name[256];
	char fingerprint[RL_FINGERPRINT_BUFSZ];
	char *ca_pem;         /* malloc'd PEM of the hub's server CA */
};

/* RL_OK or RL_EINVALID naming what is wrong. Free with rl_token_clear. */
int rl_token_decode(const char *token, struct rl_token *out);
void rl_token_clear(struct rl_token *t);

#ifdef __cplusplus
}
#endif
#endif
