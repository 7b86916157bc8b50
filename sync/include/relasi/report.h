/*
 * relasi/report.h — the pipeline reports, shared by both binaries: `relasi
 * report ...` over a device's store and `relasi-hub report ...` over the
 * hub's (which holds the same data model tables). The engine lives in
 * librelasi-sync (layout (a) of issue 6) rather than a library of its own:
 * it needs only what sync/ already holds — the store, the data model, the
 * command framework (relasi/cli.h), the CSV writer — and nothing of the
 * client's, so moving it here drags nothing client-only into sync/.
 *
 *   sync/src/report_calc.c  the figures
 *   sync/src/report_out.c   result tables; terminal table, --json, --csv
 *   sync/src/report_html.c  the manager's HTML page (report html FILE)
 *   sync/src/report_cmd.c   the commands: options -> filter -> report ->
 *                           output, one table both programs list
 *   sync/src/rfm.c, tiers.c marketing figures the HTML page draws
 *                           (relasi/marketing.h)
 *
 * A report is computed into typed result tables (rp_table): its rows and,
 * for some reports, a few total rows. The same tables are then shown as an
 * aligned terminal table, as JSON or as RFC 4180 CSV, so the three formats
 * can never disagree on a figure.
 *
 * Conventions every report follows (docs/reports.md, "Pipeline reports"):
 *  - Money is an integer in minor units beside its ISO 4217 currency column.
 *    Amounts in different currencies are never added: money rows are grouped
 *    by currency (a currency is one more grouping key), never converted.
 *  - Times are UTC; "today" and "now" come from the store's clock
 *    (rl_store_now_ms: RELASI_NOW when set). Dates compared with --from/--to
 *    are the UTC dates of the instants.
 *  - Ratios are fractions 0..1 rounded to 4 decimals (a terminal shows them as
 *    percentages); day counts are rounded to 2 decimals.
 *  - Reports only read: every statement is a prepared SELECT, so they run
 *    on a store opened RL_STORE_READONLY (the hub opens its store so).
 *
 * Errors: functions return RL_OK or a negative RL_E* code with the message
 * set (relasi/error.h): RL_ENOMEM, RL_ESTORE (reading the store failed),
 * RL_EUSAGE (a bad option, named with its value), RL_ENOTFOUND /
 * RL_EAMBIGUOUS (--rep), RL_EIO (report html: the file).
 */
#ifndef RELASI_REPORT_H
#define RELASI_REPORT_H

#include <stdint.h>

#include "relasi/cli.h"

enum rp_type {
	RP_TEXT,   /* UTF-8 text */
	RP_INT,    /* a count or a whole number */
	RP_MONEY,  /* minor units; cols[].cur names the currency column */
	RP_RATIO,  /* 0..1, shown as a percentage */
	RP_REAL    /* days and other measures with decimals */
};

struct rp_col {
	const char *name;   /* JSON key and CSV header: "weighted" */
	enum rp_type type;
	int cur;            /* RP_MONEY: index of the currency column */
	const char *id_table; /* RP_TEXT holding a record id: a terminal shows
	                       * its short prefix (JSON and CSV the whole id) */
	int hide;           /* 1: left out of the terminal table only */
};

struct rp_cell {
	int null;
	int64_t i;          /* RP_INT, RP_MONEY */
	double d;           /* RP_RATIO, RP_REAL */
	char *s;            /* RP_TEXT (owned) */
};

struct rp_table {
	const struct rp_col *cols;
	size_t ncols;
	size_t nrows, cap;
	struct rp_cell *cells;  /* nrows * ncols */
};

/* A computed report: its name (static text), the instant it was computed
 * for, the filters that applied (JSON object, owned), its rows and totals.
 * Zero it before use; rp_result_free releases what it owns. */
struct rp_result {
	const char *name;
	char as_of[21];
	json_t *filters;
	struct rp_table rows;
	struct rp_table totals;  /* ncols 0: the report has no totals */
};

/* What a report is asked for. Unset filters are NULL / "". team and region
 * point into the caller's strings (the command line), which must outlive
 * the report. */
struct rp_filter {
	char rep[RL_ID_BUFSZ];  /* deal owner / activity author (users.id) */
	const char *team;       /* the owner's users.team, any case */
	const char *region;     /* the customer's accounts.region, any case */
	char from[11], to[11];  /* period, inclusive UTC dates */
	long days;              /* stale: idle for at least this many days */
	const char *by;         /* winrate: rep, line, team, region or month */
	int64_t now;            /* the store's clock, Unix seconds */
	char now_iso[21];       /* the same as "YYYY-MM-DDTHH:MM:SSZ" */
	char today[11];         /* its UTC date */
};

enum rp_format { RP_FMT_TEXT, RP_FMT_JSON, RP_FMT_CSV };

/* ---- tables (report_out.c) ---- */

/* cols is borrowed (static tables): it must outlive t. */
void rp_table_init(struct rp_table *t, const struct rp_col *cols, size_t ncols);
void rp_table_free(struct rp_table *t);
/* Append a row of NULL cells; returns it (owned by t, valid until the next
 * rp_row_add), or NULL (RL_ENOMEM set). */
struct rp_cell *rp_row_add(struct rp_table *t);
/* Setters for one cell of a row from rp_row_add. */
int rp_set_text(struct rp_cell *row, size_t col, const char *s);  /* copies s; NULL s: NULL */
void rp_set_int(struct rp_cell *row, size_t col, int64_t v);
void rp_set_real(struct rp_cell *row, size_t col, double v);   /* RP_REAL: 2 decimals */
void rp_set_ratio(struct rp_cell *row, size_t col, double v);  /* 4 decimals */
/* From a result column: NULL stays NULL; text, integer or real as the
 * table's column type says. */
int rp_set_column(struct rp_cell *row, size_t col, const struct rp_table *t,
		  sqlite3_stmt *st, int i);

/* *acc += v, or RL_ETOOBIG ("WHAT: the CURRENCY total does not fit ...")
 * when the sum leaves int64, leaving *acc as it was. Every sum of money done
 * in C (forecast totals, RFM, tiers, campaigns) goes through it: each amount
 * is bounded (RL_MAX_MONEY_MINOR), but a sum of more than 9,223 amounts at
 * that bound, or of amounts stored before the bound existed, is not, and a
 * signed overflow would be undefined behaviour, not a wrong number. */
int rp_money_add(int64_t *acc, int64_t v, const char *what, const char *currency);

/* The error of a statement that sums money in SQL: SQLite's sum() stops
 * with "integer overflow" where rp_money_add would, and that becomes the
 * same RL_ETOOBIG (exit 5, saying why); anything else is rl_store_error. */
int rp_sum_error(rl_store *s, const char *doing);

/* Free what r owns (filters, tables); r itself is the caller's. */
void rp_result_free(struct rp_result *r);

/* Show r on stdout in the format asked for (ctx->store names ids by their
 * short prefix in a terminal table). */
int rp_emit(struct cli_ctx *ctx, const struct rp_result *r, enum rp_format fmt);

/* ---- the reports (report_calc.c) ----
 * Each fills r->rows (and r->totals where it has them) from the store. */
int rp_pipeline(rl_store *s, const struct rp_filter *f, struct rp_result *r);
int rp_forecast(rl_store *s, const struct rp_filter *f, struct rp_result *r);
int rp_winrate(rl_store *s, const struct rp_filter *f, struct rp_result *r);
int rp_conversion(rl_store *s, const struct rp_filter *f, struct rp_result *r);
int rp_velocity(rl_store *s, const struct rp_filter *f, struct rp_result *r);
int rp_stale(rl_store *s, const struct rp_filter *f, struct rp_result *r);
int rp_activity(rl_store *s, const struct rp_filter *f, struct rp_result *r);

/* ---- the HTML report (report_html.c) ----
 * Write the manager's page for f to path: its charts run the reports above
 * with f; info gives the as_of and the filters as given. The page is
 * written beside path and renamed onto it when whole; *bytes is its size. */
int rp_html_write(rl_store *s, const struct rp_filter *f, const struct rp_result *info,
		  const char *path, long *bytes);

/* ---- the commands (report_cmd.c) ----
 *
 * `report pipeline|forecast|winrate|conversion|velocity|stale|activity|html`
 * with their options, as one command table (NULL-terminated) that both
 * programs list: the commands take identical options and give identical
 * output. Each entry has needs_store set: the program's prepare hook opens
 * the store before the command runs (relasi: the device's store; relasi-hub:
 * hub.db, RL_STORE_READONLY). Options are checked before anything is read;
 * a bad value is RL_EUSAGE naming the option and the value. */
extern const struct cli_cmd rl_report_cmds[];

/* The options of `report pipeline`, for a program's alias of it (relasi-hub
 * pipeline); terminated by { NULL }. */
extern const struct cli_opt rl_report_pipeline_opts[];

/* A cli_cmd handler that runs the report the command is named after: "report
 * NAME" or, for an alias, "NAME" (one of the seven above). */
int rl_report_cmd_run(struct cli_ctx *ctx, struct cli_args *a);

/* When a deal closed, as SQL over deals d: its close time, else its
 * expected close, else its creation (imported deals carry only the
 * expected date); RP_CLOSED_DAY is its UTC day. Shared by the pipeline
 * reports, RFM and tiers, so that they count a deal in the same period. */
/* A deal's weighted amount in minor units: amount x p / 100 rounded half
 * up, p its own probability else its stage's (s). SQLite's integer division
 * truncates toward zero, which rounds a negative amount's .5 down and
 * even an exact -5.00 to -4: the floor of (x + 50) / 100 is taken instead.
 * `relasi pipeline` and the reports share it, so they agree. */
#define RP_WEIGHTED_OF(x) "(((" x ") + 50) - (((" x ") + 50) % 100 + 100) % 100) / 100"
#define RP_WEIGHTED RP_WEIGHTED_OF("d.amount * coalesce(d.probability, s.probability)")

/* A record whose customer is deleted counts in no figure (docs/reports.md,
 * "Records of a deleted customer"): deal and visit reports leave it out,
 * as RFM and tiers always did (they join live customers). It can still
 * exist: another device made it offline for the customer and the hub took
 * it. A customer this store does not hold is not known deleted: kept.
 * x is the row's alias ("d", "x"); the subquery is a primary-key lookup. */
#define RP_CUSTOMER_LIVE(x) " NOT EXISTS (SELECT 1 FROM accounts gone WHERE gone.id = " x \
	".account_id AND gone.deleted = 1)"

/* ...while lists show it, its customer marked, so that it can be found
 * and settled (moved to another customer, or deleted): the customer's name
 * as a list shows it; a is the accounts row's alias. */
#define RP_CUSTOMER_NAME(a) "CASE WHEN " a ".deleted = 1 THEN " a ".name || ' (deleted)'" \
	" ELSE " a ".name END"

#define RP_CLOSED_TIME "coalesce(d.closed_at, d.expected_close || 'T00:00:00Z', d.created_at)"
#define RP_CLOSED_DAY "substr(" RP_CLOSED_TIME ", 1, 10)"

#endif
