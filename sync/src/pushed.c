/*
 * pushed.c — the hub's PUSHED answer read into a flat array of results
 * (see relasi/pushed.h for why and for the shape; the lexer is jscan.c's).
 */
#include "relasi/pushed.h"

#include <stdlib.h>
#include <string.h>

#include "jscan.h"
#include "relasi/error.h"
#include "relasi/limits.h"

static int result_fail(const struct rl_jscan *x, size_t i, const char *why)
{
	int error = rl_jscan_fail(x, why);

	rl_error_prefix("result %zu", i + 1);
	return error;
}

/* The status names, in the order of enum rl_result_status. */
static const char *const statuses[] = { "applied", "same", "merged", "conflict", "refused" };

/* The result object at x->p into *r (the i-th, for messages). */
static int read_result(struct rl_jscan *x, size_t i, struct rl_result *r)
{
	static const char *const keys[] = { "s", "v", "reason" };
	unsigned seen = 0;
	struct rl_cv v;
	int error, k, more, st;

	if (x->p == x->end || *x->p != '{')
		return result_fail(x, i, "a result is an object");
	rl_jscan_open(x, &more);
	r->reason = NULL;
	while (more) {
		if ((error = rl_jscan_key(x, keys, 3, "a key a result does not have", &seen,
					  &k)) < 0 ||
		    (error = rl_jscan_scalar(x, &v, "a result's values are not nested")) < 0) {
			rl_error_prefix("result %zu", i + 1);
			return error;
		}
		if (k == 0) {
			if (v.type != RL_CV_TEXT)
				return result_fail(x, i, "s is a string");
			for (st = 0; st < 5 && strcmp(v.u.s, statuses[st]) != 0; st++)
				;
			if (st == 5)
				return result_fail(x, i, "a status this device does not know");
			r->status = (enum rl_result_status)st;
		} else if (k == 1) {
			if (v.type != RL_CV_INT || v.u.i < 0)
				return result_fail(x, i, "v is an integer >= 0");
			r->version = v.u.i;
		} else {
			if (v.type != RL_CV_TEXT)
				return result_fail(x, i, "reason is a string");
			r->reason = v.u.s;
		}
		if ((error = rl_jscan_next(x, '}', &more)) < 0) {
			rl_error_prefix("result %zu", i + 1);
			return error;
		}
	}
	if ((seen & 3u) != 3u)
		return result_fail(x, i, "a result needs s and v");
	return RL_OK;
}

/* "results": the array at x->p ('['). */
static int read_results(struct rl_jscan *x, struct rl_pushed *p)
{
	int error, more;

	rl_jscan_open(x, &more);
	while (more) {
		struct rl_result *r = rl_jscan_room(p->results, &p->cap, p->n, RL_MAX_BATCH_CHANGES,
						    sizeof(*r), "PUSHED", "results", &error);
		if (!r)
			return error;
		p->results = r;
		if ((error = read_result(x, p->n, &r[p->n])) < 0)
			return error;
		p->n++;
		if ((error = rl_jscan_next(x, ']', &more)) < 0)
			return error;
	}
	return RL_OK;
}

int rl_pushed_parse(struct rl_pushed *p, const unsigned char *buf, size_t len)
{
	static const char *const keys[] = { "batch", "results" };
	struct rl_jscan x;
	struct rl_cv v;
	unsigned seen = 0;
	int error, k, more;

	p->n = 0;
	p->batch = 0;
	if ((error = rl_jscan_init(&x, 'p', buf, len, &p->arena, &p->arena_cap)) < 0)
		return error;
	rl_jscan_ws(&x);
	if (x.p == x.end || *x.p != '{')
		return rl_jscan_fail(&x, "a PUSHED is one JSON object");
	rl_jscan_open(&x, &more);
	while (more) {
		if ((error = rl_jscan_key(&x, keys, 2, "a key a PUSHED does not have", &seen,
					  &k)) < 0)
			return error;
		if (k == 1) {
			if (x.p == x.end || *x.p != '[')
				return rl_jscan_fail(&x, "results is an array");
			error = read_results(&x, p);
		} else if ((error = rl_jscan_scalar(&x, &v, "batch is an integer")) == 0) {
			if (v.type != RL_CV_INT)
				return rl_jscan_fail(&x, "batch is an integer");
			p->batch = v.u.i;
		}
		if (error < 0 || (error = rl_jscan_next(&x, '}', &more)) < 0)
			return error;
	}
	if (seen != 3u)
		return rl_jscan_fail(&x, "a PUSHED needs batch and results");
	rl_jscan_ws(&x);
	if (x.p != x.end)
		return rl_jscan_fail(&x, "text after the PUSHED's object");
	return RL_OK;
}

void rl_pushed_free(struct rl_pushed *p)
{
	free(p->results);
	free(p->arena);
	memset(p, 0, sizeof(*p));
}
