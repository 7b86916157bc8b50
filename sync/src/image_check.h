/*
 * image_check.h — the checks a snapshot image passes before a device takes
 * it (image_check.c). Internal to relasi_sync, for image.c.
 */
#ifndef RELASI_SYNC_IMAGE_CHECK_H
#define RELASI_SYNC_IMAGE_CHECK_H
#include <sqlite3.h>
#include "relasi/store.h"

/* The file at path is a SQLite file in the rollback journal's format
 * (opening one marked for WAL would make SQLite create -wal and -shm files
 * beside it). RL_OK, RL_EPROTO or RL_EIO. */
int rl_image_check_file(const char *path);

/* A connection to the image set up for checking: defensive, its schema
 * untrusted, no triggers, read through a memory map. */
void rl_image_configure(sqlite3 *img);

/*
 * img (path, opened with rl_image_configure) holds exactly the schema of the
 * store s and is sound: structure, every index against its table, the search
 * and nearby indexes, and every row by the model's rules with field versions
 * in 1..seq. Reads img and s, writes nothing (FTS5's check is an INSERT that
 * changes nothing). RL_OK, or RL_EPROTO naming the first flaw found
 * (RL_ENOMEM, RL_ESTORE for this store's own errors).
 */
int rl_image_check(rl_store *s, sqlite3 *img, const char *path, long long seq);
#endif
