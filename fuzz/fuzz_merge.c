/*
 * fuzz_merge.c — the hub's three-way text merge, rl_merge_text
 * (sync/src/merge.c): our insert-only rule, then libgit2's git_merge_file.
 * Two of the three texts come from devices.
 *
 * Input: base, ours and theirs separated by NUL bytes (a missing one is "").
 *
 * Asserts:
 *  - RL_OK; *clean is 0 or 1 and a text is handed out exactly when clean;
 *  - one side unchanged (or both alike): clean, and the other side verbatim;
 *  - both sides only inserted lines into a base of one line or more (each
 *    base line is still a line of each side, in order; lines compared
 *    without their "\n" or "\r\n", a last line without one counting the
 *    same): clean, every line of each side is in the result in order (no
 *    line lost), and the result has no more lines than the two sides
 *    together less the base (no base line written twice: git's union merge
 *    did that); texts with a '\r' that ends no line are left to xdiff;
 *  - the same merge again gives the same answer.
 */
#include "fuzz_util.h"

#include <string.h>

#include "relasi/error.h"
#include "relasi/merge.h"

#define MAX_LINES 4096

struct lines {
	const char *p[MAX_LINES];
	size_t n[MAX_LINES];
	size_t count;
};

/* Content lines as merge.c reads them; 0 if there are too many to check. */
static int split(const char *s, struct lines *l)
{
	l->count = 0;
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t n = nl ? (size_t)(nl - s) : strlen(s);
		if (l->count == MAX_LINES)
			return 0;
		l->p[l->count] = s;
		l->n[l->count++] = n > 0 && nl && s[n - 1] == '\r' ? n - 1 : n;
		s = nl ? nl + 1 : s + n;
	}
	return 1;
}

static int line_eq(const struct lines *a, size_t i, const struct lines *b, size_t j)
{
	return a->n[i] == b->n[j] && memcmp(a->p[i], b->p[j], a->n[i]) == 0;
}

/* Is every line of small a line of big, in order? */
static int subsequence(const struct lines *small, const struct lines *big)
{
	size_t i, j = 0;

	for (i = 0; i < small->count; i++, j++) {
		while (j < big->count && !line_eq(small, i, big, j))
			j++;
		if (j == big->count)
			return 0;
	}
	return 1;
}

/* A '\r' that ends no line: merge.c leaves such text to xdiff. */
static int bare_cr(const char *s)
{
	for (s = strchr(s, '\r'); s; s = strchr(s + 1, '\r'))
		if (s[1] != '\n')
			return 1;
	return 0;
}

static struct lines lb, lo, lt, lm;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text[3] = { NULL, NULL, NULL }, *out = NULL, *again = NULL;
	const char *p;
	int clean = 7, clean2 = 7, rc, i;

	for (i = 0, p = (const char *)data; i < 3; i++) {
		size_t left = size - (size_t)(p - (const char *)data);
		const char *nul = memchr(p, '\0', left);
		size_t n = nul ? (size_t)(nul - p) : left;
		text[i] = fz_strndup((const uint8_t *)p, n);
		FZ_CHECK(text[i] != NULL, "out of memory");
		p = nul ? nul + 1 : p + n;
	}

	rc = rl_merge_text(text[0], text[1], text[2], &clean, &out);
	FZ_CHECK(rc == RL_OK, "rl_merge_text failed: %s", rl_error_message());
	FZ_CHECK(clean == 0 || clean == 1, "clean is %d", clean);
	FZ_CHECK((clean == 1) == (out != NULL), "clean %d with text %p", clean, (void *)out);

	if (strcmp(text[1], text[0]) == 0 || strcmp(text[1], text[2]) == 0)
		FZ_CHECK(clean && strcmp(out, text[2]) == 0, "an unchanged side: not the other's text");
	else if (strcmp(text[2], text[0]) == 0)
		FZ_CHECK(clean && strcmp(out, text[1]) == 0, "an unchanged side: not the other's text");

	if (!bare_cr(text[0]) && !bare_cr(text[1]) && !bare_cr(text[2]) &&
	    split(text[0], &lb) && split(text[1], &lo) && split(text[2], &lt) && lb.count > 0 &&
	    subsequence(&lb, &lo) && subsequence(&lb, &lt)) {
		FZ_CHECK(clean, "both sides only inserted lines, yet a conflict");
		FZ_CHECK(split(out, &lm), "too many lines");
		FZ_CHECK(subsequence(&lo, &lm), "a line of ours is lost");
		FZ_CHECK(subsequence(&lt, &lm), "a line of theirs is lost");
		FZ_CHECK(lm.count <= lo.count + lt.count - lb.count,
			 "%zu lines from %zu + %zu on a base of %zu: a line written twice", lm.count,
			 lo.count, lt.count, lb.count);
	}

	rc = rl_merge_text(text[0], text[1], text[2], &clean2, &again);
	FZ_CHECK(rc == RL_OK && clean2 == clean, "a second merge answers otherwise");
	FZ_CHECK(!out || strcmp(out, again) == 0, "a second merge gives another text");

	free(out);
	free(again);
	for (i = 0; i < 3; i++)
		free(text[i]);
	return 0;
}
