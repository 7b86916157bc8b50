/*
 * image.c — install the hub's snapshot image as a new device's store (see
 * image.h; sync/PROTOCOL.md, "Snapshot image").
 *
 * The image comes from the hub the device pinned at enrolment, over mutual
 * TLS, but it is still a parser's input and a SQLite file: it is bounded by
 * what SNAP announced (checked against relasi/limits.h before a byte is
 * read), must be a tar of exactly one regular member named relasi.db of the
 * announced size, must hold exactly this device's schema (every table,
 * index, trigger and view, by its SQL text, and the same schema version and
 * page size: nothing of the hub's own can ride along), and must pass SQLite's
 * quick_check. It is opened with SQLite's defensive settings (no writable
 * schema, untrusted schema) and only then read; then its indexes and every
 * row are checked (image_check.c).
 *
 * The device's own rows are kept: every local table (rl_*, but the field
 * versions, which come with the image) is copied into the image before the
 * image is copied over the store. The copy is SQLite's backup API, one
 * transaction under the store's rollback journal: a process killed in the
 * middle leaves the journal hot and the store is rolled back to empty.
 *
 * No other connection may write to the store between the device's check
 * (under its write lock) and the copy: the store's connection switches to
 * locking_mode EXCLUSIVE before it ends its transaction, so it keeps the
 * lock it took to commit into the backup, and only then goes back to normal
 * locking.
 */
#include "image.h"
#include "image_check.h"

#include "relasi/error.h"
#include "relasi/limits.h"
#include "relasi/wire.h"

#include "archive_lazy.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IMAGE_MEMBER "relasi.db"

int rl_image_parse_snap(json_t *o, struct rl_image_snap *a)
{
	const char *keys[] = { "seq", "hlc", "rows", "fields", "bytes", "size" };
	long long *vals[] = { &a->seq, &a->hlc, &a->rows, &a->fields, &a->bytes, &a->size };
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(o, keys[i]);
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return rl_error_set(RL_EPROTO, "the hub's snapshot image announcement has no "
					    "valid %s", keys[i]);
		*vals[i] = json_integer_value(v);
	}
	if (a->rows > RL_MAX_SNAPSHOT_ROWS || a->fields > RL_MAX_SNAPSHOT_FIELDS)
		return rl_error_set(RL_ETOOBIG, "the hub's snapshot image announces %lld records and "
				    "%lld fields, more than %d and %lld", a->rows, a->fields,
				    RL_MAX_SNAPSHOT_ROWS, (long long)RL_MAX_SNAPSHOT_FIELDS);
	if (a->size > RL_MAX_IMAGE_BYTES || a->bytes > RL_MAX_IMAGE_BYTES || a->size == 0 ||
	    a->bytes == 0)
		return rl_error_set(RL_ETOOBIG, "the hub's snapshot image announces %lld bytes "
				    "(%lld compressed); a device takes 1 to %lld", a->size, a->bytes,
				    (long long)RL_MAX_IMAGE_BYTES);
	if (a->fields > 0 && a->seq <= 0)
		return rl_error_set(RL_EPROTO, "the hub's snapshot image has fields but no seq");
	return RL_OK;
}

/* ---- receiving: IMAGE frames -> libarchive -> the image file ------------------------ */

struct feed {
	rl_conn *c;
	const struct rl_image_snap *a;
	unsigned char *frame;
	size_t cap;
	long long got;            /* payload bytes read so far */
	int error;                /* the first error, kept for after libarchive returns */
	char why[RL_ERROR_MSG_MAX + 1];
	rl_sync_progress progress;
	void *pctx;
	long long last_mib;
};

/* The hub's ERROR frame inside the image, as an error. */
static int refused_inside(const unsigned char *frame, size_t len)
{
	json_t *msg = NULL;
	int type, error;

	if ((error = rl_wire_decode(frame, len, &type, &msg)) < 0)
		return error;
	error = rl_error_set(RL_EPROTO, "the hub stopped the snapshot image: %s",
			     json_string_value(json_object_get(msg, "message")) ?
			     json_string_value(json_object_get(msg, "message")) : "no reason given");
	json_decref(msg);
	return error;
}

/* One IMAGE frame's payload; 0 bytes (end of data) once the announced
 * number of bytes has come. */
static int next_frame(struct feed *f, const void **buf, size_t *n)
{
	size_t len;
	int error;

	*n = 0;
	if (f->got == f->a->bytes)
		return RL_OK;
	if ((error = rl_wire_read_raw(f->c, RL_MAX_FRAME, RL_ANSWER_TIMEOUT_MS, &f->frame, &f->cap,
				      &len)) < 0)
		return error;
	if (f->frame[0] != RL_FRAME_IMAGE)
		return f->frame[0] == RL_FRAME_ERROR ? refused_inside(f->frame, len) :
		       rl_error_set(RL_EPROTO, "the hub sent '%c' inside a snapshot image", f->frame[0]);
	if (len < 2 || (long long)(len - 1) > f->a->bytes - f->got)
		return rl_error_set(RL_EPROTO, "the hub's snapshot image is longer than the %lld "
				    "bytes announced", f->a->bytes);
	f->got += (long long)(len - 1);
	*buf = f->frame + 1;
	*n = len - 1;
	if (f->progress && f->got >> 20 != f->last_mib) {
		char status[96];
		f->last_mib = f->got >> 20;
		snprintf(status, sizeof(status), "snapshot image: %lld of %lld MiB", f->got >> 20,
			 f->a->bytes >> 20);
		f->progress(f->pctx, status);
	}
	return RL_OK;
}

static la_ssize_t feed_read(struct archive *ar, void *ctx, const void **buf)
{
	struct feed *f = ctx;
	size_t n;

	(void)ar;
	if (f->error)
		return -1;
	if ((f->error = next_frame(f, buf, &n)) < 0) {
		snprintf(f->why, sizeof(f->why), "%s", rl_error_message());
		return -1;
	}
	return (la_ssize_t)n;
}

static int write_all(int fd, const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Unpack the tar coming in IMAGE frames into fd: one member, relasi.db, of
 * the announced size. */
static int receive(struct feed *f, int fd, const char *path)
{
	const struct rl_archive *ar;
	struct archive *a = NULL;
	struct archive_entry *e;
	char buf[256 * 1024];
	const char *name;
	long long written = 0;
	int error, rc;

	if ((error = rl_archive_load(&ar)) < 0)
		return error;
	if (!(a = ar->archive_read_new()))
		return rl_error_set(RL_ENOMEM, "out of memory");
	ar->archive_read_support_filter_zstd(a);
	ar->archive_read_support_format_tar(a);
	if (ar->archive_read_open(a, f, NULL, feed_read, NULL) != ARCHIVE_OK ||
	    (rc = ar->archive_read_next_header(a, &e)) != ARCHIVE_OK) {
		error = f->error ? rl_error_set(f->error, "%s", f->why) :
			rl_error_set(RL_EPROTO, "the hub's snapshot image is not a zstd tar: %s",
				     ar->archive_error_string(a));
		goto cleanup;
	}
	/* libarchive gives no name (NULL) for one it cannot convert. */
	name = ar->archive_entry_pathname(e);
	if (ar->archive_entry_filetype(e) != AE_IFREG || !name || strcmp(name, IMAGE_MEMBER) != 0 ||
	    !ar->archive_entry_size_is_set(e) || ar->archive_entry_size(e) != f->a->size) {
		error = rl_error_set(RL_EPROTO, "the hub's snapshot image holds '%.64s', not %s of "
				     "%lld bytes", name ? name : "?", IMAGE_MEMBER, f->a->size);
		goto cleanup;
	}
	for (;;) {
		la_ssize_t r = ar->archive_read_data(a, buf, sizeof(buf));
		if (r == 0)
			break;
		if (r < 0) {
			error = f->error ? rl_error_set(f->error, "%s", f->why) :
				rl_error_set(RL_EPROTO, "the hub's snapshot image is damaged: %s",
					     ar->archive_error_string(a));
			goto cleanup;
		}
		if ((written += r) > f->a->size) {
			error = rl_error_set(RL_EPROTO, "the hub's snapshot image is longer than announced");
			goto cleanup;
		}
		if (write_all(fd, buf, (size_t)r) < 0) {
			error = rl_error_set(RL_EIO, "cannot write %s: %s", path, strerror(errno));
			goto cleanup;
		}
	}
	if (written != f->a->size) {
		error = rl_error_set(RL_EPROTO, "the hub's snapshot image holds %lld of %lld bytes",
				     written, f->a->size);
		goto cleanup;
	}
	if ((rc = ar->archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
		error = f->error ? rl_error_set(f->error, "%s", f->why) :
			rl_error_set(RL_EPROTO, "the hub's snapshot image holds more than %s",
				     IMAGE_MEMBER);
		goto cleanup;
	}
	error = RL_OK;
cleanup:
	ar->archive_read_free(a);
	return error;
}

/* Read what is left of the announced bytes (after a failed unpack whose
 * frames were well formed), so the session can carry on. */
static int drain(struct feed *f)
{
	const void *b;
	size_t n;
	int error;

	do {
		if ((error = next_frame(f, &b, &n)) < 0)
			return error;
	} while (n);
	return RL_OK;
}

/* ---- adding this device's own rows ------------------------------------------------- */

/* Copy table t of the store (every row) over the image's. t comes from
 * sqlite_schema, never from outside. */
static int copy_local_table(rl_store *s, sqlite3 *img, const char *t)
{
	sqlite3_stmt *from = NULL, *to = NULL;
	sqlite3_str *ins;
	char *sql = NULL;
	int n, i, rc, error = RL_OK;

	if (!(sql = sqlite3_mprintf("DELETE FROM \"%w\"", t)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	if (sqlite3_exec(img, sql, NULL, NULL, NULL) != SQLITE_OK) {
		error = rl_error_set(RL_ESTORE, "emptying %s in the snapshot image: %s", t,
				     sqlite3_errmsg(img));
		goto cleanup;
	}
	sqlite3_free(sql);
	if (!(sql = sqlite3_mprintf("SELECT * FROM \"%w\"", t)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	if (sqlite3_prepare_v2(rl_store_db(s), sql, -1, &from, NULL) != SQLITE_OK) {
		error = rl_store_error(s, "reading this device's own tables");
		goto cleanup;
	}
	n = sqlite3_column_count(from);
	ins = sqlite3_str_new(img);
	sqlite3_str_appendf(ins, "INSERT INTO \"%w\" VALUES (", t);
	for (i = 0; i < n; i++)
		sqlite3_str_appendf(ins, i ? ", ?%d" : "?%d", i + 1);
	sqlite3_str_appendchar(ins, 1, ')');
	sqlite3_free(sql);
	if (!(sql = sqlite3_str_finish(ins)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	if (sqlite3_prepare_v2(img, sql, -1, &to, NULL) != SQLITE_OK) {
		error = rl_error_set(RL_ESTORE, "writing %s into the snapshot image: %s", t,
				     sqlite3_errmsg(img));
		goto cleanup;
	}
	while ((rc = sqlite3_step(from)) == SQLITE_ROW) {
		for (i = 0; i < n; i++)
			sqlite3_bind_value(to, i + 1, sqlite3_column_value(from, i));
		if (sqlite3_step(to) != SQLITE_DONE) {
			error = rl_error_set(RL_ESTORE, "writing %s into the snapshot image: %s", t,
					     sqlite3_errmsg(img));
			goto cleanup;
		}
		sqlite3_reset(to);
	}
	if (rc != SQLITE_DONE)
		error = rl_store_error(s, "reading this device's own tables");
cleanup:
	sqlite3_finalize(from);
	sqlite3_finalize(to);
	sqlite3_free(sql);
	return error;
}

/* This device's local rows into the image, and the cursor at the image's
 * seq: after the copy the store is this device's, with the hub's data. */
static int adopt(rl_store *s, sqlite3 *img, long long seq)
{
	sqlite3_stmt *st = NULL, *cur = NULL;
	int rc, error = RL_OK;

	if (sqlite3_exec(img, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return rl_error_set(RL_ESTORE, "writing the snapshot image: %s", sqlite3_errmsg(img));
	/* Local tables start with rl_ (schema/001_init.sql). The field
	 * versions are the image's own. */
	if (sqlite3_prepare_v2(rl_store_db(s), "SELECT name FROM sqlite_schema WHERE type = 'table' "
			       "AND name LIKE 'rl\\_%' ESCAPE '\\' AND name NOT IN ('rl_base', "
			       "'rl_base_snapshot') ORDER BY name", -1, &st, NULL) != SQLITE_OK) {
		error = rl_store_error(s, "listing this device's own tables");
		goto cleanup;
	}
	while (error == RL_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
		error = copy_local_table(s, img, (const char *)sqlite3_column_text(st, 0));
	if (error == RL_OK && rc != SQLITE_DONE)
		error = rl_store_error(s, "listing this device's own tables");
	if (error == RL_OK &&
	    (sqlite3_prepare_v2(img, "INSERT INTO rl_meta(key, value) VALUES ('cursor', ?1) "
				"ON CONFLICT(key) DO UPDATE SET value = excluded.value", -1, &cur,
				NULL) != SQLITE_OK ||
	     sqlite3_bind_text(cur, 1, sqlite3_mprintf("%lld", seq), -1, sqlite3_free) != SQLITE_OK ||
	     sqlite3_step(cur) != SQLITE_DONE ||
	     sqlite3_exec(img, "COMMIT", NULL, NULL, NULL) != SQLITE_OK))
		error = rl_error_set(RL_ESTORE, "writing the snapshot image: %s", sqlite3_errmsg(img));
cleanup:
	sqlite3_finalize(st);
	sqlite3_finalize(cur);
	if (error < 0)
		sqlite3_exec(img, "ROLLBACK", NULL, NULL, NULL);
	return error;
}

/* ---- the copy ------------------------------------------------------------------------- */

/* End the store's transaction keeping its lock (see the top of the file),
 * then copy the image over it in one backup step. */
static int copy_over(rl_store *s, sqlite3 *img)
{
	sqlite3 *db = rl_store_db(s);
	sqlite3_backup *b;
	sqlite3_stmt *st;
	int rc, error;

	/* A write, so that the commit takes the EXCLUSIVE lock the connection
	 * then keeps: the value is the same. The transaction ends here either
	 * way (the caller's *tx_ended). */
	if (sqlite3_exec(db, "PRAGMA locking_mode = EXCLUSIVE", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "UPDATE rl_meta SET value = value WHERE key = 'device_id'", NULL, NULL,
			 NULL) != SQLITE_OK)
		error = rl_store_error(s, "locking the store for the snapshot image");
	else
		error = rl_store_commit(s);
	if (error < 0) {
		rl_store_rollback(s);
		goto unlock;
	}
	if (!(b = sqlite3_backup_init(db, "main", img, "main"))) {
		error = rl_store_error(s, "copying the snapshot image into the store");
		goto unlock;
	}
	/* Test hook (tests/cli/test_snapshot.py): the device killed half-way
	 * through the copy, with a cache so small that the copied pages are
	 * already in the store's file and its journal is hot. */
	if (getenv("RELASI_DEVICE_FAULT") &&
	    strcmp(getenv("RELASI_DEVICE_FAULT"), "image-copy-kill") == 0) {
		sqlite3_exec(db, "PRAGMA cache_size = 16", NULL, NULL, NULL);
		if (sqlite3_backup_step(b, 1) == SQLITE_OK &&
		    sqlite3_backup_step(b, sqlite3_backup_pagecount(b) / 2) == SQLITE_OK) {
			fprintf(stderr, "relasi: fault injection: killed half-way through the "
				"image's copy\n");
			raise(SIGKILL);
		}
	}
	rc = sqlite3_backup_step(b, -1);
	sqlite3_backup_finish(b);
	error = rc == SQLITE_DONE ? RL_OK :
		rl_error_set(RL_ESTORE, "copying the snapshot image into the store: %s",
			     sqlite3_errstr(rc));
unlock:
	/* The lock goes with the next read that ends. */
	sqlite3_exec(db, "PRAGMA locking_mode = NORMAL", NULL, NULL, NULL);
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM rl_meta", -1, &st, NULL) == SQLITE_OK)
		sqlite3_step(st);
	sqlite3_finalize(st);
	return error;
}

int rl_image_install(rl_store *s, rl_conn *c, const struct rl_image_snap *a, int *tx_ended,
		     int *refused, struct rl_sync_stats *stats, rl_sync_progress progress,
		     void *pctx)
{
	struct feed f;
	sqlite3 *img = NULL;
	char path[4096];
	int fd = -1, error, in_sync = 0, checked = 0;

	*tx_ended = *refused = 0;
	memset(&f, 0, sizeof(f));
	f.c = c;
	f.a = a;
	f.progress = progress;
	f.pctx = pctx;
	f.last_mib = -1;
	if ((size_t)snprintf(path, sizeof(path), "%s.image", rl_store_path(s)) >= sizeof(path))
		return rl_error_set(RL_EINVALID, "the store's path is too long");
	/* Left by a device killed while installing: never the store itself. */
	rl_store_remove_files(path);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		error = rl_error_set(RL_EIO, "cannot create %s: %s", path, strerror(errno));
		goto cleanup;
	}
	error = receive(&f, fd, path);
	/* Frames that were read well but did not unpack: read the rest, and
	 * the session can go on. A frame that was not read well cannot. */
	if (error < 0 && !f.error && drain(&f) == RL_OK)
		in_sync = 1;
	if (error < 0)
		goto cleanup;
	in_sync = 1;
	if (close(fd) < 0) {
		fd = -1;
		error = rl_error_set(RL_EIO, "cannot write %s: %s", path, strerror(errno));
		goto cleanup;
	}
	fd = -1;
	if (progress)
		progress(pctx, "snapshot image: checking");
	if ((error = rl_image_check_file(path)) < 0)
		goto cleanup;
	if (sqlite3_open_v2(path, &img, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		error = rl_error_set(RL_EPROTO, "the hub's snapshot image cannot be opened: %s",
				     img ? sqlite3_errmsg(img) : "out of memory");
		goto cleanup;
	}
	rl_image_configure(img);
	/* A scratch file: its durability is the store's copy of it. */
	sqlite3_exec(img, "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF", NULL, NULL, NULL);
	if ((error = rl_image_check(s, img, path, a->seq)) < 0)
		goto cleanup;
	checked = 1;
	if ((error = adopt(s, img, a->seq)) < 0)
		goto cleanup;
	if (progress)
		progress(pctx, "snapshot image: copying into the store");
	/* From here the store's transaction is over, whatever happens. */
	*tx_ended = 1;
	if ((error = copy_over(s, img)) < 0)
		goto cleanup;
	rl_hlc_receive(rl_store_hlc(s), a->hlc, NULL);   /* far-future stamps are not adopted */
cleanup:
	/* Read whole, failed a check, nothing of the store touched. */
	if (error < 0 && in_sync && !checked) {
		*refused = 1;
		snprintf(stats->image_refused, sizeof(stats->image_refused), "%s", rl_error_message());
	}
	if (fd >= 0)
		close(fd);
	sqlite3_close(img);
	rl_store_remove_files(path);
	free(f.frame);
	return error;
}
