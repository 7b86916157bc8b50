/*
 * cmd_campaign.c — campaigns made from saved segments:
 *
 *   relasi campaign create NAME --segment SEG [--holdout PCT] [--seed N]
 *   relasi campaign respond CAMPAIGN ACCOUNT|CONTACT [--kind K] [--outcome T]
 *   relasi campaign report CAMPAIGN | list | show CAMPAIGN
 *
 * Members are frozen at creation: the segment's rule is evaluated once
 * (segment_members.c) and every customer it selects becomes a synced
 * campaign_members row, so a campaign measures the same customers on every
 * device whatever changes later.
 *
 * Hold-out (reproducible from the seed; docs/marketing.md): every member's
 * key is splitmix64(seed XOR fnv1a64(account id as 32 hex characters));
 * members are ordered by (key, id) and the first round(n x PCT / 100)
 * (half up) form the hold-out group. The same members and seed always give
 * the same group, on any device; the seed is stored with the campaign (the
 * default seed comes from the clock and is printed).
 *
 * A response is an ordinary activity (kind email by default) whose
 * campaign_id names the campaign, so it syncs, shows in the customer's
 * history and counts in the activity report like any other contact.
 *
 * Report: per group (target, holdout) and currency — members, members who
 * responded, members who bought (a won deal closed at or after the start
 * and not after now), won deals and their revenue, revenue per member
 * (rounded half up); and per currency the difference target - holdout. A
 * customer listed twice (a customer merge moved a membership onto one
 * already there) counts once, in the target group if either row is.
 */
#include "marketing.h"

#include <stdlib.h>
#include <string.h>

#include "relasi/limits.h"
#include "relasi/valid.h"

/* The range of a whole-number field typed in (relasi/record.h, RL_FT_INT):
 * a billion seeds are plenty to draw different hold-outs. */
#define CAMPAIGN_MAX_SEED 1000000000LL
/* A hold-out above 90% leaves too few members to measure anything. */
#define CAMPAIGN_MAX_HOLDOUT 90

static uint64_t fnv1a64(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

struct member {
	char id[RL_ID_BUFSZ];
	uint64_t key;
	int holdout;
};

static int cmp_member(const void *a, const void *b)
{
	const struct member *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* ---- create ---------------------------------------------------------------------- */

struct create_args {
	const char *name;
	char segment[RL_ID_BUFSZ];
	char *rule;
	long holdout;
	long long seed;
	struct member *members;
	size_t n, nhold;
	char id[RL_ID_BUFSZ];
	char now_iso[21];
};

static int do_create(struct cli_ctx *ctx, void *arg)
{
	struct create_args *c = arg;
	const struct rl_table *t = rl_model_table("campaigns");
	char hold[8], seed[24], mid[RL_ID_BUFSZ];
	struct rl_fieldval vals[5];
	sqlite3_stmt *st;
	size_t i;
	int error;

	snprintf(hold, sizeof(hold), "%ld", c->holdout);
	snprintf(seed, sizeof(seed), "%lld", c->seed);
	vals[0].field = "name"; vals[0].text = c->name;
	vals[1].field = "segment_id"; vals[1].text = c->segment;
	vals[2].field = "rule"; vals[2].text = c->rule;
	vals[3].field = "holdout"; vals[3].text = hold;
	vals[4].field = "seed"; vals[4].text = seed;
	if ((error = mk_id_by_name(ctx->store, "campaigns", c->name, mid)) < 0)
		return error;
	if (mid[0])
		return rl_error_set(RL_EINVALID, "there is already a campaign named '%s'", c->name);
	if ((error = rl_record_create(ctx->store, t, vals, 5, c->id)) < 0 ||
	    (error = rl_record_set_raw_text(ctx->store, t, c->id, "started_at", c->now_iso)) < 0)
		return error;
	if ((error = rl_store_prepare(ctx->store,
	     "INSERT INTO campaign_members(id, campaign_id, account_id, holdout, owner_id,"
	     " created_at, deleted) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)", &st)) < 0)
		return error;
	for (i = 0; i < c->n; i++) {
		if ((error = rl_store_new_id(ctx->store, mid)) < 0)
			return error;
		sqlite3_bind_text(st, 1, mid, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, c->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, c->members[i].id, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 4, c->members[i].holdout);
		if (rl_store_user_id(ctx->store)[0])
			sqlite3_bind_text(st, 5, rl_store_user_id(ctx->store), -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 5);
		sqlite3_bind_text(st, 6, c->now_iso, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			error = rl_store_error(ctx->store, "adding campaign members");
			sqlite3_reset(st);
			return error;
		}
		sqlite3_reset(st);
	}
	return RL_OK;
}

static int cmd_campaign_create(struct cli_ctx *ctx, struct cli_args *a)
{
	struct create_args c;
	sqlite3_stmt *st;
	char (*ids)[RL_ID_BUFSZ] = NULL;
	const char *hold = cli_get(a, "holdout"), *seed = cli_get(a, "seed");
	char *end;
	size_t i;
	int error;

	memset(&c, 0, sizeof(c));
	c.name = a->pos[0];
	if (!*c.name || strlen(c.name) > RL_MAX_NAME_BYTES)
		return rl_error_set(RL_EUSAGE, "give a campaign name of 1 to %d bytes",
				    RL_MAX_NAME_BYTES);
	if (hold) {
		c.holdout = strtol(hold, &end, 10);
		if (end == hold || *end || c.holdout < 0 || c.holdout > CAMPAIGN_MAX_HOLDOUT)
			return rl_error_set(RL_EUSAGE, "--holdout: '%.32s' is not a percentage 0..%d",
					    hold, CAMPAIGN_MAX_HOLDOUT);
	}
	rl_time_format_utc(c.now_iso, rl_store_now_ms(ctx->store) / 1000);
	c.seed = rl_store_now_ms(ctx->store) % (CAMPAIGN_MAX_SEED + 1);
	if (seed) {
		c.seed = strtoll(seed, &end, 10);
		if (end == seed || *end || *seed == '-' || *seed == '+' || c.seed < 0 ||
		    c.seed > CAMPAIGN_MAX_SEED)
			return rl_error_set(RL_EUSAGE, "--seed: '%.32s' is not a whole number "
					    "0..%lld", seed, CAMPAIGN_MAX_SEED);
	}
	if (!cli_get(a, "segment"))
		return rl_error_set(RL_EUSAGE, "say which customers with --segment SEGMENT");
	if ((error = rl_record_resolve(ctx->store, rl_model_table("segments"), cli_get(a, "segment"),
				       c.segment)) < 0)
		return error;
	if ((error = rl_store_prepare(ctx->store, "SELECT rule FROM segments WHERE id = ?1",
				      &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, c.segment, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && !(c.rule = strdup(cli_col(st, 0))))
		error = rl_error_set(RL_ENOMEM, "out of memory");
	sqlite3_reset(st);
	if (error < 0)
		return error;
	if (!c.rule)
		return rl_error_set(RL_ENOTFOUND, "segment %s has no rule", c.segment);
	if ((error = mk_segment_members(ctx->store, c.rule, &ids, &c.n)) < 0) {
		rl_error_prefix("segment '%s'", cli_get(a, "segment"));
		goto cleanup;
	}
	if (c.n == 0) {
		error = rl_error_set(RL_EINVALID, "segment '%s' selects no customers today: nothing "
				     "to campaign to", cli_get(a, "segment"));
		goto cleanup;
	}
	if (!(c.members = calloc(c.n, sizeof(*c.members)))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < c.n; i++) {
		snprintf(c.members[i].id, RL_ID_BUFSZ, "%s", ids[i]);
		c.members[i].key = splitmix64((uint64_t)c.seed ^ fnv1a64(ids[i]));
	}
	qsort(c.members, c.n, sizeof(*c.members), cmp_member);
	c.nhold = ((uint64_t)c.n * (uint64_t)c.holdout + 50) / 100;
	for (i = 0; i < c.nhold; i++)
		c.members[i].holdout = 1;
	if ((error = cli_write(ctx, do_create, &c)) < 0)
		goto cleanup;
	if (ctx->json) {
		char sid[RL_ID_BUFSZ];
		json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s}", "id", c.id,
				      "short_id", cli_short_id(ctx, "campaigns", c.id, sid), "name",
				      c.name, "members", (json_int_t)c.n, "holdout_members",
				      (json_int_t)c.nhold, "holdout", (json_int_t)c.holdout, "seed",
				      (json_int_t)c.seed, "started_at", c.now_iso);
		if (!o)
			error = rl_error_set(RL_ENOMEM, "out of memory");
		else
			error = cli_print_json(o);
		goto cleanup;
	}
	printf("campaign '%s': %zu member%s, %zu in the hold-out (%ld%%, seed %lld)\n", c.name, c.n,
	       c.n == 1 ? "" : "s", c.nhold, c.holdout, c.seed);
cleanup:
	free(ids);
	free(c.rule);
	free(c.members);
	return error;
}

/* ---- respond ------------------------------------------------------------------- */

struct respond_args {
	const struct cli_args *a;
	char campaign[RL_ID_BUFSZ], account[RL_ID_BUFSZ], contact[RL_ID_BUFSZ];
	char activity[RL_ID_BUFSZ];
};

static int do_respond(struct cli_ctx *ctx, void *arg)
{
	struct respond_args *v = arg;
	const struct cli_args *a = v->a;
	struct rl_fieldval vals[7];
	size_t n = 0;

	vals[n].field = "kind"; vals[n++].text = cli_get(a, "kind") ? cli_get(a, "kind") : "email";
	vals[n].field = "account_id"; vals[n++].text = v->account;
	vals[n].field = "campaign_id"; vals[n++].text = v->campaign;
	vals[n].field = "outcome";
	vals[n++].text = cli_get(a, "outcome") ? cli_get(a, "outcome") : "responded";
	if (v->contact[0]) { vals[n].field = "contact_id"; vals[n++].text = v->contact; }
	if (cli_get(a, "notes")) { vals[n].field = "notes"; vals[n++].text = cli_get(a, "notes"); }
	if (cli_get(a, "at")) { vals[n].field = "at"; vals[n++].text = cli_get(a, "at"); }
	return rl_record_create(ctx->store, rl_model_table("activities"), vals, n, v->activity);
}

static int cmd_campaign_respond(struct cli_ctx *ctx, struct cli_args *a)
{
	struct respond_args v;
	sqlite3_stmt *st;
	char sid[RL_ID_BUFSZ];
	int error, rc;

	memset(&v, 0, sizeof(v));
	v.a = a;
	if ((error = rl_record_resolve(ctx->store, rl_model_table("campaigns"), a->pos[0],
				       v.campaign)) < 0)
		return error;
	/* A customer, else one of its contacts (the response is the customer's). */
	error = rl_record_resolve(ctx->store, rl_model_table("accounts"), a->pos[1], v.account);
	if (error == RL_ENOTFOUND) {
		if ((error = rl_record_resolve(ctx->store, rl_model_table("contacts"), a->pos[1],
					       v.contact)) == RL_ENOTFOUND)
			return rl_error_set(RL_ENOTFOUND, "no customer or contact '%s'", a->pos[1]);
		if (error < 0)
			return error;
		if ((error = rl_store_prepare(ctx->store, "SELECT account_id FROM contacts"
					      " WHERE id = ?1", &st)) < 0)
			return error;
		sqlite3_bind_text(st, 1, v.contact, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			snprintf(v.account, sizeof(v.account), "%s", cli_col(st, 0));
		sqlite3_reset(st);
		if (!v.account[0])
			return rl_error_set(RL_EINVALID, "contact '%s' belongs to no customer",
					    a->pos[1]);
	} else if (error < 0) {
		return error;
	}
	if ((error = rl_store_prepare(ctx->store, "SELECT 1 FROM campaign_members WHERE"
				      " campaign_id = ?1 AND account_id = ?2 AND deleted = 0",
				      &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, v.campaign, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, v.account, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return rl_error_set(RL_EINVALID, "'%s' is not a member of campaign '%s'", a->pos[1],
				    a->pos[0]);
	if (rc != SQLITE_ROW)
		return rl_store_error(ctx->store, "reading campaign members");
	if ((error = cli_write(ctx, do_respond, &v)) < 0)
		return error;
	if (ctx->json)
		return cli_print_json(json_pack("{s:s, s:s}", "id", v.activity, "short_id",
						cli_short_id(ctx, "activities", v.activity, sid)));
	printf("response %s recorded\n", cli_short_id(ctx, "activities", v.activity, sid));
	return RL_OK;
}

/* ---- report ------------------------------------------------------------------- */

static const struct rp_col report_cols[] = {
	{ "group", RP_TEXT, 0, NULL, 0 },
	{ "members", RP_INT, 0, NULL, 0 },
	{ "responded", RP_INT, 0, NULL, 0 },
	{ "response_rate", RP_RATIO, 0, NULL, 0 },
	{ "currency", RP_TEXT, 0, NULL, 0 },
	{ "buyers", RP_INT, 0, NULL, 0 },
	{ "conversion", RP_RATIO, 0, NULL, 0 },
	{ "won_deals", RP_INT, 0, NULL, 0 },
	{ "revenue", RP_MONEY, 4, NULL, 0 },
	{ "revenue_per_member", RP_MONEY, 4, NULL, 0 },
};
static const struct rp_col diff_cols[] = {
	{ "currency", RP_TEXT, 0, NULL, 0 },
	{ "response_rate_diff", RP_RATIO, 0, NULL, 0 },
	{ "conversion_diff", RP_RATIO, 0, NULL, 0 },
	{ "revenue_per_member_diff", RP_MONEY, 0, NULL, 0 },
};

/* One member per customer: the target group wins when listed in both.
 * A member whose customer was deleted later stays one, with its outcomes
 * (intent to treat: leaving out whoever was deleted since the start would
 * compare groups that no longer came from the same random draw). Its
 * deleted deals and responses count nowhere, as everywhere; `campaign
 * show` marks it "(deleted)", as the record lists do. */
#define MEMBERS "(SELECT account_id, min(holdout) AS holdout FROM campaign_members" \
	" WHERE campaign_id = ?1 AND deleted = 0 GROUP BY account_id)"
#define CLOSED_TIME "coalesce(d.closed_at, d.expected_close || 'T00:00:00Z', d.created_at)"

struct group_sales {
	char currency[4];
	int64_t buyers[2], deals[2], revenue[2];
};

/* revenue / members rounded half up (toward +infinity at .5, as the
 * weighted amounts are: -2.5 minor units is -2, not -3), from the floored
 * quotient and its remainder: revenue + members / 2 overflows int64 for a
 * sum near its end, the quotient never does. */
static int64_t per_member(int64_t revenue, int64_t members)
{
	int64_t q, rem;

	if (members <= 0)
		return 0;
	q = revenue / members;
	rem = revenue % members;        /* |rem| < members */
	if (rem < 0) {                  /* floor: q > INT64_MIN here, as rem != 0 */
		q--;
		rem += members;
	}
	if (rem >= members - rem)       /* rem / members >= 1/2, without doubling */
		q++;
	return q;
}

static int cmd_campaign_report(struct cli_ctx *ctx, struct cli_args *a)
{
	struct rp_result r = { 0 };
	struct group_sales *sales = NULL;
	sqlite3_stmt *st;
	char id[RL_ID_BUFSZ], started[21], now_iso[21];
	int64_t members[2] = { 0, 0 }, responded[2] = { 0, 0 };
	size_t nsales = 0, cap = 0, i, g;
	enum rp_format fmt = ctx->json ? RP_FMT_JSON : RP_FMT_TEXT;
	int rc, error;

	rl_time_format_utc(now_iso, rl_store_now_ms(ctx->store) / 1000);
	r.name = "campaign";
	snprintf(r.as_of, sizeof(r.as_of), "%s", now_iso);
	if (!(r.filters = json_object()))
		return rl_error_set(RL_ENOMEM, "out of memory");
	if (cli_get(a, "csv")) {
		if (ctx->json) {
			error = rl_error_set(RL_EUSAGE, "--csv and --json: choose one output");
			goto cleanup;
		}
		fmt = RP_FMT_CSV;
	}
	if ((error = rl_record_resolve(ctx->store, rl_model_table("campaigns"), a->pos[0], id)) < 0 ||
	    (error = rl_store_prepare(ctx->store, "SELECT name, started_at, holdout, seed"
				      " FROM campaigns WHERE id = ?1", &st)) < 0)
		goto cleanup;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(started, sizeof(started), "%s", cli_col(st, 1));
		if (json_object_set_new(r.filters, "campaign", json_string(cli_col(st, 0))) < 0 ||
		    json_object_set_new(r.filters, "started_at", json_string(started)) < 0 ||
		    json_object_set_new(r.filters, "holdout",
					json_integer(sqlite3_column_int64(st, 2))) < 0 ||
		    json_object_set_new(r.filters, "seed", json_integer(sqlite3_column_int64(st, 3))) < 0)
			error = rl_error_set(RL_ENOMEM, "out of memory");
	} else {
		started[0] = '\0';
	}
	sqlite3_reset(st);
	if (error < 0)
		goto cleanup;

	if ((error = rl_store_prepare(ctx->store,
	     "SELECT m.holdout, count(*), sum(EXISTS (SELECT 1 FROM activities x"
	     "  WHERE x.campaign_id = ?1 AND x.account_id = m.account_id AND x.deleted = 0))"
	     " FROM " MEMBERS " m GROUP BY m.holdout", &st)) < 0)
		goto cleanup;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		g = sqlite3_column_int(st, 0) ? 1 : 0;
		members[g] = sqlite3_column_int64(st, 1);
		responded[g] = sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		error = rl_store_error(ctx->store, "reading campaign members");
		goto cleanup;
	}

	if ((error = rl_store_prepare(ctx->store,
	     "SELECT d.currency, m.holdout, count(DISTINCT m.account_id), count(*),"
	     " coalesce(sum(d.amount), 0)"
	     " FROM " MEMBERS " m JOIN deals d ON d.account_id = m.account_id AND d.deleted = 0"
	     " JOIN stages st ON st.id = d.stage_id AND st.kind = 'won'"
	     " WHERE " CLOSED_TIME " >= ?2 AND " CLOSED_TIME " <= ?3"
	     " GROUP BY d.currency, m.holdout ORDER BY d.currency, m.holdout", &st)) < 0)
		goto cleanup;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, started, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, now_iso, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *cur = cli_col(st, 0);
		if (!nsales || strcmp(sales[nsales - 1].currency, cur) != 0) {
			if (nsales == cap) {
				size_t ncap = cap ? cap * 2 : 4;
				struct group_sales *ns = realloc(sales, ncap * sizeof(*ns));
				if (!ns) {
					error = rl_error_set(RL_ENOMEM, "out of memory");
					break;
				}
				sales = ns;
				cap = ncap;
			}
			memset(&sales[nsales], 0, sizeof(sales[nsales]));
			snprintf(sales[nsales].currency, sizeof(sales[nsales].currency), "%s", cur);
			nsales++;
		}
		g = sqlite3_column_int(st, 1) ? 1 : 0;
		sales[nsales - 1].buyers[g] = sqlite3_column_int64(st, 2);
		sales[nsales - 1].deals[g] = sqlite3_column_int64(st, 3);
		sales[nsales - 1].revenue[g] = sqlite3_column_int64(st, 4);
	}
	if (error >= 0 && rc != SQLITE_DONE)
		error = rp_sum_error(ctx->store, "reading won deals");
	sqlite3_reset(st);
	if (error < 0)
		goto cleanup;

	rp_table_init(&r.rows, report_cols, sizeof(report_cols) / sizeof(report_cols[0]));
	rp_table_init(&r.totals, diff_cols, sizeof(diff_cols) / sizeof(diff_cols[0]));
	for (g = 0; g < 2; g++) {
		if (members[g] == 0)
			continue;
		for (i = 0; i < (nsales ? nsales : 1); i++) {
			struct rp_cell *row = rp_row_add(&r.rows);
			const struct group_sales *x = nsales ? &sales[i] : NULL;
			if (!row || rp_set_text(row, 0, g ? "holdout" : "target") < 0 ||
			    rp_set_text(row, 4, x ? x->currency : NULL) < 0) {
				error = RL_ENOMEM;
				goto cleanup;
			}
			rp_set_int(row, 1, members[g]);
			rp_set_int(row, 2, responded[g]);
			rp_set_ratio(row, 3, (double)responded[g] / (double)members[g]);
			rp_set_int(row, 5, x ? x->buyers[g] : 0);
			rp_set_ratio(row, 6, x ? (double)x->buyers[g] / (double)members[g] : 0.0);
			rp_set_int(row, 7, x ? x->deals[g] : 0);
			if (x) {
				rp_set_int(row, 8, x->revenue[g]);
				rp_set_int(row, 9, per_member(x->revenue[g], members[g]));
			}
		}
	}
	if (members[0] && members[1]) {
		for (i = 0; i < (nsales ? nsales : 1); i++) {
			struct rp_cell *row = rp_row_add(&r.totals);
			const struct group_sales *x = nsales ? &sales[i] : NULL;
			if (!row || rp_set_text(row, 0, x ? x->currency : NULL) < 0) {
				error = RL_ENOMEM;
				goto cleanup;
			}
			rp_set_ratio(row, 1, (double)responded[0] / (double)members[0] -
					     (double)responded[1] / (double)members[1]);
			rp_set_ratio(row, 2, x ? (double)x->buyers[0] / (double)members[0] -
						 (double)x->buyers[1] / (double)members[1] : 0.0);
			if (x) {
				int64_t diff;
				/* the two groups' figures are each in int64; their
				 * difference need not be (a target and a hold-out of
				 * opposite signs near the ends) */
				if (__builtin_sub_overflow(per_member(x->revenue[0], members[0]),
							   per_member(x->revenue[1], members[1]),
							   &diff)) {
					error = rl_error_set(RL_ETOOBIG,
							     "campaign report: the %s revenue per "
							     "member difference does not fit in "
							     "64-bit minor units", x->currency);
					goto cleanup;
				}
				rp_set_int(row, 3, diff);
			}
		}
	}
	error = rp_emit(ctx, &r, fmt);
cleanup:
	free(sales);
	rp_result_free(&r);
	return error;
}

/* ---- list and show ----------------------------------------------------------------- */

static const struct rp_col list_cols[] = {
	{ "id", RP_TEXT, 0, "campaigns", 0 },
	{ "name", RP_TEXT, 0, NULL, 0 },
	{ "segment", RP_TEXT, 0, NULL, 0 },
	{ "members", RP_INT, 0, NULL, 0 },
	{ "holdout", RP_INT, 0, NULL, 0 },
	{ "seed", RP_INT, 0, NULL, 1 },
	{ "started_at", RP_TEXT, 0, NULL, 0 },
};
static const struct rp_col show_cols[] = {
	{ "account", RP_TEXT, 0, "accounts", 0 },
	{ "name", RP_TEXT, 0, NULL, 0 },
	{ "group", RP_TEXT, 0, NULL, 0 },
	{ "responses", RP_INT, 0, NULL, 0 },
	{ "account_deleted", RP_INT, 0, NULL, 1 },
};

static int run_table(struct cli_ctx *ctx, struct cli_args *a, struct rp_result *r,
		     sqlite3_stmt *st)
{
	enum rp_format fmt = ctx->json ? RP_FMT_JSON : RP_FMT_TEXT;
	struct rp_cell *row;
	size_t c;
	int rc, error = RL_OK;

	if (cli_get(a, "csv")) {
		if (ctx->json)
			return rl_error_set(RL_EUSAGE, "--csv and --json: choose one output");
		fmt = RP_FMT_CSV;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (!(row = rp_row_add(&r->rows))) {
			error = RL_ENOMEM;
			break;
		}
		for (c = 0; c < r->rows.ncols && error >= 0; c++)
			error = rp_set_column(row, c, &r->rows, st, (int)c);
		if (error < 0)
			break;
	}
	if (error >= 0 && rc != SQLITE_DONE)
		error = rl_store_error(ctx->store, "reading campaigns");
	sqlite3_reset(st);
	return error < 0 ? error : rp_emit(ctx, r, fmt);
}

static int cmd_campaign_list(struct cli_ctx *ctx, struct cli_args *a)
{
	struct rp_result r = { 0 };
	sqlite3_stmt *st;
	int error;

	r.name = "campaigns";
	rl_time_format_utc(r.as_of, rl_store_now_ms(ctx->store) / 1000);
	if (!(r.filters = json_object()))
		return rl_error_set(RL_ENOMEM, "out of memory");
	rp_table_init(&r.rows, list_cols, sizeof(list_cols) / sizeof(list_cols[0]));
	if ((error = rl_store_prepare(ctx->store,
	     "SELECT c.id, c.name, (SELECT s.name FROM segments s WHERE s.id = c.segment_id),"
	     " (SELECT count(DISTINCT m.account_id) FROM campaign_members m"
	     "  WHERE m.campaign_id = c.id AND m.deleted = 0), c.holdout, c.seed, c.started_at"
	     " FROM campaigns c WHERE c.deleted = 0 ORDER BY c.started_at, c.id", &st)) >= 0)
		error = run_table(ctx, a, &r, st);
	rp_result_free(&r);
	return error;
}

static int cmd_campaign_show(struct cli_ctx *ctx, struct cli_args *a)
{
	struct rp_result r = { 0 };
	sqlite3_stmt *st;
	char id[RL_ID_BUFSZ];
	int error;

	r.name = "campaign members";
	rl_time_format_utc(r.as_of, rl_store_now_ms(ctx->store) / 1000);
	if (!(r.filters = json_object()))
		return rl_error_set(RL_ENOMEM, "out of memory");
	rp_table_init(&r.rows, show_cols, sizeof(show_cols) / sizeof(show_cols[0]));
	if ((error = rl_record_resolve(ctx->store, rl_model_table("campaigns"), a->pos[0], id)) >= 0 &&
	    (error = json_object_set_new(r.filters, "campaign", json_string(a->pos[0])) < 0
		     ? rl_error_set(RL_ENOMEM, "out of memory") : RL_OK) >= 0 &&
	    (error = rl_store_prepare(ctx->store,
	     "SELECT m.account_id, a.name || CASE WHEN a.deleted THEN ' (deleted)' ELSE '' END,"
	     " CASE WHEN m.holdout THEN 'holdout' ELSE 'target' END,"
	     " (SELECT count(*) FROM activities x WHERE x.campaign_id = ?1"
	     "  AND x.account_id = m.account_id AND x.deleted = 0), coalesce(a.deleted, 0)"
	     " FROM " MEMBERS " m LEFT JOIN accounts a ON a.id = m.account_id"
	     " ORDER BY m.holdout, a.name COLLATE NOCASE, m.account_id", &st)) >= 0) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		error = run_table(ctx, a, &r, st);
	}
	rp_result_free(&r);
	return error;
}

#define CSV_OPT { "csv", 0, NULL, "CSV (RFC 4180) instead of a table", NULL }
#define END_OPT { NULL, 0, NULL, NULL, NULL }

static const struct cli_opt create_opts[] = {
	{ "segment", 1, "SEGMENT", "the saved segment whose customers are the members", NULL },
	{ "holdout", 1, "PCT", "percent of members held out as a control group (0-90)", NULL },
	{ "seed", 1, "N", "seed of the hold-out choice (default from the clock)", NULL },
	END_OPT
};
static const struct cli_opt respond_opts[] = {
	{ "kind", 1, "KIND", "email (default), call, visit or meeting", NULL },
	{ "outcome", 1, "TEXT", "what they answered (default 'responded')", NULL },
	{ "notes", 1, "TEXT", "notes", NULL },
	{ "at", 1, "TIME", "when (default now)", NULL },
	END_OPT
};
static const struct cli_opt table_opts[] = { CSV_OPT, END_OPT };

const struct cli_cmd cli_cmds_campaign[] = {
	{ "campaign create", cmd_campaign_create, "NAME --segment SEGMENT",
	  "freeze a segment's customers as a campaign, with an optional hold-out", create_opts,
	  NULL, CLI_MODEL_NONE, 1, 1, 1 },
	{ "campaign respond", cmd_campaign_respond, "CAMPAIGN ACCOUNT|CONTACT",
	  "record a member's response (an activity naming the campaign)", respond_opts, NULL,
	  CLI_MODEL_NONE, 2, 2, 1 },
	{ "campaign report", cmd_campaign_report, "CAMPAIGN",
	  "members, response rate, deals won and revenue since the start, against the hold-out",
	  table_opts, NULL, CLI_MODEL_NONE, 1, 1, 1 },
	{ "campaign list", cmd_campaign_list, "", "campaigns", table_opts, NULL, CLI_MODEL_NONE,
	  0, 0, 1 },
	{ "campaign show", cmd_campaign_show, "CAMPAIGN", "a campaign's members and their group",
	  table_opts, NULL, CLI_MODEL_NONE, 1, 1, 1 },
	{ NULL, NULL, NULL, NULL, NULL, NULL, CLI_MODEL_NONE, 0, 0, 0 }
};
