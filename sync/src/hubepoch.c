/*
 * hubepoch.c — the device's side of a hub restore (hub/epoch.c says why):
 * compare the hub's history (WELCOME "epoch", "lineage") with the one this
 * device last synced with (rl_meta 'hub_epoch'), and when the hub was
 * restored from a backup older than what this device has seen, put back
 * into the outbox everything the restore lost that this device holds.
 *
 * Recovery, in one transaction, with R = the last sequence number of this
 * device's epoch that the hub still has:
 *   - every field whose base is above R (its value came from, or went to,
 *     the lost part of the log) is queued again with its current local value
 *     and base R, unless an unacknowledged change of it is already queued,
 *     and with it the other field of its pair (relasi/model.h), so that the
 *     hub decides the two together;
 *   - every base above R (in rl_base, where the versions a snapshot loaded
 *     are moved first, and in the outbox) becomes R;
 *   - the cursor goes back to R, so the hub's new changes after R, which
 *     reuse the lost numbers, are all pulled.
 * The hub fast-forwards such a change when the field has not changed since
 * R (hub_epoch_rebase); otherwise it merges it like any concurrent edit.
 * The device thus carries back its own lost changes and those of others it
 * had pulled, sent as its own: the hub's role rules apply, and a copy the
 * hub already has is "same". A refused copy stays visible in `relasi
 * status` until the hub has that field again (rl_sync_tidy_resent). Copies are
 * marked rl_outbox.resent = 1 (schema/019_resent.sql): a seq range would
 * take in later edits, since seqs are reused.
 */
#include "relasi/devsync.h"
#include "relasi/error.h"
#include "relasi/model.h"

#include "schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An epoch is 32 hex digits (randomblob(16)); accept up to 64. */
static int epoch_valid(const char *e)
{
	size_t n = strlen(e);

	return n >= 16 && n <= 64 && strspn(e, "0123456789abcdef") == n;
}

/* Queue the current value of one field again, with base r (and its pair's
 * other field, if that is not queued yet). */
static int requeue(rl_store *s, const char *tbl, const char *row, const char *field,
		   long long r, long *count)
{
	const struct rl_table *t = rl_model_table(tbl);
	const char *partner;
	sqlite3_stmt *st = NULL, *q;
	char *sql = NULL;
	int error = RL_OK, rc;

	/* Names come from the store; still only known ones reach SQL. */
	if (!t || strcmp(t->name, tbl) != 0 || !rl_model_field(t, field))
		return RL_OK;
	if ((error = rl_store_prepare(s, "SELECT 1 WHERE " RL_OUTBOX_WAITING, &q)) < 0)
		return error;
	sqlite3_bind_text(q, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, row, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, field, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	sqlite3_reset(q);
	if (rc == SQLITE_ROW)
		return RL_OK;                  /* already queued: only its base moves */
	if (rc != SQLITE_DONE)
		return rl_store_error(s, "reading the outbox");
	if (!(sql = sqlite3_mprintf(
		"INSERT INTO rl_outbox(tbl, row_id, field, value, base, device, hlc, resent) "
		"SELECT ?1, ?2, ?3, \"%w\", ?4, ?5, ?6, 1 FROM \"%w\" WHERE id = ?2", field, tbl)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	if (sqlite3_prepare_v2(rl_store_db(s), sql, -1, &st, NULL) != SQLITE_OK) {
		error = rl_store_error(s, "queueing a change again");
		goto cleanup;
	}
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, row, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, field, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, r);
	sqlite3_bind_text(st, 5, rl_store_device_id(s), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, rl_hlc_now(rl_store_hlc(s)));
	if (sqlite3_step(st) != SQLITE_DONE) {
		error = rl_store_error(s, "queueing a change again");
		goto cleanup;
	}
	*count += sqlite3_changes(rl_store_db(s));
	/* A field of a pair goes back with its partner (relasi/model.h), as
	 * the capture queues them: the partner's base is often not above R
	 * (sent unchanged, answered "same"), and alone the lost amount met a
	 * newer currency as a conflict of its own and kept that currency
	 * (tests/cli/test_backup.py, a pair lost by a restore). Its partner's
	 * partner is this field, queued now: the recursion stops there. */
	if ((partner = rl_model_partner(t, field)) != NULL)
		error = requeue(s, tbl, row, partner, r, count);
cleanup:
	sqlite3_finalize(st);
	sqlite3_free(sql);
	return error;
}

/* The outbox's last seq (0 if empty). */
static int outbox_last(rl_store *s, long long *seq)
{
	sqlite3_stmt *st;
	int error, rc;

	if ((error = rl_store_prepare(s, "SELECT coalesce(max(seq), 0) FROM rl_outbox", &st)) < 0)
		return error;
	rc = sqlite3_step(st);
	*seq = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? RL_OK : rl_store_error(s, "reading the outbox");
}

/*
 * A re-sent copy the hub refused (a rep carrying back another rep's new
 * record: "a record can only be created as yourself") is moot once the hub
 * has that field again, from its owner's or a manager's device: the pull
 * then gave it a version after the restore point. Such copies are dropped
 * after the pull that brings that version, and as each session begins;
 * the rest stay refused and visible. rl_meta
 * 'hub_resent' = "R", the restore point, while copies (resent = 1) are
 * left. A note from before the marks, "FIRST LAST R" (the copies' seq
 * range), marks first the rows of that range still based on R, as the
 * copies are: the later edits that reused seqs of the range were made on
 * what the device pulled after the restore, or are pending, not refused.
 */
static int mark_legacy_resent(rl_store *s, long long lo, long long hi, long long r)
{
	sqlite3_stmt *st;
	int error, rc;

	if ((error = rl_store_prepare(s, "UPDATE rl_outbox SET resent = 1 WHERE seq BETWEEN ?1 AND ?2 "
				      "AND base = ?3 AND resent IS NULL", &st)) < 0)
		return error;
	sqlite3_bind_int64(st, 1, lo);
	sqlite3_bind_int64(st, 2, hi);
	sqlite3_bind_int64(st, 3, r);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? RL_OK : rl_store_error(s, "tidying the outbox");
}

int rl_sync_tidy_resent(rl_store *s)
{
	sqlite3_stmt *st;
	char *v = NULL;
	long long lo, hi, r;
	int error, rc, left = 0;

	if ((error = rl_store_meta_get(s, "hub_resent", &v)) < 0 || !v)
		return error;
	rc = sscanf(v, "%lld %lld %lld", &lo, &hi, &r);
	free(v);
	if (rc == 1)
		r = lo;
	if ((error = rl_store_begin(s)) < 0)
		return error;
	if (rc == 3 && (error = mark_legacy_resent(s, lo, hi, r)) < 0)
		goto fail;
	if (rc == 1 || rc == 3) {
		/* Bases read here from rl_base alone, as recover() leaves them;
		 * a snapshot loaded since (after a rewind to 0) joins them. */
		if ((error = rl_sync_bases_unfold(s)) < 0 ||
		    (error = rl_store_prepare(s,
		     "DELETE FROM rl_outbox WHERE resent = 1 AND state = 'refused' AND "
		     "EXISTS (SELECT 1 FROM rl_base b WHERE b.tbl = rl_outbox.tbl AND "
		     "b.row_id = rl_outbox.row_id AND b.field = rl_outbox.field AND b.version > ?1)",
		     &st)) < 0)
			goto fail;
		sqlite3_bind_int64(st, 1, r);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE ||
		    (error = rl_store_prepare(s, "SELECT EXISTS (SELECT 1 FROM rl_outbox WHERE "
					      "resent = 1)", &st)) < 0) {
			error = error < 0 ? error : rl_store_error(s, "tidying the outbox");
			goto fail;
		}
		left = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
		sqlite3_reset(st);
	}
	/* Keep the note while any copy is left (in flight, or refused and the
	 * hub still without the field); a copy acknowledged leaves the outbox. */
	if (!left) {
		if ((error = rl_store_prepare(s, "DELETE FROM rl_meta WHERE key = 'hub_resent'", &st)) < 0)
			goto fail;
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			error = rl_store_error(s, "tidying the outbox");
			goto fail;
		}
	}
	return rl_store_commit(s);
fail:
	rl_store_rollback(s);
	return error;
}

/* The histories this device recovered from, newest last, at most this many:
 * a reply bundle of one of them is older than the restore (cmd_bundle.c). */
#define PAST_EPOCHS 64

/* Note the history `old` as one this device has left (in recover()'s
 * transaction). */
static int note_past(rl_store *s, const char *old)
{
	char *list = NULL, *text = NULL;
	const char *p;
	size_t n = 0;
	int error;

	if ((error = rl_store_meta_get(s, "hub_epochs_past", &list)) < 0)
		return error;
	for (p = list; p && *p; p++)
		n += *p == ' ';
	/* Space-separated; the oldest goes when the list is full. */
	p = list;
	if (list && n + 1 >= PAST_EPOCHS && (p = strchr(list, ' ')))
		p++;
	if (!(text = sqlite3_mprintf("%s%s%s", p ? p : "", p && *p ? " " : "", old)))
		error = rl_error_set(RL_ENOMEM, "out of memory");
	else
		error = rl_store_meta_set(s, "hub_epochs_past", text);
	sqlite3_free(text);
	free(list);
	return error;
}

int rl_sync_hub_epoch_past(rl_store *s, const char *epoch, int *past)
{
	char *list = NULL, *tok, *save = NULL;
	int error;

	*past = 0;
	if (!epoch || !epoch_valid(epoch))
		return RL_OK;
	if ((error = rl_store_meta_get(s, "hub_epochs_past", &list)) < 0)
		return error;
	for (tok = list ? strtok_r(list, " ", &save) : NULL; tok && !*past;
	     tok = strtok_r(NULL, " ", &save))
		*past = strcmp(tok, epoch) == 0;
	free(list);
	return RL_OK;
}

/*
 * A redirect from the lost history: a duplicate merge the admin made after
 * the backup. Only the hub's merge sets merged_into (the hub refuses it
 * from a device, and must: a device could otherwise merge any two
 * customers), so re-sending it left every device with a redirect the hub
 * did not have and a refused change that never cleared. The merge is the
 * hub's, not this device's: the loser goes back to what it was before it,
 * a live record with no redirect (a merge takes only a live record that is
 * no redirect), and neither field is sent again; the rest of what the
 * merge did (the survivor's values, the references moved to it) is sent
 * again as any lost change. The hub's duplicate scan finds the pair again
 * and the admin merges it again (docs/backups.md). In recover()'s
 * transaction, before the changes are queued.
 */
static int drop_lost_redirects(rl_store *s, long long r)
{
	const struct rl_table *t;
	sqlite3_stmt *st = NULL;
	char *sql;
	size_t i;
	int error = RL_OK;

	rl_store_set_capture(s, 0);
	for (i = 0; error == 0 && (t = rl_model_table_at(i)); i++) {
		if (!rl_model_mergeable(t))
			continue;
		if (!(sql = sqlite3_mprintf("UPDATE \"%w\" SET " RL_MERGED_INTO " = NULL, deleted = 0 "
					    "WHERE " RL_MERGED_INTO " IS NOT NULL AND id IN (SELECT row_id "
					    "FROM rl_base WHERE tbl = ?1 AND field = '" RL_MERGED_INTO "' "
					    "AND version > ?2)", t->name))) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			break;
		}
		if (sqlite3_prepare_v2(rl_store_db(s), sql, -1, &st, NULL) != SQLITE_OK) {
			error = rl_store_error(s, "taking back a lost redirect");
		} else {
			sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, r);
			if (sqlite3_step(st) != SQLITE_DONE)
				error = rl_store_error(s, "taking back a lost redirect");
		}
		sqlite3_finalize(st);
		st = NULL;
		sqlite3_free(sql);
	}
	rl_store_set_capture(s, 1);
	return error;
}

static int recover(rl_store *s, long long r, const char *old, const char *epoch, long *count)
{
	sqlite3_stmt *st;
	char num[32], note[96];
	char *cur = NULL;
	long long first, last;
	int error, rc;

	if ((error = rl_store_begin(s)) < 0)
		return error;
	if ((error = outbox_last(s, &first)) < 0 || (error = rl_sync_bases_unfold(s)) < 0 ||
	    (error = drop_lost_redirects(s, r)) < 0)
		goto fail;
	/* Ordered by record: a record's fields stay together in one batch.
	 * Never merged_into (the hub's alone), nor the tombstone of a lost
	 * redirect (drop_lost_redirects took both back). */
	if ((error = rl_store_prepare(s, "SELECT tbl, row_id, field FROM rl_base b WHERE version > ?1 "
				      "AND field <> '" RL_MERGED_INTO "' AND NOT (field = 'deleted' "
				      "AND EXISTS (SELECT 1 FROM rl_base m WHERE m.tbl = b.tbl AND "
				      "m.row_id = b.row_id AND m.field = '" RL_MERGED_INTO "' AND "
				      "m.version > ?1)) ORDER BY tbl, row_id, field", &st)) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, r);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		/* requeue() prepares other statements; copy the names first. */
		char *tbl = strdup((const char *)sqlite3_column_text(st, 0));
		char *row = strdup((const char *)sqlite3_column_text(st, 1));
		char *field = strdup((const char *)sqlite3_column_text(st, 2));
		error = tbl && row && field ? requeue(s, tbl, row, field, r, count)
					    : rl_error_set(RL_ENOMEM, "out of memory");
		free(tbl);
		free(row);
		free(field);
		if (error < 0) {
			sqlite3_reset(st);
			goto fail;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		error = rl_store_error(s, "reading versions");
		goto fail;
	}
	/* Holds name versions of the lost history (schema/018_hold.sql). */
	if (sqlite3_exec(rl_store_db(s), "DELETE FROM rl_hold", NULL, NULL, NULL) != SQLITE_OK) {
		error = rl_store_error(s, "dropping holds");
		goto fail;
	}
	if ((error = rl_store_prepare(s, "UPDATE rl_base SET version = ?1 WHERE version > ?1", &st)) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, r);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE || (error = rl_store_prepare(s,
	    "UPDATE rl_outbox SET base = ?1 WHERE base > ?1 AND state <> 'refused'", &st)) < 0) {
		error = error < 0 ? error : rl_store_error(s, "rewinding versions");
		goto fail;
	}
	sqlite3_bind_int64(st, 1, r);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		error = rl_store_error(s, "rewinding versions");
		goto fail;
	}
	if ((error = rl_store_meta_get(s, "cursor", &cur)) < 0)
		goto fail;
	snprintf(num, sizeof(num), "%lld", r);
	if (cur && strtoll(cur, NULL, 10) > r && (error = rl_store_meta_set(s, "cursor", num)) < 0)
		goto fail;
	if ((error = note_past(s, old)) < 0 ||
	    (error = rl_store_meta_set(s, "hub_epoch", epoch)) < 0 ||
	    (error = outbox_last(s, &last)) < 0)
		goto fail;
	snprintf(note, sizeof(note), "%lld", r);
	if (last > first && (error = rl_store_meta_set(s, "hub_resent", note)) < 0)
		goto fail;
	free(cur);
	return rl_store_commit(s);
fail:
	free(cur);
	rl_store_rollback(s);
	return error;
}

int rl_sync_hub_epoch(rl_store *s, json_t *welcome, struct rl_sync_stats *stats)
{
	const char *epoch = json_string_value(json_object_get(welcome, "epoch"));
	json_t *lineage = json_object_get(welcome, "lineage"), *e;
	char *mine = NULL;
	long long r = -1;
	size_t i;
	int error;

	if (!epoch)
		return RL_OK;                  /* a hub from before epochs */
	if (!epoch_valid(epoch))
		return rl_error_set(RL_EPROTO, "the hub's WELCOME has a malformed epoch");
	if ((error = rl_store_meta_get(s, "hub_epoch", &mine)) < 0)
		return error;
	if (mine && strcmp(mine, epoch) == 0) {
		free(mine);
		return rl_sync_tidy_resent(s);
	}
	if (!mine) {
		/* First sync with this hub (or with epochs at all). */
		error = rl_store_begin(s);
		if (error == 0 && (error = rl_store_meta_set(s, "hub_epoch", epoch)) == 0)
			return rl_store_commit(s);
		rl_store_rollback(s);
		return error;
	}
	if (json_is_array(lineage)) {
		json_array_foreach(lineage, i, e) {
			const char *le = json_string_value(json_array_get(e, 0));
			json_t *seq = json_array_get(e, 1);
			if (le && json_is_integer(seq) && strcmp(le, mine) == 0 &&
			    json_integer_value(seq) >= 0)
				r = json_integer_value(seq);
		}
	}
	if (r < 0) {
		error = rl_error_set(RL_EPROTO,
			"this device last synced with a history of the hub (%.12s) that the hub "
			"no longer has (it was restored from a backup that does not contain it); "
			"nothing was sent or changed here — ask the hub admin", mine);
		free(mine);
		return error;
	}
	stats->restored = 1;
	stats->restored_at = r;
	error = recover(s, r, mine, epoch, &stats->resent);
	free(mine);
	return error;
}
