/*
 * cmd_activity.c — what happens in the field: visit log (and calls, e-mails,
 * meetings) with an optional next step that becomes a follow-up task; today's
 * agenda; and `show CUSTOMER`, the customer's whole story on one screen.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "relasi/valid.h"

struct visit_args {
	const struct cli_args *a;
	const char *kind;
	char account[RL_ID_BUFSZ];
	char activity[RL_ID_BUFSZ];
	char task[RL_ID_BUFSZ];
};

static int do_visit(struct cli_ctx *ctx, void *arg)
{
	struct visit_args *v = arg;
	const struct cli_args *a = v->a;
	struct rl_fieldval vals[12];
	char lat[40], lon[40];
	size_t n = 0;
	int error;
	double la, lo;

	vals[n].field = "kind"; vals[n++].text = v->kind;
	vals[n].field = "account_id"; vals[n++].text = v->account;
	if (cli_get(a, "at")) { vals[n].field = "at"; vals[n++].text = cli_get(a, "at"); }
	if (cli_get(a, "outcome")) { vals[n].field = "outcome"; vals[n++].text = cli_get(a, "outcome"); }
	if (cli_get(a, "notes")) { vals[n].field = "notes"; vals[n++].text = cli_get(a, "notes"); }
	if (cli_get(a, "contact")) { vals[n].field = "contact_id"; vals[n++].text = cli_get(a, "contact"); }
	if (cli_get(a, "deal")) { vals[n].field = "deal_id"; vals[n++].text = cli_get(a, "deal"); }
	if (cli_get(a, "geo")) {
		if ((error = rl_geo_parse(&la, &lo, cli_get(a, "geo"))) < 0)
			return error;
		snprintf(lat, sizeof(lat), "%.7f", la);
		snprintf(lon, sizeof(lon), "%.7f", lo);
		vals[n].field = "lat"; vals[n++].text = lat;
		vals[n].field = "lon"; vals[n++].text = lon;
	}
	if ((error = rl_record_create(ctx->store, rl_model_table("activities"), vals, n,
				      v->activity)) < 0)
		return error;
	if (!cli_get(a, "next"))
		return RL_OK;

	n = 0;
	vals[n].field = "title"; vals[n++].text = cli_get(a, "next");
	vals[n].field = "due"; vals[n++].text = cli_get(a, "due") ? cli_get(a, "due") : "+1d";
	vals[n].field = "account_id"; vals[n++].text = v->account;
	if (cli_get(a, "contact")) { vals[n].field = "contact_id"; vals[n++].text = cli_get(a, "contact"); }
	if (cli_get(a, "deal")) { vals[n].field = "deal_id"; vals[n++].text = cli_get(a, "deal"); }
	if ((error = rl_record_create(ctx->store, rl_model_table("tasks"), vals, n, v->task)) < 0)
		return error;
	return rl_record_set_raw_text(ctx->store, rl_model_table("tasks"), v->task, "activity_id",
				      v->activity);
}

static int cmd_visit_log(struct cli_ctx *ctx, struct cli_args *a)
{
	struct visit_args v = { 0 };
	char sid[RL_ID_BUFSZ];
	int error;

	v.a = a;
	v.kind = cli_get(a, "kind") ? cli_get(a, "kind")
		 : strncmp(a->cmd->name, "visit", 5) == 0 ? "visit" : NULL;
	if (!v.kind)
		return cli_usage_error(a->cmd, "say which kind with --kind visit|call|email|meeting");
	if (cli_get(a, "due") && !cli_get(a, "next"))
		return cli_usage_error(a->cmd, "--due belongs to a next step: add --next TEXT");
	if ((error = rl_record_resolve(ctx->store, rl_model_table("accounts"), a->pos[0],
				       v.account)) < 0)
		return error;
	if ((error = cli_write(ctx, do_visit, &v)) < 0)
		return error;
	if (ctx->json)
		return cli_print_json(json_pack("{s:s, s:s, s:s?}", "activity_id", v.activity,
						"account_id", v.account,
						"task_id", v.task[0] ? v.task : NULL));
	printf("logged %s %s\n", v.kind, cli_short_id(ctx, "activities", v.activity, sid));
	if (v.task[0])
		printf("follow-up task %s\n", cli_short_id(ctx, "tasks", v.task, sid));
	return RL_OK;
}

/* UTC bounds [from, to) of the local calendar day containing now. */
static void local_day_bounds(struct cli_ctx *ctx, char today[11], char from[21], char to[21])
{
	int64_t now = rl_store_now_ms(ctx->store) / 1000;
	int off = rl_store_tz_offset(ctx->store);
	int64_t t = now + off * 60;
	int64_t start = t - ((t % 86400) + 86400) % 86400 - off * 60;

	rl_date_of(today, now, off);
	rl_time_format_utc(from, start);
	rl_time_format_utc(to, start + 86400);
}

/* Rows of one section; "(none)" when empty, so every heading reads well. */
static int print_rows(struct cli_ctx *ctx, sqlite3_stmt *st, const char *const *hdr, int ncols,
		      json_t *into, const char *key, const char *id_table)
{
	struct cli_view view = { hdr, ncols, id_table, NULL, NULL, "  (none)" };
	return cli_emit(ctx, st, &view, into, key);
}

static int cmd_today(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const task_hdr[] = { "id", "due", "title", "customer", "when" };
	static const char *const act_hdr[] = { "id", "time", "kind", "customer", "outcome" };
	char today[11], from[21], to[21];
	json_t *o = json_object();
	sqlite3_stmt *st;
	int error;

	local_day_bounds(ctx, today, from, to);
	if (!o)
		return rl_error_set(RL_ENOMEM, "out of memory");
	json_object_set_new(o, "date", json_string(today));
	if (!ctx->json)
		printf("Follow-ups due by %s\n", today);
	if ((error = rl_store_prepare(ctx->store,
	     "SELECT t.id, t.due, t.title, " RP_CUSTOMER_NAME("a") " AS customer, "
	     "CASE WHEN t.due < ?1 THEN 'overdue' ELSE 'today' END AS state "
	     "FROM tasks t LEFT JOIN accounts a ON a.id = t.account_id "
	     "WHERE t.deleted = 0 AND t.done = 0 AND t.due <= ?1 ORDER BY t.due, t.title", &st)) < 0)
		goto cleanup;
	sqlite3_bind_text(st, 1, today, -1, SQLITE_TRANSIENT);
	if ((error = print_rows(ctx, st, task_hdr, 5, o, "tasks", "tasks")) < 0)
		goto cleanup;
	if (!ctx->json)
		printf("\nToday's activities\n");
	if ((error = rl_store_prepare(ctx->store,
	     "SELECT x.id, strftime('%H:%M', x.at, (x.tz_offset) || ' minutes') AS time, x.kind, "
	     RP_CUSTOMER_NAME("a") " AS customer, x.outcome, x.at, x.notes FROM activities x "
	     "LEFT JOIN accounts a ON a.id = x.account_id "
	     "WHERE x.deleted = 0 AND x.at >= ?1 AND x.at < ?2 ORDER BY x.at", &st)) < 0)
		goto cleanup;
	sqlite3_bind_text(st, 1, from, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, to, -1, SQLITE_TRANSIENT);
	if ((error = print_rows(ctx, st, act_hdr, 5, o, "activities", "activities")) < 0)
		goto cleanup;
	if (ctx->json) {
		error = cli_print_json(o);
		o = NULL;
	}
cleanup:
	json_decref(o);
	return error;
}

static int cmd_activity_list(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const hdr[] = { "id", "at (UTC)", "kind", "customer", "outcome" };
	const struct rl_table *acts = rl_model_table("activities");
	struct rl_converted kind = { 1, 0, 0, 0, NULL, 0 };
	char account[RL_ID_BUFSZ];
	json_t *o = json_object();
	sqlite3_stmt *st;
	int error;

	if (!o)
		return rl_error_set(RL_ENOMEM, "out of memory");
	/* The kind as `activity log` takes it (any case), and a typo is said,
	 * not answered with an empty list. */
	if (cli_get(a, "kind") &&
	    (error = rl_record_convert(ctx->store, acts, rl_model_field(acts, "kind"),
				       cli_get(a, "kind"), NULL, &kind)) < 0) {
		error = cli_option_error(error, "kind");
		goto cleanup;
	}
	if (cli_get(a, "account") &&
	    (error = rl_record_resolve(ctx->store, rl_model_table("accounts"), cli_get(a, "account"),
				       account)) < 0)
		goto cleanup;
	if ((error = rl_store_prepare(ctx->store,
	     "SELECT x.id, x.at, x.kind, " RP_CUSTOMER_NAME("a") " AS customer, x.outcome, x.notes, "
	     "x.lat, x.lon "
	     "FROM activities x LEFT JOIN accounts a ON a.id = x.account_id "
	     "WHERE x.deleted = 0 AND (?1 IS NULL OR x.account_id = ?1) "
	     "AND (?2 IS NULL OR x.kind = ?2) ORDER BY x.at DESC LIMIT 1000", &st)) < 0)
		goto cleanup;
	if (cli_get(a, "account"))
		sqlite3_bind_text(st, 1, account, -1, SQLITE_TRANSIENT);
	if (!kind.is_null)
		sqlite3_bind_text(st, 2, kind.text, -1, SQLITE_TRANSIENT);
	if ((error = print_rows(ctx, st, hdr, 5, o, "activities", "activities")) < 0)
		goto cleanup;
	if (ctx->json) {
		error = cli_print_json(json_incref(json_object_get(o, "activities")));
	}
cleanup:
	rl_converted_clear(&kind);
	json_decref(o);
	return error;
}

/* ---- show CUSTOMER: the customer 360 -------------------------------------- */

static int cmd_show_customer(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const contact_hdr[] = { "id", "name", "title", "phone", "email" };
	static const char *const deal_hdr[] = { "id", "title", "stage", "amount", "close" };
	static const char *const story_hdr[] = { "when (UTC)", "what", "detail", "notes" };
	char id[RL_ID_BUFSZ], sid[RL_ID_BUFSZ];
	json_t *o = json_object(), *acc = NULL;
	sqlite3_stmt *st;
	int error;

	if (!o)
		return rl_error_set(RL_ENOMEM, "out of memory");
	if ((error = rl_record_resolve(ctx->store, rl_model_table("accounts"), a->pos[0], id)) < 0)
		goto cleanup;
	if ((error = rl_store_prepare(ctx->store, "SELECT * FROM accounts WHERE id = ?1", &st)) < 0)
		goto cleanup;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		error = rl_store_error(ctx->store, "reading the customer");
		goto cleanup;
	}
	cli_short_id(ctx, "accounts", id, sid);
	if (ctx->json) {
		acc = cli_row_json(st);
		json_object_set_new(acc, "short_id", json_string(sid));
		json_object_set_new(o, "account", acc);
	} else {
		printf("%s  (%s)\n", cli_col(st, 1), sid);
		/* The address and the city, whichever are known; a note's later
		 * lines under its first. */
		if (sqlite3_column_text(st, 5) || sqlite3_column_text(st, 6))
			printf("  %s%s%s\n", cli_col(st, 5),
			       *cli_col(st, 5) && *cli_col(st, 6) ? ", " : "", cli_col(st, 6));
		if (sqlite3_column_text(st, 3))
			cli_print_labelled("phone", 5, cli_col(st, 3));
		if (sqlite3_column_text(st, 4))
			cli_print_labelled("email", 5, cli_col(st, 4));
		if (sqlite3_column_text(st, 10))
			cli_print_labelled("tags", 5, cli_col(st, 10));
		if (sqlite3_column_text(st, 11))
			cli_print_labelled("notes", 5, cli_col(st, 11));
	}
	sqlite3_reset(st);

	if (!ctx->json)
		printf("\nContacts\n");
	if ((error = rl_store_prepare(ctx->store,
	     "SELECT id, name, title, phone, email FROM contacts WHERE account_id = ?1 "
	     "AND deleted = 0 ORDER BY name", &st)) < 0)
		goto cleanup;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	if ((error = print_rows(ctx, st, contact_hdr, 5, o, "contacts", "contacts")) < 0)
		goto cleanup;

	if (!ctx->json)
		printf("\nDeals\n");
	if ((error = rl_store_prepare(ctx->store,
	     "SELECT d.id, d.title, s.name AS stage, "
	     "rl_money(d.amount, d.currency) AS amount, "
	     "d.expected_close, d.amount AS amount_minor, d.currency, d.lost_reason "
	     "FROM deals d JOIN stages s ON s.id = d.stage_id "
	     "WHERE d.account_id = ?1 AND d.deleted = 0 ORDER BY d.created_at DESC", &st)) < 0)
		goto cleanup;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	if ((error = print_rows(ctx, st, deal_hdr, 5, o, "deals", "deals")) < 0)
		goto cleanup;

	/* Everything that happened, newest first: activities, follow-ups, stage moves. */
	if (!ctx->json)
		printf("\nHistory (newest first)\n");
	if ((error = rl_store_prepare(ctx->store,
	     "SELECT at, what, detail, notes, id FROM ("
	     " SELECT x.at AS at, x.kind AS what, coalesce(x.outcome, '') AS detail, x.notes AS notes, x.id AS id"
	     "  FROM activities x WHERE x.account_id = ?1 AND x.deleted = 0"
	     " UNION ALL"
	     " SELECT t.created_at, CASE t.done WHEN 1 THEN 'task done' ELSE 'task' END,"
	     "  t.title || coalesce(' (due ' || t.due || ')', ''), t.notes, t.id"
	     "  FROM tasks t WHERE t.account_id = ?1 AND t.deleted = 0"
	     " UNION ALL"
	     " SELECT e.at, 'stage', d.title || ': ' || coalesce(f.name || ' -> ', 'new in ') || s.name,"
	     "  NULL, e.id FROM deal_stage_events e JOIN deals d ON d.id = e.deal_id"
	     "  JOIN stages s ON s.id = e.to_stage_id LEFT JOIN stages f ON f.id = e.from_stage_id"
	     "  WHERE d.account_id = ?1 AND e.deleted = 0"
	     ") ORDER BY at DESC, id DESC", &st)) < 0)
		goto cleanup;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	if ((error = print_rows(ctx, st, story_hdr, 4, o, "history", NULL)) < 0)
		goto cleanup;
	if (ctx->json) {
		error = cli_print_json(o);
		o = NULL;
	}
cleanup:
	json_decref(o);
	return error;
}

static const struct cli_opt visit_opts[] = {
	{ "kind", 1, "KIND", "visit (default for visit log), call, email or meeting", NULL },
	{ "at", 1, "TIME", "when, e.g. 2026-11-23T09:30 or with +07:00 (default now)", NULL },
	{ "geo", 1, "LAT,LON", "check-in place in decimal degrees", NULL },
	{ "outcome", 1, "TEXT", "what came of it", NULL },
	{ "notes", 1, "TEXT", "notes", NULL },
	{ "contact", 1, "CONTACT", "who you met", NULL },
	{ "deal", 1, "DEAL", "the deal it was about", NULL },
	{ "next", 1, "TEXT", "next step: creates a follow-up task", NULL },
	{ "due", 1, "DATE", "due date of the next step (default tomorrow)", NULL },
	{ NULL, 0, NULL, NULL, NULL }
};

static const struct cli_opt activity_list_opts[] = {
	{ "account", 1, "ACCOUNT", "only this customer", NULL },
	{ "kind", 1, "KIND", "only visits, calls, emails or meetings", NULL },
	{ NULL, 0, NULL, NULL, NULL }
};

const struct cli_cmd cli_cmds_activity[] = {
	{ "visit log", cmd_visit_log, "CUSTOMER [OPTIONS]",
	  "log a visit (check-in place, time, outcome, notes, next step)",
	  visit_opts, NULL, CLI_MODEL_NONE, 1, 1, CLI_STORE_FEW },
	{ "activity log", cmd_visit_log, "CUSTOMER --kind KIND [OPTIONS]",
	  "log a call, e-mail, meeting or visit", visit_opts, NULL, CLI_MODEL_NONE, 1, 1,
	  CLI_STORE_FEW },
	{ "activity list", cmd_activity_list, "[--account A] [--kind K]", "list activities, newest first",
	  activity_list_opts, NULL, CLI_MODEL_NONE, 0, 0, 1 },
	{ "today", cmd_today, "", "follow-ups due or overdue, and today's activities",
	  NULL, NULL, CLI_MODEL_NONE, 0, 0, CLI_STORE_FEW },
	{ "show", cmd_show_customer, "CUSTOMER",
	  "a customer's whole story: contacts, deals, every activity and task",
	  NULL, NULL, CLI_MODEL_NONE, 1, 1, CLI_STORE_FEW },
	{ NULL, NULL, NULL, NULL, NULL, NULL, CLI_MODEL_NONE, 0, 0, 0 }
};
