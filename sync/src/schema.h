/*
 * schema.h — private: the migrations embedded from the schema/ files by
 * cmake/embed_schema.cmake, the change-capture installer, and the one
 * outbox question whose shape depends on the schema's partial indexes
 * (RL_OUTBOX_WAITING).
 */
#ifndef RELASI_SCHEMA_H
#define RELASI_SCHEMA_H

#include <sqlite3.h>

struct rl_migration {
	int version;        /* NNN of schema/NNN_name.sql; 1, 2, 3... */
	const char *name;
	const char *sql;
};

/* SQL: does the device have its own change of field ?3 of record ?2 of
 * table ?1 waiting (pending, or sent and not yet answered)? One EXISTS per
 * state, so that each is found through its partial index
 * (rl_outbox_pending, rl_outbox_sent: schema/022_outbox_sent.sql); one
 * "state IN (...)" read the whole outbox for every pulled change. */
#define RL_OUTBOX_WAITING \
	"(EXISTS (SELECT 1 FROM rl_outbox WHERE tbl = ?1 AND row_id = ?2 AND field = ?3 " \
	"AND state = 'pending') OR EXISTS (SELECT 1 FROM rl_outbox WHERE tbl = ?1 " \
	"AND row_id = ?2 AND field = ?3 AND state = 'sent'))"

extern const struct rl_migration rl_migrations[];
extern const int rl_migrations_count;

/* The hub's own tables (schema/hub/), applied after rl_migrations when the
 * store is opened with RL_STORE_HUB; their version is rl_meta 'hub_schema'. */
extern const struct rl_migration rl_hub_migrations[];
extern const int rl_hub_migrations_count;

/* (Re)create the capture triggers of every synced table from its current
 * columns (capture.c). Called inside the migration transaction. */
int rl_capture_install(sqlite3 *db);

/* Only the guards (no row of a synced table is deleted, no id changes),
 * for the hub's store: the hub never captures (RL_STORE_HUB), and the
 * capture triggers were 57% of its schema's text, parsed again by every
 * connection (a session, an admin command), and a trigger every write of
 * a synced table ran only to find capture off (hub schema 17). */
int rl_capture_install_guards(sqlite3 *db);

/* Drop them (capture.c): a migration that runs ALTER TABLE on a store
 * that has them first drops them and then installs them again, since
 * SQLite parses the whole schema again after every ALTER TABLE and the
 * triggers are most of it (store.c migrate_hub). */
int rl_capture_remove(sqlite3 *db);

/* The synced tables, NULL-terminated; a trigger names its table by its
 * index here (rl_capture_row). */
extern const char *const rl_synced_tables[];
#define RL_SYNCED_TABLES_MAX 32

/* The statement that captures, in one go, the rows of synced table
 * rl_synced_tables[ti] whose rowid is above ?1, as its insert trigger
 * would have (for rl_store_capture_catch_up). *out is sqlite3_malloc'd. */
int rl_capture_catch_up_sql(sqlite3 *db, int ti, char **out);

#endif
