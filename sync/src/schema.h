/*
 * schema.h — private: the migrations embedded from the schema/ files by
 * cmake/embed_schema.cmake, and the change-capture installer.
 */
#ifndef RELASI_SCHEMA_H
#define RELASI_SCHEMA_H

#include <sqlite3.h>

struct rl_migration {
	int version;        /* NNN of schema/NNN_name.sql; 1, 2, 3... */
	const char *name;
	const char *sql;
};

extern const struct rl_migration rl_migrations[];
extern const int rl_migrations_count;

/* The hub's own tables (schema/hub/), applied after rl_migrations when the
 * store is opened with RL_STORE_HUB; their version is rl_meta 'hub_schema'. */
extern const struct rl_migration rl_hub_migrations[];
extern const int rl_hub_migrations_count;

/* (Re)create the capture triggers of every synced table from its current
 * columns (capture.c). Called inside the migration transaction. */
int rl_capture_install(sqlite3 *db);

/* The synced tables, NULL-terminated. */
extern const char *const rl_synced_tables[];

#endif
