/*
 * relasi/conn.h — the byte stream the sync protocol runs over, behind one
 * small interface (as Redis and curl do), with two implementations:
 *   - mutual TLS over TCP (mbedTLS 2.28): TLS 1.2 (the newest 2.28 offers; no
 *     1.0/1.1); ECDHE with AES-GCM or ChaCha20-Poly1305 only;
 *     X25519 preferred; certificates required and verified both ways;
 *     TCP_NODELAY (without it a handshake stalls ~85 ms on these machines);
 *     no session tickets or cache, so every connection is fully verified;
 *   - an in-memory pipe pair, so tests can run the protocol without sockets.
 * Every read and write has a timeout; nothing blocks forever.
 *
 * Errors: RL_ETIMEOUT (the peer was too slow), RL_ECLOSED (the peer closed,
 * or the connection was cut), RL_EAUTH (handshake failed: certificate not
 * trusted, revoked, wrong CA, wrong pin — the message says which), RL_EIO
 * (socket errors), RL_ERROR (other mbedTLS failures, with its text).
 */
#ifndef RELASI_CONN_H
#define RELASI_CONN_H

#include <stddef.h>

#include "relasi/pki.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rl_conn rl_conn;

/* Read exactly len bytes within timeout_ms in all (one deadline for the
 * whole read, however the bytes trickle in). RL_ETIMEOUT when it passes. */
int rl_conn_read(rl_conn *c, void *buf, size_t len, int timeout_ms);
/* Write all len bytes (timeout_ms for the whole write). */
int rl_conn_write(rl_conn *c, const void *buf, size_t len, int timeout_ms);
/* Close (TLS close_notify where possible) and free. NULL is a no-op. */
void rl_conn_close(rl_conn *c);
/* Bytes read and written so far (for the hub's log and the benchmarks). */
void rl_conn_counters(const rl_conn *c, unsigned long long *in, unsigned long long *out);

/* In-memory, thread-safe connected pair; closing one end makes the other's
 * reads return RL_ECLOSED once drained. */
int rl_conn_pipe(rl_conn **a, rl_conn **b);

/* ---- TLS ---- */

typedef struct rl_tls_server rl_tls_server;

/*
 * Called during the handshake with the verified client certificate's subject
 * CN and SHA-256 fingerprint; return 0 to accept, non-zero to refuse (e.g.
 * revoked). ctx is the pointer given to rl_tls_server_new.
 */
typedef int (*rl_tls_peer_check)(void *ctx, const char *cn, const char *fingerprint);

/*
 * A server configuration: its certificate chain and key, and the CA that
 * device certificates must chain to. Shared read-only by all connections.
 */
int rl_tls_server_new(rl_tls_server **out, const char *cert_path, const char *key_path,
		      const char *client_ca_path, rl_tls_peer_check check, void *check_ctx);
void rl_tls_server_free(rl_tls_server *srv);

/*
 * Run the server side of a handshake on an accepted socket fd (the
 * connection takes ownership of fd, also on failure). On success *out is the
 * connection and peer_cn / peer_fp hold the client certificate's CN and
 * fingerprint. The whole handshake must finish within timeout_ms.
 *
 * A client certificate that is presented must verify against the client CA
 * and pass the peer check, or the handshake fails (RL_EAUTH). A client may
 * also present none: the handshake then succeeds with peer_cn = "" and the
 * caller must treat the connection as unauthenticated (Relasi accepts a
 * single bounded enrolment request on such a connection and nothing else),
 * so that enrolment needs no second port.
 */
int rl_tls_server_handshake(rl_tls_server *srv, int fd, int timeout_ms, rl_conn **out,
			    char *peer_cn, size_t cnsz, char peer_fp[RL_FINGERPRINT_BUFSZ]);

struct rl_tls_client_opts {
	const char *host;            /* address to connect to: name or IP literal */
	int port;
	const char *server_name;     /* name to verify in the hub's certificate (SAN) */
	const char *ca_path;         /* the hub's server CA */
	const char *ca_fingerprint;  /* pinned SHA-256 of ca_path's certificate; NULL: not pinned */
	const char *cert_path;       /* this device's certificate */
	const char *key_path;        /* this device's key */
	int timeout_ms;              /* connect + handshake */
};

/* Connect over TCP and complete the TLS handshake. */
int rl_tls_connect(rl_conn **out, const struct rl_tls_client_opts *opts);

/*
 * Connect with server verification but without a client certificate: only
 * for enrolment, where the device proves itself with its one-time token.
 */
int rl_tls_connect_anonymous(rl_conn **out, const struct rl_tls_client_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
