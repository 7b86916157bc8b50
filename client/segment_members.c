/*
 * segment_members.c — who a saved segment's rule selects: the rule is
 * parsed (segment_rule.c), its tier names checked against the team's
 * configuration, and every live account's facts are read by one fixed,
 * prepared statement and handed to sr_eval. The rule itself never reaches
 * SQL. Facts the rule does not read are not computed: the last visit and
 * last activity columns are CASE-guarded by bound flags (SQLite evaluates
 * only the branch taken), tiers and RFM are computed only when used.
 *
 * "Today" and this month are the store's clock (RELASI_NOW in tests); the
 * tier is this month's (tiers.c), the RFM segment is over the last 12
 * months in any currency (rfm.c, `relasi segment rfm` defaults).
 */
#include "marketing.h"

#include <stdlib.h>
#include <string.h>

#include "relasi/valid.h"

struct acct_bits {
	char account[RL_ID_BUFSZ];
	unsigned bits;
};

static int cmp_bits(const void *a, const void *b)
{
	return strcmp(((const struct acct_bits *)a)->account, ((const struct acct_bits *)b)->account);
}

/* RFM segments per account (a set: one per currency it buys in), sorted
 * by account. */
static int rfm_sets(rl_store *s, const char *today, struct acct_bits **out, size_t *n)
{
	struct mk_rfm *rows = NULL;
	struct acct_bits *b = NULL;
	char from[11];
	size_t count = 0, i, k = 0;
	int error;

	*out = NULL;
	*n = 0;
	mk_months_window(from, today, 12);
	if ((error = mk_rfm_compute(s, from, today, NULL, &rows, &count)) < 0)
		return error;
	if (count && !(b = calloc(count, sizeof(*b)))) {
		free(rows);
		return rl_error_set(RL_ENOMEM, "out of memory");
	}
	for (i = 0; i < count; i++) {
		snprintf(b[i].account, sizeof(b[i].account), "%s", rows[i].account);
		b[i].bits = 1u << rows[i].segment;
	}
	free(rows);
	if (count)
		qsort(b, count, sizeof(*b), cmp_bits);
	for (i = 0; i < count; i++) {
		if (k && strcmp(b[k - 1].account, b[i].account) == 0)
			b[k - 1].bits |= b[i].bits;
		else
			b[k++] = b[i];
	}
	*out = b;
	*n = k;
	return RL_OK;
}

int mk_segment_members(rl_store *s, const char *rule, char (**ids)[RL_ID_BUFSZ], size_t *n)
{
	struct sr_rule *r = NULL;
	struct mk_tiers tiers;
	struct mk_tier_row *trows = NULL;
	struct acct_bits *rfm = NULL;
	char (*out)[RL_ID_BUFSZ] = NULL;
	char today[11], month[8];
	size_t ntiers = 0, nrfm = 0, ti = 0, ri = 0, cap = 0, count = 0;
	int64_t now = rl_store_now_ms(s) / 1000, today_day;
	unsigned needs;
	sqlite3_stmt *st = NULL;
	int rc, error;

	*ids = NULL;
	*n = 0;
	rl_date_of(today, now, 0);
	snprintf(month, sizeof(month), "%.7s", today);
	today_day = sr_day_of(today);
	if ((error = sr_parse(&r, rule, strlen(rule))) < 0)
		return error;
	needs = sr_needs(r);
	if ((error = mk_tiers_load(s, &tiers)) < 0 ||
	    (error = sr_bind_tiers(r, tiers.names, tiers.n)) < 0)
		goto cleanup;
	if ((needs & SR_NEED_TIER) &&
	    (error = mk_tiers_compute(s, &tiers, month, &trows, &ntiers)) < 0)
		goto cleanup;
	if ((needs & SR_NEED_RFM) && (error = rfm_sets(s, today, &rfm, &nrfm)) < 0)
		goto cleanup;
	if ((error = rl_store_prepare(s,
	     "SELECT a.id, a.name, a.industry, a.city, a.region, a.email,"
	     " (SELECT u.name FROM users u WHERE u.id = a.owner_id), a.tags, a.created_at,"
	     " CASE WHEN ?1 THEN (SELECT max(x.at) FROM activities x WHERE x.account_id = a.id"
	     "  AND x.kind = 'visit' AND x.deleted = 0) END,"
	     " CASE WHEN ?2 THEN (SELECT max(x.at) FROM activities x WHERE x.account_id = a.id"
	     "  AND x.deleted = 0) END"
	     " FROM accounts a WHERE a.deleted = 0 ORDER BY a.id", &st)) < 0)
		goto cleanup;
	sqlite3_bind_int(st, 1, (needs & SR_NEED_VISIT) != 0);
	sqlite3_bind_int(st, 2, (needs & SR_NEED_ACTIVITY) != 0);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct sr_facts f;
		const char *id = cli_col(st, 0);
		memset(&f, 0, sizeof(f));
		f.name = (const char *)sqlite3_column_text(st, 1);
		f.industry = (const char *)sqlite3_column_text(st, 2);
		f.city = (const char *)sqlite3_column_text(st, 3);
		f.region = (const char *)sqlite3_column_text(st, 4);
		f.email = (const char *)sqlite3_column_text(st, 5);
		f.owner = (const char *)sqlite3_column_text(st, 6);
		f.tags = (const char *)sqlite3_column_text(st, 7);
		f.created = sr_day_of((const char *)sqlite3_column_text(st, 8));
		f.last_visit = sr_day_of((const char *)sqlite3_column_text(st, 9));
		f.last_activity = sr_day_of((const char *)sqlite3_column_text(st, 10));
		f.tier = -1;
		/* both lists are ordered by account id, like this loop */
		while (ti < ntiers && strcmp(trows[ti].account, id) < 0)
			ti++;
		if (ti < ntiers && strcmp(trows[ti].account, id) == 0)
			f.tier = trows[ti].tier;
		while (ri < nrfm && strcmp(rfm[ri].account, id) < 0)
			ri++;
		if (ri < nrfm && strcmp(rfm[ri].account, id) == 0)
			f.rfm = rfm[ri].bits;
		if (!sr_eval(r, &f, today_day))
			continue;
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			char (*no)[RL_ID_BUFSZ] = realloc(out, ncap * sizeof(*no));
			if (!no) {
				error = rl_error_set(RL_ENOMEM, "out of memory");
				goto cleanup;
			}
			out = no;
			cap = ncap;
		}
		snprintf(out[count++], RL_ID_BUFSZ, "%s", id);
	}
	if (rc != SQLITE_DONE) {
		error = rl_store_error(s, "reading customers");
		goto cleanup;
	}
	*ids = out;
	*n = count;
	out = NULL;
	error = RL_OK;
cleanup:
	if (st)
		sqlite3_reset(st);
	sr_free(r);
	free(trows);
	free(rfm);
	free(out);
	return error;
}
