/*
 * fuzz_chunk.c — the snapshot CHUNK reader (sync/src/chunk.c) against
 * jansson, differentially. chunk.c exists for speed only (chunk.h says
 * why), so it must read exactly what jansson reads, within its shape.
 *
 * Input: a CHUNK frame's payload (the bytes after the type byte).
 *
 * Asserts:
 *  - what chunk.c accepts, jansson (JSON_REJECT_DUPLICATES) accepts too,
 *    as an object with the same keys and equal values: same types, same
 *    integers, the same reals bit for bit, the same strings byte for byte;
 *  - what jansson accepts within the shape (keys among t, cols, rows, last;
 *    nothing nested deeper than chunk.h allows; the limits of
 *    relasi/limits.h), chunk.c accepts — except text with a NUL byte,
 *    which chunk.c refuses as RFC 8259 does: jansson skips a NUL that
 *    follows a number (its reader takes a NUL in its one-byte push-back
 *    buffer for "empty"; found by this target);
 *  - a refusal carries a message that names the byte;
 *  - parsing twice into the same struct gives the same result (the struct
 *    is reused between chunks).
 */
#include "fuzz_util.h"

#include <math.h>
#include <string.h>

#include <jansson.h>

#include "chunk.h"
#include "relasi/error.h"
#include "relasi/limits.h"

static struct rl_chunk ck;

static int is_scalar(const json_t *v)
{
	return !json_is_array(v) && !json_is_object(v);
}

/* A flat array of at most max scalars, or a scalar. */
static int flat_in_shape(const json_t *v, size_t max)
{
	size_t i;
	json_t *e;

	if (is_scalar(v))
		return 1;
	if (!json_is_array(v) || json_array_size(v) > max)
		return 0;
	json_array_foreach(v, i, e)
		if (!is_scalar(e))
			return 0;
	return 1;
}

static int in_shape(const json_t *o)
{
	const char *key;
	json_t *v, *e;
	size_t i;

	json_object_foreach((json_t *)o, key, v) {
		if (strcmp(key, "rows") == 0) {
			if (is_scalar(v))
				continue;
			if (!json_is_array(v) || json_array_size(v) > RL_MAX_CHUNK_ROWS)
				return 0;
			json_array_foreach(v, i, e)
				if (!flat_in_shape(e, 1 + 2 * RL_MAX_ROW_FIELDS))
					return 0;
		} else if (strcmp(key, "t") == 0 || strcmp(key, "cols") == 0 ||
			   strcmp(key, "last") == 0) {
			if (!flat_in_shape(v, RL_MAX_ROW_FIELDS))
				return 0;
		} else {
			return 0;
		}
	}
	return 1;
}

static void same_scalar(const struct rl_cv *c, const json_t *j)
{
	switch (c->type) {
	case RL_CV_NULL: FZ_CHECK(json_is_null(j), "null differs"); break;
	case RL_CV_TRUE: FZ_CHECK(json_is_true(j), "true differs"); break;
	case RL_CV_FALSE: FZ_CHECK(json_is_false(j), "false differs"); break;
	case RL_CV_INT:
		FZ_CHECK(json_is_integer(j) && json_integer_value(j) == c->u.i,
			 "integer %lld differs", c->u.i);
		break;
	case RL_CV_REAL:
		FZ_CHECK(json_is_real(j) && memcmp(&(double){ json_real_value(j) }, &c->u.d,
						   sizeof(double)) == 0, "real %g differs", c->u.d);
		break;
	case RL_CV_TEXT:
		FZ_CHECK(json_is_string(j) && json_string_length(j) == c->n &&
			 memcmp(json_string_value(j), c->u.s, c->n) == 0 && c->u.s[c->n] == '\0' &&
			 strlen(c->u.s) == c->n, "string differs");
		break;
	default:
		FZ_CHECK(0, "a scalar of type %d", (int)c->type);
	}
}

static void same_flat(const struct rl_cv *c, const json_t *j)
{
	size_t i;

	if (c->type != RL_CV_ARRAY) {
		same_scalar(c, j);
		return;
	}
	FZ_CHECK(json_is_array(j) && json_array_size(j) == c->n, "array length differs");
	for (i = 0; i < c->n; i++)
		same_scalar(&ck.items[c->u.first + i], json_array_get(j, i));
}

static void same_key(const struct rl_cv *c, const json_t *o, const char *key)
{
	json_t *j = json_object_get(o, key);
	size_t i;

	if (c->type == RL_CV_MISSING) {
		FZ_CHECK(!j, "key %s missed", key);
		return;
	}
	FZ_CHECK(j != NULL, "key %s made up", key);
	if (strcmp(key, "rows") != 0 || c->type != RL_CV_ARRAY) {
		same_flat(c, j);
		return;
	}
	FZ_CHECK(json_is_array(j) && json_array_size(j) == c->n, "row count differs");
	for (i = 0; i < c->n; i++)
		same_flat(&ck.rowv[c->u.first + i], json_array_get(j, i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	int error, again;

	error = rl_chunk_parse(&ck, data, size);
	if (error == RL_OK) {
		FZ_CHECK(!memchr(data, 0, size), "chunk.c accepted a NUL byte");
		FZ_CHECK(json_is_object(j), "chunk.c accepted what jansson refuses");
		FZ_CHECK(json_object_size(j) == (size_t)(ck.t.type != RL_CV_MISSING) +
			 (ck.cols.type != RL_CV_MISSING) + (ck.rows.type != RL_CV_MISSING) +
			 (ck.last.type != RL_CV_MISSING), "key count differs");
		same_key(&ck.t, j, "t");
		same_key(&ck.cols, j, "cols");
		same_key(&ck.rows, j, "rows");
		same_key(&ck.last, j, "last");
	} else {
		FZ_CHECK(error == RL_EPROTO, "error %d", error);
		FZ_CHECK(strstr(rl_error_message(), "at byte") != NULL, "no byte named: %s",
			 rl_error_message());
		FZ_CHECK(!json_is_object(j) || !in_shape(j) || memchr(data, 0, size),
			 "chunk.c refused a chunk jansson reads: %s", rl_error_message());
	}
	again = rl_chunk_parse(&ck, data, size);
	FZ_CHECK(again == error, "a second parse differs");
	json_decref(j);
	return 0;
}
