/*
 * test_store_image.c — a new store written from the build's image
 * (relasi/store.h, schema/mkimage.c) is the store the migrations make:
 * the same schema objects and SQL, the same rows in every table (the
 * shadow tables of the search and nearby indexes included), the same
 * pragmas; for a device store and for a hub's. Also: the image is used
 * only when registered and made for this schema, a temporary file left by
 * a crashed create does not stop the next one, and an existing store is
 * never overwritten by an image.
 */
#define _XOPEN_SOURCE 700      /* nftw */
#include "check.h"

#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "relasi/error.h"
#include "relasi/store.h"

static char dir[] = "/tmp/relasi-image-XXXXXX";

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

/* The store's content as text: sqlite_master (without root pages), a few
 * pragmas, then every row of every table, values quoted. */
static char *dump(rl_store *s)
{
	static const char *const pragmas[] = { "user_version", "application_id", "journal_mode",
					       "page_size", "auto_vacuum", "encoding", NULL };
	sqlite3 *db = rl_store_db(s);
	sqlite3_str *out = sqlite3_str_new(db);
	sqlite3_stmt *st, *rows;
	int i, c;

	for (i = 0; pragmas[i]; i++) {
		char *sql = sqlite3_mprintf("PRAGMA %s", pragmas[i]);
		if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW)
			sqlite3_str_appendf(out, "%s=%s\n", pragmas[i], sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		sqlite3_free(sql);
	}
	if (sqlite3_prepare_v2(db, "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master "
			       "ORDER BY type, name", -1, &st, NULL) != SQLITE_OK)
		return sqlite3_str_finish(out);
	while (sqlite3_step(st) == SQLITE_ROW)
		sqlite3_str_appendf(out, "%s %s %s: %s\n", sqlite3_column_text(st, 0),
				    sqlite3_column_text(st, 1), sqlite3_column_text(st, 2),
				    sqlite3_column_text(st, 3));
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table' AND "
			       "sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name", -1, &st, NULL) != SQLITE_OK)
		return sqlite3_str_finish(out);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		/* Each hub's epoch is its own (below): the one value masked. */
		char *sql = strcmp(name, "rl_meta") == 0
			? sqlite3_mprintf("SELECT key, CASE key WHEN 'hub_epoch' THEN 'EPOCH' "
					  "ELSE value END FROM rl_meta ORDER BY 1")
			: sqlite3_mprintf("SELECT * FROM \"%w\" ORDER BY 1", name);
		sqlite3_str_appendf(out, "-- %s\n", sqlite3_column_text(st, 0));
		if (sqlite3_prepare_v2(db, sql, -1, &rows, NULL) == SQLITE_OK) {
			while (sqlite3_step(rows) == SQLITE_ROW) {
				for (c = 0; c < sqlite3_column_count(rows); c++) {
					char *q = sqlite3_mprintf("%Q", (const char *)sqlite3_column_text(rows, c));
					sqlite3_str_appendf(out, "%s%s", c ? "|" : "", q);
					sqlite3_free(q);
				}
				sqlite3_str_appendchar(out, 1, '\n');
			}
		} else {
			sqlite3_str_appendf(out, "unreadable: %s\n", sqlite3_errmsg(db));
		}
		sqlite3_finalize(rows);
		sqlite3_free(sql);
	}
	sqlite3_finalize(st);
	return sqlite3_str_finish(out);
}

static char *open_dump(const char *name, unsigned flags, int want_image)
{
	char path[256];
	rl_store *s = NULL;
	char *d = NULL;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	CHECK_EQ_INT(rl_store_open(&s, path, RL_STORE_CREATE | flags), RL_OK);
	if (!s) {
		fprintf(stderr, "%s: %s\n", name, rl_error_message());
		return NULL;
	}
	CHECK_EQ_INT(rl_store_made_from_image(s), want_image);
	d = dump(s);
	rl_store_close(s);
	/* reopened, it is an existing store: nothing is written from an image */
	CHECK_EQ_INT(rl_store_open(&s, path, flags), RL_OK);
	if (s) {
		CHECK_EQ_INT(rl_store_made_from_image(s), 0);
		rl_store_close(s);
	}
	return d;
}

/* The first line where the two dumps part, with the line of each. */
static void report_difference(const char *kind, const char *a, const char *b)
{
	const char *line = a;
	size_t i;

	for (i = 0; a[i] && a[i] == b[i]; i++)
		if (a[i] == '\n')
			line = a + i + 1;
	fprintf(stderr, "%s store: the image differs from the migrations after\n%.*s\n"
		"migrations: %.200s\nimage:      %.200s\n", kind, (int)(a + i - line), line,
		a + i, b + i);
}

static char *hub_epoch(const char *name)
{
	char path[256], *epoch = NULL;
	rl_store *s = NULL;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	CHECK_EQ_INT(rl_store_open(&s, path, RL_STORE_CREATE | RL_STORE_HUB), RL_OK);
	if (s) {
		CHECK_EQ_INT(rl_store_made_from_image(s), 1);
		CHECK_EQ_INT(rl_store_meta_get(s, "hub_epoch", &epoch), RL_OK);
		rl_store_close(s);
	}
	return epoch;
}

static void check_same(const char *kind, unsigned flags)
{
	char name[64];
	char *migrated, *imaged;

	rl_store_set_images(NULL);
	snprintf(name, sizeof(name), "%s-migrated.db", kind);
	migrated = open_dump(name, flags, 0);
	rl_store_set_images(&rl_store_builtin_images);
	snprintf(name, sizeof(name), "%s-image.db", kind);
	imaged = open_dump(name, flags, 1);
	rl_store_set_images(NULL);
	CHECK(migrated && imaged && strlen(migrated) > 10000);
	CHECK(migrated && imaged && strcmp(migrated, imaged) == 0);
	if (migrated && imaged && strcmp(migrated, imaged) != 0)
		report_difference(kind, migrated, imaged);
	sqlite3_free(migrated);
	sqlite3_free(imaged);
}

int main(void)
{
	static const char not_a_store[] = "not a database, but someone's file";
	struct rl_store_images stale;
	char *epoch_a, *epoch_b;
	DIR *d;
	struct dirent *e;
	char path[256], tmp[300];
	rl_store *s = NULL;
	struct stat sb;
	FILE *f;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	check_same("device", 0);
	check_same("hub", RL_STORE_HUB);

	/* Each hub made from the image draws its own epoch. */
	rl_store_set_images(&rl_store_builtin_images);
	epoch_a = hub_epoch("hub-a.db");
	epoch_b = hub_epoch("hub-b.db");
	CHECK(epoch_a && strlen(epoch_a) == 32 && strspn(epoch_a, "0123456789abcdef") == 32);
	CHECK(epoch_a && epoch_b && strcmp(epoch_a, epoch_b) != 0);
	free(epoch_a);
	free(epoch_b);

	/* An image made for another schema version is not used. */
	stale = rl_store_builtin_images;
	stale.device.schema--;
	rl_store_set_images(&stale);
	snprintf(path, sizeof(path), "%s/stale.db", dir);
	CHECK_EQ_INT(rl_store_open(&s, path, RL_STORE_CREATE), RL_OK);
	if (s) {
		CHECK_EQ_INT(rl_store_made_from_image(s), 0);
		CHECK_EQ_INT(rl_store_schema_version(s), rl_store_schema_latest());
		rl_store_close(s);
	}

	/* A temporary file of a create that crashed (same pid) is replaced. */
	rl_store_set_images(&rl_store_builtin_images);
	snprintf(path, sizeof(path), "%s/crashed.db", dir);
	snprintf(tmp, sizeof(tmp), "%s.new-%ld", path, (long)getpid());
	if ((f = fopen(tmp, "w"))) {
		fputs("half a store", f);
		fclose(f);
	}
	CHECK_EQ_INT(rl_store_open(&s, path, RL_STORE_CREATE), RL_OK);
	if (s) {
		CHECK_EQ_INT(rl_store_made_from_image(s), 1);
		rl_store_close(s);
	}
	CHECK(stat(tmp, &sb) != 0);

	/* Not a store: refused as before, and the file is not overwritten. */
	snprintf(path, sizeof(path), "%s/other.db", dir);
	if ((f = fopen(path, "w"))) {
		fputs(not_a_store, f);
		fclose(f);
	}
	CHECK(rl_store_open(&s, path, RL_STORE_CREATE) < 0);
	CHECK(stat(path, &sb) == 0 && (size_t)sb.st_size == strlen(not_a_store));
	rl_store_set_images(NULL);

	/* No temporary file is left beside the stores. */
	if ((d = opendir(dir))) {
		while ((e = readdir(d)))
			if (strstr(e->d_name, ".new-")) {
				fprintf(stderr, "left behind: %s\n", e->d_name);
				CHECK(!"a temporary file is left");
			}
		closedir(d);
	}

	nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	CHECK_DONE();
}
