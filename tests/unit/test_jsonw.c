/*
 * test_jsonw.c — rl_json_dumps (sync/src/jsonw.c) under allocation failure:
 * for every allocation in turn failing, it returns the whole text or NULL,
 * never a text with a piece missing. jansson 2.14's json_dumps ignores a
 * failed write of an object's key and returns the rest as a success
 * (scripts/oomtest.py found a backup manifest with a key gone).
 */
#include "check.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "relasi/jsonw.h"

static long fail_at, calls;

static void *failing_malloc(size_t n)
{
	return ++calls == fail_at ? NULL : malloc(n);
}

/* A manifest-like object: nested objects, an array, keys to sort. */
static json_t *sample(void)
{
	return json_pack("{s:s, s:s, s:i, s:[{s:s, s:s}, {s:s, s:s}], s:{s:b, s:n, s:f}}",
			 "hub", "Test Hub", "compression", "zstd", "format", 1, "members",
			 "path", "hub.db", "sha256", "9f86d081884c7d659a2feaa0c55ad015",
			 "path", "audit.git/HEAD", "sha256", "28d25bf82a0c9b8d7e2f1a3c4b5d6e7f",
			 "schema", "whole", 1, "epoch", "seq", 64.5);
}

/* Every allocation of one dump failing in turn, with flags: each result
 * whole or NULL; returns how many were NULL. */
static int fail_each(json_t *j, size_t flags, const char *whole)
{
	int nulls = 0;
	long n;

	for (n = 1; n <= 64; n++) {
		char *text;
		calls = 0;
		fail_at = n;
		json_set_alloc_funcs(failing_malloc, free);
		text = rl_json_dumps(j, flags);
		json_set_alloc_funcs(malloc, free);
		if (!text) {
			nulls++;
			continue;
		}
		CHECK_EQ_STR(text, whole);
		free(text);
	}
	return nulls;
}

int main(void)
{
	static const size_t flags[] = { JSON_COMPACT, JSON_COMPACT | JSON_SORT_KEYS,
					JSON_INDENT(1) | JSON_SORT_KEYS,
					JSON_INDENT(2) | JSON_PRESERVE_ORDER };
	json_t *j = sample();
	size_t i;

	CHECK(j != NULL);
	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		char *whole = rl_json_dumps(j, flags[i]), *plain = json_dumps(j, flags[i]);
		CHECK(whole != NULL);
		CHECK_EQ_STR(whole, plain);        /* the same text as jansson's own */
		/* the failures were met: some allocations were the dump's */
		CHECK(fail_each(j, flags[i], whole) > 0);
		free(whole);
		free(plain);
	}
	CHECK(rl_json_dumps(NULL, 0) == NULL);
	json_decref(j);
	CHECK_DONE();
}
