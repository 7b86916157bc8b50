/*
 * image_check.c — is the hub's snapshot image sound, and this device's? (see
 * image_check.h; called by image.c's rl_image_install before it takes the
 * image).
 *
 * The image is network input and a SQLite file. In order: the file header
 * (rollback journal format); the schema, exactly this device's by its SQL
 * text, version and page size; PRAGMA quick_check (b-trees, NOT NULL,
 * CHECK). quick_check neither compares an index with its table nor looks at
 * the order of an index's keys, and integrity_check, which does, takes a
 * lookup per entry (4.5 s on the full dataset): so each index is compared
 * with its table by an order-independent digest of both sides, its keys
 * required in order; FTS5's and the R*Tree's own checks. Meanwhile, on a
 * second connection in a thread, every row is held to the model's rules as a
 * record-by-record snapshot is (ids, values, references, field versions).
 * fuzz/fuzz_image.c damages a sound image page by page against all of it.
 */
#include "image_check.h"

#include "relasi/error.h"
#include "relasi/id.h"
#include "relasi/limits.h"
#include "relasi/model.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A SQLite file in the rollback journal's format: opening one marked for
 * WAL would make SQLite create -wal and -shm files beside it. */
int rl_image_check_file(const char *path)
{
	unsigned char h[100];
	ssize_t n = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd >= 0)
		n = read(fd, h, sizeof(h));
	if (fd >= 0)
		close(fd);
	if (n != (ssize_t)sizeof(h) || memcmp(h, "SQLite format 3", 16) != 0 || h[18] != 1 ||
	    h[19] != 1)
		return rl_error_set(RL_EPROTO, "the hub's snapshot image is not a SQLite file in "
				    "rollback-journal format");
	return RL_OK;
}

/* The schema to compare: every sqlite_schema row but its root page. */
static int schema_text(sqlite3 *db, char **out)
{
	sqlite3_stmt *st = NULL;
	sqlite3_str *acc = sqlite3_str_new(db);
	int i, rc = SQLITE_ERROR;

	*out = NULL;
	if (sqlite3_prepare_v2(db, "SELECT type, name, tbl_name, coalesce(sql, '') FROM "
			       "sqlite_schema ORDER BY type, name", -1, &st, NULL) == SQLITE_OK)
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			for (i = 0; i < 4; i++)
				sqlite3_str_appendf(acc, "%s\x1f", (const char *)sqlite3_column_text(st, i));
			sqlite3_str_appendchar(acc, 1, '\x1e');
		}
	sqlite3_finalize(st);
	*out = sqlite3_str_finish(acc);
	if (rc != SQLITE_DONE || !*out) {
		sqlite3_free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

static long long pragma_value(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	long long v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The image holds this device's schema, exactly, and is sound. */
static int check_image(rl_store *s, sqlite3 *img)
{
	char *mine = NULL, *theirs = NULL;
	sqlite3_stmt *st = NULL;
	int error = RL_OK;

	if (schema_text(img, &theirs) < 0) {
		error = rl_error_set(RL_EPROTO, "the hub's snapshot image is not a readable store: %s",
				     sqlite3_errmsg(img));
		goto cleanup;
	}
	if (schema_text(rl_store_db(s), &mine) < 0) {
		error = rl_store_error(s, "reading this store's schema");
		goto cleanup;
	}
	if (pragma_value(img, "PRAGMA user_version") != rl_store_schema_version(s) ||
	    strcmp(mine, theirs) != 0) {
		error = rl_error_set(RL_EPROTO, "the hub's snapshot image is of another schema than "
				     "this device's (version %lld, this device %d)",
				     pragma_value(img, "PRAGMA user_version"),
				     rl_store_schema_version(s));
		goto cleanup;
	}
	if (pragma_value(img, "PRAGMA page_size") != pragma_value(rl_store_db(s), "PRAGMA page_size")) {
		error = rl_error_set(RL_EPROTO, "the hub's snapshot image has pages of %lld bytes, "
				     "this store %lld", pragma_value(img, "PRAGMA page_size"),
				     pragma_value(rl_store_db(s), "PRAGMA page_size"));
		goto cleanup;
	}
	/* The b-trees, NOT NULL and CHECK rules (quick_check leaves out only
	 * the index-to-table comparison). One row "ok", else the problems. */
	if (sqlite3_prepare_v2(img, "PRAGMA quick_check(1)", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW ||
	    strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0)
		error = rl_error_set(RL_EPROTO, "the hub's snapshot image fails SQLite's check: %.200s",
				     st && sqlite3_column_text(st, 0) ?
				     (const char *)sqlite3_column_text(st, 0) : sqlite3_errmsg(img));
cleanup:
	sqlite3_finalize(st);
	sqlite3_free(mine);
	sqlite3_free(theirs);
	return error;
}

/* The first row a query finds, as "a b" (for a message); NULL if none. */
static char *first_row(sqlite3 *img, const char *sql, long long seq, int *failed)
{
	sqlite3_stmt *st;
	char *out = NULL;
	int rc;

	*failed = 0;
	if (sqlite3_prepare_v2(img, sql, -1, &st, NULL) != SQLITE_OK) {
		*failed = 1;
		return NULL;
	}
	sqlite3_bind_int64(st, 1, seq);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		out = sqlite3_mprintf("%.64s %.64s", sqlite3_column_text(st, 0) ?
				      (const char *)sqlite3_column_text(st, 0) : "?",
				      sqlite3_column_text(st, 1) ?
				      (const char *)sqlite3_column_text(st, 1) : "?");
	else if (rc != SQLITE_DONE)
		*failed = 1;
	sqlite3_finalize(st);
	return out;
}

/* Every row of one synced table: a well-formed id, and every value one the
 * model accepts in its stored form, as devsync.c's load_chunk checks each
 * value of a record-by-record snapshot. */
static int check_table_rows(sqlite3 *img, const struct rl_table *t)
{
	const struct rl_field *fields[RL_SNAP_MAX_COLUMNS];
	sqlite3_stmt *st = NULL;
	char *sql;
	int i, n, rc, idcol = -1, error = RL_OK;

	if (!(sql = sqlite3_mprintf("SELECT * FROM \"%w\"", t->name)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	rc = sqlite3_prepare_v2(img, sql, -1, &st, NULL);
	sqlite3_free(sql);
	if (rc != SQLITE_OK) {
		error = rl_error_set(RL_EPROTO, "the hub's snapshot image cannot be read: %s",
				     sqlite3_errmsg(img));
		goto cleanup;
	}
	n = sqlite3_column_count(st);
	if (n > RL_SNAP_MAX_COLUMNS) {
		error = rl_error_set(RL_EPROTO, "the hub's snapshot image has %d columns in %s", n,
				     t->name);
		goto cleanup;
	}
	for (i = 0; i < n; i++) {
		fields[i] = rl_model_field(t, sqlite3_column_name(st, i));
		if (strcmp(sqlite3_column_name(st, i), "id") == 0)
			idcol = i;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = idcol >= 0 ? (const char *)sqlite3_column_text(st, idcol) : NULL;

		if (!id || !rl_id_valid(id)) {
			error = rl_error_set(RL_EPROTO, "the hub's snapshot image has a record of %s "
					     "with a malformed id", t->name);
			goto cleanup;
		}
		for (i = 0; i < n; i++) {
			struct rl_value v;

			if (!fields[i])
				continue;
			memset(&v, 0, sizeof(v));
			switch (sqlite3_column_type(st, i)) {
			case SQLITE_INTEGER:
				v.type = RL_V_INT;
				v.i = sqlite3_column_int64(st, i);
				break;
			case SQLITE_FLOAT:
				v.type = RL_V_REAL;
				v.d = sqlite3_column_double(st, i);
				break;
			case SQLITE_NULL:
				v.type = RL_V_NULL;
				break;
			case SQLITE_TEXT:
				v.type = RL_V_TEXT;
				v.s = (const char *)sqlite3_column_text(st, i);
				/* a NUL inside the text: no model value holds one */
				if (v.s && strlen(v.s) == (size_t)sqlite3_column_bytes(st, i))
					break;
				/* fall through */
			default:        /* a blob: the model has none */
				v.type = RL_V_TEXT;
				v.s = NULL;
				break;
			}
			if ((v.type == RL_V_TEXT && !v.s) || rl_model_check_value(t, fields[i], &v) < 0) {
				error = rl_error_set(RL_EPROTO, "the hub's snapshot image has an invalid "
						     "value for %s.%s of %.40s", t->name,
						     fields[i]->name, id);
				goto cleanup;
			}
		}
	}
	if (rc != SQLITE_DONE)
		error = rl_error_set(RL_EPROTO, "the hub's snapshot image cannot be read: %s",
				     sqlite3_errmsg(img));
cleanup:
	sqlite3_finalize(st);
	return error;
}

/* {"field":N,...} as devsync.c's append_version writes a record's versions:
 * at least one field, names of [a-z_], each N an integer in 1..seq. */
static int versions_ok(const char *p, long long seq)
{
	if (*p++ != '{')
		return -1;
	for (;;) {
		long long n = 0;
		const char *name;

		if (*p++ != '"')
			return -1;
		for (name = p; (*p >= 'a' && *p <= 'z') || *p == '_'; p++)
			;
		if (p == name || p - name > 64 || *p++ != '"' || *p++ != ':' || *p < '1' || *p > '9')
			return -1;
		for (; *p >= '0' && *p <= '9'; p++) {
			n = n * 10 + (*p - '0');
			if (n > seq)
				return -1;
		}
		if (*p == '}')
			return p[1] == '\0' ? 0 : -1;
		if (*p++ != ',')
			return -1;
	}
}

/*
 * The image's rows, held to the rules a record-by-record snapshot is held to
 * (quick_check covered the b-trees and the schema's own NOT NULL and CHECK
 * rules): the model's rules for every id and value, every reference to a
 * record that exists, and every field version an integer in 1..seq. The
 * image is the hub's, built by this library's own load, so each of these
 * holds unless the hub is broken: then the device refuses the image and
 * loads record by record, which checks the same rules one record at a time.
 */
static int check_image_rows(sqlite3 *img, long long seq)
{
	const struct rl_table *t;
	sqlite3_stmt *st = NULL;
	char *bad;
	size_t i;
	int rc, error, failed;

	for (i = 0; (t = rl_model_table_at(i)); i++)
		if ((error = check_table_rows(img, t)) < 0)
			return error;
	if ((bad = first_row(img, "SELECT \"table\", parent FROM pragma_foreign_key_check LIMIT 1",
			     seq, &failed)) || failed) {
		error = rl_error_set(RL_EPROTO, failed ? "the hub's snapshot image cannot be read: %s"
				     : "the hub's snapshot image has a record that refers to a missing "
				     "one (%s)", failed ? sqlite3_errmsg(img) : bad);
		sqlite3_free(bad);
		return error;
	}
	if ((bad = first_row(img, "SELECT tbl, row_id FROM rl_base WHERE typeof(version) <> "
			     "'integer' OR version < 1 OR version > ?1 LIMIT 1", seq, &failed)) ||
	    failed) {
		error = rl_error_set(RL_EPROTO, failed ? "the hub's snapshot image cannot be read: %s"
				     : "the hub's snapshot image gives %s a field version outside "
				     "1..%lld", failed ? sqlite3_errmsg(img) : bad, seq);
		sqlite3_free(bad);
		return error;
	}
	/* One row of versions per record, in the form load_chunk writes them;
	 * read here in C: SQLite's json_each over half a million rows took
	 * longer than the rest of these checks. */
	if (sqlite3_prepare_v2(img, "SELECT tbl, row_id, versions FROM rl_base_snapshot", -1, &st,
			       NULL) != SQLITE_OK)
		return rl_error_set(RL_EPROTO, "the hub's snapshot image cannot be read: %s",
				    sqlite3_errmsg(img));
	error = RL_OK;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 2);
		const char *tbl = (const char *)sqlite3_column_text(st, 0);
		const char *row = (const char *)sqlite3_column_text(st, 1);
		const struct rl_table *vt = tbl ? rl_model_table(tbl) : NULL;
		/* versions of a record of a synced table, by its well-formed id */
		if (!vt || strcmp(vt->name, tbl) != 0 || !row || !rl_id_valid(row) || !v ||
		    sqlite3_column_bytes(st, 2) != (int)strlen(v) || versions_ok(v, seq) < 0) {
			error = rl_error_set(RL_EPROTO, "the hub's snapshot image gives %.64s %.64s a "
					     "field version outside 1..%lld, or malformed versions",
					     sqlite3_column_text(st, 0) ?
					     (const char *)sqlite3_column_text(st, 0) : "?",
					     sqlite3_column_text(st, 1) ?
					     (const char *)sqlite3_column_text(st, 1) : "?", seq);
			break;
		}
	}
	if (error == RL_OK && rc != SQLITE_DONE)
		error = rl_error_set(RL_EPROTO, "the hub's snapshot image cannot be read: %s",
				     sqlite3_errmsg(img));
	sqlite3_finalize(st);
	return error;
}

/* ---- the image's indexes against its tables ------------------------------------------- */

/*
 * quick_check reads every b-tree but does not compare an index with its
 * table: an image whose index says a row holds what the row does not would
 * pass it, and the store would answer lookups wrongly. integrity_check
 * does compare them, one lookup per entry: 4.5 s on the full dataset's
 * image. Instead each index's entries and the rows it should hold are
 * summed up by an order-independent digest, each side read in one pass
 * (the index as a covering scan): a different, missing or extra entry
 * changes the sum. The index definitions are this device's own (the
 * schema was compared by its text before), so they are trusted SQL.
 */
#define DIGEST_MAX_COLS 16

/* One value of an index key: its own bytes, or a copy in struct digest. */
struct key_value {
	int type;
	sqlite3_int64 i;
	double d;
	const unsigned char *p;
	int n;
};

struct digest {
	sqlite3_uint64 sum, count;
	int disorder;                           /* a key not above the one before */
	int n;                                  /* values in prev */
	struct key_value prev[DIGEST_MAX_COLS]; /* the key before, for the order */
	unsigned char *buf;                     /* prev's text and blobs (sqlite3_malloc'd) */
	size_t cap;
};

static void key_value_of(struct key_value *k, sqlite3_value *v)
{
	k->type = sqlite3_value_type(v);
	k->i = k->type == SQLITE_INTEGER ? sqlite3_value_int64(v) : 0;
	k->d = k->type == SQLITE_FLOAT ? sqlite3_value_double(v) : 0.0;
	k->p = k->type == SQLITE_TEXT ? sqlite3_value_text(v) :
	       k->type == SQLITE_BLOB ? sqlite3_value_blob(v) : NULL;
	k->n = k->p ? sqlite3_value_bytes(v) : 0;
}

/* SQLite's order of two values of one index column: NULL, numbers, text,
 * blobs; text by the column's collation, 'B' (BINARY) or 'N' (NOCASE,
 * ASCII only, as SQLite's). */
static int value_rank(int type)
{
	return type == SQLITE_NULL ? 0 : type == SQLITE_INTEGER || type == SQLITE_FLOAT ? 1 :
	       type == SQLITE_TEXT ? 2 : 3;
}

static int key_value_cmp(const struct key_value *a, const struct key_value *b, char coll)
{
	int c, n;

	if (value_rank(a->type) != value_rank(b->type))
		return value_rank(a->type) < value_rank(b->type) ? -1 : 1;
	switch (value_rank(a->type)) {
	case 0:
		return 0;
	case 1:
		if (a->type == SQLITE_INTEGER && b->type == SQLITE_INTEGER)
			return a->i < b->i ? -1 : a->i > b->i;
		{
			long double x = a->type == SQLITE_INTEGER ? (long double)a->i : a->d;
			long double y = b->type == SQLITE_INTEGER ? (long double)b->i : b->d;
			return x < y ? -1 : x > y;
		}
	default:
		n = a->n < b->n ? a->n : b->n;
		if (n == 0)
			c = 0;
		else if (a->type == SQLITE_TEXT && coll == 'N')
			c = sqlite3_strnicmp((const char *)a->p, (const char *)b->p, n);
		else
			c = memcmp(a->p, b->p, (size_t)n);
		return c ? c : a->n - b->n;
	}
}

/* Keep key (n values) as the one before, its bytes copied. */
static int digest_keep(struct digest *d, const struct key_value *key, int n)
{
	size_t need = 0, off = 0;
	int i;

	for (i = 0; i < n; i++)
		need += (size_t)key[i].n;
	if (need > d->cap) {
		unsigned char *grown = sqlite3_realloc64(d->buf, need);
		if (!grown)
			return -1;
		d->buf = grown;
		d->cap = need;
	}
	for (i = 0; i < n; i++) {
		d->prev[i] = key[i];
		if (key[i].n > 0) {
			memcpy(d->buf + off, key[i].p, (size_t)key[i].n);
			d->prev[i].p = d->buf + off;
			off += (size_t)key[i].n;
		}
	}
	d->n = n;
	return 0;
}

/*
 * rl_image_digest(ORDER, V1, V2, ...): an order-independent digest of the
 * rows (V1, V2, ...) as "count/sum". ORDER NULL: nothing more. ORDER a
 * string of one letter per value, 'B' or 'N' (the column's collation; lower
 * case for a descending column): the rows must also come strictly in that
 * order, as an index's entries do (each holds its row's rowid or primary
 * key, so no two are equal); else the result is "disorder".
 */
static void digest_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct digest *d = sqlite3_aggregate_context(ctx, sizeof(*d));
	const char *order = (const char *)sqlite3_value_text(argv[0]);
	sqlite3_uint64 h = 14695981039346656037ULL;
	int i, j, n, c = 0;

	if (!d)
		return;
	if (order && !d->disorder) {
		struct key_value key[DIGEST_MAX_COLS];

		if (argc - 1 > DIGEST_MAX_COLS || (int)strlen(order) != argc - 1) {
			d->disorder = 1;
		} else {
			for (i = 1; i < argc; i++)
				key_value_of(&key[i - 1], argv[i]);
			if (d->n == argc - 1) {
				for (i = 0; i < argc - 1 && c == 0; i++) {
					c = key_value_cmp(&key[i], &d->prev[i], (char)(order[i] & ~0x20));
					if (order[i] >= 'a')
						c = -c;
				}
				if (c <= 0)
					d->disorder = 1;
			}
			if (digest_keep(d, key, argc - 1) < 0) {
				sqlite3_result_error_nomem(ctx);
				return;
			}
		}
	}
	/* Not a cryptographic digest: it tells a damaged image from a sound
	 * one, not a hub bent on fooling it (whose data the device takes
	 * anyway). Eight bytes at a time, each mixed in by a multiply. */
	for (i = 1; i < argc; i++) {
		int type = sqlite3_value_type(argv[i]);
		sqlite3_uint64 w;

		h = (h ^ (sqlite3_uint64)type) * 0xff51afd7ed558ccdULL;
		if (type == SQLITE_INTEGER) {
			h = (h ^ (sqlite3_uint64)sqlite3_value_int64(argv[i])) * 0xc4ceb9fe1a85ec53ULL;
		} else if (type == SQLITE_FLOAT) {
			double x = sqlite3_value_double(argv[i]);
			memcpy(&w, &x, sizeof(w));
			h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
		} else if (type == SQLITE_TEXT || type == SQLITE_BLOB) {
			const unsigned char *p = type == SQLITE_TEXT ? sqlite3_value_text(argv[i])
								     : sqlite3_value_blob(argv[i]);
			n = sqlite3_value_bytes(argv[i]);
			for (j = 0; p && j + 8 <= n; j += 8) {
				memcpy(&w, p + j, 8);
				h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
				h ^= h >> 31;
			}
			w = (sqlite3_uint64)n << 56;
			if (p && j < n)
				memcpy(&w, p + j, (size_t)(n - j));     /* n - j < 8: the length byte stays */
			h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
		}
		h ^= h >> 33;
	}
	d->sum += h * 0x9E3779B97F4A7C15ULL + 1;
	d->count++;
}

static void digest_final(sqlite3_context *ctx)
{
	struct digest *d = sqlite3_aggregate_context(ctx, 0);
	char out[48];

	if (d && d->disorder)
		snprintf(out, sizeof(out), "disorder");
	else
		snprintf(out, sizeof(out), "%llu/%llu", d ? (unsigned long long)d->count : 0ULL,
			 d ? (unsigned long long)d->sum : 0ULL);
	if (d)
		sqlite3_free(d->buf);
	sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
}

/* The first text column of the first row of sql, malloc'd; NULL on an error. */
static char *query_text(sqlite3 *img, const char *sql)
{
	sqlite3_stmt *st;
	char *out = NULL;

	if (sqlite3_prepare_v2(img, sql, -1, &st, NULL) != SQLITE_OK)
		return NULL;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		out = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return out;
}

/* Index idx of table tbl: "the columns it holds" as SQL (its key columns,
 * then the rowid or primary key it points at), and its WHERE clause if it
 * is partial (empty otherwise), both sqlite3_malloc'd. */
static int index_parts(sqlite3 *img, const char *idx, const char *csql, int keys_only,
		       char **cols, char **where, char **order)
{
	sqlite3_stmt *st = NULL;
	sqlite3_str *c = sqlite3_str_new(img), *o = sqlite3_str_new(img);
	const char *w, *coll;
	int rc, error = RL_OK;

	*cols = *where = *order = NULL;
	if (sqlite3_prepare_v2(img, "SELECT cid, name, coll, desc FROM pragma_index_xinfo(?1) "
			       "WHERE key OR NOT ?2 ORDER BY seqno", -1, &st, NULL) != SQLITE_OK) {
		error = rl_error_set(RL_EPROTO, "the hub's snapshot image cannot be read: %s",
				     sqlite3_errmsg(img));
		goto cleanup;
	}
	sqlite3_bind_text(st, 1, idx, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, keys_only);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int cid = sqlite3_column_int(st, 0), desc = sqlite3_column_int(st, 3);
		coll = (const char *)sqlite3_column_text(st, 2);
		if (!coll || (sqlite3_stricmp(coll, "BINARY") != 0 && sqlite3_stricmp(coll, "NOCASE") != 0)) {
			error = rl_error_set(RL_ESTORE, "cannot check index %s of the snapshot image "
					     "(collation %s)", idx, coll ? coll : "?");
			goto cleanup;
		}
		sqlite3_str_appendchar(o, 1, (char)((sqlite3_stricmp(coll, "NOCASE") == 0 ? 'N' : 'B') |
						    (desc ? 0x20 : 0)));
		if (sqlite3_str_length(c) > 0)
			sqlite3_str_appendall(c, ", ");
		if (cid == -1)
			sqlite3_str_appendall(c, "rowid");
		else if (cid >= 0 && sqlite3_column_text(st, 1))
			sqlite3_str_appendf(c, "\"%w\"", (const char *)sqlite3_column_text(st, 1));
		else {          /* an expression: the schema has none */
			error = rl_error_set(RL_ESTORE, "cannot check index %s of the snapshot image",
					     idx);
			goto cleanup;
		}
	}
	/* "CREATE [UNIQUE] INDEX name ON t(cols) [WHERE expr]": the column
	 * list holds no parenthesis (no expressions, see above). */
	w = csql ? strchr(csql, ')') : NULL;
	if (w) {
		for (w++; *w == ' ' || *w == '\n' || *w == '\t'; w++)
			;
		if (sqlite3_strnicmp(w, "WHERE", 5) == 0)
			*where = sqlite3_mprintf("%s", w + 5);
	}
	if (!*where)
		*where = sqlite3_mprintf("1");
	*cols = sqlite3_str_finish(c);
	*order = sqlite3_str_finish(o);
	c = o = NULL;
	if (!*cols || !*where || !*order)
		error = rl_error_set(RL_ENOMEM, "out of memory");
cleanup:
	sqlite3_finalize(st);
	sqlite3_free(sqlite3_str_finish(c));
	sqlite3_free(sqlite3_str_finish(o));
	return error;
}

#define IMAGE_MAX_INDEXES 256

struct image_index {
	char *name, *tbl, *cols, *where, *order;        /* sqlite3_malloc'd */
	int wr;             /* the primary key of a WITHOUT ROWID table: the table itself */
	char *from_table;   /* the digest of the rows it should hold (malloc'd) */
};

/* The digests of the rows each index of one table should hold, in one pass
 * over the table: ix[0..n) are that table's indexes (the WITHOUT ROWID
 * primary key, which is the table, has none). */
static int digest_table(sqlite3 *img, struct image_index *ix, int n)
{
	sqlite3_str *q = sqlite3_str_new(img);
	sqlite3_stmt *st = NULL;
	char *sql;
	int i, k = 0, error = RL_OK;

	sqlite3_str_appendall(q, "SELECT ");
	for (i = 0; i < n; i++) {
		if (ix[i].wr)
			continue;
		sqlite3_str_appendf(q, "%srl_image_digest(NULL, %s) FILTER (WHERE %s)", k++ ? ", " : "",
				    ix[i].cols, ix[i].where);
	}
	sqlite3_str_appendf(q, " FROM \"%w\" NOT INDEXED", ix[0].tbl);
	if (!(sql = sqlite3_str_finish(q)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	if (k == 0)
		goto cleanup;
	if (sqlite3_prepare_v2(img, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		error = rl_error_set(RL_EPROTO, "the hub's snapshot image cannot be read: %s",
				     sqlite3_errmsg(img));
		goto cleanup;
	}
	for (i = 0, k = 0; i < n; i++) {
		if (ix[i].wr)
			continue;
		if (!(ix[i].from_table = strdup(sqlite3_column_text(st, k) ?
						(const char *)sqlite3_column_text(st, k) : ""))) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto cleanup;
		}
		k++;
	}
cleanup:
	sqlite3_finalize(st);
	sqlite3_free(sql);
	return error;
}

/* An index read in its own order: its digest equals its table's, and its
 * entries come strictly in order. The primary key of a WITHOUT ROWID table
 * is the table: its rows come strictly in order. */
static int check_one_index(sqlite3 *img, const struct image_index *x)
{
	char *sql, *got;
	int error = RL_OK;

	sql = x->wr ? sqlite3_mprintf("SELECT rl_image_digest(%Q, %s) FROM \"%w\" NOT INDEXED",
				      x->order, x->cols, x->tbl) :
		      sqlite3_mprintf("SELECT rl_image_digest(%Q, %s) FROM \"%w\" INDEXED BY \"%w\" "
				      "WHERE %s", x->order, x->cols, x->tbl, x->name, x->where);
	got = sql ? query_text(img, sql) : NULL;
	sqlite3_free(sql);
	if (!got)
		error = rl_error_set(RL_EPROTO, "the hub's snapshot image cannot be read: %s",
				     sqlite3_errmsg(img));
	else if (strcmp(got, "disorder") == 0)
		error = rl_error_set(RL_EPROTO, "the hub's snapshot image has an index out of "
				     "order (%.64s)", x->wr ? x->tbl : x->name);
	else if (!x->wr && (!x->from_table || strcmp(x->from_table, got) != 0))
		error = rl_error_set(RL_EPROTO, "the hub's snapshot image has an index that does "
				     "not match its table (%.64s)", x->name);
	free(got);
	return error;
}

static int check_btree_indexes(sqlite3 *img)
{
	struct image_index *ix = calloc(IMAGE_MAX_INDEXES, sizeof(*ix));
	sqlite3_stmt *st = NULL;
	int n = 0, i, first, rc, error = RL_OK;

	if (!ix)
		return rl_error_set(RL_ENOMEM, "out of memory");
	if (sqlite3_prepare_v2(img, "SELECT l.name, t.name, i.sql, t.sql LIKE '%WITHOUT ROWID%' "
			       "AND l.origin = 'pk' FROM sqlite_schema t, pragma_index_list(t.name) l "
			       "LEFT JOIN sqlite_schema i ON i.type = 'index' AND i.name = l.name "
			       "WHERE t.type = 'table' AND t.sql NOT LIKE 'CREATE VIRTUAL%' "
			       "ORDER BY t.name, l.name", -1, &st, NULL) != SQLITE_OK) {
		error = rl_error_set(RL_EPROTO, "the hub's snapshot image cannot be read: %s",
				     sqlite3_errmsg(img));
		goto cleanup;
	}
	while (error == RL_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct image_index *x = &ix[n];

		if (n == IMAGE_MAX_INDEXES) {
			error = rl_error_set(RL_EPROTO, "the hub's snapshot image has more than %d "
					     "indexes", IMAGE_MAX_INDEXES);
			break;
		}
		x->wr = sqlite3_column_int(st, 3);
		x->name = sqlite3_mprintf("%s", (const char *)sqlite3_column_text(st, 0));
		x->tbl = sqlite3_mprintf("%s", (const char *)sqlite3_column_text(st, 1));
		if (!x->name || !x->tbl) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			break;
		}
		n++;
		/* A WITHOUT ROWID table's key is its primary key alone (the
		 * other columns ride along); an index's is its columns, then
		 * the rowid or primary key it points at. */
		error = index_parts(img, x->name, (const char *)sqlite3_column_text(st, 2), x->wr,
				    &x->cols, &x->where, &x->order);
	}
	if (error == RL_OK && rc != SQLITE_DONE)
		error = rl_error_set(RL_EPROTO, "the hub's snapshot image cannot be read: %s",
				     sqlite3_errmsg(img));
	for (first = 0; error == RL_OK && first < n; first = i) {
		for (i = first; i < n && strcmp(ix[i].tbl, ix[first].tbl) == 0; i++)
			;
		error = digest_table(img, ix + first, i - first);
	}
	for (i = 0; error == RL_OK && i < n; i++)
		error = check_one_index(img, &ix[i]);
cleanup:
	sqlite3_finalize(st);
	for (i = 0; i < n; i++) {
		sqlite3_free(ix[i].name);
		sqlite3_free(ix[i].tbl);
		sqlite3_free(ix[i].cols);
		sqlite3_free(ix[i].where);
		sqlite3_free(ix[i].order);
		free(ix[i].from_table);
	}
	free(ix);
	return error;
}

/* Every b-tree index against its table. */
static int check_image_indexes(sqlite3 *img)
{
	if (sqlite3_create_function(img, "rl_image_digest", -1, SQLITE_UTF8,
				    NULL, NULL, digest_step, digest_final) != SQLITE_OK)
		return rl_error_set(RL_ENOMEM, "out of memory");
	return check_btree_indexes(img);
}

/* The full-text indexes and the R*Tree, by their own checks. FTS5's takes
 * the form of an INSERT, a write, so these run alone on the image, after
 * the checks that share it with a reader. */
static int check_image_own_indexes(sqlite3 *img)
{
	static const char *const own[] = {
		"INSERT INTO fts_accounts(fts_accounts) VALUES ('integrity-check')",
		"INSERT INTO fts_contacts(fts_contacts) VALUES ('integrity-check')",
		"INSERT INTO fts_activities(fts_activities) VALUES ('integrity-check')",
	};
	char *rtree;
	size_t i;
	int error = RL_OK;

	for (i = 0; error == RL_OK && i < sizeof(own) / sizeof(own[0]); i++)
		if (sqlite3_exec(img, own[i], NULL, NULL, NULL) != SQLITE_OK)
			error = rl_error_set(RL_EPROTO, "the hub's snapshot image has a damaged "
					     "search index: %s", sqlite3_errmsg(img));
	if (error == RL_OK) {
		rtree = query_text(img, "SELECT rtreecheck('geo_accounts')");
		if (!rtree || strcmp(rtree, "ok") != 0)
			error = rl_error_set(RL_EPROTO, "the hub's snapshot image has a damaged "
					     "\"nearby\" index: %.120s", rtree ? rtree :
					     sqlite3_errmsg(img));
		free(rtree);
	}
	return error;
}

/* A connection to the image for checking: defensive, its schema untrusted,
 * no triggers, read through a memory map (the checks read every page, some
 * twice, and the copy reads them once more). */
void rl_image_configure(sqlite3 *img)
{
	sqlite3_db_config(img, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(img, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_db_config(img, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, NULL);
	sqlite3_exec(img, "PRAGMA mmap_size = 2147418112", NULL, NULL, NULL);
}

/*
 * The rows are checked on a second, read-only connection in a thread of
 * their own while the first compares the indexes: both read the whole
 * file, and a device has a core to spare (1.0 s and 0.7 s on the full
 * dataset, one after the other before). The thread's error comes back as
 * its code and message (errors are per thread: relasi/error.h).
 */
struct rows_job {
	const char *path;
	long long seq;
	int error;
	char why[RL_ERROR_MSG_MAX];
};

static void *rows_thread(void *arg)
{
	struct rows_job *job = arg;
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(job->path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		job->error = rl_error_set(RL_EPROTO, "the hub's snapshot image cannot be opened: %s",
					  db ? sqlite3_errmsg(db) : "out of memory");
	} else {
		rl_image_configure(db);
		job->error = check_image_rows(db, job->seq);
	}
	if (job->error < 0)
		snprintf(job->why, sizeof(job->why), "%s", rl_error_message());
	sqlite3_close(db);
	return NULL;
}

/* The indexes on img and the rows in a thread, then the search and nearby
 * indexes; the first error found. */
static int check_image_content(sqlite3 *img, const char *path, long long seq)
{
	struct rows_job job;
	pthread_t th;
	int error, threaded;

	memset(&job, 0, sizeof(job));
	job.path = path;
	job.seq = seq;
	threaded = pthread_create(&th, NULL, rows_thread, &job) == 0;
	error = check_image_indexes(img);
	if (threaded)
		pthread_join(th, NULL);
	else if (error == RL_OK)
		rows_thread(&job);
	if (error == RL_OK && job.error < 0)
		error = rl_error_set(job.error, "%s", job.why);
	if (error == RL_OK)
		error = check_image_own_indexes(img);
	return error;
}

int rl_image_check(rl_store *s, sqlite3 *img, const char *path, long long seq)
{
	int error;

	if ((error = check_image(s, img)) < 0)
		return error;
	return check_image_content(img, path, seq);
}
