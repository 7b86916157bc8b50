/*
 * chunk.h — private: the JSON of a snapshot CHUNK frame (sync/PROTOCOL.md,
 * "Snapshot") read without building a JSON tree.
 *
 * Why a parser of our own next to jansson: a new device's bootstrap reads
 * hundreds of MiB of chunks, and jansson's tree (an allocation per value,
 * freed again one by one) cost 4 of its 13.5 s of CPU (full dataset, parsing
 * every chunk twice side by side). This reads one shape only, into flat arrays that live as long
 * as the parser, with no allocation per value.
 *
 * What it accepts is a strict subset of what jansson (JSON_REJECT_
 * DUPLICATES) accepts, with the same values (fuzz/fuzz_chunk.c checks both
 * directions on any input): one object whose keys are among "t", "cols",
 * "rows" and "last", each at most once; "cols" and "rows", when arrays,
 * hold scalars and arrays of scalars respectively; nothing nests deeper.
 * Whether the values make a valid chunk (a table name, known fields, the
 * row length...) is the caller's to check, as it was with jansson.
 */
#ifndef RELASI_CHUNK_H
#define RELASI_CHUNK_H

#include <stddef.h>

#include "jscan.h"

/*
 * The parsed chunk. cols (an array) holds items[first .. first+n); rows
 * (an array) holds rowv[first .. first+n), each row an array of
 * items[first .. first+n) or a scalar. Strings live in the parser's arena.
 * Everything stays valid until the next rl_chunk_parse or rl_chunk_free.
 * At most RL_MAX_CHUNK_ROWS rows, 1 + 2 * RL_MAX_ROW_FIELDS items in a row
 * and RL_MAX_ROW_FIELDS in any other array (relasi/limits.h): more is
 * malformed, found before anything is allocated for it, so a chunk's
 * memory is bounded by the limits, not by the frame.
 */
struct rl_chunk {
	struct rl_cv t, cols, rows, last;
	struct rl_cv *items, *rowv;
	size_t nitems, nrowv, cap_items, cap_rowv;
	char *arena;
	size_t arena_cap;
};

/*
 * Parse the payload of a CHUNK frame (buf[0 .. len), the bytes after the
 * type byte). RL_EPROTO, naming the byte offset and the cause, when it is
 * not JSON or not of the shape above; RL_ENOMEM. The chunk is reused
 * between calls (zero it before the first).
 */
int rl_chunk_parse(struct rl_chunk *c, const unsigned char *buf, size_t len);

/* Free what the parser holds; the struct can be parsed into again. */
void rl_chunk_free(struct rl_chunk *c);

#endif
