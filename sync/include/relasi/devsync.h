/*
 * relasi/devsync.h — the device's side of a sync session over any rl_conn
 * (TLS in production, an in-memory pipe in tests): HELLO, push the outbox
 * in batches, pull everything past the cursor and apply it, BYE.
 *
 * Guarantees (sync/PROTOCOL.md): a batch is numbered and frozen in the store
 * before it is sent, so after a cut or a crash the next session resends the
 * very same batch and the hub answers it from its record; acknowledged
 * changes leave the outbox and record their hub version as the field's base;
 * refused ones stay, state 'refused', with the hub's reason. Pulled changes
 * are applied without being captured; a field with a local edit that is not
 * yet pushed keeps the local value (the hub will merge it).
 */
#ifndef RELASI_DEVSYNC_H
#define RELASI_DEVSYNC_H

#include <jansson.h>

#include "relasi/conn.h"
#include "relasi/store.h"

#ifdef __cplusplus
extern "C" {
#endif

struct rl_sync_stats {
	long batches, pushed, applied, same, merged, conflicts, refused, pulled;
	long restamped;     /* pending changes re-stamped (their clock had been ahead) */
	long long cursor;
	/* The hub was restored from a backup older than this device's last
	 * sync: restored_at is the last change it kept, resent how many of the
	 * changes it lost this device queued again (sync/src/hubepoch.c). */
	int restored;
	long long restored_at;
	long resent;
	/* Records loaded from a snapshot (0: the log was pulled page by page);
	 * their fields count in pulled. */
	long snapshot_rows;
	/* The snapshot came as the hub's image (sync/src/image.h); or the
	 * image the hub sent was refused for this reason and the snapshot was
	 * then loaded record by record. */
	int snapshot_image;
	char image_refused[200];
	long long snapshot_seq, snapshot_hlc;   /* as the hub announced them */
};

/* Called with a short status ("pushing 1200/5000") on a terminal; may be NULL. */
typedef void (*rl_sync_progress)(void *ctx, const char *status);

/*
 * Run one session on an open connection. Errors: RL_EAUTH / RL_EINVALID
 * (the hub refused us: revoked, clock — the message quotes the hub),
 * RL_EPROTO (the hub broke the protocol), connection errors, RL_ESTORE.
 * Everything committed before an error stays committed; the next session
 * carries on.
 */
int rl_sync_session(rl_store *s, rl_conn *c, struct rl_sync_stats *stats,
		    rl_sync_progress progress, void *progress_ctx);

/* rl_sync_session with flags: RL_SYNC_NO_SNAPSHOT pulls the log page by
 * page even on a first sync, when the hub serves snapshots (by default a
 * device that has never pulled and has nothing waiting loads a snapshot:
 * sync/PROTOCOL.md, "Snapshot"). */
#define RL_SYNC_NO_SNAPSHOT 1u
/* RL_SYNC_NO_IMAGE: a snapshot record by record, never the hub's image. */
#define RL_SYNC_NO_IMAGE 2u
int rl_sync_session_ex(rl_store *s, rl_conn *c, unsigned flags, struct rl_sync_stats *stats,
		       rl_sync_progress progress, void *progress_ctx);

/*
 * Offline bundles (client/cmd_bundle.c): the steps of a session, by file,
 * through the very same code.
 *
 * rl_sync_export_push: the PUSH message a session would send next — the
 * batch sent and not yet answered, else a newly frozen one — with the
 * cursor; batch 0 and no changes when nothing is pending. *push is new.
 *
 * rl_sync_record_pushed: record the hub's PUSHED answer as a session does
 * (acknowledged changes leave the outbox, refused ones stay 'refused',
 * the cursor may step back). *recorded = 0 when no change of that batch
 * waits for an answer any more (the answer was recorded before): nothing
 * changes.
 *
 * rl_sync_apply_page: apply one PAGE as a session does; its changes must be
 * past *cursor; the cursor only moves forward.
 *
 * rl_sync_check_reply: read a reply bundle's answer (NULL: none) and every
 * page with the session's readers, recording nothing: a reply is checked
 * whole before any of it is recorded, so that a malformed page cannot
 * leave the answer and the pages before it applied. RL_EPROTO naming the
 * member.
 */
int rl_sync_export_push(rl_store *s, json_t **push);
/* Before a bundle export (the network session does it when WELCOME says
 * "restamp"): if this device's stamps run ahead of its wall clock by more
 * than the hub takes (its clock was ahead and has been set right), restart
 * the clock and re-stamp the pending changes; *restamped says how many. */
int rl_sync_fix_clock(rl_store *s, long *restamped);
int rl_sync_record_pushed(rl_store *s, json_t *pushed, struct rl_sync_stats *stats,
			  int *recorded);
int rl_sync_apply_page(rl_store *s, json_t *page, long long *cursor, int *more, long *count);
int rl_sync_check_reply(json_t *pushed, json_t *const *pages, size_t npages);

/*
 * Called by rl_sync_session with the hub's WELCOME: compare the hub's
 * history (epoch, lineage) with the one this device last synced with and,
 * after a restore, queue again what the hub lost (hubepoch.c). RL_EPROTO,
 * nothing changed, when this device's history is unknown to the hub.
 */
int rl_sync_hub_epoch(rl_store *s, json_t *welcome, struct rl_sync_stats *stats);

/*
 * Drop the copies a recovery queued (rl_sync_hub_epoch) that the hub refused
 * and that are moot now: the device holds a version of their field newer
 * than the restore point, pulled from the hub. rl_sync_session calls it as
 * a session begins and again after its pull, so a copy leaves `relasi
 * status` in the sync that brings the field back; a reply bundle's import
 * calls it after its pages. Its own transaction;
 * nothing to do (no recovery pending) costs one read.
 */
int rl_sync_tidy_resent(rl_store *s);

/*
 * Is epoch a history of the hub this device synced with before it learnt of
 * a restore (one it recovered from; rl_meta 'hub_epochs_past')? A reply
 * bundle of such a history is older than the restore: nothing in it applies.
 */
int rl_sync_hub_epoch_past(rl_store *s, const char *epoch, int *past);

/*
 * What a hub says about itself and this device, in WELCOME or in a reply
 * bundle's manifest: its history (rl_sync_hub_epoch) and last_batch, the
 * highest batch number it recorded for this device (NULL: not said), after
 * which new batches are numbered (a store restored from an older copy
 * would otherwise reuse numbers). RL_EPROTO for a malformed last_batch.
 */
int rl_sync_hub_facts(rl_store *s, json_t *facts, json_t *last_batch,
		      struct rl_sync_stats *stats);

/*
 * The hub holds sent batch `batch` of this device with other changes (ERROR
 * batch on the network, "reused" in a reply bundle): its changes become
 * the next batch, *to (> every number the hub told), and every sent batch
 * after it follows, in order, in the same transaction. RL_ENOTFOUND when no
 * sent change carries that number (an old reply): nothing changed.
 */
int rl_sync_renumber_batch(rl_store *s, long long batch, long long *to);

/*
 * The snapshot alone, record by record, into a store that has never pulled:
 * SNAPSHOT on c with no HELLO before it, the load as a first sync does it
 * (stats: snapshot_rows, snapshot_seq, snapshot_hlc, pulled = the fields;
 * the store's cursor is then snapshot_seq). For the hub, which builds its
 * snapshot image this way, through this very code (hub/image.c).
 * RL_EINVALID when the store is not a new one.
 */
int rl_sync_snapshot_only(rl_store *s, rl_conn *c, struct rl_sync_stats *stats);

/*
 * Move the field versions a snapshot loaded (rl_base_snapshot, one row per
 * record; schema/014_base_snapshot.sql) into rl_base, one row per field,
 * keeping the larger version where both have one. For the rare paths that
 * rewrite or query bases one by one (a hub restore and its tidying after,
 * a second snapshot after a rewind), so they deal with rl_base alone; the
 * capture triggers read both tables. Inside the caller's transaction;
 * RL_OK or a store error.
 */
int rl_sync_bases_unfold(rl_store *s);

#ifdef __cplusplus
}
#endif
#endif
