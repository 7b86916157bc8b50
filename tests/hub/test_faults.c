/*
 * test_faults.c — fault injection in the store, in-process, the way
 * SQLite's own tests do it: every SQLite allocation goes through a counting
 * allocator (sqlite3_config(SQLITE_CONFIG_MALLOC)) and every file goes
 * through a shim VFS that counts writes, syncs and truncates. For N = 0, 1,
 * 2, ... the Nth allocation (or the Nth I/O) fails, once, while the hub
 * applies a batch (hub_push), while a device applies a pulled page
 * (rl_sync_session over an in-memory pipe), and while the admin resolves a
 * conflict (hub_conflict_resolve). Each attempt must either succeed with the
 * same result as a run without faults, or fail with an error, no answer for
 * the device, and the store exactly as before — compared table by table,
 * row by row. The loop ends at the first N the operation gets through
 * without meeting a fault. Leaks on the error paths are caught by the
 * sanitizer build (detect_leaks) and scripts/valgrind.sh.
 */
#include "check.h"
#include "hub.h"
#include "relasi/conn.h"
#include "relasi/devsync.h"
#include "relasi/error.h"
#include "relasi/limits.h"
#include "relasi/wire.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the faults ------------------------------------------------------------------ */

enum { FAULT_NONE, FAULT_MEM, FAULT_IO };

static int fault_kind;
static long fault_countdown = -1;   /* fail when it reaches 0; -1: disarmed */
static int fault_hit;

static int fault_now(int kind)
{
	if (fault_kind != kind || fault_countdown < 0)
		return 0;
	if (fault_countdown-- == 0) {
		fault_hit = 1;
		return 1;
	}
	return 0;
}

static void fault_arm(int kind, long n)
{
	fault_kind = kind;
	fault_countdown = n;
	fault_hit = 0;
}

static void fault_disarm(void)
{
	fault_kind = FAULT_NONE;
	fault_countdown = -1;
}

static sqlite3_mem_methods real_mem;

static void *fm_malloc(int n)
{
	return fault_now(FAULT_MEM) ? NULL : real_mem.xMalloc(n);
}

static void *fm_realloc(void *p, int n)
{
	return fault_now(FAULT_MEM) ? NULL : real_mem.xRealloc(p, n);
}

static void fm_free(void *p) { real_mem.xFree(p); }
static int fm_size(void *p) { return real_mem.xSize(p); }
static int fm_roundup(int n) { return real_mem.xRoundup(n); }
static int fm_init(void *a) { return real_mem.xInit(a); }
static void fm_shutdown(void *a) { real_mem.xShutdown(a); }

/* The shim VFS: a file is our header followed by the real file. */
struct fault_file {
	sqlite3_file base;
	sqlite3_file *real;
};

static sqlite3_vfs *real_vfs;

#define REAL(f) (((struct fault_file *)(f))->real)

static int ff_close(sqlite3_file *f)
{
	int rc = REAL(f)->pMethods ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;
	return rc;
}
static int ff_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
	return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}
static int ff_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
	return fault_now(FAULT_IO) ? SQLITE_IOERR_WRITE : REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int ff_truncate(sqlite3_file *f, sqlite3_int64 n)
{
	return fault_now(FAULT_IO) ? SQLITE_IOERR_TRUNCATE : REAL(f)->pMethods->xTruncate(REAL(f), n);
}
static int ff_sync(sqlite3_file *f, int flags)
{
	return fault_now(FAULT_IO) ? SQLITE_IOERR_FSYNC : REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int ff_size(sqlite3_file *f, sqlite3_int64 *n) { return REAL(f)->pMethods->xFileSize(REAL(f), n); }
static int ff_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int ff_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int ff_check(sqlite3_file *f, int *r) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r); }
static int ff_fcntl(sqlite3_file *f, int op, void *a) { return REAL(f)->pMethods->xFileControl(REAL(f), op, a); }
static int ff_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int ff_dev(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int ff_shmmap(sqlite3_file *f, int i, int sz, int ext, void volatile **p)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), i, sz, ext, p);
}
static int ff_shmlock(sqlite3_file *f, int o, int n, int fl) { return REAL(f)->pMethods->xShmLock(REAL(f), o, n, fl); }
static void ff_shmbarrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int ff_shmunmap(sqlite3_file *f, int del) { return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }
static int ff_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **p) { return REAL(f)->pMethods->xFetch(REAL(f), o, n, p); }
static int ff_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p) { return REAL(f)->pMethods->xUnfetch(REAL(f), o, p); }

static const sqlite3_io_methods fault_io = {
	3, ff_close, ff_read, ff_write, ff_truncate, ff_sync, ff_size, ff_lock, ff_unlock,
	ff_check, ff_fcntl, ff_sector, ff_dev, ff_shmmap, ff_shmlock, ff_shmbarrier, ff_shmunmap,
	ff_fetch, ff_unfetch
};

static int fv_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out)
{
	struct fault_file *ff = (struct fault_file *)f;
	int rc;

	(void)v;
	ff->real = (sqlite3_file *)(ff + 1);
	memset(ff->real, 0, (size_t)real_vfs->szOsFile);
	rc = real_vfs->xOpen(real_vfs, name, ff->real, flags, out);
	/* SQLite calls xClose only when pMethods is set, even after a failed open. */
	f->pMethods = ff->real->pMethods ? &fault_io : NULL;
	return rc;
}
static int fv_delete(sqlite3_vfs *v, const char *n, int s) { (void)v; return real_vfs->xDelete(real_vfs, n, s); }
static int fv_access(sqlite3_vfs *v, const char *n, int fl, int *r) { (void)v; return real_vfs->xAccess(real_vfs, n, fl, r); }
static int fv_full(sqlite3_vfs *v, const char *n, int len, char *o) { (void)v; return real_vfs->xFullPathname(real_vfs, n, len, o); }
static void *fv_dlopen(sqlite3_vfs *v, const char *n) { (void)v; return real_vfs->xDlOpen(real_vfs, n); }
static void fv_dlerror(sqlite3_vfs *v, int n, char *m) { (void)v; real_vfs->xDlError(real_vfs, n, m); }
static void (*fv_dlsym(sqlite3_vfs *v, void *h, const char *s))(void) { (void)v; return real_vfs->xDlSym(real_vfs, h, s); }
static void fv_dlclose(sqlite3_vfs *v, void *h) { (void)v; real_vfs->xDlClose(real_vfs, h); }
static int fv_random(sqlite3_vfs *v, int n, char *o) { (void)v; return real_vfs->xRandomness(real_vfs, n, o); }
static int fv_sleep(sqlite3_vfs *v, int us) { (void)v; return real_vfs->xSleep(real_vfs, us); }
static int fv_time(sqlite3_vfs *v, double *t) { (void)v; return real_vfs->xCurrentTime(real_vfs, t); }
static int fv_lasterr(sqlite3_vfs *v, int n, char *m) { (void)v; return real_vfs->xGetLastError(real_vfs, n, m); }
static int fv_time64(sqlite3_vfs *v, sqlite3_int64 *t) { (void)v; return real_vfs->xCurrentTimeInt64(real_vfs, t); }

static sqlite3_vfs fault_vfs;

static void install_faults(void)
{
	static sqlite3_mem_methods mine;

	sqlite3_config(SQLITE_CONFIG_GETMALLOC, &real_mem);
	mine = real_mem;
	mine.xMalloc = fm_malloc;
	mine.xRealloc = fm_realloc;
	mine.xFree = fm_free;
	mine.xSize = fm_size;
	mine.xRoundup = fm_roundup;
	mine.xInit = fm_init;
	mine.xShutdown = fm_shutdown;
	if (sqlite3_config(SQLITE_CONFIG_MALLOC, &mine) != SQLITE_OK) {
		fprintf(stderr, "cannot install the allocator\n");
		exit(2);
	}
	sqlite3_initialize();
	real_vfs = sqlite3_vfs_find(NULL);
	fault_vfs = (sqlite3_vfs){ 3, (int)sizeof(struct fault_file) + real_vfs->szOsFile,
		real_vfs->mxPathname, NULL, "faultvfs", NULL, fv_open, fv_delete, fv_access,
		fv_full, fv_dlopen, fv_dlerror, fv_dlsym, fv_dlclose, fv_random, fv_sleep, fv_time,
		fv_lasterr, fv_time64, NULL, NULL, NULL };
	sqlite3_vfs_register(&fault_vfs, 1);
}

/* The next fault point: every one of the first 50, then ever sparser (the
 * suite's time budget); RELASI_FAULTS_ALL=1 tries every single point. */
static long next_point(long n)
{
	static int all = -1;
	if (all < 0)
		all = getenv("RELASI_FAULTS_ALL") != NULL;
	return all ? n + 1 : n + 1 + n / 50;
}

/* ---- comparing stores ------------------------------------------------------------ */

/* Every row of every table (virtual tables skipped: their shadow tables are
 * compared), in a stable order, as text. skip_meta leaves out rl_meta keys
 * that legitimately move on a failed session (the clock). */
static char *dump(rl_store *s)
{
	sqlite3 *db = rl_store_db(s);
	sqlite3_stmt *tables, *st;
	sqlite3_str *out = sqlite3_str_new(NULL);
	int saved_kind = fault_kind;
	long saved_count = fault_countdown;

	fault_disarm();
	if (sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table' AND "
			       "sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name", -1, &tables, NULL))
		abort();
	while (sqlite3_step(tables) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(tables, 0);
		char *sql = sqlite3_mprintf("SELECT * FROM \"%w\"", t);
		int n, i;
		if (sqlite3_prepare_v2(db, sql, -1, &st, NULL))
			abort();
		n = sqlite3_column_count(st);
		sqlite3_finalize(st);
		sqlite3_free(sql);
		sql = sqlite3_mprintf("SELECT * FROM \"%w\" ORDER BY 1", t);
		if (sqlite3_prepare_v2(db, sql, -1, &st, NULL))
			abort();
		sqlite3_str_appendf(out, "[%s]\n", t);
		while (sqlite3_step(st) == SQLITE_ROW) {
			if (strcmp(t, "rl_meta") == 0 &&
			    (strcmp((const char *)sqlite3_column_text(st, 0), "hlc") == 0 ||
			     /* both written when a whole sync went through */
			     strcmp((const char *)sqlite3_column_text(st, 0), "last_sync") == 0 ||
			     strcmp((const char *)sqlite3_column_text(st, 0), "role") == 0 ||
			     /* random per store (schema/hub/003_backup.sql) */
			     strcmp((const char *)sqlite3_column_text(st, 0), "hub_epoch") == 0))
				continue;
			for (i = 0; i < n; i++) {
				char *q = sqlite3_mprintf("%Q|", sqlite3_column_text(st, i));
				sqlite3_str_appendall(out, q);
				sqlite3_free(q);
			}
			sqlite3_str_appendall(out, "\n");
		}
		sqlite3_finalize(st);
		sqlite3_free(sql);
	}
	sqlite3_finalize(tables);
	fault_kind = saved_kind;
	fault_countdown = saved_count;
	return sqlite3_str_finish(out);
}

/* The first differing line of two dumps, for the failure message. */
static void show_diff(const char *want, const char *got)
{
	size_t i = 0, line = 0;

	while (want[i] && want[i] == got[i]) {
		if (want[i] == '\n')
			line = i + 1;
		i++;
	}
	fprintf(stderr, "  want: %.200s\n  got:  %.200s\n", want + line, got + line);
}

/* After a failure the server ends the session and closes its store; so do
 * we, and the file must pass SQLite's integrity check. */
static rl_store *reopen(rl_store *s, unsigned flags)
{
	char path[600];
	sqlite3_stmt *st;

	snprintf(path, sizeof(path), "%s", rl_store_path(s));
	rl_store_close(s);
	if (rl_store_open(&s, path, flags) < 0) {
		fprintf(stderr, "reopening %s: %s\n", path, rl_error_message());
		abort();
	}
	if (sqlite3_prepare_v2(rl_store_db(s), "PRAGMA integrity_check", -1, &st, NULL))
		abort();
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	CHECK_EQ_STR((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	return s;
}

/* ---- the hub's side ---------------------------------------------------------------- */

static const char *ACC = "0000000000000000000000000000a001";
static const char *ACC2 = "0000000000000000000000000000a002";
static const char *ACC3 = "0000000000000000000000000000a003";
static const char *DEAL = "0000000000000000000000000000d001";
static const char *CON = "0000000000000000000000000000c001";
static const char *PROSPECT = "00000000000000000000000000000001";
static struct hub_peer P1 = { "d0000000000000000000000000000001", "c0000000000000000000000000000001", "manager", "", "", 0 };
static struct hub_peer P2 = { "d0000000000000000000000000000002", "c0000000000000000000000000000002", "rep", "", "", 0 };

static long long field_version(rl_store *s, const char *tbl, const char *row, const char *field)
{
	sqlite3_stmt *st;
	long long v = 0;

	if (sqlite3_prepare_v2(rl_store_db(s), "SELECT version FROM hub_fields WHERE tbl = ?1 AND "
			       "row_id = ?2 AND field = ?3", -1, &st, NULL))
		abort();
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, row, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, field, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static json_t *change(const char *tbl, const char *row, const char *field, json_t *v,
		      long long base, long long hlc)
{
	return json_pack("{s:s, s:s, s:s, s:o, s:I, s:I}", "t", tbl, "r", row, "f", field, "v", v,
			 "b", (json_int_t)base, "h", (json_int_t)hlc);
}

static int push(rl_store *s, const struct hub_peer *p, long long batch, json_t *changes,
		json_t **resp)
{
	struct hub_stats st;
	json_t *req = json_pack("{s:I, s:I, s:o}", "batch", (json_int_t)batch, "cursor",
				(json_int_t)0, "changes", changes);
	int error;

	memset(&st, 0, sizeof(st));
	error = hub_push(s, p, req, resp, NULL, &st);
	json_decref(req);
	return error;
}

static const long long T0 = 117000000000LL << 16;   /* an HLC stamp in 2026 */

/* A hub with a manager (P1) and a rep (P2); P1 created a customer, and a
 * second one already deleted; P2 then edited the first one's phone and
 * notes and made a deal in dollars. Returns the store; *batch2 is the
 * batch P1 sends next (the one faults hit): the city (applies), the notes
 * with the old base (merges), the phone with the old base (conflict), a
 * second customer with the same name and city (a duplicate candidate),
 * the deal's amount and currency unseen (a pair conflict, two records
 * naming each other) and a contact for the deleted customer (its
 * revival, an edit-delete conflict). */
static rl_store *hub_setup(const char *dir, long long *v_phone, long long *v_notes)
{
	rl_store *s;
	json_t *resp = NULL;
	char sql[512];

	if (hub_store_open(&s, dir, 1) < 0) {
		fprintf(stderr, "%s\n", rl_error_message());
		abort();
	}
	snprintf(sql, sizeof(sql),
		 "INSERT INTO users(id, login, name, role) VALUES ('%s', 'ani', 'Ani', 'manager'), "
		 "('%s', 'budi', 'Budi', 'rep');"
		 "INSERT INTO hub_devices(id, user_id, fingerprint, enrolled_at) VALUES "
		 "('%s', '%s', 'fp1', '2026-11-23T00:00:00Z'), ('%s', '%s', 'fp2', '2026-11-23T00:00:00Z')",
		 P1.user, P2.user, P1.device, P1.user, P2.device, P2.user);
	if (sqlite3_exec(rl_store_db(s), sql, NULL, NULL, NULL) != SQLITE_OK)
		abort();
	CHECK_EQ_INT(push(s, &P1, 1, json_pack("[o, o, o, o, o, o, o, o, o, o]",
		change("accounts", ACC3, "name", json_string("Toko Tiga"), 0, T0 + 1),
		change("accounts", ACC3, "owner_id", json_string(P1.user), 0, T0 + 1),
		change("accounts", ACC3, "created_at", json_string("2026-11-23T00:30:00Z"), 0, T0 + 1),
		change("accounts", ACC3, "deleted", json_integer(1), 0, T0 + 1),
		change("accounts", ACC, "name", json_string("Toko Makmur"), 0, T0 + 1),
		change("accounts", ACC, "city", json_string("Bandung"), 0, T0 + 2),
		change("accounts", ACC, "phone", json_string("+6281200001111"), 0, T0 + 3),
		change("accounts", ACC, "notes", json_string("Grosir\nBuka jam 8"), 0, T0 + 4),
		change("accounts", ACC, "owner_id", json_string(P1.user), 0, T0 + 5),
		change("accounts", ACC, "created_at", json_string("2026-11-23T01:00:00Z"), 0, T0 + 6)),
		&resp), RL_OK);
	json_decref(resp);
	*v_phone = field_version(s, "accounts", ACC, "phone");
	*v_notes = field_version(s, "accounts", ACC, "notes");
	CHECK_EQ_INT(push(s, &P2, 1, json_pack("[o, o, o, o, o, o, o, o, o]",
		change("accounts", ACC, "phone", json_string("+6281200002222"), *v_phone, T0 + 10),
		change("accounts", ACC, "notes", json_string("Pemilik: Pak Budi\nGrosir\nBuka jam 8"),
		       *v_notes, T0 + 11),
		change("deals", DEAL, "account_id", json_string(ACC), 0, T0 + 12),
		change("deals", DEAL, "title", json_string("Kulkas"), 0, T0 + 12),
		change("deals", DEAL, "amount", json_integer(1250), 0, T0 + 12),
		change("deals", DEAL, "currency", json_string("USD"), 0, T0 + 12),
		change("deals", DEAL, "stage_id", json_string(PROSPECT), 0, T0 + 12),
		change("deals", DEAL, "owner_id", json_string(P2.user), 0, T0 + 12),
		change("deals", DEAL, "created_at", json_string("2026-11-23T01:30:00Z"), 0, T0 + 12)),
		&resp), RL_OK);
	json_decref(resp);
	return s;
}

static json_t *batch2(rl_store *s, long long v_phone, long long v_notes)
{
	return json_pack("[o, o, o, o, o, o, o, o, o, o, o, o, o]",
		change("accounts", ACC, "city", json_string("Bandung Kota"),
		       field_version(s, "accounts", ACC, "city"), T0 + 20),
		change("accounts", ACC, "notes", json_string("Grosir\nBuka jam 8\nTutup Minggu"),
		       v_notes, T0 + 21),
		change("accounts", ACC, "phone", json_string("+6281200003333"), v_phone, T0 + 22),
		change("accounts", ACC2, "name", json_string("TOKO MAKMUR"), 0, T0 + 23),
		change("accounts", ACC2, "city", json_string("bandung kota"), 0, T0 + 24),
		change("accounts", ACC2, "owner_id", json_string(P1.user), 0, T0 + 25),
		change("accounts", ACC2, "created_at", json_string("2026-11-23T02:00:00Z"), 0, T0 + 26),
		change("accounts", ACC, "industry", json_string("Elektronik"), 0, T0 + 27),
		change("deals", DEAL, "amount", json_integer(2000), 0, T0 + 28),
		change("deals", DEAL, "currency", json_string("EUR"), 0, T0 + 28),
		change("contacts", CON, "account_id", json_string(ACC3), 0, T0 + 29),
		change("contacts", CON, "name", json_string("Pak Tiga"), 0, T0 + 29),
		change("contacts", CON, "created_at", json_string("2026-11-23T02:30:00Z"), 0, T0 + 29));
}

static void make_dir(char *buf, size_t len, const char *base, const char *what)
{
	snprintf(buf, len, "%s/%s", base, what);
	if (mkdir(buf, 0700) != 0)
		abort();
}

/* The batch under faults of one kind: returns how many attempts failed. */
static long hub_push_under_faults(const char *tmp, int kind, const char *want_dump,
				  const char *want_resp)
{
	char dir[512];
	long long v_phone, v_notes;
	rl_store *s;
	long n, failed = 0;
	char *before;

	make_dir(dir, sizeof(dir), tmp, kind == FAULT_MEM ? "hub-mem" : "hub-io");
	s = hub_setup(dir, &v_phone, &v_notes);
	before = dump(s);
	for (n = 0; n < 2000000; n = next_point(n)) {
		json_t *resp = NULL, *changes = batch2(s, v_phone, v_notes);
		int error;
		fault_arm(kind, n);
		error = push(s, &P1, 2, changes, &resp);
		fault_disarm();
		if (error < 0) {
			char *now = dump(s);
			failed++;
			if (!fault_hit)
				fprintf(stderr, "attempt %ld failed without a fault: %s\n", n,
					rl_error_message());
			CHECK(fault_hit);
			CHECK(resp == NULL);                 /* nothing to acknowledge */
			s = reopen(s, RL_STORE_HUB);
			if (strcmp(now, before) != 0) {
				fprintf(stderr, "%s fault %ld: the store changed after a failed push (%s)\n",
					kind == FAULT_MEM ? "malloc" : "I/O", n, rl_error_message());
				CHECK(0);
				sqlite3_free(now);
				break;
			}
			sqlite3_free(now);
			continue;
		}
		/* Through: the same answer and the same store as without faults. */
		{
			char *got = json_dumps(resp, JSON_SORT_KEYS | JSON_COMPACT), *now = dump(s);
			CHECK(got && strcmp(got, want_resp) == 0);
			if (strcmp(now, want_dump) != 0) {
				fprintf(stderr, "%s fault %ld: the push succeeded with a different store\n",
					kind == FAULT_MEM ? "malloc" : "I/O", n);
				show_diff(want_dump, now);
				CHECK(0);
			}
			free(got);
			sqlite3_free(now);
			json_decref(resp);
		}
		if (!fault_hit)
			break;              /* every fault point has been tried */
	}
	sqlite3_free(before);
	rl_store_close(s);
	return failed;
}

/* ---- conflict resolution ------------------------------------------------------------- */

/* One conflict of store s resolved under faults of one kind, from the
 * first fault point on: a failed attempt must leave the store as before. */
static long resolve_one_under_faults(rl_store **s, int kind, long long id, const char *mode)
{
	long long seq = 0, partner = 0;
	long n, failed = 0;
	char *before = dump(*s);
	int error;

	for (n = 0; n < 2000000; n = next_point(n)) {
		fault_arm(kind, n);
		error = hub_conflict_resolve(*s, id, mode, NULL, 0, &seq, &partner);
		fault_disarm();
		if (error < 0) {
			char *now = dump(*s);
			failed++;
			CHECK(fault_hit);
			*s = reopen(*s, RL_STORE_HUB);
			if (strcmp(now, before) != 0) {
				fprintf(stderr, "fault %ld: the store changed after a failed resolution\n", n);
				CHECK(0);
				sqlite3_free(now);
				break;
			}
			sqlite3_free(now);
			continue;
		}
		CHECK(seq > 0);
		break;
	}
	sqlite3_free(before);
	return failed;
}

/* A field's conflict, then a pair's (--keep decides both fields at once). */
static long resolve_under_faults(const char *tmp, int kind)
{
	char dir[512];
	long long v_phone, v_notes, amount_conflict;
	rl_store *s;
	json_t *resp = NULL;
	long failed;
	sqlite3_stmt *st;

	make_dir(dir, sizeof(dir), tmp, kind == FAULT_MEM ? "res-mem" : "res-io");
	s = hub_setup(dir, &v_phone, &v_notes);
	CHECK_EQ_INT(push(s, &P1, 2, batch2(s, v_phone, v_notes), &resp), RL_OK);
	json_decref(resp);
	failed = resolve_one_under_faults(&s, kind, 1, "take");
	if (sqlite3_prepare_v2(rl_store_db(s), "SELECT state, resolution, (SELECT phone FROM "
			       "accounts WHERE id = c.row_id) FROM hub_conflicts c WHERE id = 1",
			       -1, &st, NULL))
		abort();
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	CHECK_EQ_STR((const char *)sqlite3_column_text(st, 0), "resolved");
	CHECK_EQ_STR((const char *)sqlite3_column_text(st, 1), "take");
	CHECK_EQ_STR((const char *)sqlite3_column_text(st, 2), "+6281200003333");
	sqlite3_finalize(st);

	if (sqlite3_prepare_v2(rl_store_db(s), "SELECT id FROM hub_conflicts WHERE tbl = 'deals' "
			       "AND field = 'amount'", -1, &st, NULL))
		abort();
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	amount_conflict = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	failed += resolve_one_under_faults(&s, kind, amount_conflict, "keep");
	if (sqlite3_prepare_v2(rl_store_db(s), "SELECT amount, currency, (SELECT count(*) FROM "
			       "hub_conflicts WHERE tbl = 'deals' AND resolution = 'keep') FROM deals",
			       -1, &st, NULL))
		abort();
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	CHECK_EQ_INT(sqlite3_column_int(st, 0), 1250);
	CHECK_EQ_STR((const char *)sqlite3_column_text(st, 1), "USD");
	CHECK_EQ_INT(sqlite3_column_int(st, 2), 2);
	sqlite3_finalize(st);
	rl_store_close(s);
	return failed;
}

/* ---- the device's side: applying a pulled page ----------------------------------- */

struct fake_hub {
	rl_conn *c;
	const char *device;
};

/* Answers HELLO and PULL with a fixed page until the device says BYE or goes. */
static void *fake_hub_run(void *arg)
{
	struct fake_hub *h = arg;
	json_t *req, *resp;
	int type;

	while (rl_wire_read(h->c, RL_MAX_FRAME, 20000, &type, &req) == RL_OK) {
		resp = NULL;
		if (type == RL_FRAME_HELLO) {
			resp = json_pack("{s:i, s:s, s:s, s:s, s:s, s:I}", "proto", 1, "hub", "test",
					 "device", h->device, "user", P1.user, "role", "rep",
					 "hlc", (json_int_t)(T0 + 100));
			type = RL_FRAME_WELCOME;
		} else if (type == RL_FRAME_PULL) {
			resp = json_pack("{s:[o, o, o, o, o, o, o], s:I, s:b, s:[{s:I, s:s, s:s, s:s, "
					 "s:s, s:s, s:s, s:s, s:b, s:s, s:n, s:n, s:s}]}",
				"changes",
				json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:s}", "s", (json_int_t)11, "t", "accounts",
					  "r", ACC, "f", "name", "v", "Toko Makmur", "h", (json_int_t)(T0 + 1), "d", P2.device),
				json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:s}", "s", (json_int_t)12, "t", "accounts",
					  "r", ACC, "f", "city", "v", "Bandung", "h", (json_int_t)(T0 + 2), "d", P2.device),
				json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:s}", "s", (json_int_t)13, "t", "accounts",
					  "r", ACC, "f", "owner_id", "v", P2.user, "h", (json_int_t)(T0 + 3), "d", P2.device),
				json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:s}", "s", (json_int_t)14, "t", "accounts",
					  "r", ACC, "f", "created_at", "v", "2026-11-23T01:00:00Z", "h", (json_int_t)(T0 + 4), "d", P2.device),
				json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:s}", "s", (json_int_t)15, "t", "accounts",
					  "r", ACC, "f", "notes", "v", "Grosir\nBuka jam 8", "h", (json_int_t)(T0 + 5), "d", P2.device),
				json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:s}", "s", (json_int_t)16, "t", "accounts",
					  "r", ACC2, "f", "name", "v", "CV Sinar", "h", (json_int_t)(T0 + 6), "d", P2.device),
				json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:s}", "s", (json_int_t)17, "t", "accounts",
					  "r", ACC2, "f", "created_at", "v", "2026-11-23T01:00:00Z", "h", (json_int_t)(T0 + 7), "d", P2.device),
				"cursor", (json_int_t)17, "more", 0,
				"conflicts", "id", (json_int_t)1, "t", "accounts", "r", ACC, "f", "city",
				"kind", "field", "mine", "Bandung", "theirs", "Cimahi", "by", "budi",
				"kept_mine", 1, "state", "open", "resolution", "decided", "at",
				"2026-11-23T01:00:00Z");
			type = RL_FRAME_PAGE;
		} else {
			json_decref(req);
			break;                          /* BYE */
		}
		json_decref(req);
		if (!resp || rl_wire_write(h->c, type, resp, RL_MAX_FRAME, 20000) < 0) {
			json_decref(resp);
			break;
		}
		json_decref(resp);
	}
	return NULL;
}

static int device_session(rl_store *s)
{
	struct fake_hub h;
	struct rl_sync_stats st;
	rl_conn *mine, *theirs;
	pthread_t th;
	int error;

	if (rl_conn_pipe(&mine, &theirs) < 0)
		abort();
	h.c = theirs;
	h.device = rl_store_device_id(s);
	pthread_create(&th, NULL, fake_hub_run, &h);
	error = rl_sync_session(s, mine, &st, NULL, NULL);
	rl_conn_close(mine);
	pthread_join(th, NULL);
	rl_conn_close(theirs);
	return error;
}

static long device_apply_under_faults(const char *tmp, int kind, const char *want_dump)
{
	char path[512];
	rl_store *s;
	long n, failed = 0;
	char *before;

	snprintf(path, sizeof(path), "%s/dev-%s.db", tmp, kind == FAULT_MEM ? "mem" : "io");
	if (rl_store_open(&s, path, RL_STORE_CREATE) < 0 ||
	    rl_store_set_identity(s, P1.device, P1.user) < 0)
		abort();
	before = dump(s);
	for (n = 0; n < 2000000; n = next_point(n)) {
		int error;
		fault_arm(kind, n);
		error = device_session(s);
		fault_disarm();
		{
			char *now = dump(s);
			/* Either nothing of the page, or all of it: a page is one transaction. */
			if (strcmp(now, before) != 0 && strcmp(now, want_dump) != 0) {
				fprintf(stderr, "%s fault %ld: a failed page left a partial store (%s)\n",
					kind == FAULT_MEM ? "malloc" : "I/O", n, rl_error_message());
				CHECK(0);
				sqlite3_free(now);
				break;
			}
			if (error < 0) {
				failed++;
				CHECK(fault_hit);
				s = reopen(s, 0);      /* relasi exits after a failed sync */
			}
			if (strcmp(now, want_dump) == 0 && !fault_hit) {
				sqlite3_free(now);
				break;
			}
			if (strcmp(now, want_dump) == 0) {
				/* It got through; start over from an empty store for the next point. */
				rl_store_close(s);
				unlink(path);
				snprintf(path + strlen(path), 8, "x");
				if (rl_store_open(&s, path, RL_STORE_CREATE) < 0 ||
				    rl_store_set_identity(s, P1.device, P1.user) < 0)
					abort();
				sqlite3_free(before);
				before = dump(s);
			}
			sqlite3_free(now);
		}
	}
	sqlite3_free(before);
	rl_store_close(s);
	return failed;
}

int main(void)
{
	char tmp[] = "/tmp/relasi-faults-XXXXXX", dir[512], path[512];
	long long v_phone, v_notes;
	rl_store *s;
	json_t *resp = NULL;
	char *want_dump, *want_resp, *want_dev;
	long f;

	install_faults();
	setenv("RELASI_NOW", "2026-11-23T03:00:00Z", 1);
	if (!mkdtemp(tmp))
		abort();

	/* References: the same work without faults. */
	make_dir(dir, sizeof(dir), tmp, "hub-ref");
	s = hub_setup(dir, &v_phone, &v_notes);
	CHECK_EQ_INT(push(s, &P1, 2, batch2(s, v_phone, v_notes), &resp), RL_OK);
	want_resp = json_dumps(resp, JSON_SORT_KEYS | JSON_COMPACT);
	{
		/* the batch meets every merge path */
		const char *want[] = { "applied", "merged", "conflict", "applied" };
		size_t i;
		if (strcmp(json_string_value(json_object_get(json_array_get(json_object_get(resp,
			    "results"), 0), "s")), "applied") != 0)
			fprintf(stderr, "reference answer: %s\n", want_resp);
		for (i = 0; i < 4; i++)
			CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(
				json_object_get(resp, "results"), i), "s")), want[i]);
		/* the pair: both fields a conflict, the incoming pair kept for now */
		for (i = 8; i < 10; i++)
			CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(
				json_object_get(resp, "results"), i), "s")), "conflict");
	}
	json_decref(resp);
	want_dump = dump(s);
	CHECK(strstr(want_dump, "[hub_duplicates]\n'") != NULL);
	{
		/* the pair's conflicts name each other; the deleted customer is back */
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(rl_store_db(s), "SELECT (SELECT count(*) FROM hub_conflicts "
				       "WHERE partner IS NOT NULL AND tbl = 'deals'), (SELECT deleted "
				       "FROM accounts WHERE id = ?1), (SELECT count(*) FROM hub_conflicts "
				       "WHERE kind = 'edit-delete' AND row_id = ?1)", -1, &st, NULL))
			abort();
		sqlite3_bind_text(st, 1, ACC3, -1, SQLITE_STATIC);
		CHECK(sqlite3_step(st) == SQLITE_ROW);
		CHECK_EQ_INT(sqlite3_column_int(st, 0), 2);
		CHECK_EQ_INT(sqlite3_column_int(st, 1), 0);
		CHECK_EQ_INT(sqlite3_column_int(st, 2), 1);
		sqlite3_finalize(st);
	}
	rl_store_close(s);

	snprintf(path, sizeof(path), "%s/dev-ref.db", tmp);
	if (rl_store_open(&s, path, RL_STORE_CREATE) < 0 ||
	    rl_store_set_identity(s, P1.device, P1.user) < 0) {
		fprintf(stderr, "device store: %s\n", rl_error_message());
		abort();
	}
	CHECK_EQ_INT(device_session(s), RL_OK);
	want_dev = dump(s);
	CHECK(strstr(want_dev, "'CV Sinar'") != NULL);
	rl_store_close(s);

	f = hub_push_under_faults(tmp, FAULT_MEM, want_dump, want_resp);
	printf("hub batch apply: %ld allocation failures, each clean\n", f);
	CHECK(f > 10);
	f = hub_push_under_faults(tmp, FAULT_IO, want_dump, want_resp);
	printf("hub batch apply: %ld I/O failures, each clean\n", f);
	CHECK(f > 1);
	f = resolve_under_faults(tmp, FAULT_MEM);
	printf("conflict resolution: %ld allocation failures, each clean\n", f);
	CHECK(f > 3);
	f = resolve_under_faults(tmp, FAULT_IO);
	printf("conflict resolution: %ld I/O failures, each clean\n", f);
	CHECK(f > 1);
	f = device_apply_under_faults(tmp, FAULT_MEM, want_dev);
	printf("device page apply: %ld allocation failures, each clean\n", f);
	CHECK(f > 10);
	f = device_apply_under_faults(tmp, FAULT_IO, want_dev);
	printf("device page apply: %ld I/O failures, each clean\n", f);
	CHECK(f > 1);

	free(want_resp);
	sqlite3_free(want_dump);
	sqlite3_free(want_dev);
	{
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmp);
	}
	CHECK_DONE();
}
