/*
 * jsonw.c — JSON text written without a tree (relasi/jsonw.h says why and
 * what it promises).
 */
#include "relasi/jsonw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relasi/error.h"
#include "utf8.h"

int rl_jsonw_string(sqlite3_str *out, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *run;
	size_t len = strlen(s);

	if (rl_utf8_bad(p, len) != len)
		return rl_error_set(RL_EINVALID, "a text value is not valid UTF-8");
	sqlite3_str_appendchar(out, 1, '"');
	for (;;) {
		for (run = p; *p && *p != '"' && *p != '\\' && *p >= 0x20; p++)
			;
		if (p > run)
			sqlite3_str_append(out, (const char *)run, (int)(p - run));
		if (!*p)
			break;
		switch (*p) {
		case '"': sqlite3_str_appendall(out, "\\\""); break;
		case '\\': sqlite3_str_appendall(out, "\\\\"); break;
		case '\b': sqlite3_str_appendall(out, "\\b"); break;
		case '\f': sqlite3_str_appendall(out, "\\f"); break;
		case '\n': sqlite3_str_appendall(out, "\\n"); break;
		case '\r': sqlite3_str_appendall(out, "\\r"); break;
		case '\t': sqlite3_str_appendall(out, "\\t"); break;
		default: {
			char esc[7] = { '\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15], 0 };
			sqlite3_str_appendall(out, esc);
		}
		}
		p++;
	}
	sqlite3_str_appendchar(out, 1, '"');
	return RL_OK;
}

int rl_jsonw_value(sqlite3_str *out, const struct rl_value *v)
{
	char buf[40];

	switch (v->type) {
	case RL_V_INT:
		sqlite3_str_appendf(out, "%lld", (long long)v->i);
		return RL_OK;
	case RL_V_REAL:
		if (!isfinite(v->d))
			return rl_error_set(RL_EINVALID, "a real value is not finite");
		/* glibc's conversion, not SQLite's printf: 17 digits read back
		 * as the same double. */
		snprintf(buf, sizeof(buf), "%.17g", v->d);
		if (!strpbrk(buf, ".eE"))
			strcat(buf, ".0");
		sqlite3_str_appendall(out, buf);
		return RL_OK;
	case RL_V_TEXT:
		/* NULL text is SQLite out of memory, never an empty string. */
		if (!v->s)
			return rl_error_set(RL_ENOMEM, "out of memory");
		return rl_jsonw_string(out, v->s);
	default:
		sqlite3_str_appendall(out, "null");
		return RL_OK;
	}
}

int rl_jsonw_finish(sqlite3_str *out, char **text)
{
	int failed = sqlite3_str_errcode(out) != SQLITE_OK;
	char *done = sqlite3_str_finish(out);

	*text = NULL;
	/* A copy: sqlite3_str's memory is SQLite's allocator's, and callers
	 * hand the text on to code that frees with free(). */
	if (!failed && done)
		*text = strdup(done);
	sqlite3_free(done);
	return *text ? RL_OK : rl_error_set(RL_ENOMEM, "out of memory");
}

/* rl_json_dumps's buffer: failed stays set once an append failed, whatever
 * jansson does with the callback's -1 afterwards. It grows through
 * jansson's allocator (malloc, unless a test replaces it: test_jsonw fails
 * each allocation in turn), so the text is freed with free(). Not a
 * sqlite3_str with rl_jsonw_finish, though their failures stick the same
 * way: tried in review, it put every frame's text under SQLite's
 * allocator, where tests/hub/test_faults.c fails allocations in turn, and
 * each failed frame then cost that test a read timeout (it ran past its
 * 300 s). */
struct dump_buf {
	char *text;
	size_t len, cap;
	int failed;
};

static int dump_append(const char *piece, size_t n, void *data)
{
	struct dump_buf *b = data;
	json_malloc_t jmalloc;
	json_free_t jfree;

	if (b->failed)
		return -1;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *grown;
		while (cap < b->len + n + 1)
			cap *= 2;
		json_get_alloc_funcs(&jmalloc, &jfree);
		if (!(grown = jmalloc(cap))) {
			b->failed = 1;
			return -1;
		}
		if (b->len)
			memcpy(grown, b->text, b->len);
		jfree(b->text);
		b->text = grown;
		b->cap = cap;
	}
	memcpy(b->text + b->len, piece, n);
	b->len += n;
	b->text[b->len] = '\0';
	return 0;
}

char *rl_json_dumps(const json_t *j, size_t flags)
{
	struct dump_buf b = { NULL, 0, 0, 0 };

	if (!j || json_dump_callback(j, dump_append, &b, flags) != 0 || b.failed || !b.text) {
		free(b.text);
		return NULL;
	}
	return b.text;
}
