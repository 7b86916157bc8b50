/*
 * cli.c — option parsing, error reporting and output helpers shared by all
 * relasi commands (see cli.h).
 */
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relasi/valid.h"

const char *cli_get(const struct cli_args *a, const char *name)
{
	size_t i;

	for (i = 0; i < a->nopts; i++)
		if (strcmp(a->opts[i].name, name) == 0)
			return a->vals[i];
	return NULL;
}

struct rl_fieldval *cli_model_values(const struct cli_args *a, size_t *n, size_t extra)
{
	struct rl_fieldval *v = calloc(a->nopts + extra + 1, sizeof(*v));
	size_t i;

	*n = 0;
	if (!v)
		return NULL;
	for (i = 0; i < a->nmodel; i++) {
		if (!a->vals[i])
			continue;
		v[*n].field = a->opts[i].field;
		v[*n].text = a->vals[i];
		(*n)++;
	}
	return v;
}

int cli_fail(int error)
{
	const char *msg = rl_error_message();

	fprintf(stderr, "relasi: %s\n", *msg ? msg : "unknown error");
	switch (error) {
	case RL_EUSAGE: return EXIT_USAGE;
	case RL_ENOTFOUND: return EXIT_NOTFOUND;
	case RL_EAMBIGUOUS: return EXIT_AMBIGUOUS;
	case RL_EINVALID: case RL_ETOOBIG: return EXIT_INVALID;
	case RL_EVERSION: return EXIT_VERSION;
	case RL_ESTORE: case RL_EIO: return EXIT_STORE;
	default: return 1;
	}
}

int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "relasi: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	if (cmd)
		fprintf(stderr, "usage: relasi %s %s\n(see 'relasi %s --help')\n",
			cmd->name, cmd->usage ? cmd->usage : "", cmd->name);
	return EXIT_USAGE;
}

int cli_print_json(json_t *j)
{
	char *s;

	if (!j)
		return rl_error_set(RL_ENOMEM, "out of memory");
	s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (!s)
		return rl_error_set(RL_ENOMEM, "out of memory");
	puts(s);
	free(s);
	return RL_OK;
}

json_t *cli_row_json(sqlite3_stmt *st)
{
	json_t *o = json_object();
	int i, n = sqlite3_column_count(st);

	for (i = 0; o && i < n; i++) {
		const char *name = sqlite3_column_name(st, i);
		json_t *v;
		switch (sqlite3_column_type(st, i)) {
		case SQLITE_INTEGER: v = json_integer(sqlite3_column_int64(st, i)); break;
		case SQLITE_FLOAT: v = json_real(sqlite3_column_double(st, i)); break;
		case SQLITE_NULL: v = json_null(); break;
		default: v = json_string((const char *)sqlite3_column_text(st, i)); break;
		}
		json_object_set_new(o, name, v ? v : json_null());
	}
	return o;
}

const char *cli_col(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);
	return s ? s : "";
}

const char *cli_short_id(struct cli_ctx *ctx, const char *table, const char *id,
			 char buf[RL_ID_BUFSZ])
{
	const struct rl_table *t = rl_model_table(table);

	if (!id || !*id) {
		buf[0] = '\0';
		return buf;
	}
	if (!t || rl_record_short_id(ctx->store, t, id, buf) < 0)
		snprintf(buf, RL_ID_BUFSZ, "%s", id);
	return buf;
}

const char *cli_money(char *buf, size_t len, sqlite3_stmt *st, int amount_col, int currency_col)
{
	const char *cur = cli_col(st, currency_col);

	buf[0] = '\0';
	if (sqlite3_column_type(st, amount_col) == SQLITE_NULL)
		return buf;
	if (rl_money_format(buf, len, sqlite3_column_int64(st, amount_col), cur) < 0) {
		snprintf(buf, len, "%lld", (long long)sqlite3_column_int64(st, amount_col));
		return buf;
	}
	if (strlen(buf) + 5 < len) {
		strcat(buf, " ");
		strcat(buf, cur);
	}
	return buf;
}

int cli_emit(struct cli_ctx *ctx, sqlite3_stmt *st, const struct cli_view *v,
	     json_t *into, const char *key)
{
	struct cli_table *t = NULL;
	json_t *arr = NULL;
	const char **cells = NULL;
	char **bufs = NULL;
	char sid[RL_ID_BUFSZ];
	int rc, i, error = RL_OK;

	/* Each cell formats into its own buffer: 64 bytes holds any number,
	 * money or date we format; longer text comes straight from SQLite. */
	if (ctx->json ? !(arr = json_array())
		      : (!(t = cli_table_new((size_t)v->ncols, v->headers)) ||
			 !(cells = calloc((size_t)v->ncols, sizeof(*cells))) ||
			 !(bufs = calloc((size_t)v->ncols, sizeof(*bufs))))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; bufs && i < v->ncols; i++)
		if (!(bufs[i] = malloc(64))) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto cleanup;
		}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (v->id_table)
			cli_short_id(ctx, v->id_table, cli_col(st, 0), sid);
		if (arr) {
			json_t *o = cli_row_json(st);
			if (v->id_table)
				json_object_set_new(o, "short_id", json_string(sid));
			if (v->json_extra)
				v->json_extra(ctx, st, o);
			json_array_append_new(arr, o);
			continue;
		}
		for (i = 0; i < v->ncols; i++) {
			const char *c = v->cell ? v->cell(ctx, st, i, bufs[i], 64) : NULL;
			cells[i] = c ? c : cli_col(st, i);
		}
		if (v->id_table)
			cells[0] = sid;
		if ((error = cli_table_add(t, cells)) < 0)
			goto cleanup;
	}
	if (rc != SQLITE_DONE) {
		error = rl_store_error(ctx->store, "reading rows");
		goto cleanup;
	}
	if (arr && into) {
		json_object_set(into, key, arr);
	} else if (arr) {
		error = cli_print_json(arr);
		arr = NULL;
	} else if (cli_table_rows(t) == 0 && v->empty) {
		printf("%s\n", v->empty);
	} else {
		cli_table_print(t, stdout);
	}
cleanup:
	sqlite3_reset(st);
	json_decref(arr);
	cli_table_free(t);
	for (i = 0; bufs && i < v->ncols; i++)
		free(bufs[i]);
	free(bufs);
	free(cells);
	return error;
}

int cli_write(struct cli_ctx *ctx, int (*fn)(struct cli_ctx *ctx, void *arg), void *arg)
{
	int error;

	if ((error = rl_store_begin(ctx->store)) < 0)
		return error;
	if ((error = fn(ctx, arg)) < 0) {
		rl_store_rollback(ctx->store);
		return error;
	}
	if ((error = rl_store_commit(ctx->store)) < 0) {
		rl_store_rollback(ctx->store);
		return error;
	}
	return RL_OK;
}

/* ---- text tables ---------------------------------------------------------- */

/* Cells wider than this are cut with "…" in terminal tables (JSON is whole). */
#define CLI_CELL_MAX 40

struct cli_table {
	size_t ncols, nrows, cap;
	char **cells;             /* nrows * ncols, row 0 = headers */
};

struct cli_table *cli_table_new(size_t ncols, const char *const *headers)
{
	struct cli_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->ncols = ncols;
	if (cli_table_add(t, headers) < 0) {
		free(t);
		return NULL;
	}
	return t;
}

int cli_table_add(struct cli_table *t, const char *const *cells)
{
	size_t i;

	if (t->nrows == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 16;
		char **nc = realloc(t->cells, ncap * t->ncols * sizeof(*nc));
		if (!nc)
			return rl_error_set(RL_ENOMEM, "out of memory");
		t->cells = nc;
		t->cap = ncap;
	}
	for (i = 0; i < t->ncols; i++) {
		const char *c = cells[i] ? cells[i] : "";
		char *copy = strdup(c), *nl;
		if (!copy)
			return rl_error_set(RL_ENOMEM, "out of memory");
		while ((nl = strpbrk(copy, "\r\n\t")))
			*nl = ' ';
		t->cells[t->nrows * t->ncols + i] = copy;
	}
	t->nrows++;
	return RL_OK;
}

/* Display width in code points (good enough for Latin and Indonesian text). */
static size_t utf8_width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

/* Byte length of the first max code points of s. */
static size_t utf8_prefix(const char *s, size_t max)
{
	size_t n = 0, i = 0;
	for (; s[i]; i++) {
		if (((unsigned char)s[i] & 0xc0) != 0x80) {
			if (n == max)
				break;
			n++;
		}
	}
	return i;
}

void cli_table_print(struct cli_table *t, FILE *f)
{
	size_t *w = calloc(t->ncols, sizeof(*w));
	size_t r, c;

	if (!w)
		return;
	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols; c++) {
			size_t cw = utf8_width(t->cells[r * t->ncols + c]);
			if (cw > CLI_CELL_MAX)
				cw = CLI_CELL_MAX;
			if (cw > w[c])
				w[c] = cw;
		}
	for (r = 0; r < t->nrows; r++) {
		for (c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			size_t cw = utf8_width(cell);
			int last = c + 1 == t->ncols;
			if (cw > CLI_CELL_MAX) {
				fprintf(f, "%.*s…", (int)utf8_prefix(cell, CLI_CELL_MAX - 1), cell);
				cw = CLI_CELL_MAX;
			} else {
				fputs(cell, f);
			}
			if (!last)
				fprintf(f, "%*s", (int)(w[c] - cw + 2), "");
		}
		fputc('\n', f);
	}
	free(w);
}

size_t cli_table_rows(const struct cli_table *t)
{
	return t->nrows - 1;
}

void cli_table_free(struct cli_table *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}
