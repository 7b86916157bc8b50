/*
 * fuzz_wire.c — the frame decoder of the sync protocol (sync/src/wire.c):
 * rl_wire_decode on the raw input, and rl_wire_read on the input as a byte
 * stream arriving over an in-memory connection (rl_conn_pipe), frame after
 * frame, with the pre-authentication limit (RL_MAX_FRAME_PREAUTH), as the
 * hub reads an unauthenticated peer.
 *
 * Asserts:
 *  - a decoded frame is one JSON object whose type is the first body byte,
 *    and it survives rl_wire_write -> rl_wire_read unchanged (type and
 *    json_equal payload);
 *  - an error leaves *payload NULL, has a message, and is the right code:
 *    RL_ETOOBIG exactly when the announced length is above the limit,
 *    RL_EPROTO for a length below 2 or a body that is not a JSON object,
 *    RL_ECLOSED when the stream ends inside a frame;
 *  - rl_wire_read consumes exactly 4 + length bytes per good frame and
 *    never more than the peer sent; nothing leaks (LeakSanitizer).
 */
#include "fuzz_util.h"

#include <string.h>

#include "relasi/conn.h"
#include "relasi/error.h"
#include "relasi/limits.h"
#include "relasi/wire.h"

/* What one pipe direction holds (RL_PIPE_CAP in conn.c): the input is
 * written whole before it is read, so it must fit. */
#define FZ_PIPE_BYTES (64 * 1024)

static void check_roundtrip(int type, json_t *payload)
{
	rl_conn *a = NULL, *b = NULL;
	json_t *back = NULL;
	char *text = json_dumps(payload, JSON_COMPACT);
	int type2 = 0, rc;

	FZ_CHECK(text != NULL, "cannot re-encode a decoded payload");
	/* Re-encoding may be longer than the input ("1e99" prints as
	 * 1.0000000000000001e+99): go through the pipe only when the frame
	 * fits it, as nobody reads while it is written. */
	if (strlen(text) + 5 <= FZ_PIPE_BYTES) {
		FZ_CHECK(rl_conn_pipe(&a, &b) == RL_OK, "pipe");
		rc = rl_wire_write(a, type, payload, RL_MAX_FRAME, 1000);
		FZ_CHECK(rc == RL_OK, "re-encoding a decoded frame failed (%d)", rc);
		rc = rl_wire_read(b, RL_MAX_FRAME, 1000, &type2, &back);
		rl_conn_close(a);
		rl_conn_close(b);
	} else {
		size_t n = strlen(text);
		unsigned char *body = malloc(n + 1);
		FZ_CHECK(body != NULL, "out of memory");
		body[0] = (unsigned char)type;
		memcpy(body + 1, text, n);
		rc = rl_wire_decode(body, n + 1, &type2, &back);
		free(body);
	}
	free(text);
	FZ_CHECK(rc == RL_OK, "reading back a re-encoded frame failed (%d)", rc);
	FZ_CHECK(type2 == type, "type %d came back as %d", type, type2);
	FZ_CHECK(json_equal(payload, back), "payload changed on the round trip");
	json_decref(back);
}

static void check_decode(const uint8_t *data, size_t size)
{
	json_t *payload = (json_t *)1;
	int type = -1;
	int rc = rl_wire_decode(data, size, &type, &payload);

	if (rc == RL_OK) {
		FZ_CHECK(size >= 2, "a %zu-byte frame decoded", size);
		FZ_CHECK(json_is_object(payload), "payload is not an object");
		FZ_CHECK(type == data[0], "type %d, first byte %d", type, data[0]);
		json_decref(payload);
	} else {
		FZ_CHECK(rc == RL_EPROTO, "decode error %d", rc);
		FZ_CHECK(payload == NULL, "payload set on error");
		FZ_CHECK(rl_error_message()[0], "error without a message");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rl_conn *peer = NULL, *hub = NULL;
	size_t fed = size < FZ_PIPE_BYTES ? size : FZ_PIPE_BYTES;
	unsigned long long before, after;
	int frames;

	check_decode(data, size);

	FZ_CHECK(rl_conn_pipe(&peer, &hub) == RL_OK, "pipe");
	FZ_CHECK(rl_conn_write(peer, data, fed, 1000) == RL_OK, "feeding the pipe");
	rl_conn_close(peer);            /* the peer is done: EOF after the bytes */

	for (frames = 0; frames < 100000; frames++) {
		json_t *payload = (json_t *)1;
		int type = -1, rc;
		uint32_t len = 0;

		rl_conn_counters(hub, &before, NULL);
		if (fed - before >= 4)
			len = (uint32_t)data[before] << 24 | (uint32_t)data[before + 1] << 16 |
			      (uint32_t)data[before + 2] << 8 | data[before + 3];
		rc = rl_wire_read(hub, RL_MAX_FRAME_PREAUTH, 1000, &type, &payload);
		rl_conn_counters(hub, &after, NULL);
		FZ_CHECK(after <= fed, "read %llu bytes of %zu", after, fed);
		if (rc == RL_OK) {
			FZ_CHECK(fed - before >= 4 && len >= 2 && len <= RL_MAX_FRAME_PREAUTH,
				 "accepted a frame of announced length %u", len);
			FZ_CHECK(after - before == 4 + (unsigned long long)len,
				 "a frame of %u bytes consumed %llu", len, after - before);
			FZ_CHECK(json_is_object(payload), "payload is not an object");
			FZ_CHECK(type == data[before + 4], "type %d, byte %d", type, data[before + 4]);
			check_roundtrip(type, payload);
			json_decref(payload);
			continue;
		}
		FZ_CHECK(payload == NULL, "payload set on error %d", rc);
		FZ_CHECK(rl_error_message()[0], "error %d without a message", rc);
		if (fed - before < 4) {
			FZ_CHECK(rc == RL_ECLOSED, "%zu header bytes left: error %d",
				 (size_t)(fed - before), rc);
		} else if (len > RL_MAX_FRAME_PREAUTH) {
			FZ_CHECK(rc == RL_ETOOBIG, "length %u above the limit: error %d", len, rc);
		} else if (len < 2) {
			FZ_CHECK(rc == RL_EPROTO, "length %u: error %d", len, rc);
		} else if (fed - before - 4 < len) {
			FZ_CHECK(rc == RL_ECLOSED, "truncated frame: error %d", rc);
		} else {
			FZ_CHECK(rc == RL_EPROTO, "bad body: error %d", rc);
		}
		break;                  /* the hub drops a peer after any error */
	}
	rl_conn_close(hub);
	return 0;
}
