/*
 * report_html.c — `relasi report html FILE` and `relasi-hub report html
 * FILE`: the sales manager's report as one self-contained HTML page
 * (relasi/report.h, rp_html_write). In librelasi-sync with the reports it
 * draws, so the hub writes the same page from its store.
 *
 * The page holds no script, loads nothing (no fonts, images or style
 * sheets from anywhere: the CSS is inline and the charts are inline SVG),
 * so it opens offline, in a mail client or a phone's browser alike.
 *
 * Every figure comes from the reports' own computations (report_calc.c):
 * each section runs one report with the same filters `relasi report NAME`
 * takes and draws its result table; nothing here adds up or divides a
 * figure of its own. The marketing sections call marketing's computations
 * the same way (relasi/marketing.h): the RFM grid runs mk_rfm_compute and
 * mk_rfm_summary as `relasi segment rfm` does, the tier chart runs
 * mk_tiers_count_months, one pass for every month, with the counts
 * `relasi tiers --month M` gives for each; the grid's cells only group the accounts' scores that
 * `segment rfm --accounts` lists, by R and FM = (F + M + 1) / 2, the
 * pair the segment is named from. Each chart also carries its figures for machines and
 * screen readers: bars hold data-* attributes (data-value in minor units,
 * ratios as fractions, exactly as --json writes them) and each section ends
 * with the report's rows and totals as <table>s (cells with data-key and
 * data-value), which tests/cli/test_report_html.py compares with --json.
 *
 * All text that comes from the store or the command line (stage, rep,
 * currency, filter values) goes through html_text, which escapes the five
 * HTML-significant characters, in element content and attributes alike.
 *
 * The file is written to a temporary name beside FILE and renamed over it
 * once complete (relasi/outfile.h), so a reader never sees half a report
 * and a failure leaves whatever FILE held before.
 */
#include "relasi/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relasi/outfile.h"
#include "relasi/valid.h"

#include "relasi/marketing.h"

/* Chart geometry, in SVG user units. The width is chosen for a phone: a
 * 460-unit chart fills about 350 CSS pixels of a 390-pixel phone at 0.76
 * scale (12-unit text stays above 9 px) and half a laptop window at ~1.2. */
#define CHART_W 460
/* Activity weeks without any activity between two that have some are
 * drawn as empty rows, unless the gap would add more rows than this (two
 * years): a stray activity dated years back must not draw a thousand rows. */
#define MAX_WEEK_ROWS 104
/* The RFM window when the page is given no --from: `relasi segment rfm`'s
 * default (--months 12 ending with --to, else today). */
#define RFM_MONTHS 12
/* Tier months drawn: the six ending with --to's month (else this one), the
 * same span a tier looks back over; with --from, from its month, at most
 * two years (each month is one pass over the accounts). */
#define TIER_MONTHS 6
#define MAX_TIER_MONTHS 24

/* ---- writing ------------------------------------------------------------------ */

/* Text into element content or a quoted attribute value. */
static void html_text(FILE *o, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", o); break;
		case '<': fputs("&lt;", o); break;
		case '>': fputs("&gt;", o); break;
		case '"': fputs("&quot;", o); break;
		case '\'': fputs("&#39;", o); break;
		default: fputc(*s, o); break;
		}
	}
}

/* name="value" (escaped), with a leading space; nothing when v is NULL. */
static void attr(FILE *o, const char *name, const char *v)
{
	if (!v)
		return;
	fprintf(o, " %s=\"", name);
	html_text(o, v);
	fputc('"', o);
}

static void attr_int(FILE *o, const char *name, int64_t v)
{
	fprintf(o, " %s=\"%lld\"", name, (long long)v);
}

/* Money as the CLI shows it: major units with the currency's decimals
 * (rl_money_format); an unknown currency shows the minor units as they are. */
static const char *money(char buf[64], int64_t v, const char *cur)
{
	if (!cur || rl_money_format(buf, 64, v, cur) < 0)
		snprintf(buf, 64, "%lld", (long long)v);
	return buf;
}

/* ---- reading result tables ------------------------------------------------------ */

static int col_of(const struct rp_table *t, const char *name)
{
	size_t c;

	for (c = 0; c < t->ncols; c++)
		if (strcmp(t->cols[c].name, name) == 0)
			return (int)c;
	return -1;
}

static const struct rp_cell *cell(const struct rp_table *t, size_t row, const char *name)
{
	static const struct rp_cell null_cell = { 1, 0, 0.0, NULL };
	int c = col_of(t, name);

	return c < 0 ? &null_cell : &t->cells[row * t->ncols + (size_t)c];
}

static const char *cell_s(const struct rp_table *t, size_t row, const char *name)
{
	const struct rp_cell *x = cell(t, row, name);
	return x->null ? NULL : x->s;
}

static int64_t cell_i(const struct rp_table *t, size_t row, const char *name)
{
	const struct rp_cell *x = cell(t, row, name);
	return x->null ? 0 : x->i;
}

static int same(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* The distinct values of a text column, in order of first appearance
 * (NULL included once). Returns the count; *out is owned by the caller. */
static int distinct(const struct rp_table *t, const char *name, const char ***out, size_t *n)
{
	const char **v = calloc(t->nrows ? t->nrows : 1, sizeof(*v));
	size_t r, k;

	*n = 0;
	*out = v;
	if (!v)
		return rl_error_set(RL_ENOMEM, "out of memory");
	for (r = 0; r < t->nrows; r++) {
		const char *s = cell_s(t, r, name);
		for (k = 0; k < *n && !same(v[k], s); k++)
			;
		if (k == *n)
			v[(*n)++] = s;
	}
	return RL_OK;
}

/* ---- the figure tables ----------------------------------------------------------- */

/* One result table as an HTML table: a column per result column (headers
 * and data-key as in the JSON), each cell's value in data-value exactly as
 * --json has it (minor units, fractions) and shown as the terminal does. */
static void figures_table(FILE *o, const char *report, const char *part, const char *caption,
			  const struct rp_table *t)
{
	size_t r, c;
	char buf[64];

	fprintf(o, "<div class=\"scroll\"><table class=\"figures\"");
	attr(o, "data-report", report);
	attr(o, "data-part", part);
	fprintf(o, "><caption>");
	html_text(o, caption);
	fprintf(o, "</caption>\n<thead><tr>");
	for (c = 0; c < t->ncols; c++) {
		const char *p;
		fprintf(o, "<th scope=\"col\"");
		attr(o, "data-key", t->cols[c].name);
		if (t->cols[c].hide)
			fprintf(o, " class=\"hide\"");
		fputc('>', o);
		for (p = t->cols[c].name; *p; p++)
			fputc(*p == '_' ? ' ' : *p, o);
		fprintf(o, "</th>");
	}
	fprintf(o, "</tr></thead>\n<tbody>\n");
	for (r = 0; r < t->nrows; r++) {
		const struct rp_cell *row = &t->cells[r * t->ncols];
		fprintf(o, "<tr>");
		for (c = 0; c < t->ncols; c++) {
			const struct rp_cell *x = &row[c];
			const char *shown = "";
			enum rp_type type = t->cols[c].type;

			fprintf(o, "<td");
			attr(o, "data-key", t->cols[c].name);
			if (t->cols[c].hide)
				fprintf(o, " class=\"hide\"");
			else if (type != RP_TEXT)
				fprintf(o, " class=\"num\"");
			if (x->null) {
				fprintf(o, " data-null=\"1\"></td>");
				continue;
			}
			switch (type) {
			case RP_TEXT:
				attr(o, "data-value", x->s);
				shown = x->s;
				break;
			case RP_INT:
				attr_int(o, "data-value", x->i);
				snprintf(buf, sizeof(buf), "%lld", (long long)x->i);
				shown = buf;
				break;
			case RP_MONEY:
				attr_int(o, "data-value", x->i);
				shown = money(buf, x->i, row[t->cols[c].cur].null ? NULL :
					      row[t->cols[c].cur].s);
				break;
			case RP_RATIO:
				/* %.15g: the value rounded to 4 decimals, as JSON and CSV */
				fprintf(o, " data-value=\"%.15g\"", x->d);
				snprintf(buf, sizeof(buf), "%.1f%%", x->d * 100.0);
				shown = buf;
				break;
			case RP_REAL:
				fprintf(o, " data-value=\"%.15g\"", x->d);
				snprintf(buf, sizeof(buf), "%.1f", x->d);
				shown = buf;
				break;
			}
			fputc('>', o);
			html_text(o, shown);
			fprintf(o, "</td>");
		}
		fprintf(o, "</tr>\n");
	}
	fprintf(o, "</tbody></table></div>\n");
}

/* ---- SVG pieces ------------------------------------------------------------------ */

static void svg_open(FILE *o, const char *report, const char *currency, double w, double h,
		     const char *label)
{
	fprintf(o, "<svg class=\"chart\" viewBox=\"0 0 %.0f "
		"%.0f\" style=\"max-width:%.0fpx\" role=\"img\"", w, h, w * 1.4);
	attr(o, "data-report", report);
	attr(o, "data-currency", currency);
	attr(o, "aria-label", label);
	fprintf(o, ">\n");
}

/* A label at (x, y): anchored at its end when end is set. */
static void svg_label(FILE *o, double x, double y, const char *cls, int end, const char *s)
{
	fprintf(o, "<text x=\"%.1f\" y=\"%.1f\"", x, y);
	attr(o, "class", cls);
	if (end)
		fprintf(o, " text-anchor=\"end\"");
	fputc('>', o);
	html_text(o, s);
	fprintf(o, "</text>");
}

/*
 * A horizontal bar from x, span units long at full scale, filled to frac
 * (clamped to 0..1), with its label after the bar, or inside it when the
 * bar is long enough that the label would run out of the chart. The caller
 * has opened a <g> carrying the bar's data-* attributes; this closes it.
 */
static void hbar(FILE *o, double x, double y, double span, double h, double frac,
		 const char *cls, const char *label, const char *tip)
{
	double w;
	int inside;

	if (!(frac > 0.0))
		frac = 0.0;   /* also NaN: no bar */
	if (frac > 1.0)
		frac = 1.0;
	w = span * frac;
	/* labels are short numbers: about 6.5 units per character at 11
	 * units, 7.2 at the 12.5 a phone gets */
	inside = x + w + 6 + 7.2 * (double)strlen(label) > x + span + 4 && w > 7.2 *
		 (double)strlen(label) + 8;
	fprintf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"", x, y, w, h);
	attr(o, "class", cls);
	fprintf(o, "><title>");
	html_text(o, tip);
	fprintf(o, "</title></rect>");
	/* white reads on the dark bars, ink on the light ones */
	svg_label(o, inside ? x + w - 4 : x + w + 4, y + h / 2 + 4,
		  inside && strcmp(cls, "amount") != 0 && strcmp(cls, "best_case") != 0 ? "v in" :
		  "v", inside, label);
	fprintf(o, "</g>\n");
}

static void legend(FILE *o, const char *const *keys, const char *const *names)
{
	size_t i;

	fprintf(o, "<p class=\"legend\">");
	for (i = 0; keys[i]; i++)
		fprintf(o, "<span class=\"k-%s\">%s</span> ", keys[i], names[i]);
	fprintf(o, "</p>\n");
}

static void nothing(FILE *o)
{
	fprintf(o, "<p class=\"empty\">Nothing to show for this selection.</p>\n");
}

/* ---- the charts ------------------------------------------------------------------ */

/*
 * Funnel by stage: one chart per currency (amounts are never added across
 * currencies), every stage in pipeline order; a bar of the deal count and
 * bars of the amount and the weighted amount. A stage with no deal in that
 * currency has no row in the report and is drawn empty (data-value 0).
 */
static int draw_funnel(FILE *o, const struct rp_result *res)
{
	static const char *const keys[] = { "deals", "amount", "weighted", NULL };
	static const char *const names[] = { "deals", "amount", "weighted amount", NULL };
	const struct rp_table *t = &res->rows;
	const char **curs = NULL, **stages = NULL;
	size_t ncur, nst, c, s, r;
	int error;

	if ((error = distinct(t, "currency", &curs, &ncur)) < 0 ||
	    (error = distinct(t, "stage", &stages, &nst)) < 0)
		goto cleanup;
	legend(o, keys, names);
	for (c = 0; c < ncur; c++) {
		int64_t max_n = 0, max_amt = 0;
		double rowh = 44, top = 22, h;
		if (!curs[c])
			continue;   /* the stages' rows with no deal at all */
		for (r = 0; r < t->nrows; r++) {
			if (!same(cell_s(t, r, "currency"), curs[c]))
				continue;
			if (cell_i(t, r, "deals") > max_n)
				max_n = cell_i(t, r, "deals");
			if (cell_i(t, r, "amount") > max_amt)
				max_amt = cell_i(t, r, "amount");
		}
		h = top + rowh * (double)nst + 4;
		fprintf(o, "<h3>");
		html_text(o, curs[c]);
		fprintf(o, "</h3>\n");
		svg_open(o, "pipeline", curs[c], CHART_W, h, "deals and amounts per stage");
		svg_label(o, 96, 13, "head", 0, "deals");
		fprintf(o, "<text x=\"186\" y=\"13\" class=\"head\">amount / weighted (");
		html_text(o, curs[c]);
		fprintf(o, ")</text>\n");
		for (s = 0; s < nst; s++) {
			int64_t n = 0, amt = 0, w = 0;
			double y = top + rowh * (double)s;
			char a[64], b[64], tip[160];
			for (r = 0; r < t->nrows; r++)
				if (same(cell_s(t, r, "stage"), stages[s]) &&
				    same(cell_s(t, r, "currency"), curs[c])) {
					n = cell_i(t, r, "deals");
					amt = cell_i(t, r, "amount");
					w = cell_i(t, r, "weighted");
					break;
				}
			fprintf(o, "<line class=\"grid\" x1=\"0\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>",
				CHART_W, y + rowh - 2, y + rowh - 2);
			svg_label(o, 90, y + 22, "lbl", 1, stages[s] ? stages[s] : "");
			snprintf(a, sizeof(a), "%lld", (long long)n);
			snprintf(tip, sizeof(tip), "%lld deals", (long long)n);
			fprintf(o, "<g data-series=\"deals\"");
			attr(o, "data-stage", stages[s]);
			attr(o, "data-currency", curs[c]);
			attr_int(o, "data-value", n);
			fputc('>', o);
			hbar(o, 96, y + 6, 80, 28, max_n ? (double)n / (double)max_n : 0, "deals", a,
			     tip);
			money(a, amt, curs[c]);
			snprintf(tip, sizeof(tip), "amount %s %s", a, curs[c]);
			fprintf(o, "<g data-series=\"amount\"");
			attr(o, "data-stage", stages[s]);
			attr(o, "data-currency", curs[c]);
			attr_int(o, "data-value", amt);
			fputc('>', o);
			hbar(o, 186, y + 4, 270, 16, max_amt ? (double)amt / (double)max_amt : 0,
			     "amount", a, tip);
			money(b, w, curs[c]);
			snprintf(tip, sizeof(tip), "weighted %s %s", b, curs[c]);
			fprintf(o, "<g data-series=\"weighted\"");
			attr(o, "data-stage", stages[s]);
			attr(o, "data-currency", curs[c]);
			attr_int(o, "data-value", w);
			fputc('>', o);
			hbar(o, 186, y + 21, 270, 16, max_amt ? (double)w / (double)max_amt : 0,
			     "weighted", b, tip);
		}
		fprintf(o, "</svg>\n");
	}
	if (ncur == 0 || (ncur == 1 && !curs[0]))
		nothing(o);
cleanup:
	free(curs);
	free(stages);
	return error;
}

/*
 * Forecast by month: per currency, for each month (open deals by expected
 * close, deals won by the month won) three bars on one scale: won, the
 * weighted amount of the open deals, and best case (won + every open
 * amount). The report's expected (won + weighted) is in the table.
 */
static int draw_forecast(FILE *o, const struct rp_result *res)
{
	static const char *const keys[] = { "won", "weighted", "best_case", NULL };
	static const char *const names[] = { "won", "weighted (open deals)",
					      "best case (won + every open amount)", NULL };
	const struct rp_table *t = &res->rows;
	const char **curs = NULL;
	size_t ncur, c, r, k;
	int error;

	if ((error = distinct(t, "currency", &curs, &ncur)) < 0)
		goto cleanup;
	if (ncur)
		legend(o, keys, names);
	for (c = 0; c < ncur; c++) {
		int64_t max = 0;
		size_t nmonths = 0, m = 0;
		double rowh = 46, top = 6;
		for (r = 0; r < t->nrows; r++) {
			if (!same(cell_s(t, r, "currency"), curs[c]))
				continue;
			nmonths++;
			for (k = 0; keys[k]; k++)
				if (cell_i(t, r, keys[k]) > max)
					max = cell_i(t, r, keys[k]);
		}
		fprintf(o, "<h3>");
		html_text(o, curs[c]);
		fprintf(o, "</h3>\n");
		svg_open(o, "forecast", curs[c], CHART_W, top + rowh * (double)nmonths + 4,
			 "won, weighted and best case per month");
		for (r = 0; r < t->nrows; r++) {
			const char *month = cell_s(t, r, "month");
			double y;
			if (!same(cell_s(t, r, "currency"), curs[c]))
				continue;
			y = top + rowh * (double)m++;
			fprintf(o, "<line class=\"grid\" x1=\"0\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>",
				CHART_W, y + rowh - 3, y + rowh - 3);
			svg_label(o, 64, y + 24, "lbl", 1, month ? month : "no date");
			for (k = 0; keys[k]; k++) {
				int64_t v = cell_i(t, r, keys[k]);
				char a[64], tip[192];
				money(a, v, curs[c]);
				snprintf(tip, sizeof(tip), "%s %s: %s %s", month ? month : "no date",
					 names[k], a, curs[c]);
				fprintf(o, "<g");
				attr(o, "data-series", keys[k]);
				attr(o, "data-month", month);
				attr(o, "data-currency", curs[c]);
				attr_int(o, "data-value", v);
				fputc('>', o);
				hbar(o, 70, y + 3 + 13.5 * (double)k, 386, 12,
				     max ? (double)v / (double)max : 0, keys[k], a, tip);
			}
		}
		fprintf(o, "</svg>\n");
	}
	if (!ncur)
		nothing(o);
cleanup:
	free(curs);
	return error;
}

/* Win rate by rep: won / (won + lost) as a bar out of 100 %, with the
 * rate of every rep together (the report's total) as a dashed line. */
static int draw_winrate(FILE *o, const struct rp_result *res)
{
	const struct rp_table *t = &res->rows;
	double rowh = 26, top = 22, x0 = 120, span = 280, h = top + rowh * (double)t->nrows + 20;
	size_t r;
	int i;

	if (!t->nrows) {
		nothing(o);
		return RL_OK;
	}
	svg_open(o, "winrate", NULL, CHART_W, h, "win rate per rep");
	for (i = 0; i <= 4; i++) {
		char pct[8];
		double x = x0 + span * i / 4.0;
		snprintf(pct, sizeof(pct), "%d%%", i * 25);
		fprintf(o, "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"16\" y2=\"%.1f\"/>", x, x,
			h - 16);
		svg_label(o, x - (i == 4 ? 0 : 6), 12, "head", i == 4, pct);
	}
	for (r = 0; r < t->nrows; r++) {
		const struct rp_cell *rate = cell(t, r, "win_rate");
		const char *rep = cell_s(t, r, "rep");
		double y = top + rowh * (double)r;
		char label[64], tip[96];

		svg_label(o, x0 - 6, y + 16, "lbl", 1, rep ? rep : "(no rep)");
		if (rate->null)
			snprintf(label, sizeof(label), "-");
		else
			snprintf(label, sizeof(label), "%.1f%% (%lld of %lld)", rate->d * 100.0,
				 (long long)cell_i(t, r, "won"), (long long)cell_i(t, r, "closed"));
		snprintf(tip, sizeof(tip), "won %lld, lost %lld", (long long)cell_i(t, r, "won"),
			 (long long)cell_i(t, r, "lost"));
		fprintf(o, "<g data-series=\"win_rate\"");
		attr(o, "data-rep", rep);
		attr(o, "data-rep-id", cell_s(t, r, "rep_id"));
		if (!rate->null)
			fprintf(o, " data-value=\"%.15g\"", rate->d);
		attr_int(o, "data-won", cell_i(t, r, "won"));
		attr_int(o, "data-lost", cell_i(t, r, "lost"));
		fputc('>', o);
		hbar(o, x0, y + 4, span, 16, rate->null ? 0 : rate->d, "rate", label, tip);
	}
	if (res->totals.nrows && !cell(&res->totals, 0, "win_rate")->null) {
		double all = cell(&res->totals, 0, "win_rate")->d, x = x0 + span * all;
		char label[32];
		snprintf(label, sizeof(label), "all %.1f%%", all * 100.0);
		fprintf(o, "<g data-series=\"win_rate_all\" data-value=\"%.15g\"><line class=\"all\" "
			"x1=\"%.1f\" x2=\"%.1f\" y1=\"16\" y2=\"%.1f\"/>", all, x, x, h - 14);
		svg_label(o, x + 3, h - 3, "v", 0, label);
		fprintf(o, "</g>\n");
	}
	fprintf(o, "</svg>\n");
	return RL_OK;
}

/* Unix seconds of "YYYY-MM-DD" at 00:00 UTC; -1 if it is not a date. */
static int64_t day_utc(const char *day)
{
	char in[32];
	int64_t utc;
	int off;

	if (!day || strlen(day) != 10)
		return -1;
	snprintf(in, sizeof(in), "%sT00:00Z", day);
	return rl_time_parse(&utc, &off, in, 0, 0) < 0 ? -1 : utc;
}

/* The ISO week "YYYY-Www" of a Monday: the week of its Thursday, numbered
 * from the week holding the year's first Thursday. Only for the rows of
 * weeks nobody logged anything in (the report labels the others). */
static void iso_week(char out[16], int64_t monday)
{
	char thu[21], jan1[11];
	int64_t t = monday + 3 * 86400, j;

	rl_time_format_utc(thu, t);
	snprintf(jan1, sizeof(jan1), "%.4s-01-01", thu);
	j = day_utc(jan1);
	snprintf(out, 16, "%.4s-W%02d", thu, (int)((t - j) / 86400 / 7 + 1));
}

/*
 * Activity by rep and week: a grid with a row per ISO week (time runs down,
 * so a long period grows the page, not the width) and a column per rep
 * (the report's totals list each rep once, by name). A cell is darker the
 * more was logged; its number is the week's total, its tooltip the kinds.
 */
static int draw_activity(FILE *o, const struct rp_result *res)
{
	const struct rp_table *t = &res->rows, *reps = &res->totals;
	double cw = 64, rowh = 22, top = 34, x0 = 84, w;
	int64_t first, last, monday, max = 0;
	size_t r, k, nweeks, wi;
	int fill_gaps;

	if (!t->nrows || !reps->nrows) {
		nothing(o);
		return RL_OK;
	}
	/* rows come by week (then rep): the first and last Monday bound them */
	first = day_utc(cell_s(t, 0, "week_start"));
	last = day_utc(cell_s(t, t->nrows - 1, "week_start"));
	fill_gaps = first >= 0 && last >= first && (last - first) / (7 * 86400) < MAX_WEEK_ROWS;
	for (r = 0, nweeks = 0; r < t->nrows; r++) {
		if (cell_i(t, r, "total") > max)
			max = cell_i(t, r, "total");
		if (r == 0 || !same(cell_s(t, r, "week"), cell_s(t, r - 1, "week")))
			nweeks++;
	}
	if (fill_gaps)
		nweeks = (size_t)((last - first) / (7 * 86400)) + 1;
	w = x0 + cw * (double)reps->nrows + 4;
	if (w < CHART_W)
		w = CHART_W;
	svg_open(o, "activity", NULL, w, top + rowh * (double)nweeks + 4,
		 "activities per rep and week");
	for (k = 0; k < reps->nrows; k++) {
		/* a name over two lines: the first word, then the rest */
		const char *name = cell_s(reps, k, "rep"), *sp;
		char first_word[64];
		double x = x0 + cw * (double)k + cw / 2;
		if (!name)
			name = "(no rep)";
		sp = strchr(name, ' ');
		snprintf(first_word, sizeof(first_word), "%.*s",
			 sp && sp - name < 63 ? (int)(sp - name) : 63, name);
		fprintf(o, "<text class=\"head\" text-anchor=\"middle\" x=\"%.1f\" y=\"13\">", x);
		html_text(o, first_word);
		fprintf(o, "<title>");
		html_text(o, name);
		fprintf(o, "</title></text>");
		if (sp) {
			fprintf(o, "<text class=\"head\" text-anchor=\"middle\" x=\"%.1f\" y=\"27\">", x);
			html_text(o, sp + 1);
			fprintf(o, "</text>");
		}
		fputc('\n', o);
	}
	r = 0;
	monday = first;
	for (wi = 0; wi < nweeks; wi++) {
		double y = top + rowh * (double)wi;
		const char *week = r < t->nrows ? cell_s(t, r, "week") : NULL;
		char label[16];
		size_t end = r;

		/* this row's week: the next Monday when filling gaps, else the
		 * next week of the report */
		if (fill_gaps && (r >= t->nrows || day_utc(cell_s(t, r, "week_start")) != monday)) {
			iso_week(label, monday);
			week = NULL;
		} else {
			snprintf(label, sizeof(label), "%s", week ? week : "");
			while (end < t->nrows && same(cell_s(t, end, "week"), week))
				end++;
		}
		svg_label(o, x0 - 6, y + 15, "lbl", 1, label);
		for (k = 0; k < reps->nrows; k++) {
			const char *id = cell_s(reps, k, "rep_id");
			double x = x0 + cw * (double)k;
			size_t q;
			for (q = r; q < end && !same(cell_s(t, q, "rep_id"), id); q++)
				;
			if (q == end) {
				fprintf(o, "<rect class=\"empty\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
					"height=\"%.1f\"/>", x + 1, y + 1, cw - 2, rowh - 2);
				continue;
			} else {
				int64_t n = cell_i(t, q, "total");
				double f = max ? (double)n / (double)max : 0;
				char tip[256];
				snprintf(tip, sizeof(tip), "%s, %s (from %s): %lld visits, %lld calls, "
					 "%lld meetings, %lld e-mails", cell_s(t, q, "rep") ?
					 cell_s(t, q, "rep") : "(no rep)", week, cell_s(t, q, "week_start"),
					 (long long)cell_i(t, q, "visits"), (long long)cell_i(t, q, "calls"),
					 (long long)cell_i(t, q, "meetings"),
					 (long long)cell_i(t, q, "emails"));
				fprintf(o, "<g data-series=\"total\"");
				attr(o, "data-week", week);
				attr(o, "data-rep", cell_s(t, q, "rep"));
				attr(o, "data-rep-id", id);
				attr_int(o, "data-value", n);
				attr_int(o, "data-visits", cell_i(t, q, "visits"));
				attr_int(o, "data-calls", cell_i(t, q, "calls"));
				attr_int(o, "data-meetings", cell_i(t, q, "meetings"));
				attr_int(o, "data-emails", cell_i(t, q, "emails"));
				fprintf(o, "><rect class=\"heat\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
					"height=\"%.1f\" fill-opacity=\"%.2f\"><title>", x + 1, y + 1, cw - 2,
					rowh - 2, 0.12 + 0.88 * f);
				html_text(o, tip);
				fprintf(o, "</title></rect><text class=\"%s\" text-anchor=\"middle\" "
					"x=\"%.1f\" y=\"%.1f\">%lld</text></g>", f > 0.5 ? "v in" : "v",
					x + cw / 2, y + 15, (long long)n);
			}
		}
		fputc('\n', o);
		r = end;
		monday += 7 * 86400;
	}
	fprintf(o, "</svg>\n");
	return RL_OK;
}

/* ---- the marketing sections ------------------------------------------------------- */

/* A revenue short enough for a grid cell: 12.3M, 45.6k in major units;
 * the cell's tooltip and the figure table give it whole. */
static const char *money_short(char buf[64], int64_t v, const char *cur)
{
	int e = rl_currency_exponent(cur);
	double major = (double)v;

	while (e-- > 0)
		major /= 10.0;
	if (major >= 1e9 || major <= -1e9)
		snprintf(buf, 64, "%.1fB", major / 1e9);
	else if (major >= 1e6 || major <= -1e6)
		snprintf(buf, 64, "%.1fM", major / 1e6);
	else if (major >= 1e4 || major <= -1e4)
		snprintf(buf, 64, "%.1fk", major / 1e3);
	else
		money(buf, v, cur);
	return buf;
}

/* The section's figure tables, as write_section gives the reports'. */
static void figures(FILE *o, const char *id, const char *title, const struct rp_result *r)
{
	fprintf(o, "<details><summary>Figures (%zu row%s)</summary>\n", r->rows.nrows,
		r->rows.nrows == 1 ? "" : "s");
	figures_table(o, id, "rows", title, &r->rows);
	if (r->totals.ncols)
		figures_table(o, id, "totals", "Totals", &r->totals);
	fprintf(o, "</details>\n");
}

/*
 * One currency's RFM grid: recency score down (5 at the top), the FM
 * score across; a cell per (R, FM) with its accounts and their revenue,
 * coloured and named by the segment that pair falls in (mk_rfm_segment).
 */
static int draw_rfm_grid(FILE *o, const struct mk_rfm *rows, size_t n, const char *cur)
{
	int64_t count[5][5] = { { 0 } }, rev[5][5] = { { 0 } };
	double x0 = 56, cw = 80, ch = 62, top = 20;
	size_t i;
	int r, fm, error;

	for (i = 0; i < n; i++) {
		int fmi = (rows[i].f + rows[i].m + 1) / 2;
		if (rows[i].r < 1 || rows[i].r > 5 || fmi < 1 || fmi > 5)
			continue;   /* scores are 1..5 by construction */
		count[rows[i].r - 1][fmi - 1]++;
		/* a cell's sum of mixed signs can leave int64 where the
		 * currency's total (mk_rfm_summary, checked already) did not */
		if ((error = rp_money_add(&rev[rows[i].r - 1][fmi - 1], rows[i].monetary,
					  "rfm grid", cur)) < 0)
			return error;
	}
	fprintf(o, "<h3>");
	html_text(o, cur);
	fprintf(o, "</h3>\n");
	svg_open(o, "rfm", cur, CHART_W, top + 5 * ch + 22, "accounts and revenue per RFM cell");
	svg_label(o, x0, 13, "head", 0, "recency score (R) down, frequency + monetary (FM) across");
	fputc('\n', o);
	for (r = 5; r >= 1; r--) {
		double y = top + ch * (double)(5 - r);
		char lbl[8];
		snprintf(lbl, sizeof(lbl), "R %d", r);
		svg_label(o, x0 - 8, y + ch / 2 + 4, "lbl", 1, lbl);
		for (fm = 1; fm <= 5; fm++) {
			int seg = mk_rfm_segment(r, fm, fm);
			const char *name = mk_rfm_segment_names[seg], *sp = strchr(name, ' ');
			int64_t c = count[r - 1][fm - 1], v = rev[r - 1][fm - 1];
			double x = x0 + cw * (double)(fm - 1);
			char a[64], b[64], tip[256];
			/* (f + m + 1) / 2 of f = m = fm is fm: the segment of the cell */
			money(a, v, cur);
			snprintf(tip, sizeof(tip), "R %d, FM %d (%s): %lld account%s, revenue %s %s", r,
				 fm, name, (long long)c, c == 1 ? "" : "s", a, cur);
			fprintf(o, "<g data-series=\"rfm_cell\"");
			attr(o, "data-currency", cur);
			attr_int(o, "data-r", r);
			attr_int(o, "data-fm", fm);
			attr(o, "data-segment", name);
			attr_int(o, "data-value", c);
			attr_int(o, "data-revenue", v);
			fprintf(o, "><rect class=\"seg%d%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
				"height=\"%.1f\"><title>", seg, c ? "" : " none", x + 1, y + 1, cw - 2,
				ch - 2);
			html_text(o, tip);
			fprintf(o, "</title></rect>");
			/* the name over two lines when it has two words */
			snprintf(b, sizeof(b), "%.*s", sp ? (int)(sp - name) : 63, name);
			fprintf(o, "<text class=\"head\" text-anchor=\"middle\" x=\"%.1f\" y=\"%.1f\">",
				x + cw / 2, y + 14);
			html_text(o, b);
			fprintf(o, "</text>");
			if (sp) {
				fprintf(o, "<text class=\"head\" text-anchor=\"middle\" x=\"%.1f\" "
					"y=\"%.1f\">", x + cw / 2, y + 26);
				html_text(o, sp + 1);
				fprintf(o, "</text>");
			}
			fprintf(o, "<text class=\"v n\" text-anchor=\"middle\" x=\"%.1f\" y=\"%.1f\">"
				"%lld</text>", x + cw / 2, y + 42, (long long)c);
			if (c) {
				fprintf(o, "<text class=\"v\" text-anchor=\"middle\" x=\"%.1f\" "
					"y=\"%.1f\">", x + cw / 2, y + 56);
				html_text(o, money_short(b, v, cur));
				fprintf(o, "</text>");
			}
			fprintf(o, "</g>\n");
		}
	}
	for (fm = 1; fm <= 5; fm++) {
		char lbl[8];
		snprintf(lbl, sizeof(lbl), "FM %d", fm);
		fprintf(o, "<text class=\"lbl\" text-anchor=\"middle\" x=\"%.1f\" y=\"%.1f\">%s"
			"</text>", x0 + cw * (double)(fm - 1) + cw / 2, top + 5 * ch + 16, lbl);
	}
	fprintf(o, "\n</svg>\n");
	return RL_OK;
}

/*
 * RFM: `relasi segment rfm --from F --to T` over every currency: its
 * window is the page's --from/--to, else the command's default (the
 * twelve calendar months ending with --to or today). Not narrowed by rep,
 * team or region: scores are quintiles among all buying accounts.
 */
static int section_rfm(FILE *o, rl_store *s, const struct rp_filter *f, const char *as_of)
{
	struct rp_result r = { 0 };
	struct mk_rfm *rows = NULL;
	char from[11], to[11];
	size_t n = 0, start, i;
	int error;

	snprintf(to, sizeof(to), "%s", f->to[0] ? f->to : f->today);
	if (f->from[0])
		snprintf(from, sizeof(from), "%s", f->from);
	else
		mk_months_window(from, to, RFM_MONTHS);
	r.name = "rfm";
	snprintf(r.as_of, sizeof(r.as_of), "%s", as_of);
	fprintf(o, "<p class=\"about\">Won deals closed from <time data-rfm=\"from\">%s</time> to "
		"<time data-rfm=\"to\">%s</time> (<code>relasi segment rfm --from %s --to %s</code>); "
		"every rep's customers, whatever the filters.</p>\n", from, to, from, to);
	if ((error = mk_rfm_compute(s, from, to, NULL, &rows, &n)) < 0 ||
	    (error = mk_rfm_summary(rows, n, &r)) < 0)
		goto cleanup;
	/* rows come ordered by currency: one grid per currency */
	for (start = 0, i = 1; i <= n; i++) {
		if (i < n && strcmp(rows[i].currency, rows[start].currency) == 0)
			continue;
		if ((error = draw_rfm_grid(o, rows + start, i - start, rows[start].currency)) < 0)
			goto cleanup;
		start = i;
	}
	if (!n)
		nothing(o);
	figures(o, "rfm", "RFM segments", &r);
cleanup:
	free(rows);
	rp_result_free(&r);
	return error;
}

static const struct rp_col tier_month_cols[] = {
	{ "month", RP_TEXT, 0, NULL, 0 },
	{ "tier", RP_TEXT, 0, NULL, 0 },
	{ "min_monthly", RP_MONEY, 3, NULL, 0 },
	{ "currency", RP_TEXT, 0, NULL, 0 },
	{ "accounts", RP_INT, 0, NULL, 0 },
	{ "moved_up", RP_INT, 0, NULL, 0 },
	{ "moved_down", RP_INT, 0, NULL, 0 },
};

/*
 * Tiers per month: for each month what `relasi tiers --month M` counts
 * (mk_tiers_count_months, one pass for all), one stacked bar of the tiers
 * (highest first, the configured names) with the accounts in no tier
 * beside it; the figure table is the command's rows with their month.
 */
static int section_tiers(FILE *o, rl_store *s, const struct rp_filter *f, const char *as_of)
{
	static const int64_t zero[MK_MAX_TIERS + 1];
	struct rp_result r = { 0 };
	struct mk_tiers t;
	int64_t (*count)[MK_MAX_TIERS + 1] = NULL, (*up)[MK_MAX_TIERS + 1] = NULL;
	int64_t (*down)[MK_MAX_TIERS + 1] = NULL;
	char first[8], last[8], month[8];
	size_t k, nm = 0, mi;
	int64_t max = 0;
	double rowh = 30, top = 6, x0 = 70, span = 290;
	int error;

	snprintf(last, sizeof(last), "%.7s", f->to[0] ? f->to : f->today);
	mk_month_add(first, last, -(TIER_MONTHS - 1));
	if (f->from[0]) {
		char cap[8];
		snprintf(first, sizeof(first), "%.7s", f->from);
		mk_month_add(cap, last, -(MAX_TIER_MONTHS - 1));
		if (strcmp(first, cap) < 0)
			snprintf(first, sizeof(first), "%s", cap);
	}
	r.name = "tiers";
	snprintf(r.as_of, sizeof(r.as_of), "%s", as_of);
	rp_table_init(&r.rows, tier_month_cols, sizeof(tier_month_cols) / sizeof(tier_month_cols[0]));
	if ((error = mk_tiers_load(s, &t)) < 0)
		goto cleanup;
	for (snprintf(month, sizeof(month), "%s", first); strcmp(month, last) <= 0;
	     mk_month_add(month, month, 1))
		nm++;
	if (!(count = calloc(nm, sizeof(*count))) || !(up = calloc(nm, sizeof(*up))) ||
	    !(down = calloc(nm, sizeof(*down)))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	/* the counts first (the bars share one scale), then the drawing */
	if ((error = mk_tiers_count_months(s, &t, first, nm, count, up, down)) < 0)
		goto cleanup;
	for (mi = 0, snprintf(month, sizeof(month), "%s", first); mi < nm;
	     mi++, mk_month_add(month, month, 1)) {
		int64_t sum = 0;
		for (k = 0; k <= t.n; k++) {
			struct rp_cell *row;
			if (k < t.n)
				sum += count[mi][k];
			if (k == t.n && count[mi][k] == 0)
				break;        /* "no tier" only when someone has none, as tiers */
			if (!(row = rp_row_add(&r.rows)) || rp_set_text(row, 0, month) < 0 ||
			    rp_set_text(row, 1, k < t.n ? t.name[k] : NULL) < 0 ||
			    rp_set_text(row, 3, t.currency) < 0) {
				error = RL_ENOMEM;
				goto cleanup;
			}
			if (k < t.n)
				rp_set_int(row, 2, t.min[k]);
			rp_set_int(row, 4, count[mi][k]);
			rp_set_int(row, 5, up[mi][k]);
			rp_set_int(row, 6, down[mi][k]);
		}
		if (sum > max)
			max = sum;
	}
	fprintf(o, "<p class=\"about\">Tiers in %s from the average monthly spend over the six "
		"months before each month (<code>relasi tiers --month M</code>), %s to %s; every "
		"customer, whatever the filters.</p>\n<p class=\"legend\">", t.currency, first, last);
	for (k = 0; k < t.n; k++) {
		fprintf(o, "<span class=\"k-t%zu\">", k);
		html_text(o, t.name[k]);
		fprintf(o, "</span> ");
	}
	fprintf(o, "<span class=\"k-none\">no tier (the count at the right)</span></p>\n");
	svg_open(o, "tiers", t.currency, CHART_W, top + rowh * (double)nm + 4,
		 "accounts per tier and month");
	for (mi = 0, snprintf(month, sizeof(month), "%s", first); mi < nm;
	     mi++, mk_month_add(month, month, 1)) {
		double y = top + rowh * (double)mi, x = x0;
		const int64_t *c = count ? count[mi] : zero;
		char lbl[64], tip[192];
		fprintf(o, "<line class=\"grid\" x1=\"0\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>",
			CHART_W, y + rowh - 2, y + rowh - 2);
		svg_label(o, x0 - 6, y + 18, "lbl", 1, month);
		for (k = 0; k < t.n; k++) {
			double w = max ? span * (double)c[k] / (double)max : 0;
			snprintf(lbl, sizeof(lbl), "%lld", (long long)c[k]);
			snprintf(tip, sizeof(tip), "%s %s: %lld account%s", month, t.name[k],
				 (long long)c[k], c[k] == 1 ? "" : "s");
			fprintf(o, "<g data-series=\"tier\"");
			attr(o, "data-month", month);
			attr(o, "data-tier", t.name[k]);
			attr_int(o, "data-value", c[k]);
			fprintf(o, "><rect class=\"t%zu\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
				"height=\"20\"><title>", k, x, y + 4, w);
			html_text(o, tip);
			fprintf(o, "</title></rect>");
			/* the count inside its part when it fits, else in the tooltip */
			if (w > 7.2 * (double)strlen(lbl) + 6)
				svg_label(o, x + w / 2 - 3.6 * (double)strlen(lbl), y + 18, "v in", 0,
					  lbl);
			fprintf(o, "</g>");
			x += w;
		}
		snprintf(lbl, sizeof(lbl), "%lld none", (long long)c[t.n]);
		fprintf(o, "<g data-series=\"no_tier\"");
		attr(o, "data-month", month);
		attr_int(o, "data-value", c[t.n]);
		fputc('>', o);
		svg_label(o, CHART_W - 4, y + 18, "v", 1, lbl);
		fprintf(o, "</g>\n");
	}
	fprintf(o, "</svg>\n");
	if (!max)
		nothing(o);
	figures(o, "tiers", "Tiers per month", &r);
cleanup:
	free(count);
	free(up);
	free(down);
	rp_result_free(&r);
	return error;
}

/* ---- the page -------------------------------------------------------------------- */

/*
 * The sections, in page order. A section runs its report (report_calc.c)
 * and draws it; the report's tables follow the chart. A section without a
 * report is a placeholder that says so. Adding a chart is one entry and
 * one draw function; the RFM grid (`relasi segment rfm`) and the tier
 * counts per month (`relasi tiers`) come that way when their computations
 * land: until then their section says they are not yet available.
 */
struct html_section {
	const char *id;       /* anchor, and data-report of its charts and tables */
	const char *title;
	const char *about;
	int (*run)(rl_store *s, const struct rp_filter *f, struct rp_result *r);
	int (*draw)(FILE *o, const struct rp_result *r);
	int wide;             /* spans both columns of a wide screen */
	/* instead of run and draw: a section that computes, draws and lists
	 * its figures itself (the marketing ones, from marketing.h) */
	int (*write)(FILE *o, rl_store *s, const struct rp_filter *f, const char *as_of);
};

static const struct html_section sections[] = {
	{ "pipeline", "Funnel by stage",
	  "Deals per stage with their amount and weighted amount (the deal's probability, else "
	  "its stage's), per currency. Deals created or expected to close in the period.",
	  rp_pipeline, draw_funnel, 0, NULL },
	{ "forecast", "Forecast by month",
	  "Open deals by the month they are expected to close, deals won by the month they were "
	  "won; per currency.", rp_forecast, draw_forecast, 0, NULL },
	{ "winrate", "Win rate by rep",
	  "Won / (won + lost) of the deals closed in the period, per rep (the deal's owner).",
	  rp_winrate, draw_winrate, 0, NULL },
	{ "activity", "Activity by rep and week",
	  "Visits, calls, meetings and e-mails each rep logged, per ISO week (UTC, weeks start "
	  "on Monday).", rp_activity, draw_activity, 0, NULL },
	{ "rfm", "RFM grid",
	  "Customers by recency score (R) and frequency and monetary score (FM = (F + M + 1) / 2), "
	  "quintiles 1-5 among the customers buying in each currency; each cell is named by its "
	  "segment and shows its customers and their revenue.", NULL, NULL, 0, section_rfm },
	{ "tiers", "Tiers per month",
	  "Customers in each tier per month, highest tier first.", NULL, NULL, 0, section_tiers },
};

static const char css[] =
	":root{--ink:#1d2733;--muted:#5b6b7c;--line:#dde3ea;--bg:#f4f6f9;--card:#fff}\n"
	"*{box-sizing:border-box}\n"
	"body{margin:0;background:var(--bg);color:var(--ink);"
	"font:15px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,\"DejaVu Sans\",Arial,"
	"sans-serif}\n"
	"header,main,footer{max-width:1180px;margin:0 auto;padding:14px 16px}\n"
	"main{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:16px;"
	"padding-top:0}\n"
	"h1{font-size:1.45rem;margin:0 0 2px}h2{font-size:1.1rem;margin:0 0 2px}"
	"h3{font-size:.9rem;margin:10px 0 2px;color:var(--muted)}\n"
	".meta{color:var(--muted);margin:0}.meta b{color:var(--ink);font-weight:600}\n"
	"nav a{color:#2f6db5;margin-right:12px;font-size:.9rem}\n"
	".card{background:var(--card);border:1px solid var(--line);border-radius:8px;"
	"padding:14px 16px;min-width:0}\n"
	".card.wide{grid-column:1/-1}\n"
	".about{color:var(--muted);margin:0 0 6px;font-size:.85rem}\n"
	".legend{margin:4px 0;font-size:.8rem;color:var(--muted)}\n"
	".legend span{margin-right:10px;white-space:nowrap}\n"
	".legend span::before{content:\"\";display:inline-block;width:10px;height:10px;"
	"margin-right:4px;border-radius:2px;vertical-align:-1px}\n"
	"svg.chart{display:block;width:100%;height:auto}\n"
	"svg text{font-size:12px;fill:var(--ink)}\n"
	"svg text.head{font-size:11px;fill:var(--muted)}\n"
	"svg text.v{font-size:11px;font-variant-numeric:tabular-nums}\n"
	"svg text.in{fill:#fff}\n"
	"svg .grid{stroke:var(--line);stroke-width:1}\n"
	"svg .all{stroke:#c2410c;stroke-width:1.5;stroke-dasharray:4 3}\n"
	".deals,.k-deals::before{fill:#64748b;background:#64748b}\n"
	".amount,.k-amount::before{fill:#93c5fd;background:#93c5fd}\n"
	".weighted,.k-weighted::before{fill:#2563eb;background:#2563eb}\n"
	".won,.k-won::before{fill:#15803d;background:#15803d}\n"
	".best_case,.k-best_case::before{fill:#bfdbfe;background:#bfdbfe}\n"
	".rate{fill:#2563eb}.heat{fill:#1d4ed8}.empty{fill:#eef2f6}\n"
	/* RFM segments: greens for the best, blues for the new, warm for the
	 * ones slipping away, greys for the gone; ink text reads on all */
	".seg0{fill:#4ade80}.seg1{fill:#bbf7d0}.seg2{fill:#bfdbfe}.seg3{fill:#dbeafe}"
	".seg4{fill:#fdba74}.seg5{fill:#fca5a5}.seg6{fill:#e2e8f0}.seg7{fill:#cbd5e1}"
	"rect.none{fill-opacity:.35}svg text.n{font-weight:600}\n"
	/* tiers, highest first (Priority, Gold, Red by default); white on each */
	".t0,.k-t0::before{fill:#1d4ed8;background:#1d4ed8}"
	".t1,.k-t1::before{fill:#b45309;background:#b45309}"
	".t2,.k-t2::before{fill:#b91c1c;background:#b91c1c}"
	".t3,.k-t3::before{fill:#0f766e;background:#0f766e}"
	".t4,.k-t4::before{fill:#6d28d9;background:#6d28d9}"
	".t5,.k-t5::before{fill:#475569;background:#475569}"
	".t6,.k-t6::before{fill:#be185d;background:#be185d}"
	".t7,.k-t7::before{fill:#4d7c0f;background:#4d7c0f}"
	".k-none::before{background:#eef2f6}\n"
	"details{margin-top:8px}summary{cursor:pointer;color:var(--muted);font-size:.85rem}\n"
	".scroll{overflow-x:auto}\n"
	"table.figures{border-collapse:collapse;font-size:.78rem;margin-top:6px;width:100%}\n"
	"table.figures caption{text-align:left;color:var(--muted);padding:2px 0}\n"
	"table.figures th,table.figures td{border-bottom:1px solid var(--line);padding:3px 6px;"
	"text-align:left;white-space:nowrap}\n"
	"table.figures td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
	"table.figures .hide{display:none}\n"
	".empty,.missing{color:var(--muted);font-style:italic}\n"
	"footer{color:var(--muted);font-size:.8rem}\n"
	"@media (max-width:760px){main{grid-template-columns:1fr;gap:10px;padding:0 8px}"
	"header,footer{padding:10px}.card{padding:10px}h1{font-size:1.2rem}"
	/* the charts scale down to ~0.76 on a phone: larger text keeps ~10 px */
	"svg text{font-size:13.5px}svg text.v,svg text.head{font-size:12.5px}}\n";

static int write_section(FILE *o, rl_store *s, const struct rp_filter *f,
			 const struct html_section *sec, const char *as_of)
{
	struct rp_result r = { 0 };
	int error = RL_OK;

	fprintf(o, "<section class=\"card%s\"", sec->wide ? " wide" : "");
	attr(o, "id", sec->id);
	attr(o, "data-report", sec->id);
	fprintf(o, ">\n<h2>");
	html_text(o, sec->title);
	fprintf(o, "</h2>\n<p class=\"about\">");
	html_text(o, sec->about);
	fprintf(o, "</p>\n");
	if (sec->write) {
		if ((error = sec->write(o, s, f, as_of)) < 0)
			return error;
		fprintf(o, "</section>\n");
		return RL_OK;
	}
	if (!sec->run) {
		fprintf(o, "<p class=\"missing\" data-missing=\"1\">");
		html_text(o, sec->title);
		fprintf(o, ": not yet available</p>\n</section>\n");
		return RL_OK;
	}
	r.name = sec->id;
	snprintf(r.as_of, sizeof(r.as_of), "%s", as_of);
	if ((error = sec->run(s, f, &r)) < 0 || (error = sec->draw(o, &r)) < 0)
		goto cleanup;
	fprintf(o, "<details><summary>Figures (%zu row%s)</summary>\n", r.rows.nrows,
		r.rows.nrows == 1 ? "" : "s");
	figures_table(o, sec->id, "rows", sec->title, &r.rows);
	if (r.totals.ncols)
		figures_table(o, sec->id, "totals", "Totals", &r.totals);
	fprintf(o, "</details>\n</section>\n");
cleanup:
	rp_result_free(&r);
	return error;
}

static int write_page(FILE *o, rl_store *s, const struct rp_filter *f,
		      const struct rp_result *info)
{
	const char *key;
	json_t *v;
	size_t i;
	int error, nf = 0;

	fprintf(o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
		"<title>Sales report, as of ");
	html_text(o, info->as_of);
	fprintf(o, " (UTC)</title>\n<style>\n%s</style>\n</head>\n<body", css);
	attr(o, "data-as-of", info->as_of);
	fprintf(o, ">\n<header>\n<h1>Sales report</h1>\n<p class=\"meta\">As of <time");
	attr(o, "datetime", info->as_of);
	fputc('>', o);
	html_text(o, info->as_of);
	fprintf(o, "</time> (UTC) &middot; <span class=\"filters\">");
	json_object_foreach(info->filters, key, v) {
		if (!json_is_string(v))
			continue;
		fprintf(o, "%s%s <b", nf++ ? "; " : "", key);
		attr(o, "data-filter", key);
		fputc('>', o);
		html_text(o, json_string_value(v));
		fprintf(o, "</b>");
	}
	if (!nf)
		fprintf(o, "everything in this store");
	fprintf(o, "</span></p>\n<nav>");
	for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		fprintf(o, "<a href=\"#%s\">", sections[i].id);
		html_text(o, sections[i].title);
		fprintf(o, "</a>");
	}
	fprintf(o, "</nav>\n</header>\n<main>\n");
	for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if ((error = write_section(o, s, f, &sections[i], info->as_of)) < 0)
			return error;
	fprintf(o, "</main>\n<footer>Written by <code>relasi report html</code>. Money is in "
		"each currency's own units and never added across currencies; times and weeks "
		"are UTC. The figures are those of <code>relasi report pipeline</code>, "
		"<code>forecast</code>, <code>winrate</code> and <code>activity</code> with the "
		"same filters, and of <code>relasi segment rfm</code> and <code>relasi tiers</code> "
		"for the window and months each section states.</footer>\n</body>\n</html>\n");
	return RL_OK;
}

int rp_html_write(rl_store *s, const struct rp_filter *f, const struct rp_result *info,
		  const char *path, long *bytes)
{
	struct rl_outfile out;
	int error;

	/* 0600: the page lists reps' figures and the business's money; sharing
	 * it is the manager's decision (chmod), as with bundles. A page that
	 * reaches its name is whole (relasi/outfile.h). */
	if ((error = rl_outfile_open(&out, path, 0600)) < 0)
		return error;
	if ((error = write_page(out.f, s, f, info)) < 0) {
		rl_outfile_abort(&out);
		return error;
	}
	*bytes = ftell(out.f);
	return rl_outfile_commit(&out);
}
