/*
 * valid.c — parsing and validation of the values users type or import:
 * phone numbers (to E.164), e-mail addresses, ISO 4217 currencies and money
 * amounts, calendar dates, points in time with the writer's UTC offset, and
 * coordinates. The contract is in relasi/valid.h.
 *
 * Everything here is pure and safe to call from any thread: there is no
 * mutable static state, and nothing depends on the C locale. That is why the
 * character classes are hand-written ASCII tests (<ctype.h> follows LC_CTYPE),
 * why decimals are converted by hand (strtod reads the locale's decimal
 * point, which is ',' in id_ID), and why calendar arithmetic is done on int64
 * day numbers (days_from_civil) instead of gmtime/timegm, which are either
 * not re-entrant or not standard, and are limited by time_t on some systems.
 */
#include "relasi/valid.h"

#include "relasi/error.h"
#include "relasi/limits.h"

#include <utf8proc.h>

#include <inttypes.h>
#include <stdlib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* ASCII helpers                                                             */

static int rl_is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int rl_is_upper(int c)
{
	return c >= 'A' && c <= 'Z';
}

static int rl_is_lower(int c)
{
	return c >= 'a' && c <= 'z';
}

static int rl_is_alpha(int c)
{
	return rl_is_upper(c) || rl_is_lower(c);
}

static int rl_to_lower(int c)
{
	return rl_is_upper(c) ? c - 'A' + 'a' : c;
}

static int rl_to_upper(int c)
{
	return rl_is_lower(c) ? c - 'a' + 'A' : c;
}

/* Keywords ("today", "now") are matched without regard to case because
 * phones capitalise the first letter of whatever a rep types. */
static int rl_keyword_eq(const char *s, const char *keyword)
{
	while (*s && *keyword) {
		if (rl_to_lower((unsigned char)*s) != *keyword)
			return 0;
		s++;
		keyword++;
	}
	return *s == '\0' && *keyword == '\0';
}

/* Read exactly n digits; -1 if any of them is not a digit. */
static int rl_fixed_digits(const char *s, int n)
{
	int v = 0;
	int i;

	for (i = 0; i < n; i++) {
		if (!rl_is_digit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Write v as exactly n decimal digits (v must fit). Used instead of
 * snprintf for fixed-width dates so the output width is provably bounded. */
static char *rl_put_digits(char *p, unsigned v, int n)
{
	int i;

	for (i = n - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + n;
}

/* ------------------------------------------------------------------------ */
/* Phone numbers                                                             */

/*
 * cc is the ITU calling code, trunk the national prefix dialled before a
 * national number ("0" in most of the world, "1" in NANP, "8" in Russia, none
 * in Singapore or Italy). nsn_min/nsn_max bound the national significant
 * number; they are only used to decide whether digits that begin with the
 * calling code but have no '+' are an international number written without
 * it ("62812...") or a national number that happens to start with those
 * digits. They are never used to reject a number: numbering plans change
 * more often than this table would.
 */
struct rl_country {
	char alpha2[3];
	char cc[4];
	char trunk[2];
	unsigned char nsn_min;
	unsigned char nsn_max;
};

static const struct rl_country rl_countries[] = {
	/* South-east Asia first: most Relasi stores live there. */
	{ "ID", "62", "0", 8, 12 },
	{ "MY", "60", "0", 8, 10 },
	{ "SG", "65", "", 8, 8 },
	{ "PH", "63", "0", 8, 10 },
	{ "TH", "66", "0", 8, 9 },
	{ "VN", "84", "0", 9, 10 },
	{ "BN", "673", "", 7, 7 },
	{ "KH", "855", "0", 8, 9 },
	{ "LA", "856", "0", 8, 10 },
	{ "MM", "95", "0", 7, 10 },
	{ "TL", "670", "", 7, 8 },
	{ "AU", "61", "0", 9, 9 },
	{ "NZ", "64", "0", 8, 10 },
	{ "JP", "81", "0", 9, 10 },
	{ "KR", "82", "0", 8, 10 },
	{ "CN", "86", "0", 9, 11 },
	{ "HK", "852", "", 8, 8 },
	{ "MO", "853", "", 8, 8 },
	{ "TW", "886", "0", 8, 9 },
	{ "IN", "91", "0", 10, 10 },
	{ "PK", "92", "0", 9, 10 },
	{ "BD", "880", "0", 8, 10 },
	{ "LK", "94", "0", 9, 9 },
	{ "NP", "977", "0", 8, 10 },
	{ "US", "1", "1", 10, 10 },
	{ "CA", "1", "1", 10, 10 },
	{ "MX", "52", "", 10, 10 },
	{ "BR", "55", "0", 10, 11 },
	{ "AR", "54", "0", 10, 11 },
	{ "GB", "44", "0", 9, 10 },
	{ "IE", "353", "0", 7, 9 },
	{ "DE", "49", "0", 6, 13 },
	{ "AT", "43", "0", 4, 13 },
	{ "CH", "41", "0", 9, 9 },
	{ "FR", "33", "0", 9, 9 },
	{ "BE", "32", "0", 8, 9 },
	{ "NL", "31", "0", 9, 9 },
	{ "IT", "39", "", 6, 11 },
	{ "ES", "34", "", 9, 9 },
	{ "PT", "351", "", 9, 9 },
	{ "GR", "30", "", 10, 10 },
	{ "PL", "48", "", 9, 9 },
	{ "SE", "46", "0", 7, 9 },
	{ "NO", "47", "", 8, 8 },
	{ "DK", "45", "", 8, 8 },
	{ "FI", "358", "0", 5, 12 },
	{ "RU", "7", "8", 10, 10 },
	{ "KZ", "7", "8", 10, 10 },
	{ "TR", "90", "0", 10, 10 },
	{ "IL", "972", "0", 8, 9 },
	{ "AE", "971", "0", 8, 9 },
	{ "SA", "966", "0", 8, 9 },
	{ "QA", "974", "", 8, 8 },
	{ "KW", "965", "", 8, 8 },
	{ "BH", "973", "", 8, 8 },
	{ "OM", "968", "", 8, 8 },
	{ "EG", "20", "0", 9, 10 },
	{ "ZA", "27", "0", 9, 9 },
	{ "NG", "234", "0", 8, 10 },
	{ "KE", "254", "0", 9, 9 },
};

#define RL_COUNTRY_COUNT (sizeof(rl_countries) / sizeof(rl_countries[0]))

/* Longest digit string worth collecting: "00" + 15 digits with a stray trunk
 * prefix fits easily; anything longer is refused before it is looked at. */
#define RL_PHONE_MAX_DIGITS 32

/* ISO 3166 codes are matched case-insensitively: settings and vCard
 * parameters write "id" as often as "ID", and both mean one country. */
static const struct rl_country *rl_country_find(const char *alpha2)
{
	char up[2];
	size_t i;

	if (!alpha2 || !rl_is_alpha((unsigned char)alpha2[0]) ||
	    !rl_is_alpha((unsigned char)alpha2[1]) || alpha2[2] != '\0')
		return NULL;
	up[0] = (char)rl_to_upper((unsigned char)alpha2[0]);
	up[1] = (char)rl_to_upper((unsigned char)alpha2[1]);
	for (i = 0; i < RL_COUNTRY_COUNT; i++) {
		if (rl_countries[i].alpha2[0] == up[0] &&
		    rl_countries[i].alpha2[1] == up[1])
			return &rl_countries[i];
	}
	return NULL;
}

/* Calling codes form a prefix code (no code is a prefix of another), so the
 * first table entry whose code starts the digits is the country, or one that
 * shares its code and numbering plan (US/CA, RU/KZ). */
static const struct rl_country *rl_country_by_digits(const char *digits)
{
	size_t i;

	for (i = 0; i < RL_COUNTRY_COUNT; i++) {
		size_t n = strlen(rl_countries[i].cc);
		if (strncmp(digits, rl_countries[i].cc, n) == 0)
			return &rl_countries[i];
	}
	return NULL;
}

const char *rl_country_calling_code(const char *alpha2)
{
	const struct rl_country *c = rl_country_find(alpha2);

	return c ? c->cc : NULL;
}

static int rl_phone_bad(const char *in, const char *why)
{
	return rl_error_set(RL_EINVALID, "'%s' is not a valid phone number: %s",
			    in, why);
}

/*
 * Digits that start with the home calling code and carry no '+' or "00".
 * Where national numbers are written with a trunk prefix, a national number
 * cannot begin with the calling code unless the writer dropped the trunk
 * prefix too, so enough digits after the code make it international. Where
 * there is no trunk prefix (Singapore, Italy), national numbers may well
 * begin with those digits; only a number too long to be national is taken as
 * international.
 */
static int rl_phone_bare_international(const struct rl_country *home,
				       size_t ndigits)
{
	size_t cclen = strlen(home->cc);
	size_t rest = ndigits - cclen;

	if (rest < home->nsn_min)
		return 0;
	if (home->trunk[0] == '\0' && ndigits <= home->nsn_max)
		return 0;
	return 1;
}

int rl_phone_normalize(char out[RL_E164_BUFSZ], const char *in,
		       const char *default_country)
{
	const struct rl_country *home, *dest;
	char digits[RL_PHONE_MAX_DIGITS + 1];
	/* calling code + national digits, before the length check */
	char num[RL_PHONE_MAX_DIGITS + 8];
	size_t nd = 0, nlen, i;
	int plus = 0, in_paren = 0, paren_digits = 0;
	const char *p;
	char last = '\0';

	if (!in)
		in = "";
	home = rl_country_find(default_country);
	if (!home)
		return rl_error_set(RL_EINVALID,
				    "'%s' is not a known country (ISO 3166 alpha-2) "
				    "for phone number '%s'",
				    default_country ? default_country : "", in);
	if (in[0] == '\0')
		return rl_phone_bad(in, "it is empty");

	p = in;
	if (*p == '+') {
		plus = 1;
		p++;
	}
	if (!rl_is_digit((unsigned char)*p) && *p != '(')
		return rl_phone_bad(in, "it must start with '+', '(' or a digit");
	for (; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (rl_is_digit(c)) {
			if (nd == RL_PHONE_MAX_DIGITS)
				return rl_phone_bad(in, "too many digits");
			digits[nd++] = (char)c;
			paren_digits++;
		} else if (c == ' ' || c == '-' || c == '.') {
			/* separators carry no meaning */
		} else if (c == '(') {
			if (in_paren)
				return rl_phone_bad(in, "nested parentheses");
			in_paren = 1;
			paren_digits = 0;
		} else if (c == ')') {
			if (!in_paren || paren_digits == 0)
				return rl_phone_bad(in, "unbalanced parentheses");
			in_paren = 0;
		} else if (c == '+' && p == in + 1 && in[0] == '(') {
			/* "(+62) 812-3456-789": the calling code in parentheses,
			 * as Indonesian business cards and sites write it. */
			plus = 1;
			continue;
		} else if (c == '+') {
			return rl_phone_bad(in, "'+' is only allowed at the start");
		} else if (rl_is_alpha(c)) {
			return rl_phone_bad(in, "letters are not allowed");
		} else {
			return rl_phone_bad(in, "unexpected character");
		}
		last = (char)c;
	}
	digits[nd] = '\0';
	if (in_paren)
		return rl_phone_bad(in, "unbalanced parentheses");
	if (!rl_is_digit((unsigned char)last) && last != ')')
		return rl_phone_bad(in, "it must end with a digit");

	if (plus) {
		snprintf(num, sizeof(num), "%s", digits);
	} else if (nd >= 2 && digits[0] == '0' && digits[1] == '0') {
		snprintf(num, sizeof(num), "%s", digits + 2);
	} else {
		size_t tlen = strlen(home->trunk);
		size_t cclen = strlen(home->cc);

		if (tlen > 0 && strncmp(digits, home->trunk, tlen) == 0)
			snprintf(num, sizeof(num), "%s%s", home->cc, digits + tlen);
		else if (nd > cclen && strncmp(digits, home->cc, cclen) == 0 &&
			 rl_phone_bare_international(home, nd))
			snprintf(num, sizeof(num), "%s", digits);
		else
			snprintf(num, sizeof(num), "%s%s", home->cc, digits);
	}

	/*
	 * E.164 never contains a trunk prefix, yet "+62 0812..." and the UK
	 * habit "+44 (0)20..." put one after the calling code. Where the trunk
	 * prefix is "0" no national significant number starts with 0, so it is
	 * safe to drop. (Not for "8" in Russia: +7 812 is St Petersburg.)
	 */
	dest = rl_country_by_digits(num);
	if (dest && strcmp(dest->trunk, "0") == 0) {
		size_t cclen = strlen(dest->cc);
		if (num[cclen] == '0')
			memmove(num + cclen, num + cclen + 1, strlen(num + cclen));
		/* One trunk prefix is dropped, not more: "+44 (0)0 20..." still
		 * starts with 0, which no number there does, and would make an
		 * E.164 string that normalises to another one the next time
		 * (not idempotent). Found by fuzz/fuzz_valid. */
		if (num[cclen] == '0')
			return rl_phone_bad(in, "the number after the country code cannot "
					    "start with 0");
	}

	nlen = strlen(num);
	if (nlen > 0 && num[0] == '0')
		return rl_phone_bad(in, "a country calling code cannot start with 0");
	if (nlen < 8 || nlen > RL_MAX_E164_DIGITS)
		return rl_error_set(RL_EINVALID,
				    "'%s' is not a valid phone number: %zu digits "
				    "with the country code, E.164 allows 8 to %d",
				    in, nlen, RL_MAX_E164_DIGITS);

	out[0] = '+';
	for (i = 0; i <= nlen; i++)
		out[i + 1] = num[i];
	return RL_OK;
}

/* ------------------------------------------------------------------------ */
/* E-mail                                                                    */

static int rl_email_local_char(int c)
{
	return rl_is_alpha(c) || rl_is_digit(c) ||
	       (c != '\0' && strchr("!#$%&'*+/=?^_`{|}~.-", c) != NULL);
}

static int rl_email_bad(const char *in, const char *why)
{
	return rl_error_set(RL_EINVALID, "'%s' is not a valid e-mail address: %s",
			    in, why);
}

int rl_email_normalize(char *out, size_t outsz, const char *in)
{
	const char *at, *domain, *label;
	size_t len, local_len, i;
	int labels = 0;

	if (!in)
		in = "";
	len = strlen(in);
	if (len == 0)
		return rl_email_bad(in, "it is empty");
	if (len > RL_MAX_EMAIL_BYTES)
		return rl_error_set(RL_EINVALID,
				    "'%s' is not a valid e-mail address: %zu bytes, "
				    "at most %d allowed",
				    in, len, RL_MAX_EMAIL_BYTES);
	at = strchr(in, '@');
	if (!at)
		return rl_email_bad(in, "no '@'");
	if (strchr(at + 1, '@'))
		return rl_email_bad(in, "more than one '@'");

	local_len = (size_t)(at - in);
	/* RFC 5321 4.5.3.1.1: a local part is at most 64 octets. */
	if (local_len == 0 || local_len > 64)
		return rl_email_bad(in, "the part before '@' must be 1 to 64 characters");
	if (in[0] == '.' || at[-1] == '.')
		return rl_email_bad(in, "the part before '@' cannot start or end with '.'");
	for (i = 0; i < local_len; i++) {
		if (!rl_email_local_char((unsigned char)in[i]))
			return rl_email_bad(in, "character not allowed before '@'");
		if (in[i] == '.' && in[i + 1] == '.')
			return rl_email_bad(in, "'..' before '@'");
	}

	domain = at + 1;
	label = domain;
	for (;;) {
		const char *q = label;
		size_t llen;

		while (rl_is_alpha((unsigned char)*q) ||
		       rl_is_digit((unsigned char)*q) || *q == '-')
			q++;
		llen = (size_t)(q - label);
		if (*q != '.' && *q != '\0')
			return rl_email_bad(in, "character not allowed in the domain");
		/* RFC 1035: labels are 1 to 63 octets. */
		if (llen == 0 || llen > 63)
			return rl_email_bad(in, "empty or over-long domain label");
		if (label[0] == '-' || q[-1] == '-')
			return rl_email_bad(in, "a domain label cannot start or end with '-'");
		labels++;
		if (*q == '\0')
			break;
		label = q + 1;
	}
	if (labels < 2)
		return rl_email_bad(in, "the domain needs at least one '.'");

	if (!out || outsz < len + 1)
		return rl_error_set(RL_ETOOBIG,
				    "e-mail address '%s' does not fit in %zu bytes",
				    in, outsz);
	for (i = 0; i <= len; i++)
		out[i] = (char)rl_to_lower((unsigned char)in[i]);
	return RL_OK;
}

/* ------------------------------------------------------------------------ */
/* Currencies and money                                                      */

/*
 * ISO 4217 list one as published on 2026-01-01: every current code with a
 * defined number of minor units. Left out on purpose: the codes whose minor
 * unit is "N.A." (XAU, XAG, XPD, XPT, XDR, XSU, XUA, XBA-XBD, XTS, XXX),
 * because an amount in them has no minor unit to be stored in; and withdrawn
 * codes such as HRK (2023), SLL, ZWL, CUC, ANG (replaced by XCG in 2025) and
 * BGN (Bulgaria joined the euro on 2026-01-01).
 */
struct rl_currency {
	char code[4];
	unsigned char exponent;
};

static const struct rl_currency rl_currencies[] = {
	{ "AED", 2 }, { "AFN", 2 }, { "ALL", 2 }, { "AMD", 2 }, { "AOA", 2 },
	{ "ARS", 2 }, { "AUD", 2 }, { "AWG", 2 }, { "AZN", 2 }, { "BAM", 2 },
	{ "BBD", 2 }, { "BDT", 2 }, { "BHD", 3 }, { "BIF", 0 }, { "BMD", 2 },
	{ "BND", 2 }, { "BOB", 2 }, { "BOV", 2 }, { "BRL", 2 }, { "BSD", 2 },
	{ "BTN", 2 }, { "BWP", 2 }, { "BYN", 2 }, { "BZD", 2 }, { "CAD", 2 },
	{ "CDF", 2 }, { "CHE", 2 }, { "CHF", 2 }, { "CHW", 2 }, { "CLF", 4 },
	{ "CLP", 0 }, { "CNY", 2 }, { "COP", 2 }, { "COU", 2 }, { "CRC", 2 },
	{ "CUP", 2 }, { "CVE", 2 }, { "CZK", 2 }, { "DJF", 0 }, { "DKK", 2 },
	{ "DOP", 2 }, { "DZD", 2 }, { "EGP", 2 }, { "ERN", 2 }, { "ETB", 2 },
	{ "EUR", 2 }, { "FJD", 2 }, { "FKP", 2 }, { "GBP", 2 }, { "GEL", 2 },
	{ "GHS", 2 }, { "GIP", 2 }, { "GMD", 2 }, { "GNF", 0 }, { "GTQ", 2 },
	{ "GYD", 2 }, { "HKD", 2 }, { "HNL", 2 }, { "HTG", 2 }, { "HUF", 2 },
	{ "IDR", 2 }, { "ILS", 2 }, { "INR", 2 }, { "IQD", 3 }, { "IRR", 2 },
	{ "ISK", 0 }, { "JMD", 2 }, { "JOD", 3 }, { "JPY", 0 }, { "KES", 2 },
	{ "KGS", 2 }, { "KHR", 2 }, { "KMF", 0 }, { "KPW", 2 }, { "KRW", 0 },
	{ "KWD", 3 }, { "KYD", 2 }, { "KZT", 2 }, { "LAK", 2 }, { "LBP", 2 },
	{ "LKR", 2 }, { "LRD", 2 }, { "LSL", 2 }, { "LYD", 3 }, { "MAD", 2 },
	{ "MDL", 2 }, { "MGA", 2 }, { "MKD", 2 }, { "MMK", 2 }, { "MNT", 2 },
	{ "MOP", 2 }, { "MRU", 2 }, { "MUR", 2 }, { "MVR", 2 }, { "MWK", 2 },
	{ "MXN", 2 }, { "MXV", 2 }, { "MYR", 2 }, { "MZN", 2 }, { "NAD", 2 },
	{ "NGN", 2 }, { "NIO", 2 }, { "NOK", 2 }, { "NPR", 2 }, { "NZD", 2 },
	{ "OMR", 3 }, { "PAB", 2 }, { "PEN", 2 }, { "PGK", 2 }, { "PHP", 2 },
	{ "PKR", 2 }, { "PLN", 2 }, { "PYG", 0 }, { "QAR", 2 }, { "RON", 2 },
	{ "RSD", 2 }, { "RUB", 2 }, { "RWF", 0 }, { "SAR", 2 }, { "SBD", 2 },
	{ "SCR", 2 }, { "SDG", 2 }, { "SEK", 2 }, { "SGD", 2 }, { "SHP", 2 },
	{ "SLE", 2 }, { "SOS", 2 }, { "SRD", 2 }, { "SSP", 2 }, { "STN", 2 },
	{ "SVC", 2 }, { "SYP", 2 }, { "SZL", 2 }, { "THB", 2 }, { "TJS", 2 },
	{ "TMT", 2 }, { "TND", 3 }, { "TOP", 2 }, { "TRY", 2 }, { "TTD", 2 },
	{ "TWD", 2 }, { "TZS", 2 }, { "UAH", 2 }, { "UGX", 0 }, { "USD", 2 },
	{ "USN", 2 }, { "UYI", 0 }, { "UYU", 2 }, { "UYW", 4 }, { "UZS", 2 },
	{ "VED", 2 }, { "VES", 2 }, { "VND", 0 }, { "VUV", 0 }, { "WST", 2 },
	{ "XAD", 2 }, { "XAF", 0 }, { "XCD", 2 }, { "XCG", 2 }, { "XOF", 0 },
	{ "XPF", 0 }, { "YER", 2 }, { "ZAR", 2 }, { "ZMW", 2 }, { "ZWG", 2 },
};

#define RL_CURRENCY_COUNT (sizeof(rl_currencies) / sizeof(rl_currencies[0]))

int rl_currency_exponent(const char *code)
{
	size_t i;

	if (!code || !rl_is_upper((unsigned char)code[0]) ||
	    !rl_is_upper((unsigned char)code[1]) ||
	    !rl_is_upper((unsigned char)code[2]) || code[3] != '\0')
		return -1;
	for (i = 0; i < RL_CURRENCY_COUNT; i++) {
		if (memcmp(rl_currencies[i].code, code, 4) == 0)
			return rl_currencies[i].exponent;
	}
	return -1;
}

static int rl_currency_unknown(const char *currency)
{
	return rl_error_set(RL_EINVALID,
			    "'%s' is not a current ISO 4217 currency code "
			    "(three upper-case letters, e.g. IDR)",
			    currency ? currency : "");
}

/* acc = acc * 10 + d, refusing to pass limit. */
static int rl_mul10_add(uint64_t *acc, unsigned d, uint64_t limit)
{
	if (*acc > (limit - d) / 10)
		return -1;
	*acc = *acc * 10 + d;
	return 0;
}

static int rl_money_bad(const char *text, const char *currency, const char *why)
{
	return rl_error_set(RL_EINVALID, "'%s' is not a valid %s amount: %s",
			    text, currency, why);
}

/* An amount beyond RL_MAX_MONEY_MINOR: say where the bound is, in the
 * currency's major units, so the user sees what would have been accepted. */
static int rl_money_too_large(const char *text, const char *currency)
{
	char bound[32];

	if (rl_money_format(bound, sizeof(bound), RL_MAX_MONEY_MINOR, currency) < 0)
		return rl_money_bad(text, currency, "too large");
	return rl_error_set(RL_EINVALID,
			    "'%s' is not a valid %s amount: beyond the largest, %s or -%s "
			    "(10^15 minor units)", text, currency, bound, bound);
}

int rl_money_parse(int64_t *minor, const char *text, const char *currency)
{
	const char *p;
	uint64_t acc = 0, limit;
	int exp, neg = 0, int_digits = 0, group_len = 0, frac_digits = 0;
	char sep = '\0';

	if (!text)
		text = "";
	exp = rl_currency_exponent(currency);
	if (exp < 0)
		return rl_currency_unknown(currency);
	if (text[0] == '\0')
		return rl_money_bad(text, currency, "it is empty");

	p = text;
	if (*p == '+' || *p == '-') {
		neg = *p == '-';
		p++;
	}
	/* The same bound for both signs (relasi/limits.h: why 10^15); far
	 * inside int64, so the accumulation below cannot overflow either. */
	limit = (uint64_t)RL_MAX_MONEY_MINOR;

	for (;; p++) {
		unsigned char c = (unsigned char)*p;

		if (rl_is_digit(c)) {
			if (rl_mul10_add(&acc, (unsigned)(c - '0'), limit) < 0)
				return rl_money_too_large(text, currency);
			int_digits++;
			group_len++;
		} else if (c == ',' || c == '_' || c == ' ') {
			/*
			 * Grouping is only trusted when it is regular: a
			 * stray "1,50" is far more likely a comma-decimal
			 * amount typed by mistake than one hundred and fifty.
			 */
			if (group_len == 0)
				return rl_money_bad(text, currency,
						    "a digit group separator must sit between digits");
			if (sep != '\0' && c != (unsigned char)sep)
				return rl_money_bad(text, currency,
						    "mixed digit group separators");
			if (sep == '\0' ? group_len > 3 : group_len != 3)
				return rl_money_bad(text, currency,
						    "irregular digit grouping (expected 1,234,567.89)");
			sep = (char)c;
			group_len = 0;
		} else {
			break;
		}
	}
	if (int_digits == 0)
		return rl_money_bad(text, currency, "no digits before the decimal point");
	if (sep != '\0' && group_len != 3)
		return rl_money_bad(text, currency,
				    "irregular digit grouping (expected 1,234,567.89)");

	if (*p == '.') {
		p++;
		while (rl_is_digit((unsigned char)*p)) {
			if (++frac_digits > exp)
				return rl_error_set(RL_EINVALID,
						    "'%s' is not a valid %s amount: "
						    "%s has %d decimal%s",
						    text, currency, currency, exp,
						    exp == 1 ? "" : "s");
			if (rl_mul10_add(&acc, (unsigned)(*p - '0'), limit) < 0)
				return rl_money_too_large(text, currency);
			p++;
		}
		if (frac_digits == 0)
			return rl_money_bad(text, currency, "no digits after the decimal point");
	}
	if (*p != '\0')
		return rl_money_bad(text, currency, "unexpected character");

	for (; frac_digits < exp; frac_digits++) {
		if (rl_mul10_add(&acc, 0, limit) < 0)
			return rl_money_too_large(text, currency);
	}

	*minor = neg ? -(int64_t)acc : (int64_t)acc;
	return RL_OK;
}

int rl_money_format(char *out, size_t outsz, int64_t minor, const char *currency)
{
	/* 20 digits, sign, point and NUL fit with room to spare. */
	char buf[32];
	uint64_t mag, pow10 = 1;
	int exp, i, n;

	exp = rl_currency_exponent(currency);
	if (exp < 0)
		return rl_currency_unknown(currency);
	/* Negate in unsigned arithmetic: -INT64_MIN does not exist in int64. */
	mag = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
	for (i = 0; i < exp; i++)
		pow10 *= 10;
	if (exp == 0)
		n = snprintf(buf, sizeof(buf), "%s%" PRIu64, minor < 0 ? "-" : "", mag);
	else
		n = snprintf(buf, sizeof(buf), "%s%" PRIu64 ".%0*" PRIu64,
			     minor < 0 ? "-" : "", mag / pow10, exp, mag % pow10);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return rl_error_set(RL_ERROR, "cannot format %" PRId64 " %s",
				    minor, currency);
	if (!out || (size_t)n >= outsz)
		return rl_error_set(RL_ETOOBIG,
				    "amount '%s' %s does not fit in %zu bytes",
				    buf, currency, outsz);
	memcpy(out, buf, (size_t)n + 1);
	return RL_OK;
}

/* ------------------------------------------------------------------------ */
/* Calendar arithmetic                                                       */

/*
 * Howard Hinnant's days_from_civil / civil_from_days: proleptic Gregorian,
 * day 0 = 1970-01-01, exact for every int64 year this file can produce.
 */
int64_t rl_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

void rl_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int rl_is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int rl_days_in_month(int y, int m)
{
	static const unsigned char days[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};

	return m == 2 && rl_is_leap(y) ? 29 : days[m - 1];
}

/* Dates before 1900 in a CRM are typos ("0026" for "2026"), not history. */
#define RL_YEAR_MIN 1900
#define RL_YEAR_MAX 9999

static int rl_valid_ymd(int y, int m, int d)
{
	return y >= RL_YEAR_MIN && y <= RL_YEAR_MAX && m >= 1 && m <= 12 &&
	       d >= 1 && d <= rl_days_in_month(y, m);
}

/* Day number and second of the day of t. Computed from C's truncating
 * division and fixed up, rather than as t - day * 86400, which overflows for
 * t near INT64_MIN. */
static int64_t rl_split_day(int64_t t, int64_t *sod)
{
	int64_t day = t / 86400, rem = t % 86400;

	if (rem < 0) {
		day--;
		rem += 86400;
	}
	*sod = rem;
	return day;
}

/* Offsets in use run from -12:00 to +14:00; ±14:00 is what ISO 8601 and
 * RFC 3339 implementations accept. */
#define RL_OFFSET_MAX_MIN (14 * 60)

static void rl_write_date(char out[11], int y, int m, int d)
{
	char *p = out;

	p = rl_put_digits(p, (unsigned)y, 4);
	*p++ = '-';
	p = rl_put_digits(p, (unsigned)m, 2);
	*p++ = '-';
	p = rl_put_digits(p, (unsigned)d, 2);
	*p = '\0';
}

/* Local day number of a Unix instant at an offset, without overflowing for
 * any int64 input (the offset is added to the second of the day, not to
 * the instant). */
static int64_t rl_local_day(int64_t utc, int offset_min)
{
	int64_t sod, shift;
	int64_t day = rl_split_day(utc, &sod);

	return day + rl_split_day(sod + (int64_t)offset_min * 60, &shift);
}

/* "YYYY-MM-DD" at s; returns the end or NULL. Range-checks nothing. */
static const char *rl_scan_ymd(const char *s, int *y, int *m, int *d)
{
	*y = rl_fixed_digits(s, 4);
	if (*y < 0 || s[4] != '-')
		return NULL;
	*m = rl_fixed_digits(s + 5, 2);
	if (*m < 0 || s[7] != '-')
		return NULL;
	*d = rl_fixed_digits(s + 8, 2);
	if (*d < 0)
		return NULL;
	return s + 10;
}

/* ------------------------------------------------------------------------ */
/* Dates                                                                     */

int rl_date_parse(char out[11], const char *in, int64_t now_utc, int offset_min)
{
	int64_t rel = 0, day, yy;
	unsigned mm, dd;
	int y, m, d;
	const char *end;

	if (!in)
		in = "";
	if (rl_is_digit((unsigned char)in[0])) {
		end = rl_scan_ymd(in, &y, &m, &d);
		if (!end || *end != '\0')
			return rl_error_set(RL_EINVALID,
					    "'%s' is not a valid date (expected YYYY-MM-DD)",
					    in);
		if (!rl_valid_ymd(y, m, d))
			return rl_error_set(RL_EINVALID,
					    "'%s' is not a valid date (no such day, "
					    "or year outside %d..%d)",
					    in, RL_YEAR_MIN, RL_YEAR_MAX);
		rl_write_date(out, y, m, d);
		return RL_OK;
	}

	if (rl_keyword_eq(in, "today")) {
		rel = 0;
	} else if (rl_keyword_eq(in, "tomorrow")) {
		rel = 1;
	} else if (rl_keyword_eq(in, "yesterday")) {
		rel = -1;
	} else if (in[0] == '+' || in[0] == '-') {
		const char *p = in + 1;
		int n = 0;

		/* Five digits hold 36500; more can only be out of range, and
		 * stopping here keeps the arithmetic far from overflow. */
		while (rl_is_digit((unsigned char)*p) && n < 5) {
			rel = rel * 10 + (*p - '0');
			p++;
			n++;
		}
		if (n == 0 || (*p != 'd' && *p != 'D') || p[1] != '\0')
			return rl_error_set(RL_EINVALID,
					    "'%s' is not a valid date (expected YYYY-MM-DD, "
					    "today, tomorrow, yesterday, +Nd or -Nd)",
					    in);
		if (rel > 36500)
			return rl_error_set(RL_EINVALID,
					    "'%s' is too far away (at most 36500 days)", in);
		if (in[0] == '-')
			rel = -rel;
	} else {
		return rl_error_set(RL_EINVALID,
				    "'%s' is not a valid date (expected YYYY-MM-DD, "
				    "today, tomorrow, yesterday, +Nd or -Nd)",
				    in);
	}

	if (offset_min < -RL_OFFSET_MAX_MIN || offset_min > RL_OFFSET_MAX_MIN)
		return rl_error_set(RL_EINVALID,
				    "cannot resolve '%s': UTC offset of %d minutes "
				    "is out of range", in, offset_min);
	day = rl_local_day(now_utc, offset_min) + rel;
	/* Checked on the day number so that a wild now_utc cannot reach the
	 * calendar conversion with a year that does not fit in int. */
	if (day < rl_days_from_civil(RL_YEAR_MIN, 1, 1) ||
	    day > rl_days_from_civil(RL_YEAR_MAX, 12, 31))
		return rl_error_set(RL_EINVALID,
				    "'%s' falls outside the years %d..%d",
				    in, RL_YEAR_MIN, RL_YEAR_MAX);
	rl_civil_from_days(day, &yy, &mm, &dd);
	rl_write_date(out, (int)yy, (int)mm, (int)dd);
	return RL_OK;
}

/* Up to max digits (at least one) at *pp; advances *pp. -1 if none. */
static int rl_scan_digits(const char **pp, int min, int max)
{
	const char *p = *pp;
	int v = 0, n = 0;

	while (n < max && rl_is_digit((unsigned char)*p)) {
		v = v * 10 + (*p - '0');
		p++;
		n++;
	}
	if (n < min)
		return -1;
	*pp = p;
	return v;
}

int rl_date_parse_fmt(char out[11], const char *in, const char *fmt)
{
	const char *p, *f;
	int y = -1, m = -1, d = -1;

	if (!in)
		in = "";
	if (!fmt)
		fmt = "";

	/* Check the format on its own first, so that a bad format is reported
	 * as such whatever the input. */
	{
		int nd = 0, nm = 0, ny = 0;

		for (f = fmt; *f; f++) {
			if (*f != '%')
				continue;
			f++;
			if (*f == 'd')
				nd++;
			else if (*f == 'm')
				nm++;
			else if (*f == 'y' || *f == 'Y')
				ny++;
			else if (*f != '%')
				return rl_error_set(RL_EINVALID,
						    "cannot parse '%s': '%s' is not a valid "
						    "date format (use %%d %%m %%y %%Y, %%%% "
						    "and literal characters)", in, fmt);
		}
		if (nd != 1 || nm != 1 || ny != 1)
			return rl_error_set(RL_EINVALID,
					    "cannot parse '%s': date format '%s' must "
					    "contain %%d, %%m and %%y or %%Y exactly once",
					    in, fmt);
	}

	p = in;
	for (f = fmt; *f; f++) {
		int v;

		if (*f != '%' || f[1] == '%') {
			if (*f == '%')
				f++;
			if (*p != *f)
				goto mismatch;
			p++;
			continue;
		}
		f++;
		switch (*f) {
		case 'd':
			/* Spreadsheets write 3/7/2025 as often as 03/07/2025. */
			if ((v = rl_scan_digits(&p, 1, 2)) < 0)
				goto mismatch;
			d = v;
			break;
		case 'm':
			if ((v = rl_scan_digits(&p, 1, 2)) < 0)
				goto mismatch;
			m = v;
			break;
		case 'Y':
			if ((v = rl_scan_digits(&p, 4, 4)) < 0)
				goto mismatch;
			y = v;
			break;
		default: /* 'y', the only conversion left after the check */
			if ((v = rl_scan_digits(&p, 2, 2)) < 0)
				goto mismatch;
			/* The POSIX strptime pivot. */
			y = v <= 68 ? 2000 + v : 1900 + v;
			break;
		}
	}
	if (*p != '\0')
		goto mismatch;
	if (!rl_valid_ymd(y, m, d))
		return rl_error_set(RL_EINVALID,
				    "'%s' is not a valid date (format '%s'): no such "
				    "day, or year outside %d..%d",
				    in, fmt, RL_YEAR_MIN, RL_YEAR_MAX);
	rl_write_date(out, y, m, d);
	return RL_OK;

mismatch:
	return rl_error_set(RL_EINVALID, "'%s' does not match the date format '%s'",
			    in, fmt);
}

/* ------------------------------------------------------------------------ */
/* Points in time                                                            */

static int rl_time_bad(const char *in)
{
	return rl_error_set(RL_EINVALID,
			    "'%s' is not a valid time (expected now or "
			    "YYYY-MM-DDTHH:MM[:SS] with optional Z or +HH:MM)",
			    in);
}

int rl_time_parse(int64_t *utc, int *offset_min, const char *in,
		  int64_t now_utc, int default_offset_min)
{
	const char *p;
	int y, mo, d, h, mi, s = 0, off;
	int64_t t;

	if (!in)
		in = "";
	if (default_offset_min < -RL_OFFSET_MAX_MIN ||
	    default_offset_min > RL_OFFSET_MAX_MIN)
		return rl_error_set(RL_EINVALID,
				    "cannot resolve '%s': UTC offset of %d minutes "
				    "is out of range", in, default_offset_min);
	if (rl_keyword_eq(in, "now")) {
		*utc = now_utc;
		*offset_min = default_offset_min;
		return RL_OK;
	}

	p = rl_scan_ymd(in, &y, &mo, &d);
	if (!p || (*p != 'T' && *p != 't' && *p != ' '))
		return rl_time_bad(in);
	p++;
	h = rl_fixed_digits(p, 2);
	if (h < 0 || p[2] != ':')
		return rl_time_bad(in);
	mi = rl_fixed_digits(p + 3, 2);
	if (mi < 0)
		return rl_time_bad(in);
	p += 5;
	if (*p == ':') {
		s = rl_fixed_digits(p + 1, 2);
		if (s < 0)
			return rl_time_bad(in);
		p += 3;
		/* Exports from other systems carry milliseconds; Relasi keeps
		 * whole seconds, so the fraction is dropped (truncated). */
		if (*p == '.') {
			p++;
			if (!rl_is_digit((unsigned char)*p))
				return rl_time_bad(in);
			while (rl_is_digit((unsigned char)*p))
				p++;
		}
	}

	if (*p == '\0') {
		off = default_offset_min;
	} else if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		off = 0;
	} else if (*p == '+' || *p == '-') {
		int oh, om;
		const char *q = p + 1;

		oh = rl_fixed_digits(q, 2);
		if (oh < 0)
			return rl_time_bad(in);
		q += 2;
		if (*q == ':')
			q++;
		/* "+07": ISO 8601's hours-only offset (not after a ':') */
		om = *q == '\0' && q[-1] != ':' ? 0 : rl_fixed_digits(q, 2);
		if (om < 0 || (*q != '\0' && q[2] != '\0'))
			return rl_time_bad(in);
		if (om > 59 || oh * 60 + om > RL_OFFSET_MAX_MIN)
			return rl_error_set(RL_EINVALID,
					    "'%s' has a UTC offset outside -14:00..+14:00",
					    in);
		off = (oh * 60 + om) * (*p == '-' ? -1 : 1);
	} else {
		return rl_time_bad(in);
	}

	if (!rl_valid_ymd(y, mo, d))
		return rl_error_set(RL_EINVALID,
				    "'%s' is not a valid time: no such day, or year "
				    "outside %d..%d", in, RL_YEAR_MIN, RL_YEAR_MAX);
	/* Leap seconds (:60) have no Unix time of their own. */
	if (h > 23 || mi > 59 || s > 59)
		return rl_error_set(RL_EINVALID,
				    "'%s' is not a valid time: no such time of day", in);

	t = rl_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 +
	    h * 3600 + mi * 60 + s - (int64_t)off * 60;
	/* The instant is kept as UTC text (rl_time_format_utc), which must be
	 * in the years 1900..9999 too: "1900-01-01T00:00+14:00" is
	 * 1899-12-31T10:00Z, which the model (and so the hub) refuses, and
	 * past 9999 the formatter would clamp it. Found by fuzz/fuzz_valid. */
	if (t < rl_days_from_civil(RL_YEAR_MIN, 1, 1) * 86400 ||
	    t > rl_days_from_civil(RL_YEAR_MAX, 12, 31) * 86400 + 86399)
		return rl_error_set(RL_EINVALID,
				    "'%s' is not a valid time: in UTC it falls outside "
				    "the years %d..%d", in, RL_YEAR_MIN, RL_YEAR_MAX);
	*utc = t;
	*offset_min = off;
	return RL_OK;
}

/* The formatters cannot fail, so instants outside 0000-01-01 .. 9999-12-31
 * are shown as the nearest end of that range rather than overflowing the
 * fixed four-digit year. */
#define RL_FMT_MIN_SECS (-62167219200LL)	/* 0000-01-01T00:00:00Z */
#define RL_FMT_MAX_SECS (253402300799LL)	/* 9999-12-31T23:59:59Z */

static int64_t rl_clamp_local(int64_t utc, int offset_min)
{
	/* Any int offset is below 2^31 minutes = 1.3e11 s, far less than the
	 * margin kept here, so the addition cannot overflow. */
	const int64_t margin = INT64_C(1) << 40;
	int64_t t;

	if (utc < RL_FMT_MIN_SECS - margin)
		utc = RL_FMT_MIN_SECS - margin;
	if (utc > RL_FMT_MAX_SECS + margin)
		utc = RL_FMT_MAX_SECS + margin;
	t = utc + (int64_t)offset_min * 60;
	if (t < RL_FMT_MIN_SECS)
		t = RL_FMT_MIN_SECS;
	if (t > RL_FMT_MAX_SECS)
		t = RL_FMT_MAX_SECS;
	return t;
}

/* Writes "YYYY-MM-DD?HH:MM:SS" (19 chars, no NUL) for local seconds t. */
static char *rl_write_datetime(char *p, int64_t t, char sep, int with_seconds)
{
	int64_t sod, y;
	int64_t day = rl_split_day(t, &sod);
	unsigned m, d;

	rl_civil_from_days(day, &y, &m, &d);
	rl_write_date(p, (int)y, (int)m, (int)d);
	p += 10;
	*p++ = sep;
	p = rl_put_digits(p, (unsigned)(sod / 3600), 2);
	*p++ = ':';
	p = rl_put_digits(p, (unsigned)(sod / 60 % 60), 2);
	if (with_seconds) {
		*p++ = ':';
		p = rl_put_digits(p, (unsigned)(sod % 60), 2);
	}
	return p;
}

void rl_time_format_utc(char out[21], int64_t utc)
{
	char *p = rl_write_datetime(out, rl_clamp_local(utc, 0), 'T', 1);

	*p++ = 'Z';
	*p = '\0';
}

void rl_time_format_local(char out[32], int64_t utc, int offset_min)
{
	char *p = rl_write_datetime(out, rl_clamp_local(utc, offset_min), ' ', 0);
	/* int64 so that the magnitude of INT_MIN is representable */
	int64_t off = offset_min, hh, mm;

	*p++ = ' ';
	*p++ = off < 0 ? '-' : '+';
	if (off < 0)
		off = -off;
	hh = off / 60;
	mm = off % 60;
	/* Any real offset has two hour digits; an absurd one still fits the
	 * 32 bytes (at most 8 digits) instead of being cut. */
	snprintf(p, (size_t)(out + 32 - p), "%02" PRId64 ":%02" PRId64, hh, mm);
}

void rl_date_of(char out[11], int64_t utc, int offset_min)
{
	int64_t sod, y;
	int64_t day = rl_split_day(rl_clamp_local(utc, offset_min), &sod);
	unsigned m, d;

	rl_civil_from_days(day, &y, &m, &d);
	rl_write_date(out, (int)y, (int)m, (int)d);
}

/* ------------------------------------------------------------------------ */
/* Coordinates                                                               */

/*
 * A decimal number "[+-]D[DD][.DDD...]" converted without strtod (locale).
 * The integer part has at most three digits (|value| <= 180 anyway), and at
 * most 12 fraction digits are kept — about 0.1 micrometre of latitude — so
 * the mantissa stays below 2^53 and mantissa / 10^k is one correctly rounded
 * division of two exact doubles. Further fraction digits are accepted (GPS
 * apps print 15) and truncated; returns the end, or NULL.
 */
#define RL_GEO_FRAC_KEEP 12
#define RL_GEO_FRAC_MAX 20

static const char *rl_scan_degrees(const char *p, double *out)
{
	static const double pow10[RL_GEO_FRAC_KEEP + 1] = {
		1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12
	};
	uint64_t mant = 0;
	int neg = 0, n = 0, kept = 0, frac = 0;

	if (*p == '+' || *p == '-') {
		neg = *p == '-';
		p++;
	}
	while (rl_is_digit((unsigned char)*p)) {
		if (++n > 3)
			return NULL;
		mant = mant * 10 + (uint64_t)(*p - '0');
		p++;
	}
	if (n == 0)
		return NULL;
	if (*p == '.') {
		p++;
		while (rl_is_digit((unsigned char)*p)) {
			if (++frac > RL_GEO_FRAC_MAX)
				return NULL;
			if (kept < RL_GEO_FRAC_KEEP) {
				mant = mant * 10 + (uint64_t)(*p - '0');
				kept++;
			}
			p++;
		}
		if (frac == 0)
			return NULL;
	}
	*out = (double)mant / pow10[kept];
	if (neg)
		*out = -*out;
	return p;
}

int rl_geo_parse(double *lat, double *lon, const char *in)
{
	const char *p;
	double la, lo;

	if (!in)
		in = "";
	p = rl_scan_degrees(in, &la);
	if (!p || *p != ',')
		goto bad;
	p++;
	while (*p == ' ')
		p++;
	p = rl_scan_degrees(p, &lo);
	if (!p || *p != '\0')
		goto bad;
	if (la < -90.0 || la > 90.0)
		return rl_error_set(RL_EINVALID,
				    "'%s' is not a valid position: latitude must be "
				    "between -90 and 90", in);
	if (lo < -180.0 || lo > 180.0)
		return rl_error_set(RL_EINVALID,
				    "'%s' is not a valid position: longitude must be "
				    "between -180 and 180", in);
	*lat = la;
	*lon = lo;
	return RL_OK;

bad:
	return rl_error_set(RL_EINVALID,
			    "'%s' is not a valid position (expected LAT,LON in "
			    "decimal degrees, e.g. -6.2088,106.8456)", in);
}

/* IUGG mean Earth radius R1, the usual choice for a spherical model. */
#define RL_EARTH_RADIUS_KM 6371.0088

double rl_geo_distance_km(double lat1, double lon1, double lat2, double lon2)
{
	const double rad = 3.14159265358979323846 / 180.0;
	double dlat = (lat2 - lat1) * rad;
	double dlon = (lon2 - lon1) * rad;
	double s1 = sin(dlat / 2), s2 = sin(dlon / 2);
	double a = s1 * s1 + cos(lat1 * rad) * cos(lat2 * rad) * s2 * s2;

	/* Rounding can push a a hair outside [0, 1] for antipodal points. */
	if (a < 0.0)
		a = 0.0;
	if (a > 1.0)
		a = 1.0;
	return 2.0 * RL_EARTH_RADIUS_KM * atan2(sqrt(a), sqrt(1.0 - a));
}

void rl_geo_box(double lat, double lon, double km, double box[4])
{
	const double deg = 180.0 / 3.14159265358979323846;
	double r = km / RL_EARTH_RADIUS_KM;     /* the circle's angular radius */
	double dlat = r * deg, s = sin(r), c = cos(lat / deg);

	box[0] = lat - dlat;
	box[1] = lat + dlat;
	/* The widest longitude of a circle of angular radius r around
	 * latitude lat: asin(sin r / cos lat), until it reaches a pole. */
	if (box[0] <= -90.0 || box[1] >= 90.0 || s >= c) {
		box[2] = -180.0;
		box[3] = 180.0;
	} else {
		double dlon = asin(s / c) * deg;
		box[2] = lon - dlon;
		box[3] = lon + dlon;
		/* A circle across the antimeridian: its far side has longitudes
		 * of the other sign, which a box past +-180 would leave out
		 * (Fiji's customers 2 km apart across it). Spanning every
		 * longitude keeps the box one range for the R*Tree; the latitude
		 * bounds still hold it to a thin band, and the exact distance
		 * (which wraps) does the rest. */
		if (box[2] < -180.0 || box[3] > 180.0) {
			box[2] = -180.0;
			box[3] = 180.0;
		}
	}
}

/*
 * What a name is made of, for rl_name_fold: 1 a character of a word
 * (letters, digits, marks of every script; unassigned and private-use code
 * points too, so a letter newer than utf8proc is never erased), 0 a
 * separator (punctuation, symbols, spaces, controls: ASCII's and Unicode's
 * alike, so "Bu\u2019 Ani" folds as "Bu' Ani"), -1 nothing (an invisible
 * format character: a zero-width joiner inside a word leaves it whole).
 */
static int fold_class(utf8proc_int32_t cp)
{
	if (cp < 0x80)
		return (cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9');
	switch (utf8proc_category(cp)) {
	case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
	case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
	case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
	case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
	case UTF8PROC_CATEGORY_CN: case UTF8PROC_CATEGORY_CO:
		return 1;
	case UTF8PROC_CATEGORY_CF:
		return -1;
	default:
		return 0;
	}
}

int rl_char_is_terminal_unsafe(int32_t c)
{
	return c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x61c || c == 0x200e || c == 0x200f ||
	       (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

/*
 * Marks that only decorate a letter, which a name may be typed with or
 * without: the generic combining diacritics (Latin, Greek and Cyrillic
 * accents, Vietnamese tones), Hebrew points and Arabic vowel marks. Not
 * the marks that are part of the letter or the word in their script —
 * an Indic vowel sign, a Thai vowel, the Japanese voicing mark: "किरण"
 * and "करण", "が" and "か" are other names (UTF8PROC_STRIPMARK took them
 * all: a duplicate candidate for every such pair).
 */
static int accent_mark(utf8proc_int32_t cp)
{
	if ((cp >= 0x0300 && cp <= 0x036f) || (cp >= 0x1ab0 && cp <= 0x1aff) ||
	    (cp >= 0x1dc0 && cp <= 0x1dff) || (cp >= 0x20d0 && cp <= 0x20ff) ||
	    (cp >= 0xfe20 && cp <= 0xfe2f) || (cp >= 0x064b && cp <= 0x065f) || cp == 0x0670)
		return 1;
	return cp >= 0x0591 && cp <= 0x05c7 && utf8proc_category(cp) == UTF8PROC_CATEGORY_MN;
}

/* NFKC, case-folded, without accent marks (accent_mark), in *out (malloc'd
 * by utf8proc); its length, or < 0 for text that is not UTF-8. IGNORE
 * drops the default-ignorable code points (zero-width space, joiners, soft
 * hyphen, BOM); COMPAT makes a no-break or ideographic space a space and
 * full-width letters ASCII. Decomposed first, so that an accented letter
 * is its letter and its mark, then composed again without the marks. */
static utf8proc_ssize_t fold_map(const char *in, utf8proc_uint8_t **out)
{
	utf8proc_uint8_t *nfd = NULL;
	utf8proc_ssize_t len, at, step, n = 0;
	utf8proc_int32_t cp;

	*out = NULL;
	len = utf8proc_map((const utf8proc_uint8_t *)in, 0, &nfd,
			   UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT |
			   UTF8PROC_CASEFOLD | UTF8PROC_IGNORE);
	if (len < 0)
		return len;
	for (at = 0; at < len; at += step) {
		if ((step = utf8proc_iterate(nfd + at, len - at, &cp)) <= 0)
			break;             /* utf8proc_map wrote valid UTF-8 */
		if (!accent_mark(cp)) {
			memmove(nfd + n, nfd + at, (size_t)step);
			n += step;
		}
	}
	nfd[n] = '\0';
	len = utf8proc_map(nfd, 0, out, UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE);
	free(nfd);
	return len;
}

int rl_name_fold(const char *in, char **out)
{
	utf8proc_uint8_t *folded = NULL;
	utf8proc_ssize_t len, at, step;
	utf8proc_int32_t cp;
	char *k;
	size_t n = 0;
	int space = 0, cls;

	*out = NULL;
	len = fold_map(in, &folded);
	if (len == UTF8PROC_ERROR_NOMEM)
		return rl_error_set(RL_ENOMEM, "out of memory");
	if (len < 0)
		return rl_error_set(RL_EINVALID, "'%.80s' is not valid UTF-8", in);
	/* The key is never longer than the folded text: each code point is
	 * copied whole or dropped, a run of separators becomes one space. */
	if (!(k = malloc((size_t)len + 1))) {
		free(folded);
		return rl_error_set(RL_ENOMEM, "out of memory");
	}
	for (at = 0; at < len; at += step) {
		if ((step = utf8proc_iterate(folded + at, len - at, &cp)) <= 0)
			break;             /* utf8proc_map wrote valid UTF-8 */
		if ((cls = fold_class(cp)) < 0)
			continue;
		if (cls == 0) {
			space = 1;
			continue;
		}
		if (space && n)
			k[n++] = ' ';
		space = 0;
		memcpy(k + n, folded + at, (size_t)step);
		n += (size_t)step;
	}
	k[n] = '\0';
	free(folded);
	*out = k;
	return RL_OK;
}
