/*
 * failmalloc.c — an LD_PRELOAD shim that makes one allocation fail, for
 * scripts/oomtest.py (out-of-memory testing of the real programs, as
 * SQLite tests its own: every allocation in turn fails once, and each run
 * must end with a documented exit code, a message, and its data whole).
 *
 *   RELASI_FAIL_MALLOC_AT=N   the Nth call of malloc, calloc or realloc
 *                             (counted together, from 1) returns NULL with
 *                             ENOMEM; every other call succeeds
 *   RELASI_FAIL_MALLOC_COUNT=FILE  at exit, the number of calls is written
 *                             there (how many runs a command needs)
 *
 * Not linked into anything: built as a module next to the programs (only
 * without the sanitizers, whose allocator would not be replaced). A test
 * tool, not a mock: the program under it is the real one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);

static long fail_at = -2;        /* -2: not read yet; -1: never */
static long calls;

/* getenv and strtol allocate nothing: safe to call from malloc. */
static int fail_now(void)
{
	if (fail_at == -2) {
		const char *s = getenv("RELASI_FAIL_MALLOC_AT");
		fail_at = s && *s ? strtol(s, NULL, 10) : -1;
	}
	return ++calls == fail_at;
}

void *malloc(size_t n)
{
	if (fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
	if (fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
	if (fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_realloc(p, n);
}

/* The count, written without stdio (which allocates) at exit. */
__attribute__((destructor)) static void write_count(void)
{
	const char *path = getenv("RELASI_FAIL_MALLOC_COUNT");
	char buf[32];
	int fd, len;

	if (!path || !*path)
		return;
	len = snprintf(buf, sizeof(buf), "%ld\n", calls);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return;
	if (write(fd, buf, (size_t)len) < 0) {
		/* nothing to do: the driver sees no count */
	}
	close(fd);
}
