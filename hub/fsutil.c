/*
 * fsutil.c — small file-system helpers for backups and restores: removing a
 * private temporary tree, locked staging directories and the removal of
 * those a killed process left, durable renames and new directory trees,
 * atomic small-file writes.
 */
/* nftw() is X/Open. */
#define _XOPEN_SOURCE 700

#include "backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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

/* Is fd still the directory named name in dfd (not removed, not replaced)? */
static int same_entry(int dfd, const char *name, int fd)
{
	struct stat a, b;

	return fstatat(dfd, name, &a, AT_SYMLINK_NOFOLLOW) == 0 && fstat(fd, &b) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int hub_stage_create(char *tmpl, int *lockfd)
{
	size_t len = strlen(tmpl);
	char *copy;
	int tries, fd = -1, error = RL_OK;

	*lockfd = -1;
	if (len < 6 || strcmp(tmpl + len - 6, "XXXXXX") != 0 || !(copy = strdup(tmpl)))
		return rl_error_set(len < 6 ? RL_EINVALID : RL_ENOMEM, "bad staging template '%s'",
				    tmpl);
	for (tries = 0; tries < 8; tries++) {
		memcpy(tmpl, copy, len + 1);
		if (!mkdtemp(tmpl)) {
			error = rl_error_set(RL_EIO, "cannot create '%s': %s", copy, strerror(errno));
			goto cleanup;
		}
		if ((fd = open(tmpl, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
			error = rl_error_set(RL_EIO, "cannot open '%s': %s", tmpl, strerror(errno));
			rmdir(tmpl);
			goto cleanup;
		}
		/* Blocking: a sweeper that locked it first holds it only to remove
		 * it. Between mkdtemp and here another process's sweep may have
		 * taken it for stale and removed it: then make another. */
		while (flock(fd, LOCK_EX) != 0) {
			if (errno != EINTR) {
				error = rl_error_set(RL_EIO, "cannot lock '%s': %s", tmpl, strerror(errno));
				close(fd);
				fd = -1;
				rmdir(tmpl);
				goto cleanup;
			}
		}
		if (same_entry(AT_FDCWD, tmpl, fd))
			break;
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		error = rl_error_set(RL_EIO, "cannot create '%s': removed as soon as made, again and "
				     "again", copy);
cleanup:
	free(copy);
	*lockfd = fd;
	return error;
}

void hub_stage_sweep(const char *tmpl, const char *what)
{
	char parent[4096], path[4096];
	const char *prefix = strrchr(tmpl, '/') ? strrchr(tmpl, '/') + 1 : tmpl;
	size_t plen = strlen(prefix) - 6;   /* without the XXXXXX */
	struct dirent *d;
	DIR *dh;

	if (strlen(prefix) < 6 || hub_dirname(parent, sizeof(parent), tmpl) < 0 ||
	    !(dh = opendir(parent)))
		return;     /* nothing to sweep where nothing can be read */
	while ((d = readdir(dh))) {
		const char *name = d->d_name;
		int fd;

		/* Exactly the names mkdtemp makes from this template. */
		if (strlen(name) != plen + 6 || strncmp(name, prefix, plen) != 0 ||
		    strspn(name + plen, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			   "0123456789") != 6)
			continue;
		/* Not a directory, a link, another user's: not ours to remove. */
		if ((fd = openat(dirfd(dh), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
			continue;
		/* A live backup or restore holds its lock until it has removed or
		 * renamed its directory; the kernel drops a killed one's. */
		if (flock(fd, LOCK_EX | LOCK_NB) == 0 && same_entry(dirfd(dh), name, fd) &&
		    (size_t)snprintf(path, sizeof(path), "%s/%s", parent, name) < sizeof(path)) {
			if (hub_rmtree(path) == RL_OK)
				fprintf(stderr, "relasi-hub: removed '%s', left by a %s that was "
					"interrupted\n", path, what);
			else
				fprintf(stderr, "relasi-hub: warning: '%s', left by a %s that was "
					"interrupted, could not be removed: %s\n", path, what,
					rl_error_message());
		}
		close(fd);      /* after the removal: releases the lock */
	}
	closedir(dh);
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
