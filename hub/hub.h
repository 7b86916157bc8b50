/*
 * hub.h — the hub's core, shared by the server loop (server.c), the admin
 * commands (admin.c) and, later, offline bundles: opening the hub's store,
 * applying a device's batch with the merge rules, serving pulls, enrolment,
 * users and tokens, conflicts and duplicate candidates.
 *
 * All functions take an rl_store opened with RL_STORE_HUB (one per thread:
 * SQLite connections are not shared between threads). Writes run in their
 * own BEGIN IMMEDIATE transaction; the store's synchronous=FULL makes every
 * commit durable before the caller acknowledges it.
 */
#ifndef RELASI_HUB_H
#define RELASI_HUB_H

#include <jansson.h>
#include <pthread.h>
#include <time.h>

#include "relasi/conn.h"
#include "relasi/id.h"
#include "relasi/merge.h"
#include "relasi/push.h"
#include "relasi/store.h"

/* The instant ms from now on clock, for pthread_cond_timedwait (the
 * clock the condition variable was made with). */
static inline struct timespec hub_clock_in(clockid_t clock, long long ms)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* A condition variable whose timed waits run on CLOCK_MONOTONIC (with
 * hub_clock_in(CLOCK_MONOTONIC, ...)): a wall clock set back must not
 * stretch a wait. 0, or an errno value. */
static inline int hub_cond_init_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	int rc;

	if ((rc = pthread_condattr_init(&attr)) != 0)
		return rc;
	if ((rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)) == 0)
		rc = pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
	return rc;
}

/* The authenticated peer of a session, from its certificate. */
struct hub_peer {
	char device[RL_ID_BUFSZ];
	char user[RL_ID_BUFSZ];
	char role[16];            /* rep, manager, marketing, admin */
	/* The certificate's SHA-256, set by hub_device_lookup: a push looks
	 * the device up again inside its write transaction by it. "" for a
	 * peer made by hand (unit tests, fuzzing): not looked up. */
	char fingerprint[RL_FINGERPRINT_BUFSZ];
	char last_seen[21];       /* hub_devices.last_seen as looked up; "" none */
	long long cursor;         /* hub_devices.cursor as looked up */
};

/* Figures of one session, for the hub's one-line log. */
struct hub_stats {
	long pushed, applied, same, merged, conflicts, refused, pulled;
};

/* A stored value as JSON (null, integer, real or string): a new reference,
 * NULL only when out of memory. */
json_t *hub_value_json(const struct rl_value *v);

/* Files of a hub directory. */
#define HUB_DB          "hub.db"
#define HUB_CONF        "hub.json"
#define HUB_SERVER_CA   "server-ca.crt"
#define HUB_SERVER_CAKEY "server-ca.key"
#define HUB_DEVICE_CA   "device-ca.crt"
#define HUB_DEVICE_CAKEY "device-ca.key"
#define HUB_SERVER_CRT  "server.crt"
#define HUB_SERVER_KEY  "server.key"
#define HUB_AUDIT_DIR   "audit.git"        /* the audit history (audit.c) */
#define HUB_LAST_BACKUP "last-backup.json" /* written by backup: {"audit_head": OID, ...} */

/* dir/name into buf (RL_EINVALID if it does not fit). */
int hub_path(char *buf, size_t len, const char *dir, const char *name);

/* DIR/hub.json, parsed, into *conf (the caller's: json_decref). RL_EIO
 * naming the file when it cannot be read, is not JSON or not an object;
 * *conf is then NULL. */
int hub_conf_load(const char *dir, json_t **conf);

/* hub.json's "name", or dflt when it has none (borrowed from conf). */
const char *hub_conf_name(const json_t *conf, const char *dflt);

/* What the hub tells a device of itself, into obj: its history (epoch.c:
 * "epoch", "lineage"; how a device notices a restore) and, under
 * batch_key, the highest batch number it recorded for the device (0:
 * none), after which the device numbers new batches (a store restored from
 * an older copy would reuse numbers). WELCOME says "batch", a reply
 * bundle's manifest "last_batch". */
int hub_tell_device(rl_store *s, const char *device, json_t *obj, const char *batch_key);

/* Open DIR/hub.db (must exist unless create). */
int hub_store_open(rl_store **out, const char *dir, int create);

/* The number of the hub log's last change into *seq (0: an empty log), as
 * the caller's transaction, if any, sees it; RL_ESTORE naming the read. */
int hub_log_last(rl_store *s, long long *seq);

/* Device lookup for the TLS peer check: RL_OK and *peer (fingerprint
 * included) when the device with certificate CN cn and this fingerprint is
 * enrolled and not revoked and its user exists; RL_EAUTH with the reason
 * otherwise. */
int hub_device_lookup(rl_store *s, const char *cn, const char *fingerprint,
		      struct hub_peer *peer);

/* A device's last contact (hub_devices.last_seen, shown by `device list`
 * and counted by `status`) and the cursor it holds (hub_devices.cursor, the
 * last change it has applied, as its HELLO and its BYE say: how far behind
 * `device list` shows it, and whether it has received a resolution,
 * `conflicts show`). The contact alone is kept to HUB_SEEN_EVERY_S, so
 * that a device syncing every minute and pulling nothing costs a write now
 * and then, not one per session; a cursor that moved is written at once
 * (with the contact).
 * hub_device_seen_due: is peer's contact, as hub_device_lookup read it,
 * older (or none), or has cursor (-1: not known) moved from the one read?
 * hub_device_seen: record now and cursor (-1: keep the one stored) for
 * peer, under the hub's write lock, unless another session has just done
 * it or the device has been revoked since its lookup (a BYE is not looked
 * up again); peer's copies follow. RL_EINVALID for a cursor past the hub's log
 * (nothing written). Not an audited event: the history keeps what was
 * decided, not who connected. */
#define HUB_SEEN_EVERY_S 600
int hub_device_seen_due(rl_store *s, const struct hub_peer *peer, long long cursor);
int hub_device_seen(rl_store *s, struct hub_peer *peer, long long cursor);

/* PUSH -> PUSHED (see sync/PROTOCOL.md), for a PUSH decoded by jansson
 * (offline bundles, tests). *resp is a new reference. When resp_text is
 * not NULL, *resp_text is the same answer as the compact JSON text the hub
 * recorded for the batch (malloc'd, the caller frees it).
 * RL_EPROTO for a malformed batch; RL_EREUSED for a batch number this
 * device used before for other changes (nothing applied); refused changes
 * are results, not errors. On an error *resp and *resp_text are NULL. */
int hub_push(rl_store *s, const struct hub_peer *peer, json_t *push, json_t **resp,
	     char **resp_text, struct hub_stats *stats);

/* The same for a PUSH read by rl_push_parse (relasi/push.h): how `serve`
 * takes batches, without a JSON tree. push's strings stay the caller's.
 * *resp_text: the answer (malloc'd), NULL on an error. */
int hub_push_read(rl_store *s, const struct hub_peer *peer, const struct rl_push *push,
		  char **resp_text, struct hub_stats *stats);

/* PULL -> PAGE, as the page's JSON text (*text, malloc'd), written
 * without a tree (relasi/jsonw.h): how `serve` answers. RL_EPROTO for a
 * malformed request; RL_EINVALID naming the log entry whose text is not
 * UTF-8. */
int hub_pull_text(rl_store *s, const struct hub_peer *peer, json_t *pull, char **text,
		  struct hub_stats *stats);

/* PULL -> PAGE, decoded (offline bundles, tests): hub_pull_text's page. */
int hub_pull(rl_store *s, const struct hub_peer *peer, json_t *pull, json_t **page,
	     struct hub_stats *stats);

/* Sends one frame of a multi-frame answer (type, payload not consumed). */
typedef int (*hub_send_fn)(void *ctx, int type, json_t *msg);

/* SNAPSHOT -> SNAP, then CHUNK frames until one says "last" (snapshot.c,
 * sync/PROTOCOL.md "Snapshot"): every synced row as of one hub seq, read in
 * one read transaction, each frame handed to send. A hub too big for a
 * snapshot answers SNAP with "skip" and nothing else. Errors: RL_EPROTO for
 * a malformed request, the store's, and send's own. */
int hub_snapshot(rl_store *s, const struct hub_peer *peer, json_t *req, hub_send_fn send,
		 void *ctx, struct hub_stats *stats);

/* ---- snapshot images (image.c; sync/PROTOCOL.md "Snapshot image") ---- */

#define HUB_IMAGE_DIR "snapshot"   /* DIR/snapshot: images, rebuilt, not backed up */
/* hub.json snapshot_image_changes, by default: below this many changes in
 * the log a snapshot record by record takes a device a second or two, and
 * an image would only be one more thing to keep. */
#define HUB_IMAGE_MIN_CHANGES 100000

/* What DIR/snapshot/image.json says of the image served now. */
struct hub_image {
	char file[96];                 /* its file in DIR/snapshot */
	long long seq, hlc, rows, fields;
	long long bytes, size;         /* the zstd tar; relasi.db in it */
	int schema;                    /* the device schema version it holds */
	char epoch[80];                /* the hub's history it is of ("": never restored) */
	long long built_ms;            /* how long the build took */
};

/* Build an image of the hub now and make it the one served (image.json
 * written last); earlier images are removed. *stop (may be NULL) turns
 * non-zero to interrupt: nothing changes then. out may be NULL. Errors:
 * the store's, RL_EIO. */
int hub_image_build(const char *dir, const int *stop, struct hub_image *out);

/* The image served now: *have = 0 when there is none. RL_EIO / RL_EINVALID
 * for an unreadable image.json. */
int hub_image_read(const char *dir, struct hub_image *img, int *have);

/* Whether serve should build one now: the log holds at least min_changes
 * changes (<= 0: never) and there is no image, or it is of another
 * history or schema, or a hundredth of its fields behind the log. */
int hub_image_due(rl_store *s, const char *dir, long min_changes, int *due);

/* SNAPSHOT: when the device asks for format 2 with the schema of this
 * hub's image and the image is current (its history, not too far behind
 * the log), send SNAP format 2 and the image in IMAGE frames; *served = 1.
 * Otherwise send nothing, *served = 0: hub_snapshot answers. cut_after > 0
 * (fault injection) sends 16 KiB frames and cuts the connection after that
 * many. */
int hub_image_serve(rl_store *s, const char *dir, json_t *req, rl_conn *c, int timeout_ms,
		    long cut_after, struct hub_stats *stats, int *served);

/* ENROLL -> ENROLLED: checks the one-time token, signs the CSR with the
 * device CA of dir, records the device. RL_EAUTH for a bad, used or expired
 * token (the message says which). */
int hub_enroll(rl_store *s, const char *dir, json_t *req, json_t **resp);

/* Admin: create a user (a synced users row) and its first enrolment token
 * (as hub_token_create, valid ttl seconds), in one transaction and one
 * audit commit: either both are stored or neither. team may be NULL (no
 * team). The user's id goes to id; *token is malloc'd (the caller frees
 * it), NULL on failure. RL_EINVALID for a bad field or a login that
 * exists; hub.json or the server CA unreadable: nothing is written. */
int hub_user_add(rl_store *s, const char *dir, const char *login, const char *name,
		 const char *role, const char *team, long ttl, char id[RL_ID_BUFSZ], char **token);

/* Admin: change user login's role, name or team (NULL: unchanged; an
 * empty team clears it), each field that differs one change every device
 * pulls, all in one transaction and one audit commit. *changed: a JSON
 * array of {field, old, new}, empty when nothing differed (nothing was
 * written). RL_ENOTFOUND for no such live user, RL_EINVALID for a value the
 * model refuses (as user add). */
int hub_user_edit(rl_store *s, const char *login, const char *role, const char *name,
		  const char *team, json_t **changed);

/* Admin: remove user login (someone who left), in one transaction and one
 * audit commit: revoke their devices, cancel their open tokens, tombstone
 * the user (users.deleted = 1, synced). Their records keep their owner.
 * *report: {login, user, removed, devices, tokens}; removed is false for a
 * user removed before (nothing written). RL_ENOTFOUND for no such login. */
int hub_user_remove(rl_store *s, const char *login, json_t **report);

/* Admin: cancel an unused enrolment token by id prefix (4+ hex digits):
 * enrolment with it is refused from then on. *report: {token, login,
 * cancelled, state}: cancelled false (nothing written) for a token
 * cancelled or expired before. RL_EINVALID for a used token (revoke its
 * device), RL_ENOTFOUND, RL_EAMBIGUOUS. */
int hub_token_cancel(rl_store *s, const char *prefix, json_t **report);

/* Admin: a one-time enrolment token for user login, valid ttl seconds.
 * *token is malloc'd: "rl1." + base64url(JSON{a: address, n: server name,
 * f: CA fingerprint, c: CA certificate (DER, base64), i: token id, s: secret}). */
int hub_token_create(rl_store *s, const char *dir, const char *login, long ttl, char **token);

/* Admin: revoke a device (by id prefix). */
int hub_device_revoke(rl_store *s, const char *device_ref, char id[RL_ID_BUFSZ]);

/* Admin: resolve conflict id: mode "keep" (the hub's value before the
 * conflict), "take" (the incoming value) or "value" (the given text, parsed
 * like a typed value). The decision is a normal change with its own seq.
 * A conflict of a pair of fields (docs/sync.md, "Fields that go together")
 * with its other field's conflict still open: --keep and --take decide
 * that one too, the same way, in the same transaction (*partner: its id,
 * else 0); a value decides only this one. RL_EINVALID, writing nothing,
 * when the field (or the pair's other field) has changed since the
 * conflict (its version is not the one the conflict left), unless force. */
int hub_conflict_resolve(rl_store *s, long long id, const char *mode, const char *value,
			 int force, long long *seq, long long *partner);

/* A field's hub version (the seq that set it), 0 when never set (dupes.c). */
int hub_field_version(rl_store *s, const char *tbl, const char *row, const char *field,
		      long long *version);

/* Write one field as the hub itself (admin actions, resolutions):
 * updates the table, logs it with the next seq. */
int hub_write_field(rl_store *s, const char *tbl, const char *row, const char *field,
		    const struct rl_value *v, const char *kind, long long *seq);

/*
 * Log an event of the hub's own tables (device enrolment and revocation,
 * enrolment tokens: hub_devices, hub_tokens), so that it reaches the audit
 * history as the caller's hub_audit_mark unit. One hub_log entry, kind
 * 'admin', with no hub_fields version: these tables are not synced, and
 * PULL leaves these entries out (HUB_EVENT_TABLES). value NULL: SQL NULL.
 */
#define HUB_EVENT_TABLES "('hub_devices', 'hub_tokens')"
int hub_log_event(rl_store *s, const char *tbl, const char *row, const char *field,
		  const char *value, const char *device, const char *user);

/* What one bundle import did, for the admin's one-line summary. */
struct hub_bundle_result {
	char device[RL_ID_BUFSZ];
	char user[RL_ID_BUFSZ];
	long long batch;          /* 0: the device had nothing pending */
	long long from, cursor;   /* the reply's pages run from..cursor */
	long pages;
	int more;                 /* changes left for the next bundle */
	int replayed;             /* the batch had been applied before: its stored answer */
	int reused;               /* its number was used before for other changes: not
				   * applied; the reply tells the device to renumber it */
	int stale;                /* made before the device heard of a restore of this
				   * hub: not applied; the reply's epoch and lineage
				   * make the device rebase it */
	struct hub_stats st;
};

/*
 * Offline bundles (bundle.c): verify the device bundle at in_path (chains
 * to DIR's device CA, device enrolled with that certificate and not
 * revoked, signature over everything, the payload is the signer's own),
 * apply its batch with hub_push, and write to reply_path the PUSHED answer
 * and the pages hub_pull gives from the device's cursor, signed with the
 * server key. Nothing is written to the store or reply_path when the
 * bundle is refused. RL_EAUTH / RL_EINVALID / RL_ETOOBIG name the cause.
 */
int hub_bundle_import(const char *dir, const char *in_path, const char *reply_path,
		      struct hub_bundle_result *res);

/* Serve devices on LISTEN_SPEC ("ADDR:PORT", "[v6]:PORT") until SIGINT or
 * SIGTERM, then finish the sessions in progress. NAME is the hub's name,
 * told to devices in WELCOME. TIMEOUT_S: the longest wait for a frame from
 * an authenticated device (0: RL_READ_TIMEOUT_MS); the handshake and the
 * pre-authentication phase get the smaller of it and RL_PREAUTH_TIMEOUT_MS.
 * PACK_LOOSE / PACK_PACKS: when the idle audit writer packs (audit_pack.h;
 * 0 = its defaults; PACK_LOOSE < 0: never on its own). IMAGE_MIN: build
 * snapshot images when the hub is quiet once the log holds this many
 * changes (<= 0: never; image.c). RL_OK after a clean stop. (server.c) */
int hub_serve(const char *dir, const char *listen_spec, const char *name, int timeout_s,
	      long pack_loose, int pack_packs, long image_min);

/* ---- duplicate customers (dupes.c) ------------------------------------------------- */

/* Look for duplicates of one customer or contact with the sync's rules (the
 * same e-mail, phone, or normalised name + city), record its match keys and
 * any new candidate (one per pair; a stale one that matches again is opened
 * again), and close as 'stale' its open candidates that no longer match.
 * *found (may be NULL) += new or reopened candidates. Inside the caller's
 * transaction. (hubstore.c) */
int hub_duplicates_check(rl_store *s, const char *tbl, const char *row, long *found);

/* Close as 'stale' every open candidate of tbl whose two records no longer
 * share a match key (hub_duplicates_check does it for one record).
 * (hubstore.c) */
int hub_duplicates_close_stale(rl_store *s, const char *tbl);

/* Check every live customer and contact as a sync would, in one
 * transaction: *rows checked, *found new candidates (none twice). */
int hub_duplicates_scan(rl_store *s, long *rows, long *found);

/* --prefer FIELD=survivor|loser */
struct hub_prefer {
	const char *field;
	int loser;               /* 1: the loser's value, 0: the survivor's */
};

/*
 * Merge record loser of tbl (a mergeable table: relasi/model.h) into
 * survivor, in one transaction logged as one audit commit (kind "merge"):
 * the survivor takes the chosen fields (prefs, else its own value, else the
 * loser's), every reference to the loser in any table of the model moves to
 * the survivor, the loser becomes a redirect (merged_into = survivor,
 * deleted = 1), the candidate is marked merged. dry_run: the same, rolled
 * back. *report: {table, survivor, loser, dry_run, fields, moved, ...}.
 * RL_EINVALID (nothing changed) for a record merged into itself, a deleted
 * one, one that is already a redirect, or a bad preference.
 */
int hub_duplicates_merge(rl_store *s, const char *tbl, const char *survivor, const char *loser,
			 const struct hub_prefer *prefs, size_t nprefs, int dry_run,
			 json_t **report);

/*
 * Follow redirects: when row (of tbl) was merged away, row becomes the
 * record it lives on now (through later merges too) and *moved = 1. With
 * field and base: a base equal to the loser's version of field at the merge
 * becomes the survivor's version the merge left (the device had seen the
 * loser's last value); other bases stay (a concurrent edit).
 */
int hub_redirect(rl_store *s, const char *tbl, char row[RL_ID_BUFSZ], const char *field,
		 int64_t *base, int *moved);

/* ---- the audit history (audit.c) ----------------------------------------------------- */

/*
 * Marking a unit of work, inside the writer's own transaction:
 * hub_audit_begin before its first write gives the first hub_log seq it
 * will use; hub_audit_mark after its last write makes everything logged
 * since one commit of the history (nothing when nothing was logged). kind:
 * "batch", "resolve", "merge" (duplicate merges use this), "admin"; device
 * and user: whose work ("hub" and NULL for the hub's own); note: the
 * summary for the commit message instead of the counts (may be NULL).
 */
int hub_audit_begin(rl_store *s, long long *first_seq);
int hub_audit_mark(rl_store *s, long long first_seq, const char *kind, const char *device,
		   const char *user, long long batch, long conflicts, const char *note);

typedef struct hub_audit hub_audit;

/* Open DIR/audit.git (create: make it when missing). RL_ENOTFOUND without. */
int hub_audit_open(hub_audit **out, const char *dir, int create);
void hub_audit_free(hub_audit *a);

/* serve: the lock its pushes hold while they write, taken by the writer
 * around its own (small) store writes. */
void hub_audit_set_store_lock(hub_audit *a, pthread_mutex_t *lock);

/* Write the commits for everything hub_log holds beyond the history (the
 * baseline first on a new repository). Takes DIR/audit.lock. RL_ESTORE when
 * the repository no longer continues the head the store recorded (nothing
 * is written then). *written (may be NULL): commits written. */
int hub_audit_catch_up(hub_audit *a, rl_store *s, long *written);

/* Hold DIR/audit.lock, the writers' lock, without a repository: a backup
 * copies audit.git under it, since packing removes loose objects and
 * merged packs. *fd: release it with hub_audit_unlock_dir. */
int hub_audit_lock_dir(const char *dir, int *fd);
void hub_audit_unlock_dir(int fd);

/* Catch up, then pack every loose object and every pack of audit.git into
 * one (`relasi-hub audit pack`); *st as audit_pack.h says. */
struct hub_audit_pack_stats;
int hub_audit_pack(hub_audit *a, rl_store *s, struct hub_audit_pack_stats *st);

/* Pack past the limits (audit_pack.h), at most HUB_AUDIT_PACK_BATCH loose
 * objects a call: serve's writer calls it when idle, so that packing never
 * competes with a sync, and with busy = 1 after each round that wrote,
 * which only merges packs past four times their limit (the writer makes a
 * pack per publish, and a hub may never be idle). Limits <= 0: the
 * defaults; cancel (may be NULL), once non-zero, stops a pack in progress
 * (serve stopping). */
int hub_audit_maintain(hub_audit *a, int busy, struct hub_audit_pack_stats *st);
void hub_audit_set_pack_limits(hub_audit *a, long loose_max, int packs_max, const int *cancel);

/* Open (creating when asked), catch up, close: for admin commands. */
int hub_audit_sync(const char *dir, rl_store *s, int create);

/* The changes of one record, newest first, read from the history: a JSON
 * array of {at, who, author, device, field, old, new, commit, summary}
 * (old/new null when absent). field NULL: every field. */
int hub_audit_history(hub_audit *a, const char *tbl, const char *row, const char *field,
		      json_t **out);

/* Check the history against the store (after catching up): HEAD is the
 * head the store recorded, the chain from it is the hub's own, one line
 * with contiguous changes, the tree at HEAD renders exactly the store's
 * records, and the head in DIR/last-backup.json (if any) is still in the
 * history. deep: also replay every commit — its parent's files with its
 * hub_log entries must give exactly its files (cost: the whole log).
 * RL_OK and *report {head, seq, commits, records, backup, deep}, or
 * RL_ESTORE listing what is wrong. */
int hub_audit_verify(hub_audit *a, rl_store *s, int deep, json_t **report);

#endif
