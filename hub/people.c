/*
 * people.c — users, enrolment tokens, devices and enrolment on the hub,
 * and the admin's commands over them: user add/edit/remove, token
 * cancel, device revoke. Each is one transaction and one audit commit
 * (hub_audit_begin/mark); a change of a user is a change of the synced
 * users table (hub_write_field, pulled by every device), a token or
 * device event one of the hub's own tables (hub_log_event, never pulled).
 *
 * A token is "rl1." + base64url of a small JSON object carrying what a new
 * device needs to reach and trust the hub — its address, the name on its
 * certificate, the server CA certificate and that certificate's SHA-256
 * fingerprint — plus a token id and a 256-bit one-time secret. The hub keeps
 * only a salted PBKDF2-SHA256 hash of the secret, compares in constant time,
 * and marks the token used in the same transaction that records the device.
 */
#include "hub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>
#include <sys/random.h>
#include <utf8proc.h>

#include "relasi/error.h"
#include "relasi/jsonw.h"
#include "relasi/limits.h"
#include "relasi/model.h"
#include "relasi/pki.h"
#include "relasi/valid.h"

#define TOKEN_PREFIX "rl1."
#define TOKEN_MAX 8192          /* the whole token text; a CA certificate is ~700 bytes */

/* A token is made whole — its secret, hash and text — before the
 * transaction that stores it, so that nothing can fail between that
 * commit and the admin holding the text, and so that `user add` stores
 * the user and the token in one transaction. */
struct token {
	char id_hex[33];
	unsigned char salt[16], hash[32];
	char *text;             /* malloc'd "rl1." + base64url(JSON) */
};

static int token_make(const char *dir, struct token *t);
static int token_store(rl_store *s, const struct token *t, const char *user, long ttl);
static int check_ttl(long ttl);

static int random_bytes(unsigned char *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = getrandom(buf + got, len - got, 0);
		if (n < 0)
			return rl_error_set(RL_ERROR, "getrandom failed");
		got += (size_t)n;
	}
	return RL_OK;
}

static void hex(char *out, const unsigned char *in, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;
	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

/* Compare without an early exit, so timing says nothing about the secret. */
static int equal_ct(const unsigned char *a, const unsigned char *b, size_t len)
{
	volatile unsigned char d = 0;
	size_t i;
	for (i = 0; i < len; i++)
		d |= a[i] ^ b[i];
	return d == 0;
}

static int pbkdf2(const char *secret, const unsigned char *salt, size_t saltlen, int rounds,
		  unsigned char out[32])
{
	mbedtls_md_context_t md;
	int rc;

	mbedtls_md_init(&md);
	rc = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
	if (rc == 0)
		rc = mbedtls_pkcs5_pbkdf2_hmac(&md, (const unsigned char *)secret, strlen(secret),
					       salt, saltlen, (unsigned int)rounds, 32, out);
	mbedtls_md_free(&md);
	return rc ? rl_error_set(RL_ERROR, "PBKDF2 failed (%d)", rc) : RL_OK;
}

/* ---- users ---------------------------------------------------------------------- */

/* The live user of login into id. RL_ENOTFOUND naming the login when there
 * is none; when a user of that login was removed (users.deleted = 1: a
 * tombstone, kept for the records they own) the message says so, and
 * *removed (may be NULL) is set, so that `user remove` run twice can tell
 * "done already" from a typo. */
static int find_user(rl_store *s, const char *login, char id[RL_ID_BUFSZ], int *removed)
{
	sqlite3_stmt *st;
	int error, rc, deleted = 0;

	if (removed)
		*removed = 0;
	if ((error = rl_store_prepare(s, "SELECT id, deleted FROM users WHERE login = ?1 "
				      "ORDER BY deleted, id LIMIT 1", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, login, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(id, RL_ID_BUFSZ, "%s", (const char *)sqlite3_column_text(st, 0));
		deleted = sqlite3_column_int(st, 1);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return rl_store_error(s, "looking up the user");
	if (rc == SQLITE_DONE)
		return rl_error_set(RL_ENOTFOUND, "no user with login '%s'", login);
	if (deleted) {
		if (removed)
			*removed = 1;
		return rl_error_set(RL_ENOTFOUND, "user '%s' was removed (relasi-hub user list "
				    "--all); 'user add' makes a new user of that login", login);
	}
	return RL_OK;
}

/* One field of a user as `user add` and `user edit` take it: required
 * fields non-empty, every value checked by the model's rule for it (a
 * role of the list, bounded text without control characters). */
static int check_user_field(const char *field, const char *value, int required)
{
	const struct rl_table *users = rl_model_table("users");
	struct rl_value v = { RL_V_TEXT, 0, 0, value };

	if (!value || !*value)
		return required ? rl_error_set(RL_EINVALID, "user %s is missing", field) : RL_OK;
	if (rl_model_check_value(users, rl_model_field(users, field), &v) < 0)
		return strcmp(field, "role") == 0
		       ? rl_error_set(RL_EINVALID, "--role '%.32s': use rep, manager, marketing or "
				      "admin", value)
		       : rl_error_set(RL_EINVALID, "a user's %s is UTF-8 text of at most %d bytes "
				      "without control characters", field, RL_MAX_NAME_BYTES);
	return RL_OK;
}

int hub_user_add(rl_store *s, const char *dir, const char *login, const char *name,
		 const char *role, const char *team, long ttl, char id[RL_ID_BUFSZ], char **token)
{
	const char *fields[4] = { "login", "name", "role", "team" };
	const char *values[4] = { login, name, role, team && *team ? team : NULL };
	struct token t = { .text = NULL };
	sqlite3_stmt *st;
	long long first_seq;
	char note[160];
	int error, i, exists;

	*token = NULL;
	for (i = 0; i < 4; i++)
		if ((error = check_user_field(fields[i], values[i], i < 3)) < 0)
			return error;     /* the team is optional */
	if ((error = check_ttl(ttl)) < 0 || (error = token_make(dir, &t)) < 0 ||
	    (error = rl_store_begin(s)) < 0)
		goto cleanup;
	if ((error = rl_store_prepare(s, "SELECT 1 FROM users WHERE login = ?1 AND deleted = 0",
				      &st)) < 0)
		goto fail;
	sqlite3_bind_text(st, 1, login, -1, SQLITE_STATIC);
	exists = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	if (exists) {
		error = rl_error_set(RL_EINVALID, "a user with login '%s' exists", login);
		goto fail;
	}
	if ((error = hub_audit_begin(s, &first_seq)) < 0 ||
	    (error = rl_store_new_id(s, id)) < 0 ||
	    (error = rl_store_prepare(s, "INSERT INTO users(id, login, name, role, team) "
				      "VALUES (?1, ?2, ?3, ?4, ?5)", &st)) < 0)
		goto fail;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	for (i = 0; i < 4; i++)
		if (values[i])
			sqlite3_bind_text(st, i + 2, values[i], -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_reset(st);
		error = rl_store_error(s, "adding the user");
		goto fail;
	}
	sqlite3_reset(st);
	/* Log every field so that devices learn their colleagues' names (and
	 * teams: the reports filter on them). */
	for (i = 0; i < 5; i++) {
		struct rl_value v = { RL_V_TEXT, 0, 0, i < 4 ? values[i] : NULL };
		long long seq;
		if (i == 3 && !values[i])
			continue;
		if (i == 4) {
			v.type = RL_V_INT;
			v.i = 0;
		}
		if ((error = hub_write_field(s, "users", id, i < 4 ? fields[i] : "deleted", &v,
					     "admin", &seq)) < 0)
			goto fail;
	}
	if ((error = token_store(s, &t, id, ttl)) < 0)
		goto fail;
	snprintf(note, sizeof(note), "user %.60s added as %.20s, enrolment token %.12s", login, role,
		 t.id_hex);
	if ((error = hub_audit_mark(s, first_seq, "admin", "hub", NULL, 0, 0, note)) < 0 ||
	    (error = rl_store_commit(s)) < 0)
		goto fail;
	*token = t.text;
	t.text = NULL;
	goto cleanup;
fail:
	rl_store_rollback(s);
cleanup:
	free(t.text);
	return error;
}

/*
 * `user edit`: each field given that differs from the user's is a change
 * the hub makes (hub_write_field, kind 'admin'), which every device pulls
 * like any other: users is a synced table, and a device takes its own role
 * from WELCOME at its next sync. All of them in one transaction, one
 * commit of the audit history. The role goes into the commit's summary
 * (who made whom a manager is what the history is read for); a name or a
 * team, free text, only by its field name there (the tree has the values).
 */
int hub_user_edit(rl_store *s, const char *login, const char *role, const char *name,
		  const char *team, json_t **changed)
{
	const char *fields[3] = { "role", "name", "team" };
	const char *values[3] = { role, name, team };
	char id[RL_ID_BUFSZ], note[160];
	sqlite3_stmt *st;
	json_t *list = NULL;
	long long first_seq, seq;
	size_t len;
	int error, i;

	*changed = NULL;
	for (i = 0; i < 3; i++)
		if (values[i] && (error = check_user_field(fields[i], values[i], i < 2)) < 0)
			return error;     /* an empty team clears it */
	if (!(list = json_array()))
		return rl_error_set(RL_ENOMEM, "out of memory");
	if ((error = rl_store_begin(s)) < 0)
		goto cleanup;
	if ((error = find_user(s, login, id, NULL)) < 0 ||
	    (error = hub_audit_begin(s, &first_seq)) < 0 ||
	    (error = rl_store_prepare(s, "SELECT role, name, team FROM users WHERE id = ?1",
				      &st)) < 0)
		goto fail;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		error = rl_store_error(s, "reading the user");
		goto fail;
	}
	for (i = 0; i < 3; i++) {
		const char *old = (const char *)sqlite3_column_text(st, i);
		const char *now = values[i] && *values[i] ? values[i] : NULL;
		if (!values[i] || (old ? now && strcmp(old, now) == 0 : !now))
			continue;
		if (json_array_append_new(list, json_pack("{s:s, s:s?, s:s?}", "field", fields[i],
							  "old", old, "new", now)) < 0) {
			sqlite3_reset(st);
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto fail;
		}
	}
	sqlite3_reset(st);
	if (json_array_size(list) == 0) {        /* nothing to change: nothing written */
		rl_store_rollback(s);
		*changed = list;
		return RL_OK;
	}
	snprintf(note, sizeof(note), "user %.60s edited:", login);
	for (i = 0; i < (int)json_array_size(list); i++) {
		json_t *c = json_array_get(list, (size_t)i);
		const char *f = json_string_value(json_object_get(c, "field"));
		const char *v = json_string_value(json_object_get(c, "new"));
		struct rl_value val = { v ? RL_V_TEXT : RL_V_NULL, 0, 0, v };
		if ((error = hub_write_field(s, "users", id, f, &val, "admin", &seq)) < 0)
			goto fail;
		len = strlen(note);
		if (strcmp(f, "role") == 0)
			snprintf(note + len, sizeof(note) - len, "%s role %s -> %s", i ? "," : "",
				 json_string_value(json_object_get(c, "old")), v);
		else
			snprintf(note + len, sizeof(note) - len, "%s %s", i ? "," : "", f);
	}
	if ((error = hub_audit_mark(s, first_seq, "admin", "hub", NULL, 0, 0, note)) < 0 ||
	    (error = rl_store_commit(s)) < 0)
		goto fail;
	*changed = list;
	return RL_OK;
fail:
	rl_store_rollback(s);
cleanup:
	json_decref(list);
	return error;
}

/* ---- tokens ----------------------------------------------------------------------- */

static int b64url_encode(const unsigned char *in, size_t len, char **out)
{
	size_t need = 0, i;
	char *buf;

	mbedtls_base64_encode(NULL, 0, &need, in, len);
	if (!(buf = malloc(need + 1)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	if (mbedtls_base64_encode((unsigned char *)buf, need + 1, &need, in, len) != 0) {
		free(buf);
		return rl_error_set(RL_ERROR, "base64 failed");
	}
	for (i = 0; i < need; i++)
		buf[i] = buf[i] == '+' ? '-' : buf[i] == '/' ? '_' : buf[i];
	while (need && buf[need - 1] == '=')
		need--;
	buf[need] = '\0';
	*out = buf;
	return RL_OK;
}

static int token_make(const char *dir, struct token *t)
{
	char path[4096], fp[RL_FINGERPRINT_BUFSZ], secret_hex[65];
	unsigned char id_raw[16], secret[32];
	char *ca_pem = NULL, *ca_b64 = NULL, *json = NULL, *body = NULL;
	json_t *conf = NULL, *tok = NULL;
	unsigned char *der = NULL;
	size_t dlen = 0;
	int error;

	t->text = NULL;
	if ((error = hub_conf_load(dir, &conf)) < 0)
		return error;
	if ((error = hub_path(path, sizeof(path), dir, HUB_SERVER_CA)) < 0 ||
	    (error = rl_pki_read_file(path, &ca_pem)) < 0)
		goto cleanup;
	/* The token carries the CA compactly, as DER; its fingerprint pins it. */
	if ((error = rl_pki_cert_der(ca_pem, &der, &dlen, fp)) < 0) {
		rl_error_prefix("%s", path);
		goto cleanup;
	}
	if ((error = b64url_encode(der, dlen, &ca_b64)) < 0 ||
	    (error = random_bytes(id_raw, sizeof(id_raw))) < 0 ||
	    (error = random_bytes(secret, sizeof(secret))) < 0 ||
	    (error = random_bytes(t->salt, sizeof(t->salt))) < 0)
		goto cleanup;
	hex(t->id_hex, id_raw, sizeof(id_raw));
	hex(secret_hex, secret, sizeof(secret));
	if ((error = pbkdf2(secret_hex, t->salt, sizeof(t->salt), RL_TOKEN_PBKDF2_ROUNDS,
			    t->hash)) < 0)
		goto cleanup;
	tok = json_pack("{s:O, s:O, s:s, s:s, s:s, s:s}",
			"a", json_object_get(conf, "address"), "n", json_object_get(conf, "server_name"),
			"f", fp, "c", ca_b64, "i", t->id_hex, "s", secret_hex);
	if (!tok || !(json = rl_json_dumps(tok, JSON_COMPACT))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((error = b64url_encode((const unsigned char *)json, strlen(json), &body)) < 0)
		goto cleanup;
	if (!(t->text = malloc(strlen(TOKEN_PREFIX) + strlen(body) + 1))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	memcpy(t->text, TOKEN_PREFIX, strlen(TOKEN_PREFIX));
	memcpy(t->text + strlen(TOKEN_PREFIX), body, strlen(body) + 1);
cleanup:
	json_decref(conf);
	json_decref(tok);
	free(json);
	free(body);
	free(ca_pem);
	free(ca_b64);
	free(der);
	return error;
}

/* Inside the caller's transaction: the token's row for user (an id) and
 * its two events. The audit history gets the token by the first 12 digits
 * of its id: enough to tell it from the admin's others and to find the
 * device that used it, while the history (cloned off-site, readable by
 * every local user) holds neither the whole id nor, ever, the secret. */
static int token_store(rl_store *s, const struct token *t, const char *user, long ttl)
{
	long long now_s = rl_store_now_ms(s) / 1000;
	char now[21], expires[21], tpre[13];
	sqlite3_stmt *st;
	int error, rc;

	rl_time_format_utc(now, now_s);
	rl_time_format_utc(expires, now_s + ttl);
	if ((error = rl_store_prepare(s, "INSERT INTO hub_tokens(id, user_id, salt, hash, rounds, "
				      "created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
				      &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, t->id_hex, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, t->salt, sizeof(t->salt), SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, t->hash, sizeof(t->hash), SQLITE_STATIC);
	sqlite3_bind_int(st, 5, RL_TOKEN_PBKDF2_ROUNDS);
	sqlite3_bind_text(st, 6, now, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, now_s + ttl);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return rl_store_error(s, "storing the token");
	snprintf(tpre, sizeof(tpre), "%.12s", t->id_hex);
	if ((error = hub_log_event(s, "hub_tokens", tpre, "user_id", user, "hub", NULL)) < 0)
		return error;
	return hub_log_event(s, "hub_tokens", tpre, "expires_at", expires, "hub", NULL);
}

static int check_ttl(long ttl)
{
	if (ttl <= 0 || ttl > RL_TOKEN_TTL_MAX_SECONDS)
		return rl_error_set(RL_EINVALID, "token lifetime must be 1 s .. 30 days");
	return RL_OK;
}

int hub_token_create(rl_store *s, const char *dir, const char *login, long ttl, char **token)
{
	struct token t = { .text = NULL };
	char user[RL_ID_BUFSZ], note[128];
	long long first_seq;
	int error;

	*token = NULL;
	if ((error = check_ttl(ttl)) < 0 || (error = find_user(s, login, user, NULL)) < 0 ||
	    (error = token_make(dir, &t)) < 0)
		goto cleanup;
	snprintf(note, sizeof(note), "enrolment token %.12s for %.60s", t.id_hex, login);
	if ((error = rl_store_begin(s)) < 0)
		goto cleanup;
	if ((error = hub_audit_begin(s, &first_seq)) < 0 ||
	    (error = token_store(s, &t, user, ttl)) < 0 ||
	    (error = hub_audit_mark(s, first_seq, "admin", "hub", NULL, 0, 0, note)) < 0 ||
	    (error = rl_store_commit(s)) < 0) {
		rl_store_rollback(s);
		goto cleanup;
	}
	*token = t.text;
	t.text = NULL;
cleanup:
	free(t.text);
	return error;
}

/* ---- enrolment ---------------------------------------------------------------------- */

/* The length of a device name in characters, or -1 when it holds one
 * that must not reach the admin's terminal in `device list`: a control
 * (C0, DEL, C1), a line or paragraph separator, or a bidirectional
 * control, which reorders what follows it on the line (a name ending in
 * U+202E showed the user and revocation columns reversed). Counted in
 * characters, as docs/hub.md says: 22 characters of a non-Latin script,
 * 66 bytes, were refused as more than 64. jansson has checked the UTF-8. */
static long name_chars(const char *s)
{
	const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
	utf8proc_int32_t c;
	utf8proc_ssize_t step;
	long n = 0;

	for (; *p; p += step, n++) {
		if ((step = utf8proc_iterate(p, -1, &c)) <= 0)
			return -1;
		if (rl_char_is_terminal_unsafe(c))
			return -1;
	}
	return n;
}

int hub_enroll(rl_store *s, const char *dir, json_t *req, json_t **resp)
{
	const char *token = json_string_value(json_object_get(req, "token"));
	const char *csr = json_string_value(json_object_get(req, "csr"));
	const char *dname = json_string_value(json_object_get(req, "name"));
	char cn[128], fp[RL_FINGERPRINT_BUFSZ], kh[RL_FINGERPRINT_BUFSZ], user[RL_ID_BUFSZ], now[21];
	char used_by[RL_ID_BUFSZ] = "";
	char cakey[4096], cacrt[4096], tid[33], secret[65], note[160], tpre[13];
	long long first_seq;
	unsigned char hash[32], salt[64], stored[32];
	char *cert = NULL;
	json_t *inner = NULL;
	sqlite3_stmt *st;
	int error, rc, rounds = 0, used = 0, expired = 0, cancelled = 0, again = 0;
	long chars;
	size_t saltlen = 0, hashlen = 0;
	unsigned char raw[TOKEN_MAX];
	size_t rawlen = 0;

	*resp = NULL;
	if (!token || !csr)
		return rl_error_set(RL_EPROTO, "ENROLL needs token and csr");
	/* The name is shown in `device list`: text of a line, bounded. */
	if (json_object_get(req, "name") &&
	    (!dname || (chars = name_chars(dname)) < 1 || chars > 64))
		return rl_error_set(RL_EINVALID, "the device name must be 1-64 printable characters");
	/* Decode the token: prefix, base64url, JSON with i and s. */
	{
		char b64[TOKEN_MAX + 4];
		size_t len = strlen(token), i;
		json_error_t jerr;
		if (strncmp(token, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) != 0 || len > TOKEN_MAX)
			return rl_error_set(RL_EAUTH, "not an enrolment token");
		len -= strlen(TOKEN_PREFIX);
		for (i = 0; i < len; i++) {
			char c = token[strlen(TOKEN_PREFIX) + i];
			b64[i] = c == '-' ? '+' : c == '_' ? '/' : c;
		}
		while (i % 4)
			b64[i++] = '=';
		b64[i] = '\0';
		if (mbedtls_base64_decode(raw, sizeof(raw) - 1, &rawlen, (unsigned char *)b64, i) != 0)
			return rl_error_set(RL_EAUTH, "the enrolment token is damaged");
		if (!(inner = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES, &jerr)))
			return rl_error_set(RL_EAUTH, "the enrolment token is damaged");
		if (!json_is_string(json_object_get(inner, "i")) ||
		    !json_is_string(json_object_get(inner, "s")) ||
		    json_string_length(json_object_get(inner, "i")) != 32 ||
		    json_string_length(json_object_get(inner, "s")) != 64) {
			json_decref(inner);
			return rl_error_set(RL_EAUTH, "the enrolment token is damaged");
		}
		snprintf(tid, sizeof(tid), "%s", json_string_value(json_object_get(inner, "i")));
		snprintf(secret, sizeof(secret), "%s", json_string_value(json_object_get(inner, "s")));
		json_decref(inner);
	}
	/* The token first: it is a cheap lookup, while the request costs two
	 * signature checks, and all of this runs under the hub's write lock
	 * (serve_enrolment). Checked the other way round, anyone able to
	 * connect held every device's push up with a made-up token. */
	if ((error = rl_store_begin(s)) < 0)
		return error;
	if ((error = hub_audit_begin(s, &first_seq)) < 0)
		goto fail;
	if ((error = rl_store_prepare(s, "SELECT user_id, salt, hash, rounds, expires_at, used_at, "
				      "coalesce(device_id, ''), cancelled_at FROM hub_tokens WHERE id = ?1",
				      &st)) < 0)
		goto fail;
	sqlite3_bind_text(st, 1, tid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(user, sizeof(user), "%s", (const char *)sqlite3_column_text(st, 0));
		saltlen = (size_t)sqlite3_column_bytes(st, 1);
		hashlen = (size_t)sqlite3_column_bytes(st, 2);
		if (saltlen <= sizeof(salt))
			memcpy(salt, sqlite3_column_blob(st, 1), saltlen);
		if (hashlen == sizeof(stored))
			memcpy(stored, sqlite3_column_blob(st, 2), hashlen);
		rounds = sqlite3_column_int(st, 3);
		expired = sqlite3_column_int64(st, 4) < rl_store_now_ms(s) / 1000;
		used = sqlite3_column_type(st, 5) != SQLITE_NULL;
		snprintf(used_by, sizeof(used_by), "%s", (const char *)sqlite3_column_text(st, 6));
		cancelled = sqlite3_column_type(st, 7) != SQLITE_NULL;
	} else {
		error = rl_error_set(RL_EAUTH, "unknown enrolment token");
	}
	sqlite3_reset(st);
	if (error < 0)
		goto fail;
	if ((error = rl_pki_csr_subject_cn(csr, cn, sizeof(cn))) < 0)
		goto fail;
	if (!rl_id_valid(cn)) {
		error = rl_error_set(RL_EINVALID, "the device id in the request is not 32 hex digits");
		goto fail;
	}
	if ((error = rl_pki_csr_key_hash(csr, kh)) < 0)
		goto fail;
	/* Used by this very device: it may be asking again (below). */
	if (used && strcmp(used_by, cn) != 0) {
		error = rl_error_set(RL_EAUTH, "this enrolment token was already used");
		goto fail;
	}
	/* Cancelled (token cancel, user remove): never used, so no device
	 * of its own can be asking again. */
	if (cancelled) {
		error = rl_error_set(RL_EAUTH, "this enrolment token was cancelled by the admin; ask "
				     "the admin for a new one");
		goto fail;
	}
	if (expired) {
		error = rl_error_set(RL_EAUTH, "this enrolment token has expired; ask the admin for "
				     "a new one");
		goto fail;
	}
	if (saltlen > sizeof(salt) || hashlen != sizeof(stored) || rounds < 1 ||
	    (error = pbkdf2(secret, salt, saltlen, rounds, hash)) < 0 ||
	    !equal_ct(hash, stored, sizeof(hash))) {
		error = error < 0 ? error : rl_error_set(RL_EAUTH, "the enrolment token is not valid");
		goto fail;
	}
	/* An enrolled id may only ask again for the same key, for the same
	 * user, not revoked: the device whose answer (its certificate) was
	 * lost after the hub had recorded it. It gets a new certificate for
	 * its key; the one never delivered stops working. */
	if ((error = rl_store_prepare(s, "SELECT user_id = ?2 AND key_sha256 = ?3 AND "
				      "revoked_at IS NULL FROM hub_devices WHERE id = ?1", &st)) < 0)
		goto fail;
	sqlite3_bind_text(st, 1, cn, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, kh, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	again = rc == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
	sqlite3_reset(st);
	if (rc == SQLITE_ROW && !again) {
		error = rl_error_set(RL_EINVALID, "device %s is already enrolled", cn);
		goto fail;
	}
	if (used && !again) {
		error = rl_error_set(RL_EAUTH, "this enrolment token was already used");
		goto fail;
	}
	{
		struct rl_pki_sign_opts o;
		unsigned char serial[8];
		memset(&o, 0, sizeof(o));
		o.subject_cn = cn;
		o.days = 3650;
		o.server = 0;
		if ((error = random_bytes(serial, sizeof(serial))) < 0)
			goto fail;
		memcpy(&o.serial, serial, sizeof(serial));
		o.serial = (o.serial >> 1) | 1;   /* positive, non-zero */
		if ((error = hub_path(cakey, sizeof(cakey), dir, HUB_DEVICE_CAKEY)) < 0 ||
		    (error = hub_path(cacrt, sizeof(cacrt), dir, HUB_DEVICE_CA)) < 0 ||
		    (error = rl_pki_sign_csr(cakey, cacrt, csr, &o, &cert)) < 0 ||
		    (error = rl_pki_fingerprint_pem(cert, fp)) < 0)
			goto fail;
	}
	rl_time_format_utc(now, rl_store_now_ms(s) / 1000);
	if ((error = rl_store_prepare(s, again
	     ? "UPDATE hub_devices SET fingerprint = ?4, name = coalesce(?3, name), "
	       "enrolled_at = ?5 WHERE id = ?1 AND user_id = ?2"
	     : "INSERT INTO hub_devices(id, user_id, name, fingerprint, enrolled_at, key_sha256) "
	       "VALUES (?1, ?2, ?3, ?4, ?5, ?6)", &st)) < 0)
		goto fail;
	sqlite3_bind_text(st, 1, cn, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
	if (dname)
		sqlite3_bind_text(st, 3, dname, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, fp, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, now, -1, SQLITE_STATIC);
	if (!again)
		sqlite3_bind_text(st, 6, kh, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		error = rl_store_error(s, "recording the device");
		goto fail;
	}
	if ((error = rl_store_prepare(s, "UPDATE hub_tokens SET used_at = coalesce(used_at, ?2), "
				      "device_id = ?3 WHERE id = ?1", &st)) < 0)
		goto fail;
	sqlite3_bind_text(st, 1, tid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, cn, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		error = rl_store_error(s, "using the token");
		goto fail;
	}
	/* The token's user must still exist, not deleted since the token was
	 * made (nothing above is committed otherwise). */
	if ((error = rl_store_prepare(s, "SELECT login, name, role FROM users WHERE id = ?1 AND "
				      "deleted = 0", &st)) < 0)
		goto fail;
	sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		error = rl_error_set(RL_EAUTH, "the token's user no longer exists");
		goto fail;
	}
	*resp = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "cert", cert, "device", cn,
			  "user", user, "login", (const char *)sqlite3_column_text(st, 0),
			  "name", (const char *)sqlite3_column_text(st, 1),
			  "role", (const char *)sqlite3_column_text(st, 2));
	sqlite3_reset(st);
	if (!*resp) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto fail;
	}
	/* The enrolment in the audit history, as the device's own act for its
	 * user, with the token it used by its id's prefix (as when it was
	 * made) — never its secret. */
	snprintf(tpre, sizeof(tpre), "%.12s", tid);
	snprintf(note, sizeof(note), "device %.32s enrolled%s with token %s", cn, again ? " again" : "",
		 tpre);
	if ((error = hub_log_event(s, "hub_devices", cn, "user_id", user, cn, user)) < 0 ||
	    (dname && (error = hub_log_event(s, "hub_devices", cn, "name", dname, cn, user)) < 0) ||
	    (error = hub_log_event(s, "hub_devices", cn, "token", tpre, cn, user)) < 0 ||
	    (error = hub_log_event(s, "hub_devices", cn, "enrolled_at", now, cn, user)) < 0 ||
	    (error = hub_audit_mark(s, first_seq, "admin", cn, user, 0, 0, note)) < 0)
		goto fail;
	if ((error = rl_store_commit(s)) < 0)
		goto fail;
	free(cert);
	return RL_OK;
fail:
	rl_store_rollback(s);
	json_decref(*resp);
	*resp = NULL;
	free(cert);
	return error;
}

/* ---- devices ------------------------------------------------------------------------ */

int hub_device_lookup(rl_store *s, const char *cn, const char *fingerprint,
		      struct hub_peer *peer)
{
	sqlite3_stmt *st;
	int error, rc;

	if ((error = rl_store_prepare(s,
	     "SELECT d.user_id, d.fingerprint, d.revoked_at, u.role, u.deleted, d.last_seen, d.cursor "
	     "FROM hub_devices d "
	     "LEFT JOIN users u ON u.id = d.user_id WHERE d.id = ?1", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, cn, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return rl_error_set(RL_EAUTH, "device %.32s is not enrolled", cn);
	}
	if (strcmp((const char *)sqlite3_column_text(st, 1), fingerprint) != 0)
		error = rl_error_set(RL_EAUTH, "device %.32s presented another certificate", cn);
	else if (sqlite3_column_type(st, 2) != SQLITE_NULL)
		error = rl_error_set(RL_EAUTH, "device %.32s is revoked", cn);
	else if (sqlite3_column_type(st, 3) == SQLITE_NULL || sqlite3_column_int(st, 4))
		error = rl_error_set(RL_EAUTH, "the user of device %.32s no longer exists", cn);
	else if (peer) {
		snprintf(peer->device, sizeof(peer->device), "%s", cn);
		snprintf(peer->user, sizeof(peer->user), "%s", (const char *)sqlite3_column_text(st, 0));
		snprintf(peer->role, sizeof(peer->role), "%s", (const char *)sqlite3_column_text(st, 3));
		snprintf(peer->fingerprint, sizeof(peer->fingerprint), "%s", fingerprint);
		snprintf(peer->last_seen, sizeof(peer->last_seen), "%s",
			 sqlite3_column_type(st, 5) == SQLITE_NULL
			 ? "" : (const char *)sqlite3_column_text(st, 5));
		peer->cursor = sqlite3_column_int64(st, 6);
	}
	sqlite3_reset(st);
	return error;
}

/* The one id of a hub table (HUB_DEVICES or HUB_TOKENS: their ids are 32
 * hex digits) that a prefix of 4+ hex digits names, in either case: ids
 * are stored in lower case, and a prefix typed in capitals (as history and
 * merge accept it) used to find "no device". what names the kind in the
 * messages: RL_EINVALID for a prefix that is not one, RL_ENOTFOUND,
 * RL_EAMBIGUOUS. */
enum { HUB_DEVICES, HUB_TOKENS };
static int find_by_prefix(rl_store *s, int table, const char *ref, char id[RL_ID_BUFSZ])
{
	static const char *const sql[2] = {
		"SELECT id FROM hub_devices WHERE id >= ?1 AND id < ?2 LIMIT 2",
		"SELECT id FROM hub_tokens WHERE id >= ?1 AND id < ?2 LIMIT 2"
	};
	static const char *const what[2] = { "device", "enrolment token" };
	char lo[RL_ID_BUFSZ], hi[RL_ID_BUFSZ + 1];
	sqlite3_stmt *st;
	int error, rc, n = 0;

	if (!rl_id_is_prefix(ref) || strlen(ref) < 4)
		return rl_error_set(RL_EINVALID, "'%s' is not a%s %s id prefix (4+ hex digits)", ref,
				    table == HUB_TOKENS ? "n" : "", what[table]);
	rl_id_prefix_range(ref, lo, hi);
	if ((error = rl_store_prepare(s, sql[table], &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, lo, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, hi, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		snprintf(id, RL_ID_BUFSZ, "%s", (const char *)sqlite3_column_text(st, 0));
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return rl_store_error(s, "looking up an id");
	if (n == 0)
		return rl_error_set(RL_ENOTFOUND, "no %s matches '%s'", what[table], ref);
	if (n > 1)
		return rl_error_set(RL_EAMBIGUOUS, "'%s' matches several %ss; give more digits",
				    ref, what[table]);
	return RL_OK;
}

/* The last contact older than this is due for a new one. */
static void seen_stale(rl_store *s, char now[21], char stale[21])
{
	int64_t t = rl_store_now_ms(s) / 1000;

	rl_time_format_utc(now, t);
	rl_time_format_utc(stale, t - HUB_SEEN_EVERY_S);
}

int hub_device_seen_due(rl_store *s, const struct hub_peer *peer, long long cursor)
{
	char now[21], stale[21];

	seen_stale(s, now, stale);
	return strcmp(peer->last_seen, stale) < 0 ||    /* "" (none) sorts first */
	       (cursor >= 0 && cursor != peer->cursor);
}

int hub_device_seen(rl_store *s, struct hub_peer *peer, long long cursor)
{
	char now[21], stale[21];
	sqlite3_stmt *st;
	long long top = 0;
	int rc, error;

	/* What the device says it holds: never past what the hub has. */
	if (cursor >= 0 && (error = hub_log_last(s, &top)) < 0)
		return error;
	if (cursor > top)
		return rl_error_set(RL_EINVALID, "its cursor %lld is past the hub's last change %lld",
				    cursor, top);
	seen_stale(s, now, stale);
	if ((error = rl_store_prepare(s, "UPDATE hub_devices SET last_seen = ?2, cursor = "
				      "CASE WHEN ?4 >= 0 THEN ?4 ELSE cursor END WHERE id = ?1 AND "
				      "revoked_at IS NULL AND (last_seen IS NULL OR last_seen < ?3 OR "
				      "(?4 >= 0 AND cursor <> ?4))", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, peer->device, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, stale, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, cursor);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return rl_store_error(s, "recording when a device was seen");
	memcpy(peer->last_seen, now, sizeof(now));
	if (cursor >= 0)
		peer->cursor = cursor;
	return RL_OK;
}

/* Stop device id (revoked_at) or unused token id (cancelled_at) at time
 * now, inside the caller's transaction and audit unit, and log the event;
 * the history names a token by its id's first 12 digits, as when it was
 * made. *done = 0 when it was stopped before (nothing happened now,
 * nothing logged). */
static int stop_one(rl_store *s, int table, const char *id, const char *now, int *done)
{
	static const char *const sql[2] = {
		"UPDATE hub_devices SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
		"UPDATE hub_tokens SET cancelled_at = ?2 WHERE id = ?1 AND used_at IS NULL "
		"AND cancelled_at IS NULL"
	};
	static const char *const tbl[2] = { "hub_devices", "hub_tokens" };
	static const char *const field[2] = { "revoked_at", "cancelled_at" };
	char row[RL_ID_BUFSZ];
	sqlite3_stmt *st;
	int error;

	*done = 0;
	if ((error = rl_store_prepare(s, sql[table], &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_reset(st);
		return rl_store_error(s, table == HUB_TOKENS ? "cancelling a token" : "revoking");
	}
	sqlite3_reset(st);
	if (sqlite3_changes(rl_store_db(s)) == 0)
		return RL_OK;
	*done = 1;
	snprintf(row, sizeof(row), "%.*s", table == HUB_TOKENS ? 12 : RL_ID_HEX, id);
	return hub_log_event(s, tbl[table], row, field[table], now, "hub", NULL);
}

int hub_device_revoke(rl_store *s, const char *ref, char id[RL_ID_BUFSZ])
{
	sqlite3_stmt *st;
	char now[21], login[RL_MAX_NAME_BYTES + 1] = "?", note[160];
	long long first_seq;
	int error, done;

	if ((error = find_by_prefix(s, HUB_DEVICES, ref, id)) < 0)
		return error;
	rl_time_format_utc(now, rl_store_now_ms(s) / 1000);
	if ((error = rl_store_begin(s)) < 0)
		return error;
	if ((error = hub_audit_begin(s, &first_seq)) < 0 ||
	    (error = stop_one(s, HUB_DEVICES, id, now, &done)) < 0)
		goto fail;
	if (!done)      /* revoked before: nothing happened now, nothing to record */
		return rl_store_commit(s);
	if ((error = rl_store_prepare(s, "SELECT coalesce(u.login, d.user_id) FROM hub_devices d "
				      "LEFT JOIN users u ON u.id = d.user_id WHERE d.id = ?1", &st)) < 0)
		goto fail;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		snprintf(login, sizeof(login), "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	snprintf(note, sizeof(note), "device %s of %.60s revoked", id, login);
	if ((error = hub_audit_mark(s, first_seq, "admin", "hub", NULL, 0, 0, note)) < 0)
		goto fail;
	return rl_store_commit(s);
fail:
	rl_store_rollback(s);
	return error;
}

/* ---- cancelling tokens, removing users ---------------------------------------------- */

/*
 * `token cancel`: an unused token stops working at once — hub_enroll takes
 * the token in its own write transaction, so an enrolment either committed
 * before this (the token is used: refused here, revoke the device instead)
 * or finds it cancelled. A token cancelled or expired before is left as it
 * is and nothing is recorded (as a second `device revoke`). *report:
 * {token (12 digits), login, cancelled (done now), state}.
 */
int hub_token_cancel(rl_store *s, const char *ref, json_t **report)
{
	char tid[RL_ID_BUFSZ], now[21], note[160], used_by[RL_ID_BUFSZ] = "";
	char login[RL_MAX_NAME_BYTES + 1] = "?", used_at[32] = "";
	const char *state = "open";
	sqlite3_stmt *st;
	long long first_seq;
	int error, rc, done;

	*report = NULL;
	if ((error = find_by_prefix(s, HUB_TOKENS, ref, tid)) < 0)
		return error;
	rl_time_format_utc(now, rl_store_now_ms(s) / 1000);
	if ((error = rl_store_begin(s)) < 0)
		return error;
	if ((error = hub_audit_begin(s, &first_seq)) < 0 ||
	    (error = rl_store_prepare(s, "SELECT coalesce(u.login, t.user_id), t.used_at, "
				      "coalesce(t.device_id, ''), t.cancelled_at IS NOT NULL, "
				      "t.expires_at < ?2 FROM hub_tokens t LEFT JOIN users u ON "
				      "u.id = t.user_id WHERE t.id = ?1", &st)) < 0)
		goto fail;
	sqlite3_bind_text(st, 1, tid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, rl_store_now_ms(s) / 1000);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		snprintf(login, sizeof(login), "%s", (const char *)sqlite3_column_text(st, 0));
		if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
			state = "used";
			snprintf(used_at, sizeof(used_at), "%s",
				 (const char *)sqlite3_column_text(st, 1));
			snprintf(used_by, sizeof(used_by), "%s",
				 (const char *)sqlite3_column_text(st, 2));
		} else if (sqlite3_column_int(st, 3)) {
			state = "cancelled";
		} else if (sqlite3_column_int(st, 4)) {
			state = "expired";
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW) {
		error = rl_store_error(s, "reading the token");
		goto fail;
	}
	if (strcmp(state, "used") == 0) {
		error = rl_error_set(RL_EINVALID, "enrolment token %.12s of %s was used by device %s "
				     "at %s: nothing to cancel; to stop that device, relasi-hub "
				     "device revoke %.12s", tid, login, used_by, used_at, used_by);
		goto fail;
	}
	if (strcmp(state, "open") == 0) {
		snprintf(note, sizeof(note), "enrolment token %.12s for %.60s cancelled", tid, login);
		if ((error = stop_one(s, HUB_TOKENS, tid, now, &done)) < 0 ||
		    (error = hub_audit_mark(s, first_seq, "admin", "hub", NULL, 0, 0, note)) < 0)
			goto fail;
	}
	if ((error = rl_store_commit(s)) < 0)
		goto fail;
	if (!(*report = json_pack("{s:s%, s:s, s:b, s:s}", "token", tid, (size_t)12, "login",
				  login, "cancelled", strcmp(state, "open") == 0,
				  "state", strcmp(state, "open") == 0 ? "cancelled" : state)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	return RL_OK;
fail:
	rl_store_rollback(s);
	return error;
}

/* The ids one query gives for user id (bound as ?1; now, in seconds, as
 * ?2 where the query has it), into a JSON array of strings. */
static int user_ids(rl_store *s, const char *sql, const char *user, long long now, json_t *out)
{
	sqlite3_stmt *st;
	int error, rc;

	if ((error = rl_store_prepare(s, sql, &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, now);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (json_array_append_new(out, json_string((const char *)
							   sqlite3_column_text(st, 0))) < 0) {
			sqlite3_reset(st);
			return rl_error_set(RL_ENOMEM, "out of memory");
		}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? RL_OK : rl_store_error(s, "reading the user's devices and tokens");
}

/*
 * `user remove`, for someone who left: in one transaction and one audit
 * commit, every device of the user is revoked, every open token cancelled,
 * and the user becomes a tombstone (users.deleted = 1, a change every
 * device pulls, as any delete). The user's row stays — a tombstone is never
 * deleted — so the records they own keep their owner and their name in
 * reports and in the history (the roles let a manager give them to
 * someone else). Nothing refuses
 * removing the last admin: the admin's commands are this CLI, which works
 * on the hub's directory and needs no admin user or device (docs/hub.md).
 * A login removed already is no error: *report says removed = false.
 * *report: {login, user, removed, devices: [ids], tokens: [12 digits]}.
 */
int hub_user_remove(rl_store *s, const char *login, json_t **report)
{
	char id[RL_ID_BUFSZ], now[21], note[160];
	json_t *devices = NULL, *tokens = NULL;
	struct rl_value del = { RL_V_INT, 1, 0, NULL };
	long long first_seq, seq, nowsec = rl_store_now_ms(s) / 1000;
	int error, removed, done;
	size_t i;

	*report = NULL;
	rl_time_format_utc(now, nowsec);
	if (!(devices = json_array()) || !(tokens = json_array())) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((error = rl_store_begin(s)) < 0)
		goto cleanup;
	if ((error = find_user(s, login, id, &removed)) < 0) {
		rl_store_rollback(s);
		if (!removed)
			goto cleanup;
		error = RL_OK;      /* removed before: nothing to do */
		goto report;
	}
	if ((error = hub_audit_begin(s, &first_seq)) < 0 ||
	    (error = user_ids(s, "SELECT id FROM hub_devices WHERE user_id = ?1 AND "
			      "revoked_at IS NULL ORDER BY enrolled_at, id",
			      id, nowsec, devices)) < 0 ||
	    (error = user_ids(s, "SELECT id FROM hub_tokens WHERE user_id = ?1 AND used_at IS "
			      "NULL AND cancelled_at IS NULL AND expires_at >= ?2 ORDER BY "
			      "created_at, id", id, nowsec, tokens)) < 0)
		goto fail;
	for (i = 0; i < json_array_size(devices); i++)
		if ((error = stop_one(s, HUB_DEVICES, json_string_value(json_array_get(devices, i)),
				      now, &done)) < 0)
			goto fail;
	for (i = 0; i < json_array_size(tokens); i++) {
		json_t *t = json_array_get(tokens, i);
		char tpre[13];
		if ((error = stop_one(s, HUB_TOKENS, json_string_value(t), now, &done)) < 0)
			goto fail;
		snprintf(tpre, sizeof(tpre), "%.12s", json_string_value(t));
		if (json_string_set(t, tpre) < 0) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto fail;
		}
	}
	snprintf(note, sizeof(note), "user %.60s removed: %zu device%s revoked, %zu token%s "
		 "cancelled", login, json_array_size(devices), json_array_size(devices) == 1 ? "" : "s",
		 json_array_size(tokens), json_array_size(tokens) == 1 ? "" : "s");
	if ((error = hub_write_field(s, "users", id, "deleted", &del, "admin", &seq)) < 0 ||
	    (error = hub_audit_mark(s, first_seq, "admin", "hub", NULL, 0, 0, note)) < 0 ||
	    (error = rl_store_commit(s)) < 0)
		goto fail;
	removed = 0;
report:
	if (!(*report = json_pack("{s:s, s:s, s:b, s:O, s:O}", "login", login, "user", id,
				  "removed", !removed, "devices", devices, "tokens", tokens)))
		error = rl_error_set(RL_ENOMEM, "out of memory");
	goto cleanup;
fail:
	rl_store_rollback(s);
cleanup:
	json_decref(devices);
	json_decref(tokens);
	return error;
}
