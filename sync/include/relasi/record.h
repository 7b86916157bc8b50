/*
 * relasi/record.h — creating, editing, tombstoning and naming records of the
 * synced tables from text (what a person types or a file holds).
 *
 * Every value is validated and converted by its field type (relasi/model.h):
 * phones to E.164 with the store's default country, e-mails lower-cased,
 * money to minor units of the record's currency, dates and times checked,
 * references resolved by id prefix or name. A failure returns RL_EINVALID /
 * RL_ENOTFOUND / RL_EAMBIGUOUS with a message naming the field and the input,
 * and writes nothing. Callers own the transaction (rl_store_begin/commit), so
 * several records can be written atomically; change capture happens inside
 * SQLite (capture.c) whatever the caller.
 */
#ifndef RELASI_RECORD_H
#define RELASI_RECORD_H

#include <stddef.h>

#include "relasi/id.h"
#include "relasi/model.h"
#include "relasi/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One field set from text. text NULL or "" clears the field (on edit). */
struct rl_fieldval {
	const char *field;
	const char *text;
};

/* Shortest id prefix shown to people; git uses 7 too. */
#define RL_SHORT_ID_MIN 7

/*
 * Create a record of t from vals (fields by model name; RL_FF_SYSTEM fields
 * refused). Defaults: id, created_at, owner/user = this device's user,
 * currency = the store's default, a deal's stage = the first open stage, an
 * activity's time = now. *out_id (may be NULL) receives the new id.
 */
int rl_record_create(rl_store *s, const struct rl_table *t,
		     const struct rl_fieldval *vals, size_t n, char out_id[RL_ID_BUFSZ]);

/* Change the given fields of live record id. RL_ENOTFOUND if id is not a live
 * record of t. Only fields whose value really changes produce changes. */
int rl_record_update(rl_store *s, const struct rl_table *t, const char *id,
		     const struct rl_fieldval *vals, size_t n);

/*
 * Why the hub will likely refuse this device's change of field of record id
 * of t, judged by the owner this store knows (owner_id, else user_id; none
 * is no one's, as the hub reads it), or NULL: nothing to say, or no way to
 * tell (no role: never enrolled; an error). The write itself is not refused
 * for it (a manager may have given the record to this user since the
 * device last heard; the hub decides), so a command writes and then warns.
 * owner_name receives the owner's name as this store has it (its id when
 * the store has no such user, "" when the record has no owner). The reason
 * is a static string (relasi/policy.h). The same judgement refuses a
 * cascade's dependants (rl_record_delete_ex).
 */
const char *rl_record_owner_refusal(rl_store *s, const struct rl_table *t, const char *id,
				    const char *field, char *owner_name, size_t owner_sz);

/* Set one field to an already converted SQL value, bypassing text parsing
 * (for internal fields such as done_at, closed_at). */
int rl_record_set_raw_text(rl_store *s, const struct rl_table *t, const char *id,
			   const char *field, const char *value);

/*
 * Tombstone a live record (deleted = 1). Refused (RL_EINVALID, nothing
 * written) while live records depend on it (rl_record_dependants): the
 * message counts them, e.g. "account 'Toko A' has 2 contacts, 3 deals:
 * ...". Same as rl_record_delete_ex(s, t, id, 0, NULL).
 */
int rl_record_delete(rl_store *s, const struct rl_table *t, const char *id);

/*
 * What deleting a record does to the records that name it, with --cascade
 * (docs/sync.md, "Deleting a record that others name"). A contact, deal,
 * activity or task belongs to its customer (account_id): deleting the
 * customer deletes it, and in turn what belongs to it. A contact or deal
 * reference (contact_id, deal_id) only mentions: the row stays and that
 * reference is cleared — a deal's visits are the customer's history, and
 * another customer's deal keeps going when its contact person is deleted —
 * unless the row has no customer of its own, when it goes with what it
 * names. System references (a stage move's deal_id, a campaign member's
 * account_id, the visit that set a task) are history, never touched.
 */
struct rl_dependant {
	const struct rl_table *t;
	char id[RL_ID_BUFSZ];
	const char *cleared;      /* NULL: deleted with it; else the field cleared (model's) */
};
struct rl_dependants {
	struct rl_dependant *v;   /* deleted ones, then cleared ones; each by table, then id */
	size_t n;
};
void rl_dependants_free(struct rl_dependants *d);   /* and zeroes it */

/*
 * The belonging rule above, for one reference: does field f make a row of
 * t belong to the record f names? has_account: the row has a customer of
 * its own (account_id set), so its contact or deal reference only names.
 * A cascade deletes by it (rl_record_dependants); the hub revives by it
 * the deleted record a new record belongs to (hub/hubstore.c,
 * revive_owner).
 */
int rl_record_belongs_by(const struct rl_table *t, const struct rl_field *f, int has_account);

/* Fill *out (freed first) with the dependants of live record id of t. */
int rl_record_dependants(rl_store *s, const struct rl_table *t, const char *id,
			 struct rl_dependants *out);

/* RL_DELETE_CASCADE: tombstone the dependants too and clear the
 * references that only mention the deleted rows, each an ordinary
 * captured change, each checked against the role rule by the owner this
 * device knows (a rep's cascade over a colleague's deal is refused whole,
 * RL_EDENIED); the caller's transaction makes it one. */
#define RL_DELETE_CASCADE 1u
/* deps (may be NULL) receives the dependants found: deleted with
 * RL_DELETE_CASCADE, the reason of the refusal without it. */
int rl_record_delete_ex(rl_store *s, const struct rl_table *t, const char *id, unsigned flags,
			struct rl_dependants *deps);

/*
 * Find a live record of t by reference: a unique id prefix (4+ hex digits),
 * else an exact case-insensitive name (t->label_field), else a unique name
 * substring. RL_ENOTFOUND, or RL_EAMBIGUOUS with the candidates (short id and
 * name) listed in the message.
 */
int rl_record_resolve(rl_store *s, const struct rl_table *t, const char *ref,
		      char out_id[RL_ID_BUFSZ]);
/*
 * The same with flags. RL_RESOLVE_WHOLE: an id prefix or the whole name
 * (any case), never a part of a name — what a reference in a file means
 * ("Jaya" there is a customer called Jaya, not "Toko Jaya Abadi").
 */
#define RL_RESOLVE_WHOLE 1u
/* RL_RESOLVE_REMOVED: when no live record matches at all, a deleted one
 * (the same rules among tombstones) — a report's --rep naming a user who
 * was removed (`relasi-hub user remove`) but whose deals and visits stay. */
#define RL_RESOLVE_REMOVED 2u
int rl_record_resolve_ex(rl_store *s, const struct rl_table *t, const char *ref,
			 unsigned flags, char out_id[RL_ID_BUFSZ]);

/* The shortest prefix (>= RL_SHORT_ID_MIN) of id unique among t's ids. */
int rl_record_short_id(rl_store *s, const struct rl_table *t, const char *id,
		       char out[RL_ID_BUFSZ]);

/*
 * Convert text for field f of t into the value to store, as SQL text for
 * binding. Exposed for importers that need to check a value before writing.
 * currency is the record's currency (for RL_FT_MONEY). On success *is_null
 * tells whether the field is cleared; otherwise the value is in one of
 * *out_int (integers, booleans, money, percent), *out_real (lat, lon) or
 * out_text (bufsz bytes) per the field type; *tz_offset gets the writer's
 * offset for RL_FT_TIME.
 */
struct rl_converted {
	int is_null;
	int kind;              /* SQLITE_INTEGER, SQLITE_FLOAT or SQLITE_TEXT */
	long long i;
	double d;
	char *text;            /* malloc'd for SQLITE_TEXT; free with rl_converted_clear */
	int tz_offset;         /* RL_FT_TIME only */
};
int rl_record_convert(rl_store *s, const struct rl_table *t, const struct rl_field *f,
		      const char *text, const char *currency, struct rl_converted *out);
void rl_converted_clear(struct rl_converted *c);

/* The store's default phone country (ISO 3166 alpha-2) and currency. */
int rl_store_default_country(rl_store *s, char out[3]);
int rl_store_default_currency(rl_store *s, char out[4]);

#ifdef __cplusplus
}
#endif
#endif
