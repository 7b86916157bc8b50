/*
 * lsan_roots.c — linked into every program of the sanitizer build
 * (RELASI_SANITIZE, CMakeLists.txt), nowhere else: it makes the leak check
 * at exit cheaper and stricter.
 *
 * Why: LeakSanitizer treats the writable data of every loaded module as
 * roots. With the runtime linked statically, the program's own .bss
 * includes the runtime's stack depot, ~9 MB that no program touches, and
 * LeakSanitizer reads all of it at every exit: one page fault per page,
 * ~30 ms per process on the project's machine, a third of a short CLI
 * command's time under ASan (`relasi account list` 83-99 -> 56-61 ms).
 *
 * So scripts/test.sh runs the suite with LSAN_OPTIONS=use_globals=0, and
 * this file gives back, as root regions, the writable data of the shared
 * libraries that keep memory until exit by design: libc (stdio buffers,
 * time zone and NSS state), libstdc++ (its exception pool, loaded by a
 * dependency of libarchive) and libgit2 (its global state). What they keep
 * is theirs, not a leak of ours. Only those three: LeakSanitizer reads
 * /proc/self/maps again for every root region, at every exit (registering
 * all twenty libraries of the sanitized relasi spent ~25 ms there, in a
 * profile). A library missing from the list shows up as a leak report,
 * never as a leak missed.
 *
 * The data of the program and of every other library is not a root:
 * anything our code, or SQLite, mbedTLS and the rest, still holds only
 * from a global at exit is reported. That is stricter than the default, never
 * looser: a pointer kept on the stack, in a register or in thread-local
 * storage is still a root, as before.
 *
 * The regions are registered by an atexit handler, so that a library
 * loaded after start-up is covered too; it was registered after the
 * runtime's own, so it runs before the leak check.
 */
#define _GNU_SOURCE
#include <link.h>
#include <stdlib.h>
#include <string.h>

#include <sanitizer/lsan_interface.h>

static const char *const keepers[] = { "libc.so.", "libstdc++.so.", "libgit2.so." };

static int keeps_memory(const char *path)
{
	const char *base = strrchr(path, '/');
	size_t i;

	base = base ? base + 1 : path;
	for (i = 0; i < sizeof(keepers) / sizeof(keepers[0]); i++)
		if (strncmp(base, keepers[i], strlen(keepers[i])) == 0)
			return 1;
	return 0;
}

static int register_module(struct dl_phdr_info *info, size_t size, void *unused)
{
	int i;

	(void)size;
	(void)unused;
	if (!info->dlpi_name || !keeps_memory(info->dlpi_name))
		return 0;
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W) && ph->p_memsz)
			__lsan_register_root_region((const void *)(info->dlpi_addr + ph->p_vaddr),
						    ph->p_memsz);
	}
	return 0;
}

static void register_shared_libraries(void)
{
	dl_iterate_phdr(register_module, NULL);
}

__attribute__((constructor)) static void lsan_roots_install(void)
{
	atexit(register_shared_libraries);
}
