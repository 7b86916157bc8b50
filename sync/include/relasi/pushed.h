/*
 * relasi/pushed.h — the hub's PUSHED answer (sync/PROTOCOL.md, "Results")
 * read without building a JSON tree, for the device.
 *
 * Why: the device sends its next batch only once the answer to the last is
 * in and read (the cursor it sends depends on it), so the hub waits while
 * the device decodes up to 4000 results; jansson built a hashtable per
 * result for it. Same lexer as the PUSH and PAGE readers (jscan.c).
 *
 * What it accepts (fuzz/fuzz_pushed.c checks it against jansson both
 * ways): one object with "batch" (an integer) and "results" (an array),
 * each exactly once; each result an object with "s" (one of the five
 * statuses below) and "v" (an integer >= 0) exactly once and "reason" (a
 * string) at most once. Any other key, or another status, is refused: a
 * status the device does not know must not be taken for an acceptance
 * (before this reader the device counted any unknown status as "same" and
 * dropped the change from its outbox).
 */
#ifndef RELASI_PUSHED_H
#define RELASI_PUSHED_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum rl_result_status {
	RL_RESULT_APPLIED, RL_RESULT_SAME, RL_RESULT_MERGED, RL_RESULT_CONFLICT, RL_RESULT_REFUSED
};

/* One result; reason is NULL when absent, else NUL-terminated UTF-8 in the
 * reader's arena. */
struct rl_result {
	enum rl_result_status status;
	long long version;
	const char *reason;
};

/* A PUSHED as read: results[0 .. n). Valid until the next rl_pushed_parse
 * or rl_pushed_free. */
struct rl_pushed {
	long long batch;
	struct rl_result *results;
	size_t n;
	/* the reader's own */
	size_t cap, arena_cap;
	char *arena;
};

/*
 * Read the payload of a PUSHED frame (buf[0 .. len), the bytes after the
 * type byte). RL_EPROTO naming the byte offset (and the result) and the
 * cause when it is not JSON or not of the shape above; RL_ETOOBIG past
 * RL_MAX_BATCH_CHANGES results, found before anything is allocated for
 * them; RL_ENOMEM. The struct is reused between calls (zero it before the
 * first).
 */
int rl_pushed_parse(struct rl_pushed *p, const unsigned char *buf, size_t len);

/* Free what the reader holds; the struct can be read into again. */
void rl_pushed_free(struct rl_pushed *p);

#ifdef __cplusplus
}
#endif
#endif
