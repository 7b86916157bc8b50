/*
 * fuzz_util.c — helpers shared by the fuzz targets (see fuzz_util.h).
 */
#include "fuzz_util.h"

#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "relasi/conn.h"
#include "relasi/devsync.h"
#include "relasi/error.h"
#include "relasi/model.h"
#include "relasi/store.h"
#include "utf8.h"

/* Is any statement of db still stepping (not reset)? */
static int fz_busy_statements(sqlite3 *db)
{
	sqlite3_stmt *st;

	for (st = sqlite3_next_stmt(db, NULL); st; st = sqlite3_next_stmt(db, st))
		if (sqlite3_stmt_busy(st))
			return 1;
	return 0;
}

void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "\nFUZZ CHECK FAILED %s:%d: %s\n  ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n  last library error: %d %s\n", rl_error_code(), rl_error_message());
	fflush(stderr);
	abort();
}

void fz_setup_env(void)
{
	setenv("RELASI_NOW", FZ_NOW_ISO, 1);
	setenv("TZ", "WIB-7", 1);
	tzset();
}

char *fz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		return NULL;
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= b[i];
		h *= 1099511628211ULL;
	}
	return h;
}

uint64_t fz_db_digest(sqlite3 *db)
{
	sqlite3_stmt *tables = NULL, *rows = NULL;
	uint64_t total = 0;
	int rc;

	rc = sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table' "
				"AND name NOT LIKE 'sqlite_%' AND sql NOT LIKE 'CREATE VIRTUAL%' "
				"ORDER BY name", -1, &tables, NULL);
	FZ_CHECK(rc == SQLITE_OK, "listing tables: %s", sqlite3_errmsg(db));
	while (sqlite3_step(tables) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(tables, 0);
		char *sql = sqlite3_mprintf("SELECT * FROM \"%w\"", name);
		uint64_t th = fnv(14695981039346656037ULL, name, strlen(name));
		int ncol, i, is_meta = strcmp(name, "rl_meta") == 0;

		rc = sqlite3_prepare_v2(db, sql, -1, &rows, NULL);
		sqlite3_free(sql);
		FZ_CHECK(rc == SQLITE_OK, "reading %s: %s", name, sqlite3_errmsg(db));
		ncol = sqlite3_column_count(rows);
		while ((rc = sqlite3_step(rows)) == SQLITE_ROW) {
			uint64_t h = th;
			if (is_meta && sqlite3_column_text(rows, 0) &&
			    strcmp((const char *)sqlite3_column_text(rows, 0), "hlc") == 0)
				continue;
			for (i = 0; i < ncol; i++) {
				int type = sqlite3_column_type(rows, i);
				const void *p = type == SQLITE_BLOB ? sqlite3_column_blob(rows, i)
								    : sqlite3_column_text(rows, i);
				int n = sqlite3_column_bytes(rows, i);
				h = fnv(h, &type, sizeof(type));
				h = fnv(h, &n, sizeof(n));
				if (p && n > 0)
					h = fnv(h, p, (size_t)n);
			}
			/* Order-independent: the rows' hashes are summed, each
			 * mixed first (murmur3's fmix64). Unmixed, FNV's last steps
			 * are nearly linear: a store that renumbered batches 1, 1, 2
			 * to 3, 3, 4 and next_batch 3 to 5 summed to the same
			 * digest (fuzz_dev_batches, 5 Dec). */
			h ^= h >> 33;
			h *= 0xff51afd7ed558ccdULL;
			h ^= h >> 33;
			h *= 0xc4ceb9fe1a85ec53ULL;
			h ^= h >> 33;
			total += h;
		}
		FZ_CHECK(rc == SQLITE_DONE, "reading %s: %s", name, sqlite3_errmsg(db));
		sqlite3_finalize(rows);
		rows = NULL;
	}
	sqlite3_finalize(tables);
	return total;
}

static char tmpdir[128];
static char store_path[160], tmpl_path[160];
static sqlite3 *restorer;              /* the second connection */
static sqlite3_stmt **restore_sql;     /* DELETE, INSERT ... SELECT per table */
static size_t nrestore;

static void remove_tmpdir(void)
{
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
	char path[200];
	size_t i;

	for (i = 0; i < nrestore; i++)
		sqlite3_finalize(restore_sql[i]);
	free(restore_sql);
	nrestore = 0;
	sqlite3_close(restorer);
	restorer = NULL;
	for (i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s%s", store_path, suffixes[i]);
		unlink(path);
		snprintf(path, sizeof(path), "%s%s", tmpl_path, suffixes[i]);
		unlink(path);
	}
	rmdir(tmpdir);
}

const char *fz_tmpdir(void)
{
	if (!tmpdir[0]) {
		const char *base = getenv("TMPDIR");
		if (!base || !*base || strlen(base) > 64)
			base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
		snprintf(tmpdir, sizeof(tmpdir), "%s/relasi-fuzz-XXXXXX", base);
		FZ_CHECK(mkdtemp(tmpdir) != NULL, "mkdtemp %s", tmpdir);
		atexit(remove_tmpdir);
	}
	return tmpdir;
}

rl_store *fz_store_open(unsigned flags)
{
	rl_store *s = NULL;

	snprintf(store_path, sizeof(store_path), "%s/store.db", fz_tmpdir());
	FZ_CHECK(rl_store_open(&s, store_path, RL_STORE_CREATE | flags) == RL_OK, "store: %s",
		 rl_error_message());
	return s;
}

static void restorer_exec(const char *sql)
{
	FZ_CHECK(sqlite3_exec(restorer, sql, NULL, NULL, NULL) == SQLITE_OK, "%s: %s", sql,
		 sqlite3_errmsg(restorer));
}

void fz_store_snapshot(rl_store *s)
{
	sqlite3_stmt *st;
	char *sql;
	int on = -1;

	snprintf(tmpl_path, sizeof(tmpl_path), "%s/template.db", fz_tmpdir());
	sql = sqlite3_mprintf("VACUUM INTO %Q", tmpl_path);
	FZ_CHECK(sqlite3_exec(rl_store_db(s), sql, NULL, NULL, NULL) == SQLITE_OK, "%s: %s", sql,
		 sqlite3_errmsg(rl_store_db(s)));
	sqlite3_free(sql);
	FZ_CHECK(sqlite3_open_v2(store_path, &restorer, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK,
		 "second connection");
	sqlite3_busy_timeout(restorer, 10000);
	/* Rows go back as they were: no capture, no FTS triggers (the FTS and
	 * R*Tree shadow tables are restored like any other table). */
	FZ_CHECK(sqlite3_db_config(restorer, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, &on) == SQLITE_OK &&
		 on == 0, "disabling triggers");
	sql = sqlite3_mprintf("ATTACH %Q AS tmpl", tmpl_path);
	restorer_exec(sql);
	sqlite3_free(sql);
	FZ_CHECK(sqlite3_prepare_v2(restorer, "SELECT name FROM tmpl.sqlite_master WHERE type = "
				    "'table' AND (name NOT LIKE 'sqlite_%' OR name = 'sqlite_sequence') "
				    "AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name", -1, &st,
				    NULL) == SQLITE_OK, "%s", sqlite3_errmsg(restorer));
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		sqlite3_stmt **grown = realloc(restore_sql, (nrestore + 2) * sizeof(*restore_sql));
		FZ_CHECK(grown != NULL, "out of memory");
		restore_sql = grown;
		sql = sqlite3_mprintf("DELETE FROM main.\"%w\"", name);
		FZ_CHECK(sqlite3_prepare_v2(restorer, sql, -1, &restore_sql[nrestore], NULL) ==
			 SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(restorer));
		sqlite3_free(sql);
		sql = sqlite3_mprintf("INSERT INTO main.\"%w\" SELECT * FROM tmpl.\"%w\"", name, name);
		FZ_CHECK(sqlite3_prepare_v2(restorer, sql, -1, &restore_sql[nrestore + 1], NULL) ==
			 SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(restorer));
		sqlite3_free(sql);
		nrestore += 2;
	}
	sqlite3_finalize(st);
}

void fz_store_restore(rl_store *s)
{
	size_t i;

	/* A statement left stepping or a transaction left open by the code
	 * under test would block the restore: a bug worth reporting too. */
	FZ_CHECK(sqlite3_get_autocommit(rl_store_db(s)), "a transaction was left open");
	FZ_CHECK(!fz_busy_statements(rl_store_db(s)), "a statement was left stepping");
	restorer_exec("BEGIN IMMEDIATE");
	for (i = 0; i < nrestore; i++) {
		int rc = sqlite3_step(restore_sql[i]);
		sqlite3_reset(restore_sql[i]);
		FZ_CHECK(rc == SQLITE_DONE, "restoring: %s", sqlite3_errmsg(restorer));
	}
	restorer_exec("COMMIT");
}

void fz_exec(sqlite3 *db, const char *sql)
{
	FZ_CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK, "%s: %s", sql,
		 sqlite3_errmsg(db));
}

long long fz_query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	long long v = -1;

	FZ_CHECK(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
		 sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

int fz_value_from_json(json_t *j, struct rl_value *v)
{
	memset(v, 0, sizeof(*v));
	if (!j || json_is_null(j))
		v->type = RL_V_NULL;
	else if (json_is_integer(j)) {
		v->type = RL_V_INT;
		v->i = json_integer_value(j);
	} else if (json_is_real(j)) {
		v->type = RL_V_REAL;
		v->d = json_real_value(j);
	} else if (json_is_string(j)) {
		v->type = RL_V_TEXT;
		v->s = json_string_value(j);
	} else
		return 0;
	return 1;
}

void fz_check_synced_values(sqlite3 *db, const char *who)
{
	static const char *const names[] = { "accounts", "contacts", "deals", "activities",
					     "tasks", "stages", "users", "deal_stage_events",
					     "segments", "campaigns", "campaign_members", "tier_config",
					     NULL };
	int k;

	for (k = 0; names[k]; k++) {
		const struct rl_table *t = rl_model_table(names[k]);
		char *sql = sqlite3_mprintf("SELECT * FROM \"%w\"", names[k]);
		sqlite3_stmt *st = NULL;
		int rc, i, n;

		FZ_CHECK(t && sql, "model table %s", names[k]);
		FZ_CHECK(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s",
			 sqlite3_errmsg(db));
		sqlite3_free(sql);
		n = sqlite3_column_count(st);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *id = (const char *)sqlite3_column_text(st, 0);
			for (i = 0; i < n; i++) {
				const struct rl_field *f = rl_model_field(t, sqlite3_column_name(st, i));
				struct rl_value v;
				memset(&v, 0, sizeof(v));
				if (!f)
					continue;
				switch (sqlite3_column_type(st, i)) {
				case SQLITE_INTEGER: v.type = RL_V_INT; v.i = sqlite3_column_int64(st, i); break;
				case SQLITE_FLOAT: v.type = RL_V_REAL; v.d = sqlite3_column_double(st, i); break;
				case SQLITE_NULL: v.type = RL_V_NULL; break;
				default: v.type = RL_V_TEXT; v.s = (const char *)sqlite3_column_text(st, i); break;
				}
				FZ_CHECK(rl_model_check_value(t, f, &v) == RL_OK,
					 "%s: %s %s.%s holds a value the model refuses (type %d, '%.80s')",
					 who, id ? id : "?", t->name, f->name, (int)v.type,
					 v.type == RL_V_TEXT ? v.s : "");
			}
		}
		FZ_CHECK(rc == SQLITE_DONE, "%s", sqlite3_errmsg(db));
		sqlite3_finalize(st);
	}
}

void fz_check_search_indexes(sqlite3 *db, const char *who)
{
	static const char *const names[] = { "accounts", "contacts", "activities" };
	char sql[256];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(sql, sizeof(sql), "INSERT INTO fts_%s(fts_%s) VALUES ('integrity-check')",
			 names[i], names[i]);
		FZ_CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK,
			 "%s: the search index of %s is corrupt: %s", who, names[i], sqlite3_errmsg(db));
		snprintf(sql, sizeof(sql), "SELECT (SELECT count(*) FROM fts_%s_docsize) - "
			 "(SELECT count(*) FROM %s WHERE deleted = 0)", names[i], names[i]);
		FZ_CHECK(fz_query_int(db, sql) == 0, "%s: the search index of %s does not hold "
			 "exactly the live rows", who, names[i]);
	}
}

void fz_check_bootstrapped(sqlite3 *db, long long cursor, const char *who)
{
	char sql[256];

	FZ_CHECK(fz_query_int(db, "SELECT count(*) FROM pragma_integrity_check WHERE "
			      "integrity_check <> 'ok'") == 0, "%s: the store is not intact", who);
	fz_check_search_indexes(db, who);
	FZ_CHECK(fz_query_int(db, "SELECT count(*) FROM pragma_foreign_key_check") == 0,
		 "%s: a reference dangles", who);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM rl_base_snapshot b, json_each(b.versions) j "
		 "WHERE j.type <> 'integer' OR j.value < 1 OR j.value > %lld", cursor);
	FZ_CHECK(fz_query_int(db, sql) == 0, "%s: a field version outside 1..%lld", who, cursor);
	fz_check_synced_values(db, who);
}

unsigned char *fz_read_file(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long n;

	FZ_CHECK(f != NULL, "cannot read %s", path);
	FZ_CHECK(fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0,
		 "cannot size %s", path);
	FZ_CHECK((buf = malloc(n > 0 ? (size_t)n : 1)) != NULL, "out of memory");
	FZ_CHECK(n == 0 || fread(buf, 1, (size_t)n, f) == (size_t)n, "cannot read %s", path);
	fclose(f);
	*size = (size_t)n;
	return buf;
}

void fz_write_file(const char *path, const void *data, size_t size)
{
	FILE *f = fopen(path, "wb");

	FZ_CHECK(f != NULL, "cannot write %s", path);
	FZ_CHECK(size == 0 || fwrite(data, 1, size, f) == size, "short write to %s", path);
	FZ_CHECK(fclose(f) == 0, "cannot write %s", path);
}

int fz_utf8_ok(const char *s, size_t len)
{
	return rl_utf8_bad((const unsigned char *)s, len) == len;
}

int fz_run_session(struct rl_store *s, struct rl_conn **hub_end, void *(*hub_main)(void *),
		   void *arg)
{
	struct rl_sync_stats stats;
	rl_conn *dev = NULL;
	pthread_t hub;
	int rc;

	FZ_CHECK(rl_conn_pipe(&dev, hub_end) == RL_OK, "pipe");
	FZ_CHECK(pthread_create(&hub, NULL, hub_main, arg) == 0, "thread");
	rc = rl_sync_session(s, dev, &stats, NULL, NULL);
	rl_conn_close(dev);
	pthread_join(hub, NULL);
	return rc;
}

void fz_same_text(const char *s, const json_t *j, const char *what)
{
	FZ_CHECK(s && json_is_string(j) && strlen(s) == json_string_length(j) &&
		 memcmp(s, json_string_value(j), strlen(s)) == 0, "%s differs", what);
}

void fz_same_value(const struct rl_value *v, const json_t *j)
{
	switch (v->type) {
	case RL_V_NULL: FZ_CHECK(json_is_null(j), "null differs"); break;
	case RL_V_INT:
		FZ_CHECK(json_is_integer(j) && json_integer_value(j) == v->i, "integer differs");
		break;
	case RL_V_REAL:
		FZ_CHECK(json_is_real(j) && memcmp(&(double){ json_real_value(j) }, &v->d,
						   sizeof(double)) == 0, "real %g differs", v->d);
		break;
	case RL_V_TEXT: fz_same_text(v->s, j, "a text value"); break;
	default: FZ_CHECK(0, "a value of type %d", (int)v->type);
	}
}
