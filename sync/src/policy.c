/*
 * policy.c — the role rule (relasi/policy.h): one function, used by the
 * hub per pushed change (hub/hubstore.c) and by an enrolled device per
 * change a command makes (record.c).
 */
#include "relasi/policy.h"

#include <string.h>

static int marketing_table(const char *tbl)
{
	return strcmp(tbl, "segments") == 0 || strcmp(tbl, "campaigns") == 0 ||
	       strcmp(tbl, "campaign_members") == 0 || strcmp(tbl, "tier_config") == 0;
}

/*
 * Who a record belongs to is set by its author and changed by managers
 * (the caller has returned for them): a create names its author; an edit
 * of the owner may only restate the owner the row has, its own author's —
 * a rep who wrote his name on a colleague's customer would take it over.
 */
static const char *owner_rule(const char *user, int creating, const char *owner,
			      const struct rl_value *v)
{
	int self = v->type == RL_V_TEXT && strcmp(v->s, user) == 0;

	if (creating)
		return self ? NULL : "a record can only be created as yourself";
	return self && strcmp(owner, user) == 0 ? NULL : "only a manager reassigns records";
}

const char *rl_policy_refusal(const char *role, const char *user, const char *tbl,
			      int creating, const char *owner, const char *field,
			      const struct rl_value *v)
{
	int admin = strcmp(role, "admin") == 0;
	int manager = strcmp(role, "manager") == 0;
	int marketing = strcmp(role, "marketing") == 0;
	int own_field = strcmp(field, "owner_id") == 0 || strcmp(field, "user_id") == 0;

	if (admin)
		return NULL;
	if (strcmp(tbl, "users") == 0)
		return "only an admin changes users";
	if (strcmp(tbl, "stages") == 0)
		return manager ? NULL : "only a manager or admin changes pipeline stages";
	/* Conversion reports read this history; only an admin repairs it. */
	if (strcmp(tbl, "deal_stage_events") == 0 && !creating)
		return "stage moves are history: they are never edited";
	if (manager)
		return NULL;
	if (marketing && (strcmp(tbl, "deals") == 0 || strcmp(tbl, "deal_stage_events") == 0))
		return "marketing does not change deals";
	/* Segments, campaigns and tiers are marketing's, shared by the whole
	 * marketing team (any marketer edits any); reps read them and answer
	 * campaigns through activities. */
	if (marketing_table(tbl)) {
		if (!marketing)
			return "only marketing, a manager or an admin changes segments, campaigns "
			       "and tiers";
		return own_field ? owner_rule(user, creating, owner, v) : NULL;
	}
	if (own_field)
		return owner_rule(user, creating, owner, v);
	if (creating || strcmp(tbl, "accounts") == 0 || strcmp(tbl, "contacts") == 0)
		return NULL;     /* customers and their contacts are shared by the field force */
	if (strcmp(owner, user) != 0)
		return "you may change only your own deals, activities and tasks";
	return NULL;
}
