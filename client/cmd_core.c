/*
 * cmd_core.c — relasi init, status, outbox and config: the store's identity,
 * its settings, and what is waiting to be synced.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "relasi/limits.h"
#include "relasi/outbox.h"
#include "relasi/valid.h"

/* mkdir -p with mode 0700: the store holds customer data. */
static int make_dirs(const char *path)
{
	char *p = strdup(path), *s;
	int error = RL_OK;

	if (!p)
		return rl_error_set(RL_ENOMEM, "out of memory");
	for (s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, 0700) != 0 && errno != EEXIST) {
				error = rl_error_set(RL_EIO, "cannot create '%s': %s", p, strerror(errno));
				break;
			}
			*s = c;
			if (c == '\0')
				break;
		}
	}
	free(p);
	return error;
}

struct init_args {
	const char *name, *country, *currency;
	char device[RL_ID_BUFSZ], user[RL_ID_BUFSZ];
};

static int do_init(struct cli_ctx *ctx, void *arg)
{
	struct init_args *ia = arg;
	char *had = NULL;
	int error;

	/* Under the write lock: two inits that both found no store gave their
	 * callers two device ids, and the store kept the last one. The first
	 * one's identity stands; the other is told the store exists. */
	if ((error = rl_store_meta_get(ctx->store, "device_id", &had)) < 0)
		return error;
	if (had) {
		free(had);
		return rl_error_set(RL_EINVALID, "a store already exists at '%s'", ctx->store_path);
	}
	if ((error = rl_store_new_id(ctx->store, ia->device)) < 0 ||
	    (error = rl_store_new_id(ctx->store, ia->user)) < 0 ||
	    (error = rl_store_set_identity(ctx->store, ia->device, ia->user)) < 0 ||
	    (error = rl_store_meta_set(ctx->store, "rep_name", ia->name)) < 0 ||
	    (error = rl_store_meta_set(ctx->store, "country", ia->country)) < 0 ||
	    (error = rl_store_meta_set(ctx->store, "currency", ia->currency)) < 0)
		return error;
	return RL_OK;
}

/* The rep's name stands in for the user's name in reports, exports and
 * imports until enrolment, and --json carries it: held to what a user's
 * name is (bounded UTF-8 text, no control characters), as jansson cannot
 * write other bytes and a terminal would act on control characters. */
static int validate_rep_name(const char *what, const char *name)
{
	const struct rl_table *users = rl_model_table("users");
	struct rl_value v = { RL_V_TEXT, 0, 0.0, name };

	if (!*name)
		return rl_error_set(RL_EINVALID, "%s: the rep's name cannot be empty", what);
	if (rl_model_check_value(users, rl_model_field(users, "name"), &v) < 0)
		return rl_error_set(RL_EINVALID, "%s: the rep's name must be UTF-8 text of at most "
				    "%d bytes without control characters", what, RL_MAX_NAME_BYTES);
	return RL_OK;
}

static int validate_settings(const char *country, const char *currency)
{
	if (country && (strlen(country) != 2 || !rl_country_calling_code(country)))
		return rl_error_set(RL_EINVALID, "'%s' is not a known country code (e.g. ID, MY, SG)",
				    country);
	if (currency && rl_currency_exponent(currency) < 0)
		return rl_error_set(RL_EINVALID, "'%s' is not an ISO 4217 currency code", currency);
	return RL_OK;
}

static int cmd_init(struct cli_ctx *ctx, struct cli_args *a)
{
	struct init_args ia = { 0 };
	struct stat sb;
	int error;

	ia.name = cli_get(a, "name");
	ia.country = cli_get(a, "country") ? cli_get(a, "country") : "ID";
	ia.currency = cli_get(a, "currency") ? cli_get(a, "currency") : "IDR";
	if (!ia.name || !*ia.name)
		return cli_usage_error(a->cmd, "init needs --name (the rep's name)");
	if ((error = validate_settings(ia.country, ia.currency)) < 0 ||
	    (error = validate_rep_name("--name", ia.name)) < 0)
		return error;
	if (stat(ctx->store_path, &sb) == 0)
		return rl_error_set(RL_EINVALID, "a store already exists at '%s'", ctx->store_path);
	if ((error = make_dirs(ctx->home)) < 0)
		return error;
	if ((error = rl_store_open(&ctx->store, ctx->store_path, RL_STORE_CREATE)) < 0)
		return error;
	if ((error = cli_write(ctx, do_init, &ia)) < 0)
		return error;
	if (ctx->json) {
		return cli_print_json(json_pack("{s:s, s:s, s:s, s:s, s:i}", "store", ctx->store_path,
					       "device_id", ia.device, "user_id", ia.user,
					       "name", ia.name, "schema", rl_store_schema_latest()));
	}
	printf("initialised store %s\ndevice %s for %s\n", ctx->store_path, ia.device, ia.name);
	return RL_OK;
}

/* One query per state, each written so that an index answers it: the
 * partial index of pending changes, and the index of batched (sent or
 * refused) ones. A bound state would scan the whole outbox — seconds
 * after a big import. */
static int count_query(struct cli_ctx *ctx, const char *sql, const char *doing, long long *n)
{
	sqlite3_stmt *st;
	int error;

	if ((error = rl_store_prepare(ctx->store, sql, &st)) < 0)
		return error;
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return rl_store_error(ctx->store, doing);
	}
	*n = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return RL_OK;
}

static int count_outbox(struct cli_ctx *ctx, const char *state, long long *n)
{
	const char *sql = strcmp(state, "pending") == 0
		? "SELECT count(*) FROM rl_outbox WHERE state = 'pending'"
		: strcmp(state, "sent") == 0
		? "SELECT count(*) FROM rl_outbox WHERE batch IS NOT NULL AND state = 'sent'"
		: "SELECT count(*) FROM rl_outbox WHERE batch IS NOT NULL AND state = 'refused'";

	return count_query(ctx, sql, "counting changes", n);
}

/* `relasi status` names at most this many refused records, one line each;
 * the rest are counted (`relasi outbox --state refused` lists them all). */
#define STATUS_REFUSED_NAMED 10

/* A refused change's value is shown in its status line only when it fits
 * on it: one line, at most this many bytes (a note is named by its field). */
#define STATUS_VALUE_MAX 40

/*
 * The refused changes, as the rep knows them: one line per record and
 * reason, the record by its noun and name, the field (and its value, read
 * as in relasi, when it is one short line) and the hub's reason whole. A
 * count alone said neither what was refused nor why, and the outbox's
 * table cuts long reasons ("you may change only your own deals, act…");
 * a new record refused whole is one line, not one per field.
 */
static int print_refused(struct cli_ctx *ctx)
{
	sqlite3_stmt *st;
	long long groups = 0;
	int error, rc;

	if ((error = rl_store_prepare(ctx->store,
	     "SELECT tbl, row_id, rl_label(tbl, row_id), count(*), group_concat(field, ', '), "
	     "  CASE WHEN count(*) = 1 THEN rl_shown(tbl, row_id, max(field), max(value)) END, "
	     "  coalesce(reason, 'refused by the hub') "
	     "FROM rl_outbox WHERE batch IS NOT NULL AND state = 'refused' "
	     "GROUP BY tbl, row_id, reason ORDER BY min(seq)", &st)) < 0)
		return error;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const struct rl_table *t = rl_model_table(cli_col(st, 0));
		const char *label = (const char *)sqlite3_column_text(st, 2), *v = cli_col(st, 5);
		char sid[RL_ID_BUFSZ];

		if (++groups > STATUS_REFUSED_NAMED)
			continue;
		if (label)
			printf("  %s \"%s\"", t ? t->noun : cli_col(st, 0), label);
		else
			printf("  %s %s", t ? t->noun : cli_col(st, 0),
			       cli_short_id(ctx, cli_col(st, 0), cli_col(st, 1), sid));
		if (sqlite3_column_int64(st, 3) > 1)
			printf(", %lld fields (%s)", (long long)sqlite3_column_int64(st, 3),
			       cli_col(st, 4));
		else if (*v && strlen(v) <= STATUS_VALUE_MAX && !strpbrk(v, "\r\n"))
			printf(", %s %s", cli_col(st, 4), v);
		else
			printf(", %s", cli_col(st, 4));
		printf(": %s\n", cli_col(st, 6));
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return rl_store_error(ctx->store, "reading refused changes");
	if (groups > STATUS_REFUSED_NAMED)
		printf("  ... and %lld more\n", groups - STATUS_REFUSED_NAMED);
	printf("  (every change: 'relasi outbox --state refused'; a new record, once the cause "
	       "is settled: 'relasi outbox retry --refused'; once read: "
	       "'relasi outbox discard --refused')\n");
	return RL_OK;
}

/* The open conflicts among this device's edits, as of its last sync, and
 * how many of them stand on the other side's value for now. */
static int count_conflicts(struct cli_ctx *ctx, long long *open, long long *lost)
{
	sqlite3_stmt *st;
	int error;

	if ((error = rl_store_prepare(ctx->store, "SELECT count(*), coalesce(sum(kept_mine = 0), 0) "
				      "FROM rl_conflicts WHERE state = 'open'", &st)) < 0)
		return error;
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return rl_store_error(ctx->store, "counting conflicts");
	}
	*open = sqlite3_column_int64(st, 0);
	*lost = sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	return RL_OK;
}

/*
 * relasi status: what is waiting (pending, in flight), what the hub would
 * not take (refused, named), and the open conflicts among the rep's edits.
 * The last were only in `relasi conflicts`: a rep whose value another rep's
 * later edit replaced for now was told nowhere else (their own sync said
 * "conflicts 0": the conflict was the other push's).
 */
static int cmd_status(struct cli_ctx *ctx, struct cli_args *a)
{
	long long pending, sent, refused, held = 0, conflicts = 0, lost = 0;
	char *name = NULL, *last_sync = NULL;
	int error;

	if ((error = count_outbox(ctx, "pending", &pending)) < 0 ||
	    (error = count_outbox(ctx, "sent", &sent)) < 0 ||
	    (error = count_outbox(ctx, "refused", &refused)) < 0 ||
	    (error = rl_outbox_count_held(ctx->store, &held)) < 0 ||
	    (error = count_conflicts(ctx, &conflicts, &lost)) < 0 ||
	    (error = rl_store_meta_get(ctx->store, "rep_name", &name)) < 0 ||
	    (error = rl_store_meta_get(ctx->store, "last_sync", &last_sync)) < 0)
		goto cleanup;
	if (ctx->json) {
		error = cli_print_json(json_pack("{s:s, s:s, s:s?, s:i, s:I, s:I, s:I, s:I, s:I, s:s?}",
			"store", ctx->store_path, "device_id", rl_store_device_id(ctx->store),
			"name", name, "schema", rl_store_schema_version(ctx->store),
			"pending", (json_int_t)pending, "held", (json_int_t)held,
			"sent", (json_int_t)sent,
			"refused", (json_int_t)refused, "conflicts", (json_int_t)conflicts,
			"last_sync", last_sync));
		goto cleanup;
	}
	printf("store:     %s (schema %d)\n", ctx->store_path, rl_store_schema_version(ctx->store));
	printf("device:    %s (%s)\n", rl_store_device_id(ctx->store), name ? name : "?");
	printf("pending:   %lld field change%s", pending, pending == 1 ? "" : "s");
	if (held)
		printf(" (%lld held: edits of new records the hub refused, sent with them by "
		       "'relasi outbox retry')", held);
	printf("\n");
	if (sent)
		printf("in flight: %lld\n", sent);
	if (refused) {
		printf("refused:   %lld field change%s the hub will not take as %s:\n", refused,
		       refused == 1 ? "" : "s", refused == 1 ? "it is" : "they are");
		if ((error = print_refused(ctx)) < 0)
			goto cleanup;
	}
	if (conflicts)
		printf("conflicts: %lld of your edits wait for the admin's decision (%lld with the "
		       "other value for now; see 'relasi conflicts')\n", conflicts, lost);
	printf("last sync: %s\n", last_sync ? last_sync : "never");
cleanup:
	free(name);
	free(last_sync);
	return error;
}

/* The outbox as the rep reads it: the record by its name (its short id
 * when it has none) and the value as in relasi (money with its currency, a
 * reference by name; columns 10 and 11). --json keeps the stored ones. */
static const char *outbox_cell(struct cli_ctx *ctx, sqlite3_stmt *st, int col, char *buf,
			       size_t len)
{
	if (col == 2 && sqlite3_column_type(st, 10) != SQLITE_NULL)
		return cli_col(st, 10);
	if (col == 2) {
		char sid[RL_ID_BUFSZ];
		snprintf(buf, len, "%s", cli_short_id(ctx, cli_col(st, 1), cli_col(st, 2), sid));
		return buf;
	}
	if (col == 4)
		return cli_col(st, 11);
	return NULL;
}

static int cmd_outbox(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const hdr[] = { "seq", "table", "record", "field", "value", "state",
					   "reason" };
	static const struct cli_view view = { hdr, 7, NULL, outbox_cell, NULL, "the outbox is empty" };
	const char *state = cli_get(a, "state");
	sqlite3_stmt *st;
	int error;

	if (state && strcmp(state, "pending") && strcmp(state, "held") && strcmp(state, "sent") &&
	    strcmp(state, "refused"))
		return cli_usage_error(a->cmd, "--state must be pending, held, sent or refused");
	if ((error = rl_store_prepare(ctx->store,
	     "SELECT * FROM (SELECT seq, tbl, row_id, field, value, CASE WHEN state = 'pending' "
	     "AND " RL_OUTBOX_HELD_SQL("rl_outbox") " THEN 'held' ELSE state END AS state, "
	     "reason, base, device, hlc, rl_label(tbl, row_id) AS record, "
	     "rl_shown(tbl, row_id, field, value) AS shown FROM rl_outbox "
	     "WHERE ?1 IS NULL OR state = ?1 OR (?1 = 'held' AND state = 'pending')) "
	     "WHERE ?1 IS NULL OR state = ?1 ORDER BY seq", &st)) < 0)
		return error;
	if (state)
		sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
	return cli_emit(ctx, st, &view, NULL, NULL);
}

/* The seqs named on the command line (each once), or none for --refused.
 * *seqs is malloc'd (caller frees). A usage error returns EXIT_USAGE
 * (cli_usage_error), not a negative code: callers test != RL_OK. */
static int outbox_seqs(struct cli_args *a, long long **seqs, size_t *n)
{
	int all = cli_get(a, "refused") != NULL;
	size_t i, k;
	char *end;

	*seqs = NULL;
	*n = 0;
	if (all == (a->npos > 0))
		return cli_usage_error(a->cmd, "name refused changes by their seq, or give --refused "
				       "for all of them");
	if (all)
		return RL_OK;
	if (!(*seqs = calloc(a->npos, sizeof(**seqs))))
		return rl_error_set(RL_ENOMEM, "out of memory");
	for (i = 0; i < a->npos; i++) {
		long long seq = strtoll(a->pos[i], &end, 10);
		if (*end || seq <= 0) {
			free(*seqs);
			*seqs = NULL;
			return cli_usage_error(a->cmd, "'%s' is not an outbox seq", a->pos[i]);
		}
		for (k = 0; k < *n && (*seqs)[k] != seq; k++)
			;
		if (k == *n)            /* named twice: once */
			(*seqs)[(*n)++] = seq;
	}
	return RL_OK;
}

/*
 * relasi outbox discard: refused changes only (relasi/outbox.h). A pending
 * or sent change is work on its way; a refused edit's record already shows
 * the hub's value again (devsync.c), so dropping it loses nothing the rep
 * has not been told about. A refused new record leaves this device with
 * what was refused with it: the hub never had it, and the device then
 * holds what the hub holds again; the command names every record it
 * removed.
 */
static int cmd_outbox_discard(struct cli_ctx *ctx, struct cli_args *a)
{
	struct rl_outbox_outcome out = { 0, 0, 0, NULL, 0 };
	long long *seqs = NULL;
	size_t n, i;
	int error, lock = -1;

	if ((error = outbox_seqs(a, &seqs, &n)) != RL_OK ||
	    (error = cli_exchange_lock(ctx, &lock)) < 0 ||
	    (error = rl_outbox_discard(ctx->store, seqs, n, &out)) < 0)
		goto done;
	if (ctx->json) {
		json_t *removed = json_array();
		for (i = 0; removed && i < out.nremoved; i++)
			json_array_append_new(removed, json_pack("{s:s, s:s, s:s?}", "table",
								 out.removed[i].tbl, "id",
								 out.removed[i].id, "record",
								 out.removed[i].label));
		error = cli_print_json(json_pack("{s:I, s:o*}", "discarded", (json_int_t)out.changes,
						 "removed", removed));
		goto done;
	}
	printf("discarded %ld refused change%s\n", out.changes, out.changes == 1 ? "" : "s");
	for (i = 0; i < out.nremoved; i++) {
		const struct rl_table *t = rl_model_table(out.removed[i].tbl);
		char sid[RL_ID_BUFSZ];
		printf("removed from this device (the hub never had it): %s ",
		       t ? t->noun : out.removed[i].tbl);
		if (out.removed[i].label)
			printf("\"%s\"\n", out.removed[i].label);
		else
			printf("%s\n", cli_short_id(ctx, out.removed[i].tbl, out.removed[i].id, sid));
	}
done:
	rl_outbox_outcome_free(&out);
	free(seqs);
	if (lock >= 0)
		close(lock);
	return error;
}

/*
 * relasi outbox retry: a refused new record goes out again, whole, at the
 * next sync, once the rep has settled the cause (a role given back, a
 * clock set right, its parent sent first). Its edits made since, held
 * until now, go with it. A refused edit is not sent again: the record
 * shows the hub's value, and the rep makes the edit again.
 */
static int cmd_outbox_retry(struct cli_ctx *ctx, struct cli_args *a)
{
	struct rl_outbox_outcome out = { 0, 0, 0, NULL, 0 };
	long long *seqs = NULL;
	size_t n;
	int error, lock = -1;

	if ((error = outbox_seqs(a, &seqs, &n)) != RL_OK ||
	    (error = cli_exchange_lock(ctx, &lock)) < 0 ||
	    (error = rl_outbox_retry(ctx->store, seqs, n, &out)) < 0)
		goto done;
	if (ctx->json) {
		error = cli_print_json(json_pack("{s:I, s:I, s:I}", "records", (json_int_t)out.records,
						 "changes", (json_int_t)out.changes,
						 "edits_left", (json_int_t)out.edits_left));
		goto done;
	}
	printf("%ld new record%s (%ld field change%s) to send again at the next sync\n",
	       out.records, out.records == 1 ? "" : "s", out.changes, out.changes == 1 ? "" : "s");
	if (out.edits_left)
		printf("left %ld refused edit%s as %s: the record%s show%s the hub's value; make the "
		       "edit again if it is allowed now, or 'relasi outbox discard'\n", out.edits_left,
		       out.edits_left == 1 ? "" : "s", out.edits_left == 1 ? "it is" : "they are",
		       out.edits_left == 1 ? "" : "s", out.edits_left == 1 ? "s" : "");
done:
	rl_outbox_outcome_free(&out);
	free(seqs);
	if (lock >= 0)
		close(lock);
	return error;
}

struct config_args { const char *key, *value; };

static int do_config(struct cli_ctx *ctx, void *arg)
{
	struct config_args *ca = arg;
	return rl_store_meta_set(ctx->store, ca->key, ca->value);
}

static int cmd_config(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const keys[] = { "country", "currency", "rep_name", NULL };
	struct config_args ca = { NULL, NULL };
	char *v = NULL;
	int i, error;

	if (a->npos == 0) {
		json_t *o = json_object();
		for (i = 0; keys[i]; i++) {
			if ((error = rl_store_meta_get(ctx->store, keys[i], &v)) < 0) {
				json_decref(o);
				return error;
			}
			if (ctx->json)
				json_object_set_new(o, keys[i], v ? json_string(v) : json_null());
			else
				printf("%s = %s\n", keys[i], v ? v : "");
			free(v);
			v = NULL;
		}
		if (ctx->json)
			return cli_print_json(o);
		json_decref(o);
		return RL_OK;
	}
	for (i = 0; keys[i]; i++)
		if (strcmp(keys[i], a->pos[0]) == 0)
			break;
	if (!keys[i])
		return rl_error_set(RL_EINVALID, "unknown setting '%s' (country, currency, rep_name)",
				    a->pos[0]);
	if (a->npos == 1) {
		if ((error = rl_store_meta_get(ctx->store, a->pos[0], &v)) < 0)
			return error;
		printf("%s\n", v ? v : "");
		free(v);
		return RL_OK;
	}
	ca.key = a->pos[0];
	ca.value = a->pos[1];
	if ((error = validate_settings(strcmp(ca.key, "country") == 0 ? ca.value : NULL,
				       strcmp(ca.key, "currency") == 0 ? ca.value : NULL)) < 0 ||
	    (strcmp(ca.key, "rep_name") == 0 && (error = validate_rep_name("rep_name", ca.value)) < 0))
		return error;
	return cli_write(ctx, do_config, &ca);
}

static const struct cli_opt init_opts[] = {
	{ "name", 1, "NAME", "the rep's name (required)", NULL },
	{ "country", 1, "CC", "default country for phone numbers (ISO 3166, default ID)", NULL },
	{ "currency", 1, "CODE", "default currency (ISO 4217, default IDR)", NULL },
	{ NULL, 0, NULL, NULL, NULL }
};

static const struct cli_opt outbox_opts[] = {
	{ "state", 1, "STATE", "only pending, held, sent or refused changes", NULL },
	{ NULL, 0, NULL, NULL, NULL }
};

static const struct cli_opt discard_opts[] = {
	{ "refused", 0, NULL, "every refused change", NULL },
	{ NULL, 0, NULL, NULL, NULL }
};

static const struct cli_opt retry_opts[] = {
	{ "refused", 0, NULL, "every refused new record", NULL },
	{ NULL, 0, NULL, NULL, NULL }
};

const struct cli_cmd cli_cmds_core[] = {
	{ "init", cmd_init, "--name NAME", "create this device's store and identity",
	  init_opts, NULL, CLI_MODEL_NONE, 0, 0, 0 },
	{ "status", cmd_status, "", "pending and refused changes, open conflicts, last sync",
	  NULL, NULL, CLI_MODEL_NONE, 0, 0, 1 },
	{ "outbox", cmd_outbox, "", "list the field changes waiting to be synced",
	  outbox_opts, NULL, CLI_MODEL_NONE, 0, 0, 1 },
	{ "outbox discard", cmd_outbox_discard, "[SEQ...] | --refused",
	  "drop refused changes (a refused edit already shows the hub's value; a refused new "
	  "record leaves this device, with what was refused with it)",
	  discard_opts, NULL, CLI_MODEL_NONE, 0, 64, 1 },
	{ "outbox retry", cmd_outbox_retry, "[SEQ...] | --refused",
	  "send refused new records again at the next sync, once the cause is settled",
	  retry_opts, NULL, CLI_MODEL_NONE, 0, 64, 1 },
	{ "config", cmd_config, "[KEY [VALUE]]", "show or set country, currency, rep_name",
	  NULL, NULL, CLI_MODEL_NONE, 0, 2, 1 },
	{ NULL, NULL, NULL, NULL, NULL, NULL, CLI_MODEL_NONE, 0, 0, 0 }
};
