/*
 * dupes.c — duplicate customers and contacts at the hub: the whole-store
 * scan (`relasi-hub duplicates scan`), the merge (`duplicates merge`) and
 * the redirects that send a late change for a merged duplicate to the
 * record that survived it (called by hub_push, hubstore.c).
 *
 * A merge is ordinary hub writes (hub_write_field, kind 'merge'), so every
 * device receives it by PULL like any change, and the audit history keeps
 * every value the survivor did not keep: the loser's record stays in the
 * history with all its fields, the survivor's replaced values are the "old"
 * side of the merge commit. The redirect itself is the synced field
 * merged_into on the loser (schema/008_merge.sql); hub_merges and
 * hub_merge_fields (schema/hub/004_duplicates.sql) are the hub's index of
 * it, with the field versions a late edit's base is mapped through.
 *
 * Which tables can be merged and which fields refer to them come from the
 * model (rl_model_mergeable, RL_FT_REF fields of every rl_model_table_at),
 * so a table added to the model later has its references moved too. Table
 * and field names in SQL are the model's own, quoted with %w.
 */
#include "hub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relasi/error.h"
#include "relasi/limits.h"
#include "relasi/merge.h"
#include "relasi/model.h"
#include "relasi/valid.h"

/* ---- values and rows ------------------------------------------------------------ */

/* A value with its own copy of any text. */
struct val {
	struct rl_value v;
	char *text;
};

static int val_from_column(sqlite3_stmt *st, int col, struct val *o)
{
	memset(o, 0, sizeof(*o));
	rl_store_column_value(st, col, &o->v);
	if (o->v.type == RL_V_TEXT && (!o->v.s || !(o->text = strdup(o->v.s))))
		return rl_error_set(RL_ENOMEM, "out of memory");
	o->v.s = o->text;
	return RL_OK;
}

/* "Empty" for the default rule: nothing there, or only an empty string. */
static int val_empty(const struct rl_value *v)
{
	return v->type == RL_V_NULL || (v->type == RL_V_TEXT && v->s[0] == '\0');
}

/* One record, each model field's value (NULL when the column is absent). */
struct rec {
	int found, deleted;
	char merged_into[RL_ID_BUFSZ];
	struct val *vals;          /* t->nfields */
	size_t n;
};

static void rec_free(struct rec *r)
{
	size_t i;

	for (i = 0; r->vals && i < r->n; i++)
		free(r->vals[i].text);
	free(r->vals);
	memset(r, 0, sizeof(*r));
}

static size_t field_index(const struct rl_table *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->nfields; i++)
		if (strcmp(t->fields[i].name, name) == 0)
			return i;
	return t->nfields;
}

static int rec_load(rl_store *s, const struct rl_table *t, const char *id, struct rec *r)
{
	char *sql = sqlite3_mprintf("SELECT * FROM \"%w\" WHERE id = ?1", t->name);
	sqlite3_stmt *st;
	size_t i;
	int error, rc, c, n;

	memset(r, 0, sizeof(*r));
	if (!sql)
		return rl_error_set(RL_ENOMEM, "out of memory");
	error = rl_store_prepare(s, sql, &st);
	sqlite3_free(sql);
	if (error < 0)
		return error;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r->found = 1;
		r->n = t->nfields;
		if (!(r->vals = calloc(t->nfields, sizeof(*r->vals))))
			error = rl_error_set(RL_ENOMEM, "out of memory");
		n = sqlite3_column_count(st);
		for (i = 0; error == 0 && i < t->nfields; i++)
			for (c = 0; c < n; c++)
				if (strcmp(sqlite3_column_name(st, c), t->fields[i].name) == 0) {
					error = val_from_column(st, c, &r->vals[i]);
					break;
				}
	} else if (rc != SQLITE_DONE) {
		error = rl_store_error(s, "reading a record");
	}
	sqlite3_reset(st);
	if (error == 0 && r->found) {
		size_t d = field_index(t, "deleted"), m = field_index(t, RL_MERGED_INTO);
		r->deleted = d < t->nfields && r->vals[d].v.type == RL_V_INT && r->vals[d].v.i == 1;
		if (m < t->nfields && r->vals[m].v.type == RL_V_TEXT)
			snprintf(r->merged_into, sizeof(r->merged_into), "%s", r->vals[m].v.s);
	}
	if (error < 0)
		rec_free(r);
	return error;
}

/* A list of record ids, read whole before the rows are written. */
struct idlist {
	char (*ids)[RL_ID_BUFSZ];
	size_t n, cap;
};

/* Every id sql (one optional text parameter) returns, appended to l. */
static int collect_ids(rl_store *s, const char *sql, const char *param, struct idlist *l)
{
	sqlite3_stmt *st;
	int error, rc;

	if ((error = rl_store_prepare(s, sql, &st)) < 0)
		return error;
	if (param)
		sqlite3_bind_text(st, 1, param, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		if (!id || !rl_id_valid(id))
			continue;          /* the schema's CHECK keeps these out */
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 64;
			void *p = realloc(l->ids, cap * sizeof(*l->ids));
			if (!p) {
				sqlite3_reset(st);
				return rl_error_set(RL_ENOMEM, "out of memory");
			}
			l->ids = p;
			l->cap = cap;
		}
		snprintf(l->ids[l->n++], RL_ID_BUFSZ, "%s", id);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? RL_OK : rl_store_error(s, "reading records");
}

int hub_field_version(rl_store *s, const char *tbl, const char *row, const char *field,
		      long long *version)
{
	sqlite3_stmt *st;
	int error, rc;

	*version = 0;
	if ((error = rl_store_prepare(s, "SELECT version FROM hub_fields WHERE tbl = ?1 AND "
				      "row_id = ?2 AND field = ?3", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, row, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, field, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*version = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? RL_OK : rl_store_error(s, "reading versions");
}

/* Run one write statement with up to three text parameters (NULL: unbound). */
static int exec3(rl_store *s, const char *sql, const char *p1, const char *p2, const char *p3,
		 long long p4, const char *what)
{
	sqlite3_stmt *st;
	int error, rc;

	if ((error = rl_store_prepare(s, sql, &st)) < 0)
		return error;
	if (p1)
		sqlite3_bind_text(st, 1, p1, -1, SQLITE_STATIC);
	if (p2)
		sqlite3_bind_text(st, 2, p2, -1, SQLITE_STATIC);
	if (p3)
		sqlite3_bind_text(st, 3, p3, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(st) >= 4)
		sqlite3_bind_int64(st, 4, p4);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? RL_OK : rl_store_error(s, what);
}

/* ---- redirects ---------------------------------------------------------------------- */

int hub_redirect(rl_store *s, const char *tbl, char row[RL_ID_BUFSZ], const char *field,
		 int64_t *base, int *moved)
{
	char next[RL_ID_BUFSZ];
	sqlite3_stmt *st;
	int error, rc, hops;

	*moved = 0;
	for (hops = 0;; hops++) {
		if ((error = rl_store_prepare(s,
		     "SELECT m.survivor, f.loser_version, f.survivor_version, "
		     "lv.value IS sv.value "
		     "FROM hub_merges m "
		     "LEFT JOIN hub_merge_fields f ON f.merge_id = m.id AND f.field = ?3 "
		     "LEFT JOIN hub_log lv ON lv.seq = f.loser_version "
		     "LEFT JOIN hub_log sv ON sv.seq = f.survivor_version "
		     "WHERE m.tbl = ?1 AND m.loser = ?2", &st)) < 0)
			return error;
		sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, row, -1, SQLITE_STATIC);
		if (field)
			sqlite3_bind_text(st, 3, field, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE) {
			sqlite3_reset(st);
			return RL_OK;
		}
		if (rc != SQLITE_ROW) {
			sqlite3_reset(st);
			return rl_store_error(s, "reading redirects");
		}
		if (hops >= RL_MAX_REDIRECT_HOPS || !sqlite3_column_text(st, 0) ||
		    !rl_id_valid((const char *)sqlite3_column_text(st, 0))) {
			sqlite3_reset(st);
			return rl_error_set(RL_ESTORE, "the redirects of %s %s are damaged (a loop, "
					    "or longer than %d)", tbl, row, RL_MAX_REDIRECT_HOPS);
		}
		snprintf(next, sizeof(next), "%s", (const char *)sqlite3_column_text(st, 0));
		/* The device had seen the loser's last value of the field, and
		 * the merge left that same value on the survivor (it was equal,
		 * or taken from the loser): its edit was made on the survivor's
		 * value. Where the survivor kept a value of its own, the base
		 * stays the loser's version: the edit meets the survivor's
		 * value as a concurrent one (a three-way merge of text against
		 * the loser's value, else a conflict), never as a fast-forward
		 * that would replace a value the rep never saw. Compared in the
		 * log, not by `chosen`, so merges recorded before this rule
		 * follow it too. */
		if (base && field && sqlite3_column_type(st, 1) != SQLITE_NULL &&
		    *base == sqlite3_column_int64(st, 1) && sqlite3_column_int(st, 3))
			*base = sqlite3_column_int64(st, 2);
		sqlite3_reset(st);         /* row is its ?2: copy only after the reset */
		memcpy(row, next, RL_ID_BUFSZ);
		*moved = 1;
	}
}

/* ---- scan ------------------------------------------------------------------------------- */

int hub_duplicates_scan(rl_store *s, long *rows, long *found)
{
	struct idlist l = { NULL, 0, 0 };
	const struct rl_table *t;
	long long cache;
	size_t k, i;
	int error;

	*rows = *found = 0;
	/* Every customer's and contact's keys are read and looked up: with
	 * the usual 8 MiB the key index is read from the file again and again
	 * (120,000 records: 3.4 -> 2.9 s with 64 MiB). */
	cache = rl_store_cache_widen(s, 65536);
	if ((error = rl_store_begin(s)) < 0) {
		rl_store_cache_restore(s, cache);
		return error;
	}
	for (k = 0; (t = rl_model_table_at(k)); k++) {
		char *sql;
		if (!rl_model_mergeable(t))
			continue;
		/* A tombstone (deleted, or merged away) is no customer to match. */
		if (!(sql = sqlite3_mprintf("DELETE FROM hub_keys WHERE tbl = ?1 AND row_id IN "
					    "(SELECT id FROM \"%w\" WHERE deleted = 1)", t->name))) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto fail;
		}
		error = exec3(s, sql, t->name, NULL, NULL, 0, "clearing match keys");
		sqlite3_free(sql);
		if (error < 0)
			goto fail;
		if (!(sql = sqlite3_mprintf("SELECT id FROM \"%w\" WHERE deleted = 0 ORDER BY id",
					    t->name))) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto fail;
		}
		l.n = 0;
		error = collect_ids(s, sql, NULL, &l);
		sqlite3_free(sql);
		if (error < 0)
			goto fail;
		for (i = 0; i < l.n; i++) {
			if ((error = hub_duplicates_check(s, t->name, l.ids[i], found)) < 0)
				goto fail;
			(*rows)++;
		}
		/* The candidates of tombstones (their keys went above), and any
		 * left open by a hub from before candidates were closed. */
		if ((error = hub_duplicates_close_stale(s, t->name)) < 0)
			goto fail;
	}
	if ((error = rl_store_commit(s)) < 0)
		goto fail;
	free(l.ids);
	rl_store_cache_restore(s, cache);
	return RL_OK;
fail:
	rl_store_rollback(s);
	free(l.ids);
	rl_store_cache_restore(s, cache);
	*rows = *found = 0;
	return error;
}

/* ---- merge --------------------------------------------------------------------------- */

/* RL_OK when the record can take part in a merge, else the reason. */
static int refuse_rec(const struct rl_table *t, const char *role, const char *id,
		      const struct rec *r)
{
	if (!r->found)
		return rl_error_set(RL_ENOTFOUND, "%s: no %s %s", role, t->noun, id);
	if (r->merged_into[0])
		return rl_error_set(RL_EINVALID, "%s: %s %.12s was merged into %.12s already (it is "
				    "a redirect now; merge %.12s instead)", role, t->noun, id,
				    r->merged_into, r->merged_into);
	if (r->deleted)
		return rl_error_set(RL_EINVALID, "%s: %s %.12s is deleted", role, t->noun, id);
	return RL_OK;
}

/* Every reference to loser in every table of the model moves to survivor.
 * *moved gets {table, field, count} per field that had any. */
static int move_references(rl_store *s, const struct rl_table *t, const char *survivor,
			   const char *loser, json_t *moved, long *total)
{
	struct rl_value to = { RL_V_TEXT, 0, 0, survivor };
	struct idlist l = { NULL, 0, 0 };
	const struct rl_table *rt;
	size_t k, f, i;
	long long seq;
	int error = RL_OK;

	for (k = 0; error == 0 && (rt = rl_model_table_at(k)); k++) {
		for (f = 0; error == 0 && f < rt->nfields; f++) {
			const struct rl_field *rf = &rt->fields[f];
			char *sql;
			if (rf->type != RL_FT_REF || !rf->ref || strcmp(rf->ref, t->name) != 0 ||
			    strcmp(rf->name, RL_MERGED_INTO) == 0)
				continue;
			if (!(sql = sqlite3_mprintf("SELECT id FROM \"%w\" WHERE \"%w\" = ?1 ORDER BY id",
						    rt->name, rf->name))) {
				error = rl_error_set(RL_ENOMEM, "out of memory");
				break;
			}
			l.n = 0;
			error = collect_ids(s, sql, loser, &l);
			sqlite3_free(sql);
			for (i = 0; error == 0 && i < l.n; i++)
				error = hub_write_field(s, rt->name, l.ids[i], rf->name, &to, "merge",
							&seq);
			if (error == 0 && l.n) {
				json_t *o = json_pack("{s:s, s:s, s:I}", "table", rt->name, "field",
						      rf->name, "count", (json_int_t)l.n);
				if (!o || json_array_append_new(moved, o) < 0)
					error = rl_error_set(RL_ENOMEM, "out of memory");
				*total += (long)l.n;
			}
		}
	}
	free(l.ids);
	return error;
}

/* The candidates: the pair itself is merged; the loser's other open pairs
 * pass to the survivor (one per pair), so no candidate names a redirect. */
static int close_candidates(rl_store *s, const char *tbl, const char *survivor, const char *loser,
			    long long merge_id, long *closed)
{
	int error;

	if ((error = exec3(s, "UPDATE hub_duplicates SET state = 'merged', merge_id = ?4 "
			   "WHERE tbl = ?1 AND state = 'open' AND ((row_a = ?2 AND row_b = ?3) OR "
			   "(row_a = ?3 AND row_b = ?2))", tbl, survivor, loser, merge_id,
			   "closing the candidate")) < 0)
		return error;
	*closed = sqlite3_changes(rl_store_db(s));
	if ((error = exec3(s, "INSERT OR IGNORE INTO hub_duplicates(tbl, row_a, row_b, reason, "
			   "created_at) SELECT d.tbl, ?2, d.other, d.reason, d.created_at FROM "
			   "(SELECT tbl, reason, created_at, CASE WHEN row_a = ?3 THEN row_b ELSE row_a "
			   " END AS other FROM hub_duplicates WHERE tbl = ?1 AND state = 'open' AND "
			   " (row_a = ?3 OR row_b = ?3)) d WHERE d.other <> ?2 AND NOT EXISTS "
			   "(SELECT 1 FROM hub_duplicates e WHERE e.tbl = d.tbl AND ((e.row_a = ?2 AND "
			   " e.row_b = d.other) OR (e.row_a = d.other AND e.row_b = ?2)))",
			   tbl, survivor, loser, 0, "passing candidates to the survivor")) < 0)
		return error;
	return exec3(s, "UPDATE hub_duplicates SET state = 'merged', merge_id = ?4 WHERE tbl = ?1 "
		     "AND state = 'open' AND (row_a = ?3 OR row_b = ?3)",
		     tbl, survivor, loser, merge_id, "closing the loser's candidates");
}

int hub_duplicates_merge(rl_store *s, const char *tbl, const char *survivor, const char *loser,
			 const struct hub_prefer *prefs, size_t nprefs, int dry_run,
			 json_t **report)
{
	const struct rl_table *t = rl_model_table(tbl);
	const struct rl_field **pf = NULL;
	struct rec sv, lv;
	json_t *rep = NULL, *fields = NULL, *moved = NULL;
	sqlite3_str *taken = NULL;
	struct rl_value merged_into = { RL_V_TEXT, 0, 0, survivor }, dead = { RL_V_INT, 1, 0, NULL };
	long long first_seq, last_seq = 0, merge_id = 0, seq, lver, sver;
	long total = 0, closed = 0, found = 0, ntaken = 0;
	char at[21], *taken_list = NULL, note[300];
	sqlite3_stmt *st;
	size_t i, k;
	int error, began = 0;

	*report = NULL;
	memset(&sv, 0, sizeof(sv));
	memset(&lv, 0, sizeof(lv));
	if (!t || strcmp(t->name, tbl) != 0 || !rl_model_mergeable(t))
		return rl_error_set(RL_EINVALID, "only customers (accounts) and contacts are merged, "
				    "not %s", tbl);
	if (!rl_id_valid(survivor) || !rl_id_valid(loser))
		return rl_error_set(RL_EINVALID, "merge needs two record ids");
	if (strcmp(survivor, loser) == 0)
		return rl_error_set(RL_EINVALID, "a record cannot be merged into itself (%s %.12s)",
				    t->noun, survivor);
	/* Preferences first: a bad one changes nothing. */
	if (nprefs > t->nfields)
		return rl_error_set(RL_EINVALID, "--prefer names %zu fields; a %s has %zu", nprefs,
				    t->noun, t->nfields);
	if (nprefs && !(pf = calloc(nprefs, sizeof(*pf))))
		return rl_error_set(RL_ENOMEM, "out of memory");
	for (i = 0; i < nprefs; i++) {
		if (!(pf[i] = rl_model_field_lookup(t, prefs[i].field))) {
			error = rl_error_set(RL_EINVALID, "--prefer %s: a %s has no such field (see "
					     "`relasi %s add --help`)", prefs[i].field, t->noun, t->noun);
			goto cleanup;
		}
		for (k = 0; k < i; k++)
			if (pf[k] == pf[i]) {
				error = rl_error_set(RL_EINVALID, "--prefer names %s twice", pf[i]->name);
				goto cleanup;
			}
	}
	if (!(rep = json_object()) || !(fields = json_array()) || !(moved = json_array()) ||
	    !(taken = sqlite3_str_new(NULL))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((error = rl_store_begin(s)) < 0)
		goto cleanup;
	began = 1;
	if ((error = rec_load(s, t, survivor, &sv)) < 0 || (error = rec_load(s, t, loser, &lv)) < 0 ||
	    (error = refuse_rec(t, "survivor", survivor, &sv)) < 0 ||
	    (error = refuse_rec(t, "loser", loser, &lv)) < 0 ||
	    (error = hub_audit_begin(s, &first_seq)) < 0)
		goto cleanup;
	rl_time_format_utc(at, rl_store_now_ms(s) / 1000);
	if ((error = rl_store_prepare(s, "INSERT INTO hub_merges(tbl, loser, survivor, first_seq, "
				      "last_seq, at) VALUES (?1, ?2, ?3, ?4, ?4, ?5)", &st)) < 0)
		goto cleanup;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, loser, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, survivor, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, first_seq);
	sqlite3_bind_text(st, 5, at, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_reset(st);
		error = rl_store_error(s, "recording the merge");
		goto cleanup;
	}
	sqlite3_reset(st);
	merge_id = sqlite3_last_insert_rowid(rl_store_db(s));

	/* The fields: the preference, else the survivor's unless it is empty. */
	for (i = 0; i < t->nfields; i++) {
		const struct rl_field *f = &t->fields[i];
		const struct rl_value *a = &sv.vals[i].v, *b = &lv.vals[i].v;
		int from_loser = -1, changed = 0;
		json_t *o;
		if (f->flags & RL_FF_SYSTEM)
			continue;          /* owner, creation, tombstone: the survivor's own */
		for (k = 0; k < nprefs; k++)
			if (pf[k] == f)
				from_loser = prefs[k].loser;
		if (from_loser < 0)
			from_loser = val_empty(a) && !val_empty(b);
		if ((error = hub_field_version(s, t->name, loser, f->name, &lver)) < 0 ||
		    (error = hub_field_version(s, t->name, survivor, f->name, &sver)) < 0)
			goto cleanup;
		if (from_loser && !rl_value_equal(a, b)) {
			if ((error = rl_model_check_value(t, f, b)) < 0 ||
			    (error = hub_write_field(s, t->name, survivor, f->name, b, "merge",
						     &sver)) < 0) {
				rl_error_prefix("taking the loser's %s", f->name);
				goto cleanup;
			}
			changed = 1;
			sqlite3_str_appendf(taken, "%s%s", ntaken++ ? ", " : "", f->name);
		}
		/* Every field's pair of versions, whichever value was kept:
		 * hub_redirect maps a late edit's base through it only where
		 * the two versions hold the same value. */
		if ((error = rl_store_prepare(s, "INSERT INTO hub_merge_fields(merge_id, field, "
					      "loser_version, survivor_version, chosen) "
					      "VALUES (?1, ?2, ?3, ?4, ?5)", &st)) < 0)
			goto cleanup;
		sqlite3_bind_int64(st, 1, merge_id);
		sqlite3_bind_text(st, 2, f->name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, lver);
		sqlite3_bind_int64(st, 4, sver);
		sqlite3_bind_text(st, 5, from_loser ? "loser" : "survivor", -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_reset(st);
			error = rl_store_error(s, "recording the merged fields");
			goto cleanup;
		}
		sqlite3_reset(st);
		if (val_empty(a) && val_empty(b))
			continue;
		o = json_pack("{s:s, s:o, s:o, s:s, s:b}", "field", f->name, "survivor", hub_value_json(a),
			      "loser", hub_value_json(b), "kept", from_loser ? "loser" : "survivor",
			      "changed", changed);
		if (!o || json_array_append_new(fields, o) < 0) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto cleanup;
		}
	}
	/* Children before the redirect: a device that pulls the merge has every
	 * re-pointed reference by the time the loser turns into a tombstone. */
	if ((error = move_references(s, t, survivor, loser, moved, &total)) < 0 ||
	    (error = hub_write_field(s, t->name, loser, RL_MERGED_INTO, &merged_into, "merge",
				     &seq)) < 0 ||
	    (error = hub_write_field(s, t->name, loser, "deleted", &dead, "merge", &seq)) < 0)
		goto cleanup;
	/* The candidates first: the pair is 'merged', not 'stale' as the
	 * check below would find it. The loser matches nothing any more; the
	 * survivor's keys follow its new values (and may meet another
	 * duplicate: a new candidate), and the candidates it took over from
	 * the loser stay open only where it still matches the other record. */
	if ((error = close_candidates(s, t->name, survivor, loser, merge_id, &closed)) < 0 ||
	    (error = exec3(s, "DELETE FROM hub_keys WHERE tbl = ?1 AND row_id = ?2", t->name, loser,
			   NULL, 0, "clearing match keys")) < 0 ||
	    (error = hub_duplicates_check(s, t->name, survivor, &found)) < 0)
		goto cleanup;
	if ((error = hub_log_last(s, &last_seq)) < 0)
		goto cleanup;
	if ((error = exec3(s, "UPDATE hub_merges SET last_seq = ?4 WHERE tbl = ?1 AND loser = ?2",
			   t->name, loser, NULL, last_seq, "recording the merge")) < 0)
		goto cleanup;
	/* The loser's open conflicts are decided by the merge: its fields
	 * went to the survivor as chosen above, and a resolution written to
	 * the loser afterwards would land on a tombstone (or, for 'deleted',
	 * set it alive again). Both values stay in the conflict record. */
	if ((error = exec3(s, "UPDATE hub_conflicts SET state = 'resolved', resolution = 'merged', "
			   "resolved_at = ?3, resolved_seq = ?4 WHERE tbl = ?1 AND row_id = ?2 AND "
			   "state = 'open'", t->name, loser, at, last_seq,
			   "closing the loser's conflicts")) < 0)
		goto cleanup;
	if (sqlite3_str_errcode(taken) != SQLITE_OK) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	taken_list = sqlite3_str_finish(taken);
	taken = NULL;
	snprintf(note, sizeof(note), "duplicate %s %.12s merged into %.12s: %s%.150s%s, %ld "
		 "references moved", t->noun, loser, survivor, ntaken ? "took " : "kept every field",
		 ntaken ? taken_list : "", ntaken ? " from it" : "", total);
	if ((error = hub_audit_mark(s, first_seq, "merge", "hub", NULL, 0, 0, note)) < 0)
		goto cleanup;
	if (json_object_set_new(rep, "table", json_string(t->name)) < 0 ||
	    json_object_set_new(rep, "survivor", json_string(survivor)) < 0 ||
	    json_object_set_new(rep, "loser", json_string(loser)) < 0 ||
	    json_object_set_new(rep, "dry_run", json_boolean(dry_run)) < 0 ||
	    json_object_set(rep, "fields", fields) < 0 ||
	    json_object_set(rep, "moved", moved) < 0 ||
	    json_object_set_new(rep, "moved_total", json_integer(total)) < 0 ||
	    json_object_set_new(rep, "changes", json_integer(last_seq - first_seq + 1)) < 0 ||
	    json_object_set_new(rep, "first_seq", dry_run ? json_null() : json_integer(first_seq)) < 0 ||
	    json_object_set_new(rep, "last_seq", dry_run ? json_null() : json_integer(last_seq)) < 0 ||
	    json_object_set_new(rep, "candidates_closed", json_integer(closed)) < 0 ||
	    json_object_set_new(rep, "new_candidates", json_integer(found)) < 0) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	/* A dry run did all of it: what it shows is exactly what a merge does. */
	if (dry_run) {
		rl_store_rollback(s);
		began = 0;
	} else if ((error = rl_store_commit(s)) < 0) {
		goto cleanup;
	}
	began = 0;
	*report = rep;
	rep = NULL;
cleanup:
	if (began)
		rl_store_rollback(s);
	if (taken)
		sqlite3_free(sqlite3_str_finish(taken));
	sqlite3_free(taken_list);
	json_decref(rep);
	json_decref(fields);
	json_decref(moved);
	rec_free(&sv);
	rec_free(&lv);
	free(pf);
	return error;
}
