/*
 * archive_lazy.c — dlopen() of libarchive for the bundle code
 * (archive_lazy.h says why). RL_LIBARCHIVE_SONAME comes from the build
 * (CMakeLists.txt: the soname of the libarchive it compiled against).
 */
#include "archive_lazy.h"
#include "relasi/error.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

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
