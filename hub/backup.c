/*
 * backup.c — `relasi-hub backup FILE`: one compressed archive with a
 * consistent snapshot of the hub (backup.h describes the layout).
 *
 * Everything is first staged in a private directory beside FILE (mode
 * 0700), so that what the manifest hashes is exactly what the archive
 * holds even while devices keep syncing:
 *   1. the audit repository, refs before objects, under the audit
 *      writers' lock (packing removes loose objects it has packed);
 *   2. hub.db with VACUUM INTO, a read transaction: a consistent snapshot
 *      that does not stop the server's writers (WAL). Taken after the audit
 *      copy, so the store is never behind the audit history it comes with,
 *      and still under that lock, so the head the store records as written
 *      is the copied one;
 *   3. the configuration and keys.
 * Then the archive is written to a temporary file (0600: it holds the
 * hub's private keys), synced and renamed to FILE; only then the manifest
 * goes to DIR/last-backup.json. The staging directory is removed on every
 * path; one a killed backup left (flock free) is removed by the next backup
 * to the same FILE (hub_stage_sweep, fsutil.c).
 */
#include "backup.h"
#include "hub.h"
#include "relasi/bundle.h"
#include "relasi/jsonw.h"
#include "relasi/merge.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <git2.h>
#include <mbedtls/sha256.h>

#include "relasi/error.h"
#include "relasi/outfile.h"
#include "relasi/valid.h"

#define COPY_CHUNK 65536

/* The files of a hub directory that a backup carries besides hub.db. */
const char *const hub_backup_files[] = {
	HUB_CONF, HUB_SERVER_CA, HUB_SERVER_CAKEY, HUB_DEVICE_CA, HUB_DEVICE_CAKEY,
	HUB_SERVER_CRT, HUB_SERVER_KEY, NULL
};

/* Staged members, in archive order (paths relative to the staging dir). */
struct members {
	char **path;
	size_t n, cap;
};

struct backup {
	const char *dir;
	char stage[4096];
	struct members m;
	hub_backup_progress progress;
	void *pctx;
};

static void say(struct backup *b, const char *what, const char *arg)
{
	char line[512];

	if (!b->progress)
		return;
	snprintf(line, sizeof(line), "%s%s%s", what, arg ? " " : "", arg ? arg : "");
	b->progress(b->pctx, line);
}

static int members_add(struct members *m, const char *path)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		char **np = realloc(m->path, cap * sizeof(*np));
		if (!np)
			return rl_error_set(RL_ENOMEM, "out of memory");
		m->path = np;
		m->cap = cap;
	}
	if (!(m->path[m->n] = strdup(path)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	m->n++;
	return RL_OK;
}

static void members_free(struct members *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		free(m->path[i]);
	free(m->path);
}

/* Private keys and the store (token hashes) stay owner-only. */
static int member_mode(const char *path)
{
	size_t n = strlen(path);

	return strcmp(path, HUB_DB) == 0 || (n > 4 && strcmp(path + n - 4, ".key") == 0)
	       ? 0600 : 0644;
}

/* Copy src to dst (created, must not exist). *gone: src vanished (a git
 * lock or temporary file that was renamed meanwhile). */
static int copy_file(const char *src, const char *dst, int *gone)
{
	char buf[COPY_CHUNK];
	struct stat sb;
	int in, out = -1, error = RL_OK;
	ssize_t r;

	*gone = 0;
	if ((in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		if (errno == ENOENT) {
			*gone = 1;
			return RL_OK;
		}
		return rl_error_set(RL_EIO, "cannot read '%s': %s", src, strerror(errno));
	}
	if (fstat(in, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		error = rl_error_set(RL_EIO, "'%s' is not a regular file", src);
		goto cleanup;
	}
	if ((out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		error = rl_error_set(RL_EIO, "cannot create '%s': %s", dst, strerror(errno));
		goto cleanup;
	}
	while ((r = read(in, buf, sizeof(buf))) != 0) {
		size_t off = 0;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			error = rl_error_set(RL_EIO, "cannot read '%s': %s", src, strerror(errno));
			goto cleanup;
		}
		while (off < (size_t)r) {
			ssize_t w = write(out, buf + off, (size_t)r - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				error = rl_error_set(RL_EIO, "cannot write '%s': %s", dst, strerror(errno));
				goto cleanup;
			}
			off += (size_t)w;
		}
	}
cleanup:
	close(in);
	if (out >= 0 && close(out) != 0 && error == 0)
		error = rl_error_set(RL_EIO, "cannot write '%s': %s", dst, strerror(errno));
	return error;
}

/* Files git writes and renames away, or leaves from a crash: not history. */
static int transient(const char *name)
{
	size_t n = strlen(name);

	return strncmp(name, "tmp_", 4) == 0 || strncmp(name, "incoming-", 9) == 0 ||
	       (n > 5 && strcmp(name + n - 5, ".lock") == 0);
}

/*
 * Copy the tree under DIR/rel to STAGE/rel. pass 0 copies everything but
 * the top-level objects/ directory, pass 1 only that one. Entries are
 * sorted so archives of the same hub list members in the same order.
 */
static int copy_tree(struct backup *b, const char *rel, int depth, int pass)
{
	char src[4096], dst[4096], sub[4096];
	struct dirent **names = NULL;
	int i, n, error = RL_OK;

	if (depth > HUB_RESTORE_MAX_DEPTH - 2)
		return rl_error_set(RL_EINVALID, "'%s/%s' is nested too deep for a backup", b->dir, rel);
	if ((error = hub_path(src, sizeof(src), b->dir, rel)) < 0)
		return error;
	if ((n = scandir(src, &names, NULL, alphasort)) < 0)
		return rl_error_set(RL_EIO, "cannot read '%s': %s", src, strerror(errno));
	for (i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		struct stat sb;
		int gone;

		if (error < 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || transient(name))
			continue;
		if (depth == 0 && (strcmp(name, "objects") == 0) != pass)
			continue;
		/* Hooks are programs, not history; a restore refuses them. */
		if (depth == 0 && strcmp(name, "hooks") == 0)
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", rel, name) >= sizeof(sub) ||
		    strlen(sub) > HUB_RESTORE_MAX_PATH) {
			error = rl_error_set(RL_EINVALID, "path too long for a backup: %s/%s", rel, name);
			continue;
		}
		if ((error = hub_path(src, sizeof(src), b->dir, sub)) < 0 ||
		    (error = hub_path(dst, sizeof(dst), b->stage, sub)) < 0)
			continue;
		if (lstat(src, &sb) != 0) {
			if (errno != ENOENT)
				error = rl_error_set(RL_EIO, "cannot read '%s': %s", src, strerror(errno));
			continue;
		}
		if (S_ISDIR(sb.st_mode)) {
			if (mkdir(dst, 0700) != 0 && errno != EEXIST)
				error = rl_error_set(RL_EIO, "cannot create '%s': %s", dst, strerror(errno));
			else
				error = copy_tree(b, sub, depth + 1, 1);
		} else if (S_ISREG(sb.st_mode)) {
			if ((error = copy_file(src, dst, &gone)) == 0 && !gone)
				error = members_add(&b->m, sub);
		}
		/* Anything else (a symbolic link in hooks/) is not history. */
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return error;
}

/* The audit repository's HEAD in the staged copy: what the archive holds. */
static int audit_head(struct backup *b, json_t **out)
{
	char path[4096], hex[GIT_OID_HEXSZ + 1];
	git_repository *repo = NULL;
	git_oid oid;
	int rc, error = RL_OK;

	*out = json_null();
	if ((error = hub_path(path, sizeof(path), b->stage, HUB_AUDIT_DIR)) < 0)
		return error;
	if ((error = rl_git_global_init()) < 0)
		return error;
	if ((rc = git_repository_open_bare(&repo, path)) < 0) {
		const git_error *e = git_error_last();
		error = rl_error_set(RL_EIO, "the audit repository '%s/%s' cannot be opened: %s",
				     b->dir, HUB_AUDIT_DIR, e ? e->message : "unknown error");
		goto cleanup;
	}
	rc = git_reference_name_to_id(&oid, repo, "HEAD");
	if (rc == 0) {
		git_oid_tostr(hex, sizeof(hex), &oid);
		json_decref(*out);
		*out = json_string(hex);
	} else if (rc != GIT_ENOTFOUND && rc != GIT_EUNBORNBRANCH) {
		const git_error *e = git_error_last();
		error = rl_error_set(RL_EIO, "the audit repository's HEAD cannot be read: %s",
				     e ? e->message : "unknown error");
	}
cleanup:
	git_repository_free(repo);
	return error;
}

static int stage_audit(struct backup *b, json_t **head)
{
	char src[4096], dst[4096];
	struct stat sb;
	int error;

	*head = json_null();
	if ((error = hub_path(src, sizeof(src), b->dir, HUB_AUDIT_DIR)) < 0)
		return error;
	if (lstat(src, &sb) != 0)
		return errno == ENOENT ? RL_OK
		       : rl_error_set(RL_EIO, "cannot read '%s': %s", src, strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		return rl_error_set(RL_EIO, "'%s' is not a directory", src);
	say(b, "copying the audit repository", NULL);
	if ((error = hub_path(dst, sizeof(dst), b->stage, HUB_AUDIT_DIR)) < 0)
		return error;
	if (mkdir(dst, 0700) != 0)
		return rl_error_set(RL_EIO, "cannot create '%s': %s", dst, strerror(errno));
	json_decref(*head);
	*head = NULL;
	/* Writers add objects before they move a ref, so refs copied first name
	 * only objects that exist; but packing (audit_pack.c) removes loose
	 * objects and packs it has replaced, so no writer runs during the copy
	 * (the caller holds the audit writers' lock). */
	if ((error = copy_tree(b, HUB_AUDIT_DIR, 0, 0)) == 0)     /* refs, HEAD, config */
		error = copy_tree(b, HUB_AUDIT_DIR, 0, 1);        /* then objects */
	if (error < 0)
		return error;
	return audit_head(b, head);
}

/* Test hook (tests/cli/test_backup.py): RELASI_HUB_FAULT=backup-pause:MS
 * holds the backup for MS milliseconds between the audit repository's copy
 * and the store's snapshot, where a writer must not come in between;
 * restore-pause:MS holds a restore once the members are extracted. Both
 * leave a staging directory in place for a kill -9. */
void hub_fault_pause(const char *key)
{
	const char *f = getenv("RELASI_HUB_FAULT");
	size_t klen = strlen(key);
	struct timespec ts;
	long ms;

	if (!f || strncmp(f, key, klen) != 0 || f[klen] != ':' ||
	    (ms = strtol(f + klen + 1, NULL, 10)) <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

/* The store's snapshot and what the manifest says about it. */
static int stage_store(struct backup *b, rl_store *s, json_t *manifest)
{
	char path[4096];
	sqlite3 *db = NULL;
	sqlite3_stmt *vacuum, *st = NULL;   /* vacuum: the store's cache owns it */
	int error, rc;

	say(b, "taking a snapshot of hub.db", NULL);
	if ((error = hub_path(path, sizeof(path), b->stage, HUB_DB)) < 0 ||
	    (error = rl_store_prepare(s, "VACUUM INTO ?1", &vacuum)) < 0)
		return error;
	sqlite3_bind_text(vacuum, 1, path, -1, SQLITE_STATIC);
	rc = sqlite3_step(vacuum);
	sqlite3_reset(vacuum);
	if (rc != SQLITE_DONE)
		return rl_store_error(s, "taking a snapshot of hub.db");
	if ((error = members_add(&b->m, HUB_DB)) < 0)
		return error;

	/* Read the facts from the snapshot itself, not the live store. */
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
		"SELECT (SELECT user_version FROM pragma_user_version), "
		"(SELECT value FROM rl_meta WHERE key = 'hub_schema'), "
		"(SELECT value FROM rl_meta WHERE key = 'hub_epoch'), "
		"(SELECT coalesce(max(seq), 0) FROM hub_log)", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		error = rl_error_set(RL_ESTORE, "reading the snapshot: %s",
				     db ? sqlite3_errmsg(db) : "out of memory");
		goto cleanup;
	}
	if (json_object_set_new(manifest, "schema",
		json_pack("{s:i, s:i}", "store", sqlite3_column_int(st, 0),
			  "hub", sqlite3_column_int(st, 1))) < 0 ||
	    json_object_set_new(manifest, "hub_epoch", sqlite3_column_type(st, 2) == SQLITE_NULL
		? json_null() : json_string((const char *)sqlite3_column_text(st, 2))) < 0 ||
	    json_object_set_new(manifest, "last_seq",
				json_integer(sqlite3_column_int64(st, 3))) < 0)
		error = rl_error_set(RL_ENOMEM, "out of memory");
cleanup:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return error;
}

static int stage_files(struct backup *b)
{
	char src[4096], dst[4096];
	int i, gone, error;

	for (i = 0; hub_backup_files[i]; i++) {
		if ((error = hub_path(src, sizeof(src), b->dir, hub_backup_files[i])) < 0 ||
		    (error = hub_path(dst, sizeof(dst), b->stage, hub_backup_files[i])) < 0 ||
		    (error = copy_file(src, dst, &gone)) < 0)
			return error;
		/* A backup that cannot bring the hub back whole is no backup:
		 * said now, not found out at the restore. */
		if (gone)
			return rl_error_set(RL_ENOTFOUND, "'%s' is missing: a hub cannot serve or "
					    "enrol without it, so the backup stops", src);
		if ((error = members_add(&b->m, hub_backup_files[i])) < 0)
			return error;
	}
	return RL_OK;
}

/* SHA-256 and size of a staged member. */
static int hash_file(const char *path, char hex[65], long long *size)
{
	unsigned char buf[COPY_CHUNK], sum[32];
	mbedtls_sha256_context sha;
	int fd, error = RL_OK;
	ssize_t r;

	*size = 0;
	mbedtls_sha256_init(&sha);
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return rl_error_set(RL_EIO, "cannot read '%s': %s", path, strerror(errno));
	mbedtls_sha256_starts_ret(&sha, 0);
	while ((r = read(fd, buf, sizeof(buf))) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			error = rl_error_set(RL_EIO, "cannot read '%s': %s", path, strerror(errno));
			break;
		}
		mbedtls_sha256_update_ret(&sha, buf, (size_t)r);
		*size += r;
	}
	mbedtls_sha256_finish_ret(&sha, sum);
	mbedtls_sha256_free(&sha);
	close(fd);
	hub_hex(sum, sizeof(sum), hex);
	return error;
}

static int manifest_members(struct backup *b, json_t *manifest)
{
	json_t *list = json_array();
	char path[4096], hex[65], mode[8];
	long long size;
	size_t i;
	int error = RL_OK;

	if (!list || json_object_set_new(manifest, "members", list) < 0)
		return rl_error_set(RL_ENOMEM, "out of memory");
	for (i = 0; i < b->m.n; i++) {
		if ((error = hub_path(path, sizeof(path), b->stage, b->m.path[i])) < 0 ||
		    (error = hash_file(path, hex, &size)) < 0)
			return error;
		snprintf(mode, sizeof(mode), "%04o", member_mode(b->m.path[i]));
		if (json_array_append_new(list, json_pack("{s:s, s:I, s:s, s:s}", "path", b->m.path[i],
							  "size", (json_int_t)size, "sha256", hex,
							  "mode", mode)) < 0)
			return rl_error_set(RL_ENOMEM, "out of memory");
	}
	return RL_OK;
}

/* One member from a buffer (data) or a staged file (path). */
int hub_archive_write_member(struct archive *a, const char *name, int mode, time_t when,
			     const char *data, size_t len, const char *path)
{
	struct archive_entry *e = archive_entry_new();
	char buf[COPY_CHUNK];
	struct stat sb;
	int fd = -1, error = RL_OK;
	ssize_t r;

	if (!e)
		return rl_error_set(RL_ENOMEM, "out of memory");
	if (path) {
		if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 || fstat(fd, &sb) != 0) {
			error = rl_error_set(RL_EIO, "cannot read '%s': %s", path, strerror(errno));
			goto cleanup;
		}
		len = (size_t)sb.st_size;
	}
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, (mode_t)mode);
	archive_entry_set_size(e, (la_int64_t)len);
	archive_entry_set_mtime(e, when, 0);
	if (archive_write_header(a, e) != ARCHIVE_OK) {
		error = rl_error_set(RL_EIO, "writing %s to the archive: %s", name, archive_error_string(a));
		goto cleanup;
	}
	if (data && archive_write_data(a, data, len) != (la_ssize_t)len) {
		error = rl_error_set(RL_EIO, "writing %s to the archive: %s", name, archive_error_string(a));
		goto cleanup;
	}
	while (fd >= 0 && (r = read(fd, buf, sizeof(buf))) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || archive_write_data(a, buf, (size_t)r) != r) {
			error = rl_error_set(RL_EIO, "writing %s to the archive: %s", name,
					     r < 0 ? strerror(errno) : archive_error_string(a));
			goto cleanup;
		}
	}
cleanup:
	if (fd >= 0)
		close(fd);
	archive_entry_free(e);
	return error;
}

static int write_archive(struct backup *b, json_t *manifest, const char *file, time_t when)
{
	char tmp[4096], path[4096], dir[4096];
	struct archive *a = NULL;
	const char *filter = "none";
	char *text = NULL;
	size_t i;
	int fd = -1, error;

	if ((error = hub_path(tmp, sizeof(tmp), b->stage, ".archive")) < 0 ||
	    (error = hub_dirname(dir, sizeof(dir), file)) < 0)
		return error;
	/* 0600 from the first byte: the archive holds private keys. */
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0)
		return rl_error_set(RL_EIO, "cannot create '%s': %s", tmp, strerror(errno));
	if ((error = rl_archive_writer_open(fd, &a, &filter)) < 0)
		goto cleanup;
	if (json_object_set_new(manifest, "compression", json_string(filter)) < 0 ||
	    !(text = rl_json_dumps(manifest, JSON_INDENT(1) | JSON_SORT_KEYS))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	say(b, "writing the archive, compression:", filter);
	if ((error = hub_archive_write_member(a, HUB_MANIFEST, 0644, when, text, strlen(text),
					      NULL)) < 0)
		goto cleanup;
	for (i = 0; i < b->m.n; i++) {
		if ((error = hub_path(path, sizeof(path), b->stage, b->m.path[i])) < 0 ||
		    (error = hub_archive_write_member(a, b->m.path[i], member_mode(b->m.path[i]),
						      when, NULL, 0, path)) < 0)
			goto cleanup;
	}
	if (archive_write_close(a) != ARCHIVE_OK) {
		error = rl_error_set(RL_EIO, "finishing the archive: %s", archive_error_string(a));
		goto cleanup;
	}
	if (fsync(fd) != 0) {
		error = rl_error_set(RL_EIO, "cannot write '%s': %s", tmp, strerror(errno));
		goto cleanup;
	}
	if (rename(tmp, file) != 0) {
		error = rl_error_set(RL_EIO, "cannot write '%s': %s", file, strerror(errno));
		goto cleanup;
	}
	/* The archive is whole under its name; only that name's durability
	 * failed: say so, as for last-backup.json below, rather than leave
	 * the admin to wonder whether the file there is a backup. */
	if ((error = hub_fsync_path(dir)) < 0)
		rl_error_prefix("the backup '%s' was written, but", file);
cleanup:
	if (a)
		archive_write_free(a);
	if (fd >= 0)
		close(fd);
	free(text);
	return error;
}

/* last-backup.json: the manifest of the last backup made. */
static int record_last_backup(const char *dir, json_t *manifest)
{
	char path[4096], *text;
	int error;

	if ((error = hub_path(path, sizeof(path), dir, HUB_LAST_BACKUP)) < 0)
		return error;
	if (!(text = rl_json_dumps(manifest, JSON_INDENT(1) | JSON_SORT_KEYS)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	error = hub_write_atomic(path, text, strlen(text), 0644);
	free(text);
	return error;
}

int hub_backup(const char *dir, const char *file, json_t **manifest_out,
	       hub_backup_progress progress, void *pctx)
{
	struct backup b;
	rl_store *s = NULL;
	json_t *manifest = NULL, *conf = NULL, *head = NULL;
	char tmpl[sizeof(b.stage)], created[21];
	time_t when;
	int error, staged = 0, lockfd = -1, stagefd = -1;

	if (manifest_out)
		*manifest_out = NULL;
	/* Renaming the archive over /dev/stdout would replace the system's
	 * link with a file (as root): a backup goes to a file of its own. */
	if ((error = rl_outfile_replaceable(file)) < 0)
		return error;
	memset(&b, 0, sizeof(b));
	b.dir = dir;
	b.progress = progress;
	b.pctx = pctx;
	if ((error = hub_store_open(&s, dir, 0)) < 0)
		return error;
	if ((error = hub_conf_load(dir, &conf)) < 0)
		goto cleanup;
	when = (time_t)(rl_store_now_ms(s) / 1000);
	rl_time_format_utc(created, (int64_t)when);
	if (!(manifest = json_pack("{s:i, s:s, s:s}", "format", HUB_BACKUP_FORMAT,
				   "hub", hub_conf_name(conf, ""),
				   "created", created))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}

	/* The staging directory beside FILE: the final rename stays on one
	 * file system. Locked while this backup works in it, so that the next
	 * backup to FILE can tell one left by a killed backup (a copy of hub.db
	 * and the private keys nobody would ever remove) from a live one. */
	if ((size_t)snprintf(b.stage, sizeof(b.stage), "%s.tmp-XXXXXX", file) >= sizeof(b.stage)) {
		error = rl_error_set(RL_EINVALID, "path too long: %s", file);
		goto cleanup;
	}
	memcpy(tmpl, b.stage, sizeof(tmpl));
	if ((error = hub_stage_create(b.stage, &stagefd)) < 0)
		goto cleanup;
	staged = 1;
	hub_stage_sweep(tmpl, "backup");
	/* The audit repository and the store's snapshot under one hold of the
	 * audit writers' lock: a writer records in hub.db the head it moved the
	 * repository to, so one that ran between the two copies left a store
	 * naming a head the archived repository lacks, and the restored hub's
	 * writer refused to go on ("cut back"). Taken even when there is no
	 * repository yet: the first writer creates it. Syncing devices do not
	 * wait for it; the history catches up after. */
	if ((error = hub_audit_lock_dir(dir, &lockfd)) < 0)
		goto cleanup;
	if ((error = stage_audit(&b, &head)) < 0)
		goto cleanup;
	if (json_object_set_new(manifest, "audit_head", head) < 0) {  /* owns head now */
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	hub_fault_pause("backup-pause");
	if ((error = stage_store(&b, s, manifest)) < 0)
		goto cleanup;
	hub_audit_unlock_dir(lockfd);
	lockfd = -1;
	if ((error = stage_files(&b)) < 0)
		goto cleanup;
	say(&b, "hashing the members", NULL);
	if ((error = manifest_members(&b, manifest)) < 0 ||
	    (error = write_archive(&b, manifest, file, when)) < 0)
		goto cleanup;

	/* The backup is complete; the audit verifier reads the head here. */
	if ((error = record_last_backup(dir, manifest)) < 0) {
		rl_error_prefix("the backup '%s' was written, but", file);
		goto cleanup;
	}
	if (manifest_out) {
		*manifest_out = manifest;
		manifest = NULL;
	}
cleanup:
	hub_audit_unlock_dir(lockfd);
	if (staged) {
		int e = hub_rmtree(b.stage);
		if (error == 0 && e < 0) {      /* the next backup sweeps it */
			error = e;
			rl_error_prefix("the backup '%s' was written, but", file);
		}
	}
	if (stagefd >= 0)
		close(stagefd);     /* after the removal: a sweep never sees it unlocked */
	members_free(&b.m);
	json_decref(manifest);
	json_decref(conf);
	rl_store_close(s);
	return error;
}
