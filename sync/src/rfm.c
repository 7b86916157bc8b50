/*
 * rfm.c — recency, frequency and monetary scores per account
 * (relasi/marketing.h states the definitions; in librelasi-sync because
 * the HTML report, which the hub also writes, draws them): one grouped read of the won deals in the window,
 * then the quintile scores in C per currency, each metric sorted once and
 * every account's "strictly worse" count found by binary search, so ties
 * get equal scores by construction.
 *
 * Segment map (R = recency score, FM = (F + M + 1) / 2, first match):
 *
 *   champions    R 4-5  FM 4-5      new          R 4-5  FM 1
 *   loyal        R 3-5  FM 3-5      potential    R 3-5  FM 1-2
 *   cannot lose  R 1    FM 4-5      at risk      R 1-2  FM 3-5
 *   hibernating  R 2    FM 1-2      lost         R 1    FM 1-2
 */
#include "relasi/marketing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const mk_rfm_segment_names[MK_RFM_SEGMENTS] = {
	"champions", "loyal", "potential", "new", "at risk", "cannot lose", "hibernating", "lost"
};

enum { SEG_CHAMPIONS, SEG_LOYAL, SEG_POTENTIAL, SEG_NEW, SEG_AT_RISK, SEG_CANNOT_LOSE,
       SEG_HIBERNATING, SEG_LOST };

int mk_rfm_segment(int r, int f, int m)
{
	int fm = (f + m + 1) / 2;

	if (r >= 4 && fm >= 4)
		return SEG_CHAMPIONS;
	if (r >= 3 && fm >= 3)
		return SEG_LOYAL;
	if (r >= 4 && fm <= 1)
		return SEG_NEW;
	if (r >= 3)
		return SEG_POTENTIAL;
	if (r == 1 && fm >= 4)
		return SEG_CANNOT_LOSE;
	if (fm >= 3)
		return SEG_AT_RISK;
	if (r == 2)
		return SEG_HIBERNATING;
	return SEG_LOST;
}

void mk_months_window(char from[11], const char to[11], int months)
{
	int y = (to[0] - '0') * 1000 + (to[1] - '0') * 100 + (to[2] - '0') * 10 + (to[3] - '0');
	int m = (to[5] - '0') * 10 + (to[6] - '0');
	int total = y * 12 + (m - 1) - (months - 1);

	/* to is a validated date (years 1900..9999) and months <= 120 */
	if (total < 0)
		total = 0;
	snprintf(from, 11, "%04d-%02d-01", (total / 12) % 10000, (total % 12 + 1) % 100);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* How many of the n sorted values are < v (lower_bound). */
static size_t count_below(const int64_t *v, size_t n, int64_t x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* How many of the n sorted values are > v. */
static size_t count_above(const int64_t *v, size_t n, int64_t x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid] <= x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return n - lo;
}

static int quintile(size_t worse, size_t n)
{
	return 1 + (int)((5 * (uint64_t)worse) / n);
}

/* Score rows [lo, hi) (one currency). */
static int score_group(struct mk_rfm *rows, size_t lo, size_t hi)
{
	size_t n = hi - lo, i;
	int64_t *rv = malloc(n * sizeof(*rv)), *fv = malloc(n * sizeof(*fv)),
		*mv = malloc(n * sizeof(*mv));

	if (!rv || !fv || !mv) {
		free(rv);
		free(fv);
		free(mv);
		return rl_error_set(RL_ENOMEM, "out of memory");
	}
	for (i = 0; i < n; i++) {
		rv[i] = rows[lo + i].recency;
		fv[i] = rows[lo + i].frequency;
		mv[i] = rows[lo + i].monetary;
	}
	qsort(rv, n, sizeof(*rv), cmp_i64);
	qsort(fv, n, sizeof(*fv), cmp_i64);
	qsort(mv, n, sizeof(*mv), cmp_i64);
	for (i = lo; i < hi; i++) {
		struct mk_rfm *x = &rows[i];
		x->r = quintile(count_above(rv, n, x->recency), n);
		x->f = quintile(count_below(fv, n, x->frequency), n);
		x->m = quintile(count_below(mv, n, x->monetary), n);
		x->segment = mk_rfm_segment(x->r, x->f, x->m);
	}
	free(rv);
	free(fv);
	free(mv);
	return RL_OK;
}


int mk_rfm_compute(rl_store *s, const char *from, const char *to, const char *currency,
		   struct mk_rfm **out, size_t *n)
{
	sqlite3_stmt *st;
	struct mk_rfm *rows = NULL;
	size_t cap = 0, count = 0, i, start;
	int rc, error = RL_OK;

	*out = NULL;
	*n = 0;
	if ((error = rl_store_prepare(s,
	     "SELECT d.account_id, d.currency,"
	     " CAST(julianday(?2) - julianday(max(" RP_CLOSED_DAY ")) AS INTEGER),"
	     " count(*), coalesce(sum(d.amount), 0)"
	     " FROM deals d JOIN stages st ON st.id = d.stage_id AND st.kind = 'won'"
	     " JOIN accounts a ON a.id = d.account_id AND a.deleted = 0"
	     " WHERE d.deleted = 0 AND " RP_CLOSED_DAY " BETWEEN ?1 AND ?2"
	     " AND (?3 IS NULL OR d.currency = ?3)"
	     " GROUP BY d.currency, d.account_id ORDER BY d.currency, d.account_id", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, to, -1, SQLITE_STATIC);
	if (currency)
		sqlite3_bind_text(st, 3, currency, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 3);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct mk_rfm *x;
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			struct mk_rfm *nr = realloc(rows, ncap * sizeof(*nr));
			if (!nr) {
				error = rl_error_set(RL_ENOMEM, "out of memory");
				goto cleanup;
			}
			rows = nr;
			cap = ncap;
		}
		x = &rows[count++];
		memset(x, 0, sizeof(*x));
		snprintf(x->account, sizeof(x->account), "%s", cli_col(st, 0));
		snprintf(x->currency, sizeof(x->currency), "%s", cli_col(st, 1));
		x->recency = sqlite3_column_int64(st, 2);
		x->frequency = sqlite3_column_int64(st, 3);
		x->monetary = sqlite3_column_int64(st, 4);
	}
	if (rc != SQLITE_DONE) {
		error = rp_sum_error(s, "reading won deals");
		goto cleanup;
	}
	for (start = 0, i = 1; i <= count; i++)
		if (i == count || strcmp(rows[i].currency, rows[start].currency) != 0) {
			if ((error = score_group(rows, start, i)) < 0)
				goto cleanup;
			start = i;
		}
	*out = rows;
	*n = count;
	rows = NULL;
cleanup:
	sqlite3_reset(st);
	free(rows);
	return error;
}

/* ---- the summary (`relasi segment rfm`, the HTML report's RFM section) ---- */

static const struct rp_col rfm_cols[] = {
	{ "segment", RP_TEXT, 0, NULL, 0 },
	{ "currency", RP_TEXT, 0, NULL, 0 },
	{ "accounts", RP_INT, 0, NULL, 0 },
	{ "share", RP_RATIO, 0, NULL, 0 },
	{ "deals", RP_INT, 0, NULL, 0 },
	{ "revenue", RP_MONEY, 1, NULL, 0 },
	{ "avg_recency_days", RP_REAL, 0, NULL, 0 },
};
static const struct rp_col rfm_total_cols[] = {
	{ "currency", RP_TEXT, 0, NULL, 0 },
	{ "accounts", RP_INT, 0, NULL, 0 },
	{ "deals", RP_INT, 0, NULL, 0 },
	{ "revenue", RP_MONEY, 0, NULL, 0 },
};
int mk_rfm_summary(const struct mk_rfm *rows, size_t n, struct rp_result *r)
{
	size_t i, start, seg;
	int error;

	rp_table_init(&r->rows, rfm_cols, sizeof(rfm_cols) / sizeof(rfm_cols[0]));
	rp_table_init(&r->totals, rfm_total_cols, sizeof(rfm_total_cols) / sizeof(rfm_total_cols[0]));
	for (start = 0, i = 1; i <= n; i++) {
		int64_t acc[MK_RFM_SEGMENTS] = { 0 }, deals[MK_RFM_SEGMENTS] = { 0 },
			rev[MK_RFM_SEGMENTS] = { 0 }, days[MK_RFM_SEGMENTS] = { 0 };
		int64_t tacc = 0, tdeals = 0, trev = 0;
		size_t k;
		struct rp_cell *row;
		if (i < n && strcmp(rows[i].currency, rows[start].currency) == 0)
			continue;
		for (k = start; k < i; k++) {
			acc[rows[k].segment]++;
			deals[rows[k].segment] += rows[k].frequency;
			days[rows[k].segment] += rows[k].recency;
			if ((error = rp_money_add(&rev[rows[k].segment], rows[k].monetary,
						  "rfm", rows[start].currency)) < 0)
				return error;
		}
		for (seg = 0; seg < MK_RFM_SEGMENTS; seg++) {
			if (!(row = rp_row_add(&r->rows)) ||
			    rp_set_text(row, 0, mk_rfm_segment_names[seg]) < 0 ||
			    rp_set_text(row, 1, rows[start].currency) < 0)
				return RL_ENOMEM;
			rp_set_int(row, 2, acc[seg]);
			rp_set_ratio(row, 3, (double)acc[seg] / (double)(i - start));
			rp_set_int(row, 4, deals[seg]);
			rp_set_int(row, 5, rev[seg]);
			if (acc[seg])
				rp_set_real(row, 6, (double)days[seg] / (double)acc[seg]);
			tacc += acc[seg];
			tdeals += deals[seg];
			if ((error = rp_money_add(&trev, rev[seg], "rfm", rows[start].currency)) < 0)
				return error;
		}
		if (!(row = rp_row_add(&r->totals)) || rp_set_text(row, 0, rows[start].currency) < 0)
			return RL_ENOMEM;
		rp_set_int(row, 1, tacc);
		rp_set_int(row, 2, tdeals);
		rp_set_int(row, 3, trev);
		start = i;
	}
	return RL_OK;
}
