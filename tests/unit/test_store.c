/*
 * test_store.c — the store through the library API: creation and schema
 * version, the model agreeing with the SQL schema, capture inside the same
 * transaction (a rolled-back write leaves no change behind), coalescing,
 * refusal of physical deletes, and the HLC persisted across reopen.
 */
#include "check.h"

#include <stdlib.h>
#include <unistd.h>

#include "relasi/error.h"
#include "relasi/model.h"
#include "relasi/record.h"
#include "relasi/store.h"

static long long count(rl_store *s, const char *sql)
{
	sqlite3_stmt *st;
	long long n = -1;

	if (sqlite3_prepare_v2(rl_store_db(s), sql, -1, &st, NULL) != SQLITE_OK)
		return -2;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* Every field the model names is a column of its table. */
static void check_model_matches_schema(rl_store *s)
{
	static const char *const tables[] = { "accounts", "contacts", "deals", "activities",
					      "tasks", "stages", "users", "deal_stage_events",
					      "segments", "campaigns", "campaign_members",
					      "tier_config", NULL };
	int i;
	size_t k;

	for (i = 0; tables[i]; i++) {
		const struct rl_table *t = rl_model_table(tables[i]);
		CHECK(t != NULL);
		if (!t)
			continue;
		for (k = 0; k < t->nfields; k++) {
			sqlite3_stmt *st;
			int found = 0;
			sqlite3_prepare_v2(rl_store_db(s),
				"SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", -1, &st, NULL);
			sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, t->fields[k].name, -1, SQLITE_STATIC);
			found = sqlite3_step(st) == SQLITE_ROW;
			sqlite3_finalize(st);
			if (!found)
				fprintf(stderr, "model field %s.%s is not a column\n", t->name,
					t->fields[k].name);
			CHECK(found);
		}
	}
}

int main(void)
{
	char dir[] = "/tmp/relasi-store-XXXXXX";
	char path[256], id[RL_ID_BUFSZ], dev[RL_ID_BUFSZ], user[RL_ID_BUFSZ];
	rl_store *s = NULL;
	struct rl_fieldval v[2];
	int64_t hlc_before;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/relasi.db", dir);

	CHECK_EQ_INT(rl_store_open(&s, path, 0), RL_ENOTFOUND);
	CHECK(s == NULL);
	CHECK_EQ_INT(rl_store_open(&s, path, RL_STORE_CREATE), RL_OK);
	CHECK_EQ_INT(rl_store_schema_version(s), rl_store_schema_latest());
	check_model_matches_schema(s);

	/* No identity yet: writes to synced tables are refused. */
	v[0].field = "name";
	v[0].text = "Toko Satu";
	CHECK_EQ_INT(rl_store_begin(s), RL_OK);
	CHECK(rl_record_create(s, rl_model_table("accounts"), v, 1, id) < 0);
	rl_store_rollback(s);

	rl_id_new(dev, 1);
	rl_id_new(user, 2);
	CHECK_EQ_INT(rl_store_begin(s), RL_OK);
	CHECK_EQ_INT(rl_store_set_identity(s, dev, user), RL_OK);
	CHECK_EQ_INT(rl_store_commit(s), RL_OK);

	/* Capture is part of the write's transaction. */
	CHECK_EQ_INT(rl_store_begin(s), RL_OK);
	CHECK_EQ_INT(rl_record_create(s, rl_model_table("accounts"), v, 1, id), RL_OK);
	CHECK(count(s, "SELECT count(*) FROM rl_outbox") > 0);
	rl_store_rollback(s);
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_outbox"), 0);
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM accounts"), 0);

	CHECK_EQ_INT(rl_store_begin(s), RL_OK);
	CHECK_EQ_INT(rl_record_create(s, rl_model_table("accounts"), v, 1, id), RL_OK);
	CHECK_EQ_INT(rl_store_commit(s), RL_OK);
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_outbox"), 4);  /* name owner created deleted */

	v[0].field = "city";
	v[0].text = "Bogor";
	CHECK_EQ_INT(rl_store_begin(s), RL_OK);
	CHECK_EQ_INT(rl_record_update(s, rl_model_table("accounts"), id, v, 1), RL_OK);
	v[0].text = "Depok";
	CHECK_EQ_INT(rl_record_update(s, rl_model_table("accounts"), id, v, 1), RL_OK);
	CHECK_EQ_INT(rl_store_commit(s), RL_OK);
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_outbox WHERE field = 'city'"), 1);
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_outbox WHERE field = 'city' AND value = 'Depok'"), 1);

	/* A bad value fails before anything is written. */
	v[0].field = "phone";
	v[0].text = "not a phone";
	CHECK_EQ_INT(rl_store_begin(s), RL_OK);
	CHECK_EQ_INT(rl_record_update(s, rl_model_table("accounts"), id, v, 1), RL_EINVALID);
	rl_store_rollback(s);

	/* Physical deletes are refused by the schema, whoever asks. */
	CHECK(sqlite3_exec(rl_store_db(s), "DELETE FROM accounts", NULL, NULL, NULL) != SQLITE_OK);
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM accounts"), 1);

	/* System fields are not settable by hand. */
	v[0].field = "created_at";
	v[0].text = "2020-01-01T00:00";
	CHECK_EQ_INT(rl_record_update(s, rl_model_table("accounts"), id, v, 1), RL_EINVALID);

	/* Capture deferred (an import's bulk mode): new rows are captured at
	 * the commit, whole, with their final values and in rowid order; a
	 * later write to an older row is captured at once, with its base. */
	{
		char id2[RL_ID_BUFSZ], id3[RL_ID_BUFSZ], sql[512];
		long long before = count(s, "SELECT count(*) FROM rl_outbox");
		CHECK_EQ_INT(rl_store_begin(s), RL_OK);
		CHECK_EQ_INT(rl_store_capture_defer(s), RL_OK);
		v[0].field = "name";
		v[0].text = "Toko Dua";
		CHECK_EQ_INT(rl_record_create(s, rl_model_table("accounts"), v, 1, id2), RL_OK);
		v[0].text = "Toko Tiga";
		CHECK_EQ_INT(rl_record_create(s, rl_model_table("accounts"), v, 1, id3), RL_OK);
		CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_outbox"), before);  /* not yet */
		v[0].field = "city";
		v[0].text = "Garut";
		CHECK_EQ_INT(rl_record_update(s, rl_model_table("accounts"), id2, v, 1), RL_OK);
		CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_outbox"), before);
		v[0].text = "Cianjur";
		CHECK_EQ_INT(rl_record_update(s, rl_model_table("accounts"), id, v, 1), RL_OK);
		CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_outbox WHERE value = 'Cianjur'"), 1);
		CHECK_EQ_INT(rl_store_commit(s), RL_OK);
		/* name city owner created deleted, and name owner created deleted */
		CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_outbox"), before + 9);
		CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_outbox WHERE field = 'city' AND "
				   "value = 'Garut' AND base IS NULL"), 1);
		/* stamps rising with seq; after the old row's change, the two
		 * new records, the first one first, each one's fields together
		 * and in column order */
		CHECK_EQ_INT(count(s, "SELECT count(*) FROM (SELECT hlc, lag(hlc) OVER (ORDER BY seq) "
				   "AS phlc FROM rl_outbox) WHERE phlc >= hlc"), 0);
#define NEW_ROWS "(SELECT o.seq, o.row_id, c.cid FROM rl_outbox o JOIN " \
		 "pragma_table_info('accounts') c ON c.name = o.field WHERE o.seq > " \
		 "(SELECT seq FROM rl_outbox WHERE value = 'Cianjur'))"
		CHECK_EQ_INT(count(s, "SELECT count(*) FROM " NEW_ROWS), 9);
		CHECK_EQ_INT(count(s, "SELECT count(*) FROM (SELECT row_id, cid, lag(row_id) OVER w AS "
				   "prow, lag(cid) OVER w AS pcid FROM " NEW_ROWS " WINDOW w AS (ORDER BY "
				   "seq)) WHERE prow = row_id AND pcid >= cid"), 0);   /* column order */
		CHECK_EQ_INT(count(s, "SELECT count(*) FROM (SELECT row_id, lag(row_id) OVER (ORDER BY "
				   "seq) AS prow FROM " NEW_ROWS ") WHERE prow <> row_id"), 1); /* together */
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM rl_outbox WHERE seq = (SELECT min(seq) "
			 "FROM " NEW_ROWS ") AND row_id = '%s'", id2);
		CHECK_EQ_INT(count(s, sql), 1);                              /* first one first */
#undef NEW_ROWS
		/* After a rollback the deferral is over: inserts are captured again. */
		CHECK_EQ_INT(rl_store_begin(s), RL_OK);
		CHECK_EQ_INT(rl_store_capture_defer(s), RL_OK);
		rl_store_rollback(s);
		before = count(s, "SELECT count(*) FROM rl_outbox");
		CHECK_EQ_INT(rl_store_begin(s), RL_OK);
		v[0].field = "name";
		v[0].text = "Toko Empat";
		CHECK_EQ_INT(rl_record_create(s, rl_model_table("accounts"), v, 1, id3), RL_OK);
		CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_outbox"), before + 4);
		CHECK_EQ_INT(rl_store_commit(s), RL_OK);
	}

	hlc_before = rl_store_hlc(s)->last;
	rl_store_close(s);
	s = NULL;
	CHECK_EQ_INT(rl_store_open(&s, path, 0), RL_OK);
	CHECK_EQ_INT(rl_store_hlc(s)->last, hlc_before);      /* clock persisted */
	CHECK_EQ_INT(strcmp(rl_store_device_id(s), dev), 0);
	rl_store_close(s);

	rl_store_remove_files(path);
	rmdir(dir);
	CHECK_DONE();
}
