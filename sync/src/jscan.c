/*
 * jscan.c — the JSON lexer of the tree-less frame readers (jscan.h says
 * what it accepts and why it exists).
 */
#include "jscan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "relasi/error.h"
#include "relasi/merge.h"
#include "utf8.h"

int rl_jscan_init(struct rl_jscan *x, char frame, const unsigned char *buf, size_t len,
		  char **arena, size_t *cap)
{
	if (len + 1 > *cap) {
		char *na = realloc(*arena, len + 1);
		if (!na)
			return rl_error_set(RL_ENOMEM, "out of memory");
		*arena = na;
		*cap = len + 1;
	}
	x->start = x->p = buf;
	x->end = buf + len;
	x->arena = *arena;
	x->used = 0;
	x->frame = frame;
	return RL_OK;
}

int rl_jscan_fail(const struct rl_jscan *x, const char *why)
{
	return rl_error_set(RL_EPROTO, "frame '%c': bad JSON at byte %zu: %s", x->frame,
			    (size_t)(x->p - x->start), why);
}

void rl_jscan_ws(struct rl_jscan *x)
{
	while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\n' || *x->p == '\r'))
		x->p++;
}

static int hex4(struct rl_jscan *x, unsigned *out)
{
	unsigned v = 0;
	int i;

	if (x->end - x->p < 4)
		return rl_jscan_fail(x, "a \\u escape needs four hex digits");
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
			return rl_jscan_fail(x, "a \\u escape needs four hex digits");
	}
	x->p += 4;
	*out = v;
	return RL_OK;
}

/* The string at x->p (its opening quote), unescaped into the arena. The
 * arena holds the whole payload's length plus one: an unescaped string
 * plus its NUL is never longer than its quoted text. */
int rl_jscan_string(struct rl_jscan *x, struct rl_cv *out)
{
	char *dst = x->arena + x->used, *d = dst;
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
				return rl_jscan_fail(x, "a string is not valid UTF-8");
			}
			memcpy(d, run, (size_t)(x->p - run));
			d += x->p - run;
		}
		if (x->p == x->end)
			return rl_jscan_fail(x, "a string does not end");
		if (*x->p == '"')
			break;
		if (*x->p < 0x20)
			return rl_jscan_fail(x, "a control character in a string");
		x->p++;                 /* the backslash */
		if (x->p == x->end)
			return rl_jscan_fail(x, "a string does not end");
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
			return rl_jscan_fail(x, "an unknown escape in a string");
		}
		if ((error = hex4(x, &cp)) < 0)
			return error;
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return rl_jscan_fail(x, "a lone low surrogate in a string");
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (x->end - x->p < 2 || x->p[0] != '\\' || x->p[1] != 'u')
				return rl_jscan_fail(x, "a high surrogate without its low one");
			x->p += 2;
			if ((error = hex4(x, &lo)) < 0)
				return error;
			if (lo < 0xdc00 || lo > 0xdfff)
				return rl_jscan_fail(x, "a high surrogate without its low one");
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		}
		if (cp == 0)
			return rl_jscan_fail(x, "\\u0000 in a string");
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
static int parse_number(struct rl_jscan *x, struct rl_cv *out)
{
	const unsigned char *s = x->p;
	char *copy = x->arena + x->used, *endp;
	int real = 0;

	if (x->p < x->end && *x->p == '-')
		x->p++;
	if (x->p == x->end || !is_digit(*x->p))
		return rl_jscan_fail(x, "a number needs a digit");
	if (*x->p == '0' && x->p + 1 < x->end && is_digit(x->p[1]))
		return rl_jscan_fail(x, "a number with a leading zero");
	while (x->p < x->end && is_digit(*x->p))
		x->p++;
	if (x->p < x->end && *x->p == '.') {
		real = 1;
		x->p++;
		if (x->p == x->end || !is_digit(*x->p))
			return rl_jscan_fail(x, "a fraction needs a digit");
		while (x->p < x->end && is_digit(*x->p))
			x->p++;
	}
	if (x->p < x->end && (*x->p == 'e' || *x->p == 'E')) {
		real = 1;
		x->p++;
		if (x->p < x->end && (*x->p == '+' || *x->p == '-'))
			x->p++;
		if (x->p == x->end || !is_digit(*x->p))
			return rl_jscan_fail(x, "an exponent needs a digit");
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
			return rl_jscan_fail(x, "a real number too large");
		}
	} else {
		out->type = RL_CV_INT;
		out->u.i = strtoll(copy, &endp, 10);
		if (errno == ERANGE) {
			x->p = s;
			return rl_jscan_fail(x, "an integer beyond 64 bits");
		}
	}
	return RL_OK;
}

static int parse_word(struct rl_jscan *x, const char *word, enum rl_cv_type type, struct rl_cv *out)
{
	size_t n = strlen(word);

	if ((size_t)(x->end - x->p) < n || memcmp(x->p, word, n) != 0)
		return rl_jscan_fail(x, "an unexpected character");
	x->p += n;
	out->type = type;
	return RL_OK;
}

int rl_jscan_scalar(struct rl_jscan *x, struct rl_cv *out, const char *nested)
{
	memset(out, 0, sizeof(*out));
	if (x->p == x->end)
		return rl_jscan_fail(x, "the text ends where a value should be");
	switch (*x->p) {
	case '"': return rl_jscan_string(x, out);
	case 't': return parse_word(x, "true", RL_CV_TRUE, out);
	case 'f': return parse_word(x, "false", RL_CV_FALSE, out);
	case 'n': return parse_word(x, "null", RL_CV_NULL, out);
	case '[': case '{': return rl_jscan_fail(x, nested);
	default:
		if (*x->p == '-' || is_digit(*x->p))
			return parse_number(x, out);
		return rl_jscan_fail(x, "an unexpected character");
	}
}

int rl_jscan_next(struct rl_jscan *x, char close, int *more)
{
	rl_jscan_ws(x);
	if (x->p < x->end && *x->p == ',') {
		x->p++;
		rl_jscan_ws(x);
		*more = 1;
		return RL_OK;
	}
	if (x->p < x->end && *x->p == (unsigned char)close) {
		x->p++;
		*more = 0;
		return RL_OK;
	}
	return rl_jscan_fail(x, close == ']' ? "an array needs ',' or ']'"
					     : "an object needs ',' or '}'");
}

int rl_jscan_key(struct rl_jscan *x, const char *const *keys, int nkeys, const char *unknown,
		 unsigned *seen, int *k)
{
	const unsigned char *at = x->p;
	struct rl_cv key;
	int error;

	if (x->p == x->end || *x->p != '"')
		return rl_jscan_fail(x, "an object key must be a string");
	if ((error = rl_jscan_string(x, &key)) < 0)
		return error;
	x->used -= key.n + 1;           /* the key is only compared */
	for (*k = 0; *k < nkeys && strcmp(key.u.s, keys[*k]) != 0; (*k)++)
		;
	if (*k == nkeys) {
		x->p = at;
		return rl_jscan_fail(x, unknown);
	}
	if (*seen & 1u << *k) {
		x->p = at;
		return rl_jscan_fail(x, "a key given twice");
	}
	*seen |= 1u << *k;
	rl_jscan_ws(x);
	if (x->p == x->end || *x->p != ':')
		return rl_jscan_fail(x, "a key needs ':'");
	x->p++;
	rl_jscan_ws(x);
	return RL_OK;
}

int rl_jscan_field_value(const struct rl_cv *cv, struct rl_value *out)
{
	memset(out, 0, sizeof(*out));
	switch (cv->type) {
	case RL_CV_NULL: out->type = RL_V_NULL; return 0;
	case RL_CV_INT: out->type = RL_V_INT; out->i = cv->u.i; return 0;
	case RL_CV_REAL: out->type = RL_V_REAL; out->d = cv->u.d; return 0;
	case RL_CV_TEXT: out->type = RL_V_TEXT; out->s = cv->u.s; return 0;
	default: return -1;
	}
}

void rl_jscan_open(struct rl_jscan *x, int *more)
{
	char close = *x->p == '{' ? '}' : ']';

	x->p++;
	rl_jscan_ws(x);
	*more = 1;
	if (x->p < x->end && *x->p == close) {
		x->p++;
		*more = 0;
	}
}

void *rl_jscan_room(void *items, size_t *cap, size_t n, size_t max, size_t size,
		    const char *frame, const char *what, int *error)
{
	size_t ncap;
	void *ni;

	if (n == max) {
		*error = rl_error_set(RL_ETOOBIG, "%s of more than %zu %s (limit %zu)", frame, max,
				      what, max);
		return NULL;
	}
	if (n < *cap)
		return items;
	ncap = *cap ? *cap * 2 : 256;
	if (ncap > max)
		ncap = max;
	if (!(ni = realloc(items, ncap * size))) {
		*error = rl_error_set(RL_ENOMEM, "out of memory");
		return NULL;
	}
	*cap = ncap;
	return ni;
}
