/*
 * page.c — a PAGE frame's JSON read into flat arrays of changes and
 * conflicts (see relasi/page.h for why and for the shape; the lexer is
 * jscan.c's, as for push.c).
 */
#include "relasi/page.h"

#include <stdlib.h>
#include <string.h>

#include "jscan.h"
#include "relasi/error.h"
#include "relasi/limits.h"

#define PAGE_MAX_CHANGES (RL_MAX_PAGE_CHANGES + 64)   /* the hub ends a record's run */

/* A failure inside the i-th item of an array (what: "change", "conflict"). */
static int item_fail(const struct rl_jscan *x, const char *what, size_t i, const char *why)
{
	int error = rl_jscan_fail(x, why);

	rl_error_prefix("%s %zu", what, i + 1);
	return error;
}

/* A change's keys, in the bit order of `seen`. */
enum { C_S, C_T, C_R, C_F, C_V, C_H, C_D, C_ALL = (1u << 7) - 1 };

/* The change object at x->p into *c (the i-th, for messages). */
static int read_change(struct rl_jscan *x, size_t i, struct rl_page_change *c)
{
	static const char *const keys[] = { "s", "t", "r", "f", "v", "h", "d" };
	unsigned seen = 0;
	struct rl_cv v;
	int error, k, more;

	if (x->p == x->end || *x->p != '{')
		return item_fail(x, "change", i, "a change is an object");
	rl_jscan_open(x, &more);
	while (more) {
		if ((error = rl_jscan_key(x, keys, 7, "a key a pulled change does not have", &seen,
					  &k)) < 0 ||
		    (error = rl_jscan_scalar(x, &v, "a change's values are not nested")) < 0) {
			rl_error_prefix("change %zu", i + 1);
			return error;
		}
		switch (k) {
		case C_S: case C_H:
			if (v.type != RL_CV_INT)
				return item_fail(x, "change", i, "s and h are integers");
			if (v.u.i < 0)
				return item_fail(x, "change", i, "negative sequence or stamp");
			*(k == C_S ? &c->seq : &c->hlc) = v.u.i;
			break;
		case C_V:
			if (rl_jscan_field_value(&v, &c->value) < 0)
				return item_fail(x, "change", i,
						 "a value must be null, a number or a string");
			break;
		default:                        /* t, r, f, d */
			if (v.type != RL_CV_TEXT)
				return item_fail(x, "change", i, "t, r, f and d are strings");
			*(k == C_T ? &c->tbl : k == C_R ? &c->row : k == C_F ? &c->field
			  : &c->device) = v.u.s;
		}
		if ((error = rl_jscan_next(x, '}', &more)) < 0) {
			rl_error_prefix("change %zu", i + 1);
			return error;
		}
	}
	if (seen != C_ALL)
		return item_fail(x, "change", i, "a pulled change needs s, t, r, f, v, h and d");
	return RL_OK;
}

/* A conflict's keys, in the bit order of `seen`: the strings first. */
enum {
	K_T, K_R, K_F, K_KIND, K_BY, K_STATE, K_AT,
	K_ID, K_MINE, K_THEIRS, K_DECIDED, K_KEPT, K_RESOLUTION, K_ALL = (1u << 13) - 1
};

static int read_conflict(struct rl_jscan *x, size_t i, struct rl_page_conflict *c)
{
	static const char *const keys[] = { "t", "r", "f", "kind", "by", "state", "at", "id",
					    "mine", "theirs", "decided", "kept_mine",
					    "resolution" };
	const char **strings[] = { &c->tbl, &c->row, &c->field, &c->kind, &c->by, &c->state,
				   &c->at };
	unsigned seen = 0;
	struct rl_cv v;
	int error, k, more;

	if (x->p == x->end || *x->p != '{')
		return item_fail(x, "conflict", i, "a conflict is an object");
	rl_jscan_open(x, &more);
	while (more) {
		if ((error = rl_jscan_key(x, keys, 13, "a key a conflict does not have", &seen,
					  &k)) < 0 ||
		    (error = rl_jscan_scalar(x, &v, "a conflict's values are not nested")) < 0) {
			rl_error_prefix("conflict %zu", i + 1);
			return error;
		}
		if (k <= K_AT) {
			if (v.type != RL_CV_TEXT)
				return item_fail(x, "conflict", i,
						 "t, r, f, kind, by, state and at are strings");
			*strings[k] = v.u.s;
		} else if (k == K_ID) {
			if (v.type != RL_CV_INT)
				return item_fail(x, "conflict", i, "id is an integer");
			c->id = v.u.i;
		} else if (k == K_KEPT) {
			if (v.type != RL_CV_TRUE && v.type != RL_CV_FALSE)
				return item_fail(x, "conflict", i, "kept_mine is a boolean");
			c->kept_mine = v.type == RL_CV_TRUE;
		} else if (k == K_RESOLUTION) {
			if (v.type != RL_CV_TEXT && v.type != RL_CV_NULL)
				return item_fail(x, "conflict", i, "resolution is a string or null");
			c->resolution = v.type == RL_CV_TEXT ? v.u.s : NULL;
		} else if (rl_jscan_field_value(&v, k == K_MINE ? &c->mine : k == K_THEIRS
						? &c->theirs : &c->decided) < 0) {
			return item_fail(x, "conflict", i,
					 "mine, theirs and decided are null, a number or a string");
		}
		if ((error = rl_jscan_next(x, '}', &more)) < 0) {
			rl_error_prefix("conflict %zu", i + 1);
			return error;
		}
	}
	if (seen != K_ALL)
		return item_fail(x, "conflict", i, "a conflict needs id, t, r, f, kind, mine, theirs, "
				 "by, kept_mine, state, resolution, decided and at");
	return RL_OK;
}

/* "changes" (conflicts = 0) or "conflicts": the array at x->p ('['). */
static int read_array(struct rl_jscan *x, struct rl_page *pg, int conflicts)
{
	int error, more;

	rl_jscan_open(x, &more);
	while (more) {
		if (conflicts) {
			struct rl_page_conflict *c = rl_jscan_room(pg->conflicts, &pg->conflicts_cap,
								   pg->nconflicts,
								   RL_MAX_DEVICE_CONFLICTS,
								   sizeof(*c), "PAGE",
								   "conflicts", &error);
			if (!c)
				return error;
			pg->conflicts = c;
			if ((error = read_conflict(x, pg->nconflicts, &c[pg->nconflicts])) < 0)
				return error;
			pg->nconflicts++;
		} else {
			struct rl_page_change *c = rl_jscan_room(pg->changes, &pg->cap, pg->n,
								 PAGE_MAX_CHANGES, sizeof(*c),
								 "PAGE", "changes", &error);
			if (!c)
				return error;
			pg->changes = c;
			if ((error = read_change(x, pg->n, &c[pg->n])) < 0)
				return error;
			pg->n++;
		}
		if ((error = rl_jscan_next(x, ']', &more)) < 0)
			return error;
	}
	return RL_OK;
}

int rl_page_parse(struct rl_page *pg, const unsigned char *buf, size_t len)
{
	static const char *const keys[] = { "changes", "cursor", "more", "conflicts" };
	struct rl_jscan x;
	struct rl_cv v;
	unsigned seen = 0;
	int error, k, more;

	pg->n = pg->nconflicts = 0;
	pg->cursor = 0;
	pg->more = pg->has_conflicts = 0;
	if ((error = rl_jscan_init(&x, 'l', buf, len, &pg->arena, &pg->arena_cap)) < 0)
		return error;
	rl_jscan_ws(&x);
	if (x.p == x.end || *x.p != '{')
		return rl_jscan_fail(&x, "a PAGE is one JSON object");
	rl_jscan_open(&x, &more);
	while (more) {
		if ((error = rl_jscan_key(&x, keys, 4, "a key a PAGE does not have", &seen, &k)) < 0)
			return error;
		if (k == 0 || k == 3) {
			if (x.p == x.end || *x.p != '[')
				return rl_jscan_fail(&x, "changes and conflicts are arrays");
			error = read_array(&x, pg, k == 3);
		} else if ((error = rl_jscan_scalar(&x, &v, "cursor and more are not nested")) == 0) {
			if (k == 1 && v.type != RL_CV_INT)
				return rl_jscan_fail(&x, "cursor is an integer");
			if (k == 2 && v.type != RL_CV_TRUE && v.type != RL_CV_FALSE)
				return rl_jscan_fail(&x, "more is a boolean");
			if (k == 1)
				pg->cursor = v.u.i;
			else
				pg->more = v.type == RL_CV_TRUE;
		}
		if (error < 0 || (error = rl_jscan_next(&x, '}', &more)) < 0)
			return error;
	}
	if ((seen & 7u) != 7u)
		return rl_jscan_fail(&x, "a PAGE needs changes, cursor and more");
	pg->has_conflicts = (seen & 8u) != 0;
	rl_jscan_ws(&x);
	if (x.p != x.end)
		return rl_jscan_fail(&x, "text after the PAGE's object");
	return RL_OK;
}

void rl_page_free(struct rl_page *pg)
{
	free(pg->changes);
	free(pg->conflicts);
	free(pg->arena);
	memset(pg, 0, sizeof(*pg));
}
