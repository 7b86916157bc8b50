/*
 * jscan.h — private: the JSON lexer shared by the readers that take a
 * frame's JSON without building a jansson tree (chunk.c for snapshot
 * CHUNKs, push.c for PUSH batches; their headers say why each exists).
 *
 * It reads RFC 8259 with jansson's choices where the RFC leaves one
 * (integers are those without fraction or exponent and must fit 64 bits; a
 * real that overflows is an error; strings are UTF-8 without NUL, raw or
 * as \u0000, and without lone surrogates), so a reader built on it reads
 * the same values as jansson; each reader's differential fuzzer
 * (fuzz/fuzz_chunk.c, fuzz/fuzz_push.c) checks that on any input.
 *
 * Strings are unescaped into an arena the reader sizes to the payload's
 * length plus one before it starts: an unescaped string plus its NUL is
 * never longer than its quoted text, so the arena never grows mid-parse
 * and every string stays where it was put.
 */
#ifndef RELASI_JSCAN_H
#define RELASI_JSCAN_H

#include <stddef.h>

enum rl_cv_type {
	RL_CV_MISSING,          /* a key that was not there */
	RL_CV_NULL, RL_CV_FALSE, RL_CV_TRUE, RL_CV_INT, RL_CV_REAL, RL_CV_TEXT,
	RL_CV_ARRAY             /* n items from first (the reader's arrays) */
};

/* One JSON value. */
struct rl_cv {
	enum rl_cv_type type;
	size_t n;               /* RL_CV_TEXT: its length; RL_CV_ARRAY: its items */
	union {
		long long i;    /* RL_CV_INT */
		double d;       /* RL_CV_REAL */
		const char *s;  /* RL_CV_TEXT: NUL-terminated UTF-8, no NUL inside */
		size_t first;   /* RL_CV_ARRAY: where its items begin */
	} u;
};

/* A lexer over buf[0 .. len) (a frame's payload). */
struct rl_jscan {
	const unsigned char *start, *p, *end;
	char *arena;            /* at least len + 1 bytes (rl_jscan_init) */
	size_t used;            /* bytes of the arena in use */
	char frame;             /* the frame type, for messages */
};

/* Start reading buf[0 .. len) of a frame of type `frame`; *arena (capacity
 * *cap, the caller's, kept between calls) grows to len + 1. RL_ENOMEM. */
int rl_jscan_init(struct rl_jscan *x, char frame, const unsigned char *buf, size_t len,
		  char **arena, size_t *cap);

/* RL_EPROTO: "frame 'F': bad JSON at byte N: why" at the lexer's place. */
int rl_jscan_fail(const struct rl_jscan *x, const char *why);

void rl_jscan_ws(struct rl_jscan *x);

/* The string at x->p (its opening quote), into the arena. */
int rl_jscan_string(struct rl_jscan *x, struct rl_cv *out);

/* A value that is not an array or an object; '[' or '{' is refused with
 * `nested` as the reason. */
int rl_jscan_scalar(struct rl_jscan *x, struct rl_cv *out, const char *nested);

/* After an item of an array (close ']') or a member of an object (close
 * '}'): white space, then ',' and white space (*more = 1) or the close
 * (*more = 0). */
int rl_jscan_next(struct rl_jscan *x, char close, int *more);

/* An object key at x->p, compared with keys[0 .. nkeys): *k its index, or
 * a refusal (`unknown` as the reason, or "a key given twice": seen is a
 * bit set of the keys read so far, updated), then the ':' and white space
 * after it. */
int rl_jscan_key(struct rl_jscan *x, const char *const *keys, int nkeys, const char *unknown,
		 unsigned *seen, int *k);

/* x->p at '{' or '[' (the caller checked which): past it and white space;
 * *more = 0 and past the close too when it is empty. */
void rl_jscan_open(struct rl_jscan *x, int *more);

/* items (capacity *cap, n in use, each `size` bytes) with room for one
 * more, at most max in all; NULL with *error set when there is none:
 * RL_ETOOBIG "FRAME of more than MAX WHAT (limit MAX)" or RL_ENOMEM. */
void *rl_jscan_room(void *items, size_t *cap, size_t n, size_t max, size_t size,
		    const char *frame, const char *what, int *error);

/* A scalar read by rl_jscan_scalar as a field value (merge.h): null, an
 * integer, a real or a text (pointing into the arena); -1 for a boolean. */
struct rl_value;
int rl_jscan_field_value(const struct rl_cv *cv, struct rl_value *out);

#endif
