/*
 * outbox.c — the rep's decisions on refused changes: send a refused new
 * record again (retry) or discard refused changes, removing a discarded
 * new record the hub never had from this device (relasi/outbox.h).
 *
 * A record is "new" here when the hub never had it: it has no hub version
 * of any field (rl_base, a snapshot's rl_base_snapshot, rl_hold). Record
 * ids are made by the device that made the record, so no other device can
 * have given the hub one of its records either.
 *
 * SQL over a table or field is built only from the data model's names
 * (rl_store_preparef, %w); ids and values are always bound.
 */
#include "relasi/outbox.h"
#include "relasi/error.h"
#include "relasi/id.h"
#include "relasi/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A record named by refused changes. */
struct rec {
	const struct rl_table *t;
	char id[RL_ID_BUFSZ];
	long long first;        /* its first outbox seq: the order it was made in */
	int is_new;             /* the hub never had it */
};

struct recs {
	struct rec *v;
	size_t n, cap;
};

static void recs_free(struct recs *r)
{
	free(r->v);
	memset(r, 0, sizeof(*r));
}

static int recs_find(const struct recs *r, const struct rl_table *t, const char *id)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].t == t && strcmp(r->v[i].id, id) == 0)
			return (int)i;
	return -1;
}

static int step_done(rl_store *s, sqlite3_stmt *st, const char *doing)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? RL_OK : rl_store_error(s, doing);
}

/*
 * The seqs of one record's outbox rows (table ?1, id ?2), each state through
 * its own partial index (rl_outbox_pending, _sent, _refused): the outbox has
 * no index of every row by record (it would slow every captured change),
 * and "tbl = ?1 AND row_id = ?2" alone reads the whole outbox.
 */
#define RECORD_SEQS \
	"SELECT seq FROM rl_outbox WHERE tbl = ?1 AND row_id = ?2 AND state = 'pending' " \
	"UNION ALL SELECT seq FROM rl_outbox WHERE tbl = ?1 AND row_id = ?2 AND state = 'sent' " \
	"UNION ALL SELECT seq FROM rl_outbox WHERE tbl = ?1 AND row_id = ?2 AND state = 'refused'"

/* Run sql (a string literal) with the record's table as ?1 and id as ?2. */
static int run_on_record(rl_store *s, const char *sql, const struct rec *r, const char *doing)
{
	sqlite3_stmt *st;
	int error;

	if ((error = rl_store_prepare(s, sql, &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, r->t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->id, -1, SQLITE_STATIC);
	return step_done(s, st, doing);
}

/* How many of the record's outbox rows are in state ("sent" or "refused";
 * a literal per state, so that its partial index answers). */
static int count_rows(rl_store *s, const char *tbl, const char *id, const char *state,
		      long long *count)
{
	sqlite3_stmt *st;
	int error, rc;

	if ((error = rl_store_prepare(s, strcmp(state, "sent") == 0 ?
				      "SELECT count(*) FROM rl_outbox WHERE tbl = ?1 AND row_id = ?2 "
				      "AND state = 'sent'" :
				      "SELECT count(*) FROM rl_outbox WHERE tbl = ?1 AND row_id = ?2 "
				      "AND state = 'refused'", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*count = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? RL_OK : rl_store_error(s, "reading the outbox");
}

/* Has the hub ever had this record (a hub version of any field)? */
static int hub_never_had(rl_store *s, const char *tbl, const char *id, int *is_new)
{
	sqlite3_stmt *st;
	int error, rc;

	if ((error = rl_store_prepare(s, "SELECT EXISTS (SELECT 1 FROM rl_base WHERE tbl = ?1 AND "
				      "row_id = ?2) OR EXISTS (SELECT 1 FROM rl_base_snapshot WHERE "
				      "tbl = ?1 AND row_id = ?2) OR EXISTS (SELECT 1 FROM rl_hold "
				      "WHERE tbl = ?1 AND row_id = ?2)", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*is_new = rc == SQLITE_ROW && sqlite3_column_int(st, 0) == 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? RL_OK : rl_store_error(s, "reading the hub's versions");
}

/* A refused change of no record of the model (a table this binary does
 * not know, a malformed id: the hub refuses such a change as it is): no
 * record to send again or remove. A discard drops its refused rows; a
 * retry leaves them, counted with the edits. */
static int odd_record(const char *tbl, const char *id)
{
	const struct rl_table *t = rl_model_table(tbl);
	return !t || strcmp(t->name, tbl) != 0 || !rl_id_valid(id);
}

/* seq: that refused change alone (its id as read may be cut short). */
static int settle_odd(rl_store *s, const char *tbl, const char *id, const long long *seq,
		      int discard, struct rl_outbox_outcome *res)
{
	sqlite3_stmt *st;
	int error, rc;

	if ((error = rl_store_prepare(s, discard ?
	     "DELETE FROM rl_outbox WHERE state = 'refused' AND "
	     "(?3 IS NULL AND tbl = ?1 AND row_id = ?2 OR seq = ?3)" :
	     "SELECT count(*) FROM rl_outbox WHERE state = 'refused' AND "
	     "(?3 IS NULL AND tbl = ?1 AND row_id = ?2 OR seq = ?3)", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	if (seq)
		sqlite3_bind_int64(st, 3, *seq);
	rc = sqlite3_step(st);
	if (!discard && rc == SQLITE_ROW)
		res->edits_left += (long)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != (discard ? SQLITE_DONE : SQLITE_ROW))
		return rl_store_error(s, "reading the outbox");
	if (discard)
		res->changes += sqlite3_changes(rl_store_db(s));
	return RL_OK;
}

/* Fill e for record id of t: whether the hub never had it, its first seq. */
static int rec_fill(rl_store *s, const struct rl_table *t, const char *id, struct rec *e)
{
	sqlite3_stmt *st;
	int error;

	memset(e, 0, sizeof(*e));
	e->t = t;
	memcpy(e->id, id, strlen(id) + 1);
	if ((error = hub_never_had(s, t->name, id, &e->is_new)) < 0 ||
	    (error = rl_store_prepare(s, "SELECT min(seq) FROM (" RECORD_SEQS ")", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	e->first = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return RL_OK;
}

static int recs_append(struct recs *r, const struct rec *e)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct rec *grown = realloc(r->v, cap * sizeof(*grown));
		if (!grown)
			return rl_error_set(RL_ENOMEM, "out of memory");
		r->v = grown;
		r->cap = cap;
	}
	r->v[r->n++] = *e;
	return RL_OK;
}

/* Add record id of table tbl (a model table, a valid id: odd_record). */
static int recs_add(rl_store *s, struct recs *r, const char *tbl, const char *id)
{
	const struct rl_table *t = rl_model_table(tbl);
	struct rec e;
	int error;

	if (recs_find(r, t, id) >= 0)
		return RL_OK;
	if ((error = rec_fill(s, t, id, &e)) < 0)
		return error;
	return recs_append(r, &e);
}

static int by_first(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;
	return (x->first > y->first) - (x->first < y->first);
}

/* The records of the named refused changes (or of every refused change),
 * in the order they were made. A named change that is not refused:
 * RL_ENOTFOUND, "only refused changes can be VERB". */
static int collect(rl_store *s, const long long *seqs, size_t n, int discard,
		   struct recs *out, struct rl_outbox_outcome *res)
{
	const char *verb = discard ? "discarded" : "sent again";
	sqlite3_stmt *st;
	int error = RL_OK, rc;

	if (n == 0) {
		if ((error = rl_store_prepare(s, "SELECT DISTINCT tbl, row_id FROM rl_outbox "
					      "WHERE state = 'refused'", &st)) < 0)
			return error;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *tbl = (const char *)sqlite3_column_text(st, 0);
			const char *id = (const char *)sqlite3_column_text(st, 1);
			if ((error = odd_record(tbl, id) ? settle_odd(s, tbl, id, NULL, discard, res)
			     : recs_add(s, out, tbl, id)) < 0)
				break;
		}
		sqlite3_reset(st);
		if (error == RL_OK && rc != SQLITE_DONE)
			error = rl_store_error(s, "reading the outbox");
	}
	for (size_t i = 0; error == RL_OK && i < n; i++) {
		char tbl[64] = "", id[RL_ID_BUFSZ + 1] = "";   /* longer: odd_record */
		if ((error = rl_store_prepare(s, "SELECT tbl, row_id FROM rl_outbox WHERE seq = ?1 "
					      "AND state = 'refused'", &st)) < 0)
			break;
		sqlite3_bind_int64(st, 1, seqs[i]);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			snprintf(tbl, sizeof(tbl), "%s", (const char *)sqlite3_column_text(st, 0));
			snprintf(id, sizeof(id), "%s", (const char *)sqlite3_column_text(st, 1));
		}
		sqlite3_reset(st);
		if (rc == SQLITE_DONE)
			error = rl_error_set(RL_ENOTFOUND, "no refused change %lld in the outbox (only "
					     "refused changes can be %s)", seqs[i], verb);
		else if (rc != SQLITE_ROW)
			error = rl_store_error(s, "reading the outbox");
		else if (odd_record(tbl, id) && !discard)
			error = rl_error_set(RL_EINVALID, "refused change %lld is not of a record this "
					     "relasi knows (%s): it cannot be sent again", seqs[i], tbl);
		else if (odd_record(tbl, id))
			error = settle_odd(s, tbl, id, &seqs[i], discard, res);
		else
			error = recs_add(s, out, tbl, id);
	}
	if (error == RL_OK && out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), by_first);
	return error;
}

/* A record's name for the outcome: *label malloc'd, NULL when it has none. */
static int name_of(rl_store *s, const struct rec *r, char **label)
{
	sqlite3_stmt *st;
	const unsigned char *l;
	int error;

	*label = NULL;
	if ((error = rl_store_prepare(s, "SELECT rl_label(?1, ?2)", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, r->t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && (l = sqlite3_column_text(st, 0)) && *l &&
	    strcmp((const char *)l, r->id) != 0 && !(*label = strdup((const char *)l)))
		error = rl_error_set(RL_ENOMEM, "out of memory");
	sqlite3_reset(st);
	return error;
}

/* What people call a record, else its id: malloc'd, or NULL for lack of
 * memory. For messages: an error reading the name gives the id. */
static char *label_of(rl_store *s, const struct rec *r)
{
	char *label = NULL;

	if (name_of(s, r, &label) < 0 || !label)
		return strdup(r->id);
	return label;
}

static int in_flight(rl_store *s, const struct rec *r, const char *doing)
{
	long long sent;
	int error = count_rows(s, r->t->name, r->id, "sent", &sent);
	char *label;

	if (error < 0 || sent == 0)
		return error;
	label = label_of(s, r);
	error = rl_error_set(RL_EBUSY, "%s \"%s\" has changes on their way to the hub: sync first, "
			     "then %s it", r->t->noun, label ? label : r->id, doing);
	free(label);
	return error;
}

/* ---- retry -------------------------------------------------------------------- */

/* A new record's changes, refused and held, become one run of pending
 * changes at the end of the outbox: the newest of each field, so that the
 * hub gets the whole record in one batch, as a new record, as it is now
 * (its held edits, left where they were, would reach the hub first, as a
 * new record of their fields alone). They are stamped anew: a stamp orders
 * concurrent edits of a field, and no one else has this record; an old
 * stamp from a clock that ran ahead (the refusal's cause, maybe) would be
 * refused again, and the clock's own fix re-stamps only while the
 * device's clock is still ahead. In SQL, in four steps: the older changes
 * of a field go; the held ones are marked refused too, so that copying
 * them as pending meets no pending row of their field (rl_outbox_pending
 * is unique); the copies go to the end; the originals go. */
static int requeue(rl_store *s, const struct rec *r, long *changes)
{
	int error;

	if ((error = run_on_record(s, "DELETE FROM rl_outbox WHERE seq IN (" RECORD_SEQS ") AND "
				   "seq NOT IN (SELECT max(seq) FROM rl_outbox WHERE seq IN ("
				   RECORD_SEQS ") GROUP BY field)", r,
				   "sending a refused record again")) < 0 ||
	    (error = run_on_record(s, "UPDATE rl_outbox SET state = 'refused' WHERE tbl = ?1 AND "
				   "row_id = ?2 AND state = 'pending'", r,
				   "sending a refused record again")) < 0 ||
	    (error = run_on_record(s, "INSERT INTO rl_outbox(tbl, row_id, field, value, base, "
				   "device, hlc) SELECT tbl, row_id, field, value, base, device, "
				   "rl_hlc() FROM rl_outbox WHERE tbl = ?1 AND row_id = ?2 AND "
				   "state = 'refused' ORDER BY seq", r,
				   "sending a refused record again")) < 0)
		return error;
	*changes += sqlite3_changes(rl_store_db(s));
	return run_on_record(s, "DELETE FROM rl_outbox WHERE tbl = ?1 AND row_id = ?2 AND "
			     "state = 'refused'", r, "sending a refused record again");
}

int rl_outbox_retry(rl_store *s, const long long *seqs, size_t n, struct rl_outbox_outcome *out)
{
	struct recs r = { NULL, 0, 0 };
	int error;

	memset(out, 0, sizeof(*out));
	if ((error = rl_store_begin(s)) < 0)
		return error;
	if ((error = collect(s, seqs, n, 0, &r, out)) < 0)
		goto fail;
	for (size_t i = 0; i < r.n; i++) {
		struct rec *e = &r.v[i];
		if (!e->is_new) {
			long long refused;
			char *label;
			if (n == 0) {
				if ((error = count_rows(s, e->t->name, e->id, "refused", &refused)) < 0)
					goto fail;
				out->edits_left += (long)refused;
				continue;
			}
			label = label_of(s, e);
			error = rl_error_set(RL_EINVALID, "the hub has %s \"%s\": a refused edit is not "
					     "sent again (the %s shows the hub's value again; make "
					     "the edit again if it is allowed now)", e->t->noun,
					     label ? label : e->id, e->t->noun);
			free(label);
			goto fail;
		}
		if ((error = in_flight(s, e, "send")) < 0 ||
		    (error = requeue(s, e, &out->changes)) < 0)
			goto fail;
		out->records++;
	}
	if ((error = rl_store_commit(s)) < 0)
		goto fail;
	recs_free(&r);
	return RL_OK;
fail:
	rl_store_rollback(s);
	recs_free(&r);
	memset(out, 0, sizeof(*out));
	return error;
}

/* ---- discard ------------------------------------------------------------------ */

/* The error for dependant d of record parent_id of parent, which is not
 * refused with it: sent (changes in flight), a record made since, or an
 * edit of a record the hub has. */
static int refuse_dependant(rl_store *s, const struct rec *d, long long sent,
			    const struct rl_table *parent, const char *parent_id)
{
	struct rec p;
	char *dl, *pl;
	int error;

	memset(&p, 0, sizeof(p));
	p.t = parent;
	memcpy(p.id, parent_id, strlen(parent_id) + 1);
	dl = label_of(s, d);
	pl = label_of(s, &p);
	if (sent)
		error = rl_error_set(RL_EBUSY, "%s \"%s\" refers to %s \"%s\", which the hub never "
				     "had, and has changes on their way to the hub: sync first, then "
				     "discard again", d->t->noun, dl ? dl : d->id, parent->noun,
				     pl ? pl : parent_id);
	else if (d->is_new)
		error = rl_error_set(RL_EINVALID, "%s \"%s\" refers to %s \"%s\", which the hub "
				     "never had, and is not refused yet: sync first (the hub refuses "
				     "the %s with the %s), then discard again", d->t->noun,
				     dl ? dl : d->id, parent->noun, pl ? pl : parent_id, d->t->noun,
				     parent->noun);
	else
		error = rl_error_set(RL_EINVALID, "%s \"%s\" refers to %s \"%s\", which the hub "
				     "never had, by an edit not refused yet: sync first (the hub "
				     "refuses the edit and the %s gets the hub's value back), then "
				     "discard again", d->t->noun, dl ? dl : d->id, parent->noun,
				     pl ? pl : parent_id, d->t->noun);
	free(dl);
	free(pl);
	return error;
}

/* Add to r the records this device made that refer to r->v[from..to),
 * refused with them; RL_EINVALID / RL_EBUSY naming one that refers to
 * one of them and is not refused. Every local row that refers to a record
 * the hub never had got that value from this device, so the outbox holds
 * it: a change of a reference field whose value is the id. One read of
 * the outbox per round of the closure, not one per record. */
static int add_dependants(rl_store *s, struct recs *r, size_t from, size_t to)
{
	sqlite3_stmt *st, *cur;
	sqlite3_str *ids = sqlite3_str_new(NULL);
	char *json;
	int error = RL_OK, rc = SQLITE_DONE;

	for (size_t k = from; k < to; k++)   /* ids are 32 hex digits (recs_add) */
		sqlite3_str_appendf(ids, "%s\"%s\"", k > from ? "," : "[", r->v[k].id);
	sqlite3_str_appendall(ids, "]");
	if (!(json = sqlite3_str_finish(ids)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	if ((error = rl_store_prepare(s, "SELECT DISTINCT tbl, row_id, field, value FROM rl_outbox "
				      "WHERE value IN (SELECT value FROM json_each(?1))", &st)) < 0)
		goto cleanup;
	sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
	while (error == RL_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *tbl = (const char *)sqlite3_column_text(st, 0);
		const char *row = (const char *)sqlite3_column_text(st, 1);
		const char *id = (const char *)sqlite3_column_text(st, 3);
		const struct rl_table *t = rl_model_table(tbl);
		const struct rl_field *f = t ? rl_model_field(t, (const char *)
							      sqlite3_column_text(st, 2)) : NULL;
		const struct rl_table *parent = NULL;
		struct rec probe;
		long long refused, sent;
		int refers;
		size_t k;

		for (k = from; k < to && !parent; k++)
			if (strcmp(r->v[k].id, id) == 0)
				parent = r->v[k].t;
		if (!f || f->type != RL_FT_REF || !f->ref || !parent ||
		    strcmp(f->ref, parent->name) != 0 || !rl_id_valid(row) ||
		    recs_find(r, t, row) >= 0)
			continue;
		if ((error = rl_store_preparef(s, &cur, "SELECT 1 FROM \"%w\" WHERE id = ?1 AND "
					       "\"%w\" = ?2", t->name, f->name)) < 0)
			break;
		sqlite3_bind_text(cur, 1, row, -1, SQLITE_STATIC);
		sqlite3_bind_text(cur, 2, id, -1, SQLITE_STATIC);
		refers = sqlite3_step(cur) == SQLITE_ROW;
		sqlite3_reset(cur);
		if (!refers)            /* a refused edit, reverted; or changed since */
			continue;
		if ((error = rec_fill(s, t, row, &probe)) < 0 ||
		    (error = count_rows(s, t->name, row, "refused", &refused)) < 0 ||
		    (error = count_rows(s, t->name, row, "sent", &sent)) < 0)
			break;
		if (probe.is_new && refused > 0 && sent == 0)
			error = recs_append(r, &probe);
		else
			error = refuse_dependant(s, &probe, sent, parent, id);
	}
	sqlite3_reset(st);
	if (error == RL_OK && rc != SQLITE_DONE)
		error = rl_store_error(s, "reading the outbox");
cleanup:
	sqlite3_free(json);
	return error;
}

/* Remove a record the hub never had, and its outbox rows, with capture off:
 * tombstoned first, so that the search and nearby indexes (whose triggers
 * follow `deleted`) let it go, then deleted under the removal switch. */
static int remove_record(rl_store *s, const struct rec *r, long *changes)
{
	sqlite3_stmt *st;
	int error;

	if (rl_model_field(r->t, "deleted")) {
		if ((error = rl_store_preparef(s, &st, "UPDATE \"%w\" SET deleted = 1 WHERE id = ?1 "
					       "AND deleted = 0", r->t->name)) < 0)
			return error;
		sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
		if ((error = step_done(s, st, "removing a discarded record")) < 0)
			return error;
	}
	if ((error = rl_store_preparef(s, &st, "DELETE FROM \"%w\" WHERE id = ?1", r->t->name)) < 0)
		return error;
	sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
	if ((error = step_done(s, st, "removing a discarded record")) < 0)
		return error;
	if (strcmp(r->t->name, "accounts") == 0) {
		if ((error = rl_store_prepare(s, "DELETE FROM rl_tier_history WHERE account_id = ?1",
					      &st)) < 0)
			return error;
		sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
		if ((error = step_done(s, st, "removing a discarded record's tier history")) < 0)
			return error;
	}
	/* Its refused changes are what the rep discards (counted); its held
	 * edits go with it. */
	if ((error = run_on_record(s, "DELETE FROM rl_outbox WHERE tbl = ?1 AND row_id = ?2 AND "
				   "state = 'refused'", r, "discarding a record's changes")) < 0)
		return error;
	*changes += sqlite3_changes(rl_store_db(s));
	return run_on_record(s, "DELETE FROM rl_outbox WHERE tbl = ?1 AND row_id = ?2 AND "
			     "state = 'pending'", r, "discarding a record's held edits");
}

static int drop_refused(rl_store *s, const struct rec *r, const long long *seqs, size_t n,
			long *changes)
{
	sqlite3_stmt *st;
	int error;

	if (n == 0) {
		if ((error = run_on_record(s, "DELETE FROM rl_outbox WHERE tbl = ?1 AND row_id = ?2 "
					   "AND state = 'refused'", r, "discarding refused changes")) < 0)
			return error;
		*changes += sqlite3_changes(rl_store_db(s));
		return RL_OK;
	}
	for (size_t i = 0; i < n; i++) {
		if ((error = rl_store_prepare(s, "DELETE FROM rl_outbox WHERE seq = ?1 AND tbl = ?2 "
					      "AND row_id = ?3 AND state = 'refused'", &st)) < 0)
			return error;
		sqlite3_bind_int64(st, 1, seqs[i]);
		sqlite3_bind_text(st, 2, r->t->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, r->id, -1, SQLITE_STATIC);
		if ((error = step_done(s, st, "discarding a refused change")) < 0)
			return error;
		*changes += sqlite3_changes(rl_store_db(s));
	}
	return RL_OK;
}

int rl_outbox_discard(rl_store *s, const long long *seqs, size_t n,
		      struct rl_outbox_outcome *out)
{
	struct recs r = { NULL, 0, 0 }, gone = { NULL, 0, 0 };
	int error;
	size_t i;

	memset(out, 0, sizeof(*out));
	if ((error = rl_store_begin(s)) < 0)
		return error;
	if ((error = collect(s, seqs, n, 1, &r, out)) < 0)
		goto fail;
	for (i = 0; i < r.n; i++) {
		if (!r.v[i].is_new) {
			if ((error = drop_refused(s, &r.v[i], seqs, n, &out->changes)) < 0)
				goto fail;
			continue;
		}
		if ((error = recs_append(&gone, &r.v[i])) < 0)
			goto fail;
	}
	/* The closure, round by round: what refers to a record leaving
	 * leaves with it. */
	for (i = 0; i < gone.n;) {
		size_t to = gone.n;
		for (size_t k = i; k < to; k++)
			if ((error = in_flight(s, &gone.v[k], "discard")) < 0)
				goto fail;
		if ((error = add_dependants(s, &gone, i, to)) < 0)
			goto fail;
		i = to;
	}
	if (gone.n) {
		out->removed = calloc(gone.n, sizeof(*out->removed));
		if (!out->removed) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto fail;
		}
		out->nremoved = gone.n;
		for (i = 0; i < gone.n; i++) {
			out->removed[i].tbl = strdup(gone.v[i].t->name);
			out->removed[i].id = strdup(gone.v[i].id);
			if ((error = name_of(s, &gone.v[i], &out->removed[i].label)) < 0)
				goto fail;
			if (!out->removed[i].tbl || !out->removed[i].id) {
				error = rl_error_set(RL_ENOMEM, "out of memory");
				goto fail;
			}
		}
	}
	/* Dependants last in, first out: nothing left refers to a removed row
	 * (the store's foreign keys would refuse it). */
	rl_store_set_capture(s, 0);
	rl_store_set_removal(s, 1);
	for (i = gone.n; i-- > 0 && error == RL_OK;)
		error = remove_record(s, &gone.v[i], &out->changes);
	rl_store_set_removal(s, 0);
	rl_store_set_capture(s, 1);
	if (error < 0 || (error = rl_store_commit(s)) < 0)
		goto fail;
	recs_free(&r);
	recs_free(&gone);
	return RL_OK;
fail:
	rl_store_rollback(s);
	recs_free(&r);
	recs_free(&gone);
	rl_outbox_outcome_free(out);
	return error;
}

int rl_outbox_count_held(rl_store *s, long long *n)
{
	sqlite3_stmt *st;
	int error, rc;

	*n = 0;
	if ((error = rl_store_prepare(s, "SELECT CASE WHEN EXISTS (SELECT 1 FROM rl_outbox WHERE "
				      "state = 'refused') THEN (SELECT count(*) FROM rl_outbox WHERE "
				      "state = 'pending' AND " RL_OUTBOX_HELD_SQL("rl_outbox") ") "
				      "ELSE 0 END", &st)) < 0)
		return error;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*n = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? RL_OK : rl_store_error(s, "counting held changes");
}

void rl_outbox_outcome_free(struct rl_outbox_outcome *out)
{
	for (size_t i = 0; i < out->nremoved; i++) {
		free(out->removed[i].tbl);
		free(out->removed[i].id);
		free(out->removed[i].label);
	}
	free(out->removed);
	memset(out, 0, sizeof(*out));
}
