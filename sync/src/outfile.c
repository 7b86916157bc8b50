/*
 * outfile.c — a file the user named, written whole or not at all: a
 * temporary beside it, renamed into place once complete (relasi/outfile.h).
 */
#include "relasi/outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "relasi/error.h"

static void release(struct rl_outfile *o)
{
	free(o->path);
	free(o->tmp);
	o->path = o->tmp = NULL;
	o->f = NULL;
	o->close_it = 0;
}

int rl_outfile_open(struct rl_outfile *o, const char *path, int mode)
{
	struct stat st;
	size_t len = strlen(path ? path : "") + 32;
	int fd, flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;

	memset(o, 0, sizeof(*o));
	if (!path || strcmp(path, "-") == 0) {
		o->f = stdout;
		return RL_OK;
	}
	if (!(o->path = strdup(path)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		/* A device, a FIFO or a link: no temporary can stand in for it. */
		if (!(o->f = fopen(path, "w"))) {
			int e = errno;
			release(o);
			return rl_error_set(RL_EIO, "cannot write '%s': %s", path, strerror(e));
		}
		o->close_it = 1;
		return RL_OK;
	}
	if (!(o->tmp = malloc(len))) {
		release(o);
		return rl_error_set(RL_ENOMEM, "out of memory");
	}
	snprintf(o->tmp, len, "%s.tmp-%ld", path, (long)getpid());
	/* A temporary of this process id can only be a killed process's
	 * leftover (ids are unique among the living): take its place once. */
	if ((fd = open(o->tmp, flags, (mode_t)mode)) < 0 && errno == EEXIST && unlink(o->tmp) == 0)
		fd = open(o->tmp, flags, (mode_t)mode);
	if (fd < 0) {
		int e = errno;
		release(o);
		return rl_error_set(RL_EIO, "cannot write '%s': %s", path, strerror(e));
	}
	if (!(o->f = fdopen(fd, "w"))) {
		int e = errno;
		close(fd);
		unlink(o->tmp);
		release(o);
		return rl_error_set(RL_EIO, "cannot write '%s': %s", path, strerror(e));
	}
	o->close_it = 1;
	return RL_OK;
}

int rl_outfile_commit(struct rl_outfile *o)
{
	const char *name = rl_outfile_name(o);
	int error = RL_OK, e = 0;

	if (!o->f)
		return rl_error_set(RL_ERROR, "'%s' was already closed", name);
	/* A write error sticks to the stream (ferror) even when this flush
	 * has nothing left to write; errno is only the flush's. */
	errno = 0;
	if (fflush(o->f) != 0 || ferror(o->f))
		e = errno ? errno : EIO;
	else if (o->tmp && fsync(fileno(o->f)) != 0)
		e = errno;
	if (o->close_it && fclose(o->f) != 0 && !e)
		e = errno ? errno : EIO;
	o->f = NULL;
	if (!e && o->tmp && rename(o->tmp, o->path) != 0)
		e = errno;
	if (e) {
		error = rl_error_set(RL_EIO, "cannot write '%s': %s", name, strerror(e));
		if (o->tmp)
			unlink(o->tmp);
	}
	release(o);
	return error;
}

void rl_outfile_abort(struct rl_outfile *o)
{
	if (o->f && o->close_it)
		fclose(o->f);
	if (o->f && o->tmp)
		unlink(o->tmp);
	release(o);
}

int rl_outfile_replaceable(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0 || S_ISREG(st.st_mode))
		return RL_OK;              /* a missing directory is the writer's to report */
	return rl_error_set(RL_EINVALID, "'%s' is %s, not a file: give the name of a file "
			    "(it is written beside it, then renamed onto it)", path,
			    S_ISLNK(st.st_mode) ? "a symbolic link" : S_ISDIR(st.st_mode)
			    ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO"
			    : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device" : "not a file");
}

const char *rl_outfile_name(const struct rl_outfile *o)
{
	return o->path ? o->path : "standard output";
}
