/*
 * fuzz_image.c — a new device installing the hub's snapshot image
 * (sync/src/image.c, checks in image_check.c; sync/PROTOCOL.md, "Snapshot image") through the real
 * session, rl_sync_session, over an in-memory connection to a scripted hub.
 *
 * The image is a whole SQLite file, so raw fuzz bytes would rarely get past
 * zstd and tar. Instead setup() builds a sound image the way the hub's is
 * (a store of this build's schema holding a few related records and their
 * field versions, in the rollback journal's format), and the input says how
 * to damage it before it is packed (zstd tar, as hub/image.c packs it) and
 * served:
 *
 *   byte 0     flags: bit 0 announces a size one byte off, bit 1 stops
 *              after half the bytes, bit 2 announces a seq below the
 *              image's field versions
 *   then       patches of 4 + n bytes: page (2 bytes, modulo the page
 *              count), offset in the page (2 bytes, modulo the page size),
 *              n = the next byte % 16 + 1, then n bytes written there
 *
 * so that the fuzzer reaches the file header, the schema, b-tree pages and
 * the rows' values. The device's store is new (cursor 0, nothing to push,
 * no versions) and alone, so it asks for the image.
 *
 * Asserts:
 *  - the device asks for the image, and for the snapshot record by record
 *    again only after it refused one;
 *  - an installed image leaves a sound store: integrity_check, the three
 *    full-text indexes' integrity-check, no dangling reference, every value
 *    valid by the model, every field version in 1..cursor, this device's
 *    identity and schema kept;
 *  - otherwise the store's rows are exactly as before;
 *  - no image file is left beside the store; no transaction left open.
 */
#include "fuzz_util.h"

#include <string.h>
#include <unistd.h>

#include "relasi/conn.h"
#include "relasi/devsync.h"
#include "relasi/error.h"
#include "relasi/limits.h"
#include "relasi/store.h"
#include "relasi/wire.h"

#include "archive_lazy.h"

#define FZ_DEVICE "0000000000000000000000000000d001"
#define FZ_USER   "0000000000000000000000000000b0d1"
#define FZ_SEQ    40          /* the image's cursor: its versions are 1..FZ_SEQ */
#define FZ_PAGE   4096

static char store_path[512], image_path[600], tar_path[512];
static unsigned char *dev_file, *img_file;
static size_t dev_size, img_size;
static uint64_t digest0;
static char *schema0;

struct script {
	rl_conn *end;
	const unsigned char *tar;
	size_t tar_size;
	long long seq, size;
	int cut;
	int asked_image, asked_again;
};

/* The schema, as image_check.c compares it: every object's SQL, by name. */
static char *schema_of(sqlite3 *db)
{
	sqlite3_stmt *st;
	char *out = NULL;

	FZ_CHECK(sqlite3_prepare_v2(db, "SELECT group_concat(name || ':' || coalesce(sql, ''), '|') "
				    "FROM (SELECT name, sql FROM sqlite_schema ORDER BY name)", -1,
				    &st, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		out = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	FZ_CHECK(out != NULL, "no schema");
	return out;
}

/* A sound image: this build's schema, a user, two customers (one with a
 * position), a contact, a deal and a visit, each with its field versions,
 * in the rollback journal's format as hub/image.c leaves it. */
static void make_image(void)
{
	char path[512];
	rl_store *s = NULL;

	snprintf(path, sizeof(path), "%s/image-src.db", fz_tmpdir());
	rl_store_remove_files(path);
	FZ_CHECK(rl_store_open(&s, path, RL_STORE_CREATE) == RL_OK, "image store: %s",
		 rl_error_message());
	rl_store_set_capture(s, 0);
	fz_exec(rl_store_db(s),
		"BEGIN;"
		"INSERT INTO users(id, login, name, role) VALUES "
		"('" FZ_USER "', 'budi', 'Budi', 'rep');"
		"INSERT INTO accounts(id, name, city, phone, email, lat, lon, notes, owner_id, created_at) "
		"VALUES ('000000000000000000000000000a0001', 'Toko Makmur', 'Bandung', '+62227201234', "
		"'toko@makmur.id', -6.9175, 107.6191, 'pelanggan lama', '" FZ_USER "', "
		"'2026-03-01T08:00:00Z'),"
		"('000000000000000000000000000a0002', 'Apotek Sehat', 'Depok', NULL, NULL, NULL, NULL, "
		"NULL, '" FZ_USER "', '2026-03-01T09:00:00Z');"
		"INSERT INTO contacts(id, account_id, name, phone, email, owner_id, created_at) VALUES "
		"('000000000000000000000000000c0001', '000000000000000000000000000a0001', 'Rudi', "
		"'+6281211112222', 'rudi@makmur.id', '" FZ_USER "', '2026-03-01T08:05:00Z');"
		"INSERT INTO deals(id, account_id, contact_id, title, amount, currency, stage_id, "
		"owner_id, created_at) VALUES ('000000000000000000000000000d0001', "
		"'000000000000000000000000000a0001', '000000000000000000000000000c0001', 'Freezer', "
		"1250000000, 'IDR', '00000000000000000000000000000002', '" FZ_USER "', "
		"'2026-03-01T08:10:00Z');"
		"INSERT INTO activities(id, account_id, contact_id, kind, at, outcome, notes, user_id, "
		"created_at) VALUES ('000000000000000000000000000e0001', "
		"'000000000000000000000000000a0001', '000000000000000000000000000c0001', 'visit', "
		"'2026-03-01T08:00:00Z', 'tertarik', 'minta penawaran freezer', '" FZ_USER "', "
		"'2026-03-01T08:00:00Z');"
		"INSERT INTO rl_base_snapshot(tbl, row_id, versions) VALUES "
		"('users', '" FZ_USER "', '{\"login\":1,\"name\":2,\"role\":3}'),"
		"('accounts', '000000000000000000000000000a0001', "
		" '{\"name\":4,\"city\":5,\"phone\":6,\"email\":7,\"lat\":8,\"lon\":9,\"notes\":10,"
		"\"owner_id\":11,\"created_at\":12}'),"
		"('accounts', '000000000000000000000000000a0002', '{\"name\":13,\"city\":14,"
		"\"owner_id\":15,\"created_at\":16}'),"
		"('contacts', '000000000000000000000000000c0001', '{\"account_id\":17,\"name\":18,"
		"\"phone\":19,\"email\":20,\"owner_id\":21,\"created_at\":22}'),"
		"('deals', '000000000000000000000000000d0001', '{\"account_id\":23,\"contact_id\":24,"
		"\"title\":25,\"amount\":26,\"currency\":27,\"stage_id\":28,\"owner_id\":29,"
		"\"created_at\":30}'),"
		"('activities', '000000000000000000000000000e0001', '{\"account_id\":31,"
		"\"contact_id\":32,\"kind\":33,\"at\":34,\"outcome\":35,\"notes\":36,\"user_id\":37,"
		"\"created_at\":38}');"
		"COMMIT;"
		"PRAGMA journal_mode = DELETE;");
	FZ_CHECK(fz_query_int(rl_store_db(s), "SELECT count(*) FROM pragma_foreign_key_check") == 0,
		 "the sound image has a dangling reference");
	fz_check_synced_values(rl_store_db(s), "the sound image");
	rl_store_close(s);
	img_file = fz_read_file(path, &img_size);
	/* FZ_IMAGE_DUMP=FILE writes the sound image out, to craft seeds from. */
	if (getenv("FZ_IMAGE_DUMP"))
		fz_write_file(getenv("FZ_IMAGE_DUMP"), img_file, img_size);
	FZ_CHECK(img_size % FZ_PAGE == 0, "the image is not of %d-byte pages", FZ_PAGE);
	rl_store_remove_files(path);
}

static void setup(void)
{
	rl_store *s = NULL;
	const struct rl_archive *ar;

	fz_setup_env();
	FZ_CHECK(rl_archive_load(&ar) == RL_OK, "libarchive: %s", rl_error_message());
	snprintf(store_path, sizeof(store_path), "%s/device.db", fz_tmpdir());
	snprintf(image_path, sizeof(image_path), "%s.image", store_path);
	snprintf(tar_path, sizeof(tar_path), "%s/image.tar.zst", fz_tmpdir());
	rl_store_remove_files(store_path);
	FZ_CHECK(rl_store_open(&s, store_path, RL_STORE_CREATE) == RL_OK, "store: %s",
		 rl_error_message());
	FZ_CHECK(rl_store_set_identity(s, FZ_DEVICE, FZ_USER) == RL_OK, "identity");
	digest0 = fz_db_digest(rl_store_db(s));
	schema0 = schema_of(rl_store_db(s));
	rl_store_close(s);              /* the last close checkpoints: one file */
	dev_file = fz_read_file(store_path, &dev_size);
	make_image();
}

/* The input's image: the sound one with the patches written into it. */
static unsigned char *patched_image(const uint8_t *data, size_t size)
{
	unsigned char *img = malloc(img_size);
	size_t pos = 1, pages = img_size / FZ_PAGE;

	FZ_CHECK(img != NULL, "out of memory");
	memcpy(img, img_file, img_size);
	while (pos + 5 <= size) {
		size_t page = ((size_t)data[pos] << 8 | data[pos + 1]) % pages;
		size_t off = ((size_t)data[pos + 2] << 8 | data[pos + 3]) % FZ_PAGE;
		size_t n = data[pos + 4] % 16 + 1, i;

		pos += 5;
		for (i = 0; i < n && pos < size; i++, pos++)
			img[page * FZ_PAGE + (off + i) % FZ_PAGE] = data[pos];
	}
	return img;
}

/* Pack img as the hub does: a zstd pax tar of one member, relasi.db. */
static unsigned char *pack(const unsigned char *img, size_t *tar_size)
{
	const struct rl_archive *ar;
	struct archive *a;
	struct archive_entry *e;
	FILE *f;
	int fd;

	FZ_CHECK(rl_archive_load(&ar) == RL_OK, "libarchive");
	FZ_CHECK((f = fopen(tar_path, "wb")) != NULL, "cannot write %s", tar_path);
	fd = fileno(f);
	FZ_CHECK((a = ar->archive_write_new()) != NULL && (e = ar->archive_entry_new()) != NULL,
		 "out of memory");
	FZ_CHECK(ar->archive_write_set_format_pax_restricted(a) == ARCHIVE_OK &&
		 ar->archive_write_add_filter_zstd(a) == ARCHIVE_OK &&
		 ar->archive_write_open_fd(a, fd) == ARCHIVE_OK, "tar: %s",
		 ar->archive_error_string(a));
	ar->archive_entry_set_pathname(e, "relasi.db");
	ar->archive_entry_set_filetype(e, AE_IFREG);
	ar->archive_entry_set_perm(e, 0600);
	ar->archive_entry_set_size(e, (la_int64_t)img_size);
	FZ_CHECK(ar->archive_write_header(a, e) == ARCHIVE_OK &&
		 ar->archive_write_data(a, img, img_size) == (la_ssize_t)img_size &&
		 ar->archive_write_close(a) == ARCHIVE_OK, "tar: %s", ar->archive_error_string(a));
	ar->archive_write_free(a);
	ar->archive_entry_free(e);
	FZ_CHECK(fclose(f) == 0, "cannot write %s", tar_path);
	return fz_read_file(tar_path, tar_size);
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

/* Did the device ask for the image (format [1, 2])? */
static int asks_image(json_t *req)
{
	json_t *f = json_object_get(req, "format");
	size_t i;

	for (i = 0; json_is_array(f) && i < json_array_size(f); i++)
		if (json_integer_value(json_array_get(f, i)) == RL_SNAPSHOT_IMAGE)
			return 1;
	return 0;
}

/* The scripted hub: WELCOME; the image for the first SNAPSHOT; "skip" for
 * a second one (the device refused the image); an empty last PAGE for
 * each PULL until BYE. */
static void *hub_main(void *arg)
{
	struct script *sc = arg;
	json_t *req = NULL;
	char text[256];
	size_t pos, n, end;
	int type = 0, rc;

	rc = rl_wire_read(sc->end, RL_MAX_FRAME, 10000, &type, &req);
	FZ_CHECK(rc == RL_OK && type == RL_FRAME_HELLO, "the device did not say HELLO (%d)", rc);
	json_decref(req);
	req = NULL;
	if (send_text(sc->end, RL_FRAME_WELCOME,
		      "{\"proto\": 1, \"hub\": \"T\", \"device\": \"" FZ_DEVICE "\", "
		      "\"user\": \"" FZ_USER "\", \"role\": \"rep\", \"hlc\": 1, "
		      "\"restamp\": false, \"snapshot\": 1}") < 0)
		goto done;
	for (;;) {
		rc = rl_wire_read(sc->end, RL_MAX_FRAME, 10000, &type, &req);
		if (rc != RL_OK)
			break;
		if (type == RL_FRAME_BYE)
			break;
		if (type == RL_FRAME_PULL) {
			snprintf(text, sizeof(text), "{\"changes\": [], \"cursor\": %lld, \"more\": false, "
				 "\"conflicts\": []}",
				 (long long)json_integer_value(json_object_get(req, "cursor")));
			if (send_text(sc->end, RL_FRAME_PAGE, text) < 0)
				break;
		} else {
			FZ_CHECK(type == RL_FRAME_SNAPSHOT, "the device sent a '%c' frame", type);
			if (sc->asked_image) {
				FZ_CHECK(!asks_image(req), "the device asked for the image twice");
				sc->asked_again = 1;
				if (send_text(sc->end, RL_FRAME_SNAP, "{\"format\": 1, \"skip\": \"busy\"}") < 0)
					break;
			} else {
				FZ_CHECK(asks_image(req), "a new device did not ask for the image");
				sc->asked_image = 1;
				snprintf(text, sizeof(text), "{\"format\": 2, \"seq\": %lld, \"hlc\": 7, "
					 "\"rows\": 6, \"fields\": 38, \"bytes\": %zu, \"size\": %lld}",
					 sc->seq, sc->tar_size, sc->size);
				if (send_text(sc->end, RL_FRAME_SNAP, text) < 0)
					break;
				end = sc->cut ? sc->tar_size / 2 : sc->tar_size;
				for (pos = 0; pos < end; pos += n) {
					n = end - pos < RL_IMAGE_FRAME_BYTES ? end - pos : RL_IMAGE_FRAME_BYTES;
					if (rl_wire_write_bytes(sc->end, RL_FRAME_IMAGE, sc->tar + pos, n,
								RL_MAX_FRAME, 10000) < 0)
						break;
				}
				if (sc->cut)
					break;
			}
		}
		json_decref(req);
		req = NULL;
	}
done:
	json_decref(req);
	rl_conn_close(sc->end);
	return NULL;
}

static void check_installed(rl_store *s, long long cursor)
{
	sqlite3 *db = rl_store_db(s);
	char *schema;

	FZ_CHECK(cursor == FZ_SEQ, "the cursor is %lld, not the image's %d", cursor, FZ_SEQ);
	fz_check_bootstrapped(db, cursor, "after an image");
	FZ_CHECK(fz_query_int(db, "SELECT count(*) FROM rl_meta WHERE key = 'device_id' AND "
			      "value = '" FZ_DEVICE "'") == 1, "the device lost its identity");
	schema = schema_of(db);
	FZ_CHECK(strcmp(schema, schema0) == 0, "the image changed the store's schema");
	free(schema);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct script sc;
	unsigned char *img, *tar;
	size_t tar_size;
	rl_store *s = NULL;
	long long cursor;
	int rc, flags = size > 0 ? data[0] : 0;

	if (!dev_file)
		setup();
	img = patched_image(data, size);
	tar = pack(img, &tar_size);
	free(img);
	rl_store_remove_files(store_path);
	fz_write_file(store_path, dev_file, dev_size);
	FZ_CHECK(rl_store_open(&s, store_path, 0) == RL_OK, "store: %s", rl_error_message());

	memset(&sc, 0, sizeof(sc));
	sc.tar = tar;
	sc.tar_size = tar_size;
	sc.size = (long long)img_size + ((flags & 1) ? 1 : 0);
	sc.cut = (flags & 2) != 0;
	sc.seq = (flags & 4) ? FZ_SEQ / 2 : FZ_SEQ;
	rc = fz_run_session(s, &sc.end, hub_main, &sc);

	FZ_CHECK(rc != RL_ETIMEOUT, "the session timed out");
	FZ_CHECK(sc.asked_image, "the device did not ask for the image (%d: %s)", rc,
		 rc < 0 ? rl_error_message() : "");
	FZ_CHECK(rc == RL_OK || rl_error_message()[0], "error %d without a message", rc);
	FZ_CHECK(sqlite3_get_autocommit(rl_store_db(s)), "a transaction was left open");
	FZ_CHECK(access(image_path, F_OK) != 0, "the image file was left beside the store");
	cursor = fz_query_int(rl_store_db(s), "SELECT coalesce((SELECT CAST(value AS INTEGER) "
			      "FROM rl_meta WHERE key = 'cursor'), 0)");
	/* The sound image, served whole and as announced, is installed: else
	 * every other input only tests refusals. */
	if (size <= 1 && flags == 0)
		FZ_CHECK(rc == RL_OK && cursor == FZ_SEQ, "the sound image was not installed "
			 "(%d: %s)", rc, rl_error_message());
	if (cursor > 0) {
		FZ_CHECK(!sc.asked_again, "the image was installed and then asked for again");
		check_installed(s, cursor);
	} else {
		/* Nothing installed: a failed session changed nothing; one
		 * that went on to pull may note its sync (rl_meta), no more. */
		if (rc < 0)
			FZ_CHECK(fz_db_digest(rl_store_db(s)) == digest0, "no image was installed "
				 "(%d: %s), but the store changed", rc, rl_error_message());
		FZ_CHECK(fz_query_int(rl_store_db(s), "SELECT (SELECT count(*) FROM accounts) + "
				      "(SELECT count(*) FROM rl_base_snapshot) + (SELECT count(*) "
				      "FROM rl_base) + (SELECT count(*) FROM users)") == 0,
			 "no image was installed (%d: %s), but the store has rows", rc,
			 rl_error_message());
	}
	rl_store_close(s);
	free(tar);
	return 0;
}
