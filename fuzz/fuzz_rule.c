/*
 * fuzz_rule.c — the rule language of saved segments (sync/src/segment_rule.c:
 * sr_parse, sr_bind_tiers, sr_eval), as a marketer types it into
 * `relasi segment save NAME RULE`. The input is the rule text (all bytes,
 * NULs included: the parser takes pointer + length).
 *
 * Asserts:
 *  - on error: RL_EINVALID, no rule handed out, and a message
 *    "rule:LINE:COL: ..." whose line and column lie inside the input (or
 *    just after its end) — the position a person is sent to exists;
 *  - input longer than SR_MAX_BYTES is always refused;
 *  - on success: binding the tier names either works or fails with a
 *    positioned RL_EINVALID; evaluation on a few customers gives 0 or 1;
 *  - negation: "not (RULE)" parses too (unless that exceeds the length or
 *    depth limit, refused with that reason) and matches exactly the
 *    customers RULE does not.
 */
#include "fuzz_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relasi/error.h"
#include "relasi/segment_rule.h"

static const char *const tiers[] = { "Priority", "Gold", "Red" };

static struct sr_facts facts[4];

static void init_facts(void)
{
	memset(facts, 0, sizeof(facts));
	facts[0].name = "Toko Maju";
	facts[0].city = "Bandung";
	facts[0].region = "Jawa Barat";
	facts[0].tags = "vip, grosir";
	facts[0].owner = "Ani";
	facts[0].created = 20000;
	facts[0].last_visit = 20500;
	facts[0].last_activity = 20510;
	facts[0].tier = 0;
	facts[0].rfm = 1u;
	facts[1].name = "CV Sejahtera";
	facts[1].region = "Bali";
	facts[1].created = SR_NO_DAY;
	facts[1].last_visit = SR_NO_DAY;
	facts[1].last_activity = SR_NO_DAY;
	facts[1].tier = -1;
	facts[2].name = "";
	facts[2].tags = "";
	facts[2].created = 0;
	facts[2].last_visit = 20519;
	facts[2].last_activity = 20520;
	facts[2].tier = 2;
	facts[2].rfm = 0x90u;
	facts[3] = facts[0];
	facts[3].tags = " VIP ,x,,";
	facts[3].tier = 1;
	facts[3].rfm = 0xffu;
}

/* Lines and characters of the input, for the position check. */
static void extent(const char *s, size_t len, long *lines, long *maxcol)
{
	size_t i;
	long col = 1;

	*lines = 1;
	*maxcol = 1;
	for (i = 0; i < len; i++) {
		if (s[i] == '\n') {
			(*lines)++;
			col = 1;
		} else if (((unsigned char)s[i] & 0xc0) != 0x80) {
			col++;
		}
		if (col > *maxcol)
			*maxcol = col;
	}
}

static void check_error(int error, const char *s, size_t len)
{
	const char *msg = rl_error_message();
	long line = 0, col = 0, lines, maxcol;
	int used = 0;

	FZ_CHECK(error == RL_EINVALID, "error code %d (%s)", error, msg);
	FZ_CHECK(sscanf(msg, "rule:%ld:%ld: %n", &line, &col, &used) == 2 && used > 0,
		 "message without a position: %s", msg);
	extent(s, len, &lines, &maxcol);
	FZ_CHECK(line >= 1 && line <= lines && col >= 1 && col <= maxcol + 1,
		 "position %ld:%ld outside the input (%ld lines, %ld columns): %s", line, col,
		 lines, maxcol, msg);
	FZ_CHECK(msg[used] != '\0', "a position without a reason: %s", msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct sr_rule *r = NULL, *neg = NULL;
	const char *s = (const char *)data;
	char *wrapped = NULL;
	int error, bound, k, m[4];

	if (!ready) {
		fz_setup_env();
		init_facts();
		ready = 1;
	}
	error = sr_parse(&r, s, size);
	if (error < 0) {
		FZ_CHECK(r == NULL, "a rule handed out with an error");
		check_error(error, s, size);
		return 0;
	}
	FZ_CHECK(size <= SR_MAX_BYTES, "a rule of %zu bytes accepted", size);
	bound = sr_bind_tiers(r, tiers, 3);
	if (bound < 0)
		check_error(bound, s, size);
	for (k = 0; k < 4; k++) {
		m[k] = sr_eval(r, &facts[k], 20520);
		FZ_CHECK(m[k] == 0 || m[k] == 1, "eval gave %d", m[k]);
	}
	(void)sr_needs(r);

	if (size + 6 <= SR_MAX_BYTES && bound == RL_OK) {
		wrapped = malloc(size + 7);
		FZ_CHECK(wrapped != NULL, "out of memory");
		memcpy(wrapped, "not (", 5);
		memcpy(wrapped + 5, s, size);
		wrapped[size + 5] = ')';
		wrapped[size + 6] = '\0';
		error = sr_parse(&neg, wrapped, size + 6);
		if (error < 0) {
			FZ_CHECK(strstr(rl_error_message(), "nests deeper") != NULL,
				 "'not (RULE)' refused for another reason: %s", rl_error_message());
		} else {
			FZ_CHECK(sr_bind_tiers(neg, tiers, 3) == RL_OK, "tiers bind differently");
			for (k = 0; k < 4; k++)
				FZ_CHECK(sr_eval(neg, &facts[k], 20520) == !m[k],
					 "not (RULE) is not the negation on customer %d", k);
		}
	}
	sr_free(neg);
	sr_free(r);
	free(wrapped);
	return 0;
}
