/*
 * report_calc.c — the figures of the pipeline reports (relasi/report.h),
 * for both binaries: in librelasi-sync because `relasi report` and
 * `relasi-hub report` run the same reports over the same data model
 * (issue 6, layout (a): nothing here is client-only). Each
 * report reads the store through fixed, prepared SQL with its filters bound
 * as parameters; conversion and time-in-stage walk the stage-move history
 * in C, one deal at a time.
 *
 * Parameters every statement here may use (bind_filter):
 *   ?1 rep (users.id)   ?2 team   ?3 region   ?4 from   ?5 to (UTC dates)
 *   ?6 now ("YYYY-MM-DDTHH:MM:SSZ")   ?7 today   ?8 idle threshold (an
 *   instant: now - N days)   ?9 winrate grouping   ?10 now (Unix seconds)
 *
 * Definitions (docs/reports.md, "Pipeline reports"):
 *  - weighted amount of a deal = floor((amount x p + 50) / 100) in minor units,
 *    p = the deal's own probability if set, else its stage's (rounded half
 *    up per deal, as `relasi pipeline` does);
 *  - a deal's close time = closed_at (set by `deal won` / `deal lost`); a
 *    deal imported as already won or lost has none, so its expected close
 *    date stands in, else its creation time;
 *  - sales cycle = close time - created_at (never below 0), won deals only.
 */
#include "relasi/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relasi/valid.h"

/* ---- shared SQL fragments --------------------------------------------------------- */

#define DEAL_FILTER \
	" d.deleted = 0 AND" RP_CUSTOMER_LIVE("d") " AND (?1 IS NULL OR d.owner_id = ?1)" \
	" AND (?2 IS NULL OR EXISTS (SELECT 1 FROM users fu WHERE fu.id = d.owner_id" \
	"  AND fu.team = ?2 COLLATE NOCASE))" \
	" AND (?3 IS NULL OR EXISTS (SELECT 1 FROM accounts fa WHERE fa.id = d.account_id" \
	"  AND fa.region = ?3 COLLATE NOCASE))"

#define IN_PERIOD(day) " ((?4 IS NULL OR " day " >= ?4) AND (?5 IS NULL OR " day " <= ?5))"

#define WEIGHTED RP_WEIGHTED

/* A user's name: their users row, else (a store not yet enrolled, whose own
 * user has no row) the name given to `relasi init`, else the id. */
#define REP_NAME(id) "coalesce((SELECT name FROM users WHERE id = " id ")," \
	" (SELECT value FROM rl_meta WHERE key = 'rep_name'" \
	"  AND " id " = (SELECT value FROM rl_meta WHERE key = 'user_id')), " id ")"


static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
	if (v && *v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* Bind the parameters the statement has (only those: binding a number past
 * its last parameter is an error). f must outlive the statement's use. */
static void bind_filter(sqlite3_stmt *st, const struct rp_filter *f, const char *idle_iso)
{
	int n = sqlite3_bind_parameter_count(st), i;

	for (i = 1; i <= n; i++) {
		switch (i) {
		case 1: bind_text_or_null(st, i, f->rep); break;
		case 2: bind_text_or_null(st, i, f->team); break;
		case 3: bind_text_or_null(st, i, f->region); break;
		case 4: bind_text_or_null(st, i, f->from); break;
		case 5: bind_text_or_null(st, i, f->to); break;
		case 6: bind_text_or_null(st, i, f->now_iso); break;
		case 7: bind_text_or_null(st, i, f->today); break;
		case 8: bind_text_or_null(st, i, idle_iso); break;
		case 9: bind_text_or_null(st, i, f->by); break;
		case 10: sqlite3_bind_int64(st, i, f->now); break;
		default: break;
		}
	}
}

/* Fill table t with every row of st, column i of st into column i of t. */
static int fill(rl_store *s, sqlite3_stmt *st, struct rp_table *t)
{
	struct rp_cell *row;
	size_t c;
	int rc, error = RL_OK;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (!(row = rp_row_add(t))) {
			error = RL_ENOMEM;
			goto cleanup;
		}
		for (c = 0; c < t->ncols; c++)
			if ((error = rp_set_column(row, c, t, st, (int)c)) < 0)
				goto cleanup;
	}
	if (rc != SQLITE_DONE)
		error = rp_sum_error(s, "reading the report");
cleanup:
	sqlite3_reset(st);
	return error;
}

static int64_t col_i(const struct rp_cell *row, size_t c)
{
	return row[c].null ? 0 : row[c].i;
}

/* ---- pipeline ----------------------------------------------------------------- */

static const struct rp_col pipeline_cols[] = {
	{ "stage", RP_TEXT, 0, NULL, 0 },
	{ "kind", RP_TEXT, 0, NULL, 0 },
	{ "probability", RP_INT, 0, NULL, 0 },
	{ "currency", RP_TEXT, 0, NULL, 0 },
	{ "deals", RP_INT, 0, NULL, 0 },
	{ "amount", RP_MONEY, 3, NULL, 0 },
	{ "weighted", RP_MONEY, 3, NULL, 0 },
};
static const struct rp_col pipeline_total_cols[] = {
	{ "currency", RP_TEXT, 0, NULL, 0 },
	{ "open_deals", RP_INT, 0, NULL, 0 },
	{ "amount", RP_MONEY, 0, NULL, 0 },
	{ "weighted", RP_MONEY, 0, NULL, 0 },
};

/* The period of the pipeline: deals created, or expected to close, in it. */
#define PIPELINE_PERIOD "(" IN_PERIOD("substr(d.created_at, 1, 10)") " OR " \
	IN_PERIOD("d.expected_close") ")"

int rp_pipeline(rl_store *s, const struct rp_filter *f, struct rp_result *r)
{
	sqlite3_stmt *st;
	int error;

	rp_table_init(&r->rows, pipeline_cols, sizeof(pipeline_cols) / sizeof(pipeline_cols[0]));
	rp_table_init(&r->totals, pipeline_total_cols,
		      sizeof(pipeline_total_cols) / sizeof(pipeline_total_cols[0]));
	if ((error = rl_store_prepare(s,
	     "SELECT s.name, s.kind, s.probability, d.currency, count(d.id),"
	     " coalesce(sum(d.amount), 0), coalesce(sum(" WEIGHTED "), 0)"
	     " FROM stages s LEFT JOIN deals d ON d.stage_id = s.id AND" DEAL_FILTER
	     "  AND " PIPELINE_PERIOD
	     " WHERE s.deleted = 0 GROUP BY s.id, d.currency"
	     " ORDER BY s.position, s.name, d.currency", &st)) < 0)
		return error;
	bind_filter(st, f, NULL);
	if ((error = fill(s, st, &r->rows)) < 0)
		return error;
	if ((error = rl_store_prepare(s,
	     "SELECT d.currency, count(*), coalesce(sum(d.amount), 0), coalesce(sum(" WEIGHTED "), 0)"
	     " FROM deals d JOIN stages s ON s.id = d.stage_id AND s.deleted = 0 AND s.kind = 'open'"
	     " WHERE" DEAL_FILTER " AND " PIPELINE_PERIOD
	     " GROUP BY d.currency ORDER BY d.currency", &st)) < 0)
		return error;
	bind_filter(st, f, NULL);
	return fill(s, st, &r->totals);
}

/* ---- forecast ----------------------------------------------------------------- */

static const struct rp_col forecast_cols[] = {
	{ "month", RP_TEXT, 0, NULL, 0 },
	{ "currency", RP_TEXT, 0, NULL, 0 },
	{ "open_deals", RP_INT, 0, NULL, 0 },
	{ "open_amount", RP_MONEY, 1, NULL, 0 },
	{ "weighted", RP_MONEY, 1, NULL, 0 },
	{ "won_deals", RP_INT, 0, NULL, 0 },
	{ "won", RP_MONEY, 1, NULL, 0 },
	{ "expected", RP_MONEY, 1, NULL, 0 },
	{ "best_case", RP_MONEY, 1, NULL, 0 },
};
static const struct rp_col forecast_total_cols[] = {
	{ "currency", RP_TEXT, 0, NULL, 0 },
	{ "open_deals", RP_INT, 0, NULL, 0 },
	{ "open_amount", RP_MONEY, 0, NULL, 0 },
	{ "weighted", RP_MONEY, 0, NULL, 0 },
	{ "won_deals", RP_INT, 0, NULL, 0 },
	{ "won", RP_MONEY, 0, NULL, 0 },
	{ "expected", RP_MONEY, 0, NULL, 0 },
	{ "best_case", RP_MONEY, 0, NULL, 0 },
};

/*
 * Per month and currency: open deals by the month of their expected close
 * (no date: month NULL, listed last; left out when a period is given),
 * won deals by the month they were won. expected = won + weighted, best
 * case = won + every open amount.
 */
int rp_forecast(rl_store *s, const struct rp_filter *f, struct rp_result *r)
{
	sqlite3_stmt *st;
	struct rp_cell *t = NULL;
	size_t i, k;
	int rc, error;

	rp_table_init(&r->rows, forecast_cols, sizeof(forecast_cols) / sizeof(forecast_cols[0]));
	rp_table_init(&r->totals, forecast_total_cols,
		      sizeof(forecast_total_cols) / sizeof(forecast_total_cols[0]));
	if ((error = rl_store_prepare(s,
	     "SELECT month, currency, sum(open_n), coalesce(sum(open_amt), 0),"
	     " coalesce(sum(weighted), 0), sum(won_n), coalesce(sum(won_amt), 0) FROM ("
	     " SELECT substr(d.expected_close, 1, 7) AS month, d.currency AS currency, 1 AS open_n,"
	     "  d.amount AS open_amt, " WEIGHTED " AS weighted, 0 AS won_n, NULL AS won_amt"
	     "  FROM deals d JOIN stages s ON s.id = d.stage_id AND s.deleted = 0 AND s.kind = 'open'"
	     "  WHERE" DEAL_FILTER " AND" IN_PERIOD("d.expected_close")
	     " UNION ALL"
	     " SELECT substr(" RP_CLOSED_DAY ", 1, 7), d.currency, 0, NULL, NULL, 1, d.amount"
	     "  FROM deals d JOIN stages s ON s.id = d.stage_id AND s.deleted = 0 AND s.kind = 'won'"
	     "  WHERE" DEAL_FILTER " AND" IN_PERIOD(RP_CLOSED_DAY)
	     ") GROUP BY month, currency ORDER BY month IS NULL, month, currency", &st)) < 0)
		return error;
	bind_filter(st, f, NULL);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct rp_cell *row = rp_row_add(&r->rows);
		if (!row) {
			error = RL_ENOMEM;
			goto cleanup;
		}
		for (i = 0; i < 7; i++)
			if ((error = rp_set_column(row, i, &r->rows, st, (int)i)) < 0)
				goto cleanup;
		/* expected = won + weighted, best case = won + open amount */
		rp_set_int(row, 7, col_i(row, 6));
		rp_set_int(row, 8, col_i(row, 6));
		if ((error = rp_money_add(&row[7].i, col_i(row, 4), "forecast", row[1].s)) < 0 ||
		    (error = rp_money_add(&row[8].i, col_i(row, 3), "forecast", row[1].s)) < 0)
			goto cleanup;
	}
	if (rc != SQLITE_DONE) {
		error = rp_sum_error(s, "reading the forecast");
		goto cleanup;
	}
	/* Totals per currency, in currency order. */
	for (i = 0; i < r->rows.nrows; i++) {
		const struct rp_cell *row = &r->rows.cells[i * r->rows.ncols];
		for (k = 0; k < r->totals.nrows; k++) {
			t = &r->totals.cells[k * r->totals.ncols];
			if (strcmp(t[0].s, row[1].s) == 0)
				break;
		}
		if (k == r->totals.nrows) {
			/* keep currency order: insert, then bubble into place */
			if (!(t = rp_row_add(&r->totals))) {
				error = RL_ENOMEM;
				goto cleanup;
			}
			if ((error = rp_set_text(t, 0, row[1].s)) < 0)
				goto cleanup;
			for (k = 1; k < r->totals.ncols; k++)
				rp_set_int(t, k, 0);
			for (k = r->totals.nrows - 1; k > 0; k--) {
				struct rp_cell *a = &r->totals.cells[(k - 1) * r->totals.ncols];
				struct rp_cell *b = &r->totals.cells[k * r->totals.ncols], tmp;
				size_t c;
				if (strcmp(a[0].s, b[0].s) <= 0)
					break;
				for (c = 0; c < r->totals.ncols; c++) {
					tmp = a[c];
					a[c] = b[c];
					b[c] = tmp;
				}
				t = a;
			}
		}
		for (k = 1; k < r->totals.ncols; k++)
			if ((error = rp_money_add(&t[k].i, col_i(row, k + 1), "forecast",
						  row[1].s)) < 0)
				goto cleanup;
	}
	error = RL_OK;
cleanup:
	sqlite3_reset(st);
	return error;
}

/* ---- win rate ----------------------------------------------------------------- */

static const struct rp_col winrate_rep_cols[] = {
	{ "rep", RP_TEXT, 0, NULL, 0 },
	{ "rep_id", RP_TEXT, 0, NULL, 1 },
	{ "won", RP_INT, 0, NULL, 0 },
	{ "lost", RP_INT, 0, NULL, 0 },
	{ "closed", RP_INT, 0, NULL, 0 },
	{ "win_rate", RP_RATIO, 0, NULL, 0 },
};
#define WINRATE_COLS(dim) { \
	{ dim, RP_TEXT, 0, NULL, 0 }, { "won", RP_INT, 0, NULL, 0 }, \
	{ "lost", RP_INT, 0, NULL, 0 }, { "closed", RP_INT, 0, NULL, 0 }, \
	{ "win_rate", RP_RATIO, 0, NULL, 0 } }
static const struct rp_col winrate_line_cols[] = WINRATE_COLS("line");
static const struct rp_col winrate_team_cols[] = WINRATE_COLS("team");
static const struct rp_col winrate_region_cols[] = WINRATE_COLS("region");
static const struct rp_col winrate_month_cols[] = WINRATE_COLS("month");
static const struct rp_col winrate_total_cols[] = {
	{ "won", RP_INT, 0, NULL, 0 },
	{ "lost", RP_INT, 0, NULL, 0 },
	{ "closed", RP_INT, 0, NULL, 0 },
	{ "win_rate", RP_RATIO, 0, NULL, 0 },
};

/* won / (won + lost) per group, closed deals whose close day is in the
 * period. Deals with no value for the grouping (no line, no team) form one
 * group whose key is NULL. A team or region is one group whatever its case
 * ("Jawa Barat", "jawa barat"), as --team and --region match it (ASCII case,
 * lower() as NOCASE folds it):
 * split, `--by region` showed two rates where `--region` counts one. The
 * group is named by its first spelling in binary order (min). */
int rp_winrate(rl_store *s, const struct rp_filter *f, struct rp_result *r)
{
	sqlite3_stmt *st;
	struct rp_cell *row, *tot;
	int64_t won = 0, lost = 0;
	int rc, error, rep = strcmp(f->by, "rep") == 0;
	size_t key;

	if (rep)
		rp_table_init(&r->rows, winrate_rep_cols, 6);
	else if (strcmp(f->by, "line") == 0)
		rp_table_init(&r->rows, winrate_line_cols, 5);
	else if (strcmp(f->by, "team") == 0)
		rp_table_init(&r->rows, winrate_team_cols, 5);
	else if (strcmp(f->by, "region") == 0)
		rp_table_init(&r->rows, winrate_region_cols, 5);
	else
		rp_table_init(&r->rows, winrate_month_cols, 5);
	rp_table_init(&r->totals, winrate_total_cols, 4);
	key = rep ? 2 : 1;
	if ((error = rl_store_prepare(s,
	     "SELECT CASE WHEN ?9 = 'rep' THEN " REP_NAME("k")
	     "  ELSE min(k) END AS label, min(k), sum(won), sum(lost) FROM ("
	     " SELECT CASE ?9 WHEN 'rep' THEN d.owner_id WHEN 'line' THEN d.line"
	     "  WHEN 'team' THEN (SELECT team FROM users WHERE id = d.owner_id)"
	     "  WHEN 'region' THEN (SELECT region FROM accounts WHERE id = d.account_id)"
	     "  ELSE substr(" RP_CLOSED_DAY ", 1, 7) END AS k,"
	     "  s.kind = 'won' AS won, s.kind = 'lost' AS lost"
	     " FROM deals d JOIN stages s ON s.id = d.stage_id AND s.deleted = 0"
	     "  AND s.kind IN ('won', 'lost')"
	     " WHERE" DEAL_FILTER " AND" IN_PERIOD(RP_CLOSED_DAY)
	     ") GROUP BY CASE WHEN ?9 IN ('team', 'region') THEN lower(k) ELSE k END"
	     " ORDER BY label IS NULL, label, 2", &st)) < 0)
		return error;
	bind_filter(st, f, NULL);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t w = sqlite3_column_int64(st, 2), l = sqlite3_column_int64(st, 3);
		if (!(row = rp_row_add(&r->rows))) {
			error = RL_ENOMEM;
			goto cleanup;
		}
		if ((error = rp_set_column(row, 0, &r->rows, st, 0)) < 0 ||
		    (rep && (error = rp_set_column(row, 1, &r->rows, st, 1)) < 0))
			goto cleanup;
		rp_set_int(row, key, w);
		rp_set_int(row, key + 1, l);
		rp_set_int(row, key + 2, w + l);
		if (w + l)
			rp_set_ratio(row, key + 3, (double)w / (double)(w + l));
		won += w;
		lost += l;
	}
	if (rc != SQLITE_DONE) {
		error = rl_store_error(s, "reading the win rate");
		goto cleanup;
	}
	if (!(tot = rp_row_add(&r->totals))) {
		error = RL_ENOMEM;
		goto cleanup;
	}
	rp_set_int(tot, 0, won);
	rp_set_int(tot, 1, lost);
	rp_set_int(tot, 2, won + lost);
	if (won + lost)
		rp_set_ratio(tot, 3, (double)won / (double)(won + lost));
	error = RL_OK;
cleanup:
	sqlite3_reset(st);
	return error;
}

/* ---- velocity ----------------------------------------------------------------- */

static const struct rp_col velocity_cols[] = {
	{ "currency", RP_TEXT, 0, NULL, 0 },
	{ "open_deals", RP_INT, 0, NULL, 0 },
	{ "won", RP_INT, 0, NULL, 0 },
	{ "lost", RP_INT, 0, NULL, 0 },
	{ "win_rate", RP_RATIO, 0, NULL, 0 },
	{ "avg_deal_size", RP_MONEY, 0, NULL, 0 },
	{ "avg_cycle_days", RP_REAL, 0, NULL, 0 },
	{ "velocity_per_day", RP_MONEY, 0, NULL, 0 },
};

/*
 * Sales velocity per currency = open deals x average won deal size x win
 * rate / average sales cycle (days): the value the pipeline turns into
 * revenue per day. Open deals are those open now; the other three parts
 * come from deals closed in the period (all closed deals without one). The
 * product uses the unrounded parts and is rounded to the minor unit once.
 * A part that cannot be known (nothing won, a zero cycle) leaves the
 * velocity NULL.
 */
int rp_velocity(rl_store *s, const struct rp_filter *f, struct rp_result *r)
{
	sqlite3_stmt *st;
	int rc, error;

	rp_table_init(&r->rows, velocity_cols, sizeof(velocity_cols) / sizeof(velocity_cols[0]));
	if ((error = rl_store_prepare(s,
	     "SELECT currency, sum(open), sum(won), sum(lost), sum(won_amt), count(won_amt),"
	     " sum(cycle) FROM ("
	     " SELECT d.currency AS currency, s.kind = 'open' AS open,"
	     "  (s.kind = 'won' AND" IN_PERIOD(RP_CLOSED_DAY) ") AS won,"
	     "  (s.kind = 'lost' AND" IN_PERIOD(RP_CLOSED_DAY) ") AS lost,"
	     "  CASE WHEN s.kind = 'won' AND" IN_PERIOD(RP_CLOSED_DAY) " THEN d.amount END AS won_amt,"
	     "  CASE WHEN s.kind = 'won' AND" IN_PERIOD(RP_CLOSED_DAY) " THEN"
	     "   max(0, strftime('%s', " RP_CLOSED_TIME ") - strftime('%s', d.created_at)) END AS cycle"
	     " FROM deals d JOIN stages s ON s.id = d.stage_id AND s.deleted = 0"
	     " WHERE" DEAL_FILTER
	     ") GROUP BY currency ORDER BY currency", &st)) < 0)
		return error;
	bind_filter(st, f, NULL);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t open = sqlite3_column_int64(st, 1), won = sqlite3_column_int64(st, 2);
		int64_t lost = sqlite3_column_int64(st, 3), namt = sqlite3_column_int64(st, 5);
		double sum_amt = sqlite3_column_double(st, 4), cycle_s = sqlite3_column_double(st, 6);
		double rate = NAN, size = NAN, cycle = NAN;
		struct rp_cell *row = rp_row_add(&r->rows);

		if (!row) {
			error = RL_ENOMEM;
			goto cleanup;
		}
		if ((error = rp_set_column(row, 0, &r->rows, st, 0)) < 0)
			goto cleanup;
		rp_set_int(row, 1, open);
		rp_set_int(row, 2, won);
		rp_set_int(row, 3, lost);
		if (won + lost) {
			rate = (double)won / (double)(won + lost);
			rp_set_ratio(row, 4, rate);
		}
		if (namt) {
			size = sum_amt / (double)namt;
			rp_set_int(row, 5, (int64_t)llround(size));
		}
		if (won) {
			cycle = cycle_s / (double)won / 86400.0;
			rp_set_real(row, 6, cycle);
		}
		if (isfinite(rate) && isfinite(size) && isfinite(cycle) && cycle > 0) {
			double v = (double)open * size * rate / cycle;
			if (fabs(v) < 9.0e18)
				rp_set_int(row, 7, (int64_t)llround(v));
		}
	}
	error = rc == SQLITE_DONE ? RL_OK : rp_sum_error(s, "reading the velocity");
cleanup:
	sqlite3_reset(st);
	return error;
}

/* ---- stale deals ----------------------------------------------------------------- */

static const struct rp_col stale_cols[] = {
	{ "deal_id", RP_TEXT, 0, "deals", 0 },
	{ "title", RP_TEXT, 0, NULL, 0 },
	{ "account", RP_TEXT, 0, NULL, 0 },
	{ "rep", RP_TEXT, 0, NULL, 0 },
	{ "stage", RP_TEXT, 0, NULL, 0 },
	{ "amount", RP_MONEY, 6, NULL, 0 },
	{ "currency", RP_TEXT, 0, NULL, 1 },
	{ "expected_close", RP_TEXT, 0, NULL, 0 },
	{ "last_touch", RP_TEXT, 0, NULL, 0 },
	{ "days_idle", RP_INT, 0, NULL, 0 },
	{ "reason", RP_TEXT, 0, NULL, 0 },
};

/*
 * Open deals nobody has touched for N days, or past their expected close.
 * A deal's last touch is the latest of: its creation, its last stage move,
 * its last activity, and its customer's last activity that is not about
 * another deal (a visit to the shop with no deal named counts for all the
 * shop's deals). Idle when now - last touch >= N days. Oldest touch first.
 */
int rp_stale(rl_store *s, const struct rp_filter *f, struct rp_result *r)
{
	sqlite3_stmt *st;
	char idle[21];
	int error;

	rp_table_init(&r->rows, stale_cols, sizeof(stale_cols) / sizeof(stale_cols[0]));
	rl_time_format_utc(idle, f->now - (int64_t)f->days * 86400);
	error = rl_store_prepare(s,
	     /* A customer's last activity about no deal, for all its customers
	      * at once: one ordered pass over activities_touch instead of a
	      * seek per deal at random places of it (INDEXED BY: the planner
	      * would take activities_deal and read every row). */
	     "WITH touched AS MATERIALIZED (SELECT account_id AS aid, max(at) AS at"
	     " FROM activities INDEXED BY activities_touch WHERE deal_id IS NULL AND deleted = 0"
	     " GROUP BY account_id) "
	     "SELECT id, title, account, rep, stage, amount, currency, expected_close, last_touch,"
	     " (?10 - strftime('%s', last_touch)) / 86400,"
	     " CASE WHEN last_touch <= ?8 AND expected_close < ?7 THEN 'idle, overdue'"
	     "  WHEN last_touch <= ?8 THEN 'idle' ELSE 'overdue' END FROM ("
	     " SELECT d.id AS id, d.title AS title, a.name AS account,"
	     "  " REP_NAME("d.owner_id") " AS rep, s.name AS stage, d.amount AS amount,"
	     "  d.currency AS currency, d.expected_close AS expected_close,"
	     "  max(d.created_at,"
	     "   coalesce((SELECT max(e.at) FROM deal_stage_events e WHERE e.deal_id = d.id"
	     "    AND e.deleted = 0), ''),"
	     "   coalesce((SELECT max(x.at) FROM activities x WHERE x.deal_id = d.id"
	     "    AND x.deleted = 0), ''),"
	     "   coalesce(t.at, '')) AS last_touch"
	     " FROM deals d JOIN stages s ON s.id = d.stage_id AND s.deleted = 0 AND s.kind = 'open'"
	     " LEFT JOIN accounts a ON a.id = d.account_id"
	     " LEFT JOIN touched t ON t.aid = d.account_id"
	     " WHERE" DEAL_FILTER
	     /* LIMIT -1 keeps SQLite from flattening the subquery: flattened,
	      * last_touch (three index lookups) was computed again at each of
	      * its five uses, most of the report's time on 50k deals. */
	     " LIMIT -1) WHERE last_touch <= ?8 OR expected_close < ?7 ORDER BY last_touch, id", &st);
	if (error < 0)
		return error;
	bind_filter(st, f, idle);
	return fill(s, st, &r->rows);
}

/* ---- activity ------------------------------------------------------------------- */

static const struct rp_col activity_cols[] = {
	{ "week", RP_TEXT, 0, NULL, 0 },
	{ "week_start", RP_TEXT, 0, NULL, 0 },
	{ "rep", RP_TEXT, 0, NULL, 0 },
	{ "rep_id", RP_TEXT, 0, NULL, 1 },
	{ "visits", RP_INT, 0, NULL, 0 },
	{ "calls", RP_INT, 0, NULL, 0 },
	{ "meetings", RP_INT, 0, NULL, 0 },
	{ "emails", RP_INT, 0, NULL, 0 },
	{ "total", RP_INT, 0, NULL, 0 },
};
static const struct rp_col activity_total_cols[] = {
	{ "rep", RP_TEXT, 0, NULL, 0 },
	{ "rep_id", RP_TEXT, 0, NULL, 1 },
	{ "visits", RP_INT, 0, NULL, 0 },
	{ "calls", RP_INT, 0, NULL, 0 },
	{ "meetings", RP_INT, 0, NULL, 0 },
	{ "emails", RP_INT, 0, NULL, 0 },
	{ "total", RP_INT, 0, NULL, 0 },
};

/*
 * Activities per rep (the user who logged them) per ISO 8601 week of their
 * UTC time: weeks start on Monday and belong to the year of their Thursday
 * ("2026-W01" can start in December).
 *
 * The rows are read in the order of the covering index activities_rep
 * (rep, time) and counted here, one bucket per rep and week, because a
 * GROUP BY on a computed week would sort every activity first (measured
 * 2x slower on 300k activities).
 */
#define ACT_FILTER \
	" x.deleted = 0 AND" RP_CUSTOMER_LIVE("x") " AND (?1 IS NULL OR x.user_id = ?1)" \
	" AND (?2 IS NULL OR EXISTS (SELECT 1 FROM users fu WHERE fu.id = x.user_id" \
	"  AND fu.team = ?2 COLLATE NOCASE))" \
	" AND (?3 IS NULL OR EXISTS (SELECT 1 FROM accounts fa WHERE fa.id = x.account_id" \
	"  AND fa.region = ?3 COLLATE NOCASE))" \
	" AND" IN_PERIOD("substr(x.at, 1, 10)")

/* A day number as int year, month, day (rl_civil_from_days: relasi/valid.h). */
static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
	int64_t yy;
	unsigned mm, dd;

	rl_civil_from_days(z, &yy, &mm, &dd);
	*y = (int)yy;
	*m = (int)mm;
	*d = (int)dd;
}

/* The Monday (days since epoch) of the ISO week holding "YYYY-MM-DD"; -1
 * if the text is not such a date. */
static int64_t week_monday(const char *day)
{
	int y, m, d;
	int64_t z;

	if (strlen(day) != 10 || sscanf(day, "%4d-%2d-%2d", &y, &m, &d) != 3 || m < 1 || m > 12 ||
	    d < 1 || d > 31)
		return -1;
	z = rl_days_from_civil(y, (unsigned)m, (unsigned)d);
	/* 1970-01-01 was a Thursday: weekday 0 = Monday */
	return z - ((z % 7 + 10) % 7);
}

struct act_bucket {
	int64_t monday;
	char user[RL_ID_BUFSZ];   /* "" when no user is recorded */
	int64_t n[5];             /* visits, calls, meetings, emails, total */
	char *name;               /* the rep's name (shared per user, owned by first) */
	int owns_name;
};

static int bucket_order(const void *pa, const void *pb)
{
	const struct act_bucket *a = pa, *b = pb;
	int c;

	if (a->monday != b->monday)
		return a->monday < b->monday ? -1 : 1;
	if ((c = strcmp(a->name, b->name)) != 0)
		return c;
	return strcmp(a->user, b->user);
}

static int rep_order(const void *pa, const void *pb)
{
	const struct act_bucket *a = pa, *b = pb;
	int c = strcmp(a->name, b->name);

	return c ? c : strcmp(a->user, b->user);
}

static int set_week_row(struct rp_cell *row, const struct act_bucket *b, size_t first)
{
	size_t k;
	int error;

	if ((error = rp_set_text(row, first, b->user[0] ? b->name : NULL)) < 0 ||
	    (error = rp_set_text(row, first + 1, b->user[0] ? b->user : NULL)) < 0)
		return error;
	for (k = 0; k < 5; k++)
		rp_set_int(row, first + 2 + k, b->n[k]);
	return RL_OK;
}

int rp_activity(rl_store *s, const struct rp_filter *f, struct rp_result *r)
{
	static const char *const kinds[4] = { "visit", "call", "meeting", "email" };
	struct act_bucket *b = NULL, *reps = NULL;
	size_t nb = 0, cap = 0, nreps = 0, i, k;
	sqlite3_stmt *st, *nm;
	int rc, error;

	rp_table_init(&r->rows, activity_cols, sizeof(activity_cols) / sizeof(activity_cols[0]));
	rp_table_init(&r->totals, activity_total_cols,
		      sizeof(activity_total_cols) / sizeof(activity_total_cols[0]));
	if ((error = rl_store_prepare(s,
	     "SELECT x.user_id, substr(x.at, 1, 10), x.kind FROM activities x"
	     " WHERE" ACT_FILTER " ORDER BY x.user_id, x.at", &st)) < 0)
		return error;
	bind_filter(st, f, NULL);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *user = cli_col(st, 0), *kind = cli_col(st, 2);
		int64_t monday = week_monday(cli_col(st, 1));
		struct act_bucket *cur = nb ? &b[nb - 1] : NULL;

		if (monday < 0)
			continue;     /* not a stored UTC time: nothing to count it in */
		if (!cur || cur->monday != monday || strcmp(cur->user, user) != 0) {
			if (nb == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				struct act_bucket *nbk = realloc(b, ncap * sizeof(*nbk));
				if (!nbk) {
					error = rl_error_set(RL_ENOMEM, "out of memory");
					goto cleanup;
				}
				b = nbk;
				cap = ncap;
			}
			cur = &b[nb++];
			memset(cur, 0, sizeof(*cur));
			cur->monday = monday;
			snprintf(cur->user, sizeof(cur->user), "%s", user);
		}
		for (k = 0; k < 4; k++)
			if (strcmp(kind, kinds[k]) == 0)
				cur->n[k]++;
		cur->n[4]++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		error = rl_store_error(s, "reading the activities");
		goto cleanup;
	}
	/* Names: once per rep (buckets of one rep are together), and one
	 * total bucket per rep. */
	if (nb && !(reps = calloc(nb, sizeof(*reps)))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((error = rl_store_prepare(s, "SELECT " REP_NAME("?1"), &nm)) < 0)
		goto cleanup;
	for (i = 0; i < nb; i++) {
		if (i == 0 || strcmp(b[i].user, b[i - 1].user) != 0) {
			struct act_bucket *t = &reps[nreps++];
			if (b[i].user[0])
				sqlite3_bind_text(nm, 1, b[i].user, -1, SQLITE_STATIC);
			else
				sqlite3_bind_null(nm, 1);
			rc = sqlite3_step(nm);
			b[i].name = strdup(rc == SQLITE_ROW ? cli_col(nm, 0) : "");
			sqlite3_reset(nm);
			if (!b[i].name) {
				error = rl_error_set(RL_ENOMEM, "out of memory");
				goto cleanup;
			}
			b[i].owns_name = 1;
			snprintf(t->user, sizeof(t->user), "%s", b[i].user);
			t->name = b[i].name;
		} else {
			b[i].name = b[i - 1].name;
		}
		for (k = 0; k < 5; k++)
			reps[nreps - 1].n[k] += b[i].n[k];
	}
	if (nb)
		qsort(b, nb, sizeof(*b), bucket_order);
	if (nreps)
		qsort(reps, nreps, sizeof(*reps), rep_order);
	for (i = 0; i < nb; i++) {
		struct rp_cell *row = rp_row_add(&r->rows);
		char label[16], start[11];
		int64_t thu = b[i].monday + 3;
		int y, m, d, ty, tm, td;

		if (!row) {
			error = RL_ENOMEM;
			goto cleanup;
		}
		civil_from_days(b[i].monday, &y, &m, &d);
		civil_from_days(thu, &ty, &tm, &td);
		snprintf(start, sizeof(start), "%04d-%02d-%02d", y, m, d);
		snprintf(label, sizeof(label), "%04d-W%02d", ty,
			 (int)((thu - rl_days_from_civil(ty, 1, 1)) / 7 + 1));
		if ((error = rp_set_text(row, 0, label)) < 0 ||
		    (error = rp_set_text(row, 1, start)) < 0 ||
		    (error = set_week_row(row, &b[i], 2)) < 0)
			goto cleanup;
	}
	for (i = 0; i < nreps; i++) {
		struct rp_cell *row = rp_row_add(&r->totals);
		if (!row) {
			error = RL_ENOMEM;
			goto cleanup;
		}
		if ((error = set_week_row(row, &reps[i], 0)) < 0)
			goto cleanup;
	}
	error = RL_OK;
cleanup:
	for (i = 0; i < nb; i++)
		if (b[i].owns_name)
			free(b[i].name);
	free(b);
	free(reps);
	return error;
}

/* ---- conversion ----------------------------------------------------------------- */

static const struct rp_col conversion_cols[] = {
	{ "stage", RP_TEXT, 0, NULL, 0 },
	{ "kind", RP_TEXT, 0, NULL, 0 },
	{ "entered", RP_INT, 0, NULL, 0 },
	{ "advanced", RP_INT, 0, NULL, 0 },
	{ "conversion", RP_RATIO, 0, NULL, 0 },
	{ "stays_ended", RP_INT, 0, NULL, 0 },
	{ "avg_days", RP_REAL, 0, NULL, 0 },
};

struct conv_stage {
	char id[RL_ID_BUFSZ];
	char *name;
	char kind[8];
	int64_t position;
	int64_t entered, advanced, stays;
	double stay_seconds;
	long mark_entered, mark_advanced;  /* last deal (ordinal) counted */
};

/* One entry into a stage: which stage (index, -1 unknown) and when. */
struct conv_entry {
	int stage;
	int64_t at;
};

struct conv {
	struct conv_stage *stages;
	size_t nstages;
	struct conv_entry *entries;
	size_t nentries, cap;
	long deal;        /* ordinal of the deal being walked */
};

static int conv_stage_index(const struct conv *c, const char *id)
{
	size_t i;

	if (!id)
		return -1;
	for (i = 0; i < c->nstages; i++)
		if (strcmp(c->stages[i].id, id) == 0)
			return (int)i;
	return -1;   /* a deleted or unknown stage: its time is not counted */
}

static int conv_push(struct conv *c, int stage, const char *at)
{
	int64_t utc;
	int off;

	if (!at || rl_time_parse(&utc, &off, at, 0, 0) < 0)
		return RL_OK;     /* unreadable time: skip the entry rather than guess */
	if (c->nentries == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 16;
		struct conv_entry *ne = realloc(c->entries, ncap * sizeof(*ne));
		if (!ne)
			return rl_error_set(RL_ENOMEM, "out of memory");
		c->entries = ne;
		c->cap = ncap;
	}
	c->entries[c->nentries].stage = stage;
	c->entries[c->nentries].at = utc;
	c->nentries++;
	return RL_OK;
}

/*
 * One deal's history: each entry counts the deal once as having entered its
 * stage; the deal advanced from a stage when, at some later entry, it
 * reached a stage further down the pipeline (a higher position) that is not
 * a lost stage; a stay ends at the next entry.
 */
static void conv_walk(struct conv *c)
{
	int64_t best_later = INT64_MIN;
	size_t i;

	c->deal++;
	for (i = c->nentries; i-- > 0;) {
		const struct conv_entry *e = &c->entries[i];
		struct conv_stage *st;
		if (e->stage < 0)
			continue;
		st = &c->stages[e->stage];
		if (st->mark_entered != c->deal) {
			st->mark_entered = c->deal;
			st->entered++;
		}
		if (best_later > st->position && st->mark_advanced != c->deal) {
			st->mark_advanced = c->deal;
			st->advanced++;
		}
		if (i + 1 < c->nentries) {
			st->stays++;
			st->stay_seconds += (double)(c->entries[i + 1].at - e->at);
		}
		if (strcmp(st->kind, "lost") != 0 && st->position > best_later)
			best_later = st->position;
	}
	c->nentries = 0;
}

/*
 * Stage-to-stage conversion and time in stage from deal_stage_events, for
 * the deals created in the period (a cohort). Deals made before the history
 * existed, or imported, have no first event: they entered their first
 * known stage (the "from" of their first move, else the stage they are in)
 * when they were created.
 */
int rp_conversion(rl_store *s, const struct rp_filter *f, struct rp_result *r)
{
	struct conv c = { 0 };
	sqlite3_stmt *st;
	char deal[RL_ID_BUFSZ] = "";
	size_t i;
	int rc, error;

	rp_table_init(&r->rows, conversion_cols,
		      sizeof(conversion_cols) / sizeof(conversion_cols[0]));
	if ((error = rl_store_prepare(s, "SELECT id, name, position, kind FROM stages"
				      " WHERE deleted = 0 ORDER BY position, name", &st)) < 0)
		return error;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct conv_stage *ns = realloc(c.stages, (c.nstages + 1) * sizeof(*ns));
		if (!ns) {
			sqlite3_reset(st);
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto cleanup;
		}
		c.stages = ns;
		memset(&ns[c.nstages], 0, sizeof(*ns));
		snprintf(ns[c.nstages].id, RL_ID_BUFSZ, "%s", cli_col(st, 0));
		snprintf(ns[c.nstages].kind, sizeof(ns[c.nstages].kind), "%s", cli_col(st, 3));
		ns[c.nstages].position = sqlite3_column_int64(st, 2);
		if (!(ns[c.nstages].name = strdup(cli_col(st, 1)))) {
			sqlite3_reset(st);
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto cleanup;
		}
		c.nstages++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		error = rl_store_error(s, "reading the stages");
		goto cleanup;
	}
	if ((error = rl_store_prepare(s,
	     "SELECT d.id, d.created_at, d.stage_id, e.from_stage_id, e.to_stage_id, e.at"
	     " FROM deals d LEFT JOIN deal_stage_events e ON e.deal_id = d.id AND e.deleted = 0"
	     " WHERE" DEAL_FILTER " AND" IN_PERIOD("substr(d.created_at, 1, 10)")
	     " ORDER BY d.id, e.at, e.id", &st)) < 0)
		goto cleanup;
	bind_filter(st, f, NULL);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = cli_col(st, 0);
		if (strcmp(id, deal) != 0) {
			if (deal[0])
				conv_walk(&c);
			snprintf(deal, sizeof(deal), "%s", id);
			/* the first row of a deal: its entry at creation, unless the
			 * history starts with it (a first event without "from") */
			if (sqlite3_column_type(st, 4) == SQLITE_NULL)
				error = conv_push(&c, conv_stage_index(&c, cli_col(st, 2)),
						  cli_col(st, 1));
			else if (sqlite3_column_type(st, 3) != SQLITE_NULL)
				error = conv_push(&c, conv_stage_index(&c, cli_col(st, 3)),
						  cli_col(st, 1));
			if (error < 0)
				break;
		}
		if (sqlite3_column_type(st, 4) != SQLITE_NULL &&
		    (error = conv_push(&c, conv_stage_index(&c, cli_col(st, 4)),
				       cli_col(st, 5))) < 0)
			break;
	}
	sqlite3_reset(st);
	if (error < 0)
		goto cleanup;
	if (rc != SQLITE_DONE) {
		error = rl_store_error(s, "reading the stage history");
		goto cleanup;
	}
	if (deal[0])
		conv_walk(&c);
	for (i = 0; i < c.nstages; i++) {
		const struct conv_stage *cs = &c.stages[i];
		struct rp_cell *row = rp_row_add(&r->rows);
		if (!row) {
			error = RL_ENOMEM;
			goto cleanup;
		}
		if ((error = rp_set_text(row, 0, cs->name)) < 0 ||
		    (error = rp_set_text(row, 1, cs->kind)) < 0)
			goto cleanup;
		rp_set_int(row, 2, cs->entered);
		if (strcmp(cs->kind, "open") == 0) {
			rp_set_int(row, 3, cs->advanced);
			if (cs->entered)
				rp_set_ratio(row, 4, (double)cs->advanced / (double)cs->entered);
		}
		rp_set_int(row, 5, cs->stays);
		if (cs->stays)
			rp_set_real(row, 6, cs->stay_seconds / (double)cs->stays / 86400.0);
	}
	error = RL_OK;
cleanup:
	for (i = 0; i < c.nstages; i++)
		free(c.stages[i].name);
	free(c.stages);
	free(c.entries);
	return error;
}
