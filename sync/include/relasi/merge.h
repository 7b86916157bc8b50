/*
 * relasi/merge.h — the hub's merge rule for one field (../shared/DESIGN.md,
 * "Merge at the hub, field by field"). Pure: no store access; the caller
 * looks up the field's current state and, for text, the value at the
 * incoming change's base version.
 *
 *   base is current (or the field never existed and base is none) -> APPLY
 *   incoming value equals the current one                          -> SAME
 *   a free-text field changed on both sides and libgit2's
 *   git_merge_file merges base/current/incoming cleanly            -> MERGED
 *   otherwise                                                      -> CONFLICT,
 *     with the later HLC as provisional winner (ties: larger device id)
 *   ...except for a field whose concurrent values never conflict
 *   (in->latest_wins: a deal's stage, whose every move is also an
 *   appended stage event): the later HLC stands -> APPLY or SUPERSEDED
 *
 * Values are SQLite-typed (NULL, INTEGER, REAL, TEXT); equality is by type
 * and value (1 and 1.0 differ; "" and NULL differ).
 */
#ifndef RELASI_MERGE_H
#define RELASI_MERGE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum rl_vtype { RL_V_NULL, RL_V_INT, RL_V_REAL, RL_V_TEXT };

struct rl_value {
	enum rl_vtype type;
	int64_t i;
	double d;
	const char *s;      /* RL_V_TEXT: NUL-terminated UTF-8, not owned */
};

int rl_value_equal(const struct rl_value *a, const struct rl_value *b);

/* Is the change stamped (hlc, device) later than (other_hlc, other_device)?
 * The order every "later stamp wins" rule uses: the stamp, then on a tie
 * the larger device id (NULL compares as ""). */
int rl_merge_later(int64_t hlc, const char *device, int64_t other_hlc, const char *other_device);

struct rl_field_state {
	int exists;             /* 0: the hub has never had this field */
	struct rl_value value;
	int64_t version;        /* hub sequence number of the last accepted change */
	int64_t hlc;
	const char *device;     /* who made it */
};

struct rl_incoming {
	struct rl_value value;
	int64_t base;           /* version the device last saw; 0 = none */
	int64_t hlc;
	const char *device;
	int latest_wins;        /* concurrent values never conflict: the later stamp stands */
};

enum rl_merge_outcome {
	RL_MERGE_APPLY,     /* fast-forward: take the incoming value */
	RL_MERGE_SAME,      /* nothing to change */
	RL_MERGE_MERGED,    /* clean three-way text merge: take *merged */
	RL_MERGE_CONFLICT,  /* keep both; provisional winner in *incoming_wins */
	RL_MERGE_SUPERSEDED /* latest_wins: the hub's later value stands; nothing to change */
};

struct rl_merge_result {
	enum rl_merge_outcome outcome;
	char *merged;       /* RL_MERGE_MERGED: malloc'd text, caller frees */
	int incoming_wins;  /* RL_MERGE_CONFLICT: 1 if the incoming value is provisional winner */
};

/*
 * Decide one field. is_text: the field is free text (notes) and may be
 * merged three ways; base_value is the field's value at version in->base
 * (NULL if unknown: then no text merge is tried). Returns RL_OK or RL_ENOMEM
 * / RL_ERROR (libgit2 failure, message set).
 */
int rl_merge_field(const struct rl_field_state *cur, const struct rl_incoming *in,
		   int is_text, const struct rl_value *base_value, struct rl_merge_result *out);

/* Three-way merge of text with libgit2 (git_merge_file). *clean is 1 and
 * *out the merged text (caller frees) when it merged without conflict
 * markers — or when both sides only inserted whole lines into a non-empty
 * base (appends among them): then every inserted line is kept, at each
 * place the lines both inserted alike once, then ours, then theirs
 * (insertions never conflict; merge.c says how line ends are read).
 * NULL texts read as "". */
int rl_merge_text(const char *base, const char *ours, const char *theirs, int *clean, char **out);

/* libgit2's global state, set up once per process and never torn down
 * (the hub's audit history and backups use it too). Not a pair of
 * git_libgit2_init/shutdown around each use: an init after the last
 * shutdown sets everything up again, and Debian's libgit2 then parses the
 * system's whole CA bundle for its mbedTLS stream (~5 ms; 30-40 ms under
 * ASan), which Relasi never uses. RL_OK, or RL_ERROR with libgit2's reason. */
int rl_git_global_init(void);

#ifdef __cplusplus
}
#endif
#endif
