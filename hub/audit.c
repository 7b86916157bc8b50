/*
 * audit.c — the hub's audit history: a bare git repository, DIR/audit.git,
 * in which every unit of work the hub committed (an applied batch, a
 * conflict resolution, an admin action, later a duplicate merge) is one
 * commit. Stock git reads it: `git log`, `git show`, `git fsck`, and a
 * `git clone` is a complete off-site copy of the history.
 *
 * Where it comes from. The writer never looks at a batch in flight: it
 * replays hub_log, which the store commits in the same transaction as the
 * change itself, so the history can lag the store but never claim what the
 * store did not commit. hub_audit_units (schema/hub/002_audit.sql), written
 * in that same transaction by hub_audit_mark(), says which log entries form
 * one commit and whose they are. The store row hub_audit holds the last seq
 * written to git and the commit holding it (HEAD), written after the ref
 * moved: a crash between the two leaves HEAD ahead of the store's record by
 * commits of our own making, which the next writer checks and adopts; any
 * other difference is a rewritten history, and nothing more is written on
 * top of it (hub_audit_verify says what is wrong). After a crash between the
 * store's commit and the git commit, the next writer simply finds hub_log
 * ahead of the recorded seq and writes the missing commits.
 *
 * Who writes. `relasi-hub serve` runs one writer thread (server.c) that
 * catches up at start, after every push and every few seconds; the admin
 * commands that write (conflicts resolve, user add/token/edit/remove, token
 * cancel, device revoke) catch up after their own commit; history and audit verify catch up
 * before they read. Writers of
 * several processes take DIR/audit.lock (flock: released by the kernel when
 * a writer is killed) around a catch-up.
 *
 * How it reaches the disk. New objects are held in memory (audit_odb.c) and
 * published every AUDIT_PUBLISH_EVERY commits and at the end of each
 * catch-up: all of them as one pack, fsynced; then the ref, fsynced
 * (libgit2's GIT_OPT_ENABLE_FSYNC_GITDIR); then the store's record. So a
 * power cut never leaves the ref naming an object that is not on disk;
 * killed before the ref moved, the next writer writes the same commits
 * again from hub_log (the pack keeps its copies, unreferenced). The packs
 * are merged by audit_pack.c.
 *
 * The tree. One file per record, at TABLE/XX/YY/ID, where XX and YY are the
 * last four hex digits of the id: ids begin with their creation time, so
 * only their random tail spreads records evenly (256 x 256 directories keep
 * every tree small at millions of records; a commit rewrites 4 small trees
 * per record it touches). Every row of every synced table has a file,
 * tombstones too ("deleted: 1"): a delete loses nothing. The hub's own
 * events (a token made or cancelled, a device enrolled or revoked:
 * hub_log_event, in hub_log as tables hub_tokens and hub_devices) have no
 * file: the tree is the synced tables, which audit verify compares with
 * the store. Their commits change no file (unless the same unit changed a
 * user: user remove) and say what happened in the message's body.
 *
 * THE RECORD FILE FORMAT (stable: audit verify and history read it back,
 * and a change to it would show as a change of every record):
 *   - UTF-8 text, one line per non-NULL column of the row except id, each
 *     line "NAME: VALUE\n" ("NAME:\n" for an empty text); a NULL column has
 *     no line;
 *   - lines sorted by NAME, bytewise (names are the schema's column names);
 *   - VALUE is the value as text: integers in decimal, reals in the shortest
 *     "%.Ng" (N = 15..17) that reads back to the same double (5.0 is "5"),
 *     text as is — so a value reads the same whatever SQLite type it was
 *     stored with;
 *   - VALUE is escaped so that each field is one line: backslash as "\\",
 *     newline as "\n", carriage return as "\r", tab as "\t", any other byte
 *     below 0x20 and 0x7f as "\xHH" (lower-case hex). Nothing else is
 *     escaped; bytes from 0x80 up are the UTF-8 text itself.
 *
 * The commit. Author: the user and device ("Ani Lestari (ani, device ID)
 * <ani@relasi>"), or "relasi-hub <hub@relasi>" for the hub's own actions,
 * dated with the hub's time of the change; committer: relasi-hub at the
 * time of writing. Message: a summary line ("ani: 12 changes to 3 records
 * (1 conflict)"), the records touched with the fields that changed, and the
 * trailers this file reads back:
 *   Relasi-Seq: FIRST..LAST     hub_log entries in this commit
 *   Relasi-Baseline: SEQ        instead, on the root: the store as of SEQ
 *   Relasi-Kind: batch|resolve|merge|admin
 *   Relasi-Device: ID|hub   Relasi-User: LOGIN   Relasi-Batch: N
 */
#include "audit_odb.h"
#include "audit_pack.h"
#include "hub.h"
#include "relasi/merge.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>
#include <utf8proc.h>

#include "relasi/error.h"
#include "relasi/limits.h"
#include "relasi/model.h"
#include "relasi/valid.h"

#define AUDIT_REF "refs/heads/main"
/* Entries in one commit of log entries no unit covers (a write path that
 * does not mark): bounds the writer's memory. Batches are bounded by
 * RL_MAX_BATCH_CHANGES already. */
#define AUDIT_MAX_UNCOVERED 10000
/* Tree updates per git_tree_create_updated call while writing a baseline
 * (every record of the store): bounds its memory. */
#define AUDIT_BASELINE_CHUNK 10000
/* Records named in a commit message's body; the rest are counted. */
#define AUDIT_BODY_RECORDS 40
/* Commits written before they are published during a long catch-up: their
 * objects packed (one fsynced pack), the ref moved, the store's record of
 * the head updated (a synchronous commit competing with pushes). */
#define AUDIT_PUBLISH_EVERY 64
/* Bytes of new objects held in memory before they are packed anyway (a
 * baseline of a large store; a long catch-up). */
#define AUDIT_BUFFER_MAX (32u << 20)
/* While serve is busy, its packs are merged past this many times
 * audit_pack_packs (audit_pack.h). */
#define AUDIT_BUSY_PACKS 4
/* Age past which a ref lock file in audit.git is a killed writer's. */
#define AUDIT_STALE_LOCK_S 2
/* How far back from HEAD the writer looks for the recorded head when
 * adopting commits a crash left unrecorded (more than AUDIT_PUBLISH_EVERY). */
#define AUDIT_ADOPT_MAX 1024
/* Differences audit verify lists before it only counts. */
#define AUDIT_SHOW_PROBLEMS 10

/* The synced tables (as sync/src/capture.c), in the order of the baseline. */
static const char *const audit_tables[] = {
	"users", "stages", "accounts", "contacts", "deals", "activities", "tasks",
	"deal_stage_events", NULL
};

struct hub_audit {
	git_repository *repo;
	git_repository *wr;            /* new objects go through this one: buf's, in a catch-up */
	hub_audit_odb *buf;            /* the writer's object buffer (audit_odb.h), in a catch-up */
	char dir[4096];
	int lockfd;
	int locked;
	pthread_mutex_t *store_lock;   /* serve's writer lock, for our store writes */
	struct hub_audit_pack_limits pack;   /* when hub_audit_maintain packs (audit_pack.c) */
};

/* ---- errors ------------------------------------------------------------------ */

int hub_git_fail(int gerr, const char *doing)
{
	const git_error *e = git_error_last();
	return rl_error_set(gerr == GIT_ENOTFOUND ? RL_ENOTFOUND : RL_EIO, "audit history: %s: %s",
			    doing, e && e->message ? e->message : "libgit2 failed");
}

/* ---- text --------------------------------------------------------------------------- */

/* Drop from s, in place, every byte that is no part of a UTF-8 character:
 * a snprintf into a buffer too small for a name, or a "%.Ns" (the note of
 * `user add`), may cut one in two, and git then shows a broken byte, and
 * jansson refuses the string (history failed, saying "out of memory"). */
static void utf8_clean(char *s)
{
	const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
	utf8proc_int32_t c;
	utf8proc_ssize_t step;
	char *o = s;

	while (*p) {
		if ((step = utf8proc_iterate(p, -1, &c)) > 0) {
			memmove(o, p, (size_t)step);
			o += step;
			p += step;
		} else {
			p++;
		}
	}
	*o = '\0';
}

/* s as a JSON string, each byte that is no UTF-8 as U+FFFD: a commit of an
 * older hub (or of a hand) may hold broken text, which jansson refuses. */
static json_t *json_text(const char *s)
{
	const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
	utf8proc_int32_t c;
	utf8proc_ssize_t step;
	sqlite3_str *b;
	json_t *j;
	char *t;

	if ((j = json_string(s)) || !s)
		return j;
	b = sqlite3_str_new(NULL);
	while (*p) {
		if ((step = utf8proc_iterate(p, -1, &c)) > 0) {
			sqlite3_str_append(b, (const char *)p, (int)step);
			p += step;
		} else {
			sqlite3_str_appendall(b, "\xef\xbf\xbd");
			p++;
		}
	}
	t = sqlite3_str_finish(b);
	j = t ? json_string(t) : NULL;
	sqlite3_free(t);
	return j;
}

/* ---- the record file ------------------------------------------------------------ */

struct field {
	char *name;
	char *value;
};

struct record {
	struct field *f;
	size_t n, cap;
};

static void record_clear(struct record *r)
{
	size_t i;
	for (i = 0; i < r->n; i++) {
		free(r->f[i].name);
		free(r->f[i].value);
	}
	free(r->f);
	memset(r, 0, sizeof(*r));
}

static const char *record_get(const struct record *r, const char *name)
{
	size_t i;
	for (i = 0; i < r->n; i++)
		if (strcmp(r->f[i].name, name) == 0)
			return r->f[i].value;
	return NULL;
}

/* Set name to value (copied; NULL removes the field). */
static int record_set(struct record *r, const char *name, const char *value)
{
	size_t i;
	char *v = NULL;

	if (value && !(v = strdup(value)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	for (i = 0; i < r->n; i++)
		if (strcmp(r->f[i].name, name) == 0)
			break;
	if (i < r->n) {
		free(r->f[i].value);
		if (v) {
			r->f[i].value = v;
		} else {
			free(r->f[i].name);
			r->f[i] = r->f[--r->n];
		}
		return RL_OK;
	}
	if (!v)
		return RL_OK;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct field *nf = realloc(r->f, cap * sizeof(*nf));
		if (!nf) {
			free(v);
			return rl_error_set(RL_ENOMEM, "out of memory");
		}
		r->f = nf;
		r->cap = cap;
	}
	if (!(r->f[r->n].name = strdup(name))) {
		free(v);
		return rl_error_set(RL_ENOMEM, "out of memory");
	}
	r->f[r->n++].value = v;
	return RL_OK;
}

static int field_cmp(const void *a, const void *b)
{
	return strcmp(((const struct field *)a)->name, ((const struct field *)b)->name);
}

/* The file's text (see the format above); *out is sqlite3_malloc'd, "" for
 * a record without fields. */
static int record_render(struct record *r, char **out, size_t *len)
{
	sqlite3_str *s = sqlite3_str_new(NULL);
	size_t i;
	int errc;

	if (r->n)
		qsort(r->f, r->n, sizeof(*r->f), field_cmp);
	for (i = 0; i < r->n; i++) {
		const unsigned char *c;
		sqlite3_str_appendf(s, "%s:", r->f[i].name);
		if (*r->f[i].value)
			sqlite3_str_appendchar(s, 1, ' ');
		for (c = (const unsigned char *)r->f[i].value; *c; c++) {
			switch (*c) {
			case '\\': sqlite3_str_appendall(s, "\\\\"); break;
			case '\n': sqlite3_str_appendall(s, "\\n"); break;
			case '\r': sqlite3_str_appendall(s, "\\r"); break;
			case '\t': sqlite3_str_appendall(s, "\\t"); break;
			default:
				if (*c < 0x20 || *c == 0x7f)
					sqlite3_str_appendf(s, "\\x%02x", *c);
				else
					sqlite3_str_appendchar(s, 1, (char)*c);
			}
		}
		sqlite3_str_appendchar(s, 1, '\n');
	}
	*len = (size_t)sqlite3_str_length(s);
	errc = sqlite3_str_errcode(s);
	*out = sqlite3_str_finish(s);       /* NULL for empty text */
	if (errc != SQLITE_OK) {
		sqlite3_free(*out);
		*out = NULL;
		return rl_error_set(RL_ENOMEM, "out of memory");
	}
	if (!*out) {
		if (!(*out = sqlite3_malloc(1)))
			return rl_error_set(RL_ENOMEM, "out of memory");
		**out = '\0';
	}
	return RL_OK;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Read a record file back (what record_render wrote; a hand-edited file
 * that breaks the format is RL_EINVALID). */
static int record_parse(const char *buf, size_t len, struct record *r, const char *path)
{
	const char *p = buf, *end = buf + len;
	char *val = NULL, *name = NULL;
	int error = RL_OK;

	while (p < end && error == 0) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *colon, *v;
		size_t vn = 0;
		if (!nl)
			nl = end;
		colon = memchr(p, ':', (size_t)(nl - p));
		if (!colon || colon == p) {
			error = rl_error_set(RL_EINVALID, "%s: a line without 'name:'", path);
			break;
		}
		if (!(name = strndup(p, (size_t)(colon - p))) ||
		    !(val = malloc((size_t)(nl - colon) + 1))) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			break;
		}
		v = colon + 1;
		if (v < nl && *v == ' ')
			v++;
		for (; v < nl; v++) {
			if (*v != '\\') {
				val[vn++] = *v;
				continue;
			}
			if (++v >= nl) {
				error = rl_error_set(RL_EINVALID, "%s: a dangling escape", path);
				break;
			}
			switch (*v) {
			case '\\': val[vn++] = '\\'; break;
			case 'n': val[vn++] = '\n'; break;
			case 'r': val[vn++] = '\r'; break;
			case 't': val[vn++] = '\t'; break;
			case 'x':
				if (nl - v < 3 || hexval(v[1]) < 0 || hexval(v[2]) < 0 ||
				    (hexval(v[1]) == 0 && hexval(v[2]) == 0)) {
					error = rl_error_set(RL_EINVALID, "%s: a bad \\x escape", path);
					break;
				}
				val[vn++] = (char)(hexval(v[1]) * 16 + hexval(v[2]));
				v += 2;
				break;
			default:
				error = rl_error_set(RL_EINVALID, "%s: an unknown escape", path);
			}
			if (error)
				break;
		}
		val[vn] = '\0';
		if (error == 0)
			error = record_set(r, name, val);
		free(name);
		free(val);
		name = val = NULL;
		p = nl + 1;
	}
	free(name);
	free(val);
	return error;
}

/* A column as the format's text; *out malloc'd, NULL for SQL NULL. */
static int value_text(sqlite3_value *v, char **out)
{
	char buf[40];
	const char *text = buf;
	int prec;

	*out = NULL;
	switch (sqlite3_value_type(v)) {
	case SQLITE_NULL:
		return RL_OK;
	case SQLITE_INTEGER:
		snprintf(buf, sizeof(buf), "%lld", (long long)sqlite3_value_int64(v));
		break;
	case SQLITE_FLOAT: {
		double d = sqlite3_value_double(v);
		for (prec = 15; prec <= 17; prec++) {
			snprintf(buf, sizeof(buf), "%.*g", prec, d);
			if (strtod(buf, NULL) == d)
				break;
		}
		break;
	}
	default:
		if (!(text = (const char *)sqlite3_value_text(v)))
			return rl_error_set(RL_ENOMEM, "out of memory");
	}
	if (!(*out = strdup(text)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	return RL_OK;
}

/* The row's record as stored now; *found 0 when there is no such row. */
static int row_record(rl_store *s, const char *tbl, const char *row, struct record *r, int *found)
{
	sqlite3_stmt *st;
	int error, rc, i, n;

	*found = 0;
	error = rl_store_preparef(s, &st, "SELECT * FROM \"%w\" WHERE id = ?1", tbl);
	if (error < 0)
		return error;
	sqlite3_bind_text(st, 1, row, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*found = 1;
		n = sqlite3_column_count(st);
		for (i = 0; i < n && error == 0; i++) {
			char *text;
			if (strcmp(sqlite3_column_name(st, i), "id") == 0)
				continue;
			if ((error = value_text(sqlite3_column_value(st, i), &text)) == 0 && text)
				error = record_set(r, sqlite3_column_name(st, i), text);
			free(text);
		}
	} else if (rc != SQLITE_DONE) {
		error = rl_store_error(s, "reading a record for the history");
	}
	sqlite3_reset(st);
	return error;
}

/* TABLE/XX/YY/ID (see above); RL_EINVALID for a name that is no record. */
static int record_path(char *buf, size_t len, const char *tbl, const char *row)
{
	const struct rl_table *t = rl_model_table(tbl);

	if (!t || strcmp(t->name, tbl) != 0 || !rl_id_valid(row))
		return rl_error_set(RL_EINVALID, "'%s' '%s' is not a record", tbl, row);
	snprintf(buf, len, "%s/%.2s/%.2s/%s", tbl, row + 28, row + 30, row);
	return RL_OK;
}

/* ---- opening, locking --------------------------------------------------------------- */

int hub_audit_open(hub_audit **out, const char *dir, int create)
{
	git_repository_init_options o;
	hub_audit *a;
	char path[4096];
	struct stat sb;
	int error, gerr;

	*out = NULL;
	if (!(a = calloc(1, sizeof(*a))))
		return rl_error_set(RL_ENOMEM, "out of memory");
	a->lockfd = -1;
	if ((error = rl_git_global_init()) < 0) {
		free(a);
		return error;
	}
	snprintf(a->dir, sizeof(a->dir), "%s", dir);
	/* The ref and the packs reach the disk before the store records them
	 * (publish()); objects are never written loose (audit_odb.h). */
	git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
	if ((error = hub_path(path, sizeof(path), dir, HUB_AUDIT_DIR)) < 0)
		goto fail;
	if (stat(path, &sb) != 0) {
		if (!create) {
			error = rl_error_set(RL_ENOTFOUND, "no audit history in %s (%s is missing)",
					     dir, HUB_AUDIT_DIR);
			goto fail;
		}
		git_repository_init_options_init(&o, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
		o.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH |
			  GIT_REPOSITORY_INIT_NO_REINIT;
		o.mode = GIT_REPOSITORY_INIT_SHARED_UMASK;
		o.initial_head = "main";
		o.description = "Relasi hub audit history: one commit per applied batch";
		if ((gerr = git_repository_init_ext(&a->repo, path, &o)) < 0) {
			error = hub_git_fail(gerr, "creating audit.git");
			goto fail;
		}
	} else if ((gerr = git_repository_open_bare(&a->repo, path)) < 0) {
		error = hub_git_fail(gerr, "opening audit.git");
		goto fail;
	}
	a->wr = a->repo;
	*out = a;
	return RL_OK;
fail:
	hub_audit_free(a);
	return error;
}

void hub_audit_set_store_lock(hub_audit *a, pthread_mutex_t *lock)
{
	a->store_lock = lock;
}

void hub_audit_free(hub_audit *a)
{
	if (!a)
		return;
	if (a->lockfd >= 0)
		close(a->lockfd);
	git_repository_free(a->repo);
	free(a);
}

/* One writer at a time across processes (serve's thread, an admin command,
 * a backup's copy): flock on DIR/audit.lock, opened into *fd when < 0. */
static int lock_dir(const char *dir, int *fd)
{
	char path[4096];
	int error;

	if (*fd < 0) {
		if ((error = hub_path(path, sizeof(path), dir, "audit.lock")) < 0)
			return error;
		if ((*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
			return rl_error_set(RL_EIO, "cannot open %s: %s", path, strerror(errno));
	}
	while (flock(*fd, LOCK_EX) != 0)
		if (errno != EINTR)
			return rl_error_set(RL_EIO, "cannot lock the audit history: %s", strerror(errno));
	return RL_OK;
}

static int audit_lock(hub_audit *a)
{
	int error = lock_dir(a->dir, &a->lockfd);

	a->locked = error == 0;
	return error;
}

static void audit_unlock(hub_audit *a)
{
	if (a->locked)
		flock(a->lockfd, LOCK_UN);
	a->locked = 0;
}

int hub_audit_lock_dir(const char *dir, int *fd)
{
	int error;

	*fd = -1;
	if ((error = lock_dir(dir, fd)) < 0 && *fd >= 0) {
		close(*fd);
		*fd = -1;
	}
	return error;
}

void hub_audit_unlock_dir(int fd)
{
	if (fd >= 0)
		close(fd);        /* closing the descriptor releases the flock */
}

/* ---- marking units (inside the writer's transaction) -------------------------------- */

int hub_audit_begin(rl_store *s, long long *first_seq)
{
	int error = hub_log_last(s, first_seq);
	(*first_seq)++;
	return error;
}

int hub_audit_mark(rl_store *s, long long first_seq, const char *kind, const char *device,
		   const char *user, long long batch, long conflicts, const char *note)
{
	sqlite3_stmt *st;
	long long last;
	char at[21];
	int error, rc;

	if ((error = hub_log_last(s, &last)) < 0)
		return error;
	if (last < first_seq)
		return RL_OK;               /* nothing logged: nothing to commit */
	rl_time_format_utc(at, rl_store_now_ms(s) / 1000);
	if ((error = rl_store_prepare(s, "INSERT INTO hub_audit_units(last_seq, first_seq, kind, "
				      "device, user_id, batch, conflicts, at, note) VALUES "
				      "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)", &st)) < 0)
		return error;
	sqlite3_bind_int64(st, 1, last);
	sqlite3_bind_int64(st, 2, first_seq);
	sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, device, -1, SQLITE_STATIC);
	if (user && *user)
		sqlite3_bind_text(st, 5, user, -1, SQLITE_STATIC);
	if (batch > 0)
		sqlite3_bind_int64(st, 6, batch);
	sqlite3_bind_int64(st, 7, conflicts);
	sqlite3_bind_text(st, 8, at, -1, SQLITE_STATIC);
	if (note)
		sqlite3_bind_text(st, 9, note, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? RL_OK : rl_store_error(s, "recording an audit unit");
}

/* ---- the store's record of the head ---------------------------------------------------- */

static int recorded_head(rl_store *s, int *found, long long *seq, git_oid *head)
{
	sqlite3_stmt *st;
	int error, rc;

	*found = 0;
	if ((error = rl_store_prepare(s, "SELECT seq, head FROM hub_audit WHERE id = 1", &st)) < 0)
		return error;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(st, 1);
		*seq = sqlite3_column_int64(st, 0);
		if (!h || git_oid_fromstr(head, h) < 0)
			error = rl_error_set(RL_ESTORE, "the store's record of the audit head is damaged");
		*found = 1;
	} else if (rc != SQLITE_DONE) {
		error = rl_store_error(s, "reading the audit head");
	}
	sqlite3_reset(st);
	return error;
}

static int record_head_locked(rl_store *s, long long seq, const git_oid *head);

/* In serve, queue behind the pushes on their lock rather than in SQLite's
 * busy handler (whose sleeps would delay a push waiting for this commit). */
static int record_head(hub_audit *a, rl_store *s, long long seq, const git_oid *head)
{
	int error;

	if (a->store_lock)
		pthread_mutex_lock(a->store_lock);
	error = record_head_locked(s, seq, head);
	if (a->store_lock)
		pthread_mutex_unlock(a->store_lock);
	return error;
}

static int record_head_locked(rl_store *s, long long seq, const git_oid *head)
{
	sqlite3_stmt *st;
	char hex[GIT_OID_HEXSZ + 1], at[21];
	int error, rc;

	git_oid_tostr(hex, sizeof(hex), head);
	rl_time_format_utc(at, rl_store_now_ms(s) / 1000);
	if ((error = rl_store_begin(s)) < 0)
		return error;
	if ((error = rl_store_prepare(s, "INSERT INTO hub_audit(id, seq, head, written) VALUES "
				      "(1, ?1, ?2, ?3) ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, "
				      "head = excluded.head, written = excluded.written", &st)) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, hex, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, at, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		error = rl_store_error(s, "recording the audit head");
		goto fail;
	}
	return rl_store_commit(s);
fail:
	rl_store_rollback(s);
	return error;
}

/* ---- reading commits back ------------------------------------------------------------- */

struct commit_info {
	int baseline;              /* root: the store as of last */
	long long first, last;     /* hub_log seqs */
	char device[64], user[RL_MAX_NAME_BYTES + 1], kind[16];   /* user: a whole login */
};

/* The trailers of one of our commits; RL_EINVALID when it is not one. */
static int commit_info(const git_commit *c, struct commit_info *ci)
{
	git_message_trailer_array tr = { NULL, 0, NULL };
	const char *msg = git_commit_message(c);
	size_t i;
	int seen = 0, error = RL_OK;

	memset(ci, 0, sizeof(*ci));
	if (!msg || git_message_trailers(&tr, msg) < 0)
		return rl_error_set(RL_EINVALID, "commit %.12s has no Relasi trailers",
				    git_oid_tostr_s(git_commit_id(c)));
	for (i = 0; i < tr.count; i++) {
		const char *k = tr.trailers[i].key, *v = tr.trailers[i].value;
		char *end;
		if (strcmp(k, "Relasi-Seq") == 0) {
			ci->first = strtoll(v, &end, 10);
			if (end[0] != '.' || end[1] != '.')
				break;
			ci->last = strtoll(end + 2, &end, 10);
			if (*end || ci->first < 1 || ci->last < ci->first)
				break;
			seen++;
		} else if (strcmp(k, "Relasi-Baseline") == 0) {
			ci->last = strtoll(v, &end, 10);
			if (*end || ci->last < 0)
				break;
			ci->baseline = 1;
			seen++;
		} else if (strcmp(k, "Relasi-Device") == 0) {
			snprintf(ci->device, sizeof(ci->device), "%s", v);
		} else if (strcmp(k, "Relasi-User") == 0) {
			snprintf(ci->user, sizeof(ci->user), "%s", v);
			utf8_clean(ci->user);
		} else if (strcmp(k, "Relasi-Kind") == 0) {
			snprintf(ci->kind, sizeof(ci->kind), "%s", v);
		}
	}
	if (i < tr.count || seen != 1)
		error = rl_error_set(RL_EINVALID, "commit %.12s has no valid Relasi-Seq trailer",
				     git_oid_tostr_s(git_commit_id(c)));
	git_message_trailer_array_free(&tr);
	return error;
}

/* HEAD of audit.git; *found 0 while unborn. */
static int repo_head(hub_audit *a, int *found, git_oid *out)
{
	int gerr = git_reference_name_to_id(out, a->repo, AUDIT_REF);

	*found = gerr == 0;
	if (gerr == GIT_ENOTFOUND)
		return RL_OK;
	return gerr < 0 ? hub_git_fail(gerr, "reading " AUDIT_REF) : RL_OK;
}

/* ---- writing commits -------------------------------------------------------------------- */

struct entry {
	long long seq;
	char *tbl, *row, *field, *value;   /* value NULL: SQL NULL */
};

struct unit {
	long long first, last;
	char kind[16];
	char device[64];
	char user[64];                     /* user id, "" for none */
	long long batch;
	long conflicts;
	char at[32];
	char note[256];
};

static void entries_free(struct entry *es, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++) {
		free(es[i].tbl);
		free(es[i].row);
		free(es[i].field);
		free(es[i].value);
	}
	free(es);
}

static int read_entries(rl_store *s, long long first, long long last, struct entry **out,
			size_t *nout)
{
	struct entry *es = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int error, rc;

	*out = NULL;
	*nout = 0;
	if ((error = rl_store_prepare(s, "SELECT seq, tbl, row_id, field, value FROM hub_log "
				      "WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq", &st)) < 0)
		return error;
	sqlite3_bind_int64(st, 1, first);
	sqlite3_bind_int64(st, 2, last);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct entry *e;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct entry *ne = realloc(es, nc * sizeof(*ne));
			if (!ne) {
				error = rl_error_set(RL_ENOMEM, "out of memory");
				break;
			}
			es = ne;
			cap = nc;
		}
		e = &es[n++];
		memset(e, 0, sizeof(*e));
		e->seq = sqlite3_column_int64(st, 0);
		if (!(e->tbl = strdup((const char *)sqlite3_column_text(st, 1))) ||
		    !(e->row = strdup((const char *)sqlite3_column_text(st, 2))) ||
		    !(e->field = strdup((const char *)sqlite3_column_text(st, 3))) ||
		    (error = value_text(sqlite3_column_value(st, 4), &e->value)) < 0) {
			if (error == 0)
				error = rl_error_set(RL_ENOMEM, "out of memory");
			break;
		}
	}
	sqlite3_reset(st);
	if (error == 0 && rc != SQLITE_DONE)
		error = rl_store_error(s, "reading the hub log");
	if (error < 0) {
		entries_free(es, n);
		return error;
	}
	*out = es;
	*nout = n;
	return RL_OK;
}

static const struct entry *sort_base;

static int entry_order(const void *a, const void *b)
{
	const struct entry *x = &sort_base[*(const size_t *)a], *y = &sort_base[*(const size_t *)b];
	int c = strcmp(x->tbl, y->tbl);
	if (!c)
		c = strcmp(x->row, y->row);
	return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

/* Highest hub_fields version of a record (0: none). */
static int record_version(rl_store *s, const char *tbl, const char *row, long long *v)
{
	sqlite3_stmt *st;
	int error, rc;

	if ((error = rl_store_prepare(s, "SELECT coalesce(max(version), 0) FROM hub_fields "
				      "WHERE tbl = ?1 AND row_id = ?2", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, row, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? RL_OK : rl_store_error(s, "reading field versions");
}

static int field_logged(rl_store *s, const char *tbl, const char *row, const char *field, int *yes)
{
	sqlite3_stmt *st;
	int error, rc;

	if ((error = rl_store_prepare(s, "SELECT 1 FROM hub_fields WHERE tbl = ?1 AND row_id = ?2 "
				      "AND field = ?3", &st)) < 0)
		return error;
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, row, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, field, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*yes = rc == SQLITE_ROW;
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? RL_OK : rl_store_error(s, "reading field versions");
}

/* A blob's content as a record; absent (no blob at path) is empty. */
static int tree_record(hub_audit *a, git_tree *tree, const char *path, struct record *r,
		       int *found, git_oid *oid)
{
	git_tree_entry *te = NULL;
	git_blob *b = NULL;
	int gerr, error;

	*found = 0;
	if (!tree)
		return RL_OK;
	gerr = git_tree_entry_bypath(&te, tree, path);
	if (gerr == GIT_ENOTFOUND)
		return RL_OK;
	if (gerr < 0)
		return hub_git_fail(gerr, path);
	if (oid)
		git_oid_cpy(oid, git_tree_entry_id(te));
	if (git_tree_entry_type(te) != GIT_OBJECT_BLOB) {
		git_tree_entry_free(te);
		return rl_error_set(RL_EINVALID, "%s: not a file", path);
	}
	/* The writer makes every record a plain file (100644). The same blob
	 * as an executable or a symlink (a clone then checks out a link whose
	 * target is the record's text) has the same id: only its mode tells. */
	if (git_tree_entry_filemode(te) != GIT_FILEMODE_BLOB) {
		unsigned mode = (unsigned)git_tree_entry_filemode(te);
		git_tree_entry_free(te);
		return rl_error_set(RL_EINVALID, "%s: mode %06o, not a plain file (100644)", path,
				    mode);
	}
	if ((gerr = git_blob_lookup(&b, a->wr, git_tree_entry_id(te))) < 0) {
		git_tree_entry_free(te);
		return hub_git_fail(gerr, path);
	}
	*found = 1;
	error = r ? record_parse(git_blob_rawcontent(b), (size_t)git_blob_rawsize(b), r, path)
		  : RL_OK;
	git_blob_free(b);
	git_tree_entry_free(te);
	return error;
}

/* Test hook (tests/cli/test_audit.py): RELASI_HUB_FAULT=audit-slow-record:MS
 * sleeps MS milliseconds between reading a record's latest version and
 * reading the record, the window in which a push may commit a later change
 * to it. */
static void fault_slow_record(void)
{
	static long ms = -1;
	const char *f;

	if (ms < 0) {
		f = getenv("RELASI_HUB_FAULT");
		ms = f && strncmp(f, "audit-slow-record:", 18) == 0 ? strtol(f + 18, NULL, 10) : 0;
	}
	if (ms > 0) {
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
	}
}

/*
 * The record as of the unit's last seq, from its entries es[idx[i..j)]:
 * the stored row when nothing changed it later (exact, defaults included);
 * while catching up on a record changed again since, the parent commit's
 * file with the unit's entries applied (a new record: the row's fields
 * that were never logged, then the entries).
 */
static int unit_record(hub_audit *a, rl_store *s, git_tree *ptree, const char *path,
		       const struct entry *es, const size_t *idx, size_t i, size_t j,
		       long long last, int replay, struct record *r)
{
	const struct entry *e0 = &es[idx[i]];
	long long v = 0;
	int error, found, in_parent;
	size_t k;

	/* replay (audit verify --deep): always from the parent and the log. */
	if (!replay && (error = record_version(s, e0->tbl, e0->row, &v)) < 0)
		return error;
	if (!replay && v <= last) {
		fault_slow_record();
		if ((error = row_record(s, e0->tbl, e0->row, r, &found)) < 0 || found)
			return error;
	}
	record_clear(r);
	if ((error = tree_record(a, ptree, path, r, &in_parent, NULL)) < 0)
		return error;
	if (!in_parent) {
		struct record now = { NULL, 0, 0 };
		if ((error = row_record(s, e0->tbl, e0->row, &now, &found)) < 0) {
			record_clear(&now);
			return error;
		}
		for (k = 0; k < now.n && error == 0; k++) {
			int logged;
			if ((error = field_logged(s, e0->tbl, e0->row, now.f[k].name, &logged)) == 0 &&
			    !logged)
				error = record_set(r, now.f[k].name, now.f[k].value);
		}
		record_clear(&now);
		if (error < 0)
			return error;
	}
	for (k = i; k < j && error == 0; k++)
		error = record_set(r, es[idx[k]].field, es[idx[k]].value);
	return error;
}

/* user id -> name and login (empty when unknown). */
static void user_names(rl_store *s, const char *user, char *name, size_t nlen, char *login,
		       size_t llen)
{
	sqlite3_stmt *st;

	name[0] = login[0] = '\0';
	if (!user || !*user ||
	    rl_store_prepare(s, "SELECT name, login FROM users WHERE id = ?1", &st) < 0)
		return;
	sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(name, nlen, "%s", sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "");
		snprintf(login, llen, "%s", sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "");
	}
	sqlite3_reset(st);
}

/* git refuses '<', '>' and newlines in names and e-mails. */
static void sig_clean(char *s, int email)
{
	for (; *s; s++)
		if (*s == '<' || *s == '>' || (unsigned char)*s < 0x20 ||
		    (email && !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
				(*s >= '0' && *s <= '9') || *s == '.' || *s == '-' || *s == '_')))
			*s = email ? '_' : ' ';
}

static int make_signatures(rl_store *s, const struct unit *u, git_signature **author,
			   git_signature **committer)
{
	/* name and login whole (at most RL_MAX_NAME_BYTES each): a cut one
	 * is another login in the trailer, and broken UTF-8 in the author */
	char name[RL_MAX_NAME_BYTES + 1], login[RL_MAX_NAME_BYTES + 1];
	char full[2 * RL_MAX_NAME_BYTES + 128], email[160], local[128];
	int64_t when = 0;
	int off = 0, gerr;

	*author = *committer = NULL;
	user_names(s, u->user, name, sizeof(name), login, sizeof(login));
	if (strcmp(u->device, "hub") == 0 || !u->device[0]) {
		snprintf(full, sizeof(full), "relasi-hub");
		snprintf(local, sizeof(local), "hub");
	} else {
		snprintf(full, sizeof(full), "%s (%s, device %s)", name[0] ? name : "unknown user",
			 login[0] ? login : "?", u->device);
		/* the e-mail's local part: ASCII after sig_clean, so a cut is harmless */
		snprintf(local, sizeof(local), "%.100s", login[0] ? login : "unknown");
	}
	sig_clean(full, 0);
	sig_clean(local, 1);
	snprintf(email, sizeof(email), "%s@relasi", local);
	if (rl_time_parse(&when, &off, u->at, 0, 0) < 0)
		when = rl_store_now_ms(s) / 1000;
	if ((gerr = git_signature_new(author, full, email, (git_time_t)when, 0)) < 0 ||
	    (gerr = git_signature_new(committer, "relasi-hub", "hub@relasi",
				      (git_time_t)(rl_store_now_ms(s) / 1000), 0)) < 0) {
		git_signature_free(*author);
		*author = NULL;
		return hub_git_fail(gerr, "making the commit's signature");
	}
	return RL_OK;
}

struct update {
	char path[96];
	git_oid oid;
	int remove;
};

static int update_order(const void *a, const void *b)
{
	return strcmp(((const struct update *)a)->path, ((const struct update *)b)->path);
}

/* Test hooks (tests/cli/test_audit.py): RELASI_HUB_FAULT=audit-kill-before-ref:N
 * SIGKILLs the process right before the N-th ref update of this process
 * (its pack written), audit-kill-after-ref:N right after it, before the
 * store records the new head. */
static void fault_at_ref(int k)
{
	static long count[2], at[2] = { -1, -1 };
	const char *when = k ? "after" : "before", *f;
	char name[32];

	if (at[k] < 0) {
		f = getenv("RELASI_HUB_FAULT");
		snprintf(name, sizeof(name), "audit-kill-%s-ref:", when);
		at[k] = f && strncmp(f, name, strlen(name)) == 0 ? strtol(f + strlen(name), NULL, 10)
							       : 0;
	}
	if (at[k] > 0 && __atomic_add_fetch(&count[k], 1, __ATOMIC_SEQ_CST) == at[k]) {
		fprintf(stderr, "relasi-hub: fault injection: killed %s the audit ref moved\n", when);
		raise(SIGKILL);
	}
}

/* A writer killed while it moved the ref leaves the ref's lock file, and
 * libgit2 would refuse every later move. relasi-hub writes here only under
 * audit.lock, which the caller holds, so such a file is a dead writer's —
 * unless someone runs stock git on audit.git by hand, whose lock lives for
 * milliseconds. So a lock older than AUDIT_STALE_LOCK_S is removed, and a
 * younger one is waited for until it goes or ages (at most a few seconds,
 * and only after a kill): failing instead made `audit verify` run right
 * after a killed hub fail (found by the simulation's check 6). */
static void clear_dead_lock(const char *lock)
{
	const struct timespec nap = { 0, 50 * 1000000L };
	time_t give_up = time(NULL) + AUDIT_STALE_LOCK_S + 2;
	struct stat sb;

	while (stat(lock, &sb) == 0) {
		if (time(NULL) - sb.st_mtime > AUDIT_STALE_LOCK_S) {
			if (unlink(lock) == 0)
				fprintf(stderr, "relasi-hub: removed %s, left by a writer that "
					"was killed\n", lock);
			return;
		}
		if (time(NULL) >= give_up)
			return;         /* a lock from the future: the move fails, said */
		nanosleep(&nap, NULL);
	}
}

/* Move the branch from parent (NULL: unborn) to oid, only if it is still at
 * parent (another writer or a hand who moved it meanwhile is not overrun).
 * The objects oid names must be durable already (publish()). */
static int move_head(hub_audit *a, const git_oid *oid, const git_oid *parent)
{
	git_reference *ref = NULL;
	char lock[4200];
	int gerr;

	if ((size_t)snprintf(lock, sizeof(lock), "%s" AUDIT_REF ".lock",
			     git_repository_path(a->repo)) < sizeof(lock))
		clear_dead_lock(lock);
	fault_at_ref(0);
	gerr = git_reference_create_matching(&ref, a->repo, AUDIT_REF, oid, parent != NULL, parent,
					     "relasi-hub audit");
	git_reference_free(ref);
	if (gerr < 0)
		return hub_git_fail(gerr, "moving " AUDIT_REF " (was it moved by hand?)");
	fault_at_ref(1);
	return RL_OK;
}

static int write_commit(hub_audit *a, rl_store *s, const struct unit *u, git_tree *tree,
			const char *message, git_commit *parent, git_oid *out)
{
	git_signature *author = NULL, *committer = NULL;
	const git_commit *parents[1];
	git_oid oid;
	int error, gerr;

	parents[0] = parent;
	if ((error = make_signatures(s, u, &author, &committer)) < 0)
		return error;
	gerr = git_commit_create(&oid, a->wr, NULL, author, committer, NULL, message, tree,
				 parent ? 1 : 0, parents);
	git_signature_free(author);
	git_signature_free(committer);
	if (gerr < 0)
		return hub_git_fail(gerr, "writing a commit");
	git_oid_cpy(out, &oid);
	return RL_OK;
}

/* One commit for log entries u->first..u->last on top of *head. */
static int write_unit(hub_audit *a, rl_store *s, const struct unit *u, git_oid *head)
{
	struct entry *es = NULL;
	size_t n = 0, *idx = NULL, i, j, nrec = 0, nup = 0;
	struct update *ups = NULL;
	git_tree_update *tu = NULL;
	git_commit *parent = NULL;
	git_tree *ptree = NULL, *tree = NULL;
	git_oid tree_oid;
	sqlite3_str *body = NULL;
	char *message = NULL, name[RL_MAX_NAME_BYTES + 1], login[RL_MAX_NAME_BYTES + 1];
	struct record r = { NULL, 0, 0 };
	int error, gerr, snap = 0;

	/* Everything this commit reads of the store, in one snapshot: a
	 * record's file is its stored row when its latest version is within
	 * the unit (unit_record), and a push committed between reading that
	 * version and the row put a later value into this commit (audit verify
	 * --deep: "not what its changes make of it"; the simulation, about one
	 * run of a seed in twenty). A read transaction in WAL mode keeps no
	 * writer waiting. A savepoint, as a caller may hold a transaction. */
	if (sqlite3_exec(rl_store_db(s), "SAVEPOINT audit_unit", NULL, NULL, NULL) != SQLITE_OK) {
		error = rl_store_error(s, "reading the store for the history");
		goto cleanup;
	}
	snap = 1;
	if ((gerr = git_commit_lookup(&parent, a->wr, head)) < 0 ||
	    (gerr = git_commit_tree(&ptree, parent)) < 0) {
		error = hub_git_fail(gerr, "reading HEAD");
		goto cleanup;
	}
	if ((error = read_entries(s, u->first, u->last, &es, &n)) < 0)
		goto cleanup;
	if (!(idx = malloc((n ? n : 1) * sizeof(*idx))) ||
	    !(ups = calloc(n ? n : 1, sizeof(*ups))) || !(tu = calloc(n ? n : 1, sizeof(*tu)))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < n; i++)
		idx[i] = i;
	sort_base = es;            /* callers hold the audit lock: one sort at a time */
	qsort(idx, n, sizeof(*idx), entry_order);
	body = sqlite3_str_new(NULL);
	for (i = 0; i < n; i = j) {
		const struct entry *e0 = &es[idx[i]];
		const struct rl_table *t = rl_model_table(e0->tbl);
		char *text = NULL;
		size_t len, k;
		const char *label;

		for (j = i + 1; j < n && strcmp(es[idx[j]].tbl, e0->tbl) == 0 &&
		     strcmp(es[idx[j]].row, e0->row) == 0; j++)
			;
		if (record_path(ups[nup].path, sizeof(ups[nup].path), e0->tbl, e0->row) < 0) {
			/* Not a synced record: an event of the hub's own tables
			 * (hub_log_event: a device enrolled or revoked, a token
			 * made), which has no file — the tree is the synced
			 * tables, as audit verify compares them with the store —
			 * so the body says it, values and all (ids, a token's id
			 * prefix, times, a device name checked printable). */
			sqlite3_str_appendf(body, "%s %s:", e0->tbl, e0->row);
			for (k = i; k < j; k++)
				sqlite3_str_appendf(body, " %s=%s", es[idx[k]].field,
						    es[idx[k]].value ? es[idx[k]].value : "");
			sqlite3_str_appendchar(body, 1, '\n');
			continue;
		}
		record_clear(&r);
		if ((error = unit_record(a, s, ptree, ups[nup].path, es, idx, i, j, u->last, 0, &r)) < 0 ||
		    (error = record_render(&r, &text, &len)) < 0)
			goto cleanup;
		if (len == 0) {
			ups[nup].remove = 1;
		} else if ((gerr = git_blob_create_from_buffer(&ups[nup].oid, a->wr, text, len)) < 0) {
			sqlite3_free(text);
			error = hub_git_fail(gerr, "writing a record");
			goto cleanup;
		}
		sqlite3_free(text);
		nup++;
		nrec++;
		if (nrec <= AUDIT_BODY_RECORDS) {
			char cut[61];
			label = t && t->label_field ? record_get(&r, t->label_field) : NULL;
			if (label) {
				snprintf(cut, sizeof(cut), "%s", label);
				utf8_clean(cut);
			}
			sqlite3_str_appendf(body, "%s %.12s%s%s%s:", e0->tbl, e0->row,
					    label ? " (" : "", label ? cut : "", label ? ")" : "");
			for (k = i; k < j; k++) {
				size_t m;
				for (m = i; m < k; m++)   /* each field once */
					if (strcmp(es[idx[m]].field, es[idx[k]].field) == 0)
						break;
				if (m == k)
					sqlite3_str_appendf(body, " %s", es[idx[k]].field);
			}
			sqlite3_str_appendchar(body, 1, '\n');
		}
	}
	if (nrec > AUDIT_BODY_RECORDS)
		sqlite3_str_appendf(body, "... and %lld more records\n",
				    (long long)(nrec - AUDIT_BODY_RECORDS));
	/* A record that rendered empty is removed only if it was there. */
	for (i = j = 0; i < nup; i++) {
		if (ups[i].remove) {
			int found;
			if ((error = tree_record(a, ptree, ups[i].path, NULL, &found, NULL)) < 0)
				goto cleanup;
			if (!found)
				continue;
		}
		ups[j++] = ups[i];
	}
	nup = j;
	qsort(ups, nup, sizeof(*ups), update_order);
	for (i = 0; i < nup; i++) {
		tu[i].action = ups[i].remove ? GIT_TREE_UPDATE_REMOVE : GIT_TREE_UPDATE_UPSERT;
		git_oid_cpy(&tu[i].id, &ups[i].oid);
		tu[i].filemode = GIT_FILEMODE_BLOB;
		tu[i].path = ups[i].path;
	}
	if ((gerr = git_tree_create_updated(&tree_oid, a->wr, ptree, nup, tu)) < 0 ||
	    (gerr = git_tree_lookup(&tree, a->wr, &tree_oid)) < 0) {
		error = hub_git_fail(gerr, "writing a tree");
		goto cleanup;
	}

	/* The message: summary, records, trailers. */
	{
		sqlite3_str *m = sqlite3_str_new(NULL);
		char *btext;
		user_names(s, u->user, name, sizeof(name), login, sizeof(login));
		if (strcmp(u->device, "hub") == 0)
			sqlite3_str_appendall(m, "hub: ");
		else
			sqlite3_str_appendf(m, "%s: ", login[0] ? login : u->device);
		/* An event alone (nothing synced changed) is said by its note. */
		if (u->note[0] && nrec == 0 && !u->conflicts) {
			sqlite3_str_appendall(m, u->note);
		} else {
			if (u->note[0])
				sqlite3_str_appendf(m, "%s (", u->note);
			sqlite3_str_appendf(m, "%lld change%s to %lld record%s", (long long)n,
					    n == 1 ? "" : "s", (long long)nrec, nrec == 1 ? "" : "s");
			if (u->conflicts)
				sqlite3_str_appendf(m, " (%ld conflict%s)", u->conflicts,
						    u->conflicts == 1 ? "" : "s");
			if (u->note[0])
				sqlite3_str_appendchar(m, 1, ')');
		}
		btext = sqlite3_str_finish(body);
		body = NULL;
		sqlite3_str_appendf(m, "\n\n%s\n", btext ? btext : "");
		sqlite3_free(btext);
		sqlite3_str_appendf(m, "Relasi-Seq: %lld..%lld\nRelasi-Kind: %s\nRelasi-Device: %s\n",
				    u->first, u->last, u->kind, u->device);
		if (login[0])
			sqlite3_str_appendf(m, "Relasi-User: %s\n", login);
		if (u->batch > 0)
			sqlite3_str_appendf(m, "Relasi-Batch: %lld\n", u->batch);
		if (sqlite3_str_errcode(m) != SQLITE_OK) {
			sqlite3_free(sqlite3_str_finish(m));
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto cleanup;
		}
		message = sqlite3_str_finish(m);
	}
	error = write_commit(a, s, u, tree, message, parent, head);
cleanup:
	/* Only read: releasing it ends the snapshot (or returns to the
	 * caller's transaction). */
	if (snap && sqlite3_exec(rl_store_db(s), "RELEASE audit_unit", NULL, NULL, NULL) != SQLITE_OK &&
	    error == 0)
		error = rl_store_error(s, "reading the store for the history");
	record_clear(&r);
	if (body)
		sqlite3_free(sqlite3_str_finish(body));
	sqlite3_free(message);
	git_tree_free(tree);
	git_tree_free(ptree);
	git_commit_free(parent);
	entries_free(es, n);
	free(idx);
	free(ups);
	free(tu);
	return error;
}

/* Pack what the buffer holds when it holds much, before the commit that
 * will name it (nothing is published). */
static int spill(hub_audit *a)
{
	if (hub_audit_odb_bytes(a->buf) < AUDIT_BUFFER_MAX)
		return RL_OK;
	return hub_audit_odb_flush(a->buf);
}

/* The root commit: every record of the store as of its last seq, read in
 * one transaction (a consistent snapshot while devices keep pushing). */
static int write_baseline(hub_audit *a, rl_store *s, long long *seq, git_oid *head)
{
	sqlite3 *db = rl_store_db(s);
	git_treebuilder *tb = NULL;
	git_tree *tree = NULL;
	git_oid oid;
	struct update *ups = NULL;
	git_tree_update *tu = NULL;
	struct record r = { NULL, 0, 0 };
	struct unit u;
	size_t nup = 0, total = 0, i;
	char *message = NULL;
	int error = RL_OK, gerr, t, in_tx = 0;

	memset(&u, 0, sizeof(u));
	snprintf(u.device, sizeof(u.device), "hub");
	snprintf(u.kind, sizeof(u.kind), "admin");
	if (!(ups = calloc(AUDIT_BASELINE_CHUNK, sizeof(*ups))) ||
	    !(tu = calloc(AUDIT_BASELINE_CHUNK, sizeof(*tu)))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	/* libgit2 knows the empty tree without reading it; it is written only
	 * if the baseline stays empty (else git fsck calls it dangling). */
	if ((gerr = git_oid_fromstr(&oid, "4b825dc642cb6eb9a060e54bf8d69288fbee4904")) < 0 ||
	    (gerr = git_tree_lookup(&tree, a->wr, &oid)) < 0) {
		error = hub_git_fail(gerr, "reading the empty tree");
		goto cleanup;
	}
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		error = rl_store_error(s, "reading the store for the history");
		goto cleanup;
	}
	in_tx = 1;
	if ((error = hub_log_last(s, seq)) < 0)
		goto cleanup;
	for (t = 0; audit_tables[t]; t++) {
		char *sql = sqlite3_mprintf("SELECT id FROM \"%w\" ORDER BY id", audit_tables[t]);
		sqlite3_stmt *st;
		int rc;
		if (!sql) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto cleanup;
		}
		rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
		sqlite3_free(sql);
		if (rc != SQLITE_OK) {
			error = rl_store_error(s, "reading the store for the history");
			goto cleanup;
		}
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *id = (const char *)sqlite3_column_text(st, 0);
			char *text = NULL;
			size_t len;
			int found;
			if (!id || record_path(ups[nup].path, sizeof(ups[nup].path), audit_tables[t], id) < 0)
				continue;
			record_clear(&r);
			if ((error = row_record(s, audit_tables[t], id, &r, &found)) < 0 ||
			    (error = record_render(&r, &text, &len)) < 0)
				break;
			gerr = len ? git_blob_create_from_buffer(&ups[nup].oid, a->wr, text, len) : 0;
			sqlite3_free(text);
			if (gerr < 0) {
				error = hub_git_fail(gerr, "writing a record");
				break;
			}
			if (!len)
				continue;
			total++;
			if (++nup == AUDIT_BASELINE_CHUNK) {
				git_tree *next;
				for (i = 0; i < nup; i++) {
					tu[i].action = GIT_TREE_UPDATE_UPSERT;
					git_oid_cpy(&tu[i].id, &ups[i].oid);
					tu[i].filemode = GIT_FILEMODE_BLOB;
					tu[i].path = ups[i].path;
				}
				if ((gerr = git_tree_create_updated(&oid, a->wr, tree, nup, tu)) < 0 ||
				    (gerr = git_tree_lookup(&next, a->wr, &oid)) < 0) {
					error = hub_git_fail(gerr, "writing a tree");
					break;
				}
				git_tree_free(tree);
				tree = next;
				nup = 0;
				if ((error = spill(a)) < 0)
					break;
			}
		}
		if (error == 0 && rc != SQLITE_DONE)
			error = rl_store_error(s, "reading the store for the history");
		sqlite3_finalize(st);
		if (error < 0)
			goto cleanup;
	}
	if (nup) {
		git_tree *next;
		for (i = 0; i < nup; i++) {
			tu[i].action = GIT_TREE_UPDATE_UPSERT;
			git_oid_cpy(&tu[i].id, &ups[i].oid);
			tu[i].filemode = GIT_FILEMODE_BLOB;
			tu[i].path = ups[i].path;
		}
		if ((gerr = git_tree_create_updated(&oid, a->wr, tree, nup, tu)) < 0 ||
		    (gerr = git_tree_lookup(&next, a->wr, &oid)) < 0) {
			error = hub_git_fail(gerr, "writing a tree");
			goto cleanup;
		}
		git_tree_free(tree);
		tree = next;
	}
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	in_tx = 0;
	if (total == 0 && ((gerr = git_treebuilder_new(&tb, a->wr, NULL)) < 0 ||
			   (gerr = git_treebuilder_write(&oid, tb)) < 0)) {
		error = hub_git_fail(gerr, "writing the empty tree");
		goto cleanup;
	}
	rl_time_format_utc(u.at, rl_store_now_ms(s) / 1000);
	if (!(message = sqlite3_mprintf("baseline: %lld records as of change %lld\n\n"
					"Every record the store held when the history began.\n\n"
					"Relasi-Baseline: %lld\nRelasi-Kind: admin\nRelasi-Device: hub\n",
					(long long)total, *seq, *seq))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	error = write_commit(a, s, &u, tree, message, NULL, head);
cleanup:
	if (in_tx)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	record_clear(&r);
	sqlite3_free(message);
	git_treebuilder_free(tb);
	git_tree_free(tree);
	free(ups);
	free(tu);
	return error;
}

/* ---- catching up --------------------------------------------------------------------- */

/* The next unit after seq cur (one commit's worth), or *none. */
static int next_unit(rl_store *s, long long cur, long long top, struct unit *u, int *none)
{
	sqlite3_stmt *st;
	int error, rc, have;

	memset(u, 0, sizeof(*u));
	*none = 0;
	if (cur >= top) {
		*none = 1;
		return RL_OK;
	}
	if ((error = rl_store_prepare(s, "SELECT last_seq, first_seq, kind, device, user_id, batch, "
				      "conflicts, at, note FROM hub_audit_units WHERE last_seq > ?1 "
				      "ORDER BY last_seq LIMIT 1", &st)) < 0)
		return error;
	sqlite3_bind_int64(st, 1, cur);
	rc = sqlite3_step(st);
	have = rc == SQLITE_ROW && sqlite3_column_int64(st, 1) <= cur + 1;
	if (have) {
		u->last = sqlite3_column_int64(st, 0);
		u->first = cur + 1;
		snprintf(u->kind, sizeof(u->kind), "%s", (const char *)sqlite3_column_text(st, 2));
		snprintf(u->device, sizeof(u->device), "%s", (const char *)sqlite3_column_text(st, 3));
		if (sqlite3_column_text(st, 4))
			snprintf(u->user, sizeof(u->user), "%s", (const char *)sqlite3_column_text(st, 4));
		u->batch = sqlite3_column_int64(st, 5);
		u->conflicts = (long)sqlite3_column_int64(st, 6);
		snprintf(u->at, sizeof(u->at), "%s", (const char *)sqlite3_column_text(st, 7));
		if (sqlite3_column_text(st, 8)) {
			/* a note may hold a name cut inside a character (user add) */
			snprintf(u->note, sizeof(u->note), "%s", (const char *)sqlite3_column_text(st, 8));
			utf8_clean(u->note);
		}
	} else if (rc == SQLITE_ROW) {
		top = sqlite3_column_int64(st, 1) - 1;     /* uncovered entries before it */
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return rl_store_error(s, "reading audit units");
	if (have)
		return RL_OK;
	/* Entries no unit covers: one commit per run of the same device and
	 * user, at most AUDIT_MAX_UNCOVERED entries. */
	if ((error = rl_store_prepare(s, "SELECT seq, device, coalesce(user_id, ''), at FROM hub_log "
				      "WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3", &st)) < 0)
		return error;
	sqlite3_bind_int64(st, 1, cur);
	sqlite3_bind_int64(st, 2, top);
	sqlite3_bind_int64(st, 3, AUDIT_MAX_UNCOVERED);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *dev = (const char *)sqlite3_column_text(st, 1);
		const char *usr = (const char *)sqlite3_column_text(st, 2);
		if (!u->first) {
			u->first = sqlite3_column_int64(st, 0);
			snprintf(u->device, sizeof(u->device), "%s", dev);
			snprintf(u->user, sizeof(u->user), "%s", usr);
			snprintf(u->at, sizeof(u->at), "%s", (const char *)sqlite3_column_text(st, 3));
			snprintf(u->kind, sizeof(u->kind), strcmp(dev, "hub") == 0 ? "admin" : "batch");
		} else if (strcmp(dev, u->device) != 0 || strcmp(usr, u->user) != 0) {
			break;
		}
		u->last = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return rl_store_error(s, "reading the hub log");
	if (!u->first) {
		*none = 1;
		return RL_OK;
	}
	/* Gaps in seq (none today) are inside the range: u->first = cur + 1. */
	u->first = cur + 1;
	return RL_OK;
}

/*
 * HEAD differs from the store's record: adopt it when it is our own work
 * that a crash left unrecorded — a first-parent chain of our commits from
 * the recorded head with contiguous seqs, ending within hub_log. Else the
 * history was rewritten: RL_ESTORE saying how.
 */
static int adopt_head(hub_audit *a, rl_store *s, const git_oid *head, long long rseq,
		      const git_oid *rhead, long long *seq)
{
	git_commit *c = NULL, *p = NULL;
	struct commit_info ci;
	long long top, expect_last = -1;
	int error = RL_OK, gerr, steps;

	if ((error = hub_log_last(s, &top)) < 0)
		return error;
	if ((gerr = git_commit_lookup(&c, a->repo, head)) < 0)
		return hub_git_fail(gerr, "reading HEAD");
	for (steps = 0; steps < AUDIT_ADOPT_MAX; steps++) {
		if (git_oid_equal(git_commit_id(c), rhead))
			break;
		if (git_commit_parentcount(c) != 1 || commit_info(c, &ci) < 0 || ci.baseline ||
		    (expect_last >= 0 && ci.last != expect_last) || ci.last > top) {
			error = -1;
			break;
		}
		if (steps == 0)
			*seq = ci.last;
		expect_last = ci.first - 1;
		if ((gerr = git_commit_parent(&p, c, 0)) < 0) {
			error = -1;
			break;
		}
		git_commit_free(c);
		c = p;
		p = NULL;
	}
	if (error == 0 && (steps == AUDIT_ADOPT_MAX || expect_last != rseq))
		error = -1;
	git_commit_free(c);
	if (error == 0)
		return RL_OK;
	{
		char hh[GIT_OID_HEXSZ + 1], rh[GIT_OID_HEXSZ + 1];
		git_oid_tostr(hh, sizeof(hh), head);
		git_oid_tostr(rh, sizeof(rh), rhead);
		if (git_graph_descendant_of(a->repo, rhead, head) == 1)
			return rl_error_set(RL_ESTORE, "the audit history was cut back: HEAD is %.12s, "
					    "but the store recorded %.12s (change %lld) after it; "
					    "run relasi-hub audit verify", hh, rh, rseq);
		return rl_error_set(RL_ESTORE, "the audit history was rewritten: HEAD is %.12s, "
				    "which does not continue %.12s (change %lld) that the store recorded; "
				    "run relasi-hub audit verify", hh, rh, rseq);
	}
}

/*
 * Make commits up to head public: their objects into one durable pack,
 * then the ref from *from (NULL: unborn) to head, then the store's record
 * (seq). A crash before the ref moved leaves only unreferenced objects in
 * a pack (the commits are written again from hub_log); one after it, a
 * HEAD ahead of the record that the next writer adopts.
 */
static int publish(hub_audit *a, rl_store *s, long long seq, const git_oid *head,
		   const git_oid *from)
{
	int error;

	if ((error = hub_audit_odb_flush(a->buf)) < 0 ||
	    (error = move_head(a, head, from)) < 0)
		return error;
	return record_head(a, s, seq, head);
}

static int catch_up_locked(hub_audit *a, rl_store *s, long *written)
{
	git_oid head, rhead, pub;
	long long rseq = 0, cur, top;
	int found, have_head, error, since = 0;

	if ((error = recorded_head(s, &found, &rseq, &rhead)) < 0 ||
	    (error = repo_head(a, &have_head, &head)) < 0)
		return error;
	if ((error = hub_audit_odb_new(&a->buf, a->repo)) < 0)
		return error;
	a->wr = hub_audit_odb_repo(a->buf);
	if (!found) {
		if (have_head) {
			error = rl_error_set(RL_ESTORE, "audit.git has a history the store never "
					     "recorded; run relasi-hub audit verify");
			goto cleanup;
		}
		if ((error = write_baseline(a, s, &cur, &head)) < 0 ||
		    (error = publish(a, s, cur, &head, NULL)) < 0)
			goto cleanup;
		(*written)++;
	} else {
		if (!have_head) {
			error = rl_error_set(RL_ESTORE, "the audit history is gone: audit.git has no "
					     "%s, but the store recorded commit %s", AUDIT_REF,
					     git_oid_tostr_s(&rhead));
			goto cleanup;
		}
		cur = rseq;
		if (!git_oid_equal(&head, &rhead)) {
			if ((error = adopt_head(a, s, &head, rseq, &rhead, &cur)) < 0 ||
			    (error = record_head(a, s, cur, &head)) < 0)
				goto cleanup;
		}
	}
	git_oid_cpy(&pub, &head);
	for (;;) {
		struct unit u;
		int none;
		if ((error = hub_log_last(s, &top)) < 0 || (error = next_unit(s, cur, top, &u, &none)) < 0)
			break;
		if (none)
			break;
		if ((error = write_unit(a, s, &u, &head)) < 0)
			break;
		cur = u.last;
		(*written)++;
		if (++since == AUDIT_PUBLISH_EVERY ||
		    hub_audit_odb_bytes(a->buf) >= AUDIT_BUFFER_MAX) {
			error = publish(a, s, cur, &head, &pub);
			git_oid_cpy(&pub, &head);
			since = 0;             /* failed: not again below, its error stands */
			if (error < 0)
				break;
		}
	}
	if (since) {
		/* Publish what was written even when a later step failed. */
		int e2 = publish(a, s, cur, &head, &pub);
		if (error == 0)
			error = e2;
	}
cleanup:
	a->wr = a->repo;
	hub_audit_odb_free(a->buf);     /* what was not published is dropped */
	a->buf = NULL;
	return error;
}

/* Pack (audit_pack.c) under the lock; a handle that may hold a removed pack
 * open is replaced. */
static int pack_locked(hub_audit *a, int all, const struct hub_audit_pack_limits *lim,
		       struct hub_audit_pack_stats *st)
{
	git_repository *repo;
	char path[4096];
	int error, gerr;

	if ((error = hub_audit_pack_repo(a->repo, all, lim, st)) < 0 || !st->changed)
		return error;
	if ((error = hub_path(path, sizeof(path), a->dir, HUB_AUDIT_DIR)) < 0)
		return error;
	if ((gerr = git_repository_open_bare(&repo, path)) < 0)
		return hub_git_fail(gerr, "reopening audit.git after packing it");
	git_repository_free(a->repo);
	a->repo = repo;
	a->wr = repo;
	return RL_OK;
}

int hub_audit_catch_up(hub_audit *a, rl_store *s, long *written)
{
	long dummy = 0;
	int error;

	if (!written)
		written = &dummy;
	*written = 0;
	if ((error = audit_lock(a)) < 0)
		return error;
	error = catch_up_locked(a, s, written);
	audit_unlock(a);
	return error;
}

int hub_audit_maintain(hub_audit *a, int busy, struct hub_audit_pack_stats *st)
{
	struct hub_audit_pack_limits lim = a->pack;
	int error;

	/* Busy: only the packs the writer makes, one per publish, are bounded
	 * (object lookups try the packs in turn); loose objects wait. */
	if (busy) {
		lim.loose_max = 1000000000;
		lim.packs_max = AUDIT_BUSY_PACKS * (lim.packs_max > 0 ? lim.packs_max
								   : HUB_AUDIT_PACKS_MAX);
	}
	if ((error = audit_lock(a)) < 0)
		return error;
	error = pack_locked(a, 0, &lim, st);
	audit_unlock(a);
	return error;
}

void hub_audit_set_pack_limits(hub_audit *a, long loose_max, int packs_max, const int *cancel)
{
	a->pack.loose_max = loose_max;
	a->pack.packs_max = packs_max;
	a->pack.cancel = cancel;
}

int hub_audit_pack(hub_audit *a, rl_store *s, struct hub_audit_pack_stats *st)
{
	long written = 0;
	int error;

	if ((error = audit_lock(a)) < 0)
		return error;
	if ((error = catch_up_locked(a, s, &written)) == 0)
		error = pack_locked(a, 1, &a->pack, st);
	audit_unlock(a);
	return error;
}

int hub_audit_sync(const char *dir, rl_store *s, int create)
{
	hub_audit *a = NULL;
	int error;

	if ((error = hub_audit_open(&a, dir, create)) < 0)
		return error;
	error = hub_audit_catch_up(a, s, NULL);
	hub_audit_free(a);
	return error;
}

/* ---- history of one record ---------------------------------------------------------------- */

static json_t *opt_string(const char *s)
{
	return s ? json_text(s) : json_null();
}

int hub_audit_history(hub_audit *a, const char *tbl, const char *row, const char *field,
		      json_t **out)
{
	git_revwalk *walk = NULL;
	git_commit *c = NULL, *p = NULL;
	git_tree *t = NULL, *pt = NULL;
	json_t *list = NULL;
	char path[96];
	git_oid oid;
	int error, gerr;

	*out = NULL;
	if ((error = record_path(path, sizeof(path), tbl, row)) < 0)
		return error;
	if (!(list = json_array()))
		return rl_error_set(RL_ENOMEM, "out of memory");
	if ((gerr = git_revwalk_new(&walk, a->repo)) < 0 ||
	    (gerr = git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL)) < 0 ||
	    (gerr = git_revwalk_push_ref(walk, AUDIT_REF)) < 0) {
		error = hub_git_fail(gerr, "walking the history");
		goto cleanup;
	}
	git_revwalk_simplify_first_parent(walk);
	while ((gerr = git_revwalk_next(&oid, walk)) == 0) {
		struct record now = { NULL, 0, 0 }, before = { NULL, 0, 0 };
		git_oid a_oid, b_oid;
		int has_now, has_before;
		size_t i, k;

		if ((gerr = git_commit_lookup(&c, a->repo, &oid)) < 0 ||
		    (gerr = git_commit_tree(&t, c)) < 0) {
			error = hub_git_fail(gerr, "reading a commit");
			goto cleanup;
		}
		if (git_commit_parentcount(c) > 0 &&
		    ((gerr = git_commit_parent(&p, c, 0)) < 0 || (gerr = git_commit_tree(&pt, p)) < 0)) {
			error = hub_git_fail(gerr, "reading a commit");
			goto cleanup;
		}
		/* Unchanged at this path: nothing to read. */
		if ((error = tree_record(a, t, path, NULL, &has_now, &a_oid)) < 0 ||
		    (error = tree_record(a, pt, path, NULL, &has_before, &b_oid)) < 0)
			goto cleanup;
		if (has_now != has_before || (has_now && !git_oid_equal(&a_oid, &b_oid))) {
			const git_signature *au = git_commit_author(c);
			struct commit_info ci;
			char when[21];
			if (commit_info(c, &ci) < 0)
				memset(&ci, 0, sizeof(ci));
			rl_time_format_utc(when, (int64_t)au->when.time);
			if ((error = tree_record(a, t, path, &now, &has_now, NULL)) < 0 ||
			    (error = tree_record(a, pt, path, &before, &has_before, NULL)) < 0) {
				record_clear(&now);
				record_clear(&before);
				goto cleanup;
			}
			if (now.n)
				qsort(now.f, now.n, sizeof(*now.f), field_cmp);
			if (before.n)
				qsort(before.f, before.n, sizeof(*before.f), field_cmp);
			/* Every field name of either version, in order. */
			for (i = 0, k = 0; i < now.n || k < before.n;) {
				int cmp = i >= now.n ? 1 : k >= before.n ? -1
					  : strcmp(now.f[i].name, before.f[k].name);
				const char *name = cmp <= 0 ? now.f[i].name : before.f[k].name;
				const char *nv = cmp <= 0 ? now.f[i].value : NULL;
				const char *ov = cmp >= 0 ? before.f[k].value : NULL;
				json_t *o;
				if (cmp <= 0)
					i++;
				if (cmp >= 0)
					k++;
				if ((nv && ov && strcmp(nv, ov) == 0) || (field && strcmp(field, name) != 0))
					continue;
				o = json_pack("{s:s, s:o, s:o, s:o, s:s, s:o, s:o, s:s, s:o}",
					      "at", when, "who", json_text(ci.user[0] ? ci.user
					      : ci.baseline ? "hub" : ci.device[0] ? ci.device : "?"),
					      "author", json_text(au->name ? au->name : ""),
					      "device", json_text(ci.device),
					      "field", name, "old", opt_string(ov), "new", opt_string(nv),
					      "commit", git_oid_tostr_s(git_commit_id(c)),
					      "summary", json_text(git_commit_summary(c) ? git_commit_summary(c)
								   : ""));
				if (!o || json_array_append_new(list, o) < 0) {
					error = rl_error_set(RL_ENOMEM, "out of memory");
					break;
				}
			}
			record_clear(&now);
			record_clear(&before);
			if (error < 0)
				goto cleanup;
		}
		git_tree_free(t);
		git_tree_free(pt);
		git_commit_free(c);
		git_commit_free(p);
		t = pt = NULL;
		c = p = NULL;
	}
	if (gerr != GIT_ITEROVER) {
		error = hub_git_fail(gerr, "walking the history");
		goto cleanup;
	}
	*out = list;
	list = NULL;
cleanup:
	git_tree_free(t);
	git_tree_free(pt);
	git_commit_free(c);
	git_commit_free(p);
	git_revwalk_free(walk);
	json_decref(list);
	return error;
}

/* ---- verify --------------------------------------------------------------------------------- */

struct verify {
	sqlite3_str *problems;
	long nproblems;
	long records, commits;
};

static void problem(struct verify *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct verify *v, const char *fmt, ...)
{
	va_list ap;

	if (++v->nproblems > AUDIT_SHOW_PROBLEMS)
		return;
	va_start(ap, fmt);
	sqlite3_str_appendall(v->problems, "\n  - ");
	sqlite3_str_vappendf(v->problems, fmt, ap);
	va_end(ap);
}

/* What differs between the record at HEAD and the store's. */
static void describe_diff(struct verify *v, const char *path, struct record *git,
			  struct record *store)
{
	size_t i;

	for (i = 0; i < store->n; i++) {
		const char *g = record_get(git, store->f[i].name);
		if (!g || strcmp(g, store->f[i].value) != 0) {
			problem(v, "%s: the history says %s = %s%s%s, the store has \"%.80s\"", path,
				store->f[i].name, g ? "\"" : "", g ? g : "nothing", g ? "\"" : "",
				store->f[i].value);
			return;
		}
	}
	for (i = 0; i < git->n; i++)
		if (!record_get(store, git->f[i].name)) {
			problem(v, "%s: the history says %s = \"%.80s\", the store has nothing", path,
				git->f[i].name, git->f[i].value);
			return;
		}
	problem(v, "%s: the file differs from the store's record in form", path);
}

/* The chain from HEAD down to the root: linear, our trailers, contiguous. */
static int verify_chain(hub_audit *a, const git_oid *head, long long rseq, struct verify *v)
{
	git_commit *c = NULL, *p = NULL;
	struct commit_info ci;
	long long expect_last = rseq;
	int gerr;

	if ((gerr = git_commit_lookup(&c, a->repo, head)) < 0)
		return hub_git_fail(gerr, "reading HEAD");
	for (;;) {
		const char *id = git_oid_tostr_s(git_commit_id(c));
		v->commits++;
		if (commit_info(c, &ci) < 0) {
			problem(v, "commit %.12s is not the hub's: %s", id, rl_error_message());
			break;
		}
		if (git_commit_parentcount(c) > 1)
			problem(v, "commit %.12s is a merge: the history is one line", id);
		if (ci.last != expect_last)
			problem(v, "commit %.12s holds changes up to %lld, but the next one starts after "
				"%lld: commits were added, removed or rewritten", id, ci.last, expect_last);
		if (ci.baseline) {
			if (git_commit_parentcount(c) != 0)
				problem(v, "commit %.12s claims to be the first but has a parent", id);
			break;
		}
		if (git_commit_parentcount(c) == 0) {
			problem(v, "commit %.12s has no parent but is no baseline", id);
			break;
		}
		expect_last = ci.first - 1;
		if ((gerr = git_commit_parent(&p, c, 0)) < 0) {
			problem(v, "commit %.12s: its parent is missing", id);
			break;
		}
		git_commit_free(c);
		c = p;
		p = NULL;
	}
	git_commit_free(c);
	return RL_OK;
}

struct walk_ctx {
	rl_store *s;
	struct verify *v;
	long blobs;
	int error;
};

/* Every file of the tree must be a record the store has. */
static int walk_cb(const char *root, const git_tree_entry *te, void *payload)
{
	struct walk_ctx *w = payload;
	const char *name = git_tree_entry_name(te);
	char tbl[64], path[160], expect[96];
	const struct rl_table *t;
	sqlite3_stmt *st;
	char *sql;
	int rc;

	snprintf(path, sizeof(path), "%s%s", root, name);
	if (git_tree_entry_type(te) == GIT_OBJECT_TREE)
		return 0;
	w->blobs++;
	snprintf(tbl, sizeof(tbl), "%.*s", (int)strcspn(root, "/"), root);
	t = rl_model_table(tbl);
	if (!t || strcmp(t->name, tbl) != 0 ||
	    record_path(expect, sizeof(expect), tbl, name) < 0 || strcmp(expect, path) != 0) {
		problem(w->v, "%s: a file that is no record", path);
		return 0;
	}
	if (!(sql = sqlite3_mprintf("SELECT 1 FROM \"%w\" WHERE id = ?1", tbl))) {
		w->error = rl_error_set(RL_ENOMEM, "out of memory");
		return -1;
	}
	w->error = rl_store_prepare(w->s, sql, &st);
	sqlite3_free(sql);
	if (w->error < 0)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		problem(w->v, "%s: the history has a record the store does not", path);
	else if (rc != SQLITE_ROW) {
		w->error = rl_store_error(w->s, "reading the store");
		return -1;
	}
	return 0;
}

/* The tree at HEAD against every record of the store (inside a read
 * transaction the caller holds). */
static int verify_tree(hub_audit *a, rl_store *s, const git_oid *head, struct verify *v)
{
	git_commit *c = NULL;
	git_tree *tree = NULL;
	struct walk_ctx w = { s, v, 0, 0 };
	int error = RL_OK, gerr, t;

	if ((gerr = git_commit_lookup(&c, a->repo, head)) < 0 || (gerr = git_commit_tree(&tree, c)) < 0) {
		error = hub_git_fail(gerr, "reading HEAD");
		goto cleanup;
	}
	for (t = 0; audit_tables[t] && error == 0; t++) {
		char *sql = sqlite3_mprintf("SELECT id FROM \"%w\" ORDER BY id", audit_tables[t]);
		sqlite3_stmt *st;
		int rc;
		if (!sql) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			break;
		}
		rc = sqlite3_prepare_v2(rl_store_db(s), sql, -1, &st, NULL);
		sqlite3_free(sql);
		if (rc != SQLITE_OK) {
			error = rl_store_error(s, "reading the store");
			break;
		}
		while ((rc = sqlite3_step(st)) == SQLITE_ROW && error == 0) {
			const char *id = (const char *)sqlite3_column_text(st, 0);
			struct record r = { NULL, 0, 0 }, g = { NULL, 0, 0 };
			char path[96], *text = NULL;
			size_t len;
			git_oid want, have;
			int found, in_git;
			if (!id || record_path(path, sizeof(path), audit_tables[t], id) < 0) {
				problem(v, "%s row '%s': an id the history cannot hold", audit_tables[t],
					id ? id : "");
				continue;
			}
			v->records++;
			if ((error = row_record(s, audit_tables[t], id, &r, &found)) < 0 ||
			    (error = record_render(&r, &text, &len)) < 0) {
				record_clear(&r);
				break;
			}
			git_odb_hash(&want, text, len, GIT_OBJECT_BLOB);
			sqlite3_free(text);
			if ((error = tree_record(a, tree, path, NULL, &in_git, &have)) < 0) {
				record_clear(&r);
				if (error != RL_EINVALID)
					break;
				problem(v, "%s: %s", path, rl_error_message());
				error = RL_OK;
				continue;
			}
			if (!in_git)
				problem(v, "%s: the store has this record, the history does not", path);
			else if (!git_oid_equal(&want, &have)) {
				if (tree_record(a, tree, path, &g, &in_git, NULL) < 0)
					problem(v, "%s: %s", path, rl_error_message());
				else
					describe_diff(v, path, &g, &r);
			}
			record_clear(&r);
			record_clear(&g);
		}
		if (error == 0 && rc != SQLITE_DONE)
			error = rl_store_error(s, "reading the store");
		sqlite3_finalize(st);
	}
	if (error == 0) {
		if (git_tree_walk(tree, GIT_TREEWALK_PRE, walk_cb, &w) < 0 && w.error < 0)
			error = w.error;
	}
cleanup:
	git_tree_free(tree);
	git_commit_free(c);
	return error;
}

static int path_order(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Whose a commit is, against the unit the log has for its changes: its
 * device and kind, the device in its author, its author date, and its
 * user's login (as the store has it now, or as of the commit: a login may
 * have been changed since). The files alone do not say who: an old commit
 * re-attributed to another rep, with everything after it re-made, passed.
 */
static int check_who(hub_audit *a, rl_store *s, git_commit *c, git_tree *t,
		     const struct commit_info *ci, struct verify *v, const char *cid)
{
	const git_signature *au = git_commit_author(c);
	char name[RL_MAX_NAME_BYTES + 1], login[RL_MAX_NAME_BYTES + 1], path[96], tail[96];
	struct record r = { NULL, 0, 0 };
	const char *then;
	struct unit u;
	int64_t when;
	int none, found, off, error;

	if ((error = next_unit(s, ci->first - 1, ci->last, &u, &none)) < 0)
		return error;
	if (none || u.last != ci->last)
		return RL_OK;             /* the chain check and the replay say what is wrong */
	if (strcmp(ci->device, u.device) != 0 || strcmp(ci->kind, u.kind) != 0) {
		problem(v, "commit %s: Relasi-Device %s, Relasi-Kind %s, but the log has changes "
			"%lld..%lld as %s from %s", cid, ci->device[0] ? ci->device : "none",
			ci->kind[0] ? ci->kind : "none", ci->first, ci->last, u.kind, u.device);
		return RL_OK;
	}
	snprintf(tail, sizeof(tail), ", device %s)", u.device);
	if (strcmp(u.device, "hub") == 0 ? strcmp(au->name, "relasi-hub") != 0
	    : strlen(au->name) < strlen(tail) ||
	      strcmp(au->name + strlen(au->name) - strlen(tail), tail) != 0) {
		problem(v, "commit %s: its author \"%.80s\" is not device %s, whose changes "
			"%lld..%lld it holds", cid, au->name, u.device, ci->first, ci->last);
		return RL_OK;
	}
	if (rl_time_parse(&when, &off, u.at, 0, 0) == 0 && (int64_t)au->when.time != when) {
		problem(v, "commit %s: its author date is not %s, when the hub took changes "
			"%lld..%lld", cid, u.at, ci->first, ci->last);
		return RL_OK;
	}
	if (strcmp(u.device, "hub") == 0)
		return RL_OK;             /* the hub's own: no user */
	user_names(s, u.user, name, sizeof(name), login, sizeof(login));
	if (strcmp(ci->user, login) == 0)
		return RL_OK;
	then = NULL;
	if (u.user[0] && record_path(path, sizeof(path), "users", u.user) == 0 &&
	    (error = tree_record(a, t, path, &r, &found, NULL)) == 0 && found)
		then = record_get(&r, "login");
	if (!then || strcmp(ci->user, then) != 0)
		problem(v, "commit %s: Relasi-User %s, but changes %lld..%lld are user %s's (%s)",
			cid, ci->user[0] ? ci->user : "none", ci->first, ci->last,
			login[0] ? login : "unknown", u.user[0] ? u.user : "no user id");
	record_clear(&r);
	return error == RL_EINVALID ? RL_OK : error;   /* a file not ours: the replay says */
}

/*
 * One commit replayed: its parent's files with its hub_log entries applied
 * must give exactly its files, and it may change no other path. Catches an
 * old commit rewritten together with everything after it and the store's
 * record of the head.
 */
static int replay_commit(hub_audit *a, rl_store *s, git_commit *c, struct verify *v)
{
	git_commit *p = NULL;
	git_tree *t = NULL, *pt = NULL;
	git_diff *diff = NULL;
	struct commit_info ci;
	struct entry *es = NULL;
	size_t n = 0, *idx = NULL, i, j, npaths = 0, d;
	char (*paths)[96] = NULL, **sorted = NULL;
	struct record r = { NULL, 0, 0 };
	const char *id = git_oid_tostr_s(git_commit_id(c));
	char cid[16];
	int error = RL_OK, gerr;

	snprintf(cid, sizeof(cid), "%.12s", id);
	if (commit_info(c, &ci) < 0 || ci.baseline || git_commit_parentcount(c) != 1)
		return RL_OK;                    /* the baseline; the chain check says the rest */
	if ((gerr = git_commit_parent(&p, c, 0)) < 0 || (gerr = git_commit_tree(&t, c)) < 0 ||
	    (gerr = git_commit_tree(&pt, p)) < 0) {
		error = hub_git_fail(gerr, "reading a commit");
		goto cleanup;
	}
	if ((error = check_who(a, s, c, t, &ci, v, cid)) < 0 ||
	    (error = read_entries(s, ci.first, ci.last, &es, &n)) < 0)
		goto cleanup;
	if (!(idx = malloc((n ? n : 1) * sizeof(*idx))) ||
	    !(paths = calloc(n ? n : 1, sizeof(*paths))) ||
	    !(sorted = calloc(n ? n : 1, sizeof(*sorted)))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < n; i++)
		idx[i] = i;
	sort_base = es;
	if (n)
		qsort(idx, n, sizeof(*idx), entry_order);
	for (i = 0; i < n; i = j) {
		const struct entry *e0 = &es[idx[i]];
		char *text = NULL;
		size_t len;
		git_oid want, have;
		int found;
		for (j = i + 1; j < n && strcmp(es[idx[j]].tbl, e0->tbl) == 0 &&
		     strcmp(es[idx[j]].row, e0->row) == 0; j++)
			;
		if (record_path(paths[npaths], sizeof(paths[npaths]), e0->tbl, e0->row) < 0)
			continue;
		record_clear(&r);
		error = unit_record(a, s, pt, paths[npaths], es, idx, i, j, ci.last, 1, &r);
		if (error == RL_EINVALID) {      /* the parent's file is not ours */
			problem(v, "commit %s: %s", cid, rl_error_message());
			error = RL_OK;
			npaths++;
			continue;
		}
		if (error < 0 || (error = record_render(&r, &text, &len)) < 0)
			goto cleanup;
		git_odb_hash(&want, text, len, GIT_OBJECT_BLOB);
		sqlite3_free(text);
		if ((error = tree_record(a, t, paths[npaths], NULL, &found, &have)) < 0 &&
		    error != RL_EINVALID)
			goto cleanup;
		if (error == RL_EINVALID || (len && !found) || (!len && found) ||
		    (len && found && !git_oid_equal(&want, &have)))
			problem(v, "commit %s: %s is not what its changes %lld..%lld make of it", cid,
				paths[npaths], ci.first, ci.last);
		error = RL_OK;
		sorted[npaths] = paths[npaths];
		npaths++;
	}
	for (i = 0; i < npaths; i++)
		sorted[i] = paths[i];
	if (npaths)
		qsort(sorted, npaths, sizeof(*sorted), path_order);
	if ((gerr = git_diff_tree_to_tree(&diff, a->repo, pt, t, NULL)) < 0) {
		error = hub_git_fail(gerr, "comparing two commits");
		goto cleanup;
	}
	for (d = 0; d < git_diff_num_deltas(diff); d++) {
		const git_diff_delta *dl = git_diff_get_delta(diff, d);
		const char *path = dl->new_file.path ? dl->new_file.path : dl->old_file.path;
		if (!path || !npaths || !bsearch(&path, sorted, npaths, sizeof(*sorted), path_order))
			problem(v, "commit %s changes %s, which its changes %lld..%lld do not touch", cid,
				path ? path : "?", ci.first, ci.last);
	}
cleanup:
	record_clear(&r);
	git_diff_free(diff);
	git_tree_free(t);
	git_tree_free(pt);
	git_commit_free(p);
	entries_free(es, n);
	free(idx);
	free(paths);
	free(sorted);
	return error;
}

/* Every commit from the baseline's child to HEAD, oldest first. */
static int verify_replay(hub_audit *a, rl_store *s, const git_oid *head, struct verify *v)
{
	git_revwalk *walk = NULL;
	git_commit *c = NULL;
	git_oid oid;
	int error = RL_OK, gerr;

	if ((gerr = git_revwalk_new(&walk, a->repo)) < 0 ||
	    (gerr = git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE)) < 0 ||
	    (gerr = git_revwalk_push(walk, head)) < 0) {
		error = hub_git_fail(gerr, "walking the history");
		goto cleanup;
	}
	git_revwalk_simplify_first_parent(walk);
	while ((gerr = git_revwalk_next(&oid, walk)) == 0) {
		if ((gerr = git_commit_lookup(&c, a->repo, &oid)) < 0) {
			error = hub_git_fail(gerr, "reading a commit");
			goto cleanup;
		}
		error = replay_commit(a, s, c, v);
		git_commit_free(c);
		c = NULL;
		if (error < 0)
			goto cleanup;
	}
	if (gerr != GIT_ITEROVER)
		error = hub_git_fail(gerr, "walking the history");
cleanup:
	git_revwalk_free(walk);
	return error;
}

/* DIR/last-backup.json: its audit_head must still be in the history. */
static int verify_backup(hub_audit *a, const git_oid *head, struct verify *v, json_t *report)
{
	char path[4096];
	json_t *j, *h;
	json_error_t jerr;
	git_oid oid;
	git_commit *c = NULL;
	struct stat sb;
	int error;

	if ((error = hub_path(path, sizeof(path), a->dir, HUB_LAST_BACKUP)) < 0)
		return error;
	if (stat(path, &sb) != 0) {
		json_object_set_new(report, "backup", json_string("none"));
		return RL_OK;
	}
	if (!(j = json_load_file(path, 0, &jerr))) {
		problem(v, "%s: %s", HUB_LAST_BACKUP, jerr.text);
		return RL_OK;
	}
	h = json_object_get(j, "audit_head");
	if (!json_is_string(h) || json_string_length(h) != GIT_OID_HEXSZ ||
	    git_oid_fromstr(&oid, json_string_value(h)) < 0) {
		problem(v, "%s: no audit_head of 40 hex digits", HUB_LAST_BACKUP);
	} else if (git_commit_lookup(&c, a->repo, &oid) < 0) {
		problem(v, "the last backup recorded audit head %.12s, which is no longer in audit.git: "
			"the history was rewritten since the backup", json_string_value(h));
	} else if (!git_oid_equal(&oid, head) && git_graph_descendant_of(a->repo, head, &oid) != 1) {
		problem(v, "the last backup recorded audit head %.12s, which is not an ancestor of HEAD: "
			"the history was rewritten since the backup", json_string_value(h));
	} else {
		json_object_set_new(report, "backup", json_string(json_string_value(h)));
	}
	git_commit_free(c);
	json_decref(j);
	return RL_OK;
}

static int replace_cb(const char *name, void *payload)
{
	problem(payload, "%s: stock git shows another commit or file in place of %s (git "
		"replace); relasi-hub reads the original", name, name + strlen("refs/replace/"));
	return 0;
}

/*
 * What makes stock git read audit.git differently from libgit2 (which knows
 * none of it): replace refs, info/grafts and a shallow file give `git log`
 * and `git show` other commits, files, authors or a cut history, while
 * every object and ref the hub checks stays untouched.
 */
static int verify_views(hub_audit *a, struct verify *v)
{
	static const char *const files[] = { "info/grafts", "shallow", NULL };
	char path[4200];
	struct stat sb;
	int gerr, i;

	gerr = git_reference_foreach_glob(a->repo, "refs/replace/*", replace_cb, v);
	if (gerr < 0)
		return hub_git_fail(gerr, "listing refs/replace");
	for (i = 0; files[i]; i++) {
		snprintf(path, sizeof(path), "%s%s", git_repository_path(a->repo), files[i]);
		if (lstat(path, &sb) == 0)
			problem(v, "audit.git/%s exists: stock git reads other parents than the "
				"hub wrote", files[i]);
	}
	return RL_OK;
}

int hub_audit_verify(hub_audit *a, rl_store *s, int deep, json_t **report)
{
	struct verify v;
	git_oid head, rhead;
	long long rseq = 0, top;
	int found, have_head, error, tries, in_tx = 0;
	char *text;
	json_t *rep = NULL;

	*report = NULL;
	memset(&v, 0, sizeof(v));
	v.problems = sqlite3_str_new(NULL);
	if (!(rep = json_object())) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((error = audit_lock(a)) < 0)
		goto cleanup;
	/* Catch up first (the lag of a busy hub is no fault); a history that
	 * cannot be continued is reported below, in detail. */
	for (tries = 0;; tries++) {
		long written = 0;
		if ((error = catch_up_locked(a, s, &written)) < 0) {
			if (error != RL_ESTORE)
				goto cleanup;
			error = RL_OK;
		}
		if ((error = recorded_head(s, &found, &rseq, &rhead)) < 0 ||
		    (error = repo_head(a, &have_head, &head)) < 0)
			goto cleanup;
		if (!found) {
			problem(&v, "the store has no record of the audit history's head");
			break;
		}
		if (!have_head) {
			problem(&v, "audit.git has no %s: the history is gone", AUDIT_REF);
			break;
		}
		if (!git_oid_equal(&head, &rhead)) {
			char hh[GIT_OID_HEXSZ + 1];
			git_oid_tostr(hh, sizeof(hh), &head);
			if (git_graph_descendant_of(a->repo, &rhead, &head) == 1)
				problem(&v, "HEAD (%.12s) was moved back: the store recorded %s as the head",
					hh, git_oid_tostr_s(&rhead));
			else if (git_graph_descendant_of(a->repo, &head, &rhead) == 1)
				problem(&v, "HEAD (%.12s) has commits after %.12s that the hub did not "
					"write", hh, git_oid_tostr_s(&rhead));
			else
				problem(&v, "HEAD (%.12s) does not descend from the head the store "
					"recorded (%s): the history was rewritten", hh,
					git_oid_tostr_s(&rhead));
			break;
		}
		/* The tree is compared with the store at the same seq. */
		if (sqlite3_exec(rl_store_db(s), "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
			error = rl_store_error(s, "reading the store");
			goto cleanup;
		}
		in_tx = 1;
		if ((error = hub_log_last(s, &top)) < 0)
			goto cleanup;
		if (top == rseq)
			break;
		sqlite3_exec(rl_store_db(s), "ROLLBACK", NULL, NULL, NULL);
		in_tx = 0;
		if (tries == 5) {
			error = rl_error_set(RL_ERROR, "the hub is applying changes faster than the "
					     "history can be compared; try again");
			goto cleanup;
		}
	}
	if (v.nproblems == 0) {
		if ((error = verify_chain(a, &head, rseq, &v)) < 0 ||
		    (error = verify_tree(a, s, &head, &v)) < 0)
			goto cleanup;
		if (deep && v.nproblems == 0 && (error = verify_replay(a, s, &head, &v)) < 0)
			goto cleanup;
	}
	if (in_tx) {
		sqlite3_exec(rl_store_db(s), "ROLLBACK", NULL, NULL, NULL);
		in_tx = 0;
	}
	if ((error = verify_views(a, &v)) < 0 ||
	    (have_head && (error = verify_backup(a, &head, &v, rep)) < 0))
		goto cleanup;
	if (have_head)
		json_object_set_new(rep, "head", json_string(git_oid_tostr_s(&head)));
	json_object_set_new(rep, "seq", json_integer(rseq));
	json_object_set_new(rep, "commits", json_integer(v.commits));
	json_object_set_new(rep, "records", json_integer(v.records));
	json_object_set_new(rep, "problems", json_integer(v.nproblems));
	json_object_set_new(rep, "deep", json_boolean(deep));
	if (v.nproblems) {
		if (v.nproblems > AUDIT_SHOW_PROBLEMS)
			sqlite3_str_appendf(v.problems, "\n  ... %ld problems in all",
					    v.nproblems);
		text = sqlite3_str_finish(v.problems);
		v.problems = NULL;
		error = rl_error_set(RL_ESTORE, "the audit history does not match the store:%s",
				     text ? text : " (out of memory)");
		sqlite3_free(text);
		goto cleanup;
	}
	*report = rep;
	rep = NULL;
cleanup:
	if (in_tx)
		sqlite3_exec(rl_store_db(s), "ROLLBACK", NULL, NULL, NULL);
	audit_unlock(a);
	if (v.problems)
		sqlite3_free(sqlite3_str_finish(v.problems));
	json_decref(rep);
	return error;
}
