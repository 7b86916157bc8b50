/*
 * hubstore.c — the hub's side of sync: applying a device's batch field by
 * field with the merge rules (sync/src/merge.c), the role rule
 * (sync/src/policy.c), conflicts, edit-against-delete, duplicate
 * candidates, idempotent batches, and pulls.
 *
 * Table and field names arrive from the network: they are checked against
 * the model (relasi/model.h) before any SQL is built from them, and the SQL
 * quotes them (%w) all the same. Values are checked by rl_model_check_value.
 */
#include "hub.h"
#include "backup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/sha256.h>

#include "relasi/error.h"
#include "relasi/jsonw.h"
#include "relasi/limits.h"
#include "relasi/merge.h"
#include "relasi/record.h"
#include "relasi/model.h"
#include "relasi/policy.h"
#include "relasi/segment_rule.h"
#include "relasi/push.h"
#include "relasi/valid.h"

int hub_path(char *buf, size_t len, const char *dir, const char *name)
{
	if ((size_t)snprintf(buf, len, "%s/%s", dir, name) >= len)
		return rl_error_set(RL_EINVALID, "path too long: %s/%s", dir, name);
	return RL_OK;
}

int hub_conf_load(const char *dir, json_t **conf)
{
	char path[4096];
	json_error_t jerr;
	int error;

	*conf = NULL;
	if ((error = hub_path(path, sizeof(path), dir, HUB_CONF)) < 0)
		return error;
	if (!(*conf = json_load_file(path, 0, &jerr)))
		return rl_error_set(RL_EIO, "cannot read %s: %s", path, jerr.text);
	if (!json_is_object(*conf)) {
		json_decref(*conf);
		*conf = NULL;
		return rl_error_set(RL_EIO, "cannot read %s: not a JSON object", path);
	}
	return RL_OK;
}

const char *hub_conf_name(const json_t *conf, const char *dflt)
{
	const char *name = json_string_value(json_object_get(conf, "name"));

	return name ? name : dflt;
}

/* Match keys stored by an older fold (hub schema 14 marks them): folded
 * again by a whole scan, once, by the first relasi-hub to open the store
 * after the upgrade. A crash before the mark goes only scans again. */
static int rekey_after_upgrade(rl_store *s)
{
	sqlite3_stmt *st;
	char *mark = NULL;
	long rows, found;
	int error;

	if ((error = rl_store_meta_get(s, "hub_rekey", &mark)) < 0 || !mark)
		return error;
	free(mark);
	if ((error = hub_duplicates_scan(s, &rows, &found)) < 0 ||
	    (error = rl_store_prepare(s, "DELETE FROM rl_meta WHERE key = 'hub_rekey'", &st)) < 0)
		return error;
	error = sqlite3_step(st) == SQLITE_DONE ? RL_OK : rl_store_error(s, "upgrading match keys");
	sqlite3_reset(st);
	if (error == 0 && rows)
		fprintf(stderr, "relasi-hub: the customers' match keys were folded again after an "
			"upgrade (%ld records; %ld new duplicate candidates)\n", rows, found);
	return error;
}

int hub_store_open(rl_store **out, const char *dir, int create)
{
	char path[4096];
	int error;

	if ((error = hub_path(path, sizeof(path), dir, HUB_DB)) < 0 ||
	    (error = rl_store_open(out, path, RL_STORE_HUB | (create ? RL_STORE_CREATE : 0))) < 0)
		return error;
	if ((error = rekey_after_upgrade(*out)) < 0) {
		rl_store_close(*out);
		*out = NULL;
	}
	return error;
}

int hub_log_last(rl_store *s, long long *seq)
{
	sqlite3_stmt *st;
	int error, rc;

	*seq = 0;
	if ((error = rl_store_prepare(s, "SELECT coalesce(max(seq), 0) FROM hub_log", &st)) < 0)
		return error;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*seq = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? RL_OK : rl_store_error(s, "reading the hub log's last change");
}

static void now_iso(rl_store *s, char out[21])
{
	rl_time_format_utc(out, rl_store_now_ms(s) / 1000);
}

/* ---- values ---------------------------------------------------------------- */

static int value_from_json(json_t *j, struct rl_value *v)
{
	memset(v, 0, sizeof(*v));
	if (!j || json_is_null(j)) {
		v->type = RL_V_NULL;
	} else if (json_is_integer(j)) {
		v->type = RL_V_INT;
		v->i = json_integer_value(j);
	} else if (json_is_real(j)) {
		v->type = RL_V_REAL;
		v->d = json_real_value(j);
	} else if (json_is_string(j)) {
		v->type = RL_V_TEXT;
		v->s = json_string_value(j);
		if (strlen(v->s) != json_string_length(j))
			return rl_error_set(RL_EPROTO, "a value holds a NUL byte");
	} else {
		return rl_error_set(RL_EPROTO, "a value must be null, a number or a string");
	}
	return RL_OK;
}

json_t *hub_value_json(const struct rl_value *v)
{
	switch (v->type) {
	case RL_V_INT: return json_integer(v->i);
	case RL_V_REAL: return json_real(v->d);
	case RL_V_TEXT: return json_string(v->s);
	default: return json_null();
	}
}

/* An owned copy of a value (text duplicated). */
struct owned_value {
	struct rl_value v;
	char *text;
};

static int own_value(struct owned_value *o, const struct rl_value *v)
{
	o->v = *v;
	o->text = NULL;
	if (v->type == RL_V_TEXT) {
		if (!(o->text = strdup(v->s)))
			return rl_error_set(RL_ENOMEM, "out of memory");
		o->v.s = o->text;
	}
	return RL_OK;
}

static void free_owned(struct owned_value *o)
{
	free(o->text);
	o->text = NULL;
}

/* ---- the log ----------------------------------------------------------------- */

/* One hub_log entry; *seq its number. user NULL or "": none. */
static int log_entry(rl_store *s, const char *tbl, const char *row, const char *field,
		     const struct rl_value *v, int64_t hlc, const char *device, const char *user,
		     const char *kind, long long *seq)
{
	sqlite3_stmt *st;
	char at[21];
	int error;

	now_iso(s, at);
	if ((error = rl_store_prepare(s,
	     "INSERT INTO hub_log(tbl, row_id, field, value, hlc, device, user_id, at, kind) "
	     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, row, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, field, -1, SQLITE_STATIC);
	rl_store_bind_value(st, 4, v);
	sqlite3_bind_int64(st, 5, hlc);
	sqlite3_bind_text(st, 6, device, -1, SQLITE_STATIC);
	if (user && *user)
		sqlite3_bind_text(st, 7, user, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, at, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, kind, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_reset(st);
		return rl_store_error(s, "writing the hub log");
	}
	sqlite3_reset(st);
	*seq = sqlite3_last_insert_rowid(rl_store_db(s));
	return RL_OK;
}

/* A field's change: its log entry, and the field's version (hub_fields). */
static int log_field(rl_store *s, const char *tbl, const char *row, const char *field,
		     const struct rl_value *v, int64_t hlc, const char *device, const char *user,
		     const char *kind, long long *seq)
{
	sqlite3_stmt *st;
	int error;

	if ((error = log_entry(s, tbl, row, field, v, hlc, device, user, kind, seq)) < 0)
		return error;
	if ((error = rl_store_prepare(s,
	     "INSERT INTO hub_fields(tbl, row_id, field, version, hlc, device) "
	     "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(tbl, row_id, field) DO UPDATE SET "
	     "version = excluded.version, hlc = excluded.hlc, device = excluded.device", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, row, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, field, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, *seq);
	sqlite3_bind_int64(st, 5, hlc);
	sqlite3_bind_text(st, 6, device, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_reset(st);
		return rl_store_error(s, "writing field versions");
	}
	sqlite3_reset(st);
	return RL_OK;
}

/* UPDATE tbl SET field = v WHERE id = row (names already checked). */
/* Did the last statement fail because of the data (a constraint, a type, a
 * size) — a change to refuse — rather than the store (out of memory, I/O,
 * a full disk), which must fail the whole batch so that nothing is
 * acknowledged? After a store failure SQLite may have rolled the
 * transaction back already; going on would write outside it. */
static int data_error(rl_store *s)
{
	int e = sqlite3_extended_errcode(rl_store_db(s)) & 0xff;
	return e == SQLITE_CONSTRAINT || e == SQLITE_MISMATCH || e == SQLITE_TOOBIG ||
	       e == SQLITE_RANGE;
}

/* RL_EINVALID when the value does not fit the row (refuse the change);
 * RL_ESTORE and friends when the store failed (fail the batch). */
static int set_field(rl_store *s, const char *tbl, const char *row, const char *field,
		     const struct rl_value *v)
{
	char *sql = sqlite3_mprintf("UPDATE \"%w\" SET \"%w\" = ?1 WHERE id = ?2", tbl, field);
	sqlite3_stmt *st;
	int error;

	if (!sql)
		return rl_error_set(RL_ENOMEM, "out of memory");
	error = rl_store_prepare(s, sql, &st);
	sqlite3_free(sql);
	if (error < 0)
		return error;
	rl_store_bind_value(st, 1, v);
	sqlite3_bind_text(st, 2, row, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		error = data_error(s) ? rl_error_set(RL_EINVALID, "%s.%s: %s", tbl, field,
						     sqlite3_errmsg(rl_store_db(s)))
				      : rl_store_error(s, "updating a field");
		sqlite3_reset(st);
		return error;
	}
	sqlite3_reset(st);
	return RL_OK;
}

int hub_write_field(rl_store *s, const char *tbl, const char *row, const char *field,
		    const struct rl_value *v, const char *kind, long long *seq)
{
	int error;

	if ((error = set_field(s, tbl, row, field, v)) < 0)
		return error;
	return log_field(s, tbl, row, field, v, rl_hlc_now(rl_store_hlc(s)), "hub", NULL, kind, seq);
}

int hub_log_event(rl_store *s, const char *tbl, const char *row, const char *field,
		  const char *value, const char *device, const char *user)
{
	struct rl_value v = { value ? RL_V_TEXT : RL_V_NULL, 0, 0, value };
	long long seq;

	/* No hub_fields version: these tables are not synced. */
	return log_entry(s, tbl, row, field, &v, rl_hlc_now(rl_store_hlc(s)), device, user,
			 "admin", &seq);
}

/* ---- rows ---------------------------------------------------------------------- */

/* Load a whole row: *found, and (if found) the statement positioned on it.
 * The caller resets the statement. */
static int load_row(rl_store *s, const struct rl_table *t, const char *row, sqlite3_stmt **out,
		    int *found)
{
	char *sql = sqlite3_mprintf("SELECT * FROM \"%w\" WHERE id = ?1", t->name);
	int error, rc;

	if (!sql)
		return rl_error_set(RL_ENOMEM, "out of memory");
	error = rl_store_prepare(s, sql, out);
	sqlite3_free(sql);
	if (error < 0)
		return error;
	sqlite3_bind_text(*out, 1, row, -1, SQLITE_STATIC);
	rc = sqlite3_step(*out);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		sqlite3_reset(*out);
		return rl_store_error(s, "reading a record");
	}
	*found = rc == SQLITE_ROW;
	return RL_OK;
}

static int column_index(sqlite3_stmt *st, const char *name)
{
	int i, n = sqlite3_column_count(st);
	for (i = 0; i < n; i++)
		if (strcmp(sqlite3_column_name(st, i), name) == 0)
			return i;
	return -1;
}

/* The owner of a row: owner_id, else user_id, else "" (NULL-safe copy). */
static void row_owner(sqlite3_stmt *row, char out[RL_ID_BUFSZ])
{
	int c = column_index(row, "owner_id");
	const char *v;

	if (c < 0)
		c = column_index(row, "user_id");
	v = c >= 0 ? (const char *)sqlite3_column_text(row, c) : NULL;
	snprintf(out, RL_ID_BUFSZ, "%s", v ? v : "");
}

/* ---- duplicate candidates ------------------------------------------------------- */

/* Name key: the folded name (rl_name_fold), "|" and the folded city;
 * common company prefixes kept (they tell shops apart). NULL unless both
 * fold to something: a name alone ("Budi", no city) is no evidence of the
 * same customer, nor is a name of only punctuation ("-", "?"). */
static int name_key(const char *name, const char *city, char **out)
{
	char *n = NULL, *c = NULL;
	int error;

	*out = NULL;
	/* Values were validated as UTF-8 on the way in. */
	if ((name && (error = rl_name_fold(name, &n)) < 0) ||
	    (city && (error = rl_name_fold(city, &c)) < 0))
		goto done;
	error = RL_OK;
	if (n && *n && c && *c) {
		*out = sqlite3_mprintf("%s|%s", n, c);
		if (!*out)
			error = rl_error_set(RL_ENOMEM, "out of memory");
	}
done:
	free(n);
	free(c);
	return error;
}

/* Does a change of this field move the record's match keys? */
static int keys_field(const char *field)
{
	return strcmp(field, "email") == 0 || strcmp(field, "phone") == 0 ||
	       strcmp(field, "name") == 0 || strcmp(field, "city") == 0 ||
	       strcmp(field, "deleted") == 0;
}

/* Forget a record's match key of one kind, or all its keys (kind NULL). */
static int drop_keys(rl_store *s, const char *tbl, const char *row, const char *kind)
{
	sqlite3_stmt *st;
	int error, rc;

	if ((error = rl_store_prepare(s, "DELETE FROM hub_keys WHERE tbl = ?1 AND row_id = ?2 "
				      "AND (?3 IS NULL OR kind = ?3)", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, row, -1, SQLITE_STATIC);
	if (kind)
		sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? RL_OK : rl_store_error(s, "recording match keys");
}

/*
 * Close as 'stale' the open candidates of row (every one of tbl when row is
 * NULL) whose two records no longer share a match key: a key changed, or a
 * record was deleted or merged away (it has no keys). They stay in
 * hub_duplicates as history and open again if the pair matches once more
 * (record_key). A merge marks its own pair 'merged' before this runs.
 *
 * One record's candidates are found by two statements, one per side of
 * the pair, each through its index: a single "row_a = ?2 OR row_b = ?2"
 * (with "?2 IS NULL OR" for the whole table) made SQLite read every
 * candidate of the table, the merged and stale ones too, for every record
 * checked: for every key field a device pushed, and a `duplicates scan` of
 * 120,000 records beside 20,000 candidates took 338 s instead of 3.
 */
#define STALE_UPDATE "UPDATE hub_duplicates SET state = 'stale' WHERE tbl = ?1 " \
	"AND state = 'open' AND NOT EXISTS (SELECT 1 FROM hub_keys k1 JOIN hub_keys k2 ON " \
	"k2.tbl = k1.tbl AND k2.kind = k1.kind AND k2.key = k1.key " \
	"WHERE k1.tbl = ?1 AND k1.row_id = hub_duplicates.row_a AND " \
	"k2.row_id = hub_duplicates.row_b)"

static int close_stale(rl_store *s, const char *tbl, const char *row)
{
	static const char *const sql[] = { STALE_UPDATE, STALE_UPDATE " AND row_a = ?2",
					   STALE_UPDATE " AND row_b = ?2" };
	sqlite3_stmt *st;
	size_t i;
	int error, rc;

	for (i = row ? 1 : 0; i < (row ? 3u : 1u); i++) {
		if ((error = rl_store_prepare(s, sql[i], &st)) < 0)
			return error;
		sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
		if (row)
			sqlite3_bind_text(st, 2, row, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return rl_store_error(s, "closing candidates that no longer match");
	}
	return RL_OK;
}

int hub_duplicates_close_stale(rl_store *s, const char *tbl)
{
	return close_stale(s, tbl, NULL);
}

/* The pair's candidate, closed as stale, matches again: open it (the same
 * row, so it is never listed twice). *reopened: 1 when it was. */
static int reopen(rl_store *s, const char *tbl, const char *a, const char *b, const char *kind,
		  int *reopened)
{
	sqlite3_stmt *st;
	int error, rc;

	*reopened = 0;
	if ((error = rl_store_prepare(s, "UPDATE hub_duplicates SET state = 'open', reason = ?4 "
				      "WHERE tbl = ?1 AND state = 'stale' AND ((row_a = ?2 AND "
				      "row_b = ?3) OR (row_a = ?3 AND row_b = ?2))", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, b, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, kind, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return rl_store_error(s, "opening a candidate again");
	*reopened = sqlite3_changes(rl_store_db(s)) > 0;
	return RL_OK;
}

static int record_key(rl_store *s, const char *tbl, const char *row, const char *kind,
		      const char *key, long *found)
{
	sqlite3_stmt *st;
	char at[21];
	int error, rc;

	if (!key || !*key)          /* emptied: its old key matches nothing any more */
		return drop_keys(s, tbl, row, kind);
	if ((error = rl_store_prepare(s, "SELECT row_id FROM hub_keys WHERE tbl = ?1 AND kind = ?2 "
				      "AND key = ?3 AND row_id <> ?4", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, row, -1, SQLITE_STATIC);
	now_iso(s, at);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_stmt *ins;
		char other[RL_ID_BUFSZ];
		int reopened;
		snprintf(other, sizeof(other), "%s", (const char *)sqlite3_column_text(st, 0));
		if ((error = reopen(s, tbl, row, other, kind, &reopened)) < 0)
			break;
		if (reopened) {
			(*found)++;
			continue;
		}
		/* One candidate per pair, whichever order it was found in:
		 * `duplicates scan` meets every pair from both sides. */
		if ((error = rl_store_prepare(s, "INSERT OR IGNORE INTO hub_duplicates(tbl, row_a, "
					      "row_b, reason, created_at) SELECT ?1, ?2, ?3, ?4, ?5 "
					      "WHERE NOT EXISTS (SELECT 1 FROM hub_duplicates WHERE "
					      "tbl = ?1 AND row_a = ?3 AND row_b = ?2)",
					      &ins)) < 0)
			break;
		sqlite3_bind_text(ins, 1, tbl, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 2, other, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 3, row, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 4, kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 5, at, -1, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE)
			error = rl_store_error(s, "recording a duplicate");
		else if (sqlite3_changes(rl_store_db(s)) > 0)
			(*found)++;
		sqlite3_reset(ins);
		if (error < 0)
			break;
	}
	sqlite3_reset(st);
	if (error < 0)
		return error;
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return rl_store_error(s, "looking for duplicates");
	/* An unchanged key is not written again: a `duplicates scan` of
	 * 120,000 records rewrote every key's page (4.9 -> 3.4 s without). */
	if ((error = rl_store_prepare(s, "INSERT INTO hub_keys(tbl, row_id, kind, key) "
				      "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(tbl, row_id, kind) "
				      "DO UPDATE SET key = excluded.key WHERE key IS NOT excluded.key",
				      &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, row, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? RL_OK : rl_store_error(s, "recording match keys");
}

/* New or changed customer / contact: look for others with the same e-mail,
 * phone, or name + city; record candidates for the admin. (hub.h) */
int hub_duplicates_check(rl_store *s, const char *tbl, const char *row, long *found_out)
{
	sqlite3_stmt *st;
	char *email = NULL, *phone = NULL, *key = NULL;
	long found = 0;
	int found_row, error, ce, cp, cn, cc;

	if (strcmp(tbl, "accounts") != 0 && strcmp(tbl, "contacts") != 0)
		return RL_OK;
	if ((error = load_row(s, rl_model_table(tbl), row, &st, &found_row)) < 0)
		return error;
	if (!found_row) {
		sqlite3_reset(st);
		return RL_OK;
	}
	ce = column_index(st, "email");
	cp = column_index(st, "phone");
	cn = column_index(st, "name");
	cc = column_index(st, "city");
	/* A deleted record is no one's duplicate: it keeps no keys (they come
	 * back with it if an edit against the delete keeps it alive). */
	if (sqlite3_column_int(st, column_index(st, "deleted"))) {
		sqlite3_reset(st);
		if ((error = drop_keys(s, tbl, row, NULL)) < 0)
			return error;
		return close_stale(s, tbl, row);
	}
	/* A key silently missing would be a duplicate silently missed: every
	 * allocation here is checked. */
	if (sqlite3_column_type(st, ce) != SQLITE_NULL &&
	    !(email = sqlite3_column_text(st, ce) ? strdup((const char *)sqlite3_column_text(st, ce))
						  : NULL))
		error = rl_error_set(RL_ENOMEM, "out of memory");
	if (sqlite3_column_type(st, cp) != SQLITE_NULL &&
	    !(phone = sqlite3_column_text(st, cp) ? strdup((const char *)sqlite3_column_text(st, cp))
						  : NULL))
		error = rl_error_set(RL_ENOMEM, "out of memory");
	if (error == 0 && sqlite3_column_type(st, cn) != SQLITE_NULL) {
		if (!sqlite3_column_text(st, cn) || (sqlite3_column_type(st, cc) != SQLITE_NULL &&
						     !sqlite3_column_text(st, cc)))
			error = rl_error_set(RL_ENOMEM, "out of memory");
		else
			error = name_key((const char *)sqlite3_column_text(st, cn),
					 (const char *)sqlite3_column_text(st, cc), &key);
	}
	sqlite3_reset(st);
	if (error == 0 &&
	    (error = record_key(s, tbl, row, "email", email, &found)) == 0 &&
	    (error = record_key(s, tbl, row, "phone", phone, &found)) == 0)
		error = record_key(s, tbl, row, "name_city", key, &found);
	if (error == 0)
		error = close_stale(s, tbl, row);
	if (found_out)
		*found_out += found;
	free(email);
	free(phone);
	sqlite3_free(key);
	return error;
}

/* ---- applying a batch ------------------------------------------------------------ */

struct change {
	const char *tbl, *row, *field;
	const struct rl_table *t;
	const struct rl_field *f;
	struct rl_value value;
	int64_t base, hlc;
	const char *status;     /* the answer, filled by apply (NULL: none yet): */
	long long version;      /*   its "v" */
	char *reason;           /*   its "reason" (owned), or NULL */
	int lost_reason;        /* out of memory copying the reason: the batch fails */
	int dangling;           /* refers to a record the hub does not have */
	int redirected;         /* row was a merged duplicate: now its survivor */
	int gone;               /* a change only the loser itself had (see redirect_changes) */
	char row_buf[RL_ID_BUFSZ], ref_buf[RL_ID_BUFSZ];   /* redirected row / reference */
	char loser[RL_ID_BUFSZ];                           /* the row it named (redirected) */
	/* A field of a pair (relasi/model.h, rl_model_partner): the batch's
	 * change to its partner, and the pair's decision, made once for both
	 * (decide_pair): 0 not yet, PAIR_APART each decided alone, PAIR_CONFLICT
	 * one conflict for the pair, the incoming side kept for now if
	 * pair_incoming_wins. conflict: the conflict this change recorded. */
	struct change *partner;
	int pair, pair_incoming_wins;
	long long conflict;
};

enum { PAIR_APART = 1, PAIR_CONFLICT = 2 };

/* A reference value (field f) that names a merged duplicate names its
 * survivor instead: v->s then points into buf. A pushed change's and an
 * admin's decision's alike. */
static int redirect_ref(rl_store *s, const struct rl_field *f, struct rl_value *v,
			char buf[RL_ID_BUFSZ])
{
	const struct rl_table *rt;
	char id[RL_ID_BUFSZ];    /* v->s may be buf already (a batch applied again) */
	int error, moved = 0;

	if (f->type != RL_FT_REF || !f->ref || strcmp(f->name, RL_MERGED_INTO) == 0 ||
	    v->type != RL_V_TEXT || !rl_id_valid(v->s) || !(rt = rl_model_table(f->ref)) ||
	    !rl_model_mergeable(rt))
		return RL_OK;
	snprintf(id, sizeof(id), "%s", v->s);
	if ((error = hub_redirect(s, rt->name, id, NULL, NULL, &moved)) < 0)
		return error;
	if (moved) {
		memcpy(buf, id, sizeof(id));
		v->s = buf;
	}
	return RL_OK;
}

/*
 * A change that names a merged duplicate — its row, or a reference to it —
 * comes from a device that had not pulled the merge yet. It is applied to
 * the survivor (hub_redirect: the row, and the base when the device had
 * seen the loser's last value), so it is never lost and never brings the
 * loser back. The loser's own tombstone and creation time are its alone:
 * a late delete or created_at of the loser is answered "same" (gone).
 * Idempotent: hub_push may run it again on a retried transaction.
 */
static int redirect_changes(rl_store *s, struct change *cs, size_t n)
{
	sqlite3_stmt *st;
	size_t i;
	int error, moved, rc;

	/* No merge yet (the common case): no lookup per change. */
	if ((error = rl_store_prepare(s, "SELECT 1 FROM hub_merges LIMIT 1", &st)) < 0)
		return error;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return RL_OK;
	if (rc != SQLITE_ROW)
		return rl_store_error(s, "reading redirects");
	for (i = 0; i < n; i++) {
		struct change *c = &cs[i];
		const struct rl_table *t = rl_model_table(c->tbl);
		const struct rl_field *f;
		char buf[RL_ID_BUFSZ];

		if (!t || strcmp(t->name, c->tbl) != 0 || !rl_id_valid(c->row) ||
		    !(f = rl_model_field(t, c->field)))
			continue;          /* refused later, with the reason */
		if (rl_model_mergeable(t) && !c->redirected) {
			int64_t base = c->base;
			snprintf(buf, sizeof(buf), "%s", c->row);
			if ((error = hub_redirect(s, t->name, buf, c->field, &base, &moved)) < 0)
				return error;
			if (moved) {
				snprintf(c->loser, sizeof(c->loser), "%s", c->row);
				memcpy(c->row_buf, buf, sizeof(buf));
				c->row = c->row_buf;
				c->base = base;
				c->redirected = 1;
				c->gone = strcmp(c->field, "deleted") == 0 ||
					  strcmp(c->field, "created_at") == 0;
			}
		}
		if ((error = redirect_ref(s, f, &c->value, c->ref_buf)) < 0)
			return error;
	}
	return RL_OK;
}

/* Answer a change (status a literal). The reason is copied: callers pass
 * messages that change under them (rl_error_message, a stack buffer). */
static void answer(struct change *c, const char *status, long long version, const char *reason)
{
	free(c->reason);
	c->status = status;
	c->version = version;
	c->reason = reason ? strdup(reason) : NULL;
	c->lost_reason = reason && !c->reason;
}

/* As if never decided (the batch is applied again): the pair's decision too. */
static void unanswer(struct change *c)
{
	answer(c, NULL, 0, NULL);
	c->partner = NULL;
	c->pair = c->pair_incoming_wins = 0;
	c->conflict = 0;
}

static void refuse(struct change *c, const char *reason, struct hub_stats *stats)
{
	answer(c, "refused", 0, reason);
	stats->refused++;
}

static int parse_change(json_t *j, struct change *c)
{
	json_t *t = json_object_get(j, "t"), *r = json_object_get(j, "r");
	json_t *f = json_object_get(j, "f"), *b = json_object_get(j, "b");
	json_t *h = json_object_get(j, "h");

	memset(c, 0, sizeof(*c));
	if (!json_is_object(j) || !json_is_string(t) || !json_is_string(r) || !json_is_string(f) ||
	    !json_is_integer(b) || !json_is_integer(h) || !json_object_get(j, "v"))
		return rl_error_set(RL_EPROTO, "a change needs t, r, f, v, b and h");
	c->tbl = json_string_value(t);
	c->row = json_string_value(r);
	c->field = json_string_value(f);
	c->base = json_integer_value(b);
	c->hlc = json_integer_value(h);
	if (c->base < 0 || c->hlc < 0)
		return rl_error_set(RL_EPROTO, "negative base or stamp");
	return value_from_json(json_object_get(j, "v"), &c->value);
}

struct field_state {
	int exists;
	long long version;
	int64_t hlc;
	char device[RL_ID_BUFSZ + 8];
};

static int get_field_state(rl_store *s, const struct change *c, struct field_state *fs)
{
	sqlite3_stmt *st;
	int error, rc;

	memset(fs, 0, sizeof(*fs));
	if ((error = rl_store_prepare(s, "SELECT version, hlc, device FROM hub_fields "
				      "WHERE tbl = ?1 AND row_id = ?2 AND field = ?3", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, c->tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->row, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, c->field, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		fs->exists = 1;
		fs->version = sqlite3_column_int64(st, 0);
		fs->hlc = sqlite3_column_int64(st, 1);
		snprintf(fs->device, sizeof(fs->device), "%s", (const char *)sqlite3_column_text(st, 2));
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? RL_OK : rl_store_error(s, "field state");
}

/* Step a prepared one-column query: its value as an owned copy, *found
 * whether there was a row; the statement is reset either way. */
static int step_value(rl_store *s, sqlite3_stmt *st, struct owned_value *out, int *found,
		      const char *what)
{
	struct rl_value v;
	int error = RL_OK, rc;

	*found = 0;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rl_store_column_value(st, 0, &v);
		error = own_value(out, &v);
		*found = 1;
	} else if (rc != SQLITE_DONE) {
		error = rl_store_error(s, what);
	}
	sqlite3_reset(st);
	return error;
}

/* The value a field had at version seq (from the log), owned copy. */
static int value_at(rl_store *s, long long seq, struct owned_value *out, int *found)
{
	sqlite3_stmt *st;
	int error;

	*found = 0;
	if ((error = rl_store_prepare(s, "SELECT value FROM hub_log WHERE seq = ?1", &st)) < 0)
		return error;
	sqlite3_bind_int64(st, 1, seq);
	return step_value(s, st, out, found, "reading a field's history");
}

static int record_conflict(rl_store *s, const struct hub_peer *p, const struct change *c,
			   const struct field_state *fs, const struct rl_value *hub_value,
			   const char *winner, const char *kind, long long *id)
{
	struct owned_value base = { { RL_V_NULL, 0, 0, NULL }, NULL };
	sqlite3_stmt *st;
	char at[21];
	int error, found = 0;

	if (c->base > 0 && (error = value_at(s, c->base, &base, &found)) < 0)
		return error;
	now_iso(s, at);
	if ((error = rl_store_prepare(s,
	     "INSERT INTO hub_conflicts(tbl, row_id, field, base_version, base_value, hub_value, "
	     "hub_version, hub_device, hub_hlc, in_value, in_device, in_user, in_hlc, winner, kind, "
	     "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
	     &st)) < 0)
		goto cleanup;
	sqlite3_bind_text(st, 1, c->tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->row, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, c->field, -1, SQLITE_STATIC);
	if (c->base > 0)
		sqlite3_bind_int64(st, 4, c->base);
	rl_store_bind_value(st, 5, &base.v);
	rl_store_bind_value(st, 6, hub_value);
	if (fs->exists) {
		sqlite3_bind_int64(st, 7, fs->version);
		sqlite3_bind_text(st, 8, fs->device, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 9, fs->hlc);
	}
	rl_store_bind_value(st, 10, &c->value);
	sqlite3_bind_text(st, 11, p->device, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 12, p->user, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 13, c->hlc);
	sqlite3_bind_text(st, 14, winner, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 15, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 16, at, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		error = rl_store_error(s, "recording a conflict");
	*id = sqlite3_last_insert_rowid(rl_store_db(s));
	sqlite3_reset(st);
cleanup:
	free_owned(&base);
	return error;
}

/* A conflict decided as it is recorded (resolution 'latest': the later
 * stage move stands), at version seq of the field. */
static int conflict_settle(rl_store *s, long long id, const char *resolution,
			   const struct rl_value *kept, long long seq)
{
	sqlite3_stmt *st;
	char at[21];
	int error, rc;

	if ((error = rl_store_prepare(s, "UPDATE hub_conflicts SET state = 'resolved', "
				      "resolution = ?2, resolved_value = ?3, resolved_at = ?4, "
				      "resolved_seq = ?5, left_version = ?5 WHERE id = ?1", &st)) < 0)
		return error;
	now_iso(s, at);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, resolution, -1, SQLITE_STATIC);
	rl_store_bind_value(st, 3, kept);
	sqlite3_bind_text(st, 4, at, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, seq);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? RL_OK : rl_store_error(s, "recording a conflict");
}

/* The version conflict id left its field at: the provisional winner's.
 * A resolution checks it (hub_conflict_resolve). cause_t / cause_row: the
 * record that brought a deleted one back (revive_row), or NULL. */
static int conflict_left(rl_store *s, long long id, long long version,
			 const struct rl_table *cause_t, const char *cause_row)
{
	sqlite3_stmt *st;
	int error, rc;

	if ((error = rl_store_prepare(s, "UPDATE hub_conflicts SET left_version = ?2, "
				      "cause_tbl = ?3, cause_row = ?4 WHERE id = ?1", &st)) < 0)
		return error;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, version);
	if (cause_t) {
		sqlite3_bind_text(st, 3, cause_t->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, cause_row, -1, SQLITE_STATIC);
	} else {
		sqlite3_bind_null(st, 3);
		sqlite3_bind_null(st, 4);
	}
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? RL_OK : rl_store_error(s, "recording a conflict");
}

/* A value the hub takes for a field: what the model says (type, bounds,
 * lists), and for a segment's rule or a campaign's copy of it, a rule that
 * parses (relasi/segment_rule.h): a device checks the rules it saves, but
 * a raw push or an admin's `conflicts resolve --value` was stored as it
 * came, and every device then failed to show the segment. RL_EINVALID
 * naming the field and the parser's position. Only what enters the hub is
 * checked so: a rule already stored is pulled as it is. */
static int check_entry(const struct rl_table *t, const struct rl_field *f,
		       const struct rl_value *v)
{
	struct sr_rule *rule = NULL;
	int error;

	if ((error = rl_model_check_value(t, f, v)) < 0)
		return error;
	if (strcmp(f->name, "rule") != 0 || v->type != RL_V_TEXT ||
	    (strcmp(t->name, "segments") != 0 && strcmp(t->name, "campaigns") != 0))
		return RL_OK;
	if ((error = sr_parse(&rule, v->s, strlen(v->s))) < 0) {
		rl_error_prefix("%s.rule", t->name);
		return error;
	}
	sr_free(rule);
	return RL_OK;
}

/* A value is valid for its field and the role may write it. */
static const char *vet(const struct hub_peer *p, struct change *c, int creating,
		       const char *owner)
{
	if (check_entry(c->t, c->f, &c->value) < 0)
		return rl_error_message();
	/* Redirects are the hub's: a device (even an admin's) that set one
	 * would hide a live record from everyone without a merge. */
	if (strcmp(c->field, RL_MERGED_INTO) == 0)
		return "only the hub's duplicate merge sets merged_into";
	return rl_policy_refusal(p->role, p->user, c->tbl, creating, owner, c->field, &c->value);
}

/* Is change i's field set again later in the run? */
static int superseded(struct change **cs, size_t n, size_t i)
{
	size_t j;

	for (j = i + 1; j < n; j++)
		if (strcmp(cs[j]->field, cs[i]->field) == 0)
			return 1;
	return 0;
}

/* Change i of a run (rl_store_prepare_create). */
static const char *change_at(const void *run, size_t i, const struct rl_value **value)
{
	const struct change *c = ((struct change *const *)run)[i];

	*value = &c->value;
	return c->field;
}

/*
 * A new record is taken whole or not at all: if one of its n changes was
 * refused on its own (a stamp too far ahead, a reference to a record the
 * hub does not have), every other one is refused too, naming that field
 * and its reason, and nothing is inserted, logged or matched as a
 * duplicate. Returns 1 when it refused the record.
 *
 * Optional fields included: a refused field of a new record has no hub
 * version, so the device keeps its own value (record_pushed in
 * sync/src/devsync.c rewinds only to a base) while the hub and every other
 * device hold the record without it for good: a task without its owner,
 * a task cut loose from its deal, never converging. Refused whole,
 * the record stays on the rep's device as made, each change refused and
 * visible in `relasi status`, for the rep to settle (docs/sync.md,
 * "A new record is decided whole"). apply_create treats the role rule,
 * the model's value checks and the row's constraints the same way.
 */
static int refuse_create(struct change *cs, size_t n, struct hub_stats *stats)
{
	const struct change *bad = NULL;
	char why[512];
	size_t i;

	for (i = 0; i < n && !bad; i++)
		if (cs[i].status && strcmp(cs[i].status, "refused") == 0)
			bad = &cs[i];
	if (!bad)
		return 0;
	snprintf(why, sizeof(why), "not created: its %s was refused (%s)", bad->field,
		 bad->reason ? bad->reason : "refused by the hub");
	for (i = 0; i < n; i++)
		if (!cs[i].status)
			refuse(&cs[i], why, stats);
	return 1;
}

/*
 * A new record that belongs to a deleted one (device B, offline, logs a
 * visit or adds a deal for a customer device A deleted and synced first)
 * is new work for it: edit against delete (apply_update). The record it
 * belongs to — its customer (account_id); with no customer, what it names
 * (rl_record_belongs_by, the rule a cascade deletes by) — stays alive and
 * it is a conflict: 'deleted' = 0 logged as a 'merge' that every device
 * pulls, and an edit-delete conflict for the admin, the new record's
 * device and user on the incoming side. Up the chain (a task of a deleted
 * deal of a deleted customer brings back both), each revival its own
 * conflict; a live owner ends the chain (whatever is above it was settled
 * without this record). `conflicts resolve --keep` deletes that owner
 * again and the new record stays as it is, under a deleted owner, as a
 * dependant made after a cascade did before (docs/sync.md, "A dependant
 * the deleting device never saw"). A merged duplicate stays deleted:
 * references to it name its survivor (redirect_changes).
 *
 * apply_create revives only once the record's INSERT has passed the role
 * rule and the row's constraints, so a refused new record revives nothing;
 * a reference to a record the hub does not have refuses it at the commit,
 * and the batch is applied again without it (find_dangling).
 */

/* The references forming no cycle (a customer belongs to nothing), a task
 * of a deal of a customer is the longest chain (2); this bounds a store
 * that says otherwise. */
#define REVIVE_MAX_DEPTH 8
/* What one record belongs to: its customer, or with none its contact and
 * its deal (the model's belonging references, fewer than this). */
#define REVIVE_MAX_OWNERS 4

/* Is record id of t deleted, and not a merged duplicate? A record the hub
 * does not have is not (*dead 0). */
static int owner_dead(rl_store *s, const struct rl_table *t, const char *id, int *dead)
{
	sqlite3_stmt *st;
	int error, rc;

	*dead = 0;
	if (!rl_model_field(t, "deleted"))
		return RL_OK;
	if ((error = rl_store_preparef(s, &st, "SELECT 1 FROM \"%w\" WHERE id = ?1 AND "
				       "deleted = 1%s", t->name, rl_model_field(t, RL_MERGED_INTO)
				       ? " AND " RL_MERGED_INTO " IS NULL" : "")) < 0)
		return error;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return rl_store_error(s, "reading a record's owner");
	*dead = rc == SQLITE_ROW;
	return RL_OK;
}

/* Edit against delete, for p's edit of deleted row (tbl, row) or its new
 * record that belongs to it, stamped hlc: the row stays alive, logged as a
 * 'merge' by p, and an edit-delete conflict won for now by p's side. Its
 * match keys are the caller's to bring back (hub_duplicates_check).
 * cause_t / cause_row: the record of p's that belongs to the row and
 * brought it back, which the conflict names for the admin (hub schema
 * 15); NULL when it is p's edit of the row itself. */
static int revive_row(rl_store *s, const struct hub_peer *p, const char *tbl, const char *row,
		      int64_t hlc, const struct rl_table *cause_t, const char *cause_row)
{
	struct rl_value alive = { RL_V_INT, 0, 0, NULL }, dead = { RL_V_INT, 1, 0, NULL };
	struct change dc;
	struct field_state dfs;
	long long seq, conflict;
	int error;

	memset(&dc, 0, sizeof(dc));
	dc.tbl = tbl;
	dc.row = row;
	dc.field = "deleted";
	dc.value = alive;
	dc.hlc = hlc;
	/* No base: an edit's base is its own field's, and the version of
	 * 'deleted' both had seen would cost a scan of the log. The admin's
	 * view says what it was: alive (hub/main.c). */
	dc.base = 0;
	if ((error = get_field_state(s, &dc, &dfs)) < 0 ||
	    (error = record_conflict(s, p, &dc, &dfs, &dead, "incoming", "edit-delete",
				     &conflict)) < 0 ||
	    (error = set_field(s, tbl, row, "deleted", &alive)) < 0 ||
	    (error = log_field(s, tbl, row, "deleted", &alive, hlc, p->device, p->user, "merge",
			       &seq)) < 0)
		return error;
	return conflict_left(s, conflict, seq, cause_t, cause_row);
}

static int revive_owner(rl_store *s, const struct hub_peer *p, const struct rl_table *t,
			const char *id, int64_t hlc, int depth, const struct rl_table *by_t,
			const char *by_id, struct hub_stats *stats);

/* What record id of t belongs to (its customer; with none, what it names),
 * revived if deleted, and up the chain: a record kept alive by new work or
 * by an edit against its delete is shown and counted under its customer,
 * which must be alive too (a deal kept alive under a deleted customer was
 * in no report and no pipeline). */
static int revive_owners_of(rl_store *s, const struct hub_peer *p, const struct rl_table *t,
			    const char *id, int64_t hlc, int depth, struct hub_stats *stats)
{
	char up_id[REVIVE_MAX_OWNERS][RL_ID_BUFSZ];     /* what it belongs to in turn */
	const struct rl_table *up_t[REVIVE_MAX_OWNERS];
	sqlite3_stmt *row;
	size_t k, n = 0;
	int error, found, ca;

	if ((error = load_row(s, t, id, &row, &found)) < 0)
		return error;
	ca = found ? column_index(row, "account_id") : -1;
	for (k = 0; found && k < t->nfields && n < REVIVE_MAX_OWNERS; k++) {
		const struct rl_field *f = &t->fields[k];
		int c = column_index(row, f->name);
		if (c < 0 || sqlite3_column_type(row, c) != SQLITE_TEXT ||
		    !rl_record_belongs_by(t, f, ca >= 0 && sqlite3_column_type(row, ca) != SQLITE_NULL) ||
		    !(up_t[n] = rl_model_table(f->ref)))
			continue;
		snprintf(up_id[n++], RL_ID_BUFSZ, "%s", (const char *)sqlite3_column_text(row, c));
	}
	sqlite3_reset(row);
	for (k = 0; k < n && error == 0; k++)
		error = revive_owner(s, p, up_t[k], up_id[k], hlc, depth + 1, t, id, stats);
	return error;
}

/* Revive record id of t if deleted, for p's record by_id of by_t that
 * belongs to it, stamped hlc (see above), and in turn what it belongs to. */
static int revive_owner(rl_store *s, const struct hub_peer *p, const struct rl_table *t,
			const char *id, int64_t hlc, int depth, const struct rl_table *by_t,
			const char *by_id, struct hub_stats *stats)
{
	int error, is_dead;

	if (depth > REVIVE_MAX_DEPTH)
		return RL_OK;
	if ((error = owner_dead(s, t, id, &is_dead)) < 0 || !is_dead)
		return error;
	if ((error = revive_row(s, p, t->name, id, hlc, by_t, by_id)) < 0 ||
	    /* its match keys come back with it */
	    (error = hub_duplicates_check(s, t->name, id, NULL)) < 0)
		return error;
	stats->conflicts++;
	return revive_owners_of(s, p, t, id, hlc, depth, stats);
}

static int revive_owners(rl_store *s, const struct hub_peer *p, struct change **cs, size_t n,
			 struct hub_stats *stats)
{
	const struct rl_value *account = NULL, *deleted = NULL;
	size_t i;
	int error = RL_OK;

	for (i = 0; i < n; i++) {
		if (strcmp(cs[i]->field, "account_id") == 0)
			account = &cs[i]->value;
		else if (strcmp(cs[i]->field, "deleted") == 0)
			deleted = &cs[i]->value;
	}
	if (deleted && deleted->type == RL_V_INT && deleted->i != 0)
		return RL_OK;
	for (i = 0; i < n && error == 0; i++) {
		const struct rl_table *rt;
		if (superseded(cs, n, i) || cs[i]->value.type != RL_V_TEXT ||
		    !rl_record_belongs_by(cs[i]->t, cs[i]->f, account && account->type != RL_V_NULL) ||
		    !(rt = rl_model_table(cs[i]->f->ref)))
			continue;
		error = revive_owner(s, p, rt, cs[i]->value.s, cs[i]->hlc, 1, cs[i]->t, cs[i]->row,
				     stats);
	}
	return error;
}

/* Create a row from the n changes of one new record (none answered yet);
 * they are decided together, as in refuse_create. */
static int apply_create(rl_store *s, const struct hub_peer *p, struct change **cs, size_t n,
			struct hub_stats *stats)
{
	const char *reason = NULL;
	sqlite3_stmt *st;
	size_t i;
	int error = RL_OK;

	/* The deal a stage move belongs to must be the mover's (or theirs to manage). */
	for (i = 0; i < n && !reason; i++)
		reason = vet(p, cs[i], 1, "");
	if (!reason && strcmp(cs[0]->tbl, "deal_stage_events") == 0 &&
	    strcmp(p->role, "rep") == 0) {
		for (i = 0; i < n; i++) {
			if (strcmp(cs[i]->field, "deal_id") == 0 && cs[i]->value.type == RL_V_TEXT) {
				sqlite3_stmt *row;
				int found;
				char owner[RL_ID_BUFSZ];
				if ((error = load_row(s, rl_model_table("deals"), cs[i]->value.s, &row,
						      &found)) < 0)
					return error;
				owner[0] = '\0';
				if (found)
					row_owner(row, owner);
				sqlite3_reset(row);
				if (found && strcmp(owner, p->user) != 0)
					reason = "you may move only your own deals";
			}
		}
	}
	if (reason) {
		for (i = 0; i < n; i++)
			refuse(cs[i], reason, stats);
		return RL_OK;
	}
	/* A field set twice in the run (a peer may send that) is named once,
	 * by its last value (rl_store_prepare_create). Found by
	 * fuzz/fuzz_hub_push. */
	if ((error = rl_store_prepare_create(s, cs[0]->tbl, cs[0]->row, cs, n, change_at, &st)) < 0)
		return error;
	/* A refused INSERT leaves nothing behind: SQLite undoes a failed
	 * statement with its triggers' writes (ABORT; no rule here says FAIL
	 * or ROLLBACK), as set_field relies on for updates. */
	if (sqlite3_step(st) != SQLITE_DONE) {
		char why[300];
		if (!data_error(s)) {
			error = rl_store_error(s, "creating a record");
			sqlite3_reset(st);
			return error;           /* the caller rolls the whole batch back */
		}
		snprintf(why, sizeof(why), "cannot create %s %s: %s", cs[0]->tbl, cs[0]->row,
			 sqlite3_errmsg(rl_store_db(s)));
		sqlite3_reset(st);
		for (i = 0; i < n; i++)
			refuse(cs[i], why, stats);
		return RL_OK;
	}
	sqlite3_reset(st);
	if ((error = revive_owners(s, p, cs, n, stats)) < 0)
		return error;
	for (i = 0; i < n && error == 0; i++) {
		long long seq;
		error = log_field(s, cs[i]->tbl, cs[i]->row, cs[i]->field, &cs[i]->value, cs[i]->hlc,
				  p->device, p->user, "change", &seq);
		if (error == 0) {
			answer(cs[i], "applied", seq, NULL);
			stats->applied++;
		}
	}
	if (error == 0)
		error = hub_duplicates_check(s, cs[0]->tbl, cs[0]->row, NULL);
	return error;
}

/* Is the field's current version this device's own earlier change, stored
 * as it sent it (kind 'change', not a merge)? Then the device's new change
 * was made on top of it even though its base is older: the answer to the
 * earlier batch was lost (a cut, a crash after the commit), or it was a
 * conflict the device won (the device records only an 'applied' version as
 * its base), so the new edit was captured with the old base. Without this
 * the device conflicts with itself (tests/sim/simulate.py, FINDINGS 2).
 * Order comes from the batches, not from the stamps: a device makes a new
 * batch only once the previous one is answered, and a field's change that
 * is sent is never coalesced into, so a device's later batch holds only
 * changes captured after those of its earlier ones. Its stamps may go
 * back: re-stamping gives pending changes stamps from the wall clock
 * (restamp_pending in sync/src/devsync.c), which can be below one the hub
 * already holds from a clock that ran a little ahead (FINDINGS 8). */
static int own_version(rl_store *s, const struct hub_peer *p, const struct change *c,
		       const struct field_state *fs, int *yes)
{
	sqlite3_stmt *st;
	const char *kind;
	int error, rc;

	*yes = 0;
	if (!fs->exists || c->base == fs->version || strcmp(fs->device, p->device) != 0)
		return RL_OK;
	if ((error = rl_store_prepare(s, "SELECT kind FROM hub_log WHERE seq = ?1", &st)) < 0)
		return error;
	sqlite3_bind_int64(st, 1, fs->version);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		kind = (const char *)sqlite3_column_text(st, 0);
		*yes = kind && strcmp(kind, "change") == 0;
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? RL_OK : rl_store_error(s, "reading the log");
}

/*
 * The text this device last sent for the field, if the hub merged it into a
 * version above the change's base (schema/hub/005_sent_text.sql): the
 * device's text descends from it, and every version from then on contains
 * it, so it is the right base for a three-way merge. From the older base,
 * the device's own earlier lines count as added again and appear twice.
 */
static int sent_text(rl_store *s, const struct hub_peer *p, const struct change *c,
		     struct owned_value *out, int *found)
{
	sqlite3_stmt *st;
	int error;

	*found = 0;
	if ((error = rl_store_prepare(s, "SELECT value FROM hub_sent_text WHERE tbl = ?1 AND "
				      "row_id = ?2 AND field = ?3 AND device = ?4 AND version > ?5",
				      &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, c->tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->row, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, c->field, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, p->device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, c->base);
	return step_value(s, st, out, found, "reading the text a device sent");
}

/* The hub's text at `version` contains what the device sent (merged, or
 * already there): remember it as the base of the device's next edit. */
static int remember_sent_text(rl_store *s, const struct hub_peer *p, const struct change *c,
			      long long version)
{
	sqlite3_stmt *st;
	int error, rc;

	/* A redirected text came from the device's loser: the device's own
	 * text of the survivor does not descend from it (see apply_update). */
	if (c->value.type != RL_V_TEXT || c->redirected)
		return RL_OK;
	if ((error = rl_store_prepare(s, "INSERT INTO hub_sent_text(tbl, row_id, field, device, "
				      "value, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
				      "ON CONFLICT(tbl, row_id, field, device) DO UPDATE SET "
				      "value = excluded.value, version = excluded.version", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, c->tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->row, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, c->field, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, p->device, -1, SQLITE_STATIC);
	rl_store_bind_value(st, 5, &c->value);
	sqlite3_bind_int64(st, 6, version);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? RL_OK : rl_store_error(s, "remembering the text a device sent");
}

/* Has anyone but this device changed a field of the row after `cursor`
 * (which the device had not seen when it deleted)? edit->exists says. */
static int changed_unseen(rl_store *s, const struct hub_peer *p, const char *tbl,
			  const char *row, long long cursor, struct field_state *edit)
{
	sqlite3_stmt *st;
	int error, rc;

	/* The latest such edit: the conflict is between its author and the
	 * deleter (the 'deleted' field's own version is the creator's). */
	memset(edit, 0, sizeof(*edit));
	if ((error = rl_store_prepare(s, "SELECT version, hlc, device FROM hub_fields "
				      "WHERE tbl = ?1 AND row_id = ?2 AND version > ?3 AND device <> ?4 "
				      "AND field <> 'deleted' ORDER BY version DESC LIMIT 1", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, row, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, cursor);
	sqlite3_bind_text(st, 4, p->device, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		edit->exists = 1;
		edit->version = sqlite3_column_int64(st, 0);
		edit->hlc = sqlite3_column_int64(st, 1);
		snprintf(edit->device, sizeof(edit->device), "%s",
			 (const char *)sqlite3_column_text(st, 2));
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? RL_OK : rl_store_error(s, "reading versions");
}

/* The merge rule's view of one change against the field's state at the hub
 * (cur: the field's value in the row). */
static void merge_input(const struct hub_peer *p, const struct change *c,
			const struct field_state *fs, const struct rl_value *cur,
			struct rl_field_state *mfs, struct rl_incoming *in)
{
	memset(mfs, 0, sizeof(*mfs));
	mfs->exists = fs->exists;
	mfs->value = *cur;
	mfs->version = fs->version;
	mfs->hlc = fs->hlc;
	mfs->device = fs->device;
	memset(in, 0, sizeof(*in));
	in->value = c->value;
	in->base = c->base;
	in->hlc = c->hlc;
	in->device = p->device;
}

/* Would this field of a pair conflict on its own? (No pair holds free
 * text or a stage: no text merge, no latest-wins rule.) *fs: its state. */
static int member_conflicts(rl_store *s, const struct hub_peer *p, const struct change *c,
			    struct field_state *fs, int *conflicts)
{
	struct owned_value cur = { { RL_V_NULL, 0, 0, NULL }, NULL };
	struct rl_merge_result mr = { RL_MERGE_SAME, NULL, 0 };
	struct rl_field_state mfs;
	struct rl_incoming in;
	sqlite3_stmt *row;
	int error, found, col, own = 0;

	*conflicts = 0;
	if ((error = load_row(s, c->t, c->row, &row, &found)) < 0)
		return error;
	if (found && (col = column_index(row, c->field)) >= 0) {
		struct rl_value v;
		rl_store_column_value(row, col, &v);
		error = own_value(&cur, &v);
	}
	sqlite3_reset(row);
	if (error == 0)
		error = get_field_state(s, c, fs);
	if (error == 0 && !c->redirected)
		error = own_version(s, p, c, fs, &own);
	if (error == 0) {
		merge_input(p, c, fs, &cur.v, &mfs, &in);
		if (own)
			in.base = fs->version;
		error = rl_merge_field(&mfs, &in, 0, NULL, &mr);
	}
	*conflicts = error == 0 && mr.outcome == RL_MERGE_CONFLICT;
	free(mr.merged);
	free_owned(&cur);
	return error;
}

/*
 * Fields that go together (relasi/model.h: a deal's amount and currency, a
 * task's done and done_at...) are decided as one, at the pair's first
 * change, before either is written: merged field by field, a conflict on
 * one could keep the hub's amount with the incoming currency — a sum in the
 * wrong units. If either field would conflict on its own, the pair is a
 * conflict: each field whose values differ gets a conflict record, both
 * with the same provisional winner, the incoming pair only if its later
 * stamp is later than both of the hub's fields'. Otherwise each field
 * merges on its own (the usual edit: one fast-forward, the other "same").
 * Only with the partner's change in the batch (the device sends both,
 * sync/src/capture.c); without it, as any field. a and ca: c's own field
 * state and whether it would conflict alone, as the caller merged it.
 */
static int decide_pair(rl_store *s, const struct hub_peer *p, struct change *c,
		       const struct field_state *a, int ca)
{
	struct change *o = c->partner;
	struct field_state b;
	int cb, error;
	int64_t hlc;

	if (!o || c->pair)
		return RL_OK;
	if (o->status && strcmp(o->status, "refused") == 0) {
		c->pair = PAIR_APART;
		return RL_OK;
	}
	if ((error = member_conflicts(s, p, o, &b, &cb)) < 0)
		return error;
	hlc = c->hlc > o->hlc ? c->hlc : o->hlc;
	c->pair = o->pair = ca || cb ? PAIR_CONFLICT : PAIR_APART;
	c->pair_incoming_wins = o->pair_incoming_wins =
		(!a->exists || rl_merge_later(hlc, p->device, a->hlc, a->device)) &&
		(!b.exists || rl_merge_later(hlc, p->device, b.hlc, b.device));
	return RL_OK;
}

/* The two conflicts of a pair name each other (hub schema 13): a decision
 * on one decides both (hub_conflict_resolve). */
static int link_pair(rl_store *s, const struct change *c)
{
	sqlite3_stmt *st;
	int error, rc;

	if (!c->partner || !c->conflict || !c->partner->conflict)
		return RL_OK;
	if ((error = rl_store_prepare(s, "UPDATE hub_conflicts SET partner = CASE id WHEN ?1 "
				      "THEN ?2 ELSE ?1 END WHERE id IN (?1, ?2)", &st)) < 0)
		return error;
	sqlite3_bind_int64(st, 1, c->conflict);
	sqlite3_bind_int64(st, 2, c->partner->conflict);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? RL_OK : rl_store_error(s, "recording a conflict");
}

/* The batch's change to c's pair partner, if any, and c's to it: in c's
 * run [lo, hi) (the capture writes the two side by side), else anywhere in
 * the batch (a partner already pending took the new value in its older
 * place in the outbox). Not one answered already (refused for its stamp, a
 * re-send after a restore). */
static void find_partner(struct change *cs, size_t n, size_t lo, size_t hi, struct change *c)
{
	const char *name = rl_model_partner(c->t, c->field);
	size_t k, pass;

	if (!name || c->partner || c->status)
		return;
	for (pass = 0; pass < 2; pass++)
		for (k = pass ? 0 : lo; k < (pass ? n : hi); k++) {
			struct change *o = &cs[k];
			if ((pass && k >= lo && k < hi) || o->status || o->partner ||
			    strcmp(o->field, name) != 0 || strcmp(o->row, c->row) != 0 ||
			    strcmp(o->tbl, c->tbl) != 0)
				continue;
			o->t = c->t;
			o->f = rl_model_field(c->t, name);
			if (!o->f)
				return;
			c->partner = o;
			o->partner = c;
			return;
		}
}

/* One change to an existing row. row is the loaded row (positioned). */
static int apply_update(rl_store *s, const struct hub_peer *p, struct change *c,
			long long cursor, struct hub_stats *stats)
{
	struct owned_value cur = { { RL_V_NULL, 0, 0, NULL }, NULL };
	struct owned_value basev = { { RL_V_NULL, 0, 0, NULL }, NULL };
	struct field_state fs;
	struct rl_field_state mfs;
	struct rl_incoming in;
	struct rl_merge_result mr = { RL_MERGE_SAME, NULL, 0 };
	sqlite3_stmt *row;
	char owner[RL_ID_BUFSZ];
	const char *reason;
	long long seq = 0, conflict = 0;
	int error, found, deleted = 0, base_found = 0, col, own = 0, revived = 0;
	int saved = 0;      /* a savepoint before the revival is open */

	if ((error = load_row(s, c->t, c->row, &row, &found)) < 0)
		return error;
	row_owner(row, owner);
	col = column_index(row, c->field);
	if (col >= 0) {
		struct rl_value v;
		rl_store_column_value(row, col, &v);
		error = own_value(&cur, &v);
	}
	if ((col = column_index(row, "deleted")) >= 0)
		deleted = sqlite3_column_int(row, col);
	sqlite3_reset(row);
	if (error < 0)
		goto cleanup;
	if ((error = get_field_state(s, c, &fs)) < 0)
		goto cleanup;
	/* Nothing to refuse or decide: the other field of a pair, sent
	 * unchanged with its partner, as the hub has it (a rep's edit of a
	 * colleague's amount is one refusal, not two; decide_pair reads it as
	 * "same" too); and a stage move sent again as the hub has it (a store
	 * restored from an older copy sends what it had sent before): history
	 * is never edited, and this edits nothing. */
	if ((c->partner || strcmp(c->tbl, "deal_stage_events") == 0) && !deleted &&
	    rl_value_equal(&c->value, &cur.v)) {
		answer(c, "same", fs.exists ? fs.version : 0, NULL);
		stats->same++;
		goto cleanup;
	}
	if ((reason = vet(p, c, 0, owner))) {
		refuse(c, reason, stats);
		goto cleanup;
	}

	/* Edit against delete: the row stays alive, and it is a conflict. */
	if (deleted && strcmp(c->field, "deleted") != 0) {
		/* A refused edit revives nothing: should the edit itself be
		 * refused below (a value the row's constraints refuse), the
		 * revival and its conflict are undone with it. */
		if (sqlite3_exec(rl_store_db(s), "SAVEPOINT revive", NULL, NULL, NULL) != SQLITE_OK) {
			error = rl_store_error(s, "starting a savepoint");
			goto cleanup;
		}
		saved = 1;
		if ((error = revive_row(s, p, c->tbl, c->row, c->hlc, NULL, NULL)) < 0)
			goto cleanup;
		revived = 1;               /* its match keys come back with it (below) */
		stats->conflicts++;
	} else if (strcmp(c->field, "deleted") == 0 && c->value.type == RL_V_INT && c->value.i == 1 &&
		   !deleted) {
		struct field_state edit;
		if ((error = changed_unseen(s, p, c->tbl, c->row, cursor, &edit)) < 0)
			goto cleanup;
		if (edit.exists) {
			struct rl_value alive = { RL_V_INT, 0, 0, NULL };
			if ((error = record_conflict(s, p, c, &edit, &alive, "hub", "edit-delete",
						     &conflict)) < 0)
				goto cleanup;
			/* The row stays alive, but the deleting device already holds
			 * its tombstone and has pulled the version of 'deleted' that
			 * says alive (it saw the row created), so nothing it pulls
			 * would ever bring the row back: it diverged for good
			 * (tests/sim/simulate.py, FINDINGS 1). Log the kept value as a new
			 * change so that it, and everyone, receives it. */
			if ((error = hub_write_field(s, c->tbl, c->row, "deleted", &alive, "merge",
						     &seq)) < 0 ||
			    (error = conflict_left(s, conflict, seq, NULL, NULL)) < 0)
				goto cleanup;
			answer(c, "conflict", seq,
			       "the record was edited elsewhere; it stays until the admin decides");
			stats->conflicts++;
			goto cleanup;
		}
	}

	merge_input(p, c, &fs, &cur.v, &mfs, &in);
	/* Stage moves never conflict (../shared/DESIGN.md): every move is also
	 * a deal_stage_events row, an append; the deal's stage, and what a
	 * move sets with it (closed_at, lost_reason), is the latest move's. */
	in.latest_wins = strcmp(c->tbl, "deals") == 0 &&
			 (strcmp(c->field, "stage_id") == 0 || strcmp(c->field, "closed_at") == 0 ||
			  strcmp(c->field, "lost_reason") == 0);
	/* A redirected change was made on the device's copy of the loser: it
	 * descends from none of the device's own changes to the survivor, so
	 * neither the own-version rule nor the text it sent for the survivor
	 * says anything about its base (either would let it replace the
	 * survivor's value unseen). Its base is hub_redirect's. */
	if (!c->redirected && (error = own_version(s, p, c, &fs, &own)) < 0)
		goto cleanup;
	if (own)
		in.base = fs.version;      /* its own earlier change: a fast-forward */
	if (rl_model_is_text(c->f) && c->base > 0 && !own && !c->redirected &&
	    (error = sent_text(s, p, c, &basev, &base_found)) < 0)
		goto cleanup;
	if (rl_model_is_text(c->f) && c->base > 0 && !base_found &&
	    (error = value_at(s, c->base, &basev, &base_found)) < 0)
		goto cleanup;
	if ((error = rl_merge_field(&mfs, &in, rl_model_is_text(c->f),
				    base_found ? &basev.v : NULL, &mr)) < 0)
		goto cleanup;
	/* What a move sets with the stage goes with that move: a closing time
	 * or lost reason of a move older than the deal's current stage is
	 * superseded even where its own field has not changed since (else a
	 * won deal could keep the reason of an older "lost"). */
	if (in.latest_wins && strcmp(c->field, "stage_id") != 0 &&
	    mr.outcome != RL_MERGE_SAME && mr.outcome != RL_MERGE_SUPERSEDED &&
	    !rl_value_equal(&c->value, &cur.v)) {
		struct change sc = *c;
		struct field_state sfs;
		sc.field = "stage_id";
		if ((error = get_field_state(s, &sc, &sfs)) < 0)
			goto cleanup;
		if (sfs.exists && rl_merge_later(sfs.hlc, sfs.device, c->hlc, p->device)) {
			free(mr.merged);
			mr.merged = NULL;
			mr.outcome = RL_MERGE_SUPERSEDED;
		}
	}
	if (mr.outcome == RL_MERGE_MERGED) {
		/* A clean merge of two valid notes can still be invalid, e.g.
		 * longer than RL_MAX_FIELD_BYTES when both sides added text; it
		 * must not reach the log (devices refuse it). It cannot be
		 * stored, so it is a conflict like any edit that does not merge
		 * (the same call without text merging decides the provisional
		 * winner). Found by fuzz/fuzz_hub_push. */
		struct rl_value mv = { RL_V_TEXT, 0, 0, mr.merged };
		if (rl_model_check_value(c->t, c->f, &mv) < 0) {
			free(mr.merged);
			mr.merged = NULL;
			if ((error = rl_merge_field(&mfs, &in, 0, NULL, &mr)) < 0)
				goto cleanup;
		}
	}
	/* A pair in conflict: this field follows the pair's decision (this
	 * field's own part of it is mr: no pair field is text or a stage). */
	if ((error = decide_pair(s, p, c, &fs, mr.outcome == RL_MERGE_CONFLICT)) < 0)
		goto cleanup;
	if (c->pair == PAIR_CONFLICT) {
		free(mr.merged);
		mr.merged = NULL;
		mr.outcome = rl_value_equal(&c->value, &cur.v) ? RL_MERGE_SAME : RL_MERGE_CONFLICT;
		mr.incoming_wins = c->pair_incoming_wins;
	} else if (c->pair && mr.outcome == RL_MERGE_APPLY && rl_value_equal(&c->value, &cur.v)) {
		/* The field sent only because its partner changed: nothing to
		 * log (every device would pull the value it has again). */
		mr.outcome = RL_MERGE_SAME;
	}
	switch (mr.outcome) {
	case RL_MERGE_APPLY:
		if ((error = set_field(s, c->tbl, c->row, c->field, &c->value)) < 0) {
			if (error == RL_EINVALID) {
				refuse(c, rl_error_message(), stats);
				error = RL_OK;
			}
			break;
		}
		if ((error = log_field(s, c->tbl, c->row, c->field, &c->value, c->hlc, p->device,
				       p->user, "change", &seq)) < 0)
			break;
		answer(c, "applied", seq, NULL);
		stats->applied++;
		break;
	case RL_MERGE_SUPERSEDED:
		/* An older stage move: the deal stays where the later move put
		 * it. "merged" tells the device so: it takes the hub's value by
		 * the pull, as after a text merge (sync/PROTOCOL.md). A field the
		 * hub never logged (no closing time yet) has no version to pull:
		 * its value is logged, so that the device receives it. */
		seq = fs.version;
		if (!fs.exists &&
		    (error = hub_write_field(s, c->tbl, c->row, c->field, &cur.v, "merge", &seq)) < 0)
			break;
		/* Nothing silently lost: the older move's value is kept in a
		 * conflict record, settled at once ('latest'): no one has to
		 * decide, and `conflicts --all` and both reps see it. */
		if ((error = record_conflict(s, p, c, &fs, &cur.v, "hub", "field", &conflict)) < 0 ||
		    (error = conflict_settle(s, conflict, "latest", &cur.v, seq)) < 0)
			break;
		answer(c, "merged", seq, NULL);
		stats->merged++;
		break;
	case RL_MERGE_SAME:
		answer(c, "same", fs.exists ? fs.version : 0, NULL);
		stats->same++;
		if (rl_model_is_text(c->f) && fs.exists)
			error = remember_sent_text(s, p, c, fs.version);
		break;
	case RL_MERGE_MERGED: {
		struct rl_value mv = { RL_V_TEXT, 0, 0, mr.merged };
		if ((error = set_field(s, c->tbl, c->row, c->field, &mv)) == RL_EINVALID) {
			refuse(c, rl_error_message(), stats);
			error = RL_OK;
			break;
		}
		if (error < 0 ||
		    (error = log_field(s, c->tbl, c->row, c->field, &mv, c->hlc, p->device, p->user,
				       "merge", &seq)) < 0 ||
		    (error = remember_sent_text(s, p, c, seq)) < 0)
			break;
		answer(c, "merged", seq, NULL);
		stats->merged++;
		break;
	}
	case RL_MERGE_CONFLICT:
		/* The provisional winner is written first: a value the row's
		 * constraints refuse (NOT NULL, a dangling reference) is refused
		 * like in a fast-forward, not a failure of the whole batch, which
		 * was never recorded and so came back at every sync. */
		if (mr.incoming_wins &&
		    (error = set_field(s, c->tbl, c->row, c->field, &c->value)) < 0) {
			if (error == RL_EINVALID) {
				refuse(c, rl_error_message(), stats);
				error = RL_OK;
			}
			break;
		}
		if ((error = record_conflict(s, p, c, &fs, &cur.v,
					     mr.incoming_wins ? "incoming" : "hub", "field",
					     &conflict)) < 0)
			break;
		seq = fs.version;
		if (mr.incoming_wins &&
		    (error = log_field(s, c->tbl, c->row, c->field, &c->value, c->hlc,
				       p->device, p->user, "change", &seq)) < 0)
			break;
		c->conflict = conflict;
		if ((error = conflict_left(s, conflict, seq, NULL, NULL)) < 0 ||
		    (error = link_pair(s, c)) < 0)
			break;
		if (c->pair == PAIR_CONFLICT)
			answer(c, "conflict", seq, mr.incoming_wins
			       ? "conflict: this field and its pair, your values are kept for now; "
				 "the admin decides"
			       : "conflict: this field and its pair, the hub's values are kept for "
				 "now; the admin decides");
		else
			answer(c, "conflict", seq, mr.incoming_wins
			       ? "conflict: your value is kept for now; the admin decides"
			       : "conflict: the hub's value is kept for now; the admin decides");
		stats->conflicts++;
		break;
	}
	/* (On an error the caller rolls the whole batch back, savepoint and all.) */
	if (error == 0 && saved) {
		if (c->status && strcmp(c->status, "refused") == 0) {
			if (sqlite3_exec(rl_store_db(s), "ROLLBACK TO revive", NULL, NULL, NULL) !=
			    SQLITE_OK) {
				error = rl_store_error(s, "undoing a revival");
				goto cleanup;
			}
			revived = 0;
			stats->conflicts--;
		}
		if (sqlite3_exec(rl_store_db(s), "RELEASE revive", NULL, NULL, NULL) != SQLITE_OK) {
			error = rl_store_error(s, "ending a savepoint");
			goto cleanup;
		}
		/* Kept alive, it is shown and counted under its customer: that
		 * one comes back too (read after the edit, which may have moved
		 * the record to another customer). */
		if (revived && (error = revive_owners_of(s, p, c->t, c->row, c->hlc, 1, stats)) < 0)
			goto cleanup;
	}
	/* A revived record is checked whatever the edit's own outcome. */
	if (error == 0 && (revived || (c->status && keys_field(c->field))))
		error = hub_duplicates_check(s, c->tbl, c->row, NULL);
cleanup:
	free(mr.merged);
	free_owned(&cur);
	free_owned(&basev);
	return error;
}

/*
 * The sender of a redirected change still holds it on its own copy of the
 * loser, and nothing the hub logs for the survivor would ever undo that: its
 * loser would differ from everyone's for good. So the loser's own value of
 * each such field is logged again (kind 'merge'); the sender pulls it back.
 * Once per loser and field; not for refused changes (a device keeps those
 * visible as refused) nor where the loser already holds the sent value.
 */
static int relog_losers(rl_store *s, struct change *cs, size_t n)
{
	size_t i, k;
	int error = RL_OK;

	for (i = 0; i < n && error == 0; i++) {
		struct owned_value cur = { { RL_V_NULL, 0, 0, NULL }, NULL };
		sqlite3_stmt *row;
		int found = 0, col, dup = 0;
		long long seq;

		if (!cs[i].redirected || cs[i].gone || !cs[i].status ||
		    strcmp(cs[i].status, "refused") == 0)
			continue;
		for (k = 0; k < i && !dup; k++)
			dup = cs[k].redirected && cs[k].t == cs[i].t &&
			      strcmp(cs[k].loser, cs[i].loser) == 0 &&
			      strcmp(cs[k].field, cs[i].field) == 0;
		if (dup)
			continue;
		if ((error = load_row(s, cs[i].t, cs[i].loser, &row, &found)) < 0)
			break;
		if (found && (col = column_index(row, cs[i].field)) >= 0) {
			struct rl_value v;
			rl_store_column_value(row, col, &v);
			error = own_value(&cur, &v);
		}
		sqlite3_reset(row);
		if (error == 0 && found && !rl_value_equal(&cur.v, &cs[i].value))
			error = hub_write_field(s, cs[i].tbl, cs[i].loser, cs[i].field, &cur.v, "merge",
						&seq);
		free_owned(&cur);
	}
	return error;
}

/*
 * A refused change makes its device pull the field again from the version
 * the edit was made on (sync/src/devsync.c, record_pushed), so the record
 * shows the hub's value. A change with no base (0: the device never got a
 * version of the field) has nothing to pull again: the hub never logged
 * the field (a note added to another rep's deal, a contact set where there
 * was none), or logged it only while the device's edit was pending (at or
 * below `cursor`). The device kept the refused value for good, and differed
 * from every other device. So the hub logs its own value of such a field
 * again (kind 'merge', after the cursor): the device pulls it in the same
 * session and takes it, the change being refused, no longer pending. Once
 * per field: the entry moves the field past the cursor. Not for a record
 * the hub does not have (a new record refused whole stays as the rep made
 * it, docs/sync.md); a redirected change's record is the device's loser.
 */
static int relog_refused(rl_store *s, const struct change *cs, size_t n, long long cursor)
{
	size_t i;
	int error = RL_OK;

	for (i = 0; i < n && error == 0; i++) {
		struct owned_value cur = { { RL_V_NULL, 0, 0, NULL }, NULL };
		const char *row = cs[i].redirected ? cs[i].loser : cs[i].row;
		sqlite3_stmt *st;
		long long version, seq;
		int found = 0, col = -1;

		if (!cs[i].status || strcmp(cs[i].status, "refused") != 0 || cs[i].base != 0 ||
		    !cs[i].t || !cs[i].f || cs[i].gone)
			continue;
		if ((error = hub_field_version(s, cs[i].tbl, row, cs[i].field, &version)) < 0)
			break;
		if (version > cursor)      /* the device's pull brings it */
			continue;
		if ((error = load_row(s, cs[i].t, row, &st, &found)) < 0)
			break;
		if (found && (col = column_index(st, cs[i].field)) >= 0) {
			struct rl_value v;
			rl_store_column_value(st, col, &v);
			error = own_value(&cur, &v);
		}
		sqlite3_reset(st);
		if (error == 0 && found && col >= 0)
			error = log_field(s, cs[i].tbl, row, cs[i].field, &cur.v,
					  rl_hlc_now(rl_store_hlc(s)), "hub", NULL, "merge", &seq);
		free_owned(&cur);
	}
	return error;
}

/*
 * What a batch holds, for telling a batch sent again from a new batch under
 * a number already used (schema/hub/007_batch_digest.sql): SHA-256 over
 * each change's table, record, field and value as sent, in order. Base and
 * stamp are left out: a device re-sending a batch after the hub was
 * restored rebases it (sync/src/hubepoch.c), and a sent batch keeps its
 * changes, which is what identifies it.
 */
static void batch_digest(const struct change *cs, size_t n, unsigned char out[32])
{
	mbedtls_sha256_context sha;
	size_t i;

	mbedtls_sha256_init(&sha);
	mbedtls_sha256_starts_ret(&sha, 0);
	for (i = 0; i < n; i++) {
		const struct rl_value *v = &cs[i].value;
		unsigned char tag = (unsigned char)v->type, num[8];
		uint64_t bits = 0;
		int k;

		mbedtls_sha256_update_ret(&sha, (const unsigned char *)cs[i].tbl, strlen(cs[i].tbl) + 1);
		mbedtls_sha256_update_ret(&sha, (const unsigned char *)cs[i].row, strlen(cs[i].row) + 1);
		mbedtls_sha256_update_ret(&sha, (const unsigned char *)cs[i].field,
					  strlen(cs[i].field) + 1);
		mbedtls_sha256_update_ret(&sha, &tag, 1);
		if (v->type == RL_V_INT)
			bits = (uint64_t)v->i;
		else if (v->type == RL_V_REAL)
			memcpy(&bits, &v->d, sizeof(bits));
		if (v->type == RL_V_TEXT) {
			mbedtls_sha256_update_ret(&sha, (const unsigned char *)v->s, strlen(v->s) + 1);
			continue;
		}
		for (k = 0; k < 8; k++)
			num[k] = (unsigned char)(bits >> (56 - 8 * k));
		mbedtls_sha256_update_ret(&sha, num, sizeof(num));
	}
	mbedtls_sha256_finish_ret(&sha, out);
	mbedtls_sha256_free(&sha);
}

static int last_batch(rl_store *s, const char *device, long long *out)
{
	sqlite3_stmt *st;
	int error, rc;

	*out = 0;
	if ((error = rl_store_prepare(s, "SELECT coalesce(max(batch), 0) FROM hub_batches "
				      "WHERE device = ?1", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? RL_OK : rl_store_error(s, "reading the device's last batch");
}

int hub_tell_device(rl_store *s, const char *device, json_t *obj, const char *batch_key)
{
	long long last;
	int error;

	if ((error = hub_epoch_welcome(s, obj)) < 0 || (error = last_batch(s, device, &last)) < 0)
		return error;
	return json_object_set_new(obj, batch_key, json_integer(last)) < 0 ?
	       rl_error_set(RL_ENOMEM, "out of memory") : RL_OK;
}

/* The stored answer of (device, batch) as its text (*text, the caller's to
 * free), or *text NULL when the hub never recorded it. A recorded batch
 * whose digest differs from this one is a number used twice: RL_EREUSED,
 * nothing to apply. */
static int stored_response(rl_store *s, const char *device, long long batch,
			   const unsigned char digest[32], char **text)
{
	sqlite3_stmt *st;
	int error = RL_OK, rc;

	*text = NULL;
	if ((error = rl_store_prepare(s, "SELECT response, digest FROM hub_batches WHERE "
				      "device = ?1 AND batch = ?2", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, batch);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 1) == SQLITE_BLOB &&
	    (sqlite3_column_bytes(st, 1) != 32 || memcmp(sqlite3_column_blob(st, 1), digest, 32))) {
		error = rl_error_set(RL_EREUSED, "batch %lld of this device was already applied "
				     "with other changes; nothing was applied (the device's store "
				     "restored from an older copy?)", batch);
	} else if (rc == SQLITE_ROW) {
		const char *stored = (const char *)sqlite3_column_text(st, 0);
		/* Checked, not trusted: a damaged answer sent on would stop the
		 * device at every sync with a parse error that names nothing. */
		json_t *check = stored ? json_loads(stored, 0, NULL) : NULL;
		if (!check)
			error = stored ? rl_error_set(RL_ESTORE, "stored answer of batch %lld is "
						      "damaged", batch)
				       : rl_store_error(s, "reading a stored answer");
		else if (!(*text = strdup(stored)))
			error = rl_error_set(RL_ENOMEM, "out of memory");
		json_decref(check);
	} else if (rc != SQLITE_DONE) {
		/* Not "never seen": applying the batch again would double it. */
		error = rl_store_error(s, "looking up the batch");
	}
	sqlite3_reset(st);
	return error;
}

/*
 * References are deferred foreign keys (schema/001_init.sql), checked at
 * COMMIT: one change pointing at a record the hub does not have (never
 * pushed, or its creation refused) would fail the whole batch there, and
 * the device would send the same batch again at every sync, stuck. When
 * the transaction holds a dangling reference, mark the batch's changes
 * that set it (*found: any newly marked); hub_push then applies the batch
 * again with those refused. Found by fuzz/fuzz_hub_push.
 */
static int find_dangling(rl_store *s, struct change *cs, size_t n, int *found)
{
	sqlite3 *db = rl_store_db(s);
	int cur = 0, hi = 0;
	size_t i, k;

	*found = 0;
	if (sqlite3_db_status(db, SQLITE_DBSTATUS_DEFERRED_FKS, &cur, &hi, 0) != SQLITE_OK ||
	    cur == 0)
		return RL_OK;
	for (i = 0; i < n; i++) {
		sqlite3_stmt *st;
		char *sql;
		int rc;

		if (!cs[i].t || !cs[i].f || cs[i].f->type != RL_FT_REF || !cs[i].f->ref ||
		    cs[i].dangling)
			continue;
		/* Names are the model's own; not cached: this is the rare path. */
		sql = sqlite3_mprintf("SELECT 1 FROM \"%w\" c WHERE c.id = ?1 AND c.\"%w\" IS NOT NULL "
				      "AND EXISTS (SELECT 1 FROM pragma_foreign_key_list(%Q) k "
				      "WHERE k.\"from\" = %Q) AND NOT EXISTS (SELECT 1 FROM \"%w\" p "
				      "WHERE p.id = c.\"%w\")", cs[i].t->name, cs[i].f->name,
				      cs[i].t->name, cs[i].f->name, cs[i].f->ref, cs[i].f->name);
		if (!sql)
			return rl_error_set(RL_ENOMEM, "out of memory");
		rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
		sqlite3_free(sql);
		if (rc != SQLITE_OK)
			return rl_store_error(s, "checking references");
		sqlite3_bind_text(st, 1, cs[i].row, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return rl_store_error(s, "checking references");
		if (rc != SQLITE_ROW)
			continue;
		for (k = 0; k < n; k++)
			if (cs[k].t == cs[i].t && strcmp(cs[k].row, cs[i].row) == 0 &&
			    strcmp(cs[k].field, cs[i].field) == 0) {
				cs[k].dangling = 1;
				*found = 1;
			}
	}
	return RL_OK;
}

/* The PUSHED answer's text: {"batch":N,"results":[RESULT...]}, as jansson
 * would write it compactly. Written directly (relasi/jsonw.h): building a
 * JSON tree of a few thousand results to print it was a tenth of a push's
 * CPU. *text is malloc'd. */
static int write_answer(sqlite3 *db, long long batch, const struct change *cs, size_t n,
			char **text)
{
	sqlite3_str *out = sqlite3_str_new(db);
	size_t i;

	sqlite3_str_appendf(out, "{\"batch\":%lld,\"results\":[", batch);
	for (i = 0; i < n; i++) {
		const char *reason = cs[i].status ? cs[i].reason : "not applied";
		sqlite3_str_appendf(out, "%s{\"s\":\"%s\",\"v\":%lld", i ? "," : "",
				    cs[i].status ? cs[i].status : "refused",
				    cs[i].status ? cs[i].version : 0LL);
		if (reason) {
			int error;
			sqlite3_str_appendall(out, ",\"reason\":");
			if ((error = rl_jsonw_string(out, reason)) < 0) {
				sqlite3_free(sqlite3_str_finish(out));
				return error;
			}
		}
		sqlite3_str_appendchar(out, 1, '}');
	}
	sqlite3_str_appendall(out, "]}");
	return rl_jsonw_finish(out, text);
}

/*
 * The batch cs[0 .. n) (device batch number `batch`, pulled up to
 * `cursor`) applied in one transaction with its answer recorded, or the
 * stored answer of a batch seen before. *resp_text: the answer (malloc'd).
 */
static int push_batch(rl_store *s, const struct hub_peer *peer, long long batch,
		      long long cursor, struct change *cs, size_t n, char **resp_text,
		      struct hub_stats *stats)
{
	struct hub_peer now_peer = *peer;
	const struct hub_peer *p = &now_peer;
	long long first_seq;
	size_t i, j;
	char *text = NULL, at[21];
	struct hub_stats saved;
	struct hub_restore_points rp;
	unsigned char digest[32];
	sqlite3_stmt *st;
	int error, dangling;

	*resp_text = NULL;
	if (batch < 1 || batch > RL_MAX_BATCH_NUMBER || cursor < 0)
		return rl_error_set(RL_EPROTO, "PUSH: bad batch number or cursor");
	if (n > RL_MAX_BATCH_CHANGES)
		return rl_error_set(RL_ETOOBIG, "PUSH of %zu changes (limit %d)", n, RL_MAX_BATCH_CHANGES);
	batch_digest(cs, n, digest);       /* as sent: before redirect_changes */

	saved = *stats;
again:
	if ((error = rl_store_begin(s)) < 0)
		goto done;
	/* The caller's lookup was made before this transaction began, and
	 * BEGIN IMMEDIATE may have waited for another process's write (an
	 * admin command, a bundle import) up to the busy timeout: a revocation
	 * or a role change committed meanwhile must hold for this batch. */
	if (peer->fingerprint[0] &&
	    (error = hub_device_lookup(s, peer->device, peer->fingerprint, &now_peer)) < 0)
		goto rollback;
	if ((error = stored_response(s, p->device, batch, digest, &text)) < 0)
		goto rollback;
	if (text) {                        /* seen before: the same answer, nothing applied */
		rl_store_rollback(s);
		goto done;
	}
	/* New records are indexed for search at the commit, in one statement
	 * per table: indexing each as it is created made FTS5 write a segment
	 * per record (schema/017_fts_indexed.sql). */
	if ((error = rl_store_fts_defer(s)) < 0 ||
	    (error = hub_audit_begin(s, &first_seq)) < 0 ||
	    (error = redirect_changes(s, cs, n)) < 0)
		goto rollback;
	stats->pushed += (long)n;
	/* Changes a device re-sends after the hub was restored (epoch.c). */
	if ((error = hub_epoch_restore_points(s, &rp)) < 0)
		goto rollback;
	for (i = 0; rp.n && i < n; i++) {
		long long b = cs[i].base, current;
		struct owned_value cur = { { RL_V_NULL, 0, 0, NULL }, NULL };
		int found = 0;
		if ((error = hub_epoch_rebase(s, &rp, cs[i].tbl, cs[i].row, cs[i].field, &b,
					      &current)) < 0)
			goto rollback;
		cs[i].base = b;
		/* Several devices carry back the same lost value; once one has,
		 * the others' copies are "same", not refused by a role rule
		 * meant for edits (a rep re-sending another rep's new record). */
		if (current > 0 && (error = value_at(s, current, &cur, &found)) < 0)
			goto rollback;
		if (found && rl_value_equal(&cur.v, &cs[i].value)) {
			answer(&cs[i], "same", current, NULL);
			stats->same++;
		}
		free_owned(&cur);
	}
	for (i = 0; i < n; i = j) {
		int found;
		sqlite3_stmt *row;

		/* One record's run of changes. */
		for (j = i + 1; j < n && strcmp(cs[j].tbl, cs[i].tbl) == 0 &&
		     strcmp(cs[j].row, cs[i].row) == 0; j++)
			;
		cs[i].t = rl_model_table(cs[i].tbl);
		if (!cs[i].t || strcmp(cs[i].t->name, cs[i].tbl) != 0 || !rl_id_valid(cs[i].row)) {
			for (size_t k = i; k < j; k++)
				refuse(&cs[k], "unknown table or malformed record id", stats);
			continue;
		}
		for (size_t k = i; k < j; k++) {
			cs[k].t = cs[i].t;
			cs[k].f = rl_model_field(cs[k].t, cs[k].field);
		}
		int unknown = 0;
		for (size_t k = i; k < j; k++)
			if (!cs[k].f) {
				for (size_t m = i; m < j; m++)
					if (!cs[m].status)
						refuse(&cs[m], "unknown field", stats);
				unknown = 1;
				break;
			}
		if (unknown)
			continue;
		/* Stamps from a clock far ahead are refused, not adopted. */
		for (size_t k = i; k < j; k++) {
			if (cs[k].status)      /* answered already (a re-send after a restore) */
				continue;
			if (cs[k].gone) {      /* the merged loser's own tombstone or birth */
				answer(&cs[k], "same", 0, NULL);
				stats->same++;
			} else if (rl_hlc_receive(rl_store_hlc(s), cs[k].hlc, NULL) < 0)
				refuse(&cs[k], RL_REASON_CLOCK_AHEAD, stats);
			else if (cs[k].dangling)
				refuse(&cs[k], "refers to a record the hub does not have", stats);
		}
		if ((error = load_row(s, cs[i].t, cs[i].row, &row, &found)) < 0)
			goto rollback;
		sqlite3_reset(row);
		if (!found) {
			struct change *run[RL_MAX_BATCH_CHANGES];
			size_t k, m = 0;
			/* A create: all the record's changes go into one INSERT,
			 * and are decided together. One refused above (a stamp
			 * far ahead, a reference the hub does not have) refuses
			 * the record (refuse_create). */
			if (refuse_create(&cs[i], j - i, stats))
				continue;
			for (k = i; k < j; k++)
				if (!cs[k].status)
					run[m++] = &cs[k];
			if (m && (error = apply_create(s, p, run, m, stats)) < 0)
				goto rollback;
			continue;
		}
		for (size_t k = i; k < j; k++)
			find_partner(cs, n, i, j, &cs[k]);
		for (size_t k = i; k < j; k++)
			if (!cs[k].status && (error = apply_update(s, p, &cs[k], cursor, stats)) < 0)
				goto rollback;
	}
	if ((error = find_dangling(s, cs, n, &dangling)) < 0)
		goto rollback;
	if (dangling) {                    /* again, refusing what dangles (bounded: n) */
		rl_store_rollback(s);
		for (i = 0; i < n; i++)
			unanswer(&cs[i]);
		*stats = saved;
		goto again;
	}

	if ((error = relog_losers(s, cs, n)) < 0 ||
	    (error = relog_refused(s, cs, n, cursor)) < 0)
		goto rollback;
	/* Everything this batch logged is one commit of the audit history. */
	if ((error = hub_audit_mark(s, first_seq, "batch", p->device, p->user, batch,
				    stats->conflicts - saved.conflicts, NULL)) < 0)
		goto rollback;
	for (i = 0; i < n; i++)
		if (cs[i].lost_reason) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto rollback;
		}
	if ((error = write_answer(rl_store_db(s), batch, cs, n, &text)) < 0)
		goto rollback;
	now_iso(s, at);
	if ((error = rl_store_prepare(s, "INSERT INTO hub_batches(device, batch, received_at, "
				      "response, digest) VALUES (?1, ?2, ?3, ?4, ?5)", &st)) < 0)
		goto rollback;
	sqlite3_bind_text(st, 1, p->device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, batch);
	sqlite3_bind_text(st, 3, at, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, digest, sizeof(digest), SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_reset(st);
		error = rl_store_error(s, "recording the batch");
		goto rollback;
	}
	sqlite3_reset(st);
	if ((error = rl_store_commit(s)) < 0)
		goto rollback;
	goto done;                         /* committed: the answer sent is the one stored */
rollback:
	rl_store_rollback(s);
	free(text);
	text = NULL;
	/* The session's log line counts what the store took: a batch whose
	 * commit failed (a full disk) took nothing. */
	*stats = saved;
done:
	*resp_text = text;
	return error;
}

/* The changes of a batch: cs[i] takes change i's strings, which stay the
 * caller's; answers are freed by free_changes. */
static void free_changes(struct change *cs, size_t n)
{
	size_t i;

	if (cs)
		for (i = 0; i < n; i++)
			free(cs[i].reason);
	free(cs);
}

int hub_push(rl_store *s, const struct hub_peer *p, json_t *push, json_t **resp,
	     char **resp_text, struct hub_stats *stats)
{
	json_t *jb = json_object_get(push, "batch"), *jc = json_object_get(push, "changes");
	json_t *jcur = json_object_get(push, "cursor");
	struct change *cs = NULL;
	char *text = NULL;
	size_t n, i;
	int error;

	*resp = NULL;
	if (resp_text)
		*resp_text = NULL;
	if (!json_is_integer(jb) || !json_is_array(jc) || !json_is_integer(jcur))
		return rl_error_set(RL_EPROTO, "PUSH needs batch, cursor and changes");
	n = json_array_size(jc);
	if (n > RL_MAX_BATCH_CHANGES)
		return rl_error_set(RL_ETOOBIG, "PUSH of %zu changes (limit %d)", n, RL_MAX_BATCH_CHANGES);
	if (!(cs = calloc(n ? n : 1, sizeof(*cs))))
		return rl_error_set(RL_ENOMEM, "out of memory");
	for (i = 0; i < n; i++)
		if ((error = parse_change(json_array_get(jc, i), &cs[i])) < 0) {
			rl_error_prefix("change %zu", i + 1);
			goto cleanup;
		}
	if ((error = push_batch(s, p, json_integer_value(jb), json_integer_value(jcur), cs, n, &text,
				stats)) < 0)
		goto cleanup;
	if (!(*resp = json_loads(text, 0, NULL))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (resp_text) {
		*resp_text = text;
		text = NULL;
	}
cleanup:
	free(text);
	free_changes(cs, n);
	return error;
}

int hub_push_read(rl_store *s, const struct hub_peer *p, const struct rl_push *push,
		  char **resp_text, struct hub_stats *stats)
{
	struct change *cs;
	size_t i;
	int error;

	*resp_text = NULL;
	if (!(cs = calloc(push->n ? push->n : 1, sizeof(*cs))))
		return rl_error_set(RL_ENOMEM, "out of memory");
	for (i = 0; i < push->n; i++) {
		const struct rl_push_change *c = &push->changes[i];
		cs[i].tbl = c->tbl;
		cs[i].row = c->row;
		cs[i].field = c->field;
		cs[i].value = c->value;
		cs[i].base = c->base;
		cs[i].hlc = c->hlc;
	}
	error = push_batch(s, p, push->batch, push->cursor, cs, push->n, resp_text, stats);
	free_changes(cs, push->n);
	return error;
}

/* ---- pull --------------------------------------------------------------------------- */

/* The conflicts that involve this user's edits (their value was the hub's
 * or the incoming one), made from any of their devices: a rep who edited on
 * the laptop reads `relasi conflicts` on the phone too (the list was the
 * one device's). Every open one, and the ones decided in the last week, so
 * the rep sees what became of them. Newest first, at most
 * RL_MAX_DEVICE_CONFLICTS. "mine" is the side of the user's devices (the
 * hub's side when both were theirs). Both kinds are found through their
 * indexes (hub schema 16): this runs once per session, and walking every
 * conflict from the newest read the hub's whole history each time. */
static int device_conflicts(rl_store *s, const char *user, json_t **out)
{
	sqlite3_stmt *st;
	json_t *list;
	size_t bytes = 0;
	int rc, error = RL_OK;

	*out = NULL;
	if ((error = rl_store_prepare(s,
	     "WITH mine(id) AS (SELECT id FROM hub_devices WHERE user_id = ?1) "
	     "SELECT c.id, c.tbl, c.row_id, c.field, c.hub_device IN mine, c.hub_value, c.in_value, "
	     "  coalesce((SELECT u.login FROM hub_devices d JOIN users u ON u.id = d.user_id "
	     "            WHERE d.id = CASE WHEN c.hub_device IN mine THEN c.in_device "
	     "                              ELSE c.hub_device END), 'hub'), "
	     "  c.winner, c.state, c.resolution, c.resolved_value, c.created_at, c.kind "
	     "FROM hub_conflicts c "
	     "WHERE c.id IN (SELECT id FROM hub_conflicts WHERE state = 'open' UNION "
	     "               SELECT id FROM hub_conflicts WHERE resolved_at >= "
	     "               strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-7 days')) "
	     "  AND (c.hub_device IN mine OR c.in_device IN mine) "
	     "ORDER BY c.id DESC LIMIT ?2", &st)) < 0)
		return error;
	if (!(list = json_array())) {
		sqlite3_reset(st);
		return rl_error_set(RL_ENOMEM, "out of memory");
	}
	sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, RL_MAX_DEVICE_CONFLICTS);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int mine_is_hub = sqlite3_column_int(st, 4);
		size_t these = (size_t)sqlite3_column_bytes(st, 5) + (size_t)sqlite3_column_bytes(st, 6) +
			       (size_t)sqlite3_column_bytes(st, 11);
		struct rl_value mine, theirs, decided;
		const char *winner = (const char *)sqlite3_column_text(st, 8);
		const char *state = (const char *)sqlite3_column_text(st, 9);
		const char *resolution = (const char *)sqlite3_column_text(st, 10);
		int kept_mine;
		json_t *o;
		if (json_array_size(list) > 0 && bytes + these > RL_MAX_DEVICE_CONFLICT_BYTES) {
			rc = SQLITE_DONE;   /* the rest, older, on a later sync's list */
			break;
		}
		bytes += these;
		/* Whose value stands now: the provisional winner while open; the
		 * admin's choice once resolved ("keep" = the hub's value). */
		if (strcmp(state, "open") == 0)
			kept_mine = (strcmp(winner, "hub") == 0) == mine_is_hub;
		else
			kept_mine = resolution && strcmp(resolution, "value") != 0 &&
				    (strcmp(resolution, "keep") == 0 ||
				     strcmp(resolution, "latest") == 0) == mine_is_hub;
		rl_store_column_value(st, mine_is_hub ? 5 : 6, &mine);
		rl_store_column_value(st, mine_is_hub ? 6 : 5, &theirs);
		rl_store_column_value(st, 11, &decided);
		o = json_pack("{s:I, s:s, s:s, s:s, s:o, s:o, s:s, s:b, s:s, s:s?, s:o, s:s, s:s}",
			      "id", (json_int_t)sqlite3_column_int64(st, 0),
			      "t", (const char *)sqlite3_column_text(st, 1),
			      "r", (const char *)sqlite3_column_text(st, 2),
			      "f", (const char *)sqlite3_column_text(st, 3),
			      "mine", hub_value_json(&mine), "theirs", hub_value_json(&theirs),
			      "by", (const char *)sqlite3_column_text(st, 7),
			      "kept_mine", kept_mine, "state", state, "resolution", resolution,
			      "decided", hub_value_json(&decided),
			      "at", (const char *)sqlite3_column_text(st, 12),
			      "kind", (const char *)sqlite3_column_text(st, 13));
		if (!o || json_array_append_new(list, o) < 0) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			break;
		}
	}
	sqlite3_reset(st);
	if (error == RL_OK && rc != SQLITE_DONE)
		error = rl_store_error(s, "reading conflicts");
	if (error < 0) {
		json_decref(list);
		return error;
	}
	*out = list;
	return RL_OK;
}

/* A record's run in a pull page: fields remembered to tell when its
 * creation is complete (a table has fewer; a longer run has repeats). */
#define PULL_RUN_FIELDS 96

static int run_has_field(char (*fields)[64], int n, const char *field)
{
	int i;

	if (n >= PULL_RUN_FIELDS)
		return 1;
	for (i = 0; i < n; i++)
		if (strncmp(fields[i], field, sizeof(fields[0]) - 1) == 0)
			return 1;
	return 0;
}

int hub_pull_text(rl_store *s, const struct hub_peer *p, json_t *pull, char **text,
		  struct hub_stats *stats)
{
	json_t *jc = json_object_get(pull, "cursor"), *jl = json_object_get(pull, "limit");
	long long cursor, limit;
	json_t *conflicts = NULL;
	char last_tbl[64] = "", last_row[RL_ID_BUFSZ] = "", *dump = NULL;
	/* The fields of the current record's run so far: a field seen twice
	 * means its creation (each field once) is complete. */
	char run_fields[PULL_RUN_FIELDS][64];
	int nrun = 0;
	long long last, at = 0;
	sqlite3_str *out = NULL;
	sqlite3_stmt *st;
	int error, rc, more = 0, began = 0;
	long count = 0;

	*text = NULL;
	if (!json_is_integer(jc) || !json_is_integer(jl))
		return rl_error_set(RL_EPROTO, "PULL needs cursor and limit");
	cursor = json_integer_value(jc);
	limit = json_integer_value(jl);
	if (cursor < 0 || limit < 1)
		return rl_error_set(RL_EPROTO, "PULL: bad cursor or limit");
	if (limit > RL_MAX_PAGE_CHANGES)
		limit = RL_MAX_PAGE_CHANGES;
	/* The hub's own events (device enrolment and revocation, tokens) are in
	 * hub_log only for the audit history: no device syncs those tables,
	 * and a rep has no business learning the other devices' ids, so
	 * neither the page nor "more" counts them. The last page's cursor is
	 * the log's end all the same (below), as a snapshot image's is: a
	 * device's cursor means "everything up to here", whichever way it came. */
	/* Read in one transaction so the page is a consistent snapshot: its
	 * changes, whether more follow, and the conflict list (a push
	 * committing between those reads would otherwise show in one and not
	 * the other). A caller's own transaction serves as well. */
	if (sqlite3_get_autocommit(rl_store_db(s))) {
		if (sqlite3_exec(rl_store_db(s), "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
			return rl_store_error(s, "beginning a pull");
		began = 1;
	}
	if ((error = rl_store_prepare(s, "SELECT seq, tbl, row_id, field, value, hlc, device "
				      "FROM hub_log WHERE seq > ?1 AND tbl NOT IN " HUB_EVENT_TABLES
				      " ORDER BY seq LIMIT ?2", &st)) < 0)
		goto cleanup;
	out = sqlite3_str_new(rl_store_db(s));
	sqlite3_str_appendall(out, "{\"changes\":[");
	sqlite3_bind_int64(st, 1, cursor);
	/* Up to the limit, then on to the end of the last record's run. */
	sqlite3_bind_int64(st, 2, limit + 64);
	last = cursor;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *tbl = (const char *)sqlite3_column_text(st, 1);
		const char *row = (const char *)sqlite3_column_text(st, 2);
		const char *field = (const char *)sqlite3_column_text(st, 3);
		const char *device = (const char *)sqlite3_column_text(st, 6);
		struct rl_value v;
		if (!tbl || !row || !field || !device) {
			error = rl_store_error(s, "reading the hub log");
			break;
		}
		if (strcmp(tbl, last_tbl) != 0 || strcmp(row, last_row) != 0)
			nrun = 0;
		/* Full (by count or by size): end at a record boundary, or
		 * inside a record's run once its fields have all come (a long
		 * run of edits to one record's notes must not grow the page
		 * beyond a frame: every device would stop at it). */
		if (count > 0 && (count >= limit || sqlite3_str_length(out) >= RL_MAX_PAGE_BYTES) &&
		    (nrun == 0 || run_has_field(run_fields, nrun, field))) {
			more = 1;
			break;
		}
		if (nrun < PULL_RUN_FIELDS)
			snprintf(run_fields[nrun++], sizeof(run_fields[0]), "%s", field);
		rl_store_column_value(st, 4, &v);
		at = sqlite3_column_int64(st, 0);
		sqlite3_str_appendf(out, "%s{\"s\":%lld,\"t\":", count ? "," : "", at);
		if ((error = rl_jsonw_string(out, tbl)) < 0)
			break;
		sqlite3_str_appendall(out, ",\"r\":");
		if ((error = rl_jsonw_string(out, row)) < 0)
			break;
		sqlite3_str_appendall(out, ",\"f\":");
		if ((error = rl_jsonw_string(out, field)) < 0)
			break;
		sqlite3_str_appendall(out, ",\"v\":");
		if ((error = rl_jsonw_value(out, &v)) < 0)
			break;
		sqlite3_str_appendf(out, ",\"h\":%lld,\"d\":", (long long)sqlite3_column_int64(st, 5));
		if ((error = rl_jsonw_string(out, device)) < 0)
			break;
		sqlite3_str_appendchar(out, 1, '}');
		last = at;
		snprintf(last_tbl, sizeof(last_tbl), "%s", tbl);
		snprintf(last_row, sizeof(last_row), "%s", row);
		count++;
	}
	sqlite3_reset(st);
	if (error < 0) {
		rl_error_prefix("hub log entry %lld", at);
		goto cleanup;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		error = rl_store_error(s, "reading the hub log");
		goto cleanup;
	}
	/* Stopped by the statement's LIMIT: there may be more. Else the log
	 * was read to its end in this read's snapshot, and all that follows
	 * `last` is the hub's own events, so the cursor may pass them. */
	if (!more && count >= limit + 64)
		more = 1;
	if (!more) {
		long long top;
		if ((error = hub_log_last(s, &top)) < 0)
			goto cleanup;
		if (top > last)
			last = top;
	}
	sqlite3_str_appendf(out, "],\"cursor\":%lld,\"more\":%s", last, more ? "true" : "false");
	/* The last page also tells the device where its edits stand. */
	if (!more) {
		if ((error = device_conflicts(s, p->user, &conflicts)) < 0)
			goto cleanup;
		if (!(dump = rl_json_dumps(conflicts, JSON_COMPACT))) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto cleanup;
		}
		sqlite3_str_appendf(out, ",\"conflicts\":%s", dump);
	}
	sqlite3_str_appendchar(out, 1, '}');
	error = rl_jsonw_finish(out, text);
	out = NULL;
	if (error == 0)
		stats->pulled += count;
cleanup:
	if (began)     /* only read: ending it cannot lose anything */
		sqlite3_exec(rl_store_db(s), "COMMIT", NULL, NULL, NULL);
	if (out)
		sqlite3_free(sqlite3_str_finish(out));
	free(dump);
	json_decref(conflicts);
	return error;
}

int hub_pull(rl_store *s, const struct hub_peer *p, json_t *pull, json_t **page,
	     struct hub_stats *stats)
{
	char *text = NULL;
	int error;

	*page = NULL;
	if ((error = hub_pull_text(s, p, pull, &text, stats)) < 0)
		return error;
	if (!(*page = json_loads(text, JSON_REJECT_DUPLICATES, NULL)))
		error = rl_error_set(RL_ENOMEM, "a page the hub wrote does not read back");
	free(text);
	return error;
}

/* ---- conflicts ------------------------------------------------------------------------ */

/* One conflict decided, inside the caller's transaction and audit commit.
 * *partner: its pair's conflict if that one is still open, else 0; what:
 * "conflict ID on TABLE.FIELD", for the audit commit's note. */
static int resolve_one(rl_store *s, long long id, const char *mode, const char *value,
		       int force, long long *seq, long long *partner, char what[160])
{
	struct owned_value chosen = { { RL_V_NULL, 0, 0, NULL }, NULL };
	struct rl_converted conv = { 0, 0, 0, 0, NULL, 0 };
	char tbl[64], row[RL_ID_BUFSZ], field[64], now[21], ref[RL_ID_BUFSZ];
	long long left = -1, now_version;
	const struct rl_table *t;
	const struct rl_field *f;
	sqlite3_stmt *st;
	int error, rc;

	*partner = 0;
	if ((error = rl_store_prepare(s, "SELECT c.tbl, c.row_id, c.field, c.hub_value, c.in_value, "
				      "c.state, c.left_version, coalesce(c.resolution, '?'), "
				      "coalesce(c.resolved_at, '?'), p.id FROM hub_conflicts c "
				      "LEFT JOIN hub_conflicts p ON p.id = c.partner AND "
				      "p.state = 'open' WHERE c.id = ?1", &st)) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		error = rl_error_set(RL_ENOTFOUND, "no conflict %lld", id);
		goto fail;
	}
	snprintf(tbl, sizeof(tbl), "%s", (const char *)sqlite3_column_text(st, 0));
	snprintf(row, sizeof(row), "%s", (const char *)sqlite3_column_text(st, 1));
	snprintf(field, sizeof(field), "%s", (const char *)sqlite3_column_text(st, 2));
	snprintf(what, 160, "conflict %lld on %s.%s", id, tbl, field);
	/* Said with how and when, so that an admin who meets a decision made
	 * meanwhile (by another admin, a duplicate merge, or at once for a
	 * stage move) knows what stands. */
	if (strcmp((const char *)sqlite3_column_text(st, 5), "open") != 0) {
		error = rl_error_set(RL_EINVALID, "conflict %lld is already resolved (%s, %s; "
				     "`conflicts show %lld`)", id,
				     (const char *)sqlite3_column_text(st, 7),
				     (const char *)sqlite3_column_text(st, 8), id);
		sqlite3_reset(st);
		goto fail;
	}
	if (sqlite3_column_type(st, 6) == SQLITE_INTEGER)
		left = sqlite3_column_int64(st, 6);
	*partner = sqlite3_column_int64(st, 9);
	if (strcmp(mode, "value") != 0) {
		struct rl_value v;
		rl_store_column_value(st, strcmp(mode, "keep") == 0 ? 3 : 4, &v);
		error = own_value(&chosen, &v);
	}
	sqlite3_reset(st);
	if (error < 0)
		goto fail;
	/* The decision is on the two values the conflict holds; a change of
	 * the field since then (a rep who corrected the provisional winner, a
	 * later conflict) would be overwritten without anyone deciding on it. */
	if (left >= 0 && !force) {
		if ((error = hub_field_version(s, tbl, row, field, &now_version)) < 0)
			goto fail;
		if (now_version != left) {
			error = rl_error_set(RL_EINVALID, "conflict %lld: %s.%s has changed since the "
					     "conflict (now version %lld; `conflicts show %lld`); "
					     "resolving would overwrite that change: give --force "
					     "to do so", id, tbl, field, now_version, id);
			goto fail;
		}
	}
	t = rl_model_table(tbl);
	f = t ? rl_model_field(t, field) : NULL;
	if (!f) {
		error = rl_error_set(RL_ESTORE, "conflict %lld names an unknown field", id);
		goto fail;
	}
	if (strcmp(mode, "value") == 0) {
		char cur[4] = "IDR";
		if (rl_model_field(t, "currency")) {
			char *sql = sqlite3_mprintf("SELECT currency FROM \"%w\" WHERE id = ?1", tbl);
			if (!sql) {
				error = rl_error_set(RL_ENOMEM, "out of memory");
				goto fail;
			}
			error = rl_store_prepare(s, sql, &st);
			sqlite3_free(sql);
			if (error < 0)
				goto fail;
			sqlite3_bind_text(st, 1, row, -1, SQLITE_STATIC);
			rc = sqlite3_step(st);
			if (rc == SQLITE_ROW && sqlite3_column_text(st, 0))
				snprintf(cur, sizeof(cur), "%s", (const char *)sqlite3_column_text(st, 0));
			sqlite3_reset(st);
			if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
				error = rl_store_error(s, "reading the record's currency");
				goto fail;
			}
		}
		if ((error = rl_record_convert(s, t, f, value, cur, &conv)) < 0)
			goto fail;
		if (conv.is_null)
			chosen.v.type = RL_V_NULL;
		else if (conv.kind == SQLITE_INTEGER) {
			chosen.v.type = RL_V_INT;
			chosen.v.i = conv.i;
		} else if (conv.kind == SQLITE_FLOAT) {
			chosen.v.type = RL_V_REAL;
			chosen.v.d = conv.d;
		} else {
			chosen.v.type = RL_V_TEXT;
			chosen.v.s = conv.text;
		}
	}
	/* A customer merged away since the conflict: its survivor. */
	if ((error = redirect_ref(s, f, &chosen.v, ref)) < 0 ||
	    (error = check_entry(t, f, &chosen.v)) < 0 ||
	    (error = hub_write_field(s, tbl, row, field, &chosen.v, "resolve", seq)) < 0 ||
	    /* The value written may be a phone, e-mail, name or city no one
	     * pushed (--value), or a decided delete: the match keys follow. */
	    (keys_field(field) && (error = hub_duplicates_check(s, tbl, row, NULL)) < 0))
		goto fail;
	rl_time_format_utc(now, rl_store_now_ms(s) / 1000);
	if ((error = rl_store_prepare(s, "UPDATE hub_conflicts SET state = 'resolved', resolution = ?2, "
				      "resolved_value = ?3, resolved_at = ?4, resolved_seq = ?5 "
				      "WHERE id = ?1", &st)) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, mode, -1, SQLITE_STATIC);
	rl_store_bind_value(st, 3, &chosen.v);
	sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, *seq);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		error = rl_store_error(s, "closing the conflict");
fail:
	rl_converted_clear(&conv);
	free_owned(&chosen);
	return error;
}

int hub_conflict_resolve(rl_store *s, long long id, const char *mode, const char *value,
			 int force, long long *seq, long long *partner)
{
	char note[400], what[160], other_what[160];
	long long first_seq, other = 0, other_seq, none;
	int error;

	*partner = 0;
	if (strcmp(mode, "keep") && strcmp(mode, "take") && strcmp(mode, "value"))
		return rl_error_set(RL_EINVALID, "resolve with keep, take or a value");
	if ((error = rl_store_begin(s)) < 0)
		return error;
	if ((error = hub_audit_begin(s, &first_seq)) < 0 ||
	    (error = resolve_one(s, id, mode, value, force, seq, &other, what)) < 0)
		goto fail;
	/* --keep and --take decide the pair's other field the same way: one
	 * side's whole value, never its amount with the other's currency. A
	 * --value is one field's: the other stays open for its own decision. */
	if (other && strcmp(mode, "value") != 0) {
		if ((error = resolve_one(s, other, mode, NULL, force, &other_seq, &none,
					 other_what)) < 0)
			goto fail;
		*partner = other;
		snprintf(note, sizeof(note), "%s and %s resolved: %s", what, other_what, mode);
	} else {
		snprintf(note, sizeof(note), "%s resolved: %s", what, mode);
	}
	if ((error = hub_audit_mark(s, first_seq, "resolve", "hub", NULL, 0, 0, note)) < 0 ||
	    (error = rl_store_commit(s)) < 0)
		goto fail;
	return RL_OK;
fail:
	rl_store_rollback(s);
	return error;
}
