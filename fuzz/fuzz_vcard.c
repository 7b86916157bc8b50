/*
 * fuzz_vcard.c — the vCard 3.0 / 4.0 parser (sync/src/vcard.c) on a whole
 * file in memory, as `relasi vcard import` reads one, and the writer on
 * what it parsed.
 *
 * Asserts:
 *  - on error: no cards are handed out (*cards NULL, *ncards 0), the code is
 *    RL_EINVALID or RL_ETOOBIG and the message names the line; nothing
 *    leaks (LeakSanitizer);
 *  - on success: every card has a non-empty FN; at most
 *    RL_MAX_VCARD_VALUES phones and e-mails; every string is valid UTF-8
 *    without NUL; no name, city or phone is blank; phones and the UID come
 *    without their URI scheme ("tel:", "urn:uuid:");
 *  - writing each card as 3.0 and as 4.0 and parsing the output gives one
 *    card with the very same fields (lines folded at 75 octets, escapes,
 *    tel: URIs and all).
 */
#include "fuzz_util.h"

#include <string.h>

#include "relasi/error.h"
#include "relasi/limits.h"
#include "relasi/vcard.h"

static void check_str(const char *what, const char *s, int may_be_null)
{
	if (!s) {
		FZ_CHECK(may_be_null, "%s is missing", what);
		return;
	}
	FZ_CHECK(fz_utf8_ok(s, strlen(s)), "%s is not UTF-8", what);
	FZ_CHECK(s[0], "%s is empty instead of NULL", what);
}

/* s starts with lit, ignoring ASCII case (lit is lower case). */
static int has_prefix(const char *s, const char *lit)
{
	for (; *lit; s++, lit++)
		if ((*s >= 'A' && *s <= 'Z' ? *s + 32 : *s) != *lit)
			return 0;
	return 1;
}

static int same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_card(const rl_vcard *c)
{
	size_t i;

	check_str("FN", c->fn, 0);
	check_str("ORG", c->org, 1);
	check_str("TITLE", c->title, 1);
	check_str("NOTE", c->note, 1);
	check_str("city", c->city, 1);
	check_str("UID", c->uid, 1);
	FZ_CHECK(c->ntel <= RL_MAX_VCARD_VALUES && c->nemail <= RL_MAX_VCARD_VALUES,
		 "%zu phones, %zu e-mails", c->ntel, c->nemail);
	for (i = 0; i < c->ntel; i++) {
		check_str("TEL", c->tel[i], 0);
		FZ_CHECK(!has_prefix(c->tel[i], "tel:"), "TEL '%s' kept its URI scheme", c->tel[i]);
	}
	FZ_CHECK(!c->uid || !has_prefix(c->uid, "urn:uuid:"), "UID '%s' kept its scheme", c->uid);
	for (i = 0; i < c->nemail; i++)
		check_str("EMAIL", c->email[i], 0);
}

static void check_roundtrip(const rl_vcard *c, int version)
{
	char *buf = NULL;
	size_t len = 0, n = 0, i;
	FILE *f = open_memstream(&buf, &len);
	rl_vcard *back = NULL;
	int rc;

	FZ_CHECK(f != NULL, "open_memstream");
	rc = rl_vcard_write(f, c, version);
	FZ_CHECK(fclose(f) == 0, "memstream");
	FZ_CHECK(rc == RL_OK, "writing a parsed card as %d.0 failed: %d", version, rc);
	rc = rl_vcard_parse(&back, &n, buf, len);
	FZ_CHECK(rc == RL_OK && n == 1, "the %d.0 output does not parse back (%d, %zu cards):\n%s",
		 version, rc, n, buf);
	FZ_CHECK(same(c->fn, back->fn), "FN '%s' came back as '%s'", c->fn, back->fn);
	FZ_CHECK(same(c->org, back->org), "ORG changed:\n%s", buf);
	FZ_CHECK(same(c->title, back->title), "TITLE changed:\n%s", buf);
	FZ_CHECK(same(c->note, back->note), "NOTE changed:\n%s", buf);
	FZ_CHECK(same(c->city, back->city), "city changed:\n%s", buf);
	FZ_CHECK(same(c->uid, back->uid), "UID '%s' came back as '%s'", c->uid, back->uid);
	FZ_CHECK(c->ntel == back->ntel && c->nemail == back->nemail, "values lost:\n%s", buf);
	for (i = 0; i < c->ntel; i++)
		FZ_CHECK(same(c->tel[i], back->tel[i]), "TEL '%s' came back as '%s' (%d.0)",
			 c->tel[i], back->tel[i], version);
	for (i = 0; i < c->nemail; i++)
		FZ_CHECK(same(c->email[i], back->email[i]), "EMAIL '%s' came back as '%s'",
			 c->email[i], back->email[i]);
	rl_vcard_free_all(back, n);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rl_vcard *cards = (rl_vcard *)1;
	size_t n = 12345, i;
	int rc = rl_vcard_parse(&cards, &n, (const char *)data, size);

	if (rc != RL_OK) {
		FZ_CHECK(rc == RL_EINVALID || rc == RL_ETOOBIG, "error code %d", rc);
		FZ_CHECK(cards == NULL && n == 0, "cards handed out with an error");
		FZ_CHECK(strstr(rl_error_message(), "line ") || rc == RL_ETOOBIG,
			 "error without its line: %s", rl_error_message());
		return 0;
	}
	FZ_CHECK(n == 0 || cards != NULL, "%zu cards, no array", n);
	for (i = 0; i < n; i++) {
		check_card(&cards[i]);
		check_roundtrip(&cards[i], 3);
		check_roundtrip(&cards[i], 4);
	}
	rl_vcard_free_all(cards, n);
	return 0;
}
