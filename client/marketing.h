/*
 * marketing.h — the client's marketing commands (client/cmd_marketing.c:
 * segment, tiers; client/cmd_campaign.c) and who a saved segment's rule
 * selects (client/segment_members.c). RFM scores and tiers per month are
 * shared with the hub's HTML report and live in librelasi-sync
 * (relasi/marketing.h); output goes through the pipeline reports' typed
 * result tables (relasi/report.h).
 */
#ifndef RELASI_CLIENT_MARKETING_H
#define RELASI_CLIENT_MARKETING_H

#include "relasi/marketing.h"
#include "relasi/segment_rule.h"

/* ---- names (cmd_marketing.c) ---- */

/* The live row of table ("segments" or "campaigns": a name of the data
 * model, never user text) named name, any case, into id; "" when none; the
 * oldest when two devices chose the same name. RL_OK or a store error. */
int mk_id_by_name(rl_store *s, const char *table, const char *name, char id[RL_ID_BUFSZ]);

/* ---- rule members (segment_members.c) ---- */

/* Live accounts that rule (text) selects today: *ids (malloc'd, n of
 * them, ordered by id). The rule's errors carry their position. */
int mk_segment_members(rl_store *s, const char *rule, char (**ids)[RL_ID_BUFSZ], size_t *n);

#endif
