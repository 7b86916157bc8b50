/*
 * chunk.c — a snapshot CHUNK frame's JSON read into flat arrays (see
 * chunk.h for why and for the shape). The grammar is RFC 8259's, with
 * jansson's choices where the RFC leaves one: integers are those without
 * fraction or exponent and must fit 64 bits; a real that overflows is an
 * error; strings are UTF-8 without NUL (raw or as \u0000) and without lone
 * surrogates.
 */
#include "chunk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "relasi/error.h"
#include "relasi/limits.h"
#include "utf8.h"

#define MAX_ROW_ITEMS  (1 + 2 * RL_MAX_ROW_FIELDS)

struct px {
	const unsigned char *start, *p, *end;
	struct rl_chunk *c;
	size_t used;                    /* bytes of the arena in use */
};

static int fail(const struct px *x, const char *why)
{
	return rl_error_set(RL_EPROTO, "frame 'k': bad JSON at byte %zu: %s",
			    (size_t)(x->p - x->start), why);
}

static void skip_ws(struct px *x)
{
	while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\n' || *x->p == '\r'))
		x->p++;
}

static int hex4(struct px *x, unsigned *out)
{
	unsigned v = 0;
	int i;

	if (x->end - x->p < 4)
		return fail(x, "a \\u escape needs four hex digits");
	for (i = 0; i < 4; i++) {
		unsigned char h = x->p[i];
		v <<= 4;
		if (h >= '0' && h <= '9')
			v |= h - '0';
		else if (h >= 'a' && h <= 'f')
			v |= h - 'a' + 10;
		else if (h >= 'A' && h <= 'F')
			v |= h - 'A' + 10;
		else
			return fail(x, "a \\u escape needs four hex digits");
	}
	x->p += 4;
	*out = v;
	return RL_OK;
}

/* The string at x->p (its opening quote), unescaped into the arena. The
 * arena holds the whole payload's length plus one: an unescaped string
 * plus its NUL is never longer than its quoted text. */
static int parse_string(struct px *x, struct rl_cv *out)
{
	char *dst = x->c->arena + x->used, *d = dst;
	unsigned cp, lo;
	int error;

	x->p++;                         /* the opening quote */
	for (;;) {
		const unsigned char *run = x->p;
		size_t bad;

		while (x->p < x->end && *x->p != '"' && *x->p != '\\' && *x->p >= 0x20)
			x->p++;
		if (x->p > run) {
			/* A run ends at an ASCII byte, never inside a character. */
			if ((bad = rl_utf8_bad(run, (size_t)(x->p - run))) != (size_t)(x->p - run)) {
				x->p = run + bad;
				return fail(x, "a string is not valid UTF-8");
			}
			memcpy(d, run, (size_t)(x->p - run));
			d += x->p - run;
		}
		if (x->p == x->end)
			return fail(x, "a string does not end");
		if (*x->p == '"')
			break;
		if (*x->p < 0x20)
			return fail(x, "a control character in a string");
		x->p++;                 /* the backslash */
		if (x->p == x->end)
			return fail(x, "a string does not end");
		switch (*x->p++) {
		case '"': *d++ = '"'; continue;
		case '\\': *d++ = '\\'; continue;
		case '/': *d++ = '/'; continue;
		case 'b': *d++ = '\b'; continue;
		case 'f': *d++ = '\f'; continue;
		case 'n': *d++ = '\n'; continue;
		case 'r': *d++ = '\r'; continue;
		case 't': *d++ = '\t'; continue;
		case 'u': break;
		default:
			x->p--;
			return fail(x, "an unknown escape in a string");
		}
		if ((error = hex4(x, &cp)) < 0)
			return error;
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return fail(x, "a lone low surrogate in a string");
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (x->end - x->p < 2 || x->p[0] != '\\' || x->p[1] != 'u')
				return fail(x, "a high surrogate without its low one");
			x->p += 2;
			if ((error = hex4(x, &lo)) < 0)
				return error;
			if (lo < 0xdc00 || lo > 0xdfff)
				return fail(x, "a high surrogate without its low one");
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		}
		if (cp == 0)
			return fail(x, "\\u0000 in a string");
		if (cp < 0x80) {
			*d++ = (char)cp;
		} else if (cp < 0x800) {
			*d++ = (char)(0xc0 | cp >> 6);
			*d++ = (char)(0x80 | (cp & 0x3f));
		} else if (cp < 0x10000) {
			*d++ = (char)(0xe0 | cp >> 12);
			*d++ = (char)(0x80 | (cp >> 6 & 0x3f));
			*d++ = (char)(0x80 | (cp & 0x3f));
		} else {
			*d++ = (char)(0xf0 | cp >> 18);
			*d++ = (char)(0x80 | (cp >> 12 & 0x3f));
			*d++ = (char)(0x80 | (cp >> 6 & 0x3f));
			*d++ = (char)(0x80 | (cp & 0x3f));
		}
	}
	x->p++;                         /* the closing quote */
	*d = '\0';
	out->type = RL_CV_TEXT;
	out->n = (size_t)(d - dst);
	out->u.s = dst;
	x->used += out->n + 1;
	return RL_OK;
}

static int is_digit(unsigned char ch)
{
	return ch >= '0' && ch <= '9';
}

/* A number: checked against the grammar first, then converted from a
 * NUL-terminated copy at the arena's free end (its text is not a string's,
 * so the arena's bound still holds). */
static int parse_number(struct px *x, struct rl_cv *out)
{
	const unsigned char *s = x->p;
	char *copy = x->c->arena + x->used, *endp;
	int real = 0;

	if (x->p < x->end && *x->p == '-')
		x->p++;
	if (x->p == x->end || !is_digit(*x->p))
		return fail(x, "a number needs a digit");
	if (*x->p == '0' && x->p + 1 < x->end && is_digit(x->p[1]))
		return fail(x, "a number with a leading zero");
	while (x->p < x->end && is_digit(*x->p))
		x->p++;
	if (x->p < x->end && *x->p == '.') {
		real = 1;
		x->p++;
		if (x->p == x->end || !is_digit(*x->p))
			return fail(x, "a fraction needs a digit");
		while (x->p < x->end && is_digit(*x->p))
			x->p++;
	}
	if (x->p < x->end && (*x->p == 'e' || *x->p == 'E')) {
		real = 1;
		x->p++;
		if (x->p < x->end && (*x->p == '+' || *x->p == '-'))
			x->p++;
		if (x->p == x->end || !is_digit(*x->p))
			return fail(x, "an exponent needs a digit");
		while (x->p < x->end && is_digit(*x->p))
			x->p++;
	}
	memcpy(copy, s, (size_t)(x->p - s));
	copy[x->p - s] = '\0';
	errno = 0;
	if (real) {
		out->type = RL_CV_REAL;
		out->u.d = strtod(copy, &endp);
		if (errno == ERANGE && (out->u.d > 1.0 || out->u.d < -1.0)) {
			x->p = s;
			return fail(x, "a real number too large");
		}
	} else {
		out->type = RL_CV_INT;
		out->u.i = strtoll(copy, &endp, 10);
		if (errno == ERANGE) {
			x->p = s;
			return fail(x, "an integer beyond 64 bits");
		}
	}
	return RL_OK;
}

static int parse_word(struct px *x, const char *word, enum rl_cv_type type, struct rl_cv *out)
{
	size_t n = strlen(word);

	if ((size_t)(x->end - x->p) < n || memcmp(x->p, word, n) != 0)
		return fail(x, "an unexpected character");
	x->p += n;
	out->type = type;
	return RL_OK;
}

/* A value that is not an array or object. */
static int parse_scalar(struct px *x, struct rl_cv *out)
{
	memset(out, 0, sizeof(*out));
	if (x->p == x->end)
		return fail(x, "the text ends where a value should be");
	switch (*x->p) {
	case '"': return parse_string(x, out);
	case 't': return parse_word(x, "true", RL_CV_TRUE, out);
	case 'f': return parse_word(x, "false", RL_CV_FALSE, out);
	case 'n': return parse_word(x, "null", RL_CV_NULL, out);
	case '[': case '{': return fail(x, "values nest deeper than a chunk's");
	default:
		if (*x->p == '-' || is_digit(*x->p))
			return parse_number(x, out);
		return fail(x, "an unexpected character");
	}
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

/* Array separators: after an item, ',' (more: 1) or ']' (0). */
static int next_item(struct px *x, int *more)
{
	skip_ws(x);
	if (x->p < x->end && *x->p == ',') {
		x->p++;
		skip_ws(x);
		*more = 1;
		return RL_OK;
	}
	if (x->p < x->end && *x->p == ']') {
		x->p++;
		*more = 0;
		return RL_OK;
	}
	return fail(x, "an array needs ',' or ']'");
}

/* The '[' at x->p: out becomes an empty array whose items will start at
 * first; *more = 0 when it is "[]" (consumed). */
static void open_array(struct px *x, size_t first, struct rl_cv *out, int *more)
{
	x->p++;
	skip_ws(x);
	out->type = RL_CV_ARRAY;
	out->u.first = first;
	out->n = 0;
	*more = !(x->p < x->end && *x->p == ']');
	if (!*more)
		x->p++;
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
		    (error = next_item(x, &more)) < 0)
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
		if (x->p < x->end && *x->p == '[')
			error = parse_flat(x, 1 + 2 * RL_MAX_ROW_FIELDS, &row);
		else
			error = parse_scalar(x, &row);
		if (error < 0 ||
		    (error = grow((void **)&c->rowv, &c->cap_rowv, c->nrowv, sizeof(*c->rowv))) < 0)
			return error;
		c->rowv[c->nrowv++] = row;
		if ((error = next_item(x, &more)) < 0)
			return error;
	}
	return RL_OK;
}

int rl_chunk_parse(struct rl_chunk *c, const unsigned char *buf, size_t len)
{
	static const char *const keys[] = { "t", "cols", "rows", "last" };
	struct rl_cv *slots[4];
	struct px x;
	struct rl_cv key;
	size_t k;
	int error, more = 1;

	slots[0] = &c->t;
	slots[1] = &c->cols;
	slots[2] = &c->rows;
	slots[3] = &c->last;
	for (k = 0; k < 4; k++)
		memset(slots[k], 0, sizeof(*slots[k]));     /* RL_CV_MISSING */
	c->nitems = c->nrowv = 0;
	if (len + 1 > c->arena_cap) {
		char *na = realloc(c->arena, len + 1);
		if (!na)
			return rl_error_set(RL_ENOMEM, "out of memory");
		c->arena = na;
		c->arena_cap = len + 1;
	}
	x.start = x.p = buf;
	x.end = buf + len;
	x.c = c;
	x.used = 0;
	skip_ws(&x);
	if (x.p == x.end || *x.p != '{')
		return fail(&x, "a chunk is one JSON object");
	x.p++;
	skip_ws(&x);
	if (x.p < x.end && *x.p == '}') {
		x.p++;
		more = 0;
	}
	while (more) {
		const unsigned char *at = x.p;
		if (x.p == x.end || *x.p != '"')
			return fail(&x, "an object key must be a string");
		if ((error = parse_string(&x, &key)) < 0)
			return error;
		x.used -= key.n + 1;    /* the key is only compared */
		for (k = 0; k < 4 && strcmp(key.u.s, keys[k]) != 0; k++)
			;
		if (k == 4) {
			x.p = at;
			return fail(&x, "a key a chunk does not have");
		}
		if (slots[k]->type != RL_CV_MISSING) {
			x.p = at;
			return fail(&x, "a key given twice");
		}
		skip_ws(&x);
		if (x.p == x.end || *x.p != ':')
			return fail(&x, "a key needs ':'");
		x.p++;
		skip_ws(&x);
		if (x.p < x.end && *x.p == '[')
			error = k == 2 ? parse_rows(&x, slots[k])
				       : parse_flat(&x, RL_MAX_ROW_FIELDS, slots[k]);
		else
			error = parse_scalar(&x, slots[k]);
		if (error < 0)
			return error;
		skip_ws(&x);
		if (x.p < x.end && *x.p == ',') {
			x.p++;
			skip_ws(&x);
		} else if (x.p < x.end && *x.p == '}') {
			x.p++;
			more = 0;
		} else {
			return fail(&x, "an object needs ',' or '}'");
		}
	}
	skip_ws(&x);
	if (x.p != x.end)
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
