/*
 * cmd_records.c — add, edit, show, list and delete for accounts, contacts,
 * deals, tasks and pipeline stages; deal move / won / lost; task done.
 *
 * add/edit options come from the model (relasi/model.h), so every field a
 * record has can be set by name and is validated the same way as in imports.
 * Listings use fixed SQL with optional filters bound as parameters.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "relasi/limits.h"
#include "relasi/valid.h"

/* ---- add / edit / delete -------------------------------------------------- */

static const struct rl_table *table_of(const struct cli_args *a)
{
	return rl_model_table(a->cmd->model_table);
}

struct write_args {
	const struct rl_table *t;
	struct rl_fieldval *vals;
	size_t n;
	char id[RL_ID_BUFSZ];
	int create;
};

static int record_stage_event(struct cli_ctx *ctx, const char *deal, const char *from,
			      const char *to);

/* --done on a task: done_at says when, so it follows done. A task marked
 * done gets now (unless it was done already); one marked not done loses
 * it, or 'task show' would say an open task was done. */
static int sync_done_at(struct cli_ctx *ctx, const struct write_args *w)
{
	const struct rl_table *tasks = rl_model_table("tasks");
	sqlite3_stmt *st;
	char now_iso[21];
	int error, done, has_at;
	size_t i;

	for (i = 0; i < w->n && strcmp(w->vals[i].field, "done") != 0; i++)
		;
	if (w->t != tasks || i == w->n)
		return RL_OK;
	if ((error = rl_store_prepare(ctx->store, "SELECT done, done_at IS NOT NULL FROM tasks "
				      "WHERE id = ?1", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, w->id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return rl_store_error(ctx->store, "reading the task");
	}
	done = sqlite3_column_int(st, 0);
	has_at = sqlite3_column_int(st, 1);
	sqlite3_reset(st);
	if (done == has_at)
		return RL_OK;
	rl_time_format_utc(now_iso, rl_store_now_ms(ctx->store) / 1000);
	return rl_record_set_raw_text(ctx->store, tasks, w->id, "done_at", done ? now_iso : NULL);
}

/*
 * After a write to an existing record (an edit, a stage move, a task done,
 * a delete): if the hub will likely refuse it (a colleague's deal, visit
 * or task, as this device knows), say so now, while the rep can still ask
 * the colleague or a manager, rather than as a refused change at the next
 * sync. The write stands: the device may not know that a manager has
 * given the record to this rep since.
 */
static void warn_if_not_yours(struct cli_ctx *ctx, const struct rl_table *t, const char *id,
			      const char *field)
{
	char owner[RL_MAX_NAME_BYTES + 1];
	const char *why = rl_record_owner_refusal(ctx->store, t, id, field, owner, sizeof(owner));

	if (why)
		fprintf(stderr, "relasi: warning: this %s %s%s%s as far as this device knows; the "
			"hub will refuse the change at the next sync unless it is yours by then (%s). "
			"A refused change shows in 'relasi status'.\n", t->noun,
			owner[0] ? "is " : "has no owner", owner, owner[0] ? "'s" : "", why);
}

static int do_write(struct cli_ctx *ctx, void *arg)
{
	struct write_args *w = arg;
	sqlite3_stmt *st;
	char stage[RL_ID_BUFSZ];
	int error;

	if (!w->create) {
		if ((error = rl_record_update(ctx->store, w->t, w->id, w->vals, w->n)) < 0)
			return error;
		return sync_done_at(ctx, w);
	}
	if ((error = rl_record_create(ctx->store, w->t, w->vals, w->n, w->id)) < 0 ||
	    (error = sync_done_at(ctx, w)) < 0)
		return error;
	if (strcmp(w->t->name, "deals") != 0)
		return RL_OK;
	/* A deal's first stage is an event too: conversion counts entries. */
	if ((error = rl_store_prepare(ctx->store, "SELECT stage_id FROM deals WHERE id = ?1", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, w->id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return rl_store_error(ctx->store, "reading the new deal");
	}
	snprintf(stage, sizeof(stage), "%s", cli_col(st, 0));
	sqlite3_reset(st);
	return record_stage_event(ctx, w->id, NULL, stage);
}

/* --geo LAT,LON becomes lat and lon values (strings live in geo_buf). */
static int add_geo(struct cli_args *a, struct rl_fieldval *vals, size_t *n, char geo_buf[2][40])
{
	const char *geo = cli_get(a, "geo");
	double lat, lon;
	int error;

	if (!geo)
		return RL_OK;
	if ((error = rl_geo_parse(&lat, &lon, geo)) < 0)
		return error;
	snprintf(geo_buf[0], 40, "%.7f", lat);
	snprintf(geo_buf[1], 40, "%.7f", lon);
	vals[(*n)].field = "lat";
	vals[(*n)++].text = geo_buf[0];
	vals[(*n)].field = "lon";
	vals[(*n)++].text = geo_buf[1];
	return RL_OK;
}

static int print_record(struct cli_ctx *ctx, const struct rl_table *t, const char *id);

static int cmd_add(struct cli_ctx *ctx, struct cli_args *a)
{
	struct write_args w = { 0 };
	char geo[2][40];
	size_t i;
	int error;

	w.t = table_of(a);
	w.create = 1;
	if (!(w.vals = cli_model_values(a, &w.n, 3)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	for (i = 0; i < w.n; i++)
		if (strcmp(w.vals[i].field, w.t->label_field) == 0) {
			free(w.vals);
			return cli_usage_error(a->cmd, "give the %s as the argument, not as an option",
					       w.t->label_field);
		}
	w.vals[w.n].field = w.t->label_field;
	w.vals[w.n++].text = a->pos[0];
	if ((error = add_geo(a, w.vals, &w.n, geo)) < 0)
		goto cleanup;
	if ((error = cli_write(ctx, do_write, &w)) < 0)
		goto cleanup;
	if (ctx->json) {
		error = print_record(ctx, w.t, w.id);
	} else {
		char sid[RL_ID_BUFSZ];
		printf("added %s %s  %s\n", w.t->noun, cli_short_id(ctx, w.t->name, w.id, sid), a->pos[0]);
	}
cleanup:
	free(w.vals);
	return error;
}

static int cmd_edit(struct cli_ctx *ctx, struct cli_args *a)
{
	struct write_args w = { 0 };
	char geo[2][40];
	int error;

	w.t = table_of(a);
	if ((error = rl_record_resolve(ctx->store, w.t, a->pos[0], w.id)) < 0)
		return error;
	if (!(w.vals = cli_model_values(a, &w.n, 2)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	if ((error = add_geo(a, w.vals, &w.n, geo)) < 0)
		goto cleanup;
	if (w.n == 0) {
		free(w.vals);
		return cli_usage_error(a->cmd, "nothing to change: give at least one --FIELD VALUE");
	}
	if (strcmp(w.t->name, "deals") == 0 && cli_get(a, "stage")) {
		free(w.vals);
		return cli_usage_error(a->cmd, "use 'relasi deal move DEAL STAGE' to change the stage");
	}
	if ((error = cli_write(ctx, do_write, &w)) < 0)
		goto cleanup;
	warn_if_not_yours(ctx, w.t, w.id, w.vals[0].field);
	if (ctx->json) {
		error = print_record(ctx, w.t, w.id);
	} else {
		char sid[RL_ID_BUFSZ];
		printf("updated %s %s\n", w.t->noun, cli_short_id(ctx, w.t->name, w.id, sid));
	}
cleanup:
	free(w.vals);
	return error;
}

/*
 * delete: a record others name (a customer's contacts, deals, visits and
 * tasks; a contact or deal another record names) is refused, exit 5, with
 * what it has, and nothing changes; --cascade deletes it and what belongs
 * to it and clears the contact or deal reference of the records that only
 * mention it, in this one transaction, each an ordinary change that syncs,
 * and lists them (rl_record_delete_ex, docs/sync.md "Deleting a record
 * that others name"). The dependants are found inside the write transaction, so
 * the list printed is exactly what was deleted.
 */
struct delete_args {
	const struct rl_table *t;
	char id[RL_ID_BUFSZ];
	unsigned flags;
	struct rl_dependants deps;
};

static int do_delete(struct cli_ctx *ctx, void *arg)
{
	struct delete_args *d = arg;
	return rl_record_delete_ex(ctx->store, d->t, d->id, d->flags, &d->deps);
}

static const char *ref_label(struct cli_ctx *ctx, const char *table, const char *id,
			     char *buf, size_t len);

static int cmd_delete(struct cli_ctx *ctx, struct cli_args *a)
{
	struct delete_args d = { 0 };
	char sid[RL_ID_BUFSZ], label[256];
	json_t *o = NULL, *list;
	size_t i;
	int error;

	d.t = table_of(a);
	d.flags = cli_get(a, "cascade") ? RL_DELETE_CASCADE : 0;
	if ((error = rl_record_resolve(ctx->store, d.t, a->pos[0], d.id)) < 0)
		return error;
	cli_short_id(ctx, d.t->name, d.id, sid);
	if ((error = cli_write(ctx, do_delete, &d)) < 0)
		goto cleanup;
	/* A cascade was checked with the owners this device knows
	 * (record.c); a single delete, like an edit, is written and warned of. */
	if (!(d.flags & RL_DELETE_CASCADE))
		warn_if_not_yours(ctx, d.t, d.id, "deleted");
	if (ctx->json) {
		if (!(o = json_pack("{s:s, s:s, s:b}", "id", d.id, "table", d.t->name, "deleted", 1)) ||
		    !(list = json_array()) || json_object_set_new(o, "cascade", list) < 0) {
			json_decref(o);
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto cleanup;
		}
		for (i = 0; i < d.deps.n; i++)
			json_array_append_new(list, json_pack("{s:s, s:s, s:s?, s:s?}",
				"table", d.deps.v[i].t->name, "id", d.deps.v[i].id, "label",
				ref_label(ctx, d.deps.v[i].t->name, d.deps.v[i].id, label,
					  sizeof(label))[0] ? label : NULL,
				"cleared", d.deps.v[i].cleared));
		error = cli_print_json(o);
		goto cleanup;
	}
	printf("deleted %s %s  %s\n", d.t->noun, sid,
	       ref_label(ctx, d.t->name, d.id, label, sizeof(label)));
	for (i = 0; i < d.deps.n; i++) {
		const struct rl_field *f = d.deps.v[i].cleared
			? rl_model_field(d.deps.v[i].t, d.deps.v[i].cleared) : NULL;
		const struct rl_table *rt = f && f->ref ? rl_model_table(f->ref) : NULL;
		if (f)
			printf("cleared %s of %s %s  %s\n", rt ? rt->noun : f->name,
			       d.deps.v[i].t->noun,
			       cli_short_id(ctx, d.deps.v[i].t->name, d.deps.v[i].id, sid),
			       ref_label(ctx, d.deps.v[i].t->name, d.deps.v[i].id, label,
					 sizeof(label)));
		else
			printf("deleted %s %s  %s\n", d.deps.v[i].t->noun,
			       cli_short_id(ctx, d.deps.v[i].t->name, d.deps.v[i].id, sid),
			       ref_label(ctx, d.deps.v[i].t->name, d.deps.v[i].id, label,
					 sizeof(label)));
	}
cleanup:
	rl_dependants_free(&d.deps);
	return error;
}

/* ---- show ------------------------------------------------------------------ */

/* The label of a referenced record, for display: "Toko Makmur". */
static const char *ref_label(struct cli_ctx *ctx, const char *table, const char *id,
			     char *buf, size_t len)
{
	const struct rl_table *t = rl_model_table(table);
	sqlite3_stmt *st;
	char *sql;

	buf[0] = '\0';
	if (!t || !id)
		return buf;
	if (!(sql = sqlite3_mprintf("SELECT \"%w\" FROM \"%w\" WHERE id = ?1", t->label_field,
				    t->name)))
		return buf;
	if (rl_store_prepare(ctx->store, sql, &st) == RL_OK) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			snprintf(buf, len, "%s", cli_col(st, 0));
		sqlite3_reset(st);
	}
	sqlite3_free(sql);
	return buf;
}

static int print_record(struct cli_ctx *ctx, const struct rl_table *t, const char *id)
{
	char *sql = sqlite3_mprintf("SELECT * FROM \"%w\" WHERE id = ?1", t->name);
	char sid[RL_ID_BUFSZ], label[256], money[64];
	sqlite3_stmt *st;
	int error, i, n, amount_col = -1, currency_col = -1;
	json_t *o;

	if (!sql)
		return rl_error_set(RL_ENOMEM, "out of memory");
	error = rl_store_prepare(ctx->store, sql, &st);
	sqlite3_free(sql);
	if (error < 0)
		return error;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return rl_error_set(RL_ENOTFOUND, "no %s with id %s", t->noun, id);
	}
	n = sqlite3_column_count(st);
	for (i = 0; i < n; i++) {
		if (strcmp(sqlite3_column_name(st, i), "amount") == 0)
			amount_col = i;
		if (strcmp(sqlite3_column_name(st, i), "currency") == 0)
			currency_col = i;
	}
	cli_short_id(ctx, t->name, id, sid);
	if (ctx->json) {
		o = cli_row_json(st);
		json_object_set_new(o, "short_id", json_string(sid));
		if (amount_col >= 0 && currency_col >= 0)
			json_object_set_new(o, "amount_display",
				json_string(cli_money(money, sizeof(money), st, amount_col, currency_col)));
		for (i = 0; i < n; i++) {
			const struct rl_field *f = rl_model_field(t, sqlite3_column_name(st, i));
			char key[80];
			if (!f || f->type != RL_FT_REF || sqlite3_column_type(st, i) == SQLITE_NULL)
				continue;
			snprintf(key, sizeof(key), "%.60s_label", f->name);
			json_object_set_new(o, key, json_string(
				ref_label(ctx, f->ref, cli_col(st, i), label, sizeof(label))));
		}
		sqlite3_reset(st);
		return cli_print_json(o);
	}
	printf("%s %s\n", t->noun, sid);
	for (i = 0; i < n; i++) {
		const char *name = sqlite3_column_name(st, i);
		const struct rl_field *f = rl_model_field(t, name);
		if (strcmp(name, "id") == 0 || strcmp(name, "currency") == 0 ||
		    strcmp(name, "deleted") == 0 || sqlite3_column_type(st, i) == SQLITE_NULL)
			continue;
		if (i == amount_col) {
			printf("  %-15s %s\n", name, cli_money(money, sizeof(money), st, amount_col,
							       currency_col));
		} else if (f && f->type == RL_FT_REF) {
			char rsid[RL_ID_BUFSZ];
			printf("  %-15s %s  %s\n", name,
			       cli_short_id(ctx, f->ref, cli_col(st, i), rsid),
			       ref_label(ctx, f->ref, cli_col(st, i), label, sizeof(label)));
		} else if (f && f->type == RL_FT_BOOL) {
			printf("  %-15s %s\n", name, sqlite3_column_int(st, i) ? "yes" : "no");
		} else {
			cli_print_field(name, cli_col(st, i));
		}
	}
	sqlite3_reset(st);
	return RL_OK;
}

static int cmd_show(struct cli_ctx *ctx, struct cli_args *a)
{
	const struct rl_table *t = table_of(a);
	char id[RL_ID_BUFSZ];
	int error;

	if ((error = rl_record_resolve(ctx->store, t, a->pos[0], id)) < 0)
		return error;
	return print_record(ctx, t, id);
}

/* ---- list ------------------------------------------------------------------ */

/*
 * A listing: fixed SQL whose first column is the id and the rest are shown;
 * ?1..?N are the filters in the order of opts (NULL when not given). Filters
 * whose option has field set to a table name take a record reference that is
 * resolved to an id first.
 */
struct list_spec {
	const char *table;
	const char *sql;
	const char *const *headers;
	int ncols;              /* shown columns after the id */
	const struct cli_opt *opts;
	int amount_col, currency_col; /* -1 if none; money shown in amount_col */
};

static const char *const account_hdr[] = { "id", "name", "city", "phone", "owner" };
static const struct cli_opt account_list_opts[] = {
	{ "city", 1, "CITY", "only customers in this city", NULL },
	{ "region", 1, "REGION", "only this region", NULL },
	{ "tag", 1, "TAG", "only customers with this tag", NULL },
	{ "limit", 1, "N", "at most N rows (default 1000)", NULL },
	{ NULL, 0, NULL, NULL, NULL }
};
static const char *const contact_hdr[] = { "id", "name", "account", "phone", "email" };
static const struct cli_opt contact_list_opts[] = {
	{ "account", 1, "ACCOUNT", "only contacts of this customer", "accounts" },
	{ "city", 1, "CITY", "only this city", NULL },
	{ "limit", 1, "N", "at most N rows (default 1000)", NULL },
	{ NULL, 0, NULL, NULL, NULL }
};
static const char *const deal_hdr[] = { "id", "title", "account", "stage", "amount", "close" };
static const struct cli_opt deal_list_opts[] = {
	{ "account", 1, "ACCOUNT", "only deals of this customer", "accounts" },
	{ "stage", 1, "STAGE", "only deals in this stage", "stages" },
	{ "status", 1, "STATUS", "open, won or lost", NULL },
	{ "limit", 1, "N", "at most N rows (default 1000)", NULL },
	{ NULL, 0, NULL, NULL, NULL }
};
static const char *const task_hdr[] = { "id", "due", "title", "account", "done" };
static const struct cli_opt task_list_opts[] = {
	{ "account", 1, "ACCOUNT", "only tasks of this customer", "accounts" },
	{ "status", 1, "STATUS", "open (default) , done or all", NULL },
	{ "due-before", 1, "DATE", "only tasks due on or before DATE", NULL },
	{ "limit", 1, "N", "at most N rows (default 1000)", NULL },
	{ NULL, 0, NULL, NULL, NULL }
};
static const char *const stage_hdr[] = { "id", "position", "name", "probability", "kind" };

static const struct list_spec list_specs[] = {
	{ "accounts",
	  "SELECT a.id, a.name, a.city, a.phone, u.name AS owner FROM accounts a "
	  "LEFT JOIN users u ON u.id = a.owner_id WHERE a.deleted = 0 "
	  "AND (?1 IS NULL OR a.city = ?1 COLLATE NOCASE) "
	  "AND (?2 IS NULL OR a.region = ?2 COLLATE NOCASE) "
	  "AND (?3 IS NULL OR ',' || replace(lower(a.tags), ' ', '') || ',' "
	  "     LIKE '%,' || replace(lower(?3), ' ', '') || ',%') "
	  "ORDER BY a.name COLLATE NOCASE, a.id LIMIT coalesce(?4, 1000)",
	  account_hdr, 4, account_list_opts, -1, -1 },
	{ "contacts",
	  "SELECT c.id, c.name, " RP_CUSTOMER_NAME("a") " AS account, c.phone, c.email, "
	  "coalesce(a.deleted, 0) AS account_deleted FROM contacts c "
	  "LEFT JOIN accounts a ON a.id = c.account_id WHERE c.deleted = 0 "
	  "AND (?1 IS NULL OR c.account_id = ?1) AND (?2 IS NULL OR c.city = ?2 COLLATE NOCASE) "
	  "ORDER BY c.name COLLATE NOCASE, c.id LIMIT coalesce(?3, 1000)",
	  contact_hdr, 4, contact_list_opts, -1, -1 },
	{ "deals",
	  "SELECT d.id, d.title, " RP_CUSTOMER_NAME("a") " AS account, s.name AS stage, d.amount, "
	  "d.expected_close, d.currency, s.kind AS status, coalesce(a.deleted, 0) AS account_deleted "
	  "FROM deals d JOIN stages s ON s.id = d.stage_id "
	  "LEFT JOIN accounts a ON a.id = d.account_id WHERE d.deleted = 0 "
	  "AND (?1 IS NULL OR d.account_id = ?1) AND (?2 IS NULL OR d.stage_id = ?2) "
	  "AND (?3 IS NULL OR s.kind = ?3) "
	  "ORDER BY s.position, d.expected_close, d.id LIMIT coalesce(?4, 1000)",
	  deal_hdr, 5, deal_list_opts, 4, 6 },
	{ "tasks",
	  "SELECT t.id, t.due, t.title, " RP_CUSTOMER_NAME("a") " AS account, "
	  "CASE t.done WHEN 1 THEN 'yes' ELSE 'no' END AS done, "
	  "coalesce(a.deleted, 0) AS account_deleted FROM tasks t "
	  "LEFT JOIN accounts a ON a.id = t.account_id WHERE t.deleted = 0 "
	  "AND (?1 IS NULL OR t.account_id = ?1) "
	  "AND (coalesce(?2, 'open') = 'all' OR (coalesce(?2, 'open') = 'open' AND t.done = 0) "
	  "     OR (?2 = 'done' AND t.done = 1)) "
	  "AND (?3 IS NULL OR t.due <= ?3) "
	  "ORDER BY t.due IS NULL, t.due, t.title LIMIT coalesce(?4, 1000)",
	  task_hdr, 4, task_list_opts, -1, -1 },
	{ "stages",
	  "SELECT id, position, name, probability, kind FROM stages WHERE deleted = 0 "
	  "ORDER BY position, name",
	  stage_hdr, 4, NULL, -1, -1 },
};

static const struct list_spec *spec_for(const char *table)
{
	size_t i;
	for (i = 0; i < sizeof(list_specs) / sizeof(list_specs[0]); i++)
		if (strcmp(list_specs[i].table, table) == 0)
			return &list_specs[i];
	return NULL;
}

static int bind_filters(struct cli_ctx *ctx, const struct cli_args *a,
			const struct list_spec *ls, sqlite3_stmt *st)
{
	int i, error;

	for (i = 0; ls->opts && ls->opts[i].name; i++) {
		const char *v = cli_get(a, ls->opts[i].name);
		if (!v)
			continue;
		if (strcmp(ls->opts[i].name, "limit") == 0) {
			char *end;
			long n = strtol(v, &end, 10);
			if (*end || n <= 0 || n > 1000000)
				return rl_error_set(RL_EUSAGE, "--limit: '%s' is not a count 1..1000000", v);
			sqlite3_bind_int64(st, i + 1, n);
		} else if (strcmp(ls->opts[i].name, "status") == 0) {
			static const char *const ok_deal[] = { "open", "won", "lost", NULL };
			static const char *const ok_task[] = { "open", "done", "all", NULL };
			const char *const *ok = strcmp(ls->table, "deals") == 0 ? ok_deal : ok_task;
			int k;
			for (k = 0; ok[k] && strcmp(ok[k], v); k++)
				;
			if (!ok[k])
				return rl_error_set(RL_EUSAGE, "--status: '%s' is not one of %s, %s, %s",
						    v, ok[0], ok[1], ok[2]);
			sqlite3_bind_text(st, i + 1, v, -1, SQLITE_TRANSIENT);
		} else if (strcmp(ls->opts[i].name, "due-before") == 0) {
			char d[11];
			if ((error = rl_date_parse(d, v, rl_store_now_ms(ctx->store) / 1000,
						   rl_store_tz_offset(ctx->store))) < 0)
				return cli_option_error(error, "due-before");
			sqlite3_bind_text(st, i + 1, d, -1, SQLITE_TRANSIENT);
		} else if (ls->opts[i].field) {
			char id[RL_ID_BUFSZ];
			const struct rl_table *rt = rl_model_table(ls->opts[i].field);
			if ((error = rl_record_resolve(ctx->store, rt, v, id)) < 0)
				return error;
			sqlite3_bind_text(st, i + 1, id, -1, SQLITE_TRANSIENT);
		} else {
			sqlite3_bind_text(st, i + 1, v, -1, SQLITE_TRANSIENT);
		}
	}
	return RL_OK;
}

static const char *list_cell(struct cli_ctx *ctx, sqlite3_stmt *st, int col, char *buf,
			     size_t len)
{
	const struct list_spec *ls = spec_for(ctx->view_table);
	if (ls && col == ls->amount_col)
		return cli_money(buf, len, st, ls->amount_col, ls->currency_col);
	return NULL;
}

static void list_json(struct cli_ctx *ctx, sqlite3_stmt *st, json_t *row)
{
	const struct list_spec *ls = spec_for(ctx->view_table);
	char money[64];
	if (ls && ls->amount_col >= 0)
		json_object_set_new(row, "amount_display", json_string(
			cli_money(money, sizeof(money), st, ls->amount_col, ls->currency_col)));
}

static int cmd_list(struct cli_ctx *ctx, struct cli_args *a)
{
	const struct list_spec *ls = spec_for(a->cmd->model_table);
	struct cli_view view = { ls->headers, ls->ncols + 1, ls->table, list_cell, list_json, NULL };
	sqlite3_stmt *st;
	int error;

	ctx->view_table = ls->table;
	if ((error = rl_store_prepare(ctx->store, ls->sql, &st)) < 0)
		return error;
	if ((error = bind_filters(ctx, a, ls, st)) < 0) {
		sqlite3_reset(st);
		return error;
	}
	return cli_emit(ctx, st, &view, NULL, NULL);
}

/* ---- deals: move, won, lost -------------------------------------------------- */

struct move_args {
	char deal[RL_ID_BUFSZ];
	char stage[RL_ID_BUFSZ];
	const char *reason;
	char kind[8];
	char from[RL_ID_BUFSZ];
};

static int stage_of_kind(struct cli_ctx *ctx, const char *kind, char out[RL_ID_BUFSZ])
{
	sqlite3_stmt *st;
	int error;

	if ((error = rl_store_prepare(ctx->store, "SELECT id FROM stages WHERE kind = ?1 AND "
				      "deleted = 0 ORDER BY position LIMIT 1", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return rl_error_set(RL_ENOTFOUND, "the pipeline has no '%s' stage", kind);
	}
	snprintf(out, RL_ID_BUFSZ, "%s", cli_col(st, 0));
	sqlite3_reset(st);
	return RL_OK;
}

static int do_move(struct cli_ctx *ctx, void *arg)
{
	struct move_args *m = arg;
	const struct rl_table *deals = rl_model_table("deals");
	const struct rl_table *events = rl_model_table("deal_stage_events");
	char now_iso[21], ev[RL_ID_BUFSZ];
	sqlite3_stmt *st;
	int error;

	rl_time_format_utc(now_iso, rl_store_now_ms(ctx->store) / 1000);
	if ((error = rl_store_prepare(ctx->store, "SELECT d.stage_id, s.kind FROM deals d "
				      "JOIN stages s ON s.id = ?2 WHERE d.id = ?1", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, m->deal, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, m->stage, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return rl_error_set(RL_ENOTFOUND, "deal or stage vanished");
	}
	snprintf(m->from, sizeof(m->from), "%s", cli_col(st, 0));
	snprintf(m->kind, sizeof(m->kind), "%s", cli_col(st, 1));
	sqlite3_reset(st);
	if (strcmp(m->from, m->stage) == 0) {
		/* Only a lost deal's reason can be said again; closed_at stays
		 * when the deal was lost, not when the reason was corrected. */
		if (!m->reason || strcmp(m->kind, "lost") != 0)
			return rl_error_set(RL_EINVALID, "the deal is already in that stage");
		return rl_record_set_raw_text(ctx->store, deals, m->deal, "lost_reason", m->reason);
	}
	/* A lost deal says why, whichever command moved it (`deal lost` asks
	 * too); a reason anywhere else would be dropped without a word. */
	if (strcmp(m->kind, "lost") == 0 && !m->reason)
		return rl_error_set(RL_EUSAGE, "a deal moved to a lost stage needs --reason TEXT");
	if (strcmp(m->kind, "lost") != 0 && m->reason)
		return rl_error_set(RL_EUSAGE, "--reason is for a move to a lost stage");
	if ((error = rl_record_set_raw_text(ctx->store, deals, m->deal, "stage_id", m->stage)) < 0 ||
	    (error = rl_record_set_raw_text(ctx->store, deals, m->deal, "closed_at",
					    strcmp(m->kind, "open") ? now_iso : NULL)) < 0 ||
	    (error = rl_record_set_raw_text(ctx->store, deals, m->deal, "lost_reason",
					    strcmp(m->kind, "lost") == 0 ? m->reason : NULL)) < 0)
		return error;
	(void)events;
	(void)ev;
	return record_stage_event(ctx, m->deal, m->from, m->stage);
}

/* The move itself, append-only, for conversion and time-in-stage reports. */
static int record_stage_event(struct cli_ctx *ctx, const char *deal, const char *from,
			      const char *to)
{
	char now_iso[21], ev[RL_ID_BUFSZ];
	sqlite3_stmt *st;
	int error;

	rl_time_format_utc(now_iso, rl_store_now_ms(ctx->store) / 1000);
	if ((error = rl_store_new_id(ctx->store, ev)) < 0 ||
	    (error = rl_store_prepare(ctx->store,
	     "INSERT INTO deal_stage_events(id, deal_id, from_stage_id, to_stage_id, at, user_id) "
	     "VALUES (?1, ?2, ?3, ?4, ?5, ?6)", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, ev, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, deal, -1, SQLITE_STATIC);
	if (from)
		sqlite3_bind_text(st, 3, from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, to, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, now_iso, -1, SQLITE_STATIC);
	if (rl_store_user_id(ctx->store)[0])
		sqlite3_bind_text(st, 6, rl_store_user_id(ctx->store), -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_reset(st);
		return rl_store_error(ctx->store, "recording the stage move");
	}
	sqlite3_reset(st);
	return RL_OK;
}

static int run_move(struct cli_ctx *ctx, struct cli_args *a, struct move_args *m)
{
	const struct rl_table *deals = rl_model_table("deals");
	struct rl_converted reason = { 1, 0, 0, 0, NULL, 0 };
	char sid[RL_ID_BUFSZ], label[128];
	int error;

	/* The reason is written as it is (rl_record_set_raw_text), so it is
	 * checked here as --lost-reason would be: bounded, UTF-8, no control
	 * characters. The hub refuses what fails this, so taking it here
	 * would only turn into a refused change at the next sync. */
	if (m->reason) {
		if ((error = rl_record_convert(ctx->store, deals, rl_model_field(deals, "lost_reason"),
					       m->reason, NULL, &reason)) < 0) {
			rl_error_prefix("--reason");
			return error;
		}
		if (reason.is_null)
			return cli_usage_error(a->cmd, "say why with --reason TEXT");
		m->reason = reason.text;
	}
	if ((error = cli_write(ctx, do_move, m)) < 0)
		goto cleanup;
	warn_if_not_yours(ctx, deals, m->deal, "stage_id");
	if (ctx->json) {
		error = print_record(ctx, deals, m->deal);
		goto cleanup;
	}
	ref_label(ctx, "stages", m->stage, label, sizeof(label));
	printf("deal %s is now %s\n", cli_short_id(ctx, "deals", m->deal, sid), label);
cleanup:
	rl_converted_clear(&reason);
	return error;
}

static int cmd_deal_move(struct cli_ctx *ctx, struct cli_args *a)
{
	struct move_args m = { 0 };
	int error;

	if ((error = rl_record_resolve(ctx->store, rl_model_table("deals"), a->pos[0], m.deal)) < 0 ||
	    (error = rl_record_resolve(ctx->store, rl_model_table("stages"), a->pos[1], m.stage)) < 0)
		return error;
	m.reason = cli_get(a, "reason");
	return run_move(ctx, a, &m);
}

static int cmd_deal_won(struct cli_ctx *ctx, struct cli_args *a)
{
	struct move_args m = { 0 };
	int error;

	if ((error = rl_record_resolve(ctx->store, rl_model_table("deals"), a->pos[0], m.deal)) < 0 ||
	    (error = stage_of_kind(ctx, "won", m.stage)) < 0)
		return error;
	return run_move(ctx, a, &m);
}

static int cmd_deal_lost(struct cli_ctx *ctx, struct cli_args *a)
{
	struct move_args m = { 0 };
	int error;

	m.reason = cli_get(a, "reason");
	if (!m.reason || !*m.reason)
		return cli_usage_error(a->cmd, "say why with --reason TEXT");
	if ((error = rl_record_resolve(ctx->store, rl_model_table("deals"), a->pos[0], m.deal)) < 0 ||
	    (error = stage_of_kind(ctx, "lost", m.stage)) < 0)
		return error;
	return run_move(ctx, a, &m);
}

/* ---- tasks: done -------------------------------------------------------------- */

static int do_task_done(struct cli_ctx *ctx, void *arg)
{
	const char *id = arg;
	const struct rl_table *tasks = rl_model_table("tasks");
	struct rl_fieldval v = { "done", "yes" };
	char now_iso[21], sid[RL_ID_BUFSZ];
	sqlite3_stmt *st;
	int error, done;

	/* Done twice would move done_at to now: when the follow-up was
	 * really done is lost (like 'deal won' twice, it is refused). */
	if ((error = rl_store_prepare(ctx->store, "SELECT done FROM tasks WHERE id = ?1", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return rl_store_error(ctx->store, "reading the task");
	}
	done = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	if (done)
		return rl_error_set(RL_EINVALID, "task %s is already done",
				    cli_short_id(ctx, "tasks", id, sid));
	rl_time_format_utc(now_iso, rl_store_now_ms(ctx->store) / 1000);
	if ((error = rl_record_update(ctx->store, tasks, id, &v, 1)) < 0)
		return error;
	return rl_record_set_raw_text(ctx->store, tasks, id, "done_at", now_iso);
}

static int cmd_task_done(struct cli_ctx *ctx, struct cli_args *a)
{
	char id[RL_ID_BUFSZ], sid[RL_ID_BUFSZ];
	int error;

	if ((error = rl_record_resolve(ctx->store, rl_model_table("tasks"), a->pos[0], id)) < 0 ||
	    (error = cli_write(ctx, do_task_done, id)) < 0)
		return error;
	warn_if_not_yours(ctx, rl_model_table("tasks"), id, "done");
	if (ctx->json)
		return print_record(ctx, rl_model_table("tasks"), id);
	printf("done: task %s\n", cli_short_id(ctx, "tasks", id, sid));
	return RL_OK;
}

/* ---- the table -------------------------------------------------------------- */

static const struct cli_opt geo_opts[] = {
	{ "geo", 1, "LAT,LON", "location in decimal degrees", NULL },
	{ NULL, 0, NULL, NULL, NULL }
};
static const struct cli_opt delete_opts[] = {
	{ "cascade", 0, NULL, "delete what belongs to it too (a customer's contacts, deals, "
	  "visits, tasks) and clear it in the records that only name it; without it, a record "
	  "others name is refused", NULL },
	{ NULL, 0, NULL, NULL, NULL }
};
static const struct cli_opt reason_opt[] = {
	{ "reason", 1, "TEXT", "why the deal was lost", NULL },
	{ NULL, 0, NULL, NULL, NULL }
};

/* ART is the noun's article ("a", "an"): help text is read by people. */
#define RECORD_CMDS(art, noun, table, label, addopts, listopts) \
	{ noun " add", cmd_add, label " [OPTIONS]", "add " art " " noun, addopts, table, CLI_MODEL_ADD, 1, 1, CLI_STORE_FEW }, \
	{ noun " edit", cmd_edit, noun "-REF [OPTIONS]", "change fields of " art " " noun, addopts, table, CLI_MODEL_EDIT, 1, 1, CLI_STORE_FEW }, \
	{ noun " show", cmd_show, noun "-REF", "show " art " " noun, NULL, table, CLI_MODEL_NONE, 1, 1, CLI_STORE_FEW }, \
	{ noun " list", cmd_list, "[FILTERS]", "list " table, listopts, table, CLI_MODEL_NONE, 0, 0, 1 }, \
	{ noun " delete", cmd_delete, noun "-REF [--cascade]", "delete " art " " noun " (a tombstone that syncs)", delete_opts, table, CLI_MODEL_NONE, 1, 1, \
	  CLI_STORE_FEW }

const struct cli_cmd cli_cmds_records[] = {
	RECORD_CMDS("an", "account", "accounts", "NAME", geo_opts, account_list_opts),
	RECORD_CMDS("a", "contact", "contacts", "NAME", NULL, contact_list_opts),
	RECORD_CMDS("a", "deal", "deals", "TITLE", NULL, deal_list_opts),
	RECORD_CMDS("a", "task", "tasks", "TITLE", NULL, task_list_opts),
	{ "deal move", cmd_deal_move, "DEAL STAGE", "move a deal to another pipeline stage",
	  reason_opt, "deals", CLI_MODEL_NONE, 2, 2, CLI_STORE_FEW },
	{ "deal won", cmd_deal_won, "DEAL", "mark a deal won", NULL, "deals", CLI_MODEL_NONE, 1, 1,
	  CLI_STORE_FEW },
	{ "deal lost", cmd_deal_lost, "DEAL --reason TEXT", "mark a deal lost, with the reason",
	  reason_opt, "deals", CLI_MODEL_NONE, 1, 1, CLI_STORE_FEW },
	{ "task done", cmd_task_done, "TASK", "mark a follow-up done", NULL, "tasks",
	  CLI_MODEL_NONE, 1, 1, CLI_STORE_FEW },
	{ "stage list", cmd_list, "", "list the pipeline stages", NULL, "stages",
	  CLI_MODEL_NONE, 0, 0, 1 },
	{ "stage add", cmd_add, "NAME [OPTIONS]", "add a pipeline stage", NULL, "stages",
	  CLI_MODEL_ADD, 1, 1, 1 },
	{ "stage edit", cmd_edit, "STAGE [OPTIONS]", "change a stage (name, probability, order)",
	  NULL, "stages", CLI_MODEL_EDIT, 1, 1, 1 },
	{ NULL, NULL, NULL, NULL, NULL, NULL, CLI_MODEL_NONE, 0, 0, 0 }
};
