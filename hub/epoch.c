/*
 * epoch.c — the identity of the hub's history, so that a restore from a
 * backup does not make devices silently diverge.
 *
 * Sequence numbers are the hub's history: a device's cursor and every base
 * version it holds are numbers of one hub log. A restored hub's log ends at
 * the backup's last sequence number R and then hands out R+1, R+2... again
 * for new changes. A device that synced with the hub after the backup holds
 * a cursor and bases above R that now name other changes (it would skip
 * them), and values the restored hub lost (its own acknowledged changes and
 * what it pulled of others').
 *
 * So the store carries an epoch (rl_meta 'hub_epoch', a random id set by
 * schema/hub/003_backup.sql), and a restore starts a new one and records in
 * 'hub_lineage' ([[EPOCH, LAST_SEQ]...]) how far each earlier epoch is still
 * this store's history. WELCOME tells both. A device that last synced in an
 * earlier epoch E of the lineage (sync/src/hubepoch.c) rewinds its cursor
 * and every base above E's LAST_SEQ (call it R) to R and re-sends the
 * current value of each such field as a change with base R; the hub rebases
 * such a change on the field's version when that field has not changed since
 * R (hub_epoch_rebase), so the lost value comes back as a fast-forward, and a
 * field someone changed since the restore goes through the merge rule like
 * any concurrent edit. A device whose epoch is not in the lineage is told
 * so and refuses to sync rather than guess.
 *
 * Put back: a copy of the hub's directory put back in place (a VM
 * snapshot, a file copy), not restored, keeps the copy's epoch, so devices
 * see nothing to recover. Each device's HELLO says its epoch, cursor, last
 * answered batch and last pulled change (seq and stamp); in this epoch, a
 * device ahead of the log or of the hub's record of its batches, or whose
 * last change is not the one logged under that seq, has seen history this
 * store lost, and hub_epoch_check_device starts a new epoch as a restore
 * does. R is the log's end when `serve` started (where the copy ended),
 * lowered below the witness when that differs: too low only re-sends.
 *
 * Why "base == R" is unambiguous: a device holds base R for a field only if
 * change R was that field's, so a field whose version is below R, or which
 * the hub does not have, cannot be meant by a device that really saw R;
 * for every other field the rebase changes nothing.
 */
#include "backup.h"
#include "hub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relasi/error.h"
#include "relasi/jsonw.h"

int hub_epoch_welcome(rl_store *s, json_t *welcome)
{
	char *epoch = NULL, *lineage = NULL;
	json_t *jl = NULL;
	int error;

	if ((error = rl_store_meta_get(s, "hub_epoch", &epoch)) < 0 ||
	    (error = rl_store_meta_get(s, "hub_lineage", &lineage)) < 0)
		goto cleanup;
	if (epoch && json_object_set_new(welcome, "epoch", json_string(epoch)) < 0) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (lineage) {
		if (!(jl = json_loads(lineage, 0, NULL)) || !json_is_array(jl)) {
			error = rl_error_set(RL_ESTORE, "the hub's lineage in rl_meta is not a JSON list");
			goto cleanup;
		}
		if (json_object_set(welcome, "lineage", jl) < 0)
			error = rl_error_set(RL_ENOMEM, "out of memory");
	}
cleanup:
	json_decref(jl);
	free(epoch);
	free(lineage);
	return error;
}

/* The lineage as JSON (a new reference; an empty list if there is none). */
static int load_lineage(rl_store *s, json_t **out)
{
	char *lineage = NULL;
	int error;

	*out = NULL;
	if ((error = rl_store_meta_get(s, "hub_lineage", &lineage)) < 0)
		return error;
	*out = lineage ? json_loads(lineage, 0, NULL) : json_array();
	free(lineage);
	if (!*out || !json_is_array(*out)) {
		json_decref(*out);
		*out = NULL;
		return rl_error_set(RL_ESTORE, "the hub's lineage in rl_meta is not a JSON list");
	}
	return RL_OK;
}

int hub_epoch_restore_points(rl_store *s, struct hub_restore_points *rp)
{
	json_t *jl, *e;
	size_t i;
	int error;

	rp->n = 0;
	if ((error = load_lineage(s, &jl)) < 0)
		return error;
	json_array_foreach(jl, i, e) {
		json_t *seq = json_array_get(e, 1);
		if (json_is_integer(seq) && json_integer_value(seq) > 0 && rp->n < HUB_MAX_LINEAGE)
			rp->seq[rp->n++] = json_integer_value(seq);
	}
	json_decref(jl);
	return RL_OK;
}

int hub_epoch_rebase(rl_store *s, const struct hub_restore_points *rp, const char *tbl,
		     const char *row, const char *field, long long *base, long long *current)
{
	sqlite3_stmt *st;
	size_t i;
	int error, rc;

	*current = 0;
	for (i = 0; i < rp->n && rp->seq[i] != *base; i++)
		;
	if (*base <= 0 || i == rp->n)
		return RL_OK;
	if ((error = rl_store_prepare(s, "SELECT version FROM hub_fields WHERE tbl = ?1 AND "
				      "row_id = ?2 AND field = ?3", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, row, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, field, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		*base = 0;                         /* a field (or record) the restore lost */
	else if (rc == SQLITE_ROW) {
		*current = sqlite3_column_int64(st, 0);
		if (*current < *base)
			*base = *current;
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? RL_OK : rl_store_error(s, "reading versions");
}

/*
 * Start a new epoch, in one transaction: the current one goes into the
 * lineage with R = the log's last seq, or `cap` if that is lower (cap < 0:
 * no cap), and *r gets R. `expect` (may be NULL): only if the current
 * epoch is still that one, else nothing is done and *r is -1 (another
 * session started the new epoch first).
 */
static int start_epoch(rl_store *s, const char *expect, long long cap, long long *r)
{
	char *epoch = NULL, *text = NULL, num[32];
	json_t *jl = NULL, *entry;
	sqlite3_stmt *st;
	int error, rc;

	*r = -1;
	if ((error = rl_store_begin(s)) < 0)
		return error;
	if ((error = rl_store_meta_get(s, "hub_epoch", &epoch)) < 0 ||
	    (error = load_lineage(s, &jl)) < 0)
		goto fail;
	if (expect && (!epoch || strcmp(epoch, expect) != 0)) {
		rl_store_rollback(s);
		goto cleanup;
	}
	if ((error = rl_store_prepare(s, "SELECT coalesce(max(seq), 0), "
				      "lower(hex(randomblob(16))) FROM hub_log", &st)) < 0)
		goto fail;
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		error = rl_store_error(s, "reading the log's end");
		goto fail;
	}
	*r = sqlite3_column_int64(st, 0);
	if (cap >= 0 && cap < *r)
		*r = cap;
	if ((error = rl_store_meta_set(s, "hub_epoch",
				       (const char *)sqlite3_column_text(st, 1))) < 0) {
		sqlite3_reset(st);
		goto fail;
	}
	sqlite3_reset(st);
	/* A store from before epochs existed has none: its devices hold none
	 * either and are taken as they are (docs/backups.md, "Devices after a restore"). */
	if (epoch) {
		if (!(entry = json_pack("[s, I]", epoch, (json_int_t)*r)) ||
		    json_array_append_new(jl, entry) < 0) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto fail;
		}
	}
	while (json_array_size(jl) > HUB_MAX_LINEAGE)
		json_array_remove(jl, 0);
	snprintf(num, sizeof(num), "%lld", *r);
	if (!(text = rl_json_dumps(jl, JSON_COMPACT))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto fail;
	}
	if ((error = rl_store_meta_set(s, "hub_lineage", text)) < 0 ||
	    (error = rl_store_meta_set(s, "hub_restore_point", num)) < 0 ||
	    (error = rl_store_commit(s)) < 0)
		goto fail;
	goto cleanup;
fail:
	*r = -1;
	rl_store_rollback(s);
cleanup:
	json_decref(jl);
	free(epoch);
	free(text);
	return error;
}

int hub_epoch_restored(rl_store *s, long long *last)
{
	int error = start_epoch(s, NULL, -1, last);

	if (*last < 0)
		*last = 0;
	return error;
}

int hub_epoch_note_start(rl_store *s)
{
	long long last;
	char num[32];
	int error;

	if ((error = rl_store_begin(s)) < 0)
		return error;
	if ((error = hub_log_last(s, &last)) < 0)
		goto fail;
	snprintf(num, sizeof(num), "%lld", last);
	if ((error = rl_store_meta_set(s, "hub_run_start", num)) < 0 ||
	    (error = rl_store_commit(s)) < 0)
		goto fail;
	return RL_OK;
fail:
	rl_store_rollback(s);
	return error;
}

/* A non-negative integer of rl_meta, or -1 when absent. */
static int meta_seq(rl_store *s, const char *key, long long *out)
{
	char *v = NULL;
	int error;

	*out = -1;
	if ((error = rl_store_meta_get(s, key, &v)) < 0 || !v)
		return error;
	*out = strtoll(v, NULL, 10);
	free(v);
	return RL_OK;
}

int hub_epoch_check_device(rl_store *s, const char *device, const char *epoch,
			   long long cursor, long long acked, long long wseq, long long whlc,
			   long long *r)
{
	char *mine = NULL;
	sqlite3_stmt *st;
	long long last = 0, batch = 0, start;
	int error, rc, witness_ok = 1;

	*r = -1;
	if (!epoch)
		return RL_OK;
	if ((error = rl_store_meta_get(s, "hub_epoch", &mine)) < 0)
		return error;
	/* Only a device of this very history says something about it: one of
	 * an earlier epoch recovers on its side (hubepoch.c) with its own
	 * numbers still above the hub's. */
	if (!mine || strcmp(mine, epoch) != 0)
		goto cleanup;
	if ((error = rl_store_prepare(s, "SELECT (SELECT coalesce(max(seq), 0) FROM hub_log), "
				      "(SELECT coalesce(max(batch), 0) FROM hub_batches "
				      "WHERE device = ?1), "
				      "(SELECT hlc FROM hub_log WHERE seq = ?2) IS ?3", &st)) < 0)
		goto cleanup;
	sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, wseq);
	sqlite3_bind_int64(st, 3, whlc);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		last = sqlite3_column_int64(st, 0);
		batch = sqlite3_column_int64(st, 1);
		witness_ok = wseq <= 0 || sqlite3_column_int(st, 2);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW) {
		error = rl_store_error(s, "reading the log's end");
		goto cleanup;
	}
	/* Every number a device holds came from this log and every batch it
	 * had answered was recorded before the answer, both committed with
	 * synchronous=FULL: a device ahead of either has seen a history this
	 * store does not hold. */
	if (cursor <= last && acked <= batch && witness_ok)
		goto cleanup;
	/* The changes logged since this hub was started may already reuse
	 * the lost numbers (see "Put back" above): the new epoch keeps
	 * only the history up to the start, where the copy ended. */
	if ((error = meta_seq(s, "hub_run_start", &start)) < 0)
		goto cleanup;
	/* The history this device saw differs from the log at its witness:
	 * the common part ends before it. */
	if (!witness_ok && (start < 0 || start >= wseq))
		start = wseq - 1;
	error = start_epoch(s, mine, start, r);
	if (error == 0 && *r >= 0)
		fprintf(stderr, "relasi-hub: device %.12s has seen history this hub lost (its cursor "
			"%lld, the log ends at %lld; its last answered batch %lld, recorded %lld; "
			"the change it pulled last %s): "
			"this hub was put back from an older copy without relasi-hub restore; started "
			"a new epoch at change %lld so devices send again what it lost (docs/backups.md)\n",
			device, cursor, last, acked, batch, witness_ok ? "matches" : "is not in the log",
			*r);
cleanup:
	free(mine);
	return error;
}
