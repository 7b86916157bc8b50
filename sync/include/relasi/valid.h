/*
 * relasi/valid.h — parsing and validation of the values users type or import:
 * phone numbers (to E.164), e-mail addresses, ISO 4217 currencies and money,
 * dates, UTC times with the writer's offset, and coordinates.
 *
 * All functions are pure (no store access), take NUL-terminated input, write
 * into caller-owned buffers, and return RL_OK or RL_EINVALID with a message
 * (rl_error_message) that quotes the offending input. Output buffers are only
 * written on success.
 */
#ifndef RELASI_VALID_H
#define RELASI_VALID_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* '+' + up to 15 digits + NUL */
#define RL_E164_BUFSZ 17

/*
 * Normalise a phone number to E.164 ("+628123456789").
 * Accepts spaces, dashes, dots, parentheses between digits; "+CC..." or
 * "00CC..." as international; otherwise a national number of the default
 * country (ISO 3166 alpha-2, e.g. "ID"), whose trunk prefix ("0" in
 * Indonesia) is dropped. A national number that already starts with the
 * default country's calling code and is long enough is taken as international
 * without the '+' (common in Indonesian forms: "62812...").
 * Result must have 8..15 digits. RL_EINVALID for anything else, including
 * letters and an unknown default country.
 */
int rl_phone_normalize(char out[RL_E164_BUFSZ], const char *in,
		       const char *default_country);

/* The calling code ("62") for an ISO 3166 alpha-2 code, or NULL if unknown. */
const char *rl_country_calling_code(const char *alpha2);

/*
 * Validate an e-mail address and write it lower-cased into out (size outsz).
 * Syntax: local@domain, local part of letters, digits and !#$%&'*+/=?^_`{|}~.-
 * (no leading/trailing/double dot), domain of dot-separated labels of letters,
 * digits and '-' with at least one dot; at most RL_MAX_EMAIL_BYTES.
 */
int rl_email_normalize(char *out, size_t outsz, const char *in);

/*
 * Calendar arithmetic (Howard Hinnant's days_from_civil / civil_from_days):
 * proleptic Gregorian, day 0 = 1970-01-01. The one copy for the parsers,
 * the reports' periods and the segment rules' days.
 */
int64_t rl_days_from_civil(int64_t y, unsigned m, unsigned d);
void rl_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

/*
 * Whether a character (a Unicode code point) must not reach a terminal as
 * itself: a control (C0, DEL, C1, which may start an escape sequence), a
 * line or paragraph separator (U+2028, U+2029), or a bidirectional control
 * (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069), which reorders
 * what follows it on the line. The one list for what the hub refuses in a
 * device name and escapes in the admin's history table.
 */
int rl_char_is_terminal_unsafe(int32_t c);

/*
 * A name folded for matching: NFKC, case-folded, accents stripped (the
 * marks that decorate a letter: generic combining diacritics, Hebrew
 * points, Arabic vowel marks; not an Indic or Thai vowel sign or the
 * Japanese voicing mark, which make another word), only
 * letters and digits (of any script), words separated by one space: any
 * punctuation, symbol or space, ASCII or not, separates words ("PT. Maju
 * Jaya", "pt maju jaya" and "Bu\u2019 Ani" / "Bu' Ani" meet); invisible
 * characters (zero-width space, joiners) are dropped. *out is malloc'd
 * ("" when nothing is left).
 * The one rule for the hub's duplicate candidates and the imports' account
 * and rep matching. RL_EINVALID for text that is not UTF-8.
 */
int rl_name_fold(const char *in, char **out);

/*
 * ISO 4217: the number of minor-unit digits for an upper-case code
 * ("IDR" -> 2, "JPY" -> 0, "KWD" -> 3), or -1 if the code is not a current
 * ISO 4217 currency. Lower case input is refused (-1).
 */
int rl_currency_exponent(const char *code);

/*
 * Parse an amount in major units into minor units for the currency:
 * "1500000" -> 150000000 for IDR, "12.5" -> 1250 for USD, "-3" allowed.
 * '.' is the decimal separator; '_', ' ' and ',' between digit groups are
 * ignored only if grouping is regular (1,500,000). More decimals than the
 * currency has, a magnitude beyond RL_MAX_MONEY_MINOR (10^15 minor units,
 * relasi/limits.h: the headroom that keeps sums of amounts inside int64),
 * empty input, or junk -> RL_EINVALID, naming the text and the bound.
 */
int rl_money_parse(int64_t *minor, const char *text, const char *currency);

/*
 * Format minor units as major units with the currency's exponent and no
 * grouping: 150000000 IDR -> "1500000.00", -5 JPY -> "-5". Returns RL_OK,
 * RL_EINVALID for an unknown currency, RL_ETOOBIG if outsz is too small.
 */
int rl_money_format(char *out, size_t outsz, int64_t minor, const char *currency);

/*
 * Parse a calendar date "YYYY-MM-DD" (years 1900..9999, real days incl. leap
 * years) into out[11] in the same form. Also accepts "today", "tomorrow",
 * "yesterday" and "+Nd"/"-Nd" (N days from today, N <= 36500), resolved
 * against now_utc (Unix seconds) shifted by offset_min minutes, so a rep's
 * "today" is their local date.
 */
int rl_date_parse(char out[11], const char *in, int64_t now_utc, int offset_min);

/*
 * Parse a date with an explicit strftime-like format made of %d %m %y %Y and
 * literal characters (e.g. "%d-%m-%y", "%m/%d/%Y"), as spreadsheet exports
 * write them. %y maps 00..68 -> 2000..2068, 69..99 -> 1969..1999.
 * Writes "YYYY-MM-DD". RL_EINVALID names both the input and the format.
 */
int rl_date_parse_fmt(char out[11], const char *in, const char *fmt);

/*
 * Parse a point in time: "now"; "YYYY-MM-DDTHH:MM[:SS]" optionally followed by
 * "Z" or "+HH:MM"/"-HH:MM" ("+HHMM" and "+HH" too); a space may replace 'T'. Without an explicit
 * offset the time is local to default_offset_min. Writes the UTC instant
 * (Unix seconds) and the offset in minutes that the writer used. Dates are
 * years 1900..9999, and so is the instant in UTC.
 */
int rl_time_parse(int64_t *utc, int *offset_min, const char *in,
		  int64_t now_utc, int default_offset_min);

/* Format Unix seconds as "YYYY-MM-DDTHH:MM:SSZ" (out must hold 21 bytes). */
void rl_time_format_utc(char out[21], int64_t utc);

/* Format Unix seconds shifted by offset_min as "YYYY-MM-DD HH:MM +07:00"
 * (out must hold 32 bytes). */
void rl_time_format_local(char out[32], int64_t utc, int offset_min);

/* The local date "YYYY-MM-DD" of utc at offset_min. */
void rl_date_of(char out[11], int64_t utc, int offset_min);

/*
 * Parse "LAT,LON" in decimal degrees (e.g. "-6.2088,106.8456"); latitude in
 * [-90, 90], longitude in [-180, 180], no NaN/inf, nothing trailing.
 */
int rl_geo_parse(double *lat, double *lon, const char *in);

/* Great-circle distance in kilometres (haversine, mean Earth radius). */
double rl_geo_distance_km(double lat1, double lon1, double lat2, double lon2);

/*
 * The latitude/longitude box holding every point within km of (lat, lon)
 * by rl_geo_distance_km: box = { min_lat, max_lat, min_lon, max_lon }. On
 * the same sphere, so a point at exactly km is inside. A circle that
 * reaches a pole, or crosses the antimeridian, spans every longitude
 * (-180..180): stored positions never run past +-180, so a box that did
 * would leave out the circle's far side.
 */
void rl_geo_box(double lat, double lon, double km, double box[4]);

#ifdef __cplusplus
}
#endif
#endif
