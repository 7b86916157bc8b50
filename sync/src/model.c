/*
 * model.c — field descriptions of the synced tables (see relasi/model.h).
 * Keep in step with the schema/ files: tests/unit/test_store.c checks that every
 * field named here is a column of its table.
 */
#include "relasi/model.h"
#include "relasi/error.h"
#include "relasi/id.h"
#include "relasi/limits.h"
#include "relasi/valid.h"
#include "utf8.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *const activity_kinds[] = { "visit", "call", "email", "meeting", NULL };
static const char *const user_roles[] = { "rep", "manager", "marketing", "admin", NULL };
static const char *const stage_kinds[] = { "open", "won", "lost", NULL };

#define SYSTEM_FIELDS \
	{ "owner_id", RL_FT_REF, RL_FF_SYSTEM, "users", NULL, "the user who owns it" }, \
	{ "created_at", RL_FT_TIME, RL_FF_SYSTEM, NULL, NULL, "when it was created (UTC)" }, \
	{ "deleted", RL_FT_BOOL, RL_FF_SYSTEM, NULL, NULL, "tombstone" }

/* A duplicate merged away by the hub (relasi-hub duplicates merge, schema
 * 008): the record it now lives on. Set only by the hub, with deleted = 1;
 * a table with this field is one whose duplicates can be merged. */
#define MERGED_INTO(tbl) \
	{ RL_MERGED_INTO, RL_FT_REF, RL_FF_SYSTEM, tbl, NULL, "the record this duplicate was merged into" }

static const struct rl_field account_fields[] = {
	{ "name", RL_FT_TEXT, RL_FF_REQUIRED | RL_FF_LIST, NULL, NULL, "customer name" },
	{ "industry", RL_FT_TEXT, 0, NULL, NULL, "line of business" },
	{ "phone", RL_FT_PHONE, RL_FF_LIST, NULL, NULL, "phone (normalised to E.164)" },
	{ "email", RL_FT_EMAIL, 0, NULL, NULL, "e-mail address" },
	{ "address", RL_FT_TEXT, 0, NULL, NULL, "street address" },
	{ "city", RL_FT_TEXT, RL_FF_LIST, NULL, NULL, "city" },
	{ "region", RL_FT_TEXT, 0, NULL, NULL, "province / sales region" },
	{ "lat", RL_FT_LAT, 0, NULL, NULL, "latitude (or --geo LAT,LON)" },
	{ "lon", RL_FT_LON, 0, NULL, NULL, "longitude (or --geo LAT,LON)" },
	{ "tags", RL_FT_TEXT, 0, NULL, NULL, "comma-separated tags" },
	{ "notes", RL_FT_NOTE, 0, NULL, NULL, "free notes" },
	SYSTEM_FIELDS,
	MERGED_INTO("accounts")
};

static const struct rl_field contact_fields[] = {
	{ "name", RL_FT_TEXT, RL_FF_REQUIRED | RL_FF_LIST, NULL, NULL, "full name" },
	{ "account_id", RL_FT_REF, RL_FF_LIST, "accounts", NULL, "customer (id prefix or name)" },
	{ "title", RL_FT_TEXT, 0, NULL, NULL, "job title" },
	{ "phone", RL_FT_PHONE, RL_FF_LIST, NULL, NULL, "phone (normalised to E.164)" },
	{ "email", RL_FT_EMAIL, RL_FF_LIST, NULL, NULL, "e-mail address" },
	{ "city", RL_FT_TEXT, 0, NULL, NULL, "city" },
	{ "notes", RL_FT_NOTE, 0, NULL, NULL, "free notes" },
	SYSTEM_FIELDS,
	MERGED_INTO("contacts")
};

static const struct rl_field deal_fields[] = {
	{ "title", RL_FT_TEXT, RL_FF_REQUIRED | RL_FF_LIST, NULL, NULL, "what is being sold" },
	{ "line", RL_FT_TEXT, 0, NULL, NULL, "product line (win rate by line)" },
	{ "account_id", RL_FT_REF, RL_FF_REQUIRED | RL_FF_LIST, "accounts", NULL, "customer (id prefix or name)" },
	{ "contact_id", RL_FT_REF, 0, "contacts", NULL, "contact person (id prefix or name)" },
	{ "currency", RL_FT_CURRENCY, 0, NULL, NULL, "ISO 4217 code (default from settings, IDR)" },
	{ "amount", RL_FT_MONEY, RL_FF_LIST, NULL, NULL, "value in major units, e.g. 1500000 or 12.50" },
	{ "stage_id", RL_FT_REF, RL_FF_LIST, "stages", NULL, "pipeline stage (default: the first)" },
	{ "probability", RL_FT_PERCENT, 0, NULL, NULL, "win probability 0-100, overrides the stage's" },
	{ "expected_close", RL_FT_DATE, RL_FF_LIST, NULL, NULL, "expected close date" },
	{ "lost_reason", RL_FT_TEXT, 0, NULL, NULL, "why it was lost" },
	{ "closed_at", RL_FT_TIME, RL_FF_SYSTEM, NULL, NULL, "when it was won or lost" },
	{ "notes", RL_FT_NOTE, 0, NULL, NULL, "free notes" },
	SYSTEM_FIELDS
};

static const struct rl_field activity_fields[] = {
	{ "kind", RL_FT_ENUM, RL_FF_REQUIRED | RL_FF_LIST, NULL, activity_kinds, "visit, call, email or meeting" },
	{ "account_id", RL_FT_REF, RL_FF_LIST, "accounts", NULL, "customer" },
	{ "contact_id", RL_FT_REF, 0, "contacts", NULL, "contact person" },
	{ "deal_id", RL_FT_REF, 0, "deals", NULL, "deal" },
	{ "at", RL_FT_TIME, RL_FF_LIST, NULL, NULL, "when (default now)" },
	{ "tz_offset", RL_FT_INT, RL_FF_SYSTEM, NULL, NULL, "writer's UTC offset, minutes" },
	{ "lat", RL_FT_LAT, 0, NULL, NULL, "check-in latitude" },
	{ "lon", RL_FT_LON, 0, NULL, NULL, "check-in longitude" },
	{ "outcome", RL_FT_TEXT, RL_FF_LIST, NULL, NULL, "outcome" },
	{ "notes", RL_FT_NOTE, 0, NULL, NULL, "notes" },
	{ "user_id", RL_FT_REF, RL_FF_SYSTEM, "users", NULL, "who logged it" },
	{ "campaign_id", RL_FT_REF, 0, "campaigns", NULL, "the campaign it responds to" },
	{ "created_at", RL_FT_TIME, RL_FF_SYSTEM, NULL, NULL, "when it was logged (UTC)" },
	{ "deleted", RL_FT_BOOL, RL_FF_SYSTEM, NULL, NULL, "tombstone" }
};

static const struct rl_field task_fields[] = {
	{ "title", RL_FT_TEXT, RL_FF_REQUIRED | RL_FF_LIST, NULL, NULL, "what to do" },
	{ "due", RL_FT_DATE, RL_FF_LIST, NULL, NULL, "due date (YYYY-MM-DD, today, +3d)" },
	{ "done", RL_FT_BOOL, RL_FF_LIST, NULL, NULL, "done (yes/no)" },
	{ "done_at", RL_FT_TIME, RL_FF_SYSTEM, NULL, NULL, "when it was done" },
	{ "account_id", RL_FT_REF, RL_FF_LIST, "accounts", NULL, "customer" },
	{ "contact_id", RL_FT_REF, 0, "contacts", NULL, "contact person" },
	{ "deal_id", RL_FT_REF, 0, "deals", NULL, "deal" },
	{ "activity_id", RL_FT_REF, RL_FF_SYSTEM, "activities", NULL, "the visit that set it" },
	{ "notes", RL_FT_NOTE, 0, NULL, NULL, "notes" },
	SYSTEM_FIELDS
};

static const struct rl_field stage_fields[] = {
	{ "name", RL_FT_TEXT, RL_FF_REQUIRED | RL_FF_LIST, NULL, NULL, "stage name" },
	{ "position", RL_FT_INT, RL_FF_LIST, NULL, NULL, "order in the pipeline" },
	{ "probability", RL_FT_PERCENT, RL_FF_LIST, NULL, NULL, "default win probability 0-100" },
	{ "kind", RL_FT_ENUM, RL_FF_LIST, NULL, stage_kinds, "open, won or lost" },
	{ "deleted", RL_FT_BOOL, RL_FF_SYSTEM, NULL, NULL, "tombstone" }
};

static const struct rl_field user_fields[] = {
	{ "name", RL_FT_TEXT, RL_FF_REQUIRED | RL_FF_LIST, NULL, NULL, "full name" },
	{ "login", RL_FT_TEXT, RL_FF_LIST, NULL, NULL, "login" },
	{ "role", RL_FT_ENUM, RL_FF_LIST, NULL, user_roles, "rep, manager, marketing or admin" },
	{ "team", RL_FT_TEXT, 0, NULL, NULL, "sales team (reports filter by it)" },
	{ "deleted", RL_FT_BOOL, RL_FF_SYSTEM, NULL, NULL, "tombstone" }
};

static const struct rl_field stage_event_fields[] = {
	{ "deal_id", RL_FT_REF, RL_FF_SYSTEM, "deals", NULL, "deal" },
	{ "from_stage_id", RL_FT_REF, RL_FF_SYSTEM, "stages", NULL, "stage before" },
	{ "to_stage_id", RL_FT_REF, RL_FF_SYSTEM, "stages", NULL, "stage after" },
	{ "at", RL_FT_TIME, RL_FF_SYSTEM, NULL, NULL, "when" },
	{ "user_id", RL_FT_REF, RL_FF_SYSTEM, "users", NULL, "who moved it" },
	{ "deleted", RL_FT_BOOL, RL_FF_SYSTEM, NULL, NULL, "tombstone" }
};

/* Marketing (schema/007_marketing.sql). Members and the tier configuration
 * are written by `relasi campaign create` / `relasi tiers config`, never
 * field by field from the command line: all system fields. */
static const struct rl_field segment_fields[] = {
	{ "name", RL_FT_TEXT, RL_FF_REQUIRED | RL_FF_LIST, NULL, NULL, "segment name" },
	{ "rule", RL_FT_TEXT, RL_FF_REQUIRED | RL_FF_LIST, NULL, NULL, "who belongs (rule language)" },
	SYSTEM_FIELDS
};

static const struct rl_field campaign_fields[] = {
	{ "name", RL_FT_TEXT, RL_FF_REQUIRED | RL_FF_LIST, NULL, NULL, "campaign name" },
	{ "segment_id", RL_FT_REF, RL_FF_LIST, "segments", NULL, "the segment it was made from" },
	{ "rule", RL_FT_TEXT, 0, NULL, NULL, "the segment's rule when the campaign started" },
	{ "holdout", RL_FT_PERCENT, RL_FF_LIST, NULL, NULL, "hold-out share, percent" },
	{ "seed", RL_FT_INT, 0, NULL, NULL, "seed of the hold-out choice" },
	{ "started_at", RL_FT_TIME, RL_FF_SYSTEM, NULL, NULL, "when it started (UTC)" },
	SYSTEM_FIELDS
};

static const struct rl_field campaign_member_fields[] = {
	{ "campaign_id", RL_FT_REF, RL_FF_SYSTEM, "campaigns", NULL, "campaign" },
	{ "account_id", RL_FT_REF, RL_FF_SYSTEM, "accounts", NULL, "customer" },
	{ "holdout", RL_FT_BOOL, RL_FF_SYSTEM, NULL, NULL, "in the hold-out group" },
	SYSTEM_FIELDS
};

static const struct rl_field tier_config_fields[] = {
	{ "levels", RL_FT_TEXT, RL_FF_SYSTEM, NULL, NULL, "Name=MIN;... (minor units a month)" },
	{ "currency", RL_FT_CURRENCY, RL_FF_SYSTEM, NULL, NULL, "currency of the thresholds" },
	{ "deleted", RL_FT_BOOL, RL_FF_SYSTEM, NULL, NULL, "tombstone" }
};

static const struct rl_table tables[] = {
	{ "accounts", "account", "name", account_fields, N(account_fields) },
	{ "contacts", "contact", "name", contact_fields, N(contact_fields) },
	{ "deals", "deal", "title", deal_fields, N(deal_fields) },
	{ "activities", "activity", "outcome", activity_fields, N(activity_fields) },
	{ "tasks", "task", "title", task_fields, N(task_fields) },
	{ "stages", "stage", "name", stage_fields, N(stage_fields) },
	{ "users", "user", "name", user_fields, N(user_fields) },
	{ "deal_stage_events", "stage-event", "deal_id", stage_event_fields, N(stage_event_fields) },
	{ "segments", "segment", "name", segment_fields, N(segment_fields) },
	{ "campaigns", "campaign", "name", campaign_fields, N(campaign_fields) },
	{ "campaign_members", "campaign-member", "account_id", campaign_member_fields,
	  N(campaign_member_fields) },
	{ "tier_config", "tier-config", "levels", tier_config_fields, N(tier_config_fields) },
};

const struct rl_table *rl_model_table(const char *name)
{
	size_t i;

	for (i = 0; i < N(tables); i++)
		if (strcmp(tables[i].name, name) == 0 || strcmp(tables[i].noun, name) == 0)
			return &tables[i];
	return NULL;
}

const struct rl_table *rl_model_table_at(size_t i)
{
	return i < N(tables) ? &tables[i] : NULL;
}

int rl_model_mergeable(const struct rl_table *t)
{
	return t && rl_model_field(t, RL_MERGED_INTO) != NULL;
}

const struct rl_field *rl_model_field(const struct rl_table *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->nfields; i++)
		if (strcmp(t->fields[i].name, name) == 0)
			return &t->fields[i];
	return NULL;
}

const char *rl_model_option_name(const struct rl_field *f, char *buf, size_t len)
{
	size_t n = strlen(f->name), i;

	/* The one field whose full name is a mouthful to type every day. */
	if (strcmp(f->name, "expected_close") == 0) {
		snprintf(buf, len, "close");
		return buf;
	}
	if (n > 3 && strcmp(f->name + n - 3, "_id") == 0)
		n -= 3;
	if (len == 0)
		return buf;
	if (n >= len)
		n = len - 1;
	for (i = 0; i < n; i++)
		buf[i] = f->name[i] == '_' ? '-' : f->name[i];
	buf[n] = '\0';
	return buf;
}

const struct rl_field *rl_model_field_lookup(const struct rl_table *t, const char *name)
{
	char opt[64];
	size_t i, k;

	for (i = 0; i < t->nfields; i++) {
		const struct rl_field *f = &t->fields[i];
		if (f->flags & RL_FF_SYSTEM)
			continue;
		if (strcasecmp(f->name, name) == 0)
			return f;
		rl_model_option_name(f, opt, sizeof(opt));
		if (strcasecmp(opt, name) == 0)
			return f;
		for (k = 0; opt[k]; k++)
			if (opt[k] == '-')
				opt[k] = '_';
		if (strcasecmp(opt, name) == 0)
			return f;
	}
	return NULL;
}

/* Each pair once; rl_model_partner reads it both ways. */
static const struct {
	const char *table, *a, *b;
} pairs[] = {
	{ "deals", "amount", "currency" },        /* minor units of that currency */
	{ "tier_config", "levels", "currency" },  /* thresholds in its minor units */
	{ "tasks", "done", "done_at" },           /* done, and since when */
	{ "activities", "at", "tz_offset" },      /* the instant and the writer's offset */
};

const char *rl_model_partner(const struct rl_table *t, const char *field)
{
	size_t i;

	for (i = 0; t && field && i < N(pairs); i++) {
		if (strcmp(pairs[i].table, t->name) != 0)
			continue;
		if (strcmp(pairs[i].a, field) == 0)
			return pairs[i].b;
		if (strcmp(pairs[i].b, field) == 0)
			return pairs[i].a;
	}
	return NULL;
}

int rl_model_is_text(const struct rl_field *f)
{
	return f->type == RL_FT_NOTE;
}

static int text_ok(const char *s, size_t max, int newlines)
{
	size_t len = strlen(s), i;

	if (len > max || rl_utf8_bad((const unsigned char *)s, len) != len)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == 0x7f || (c < 0x20 && !(newlines && (c == '\n' || c == '\r' || c == '\t'))))
			return 0;
	}
	return 1;
}

static int is_utc_time(const char *s)
{
	int64_t utc;
	int off;
	char back[21];

	if (strlen(s) != 20 || s[10] != 'T' || s[19] != 'Z')
		return 0;
	if (rl_time_parse(&utc, &off, s, 0, 0) < 0)
		return 0;
	rl_time_format_utc(back, utc);
	return strcmp(back, s) == 0;
}

int rl_model_check_value(const struct rl_table *t, const struct rl_field *f,
			 const struct rl_value *v)
{
	const char *s = v->type == RL_V_TEXT ? v->s : NULL;
	double d = v->type == RL_V_REAL ? v->d : (double)v->i;
	int ok = 0;

	if (v->type == RL_V_NULL)
		return (f->flags & RL_FF_REQUIRED)
			? rl_error_set(RL_EINVALID, "%s.%s cannot be empty", t->name, f->name)
			: RL_OK;
	switch (f->type) {
	case RL_FT_TEXT:
		ok = s && text_ok(s, RL_MAX_NAME_BYTES, 0);
		break;
	case RL_FT_NOTE:
		ok = s && text_ok(s, RL_MAX_FIELD_BYTES, 1);
		break;
	case RL_FT_PHONE: {
		size_t i, n = s ? strlen(s) : 0;
		ok = s && s[0] == '+' && n >= 9 && n <= 1 + RL_MAX_E164_DIGITS && s[1] != '0';
		for (i = 1; ok && i < n; i++)
			ok = s[i] >= '0' && s[i] <= '9';
		break;
	}
	case RL_FT_EMAIL: {
		char norm[RL_MAX_EMAIL_BYTES + 1];
		ok = s && rl_email_normalize(norm, sizeof(norm), s) == RL_OK && strcmp(norm, s) == 0;
		break;
	}
	case RL_FT_DATE: {
		char out[11];
		ok = s && strlen(s) == 10 && rl_date_parse(out, s, 0, 0) == RL_OK &&
		     strcmp(out, s) == 0;
		break;
	}
	case RL_FT_TIME:
		ok = s && is_utc_time(s);
		break;
	case RL_FT_MONEY:
		/* The bound rl_money_parse keeps (relasi/limits.h), held here too:
		 * the hub takes pushed values through this check, and an amount
		 * beyond it would make every report's sum overflow. */
		if (v->type == RL_V_INT && (v->i > RL_MAX_MONEY_MINOR || v->i < -RL_MAX_MONEY_MINOR))
			return rl_error_set(RL_EINVALID, "%s.%s: %lld is beyond the bound of a money "
					    "value, -10^15..10^15 minor units", t->name, f->name,
					    (long long)v->i);
		ok = v->type == RL_V_INT;
		break;
	case RL_FT_INT:
		ok = v->type == RL_V_INT;
		break;
	case RL_FT_PERCENT:
		ok = v->type == RL_V_INT && v->i >= 0 && v->i <= 100;
		break;
	case RL_FT_CURRENCY:
		ok = s && strlen(s) == 3 && rl_currency_exponent(s) >= 0;
		break;
	case RL_FT_LAT:
		ok = (v->type == RL_V_REAL || v->type == RL_V_INT) && d >= -90 && d <= 90;
		break;
	case RL_FT_LON:
		ok = (v->type == RL_V_REAL || v->type == RL_V_INT) && d >= -180 && d <= 180;
		break;
	case RL_FT_BOOL:
		ok = v->type == RL_V_INT && (v->i == 0 || v->i == 1);
		break;
	case RL_FT_REF:
		ok = s && rl_id_valid(s);
		break;
	case RL_FT_ENUM: {
		size_t i;
		for (i = 0; s && f->choices[i]; i++)
			if (strcmp(s, f->choices[i]) == 0)
				ok = 1;
		break;
	}
	}
	if (!ok)
		return rl_error_set(RL_EINVALID, "%s.%s: invalid value", t->name, f->name);
	return RL_OK;
}
