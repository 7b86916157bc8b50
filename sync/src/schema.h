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
extern const int rl_migration_count;

/* (Re)create the capture triggers of every synced table from its current
 * columns (capture.c). Called inside the migration transaction. */
int rl_capture_install(sqlite3 *db);

/* The synced tables, NULL-terminated. */
extern const char *const rl_synced_tables[];

#endif
