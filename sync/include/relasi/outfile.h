/*
 * relasi/outfile.h — a file the user named, written whole or not at all.
 *
 * Exports, import reports and HTML pages are written to a temporary file
 * beside the target (PATH.tmp-PID, created exclusively), flushed, synced
 * and renamed over PATH only once complete. A failure on the way (a full
 * disk, a quota, an error of the caller's) removes the temporary file and
 * leaves PATH as it was: an earlier export of the same name is never
 * replaced by a cut one that looks whole.
 *
 * Where that cannot work the file is written in place, as fopen would:
 * standard output (PATH NULL or "-"), and a PATH that exists and is not a
 * regular file (a terminal, a FIFO, /dev/stdout, a symbolic link: renaming
 * over a link would replace the link, not the file it names).
 */
#ifndef RELASI_OUTFILE_H
#define RELASI_OUTFILE_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rl_outfile {
	FILE *f;          /* write here; NULL once committed or aborted */
	char *path;       /* the target (malloc'd); NULL for standard output */
	char *tmp;        /* the temporary beside it (malloc'd); NULL when in place */
	int close_it;     /* f is ours to close (not stdout) */
};

/*
 * Open PATH for writing. mode: the new file's permissions before the
 * umask (0666 as fopen, 0600 for what holds private figures). On success
 * o->f is ready; RL_EIO naming PATH if the temporary (or PATH, in place)
 * cannot be created, RL_ENOMEM. On failure *o holds nothing to free.
 */
int rl_outfile_open(struct rl_outfile *o, const char *path, int mode);

/*
 * Finish: flush, sync and close, then rename the temporary over PATH.
 * RL_EIO naming PATH and the system's reason if any of it fails (what
 * the caller wrote before is checked too: a write error sticks to the
 * stream); the temporary is then removed and PATH is unchanged. Either
 * way *o is released. Standard output is flushed, not closed.
 */
int rl_outfile_commit(struct rl_outfile *o);

/*
 * Give up: close and remove the temporary; PATH is unchanged (a file
 * written in place keeps what was written). Releases *o; safe on an
 * outfile already committed or aborted, and on a zeroed one.
 */
void rl_outfile_abort(struct rl_outfile *o);

/* The file's name for messages: its path, or "standard output". Valid
 * until the outfile is committed or aborted. */
const char *rl_outfile_name(const struct rl_outfile *o);

/*
 * May PATH be replaced by a rename? RL_OK when nothing is there or a
 * regular file is; otherwise RL_EINVALID naming PATH and what it is. For
 * the writers whose file must be made whole under its name and cannot be
 * written in place (a bundle, a backup: renaming over /dev/stdout would
 * replace the system's link with a file, over a link the link itself).
 */
int rl_outfile_replaceable(const char *path);

#ifdef __cplusplus
}
#endif

#endif
