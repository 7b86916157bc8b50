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

static int name_ok(const char *s, size_t n)
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
		if (!eq || eq > end || !name_ok(p, (size_t)(eq - p)))
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

#define CLOSED_DAY "substr(coalesce(d.closed_at, d.expected_close || 'T00:00:00Z', d.created_at)," \
	" 1, 10)"

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
	     "  " CLOSED_DAY " AS day FROM deals d"
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
		error = rl_store_error(s, "reading won deals");
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
	for (i = 0; i < n; i++) {
		size_t slot = rows[i].tier < 0 ? t->n : (size_t)rows[i].tier;
		int b = mk_tier_rank(t, rows[i].tier_prev), a = mk_tier_rank(t, rows[i].tier);
		count[slot]++;
		if (a > b)
			up[slot]++;
		else if (a < b)
			down[slot]++;
	}
}
