/*
 * hlc.c — hybrid logical clock. Packed form: physical ms << 16 | counter, so
 * the classic rules (take the max of the clocks; bump the counter when
 * physical time did not advance) become integer max and +1, and a counter
 * overflow simply carries into the millisecond part.
 */
#include "relasi/hlc.h"
#include "relasi/error.h"

#include <time.h>

int64_t rl_clock_system_ms(void *ctx)
{
	struct timespec ts;
	(void)ctx;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rl_hlc_init(rl_hlc *h, int64_t last, int64_t max_drift_ms,
		 rl_clock_fn clock, void *clock_ctx)
{
	h->last = last > 0 ? last : 0;
	h->max_drift_ms = max_drift_ms;
	h->clock = clock ? clock : rl_clock_system_ms;
	h->clock_ctx = clock_ctx;
}

static int64_t wall_stamp(rl_hlc *h)
{
	int64_t ms = h->clock(h->clock_ctx);
	if (ms < 0)
		ms = 0;
	return ms << RL_HLC_LOGICAL_BITS;
}

int64_t rl_hlc_now(rl_hlc *h)
{
	int64_t wall = wall_stamp(h);
	h->last = wall > h->last ? wall : h->last + 1;
	return h->last;
}

int64_t rl_hlc_restart(rl_hlc *h)
{
	h->last = wall_stamp(h);
	return h->last;
}

int rl_hlc_receive(rl_hlc *h, int64_t remote, int64_t *out)
{
	int64_t wall_ms = h->clock(h->clock_ctx);
	int64_t wall = wall_stamp(h);
	int64_t m;

	if (remote < 0)
		return rl_error_set(RL_EINVALID, "clock stamp %lld is negative",
				    (long long)remote);
	if (rl_hlc_physical_ms(remote) - wall_ms > h->max_drift_ms)
		return rl_error_set(RL_EINVALID,
			"remote clock is %lld ms ahead of ours (limit %lld ms)",
			(long long)(rl_hlc_physical_ms(remote) - wall_ms),
			(long long)h->max_drift_ms);
	m = remote > h->last ? remote : h->last;
	h->last = wall > m ? wall : m + 1;
	if (out)
		*out = h->last;
	return RL_OK;
}
