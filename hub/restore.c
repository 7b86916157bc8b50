/*
 * restore.c — `relasi-hub restore FILE DIR`: check a backup (backup.h)
 * completely before anything becomes a hub.
 *
 * The archive is untrusted. It is read with libarchive (any compression,
 * tar formats only) one member at a time; before a byte of a member is
 * written, its header must pass: a regular file or a directory (no links,
 * devices or fifos), a relative normalised path (no "..", ".", empty or
 * absolute components, no control characters) under the names a hub backup
 * has, within the limits of backup.h, and for a file: listed in the
 * manifest (the first member) with the same size, not seen before. Files
 * are written by this code, not libarchive's extractor, into a private
 * directory beside DIR, each opened with O_CREAT | O_EXCL | O_NOFOLLOW below
 * directories opened with O_NOFOLLOW — there are no links to follow since
 * none is ever created. Each member's SHA-256 must match as it ends. Then
 * every manifest entry must have arrived, hub.db must pass
 * PRAGMA integrity_check and carry a schema this binary knows, and the
 * restored store starts a new epoch (epoch.c). Only then, every file and
 * every directory made being synced, is the private directory renamed to
 * DIR. Any refusal removes it: no DIR, no leftovers; one a killed restore
 * left (its flock free) is removed by the next restore beside DIR
 * (hub_stage_sweep, fsutil.c).
 */
#include "backup.h"
#include "hub.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <mbedtls/sha256.h>

#include "relasi/error.h"
#include "relasi/jsonw.h"

#define DATA_CHUNK 65536

struct restore {
	char tmp[4096];             /* the private directory */
	int tmpfd;
	json_t *manifest;
	json_t *index;              /* path -> member object of the manifest */
	long members;
	long long total;
};

/* A member's path: why it is refused, or NULL. */
static const char *path_problem(const char *p)
{
	const char *c, *slash;
	size_t len = strlen(p), n;
	int depth = 0;

	if (len == 0)
		return "an empty path";
	if (len > HUB_RESTORE_MAX_PATH)
		return "a path longer than the limit";
	if (p[0] == '/')
		return "an absolute path";
	for (c = p; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '\\')
			return "a control character or backslash in its path";
	for (c = p; *c; c = slash + 1) {
		slash = strchr(c, '/');
		n = slash ? (size_t)(slash - c) : strlen(c);
		if (n == 2 && c[0] == '.' && c[1] == '.')
			return "a '..' component in its path";
		if (n == 0 || (n == 1 && c[0] == '.'))
			return "a path that is not normalised ('//', '.' or a trailing '/')";
		if (n > 255)
			return "a path component longer than 255 bytes";
		if (++depth > HUB_RESTORE_MAX_DEPTH)
			return "a path nested deeper than the limit";
		if (!slash)
			break;
	}
	return NULL;
}

/* Is p one of the names a hub backup has (dir: a directory entry)? */
static int known_name(const char *p, int dir)
{
	size_t alen = strlen(HUB_AUDIT_DIR);
	int i;

	/* Not hooks: programs git would run (backup.c never writes them). */
	if (strncmp(p, HUB_AUDIT_DIR, alen) == 0 && (p[alen] == '/' || (dir && p[alen] == '\0')))
		return strncmp(p + alen, "/hooks", 6) != 0 || (p[alen + 6] != '/' && p[alen + 6]);
	if (!dir && strcmp(p, HUB_DB) == 0)
		return 1;
	for (i = 0; !dir && hub_backup_files[i]; i++)
		if (strcmp(p, hub_backup_files[i]) == 0)
			return 1;
	return 0;
}

static int hex64(const char *s)
{
	return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* Check the manifest's shape and index its members by path. */
static int load_manifest(struct restore *r, const char *text, size_t len)
{
	json_error_t jerr;
	json_t *members, *m, *fmt;
	size_t i;

	if (!(r->manifest = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)))
		return rl_error_set(RL_EINVALID, "member '%s': not valid JSON (%s, line %d)",
				    HUB_MANIFEST, jerr.text, jerr.line);
	fmt = json_object_get(r->manifest, "format");
	members = json_object_get(r->manifest, "members");
	if (!json_is_integer(fmt))
		return rl_error_set(RL_EINVALID, "member '%s': no format number", HUB_MANIFEST);
	if (json_integer_value(fmt) != HUB_BACKUP_FORMAT)
		return rl_error_set(RL_EINVALID, "member '%s': backup format %lld, this relasi-hub "
				    "reads format %d", HUB_MANIFEST,
				    (long long)json_integer_value(fmt), HUB_BACKUP_FORMAT);
	if (!json_is_array(members) || json_array_size(members) > (size_t)HUB_RESTORE_MAX_MEMBERS)
		return rl_error_set(RL_EINVALID, "member '%s': no member list, or one longer than "
				    "%ld entries", HUB_MANIFEST, HUB_RESTORE_MAX_MEMBERS);
	if (!(r->index = json_object()))
		return rl_error_set(RL_ENOMEM, "out of memory");
	json_array_foreach(members, i, m) {
		const char *path = json_string_value(json_object_get(m, "path"));
		const char *mode = json_string_value(json_object_get(m, "mode"));
		json_t *size = json_object_get(m, "size");
		const char *why;

		if (!path)
			return rl_error_set(RL_EINVALID, "member '%s': entry %zu has no path",
					    HUB_MANIFEST, i + 1);
		if ((why = path_problem(path)) || (!known_name(path, 0) && (why = "a name that is "
							"not part of a hub backup")))
			return rl_error_set(RL_EINVALID, "member '%s': entry '%.200s' has %s",
					    HUB_MANIFEST, path, why);
		if (!json_is_integer(size) || json_integer_value(size) < 0 ||
		    json_integer_value(size) > HUB_RESTORE_MAX_MEMBER ||
		    !hex64(json_string_value(json_object_get(m, "sha256"))) ||
		    !mode || (strcmp(mode, "0600") != 0 && strcmp(mode, "0644") != 0))
			return rl_error_set(RL_EINVALID, "member '%s': entry '%s' needs a size within "
					    "the limit, a SHA-256 and mode 0600 or 0644",
					    HUB_MANIFEST, path);
		if (json_object_get(r->index, path))
			return rl_error_set(RL_EINVALID, "member '%s': '%s' is listed twice",
					    HUB_MANIFEST, path);
		if (json_object_set(r->index, path, m) < 0)
			return rl_error_set(RL_ENOMEM, "out of memory");
	}
	return RL_OK;
}

/* The directory fd for path's parent, creating directories as needed.
 * *leaf points at the last component. Caller closes the fd. */
static int open_parent(struct restore *r, const char *path, int create_last, int *out,
		       const char **leaf)
{
	char comp[256];
	const char *c = path, *slash;
	int fd = dup(r->tmpfd), next;

	*out = -1;
	if (fd < 0)
		return rl_error_set(RL_EIO, "dup: %s", strerror(errno));
	while ((slash = strchr(c, '/')) || create_last) {
		size_t n = slash ? (size_t)(slash - c) : strlen(c);
		memcpy(comp, c, n);        /* n <= 255: path_problem() */
		comp[n] = '\0';
		if (mkdirat(fd, comp, 0700) != 0 && errno != EEXIST)
			goto fail;
		if ((next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
			goto fail;
		close(fd);
		fd = next;
		if (!slash)
			break;
		c = slash + 1;
	}
	*out = fd;
	*leaf = c;
	return RL_OK;
fail:
	next = errno;
	close(fd);
	return rl_error_set(RL_EINVALID, "member '%s': cannot create its directory: %s", path,
			    strerror(next));
}

/* Read one file member into the private directory, hashing as it goes. */
static int extract_file(struct restore *r, struct archive *a, const char *path, json_t *m)
{
	unsigned char buf[DATA_CHUNK], sum[32];
	char hex[65];
	mbedtls_sha256_context sha;
	const char *leaf, *mode = json_string_value(json_object_get(m, "mode"));
	long long want = json_integer_value(json_object_get(m, "size")), got = 0;
	size_t plen = strlen(path);
	int dfd = -1, fd = -1, error;
	la_ssize_t n;

	mbedtls_sha256_init(&sha);
	mbedtls_sha256_starts_ret(&sha, 0);
	if ((error = open_parent(r, path, 0, &dfd, &leaf)) < 0)
		goto cleanup;
	if ((fd = openat(dfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		error = rl_error_set(RL_EINVALID, "member '%s': cannot create it: %s", path,
				     strerror(errno));
		goto cleanup;
	}
	while ((n = archive_read_data(a, buf, sizeof(buf))) > 0) {
		size_t off = 0;
		got += n;
		if (got > want) {
			error = rl_error_set(RL_EINVALID, "member '%s': more data than its size %lld",
					     path, want);
			goto cleanup;
		}
		mbedtls_sha256_update_ret(&sha, buf, (size_t)n);
		while (off < (size_t)n) {
			ssize_t w = write(fd, buf + off, (size_t)n - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				error = rl_error_set(RL_EIO, "member '%s': cannot write it: %s", path,
						     strerror(errno));
				goto cleanup;
			}
			off += (size_t)w;
		}
	}
	if (n < 0) {
		error = rl_error_set(RL_EINVALID, "member '%s': the archive is damaged or truncated "
				     "here (%s)", path, archive_error_string(a));
		goto cleanup;
	}
	mbedtls_sha256_finish_ret(&sha, sum);
	hub_hex(sum, sizeof(sum), hex);
	if (got != want) {
		error = rl_error_set(RL_EINVALID, "member '%s': %lld bytes where the manifest says "
				     "%lld (truncated)", path, got, want);
		goto cleanup;
	}
	if (strcmp(hex, json_string_value(json_object_get(m, "sha256"))) != 0) {
		error = rl_error_set(RL_EINVALID, "member '%s': its SHA-256 does not match the "
				     "manifest (damaged or altered)", path);
		goto cleanup;
	}
	/* Keys stay owner-only whatever the manifest says. */
	if (fchmod(fd, plen > 4 && strcmp(path + plen - 4, ".key") == 0 ? 0600
		   : (mode_t)strtol(mode, NULL, 8)) != 0 || fsync(fd) != 0) {
		error = rl_error_set(RL_EIO, "member '%s': cannot write it: %s", path, strerror(errno));
		goto cleanup;
	}
cleanup:
	mbedtls_sha256_free(&sha);
	if (fd >= 0 && close(fd) != 0 && error == 0)
		error = rl_error_set(RL_EIO, "member '%s': cannot write it: %s", path, strerror(errno));
	if (dfd >= 0)
		close(dfd);
	return error;
}

/* The manifest: first member, a bounded regular file. */
static int read_manifest(struct restore *r, struct archive *a, struct archive_entry *e)
{
	la_int64_t size = archive_entry_size(e);
	char *text;
	la_ssize_t n;
	size_t got = 0;
	int error;

	if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e))
		return rl_error_set(RL_EINVALID, "member '%s' is not a regular file", HUB_MANIFEST);
	if (!archive_entry_size_is_set(e) || size < 0 || size > HUB_RESTORE_MAX_MANIFEST)
		return rl_error_set(RL_EINVALID, "member '%s': size %lld is over the limit of %ld "
				    "bytes", HUB_MANIFEST, (long long)size, HUB_RESTORE_MAX_MANIFEST);
	if (!(text = malloc((size_t)size + 1)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	while ((n = archive_read_data(a, text + got, (size_t)size - got)) > 0)
		got += (size_t)n;
	if (n < 0 || got != (size_t)size) {
		error = rl_error_set(RL_EINVALID, "member '%s': the archive is damaged or truncated "
				     "here (%s)", HUB_MANIFEST, n < 0 ? archive_error_string(a)
				     : "short read");
		free(text);
		return error;
	}
	error = load_manifest(r, text, got);
	free(text);
	return error;
}

/* Every header is checked before its data is read. */
static int read_members(struct restore *r, const char *file, hub_backup_progress progress,
			void *pctx)
{
	struct archive *a;
	struct archive_entry *e;
	char last[HUB_RESTORE_MAX_PATH + 1] = "";
	int rc, i, fd = -1, error = RL_OK;

	if (!(a = archive_read_new()))
		return rl_error_set(RL_ENOMEM, "out of memory");
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
		error = rl_error_set(errno == ENOENT ? RL_ENOTFOUND : RL_EIO, "cannot read '%s': %s",
				     file, strerror(errno));
		goto cleanup;
	}
	/* libarchive reads the first block here: a readable file that is not
	 * a tar is refused as such. */
	if (archive_read_open_fd(a, fd, DATA_CHUNK) != ARCHIVE_OK) {
		error = rl_error_set(RL_EINVALID, "'%s' is not a hub backup archive: %s", file,
				     archive_error_string(a));
		goto cleanup;
	}
	while ((rc = archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
		const char *path, *why = NULL, *link;
		char dirname[HUB_RESTORE_MAX_PATH + 1];
		size_t plen;
		la_int64_t size;
		json_t *m;
		int type;

		if (rc != ARCHIVE_OK) {
			if (r->members == 0)
				error = rl_error_set(RL_EINVALID, "'%s' is not a hub backup archive: %s",
						     file, archive_error_string(a));
			else
				error = rl_error_set(RL_EINVALID, "the archive is damaged or truncated "
						     "after member '%s': %s", last, archive_error_string(a));
			goto cleanup;
		}
		if (++r->members > HUB_RESTORE_MAX_MEMBERS + 1) {
			error = rl_error_set(RL_EINVALID, "the archive has more than %ld members",
					     HUB_RESTORE_MAX_MEMBERS);
			goto cleanup;
		}
		path = archive_entry_pathname(e);
		type = archive_entry_filetype(e);
		/* tar writes directories as "name/": the one trailing slash of a
		 * directory is not part of its name. */
		if (path && type == AE_IFDIR && (plen = strlen(path)) > 1 && plen <= sizeof(dirname) &&
		    path[plen - 1] == '/') {
			memcpy(dirname, path, plen - 1);
			dirname[plen - 1] = '\0';
			path = dirname;
		}
		if (!path || (why = path_problem(path))) {
			error = rl_error_set(RL_EINVALID, "member '%.200s' refused: %s", path ? path : "?",
					     path ? why : "a path that cannot be read");
			goto cleanup;
		}
		snprintf(last, sizeof(last), "%s", path);
		if ((link = archive_entry_hardlink(e)))
			why = "it is a hard link";
		else if ((link = archive_entry_symlink(e)) || type == AE_IFLNK)
			why = "it is a symbolic link";
		else if (type != AE_IFREG && type != AE_IFDIR)
			why = "it is a device, fifo or socket";
		if (why) {
			error = rl_error_set(RL_EINVALID, "member '%s' refused: %s (only files and "
					     "directories are restored)", path, why);
			goto cleanup;
		}
		if (r->members == 1) {
			if (strcmp(path, HUB_MANIFEST) != 0) {
				error = rl_error_set(RL_EINVALID, "the archive does not start with '%s' "
						     "(first member '%s'): not a hub backup, or damaged",
						     HUB_MANIFEST, path);
				goto cleanup;
			}
			if ((error = read_manifest(r, a, e)) < 0)
				goto cleanup;
			if (progress)
				progress(pctx, "manifest read; checking and extracting the members");
			continue;
		}
		if (!known_name(path, type == AE_IFDIR)) {
			error = rl_error_set(RL_EINVALID, "member '%s' refused: not part of a hub backup",
					     path);
			goto cleanup;
		}
		if (type == AE_IFDIR) {
			int dfd;
			const char *leaf;
			if ((error = open_parent(r, path, 1, &dfd, &leaf)) < 0)
				goto cleanup;
			close(dfd);
			continue;
		}
		size = archive_entry_size(e);
		if (!(m = json_object_get(r->index, path))) {
			error = rl_error_set(RL_EINVALID, "member '%s' refused: it is not in the manifest",
					     path);
			goto cleanup;
		}
		if (json_object_get(m, "seen")) {
			error = rl_error_set(RL_EINVALID, "member '%s' refused: it appears twice", path);
			goto cleanup;
		}
		if (!archive_entry_size_is_set(e) || size < 0 || size > HUB_RESTORE_MAX_MEMBER) {
			error = rl_error_set(RL_EINVALID, "member '%s' refused: declared size %lld is "
					     "over the limit of %lld bytes", path, (long long)size,
					     (long long)HUB_RESTORE_MAX_MEMBER);
			goto cleanup;
		}
		if (size != json_integer_value(json_object_get(m, "size"))) {
			error = rl_error_set(RL_EINVALID, "member '%s' refused: its size %lld is not the "
					     "manifest's %lld", path, (long long)size,
					     (long long)json_integer_value(json_object_get(m, "size")));
			goto cleanup;
		}
		if ((r->total += size) > HUB_RESTORE_MAX_TOTAL) {
			error = rl_error_set(RL_EINVALID, "member '%s' refused: the members add up to "
					     "more than the limit of %lld bytes", path,
					     (long long)HUB_RESTORE_MAX_TOTAL);
			goto cleanup;
		}
		if (json_object_set_new(m, "seen", json_true()) < 0) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto cleanup;
		}
		if ((error = extract_file(r, a, path, m)) < 0)
			goto cleanup;
	}
	if (r->members == 0) {
		error = rl_error_set(RL_EINVALID, "'%s' is empty: not a hub backup", file);
		goto cleanup;
	}
	{
		const char *path;
		json_t *m;
		json_object_foreach(r->index, path, m) {
			if (!json_object_get(m, "seen")) {
				error = rl_error_set(RL_EINVALID, "member '%s' is in the manifest but not "
						     "in the archive (truncated or altered)", path);
				goto cleanup;
			}
			json_object_del(m, "seen");
		}
	}
	if (error == 0 && !json_object_get(r->index, HUB_DB))
		error = rl_error_set(RL_EINVALID, "the backup has no %s", HUB_DB);
	for (i = 0; error == 0 && hub_backup_files[i]; i++)
		if (!json_object_get(r->index, hub_backup_files[i]))
			error = rl_error_set(RL_EINVALID, "the backup has no %s: a hub cannot serve "
					     "or enrol without it", hub_backup_files[i]);
cleanup:
	archive_read_free(a);
	if (fd >= 0)
		close(fd);
	return error;
}

/* hub.db: intact, a Relasi hub store, and a schema this binary knows. */
static int check_store(struct restore *r)
{
	char path[4096];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int error = RL_OK, rc, version, hubv;

	if ((error = hub_path(path, sizeof(path), r->tmp, HUB_DB)) < 0)
		return error;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) {
		error = rl_error_set(RL_EINVALID, "member '%s': not a readable SQLite database (%s)",
				     HUB_DB, db ? sqlite3_errmsg(db) : "out of memory");
		goto cleanup;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
		error = rl_error_set(RL_EINVALID, "member '%s': integrity_check failed: %s", HUB_DB,
				     rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0)
				     : sqlite3_errmsg(db));
		goto cleanup;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT (SELECT user_version FROM pragma_user_version), "
			       "(SELECT application_id FROM pragma_application_id), "
			       "(SELECT value FROM rl_meta WHERE key = 'hub_schema')",
			       -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		error = rl_error_set(RL_EINVALID, "member '%s': not a Relasi hub store (%s)", HUB_DB,
				     sqlite3_errmsg(db));
		goto cleanup;
	}
	version = sqlite3_column_int(st, 0);
	hubv = sqlite3_column_int(st, 2);
	/* Said here, by member: the store's open below would refuse it too, but
	 * naming the private directory's file, not the archive's member. */
	if (sqlite3_column_int(st, 1) != rl_store_application_id()) {
		error = rl_error_set(RL_EINVALID, "member '%s': not a Relasi store (PRAGMA "
				     "application_id %d, a Relasi store's is %d)", HUB_DB,
				     sqlite3_column_int(st, 1), rl_store_application_id());
		goto cleanup;
	}
	/* A device's store has the same application_id; only a hub's has
	 * hub tables (rl_meta 'hub_schema'). */
	if (sqlite3_column_type(st, 2) == SQLITE_NULL || version < 1) {
		error = rl_error_set(RL_EINVALID, "member '%s': not a Relasi hub store", HUB_DB);
		goto cleanup;
	}
	if (version > rl_store_schema_latest() || hubv > rl_store_hub_schema_latest()) {
		error = rl_error_set(RL_EVERSION, "member '%s': schema %d (hub tables %d) is newer "
				     "than this relasi-hub's %d (%d): restore with a newer relasi-hub",
				     HUB_DB, version, hubv, rl_store_schema_latest(),
				     rl_store_hub_schema_latest());
		goto cleanup;
	}
cleanup:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return error;
}

/* DIR must not exist, or be an empty directory (not a link to one). */
static int check_target(const char *dir)
{
	struct stat sb;
	struct dirent *d;
	DIR *dh;
	int empty = 1;

	if (lstat(dir, &sb) != 0)
		return errno == ENOENT ? RL_OK
		       : rl_error_set(RL_EIO, "cannot look at '%s': %s", dir, strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		return rl_error_set(RL_EINVALID, "'%s' exists and is not a directory: restore into "
				    "a new directory", dir);
	if (!(dh = opendir(dir)))
		return rl_error_set(RL_EIO, "cannot read '%s': %s", dir, strerror(errno));
	while ((d = readdir(dh)))
		if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
			empty = 0;
	closedir(dh);
	return empty ? RL_OK : rl_error_set(RL_EINVALID, "'%s' exists and is not empty: restore "
					    "into a new or empty directory", dir);
}

int hub_restore(const char *file, const char *dir, json_t **manifest_out,
		hub_backup_progress progress, void *pctx)
{
	struct restore r;
	char parent[4096], path[4096], tmpl[sizeof(r.tmp)], *text = NULL;
	const char *base;
	rl_store *s = NULL;
	long long last;
	size_t dlen = strlen(dir);
	int error, made = 0;

	if (manifest_out)
		*manifest_out = NULL;
	memset(&r, 0, sizeof(r));
	r.tmpfd = -1;
	while (dlen > 1 && dir[dlen - 1] == '/')
		dlen--;
	if (dlen == 0 || dlen >= sizeof(path))
		return rl_error_set(RL_EINVALID, "bad directory '%s'", dir);
	memcpy(path, dir, dlen);
	path[dlen] = '\0';
	base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	if ((error = check_target(path)) < 0 || (error = hub_dirname(parent, sizeof(parent), path)) < 0)
		return error;
	if ((size_t)snprintf(r.tmp, sizeof(r.tmp), "%s/.%s.restore-XXXXXX", parent, base) >=
	    sizeof(r.tmp))
		return rl_error_set(RL_EINVALID, "path too long: %s", dir);
	memcpy(tmpl, r.tmp, sizeof(tmpl));
	/* r.tmpfd holds the directory's lock until it is renamed or removed: a
	 * killed restore's directory (flock released by the kernel) is removed
	 * by the next restore beside DIR, a live one's never. */
	if ((error = hub_stage_create(r.tmp, &r.tmpfd)) < 0)
		return error;
	made = 1;
	hub_stage_sweep(tmpl, "restore");
	if ((error = read_members(&r, file, progress, pctx)) < 0 || (error = check_store(&r)) < 0)
		goto cleanup;
	hub_fault_pause("restore-pause");
	if (progress)
		progress(pctx, "every member matches the manifest; hub.db passed integrity_check");

	/* Upgrade an older store now, and start the new epoch. */
	if ((error = hub_store_open(&s, r.tmp, 0)) < 0 || (error = hub_epoch_restored(s, &last)) < 0)
		goto cleanup;
	rl_store_close(s);
	s = NULL;
	/* The restored hub's last backup is the one it came from (audit verify). */
	if ((error = hub_path(path, sizeof(path), r.tmp, HUB_LAST_BACKUP)) < 0)
		goto cleanup;
	if (!(text = rl_json_dumps(r.manifest, JSON_INDENT(1) | JSON_SORT_KEYS))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	/* Every directory this restore made (audit.git/objects/pack, refs/heads,
	 * ...), not only the top one: a power cut after the rename below must
	 * not lose an entry in any of them. */
	if ((error = hub_write_atomic(path, text, strlen(text), 0644)) < 0 ||
	    (error = hub_fsync_tree(r.tmp)) < 0)
		goto cleanup;
	memcpy(path, dir, dlen);
	path[dlen] = '\0';
	/* rename() replaces an empty directory; a non-empty one that appeared
	 * meanwhile makes it fail, and nothing is lost. */
	if (rename(r.tmp, path) != 0) {
		error = rl_error_set(RL_EIO, "cannot rename '%s' to '%s': %s", r.tmp, path,
				     strerror(errno));
		goto cleanup;
	}
	made = 0;
	if ((error = hub_fsync_path(parent)) < 0)
		goto cleanup;
	if (json_object_set_new(r.manifest, "restored_at_seq", json_integer(last)) < 0) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (manifest_out) {
		*manifest_out = r.manifest;
		r.manifest = NULL;
	}
cleanup:
	rl_store_close(s);
	if (made)
		hub_rmtree(r.tmp);
	if (r.tmpfd >= 0)
		close(r.tmpfd);     /* after the removal or rename: releases the lock */
	json_decref(r.manifest);
	json_decref(r.index);
	free(text);
	return error;
}
