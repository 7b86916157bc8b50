/*
 * test_snapshot.c — the device's side of a snapshot bootstrap
 * (sync/PROTOCOL.md, "Snapshot"; sync/src/devsync.c snapshot_load) against
 * a scripted hub over an in-memory connection: hostile or oversize
 * announcements and malformed chunks are refused, each naming the cause,
 * and leave the device's store exactly as it was (empty, cursor 0); a
 * well-formed snapshot is loaded with its bases and cursor, then the
 * session pulls from there.
 */
#include "check.h"

#include <dirent.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relasi/conn.h"
#include "relasi/devsync.h"
#include "relasi/error.h"
#include "relasi/id.h"
#include "relasi/limits.h"
#include "relasi/store.h"
#include "relasi/wire.h"

#define DEV "0000000000000000000000000000d001"
#define USR "0000000000000000000000000000b0d1"
#define ACC "000000000000000000000000000a0001"

/* What the scripted hub sends after the device's SNAPSHOT: frames "T{json}"
 * (type byte, then the payload), NULL-terminated; ok: then answer the
 * device's PULL with an empty last page. */
struct script {
	const char *const *frames;
	int ok;
	rl_conn *end;
	int asked;           /* the device sent SNAPSHOT */
	int format_during;   /* the store's file format byte then: 1 rollback journal, 2 WAL */
};

static const char *store_path;

/* Byte 18 of an SQLite file: 2 while it is in WAL mode, 1 otherwise. */
static int file_format(void)
{
	unsigned char h[20] = { 0 };
	FILE *f = fopen(store_path, "rb");

	if (!f)
		return -1;
	if (fread(h, 1, sizeof(h), f) != sizeof(h))
		h[18] = 0;
	fclose(f);
	return h[18];
}

static void send_text(rl_conn *c, const char *frame)
{
	json_t *o = json_loads(frame + 1, 0, NULL);
	unsigned char buf[4096];
	size_t n = strlen(frame);

	if (o) {
		rl_wire_write(c, frame[0], o, RL_MAX_FRAME, 5000);   /* the device may have hung up */
		json_decref(o);
		return;
	}
	/* Not JSON (a case of bad JSON): the bytes as they are. */
	if (n + 4 > sizeof(buf)) {
		fprintf(stderr, "script frame too long %s\n", frame);
		exit(2);
	}
	buf[0] = (unsigned char)(n >> 24);
	buf[1] = (unsigned char)(n >> 16);
	buf[2] = (unsigned char)(n >> 8);
	buf[3] = (unsigned char)n;
	memcpy(buf + 4, frame, n);
	rl_conn_write(c, buf, n + 4, 5000);
}

static void *hub_main(void *arg)
{
	struct script *sc = arg;
	json_t *req = NULL;
	int type;
	size_t i;

	if (rl_wire_read(sc->end, RL_MAX_FRAME, 5000, &type, &req) == RL_OK && type == 'H') {
		json_decref(req);
		req = NULL;
		send_text(sc->end, "h{\"proto\": 1, \"hub\": \"T\", \"device\": \"" DEV "\", \"user\": \""
			  USR "\", \"role\": \"rep\", \"hlc\": 1, \"restamp\": false, \"snapshot\": 1}");
		if (rl_wire_read(sc->end, RL_MAX_FRAME, 5000, &type, &req) == RL_OK &&
		    type == RL_FRAME_SNAPSHOT) {
			sc->asked = 1;
			sc->format_during = file_format();
			for (i = 0; sc->frames[i]; i++)
				send_text(sc->end, sc->frames[i]);
			if (sc->ok) {
				json_decref(req);
				req = NULL;
				if (rl_wire_read(sc->end, RL_MAX_FRAME, 5000, &type, &req) == RL_OK &&
				    type == RL_FRAME_PULL)
					send_text(sc->end, "l{\"changes\": [], \"cursor\": 7, \"more\": false, "
						  "\"conflicts\": []}");
				json_decref(req);
				req = NULL;
				rl_wire_read(sc->end, RL_MAX_FRAME, 5000, &type, &req);  /* BYE */
			}
		}
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

/* Run one session against the script; the error, and its message in msg. */
static int run(rl_store *s, const char *const *frames, int ok, char *msg, size_t msglen)
{
	struct script sc = { frames, ok, NULL, 0, 0 };
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
	CHECK(sc.asked);
	/* The load writes a new device's store once, under a rollback
	 * journal (devsync.c journal_set); after it, success or not, the
	 * store is back in WAL. */
	CHECK_EQ_INT(sc.format_during, 1);
	CHECK_EQ_INT(file_format(), 2);
	CHECK_EQ_INT(count(s, "SELECT synchronous FROM pragma_synchronous"), 1);
	return error;
}

/* A refused snapshot: an error that names the cause, and nothing stored. */
static long long n_indexes;     /* indexes of a fresh store */

static void refused(rl_store *s, const char *what, const char *const *frames, const char *says)
{
	char msg[512];
	int error = run(s, frames, 0, msg, sizeof(msg));

	if (error >= 0 || !strstr(msg, says)) {
		check_failures++;
		fprintf(stderr, "%s: expected a refusal mentioning \"%s\", got %d \"%s\"\n", what, says,
			error, msg);
	}
	check_count++;
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM accounts"), 0);
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_base"), 0);
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_base_snapshot"), 0);
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_meta WHERE key = 'cursor' AND value <> '0'"), 0);
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_outbox"), 0);
	/* The load sets the synced tables' indexes aside; a refusal brings
	 * them all back. */
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM sqlite_schema WHERE type = 'index'"), n_indexes);
	CHECK_EQ_INT(count(s, "SELECT count(*) FROM sqlite_schema WHERE name = 'activities_rep'"), 1);
}

#define SNAP_OK "s{\"format\": 1, \"seq\": 7, \"hlc\": 5, \"rows\": 1, \"fields\": 3}"
#define COLS "\"cols\": [\"name\", \"city\", \"created_at\"]"
#define AT "\"2026-11-23T08:00:00Z\""
#define ROW_OK "[\"" ACC "\", \"Toko Makmur\", \"Bandung\", " AT ", 3, 5, 6]"
#define CHUNK_OK "k{\"t\": \"accounts\", " COLS ", \"rows\": [" ROW_OK "], \"last\": true}"

/* The test's directory and the stores in it. */
static void remove_dir(const char *dir)
{
	char p[512];
	struct dirent *d;
	DIR *dh = opendir(dir);

	while (dh && (d = readdir(dh)))
		if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0) {
			snprintf(p, sizeof(p), "%s/%s", dir, d->d_name);
			unlink(p);
		}
	if (dh)
		closedir(dh);
	rmdir(dir);
}

int main(void)
{
	char dir[] = "/tmp/relasi-snapshot-XXXXXX", path[256], msg[512];
	rl_store *s = NULL;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/relasi.db", dir);
	store_path = path;
	CHECK_EQ_INT(rl_store_open(&s, path, RL_STORE_CREATE), RL_OK);
	CHECK_EQ_INT(rl_store_begin(s), RL_OK);
	CHECK_EQ_INT(rl_store_set_identity(s, DEV, USR), RL_OK);
	CHECK_EQ_INT(rl_store_commit(s), RL_OK);

	n_indexes = count(s, "SELECT count(*) FROM sqlite_schema WHERE type = 'index'");
	CHECK(n_indexes > 10);

	/* Announcements, refused before a single row is read. */
	{
		const char *f[] = { "s{\"format\": 1, \"seq\": 99999999999, \"hlc\": 1, "
				    "\"rows\": 16000001, \"fields\": 16000001}", NULL };
		refused(s, "too many rows", f, "16000001 records");
	}
	{
		const char *f[] = { "s{\"format\": 1, \"seq\": 9999999999999, \"hlc\": 1, "
				    "\"rows\": 10, \"fields\": 999999999999}", NULL };
		refused(s, "too many fields", f, "999999999999 fields");
	}
	{
		const char *f[] = { "s{\"format\": 1, \"seq\": 100, \"hlc\": 1, \"rows\": 2, "
				    "\"fields\": 65}", NULL };
		refused(s, "more fields than rows can hold", f, "65 fields for 2 records");
	}
	{
		const char *f[] = { "s{\"format\": 1, \"seq\": 3, \"hlc\": 1, \"rows\": 2, "
				    "\"fields\": 4}", NULL };
		refused(s, "more fields than log entries", f, "4 fields up to change 3");
	}
	{
		const char *f[] = { "s{\"format\": 1, \"seq\": -1, \"hlc\": 1, \"rows\": 0, "
				    "\"fields\": 0}", NULL };
		refused(s, "negative seq", f, "negative");
	}
	{
		const char *f[] = { "s{\"format\": 3, \"seq\": 1, \"hlc\": 1, \"rows\": 0, "
				    "\"fields\": 0}", NULL };
		refused(s, "unknown format", f, "not of format 1");
	}
	/* Snapshot images (format 2, sync/src/image.c): the announcement and
	 * the IMAGE frames are bounded before anything is written. */
	{
		const char *f[] = { "s{\"format\": 2, \"seq\": 1, \"hlc\": 1, \"rows\": 0, "
				    "\"fields\": 0}", NULL };
		refused(s, "image without sizes", f, "has no valid bytes");
	}
	{
		const char *f[] = { "s{\"format\": 2, \"seq\": 1, \"hlc\": 1, \"rows\": 0, "
				    "\"fields\": 0, \"bytes\": 10, \"size\": 99999999999999}", NULL };
		refused(s, "image too big", f, "a device takes 1 to");
	}
	{
		const char *f[] = { "s{\"format\": 2, \"seq\": 1, \"hlc\": 1, \"rows\": 17000000, "
				    "\"fields\": 0, \"bytes\": 10, \"size\": 10}", NULL };
		refused(s, "image of too many records", f, "17000000 records");
	}
	{
		const char *f[] = { "s{\"format\": 2, \"seq\": 1, \"hlc\": 1, \"rows\": 1, "
				    "\"fields\": 1, \"bytes\": 3, \"size\": 4096}",
				    "iabcdefghij", NULL };
		refused(s, "image frame past the announced bytes", f, "longer than the 3 bytes");
	}
	{
		const char *f[] = { "s{\"format\": 2, \"seq\": 1, \"hlc\": 1, \"rows\": 1, "
				    "\"fields\": 1, \"bytes\": 30, \"size\": 4096}",
				    "k{\"t\": \"accounts\"}", NULL };
		refused(s, "a chunk inside an image", f, "sent 'k' inside a snapshot image");
	}
	{
		const char *f[] = { "s{\"format\": 2, \"seq\": 1, \"hlc\": 1, \"rows\": 1, "
				    "\"fields\": 1, \"bytes\": 30, \"size\": 4096}",
				    "X{\"code\": \"internal\", \"message\": \"disk full\"}", NULL };
		refused(s, "the hub gives up inside an image", f, "stopped the snapshot image: disk full");
	}
	{
		const char *f[] = { "s{\"format\": 1, \"seq\": \"7\", \"rows\": 1, \"fields\": 1}", NULL };
		refused(s, "figures missing", f, "lacks seq");
	}
	{
		const char *f[] = { "l{\"changes\": [], \"cursor\": 0, \"more\": false}", NULL };
		refused(s, "a PAGE for a SNAP", f, "answered 'l'");
	}
	/* Chunks. They are read by sync/src/chunk.c, not jansson: bad JSON
	 * and keys a chunk does not have are refused like the rest. */
	{
		const char *f[] = { SNAP_OK, "k{\"t\": \"accounts\", " COLS ", \"rows\": [" ROW_OK
				    "], \"last\": true, \"extra\": 1}", NULL };
		refused(s, "a key a chunk does not have", f, "a key a chunk does not have");
	}
	{
		const char *f[] = { SNAP_OK, "k{\"t\": \"accounts\", " COLS ", \"rows\": [" ROW_OK
				    ",], \"last\": true}", NULL };
		refused(s, "bad JSON in a chunk", f, "bad JSON at byte");
	}
	{
		const char *f[] = { SNAP_OK, "k{\"t\": \"accounts\", " COLS ", \"rows\": [[\"" ACC
				    "\", \"Toko \\ud800\", \"Bandung\", " AT ", 3, 5, 6]], \"last\": true}",
				    NULL };
		refused(s, "a lone surrogate in a chunk", f, "high surrogate");
	}
	/* Chunks. */
	{
		const char *f[] = { SNAP_OK, "k{\"t\": \"rl_base\", " COLS ", \"rows\": [], "
				    "\"last\": true}", NULL };
		refused(s, "a local table", f, "unknown table rl_base");
	}
	{
		const char *f[] = { SNAP_OK, "k{\"t\": \"accounts\", \"cols\": [\"name\", "
				    "\"id\\\" = 1; --\"], \"rows\": [], \"last\": true}", NULL };
		refused(s, "an unknown column", f, "unknown field accounts.id");
	}
	{
		const char *f[] = { SNAP_OK, "k{\"t\": \"accounts\", \"cols\": [\"name\", \"name\"], "
				    "\"rows\": [], \"last\": true}", NULL };
		refused(s, "a column twice", f, "accounts.name twice");
	}
	{
		const char *f[] = { SNAP_OK, "k{\"t\": \"accounts\", " COLS ", \"rows\": [" ROW_OK ", ["
				    "\"000000000000000000000000000a0002\", \"Toko Dua\", null, null, 4, 0, 0]], "
				    "\"last\": true}", NULL };
		refused(s, "more rows than announced", f, "more than the 1 records");
	}
	{
		const char *f[] = { SNAP_OK, "k{\"t\": \"accounts\", " COLS ", \"rows\": [[\"" ACC
				    "\", \"Toko Makmur\", \"Bandung\", " AT ", 3, 8, 6]], \"last\": true}", NULL };
		refused(s, "a version past the snapshot", f, "outside 0..7");
	}
	{
		const char *f[] = { SNAP_OK, "k{\"t\": \"accounts\", \"cols\": [\"name\", \"lat\"], "
				    "\"rows\": [[\"" ACC "\", \"Toko Makmur\", 1000.5, 3, 5]], "
				    "\"last\": true}", NULL };
		refused(s, "an invalid value", f, "invalid value for accounts.lat");
	}
	{
		const char *f[] = { SNAP_OK, "k{\"t\": \"accounts\", " COLS ", \"rows\": [[\"" ACC
				    "\", \"Toko Makmur\", \"Bandung\", " AT ", 3, 5]], \"last\": true}", NULL };
		refused(s, "a short row", f, "malformed record");
	}
	{
		const char *f[] = { SNAP_OK, "k{\"t\": \"accounts\", " COLS ", \"rows\": [[\"x'; DROP\", "
				    "\"Toko\", \"Bandung\", " AT ", 3, 5, 6]], \"last\": true}", NULL };
		refused(s, "a bad id", f, "malformed record");
	}
	{
		const char *f[] = { SNAP_OK, "k{\"t\": \"accounts\", " COLS ", \"rows\": [[\"" ACC
				    "\", \"Toko Makmur\", \"Bandung\", " AT ", 0, 5, 6]], \"last\": true}", NULL };
		refused(s, "a value without a version", f, "value without a version");
	}
	{
		const char *f[] = { "s{\"format\": 1, \"seq\": 7, \"hlc\": 5, \"rows\": 2, \"fields\": 6}",
				    CHUNK_OK, NULL };
		refused(s, "fewer rows than announced", f, "ended after 1 of 2 records");
	}
	{
		const char *f[] = { SNAP_OK, "k{\"t\": \"accounts\", " COLS ", \"rows\": [], "
				    "\"last\": false}", NULL };
		refused(s, "the connection cut mid-snapshot", f, "");
	}
	{
		const char *f[] = { SNAP_OK, "X{\"code\": \"internal\", \"message\": \"disk on fire\"}",
				    NULL };
		refused(s, "the hub failing mid-snapshot", f, "disk on fire");
	}
	{
		const char *f[] = { SNAP_OK, "l{\"changes\": [], \"cursor\": 7, \"more\": false}", NULL };
		refused(s, "another frame mid-snapshot", f, "inside a snapshot");
	}

	/* Each table in one run and each record once, in ascending id order:
	 * the device defers search indexing to the commit, and a record
	 * written twice would corrupt the index. */
#define SNAP_TWO "s{\"format\": 1, \"seq\": 9, \"hlc\": 5, \"rows\": 2, \"fields\": 6}"
#define ROW_TWO "[\"000000000000000000000000000a0002\", \"Toko Dua\", \"Garut\", " AT ", 7, 8, 9]"
	{
		const char *f[] = { SNAP_TWO, "k{\"t\": \"accounts\", " COLS ", \"rows\": [" ROW_OK ", "
				    ROW_OK "], \"last\": true}", NULL };
		refused(s, "a record twice", f, "sends accounts " ACC " twice or out of order");
	}
	{
		const char *f[] = { SNAP_TWO, "k{\"t\": \"accounts\", " COLS ", \"rows\": [" ROW_OK
				    "], \"last\": false}", CHUNK_OK, NULL };
		refused(s, "a record twice, in two chunks", f, "twice or out of order");
	}
	{
		const char *f[] = { SNAP_TWO, "k{\"t\": \"accounts\", " COLS ", \"rows\": [" ROW_TWO ", "
				    ROW_OK "], \"last\": true}", NULL };
		refused(s, "records out of order", f, "twice or out of order");
	}
	{
		const char *f[] = { SNAP_TWO, "k{\"t\": \"accounts\", " COLS ", \"rows\": [" ROW_OK
				    "], \"last\": false}", "k{\"t\": \"stages\", \"cols\": [], \"rows\": [], "
				    "\"last\": false}", "k{\"t\": \"accounts\", " COLS ", \"rows\": [" ROW_TWO
				    "], \"last\": true}", NULL };
		refused(s, "a table again", f, "sends accounts again after another table");
	}

	{
		/* References are checked at the commit; the refusal rolls back. */
		const char *f[] = { "s{\"format\": 1, \"seq\": 9, \"hlc\": 5, \"rows\": 1, "
				    "\"fields\": 3}", "k{\"t\": \"contacts\", \"cols\": [\"name\", "
				    "\"account_id\", \"created_at\"], \"rows\": [[\"000000000000000000000000000c0001\", "
				    "\"Siti\", \"000000000000000000000000000a0009\", " AT ", 1, 2, 3]], "
				    "\"last\": true}", NULL };
		refused(s, "a dangling reference", f, "refers to one the snapshot does not hold");
		CHECK(sqlite3_get_autocommit(rl_store_db(s)));
	}

	/* A well-formed one: loaded with its bases; the cursor is its seq. */
	{
		const char *f[] = { SNAP_OK, CHUNK_OK, NULL };
		CHECK_EQ_INT(run(s, f, 1, msg, sizeof(msg)), RL_OK);
		if (msg[0])
			fprintf(stderr, "%s\n", msg);
		CHECK_EQ_INT(count(s, "SELECT count(*) FROM accounts WHERE id = '" ACC "' AND "
				   "name = 'Toko Makmur' AND city = 'Bandung'"), 1);
		CHECK_EQ_INT(count(s, "SELECT version FROM rl_bases WHERE row_id = '" ACC "' AND "
				   "field = 'city'"), 5);
		CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_bases"), 3);
		/* one row for the record, not one per field */
		CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_base"), 0);
		CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_base_snapshot"), 1);
		CHECK_EQ_INT(count(s, "SELECT value FROM rl_meta WHERE key = 'cursor'"), 7);
		CHECK_EQ_INT(count(s, "SELECT count(*) FROM rl_outbox"), 0);  /* not captured */
		/* searchable at once, its indexes built again */
		CHECK_EQ_INT(count(s, "SELECT count(*) FROM fts_accounts WHERE fts_accounts MATCH "
				   "'makmur'"), 1);
		CHECK_EQ_INT(count(s, "SELECT count(*) FROM sqlite_schema WHERE type = 'index'"),
			     n_indexes);
		CHECK_EQ_INT(count(s, "SELECT count(*) FROM accounts INDEXED BY accounts_name "
				   "WHERE name = 'Toko Makmur'"), 1);
	}
	rl_store_close(s);

	/* A merged customer before its survivor (ids ascending, the older one
	 * merged into the newer): its reference waits for the survivor within
	 * the load and holds at the commit. The load keeps the index that
	 * makes that wait cheap (schema/013_merged_index.sql). */
	snprintf(path, sizeof(path), "%s/merged.db", dir);
	CHECK_EQ_INT(rl_store_open(&s, path, RL_STORE_CREATE), RL_OK);
	CHECK_EQ_INT(rl_store_begin(s), RL_OK);
	CHECK_EQ_INT(rl_store_set_identity(s, DEV, USR), RL_OK);
	CHECK_EQ_INT(rl_store_commit(s), RL_OK);
	{
		const char *f[] = {
			"s{\"format\": 1, \"seq\": 9, \"hlc\": 5, \"rows\": 2, \"fields\": 6}",
			"k{\"t\": \"accounts\", \"cols\": [\"name\", \"created_at\", \"deleted\", "
			"\"merged_into\"], \"rows\": [[\"" ACC "\", \"Toko Makmur\", " AT ", 1, "
			"\"000000000000000000000000000a0002\", 1, 2, 8, 9], [\"000000000000000000000000000a0002\", "
			"\"Toko Makmur Jaya\", " AT ", null, null, 3, 4, 0, 0]], \"last\": true}", NULL };
		CHECK_EQ_INT(run(s, f, 1, msg, sizeof(msg)), RL_OK);
		if (msg[0])
			fprintf(stderr, "%s\n", msg);
		CHECK_EQ_INT(count(s, "SELECT count(*) FROM accounts WHERE id = '" ACC "' AND "
				   "merged_into = '000000000000000000000000000a0002'"), 1);
		CHECK_EQ_INT(count(s, "SELECT count(*) FROM sqlite_schema WHERE name IN "
				   "('accounts_merged_into', 'contacts_merged_into')"), 2);
		CHECK_EQ_INT(count(s, "SELECT count(*) FROM sqlite_schema WHERE type = 'index'"),
			     n_indexes);
	}
	rl_store_close(s);
	remove_dir(dir);
	CHECK_DONE();
}
