/*
 * fuzz_push.c — the PUSH reader (sync/src/push.c, relasi/push.h) against
 * jansson, differentially. The reader exists for the hub's speed only, so
 * it must read exactly what the hub read through jansson, within the
 * protocol's keys.
 *
 * Input: a PUSH frame's payload (the bytes after the type byte).
 *
 * Asserts:
 *  - what push.c accepts, jansson (JSON_REJECT_DUPLICATES) accepts too: an
 *    object with exactly batch, cursor and changes, equal integers, and
 *    changes of exactly t, r, f, v, b, h with equal values (the same
 *    types, integers, reals bit for bit, strings byte for byte);
 *  - what jansson accepts in that shape (the types above, b and h >= 0, at
 *    most RL_MAX_BATCH_CHANGES changes), push.c accepts — except text with
 *    a NUL byte, which push.c refuses as RFC 8259 does (jansson skips a NUL
 *    after a number; see fuzz_chunk.c);
 *  - a refusal is RL_EPROTO naming the byte, or RL_ETOOBIG past the limit;
 *  - reading twice into the same struct gives the same result.
 */
#include "fuzz_util.h"

#include <string.h>

#include <jansson.h>

#include "relasi/error.h"
#include "relasi/limits.h"
#include "relasi/push.h"

static struct rl_push rd;

static int is_int(const json_t *j, int nonneg)
{
	return json_is_integer(j) && (!nonneg || json_integer_value(j) >= 0);
}

/* A change the hub takes: exactly the six keys, of their types. */
static int change_in_shape(const json_t *c)
{
	json_t *v = json_object_get(c, "v");

	return json_is_object(c) && json_object_size(c) == 6 &&
	       json_is_string(json_object_get(c, "t")) && json_is_string(json_object_get(c, "r")) &&
	       json_is_string(json_object_get(c, "f")) && is_int(json_object_get(c, "b"), 1) &&
	       is_int(json_object_get(c, "h"), 1) && v &&
	       (json_is_null(v) || json_is_integer(v) || json_is_real(v) || json_is_string(v));
}

static int in_shape(const json_t *o)
{
	json_t *cs = json_object_get(o, "changes"), *c;
	size_t i;

	if (!json_is_object(o) || json_object_size(o) != 3 || !is_int(json_object_get(o, "batch"), 0) ||
	    !is_int(json_object_get(o, "cursor"), 0) || !json_is_array(cs) ||
	    json_array_size(cs) > RL_MAX_BATCH_CHANGES)
		return 0;
	json_array_foreach(cs, i, c)
		if (!change_in_shape(c))
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	int error, again;
	size_t i, n;

	error = rl_push_parse(&rd, data, size);
	n = rd.n;
	if (error == RL_OK) {
		json_t *cs = json_object_get(j, "changes");
		FZ_CHECK(!memchr(data, 0, size), "push.c accepted a NUL byte");
		FZ_CHECK(in_shape(j), "push.c accepted what the hub's jansson path refuses");
		FZ_CHECK(json_integer_value(json_object_get(j, "batch")) == rd.batch, "batch differs");
		FZ_CHECK(json_integer_value(json_object_get(j, "cursor")) == rd.cursor,
			 "cursor differs");
		FZ_CHECK(json_array_size(cs) == rd.n, "change count differs");
		for (i = 0; i < rd.n; i++) {
			const struct rl_push_change *c = &rd.changes[i];
			json_t *o = json_array_get(cs, i);
			fz_same_text(c->tbl, json_object_get(o, "t"), "t");
			fz_same_text(c->row, json_object_get(o, "r"), "r");
			fz_same_text(c->field, json_object_get(o, "f"), "f");
			fz_same_value(&c->value, json_object_get(o, "v"));
			FZ_CHECK(json_integer_value(json_object_get(o, "b")) == c->base, "b differs");
			FZ_CHECK(json_integer_value(json_object_get(o, "h")) == c->hlc, "h differs");
		}
	} else if (error == RL_ETOOBIG) {
		FZ_CHECK(strstr(rl_error_message(), "limit") != NULL, "no limit named: %s",
			 rl_error_message());
		FZ_CHECK(!in_shape(j) || memchr(data, 0, size), "push.c refused a batch within limits");
	} else {
		FZ_CHECK(error == RL_EPROTO, "error %d", error);
		FZ_CHECK(strstr(rl_error_message(), "at byte") != NULL, "no byte named: %s",
			 rl_error_message());
		FZ_CHECK(!in_shape(j) || memchr(data, 0, size),
			 "push.c refused a batch the hub's jansson path reads: %s", rl_error_message());
	}
	again = rl_push_parse(&rd, data, size);
	FZ_CHECK(again == error && rd.n == n, "a second read differs");
	json_decref(j);
	return 0;
}
