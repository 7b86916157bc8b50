/*
 * relasi/model.h — the user-editable fields of each synced table, described
 * once, so that the CLI's add/edit options, CSV column maps, vCard mapping,
 * JSON output and validation all agree. The SQL schema (the schema/ files) is the
 * storage truth; this table says how people and files may set each field.
 */
#ifndef RELASI_MODEL_H
#define RELASI_MODEL_H

#include <stddef.h>

#include "relasi/merge.h"   /* struct rl_value */

#ifdef __cplusplus
extern "C" {
#endif

enum rl_ftype {
	RL_FT_TEXT,      /* one line of text, at most RL_MAX_NAME_BYTES */
	RL_FT_NOTE,      /* free text, newlines allowed, RL_MAX_FIELD_BYTES */
	RL_FT_PHONE,     /* normalised to E.164 */
	RL_FT_EMAIL,     /* validated, lower-cased */
	RL_FT_DATE,      /* YYYY-MM-DD */
	RL_FT_TIME,      /* UTC instant, with the writer's offset in tz_offset */
	RL_FT_MONEY,     /* minor units of the record's currency field */
	RL_FT_CURRENCY,  /* ISO 4217 code */
	RL_FT_PERCENT,   /* integer 0..100 */
	RL_FT_INT,       /* integer */
	RL_FT_LAT,       /* degrees -90..90 */
	RL_FT_LON,       /* degrees -180..180 */
	RL_FT_BOOL,      /* 0/1; accepts yes/no/true/false/1/0 */
	RL_FT_REF,       /* id of a record in field->ref, given by id prefix or name */
	RL_FT_ENUM       /* one of field->choices */
};

enum {
	RL_FF_REQUIRED = 1 << 0, /* must be set on create */
	RL_FF_SYSTEM   = 1 << 1, /* set by relasi only (created_at, deleted...) */
	RL_FF_LIST     = 1 << 2  /* shown in list output */
};

struct rl_field {
	const char *name;          /* column name */
	enum rl_ftype type;
	unsigned flags;
	const char *ref;           /* RL_FT_REF: the table referred to */
	const char *const *choices;/* RL_FT_ENUM: NULL-terminated */
	const char *help;
};

struct rl_table {
	const char *name;          /* SQL table: "accounts" */
	const char *noun;          /* CLI noun: "account" */
	const char *label_field;   /* the field that names a record */
	const struct rl_field *fields;
	size_t nfields;
};

/* Look up a synced table by SQL name or CLI noun; NULL if unknown. */
const struct rl_table *rl_model_table(const char *name);

/* The i-th synced table (0, 1, ...); NULL past the last. Code that must
 * cover every table (e.g. every reference to a record) walks these, so a
 * table added to the model is covered without more code. */
const struct rl_table *rl_model_table_at(size_t i);

/* The field that turns a merged duplicate into a redirect to the record it
 * was merged into (schema 008; set only by the hub). */
#define RL_MERGED_INTO "merged_into"

/* Can duplicates of this table be merged (does it have RL_MERGED_INTO)? */
int rl_model_mergeable(const struct rl_table *t);

/* Look up a field of t by name; NULL if unknown. */
const struct rl_field *rl_model_field(const struct rl_table *t, const char *name);

/*
 * The name people use for a field on the command line and in CSV headers:
 * "account_id" -> "account", "lost_reason" -> "lost-reason", and the short
 * alias "close" for "expected_close". Written into buf (len bytes).
 */
const char *rl_model_option_name(const struct rl_field *f, char *buf, size_t len);

/*
 * Find a user-settable (not RL_FF_SYSTEM) field by any of its names, any
 * case: the column name ("account_id"), the option name ("account"), or the
 * option name with '_' for '-'. NULL if none.
 */
const struct rl_field *rl_model_field_lookup(const struct rl_table *t, const char *name);

/*
 * Check a value in its stored form (what a device sends the hub): type and
 * range by field type — E.164 phones, lower-case valid e-mails, real dates
 * and UTC times, ISO 4217 codes, 32-hex references, known enum values, text
 * without control characters (newlines allowed in notes) within the size
 * limits. NULL is accepted unless the field is RL_FF_REQUIRED. RL_OK or
 * RL_EINVALID with a reason naming the field.
 */
int rl_model_check_value(const struct rl_table *t, const struct rl_field *f,
			 const struct rl_value *v);

/*
 * The field that holds one value together with this one, or NULL: a deal's
 * amount and currency (minor units mean nothing without their currency), a
 * tier table's levels and currency, a task's done and done_at, an
 * activity's at and tz_offset. A device sends both whenever either changes
 * (sync/src/capture.c) and the hub decides a concurrent edit of a pair as
 * one: both fields from the same side, never one from each (hub/hubstore.c,
 * docs/sync.md "Fields that go together").
 */
const char *rl_model_partner(const struct rl_table *t, const char *field);

/* Is this free text that the hub may merge three ways? (RL_FT_NOTE) */
int rl_model_is_text(const struct rl_field *f);

#ifdef __cplusplus
}
#endif
#endif
