/*
 * report_cmd.c — the report commands both programs list (relasi/report.h,
 * rl_report_cmds): `relasi report ...` over whatever data a device holds (a
 * manager's device holds everyone's) and `relasi-hub report ...` over the
 * hub's store, with the same options, the same checks and the same output.
 * `report pipeline|forecast|winrate|conversion|velocity|stale|activity|html`:
 * this file reads and checks the options into a struct rp_filter, runs the
 * report (report_calc.c) and shows it (report_out.c) as a table, --json or
 * --csv; `report html FILE` writes several of them as one page
 * (report_html.c). Which store is read is the program's business: its
 * prepare hook opens ctx->store (every command here has needs_store set).
 *
 * Options are checked before anything is read; a bad value (a date that is
 * not one, --to before --from, a bad --days or --by, --csv with --json) is
 * a usage error (exit 2) naming the option and the value. --rep names a
 * user by id prefix or name (not found: exit 3, as everywhere).
 */
#include "relasi/report.h"

#include <stdlib.h>
#include <string.h>

#include "relasi/limits.h"
#include "relasi/valid.h"

/* --days is at most a century: a longer idle time means nothing, and the
 * bound keeps now - N days inside the years rl_time_* handle. */
#define REPORT_MAX_DAYS 36500

static int parse_day(const struct rp_filter *f, const char *opt, const char *in, char out[11])
{
	if (strlen(in) > 32 || rl_date_parse(out, in, f->now, 0) < 0)
		return rl_error_set(RL_EUSAGE, "--%s: '%.32s' is not a date (YYYY-MM-DD, today, "
				    "-30d)", opt, in);
	return RL_OK;
}

static int text_opt(const char *opt, const char *v)
{
	if (!*v || strlen(v) > RL_MAX_NAME_BYTES)
		return rl_error_set(RL_EUSAGE, "--%s: give a name of 1 to %d bytes", opt,
				    RL_MAX_NAME_BYTES);
	return RL_OK;
}

static int add_filter(json_t *filters, const char *key, const char *value)
{
	if (json_object_set_new(filters, key, json_string(value)) < 0)
		return rl_error_set(RL_ENOMEM, "out of memory");
	return RL_OK;
}

/*
 * --rep: a user by id prefix or name, removed users too when no active one
 * matches (rl_record_resolve_ex, RL_RESOLVE_REMOVED); else, on a store
 * not yet enrolled, whose own user has no users row, that user by the name
 * given to `relasi init` (rl_meta rep_name, any case) or a prefix of its id
 * (at least 4 digits): the rep every report already names so (REP_NAME in
 * report_calc.c), which --rep refused as "no user matches". Not found
 * either way: the resolver's RL_ENOTFOUND and message, unchanged.
 */
static int resolve_rep(rl_store *s, const char *ref, char id[RL_ID_BUFSZ])
{
	sqlite3_stmt *st;
	/* A removed user's records keep their owner, so --rep names one too,
	 * when no active user matches. */
	int rc, prep, error = rl_record_resolve_ex(s, rl_model_table("users"), ref,
						   RL_RESOLVE_REMOVED, id);

	if (error != RL_ENOTFOUND)
		return error;
	if ((prep = rl_store_prepare(s,
	     "SELECT u.value FROM rl_meta u JOIN rl_meta n ON n.key = 'rep_name'"
	     " WHERE u.key = 'user_id' AND NOT EXISTS (SELECT 1 FROM users x WHERE x.id = u.value)"
	     " AND (n.value = ?1 COLLATE NOCASE"
	     "  OR (length(?1) >= 4 AND substr(u.value, 1, length(?1)) = lower(?1)))", &st)) < 0)
		return prep;
	sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_TEXT &&
	    (size_t)sqlite3_column_bytes(st, 0) < RL_ID_BUFSZ) {
		snprintf(id, RL_ID_BUFSZ, "%s", (const char *)sqlite3_column_text(st, 0));
		error = RL_OK;
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		error = rl_store_error(s, "looking up --rep");
	}
	sqlite3_reset(st);
	return error;
}

/* Options -> filter (and its description in r->filters). */
static int read_options(struct cli_ctx *ctx, struct cli_args *a, struct rp_filter *f,
			struct rp_result *r, enum rp_format *fmt)
{
	const char *rep = cli_get(a, "rep"), *from = cli_get(a, "from"), *to = cli_get(a, "to");
	const char *days = cli_get(a, "days"), *by = cli_get(a, "by");
	int error;

	f->now = rl_store_now_ms(ctx->store) / 1000;
	rl_time_format_utc(f->now_iso, f->now);
	rl_date_of(f->today, f->now, 0);
	snprintf(r->as_of, sizeof(r->as_of), "%s", f->now_iso);
	if (!(r->filters = json_object()))
		return rl_error_set(RL_ENOMEM, "out of memory");

	*fmt = ctx->json ? RP_FMT_JSON : RP_FMT_TEXT;
	if (cli_get(a, "csv")) {
		if (ctx->json)
			return rl_error_set(RL_EUSAGE, "--csv and --json: choose one output");
		*fmt = RP_FMT_CSV;
	}
	if (from && (error = parse_day(f, "from", from, f->from)) < 0)
		return error;
	if (to && (error = parse_day(f, "to", to, f->to)) < 0)
		return error;
	if (from && to && strcmp(f->from, f->to) > 0)
		return rl_error_set(RL_EUSAGE, "--to %s is before --from %s", f->to, f->from);
	if ((f->team = cli_get(a, "team")) && (error = text_opt("team", f->team)) < 0)
		return error;
	if ((f->region = cli_get(a, "region")) && (error = text_opt("region", f->region)) < 0)
		return error;
	f->days = 14;
	if (days) {
		char *end;
		long n = strtol(days, &end, 10);
		if (end == days || *end || n < 0 || n > REPORT_MAX_DAYS)
			return rl_error_set(RL_EUSAGE, "--days: '%.32s' is not a number of days "
					    "0..%d", days, REPORT_MAX_DAYS);
		f->days = n;
	}
	f->by = "rep";
	if (by) {
		static const char *const dims[] = { "rep", "line", "team", "region", "month", NULL };
		int i;
		for (i = 0; dims[i] && strcmp(dims[i], by) != 0; i++)
			;
		if (!dims[i])
			return rl_error_set(RL_EUSAGE, "--by: '%.32s' is not one of rep, line, team, "
					    "region, month", by);
		f->by = dims[i];
	}
	if (rep && (error = resolve_rep(ctx->store, rep, f->rep)) < 0)
		return error;

	/* What applied, as given (a rep by the name people know). */
	if ((rep && (error = add_filter(r->filters, "rep", rep)) < 0) ||
	    (f->team && (error = add_filter(r->filters, "team", f->team)) < 0) ||
	    (f->region && (error = add_filter(r->filters, "region", f->region)) < 0) ||
	    (from && (error = add_filter(r->filters, "from", f->from)) < 0) ||
	    (to && (error = add_filter(r->filters, "to", f->to)) < 0))
		return error;
	if (cli_get(a, "by") || strcmp(r->name, "winrate") == 0)
		if ((error = add_filter(r->filters, "by", f->by)) < 0)
			return error;
	if (strcmp(r->name, "stale") == 0 &&
	    json_object_set_new(r->filters, "days", json_integer(f->days)) < 0)
		return rl_error_set(RL_ENOMEM, "out of memory");
	return RL_OK;
}

struct report_kind {
	const char *name;
	int (*run)(rl_store *s, const struct rp_filter *f, struct rp_result *r);
};

static const struct report_kind kinds[] = {
	{ "pipeline", rp_pipeline }, { "forecast", rp_forecast }, { "winrate", rp_winrate },
	{ "conversion", rp_conversion }, { "velocity", rp_velocity }, { "stale", rp_stale },
	{ "activity", rp_activity }, { NULL, NULL }
};

int rl_report_cmd_run(struct cli_ctx *ctx, struct cli_args *a)
{
	/* "report NAME", or a program's alias "NAME" (relasi-hub pipeline) */
	const char *name = strncmp(a->cmd->name, "report ", 7) == 0 ? a->cmd->name + 7
								       : a->cmd->name;
	struct rp_result r = { 0 };
	struct rp_filter f = { 0 };
	enum rp_format fmt = RP_FMT_TEXT;
	int i, error;

	for (i = 0; kinds[i].name && strcmp(kinds[i].name, name) != 0; i++)
		;
	if (!kinds[i].name)
		return rl_error_set(RL_ERROR, "no report '%s'", name);
	r.name = kinds[i].name;
	if ((error = read_options(ctx, a, &f, &r, &fmt)) < 0 ||
	    (error = kinds[i].run(ctx->store, &f, &r)) < 0 ||
	    (error = rp_emit(ctx, &r, fmt)) < 0)
		goto cleanup;
cleanup:
	rp_result_free(&r);
	return error;
}

/* Longer than any path a file system takes (PATH_MAX is 4096 on Linux):
 * a longer FILE is a mistake, refused before anything is computed. */
#define REPORT_MAX_PATH 4096

static int cmd_report_html(struct cli_ctx *ctx, struct cli_args *a)
{
	const char *path = a->pos[0];
	struct rp_result r = { 0 };
	struct rp_filter f = { 0 };
	enum rp_format fmt = RP_FMT_TEXT;
	long bytes = 0;
	int error;

	r.name = "html";
	if (!*path || strlen(path) > REPORT_MAX_PATH) {
		error = rl_error_set(RL_EUSAGE, "FILE: give a path of 1 to %d bytes",
				     REPORT_MAX_PATH);
		goto cleanup;
	}
	/* The summary line is what goes to standard output, not the page. */
	if (strcmp(path, "-") == 0) {
		error = rl_error_set(RL_EUSAGE, "FILE: give a file name ('-', standard output, "
				     "is not one for a page)");
		goto cleanup;
	}
	if ((error = read_options(ctx, a, &f, &r, &fmt)) < 0)
		goto cleanup;
	/* The RFM and tier sections end at --to, else today (`segment rfm`
	 * and `tiers` as docs/reports.md says); a --from after today with no
	 * --to gives them no window at all: the same usage error `segment rfm
	 * --from` gives, naming the option, instead of failing half-way
	 * with "a run of 0 months". */
	if (f.from[0] && !f.to[0] && strcmp(f.from, f.today) > 0) {
		error = rl_error_set(RL_EUSAGE, "--from %s is after today (%s): the RFM and tier "
				     "sections end at --to, else today; give --to too", f.from,
				     f.today);
		goto cleanup;
	}
	if ((error = rp_html_write(ctx->store, &f, &r, path, &bytes)) < 0)
		goto cleanup;
	if (fmt == RP_FMT_JSON)
		error = cli_print_json(json_pack("{s:s, s:s, s:O, s:s, s:I}", "report", "html",
						 "as_of", r.as_of, "filters", r.filters, "file",
						 path, "bytes", (json_int_t)bytes));
	else
		printf("wrote %s (%ld bytes): pipeline, forecast, win rate, activity, RFM and tiers "
		       "as of %s "
		       "(UTC)\n", path, bytes, r.as_of);
cleanup:
	rp_result_free(&r);
	return error;
}

#define FILTER_OPTS \
	{ "rep", 1, "USER", "only this rep's deals (id prefix or name)", NULL }, \
	{ "team", 1, "TEAM", "only deals of reps in this team", NULL }, \
	{ "region", 1, "REGION", "only customers in this region", NULL }
#define PERIOD_OPTS(what) \
	{ "from", 1, "DATE", what " on or after DATE (UTC; YYYY-MM-DD, today, -30d)", NULL }, \
	{ "to", 1, "DATE", what " on or before DATE", NULL }
#define CSV_OPT { "csv", 0, NULL, "CSV (RFC 4180) instead of a table", NULL }
#define END_OPT { NULL, 0, NULL, NULL, NULL }

const struct cli_opt rl_report_pipeline_opts[] = {
	FILTER_OPTS, PERIOD_OPTS("deals created or expected to close"), CSV_OPT, END_OPT
};
static const struct cli_opt forecast_opts[] = {
	FILTER_OPTS, PERIOD_OPTS("open deals expected to close, deals won"), CSV_OPT, END_OPT
};
static const struct cli_opt winrate_opts[] = {
	FILTER_OPTS, PERIOD_OPTS("deals closed"),
	{ "by", 1, "WHAT", "rep (default), line, team, region or month", NULL },
	CSV_OPT, END_OPT
};
static const struct cli_opt conversion_opts[] = {
	FILTER_OPTS, PERIOD_OPTS("deals created"), CSV_OPT, END_OPT
};
static const struct cli_opt velocity_opts[] = {
	FILTER_OPTS, PERIOD_OPTS("win rate, deal size and cycle of deals closed"), CSV_OPT, END_OPT
};
static const struct cli_opt stale_opts[] = {
	FILTER_OPTS,
	{ "days", 1, "N", "idle for at least N days (default 14)", NULL },
	CSV_OPT, END_OPT
};
static const struct cli_opt activity_opts[] = {
	FILTER_OPTS, PERIOD_OPTS("activities"), CSV_OPT, END_OPT
};
static const struct cli_opt html_opts[] = {
	FILTER_OPTS, PERIOD_OPTS("what each chart counts (as its own report does)"), END_OPT
};

#define REPORT(name, summary, opts) \
	{ "report " name, rl_report_cmd_run, "[OPTIONS]", summary, opts, NULL, CLI_MODEL_NONE, 0, 0, 1 }

const struct cli_cmd rl_report_cmds[] = {
	REPORT("pipeline", "per stage: deals, amount and weighted amount",
	       rl_report_pipeline_opts),
	REPORT("forecast", "weighted and best-case amounts by month, with what is won",
	       forecast_opts),
	REPORT("winrate", "won / (won + lost) by rep, line, team, region or month",
	       winrate_opts),
	REPORT("conversion", "stage-to-stage conversion and average days in each stage",
	       conversion_opts),
	REPORT("velocity", "open deals x deal size x win rate / cycle length, and its parts",
	       velocity_opts),
	REPORT("stale", "open deals idle for N days or past their expected close", stale_opts),
	REPORT("activity", "visits, calls, meetings and e-mails per rep per ISO week",
	       activity_opts),
	{ "report html", cmd_report_html, "FILE [OPTIONS]",
	  "one self-contained HTML page: funnel, forecast, win rate, activity, RFM, tiers",
	  html_opts, NULL, CLI_MODEL_NONE, 1, 1, 1 },
	{ NULL, NULL, NULL, NULL, NULL, NULL, CLI_MODEL_NONE, 0, 0, 0 }
};
