/*
 * bundle.c — signed offline bundles written and read with libarchive (see
 * relasi/bundle.h and sync/PROTOCOL.md, "Offline bundles"), which is loaded
 * on first use (archive_lazy.h).
 *
 * A bundle comes from a file a rep carried on a USB stick: it is hostile
 * until proven otherwise. Reading therefore accepts only a tar (pax) archive,
 * gzip, zstd or not compressed; only regular files with plain names; counts
 * and sizes within relasi/limits.h, checked before anything is allocated for
 * them; and hands the caller nothing until the certificate, the signature and
 * every member's hash are verified.
 */
#include "relasi/bundle.h"
#include "relasi/error.h"
#include "relasi/jsonw.h"
#include "relasi/limits.h"
#include "relasi/outfile.h"

#include "archive_lazy.h"

#include <mbedtls/sha256.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MANIFEST   "manifest.json"
#define SIGNATURE  "manifest.sig"
#define SIGNER     "signer.crt"
#define MANIFEST_MAX (256 * 1024)   /* a header and <= 256 member lines */
#define CERT_MAX     (16 * 1024)

static int name_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > RL_BUNDLE_NAME_MAX || !((s[0] >= 'a' && s[0] <= 'z') ||
						   (s[0] >= '0' && s[0] <= '9')))
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		      s[i] == '-'))
			return 0;
	return 1;
}

static void sha256_hex(const unsigned char *d, size_t n, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char h[32];
	int i;

	mbedtls_sha256_ret(d, n, h, 0);
	for (i = 0; i < 32; i++) {
		out[2 * i] = hex[h[i] >> 4];
		out[2 * i + 1] = hex[h[i] & 0xf];
	}
	out[64] = '\0';
}

/* ---- writing -------------------------------------------------------------------------- */

static int add_entry(const struct rl_archive *ar, struct archive *a, const char *path,
		     const char *name, const unsigned char *data, size_t len)
{
	struct archive_entry *e = ar->archive_entry_new();
	int error = RL_OK;

	if (!e)
		return rl_error_set(RL_ENOMEM, "out of memory");
	ar->archive_entry_set_pathname(e, name);
	ar->archive_entry_set_filetype(e, AE_IFREG);
	ar->archive_entry_set_perm(e, 0600);
	ar->archive_entry_set_size(e, (la_int64_t)len);
	ar->archive_entry_set_mtime(e, time(NULL), 0);
	if (ar->archive_write_header(a, e) != ARCHIVE_OK ||
	    (len && ar->archive_write_data(a, data, len) != (la_ssize_t)len))
		error = rl_error_set(RL_EIO, "cannot write '%s' into '%s': %s", name, path,
				     ar->archive_error_string(a));
	ar->archive_entry_free(e);
	return error;
}

int rl_bundle_write(const char *path, json_t *header, const struct rl_bundle_member *members,
		    size_t n, const char *cert_path, const char *key_path)
{
	json_t *manifest = NULL, *list = NULL;
	const struct rl_archive *ar = NULL;
	struct archive *a = NULL;
	const char *filter;
	char *mtext = NULL, *cert = NULL, *tmp = NULL, hash[65];
	unsigned char sig[RL_PKI_SIG_MAX];
	size_t siglen = 0, i, tmplen;
	int error = RL_OK, fd = -1;

	if (n > RL_MAX_BUNDLE_MEMBERS - 3)
		return rl_error_set(RL_ETOOBIG, "a bundle of %zu members (limit %d)", n,
				    RL_MAX_BUNDLE_MEMBERS - 3);
	if ((error = rl_outfile_replaceable(path)) < 0)
		return error;
	if (!(manifest = json_deep_copy(header)) || !(list = json_array())) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < n; i++) {
		size_t k;
		if (!name_valid(members[i].name)) {
			error = rl_error_set(RL_EINVALID, "bad member name '%s'", members[i].name);
			goto cleanup;
		}
		/* The envelope's names and a name twice would make a bundle no
		 * reader accepts (fuzz/corpus/bundle/regress-reserved-name). */
		if (strcmp(members[i].name, MANIFEST) == 0 || strcmp(members[i].name, SIGNATURE) == 0 ||
		    strcmp(members[i].name, SIGNER) == 0) {
			error = rl_error_set(RL_EINVALID, "member name '%s' is the bundle's own",
					     members[i].name);
			goto cleanup;
		}
		for (k = 0; k < i; k++)
			if (strcmp(members[k].name, members[i].name) == 0) {
				error = rl_error_set(RL_EINVALID, "member '%s' given twice",
						     members[i].name);
				goto cleanup;
			}
		sha256_hex(members[i].data, members[i].len, hash);
		if (json_array_append_new(list, json_pack("{s:s, s:I, s:s}", "name", members[i].name,
							  "size", (json_int_t)members[i].len,
							  "sha256", hash)) < 0) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto cleanup;
		}
	}
	if (json_object_set_new(manifest, "format", json_string(RL_BUNDLE_FORMAT)) < 0 ||
	    json_object_set_new(manifest, "version", json_integer(RL_BUNDLE_VERSION)) < 0 ||
	    json_object_set(manifest, "members", list) < 0 ||
	    !(mtext = rl_json_dumps(manifest, JSON_COMPACT | JSON_SORT_KEYS))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((error = rl_pki_sign_data(key_path, (const unsigned char *)mtext, strlen(mtext), sig,
				      &siglen)) < 0 ||
	    (error = rl_pki_read_file(cert_path, &cert)) < 0)
		goto cleanup;

	tmplen = strlen(path) + 32;
	if (!(tmp = malloc(tmplen))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	snprintf(tmp, tmplen, "%s.tmp-%ld", path, (long)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		error = rl_error_set(RL_EIO, "cannot create '%s': %s", tmp, strerror(errno));
		goto cleanup;
	}
	if ((error = rl_archive_load(&ar)) < 0)
		goto cleanup;
	if ((error = rl_archive_writer_open(fd, &a, &filter)) < 0) {
		rl_error_prefix("'%s'", path);
		goto cleanup;
	}
	if ((error = add_entry(ar, a, path, MANIFEST, (const unsigned char *)mtext, strlen(mtext))) < 0 ||
	    (error = add_entry(ar, a, path, SIGNATURE, sig, siglen)) < 0 ||
	    (error = add_entry(ar, a, path, SIGNER, (const unsigned char *)cert, strlen(cert))) < 0)
		goto cleanup;
	for (i = 0; i < n; i++)
		if ((error = add_entry(ar, a, path, members[i].name, members[i].data, members[i].len)) < 0)
			goto cleanup;
	if (ar->archive_write_close(a) != ARCHIVE_OK) {
		error = rl_error_set(RL_EIO, "cannot finish '%s': %s", path, ar->archive_error_string(a));
		goto cleanup;
	}
	/* Durable before it takes the final name: a bundle is the only copy of
	 * the acknowledgement it carries until the device imports it. */
	if (fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		error = rl_error_set(RL_EIO, "cannot write '%s': %s", tmp, strerror(errno));
		goto cleanup;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		error = rl_error_set(RL_EIO, "cannot rename '%s' to '%s': %s", tmp, path,
				     strerror(errno));
		goto cleanup;
	}
	free(tmp);
	tmp = NULL;
cleanup:
	if (a)
		ar->archive_write_free(a);
	if (fd >= 0)
		close(fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	json_decref(manifest);
	json_decref(list);
	free(mtext);
	free(cert);
	return error;
}

/* ---- reading -------------------------------------------------------------------------- */

void rl_bundle_free(rl_bundle *b)
{
	size_t i;

	if (!b)
		return;
	for (i = 0; i < b->n; i++)
		free(b->members[i].data);
	free(b->members);
	json_decref(b->manifest);
	free(b);
}

const struct rl_bundle_member *rl_bundle_get(const rl_bundle *b, const char *name)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (strcmp(b->members[i].name, name) == 0)
			return &b->members[i];
	return NULL;
}

int rl_bundle_json(const rl_bundle *b, const char *name, json_t **out)
{
	const struct rl_bundle_member *m = rl_bundle_get(b, name);
	json_error_t jerr;

	*out = NULL;
	if (!m)
		return rl_error_set(RL_EINVALID, "the bundle has no '%s'", name);
	*out = json_loadb((const char *)m->data, m->len, JSON_REJECT_DUPLICATES, &jerr);
	if (!*out || !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return rl_error_set(RL_EINVALID, "'%s' in the bundle is not a JSON object: %s", name,
				    jerr.text);
	}
	return RL_OK;
}

/* Read every entry of the archive into members[] (all of them, the three
 * envelope members included), within the limits. */
static int read_entries(const char *path, struct rl_bundle_member **out, size_t *count)
{
	struct rl_bundle_member *ms = NULL;
	const struct rl_archive *ar = NULL;
	struct archive *a = NULL;
	struct archive_entry *e;
	size_t n = 0, total = 0, i;
	struct stat sb;
	int error = RL_OK, rc = ARCHIVE_OK, fd = -1;

	*out = NULL;
	*count = 0;
	if ((error = rl_archive_load(&ar)) < 0)
		return error;
	if (!(a = ar->archive_read_new()) ||
	    !(ms = calloc(RL_MAX_BUNDLE_MEMBERS, sizeof(*ms)))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	ar->archive_read_support_filter_gzip(a);
	ar->archive_read_support_filter_zstd(a);
	ar->archive_read_support_filter_none(a);
	ar->archive_read_support_format_tar(a);
	/* Opened here, not by libarchive: a missing file and a file that is
	 * not an archive are different answers. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		error = rl_error_set(errno == ENOENT ? RL_ENOTFOUND : RL_EIO, "cannot open '%s': %s",
				     path, strerror(errno));
		goto cleanup;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		error = rl_error_set(RL_EINVALID, "'%s' is not a file", path);
		goto cleanup;
	}
	if (ar->archive_read_open_fd(a, fd, 64 * 1024) != ARCHIVE_OK) {
		const char *why = ar->archive_error_string(a);
		error = rl_error_set(RL_EINVALID, "'%s' is not a Relasi bundle, or is truncated: %s", path,
				     why ? why : "unreadable archive");
		goto cleanup;
	}
	while ((rc = ar->archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *name = ar->archive_entry_pathname(e);
		la_int64_t size = ar->archive_entry_size(e), got = 0;
		size_t limit = name && strcmp(name, MANIFEST) == 0 ? MANIFEST_MAX
			     : name && strcmp(name, SIGNER) == 0 ? CERT_MAX
			     : name && strcmp(name, SIGNATURE) == 0 ? RL_PKI_SIG_MAX : RL_MAX_FRAME;
		if (n == RL_MAX_BUNDLE_MEMBERS) {
			error = rl_error_set(RL_ETOOBIG, "'%s' has more than %d members", path,
					     RL_MAX_BUNDLE_MEMBERS);
			goto cleanup;
		}
		if (!name || !name_valid(name)) {
			error = rl_error_set(RL_EINVALID, "'%s' holds a member named '%.80s': not one a "
					     "bundle has", path, name ? name : "");
			goto cleanup;
		}
		if (ar->archive_entry_filetype(e) != AE_IFREG) {
			error = rl_error_set(RL_EINVALID, "'%s': member '%s' is not a regular file",
					     path, name);
			goto cleanup;
		}
		for (i = 0; i < n; i++)
			if (strcmp(ms[i].name, name) == 0) {
				error = rl_error_set(RL_EINVALID, "'%s': member '%s' appears twice", path,
						     name);
				goto cleanup;
			}
		if (!ar->archive_entry_size_is_set(e) || size < 0 || (unsigned long long)size > limit) {
			error = rl_error_set(RL_ETOOBIG, "'%s': member '%s' is %lld bytes (limit %zu)",
					     path, name, (long long)size, limit);
			goto cleanup;
		}
		if (total + (size_t)size > RL_MAX_BUNDLE_BYTES) {
			error = rl_error_set(RL_ETOOBIG, "'%s' is larger than %d bytes unpacked", path,
					     RL_MAX_BUNDLE_BYTES);
			goto cleanup;
		}
		snprintf(ms[n].name, sizeof(ms[n].name), "%s", name);
		if (!(ms[n].data = malloc(size ? (size_t)size : 1))) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto cleanup;
		}
		n++;
		while (got < size) {
			la_ssize_t r = ar->archive_read_data(a, ms[n - 1].data + got, (size_t)(size - got));
			if (r <= 0) {
				error = rl_error_set(RL_EINVALID, "'%s' is truncated or damaged (member "
						     "'%s'): %s", path, name,
						     r < 0 ? ar->archive_error_string(a) : "ends early");
				goto cleanup;
			}
			got += r;
		}
		ms[n - 1].len = (size_t)size;
		total += (size_t)size;
	}
	if (rc != ARCHIVE_EOF) {
		const char *why = ar->archive_error_string(a);
		error = rl_error_set(RL_EINVALID, "'%s' is not a Relasi bundle, or is truncated: %s",
				     path, why ? why : "unreadable archive");
		goto cleanup;
	}
	*out = ms;
	*count = n;
	ms = NULL;
cleanup:
	if (ms) {
		for (i = 0; i < n; i++)
			free(ms[i].data);
		free(ms);
	}
	if (a)
		ar->archive_read_free(a);
	if (fd >= 0)
		close(fd);
	return error;
}

int rl_bundle_read(const char *path, const char *ca_path, rl_bundle **out)
{
	struct rl_bundle_member *ms = NULL;
	const struct rl_bundle_member *man = NULL, *sig = NULL, *crt = NULL;
	rl_bundle *b = NULL;
	json_t *list, *o;
	json_error_t jerr;
	size_t n = 0, i, k;
	int error;

	*out = NULL;
	if ((error = read_entries(path, &ms, &n)) < 0)
		return error;
	for (i = 0; i < n; i++) {
		if (strcmp(ms[i].name, MANIFEST) == 0)
			man = &ms[i];
		else if (strcmp(ms[i].name, SIGNATURE) == 0)
			sig = &ms[i];
		else if (strcmp(ms[i].name, SIGNER) == 0)
			crt = &ms[i];
	}
	if (!man || !sig || !crt) {
		error = rl_error_set(RL_EINVALID, "'%s' is not a Relasi bundle (no %s)", path,
				     !man ? MANIFEST : !sig ? SIGNATURE : SIGNER);
		goto cleanup;
	}
	if (!(b = calloc(1, sizeof(*b))) || !(b->members = calloc(n, sizeof(*b->members)))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	/* Who signed, then that they signed exactly this manifest. */
	if ((error = rl_pki_cert_check(ca_path, (const char *)crt->data, crt->len, b->signer_cn,
				       sizeof(b->signer_cn), b->signer_fp)) < 0 ||
	    (error = rl_pki_verify_data((const char *)crt->data, crt->len, man->data, man->len,
					sig->data, sig->len)) < 0) {
		rl_error_prefix("'%s' refused: its signer", path);
		goto cleanup;
	}
	b->manifest = json_loadb((const char *)man->data, man->len, JSON_REJECT_DUPLICATES, &jerr);
	list = json_object_get(b->manifest, "members");
	if (!json_is_object(b->manifest) ||
	    strcmp(json_string_value(json_object_get(b->manifest, "format")) ?
		   json_string_value(json_object_get(b->manifest, "format")) : "",
		   RL_BUNDLE_FORMAT) != 0 || !json_is_array(list)) {
		error = rl_error_set(RL_EINVALID, "'%s' has a malformed manifest", path);
		goto cleanup;
	}
	if (json_integer_value(json_object_get(b->manifest, "version")) != RL_BUNDLE_VERSION) {
		error = rl_error_set(RL_EINVALID, "'%s' is a bundle of version %lld; this relasi reads "
				     "version %d", path,
				     (long long)json_integer_value(json_object_get(b->manifest,
										  "version")),
				     RL_BUNDLE_VERSION);
		goto cleanup;
	}
	/* Every listed member present with its size and hash; nothing else. */
	if (json_array_size(list) != n - 3) {
		error = rl_error_set(RL_EINVALID, "'%s' was changed: it holds %zu members, its "
				     "signed manifest lists %zu", path, n - 3, json_array_size(list));
		goto cleanup;
	}
	json_array_foreach(list, k, o) {
		const char *name = json_string_value(json_object_get(o, "name"));
		const char *want = json_string_value(json_object_get(o, "sha256"));
		json_t *size = json_object_get(o, "size");
		char hash[65];
		for (i = 0; name && i < n; i++)
			if (ms[i].data && strcmp(ms[i].name, name) == 0 && &ms[i] != man && &ms[i] != sig &&
			    &ms[i] != crt)
				break;
		if (!name || !want || !json_is_integer(size) || i == n) {
			error = rl_error_set(RL_EINVALID, "'%s' was changed: member '%s' of its "
					     "manifest is missing", path, name ? name : "?");
			goto cleanup;
		}
		sha256_hex(ms[i].data, ms[i].len, hash);
		if ((json_int_t)ms[i].len != json_integer_value(size) || strcmp(hash, want) != 0) {
			error = rl_error_set(RL_EINVALID, "'%s' was changed: member '%s' does not "
					     "match its signed hash", path, name);
			goto cleanup;
		}
		/* Ownership moves to the bundle. */
		b->members[b->n++] = ms[i];
		ms[i].data = NULL;
	}
	*out = b;
	b = NULL;
cleanup:
	for (i = 0; i < n; i++)
		free(ms[i].data);
	free(ms);
	rl_bundle_free(b);
	return error;
}
