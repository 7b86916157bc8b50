/*
 * main.c — relasi-hub: the hub's server and the admin's commands.
 *
 * Every command but `init` works on a hub directory: --dir DIR, else
 * $RELASI_HUB_DIR, else the current directory. The directory holds hub.db,
 * hub.json (name, address, listen address; optional audit_pack_loose and
 * audit_pack_packs, when serve packs the audit history: audit_pack.h;
 * snapshot_image_changes, when serve builds snapshot images: image.c) and
 * the keys and certificates:
 * server-ca.{crt,key} (signs only the hub's server certificate),
 * device-ca.{crt,key} (signs only device certificates, so a device can never
 * pose as the hub), server.{crt,key}. Keys are 0600.
 *
 * The pipeline reports (`report pipeline|forecast|...|html`) are the
 * client's own commands (relasi/report.h, rl_report_cmds), run over hub.db
 * opened read-only; `pipeline` is an alias of `report pipeline`.
 */
#include "hub.h"
#include "audit_pack.h"
#include "backup.h"
#include "cert.h"
#include "status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utf8proc.h>

#include "relasi/cli.h"
#include "relasi/error.h"
#include "relasi/jsonw.h"
#include "relasi/limits.h"
#include "relasi/pki.h"
#include "relasi/record.h"
#include "relasi/report.h"
#include "relasi/valid.h"

#ifndef RELASI_VERSION
#error "RELASI_VERSION comes from CMakeLists.txt (project VERSION)"
#endif

static const char *hub_dir(const struct cli_args *a)
{
	const char *d = cli_get(a, "dir");
	if (!d)
		d = getenv("RELASI_HUB_DIR");
	return d && *d ? d : ".";
}

static int open_hub(struct cli_ctx *ctx, const struct cli_args *a)
{
	return hub_store_open(&ctx->store, hub_dir(a), 0);
}

/* ---- init ------------------------------------------------------------------- */

/* --host H1,H2 (init, cert renew): the names, pointing into *copy (the
 * caller's to free; NULL after an error). RL_EINVALID for none or more
 * than a certificate holds. */
static int split_hosts(const char *list, char **copy, const char *names[RL_PKI_SANS_MAX],
		       size_t *n)
{
	char *save = NULL, *h;

	*n = 0;
	if (!(*copy = strdup(list)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	for (h = strtok_r(*copy, ",", &save); h; h = strtok_r(NULL, ",", &save)) {
		if (!*h)
			continue;
		if (*n == RL_PKI_SANS_MAX) {
			free(*copy);
			*copy = NULL;
			return rl_error_set(RL_EINVALID, "--host: at most %d names", RL_PKI_SANS_MAX);
		}
		names[(*n)++] = h;
	}
	if (!*n) {
		free(*copy);
		*copy = NULL;
		return rl_error_set(RL_EINVALID, "--host: give at least one name or address");
	}
	return RL_OK;
}

/* What init writes into a hub's directory: all of it is removed again
 * when init fails, so that the same command, mended, can run again (a key
 * left behind made the next init fail with "File exists"). */
static const char *const init_files[] = {
	HUB_SERVER_CAKEY, HUB_SERVER_CA, HUB_DEVICE_CAKEY, HUB_DEVICE_CA, HUB_SERVER_KEY,
	HUB_SERVER_CRT, HUB_CONF, HUB_DB, HUB_DB "-wal", HUB_DB "-shm", HUB_DB "-journal",
	HUB_AUDIT_DIR, "audit.lock", NULL
};

static void init_undo(struct cli_ctx *ctx, const char *dir, int made)
{
	char path[4096];
	size_t i;

	rl_store_close(ctx->store);
	ctx->store = NULL;
	for (i = 0; init_files[i]; i++) {
		if (hub_path(path, sizeof(path), dir, init_files[i]) < 0)
			continue;
		if (strcmp(init_files[i], HUB_AUDIT_DIR) == 0)
			hub_rmtree(path);
		else
			unlink(path);
	}
	if (made)
		rmdir(dir);
}

static int cmd_init(struct cli_ctx *ctx, struct cli_args *a)
{
	const char *dir = a->pos[0], *name = cli_get(a, "name");
	const char *hosts = cli_get(a, "host") ? cli_get(a, "host") : "localhost,127.0.0.1";
	const char *listen = cli_get(a, "listen") ? cli_get(a, "listen") : "127.0.0.1:7443";
	char path[4096], key[4096], cacrt[4096], cakey[4096], *csr = NULL, *cert = NULL;
	char *hostcopy = NULL, *text = NULL, address[300], *end;
	const char *sans[RL_PKI_SANS_MAX];
	size_t nsans = 0, i;
	const char *port;
	json_t *conf = NULL;
	struct rl_pki_sign_opts o;
	struct stat sb;
	long portnum;
	int error, made = 0, started = 0;

	if (!name)
		return cli_usage_error(a->cmd, "init needs --name NAME");
	/* Every argument is checked before anything is written. */
	if ((error = split_hosts(hosts, &hostcopy, sans, &nsans)) < 0)
		return error;
	port = strrchr(listen, ':');
	errno = 0;
	portnum = port ? strtol(port + 1, &end, 10) : 0;
	if (!port || !port[1] || errno || *end || portnum < 1 || portnum > 65535) {
		error = rl_error_set(RL_EINVALID, "--listen '%s': use ADDR:PORT, a port from 1 to "
				     "65535", listen);
		goto cleanup;
	}
	snprintf(address, sizeof(address), strchr(sans[0], ':') ? "[%s]%s" : "%s%s", sans[0], port);
	memset(&o, 0, sizeof(o));
	o.subject_cn = sans[0];
	o.sans = sans;
	o.nsans = nsans;
	o.days = HUB_CERT_DAYS;
	o.server = 1;
	o.serial = 1;
	if ((error = rl_pki_sign_opts_check(&o)) < 0)
		goto cleanup;

	made = mkdir(dir, 0700) == 0;
	if (!made && errno != EEXIST) {
		error = rl_error_set(RL_EIO, "cannot create '%s': %s", dir, strerror(errno));
		goto cleanup;
	}
	if ((error = hub_path(path, sizeof(path), dir, HUB_DB)) < 0)
		goto cleanup;
	if (stat(path, &sb) == 0) {
		error = rl_error_set(RL_EINVALID, "'%s' already holds a hub", dir);
		goto cleanup;
	}
	/* Nothing of a hub there: what init then removes on failure is its own. */
	for (i = 0; init_files[i]; i++) {
		if ((error = hub_path(path, sizeof(path), dir, init_files[i])) < 0)
			goto cleanup;
		if (lstat(path, &sb) == 0) {
			error = rl_error_set(RL_EINVALID, "'%s' already holds %s, a file of a hub's "
					     "(but no hub.db): init makes a hub in a new or empty "
					     "directory", dir, init_files[i]);
			goto cleanup;
		}
	}
	started = 1;
	/* A directory made beforehand (mkdir DIR; init DIR) keeps its mode
	 * through mkdir's EEXIST: 0755 left hub.db — every customer, the
	 * token hashes — and the audit history readable by every local user.
	 * The hub's directory is 0700 however it came to be. */
	if (chmod(dir, 0700) != 0) {
		error = rl_error_set(RL_EIO, "cannot make '%s' private (mode 0700): %s", dir,
				     strerror(errno));
		goto cleanup;
	}

	/* Two CAs: one for the hub's own certificate, one for devices. */
	if ((error = hub_path(cakey, sizeof(cakey), dir, HUB_SERVER_CAKEY)) < 0 ||
	    (error = hub_path(cacrt, sizeof(cacrt), dir, HUB_SERVER_CA)) < 0 ||
	    (error = rl_pki_key_generate(cakey)) < 0 ||
	    (error = rl_pki_ca_create(cakey, cacrt, "Relasi hub server CA", 3650)) < 0)
		goto cleanup;
	if ((error = hub_path(key, sizeof(key), dir, HUB_DEVICE_CAKEY)) < 0 ||
	    (error = hub_path(path, sizeof(path), dir, HUB_DEVICE_CA)) < 0 ||
	    (error = rl_pki_key_generate(key)) < 0 ||
	    (error = rl_pki_ca_create(key, path, "Relasi hub device CA", 3650)) < 0)
		goto cleanup;
	if ((error = hub_path(key, sizeof(key), dir, HUB_SERVER_KEY)) < 0 ||
	    (error = rl_pki_key_generate(key)) < 0 ||
	    (error = rl_pki_csr_create(key, "relasi-hub", &csr)) < 0)
		goto cleanup;
	if ((error = rl_pki_sign_csr(cakey, cacrt, csr, &o, &cert)) < 0 ||
	    (error = hub_path(path, sizeof(path), dir, HUB_SERVER_CRT)) < 0 ||
	    (error = rl_pki_write_file(path, cert, 0644, 0)) < 0)
		goto cleanup;
	conf = json_pack("{s:s, s:s, s:s, s:s}", "name", name, "address", address,
			 "server_name", sans[0], "listen", listen);
	if ((error = hub_path(path, sizeof(path), dir, HUB_CONF)) < 0)
		goto cleanup;
	if (!conf || !(text = rl_json_dumps(conf, JSON_INDENT(2)))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((error = hub_write_atomic(path, text, strlen(text), 0644)) < 0)
		goto cleanup;
	if ((error = hub_store_open(&ctx->store, dir, 1)) < 0 ||
	    (error = hub_audit_sync(dir, ctx->store, 1)) < 0)   /* audit.git and its baseline */
		goto cleanup;
	started = made = 0;     /* the hub is whole: a failure to say so keeps it */
	if (ctx->json)
		error = cli_print_json(json_pack("{s:s, s:s, s:s}", "dir", dir, "address", address,
						 "listen", listen));
	else
		printf("hub '%s' initialised in %s\ndevices will connect to %s\n", name, dir, address);
cleanup:
	if (error < 0 && started)
		init_undo(ctx, dir, made);
	else if (error < 0 && made)
		rmdir(dir);
	json_decref(conf);
	free(csr);
	free(cert);
	free(hostcopy);
	free(text);
	return error;
}

/* An optional integer setting of hub.json, within [min, max]; dflt when
 * absent. */
static int conf_int(json_t *conf, const char *path, const char *key, long min, long max,
		    long dflt, long *out)
{
	json_t *v = json_object_get(conf, key);

	*out = dflt;
	if (!v)
		return RL_OK;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return rl_error_set(RL_EINVALID, "%s: %s must be an integer from %ld to %ld",
				    path, key, min, max);
	*out = (long)json_integer_value(v);
	return RL_OK;
}

static int cmd_serve(struct cli_ctx *ctx, struct cli_args *a)
{
	const char *dir = a->npos ? a->pos[0] : hub_dir(a);
	const char *listen = cli_get(a, "listen"), *name, *ts = cli_get(a, "timeout");
	long timeout_s = 0, pack_loose, pack_packs, image_min;
	char *end;
	char path[4096];
	json_t *conf;
	int error;

	if (ts) {
		errno = 0;
		timeout_s = strtol(ts, &end, 10);
		if (errno || end == ts || *end || timeout_s < 1 || timeout_s > 3600)
			return rl_error_set(RL_EUSAGE, "--timeout '%s': seconds from 1 to 3600", ts);
	}
	if ((error = hub_store_open(&ctx->store, dir, 0)) < 0)  /* upgrades, checks it exists */
		return error;
	hub_cert_warn(dir, rl_store_now_ms(ctx->store) / 1000);
	rl_store_close(ctx->store);
	ctx->store = NULL;
	if ((error = hub_path(path, sizeof(path), dir, HUB_CONF)) < 0 ||
	    (error = hub_conf_load(dir, &conf)) < 0)
		return error;
	if (!listen)
		listen = json_string_value(json_object_get(conf, "listen"));
	name = hub_conf_name(conf, "relasi-hub");
	/* audit_pack_loose 0: never pack on its own (git's gc.auto = 0) */
	if ((error = conf_int(conf, path, "audit_pack_loose", 0, 1000000000, HUB_AUDIT_LOOSE_MAX,
			      &pack_loose)) == 0 &&
	    (error = conf_int(conf, path, "audit_pack_packs", 2, 1000, HUB_AUDIT_PACKS_MAX,
			      &pack_packs)) == 0 &&
	    /* snapshot_image_changes 0: never build snapshot images */
	    (error = conf_int(conf, path, "snapshot_image_changes", 0, 1000000000,
			      HUB_IMAGE_MIN_CHANGES, &image_min)) == 0)
		error = hub_serve(dir, listen ? listen : "127.0.0.1:7443", name,
				  (int)timeout_s, pack_loose == 0 ? -1 : pack_loose, (int)pack_packs,
				  image_min);
	json_decref(conf);
	return error;
}

/* After an admin command committed a change: write it to the audit history
 * now. The change stands either way; a history that cannot be written is
 * caught up by the next writer, or reported by audit verify. */
static void audit_after_write(struct cli_ctx *ctx, const struct cli_args *a)
{
	if (hub_audit_sync(hub_dir(a), ctx->store, 1) < 0)
		fprintf(stderr, "relasi-hub: warning: the audit history was not written: %s\n",
			rl_error_message());
}

/* ---- users and devices ------------------------------------------------------------- */


/* --ttl, read before anything is written: `user add` with a bad --ttl used
 * to add the user and only then refuse, so running it again said the user
 * exists. The bound is checked per unit, before multiplying: a huge count
 * of hours overflowed to a lifetime that looked fine. */
static int parse_ttl(const struct cli_args *a, long *ttl)
{
	const char *ttl_s = cli_get(a, "ttl");
	long n, unit;
	char *end;

	*ttl = RL_TOKEN_TTL_SECONDS;
	if (!ttl_s)
		return RL_OK;
	errno = 0;
	n = strtol(ttl_s, &end, 10);
	unit = *end == 'h' || !*end ? 3600 : *end == 'm' ? 60 : 1;
	if (end == ttl_s || (*end && strcmp(end, "h") && strcmp(end, "m") && strcmp(end, "s")) ||
	    n <= 0 || errno == ERANGE)
		return rl_error_set(RL_EINVALID, "--ttl '%s': use e.g. 24h, 30m or 90s", ttl_s);
	if (n > RL_TOKEN_TTL_MAX_SECONDS / unit)
		return rl_error_set(RL_EINVALID, "--ttl '%s': a token lives at most 30 days (720h)",
				    ttl_s);
	*ttl = n * unit;
	return RL_OK;
}

/* The token as `user add` and `user token` print it: the text alone on
 * stdout (a script takes it whole), or --json. */
static int print_token(struct cli_ctx *ctx, const char *login, const char *token, long ttl)
{
	if (ctx->json)
		return cli_print_json(json_pack("{s:s, s:s, s:I}", "login", login, "token", token,
						"ttl_seconds", (json_int_t)ttl));
	printf("%s\n", token);
	return RL_OK;
}

/* The user and the token are one transaction (hub_user_add): a failure
 * leaves neither, so the command can simply be run again. */
static int cmd_user_add(struct cli_ctx *ctx, struct cli_args *a)
{
	char id[RL_ID_BUFSZ], *token = NULL;
	long ttl;
	int error;

	if (!cli_get(a, "name") || !cli_get(a, "role"))
		return cli_usage_error(a->cmd, "user add needs --name and --role");
	if ((error = parse_ttl(a, &ttl)) < 0 || (error = open_hub(ctx, a)) < 0 ||
	    (error = hub_user_add(ctx->store, hub_dir(a), a->pos[0], cli_get(a, "name"),
				  cli_get(a, "role"), cli_get(a, "team"), ttl, id, &token)) < 0)
		return error;
	audit_after_write(ctx, a);
	if (!ctx->json)
		fprintf(stderr, "user %s added; enrolment token (one use, give it to the device):\n",
			a->pos[0]);
	/* Both are committed: a token that cannot be printed (out of memory
	 * for --json) is unknown to anyone and expires unused. */
	if ((error = print_token(ctx, a->pos[0], token, ttl)) < 0)
		rl_error_prefix("user %s was added, but its token could not be printed (make "
				"another with 'relasi-hub user token %s')", a->pos[0], a->pos[0]);
	free(token);
	return error;
}

static int cmd_user_token(struct cli_ctx *ctx, struct cli_args *a)
{
	char *token = NULL;
	long ttl;
	int error;

	if ((error = parse_ttl(a, &ttl)) < 0 || (error = open_hub(ctx, a)) < 0 ||
	    (error = hub_token_create(ctx->store, hub_dir(a), a->pos[0], ttl, &token)) < 0)
		return error;
	audit_after_write(ctx, a);
	error = print_token(ctx, a->pos[0], token, ttl);
	free(token);
	return error;
}

/* A listing with an --all switch: the query's ?1 is non-NULL with --all,
 * ?2 is the hub's time (Unix seconds) for what expires; the table shows
 * the columns of `all` with --all, else of `some` (--json: every column). */
static int emit_listing(struct cli_ctx *ctx, const struct cli_args *a, const char *sql,
			const struct cli_view *some, const struct cli_view *all)
{
	sqlite3_stmt *st;
	int error;

	if ((error = open_hub(ctx, a)) < 0 || (error = rl_store_prepare(ctx->store, sql, &st)) < 0)
		return error;
	if (cli_get(a, "all"))
		sqlite3_bind_int(st, 1, 1);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, rl_store_now_ms(ctx->store) / 1000);
	return cli_emit(ctx, st, cli_get(a, "all") ? all : some, NULL, NULL);
}

/* Users; --all adds the removed ones (tombstones: `user remove`), whose
 * records keep them as owner, with a state column. */
static int cmd_user_list(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const hdr[] = { "login", "name", "role", "team", "devices", "state" };
	static const struct cli_view view = { hdr, 5, NULL, NULL, NULL, "no users" };
	static const struct cli_view all = { hdr, 6, NULL, NULL, NULL, "no users" };

	return emit_listing(ctx, a,
	     "SELECT u.login, u.name, u.role, u.team, (SELECT count(*) FROM hub_devices d WHERE "
	     "d.user_id = u.id AND d.revoked_at IS NULL) AS devices, "
	     "CASE WHEN u.deleted THEN 'removed' ELSE 'active' END AS state, u.id FROM users u "
	     "WHERE u.deleted = 0 OR ?1 IS NOT NULL ORDER BY u.login, u.deleted, u.id", &view, &all);
}

/* `user edit LOGIN [--role R] [--name N] [--team T]`: what differs from the
 * user's values is changed (hub_user_edit); a device takes a new role of
 * its own at its next sync. Nothing that differs: said, nothing written,
 * exit 0 (as a second `device revoke`). */
static int cmd_user_edit(struct cli_ctx *ctx, struct cli_args *a)
{
	json_t *changed = NULL, *c;
	size_t i;
	int error;

	if (!cli_get(a, "role") && !cli_get(a, "name") && !cli_get(a, "team"))
		return cli_usage_error(a->cmd, "user edit needs --role, --name or --team");
	if ((error = open_hub(ctx, a)) < 0 ||
	    (error = hub_user_edit(ctx->store, a->pos[0], cli_get(a, "role"), cli_get(a, "name"),
				   cli_get(a, "team"), &changed)) < 0)
		return error;
	if (json_array_size(changed))
		audit_after_write(ctx, a);
	if (ctx->json)
		return cli_print_json(json_pack("{s:s, s:o}", "login", a->pos[0], "changed", changed));
	if (!json_array_size(changed))
		printf("user %s unchanged: it already has these values, nothing written\n", a->pos[0]);
	else
		printf("user %s changed; each device takes it at its next sync\n", a->pos[0]);
	json_array_foreach(changed, i, c) {
		const char *o = json_string_value(json_object_get(c, "old"));
		const char *n = json_string_value(json_object_get(c, "new"));
		printf("  %-5s %s -> %s\n", json_string_value(json_object_get(c, "field")),
		       o ? o : "-", n ? n : "-");
	}
	json_decref(changed);
	return RL_OK;
}

/* `user remove LOGIN` (hub_user_remove): someone who left. */
static int cmd_user_remove(struct cli_ctx *ctx, struct cli_args *a)
{
	json_t *rep = NULL, *devices, *tokens, *d;
	size_t i;
	int error;

	if ((error = open_hub(ctx, a)) < 0 ||
	    (error = hub_user_remove(ctx->store, a->pos[0], &rep)) < 0)
		return error;
	if (json_is_true(json_object_get(rep, "removed")))
		audit_after_write(ctx, a);
	if (ctx->json)
		return cli_print_json(rep);
	devices = json_object_get(rep, "devices");
	tokens = json_object_get(rep, "tokens");
	if (!json_is_true(json_object_get(rep, "removed"))) {
		printf("user %s was removed already: nothing changed\n", a->pos[0]);
	} else {
		printf("user %s removed: %zu device%s revoked, %zu open enrolment token%s "
		       "cancelled\n", a->pos[0], json_array_size(devices),
		       json_array_size(devices) == 1 ? "" : "s", json_array_size(tokens),
		       json_array_size(tokens) == 1 ? "" : "s");
		json_array_foreach(devices, i, d)
			printf("  device %s revoked\n", json_string_value(d));
		json_array_foreach(tokens, i, d)
			printf("  token  %s cancelled\n", json_string_value(d));
		printf("the records they own keep them as owner (reports, history)\n");
	}
	json_decref(rep);
	return RL_OK;
}

/* Enrolment tokens by the first 12 digits of their id (as the audit history
 * names them: docs/audit.md); --all adds the used, expired and cancelled
 * ones with their state and the device that used it. "user removed": a
 * token whose user an admin device deleted (user remove cancels them). */
static int cmd_token_list(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const hdr[] = { "token", "login", "created", "expires", "state",
					   "device" };
	static const struct cli_view view = { hdr, 4, NULL, NULL, NULL, "no open enrolment tokens" };
	static const struct cli_view all = { hdr, 6, NULL, NULL, NULL, "no enrolment tokens" };

	return emit_listing(ctx, a,
	     "SELECT * FROM (SELECT substr(t.id, 1, 12) AS token, coalesce(u.login, t.user_id) AS "
	     "login, t.created_at AS created, strftime('%Y-%m-%dT%H:%M:%SZ', t.expires_at, "
	     "'unixepoch') AS expires, CASE WHEN t.used_at IS NOT NULL THEN 'used' "
	     "WHEN t.cancelled_at IS NOT NULL THEN 'cancelled' WHEN t.expires_at < ?2 THEN "
	     "'expired' WHEN coalesce(u.deleted, 1) THEN 'user removed' ELSE 'open' END AS state, "
	     "t.device_id AS device, t.used_at AS used, t.cancelled_at AS cancelled "
	     "FROM hub_tokens t LEFT JOIN users u ON u.id = t.user_id "
	     "ORDER BY t.created_at, t.rowid) WHERE state = 'open' OR ?1 IS NOT NULL", &view, &all);
}

static int cmd_token_cancel(struct cli_ctx *ctx, struct cli_args *a)
{
	json_t *rep = NULL;
	const char *tok, *state;
	int error;

	if ((error = open_hub(ctx, a)) < 0 ||
	    (error = hub_token_cancel(ctx->store, a->pos[0], &rep)) < 0)
		return error;
	if (json_is_true(json_object_get(rep, "cancelled")))
		audit_after_write(ctx, a);
	if (ctx->json)
		return cli_print_json(rep);
	tok = json_string_value(json_object_get(rep, "token"));
	state = json_string_value(json_object_get(rep, "state"));
	if (json_is_true(json_object_get(rep, "cancelled")))
		printf("enrolment token %s of %s cancelled: enrolment with it is refused from now "
		       "on\n", tok, json_string_value(json_object_get(rep, "login")));
	else
		printf("enrolment token %s of %s was %s already: nothing changed\n", tok,
		       json_string_value(json_object_get(rep, "login")), state);
	json_decref(rep);
	return RL_OK;
}

/* "behind": the changes in the hub's log past the cursor the device last
 * said it holds (its BYE: hub_device_seen), none below 0 (a device holding
 * history a restored store lost is told so at its next sync). */
static int cmd_device_list(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const hdr[] = { "device", "user", "name", "enrolled", "last seen",
					   "behind", "revoked" };
	static const struct cli_view view = { hdr, 7, NULL, NULL, NULL, "no devices" };

	return emit_listing(ctx, a,
	     "SELECT d.id AS device, u.login AS user, d.name, d.enrolled_at, d.last_seen, "
	     "max((SELECT coalesce(max(seq), 0) FROM hub_log) - d.cursor, 0) AS behind, "
	     "d.revoked_at, d.cursor, d.fingerprint FROM hub_devices d "
	     "LEFT JOIN users u ON u.id = d.user_id ORDER BY d.enrolled_at", &view, &view);
}

static int cmd_device_revoke(struct cli_ctx *ctx, struct cli_args *a)
{
	char id[RL_ID_BUFSZ];
	int error;

	if ((error = open_hub(ctx, a)) < 0 || (error = hub_device_revoke(ctx->store, a->pos[0], id)) < 0)
		return error;
	audit_after_write(ctx, a);
	if (ctx->json)
		return cli_print_json(json_pack("{s:s, s:b}", "device", id, "revoked", 1));
	printf("device %s revoked: the hub refuses it from now on\n", id);
	return RL_OK;
}

/* ---- conflicts and duplicates ----------------------------------------------------------- */

static int cmd_conflicts(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const hdr[] = { "id", "record", "field", "hub value", "incoming", "kept",
					   "state" };
	static const struct cli_view view = { hdr, 7, NULL, NULL, NULL, "no open conflicts" };
	static const struct cli_view all = { hdr, 7, NULL, NULL, NULL, "no conflicts" };

	/* "kept": the provisional winner while open; once decided, what the
	 * decision kept (--all lists those too), a value that is one side's
	 * told as that side's. The values as people read them (money in major
	 * units with its currency, a reference by its record's name, as
	 * `relasi conflicts` shows them): the stored minor units read as an
	 * amount a hundred times too big, one an admin could copy into
	 * --value, which takes major units. --json keeps the stored values
	 * (hub_value, in_value, resolved_value) beside the shown ones. */
	return emit_listing(ctx, a,
	     "SELECT id, coalesce(rl_label(tbl, row_id), tbl || ' ' || substr(row_id, 1, 12)) AS record, "
	     "field, rl_shown(tbl, row_id, field, hub_value, (SELECT p.hub_value FROM hub_conflicts p "
	     "WHERE p.id = c.partner AND p.field = 'currency')) AS hub_shown, "
	     "rl_shown(tbl, row_id, field, in_value, (SELECT p.in_value FROM hub_conflicts p "
	     "WHERE p.id = c.partner AND p.field = 'currency')) AS in_shown, "
	     "CASE WHEN state = 'open' THEN winner || ' (for now' || "
	     "     coalesce(', with ' || partner, '') || ')' "
	     "     WHEN resolution = 'keep' THEN 'hub' WHEN resolution = 'take' THEN 'incoming' "
	     "     WHEN resolution = 'value' AND resolved_value IS hub_value THEN 'hub' "
	     "     WHEN resolution = 'value' AND resolved_value IS in_value THEN 'incoming' "
	     "     WHEN resolution = 'value' THEN 'a new value' ELSE resolution END AS kept, "
	     "state, winner, resolution, resolved_value, "
	     "rl_shown(tbl, row_id, field, resolved_value) AS resolved_shown, tbl, row_id, kind, "
	     "created_at, hub_value, in_value, partner "
	     "FROM hub_conflicts c WHERE state = 'open' OR ?1 IS NOT NULL ORDER BY id", &view, &all);
}

/* A conflict number as typed: digits, 1 or more, within range (strtoll's
 * LLONG_MAX for a longer number named another conflict than the one
 * typed: "no conflict 9223372036854775807"). */
static int parse_id(const char *s, long long *id)
{
	char *end;

	errno = 0;
	*id = strtoll(s, &end, 10);
	if (end == s || *end || *id <= 0 || errno == ERANGE)
		return rl_error_set(RL_EINVALID, "'%s' is not a conflict number", s);
	return RL_OK;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n > k && strcmp(s + n - k, suffix) == 0;
}

/* conflicts show: every column by name; each stored value (X_value) as
 * people read it, from the X_shown column after it. */
static int cmd_conflict_show(struct cli_ctx *ctx, struct cli_args *a)
{
	sqlite3_stmt *st;
	long long id;
	int error, i, n;
	json_t *o;

	if ((error = parse_id(a->pos[0], &id)) < 0 || (error = open_hub(ctx, a)) < 0)
		return error;
	if ((error = rl_store_prepare(ctx->store,
	     /* The devices that must receive a resolution: not revoked, their
	      * user there (hub_device_lookup refuses the rest). */
	     "WITH active AS (SELECT d.cursor, u.login || ' (' || coalesce(d.name, "
	     "substr(d.id, 1, 12)) || ')' AS who FROM hub_devices d JOIN users u ON "
	     "u.id = d.user_id WHERE d.revoked_at IS NULL AND u.deleted = 0) "
	     "SELECT c.id, c.tbl, c.row_id, c.field, c.kind, c.state, c.base_version, c.base_value, "
	     "rl_shown(c.tbl, c.row_id, c.field, c.base_value, pc.base_value) AS base_shown, "
	     "c.hub_value, rl_shown(c.tbl, c.row_id, c.field, c.hub_value, pc.hub_value) AS hub_shown, "
	     "c.hub_device, hu.login AS hub_user, c.hub_hlc, c.in_value, "
	     "rl_shown(c.tbl, c.row_id, c.field, c.in_value, pc.in_value) AS in_shown, c.in_device, "
	     "iu.login AS in_user, c.in_hlc, c.winner, c.created_at, c.resolution, c.resolved_value, "
	     "rl_shown(c.tbl, c.row_id, c.field, c.resolved_value) AS resolved_shown, "
	     "c.resolved_at, "
	     /* Which of them hold the resolution (their cursor, hub_device_seen). */
	     "CASE WHEN c.resolved_seq IS NOT NULL THEN (SELECT count(*) FROM active "
	     "WHERE cursor >= c.resolved_seq) END AS received_by, "
	     "CASE WHEN c.resolved_seq IS NOT NULL THEN (SELECT count(*) FROM active) END AS devices, "
	     "CASE WHEN c.resolved_seq IS NOT NULL THEN (SELECT group_concat(who, ', ') FROM active "
	     "WHERE cursor < c.resolved_seq) END AS waiting, "
	     "CASE WHEN c.state = 'open' AND c.left_version IS NOT NULL AND "
	     "coalesce(f.version, 0) <> c.left_version THEN (SELECT value FROM hub_log "
	     "WHERE seq = f.version) END AS changed_since_to, CASE WHEN c.state = 'open' AND "
	     "c.left_version IS NOT NULL AND coalesce(f.version, 0) <> c.left_version THEN "
	     "rl_shown(c.tbl, c.row_id, c.field, (SELECT value FROM hub_log WHERE seq = f.version)) "
	     "END AS changed_since_shown, CASE WHEN c.partner IS NOT NULL THEN 'conflict ' || "
	     "c.partner || ' on ' || (SELECT p.field FROM hub_conflicts p WHERE p.id = c.partner) || "
	     "': decided with this one by --keep or --take' END AS pair, "
	     "c.partner, c.cause_tbl, c.cause_row, rl_label(c.cause_tbl, c.cause_row) AS cause_label, "
	     "coalesce(rl_label(c.tbl, c.row_id), '') AS record "
	     "FROM hub_conflicts c LEFT JOIN hub_conflicts pc ON pc.id = c.partner AND "
	     "pc.field = 'currency' "
	     "LEFT JOIN hub_devices hd ON hd.id = c.hub_device LEFT JOIN users hu ON hu.id = hd.user_id "
	     "LEFT JOIN users iu ON iu.id = c.in_user LEFT JOIN hub_fields f ON f.tbl = c.tbl AND "
	     "f.row_id = c.row_id AND f.field = c.field WHERE c.id = ?1", &st)) < 0)
		return error;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return rl_error_set(RL_ENOTFOUND, "no conflict %lld", id);
	}
	if (ctx->json) {
		o = cli_row_json(st);
		sqlite3_reset(st);
		return o ? cli_print_json(o) : rl_error_set(RL_ENOMEM, "out of memory");
	}
	n = sqlite3_column_count(st);
	printf("conflict %s on %s %s \"%s\"\n", cli_col(st, 0), cli_col(st, 1), cli_col(st, 2),
	       cli_col(st, n - 1));
	n--;
	for (i = 3; i < n; i++) {
		const char *name = sqlite3_column_name(st, i);
		if (strstr(name, "hlc") && sqlite3_column_type(st, i) == SQLITE_INTEGER) {
			char when[21];
			rl_time_format_utc(when, (sqlite3_column_int64(st, i) >> 16) / 1000);
			cli_print_field(name, when);
		} else if (strcmp(name, "base_version") == 0 &&
			   sqlite3_column_type(st, i) == SQLITE_NULL) {
			cli_print_field(name, strcmp(cli_col(st, 4), "edit-delete") == 0
					? "the record alive, before its delete"
					: "none (neither side had seen a value)");
		} else if (ends_with(name, "_shown") || strcmp(name, "partner") == 0 ||
			   strcmp(name, "cause_row") == 0 || strcmp(name, "cause_label") == 0) {
			continue;       /* printed in place of the stored value before it; in "pair";
					 * in "brought back by" */
		} else if (strcmp(name, "cause_tbl") == 0) {
			/* The work that revived the record: what the admin weighs
			 * against the delete (hub schema 15). */
			const struct rl_table *ct = rl_model_table(cli_col(st, i));
			char *line;
			if (sqlite3_column_type(st, i) == SQLITE_NULL || !ct)
				continue;
			line = sqlite3_column_type(st, i + 2) == SQLITE_NULL
			       ? sqlite3_mprintf("the %s %.12s, which belongs to it", ct->noun,
						 cli_col(st, i + 1))
			       : sqlite3_mprintf("the %s \"%s\" (%.12s), which belongs to it",
						 ct->noun, cli_col(st, i + 2), cli_col(st, i + 1));
			if (!line) {
				sqlite3_reset(st);
				return rl_error_set(RL_ENOMEM, "out of memory");
			}
			cli_print_field("brought back by", line);
			sqlite3_free(line);
		} else if (strcmp(name, "received_by") == 0) {
			/* "2 of 3 devices; waiting: budi (Budi's phone)" */
			char *line;
			if (sqlite3_column_type(st, i) == SQLITE_NULL)
				continue;
			line = sqlite3_mprintf("%s of %s device%s%s%s", cli_col(st, i),
					       cli_col(st, i + 1),
					       sqlite3_column_int(st, i + 1) == 1 ? "" : "s",
					       sqlite3_column_type(st, i + 2) == SQLITE_NULL
					       ? "" : "; waiting: ", sqlite3_column_type(st, i + 2) ==
					       SQLITE_NULL ? "" : cli_col(st, i + 2));
			if (!line) {
				sqlite3_reset(st);
				return rl_error_set(RL_ENOMEM, "out of memory");
			}
			cli_print_field("received by", line);
			sqlite3_free(line);
		} else if (strcmp(name, "devices") == 0 || strcmp(name, "waiting") == 0) {
			continue;       /* in "received by" */
		} else if (strcmp(name, "pair") == 0) {
			if (sqlite3_column_type(st, i) != SQLITE_NULL)
				cli_print_field(name, cli_col(st, i));
		} else if (i + 1 < n && ends_with(name, "_value")) {
			/* As people read it (money with its currency, a reference
			 * by name); --json has both. */
			cli_print_field(name, cli_col(st, i + 1));
		} else if (strcmp(name, "changed_since_to") == 0) {
			/* Only when the field moved on after the conflict: resolving
			 * would overwrite that, so it needs --force. */
			if (sqlite3_column_type(st, i) != SQLITE_NULL) {
				char *line = sqlite3_mprintf("%s (resolving overwrites it: --force)",
							     cli_col(st, i + 1));
				if (!line) {
					sqlite3_reset(st);
					return rl_error_set(RL_ENOMEM, "out of memory");
				}
				cli_print_field("now (changed)", line);
				sqlite3_free(line);
			}
		} else {
			cli_print_field(name, cli_col(st, i));
		}
	}
	sqlite3_reset(st);
	return RL_OK;
}

/* What a resolution wrote, as stored (--json "value": a --value is
 * normalised, a merged customer becomes its survivor) and as people read
 * it: the output said only the mode, a script had to read the conflict
 * again to learn the value every device receives. partner: the pair's
 * other conflict decided with it (0: none), told after it (--json
 * "partner", the same keys; null when none). */
static int print_resolved(struct cli_ctx *ctx, long long id, const char *mode, long long partner)
{
	sqlite3_stmt *st;
	json_t *out = NULL, *o, *value;
	int error = RL_OK, rc;

	/* Whether the record is deleted now (its 'deleted' field as the hub
	 * last wrote it): the value then lands on a tombstone, which the admin
	 * should hear of rather than read only in "(deleted)" after the name. */
	if ((error = rl_store_prepare(ctx->store, "SELECT c.resolved_value, rl_shown(c.tbl, "
				      "c.row_id, c.field, c.resolved_value), coalesce((SELECT "
				      "l.value FROM hub_fields f JOIN hub_log l ON l.seq = f.version "
				      "WHERE f.tbl = c.tbl AND f.row_id = c.row_id AND "
				      "f.field = 'deleted'), 0) = 1 AND c.field <> 'deleted', "
				      "c.resolved_seq, c.id, c.field FROM hub_conflicts c "
				      "WHERE c.id IN (?1, ?2) ORDER BY c.id <> ?1", &st)) < 0)
		return error;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, partner);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		long long cid = sqlite3_column_int64(st, 4), seq = sqlite3_column_int64(st, 3);
		if (!ctx->json) {
			if (cid == id)
				printf("conflict %lld resolved (%s: %s); every device receives it as "
				       "change %lld\n", id, mode, sqlite3_column_type(st, 1) == SQLITE_NULL
				       ? "empty" : cli_col(st, 1), seq);
			else
				printf("conflict %lld, on %s of the same pair, resolved with it (%s: "
				       "%s) as change %lld\n", cid, cli_col(st, 5), mode,
				       sqlite3_column_type(st, 1) == SQLITE_NULL ? "empty"
				       : cli_col(st, 1), seq);
			if (cid == id && sqlite3_column_int(st, 2))
				fprintf(stderr, "note: the record was deleted since: the value is kept "
					"on its tombstone and shows nowhere unless the record is "
					"restored\n");
			continue;
		}
		value = sqlite3_column_type(st, 0) == SQLITE_INTEGER
			? json_integer(sqlite3_column_int64(st, 0))
			: sqlite3_column_type(st, 0) == SQLITE_FLOAT
			? json_real(sqlite3_column_double(st, 0))
			: sqlite3_column_type(st, 0) == SQLITE_NULL ? json_null()
			: json_string(cli_col(st, 0));
		o = json_pack("{s:I, s:s, s:s, s:I, s:o, s:s?, s:b}", "conflict", (json_int_t)cid,
			      "field", cli_col(st, 5), "resolution", mode, "seq", (json_int_t)seq,
			      "value", value, "shown", (const char *)sqlite3_column_text(st, 1),
			      "record_deleted", sqlite3_column_int(st, 2));
		if (!o) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			break;
		}
		if (!out)
			out = o;
		else if (json_object_set_new(out, "partner", o) < 0)
			error = rl_error_set(RL_ENOMEM, "out of memory");
	}
	if (error == 0 && rc != SQLITE_DONE)
		error = rl_store_error(ctx->store, "reading the resolved conflict");
	sqlite3_reset(st);
	if (error == 0 && ctx->json && out && !json_object_get(out, "partner") &&
	    json_object_set_new(out, "partner", json_null()) < 0)
		error = rl_error_set(RL_ENOMEM, "out of memory");
	if (error == 0 && ctx->json) {
		error = out ? cli_print_json(out) : rl_store_error(ctx->store, "reading the "
								   "resolved conflict");
		out = NULL;
	}
	json_decref(out);
	return error;
}

/* A --value decides one field; its pair's other conflict, still open, is
 * the admin's next decision: said on stderr, with the unit the value was
 * read in (an amount typed for the currency that stands now, which --keep
 * or --take on the currency could still change). */
static int note_open_partner(struct cli_ctx *ctx, long long id)
{
	sqlite3_stmt *st;
	int error;

	if ((error = rl_store_prepare(ctx->store, "SELECT p.id, p.field, c.field, "
				      "rl_shown(c.tbl, c.row_id, c.field, c.resolved_value) "
				      "FROM hub_conflicts c JOIN hub_conflicts p ON p.id = c.partner "
				      "WHERE c.id = ?1 AND p.state = 'open'", &st)) < 0)
		return error;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		fprintf(stderr, "note: conflict %s on %s, the other field of the same pair, is still "
			"open: decide it too (%s is now %s)\n", cli_col(st, 0), cli_col(st, 1),
			cli_col(st, 2), cli_col(st, 3));
	sqlite3_reset(st);
	return RL_OK;
}

static int cmd_conflict_resolve(struct cli_ctx *ctx, struct cli_args *a)
{
	const char *mode = NULL, *value = cli_get(a, "value");
	long long id, seq = 0, partner = 0;
	int error, modes = 0;

	if (cli_get(a, "keep")) { mode = "keep"; modes++; }
	if (cli_get(a, "take")) { mode = "take"; modes++; }
	if (value) { mode = "value"; modes++; }
	if (modes != 1)
		return cli_usage_error(a->cmd, "give exactly one of --keep, --take, --value V");
	if ((error = parse_id(a->pos[0], &id)) < 0 || (error = open_hub(ctx, a)) < 0 ||
	    (error = hub_conflict_resolve(ctx->store, id, mode, value, cli_get(a, "force") != NULL,
					  &seq, &partner)) < 0)
		return error;
	audit_after_write(ctx, a);
	if ((error = print_resolved(ctx, id, mode, partner)) < 0)
		return error;
	return partner || strcmp(mode, "value") != 0 ? RL_OK : note_open_partner(ctx, id);
}

static int cmd_duplicates(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const hdr[] = { "id", "table", "first", "second", "why" };
	static const struct cli_view view = { hdr, 5, NULL, NULL, NULL, "no duplicate candidates" };
	sqlite3_stmt *st;
	int error;

	if ((error = open_hub(ctx, a)) < 0 ||
	    (error = rl_store_prepare(ctx->store,
	     "SELECT d.id, d.tbl, coalesce(a1.name, c1.name, d.row_a) AS first, "
	     "coalesce(a2.name, c2.name, d.row_b) AS second, d.reason, d.row_a, d.row_b, d.created_at "
	     "FROM hub_duplicates d "
	     "LEFT JOIN accounts a1 ON d.tbl = 'accounts' AND a1.id = d.row_a "
	     "LEFT JOIN accounts a2 ON d.tbl = 'accounts' AND a2.id = d.row_b "
	     "LEFT JOIN contacts c1 ON d.tbl = 'contacts' AND c1.id = d.row_a "
	     "LEFT JOIN contacts c2 ON d.tbl = 'contacts' AND c2.id = d.row_b "
	     "WHERE d.state = 'open' ORDER BY d.id", &st)) < 0)
		return error;
	return cli_emit(ctx, st, &view, NULL, NULL);
}

static int find_record(rl_store *s, const char *ref, const char **tbl, char row[RL_ID_BUFSZ]);

static int cmd_duplicates_scan(struct cli_ctx *ctx, struct cli_args *a)
{
	long rows = 0, found = 0;
	int error;

	if ((error = open_hub(ctx, a)) < 0 ||
	    (error = hub_duplicates_scan(ctx->store, &rows, &found)) < 0)
		return error;
	if (ctx->json)
		return cli_print_json(json_pack("{s:I, s:I}", "checked", (json_int_t)rows,
						"new_candidates", (json_int_t)found));
	printf("checked %ld customers and contacts: %ld new duplicate candidate%s%s\n", rows, found,
	       found == 1 ? "" : "s", found ? " (relasi-hub duplicates lists them)" : "");
	return RL_OK;
}

/* --prefer FIELD=survivor|loser[,FIELD=...]: parsed into prefs (pointing
 * into buf, a copy of the option's text). */
static int parse_prefer(const char *text, char *buf, size_t len, struct hub_prefer *prefs,
			size_t max, size_t *n)
{
	char *save = NULL, *item;

	*n = 0;
	if (strlen(text) >= len)
		return rl_error_set(RL_EINVALID, "--prefer: too long");
	memcpy(buf, text, strlen(text) + 1);
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		if (!eq || eq == item || (strcmp(eq + 1, "survivor") && strcmp(eq + 1, "loser")))
			return rl_error_set(RL_EINVALID, "--prefer '%s': use FIELD=survivor or "
					    "FIELD=loser (several: phone=loser,email=loser)", item);
		if (*n == max)
			return rl_error_set(RL_EINVALID, "--prefer: more than %zu fields", max);
		*eq = '\0';
		prefs[*n].field = item;
		prefs[*n].loser = strcmp(eq + 1, "loser") == 0;
		(*n)++;
	}
	if (!*n)
		return rl_error_set(RL_EINVALID, "--prefer: give FIELD=survivor or FIELD=loser");
	return RL_OK;
}

static void print_value(const json_t *v, char *buf, size_t len)
{
	if (json_is_string(v))
		snprintf(buf, len, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%g", json_real_value(v));
	else
		snprintf(buf, len, "-");
}

static int cmd_duplicates_merge(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const hdr[] = { "field", "survivor", "loser", "kept" };
	const char *tbl_s = NULL, *tbl_l = NULL, *prefer = cli_get(a, "prefer");
	char survivor[RL_ID_BUFSZ], loser[RL_ID_BUFSZ], buf[1024];
	struct hub_prefer prefs[64];
	size_t nprefs = 0, i;
	int dry = cli_get(a, "dry-run") != NULL, error;
	json_t *rep = NULL, *o;
	struct cli_table *t = NULL;

	if (prefer && (error = parse_prefer(prefer, buf, sizeof(buf), prefs, 64, &nprefs)) < 0)
		return error;
	if ((error = open_hub(ctx, a)) < 0)
		return error;
	if ((error = find_record(ctx->store, a->pos[0], &tbl_s, survivor)) < 0) {
		rl_error_prefix("survivor");
		return error;
	}
	if ((error = find_record(ctx->store, a->pos[1], &tbl_l, loser)) < 0) {
		rl_error_prefix("loser");
		return error;
	}
	if (strcmp(tbl_s, tbl_l) != 0)
		return rl_error_set(RL_EINVALID, "'%s' is a %s and '%s' a %s: merge two accounts or "
				    "two contacts", a->pos[0], rl_model_table(tbl_s)->noun, a->pos[1],
				    rl_model_table(tbl_l)->noun);
	if ((error = hub_duplicates_merge(ctx->store, tbl_s, survivor, loser, prefs, nprefs, dry,
					  &rep)) < 0)
		return error;
	if (!dry)
		audit_after_write(ctx, a);
	if (ctx->json)
		return cli_print_json(rep);
	printf("%s %s %.12s into %.12s%s\n", dry ? "would merge" : "merged",
	       rl_model_table(tbl_s)->noun, loser, survivor,
	       dry ? " (dry run: nothing changed)" : "");
	if (!(t = cli_table_new(4, hdr))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	json_array_foreach(json_object_get(rep, "fields"), i, o) {
		char sv[512], lv[512];
		const char *cells[4];
		print_value(json_object_get(o, "survivor"), sv, sizeof(sv));
		print_value(json_object_get(o, "loser"), lv, sizeof(lv));
		cells[0] = json_string_value(json_object_get(o, "field"));
		cells[1] = sv;
		cells[2] = lv;
		cells[3] = json_string_value(json_object_get(o, "kept"));
		if ((error = cli_table_add(t, cells)) < 0)
			goto cleanup;
	}
	cli_table_print(t, stdout);
	if (json_array_size(json_object_get(rep, "moved")) == 0)
		printf("moves: nothing refers to the loser\n");
	json_array_foreach(json_object_get(rep, "moved"), i, o)
		printf("%s %lld %s.%s\n", i ? "      " : "moves:",
		       (long long)json_integer_value(json_object_get(o, "count")),
		       json_string_value(json_object_get(o, "table")),
		       json_string_value(json_object_get(o, "field")));
	if (dry)
		printf("%lld changes would be logged; run again without --dry-run to merge\n",
		       (long long)json_integer_value(json_object_get(rep, "changes")));
	else
		printf("%lld changes logged (%lld-%lld), one audit commit; the loser is a redirect "
		       "every device receives at its next sync\n",
		       (long long)json_integer_value(json_object_get(rep, "changes")),
		       (long long)json_integer_value(json_object_get(rep, "first_seq")),
		       (long long)json_integer_value(json_object_get(rep, "last_seq")));
cleanup:
	cli_table_free(t);
	json_decref(rep);
	return error;
}

/* ---- offline bundles -------------------------------------------------------------------- */

static int cmd_bundle_import(struct cli_ctx *ctx, struct cli_args *a)
{
	const char *reply = cli_get(a, "reply");
	struct hub_bundle_result r;
	int error;

	if (!reply)
		return cli_usage_error(a->cmd, "bundle import needs --reply REPLY (the file the "
				       "device imports)");
	if ((error = hub_bundle_import(hub_dir(a), a->pos[0], reply, &r)) < 0)
		return error;
	/* The batch is one more commit of the audit history, as after a sync. */
	if (open_hub(ctx, a) == RL_OK)
		audit_after_write(ctx, a);
	if (ctx->json)
		return cli_print_json(json_pack("{s:s, s:s, s:I, s:b, s:b, s:b, s:I, s:I, s:I, s:I, "
						"s:I, s:I, s:I, s:I, s:I, s:b, s:s}",
			"device", r.device, "user", r.user, "batch", (json_int_t)r.batch,
			"replayed", r.replayed, "reused", r.reused, "stale", r.stale,
			"pushed", (json_int_t)r.st.pushed,
			"applied", (json_int_t)r.st.applied, "same", (json_int_t)r.st.same,
			"merged", (json_int_t)r.st.merged, "conflicts", (json_int_t)r.st.conflicts,
			"refused", (json_int_t)r.st.refused, "pulled", (json_int_t)r.st.pulled,
			"pages", (json_int_t)r.pages, "cursor", (json_int_t)r.cursor, "more", r.more,
			"reply", reply));
	/* The shape of serve's "sync" log line, so both read the same. */
	printf("bundle device=%.12s user=%.12s batch=%lld%s pushed=%ld applied=%ld same=%ld "
	       "merged=%ld conflicts=%ld refused=%ld pulled=%ld pages=%ld%s reply=%s\n",
	       r.device, r.user, r.batch, r.replayed ? " (applied before: same answer)"
	       : r.reused ? " (number used before for other changes: not applied; the device "
			    "renumbers it)"
	       : r.stale ? " (made before the device knew of the hub's restore: not applied; "
			   "the device rebases it)" : "",
	       r.st.pushed, r.st.applied, r.st.same, r.st.merged, r.st.conflicts, r.st.refused,
	       r.st.pulled, r.pages, r.more ? " more=yes" : "", reply);
	return RL_OK;
}

/* ---- the audit history ------------------------------------------------------------------ */

/* Tables a record reference may name, in the order names are tried. */
static const char *const record_tables[] = {
	"accounts", "contacts", "deals", "activities", "tasks", "stages", "users",
	"deal_stage_events", NULL
};

/*
 * A record of any synced table by reference, like everywhere else: a unique
 * id prefix of 4+ hex digits (tombstoned records too: their history stays
 * readable), else a name (relasi's rules: exact, then a unique part) —
 * unique across the tables, else RL_EAMBIGUOUS naming the candidates.
 */
static int find_record(rl_store *s, const char *ref, const char **tbl, char row[RL_ID_BUFSZ])
{
	char found_tbl[2][32], found_id[2][RL_ID_BUFSZ];
	int t, n = 0, error;

	if (strlen(ref) >= 4 && rl_id_is_prefix(ref)) {
		char lo[RL_ID_BUFSZ], hi[RL_ID_BUFSZ + 1];
		rl_id_prefix_range(ref, lo, hi);
		for (t = 0; record_tables[t]; t++) {
			sqlite3_stmt *st;
			error = rl_store_preparef(s, &st, "SELECT id FROM \"%w\" WHERE id >= ?1 "
						  "AND id < ?2 LIMIT 2", record_tables[t]);
			if (error < 0)
				return error;
			sqlite3_bind_text(st, 1, lo, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, hi, -1, SQLITE_STATIC);
			while (sqlite3_step(st) == SQLITE_ROW) {
				if (n < 2) {
					snprintf(found_tbl[n], sizeof(found_tbl[n]), "%s", record_tables[t]);
					snprintf(found_id[n], sizeof(found_id[n]), "%s",
						 (const char *)sqlite3_column_text(st, 0));
				}
				n++;
			}
			sqlite3_reset(st);
		}
	}
	if (n == 0) {
		for (t = 0; record_tables[t]; t++) {
			const struct rl_table *rt = rl_model_table(record_tables[t]);
			char id[RL_ID_BUFSZ];
			if (strcmp(rt->name, "deal_stage_events") == 0)
				continue;      /* named by a stage id, not a name */
			error = rl_record_resolve(s, rt, ref, id);
			if (error == RL_ENOTFOUND)
				continue;
			if (error < 0)
				return error;
			if (n < 2) {
				snprintf(found_tbl[n], sizeof(found_tbl[n]), "%s", rt->name);
				snprintf(found_id[n], sizeof(found_id[n]), "%s", id);
			}
			n++;
		}
		rl_error_clear();
	}
	if (n == 0)
		return rl_error_set(RL_ENOTFOUND, "no record matches '%s'", ref);
	if (n > 1)
		return rl_error_set(RL_EAMBIGUOUS, "'%s' matches records of several kinds:\n  %s %.12s\n"
				    "  %s %.12s%s\nuse a longer id prefix", ref, found_tbl[0],
				    found_id[0], found_tbl[1], found_id[1], n > 2 ? "\n  ..." : "");
	*tbl = rl_model_table(found_tbl[0])->name;   /* a static name */
	memcpy(row, found_id[0], RL_ID_BUFSZ);
	return RL_OK;
}

/* A value as one cell of history's table: nothing in it may act on the
 * admin's terminal, so every control character is shown escaped — a
 * backslash as "\\", newline, CR and tab as "\n", "\r", "\t", any other
 * C0 byte and DEL as "\xHH" (as the record files of audit.c write them), a
 * C1 control, a line or paragraph separator and a bidirectional control
 * (which reorders the rest of the line: rl_char_is_terminal_unsafe) as
 * "\uHHHH", a byte that is not UTF-8 as "\xHH". The client's table only
 * blanks CR, LF and tab, and lets ESC through: a value is whatever a device
 * sent, and an ESC sequence in a note could rewrite the admin's screen.
 * "-" for none. Cut at a character when buf is full (the table cuts cells
 * anyway). */
static const char *cell_value(const char *v, char *buf, size_t len)
{
	const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)v;
	size_t o = 0;

	if (!v)
		return "-";
	while (*p) {
		utf8proc_int32_t c;
		utf8proc_ssize_t n = utf8proc_iterate(p, -1, &c);
		char esc[16];
		const char *out = esc;
		size_t olen;

		if (n < 1) {                      /* not UTF-8: the byte, escaped */
			snprintf(esc, sizeof(esc), "\\x%02x", *p);
			n = 1;
		} else if (c == '\\') {
			out = "\\\\";
		} else if (c == '\n') {
			out = "\\n";
		} else if (c == '\r') {
			out = "\\r";
		} else if (c == '\t') {
			out = "\\t";
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", (unsigned)c);
		} else if (rl_char_is_terminal_unsafe(c)) {
			snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)c);
		} else {
			out = NULL;               /* printable: the character itself */
		}
		olen = out ? strlen(out) : (size_t)n;
		if (o + olen + 1 > len)
			break;
		memcpy(buf + o, out ? out : (const char *)p, olen);
		o += olen;
		p += n;
	}
	buf[o] = '\0';
	return buf;
}

static int cmd_history(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const hdr[] = { "when", "who", "field", "old", "new", "commit" };
	const char *tbl = NULL, *field = cli_get(a, "field");
	char row[RL_ID_BUFSZ];
	hub_audit *au = NULL;
	json_t *changes = NULL, *c;
	struct cli_table *t = NULL;
	size_t i;
	int error;

	if ((error = open_hub(ctx, a)) < 0 || (error = find_record(ctx->store, a->pos[0], &tbl, row)) < 0)
		return error;
	if (field) {
		const struct rl_table *rt = rl_model_table(tbl);
		if (strcmp(field, "id") == 0 || !rt || !rl_model_field(rt, field))
			return rl_error_set(RL_EINVALID, "--field '%s': %s has no such field", field,
					    rt ? rt->noun : tbl);
	}
	if ((error = hub_audit_open(&au, hub_dir(a), 1)) < 0)
		return error;
	/* Read what the store committed, even if the writer is behind. */
	if (hub_audit_catch_up(au, ctx->store, NULL) < 0)
		fprintf(stderr, "relasi-hub: warning: %s\n", rl_error_message());
	if ((error = hub_audit_history(au, tbl, row, field, &changes)) < 0)
		goto cleanup;
	if (ctx->json) {
		error = cli_print_json(json_pack("{s:s, s:s, s:O}", "table", tbl, "id", row,
						 "changes", changes));
		goto cleanup;
	}
	{
		sqlite3_stmt *st;
		if (rl_store_prepare(ctx->store, "SELECT rl_label(?1, ?2)", &st) == RL_OK) {
			sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, row, -1, SQLITE_STATIC);
			char label[512];
			if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
				printf("%s %s \"%s\"\n", rl_model_table(tbl)->noun, row,
				       cell_value((const char *)sqlite3_column_text(st, 0), label,
						  sizeof(label)));
			else
				printf("%s %s\n", rl_model_table(tbl)->noun, row);
			sqlite3_reset(st);
		}
	}
	if (json_array_size(changes) == 0) {
		printf("no changes in the history%s%s\n", field ? " of " : "", field ? field : "");
		goto cleanup;
	}
	if (!(t = cli_table_new(6, hdr))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	json_array_foreach(changes, i, c) {
		char oldv[512], newv[512], whov[512], commit[8];
		const char *cells[6];
		snprintf(commit, sizeof(commit), "%.7s", json_string_value(json_object_get(c, "commit")));
		cells[0] = json_string_value(json_object_get(c, "at"));
		cells[1] = cell_value(json_string_value(json_object_get(c, "who")), whov, sizeof(whov));
		cells[2] = json_string_value(json_object_get(c, "field"));
		cells[3] = cell_value(json_string_value(json_object_get(c, "old")), oldv, sizeof(oldv));
		cells[4] = cell_value(json_string_value(json_object_get(c, "new")), newv, sizeof(newv));
		cells[5] = commit;
		if ((error = cli_table_add(t, cells)) < 0)
			goto cleanup;
	}
	cli_table_print(t, stdout);
cleanup:
	cli_table_free(t);
	json_decref(changes);
	hub_audit_free(au);
	return error;
}

static int cmd_audit_verify(struct cli_ctx *ctx, struct cli_args *a)
{
	hub_audit *au = NULL;
	json_t *rep = NULL;
	const char *backup;
	int error;

	if ((error = open_hub(ctx, a)) < 0 || (error = hub_audit_open(&au, hub_dir(a), 1)) < 0)
		return error;
	if ((error = hub_audit_verify(au, ctx->store, cli_get(a, "deep") != NULL, &rep)) < 0)
		goto cleanup;
	if (ctx->json) {
		error = cli_print_json(rep);
		rep = NULL;
		goto cleanup;
	}
	backup = json_string_value(json_object_get(rep, "backup"));
	printf("audit history OK\n");
	printf("  head     %s\n", json_string_value(json_object_get(rep, "head")));
	printf("  changes  %lld\n", (long long)json_integer_value(json_object_get(rep, "seq")));
	printf("  commits  %lld, one line from the baseline, each the hub's own\n",
	       (long long)json_integer_value(json_object_get(rep, "commits")));
	printf("  records  %lld, each exactly as the store has it\n",
	       (long long)json_integer_value(json_object_get(rep, "records")));
	if (json_is_true(json_object_get(rep, "deep")))
		printf("  replay   every commit is what its changes in hub_log make of its parent\n");
	printf("  backup   %s\n", backup && strcmp(backup, "none") ? backup
	       : "none (no last-backup.json)");
cleanup:
	json_decref(rep);
	hub_audit_free(au);
	return error;
}

/* `git gc` for the audit history: serve's writer packs on its own past
 * audit_pack.h's limits; this packs everything now (after an upgrade from
 * a hub that only wrote loose objects, or before a backup). */
static int cmd_audit_pack(struct cli_ctx *ctx, struct cli_args *a)
{
	struct hub_audit_pack_stats st;
	hub_audit *au = NULL;
	int error;

	if ((error = open_hub(ctx, a)) < 0 || (error = hub_audit_open(&au, hub_dir(a), 1)) < 0)
		return error;
	if ((error = hub_audit_pack(au, ctx->store, &st)) < 0)
		goto cleanup;
	if (ctx->json) {
		error = cli_print_json(json_pack("{s:I, s:i, s:i}", "loose_packed",
						 (json_int_t)st.loose_packed, "packs_merged",
						 st.packs_merged, "packs", st.packs));
		goto cleanup;
	}
	printf("audit history packed: %ld loose object%s into a pack, %d pack%s merged; "
	       "%d pack%s now\n", st.loose_packed, st.loose_packed == 1 ? "" : "s",
	       st.packs_merged, st.packs_merged == 1 ? "" : "s", st.packs, st.packs == 1 ? "" : "s");
cleanup:
	hub_audit_free(au);
	return error;
}

/* A snapshot image now (image.c): serve builds one on its own when the hub
 * is quiet (hub.json snapshot_image_changes); this builds one at once,
 * whatever the size of the log — after a bulk load, or to see the figures. */
static int cmd_snapshot_build(struct cli_ctx *ctx, struct cli_args *a)
{
	struct hub_image img;
	int error;

	if ((error = open_hub(ctx, a)) < 0 || (error = hub_image_build(hub_dir(a), NULL, &img)) < 0)
		return error;
	if (ctx->json)
		return cli_print_json(json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "file",
						img.file, "seq", (json_int_t)img.seq,
						"rows", (json_int_t)img.rows,
						"fields", (json_int_t)img.fields,
						"size", (json_int_t)img.size,
						"bytes", (json_int_t)img.bytes,
						"ms", (json_int_t)img.built_ms));
	printf("snapshot image built: %lld records, %lld fields as of change %lld; %.1f MiB, "
	       "%.1f MiB compressed, in %.1f s\n", img.rows, img.fields, img.seq,
	       img.size / 1048576.0, img.bytes / 1048576.0, img.built_ms / 1000.0);
	return RL_OK;
}

/* ---- status (status.c) ------------------------------------------------------------------ */

/* bytes as people read them */
static void format_size(char *buf, size_t len, json_int_t bytes)
{
	if (bytes >= 1024LL * 1024)
		snprintf(buf, len, "%.1f MiB", (double)bytes / (1024.0 * 1024));
	else if (bytes >= 1024)
		snprintf(buf, len, "%.1f KiB", (double)bytes / 1024.0);
	else
		snprintf(buf, len, "%lld B", (long long)bytes);
}

static json_int_t num(const json_t *o, const char *path1, const char *path2)
{
	const json_t *v = json_object_get(o, path1);
	return json_integer_value(path2 ? json_object_get(v, path2) : v);
}

static void print_status(const json_t *st)
{
	const json_t *hist = json_object_get(st, "history"), *bk = json_object_get(st, "backup"), *cert;
	const char *last = json_string_value(json_object_get(st, "last_change_at"));
	const char *oldest = json_string_value(json_object_get(json_object_get(st, "conflicts"),
								"oldest_open_at"));
	char db[32], wal[32], audit[32];
	json_int_t n;

	printf("hub          %s (%s)\n", json_string_value(json_object_get(st, "name")),
	       json_string_value(json_object_get(st, "dir")));
	if ((n = num(st, "changes", NULL)) > 0)
		printf("changes      %lld, the last at %s\n", (long long)n, last ? last : "?");
	else
		printf("changes      none yet\n");
	if ((n = num(st, "conflicts", "open")) > 0)
		printf("conflicts    %lld open, the oldest from %s (relasi-hub conflicts)\n",
		       (long long)n, oldest ? oldest : "?");
	else
		printf("conflicts    none open\n");
	if ((n = num(st, "conflicts", "undelivered")) > 0)
		printf("             %lld decided, not yet on every device (conflicts show ID: "
		       "received by)\n", (long long)n);
	if ((n = num(st, "open_duplicates", NULL)) > 0)
		printf("duplicates   %lld candidate%s open (relasi-hub duplicates)\n", (long long)n,
		       n == 1 ? "" : "s");
	else
		printf("duplicates   none open\n");
	printf("devices      %lld enrolled, %lld revoked; %lld not seen for %d days or more\n",
	       (long long)num(st, "devices", "enrolled"), (long long)num(st, "devices", "revoked"),
	       (long long)num(st, "devices", "quiet"), (int)num(st, "devices", "quiet_days"));
	printf("users        %lld (%lld removed); %lld open enrolment token%s\n",
	       (long long)num(st, "users", "active"), (long long)num(st, "users", "removed"),
	       (long long)num(st, "open_tokens", NULL), num(st, "open_tokens", NULL) == 1 ? "" : "s");
	if (json_is_integer(json_object_get(hist, "written")))
		printf("history      written up to change %lld (%lld behind)\n",
		       (long long)num(hist, "written", NULL), (long long)num(hist, "behind", NULL));
	else
		printf("history      not written yet (%lld behind; serve writes it)\n",
		       (long long)num(hist, "behind", NULL));
	if (json_is_object(bk))
		printf("backup       %s, up to change %lld (%lld change%s since)\n",
		       json_string_value(json_object_get(bk, "created")),
		       (long long)num(bk, "last_seq", NULL), (long long)num(bk, "behind", NULL),
		       num(bk, "behind", NULL) == 1 ? "" : "s");
	else
		printf("backup       none yet (relasi-hub backup FILE)\n");
	cert = json_object_get(st, "server_certificate");
	if (json_is_true(json_object_get(cert, "expired")))
		printf("certificate  server EXPIRED on %s (relasi-hub cert renew)\n",
		       json_string_value(json_object_get(cert, "valid_until")));
	else
		printf("certificate  server valid until %s (%lld day%s left)\n",
		       json_string_value(json_object_get(cert, "valid_until")),
		       (long long)num(cert, "days_left", NULL), num(cert, "days_left", NULL) == 1 ? "" : "s");
	format_size(db, sizeof(db), num(st, "files", "hub_db"));
	format_size(wal, sizeof(wal), num(st, "files", "wal"));
	format_size(audit, sizeof(audit), num(st, "files", "audit"));
	printf("files        hub.db %s, WAL %s, audit.git %s\n", db, wal, audit);
}

static int cmd_status(struct cli_ctx *ctx, struct cli_args *a)
{
	json_t *st = NULL;
	int error;

	if ((error = open_hub(ctx, a)) < 0 || (error = hub_status(ctx->store, hub_dir(a), &st)) < 0)
		return error;
	if (ctx->json)
		return cli_print_json(st);
	print_status(st);
	json_decref(st);
	return RL_OK;
}

/* ---- certificates (cert.c) -------------------------------------------------------------- */

/* "now" for certificates: RELASI_NOW when set (tests, drills), as the
 * store's clock reads it (relasi/store.h), else the system's. */
static int64_t cert_now(void)
{
	const char *env = getenv("RELASI_NOW");
	int64_t utc;
	int off;

	if (env && *env && rl_time_parse(&utc, &off, env, 0, 0) == RL_OK)
		return utc;
	return (int64_t)time(NULL);
}

static void cert_line(const char *what, const struct rl_pki_cert_info *c, int64_t now)
{
	char until[21];
	int64_t left = (c->not_after - now) / 86400;
	size_t i;

	rl_time_format_utc(until, c->not_after);
	printf("%-19s valid until %s  ", what, until);
	if (c->not_after <= now)
		printf("EXPIRED");
	else
		printf("%lld day%s left", (long long)left, left == 1 ? "" : "s");
	for (i = 0; i < c->nsans; i++)
		printf("%s%s", i ? ", " : "  names: ", c->sans[i]);
	printf("\n");
}

static int cmd_cert(struct cli_ctx *ctx, struct cli_args *a)
{
	struct hub_certs c;
	int64_t now = cert_now();
	int error;

	if ((error = hub_cert_read(hub_dir(a), &c)) < 0)
		return error;
	if (ctx->json)
		return cli_print_json(json_pack("[o, o, o]", hub_cert_json("server", &c.server, now),
						hub_cert_json("server_ca", &c.server_ca, now),
						hub_cert_json("device_ca", &c.device_ca, now)));
	cert_line("server certificate", &c.server, now);
	cert_line("server CA", &c.server_ca, now);
	cert_line("device CA", &c.device_ca, now);
	return RL_OK;
}

static int cmd_cert_renew(struct cli_ctx *ctx, struct cli_args *a)
{
	const char *hosts = cli_get(a, "host"), *ds = cli_get(a, "days"), *names[RL_PKI_SANS_MAX];
	char *copy = NULL, *end;
	struct rl_pki_cert_info info;
	int64_t now = cert_now();
	size_t n = 0;
	long days = HUB_CERT_DAYS;
	int error;

	if (ds) {
		errno = 0;
		days = strtol(ds, &end, 10);
		if (errno || end == ds || *end || days < 1 || days > HUB_CERT_DAYS_MAX)
			return rl_error_set(RL_EUSAGE, "--days '%s': a number of days from 1 to %d", ds,
					    HUB_CERT_DAYS_MAX);
	}
	if (hosts && (error = split_hosts(hosts, &copy, names, &n)) < 0)
		return error;
	error = hub_cert_renew(hub_dir(a), names, n, (int)days, now, &info);
	free(copy);
	if (error < 0)
		return error;
	if (ctx->json)
		return cli_print_json(hub_cert_json("server", &info, now));
	cert_line("server certificate", &info, now);
	printf("renewed from the same server CA: devices take it without enrolling again; "
	       "start serve again to use it\n");
	return RL_OK;
}

/* ---- backup and restore ---------------------------------------------------------------- */

static void show_progress(void *pctx, const char *status)
{
	(void)pctx;
	fprintf(stderr, "%s\n", status);
}

static void print_manifest_summary(const json_t *m)
{
	json_t *members = json_object_get(m, "members"), *e;
	json_int_t bytes = 0;
	size_t i;

	json_array_foreach(members, i, e)
		bytes += json_integer_value(json_object_get(e, "size"));
	printf("  hub          %s\n", json_string_value(json_object_get(m, "hub")));
	printf("  created      %s\n", json_string_value(json_object_get(m, "created")));
	printf("  members      %zu files, %lld bytes before compression (%s)\n",
	       json_array_size(members), (long long)bytes,
	       json_string_value(json_object_get(m, "compression")) ?
	       json_string_value(json_object_get(m, "compression")) : "?");
	printf("  last change  %lld\n", (long long)json_integer_value(json_object_get(m, "last_seq")));
	printf("  audit head   %s\n", json_string_value(json_object_get(m, "audit_head")) ?
	       json_string_value(json_object_get(m, "audit_head")) : "none (no audit repository)");
}

static int cmd_backup(struct cli_ctx *ctx, struct cli_args *a)
{
	json_t *m = NULL;
	int error, tty = isatty(STDERR_FILENO) && !ctx->json;

	if ((error = hub_backup(hub_dir(a), a->pos[0], &m, tty ? show_progress : NULL, NULL)) < 0)
		return error;
	if (ctx->json) {
		if ((error = cli_print_json(m)) < 0)
			rl_error_prefix("the backup '%s' was written, but", a->pos[0]);
		return error;
	}
	printf("backup written to %s (mode 0600: it holds the hub's private keys)\n", a->pos[0]);
	print_manifest_summary(m);
	json_decref(m);
	return RL_OK;
}

static int cmd_restore(struct cli_ctx *ctx, struct cli_args *a)
{
	json_t *m = NULL;
	int error, tty = isatty(STDERR_FILENO) && !ctx->json;

	if ((error = hub_restore(a->pos[0], a->pos[1], &m, tty ? show_progress : NULL, NULL)) < 0) {
		rl_error_prefix("restore refused, nothing written");
		return error;
	}
	if (ctx->json)
		return cli_print_json(m);
	printf("hub restored into %s: every member matched the manifest, hub.db passed "
	       "integrity_check\n", a->pos[1]);
	print_manifest_summary(m);
	printf("devices that synced after this backup send what the hub lost when they next sync;\n"
	       "devices enrolled after it are refused until they enrol again (relasi-hub user token\n"
	       "LOGIN), keeping their stores and their work\n"
	       "start it with: relasi-hub serve %s\n", a->pos[1]);
	json_decref(m);
	return RL_OK;
}

#define DIR_OPT { "dir", 1, "DIR", "the hub directory (default $RELASI_HUB_DIR or .)", NULL }
#define END_OPT { NULL, 0, NULL, NULL, NULL }

static const struct cli_opt init_opts[] = {
	{ "name", 1, "NAME", "the hub's name (required)", NULL },
	{ "host", 1, "H1,H2", "names/addresses devices use, in the certificate (default localhost,127.0.0.1)", NULL },
	{ "listen", 1, "ADDR:PORT", "where to listen (default 127.0.0.1:7443)", NULL },
	END_OPT
};
static const struct cli_opt serve_opts[] = {
	{ "listen", 1, "ADDR:PORT", "override the listen address (port 0: any free port)", NULL },
	{ "timeout", 1, "SECONDS", "drop a device silent this long mid-session (default 30; "
	  "at most 10 before it is authenticated)", NULL },
	DIR_OPT, END_OPT
};
static const struct cli_opt user_add_opts[] = {
	{ "name", 1, "NAME", "full name (required)", NULL },
	{ "role", 1, "ROLE", "rep, manager, marketing or admin (required)", NULL },
	{ "team", 1, "TEAM", "sales team (the pipeline reports filter by it)", NULL },
	{ "ttl", 1, "TIME", "token lifetime: 24h (default), 30m, 90s", NULL },
	DIR_OPT, END_OPT
};
static const struct cli_opt token_opts[] = {
	{ "ttl", 1, "TIME", "token lifetime: 24h (default), 30m, 90s", NULL },
	DIR_OPT, END_OPT
};
static const struct cli_opt user_edit_opts[] = {
	{ "role", 1, "ROLE", "rep, manager, marketing or admin", NULL },
	{ "name", 1, "NAME", "full name", NULL },
	{ "team", 1, "TEAM", "sales team (an empty one clears it)", NULL },
	DIR_OPT, END_OPT
};
static const struct cli_opt user_list_opts[] = {
	{ "all", 0, NULL, "also removed users", NULL }, DIR_OPT, END_OPT
};
static const struct cli_opt token_list_opts[] = {
	{ "all", 0, NULL, "also used, expired and cancelled tokens, with the device that "
	  "used one", NULL }, DIR_OPT, END_OPT
};
static const struct cli_opt dir_opts[] = { DIR_OPT, END_OPT };
static const struct cli_opt cert_renew_opts[] = {
	{ "host", 1, "H1,H2", "names/addresses devices use (default: the current certificate's)", NULL },
	{ "days", 1, "N", "days it is valid (default 825, at most 3650)", NULL },
	DIR_OPT, END_OPT
};
static const struct cli_opt bundle_opts[] = {
	{ "reply", 1, "REPLY", "where to write the reply bundle for the device (required)", NULL },
	DIR_OPT, END_OPT
};
static const struct cli_opt conflicts_opts[] = {
	{ "all", 0, NULL, "also resolved ones", NULL }, DIR_OPT, END_OPT
};
static const struct cli_opt resolve_opts[] = {
	{ "keep", 0, NULL, "keep the hub's value from before the conflict", NULL },
	{ "take", 0, NULL, "take the incoming value", NULL },
	{ "value", 1, "V", "set this value instead (typed like in relasi)", NULL },
	{ "force", 0, NULL, "resolve even though the field has changed since the conflict", NULL },
	DIR_OPT, END_OPT
};

static const struct cli_opt merge_opts[] = {
	{ "prefer", 1, "F=WHO...", "whose value the survivor keeps, per field: survivor or "
	  "loser (default: the survivor's, the loser's where the survivor has none); repeat it "
	  "or give a comma list", NULL },
	{ "dry-run", 0, NULL, "show what the merge would do and change nothing", NULL },
	DIR_OPT, END_OPT
};
static const struct cli_opt verify_opts[] = {
	{ "deep", 0, NULL, "also replay every commit from the hub's change log (reads it all)",
	  NULL }, DIR_OPT, END_OPT
};
static const struct cli_opt history_opts[] = {
	{ "field", 1, "F", "only this field's changes", NULL }, DIR_OPT, END_OPT
};

static const struct cli_cmd hub_cmds[] = {
	{ "init", cmd_init, "DIR --name NAME [--host H1,H2] [--listen ADDR:PORT]",
	  "create a hub: store, CAs, server certificate", init_opts, NULL, CLI_MODEL_NONE, 1, 1, 0 },
	{ "serve", cmd_serve, "[DIR] [--listen ADDR:PORT]", "run the sync server (TLS)",
	  serve_opts, NULL, CLI_MODEL_NONE, 0, 1, 0 },
	{ "user add", cmd_user_add, "LOGIN --name NAME --role ROLE",
	  "add a user and print a one-time enrolment token", user_add_opts, NULL, CLI_MODEL_NONE, 1, 1, 0 },
	{ "user token", cmd_user_token, "LOGIN", "a new enrolment token for another device",
	  token_opts, NULL, CLI_MODEL_NONE, 1, 1, 0 },
	{ "user edit", cmd_user_edit, "LOGIN [--role ROLE] [--name NAME] [--team TEAM]",
	  "change a user's role, name or team; every device receives it at its next sync",
	  user_edit_opts, NULL, CLI_MODEL_NONE, 1, 1, 0 },
	{ "user remove", cmd_user_remove, "LOGIN", "someone who left: revoke their devices, "
	  "cancel their tokens, remove the user (their records keep their owner)", dir_opts,
	  NULL, CLI_MODEL_NONE, 1, 1, 0 },
	{ "user list", cmd_user_list, "[--all]", "list users (--all: removed ones too)",
	  user_list_opts, NULL, CLI_MODEL_NONE, 0, 0, 0 },
	{ "token list", cmd_token_list, "[--all]", "list open enrolment tokens (--all: every "
	  "one, with its state)", token_list_opts, NULL, CLI_MODEL_NONE, 0, 0, 0 },
	{ "token cancel", cmd_token_cancel, "TOKEN", "cancel an unused enrolment token (its "
	  "id prefix, as token list shows it)", dir_opts, NULL, CLI_MODEL_NONE, 1, 1, 0 },
	{ "device list", cmd_device_list, "", "list enrolled devices", dir_opts, NULL,
	  CLI_MODEL_NONE, 0, 0, 0 },
	{ "device revoke", cmd_device_revoke, "DEVICE", "refuse a device from now on",
	  dir_opts, NULL, CLI_MODEL_NONE, 1, 1, 0 },
	{ "conflicts", cmd_conflicts, "[--all]", "list open conflicts", conflicts_opts, NULL,
	  CLI_MODEL_NONE, 0, 0, 0 },
	{ "conflicts show", cmd_conflict_show, "ID", "a conflict: base, both values, who and when",
	  dir_opts, NULL, CLI_MODEL_NONE, 1, 1, 0 },
	{ "conflicts resolve", cmd_conflict_resolve, "ID --keep | --take | --value V",
	  "decide a conflict; the decision syncs to every device", resolve_opts, NULL,
	  CLI_MODEL_NONE, 1, 1, 0 },
	{ "duplicates", cmd_duplicates, "", "customers and contacts that look like duplicates",
	  dir_opts, NULL, CLI_MODEL_NONE, 0, 0, 0 },
	{ "duplicates scan", cmd_duplicates_scan, "", "look for duplicates in the whole store, "
	  "with the rules a sync uses", dir_opts, NULL, CLI_MODEL_NONE, 0, 0, 0 },
	{ "duplicates merge", cmd_duplicates_merge, "SURVIVOR LOSER [--prefer F=survivor|loser,...] "
	  "[--dry-run]", "merge two accounts or two contacts; the loser becomes a redirect",
	  merge_opts, NULL, CLI_MODEL_NONE, 2, 2, 0 },
	{ "bundle import", cmd_bundle_import, "FILE --reply REPLY",
	  "apply a device's offline bundle and write its reply bundle", bundle_opts, NULL,
	  CLI_MODEL_NONE, 1, 1, 0 },
	{ "history", cmd_history, "RECORD [--field F]",
	  "a record's changes from the audit history, newest first: who, when, old -> new",
	  history_opts, NULL, CLI_MODEL_NONE, 1, 1, 0 },
	{ "audit verify", cmd_audit_verify, "[--deep]",
	  "check the audit history (audit.git) against the store and the last backup",
	  verify_opts, NULL, CLI_MODEL_NONE, 0, 0, 0 },
	{ "audit pack", cmd_audit_pack, "", "pack the audit history's objects into one pack "
	  "(serve packs on its own as they accumulate)", dir_opts, NULL, CLI_MODEL_NONE, 0, 0, 0 },
	{ "snapshot build", cmd_snapshot_build, "", "build the snapshot image new devices load "
	  "(serve builds one on its own when quiet)", dir_opts, NULL, CLI_MODEL_NONE, 0, 0, 0 },
	{ "status", cmd_status, "", "the hub at a glance: what needs deciding, quiet devices, how "
	  "far the history and the last backup are behind, the certificate, file sizes",
	  dir_opts, NULL, CLI_MODEL_NONE, 0, 0, 0 },
	{ "cert", cmd_cert, "", "the hub's certificates: how long each is valid, the server's names",
	  dir_opts, NULL, CLI_MODEL_NONE, 0, 0, 0 },
	{ "cert renew", cmd_cert_renew, "[--host H1,H2] [--days N]", "a new server certificate "
	  "from the same CA (devices need nothing new); then start serve again", cert_renew_opts,
	  NULL, CLI_MODEL_NONE, 0, 0, 0 },
	{ "backup", cmd_backup, "FILE", "one archive with a consistent snapshot, the audit "
	  "repository, keys and a manifest", dir_opts, NULL, CLI_MODEL_NONE, 1, 1, 0 },
	{ "restore", cmd_restore, "FILE DIR", "check a backup completely, then restore it into "
	  "a new directory", NULL, NULL, CLI_MODEL_NONE, 2, 2, 0 },
	/* the same command as `report pipeline` (rl_report_cmds), kept by its
	 * old name; --dir comes from store_opts like every report's */
	{ "pipeline", rl_report_cmd_run, "[OPTIONS]", "report pipeline by its old name: per stage, "
	  "deals, amount and weighted amount", rl_report_pipeline_opts,
	  NULL, CLI_MODEL_NONE, 0, 0, 1 },
	{ NULL, NULL, NULL, NULL, NULL, NULL, CLI_MODEL_NONE, 0, 0, 0 }
};

static const struct cli_cmd *const tables[] = { hub_cmds, rl_report_cmds, NULL };

/*
 * Commands with needs_store set only read: the reports (rl_report_cmds) and
 * their alias `pipeline`. They get hub.db of --dir opened read-only (no
 * upgrade, no writes: a report can never change the hub's store, and runs
 * beside a serving hub); every other command opens the hub itself.
 */
static int prepare(struct cli_ctx *ctx, const struct cli_args *a)
{
	char path[4096];
	int error;

	if (!a->cmd->needs_store)
		return RL_OK;
	if ((error = hub_path(path, sizeof(path), hub_dir(a), HUB_DB)) < 0)
		return error;
	error = rl_store_open(&ctx->store, path, RL_STORE_HUB | RL_STORE_READONLY);
	if (error == RL_ENOTFOUND)   /* the store's own hint names `relasi init` */
		return rl_error_set(RL_ENOTFOUND, "no hub in '%s': no %s (create one with "
				    "'relasi-hub init DIR', or give --dir)", hub_dir(a), path);
	return error;
}

static const struct cli_program hub_program = {
	"relasi-hub", RELASI_VERSION,
	"relasi-hub — the Relasi hub: sync server and admin commands (version " RELASI_VERSION ")",
	"Commands work on --dir DIR, else $RELASI_HUB_DIR, else the current directory.\n\n"
	"exit status: 0 ok, 1 error, 2 usage, 3 not found, 4 ambiguous,\n"
	"             5 invalid input, 6 store too new, 7 store or file error\n"
	"             (audit verify: the history does not match), 8 refused: a\n"
	"             bundle's signer or device\n",
	tables, prepare, NULL, dir_opts
};

int main(int argc, char **argv)
{
	/* New stores are written from the build's images (relasi/store.h). */
	rl_store_set_images(&rl_store_builtin_images);
	return cli_main(&hub_program, argc, argv);
}
