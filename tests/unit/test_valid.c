/*
 * test_valid.c — unit tests of relasi/valid.h: phone numbers, e-mail,
 * currencies and money, dates, times and coordinates. Every error case
 * checks the code, that the message quotes the offending input, and that
 * the output was left alone.
 */
#include "relasi/valid.h"

#include "relasi/error.h"
#include "relasi/limits.h"

#include "check.h"

#include <stdlib.h>

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <time.h>

/* 2026-11-23T20:00:00Z: in Jakarta (WIB, +07:00) it is already the 24th. */
#define NOW_UTC INT64_C(1795464000)
#define WIB 420

/* The call fails with code and the message quotes needle. */
#define CHECK_FAILS(call, code, needle) do { \
	rl_error_clear(); \
	CHECK_EQ_INT((call), (code)); \
	CHECK_EQ_INT(rl_error_code(), (code)); \
	if (strstr(rl_error_message(), (needle)) == NULL) { \
		check_failures++; \
		fprintf(stderr, "%s:%d: message \"%s\" does not quote \"%s\"\n", \
			__FILE__, __LINE__, rl_error_message(), (needle)); \
	} \
	check_count++; \
} while (0)

/* ------------------------------------------------------------------------ */

static void phone_ok(int line, const char *in, const char *country,
		     const char *want)
{
	char out[RL_E164_BUFSZ];
	int rc = rl_phone_normalize(out, in, country);

	check_count++;
	if (rc != RL_OK || strcmp(out, want) != 0) {
		check_failures++;
		fprintf(stderr, "%s:%d: phone '%s' (%s): rc %d, got '%s', want '%s' (%s)\n",
			__FILE__, line, in, country, rc, rc == RL_OK ? out : "",
			want, rl_error_message());
	}
}

static void phone_bad(int line, const char *in, const char *country,
		      const char *needle)
{
	char out[RL_E164_BUFSZ];
	int rc;

	memset(out, 'x', sizeof(out));
	rl_error_clear();
	rc = rl_phone_normalize(out, in, country);
	check_count++;
	if (rc != RL_EINVALID || strstr(rl_error_message(), needle) == NULL ||
	    out[0] != 'x' || out[RL_E164_BUFSZ - 1] != 'x') {
		check_failures++;
		fprintf(stderr, "%s:%d: phone '%s' (%s): rc %d, message \"%s\"\n",
			__FILE__, line, in ? in : "(null)",
			country ? country : "(null)", rc, rl_error_message());
	}
}

#define PHONE_OK(in, cc, want) phone_ok(__LINE__, in, cc, want)
#define PHONE_BAD(in, cc) phone_bad(__LINE__, in, cc, in)

static void test_phone(void)
{
	static const char *const required[][2] = {
		{ "ID", "62" }, { "MY", "60" }, { "SG", "65" }, { "PH", "63" },
		{ "TH", "66" }, { "VN", "84" }, { "AU", "61" }, { "NZ", "64" },
		{ "JP", "81" }, { "KR", "82" }, { "CN", "86" }, { "IN", "91" },
		{ "US", "1" }, { "CA", "1" }, { "GB", "44" }, { "DE", "49" },
		{ "FR", "33" }, { "NL", "31" }, { "IT", "39" }, { "ES", "34" },
		{ "AE", "971" }, { "SA", "966" },
	};
	size_t i;

	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		CHECK_EQ_STR(rl_country_calling_code(required[i][0]), required[i][1]);
	CHECK_EQ_STR(rl_country_calling_code("id"), "62");
	CHECK(rl_country_calling_code("XX") == NULL);
	CHECK(rl_country_calling_code("IDN") == NULL);
	CHECK(rl_country_calling_code("I") == NULL);
	CHECK(rl_country_calling_code("") == NULL);
	CHECK(rl_country_calling_code("1D") == NULL);
	CHECK(rl_country_calling_code(NULL) == NULL);

	/* Indonesia, the examples of the brief */
	PHONE_OK("0812-3456-789", "ID", "+628123456789");
	PHONE_OK("+62 812 3456 789", "ID", "+628123456789");
	PHONE_OK("0062 812 3456 789", "ID", "+628123456789");
	PHONE_OK("62812 3456 789", "ID", "+628123456789");
	PHONE_OK("(021) 5550123", "ID", "+62215550123");
	PHONE_OK("+628123456789", "ID", "+628123456789");
	PHONE_OK("0812.3456.789", "ID", "+628123456789");
	PHONE_OK("08123456789", "id", "+628123456789");
	/* the trunk 0 left out: still a national number */
	PHONE_OK("812-3456-789", "ID", "+628123456789");
	/* a stray trunk prefix after the calling code is dropped */
	PHONE_OK("+62 0812 3456 789", "ID", "+628123456789");
	PHONE_OK("+62 (0)21 5550123", "ID", "+62215550123");
	/* the calling code in parentheses, a common Indonesian way */
	PHONE_OK("(+62) 812-3456-789", "ID", "+628123456789");
	PHONE_OK("(+62) 0812 3456 789", "ID", "+628123456789");
	PHONE_OK("(+62 22) 7201234", "ID", "+62227201234");
	PHONE_OK("(+44) 20 7946 0958", "ID", "+442079460958");
	PHONE_BAD("(+) 812 3456 789", "ID");
	PHONE_BAD("(++62) 812 3456 789", "ID");
	PHONE_BAD("+(+62) 812 3456 789", "ID");
	/* national digits that happen to start with 62 but are too short to
	 * hold a calling code and a national number */
	PHONE_OK("622 12345", "ID", "+6262212345");
	/* an international number with a non-home default */
	PHONE_OK("+62 812 3456 789", "US", "+628123456789");
	PHONE_OK("00 44 20 7946 0958", "ID", "+442079460958");

	/* NANP: trunk prefix 1 equals the calling code */
	PHONE_OK("(415) 555-0100", "US", "+14155550100");
	PHONE_OK("1-415-555-0100", "US", "+14155550100");
	PHONE_OK("+1 415 555 0100", "US", "+14155550100");
	PHONE_OK("416.555.0199", "CA", "+14165550199");

	/* no trunk prefix: Singapore, Italy */
	PHONE_OK("6512 3456", "SG", "+6565123456");
	PHONE_OK("9123 4567", "SG", "+6591234567");
	PHONE_OK("65 9123 4567", "SG", "+6591234567");
	PHONE_OK("+65 6512 3456", "SG", "+6565123456");
	PHONE_OK("06 1234 5678", "IT", "+390612345678");
	PHONE_OK("393 123 4567", "IT", "+393931234567");
	PHONE_OK("+39 06 1234 5678", "IT", "+390612345678");

	/* other tables entries */
	PHONE_OK("020 7946 0958", "GB", "+442079460958");
	PHONE_OK("+44 (0)20 7946 0958", "GB", "+442079460958");
	PHONE_OK("030 123456", "DE", "+4930123456");
	PHONE_OK("01 23 45 67 89", "FR", "+33123456789");
	PHONE_OK("020-123 4567", "NL", "+31201234567");
	PHONE_OK("912 345 678", "ES", "+34912345678");
	PHONE_OK("012-345 6789", "MY", "+60123456789");
	PHONE_OK("0917 123 4567", "PH", "+639171234567");
	PHONE_OK("02 123 4567", "TH", "+6621234567");
	PHONE_OK("0912 345 678", "VN", "+84912345678");
	PHONE_OK("0412 345 678", "AU", "+61412345678");
	PHONE_OK("021 123 4567", "NZ", "+64211234567");
	PHONE_OK("03-1234-5678", "JP", "+81312345678");
	PHONE_OK("010-1234-5678", "KR", "+821012345678");
	PHONE_OK("0139 1234 5678", "CN", "+8613912345678");
	PHONE_OK("098765 43210", "IN", "+919876543210");
	PHONE_OK("050 123 4567", "AE", "+971501234567");
	PHONE_OK("050 123 4567", "SA", "+966501234567");
	/* Russia: trunk 8, and +7 812 (St Petersburg) must keep its 8 */
	PHONE_OK("8 916 123-45-67", "RU", "+79161234567");
	PHONE_OK("+7 812 123 4567", "RU", "+78121234567");

	/* length limits: 8..15 digits with the calling code */
	PHONE_OK("+12345678", "ID", "+12345678");
	PHONE_OK("+628123456789012", "ID", "+628123456789012");
	PHONE_BAD("+1234567", "ID");
	PHONE_BAD("+6281234567890123", "ID");
	PHONE_BAD("0812", "ID");
	PHONE_BAD("123456789012345678901234567890123", "ID");

	/* syntax */
	PHONE_BAD("", "ID");
	PHONE_BAD("0812-ABC-789", "ID");
	PHONE_BAD("0812 3456 789 ext 12", "ID");
	PHONE_BAD("O812 3456 789", "ID");
	PHONE_BAD("+62 812+3456", "ID");
	PHONE_BAD("62+812 3456 789", "ID");
	PHONE_BAD("++62 812 3456 789", "ID");
	PHONE_BAD("+", "ID");
	PHONE_BAD("(021 5550123", "ID");
	PHONE_BAD("021) 5550123", "ID");
	PHONE_BAD("((021)) 5550123", "ID");
	PHONE_BAD("() 021 5550123", "ID");
	PHONE_BAD("0812-3456-789-", "ID");
	PHONE_BAD("-0812-3456-789", "ID");
	PHONE_BAD(" 0812 3456 789", "ID");
	PHONE_BAD("0812/3456789", "ID");
	PHONE_BAD("0812,3456789", "ID");
	PHONE_BAD("+0812345678", "ID");
	PHONE_BAD("\xef\xbc\x90\xef\xbc\x98\x31\x32\x33\x34\x35\x36\x37\x38", "ID");

	/* unknown default country, even for an international number */
	phone_bad(__LINE__, "0812-3456-789", "XX", "XX");
	phone_bad(__LINE__, "0812-3456-789", "XX", "0812-3456-789");
	phone_bad(__LINE__, "+62 812 3456 789", "IDN", "IDN");
	phone_bad(__LINE__, "+62 812 3456 789", "", "+62 812 3456 789");
	phone_bad(__LINE__, "+62 812 3456 789", NULL, "+62 812 3456 789");
	phone_bad(__LINE__, NULL, "ID", "''");
}

/* ------------------------------------------------------------------------ */

static void email_ok(int line, const char *in, const char *want)
{
	char out[RL_MAX_EMAIL_BYTES + 1];
	int rc = rl_email_normalize(out, sizeof(out), in);

	check_count++;
	if (rc != RL_OK || strcmp(out, want) != 0) {
		check_failures++;
		fprintf(stderr, "%s:%d: e-mail '%s': rc %d, got '%s' (%s)\n",
			__FILE__, line, in, rc, rc == RL_OK ? out : "",
			rl_error_message());
	}
}

static void email_bad(int line, const char *in)
{
	char out[RL_MAX_EMAIL_BYTES + 1];
	int rc;

	memset(out, 'x', sizeof(out));
	rl_error_clear();
	rc = rl_email_normalize(out, sizeof(out), in);
	check_count++;
	if (rc != RL_EINVALID || strstr(rl_error_message(), in) == NULL ||
	    out[0] != 'x') {
		check_failures++;
		fprintf(stderr, "%s:%d: e-mail '%s': rc %d, message \"%s\"\n",
			__FILE__, line, in, rc, rl_error_message());
	}
}

#define EMAIL_OK(in, want) email_ok(__LINE__, in, want)
#define EMAIL_BAD(in) email_bad(__LINE__, in)

static void test_email(void)
{
	char big[400], out[64];
	size_t i;

	EMAIL_OK("Budi.Santoso@Example.CO.ID", "budi.santoso@example.co.id");
	EMAIL_OK("a@b.co", "a@b.co");
	EMAIL_OK("sales+jkt@relasi.example", "sales+jkt@relasi.example");
	EMAIL_OK("o'neil@x.com", "o'neil@x.com");
	EMAIL_OK("user_name-1@sub-domain.example.com", "user_name-1@sub-domain.example.com");
	EMAIL_OK("!#$%&'*+/=?^_`{|}~.-@x.com", "!#$%&'*+/=?^_`{|}~.-@x.com");
	EMAIL_OK("1@2.3", "1@2.3");

	EMAIL_BAD("");
	EMAIL_BAD("budi");
	EMAIL_BAD("budi@");
	EMAIL_BAD("@example.com");
	EMAIL_BAD("budi@@example.com");
	EMAIL_BAD("budi@x@example.com");
	EMAIL_BAD(".budi@example.com");
	EMAIL_BAD("budi.@example.com");
	EMAIL_BAD("bu..di@example.com");
	EMAIL_BAD("budi@example");
	EMAIL_BAD("budi@-example.com");
	EMAIL_BAD("budi@example-.com");
	EMAIL_BAD("budi@example..com");
	EMAIL_BAD("budi@.example.com");
	EMAIL_BAD("budi@example.com.");
	EMAIL_BAD("budi santoso@example.com");
	EMAIL_BAD("budi@exa_mple.com");
	EMAIL_BAD("budi@example.com ");
	EMAIL_BAD(" budi@example.com");
	EMAIL_BAD("\"budi\"@example.com");
	EMAIL_BAD("b(udi)@example.com");
	EMAIL_BAD("b\xc3\xbc" "di@example.com");
	EMAIL_BAD("budi@ex\xc3\xa4mple.com");
	EMAIL_BAD("budi@[127.0.0.1]");

	/* local part: 64 octets at most */
	memset(big, 'a', 64);
	memcpy(big + 64, "@x.com", 7);
	EMAIL_OK(big, big);
	memset(big, 'a', 65);
	memcpy(big + 65, "@x.com", 7);
	EMAIL_BAD(big);

	/* domain label: 63 octets at most */
	memcpy(big, "a@", 2);
	memset(big + 2, 'b', 63);
	memcpy(big + 65, ".com", 5);
	EMAIL_OK(big, big);
	memcpy(big, "a@", 2);
	memset(big + 2, 'b', 64);
	memcpy(big + 66, ".com", 5);
	EMAIL_BAD(big);

	/* whole address: RL_MAX_EMAIL_BYTES (254) octets; 64 + 1 + 189 */
	memset(big, 'a', 64);
	big[64] = '@';
	for (i = 65; i < 254; i++)
		big[i] = 'b';
	big[65 + 63] = '.';
	big[65 + 63 + 1 + 63] = '.';
	big[254] = '\0';
	CHECK_EQ_INT(strlen(big), RL_MAX_EMAIL_BYTES);
	EMAIL_OK(big, big);
	big[254] = 'b';
	big[255] = '\0';
	EMAIL_BAD(big);

	/* a NULL input reads as "" */
	CHECK_FAILS(rl_email_normalize(out, sizeof(out), NULL), RL_EINVALID, "''");

	/* the output must hold the address and its NUL */
	memset(out, 'x', sizeof(out));
	CHECK_FAILS(rl_email_normalize(out, 6, "a@b.co"), RL_ETOOBIG, "a@b.co");
	CHECK(out[0] == 'x');
	CHECK_FAILS(rl_email_normalize(NULL, 0, "a@b.co"), RL_ETOOBIG, "a@b.co");
	CHECK_EQ_INT(rl_email_normalize(out, 7, "A@B.CO"), RL_OK);
	CHECK_EQ_STR(out, "a@b.co");
}

/* ------------------------------------------------------------------------ */

static void test_currency(void)
{
	char code[4];
	int a, b, c, n = 0, bad_exp = 0;

	CHECK_EQ_INT(rl_currency_exponent("IDR"), 2);
	CHECK_EQ_INT(rl_currency_exponent("JPY"), 0);
	CHECK_EQ_INT(rl_currency_exponent("KRW"), 0);
	CHECK_EQ_INT(rl_currency_exponent("KWD"), 3);
	CHECK_EQ_INT(rl_currency_exponent("BHD"), 3);
	CHECK_EQ_INT(rl_currency_exponent("OMR"), 3);
	CHECK_EQ_INT(rl_currency_exponent("TND"), 3);
	CHECK_EQ_INT(rl_currency_exponent("USD"), 2);
	CHECK_EQ_INT(rl_currency_exponent("EUR"), 2);
	CHECK_EQ_INT(rl_currency_exponent("SGD"), 2);
	CHECK_EQ_INT(rl_currency_exponent("MYR"), 2);
	CHECK_EQ_INT(rl_currency_exponent("PHP"), 2);
	CHECK_EQ_INT(rl_currency_exponent("THB"), 2);
	CHECK_EQ_INT(rl_currency_exponent("CLP"), 0);
	CHECK_EQ_INT(rl_currency_exponent("VND"), 0);
	CHECK_EQ_INT(rl_currency_exponent("ISK"), 0);
	CHECK_EQ_INT(rl_currency_exponent("UGX"), 0);
	CHECK_EQ_INT(rl_currency_exponent("XAF"), 0);
	CHECK_EQ_INT(rl_currency_exponent("CLF"), 4);
	CHECK_EQ_INT(rl_currency_exponent("UYW"), 4);
	CHECK_EQ_INT(rl_currency_exponent("XCG"), 2);
	CHECK_EQ_INT(rl_currency_exponent("ZWG"), 2);
	CHECK_EQ_INT(rl_currency_exponent("AED"), 2);
	CHECK_EQ_INT(rl_currency_exponent("ZMW"), 2);

	CHECK_EQ_INT(rl_currency_exponent("idr"), -1);
	CHECK_EQ_INT(rl_currency_exponent("Idr"), -1);
	CHECK_EQ_INT(rl_currency_exponent("ID"), -1);
	CHECK_EQ_INT(rl_currency_exponent("IDRR"), -1);
	CHECK_EQ_INT(rl_currency_exponent("IDR "), -1);
	CHECK_EQ_INT(rl_currency_exponent(""), -1);
	CHECK_EQ_INT(rl_currency_exponent(NULL), -1);
	CHECK_EQ_INT(rl_currency_exponent("ABC"), -1);
	CHECK_EQ_INT(rl_currency_exponent("XXX"), -1);
	CHECK_EQ_INT(rl_currency_exponent("XAU"), -1);
	CHECK_EQ_INT(rl_currency_exponent("HRK"), -1);
	CHECK_EQ_INT(rl_currency_exponent("ANG"), -1);

	/* the table is the whole active list, with plausible exponents */
	code[3] = '\0';
	for (a = 'A'; a <= 'Z'; a++) {
		for (b = 'A'; b <= 'Z'; b++) {
			for (c = 'A'; c <= 'Z'; c++) {
				int e;

				code[0] = (char)a;
				code[1] = (char)b;
				code[2] = (char)c;
				e = rl_currency_exponent(code);
				if (e < 0)
					continue;
				n++;
				if (e != 0 && e != 2 && e != 3 && e != 4)
					bad_exp++;
			}
		}
	}
	CHECK(n >= 150 && n <= 200);
	CHECK_EQ_INT(bad_exp, 0);
}

/* ------------------------------------------------------------------------ */

static void money_ok(int line, const char *text, const char *cur, int64_t want)
{
	int64_t got = 12345;
	int rc = rl_money_parse(&got, text, cur);

	check_count++;
	if (rc != RL_OK || got != want) {
		check_failures++;
		fprintf(stderr, "%s:%d: money '%s' %s: rc %d, got %lld, want %lld (%s)\n",
			__FILE__, line, text, cur, rc, (long long)got,
			(long long)want, rl_error_message());
	}
}

static void money_bad(int line, const char *text, const char *cur,
		      const char *needle)
{
	int64_t got = 12345;
	int rc;

	rl_error_clear();
	rc = rl_money_parse(&got, text, cur);
	check_count++;
	if (rc != RL_EINVALID || strstr(rl_error_message(), needle) == NULL ||
	    got != 12345) {
		check_failures++;
		fprintf(stderr, "%s:%d: money '%s' %s: rc %d, got %lld, message \"%s\"\n",
			__FILE__, line, text ? text : "(null)",
			cur ? cur : "(null)", rc, (long long)got, rl_error_message());
	}
}

#define MONEY_OK(t, c, w) money_ok(__LINE__, t, c, w)
#define MONEY_BAD(t, c) money_bad(__LINE__, t, c, t)

static void fmt_ok(int line, int64_t minor, const char *cur, const char *want)
{
	char out[64];
	int64_t back = 0;
	int rc = rl_money_format(out, sizeof(out), minor, cur);

	check_count++;
	if (rc != RL_OK || strcmp(out, want) != 0) {
		check_failures++;
		fprintf(stderr, "%s:%d: format %lld %s: rc %d, got '%s', want '%s'\n",
			__FILE__, line, (long long)minor, cur, rc,
			rc == RL_OK ? out : "", want);
		return;
	}
	/* what is formatted parses back to the same amount */
	check_count++;
	if (rl_money_parse(&back, out, cur) != RL_OK || back != minor) {
		check_failures++;
		fprintf(stderr, "%s:%d: '%s' %s does not parse back to %lld (%s)\n",
			__FILE__, line, out, cur, (long long)minor, rl_error_message());
	}
}

#define FMT_OK(m, c, w) fmt_ok(__LINE__, m, c, w)

/* Formatting only: a value beyond RL_MAX_MONEY_MINOR (a report's total)
 * formats but, as one amount, does not parse back. */
static void fmt_big(int line, int64_t minor, const char *cur, const char *want)
{
	char out[64];
	int64_t back = 12345;
	int rc = rl_money_format(out, sizeof(out), minor, cur);

	check_count++;
	if (rc != RL_OK || strcmp(out, want) != 0 ||
	    rl_money_parse(&back, out, cur) != RL_EINVALID || back != 12345) {
		check_failures++;
		fprintf(stderr, "%s:%d: format %lld %s: rc %d, got '%s', want '%s' (not parsing back)\n",
			__FILE__, line, (long long)minor, cur, rc, rc == RL_OK ? out : "", want);
	}
}

#define FMT_BIG(m, c, w) fmt_big(__LINE__, m, c, w)

static void test_money(void)
{
	char out[32];

	MONEY_OK("1500000", "IDR", INT64_C(150000000));
	MONEY_OK("12.5", "USD", 1250);
	MONEY_OK("12.50", "USD", 1250);
	MONEY_OK("12.05", "USD", 1205);
	MONEY_OK("0.5", "USD", 50);
	MONEY_OK("0", "USD", 0);
	MONEY_OK("-0", "USD", 0);
	MONEY_OK("-0.01", "USD", -1);
	MONEY_OK("1,500,000.50", "USD", INT64_C(150000050));
	MONEY_OK("1,500,000", "IDR", INT64_C(150000000));
	MONEY_OK("1 500 000", "IDR", INT64_C(150000000));
	MONEY_OK("1_500_000", "IDR", INT64_C(150000000));
	MONEY_OK("999,999", "JPY", 999999);
	MONEY_OK("-3", "JPY", -3);
	MONEY_OK("+3", "JPY", 3);
	MONEY_OK("-1,000", "JPY", -1000);
	MONEY_OK("1.234", "KWD", 1234);
	MONEY_OK("1.2", "KWD", 1200);
	MONEY_OK("7", "BHD", 7000);
	MONEY_OK("5", "CLF", 50000);
	MONEY_OK("0.0001", "CLF", 1);
	MONEY_OK("007", "USD", 700);

	/* the bound of one amount, 10^15 minor units either way (limits.h):
	 * reached directly, through the decimal scaling, and one past it */
	MONEY_OK("10000000000000.00", "USD", INT64_C(1000000000000000));
	MONEY_OK("10,000,000,000,000.00", "USD", INT64_C(1000000000000000));
	MONEY_OK("-10000000000000", "USD", -INT64_C(1000000000000000));
	MONEY_OK("1000000000000000", "JPY", INT64_C(1000000000000000));
	MONEY_OK("-1000000000000000", "JPY", -INT64_C(1000000000000000));
	MONEY_OK("100000000000", "CLF", INT64_C(1000000000000000));
	MONEY_OK("999999999999.999", "KWD", INT64_C(999999999999999));
	MONEY_BAD("10000000000000.01", "USD");
	MONEY_BAD("-10000000000000.01", "USD");
	MONEY_BAD("10000000000001", "USD");
	MONEY_BAD("1000000000000001", "JPY");
	MONEY_BAD("-1000000000000001", "JPY");
	MONEY_BAD("1000000000000.001", "KWD");
	MONEY_BAD("100000000000.0001", "CLF");
	/* int64's own ends, which the bound keeps far away */
	MONEY_BAD("92233720368547758.07", "USD");
	MONEY_BAD("-92233720368547758.08", "USD");
	MONEY_BAD("9223372036854775807", "JPY");
	MONEY_BAD("-9223372036854775808", "JPY");
	MONEY_BAD("9223372036854775808", "JPY");
	MONEY_BAD("99999999999999999999999999", "IDR");
	money_bad(__LINE__, "10000000000000.01", "IDR", "10000000000000.00");

	/* decimals beyond the currency's */
	MONEY_BAD("12.345", "USD");
	MONEY_BAD("12.340", "USD");
	MONEY_BAD("12.5", "JPY");
	MONEY_BAD("12.0", "JPY");
	MONEY_BAD("1.2345", "KWD");

	/* syntax */
	MONEY_BAD("", "USD");
	MONEY_BAD("abc", "USD");
	MONEY_BAD("1e5", "USD");
	MONEY_BAD("12..5", "USD");
	MONEY_BAD("12.5.1", "USD");
	MONEY_BAD(".", "USD");
	MONEY_BAD(".5", "USD");
	MONEY_BAD("12.", "USD");
	MONEY_BAD("-", "USD");
	MONEY_BAD("+", "USD");
	MONEY_BAD("+-3", "USD");
	MONEY_BAD("--3", "USD");
	MONEY_BAD("- 3", "USD");
	MONEY_BAD(" 12", "USD");
	MONEY_BAD("12 ", "USD");
	MONEY_BAD("12 USD", "USD");
	MONEY_BAD("$12", "USD");
	MONEY_BAD("0x10", "USD");
	MONEY_BAD("\xef\xbc\x91", "USD");

	/* grouping must be regular */
	MONEY_BAD("1,50", "USD");
	MONEY_BAD("1,5000", "USD");
	MONEY_BAD("1500,000", "USD");
	MONEY_BAD("15,00,000", "INR");
	MONEY_BAD(",100", "USD");
	MONEY_BAD("100,", "USD");
	MONEY_BAD("1,,000", "USD");
	MONEY_BAD("1,000 000", "USD");
	MONEY_BAD("1,000_000", "USD");
	MONEY_BAD("1,000.000,5", "USD");
	MONEY_BAD("1.000,50", "EUR");
	MONEY_BAD("1,000.5,0", "USD");

	/* currency */
	money_bad(__LINE__, "12.5", "usd", "usd");
	money_bad(__LINE__, "12.5", "XYZ", "XYZ");
	money_bad(__LINE__, "12.5", NULL, "''");
	money_bad(__LINE__, NULL, "USD", "''");

	/* formatting */
	FMT_OK(INT64_C(150000000), "IDR", "1500000.00");
	FMT_OK(-5, "JPY", "-5");
	FMT_OK(-50, "USD", "-0.50");
	FMT_OK(-1, "USD", "-0.01");
	FMT_OK(0, "USD", "0.00");
	FMT_OK(0, "JPY", "0");
	FMT_OK(1250, "USD", "12.50");
	FMT_OK(5, "KWD", "0.005");
	FMT_OK(-1234, "BHD", "-1.234");
	FMT_OK(1, "CLF", "0.0001");
	FMT_OK(INT64_C(1000000000000000), "USD", "10000000000000.00");
	FMT_OK(-INT64_C(1000000000000000), "CLF", "-100000000000.0000");
	/* a total may pass the bound of one amount: it formats, all of int64 */
	FMT_BIG(INT64_MAX, "USD", "92233720368547758.07");
	FMT_BIG(INT64_MIN, "USD", "-92233720368547758.08");
	FMT_BIG(INT64_MAX, "JPY", "9223372036854775807");
	FMT_BIG(INT64_MIN, "JPY", "-9223372036854775808");
	FMT_BIG(INT64_MIN, "CLF", "-922337203685477.5808");

	/* the buffer must hold the text and its NUL; untouched otherwise */
	memset(out, 'x', sizeof(out));
	CHECK_FAILS(rl_money_format(out, 5, 1250, "USD"), RL_ETOOBIG, "12.50");
	CHECK(out[0] == 'x');
	CHECK_FAILS(rl_money_format(out, 0, 1250, "USD"), RL_ETOOBIG, "12.50");
	CHECK_FAILS(rl_money_format(NULL, 0, 1250, "USD"), RL_ETOOBIG, "12.50");
	CHECK(out[0] == 'x');
	CHECK_EQ_INT(rl_money_format(out, 6, 1250, "USD"), RL_OK);
	CHECK_EQ_STR(out, "12.50");
	memset(out, 'x', sizeof(out));
	CHECK_FAILS(rl_money_format(out, sizeof(out), 1, "usd"), RL_EINVALID, "usd");
	CHECK_FAILS(rl_money_format(out, sizeof(out), 1, "BGN"), RL_EINVALID, "BGN");
	CHECK_FAILS(rl_money_format(out, sizeof(out), 1, NULL), RL_EINVALID, "''");
	CHECK(out[0] == 'x');
}

/* ------------------------------------------------------------------------ */

static void date_ok(int line, const char *in, int64_t now, int off, const char *want)
{
	char out[11];
	int rc = rl_date_parse(out, in, now, off);

	check_count++;
	if (rc != RL_OK || strcmp(out, want) != 0) {
		check_failures++;
		fprintf(stderr, "%s:%d: date '%s': rc %d, got '%s', want '%s' (%s)\n",
			__FILE__, line, in, rc, rc == RL_OK ? out : "", want,
			rl_error_message());
	}
}

static void date_bad(int line, const char *in, int64_t now, int off,
		     const char *needle)
{
	char out[11];
	int rc;

	memset(out, 'x', sizeof(out));
	rl_error_clear();
	rc = rl_date_parse(out, in, now, off);
	check_count++;
	if (rc != RL_EINVALID || strstr(rl_error_message(), needle) == NULL ||
	    out[0] != 'x' || out[10] != 'x') {
		check_failures++;
		fprintf(stderr, "%s:%d: date '%s': rc %d, message \"%s\"\n",
			__FILE__, line, in ? in : "(null)", rc, rl_error_message());
	}
}

#define DATE_OK(in, want) date_ok(__LINE__, in, NOW_UTC, WIB, want)
#define DATE_BAD(in) date_bad(__LINE__, in, NOW_UTC, WIB, in)

static int ref_days_in_month(int y, int m)
{
	static const int dim[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dim[m - 1];
}

static void test_date(void)
{
	char in[32], out[11], ref[40];
	int y, m, d, mismatches = 0;
	int64_t t;

	DATE_OK("2024-02-29", "2024-02-29");
	DATE_OK("2000-02-29", "2000-02-29");
	DATE_OK("2026-11-23", "2026-11-23");
	DATE_OK("2025-04-30", "2025-04-30");
	DATE_OK("2025-12-31", "2025-12-31");
	DATE_OK("1900-01-01", "1900-01-01");
	DATE_OK("9999-12-31", "9999-12-31");

	DATE_BAD("2023-02-29");
	DATE_BAD("1900-02-29");
	DATE_BAD("2100-02-29");
	DATE_BAD("2025-04-31");
	DATE_BAD("2025-13-01");
	DATE_BAD("2025-00-10");
	DATE_BAD("2025-01-00");
	DATE_BAD("2025-01-32");
	DATE_BAD("1899-12-31");
	DATE_BAD("0000-01-01");
	DATE_BAD("2025-1-01");
	DATE_BAD("2025-01-1");
	DATE_BAD("25-01-01");
	DATE_BAD("2025/01/01");
	DATE_BAD("20250101");
	DATE_BAD("2025-01-01x");
	DATE_BAD("2025-01-01 ");
	DATE_BAD("2025-01-01T00:00");
	DATE_BAD(" 2025-01-01");
	DATE_BAD("2025-01");
	DATE_BAD("");
	date_bad(__LINE__, NULL, NOW_UTC, WIB, "''");

	/* relative dates: 20:00Z on the 23rd is the 24th in Jakarta */
	DATE_OK("today", "2026-11-24");
	DATE_OK("Today", "2026-11-24");
	DATE_OK("TOMORROW", "2026-11-25");
	DATE_OK("tomorrow", "2026-11-25");
	DATE_OK("yesterday", "2026-11-23");
	DATE_OK("+3d", "2026-11-27");
	DATE_OK("-10d", "2026-11-14");
	DATE_OK("+0d", "2026-11-24");
	DATE_OK("-0d", "2026-11-24");
	DATE_OK("+7D", "2026-12-01");
	DATE_OK("+36500d", "2126-10-31");
	DATE_OK("-36500d", "1926-12-19");
	DATE_OK("+00010d", "2026-12-04");
	date_ok(__LINE__, "today", NOW_UTC, 0, "2026-11-23");
	date_ok(__LINE__, "today", NOW_UTC, 239, "2026-11-23");
	date_ok(__LINE__, "today", NOW_UTC, 240, "2026-11-24");
	date_ok(__LINE__, "today", NOW_UTC, -14 * 60, "2026-11-23");
	date_ok(__LINE__, "today", NOW_UTC, 14 * 60, "2026-11-24");
	/* 2024-12-31T23:30Z is already 2025 in Paris, still 2024 in New York */
	date_ok(__LINE__, "today", INT64_C(1735687800), 60, "2025-01-01");
	date_ok(__LINE__, "today", INT64_C(1735687800), -300, "2024-12-31");
	date_ok(__LINE__, "tomorrow", INT64_C(1709121600), 0, "2024-02-29");
	date_ok(__LINE__, "+2d", INT64_C(1709121600), 0, "2024-03-01");
	date_ok(__LINE__, "today", 0, 0, "1970-01-01");
	date_ok(__LINE__, "today", -1, 0, "1969-12-31");

	DATE_BAD("tomorow");
	DATE_BAD("to day");
	DATE_BAD("today ");
	DATE_BAD("+d");
	DATE_BAD("+3");
	DATE_BAD("3d");
	DATE_BAD("+3w");
	DATE_BAD("+3dd");
	DATE_BAD("+ 3d");
	DATE_BAD("++3d");
	DATE_BAD("+-3d");
	DATE_BAD("+36501d");
	DATE_BAD("+99999d");
	DATE_BAD("+100000d");
	DATE_BAD("-3.5d");
	/* the offset must be a real one */
	date_bad(__LINE__, "today", NOW_UTC, 14 * 60 + 1, "today");
	date_bad(__LINE__, "today", NOW_UTC, INT_MIN, "today");
	/* relative dates must land within 1900..9999, whatever the clock */
	date_bad(__LINE__, "today", INT64_MAX, 0, "today");
	date_bad(__LINE__, "today", INT64_MIN, 0, "today");
	date_bad(__LINE__, "-100d", INT64_C(-2208988800), 0, "-100d");
	date_ok(__LINE__, "today", INT64_C(-2208988800), 0, "1900-01-01");
	date_ok(__LINE__, "today", INT64_C(253402300799), 0, "9999-12-31");
	date_bad(__LINE__, "tomorrow", INT64_C(253402300799), 0, "tomorrow");

	/* every day of every month of 1900..2400 against an independent rule */
	for (y = 1900; y <= 2400; y++) {
		for (m = 1; m <= 12; m++) {
			for (d = 0; d <= 32; d++) {
				int want = d >= 1 && d <= ref_days_in_month(y, m);
				int rc;

				snprintf(in, sizeof(in), "%04d-%02d-%02d", y, m, d);
				rc = rl_date_parse(out, in, NOW_UTC, WIB);
				if ((rc == RL_OK) != want ||
				    (want && strcmp(out, in) != 0))
					mismatches++;
			}
		}
	}
	CHECK_EQ_INT(mismatches, 0);

	/* day arithmetic against gmtime_r, daily over 1900..2200 and weekly
	 * to 9999 */
	mismatches = 0;
	for (t = INT64_C(-2208988800); t <= INT64_C(253402300799);
	     t += t < INT64_C(7258118400) ? 86400 + 3599 : 7 * 86400 + 3599) {
		time_t tt = (time_t)t;
		struct tm tm;

		if (!gmtime_r(&tt, &tm))
			break;
		snprintf(ref, sizeof(ref), "%04d-%02d-%02d", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday);
		rl_date_of(out, t, 0);
		if (strcmp(out, ref) != 0)
			mismatches++;
		if (rl_date_parse(out, "today", t, 0) != RL_OK ||
		    strcmp(out, ref) != 0)
			mismatches++;
	}
	CHECK_EQ_INT(mismatches, 0);
}

/* ------------------------------------------------------------------------ */

static void fmtdate_ok(int line, const char *in, const char *fmt, const char *want)
{
	char out[11];
	int rc = rl_date_parse_fmt(out, in, fmt);

	check_count++;
	if (rc != RL_OK || strcmp(out, want) != 0) {
		check_failures++;
		fprintf(stderr, "%s:%d: date '%s' as '%s': rc %d, got '%s', want '%s' (%s)\n",
			__FILE__, line, in, fmt, rc, rc == RL_OK ? out : "", want,
			rl_error_message());
	}
}

/* Fails, and the message names both the input and the format. */
static void fmtdate_bad(int line, const char *in, const char *fmt)
{
	char out[11];
	int rc;

	memset(out, 'x', sizeof(out));
	rl_error_clear();
	rc = rl_date_parse_fmt(out, in, fmt);
	check_count++;
	if (rc != RL_EINVALID || out[0] != 'x' ||
	    strstr(rl_error_message(), in ? in : "''") == NULL ||
	    strstr(rl_error_message(), fmt ? fmt : "''") == NULL) {
		check_failures++;
		fprintf(stderr, "%s:%d: date '%s' as '%s': rc %d, message \"%s\"\n",
			__FILE__, line, in ? in : "(null)", fmt ? fmt : "(null)",
			rc, rl_error_message());
	}
}

#define FMTDATE_OK(in, fmt, want) fmtdate_ok(__LINE__, in, fmt, want)
#define FMTDATE_BAD(in, fmt) fmtdate_bad(__LINE__, in, fmt)

static void test_date_fmt(void)
{
	FMTDATE_OK("23-11-26", "%d-%m-%y", "2026-11-23");
	FMTDATE_OK("3/7/2025", "%m/%d/%Y", "2025-03-07");
	FMTDATE_OK("03/07/2025", "%m/%d/%Y", "2025-03-07");
	FMTDATE_OK("3/07/2025", "%m/%d/%Y", "2025-03-07");
	FMTDATE_OK("31.12.1999", "%d.%m.%Y", "1999-12-31");
	FMTDATE_OK("2026-11-23", "%Y-%m-%d", "2026-11-23");
	FMTDATE_OK("20261123", "%Y%m%d", "2026-11-23");
	FMTDATE_OK("231126", "%d%m%y", "2026-11-23");
	FMTDATE_OK("29/2/2024", "%d/%m/%Y", "2024-02-29");
	FMTDATE_OK("00-01-01", "%y-%m-%d", "2000-01-01");
	FMTDATE_OK("68-01-01", "%y-%m-%d", "2068-01-01");
	FMTDATE_OK("69-01-01", "%y-%m-%d", "1969-01-01");
	FMTDATE_OK("99-12-31", "%y-%m-%d", "1999-12-31");
	FMTDATE_OK("50%23/11/2026", "50%%%d/%m/%Y", "2026-11-23");
	FMTDATE_OK("tgl 23 11 2026", "tgl %d %m %Y", "2026-11-23");

	/* input that does not fit the format */
	FMTDATE_BAD("3/7/2025x", "%m/%d/%Y");
	FMTDATE_BAD("3/7/2025 ", "%m/%d/%Y");
	FMTDATE_BAD("3/7/25", "%m/%d/%Y");
	FMTDATE_BAD("3/7/202", "%m/%d/%Y");
	FMTDATE_BAD("3-7-2025", "%m/%d/%Y");
	FMTDATE_BAD("123/7/2025", "%m/%d/%Y");
	FMTDATE_BAD("/7/2025", "%m/%d/%Y");
	FMTDATE_BAD("23-11-2026", "%d-%m-%y");
	FMTDATE_BAD("23-11-6", "%d-%m-%y");
	FMTDATE_BAD("", "%d-%m-%y");
	FMTDATE_BAD("50x23/11/2026", "50%%%d/%m/%Y");
	fmtdate_bad(__LINE__, NULL, "%d-%m-%y");

	/* days that do not exist, and years out of range */
	FMTDATE_BAD("13/7/2025", "%m/%d/%Y");
	FMTDATE_BAD("0/7/2025", "%m/%d/%Y");
	FMTDATE_BAD("2/30/2024", "%m/%d/%Y");
	FMTDATE_BAD("2/29/2023", "%m/%d/%Y");
	FMTDATE_BAD("29/2/1900", "%d/%m/%Y");
	FMTDATE_BAD("1/1/1899", "%d/%m/%Y");
	FMTDATE_BAD("00/1/2025", "%d/%m/%Y");

	/* bad formats */
	FMTDATE_BAD("23/11", "%d/%m");
	FMTDATE_BAD("23/11/2026/23", "%d/%m/%Y/%d");
	FMTDATE_BAD("23/11/26/2026", "%d/%m/%y/%Y");
	FMTDATE_BAD("08:30", "%H:%M");
	FMTDATE_BAD("23/11/2026%", "%d/%m/%Y%");
	FMTDATE_BAD("23/11/2026", "%d/%b/%Y");
	FMTDATE_BAD("23/11/2026", "");
	fmtdate_bad(__LINE__, "23/11/2026", NULL);
}

/* ------------------------------------------------------------------------ */

static void time_ok(int line, const char *in, int def, int64_t want_utc, int want_off)
{
	int64_t utc = -1;
	int off = -1;
	int rc = rl_time_parse(&utc, &off, in, NOW_UTC, def);

	check_count++;
	if (rc != RL_OK || utc != want_utc || off != want_off) {
		check_failures++;
		fprintf(stderr, "%s:%d: time '%s': rc %d, got %lld %d, want %lld %d (%s)\n",
			__FILE__, line, in, rc, (long long)utc, off,
			(long long)want_utc, want_off, rl_error_message());
	}
}

static void time_bad(int line, const char *in, int def, const char *needle)
{
	int64_t utc = -1;
	int off = -1;
	int rc;

	rl_error_clear();
	rc = rl_time_parse(&utc, &off, in, NOW_UTC, def);
	check_count++;
	if (rc != RL_EINVALID || utc != -1 || off != -1 ||
	    strstr(rl_error_message(), needle) == NULL) {
		check_failures++;
		fprintf(stderr, "%s:%d: time '%s': rc %d, message \"%s\"\n",
			__FILE__, line, in ? in : "(null)", rc, rl_error_message());
	}
}

#define TIME_OK(in, def, u, o) time_ok(__LINE__, in, def, u, o)
#define TIME_BAD(in) time_bad(__LINE__, in, WIB, in)

/* 2026-11-23T08:30:00Z */
#define T0830Z INT64_C(1795422600)

static void test_time(void)
{
	char out[32], ref[32];
	int64_t t;
	int mismatches = 0;

	TIME_OK("now", WIB, NOW_UTC, WIB);
	TIME_OK("Now", -300, NOW_UTC, -300);
	TIME_OK("2026-11-23T08:30", 0, T0830Z, 0);
	TIME_OK("2026-11-23T08:30", WIB, T0830Z - 7 * 3600, WIB);
	TIME_OK("2026-11-23 08:30", WIB, T0830Z - 7 * 3600, WIB);
	TIME_OK("2026-11-23 08:30:15", 0, T0830Z + 15, 0);
	TIME_OK("2026-11-23t08:30:15", 0, T0830Z + 15, 0);
	TIME_OK("2026-11-23T08:30Z", WIB, T0830Z, 0);
	TIME_OK("2026-11-23T08:30:15z", WIB, T0830Z + 15, 0);
	TIME_OK("2026-11-23T08:30+07:00", 0, T0830Z - 7 * 3600, 420);
	TIME_OK("2026-11-23T08:30+0700", 0, T0830Z - 7 * 3600, 420);
	TIME_OK("2026-11-23T08:30+07", 0, T0830Z - 7 * 3600, 420);     /* ISO 8601's +hh */
	TIME_OK("2026-11-23T08:30:15-05", WIB, T0830Z + 15 + 5 * 3600, -300);
	TIME_OK("2026-11-23T08:30:15-05:30", 0, T0830Z + 15 + 5 * 3600 + 1800, -330);
	TIME_OK("2026-11-23T08:30:15-0530", 0, T0830Z + 15 + 5 * 3600 + 1800, -330);
	TIME_OK("2026-11-23T08:30+05:45", 0, T0830Z - 5 * 3600 - 45 * 60, 345);
	TIME_OK("2026-11-23T08:30+14:00", 0, T0830Z - 14 * 3600, 840);
	TIME_OK("2026-11-23T08:30-14:00", 0, T0830Z + 14 * 3600, -840);
	TIME_OK("2026-11-23T08:30-00:00", WIB, T0830Z, 0);
	TIME_OK("2026-11-23T08:30:15.999Z", WIB, T0830Z + 15, 0);
	TIME_OK("2026-11-23T08:30:15.5+07:00", 0, T0830Z + 15 - 7 * 3600, 420);
	TIME_OK("1970-01-01T00:00Z", WIB, 0, 0);
	TIME_OK("1900-01-01T00:00Z", WIB, INT64_C(-2208988800), 0);
	TIME_OK("9999-12-31T23:59:59Z", WIB, INT64_C(253402300799), 0);
	TIME_OK("2024-02-29T23:59:59Z", WIB, INT64_C(1709251199), 0);
	/* an offset that moves the instant into the previous day and year */
	TIME_OK("2025-01-01T02:00+07:00", 0, INT64_C(1735671600), 420);

	TIME_BAD("");
	TIME_BAD("tomorrow");
	TIME_BAD("now ");
	TIME_BAD("2026-11-23");
	TIME_BAD("2026-11-23T");
	TIME_BAD("2026-11-23T8:30");
	TIME_BAD("2026-11-23T08:3");
	TIME_BAD("2026-11-23T0830");
	TIME_BAD("2026-11-23T08:30:1");
	TIME_BAD("2026-11-23T08:30:15.");
	TIME_BAD("2026-11-23T08:30:15.Z");
	TIME_BAD("2026-11-23T24:00");
	TIME_BAD("2026-11-23T23:60");
	TIME_BAD("2026-11-23T23:59:60Z");
	TIME_BAD("2026-02-30T10:00");
	TIME_BAD("2023-02-29T10:00");
	TIME_BAD("1899-12-31T23:59Z");
	TIME_BAD("2026-11-23X08:30");
	TIME_BAD("2026-11-23  08:30");
	TIME_BAD("2026-11-23T08:30 Z");
	TIME_BAD("2026-11-23T08:30ZZ");
	TIME_BAD("2026-11-23T08:30+7");
	TIME_BAD("2026-11-23T08:30+07:");
	TIME_BAD("2026-11-23T08:30+07:0");
	TIME_BAD("2026-11-23T08:30+07:00x");
	TIME_BAD("2026-11-23T08:30+07:00:");
	TIME_BAD("2026-11-23T08:30+14:01");
	TIME_BAD("2026-11-23T08:30-15:00");
	TIME_BAD("2026-11-23T08:30+07:60");
	TIME_BAD("2026-11-23T08:30 +07:00");
	TIME_BAD("26-11-23T08:30");
	time_bad(__LINE__, NULL, WIB, "''");
	/* the default offset must be a real one, even for "now" */
	time_bad(__LINE__, "now", 14 * 60 + 1, "now");
	time_bad(__LINE__, "2026-11-23T08:30", -14 * 60 - 1, "2026-11-23T08:30");
	time_bad(__LINE__, "2026-11-23T08:30Z", INT_MAX, "2026-11-23T08:30Z");

	/* formatting */
	rl_time_format_utc(out, 0);
	CHECK_EQ_STR(out, "1970-01-01T00:00:00Z");
	rl_time_format_utc(out, -1);
	CHECK_EQ_STR(out, "1969-12-31T23:59:59Z");
	rl_time_format_utc(out, T0830Z + 15);
	CHECK_EQ_STR(out, "2026-11-23T08:30:15Z");
	rl_time_format_utc(out, INT64_C(1709251199));
	CHECK_EQ_STR(out, "2024-02-29T23:59:59Z");
	/* out of the four-digit-year range: saturates, never overflows */
	rl_time_format_utc(out, INT64_MAX);
	CHECK_EQ_STR(out, "9999-12-31T23:59:59Z");
	rl_time_format_utc(out, INT64_MIN);
	CHECK_EQ_STR(out, "0000-01-01T00:00:00Z");

	rl_time_format_local(out, T0830Z, WIB);
	CHECK_EQ_STR(out, "2026-11-23 15:30 +07:00");
	rl_time_format_local(out, NOW_UTC, WIB);
	CHECK_EQ_STR(out, "2026-11-24 03:00 +07:00");
	rl_time_format_local(out, T0830Z, 0);
	CHECK_EQ_STR(out, "2026-11-23 08:30 +00:00");
	rl_time_format_local(out, T0830Z, -330);
	CHECK_EQ_STR(out, "2026-11-23 03:00 -05:30");
	rl_time_format_local(out, T0830Z, 345);
	CHECK_EQ_STR(out, "2026-11-23 14:15 +05:45");
	rl_time_format_local(out, T0830Z, -840);
	CHECK_EQ_STR(out, "2026-11-22 18:30 -14:00");
	rl_time_format_local(out, INT64_MAX, INT_MAX);
	CHECK(strncmp(out, "9999-12-31 23:59 +", 18) == 0);
	rl_time_format_local(out, INT64_MIN, INT_MIN);
	CHECK(strncmp(out, "0000-01-01 00:00 -", 18) == 0);
	CHECK(strlen(out) < 32);

	rl_date_of(out, NOW_UTC, WIB);
	CHECK_EQ_STR(out, "2026-11-24");
	rl_date_of(out, NOW_UTC, 0);
	CHECK_EQ_STR(out, "2026-11-23");
	rl_date_of(out, T0830Z, -600);
	CHECK_EQ_STR(out, "2026-11-22");
	rl_date_of(out, INT64_MIN, INT_MIN);
	CHECK_EQ_STR(out, "0000-01-01");
	rl_date_of(out, INT64_MAX, INT_MAX);
	CHECK_EQ_STR(out, "9999-12-31");

	/* parse(format(t)) == t, and format agrees with gmtime_r */
	for (t = INT64_C(-2208988800); t <= INT64_C(253402300799);
	     t += INT64_C(7777777) + 13) {
		time_t tt = (time_t)t;
		struct tm tm;
		int64_t back = 0;
		int off = 1;

		if (!gmtime_r(&tt, &tm))
			break;
		strftime(ref, sizeof(ref), "%Y-%m-%dT%H:%M:%SZ", &tm);
		rl_time_format_utc(out, t);
		if (strcmp(out, ref) != 0)
			mismatches++;
		if (rl_time_parse(&back, &off, out, NOW_UTC, WIB) != RL_OK ||
		    back != t || off != 0)
			mismatches++;
	}
	CHECK_EQ_INT(mismatches, 0);
}

/* ------------------------------------------------------------------------ */

static void geo_ok(int line, const char *in, double want_lat, double want_lon)
{
	double lat = 999, lon = 999;
	int rc = rl_geo_parse(&lat, &lon, in);

	check_count++;
	if (rc != RL_OK || fabs(lat - want_lat) > 1e-12 || fabs(lon - want_lon) > 1e-12) {
		check_failures++;
		fprintf(stderr, "%s:%d: geo '%s': rc %d, got %.15g,%.15g (%s)\n",
			__FILE__, line, in, rc, lat, lon, rl_error_message());
	}
}

static void geo_bad(int line, const char *in)
{
	double lat = 999, lon = 999;
	int rc;

	rl_error_clear();
	rc = rl_geo_parse(&lat, &lon, in);
	check_count++;
	if (rc != RL_EINVALID || lat != 999 || lon != 999 ||
	    strstr(rl_error_message(), in) == NULL) {
		check_failures++;
		fprintf(stderr, "%s:%d: geo '%s': rc %d, message \"%s\"\n",
			__FILE__, line, in, rc, rl_error_message());
	}
}

#define GEO_OK(in, la, lo) geo_ok(__LINE__, in, la, lo)
#define GEO_BAD(in) geo_bad(__LINE__, in)

static void test_geo(void)
{
	double lat = 0, lon = 0, km;

	/* converted without strtod, yet exactly as the compiler reads them */
	CHECK_EQ_INT(rl_geo_parse(&lat, &lon, "-6.2088,106.8456"), RL_OK);
	CHECK(lat == -6.2088);
	CHECK(lon == 106.8456);
	CHECK_EQ_INT(rl_geo_parse(&lat, &lon, "-6.9175, 107.6191"), RL_OK);
	CHECK(lat == -6.9175);
	CHECK(lon == 107.6191);

	GEO_OK("-6.2088,   106.8456", -6.2088, 106.8456);
	GEO_OK("0,0", 0, 0);
	GEO_OK("-0,-0", 0, 0);
	GEO_OK("90,180", 90, 180);
	GEO_OK("-90,-180", -90, -180);
	GEO_OK("90.000,-180.0000", 90, -180);
	GEO_OK("+1.5,-2.25", 1.5, -2.25);
	GEO_OK("1,2", 1, 2);
	GEO_OK("-6.208763333333333,106.845599999999999", -6.208763333333, 106.845599999999);
	GEO_OK("3.1390030,101.6868550", 3.139003, 101.686855);

	GEO_BAD("91,0");
	GEO_BAD("-91,0");
	GEO_BAD("90.0000001,0");
	GEO_BAD("0,181");
	GEO_BAD("0,-180.0001");
	GEO_BAD("1000,0");
	GEO_BAD("nan,1");
	GEO_BAD("1,nan");
	GEO_BAD("inf,0");
	GEO_BAD("1e1,2");
	GEO_BAD("0x1,2");
	GEO_BAD("1");
	GEO_BAD("1,2,3");
	GEO_BAD("1,2x");
	GEO_BAD("1,2 ");
	GEO_BAD(" 1,2");
	GEO_BAD("1 ,2");
	GEO_BAD("1;2");
	GEO_BAD("1 2");
	GEO_BAD("");
	GEO_BAD(",");
	GEO_BAD("1,");
	GEO_BAD(",1");
	GEO_BAD("1.,2");
	GEO_BAD(".5,2");
	GEO_BAD("1,-");
	GEO_BAD("--1,2");
	GEO_BAD("1.2.3,4");
	GEO_BAD("6,2088,106,8456");
	GEO_BAD("1.123456789012345678901,2");

	km = rl_geo_distance_km(-6.2088, 106.8456, -6.9175, 107.6191);
	CHECK(fabs(km - 116.2366) < 0.001);
	CHECK(fabs(rl_geo_distance_km(-6.9175, 107.6191, -6.2088, 106.8456) - km) < 1e-9);
	CHECK(rl_geo_distance_km(1.5, 2.5, 1.5, 2.5) == 0.0);
	CHECK(fabs(rl_geo_distance_km(0, 0, 0, 1) - 111.19508) < 0.0001);
	CHECK(fabs(rl_geo_distance_km(0, 0, 0, 180) - 20015.1144) < 0.001);
	CHECK(fabs(rl_geo_distance_km(90, 0, -90, 0) - 20015.1144) < 0.001);
	CHECK(fabs(rl_geo_distance_km(0, 179.5, 0, -179.5) - 111.19508) < 0.0001);
	CHECK(!isnan(rl_geo_distance_km(1e-9, 0, -1e-9, 180)));
}

/* The box `nearby` asks the R*Tree for: every point at the distance, in
 * every direction, is inside it, and it is no wider than that. Points are
 * placed with the sphere's destination formula, then measured with
 * rl_geo_distance_km, the measure `nearby` filters with. */
static void test_geo_box(void)
{
	static const double lats[] = { 0.0, -6.2088, 45.0, -70.0, 88.0 };
	static const double kms[] = { 0.1, 1.0, 5.0, 100.0, 1000.0 };
	const double rad = 3.14159265358979323846 / 180.0, R = 6371.0088;
	double box[4], wide[4];
	size_t i, j;
	int b;

	for (i = 0; i < sizeof(lats) / sizeof(lats[0]); i++) {
		for (j = 0; j < sizeof(kms) / sizeof(kms[0]); j++) {
			double lat = lats[i], lon = 106.8456, km = kms[j], d = km / R;
			double far_lat = -90, far_lon = -1;

			rl_geo_box(lat, lon, km, box);
			for (b = 0; b < 3600; b++) {
				double t = b * 0.1 * rad, p1 = lat * rad;
				double p2 = asin(sin(p1) * cos(d) + cos(p1) * sin(d) * cos(t));
				double l2 = lon * rad + atan2(sin(t) * sin(d) * cos(p1),
							      cos(d) - sin(p1) * sin(p2));
				double plat = p2 / rad, plon = l2 / rad;

				CHECK(fabs(rl_geo_distance_km(lat, lon, plat, plon) - km) < 1e-6 * km);
				CHECK(plat >= box[0] - 1e-9 && plat <= box[1] + 1e-9);
				if (plon > 180.0)       /* over the pole: stored positions are in [-180, 180] */
					plon -= 360.0;
				CHECK(plon >= box[2] - 1e-9 && plon <= box[3] + 1e-9);
				far_lat = fmax(far_lat, plat);
				far_lon = fmax(far_lon, plon - lon);
			}
			/* tight: the farthest points found touch the box */
			if (box[1] < 90.0)
				CHECK(fabs(box[1] - far_lat) < 1e-6);
			if (box[3] < 180.0)
				CHECK(fabs(box[3] - lon - far_lon) < 1e-4 * (box[3] - lon));
		}
	}
	rl_geo_box(89.99, 10.0, 5.0, box);          /* reaches the pole */
	CHECK(box[2] == -180.0 && box[3] == 180.0 && box[1] > 90.0);
	/* Across the antimeridian: a point 2 km east of 179.99 E is at
	 * -179.99 + a little, which a box running past 180 would leave out. */
	rl_geo_box(-16.5, 179.99, 5.0, box);
	CHECK(box[2] <= -179.99 && box[3] >= 179.99);
	rl_geo_box(-16.5, -179.99, 5.0, box);
	CHECK(box[2] <= -179.99 && box[3] >= 179.99);
	rl_geo_box(-6.2088, 106.8456, 5.0, box);    /* wider for a wider circle */
	rl_geo_box(-6.2088, 106.8456, 5.006, wide);
	CHECK(wide[0] < box[0] && wide[1] > box[1] && wide[2] < box[2] && wide[3] > box[3]);
}

/* The matching key of duplicates and imports: case, accents, width,
 * punctuation and spacing fold away; letters of other scripts stay. */
static void test_name_fold(void)
{
	static const char *const cases[][2] = {
		{ "PT. Maju  Jaya", "pt maju jaya" },
		{ "  pt maju jaya ", "pt maju jaya" },
		{ "Caf\xc3\xa9 S\xc3\xa9l\xc3\xa9ra", "cafe selera" },       /* accents */
		{ "\xef\xbc\xb4\xef\xbd\x8f\xef\xbd\x8b\xef\xbd\x8f 7", "toko 7" },  /* full width */
		{ "Toko-Sinar/Jaya (Cab. 2)", "toko sinar jaya cab 2" },
		{ "STRASSE", "strasse" },
		{ "Stra\xc3\x9f" "e", "strasse" },                                /* case folding */
		{ "\xe6\x9d\xb1\xe4\xba\xac Mart", "\xe6\x9d\xb1\xe4\xba\xac mart" },
		{ "Cafe\xcc\x81", "cafe" },                              /* e + U+0301 */
		{ "Nguy\xe1\xbb\x85n", "nguyen" },                       /* Vietnamese tones */
		{ "\xd0\x99\xd0\xbe\xd0\xb4", "\xd0\xb8\xd0\xbe\xd0\xb4" },   /* Cyrillic breve */
		/* Arabic vowel marks are optional: Muhammad with and without */
		{ "\xd9\x85\xd9\x8f\xd8\xad\xd9\x8e\xd9\x85\xd9\x91\xd9\x8e\xd8\xaf",
		  "\xd9\x85\xd8\xad\xd9\x85\xd8\xaf" },
		/* marks that make the word stay: Kiran is not Karan (Devanagari
		 * vowel sign i), ga is not ka (Japanese voicing mark) */
		{ "\xe0\xa4\x95\xe0\xa4\xbf\xe0\xa4\xb0\xe0\xa4\xa3",
		  "\xe0\xa4\x95\xe0\xa4\xbf\xe0\xa4\xb0\xe0\xa4\xa3" },
		{ "\xe3\x81\x8c", "\xe3\x81\x8c" },
		{ "\xe0\xb8\x81\xe0\xb8\xb4\xe0\xb8\x99", "\xe0\xb8\x81\xe0\xb8\xb4\xe0\xb8\x99" },  /* Thai: kin */
		{ "...", "" },
		{ "", "" },
	};
	size_t i;
	char *k = NULL;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_EQ_INT(rl_name_fold(cases[i][0], &k), RL_OK);
		CHECK_EQ_STR(k, cases[i][1]);
		free(k);
		k = NULL;
	}
	CHECK_EQ_INT(rl_name_fold("bad \xff utf-8", &k), RL_EINVALID);
	CHECK(k == NULL);
}

/* Unicode punctuation, symbols and spaces separate words as ASCII's do;
 * invisible characters vanish; a name of punctuation alone folds to "". */
static void test_name_fold_unicode_punctuation(void)
{
	static const char *const cases[][2] = {
		{ "Warung Bu\xe2\x80\x99 Ani", "warung bu ani" },                 /* U+2019 */
		{ "Warung Bu' Ani", "warung bu ani" },
		{ "\xe2\x80\x98" "Apotek\xe2\x80\x99 Sehat", "apotek sehat" },    /* U+2018 */
		{ "\xe2\x80\x9cToko\xe2\x80\x9d Jaya", "toko jaya" },              /* U+201C/D */
		{ "Toko \xe2\x80\x93 Jaya \xe2\x80\x94 Cab", "toko jaya cab" },    /* U+2013/4 */
		{ "Toko Jaya\xe2\x80\xa6", "toko jaya" },                          /* U+2026 */
		{ "Toko\xc2\xa0Jaya", "toko jaya" },                               /* no-break space */
		{ "Toko\xe3\x80\x80Jaya", "toko jaya" },                          /* ideographic space */
		{ "\xe6\x9d\xb1\xe4\xba\xac\xe3\x80\x82Mart", "\xe6\x9d\xb1\xe4\xba\xac mart" },   /* U+3002 */
		{ "Ma\xe2\x80\x8bkmur", "makmur" },                                /* zero-width space */
		{ "Ma\xe2\x80\x8ckmur", "makmur" },                                /* ZWNJ */
		{ "Ma\xe2\x80\x8dkmur", "makmur" },                                /* ZWJ */
		{ "\xef\xbb\xbfToko", "toko" },                                     /* BOM */
		{ "Toko \xc2\xabJaya\xc2\xbb", "toko jaya" },                      /* guillemets */
		{ "Kopi \xe2\x98\x95 Kita", "kopi kita" },                          /* a symbol */
		{ "-", "" },
		{ "?", "" },
		{ "\xe2\x80\x94", "" },
		{ "\xe2\x80\x8b", "" },
	};
	size_t i;
	char *k = NULL;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_EQ_INT(rl_name_fold(cases[i][0], &k), RL_OK);
		CHECK_EQ_STR(k, cases[i][1]);
		free(k);
		k = NULL;
	}
}

int main(void)
{
	test_name_fold();
	test_name_fold_unicode_punctuation();
	test_phone();
	test_email();
	test_currency();
	test_money();
	test_date();
	test_date_fmt();
	test_time();
	test_geo();
	test_geo_box();
	CHECK_DONE();
}
