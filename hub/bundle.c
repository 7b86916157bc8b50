/*
 * bundle.c — relasi-hub bundle import: one sync exchange by file, for reps
 * with no network (sync/PROTOCOL.md, "Offline bundles").
 *
 * The bundle is verified as the TLS handshake verifies a device (its
 * certificate chains to the device CA; the device is enrolled with that very
 * certificate and not revoked: hub_device_lookup) and its signature must
 * cover everything in it. Then the exchange runs through the same functions
 * as a network session: hub_push (merge, roles, the batch number's
 * idempotency) and hub_pull from the device's cursor, its last page carrying
 * the conflicts that touch the device. The admin command is another process
 * than `serve`: hub_push's BEGIN IMMEDIATE and the store's busy timeout
 * queue it behind a push in progress, as serve's write lock queues its own
 * threads. The answer goes back as a reply bundle signed with the hub's
 * server key, which every device pinned at enrolment.
 */
#include "backup.h"
#include "hub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relasi/bundle.h"
#include "relasi/error.h"
#include "relasi/jsonw.h"
#include "relasi/limits.h"
#include "relasi/outfile.h"
#include "relasi/valid.h"

/* What a reply may hold besides its pages: the envelope (3) and PUSHED. */
#define REPLY_FIXED_MEMBERS 4

static void now_iso(rl_store *s, char out[21])
{
	rl_time_format_utc(out, rl_store_now_ms(s) / 1000);
}

/*
 * Where the reply's pages start: the device's cursor, or just before a
 * version the hub kept for a change the device had pulled past (the same
 * rule the device applies when it records the answer, devsync.c
 * record_pushed, so that both sides agree on the position without a round
 * trip).
 */
static long long pull_from(json_t *push, json_t *pushed, long long cursor)
{
	json_t *results = json_object_get(pushed, "results"), *changes = json_object_get(push, "changes");
	json_t *r;
	long long from = cursor;
	size_t i;

	json_array_foreach(results, i, r) {
		const char *status = json_string_value(json_object_get(r, "s"));
		json_t *jv = json_object_get(r, "v");
		long long v = json_is_integer(jv) ? json_integer_value(jv) : 0;
		if (status && strcmp(status, "applied") != 0 && strcmp(status, "refused") != 0 &&
		    v > 0 && v <= cursor && v - 1 < from)
			from = v - 1;
		/* A refused edit: the device pulls again from the version it was
		 * made on, to show the hub's value again (devsync.c
		 * record_pushed); the reply starts there too, or the device
		 * would find it starting past its cursor and skip it. */
		if (status && strcmp(status, "refused") == 0) {
			json_t *jb = json_object_get(json_array_get(changes, i), "b");
			long long b = json_is_integer(jb) ? json_integer_value(jb) : 0;
			if (b > 0 && b <= cursor && b - 1 < from)
				from = b - 1;
		}
	}
	return from;
}

/* Does the bundle name a history of the hub ("epoch") other than the
 * store's own? A bundle without one (a device from before epochs were
 * carried) or a store without one is taken as it is. */
static int stale_epoch(rl_store *s, json_t *manifest, int *stale)
{
	const char *theirs = json_string_value(json_object_get(manifest, "epoch"));
	char *ours = NULL;
	int error;

	*stale = 0;
	if (!theirs)
		return RL_OK;
	if ((error = rl_store_meta_get(s, "hub_epoch", &ours)) < 0)
		return error;
	*stale = ours && strcmp(ours, theirs) != 0;
	free(ours);
	return RL_OK;
}

static int add_member(struct rl_bundle_member *ms, size_t *n, const char *name, json_t *msg,
		      size_t *total)
{
	char *text = rl_json_dumps(msg, JSON_COMPACT);

	if (!text)
		return rl_error_set(RL_ENOMEM, "out of memory");
	snprintf(ms[*n].name, sizeof(ms[*n].name), "%s", name);
	ms[*n].data = (unsigned char *)text;
	ms[*n].len = strlen(text);
	*total += ms[*n].len;
	(*n)++;
	return RL_OK;
}

int hub_bundle_import(const char *dir, const char *in_path, const char *reply_path,
		      struct hub_bundle_result *res)
{
	char ca[4096], crt[4096], key[4096], at[21];
	struct rl_bundle_member *ms = NULL;
	rl_bundle *b = NULL;
	rl_store *s = NULL;
	struct hub_peer peer;
	json_t *manifest, *push = NULL, *pushed = NULL, *page = NULL, *pull = NULL;
	json_t *header = NULL, *conf = NULL;
	const char *device, *kind;
	long long cursor, from, batch = 0;
	size_t n = 0, total = 0, i;
	int error, more = 1;

	memset(res, 0, sizeof(*res));
	if ((error = hub_path(ca, sizeof(ca), dir, HUB_DEVICE_CA)) < 0 ||
	    (error = hub_path(crt, sizeof(crt), dir, HUB_SERVER_CRT)) < 0 ||
	    (error = hub_path(key, sizeof(key), dir, HUB_SERVER_KEY)) < 0 ||
	    /* before anything is applied: a REPLY that cannot be written */
	    (error = rl_outfile_replaceable(reply_path)) < 0 ||
	    (error = hub_conf_load(dir, &conf)) < 0)
		return error;
	if ((error = rl_bundle_read(in_path, ca, &b)) < 0)
		goto cleanup;
	manifest = b->manifest;
	kind = json_string_value(json_object_get(manifest, "kind"));
	device = json_string_value(json_object_get(manifest, "device"));
	if (!kind || strcmp(kind, "changes") != 0) {
		error = rl_error_set(RL_EINVALID, "'%s' is not a device's bundle (kind '%s')", in_path,
				     kind ? kind : "?");
		goto cleanup;
	}
	/* The certificate says who signed; the payload must be that device's. */
	if (!device || strcmp(device, b->signer_cn) != 0) {
		error = rl_error_set(RL_EAUTH, "'%s' refused: it carries the changes of device %.32s "
				     "but is signed by device %.32s", in_path, device ? device : "?",
				     b->signer_cn);
		goto cleanup;
	}
	if ((error = hub_store_open(&s, dir, 0)) < 0)
		goto cleanup;
	if ((error = hub_device_lookup(s, b->signer_cn, b->signer_fp, &peer)) < 0) {
		rl_error_prefix("'%s' refused", in_path);
		goto cleanup;
	}
	snprintf(res->device, sizeof(res->device), "%s", peer.device);
	snprintf(res->user, sizeof(res->user), "%s", peer.user);
	if ((error = rl_bundle_json(b, "push.json", &push)) < 0)
		goto cleanup;
	if (!json_is_integer(json_object_get(push, "batch")) ||
	    !json_is_integer(json_object_get(push, "cursor")) ||
	    json_integer_value(json_object_get(push, "cursor")) < 0) {
		error = rl_error_set(RL_EINVALID, "'%s': push.json needs batch and cursor", in_path);
		goto cleanup;
	}
	batch = json_integer_value(json_object_get(push, "batch"));
	cursor = json_integer_value(json_object_get(push, "cursor"));
	if (!(ms = calloc(RL_MAX_BUNDLE_MEMBERS, sizeof(*ms)))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	from = cursor;
	/* A bundle frozen before its device heard of a restore of this hub
	 * (it names the history it last exchanged with, and that is not this
	 * one): its bases above the restore point are numbers of the lost
	 * history, which the restored log hands out again for other changes,
	 * so applied now an edit could fast-forward over a change its author
	 * never saw. Nothing is applied; the reply tells the device of the
	 * restore (epoch, lineage), it rebases the batch (hubepoch.c), and its
	 * next bundle carries it. */
	if (batch != 0 && (error = stale_epoch(s, manifest, &res->stale)) < 0)
		goto cleanup;
	/* Batch 0: nothing was pending on the device; it only wants news. */
	if (batch != 0 && !res->stale) {
		long before = res->st.pushed;
		/* A number the device used before for other changes (its store
		 * restored from an older copy): nothing applied, and the reply,
		 * without pushed.json, says "reused" so that the device renumbers
		 * the batch for its next bundle, as a network sync would. */
		if ((error = hub_push(s, &peer, push, &pushed, NULL, &res->st)) == RL_EREUSED) {
			res->reused = 1;
			error = RL_OK;
		} else if (error < 0) {
			rl_error_prefix("'%s'", in_path);
			goto cleanup;
		} else {
			/* hub_push counts only a batch it applies now. */
			res->replayed = res->st.pushed == before &&
					json_array_size(json_object_get(push, "changes")) > 0;
			from = pull_from(push, pushed, cursor);
			if ((error = add_member(ms, &n, "pushed.json", pushed, &total)) < 0)
				goto cleanup;
		}
	}
	res->batch = batch;
	res->from = from;
	res->cursor = from;
	/* Every page a network pull would fetch, within the bundle's limits. */
	while (more && n < RL_MAX_BUNDLE_MEMBERS - REPLY_FIXED_MEMBERS &&
	       total < RL_MAX_BUNDLE_BYTES - 2 * RL_MAX_FRAME) {
		char name[32];
		if (!(pull = json_pack("{s:I, s:i}", "cursor", (json_int_t)res->cursor, "limit",
				       RL_MAX_PAGE_CHANGES))) {
			error = rl_error_set(RL_ENOMEM, "out of memory");
			goto cleanup;
		}
		if ((error = hub_pull(s, &peer, pull, &page, &res->st)) < 0)
			goto cleanup;
		json_decref(pull);
		pull = NULL;
		more = json_is_true(json_object_get(page, "more"));
		res->cursor = json_integer_value(json_object_get(page, "cursor"));
		snprintf(name, sizeof(name), "page-%06ld.json", res->pages + 1);
		if ((error = add_member(ms, &n, name, page, &total)) < 0)
			goto cleanup;
		json_decref(page);
		page = NULL;
		res->pages++;
	}
	res->more = more;
	now_iso(s, at);
	if (!(header = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:b, s:I, s:I}",
				 "kind", "reply", "device", peer.device, "user", peer.user,
				 "hub", hub_conf_name(conf, "relasi-hub"),
				 "created", at, "batch", (json_int_t)batch, "from", (json_int_t)from,
				 "cursor", (json_int_t)res->cursor, "more", more,
				 "pages", (json_int_t)res->pages,
				 "hlc", (json_int_t)rl_hlc_now(rl_store_hlc(s))))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	/* As WELCOME tells a device on the network. */
	if ((error = hub_tell_device(s, peer.device, header, "last_batch")) < 0)
		goto cleanup;
	if (res->reused && json_object_set_new(header, "reused", json_integer(batch)) < 0) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	error = rl_bundle_write(reply_path, header, ms, n, crt, key);
	/* The device's contact and the cursor it held when it made the bundle,
	 * as a network session records them (hub_device_seen): no reason to
	 * fail an import that is done. */
	if (error == 0 && !res->stale && hub_device_seen(s, &peer, cursor) < 0)
		fprintf(stderr, "relasi-hub: note: device %.12s: %s\n", peer.device,
			rl_error_message());
cleanup:
	if (ms)
		for (i = 0; i < n; i++)
			free(ms[i].data);
	free(ms);
	json_decref(header);
	json_decref(conf);
	json_decref(pull);
	json_decref(page);
	json_decref(push);
	json_decref(pushed);
	rl_store_close(s);
	rl_bundle_free(b);
	return error;
}
