/*
 * audit_pack.h — keeping audit.git compact (audit_pack.c): packing its
 * loose objects and merging its small packs, as `git gc --auto` would.
 * Used by the audit writer (audit.c) and tested on its own
 * (tests/hub/test_audit_pack.c).
 */
#ifndef RELASI_HUB_AUDIT_PACK_H
#define RELASI_HUB_AUDIT_PACK_H

#include <git2.h>

/* git's own defaults: gc.auto (loose objects) and a pack count past which
 * the small packs are merged. */
#define HUB_AUDIT_LOOSE_MAX 6700
#define HUB_AUDIT_PACKS_MAX 8
/* Loose objects packed in one call when not packing everything: bounds how
 * long the writers' lock is held (about 0.2 ms an object here). */
#define HUB_AUDIT_PACK_BATCH 50000

/* A libgit2 failure as an RL_ error (RL_ENOTFOUND for GIT_ENOTFOUND, else
 * RL_EIO), with libgit2's message; doing: what failed. (audit.c) */
int hub_git_fail(int gerr, const char *doing);

struct hub_audit_pack_limits {
	long loose_max;       /* pack loose objects when more (estimated); <= 0: default */
	int packs_max;        /* merge small packs when more; <= 0: default */
	const int *cancel;    /* may be NULL; non-zero (read atomically): stop, remove nothing */
};

struct hub_audit_pack_stats {
	long loose_packed;    /* loose objects moved into a pack */
	int packs_merged;     /* packs merged into one */
	int packs;            /* packs after */
	int changed;          /* a pack was written or removed: reopen the repository */
};

/*
 * Pack the loose objects of the bare repository `repo` and merge its
 * small packs. all = 0: only past the limits (lim may be NULL: defaults),
 * loose objects estimated from one of the 256 fan-out directories as git
 * does (counted, for a limit below 2560), at most HUB_AUDIT_PACK_BATCH of
 * them a call; all = 1: every loose object, and every pack into one.
 *
 * Nothing is removed before what replaces it is durable: a new pack and
 * its index are fsynced (and their directory) before the loose files or
 * old packs it holds are unlinked, an old pack's index before its data.
 * A crash at any point leaves every object readable (at worst twice).
 * Packs with a .keep file are left alone. The caller holds the writers'
 * lock (DIR/audit.lock) and, when st->changed, reopens its repository
 * handle (it may hold a removed pack open). RL_EIO / RL_ESTORE on failure.
 */
int hub_audit_pack_repo(git_repository *repo, int all, const struct hub_audit_pack_limits *lim,
			struct hub_audit_pack_stats *st);

#endif
