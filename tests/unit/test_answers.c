/*
 * test_answers.c — the device's reading of the hub's PUSHED and PAGE
 * answers (sync/src/pushed.c, sync/src/page.c, used by devsync.c) against
 * a scripted hub over an in-memory connection, on a real store with
 * pending changes: an answer outside the protocol's shape is refused with
 * an error naming the cause and records nothing of itself — above all a
 * PUSHED with a status the device does not know, which the device used to
 * count as "same" and drop the change from its outbox; a well-formed
 * exchange is recorded (bases, outbox, cursor, conflicts). And a pull that
 * brings a version older than the one holding the device's own value (its
 * push came back 'merged', or 'applied' at a later version) does not write
 * the older text over it, even when the pull is cut before the newer
 * version arrives (schema/018_hold.sql).
 */
#include "check.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relasi/conn.h"
#include "relasi/devsync.h"
#include "relasi/error.h"
#include "relasi/limits.h"
#include "relasi/store.h"
#include "relasi/wire.h"

#define DEV "0000000000000000000000000000d001"
#define USR "0000000000000000000000000000b0d1"
#define ACC "000000000000000000000000000a0001"

/* The hub's side: WELCOME, then to each PUSH a PUSHED of one result per
 * change with `status` (versions v0, v0 + 1...; 101 when v0 is 0), then to
 * the first PULL the page `page` (text after the type byte), to the second
 * `page2`; without one it hangs up (a cut pull). */
struct script {
	rl_conn *end;
	const char *status;
	const char *page, *page2;
	int v0;
	int pushes, pulls;
};

static void send_raw(rl_conn *c, char type, const char *payload)
{
	size_t n = strlen(payload) + 1;
	unsigned char hdr[5] = { (unsigned char)(n >> 24), (unsigned char)(n >> 16),
				 (unsigned char)(n >> 8), (unsigned char)n, (unsigned char)type };

	if (rl_conn_write(c, hdr, 5, 5000) == RL_OK)
		rl_conn_write(c, payload, n - 1, 5000);
}

static void *hub_main(void *arg)
{
	struct script *sc = arg;
	json_t *req = NULL;
	int type;

	while (rl_wire_read(sc->end, RL_MAX_FRAME, 5000, &type, &req) == RL_OK) {
		if (type == RL_FRAME_HELLO) {
			send_raw(sc->end, RL_FRAME_WELCOME, "{\"proto\":1,\"hub\":\"T\",\"device\":\"" DEV
				 "\",\"user\":\"" USR "\",\"role\":\"rep\",\"hlc\":1,\"restamp\":false}");
		} else if (type == RL_FRAME_PUSH) {
			size_t i, n = json_array_size(json_object_get(req, "changes"));
			char *answer = sqlite3_mprintf("{\"batch\":%lld,\"results\":[",
				(long long)json_integer_value(json_object_get(req, "batch")));
			for (i = 0; i < n; i++)
				answer = sqlite3_mprintf("%z%s{\"s\":\"%s\",\"v\":%d}", answer, i ? "," : "",
							 sc->status, (sc->v0 ? sc->v0 : 101) + (int)i);
			answer = sqlite3_mprintf("%z]}", answer);
			send_raw(sc->end, RL_FRAME_PUSHED, answer);
			sqlite3_free(answer);
			sc->pushes++;
		} else if (type == RL_FRAME_PULL) {
			const char *page = sc->pulls++ ? sc->page2 : sc->page;
			if (!page)
				break;  /* cut */
			send_raw(sc->end, RL_FRAME_PAGE, page);
		} else {
			break;          /* BYE */
		}
		json_decref(req);
		req = NULL;
	}
	json_decref(req);
	rl_conn_close(sc->end);
	return NULL;
}

static long long count(rl_store *s, const char *sql)
{
	sqlite3_stmt *st;
	long long n = -1;

	if (sqlite3_prepare_v2(rl_store_db(s), sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* One session against the script; its error, and its message in msg. */
static int run2(rl_store *s, const char *status, int v0, const char *page, const char *page2,
		char *msg, size_t msglen)
{
	struct script sc = { NULL, status, page, page2, v0, 0, 0 };
	struct rl_sync_stats st;
	rl_conn *dev = NULL;
	pthread_t th;
	int error;

	if (rl_conn_pipe(&dev, &sc.end) != RL_OK)
		return -999;
	pthread_create(&th, NULL, hub_main, &sc);
	error = rl_sync_session(s, dev, &st, NULL, NULL);
	snprintf(msg, msglen, "%s", error < 0 ? rl_error_message() : "");
	rl_conn_close(dev);
	pthread_join(th, NULL);
	CHECK_EQ_INT(sc.pushes, 1);
	return error;
}

static int run(rl_store *s, const char *status, const char *page, char *msg, size_t msglen)
{
	return run2(s, status, 0, page, NULL, msg, msglen);
}

static void text_is(rl_store *s, const char *sql, const char *want)
{
	sqlite3_stmt *st;

	CHECK(sqlite3_prepare_v2(rl_store_db(s), sql, -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	CHECK_EQ_STR((const char *)sqlite3_column_text(st, 0), want);
	sqlite3_finalize(st);
}

#define NOTES_CHANGE(seq, text) "{\"s\":" #seq ",\"t\":\"accounts\",\"r\":\"" ACC "\"," \
	"\"f\":\"notes\",\"v\":\"" text "\",\"h\":7,\"d\":\"x\"}"

/*
 * The device appended a line to the notes (base 500); the hub merged it
 * with someone else's line at 600. The pull brings 550 (the other line,
 * not ours) and is cut before 600: the device keeps its own text and its
 * base, so that its next edit is merged from what it sent (the hub's
 * hub_sent_text) — with the old code it took 550's text, and its next
 * append dropped its own line (a conflict at the hub: tests/sim seed 7625).
 * The next sync brings 600: applied, the hold gone. Then a change of ours
 * 'applied' at 700 and a pull that brings 650 first: not written over it.
 */
static void test_holds(const char *dir)
{
	char path[256], msg[512];
	rl_store *s = NULL;
	int error;

	snprintf(path, sizeof(path), "%s/holds.db", dir);
	CHECK_EQ_INT(rl_store_open(&s, path, RL_STORE_CREATE), RL_OK);
	CHECK_EQ_INT(rl_store_set_identity(s, DEV, USR), RL_OK);
	rl_store_set_capture(s, 0);
	CHECK_EQ_INT(sqlite3_exec(rl_store_db(s),
		"INSERT INTO users(id, login, name, role) VALUES ('" USR "', 'budi', 'Budi', 'rep');"
		"INSERT INTO accounts(id, name, notes, owner_id, created_at) VALUES ('" ACC "', "
		"'Toko Makmur', 'one\n', '" USR "', '2026-12-05T08:00:00Z');"
		"INSERT INTO rl_base(tbl, row_id, field, version) VALUES ('accounts', '" ACC "', "
		"'notes', 500);"
		"INSERT INTO rl_meta(key, value) VALUES ('cursor', '500')", NULL, NULL, NULL),
		SQLITE_OK);
	rl_store_set_capture(s, 1);
	CHECK_EQ_INT(sqlite3_exec(rl_store_db(s), "UPDATE accounts SET notes = 'one\nmine\n'",
				  NULL, NULL, NULL), SQLITE_OK);

	error = run2(s, "merged", 600, "{\"changes\":[" NOTES_CHANGE(550, "one\\ntheirs\\n")
		     "],\"cursor\":550,\"more\":true}", NULL, msg, sizeof(msg));
	CHECK(error < 0);               /* the pull was cut */
	text_is(s, "SELECT notes FROM accounts", "one\nmine\n");
	CHECK_EQ_INT(count(s, "SELECT version FROM rl_base WHERE field = 'notes'"), 500);
	CHECK_EQ_INT(count(s, "SELECT version FROM rl_hold WHERE field = 'notes'"), 600);
	CHECK_EQ_INT(count(s, "SELECT value FROM rl_meta WHERE key = 'cursor'"), 550);
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_outbox"), 0);

	/* One more edit so that the session has a batch; the merged text comes. */
	CHECK_EQ_INT(sqlite3_exec(rl_store_db(s), "UPDATE accounts SET city = 'Bogor'",
				  NULL, NULL, NULL), SQLITE_OK);
	error = run2(s, "applied", 700, "{\"changes\":[" NOTES_CHANGE(600, "one\\ntheirs\\nmine\\n")
		     "],\"cursor\":600,\"more\":false,\"conflicts\":[]}", NULL, msg, sizeof(msg));
	CHECK_EQ_INT(error, RL_OK);
	text_is(s, "SELECT notes FROM accounts", "one\ntheirs\nmine\n");
	CHECK_EQ_INT(count(s, "SELECT version FROM rl_base WHERE field = 'notes'"), 600);
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_hold"), 0);

	/* Ours applied at 800; the pull brings 650 (older) and is cut. */
	CHECK_EQ_INT(sqlite3_exec(rl_store_db(s), "UPDATE accounts SET notes = 'newest\n'",
				  NULL, NULL, NULL), SQLITE_OK);
	error = run2(s, "applied", 800, "{\"changes\":[" NOTES_CHANGE(650, "older\\n")
		     "],\"cursor\":650,\"more\":true}", NULL, msg, sizeof(msg));
	CHECK(error < 0);
	text_is(s, "SELECT notes FROM accounts", "newest\n");
	CHECK_EQ_INT(count(s, "SELECT version FROM rl_base WHERE field = 'notes'"), 800);
	rl_store_close(s);
}

static void expect_refusal(int error, const char *msg, const char *says)
{
	check_count++;
	if (error != RL_EPROTO || !strstr(msg, says)) {
		check_failures++;
		fprintf(stderr, "expected a protocol error mentioning \"%s\", got %d \"%s\"\n", says,
			error, msg);
	}
}

/* A store's file and the ones SQLite keeps beside it. */
static void remove_store(const char *dir, const char *name)
{
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
	char path[512];
	size_t i;

	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s%s", dir, name, suffixes[i]);
		unlink(path);
	}
}

#define EMPTY_LAST_PAGE "{\"changes\":[],\"cursor\":0,\"more\":false,\"conflicts\":[]}"

int main(void)
{
	char dir[] = "/tmp/relasi-answers-XXXXXX", path[256], msg[512];
	rl_store *s = NULL;
	long long pending;
	int error;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/relasi.db", dir);
	CHECK_EQ_INT(rl_store_open(&s, path, RL_STORE_CREATE), RL_OK);
	CHECK_EQ_INT(rl_store_set_identity(s, DEV, USR), RL_OK);
	CHECK_EQ_INT(sqlite3_exec(rl_store_db(s),
		"INSERT INTO users(id, login, name, role) VALUES ('" USR "', 'budi', 'Budi', 'rep');"
		"INSERT INTO accounts(id, name, city, owner_id, created_at) VALUES ('" ACC "', "
		"'Toko Makmur', 'Bandung', '" USR "', '2026-12-05T08:00:00Z')", NULL, NULL, NULL),
		SQLITE_OK);
	pending = count(s, "SELECT count(*) FROM rl_outbox WHERE state = 'pending'");
	CHECK(pending >= 4);

	/* A status the device does not know is no acceptance: the batch stays
	 * sent, nothing is recorded, the error names the cause. */
	error = run(s, "accepted", EMPTY_LAST_PAGE, msg, sizeof(msg));
	expect_refusal(error, msg, "a status this device does not know");
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_outbox WHERE state = 'sent'"), pending);
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_base"), 0);

	/* The answer is fine, the page has a key the protocol does not
	 * define: the answer is recorded, nothing of the page. */
	error = run(s, "applied", "{\"changes\":[{\"s\":500,\"t\":\"accounts\",\"r\":\"" ACC "\","
		    "\"f\":\"city\",\"v\":\"Cimahi\",\"h\":7,\"d\":\"x\"}],\"cursor\":500,"
		    "\"more\":false,\"conflicts\":[],\"extra\":1}", msg, sizeof(msg));
	expect_refusal(error, msg, "a key a PAGE does not have");
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_outbox"), 0);
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_base"), pending);
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM accounts WHERE city = 'Bandung'"), 1);
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_meta WHERE key = 'cursor' AND "
			      "value <> '0'"), 0);

	/* Well formed: the page is applied with its base, cursor and the
	 * hub's conflict list. One more local edit gives the push a batch. */
	CHECK_EQ_INT(sqlite3_exec(rl_store_db(s), "UPDATE accounts SET name = 'Toko Makmur Jaya'",
				  NULL, NULL, NULL), SQLITE_OK);
	error = run(s, "conflict", "{\"changes\":[{\"s\":500,\"t\":\"accounts\",\"r\":\"" ACC "\","
		    "\"f\":\"city\",\"v\":\"Cimahi\",\"h\":7,\"d\":\"x\"}],\"cursor\":500,"
		    "\"more\":false,\"conflicts\":[{\"id\":3,\"t\":\"accounts\",\"r\":\"" ACC "\","
		    "\"f\":\"name\",\"kind\":\"field\",\"mine\":\"Toko Makmur Jaya\",\"theirs\":"
		    "\"Toko Makmur Abadi\",\"by\":\"ani\",\"kept_mine\":false,\"state\":\"open\","
		    "\"resolution\":null,\"decided\":null,\"at\":\"2026-12-05T09:00:00Z\"}]}",
		    msg, sizeof(msg));
	CHECK_EQ_INT(error, RL_OK);
	if (error < 0)
		fprintf(stderr, "well-formed session: %s\n", msg);
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_outbox"), 0);
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM accounts WHERE city = 'Cimahi'"), 1);
	CHECK_EQ_INT(count(s, "SELECT version FROM rl_base WHERE field = 'city'"), 500);
	CHECK_EQ_INT(count(s, "SELECT value FROM rl_meta WHERE key = 'cursor'"), 500);
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_conflicts WHERE hub_id = 3 AND "
			      "kept_mine = 0 AND resolution IS NULL AND state = 'open'"), 1);

	rl_store_close(s);
	test_holds(dir);
	remove_store(dir, "relasi.db");
	remove_store(dir, "holds.db");
	CHECK(rmdir(dir) == 0);         /* nothing else left behind */
	CHECK_DONE();
}
