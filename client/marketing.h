/*
 * marketing.h — marketing's figures, shared by the commands
 * (client/cmd_marketing.c: segment, tiers; client/cmd_campaign.c) and
 * computed in client/rfm.c (RFM scores), client/tiers.c (tiers per month)
 * and client/segment_members.c (who a rule selects). Output goes through
 * the pipeline reports' typed result tables (report.h).
 */
#ifndef RELASI_CLIENT_MARKETING_H
#define RELASI_CLIENT_MARKETING_H

#include <stdint.h>

#include "report.h"
#include "segment_rule.h"

/* ---- RFM (rfm.c) ----
 *
 * Per account and currency, from won deals whose close day (report.h's
 * close time, as a UTC date) lies in the window [from, to]:
 *   recency   = days from the last close day to `to`
 *   frequency = number of won deals
 *   monetary  = their amounts summed (minor units; no amount counts 0)
 * Each score is 1..5 by quintile among the accounts buying in the same
 * currency (n of them): score = 1 + floor(5 * L / n), L = how many of them
 * are strictly worse (a longer recency, a lower frequency or monetary).
 * Equal values have equal L, so ties always share a score (the lowest
 * their ranks would give); a value gets 5 only when at least four fifths
 * of the accounts are strictly worse (of 4 accounts the best gets 4).
 * Segment from R and FM = (F + M + 1) / 2 (rfm_segment). */
struct mk_rfm {
	char account[RL_ID_BUFSZ];
	char currency[4];
	int64_t recency, frequency, monetary;
	int r, f, m;
	int segment;            /* index into sr_rfm_segments */
};

int mk_rfm_segment(int r, int f, int m);

/* Compute into *out (malloc'd, *n rows, ordered by currency then account).
 * currency NULL: every currency. */
int mk_rfm_compute(rl_store *s, const char *from, const char *to, const char *currency,
		   struct mk_rfm **out, size_t *n);

/* `relasi segment rfm`'s summary of rows (as mk_rfm_compute orders them):
 * per currency a row per segment (accounts, share, deals, revenue, average
 * recency) and a total row; the HTML report's RFM section shows the same. */
int mk_rfm_summary(const struct mk_rfm *rows, size_t n, struct rp_result *r);

/* The window of `--months N` ending on day `to`: the first day of the
 * month N-1 months before to's month. */
void mk_months_window(char from[11], const char to[11], int months);

/* ---- tiers (tiers.c) ---- */

#define MK_MAX_TIERS 8
#define MK_TIER_NAME_BYTES 32
/* The one configuration row (schema/007_marketing.sql). */
#define MK_TIER_CONFIG_ID "00000000000000000000000000000100"

struct mk_tiers {
	size_t n;                                  /* levels, highest first */
	char name[MK_MAX_TIERS][MK_TIER_NAME_BYTES + 1];
	int64_t min[MK_MAX_TIERS];                 /* minor units a month */
	const char *names[MK_MAX_TIERS];           /* -> name[i], for sr_bind_tiers */
	char currency[4];
};

/* Parse "Name=MIN;Name=MIN" (MIN minor units) as stored; sorted highest
 * first. RL_EINVALID naming what is wrong. */
int mk_tiers_parse(struct mk_tiers *t, const char *levels, const char *currency);
int mk_tiers_load(rl_store *s, struct mk_tiers *t);

/* One account's tier in a month. */
struct mk_tier_row {
	char account[RL_ID_BUFSZ];
	int64_t total;          /* won in the six months before, minor units */
	int tier;               /* index into t->name, -1: below every level */
	int64_t total_prev;     /* the same for the month before month */
	int tier_prev;
};

/* Every live account's tier in month ("YYYY-MM"): from its won deals in
 * the config's currency closed in the six calendar months before month.
 * Tier = the highest level with total >= 6 x MIN (the average monthly
 * spend total / 6 compared without rounding). *out ordered by account. */
int mk_tiers_compute(rl_store *s, const struct mk_tiers *t, const char *month,
		     struct mk_tier_row **out, size_t *n);

/* `relasi tiers`'s counts for one month's rows: per level (index t->n:
 * no tier) the accounts in it and how many moved up or down into it since
 * the month before. Shared with the HTML report's tier chart. */
void mk_tiers_count(const struct mk_tiers *t, const struct mk_tier_row *rows, size_t n,
		    int64_t count[MK_MAX_TIERS + 1], int64_t up[MK_MAX_TIERS + 1],
		    int64_t down[MK_MAX_TIERS + 1]);

/* "YYYY-MM" plus delta months. */
void mk_month_add(char out[8], const char *month, int delta);
/* Is s a month "YYYY-MM"? */
int mk_month_valid(const char *s);

/* ---- rule members (segment_members.c) ---- */

/* Live accounts that rule (text) selects today: *ids (malloc'd, n of
 * them, ordered by id). The rule's errors carry their position. */
int mk_segment_members(rl_store *s, const char *rule, char (**ids)[RL_ID_BUFSZ], size_t *n);

#endif
