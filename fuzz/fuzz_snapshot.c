/*
 * fuzz_snapshot.c — a new device's snapshot bootstrap (sync/src/devsync.c
 * snapshot_load / load_chunk; sync/PROTOCOL.md, "Snapshot") against
 * whatever a hub sends, through the real session, rl_sync_session, over an
 * in-memory connection to a scripted hub thread.
 *
 * The device's store has never pulled (cursor 0, nothing to push) but
 * holds a customer it made and pushed itself, with that customer's bases,
 * so a snapshot both inserts records and upserts over one. While it loads,
 * the device sets its indexes aside and defers search indexing to the
 * commit: the cases this target is for.
 *
 * Input: the frames the hub sends after the device's SNAPSHOT (the SNAP
 * answer, then CHUNKs, ERRORs or anything), separated by NUL bytes; each
 * goes out as one frame (4-byte length, then the bytes: a type byte and
 * the JSON payload), all at once, as a hub streams a snapshot. WELCOME is
 * fixed (it announces snapshots); a later PULL gets an empty last PAGE.
 *
 * Asserts:
 *  - the device asks for the snapshot, and its requests are well-formed;
 *  - a snapshot refused or cut leaves the store exactly as it was (cursor
 *    still 0);
 *  - whatever happened, the store keeps exactly its indexes;
 *  - a loaded one leaves a sound store: PRAGMA integrity_check, the three
 *    full-text indexes' integrity-check, no foreign key left dangling,
 *    every value valid by the model, every snapshot version an integer in
 *    1..cursor;
 *  - errors carry a message; no transaction is left open.
 */
#include "fuzz_util.h"

#include <string.h>

#include "relasi/conn.h"
#include "relasi/devsync.h"
#include "relasi/error.h"
#include "relasi/limits.h"
#include "relasi/wire.h"

#define FZ_MAX_FRAMES 64

static rl_store *store;
static int64_t hlc0;
static uint64_t digest0;
static char *indexes0;

struct script {
	const uint8_t *data;
	size_t size;
	rl_conn *end;
	int asked;          /* the device sent SNAPSHOT */
};

/* Every index of the store, its name and definition (malloc'd). */
static char *index_list(void)
{
	sqlite3_stmt *st;
	char *out = NULL;

	FZ_CHECK(sqlite3_prepare_v2(rl_store_db(store),
		 "SELECT group_concat(name || ':' || coalesce(sql, ''), '|') FROM "
		 "(SELECT name, sql FROM sqlite_schema WHERE type = 'index' ORDER BY name)",
		 -1, &st, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(rl_store_db(store)));
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		out = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	FZ_CHECK(out != NULL, "no indexes");
	return out;
}

static void setup(void)
{
	fz_setup_env();
	store = fz_store_open(0);
	FZ_CHECK(rl_store_set_identity(store, "0000000000000000000000000000d001",
				       "0000000000000000000000000000b0d1") == RL_OK, "identity");
	/* A customer this device made and pushed (answered: no outbox rows,
	 * its bases recorded), before its first pull. */
	rl_store_set_capture(store, 0);
	fz_exec(rl_store_db(store),
		"INSERT INTO users(id, login, name, role) VALUES "
		"('0000000000000000000000000000b0d1', 'budi', 'Budi', 'rep');"
		"INSERT INTO accounts(id, name, city, notes, owner_id, created_at) VALUES "
		"('000000000000000000000000000a0005', 'Toko Sendiri', 'Bandung', 'catatan', "
		" '0000000000000000000000000000b0d1', '2026-03-02T08:00:00Z');"
		"INSERT INTO rl_base(tbl, row_id, field, version) VALUES "
		"('accounts', '000000000000000000000000000a0005', 'name', 3),"
		"('accounts', '000000000000000000000000000a0005', 'city', 4);");
	rl_store_set_capture(store, 1);
	FZ_CHECK(fz_query_int(rl_store_db(store), "SELECT count(*) FROM rl_outbox") == 0,
		 "nothing to push");
	fz_store_snapshot(store);
	hlc0 = rl_store_hlc(store)->last;
	digest0 = fz_db_digest(rl_store_db(store));
	indexes0 = index_list();
}

static int send_text(rl_conn *c, int type, const char *json)
{
	json_t *o = json_loads(json, 0, NULL);
	int rc;

	FZ_CHECK(o != NULL, "bad scripted frame %s", json);
	rc = rl_wire_write(c, type, o, RL_MAX_FRAME, 10000);
	json_decref(o);
	return rc;
}

/* The scripted hub: WELCOME, then after SNAPSHOT every frame of the
 * input; then an empty last PAGE for each PULL until BYE. */
static void *hub_main(void *arg)
{
	struct script *sc = arg;
	size_t pos = 0, n;
	json_t *req = NULL;
	int type = 0, rc;

	rc = rl_wire_read(sc->end, RL_MAX_FRAME, 10000, &type, &req);
	FZ_CHECK(rc == RL_OK && type == RL_FRAME_HELLO, "the device did not say HELLO (%d)", rc);
	json_decref(req);
	req = NULL;
	if (send_text(sc->end, RL_FRAME_WELCOME,
		      "{\"proto\": 1, \"hub\": \"T\", \"device\": \"0000000000000000000000000000d001\", "
		      "\"user\": \"0000000000000000000000000000b0d1\", \"role\": \"rep\", \"hlc\": 1, "
		      "\"restamp\": false, \"snapshot\": 1}") < 0)
		goto done;
	rc = rl_wire_read(sc->end, RL_MAX_FRAME, 10000, &type, &req);
	if (rc == RL_ECLOSED)
		goto done;
	FZ_CHECK(rc == RL_OK && type == RL_FRAME_SNAPSHOT, "the device sent '%c' (%d), not "
		 "SNAPSHOT", type, rc);
	json_decref(req);
	req = NULL;
	sc->asked = 1;
	for (n = 0; pos <= sc->size && n < FZ_MAX_FRAMES; n++) {
		const uint8_t *nul = memchr(sc->data + pos, 0, sc->size - pos);
		size_t len = nul ? (size_t)(nul - (sc->data + pos)) : sc->size - pos;
		unsigned char hdr[4] = { (unsigned char)(len >> 24), (unsigned char)(len >> 16),
					 (unsigned char)(len >> 8), (unsigned char)len };
		if (rl_conn_write(sc->end, hdr, 4, 10000) < 0 ||
		    rl_conn_write(sc->end, sc->data + pos, len, 10000) < 0 || !nul)
			break;
		pos += len + 1;
	}
	for (;;) {
		char page[128];
		rc = rl_wire_read(sc->end, RL_MAX_FRAME, 10000, &type, &req);
		if (rc != RL_OK)
			break;
		FZ_CHECK(type == RL_FRAME_PULL || type == RL_FRAME_BYE, "the device sent a '%c' "
			 "frame after the snapshot", type);
		if (type == RL_FRAME_BYE)
			break;
		snprintf(page, sizeof(page), "{\"changes\": [], \"cursor\": %lld, \"more\": false, "
			 "\"conflicts\": []}", (long long)json_integer_value(json_object_get(req, "cursor")));
		json_decref(req);
		req = NULL;
		if (send_text(sc->end, RL_FRAME_PAGE, page) < 0)
			break;
	}
done:
	json_decref(req);
	rl_conn_close(sc->end);
	return NULL;
}

static void check_loaded(long long cursor)
{
	fz_check_bootstrapped(rl_store_db(store), cursor, "after a snapshot");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct script sc;
	long long cursor;
	char *indexes;
	int rc;

	if (!store)
		setup();
	memset(&sc, 0, sizeof(sc));
	sc.data = data;
	sc.size = size;
	rl_store_hlc(store)->last = hlc0;
	rc = fz_run_session(store, &sc.end, hub_main, &sc);

	FZ_CHECK(rc != RL_ETIMEOUT, "the session timed out");
	FZ_CHECK(sc.asked, "the device did not ask for the snapshot (%d: %s)", rc,
		 rc < 0 ? rl_error_message() : "");
	FZ_CHECK(rc == RL_OK || rl_error_message()[0], "error %d without a message", rc);
	FZ_CHECK(sqlite3_get_autocommit(rl_store_db(store)), "a transaction was left open");
	indexes = index_list();
	FZ_CHECK(strcmp(indexes, indexes0) == 0, "the indexes changed: %s", indexes);
	free(indexes);
	cursor = fz_query_int(rl_store_db(store), "SELECT CAST(value AS INTEGER) FROM rl_meta "
			      "WHERE key = 'cursor'");
	/* A failed session that loaded nothing changed nothing; one the hub
	 * skipped may still note its sync (rl_meta). */
	if (cursor <= 0 && rc < 0)
		FZ_CHECK(fz_db_digest(rl_store_db(store)) == digest0,
			 "no snapshot was loaded (%d: %s), but the store changed", rc,
			 rl_error_message());
	if (cursor > 0)
		check_loaded(cursor);
	fz_store_restore(store);
	return 0;
}
