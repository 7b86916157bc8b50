/*
 * audit_pack.c — keeps audit.git compact (audit_pack.h says what it
 * promises).
 *
 * Why: the writer (audit.c) adds each record's blob and the four fan-out
 * trees above it as loose objects, one file each. A hub that took in the
 * generated dataset held ~68,000 loose files (274 MB on disk for 29 MB of
 * data) at a fifth of its size; creating them was the larger part of the
 * writer's CPU (ext4 inode allocation), and every backup copied them one
 * by one. git itself would run `gc --auto`; libgit2 has no gc, so this is
 * its small equivalent, built on git_packbuilder:
 *
 *   - loose objects past HUB_AUDIT_LOOSE_MAX (estimated from objects/17,
 *     times 256, as git estimates) go into one new pack, with deltas
 *     between them (successive versions of one fan-out tree differ by one
 *     entry);
 *   - past HUB_AUDIT_PACKS_MAX packs, the small ones are merged
 *     geometrically: sorted by object count, the smallest packs are merged
 *     up to the last one that is smaller than twice all the packs below it.
 *     What stays is a series in which each pack is at least twice the sum
 *     of the smaller ones (at most log2 of the object count of packs), and
 *     an object is rewritten O(log n) times over the life of the hub rather
 *     than at every merge.
 *
 * Readers need nothing: libgit2 and stock git read loose and packed
 * objects alike, and a reader that misses an object re-scans the packs.
 */
#define _GNU_SOURCE   /* memmem */

#include "audit_pack.h"
#include "backup.h"
#include "hub.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2/sys/odb_backend.h>

#include "relasi/error.h"

#define IDX_HEADER (8 + 256 * 4)   /* pack index v2: magic, version, fan-out */
#define LOOSE_EXACT 2560           /* below this limit, loose objects are counted */

struct oids {
	git_oid *v;
	size_t n, cap;
	int failed;                   /* collect_cb could not add one */
};

struct pack {
	char idx[4096];               /* .../objects/pack/pack-NAME.idx */
	long long count;              /* objects in it */
};

static int oids_add(struct oids *o, const git_oid *id)
{
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 1024;
		git_oid *v = realloc(o->v, cap * sizeof(*v));
		if (!v)
			return rl_error_set(RL_ENOMEM, "out of memory");
		o->v = v;
		o->cap = cap;
	}
	git_oid_cpy(&o->v[o->n++], id);
	return RL_OK;
}

/* A loose object's file name in its fan-out directory: 38 lower-case hex. */
static int loose_name(const char *name)
{
	size_t i;

	for (i = 0; name[i]; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			return 0;
	return i == GIT_OID_HEXSZ - 2;
}

/* Loose objects in objdir/XX; ids (may be NULL) collects them. */
static int scan_fanout(const char *objdir, int xx, long *count, struct oids *ids)
{
	char path[4096], hex[GIT_OID_HEXSZ + 1];
	struct dirent *de;
	git_oid id;
	DIR *d;
	int error = RL_OK;

	snprintf(path, sizeof(path), "%s/%02x", objdir, xx);
	if (!(d = opendir(path)))
		return errno == ENOENT ? RL_OK
		       : rl_error_set(RL_EIO, "cannot read '%s': %s", path, strerror(errno));
	while (error == 0 && (de = readdir(d))) {
		if (!loose_name(de->d_name))
			continue;            /* ".", "..", a writer's tmp_obj_ file */
		(*count)++;
		if (!ids)
			continue;
		hex[0] = "0123456789abcdef"[xx >> 4];
		hex[1] = "0123456789abcdef"[xx & 15];
		memcpy(hex + 2, de->d_name, GIT_OID_HEXSZ - 2);   /* loose_name checked it */
		hex[GIT_OID_HEXSZ] = '\0';
		if (git_oid_fromstr(&id, hex) == 0)
			error = oids_add(ids, &id);
	}
	closedir(d);
	return error;
}

/* The object count of a pack, from its index (version 2: the last fan-out
 * entry). */
static int idx_count(const char *path, long long *count)
{
	unsigned char h[IDX_HEADER];
	const unsigned char *last = h + 8 + 255 * 4;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return rl_error_set(RL_EIO, "cannot read '%s': %s", path, strerror(errno));
	r = read(fd, h, sizeof(h));
	close(fd);
	if (r != (ssize_t)sizeof(h) || memcmp(h, "\377tOc\0\0\0\2", 8) != 0)
		return rl_error_set(RL_ESTORE, "'%s' is not a version 2 pack index", path);
	*count = (long long)last[0] << 24 | last[1] << 16 | last[2] << 8 | last[3];
	return RL_OK;
}

static int pack_order(const void *a, const void *b)
{
	const struct pack *x = a, *y = b;

	return x->count < y->count ? -1 : x->count > y->count ? 1 : strcmp(x->idx, y->idx);
}

/* The packs of objdir/pack, smallest first; kept packs (.keep) left out
 * unless keep_too. */
static int list_packs(const char *objdir, struct pack **out, size_t *n, int keep_too)
{
	char dir[4096], keep[4096];
	struct pack *v = NULL;
	size_t cap = 0;
	struct dirent *de;
	DIR *d;
	int error = RL_OK;

	*out = NULL;
	*n = 0;
	snprintf(dir, sizeof(dir), "%s/pack", objdir);
	if (!(d = opendir(dir)))
		return errno == ENOENT ? RL_OK
		       : rl_error_set(RL_EIO, "cannot read '%s': %s", dir, strerror(errno));
	while (error == 0 && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		struct stat sb;
		if (len < 10 || strncmp(de->d_name, "pack-", 5) != 0 ||
		    strcmp(de->d_name + len - 4, ".idx") != 0)
			continue;
		if ((size_t)snprintf(keep, sizeof(keep), "%s/%s", dir, de->d_name) >= sizeof(keep) - 1)
			continue;
		strcpy(keep + strlen(keep) - 4, ".keep");      /* one byte longer than ".idx" */
		if (!keep_too && stat(keep, &sb) == 0)
			continue;
		if (*n == cap) {
			struct pack *nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
			if (!nv) {
				error = rl_error_set(RL_ENOMEM, "out of memory");
				break;
			}
			v = nv;
		}
		if ((size_t)snprintf(v[*n].idx, sizeof(v[*n].idx), "%s/%s", dir, de->d_name) >=
		    sizeof(v[*n].idx)) {
			error = rl_error_set(RL_EIO, "path too long: %s/%s", dir, de->d_name);
			break;
		}
		if ((error = idx_count(v[*n].idx, &v[*n].count)) == 0)
			(*n)++;
	}
	closedir(d);
	if (error < 0) {
		free(v);
		*n = 0;
		return error;
	}
	if (*n > 1)                /* v is NULL when there are none */
		qsort(v, *n, sizeof(*v), pack_order);
	*out = v;
	return RL_OK;
}

/* libgit2 calls these as it goes; non-zero stops the pack (a hub stopping
 * does not wait for a long pack). */
static int builder_progress(int stage, uint32_t current, uint32_t total, void *payload)
{
	(void)stage;
	(void)current;
	(void)total;
	return payload && __atomic_load_n((const int *)payload, __ATOMIC_RELAXED) ? -1 : 0;
}

static int indexer_progress(const git_indexer_progress *stats, void *payload)
{
	(void)stats;
	return builder_progress(0, 0, 0, payload);
}

/*
 * A name for the packbuilder's delta search, which pairs objects whose
 * names end alike (libgit2 hashes the last 16 characters): loose objects
 * carry none, and without one the search only pairs objects of like size
 * (23 MB where `git repack` made 8.4 MB of the same objects). The audit
 * tree (audit.c) says where an object sits: a TABLE/XX/YY tree holds
 * records whose ids end in XXYY, a TABLE/XX tree holds YY trees, a record
 * keeps its created_at from version to version. So successive versions of
 * one place get the same name. NULL: no hint.
 */
static const char *name_hint(git_repository *repo, const git_oid *id, char *buf, size_t len)
{
	git_object *o = NULL;
	const char *hint = NULL;
	int depth;

	if (git_object_lookup(&o, repo, id, GIT_OBJECT_ANY) < 0)
		return NULL;
	if (git_object_type(o) == GIT_OBJECT_BLOB) {
		const char *text = git_blob_rawcontent((git_blob *)o);
		size_t n = (size_t)git_blob_rawsize((git_blob *)o);
		const char *at = n ? memmem(text, n, "created_at: ", 12) : NULL;
		if (at) {
			const char *end = memchr(at, '\n', n - (size_t)(at - text));
			snprintf(buf, len, "r/%.*s", (int)((end ? end : text + n) - at - 12), at + 12);
			hint = buf;
		}
	} else if (git_object_type(o) == GIT_OBJECT_TREE) {
		/* Down the first entries to a record: its id ends in XXYY. */
		git_tree *t = (git_tree *)o, *sub = NULL;
		for (depth = 0; depth < 3 && t && git_tree_entrycount(t) > 0; depth++) {
			const git_tree_entry *e = git_tree_entry_byindex(t, 0);
			const char *nm = git_tree_entry_name(e);
			size_t nl = strlen(nm);
			if (git_tree_entry_type(e) == GIT_OBJECT_BLOB) {
				if (nl >= 4) {
					/* the tree `depth` levels above the record's */
					snprintf(buf, len, "t%d/%.*s", depth, 4 - 2 * (depth > 0), nm + nl - 4);
					hint = buf;
				}
				break;
			}
			if (git_tree_entry_type(e) != GIT_OBJECT_TREE ||
			    git_tree_lookup(&sub, repo, git_tree_entry_id(e)) < 0)
				break;
			if (t != (git_tree *)o)
				git_tree_free(t);
			t = sub;
			sub = NULL;
		}
		if (t && t != (git_tree *)o)
			git_tree_free(t);
	}
	git_object_free(o);
	return hint;
}

/* One pack of ids, durable on return; *name its pack-NAME. */
static int write_pack(git_repository *repo, const char *objdir, const struct oids *ids,
		      const int *cancel, char *name, size_t len)
{
	char dir[4096], path[4200];
	git_packbuilder *pb = NULL;
	size_t i;
	int error = RL_OK, gerr = 0;

	snprintf(dir, sizeof(dir), "%s/pack", objdir);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return rl_error_set(RL_EIO, "cannot create '%s': %s", dir, strerror(errno));
	if ((gerr = git_packbuilder_new(&pb, repo)) < 0)
		return hub_git_fail(gerr, "starting a pack");
	git_packbuilder_set_callbacks(pb, builder_progress, (void *)cancel);
	for (i = 0; i < ids->n && gerr >= 0; i++) {
		char hint[64];
		gerr = git_packbuilder_insert(pb, &ids->v[i],
					      name_hint(repo, &ids->v[i], hint, sizeof(hint)));
	}
	if (gerr >= 0)
		gerr = git_packbuilder_write(pb, dir, 0, indexer_progress, (void *)cancel);
	if (gerr < 0) {
		error = cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED)
			? rl_error_set(RL_EIO, "packing the audit history: stopped")
			: hub_git_fail(gerr, "writing a pack");
		goto cleanup;
	}
	snprintf(name, len, "pack-%s", git_packbuilder_name(pb));
	snprintf(path, sizeof(path), "%s/%s.pack", dir, name);
	if ((error = hub_fsync_path(path)) < 0)
		goto cleanup;
	snprintf(path, sizeof(path), "%s/%s.idx", dir, name);
	if ((error = hub_fsync_path(path)) < 0 || (error = hub_fsync_path(dir)) < 0)
		goto cleanup;
cleanup:
	git_packbuilder_free(pb);
	return error;
}

static int collect_cb(const git_oid *id, void *payload)
{
	struct oids *ids = payload;

	if (oids_add(ids, id) < 0) {
		ids->failed = 1;
		return -1;
	}
	return 0;
}

/* Every object of one pack. */
static int pack_objects(const char *idx, struct oids *ids)
{
	git_odb_backend *be = NULL;
	int gerr;

	if ((gerr = git_odb_backend_one_pack(&be, idx)) < 0)
		return hub_git_fail(gerr, "opening a pack");
	gerr = be->foreach(be, collect_cb, ids);
	be->free(be);
	if (ids->failed)
		return RL_ENOMEM;          /* oids_add said so */
	if (gerr < 0)
		return hub_git_fail(gerr, "listing a pack");
	return RL_OK;
}

/* Unlink a pack: its index first, so that no reader finds an index whose
 * data is gone. */
static int remove_pack(const char *idx)
{
	static const char *const exts[] = { ".idx", ".pack", ".rev", ".bitmap" };
	char path[4200];
	size_t base = strlen(idx) - 4, i;

	for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		snprintf(path, sizeof(path), "%.*s%s", (int)base, idx, exts[i]);
		if (unlink(path) != 0 && errno != ENOENT)
			return rl_error_set(RL_EIO, "cannot remove '%s': %s", path, strerror(errno));
	}
	return RL_OK;
}

static int pack_loose(git_repository *repo, const char *objdir, int all, const int *cancel,
		      struct hub_audit_pack_stats *st)
{
	struct oids ids = { NULL, 0, 0, 0 };
	char name[128], path[4200], hex[GIT_OID_HEXSZ + 1];
	long count = 0;
	size_t i;
	int xx, error = RL_OK;

	for (xx = 0; xx < 256 && error == 0 && (all || ids.n < HUB_AUDIT_PACK_BATCH); xx++)
		error = scan_fanout(objdir, xx, &count, &ids);
	if (error < 0 || ids.n == 0)
		goto cleanup;
	if ((error = write_pack(repo, objdir, &ids, cancel, name, sizeof(name))) < 0)
		goto cleanup;
	st->changed = 1;
	for (i = 0; i < ids.n; i++) {
		git_oid_tostr(hex, sizeof(hex), &ids.v[i]);
		snprintf(path, sizeof(path), "%s/%.2s/%s", objdir, hex, hex + 2);
		if (unlink(path) != 0 && errno != ENOENT) {
			error = rl_error_set(RL_EIO, "cannot remove '%s': %s", path, strerror(errno));
			goto cleanup;
		}
		st->loose_packed++;
	}
	/* Emptied fan-out directories go too, as `git prune-packed` does: ext4
	 * never shrinks a directory, and 256 of them kept ~7 MB. Writers hold
	 * the same lock and make them again as they need them. */
	for (xx = 0; xx < 256; xx++) {
		snprintf(path, sizeof(path), "%s/%02x", objdir, xx);
		rmdir(path);           /* fails, harmlessly, while one holds an object */
	}
cleanup:
	free(ids.v);
	return error;
}

/* How many of the smallest packs to merge: up to the last one smaller than
 * twice the sum of those below it (all = every pack). */
static size_t merge_count(const struct pack *p, size_t n, int all)
{
	long long below = 0;
	size_t i, k = 0;

	if (all)
		return n;
	for (i = 0; i < n; i++) {
		if (i > 0 && p[i].count < 2 * below)
			k = i + 1;
		below += p[i].count;
	}
	return k;
}

static int merge_packs(git_repository *repo, const char *objdir, int all, int packs_max,
		       const int *cancel, struct hub_audit_pack_stats *st)
{
	struct oids ids = { NULL, 0, 0, 0 };
	struct pack *p = NULL;
	char name[128];
	size_t n, k, i;
	int error;

	if ((error = list_packs(objdir, &p, &n, 0)) < 0)
		return error;
	if (n < 2 || (!all && n <= (size_t)packs_max) || (k = merge_count(p, n, all)) < 2)
		goto cleanup;
	for (i = 0; i < k && error == 0; i++)
		error = pack_objects(p[i].idx, &ids);
	if (error < 0 || (error = write_pack(repo, objdir, &ids, cancel, name, sizeof(name))) < 0)
		goto cleanup;
	st->changed = 1;
	for (i = 0; i < k; i++) {
		const char *base = strrchr(p[i].idx, '/') + 1;
		/* The merge of packs that held nothing new is one of them again. */
		if (strncmp(base, name, strlen(name)) == 0 && strcmp(base + strlen(name), ".idx") == 0)
			continue;
		if ((error = remove_pack(p[i].idx)) < 0)
			goto cleanup;
		st->packs_merged++;
	}
cleanup:
	free(ids.v);
	free(p);
	return error;
}

int hub_audit_pack_repo(git_repository *repo, int all, const struct hub_audit_pack_limits *lim,
			struct hub_audit_pack_stats *st)
{
	long loose_max = lim && lim->loose_max > 0 ? lim->loose_max : HUB_AUDIT_LOOSE_MAX;
	int packs_max = lim && lim->packs_max > 0 ? lim->packs_max : HUB_AUDIT_PACKS_MAX;
	const int *cancel = lim ? lim->cancel : NULL;
	char objdir[4096];
	struct pack *p = NULL;
	long sample = 0;
	size_t n;
	int error = RL_OK;

	memset(st, 0, sizeof(*st));
	if ((size_t)snprintf(objdir, sizeof(objdir), "%sobjects", git_repository_path(repo)) >=
	    sizeof(objdir))
		return rl_error_set(RL_EIO, "path too long: %s", git_repository_path(repo));
	/* git's estimate: one fan-out directory of 256 holds 1/256 of them.
	 * Below LOOSE_EXACT the sample says too little: count them all. */
	if (loose_max < LOOSE_EXACT) {
		int xx;
		for (xx = 0; xx < 256 && error == 0; xx++)
			error = scan_fanout(objdir, xx, &sample, NULL);
		if (error == 0 && sample <= loose_max)
			sample = 0;
	} else if ((error = scan_fanout(objdir, 0x17, &sample, NULL)) == 0 &&
		   sample <= (loose_max + 255) / 256) {
		sample = 0;
	}
	if (error < 0)
		return error;
	if ((all || sample > 0) && (error = pack_loose(repo, objdir, all, cancel, st)) < 0)
		return error;
	if ((error = merge_packs(repo, objdir, all, packs_max, cancel, st)) < 0)
		return error;
	if ((error = list_packs(objdir, &p, &n, 1)) < 0)
		return error;
	free(p);
	st->packs = (int)n;
	return RL_OK;
}
