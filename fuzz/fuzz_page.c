/*
 * fuzz_page.c — the device's PAGE reader (sync/src/page.c, relasi/page.h)
 * against jansson, differentially. The reader exists for the device's
 * speed only, so it must read exactly what jansson reads, within the
 * protocol's keys.
 *
 * Input: a PAGE frame's payload (the bytes after the type byte).
 *
 * Asserts:
 *  - what page.c accepts, jansson (JSON_REJECT_DUPLICATES) accepts too: an
 *    object with exactly changes, cursor, more and maybe conflicts, equal
 *    values, changes of exactly s, t, r, f, v, h, d and conflicts of
 *    exactly their thirteen keys, with equal values (the same types,
 *    integers, reals bit for bit, strings byte for byte);
 *  - what jansson accepts in that shape (the types above, s and h >= 0, at
 *    most 2064 changes and 200 conflicts), page.c accepts — except text
 *    with a NUL byte, which page.c refuses as RFC 8259 does (jansson skips
 *    a NUL after a number; see fuzz_chunk.c);
 *  - a refusal is RL_EPROTO naming the byte, or RL_ETOOBIG naming the limit;
 *  - reading twice into the same struct gives the same result.
 */
#include "fuzz_util.h"

#include <string.h>

#include <jansson.h>

#include "relasi/error.h"
#include "relasi/limits.h"
#include "relasi/page.h"

static struct rl_page rd;

static int is_int(const json_t *j, int nonneg)
{
	return json_is_integer(j) && (!nonneg || json_integer_value(j) >= 0);
}

static int is_value(const json_t *v)
{
	return v && (json_is_null(v) || json_is_integer(v) || json_is_real(v) || json_is_string(v));
}

static int change_in_shape(const json_t *c)
{
	static const char *const strings[] = { "t", "r", "f", "d" };
	size_t i;

	if (!json_is_object(c) || json_object_size(c) != 7 || !is_int(json_object_get(c, "s"), 1) ||
	    !is_int(json_object_get(c, "h"), 1) || !is_value(json_object_get(c, "v")))
		return 0;
	for (i = 0; i < 4; i++)
		if (!json_is_string(json_object_get(c, strings[i])))
			return 0;
	return 1;
}

static int conflict_in_shape(const json_t *c)
{
	static const char *const strings[] = { "t", "r", "f", "kind", "by", "state", "at" };
	json_t *res = json_object_get(c, "resolution");
	size_t i;

	if (!json_is_object(c) || json_object_size(c) != 13 || !is_int(json_object_get(c, "id"), 0) ||
	    !is_value(json_object_get(c, "mine")) || !is_value(json_object_get(c, "theirs")) ||
	    !is_value(json_object_get(c, "decided")) ||
	    !json_is_boolean(json_object_get(c, "kept_mine")) ||
	    !res || !(json_is_string(res) || json_is_null(res)))
		return 0;
	for (i = 0; i < 7; i++)
		if (!json_is_string(json_object_get(c, strings[i])))
			return 0;
	return 1;
}

static int in_shape(const json_t *o)
{
	json_t *cs = json_object_get(o, "changes"), *cf = json_object_get(o, "conflicts"), *c;
	size_t i;

	if (!json_is_object(o) || json_object_size(o) != (cf ? 4u : 3u) ||
	    !is_int(json_object_get(o, "cursor"), 0) ||
	    !json_is_boolean(json_object_get(o, "more")) || !json_is_array(cs) ||
	    json_array_size(cs) > RL_MAX_PAGE_CHANGES + 64 ||
	    (cf && (!json_is_array(cf) || json_array_size(cf) > RL_MAX_DEVICE_CONFLICTS)))
		return 0;
	json_array_foreach(cs, i, c)
		if (!change_in_shape(c))
			return 0;
	json_array_foreach(cf, i, c)
		if (!conflict_in_shape(c))
			return 0;
	return 1;
}

static void same_page(const json_t *j)
{
	json_t *cs = json_object_get(j, "changes"), *cf = json_object_get(j, "conflicts");
	size_t i;

	FZ_CHECK(json_integer_value(json_object_get(j, "cursor")) == rd.cursor, "cursor differs");
	FZ_CHECK(json_is_true(json_object_get(j, "more")) == rd.more, "more differs");
	FZ_CHECK(json_array_size(cs) == rd.n, "change count differs");
	for (i = 0; i < rd.n; i++) {
		const struct rl_page_change *c = &rd.changes[i];
		json_t *o = json_array_get(cs, i);
		FZ_CHECK(json_integer_value(json_object_get(o, "s")) == c->seq, "s differs");
		FZ_CHECK(json_integer_value(json_object_get(o, "h")) == c->hlc, "h differs");
		fz_same_text(c->tbl, json_object_get(o, "t"), "t");
		fz_same_text(c->row, json_object_get(o, "r"), "r");
		fz_same_text(c->field, json_object_get(o, "f"), "f");
		fz_same_text(c->device, json_object_get(o, "d"), "d");
		fz_same_value(&c->value, json_object_get(o, "v"));
	}
	FZ_CHECK(rd.has_conflicts == (cf != NULL), "conflicts present differs");
	FZ_CHECK(json_array_size(cf) == rd.nconflicts, "conflict count differs");
	for (i = 0; i < rd.nconflicts; i++) {
		const struct rl_page_conflict *c = &rd.conflicts[i];
		json_t *o = json_array_get(cf, i), *res = json_object_get(o, "resolution");
		FZ_CHECK(json_integer_value(json_object_get(o, "id")) == c->id, "id differs");
		fz_same_text(c->tbl, json_object_get(o, "t"), "conflict t");
		fz_same_text(c->row, json_object_get(o, "r"), "conflict r");
		fz_same_text(c->field, json_object_get(o, "f"), "conflict f");
		fz_same_text(c->kind, json_object_get(o, "kind"), "kind");
		fz_same_text(c->by, json_object_get(o, "by"), "by");
		fz_same_text(c->state, json_object_get(o, "state"), "state");
		fz_same_text(c->at, json_object_get(o, "at"), "at");
		fz_same_value(&c->mine, json_object_get(o, "mine"));
		fz_same_value(&c->theirs, json_object_get(o, "theirs"));
		fz_same_value(&c->decided, json_object_get(o, "decided"));
		FZ_CHECK(json_is_true(json_object_get(o, "kept_mine")) == c->kept_mine,
			 "kept_mine differs");
		if (json_is_null(res))
			FZ_CHECK(c->resolution == NULL, "resolution null differs");
		else
			fz_same_text(c->resolution, res, "resolution");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	int error, again;
	size_t n, nc;

	error = rl_page_parse(&rd, data, size);
	n = rd.n;
	nc = rd.nconflicts;
	if (error == RL_OK) {
		FZ_CHECK(!memchr(data, 0, size), "page.c accepted a NUL byte");
		FZ_CHECK(in_shape(j), "page.c accepted what jansson does not read as a PAGE");
		same_page(j);
	} else if (error == RL_ETOOBIG) {
		FZ_CHECK(strstr(rl_error_message(), "limit") != NULL, "no limit named: %s",
			 rl_error_message());
		FZ_CHECK(!in_shape(j) || memchr(data, 0, size), "page.c refused a page within limits");
	} else {
		FZ_CHECK(error == RL_EPROTO, "error %d", error);
		FZ_CHECK(strstr(rl_error_message(), "at byte") != NULL, "no byte named: %s",
			 rl_error_message());
		FZ_CHECK(!in_shape(j) || memchr(data, 0, size),
			 "page.c refused a page jansson reads: %s", rl_error_message());
	}
	again = rl_page_parse(&rd, data, size);
	FZ_CHECK(again == error && rd.n == n && rd.nconflicts == nc, "a second read differs");
	if (again == RL_OK)
		same_page(j);
	json_decref(j);
	return 0;
}
