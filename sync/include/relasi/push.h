/*
 * relasi/push.h — a PUSH frame's JSON (sync/PROTOCOL.md, "Push") read
 * without building a JSON tree, for the hub.
 *
 * Why a reader of its own next to jansson: the hub decoded every change of
 * every batch into a jansson object with its own hashtable, and freed the
 * tree again node by node: with the answer's encoding, a quarter of the
 * hub's CPU while a device pushed (perf, 200,000 changes, 5 Dec). This
 * reads the one shape into a flat array that lives as long as the reader,
 * with no allocation per value.
 *
 * What it accepts is exactly what the hub accepted through jansson
 * (JSON_REJECT_DUPLICATES) with the keys the protocol defines, with the
 * same values (fuzz/fuzz_push.c checks both directions on any input): one
 * object with "batch" and "cursor" (integers) and "changes" (an array),
 * each exactly once; each change an object with "t", "r", "f" (strings),
 * "v" (null, an integer, a real or a string), "b" and "h" (integers >= 0),
 * each exactly once. Unlike the jansson path it refuses a key the protocol
 * does not define (a later protocol version adds keys by negotiation, not
 * silently). Whether the values make sense (a known table, a batch number
 * in range...) is the hub's to check.
 */
#ifndef RELASI_PUSH_H
#define RELASI_PUSH_H

#include <stddef.h>
#include <stdint.h>

#include "relasi/merge.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One change as read. Strings are NUL-terminated UTF-8 without NUL inside,
 * in the reader's arena. */
struct rl_push_change {
	const char *tbl, *row, *field;
	struct rl_value value;
	int64_t base, hlc;
};

/* A PUSH as read: changes[0 .. n). Everything stays valid until the next
 * rl_push_parse or rl_push_free. */
struct rl_push {
	long long batch, cursor;
	struct rl_push_change *changes;
	size_t n;
	/* the reader's own */
	size_t cap, arena_cap;
	char *arena;
};

/*
 * Read the payload of a PUSH frame (buf[0 .. len), the bytes after the type
 * byte). RL_EPROTO naming the byte offset (and the change) and the cause
 * when it is not JSON or not of the shape above; RL_ETOOBIG past
 * RL_MAX_BATCH_CHANGES changes, found before anything is allocated for
 * them; RL_ENOMEM. The struct is reused between calls (zero it before the
 * first).
 */
int rl_push_parse(struct rl_push *p, const unsigned char *buf, size_t len);

/* Free what the reader holds; the struct can be read into again. */
void rl_push_free(struct rl_push *p);

#ifdef __cplusplus
}
#endif
#endif
