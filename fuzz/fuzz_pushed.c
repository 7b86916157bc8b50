/*
 * fuzz_pushed.c — the device's PUSHED reader (sync/src/pushed.c,
 * relasi/pushed.h) against jansson, differentially. The reader exists for
 * speed, so it must read exactly what jansson reads, within the
 * protocol's keys and statuses.
 *
 * Input: a PUSHED frame's payload (the bytes after the type byte).
 *
 * Asserts:
 *  - what pushed.c accepts, jansson (JSON_REJECT_DUPLICATES) accepts too:
 *    an object with exactly batch and results, an equal batch, and results
 *    of s (one of the five statuses) and v (an integer >= 0) and maybe
 *    reason (a string), with equal values (strings byte for byte);
 *  - what jansson accepts in that shape (at most RL_MAX_BATCH_CHANGES
 *    results), pushed.c accepts — except text with a NUL byte, which
 *    pushed.c refuses as RFC 8259 does (jansson skips a NUL after a
 *    number; see fuzz_chunk.c);
 *  - a refusal is RL_EPROTO naming the byte, or RL_ETOOBIG naming the limit;
 *  - reading twice into the same struct gives the same result.
 */
#include "fuzz_util.h"

#include <string.h>

#include <jansson.h>

#include "relasi/error.h"
#include "relasi/limits.h"
#include "relasi/pushed.h"

static struct rl_pushed rd;
static const char *const statuses[] = { "applied", "same", "merged", "conflict", "refused" };

static int status_of(const json_t *j)
{
	int i;

	for (i = 0; json_is_string(j) && i < 5; i++)
		if (strcmp(json_string_value(j), statuses[i]) == 0 &&
		    json_string_length(j) == strlen(statuses[i]))
			return i;
	return -1;
}

static int result_in_shape(const json_t *r)
{
	json_t *v = json_object_get(r, "v"), *reason = json_object_get(r, "reason");

	return json_is_object(r) && json_object_size(r) == (reason ? 3u : 2u) &&
	       status_of(json_object_get(r, "s")) >= 0 && json_is_integer(v) &&
	       json_integer_value(v) >= 0 && (!reason || json_is_string(reason));
}

static int in_shape(const json_t *o)
{
	json_t *rs = json_object_get(o, "results"), *r;
	size_t i;

	if (!json_is_object(o) || json_object_size(o) != 2 ||
	    !json_is_integer(json_object_get(o, "batch")) || !json_is_array(rs) ||
	    json_array_size(rs) > RL_MAX_BATCH_CHANGES)
		return 0;
	json_array_foreach(rs, i, r)
		if (!result_in_shape(r))
			return 0;
	return 1;
}

static void same_answer(const json_t *j)
{
	json_t *rs = json_object_get(j, "results");
	size_t i;

	FZ_CHECK(json_integer_value(json_object_get(j, "batch")) == rd.batch, "batch differs");
	FZ_CHECK(json_array_size(rs) == rd.n, "result count differs");
	for (i = 0; i < rd.n; i++) {
		const struct rl_result *r = &rd.results[i];
		json_t *o = json_array_get(rs, i), *reason = json_object_get(o, "reason");
		FZ_CHECK(status_of(json_object_get(o, "s")) == (int)r->status, "status differs");
		FZ_CHECK(json_integer_value(json_object_get(o, "v")) == r->version, "v differs");
		if (!reason)
			FZ_CHECK(r->reason == NULL, "a reason that is not there");
		else
			fz_same_text(r->reason, reason, "reason");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	int error, again;
	size_t n;

	error = rl_pushed_parse(&rd, data, size);
	n = rd.n;
	if (error == RL_OK) {
		FZ_CHECK(!memchr(data, 0, size), "pushed.c accepted a NUL byte");
		FZ_CHECK(in_shape(j), "pushed.c accepted what jansson does not read as a PUSHED");
		same_answer(j);
	} else if (error == RL_ETOOBIG) {
		FZ_CHECK(strstr(rl_error_message(), "limit") != NULL, "no limit named: %s",
			 rl_error_message());
		FZ_CHECK(!in_shape(j) || memchr(data, 0, size),
			 "pushed.c refused an answer within limits");
	} else {
		FZ_CHECK(error == RL_EPROTO, "error %d", error);
		FZ_CHECK(strstr(rl_error_message(), "at byte") != NULL, "no byte named: %s",
			 rl_error_message());
		FZ_CHECK(!in_shape(j) || memchr(data, 0, size),
			 "pushed.c refused an answer jansson reads: %s", rl_error_message());
	}
	again = rl_pushed_parse(&rd, data, size);
	FZ_CHECK(again == error && rd.n == n, "a second read differs");
	if (again == RL_OK)
		same_answer(j);
	json_decref(j);
	return 0;
}
