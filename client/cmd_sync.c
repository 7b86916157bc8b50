/*
 * cmd_sync.c — the only commands that talk to the hub: enroll (once per
 * device), sync, and the conflicts that touch this device's own edits.
 *
 * Files beside the store: hub-ca.crt (the hub's server CA, pinned by the
 * fingerprint in the enrolment token), device.key (this device's private
 * key, 0600, never leaves the device), device.crt (signed by the hub).
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "relasi/conn.h"
#include "relasi/devsync.h"
#include "relasi/limits.h"
#include "relasi/outbox.h"
#include "relasi/pki.h"
#include "relasi/token.h"
#include "relasi/valid.h"
#include "relasi/wire.h"

#define CONNECT_TIMEOUT_MS 15000

/* A hub that closes the connection during the handshake is full (every
 * slot taken) or made room by dropping this device's half-made connection
 * (hub/server.c, "Admission"): sync tries again after a pause, doubled each
 * time and spread at random (a crowd after an outage must not come back in
 * step), before it gives up and says so. */
#define CONNECT_RETRIES    3
#define CONNECT_PAUSE_MS   500

static void pause_before_retry(int n)
{
	unsigned int r = 0;
	long ms = (long)CONNECT_PAUSE_MS << n;
	struct timespec ts;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (unsigned int)getpid();
	ms = ms / 2 + (long)(r % (unsigned int)ms);          /* 0.5x to 1.5x */
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The hub's address as one writes it: an IPv6 address in brackets
 * ([::1]:7443), so that its port cannot be read as part of it. */
static const char *hub_addr(char *buf, size_t size, const char *host, const char *port)
{
	if (strchr(host, ':'))
		snprintf(buf, size, "[%s]:%s", host, port);
	else
		snprintf(buf, size, "%s:%s", host, port);
	return buf;
}

static int home_file(struct cli_ctx *ctx, const char *name, char *buf, size_t len)
{
	if ((size_t)snprintf(buf, len, "%s/%s", ctx->home, name) >= len)
		return rl_error_set(RL_EINVALID, "path too long");
	return RL_OK;
}

/* Records made before enrolment carry the local user id; the hub's id for
 * this user replaces it (as ordinary, captured edits). */
static int adopt_user(struct cli_ctx *ctx, const char *new_user)
{
	static const char *const owned[][2] = {
		{ "accounts", "owner_id" }, { "contacts", "owner_id" }, { "deals", "owner_id" },
		{ "tasks", "owner_id" }, { "activities", "user_id" }, { "deal_stage_events", "user_id" }
	};
	char old[RL_ID_BUFSZ];
	size_t i;
	int error;

	snprintf(old, sizeof(old), "%s", rl_store_user_id(ctx->store));
	if (strcmp(old, new_user) == 0)
		return RL_OK;
	for (i = 0; i < sizeof(owned) / sizeof(owned[0]); i++) {
		sqlite3_stmt *st;
		error = rl_store_preparef(ctx->store, &st,
					  "UPDATE \"%w\" SET \"%w\" = ?1 WHERE \"%w\" = ?2",
					  owned[i][0], owned[i][1], owned[i][1]);
		if (error < 0)
			return error;
		sqlite3_bind_text(st, 1, new_user, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, old, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_reset(st);
			return rl_store_error(ctx->store, "re-owning records");
		}
		sqlite3_reset(st);
	}
	return rl_store_set_identity(ctx->store, rl_store_device_id(ctx->store), new_user);
}

struct enrolled {
	json_t *resp;
	const struct rl_token *tok;
};

static int save_enrolment(struct cli_ctx *ctx, void *arg)
{
	struct enrolled *e = arg;
	const char *user = json_string_value(json_object_get(e->resp, "user"));
	const char *name = json_string_value(json_object_get(e->resp, "name"));
	const char *role = json_string_value(json_object_get(e->resp, "role"));
	char port[16];
	int error;

	snprintf(port, sizeof(port), "%d", e->tok->port);
	if ((error = rl_store_meta_set(ctx->store, "hub_host", e->tok->host)) < 0 ||
	    (error = rl_store_meta_set(ctx->store, "hub_port", port)) < 0 ||
	    (error = rl_store_meta_set(ctx->store, "hub_server_name", e->tok->server_name)) < 0 ||
	    (error = rl_store_meta_set(ctx->store, "hub_ca_fingerprint", e->tok->fingerprint)) < 0 ||
	    (error = rl_store_set_role(ctx->store, role ? role : "")) < 0 ||
	    (error = rl_store_meta_set(ctx->store, "login",
				       json_string_value(json_object_get(e->resp, "login")))) < 0)
		return error;
	if (name && (error = rl_store_meta_set(ctx->store, "rep_name", name)) < 0)
		return error;
	return adopt_user(ctx, user);
}

static int new_store(struct cli_ctx *ctx)
{
	char dev[RL_ID_BUFSZ], user[RL_ID_BUFSZ];
	int error;

	if (mkdir(ctx->home, 0700) != 0 && errno != EEXIST)
		return rl_error_set(RL_EIO, "cannot create '%s': %s", ctx->home, strerror(errno));
	if ((error = rl_store_open(&ctx->store, ctx->store_path, RL_STORE_CREATE)) < 0 ||
	    (error = rl_store_begin(ctx->store)) < 0)
		return error;
	if ((error = rl_store_new_id(ctx->store, dev)) < 0 ||
	    (error = rl_store_new_id(ctx->store, user)) < 0 ||
	    (error = rl_store_set_identity(ctx->store, dev, user)) < 0) {
		rl_store_rollback(ctx->store);
		return error;
	}
	return rl_store_commit(ctx->store);
}

static int cmd_enroll(struct cli_ctx *ctx, struct cli_args *a)
{
	struct rl_token tok;
	struct rl_tls_client_opts o;
	struct enrolled e = { NULL, &tok };
	char ca[4096], key[4096], crt[4096], *csr = NULL, *hub = NULL, *pinned = NULL;
	char port[16], addr[300];
	json_t *req = NULL;
	rl_conn *c = NULL;
	struct stat sb;
	int error, type;

	if ((error = rl_token_decode(a->pos[0], &tok)) < 0)
		return error;
	if (stat(ctx->store_path, &sb) == 0) {
		if ((error = rl_store_open(&ctx->store, ctx->store_path, 0)) < 0 ||
		    (error = rl_store_meta_get(ctx->store, "hub_host", &hub)) < 0 ||
		    (hub && (error = rl_store_meta_get(ctx->store, "hub_ca_fingerprint", &pinned)) < 0))
			goto cleanup;
		/* Enrolled already: only again with the same hub (the CA it
		 * pinned), which gives this key, if the hub still knows it for
		 * the token's user and has not revoked it, a certificate anew.
		 * That is how a lost or damaged device.crt is replaced — what a
		 * failed sync tells the rep to do — without losing the store. */
		if (hub && (!pinned || strcasecmp(pinned, tok.fingerprint) != 0)) {
			error = rl_error_set(RL_EINVALID, "this device is already enrolled with the hub "
					     "at %s (this token is another hub's)", hub);
			goto cleanup;
		}
	} else if ((error = new_store(ctx)) < 0) {
		goto cleanup;
	}
	if ((error = home_file(ctx, "hub-ca.crt", ca, sizeof(ca))) < 0 ||
	    (error = home_file(ctx, "device.key", key, sizeof(key))) < 0 ||
	    (error = home_file(ctx, "device.crt", crt, sizeof(crt))) < 0 ||
	    (error = rl_pki_write_file(ca, tok.ca_pem, 0644, 1)) < 0)
		goto cleanup;
	if (stat(key, &sb) != 0 && (error = rl_pki_key_generate(key)) < 0)
		goto cleanup;
	if ((error = rl_pki_csr_create(key, rl_store_device_id(ctx->store), &csr)) < 0)
		goto cleanup;
	memset(&o, 0, sizeof(o));
	o.host = tok.host;
	o.port = tok.port;
	o.server_name = tok.server_name;
	o.ca_path = ca;
	o.ca_fingerprint = tok.fingerprint;
	o.timeout_ms = CONNECT_TIMEOUT_MS;
	snprintf(port, sizeof(port), "%d", tok.port);
	if ((error = rl_tls_connect_anonymous(&c, &o)) < 0) {
		rl_error_prefix("cannot reach the hub at %s",
				hub_addr(addr, sizeof(addr), tok.host, port));
		goto cleanup;
	}
	req = json_pack("{s:s, s:s, s:s}", "token", a->pos[0], "csr", csr, "name",
			cli_get(a, "name") ? cli_get(a, "name") : "relasi device");
	if (!req) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((error = rl_wire_write(c, RL_FRAME_ENROLL, req, RL_MAX_FRAME_PREAUTH,
				   RL_READ_TIMEOUT_MS)) < 0 ||
	    (error = rl_wire_read(c, RL_MAX_FRAME_PREAUTH * 4, RL_READ_TIMEOUT_MS, &type, &e.resp)) < 0)
		goto cleanup;
	if (type != RL_FRAME_ENROLLED) {
		const char *msg = json_string_value(json_object_get(e.resp, "message"));
		error = rl_error_set(RL_EAUTH, "the hub refused the enrolment: %s",
				     msg ? msg : "no reason given");
		goto cleanup;
	}
	if (!json_is_string(json_object_get(e.resp, "cert")) ||
	    !rl_id_valid(json_string_value(json_object_get(e.resp, "user"))) ||
	    strcmp(json_string_value(json_object_get(e.resp, "device")) ?
		   json_string_value(json_object_get(e.resp, "device")) : "",
		   rl_store_device_id(ctx->store)) != 0) {
		error = rl_error_set(RL_EPROTO, "the hub's enrolment answer is malformed");
		goto cleanup;
	}
	if ((error = rl_pki_write_file(crt, json_string_value(json_object_get(e.resp, "cert")), 0644,
				       1)) < 0 ||
	    (error = cli_write(ctx, save_enrolment, &e)) < 0)
		goto cleanup;
	if (ctx->json)
		error = cli_print_json(json_pack("{s:s, s:O, s:O, s:O, s:s, s:i}",
			"device", rl_store_device_id(ctx->store), "user", json_object_get(e.resp, "user"),
			"login", json_object_get(e.resp, "login"), "role", json_object_get(e.resp, "role"),
			"hub", tok.host, "port", tok.port));
	else
		printf("enrolled device %s as %s (%s) with the hub at %s\n",
		       rl_store_device_id(ctx->store), json_string_value(json_object_get(e.resp, "login")),
		       json_string_value(json_object_get(e.resp, "role")),
		       hub_addr(addr, sizeof(addr), tok.host, port));
cleanup:
	rl_conn_close(c);
	json_decref(req);
	json_decref(e.resp);
	free(csr);
	free(hub);
	free(pinned);
	rl_token_clear(&tok);
	return error;
}

int cli_note_held(struct cli_ctx *ctx, long long *held)
{
	int error = rl_outbox_count_held(ctx->store, held);

	if (error == RL_OK && *held && !ctx->json)
		fprintf(stderr, "relasi: %lld change%s held on this device: edits of new records the "
			"hub refused, sent with them by 'relasi outbox retry' (see 'relasi status')\n",
			*held, *held == 1 ? "" : "s");
	return error;
}

int cli_exchange_lock(struct cli_ctx *ctx, int *fd)
{
	char path[4096];
	int n;

	*fd = -1;
	n = snprintf(path, sizeof(path), "%s.exchange", ctx->store_path);
	if (n < 0 || (size_t)n >= sizeof(path))
		return rl_error_set(RL_EIO, "path too long: %s.exchange", ctx->store_path);
	if ((*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return rl_error_set(RL_EIO, "cannot open %s: %s", path, strerror(errno));
	if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		int busy = errno == EWOULDBLOCK;
		close(*fd);
		*fd = -1;
		return busy ? rl_error_set(RL_EBUSY, "another sync or bundle exchange of this store "
					   "is running; try again when it has ended")
			    : rl_error_set(RL_EIO, "cannot lock %s: %s", path, strerror(errno));
	}
	return RL_OK;
}

static void show_progress(void *ctx, const char *status)
{
	(void)ctx;
	fprintf(stderr, "\r%-60s", status);
}

static int cmd_sync(struct cli_ctx *ctx, struct cli_args *a)
{
	struct rl_tls_client_opts o;
	struct rl_sync_stats st;
	char *host = NULL, *port = NULL, *name = NULL, *fp = NULL;
	char ca[4096], key[4096], crt[4096], addr[300];
	rl_conn *c = NULL;
	long long held = 0;
	int error, attempt, busy, lock = -1, tty = isatty(STDERR_FILENO) && !ctx->json;

	if ((error = cli_exchange_lock(ctx, &lock)) < 0 ||
	    (error = rl_store_meta_get(ctx->store, "hub_host", &host)) < 0 ||
	    (error = rl_store_meta_get(ctx->store, "hub_port", &port)) < 0 ||
	    (error = rl_store_meta_get(ctx->store, "hub_server_name", &name)) < 0 ||
	    (error = rl_store_meta_get(ctx->store, "hub_ca_fingerprint", &fp)) < 0)
		goto cleanup;
	if (!host || !port || !name) {
		error = rl_error_set(RL_EINVALID, "this device is not enrolled: run 'relasi enroll TOKEN' "
				     "with the token from your hub admin");
		goto cleanup;
	}
	if ((error = home_file(ctx, "hub-ca.crt", ca, sizeof(ca))) < 0 ||
	    (error = home_file(ctx, "device.key", key, sizeof(key))) < 0 ||
	    (error = home_file(ctx, "device.crt", crt, sizeof(crt))) < 0)
		goto cleanup;
	memset(&o, 0, sizeof(o));
	o.host = host;
	o.port = (int)strtol(port, NULL, 10);
	o.server_name = name;
	o.ca_path = ca;
	o.ca_fingerprint = fp;
	o.cert_path = crt;
	o.key_path = key;
	o.timeout_ms = CONNECT_TIMEOUT_MS;
	hub_addr(addr, sizeof(addr), host, port);
	/* A batch the hub holds under the same number with other changes is
	 * renumbered by the session (devsync.c), which then ends: once more. */
	for (attempt = 0;; attempt++) {
		if (tty)
			show_progress(NULL, "connecting…");
		for (busy = 0; (error = rl_tls_connect(&c, &o)) == RL_ECLOSED &&
			       busy < CONNECT_RETRIES; busy++) {
			if (tty)
				show_progress(NULL, "the hub is busy; trying again…");
			pause_before_retry(busy);
		}
		if (error < 0 && tty)
			fprintf(stderr, "\r%-60s\r", "");    /* the error on a line of its own */
		if (error < 0) {
			if (error == RL_EINVALID || error == RL_EIO) {
				/* Nothing reached the hub: this device's own files, a
				 * sync failure like a refusal (the message is
				 * rl_error_set's own buffer: copied first). */
				char why[1024];
				snprintf(why, sizeof(why), "%s", rl_error_message());
				error = rl_error_set(RL_EAUTH, "this device's certificate, key or pinned "
						     "hub CA cannot be used (a certificate mismatch? "
						     "enrol again with a new token): %s", why);
			} else if (error == RL_EAUTH)
				rl_error_prefix("the hub at %s refused this device (revoked, a "
						"certificate mismatch, or a hub restored from a backup "
						"made before this device enrolled: then enrol again with "
						"a new token, which keeps this store and sends its work)",
						addr);
			else if (error == RL_ECLOCK)       /* a certificate's dates */
				rl_error_prefix("the hub at %s", addr);
			else if (error == RL_ECLOSED)
				rl_error_prefix("cannot reach the hub at %s (tried %d times: it is "
						"busy or not a Relasi hub; sync again later)", addr,
						busy + 1);
			else
				rl_error_prefix("cannot reach the hub at %s", addr);
			goto cleanup;
		}
		error = rl_sync_session_ex(ctx->store, c,
					   (cli_get(a, "no-snapshot") ? RL_SYNC_NO_SNAPSHOT : 0) |
					   (cli_get(a, "no-image") ? RL_SYNC_NO_IMAGE : 0), &st,
					   tty ? show_progress : NULL, NULL);
		if (tty)
			fprintf(stderr, "\r%-60s\r", "");
		if (error != RL_EREUSED || attempt > 0)
			break;
		fprintf(stderr, "relasi: %s; sending it again\n", rl_error_message());
		rl_conn_close(c);
		c = NULL;
	}
	/* This device's own store failed (a full disk): every commit is whole,
	 * so what it did not save is pulled or sent again next time. */
	if (error == RL_ESTORE)
		rl_error_prefix("sync stopped: this device's store failed, and what it did not save "
				"comes again at the next sync");
	if (error < 0)
		goto cleanup;
	if (st.image_refused[0])
		fprintf(stderr, "relasi: warning: refused the hub's snapshot image (%s); loaded the "
			"snapshot record by record\n", st.image_refused);
	if (st.restored)
		fprintf(stderr, "the hub was restored from a backup that ends at change %lld: "
			"this device queued %ld changes the hub lost and sent them again\n",
			st.restored_at, st.resent);
	if ((error = cli_note_held(ctx, &held)) < 0)
		goto cleanup;
	if (ctx->json)
		error = cli_print_json(json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}",
			"restamped", (json_int_t)st.restamped, "pushed", (json_int_t)st.pushed, "applied", (json_int_t)st.applied,
			"same", (json_int_t)st.same, "merged", (json_int_t)st.merged,
			"conflicts", (json_int_t)st.conflicts, "refused", (json_int_t)st.refused,
			"held", (json_int_t)held,
			"pulled", (json_int_t)st.pulled, "cursor", (json_int_t)st.cursor,
			"snapshot", (json_int_t)st.snapshot_rows, "image", st.snapshot_image));
	else {
		if (st.restamped)
			printf("re-stamped %ld pending change%s made while this device's clock was "
			       "ahead\n", st.restamped, st.restamped == 1 ? "" : "s");
		printf("synced: pushed %ld (applied %ld, unchanged %ld, merged %ld, conflicts %ld, "
		       "refused %ld), pulled %ld", st.pushed, st.applied, st.same, st.merged,
		       st.conflicts, st.refused, st.pulled);
		if (st.snapshot_rows)
			printf(" (a snapshot %sof %ld records)", st.snapshot_image ? "image " : "",
			       st.snapshot_rows);
		printf("\n");
	}
cleanup:
	rl_conn_close(c);
	if (lock >= 0)
		close(lock);
	free(host);
	free(port);
	free(name);
	free(fp);
	return error;
}

/* "now" in the table names a value the admin chose that is neither side's
 * ("a new value: Elektronik & Grosir"; "a new value" alone left the rep to
 * look for it in the record): column 16, made by the query below. */
static const char *conflict_cell(struct cli_ctx *ctx, sqlite3_stmt *st, int col, char *buf,
				 size_t len)
{
	(void)ctx;
	(void)buf;
	(void)len;
	return col == 6 && sqlite3_column_type(st, 16) != SQLITE_NULL ? cli_col(st, 16) : NULL;
}

static int cmd_conflicts(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const hdr[] = { "id", "record", "field", "yours", "theirs", "by",
					   "now", "state" };
	static const struct cli_view view = { hdr, 8, NULL, conflict_cell, NULL,
		"none of your edits is in conflict" };
	sqlite3_stmt *st;
	int error;

	(void)a;
	/* The list is the hub's, as of the last sync; the admin's decision
	 * arrives as an ordinary change and shows here as 'resolved'. Values
	 * are shown as people read them (money with its currency, a reference
	 * by its record's name); --json also has them as stored. An amount
	 * whose currency was in the same conflict (a pair, decided as one at
	 * the hub, docs/sync.md) is shown in its own side's currency, not the
	 * record's: the conflict recorded at the same time against the same
	 * person on the same record's currency is its pair's. */
	if ((error = rl_store_prepare(ctx->store,
	     "SELECT hub_id AS id, "
	     "  coalesce(rl_label(tbl, row_id), tbl || ' ' || substr(row_id, 1, 12)) AS record, "
	     "  field, rl_shown(tbl, row_id, field, mine, p_mine) AS yours, "
	     "  rl_shown(tbl, row_id, field, theirs, p_theirs) AS theirs, other AS by, "
	     "  CASE WHEN resolution = 'merged' THEN 'the record merged as a duplicate' "
	     "       WHEN resolution = 'value' AND decided IS mine THEN 'yours' "
	     "       WHEN resolution = 'value' AND decided IS theirs THEN 'theirs' "
	     "       WHEN resolution = 'value' THEN 'a new value' "
	     "       WHEN kept_mine THEN 'yours' ELSE 'theirs' END || "
	     "  CASE WHEN state = 'open' THEN ' (for now)' ELSE '' END AS now, "
	     "  state, kind, tbl, row_id, decided, at, mine AS yours_value, theirs AS theirs_value, "
	     "  rl_shown(tbl, row_id, field, decided, p_decided) AS decided_shown, "
	     "  CASE WHEN resolution = 'value' AND decided IS NOT mine AND decided IS NOT theirs "
	     "       THEN 'a new value: ' || coalesce(rl_shown(tbl, row_id, field, decided, "
	     "                                        p_decided), '(empty)') END AS now_shown "
	     "FROM (SELECT c.*, pc.mine AS p_mine, pc.theirs AS p_theirs, pc.decided AS p_decided "
	     "      FROM rl_conflicts c LEFT JOIN rl_conflicts pc ON pc.hub_id = (SELECT max(x.hub_id) "
	     "      FROM rl_conflicts x WHERE c.field = 'amount' AND x.field = 'currency' AND "
	     "      x.tbl = c.tbl AND x.row_id = c.row_id AND x.at = c.at AND x.other IS c.other)) "
	     "ORDER BY hub_id DESC", &st)) < 0)
		return error;
	return cli_emit(ctx, st, &view, NULL, NULL);
}

static const struct cli_opt enroll_opts[] = {
	{ "name", 1, "NAME", "a name for this device, shown to the admin", NULL },
	{ NULL, 0, NULL, NULL, NULL }
};

static const struct cli_opt sync_opts[] = {
	{ "no-snapshot", 0, NULL, "on a first sync, pull the hub's log page by page instead of "
	  "loading a snapshot", NULL },
	{ "no-image", 0, NULL, "on a first sync, load the snapshot record by record, not as the "
	  "hub's prebuilt image", NULL },
	{ NULL, 0, NULL, NULL, NULL }
};

const struct cli_cmd cli_cmds_sync[] = {
	{ "enroll", cmd_enroll, "TOKEN", "join a hub with the one-time token from its admin",
	  enroll_opts, NULL, CLI_MODEL_NONE, 1, 1, 0 },
	{ "sync", cmd_sync, "", "push this device's changes to the hub and pull everyone's",
	  sync_opts, NULL, CLI_MODEL_NONE, 0, 0, 1 },
	{ "conflicts", cmd_conflicts, "", "your edits that met another edit at the hub (read-only)",
	  NULL, NULL, CLI_MODEL_NONE, 0, 0, 1 },
	{ NULL, NULL, NULL, NULL, NULL, NULL, CLI_MODEL_NONE, 0, 0, 0 }
};
