/*
 * fuzz_bundle.c — the offline bundle reader (sync/src/bundle.c,
 * rl_bundle_read): what `relasi-hub bundle import` and `relasi bundle
 * import` read from a file a rep carried in. Its promise is that nothing in
 * a bundle reaches the caller unless the signer chains to the trusted CA,
 * the signature covers the manifest, and every member matches the manifest.
 *
 * The first input byte picks the mode:
 *  - even: the rest is the file itself (archive layer, limits, member
 *    names and types, the envelope before any signature check);
 *  - odd: the rest describes a bundle — header JSON up to a NUL, then
 *    members as NAME NUL LEN(2 bytes, big endian) DATA — which is written
 *    and signed with a device key of the trusted CA (rl_bundle_write), then
 *    maybe damaged (bit 1 of the first byte: the byte at the offset in the
 *    next two bytes is XORed with the one after), then read back.
 *
 * Asserts:
 *  - an error is one of the documented codes with a message, and hands out
 *    nothing;
 *  - a bundle read successfully has a manifest of the right format whose
 *    member list matches the members (names, sizes, SHA-256 recomputed
 *    here), and a signer of the trusted CA (the device's CN);
 *  - a bundle written and not damaged reads back with exactly the members
 *    written, in order; a damaged one that still reads has exactly them too
 *    (damage is detected or harmless: it never changes what the caller gets).
 * The keys are made once per process (P-256, random), so the corpus holds
 * raw inputs that exercise the archive layer and descriptions that are
 * signed afresh on every run.
 */
#include "fuzz_util.h"

#include <string.h>
#include <unistd.h>

#include <mbedtls/sha256.h>

#include "relasi/bundle.h"
#include "relasi/error.h"
#include "relasi/pki.h"

#define MAX_MEMBERS 8

static char ca_crt[512], dev_key[512], dev_crt[512], bundle_path[512];

static void setup(void)
{
	char ca_key[512], *csr = NULL, *crt = NULL;
	struct rl_pki_sign_opts o = { "fuzzdevice", NULL, 0, 30, 0, 7, 0 };
	const char *d;

	fz_setup_env();
	d = fz_tmpdir();
	snprintf(ca_key, sizeof(ca_key), "%s/ca.key", d);
	snprintf(ca_crt, sizeof(ca_crt), "%s/ca.crt", d);
	snprintf(dev_key, sizeof(dev_key), "%s/device.key", d);
	snprintf(dev_crt, sizeof(dev_crt), "%s/device.crt", d);
	snprintf(bundle_path, sizeof(bundle_path), "%s/input.bundle", d);
	FZ_CHECK(rl_pki_key_generate(ca_key) == RL_OK, "CA key: %s", rl_error_message());
	FZ_CHECK(rl_pki_ca_create(ca_key, ca_crt, "Fuzz Device CA", 30) == RL_OK, "CA: %s",
		 rl_error_message());
	FZ_CHECK(rl_pki_key_generate(dev_key) == RL_OK, "device key: %s", rl_error_message());
	FZ_CHECK(rl_pki_csr_create(dev_key, "fuzzdevice", &csr) == RL_OK, "CSR: %s",
		 rl_error_message());
	FZ_CHECK(rl_pki_sign_csr(ca_key, ca_crt, csr, &o, &crt) == RL_OK, "sign: %s",
		 rl_error_message());
	FZ_CHECK(rl_pki_write_file(dev_crt, crt, 0600, 1) == RL_OK, "write: %s", rl_error_message());
	free(csr);
	free(crt);
}

static void sha_hex(const unsigned char *d, size_t n, char out[65])
{
	unsigned char h[32];
	int i;

	mbedtls_sha256_ret(d, n, h, 0);
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* What every successfully read bundle must be. */
static void check_read(const rl_bundle *b)
{
	json_t *list = json_object_get(b->manifest, "members"), *o;
	size_t i;

	FZ_CHECK(json_is_object(b->manifest), "no manifest");
	FZ_CHECK(strcmp(json_string_value(json_object_get(b->manifest, "format")) ?
			json_string_value(json_object_get(b->manifest, "format")) : "",
			RL_BUNDLE_FORMAT) == 0, "wrong format accepted");
	FZ_CHECK(strcmp(b->signer_cn, "fuzzdevice") == 0, "signer '%s' accepted", b->signer_cn);
	FZ_CHECK(json_array_size(list) == b->n, "%zu listed, %zu members", json_array_size(list),
		 b->n);
	json_array_foreach(list, i, o) {
		char hex[65];
		const char *name = json_string_value(json_object_get(o, "name"));
		const char *want = json_string_value(json_object_get(o, "sha256"));
		FZ_CHECK(name && strcmp(name, b->members[i].name) == 0, "member %zu out of order", i);
		FZ_CHECK(json_integer_value(json_object_get(o, "size")) == (json_int_t)b->members[i].len,
			 "member %s: size differs from the manifest", name);
		sha_hex(b->members[i].data, b->members[i].len, hex);
		FZ_CHECK(want && strcmp(want, hex) == 0, "member %s: hash differs from the manifest",
			 name);
		FZ_CHECK(rl_bundle_get(b, name) == &b->members[i], "rl_bundle_get misses %s", name);
	}
}

static int read_and_check(rl_bundle **out)
{
	int error = rl_bundle_read(bundle_path, ca_crt, out);

	if (error < 0) {
		FZ_CHECK(*out == NULL, "an error handed out a bundle");
		FZ_CHECK(error == RL_EINVALID || error == RL_ETOOBIG || error == RL_EAUTH ||
			 error == RL_EIO, "undocumented error %d: %s", error, rl_error_message());
		FZ_CHECK(rl_error_message()[0] != '\0', "an error without a message");
		return error;
	}
	check_read(*out);
	return RL_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct rl_bundle_member ms[MAX_MEMBERS];
	rl_bundle *b = NULL;
	json_t *header = NULL;
	json_error_t jerr;
	size_t n = 0, pos, i;
	uint8_t mode;
	int error;

	if (!ready) {
		setup();
		ready = 1;
	}
	if (size < 1)
		return 0;
	mode = data[0];
	data++;
	size--;
	if (!(mode & 1)) {
		fz_write_file(bundle_path, data, size);
		if (read_and_check(&b) == RL_OK)
			rl_bundle_free(b);
		return 0;
	}

	/* A described bundle: header NUL members... */
	for (pos = 0; pos < size && data[pos]; pos++)
		;
	header = json_loadb((const char *)data, pos, 0, &jerr);
	if (!json_is_object(header)) {
		json_decref(header);
		header = json_pack("{s:s}", "kind", "changes");
	}
	pos++;
	while (pos < size && n < MAX_MEMBERS) {
		size_t name_end = pos, len;
		while (name_end < size && data[name_end] && name_end - pos <= RL_BUNDLE_NAME_MAX)
			name_end++;
		if (name_end + 3 > size || data[name_end])
			break;
		snprintf(ms[n].name, sizeof(ms[n].name), "%.*s", (int)(name_end - pos),
			 (const char *)data + pos);
		len = ((size_t)data[name_end + 1] << 8) | data[name_end + 2];
		pos = name_end + 3;
		if (len > size - pos)
			len = size - pos;
		ms[n].data = (unsigned char *)data + pos;
		ms[n].len = len;
		pos += len;
		n++;
	}
	unlink(bundle_path);
	error = rl_bundle_write(bundle_path, header, ms, n, dev_crt, dev_key);
	json_decref(header);
	if (error < 0) {
		/* Refused descriptions: bad member names, reserved names... */
		FZ_CHECK(error == RL_EINVALID || error == RL_ETOOBIG, "write: undocumented error %d: %s",
			 error, rl_error_message());
		return 0;
	}
	if (mode & 2) {
		/* Damage one byte of the written file. */
		FILE *f = fopen(bundle_path, "r+b");
		long at, end;
		int c;
		FZ_CHECK(f != NULL, "reopen");
		fseek(f, 0, SEEK_END);
		end = ftell(f);
		at = end > 0 ? (long)(((size_t)(pos < size ? data[pos] : 0) << 8 |
				       (pos + 1 < size ? data[pos + 1] : 0)) % (size_t)end) : 0;
		fseek(f, at, SEEK_SET);
		c = fgetc(f);
		if (c != EOF) {
			fseek(f, at, SEEK_SET);
			fputc(c ^ (pos + 2 < size && data[pos + 2] ? data[pos + 2] : 0x5a), f);
		}
		fclose(f);
	}
	error = read_and_check(&b);
	if (!(mode & 2))
		FZ_CHECK(error == RL_OK, "a bundle just written does not read back: %s",
			 rl_error_message());
	if (error == RL_OK) {
		/* Written or damaged, what reads back is what was written. */
		FZ_CHECK(b->n == n, "%zu members written, %zu read", n, b->n);
		for (i = 0; i < n; i++)
			FZ_CHECK(strcmp(b->members[i].name, ms[i].name) == 0 &&
				 b->members[i].len == ms[i].len &&
				 (ms[i].len == 0 || memcmp(b->members[i].data, ms[i].data, ms[i].len) == 0),
				 "member %s changed between write and read", ms[i].name);
		rl_bundle_free(b);
	}
	return 0;
}
