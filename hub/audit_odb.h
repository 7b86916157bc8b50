/*
 * audit_odb.h — the audit writer's object buffer (audit_odb.c): new git
 * objects are kept in memory and written to audit.git as one fsynced pack
 * when the writer publishes a run of commits (audit.c).
 *
 * Why: written one by one, every object was a loose file (open, write,
 * rename, and a re-scan of objects/pack by libgit2 before each new
 * object), which was over half of the writer's CPU; and a loose file is
 * not fsynced, so a power cut could leave the ref naming objects that
 * never reached the disk. A pack per run costs a few fsyncs for up to
 * AUDIT_PUBLISH_EVERY commits (audit.c), and the ref moves only after it is
 * durable.
 */
#ifndef RELASI_HUB_AUDIT_ODB_H
#define RELASI_HUB_AUDIT_ODB_H

#include <stddef.h>

#include <git2.h>

typedef struct hub_audit_odb hub_audit_odb;

/*
 * A buffer over the bare repository `repo` (only its objects directory
 * is kept). hub_audit_odb_repo() is a repository whose object database
 * reads repo's objects and keeps every object written to it in memory,
 * where it is read back like any other, until hub_audit_odb_flush(). It
 * has no refs: refs are moved on `repo` itself. The caller holds the
 * writers' lock (audit.lock): what a killed writer left half-written in
 * objects/pack is removed here. RL_ENOMEM / RL_EIO.
 */
int hub_audit_odb_new(hub_audit_odb **out, git_repository *repo);

/* The writing repository (owned by the buffer). */
git_repository *hub_audit_odb_repo(hub_audit_odb *b);

/* Objects and bytes held in memory now. */
size_t hub_audit_odb_count(const hub_audit_odb *b);
size_t hub_audit_odb_bytes(const hub_audit_odb *b);

/*
 * Write every object held into one new pack of the repository (objects/pack,
 * named by its hash as git names packs), durable on return: pack, index
 * and directory fsynced, the index renamed into place last. Then forget
 * them; nothing held: nothing written. On failure nothing is left behind
 * but the objects stay held (a later flush may write them), and nothing
 * that names them may be published. RL_EIO, RL_ENOMEM.
 */
int hub_audit_odb_flush(hub_audit_odb *b);

/* Drop what is held without writing it, and the buffer. NULL: nothing. */
void hub_audit_odb_free(hub_audit_odb *b);

#endif
