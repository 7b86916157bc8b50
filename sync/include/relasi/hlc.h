/*
 * relasi/hlc.h — hybrid logical clock (Kulkarni et al., 2014).
 *
 * A stamp is one int64: the upper 48 bits are milliseconds since the Unix
 * epoch, the lower 16 bits a counter. Stamps compare as integers, are
 * strictly increasing on one clock even when the wall clock steps back, and
 * stay close to wall time. A remote stamp is merged on receipt so that
 * causality carries across devices; one whose physical part is more than
 * max_drift_ms ahead of our wall clock is refused (one bad clock must not drag
 * every device's clock into the future).
 *
 * The struct is plain data owned by its user; no allocation, no locking (one
 * clock per store handle, used from one thread).
 */
#ifndef RELASI_HLC_H
#define RELASI_HLC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int64_t (*rl_clock_fn)(void *ctx); /* wall clock, milliseconds */

/* The hub's reason for refusing a change stamped too far ahead of its
 * clock (hub/hubstore.c), as the device shows it. */
#define RL_REASON_CLOCK_AHEAD "the device's clock is too far ahead"

typedef struct rl_hlc {
	int64_t last;          /* last stamp handed out or merged */
	int64_t max_drift_ms;  /* refuse remote stamps further ahead than this */
	rl_clock_fn clock;     /* NULL: the system clock */
	void *clock_ctx;
} rl_hlc;

#define RL_HLC_LOGICAL_BITS 16

static inline int64_t rl_hlc_physical_ms(int64_t stamp)
{
	return stamp >> RL_HLC_LOGICAL_BITS;
}

static inline int64_t rl_hlc_counter(int64_t stamp)
{
	return stamp & ((1 << RL_HLC_LOGICAL_BITS) - 1);
}

/* Start a clock that has already handed out `last` (0 for a new one). */
void rl_hlc_init(rl_hlc *h, int64_t last, int64_t max_drift_ms,
		 rl_clock_fn clock, void *clock_ctx);

/* A stamp for a local event: greater than every stamp seen so far. */
int64_t rl_hlc_now(rl_hlc *h);

/*
 * Merge a stamp received from another node and return (in *out, if not NULL)
 * a local stamp greater than both. RL_EINVALID (clock unchanged) when the
 * remote physical time is more than max_drift_ms ahead of our wall clock, or
 * the stamp is negative.
 */
int rl_hlc_receive(rl_hlc *h, int64_t remote, int64_t *out);

/*
 * Restart the clock from the wall clock, even if that is behind stamps
 * already handed out, and return that stamp (R). Only for re-stamping work
 * stamped while the wall clock was wrong (sync/src/devsync.c
 * restamp_pending): it breaks the "strictly increasing" promise on purpose,
 * once, for stamps the caller replaces. A caller that hands out R+1..R+n
 * itself sets h->last = R + n.
 */
int64_t rl_hlc_restart(rl_hlc *h);

/* The system wall clock in milliseconds (CLOCK_REALTIME). */
int64_t rl_clock_system_ms(void *ctx);

#ifdef __cplusplus
}
#endif
#endif
