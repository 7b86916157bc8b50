/*
 * fsutil.c — small file-system helpers for backups and restores: removing a
 * private temporary tree, durable renames and new directory trees, atomic
 * small-file writes.
 */
/* nftw() is X/Open. */
#define _XOPEN_SOURCE 700

#include "backup.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "relasi/error.h"

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT)
		return -1;
	return 0;
}

int hub_rmtree(const char *path)
{
	struct stat sb;

	if (lstat(path, &sb) != 0)
		return errno == ENOENT ? RL_OK
		       : rl_error_set(RL_EIO, "cannot remove '%s': %s", path, strerror(errno));
	/* FTW_PHYS: a symbolic link is removed, never followed. */
	if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		return rl_error_set(RL_EIO, "cannot remove '%s': %s", path, strerror(errno));
	return RL_OK;
}

int hub_fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return rl_error_set(RL_EIO, "cannot sync '%s': %s", path, strerror(e));
	}
	close(fd);
	return RL_OK;
}

/* nftw() passes no context: the directory whose sync failed, for the message. */
static char sync_failed[4096];

static int fsync_dir(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	int fd, e;

	(void)sb;
	(void)ftw;
	if (flag != FTW_DP)
		return 0;
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 || fsync(fd) != 0) {
		e = errno;
		if (fd >= 0)
			close(fd);
		snprintf(sync_failed, sizeof(sync_failed), "%s", path);
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

int hub_fsync_tree(const char *path)
{
	int rc;

	sync_failed[0] = '\0';
	/* FTW_DEPTH: a directory after its entries, so each sync covers names
	 * that will not change again; FTW_PHYS: links are not followed. */
	if ((rc = nftw(path, fsync_dir, 16, FTW_DEPTH | FTW_PHYS)) != 0)
		return rl_error_set(RL_EIO, "cannot sync '%s': %s", sync_failed[0] ? sync_failed : path,
				    rc < 0 ? strerror(errno) : "walk stopped");
	return RL_OK;
}

int hub_dirname(char *buf, size_t len, const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;

	if (slash && n == 0)
		n = 1;                        /* "/name": the root */
	if (!slash)
		return snprintf(buf, len, ".") < (int)len ? RL_OK
		       : rl_error_set(RL_EINVALID, "path too long");
	if (n >= len)
		return rl_error_set(RL_EINVALID, "path too long: %s", path);
	memcpy(buf, path, n);
	buf[n] = '\0';
	return RL_OK;
}

int hub_write_atomic(const char *path, const char *data, size_t len, int mode)
{
	char tmp[4096], dir[4096];
	size_t off = 0;
	int fd, error = RL_OK;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >= sizeof(tmp) ||
	    (error = hub_dirname(dir, sizeof(dir), path)) < 0)
		return error < 0 ? error : rl_error_set(RL_EINVALID, "path too long: %s", path);
	if ((fd = mkstemp(tmp)) < 0)
		return rl_error_set(RL_EIO, "cannot create '%s': %s", tmp, strerror(errno));
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			error = rl_error_set(RL_EIO, "cannot write '%s': %s", tmp, strerror(errno));
			break;
		}
		off += (size_t)w;
	}
	if (error == 0 && (fchmod(fd, (mode_t)mode) != 0 || fsync(fd) != 0))
		error = rl_error_set(RL_EIO, "cannot write '%s': %s", tmp, strerror(errno));
	if (close(fd) != 0 && error == 0)
		error = rl_error_set(RL_EIO, "cannot write '%s': %s", tmp, strerror(errno));
	if (error == 0 && rename(tmp, path) != 0)
		error = rl_error_set(RL_EIO, "cannot rename '%s' to '%s': %s", tmp, path,
				     strerror(errno));
	if (error < 0) {
		unlink(tmp);
		return error;
	}
	return hub_fsync_path(dir);
}

void hub_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}
