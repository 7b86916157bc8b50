/*
 * failshim.c — an LD_PRELOAD shim that makes one allocation, or one write,
 * fail, for scripts/oomtest.py (testing the real programs as SQLite tests
 * its own: every allocation or write in turn fails once, and each run must
 * end with a documented exit code, a message, and its data whole).
 *
 *   RELASI_FAIL_KIND=malloc   (the default) count malloc, calloc and
 *                             realloc together; the failing one returns NULL
 *                             with ENOMEM
 *   RELASI_FAIL_KIND=io       count write, pwrite, pwrite64, writev, fsync,
 *                             fdatasync and ftruncate on descriptors above 2
 *                             (never stdin, stdout or stderr: the message
 *                             must get out); the failing one returns -1
 *                             with EIO, or ENOSPC with RELASI_FAIL_ERRNO=
 *                             ENOSPC (a full disk). A socket's write counts
 *                             too: a network that fails mid-write. stdio's
 *                             own writes do not pass through these symbols.
 *   RELASI_FAIL_AT=N          the Nth counted call fails (from 1); every
 *                             other call succeeds
 *   RELASI_FAIL_COUNT=FILE    at exit, the number of counted calls is
 *                             written there (how many runs a command needs)
 *   RELASI_FAIL_ARM=1         count only from the first SIGUSR2 on: N and the
 *                             count at exit are of the calls after it. For a
 *                             server (relasi-hub serve): its start is not
 *                             what is tested, one session is. The calls of
 *                             every thread count, so which one fails depends
 *                             on their timing.
 *
 * Not linked into anything: built as a module next to the programs (only
 * without the sanitizers, whose allocator would not be replaced). A test
 * tool, not a mock: the program under it is the real one.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);

enum { KIND_UNREAD, KIND_MALLOC, KIND_IO, KIND_DONE };

static int kind = KIND_UNREAD;
static long fail_at = -1;        /* -1: never */
static int fail_errno = EIO;
static long calls;               /* atomically: a server's threads count too */
static long armed_at = -1;       /* the count at SIGUSR2; -2: waiting for it; -1: not armed */

static void arm(int sig)
{
	(void)sig;
	if (__atomic_load_n(&armed_at, __ATOMIC_SEQ_CST) == -2)
		__atomic_store_n(&armed_at, __atomic_load_n(&calls, __ATOMIC_SEQ_CST),
				 __ATOMIC_SEQ_CST);
}

/* getenv and strtol allocate nothing: safe to call from malloc, and from
 * the constructor, which runs before main (sigaction allocates nothing). */
static void read_env(void)
{
	const char *k = getenv("RELASI_FAIL_KIND"), *at = getenv("RELASI_FAIL_AT");
	const char *e = getenv("RELASI_FAIL_ERRNO"), *armed = getenv("RELASI_FAIL_ARM");

	fail_at = at && *at ? strtol(at, NULL, 10) : -1;
	fail_errno = e && strcmp(e, "ENOSPC") == 0 ? ENOSPC : EIO;
	if (armed && strcmp(armed, "1") == 0) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = arm;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGUSR2, &sa, NULL);
		armed_at = -2;
	}
	kind = k && strcmp(k, "io") == 0 ? KIND_IO : KIND_MALLOC;
}

__attribute__((constructor)) static void setup(void)
{
	if (kind == KIND_UNREAD)
		read_env();
}

/* Is this counted call of kind k the one to fail? */
static int fail_now(int k)
{
	long n, base;

	if (kind == KIND_UNREAD)        /* an allocation before the constructor */
		read_env();
	if (kind != k)
		return 0;
	n = __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
	base = __atomic_load_n(&armed_at, __ATOMIC_SEQ_CST);
	if (base == -2)
		return 0;
	return n - (base < 0 ? 0 : base) == fail_at;
}

void *malloc(size_t n)
{
	if (fail_now(KIND_MALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
	if (fail_now(KIND_MALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
	if (fail_now(KIND_MALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_realloc(p, n);
}

/* The real function, found once (dlsym takes no lock we could hold here). */
#define REAL(name) \
	static __typeof__(name) *real_##name; \
	if (!real_##name) \
		real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

#define FAIL_IO(fd) \
	do { \
		if ((fd) > 2 && fail_now(KIND_IO)) { \
			errno = fail_errno; \
			return -1; \
		} \
	} while (0)

ssize_t write(int fd, const void *buf, size_t n)
{
	REAL(write);
	FAIL_IO(fd);
	return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	REAL(pwrite);
	FAIL_IO(fd);
	return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	REAL(pwrite64);
	FAIL_IO(fd);
	return real_pwrite64(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	REAL(writev);
	FAIL_IO(fd);
	return real_writev(fd, iov, cnt);
}

int fsync(int fd)
{
	REAL(fsync);
	FAIL_IO(fd);
	return real_fsync(fd);
}

int fdatasync(int fd)
{
	REAL(fdatasync);
	FAIL_IO(fd);
	return real_fdatasync(fd);
}

int ftruncate(int fd, off_t len)
{
	REAL(ftruncate);
	FAIL_IO(fd);
	return real_ftruncate(fd, len);
}

/* The count, written at exit without stdio (which allocates) and with the
 * real write (this one would count it). */
__attribute__((destructor)) static void write_count(void)
{
	const char *path = getenv("RELASI_FAIL_COUNT");
	long base = __atomic_load_n(&armed_at, __ATOMIC_SEQ_CST);
	long n = __atomic_load_n(&calls, __ATOMIC_SEQ_CST);
	char buf[32];
	int fd, len;

	if (!path || !*path)
		return;
	len = snprintf(buf, sizeof(buf), "%ld\n", base == -2 ? 0 : n - (base < 0 ? 0 : base));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return;
	kind = KIND_DONE;               /* counts nothing from here on */
	if (write(fd, buf, (size_t)len) < 0) {
		/* nothing to do: the driver sees no count */
	}
	close(fd);
}
