/*
 * model.c — field descriptions of the synced tables (see relasi/model.h).
 * Keep in step with the schema/ files: tests/unit/test_model.c checks that every
 * field named here is a column of its table.
 */
#include "relasi/model.h"

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
	SYSTEM_FIELDS
};

static const struct rl_field contact_fields[] = {
	{ "name", RL_FT_TEXT, RL_FF_REQUIRED | RL_FF_LIST, NULL, NULL, "full name" },
	{ "account_id", RL_FT_REF, RL_FF_LIST, "accounts", NULL, "customer (id prefix or name)" },
	{ "title", RL_FT_TEXT, 0, NULL, NULL, "job title" },
	{ "phone", RL_FT_PHONE, RL_FF_LIST, NULL, NULL, "phone (normalised to E.164)" },
	{ "email", RL_FT_EMAIL, RL_FF_LIST, NULL, NULL, "e-mail address" },
	{ "city", RL_FT_TEXT, 0, NULL, NULL, "city" },
	{ "notes", RL_FT_NOTE, 0, NULL, NULL, "free notes" },
	SYSTEM_FIELDS
};

static const struct rl_field deal_fields[] = {
	{ "title", RL_FT_TEXT, RL_FF_REQUIRED | RL_FF_LIST, NULL, NULL, "what is being sold" },
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

static const struct rl_table tables[] = {
	{ "accounts", "account", "name", account_fields, N(account_fields) },
	{ "contacts", "contact", "name", contact_fields, N(contact_fields) },
	{ "deals", "deal", "title", deal_fields, N(deal_fields) },
	{ "activities", "activity", "outcome", activity_fields, N(activity_fields) },
	{ "tasks", "task", "title", task_fields, N(task_fields) },
	{ "stages", "stage", "name", stage_fields, N(stage_fields) },
	{ "users", "user", "name", user_fields, N(user_fields) },
	{ "deal_stage_events", "stage-event", "to_stage_id", stage_event_fields, N(stage_event_fields) },
};

const struct rl_table *rl_model_table(const char *name)
{
	size_t i;

	for (i = 0; i < N(tables); i++)
		if (strcmp(tables[i].name, name) == 0 || strcmp(tables[i].noun, name) == 0)
			return &tables[i];
	return NULL;
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
