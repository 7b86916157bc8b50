/*
 * id.c — time-ordered random record ids (see relasi/id.h).
 */
#include "relasi/id.h"
#include "relasi/error.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

static int fill_random(unsigned char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = getrandom(buf + got, len - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return rl_error_set(RL_ERROR, "getrandom: %s", strerror(errno));
		}
		got += (size_t)n;
	}
	return RL_OK;
}

int rl_id_new(char out[RL_ID_BUFSZ], int64_t now_ms)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[16];
	int i, error;

	if ((error = fill_random(raw + 6, 10)) < 0)
		return error;
	if (now_ms < 0)
		now_ms = 0;
	for (i = 5; i >= 0; i--) {
		raw[i] = (unsigned char)(now_ms & 0xff);
		now_ms >>= 8;
	}
	for (i = 0; i < 16; i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 0xf];
	}
	out[RL_ID_HEX] = '\0';
	return RL_OK;
}

static int is_hex(char c, int allow_upper)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (allow_upper && c >= 'A' && c <= 'F');
}

int rl_id_valid(const char *s)
{
	size_t i;

	for (i = 0; i < RL_ID_HEX; i++)
		if (!is_hex(s[i], 0))
			return 0;
	return s[RL_ID_HEX] == '\0';
}

int rl_id_is_prefix(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (i >= RL_ID_HEX || !is_hex(s[i], 1))
			return 0;
	return i > 0;
}

void rl_id_prefix_range(const char *prefix, char lo[RL_ID_BUFSZ], char hi[RL_ID_BUFSZ + 1])
{
	size_t i;

	for (i = 0; prefix[i] && i < RL_ID_HEX; i++)
		lo[i] = prefix[i] >= 'A' && prefix[i] <= 'F' ? (char)(prefix[i] - 'A' + 'a')
							       : prefix[i];
	lo[i] = '\0';
	memcpy(hi, lo, i);
	hi[i] = 'g';
	hi[i + 1] = '\0';
}
