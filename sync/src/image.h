/*
 * image.h — a new device's store from the hub's snapshot image (SNAP format
 * 2; sync/PROTOCOL.md, "Snapshot image"). Internal to relasi_sync: called by
 * devsync.c's snapshot_load only.
 *
 * The image is a device store the hub built once, by loading its own
 * record-by-record snapshot through this library (hub/image.c): every synced
 * table with its indexes, search and geo indexes and each record's field
 * versions. The device receives it as a zstd tar of one member, relasi.db,
 * checks it, puts its own local tables (rl_meta, the outbox...) into it and
 * copies it page by page over its store with SQLite's backup API: the work a
 * load does row by row is done once on the hub, not on every new device.
 */
#ifndef RELASI_SYNC_IMAGE_H
#define RELASI_SYNC_IMAGE_H

#include <jansson.h>

#include "relasi/conn.h"
#include "relasi/devsync.h"
#include "relasi/store.h"

/* What SNAP announces for an image. */
struct rl_image_snap {
	long long seq, hlc, rows, fields;
	long long bytes;     /* the compressed tar: the IMAGE frames' payloads in all */
	long long size;      /* relasi.db in it */
};

/* Read and bound SNAP's figures for format 2. RL_EPROTO / RL_ETOOBIG. */
int rl_image_parse_snap(json_t *snap, struct rl_image_snap *a);

/*
 * Receive the image announced by a from c and make it the store s.
 *
 * Called inside s's write transaction, opened before SNAPSHOT was sent (the
 * device was eligible under that lock), with s under the rollback journal
 * (rl_store_journal_bulk). *tx_ended = 1 once that transaction has ended
 * (this function commits it just before the copy, keeping the lock): the
 * caller then neither commits nor rolls back. On success s holds the image
 * with this device's local tables and cursor a->seq. On an error with
 * *tx_ended = 0 the caller rolls back: s is as it was; with *tx_ended = 1
 * the copy failed and SQLite rolled it back: s is as it was too.
 * *refused = 1 (with *tx_ended = 0) when the image was read whole and then
 * failed a check: the connection is in step, so the caller may ask for
 * format 1 on it; stats->image_refused says why.
 *
 * The image file is written beside the store (PATH.image) and removed at the
 * end, whatever happened.
 */
int rl_image_install(rl_store *s, rl_conn *c, const struct rl_image_snap *a, int *tx_ended,
		     int *refused, struct rl_sync_stats *stats, rl_sync_progress progress,
		     void *pctx);

#endif
