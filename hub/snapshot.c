/*
 * snapshot.c — SNAPSHOT -> SNAP, CHUNK...: every synced row the hub holds,
 * as of one hub sequence number, for a new device's first sync
 * (sync/PROTOCOL.md, "Snapshot"). The device loads it in one transaction
 * instead of replaying the whole log page by page, then pulls from that
 * sequence number as usual.
 *
 * What a row carries is exactly what replaying the log leaves on a device:
 * for each field the hub has ever logged, the value logged last and its
 * sequence number (the device's rl_base). hub_fields holds that sequence
 * number (log_field() in hubstore.c writes both in one transaction) and the
 * value is read from hub_log at it, so the snapshot is the log compacted,
 * not the hub's tables re-read. Fields never logged are sent as version 0
 * and the device leaves them at their defaults, as replaying would.
 */
#include "hub.h"

#include <string.h>

#include "relasi/error.h"
#include "relasi/limits.h"
#include "relasi/model.h"
#include "relasi/wire.h"

/* An upper bound of the JSON text of a string: quotes, one escape per
 * '"' or '\', at most 6 bytes per control character (\u001f). */
static size_t json_text_bound(const char *p)
{
	size_t n = 2;

	for (; *p; p++)
		n += (unsigned char)*p < 0x20 ? 6 : (*p == '"' || *p == '\\') ? 2 : 1;
	return n;
}

static json_t *column_json(sqlite3_stmt *st, int col, size_t *bytes)
{
	switch (sqlite3_column_type(st, col)) {
	case SQLITE_INTEGER:
		*bytes += 21;
		return json_integer(sqlite3_column_int64(st, col));
	case SQLITE_FLOAT:
		*bytes += 26;
		return json_real(sqlite3_column_double(st, col));
	case SQLITE_NULL:
		*bytes += 5;
		return json_null();
	default: {
		const char *t = (const char *)sqlite3_column_text(st, col);
		*bytes += t ? json_text_bound(t) + 1 : 5;
		return t ? json_string(t) : json_null();
	}
	}
}

/* Every synced table, parents before the tables that refer to them (see
 * the loop in hub_snapshot), worked out from the model's references so
 * that a table added to the model is in the snapshot without more code.
 * Returns the count; a cycle (none in the model) keeps the model's order
 * for what is left. */
static size_t parents_first(const struct rl_table *out[RL_SNAP_MAX_TABLES])
{
	const struct rl_table *t;
	size_t n = 0, total = 0, i, f, k;
	int placed[RL_SNAP_MAX_TABLES] = { 0 }, progress = 1;

	while ((t = rl_model_table_at(total)) && total < RL_SNAP_MAX_TABLES)
		total++;
	while (n < total && progress) {
		progress = 0;
		for (i = 0; i < total; i++) {
			int ready = 1;
			if (placed[i])
				continue;
			t = rl_model_table_at(i);
			for (f = 0; f < t->nfields && ready; f++) {
				if (t->fields[f].type != RL_FT_REF || strcmp(t->fields[f].ref, t->name) == 0)
					continue;
				ready = 0;
				for (k = 0; k < n; k++)
					if (strcmp(out[k]->name, t->fields[f].ref) == 0)
						ready = 1;
			}
			if (ready) {
				out[n++] = t;
				placed[i] = progress = 1;
			}
		}
	}
	for (i = 0; i < total; i++)
		if (!placed[i])
			out[n++] = rl_model_table_at(i);
	return n;
}

struct chunker {
	hub_send_fn send;
	void *ctx;
	const struct rl_table *t;   /* the table of the open chunk (NULL: none) */
	json_t *rows;               /* its rows */
	size_t bytes;               /* bound of its JSON size */
	/* the row being assembled */
	char row[RL_ID_BUFSZ];
	json_t *vals[RL_MAX_ROW_FIELDS];
	long long seqs[RL_MAX_ROW_FIELDS];
	size_t row_bytes;
	int have_row;
	long long rows_sent, fields_sent;
};

static void clear_row(struct chunker *k)
{
	size_t i;

	for (i = 0; i < RL_MAX_ROW_FIELDS; i++) {
		json_decref(k->vals[i]);
		k->vals[i] = NULL;
		k->seqs[i] = 0;
	}
	k->have_row = 0;
	k->row_bytes = 0;
}

/* Send the open chunk (also when it is empty and last). */
static int flush_chunk(struct chunker *k, int last)
{
	json_t *cols = json_array(), *msg = NULL;
	size_t i;
	int error;

	if (!cols)
		return rl_error_set(RL_ENOMEM, "out of memory");
	/* No table yet (a hub with no data): the first table, no rows. */
	if (!k->t)
		k->t = rl_model_table("users");
	for (i = 0; i < k->t->nfields; i++)
		if (json_array_append_new(cols, json_string(k->t->fields[i].name)) < 0) {
			json_decref(cols);
			return rl_error_set(RL_ENOMEM, "out of memory");
		}
	if (!k->rows && !(k->rows = json_array())) {
		json_decref(cols);
		return rl_error_set(RL_ENOMEM, "out of memory");
	}
	msg = json_pack("{s:s, s:o, s:O, s:b}", "t", k->t->name, "cols", cols, "rows", k->rows,
			"last", last);
	if (!msg)
		return rl_error_set(RL_ENOMEM, "out of memory");
	error = k->send(k->ctx, RL_FRAME_CHUNK, msg);
	json_decref(msg);
	json_decref(k->rows);
	k->rows = NULL;
	k->bytes = 0;
	return error;
}

/* Append the assembled row to the open chunk, sending the chunk first when
 * the row is of another table or would take it past its size. */
static int finish_row(struct chunker *k, const struct rl_table *t)
{
	json_t *row;
	size_t i, n = t->nfields;
	int error;

	if (!k->have_row)
		return RL_OK;
	if (k->t && (k->t != t || json_array_size(k->rows) >= RL_MAX_CHUNK_ROWS ||
		     k->bytes + k->row_bytes > RL_SNAPSHOT_CHUNK_BYTES) &&
	    (error = flush_chunk(k, 0)) < 0)
		return error;
	k->t = t;
	if (!k->rows && !(k->rows = json_array()))
		return rl_error_set(RL_ENOMEM, "out of memory");
	/* [ID, V1..Vn, S1..Sn]: fields in the model's order, version 0 (and
	 * null) for a field never logged. */
	if (!(row = json_array()) || json_array_append_new(row, json_string(k->row)) < 0)
		goto nomem;
	for (i = 0; i < n; i++)
		if (json_array_append_new(row, k->vals[i] ? json_incref(k->vals[i]) : json_null()) < 0)
			goto nomem;
	for (i = 0; i < n; i++) {
		if (json_array_append_new(row, json_integer(k->seqs[i])) < 0)
			goto nomem;
		k->fields_sent += k->seqs[i] > 0;
	}
	if (json_array_append_new(k->rows, row) < 0) {
		row = NULL;
		goto nomem;
	}
	k->bytes += k->row_bytes + 36 + 12 * n;
	k->rows_sent++;
	clear_row(k);
	return RL_OK;
nomem:
	json_decref(row);
	return rl_error_set(RL_ENOMEM, "out of memory");
}

int hub_snapshot(rl_store *s, const struct hub_peer *p, json_t *req, hub_send_fn send,
		 void *ctx, struct hub_stats *stats)
{
	json_t *formats = json_object_get(req, "format"), *v, *msg;
	struct chunker k;
	const struct rl_table *t = NULL;
	sqlite3 *db = rl_store_db(s);
	sqlite3_stmt *st;
	long long seq = 0, rows = 0, fields = 0, hlc = 0;
	const struct rl_table *order[RL_SNAP_MAX_TABLES];
	size_t i, ti, ntables;
	int error = RL_OK, rc, speaks = 0, in_tx = 0;

	(void)p;   /* every synced row goes to every device, as the log does */
	memset(&k, 0, sizeof(k));
	k.send = send;
	k.ctx = ctx;
	if (!json_is_array(formats) || json_array_size(formats) > 16)
		return rl_error_set(RL_EPROTO, "SNAPSHOT needs a list of formats");
	json_array_foreach(formats, i, v)
		speaks |= json_is_integer(v) && json_integer_value(v) == RL_SNAPSHOT_FORMAT;
	if (!speaks)
		return rl_error_set(RL_EPROTO, "SNAPSHOT: this hub serves snapshot format %d only",
				    RL_SNAPSHOT_FORMAT);
	/* One read transaction for the counts and every row: with WAL, pushes
	 * committed meanwhile are not seen, so the snapshot is the hub exactly
	 * at seq and the device's pulls from seq bring the rest. */
	if (sqlite3_exec(db, "BEGIN DEFERRED", NULL, NULL, NULL) != SQLITE_OK)
		return rl_store_error(s, "starting the snapshot's read transaction");
	in_tx = 1;
	/* One scan of hub_fields for the three figures: grouped by its key's
	 * prefix, SQLite streams the groups without sorting. The device waits
	 * for these before its first row (a separate count of the records
	 * was a second scan: 0.6 s more on 4.7M field versions). */
	if ((error = rl_store_prepare(s, "SELECT (SELECT coalesce(max(seq), 0) FROM hub_log), "
				      "count(*), coalesce(sum(n), 0), coalesce(max(h), 0) FROM "
				      "(SELECT count(*) AS n, max(hlc) AS h FROM hub_fields "
				      "GROUP BY tbl, row_id)", &st)) < 0)
		goto cleanup;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		seq = sqlite3_column_int64(st, 0);
		rows = sqlite3_column_int64(st, 1);
		fields = sqlite3_column_int64(st, 2);
		hlc = sqlite3_column_int64(st, 3);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW) {
		error = rl_store_error(s, "counting the snapshot's records and fields");
		goto cleanup;
	}
	if (rows > RL_MAX_SNAPSHOT_ROWS || fields > RL_MAX_SNAPSHOT_FIELDS ||
	    fields > rows * RL_MAX_ROW_FIELDS) {
		/* Devices would refuse it: say so, and the device pulls the log
		 * instead on the same connection. */
		msg = json_pack("{s:i, s:s}", "format", RL_SNAPSHOT_FORMAT, "skip",
				"the hub holds more records than a snapshot carries");
		if (!msg) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto cleanup;
		}
		error = send(ctx, RL_FRAME_SNAP, msg);
		json_decref(msg);
		goto cleanup;
	}
	if (!(msg = json_pack("{s:i, s:I, s:I, s:I, s:I}", "format", RL_SNAPSHOT_FORMAT,
			      "seq", (json_int_t)seq, "hlc", (json_int_t)hlc,
			      "rows", (json_int_t)rows, "fields", (json_int_t)fields))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	error = send(ctx, RL_FRAME_SNAP, msg);
	json_decref(msg);
	if (error < 0)
		goto cleanup;
	/* Table by table, parents first, then hub_fields in key order (a
	 * record's fields together) with hub_log looked up by its rowid for the
	 * value. The order matters to the device: its foreign keys are deferred,
	 * and while a child row waits for its parent, SQLite checks every
	 * parent row inserted against the child tables — a full scan of
	 * activities for each contact when activities come first (no index on
	 * activities.contact_id); the load then never ends. */
	if ((error = rl_store_prepare(s,
	     "SELECT f.row_id, f.field, f.version, l.value FROM hub_fields f "
	     "JOIN hub_log l ON l.seq = f.version WHERE f.tbl = ?1 ORDER BY f.row_id, f.field",
	     &st)) < 0)
		goto cleanup;
	ntables = parents_first(order);
	for (ti = 0; ti < ntables && error == RL_OK; ti++) {
		t = order[ti];
		sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *row = (const char *)sqlite3_column_text(st, 0);
			const char *field = (const char *)sqlite3_column_text(st, 1);
			size_t fi;
			if (!k.have_row || strcmp(k.row, row) != 0) {
				if ((error = finish_row(&k, t)) < 0)
					break;
				snprintf(k.row, sizeof(k.row), "%s", row);
				k.row_bytes = json_text_bound(row);
				k.have_row = 1;
			}
			for (fi = 0; fi < t->nfields && strcmp(t->fields[fi].name, field) != 0; fi++)
				;
			if (fi == t->nfields) {
				error = rl_error_set(RL_ESTORE, "the hub's field versions name an "
						     "unknown field %s.%.40s", t->name, field);
				break;
			}
			json_decref(k.vals[fi]);
			if (!(k.vals[fi] = column_json(st, 3, &k.row_bytes))) {
				error = rl_error_set(RL_ENOMEM, "out of memory");
				break;
			}
			k.seqs[fi] = sqlite3_column_int64(st, 2);
		}
		sqlite3_reset(st);
		if (error == RL_OK && rc != SQLITE_DONE)
			error = rl_store_error(s, "reading the snapshot");
		if (error == RL_OK)
			error = finish_row(&k, t);
	}
	if (error == RL_OK && (k.rows_sent != rows || k.fields_sent != fields))
		/* A table missing from the order, or hub_fields pointing at a
		 * log entry that is missing: the device would refuse the totals
		 * anyway; say why here. */
		error = rl_error_set(RL_ESTORE, "the snapshot has %lld records and %lld fields, "
				     "%lld and %lld announced", k.rows_sent, k.fields_sent, rows,
				     fields);
	if (error == RL_OK)
		error = flush_chunk(&k, 1);
	if (error == RL_OK)
		stats->pulled += (long)fields;
cleanup:
	clear_row(&k);
	json_decref(k.rows);
	if (in_tx)
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);  /* read only: nothing to keep */
	return error;
}
