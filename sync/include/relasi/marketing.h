/*
 * relasi/marketing.h — marketing's figures that both binaries need: RFM
 * scores (sync/src/rfm.c) and customer tiers per month (sync/src/tiers.c).
 * They live in librelasi-sync beside the pipeline reports (relasi/report.h)
 * because the manager's HTML page draws them, and the hub runs that page
 * too (`relasi-hub report html`). The client's marketing commands (segment,
 * tiers, campaign) and the rule language stay in client/ (client/
 * marketing.h); results go through the reports' typed result tables.
 *
 * Errors: RL_OK or a negative RL_E* code with the message set
 * (relasi/error.h): RL_ENOMEM, RL_ESTORE, RL_EINVALID (a tier configuration
 * that does not parse, naming what is wrong).
 */
#ifndef RELASI_MARKETING_H
#define RELASI_MARKETING_H

#include <stdint.h>

#include "relasi/report.h"

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
	int segment;            /* index into mk_rfm_segment_names */
};

/* The RFM segments, in report order; mk_rfm_segment returns an index. */
#define MK_RFM_SEGMENTS 8
extern const char *const mk_rfm_segment_names[MK_RFM_SEGMENTS];

int mk_rfm_segment(int r, int f, int m);

/* Compute into *out (malloc'd, the caller frees it; *n rows, ordered by
 * currency then account).
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

/* 1 when s[0..n) is a tier's name: 1..MK_TIER_NAME_BYTES letters, digits,
 * '-' or '_' (what mk_tiers_parse accepts), else 0. */
int mk_tier_name_ok(const char *s, size_t n);
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
 * spend total / 6 compared without rounding). *out (malloc'd, the caller
 * frees it) ordered by account. */
int mk_tiers_compute(rl_store *s, const struct mk_tiers *t, const char *month,
		     struct mk_tier_row **out, size_t *n);

/* mk_tiers_count for each of nm months from first ("YYYY-MM"; nm in
 * 1..MK_MAX_MONTHS): count[i], up[i], down[i] as mk_tiers_compute and
 * mk_tiers_count give for month first + i, from one pass over the won
 * deals (the HTML report's tier chart; a call per month read them all
 * each time). The arrays are the caller's, nm entries each. RL_OK, or a
 * store error. */
#define MK_MAX_MONTHS 120
int mk_tiers_count_months(rl_store *s, const struct mk_tiers *t, const char *first, size_t nm,
			  int64_t (*count)[MK_MAX_TIERS + 1], int64_t (*up)[MK_MAX_TIERS + 1],
			  int64_t (*down)[MK_MAX_TIERS + 1]);

/* Rank of a tier (an index into t->name, -1: none) for up/down: higher is
 * better; none is below all. */
int mk_tier_rank(const struct mk_tiers *t, int tier);

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

#endif
