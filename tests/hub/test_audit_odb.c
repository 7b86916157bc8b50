/*
 * test_audit_odb.c — hub/audit_odb.c, the audit writer's object buffer, on
 * a real bare repository: objects written through it are readable through
 * it and absent from audit.git until a flush; a flush writes exactly one
 * pack (nothing loose), which a fresh libgit2 handle and stock git (when
 * installed: verify-pack, fsck) read back byte for byte — objects of every
 * size class of the pack header (0, 15, 16, 2047, 2048 bytes, and past
 * 2^18), of each type; an empty buffer writes nothing; objects already in
 * audit.git are read through, not copied; a half-written pack left by a
 * killed writer is removed.
 */
#include "audit_odb.h"
#include "backup.h"
#include "check.h"
#include "hub.h"
#include "relasi/error.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const size_t sizes[] = { 0, 1, 15, 16, 127, 128, 2047, 2048, 300000, 3u << 20 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static int count_ext(const char *gitdir, const char *ext)
{
	char path[4300];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/objects/pack", gitdir);
	if (!(d = opendir(path)))
		return 0;
	while ((e = readdir(d)))
		if (strlen(e->d_name) > strlen(ext) &&
		    strcmp(e->d_name + strlen(e->d_name) - strlen(ext), ext) == 0)
			n++;
	closedir(d);
	return n;
}

static long count_loose(const char *gitdir)
{
	char path[4300];
	struct dirent *e;
	DIR *d;
	long n = 0;
	int xx;

	for (xx = 0; xx < 256; xx++) {
		snprintf(path, sizeof(path), "%s/objects/%02x", gitdir, xx);
		if (!(d = opendir(path)))
			continue;
		while ((e = readdir(d)))
			n += e->d_name[0] != '.';
		closedir(d);
	}
	return n;
}

static int stock_git_ok(const char *gitdir)
{
	char cmd[4600];

	if (system("git --version >/dev/null 2>&1") != 0)
		return 1;               /* stock git not installed: libgit2's reads are the check */
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && for i in objects/pack/*.idx; do git verify-pack \"$i\" || exit 1; "
		 "done >/dev/null 2>&1 && git fsck --strict --no-dangling >/dev/null 2>&1", gitdir);
	return system(cmd) == 0;
}

int main(void)
{
	char tmpl[] = "/tmp/relasi-audit-odb-XXXXXX", gitdir[4200];
	git_repository *repo = NULL, *fresh = NULL, *view;
	hub_audit_odb *b = NULL;
	git_oid ids[NSIZES], tid, cid, old_id;
	git_treebuilder *tb = NULL;
	git_tree *tree = NULL;
	git_signature *sig = NULL;
	git_odb *odb = NULL;
	unsigned char *data;
	size_t i, held;
	int pass;

	git_libgit2_init();
	if (!mkdtemp(tmpl) || !(data = malloc(sizes[NSIZES - 1])))
		return 1;
	for (i = 0; i < sizes[NSIZES - 1]; i++)      /* not too compressible */
		data[i] = (unsigned char)((i * 2654435761u) >> 13);
	snprintf(gitdir, sizeof(gitdir), "%s/audit.git", tmpl);
	CHECK(git_repository_init(&repo, gitdir, 1) == 0);
	/* One object already in audit.git (loose, as an older hub wrote). */
	CHECK(git_blob_create_from_buffer(&old_id, repo, "older\n", 6) == 0);
	CHECK_EQ_INT(count_loose(gitdir), 1);

	CHECK(hub_audit_odb_new(&b, repo) == 0);
	view = hub_audit_odb_repo(b);
	CHECK_EQ_INT(hub_audit_odb_count(b), 0);
	CHECK(hub_audit_odb_flush(b) == 0);             /* nothing held: nothing written */
	CHECK_EQ_INT(count_ext(gitdir, ".idx"), 0);

	for (i = 0; i < NSIZES; i++)
		CHECK(git_blob_create_from_buffer(&ids[i], view, data, sizes[i]) == 0);
	/* Held objects read back whole, NUL after them (a fresh view's cache is
	 * empty: the read goes to the buffer). */
	for (i = 0, pass = 1; i < NSIZES; i++) {
		git_odb_object *o = NULL;
		CHECK(git_repository_odb(&odb, view) == 0);
		pass &= git_odb_read(&o, odb, &ids[i]) == 0 && git_odb_object_size(o) == sizes[i] &&
			((const char *)git_odb_object_data(o))[sizes[i]] == '\0';
		git_odb_object_free(o);
		git_odb_free(odb);
		odb = NULL;
	}
	CHECK(pass);
	/* The same object twice is held once; one audit.git has is not copied. */
	CHECK(git_blob_create_from_buffer(&tid, view, data, sizes[3]) == 0);
	CHECK(git_blob_create_from_buffer(&tid, view, "older\n", 6) == 0);
	CHECK_EQ_INT(hub_audit_odb_count(b), NSIZES);
	CHECK(git_treebuilder_new(&tb, view, NULL) == 0);
	for (i = 0; i < NSIZES; i++) {
		char name[16];
		snprintf(name, sizeof(name), "b%02zu", i);
		CHECK(git_treebuilder_insert(NULL, tb, name, &ids[i], GIT_FILEMODE_BLOB) == 0);
	}
	CHECK(git_treebuilder_insert(NULL, tb, "older", &old_id, GIT_FILEMODE_BLOB) == 0);
	CHECK(git_treebuilder_write(&tid, tb) == 0);
	CHECK(git_tree_lookup(&tree, view, &tid) == 0);
	CHECK(git_signature_new(&sig, "relasi-hub", "hub@relasi", 1764900000, 0) == 0);
	CHECK(git_commit_create(&cid, view, NULL, sig, sig, NULL, "objects\n", tree, 0, NULL) == 0);
	held = hub_audit_odb_count(b);
	CHECK_EQ_INT(held, NSIZES + 2);
	CHECK(hub_audit_odb_bytes(b) > sizes[NSIZES - 1] + sizes[NSIZES - 2]);

	/* Held: readable through the view, not in audit.git. */
	CHECK(git_repository_odb(&odb, repo) == 0);
	CHECK(!git_odb_exists(odb, &cid) && !git_odb_exists(odb, &ids[0]));
	git_odb_free(odb);
	odb = NULL;
	CHECK_EQ_INT(count_ext(gitdir, ".idx"), 0);

	CHECK(hub_audit_odb_flush(b) == 0);
	CHECK_EQ_INT(hub_audit_odb_count(b), 0);
	CHECK_EQ_INT(hub_audit_odb_bytes(b), 0);
	CHECK_EQ_INT(count_ext(gitdir, ".idx"), 1);
	CHECK_EQ_INT(count_ext(gitdir, ".pack"), 1);
	CHECK_EQ_INT(count_loose(gitdir), 1);          /* the older object only */
	/* Still readable through the view, now from the pack, with a NUL after
	 * the data as libgit2's own backends give it. */
	for (i = 0, pass = 1; i < NSIZES; i++) {
		git_blob *bl = NULL;
		pass &= git_blob_lookup(&bl, view, &ids[i]) == 0 &&
			(size_t)git_blob_rawsize(bl) == sizes[i] &&
			memcmp(git_blob_rawcontent(bl), data, sizes[i]) == 0 &&
			((const char *)git_blob_rawcontent(bl))[sizes[i]] == '\0';
		git_blob_free(bl);
	}
	CHECK(pass);
	hub_audit_odb_free(b);
	b = NULL;

	/* A fresh handle reads every object back, byte for byte. */
	CHECK(git_reference_create(NULL, repo, "refs/heads/main", &cid, 1, "test") == 0);
	CHECK(git_repository_open_bare(&fresh, gitdir) == 0);
	for (i = 0, pass = 1; i < NSIZES; i++) {
		git_blob *bl = NULL;
		pass &= git_blob_lookup(&bl, fresh, &ids[i]) == 0 &&
			(size_t)git_blob_rawsize(bl) == sizes[i] &&
			memcmp(git_blob_rawcontent(bl), data, sizes[i]) == 0;
		git_blob_free(bl);
	}
	CHECK(pass);
	{
		git_commit *c = NULL;
		git_tree *t = NULL;
		CHECK(git_commit_lookup(&c, fresh, &cid) == 0);
		CHECK(c && git_commit_tree(&t, c) == 0);
		CHECK(t && git_tree_entrycount(t) == NSIZES + 1);
		CHECK(c && strcmp(git_commit_message(c), "objects\n") == 0);
		git_tree_free(t);
		git_commit_free(c);
	}
	CHECK(stock_git_ok(gitdir));

	/* A second buffer over the same repository adds a second pack; what a
	 * writer killed mid-pack left is removed first. */
	{
		char stale[2][4400];
		FILE *f;
		snprintf(stale[0], sizeof(stale[0]), "%s/objects/pack/tmp_audit_pack_dead", gitdir);
		snprintf(stale[1], sizeof(stale[1]), "%s/objects/pack/pack_git2_dead", gitdir);
		for (i = 0; i < 2; i++) {
			CHECK((f = fopen(stale[i], "w")) != NULL);
			if (f)
				fclose(f);
		}
		CHECK(hub_audit_odb_new(&b, fresh) == 0);
		CHECK(access(stale[0], F_OK) != 0 && access(stale[1], F_OK) != 0);
	}
	CHECK(git_blob_create_from_buffer(&tid, hub_audit_odb_repo(b), data, sizes[3]) == 0);
	CHECK_EQ_INT(hub_audit_odb_count(b), 0);        /* in the first pack already */
	CHECK(git_blob_create_from_buffer(&tid, hub_audit_odb_repo(b), "new\n", 4) == 0);
	CHECK_EQ_INT(hub_audit_odb_count(b), 1);
	CHECK(hub_audit_odb_flush(b) == 0);
	CHECK_EQ_INT(count_ext(gitdir, ".idx"), 2);
	hub_audit_odb_free(b);
	CHECK(stock_git_ok(gitdir));

	git_signature_free(sig);
	git_tree_free(tree);
	git_treebuilder_free(tb);
	git_repository_free(fresh);
	git_repository_free(repo);
	free(data);
	hub_rmtree(tmpl);
	git_libgit2_shutdown();
	CHECK_DONE();
}
