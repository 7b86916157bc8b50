/*
 * report_out.c — result tables of the pipeline reports and the three ways of
 * showing them (relasi/report.h; shared by relasi and relasi-hub, so both
 * print a report alike): an aligned terminal table (relasi/cli.h's
 * printer), JSON ({"report", "as_of", "filters", "rows", "totals"}) and
 * RFC 4180 CSV of the rows (relasi/csv.h's writer: CRLF line ends, fields
 * quoted when they hold a comma, a quote or a line break).
 *
 * JSON and CSV carry the same values: money as integer minor units beside
 * its currency, ratios as fractions, NULL as null / an empty field. Numbers
 * with decimals are written with %.15g, which prints a value rounded to 4
 * decimals exactly as it was rounded, so both parse to the same double.
 */
#include "relasi/report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "relasi/csv.h"
#include "relasi/valid.h"

void rp_table_init(struct rp_table *t, const struct rp_col *cols, size_t ncols)
{
	memset(t, 0, sizeof(*t));
	t->cols = cols;
	t->ncols = ncols;
}

void rp_table_free(struct rp_table *t)
{
	size_t i;

	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i].s);
	free(t->cells);
	t->cells = NULL;
	t->nrows = t->cap = 0;
}

struct rp_cell *rp_row_add(struct rp_table *t)
{
	struct rp_cell *row;
	size_t i;

	if (t->nrows == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 32;
		struct rp_cell *nc;
		if (ncap > SIZE_MAX / (t->ncols * sizeof(*nc) + 1)) {
			rl_error_set(RL_ENOMEM, "report too large");
			return NULL;
		}
		if (!(nc = realloc(t->cells, ncap * t->ncols * sizeof(*nc)))) {
			rl_error_set(RL_ENOMEM, "out of memory");
			return NULL;
		}
		t->cells = nc;
		t->cap = ncap;
	}
	row = &t->cells[t->nrows++ * t->ncols];
	for (i = 0; i < t->ncols; i++) {
		memset(&row[i], 0, sizeof(row[i]));
		row[i].null = 1;
	}
	return row;
}

int rp_set_text(struct rp_cell *row, size_t col, const char *s)
{
	free(row[col].s);
	row[col].s = NULL;
	row[col].null = 1;
	if (!s)
		return RL_OK;
	if (!(row[col].s = strdup(s)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	row[col].null = 0;
	return RL_OK;
}

void rp_set_int(struct rp_cell *row, size_t col, int64_t v)
{
	row[col].null = 0;
	row[col].i = v;
}

int rp_money_add(int64_t *acc, int64_t v, const char *what, const char *currency)
{
	int64_t sum;

	if (__builtin_add_overflow(*acc, v, &sum))
		return rl_error_set(RL_ETOOBIG,
				    "%s: the %s total does not fit in 64-bit minor units (beyond "
				    "+/-9.2 x 10^18: more than 9,223 amounts at the 10^15 bound of "
				    "one amount, or amounts stored before that bound)",
				    what, currency && *currency ? currency : "(no currency)");
	*acc = sum;
	return RL_OK;
}

int rp_sum_error(rl_store *s, const char *doing)
{
	sqlite3 *db = s ? rl_store_db(s) : NULL;

	/* the text sqlite3_result_error gives in SQLite's sum() (func.c) */
	if (db && strcmp(sqlite3_errmsg(db), "integer overflow") == 0)
		return rl_error_set(RL_ETOOBIG,
				    "%s: a total of amounts does not fit in 64-bit minor units "
				    "(beyond +/-9.2 x 10^18: more than 9,223 amounts at the 10^15 "
				    "bound of one amount, or amounts stored before that bound)",
				    doing);
	return rl_store_error(s, doing);
}

void rp_set_real(struct rp_cell *row, size_t col, double v)
{
	row[col].null = !isfinite(v);
	row[col].d = round(v * 100.0) / 100.0;
}

void rp_set_ratio(struct rp_cell *row, size_t col, double v)
{
	row[col].null = !isfinite(v);
	row[col].d = round(v * 10000.0) / 10000.0;
}

int rp_set_column(struct rp_cell *row, size_t col, const struct rp_table *t,
		  sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return rp_set_text(row, col, NULL);
	switch (t->cols[col].type) {
	case RP_TEXT:
		return rp_set_text(row, col, (const char *)sqlite3_column_text(st, i));
	case RP_INT:
	case RP_MONEY:
		rp_set_int(row, col, sqlite3_column_int64(st, i));
		return RL_OK;
	case RP_RATIO:
		rp_set_ratio(row, col, sqlite3_column_double(st, i));
		return RL_OK;
	case RP_REAL:
		rp_set_real(row, col, sqlite3_column_double(st, i));
		return RL_OK;
	}
	return RL_OK;
}

void rp_result_free(struct rp_result *r)
{
	json_decref(r->filters);
	r->filters = NULL;
	rp_table_free(&r->rows);
	rp_table_free(&r->totals);
}

/* ---- formatting ---------------------------------------------------------------- */

/* A cell as CSV / terminal text into buf (64 bytes hold any number we
 * write); text cells are returned as they are. */
static const char *cell_text(const struct rp_table *t, const struct rp_cell *row, size_t c,
			     int terminal, char *buf, size_t len)
{
	const struct rp_cell *x = &row[c];

	if (x->null)
		return "";
	switch (t->cols[c].type) {
	case RP_TEXT:
		return x->s;
	case RP_INT:
		snprintf(buf, len, "%lld", (long long)x->i);
		return buf;
	case RP_MONEY: {
		const struct rp_cell *cur = &row[t->cols[c].cur];
		if (!terminal || cur->null ||
		    rl_money_format(buf, len, x->i, cur->s) < 0) {
			snprintf(buf, len, "%lld", (long long)x->i);
			return buf;
		}
		return buf;
	}
	case RP_RATIO:
		if (terminal)
			snprintf(buf, len, "%.1f%%", x->d * 100.0);
		else
			snprintf(buf, len, "%.15g", x->d);
		return buf;
	case RP_REAL:
		snprintf(buf, len, terminal ? "%.1f" : "%.15g", x->d);
		return buf;
	}
	return "";
}

static json_t *cell_json(const struct rp_table *t, const struct rp_cell *row, size_t c)
{
	const struct rp_cell *x = &row[c];

	if (x->null)
		return json_null();
	switch (t->cols[c].type) {
	case RP_TEXT:
		return json_string(x->s);
	case RP_INT:
	case RP_MONEY:
		return json_integer((json_int_t)x->i);
	case RP_RATIO:
	case RP_REAL:
		return json_real(x->d);
	}
	return json_null();
}

static json_t *table_json(const struct rp_table *t)
{
	json_t *arr = json_array();
	size_t r, c;

	for (r = 0; arr && r < t->nrows; r++) {
		const struct rp_cell *row = &t->cells[r * t->ncols];
		json_t *o = json_object();
		if (!o || json_array_append_new(arr, o) < 0) {
			json_decref(arr);
			return NULL;
		}
		for (c = 0; c < t->ncols; c++)
			if (json_object_set_new(o, t->cols[c].name, cell_json(t, row, c)) < 0) {
				json_decref(arr);
				return NULL;
			}
	}
	return arr;
}

static int emit_json(const struct rp_result *r)
{
	json_t *o = json_object(), *rows = table_json(&r->rows), *totals = NULL;

	if (r->totals.ncols)
		totals = table_json(&r->totals);
	if (!o || !rows || (r->totals.ncols && !totals) ||
	    json_object_set_new(o, "report", json_string(r->name)) < 0 ||
	    json_object_set_new(o, "as_of", json_string(r->as_of)) < 0 ||
	    json_object_set(o, "filters", r->filters ? r->filters : json_null()) < 0 ||
	    json_object_set_new(o, "rows", rows) < 0) {
		json_decref(o);
		json_decref(totals);
		return rl_error_set(RL_ENOMEM, "out of memory");
	}
	if (totals && json_object_set_new(o, "totals", totals) < 0) {
		json_decref(o);
		return rl_error_set(RL_ENOMEM, "out of memory");
	}
	return cli_print_json(o);
}

/* Rows only: a spreadsheet wants one rectangle. The totals are sums a
 * spreadsheet makes itself (and are in the JSON). */
static int emit_csv(const struct rp_result *r)
{
	const struct rp_table *t = &r->rows;
	const char **cells = calloc(t->ncols ? t->ncols : 1, sizeof(*cells));
	char (*bufs)[64] = calloc(t->ncols ? t->ncols : 1, sizeof(*bufs));
	size_t i, c;
	int error = RL_OK;

	if (!cells || !bufs) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (c = 0; c < t->ncols; c++)
		cells[c] = t->cols[c].name;
	if ((error = rl_csv_write_row(stdout, cells, t->ncols, ',')) < 0)
		goto cleanup;
	for (i = 0; i < t->nrows; i++) {
		const struct rp_cell *row = &t->cells[i * t->ncols];
		for (c = 0; c < t->ncols; c++)
			cells[c] = cell_text(t, row, c, 0, bufs[c], sizeof(bufs[c]));
		if ((error = rl_csv_write_row(stdout, cells, t->ncols, ',')) < 0)
			goto cleanup;
	}
cleanup:
	free(cells);
	free(bufs);
	return error;
}

/*
 * Short ids for a whole column at once: the same prefixes as
 * rl_record_short_id (unique among all of the table's ids, tombstones too,
 * at least RL_SHORT_ID_MIN long), from one sorted read of the ids instead of
 * two queries per row: a stale-deal list can run to tens of thousands.
 */
struct id_list {
	char (*ids)[RL_ID_BUFSZ];
	size_t n;
};

static int load_ids(struct cli_ctx *ctx, const char *table, struct id_list *l)
{
	sqlite3_stmt *st = NULL;
	char *sql = sqlite3_mprintf("SELECT id FROM \"%w\" ORDER BY id", table);
	size_t cap = 0;
	int rc, error = RL_OK;

	l->ids = NULL;
	l->n = 0;
	if (!sql)
		return rl_error_set(RL_ENOMEM, "out of memory");
	if (sqlite3_prepare_v2(rl_store_db(ctx->store), sql, -1, &st, NULL) != SQLITE_OK) {
		error = rl_store_error(ctx->store, "reading ids");
		goto cleanup;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (l->n == cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			char (*ni)[RL_ID_BUFSZ] = realloc(l->ids, ncap * sizeof(*ni));
			if (!ni) {
				error = rl_error_set(RL_ENOMEM, "out of memory");
				goto cleanup;
			}
			l->ids = ni;
			cap = ncap;
		}
		snprintf(l->ids[l->n++], RL_ID_BUFSZ, "%s", cli_col(st, 0));
	}
	if (rc != SQLITE_DONE)
		error = rl_store_error(ctx->store, "reading ids");
cleanup:
	sqlite3_finalize(st);
	sqlite3_free(sql);
	return error;
}

static size_t common_prefix(const char *a, const char *b)
{
	size_t n = 0;
	while (a[n] && a[n] == b[n])
		n++;
	return n;
}

static const char *short_id(const struct id_list *l, const char *id, char *buf)
{
	size_t lo = 0, hi = l->n, need = RL_SHORT_ID_MIN;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(l->ids[mid], id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == l->n || strcmp(l->ids[lo], id) != 0)
		return id;       /* not a record of the table: show it whole */
	if (lo > 0 && common_prefix(l->ids[lo - 1], id) + 1 > need)
		need = common_prefix(l->ids[lo - 1], id) + 1;
	if (lo + 1 < l->n && common_prefix(l->ids[lo + 1], id) + 1 > need)
		need = common_prefix(l->ids[lo + 1], id) + 1;
	if (need > RL_ID_HEX)
		need = RL_ID_HEX;
	memcpy(buf, id, need);
	buf[need] = '\0';
	return buf;
}

static int print_table(struct cli_ctx *ctx, const struct rp_table *t, const char *empty)
{
	struct id_list *idl = calloc(t->ncols ? t->ncols : 1, sizeof(*idl));
	struct cli_table *out = NULL;
	const char **cells = calloc(t->ncols, sizeof(*cells));
	char (*bufs)[64] = calloc(t->ncols, sizeof(*bufs));
	char (*hdr)[32] = calloc(t->ncols, sizeof(*hdr));
	size_t i, c, n;
	int error = RL_OK;

	if (!cells || !bufs || !hdr || !idl) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (c = 0; c < t->ncols && t->nrows; c++)
		if (t->cols[c].id_table && !t->cols[c].hide &&
		    (error = load_ids(ctx, t->cols[c].id_table, &idl[c])) < 0)
			goto cleanup;
	/* Headers read as words on a terminal: "avg_days" -> "avg days". */
	for (c = n = 0; c < t->ncols; c++) {
		char *p;
		if (t->cols[c].hide)
			continue;
		snprintf(hdr[c], sizeof(hdr[c]), "%s", t->cols[c].name);
		for (p = hdr[c]; *p; p++)
			if (*p == '_')
				*p = ' ';
		cells[n++] = hdr[c];
	}
	if (!(out = cli_table_new(n, cells))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < t->nrows; i++) {
		const struct rp_cell *row = &t->cells[i * t->ncols];
		for (c = n = 0; c < t->ncols; c++) {
			if (t->cols[c].hide)
				continue;
			if (t->cols[c].id_table && !row[c].null) {
				cells[n++] = short_id(&idl[c], row[c].s, bufs[c]);
				continue;
			}
			cells[n++] = cell_text(t, row, c, 1, bufs[c], sizeof(bufs[c]));
		}
		if ((error = cli_table_add(out, cells)) < 0)
			goto cleanup;
	}
	if (t->nrows == 0 && empty)
		printf("%s\n", empty);
	else
		cli_table_print(out, stdout);
cleanup:
	for (c = 0; idl && c < t->ncols; c++)
		free(idl[c].ids);
	free(idl);
	cli_table_free(out);
	free(cells);
	free(bufs);
	free(hdr);
	return error;
}

static int emit_text(struct cli_ctx *ctx, const struct rp_result *r)
{
	const char *key;
	json_t *v;
	int error;

	printf("%s report, as of %s (UTC)", r->name, r->as_of);
	json_object_foreach(r->filters, key, v) {
		if (json_is_integer(v))
			printf("; %s %lld", key, (long long)json_integer_value(v));
		else
			printf("; %s %s", key, json_is_string(v) ? json_string_value(v) : "");
	}
	printf("\n\n");
	if ((error = print_table(ctx, &r->rows, "nothing to report")) < 0)
		return error;
	if (r->totals.ncols && r->totals.nrows) {
		printf("\n");
		return print_table(ctx, &r->totals, NULL);
	}
	return RL_OK;
}

int rp_emit(struct cli_ctx *ctx, const struct rp_result *r, enum rp_format fmt)
{
	switch (fmt) {
	case RP_FMT_JSON:
		return emit_json(r);
	case RP_FMT_CSV:
		return emit_csv(r);
	default:
		return emit_text(ctx, r);
	}
}
