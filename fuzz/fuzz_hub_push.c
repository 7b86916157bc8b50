/*
 * fuzz_hub_push.c — the hub's change-batch decoder and applier
 * (hub/hubstore.c, hub_push): a PUSH payload as it arrives from an
 * authenticated device, applied to a real hub store (in memory, opened with
 * RL_STORE_HUB like hub_store_open) that already holds users, customers, a
 * contact, a deal, notes to merge and a tombstone, with the merge rules,
 * roles, conflicts, edit-against-delete and duplicate candidates all live.
 *
 * Input: the first byte picks the device (byte % 5: rep budi, rep ani,
 * manager mira, marketing maya, admin); the rest is the PUSH frame's JSON,
 * read as the server reads it (rl_push_parse, then hub_push_read). The
 * checks below read the same bytes with jansson (rl_wire_decode); whether
 * the two readers agree is fuzz_push's to check.
 *
 * Asserts:
 *  - a rejected batch (RL_EPROTO / RL_ETOOBIG, or RL_EREUSED for a number
 *    seen before, with a message; nothing else is acceptable for a peer's
 *    bytes) has no answer and leaves the store exactly as it was;
 *  - an accepted batch answers {batch, results} with one result per change,
 *    each "applied" | "same" | "merged" | "conflict" | "refused" with a
 *    version >= 0, a reason when refused, and, when applied or merged, the
 *    hub log entry of that version names the change's table, row and field;
 *  - every value the batch added to the hub log passes the model's check
 *    (a refused value never gets in), and each field's current version in
 *    the log holds the value that the record has in its table;
 *  - idempotence: the same batch again, through the jansson path
 *    (hub_push, as offline bundles take it), gets the same answer and
 *    changes nothing; a batch number seen before with other changes is
 *    refused (RL_EREUSED), nothing applied;
 *  - the hub's store keeps no search or nearby index: no trigger feeds
 *    one and their tables stay empty after a batch (relasi/store.h,
 *    schema/hub/008_no_device_indexes.sql);
 *  - a PULL from cursor 0 afterwards succeeds with changes in seq order,
 *    each naming its log entry's table, row, field, stamp and device, with
 *    the value the log holds (same type; reals bit for bit; text byte for
 *    byte): the page is written without jansson (relasi/jsonw.h).
 */
#include "fuzz_util.h"

#include <string.h>

#include "hub.h"
#include "relasi/error.h"
#include "relasi/limits.h"
#include "relasi/model.h"
#include "relasi/push.h"
#include "relasi/wire.h"

static rl_store *store;
static int64_t hlc0;
static long long seq0;

static const struct hub_peer peers[5] = {
	{ "0000000000000000000000000000d001", "0000000000000000000000000000b0d1", "rep", "", "", 0 },
	{ "0000000000000000000000000000d002", "0000000000000000000000000000b0d2", "rep", "", "", 0 },
	{ "0000000000000000000000000000d003", "0000000000000000000000000000b0d3", "manager", "", "", 0 },
	{ "0000000000000000000000000000d004", "0000000000000000000000000000b0d4", "marketing", "", "", 0 },
	{ "0000000000000000000000000000d005", "0000000000000000000000000000b0d5", "admin", "", "", 0 },
};

/* The hub's starting state, pushed through hub_push itself. Stamps are
 * FZ_NOW_MS << 16 (+ a counter). */
static const char *const setup_batches[] = {
	/* budi creates a customer, a contact, a deal, an activity and a task:
	 * hub versions (seq) 1..30 in this order */
	"{\"batch\":1,\"cursor\":0,\"changes\":["
	"{\"t\":\"accounts\",\"r\":\"000000000000000000000000000a0001\",\"f\":\"name\",\"v\":\"Toko Makmur\",\"b\":0,\"h\":116158758912000000},"
	"{\"t\":\"accounts\",\"r\":\"000000000000000000000000000a0001\",\"f\":\"city\",\"v\":\"Bandung\",\"b\":0,\"h\":116158758912000001},"
	"{\"t\":\"accounts\",\"r\":\"000000000000000000000000000a0001\",\"f\":\"phone\",\"v\":\"+628123456789\",\"b\":0,\"h\":116158758912000002},"
	"{\"t\":\"accounts\",\"r\":\"000000000000000000000000000a0001\",\"f\":\"email\",\"v\":\"toko@makmur.co.id\",\"b\":0,\"h\":116158758912000003},"
	"{\"t\":\"accounts\",\"r\":\"000000000000000000000000000a0001\",\"f\":\"notes\",\"v\":\"one\\ntwo\\nthree\\n\",\"b\":0,\"h\":116158758912000004},"
	"{\"t\":\"accounts\",\"r\":\"000000000000000000000000000a0001\",\"f\":\"owner_id\",\"v\":\"0000000000000000000000000000b0d1\",\"b\":0,\"h\":116158758912000005},"
	"{\"t\":\"accounts\",\"r\":\"000000000000000000000000000a0001\",\"f\":\"created_at\",\"v\":\"2026-03-02T08:00:00Z\",\"b\":0,\"h\":116158758912000006},"
	"{\"t\":\"accounts\",\"r\":\"000000000000000000000000000a0001\",\"f\":\"deleted\",\"v\":0,\"b\":0,\"h\":116158758912000007},"
	"{\"t\":\"contacts\",\"r\":\"000000000000000000000000000c0001\",\"f\":\"name\",\"v\":\"Siti\",\"b\":0,\"h\":116158758912000008},"
	"{\"t\":\"contacts\",\"r\":\"000000000000000000000000000c0001\",\"f\":\"account_id\",\"v\":\"000000000000000000000000000a0001\",\"b\":0,\"h\":116158758912000009},"
	"{\"t\":\"contacts\",\"r\":\"000000000000000000000000000c0001\",\"f\":\"owner_id\",\"v\":\"0000000000000000000000000000b0d1\",\"b\":0,\"h\":116158758912000010},"
	"{\"t\":\"contacts\",\"r\":\"000000000000000000000000000c0001\",\"f\":\"created_at\",\"v\":\"2026-03-02T08:00:00Z\",\"b\":0,\"h\":116158758912000011},"
	"{\"t\":\"deals\",\"r\":\"00000000000000000000000000de0001\",\"f\":\"title\",\"v\":\"Kulkas 20 unit\",\"b\":0,\"h\":116158758912000012},"
	"{\"t\":\"deals\",\"r\":\"00000000000000000000000000de0001\",\"f\":\"account_id\",\"v\":\"000000000000000000000000000a0001\",\"b\":0,\"h\":116158758912000013},"
	"{\"t\":\"deals\",\"r\":\"00000000000000000000000000de0001\",\"f\":\"currency\",\"v\":\"IDR\",\"b\":0,\"h\":116158758912000014},"
	"{\"t\":\"deals\",\"r\":\"00000000000000000000000000de0001\",\"f\":\"amount\",\"v\":4500000000,\"b\":0,\"h\":116158758912000015},"
	"{\"t\":\"deals\",\"r\":\"00000000000000000000000000de0001\",\"f\":\"stage_id\",\"v\":\"00000000000000000000000000000001\",\"b\":0,\"h\":116158758912000016},"
	"{\"t\":\"deals\",\"r\":\"00000000000000000000000000de0001\",\"f\":\"owner_id\",\"v\":\"0000000000000000000000000000b0d1\",\"b\":0,\"h\":116158758912000017},"
	"{\"t\":\"deals\",\"r\":\"00000000000000000000000000de0001\",\"f\":\"created_at\",\"v\":\"2026-03-02T08:00:00Z\",\"b\":0,\"h\":116158758912000018},"
	"{\"t\":\"activities\",\"r\":\"000000000000000000000000ac700001\",\"f\":\"kind\",\"v\":\"visit\",\"b\":0,\"h\":116158758912000019},"
	"{\"t\":\"activities\",\"r\":\"000000000000000000000000ac700001\",\"f\":\"account_id\",\"v\":\"000000000000000000000000000a0001\",\"b\":0,\"h\":116158758912000020},"
	"{\"t\":\"activities\",\"r\":\"000000000000000000000000ac700001\",\"f\":\"at\",\"v\":\"2026-03-02T08:30:00Z\",\"b\":0,\"h\":116158758912000021},"
	"{\"t\":\"activities\",\"r\":\"000000000000000000000000ac700001\",\"f\":\"lat\",\"v\":-6.91,\"b\":0,\"h\":116158758912000022},"
	"{\"t\":\"activities\",\"r\":\"000000000000000000000000ac700001\",\"f\":\"lon\",\"v\":107.61,\"b\":0,\"h\":116158758912000023},"
	"{\"t\":\"activities\",\"r\":\"000000000000000000000000ac700001\",\"f\":\"user_id\",\"v\":\"0000000000000000000000000000b0d1\",\"b\":0,\"h\":116158758912000024},"
	"{\"t\":\"activities\",\"r\":\"000000000000000000000000ac700001\",\"f\":\"created_at\",\"v\":\"2026-03-02T08:00:00Z\",\"b\":0,\"h\":116158758912000025},"
	"{\"t\":\"tasks\",\"r\":\"0000000000000000000000007a5c0001\",\"f\":\"title\",\"v\":\"Kirim penawaran\",\"b\":0,\"h\":116158758912000026},"
	"{\"t\":\"tasks\",\"r\":\"0000000000000000000000007a5c0001\",\"f\":\"due\",\"v\":\"2026-03-04\",\"b\":0,\"h\":116158758912000027},"
	"{\"t\":\"tasks\",\"r\":\"0000000000000000000000007a5c0001\",\"f\":\"owner_id\",\"v\":\"0000000000000000000000000000b0d1\",\"b\":0,\"h\":116158758912000028},"
	"{\"t\":\"tasks\",\"r\":\"0000000000000000000000007a5c0001\",\"f\":\"created_at\",\"v\":\"2026-03-02T08:00:00Z\",\"b\":0,\"h\":116158758912000029}"
	"]}",
	/* budi deletes the task: seq 31 */
	"{\"batch\":2,\"cursor\":30,\"changes\":["
	"{\"t\":\"tasks\",\"r\":\"0000000000000000000000007a5c0001\",\"f\":\"deleted\",\"v\":1,\"b\":0,\"h\":116158758912000040}"
	"]}",
};

static json_t *decode(const char *text, size_t len)
{
	unsigned char *buf = malloc(len + 1);
	json_t *j = NULL;
	int type;

	FZ_CHECK(buf != NULL, "out of memory");
	buf[0] = RL_FRAME_PUSH;
	memcpy(buf + 1, text, len);
	if (rl_wire_decode(buf, len + 1, &type, &j) < 0)
		j = NULL;
	free(buf);
	return j;
}

static void setup(void)
{
	struct hub_stats st;
	size_t i;

	fz_setup_env();
	store = fz_store_open(RL_STORE_HUB);     /* as hub_store_open opens hub.db */
	fz_exec(rl_store_db(store),
		"INSERT INTO users(id, login, name, role) VALUES "
		"('0000000000000000000000000000b0d1', 'budi', 'Budi', 'rep'),"
		"('0000000000000000000000000000b0d2', 'ani', 'Ani', 'rep'),"
		"('0000000000000000000000000000b0d3', 'mira', 'Mira', 'manager'),"
		"('0000000000000000000000000000b0d4', 'maya', 'Maya', 'marketing'),"
		"('0000000000000000000000000000b0d5', 'adm', 'Admin', 'admin');"
		"INSERT INTO hub_devices(id, user_id, name, fingerprint, enrolled_at) VALUES "
		"('0000000000000000000000000000d001', '0000000000000000000000000000b0d1', 'a', 'f1', 'x'),"
		"('0000000000000000000000000000d002', '0000000000000000000000000000b0d2', 'b', 'f2', 'x'),"
		"('0000000000000000000000000000d003', '0000000000000000000000000000b0d3', 'c', 'f3', 'x'),"
		"('0000000000000000000000000000d004', '0000000000000000000000000000b0d4', 'd', 'f4', 'x'),"
		"('0000000000000000000000000000d005', '0000000000000000000000000000b0d5', 'e', 'f5', 'x');");
	for (i = 0; i < sizeof(setup_batches) / sizeof(setup_batches[0]); i++) {
		json_t *push = decode(setup_batches[i], strlen(setup_batches[i])), *resp = NULL;
		size_t k;
		FZ_CHECK(push != NULL, "setup batch %zu is not JSON", i);
		memset(&st, 0, sizeof(st));
		FZ_CHECK(hub_push(store, &peers[0], push, &resp, NULL, &st) == RL_OK, "setup batch %zu: %s",
			 i, rl_error_message());
		for (k = 0; k < json_array_size(json_object_get(resp, "results")); k++) {
			const char *s = json_string_value(json_object_get(
				json_array_get(json_object_get(resp, "results"), k), "s"));
			FZ_CHECK(s && strcmp(s, "applied") == 0, "setup batch %zu change %zu: %s (%s)", i, k,
				 s ? s : "?", json_string_value(json_object_get(json_array_get(
				 json_object_get(resp, "results"), k), "reason")));
		}
		json_decref(push);
		json_decref(resp);
	}
	fz_store_snapshot(store);
	hlc0 = rl_store_hlc(store)->last;
	seq0 = fz_query_int(rl_store_db(store), "SELECT max(seq) FROM hub_log");
}

static int same_value(sqlite3_stmt *a, int ca, sqlite3_stmt *b, int cb)
{
	int ta = sqlite3_column_type(a, ca), tb = sqlite3_column_type(b, cb);

	/* A REAL column stores an integer as a real (SQLite affinity): equal
	 * numbers are the same value. */
	if ((ta == SQLITE_INTEGER || ta == SQLITE_FLOAT) && (tb == SQLITE_INTEGER || tb == SQLITE_FLOAT))
		return sqlite3_column_double(a, ca) == sqlite3_column_double(b, cb);
	if (ta != tb)
		return 0;
	switch (ta) {
	case SQLITE_NULL: return 1;
	case SQLITE_INTEGER: return sqlite3_column_int64(a, ca) == sqlite3_column_int64(b, cb);
	case SQLITE_FLOAT: return sqlite3_column_double(a, ca) == sqlite3_column_double(b, cb);
	default:
		return sqlite3_column_bytes(a, ca) == sqlite3_column_bytes(b, cb) &&
		       memcmp(sqlite3_column_blob(a, ca), sqlite3_column_blob(b, cb),
			      (size_t)sqlite3_column_bytes(a, ca)) == 0;
	}
}

/* What the batch added to the log is valid, and tables agree with the log. */
static void check_log(void)
{
	sqlite3 *db = rl_store_db(store);
	sqlite3_stmt *st;
	int rc;

	FZ_CHECK(sqlite3_prepare_v2(db, "SELECT l.seq, l.tbl, l.row_id, l.field, l.value, "
				    "f.version = l.seq FROM hub_log l LEFT JOIN hub_fields f USING "
				    "(tbl, row_id, field) WHERE l.seq > ?1 ORDER BY l.seq", -1, &st,
				    NULL) == SQLITE_OK, "%s", sqlite3_errmsg(db));
	sqlite3_bind_int64(st, 1, seq0);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *tbl = (const char *)sqlite3_column_text(st, 1);
		const char *row = (const char *)sqlite3_column_text(st, 2);
		const char *field = (const char *)sqlite3_column_text(st, 3);
		const struct rl_table *t = rl_model_table(tbl);
		const struct rl_field *f = t ? rl_model_field(t, field) : NULL;
		struct rl_value v;

		FZ_CHECK(t && f && strcmp(t->name, tbl) == 0 && rl_id_valid(row),
			 "logged %s.%s of '%s'", tbl, field, row);
		memset(&v, 0, sizeof(v));
		switch (sqlite3_column_type(st, 4)) {
		case SQLITE_INTEGER: v.type = RL_V_INT; v.i = sqlite3_column_int64(st, 4); break;
		case SQLITE_FLOAT: v.type = RL_V_REAL; v.d = sqlite3_column_double(st, 4); break;
		case SQLITE_NULL: v.type = RL_V_NULL; break;
		default: v.type = RL_V_TEXT; v.s = (const char *)sqlite3_column_text(st, 4); break;
		}
		FZ_CHECK(rl_model_check_value(t, f, &v) == RL_OK, "the hub logged an invalid %s.%s",
			 tbl, field);
		if (sqlite3_column_int(st, 5)) {
			char *sql = sqlite3_mprintf("SELECT \"%w\" FROM \"%w\" WHERE id = ?1", field, tbl);
			sqlite3_stmt *cur;
			FZ_CHECK(sqlite3_prepare_v2(db, sql, -1, &cur, NULL) == SQLITE_OK, "%s",
				 sqlite3_errmsg(db));
			sqlite3_free(sql);
			sqlite3_bind_text(cur, 1, row, -1, SQLITE_STATIC);
			FZ_CHECK(sqlite3_step(cur) == SQLITE_ROW, "logged %s %s has no row", tbl, row);
			FZ_CHECK(same_value(st, 4, cur, 0), "%s %s.%s: the table and the log disagree",
				 tbl, row, field);
			sqlite3_finalize(cur);
		}
	}
	FZ_CHECK(rc == SQLITE_DONE, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
}

static void check_answer(json_t *push, json_t *resp)
{
	static const char *const states[] = { "applied", "same", "merged", "conflict", "refused" };
	json_t *changes = json_object_get(push, "changes"), *results = json_object_get(resp, "results");
	size_t i, k;

	FZ_CHECK(json_is_object(resp) && json_is_array(results), "answer without results");
	FZ_CHECK(json_equal(json_object_get(resp, "batch"), json_object_get(push, "batch")),
		 "answer for another batch");
	FZ_CHECK(json_array_size(results) == json_array_size(changes), "%zu results for %zu changes",
		 json_array_size(results), json_array_size(changes));
	for (i = 0; i < json_array_size(results); i++) {
		json_t *r = json_array_get(results, i), *c = json_array_get(changes, i);
		const char *s = json_string_value(json_object_get(r, "s"));
		json_t *v = json_object_get(r, "v");
		int known = 0;
		for (k = 0; s && k < sizeof(states) / sizeof(states[0]); k++)
			known |= strcmp(s, states[k]) == 0;
		FZ_CHECK(known, "result %zu: status '%s'", i, s ? s : "(none)");
		FZ_CHECK(json_is_integer(v) && json_integer_value(v) >= 0, "result %zu: bad version", i);
		if (strcmp(s, "refused") == 0) {
			const char *why = json_string_value(json_object_get(r, "reason"));
			FZ_CHECK(why && why[0], "result %zu: refused without a reason", i);
		}
		if (strcmp(s, "applied") == 0 || strcmp(s, "merged") == 0) {
			sqlite3_stmt *st;
			FZ_CHECK(json_integer_value(v) > seq0, "result %zu: %s at old version %lld", i, s,
				 (long long)json_integer_value(v));
			FZ_CHECK(sqlite3_prepare_v2(rl_store_db(store), "SELECT tbl, row_id, field FROM "
						    "hub_log WHERE seq = ?1", -1, &st, NULL) == SQLITE_OK,
				 "prepare");
			sqlite3_bind_int64(st, 1, json_integer_value(v));
			FZ_CHECK(sqlite3_step(st) == SQLITE_ROW, "result %zu: no log entry %lld", i,
				 (long long)json_integer_value(v));
			FZ_CHECK(strcmp((const char *)sqlite3_column_text(st, 0),
					json_string_value(json_object_get(c, "t"))) == 0 &&
				 strcmp((const char *)sqlite3_column_text(st, 1),
					json_string_value(json_object_get(c, "r"))) == 0 &&
				 strcmp((const char *)sqlite3_column_text(st, 2),
					json_string_value(json_object_get(c, "f"))) == 0,
				 "result %zu: log entry %lld is another field", i,
				 (long long)json_integer_value(v));
			sqlite3_finalize(st);
		}
	}
}

static void check_pull(const struct hub_peer *p)
{
	struct hub_stats st;
	json_t *req = json_pack("{s:i, s:i}", "cursor", 0, "limit", 2000), *page = NULL, *o;
	long long last = 0;
	size_t i;

	sqlite3_stmt *log;

	memset(&st, 0, sizeof(st));
	FZ_CHECK(hub_pull(store, p, req, &page, &st) == RL_OK, "pull: %s", rl_error_message());
	FZ_CHECK(sqlite3_prepare_v2(rl_store_db(store), "SELECT tbl, row_id, field, value, hlc, "
				    "device FROM hub_log WHERE seq = ?1", -1, &log, NULL) == SQLITE_OK,
		 "prepare");
	json_array_foreach(json_object_get(page, "changes"), i, o) {
		long long s = json_integer_value(json_object_get(o, "s"));
		json_t *v = json_object_get(o, "v");
		FZ_CHECK(s > last, "pulled seq %lld after %lld", s, last);
		last = s;
		/* The page is written without jansson (relasi/jsonw.h): every
		 * value must read back as the log holds it. */
		sqlite3_bind_int64(log, 1, s);
		FZ_CHECK(sqlite3_step(log) == SQLITE_ROW, "pulled seq %lld is not in the log", s);
		FZ_CHECK(strcmp(json_string_value(json_object_get(o, "t")),
				(const char *)sqlite3_column_text(log, 0)) == 0 &&
			 strcmp(json_string_value(json_object_get(o, "r")),
				(const char *)sqlite3_column_text(log, 1)) == 0 &&
			 strcmp(json_string_value(json_object_get(o, "f")),
				(const char *)sqlite3_column_text(log, 2)) == 0 &&
			 json_integer_value(json_object_get(o, "h")) == sqlite3_column_int64(log, 4) &&
			 strcmp(json_string_value(json_object_get(o, "d")),
				(const char *)sqlite3_column_text(log, 5)) == 0,
			 "pulled seq %lld names another change", s);
		switch (sqlite3_column_type(log, 3)) {
		case SQLITE_NULL: FZ_CHECK(json_is_null(v), "seq %lld: null differs", s); break;
		case SQLITE_INTEGER:
			FZ_CHECK(json_is_integer(v) && json_integer_value(v) ==
				 sqlite3_column_int64(log, 3), "seq %lld: integer differs", s);
			break;
		case SQLITE_FLOAT:
			FZ_CHECK(json_is_real(v) && memcmp(&(double){ json_real_value(v) },
							   &(double){ sqlite3_column_double(log, 3) },
							   sizeof(double)) == 0, "seq %lld: real differs", s);
			break;
		default:
			FZ_CHECK(json_is_string(v) && json_string_length(v) ==
				 (size_t)sqlite3_column_bytes(log, 3) &&
				 memcmp(json_string_value(v), sqlite3_column_text(log, 3),
					json_string_length(v)) == 0, "seq %lld: text differs", s);
		}
		sqlite3_reset(log);
	}
	sqlite3_finalize(log);
	FZ_CHECK(json_integer_value(json_object_get(page, "cursor")) == last, "page cursor");
	json_decref(page);
	json_decref(req);
}

/* The answer recorded for this device's batch number, if any. */
/* The hub keeps no search or nearby index (relasi/store.h). */
static void check_no_device_indexes(void)
{
	sqlite3 *db = rl_store_db(store);

	FZ_CHECK(fz_query_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND "
			      "(name GLOB 'fts_*' OR name GLOB 'geo_*')") == 0,
		 "hub: a search or nearby trigger is back");
	FZ_CHECK(fz_query_int(db, "SELECT (SELECT count(*) FROM fts_accounts_docsize) + "
			      "(SELECT count(*) FROM fts_contacts_docsize) + "
			      "(SELECT count(*) FROM fts_activities_docsize) + "
			      "(SELECT count(*) FROM geo_accounts)") == 0,
		 "hub: a batch wrote to a search or nearby index");
}

static json_t *stored_answer(const struct hub_peer *p, json_t *batch)
{
	sqlite3_stmt *st;
	json_t *j = NULL;

	if (!json_is_integer(batch))
		return NULL;
	FZ_CHECK(sqlite3_prepare_v2(rl_store_db(store), "SELECT response FROM hub_batches WHERE "
				    "device = ?1 AND batch = ?2", -1, &st, NULL) == SQLITE_OK, "prepare");
	sqlite3_bind_text(st, 1, p->device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, json_integer_value(batch));
	if (sqlite3_step(st) == SQLITE_ROW)
		j = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
	sqlite3_finalize(st);
	return j;
}

/* The answer the server sends, as a device decodes it (strictly). */
static json_t *answer_of(const char *text)
{
	json_t *resp;

	FZ_CHECK(text, "an answer without its text");
	resp = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	FZ_CHECK(resp != NULL, "the answer's text is not JSON: %s", text);
	return resp;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct hub_peer *p;
	struct hub_stats st;
	static struct rl_push rd;
	json_t *push, *resp = NULL, *again = NULL, *stored;
	char *text = NULL;
	uint64_t before, after;
	int rc;

	if (!store)
		setup();
	if (size == 0)
		return 0;
	p = &peers[data[0] % 5];
	if (!(push = decode((const char *)data + 1, size - 1)))
		return 0;               /* not a frame the server would pass on (fuzz_wire) */
	rl_store_hlc(store)->last = hlc0;
	before = fz_db_digest(rl_store_db(store));
	stored = stored_answer(p, json_object_get(push, "batch"));
	memset(&st, 0, sizeof(st));
	if ((rc = rl_push_parse(&rd, data + 1, size - 1)) == RL_OK)
		rc = hub_push_read(store, p, &rd, &text, &st);
	if (getenv("FZ_DEBUG")) {
		fprintf(stderr, "hub_push: %d %s\n", rc, text ? text : rl_error_message());
	}
	if (rc != RL_OK) {
		FZ_CHECK(rc == RL_EPROTO || rc == RL_ETOOBIG || (rc == RL_EREUSED && stored),
			 "a peer's batch gave error %d: %s", rc, rl_error_message());
		FZ_CHECK(rl_error_message()[0], "error without a message");
		FZ_CHECK(text == NULL, "an answer with an error");
		FZ_CHECK(fz_db_digest(rl_store_db(store)) == before, "a rejected batch changed the store");
	} else if (stored) {
		/* A batch number seen before: its recorded answer, nothing applied. */
		resp = answer_of(text);
		FZ_CHECK(json_equal(resp, stored), "a repeated batch got another answer");
		FZ_CHECK(fz_db_digest(rl_store_db(store)) == before, "a repeated batch changed the store");
	} else {
		resp = answer_of(text);
		check_answer(push, resp);
		check_log();
		check_no_device_indexes();
		after = fz_db_digest(rl_store_db(store));
		FZ_CHECK(hub_push(store, p, push, &again, NULL, &st) == RL_OK, "the same batch again: %s",
			 rl_error_message());
		FZ_CHECK(json_equal(resp, again), "the same batch got another answer");
		FZ_CHECK(fz_db_digest(rl_store_db(store)) == after, "the same batch applied twice");
		check_pull(p);
	}
	json_decref(resp);
	free(text);
	json_decref(again);
	json_decref(stored);
	json_decref(push);
	fz_store_restore(store);
	return 0;
}
