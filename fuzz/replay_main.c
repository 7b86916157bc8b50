/*
 * replay_main.c — the main() that fuzz targets are linked with in normal
 * builds (gcc, or clang with ASan/UBSan): it runs LLVMFuzzerTestOneInput on
 * every file of the corpus directories (or single files) named on the
 * command line, in name order, so ctest (fuzz.<name>) replays the committed
 * corpus — seeds and the regression inputs of every bug the fuzzers found.
 *
 * A target reports a broken promise by aborting; this driver only fails on
 * its own problems: no arguments, an unreadable file, an empty directory.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Corpus files are small seeds; anything bigger is a mistake. */
#define REPLAY_MAX_FILE (16 * 1024 * 1024)

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	long len;
	int rc = -1;

	if (!f) {
		fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || len > REPLAY_MAX_FILE ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "replay: cannot size %s\n", path);
		goto done;
	}
	/* An exact-size buffer, like libFuzzer's, so ASan sees reads past the end. */
	if (!(buf = malloc(len ? (size_t)len : 1)) ||
	    (len && fread(buf, 1, (size_t)len, f) != (size_t)len)) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		goto done;
	}
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	rc = 0;
done:
	free(buf);
	fclose(f);
	return rc;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir, long *count)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0, i;
	int rc = 0;

	if (!d) {
		fprintf(stderr, "replay: cannot open %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap ? cap * 2 : 64) * sizeof(*names));
			if (!nn) {
				rc = -1;
				break;
			}
			names = nn;
			cap = cap ? cap * 2 : 64;
		}
		{
			size_t sz = strlen(dir) + strlen(e->d_name) + 2;
			if (!(names[n] = malloc(sz))) {
				rc = -1;
				break;
			}
			snprintf(names[n], sz, "%s/%s", dir, e->d_name);
		}
		n++;
	}
	closedir(d);
	if (rc == 0 && n == 0) {
		fprintf(stderr, "replay: %s holds no inputs\n", dir);
		rc = -1;
	}
	if (rc == 0)
		qsort(names, n, sizeof(*names), cmp_names);
	for (i = 0; i < n; i++) {
		if (rc == 0) {
			if (run_file(names[i]) < 0)
				rc = -1;
			else
				(*count)++;
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	long count = 0;
	int i;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
		return 2;
	}
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++) {
		struct stat sb;
		int rc;
		if (stat(argv[i], &sb) != 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (S_ISDIR(sb.st_mode))
			rc = run_dir(argv[i], &count);
		else if ((rc = run_file(argv[i])) == 0)
			count++;
		if (rc < 0)
			return 1;
	}
	printf("replayed %ld input%s\n", count, count == 1 ? "" : "s");
	return 0;
}
