/*
 * relasi/store.h — a Relasi store: one SQLite file holding the synced tables,
 * the device's outbox and its local indexes (full-text, geo).
 *
 * Opening a store applies the pragmas every store needs (WAL, busy timeout,
 * foreign keys, a 64 MiB page cache — measured 2–3x faster writes with random
 * ids) and brings its schema up to date: an older store is backed up beside
 * itself ("PATH.v<N>.bak", SQLite backup API) and then upgraded in one
 * transaction; a store made by a newer binary is refused untouched
 * (RL_EVERSION). Every write goes through rl_store_begin/commit, which start
 * with BEGIN IMMEDIATE so two processes never deadlock on upgrade.
 *
 * Change capture: triggers installed by capture.c record every field change
 * of a synced table in rl_outbox in the same transaction. They call SQL
 * functions that only a process linked with this library registers, so a
 * write to a synced table from the plain sqlite3 shell fails rather than
 * escape capture (see docs/sync.md, "Editing the store by hand").
 *
 * Ownership: the rl_store owns its sqlite3 handle and every statement from
 * rl_store_prepare; callers never finalize them.
 */
#ifndef RELASI_STORE_H
#define RELASI_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#include "relasi/hlc.h"
#include "relasi/id.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rl_store rl_store;

enum {
	RL_STORE_CREATE   = 1 << 0, /* create the file if missing */
	RL_STORE_READONLY = 1 << 1, /* no upgrade, no writes */
	RL_STORE_HUB      = 1 << 2, /* the hub's store: hub tables too, capture off,
	                               synchronous=FULL (commits gate acknowledgements),
	                               no search or "nearby" index (below) */
	RL_STORE_UNMAPPED = 1 << 3  /* read with pread(), not through a memory map */
};

/*
 * A device's store is read through a memory map (up to 1 GiB), but with
 * RL_STORE_UNMAPPED (and the hub's, which has many sessions at once and
 * whose restore replaces hub.db in place). A map pays when a command reads
 * thousands of scattered pages: search, import, the reports (pipeline
 * 201 -> 140 ms, an import of 100k contacts 4.32 -> 3.88 s). It costs a
 * command that reads a few dozen pages more than it saves: each first
 * touch of a mapped page is a page fault, and the map is torn down at exit
 * (5 Dec 2026, the 2-core VM: `contact add` 20.7 vs 25.0 ms, `show` 17.9
 * vs 21.0 ms). Writes are the same either way; under a map an I/O error
 * while reading ends the process with SIGBUS instead of an error message.
 */

/*
 * The hub's store keeps no search (FTS5) or "nearby" (R*Tree) index: no hub
 * command reads them, devices build their own (a new device's image is
 * built through the device's code, hub/image.c), and keeping them cost a
 * fifth of the hub's CPU in a push of new customers (bench/bench_sync.py
 * merge, 6 Dec 2026). A writable hub open strips them after every
 * migration run: their triggers (named fts_* and geo_* by convention) are
 * dropped and their tables emptied, so a shared migration that re-creates
 * such a trigger (012, 016 and 017 did) does not bring the indexing back
 * (schema/hub/008_no_device_indexes.sql). The empty tables stay, so shared
 * migrations that touch them keep working on a hub.
 */

/*
 * Threads: a store handle belongs to one thread at a time (the hub opens one
 * per session, audit writer, image builder and checkpointer). Its SQLite
 * connection is opened without a mutex of its own (SQLITE_OPEN_NOMUTEX):
 * sharing a handle between threads at once is undefined.
 *
 * Open (and upgrade) the store at path. Errors: RL_ENOTFOUND (no file and no
 * RL_STORE_CREATE), RL_EVERSION (schema newer than this binary), RL_EINVALID
 * (not a Relasi store), RL_ESTORE (SQLite failed; message says why).
 */
int rl_store_open(rl_store **out, const char *path, unsigned flags);

/*
 * A new store's file, made at build time (schema/mkimage.c) by this very
 * code: rl_store_open(RL_STORE_CREATE) on a missing file, run once for a
 * device store and once for a hub's, the file read back. Creating a store
 * runs 23 migrations (and the hub's 13) whose ALTER TABLEs each parse the
 * whole schema again; writing the image instead makes `relasi init`,
 * `relasi enroll` and `relasi-hub init` faster (docs/schema.md, "New
 * stores"). The bytes are kept as the file's non-zero runs (`chunks`: each
 * `len` bytes of `data`, in order, at `offset`); the rest of the file's
 * `size` bytes are zeros.
 *
 * rl_store_set_images registers the images for the rest of the process
 * (relasi and relasi-hub do, first thing, with rl_store_builtin_images,
 * which only they link). Without them, or for an image made for another
 * schema version, a new store is made by the migrations, as the unit tests
 * and fuzzers do. The image is written to a temporary file beside the
 * store's path and linked into place, so that a crash leaves no half store
 * and two processes creating the same store at once both open one whole
 * file (on a file system without hard links the migrations make it). The pointers must stay valid for the life of the process.
 */
struct rl_store_image_chunk {
	uint32_t offset, len;
};
struct rl_store_image {
	int schema;             /* rl_store_schema_latest() it was made with */
	int hub_schema;         /* rl_store_hub_schema_latest(), the hub's image */
	uint32_t size;          /* bytes in the file */
	const struct rl_store_image_chunk *chunks;
	size_t nchunks;
	const unsigned char *data;
};
struct rl_store_images {
	struct rl_store_image device, hub;
};
void rl_store_set_images(const struct rl_store_images *images);
/* Defined by the build (schema/mkimage.c's output); linked into relasi,
 * relasi-hub and the unit test that checks it, not into librelasi-sync. */
extern const struct rl_store_images rl_store_builtin_images;
/* 1 if this handle's open made its file from an image (tests). */
int rl_store_made_from_image(const rl_store *s);

/* Close; rl_store_close(NULL) is a no-op. Rolls back an open transaction. */
void rl_store_close(rl_store *s);

/* Remove the store file at path with its -journal, -wal and -shm files
 * (missing ones are fine). Only for a store no connection has open: a
 * scratch store, or one being replaced. */
void rl_store_remove_files(const char *path);

sqlite3 *rl_store_db(rl_store *s);
const char *rl_store_path(const rl_store *s);

/* The schema version this binary writes, and the one the open store has. */
int rl_store_schema_latest(void);
int rl_store_schema_version(rl_store *s);
/* The version of the hub's own tables this binary writes (rl_meta 'hub_schema'). */
int rl_store_hub_schema_latest(void);

/* PRAGMA application_id of every Relasi store, hub's and devices' alike
 * ("RLS1"): it tells a Relasi store from another SQLite file, not a hub's
 * from a device's (rl_meta 'hub_schema' does). */
int rl_store_application_id(void);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. Commit also persists the HLC. */
int rl_store_begin(rl_store *s);
int rl_store_commit(rl_store *s);
void rl_store_rollback(rl_store *s);

/*
 * A cached prepared statement for sql (a string literal or otherwise
 * long-lived text: the pointer is the cache key together with its content).
 * The statement is reset and its bindings cleared; the store owns it.
 */
int rl_store_prepare(rl_store *s, const char *sql, sqlite3_stmt **out);

/* Column col of st's current row as a value (merge.h): text points into
 * the statement and stays valid until its next step or reset. */
struct rl_value;
void rl_store_column_value(sqlite3_stmt *st, int col, struct rl_value *v);

/* Bind v to parameter idx of st. Text is bound SQLITE_STATIC, never
 * TRANSIENT: a TRANSIENT bind copies, and when that copy fails for lack of
 * memory SQLite leaves the parameter NULL and the statement still runs — a
 * value silently erased (found by tests/hub/test_faults.c). So v->s must
 * stay valid until the statement's step is done. */
void rl_store_bind_value(sqlite3_stmt *st, int idx, const struct rl_value *v);

/*
 * A new record's INSERT from a run of n changes of one record, prepared
 * (cached, as rl_store_prepare) and bound: the id as ?1 and change i's
 * value as ?i+2 (rl_store_bind_value: text must outlive the step).
 * field_at(run, i, &value) gives change i's field name and value. A field
 * named twice in the run (a peer may send that; a pull may carry a create
 * and an edit right after it) is named once, with its last value: SQLite
 * keeps the first value of a column named twice, while the log and the
 * field versions make the last one current; the earlier ones stay bound
 * but unused. The caller steps and resets *out. Table and field names must
 * be the data model's, never user text. RL_ENOMEM, or rl_store_prepare's
 * errors.
 */
typedef const char *rl_store_field_at(const void *run, size_t i, const struct rl_value **value);
int rl_store_prepare_create(rl_store *s, const char *tbl, const char *id, const void *run,
			    size_t n, rl_store_field_at *field_at, sqlite3_stmt **out);

/*
 * The same for SQL built with sqlite3_mprintf's format (%w for an
 * identifier in double quotes): for statements over a table or field the
 * data model names (sync/src/model.c), never over user text — values are
 * always bound. RL_ENOMEM when the text cannot be built.
 */
int rl_store_preparef(rl_store *s, sqlite3_stmt **out, const char *fmt, ...);

/* Record an RL_ESTORE error from the connection's last message, prefixed
 * with what was being done. Returns RL_ESTORE. */
int rl_store_error(rl_store *s, const char *doing);

/* Local settings (rl_meta). get: *out is malloc'd (caller frees) or NULL if
 * absent. */
int rl_store_meta_get(rl_store *s, const char *key, char **out);
int rl_store_meta_set(rl_store *s, const char *key, const char *value);

/*
 * Identity of this device and its user, set once by `relasi init`
 * (device_id and user_id are fresh ids). Empty strings until then; writes to
 * synced tables fail until a device id exists.
 */
const char *rl_store_device_id(const rl_store *s);
const char *rl_store_user_id(const rl_store *s);
int rl_store_set_identity(rl_store *s, const char *device_id, const char *user_id);

/*
 * The role the hub gave this device's user (rep, manager, marketing,
 * admin): set at enrolment and refreshed at each sync; "" for a store
 * that never enrolled. record.c checks every change against it
 * (relasi/policy.h). RL_EINVALID for a value too long to be a role.
 */
const char *rl_store_role(const rl_store *s);
int rl_store_set_role(rl_store *s, const char *role);

/* Capture switch: sync turns it off while applying changes that came from
 * the hub (they must not be sent back). On by default. */
void rl_store_set_capture(rl_store *s, int on);

/* Removal switch: rows of synced tables are never deleted (capture.c's
 * guard refuses a DELETE) except while this is on. Only outbox.c turns it
 * on, with capture off, to remove a record the hub never had that the rep
 * discarded (relasi/outbox.h); off by default. */
void rl_store_set_removal(rl_store *s, int on);


/*
 * The journal for a bulk write (a snapshot load, an import). In WAL mode
 * every page written is written twice, to the WAL and again by the
 * checkpoint; a rollback journal saves only the pages that were already in
 * the file, so the pages a bulk write adds are written once. It is as
 * atomic: a process killed inside leaves the journal hot and the next
 * connection that may write rolls it back (`relasi` opens the store for
 * writing; a read-only reader, `sqlite3 -readonly`, gets an error until
 * then). rl_store_journal_bulk, outside a transaction,
 * leaves WAL for the rollback journal with synchronous=FULL (NORMAL is
 * power-safe only in WAL) and returns 1, or returns 0 and changes nothing
 * when another connection has the store open (SQLite leaves WAL only for
 * the last one). While it runs, other processes can read only until it
 * first writes into the file (its cache full, its commit); then they wait
 * the busy timeout. rl_store_journal_wal goes back (nothing
 * when the store did not leave WAL); should that fail, the store stays
 * sound in the rollback journal and the next rl_store_open asks for WAL.
 */
int rl_store_journal_bulk(rl_store *s);
void rl_store_journal_wal(rl_store *s);

/*
 * An import's transaction: BEGIN IMMEDIATE, then both deferrals below
 * (search indexing and change capture at the commit), so only inserts may
 * follow. End it with rl_store_commit or rl_store_rollback, then
 * rl_store_journal_wal. On an error nothing is left open (no transaction,
 * WAL as before). input_path is the file imported (NULL or "-": standard
 * input): from RL_BULK_JOURNAL_BYTES of it on, the import runs under
 * rl_store_journal_bulk. Below, there are few pages to save, and in WAL a refused
 * import leaves the store's file byte for byte as it was (leaving WAL and
 * coming back bumps the file's change counter).
 */
#define RL_BULK_JOURNAL_BYTES (1024 * 1024)
int rl_store_begin_import(rl_store *s, const char *input_path);

/*
 * Bulk writes (imports, a hub's batch) into the full-text indexed tables
 * (accounts, contacts, activities). FTS5 in SQLite 3.40 writes an index
 * segment for every inserted row (it flushes at each statement's
 * savepoint), a quarter of an import. Inside the caller's transaction:
 * rl_store_fts_defer notes where each table ends and stops indexing the
 * rows added since, and any later update of them (the triggers ask
 * rl_fts_indexed: schema/017_fts_indexed.sql); rows that existed before
 * are indexed as usual when updated;
 * rl_store_fts_catch_up indexes every live row added since (the indexes
 * hold live rows only: schema/016_fts_live.sql), in one statement
 * per table, and indexes rows one by one again; rl_store_commit calls it
 * first, so no commit leaves rows unsearchable. A rollback also ends the
 * deferral (the rows are gone). On the hub's store (no search index) both
 * do nothing. RL_OK or a store error.
 */
int rl_store_fts_defer(rl_store *s);
int rl_store_fts_catch_up(rl_store *s);

/*
 * The same for change capture: while deferred, the capture triggers skip
 * the rows added since rl_store_capture_defer (and any later write to
 * them); rl_store_capture_catch_up records each new row's non-NULL fields
 * with one INSERT ... SELECT per table: for each row the changes its insert
 * trigger would have written (fields together, in column order, base
 * NULL, fresh stamps), each with the row's final value (as coalescing
 * would have left it), table by table with parents first. Rows that
 * existed before are captured as always. rl_store_commit calls it first:
 * no commit leaves a row uncaptured, and a rollback ends the deferral.
 * RL_OK or a store error.
 */
int rl_store_capture_defer(rl_store *s);
int rl_store_capture_catch_up(rl_store *s);

/*
 * Wall clock used by the store: the system clock, or the fixed instant in
 * the environment variable RELASI_NOW (ISO 8601, for tests and demos) —
 * even then the HLC stays monotonic.
 */
int64_t rl_store_now_ms(rl_store *s);
/* The user's UTC offset in minutes at now (from TZ / the system zone). */
int rl_store_tz_offset(rl_store *s);
/* The same zone's offset at the instant utc (Unix seconds): where summer
 * time is kept, July's is not November's. */
int rl_store_tz_offset_at(rl_store *s, int64_t utc);

rl_hlc *rl_store_hlc(rl_store *s);

/* A new record id stamped with the store's clock. */
int rl_store_new_id(rl_store *s, char out[RL_ID_BUFSZ]);

/*
 * For one long transaction that touches most of the store (a snapshot
 * load, a scan of every customer): the page cache widened to kib KiB, so
 * that SQLite does not spill dirty pages and read index pages again and
 * again. Returns the setting before, for rl_store_cache_restore. Neither
 * fails: a cache left as it was only costs time.
 */
long long rl_store_cache_widen(rl_store *s, long long kib);
void rl_store_cache_restore(rl_store *s, long long before);

#ifdef __cplusplus
}
#endif
#endif
