/*
 * relasi/id.h — globally unique, time-ordered record ids made on the device.
 *
 * 128 bits: 48 bits of Unix milliseconds, then 80 bits from the kernel's
 * CSPRNG (getrandom), written as 32 lower-case hex digits. Ids made later
 * sort later (to the millisecond), so new rows land at the end of the
 * primary-key index, and two devices can never mint the same id in practice
 * (2^80 random values per millisecond).
 */
#ifndef RELASI_ID_H
#define RELASI_ID_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RL_ID_HEX 32
#define RL_ID_BUFSZ (RL_ID_HEX + 1)

/* Make a new id for time now_ms. RL_OK or RL_ERROR if the kernel gave no
 * randomness (never silently a weak id). */
int rl_id_new(char out[RL_ID_BUFSZ], int64_t now_ms);

/* 1 if s is exactly 32 lower-case hex digits, else 0. */
int rl_id_valid(const char *s);

/* 1 if s is a non-empty string of at most 32 hex digits (any case): a
 * candidate id prefix. */
int rl_id_is_prefix(const char *s);

/* The ids a prefix (rl_id_is_prefix) names are those in [lo, hi): lo is
 * the prefix in lower case (ids are stored so), hi the same followed by
 * 'g', just past every hex digit. For `id >= ?lo AND id < ?hi`. */
void rl_id_prefix_range(const char *prefix, char lo[RL_ID_BUFSZ], char hi[RL_ID_BUFSZ + 1]);

#ifdef __cplusplus
}
#endif
#endif
