/*
 * fuzz_enroll.c — the hub's ENROLL handling (hub/people.c, hub_enroll), the
 * one request a peer without a certificate may send: the one-time token
 * ("rl1." + base64url JSON with the token id and secret), the CSR (PEM,
 * parsed and its self-signature checked by mbedTLS) and the device name,
 * against a real hub store holding a valid, an expired and a used token,
 * and a real device CA in a temporary directory. The valid token's hash is
 * stored with 1 PBKDF2 round instead of 100,000 so that the fuzzer can get
 * past it quickly (hub_enroll takes the round count from the store).
 *
 * Input: the ENROLL frame's JSON, decoded with rl_wire_decode as the
 * server does.
 *
 * Asserts:
 *  - a refused request (RL_EAUTH, RL_EPROTO or RL_EINVALID, with a message;
 *    nothing else for a peer's bytes) has no answer and leaves the store
 *    exactly as it was;
 *  - an accepted one answers with a certificate that parses, for the
 *    device id that is the CSR's CN, for the token's user; the device is
 *    recorded with that certificate's fingerprint, and the token is used up;
 *    the same request again is the same device asking again (its answer
 *    lost, hub schema 10): it gets a new certificate for the same device,
 *    user and key, checked the same way, and the token stays used.
 */
#include "fuzz_util.h"

#include <string.h>
#include <unistd.h>

#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>

#include "hub.h"
#include "relasi/error.h"
#include "relasi/pki.h"
#include "relasi/wire.h"

static rl_store *store;
static char dir[128];

#define FZ_TOKEN_ID     "0123456789abcdef0123456789abcdef"
#define FZ_TOKEN_SECRET "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static void remove_ca(void)
{
	char path[200];

	snprintf(path, sizeof(path), "%s/%s", dir, HUB_DEVICE_CAKEY);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s", dir, HUB_DEVICE_CA);
	unlink(path);
}

static void add_token(const char *id, const char *secret, int rounds, long long expires,
		      const char *used_at)
{
	static const unsigned char salt[] = "relasi-fuzz-salt";  /* 16 bytes */
	unsigned char hash[32];
	mbedtls_md_context_t md;
	sqlite3_stmt *st;

	mbedtls_md_init(&md);
	FZ_CHECK(mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1) == 0 &&
		 mbedtls_pkcs5_pbkdf2_hmac(&md, (const unsigned char *)secret, strlen(secret), salt,
					   sizeof(salt) - 1, (unsigned)rounds, 32, hash) == 0, "pbkdf2");
	mbedtls_md_free(&md);
	FZ_CHECK(sqlite3_prepare_v2(rl_store_db(store),
		 "INSERT INTO hub_tokens(id, user_id, salt, hash, rounds, created_at, expires_at, "
		 "used_at) VALUES (?1, '0000000000000000000000000000b0d1', ?2, ?3, ?4, "
		 "'2026-03-02T08:00:00Z', ?5, ?6)", -1, &st, NULL) == SQLITE_OK, "prepare");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, salt, sizeof(salt) - 1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, hash, sizeof(hash), SQLITE_STATIC);
	sqlite3_bind_int(st, 4, rounds);
	sqlite3_bind_int64(st, 5, expires);
	if (used_at)
		sqlite3_bind_text(st, 6, used_at, -1, SQLITE_STATIC);
	FZ_CHECK(sqlite3_step(st) == SQLITE_DONE, "token: %s", sqlite3_errmsg(rl_store_db(store)));
	sqlite3_finalize(st);
}

static void setup(void)
{
	char key[200], crt[200];

	fz_setup_env();
	snprintf(dir, sizeof(dir), "%s", fz_tmpdir());   /* the hub directory */
	atexit(remove_ca);
	snprintf(key, sizeof(key), "%s/%s", dir, HUB_DEVICE_CAKEY);
	snprintf(crt, sizeof(crt), "%s/%s", dir, HUB_DEVICE_CA);
	FZ_CHECK(rl_pki_key_generate(key) == RL_OK && rl_pki_ca_create(key, crt, "Relasi fuzz "
		 "device CA", 3650) == RL_OK, "device CA: %s", rl_error_message());

	store = fz_store_open(RL_STORE_HUB);     /* as hub_store_open opens hub.db */
	FZ_CHECK(sqlite3_exec(rl_store_db(store),
		 "INSERT INTO users(id, login, name, role) VALUES "
		 "('0000000000000000000000000000b0d1', 'budi', 'Budi Santoso', 'rep'),"
		 "('0000000000000000000000000000b0d2', 'ani', 'Ani', 'rep');"
		 "INSERT INTO hub_devices(id, user_id, name, fingerprint, enrolled_at) VALUES "
		 "('0000000000000000000000000000d002', '0000000000000000000000000000b0d2', 'ani', "
		 " 'f2', '2026-03-01T08:00:00Z');", NULL, NULL, NULL) == SQLITE_OK, "users");
	add_token(FZ_TOKEN_ID, FZ_TOKEN_SECRET, 1, FZ_NOW_MS / 1000 + 86400, NULL);
	add_token("fedcba9876543210fedcba9876543210", FZ_TOKEN_SECRET, 1, FZ_NOW_MS / 1000 - 1, NULL);
	add_token("00000000000000000000000000000000", FZ_TOKEN_SECRET, 1, FZ_NOW_MS / 1000 + 86400,
		  "2026-03-01T08:00:00Z");
	fz_store_snapshot(store);
}

static void check_enrolled(json_t *req, json_t *resp)
{
	const char *cert = json_string_value(json_object_get(resp, "cert"));
	const char *device = json_string_value(json_object_get(resp, "device"));
	char cn[128], fp[RL_FINGERPRINT_BUFSZ];
	sqlite3_stmt *st;

	FZ_CHECK(cert && device, "ENROLLED without cert or device");
	FZ_CHECK(rl_pki_csr_subject_cn(json_string_value(json_object_get(req, "csr")), cn,
				       sizeof(cn)) == RL_OK && strcmp(cn, device) == 0,
		 "enrolled device %s is not the CSR's CN", device);
	FZ_CHECK(rl_id_valid(device), "enrolled device id '%s'", device);
	FZ_CHECK(strcmp(json_string_value(json_object_get(resp, "user")),
			"0000000000000000000000000000b0d1") == 0 &&
		 strcmp(json_string_value(json_object_get(resp, "login")), "budi") == 0,
		 "enrolled for the wrong user");
	FZ_CHECK(rl_pki_fingerprint_pem(cert, fp) == RL_OK, "the certificate does not parse");
	FZ_CHECK(sqlite3_prepare_v2(rl_store_db(store), "SELECT fingerprint FROM hub_devices "
				    "WHERE id = ?1 AND user_id = '0000000000000000000000000000b0d1'",
				    -1, &st, NULL) == SQLITE_OK, "prepare");
	sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
	FZ_CHECK(sqlite3_step(st) == SQLITE_ROW &&
		 strcmp((const char *)sqlite3_column_text(st, 0), fp) == 0,
		 "the device is not recorded with its certificate");
	sqlite3_finalize(st);
	FZ_CHECK(fz_query_int(rl_store_db(store), "SELECT count(*) FROM hub_tokens WHERE id = '"
			      FZ_TOKEN_ID "' AND used_at IS NOT NULL") == 1, "the token is not used up");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *buf;
	json_t *req = NULL, *resp = (json_t *)1;
	uint64_t before;
	int type, rc;

	if (!store)
		setup();
	buf = malloc(size + 1);
	FZ_CHECK(buf != NULL, "out of memory");
	buf[0] = RL_FRAME_ENROLL;
	if (size)
		memcpy(buf + 1, data, size);
	rc = rl_wire_decode(buf, size + 1, &type, &req);
	free(buf);
	if (rc < 0)
		return 0;               /* not a frame the server would pass on (fuzz_wire) */
	before = fz_db_digest(rl_store_db(store));
	rc = hub_enroll(store, dir, req, &resp);
	if (rc != RL_OK) {
		FZ_CHECK(rc == RL_EAUTH || rc == RL_EPROTO || rc == RL_EINVALID,
			 "an enrolment request gave error %d: %s", rc, rl_error_message());
		FZ_CHECK(rl_error_message()[0], "error without a message");
		FZ_CHECK(resp == NULL, "an answer with an error");
		FZ_CHECK(fz_db_digest(rl_store_db(store)) == before, "a refused enrolment changed the store");
	} else {
		json_t *again = NULL;
		check_enrolled(req, resp);
		rc = hub_enroll(store, dir, req, &again);
		FZ_CHECK(rc == RL_OK && again != NULL, "the same device asking again was refused "
			 "(%d): %s", rc, rl_error_message());
		check_enrolled(req, again);
		json_decref(again);
		json_decref(resp);
	}
	json_decref(req);
	fz_store_restore(store);
	return 0;
}
