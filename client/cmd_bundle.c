/*
 * cmd_bundle.c — sync by file, for reps with no network at all:
 * `relasi bundle export FILE` writes what `relasi sync` would push, signed
 * with the device's key; the admin runs `relasi-hub bundle import` on it,
 * which writes a reply; `relasi bundle import REPLY` applies the reply as a
 * sync session would (sync/PROTOCOL.md, "Offline bundles").
 *
 * Both directions go through the session's own functions (relasi/devsync.h):
 * the batch is frozen and numbered as for a push, so a bundle exported twice
 * before an answer carries the same batch and the hub applies it once; the
 * answer and the pages are recorded and applied by the code that records and
 * applies them over the network. Enrolment still needs the network once (the
 * device's certificate comes from the hub).
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "relasi/bundle.h"
#include "relasi/devsync.h"
#include "relasi/jsonw.h"
#include "relasi/limits.h"
#include "relasi/outfile.h"
#include "relasi/pki.h"
#include "relasi/valid.h"

static int home_path(struct cli_ctx *ctx, const char *name, char *buf, size_t len)
{
	if ((size_t)snprintf(buf, len, "%s/%s", ctx->home, name) >= len)
		return rl_error_set(RL_EINVALID, "path too long");
	return RL_OK;
}

static int need_enrolment(struct cli_ctx *ctx, char **fp)
{
	int error;

	*fp = NULL;
	if ((error = rl_store_meta_get(ctx->store, "hub_ca_fingerprint", fp)) < 0)
		return error;
	if (!*fp)
		return rl_error_set(RL_EINVALID, "this device is not enrolled: run 'relasi enroll "
				    "TOKEN' once where there is a network (bundles need the "
				    "device's certificate from the hub)");
	return RL_OK;
}

static int cmd_bundle_export(struct cli_ctx *ctx, struct cli_args *a)
{
	char crt[4096], key[4096], at[21], *fp = NULL, *epoch = NULL;
	struct rl_bundle_member m;
	json_t *push = NULL, *header = NULL;
	long long batch, cursor;
	size_t nchanges;
	long restamped = 0;
	long long held = 0;
	int error, lock = -1;

	memset(&m, 0, sizeof(m));
	/* Before the batch is frozen: a FILE that cannot take the bundle
	 * leaves the outbox as it was. */
	if ((error = rl_outfile_replaceable(a->pos[0])) < 0 ||
	    (error = need_enrolment(ctx, &fp)) < 0 ||
	    (error = cli_exchange_lock(ctx, &lock)) < 0 ||
	    (error = home_path(ctx, "device.crt", crt, sizeof(crt))) < 0 ||
	    (error = home_path(ctx, "device.key", key, sizeof(key))) < 0 ||
	    (error = rl_sync_fix_clock(ctx->store, &restamped)) < 0 ||
	    (error = rl_sync_export_push(ctx->store, &push)) < 0 ||
	    (error = rl_store_meta_get(ctx->store, "hub_epoch", &epoch)) < 0)
		goto cleanup;
	batch = json_integer_value(json_object_get(push, "batch"));
	cursor = json_integer_value(json_object_get(push, "cursor"));
	nchanges = json_array_size(json_object_get(push, "changes"));
	rl_time_format_utc(at, rl_store_now_ms(ctx->store) / 1000);
	if (!(header = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "kind", "changes",
				 "device", rl_store_device_id(ctx->store),
				 "user", rl_store_user_id(ctx->store), "created", at,
				 "batch", (json_int_t)batch, "cursor", (json_int_t)cursor,
				 "hlc", (json_int_t)rl_hlc_now(rl_store_hlc(ctx->store)),
				 "hub_ca", fp))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	/* The hub's history this batch's bases and cursor belong to: a hub
	 * restored since applies none of it (hub/bundle.c), since they would
	 * name other changes there; its reply makes this device rebase them. */
	if (epoch && json_object_set_new(header, "epoch", json_string(epoch)) < 0) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	snprintf(m.name, sizeof(m.name), "push.json");
	if (!(m.data = (unsigned char *)rl_json_dumps(push, JSON_COMPACT))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	m.len = strlen((const char *)m.data);
	/* The batch stays 'sent' if this fails: the next export or sync
	 * sends the very same batch. Nothing after the write fails but the
	 * answer's printing, which says the bundle is there. */
	if ((error = cli_note_held(ctx, &held)) < 0 ||
	    (error = rl_bundle_write(a->pos[0], header, &m, 1, crt, key)) < 0)
		goto cleanup;
	if (!ctx->json && restamped)
		printf("re-stamped %ld pending change%s made while this device's clock was ahead\n",
		       restamped, restamped == 1 ? "" : "s");
	if (ctx->json) {
		if ((error = cli_print_json(json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "file",
						      a->pos[0], "batch", (json_int_t)batch,
						      "changes", (json_int_t)nchanges,
						      "cursor", (json_int_t)cursor,
						      "restamped", (json_int_t)restamped,
						      "held", (json_int_t)held))) < 0)
			rl_error_prefix("the bundle '%s' was written, but", a->pos[0]);
	} else if (batch)
		printf("exported batch %lld (%zu change%s) to %s; give it to your hub admin\n", batch,
		       nchanges, nchanges == 1 ? "" : "s", a->pos[0]);
	else
		printf("%s: %s asks the hub only for what this device has not seen\n",
		       held ? "nothing to send" : "nothing pending", a->pos[0]);
cleanup:
	if (lock >= 0)
		close(lock);
	json_decref(push);
	json_decref(header);
	free(m.data);
	free(fp);
	free(epoch);
	return error;
}

/* The page without the changes this device already has (a reply imported
 * twice, or older than a sync since), and without its conflict list when
 * the reply is older than what the device holds. New reference. */
static json_t *page_past(json_t *page, long long cursor, int stale)
{
	json_t *copy = json_copy(page), *kept = json_array(), *c;
	size_t i;

	if (!copy || !kept) {
		json_decref(copy);
		json_decref(kept);
		return NULL;
	}
	json_array_foreach(json_object_get(page, "changes"), i, c)
		if (json_integer_value(json_object_get(c, "s")) > cursor)
			json_array_append(kept, c);
	json_object_set_new(copy, "changes", kept);
	if (stale)
		json_object_del(copy, "conflicts");
	return copy;
}

static int cmd_bundle_import(struct cli_ctx *ctx, struct cli_args *a)
{
	const char *path = a->pos[0], *device, *kind;
	char ca[4096], pinned[RL_FINGERPRINT_BUFSZ], *fp = NULL, *cur = NULL;
	struct rl_sync_stats st;
	rl_bundle *b = NULL;
	json_t *pushed = NULL, **pages = NULL;
	long long from, cursor, before;
	long npages, i;
	long long reused = 0, renumbered = 0;
	int error, recorded = 0, more = 0, stale, skipped = 0, lock = -1, old_history = 0;

	memset(&st, 0, sizeof(st));
	if ((error = need_enrolment(ctx, &fp)) < 0 ||
	    (error = cli_exchange_lock(ctx, &lock)) < 0 ||
	    (error = home_path(ctx, "hub-ca.crt", ca, sizeof(ca))) < 0)
		goto cleanup;
	/* The CA file must still be the one pinned at enrolment. */
	if ((error = rl_pki_fingerprint_file(ca, pinned)) < 0)
		goto cleanup;
	if (strcasecmp(pinned, fp) != 0) {
		error = rl_error_set(RL_EAUTH, "'%s' is not the hub CA pinned at enrolment", ca);
		goto cleanup;
	}
	if ((error = rl_bundle_read(path, ca, &b)) < 0)
		goto cleanup;
	kind = json_string_value(json_object_get(b->manifest, "kind"));
	device = json_string_value(json_object_get(b->manifest, "device"));
	if (!kind || strcmp(kind, "reply") != 0) {
		error = rl_error_set(RL_EINVALID, "'%s' is not a reply from the hub (kind '%s')", path,
				     kind ? kind : "?");
		goto cleanup;
	}
	if (!device || strcmp(device, rl_store_device_id(ctx->store)) != 0) {
		error = rl_error_set(RL_EAUTH, "'%s' is the reply for device %.32s, not for this "
				     "device (%s)", path, device ? device : "?",
				     rl_store_device_id(ctx->store));
		goto cleanup;
	}
	from = json_integer_value(json_object_get(b->manifest, "from"));
	npages = (long)json_integer_value(json_object_get(b->manifest, "pages"));
	if (!json_is_integer(json_object_get(b->manifest, "from")) ||
	    !json_is_integer(json_object_get(b->manifest, "pages")) ||
	    from < 0 || npages < 0 || npages > RL_MAX_BUNDLE_MEMBERS) {
		error = rl_error_set(RL_EINVALID, "'%s' has a malformed manifest", path);
		goto cleanup;
	}
	/* Everything parsed before anything is applied. */
	if (rl_bundle_get(b, "pushed.json") && (error = rl_bundle_json(b, "pushed.json", &pushed)) < 0)
		goto cleanup;
	if (!(pages = calloc(npages ? (size_t)npages : 1, sizeof(*pages)))) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < npages; i++) {
		char name[32];
		snprintf(name, sizeof(name), "page-%06ld.json", i + 1);
		if ((error = rl_bundle_json(b, name, &pages[i])) < 0)
			goto cleanup;
	}
	if ((error = rl_sync_check_reply(pushed, pages, (size_t)npages)) < 0) {
		rl_error_prefix("'%s'", path);
		goto cleanup;
	}

	/* A reply of a history of the hub this device has left since (it
	 * recovered from the hub's restore by another exchange): it answers
	 * what the restore lost, which this device has queued again; nothing
	 * in it applies, as with any reply older than the device's state. Read
	 * as a history the hub lost, it told the rep to ask the admin. */
	if ((error = rl_sync_hub_epoch_past(ctx->store, json_string_value(json_object_get(
			b->manifest, "epoch")), &old_history)) < 0)
		goto cleanup;
	if (old_history) {
		if (ctx->json)
			error = cli_print_json(json_pack("{s:b, s:b}", "recorded", 0,
							 "before_restore", 1));
		else
			printf("'%s' is a reply from before the hub was restored: nothing in it "
			       "applies any more (this device has queued again what the restore "
			       "lost)\n", path);
		goto cleanup;
	}
	/* The hub's history first, as after WELCOME: after a restore the lost
	 * changes are queued again and the cursor goes back before the answer's
	 * versions (from the restored history) are recorded. */
	if ((error = rl_sync_hub_facts(ctx->store, b->manifest,
				       json_object_get(b->manifest, "last_batch"), &st)) < 0)
		goto cleanup;
	if (pushed && (error = rl_sync_record_pushed(ctx->store, pushed, &st, &recorded)) < 0)
		goto cleanup;
	/* The hub had the bundle's batch number with other changes: it applied
	 * nothing; the next bundle carries the batch under a new number. */
	if (json_is_integer(json_object_get(b->manifest, "reused"))) {
		long long was = json_integer_value(json_object_get(b->manifest, "reused"));
		if ((error = rl_sync_renumber_batch(ctx->store, was, &renumbered)) == RL_ENOTFOUND)
			error = RL_OK;    /* an old reply: renumbered already */
		else if (error < 0)
			goto cleanup;
		else
			reused = was;
	}
	if ((error = rl_store_meta_get(ctx->store, "cursor", &cur)) < 0)
		goto cleanup;
	cursor = before = cur ? strtoll(cur, NULL, 10) : 0;
	if (from > cursor) {
		/* The pages start past what this device has: applying them would
		 * skip changes for good. A newer exchange brings them. */
		skipped = 1;
	} else {
		stale = from < before;
		for (i = 0; i < npages; i++) {
			json_t *p = page_past(pages[i], cursor, stale);
			if (!p) {
				error = rl_error_set(RL_ENOMEM, "out of memory");
				goto cleanup;
			}
			error = rl_sync_apply_page(ctx->store, p, &cursor, &more, &st.pulled);
			json_decref(p);
			if (error < 0)
				goto cleanup;
		}
	}
	/* As after a session's pull: refused copies of a recovery that these
	 * pages made moot leave the outbox now. */
	if ((error = rl_sync_tidy_resent(ctx->store)) < 0)
		goto cleanup;
	if (ctx->json) {
		error = cli_print_json(json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, "
						 "s:b, s:I, s:I}",
			"recorded", recorded, "pushed", (json_int_t)st.pushed,
			"applied", (json_int_t)st.applied, "same", (json_int_t)st.same,
			"merged", (json_int_t)st.merged, "conflicts", (json_int_t)st.conflicts,
			"refused", (json_int_t)st.refused, "pulled", (json_int_t)st.pulled,
			"cursor", (json_int_t)cursor, "more", more, "skipped", skipped,
			"reused", (json_int_t)reused, "renumbered", (json_int_t)renumbered));
	} else {
		if (st.restored)
			printf("the hub was restored from a backup that ends at change %lld: this "
			       "device queued %ld changes the hub lost; export again to send them\n",
			       st.restored_at, st.resent);
		if (reused)
			printf("the hub already had batch %lld of this device with other changes (was "
			       "this store restored from an older copy?): nothing was applied; they are "
			       "now batch %lld: export again to send them\n", reused, renumbered);
		if (pushed && !recorded)
			printf("the hub's answer to batch %lld was recorded before: nothing to record\n",
			       (long long)json_integer_value(json_object_get(pushed, "batch")));
		printf("imported: pushed %ld (applied %ld, unchanged %ld, merged %ld, conflicts %ld, "
		       "refused %ld), pulled %ld\n", st.pushed, st.applied, st.same, st.merged,
		       st.conflicts, st.refused, st.pulled);
		if (skipped)
			printf("its changes start past what this device has: export again for them\n");
		else if (more)
			printf("more changes wait at the hub: export again and bring back the reply\n");
	}
cleanup:
	if (lock >= 0)
		close(lock);
	if (pages)
		for (i = 0; i < npages; i++)
			json_decref(pages[i]);
	free(pages);
	json_decref(pushed);
	rl_bundle_free(b);
	free(fp);
	free(cur);
	return error;
}

const struct cli_cmd cli_cmds_bundle[] = {
	{ "bundle export", cmd_bundle_export, "FILE",
	  "write this device's pending changes to a signed file for the hub (no network)",
	  NULL, NULL, CLI_MODEL_NONE, 1, 1, 1 },
	{ "bundle import", cmd_bundle_import, "REPLY",
	  "apply the hub's reply bundle: acknowledgements and everyone's changes",
	  NULL, NULL, CLI_MODEL_NONE, 1, 1, 1 },
	{ NULL, NULL, NULL, NULL, NULL, NULL, CLI_MODEL_NONE, 0, 0, 0 }
};
