/*
 * backup.h — hub backups and restores (backup.c, restore.c) and the identity
 * of the hub's history across a restore (epoch.c).
 *
 * A backup is one pax (restricted) tar archive, zstd-compressed (gzip where
 * libarchive lacks zstd), written 0600 through a temporary file and a
 * rename because it holds the hub's private keys. Members, in this order:
 *
 *   manifest.json   always first: what follows, with sizes and SHA-256
 *   hub.db          a consistent snapshot (VACUUM INTO), never a file copy
 *   hub.json, server-ca.crt, server-ca.key, device-ca.crt, device-ca.key,
 *   server.crt, server.key           (hub_backup_files; all required: a
 *                                     hub without one cannot serve or enrol,
 *                                     so neither a backup nor a restore goes
 *                                     on without it; *.key mode 0600)
 *   audit.git/...   the bare audit repository, if the hub has one
 *
 * manifest.json (format 1):
 *   {"format": 1, "hub": NAME, "created": UTC, "schema": {"store": N, "hub": N},
 *    "hub_epoch": HEX, "last_seq": SEQ, "audit_head": OID | null,
 *    "members": [{"path": P, "size": N, "sha256": HEX, "mode": "0600"}...]}
 * "members" lists every regular file of the archive but the manifest itself,
 * exactly once. The same manifest is written to DIR/last-backup.json after
 * a successful backup (the audit verifier reads its "audit_head").
 *
 * A restore trusts nothing in the archive: the limits below bound it, only
 * regular files and directories with relative, normalised paths under the
 * known top-level names are accepted, and every member is checked against
 * the manifest while it is written into a private directory beside DIR;
 * hub.db must then pass integrity_check and a schema check. Only a fully
 * verified hub is renamed to DIR; on any refusal the private directory is
 * removed and DIR is not created.
 */
#ifndef RELASI_HUB_BACKUP_H
#define RELASI_HUB_BACKUP_H

#include <jansson.h>
#include <time.h>

#include "relasi/store.h"

#define HUB_BACKUP_FORMAT    1

/* The hub directory's files a backup holds besides hub.db and audit.git
 * (NULL-terminated): its configuration, both CAs and the server's key
 * and certificate. */
extern const char *const hub_backup_files[];
#define HUB_MANIFEST         "manifest.json"
#define HUB_LAST_BACKUP      "last-backup.json"
#define HUB_AUDIT_DIR        "audit.git"

/* Limits on what a restore reads (an archive is untrusted input). */
/* Members: a bare git repository with loose objects at 100k+ records holds
 * hundreds of thousands of files; 1M keeps a hostile header flood bounded. */
#define HUB_RESTORE_MAX_MEMBERS   1000000L
/* One member (hub.db is the big one): 64 GiB, far above a field force's
 * store, far below what would fill a disk by surprise. */
#define HUB_RESTORE_MAX_MEMBER    (64LL << 30)
/* All members together. */
#define HUB_RESTORE_MAX_TOTAL     (256LL << 30)
/* The manifest: ~150 bytes per member at the member limit. */
#define HUB_RESTORE_MAX_MANIFEST  (256L << 20)
/* A member path: git's longest are ~60 bytes; names are never this long. */
#define HUB_RESTORE_MAX_PATH      1024
/* Directory depth of a member path. */
#define HUB_RESTORE_MAX_DEPTH     16

/* Progress lines ("hub.db: snapshot taken"), on a terminal; may be NULL. */
typedef void (*hub_backup_progress)(void *ctx, const char *status);

/*
 * Back up the hub in dir to file (replaced atomically if it exists).
 * *manifest (may be NULL) receives a new reference to the manifest.
 */
int hub_backup(const char *dir, const char *file, json_t **manifest,
	       hub_backup_progress progress, void *pctx);

/*
 * Restore the backup in file into dir, which must not exist or be an empty
 * directory. RL_EINVALID (the message names the member and the reason) for
 * a damaged or hostile archive; nothing is left behind on any error.
 * *manifest (may be NULL) receives the verified manifest.
 */
int hub_restore(const char *file, const char *dir, json_t **manifest,
		hub_backup_progress progress, void *pctx);

/* ---- the history's identity (epoch.c) ------------------------------------------- */

/*
 * Add "epoch" (this store's history) and "lineage" ([[EPOCH, LAST_SEQ]...]:
 * earlier histories and the last sequence number of each that this store
 * still holds) to a WELCOME object. Missing meta leaves the object as it is.
 */
int hub_epoch_welcome(rl_store *s, json_t *welcome);

/* The last sequence number of each earlier epoch (see epoch.c); a store
 * restored more often keeps the newest HUB_MAX_LINEAGE (devices from older
 * epochs are told their history is unknown). */
#define HUB_MAX_LINEAGE 64
struct hub_restore_points {
	long long seq[HUB_MAX_LINEAGE];
	size_t n;
};

int hub_epoch_restore_points(rl_store *s, struct hub_restore_points *rp);

/*
 * After a restore: a change whose base is a restore point was re-sent by a
 * device whose own base had been lost with the history after it (see
 * epoch.c). If the field has not changed since that point, rebase the change
 * on the field's actual version (or 0 for a field the hub does not have), so
 * it fast-forwards; otherwise leave it to the merge rule. *current: the
 * field's version when the change is such a re-send and the hub has the
 * field (the caller answers "same" when the value is already there), else 0.
 */
int hub_epoch_rebase(rl_store *s, const struct hub_restore_points *rp, const char *tbl,
		     const char *row, const char *field, long long *base, long long *current);

/*
 * On a freshly restored store: start a new epoch and append the previous one
 * with the log's last sequence number to the lineage; *last gets that seq.
 */
int hub_epoch_restored(rl_store *s, long long *last);

/* At `serve`'s start: note the log's end (rl_meta 'hub_run_start'), the
 * history a copy put back in place of this hub's directory ended at. */
int hub_epoch_note_start(rl_store *s);

/*
 * At a device's HELLO: `epoch`, `cursor`, `acked` and the witness (the
 * last change it pulled: seq `wseq`, stamp `whlc`) are what the device
 * says it holds (NULL / -1 / wseq 0: it did not say). A device of the
 * current epoch whose cursor is past the log's end, whose last answered
 * batch is past the last one recorded for it, or whose witness is not the
 * change logged under that number, has seen history this store lost (a copy
 * of the directory put back without `restore`): start a new epoch, the
 * lineage keeping the current one up to the log's end at the hub's start,
 * so that devices send again what was lost (epoch.c). *r: that change, or
 * -1 when nothing was started.
 */
int hub_epoch_check_device(rl_store *s, const char *device, const char *epoch,
			   long long cursor, long long acked, long long wseq, long long whlc,
			   long long *r);

/* ---- file helpers for backup.c and restore.c (fsutil.c) --------------------------- */

/* Remove path and, if it is a directory, everything under it, without
 * following symbolic links. Missing path: RL_OK. */
int hub_rmtree(const char *path);

/* fsync a file, or a directory (after a rename into it, so the new name
 * is durable). */
int hub_fsync_path(const char *path);

/* fsync every directory under path and path itself, each after what is
 * under it (a tree of new directories: their entries are durable only once
 * each directory is synced; files are synced by whoever wrote them). */
int hub_fsync_tree(const char *path);

/*
 * A private staging directory (0700) from tmpl ("...XXXXXX", filled in as
 * mkdtemp does), flocked through *lockfd: the lock says a live process works
 * in it. Remove the directory, then close *lockfd.
 */
int hub_stage_create(char *tmpl, int *lockfd);

/*
 * Remove the staging directories named from tmpl (as hub_stage_create
 * would name them, tmpl's own XXXXXX not filled in) whose lock can be taken:
 * left by a backup or restore (what) that was killed. Each removal is said
 * on stderr; one that fails is a warning, never an error.
 */
void hub_stage_sweep(const char *tmpl, const char *what);

/* Test hook: RELASI_HUB_FAULT=KEY:MS (key "backup-pause", "restore-pause")
 * holds the process there for MS milliseconds. */
void hub_fault_pause(const char *key);

/* The directory part of path ("." if none) into buf. */
int hub_dirname(char *buf, size_t len, const char *path);

/* Write len bytes to path through a temporary file beside it and a rename,
 * with mode. */
int hub_write_atomic(const char *path, const char *data, size_t len, int mode);

/* ---- archives (backup.c; also the snapshot image, image.c) ---------------------- */

struct archive;


/* One member, mode and mtime when, from a buffer (data, len) or from the
 * file at path (data NULL). */
int hub_archive_write_member(struct archive *a, const char *name, int mode, time_t when,
			     const char *data, size_t len, const char *path);

/* 32-byte SHA-256 as 64 lower-case hex digits and a NUL. */
void hub_hex(const unsigned char *in, size_t n, char *out);

#endif
