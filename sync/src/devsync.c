/*
 * devsync.c — the device's sync session (see relasi/devsync.h and
 * sync/PROTOCOL.md).
 */
#include "relasi/devsync.h"
#include "relasi/error.h"
#include "relasi/jsonw.h"
#include "relasi/limits.h"
#include "relasi/merge.h"
#include "relasi/model.h"
#include "relasi/outbox.h"
#include "relasi/page.h"
#include "relasi/pushed.h"
#include "relasi/valid.h"
#include "relasi/wire.h"

#include "chunk.h"
#include "image.h"
#include "schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PULL_LIMIT 1000

static int meta_int(rl_store *s, const char *key, long long *out)
{
	char *v = NULL;
	int error = rl_store_meta_get(s, key, &v);
	*out = v ? strtoll(v, NULL, 10) : 0;
	free(v);
	return error;
}

static int meta_set_int(rl_store *s, const char *key, long long v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%lld", v);
	return rl_store_meta_set(s, key, buf);
}

/* An ERROR frame: an error with the hub's own words. */
static int hub_refused(json_t *resp)
{
	const char *code = json_string_value(json_object_get(resp, "code"));
	const char *msg = json_string_value(json_object_get(resp, "message"));

	/* The hub's own failure (its disk full, its store unreadable) is not a
	 * verdict on the rep's changes: say so, and that they wait. */
	if (code && strcmp(code, "internal") == 0)
		return rl_error_set(RL_EPROTO, "the hub failed: %s (internal); nothing is lost: "
				    "what it did not acknowledge stays pending here, sync again later",
				    msg ? msg : "no reason");
	return rl_error_set(code && (strcmp(code, "auth") == 0 || strcmp(code, "token") == 0)
			    ? RL_EAUTH : code && strcmp(code, "clock") == 0 ? RL_ECLOCK
			    : code && strcmp(code, "batch") == 0 ? RL_EREUSED
			    : RL_EPROTO, "the hub refused: %s (%s)", msg ? msg : "no reason",
			    code ? code : "?");
}

/* The hub's answer as raw bytes, for the readers that take a frame without
 * a JSON tree ((*frame)[0] is `want`, *len bytes in all); an ERROR frame
 * becomes an error with the hub's own words. *frame (capacity *cap) is the
 * caller's, kept between frames. */
static int receive_frame(rl_conn *c, int want, unsigned char **frame, size_t *cap, size_t *len)
{
	json_t *answer = NULL;
	int type, error;

	if ((error = rl_wire_read_raw(c, RL_MAX_FRAME, RL_ANSWER_TIMEOUT_MS, frame, cap, len)) < 0) {
		/* Said from the rep's side: who closed, and what to do. */
		if (error == RL_ECLOSED)
			rl_error_set(RL_ECLOSED, "the hub closed the connection before it answered "
				     "(a hub stopping, or a cut link); nothing is lost: sync again");
		return error;
	}
	if ((*frame)[0] == want)
		return RL_OK;
	if ((error = rl_wire_decode(*frame, *len, &type, &answer)) == 0)
		error = type == RL_FRAME_ERROR ? hub_refused(answer) :
			rl_error_set(RL_EPROTO, "the hub answered '%c' where '%c' was expected", type,
				     want);
	json_decref(answer);
	return error;
}

/* The hub's answer of type `want`, decoded (the small frames: WELCOME,
 * SNAP); errors as receive_frame. */
static int receive(rl_conn *c, int want, json_t **resp)
{
	unsigned char *frame = NULL;
	size_t cap = 0, len;
	int type, error;

	*resp = NULL;
	if ((error = receive_frame(c, want, &frame, &cap, &len)) == 0)
		error = rl_wire_decode(frame, len, &type, resp);
	free(frame);
	return error;
}

/* Send a request and read its answer (receive). */
static int exchange(rl_conn *c, int type, json_t *req, int want, json_t **resp)
{
	int error;

	*resp = NULL;
	if ((error = rl_wire_write(c, type, req, RL_MAX_FRAME, RL_READ_TIMEOUT_MS)) < 0)
		return error;
	return receive(c, want, resp);
}

/* ---- push ---------------------------------------------------------------------- */

/*
 * Changes per batch: RL_MAX_BATCH_CHANGES, or fewer when RELASI_SYNC_BATCH
 * says so (1..RL_MAX_BATCH_CHANGES; anything else is ignored). Smaller
 * batches lose less work to a link that drops mid-batch, at the cost of
 * more commits and round trips; tests/sim/simulate.py uses it so that its
 * syncs often take several batches (the device sends the next batch before
 * it records the answer to the last one: the path that needs covering).
 */
static long long batch_changes(void)
{
	const char *env = getenv("RELASI_SYNC_BATCH");
	char *end;
	long long n;

	if (!env || !*env)
		return RL_MAX_BATCH_CHANGES;
	n = strtoll(env, &end, 10);
	return *end || n < 1 || n > RL_MAX_BATCH_CHANGES ? RL_MAX_BATCH_CHANGES : n;
}

/* Freeze the next batch: pending changes in order, whole records only,
 * within the count and size limits. Returns its number in *batch (0: none). */
static int freeze_batch(rl_store *s, long long *batch)
{
	sqlite3_stmt *st, *mark;
	long long next, count = 0, bytes = 0, run_count = 0, run_bytes = 0;
	long long max_changes = batch_changes();
	long long first = 0, last = 0, run_last = 0;
	char last_tbl[64] = "", last_row[RL_ID_BUFSZ] = "";
	int error, rc, started = 0, held;

	*batch = 0;
	if ((error = rl_store_begin(s)) < 0)
		return error;
	if ((error = meta_int(s, "next_batch", &next)) < 0)
		goto fail;
	if (next < 1)
		next = 1;
	/* A refused new record's later edits are held (relasi/outbox.h); the
	 * question is asked only of an outbox that has refused changes. */
	if ((error = rl_store_prepare(s, "SELECT EXISTS (SELECT 1 FROM rl_outbox WHERE "
				      "state = 'refused')", &st)) < 0)
		goto fail;
	rc = sqlite3_step(st);
	held = rc == SQLITE_ROW && sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW) {
		error = rl_store_error(s, "reading the outbox");
		goto fail;
	}
	if ((error = rl_store_prepare(s, held ?
	     "SELECT seq, tbl, row_id, length(CAST(value AS BLOB)) FROM rl_outbox "
	     "WHERE state = 'pending' AND NOT " RL_OUTBOX_HELD_SQL("rl_outbox") " ORDER BY seq" :
	     "SELECT seq, tbl, row_id, length(CAST(value AS BLOB)) "
	     "FROM rl_outbox WHERE state = 'pending' ORDER BY seq", &st)) < 0)
		goto fail;
	/* Collect runs of one record; add a run only if it fits whole. Runs
	 * are taken in seq order up to the first that does not fit, so the
	 * batch is every pending change from the first seq to the last one
	 * taken: marked with one statement after the scan. */
	for (;;) {
		const char *tbl = NULL, *row = NULL;
		int flush;
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			tbl = (const char *)sqlite3_column_text(st, 1);
			row = (const char *)sqlite3_column_text(st, 2);
		}
		flush = rc != SQLITE_ROW || strcmp(tbl, last_tbl) != 0 || strcmp(row, last_row) != 0;
		if (flush && run_count) {
			if (count && (count + run_count > max_changes ||
				      bytes + run_bytes > RL_MAX_BATCH_BYTES))
				break;
			count += run_count;
			bytes += run_bytes;
			last = run_last;
			run_count = run_bytes = 0;
		}
		if (rc != SQLITE_ROW)
			break;
		run_last = sqlite3_column_int64(st, 0);
		if (!started) {
			first = run_last;
			started = 1;
		}
		run_count++;
		run_bytes += sqlite3_column_int64(st, 3) + 128;
		snprintf(last_tbl, sizeof(last_tbl), "%s", tbl);
		snprintf(last_row, sizeof(last_row), "%s", row);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		error = rl_store_error(s, "reading the outbox");
		goto fail;
	}
	if (count) {
		if ((error = rl_store_prepare(s, held ?
		     "UPDATE rl_outbox SET state = 'sent', batch = ?3 WHERE seq BETWEEN ?1 AND ?2 "
		     "AND state = 'pending' AND NOT " RL_OUTBOX_HELD_SQL("rl_outbox") :
		     "UPDATE rl_outbox SET state = 'sent', batch = ?3 "
		     "WHERE seq BETWEEN ?1 AND ?2 AND state = 'pending'", &mark)) < 0)
			goto fail;
		sqlite3_bind_int64(mark, 1, first);
		sqlite3_bind_int64(mark, 2, last);
		sqlite3_bind_int64(mark, 3, next);
		rc = sqlite3_step(mark);
		sqlite3_reset(mark);
		if (rc != SQLITE_DONE) {
			error = rl_store_error(s, "freezing a batch");
			goto fail;
		}
		if (sqlite3_changes(rl_store_db(s)) != count) {
			error = rl_error_set(RL_ESTORE, "freezing a batch: %lld changes counted, "
					     "%d marked", count, sqlite3_changes(rl_store_db(s)));
			goto fail;
		}
		if ((error = meta_set_int(s, "next_batch", next + 1)) < 0)
			goto fail;
	}
	if ((error = rl_store_commit(s)) < 0)
		goto fail;
	*batch = count ? next : 0;
	return RL_OK;
fail:
	rl_store_rollback(s);
	return error;
}

/*
 * Batch numbers after the hub's. The hub answers a batch number it has
 * recorded with the stored answer, so a device whose store was restored
 * from an older copy, counting from where the copy was, would have its new
 * changes answered with an old batch's results and never applied. WELCOME
 * says the last batch the hub recorded for this device (hub_last): new
 * batches are numbered after it. A batch already sent keeps its number: its changes are
 * the ones the hub may have recorded under it.
 */
static int number_after(rl_store *s, long long hub_last)
{
	long long next;
	int error;

	if ((error = meta_int(s, "next_batch", &next)) < 0 || next > hub_last)
		return error;
	if ((error = rl_store_begin(s)) < 0)
		return error;
	if ((error = meta_set_int(s, "next_batch", hub_last + 1)) < 0 ||
	    (error = rl_store_commit(s)) < 0)
		rl_store_rollback(s);
	return error;
}

/*
 * After a hub restore the answers this device got in the lost history are
 * not the hub's: its last answered batch becomes the hub's record of it
 * (none, from a hub that does not say), or the device, telling the higher
 * one in HELLO, would look ahead of the restored hub's history until its
 * next push and make it start yet another epoch.
 */
static int acked_after_restore(rl_store *s, json_t *last_batch)
{
	long long acked;
	int error;

	if ((error = meta_int(s, "hub_acked", &acked)) < 0 ||
	    (last_batch && acked <= json_integer_value(last_batch)))
		return error;
	if ((error = rl_store_begin(s)) < 0)
		return error;
	if ((error = meta_set_int(s, "hub_acked",
				  last_batch ? json_integer_value(last_batch) : 0)) < 0 ||
	    (error = rl_store_commit(s)) < 0)
		rl_store_rollback(s);
	return error;
}

int rl_sync_hub_facts(rl_store *s, json_t *facts, json_t *last_batch,
		      struct rl_sync_stats *stats)
{
	int error;

	if (last_batch && (!json_is_integer(last_batch) || json_integer_value(last_batch) < 0 ||
			   json_integer_value(last_batch) > RL_MAX_BATCH_NUMBER))
		return rl_error_set(RL_EPROTO, "the hub's last batch number for this device is "
				    "malformed");
	if ((error = rl_sync_hub_epoch(s, facts, stats)) < 0 ||
	    (stats->restored && (error = acked_after_restore(s, last_batch)) < 0))
		return error;
	return last_batch ? number_after(s, json_integer_value(last_batch)) : RL_OK;
}

/* The first sent batch after `after` (0: none); after = 0: the first one,
 * the one an earlier session left unanswered. The batch index, not a scan. */
static int sent_batch_after(rl_store *s, long long after, long long *batch)
{
	sqlite3_stmt *st;
	int error, rc;

	*batch = 0;
	if ((error = rl_store_prepare(s, "SELECT min(batch) FROM rl_outbox WHERE batch > ?1 "
				      "AND state = 'sent'", &st)) < 0)
		return error;
	sqlite3_bind_int64(st, 1, after);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		*batch = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	/* An unreadable answer is not "no batch in flight": a new batch would
	 * leave the sent one behind. */
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? RL_OK : rl_store_error(s, "finding a sent batch");
}

/*
 * Every sent batch from `batch` on moves past the last number used, in
 * their order and in one transaction: the next batch may be frozen already
 * (rl_sync_session_ex prepares it while the hub merges the current one, and
 * a session cut then leaves both), and a later batch sent ahead of an
 * earlier one would put a field's newer value before its older one.
 */
int rl_sync_renumber_batch(rl_store *s, long long batch, long long *to)
{
	long long *moving = NULL, b, next;
	size_t n = 0, cap = 0, i;
	sqlite3_stmt *st;
	int error;

	if ((error = rl_store_begin(s)) < 0)
		return error;
	if ((error = sent_batch_after(s, batch - 1, &b)) < 0)
		goto fail;
	if (b != batch) {
		error = rl_error_set(RL_ENOTFOUND, "no sent change is in batch %lld", batch);
		goto fail;
	}
	for (; b; error = sent_batch_after(s, b, &b)) {
		if (error < 0)
			goto fail;
		if (n == cap) {
			long long *grown = realloc(moving, (cap ? cap * 2 : 4) * sizeof(*moving));
			if (!grown) {
				error = rl_error_set(RL_ENOMEM, "out of memory");
				goto fail;
			}
			moving = grown;
			cap = cap ? cap * 2 : 4;
		}
		moving[n++] = b;
	}
	if (error < 0 || (error = meta_int(s, "next_batch", &next)) < 0)
		goto fail;
	if (next <= moving[n - 1])
		next = moving[n - 1] + 1;
	if ((error = rl_store_prepare(s, "UPDATE rl_outbox SET batch = ?2 WHERE state = 'sent' "
				      "AND batch = ?1", &st)) < 0)
		goto fail;
	for (i = 0; i < n; i++) {
		sqlite3_bind_int64(st, 1, moving[i]);
		sqlite3_bind_int64(st, 2, next + (long long)i);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_reset(st);
			error = rl_store_error(s, "renumbering a batch");
			goto fail;
		}
		sqlite3_reset(st);
	}
	if ((error = meta_set_int(s, "next_batch", next + (long long)n)) < 0 ||
	    (error = rl_store_commit(s)) < 0)
		goto fail;
	free(moving);
	*to = next;
	return RL_OK;
fail:
	free(moving);
	rl_store_rollback(s);
	return error;
}

/* The changes of sent batch `batch`, in order: their outbox seqs (*seqs,
 * malloc'd) and, when text is not NULL, their PUSH form as a JSON array
 * (*text, malloc'd), written without a jansson tree (relasi/jsonw.h: a
 * tree of a few thousand changes built only to be printed was a tenth of
 * the device's push). *n = 0: no change of that batch waits for an answer. */
static int read_batch(rl_store *s, long long batch, char **text, long long **seqs, size_t *n)
{
	size_t cap = 256;
	sqlite3_str *out = NULL;
	sqlite3_stmt *st;
	int error, rc;

	*n = 0;
	if (text)
		*text = NULL;
	if (!(*seqs = malloc(cap * sizeof(**seqs))))
		return rl_error_set(RL_ENOMEM, "out of memory");
	if ((error = rl_store_prepare(s, "SELECT seq, tbl, row_id, field, value, coalesce(base, 0), hlc "
				      "FROM rl_outbox WHERE state = 'sent' AND batch = ?1 ORDER BY seq",
				      &st)) < 0)
		return error;
	if (text) {
		out = sqlite3_str_new(rl_store_db(s));
		sqlite3_str_appendchar(out, 1, '[');
	}
	sqlite3_bind_int64(st, 1, batch);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (out) {
			struct rl_value v;
			const char *name[3];
			int k;
			for (k = 0; k < 3; k++)
				name[k] = (const char *)sqlite3_column_text(st, 1 + k);
			if (!name[0] || !name[1] || !name[2]) {
				error = rl_store_error(s, "reading a batch");
				break;
			}
			rl_store_column_value(st, 4, &v);
			if (*n)
				sqlite3_str_appendchar(out, 1, ',');
			for (k = 0; k < 3 && error == 0; k++) {
				sqlite3_str_appendf(out, "%s\"%c\":", k ? "," : "{", "trf"[k]);
				error = rl_jsonw_string(out, name[k]);
			}
			if (error == 0) {
				sqlite3_str_appendall(out, ",\"v\":");
				error = rl_jsonw_value(out, &v);
			}
			if (error < 0) {
				rl_error_prefix("change %lld of the outbox",
						(long long)sqlite3_column_int64(st, 0));
				break;
			}
			sqlite3_str_appendf(out, ",\"b\":%lld,\"h\":%lld}",
					    (long long)sqlite3_column_int64(st, 5),
					    (long long)sqlite3_column_int64(st, 6));
		}
		if (*n == cap) {
			long long *ns = realloc(*seqs, cap * 2 * sizeof(**seqs));
			if (!ns) {
				error = rl_error_set(RL_ENOMEM, "out of memory");
				break;
			}
			*seqs = ns;
			cap *= 2;
		}
		(*seqs)[(*n)++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (error == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		error = rl_store_error(s, "reading a batch");
	if (out) {
		sqlite3_str_appendchar(out, 1, ']');
		if (error < 0)
			sqlite3_free(sqlite3_str_finish(out));
		else
			error = rl_jsonw_finish(out, text);
	}
	return error;
}

/*
 * Check the hub's PUSHED answer to batch `batch` (n changes, sent with
 * `cursor`) and work out the cursor the device has once it is recorded:
 * *rewind. A change the hub kept (or already had) at a version this device
 * has pulled past was skipped by that pull, because this edit was pending
 * (made while a sync ran). Nothing would send it again and the device
 * would keep its losing value for good (tests/sim/simulate.py, FINDINGS 4):
 * the device pulls again from just before it. (The hub's bundle import
 * starts the reply's pages from the same point: hub/bundle.c.) A pure
 * function of the answer, so that the session can send the next batch with
 * this cursor before it records the answer.
 */
static int answer_rewind(const struct rl_pushed *a, long long batch, size_t n, long long cursor,
			 long long *rewind)
{
	size_t i;

	if (a->batch != batch || a->n != n)
		return rl_error_set(RL_EPROTO, "the hub's answer does not match batch %lld", batch);
	*rewind = cursor;
	for (i = 0; i < n; i++) {
		const struct rl_result *r = &a->results[i];
		if (r->status != RL_RESULT_REFUSED && r->status != RL_RESULT_APPLIED &&
		    r->version > 0 && r->version <= cursor && r->version - 1 < *rewind)
			*rewind = r->version - 1;
	}
	return RL_OK;
}

/* The version of outbox change seq's field: its base (rl_base) when the
 * hub holds exactly our value there, else the version that holds ours
 * (rl_hold). Either only moves forward. */
static int record_version(rl_store *s, int base, long long seq, long long version)
{
	sqlite3_stmt *st;
	int error, rc;

	if ((error = rl_store_prepare(s, base ?
	     "INSERT INTO rl_base(tbl, row_id, field, version) "
	     "SELECT tbl, row_id, field, ?2 FROM rl_outbox WHERE seq = ?1 "
	     "ON CONFLICT(tbl, row_id, field) DO UPDATE SET version = max(version, excluded.version)" :
	     "INSERT INTO rl_hold(tbl, row_id, field, version) "
	     "SELECT tbl, row_id, field, ?2 FROM rl_outbox WHERE seq = ?1 "
	     "ON CONFLICT(tbl, row_id, field) DO UPDATE SET version = max(version, excluded.version)",
	     &st)) < 0)
		return error;
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, version);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? RL_OK : rl_store_error(s, "recording a version");
}

/* RL_OK if changes seqs[n] are all still sent in batch `batch`; RL_EBUSY
 * if none is (the answer was recorded already); RL_ESTORE otherwise. Only
 * this batch's changes carry its number, so counting those sent with it
 * within the seqs' range says whether all of seqs still are. */
static int batch_still_sent(rl_store *s, long long batch, const long long *seqs, size_t n)
{
	sqlite3_stmt *st;
	long long found = 0, lo = seqs[0], hi = seqs[0];
	size_t i;
	int error, rc;

	for (i = 1; i < n; i++) {
		lo = seqs[i] < lo ? seqs[i] : lo;
		hi = seqs[i] > hi ? seqs[i] : hi;
	}
	if ((error = rl_store_prepare(s, "SELECT count(*) FROM rl_outbox WHERE batch = ?1 AND "
				      "state = 'sent' AND seq BETWEEN ?2 AND ?3", &st)) < 0)
		return error;
	sqlite3_bind_int64(st, 1, batch);
	sqlite3_bind_int64(st, 2, lo);
	sqlite3_bind_int64(st, 3, hi);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		found = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return rl_store_error(s, "reading the outbox");
	if (found == (long long)n)
		return RL_OK;
	if (found == 0)
		return rl_error_set(RL_EBUSY, "the answer to batch %lld was already recorded "
				    "(another sync or bundle import of this store); sync again", batch);
	return rl_error_set(RL_ESTORE, "batch %lld: %lld of its %zu changes are no longer sent "
			    "with it", batch, (long long)n - found, n);
}

/*
 * Record the hub's PUSHED answer to batch `batch` (whose changes are seqs[n],
 * sent with `cursor`): one transaction for the whole batch. The network
 * session and an imported reply bundle both come through here.
 */
static int record_pushed(rl_store *s, long long batch, long long cursor, const long long *seqs,
			 size_t n, const struct rl_pushed *a, struct rl_sync_stats *stats)
{
	long long rewind;
	sqlite3_stmt *st;
	size_t i;
	int error = RL_OK, rc = SQLITE_DONE;

	if ((error = answer_rewind(a, batch, n, cursor, &rewind)) < 0)
		return error;
	if ((error = rl_store_begin(s)) < 0)
		return error;
	/* The answer is this batch's only while its changes are still sent
	 * with it: an answer recorded already (a second process, a reply
	 * bundle of the same batch) has removed them, and seqs are reused
	 * (no AUTOINCREMENT), so the same numbers may now be the rep's newer,
	 * unsent edits, which this answer must not touch. */
	if (n > 0 && (error = batch_still_sent(s, batch, seqs, n)) < 0) {
		rl_store_rollback(s);
		return error;
	}
	for (i = 0; i < n; i++) {
		const struct rl_result *r = &a->results[i];
		if (r->status == RL_RESULT_REFUSED) {
			/* The change stays, refused and visible (relasi status,
			 * outbox); the record takes the hub's value back: the pull
			 * starts again at the version the edit was made on, which
			 * a field no longer 'mine' takes (FINDINGS: a refused
			 * edit left the device diverged for good). A refused new
			 * record has no hub version: it stays as the rep made it. */
			long long base = 0;
			if ((error = rl_store_prepare(s, "SELECT base FROM rl_outbox WHERE seq = ?1",
						      &st)) < 0)
				break;
			sqlite3_bind_int64(st, 1, seqs[i]);
			if (sqlite3_step(st) == SQLITE_ROW)
				base = sqlite3_column_int64(st, 0);
			sqlite3_reset(st);
			if (base > 0 && base - 1 < rewind)
				rewind = base - 1;
			if ((error = rl_store_prepare(s, "UPDATE rl_outbox SET state = 'refused', "
						      "reason = ?2 WHERE seq = ?1", &st)) < 0)
				break;
			sqlite3_bind_int64(st, 1, seqs[i]);
			sqlite3_bind_text(st, 2, r->reason ? r->reason : "refused by the hub", -1,
					  SQLITE_STATIC);
			rc = sqlite3_step(st);
			sqlite3_reset(st);
			stats->refused++;
		} else {
			if (r->status == RL_RESULT_CONFLICT) {
				/* The details arrive with the last PULL page. */
				stats->conflicts++;
			} else if (r->status == RL_RESULT_APPLIED) {
				stats->applied++;
			} else if (r->status == RL_RESULT_MERGED) {
				stats->merged++;
			} else {
				stats->same++;
			}
			/* The version becomes this field's base only when the hub now
			 * holds exactly our value ('applied'). After a merge, a "same"
			 * whose text the hub already contained, or a conflict, the
			 * hub's value at that version is one we have not received:
			 * recording it let our next edit, made on our own text before
			 * the pull brought the merge (a cut, a crash), fast-forward
			 * over it and silently drop the other side's lines
			 * (tests/sim/simulate.py, FINDINGS 3). The pull records the
			 * version when the value arrives. After 'merged' or 'same'
			 * the hub's value at that version holds ours: it is
			 * recorded as a hold, so that older values a pull brings
			 * meanwhile are not applied over ours (schema/018_hold.sql,
			 * FINDINGS 9). */
			if (r->version > 0 && r->status != RL_RESULT_CONFLICT &&
			    (error = record_version(s, r->status == RL_RESULT_APPLIED, seqs[i],
						    r->version)) < 0)
				break;
			if ((error = rl_store_prepare(s, "DELETE FROM rl_outbox WHERE seq = ?1", &st)) < 0)
				break;
			sqlite3_bind_int64(st, 1, seqs[i]);
			rc = sqlite3_step(st);
			sqlite3_reset(st);
		}
		if (rc != SQLITE_DONE) {
			error = rl_store_error(s, "recording the hub's answer");
			break;
		}
	}
	/* Only ever down: an earlier batch's answer of this session may have
	 * moved the stored cursor below the one this batch was sent with. */
	if (error == 0 && rewind < cursor) {
		long long stored = cursor;
		if ((error = meta_int(s, "cursor", &stored)) == 0 && rewind < stored)
			error = meta_set_int(s, "cursor", rewind);
	}
	/* The last batch the hub answered, which it recorded before it
	 * answered: told in HELLO, so that a hub put back from an older copy
	 * of itself sees this device is ahead of it (hub/epoch.c). */
	if (error == 0) {
		long long acked = 0;
		if ((error = meta_int(s, "hub_acked", &acked)) == 0 && batch > acked)
			error = meta_set_int(s, "hub_acked", batch);
	}
	if (error == 0)
		error = rl_store_commit(s);
	if (error < 0)
		rl_store_rollback(s);
	stats->pushed += (long)n;
	stats->batches++;
	return error;
}

/* One push batch on its way: its changes read and encoded (prepare_push),
 * sent with the cursor the device will have when the answer before it is
 * recorded (send_push), answered (receive_push), recorded (record_push). */
struct outgoing {
	long long batch, cursor;
	long long *seqs;
	size_t n;
	char *changes;                /* the JSON array of the changes */
	struct rl_pushed answer;      /* PUSHED, checked, not yet recorded */
};

static void outgoing_free(struct outgoing *o)
{
	free(o->changes);
	rl_pushed_free(&o->answer);
	free(o->seqs);
	memset(o, 0, sizeof(*o));
}

/* Read and encode the batch while the hub merges the one before: only the
 * cursor, known once that answer is in, is left for send_push. */
static int prepare_push(rl_store *s, long long batch, struct outgoing *o)
{
	memset(o, 0, sizeof(*o));
	o->batch = batch;
	return read_batch(s, batch, &o->changes, &o->seqs, &o->n);
}

static int send_push(rl_conn *c, struct outgoing *o, long long cursor)
{
	char head[96];
	const char *parts[3];
	size_t lens[3];

	o->cursor = cursor;
	lens[0] = (size_t)snprintf(head, sizeof(head), "{\"batch\":%lld,\"cursor\":%lld,\"changes\":",
				   o->batch, o->cursor);
	parts[0] = head;
	parts[1] = o->changes;
	lens[1] = strlen(o->changes);
	parts[2] = "}";
	lens[2] = 1;
	return rl_wire_write_parts(c, RL_FRAME_PUSH, parts, lens, 3, RL_MAX_FRAME,
				   RL_READ_TIMEOUT_MS);
}

/* The answer to o, read by pushed.c (relasi/pushed.h says why) and checked;
 * *cursor_after is the device's cursor once it is recorded (the next batch
 * goes with it). *frame (capacity *cap) is the caller's. */
static int receive_push(rl_conn *c, struct outgoing *o, unsigned char **frame, size_t *cap,
			long long *cursor_after)
{
	size_t len;
	int error;

	if ((error = receive_frame(c, RL_FRAME_PUSHED, frame, cap, &len)) < 0 ||
	    (error = rl_pushed_parse(&o->answer, *frame + 1, len - 1)) < 0)
		return error;
	return answer_rewind(&o->answer, o->batch, o->n, o->cursor, cursor_after);
}

static int record_push(rl_store *s, struct outgoing *o, struct rl_sync_stats *stats)
{
	return record_pushed(s, o->batch, o->cursor, o->seqs, o->n, &o->answer, stats);
}

/* ---- pull ------------------------------------------------------------------------- */

/* A pulled change, checked as the hub checks a pushed one: a known field of
 * a known table, a valid id, a value the model takes — or a bad hub (or a
 * bug) would plant values the device's own code never writes (a phone
 * "abc", a real in an integer column; found by fuzz/fuzz_dev_sync). page.c
 * has checked the shape. */
static int check_pulled(const struct rl_page_change *p)
{
	const struct rl_table *t = rl_model_table(p->tbl);
	const struct rl_field *f = t ? rl_model_field(t, p->field) : NULL;

	if (p->seq <= 0)
		return rl_error_set(RL_EPROTO, "a pulled change is malformed");
	if (!t || strcmp(t->name, p->tbl) != 0 || !f || !rl_id_valid(p->row))
		return rl_error_set(RL_EPROTO, "the hub sent an unknown field %.40s.%.40s",
				    p->tbl, p->field);
	if (rl_model_check_value(t, f, &p->value) < 0)
		return rl_error_set(RL_EPROTO, "the hub sent an invalid value for %s.%s",
				    t->name, f->name);
	return RL_OK;
}

static int row_exists(rl_store *s, const char *tbl, const char *row, int *exists)
{
	char *sql = sqlite3_mprintf("SELECT 1 FROM \"%w\" WHERE id = ?1", tbl);
	sqlite3_stmt *st;
	int error, rc;

	if (!sql)
		return rl_error_set(RL_ENOMEM, "out of memory");
	error = rl_store_prepare(s, sql, &st);
	sqlite3_free(sql);
	if (error < 0)
		return error;
	sqlite3_bind_text(st, 1, row, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*exists = rc == SQLITE_ROW;
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? RL_OK : rl_store_error(s, "reading a record");
}

/* A pulled change's table, record and field as ?1, ?2, ?3. */
static void bind_key(sqlite3_stmt *st, const struct rl_page_change *p)
{
	sqlite3_bind_text(st, 1, p->tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, p->row, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, p->field, -1, SQLITE_STATIC);
}

/* What the device knows of a pulled change's field: a local edit not yet
 * acknowledged (*pending), the version its value is at (*base, 0: none)
 * and a version the hub holds its value at (*hold, 0: none;
 * schema/018_hold.sql). */
static int field_state(rl_store *s, const struct rl_page_change *p, int *pending,
		       long long *base, long long *hold)
{
	sqlite3_stmt *st;
	int error, rc;

	if ((error = rl_store_prepare(s,
	     "SELECT " RL_OUTBOX_WAITING ", "
	     "       (SELECT version FROM rl_base WHERE tbl = ?1 AND row_id = ?2 AND field = ?3), "
	     "       (SELECT version FROM rl_hold WHERE tbl = ?1 AND row_id = ?2 AND field = ?3)",
	     &st)) < 0)
		return error;
	bind_key(st, p);
	rc = sqlite3_step(st);
	*pending = rc == SQLITE_ROW && sqlite3_column_int(st, 0);
	*base = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
	*hold = rc == SQLITE_ROW ? sqlite3_column_int64(st, 2) : 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? RL_OK : rl_store_error(s, "reading what the device knows of a field");
}

static int drop_hold(rl_store *s, const struct rl_page_change *p)
{
	sqlite3_stmt *st;
	int error, rc;

	if ((error = rl_store_prepare(s, "DELETE FROM rl_hold WHERE tbl = ?1 AND row_id = ?2 AND "
				      "field = ?3", &st)) < 0)
		return error;
	bind_key(st, p);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? RL_OK : rl_store_error(s, "dropping a held version");
}

static int set_base(rl_store *s, const struct rl_page_change *p)
{
	sqlite3_stmt *st;
	int error, rc;

	if ((error = rl_store_prepare(s, "INSERT INTO rl_base(tbl, row_id, field, version) "
				      "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(tbl, row_id, field) DO UPDATE "
				      "SET version = max(version, excluded.version)", &st)) < 0)
		return error;
	bind_key(st, p);
	sqlite3_bind_int64(st, 4, p->seq);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? RL_OK : rl_store_error(s, "recording a version");
}

/* Change i of a page's run (rl_store_prepare_create). */
static const char *page_change_at(const void *run, size_t i, const struct rl_value **value)
{
	const struct rl_page_change *c = (const struct rl_page_change *)run + i;

	*value = &c->value;
	return c->field;
}

/*
 * A redirect arrived: the hub merged duplicate `loser` of tbl into
 * `survivor` (relasi-hub duplicates merge). Every local reference to the
 * loser, in every table of the model, and every pending change that sets
 * one, now names the survivor, inside the page's transaction (capture is
 * off: the hub already moved the references it has; the pending changes
 * carry the ones it has not seen yet, so the next push is right). Changes
 * already sent stay as they were sent — a sent batch never changes — and
 * the hub re-points those itself (sync/PROTOCOL.md, "Merged duplicates").
 */
static int follow_redirect(rl_store *s, const char *tbl, const char *loser, const char *survivor)
{
	const struct rl_table *t;
	size_t k, f;
	int error;

	for (k = 0; (t = rl_model_table_at(k)); k++) {
		for (f = 0; f < t->nfields; f++) {
			const struct rl_field *rf = &t->fields[f];
			sqlite3_stmt *st;
			char *sql;
			int rc;
			if (rf->type != RL_FT_REF || !rf->ref || strcmp(rf->ref, tbl) != 0 ||
			    strcmp(rf->name, RL_MERGED_INTO) == 0)
				continue;
			if (!(sql = sqlite3_mprintf("UPDATE \"%w\" SET \"%w\" = ?1 WHERE \"%w\" = ?2",
						    t->name, rf->name, rf->name)))
				return rl_error_set(RL_ENOMEM, "out of memory");
			error = rl_store_prepare(s, sql, &st);
			sqlite3_free(sql);
			if (error < 0)
				return error;
			sqlite3_bind_text(st, 1, survivor, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, loser, -1, SQLITE_STATIC);
			rc = sqlite3_step(st);
			sqlite3_reset(st);
			if (rc != SQLITE_DONE)
				return rl_store_error(s, "re-pointing references to a merged record");
			if ((error = rl_store_prepare(s, "UPDATE rl_outbox SET value = ?1 WHERE tbl = ?3 "
						      "AND field = ?4 AND value = ?2 AND state = 'pending'",
						      &st)) < 0)
				return error;
			sqlite3_bind_text(st, 1, survivor, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, loser, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 3, t->name, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 4, rf->name, -1, SQLITE_STATIC);
			rc = sqlite3_step(st);
			sqlite3_reset(st);
			if (rc != SQLITE_DONE)
				return rl_store_error(s, "re-pointing pending changes to a merged record");
		}
	}
	return RL_OK;
}

static int apply_run_fields(rl_store *s, struct rl_page_change *ps, size_t n)
{
	int exists = 0, error;
	size_t i;

	if ((error = row_exists(s, ps[0].tbl, ps[0].row, &exists)) < 0)
		return error;
	if (!exists) {
		sqlite3_stmt *st;
		/* A field changed twice in the run (created, then edited right
		 * after at the hub) is named once, with its last value
		 * (rl_store_prepare_create). Found by fuzz/fuzz_dev_sync. */
		if ((error = rl_store_prepare_create(s, ps[0].tbl, ps[0].row, ps, n, page_change_at,
						     &st)) < 0)
			return error;
		if (sqlite3_step(st) != SQLITE_DONE) {
			error = rl_error_set(RL_EPROTO, "cannot create %s %s from the hub: %s", ps[0].tbl,
					     ps[0].row, sqlite3_errmsg(rl_store_db(s)));
			sqlite3_reset(st);
			return error;
		}
		sqlite3_reset(st);
		for (i = 0; i < n; i++)
			if ((error = set_base(s, &ps[i])) < 0)
				return error;
		return RL_OK;
	}
	for (i = 0; i < n; i++) {
		long long base, hold;
		sqlite3_stmt *st;
		char *sql;
		int mine;
		if ((error = field_state(s, &ps[i], &mine, &base, &hold)) < 0)
			return error;
		/* A pending edit keeps the device's value, so the field's base
		 * must stay where that value came from: the pulled version's
		 * text is one the device does not hold. Moving the base let
		 * the next edit (captured after the pending one was sent) claim
		 * it, and the hub read the pulled lines the device never had as
		 * deletions: a conflict where two appends should merge
		 * (tests/sim/simulate.py, FINDINGS 6). The hub's answer to the
		 * pending edit brings the version back (rewind, above). */
		if (mine)
			continue;
		/* The device's value is at a newer version than this change's
		 * already (its own, acknowledged 'applied', coming back later
		 * in this pull), or the hub holds it in a newer one (a merge):
		 * the older text must not replace it — a pull cut before the
		 * newer version arrives would leave the field older than its
		 * base says, and the next edit would drop the newer lines
		 * (FINDINGS 9). */
		if (ps[i].seq < base || ps[i].seq < hold)
			continue;
		if (hold && (error = drop_hold(s, &ps[i])) < 0)
			return error;
		/* A value the row holds already is not written again: most of a
		 * pull after a push is the device's own changes coming back, and
		 * rewriting them fired the search and map triggers for nothing
		 * (FTS5 flushes a segment per statement that touches it). The
		 * column's affinity applies to ?1 in the comparison as in the
		 * assignment. */
		if (!(sql = sqlite3_mprintf("UPDATE \"%w\" SET \"%w\" = ?1 WHERE id = ?2 "
					    "AND \"%w\" IS NOT ?1", ps[i].tbl, ps[i].field,
					    ps[i].field)))
			return rl_error_set(RL_ENOMEM, "out of memory");
		error = rl_store_prepare(s, sql, &st);
		sqlite3_free(sql);
		if (error < 0)
			return error;
		rl_store_bind_value(st, 1, &ps[i].value);
		sqlite3_bind_text(st, 2, ps[i].row, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			error = rl_error_set(RL_EPROTO, "cannot apply %s.%s from the hub: %s",
					     ps[i].tbl, ps[i].field, sqlite3_errmsg(rl_store_db(s)));
			sqlite3_reset(st);
			return error;
		}
		sqlite3_reset(st);
		if ((error = set_base(s, &ps[i])) < 0)
			return error;
	}
	return RL_OK;
}

/* One record's run of pulled changes; a redirect among them (the record
 * was merged into another) re-points what refers to it. */
static int apply_run(rl_store *s, struct rl_page_change *ps, size_t n)
{
	size_t i;
	int error;

	if ((error = apply_run_fields(s, ps, n)) < 0)
		return error;
	for (i = 0; i < n; i++)
		if (strcmp(ps[i].field, RL_MERGED_INTO) == 0 && ps[i].value.type == RL_V_TEXT &&
		    (error = follow_redirect(s, ps[i].tbl, ps[i].row, ps[i].value.s)) < 0)
			return error;
	return RL_OK;
}

/* Replace the device's view of its conflicts with the hub's list (sent on
 * the last page of a pull). Inside the page's transaction. */
static int store_conflicts(rl_store *s, const struct rl_page *pg)
{
	sqlite3_stmt *st;
	size_t i;
	int rc;

	if (sqlite3_exec(rl_store_db(s), "DELETE FROM rl_conflicts", NULL, NULL, NULL) != SQLITE_OK)
		return rl_store_error(s, "clearing conflicts");
	for (i = 0; i < pg->nconflicts; i++) {
		const struct rl_page_conflict *c = &pg->conflicts[i];
		const struct rl_table *tb = rl_model_table(c->tbl);
		if (!tb || !rl_model_field(tb, c->field))
			return rl_error_set(RL_EPROTO, "the hub's conflict %lld names an unknown "
					    "field %.40s.%.40s", c->id, c->tbl, c->field);
		if ((rc = rl_store_prepare(s,
		     "INSERT OR REPLACE INTO rl_conflicts(hub_id, tbl, row_id, field, kind, mine, theirs, "
		     "other, kept_mine, state, resolution, decided, at) "
		     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)", &st)) < 0)
			return rc;
		sqlite3_bind_int64(st, 1, c->id);
		sqlite3_bind_text(st, 2, tb->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, c->row, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, c->field, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, c->kind, -1, SQLITE_STATIC);
		rl_store_bind_value(st, 6, &c->mine);
		rl_store_bind_value(st, 7, &c->theirs);
		sqlite3_bind_text(st, 8, c->by, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 9, c->kept_mine);
		sqlite3_bind_text(st, 10, c->state, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 11, c->resolution, -1, SQLITE_STATIC);
		rl_store_bind_value(st, 12, &c->decided);
		sqlite3_bind_text(st, 13, c->at, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return rl_store_error(s, "recording a conflict");
	}
	return RL_OK;
}

/* Apply one PAGE (read by page.c) in one transaction (the network
 * session's pull and an imported reply bundle both come through here). */
/*
 * The last change pulled, as "EPOCH SEQ STAMP" (rl_meta 'hub_witness'):
 * HELLO tells it, and a hub whose log holds another change under that
 * number (a copy put back, whose new changes reuse the numbers it lost)
 * knows it lost history this device has seen, even when its log has grown
 * past the device's cursor since (hub/epoch.c). Tied to the epoch: after
 * a restore the number may name another change, and it is not told.
 */
static int note_witness(rl_store *s, const struct rl_page_change *c)
{
	char *epoch = NULL, *text;
	int error;

	if ((error = rl_store_meta_get(s, "hub_epoch", &epoch)) < 0 || !epoch)
		return error;
	if (!(text = sqlite3_mprintf("%s %lld %lld", epoch, c->seq, c->hlc)))
		error = rl_error_set(RL_ENOMEM, "out of memory");
	else
		error = rl_store_meta_set(s, "hub_witness", text);
	sqlite3_free(text);
	free(epoch);
	return error;
}

static int apply_page(rl_store *s, const struct rl_page *pg, long long *cursor, int *more,
		      long *count)
{
	struct rl_page_change *ps = pg->changes;
	size_t n = pg->n, i, j;
	int error = RL_OK;

	for (i = 0; i < n && error == 0; i++) {
		error = check_pulled(&ps[i]);
		if (error == 0 && ps[i].seq <= (i ? ps[i - 1].seq : *cursor))
			error = rl_error_set(RL_EPROTO, "the hub's page is out of order");
	}
	if (error < 0)
		return error;
	if ((error = rl_store_begin(s)) < 0)
		return error;
	/* New records are indexed for search at the commit (as a hub batch:
	 * schema/017_fts_indexed.sql). */
	if ((error = rl_store_fts_defer(s)) < 0) {
		rl_store_rollback(s);
		return error;
	}
	rl_store_set_capture(s, 0);
	for (i = 0; i < n && error == 0; i = j) {
		for (j = i + 1; j < n && strcmp(ps[j].tbl, ps[i].tbl) == 0 &&
		     strcmp(ps[j].row, ps[i].row) == 0; j++)
			;
		error = apply_run(s, ps + i, j - i);
	}
	for (i = 0; i < n && error == 0; i++)
		rl_hlc_receive(rl_store_hlc(s), ps[i].hlc, NULL);  /* far-future stamps are not adopted */
	rl_store_set_capture(s, 1);
	if (error == 0 && pg->has_conflicts)
		error = store_conflicts(s, pg);
	if (error == 0 && pg->cursor > *cursor)
		error = meta_set_int(s, "cursor", pg->cursor);
	if (error == 0 && n > 0)
		error = note_witness(s, &ps[n - 1]);
	if (error == 0)
		error = rl_store_commit(s);
	if (error < 0) {
		rl_store_rollback(s);
		return error;
	}
	if (pg->cursor > *cursor)
		*cursor = pg->cursor;
	*more = pg->more;
	*count += (long)n;
	return RL_OK;
}

/*
 * The hub found this device's clock stamps far in its future although the
 * device's wall clock is right now: they were made while the clock was
 * wrong (set ahead while the rep worked, corrected since). HLC stamps never
 * go back on their own, so the device could not sync until real time caught
 * up with them: 48 h for a clock that was 48 h ahead. A stamp only orders
 * concurrent edits of one field (the provisional winner of a conflict, which
 * the admin confirms), so the pending changes stamped after "now" get new
 * stamps from now on, in the order of their old ones, and the clock restarts
 * from the wall clock. Sent batches keep theirs: a sent batch never changes,
 * and its stamps were accepted when it was first sent.
 */
static int restamp_pending(rl_store *s, long *count)
{
	rl_hlc *h = rl_store_hlc(s);
	int64_t was = h->last, from;
	sqlite3_stmt *st;
	int error;

	if ((error = rl_store_begin(s)) < 0)
		return error;
	from = rl_hlc_restart(h);
	if ((error = rl_store_prepare(s,
	     "UPDATE rl_outbox SET hlc = ?1 + r.n FROM "
	     "(SELECT seq, row_number() OVER (ORDER BY hlc, seq) AS n FROM rl_outbox "
	     " WHERE state = 'pending' AND hlc > ?1) AS r WHERE rl_outbox.seq = r.seq", &st)) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, from);
	if (sqlite3_step(st) != SQLITE_DONE) {
		error = rl_store_error(s, "re-stamping pending changes");
		sqlite3_reset(st);
		goto fail;
	}
	sqlite3_reset(st);
	*count = (long)sqlite3_changes(rl_store_db(s));
	h->last = from + *count;    /* the stamps just handed out */
	if ((error = rl_store_commit(s)) < 0)
		goto fail;
	return RL_OK;
fail:
	rl_store_rollback(s);
	h->last = was;
	*count = 0;
	return error;
}

int rl_sync_fix_clock(rl_store *s, long *restamped)
{
	rl_hlc *h = rl_store_hlc(s);

	*restamped = 0;
	/* Stamps ahead of the wall clock by more than the hub takes: this
	 * device's clock ran ahead and was set right since (what WELCOME's
	 * "restamp" says on the network). */
	if (rl_hlc_physical_ms(h->last) - rl_store_now_ms(s) > h->max_drift_ms)
		return restamp_pending(s, restamped);
	return RL_OK;
}

/* ---- snapshot bootstrap (sync/PROTOCOL.md, "Snapshot") ------------------------------ */

/*
 * A device that has never pulled and has nothing waiting to be pushed loads
 * every synced row in one transaction instead of replaying the hub's log
 * page by page. It must end exactly where replaying would have left it, so
 * each record is written as apply_run writes it: an upsert of the fields
 * the hub has logged (the others keep their defaults, or their local value
 * in a record this device made and pushed before this first pull), capture
 * off, and each field's base raised to the version the hub logged it at.
 */

struct snap {
	long long seq, hlc, rows, fields;       /* announced by SNAP */
	long long got_rows, got_fields;
	/* Each table in one run, its records in ascending id order: with
	 * search indexing deferred (rl_store_fts_defer) a record written twice
	 * would be an update of a row the full-text index does not hold yet,
	 * and the index would be corrupt. */
	const struct rl_table *seen[RL_SNAP_MAX_TABLES];
	size_t nseen;
	char last_id[RL_ID_BUFSZ];
};

/*
 * The secondary indexes of the synced tables, dropped while a snapshot
 * loads and built again before it commits. Built from sorted rows, an
 * index costs a fraction of updating it for every inserted record in
 * random key order (activities alone has seven): 40% of a large load
 * (bench/bench_sync.py). Indexes led by a self-reference stay (see
 * drop_indexes). The schema change is part of the load's
 * transaction, so a rollback brings every index back as it was.
 */
struct snap_indexes {
	char *name[RL_SNAP_MAX_INDEXES];   /* sqlite3_malloc'd */
	char *sql[RL_SNAP_MAX_INDEXES];    /* their CREATE INDEX statements, sqlite3_malloc'd */
	size_t n;
};

static void free_indexes(struct snap_indexes *ix)
{
	while (ix->n) {
		ix->n--;
		sqlite3_free(ix->name[ix->n]);
		sqlite3_free(ix->sql[ix->n]);
	}
}

static int drop_indexes(rl_store *s, struct snap_indexes *ix)
{
	sqlite3_stmt *st;
	const struct rl_table *t;
	char *drop;
	size_t i;
	int error = RL_OK, rc = SQLITE_DONE;

	/* Kept: an index led by a reference to its own table (merged_into,
	 * schema/013_merged_index.sql). SQLite needs it for the foreign-key
	 * checks made while a merged record waits for its survivor. */
	if ((error = rl_store_prepare(s, "SELECT name, sql FROM sqlite_schema s WHERE type = 'index' "
				      "AND sql IS NOT NULL AND tbl_name = ?1 AND NOT EXISTS ("
				      "SELECT 1 FROM pragma_index_info(s.name) i, "
				      "pragma_foreign_key_list(s.tbl_name) k WHERE i.seqno = 0 AND "
				      "k.\"table\" = s.tbl_name AND k.\"from\" = i.name) ORDER BY name",
				      &st)) < 0)
		return error;
	/* All of them first: a schema change under a running statement fails. */
	for (i = 0; error == RL_OK && (t = rl_model_table_at(i)); i++) {
		sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
		while (error == RL_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (ix->n == RL_SNAP_MAX_INDEXES)
				error = rl_error_set(RL_ESTORE, "more than %d indexes on synced tables",
						     RL_SNAP_MAX_INDEXES);
			else if (!(ix->name[ix->n] = sqlite3_mprintf("%s", sqlite3_column_text(st, 0))) ||
				 !(ix->sql[ix->n] = sqlite3_mprintf("%s", sqlite3_column_text(st, 1)))) {
				sqlite3_free(ix->name[ix->n]);
				error = rl_error_set(RL_ENOMEM, "out of memory");
			} else
				ix->n++;
		}
		if (error == RL_OK && rc != SQLITE_DONE)
			error = rl_store_error(s, "reading the store's indexes");
		sqlite3_reset(st);
	}
	for (i = 0; error == RL_OK && i < ix->n; i++) {
		if (!(drop = sqlite3_mprintf("DROP INDEX \"%w\"", ix->name[i])))
			error = rl_error_set(RL_ENOMEM, "out of memory");
		else if (sqlite3_exec(rl_store_db(s), drop, NULL, NULL, NULL) != SQLITE_OK)
			error = rl_store_error(s, "dropping an index for the snapshot");
		sqlite3_free(drop);
	}
	return error;
}

static int rebuild_indexes(rl_store *s, struct snap_indexes *ix)
{
	size_t i;

	for (i = 0; i < ix->n; i++)
		if (sqlite3_exec(rl_store_db(s), ix->sql[i], NULL, NULL, NULL) != SQLITE_OK)
			return rl_store_error(s, "building an index after the snapshot");
	return RL_OK;
}

int rl_sync_bases_unfold(rl_store *s)
{
	sqlite3_stmt *st;
	int error, rc;

	/* WHERE true: an upsert's SELECT needs a WHERE (SQLite's grammar). */
	if ((error = rl_store_prepare(s, "INSERT INTO rl_base(tbl, row_id, field, version) "
				      "SELECT b.tbl, b.row_id, j.key, j.value FROM rl_base_snapshot b, "
				      "json_each(b.versions) j WHERE true ON CONFLICT(tbl, row_id, field) "
				      "DO UPDATE SET version = max(version, excluded.version)", &st)) < 0)
		return error;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return rl_store_error(s, "moving a snapshot's versions");
	if ((error = rl_store_prepare(s, "DELETE FROM rl_base_snapshot", &st)) < 0)
		return error;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? RL_OK : rl_store_error(s, "moving a snapshot's versions");
}

/* Cursor 0 and no change pending or sent: nothing the upsert could
 * overwrite that replaying would keep (apply_run_fields' field_state). Read
 * inside the load's transaction, so no local edit can slip in. */
static int snapshot_eligible(rl_store *s, int *yes)
{
	long long cursor;
	sqlite3_stmt *st;
	int error, rc;

	*yes = 0;
	if ((error = meta_int(s, "cursor", &cursor)) < 0)
		return error;
	if (cursor != 0)
		return RL_OK;
	if ((error = rl_store_prepare(s, "SELECT 1 FROM rl_outbox WHERE state IN ('pending', "
				      "'sent') LIMIT 1", &st)) < 0)
		return error;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return rl_store_error(s, "reading the outbox");
	*yes = rc == SQLITE_DONE;
	return RL_OK;
}

/* SNAP {"format", "seq", "hlc", "rows", "fields"}, every figure checked
 * against the limits before a row is read. *skip: the hub serves no
 * snapshot this time ("skip"). */
static int parse_snap(json_t *o, struct snap *sn, int *skip)
{
	json_t *f = json_object_get(o, "format"), *seq = json_object_get(o, "seq");
	json_t *hlc = json_object_get(o, "hlc"), *rows = json_object_get(o, "rows");
	json_t *fields = json_object_get(o, "fields");

	memset(sn, 0, sizeof(*sn));
	*skip = 0;
	if (!json_is_integer(f) || json_integer_value(f) != RL_SNAPSHOT_FORMAT)
		return rl_error_set(RL_EPROTO, "the hub's snapshot is not of format %d",
				    RL_SNAPSHOT_FORMAT);
	if (json_is_string(json_object_get(o, "skip"))) {
		*skip = 1;
		return RL_OK;
	}
	if (!json_is_integer(seq) || !json_is_integer(hlc) || !json_is_integer(rows) ||
	    !json_is_integer(fields))
		return rl_error_set(RL_EPROTO, "the hub's snapshot announcement lacks seq, hlc, "
				    "rows or fields");
	sn->seq = json_integer_value(seq);
	sn->hlc = json_integer_value(hlc);
	sn->rows = json_integer_value(rows);
	sn->fields = json_integer_value(fields);
	if (sn->seq < 0 || sn->hlc < 0 || sn->rows < 0 || sn->fields < 0)
		return rl_error_set(RL_EPROTO, "the hub's snapshot announcement has a negative "
				    "figure");
	if (sn->rows > RL_MAX_SNAPSHOT_ROWS)
		return rl_error_set(RL_ETOOBIG, "the hub's snapshot announces %lld records, more "
				    "than %d", sn->rows, RL_MAX_SNAPSHOT_ROWS);
	if (sn->fields > RL_MAX_SNAPSHOT_FIELDS || sn->fields > sn->rows * RL_MAX_ROW_FIELDS ||
	    sn->fields < sn->rows)
		return rl_error_set(RL_ETOOBIG, "the hub's snapshot announces %lld fields for %lld "
				    "records", sn->fields, sn->rows);
	if (sn->fields > sn->seq)
		/* Each field version is a distinct log entry at or below seq. */
		return rl_error_set(RL_EPROTO, "the hub's snapshot announces %lld fields up to "
				    "change %lld", sn->fields, sn->seq);
	return RL_OK;
}

/* The upsert of a record of t with the chunk's columns in mask: ?1 is the
 * id, ?i+2 column i. Cached by rl_store_prepare: records of a table mostly
 * come with the same fields. */
static int snap_upsert(rl_store *s, const struct rl_table *t, const struct rl_field **cols,
		       size_t n, unsigned long mask, sqlite3_stmt **out)
{
	sqlite3_str *q = sqlite3_str_new(rl_store_db(s));
	char *sql;
	size_t i;
	int error, first = 1;

	sqlite3_str_appendf(q, "INSERT INTO \"%w\"(id", t->name);
	for (i = 0; i < n; i++)
		if (mask & (1UL << i))
			sqlite3_str_appendf(q, ", \"%w\"", cols[i]->name);
	sqlite3_str_appendall(q, ") VALUES (?1");
	for (i = 0; i < n; i++)
		if (mask & (1UL << i))
			sqlite3_str_appendf(q, ", ?%d", (int)i + 2);
	sqlite3_str_appendall(q, ") ON CONFLICT(id) DO UPDATE SET ");
	for (i = 0; i < n; i++)
		if (mask & (1UL << i)) {
			sqlite3_str_appendf(q, "%s\"%w\" = excluded.\"%w\"", first ? "" : ", ",
					    cols[i]->name, cols[i]->name);
			first = 0;
		}
	if (!(sql = sqlite3_str_finish(q)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	error = rl_store_prepare(s, sql, out);
	sqlite3_free(sql);
	return error;
}

/* A chunk's scalar as the model's value; -1 when it is none (a boolean). */
static int cv_value(const struct rl_cv *v, struct rl_value *rv)
{
	memset(rv, 0, sizeof(*rv));
	switch (v->type) {
	case RL_CV_NULL: rv->type = RL_V_NULL; return 0;
	case RL_CV_INT: rv->type = RL_V_INT; rv->i = v->u.i; return 0;
	case RL_CV_REAL: rv->type = RL_V_REAL; rv->d = v->u.d; return 0;
	case RL_CV_TEXT: rv->type = RL_V_TEXT; rv->s = v->u.s; return 0;
	default: return -1;
	}
}

static void bind_cv(sqlite3_stmt *st, int idx, const struct rl_cv *v)
{
	if (v->type == RL_CV_INT)
		sqlite3_bind_int64(st, idx, v->u.i);
	else if (v->type == RL_CV_REAL)
		sqlite3_bind_double(st, idx, v->u.d);
	else if (v->type == RL_CV_TEXT)
		sqlite3_bind_text(st, idx, v->u.s, (int)v->n, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, idx);
}

/* Append ,"name":v (no comma first) to buf[0 .. cap); -1 when it does not
 * fit. v > 0 (load_chunk checked it). */
static int append_version(char *buf, size_t cap, size_t *len, const char *name, long long v)
{
	char digits[24];
	size_t nd = 0, nn = strlen(name), need;

	do
		digits[nd++] = (char)('0' + v % 10);
	while ((v /= 10) > 0 && nd < sizeof(digits));
	need = (*len > 1) + nn + 3 + nd;
	if (need > cap - *len)
		return -1;
	if (*len > 1)
		buf[(*len)++] = ',';
	buf[(*len)++] = '"';
	memcpy(buf + *len, name, nn);
	*len += nn;
	buf[(*len)++] = '"';
	buf[(*len)++] = ':';
	while (nd > 0)
		buf[(*len)++] = digits[--nd];
	return 0;
}

/* One CHUNK {"t", "cols", "rows": [[ID, V1..Vn, S1..Sn]...], "last"}: every
 * part checked (known table and fields, no field twice, valid ids and
 * values, versions within the snapshot, no more than announced) before its
 * row is written. Inside the load's transaction. */
static int load_chunk(rl_store *s, const struct rl_chunk *ck, struct snap *sn, int *last)
{
	const char *tname = ck->t.type == RL_CV_TEXT ? ck->t.u.s : NULL;
	const struct rl_field *cols[RL_MAX_ROW_FIELDS];
	const struct rl_table *t;
	const struct rl_cv *row;
	sqlite3_stmt *ins = NULL, *base;
	unsigned long ins_mask = 0;
	size_t n, i, j, r, vlen;
	char versions[RL_MAX_ROW_FIELDS * 96 + 2];
	int error;

	t = tname ? rl_model_table(tname) : NULL;
	if (!t || strcmp(t->name, tname) != 0)
		return rl_error_set(RL_EPROTO, "the hub's snapshot names an unknown table %.40s",
				    tname ? tname : "(none)");
	if (sn->nseen == 0 || sn->seen[sn->nseen - 1] != t) {
		for (i = 0; i < sn->nseen; i++)
			if (sn->seen[i] == t)
				return rl_error_set(RL_EPROTO, "the hub's snapshot sends %s again after "
						    "another table", t->name);
		if (sn->nseen == RL_SNAP_MAX_TABLES)
			return rl_error_set(RL_EPROTO, "the hub's snapshot sends more than %d tables",
					    RL_SNAP_MAX_TABLES);
		sn->seen[sn->nseen++] = t;
		sn->last_id[0] = '\0';
	}
	if (ck->cols.type != RL_CV_ARRAY || ck->cols.n > t->nfields ||
	    ck->cols.n > RL_MAX_ROW_FIELDS || ck->rows.type != RL_CV_ARRAY ||
	    ck->rows.n > RL_MAX_CHUNK_ROWS ||
	    (ck->last.type != RL_CV_TRUE && ck->last.type != RL_CV_FALSE))
		return rl_error_set(RL_EPROTO, "a malformed snapshot chunk of %s", t->name);
	n = ck->cols.n;
	for (i = 0; i < n; i++) {
		const struct rl_cv *v = &ck->items[ck->cols.u.first + i];
		const char *name = v->type == RL_CV_TEXT ? v->u.s : NULL;
		if (!name || !(cols[i] = rl_model_field(t, name)))
			return rl_error_set(RL_EPROTO, "the hub's snapshot names an unknown field "
					    "%s.%.40s", t->name, name ? name : "(not a string)");
		for (j = 0; j < i; j++)
			if (cols[j] == cols[i])
				return rl_error_set(RL_EPROTO, "the hub's snapshot names %s.%s twice",
						    t->name, name);
	}
	/* The versions of a record, one row (schema/014_base_snapshot.sql);
	 * snapshot_load emptied the table, and each record comes once. */
	if ((error = rl_store_prepare(s, "INSERT INTO rl_base_snapshot(tbl, row_id, versions) "
				      "VALUES (?1, ?2, ?3)", &base)) < 0)
		return error;
	for (r = 0; r < ck->rows.n; r++) {
		const struct rl_cv *item;
		const char *id;
		unsigned long mask = 0;
		long long nf = 0;
		row = &ck->rowv[ck->rows.u.first + r];
		item = row->type == RL_CV_ARRAY ? &ck->items[row->u.first] : NULL;
		id = item && row->n > 0 && item[0].type == RL_CV_TEXT ? item[0].u.s : NULL;
		if (!item || row->n != 1 + 2 * n || !id || !rl_id_valid(id))
			return rl_error_set(RL_EPROTO, "a malformed record in the hub's snapshot of %s",
					    t->name);
		for (i = 0; i < n; i++) {
			const struct rl_cv *jv = &item[1 + i], *js = &item[1 + n + i];
			long long version = js->type == RL_CV_INT ? js->u.i : -1;
			struct rl_value rv;
			if (version < 0 || version > sn->seq)
				return rl_error_set(RL_EPROTO, "the hub's snapshot gives %s %s a version "
						    "outside 0..%lld", t->name, id, sn->seq);
			if (version == 0) {
				if (jv->type != RL_CV_NULL)
					return rl_error_set(RL_EPROTO, "the hub's snapshot gives %s.%s of "
							    "%s a value without a version", t->name,
							    cols[i]->name, id);
				continue;
			}
			if (cv_value(jv, &rv) < 0 || rl_model_check_value(t, cols[i], &rv) < 0)
				return rl_error_set(RL_EPROTO, "the hub's snapshot has an invalid value "
						    "for %s.%s of %s", t->name, cols[i]->name, id);
			mask |= 1UL << i;
			nf++;
		}
		if (nf == 0)
			return rl_error_set(RL_EPROTO, "the hub's snapshot has %s %s without fields",
					    t->name, id);
		if (strcmp(id, sn->last_id) <= 0)
			return rl_error_set(RL_EPROTO, "the hub's snapshot sends %s %s twice or out of "
					    "order", t->name, id);
		snprintf(sn->last_id, sizeof(sn->last_id), "%s", id);
		if (sn->got_rows + 1 > sn->rows || sn->got_fields + nf > sn->fields)
			return rl_error_set(RL_EPROTO, "the hub's snapshot holds more than the %lld "
					    "records and %lld fields it announced", sn->rows,
					    sn->fields);
		sn->got_rows++;
		sn->got_fields += nf;
		if (!ins || mask != ins_mask) {
			if ((error = snap_upsert(s, t, cols, n, mask, &ins)) < 0)
				return error;
			ins_mask = mask;
		}
		sqlite3_bind_text(ins, 1, id, -1, SQLITE_STATIC);
		for (i = 0; i < n; i++)
			if (mask & (1UL << i))
				bind_cv(ins, (int)i + 2, &item[1 + i]);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			error = rl_error_set(RL_EPROTO, "cannot load %s %s from the hub's snapshot: %s",
					     t->name, id, sqlite3_errmsg(rl_store_db(s)));
			sqlite3_reset(ins);
			return error;
		}
		sqlite3_reset(ins);
		/* {"field": version, ...}: model names ([a-z_]) and positive
		 * integers, nothing to escape; written by hand, as snprintf
		 * was 3% of a large bootstrap. */
		vlen = 0;
		versions[vlen++] = '{';
		for (i = 0; i < n; i++) {
			if (!(mask & (1UL << i)))
				continue;
			if (append_version(versions, sizeof(versions) - 1, &vlen, cols[i]->name,
					   item[1 + n + i].u.i) < 0)
				return rl_error_set(RL_EPROTO, "the versions of %s %s do not fit",
						    t->name, id);
		}
		versions[vlen++] = '}';
		sqlite3_bind_text(base, 1, t->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(base, 2, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(base, 3, versions, (int)vlen, SQLITE_STATIC);
		if (sqlite3_step(base) != SQLITE_DONE) {
			sqlite3_reset(base);
			return rl_store_error(s, "recording the versions");
		}
		sqlite3_reset(base);
	}
	*last = ck->last.type == RL_CV_TRUE;
	return RL_OK;
}

/* A store that may take the hub's image (image.h) in place of its own
 * file: on top of snapshot_eligible, no row in the outbox at all (not even
 * a refused one), no batch ever numbered and no field version: nothing in
 * it came from this device's edits or from the hub, so its synced tables
 * hold what `relasi init` put there, as the image's do. Read inside the
 * load's transaction. */
static int image_eligible(rl_store *s, int *yes)
{
	static const char *const sql[] = {
		"SELECT 1 FROM rl_outbox LIMIT 1",
		"SELECT 1 FROM rl_base LIMIT 1",
		"SELECT 1 FROM rl_base_snapshot LIMIT 1",
		"SELECT 1 FROM rl_meta WHERE key = 'next_batch' AND CAST(value AS INTEGER) > 1",
	};
	sqlite3_stmt *st;
	size_t i;
	int error, rc;

	*yes = 0;
	for (i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		if ((error = rl_store_prepare(s, sql[i], &st)) < 0)
			return error;
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_ROW)
			return RL_OK;
		if (rc != SQLITE_DONE)
			return rl_store_error(s, "reading whether the store is new");
	}
	*yes = 1;
	return RL_OK;
}

/* The image the hub sent in answer to SNAPSHOT, installed (image.c).
 * *tx_ended: the load's transaction is over (see rl_image_install);
 * *retry: the image was refused but the connection is in step: ask again
 * for the snapshot record by record. */
static int snapshot_image(rl_store *s, rl_conn *c, json_t *snap, long long *cursor, int *loaded,
			  int *tx_ended, int *retry, struct rl_sync_stats *stats,
			  rl_sync_progress progress, void *pctx)
{
	struct rl_image_snap a;
	int error;

	*retry = 0;
	if ((error = rl_image_parse_snap(snap, &a)) < 0)
		return error;
	if ((error = rl_image_install(s, c, &a, tx_ended, retry, stats, progress, pctx)) < 0)
		return *retry ? RL_OK : error;
	*loaded = 1;
	*cursor = a.seq;
	stats->pulled += (long)a.fields;
	stats->snapshot_rows = (long)a.rows;
	stats->snapshot_image = 1;
	stats->snapshot_seq = a.seq;
	stats->snapshot_hlc = a.hlc;
	return RL_OK;
}

/*
 * Ask for a snapshot and load it in one transaction (the store's write lock
 * is held from before the request to the commit: no local edit can come in
 * between the check and the load). *loaded = 0 when the device is not
 * eligible or the hub skipped: the caller pulls the log as before. Any
 * error rolls everything back: the device stays as it was (empty) and the
 * next sync asks again. A new device that may take the hub's image asks
 * for it too (snapshot_image); a refused image is followed by a request
 * for the snapshot record by record, inside the same transaction.
 */
static int snapshot_load(rl_store *s, rl_conn *c, unsigned flags, long long *cursor, int *loaded,
			 struct rl_sync_stats *stats, rl_sync_progress progress, void *pctx)
{
	json_t *req = NULL, *resp = NULL;
	struct snap sn;
	struct snap_indexes ix = { { NULL }, { NULL }, 0 };
	struct rl_chunk ck;
	unsigned char *frame = NULL;
	size_t frame_cap = 0, frame_len;
	char status[96];
	long long cache;
	int error, ok, skip, type, last = 0, bulk = 0, image = 0, tx_ended = 0, retry;

	memset(&sn, 0, sizeof(sn));

	*loaded = 0;
	memset(&ck, 0, sizeof(ck));
	/* The load writes a new store's pages under a rollback journal, once
	 * (rl_store_journal_bulk; 16.2 -> 13.8 s on the full dataset, side by
	 * side). Set outside the transaction, as it must be: a first look at
	 * eligibility, asked again below under the lock; a store that is not
	 * eligible keeps WAL. */
	if (snapshot_eligible(s, &ok) == RL_OK && ok)
		bulk = rl_store_journal_bulk(s);
	if ((error = rl_store_begin(s)) < 0)
		goto journal;
	if ((error = snapshot_eligible(s, &ok)) < 0 || !ok)
		goto done;
	/* The image is copied over the store's file, which needs the rollback
	 * journal (no other process has the store open) and a new store. */
	if (bulk && !(flags & RL_SYNC_NO_IMAGE) && (error = image_eligible(s, &image)) < 0)
		goto done;
	/* A device rewound to cursor 0 may hold an earlier snapshot's
	 * versions; they join rl_base so that this one's rows are new. */
	if ((error = rl_sync_bases_unfold(s)) < 0)
		goto done;
again:
	req = image ? json_pack("{s:[i, i], s:i}", "format", RL_SNAPSHOT_FORMAT, RL_SNAPSHOT_IMAGE,
				"schema", rl_store_schema_version(s)) :
		      json_pack("{s:[i]}", "format", RL_SNAPSHOT_FORMAT);
	if (!req) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto done;
	}
	if ((error = exchange(c, RL_FRAME_SNAPSHOT, req, RL_FRAME_SNAP, &resp)) < 0)
		goto done;
	if (json_integer_value(json_object_get(resp, "format")) == RL_SNAPSHOT_IMAGE) {
		if (!image) {
			error = rl_error_set(RL_EPROTO, "the hub sent a snapshot image this device "
					     "did not ask for");
			goto done;
		}
		error = snapshot_image(s, c, resp, cursor, loaded, &tx_ended, &retry, stats,
				       progress, pctx);
		if (error == RL_OK && retry) {
			image = 0;
			json_decref(req);
			json_decref(resp);
			req = resp = NULL;
			goto again;
		}
		goto done;
	}
	if ((error = parse_snap(resp, &sn, &skip)) < 0 || skip)
		goto done;
	/* The load writes the whole store in one transaction: with the usual
	 * 8 MiB page cache SQLite spills dirty pages to the WAL and reads them
	 * back for every index; 64 MiB holds a large team's tables. */
	cache = rl_store_cache_widen(s, 65536);
	rl_store_set_capture(s, 0);
	/* Records are only inserted (load_chunk refuses one sent twice), so
	 * search indexing can wait for the commit, as an import's does. */
	if ((error = rl_store_fts_defer(s)) < 0 || (error = drop_indexes(s, &ix)) < 0)
		last = 1;
	/* Chunks are read by chunk.c, without a JSON tree (why: chunk.h);
	 * any other frame as usual. */
	while (!last) {
		json_decref(resp);
		resp = NULL;
		if ((error = rl_wire_read_raw(c, RL_MAX_FRAME, RL_ANSWER_TIMEOUT_MS, &frame,
					      &frame_cap, &frame_len)) < 0)
			break;
		if (frame[0] == RL_FRAME_CHUNK) {
			if ((error = rl_chunk_parse(&ck, frame + 1, frame_len - 1)) < 0 ||
			    (error = load_chunk(s, &ck, &sn, &last)) < 0)
				break;
		} else {
			if ((error = rl_wire_decode(frame, frame_len, &type, &resp)) < 0)
				break;
			error = type == RL_FRAME_ERROR ? hub_refused(resp) :
				rl_error_set(RL_EPROTO, "the hub answered '%c' inside a snapshot", type);
			break;
		}
		if (progress) {
			snprintf(status, sizeof(status), "snapshot: %lld of %lld records", sn.got_rows,
				 sn.rows);
			progress(pctx, status);
		}
	}
	if (error == 0 && (sn.got_rows != sn.rows || sn.got_fields != sn.fields))
		error = rl_error_set(RL_EPROTO, "the hub's snapshot ended after %lld of %lld records "
				     "and %lld of %lld fields", sn.got_rows, sn.rows, sn.got_fields,
				     sn.fields);
	if (error == 0) {       /* complete: only now worth indexing */
		if (progress)
			progress(pctx, "snapshot: indexing");
		error = rebuild_indexes(s, &ix);
	}
	free_indexes(&ix);
	rl_store_set_capture(s, 1);
	rl_store_cache_restore(s, cache);
	if (error < 0)
		goto done;
	rl_hlc_receive(rl_store_hlc(s), sn.hlc, NULL);  /* far-future stamps are not adopted */
	if ((error = meta_set_int(s, "cursor", sn.seq)) < 0)
		goto done;
	*loaded = 1;
done:
	if (tx_ended)           /* the image's copy ended the transaction */
		goto ended;
	if (error == 0 && *loaded && (error = rl_store_commit(s)) < 0 &&
	    (sqlite3_extended_errcode(rl_store_db(s)) == SQLITE_CONSTRAINT_FOREIGNKEY))
		/* The deferred references are checked at the commit. Found by
		 * fuzz/fuzz_snapshot, which also found the failed commit left
		 * the transaction open. */
		error = rl_error_set(RL_EPROTO, "the hub's snapshot has a record that refers to "
				     "one the snapshot does not hold");
	if (error < 0 || !*loaded)
		rl_store_rollback(s);
	if (error < 0) {
		*loaded = 0;
	} else if (*loaded) {
		*cursor = sn.seq;
		stats->pulled += (long)sn.fields;
		stats->snapshot_rows = (long)sn.rows;
		stats->snapshot_seq = sn.seq;
		stats->snapshot_hlc = sn.hlc;
	}
ended:
	if (error < 0)
		*loaded = 0;
	json_decref(req);
	json_decref(resp);
	rl_chunk_free(&ck);
	free(frame);
journal:
	rl_store_journal_wal(s);
	return error;
}

int rl_sync_snapshot_only(rl_store *s, rl_conn *c, struct rl_sync_stats *stats)
{
	long long cursor = 0;
	int error, loaded = 0;

	memset(stats, 0, sizeof(*stats));
	if ((error = meta_int(s, "cursor", &cursor)) < 0)
		return error;
	if (cursor != 0)
		return rl_error_set(RL_EINVALID, "a snapshot goes only into a store that never pulled");
	if ((error = snapshot_load(s, c, RL_SYNC_NO_IMAGE, &cursor, &loaded, stats, NULL, NULL)) < 0)
		return error;
	if (!loaded)
		return rl_error_set(RL_EINVALID, "no snapshot was loaded (the store is not a new one, "
				    "or the hub skipped it)");
	stats->cursor = cursor;
	return RL_OK;
}

/* ---- the session ---------------------------------------------------------------------- */

/* Ask for the changes after cursor and read the PAGE with page.c into *pg
 * (no JSON tree: relasi/page.h says why); an ERROR frame becomes an error
 * with the hub's words. *frame (capacity *cap) is the caller's, kept
 * between pages. */
static int pull_page(rl_conn *c, long long cursor, unsigned char **frame, size_t *cap,
		     struct rl_page *pg)
{
	char req[64];
	size_t len;
	int error;

	len = (size_t)snprintf(req, sizeof(req), "{\"cursor\":%lld,\"limit\":%d}", cursor,
			       PULL_LIMIT);
	if ((error = rl_wire_write_text(c, RL_FRAME_PULL, req, len, RL_MAX_FRAME,
					RL_READ_TIMEOUT_MS)) < 0 ||
	    (error = receive_frame(c, RL_FRAME_PAGE, frame, cap, &len)) < 0)
		return error;
	return rl_page_parse(pg, *frame + 1, len - 1);
}

/*
 * HELLO's "epoch", "cursor", "acked" and "witness": the hub history this
 * device last synced with, how far it has pulled it, the last batch the hub
 * answered and the last change pulled ([SEQ, STAMP], note_witness). A hub put back from an older copy of itself (not restored, so
 * its epoch is unchanged) learns from them that it lost what this device
 * has seen, and starts a new epoch before its WELCOME (hub/epoch.c). A hub
 * from before ignores them.
 */
static int hello_history(rl_store *s, json_t *req)
{
	char *epoch = NULL, *acked = NULL, *witness = NULL, we[72];
	long long cursor, wseq, whlc;
	int error;

	if ((error = rl_store_meta_get(s, "hub_epoch", &epoch)) < 0 ||
	    (error = rl_store_meta_get(s, "hub_acked", &acked)) < 0 ||
	    (error = rl_store_meta_get(s, "hub_witness", &witness)) < 0 ||
	    (error = meta_int(s, "cursor", &cursor)) < 0 || !epoch)
		goto cleanup;
	if (json_object_set_new(req, "epoch", json_string(epoch)) < 0 ||
	    json_object_set_new(req, "cursor", json_integer(cursor)) < 0 ||
	    (acked && json_object_set_new(req, "acked", json_integer(strtoll(acked, NULL, 10))) < 0))
		error = rl_error_set(RL_ENOMEM, "out of memory");
	else if (witness && sscanf(witness, "%71s %lld %lld", we, &wseq, &whlc) == 3 &&
		 strcmp(we, epoch) == 0 && wseq > 0 && whlc >= 0 &&
		 json_object_set_new(req, "witness", json_pack("[I, I]", (json_int_t)wseq,
							       (json_int_t)whlc)) < 0)
		error = rl_error_set(RL_ENOMEM, "out of memory");
cleanup:
	free(epoch);
	free(acked);
	free(witness);
	return error;
}

int rl_sync_session(rl_store *s, rl_conn *c, struct rl_sync_stats *stats,
		    rl_sync_progress progress, void *pctx)
{
	return rl_sync_session_ex(s, c, 0, stats, progress, pctx);
}

int rl_sync_session_ex(rl_store *s, rl_conn *c, unsigned flags, struct rl_sync_stats *stats,
		       rl_sync_progress progress, void *pctx)
{
	json_t *req = NULL, *resp = NULL;
	struct outgoing cur, next;
	struct rl_page page;
	unsigned char *frame = NULL;
	size_t frame_cap = 0;
	long long batch, cursor;
	char status[96], now[21], role[16] = "";
	int error, sent, more = 1, snapshot = 0, loaded = 0;

	memset(stats, 0, sizeof(*stats));
	memset(&page, 0, sizeof(page));
	memset(&cur, 0, sizeof(cur));
	memset(&next, 0, sizeof(next));
	/* "wall" lets the hub tell a clock that is wrong now from stamps made
	 * while it was wrong (restamp_pending). */
	req = json_pack("{s:[i], s:s, s:I, s:I}", "proto", RL_PROTO_VERSION, "client", "relasi",
			"hlc", (json_int_t)rl_hlc_now(rl_store_hlc(s)),
			"wall", (json_int_t)rl_store_now_ms(s));
	if (!req)
		return rl_error_set(RL_ENOMEM, "out of memory");
	if ((error = hello_history(s, req)) < 0) {
		json_decref(req);
		return error;
	}
	error = exchange(c, RL_FRAME_HELLO, req, RL_FRAME_WELCOME, &resp);
	json_decref(req);
	req = NULL;
	if (error < 0)
		goto cleanup;
	if (strcmp(json_string_value(json_object_get(resp, "device")) ?
		   json_string_value(json_object_get(resp, "device")) : "", rl_store_device_id(s)) != 0) {
		error = rl_error_set(RL_EAUTH, "the hub knows this certificate as another device");
		goto cleanup;
	}
	if (json_is_true(json_object_get(resp, "restamp")) &&
	    (error = restamp_pending(s, &stats->restamped)) < 0)
		goto cleanup;
	/* The admin may have changed the user's role since the last sync:
	 * the device's own check of each change (record.c) follows it, from
	 * the end of a sync that went through (a failed one changes nothing). */
	if (json_is_string(json_object_get(resp, "role")))
		snprintf(role, sizeof(role), "%s", json_string_value(json_object_get(resp, "role")));

	/* The device's clock is judged by the hub's wall clock. The hub's
	 * stamp may be ahead of it by up to the drift limit (it adopts the
	 * stamps of devices whose clocks run fast, within that limit), so a
	 * device a little behind could not take it: it then keeps its own
	 * (stamps only order concurrent edits). A hub from before "wall" is
	 * judged by its stamp, as it was. */
	{
		json_t *hw = json_object_get(resp, "wall");
		int64_t drift = rl_store_hlc(s)->max_drift_ms;
		int far = json_is_integer(hw)
			  ? json_integer_value(hw) - rl_store_now_ms(s) > drift
			  : rl_hlc_receive(rl_store_hlc(s),
					   json_integer_value(json_object_get(resp, "hlc")), NULL) < 0;
		if (far) {
			error = rl_error_set(RL_ECLOCK, "clock too far off: the hub's clock is ahead "
					     "of this device's by more than %lld minutes; set this "
					     "device's clock", (long long)drift / 60000);
			goto cleanup;
		}
		if (json_is_integer(hw))
			(void)rl_hlc_receive(rl_store_hlc(s),
					     json_integer_value(json_object_get(resp, "hlc")), NULL);
	}
	/* After a hub restore: re-send what it lost (hubepoch.c); number new
	 * batches after the hub's last. */
	if ((error = rl_sync_hub_facts(s, resp, json_object_get(resp, "batch"), stats)) < 0)
		goto cleanup;
	/* A hub that serves snapshots says which format; one that does not
	 * would answer SNAPSHOT with a protocol error, so it is never asked. */
	snapshot = !(flags & RL_SYNC_NO_SNAPSHOT) &&
		   json_integer_value(json_object_get(resp, "snapshot")) == RL_SNAPSHOT_FORMAT;
	json_decref(resp);
	resp = NULL;

	/* First any batches an earlier session sent without getting the
	 * answer, in order; then new ones. One batch is in flight at a time
	 * (the hub's merge rules rely on that order), but the device never
	 * keeps the hub waiting on its own store: it freezes and reads the
	 * next batch while the hub merges the current one, and sends it as soon
	 * as the answer has come, with the cursor that answer leaves
	 * (answer_rewind), before it records the answer in its store. A crash
	 * in between leaves both batches sent; the next session sends them
	 * again in order and gets the hub's stored answers. */
	if ((error = meta_int(s, "cursor", &cursor)) < 0 ||
	    (error = sent_batch_after(s, 0, &batch)) < 0 ||
	    (!batch && (error = freeze_batch(s, &batch)) < 0) ||
	    (batch && (error = prepare_push(s, batch, &cur)) < 0) ||
	    (cur.batch && (error = send_push(c, &cur, cursor)) < 0))
		goto cleanup;
	while (cur.batch) {
		if (progress) {
			snprintf(status, sizeof(status), "pushing batch %lld (%ld changes sent)",
				 cur.batch, stats->pushed);
			progress(pctx, status);
		}
		if ((error = sent_batch_after(s, cur.batch, &batch)) < 0 ||
		    (!batch && (error = freeze_batch(s, &batch)) < 0) ||
		    (batch && (error = prepare_push(s, batch, &next)) < 0))
			goto cleanup;
		if ((error = receive_push(c, &cur, &frame, &frame_cap, &cursor)) == RL_EREUSED) {
			long long to;
			if ((error = rl_sync_renumber_batch(s, cur.batch, &to)) == 0)
				error = rl_error_set(RL_EREUSED, "the hub already has batch %lld of this "
						     "device with other changes (was this store restored "
						     "from an older copy?); its changes are now batch %lld",
						     cur.batch, to);
		}
		if (error < 0)
			goto cleanup;
		/* The answer in hand is recorded even when the connection drops
		 * while the next batch goes out. */
		sent = next.batch ? send_push(c, &next, cursor) : RL_OK;
		if ((error = record_push(s, &cur, stats)) < 0 || (error = sent) < 0)
			goto cleanup;
		outgoing_free(&cur);
		cur = next;
		memset(&next, 0, sizeof(next));
	}
	if ((error = meta_int(s, "cursor", &cursor)) < 0)
		goto cleanup;
	/* First pull of a device with nothing waiting: the whole hub at once,
	 * then the log from the snapshot's seq as usual. */
	if (snapshot && cursor == 0 &&
	    (error = snapshot_load(s, c, flags, &cursor, &loaded, stats, progress, pctx)) < 0)
		goto cleanup;
	while (more) {
		if ((error = pull_page(c, cursor, &frame, &frame_cap, &page)) < 0 ||
		    (error = apply_page(s, &page, &cursor, &more, &stats->pulled)) < 0)
			goto cleanup;
		if (progress) {
			snprintf(status, sizeof(status), "pulled %ld changes", stats->pulled);
			progress(pctx, status);
		}
	}
	stats->cursor = cursor;
	/* A refused copy a recovery queued is moot once the pull brought its
	 * field back from the hub: gone now, not at the next session. */
	if ((error = rl_sync_tidy_resent(s)) < 0)
		goto cleanup;
	/* The cursor the device now holds, every page applied: the hub keeps
	 * it to tell the admin how far behind each device is (`device list`)
	 * and which have received a resolution (`conflicts show`). */
	if ((req = json_pack("{s:I}", "cursor", (json_int_t)cursor)))
		rl_wire_write(c, RL_FRAME_BYE, req, RL_MAX_FRAME, 2000);
	rl_time_format_utc(now, rl_store_now_ms(s) / 1000);
	if ((error = rl_store_begin(s)) == 0) {
		if ((error = rl_store_meta_set(s, "last_sync", now)) == 0 &&
		    (!role[0] || (error = rl_store_set_role(s, role)) == 0))
			error = rl_store_commit(s);
		if (error < 0)
			rl_store_rollback(s);
	}
cleanup:
	outgoing_free(&cur);
	outgoing_free(&next);
	rl_page_free(&page);
	free(frame);
	json_decref(req);
	json_decref(resp);
	return error;
}

/* ---- offline bundles (relasi/devsync.h) ---------------------------------------------- */

int rl_sync_export_push(rl_store *s, json_t **push)
{
	json_t *changes = NULL;
	long long batch, cursor, *seqs = NULL;
	char *text = NULL;
	size_t n = 0;
	int error;

	*push = NULL;
	/* As a session: the batch sent and unanswered first, else a new one. */
	if ((error = sent_batch_after(s, 0, &batch)) < 0 ||
	    (!batch && (error = freeze_batch(s, &batch)) < 0) ||
	    (error = meta_int(s, "cursor", &cursor)) < 0)
		return error;
	if (batch && (error = read_batch(s, batch, &text, &seqs, &n)) < 0)
		goto cleanup;
	if (!(changes = text ? json_loads(text, 0, NULL) : json_array())) {
		error = rl_error_set(RL_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (!(*push = json_pack("{s:I, s:I, s:O}", "batch", (json_int_t)batch,
				"cursor", (json_int_t)cursor, "changes", changes)))
		error = rl_error_set(RL_ENOMEM, "out of memory");
cleanup:
	json_decref(changes);
	free(text);
	free(seqs);
	return error;
}

int rl_sync_record_pushed(rl_store *s, json_t *pushed, struct rl_sync_stats *stats,
			  int *recorded)
{
	struct rl_pushed a;
	char *text = rl_json_dumps(pushed, JSON_COMPACT);
	long long cursor, *seqs = NULL;
	size_t n = 0;
	int error;

	/* Through the session's reader, as rl_sync_apply_page. */
	*recorded = 0;
	memset(&a, 0, sizeof(a));
	if (!text)
		return rl_error_set(RL_ENOMEM, "out of memory");
	if ((error = rl_pushed_parse(&a, (const unsigned char *)text, strlen(text))) < 0)
		goto cleanup;
	if (a.batch < 1) {
		error = rl_error_set(RL_EPROTO, "the hub's answer names no batch");
		goto cleanup;
	}
	if ((error = meta_int(s, "cursor", &cursor)) < 0 ||
	    (error = read_batch(s, a.batch, NULL, &seqs, &n)) < 0)
		goto cleanup;
	/* Nothing of it waits for an answer: recorded before (the same reply
	 * imported twice, or the batch went by network since). */
	if (n == 0)
		goto cleanup;
	if ((error = record_pushed(s, a.batch, cursor, seqs, n, &a, stats)) == 0)
		*recorded = 1;
cleanup:
	free(seqs);
	free(text);
	rl_pushed_free(&a);
	return error;
}

int rl_sync_check_reply(json_t *pushed, json_t *const *pages, size_t npages)
{
	struct rl_pushed a;
	struct rl_page pg;
	char *text;
	size_t i;
	int error = RL_OK;

	memset(&a, 0, sizeof(a));
	memset(&pg, 0, sizeof(pg));
	for (i = 0; i <= npages && error == 0; i++) {
		json_t *j = i < npages ? pages[i] : pushed;
		if (!j)
			continue;
		if (!(text = rl_json_dumps(j, JSON_COMPACT)))
			return rl_error_set(RL_ENOMEM, "out of memory");
		error = i < npages ? rl_page_parse(&pg, (const unsigned char *)text, strlen(text))
				   : rl_pushed_parse(&a, (const unsigned char *)text, strlen(text));
		free(text);
		if (error < 0 && i < npages)
			rl_error_prefix("page-%06zu.json", i + 1);
		else if (error < 0)
			rl_error_prefix("pushed.json");
		if (error == 0 && i == npages && a.batch < 1)
			error = rl_error_set(RL_EPROTO, "pushed.json: the hub's answer names no batch");
	}
	rl_page_free(&pg);
	rl_pushed_free(&a);
	return error;
}

int rl_sync_apply_page(rl_store *s, json_t *page, long long *cursor, int *more, long *count)
{
	struct rl_page pg;
	char *text = rl_json_dumps(page, JSON_COMPACT);
	int error;

	/* A bundle's page goes through the session's reader: one shape, one
	 * set of checks (text, not a tree: a rare path). */
	memset(&pg, 0, sizeof(pg));
	if (!text)
		return rl_error_set(RL_ENOMEM, "out of memory");
	if ((error = rl_page_parse(&pg, (const unsigned char *)text, strlen(text))) == 0)
		error = apply_page(s, &pg, cursor, more, count);
	free(text);
	rl_page_free(&pg);
	return error;
}
