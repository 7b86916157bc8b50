/*
 * tiers.c — customer tiers per month (relasi/marketing.h; in
 * librelasi-sync because the HTML report, which the hub also writes,
 * draws them): the team's tier
 * configuration (the one synced tier_config row) and every account's tier
 * in a month from its won deals in the six calendar months before it.
 *
 * Stored form of the levels: "Name=MIN;Name=MIN" with MIN the least
 * average monthly spend in minor units of the configuration's currency.
 * The row syncs like any other, so a device may meet a value it did not
 * write: it is parsed with the same bounds as `relasi tiers config` input
 * and refused with a clear message rather than trusted.
 */
#include "relasi/marketing.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "relasi/valid.h"

int mk_month_valid(const char *s)
{
	return strlen(s) == 7 && s[0] >= '1' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' &&
	       s[2] >= '0' && s[2] <= '9' && s[3] >= '0' && s[3] <= '9' && s[4] == '-' &&
	       ((s[5] == '0' && s[6] >= '1' && s[6] <= '9') ||
		(s[5] == '1' && s[6] >= '0' && s[6] <= '2'));
}

void mk_month_add(char out[8], const char *month, int delta)
{
	int y = (month[0] - '0') * 1000 + (month[1] - '0') * 100 + (month[2] - '0') * 10 +
		(month[3] - '0');
	int m = (month[5] - '0') * 10 + (month[6] - '0');
	int total = y * 12 + (m - 1) + delta;

	if (total < 0)
		total = 0;
	snprintf(out, 8, "%04d-%02d", total / 12 % 10000, total % 12 + 1);
}

int mk_tier_name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > MK_TIER_NAME_BYTES)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int mk_tiers_parse(struct mk_tiers *t, const char *levels, const char *currency)
{
	const char *p = levels;
	size_t i, k;

	memset(t, 0, sizeof(*t));
	if (!currency || strlen(currency) != 3 || rl_currency_exponent(currency) < 0)
		return rl_error_set(RL_EINVALID, "tiers: '%.8s' is not a currency",
				    currency ? currency : "");
	snprintf(t->currency, sizeof(t->currency), "%s", currency);
	while (*p) {
		const char *eq = strchr(p, '='), *end = strchr(p, ';');
		char *num_end;
		long long v;
		if (!end)
			end = p + strlen(p);
		if (t->n == MK_MAX_TIERS)
			return rl_error_set(RL_EINVALID, "tiers: more than %d levels", MK_MAX_TIERS);
		if (!eq || eq > end || !mk_tier_name_ok(p, (size_t)(eq - p)))
			return rl_error_set(RL_EINVALID, "tiers: '%.*s' is not NAME=MIN (a name of "
					    "letters, digits, '-' or '_', at most %d)",
					    (int)(end - p > 40 ? 40 : end - p), p, MK_TIER_NAME_BYTES);
		v = strtoll(eq + 1, &num_end, 10);
		if (num_end != end || eq + 1 == end || v < 0 || eq[1] == '-' || eq[1] == '+')
			return rl_error_set(RL_EINVALID, "tiers: the minimum of '%.*s' is not a "
					    "whole number >= 0", (int)(eq - p), p);
		memcpy(t->name[t->n], p, (size_t)(eq - p));
		t->name[t->n][eq - p] = '\0';
		t->min[t->n] = v;
		for (k = 0; k < t->n; k++) {
			if (strcasecmp(t->name[k], t->name[t->n]) == 0)
				return rl_error_set(RL_EINVALID, "tiers: '%s' is named twice",
						    t->name[t->n]);
			if (t->min[k] == v)
				return rl_error_set(RL_EINVALID, "tiers: '%s' and '%s' have the same "
						    "minimum", t->name[k], t->name[t->n]);
		}
		t->n++;
		p = *end ? end + 1 : end;
	}
	if (t->n == 0)
		return rl_error_set(RL_EINVALID, "tiers: no levels");
	/* highest minimum first (insertion sort of at most 8) */
	for (i = 1; i < t->n; i++)
		for (k = i; k > 0 && t->min[k - 1] < t->min[k]; k--) {
			char tmp[MK_TIER_NAME_BYTES + 1];
			int64_t m = t->min[k];
			memcpy(tmp, t->name[k], sizeof(tmp));
			memcpy(t->name[k], t->name[k - 1], sizeof(tmp));
			memcpy(t->name[k - 1], tmp, sizeof(tmp));
			t->min[k] = t->min[k - 1];
			t->min[k - 1] = m;
		}
	for (i = 0; i < t->n; i++)
		t->names[i] = t->name[i];
	return RL_OK;
}

int mk_tiers_load(rl_store *s, struct mk_tiers *t)
{
	sqlite3_stmt *st;
	int rc, error;

	if ((error = rl_store_prepare(s, "SELECT levels, currency FROM tier_config WHERE id = ?1"
				      " AND deleted = 0", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, MK_TIER_CONFIG_ID, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		error = mk_tiers_parse(t, cli_col(st, 0), cli_col(st, 1));
	else if (rc == SQLITE_DONE)
		error = rl_error_set(RL_ENOTFOUND, "no tier configuration (run 'relasi tiers config')");
	else
		error = rl_store_error(s, "reading the tier configuration");
	sqlite3_reset(st);
	return error;
}


static int tier_of(const struct mk_tiers *t, int64_t total)
{
	size_t k;

	for (k = 0; k < t->n; k++)
		/* total >= 6 x MIN, exactly (no rounded average) */
		if (t->min[k] <= INT64_MAX / 6 && total >= 6 * t->min[k])
			return (int)k;
	return -1;
}

int mk_tiers_compute(rl_store *s, const struct mk_tiers *t, const char *month,
		     struct mk_tier_row **out, size_t *n)
{
	sqlite3_stmt *st;
	struct mk_tier_row *rows = NULL;
	char m6[8], m7[8], m1[8], from[11], to[11], pfrom[11], pto[11];
	size_t cap = 0, count = 0;
	int rc, error;

	*out = NULL;
	*n = 0;
	mk_month_add(m6, month, -6);
	mk_month_add(m7, month, -7);
	mk_month_add(m1, month, -1);
	snprintf(from, sizeof(from), "%s-01", m6);
	snprintf(to, sizeof(to), "%s-01", month);       /* exclusive */
	snprintf(pfrom, sizeof(pfrom), "%s-01", m7);
	snprintf(pto, sizeof(pto), "%s-01", m1);
	/* One pass over the won deals of the seven months for both windows. */
	if ((error = rl_store_prepare(s,
	     "SELECT a.id, coalesce(w.total, 0), coalesce(w.prev, 0) FROM accounts a LEFT JOIN ("
	     " SELECT x.account_id AS account_id,"
	     "  sum(CASE WHEN x.day >= ?1 THEN x.amount END) AS total,"
	     "  sum(CASE WHEN x.day < ?5 THEN x.amount END) AS prev"
	     " FROM (SELECT d.account_id AS account_id, coalesce(d.amount, 0) AS amount,"
	     "  " RP_CLOSED_DAY " AS day FROM deals d"
	     "  JOIN stages st ON st.id = d.stage_id AND st.kind = 'won'"
	     "  WHERE d.deleted = 0 AND d.currency = ?3) x"
	     " WHERE x.day >= ?4 AND x.day < ?2 GROUP BY x.account_id) w ON w.account_id = a.id"
	     " WHERE a.deleted = 0 ORDER BY a.id", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, to, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, t->currency, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, pfrom, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, pto, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct mk_tier_row *x;
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			struct mk_tier_row *nr = realloc(rows, ncap * sizeof(*nr));
			if (!nr) {
				error = rl_error_set(RL_ENOMEM, "out of memory");
				goto cleanup;
			}
			rows = nr;
			cap = ncap;
		}
		x = &rows[count++];
		snprintf(x->account, sizeof(x->account), "%s", cli_col(st, 0));
		x->total = sqlite3_column_int64(st, 1);
		x->total_prev = sqlite3_column_int64(st, 2);
		x->tier = tier_of(t, x->total);
		x->tier_prev = tier_of(t, x->total_prev);
	}
	if (rc != SQLITE_DONE) {
		error = rp_sum_error(s, "reading won deals");
		goto cleanup;
	}
	*out = rows;
	*n = count;
	rows = NULL;
	error = RL_OK;
cleanup:
	sqlite3_reset(st);
	free(rows);
	return error;
}

/* Months since year 0 of "YYYY-MM" (the text is the query's own substr of
 * a valid day; anything shorter counts as month 0 and falls outside). */
static long month_number(const char *m)
{
	if (strlen(m) < 7)
		return 0;
	return ((m[0] - '0') * 1000L + (m[1] - '0') * 100 + (m[2] - '0') * 10 + (m[3] - '0')) *
	       12 + (m[5] - '0') * 10 + (m[6] - '0') - 1;
}

/* Count one account into a month's tallies (mk_tiers_count, _months). */
static void count_one(const struct mk_tiers *t, int tier, int tier_prev, int64_t *count,
		      int64_t *up, int64_t *down)
{
	size_t slot = tier < 0 ? t->n : (size_t)tier;
	int b = mk_tier_rank(t, tier_prev), a = mk_tier_rank(t, tier);

	count[slot]++;
	if (a > b)
		up[slot]++;
	else if (a < b)
		down[slot]++;
}

int mk_tiers_count_months(rl_store *s, const struct mk_tiers *t, const char *first, size_t nm,
			  int64_t (*count)[MK_MAX_TIERS + 1], int64_t (*up)[MK_MAX_TIERS + 1],
			  int64_t (*down)[MK_MAX_TIERS + 1])
{
	sqlite3_stmt *st;
	int64_t *won = NULL;            /* the current account's won amount per month */
	char start[8], end[8], from[11], to[11], account[RL_ID_BUFSZ] = "";
	size_t span = nm + 7, i, k;
	int rc, error, have = 0;

	if (nm == 0 || nm > MK_MAX_MONTHS)
		return rl_error_set(RL_EINVALID, "a run of %zu months (1 to %d)", nm, MK_MAX_MONTHS);
	for (i = 0; i < nm; i++)
		for (k = 0; k <= MK_MAX_TIERS; k++)
			count[i][k] = up[i][k] = down[i][k] = 0;
	/* month index j of won[] is start + j; month i of the run is won[i + 7] */
	mk_month_add(start, first, -7);
	mk_month_add(end, first, (int)nm);
	snprintf(from, sizeof(from), "%s-01", start);
	snprintf(to, sizeof(to), "%s-01", end);         /* exclusive */
	if (!(won = calloc(span, sizeof(*won))))
		return rl_error_set(RL_ENOMEM, "out of memory");
	if ((error = rl_store_prepare(s,
	     "SELECT a.id, w.month, w.amount FROM accounts a LEFT JOIN ("
	     " SELECT x.account_id AS account_id, substr(x.day, 1, 7) AS month,"
	     "  sum(x.amount) AS amount"
	     " FROM (SELECT d.account_id AS account_id, coalesce(d.amount, 0) AS amount,"
	     "  " RP_CLOSED_DAY " AS day FROM deals d"
	     "  JOIN stages st ON st.id = d.stage_id AND st.kind = 'won'"
	     "  WHERE d.deleted = 0 AND d.currency = ?3) x"
	     " WHERE x.day >= ?1 AND x.day < ?2 GROUP BY 1, 2) w ON w.account_id = a.id"
	     " WHERE a.deleted = 0 ORDER BY a.id", &st)) < 0)
		goto cleanup;
	sqlite3_bind_text(st, 1, from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, to, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, t->currency, -1, SQLITE_STATIC);
	for (;;) {
		const char *id;
		rc = sqlite3_step(st);
		id = rc == SQLITE_ROW ? cli_col(st, 0) : NULL;
		if (have && (!id || strcmp(id, account) != 0)) {
			/* the account is complete: its tier in each month of the run */
			for (i = 0; i < nm; i++) {
				int64_t total = 0, prev = 0;
				for (k = i + 1; k <= i + 6 && error >= 0; k++)
					error = rp_money_add(&total, won[k], "tiers", t->currency);
				for (k = i; k <= i + 5 && error >= 0; k++)
					error = rp_money_add(&prev, won[k], "tiers", t->currency);
				if (error < 0)
					goto done;
				count_one(t, tier_of(t, total), tier_of(t, prev), count[i], up[i],
					  down[i]);
			}
			memset(won, 0, span * sizeof(*won));
			have = 0;
		}
		if (!id)
			break;
		snprintf(account, sizeof(account), "%s", id);
		have = 1;
		if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
			/* a day the query kept is in [from, to): an index in 0..span-1 */
			long j = month_number(cli_col(st, 1)) - month_number(start);
			if (j >= 0 && j < (long)span &&
			    (error = rp_money_add(&won[j], sqlite3_column_int64(st, 2), "tiers",
						  t->currency)) < 0)
				goto done;
		}
	}
	if (rc != SQLITE_DONE)
		error = rp_sum_error(s, "reading won deals");
done:
	sqlite3_reset(st);
cleanup:
	free(won);
	return error;
}

int mk_tier_rank(const struct mk_tiers *t, int tier)
{
	return tier < 0 ? 0 : (int)t->n - tier;
}

void mk_tiers_count(const struct mk_tiers *t, const struct mk_tier_row *rows, size_t n,
		    int64_t count[MK_MAX_TIERS + 1], int64_t up[MK_MAX_TIERS + 1],
		    int64_t down[MK_MAX_TIERS + 1])
{
	size_t i;

	for (i = 0; i <= MK_MAX_TIERS; i++)
		count[i] = up[i] = down[i] = 0;
	for (i = 0; i < n; i++)
		count_one(t, rows[i].tier, rows[i].tier_prev, count, up, down);
}
