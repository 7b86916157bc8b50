/*
 * relasi/wire.h — frames of the sync protocol (sync/PROTOCOL.md).
 *
 * A frame is a 4-byte big-endian length L, then L bytes: one type byte and
 * L-1 bytes of UTF-8 JSON (an object). The length is checked against the
 * caller's limit before anything is allocated, so a peer announcing 4 GiB
 * costs nothing; a zero length, a length below 2 or above the limit, a
 * payload that is not one JSON object, or trailing bytes are RL_EPROTO.
 */
#ifndef RELASI_WIRE_H
#define RELASI_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "relasi/conn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Frame types (one byte). Upper case: device -> hub; lower case: answers. */
enum {
	RL_FRAME_HELLO = 'H', RL_FRAME_WELCOME = 'h',
	RL_FRAME_ENROLL = 'E', RL_FRAME_ENROLLED = 'e',
	RL_FRAME_PUSH = 'P', RL_FRAME_PUSHED = 'p',
	RL_FRAME_PULL = 'L', RL_FRAME_PAGE = 'l',
	RL_FRAME_SNAPSHOT = 'S', RL_FRAME_SNAP = 's', RL_FRAME_CHUNK = 'k',
	RL_FRAME_IMAGE = 'i',     /* raw bytes of a snapshot image, not JSON */
	RL_FRAME_BYE = 'B',
	RL_FRAME_ERROR = 'X'
};

/* Protocol version spoken by this build. */
#define RL_PROTO_VERSION 1

/* Snapshot format served by this build (WELCOME "snapshot": the hub serves
 * SNAPSHOT; a hub without the key does not, and devices stream instead). */
#define RL_SNAPSHOT_FORMAT 1
/* The snapshot as an image: the device store itself, built once by the hub
 * and sent as a zstd tar in IMAGE frames (sync/PROTOCOL.md, "Snapshot
 * image"). A device asks for it by listing it in SNAPSHOT's formats. */
#define RL_SNAPSHOT_IMAGE 2

/*
 * Read one frame: *type and *payload (a JSON object the caller must
 * json_decref). max_len bounds L. The whole frame, from the start of the
 * wait for it, must arrive within timeout_ms plus time for its L bytes at
 * RL_MIN_LINK_BYTES_PER_S.
 * Errors: RL_EPROTO (malformed), RL_ETOOBIG (L > max_len), and the
 * connection's own (RL_ETIMEOUT, RL_ECLOSED...).
 */
int rl_wire_read(rl_conn *c, size_t max_len, int timeout_ms, int *type, json_t **payload);

/*
 * Read one frame's bytes without decoding them: (*buf)[0] is the type, the
 * payload follows, *len bytes in all. *buf (capacity *cap) is the caller's,
 * grown as the bytes arrive and kept for the next call; free() it at the
 * end. Same limits and errors as rl_wire_read, except that the payload is
 * not checked (rl_wire_decode does that).
 */
int rl_wire_read_raw(rl_conn *c, size_t max_len, int timeout_ms, unsigned char **buf,
		     size_t *cap, size_t *len);

/* Write one frame (payload is not consumed). RL_ETOOBIG above max_len.
 * Every write below takes timeout_ms plus time for the frame's size at
 * RL_MIN_LINK_BYTES_PER_S, as rl_wire_read_raw gives a read. */
int rl_wire_write(rl_conn *c, int type, const json_t *payload, size_t max_len, int timeout_ms);

/* Write one frame whose payload is JSON text the caller already encoded
 * (len bytes, one object; not checked). RL_ETOOBIG above max_len. */
int rl_wire_write_text(rl_conn *c, int type, const char *json, size_t len, size_t max_len,
		       int timeout_ms);

/* The same with the payload in nparts pieces (parts[i], lens[i] bytes),
 * sent as one: a request whose bulk was encoded ahead of time and whose
 * head is known only now. */
int rl_wire_write_parts(rl_conn *c, int type, const char *const *parts, const size_t *lens,
			size_t nparts, size_t max_len, int timeout_ms);

/* Write one frame whose payload is len raw bytes (IMAGE frames: the only
 * type that is not JSON). RL_ETOOBIG above max_len. */
int rl_wire_write_bytes(rl_conn *c, int type, const void *bytes, size_t len, size_t max_len,
			int timeout_ms);

/* Decode a frame held in memory (for fuzzing and tests): buf holds exactly
 * the bytes after the length prefix. */
int rl_wire_decode(const unsigned char *buf, size_t len, int *type, json_t **payload);

/* Send an ERROR frame {code, message}; best effort. */
void rl_wire_error(rl_conn *c, const char *code, const char *message, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
