/*
 * relasi/page.h — a PAGE frame's JSON (sync/PROTOCOL.md, "Pull") read
 * without building a JSON tree, for the device.
 *
 * Why a reader of its own next to jansson: a device decoded every pulled
 * change into a jansson object with its own hashtable and freed it again
 * node by node; in the 200-device crowd each device pulls the others'
 * changes, and the device processes, not the hub, were three quarters of
 * the CPU (bench/bench_sync.py, 5 Dec). The hub reads PUSH the same way
 * (relasi/push.h); both sit on jscan.c's lexer.
 *
 * What it accepts (fuzz/fuzz_page.c checks it against jansson both ways):
 * one object with "changes" (an array), "cursor" (an integer) and "more"
 * (a boolean), each exactly once, and "conflicts" at most once (an array).
 * Each change an object with exactly "s", "h" (integers >= 0), "t", "r",
 * "f", "d" (strings) and "v" (null, an integer, a real or a string). Each
 * conflict an object with exactly "id" (an integer), "t", "r", "f",
 * "kind", "by", "state", "at" (strings), "mine", "theirs", "decided"
 * (null, a number or a string), "kept_mine" (a boolean) and "resolution"
 * (a string or null). A key the protocol does not define is refused, as
 * the hub refuses one in a PUSH: a later protocol version adds keys by
 * negotiation (HELLO's "proto"), never silently. Whether the values make
 * sense (a known field, sequence numbers in order, a valid value for the
 * field) is the device's to check (devsync.c).
 */
#ifndef RELASI_PAGE_H
#define RELASI_PAGE_H

#include <stddef.h>

#include "relasi/merge.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One pulled change. Strings are NUL-terminated UTF-8 without NUL inside,
 * in the reader's arena. */
struct rl_page_change {
	long long seq, hlc;
	const char *tbl, *row, *field, *device;
	struct rl_value value;
};

/* One entry of the hub's conflict list; resolution is NULL for null. */
struct rl_page_conflict {
	long long id;
	const char *tbl, *row, *field, *kind, *by, *state, *at, *resolution;
	struct rl_value mine, theirs, decided;
	int kept_mine;
};

/* A PAGE as read: changes[0 .. n); conflicts[0 .. nconflicts) when
 * has_conflicts (the last page of a pull). Everything stays valid until
 * the next rl_page_parse or rl_page_free. */
struct rl_page {
	struct rl_page_change *changes;
	size_t n;
	long long cursor;
	int more, has_conflicts;
	struct rl_page_conflict *conflicts;
	size_t nconflicts;
	/* the reader's own */
	size_t cap, conflicts_cap, arena_cap;
	char *arena;
};

/*
 * Read the payload of a PAGE frame (buf[0 .. len), the bytes after the
 * type byte). RL_EPROTO naming the byte offset (and the change or
 * conflict) and the cause when it is not JSON or not of the shape above;
 * RL_ETOOBIG past RL_MAX_PAGE_CHANGES + 64 changes or
 * RL_MAX_DEVICE_CONFLICTS conflicts, found before anything is allocated
 * for them; RL_ENOMEM. The struct is reused between calls (zero it before
 * the first).
 */
int rl_page_parse(struct rl_page *pg, const unsigned char *buf, size_t len);

/* Free what the reader holds; the struct can be read into again. */
void rl_page_free(struct rl_page *pg);

#ifdef __cplusplus
}
#endif
#endif
