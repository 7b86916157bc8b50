/*
 * record.c — records of the synced tables from text: validation and
 * conversion by field type, create / update / tombstone, and naming records
 * by id prefix or name (see relasi/record.h).
 *
 * The INSERT and UPDATE statements are assembled from the model's table and
 * field names (static identifiers, quoted with %w), never from user text, and
 * kept in the store's statement cache.
 */
#include "relasi/record.h"
#include "relasi/policy.h"
#include "relasi/error.h"
#include "relasi/limits.h"
#include "relasi/valid.h"
#include "utf8.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Candidates listed in an "ambiguous" message. */
#define RL_AMBIGUOUS_SHOWN 10

void rl_converted_clear(struct rl_converted *c)
{
	free(c->text);
	memset(c, 0, sizeof(*c));
}

int rl_store_default_country(rl_store *s, char out[3])
{
	char *v = NULL;
	int error = rl_store_meta_get(s, "country", &v);

	if (error < 0)
		return error;
	snprintf(out, 3, "%s", v && strlen(v) == 2 ? v : "ID");
	free(v);
	return RL_OK;
}

int rl_store_default_currency(rl_store *s, char out[4])
{
	char *v = NULL;
	int error = rl_store_meta_get(s, "currency", &v);

	if (error < 0)
		return error;
	snprintf(out, 4, "%s", v && strlen(v) == 3 ? v : "IDR");
	free(v);
	return RL_OK;
}

static int has_control_chars(const char *s, int allow_newlines)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == 0x7f || (c < 0x20 && !(allow_newlines && (c == '\n' || c == '\r' || c == '\t'))))
			return 1;
	}
	return 0;
}

/* Strict UTF-8 (utf8.c), NUL-terminated. */
static int valid_utf8(const char *p)
{
	size_t len = strlen(p);
	return rl_utf8_bad((const unsigned char *)p, len) == len;
}

static int set_text(struct rl_converted *out, const char *v)
{
	out->kind = SQLITE_TEXT;
	if (!(out->text = strdup(v)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	return RL_OK;
}

/* Trim ASCII spaces at both ends into a malloc'd copy. */
static char *trimmed(const char *text)
{
	size_t len;
	char *r;

	while (*text == ' ' || *text == '\t')
		text++;
	len = strlen(text);
	while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
		len--;
	if (!(r = malloc(len + 1)))
		return NULL;
	memcpy(r, text, len);
	r[len] = '\0';
	return r;
}

static int parse_bool(const char *v, long long *out)
{
	static const char *const yes[] = { "1", "yes", "y", "true", "ya", "done", NULL };
	static const char *const no[] = { "0", "no", "n", "false", "tidak", NULL };
	int i;

	for (i = 0; yes[i]; i++)
		if (strcasecmp(v, yes[i]) == 0) { *out = 1; return 1; }
	for (i = 0; no[i]; i++)
		if (strcasecmp(v, no[i]) == 0) { *out = 0; return 1; }
	return 0;
}

static int parse_int(const char *v, long long lo, long long hi, long long *out)
{
	char *end;
	long long x;

	errno = 0;
	x = strtoll(v, &end, 10);
	if (errno || end == v || *end || x < lo || x > hi)
		return 0;
	*out = x;
	return 1;
}

static int parse_degrees(const char *v, double lim, double *out)
{
	char buf[96];
	double lat, lon;

	/* Reuse the coordinate parser: "v,0" is a valid pair iff v is valid. */
	if (snprintf(buf, sizeof(buf), "%s,0", v) >= (int)sizeof(buf))
		return 0;
	if (lim == 90.0) {
		if (rl_geo_parse(&lat, &lon, buf) < 0)
			return 0;
		*out = lat;
	} else {
		if (snprintf(buf, sizeof(buf), "0,%s", v) >= (int)sizeof(buf) ||
		    rl_geo_parse(&lat, &lon, buf) < 0)
			return 0;
		*out = lon;
	}
	return 1;
}

int rl_record_convert(rl_store *s, const struct rl_table *t, const struct rl_field *f,
		      const char *text, const char *currency, struct rl_converted *out)
{
	char *v = NULL;
	int error = RL_OK;
	int64_t now = rl_store_now_ms(s) / 1000;
	int off = rl_store_tz_offset(s);

	memset(out, 0, sizeof(*out));
	if (!text || !*text) {
		out->is_null = 1;
		return RL_OK;
	}
	if (!valid_utf8(text))
		return rl_error_set(RL_EINVALID, "%s: not valid UTF-8 text", f->name);
	if (strlen(text) > (f->type == RL_FT_NOTE ? RL_MAX_FIELD_BYTES : RL_MAX_NAME_BYTES))
		return rl_error_set(RL_ETOOBIG, "%s: text longer than %d bytes", f->name,
				    f->type == RL_FT_NOTE ? RL_MAX_FIELD_BYTES : RL_MAX_NAME_BYTES);
	if (has_control_chars(text, f->type == RL_FT_NOTE))
		return rl_error_set(RL_EINVALID, "%s: control characters are not allowed", f->name);
	if (f->type == RL_FT_NOTE)
		return set_text(out, text);
	if (!(v = trimmed(text)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	if (!*v) {
		out->is_null = 1;
		goto cleanup;
	}

	switch (f->type) {
	case RL_FT_TEXT:
	case RL_FT_NOTE:
		error = set_text(out, v);
		break;
	case RL_FT_PHONE: {
		char e164[RL_E164_BUFSZ], cc[3];
		if ((error = rl_store_default_country(s, cc)) < 0)
			break;
		if ((error = rl_phone_normalize(e164, v, cc)) < 0)
			break;
		error = set_text(out, e164);
		break;
	}
	case RL_FT_EMAIL: {
		char mail[RL_MAX_EMAIL_BYTES + 1];
		if ((error = rl_email_normalize(mail, sizeof(mail), v)) < 0)
			break;
		error = set_text(out, mail);
		break;
	}
	case RL_FT_DATE: {
		char d[11];
		if ((error = rl_date_parse(d, v, now, off)) < 0)
			break;
		error = set_text(out, d);
		break;
	}
	case RL_FT_TIME: {
		int64_t utc, utc2;
		int at_off, off2;
		char iso[21];
		if ((error = rl_time_parse(&utc, &out->tz_offset, v, now, off)) < 0)
			break;
		/* A wall time typed without an offset is in the zone's offset at
		 * that time, not at now: "2026-07-01T09:00" in Berlin is +02:00
		 * even when typed in November (+01:00). Read again with the
		 * offset of the instant the first reading gave; a time with its
		 * own offset reads the same either way. */
		at_off = rl_store_tz_offset_at(s, utc);
		if (at_off != off && rl_time_parse(&utc2, &off2, v, now, at_off) == RL_OK) {
			utc = utc2;
			out->tz_offset = off2;
		}
		rl_time_format_utc(iso, utc);
		error = set_text(out, iso);
		break;
	}
	case RL_FT_MONEY: {
		int64_t minor;
		/* "amount" is in rl_money_parse's own message ("... IDR amount"),
		 * so the field name is prefixed here, not by the test below. */
		if ((error = rl_money_parse(&minor, v, currency)) < 0) {
			rl_error_prefix("%s", f->name);
			break;
		}
		out->kind = SQLITE_INTEGER;
		out->i = minor;
		break;
	}
	case RL_FT_CURRENCY: {
		char up[4];
		size_t i;
		if (strlen(v) != 3) {
			error = rl_error_set(RL_EINVALID, "'%s' is not an ISO 4217 currency code", v);
			break;
		}
		for (i = 0; i < 3; i++)
			up[i] = (v[i] >= 'a' && v[i] <= 'z') ? (char)(v[i] - 32) : v[i];
		up[3] = '\0';
		if (rl_currency_exponent(up) < 0) {
			error = rl_error_set(RL_EINVALID, "'%s' is not an ISO 4217 currency code", v);
			break;
		}
		error = set_text(out, up);
		break;
	}
	case RL_FT_PERCENT: {
		char *pct = strchr(v, '%');
		if (pct && pct[1] == '\0')
			*pct = '\0';
		if (!parse_int(v, 0, 100, &out->i)) {
			error = rl_error_set(RL_EINVALID, "%s: '%s' is not a percentage 0-100",
					     f->name, text);
			break;
		}
		out->kind = SQLITE_INTEGER;
		break;
	}
	case RL_FT_INT:
		if (!parse_int(v, -1000000000LL, 1000000000LL, &out->i)) {
			error = rl_error_set(RL_EINVALID, "%s: '%s' is not an integer", f->name, v);
			break;
		}
		out->kind = SQLITE_INTEGER;
		break;
	case RL_FT_LAT:
	case RL_FT_LON:
		if (!parse_degrees(v, f->type == RL_FT_LAT ? 90.0 : 180.0, &out->d)) {
			error = rl_error_set(RL_EINVALID, "%s: '%s' is not a %s in degrees", f->name,
					     v, f->type == RL_FT_LAT ? "latitude (-90..90)"
								      : "longitude (-180..180)");
			break;
		}
		out->kind = SQLITE_FLOAT;
		break;
	case RL_FT_BOOL:
		if (!parse_bool(v, &out->i)) {
			error = rl_error_set(RL_EINVALID, "%s: '%s' is not yes or no", f->name, v);
			break;
		}
		out->kind = SQLITE_INTEGER;
		break;
	case RL_FT_REF: {
		char id[RL_ID_BUFSZ];
		const struct rl_table *rt = rl_model_table(f->ref);
		if (!rt) {
			error = rl_error_set(RL_ERROR, "model: unknown table %s", f->ref);
			break;
		}
		if ((error = rl_record_resolve(s, rt, v, id)) < 0) {
			rl_error_prefix("%s", f->name);
			break;
		}
		error = set_text(out, id);
		break;
	}
	case RL_FT_ENUM: {
		size_t i;
		for (i = 0; f->choices[i]; i++)
			if (strcasecmp(v, f->choices[i]) == 0)
				break;
		if (!f->choices[i]) {
			/* Say what is allowed: a typo is then one look away. */
			char list[256];
			size_t o = 0, k;
			list[0] = '\0';
			for (k = 0; f->choices[k] && o < sizeof(list); k++)
				o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", k ? ", " : "",
						      f->choices[k]);
			error = rl_error_set(RL_EINVALID, "%s: '%.64s' is not one of %s", f->name, v,
					     list);
			break;
		}
		error = set_text(out, f->choices[i]);
		break;
	}
	}
	if (error < 0 && rl_error_code() == RL_EINVALID && !strstr(rl_error_message(), f->name))
		rl_error_prefix("%s", f->name);
	(void)t;
cleanup:
	free(v);
	if (error < 0)
		rl_converted_clear(out);
	return error;
}

static void bind_converted(sqlite3_stmt *st, int idx, const struct rl_converted *c)
{
	if (c->is_null)
		sqlite3_bind_null(st, idx);
	else if (c->kind == SQLITE_INTEGER)
		sqlite3_bind_int64(st, idx, c->i);
	else if (c->kind == SQLITE_FLOAT)
		sqlite3_bind_double(st, idx, c->d);
	else
		sqlite3_bind_text(st, idx, c->text, -1, SQLITE_STATIC);
}

static const struct rl_fieldval *find_val(const struct rl_fieldval *vals, size_t n,
					  const char *field)
{
	size_t i;
	for (i = 0; i < n; i++)
		if (strcmp(vals[i].field, field) == 0)
			return &vals[i];
	return NULL;
}

/* Every field named must exist, be user-settable and appear once. */
static int check_vals(const struct rl_table *t, const struct rl_fieldval *vals, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		const struct rl_field *f = rl_model_field(t, vals[i].field);
		if (!f)
			return rl_error_set(RL_EINVALID, "%s has no field '%s'", t->noun, vals[i].field);
		if (f->flags & RL_FF_SYSTEM)
			return rl_error_set(RL_EINVALID, "%s.%s is set by relasi, not by hand",
					    t->noun, vals[i].field);
		for (j = 0; j < i; j++)
			if (strcmp(vals[j].field, vals[i].field) == 0)
				return rl_error_set(RL_EINVALID, "field '%s' given twice", vals[i].field);
	}
	return RL_OK;
}

static int currency_of(rl_store *s, const struct rl_table *t, const struct rl_fieldval *vals,
		       size_t n, const char *id, char cur[4])
{
	const struct rl_fieldval *cv = find_val(vals, n, "currency");
	const struct rl_field *cf = rl_model_field(t, "currency");
	struct rl_converted c;
	sqlite3_stmt *st;
	int error;

	if (!cf)
		return rl_store_default_currency(s, cur);
	if (cv && cv->text && *cv->text) {
		if ((error = rl_record_convert(s, t, cf, cv->text, NULL, &c)) < 0)
			return error;
		snprintf(cur, 4, "%s", c.text);
		rl_converted_clear(&c);
		return RL_OK;
	}
	if (id) {
		/* t is a model table; its name is a static identifier. */
		error = rl_store_preparef(s, &st, "SELECT currency FROM \"%w\" WHERE id = ?1", t->name);
		if (error < 0)
			return error;
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
			snprintf(cur, 4, "%s", (const char *)sqlite3_column_text(st, 0));
			sqlite3_reset(st);
			return RL_OK;
		}
		sqlite3_reset(st);
	}
	return rl_store_default_currency(s, cur);
}

static int first_open_stage(rl_store *s, char out[RL_ID_BUFSZ])
{
	sqlite3_stmt *st;
	int error;

	if ((error = rl_store_prepare(s, "SELECT id FROM stages WHERE deleted = 0 AND kind = 'open' "
				      "ORDER BY position, name LIMIT 1", &st)) < 0)
		return error;
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return rl_error_set(RL_ENOTFOUND, "the pipeline has no open stage");
	}
	snprintf(out, RL_ID_BUFSZ, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	return RL_OK;
}

/* ---- the role rule on the device ---------------------------------------------- */

/*
 * An enrolled device refuses what its hub would refuse for its user's role
 * alone (relasi/policy.h), before anything is written: the rep learns it
 * now, not at the next sync as a refused change. Who owns a record is left
 * to the hub (a manager may have reassigned it since this device last
 * heard): the rule is asked as if the row were the user's own, so only the
 * role's limits and a write of another user into an owner field apply.
 * A store that never enrolled has no role and no rule (its data is its
 * own until then).
 */
static int check_role(rl_store *s, const struct rl_table *t, int creating, const char *field,
		      const struct rl_converted *c)
{
	struct rl_value v = { RL_V_NULL, 0, 0.0, NULL };
	const char *why, *user = rl_store_user_id(s);

	if (!rl_store_role(s)[0])
		return RL_OK;
	if (!c->is_null && c->kind == SQLITE_TEXT) {
		v.type = RL_V_TEXT;
		v.s = c->text;
	}
	why = rl_policy_refusal(rl_store_role(s), user, t->name, creating, creating ? "" : user,
				field, &v);
	if (!why)
		return RL_OK;
	return rl_error_set(RL_EDENIED, "not allowed: %s (your role at the hub: %s)", why,
			    rl_store_role(s));
}

int rl_record_create(rl_store *s, const struct rl_table *t,
		     const struct rl_fieldval *vals, size_t n, char out_id[RL_ID_BUFSZ])
{
	struct rl_converted *conv = NULL;
	sqlite3_str *sql = NULL;
	char *sqltext = NULL;
	sqlite3_stmt *st;
	char id[RL_ID_BUFSZ], cur[4], now_iso[21];
	int64_t now_ms = rl_store_now_ms(s);
	int error, tz_offset = rl_store_tz_offset(s), have_tz = 0;
	size_t i;

	if ((error = check_vals(t, vals, n)) < 0)
		return error;
	if (!rl_store_device_id(s)[0])
		return rl_error_set(RL_EINVALID, "this store has no identity; run 'relasi init'");
	if ((error = currency_of(s, t, vals, n, NULL, cur)) < 0)
		return error;
	if (!(conv = calloc(t->nfields, sizeof(*conv))))
		return rl_error_set(RL_ENOMEM, "out of memory");
	rl_time_format_utc(now_iso, now_ms / 1000);

	for (i = 0; i < t->nfields; i++) {
		const struct rl_field *f = &t->fields[i];
		const struct rl_fieldval *v = find_val(vals, n, f->name);
		if (v && (error = rl_record_convert(s, t, f, v->text, cur, &conv[i])) < 0)
			goto cleanup;
		if (!v)
			conv[i].is_null = 1;
		if (v && f->type == RL_FT_TIME && !conv[i].is_null) {
			tz_offset = conv[i].tz_offset;
			have_tz = 1;
		}
		if ((f->flags & RL_FF_REQUIRED) && conv[i].is_null && strcmp(f->name, "stage_id") != 0) {
			error = rl_error_set(RL_EINVALID, "%s needs a %s", t->noun, f->name);
			goto cleanup;
		}
	}
	(void)have_tz;

	/* System fields and defaults the schema requires. */
	for (i = 0; i < t->nfields; i++) {
		const struct rl_field *f = &t->fields[i];
		struct rl_converted *c = &conv[i];
		if (!c->is_null)
			continue;
		if (strcmp(f->name, "created_at") == 0 ||
		    (strcmp(f->name, "at") == 0 && strcmp(t->name, "activities") == 0)) {
			c->is_null = 0;
			if ((error = set_text(c, now_iso)) < 0)
				goto cleanup;
		} else if (strcmp(f->name, "owner_id") == 0 || strcmp(f->name, "user_id") == 0) {
			if (rl_store_user_id(s)[0]) {
				c->is_null = 0;
				if ((error = set_text(c, rl_store_user_id(s))) < 0)
					goto cleanup;
			}
		} else if (strcmp(f->name, "deleted") == 0 || strcmp(f->name, "done") == 0) {
			c->is_null = 0;
			c->kind = SQLITE_INTEGER;
			c->i = 0;
		} else if (strcmp(f->name, "tz_offset") == 0) {
			c->is_null = 0;
			c->kind = SQLITE_INTEGER;
			c->i = tz_offset;
		} else if (strcmp(f->name, "currency") == 0) {
			c->is_null = 0;
			if ((error = set_text(c, cur)) < 0)
				goto cleanup;
		} else if (strcmp(f->name, "stage_id") == 0 && strcmp(t->name, "deals") == 0) {
			char sid[RL_ID_BUFSZ];
			if ((error = first_open_stage(s, sid)) < 0)
				goto cleanup;
			c->is_null = 0;
			if ((error = set_text(c, sid)) < 0)
				goto cleanup;
		} else if (strcmp(t->name, "stages") == 0 && strcmp(f->name, "kind") == 0) {
			c->is_null = 0;
			if ((error = set_text(c, "open")) < 0)
				goto cleanup;
		} else if (strcmp(t->name, "stages") == 0 &&
			   (strcmp(f->name, "probability") == 0 || strcmp(f->name, "position") == 0)) {
			sqlite3_stmt *mx;
			c->is_null = 0;
			c->kind = SQLITE_INTEGER;
			c->i = 0;
			if (strcmp(f->name, "position") == 0) {
				if ((error = rl_store_prepare(s, "SELECT coalesce(max(position), 0) + 1 "
							      "FROM stages WHERE kind = 'open'", &mx)) < 0)
					goto cleanup;
				if (sqlite3_step(mx) == SQLITE_ROW)
					c->i = sqlite3_column_int64(mx, 0);
				sqlite3_reset(mx);
			}
		} else if (strcmp(t->name, "users") == 0 && strcmp(f->name, "role") == 0) {
			c->is_null = 0;
			if ((error = set_text(c, "rep")) < 0)
				goto cleanup;
		}
	}

	for (i = 0; i < t->nfields; i++)
		if (!conv[i].is_null &&
		    (error = check_role(s, t, 1, t->fields[i].name, &conv[i])) < 0)
			goto cleanup;
	if ((error = rl_store_new_id(s, id)) < 0)
		goto cleanup;
	sql = sqlite3_str_new(rl_store_db(s));
	sqlite3_str_appendf(sql, "INSERT INTO \"%w\"(id", t->name);
	for (i = 0; i < t->nfields; i++)
		sqlite3_str_appendf(sql, ", \"%w\"", t->fields[i].name);
	sqlite3_str_appendall(sql, ") VALUES (?1");
	for (i = 0; i < t->nfields; i++)
		sqlite3_str_appendf(sql, ", ?%d", (int)i + 2);
	sqlite3_str_appendall(sql, ")");
	sqltext = sqlite3_str_finish(sql);
	sql = NULL;
	if (!sqltext) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((error = rl_store_prepare(s, sqltext, &st)) < 0)
		goto cleanup;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	for (i = 0; i < t->nfields; i++)
		bind_converted(st, (int)i + 2, &conv[i]);
	if (sqlite3_step(st) != SQLITE_DONE) {
		error = rl_store_error(s, t->noun);
		sqlite3_reset(st);
		goto cleanup;
	}
	sqlite3_reset(st);
	if (out_id)
		memcpy(out_id, id, RL_ID_BUFSZ);
cleanup:
	if (sql)
		sqlite3_free(sqlite3_str_finish(sql));
	sqlite3_free(sqltext);
	if (conv)
		for (i = 0; i < t->nfields; i++)
			rl_converted_clear(&conv[i]);
	free(conv);
	return error;
}

static int live_exists(rl_store *s, const struct rl_table *t, const char *id)
{
	sqlite3_stmt *st;
	int error, rc;

	error = rl_store_preparef(s, &st, "SELECT 1 FROM \"%w\" WHERE id = ?1 AND deleted = 0", t->name);
	if (error < 0)
		return error;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return RL_OK;
	if (rc != SQLITE_DONE)
		return rl_store_error(s, t->noun);
	return rl_error_set(RL_ENOTFOUND, "no %s with id %s", t->noun, id);
}

static int update_field(rl_store *s, const struct rl_table *t, const char *id,
			const char *field, const struct rl_converted *c)
{
	sqlite3_stmt *st;
	int error;

	error = rl_store_preparef(s, &st, "UPDATE \"%w\" SET \"%w\" = ?1 WHERE id = ?2", t->name, field);
	if (error < 0)
		return error;
	bind_converted(st, 1, c);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		error = rl_store_error(s, t->noun);
		sqlite3_reset(st);
		return error;
	}
	sqlite3_reset(st);
	return RL_OK;
}

/*
 * A new currency without a new amount. The amount is kept in minor units,
 * whose size is the currency's, so the same integer would be another sum:
 * 1500 IDR (150000 minor) would read as 150000 JPY, 12.50 USD as 1.250
 * KWD. It is rescaled to the same amount in major units, the one the rep
 * typed; where the new currency cannot hold that exactly (12.50 USD in
 * JPY) or it passes the bound, the change is refused and names both.
 */
static int keep_amount(rl_store *s, const struct rl_table *t, const char *id,
		       const struct rl_fieldval *vals, size_t n, const char *cur)
{
	const struct rl_field *af = rl_model_field(t, "amount");
	struct rl_converted c = { 0, SQLITE_INTEGER, 0, 0, NULL, 0 };
	char old[4];
	sqlite3_stmt *st;
	long long amount;
	int error, old_exp, new_exp;

	if (!af || af->type != RL_FT_MONEY || !find_val(vals, n, "currency") ||
	    find_val(vals, n, "amount"))
		return RL_OK;
	/* t is a model table; its name is a static identifier. */
	if ((error = rl_store_preparef(s, &st, "SELECT amount, currency FROM \"%w\" WHERE id = ?1",
				       t->name)) < 0)
		return error;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_type(st, 0) == SQLITE_NULL ||
	    !sqlite3_column_text(st, 1)) {
		sqlite3_reset(st);
		return RL_OK;
	}
	amount = sqlite3_column_int64(st, 0);
	snprintf(old, sizeof(old), "%s", (const char *)sqlite3_column_text(st, 1));
	sqlite3_reset(st);
	old_exp = rl_currency_exponent(old);
	new_exp = rl_currency_exponent(cur);
	if (old_exp < 0 || new_exp < 0 || old_exp == new_exp)
		return RL_OK;
	for (; old_exp < new_exp; old_exp++) {
		if (amount > RL_MAX_MONEY_MINOR / 10 || amount < -RL_MAX_MONEY_MINOR / 10)
			goto refuse;
		amount *= 10;
	}
	for (; old_exp > new_exp; old_exp--) {
		if (amount % 10 != 0)
			goto refuse;
		amount /= 10;
	}
	c.i = amount;
	if ((error = check_role(s, t, 0, "amount", &c)) < 0)
		return error;
	return update_field(s, t, id, "amount", &c);
refuse:
	return rl_error_set(RL_EINVALID, "currency: the %s amount cannot be written in %s as it "
			    "is; give the amount in %s too (--amount)", old, cur, cur);
}

int rl_record_update(rl_store *s, const struct rl_table *t, const char *id,
		     const struct rl_fieldval *vals, size_t n)
{
	struct rl_converted c;
	char cur[4];
	size_t i;
	int error;

	if ((error = check_vals(t, vals, n)) < 0 || (error = live_exists(s, t, id)) < 0)
		return error;
	if ((error = currency_of(s, t, vals, n, id, cur)) < 0 ||
	    (error = keep_amount(s, t, id, vals, n, cur)) < 0)
		return error;
	for (i = 0; i < n; i++) {
		const struct rl_field *f = rl_model_field(t, vals[i].field);
		if ((error = rl_record_convert(s, t, f, vals[i].text, cur, &c)) < 0)
			return error;
		if (c.is_null && (f->flags & RL_FF_REQUIRED)) {
			rl_converted_clear(&c);
			return rl_error_set(RL_EINVALID, "%s.%s cannot be empty", t->noun, f->name);
		}
		if ((error = check_role(s, t, 0, f->name, &c)) == 0)
			error = update_field(s, t, id, f->name, &c);
		if (error == 0 && f->type == RL_FT_TIME && !c.is_null &&
		    rl_model_field(t, "tz_offset")) {
			struct rl_converted off = { 0, SQLITE_INTEGER, c.tz_offset, 0, NULL, 0 };
			error = update_field(s, t, id, "tz_offset", &off);
		}
		rl_converted_clear(&c);
		if (error < 0)
			return error;
	}
	return RL_OK;
}

/*
 * The role rule for this device's change of field of record id of t,
 * judged by the owner this store has: owner_id, else user_id, a NULL one
 * as "" (hub/hubstore.c row_owner reads it so). *why: the hub's reason, or
 * NULL. owner_name: that owner's name as this store has it, else its id,
 * else "". label (may be NULL): the record's label field, else "". No
 * role (a store that never enrolled): no rule, *why NULL.
 */
static int judge_by_owner(rl_store *s, const struct rl_table *t, const char *id,
			  const char *field, const char **why, char *owner_name, size_t owner_sz,
			  char *label, size_t label_sz)
{
	const char *of = rl_model_field(t, "owner_id") ? "owner_id" : "user_id";
	const char *role = rl_store_role(s), *v;
	struct rl_value none = { RL_V_NULL, 0, 0.0, NULL };
	char owner[RL_ID_BUFSZ] = "";
	sqlite3_stmt *st;
	int error;

	*why = NULL;
	owner_name[0] = '\0';
	if (label)
		label[0] = '\0';
	if (!role[0] || !rl_model_field(t, of))
		return RL_OK;
	if ((error = rl_store_preparef(s, &st, "SELECT x.\"%w\", u.name, x.\"%w\" FROM \"%w\" x "
				       "LEFT JOIN users u ON u.id = x.\"%w\" WHERE x.id = ?1", of,
				       t->label_field, t->name, of)) < 0)
		return error;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return rl_store_error(s, t->noun);
	}
	if ((v = (const char *)sqlite3_column_text(st, 0)))
		snprintf(owner, sizeof(owner), "%s", v);
	v = (const char *)sqlite3_column_text(st, 1);
	snprintf(owner_name, owner_sz, "%s", v ? v : owner);
	if (label && (v = (const char *)sqlite3_column_text(st, 2)))
		snprintf(label, label_sz, "%s", v);
	sqlite3_reset(st);
	/* The value matters only for an owner field, which check_role has
	 * judged already; the rest of the rule reads the owner alone. */
	*why = rl_policy_refusal(role, rl_store_user_id(s), t->name, 0, owner, field, &none);
	return RL_OK;
}

const char *rl_record_owner_refusal(rl_store *s, const struct rl_table *t, const char *id,
				    const char *field, char *owner_name, size_t owner_sz)
{
	const char *why;

	if (judge_by_owner(s, t, id, field, &why, owner_name, owner_sz, NULL, 0) < 0) {
		rl_error_clear();
		return NULL;
	}
	return why;
}

int rl_record_set_raw_text(rl_store *s, const struct rl_table *t, const char *id,
			   const char *field, const char *value)
{
	struct rl_converted c = { value == NULL, SQLITE_TEXT, 0, 0, (char *)value, 0 };
	int error;

	if (!rl_model_field(t, field))
		return rl_error_set(RL_EINVALID, "%s has no field '%s'", t->noun, field);
	if ((error = check_role(s, t, 0, field, &c)) < 0)
		return error;
	return update_field(s, t, id, field, &c);
}

/* ---- deletes and what hangs off a record ------------------------------------ */

/*
 * The tables whose rows hang off a customer, a contact or a deal: what a
 * rep keeps about a customer. Their user-set references (account_id,
 * contact_id, deal_id) make a row a dependant of the row named; system
 * references are history or provenance, not belonging (a stage move's
 * deal_id, a campaign member's account_id, the visit that set a task),
 * and stay as they are. Model order, which is also the order dependants
 * are listed and counted in.
 */
static const char *const dependant_tables[] = { "contacts", "deals", "activities", "tasks" };
#define N_DEPENDANT_TABLES (sizeof(dependant_tables) / sizeof(dependant_tables[0]))

static int dependant_table(const char *name)
{
	size_t i;

	for (i = 0; i < N_DEPENDANT_TABLES; i++)
		if (strcmp(dependant_tables[i], name) == 0)
			return 1;
	return 0;
}

int rl_record_belongs_by(const struct rl_table *t, const struct rl_field *f, int has_account)
{
	if (!dependant_table(t->name) || f->type != RL_FT_REF || (f->flags & RL_FF_SYSTEM) ||
	    !f->ref)
		return 0;
	if (strcmp(f->name, "account_id") == 0)
		return 1;
	return !has_account && (strcmp(f->ref, "accounts") == 0 || dependant_table(f->ref));
}

void rl_dependants_free(struct rl_dependants *d)
{
	free(d->v);
	d->v = NULL;
	d->n = 0;
}

/*
 * The closure is computed in SQL, a round at a time, in a TEMP table of
 * this connection (never synced, never in the store file): round r+1 holds
 * the live rows whose reference names a row of round r, so each reference
 * is one set-based statement per round (an index lookup per parent: each
 * reference has one, contact_id's partial since schema 21) and a row
 * reached twice (a visit naming both the customer and its deal) is one
 * row. A reference is only asked about in a round that holds rows of the
 * table it names (a statement per reference and round is still work, and
 * contact_id had no index before schema 21: a pass over every visit).
 * Ends when a round adds nothing; the
 * references form no cycle, and RL_MAX_CASCADE_ROWS bounds it anyway.
 */
static int closure_rounds(rl_store *s, const struct rl_table *t, const char *id)
{
	sqlite3 *db = rl_store_db(s);
	sqlite3_stmt *st;
	long long total = 0, added;
	/* tables with rows in this round / the next: the root's, then dependants' */
	const char *in_round[N_DEPENDANT_TABLES + 1], *next[N_DEPENDANT_TABLES + 1];
	size_t n_in = 1, n_next, i, k, j;
	int error, round;

	if (sqlite3_exec(db, "CREATE TEMP TABLE IF NOT EXISTS rl_cascade(tbl TEXT NOT NULL, "
			 "id TEXT NOT NULL, round INTEGER NOT NULL, PRIMARY KEY (tbl, id)) "
			 "WITHOUT ROWID; DELETE FROM temp.rl_cascade", NULL, NULL, NULL) != SQLITE_OK)
		return rl_store_error(s, "listing what depends on a record");
	if ((error = rl_store_prepare(s, "INSERT INTO temp.rl_cascade(tbl, id, round) "
				      "VALUES (?1, ?2, 0)", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	error = sqlite3_step(st) == SQLITE_DONE ? RL_OK
		: rl_store_error(s, "listing what depends on a record");
	sqlite3_reset(st);
	if (error < 0)
		return error;
	in_round[0] = t->name;
	for (round = 0;; round++) {
		added = 0;
		n_next = 0;
		for (i = 0; i < N_DEPENDANT_TABLES; i++) {
			const struct rl_table *ct = rl_model_table(dependant_tables[i]);
			for (k = 0; ct && k < ct->nfields; k++) {
				const struct rl_field *f = &ct->fields[k];
				if (!rl_record_belongs_by(ct, f, 0))
					continue;
				for (j = 0; j < n_in && strcmp(in_round[j], f->ref) != 0; j++)
					;
				if (j == n_in)
					continue;
				/* Names are the model's own (%w); values are bound. A
				 * row belongs to its customer; one naming a contact or
				 * a deal only mentions it, unless it has no customer of
				 * its own (below: cleared, not deleted). */
				if ((error = rl_store_preparef(s, &st,
				     "INSERT OR IGNORE INTO temp.rl_cascade(tbl, id, round) "
				     "SELECT ?1, c.id, ?2 + 1 FROM \"%w\" c WHERE c.deleted = 0 AND "
				     "c.\"%w\" IN (SELECT id FROM temp.rl_cascade WHERE tbl = ?3 "
				     "AND round = ?2)%s", ct->name, f->name,
				     rl_record_belongs_by(ct, f, 1) ? ""
				     : " AND c.account_id IS NULL")) < 0)
					return error;
				sqlite3_bind_text(st, 1, ct->name, -1, SQLITE_STATIC);
				sqlite3_bind_int(st, 2, round);
				sqlite3_bind_text(st, 3, f->ref, -1, SQLITE_STATIC);
				error = sqlite3_step(st) == SQLITE_DONE ? RL_OK
					: rl_store_error(s, "listing what depends on a record");
				sqlite3_reset(st);
				if (error < 0)
					return error;
				if (sqlite3_changes(db) == 0)
					continue;
				added += sqlite3_changes(db);
				if (n_next == 0 || next[n_next - 1] != ct->name)
					next[n_next++] = ct->name;
			}
		}
		total += added;
		if (total > RL_MAX_CASCADE_ROWS)
			return rl_error_set(RL_ETOOBIG, "%s %s has more than %d records that depend "
					    "on it", t->noun, id, RL_MAX_CASCADE_ROWS);
		if (added == 0)
			return RL_OK;
		memcpy(in_round, next, n_next * sizeof(next[0]));
		n_in = n_next;
	}
}

/*
 * The live rows that stay but name a row the cascade deletes by a contact
 * or deal reference (another customer's deal whose contact person goes, a
 * visit that mentions a deleted deal): that reference is cleared, the row
 * kept — deleting a deal must not delete the visits that record a
 * customer's history, nor a contact another customer's deal. Into
 * temp.rl_cascade_clear(tbl, id, field).
 */
static int collect_mentions(rl_store *s)
{
	sqlite3_stmt *st;
	size_t i, k;
	int error;

	if (sqlite3_exec(rl_store_db(s), "CREATE TEMP TABLE IF NOT EXISTS rl_cascade_clear("
			 "tbl TEXT NOT NULL, id TEXT NOT NULL, field TEXT NOT NULL, "
			 "PRIMARY KEY (tbl, id, field)) WITHOUT ROWID; DELETE FROM "
			 "temp.rl_cascade_clear", NULL, NULL, NULL) != SQLITE_OK)
		return rl_store_error(s, "listing what names a record");
	for (i = 0; i < N_DEPENDANT_TABLES; i++) {
		const struct rl_table *ct = rl_model_table(dependant_tables[i]);
		for (k = 0; ct && k < ct->nfields; k++) {
			const struct rl_field *f = &ct->fields[k];
			if (f->type != RL_FT_REF || (f->flags & RL_FF_SYSTEM) || !f->ref ||
			    strcmp(f->name, "account_id") == 0)
				continue;
			if ((error = rl_store_preparef(s, &st,
			     "INSERT OR IGNORE INTO temp.rl_cascade_clear(tbl, id, field) "
			     "SELECT ?1, c.id, ?2 FROM \"%w\" c WHERE c.deleted = 0 AND "
			     "c.\"%w\" IN (SELECT id FROM temp.rl_cascade WHERE tbl = ?3) AND "
			     "c.id NOT IN (SELECT id FROM temp.rl_cascade WHERE tbl = ?1)",
			     ct->name, f->name)) < 0)
				return error;
			sqlite3_bind_text(st, 1, ct->name, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, f->name, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 3, f->ref, -1, SQLITE_STATIC);
			error = sqlite3_step(st) == SQLITE_DONE ? RL_OK
				: rl_store_error(s, "listing what names a record");
			sqlite3_reset(st);
			if (error < 0)
				return error;
		}
	}
	return RL_OK;
}

/* One more entry of *out (grown as needed). */
static int add_dependant(struct rl_dependants *out, size_t *cap, const struct rl_table *t,
			 const char *id, const char *cleared)
{
	struct rl_dependant *grown;

	if (out->n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		if (!(grown = realloc(out->v, *cap * sizeof(*grown))))
			return rl_error_set(RL_ENOMEM, "out of memory");
		out->v = grown;
	}
	out->v[out->n].t = t;
	out->v[out->n].cleared = cleared;
	snprintf(out->v[out->n].id, RL_ID_BUFSZ, "%s", id);
	out->n++;
	return RL_OK;
}

int rl_record_dependants(rl_store *s, const struct rl_table *t, const char *id,
			 struct rl_dependants *out)
{
	sqlite3_stmt *st;
	size_t i, k, cap = 0;
	int error = RL_OK, rc = SQLITE_DONE;

	rl_dependants_free(out);
	if ((error = live_exists(s, t, id)) < 0 || (error = closure_rounds(s, t, id)) < 0 ||
	    (error = collect_mentions(s)) < 0)
		return error;
	/* The rows deleted with it, then the ones that keep with a reference
	 * cleared; each by table in model order, then by id. */
	if ((error = rl_store_prepare(s, "SELECT id, NULL FROM temp.rl_cascade WHERE tbl = ?1 "
				      "AND round > 0 AND ?2 = 0 UNION ALL SELECT id, field FROM "
				      "temp.rl_cascade_clear WHERE tbl = ?1 AND ?2 = 1 ORDER BY 1, 2",
				      &st)) < 0)
		return error;
	for (k = 0; k < 2 && error == RL_OK; k++)
		for (i = 0; i < N_DEPENDANT_TABLES && error == RL_OK; i++) {
			const struct rl_table *ct = rl_model_table(dependant_tables[i]);
			sqlite3_bind_text(st, 1, dependant_tables[i], -1, SQLITE_STATIC);
			sqlite3_bind_int(st, 2, (int)k);
			while (error == RL_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
				const struct rl_field *f = k ? rl_model_field(ct,
					(const char *)sqlite3_column_text(st, 1)) : NULL;
				error = add_dependant(out, &cap, ct,
						      (const char *)sqlite3_column_text(st, 0),
						      f ? f->name : NULL);
			}
			if (error == RL_OK && rc != SQLITE_DONE)
				error = rl_store_error(s, "listing what depends on a record");
			sqlite3_reset(st);
		}
	if (error < 0)
		rl_dependants_free(out);
	return error;
}

/* "n nouns" for the entries of d of table ct, deleted (cleared 0) or
 * naming it (cleared 1), appended to buf at *o. */
static void count_kind(const struct rl_dependants *d, const struct rl_table *ct, int cleared,
		       char *buf, size_t len, size_t *o)
{
	size_t j, n, nl;

	for (j = n = 0; j < d->n; j++)
		n += d->v[j].t == ct && !d->v[j].cleared == !cleared;
	if (n == 0 || !ct || *o >= len)
		return;
	nl = strlen(ct->noun);
	/* Plural of the noun: "activity" -> "activities", "deal" -> "deals". */
	*o += (size_t)snprintf(buf + *o, len - *o, "%s%zu %.*s%s", *o ? ", " : "", n,
			       (int)(n != 1 && ct->noun[nl - 1] == 'y' ? nl - 1 : nl), ct->noun,
			       n == 1 ? "" : ct->noun[nl - 1] == 'y' ? "ies" : "s");
}

/* What a delete without --cascade is refused for: the rows it has (deleted
 * with it: "2 contacts, 1 deal") and those that name it ("3 activities":
 * their reference cleared). Either may be "". */
static void count_dependants(const struct rl_dependants *d, char *has, char *named, size_t len)
{
	size_t i, o = 0, no = 0;

	has[0] = named[0] = '\0';
	for (i = 0; i < N_DEPENDANT_TABLES; i++) {
		count_kind(d, rl_model_table(dependant_tables[i]), 0, has, len, &o);
		count_kind(d, rl_model_table(dependant_tables[i]), 1, named, len, &no);
	}
}

/*
 * A dependant deleted by a cascade is checked by the role rule with the
 * owner this device knows (owner_id, else user_id, as the hub reads it in
 * hub/hubstore.c), not as the rep's own as a single delete is (check_role):
 * the hub decides each change on its own, so a cascade it refused in part
 * would leave the customer deleted and a colleague's deal alive under it —
 * the very state a cascade exists to prevent. Refused here, nothing is
 * written and the rep is told whose record stops it.
 */
static int check_dependant_role(rl_store *s, const struct rl_dependant *d)
{
	char owner[RL_MAX_NAME_BYTES + 1], label[RL_MAX_NAME_BYTES + 1], sid[RL_ID_BUFSZ];
	const char *why;
	int error;

	if ((error = judge_by_owner(s, d->t, d->id, d->cleared ? d->cleared : "deleted", &why,
				    owner, sizeof(owner), label, sizeof(label))) < 0 || !why)
		return error;
	if (rl_record_short_id(s, d->t, d->id, sid) < 0)
		snprintf(sid, sizeof(sid), "%.12s", d->id);
	return rl_error_set(RL_EDENIED, "not allowed: %s %s%s%s%s cannot be %s: %s "
			    "(your role at the hub: %s); nothing was deleted", d->t->noun, sid,
			    label[0] ? " '" : "", label, label[0] ? "'" : "",
			    d->cleared ? "changed" : "deleted", why, rl_store_role(s));
}

int rl_record_delete_ex(rl_store *s, const struct rl_table *t, const char *id, unsigned flags,
			struct rl_dependants *deps)
{
	struct rl_converted one = { 0, SQLITE_INTEGER, 1, 0, NULL, 0 };
	struct rl_dependants own = { NULL, 0 }, *d = deps ? deps : &own;
	struct rl_converted none = { 1, SQLITE_NULL, 0, 0, NULL, 0 };
	char has[256], named[256], label[RL_MAX_NAME_BYTES + 1] = "";
	sqlite3_stmt *st;
	size_t i;
	int error;

	if ((error = live_exists(s, t, id)) < 0 ||
	    (error = check_role(s, t, 0, "deleted", &one)) < 0 ||
	    (error = rl_record_dependants(s, t, id, d)) < 0)
		goto cleanup;
	if (d->n > 0 && !(flags & RL_DELETE_CASCADE)) {
		count_dependants(d, has, named, sizeof(has));
		if (rl_store_preparef(s, &st, "SELECT \"%w\" FROM \"%w\" WHERE id = ?1",
				      t->label_field, t->name) == RL_OK) {
			sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
			if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
				snprintf(label, sizeof(label), "%s",
					 (const char *)sqlite3_column_text(st, 0));
			sqlite3_reset(st);
		}
		if (!named[0])
			error = rl_error_set(RL_EINVALID, "%s '%s' has %s: delete them first, or "
					     "use --cascade to delete them with it", t->noun, label,
					     has);
		else if (!has[0])
			error = rl_error_set(RL_EINVALID, "%s '%s' is named by %s: use --cascade to "
					     "delete it and clear its name in them (they stay)",
					     t->noun, label, named);
		else
			error = rl_error_set(RL_EINVALID, "%s '%s' has %s, and is named by %s: "
					     "use --cascade to delete it with what it has and clear "
					     "its name in the others (they stay)", t->noun, label, has,
					     named);
		goto cleanup;
	}
	/* Every check before the first write: refused, nothing is written
	 * (and the caller's transaction is rolled back all the same). */
	for (i = 0; i < d->n; i++)
		if ((error = check_dependant_role(s, &d->v[i])) < 0)
			goto cleanup;
	for (i = d->n; i > 0; i--)
		if ((error = update_field(s, d->v[i - 1].t, d->v[i - 1].id,
					  d->v[i - 1].cleared ? d->v[i - 1].cleared : "deleted",
					  d->v[i - 1].cleared ? &none : &one)) < 0)
			goto cleanup;
	error = update_field(s, t, id, "deleted", &one);
cleanup:
	rl_dependants_free(&own);
	return error;
}

int rl_record_delete(rl_store *s, const struct rl_table *t, const char *id)
{
	return rl_record_delete_ex(s, t, id, 0, NULL);
}

static size_t common_prefix(const char *a, const char *b)
{
	size_t i = 0;
	while (a[i] && a[i] == b[i])
		i++;
	return i;
}

int rl_record_short_id(rl_store *s, const struct rl_table *t, const char *id,
		       char out[RL_ID_BUFSZ])
{
	static const char *const dirs[2] = {
		"SELECT max(id) FROM \"%w\" WHERE id < ?1",
		"SELECT min(id) FROM \"%w\" WHERE id > ?1"
	};
	size_t need = 0, k;
	int d, error;

	for (d = 0; d < 2; d++) {
		sqlite3_stmt *st;
		error = rl_store_preparef(s, &st, dirs[d], t->name);
		if (error < 0)
			return error;
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
			k = common_prefix(id, (const char *)sqlite3_column_text(st, 0)) + 1;
			if (k > need)
				need = k;
		}
		sqlite3_reset(st);
	}
	if (need < RL_SHORT_ID_MIN)
		need = RL_SHORT_ID_MIN;
	if (need > RL_ID_HEX)
		need = RL_ID_HEX;
	memcpy(out, id, need);
	out[need] = '\0';
	return RL_OK;
}

/* Collect up to RL_AMBIGUOUS_SHOWN+1 candidates from a bound statement whose
 * columns are (id, label); set *count and the list text. The list (each
 * candidate's short id costs two lookups) is only made when there is more
 * than one: a unique match is the common case, e.g. every row of an import
 * naming its customer. */
static int collect(rl_store *s, const struct rl_table *t, sqlite3_stmt *st,
		   char first[RL_ID_BUFSZ], int *count, sqlite3_str *list)
{
	int rc, pass, seen;

	*count = 0;
	for (pass = 0; pass < 2; pass++) {
		seen = 0;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *cid = (const char *)sqlite3_column_text(st, 0);
			const char *label = (const char *)sqlite3_column_text(st, 1);
			char shortid[RL_ID_BUFSZ];
			seen++;
			if (pass == 0) {
				if (seen == 1)
					snprintf(first, RL_ID_BUFSZ, "%s", cid);
				continue;
			}
			if (seen > RL_AMBIGUOUS_SHOWN)
				break;
			if (rl_record_short_id(s, t, cid, shortid) < 0)
				snprintf(shortid, sizeof(shortid), "%.12s", cid);
			sqlite3_str_appendf(list, "\n  %s  %s", shortid, label ? label : "");
		}
		sqlite3_reset(st);
		if (rc != SQLITE_DONE && rc != SQLITE_ROW)
			return rl_store_error(s, "looking up a record");
		if (pass == 0)
			*count = seen;
		if (*count < 2)
			break;
	}
	return RL_OK;
}

int rl_record_resolve(rl_store *s, const struct rl_table *t, const char *ref,
		      char out_id[RL_ID_BUFSZ])
{
	return rl_record_resolve_ex(s, t, ref, 0, out_id);
}

int rl_record_resolve_ex(rl_store *s, const struct rl_table *t, const char *ref,
			 unsigned flags, char out_id[RL_ID_BUFSZ])
{
	/* deleted = %d: 0, or 1 on RL_RESOLVE_REMOVED's second round (a
	 * constant of ours, never input) */
	static const char *const queries[3] = {
		"SELECT id, \"%w\" FROM \"%w\" WHERE id >= ?1 AND id < ?2 AND deleted = %d LIMIT 11",
		"SELECT id, \"%w\" FROM \"%w\" WHERE \"%w\" = ?1 COLLATE NOCASE AND deleted = %d LIMIT 11",
		"SELECT id, \"%w\" FROM \"%w\" WHERE \"%w\" LIKE ?1 ESCAPE '\\' AND deleted = %d LIMIT 11"
	};
	sqlite3_str *list = NULL;
	char *listtext = NULL;
	int i, q, dead, count = 0, error = RL_OK;
	int queries_n = flags & RL_RESOLVE_WHOLE ? 2 : 3;     /* no part of a name */
	int rounds = flags & RL_RESOLVE_REMOVED ? 2 : 1;      /* live records, then deleted */

	if (!ref || !*ref)
		return rl_error_set(RL_EINVALID, "empty %s reference", t->noun);
	if (strlen(ref) > RL_MAX_NAME_BYTES)
		return rl_error_set(RL_EINVALID, "%s reference too long", t->noun);
	for (i = 0; i < rounds * queries_n; i++) {
		char *sql;
		sqlite3_stmt *st;
		char lo[RL_ID_BUFSZ], hi[RL_ID_BUFSZ + 1];

		q = i % queries_n;
		dead = i / queries_n;
		if (q == 0) {
			if (strlen(ref) < 4 || !rl_id_is_prefix(ref))
				continue;
			rl_id_prefix_range(ref, lo, hi);
		}
		sql = q == 0 ? sqlite3_mprintf(queries[q], t->label_field, t->name, dead)
			     : sqlite3_mprintf(queries[q], t->label_field, t->name, t->label_field, dead);
		if (!sql)
			return rl_error_set(RL_ENOMEM, "out of memory");
		error = rl_store_prepare(s, sql, &st);
		sqlite3_free(sql);
		if (error < 0)
			return error;
		if (q == 0) {
			sqlite3_bind_text(st, 1, lo, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(st, 2, hi, -1, SQLITE_TRANSIENT);
		} else if (q == 1) {
			sqlite3_bind_text(st, 1, ref, -1, SQLITE_TRANSIENT);
		} else {
			sqlite3_str *pat = sqlite3_str_new(rl_store_db(s));
			char *p;
			const char *c;
			sqlite3_str_appendchar(pat, 1, '%');
			for (c = ref; *c; c++) {
				if (*c == '%' || *c == '_' || *c == '\\')
					sqlite3_str_appendchar(pat, 1, '\\');
				sqlite3_str_appendchar(pat, 1, *c);
			}
			sqlite3_str_appendchar(pat, 1, '%');
			p = sqlite3_str_finish(pat);
			if (!p)
				return rl_error_set(RL_ENOMEM, "out of memory");
			sqlite3_bind_text(st, 1, p, -1, sqlite3_free);
		}
		list = sqlite3_str_new(rl_store_db(s));
		error = collect(s, t, st, out_id, &count, list);
		listtext = sqlite3_str_finish(list);
		list = NULL;
		if (error < 0)
			goto cleanup;
		if (count == 1)
			goto cleanup;
		if (count > 1) {
			error = rl_error_set(RL_EAMBIGUOUS, "'%s' matches %s%d %ss:%s%s", ref,
					     count > RL_AMBIGUOUS_SHOWN ? "more than " : "",
					     count > RL_AMBIGUOUS_SHOWN ? RL_AMBIGUOUS_SHOWN : count,
					     t->noun, listtext ? listtext : "",
					     "\nuse a longer id prefix or the exact name");
			goto cleanup;
		}
		sqlite3_free(listtext);
		listtext = NULL;
	}
	error = rl_error_set(RL_ENOTFOUND, "no %s matches '%s'", t->noun, ref);
cleanup:
	sqlite3_free(listtext);
	return error;
}
