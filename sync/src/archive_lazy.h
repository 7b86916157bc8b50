/*
 * archive_lazy.h — libarchive, loaded when a bundle is first read or written.
 *
 * Why: libarchive brings libxml2, ICU and libstdc++ with it (Debian builds
 * it with XAR support); mapping and relocating them cost every `relasi`
 * command about 7 ms of its ~20 ms, though only `relasi bundle` uses them
 * (bench/bench_client.py). So relasi_sync does not link libarchive; the
 * bundle code calls it through this table, filled by dlopen() once per
 * process. The hub links libarchive itself (backups, restores); the table
 * then finds the same, already loaded library.
 *
 * Each member has the exact type of the libarchive function it names
 * (__typeof__ of the declaration in <archive.h>), so a call through the
 * table is checked by the compiler like a direct call.
 */
#ifndef RELASI_ARCHIVE_LAZY_H
#define RELASI_ARCHIVE_LAZY_H

#include <archive.h>
#include <archive_entry.h>

#define RL_ARCHIVE_FUNCTIONS(X) \
	X(archive_error_string) \
	X(archive_errno) \
	X(archive_write_new) \
	X(archive_write_set_format_pax_restricted) \
	X(archive_write_add_filter_zstd) \
	X(archive_write_add_filter_gzip) \
	X(archive_write_open_fd) \
	X(archive_write_header) \
	X(archive_write_data) \
	X(archive_write_close) \
	X(archive_write_free) \
	X(archive_read_new) \
	X(archive_read_support_filter_gzip) \
	X(archive_read_support_filter_zstd) \
	X(archive_read_support_filter_none) \
	X(archive_read_support_format_tar) \
	X(archive_read_open_fd) \
	X(archive_read_open) \
	X(archive_read_next_header) \
	X(archive_read_data) \
	X(archive_read_free) \
	X(archive_entry_new) \
	X(archive_entry_free) \
	X(archive_entry_set_pathname) \
	X(archive_entry_set_filetype) \
	X(archive_entry_set_perm) \
	X(archive_entry_set_size) \
	X(archive_entry_set_mtime) \
	X(archive_entry_pathname) \
	X(archive_entry_filetype) \
	X(archive_entry_size) \
	X(archive_entry_size_is_set)

struct rl_archive {
#define RL_ARCHIVE_MEMBER(name) __typeof__(&name) name;
	RL_ARCHIVE_FUNCTIONS(RL_ARCHIVE_MEMBER)
#undef RL_ARCHIVE_MEMBER
};

/*
 * Load libarchive (once per process; thread-safe) and set *out to the
 * table, which stays valid for the life of the process. Returns RL_OK, or
 * RL_ERROR when the library or one of its functions cannot be found (the
 * message names which; libarchive13 is then not installed).
 */
int rl_archive_load(const struct rl_archive **out);

#endif
