/*
 * relasi/outbox.h — what a rep does with the changes the hub refused: send
 * a refused new record again once its cause is settled, or discard refused
 * changes; and which pending changes wait for that decision.
 *
 * A refused edit of a record the hub has: the device already shows the
 * hub's value again (devsync.c), so discarding the change loses nothing the
 * rep was not told, and sending it again would push a value the device no
 * longer shows; the rep makes the edit again instead.
 *
 * A refused new record: the hub never had it, and decides a new record
 * whole (docs/sync.md). Until the rep decides, it is held: its later edits
 * stay pending and are not sent (a lone edit would reach the hub as a new
 * record of one field: refused for the fields it lacks, or worse, created
 * without them). Then either
 *   retry    its changes, refused and held, go out again as one new record:
 *            the newest value of each field, pending, stamped anew, at the
 *            end of the outbox (records in the order they were made,
 *            parents first);
 *   discard  it leaves this device, the hub never having had it, so the
 *            device and the hub hold the same again. Records the device
 *            made that refer to it and were refused with it (a stage move,
 *            a task on a refused deal) leave with it; one that is not
 *            refused (pending, in flight, or a record the hub has with an
 *            edit on its way) stops the discard: nothing changes, and the
 *            error names it — after a sync it is refused with its parent
 *            (or its edit is, and the hub's value is back) and both go.
 *
 * Both run on a device's store, capture on as it is by default (discard
 * turns it off while it removes, then on again), in their own
 * transaction, and change nothing on an error. The caller holds the
 * exchange lock (cli_exchange_lock): a sync must not freeze a batch
 * meanwhile. seqs/n name refused changes by their outbox seq;
 * n == 0 means every refused change.
 */
#ifndef RELASI_OUTBOX_H
#define RELASI_OUTBOX_H

#include <stddef.h>

#include "relasi/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A record a discard removed from this device. */
struct rl_outbox_removed {
	char *tbl;      /* its table (model name) */
	char *id;
	char *label;    /* what people call it (rl_label); NULL: it has no name */
};

struct rl_outbox_outcome {
	long changes;        /* discard: refused changes discarded (a removed
				record's held edits go too, uncounted);
				retry: field changes queued to send again */
	long records;        /* retry: new records sent again */
	long edits_left;     /* retry of every refused change: refused edits
				left refused (make them again) */
	struct rl_outbox_removed *removed;  /* discard: records removed, owned */
	size_t nremoved;
};

/*
 * Send refused new records again: each named change's record (a new record
 * goes whole), or every refused new record. Naming a refused edit is
 * RL_EINVALID (the message says to make the edit again); naming a change
 * that is not refused, RL_ENOTFOUND; a record with a change in flight,
 * RL_EBUSY (sync first).
 */
int rl_outbox_retry(rl_store *s, const long long *seqs, size_t n, struct rl_outbox_outcome *out);

/*
 * Discard refused changes: the named ones, or all. A refused edit's row
 * leaves the outbox; a refused new record leaves the device with its
 * refused dependants (above). RL_ENOTFOUND for a change that is not
 * refused; RL_EINVALID for a dependant that is not refused; RL_EBUSY for a
 * record with a change in flight.
 */
int rl_outbox_discard(rl_store *s, const long long *seqs, size_t n,
		      struct rl_outbox_outcome *out);

/* How many pending changes are held (below); 0 at once for an outbox
 * without refused changes. */
int rl_outbox_count_held(rl_store *s, long long *n);

/* Free what an outcome owns; it can be used again. */
void rl_outbox_outcome_free(struct rl_outbox_outcome *out);

/*
 * SQL condition: the change in rl_outbox row OUTER (a table name or alias
 * of the outer query) belongs to a refused new record — its record has a
 * refused change and no hub version (rl_base, a snapshot's, a hold). A
 * pending change for which it holds is held, not sent.
 */
#define RL_OUTBOX_HELD_SQL(OUTER) \
	"(EXISTS (SELECT 1 FROM rl_outbox h WHERE h.state = 'refused' AND h.tbl = " OUTER ".tbl " \
	"AND h.row_id = " OUTER ".row_id) AND NOT EXISTS (SELECT 1 FROM rl_base h WHERE " \
	"h.tbl = " OUTER ".tbl AND h.row_id = " OUTER ".row_id) AND NOT EXISTS (SELECT 1 " \
	"FROM rl_base_snapshot h WHERE h.tbl = " OUTER ".tbl AND h.row_id = " OUTER ".row_id) " \
	"AND NOT EXISTS (SELECT 1 FROM rl_hold h WHERE h.tbl = " OUTER ".tbl AND h.row_id = " \
	OUTER ".row_id))"

#ifdef __cplusplus
}
#endif
#endif
