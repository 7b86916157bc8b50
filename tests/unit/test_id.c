/*
 * test_id.c — record ids: format, time order, uniqueness, prefix checks.
 */
#include "check.h"

#include "relasi/id.h"

int main(void)
{
	char a[RL_ID_BUFSZ], b[RL_ID_BUFSZ], prev[RL_ID_BUFSZ];
	int i, dup = 0, order = 0;

	CHECK_EQ_INT(rl_id_new(a, 0x0123456789abLL), 0);
	CHECK(rl_id_valid(a));
	CHECK(strncmp(a, "0123456789ab", 12) == 0);     /* 48-bit ms first */
	CHECK_EQ_INT(rl_id_new(b, 0x0123456789acLL), 0);
	CHECK(strcmp(a, b) < 0);                        /* later sorts later */

	/* 10,000 ids in one millisecond: all different (80 random bits). */
	rl_id_new(prev, 42);
	for (i = 0; i < 10000; i++) {
		rl_id_new(a, 42);
		if (strcmp(a, prev) == 0)
			dup++;
		memcpy(prev, a, sizeof(a));
	}
	CHECK_EQ_INT(dup, 0);
	for (i = 1; i < 1000; i++) {
		rl_id_new(a, i - 1);
		rl_id_new(b, i);
		if (strcmp(a, b) >= 0)
			order++;
	}
	CHECK_EQ_INT(order, 0);

	CHECK(!rl_id_valid("0123456789ABCDEF0123456789abcdef"));   /* upper case */
	CHECK(!rl_id_valid("0123456789abcdef0123456789abcde"));    /* 31 */
	CHECK(!rl_id_valid("0123456789abcdef0123456789abcdef0"));  /* 33 */
	CHECK(!rl_id_valid("0123456789abcdef0123456789abcdeg"));
	CHECK(rl_id_is_prefix("01a2"));
	CHECK(rl_id_is_prefix("01A2"));
	CHECK(!rl_id_is_prefix(""));
	CHECK(!rl_id_is_prefix("toko"));
	CHECK(!rl_id_is_prefix("0123456789abcdef0123456789abcdef0"));
	CHECK_DONE();
}
