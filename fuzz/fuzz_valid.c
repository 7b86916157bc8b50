/*
 * fuzz_valid.c — the value parsers of sync/src/valid.c, which every typed,
 * imported (CSV, vCard) and synced value goes through: phones, e-mails,
 * money, dates (absolute, relative, with a spreadsheet format), times and
 * coordinates.
 *
 * Input: the first byte picks the parser (byte % 8) and, for phones and
 * money, the home country or currency (byte / 8); the rest, cut at the
 * first NUL, is the text. For date formats the text is "FORMAT\nINPUT".
 *
 * Asserts, for every parser: an error is RL_EINVALID (RL_ETOOBIG for an
 * output buffer that is too small) with a message, and leaves the output
 * untouched; a success gives a normalised value that
 *  - phone: is "+" and 8..15 digits, not starting "+0", and normalises to
 *    itself again (in any home country);
 *  - e-mail: is the input lower-cased, at most RL_MAX_EMAIL_BYTES, and
 *    normalises to itself;
 *  - money: formats (rl_money_format) and parses back to the same amount;
 *  - date: is YYYY-MM-DD of a real day in 1900..9999 and parses to itself;
 *  - time: formats as UTC (rl_time_format_utc) and parses back to the same
 *    instant, and that text is accepted as a stored time (years in range);
 *  - geo: latitude in [-90, 90], longitude in [-180, 180], both finite.
 */
#include "fuzz_util.h"

#include <math.h>
#include <string.h>

#include "relasi/error.h"
#include "relasi/limits.h"
#include "relasi/model.h"
#include "relasi/valid.h"

static const char *const countries[] = { "ID", "MY", "SG", "US", "GB", "RU", "IT", "DE",
					  "FI", "BN", "at", "XX" };
static const char *const currencies[] = { "IDR", "JPY", "KWD", "CLF", "USD", "EUR", "XAF",
					  "idr", "XXX" };
#define N(a) (sizeof(a) / sizeof((a)[0]))

static void check_error(int rc, const char *what)
{
	FZ_CHECK(rc == RL_EINVALID, "%s: error code %d", what, rc);
	FZ_CHECK(rl_error_message()[0], "%s: error without a message", what);
}

static int is_date(const char *d)
{
	int i;

	if (strlen(d) != 10 || d[4] != '-' || d[7] != '-')
		return 0;
	for (i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !(d[i] >= '0' && d[i] <= '9'))
			return 0;
	return strncmp(d, "1900", 4) >= 0;
}

static void check_phone(const char *in, const char *cc)
{
	char out[RL_E164_BUFSZ], again[RL_E164_BUFSZ];
	size_t i, n;
	int rc;

	memset(out, 'x', sizeof(out));
	rc = rl_phone_normalize(out, in, cc);
	if (rc != RL_OK) {
		check_error(rc, "phone");
		FZ_CHECK(out[0] == 'x', "phone: output written on error");
		return;
	}
	n = strlen(out);
	FZ_CHECK(out[0] == '+' && n >= 9 && n <= 1 + RL_MAX_E164_DIGITS && out[1] != '0',
		 "phone '%s' -> '%s'", in, out);
	for (i = 1; i < n; i++)
		FZ_CHECK(out[i] >= '0' && out[i] <= '9', "phone '%s' -> '%s'", in, out);
	for (i = 0; i < N(countries) - 1; i++) {
		FZ_CHECK(rl_phone_normalize(again, out, countries[i]) == RL_OK &&
			 strcmp(again, out) == 0, "phone '%s' -> '%s' does not normalise to itself",
			 in, out);
	}
}

static void check_email(const char *in)
{
	char out[RL_MAX_EMAIL_BYTES + 1], again[RL_MAX_EMAIL_BYTES + 1], small[8];
	size_t i, n = strlen(in);
	int rc;

	memset(out, 'x', sizeof(out));
	rc = rl_email_normalize(out, sizeof(out), in);
	if (rc != RL_OK) {
		check_error(rc, "e-mail");
		FZ_CHECK(out[0] == 'x', "e-mail: output written on error");
		return;
	}
	FZ_CHECK(strlen(out) == n && n <= RL_MAX_EMAIL_BYTES, "e-mail '%s' -> '%s'", in, out);
	for (i = 0; i < n; i++)
		FZ_CHECK(out[i] == in[i] || (in[i] >= 'A' && in[i] <= 'Z' && out[i] == in[i] + 32),
			 "e-mail '%s' -> '%s'", in, out);
	FZ_CHECK(rl_email_normalize(again, sizeof(again), out) == RL_OK && strcmp(again, out) == 0,
		 "e-mail '%s' does not normalise to itself", out);
	if (n + 1 > sizeof(small))
		FZ_CHECK(rl_email_normalize(small, sizeof(small), in) == RL_ETOOBIG,
			 "e-mail: a short buffer is not RL_ETOOBIG");
}

static void check_money(const char *in, const char *cur)
{
	int64_t minor = 42, back = 43;
	char text[64];
	int rc = rl_money_parse(&minor, in, cur);

	if (rc != RL_OK) {
		check_error(rc, "money");
		FZ_CHECK(minor == 42, "money: output written on error");
		return;
	}
	FZ_CHECK(rl_currency_exponent(cur) >= 0, "money parsed in an unknown currency %s", cur);
	FZ_CHECK(rl_money_format(text, sizeof(text), minor, cur) == RL_OK, "money: format %lld",
		 (long long)minor);
	FZ_CHECK(rl_money_parse(&back, text, cur) == RL_OK && back == minor,
		 "money '%s' -> %lld -> '%s' -> %lld", in, (long long)minor, text, (long long)back);
}

static void check_date(const char *in)
{
	static const int64_t nows[] = { FZ_NOW_MS / 1000, 0, -2208988800LL, 253402300799LL,
					INT64_MIN, INT64_MAX };
	static const int offsets[] = { 0, 420, -720, 840, 100000 };
	char out[11], again[11];
	size_t k;

	for (k = 0; k < N(nows); k++) {
		int off = offsets[k % N(offsets)];
		int rc;
		memset(out, 'x', sizeof(out));
		rc = rl_date_parse(out, in, nows[k], off);
		if (rc != RL_OK) {
			check_error(rc, "date");
			FZ_CHECK(out[0] == 'x', "date: output written on error");
			continue;
		}
		FZ_CHECK(is_date(out), "date '%s' -> '%s'", in, out);
		FZ_CHECK(rl_date_parse(again, out, 0, 0) == RL_OK && strcmp(again, out) == 0,
			 "date '%s' -> '%s' does not parse to itself", in, out);
	}
}

static void check_date_fmt(const char *text)
{
	const char *nl = strchr(text, '\n');
	char fmt[64], out[11], again[11];
	int rc;

	if (!nl || (size_t)(nl - text) >= sizeof(fmt))
		return;
	memcpy(fmt, text, (size_t)(nl - text));
	fmt[nl - text] = '\0';
	memset(out, 'x', sizeof(out));
	rc = rl_date_parse_fmt(out, nl + 1, fmt);
	if (rc != RL_OK) {
		check_error(rc, "date format");
		FZ_CHECK(out[0] == 'x', "date format: output written on error");
		return;
	}
	FZ_CHECK(is_date(out), "date '%s' as '%s' -> '%s'", nl + 1, fmt, out);
	FZ_CHECK(rl_date_parse(again, out, 0, 0) == RL_OK && strcmp(again, out) == 0,
		 "date '%s' as '%s' -> '%s' is not a date", nl + 1, fmt, out);
}

static void check_time(const char *in)
{
	static const int offsets[] = { 0, 420, -720, 840, -840 };
	const struct rl_table *t = rl_model_table("activities");
	const struct rl_field *f = rl_model_field(t, "at");
	size_t k;

	for (k = 0; k < N(offsets); k++) {
		int64_t utc = 42, back = 0;
		int off = 4242, off2 = 0, rc;
		char iso[21];
		struct rl_value v = { RL_V_TEXT, 0, 0, iso };

		rc = rl_time_parse(&utc, &off, in, FZ_NOW_MS / 1000, offsets[k]);
		if (rc != RL_OK) {
			check_error(rc, "time");
			FZ_CHECK(utc == 42 && off == 4242, "time: output written on error");
			continue;
		}
		FZ_CHECK(off >= -14 * 60 && off <= 14 * 60, "time '%s': offset %d", in, off);
		rl_time_format_utc(iso, utc);
		FZ_CHECK(rl_time_parse(&back, &off2, iso, 0, 0) == RL_OK && back == utc,
			 "time '%s' -> %lld -> '%s' does not parse back", in, (long long)utc, iso);
		/* What a device stores is what the hub accepts. */
		FZ_CHECK(rl_model_check_value(t, f, &v) == RL_OK,
			 "time '%s' (default offset %d) is stored as '%s', which the model refuses",
			 in, offsets[k], iso);
	}
}

static void check_geo(const char *in)
{
	double lat = 1000, lon = 1000;
	int rc = rl_geo_parse(&lat, &lon, in);

	if (rc != RL_OK) {
		check_error(rc, "geo");
		FZ_CHECK(lat == 1000 && lon == 1000, "geo: output written on error");
		return;
	}
	FZ_CHECK(isfinite(lat) && isfinite(lon) && lat >= -90 && lat <= 90 && lon >= -180 &&
		 lon <= 180, "geo '%s' -> %g,%g", in, lat, lon);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;
	unsigned sel;

	if (size == 0 || size > 4096)
		return 0;
	sel = data[0];
	text = fz_strndup(data + 1, size - 1);
	FZ_CHECK(text != NULL, "out of memory");
	switch (sel % 8) {
	case 0: check_phone(text, countries[(sel / 8) % N(countries)]); break;
	case 1: check_email(text); break;
	case 2: check_money(text, currencies[(sel / 8) % N(currencies)]); break;
	case 3: check_date(text); break;
	case 4: check_date_fmt(text); break;
	case 5: check_time(text); break;
	case 6: check_geo(text); break;
	default:
		/* everything at once, for inputs found under another selector */
		check_phone(text, "ID");
		check_email(text);
		check_money(text, "IDR");
		check_date(text);
		check_time(text);
		check_geo(text);
		break;
	}
	free(text);
	return 0;
}
