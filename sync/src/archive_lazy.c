/*
 * archive_lazy.c — dlopen() of libarchive for the bundle code
 * (archive_lazy.h says why). RL_LIBARCHIVE_SONAME comes from the build
 * (CMakeLists.txt: the soname of the libarchive it compiled against).
 */
#include "archive_lazy.h"
#include "relasi/error.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "relasi/bundle.h"

#ifndef RL_LIBARCHIVE_SONAME
#define RL_LIBARCHIVE_SONAME "libarchive.so.13"
#endif

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static struct rl_archive table;
static char load_error[256];

static void load(void)
{
	/* Never closed: the table lives as long as the process. */
	void *lib = dlopen(RL_LIBARCHIVE_SONAME, RTLD_NOW | RTLD_LOCAL);

	if (!lib) {
		snprintf(load_error, sizeof(load_error), "cannot load %s (bundles need libarchive): %s",
			 RL_LIBARCHIVE_SONAME, dlerror());
		return;
	}
	/* dlsym returns void *; POSIX guarantees it converts to a function
	 * pointer, which ISO C does not say, hence the memcpy-free cast
	 * through the member's own type. */
#define RL_ARCHIVE_BIND(name) \
	if (!(*(void **)&table.name = dlsym(lib, #name))) { \
		snprintf(load_error, sizeof(load_error), "%s has no %s", \
			 RL_LIBARCHIVE_SONAME, #name); \
		return; \
	}
	RL_ARCHIVE_FUNCTIONS(RL_ARCHIVE_BIND)
#undef RL_ARCHIVE_BIND
}

int rl_archive_load(const struct rl_archive **out)
{
	*out = NULL;
	if (pthread_once(&load_once, load) != 0)
		return rl_error_set(RL_ERROR, "loading libarchive: pthread_once failed");
	if (load_error[0])
		return rl_error_set(RL_ERROR, "%s", load_error);
	*out = &table;
	return RL_OK;
}

int rl_archive_writer_open(int fd, struct archive **out, const char **filter)
{
	const struct rl_archive *ar;
	struct archive *a;
	int error, rc;

	*out = NULL;
	if ((error = rl_archive_load(&ar)) < 0)
		return error;
	if (!(a = ar->archive_write_new()))
		return rl_error_set(RL_ENOMEM, "out of memory");
	*filter = "zstd";
	rc = ar->archive_write_set_format_pax_restricted(a);
	if (rc == ARCHIVE_OK)
		rc = ar->archive_write_add_filter_zstd(a);
	/* libarchive 3.6 frees the zstd filter's data when its compressor
	 * cannot be allocated but leaves the filter pointing at it, so
	 * archive_write_free would free it again (scripts/oomtest.py found
	 * the abort): out of memory there, the writer is left, not freed. */
	if (rc == ARCHIVE_FATAL && ar->archive_errno(a) == ENOMEM)
		return rl_error_set(RL_ENOMEM, "out of memory");
	if (rc != ARCHIVE_OK) {
		/* ARCHIVE_WARN means "through an external program": not that. */
		ar->archive_write_free(a);
		if (!(a = ar->archive_write_new()))
			return rl_error_set(RL_ENOMEM, "out of memory");
		*filter = "gzip";
		rc = ar->archive_write_set_format_pax_restricted(a);
		if (rc == ARCHIVE_OK)
			rc = ar->archive_write_add_filter_gzip(a);
	}
	if (rc != ARCHIVE_OK || ar->archive_write_open_fd(a, fd) != ARCHIVE_OK) {
		error = rl_error_set(RL_EIO, "cannot start the archive: %s",
				     ar->archive_error_string(a));
		ar->archive_write_free(a);
		return error;
	}
	*out = a;
	return RL_OK;
}
