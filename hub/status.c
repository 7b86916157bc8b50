/*
 * status.c — `relasi-hub status` (status.h): the hub at a glance, read
 * from hub.db in one statement and from the files beside it.
 */
#define _XOPEN_SOURCE 700
#include "status.h"
#include "cert.h"
#include "hub.h"

#include <errno.h>
#include <ftw.h>
#include <string.h>
#include <sys/stat.h>

#include "relasi/error.h"
#include "relasi/valid.h"

/* The size of file name in dir; 0 when it does not exist. */
static int file_size(const char *dir, const char *name, json_int_t *size)
{
	char path[4096];
	struct stat st;
	int error;

	*size = 0;
	if ((error = hub_path(path, sizeof(path), dir, name)) < 0)
		return error;
	if (stat(path, &st) == 0) {
		*size = (json_int_t)st.st_size;
		return RL_OK;
	}
	if (errno == ENOENT)
		return RL_OK;
	return rl_error_set(RL_EIO, "cannot read '%s': %s", path, strerror(errno));
}

/* nftw keeps no user pointer: the walk's total, for one walk at a time
 * (a status is one command's). */
static json_int_t tree_bytes;

static int add_file(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (type == FTW_F)
		tree_bytes += (json_int_t)st->st_size;
	return 0;
}

/* The bytes of the regular files under dir/name; 0 when it does not exist. */
static int tree_size(const char *dir, const char *name, json_int_t *size)
{
	char path[4096];
	struct stat st;
	int error;

	*size = 0;
	if ((error = hub_path(path, sizeof(path), dir, name)) < 0)
		return error;
	if (lstat(path, &st) != 0 && errno == ENOENT)
		return RL_OK;
	tree_bytes = 0;
	if (nftw(path, add_file, 16, FTW_PHYS) != 0)
		return rl_error_set(RL_EIO, "cannot read '%s': %s", path, strerror(errno));
	*size = tree_bytes;
	return RL_OK;
}

/* hub.json's name; "" when it has none. */
static int hub_name(const char *dir, json_t **name)
{
	json_t *conf;
	int error;

	if ((error = hub_conf_load(dir, &conf)) < 0)
		return error;
	*name = json_string(hub_conf_name(conf, ""));
	json_decref(conf);
	return *name ? RL_OK : rl_error_set(RL_ENOMEM, "out of memory");
}

/* The last backup (last-backup.json, written by `backup`): when, and up to
 * which change; JSON null when there has been none. */
static int last_backup(const char *dir, json_int_t changes, json_t **out)
{
	char path[4096];
	json_error_t jerr;
	json_t *j, *created, *seq;
	struct stat st;
	int error;

	*out = NULL;
	if ((error = hub_path(path, sizeof(path), dir, HUB_LAST_BACKUP)) < 0)
		return error;
	if (stat(path, &st) != 0 && errno == ENOENT) {
		*out = json_null();
		return RL_OK;
	}
	if (!(j = json_load_file(path, 0, &jerr)))
		return rl_error_set(RL_EINVALID, "%s: %s", path, jerr.text);
	created = json_object_get(j, "created");
	seq = json_object_get(j, "last_seq");
	if (!json_is_string(created) || !json_is_integer(seq)) {
		json_decref(j);
		return rl_error_set(RL_EINVALID, "%s: no 'created' time and 'last_seq' number", path);
	}
	*out = json_pack("{s:O, s:O, s:I}", "created", created, "last_seq", seq, "behind",
			 changes - json_integer_value(seq));
	json_decref(j);
	return *out ? RL_OK : rl_error_set(RL_ENOMEM, "out of memory");
}

/* SQLite's text, or JSON null for NULL. */
static json_t *col_text(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? json_null()
		: json_string((const char *)sqlite3_column_text(st, i));
}

int hub_status(rl_store *s, const char *dir, json_t **out)
{
	int64_t now = rl_store_now_ms(s) / 1000;
	char quiet_since[21];
	json_int_t db_bytes, wal_bytes, audit_bytes, changes;
	json_t *name = NULL, *backup = NULL, *history;
	struct hub_certs certs;
	sqlite3_stmt *st = NULL;
	int error, rc;

	*out = NULL;
	rl_time_format_utc(quiet_since, now - (int64_t)HUB_STATUS_QUIET_DAYS * 86400);
	if ((error = rl_store_prepare(s,
	     "SELECT (SELECT coalesce(max(seq), 0) FROM hub_log), "
	     "(SELECT at FROM hub_log ORDER BY seq DESC LIMIT 1), "
	     "(SELECT count(*) FROM hub_devices WHERE revoked_at IS NULL), "
	     "(SELECT count(*) FROM hub_devices WHERE revoked_at IS NOT NULL), "
	     /* a device enrolled minutes ago and not synced yet is not quiet */
	     "(SELECT count(*) FROM hub_devices WHERE revoked_at IS NULL AND "
	     " coalesce(last_seen, enrolled_at) < ?1), "
	     "(SELECT count(*) FROM users WHERE deleted = 0), "
	     "(SELECT count(*) FROM users WHERE deleted <> 0), "
	     /* open as `token list` says it: unused, not cancelled, not
	      * expired, its user still there */
	     "(SELECT count(*) FROM hub_tokens t LEFT JOIN users u ON u.id = t.user_id "
	     " WHERE t.used_at IS NULL AND t.cancelled_at IS NULL AND t.expires_at >= ?2 "
	     " AND coalesce(u.deleted, 1) = 0), "
	     "(SELECT count(*) FROM hub_conflicts WHERE state = 'open'), "
	     "(SELECT min(created_at) FROM hub_conflicts WHERE state = 'open'), "
	     "(SELECT count(*) FROM hub_duplicates WHERE state = 'open'), "
	     "(SELECT seq FROM hub_audit), "
	     /* decided, and some active device's cursor (its last BYE) is
	      * still below the decision: `conflicts show` names who waits */
	     "(SELECT count(*) FROM hub_conflicts WHERE resolved_seq > (SELECT min(d.cursor) "
	     " FROM hub_devices d JOIN users u ON u.id = d.user_id WHERE d.revoked_at IS NULL "
	     " AND u.deleted = 0))", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, quiet_since, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		error = rl_store_error(s, "reading the hub's state");
		goto cleanup;
	}
	changes = (json_int_t)sqlite3_column_int64(st, 0);
	if ((error = hub_name(dir, &name)) < 0 ||
	    (error = file_size(dir, HUB_DB, &db_bytes)) < 0 ||
	    (error = file_size(dir, HUB_DB "-wal", &wal_bytes)) < 0 ||
	    (error = tree_size(dir, HUB_AUDIT_DIR, &audit_bytes)) < 0 ||
	    (error = last_backup(dir, changes, &backup)) < 0 ||
	    (error = hub_cert_read(dir, &certs)) < 0)
		goto cleanup;
	/* the audit writer's mark: none until serve has written a first round */
	history = sqlite3_column_type(st, 11) == SQLITE_NULL
		? json_pack("{s:n, s:I}", "written", "behind", changes)
		: json_pack("{s:I, s:I}", "written", (json_int_t)sqlite3_column_int64(st, 11),
			    "behind", changes - (json_int_t)sqlite3_column_int64(st, 11));
	*out = json_pack("{s:O, s:s, s:I, s:o, s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:i}, "
			 "s:{s:I, s:I}, s:I, s:{s:I, s:o, s:I}, s:I, s:o, s:O, s:o}",
			 "name", name, "dir", dir, "changes", changes,
			 "last_change_at", col_text(st, 1),
			 "files", "hub_db", db_bytes, "wal", wal_bytes, "audit", audit_bytes,
			 "devices", "enrolled", (json_int_t)sqlite3_column_int64(st, 2),
			 "revoked", (json_int_t)sqlite3_column_int64(st, 3),
			 "quiet", (json_int_t)sqlite3_column_int64(st, 4),
			 "quiet_days", HUB_STATUS_QUIET_DAYS,
			 "users", "active", (json_int_t)sqlite3_column_int64(st, 5),
			 "removed", (json_int_t)sqlite3_column_int64(st, 6),
			 "open_tokens", (json_int_t)sqlite3_column_int64(st, 7),
			 "conflicts", "open", (json_int_t)sqlite3_column_int64(st, 8),
			 "oldest_open_at", col_text(st, 9),
			 "undelivered", (json_int_t)sqlite3_column_int64(st, 12),
			 "open_duplicates", (json_int_t)sqlite3_column_int64(st, 10),
			 "history", history, "backup", backup,
			 "server_certificate", hub_cert_json("server", &certs.server, now));
	if (!*out)
		error = rl_error_set(RL_ENOMEM, "out of memory");
cleanup:
	json_decref(name);
	json_decref(backup);
	sqlite3_reset(st);
	return error;
}
