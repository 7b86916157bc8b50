/*
 * audit_odb.c — the audit writer's object buffer (audit_odb.h says what it
 * promises).
 *
 * The writing repository is a libgit2 repository around an object
 * database of our own making with two backends:
 *
 *   - `mem` (first): every object written goes here, into a hash table;
 *     reads of those objects are served from it;
 *   - `through` (second): reads and existence checks of everything else,
 *     passed to an object database of audit.git's objects directory (its
 *     packs, and its loose objects when it has any: looking for a loose
 *     file is a failed access(2) per new object), without letting a
 *     miss make libgit2 re-scan objects/pack: git_odb_write asks whether
 *     an object exists before it writes it, and a tree checks each entry
 *     it takes, so on the real database every new object cost a re-read
 *     of the pack directory, or two. The writer holds the writers' lock (audit.lock), so no
 *     pack appears behind its back except its own, after which
 *     hub_audit_odb_flush refreshes the real database once; a miss that was
 *     wrong would only write an object twice.
 *
 * Neither backend writes to disk: objects reach audit.git only as one pack
 * per flush, which this file writes itself (write_pack below), objects
 * whole (no deltas: the packs are merged later, with deltas, by
 * audit_pack.c). libgit2's own pack writing goes through its indexer,
 * which maps and unmaps the pack for every object it hashes: it took half
 * of the hub's CPU while devices pushed, more than the loose files it
 * replaced.
 *
 * The format (git's pack v2 and index v2, Documentation/gitformat-pack):
 *   pack:  "PACK", version 2, object count (big-endian 32-bit); per object
 *          a header (type in bits 4-6 of the first byte, the size in its
 *          low 4 bits then 7 bits a byte, high bit = more) and the object
 *          deflated; the SHA-1 of everything before it.
 *   index: "\377tOc", version 2, 256 cumulative counts by the first byte
 *          of the id, the ids sorted, a CRC-32 per object (header and
 *          deflated data), a 31-bit offset per object, the pack's SHA-1,
 *          and the SHA-1 of the index before it.
 */
#include "audit_odb.h"
#include "audit_pack.h"   /* hub_git_fail */
#include "backup.h"        /* hub_fsync_path */

#include <ctype.h>
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
#include <git2/sys/repository.h>
#include <mbedtls/sha1.h>
#include <zlib.h>

#include "relasi/error.h"

/* Bytes gathered before a write(2) while writing a pack. */
#define PACK_WRITE_CHUNK (1u << 20)

struct memobj {
	git_oid id;
	git_object_t type;
	size_t len;
	unsigned char data[];
};

struct mem_backend {
	git_odb_backend parent;
	struct memobj **slot;          /* open addressing, cap a power of two */
	size_t cap, count, bytes;
};

struct through_backend {
	git_odb_backend parent;
	git_odb *real;                 /* a reference of our own */
};

struct hub_audit_odb {
	char objdir[4096];             /* audit.git/objects */
	git_repository *view;          /* owns the odb, which owns both backends */
	struct mem_backend *mem;
	git_odb *real_odb;             /* through's, borrowed from it */
};

/* An object's data as libgit2 hands it out: with a NUL after it, as its
 * own backends do (blob readers, ours in audit.c too, rely on it). */
static void *copy_data(git_odb_backend *be, const void *data, size_t len)
{
	unsigned char *p = git_odb_backend_data_alloc(be, len + 1);

	if (p) {
		memcpy(p, data, len);
		p[len] = '\0';
	}
	return p;
}

/* ---- mem --------------------------------------------------------------------------- */

static size_t slot_of(const struct mem_backend *m, const git_oid *id)
{
	uint64_t h;

	memcpy(&h, id->id, sizeof(h));    /* an object id is uniformly spread already */
	return (size_t)h & (m->cap - 1);
}

static struct memobj *mem_find(const struct mem_backend *m, const git_oid *id)
{
	size_t i;

	if (!m->cap)
		return NULL;
	for (i = slot_of(m, id); m->slot[i]; i = (i + 1) & (m->cap - 1))
		if (git_oid_equal(&m->slot[i]->id, id))
			return m->slot[i];
	return NULL;
}

static void mem_place(struct mem_backend *m, struct memobj *o)
{
	size_t i;

	for (i = slot_of(m, &o->id); m->slot[i]; i = (i + 1) & (m->cap - 1))
		;
	m->slot[i] = o;
}

static int mem_grow(struct mem_backend *m)
{
	struct memobj **old = m->slot;
	size_t oldcap = m->cap, i;

	m->cap = oldcap ? oldcap * 2 : 1024;
	if (!(m->slot = calloc(m->cap, sizeof(*m->slot)))) {
		m->slot = old;
		m->cap = oldcap;
		return -1;
	}
	for (i = 0; i < oldcap; i++)
		if (old[i])
			mem_place(m, old[i]);
	free(old);
	return 0;
}

static int mem_read(void **out, size_t *len, git_object_t *type, git_odb_backend *be,
		    const git_oid *id)
{
	const struct memobj *o = mem_find((struct mem_backend *)be, id);

	if (!o)
		return GIT_ENOTFOUND;
	if (!(*out = copy_data(be, o->data, o->len)))
		return -1;
	*len = o->len;
	*type = o->type;
	return 0;
}

static int mem_read_header(size_t *len, git_object_t *type, git_odb_backend *be, const git_oid *id)
{
	const struct memobj *o = mem_find((struct mem_backend *)be, id);

	if (!o)
		return GIT_ENOTFOUND;
	*len = o->len;
	*type = o->type;
	return 0;
}

static int mem_exists(git_odb_backend *be, const git_oid *id)
{
	return mem_find((struct mem_backend *)be, id) != NULL;
}

static int mem_write(git_odb_backend *be, const git_oid *id, const void *data, size_t len,
		     git_object_t type)
{
	struct mem_backend *m = (struct mem_backend *)be;
	struct memobj *o;

	if (mem_find(m, id))
		return 0;
	if ((m->count + 1) * 2 > m->cap && mem_grow(m) < 0)
		return -1;
	if (!(o = malloc(sizeof(*o) + len)))
		return -1;
	git_oid_cpy(&o->id, id);
	o->type = type;
	o->len = len;
	memcpy(o->data, data, len);
	mem_place(m, o);
	m->count++;
	m->bytes += len;
	return 0;
}

static void mem_clear(struct mem_backend *m)
{
	size_t i;

	for (i = 0; i < m->cap; i++) {
		free(m->slot[i]);
		m->slot[i] = NULL;
	}
	m->count = 0;
	m->bytes = 0;
}

static void mem_free(git_odb_backend *be)
{
	struct mem_backend *m = (struct mem_backend *)be;

	mem_clear(m);
	free(m->slot);
	free(m);
}

/* ---- through ----------------------------------------------------------------------- */

static int through_read(void **out, size_t *len, git_object_t *type, git_odb_backend *be,
			const git_oid *id)
{
	git_odb *real = ((struct through_backend *)be)->real;
	git_odb_object *o = NULL;
	int gerr;

	if (!git_odb_exists_ext(real, id, GIT_ODB_LOOKUP_NO_REFRESH))
		return GIT_ENOTFOUND;
	if ((gerr = git_odb_read(&o, real, id)) < 0)
		return gerr;
	*len = git_odb_object_size(o);
	*type = git_odb_object_type(o);
	*out = copy_data(be, git_odb_object_data(o), *len);
	git_odb_object_free(o);
	return *out ? 0 : -1;
}

static int through_read_header(size_t *len, git_object_t *type, git_odb_backend *be,
			       const git_oid *id)
{
	git_odb *real = ((struct through_backend *)be)->real;

	if (!git_odb_exists_ext(real, id, GIT_ODB_LOOKUP_NO_REFRESH))
		return GIT_ENOTFOUND;
	return git_odb_read_header(len, type, real, id);
}

static int through_exists(git_odb_backend *be, const git_oid *id)
{
	return git_odb_exists_ext(((struct through_backend *)be)->real, id,
				  GIT_ODB_LOOKUP_NO_REFRESH);
}

static void through_free(git_odb_backend *be)
{
	git_odb_free(((struct through_backend *)be)->real);
	free(be);
}

/* ---- writing a pack ---------------------------------------------------------------- */

/* One output file being written: buffered, hashed as it goes. */
struct out {
	int fd;
	const char *path;
	mbedtls_sha1_context sha;
	unsigned char *buf;
	size_t len, cap;
	uint64_t total;               /* bytes so far (the next object's offset) */
	int failed;                   /* errno of the first failure, 0 if none */
};

static int out_open(struct out *o, char *tmpl)
{
	memset(o, 0, sizeof(*o));
	o->path = tmpl;
	o->fd = -1;
	if (!(o->buf = malloc(PACK_WRITE_CHUNK)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	o->cap = PACK_WRITE_CHUNK;
	if ((o->fd = mkstemp(tmpl)) < 0)
		return rl_error_set(RL_EIO, "cannot create '%s': %s", tmpl, strerror(errno));
	mbedtls_sha1_init(&o->sha);
	mbedtls_sha1_starts_ret(&o->sha);
	return RL_OK;
}

static void out_drain(struct out *o)
{
	size_t done = 0;

	while (done < o->len && !o->failed) {
		ssize_t w = write(o->fd, o->buf + done, o->len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			o->failed = w < 0 ? errno : EIO;
		else
			done += (size_t)w;
	}
	o->len = 0;
}

static void out_put(struct out *o, const void *data, size_t n)
{
	const unsigned char *p = data;

	mbedtls_sha1_update_ret(&o->sha, p, n);
	o->total += n;
	while (n) {
		size_t k = o->cap - o->len < n ? o->cap - o->len : n;
		memcpy(o->buf + o->len, p, k);
		o->len += k;
		p += k;
		n -= k;
		if (o->len == o->cap)
			out_drain(o);
	}
}

static void put_be32(unsigned char *b, uint32_t v)
{
	b[0] = (unsigned char)(v >> 24);
	b[1] = (unsigned char)(v >> 16);
	b[2] = (unsigned char)(v >> 8);
	b[3] = (unsigned char)v;
}

/* Write the hash of everything so far, then make the file durable and
 * read-only under its final name. */
static int out_finish(struct out *o, const char *final)
{
	unsigned char own[20];

	mbedtls_sha1_finish_ret(&o->sha, own);
	out_put(o, own, 20);
	out_drain(o);
	if (!o->failed && fsync(o->fd) != 0)
		o->failed = errno;
	if (!o->failed && fchmod(o->fd, 0444) != 0)
		o->failed = errno;
	if (o->failed)
		return rl_error_set(RL_EIO, "cannot write '%s': %s", o->path, strerror(o->failed));
	if (rename(o->path, final) != 0)
		return rl_error_set(RL_EIO, "cannot rename '%s' to '%s': %s", o->path, final,
				    strerror(errno));
	return RL_OK;
}

static void out_close(struct out *o, int remove_tmp)
{
	if (o->fd >= 0) {
		close(o->fd);
		if (remove_tmp)
			unlink(o->path);
		mbedtls_sha1_free(&o->sha);
	}
	o->fd = -1;
	free(o->buf);
	o->buf = NULL;
}

static int oid_order(const void *a, const void *b)
{
	return git_oid_cmp(&(*(const struct memobj *const *)a)->id,
			   &(*(const struct memobj *const *)b)->id);
}

/* The n objects v (sorted by id here) as OBJDIR/pack/pack-SHA.{pack,idx},
 * both durable, the index last (readers look for it). */
static int write_pack(const char *objdir, struct memobj **v, size_t n)
{
	char dir[4096], tp[4200], ti[4200], name[4300];
	unsigned char hdr[16], sum[20], hex[GIT_OID_HEXSZ + 1], *zbuf = NULL;
	uint32_t *crc = NULL, *off = NULL, fan[256];
	struct out pk, ix;
	size_t i, zcap = 0;
	z_stream z;
	int error = RL_OK, zok = 0, ix_open = 0;

	memset(&z, 0, sizeof(z));
	memset(&ix, 0, sizeof(ix));
	ix.fd = -1;
	if ((size_t)snprintf(dir, sizeof(dir), "%s/pack", objdir) >= sizeof(dir))
		return rl_error_set(RL_EIO, "path too long: %s", objdir);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return rl_error_set(RL_EIO, "cannot create '%s': %s", dir, strerror(errno));
	snprintf(tp, sizeof(tp), "%s/tmp_audit_pack_XXXXXX", dir);
	snprintf(ti, sizeof(ti), "%s/tmp_audit_idx_XXXXXX", dir);
	qsort(v, n, sizeof(*v), oid_order);
	if (!(crc = malloc(n * sizeof(*crc))) || !(off = malloc(n * sizeof(*off)))) {
		free(crc);
		return rl_error_set(RL_ENOMEM, "out of memory");
	}
	if ((error = out_open(&pk, tp)) < 0)
		goto cleanup;
	if (deflateInit(&z, Z_BEST_SPEED) != Z_OK) {
		error = rl_error_set(RL_ENOMEM, "out of memory (zlib)");
		goto cleanup;
	}
	zok = 1;
	memcpy(hdr, "PACK", 4);
	put_be32(hdr + 4, 2);
	put_be32(hdr + 8, (uint32_t)n);
	out_put(&pk, hdr, 12);
	for (i = 0; i < n; i++) {
		const struct memobj *o = v[i];
		size_t h = 0, size = o->len, need = deflateBound(&z, (uLong)o->len);
		if (pk.total > 0x7fffffffu) {
			error = rl_error_set(RL_EIO, "an audit pack past 2 GiB");
			goto cleanup;
		}
		off[i] = (uint32_t)pk.total;
		hdr[h++] = (unsigned char)(((unsigned)o->type << 4) | (size & 0x0f) |
					   (size > 0x0f ? 0x80 : 0));
		for (size >>= 4; size; size >>= 7)
			hdr[h++] = (unsigned char)((size & 0x7f) | (size > 0x7f ? 0x80 : 0));
		if (need > zcap) {
			unsigned char *nb = realloc(zbuf, need);
			if (!nb) {
				error = rl_error_set(RL_ENOMEM, "out of memory");
				goto cleanup;
			}
			zbuf = nb;
			zcap = need;
		}
		deflateReset(&z);
		z.next_in = (Bytef *)o->data;
		z.avail_in = (uInt)o->len;
		z.next_out = zbuf;
		z.avail_out = (uInt)zcap;
		if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
			error = rl_error_set(RL_EIO, "compressing an audit object failed");
			goto cleanup;
		}
		crc[i] = (uint32_t)crc32(crc32(0, hdr, (uInt)h), zbuf, (uInt)z.total_out);
		out_put(&pk, hdr, h);
		out_put(&pk, zbuf, z.total_out);
	}
	ix_open = 1;                  /* out_close frees what a failed out_open took */
	if ((error = out_open(&ix, ti)) < 0)
		goto cleanup;
	memcpy(hdr, "\377tOc", 4);
	put_be32(hdr + 4, 2);
	out_put(&ix, hdr, 8);
	memset(fan, 0, sizeof(fan));
	for (i = 0; i < n; i++)
		fan[v[i]->id.id[0]]++;
	for (i = 1; i < 256; i++)
		fan[i] += fan[i - 1];
	for (i = 0; i < 256; i++) {
		put_be32(hdr, fan[i]);
		out_put(&ix, hdr, 4);
	}
	for (i = 0; i < n; i++)
		out_put(&ix, v[i]->id.id, GIT_OID_RAWSZ);
	for (i = 0; i < n; i++) {
		put_be32(hdr, crc[i]);
		out_put(&ix, hdr, 4);
	}
	for (i = 0; i < n; i++) {
		put_be32(hdr, off[i]);
		out_put(&ix, hdr, 4);
	}
	/* The pack's own hash names both files and closes the index. */
	{
		git_oid packid;
		mbedtls_sha1_context copy;
		mbedtls_sha1_init(&copy);
		mbedtls_sha1_clone(&copy, &pk.sha);
		mbedtls_sha1_finish_ret(&copy, sum);
		mbedtls_sha1_free(&copy);
		git_oid_fromraw(&packid, sum);
		git_oid_tostr((char *)hex, sizeof(hex), &packid);
	}
	snprintf(name, sizeof(name), "%s/pack-%s.pack", dir, (const char *)hex);
	if ((error = out_finish(&pk, name)) < 0)
		goto cleanup;
	out_put(&ix, sum, 20);
	snprintf(name, sizeof(name), "%s/pack-%s.idx", dir, (const char *)hex);
	if ((error = out_finish(&ix, name)) < 0)
		goto cleanup;
	error = hub_fsync_path(dir);
cleanup:
	if (zok)
		deflateEnd(&z);
	out_close(&pk, error < 0);
	if (ix_open)
		out_close(&ix, error < 0);
	free(zbuf);
	free(crc);
	free(off);
	return error;
}

/* ---- the buffer -------------------------------------------------------------------- */

/* Whether OBJDIR holds a fan-out directory of loose objects (an older hub
 * wrote them; audit_pack.c removes the directories it empties). */
static int has_loose(const char *objdir)
{
	DIR *d = opendir(objdir);
	struct dirent *e;
	int found = 0;

	if (!d)
		return 1;                 /* cannot tell: look for them */
	while (!found && (e = readdir(d)))
		found = strlen(e->d_name) == 2 && isxdigit((unsigned char)e->d_name[0]) &&
			isxdigit((unsigned char)e->d_name[1]);
	closedir(d);
	return found;
}

/* Remove what a writer killed in the middle of a pack left in objdir/pack:
 * ours (write_pack), or libgit2's indexer's (a merge, audit_pack.c). The
 * caller holds the writers' lock: no one else is writing a pack. */
static void remove_stale(const char *objdir)
{
	char dir[4096], path[4400];
	struct dirent *e;
	DIR *d;

	if ((size_t)snprintf(dir, sizeof(dir), "%s/pack", objdir) >= sizeof(dir) ||
	    !(d = opendir(dir)))
		return;
	while ((e = readdir(d)))
		if ((strncmp(e->d_name, "tmp_audit_", 10) == 0 ||
		     strncmp(e->d_name, "pack_git2_", 10) == 0) &&
		    (size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < sizeof(path))
			unlink(path);
	closedir(d);
}

/* An object database of objdir's packs, and of its loose objects if any. */
static int open_objects(git_odb **out, const char *objdir)
{
	git_odb *odb = NULL;
	git_odb_backend *be = NULL;
	int gerr;

	if ((gerr = git_odb_new(&odb)) < 0 || (gerr = git_odb_backend_pack(&be, objdir)) < 0)
		goto fail;
	if ((gerr = git_odb_add_backend(odb, be, 2)) < 0) {
		be->free(be);
		goto fail;
	}
	if (has_loose(objdir)) {
		if ((gerr = git_odb_backend_loose(&be, objdir, -1, 0, 0, 0)) < 0)
			goto fail;
		if ((gerr = git_odb_add_backend(odb, be, 1)) < 0) {
			be->free(be);
			goto fail;
		}
	}
	*out = odb;
	return 0;
fail:
	git_odb_free(odb);
	return gerr;
}

int hub_audit_odb_new(hub_audit_odb **out, git_repository *repo)
{
	hub_audit_odb *b;
	struct mem_backend *m = NULL;
	struct through_backend *t = NULL;
	git_odb *odb = NULL;
	int gerr;

	*out = NULL;
	if (!(b = calloc(1, sizeof(*b))) || !(m = calloc(1, sizeof(*m))) ||
	    !(t = calloc(1, sizeof(*t)))) {
		free(b);
		free(m);
		return rl_error_set(RL_ENOMEM, "out of memory");
	}
	if ((size_t)snprintf(b->objdir, sizeof(b->objdir), "%sobjects", git_repository_path(repo)) >=
	    sizeof(b->objdir)) {
		free(b);
		free(m);
		free(t);
		return rl_error_set(RL_EIO, "path too long: %s", git_repository_path(repo));
	}
	m->parent.version = GIT_ODB_BACKEND_VERSION;
	m->parent.read = mem_read;
	m->parent.read_header = mem_read_header;
	m->parent.write = mem_write;
	m->parent.exists = mem_exists;
	m->parent.free = mem_free;
	t->parent.version = GIT_ODB_BACKEND_VERSION;
	t->parent.read = through_read;
	t->parent.read_header = through_read_header;
	t->parent.exists = through_exists;
	t->parent.free = through_free;
	remove_stale(b->objdir);
	if ((gerr = open_objects(&t->real, b->objdir)) < 0 || (gerr = git_odb_new(&odb)) < 0 ||
	    (gerr = git_odb_add_backend(odb, &m->parent, 2)) < 0) {
		mem_free(&m->parent);
		through_free(&t->parent);
		goto fail;
	}
	/* The odb owns m from here, and t once it took it. */
	if ((gerr = git_odb_add_backend(odb, &t->parent, 1)) < 0) {
		through_free(&t->parent);
		goto fail;
	}
	if ((gerr = git_repository_wrap_odb(&b->view, odb)) < 0)
		goto fail;
	git_odb_free(odb);               /* the view holds its own reference */
	b->mem = m;
	b->real_odb = t->real;
	*out = b;
	return RL_OK;
fail:
	git_odb_free(odb);
	hub_audit_odb_free(b);
	return hub_git_fail(gerr, "setting up the audit writer's objects");
}

git_repository *hub_audit_odb_repo(hub_audit_odb *b)
{
	return b->view;
}

size_t hub_audit_odb_count(const hub_audit_odb *b)
{
	return b->mem ? b->mem->count : 0;
}

size_t hub_audit_odb_bytes(const hub_audit_odb *b)
{
	return b->mem ? b->mem->bytes : 0;
}

int hub_audit_odb_flush(hub_audit_odb *b)
{
	struct memobj **v;
	size_t i, n = 0;
	int error;

	if (!b->mem || b->mem->count == 0)
		return RL_OK;
	if (!(v = malloc(b->mem->count * sizeof(*v))))
		return rl_error_set(RL_ENOMEM, "out of memory");
	for (i = 0; i < b->mem->cap; i++)
		if (b->mem->slot[i])
			v[n++] = b->mem->slot[i];
	error = write_pack(b->objdir, v, n);
	free(v);
	if (error < 0)
		return error;
	/* through finds the new pack (it never refreshes on a miss). */
	git_odb_refresh(b->real_odb);
	mem_clear(b->mem);
	return RL_OK;
}

void hub_audit_odb_free(hub_audit_odb *b)
{
	if (!b)
		return;
	git_repository_free(b->view);    /* frees the odb, and with it both backends */
	free(b);
}
