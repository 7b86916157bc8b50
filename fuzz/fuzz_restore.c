/*
 * fuzz_restore.c — the hub's backup reader (hub/restore.c, hub_restore):
 * `relasi-hub restore FILE DIR` with FILE an archive from anywhere (an
 * off-site copy, a USB stick). The input is the archive file.
 *
 * Asserts:
 *  - a refusal is RL_EINVALID, RL_ETOOBIG or RL_ESTORE (the restored store
 *    failed its checks) with a message, hands out no manifest, and leaves
 *    nothing behind: no DIR, and the parent directory holds exactly what it
 *    held before (no temporary directory, no stray file, nothing written
 *    through a path or link in the archive);
 *  - a success leaves DIR holding hub.db and the manifest's members, and
 *    hands out the manifest (removed again before the next input).
 * The corpus holds a real backup of a small hub (fuzz/corpus/restore/
 * backup-*, made by `relasi-hub backup`) and hostile archives.
 */
#include "fuzz_util.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup.h"
#include "relasi/error.h"

static char parent[512], target[600], archive[512];

/* The sorted names in dir, joined by '/', into buf. */
static void list_dir(const char *dir, char *buf, size_t len)
{
	struct dirent **names;
	int n, i;
	size_t used = 0;

	buf[0] = '\0';
	n = scandir(dir, &names, NULL, alphasort);
	FZ_CHECK(n >= 0, "cannot list %s", dir);
	for (i = 0; i < n; i++) {
		if (used + strlen(names[i]->d_name) + 2 < len)
			used += (size_t)snprintf(buf + used, len - used, "%s/", names[i]->d_name);
		free(names[i]);
	}
	free(names);
}

static void remove_tree(const char *path)
{
	struct stat sb;
	DIR *d;
	struct dirent *e;
	char sub[1024];

	if (lstat(path, &sb) != 0)
		return;
	if (S_ISDIR(sb.st_mode) && (d = opendir(path))) {
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
				snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
				remove_tree(sub);
			}
		closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	char before[4096], after[4096], probe[700];
	json_t *manifest = NULL;
	struct stat sb;
	FILE *f;
	int error;

	if (!ready) {
		fz_setup_env();
		snprintf(parent, sizeof(parent), "%s/restore", fz_tmpdir());
		snprintf(target, sizeof(target), "%s/hub", parent);
		snprintf(archive, sizeof(archive), "%s/input.tar", fz_tmpdir());
		FZ_CHECK(mkdir(parent, 0700) == 0, "mkdir %s", parent);
		ready = 1;
	}
	f = fopen(archive, "wb");
	FZ_CHECK(f != NULL, "cannot write %s", archive);
	FZ_CHECK(size == 0 || fwrite(data, 1, size, f) == size, "short write");
	FZ_CHECK(fclose(f) == 0, "close");

	list_dir(parent, before, sizeof(before));
	error = hub_restore(archive, target, &manifest, NULL, NULL);
	if (error < 0) {
		FZ_CHECK(error == RL_EINVALID || error == RL_ETOOBIG || error == RL_ESTORE,
			 "undocumented error %d: %s", error, rl_error_message());
		FZ_CHECK(rl_error_message()[0] != '\0', "a refusal without a message");
		FZ_CHECK(manifest == NULL, "a refusal handed out a manifest");
		FZ_CHECK(lstat(target, &sb) != 0, "a refused restore left %s behind", target);
		list_dir(parent, after, sizeof(after));
		FZ_CHECK(strcmp(before, after) == 0, "a refused restore changed %s: '%s' -> '%s'",
			 parent, before, after);
		/* Nothing written beside the archive either (a path out of DIR). */
		list_dir(fz_tmpdir(), after, sizeof(after));
		FZ_CHECK(strstr(after, "hub.db") == NULL && strstr(after, "audit.git") == NULL,
			 "a refused restore wrote outside its directory: %s", after);
		return 0;
	}
	FZ_CHECK(json_is_object(manifest), "a restore without its manifest");
	snprintf(probe, sizeof(probe), "%s/hub.db", target);
	FZ_CHECK(lstat(probe, &sb) == 0 && S_ISREG(sb.st_mode), "restored without hub.db");
	json_decref(manifest);
	remove_tree(target);
	return 0;
}
