/*
 * store.c — opening, upgrading and transacting on a Relasi store; the SQL
 * functions the capture triggers call; the statement cache.
 */
#include "relasi/store.h"
#include "relasi/merge.h"
#include "relasi/error.h"
#include "relasi/limits.h"
#include "relasi/model.h"
#include "relasi/valid.h"
#include "schema.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* "RLS1": marks a file as a Relasi store (PRAGMA application_id). */
#define RL_APPLICATION_ID 0x524c5331

/* Distinct statements a process keeps prepared; the CLI uses a few dozen. */
#define RL_STMT_CACHE 96
/* The page cache every store opens with, in KiB (rl_store_open says why). */
#define RL_CACHE_KIB 8192
#define RL_STR(x) RL_STR_(x)
#define RL_STR_(x) #x

struct stmt_slot {
	const char *key;
	sqlite3_stmt *stmt;
};

#define RL_FTS_TABLES 3     /* fts_tables below */

struct rl_store {
	sqlite3 *db;
	char *path;
	char device_id[RL_ID_BUFSZ];
	char user_id[RL_ID_BUFSZ];
	char role[16];          /* the hub's word at enrolment and each sync; "" */
	rl_hlc hlc;
	int64_t hlc_saved;      /* last stamp written to rl_meta */
	int capture;
	int removing;           /* rl_store_set_removal: physical DELETEs allowed */
	int cap_deferred;       /* 1: new rows are captured by rl_store_capture_catch_up */
	int64_t cap_from[RL_SYNCED_TABLES_MAX];  /* rl_synced_tables' rowids up to these are not new */
	int fts_live;           /* 0: new rows are indexed by rl_store_fts_catch_up */
	int64_t fts_from[RL_FTS_TABLES];  /* rowids up to these were indexed (fts_tables) */
	int device_indexes;     /* 0: the hub's store, no search or nearby index (store.h) */
	int in_tx;
	int bulk_journal;       /* rl_store_journal_bulk left WAL */
	int have_fixed_now;
	int64_t fixed_now_ms;
	int from_image;         /* this open wrote the file from an image (store.h) */
	struct stmt_slot stmts[RL_STMT_CACHE];
};

static const struct rl_store_images *store_images;

int rl_store_schema_latest(void)
{
	return rl_migrations[rl_migrations_count - 1].version;
}

int rl_store_hub_schema_latest(void)
{
	return rl_hub_migrations[rl_hub_migrations_count - 1].version;
}

int rl_store_application_id(void)
{
	return RL_APPLICATION_ID;
}

int rl_store_error(rl_store *s, const char *doing)
{
	int rc, sys;

	if (!s || !s->db)
		return rl_error_set(RL_ESTORE, "%s: no database", doing);
	/* "disk I/O error" alone does not tell a full disk from a failing one:
	 * the system's own word does (ENOSPC, EFBIG, EIO, EACCES). */
	rc = sqlite3_errcode(s->db) & 0xff;   /* the primary code of an extended one */
	sys = sqlite3_system_errno(s->db);
	if ((rc == SQLITE_IOERR || rc == SQLITE_FULL || rc == SQLITE_CANTOPEN) && sys > 0)
		return rl_error_set(RL_ESTORE, "%s: %s (%s)", doing, sqlite3_errmsg(s->db),
				    strerror(sys));
	return rl_error_set(RL_ESTORE, "%s: %s", doing, sqlite3_errmsg(s->db));
}

static int exec(rl_store *s, const char *sql, const char *doing)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return rl_store_error(s, doing);
	return RL_OK;
}

static int64_t store_clock(void *ctx)
{
	rl_store *s = ctx;
	return s->have_fixed_now ? s->fixed_now_ms : rl_clock_system_ms(NULL);
}

int64_t rl_store_now_ms(rl_store *s)
{
	return store_clock(s);
}

int rl_store_tz_offset(rl_store *s)
{
	return rl_store_tz_offset_at(s, rl_store_now_ms(s) / 1000);
}

int rl_store_tz_offset_at(rl_store *s, int64_t utc)
{
	time_t t = (time_t)utc;
	struct tm tm;

	(void)s;

	if (!localtime_r(&t, &tm))
		return 0;
	return (int)(tm.tm_gmtoff / 60);
}

rl_hlc *rl_store_hlc(rl_store *s)
{
	return &s->hlc;
}

int rl_store_new_id(rl_store *s, char out[RL_ID_BUFSZ])
{
	return rl_id_new(out, rl_store_now_ms(s));
}

const char *rl_store_device_id(const rl_store *s)
{
	return s->device_id;
}

const char *rl_store_user_id(const rl_store *s)
{
	return s->user_id;
}

const char *rl_store_role(const rl_store *s)
{
	return s->role;
}

const char *rl_store_path(const rl_store *s)
{
	return s->path;
}

sqlite3 *rl_store_db(rl_store *s)
{
	return s->db;
}

void rl_store_set_capture(rl_store *s, int on)
{
	s->capture = on;
}

void rl_store_set_removal(rl_store *s, int on)
{
	s->removing = on;
}

/* ---- SQL functions used by the capture triggers ------------------------- */

static void sql_hlc(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	rl_store *s = sqlite3_user_data(ctx);
	sqlite3_result_int64(ctx, rl_hlc_now(&s->hlc));
}

static void sql_device(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	rl_store *s = sqlite3_user_data(ctx);
	if (!s->device_id[0]) {
		sqlite3_result_error(ctx, "this store has no device id; run 'relasi init'", -1);
		return;
	}
	sqlite3_result_text(ctx, s->device_id, -1, SQLITE_TRANSIENT);
}

/* rl_capture_row(TABLE, ROWID): does a write to this row of
 * rl_synced_tables[TABLE] record its changes now? Not while capture is off,
 * nor for a row an import added while it defers capture (that row is
 * captured whole at the commit, with its final values). */
static void sql_capture_row(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	rl_store *s = sqlite3_user_data(ctx);
	int ti = sqlite3_value_int(argv[0]);

	(void)argc;
	sqlite3_result_int(ctx, s->capture && (!s->cap_deferred || ti < 0 ||
					       ti >= RL_SYNCED_TABLES_MAX ||
					       sqlite3_value_int64(argv[1]) <= s->cap_from[ti]));
}

/* rl_removing(): may a row of a synced table be deleted now? Only while
 * rl_store_set_removal says so (capture.c's delete guard). */
static void sql_removing(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	rl_store *s = sqlite3_user_data(ctx);
	(void)argc;
	(void)argv;
	sqlite3_result_int(ctx, s->removing);
}

/* rl_fts_live(): the search triggers of schema 010 to 016, which migrations
 * between them may still fire; 017 replaced them (rl_fts_indexed). */
static void sql_fts_live(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	rl_store *s = sqlite3_user_data(ctx);
	(void)argc;
	(void)argv;
	sqlite3_result_int(ctx, s->fts_live);
}

/* rl_fts_indexed(k, rowid) (schema/017_fts_indexed.sql): does the k-th
 * full-text index (fts_tables' order) hold row rowid's entry now, if the
 * row is live? While indexing is deferred, only rows that existed then. */
static void sql_fts_indexed(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	rl_store *s = sqlite3_user_data(ctx);
	int k = sqlite3_value_int(argv[0]);

	(void)argc;
	sqlite3_result_int(ctx, s->fts_live || k < 0 || k >= RL_FTS_TABLES ||
			   sqlite3_value_int64(argv[1]) <= s->fts_from[k]);
}

static void sql_distance_km(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	int i;
	for (i = 0; i < 4; i++)
		if (sqlite3_value_type(argv[i]) == SQLITE_NULL) {
			sqlite3_result_null(ctx);
			return;
		}
	sqlite3_result_double(ctx, rl_geo_distance_km(
		sqlite3_value_double(argv[0]), sqlite3_value_double(argv[1]),
		sqlite3_value_double(argv[2]), sqlite3_value_double(argv[3])));
}

/* An amount as rl_money shows it, "1500000.00 IDR"; < 0 when the currency
 * is not one rl_money_format knows. */
static int money_text(char buf[64], int64_t minor, const char *cur)
{
	size_t len;

	if (rl_money_format(buf, 64 - 5, minor, cur) < 0)
		return -1;
	len = strlen(buf);
	snprintf(buf + len, 64 - len, " %.3s", cur);
	return 0;
}

/* rl_money(amount, currency): "1500000.00 IDR", NULL for a NULL amount. */
static void sql_money(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	char buf[64];
	const char *cur = (const char *)sqlite3_value_text(argv[1]);

	(void)argc;
	if (sqlite3_value_type(argv[0]) == SQLITE_NULL || !cur)
		sqlite3_result_null(ctx);
	else if (money_text(buf, sqlite3_value_int64(argv[0]), cur) < 0)
		sqlite3_result_int64(ctx, sqlite3_value_int64(argv[0]));
	else
		sqlite3_result_text(ctx, buf, -1, SQLITE_TRANSIENT);
}

/* The result becomes the label of record id of t (its label field, with
 * "(deleted)" for a tombstone) when there is one; else it is left as is.
 * A label field that names another record (a stage move's deal, a
 * campaign member's customer) reads as that record's label: a 32-hex id
 * told a rep nothing in 'relasi status' (the raw id where that record is
 * not on this store). */
static void result_label(sqlite3_context *ctx, const struct rl_table *t, sqlite3_value *id)
{
	const struct rl_field *f = t->label_field ? rl_model_field(t, t->label_field) : NULL;
	const struct rl_table *rt = f && f->ref ? rl_model_table(f->ref) : NULL;
	sqlite3_stmt *st = NULL;
	char *sql;

	if (!t->label_field)
		return;
	if (rt && rt->label_field)
		sql = sqlite3_mprintf("SELECT coalesce(r.\"%w\", x.\"%w\") || CASE WHEN x.deleted "
				      "THEN ' (deleted)' ELSE '' END FROM \"%w\" x LEFT JOIN \"%w\" r "
				      "ON r.id = x.\"%w\" WHERE x.id = ?1", rt->label_field,
				      t->label_field, t->name, rt->name, t->label_field);
	else
		sql = sqlite3_mprintf("SELECT \"%w\" || CASE WHEN deleted THEN ' (deleted)' ELSE '' END "
				      "FROM \"%w\" WHERE id = ?1", t->label_field, t->name);
	if (!sql) {
		sqlite3_result_error_nomem(ctx);
		return;
	}
	if (sqlite3_prepare_v2(sqlite3_context_db_handle(ctx), sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_value(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
			sqlite3_result_value(ctx, sqlite3_column_value(st, 0));
	}
	sqlite3_finalize(st);
	sqlite3_free(sql);
}

/* rl_label(tbl, row_id): what people call a record — its label field (an
 * account's name, a deal's title), "(deleted)" appended for a tombstone;
 * NULL for an unknown table or row. For listings that name records of many
 * tables (conflicts). Table and column names come from the model only. */
static void sql_label(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const char *tbl = (const char *)sqlite3_value_text(argv[0]);
	const struct rl_table *t = tbl ? rl_model_table(tbl) : NULL;

	(void)argc;
	if (t && strcmp(t->name, tbl) == 0)
		result_label(ctx, t, argv[1]);
}

/* rl_shown(tbl, row_id, field, value): a field's value as people read it,
 * for listings of values of many fields (conflicts, on a device and on the
 * hub): money in the record's currency as rl_money writes it ("2000000.00
 * IDR"), a reference as the label of the record it names, a yes/no field
 * as "yes" or "no" and the tombstone as "deleted" or "not deleted" (an
 * edit against a delete is a conflict on it: "1" and "0" told no one what
 * stands); anything else as it is. The model names every table and column
 * used. rl_shown(tbl, row_id, field, value, currency): money in that
 * currency when it is not NULL (one side's amount of a conflict on a pair
 * whose currency differs too: in that side's currency, not the row's). */
static void sql_shown(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const char *tbl = (const char *)sqlite3_value_text(argv[0]);
	const char *field = (const char *)sqlite3_value_text(argv[2]);
	const struct rl_table *t = tbl ? rl_model_table(tbl) : NULL, *rt;
	const struct rl_field *f = t && field ? rl_model_field(t, field) : NULL;
	sqlite3_stmt *st = NULL;
	char *sql = NULL, buf[64], cur[4] = "IDR";

	(void)argc;
	sqlite3_result_value(ctx, argv[3]);
	if (!f || sqlite3_value_type(argv[3]) == SQLITE_NULL)
		return;
	if (f->type == RL_FT_MONEY && sqlite3_value_type(argv[3]) == SQLITE_INTEGER) {
		if (argc == 5 && sqlite3_value_type(argv[4]) == SQLITE_TEXT &&
		    sqlite3_value_bytes(argv[4]) == 3)
			memcpy(cur, sqlite3_value_text(argv[4]), 4);
		else if (rl_model_field(t, "currency") &&
		    (sql = sqlite3_mprintf("SELECT currency FROM \"%w\" WHERE id = ?1", t->name)) &&
		    sqlite3_prepare_v2(sqlite3_context_db_handle(ctx), sql, -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_value(st, 1, argv[1]);
			if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 3)
				memcpy(cur, sqlite3_column_text(st, 0), 4);
		}
		sqlite3_finalize(st);
		sqlite3_free(sql);
		if (money_text(buf, sqlite3_value_int64(argv[3]), cur) == 0)
			sqlite3_result_text(ctx, buf, -1, SQLITE_TRANSIENT);
	} else if (f->type == RL_FT_REF && f->ref && (rt = rl_model_table(f->ref))) {
		result_label(ctx, rt, argv[3]);
	} else if (f->type == RL_FT_BOOL && sqlite3_value_type(argv[3]) == SQLITE_INTEGER &&
		   (sqlite3_value_int64(argv[3]) == 0 || sqlite3_value_int64(argv[3]) == 1)) {
		int yes = sqlite3_value_int64(argv[3]) == 1;
		sqlite3_result_text(ctx, strcmp(f->name, "deleted") == 0
				    ? (yes ? "deleted" : "not deleted") : (yes ? "yes" : "no"),
				    -1, SQLITE_STATIC);
	}
}

static int register_functions(rl_store *s)
{
	/* Not SQLITE_DETERMINISTIC: each call must tick the clock. */
	if (sqlite3_create_function(s->db, "rl_hlc", 0, SQLITE_UTF8, s, sql_hlc, NULL, NULL) ||
	    sqlite3_create_function(s->db, "rl_device", 0, SQLITE_UTF8, s, sql_device, NULL, NULL) ||
	    sqlite3_create_function(s->db, "rl_capture_row", 2, SQLITE_UTF8, s, sql_capture_row, NULL,
				    NULL) ||
	    sqlite3_create_function(s->db, "rl_removing", 0, SQLITE_UTF8, s, sql_removing, NULL,
				    NULL) ||
	    sqlite3_create_function(s->db, "rl_fts_live", 0, SQLITE_UTF8, s, sql_fts_live, NULL, NULL) ||
	    sqlite3_create_function(s->db, "rl_fts_indexed", 2, SQLITE_UTF8, s, sql_fts_indexed, NULL,
				    NULL) ||
	    sqlite3_create_function(s->db, "rl_distance_km", 4, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
				    NULL, sql_distance_km, NULL, NULL) ||
	    sqlite3_create_function(s->db, "rl_money", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
				    NULL, sql_money, NULL, NULL) ||
	    sqlite3_create_function(s->db, "rl_label", 2, SQLITE_UTF8, NULL, sql_label, NULL, NULL) ||
	    sqlite3_create_function(s->db, "rl_shown", 4, SQLITE_UTF8, NULL, sql_shown, NULL, NULL) ||
	    sqlite3_create_function(s->db, "rl_shown", 5, SQLITE_UTF8, NULL, sql_shown, NULL, NULL))
		return rl_store_error(s, "registering SQL functions");
	return RL_OK;
}

/* ---- statements, transactions, meta ------------------------------------- */

int rl_store_prepare(rl_store *s, const char *sql, sqlite3_stmt **out)
{
	int i, free_slot = -1;

	for (i = 0; i < RL_STMT_CACHE; i++) {
		if (!s->stmts[i].key) {
			if (free_slot < 0)
				free_slot = i;
			continue;
		}
		if (s->stmts[i].key == sql || strcmp(s->stmts[i].key, sql) == 0) {
			sqlite3_reset(s->stmts[i].stmt);
			sqlite3_clear_bindings(s->stmts[i].stmt);
			*out = s->stmts[i].stmt;
			return RL_OK;
		}
	}
	if (free_slot < 0) {
		/* Full: evict the last slot; statements are cheap to re-prepare. */
		free_slot = RL_STMT_CACHE - 1;
		sqlite3_finalize(s->stmts[free_slot].stmt);
		free((char *)s->stmts[free_slot].key);
		s->stmts[free_slot].key = NULL;
	}
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) != SQLITE_OK)
		return rl_store_error(s, "preparing a statement");
	s->stmts[free_slot].key = strdup(sql);
	if (!s->stmts[free_slot].key) {
		sqlite3_finalize(*out);
		*out = NULL;
		return rl_error_set(RL_ENOMEM, "out of memory");
	}
	s->stmts[free_slot].stmt = *out;
	return RL_OK;
}

void rl_store_column_value(sqlite3_stmt *st, int col, struct rl_value *v)
{
	memset(v, 0, sizeof(*v));
	switch (sqlite3_column_type(st, col)) {
	case SQLITE_INTEGER: v->type = RL_V_INT; v->i = sqlite3_column_int64(st, col); break;
	case SQLITE_FLOAT: v->type = RL_V_REAL; v->d = sqlite3_column_double(st, col); break;
	case SQLITE_NULL: v->type = RL_V_NULL; break;
	default: v->type = RL_V_TEXT; v->s = (const char *)sqlite3_column_text(st, col); break;
	}
}

void rl_store_bind_value(sqlite3_stmt *st, int idx, const struct rl_value *v)
{
	switch (v->type) {
	case RL_V_INT: sqlite3_bind_int64(st, idx, v->i); break;
	case RL_V_REAL: sqlite3_bind_double(st, idx, v->d); break;
	case RL_V_TEXT: sqlite3_bind_text(st, idx, v->s, -1, SQLITE_STATIC); break;
	default: sqlite3_bind_null(st, idx); break;
	}
}

/* Is change i's field set again later in the run? */
static int set_again(const void *run, size_t n, size_t i, rl_store_field_at *field_at)
{
	const struct rl_value *v;
	const char *name = field_at(run, i, &v);
	size_t j;

	for (j = i + 1; j < n; j++)
		if (strcmp(field_at(run, j, &v), name) == 0)
			return 1;
	return 0;
}

int rl_store_prepare_create(rl_store *s, const char *tbl, const char *id, const void *run,
			    size_t n, rl_store_field_at *field_at, sqlite3_stmt **out)
{
	sqlite3_str *q = sqlite3_str_new(s->db), *params = sqlite3_str_new(s->db);
	const struct rl_value *v;
	char *sql, *ps;
	size_t i;
	int error;

	/* Columns and parameters in one pass: set_again is quadratic in n
	 * (a hostile run may name one field thousands of times). */
	*out = NULL;
	sqlite3_str_appendf(q, "INSERT INTO \"%w\"(id", tbl);
	for (i = 0; i < n; i++) {
		if (set_again(run, n, i, field_at))
			continue;
		sqlite3_str_appendf(q, ", \"%w\"", field_at(run, i, &v));
		sqlite3_str_appendf(params, ", ?%d", (int)i + 2);
	}
	ps = sqlite3_str_finish(params);
	sqlite3_str_appendf(q, ") VALUES (?1%s)", ps ? ps : "");
	sql = sqlite3_str_finish(q);
	/* ps is NULL when empty (n == 0: the last change is never set again)
	 * or out of memory. */
	if (!sql || (n && !ps)) {
		sqlite3_free(sql);
		sqlite3_free(ps);
		return rl_error_set(RL_ENOMEM, "out of memory");
	}
	sqlite3_free(ps);
	/* Cached: a table's records mostly come with the same fields, and
	 * preparing an INSERT compiles the table's triggers (FTS, R*Tree,
	 * capture) — most of a create's cost when done per record. */
	error = rl_store_prepare(s, sql, out);
	sqlite3_free(sql);
	if (error < 0)
		return error;
	sqlite3_bind_text(*out, 1, id, -1, SQLITE_STATIC);
	for (i = 0; i < n; i++) {
		field_at(run, i, &v);
		rl_store_bind_value(*out, (int)i + 2, v);
	}
	return RL_OK;
}

int rl_store_preparef(rl_store *s, sqlite3_stmt **out, const char *fmt, ...)
{
	va_list ap;
	char *sql;
	int error;

	va_start(ap, fmt);
	sql = sqlite3_vmprintf(fmt, ap);
	va_end(ap);
	if (!sql) {
		*out = NULL;
		return rl_error_set(RL_ENOMEM, "out of memory");
	}
	error = rl_store_prepare(s, sql, out);
	sqlite3_free(sql);
	return error;
}

static int save_hlc(rl_store *s)
{
	sqlite3_stmt *st;
	int error;

	if (s->hlc.last == s->hlc_saved)
		return RL_OK;
	if ((error = rl_store_prepare(s,
	     "INSERT INTO rl_meta(key, value) VALUES ('hlc', ?1) "
	     "ON CONFLICT(key) DO UPDATE SET value = excluded.value", &st)) < 0)
		return error;
	sqlite3_bind_int64(st, 1, s->hlc.last);
	if (sqlite3_step(st) != SQLITE_DONE)
		return rl_store_error(s, "saving the clock");
	return RL_OK;
}

/* journal_mode = the mode in sql; 1 when the store now runs in want. */
static int journal_set(rl_store *s, const char *sql, const char *want)
{
	sqlite3_stmt *st;
	int now = 0;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		now = strcmp((const char *)sqlite3_column_text(st, 0), want) == 0;
	sqlite3_finalize(st);
	return now;
}

int rl_store_journal_bulk(rl_store *s)
{
	if (s->bulk_journal || !journal_set(s, "PRAGMA journal_mode = DELETE", "delete"))
		return s->bulk_journal;
	s->bulk_journal = 1;
	sqlite3_exec(s->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
	return 1;
}

void rl_store_remove_files(const char *path)
{
	static const char *const ext[] = { "", "-journal", "-wal", "-shm" };
	char p[4200];
	size_t i;

	for (i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
		if ((size_t)snprintf(p, sizeof(p), "%s%s", path, ext[i]) < sizeof(p))
			unlink(p);
}

void rl_store_journal_wal(rl_store *s)
{
	if (s->bulk_journal && journal_set(s, "PRAGMA journal_mode = WAL", "wal")) {
		sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
		s->bulk_journal = 0;
	}
}

int rl_store_begin_import(rl_store *s, const char *input_path)
{
	struct stat st;
	int error;

	if (input_path && strcmp(input_path, "-") != 0 && stat(input_path, &st) == 0 &&
	    S_ISREG(st.st_mode) && st.st_size >= RL_BULK_JOURNAL_BYTES)
		rl_store_journal_bulk(s);
	if ((error = rl_store_begin(s)) < 0) {
		rl_store_journal_wal(s);
		return error;
	}
	if ((error = rl_store_fts_defer(s)) < 0 || (error = rl_store_capture_defer(s)) < 0) {
		rl_store_rollback(s);
		rl_store_journal_wal(s);
	}
	return error;
}

int rl_store_begin(rl_store *s)
{
	int error;
	if ((error = exec(s, "BEGIN IMMEDIATE", "starting a write transaction")) < 0)
		return error;
	s->in_tx = 1;
	return RL_OK;
}

int rl_store_commit(rl_store *s)
{
	int error;
	int64_t hlc = s->hlc.last;

	/* Deferred search indexing (rl_store_fts_defer) ends with the
	 * transaction at the latest: no commit leaves rows unsearchable. */
	if ((error = rl_store_capture_catch_up(s)) < 0 || (error = rl_store_fts_catch_up(s)) < 0 ||
	    (error = save_hlc(s)) < 0)
		return error;
	if ((error = exec(s, "COMMIT", "committing")) < 0)
		return error;
	s->hlc_saved = hlc;
	s->in_tx = 0;
	return RL_OK;
}

void rl_store_rollback(rl_store *s)
{
	s->fts_live = 1;
	s->cap_deferred = 0;
	if (!s->in_tx && sqlite3_get_autocommit(s->db))
		return;
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	s->in_tx = 0;
}

/* The full-text indexes and their columns, as schema/016_fts_live.sql makes
 * them (fts_T over the live rows of T, external content). */
static const struct {
	const char *table, *cols;
} fts_tables[RL_FTS_TABLES] = {
	{ "accounts", "name, city, address, tags, notes" },
	{ "contacts", "name, title, email, phone, city, notes" },
	{ "activities", "outcome, notes" },
};

/* Where a table ends: its largest rowid (0 when empty). Rows of synced
 * tables are never deleted, so every row added later is above it; both
 * deferrals (search indexing, capture) rest on that. */
static int table_end(rl_store *s, const char *table, int64_t *end)
{
	sqlite3_stmt *st;
	int error, rc;

	if ((error = rl_store_preparef(s, &st, "SELECT coalesce(max(rowid), 0) FROM \"%w\"",
				       table)) < 0)
		return error;
	rc = sqlite3_step(st);
	*end = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? RL_OK : rl_store_error(s, "reading where a table ends");
}

int rl_store_fts_defer(rl_store *s)
{
	size_t i;
	int error;

	if (!s->device_indexes)
		return RL_OK;           /* fts_live stays 1: the catch-up has nothing to do */
	for (i = 0; i < sizeof(fts_tables) / sizeof(fts_tables[0]); i++)
		if ((error = table_end(s, fts_tables[i].table, &s->fts_from[i])) < 0)
			return error;
	s->fts_live = 0;
	return RL_OK;
}

/* Where each synced table ends (an opened store has them all). */
static int table_ends(rl_store *s, int64_t *ends, int *ntables)
{
	int i, error;

	for (i = 0; rl_synced_tables[i]; i++) {
		if (i == RL_SYNCED_TABLES_MAX)
			return rl_error_set(RL_ESTORE, "more than %d synced tables",
					    RL_SYNCED_TABLES_MAX);
		if ((error = table_end(s, rl_synced_tables[i], &ends[i])) < 0)
			return error;
	}
	*ntables = i;
	return RL_OK;
}

int rl_store_capture_defer(rl_store *s)
{
	int n, error;

	if (!s->capture)
		return RL_OK;           /* nothing is captured anyway */
	if ((error = table_ends(s, s->cap_from, &n)) < 0)
		return error;
	s->cap_deferred = 1;
	return RL_OK;
}

int rl_store_capture_catch_up(rl_store *s)
{
	int64_t ends[RL_SYNCED_TABLES_MAX];
	sqlite3_stmt *st;
	char *sql;
	int i, n, rc, error;

	if (!s->cap_deferred)
		return RL_OK;
	if ((error = table_ends(s, ends, &n)) < 0)
		return error;
	/* Table by table in rl_synced_tables' order, parents first: a push
	 * batch never holds a child before the parent it refers to. */
	for (i = 0; i < n; i++) {
		if (ends[i] <= s->cap_from[i])
			continue;       /* no new rows */
		if ((error = rl_capture_catch_up_sql(s->db, i, &sql)) < 0)
			return error;
		error = rl_store_prepare(s, sql, &st);
		sqlite3_free(sql);
		if (error < 0)
			return error;
		sqlite3_bind_int64(st, 1, s->cap_from[i]);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return rl_store_error(s, "recording the new rows' changes");
	}
	s->cap_deferred = 0;
	return RL_OK;
}

int rl_store_fts_catch_up(rl_store *s)
{
	sqlite3_stmt *st;
	size_t i;
	int error, rc;

	if (s->fts_live)
		return RL_OK;
	for (i = 0; i < sizeof(fts_tables) / sizeof(fts_tables[0]); i++) {
		if ((error = rl_store_preparef(s, &st, "INSERT INTO \"fts_%w\"(rowid, %s) "
					       "SELECT rowid, %s FROM \"%w\" "
					       "WHERE rowid > ?1 AND deleted = 0",
					       fts_tables[i].table, fts_tables[i].cols,
					       fts_tables[i].cols, fts_tables[i].table)) < 0)
			return error;
		sqlite3_bind_int64(st, 1, s->fts_from[i]);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return rl_store_error(s, "indexing the new rows for search");
	}
	s->fts_live = 1;
	return RL_OK;
}

int rl_store_meta_get(rl_store *s, const char *key, char **out)
{
	sqlite3_stmt *st;
	int error, rc;

	*out = NULL;
	if ((error = rl_store_prepare(s, "SELECT value FROM rl_meta WHERE key = ?1", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		if ((v && !(*out = strdup(v))) || (!v && sqlite3_column_type(st, 0) != SQLITE_NULL))
			error = rl_error_set(RL_ENOMEM, "out of memory");
	} else if (rc != SQLITE_DONE) {
		error = rl_store_error(s, "reading settings");
	}
	sqlite3_reset(st);
	return error;
}

int rl_store_meta_set(rl_store *s, const char *key, const char *value)
{
	sqlite3_stmt *st;
	int error;

	if ((error = rl_store_prepare(s,
	     "INSERT INTO rl_meta(key, value) VALUES (?1, ?2) "
	     "ON CONFLICT(key) DO UPDATE SET value = excluded.value", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return rl_store_error(s, "writing settings");
	sqlite3_reset(st);
	return RL_OK;
}

int rl_store_set_identity(rl_store *s, const char *device_id, const char *user_id)
{
	int error;

	if (!rl_id_valid(device_id) || !rl_id_valid(user_id))
		return rl_error_set(RL_EINVALID, "identity ids must be 32 hex digits");
	if ((error = rl_store_meta_set(s, "device_id", device_id)) < 0 ||
	    (error = rl_store_meta_set(s, "user_id", user_id)) < 0)
		return error;
	memcpy(s->device_id, device_id, RL_ID_BUFSZ);
	memcpy(s->user_id, user_id, RL_ID_BUFSZ);
	return RL_OK;
}

int rl_store_set_role(rl_store *s, const char *role)
{
	int error;

	if (strlen(role) >= sizeof(s->role))
		return rl_error_set(RL_EINVALID, "'%.40s' is not a role", role);
	if (strcmp(role, s->role) == 0)
		return RL_OK;
	if ((error = rl_store_meta_set(s, "role", role)) < 0)
		return error;
	snprintf(s->role, sizeof(s->role), "%s", role);
	return RL_OK;
}

/* ---- opening and migrating ---------------------------------------------- */

static int pragma_int(rl_store *s, const char *sql, int *out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return rl_store_error(s, "reading the store header");
	rc = sqlite3_step(st);
	*out = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return rl_store_error(s, "reading the store header");
	return RL_OK;
}

/* The copy of the store as it was before an upgrade, relasi.db.v<N>.bak.
 * Called with the upgrade's write transaction open and nothing written
 * yet, so it reads through a connection of its own (SQLite's backup will
 * not read from a connection inside a write transaction) and sees exactly
 * what the migrations start from: no other process can write meanwhile. */
static int backup_before_upgrade(rl_store *s, int from_version)
{
	char *bak = sqlite3_mprintf("%s.v%d.bak", s->path, from_version);
	sqlite3 *src = NULL, *dst = NULL;
	sqlite3_backup *b = NULL;
	int error = RL_OK;

	if (!bak)
		return rl_error_set(RL_ENOMEM, "out of memory");
	if (sqlite3_open_v2(s->path, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW,
			    NULL) != SQLITE_OK) {
		error = rl_error_set(RL_EIO, "cannot read '%s' to back it up: %s", s->path,
				     src ? sqlite3_errmsg(src) : "out of memory");
		goto cleanup;
	}
	if (sqlite3_open(bak, &dst) != SQLITE_OK) {
		error = rl_error_set(RL_EIO, "cannot create backup '%s': %s", bak,
				     sqlite3_errmsg(dst));
		goto cleanup;
	}
	b = sqlite3_backup_init(dst, "main", src, "main");
	if (!b || sqlite3_backup_step(b, -1) != SQLITE_DONE) {
		error = rl_error_set(RL_EIO, "backing up to '%s' failed: %s", bak,
				     sqlite3_errmsg(dst));
		goto cleanup;
	}
cleanup:
	if (b)
		sqlite3_backup_finish(b);
	sqlite3_close(dst);
	sqlite3_close(src);
	sqlite3_free(bak);
	return error;
}

/* Migrations may rewrite a table's SQL through PRAGMA writable_schema
 * (schema/011_check_lists.sql), which SQLite does not count as a schema
 * change: raise the schema cookie so that every connection, this one
 * included, reads the schema again before its next statement. */
static int bump_schema_cookie(rl_store *s)
{
	char sql[48];
	int cookie, error;

	if ((error = pragma_int(s, "PRAGMA schema_version", &cookie)) < 0)
		return error;
	snprintf(sql, sizeof(sql), "PRAGMA schema_version = %d", cookie + 1);
	return exec(s, sql, "raising the schema version");
}

/* The hub keeps no search or nearby index (store.h): drop their triggers,
 * whatever migration made them, and empty their tables. Inside the
 * migration's transaction. 'delete-all' empties an external-content FTS5
 * table, as schema 16 made them; a migration that changes that must change
 * this too (every hub's first open would fail on it, so tests catch it). */
static int strip_device_indexes(rl_store *s)
{
	sqlite3_stmt *st;
	char **names = NULL;
	size_t i, n = 0, cap = 0;
	int rc, error = RL_OK;

	if ((error = rl_store_prepare(s, "SELECT name FROM sqlite_master WHERE type = 'trigger' "
				      "AND (name GLOB 'fts_*' OR name GLOB 'geo_*')", &st)) < 0)
		return error;
	/* Collected first: a DROP while the scan of sqlite_master is open fails. */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char **more, *name;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			if (!(more = realloc(names, cap * sizeof(*names)))) {
				error = rl_error_set(RL_ENOMEM, "out of memory");
				break;
			}
			names = more;
		}
		if (!(name = strdup((const char *)sqlite3_column_text(st, 0)))) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			break;
		}
		names[n++] = name;
	}
	sqlite3_reset(st);
	if (error == RL_OK && rc != SQLITE_DONE)
		error = rl_store_error(s, "listing the search and nearby triggers");
	for (i = 0; error == RL_OK && i < n; i++) {
		char *sql = sqlite3_mprintf("DROP TRIGGER \"%w\"", names[i]);
		if (!sql)
			error = rl_error_set(RL_ENOMEM, "out of memory");
		else
			error = exec(s, sql, "dropping a search or nearby trigger");
		sqlite3_free(sql);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	for (i = 0; error == RL_OK && i < sizeof(fts_tables) / sizeof(fts_tables[0]); i++) {
		char *sql = sqlite3_mprintf("INSERT INTO \"fts_%w\"(\"fts_%w\") VALUES ('delete-all')",
					    fts_tables[i].table, fts_tables[i].table);
		if (!sql)
			error = rl_error_set(RL_ENOMEM, "out of memory");
		else
			error = exec(s, sql, "emptying a search index");
		sqlite3_free(sql);
	}
	if (error == RL_OK)
		error = exec(s, "DELETE FROM geo_accounts", "emptying the nearby index");
	return error;
}

/* Upgrade the store to the latest schema, after a backup of it as it was.
 * The version is read again under the write lock: two processes that open
 * an old store at once both saw the old version, and the second must find
 * the first one's upgrade done, not run the migrations again (they would
 * fail) nor back up the upgraded store under the old version's name. */
static int migrate(rl_store *s)
{
	int i, error, from;
	char sql[64];

	if ((error = rl_store_begin(s)) < 0)
		return error;
	if ((error = pragma_int(s, "PRAGMA user_version", &from)) < 0)
		goto fail;
	if (from >= rl_store_schema_latest()) {
		rl_store_rollback(s);   /* another process upgraded it meanwhile */
		return RL_OK;
	}
	if (from > 0 && (error = backup_before_upgrade(s, from)) < 0)
		goto fail;
	for (i = 0; i < rl_migrations_count; i++) {
		if (rl_migrations[i].version <= from)
			continue;
		if (sqlite3_exec(s->db, rl_migrations[i].sql, NULL, NULL, NULL) != SQLITE_OK) {
			error = rl_error_set(RL_ESTORE, "migration %s failed: %s",
					     rl_migrations[i].name, sqlite3_errmsg(s->db));
			goto fail;
		}
		/* A later ALTER TABLE edits the stored SQL at offsets it takes
		 * from the parsed schema: after a rewrite through writable_schema
		 * that must be read again first, or ADD COLUMN splices the new
		 * column into the wrong place (019 after 011, on a new store). */
		if (strstr(rl_migrations[i].sql, "writable_schema") &&
		    (error = bump_schema_cookie(s)) < 0)
			goto fail;
	}
	if ((!s->device_indexes && (error = strip_device_indexes(s)) < 0) ||
	    (error = bump_schema_cookie(s)) < 0 ||
	    (error = s->device_indexes ? rl_capture_install(s->db)
				       : rl_capture_install_guards(s->db)) < 0)
		goto fail;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", rl_store_schema_latest());
	if ((error = exec(s, sql, "setting the schema version")) < 0)
		goto fail;
	snprintf(sql, sizeof(sql), "PRAGMA application_id = %d", RL_APPLICATION_ID);
	if ((error = exec(s, sql, "marking the store")) < 0)
		goto fail;
	return rl_store_commit(s);
fail:
	rl_store_rollback(s);
	return error;
}

/* The hub's own tables, versioned separately in rl_meta 'hub_schema'. */
static int migrate_hub(rl_store *s)
{
	char *v = NULL, num[16];
	int i, error, have;

	if ((error = rl_store_meta_get(s, "hub_schema", &v)) < 0)
		return error;
	have = v ? (int)strtol(v, NULL, 10) : 0;
	free(v);
	if (have >= rl_hub_migrations[rl_hub_migrations_count - 1].version)
		return RL_OK;
	if ((error = rl_store_begin(s)) < 0)
		return error;
	/* Again under the write lock, as migrate() does. */
	if ((error = rl_store_meta_get(s, "hub_schema", &v)) < 0)
		goto fail;
	have = v ? (int)strtol(v, NULL, 10) : 0;
	free(v);
	if (have >= rl_hub_migrations[rl_hub_migrations_count - 1].version) {
		rl_store_rollback(s);
		return RL_OK;
	}
	/* A hub upgraded from before hub schema 17 still has the capture
	 * triggers, half of its schema's text: without them each ALTER TABLE
	 * below parses the schema again in half the time; only the guards
	 * come back (rl_capture_install_guards). */
	if ((error = rl_capture_remove(s->db)) < 0)
		goto fail;
	for (i = 0; i < rl_hub_migrations_count; i++) {
		if (rl_hub_migrations[i].version <= have)
			continue;
		if (sqlite3_exec(s->db, rl_hub_migrations[i].sql, NULL, NULL, NULL) != SQLITE_OK) {
			error = rl_error_set(RL_ESTORE, "hub migration %s failed: %s",
					     rl_hub_migrations[i].name, sqlite3_errmsg(s->db));
			goto fail;
		}
		/* As in migrate(): hub 009 adds a column to a table hub 006
		 * rewrote. */
		if (strstr(rl_hub_migrations[i].sql, "writable_schema") &&
		    (error = bump_schema_cookie(s)) < 0)
			goto fail;
	}
	snprintf(num, sizeof(num), "%d", rl_hub_migrations[rl_hub_migrations_count - 1].version);
	if ((error = strip_device_indexes(s)) < 0 || (error = bump_schema_cookie(s)) < 0 ||
	    (error = rl_capture_install_guards(s->db)) < 0 ||
	    (error = rl_store_meta_set(s, "hub_schema", num)) < 0)
		goto fail;
	return rl_store_commit(s);
fail:
	rl_store_rollback(s);
	return error;
}

static int load_identity(rl_store *s)
{
	char *v = NULL;
	int error;

	if ((error = rl_store_meta_get(s, "device_id", &v)) < 0)
		return error;
	if (v && rl_id_valid(v))
		memcpy(s->device_id, v, RL_ID_BUFSZ);
	free(v);
	v = NULL;
	if ((error = rl_store_meta_get(s, "user_id", &v)) < 0)
		return error;
	if (v && rl_id_valid(v))
		memcpy(s->user_id, v, RL_ID_BUFSZ);
	free(v);
	v = NULL;
	if ((error = rl_store_meta_get(s, "role", &v)) < 0)
		return error;
	if (v && strlen(v) < sizeof(s->role))
		snprintf(s->role, sizeof(s->role), "%s", v);
	free(v);
	v = NULL;
	if ((error = rl_store_meta_get(s, "hlc", &v)) < 0)
		return error;
	if (v) {
		s->hlc.last = strtoll(v, NULL, 10);
		s->hlc_saved = s->hlc.last;
	}
	free(v);
	return RL_OK;
}

static int load_fixed_now(rl_store *s)
{
	const char *env = getenv("RELASI_NOW");
	int64_t utc;
	int off;

	if (!env || !*env)
		return RL_OK;
	if (rl_time_parse(&utc, &off, env, 0, 0) < 0) {
		rl_error_prefix("RELASI_NOW");
		return RL_EINVALID;
	}
	s->have_fixed_now = 1;
	s->fixed_now_ms = utc * 1000;
	return RL_OK;
}

void rl_store_set_images(const struct rl_store_images *images)
{
	store_images = images;
}

int rl_store_made_from_image(const rl_store *s)
{
	return s->from_image;
}

/* The image for a new store of this kind, if one was registered for this
 * binary's schema (an image of another version would need the migrations
 * anyway, and a backup of a store no one made). */
static const struct rl_store_image *image_for(unsigned flags)
{
	const struct rl_store_image *img;

	if (!store_images)
		return NULL;
	img = (flags & RL_STORE_HUB) ? &store_images->hub : &store_images->device;
	if (img->size == 0 || img->schema != rl_store_schema_latest() ||
	    ((flags & RL_STORE_HUB) && img->hub_schema != rl_store_hub_schema_latest()))
		return NULL;
	return img;
}

static int write_all_at(int fd, const unsigned char *p, size_t len, off_t at)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
		at += n;
	}
	return 0;
}

/* The one value a migration makes up per store: the hub's epoch, a random
 * id (schema/hub/003_backup.sql says why). Every hub made from the image
 * would share the image's, so it is drawn again in the temporary file,
 * before the store appears under its name (test_store_image checks that
 * this is the only difference from a store the migrations made). */
static int new_epoch(const char *tmp, const char *path)
{
	sqlite3 *db = NULL;
	int rc;

	rc = sqlite3_open_v2(tmp, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "UPDATE rl_meta SET value = lower(hex(randomblob(16))) "
				  "WHERE key = 'hub_epoch'", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		rc = rl_error_set(RL_ESTORE, "cannot create store '%s': %s", path,
				  db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return rc;
	}
	/* The last close checkpoints the WAL into the file and removes it. */
	if (sqlite3_close(db) != SQLITE_OK)
		return rl_error_set(RL_ESTORE, "cannot create store '%s': closing failed", path);
	return RL_OK;
}

/* Make the missing store file at path from img: written whole to a
 * temporary file beside it, synced, then linked into place. link() fails
 * if the path exists by then (another process made the store first, or a
 * symlink was put there): that file is opened as it is, as SQLite's own
 * create would. 1: this call made the store; 0: it did not (there, or no
 * hard links here). Errors: RL_EIO, RL_ESTORE (the hub's epoch), naming
 * the file. */
static int write_image(const char *path, const struct rl_store_image *img, int hub)
{
	char tmp[4096], dir[4096];
	const unsigned char *data = img->data;
	const char *why = NULL;
	size_t i;
	int fd, error = RL_OK, tries;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.new-%ld", path, (long)getpid()) >= sizeof(tmp))
		return rl_error_set(RL_EIO, "store path too long: '%s'", path);
	for (tries = 0; ; tries++) {
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd >= 0 || errno != EEXIST || tries > 0)
			break;
		rl_store_remove_files(tmp);   /* left by a crashed process of the same pid */
	}
	if (fd < 0)
		return rl_error_set(RL_EIO, "cannot create store '%s': %s", path, strerror(errno));
	if (ftruncate(fd, (off_t)img->size) != 0)
		why = strerror(errno);
	for (i = 0; !why && i < img->nchunks; i++) {
		const struct rl_store_image_chunk *c = &img->chunks[i];
		if ((uint64_t)c->offset + c->len > img->size)
			why = "the built-in image is damaged";
		else if (write_all_at(fd, data, c->len, (off_t)c->offset) != 0)
			why = strerror(errno);
		data += c->len;
	}
	if (!why && fsync(fd) != 0)
		why = strerror(errno);
	if (close(fd) != 0 && !why)
		why = strerror(errno);
	if (why)
		error = rl_error_set(RL_EIO, "cannot write store '%s': %s", path, why);
	if (error == RL_OK && hub)
		error = new_epoch(tmp, path);
	/* A file system without hard links (EPERM, ENOTSUP): nothing is made
	 * here, and SQLite creates the store from the migrations, as without
	 * an image; EEXIST: another process made it first. */
	if (error == RL_OK && link(tmp, path) == 0)
		error = 1;
	rl_store_remove_files(tmp);
	if (error == 1) {
		/* The new name reaches the disk before anything is written to it. */
		snprintf(dir, sizeof(dir), "%s", path);
		if ((fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
			(void)fsync(fd);
			close(fd);
		}
	}
	return error;
}

/* Back to WAL, as every store runs (a large import leaves it in rollback
 * journal mode until its end: rl_store_journal_bulk). The switch needs
 * the file to itself for a moment, and SQLite's busy handler does not
 * wait for it: a command started while an import ran failed at once with
 * "database is locked", even `relasi status`. It waits as long as for
 * any lock, then says what holds the store. */
/* The store held by another process past the busy timeout. */
static int busy_error(const char *path)
{
	return rl_error_set(RL_ESTORE, "store '%s' is busy: another process has held it for %d s "
			    "(on a device, a large import holds it to its end); try again once it "
			    "is done", path, RL_BUSY_TIMEOUT_MS / 1000);
}

static int enable_wal(rl_store *s, const char *path)
{
	long waited = 0, nap = 5;

	for (;;) {
		int rc = sqlite3_exec(s->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) & 0xff;
		struct timespec ts;
		if (rc == SQLITE_OK)
			return RL_OK;
		if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
			return rl_store_error(s, "enabling WAL");
		if (waited >= RL_BUSY_TIMEOUT_MS)
			return busy_error(path);
		ts.tv_sec = 0;
		ts.tv_nsec = nap * 1000000L;
		nanosleep(&ts, NULL);
		waited += nap;
		if (nap < 100)
			nap *= 2;
	}
}

int rl_store_open(rl_store **out, const char *path, unsigned flags)
{
	const struct rl_store_image *image = NULL;
	rl_store *s;
	struct stat sb;
	int error, version = 0, app_id = 0, objects = 0, made = 0;
	int oflags;

	*out = NULL;
	if (stat(path, &sb) != 0) {
		if (errno != ENOENT)
			return rl_error_set(RL_EIO, "cannot read store '%s': %s", path,
					    strerror(errno));
		/* The hub's admin commands open hub.db through here too: naming
		 * the device's init sent an admin who gave the wrong --dir to make
		 * a device store. */
		if (!(flags & RL_STORE_CREATE))
			return rl_error_set(RL_ENOTFOUND, (flags & RL_STORE_HUB)
				? "no hub at '%s' (give the hub's directory with --dir or "
				  "RELASI_HUB_DIR, or make one with 'relasi-hub init DIR')"
				: "no store at '%s' (run 'relasi init' first)", path);
		if (!(flags & RL_STORE_READONLY) && (image = image_for(flags)) &&
		    (made = write_image(path, image, (flags & RL_STORE_HUB) != 0)) < 0)
			return made;
	}
	if (!(s = calloc(1, sizeof(*s))) || !(s->path = strdup(path))) {
		free(s);
		return rl_error_set(RL_ENOMEM, "out of memory");
	}
	s->from_image = made == 1;
	s->capture = 1;
	s->fts_live = 1;
	s->device_indexes = !(flags & RL_STORE_HUB);
	rl_hlc_init(&s->hlc, 0, RL_HLC_DEFAULT_MAX_DRIFT_MS, store_clock, s);
	if ((error = load_fixed_now(s)) < 0)
		goto fail;

	oflags = (flags & RL_STORE_READONLY) ? SQLITE_OPEN_READONLY
		 : SQLITE_OPEN_READWRITE | ((flags & RL_STORE_CREATE) ? SQLITE_OPEN_CREATE : 0);
	/* NOMUTEX: one thread per handle (store.h), so the connection's own
	 * mutex only costs a lock and an unlock per call (5 Dec 2026: with
	 * cli.c's MEMSTATUS off, the 200k-change push 3.2-3.4 -> 2.6-3.1 s). */
	if (sqlite3_open_v2(path, &s->db, oflags | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		error = rl_error_set(RL_ESTORE, "cannot open store '%s': %s", path,
				     s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	/* Before the first read: a hub or another command may hold a write lock
	 * for a moment (a migration, a batch); wait for it instead of failing. */
	sqlite3_busy_timeout(s->db, RL_BUSY_TIMEOUT_MS);

	/* Look before touching anything: a newer or foreign file stays as it is. */
	if ((error = pragma_int(s, "PRAGMA user_version", &version)) < 0 ||
	    (error = pragma_int(s, "PRAGMA application_id", &app_id)) < 0 ||
	    (error = pragma_int(s, "SELECT count(*) FROM sqlite_master", &objects)) < 0) {
		/* A full disk or a failing one is not a bad file: say which. */
		int rc = sqlite3_errcode(s->db) & 0xff;
		if (rc == SQLITE_BUSY) {       /* waited RL_BUSY_TIMEOUT_MS already */
			error = busy_error(path);
			goto fail;
		}
		if (rc == SQLITE_IOERR || rc == SQLITE_FULL || rc == SQLITE_CANTOPEN ||
		    rc == SQLITE_NOMEM)
			rl_error_prefix("cannot read store '%s'", path);
		else
			rl_error_prefix("'%s' is not a readable SQLite database", path);
		goto fail;
	}
	if (app_id != RL_APPLICATION_ID && (app_id != 0 || objects != 0)) {
		error = rl_error_set(RL_EINVALID, "'%s' is not a Relasi store", path);
		goto fail;
	}
	if (version > rl_store_schema_latest()) {
		error = rl_error_set(RL_EVERSION,
			"store '%s' has schema version %d, newer than this relasi "
			"(knows up to %d); upgrade relasi — the store was not changed",
			path, version, rl_store_schema_latest());
		goto fail;
	}

	if ((error = register_functions(s)) < 0)
		goto fail;
	if (!(flags & RL_STORE_READONLY)) {
		if ((error = enable_wal(s, path)) < 0)
			goto fail;
		/* Keep the -wal and -shm files when the command ends: SQLite
		 * otherwise creates and unlinks both in every `relasi` process,
		 * a measurable part of a short command. The last close still
		 * checkpoints, so relasi.db alone holds every committed change.
		 * Not for the hub, whose restore replaces hub.db in place: a
		 * kept WAL of the old file must never meet the new one. The size
		 * limit makes SQLite truncate the kept file (to zero on close):
		 * without it an import's 1 GiB WAL would stay on disk for good. */
		if (!(flags & RL_STORE_HUB)) {
			int persist = 1;
			sqlite3_file_control(s->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
			if ((error = exec(s, "PRAGMA journal_size_limit = 16777216",
					  "limiting the WAL")) < 0)
				goto fail;
		}
	}
	/* 8 MiB of page cache: a short command (most of what a rep runs) pays
	 * for the cache it sets up, and 64 MiB measured slower for `nearby`
	 * (bench/); the hub runs one connection per device session. */
	if ((error = exec(s, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; "
			  "PRAGMA cache_size = -" RL_STR(RL_CACHE_KIB) "; PRAGMA temp_store = MEMORY",
			  "configuring the store")) < 0)
		goto fail;
	/* The memory map, and which commands are better off without it:
	 * RL_STORE_UNMAPPED in relasi/store.h. */
	if (!(flags & (RL_STORE_HUB | RL_STORE_UNMAPPED)) &&
	    (error = exec(s, "PRAGMA mmap_size = 1073741824", "configuring the store")) < 0)
		goto fail;

	if (version < rl_store_schema_latest()) {
		if (flags & RL_STORE_READONLY) {
			error = rl_error_set(RL_EVERSION, "store '%s' needs an upgrade; "
					     "open it for writing once", path);
			goto fail;
		}
		if ((error = migrate(s)) < 0)
			goto fail;
	}
	if ((flags & RL_STORE_HUB) && !(flags & RL_STORE_READONLY)) {
		s->capture = 0;
		if ((error = exec(s, "PRAGMA synchronous = FULL", "configuring the hub store")) < 0 ||
		    (error = migrate_hub(s)) < 0)
			goto fail;
	}
	if ((error = load_identity(s)) < 0)
		goto fail;
	*out = s;
	return RL_OK;
fail:
	rl_store_close(s);
	return error;
}

void rl_store_close(rl_store *s)
{
	int i;

	if (!s)
		return;
	if (s->db && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	for (i = 0; i < RL_STMT_CACHE; i++) {
		if (s->stmts[i].key) {
			sqlite3_finalize(s->stmts[i].stmt);
			free((char *)s->stmts[i].key);
		}
	}
	sqlite3_close(s->db);
	free(s->path);
	free(s);
}

int rl_store_schema_version(rl_store *s)
{
	int v = 0;
	pragma_int(s, "PRAGMA user_version", &v);
	return v;
}

long long rl_store_cache_widen(rl_store *s, long long kib)
{
	sqlite3_stmt *st;
	long long before = -RL_CACHE_KIB;
	char sql[64];

	if (sqlite3_prepare_v2(s->db, "PRAGMA cache_size", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		before = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	snprintf(sql, sizeof(sql), "PRAGMA cache_size = %lld", -kib);
	sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	return before;
}

void rl_store_cache_restore(rl_store *s, long long before)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "PRAGMA cache_size = %lld", before);
	sqlite3_exec(s->db, sql, NULL, NULL, NULL);
}
