/*
 * push.c — a PUSH frame's JSON read into a flat array of changes (see
 * relasi/push.h for why and for the shape; the lexer is jscan.c's).
 */
#include "relasi/push.h"

#include <stdlib.h>
#include <string.h>

#include "jscan.h"
#include "relasi/error.h"
#include "relasi/limits.h"

/* A change's keys, in the bit order of `seen`. */
enum { K_T, K_R, K_F, K_V, K_B, K_H, K_ALL = (1u << 6) - 1 };

static int change_fail(const struct rl_jscan *x, size_t i, const char *why)
{
	int error = rl_jscan_fail(x, why);

	rl_error_prefix("change %zu", i + 1);
	return error;
}

/* The change object at x->p into *c (the i-th, for messages). */
static int read_change(struct rl_jscan *x, size_t i, struct rl_push_change *c)
{
	static const char *const keys[] = { "t", "r", "f", "v", "b", "h" };
	unsigned seen = 0;
	struct rl_cv v;
	int error, k, more;

	if (x->p == x->end || *x->p != '{')
		return change_fail(x, i, "a change is an object");
	rl_jscan_open(x, &more);
	while (more) {
		if ((error = rl_jscan_key(x, keys, 6, "a key a change does not have", &seen,
					  &k)) < 0 ||
		    (error = rl_jscan_scalar(x, &v, "a change's values are not nested")) < 0) {
			rl_error_prefix("change %zu", i + 1);
			return error;
		}
		switch (k) {
		case K_T: case K_R: case K_F:
			if (v.type != RL_CV_TEXT)
				return change_fail(x, i, "t, r and f are strings");
			*(k == K_T ? &c->tbl : k == K_R ? &c->row : &c->field) = v.u.s;
			break;
		case K_B: case K_H:
			if (v.type != RL_CV_INT)
				return change_fail(x, i, "b and h are integers");
			if (v.u.i < 0)
				return change_fail(x, i, "negative base or stamp");
			*(k == K_B ? &c->base : &c->hlc) = v.u.i;
			break;
		default:                        /* K_V */
			if (rl_jscan_field_value(&v, &c->value) < 0)
				return change_fail(x, i, "a value must be null, a number or a string");
		}
		if ((error = rl_jscan_next(x, '}', &more)) < 0) {
			rl_error_prefix("change %zu", i + 1);
			return error;
		}
	}
	if (seen != K_ALL)
		return change_fail(x, i, "a change needs t, r, f, v, b and h");
	return RL_OK;
}

/* "changes": the array at x->p ('['). */
static int read_changes(struct rl_jscan *x, struct rl_push *p)
{
	int error, more;

	rl_jscan_open(x, &more);
	while (more) {
		struct rl_push_change *c = rl_jscan_room(p->changes, &p->cap, p->n,
							 RL_MAX_BATCH_CHANGES, sizeof(*c), "PUSH",
							 "changes", &error);
		if (!c)
			return error;
		p->changes = c;
		if ((error = read_change(x, p->n, &p->changes[p->n])) < 0)
			return error;
		p->n++;
		if ((error = rl_jscan_next(x, ']', &more)) < 0)
			return error;
	}
	return RL_OK;
}

int rl_push_parse(struct rl_push *p, const unsigned char *buf, size_t len)
{
	static const char *const keys[] = { "batch", "cursor", "changes" };
	struct rl_jscan x;
	struct rl_cv v;
	unsigned seen = 0;
	int error, k, more;

	p->n = 0;
	p->batch = p->cursor = 0;
	if ((error = rl_jscan_init(&x, 'P', buf, len, &p->arena, &p->arena_cap)) < 0)
		return error;
	rl_jscan_ws(&x);
	if (x.p == x.end || *x.p != '{')
		return rl_jscan_fail(&x, "a PUSH is one JSON object");
	rl_jscan_open(&x, &more);
	while (more) {
		if ((error = rl_jscan_key(&x, keys, 3, "a key a PUSH does not have", &seen, &k)) < 0)
			return error;
		if (k == 2) {
			if (x.p == x.end || *x.p != '[')
				return rl_jscan_fail(&x, "changes is an array");
			error = read_changes(&x, p);
		} else if ((error = rl_jscan_scalar(&x, &v, "batch and cursor are integers")) == 0) {
			if (v.type != RL_CV_INT)
				return rl_jscan_fail(&x, "batch and cursor are integers");
			*(k == 0 ? &p->batch : &p->cursor) = v.u.i;
		}
		if (error < 0 || (error = rl_jscan_next(&x, '}', &more)) < 0)
			return error;
	}
	if (seen != 7u)
		return rl_jscan_fail(&x, "PUSH needs batch, cursor and changes");
	rl_jscan_ws(&x);
	if (x.p != x.end)
		return rl_jscan_fail(&x, "text after the PUSH's object");
	return RL_OK;
}

void rl_push_free(struct rl_push *p)
{
	free(p->changes);
	free(p->arena);
	memset(p, 0, sizeof(*p));
}
