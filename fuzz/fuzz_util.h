/*
 * fuzz_util.h — helpers shared by the fuzz targets (fuzz/fuzz_*.c).
 *
 * Every target is a libFuzzer entry point, LLVMFuzzerTestOneInput(), built
 * two ways (fuzz/CMakeLists.txt): with -fsanitize=fuzzer by scripts/fuzz.sh,
 * and in every normal build with fuzz/replay_main.c, which replays the
 * committed corpus (ctest fuzz.<name>). So a target must be deterministic
 * enough to replay, quiet, and must never exit: a broken promise of the
 * code under test is FZ_CHECK -> abort(), which both libFuzzer and ctest
 * report as a failure together with the message.
 *
 * Targets that need a store keep one open for the whole process and put its
 * data back after every input (fz_store_*): opening and migrating a store
 * costs ~6 ms, and anything that replaces the database under the store's
 * connection (the backup API) makes SQLite re-parse the whole schema and
 * re-prepare every statement (~2.5 ms). So the store is a file in a
 * private temporary directory, and a second connection, with triggers
 * off, rewrites every table from a copy taken after setup: the schema
 * never changes, and the store's connection only sees new data.
 */
#ifndef RELASI_FUZZ_UTIL_H
#define RELASI_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>
#include <sqlite3.h>

#include "relasi/merge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort with a message (file:line and the failed condition) unless cond. */
#define FZ_CHECK(cond, ...)                                                          \
	do {                                                                         \
		if (!(cond))                                                         \
			fz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);             \
	} while (0)

void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 4, 5)));

/*
 * Once per process: a fixed clock (RELASI_NOW = FZ_NOW_ISO) so that stamps
 * and "today" do not depend on when the fuzzer runs, and a UTC offset of +7
 * (TZ=WIB-7, Jakarta) so local-time conversions are exercised.
 */
#define FZ_NOW_ISO "2026-03-02T09:00:00Z"
#define FZ_NOW_MS  1772442000000LL
void fz_setup_env(void);

/* A NUL-terminated copy of data[0..size) (malloc'd; NULL only if out of memory). */
char *fz_strndup(const uint8_t *data, size_t size);

/* Order-independent 64-bit digest of every row of every ordinary table (the
 * shadow tables of FTS5 and R*Tree included), except rl_meta's 'hlc' row,
 * which commits touch whenever the clock moved. Equal digests: equal data. */
uint64_t fz_db_digest(sqlite3 *db);

/* Open the process's store (a new file, RL_STORE_CREATE | flags). */
struct rl_store;
struct rl_store *fz_store_open(unsigned flags);
/* Remember the store's data as it is now (after setup). */
void fz_store_snapshot(struct rl_store *s);
/* Put that data back (no transaction may be open). */
void fz_store_restore(struct rl_store *s);
/* The private temporary directory (for other files a target needs). */
const char *fz_tmpdir(void);

/* Run SQL that must succeed (setup of a target's store). */
void fz_exec(sqlite3 *db, const char *sql);

/* One scalar query's integer result (-1 when it yields no row). */
long long fz_query_int(sqlite3 *db, const char *sql);

/* A JSON scalar as an rl_value (text points into j); 0 if not a scalar. */
int fz_value_from_json(json_t *j, struct rl_value *v);

/* For the differential targets (a reader without jansson against jansson):
 * s is exactly j's string, byte for byte; v is exactly j's value (the same
 * type, integers equal, reals bit for bit, text byte for byte). `what`
 * names the field in the failure. */
void fz_same_text(const char *s, const json_t *j, const char *what);
void fz_same_value(const struct rl_value *v, const json_t *j);

/* One device sync session (rl_sync_session) of store s against a scripted
 * hub: an in-memory connection whose hub end is put in *hub_end before
 * hub_main(arg) starts on its own thread. The device end is closed after
 * the session and the thread joined. Returns the session's result. */
struct rl_conn;
int fz_run_session(struct rl_store *s, struct rl_conn **hub_end, void *(*hub_main)(void *),
		   void *arg);
/* Every model field of every live-or-dead row of the synced tables holds a
 * value rl_model_check_value accepts (the stored form is always valid). */
void fz_check_synced_values(sqlite3 *db, const char *who);

/* The three full-text indexes pass FTS5's integrity-check and hold exactly
 * the live rows of their tables (schema/016_fts_live.sql). */
void fz_check_search_indexes(sqlite3 *db, const char *who);

/* A store a bootstrap loaded, up to cursor: integrity_check, the search
 * indexes (above), no dangling reference, every snapshot version an integer
 * in 1..cursor, every value valid by the model. */
void fz_check_bootstrapped(sqlite3 *db, long long cursor, const char *who);

/* A whole file into memory (malloc'd, *size bytes), or data into a file. */
unsigned char *fz_read_file(const char *path, size_t *size);
void fz_write_file(const char *path, const void *data, size_t size);

/* Does s[0..len) hold valid UTF-8 without NUL? */
int fz_utf8_ok(const char *s, size_t len);

#endif
