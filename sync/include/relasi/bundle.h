/*
 * relasi/bundle.h — offline bundles: a signed archive that carries one sync
 * exchange by file (sync/PROTOCOL.md, "Offline bundles"). One pax tar,
 * zstd-compressed where libarchive has it (gzip otherwise), holding:
 *
 *   manifest.json  the signed header: format, version, the sender's fields
 *                  (kind, device, batch, cursor...) and every other member's
 *                  name, size and SHA-256
 *   manifest.sig   ECDSA P-256 over SHA-256 of manifest.json (DER)
 *   signer.crt     the signer's certificate (PEM)
 *   the members    one wire message each (push.json, pushed.json, page-*.json)
 *
 * Reading is bounded (member count, each member, the whole: relasi/limits.h)
 * and verifies everything before the caller sees anything: the certificate
 * chains to the CA the reader trusts, the signature verifies with it, and
 * every member is listed in the manifest with its size and hash, none
 * missing, none extra. Writing goes to a 0600 temporary file beside the
 * target, renamed into place once complete and synced.
 */
#ifndef RELASI_BUNDLE_H
#define RELASI_BUNDLE_H

#include <stddef.h>
#include <jansson.h>

#include "relasi/pki.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RL_BUNDLE_FORMAT  "relasi-bundle"
#define RL_BUNDLE_VERSION 1
#define RL_BUNDLE_NAME_MAX 64

struct rl_bundle_member {
	char name[RL_BUNDLE_NAME_MAX + 1];   /* [a-z0-9][a-z0-9.-]* */
	unsigned char *data;                 /* owned by the bundle when read */
	size_t len;
};

typedef struct rl_bundle {
	json_t *manifest;                    /* the verified manifest */
	char signer_cn[72];                  /* the signing certificate's CN */
	char signer_fp[RL_FINGERPRINT_BUFSZ];
	struct rl_bundle_member *members;    /* the data members, manifest order */
	size_t n;
} rl_bundle;

/*
 * Write a bundle to path: header (an object; "format", "version" and
 * "members" are added to a copy), the n members, signed with the key at
 * key_path, the certificate at cert_path included.
 */
int rl_bundle_write(const char *path, json_t *header, const struct rl_bundle_member *members,
		    size_t n, const char *cert_path, const char *key_path);

/*
 * Read and verify the bundle at path against the CA certificate at ca_path.
 * Errors: RL_EINVALID (not a bundle, truncated, damaged, a member changed),
 * RL_ETOOBIG (a limit), RL_EAUTH (certificate from another CA, signature
 * does not verify), RL_EIO. The message names the file and the cause.
 */
int rl_bundle_read(const char *path, const char *ca_path, rl_bundle **out);

/* The member called name, or NULL. */
const struct rl_bundle_member *rl_bundle_get(const rl_bundle *b, const char *name);

/* Parse member name as one JSON object (NULL and an error if absent or not
 * an object). New reference. */
int rl_bundle_json(const rl_bundle *b, const char *name, json_t **out);

void rl_bundle_free(rl_bundle *b);

/* A new archive writer on fd, as bundles, backups and snapshot images are
 * written: pax, zstd where libarchive has it built in (an external zstd
 * program is not used), else gzip; *filter names the one taken. libarchive
 * is loaded on first use (sync/src/archive_lazy.h; in the hub, which links
 * it, that finds the same library). *out: the caller writes, closes and
 * frees it. RL_ENOMEM, RL_EIO with libarchive's words, RL_ERROR when
 * libarchive cannot be loaded. */
struct archive;
int rl_archive_writer_open(int fd, struct archive **out, const char **filter);

#ifdef __cplusplus
}
#endif
#endif
