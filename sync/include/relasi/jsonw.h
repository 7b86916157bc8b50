/*
 * relasi/jsonw.h — JSON text written straight into a string, without a
 * jansson tree: for the answers the hub sends in bulk (PUSHED results, PULL
 * pages), where building a tree of thousands of objects only to print it
 * was most of the hub's CPU (jansson and the allocator: two thirds of a
 * pull, perf, 5 Dec).
 *
 * What it writes reads back with jansson as the same values: strings
 * escaped as RFC 8259 requires (", \ and control characters; other UTF-8
 * as it is), integers in decimal, reals with 17 significant digits as
 * jansson writes them ("%.17g", with ".0" added to a whole number so that
 * it stays a real). fuzz/fuzz_hub_push.c compares every pulled value with
 * the log; tests/cli/test_sync.py sends a device's values to the hub.
 *
 * And rl_json_dumps: jansson's own writer, with its failures all seen.
 */
#ifndef RELASI_JSONW_H
#define RELASI_JSONW_H

#include <jansson.h>
#include <sqlite3.h>

#include "relasi/merge.h"

#ifdef __cplusplus
extern "C" {
#endif

/* s (NUL-terminated) as a JSON string. RL_EINVALID when s is not valid
 * UTF-8 (nothing appended); the caller names the value. */
int rl_jsonw_string(sqlite3_str *out, const char *s);

/* A value (null, integer, real or text) as JSON. RL_EINVALID for text that
 * is not UTF-8 or a real that is not finite, RL_ENOMEM for text SQLite
 * could not hand over (a NULL s): nothing appended. */
int rl_jsonw_value(sqlite3_str *out, const struct rl_value *v);

/* End out: *text is what it holds (malloc'd, the caller frees it), or
 * RL_ENOMEM when any append failed. out is finished either way. */
int rl_jsonw_finish(sqlite3_str *out, char **text);

/* json_dumps(j, flags), but NULL when any part of the text could not be
 * written, so that every caller's "NULL: out of memory" holds. jansson
 * 2.14 ignores a failed write of an object's key (dump.c, do_dump), so
 * its json_dumps can return, as a success, text with a key missing:
 * invalid JSON, or valid JSON with an empty key. scripts/oomtest.py found
 * a backup whose manifest restore then refused. The text is malloc'd: the
 * caller frees it. Use this, never json_dumps or json_dump_file. */
char *rl_json_dumps(const json_t *j, size_t flags);

#ifdef __cplusplus
}
#endif
#endif
