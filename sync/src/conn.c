/*
 * conn.c — the byte stream under the sync protocol (see relasi/conn.h): one
 * small vtable, an in-memory pipe pair for tests, and mutual TLS 1.2 over
 * TCP with mbedTLS 2.28.
 *
 * TLS runs on non-blocking sockets. mbedTLS's BIO callbacks never wait; they
 * report WANT_READ / WANT_WRITE and the loops here poll() with what is left
 * of the caller's deadline. That bounds every operation, the handshake
 * included, without signals or SO_RCVTIMEO.
 *
 * A server configuration (rl_tls_server) is shared read-only by the threads
 * running handshakes; everything mutable lives in the per-connection
 * rl_tls_conn. A client connection owns its whole configuration.
 */
#include "relasi/conn.h"
#include "relasi/error.h"
#include "relasi/valid.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RL_PIPE_CAP       (64 * 1024)
#define RL_TLS_CLOSE_MS   200   /* close_notify is a courtesy: never wait long */
#define RL_TLS_LINGER_MS  250   /* see rl_tls_linger() */
#define RL_TLS_CN_MAX     64
#define RL_TLS_IO_MAX     (1 << 20)  /* per mbedtls_ssl_read/write call (returns int) */

/* ---- the interface ---- */

struct rl_conn_ops {
	/* Move at least one byte before the absolute deadline (CLOCK_MONOTONIC
	 * milliseconds) or fail; *n gets the count. */
	int (*read)(rl_conn *c, unsigned char *buf, size_t len, int64_t deadline, size_t *n);
	int (*write)(rl_conn *c, const unsigned char *buf, size_t len, int64_t deadline,
		     size_t *n);
	void (*close)(rl_conn *c);
};

struct rl_conn {
	const struct rl_conn_ops *ops;
	unsigned long long bytes_in, bytes_out;  /* payload only, not TLS framing */
};

static int64_t rl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rl_conn_read(rl_conn *c, void *buf, size_t len, int timeout_ms)
{
	unsigned char *p = buf;
	size_t got = 0;
	int64_t deadline;

	if (!c || (!buf && len > 0) || timeout_ms < 0)
		return rl_error_set(RL_EINVALID, "rl_conn_read: bad arguments");
	/* One deadline for the whole read: a peer dribbling a byte a second
	 * must not hold a connection forever (callers that read large frames
	 * give more time for them, see rl_wire_read). */
	deadline = rl_now_ms() + timeout_ms;
	while (got < len) {
		size_t n = 0;
		int rc = c->ops->read(c, p + got, len - got, deadline, &n);
		if (rc != RL_OK)
			return rc;
		if (n == 0)
			return rl_error_set(RL_ERROR, "connection read made no progress");
		got += n;
		c->bytes_in += n;
	}
	return RL_OK;
}

int rl_conn_write(rl_conn *c, const void *buf, size_t len, int timeout_ms)
{
	const unsigned char *p = buf;
	int64_t deadline;
	size_t done = 0;

	if (!c || (!buf && len > 0) || timeout_ms < 0)
		return rl_error_set(RL_EINVALID, "rl_conn_write: bad arguments");
	deadline = rl_now_ms() + timeout_ms;
	while (done < len) {
		size_t n = 0;
		int rc = c->ops->write(c, p + done, len - done, deadline, &n);
		if (rc != RL_OK)
			return rc;
		if (n == 0)
			return rl_error_set(RL_ERROR, "connection write made no progress");
		done += n;
		c->bytes_out += n;
	}
	return RL_OK;
}

void rl_conn_close(rl_conn *c)
{
	if (c)
		c->ops->close(c);
}

void rl_conn_counters(const rl_conn *c, unsigned long long *in, unsigned long long *out)
{
	if (in)
		*in = c ? c->bytes_in : 0;
	if (out)
		*out = c ? c->bytes_out : 0;
}

/* ---- the in-memory pipe ---- */

struct rl_ring {
	pthread_mutex_t mu;
	pthread_cond_t cv;         /* broadcast on every change: data, space, close */
	unsigned char *buf;
	size_t head, len;          /* len bytes from head, wrapping at RL_PIPE_CAP */
	int writer_gone;           /* the writing end closed: EOF once drained */
	int reader_gone;           /* the reading end closed: writes fail */
};

struct rl_pipe_shared {
	struct rl_ring ring[2];    /* ring[i] carries end i's writes to end 1-i */
	atomic_int refs;
};

struct rl_pipe_end {
	rl_conn base;
	struct rl_pipe_shared *sh;
	int side;
};

/* One wait on the ring's condvar, bounded by deadline. Called locked. */
static int rl_ring_wait(struct rl_ring *r, int64_t deadline)
{
	struct timespec ts;
	int e;

	if (rl_now_ms() >= deadline)
		return RL_ETIMEOUT;
	ts.tv_sec = (time_t)(deadline / 1000);
	ts.tv_nsec = (long)(deadline % 1000) * 1000000L;
	e = pthread_cond_timedwait(&r->cv, &r->mu, &ts);
	return e == 0 || e == ETIMEDOUT ? RL_OK : RL_ERROR;  /* the caller re-checks */
}

static int rl_pipe_read(rl_conn *c, unsigned char *buf, size_t len, int64_t deadline, size_t *n)
{
	struct rl_pipe_end *e = (struct rl_pipe_end *)c;
	struct rl_ring *r = &e->sh->ring[1 - e->side];
	int rc = RL_OK;

	pthread_mutex_lock(&r->mu);
	while (r->len == 0 && !r->writer_gone && rc == RL_OK)
		rc = rl_ring_wait(r, deadline);
	/* Data wins over a timeout that raced with its arrival. */
	if (r->len > 0) {
		size_t k = len < r->len ? len : r->len;
		size_t first = RL_PIPE_CAP - r->head < k ? RL_PIPE_CAP - r->head : k;

		memcpy(buf, r->buf + r->head, first);
		memcpy(buf + first, r->buf, k - first);
		r->head = (r->head + k) % RL_PIPE_CAP;
		r->len -= k;
		*n = k;
		rc = RL_OK;
		pthread_cond_broadcast(&r->cv);
	} else if (rc == RL_OK) {
		rc = RL_ECLOSED;
	}
	pthread_mutex_unlock(&r->mu);
	if (rc == RL_ECLOSED)
		return rl_error_set(RL_ECLOSED, "the other end of the pipe closed");
	if (rc == RL_ETIMEOUT)
		return rl_error_set(RL_ETIMEOUT, "pipe read timed out");
	if (rc != RL_OK)
		return rl_error_set(RL_ERROR, "pipe read: condition wait failed");
	return RL_OK;
}

static int rl_pipe_write(rl_conn *c, const unsigned char *buf, size_t len, int64_t deadline,
			 size_t *n)
{
	struct rl_pipe_end *e = (struct rl_pipe_end *)c;
	struct rl_ring *r = &e->sh->ring[e->side];
	int rc = RL_OK;

	pthread_mutex_lock(&r->mu);
	while (r->len == RL_PIPE_CAP && !r->reader_gone && rc == RL_OK)
		rc = rl_ring_wait(r, deadline);
	if (r->reader_gone) {
		rc = RL_ECLOSED;
	} else if (r->len < RL_PIPE_CAP) {
		size_t room = RL_PIPE_CAP - r->len, k = len < room ? len : room;
		size_t tail = (r->head + r->len) % RL_PIPE_CAP;
		size_t first = RL_PIPE_CAP - tail < k ? RL_PIPE_CAP - tail : k;

		memcpy(r->buf + tail, buf, first);
		memcpy(r->buf, buf + first, k - first);
		r->len += k;
		*n = k;
		rc = RL_OK;
		pthread_cond_broadcast(&r->cv);
	}
	pthread_mutex_unlock(&r->mu);
	if (rc == RL_ECLOSED)
		return rl_error_set(RL_ECLOSED, "the other end of the pipe closed");
	if (rc == RL_ETIMEOUT)
		return rl_error_set(RL_ETIMEOUT, "pipe write timed out");
	if (rc != RL_OK)
		return rl_error_set(RL_ERROR, "pipe write: condition wait failed");
	return RL_OK;
}

static void rl_ring_destroy(struct rl_ring *r)
{
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r->buf);
}

static void rl_pipe_close(rl_conn *c)
{
	struct rl_pipe_end *e = (struct rl_pipe_end *)c;
	struct rl_pipe_shared *sh = e->sh;
	struct rl_ring *out = &sh->ring[e->side], *in = &sh->ring[1 - e->side];

	pthread_mutex_lock(&out->mu);
	out->writer_gone = 1;
	pthread_cond_broadcast(&out->cv);
	pthread_mutex_unlock(&out->mu);
	pthread_mutex_lock(&in->mu);
	in->reader_gone = 1;
	pthread_cond_broadcast(&in->cv);
	pthread_mutex_unlock(&in->mu);
	free(e);
	/* The last end out frees the rings. */
	if (atomic_fetch_sub(&sh->refs, 1) == 1) {
		rl_ring_destroy(&sh->ring[0]);
		rl_ring_destroy(&sh->ring[1]);
		free(sh);
	}
}

static const struct rl_conn_ops rl_pipe_ops = { rl_pipe_read, rl_pipe_write, rl_pipe_close };

/* Deadlines are CLOCK_MONOTONIC so that a wall-clock step cannot stretch or
 * cut a timeout. */
static int rl_ring_init(struct rl_ring *r)
{
	pthread_condattr_t attr;
	int ok;

	memset(r, 0, sizeof(*r));
	if (!(r->buf = malloc(RL_PIPE_CAP)))
		return RL_ENOMEM;
	if (pthread_condattr_init(&attr) != 0) {
		free(r->buf);
		return RL_ERROR;
	}
	ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
	     pthread_cond_init(&r->cv, &attr) == 0;
	pthread_condattr_destroy(&attr);
	if (!ok) {
		free(r->buf);
		return RL_ERROR;
	}
	if (pthread_mutex_init(&r->mu, NULL) != 0) {
		pthread_cond_destroy(&r->cv);
		free(r->buf);
		return RL_ERROR;
	}
	return RL_OK;
}

int rl_conn_pipe(rl_conn **a, rl_conn **b)
{
	struct rl_pipe_shared *sh;
	struct rl_pipe_end *ea, *eb;
	int rc;

	*a = *b = NULL;
	if (!(sh = calloc(1, sizeof(*sh))))
		return rl_error_set(RL_ENOMEM, "out of memory");
	if ((rc = rl_ring_init(&sh->ring[0])) != RL_OK) {
		free(sh);
		return rl_error_set(rc, "cannot create a pipe");
	}
	if ((rc = rl_ring_init(&sh->ring[1])) != RL_OK) {
		rl_ring_destroy(&sh->ring[0]);
		free(sh);
		return rl_error_set(rc, "cannot create a pipe");
	}
	ea = calloc(1, sizeof(*ea));
	eb = calloc(1, sizeof(*eb));
	if (!ea || !eb) {
		free(ea);
		free(eb);
		rl_ring_destroy(&sh->ring[0]);
		rl_ring_destroy(&sh->ring[1]);
		free(sh);
		return rl_error_set(RL_ENOMEM, "out of memory");
	}
	atomic_init(&sh->refs, 2);
	ea->base.ops = eb->base.ops = &rl_pipe_ops;
	ea->sh = eb->sh = sh;
	ea->side = 0;
	eb->side = 1;
	*a = &ea->base;
	*b = &eb->base;
	return RL_OK;
}

/* ---- TLS: shared settings ---- */

/* ECDHE-ECDSA only: every Relasi certificate has a P-256 key. */
static const int rl_tls_ciphersuites[] = {
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	0
};

/* Key exchange prefers X25519; secp256r1 is also the certificates' curve,
 * which mbedTLS checks against this same list. */
static const mbedtls_ecp_group_id rl_tls_curves[] = {
	MBEDTLS_ECP_DP_CURVE25519,
	MBEDTLS_ECP_DP_SECP256R1,
	MBEDTLS_ECP_DP_NONE
};

static const int rl_tls_sig_hashes[] = {
	MBEDTLS_MD_SHA256,
	MBEDTLS_MD_SHA384,
	MBEDTLS_MD_SHA512,
	MBEDTLS_MD_NONE
};

static int rl_tls_mbed_error(int code, int mret, const char *what)
{
	char text[160];

	mbedtls_strerror(mret, text, sizeof(text));
	return rl_error_set(code, "%s: %s (-0x%04x)", what, text, (unsigned)-mret);
}

static void rl_tls_conf_common(mbedtls_ssl_config *conf)
{
	/* TLS 1.2 exactly: 2.28 has nothing newer, and 1.0/1.1 are obsolete. */
	mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_max_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_ciphersuites(conf, rl_tls_ciphersuites);
	mbedtls_ssl_conf_curves(conf, rl_tls_curves);
	mbedtls_ssl_conf_sig_hashes(conf, rl_tls_sig_hashes);
#if defined(MBEDTLS_SSL_RENEGOTIATION)
	mbedtls_ssl_conf_renegotiation(conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
#endif
	/* No tickets (and, on the server, no session cache is configured):
	 * every connection runs the full handshake, so a revoked device is
	 * refused at its next connection, not when a ticket expires. */
#if defined(MBEDTLS_SSL_SESSION_TICKETS) && defined(MBEDTLS_SSL_CLI_C)
	mbedtls_ssl_conf_session_tickets(conf, MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
#endif
}

/* Certificates from a PEM file (bounded read, as in pki.c). */
static int rl_tls_load_certs(const char *path, mbedtls_x509_crt *crt)
{
	char *pem = NULL;
	int ret, rc;

	if ((rc = rl_pki_read_file(path, &pem)) != RL_OK)
		return rc;
	ret = mbedtls_x509_crt_parse(crt, (const unsigned char *)pem, strlen(pem) + 1);
	free(pem);
	if (ret > 0)
		return rl_error_set(RL_EINVALID, "'%s': %d certificate(s) failed to parse", path, ret);
	if (ret < 0) {
		rc = rl_tls_mbed_error(RL_EINVALID, ret, "parsing certificates");
		rl_error_prefix("'%s'", path);
		return rc;
	}
	return RL_OK;
}

static int rl_tls_load_key(const char *path, mbedtls_pk_context *pk)
{
	char *pem = NULL;
	size_t len;
	int ret, rc;

	if ((rc = rl_pki_read_file(path, &pem)) != RL_OK)
		return rc;
	len = strlen(pem);
	ret = mbedtls_pk_parse_key(pk, (const unsigned char *)pem, len + 1, NULL, 0);
	mbedtls_platform_zeroize(pem, len);
	free(pem);
	if (ret != 0) {
		rc = rl_tls_mbed_error(RL_EINVALID, ret, "parsing the key");
		rl_error_prefix("'%s'", path);
		return rc;
	}
	return RL_OK;
}

/* Own certificate (first in the file) and its key, checked to belong together. */
static int rl_tls_load_pair(const char *cert_path, const char *key_path, mbedtls_x509_crt *crt,
			    mbedtls_pk_context *pk)
{
	int ret, rc;

	if ((rc = rl_tls_load_certs(cert_path, crt)) != RL_OK ||
	    (rc = rl_tls_load_key(key_path, pk)) != RL_OK)
		return rc;
	if ((ret = mbedtls_pk_check_pair(&crt->pk, pk)) != 0) {
		rc = rl_tls_mbed_error(RL_EINVALID, ret, "key does not match certificate");
		rl_error_prefix("'%s' / '%s'", cert_path, key_path);
		return rc;
	}
	return RL_OK;
}

static int rl_tls_fingerprint(const mbedtls_x509_crt *crt, char out[RL_FINGERPRINT_BUFSZ])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char d[32];
	size_t i;

	out[0] = '\0';
	if (mbedtls_sha256_ret(crt->raw.p, crt->raw.len, d, 0) != 0)
		return RL_ERROR;
	for (i = 0; i < sizeof(d); i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 0xf];
	}
	out[64] = '\0';
	return RL_OK;
}

/* The subject CN as printable ASCII; RL_ERROR when absent, empty or odd. */
static int rl_tls_cert_cn(const mbedtls_x509_crt *crt, char *out, size_t outsz)
{
	const mbedtls_x509_name *n;
	size_t i;

	out[0] = '\0';
	for (n = &crt->subject; n; n = n->next) {
		if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) != 0)
			continue;
		if (n->val.len == 0 || n->val.len >= outsz)
			return RL_ERROR;
		for (i = 0; i < n->val.len; i++)
			if (n->val.p[i] < 0x20 || n->val.p[i] > 0x7e)
				return RL_ERROR;
		memcpy(out, n->val.p, n->val.len);
		out[n->val.len] = '\0';
		return RL_OK;
	}
	return RL_ERROR;
}

/* mbedtls_x509_crt_verify_info's lines joined with "; ". */
static void rl_tls_flags_text(uint32_t flags, char *buf, size_t size)
{
	char *p;
	size_t n;

	if (mbedtls_x509_crt_verify_info(buf, size, "", flags) < 0 || buf[0] == '\0') {
		snprintf(buf, size, "verification flags 0x%08x", (unsigned)flags);
		return;
	}
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	for (p = buf; (p = strchr(p, '\n')) != NULL;)
		*p = ';';
}

/* ---- TLS: the connection ---- */

/* What the verify callbacks saw and decided, per handshake. */
struct rl_tls_verify {
	int presented;             /* server: the client sent a certificate */
	int refused;               /* a callback refused; reason says why */
	char reason[384];
	char cn[RL_TLS_CN_MAX + 1];
	char fp[RL_FINGERPRINT_BUFSZ];
	rl_tls_peer_check check;   /* server */
	void *check_ctx;
	unsigned char ip[16];      /* client: server_name as an IP literal */
	size_t iplen;              /* 0: server_name is a DNS name */
	int have_dates;            /* client: the server certificate's validity, */
	mbedtls_x509_time valid_from, valid_to;  /* for an expiry's message */
};

struct rl_tls_conn {
	rl_conn base;
	int fd;
	int established;           /* handshake done: close sends close_notify */
	int broken;                /* TLS state unusable: fatal error or cut write */
	int sock_err;              /* errno seen by the BIO callbacks */
	mbedtls_ssl_context ssl;
	struct rl_tls_verify vfy;
	/* Client connections own their configuration; unused on the server. */
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_ssl_config conf;
	mbedtls_x509_crt ca, cert;
	mbedtls_pk_context key;
};

static int rl_tls_send(void *ctx, const unsigned char *buf, size_t len)
{
	struct rl_tls_conn *t = ctx;

	for (;;) {
		ssize_t n = send(t->fd, buf, len, MSG_NOSIGNAL);
		if (n >= 0)
			return (int)n;  /* mbedTLS never passes more than a record */
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return MBEDTLS_ERR_SSL_WANT_WRITE;
		t->sock_err = errno;
		if (errno == EPIPE || errno == ECONNRESET)
			return MBEDTLS_ERR_NET_CONN_RESET;
		return MBEDTLS_ERR_NET_SEND_FAILED;
	}
}

static int rl_tls_recv(void *ctx, unsigned char *buf, size_t len)
{
	struct rl_tls_conn *t = ctx;

	for (;;) {
		ssize_t n = recv(t->fd, buf, len, 0);
		if (n >= 0)
			return (int)n;  /* 0: EOF, which mbedTLS reports as such */
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return MBEDTLS_ERR_SSL_WANT_READ;
		t->sock_err = errno;
		if (errno == ECONNRESET || errno == EPIPE)
			return MBEDTLS_ERR_NET_CONN_RESET;
		return MBEDTLS_ERR_NET_RECV_FAILED;
	}
}

/* Wait for fd to become ready (POLLIN/POLLOUT) before deadline. Sets no
 * message (rl_conn_close uses it and must not clobber the caller's error);
 * RL_EIO leaves errno set. */
static int rl_fd_wait(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = events };
		int64_t left = deadline - rl_now_ms();
		int r;

		if (left <= 0)
			return RL_ETIMEOUT;
		r = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r > 0)
			return RL_OK;  /* errors and hang-ups surface in the next I/O */
		if (r == 0)
			return RL_ETIMEOUT;
		if (errno != EINTR)
			return RL_EIO;
	}
}

static int rl_tls_wait(struct rl_tls_conn *t, int want, int64_t deadline)
{
	return rl_fd_wait(t->fd, want == MBEDTLS_ERR_SSL_WANT_WRITE ? POLLOUT : POLLIN, deadline);
}

static const char *rl_tls_alert_name(int alert)
{
	switch (alert) {
	case 0: return "close_notify";
	case 10: return "unexpected_message";
	case 20: return "bad_record_mac";
	case 40: return "handshake_failure";
	case 42: return "bad_certificate";
	case 43: return "unsupported_certificate";
	case 44: return "certificate_revoked";
	case 45: return "certificate_expired";
	case 46: return "certificate_unknown";
	case 47: return "illegal_parameter";
	case 48: return "unknown_ca";
	case 49: return "access_denied";
	case 50: return "decode_error";
	case 51: return "decrypt_error";
	case 70: return "protocol_version";
	case 71: return "insufficient_security";
	case 80: return "internal_error";
	case 100: return "no_renegotiation";
	default: return "alert";
	}
}

/* The description of the fatal alert just received. mbedTLS 2.28 has no
 * accessor; the record is still in in_msg (a public member in 2.x). */
static int rl_tls_last_alert(const struct rl_tls_conn *t)
{
	return t->ssl.in_msg ? t->ssl.in_msg[1] : -1;
}

/* Turn an mbedTLS error from the handshake into an RL_ code and message. */
static int rl_tls_handshake_error(struct rl_tls_conn *t, int ret, const char *peer)
{
	char info[384];
	uint32_t flags;
	int alert;

	if (t->vfy.refused)
		return rl_error_set(RL_EAUTH, "%s", t->vfy.reason);
	switch (ret) {
	case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
	case MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE:
		flags = mbedtls_ssl_get_verify_result(&t->ssl);
		/* Right but for its dates: an expired hub certificate, which its
		 * admin renews (relasi-hub cert renew), or a clock far off here.
		 * Said as such, not as a refusal of this device. */
		if (flags != UINT32_MAX && (flags & (MBEDTLS_X509_BADCERT_EXPIRED |
						     MBEDTLS_X509_BADCERT_FUTURE)) &&
		    !(flags & ~(uint32_t)(MBEDTLS_X509_BADCERT_EXPIRED |
					  MBEDTLS_X509_BADCERT_FUTURE)) && t->vfy.have_dates) {
			const mbedtls_x509_time *f = &t->vfy.valid_from, *u = &t->vfy.valid_to;
			char now[21];
			rl_time_format_utc(now, (int64_t)time(NULL));
			return rl_error_set(RL_ECLOCK, "the %s's certificate is valid from "
					    "%04d-%02d-%02dT%02d:%02d:%02dZ to %04d-%02d-%02dT%02d:%02d:%02dZ, "
					    "and this machine's clock says %s: if the clock is right, the "
					    "certificate %s (for the hub: its admin runs 'relasi-hub cert "
					    "renew'; nothing is lost here)", peer,
					    f->year, f->mon, f->day, f->hour, f->min, f->sec,
					    u->year, u->mon, u->day, u->hour, u->min, u->sec, now,
					    (flags & MBEDTLS_X509_BADCERT_EXPIRED) ? "has expired"
					    : "is not valid yet");
		}
		if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED || (flags != 0 && flags != UINT32_MAX)) {
			rl_tls_flags_text(flags, info, sizeof(info));
			return rl_error_set(RL_EAUTH, "the %s's certificate was rejected: %s", peer,
					    info);
		}
		break;
	case MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE:
		alert = rl_tls_last_alert(t);
		/* Certificate-related alerts (and the generic handshake_failure)
		 * mean the peer refused us; anything else is a TLS failure. */
		return rl_error_set((alert == 40 || (alert >= 42 && alert <= 46) || alert == 48 ||
				     alert == 49) ? RL_EAUTH : RL_ERROR,
				    "the %s refused the TLS handshake: alert %s (%d)", peer,
				    rl_tls_alert_name(alert), alert);
	case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
	case MBEDTLS_ERR_SSL_CONN_EOF:
	case MBEDTLS_ERR_NET_CONN_RESET:
		return rl_error_set(RL_ECLOSED, "the %s closed the connection during the TLS handshake",
				    peer);
	case MBEDTLS_ERR_NET_SEND_FAILED:
	case MBEDTLS_ERR_NET_RECV_FAILED:
		return rl_error_set(RL_EIO, "TLS handshake with the %s: %s", peer,
				    strerror(t->sock_err));
	default:
		break;
	}
	snprintf(info, sizeof(info), "TLS handshake with the %s", peer);
	return rl_tls_mbed_error(RL_ERROR, ret, info);
}

static int rl_tls_handshake(struct rl_tls_conn *t, int64_t deadline, const char *peer)
{
	for (;;) {
		int ret = mbedtls_ssl_handshake(&t->ssl), rc;

		if (ret == 0)
			return RL_OK;
		if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
			return rl_tls_handshake_error(t, ret, peer);
		rc = rl_tls_wait(t, ret, deadline);
		if (rc == RL_ETIMEOUT)
			return rl_error_set(RL_ETIMEOUT, "TLS handshake with the %s timed out", peer);
		if (rc != RL_OK)
			return rl_error_set(RL_EIO, "poll: %s", strerror(errno));
	}
}

/* An mbedTLS error after the handshake; the connection is dead after it. */
static int rl_tls_io_error(struct rl_tls_conn *t, int ret, const char *op)
{
	t->broken = 1;
	switch (ret) {
	case 0:
	case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
	case MBEDTLS_ERR_SSL_CONN_EOF:
	case MBEDTLS_ERR_NET_CONN_RESET:
		return rl_error_set(RL_ECLOSED, "TLS %s: the peer closed the connection", op);
	case MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE:
		return rl_error_set(RL_ECLOSED, "TLS %s: the peer aborted with alert %s (%d)", op,
				    rl_tls_alert_name(rl_tls_last_alert(t)), rl_tls_last_alert(t));
	case MBEDTLS_ERR_NET_SEND_FAILED:
	case MBEDTLS_ERR_NET_RECV_FAILED:
		return rl_error_set(RL_EIO, "TLS %s: %s", op, strerror(t->sock_err));
	default:
		return rl_tls_mbed_error(RL_ERROR, ret, op);
	}
}

static int rl_tls_read(rl_conn *c, unsigned char *buf, size_t len, int64_t deadline, size_t *n)
{
	struct rl_tls_conn *t = (struct rl_tls_conn *)c;

	if (t->broken)
		return rl_error_set(RL_ECLOSED, "TLS connection is unusable after an earlier error");
	if (len > RL_TLS_IO_MAX)
		len = RL_TLS_IO_MAX;
	for (;;) {
		int ret = mbedtls_ssl_read(&t->ssl, buf, len), rc;

		if (ret > 0) {
			*n = (size_t)ret;
			return RL_OK;
		}
		if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
			return rl_tls_io_error(t, ret, "read");
		/* A read timeout leaves mbedTLS consistent (a partial record
		 * stays buffered), so the connection remains usable. */
		rc = rl_tls_wait(t, ret, deadline);
		if (rc == RL_ETIMEOUT)
			return rl_error_set(RL_ETIMEOUT, "TLS read timed out");
		if (rc != RL_OK)
			return rl_error_set(RL_EIO, "poll: %s", strerror(errno));
	}
}

static int rl_tls_write(rl_conn *c, const unsigned char *buf, size_t len, int64_t deadline,
			size_t *n)
{
	struct rl_tls_conn *t = (struct rl_tls_conn *)c;

	if (t->broken)
		return rl_error_set(RL_ECLOSED, "TLS connection is unusable after an earlier error");
	if (len > RL_TLS_IO_MAX)
		len = RL_TLS_IO_MAX;
	for (;;) {
		int ret = mbedtls_ssl_write(&t->ssl, buf, len), rc;

		if (ret > 0) {
			*n = (size_t)ret;
			return RL_OK;
		}
		if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
			return rl_tls_io_error(t, ret, "write");
		rc = rl_tls_wait(t, ret, deadline);
		if (rc != RL_OK) {
			/* mbedTLS holds a half-sent record and expects this exact
			 * call again; the caller will not make it, so the stream
			 * cannot continue. */
			t->broken = 1;
			if (rc == RL_ETIMEOUT)
				return rl_error_set(RL_ETIMEOUT, "TLS write timed out");
			return rl_error_set(RL_EIO, "poll: %s", strerror(errno));
		}
	}
}

static struct rl_tls_conn *rl_tls_conn_new(int fd);
static void rl_tls_conn_free(struct rl_tls_conn *t);

static void rl_tls_close(rl_conn *c)
{
	struct rl_tls_conn *t = (struct rl_tls_conn *)c;

	if (t->established && !t->broken) {
		int64_t deadline = rl_now_ms() + RL_TLS_CLOSE_MS;
		for (;;) {
			int ret = mbedtls_ssl_close_notify(&t->ssl);
			if ((ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE) ||
			    rl_tls_wait(t, ret, deadline) != RL_OK)
				break;  /* sent, failed or out of time: all fine now */
		}
	}
	rl_tls_conn_free(t);
}

static const struct rl_conn_ops rl_tls_ops = { rl_tls_read, rl_tls_write, rl_tls_close };

/* Every mbedTLS context of a connection is initialised here and freed in
 * rl_tls_conn_free, whether it was used or not. */
static struct rl_tls_conn *rl_tls_conn_new(int fd)
{
	struct rl_tls_conn *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->base.ops = &rl_tls_ops;
	t->fd = fd;
	mbedtls_ssl_init(&t->ssl);
	mbedtls_entropy_init(&t->entropy);
	mbedtls_ctr_drbg_init(&t->drbg);
	mbedtls_ssl_config_init(&t->conf);
	mbedtls_x509_crt_init(&t->ca);
	mbedtls_x509_crt_init(&t->cert);
	mbedtls_pk_init(&t->key);
	return t;
}

static void rl_tls_conn_free(struct rl_tls_conn *t)
{
	if (!t)
		return;
	mbedtls_ssl_free(&t->ssl);
	mbedtls_pk_free(&t->key);
	mbedtls_x509_crt_free(&t->cert);
	mbedtls_x509_crt_free(&t->ca);
	mbedtls_ssl_config_free(&t->conf);
	mbedtls_ctr_drbg_free(&t->drbg);
	mbedtls_entropy_free(&t->entropy);
	if (t->fd >= 0)
		close(t->fd);
	free(t);
}

/*
 * After a failed handshake the peer may still be sending its flight. Closing
 * a socket with unread data makes the kernel answer with a RST, and a RST
 * can destroy our alert before the peer reads it, turning "certificate
 * refused" into "connection reset" over there. So half-close, drain until
 * the peer closes too (or briefly), then close.
 */
static void rl_tls_linger(int fd)
{
	int64_t deadline = rl_now_ms() + RL_TLS_LINGER_MS;
	unsigned char junk[2048];

	if (fd < 0 || shutdown(fd, SHUT_WR) != 0)
		return;
	while (rl_fd_wait(fd, POLLIN, deadline) == RL_OK) {
		ssize_t n = recv(fd, junk, sizeof(junk), 0);
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK))
			break;
	}
}

static void rl_tls_conn_abort(struct rl_tls_conn *t)
{
	if (t)
		rl_tls_linger(t->fd);
	rl_tls_conn_free(t);
}

/* Non-blocking, and Nagle off: a handshake flight ends in small records
 * that would otherwise wait for the peer's delayed ACK (~40-85 ms a trip). */
static int rl_sock_prepare(int fd)
{
	int one = 1, fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
		return rl_error_set(RL_EIO, "cannot make the socket non-blocking: %s",
				    strerror(errno));
	/* Not TCP (a socketpair in tests): there is no Nagle to turn off. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 &&
	    errno != EOPNOTSUPP && errno != ENOPROTOOPT)
		return rl_error_set(RL_EIO, "cannot set TCP_NODELAY: %s", strerror(errno));
	return RL_OK;
}

/* ---- TLS: server ---- */

struct rl_tls_server {
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	pthread_mutex_t rng_lock;
	mbedtls_ssl_config conf;
	mbedtls_x509_crt cert;
	mbedtls_x509_crt client_ca;
	mbedtls_pk_context key;
	rl_tls_peer_check check;
	void *check_ctx;
};

/* All handshakes draw from the one DRBG. mbedTLS built with THREADING_C
 * locks it internally too; this lock keeps that true for any build. */
static int rl_tls_server_rng(void *ctx, unsigned char *out, size_t len)
{
	struct rl_tls_server *srv = ctx;
	int ret;

	pthread_mutex_lock(&srv->rng_lock);
	ret = mbedtls_ctr_drbg_random(&srv->drbg, out, len);
	pthread_mutex_unlock(&srv->rng_lock);
	return ret;
}

/*
 * mbedTLS 2.28 builds a curve's fixed-point comb table lazily, on the first
 * multiplication by the generator, and stores it in the key's own group
 * (3.x ships the tables precomputed). Two handshakes making that first
 * multiplication with a shared key at once would race on it. So make it
 * here, before any thread sees the configuration: one signature with the
 * server key (ServerKeyExchange) and one verification with each client CA's
 * key (checking device certificates), here a self-signed CA checking itself.
 */
static int rl_tls_server_warm_up(struct rl_tls_server *srv)
{
	unsigned char hash[32] = { 0 }, sig[MBEDTLS_ECDSA_MAX_LEN];
	mbedtls_x509_crt *ca;
	size_t siglen = 0;
	int ret;

	ret = mbedtls_pk_sign(&srv->key, MBEDTLS_MD_SHA256, hash, sizeof(hash), sig, &siglen,
			      rl_tls_server_rng, srv);
	if (ret != 0)
		return rl_tls_mbed_error(RL_ERROR, ret, "test signature with the server key");
	for (ca = &srv->client_ca; ca && ca->raw.p; ca = ca->next) {
		uint32_t flags = 0;
		/* Only the side effect matters: an expired CA fails here and
		 * will fail, with a proper message, in every handshake. */
		(void)mbedtls_x509_crt_verify(ca, &srv->client_ca, NULL, NULL, &flags, NULL, NULL);
	}
	return RL_OK;
}

void rl_tls_server_free(rl_tls_server *srv)
{
	if (!srv)
		return;
	mbedtls_ssl_config_free(&srv->conf);
	mbedtls_pk_free(&srv->key);
	mbedtls_x509_crt_free(&srv->client_ca);
	mbedtls_x509_crt_free(&srv->cert);
	mbedtls_ctr_drbg_free(&srv->drbg);
	mbedtls_entropy_free(&srv->entropy);
	pthread_mutex_destroy(&srv->rng_lock);
	free(srv);
}

int rl_tls_server_new(rl_tls_server **out, const char *cert_path, const char *key_path,
		      const char *client_ca_path, rl_tls_peer_check check, void *check_ctx)
{
	static const char pers[] = "relasi-hub-tls";
	struct rl_tls_server *srv;
	int ret, rc;

	*out = NULL;
	if (!cert_path || !key_path || !client_ca_path)
		return rl_error_set(RL_EINVALID, "server certificate, key and client CA are required");
	if (!(srv = calloc(1, sizeof(*srv))))
		return rl_error_set(RL_ENOMEM, "out of memory");
	if (pthread_mutex_init(&srv->rng_lock, NULL) != 0) {
		free(srv);
		return rl_error_set(RL_ERROR, "cannot create a mutex");
	}
	mbedtls_entropy_init(&srv->entropy);
	mbedtls_ctr_drbg_init(&srv->drbg);
	mbedtls_ssl_config_init(&srv->conf);
	mbedtls_x509_crt_init(&srv->cert);
	mbedtls_x509_crt_init(&srv->client_ca);
	mbedtls_pk_init(&srv->key);
	srv->check = check;
	srv->check_ctx = check_ctx;

	if ((rc = rl_tls_load_pair(cert_path, key_path, &srv->cert, &srv->key)) != RL_OK ||
	    (rc = rl_tls_load_certs(client_ca_path, &srv->client_ca)) != RL_OK)
		goto cleanup;
	ret = mbedtls_ctr_drbg_seed(&srv->drbg, mbedtls_entropy_func, &srv->entropy,
				    (const unsigned char *)pers, sizeof(pers) - 1);
	if (ret != 0) {
		rc = rl_tls_mbed_error(RL_ERROR, ret, "seeding the random generator");
		goto cleanup;
	}
	ret = mbedtls_ssl_config_defaults(&srv->conf, MBEDTLS_SSL_IS_SERVER,
					  MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
	if (ret != 0) {
		rc = rl_tls_mbed_error(RL_ERROR, ret, "TLS server configuration");
		goto cleanup;
	}
	rl_tls_conf_common(&srv->conf);
	/* OPTIONAL, not REQUIRED: a device without a certificate may enrol on
	 * the same port. A certificate that is presented is still checked in
	 * full by rl_tls_verify_client and after the handshake. */
	mbedtls_ssl_conf_authmode(&srv->conf, MBEDTLS_SSL_VERIFY_OPTIONAL);
	mbedtls_ssl_conf_ca_chain(&srv->conf, &srv->client_ca, NULL);
	mbedtls_ssl_conf_rng(&srv->conf, rl_tls_server_rng, srv);
	if ((ret = mbedtls_ssl_conf_own_cert(&srv->conf, &srv->cert, &srv->key)) != 0) {
		rc = rl_tls_mbed_error(RL_ERROR, ret, "setting the server certificate");
		goto cleanup;
	}
	if ((rc = rl_tls_server_warm_up(srv)) != RL_OK)
		goto cleanup;
	*out = srv;
	return RL_OK;
cleanup:
	rl_tls_server_free(srv);
	return rc;
}

/*
 * Called by mbedTLS for each certificate of the client's chain, root first,
 * leaf (depth 0) last. Any flag fails the handshake at once, with our reason
 * kept for the caller; the leaf then goes through the hub's peer check.
 * Returning an error (rather than only setting flags) matters: under
 * VERIFY_OPTIONAL mbedTLS would otherwise carry on with the handshake.
 */
static int rl_tls_verify_client(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
	struct rl_tls_verify *v = ctx;
	char info[256];

	v->presented = 1;
	if (*flags != 0) {
		rl_tls_flags_text(*flags, info, sizeof(info));
		snprintf(v->reason, sizeof(v->reason), "client certificate rejected%s: %s",
			 depth > 0 ? " (in its chain)" : "", info);
		v->refused = 1;
		return MBEDTLS_ERR_X509_CERT_VERIFY_FAILED;
	}
	if (depth != 0)
		return 0;
	/* An empty CN would read as "no certificate" to the caller. */
	if (rl_tls_cert_cn(crt, v->cn, sizeof(v->cn)) != RL_OK) {
		snprintf(v->reason, sizeof(v->reason),
			 "client certificate has no usable CN (printable, 1-%d characters)",
			 RL_TLS_CN_MAX);
		v->refused = 1;
		return MBEDTLS_ERR_X509_CERT_VERIFY_FAILED;
	}
	if (rl_tls_fingerprint(crt, v->fp) != RL_OK) {
		snprintf(v->reason, sizeof(v->reason), "cannot hash the client certificate");
		v->refused = 1;
		return MBEDTLS_ERR_X509_CERT_VERIFY_FAILED;
	}
	if (v->check && v->check(v->check_ctx, v->cn, v->fp) != 0) {
		snprintf(v->reason, sizeof(v->reason),
			 "client certificate CN=%s (%.16s...) is revoked or not accepted by the hub",
			 v->cn, v->fp);
		v->refused = 1;
		return MBEDTLS_ERR_X509_CERT_VERIFY_FAILED;
	}
	return 0;
}

int rl_tls_server_handshake(rl_tls_server *srv, int fd, int timeout_ms, rl_conn **out,
			    char *peer_cn, size_t cnsz, char peer_fp[RL_FINGERPRINT_BUFSZ])
{
	struct rl_tls_conn *t;
	int64_t deadline;
	uint32_t flags;
	char info[256];
	int ret, rc;

	*out = NULL;
	if (peer_cn && cnsz > 0)
		peer_cn[0] = '\0';
	if (peer_fp)
		peer_fp[0] = '\0';
	if (!srv || fd < 0 || timeout_ms <= 0) {
		if (fd >= 0)
			close(fd);
		return rl_error_set(RL_EINVALID, "rl_tls_server_handshake: bad arguments");
	}
	deadline = rl_now_ms() + timeout_ms;
	if (!(t = rl_tls_conn_new(fd))) {
		close(fd);
		return rl_error_set(RL_ENOMEM, "out of memory");
	}
	t->vfy.check = srv->check;
	t->vfy.check_ctx = srv->check_ctx;
	if ((rc = rl_sock_prepare(fd)) != RL_OK)
		goto fail;
	if ((ret = mbedtls_ssl_setup(&t->ssl, &srv->conf)) != 0) {
		rc = rl_tls_mbed_error(RL_ERROR, ret, "TLS setup");
		goto fail;
	}
	/* Per connection, so the callback can record why it refused. */
	mbedtls_ssl_set_verify(&t->ssl, rl_tls_verify_client, &t->vfy);
	mbedtls_ssl_set_bio(&t->ssl, t, rl_tls_send, rl_tls_recv, NULL);
	if ((rc = rl_tls_handshake(t, deadline, "client")) != RL_OK)
		goto fail;
	/* Checks mbedTLS makes after the callback (key usage, extended key
	 * usage, key curve) only set flags under VERIFY_OPTIONAL. */
	if (t->vfy.presented && (flags = mbedtls_ssl_get_verify_result(&t->ssl)) != 0) {
		rl_tls_flags_text(flags, info, sizeof(info));
		rc = rl_error_set(RL_EAUTH, "client certificate rejected: %s", info);
		/* Best effort: tell the client before hanging up. */
		(void)mbedtls_ssl_send_alert_message(&t->ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
						     MBEDTLS_SSL_ALERT_MSG_ACCESS_DENIED);
		goto fail;
	}
	if (t->vfy.presented && peer_cn && strlen(t->vfy.cn) >= cnsz) {
		rc = rl_error_set(RL_EINVALID, "client CN does not fit in %zu bytes", cnsz);
		goto fail;
	}
	if (t->vfy.presented) {
		if (peer_cn)
			memcpy(peer_cn, t->vfy.cn, strlen(t->vfy.cn) + 1);
		if (peer_fp)
			memcpy(peer_fp, t->vfy.fp, RL_FINGERPRINT_BUFSZ);
	}
	t->established = 1;
	*out = &t->base;
	return RL_OK;
fail:
	rl_tls_conn_abort(t);
	return rc;
}

/* ---- TLS: client ---- */

static int rl_tls_san_has_ip(const mbedtls_x509_crt *crt, const unsigned char *ip, size_t iplen)
{
	const mbedtls_x509_sequence *s;

	for (s = &crt->subject_alt_names; s && s->buf.p; s = s->next)
		if (s->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_IP_ADDRESS) &&
		    s->buf.len == iplen && memcmp(s->buf.p, ip, iplen) == 0)
			return 1;
	return 0;
}

/*
 * mbedTLS 2.28 matches a hostname against dNSName entries only (or the CN
 * when there are none); it cannot match an IP address. When server_name is
 * an IP literal no hostname is set, and this callback requires a matching
 * iPAddress entry instead, flagging the leaf exactly as a name mismatch.
 */
static int rl_tls_verify_server(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
	struct rl_tls_verify *v = ctx;

	if (depth == 0 && v->iplen > 0 && !rl_tls_san_has_ip(crt, v->ip, v->iplen))
		*flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
	if (depth == 0) {
		v->have_dates = 1;
		v->valid_from = crt->valid_from;
		v->valid_to = crt->valid_to;
	}
	return 0;
}

static int rl_tcp_connect(const char *host, int port, int64_t deadline, int *fdp)
{
	struct addrinfo hints, *res = NULL, *ai;
	char portstr[8];
	int fd = -1, gai, last_err = ECONNREFUSED, timed_out = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	/* Name resolution cannot be bounded with getaddrinfo; the hub is
	 * normally addressed by an IP literal or a local name. An IP literal
	 * is read without the name service switch: glibc 2.36's NSS crashes
	 * when one of its allocations fails (scripts/oomtest.py). */
	hints.ai_flags = AI_NUMERICSERV | AI_NUMERICHOST;
	gai = getaddrinfo(host, portstr, &hints, &res);
	if (gai == EAI_NONAME) {
		hints.ai_flags = AI_NUMERICSERV;
		gai = getaddrinfo(host, portstr, &hints, &res);
	}
	if (gai != 0)
		return rl_error_set(RL_EIO, "cannot resolve '%s': %s", host,
				    gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
	for (ai = res; ai && !timed_out; ai = ai->ai_next) {
		int rc, err = 0;
		socklen_t errlen = sizeof(err);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			last_err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS || errno == EINTR) {
			rc = rl_fd_wait(fd, POLLOUT, deadline);
			if (rc == RL_OK && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) == 0 &&
			    err == 0)
				break;
			if (rc == RL_ETIMEOUT)
				timed_out = 1;
			last_err = rc == RL_OK ? (err ? err : errno) : errno;
		} else {
			last_err = errno;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		if (timed_out)
			return rl_error_set(RL_ETIMEOUT, "connecting to %s port %d timed out", host,
					    port);
		return rl_error_set(RL_ENET, "cannot connect to %s port %d: %s", host, port,
				    strerror(last_err));
	}
	*fdp = fd;
	return RL_OK;
}

static int rl_hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The CA file must hold exactly the pinned certificate: with a second one
 * appended, the pin would no longer say what is trusted. */
static int rl_tls_check_pin(const mbedtls_x509_crt *ca, const char *path, const char *pin)
{
	char fp[RL_FINGERPRINT_BUFSZ];
	size_t i;

	if (strlen(pin) != 64)
		return rl_error_set(RL_EINVALID, "pinned CA fingerprint must be 64 hex digits");
	for (i = 0; i < 64; i++)
		if (rl_hex_val(pin[i]) < 0)
			return rl_error_set(RL_EINVALID, "pinned CA fingerprint must be 64 hex digits");
	if (ca->next != NULL)
		return rl_error_set(RL_EAUTH, "CA fingerprint mismatch: '%s' holds more than one "
				    "certificate", path);
	if (rl_tls_fingerprint(ca, fp) != RL_OK)
		return rl_error_set(RL_ERROR, "cannot hash '%s'", path);
	if (strcasecmp(fp, pin) != 0)
		return rl_error_set(RL_EAUTH, "CA fingerprint mismatch: '%s' is %s, pinned %s", path,
				    fp, pin);
	return RL_OK;
}

static int rl_tls_connect_common(rl_conn **out, const struct rl_tls_client_opts *opts,
				 int with_cert)
{
	static const char pers[] = "relasi-client-tls";
	struct rl_tls_conn *t;
	const char *name;
	int64_t deadline;
	int fd = -1, ret, rc;

	*out = NULL;
	if (!opts || !opts->host || !opts->host[0] || opts->port < 1 || opts->port > 65535 ||
	    !opts->ca_path || opts->timeout_ms <= 0 ||
	    (with_cert && (!opts->cert_path || !opts->key_path)))
		return rl_error_set(RL_EINVALID, "TLS connect: missing or invalid options");
	deadline = rl_now_ms() + opts->timeout_ms;
	name = opts->server_name && opts->server_name[0] ? opts->server_name : opts->host;
	if (!(t = rl_tls_conn_new(-1)))
		return rl_error_set(RL_ENOMEM, "out of memory");

	/* Everything local first: a bad file should not cost a connection. */
	if ((rc = rl_tls_load_certs(opts->ca_path, &t->ca)) != RL_OK)
		goto fail;
	if (opts->ca_fingerprint &&
	    (rc = rl_tls_check_pin(&t->ca, opts->ca_path, opts->ca_fingerprint)) != RL_OK)
		goto fail;
	if (with_cert &&
	    (rc = rl_tls_load_pair(opts->cert_path, opts->key_path, &t->cert, &t->key)) != RL_OK)
		goto fail;
	ret = mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy,
				    (const unsigned char *)pers, sizeof(pers) - 1);
	if (ret != 0) {
		rc = rl_tls_mbed_error(RL_ERROR, ret, "seeding the random generator");
		goto fail;
	}
	ret = mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_CLIENT,
					  MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
	if (ret != 0) {
		rc = rl_tls_mbed_error(RL_ERROR, ret, "TLS client configuration");
		goto fail;
	}
	rl_tls_conf_common(&t->conf);
	mbedtls_ssl_conf_authmode(&t->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_ca_chain(&t->conf, &t->ca, NULL);
	mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &t->drbg);
	if (with_cert && (ret = mbedtls_ssl_conf_own_cert(&t->conf, &t->cert, &t->key)) != 0) {
		rc = rl_tls_mbed_error(RL_ERROR, ret, "setting the client certificate");
		goto fail;
	}
	if ((ret = mbedtls_ssl_setup(&t->ssl, &t->conf)) != 0) {
		rc = rl_tls_mbed_error(RL_ERROR, ret, "TLS setup");
		goto fail;
	}
	t->vfy.iplen = 0;
	if (inet_pton(AF_INET, name, t->vfy.ip) == 1)
		t->vfy.iplen = 4;
	else if (inet_pton(AF_INET6, name, t->vfy.ip) == 1)
		t->vfy.iplen = 16;
	/* A DNS name goes to mbedTLS (SNI and certificate name check); an IP
	 * literal is checked by rl_tls_verify_server (SNI must not carry one). */
	if (t->vfy.iplen == 0 && (ret = mbedtls_ssl_set_hostname(&t->ssl, name)) != 0) {
		rc = rl_tls_mbed_error(RL_EINVALID, ret, "setting the server name");
		goto fail;
	}
	mbedtls_ssl_set_verify(&t->ssl, rl_tls_verify_server, &t->vfy);

	if ((rc = rl_tcp_connect(opts->host, opts->port, deadline, &fd)) != RL_OK)
		goto fail;
	t->fd = fd;
	if ((rc = rl_sock_prepare(fd)) != RL_OK)
		goto fail;
	mbedtls_ssl_set_bio(&t->ssl, t, rl_tls_send, rl_tls_recv, NULL);
	if ((rc = rl_tls_handshake(t, deadline, "hub")) != RL_OK)
		goto fail;
	t->established = 1;
	*out = &t->base;
	return RL_OK;
fail:
	rl_tls_conn_abort(t);
	return rc;
}

int rl_tls_connect(rl_conn **out, const struct rl_tls_client_opts *opts)
{
	return rl_tls_connect_common(out, opts, 1);
}

int rl_tls_connect_anonymous(rl_conn **out, const struct rl_tls_client_opts *opts)
{
	return rl_tls_connect_common(out, opts, 0);
}
