/*
 * status.h — `relasi-hub status`: the hub at a glance for its admin (hub/
 * status.c). What needs deciding (open conflicts and duplicate
 * candidates), decisions some device has not received yet, who has gone quiet (devices not seen for a week), how far
 * the audit history and the last backup are behind the log, how long the
 * server certificate has left, and how big the files are. Read from
 * hub.db and the files beside it; nothing is written.
 */
#ifndef RELASI_HUB_STATUS_H
#define RELASI_HUB_STATUS_H

#include <stdint.h>

#include <jansson.h>

#include "relasi/store.h"

/* A device enrolled and not revoked that has not synced for this long
 * (or, never synced, was enrolled this long ago) is counted as quiet: a
 * lost laptop, or a rep who stopped syncing, whose work the hub does not
 * have. */
#define HUB_STATUS_QUIET_DAYS 7

/*
 * The state of hub directory dir, whose store s is open, as of the
 * store's clock (RELASI_NOW in tests). *out: a new JSON object, the
 * caller's to json_decref (docs/hub.md, "Status", names its members).
 * A file that is missing counts as size 0 (no WAL, say) and a missing
 * last-backup.json as "no backup"; one that cannot be read or parsed is
 * an error naming it (RL_EIO, RL_EINVALID), as is the store's
 * (RL_ESTORE).
 */
int hub_status(rl_store *s, const char *dir, json_t **out);

#endif
