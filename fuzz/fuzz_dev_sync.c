/*
 * fuzz_dev_sync.c — the device's handling of everything a hub answers
 * (sync/src/devsync.c): WELCOME, PUSHED (push_batch: one result per change,
 * versions, refusals), PAGE (rl_page_parse, then apply_page / check_pulled
 * / apply_run / store_conflicts) and ERROR, through the real session,
 * rl_sync_session, over an in-memory connection to a scripted hub thread,
 * on a real device store that holds pulled records, their bases and
 * unpushed local edits.
 *
 * Input: the hub's answers, separated by NUL bytes; each is sent as one
 * frame (4-byte length, then the bytes: a type byte and the JSON payload)
 * in reply to the device's next request. When the script ends the hub
 * closes the connection.
 *
 * Asserts:
 *  - the device's requests are well-formed frames: HELLO first, then PUSH
 *    and PULL, then BYE;
 *  - an answer the device refuses (any error but the connection closing)
 *    leaves its store exactly as it was before that answer: a rejected
 *    PUSHED or PAGE is applied not at all (one transaction); the one
 *    exception, ERROR batch to a PUSH, renumbers the sent batch as the
 *    last one;
 *  - errors carry a message; a session only succeeds on a last PAGE;
 *  - what the device stores from pulled changes is valid by the model
 *    (rl_model_check_value on every field of every synced row), as every
 *    input from the network must be validated before use;
 *  - the search indexes are sound and hold exactly the live rows (pulled
 *    tombstones leave them, restored records come back);
 *  - a field's base (the hub version it has seen, rl_base) and its value
 *    agree: at the version of a change from an accepted PAGE, the field
 *    holds that change's value (unless a local edit is waiting to be
 *    pushed, which keeps the local value);
 *  - nothing is lost: a change leaves the outbox only for an accepted
 *    (non-refused) result of a PUSHED the device took, and is marked
 *    refused only for a refused one — the changes gone from the outbox
 *    and the refused ones are exactly those counts.
 *
 * Built twice. fuzz_dev_sync: the store's two pending changes are one
 * record's, so a session pushes one batch. fuzz_dev_batches
 * (FZ_DEV_BATCHES, its own corpus): a third pending change on another
 * record and RELASI_SYNC_BATCH=1 make two batches, so the device sends
 * the second while the hub merges the first and records the first answer
 * after sending it (devsync.c, the session loop). The store is then not
 * at rest while a PUSHED is awaited, so there a refused PUSHED is checked
 * by the counts above, not by the store's digest; a refused PAGE still is.
 */
#include "fuzz_util.h"

#include <string.h>

#include "relasi/conn.h"
#include "relasi/devsync.h"
#include "relasi/error.h"
#include "relasi/limits.h"
#include "relasi/wire.h"

#define FZ_MAX_ANSWERS 64

static rl_store *store;
static sqlite3 *watcher;        /* the hub thread's own read-only look at it */
static int64_t hlc0;

struct script {
	const uint8_t *data;
	size_t size;
	rl_conn *end;
	size_t served;
	uint64_t digest[FZ_MAX_ANSWERS];  /* the device's store before each answer */
	long long queued, refused;        /* outbox rows, and refused ones, at the 2nd request */
	int requests[FZ_MAX_ANSWERS + 1];
	size_t off[FZ_MAX_ANSWERS], len[FZ_MAX_ANSWERS];  /* each answer in data */
};

static void setup(void)
{
	fz_setup_env();
	store = fz_store_open(0);
	FZ_CHECK(rl_store_set_identity(store, "0000000000000000000000000000d001",
				       "0000000000000000000000000000b0d1") == RL_OK, "identity");
	/* What an earlier pull brought: a customer and a contact, with bases. */
	rl_store_set_capture(store, 0);
	fz_exec(rl_store_db(store),
		"INSERT INTO users(id, login, name, role) VALUES "
		"('0000000000000000000000000000b0d1', 'budi', 'Budi', 'rep');"
		"INSERT INTO accounts(id, name, city, phone, notes, owner_id, created_at) VALUES "
		"('000000000000000000000000000a0001', 'Toko Makmur', 'Bandung', '+628123456789', "
		" 'one\ntwo\n', '0000000000000000000000000000b0d1', '2026-03-02T08:00:00Z');"
		"INSERT INTO contacts(id, name, account_id, owner_id, created_at) VALUES "
		"('000000000000000000000000000c0001', 'Siti', '000000000000000000000000000a0001', "
		" '0000000000000000000000000000b0d1', '2026-03-02T08:00:00Z');"
		"INSERT INTO rl_base(tbl, row_id, field, version) VALUES "
		"('accounts', '000000000000000000000000000a0001', 'name', 1),"
		"('accounts', '000000000000000000000000000a0001', 'city', 2),"
		"('accounts', '000000000000000000000000000a0001', 'phone', 3),"
		"('accounts', '000000000000000000000000000a0001', 'notes', 5),"
		"('contacts', '000000000000000000000000000c0001', 'name', 9);"
		"INSERT INTO rl_meta(key, value) VALUES ('cursor', '26');");
	rl_store_set_capture(store, 1);
	/* Local edits not pushed yet: two fields of the customer. */
	fz_exec(rl_store_db(store),
		"UPDATE accounts SET city = 'Bogor', phone = '+628111222333' "
		"WHERE id = '000000000000000000000000000a0001'");
#ifdef FZ_DEV_BATCHES
	fz_exec(rl_store_db(store), "UPDATE contacts SET name = 'Siti Aminah' "
		"WHERE id = '000000000000000000000000000c0001'");
	setenv("RELASI_SYNC_BATCH", "1", 1);    /* one record a batch: two batches */
	FZ_CHECK(fz_query_int(rl_store_db(store), "SELECT count(*) FROM rl_outbox") == 3,
		 "expected three pending changes");
#else
	FZ_CHECK(fz_query_int(rl_store_db(store), "SELECT count(*) FROM rl_outbox") == 2,
		 "expected two pending changes");
#endif
	fz_store_snapshot(store);
	hlc0 = rl_store_hlc(store)->last;
	FZ_CHECK(sqlite3_open_v2(rl_store_path(store), &watcher, SQLITE_OPEN_READONLY, NULL) ==
		 SQLITE_OK, "a second connection to the store");
	sqlite3_busy_timeout(watcher, 10000);
}

/* The scripted hub: answer each request with the next piece of the input. */
static void *hub_main(void *arg)
{
	struct script *sc = arg;
	size_t pos = 0;

	while (pos <= sc->size && sc->served < FZ_MAX_ANSWERS) {
		const uint8_t *nul = memchr(sc->data + pos, 0, sc->size - pos);
		size_t len = nul ? (size_t)(nul - (sc->data + pos)) : sc->size - pos;
		unsigned char hdr[4];
		json_t *req = NULL;
		int type = 0, rc;

		rc = rl_wire_read(sc->end, RL_MAX_FRAME, 10000, &type, &req);
		if (rc == RL_ECLOSED)
			break;          /* the device gave up */
		FZ_CHECK(rc == RL_OK, "the device sent a bad frame (%d): %s", rc, rl_error_message());
		FZ_CHECK(sc->served > 0 ? type != RL_FRAME_HELLO : type == RL_FRAME_HELLO,
			 "request %zu is '%c'", sc->served, type);
		FZ_CHECK(type == RL_FRAME_HELLO || type == RL_FRAME_PUSH || type == RL_FRAME_PULL ||
			 type == RL_FRAME_BYE, "the device sent a '%c' frame", type);
		json_decref(req);
		sc->requests[sc->served] = type;
		if (type == RL_FRAME_BYE)
			break;
		/* The device waits for this answer: what it committed is at
		 * rest. It may be reading its store meanwhile (freezing the next
		 * batch while the hub merges), and a store handle belongs to one
		 * thread at a time (relasi/store.h): the digest reads through a
		 * connection of its own, which sees exactly what is committed. */
		sc->digest[sc->served] = fz_db_digest(watcher);
		/* After WELCOME (which may queue changes again: hubepoch.c) and
		 * before any answer to a PUSH: the outbox as the pushes find it. */
		if (sc->served == 1) {
			sc->queued = fz_query_int(watcher, "SELECT count(*) FROM rl_outbox");
			sc->refused = fz_query_int(watcher, "SELECT count(*) FROM rl_outbox "
						   "WHERE state = 'refused'");
		}
		hdr[0] = (unsigned char)(len >> 24);
		hdr[1] = (unsigned char)(len >> 16);
		hdr[2] = (unsigned char)(len >> 8);
		hdr[3] = (unsigned char)len;
		sc->off[sc->served] = pos;
		sc->len[sc->served] = len;
		/* Counted before it is written: the device may act on the
		 * header alone (a bad length) and hang up mid-frame. */
		sc->served++;
		if (rl_conn_write(sc->end, hdr, 4, 10000) < 0 ||
		    rl_conn_write(sc->end, sc->data + pos, len, 10000) < 0)
			break;
		if (!nul)
			break;
		pos += len + 1;
	}
	rl_conn_close(sc->end);
	return NULL;
}

/* Does the stored value (column 0 of st) equal the JSON value pulled? */
static int same_value(sqlite3_stmt *st, json_t *v)
{
	switch (sqlite3_column_type(st, 0)) {
	case SQLITE_NULL: return json_is_null(v);
	case SQLITE_INTEGER:
	case SQLITE_FLOAT:   /* a REAL column keeps an integer as a real */
		return json_is_number(v) && sqlite3_column_double(st, 0) == json_number_value(v);
	default:
		return json_is_string(v) &&
		       strcmp((const char *)sqlite3_column_text(st, 0), json_string_value(v)) == 0;
	}
}

/*
 * Every field whose base (rl_base) is the seq of a change in a PAGE the
 * device accepted, and that has no local edit waiting, holds that change's
 * value: base and value move together. naccepted: how many of the served
 * answers the device took.
 */
static void check_bases(const struct script *sc, size_t naccepted)
{
	sqlite3 *db = rl_store_db(store);
	json_t *pages[FZ_MAX_ANSWERS];
	sqlite3_stmt *st;
	size_t i, k, npages = 0;
	int rc;

	for (i = 0; i < naccepted; i++) {
		if (sc->len[i] < 1 || sc->data[sc->off[i]] != RL_FRAME_PAGE)
			continue;
		pages[npages] = json_loadb((const char *)sc->data + sc->off[i] + 1, sc->len[i] - 1,
					   JSON_REJECT_DUPLICATES, NULL);
		FZ_CHECK(pages[npages], "the device accepted a PAGE that is not JSON");
		npages++;
	}
	FZ_CHECK(sqlite3_prepare_v2(db, "SELECT tbl, row_id, field, version FROM rl_base b WHERE "
				    "NOT EXISTS (SELECT 1 FROM rl_outbox o WHERE o.tbl = b.tbl AND "
				    "o.row_id = b.row_id AND o.field = b.field AND o.state IN "
				    "('pending', 'sent'))", -1, &st, NULL) == SQLITE_OK, "%s",
		 sqlite3_errmsg(db));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);
		const char *r = (const char *)sqlite3_column_text(st, 1);
		const char *f = (const char *)sqlite3_column_text(st, 2);
		long long version = sqlite3_column_int64(st, 3);
		for (k = 0; k < npages; k++) {
			json_t *o;
			json_array_foreach(json_object_get(pages[k], "changes"), i, o) {
				char *sql;
				sqlite3_stmt *cur;
				if (json_integer_value(json_object_get(o, "s")) != version ||
				    strcmp(json_string_value(json_object_get(o, "t")), t) ||
				    strcmp(json_string_value(json_object_get(o, "r")), r) ||
				    strcmp(json_string_value(json_object_get(o, "f")), f))
					continue;
				sql = sqlite3_mprintf("SELECT \"%w\" FROM \"%w\" WHERE id = ?1", f, t);
				FZ_CHECK(sqlite3_prepare_v2(db, sql, -1, &cur, NULL) == SQLITE_OK, "%s",
					 sqlite3_errmsg(db));
				sqlite3_free(sql);
				sqlite3_bind_text(cur, 1, r, -1, SQLITE_STATIC);
				FZ_CHECK(sqlite3_step(cur) == SQLITE_ROW, "%s %s has a base but no row", t, r);
				FZ_CHECK(same_value(cur, json_object_get(o, "v")),
					 "%s %s.%s is at version %lld but does not hold its value", t, r, f,
					 version);
				sqlite3_finalize(cur);
			}
		}
	}
	FZ_CHECK(rc == SQLITE_DONE, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	for (k = 0; k < npages; k++)
		json_decref(pages[k]);
}

/*
 * Nothing lost: of the answers the device took (naccepted of them), the
 * PUSHED ones account exactly for the changes that left the outbox (their
 * non-refused results) and for those now marked refused.
 */
static void check_outbox(const struct script *sc, size_t naccepted)
{
	long long gone = 0, refused = 0, left;
	size_t i, k;

	if (sc->served < 2)
		return;                 /* no PUSH was answered */
	for (i = 1; i < naccepted; i++) {
		json_t *a, *r;
		if (sc->len[i] < 1 || sc->data[sc->off[i]] != RL_FRAME_PUSHED)
			continue;
		a = json_loadb((const char *)sc->data + sc->off[i] + 1, sc->len[i] - 1,
			       JSON_REJECT_DUPLICATES, NULL);
		FZ_CHECK(a, "the device took a PUSHED that is not JSON");
		json_array_foreach(json_object_get(a, "results"), k, r) {
			const char *status = json_string_value(json_object_get(r, "s"));
			FZ_CHECK(status, "the device took a result without a status");
			if (strcmp(status, "refused") == 0)
				refused++;
			else
				gone++;
		}
		json_decref(a);
	}
	left = sc->queued - fz_query_int(watcher, "SELECT count(*) FROM rl_outbox");
	FZ_CHECK(left == gone, "%lld changes left the outbox for %lld accepted results", left, gone);
	FZ_CHECK(fz_query_int(watcher, "SELECT count(*) FROM rl_outbox WHERE state = 'refused'") -
		 sc->refused == refused, "refused changes do not match the %lld refused results",
		 refused);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct script sc;
	int rc;

	if (!store)
		setup();
	memset(&sc, 0, sizeof(sc));
	sc.data = data;
	sc.size = size;
	rl_store_hlc(store)->last = hlc0;
	rc = fz_run_session(store, &sc.end, hub_main, &sc);

	FZ_CHECK(rc != RL_ETIMEOUT, "the session timed out");
	if (rc == RL_OK) {
		FZ_CHECK(sc.served > 0 && sc.requests[sc.served - 1] == RL_FRAME_PULL,
			 "a session succeeded without a last PAGE");
	} else {
		FZ_CHECK(rl_error_message()[0], "error %d without a message", rc);
		FZ_CHECK(sc.served > 0, "the device failed before any answer (%d)", rc);
		if (rc == RL_EREUSED) {
			/* The one refusal that changes the store: the sent batch is
			 * renumbered after every number used (devsync.c renumber_batch). */
			sqlite3_stmt *st;
			FZ_CHECK(sc.requests[sc.served - 1] == RL_FRAME_PUSH, "ERROR batch not to a PUSH");
			FZ_CHECK(fz_db_digest(rl_store_db(store)) != sc.digest[sc.served - 1],
				 "ERROR batch left the sent batch under its number");
			FZ_CHECK(sqlite3_prepare_v2(rl_store_db(store),
				"SELECT count(DISTINCT batch), max(batch) = (SELECT value - 1 FROM rl_meta "
				"WHERE key = 'next_batch') FROM rl_outbox WHERE state = 'sent'", -1, &st,
				NULL) == SQLITE_OK, "prepare");
			/* fuzz_dev_batches: the batch sent after it moves too, in
			 * order (rl_sync_renumber_batch). */
			FZ_CHECK(sqlite3_step(st) == SQLITE_ROW &&
#ifdef FZ_DEV_BATCHES
				 sqlite3_column_int(st, 0) >= 1 &&
#else
				 sqlite3_column_int(st, 0) == 1 &&
#endif
				 sqlite3_column_int(st, 1) == 1,
				 "a reused batch was not renumbered as the last batch");
			sqlite3_finalize(st);
		} else if (rc != RL_ECLOSED
#ifdef FZ_DEV_BATCHES
			   && sc.requests[sc.served - 1] != RL_FRAME_PUSH   /* not at rest: above */
#endif
			   )
			FZ_CHECK(fz_db_digest(rl_store_db(store)) == sc.digest[sc.served - 1],
				 "answer %zu (to '%c') was refused (%d: %s) but changed the store",
				 sc.served, sc.requests[sc.served - 1], rc, rl_error_message());
	}
	FZ_CHECK(sqlite3_get_autocommit(rl_store_db(store)), "a transaction was left open");
	check_bases(&sc, rc == RL_OK || rc == RL_ECLOSED ? sc.served : sc.served - 1);
	check_outbox(&sc, rc == RL_OK || rc == RL_ECLOSED ? sc.served : sc.served - 1);
	fz_check_synced_values(rl_store_db(store), "after a sync");
	fz_check_search_indexes(rl_store_db(store), "after a sync");
	fz_store_restore(store);
	return 0;
}
