/*
 * image.c — snapshot images: a new device's whole store, built once by the
 * hub and sent to every new device that asks (SNAPSHOT format 2,
 * sync/PROTOCOL.md "Snapshot image"; the device's side is
 * sync/src/image.c).
 *
 * Why: a device loading the snapshot record by record spends its time on
 * SQLite's work — the rows, their indexes, the search and geo indexes, the
 * field versions — and that work is the same for every new device. The hub
 * does it once, into a device store of its own: it loads its own snapshot
 * through the device's code (relasi_sync's rl_sync_snapshot_only, fed by
 * hub_snapshot over an in-memory pipe), so the image holds exactly what a
 * device loading that snapshot would hold. A new device then receives the
 * file (a zstd tar of one member, relasi.db) and copies it over its store.
 *
 * Files, in DIR/snapshot/ (not in backups: rebuilt from hub.db):
 *   image.json                   what the image holds (struct hub_image),
 *                                written last, atomically: it names the file
 *   image-SEQ-TIME.tar.zst       the image
 *   build-PID-TIME.db[.tar.zst]  a store being built and its tar (removed
 *                                or renamed at the end)
 *
 * An image is served only while it is of this hub's history (epoch), of the
 * schema the device runs, and not too far behind the log (the device pulls
 * the changes after its seq page by page, as after any snapshot); `serve`
 * builds a new one when the hub is quiet (server.c).
 */
#define _GNU_SOURCE
#include "backup.h"
#include "hub.h"

#include <archive.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "relasi/bundle.h"
#include "relasi/devsync.h"
#include "relasi/error.h"
#include "relasi/jsonw.h"
#include "relasi/limits.h"
#include "relasi/wire.h"

#define IMAGE_JSON   "image.json"
#define IMAGE_MEMBER "relasi.db"

/* How far behind the log an image may be. Pulling a change page by page
 * costs a device about 16 times what the image costs per field it holds
 * (bench/bench_sync.py: 35k changes/s by pages; the full dataset's image,
 * 4.7M fields, in a few seconds), so an image further behind than a
 * sixteenth of its fields is no faster than the snapshot record by record,
 * which is always current. serve rebuilds at a hundredth. */
#define IMAGE_SERVE_LAG(fields)   ((fields) / 16 > 5000 ? (fields) / 16 : 5000)
#define IMAGE_REBUILD_LAG(fields) ((fields) / 100 > 1000 ? (fields) / 100 : 1000)

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int image_path(char *buf, size_t len, const char *dir, const char *name)
{
	char sub[4096];
	int error;

	if ((error = hub_path(sub, sizeof(sub), dir, HUB_IMAGE_DIR)) < 0)
		return error;
	return hub_path(buf, len, sub, name);
}

/* The hub's history now: its last seq and its epoch ("" before any
 * restore). */
static int hub_now(rl_store *s, long long *seq, char *epoch, size_t epochsz)
{
	char *e = NULL;
	int error;

	if ((error = hub_log_last(s, seq)) < 0)
		return error;
	if ((error = rl_store_meta_get(s, "hub_epoch", &e)) < 0)
		return error;
	snprintf(epoch, epochsz, "%s", e ? e : "");
	free(e);
	return RL_OK;
}

int hub_image_read(const char *dir, struct hub_image *img, int *have)
{
	char path[4096];
	json_t *j, *v;
	json_error_t jerr;
	const char *keys[] = { "seq", "hlc", "rows", "fields", "bytes", "size", "built" };
	long long *vals[] = { &img->seq, &img->hlc, &img->rows, &img->fields, &img->bytes,
			      &img->size, &img->built_ms };
	const char *file, *epoch;
	size_t i;
	int error;

	*have = 0;
	memset(img, 0, sizeof(*img));
	if ((error = image_path(path, sizeof(path), dir, IMAGE_JSON)) < 0)
		return error;
	if (access(path, F_OK) != 0)
		return RL_OK;
	if (!(j = json_load_file(path, 0, &jerr)))
		return rl_error_set(RL_EIO, "cannot read %s: %s", path, jerr.text);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (!json_is_integer(v = json_object_get(j, keys[i])) || json_integer_value(v) < 0) {
			json_decref(j);
			return rl_error_set(RL_EINVALID, "%s: no valid %s", path, keys[i]);
		}
		*vals[i] = json_integer_value(v);
	}
	file = json_string_value(json_object_get(j, "file"));
	epoch = json_string_value(json_object_get(j, "epoch"));
	img->schema = (int)json_integer_value(json_object_get(j, "schema"));
	if (!file || !epoch || strchr(file, '/') || strlen(file) >= sizeof(img->file) ||
	    strlen(epoch) >= sizeof(img->epoch)) {
		json_decref(j);
		return rl_error_set(RL_EINVALID, "%s: no valid file or epoch", path);
	}
	snprintf(img->file, sizeof(img->file), "%s", file);
	snprintf(img->epoch, sizeof(img->epoch), "%s", epoch);
	json_decref(j);
	*have = 1;
	return RL_OK;
}

/* Of this hub's history, of this binary's schema, not ahead of the log. */
static int image_current(const struct hub_image *img, long long seq, const char *epoch)
{
	return img->schema == rl_store_schema_latest() && strcmp(img->epoch, epoch) == 0 &&
	       img->seq <= seq;
}

int hub_image_due(rl_store *s, const char *dir, long min_changes, int *due)
{
	struct hub_image img;
	char epoch[sizeof(img.epoch)];
	long long seq;
	int error, have;

	*due = 0;
	if (min_changes <= 0)
		return RL_OK;
	if ((error = hub_now(s, &seq, epoch, sizeof(epoch))) < 0)
		return error;
	if (seq < min_changes)
		return RL_OK;
	if ((error = hub_image_read(dir, &img, &have)) < 0)
		have = 0;       /* unreadable: build a good one over it */
	*due = !have || !image_current(&img, seq, epoch) ||
	       seq - img.seq >= IMAGE_REBUILD_LAG(img.fields);
	return RL_OK;
}

/* ---- building ---------------------------------------------------------------------- */

/* The hub's side of the pipe: hub_snapshot as a device's session would
 * get it, on its own connection to hub.db (one read transaction). */
struct producer {
	const char *dir;
	rl_conn *c;
	const int *stop;
	int error;
	char why[RL_ERROR_MSG_MAX + 1];
};

static int producer_send(void *ctx, int type, json_t *msg)
{
	struct producer *p = ctx;

	if (p->stop && __atomic_load_n(p->stop, __ATOMIC_RELAXED))
		return rl_error_set(RL_ECLOSED, "the hub is stopping");
	return rl_wire_write(p->c, type, msg, RL_MAX_FRAME, RL_ANSWER_TIMEOUT_MS);
}

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	struct hub_peer peer;
	struct hub_stats st;
	rl_store *s = NULL;
	json_t *req = NULL;
	int type;

	memset(&peer, 0, sizeof(peer));
	memset(&st, 0, sizeof(st));
	if ((p->error = hub_store_open(&s, p->dir, 0)) == 0 &&
	    (p->error = rl_wire_read(p->c, RL_MAX_FRAME, RL_ANSWER_TIMEOUT_MS, &type, &req)) == 0)
		p->error = type == RL_FRAME_SNAPSHOT ?
			   hub_snapshot(s, &peer, req, producer_send, p, &st) :
			   rl_error_set(RL_EPROTO, "the image builder sent '%c'", type);
	if (p->error < 0)
		snprintf(p->why, sizeof(p->why), "%s", rl_error_message());
	json_decref(req);
	rl_conn_close(p->c);    /* the loader sees the end */
	rl_store_close(s);
	return NULL;
}

/* Load the hub's snapshot into a new device store at path. */
static int load_store(const char *dir, const char *path, const int *stop,
		      struct rl_sync_stats *st)
{
	struct producer p;
	rl_store *img = NULL;
	rl_conn *a = NULL, *b = NULL;
	char dev[RL_ID_BUFSZ], user[RL_ID_BUFSZ];
	pthread_t th;
	int error, started = 0;

	memset(&p, 0, sizeof(p));
	rl_store_remove_files(path);
	if ((error = rl_store_open(&img, path, RL_STORE_CREATE)) < 0 ||
	    (error = rl_store_new_id(img, dev)) < 0 || (error = rl_store_new_id(img, user)) < 0 ||
	    (error = rl_store_set_identity(img, dev, user)) < 0 ||
	    (error = rl_conn_pipe(&a, &b)) < 0)
		goto cleanup;
	p.dir = dir;
	p.c = a;
	p.stop = stop;
	if (pthread_create(&th, NULL, producer_main, &p) != 0) {
		error = rl_error_set(RL_ERROR, "cannot start the image builder's reader");
		goto cleanup;
	}
	a = NULL;               /* the producer closes it */
	started = 1;
	error = rl_sync_snapshot_only(img, b, st);
	rl_conn_close(b);       /* a producer still writing stops */
	b = NULL;
	pthread_join(th, NULL);
	/* The producer's error says why the loader saw the pipe close. */
	if (p.error < 0)
		error = rl_error_set(p.error, "%s", p.why);
	if (error < 0)
		goto cleanup;
	/* One file, in the rollback journal's format (the device checks). */
	if (rl_store_journal_bulk(img) != 1)
		error = rl_error_set(RL_ESTORE, "cannot leave WAL in the image at %s", path);
cleanup:
	if (!started)
		rl_conn_close(a);
	rl_conn_close(b);
	rl_store_close(img);
	return error;
}

static int file_size(const char *path, long long *size)
{
	struct stat sb;

	if (stat(path, &sb) != 0)
		return rl_error_set(RL_EIO, "cannot look at %s: %s", path, strerror(errno));
	*size = (long long)sb.st_size;
	return RL_OK;
}

/* The store at db_path as a zstd tar of one member, at path, durably. */
static int pack_image(const char *db_path, const char *path)
{
	struct archive *a = NULL;
	const char *filter = "none";
	int fd, error;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
		return rl_error_set(RL_EIO, "cannot create %s: %s", path, strerror(errno));
	if ((error = rl_archive_writer_open(fd, &a, &filter)) < 0)
		goto cleanup;
	if (strcmp(filter, "zstd") != 0) {
		/* Devices read zstd only: no gzip fallback for images. */
		error = rl_error_set(RL_ERROR, "this libarchive cannot write zstd: no snapshot images");
		goto cleanup;
	}
	if ((error = hub_archive_write_member(a, IMAGE_MEMBER, 0600, time(NULL), NULL, 0,
					      db_path)) < 0)
		goto cleanup;
	if (archive_write_close(a) != ARCHIVE_OK) {
		error = rl_error_set(RL_EIO, "finishing %s: %s", path, archive_error_string(a));
		goto cleanup;
	}
	if (fsync(fd) != 0)
		error = rl_error_set(RL_EIO, "cannot write %s: %s", path, strerror(errno));
cleanup:
	if (a)
		archive_write_free(a);
	if (close(fd) != 0 && error == RL_OK)
		error = rl_error_set(RL_EIO, "cannot write %s: %s", path, strerror(errno));
	return error;
}

/* Images other than keep, left by earlier builds, and the stores of builds
 * killed half-way. A build of another process still running (serve's,
 * while the admin runs `snapshot build`) keeps its store. */
static void remove_others(const char *dir, const char *keep)
{
	char sub[4096], path[4400];
	struct dirent *d;
	DIR *dh;

	if (hub_path(sub, sizeof(sub), dir, HUB_IMAGE_DIR) < 0 || !(dh = opendir(sub)))
		return;
	while ((d = readdir(dh))) {
		if (strcmp(d->d_name, keep) == 0 ||
		    (strncmp(d->d_name, "image-", 6) != 0 && strncmp(d->d_name, "build-", 6) != 0))
			continue;
		if (strncmp(d->d_name, "build-", 6) == 0) {
			long pid = strtol(d->d_name + 6, NULL, 10);
			if (pid > 0 && pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 ||
								  errno == EPERM))
				continue;
		}
		snprintf(path, sizeof(path), "%s/%s", sub, d->d_name);
		unlink(path);
	}
	closedir(dh);
}

int hub_image_build(const char *dir, const int *stop, struct hub_image *out)
{
	struct rl_sync_stats st;
	struct hub_image img;
	rl_store *hs = NULL;
	char sub[4096], db[4400] = "", tmp[4400 + sizeof(".tar.zst")], final[4400], json_path[4400], name[96] = "";
	char *text = NULL;
	long long t0 = now_ms(), seq_now;
	json_t *j = NULL;
	int error;

	memset(&img, 0, sizeof(img));
	if ((error = hub_path(sub, sizeof(sub), dir, HUB_IMAGE_DIR)) < 0)
		return error;
	if (mkdir(sub, 0700) != 0 && errno != EEXIST)
		return rl_error_set(RL_EIO, "cannot create %s: %s", sub, strerror(errno));
	/* The epoch cannot change under a running hub (a restore makes a new
	 * directory), so reading it before the snapshot is reading it at it. */
	if ((error = hub_store_open(&hs, dir, 0)) < 0 ||
	    (error = hub_now(hs, &seq_now, img.epoch, sizeof(img.epoch))) < 0)
		goto cleanup;
	snprintf(db, sizeof(db), "%s/build-%ld-%lld.db", sub, (long)getpid(), t0);
	if ((error = load_store(dir, db, stop, &st)) < 0)
		goto cleanup;
	img.seq = st.snapshot_seq;
	img.hlc = st.snapshot_hlc;
	img.rows = st.snapshot_rows;
	img.fields = st.pulled;
	img.schema = rl_store_schema_latest();
	snprintf(name, sizeof(name), "image-%lld-%lld.tar.zst", img.seq, t0);
	snprintf(img.file, sizeof(img.file), "%s", name);
	/* Named after the build (its pid): remove_others leaves it alone. */
	snprintf(tmp, sizeof(tmp), "%s.tar.zst", db);
	snprintf(final, sizeof(final), "%s/%s", sub, name);
	if ((error = file_size(db, &img.size)) < 0 || (error = pack_image(db, tmp)) < 0 ||
	    (error = file_size(tmp, &img.bytes)) < 0)
		goto cleanup;
	if (rename(tmp, final) != 0) {
		error = rl_error_set(RL_EIO, "cannot rename %s: %s", tmp, strerror(errno));
		goto cleanup;
	}
	if ((error = hub_fsync_path(sub)) < 0)
		goto cleanup;
	img.built_ms = now_ms() - t0;
	if (!(j = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:s, s:I}", "file", name,
			    "seq", (json_int_t)img.seq, "hlc", (json_int_t)img.hlc,
			    "rows", (json_int_t)img.rows, "fields", (json_int_t)img.fields,
			    "bytes", (json_int_t)img.bytes, "size", (json_int_t)img.size,
			    "schema", img.schema, "epoch", img.epoch,
			    "built", (json_int_t)img.built_ms)) ||
	    !(text = rl_json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((error = image_path(json_path, sizeof(json_path), dir, IMAGE_JSON)) < 0 ||
	    (error = hub_write_atomic(json_path, text, strlen(text), 0600)) < 0)
		goto cleanup;
	remove_others(dir, name);
	if (out)
		*out = img;
cleanup:
	if (error < 0 && name[0])
		unlink(tmp);
	if (db[0])
		rl_store_remove_files(db);
	rl_store_close(hs);
	json_decref(j);
	free(text);
	return error;
}

/* ---- serving ----------------------------------------------------------------------- */

int hub_image_serve(rl_store *s, const char *dir, json_t *req, rl_conn *c, int timeout_ms,
		    long cut_after, struct hub_stats *stats, int *served)
{
	json_t *formats = json_object_get(req, "format"), *v, *msg;
	struct hub_image img;
	char epoch[sizeof(img.epoch)], path[4400];
	unsigned char *buf = NULL;
	long long seq, sent = 0;
	long frames = 0;
	size_t i;
	int error, have, wants = 0, fd = -1;
	struct stat sb;

	*served = 0;
	json_array_foreach(formats, i, v)
		wants |= json_is_integer(v) && json_integer_value(v) == RL_SNAPSHOT_IMAGE;
	if (!wants || !json_is_integer(json_object_get(req, "schema")) ||
	    json_integer_value(json_object_get(req, "schema")) != rl_store_schema_latest())
		return RL_OK;
	/* An unreadable image.json is the record-by-record snapshot's turn. */
	if (hub_image_read(dir, &img, &have) < 0 || !have)
		return RL_OK;
	if ((error = hub_now(s, &seq, epoch, sizeof(epoch))) < 0)
		return error;
	if (!image_current(&img, seq, epoch) || seq - img.seq > IMAGE_SERVE_LAG(img.fields))
		return RL_OK;
	/* Opened before anything is sent: a rebuild may replace the file
	 * meanwhile, and this descriptor keeps the one announced. */
	if ((error = image_path(path, sizeof(path), dir, img.file)) < 0)
		return error;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0 || fstat(fd, &sb) != 0 ||
	    (long long)sb.st_size != img.bytes) {
		if (fd >= 0)
			close(fd);
		return RL_OK;
	}
	if (!(msg = json_pack("{s:i, s:I, s:I, s:I, s:I, s:I, s:I}", "format", RL_SNAPSHOT_IMAGE,
			      "seq", (json_int_t)img.seq, "hlc", (json_int_t)img.hlc,
			      "rows", (json_int_t)img.rows, "fields", (json_int_t)img.fields,
			      "bytes", (json_int_t)img.bytes, "size", (json_int_t)img.size))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	error = rl_wire_write(c, RL_FRAME_SNAP, msg, RL_MAX_FRAME, timeout_ms);
	json_decref(msg);
	if (error < 0)
		goto cleanup;
	*served = 1;
	if (!(buf = malloc(RL_IMAGE_FRAME_BYTES))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	while (sent < img.bytes) {
		/* Under fault injection small frames, so that a test's small
		 * image is cut in the middle. */
		ssize_t n = read(fd, buf, cut_after > 0 ? 16384 : RL_IMAGE_FRAME_BYTES);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			error = rl_error_set(RL_EIO, "cannot read %s: %s", path,
					     n < 0 ? strerror(errno) : "it is shorter than announced");
			goto cleanup;
		}
		if ((long long)n > img.bytes - sent)
			n = (ssize_t)(img.bytes - sent);
		if ((error = rl_wire_write_bytes(c, RL_FRAME_IMAGE, buf, (size_t)n, RL_MAX_FRAME,
						 timeout_ms)) < 0)
			goto cleanup;
		sent += n;
		if (cut_after > 0 && ++frames == cut_after) {
			fprintf(stderr, "relasi-hub: fault injection: snapshot image cut after frame "
				"%ld\n", frames);
			error = rl_error_set(RL_ECLOSED, "snapshot image cut (fault injection)");
			goto cleanup;
		}
	}
	stats->pulled += (long)img.fields;
cleanup:
	free(buf);
	close(fd);
	return error;
}
