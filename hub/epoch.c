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

int hub_epoch_restored(rl_store *s, long long *last)
{
	char *epoch = NULL, *text = NULL, num[32];
	json_t *jl = NULL, *entry;
	sqlite3_stmt *st;
	int error, rc;

	*last = 0;
	if ((error = rl_store_begin(s)) < 0)
		return error;
	if ((error = rl_store_meta_get(s, "hub_epoch", &epoch)) < 0 ||
	    (error = load_lineage(s, &jl)) < 0 ||
	    (error = rl_store_prepare(s, "SELECT coalesce(max(seq), 0), "
				      "lower(hex(randomblob(16))) FROM hub_log", &st)) < 0)
		goto fail;
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		error = rl_store_error(s, "reading the log's end");
		goto fail;
	}
	*last = sqlite3_column_int64(st, 0);
	if ((error = rl_store_meta_set(s, "hub_epoch",
				       (const char *)sqlite3_column_text(st, 1))) < 0) {
		sqlite3_reset(st);
		goto fail;
	}
	sqlite3_reset(st);
	/* A store from before epochs existed has none: its devices hold none
	 * either and are taken as they are (docs/backups.md, "Devices after a restore"). */
	if (epoch) {
		if (!(entry = json_pack("[s, I]", epoch, (json_int_t)*last)) ||
		    json_array_append_new(jl, entry) < 0) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto fail;
		}
	}
	while (json_array_size(jl) > HUB_MAX_LINEAGE)
		json_array_remove(jl, 0);
	snprintf(num, sizeof(num), "%lld", *last);
	if (!(text = json_dumps(jl, JSON_COMPACT))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto fail;
	}
	if ((error = rl_store_meta_set(s, "hub_lineage", text)) < 0 ||
	    (error = rl_store_meta_set(s, "hub_restore_point", num)) < 0 ||
	    (error = rl_store_commit(s)) < 0)
		goto fail;
	goto cleanup;
fail:
	rl_store_rollback(s);
cleanup:
	json_decref(jl);
	free(epoch);
	free(text);
	return error;
}
