/*
 * checkpoint.h — relasi-hub serve's WAL checkpointer: one thread that
 * copies the write-ahead log back into hub.db, so that no device's push
 * does it.
 *
 * SQLite checkpoints in the connection that commits once the WAL holds
 * 1000 pages: the push whose commit crossed the line copied every page
 * back (with fsyncs) before its answer, under the hub's write lock, so a
 * tenth of a push's time and every other writer waited (bench_sync.py's
 * merge profile). The serve loop starts one checkpointer and hands it each
 * session's connection; a commit that leaves HUB_CHECKPOINT_PAGES or more
 * in the WAL only wakes the thread, which runs a PASSIVE checkpoint on its
 * own connection (never blocking a reader or the writer; what readers still
 * need stays for the next round). serve hands it the audit writer's
 * connection too. Connections it is not handed (admin commands, backups,
 * the image builder) keep SQLite's own checkpoints.
 *
 * A quiet hub: commits below the threshold would wait in the WAL until
 * the next busy spell, and a WAL that grew while readers held it (a long
 * pull, a backup) would keep its size for as long as serve runs, since
 * the checkpointer's own connection keeps it open. So once no connection
 * it watches has committed for HUB_CHECKPOINT_IDLE_MS, the thread runs a
 * TRUNCATE checkpoint without waiting for anyone (busy timeout 0): it folds every
 * frame into hub.db and hands the WAL's disk space back. When a reader or
 * a writer is in the way it copies what it can, as PASSIVE does, and
 * tries again after the next quiet spell, until one succeeds.
 *
 * Durability is unchanged: a commit is durable in the WAL
 * (synchronous=FULL) whether or not it was copied back, and a crash leaves
 * a WAL that the next opening replays.
 */
#ifndef RELASI_HUB_CHECKPOINT_H
#define RELASI_HUB_CHECKPOINT_H

#include <sqlite3.h>

#define HUB_CHECKPOINT_PAGES 1000   /* SQLite's own default threshold */
#define HUB_CHECKPOINT_IDLE_MS 2000 /* quiet this long: fold and truncate */

typedef struct hub_checkpointer hub_checkpointer;

/* Start the thread, with its own connection to DIR's hub store. RL_OK and
 * *out, or an error (the caller serves on with SQLite's checkpoints). */
int hub_checkpointer_start(hub_checkpointer **out, const char *dir);

/* Hand the checkpointer a session's connection: its commits wake the
 * thread instead of checkpointing. cp may be NULL (nothing changes). The
 * connection must not outlive hub_checkpointer_stop. */
void hub_checkpointer_watch(hub_checkpointer *cp, sqlite3 *db);

/* Stop the thread (after a last checkpoint) and free cp; NULL is fine. */
void hub_checkpointer_stop(hub_checkpointer *cp);

#endif
