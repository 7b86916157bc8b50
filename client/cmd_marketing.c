/*
 * cmd_marketing.c — marketing's segment and tier commands:
 *
 *   relasi segment rfm [--from D --to D | --months N] [--currency C] [--accounts]
 *   relasi segment save NAME RULE | list | show NAME | delete NAME
 *   relasi tiers [--month YYYY-MM] [--accounts] | --history ACCOUNT
 *   relasi tiers config [NAME=MIN ...] [--currency C]
 *   relasi tiers evaluate [--month YYYY-MM] [--through YYYY-MM]
 *
 * This file reads and checks options, runs the computation (rfm.c,
 * tiers.c, segment_members.c) and shows the result through the reports'
 * typed tables (report.h: a table, --json or --csv). Options are checked
 * before anything is read or written; a bad one is a usage error (exit 2)
 * naming it; a bad rule is invalid input (exit 5) with its position.
 */
#include "marketing.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "relasi/limits.h"
#include "relasi/valid.h"

/* --months: ten years of history is more than any RFM window needs. */
#define MK_MAX_MONTHS 120

struct mk_ctx {
	int64_t now;
	char now_iso[21];
	char today[11];
	char month[8];
	enum rp_format fmt;
};

static int common(struct cli_ctx *ctx, struct cli_args *a, struct mk_ctx *m,
		  struct rp_result *r, const char *name)
{
	m->now = rl_store_now_ms(ctx->store) / 1000;
	rl_time_format_utc(m->now_iso, m->now);
	rl_date_of(m->today, m->now, 0);
	snprintf(m->month, sizeof(m->month), "%.7s", m->today);
	r->name = name;
	snprintf(r->as_of, sizeof(r->as_of), "%s", m->now_iso);
	if (!(r->filters = json_object()))
		return rl_error_set(RL_ENOMEM, "out of memory");
	m->fmt = ctx->json ? RP_FMT_JSON : RP_FMT_TEXT;
	if (cli_get(a, "csv")) {
		if (ctx->json)
			return rl_error_set(RL_EUSAGE, "--csv and --json: choose one output");
		m->fmt = RP_FMT_CSV;
	}
	return RL_OK;
}

static int add_filter(struct rp_result *r, const char *key, const char *value)
{
	if (json_object_set_new(r->filters, key, json_string(value)) < 0)
		return rl_error_set(RL_ENOMEM, "out of memory");
	return RL_OK;
}

static int parse_day(const struct mk_ctx *m, const char *opt, const char *in, char out[11])
{
	if (strlen(in) > 32 || rl_date_parse(out, in, m->now, 0) < 0)
		return rl_error_set(RL_EUSAGE, "--%s: '%.32s' is not a date (YYYY-MM-DD, today, "
				    "-30d)", opt, in);
	return RL_OK;
}

static int parse_month(const char *opt, const char *in, char out[8])
{
	if (!mk_month_valid(in))
		return rl_error_set(RL_EUSAGE, "--%s: '%.32s' is not a month (YYYY-MM)", opt, in);
	snprintf(out, 8, "%s", in);
	return RL_OK;
}

static int parse_currency(const char *opt, const char *in, char out[4])
{
	size_t i;

	if (strlen(in) != 3)
		goto bad;
	for (i = 0; i < 3; i++)
		out[i] = (char)(in[i] >= 'a' && in[i] <= 'z' ? in[i] - 'a' + 'A' : in[i]);
	out[3] = '\0';
	if (rl_currency_exponent(out) >= 0)
		return RL_OK;
bad:
	return rl_error_set(RL_EUSAGE, "--%s: '%.16s' is not an ISO 4217 currency code", opt, in);
}

/* Name of an account for a table (one indexed read per row). */
static int account_name(rl_store *s, const char *id, struct rp_cell *row, size_t col)
{
	sqlite3_stmt *st;
	int error;

	if ((error = rl_store_prepare(s, "SELECT name FROM accounts WHERE id = ?1", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		error = rp_set_text(row, col, cli_col(st, 0));
	sqlite3_reset(st);
	return error;
}

/* ---- segment rfm ---------------------------------------------------------------- */

static const struct rp_col rfm_account_cols[] = {
	{ "account", RP_TEXT, 0, "accounts", 0 },
	{ "name", RP_TEXT, 0, NULL, 0 },
	{ "currency", RP_TEXT, 0, NULL, 0 },
	{ "recency_days", RP_INT, 0, NULL, 0 },
	{ "frequency", RP_INT, 0, NULL, 0 },
	{ "monetary", RP_MONEY, 2, NULL, 0 },
	{ "r", RP_INT, 0, NULL, 0 },
	{ "f", RP_INT, 0, NULL, 0 },
	{ "m", RP_INT, 0, NULL, 0 },
	{ "segment", RP_TEXT, 0, NULL, 0 },
};

static int cmp_rfm_list(const void *a, const void *b)
{
	const struct mk_rfm *x = a, *y = b;
	int c = strcmp(x->currency, y->currency);

	if (c)
		return c;
	if (x->segment != y->segment)
		return x->segment - y->segment;
	if (x->monetary != y->monetary)
		return x->monetary > y->monetary ? -1 : 1;
	return strcmp(x->account, y->account);
}

static int rfm_accounts(rl_store *s, struct mk_rfm *rows, size_t n, struct rp_result *r)
{
	size_t i;
	int error;

	rp_table_init(&r->rows, rfm_account_cols,
		      sizeof(rfm_account_cols) / sizeof(rfm_account_cols[0]));
	if (n)
		qsort(rows, n, sizeof(*rows), cmp_rfm_list);
	for (i = 0; i < n; i++) {
		struct rp_cell *row = rp_row_add(&r->rows);
		if (!row || rp_set_text(row, 0, rows[i].account) < 0 ||
		    rp_set_text(row, 2, rows[i].currency) < 0 ||
		    rp_set_text(row, 9, mk_rfm_segment_names[rows[i].segment]) < 0)
			return RL_ENOMEM;
		if ((error = account_name(s, rows[i].account, row, 1)) < 0)
			return error;
		rp_set_int(row, 3, rows[i].recency);
		rp_set_int(row, 4, rows[i].frequency);
		rp_set_int(row, 5, rows[i].monetary);
		rp_set_int(row, 6, rows[i].r);
		rp_set_int(row, 7, rows[i].f);
		rp_set_int(row, 8, rows[i].m);
	}
	return RL_OK;
}

static int cmd_rfm(struct cli_ctx *ctx, struct cli_args *a)
{
	struct rp_result r = { 0 };
	struct mk_ctx m;
	struct mk_rfm *rows = NULL;
	const char *from = cli_get(a, "from"), *to = cli_get(a, "to");
	const char *months = cli_get(a, "months"), *cur = cli_get(a, "currency");
	char dfrom[11], dto[11], currency[4];
	size_t n = 0;
	long nm = 12;
	int error;

	if ((error = common(ctx, a, &m, &r, "rfm")) < 0)
		goto cleanup;
	if (from && months) {
		error = rl_error_set(RL_EUSAGE, "--from and --months: give one start of the window");
		goto cleanup;
	}
	if (months) {
		char *end;
		nm = strtol(months, &end, 10);
		if (end == months || *end || nm < 1 || nm > MK_MAX_MONTHS) {
			error = rl_error_set(RL_EUSAGE, "--months: '%.32s' is not a number of months "
					     "1..%d", months, MK_MAX_MONTHS);
			goto cleanup;
		}
	}
	snprintf(dto, sizeof(dto), "%s", m.today);
	if (to && (error = parse_day(&m, "to", to, dto)) < 0)
		goto cleanup;
	if (from) {
		if ((error = parse_day(&m, "from", from, dfrom)) < 0)
			goto cleanup;
		if (strcmp(dfrom, dto) > 0) {
			/* Without --to the window ends today: say so, not name an
			 * option the user never gave. */
			error = to ? rl_error_set(RL_EUSAGE, "--to %s is before --from %s", dto, dfrom)
				   : rl_error_set(RL_EUSAGE, "--from %s is after today (%s), where the "
						  "window ends without --to", dfrom, dto);
			goto cleanup;
		}
	} else {
		mk_months_window(dfrom, dto, (int)nm);
	}
	if (cur && (error = parse_currency("currency", cur, currency)) < 0)
		goto cleanup;
	if ((error = add_filter(&r, "from", dfrom)) < 0 || (error = add_filter(&r, "to", dto)) < 0 ||
	    (cur && (error = add_filter(&r, "currency", currency)) < 0))
		goto cleanup;
	if ((error = mk_rfm_compute(ctx->store, dfrom, dto, cur ? currency : NULL, &rows, &n)) < 0)
		goto cleanup;
	if (cli_get(a, "accounts"))
		error = rfm_accounts(ctx->store, rows, n, &r);
	else
		error = mk_rfm_summary(rows, n, &r);
	if (error < 0 || (error = rp_emit(ctx, &r, m.fmt)) < 0)
		goto cleanup;
cleanup:
	free(rows);
	rp_result_free(&r);
	return error;
}

/* ---- saved segments --------------------------------------------------------------- */

/* The live row of a marketing table (segments, campaigns) named name (any
 * case), or "" when none; the oldest when two devices chose one name. */
int mk_id_by_name(rl_store *s, const char *table, const char *name, char id[RL_ID_BUFSZ])
{
	sqlite3_stmt *st;
	int rc, error;

	id[0] = '\0';
	if ((error = rl_store_preparef(s, &st, "SELECT id FROM \"%w\" WHERE name = ?1 COLLATE "
				       "NOCASE AND deleted = 0 ORDER BY id LIMIT 1", table)) < 0)
		return error;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		snprintf(id, RL_ID_BUFSZ, "%s", cli_col(st, 0));
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? RL_OK
		: rl_store_error(s, "looking up a name");
}

struct save_args {
	const char *name, *rule;
	char id[RL_ID_BUFSZ];
	int updated;
};

static int do_save(struct cli_ctx *ctx, void *arg)
{
	struct save_args *v = arg;
	struct rl_fieldval vals[2] = { { "name", v->name }, { "rule", v->rule } };
	int error;

	if ((error = mk_id_by_name(ctx->store, "segments", v->name, v->id)) < 0)
		return error;
	if (v->id[0]) {
		v->updated = 1;
		return rl_record_update(ctx->store, rl_model_table("segments"), v->id, vals + 1, 1);
	}
	return rl_record_create(ctx->store, rl_model_table("segments"), vals, 2, v->id);
}

static int cmd_segment_save(struct cli_ctx *ctx, struct cli_args *a)
{
	struct save_args v = { 0 };
	char (*ids)[RL_ID_BUFSZ] = NULL;
	size_t n = 0;
	int error;

	v.name = a->pos[0];
	v.rule = a->pos[1];
	if (!*v.name || strlen(v.name) > RL_MAX_NAME_BYTES)
		return rl_error_set(RL_EUSAGE, "give a segment name of 1 to %d bytes",
				    RL_MAX_NAME_BYTES);
	/* Parse (and find the members) before writing: a bad rule is never
	 * saved, and the count tells the marketer the rule means something. */
	if ((error = mk_segment_members(ctx->store, v.rule, &ids, &n)) < 0)
		return error;
	free(ids);
	if ((error = cli_write(ctx, do_save, &v)) < 0)
		return error;
	if (ctx->json) {
		char sid[RL_ID_BUFSZ];
		json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I}", "id", v.id, "short_id",
				      cli_short_id(ctx, "segments", v.id, sid), "name", v.name,
				      "rule", v.rule, "members", (json_int_t)n);
		if (!o)
			return rl_error_set(RL_ENOMEM, "out of memory");
		return cli_print_json(o);
	}
	printf("%s segment '%s': %zu customer%s match today\n", v.updated ? "updated" : "saved",
	       v.name, n, n == 1 ? "" : "s");
	return RL_OK;
}

static const struct rp_col segment_list_cols[] = {
	{ "id", RP_TEXT, 0, "segments", 0 },
	{ "name", RP_TEXT, 0, NULL, 0 },
	{ "rule", RP_TEXT, 0, NULL, 0 },
	{ "owner", RP_TEXT, 0, NULL, 0 },
	{ "created_at", RP_TEXT, 0, NULL, 1 },
};

static int cmd_segment_list(struct cli_ctx *ctx, struct cli_args *a)
{
	struct rp_result r = { 0 };
	struct mk_ctx m;
	sqlite3_stmt *st;
	struct rp_cell *row;
	size_t c;
	int rc, error;

	if ((error = common(ctx, a, &m, &r, "segments")) < 0)
		goto cleanup;
	rp_table_init(&r.rows, segment_list_cols,
		      sizeof(segment_list_cols) / sizeof(segment_list_cols[0]));
	if ((error = rl_store_prepare(ctx->store,
	     "SELECT s.id, s.name, s.rule, (SELECT u.name FROM users u WHERE u.id = s.owner_id),"
	     " s.created_at FROM segments s WHERE s.deleted = 0"
	     " ORDER BY s.name COLLATE NOCASE, s.id", &st)) < 0)
		goto cleanup;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (!(row = rp_row_add(&r.rows))) {
			error = RL_ENOMEM;
			break;
		}
		for (c = 0; c < r.rows.ncols; c++)
			if ((error = rp_set_column(row, c, &r.rows, st, (int)c)) < 0)
				break;
		if (error < 0)
			break;
	}
	if (error >= 0 && rc != SQLITE_DONE)
		error = rl_store_error(ctx->store, "reading segments");
	sqlite3_reset(st);
	if (error < 0)
		goto cleanup;
	error = rp_emit(ctx, &r, m.fmt);
cleanup:
	rp_result_free(&r);
	return error;
}

static const struct rp_col member_cols[] = {
	{ "account", RP_TEXT, 0, "accounts", 0 },
	{ "name", RP_TEXT, 0, NULL, 0 },
	{ "city", RP_TEXT, 0, NULL, 0 },
	{ "region", RP_TEXT, 0, NULL, 0 },
	{ "tags", RP_TEXT, 0, NULL, 0 },
};

/* Rows of member_cols for ids. */
static int member_rows(rl_store *s, char (*ids)[RL_ID_BUFSZ], size_t n, struct rp_table *t)
{
	sqlite3_stmt *st;
	size_t i, c;
	int error = RL_OK;

	rp_table_init(t, member_cols, sizeof(member_cols) / sizeof(member_cols[0]));
	if ((error = rl_store_prepare(s, "SELECT id, name, city, region, tags FROM accounts"
				      " WHERE id = ?1", &st)) < 0)
		return error;
	for (i = 0; i < n && error >= 0; i++) {
		struct rp_cell *row;
		sqlite3_bind_text(st, 1, ids[i], -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			if (!(row = rp_row_add(t)))
				error = RL_ENOMEM;
			for (c = 0; c < t->ncols && error >= 0; c++)
				error = rp_set_column(row, c, t, st, (int)c);
		}
		sqlite3_reset(st);
	}
	return error;
}

static int cmd_segment_show(struct cli_ctx *ctx, struct cli_args *a)
{
	struct rp_result r = { 0 };
	struct mk_ctx m;
	sqlite3_stmt *st;
	char id[RL_ID_BUFSZ], *name = NULL, *rule = NULL;
	char (*ids)[RL_ID_BUFSZ] = NULL;
	size_t n = 0;
	int error;

	if ((error = common(ctx, a, &m, &r, "segment")) < 0 ||
	    (error = rl_record_resolve(ctx->store, rl_model_table("segments"), a->pos[0], id)) < 0 ||
	    (error = rl_store_prepare(ctx->store, "SELECT name, rule FROM segments WHERE id = ?1",
				      &st)) < 0)
		goto cleanup;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		name = strdup(cli_col(st, 0));
		rule = strdup(cli_col(st, 1));
	}
	sqlite3_reset(st);
	if (!name || !rule) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((error = add_filter(&r, "segment", name)) < 0 || (error = add_filter(&r, "rule", rule)) < 0)
		goto cleanup;
	if ((error = mk_segment_members(ctx->store, rule, &ids, &n)) < 0) {
		rl_error_prefix("segment '%s'", name);
		goto cleanup;
	}
	if ((error = member_rows(ctx->store, ids, n, &r.rows)) < 0)
		goto cleanup;
	error = rp_emit(ctx, &r, m.fmt);
cleanup:
	free(ids);
	free(name);
	free(rule);
	rp_result_free(&r);
	return error;
}

struct del_args {
	char id[RL_ID_BUFSZ];
};

static int do_delete(struct cli_ctx *ctx, void *arg)
{
	return rl_record_delete(ctx->store, rl_model_table("segments"), ((struct del_args *)arg)->id);
}

static int cmd_segment_delete(struct cli_ctx *ctx, struct cli_args *a)
{
	struct del_args d;
	int error;

	if ((error = rl_record_resolve(ctx->store, rl_model_table("segments"), a->pos[0], d.id)) < 0 ||
	    (error = cli_write(ctx, do_delete, &d)) < 0)
		return error;
	if (!ctx->json)
		printf("deleted segment %s\n", a->pos[0]);
	else
		return cli_print_json(json_pack("{s:s, s:b}", "id", d.id, "deleted", 1));
	return RL_OK;
}

/* ---- tiers ----------------------------------------------------------------------- */

static const struct rp_col tier_cols[] = {
	{ "tier", RP_TEXT, 0, NULL, 0 },
	{ "min_monthly", RP_MONEY, 2, NULL, 0 },
	{ "currency", RP_TEXT, 0, NULL, 0 },
	{ "accounts", RP_INT, 0, NULL, 0 },
	{ "moved_up", RP_INT, 0, NULL, 0 },
	{ "moved_down", RP_INT, 0, NULL, 0 },
};
static const struct rp_col tier_account_cols[] = {
	{ "account", RP_TEXT, 0, "accounts", 0 },
	{ "name", RP_TEXT, 0, NULL, 0 },
	{ "tier", RP_TEXT, 0, NULL, 0 },
	{ "avg_monthly", RP_MONEY, 4, NULL, 0 },
	{ "currency", RP_TEXT, 0, NULL, 0 },
	{ "previous", RP_TEXT, 0, NULL, 0 },
	{ "change", RP_TEXT, 0, NULL, 0 },
};
static const struct rp_col tier_history_cols[] = {
	{ "month", RP_TEXT, 0, NULL, 0 },
	{ "tier", RP_TEXT, 0, NULL, 0 },
	{ "avg_monthly", RP_MONEY, 3, NULL, 0 },
	{ "currency", RP_TEXT, 0, NULL, 0 },
	{ "evaluated_at", RP_TEXT, 0, NULL, 0 },
	{ "change", RP_TEXT, 0, NULL, 0 },
};

/* The average monthly spend shown beside a tier: the six months' total / 6
 * rounded down, as docs/marketing.md says (C's division cuts toward zero:
 * a month of refunds, -7, showed -1 where the floor is -2). */
static int64_t monthly_average(int64_t total)
{
	return total / 6 - (total % 6 < 0);
}

static int tier_rank_by_name(const struct mk_tiers *t, const char *name)
{
	size_t i;

	if (!name)
		return 0;
	for (i = 0; i < t->n; i++)
		if (strcmp(t->name[i], name) == 0)
			return (int)(t->n - i);
	return -1;     /* a tier of an older configuration: no order */
}

static const char *change_word(int before, int after)
{
	if (before < 0 || after < 0 || before == after)
		return before == after ? "" : "changed";
	return after > before ? "up" : "down";
}

static int tiers_history(struct cli_ctx *ctx, const char *ref, const struct mk_tiers *t,
			 struct rp_result *r)
{
	sqlite3_stmt *st;
	char id[RL_ID_BUFSZ], *prev = NULL;
	int rc, error, have_prev = 0;

	if ((error = rl_record_resolve(ctx->store, rl_model_table("accounts"), ref, id)) < 0 ||
	    (error = add_filter(r, "history", id)) < 0)
		return error;
	rp_table_init(&r->rows, tier_history_cols,
		      sizeof(tier_history_cols) / sizeof(tier_history_cols[0]));
	if ((error = rl_store_prepare(ctx->store, "SELECT month, tier, avg_monthly, currency,"
				      " evaluated_at FROM rl_tier_history WHERE account_id = ?1"
				      " ORDER BY month, seq", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct rp_cell *row = rp_row_add(&r->rows);
		const char *tier = (const char *)sqlite3_column_text(st, 1);
		size_t c;
		if (!row) {
			error = RL_ENOMEM;
			break;
		}
		for (c = 0; c < 5 && error >= 0; c++)
			error = rp_set_column(row, c, &r->rows, st, (int)c);
		if (error < 0)
			break;
		if (!have_prev)
			error = rp_set_text(row, 5, "first");
		else if ((prev == NULL) != (tier == NULL) || (prev && strcmp(prev, tier) != 0))
			error = rp_set_text(row, 5, change_word(tier_rank_by_name(t, prev),
								tier_rank_by_name(t, tier)));
		else
			error = rp_set_text(row, 5, "");
		free(prev);
		prev = tier ? strdup(tier) : NULL;
		if (tier && !prev) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			break;
		}
		have_prev = 1;
	}
	if (error >= 0 && rc != SQLITE_DONE)
		error = rl_store_error(ctx->store, "reading the tier history");
	sqlite3_reset(st);
	free(prev);
	return error;
}

static int tiers_month(struct cli_ctx *ctx, const char *month, int accounts,
		       const struct mk_tiers *t, struct rp_result *r)
{
	struct mk_tier_row *now = NULL;
	sqlite3_stmt *names = NULL;
	size_t n = 0, i, k;
	int rc, error;

	if ((error = mk_tiers_compute(ctx->store, t, month, &now, &n)) < 0)
		goto cleanup;
	if (!accounts) {
		int64_t count[MK_MAX_TIERS + 1], up[MK_MAX_TIERS + 1], down[MK_MAX_TIERS + 1];
		rp_table_init(&r->rows, tier_cols, sizeof(tier_cols) / sizeof(tier_cols[0]));
		mk_tiers_count(t, now, n, count, up, down);
		for (k = 0; k <= t->n; k++) {
			struct rp_cell *row;
			if (k == t->n && count[k] == 0)
				break;        /* "no tier" only when someone has none */
			if (!(row = rp_row_add(&r->rows)) ||
			    rp_set_text(row, 0, k < t->n ? t->name[k] : NULL) < 0 ||
			    rp_set_text(row, 2, t->currency) < 0) {
				error = RL_ENOMEM;
				goto cleanup;
			}
			if (k < t->n)
				rp_set_int(row, 1, t->min[k]);
			rp_set_int(row, 3, count[k]);
			rp_set_int(row, 4, up[k]);
			rp_set_int(row, 5, down[k]);
		}
		goto cleanup;
	}
	rp_table_init(&r->rows, tier_account_cols,
		      sizeof(tier_account_cols) / sizeof(tier_account_cols[0]));
	/* Names in the same id order as the tiers: one ordered read instead
	 * of a lookup per customer. */
	if ((error = rl_store_prepare(ctx->store, "SELECT id, name FROM accounts WHERE deleted = 0"
				      " ORDER BY id", &names)) < 0)
		goto cleanup;
	for (i = 0; i < n; i++) {
		struct rp_cell *row = rp_row_add(&r->rows);
		int b = now[i].tier_prev;
		if (!row) {
			error = RL_ENOMEM;
			goto cleanup;
		}
		while ((rc = sqlite3_step(names)) == SQLITE_ROW &&
		       strcmp(cli_col(names, 0), now[i].account) < 0)
			;
		if (rc == SQLITE_ROW && strcmp(cli_col(names, 0), now[i].account) == 0 &&
		    rp_set_text(row, 1, cli_col(names, 1)) < 0) {
			error = RL_ENOMEM;
			goto cleanup;
		}
		if (!row || rp_set_text(row, 0, now[i].account) < 0 ||
		    rp_set_text(row, 2, now[i].tier >= 0 ? t->name[now[i].tier] : NULL) < 0 ||
		    rp_set_text(row, 4, t->currency) < 0 ||
		    rp_set_text(row, 5, b >= 0 ? t->name[b] : NULL) < 0 ||
		    rp_set_text(row, 6, change_word(mk_tier_rank(t, b), mk_tier_rank(t, now[i].tier))) < 0) {
			error = RL_ENOMEM;
			goto cleanup;
		}
		rp_set_int(row, 3, monthly_average(now[i].total));
	}
cleanup:
	if (names)
		sqlite3_reset(names);
	free(now);
	return error;
}

static int cmd_tiers(struct cli_ctx *ctx, struct cli_args *a)
{
	struct rp_result r = { 0 };
	struct mk_ctx m;
	struct mk_tiers t;
	char month[8];
	int error;

	if ((error = common(ctx, a, &m, &r, "tiers")) < 0)
		goto cleanup;
	snprintf(month, sizeof(month), "%s", m.month);
	if (cli_get(a, "month") && (error = parse_month("month", cli_get(a, "month"), month)) < 0)
		goto cleanup;
	if (cli_get(a, "history") && (cli_get(a, "month") || cli_get(a, "accounts"))) {
		error = rl_error_set(RL_EUSAGE, "--history lists every month of one customer: "
				     "without --month or --accounts");
		goto cleanup;
	}
	if ((error = mk_tiers_load(ctx->store, &t)) < 0)
		goto cleanup;
	if (cli_get(a, "history"))
		error = tiers_history(ctx, cli_get(a, "history"), &t, &r);
	else if ((error = add_filter(&r, "month", month)) >= 0)
		error = tiers_month(ctx, month, cli_get(a, "accounts") != NULL, &t, &r);
	if (error < 0 || (error = rp_emit(ctx, &r, m.fmt)) < 0)
		goto cleanup;
cleanup:
	rp_result_free(&r);
	return error;
}

/* tiers config: positional NAME=MIN (major units) replace the levels. */
struct config_args {
	char levels[MK_MAX_TIERS * (MK_TIER_NAME_BYTES + 24) + 1];
	char currency[4];
};

static int do_config(struct cli_ctx *ctx, void *arg)
{
	struct config_args *c = arg;
	const struct rl_table *t = rl_model_table("tier_config");
	int error;

	if ((error = rl_record_set_raw_text(ctx->store, t, MK_TIER_CONFIG_ID, "levels",
					    c->levels)) < 0)
		return error;
	return rl_record_set_raw_text(ctx->store, t, MK_TIER_CONFIG_ID, "currency", c->currency);
}

static int cmd_tiers_config(struct cli_ctx *ctx, struct cli_args *a)
{
	struct rp_result r = { 0 };
	struct mk_ctx m;
	struct mk_tiers t, check;
	struct config_args c;
	size_t i, used = 0;
	int error;

	static const struct rp_col cols[] = {
		{ "tier", RP_TEXT, 0, NULL, 0 },
		{ "min_monthly", RP_MONEY, 2, NULL, 0 },
		{ "currency", RP_TEXT, 0, NULL, 0 },
	};

	if ((error = common(ctx, a, &m, &r, "tier configuration")) < 0 ||
	    (error = mk_tiers_load(ctx->store, &t)) < 0)
		goto cleanup;
	snprintf(c.currency, sizeof(c.currency), "%s", t.currency);
	if (cli_get(a, "currency") &&
	    (error = parse_currency("currency", cli_get(a, "currency"), c.currency)) < 0)
		goto cleanup;
	if (cli_get(a, "currency") && a->npos == 0) {
		error = rl_error_set(RL_EUSAGE, "--currency goes with the levels: "
				     "tiers config NAME=MIN... --currency %s", c.currency);
		goto cleanup;
	}
	if (a->npos > MK_MAX_TIERS) {
		error = rl_error_set(RL_EUSAGE, "at most %d tiers", MK_MAX_TIERS);
		goto cleanup;
	}
	c.levels[0] = '\0';
	for (i = 0; i < a->npos; i++) {
		const char *eq = strchr(a->pos[i], '=');
		int64_t minor;
		if (!eq || eq == a->pos[i] || (size_t)(eq - a->pos[i]) > MK_TIER_NAME_BYTES) {
			error = rl_error_set(RL_EUSAGE, "'%.40s' is not NAME=MIN (e.g. Gold=10000000)",
					     a->pos[i]);
			goto cleanup;
		}
		/* The name as typed: once the minimum is in minor units the
		 * check below would quote '...=100' for a typed '...=1'. */
		if (!mk_tier_name_ok(a->pos[i], (size_t)(eq - a->pos[i]))) {
			error = rl_error_set(RL_EUSAGE, "'%.40s': a tier's name is letters, digits, "
					     "'-' or '_', at most %d", a->pos[i], MK_TIER_NAME_BYTES);
			goto cleanup;
		}
		/* A minimum is an amount like any other (docs/reports.md, "Bounded
		 * amounts"): what rl_money_parse refuses — not a number, beyond
		 * RL_MAX_MONEY_MINOR — is invalid input (exit 5) with the
		 * parser's own reason, as `deal add --amount` says it; replacing
		 * it with "not an amount" hid where the bound is. */
		if ((error = rl_money_parse(&minor, eq + 1, c.currency)) < 0) {
			rl_error_prefix("tiers config: %.*s", (int)(eq - a->pos[i]), a->pos[i]);
			goto cleanup;
		}
		if (minor < 0) {
			error = rl_error_set(RL_EINVALID, "tiers config: %.*s: the minimum '%.32s' is "
					     "below 0", (int)(eq - a->pos[i]), a->pos[i], eq + 1);
			goto cleanup;
		}
		used += (size_t)snprintf(c.levels + used, sizeof(c.levels) - used, "%s%.*s=%lld",
					 i ? ";" : "", (int)(eq - a->pos[i]), a->pos[i],
					 (long long)minor);
		if (used >= sizeof(c.levels)) {
			error = rl_error_set(RL_EUSAGE, "the levels are too long");
			goto cleanup;
		}
	}
	if (a->npos) {
		if ((error = mk_tiers_parse(&check, c.levels, c.currency)) < 0) {
			char why[256];
			snprintf(why, sizeof(why), "%s", rl_error_message());
			error = rl_error_set(RL_EUSAGE, "tiers config: %s", why);
			goto cleanup;
		}
		if ((error = cli_write(ctx, do_config, &c)) < 0)
			goto cleanup;
		t = check;
	}
	rp_table_init(&r.rows, cols, 3);
	for (i = 0; i < t.n; i++) {
		struct rp_cell *row = rp_row_add(&r.rows);
		if (!row || rp_set_text(row, 0, t.name[i]) < 0 || rp_set_text(row, 2, t.currency) < 0) {
			error = RL_ENOMEM;
			goto cleanup;
		}
		rp_set_int(row, 1, t.min[i]);
	}
	error = rp_emit(ctx, &r, m.fmt);
cleanup:
	rp_result_free(&r);
	return error;
}

/* tiers evaluate: compute and keep each month's tiers (idempotent). */
struct eval_args {
	const struct mk_tiers *t;
	char first[8], last[8];
	const char *now_iso;
	int64_t months, rows, stored;
};

static int do_evaluate(struct cli_ctx *ctx, void *arg)
{
	struct eval_args *e = arg;
	struct mk_tier_row *rows = NULL;
	sqlite3_stmt *st;
	char month[8];
	size_t n, i;
	int error = RL_OK;

	snprintf(month, sizeof(month), "%s", e->first);
	for (;;) {
		if ((error = mk_tiers_compute(ctx->store, e->t, month, &rows, &n)) < 0)
			return error;
		if ((error = rl_store_prepare(ctx->store,
		     /* a plain INSERT: history is only added to (schema 020:
		      * evaluations in the same second are rows of their own);
		      * the latest row is the highest seq, not the latest time */
		     "INSERT INTO rl_tier_history(account_id, month, tier, avg_monthly,"
		     " currency, evaluated_at) SELECT ?1, ?2, ?3, ?4, ?5, ?6"
		     " WHERE NOT EXISTS (SELECT 1 FROM rl_tier_history WHERE account_id = ?1"
		     "  AND month = ?2)"
		     " OR (SELECT tier FROM rl_tier_history WHERE account_id = ?1 AND month = ?2"
		     "  ORDER BY seq DESC LIMIT 1) IS NOT ?3", &st)) < 0)
			break;
		for (i = 0; i < n; i++) {
			sqlite3_bind_text(st, 1, rows[i].account, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, month, -1, SQLITE_STATIC);
			if (rows[i].tier >= 0)
				sqlite3_bind_text(st, 3, e->t->name[rows[i].tier], -1, SQLITE_STATIC);
			else
				sqlite3_bind_null(st, 3);
			sqlite3_bind_int64(st, 4, monthly_average(rows[i].total));
			sqlite3_bind_text(st, 5, e->t->currency, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 6, e->now_iso, -1, SQLITE_STATIC);
			if (sqlite3_step(st) != SQLITE_DONE) {
				error = rl_store_error(ctx->store, "storing tiers");
				sqlite3_reset(st);
				break;
			}
			e->stored += sqlite3_changes(rl_store_db(ctx->store));
			sqlite3_reset(st);
		}
		e->rows += (int64_t)n;
		e->months++;
		free(rows);
		rows = NULL;
		if (error < 0 || strcmp(month, e->last) >= 0)
			break;
		mk_month_add(month, month, 1);
	}
	return error;
}

static int cmd_tiers_evaluate(struct cli_ctx *ctx, struct cli_args *a)
{
	struct rp_result r = { 0 };
	struct mk_ctx m;
	struct mk_tiers t;
	struct eval_args e;
	char probe[8];
	int k, error;

	memset(&e, 0, sizeof(e));
	if ((error = common(ctx, a, &m, &r, "tiers evaluate")) < 0)
		goto cleanup;
	snprintf(e.first, sizeof(e.first), "%s", m.month);
	if (cli_get(a, "month") && (error = parse_month("month", cli_get(a, "month"), e.first)) < 0)
		goto cleanup;
	snprintf(e.last, sizeof(e.last), "%s", e.first);
	if (cli_get(a, "through") &&
	    (error = parse_month("through", cli_get(a, "through"), e.last)) < 0)
		goto cleanup;
	if (strcmp(e.last, e.first) < 0) {
		error = rl_error_set(RL_EUSAGE, "--through %s is before --month %s", e.last, e.first);
		goto cleanup;
	}
	snprintf(probe, sizeof(probe), "%s", e.first);
	for (k = 0; k < MK_MAX_MONTHS && strcmp(probe, e.last) < 0; k++)
		mk_month_add(probe, probe, 1);
	if (strcmp(probe, e.last) < 0) {
		error = rl_error_set(RL_EUSAGE, "at most %d months at once", MK_MAX_MONTHS);
		goto cleanup;
	}
	if ((error = mk_tiers_load(ctx->store, &t)) < 0)
		goto cleanup;
	e.t = &t;
	e.now_iso = m.now_iso;
	if ((error = cli_write(ctx, do_evaluate, &e)) < 0)
		goto cleanup;
	if (ctx->json) {
		json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "from", e.first, "through",
				      e.last, "months", (json_int_t)e.months, "evaluated",
				      (json_int_t)e.rows, "stored", (json_int_t)e.stored,
				      "unchanged", (json_int_t)(e.rows - e.stored));
		if (!o) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto cleanup;
		}
		error = cli_print_json(o);
		goto cleanup;
	}
	printf("evaluated %s..%s: %lld account-months, %lld stored (new or changed), "
	       "%lld unchanged\n", e.first, e.last, (long long)e.rows, (long long)e.stored,
	       (long long)(e.rows - e.stored));
cleanup:
	rp_result_free(&r);
	return error;
}

#define CSV_OPT { "csv", 0, NULL, "CSV (RFC 4180) instead of a table", NULL }
#define END_OPT { NULL, 0, NULL, NULL, NULL }

static const struct cli_opt rfm_opts[] = {
	{ "from", 1, "DATE", "window start (UTC; YYYY-MM-DD, -90d)", NULL },
	{ "to", 1, "DATE", "window end (default today)", NULL },
	{ "months", 1, "N", "window of N calendar months ending with --to's (default 12)", NULL },
	{ "currency", 1, "CODE", "only deals in this currency", NULL },
	{ "accounts", 0, NULL, "list every account's scores instead of the segments", NULL },
	CSV_OPT, END_OPT
};
static const struct cli_opt list_opts[] = { CSV_OPT, END_OPT };
static const struct cli_opt tiers_opts[] = {
	{ "month", 1, "YYYY-MM", "the month (default this month)", NULL },
	{ "accounts", 0, NULL, "list every account's tier instead of the counts", NULL },
	{ "history", 1, "ACCOUNT", "the stored tier history of one customer", NULL },
	CSV_OPT, END_OPT
};
static const struct cli_opt config_opts[] = {
	{ "currency", 1, "CODE", "currency of the minimums (default: the current one)", NULL },
	CSV_OPT, END_OPT
};
static const struct cli_opt evaluate_opts[] = {
	{ "month", 1, "YYYY-MM", "first month to evaluate (default this month)", NULL },
	{ "through", 1, "YYYY-MM", "last month to evaluate (default --month)", NULL },
	END_OPT
};

const struct cli_cmd cli_cmds_marketing[] = {
	{ "segment rfm", cmd_rfm, "[OPTIONS]",
	  "RFM scores (1-5 by quintile) and segments from won deals in a window", rfm_opts,
	  NULL, CLI_MODEL_NONE, 0, 0, 1 },
	{ "segment save", cmd_segment_save, "NAME RULE",
	  "save (or replace) a segment defined by a rule", NULL, NULL, CLI_MODEL_NONE, 2, 2, 1 },
	{ "segment list", cmd_segment_list, "", "saved segments and their rules", list_opts,
	  NULL, CLI_MODEL_NONE, 0, 0, 1 },
	{ "segment show", cmd_segment_show, "SEGMENT", "the customers a segment selects today",
	  list_opts, NULL, CLI_MODEL_NONE, 1, 1, 1 },
	{ "segment delete", cmd_segment_delete, "SEGMENT", "delete a saved segment", NULL, NULL,
	  CLI_MODEL_NONE, 1, 1, 1 },
	{ "tiers", cmd_tiers, "[OPTIONS]",
	  "customer tiers of a month from average monthly spend over the six months before",
	  tiers_opts, NULL, CLI_MODEL_NONE, 0, 0, 1 },
	{ "tiers config", cmd_tiers_config, "[NAME=MIN ...]",
	  "show or set the tier names and minimum average monthly spend", config_opts, NULL,
	  CLI_MODEL_NONE, 0, MK_MAX_TIERS + 1, 1 },
	{ "tiers evaluate", cmd_tiers_evaluate, "[OPTIONS]",
	  "compute and keep each month's tiers (the history; running again changes nothing)",
	  evaluate_opts, NULL, CLI_MODEL_NONE, 0, 0, 1 },
	{ NULL, NULL, NULL, NULL, NULL, NULL, CLI_MODEL_NONE, 0, 0, 0 }
};
