/*
 * utf8.c — strict UTF-8 validation (see utf8.h). Byte ranges follow the
 * Unicode standard's table of well-formed sequences (Table 3-7), which rules
 * out overlongs and surrogates without decoding.
 */
#include "utf8.h"

size_t rl_utf8_bad(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		unsigned char lo = 0x80, hi = 0xBF;
		size_t n, k;

		if (c == 0)
			return i;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			n = 1;
		} else if (c == 0xE0) {
			n = 2;
			lo = 0xA0;      /* below is overlong */
		} else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
			n = 2;
		} else if (c == 0xED) {
			n = 2;
			hi = 0x9F;      /* above are surrogates */
		} else if (c == 0xF0) {
			n = 3;
			lo = 0x90;
		} else if (c >= 0xF1 && c <= 0xF3) {
			n = 3;
		} else if (c == 0xF4) {
			n = 3;
			hi = 0x8F;      /* above is beyond U+10FFFF */
		} else {
			return i;
		}
		if (len - i - 1 < n || s[i + 1] < lo || s[i + 1] > hi)
			return i;
		for (k = 2; k <= n; k++)
			if ((s[i + k] & 0xC0) != 0x80)
				return i;
		i += n + 1;
	}
	return len;
}
