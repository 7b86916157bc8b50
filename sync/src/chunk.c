/*
 * chunk.c — a snapshot CHUNK frame's JSON read into flat arrays (see
 * chunk.h for why and for the shape; the lexer, with its grammar, is
 * jscan.c's).
 */
#include "chunk.h"

#include <stdlib.h>
#include <string.h>

#include "relasi/error.h"
#include "relasi/limits.h"

#define MAX_ROW_ITEMS  (1 + 2 * RL_MAX_ROW_FIELDS)

struct px {
	struct rl_jscan s;
	struct rl_chunk *c;
};

static int fail(const struct px *x, const char *why)
{
	return rl_jscan_fail(&x->s, why);
}

static int parse_scalar(struct px *x, struct rl_cv *out)
{
	return rl_jscan_scalar(&x->s, out, "values nest deeper than a chunk's");
}

/* Room for one more in an array that grows by doubling. */
static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *na;

	if (n < *cap)
		return RL_OK;
	ncap = *cap ? *cap * 2 : 256;
	if (!(na = realloc(*arr, ncap * size)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	*arr = na;
	*cap = ncap;
	return RL_OK;
}

/* The '[' at x->p: out becomes an empty array whose items will start at
 * first; *more = 0 when it is "[]" (consumed). */
static void open_array(struct px *x, size_t first, struct rl_cv *out, int *more)
{
	struct rl_jscan *s = &x->s;

	s->p++;
	rl_jscan_ws(s);
	out->type = RL_CV_ARRAY;
	out->u.first = first;
	out->n = 0;
	*more = !(s->p < s->end && *s->p == ']');
	if (!*more)
		s->p++;
}

/* An array of at most max scalars at x->p ('['), into items. */
static int parse_flat(struct px *x, size_t max, struct rl_cv *out)
{
	struct rl_chunk *c = x->c;
	int error, more;

	for (open_array(x, c->nitems, out, &more); more; out->n++) {
		if (out->n == max)
			return fail(x, "an array longer than a chunk's");
		if ((error = grow((void **)&c->items, &c->cap_items, c->nitems,
				  sizeof(*c->items))) < 0 ||
		    (error = parse_scalar(x, &c->items[c->nitems])) < 0 ||
		    (error = rl_jscan_next(&x->s, ']', &more)) < 0)
			return error;
		c->nitems++;
	}
	return RL_OK;
}

/* "rows": an array of arrays of scalars (or of scalars, for the caller to
 * refuse), into rowv. */
static int parse_rows(struct px *x, struct rl_cv *out)
{
	struct rl_chunk *c = x->c;
	struct rl_cv row;
	int error, more;

	for (open_array(x, c->nrowv, out, &more); more; out->n++) {
		if (out->n == RL_MAX_CHUNK_ROWS)
			return fail(x, "more rows than a chunk holds");
		if (x->s.p < x->s.end && *x->s.p == '[')
			error = parse_flat(x, 1 + 2 * RL_MAX_ROW_FIELDS, &row);
		else
			error = parse_scalar(x, &row);
		if (error < 0 ||
		    (error = grow((void **)&c->rowv, &c->cap_rowv, c->nrowv, sizeof(*c->rowv))) < 0)
			return error;
		c->rowv[c->nrowv++] = row;
		if ((error = rl_jscan_next(&x->s, ']', &more)) < 0)
			return error;
	}
	return RL_OK;
}

int rl_chunk_parse(struct rl_chunk *c, const unsigned char *buf, size_t len)
{
	static const char *const keys[] = { "t", "cols", "rows", "last" };
	struct rl_cv *slots[4];
	struct px x;
	unsigned seen = 0;
	int error, k, more = 1;

	slots[0] = &c->t;
	slots[1] = &c->cols;
	slots[2] = &c->rows;
	slots[3] = &c->last;
	for (k = 0; k < 4; k++)
		memset(slots[k], 0, sizeof(*slots[k]));     /* RL_CV_MISSING */
	c->nitems = c->nrowv = 0;
	if ((error = rl_jscan_init(&x.s, 'k', buf, len, &c->arena, &c->arena_cap)) < 0)
		return error;
	x.c = c;
	rl_jscan_ws(&x.s);
	if (x.s.p == x.s.end || *x.s.p != '{')
		return fail(&x, "a chunk is one JSON object");
	x.s.p++;
	rl_jscan_ws(&x.s);
	if (x.s.p < x.s.end && *x.s.p == '}') {
		x.s.p++;
		more = 0;
	}
	while (more) {
		if ((error = rl_jscan_key(&x.s, keys, 4, "a key a chunk does not have", &seen, &k)) < 0)
			return error;
		if (x.s.p < x.s.end && *x.s.p == '[')
			error = k == 2 ? parse_rows(&x, slots[k])
				       : parse_flat(&x, RL_MAX_ROW_FIELDS, slots[k]);
		else
			error = parse_scalar(&x, slots[k]);
		if (error < 0 || (error = rl_jscan_next(&x.s, '}', &more)) < 0)
			return error;
	}
	rl_jscan_ws(&x.s);
	if (x.s.p != x.s.end)
		return fail(&x, "text after the chunk's object");
	return RL_OK;
}

void rl_chunk_free(struct rl_chunk *c)
{
	free(c->items);
	free(c->rowv);
	free(c->arena);
	memset(c, 0, sizeof(*c));
}
