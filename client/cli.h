/*
 * cli.h — the relasi client's command tables (one per cmd_*.c), on top of
 * the shared command framework in relasi/cli.h.
 */
#ifndef RELASI_CLIENT_CLI_H
#define RELASI_CLIENT_CLI_H

#include "relasi/cli.h"
#include "relasi/report.h"   /* rl_report_cmds: `relasi report ...` */

extern const struct cli_cmd cli_cmds_core[];
extern const struct cli_cmd cli_cmds_records[];
extern const struct cli_cmd cli_cmds_activity[];
extern const struct cli_cmd cli_cmds_query[];
extern const struct cli_cmd cli_cmds_io[];
extern const struct cli_cmd cli_cmds_sync[];
extern const struct cli_cmd cli_cmds_bundle[];
extern const struct cli_cmd cli_cmds_marketing[];
extern const struct cli_cmd cli_cmds_campaign[];

/* One exchange of changes with the hub at a time per store (sync, bundle
 * export and import: cmd_sync.c): an flock on relasi.db.exchange beside
 * the store, released by the kernel however the process ends. *fd gets the
 * lock's descriptor (close it to release); RL_EBUSY while another process
 * holds it. */
int cli_exchange_lock(struct cli_ctx *ctx, int *fd);

/* After an exchange: how many pending changes it held back, the edits of
 * refused new records (relasi/outbox.h), in *held; said on stderr unless
 * --json, or "nothing pending" / "pushed 0" beside them would puzzle
 * (cmd_sync.c). */
int cli_note_held(struct cli_ctx *ctx, long long *held);

/* `relasi import deals FILE` (deals_import.c); delim as --delimiter gave it. */
int cli_import_deals(struct cli_ctx *ctx, struct cli_args *a, int delim);

#endif
