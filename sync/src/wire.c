/*
 * wire.c — reading and writing protocol frames (see relasi/wire.h and
 * sync/PROTOCOL.md). Lengths are validated before allocation; JSON is parsed
 * with jansson from an exact-length buffer with duplicate keys refused.
 */
#include "relasi/jsonw.h"
#include "relasi/wire.h"
#include "relasi/error.h"
#include "relasi/limits.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int rl_wire_decode(const unsigned char *buf, size_t len, int *type, json_t **payload)
{
	json_error_t jerr;
	json_t *j;

	*payload = NULL;
	if (len < 2)
		return rl_error_set(RL_EPROTO, "frame of %zu bytes is too short", len);
	j = json_loadb((const char *)buf + 1, len - 1, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		return rl_error_set(RL_EPROTO, "frame '%c': bad JSON at byte %d: %s",
				    buf[0] >= 0x20 && buf[0] < 0x7f ? buf[0] : '?',
				    jerr.position, jerr.text);
	if (!json_is_object(j)) {
		json_decref(j);
		return rl_error_set(RL_EPROTO, "frame '%c': payload is not a JSON object",
				    buf[0] >= 0x20 && buf[0] < 0x7f ? buf[0] : '?');
	}
	*type = buf[0];
	*payload = j;
	return RL_OK;
}

static int64_t wire_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The time a frame of n bytes is given: the timeout, plus its size at a
 * slow mobile link's rate, so a big batch or page over 3G gets through but
 * a trickle does not hold the connection. Reads and writes alike. */
static int64_t frame_ms(int timeout_ms, size_t n)
{
	return (int64_t)timeout_ms + (int64_t)n * 1000 / RL_MIN_LINK_BYTES_PER_S;
}

int rl_wire_read_raw(rl_conn *c, size_t max_len, int timeout_ms, unsigned char **buf,
		     size_t *cap, size_t *len)
{
	unsigned char hdr[4];
	size_t have = 0;
	int64_t start = wire_now_ms(), deadline;
	uint32_t n;
	int error;

	*len = 0;
	if ((error = rl_conn_read(c, hdr, 4, timeout_ms)) < 0)
		return error;
	n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	if (n < 2)
		return rl_error_set(RL_EPROTO, "frame length %u is too short", n);
	if (n > max_len)
		return rl_error_set(RL_ETOOBIG, "frame of %u bytes exceeds the limit of %zu",
				    n, max_len);
	/* One deadline for the whole frame, from the start of the wait: the
	 * length's wait does not buy the body a fresh timeout. */
	deadline = start + frame_ms(timeout_ms, n);
	/* Memory follows the bytes that actually arrive, not the length the
	 * peer announces: claiming 8 MiB and sending one byte costs 64 KiB, so
	 * hundreds of such connections cannot exhaust the hub. */
	while (have < n) {
		size_t want = n - have > 65536 ? 65536 : n - have;
		int64_t left = deadline - wire_now_ms();
		if (have + want > *cap) {
			size_t ncap = *cap ? *cap * 2 : 65536;
			unsigned char *nb;
			while (ncap < have + want)
				ncap *= 2;
			if (ncap > n)
				ncap = n;
			if (!(nb = realloc(*buf, ncap)))
				return rl_error_set(RL_ENOMEM, "out of memory");
			*buf = nb;
			*cap = ncap;
		}
		if (left <= 0)
			return rl_error_set(RL_ETIMEOUT, "frame of %u bytes not received in time", n);
		if ((error = rl_conn_read(c, *buf + have, want,
					  left > INT_MAX ? INT_MAX : (int)left)) < 0)
			return error;
		have += want;
	}
	*len = n;
	return RL_OK;
}

int rl_wire_read(rl_conn *c, size_t max_len, int timeout_ms, int *type, json_t **payload)
{
	unsigned char *buf = NULL;
	size_t cap = 0, len;
	int error;

	*payload = NULL;
	if ((error = rl_wire_read_raw(c, max_len, timeout_ms, &buf, &cap, &len)) == RL_OK)
		error = rl_wire_decode(buf, len, type, payload);
	free(buf);
	return error;
}

/* The 5 bytes before a payload: n (type + payload) big-endian, the type. */
static void frame_head(unsigned char h[5], size_t n, int type)
{
	h[0] = (unsigned char)(n >> 24);
	h[1] = (unsigned char)(n >> 16);
	h[2] = (unsigned char)(n >> 8);
	h[3] = (unsigned char)n;
	h[4] = (unsigned char)type;
}

int rl_wire_write(rl_conn *c, int type, const json_t *payload, size_t max_len, int timeout_ms)
{
	char *body = rl_json_dumps(payload, JSON_COMPACT);
	int error;

	if (!body)
		return rl_error_set(RL_ENOMEM, "out of memory");
	error = rl_wire_write_text(c, type, body, strlen(body), max_len, timeout_ms);
	free(body);
	return error;
}

/* A frame's write gets the time its read gets (frame_ms): a big page to a
 * device on a slow link would otherwise be cut at every try. */
static int write_timeout(int timeout_ms, size_t n)
{
	int64_t ms = frame_ms(timeout_ms, n);

	return ms > INT_MAX ? INT_MAX : (int)ms;
}

int rl_wire_write_text(rl_conn *c, int type, const char *json, size_t len, size_t max_len,
		       int timeout_ms)
{
	return rl_wire_write_parts(c, type, &json, &len, 1, max_len, timeout_ms);
}

int rl_wire_write_parts(rl_conn *c, int type, const char *const *parts, const size_t *lens,
			size_t nparts, size_t max_len, int timeout_ms)
{
	unsigned char *frame;
	size_t n = 1, i, at;
	int error;

	for (i = 0; i < nparts; i++) {
		if (lens[i] > max_len)
			return rl_error_set(RL_ETOOBIG, "frame of over %zu bytes exceeds the limit "
					    "of %zu", lens[i], max_len);
		n += lens[i];
	}
	if (n > max_len || n > 0xffffffffu)
		return rl_error_set(RL_ETOOBIG, "frame of %zu bytes exceeds the limit of %zu",
				    n, max_len);
	/* One buffer, so that a small frame goes out as one TLS record. */
	if (!(frame = malloc(n + 4)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	frame_head(frame, n, type);
	for (i = 0, at = 5; i < nparts; at += lens[i], i++)
		memcpy(frame + at, parts[i], lens[i]);
	error = rl_conn_write(c, frame, n + 4, write_timeout(timeout_ms, n));
	free(frame);
	return error;
}

int rl_wire_write_bytes(rl_conn *c, int type, const void *bytes, size_t len, size_t max_len,
			int timeout_ms)
{
	unsigned char head[5];
	size_t n = len + 1;
	int error;

	if (n > max_len || n > 0xffffffffu)
		return rl_error_set(RL_ETOOBIG, "frame of %zu bytes exceeds the limit of %zu", n,
				    max_len);
	frame_head(head, n, type);
	/* Two writes, no copy: a TLS connection sends each as its own record
	 * (5 bytes of header cost one small record per frame). */
	if ((error = rl_conn_write(c, head, sizeof(head), timeout_ms)) < 0)
		return error;
	return len ? rl_conn_write(c, bytes, len, write_timeout(timeout_ms, len)) : RL_OK;
}

void rl_wire_error(rl_conn *c, const char *code, const char *message, int timeout_ms)
{
	json_t *j = json_pack("{s:s, s:s}", "code", code, "message", message);
	if (j) {
		rl_wire_write(c, RL_FRAME_ERROR, j, 64 * 1024, timeout_ms);
		json_decref(j);
	}
}
