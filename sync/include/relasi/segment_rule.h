/*
 * segment_rule.h — the rule language of saved segments (`relasi segment
 * save NAME RULE`): a hand-written recursive-descent parser into an AST
 * that is evaluated in C, one customer at a time. A rule is never turned
 * into SQL text: the facts it reads are loaded by fixed, prepared queries
 * (client/segment_members.c) and handed to sr_eval. It lives in the
 * sync library because the hub parses every rule pushed to it or typed
 * into `conflicts resolve --value` (hub/hubstore.c): a broken rule would
 * otherwise reach every device. The hub checks the syntax only: tier names
 * are bound (sr_bind_tiers) by each device against the configured tiers.
 *
 * Grammar (docs/marketing.md; keywords and field names in any case):
 *
 *   rule    = or
 *   or      = and { "or" and }
 *   and     = not { "and" not }
 *   not     = "not" not | "(" rule ")" | test
 *   test    = FIELD op value
 *           | FIELD ["not"] "in" "(" value { "," value } ")"
 *           | FIELD "has" value                    (tags only)
 *           | FIELD "contains" value               (text fields)
 *           | FIELD "is" ["not"] "empty"
 *   op      = "=" | "!=" | "<" | "<=" | ">" | ">="
 *   value   = STRING | WORD | DATE | NUMBER ("d" | "w") "ago" | "today"
 *
 *   STRING  "..." with \" and \\ escapes, UTF-8, no control characters
 *   WORD    letters, digits, '_' and '-', not starting with a digit or '-'
 *   DATE    YYYY-MM-DD
 *
 * Fields and what they compare:
 *   name industry city region email owner   text: = != in contains, any case
 *   tags                                    has TAG (one of the comma-
 *                                           separated tags, any case)
 *   tier                                    the customer's tier this month
 *                                           (relasi tiers): = != in, names
 *                                           checked against the configuration
 *   rfm                                     the customer's RFM segment
 *                                           (relasi segment rfm, last 12
 *                                           months, any currency): = != in;
 *                                           at_risk / "at risk" both work
 *   last_visit last_activity created        days (UTC): = != < <= > >=;
 *                                           "30d ago" = today - 30 days,
 *                                           "2w ago", "today", 2026-01-31
 *   Every field: "is empty" / "is not empty".
 *
 * A comparison with an empty field is false (a customer never visited
 * matches neither `last_visit < 30d ago` nor `last_visit > 30d ago`);
 * `not (...)` is its plain negation, so `not last_visit > 30d ago` also
 * matches customers never visited. `!=` and `not in` are `not (=)` and
 * `not (in)`: an empty field matches them.
 *
 * Errors name the position: "rule:1:17: expected a value after '='"
 * (line and column, counted in characters from 1). Limits: a rule is at
 * most SR_MAX_BYTES bytes (it is stored as one synced line of text),
 * nests at most SR_MAX_DEPTH deep, and an `in` list holds at most
 * SR_MAX_LIST values.
 */
#ifndef RELASI_CLIENT_SEGMENT_RULE_H
#define RELASI_CLIENT_SEGMENT_RULE_H

#include <stddef.h>
#include <stdint.h>

#include "relasi/limits.h"
#include "relasi/marketing.h"

/* One synced text field (segments.rule is RL_FT_TEXT). */
#define SR_MAX_BYTES RL_MAX_NAME_BYTES
/* Parentheses and nots: deep enough for any rule a person writes, shallow
 * enough that the recursion can never exhaust the stack. */
#define SR_MAX_DEPTH 32
/* Values in one `in (...)`: the tiers and segments are 8 or fewer; regions
 * of one country fit. */
#define SR_MAX_LIST 64

/* The RFM segments, in report order (mk_rfm_segment_names,
 * relasi/marketing.h); bit i of sr_facts.rfm is segment i. */
#define SR_RFM_SEGMENTS MK_RFM_SEGMENTS

/* "No such day": a fact that is empty. */
#define SR_NO_DAY INT64_MIN

/* What a rule reads about one customer. Text may be NULL (empty). Days are
 * days since 1970-01-01 (UTC). tier is an index into the names given to
 * sr_bind_tiers, -1 for none. rfm is a set of segment bits (a customer
 * buying in two currencies may be in two segments), 0 for none. */
struct sr_facts {
	const char *name, *industry, *city, *region, *email, *owner, *tags;
	int64_t created, last_visit, last_activity;
	int tier;
	unsigned rfm;
};

/* What sr_needs says a rule reads beyond the customer's own row. */
enum {
	SR_NEED_TIER = 1 << 0,
	SR_NEED_RFM = 1 << 1,
	SR_NEED_VISIT = 1 << 2,
	SR_NEED_ACTIVITY = 1 << 3
};

struct sr_rule;

/*
 * Parse text (len bytes) into *out. RL_OK, or RL_EINVALID with
 * "rule:LINE:COL: what" as the message and *out NULL; RL_ENOMEM.
 */
int sr_parse(struct sr_rule **out, const char *text, size_t len);
void sr_free(struct sr_rule *r);

/* Resolve the tier names the rule uses against the configured tiers
 * (any case). RL_EINVALID "rule:L:C: unknown tier 'X' (tiers: A, B)". */
int sr_bind_tiers(struct sr_rule *r, const char *const *names, size_t n);

/* The SR_NEED_* facts r reads. */
unsigned sr_needs(const struct sr_rule *r);

/* Does the customer match? today is the day "N d ago" counts from. A rule
 * whose tiers are not bound treats every tier test as false. */
int sr_eval(const struct sr_rule *r, const struct sr_facts *f, int64_t today);

/* Days since 1970-01-01 of "YYYY-MM-DD..." (an instant's date part), or
 * SR_NO_DAY when s is NULL or not a date. */
int64_t sr_day_of(const char *s);

#endif
