/*
 * capture.c — change capture: the triggers that turn every write to a synced
 * table into field-level rows of rl_outbox, in the same transaction.
 *
 * Why triggers and not C calls at each write site: no code path (a new
 * command, an import, a later module) can forget to record a change, and the
 * capture commits or rolls back with the edit itself. The triggers are built
 * from each table's live columns (PRAGMA table_info) each time the schema
 * changes, so a column added by a migration is captured without more code.
 *
 * Per synced table T:
 *   rl_cap_T_ins  AFTER INSERT: one change per non-NULL column (base NULL)
 *                 — or, while an import defers capture, nothing: the
 *                 import's new rows are captured at its commit by one
 *                 INSERT ... SELECT per table (rl_capture_catch_up_sql),
 *                 their final values as if each edit had coalesced
 *   rl_cap_T_upd  AFTER UPDATE: one change per column whose value changed
 *                 (IS NOT) — or whose partner changed (a pair, relasi/model.h,
 *                 goes out whole) — with base = the field's hub version: the larger
 *                 of rl_base and a snapshot's rl_base_snapshot
 *                 (each one INSERT over a UNION ALL of the columns)
 *   rl_cap_T_del  BEFORE DELETE: refused — deletes are tombstones — but
 *                 while rl_removing() (rl_store_set_removal): a discarded
 *                 record the hub never had leaves the store (outbox.c)
 *   rl_cap_T_id   BEFORE UPDATE OF id: refused — ids never change
 * The hub's store has only the last two (rl_capture_install_guards, hub
 * schema 17): the hub never captures.
 * A pending change of the same field coalesces (upsert on the partial unique
 * index rl_outbox_pending): the newest value and stamp win, the original base
 * stays, because the base is what the device saw before its first edit.
 *
 * The triggers call rl_capture_row(TABLE, ROWID) (capture on, and the row
 * not one an import will capture at its commit), rl_device() and rl_hlc(),
 * registered by store.c. A connection without them (the sqlite3 shell) cannot write to a
 * synced table: the trigger fails with "no such function" and the statement
 * is rolled back.
 *
 * SQL text is assembled here only from table and column names of our own
 * schema, quoted with %w / %Q; no user text ever reaches it.
 */
#include "schema.h"
#include "relasi/error.h"
#include "relasi/model.h"

#include <stdlib.h>
#include <string.h>

const char *const rl_synced_tables[] = {
	"users", "stages", "accounts", "contacts", "deals", "activities",
	"tasks", "deal_stage_events", "segments", "campaigns", "campaign_members",
	"tier_config", NULL
};

static int table_exists(sqlite3 *db, const char *table, int *exists)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		return rl_error_set(RL_ESTORE, "capture: %s", sqlite3_errmsg(db));
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*exists = rc == SQLITE_ROW;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? RL_OK
		: rl_error_set(RL_ESTORE, "capture: %s", sqlite3_errmsg(db));
}

static const char upsert_tail[] =
	" ON CONFLICT(tbl, row_id, field) WHERE state = 'pending'"
	" DO UPDATE SET value = excluded.value, hlc = excluded.hlc;\n";

/* The capture triggers of table ti: rl_cap_T_ins and rl_cap_T_upd. */
static int install_capture(sqlite3 *db, int ti)
{
	const char *t = rl_synced_tables[ti];
	sqlite3_stmt *cols = NULL;
	sqlite3_str *ins = NULL, *upd = NULL;
	char *ins_sql = NULL, *upd_sql = NULL;
	const char *partner;
	int error = RL_OK, rc, n = 0;

	if (sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info(?1) ORDER BY cid",
			       -1, &cols, NULL) != SQLITE_OK) {
		error = rl_error_set(RL_ESTORE, "capture: %s", sqlite3_errmsg(db));
		goto cleanup;
	}
	sqlite3_bind_text(cols, 1, t, -1, SQLITE_STATIC);

	/*
	 * One INSERT per trigger, over a UNION ALL of the table's columns
	 * (name, new value[, changed]), not one INSERT per column: each
	 * statement of a trigger program opens and closes its own cursors on
	 * rl_outbox and its indexes, which was two thirds of an import's time
	 * (bench/bench_client.py). The arms run in column order, so the
	 * outbox rows and their stamps come in the same order as before.
	 */
	ins = sqlite3_str_new(db);
	upd = sqlite3_str_new(db);
	sqlite3_str_appendf(ins, "CREATE TRIGGER \"rl_cap_%w_ins\" AFTER INSERT ON \"%w\" "
			    "WHEN rl_capture_row(%d, new.rowid) BEGIN\n"
			    "INSERT INTO rl_outbox(tbl, row_id, field, value, base, device, hlc) "
			    "SELECT %Q, new.id, f, v, NULL, rl_device(), rl_hlc() FROM (", t, t, ti, t);
	sqlite3_str_appendf(upd, "CREATE TRIGGER \"rl_cap_%w_upd\" AFTER UPDATE ON \"%w\" "
			    "WHEN rl_capture_row(%d, new.rowid) BEGIN\n"
			    "INSERT INTO rl_outbox(tbl, row_id, field, value, base, device, hlc) "
			    "SELECT %Q, new.id, f, v, (SELECT max(b) FROM ("
			    "SELECT version AS b FROM rl_base WHERE tbl = %Q AND row_id = new.id "
			    "AND field = f UNION ALL SELECT json_extract(versions, '$.' || f) "
			    "FROM rl_base_snapshot WHERE tbl = %Q AND row_id = new.id)), "
			    "rl_device(), rl_hlc() FROM (",
			    t, t, ti, t, t, t);
	while ((rc = sqlite3_step(cols)) == SQLITE_ROW) {
		const char *c = (const char *)sqlite3_column_text(cols, 0);
		if (strcmp(c, "id") == 0)
			continue;
		sqlite3_str_appendf(ins, "%sSELECT %Q AS f, new.\"%w\" AS v",
				    n ? " UNION ALL " : "", c, c);
		/* A field of a pair goes out with its partner (relasi/model.h):
		 * the hub then knows the device's whole value, and decides a
		 * concurrent edit of the pair as one. */
		partner = rl_model_partner(rl_model_table(t), c);
		sqlite3_str_appendf(upd, "%sSELECT %Q AS f, new.\"%w\" AS v, "
				    "old.\"%w\" IS NOT new.\"%w\"",
				    n ? " UNION ALL " : "", c, c, c, c);
		if (partner)
			sqlite3_str_appendf(upd, " OR old.\"%w\" IS NOT new.\"%w\"", partner,
					    partner);
		sqlite3_str_appendall(upd, " AS changed");
		n++;
	}
	if (rc != SQLITE_DONE) {
		error = rl_error_set(RL_ESTORE, "capture: %s", sqlite3_errmsg(db));
		goto cleanup;
	}
	if (n == 0) {
		error = rl_error_set(RL_ESTORE, "capture: table %s has no columns to capture", t);
		goto cleanup;
	}
	sqlite3_str_appendf(ins, ") WHERE v IS NOT NULL%sEND;", upsert_tail);
	sqlite3_str_appendf(upd, ") WHERE changed%sEND;", upsert_tail);
	ins_sql = sqlite3_str_finish(ins);
	upd_sql = sqlite3_str_finish(upd);
	ins = upd = NULL;
	if (!ins_sql || !upd_sql) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (sqlite3_exec(db, ins_sql, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, upd_sql, NULL, NULL, NULL) != SQLITE_OK)
		error = rl_error_set(RL_ESTORE, "installing capture on %s: %s", t,
				     sqlite3_errmsg(db));
cleanup:
	sqlite3_finalize(cols);
	if (ins)
		sqlite3_free(sqlite3_str_finish(ins));
	if (upd)
		sqlite3_free(sqlite3_str_finish(upd));
	sqlite3_free(ins_sql);
	sqlite3_free(upd_sql);
	return error;
}

/* The guards of table ti: rl_cap_T_del and rl_cap_T_id. */
static int install_guards(sqlite3 *db, int ti)
{
	const char *t = rl_synced_tables[ti];
	char *sql = sqlite3_mprintf(
		"CREATE TRIGGER \"rl_cap_%w_del\" BEFORE DELETE ON \"%w\" WHEN NOT rl_removing() BEGIN "
		"SELECT RAISE(ABORT, 'rows of synced table %q are never deleted; set deleted = 1'); END;"
		"CREATE TRIGGER \"rl_cap_%w_id\" BEFORE UPDATE OF id ON \"%w\" "
		"WHEN old.id IS NOT new.id BEGIN "
		"SELECT RAISE(ABORT, 'record ids never change'); END;",
		t, t, t, t, t);
	int error = RL_OK;

	if (!sql)
		return rl_error_set(RL_ENOMEM, "out of memory");
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		error = rl_error_set(RL_ESTORE, "installing capture on %s: %s", t,
				     sqlite3_errmsg(db));
	sqlite3_free(sql);
	return error;
}

static int drop_capture_triggers(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	sqlite3_str *drops = sqlite3_str_new(db);
	char *sql = NULL;
	int error = RL_OK;

	if (sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'trigger' "
			       "AND name LIKE 'rl\\_cap\\_%' ESCAPE '\\'", -1, &st, NULL) != SQLITE_OK) {
		error = rl_error_set(RL_ESTORE, "capture: %s", sqlite3_errmsg(db));
		goto cleanup;
	}
	while (sqlite3_step(st) == SQLITE_ROW)
		sqlite3_str_appendf(drops, "DROP TRIGGER \"%w\";",
				    (const char *)sqlite3_column_text(st, 0));
	sql = sqlite3_str_finish(drops);
	drops = NULL;
	if (sql && sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		error = rl_error_set(RL_ESTORE, "capture: %s", sqlite3_errmsg(db));
cleanup:
	sqlite3_finalize(st);
	if (drops)
		sqlite3_free(sqlite3_str_finish(drops));
	sqlite3_free(sql);
	return error;
}

int rl_capture_remove(sqlite3 *db)
{
	return drop_capture_triggers(db);
}

static int install(sqlite3 *db, int guards_only)
{
	int i, error, exists = 0;

	if ((error = drop_capture_triggers(db)) < 0)
		return error;
	for (i = 0; rl_synced_tables[i]; i++) {
		if ((error = table_exists(db, rl_synced_tables[i], &exists)) < 0)
			return error;
		if (exists && ((!guards_only && (error = install_capture(db, i)) < 0) ||
			       (error = install_guards(db, i)) < 0))
			return error;
	}
	return RL_OK;
}

int rl_capture_install(sqlite3 *db)
{
	return install(db, 0);
}

int rl_capture_install_guards(sqlite3 *db)
{
	return install(db, 1);
}

int rl_capture_catch_up_sql(sqlite3 *db, int ti, char **out)
{
	const char *t = rl_synced_tables[ti];
	sqlite3_stmt *cols = NULL;
	sqlite3_str *names = sqlite3_str_new(db), *cases = sqlite3_str_new(db);
	char *n = NULL, *c = NULL;
	int rc, k = 0, error = RL_OK;

	*out = NULL;
	if (sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info(?1) ORDER BY cid",
			       -1, &cols, NULL) != SQLITE_OK) {
		error = rl_error_set(RL_ESTORE, "capture: %s", sqlite3_errmsg(db));
		goto cleanup;
	}
	sqlite3_bind_text(cols, 1, t, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(cols)) == SQLITE_ROW) {
		const char *col = (const char *)sqlite3_column_text(cols, 0);
		if (strcmp(col, "id") == 0)
			continue;
		sqlite3_str_appendf(names, "%s(%d, %Q)", k ? ", " : "", k, col);
		sqlite3_str_appendf(cases, " WHEN %d THEN t.\"%w\"", k, col);
		k++;
	}
	if (rc != SQLITE_DONE || k == 0) {
		error = rl_error_set(RL_ESTORE, "capture: the columns of %s: %s", t,
				     sqlite3_errmsg(db));
		goto cleanup;
	}
	n = sqlite3_str_finish(names);
	c = sqlite3_str_finish(cases);
	names = cases = NULL;
	/* t outside (CROSS JOIN keeps that order), the columns inside: each
	 * record's fields together and in column order, records in rowid
	 * order, so the rows and stamps come as the insert trigger's would. */
	if (n && c)
		*out = sqlite3_mprintf("WITH f(n, name) AS (VALUES %s) "
				       "INSERT INTO rl_outbox(tbl, row_id, field, value, base, device, hlc) "
				       "SELECT %Q, t.id, f.name, CASE f.n%s END AS v, NULL, rl_device(), "
				       "rl_hlc() FROM \"%w\" t CROSS JOIN f WHERE t.rowid > ?1 AND "
				       "v IS NOT NULL%s", n, t, c, t, upsert_tail);
	if (!*out)
		error = rl_error_set(RL_ENOMEM, "out of memory");
cleanup:
	sqlite3_finalize(cols);
	sqlite3_free(sqlite3_str_finish(names));
	sqlite3_free(sqlite3_str_finish(cases));
	sqlite3_free(n);
	sqlite3_free(c);
	return error;
}
