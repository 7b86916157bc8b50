/*
 * test_audit_pack.c — hub/audit_pack.c on real bare repositories written
 * with libgit2, the way the audit writer writes them (loose blobs, trees,
 * a line of commits): nothing is packed up to the limits (estimated, or
 * counted for a small limit); past them every
 * loose object goes into one pack and stays readable, byte for byte; past
 * the pack limit the small packs merge into a geometric series; a pack with
 * a .keep file is left alone; "all" leaves one pack; a stop request
 * changes nothing; and stock git (when installed) finds the result sound.
 */
#include "audit_pack.h"
#include "backup.h"
#include "check.h"
#include "hub.h"
#include "relasi/error.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct written {
	git_oid id[20000];
	char text[20000][40];
	size_t n;
};

static struct written w;
static git_oid head;
static int have_head;

/* One commit of `blobs` new records (blob content "record N"). */
static void commit_records(git_repository *repo, int blobs)
{
	git_treebuilder *tb = NULL;
	git_tree *tree = NULL, *ptree = NULL;
	git_commit *parent = NULL;
	git_signature *sig = NULL;
	git_oid tid, cid;
	int i;

	if (have_head) {
		git_commit_lookup(&parent, repo, &head);
		git_commit_tree(&ptree, parent);
	}
	CHECK(git_treebuilder_new(&tb, repo, ptree) == 0);
	for (i = 0; i < blobs && w.n < sizeof(w.id) / sizeof(w.id[0]); i++) {
		char name[32];
		snprintf(w.text[w.n], sizeof(w.text[0]), "record %zu\n", w.n);
		snprintf(name, sizeof(name), "r%06zu", w.n);
		CHECK(git_blob_create_from_buffer(&w.id[w.n], repo, w.text[w.n],
						  strlen(w.text[w.n])) == 0);
		CHECK(git_treebuilder_insert(NULL, tb, name, &w.id[w.n], GIT_FILEMODE_BLOB) == 0);
		w.n++;
	}
	CHECK(git_treebuilder_write(&tid, tb) == 0);
	CHECK(git_tree_lookup(&tree, repo, &tid) == 0);
	CHECK(git_signature_new(&sig, "relasi-hub", "hub@relasi", 1764900000, 0) == 0);
	{
		const git_commit *parents[1] = { parent };
		CHECK(git_commit_create(&cid, repo, "refs/heads/main", sig, sig, NULL, "records",
					tree, parent ? 1 : 0, parents) == 0);
	}
	head = cid;
	have_head = 1;
	git_signature_free(sig);
	git_tree_free(tree);
	git_tree_free(ptree);
	git_commit_free(parent);
	git_treebuilder_free(tb);
}

static long count_loose(const char *gitdir)
{
	char path[4200];
	long n = 0;
	int xx;

	for (xx = 0; xx < 256; xx++) {
		struct dirent *de;
		DIR *d;
		snprintf(path, sizeof(path), "%s/objects/%02x", gitdir, xx);
		if (!(d = opendir(path)))
			continue;
		while ((de = readdir(d)))
			if (strlen(de->d_name) == 38)
				n++;
		closedir(d);
	}
	return n;
}

/* A commit of 20 records: past a limit of 1 (counted, not estimated). */
static void fill_past_limit(git_repository *repo, const char *gitdir)
{
	commit_records(repo, 20);
	CHECK(count_loose(gitdir) > 1);
}

/* Object counts of the packs, ascending; returns how many. */
static int pack_counts(const char *gitdir, long long *out, int max)
{
	char path[4200];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/objects/pack", gitdir);
	if (!(d = opendir(path)))
		return 0;
	while ((de = readdir(d)) && n < max) {
		size_t len = strlen(de->d_name);
		unsigned char h[8 + 256 * 4];
		FILE *f;
		if (len < 5 || strcmp(de->d_name + len - 4, ".idx") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/objects/pack/%s", gitdir, de->d_name);
		if (!(f = fopen(path, "rb")))
			continue;
		if (fread(h, 1, sizeof(h), f) == sizeof(h)) {
			const unsigned char *l = h + 8 + 255 * 4;
			out[n++] = (long long)l[0] << 24 | l[1] << 16 | l[2] << 8 | l[3];
		}
		fclose(f);
	}
	closedir(d);
	for (int i = 1; i < n; i++)               /* insertion sort: a handful */
		for (int j = i; j > 0 && out[j] < out[j - 1]; j--) {
			long long t = out[j];
			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return n;
}

/* Every blob written so far reads back with its content (from a fresh
 * handle: what another process sees). */
static int all_readable(const char *gitdir)
{
	git_repository *repo = NULL;
	git_odb *odb = NULL;
	size_t i;
	int ok = 1;

	if (git_repository_open_bare(&repo, gitdir) != 0 || git_repository_odb(&odb, repo) != 0)
		return 0;
	for (i = 0; i < w.n && ok; i++) {
		git_odb_object *o = NULL;
		if (git_odb_read(&o, odb, &w.id[i]) != 0 ||
		    git_odb_object_size(o) != strlen(w.text[i]) ||
		    memcmp(git_odb_object_data(o), w.text[i], strlen(w.text[i])) != 0)
			ok = 0;
		git_odb_object_free(o);
	}
	git_odb_free(odb);
	git_repository_free(repo);
	return ok;
}

static int git_fsck_ok(const char *gitdir)
{
	char cmd[4400];

	if (system("git --version >/dev/null 2>&1") != 0)
		return 1;               /* stock git not installed: libgit2's reads above */
	snprintf(cmd, sizeof(cmd), "git -C '%s' fsck --strict --no-dangling >/dev/null 2>&1",
		 gitdir);
	return system(cmd) == 0;
}

int main(void)
{
	char tmpl[] = "/tmp/relasi-audit-pack-XXXXXX", gitdir[4200], keep[4400];
	struct hub_audit_pack_limits lim = { 0, 0, NULL };
	struct hub_audit_pack_stats st;
	git_repository *repo = NULL;
	long long counts[64];
	int npacks, i, stop = 0;
	long loose;

	git_libgit2_init();
	if (!mkdtemp(tmpl))
		return 1;
	snprintf(gitdir, sizeof(gitdir), "%s/audit.git", tmpl);
	CHECK(git_repository_init(&repo, gitdir, 1) == 0);

	/* Below the limit: nothing happens. ~600 objects, ~2 in objects/17. */
	commit_records(repo, 300);
	commit_records(repo, 298);
	loose = count_loose(gitdir);
	CHECK(loose > 590);
	CHECK(hub_audit_pack_repo(repo, 0, &lim, &st) == 0);
	CHECK_EQ_INT(st.changed, 0);
	CHECK_EQ_INT(count_loose(gitdir), loose);
	CHECK_EQ_INT(pack_counts(gitdir, counts, 64), 0);

	/* A small limit counts them all: exactly at it, still nothing. */
	lim.loose_max = loose;
	CHECK(hub_audit_pack_repo(repo, 0, &lim, &st) == 0);
	CHECK_EQ_INT(st.changed, 0);
	CHECK_EQ_INT(count_loose(gitdir), loose);

	/* A stop request: nothing written, nothing removed. */
	lim.loose_max = loose - 1;
	lim.cancel = &stop;
	stop = 1;
	CHECK(hub_audit_pack_repo(repo, 1, &lim, &st) < 0);
	CHECK(strstr(rl_error_message(), "stopped") != NULL);
	CHECK_EQ_INT(count_loose(gitdir), loose);
	CHECK_EQ_INT(pack_counts(gitdir, counts, 64), 0);
	stop = 0;

	/* One past the limit: every loose object into one pack, all readable. */
	CHECK(hub_audit_pack_repo(repo, 0, &lim, &st) == 0);
	CHECK_EQ_INT(st.changed, 1);
	CHECK_EQ_INT(st.loose_packed, loose);
	CHECK_EQ_INT(count_loose(gitdir), 0);
	CHECK_EQ_INT(pack_counts(gitdir, counts, 64), 1);
	CHECK_EQ_INT(counts[0], loose);
	CHECK_EQ_INT(st.packs, 1);
	git_repository_free(repo);        /* as audit.c does after a change */
	CHECK(git_repository_open_bare(&repo, gitdir) == 0);
	CHECK(all_readable(gitdir));
	CHECK(git_fsck_ok(gitdir));

	/* Ten more small packs; with a limit of 4 packs they merge until the
	 * series is geometric: each pack at least twice all smaller ones. */
	lim.loose_max = 1;
	lim.packs_max = 100;
	for (i = 0; i < 10; i++) {
		fill_past_limit(repo, gitdir);
		CHECK(hub_audit_pack_repo(repo, 0, &lim, &st) == 0);
		git_repository_free(repo);
		CHECK(git_repository_open_bare(&repo, gitdir) == 0);
	}
	CHECK_EQ_INT(pack_counts(gitdir, counts, 64), 11);
	lim.packs_max = 4;
	CHECK(hub_audit_pack_repo(repo, 0, &lim, &st) == 0);
	CHECK(st.packs_merged >= 2);
	npacks = pack_counts(gitdir, counts, 64);
	CHECK_EQ_INT(st.packs, npacks);
	CHECK(npacks < 11);
	{
		long long below = 0;
		for (i = 0; i < npacks; i++) {
			if (i > 0)
				CHECK(counts[i] >= 2 * below);
			below += counts[i];
		}
	}
	git_repository_free(repo);
	CHECK(git_repository_open_bare(&repo, gitdir) == 0);
	CHECK(all_readable(gitdir));
	CHECK(git_fsck_ok(gitdir));

	/* A kept pack is not merged, even by "all". */
	fill_past_limit(repo, gitdir);
	CHECK(hub_audit_pack_repo(repo, 0, &lim, &st) == 0);
	{
		DIR *d;
		struct dirent *de;
		char dir[4300];
		snprintf(dir, sizeof(dir), "%s/objects/pack", gitdir);
		d = opendir(dir);
		keep[0] = '\0';
		while (d && (de = readdir(d))) {
			size_t len = strlen(de->d_name);
			if (len > 4 && strcmp(de->d_name + len - 4, ".idx") == 0 && !keep[0])
				snprintf(keep, sizeof(keep), "%s/%.*s.keep", dir, (int)(len - 4),
					 de->d_name);
		}
		if (d)
			closedir(d);
	}
	CHECK(keep[0] != '\0');
	{
		FILE *f = fopen(keep, "w");
		CHECK(f != NULL);
		if (f)
			fclose(f);
	}
	npacks = pack_counts(gitdir, counts, 64);
	CHECK(npacks >= 2);
	CHECK(hub_audit_pack_repo(repo, 1, &lim, &st) == 0);
	CHECK_EQ_INT(pack_counts(gitdir, counts, 64), 2);     /* the kept one and the rest */
	CHECK_EQ_INT(st.packs, 2);
	CHECK(access(keep, F_OK) == 0);
	unlink(keep);

	/* "all" with no keep: one pack, nothing loose. */
	commit_records(repo, 40);
	git_repository_free(repo);
	CHECK(git_repository_open_bare(&repo, gitdir) == 0);
	CHECK(hub_audit_pack_repo(repo, 1, &lim, &st) == 0);
	CHECK_EQ_INT(count_loose(gitdir), 0);
	CHECK_EQ_INT(pack_counts(gitdir, counts, 64), 1);
	CHECK(counts[0] >= (long long)w.n);
	git_repository_free(repo);
	CHECK(all_readable(gitdir));
	CHECK(git_fsck_ok(gitdir));

	hub_rmtree(tmpl);
	git_libgit2_shutdown();
	CHECK_DONE();
}
