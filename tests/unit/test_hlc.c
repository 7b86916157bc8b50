/*
 * test_hlc.c — the hybrid logical clock under a controllable wall clock:
 * monotonic when the clock steps back, merging remote stamps, refusing stamps
 * from too far in the future, counter overflow carrying into milliseconds,
 * restarting from the wall clock.
 */
#include "check.h"

#include "relasi/error.h"
#include "relasi/hlc.h"

static int64_t fake_ms;

static int64_t fake_clock(void *ctx)
{
	(void)ctx;
	return fake_ms;
}

#define STAMP(ms, c) (((int64_t)(ms) << 16) | (c))

int main(void)
{
	rl_hlc h;
	int64_t a, b, c, out;
	int i;

	fake_ms = 1000000;
	rl_hlc_init(&h, 0, 5000, fake_clock, NULL);
	a = rl_hlc_now(&h);
	CHECK_EQ_INT(a, STAMP(1000000, 0));
	b = rl_hlc_now(&h);                       /* same millisecond: counter */
	CHECK_EQ_INT(b, STAMP(1000000, 1));

	fake_ms = 999000;                         /* wall clock steps back 1 s */
	c = rl_hlc_now(&h);
	CHECK(c > b);
	CHECK_EQ_INT(rl_hlc_physical_ms(c), 1000000);
	CHECK_EQ_INT(rl_hlc_counter(c), 2);

	fake_ms = 1000500;                        /* and forward again */
	CHECK_EQ_INT(rl_hlc_now(&h), STAMP(1000500, 0));

	/* A remote stamp ahead of us (within the bound) pulls us forward. */
	CHECK_EQ_INT(rl_hlc_receive(&h, STAMP(1003000, 7), &out), RL_OK);
	CHECK_EQ_INT(out, STAMP(1003000, 8));
	CHECK(rl_hlc_now(&h) > out);

	/* A remote stamp behind us changes nothing but still ticks. */
	a = h.last;
	CHECK_EQ_INT(rl_hlc_receive(&h, STAMP(10, 0), &out), RL_OK);
	CHECK_EQ_INT(out, a + 1);

	/* Too far in the future: refused, clock untouched. */
	a = h.last;
	CHECK_EQ_INT(rl_hlc_receive(&h, STAMP(fake_ms + 5001, 0), &out), RL_EINVALID);
	CHECK_EQ_INT(h.last, a);
	CHECK(strstr(rl_error_message(), "ahead") != NULL);
	CHECK_EQ_INT(rl_hlc_receive(&h, -5, NULL), RL_EINVALID);
	/* Exactly at the bound is fine. */
	CHECK_EQ_INT(rl_hlc_receive(&h, STAMP(fake_ms + 5000, 0), NULL), RL_OK);

	/* 70,000 events in one millisecond: the counter carries into the ms part
	 * and stamps stay strictly increasing. */
	rl_hlc_init(&h, 0, 5000, fake_clock, NULL);
	fake_ms = 2000000;
	a = rl_hlc_now(&h);
	for (i = 0; i < 70000; i++) {
		b = rl_hlc_now(&h);
		if (b <= a) {
			CHECK(b > a);
			break;
		}
		a = b;
	}
	CHECK_EQ_INT(rl_hlc_physical_ms(a), 2000001);

	/* A clock restarted from a persisted stamp never goes below it. */
	rl_hlc_init(&h, STAMP(5000000, 3), 5000, fake_clock, NULL);
	fake_ms = 100;
	CHECK_EQ_INT(rl_hlc_now(&h), STAMP(5000000, 4));

	/* Restarting (re-stamping after a wrong clock) goes back to the wall
	 * clock on purpose; stamps go on from there. */
	fake_ms = 4000000;
	CHECK_EQ_INT(rl_hlc_restart(&h), STAMP(4000000, 0));
	CHECK_EQ_INT(rl_hlc_now(&h), STAMP(4000000, 1));

	CHECK_DONE();
}
