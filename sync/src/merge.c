/*
 * merge.c — the hub's per-field merge rule (relasi/merge.h) and the
 * three-way text merge behind it, done by libgit2's git_merge_file (xdiff,
 * the same line merge as `git merge-file`).
 *
 * Text is merged by lines, and xdiff treats a last line without '\n' as a
 * different line from the same text with one ("b" != "b\n"). Notes typed in
 * a form rarely end in a newline, so appending a line to such a note would
 * touch the base's last line and conflict with any nearby edit. We therefore
 * merge s + "\n" for every input and strip one '\n' from the result: every
 * line is then complete, and since s -> s + "\n" is a bijection onto
 * newline-terminated text, the strip restores exactly what the merge meant
 * (a trailing newline a user really added survives as the second one).
 *
 * Note that xdiff needs at least one unchanged line between two edits:
 * edits to adjacent lines conflict, as they do in git.
 */
#include "relasi/merge.h"
#include "relasi/error.h"

#include <git2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t rl_git_once = PTHREAD_ONCE_INIT;
static int rl_git_init_rc;

/* libgit2 keeps global state (allocator, per-thread errors) that must be set
 * up once per process; we never shut it down, because other modules of the
 * same process may be using it and a per-merge init/shutdown pair would
 * tear that state down under them. */
static void rl_git_init(void)
{
	rl_git_init_rc = git_libgit2_init();
}

static const char *rl_git_message(void)
{
	const git_error *e = git_error_last();

	/* libgit2 1.5 may return NULL when it recorded nothing. */
	return e && e->message ? e->message : "unknown libgit2 error";
}

/* NULL strings read as "": a TEXT value whose s is NULL is malformed, and
 * an unknown device id must still order deterministically against others. */
static const char *rl_text(const char *s)
{
	return s ? s : "";
}

/* Copy s into a fresh buffer with one '\n' appended (see the top comment);
 * *len gets the length without the NUL. */
static int rl_with_newline(const char *s, char **out, size_t *len)
{
	size_t n = strlen(s);
	char *p;

	if (n > SIZE_MAX - 2)
		return rl_error_set(RL_ENOMEM, "merge input too large");
	p = malloc(n + 2);
	if (!p)
		return rl_error_set(RL_ENOMEM, "out of memory");
	memcpy(p, s, n);
	p[n] = '\n';
	p[n + 1] = '\0';
	*out = p;
	*len = n + 1;
	return RL_OK;
}

/*
 * Both sides only appended to the note (the base is a prefix of each, at a
 * line boundary): the note keeps both additions, ours (the hub's) first.
 * The line rule in rl_merge_text covers most appends; this one also sees
 * an append to a note that ended in a newline ("a\n" -> "a\nc"), where the
 * base's empty last line (see the top comment) became text.
 * Returns 1 with *out set, 0 when the rule does not apply, <0 on ENOMEM.
 */
static int merge_appends(const char *base, const char *ours, const char *theirs, char **out)
{
	size_t blen = strlen(base), olen, tlen;
	const char *ot, *tt;
	int sep;
	char *m;

	if (blen == 0 || strncmp(ours, base, blen) != 0 || strncmp(theirs, base, blen) != 0)
		return 0;
	ot = ours + blen;
	tt = theirs + blen;
	olen = strlen(ot);
	tlen = strlen(tt);
	if (olen == 0 || tlen == 0)
		return 0;
	/* Only whole lines were added. */
	if (base[blen - 1] != '\n' && (ot[0] != '\n' || tt[0] != '\n'))
		return 0;
	/* Keep the two additions on separate lines. */
	sep = ot[olen - 1] != '\n' && tt[0] != '\n';
	if (!(m = malloc(blen + olen + (size_t)sep + tlen + 1)))
		return rl_error_set(RL_ENOMEM, "out of memory");
	memcpy(m, base, blen);
	memcpy(m + blen, ot, olen);
	if (sep)
		m[blen + olen] = '\n';
	memcpy(m + blen + olen + sep, tt, tlen + 1);
	*out = m;
	return 1;
}

/* Is every line of base (a newline-terminated text) also a line of side,
 * in order? Then side only inserted lines into base: it deleted and
 * changed none. Greedy matching finds such an order if one exists. */
static int only_inserts(const char *base, size_t blen, const char *side, size_t slen)
{
	const char *b = base, *bend = base + blen, *p = side, *send = side + slen;

	while (b < bend) {
		const char *bnl = memchr(b, '\n', (size_t)(bend - b));
		size_t n = (size_t)(bnl - b) + 1;
		for (;;) {
			const char *pnl;
			if (p >= send)
				return 0;
			pnl = memchr(p, '\n', (size_t)(send - p));
			if ((size_t)(pnl - p) + 1 == n && memcmp(p, b, n) == 0) {
				p = pnl + 1;
				break;
			}
			p = pnl + 1;
		}
		b = bnl + 1;
	}
	return 1;
}

int rl_merge_text(const char *base, const char *ours, const char *theirs, int *clean, char **out)
{
	git_merge_file_input in_base, in_ours, in_theirs;
	git_merge_file_options opts;
	git_merge_file_result res;
	int have_res = 0;
	char *b = NULL, *o = NULL, *t = NULL, *merged = NULL;
	size_t blen, olen, tlen, mlen;
	int rc;

	if (!clean || !out)
		return rl_error_set(RL_ERROR, "rl_merge_text: NULL result pointer");
	*clean = 0;
	*out = NULL;
	memset(&res, 0, sizeof(res));

	if (pthread_once(&rl_git_once, rl_git_init) != 0)
		return rl_error_set(RL_ERROR, "git_libgit2_init: pthread_once failed");
	if (rl_git_init_rc < 0)
		return rl_error_set(RL_ERROR, "git_libgit2_init: %s", rl_git_message());

	/* The *_init() functions, not the GIT_MERGE_FILE_*_INIT macros: the
	 * macros set only the version, which clang's -Wextra rejects as
	 * missing field initialisers. They are documented as equivalent. */
	if (git_merge_file_input_init(&in_base, GIT_MERGE_FILE_INPUT_VERSION) < 0 ||
	    git_merge_file_input_init(&in_ours, GIT_MERGE_FILE_INPUT_VERSION) < 0 ||
	    git_merge_file_input_init(&in_theirs, GIT_MERGE_FILE_INPUT_VERSION) < 0 ||
	    git_merge_file_options_init(&opts, GIT_MERGE_FILE_OPTIONS_VERSION) < 0)
		return rl_error_set(RL_ERROR, "git_merge_file init: %s", rl_git_message());

	rc = rl_with_newline(rl_text(base), &b, &blen);
	if (rc != RL_OK)
		goto done;
	rc = rl_with_newline(rl_text(ours), &o, &olen);
	if (rc != RL_OK)
		goto done;
	rc = rl_with_newline(rl_text(theirs), &t, &tlen);
	if (rc != RL_OK)
		goto done;

	/* path and mode stay NULL / 0: we merge contents only. */
	in_base.ptr = b;
	in_base.size = blen;
	in_ours.ptr = o;
	in_ours.size = olen;
	in_theirs.ptr = t;
	in_theirs.size = tlen;
	opts.favor = GIT_MERGE_FILE_FAVOR_NORMAL;
	opts.flags = GIT_MERGE_FILE_DEFAULT;

	if (git_merge_file(&res, &in_base, &in_ours, &in_theirs, &opts) < 0) {
		rc = rl_error_set(RL_ERROR, "git_merge_file: %s", rl_git_message());
		goto done;
	}
	have_res = 1;

	/*
	 * Both sides inserted lines at one place: git calls it a conflict,
	 * but a rep adding "Telepon Senin" while another adds "Kirim brosur"
	 * is the common case of concurrent notes, and neither line may be
	 * lost. When neither side deleted or changed a line of the base,
	 * keeping both sides' lines (the hub's first: git's union merge) loses
	 * nothing, so the merge is clean. Any other overlap stays a conflict.
	 * (This once required both sides to append to the base's end; an
	 * append made on a text that another line had since been inserted
	 * into then conflicted: tests/sim/simulate.py, FINDINGS 7.)
	 */
	if (!res.automergeable && rl_text(base)[0] && only_inserts(b, blen, o, olen) &&
	    only_inserts(b, blen, t, tlen)) {
		git_merge_file_result_free(&res);
		have_res = 0;
		opts.favor = GIT_MERGE_FILE_FAVOR_UNION;
		if (git_merge_file(&res, &in_base, &in_ours, &in_theirs, &opts) < 0) {
			rc = rl_error_set(RL_ERROR, "git_merge_file: %s", rl_git_message());
			goto done;
		}
		have_res = 1;
		res.automergeable = 1;
	}
	/* Conflict markers in the output: not clean, and the marked-up text is
	 * of no use to the caller (the conflict record keeps both values) —
	 * unless both sides appended to a note ending in a newline, which the
	 * line rule above cannot see (its last line "" became text). */
	if (!res.automergeable) {
		rc = merge_appends(rl_text(base), rl_text(ours), rl_text(theirs), out);
		*clean = rc == 1;
		rc = rc < 0 ? rc : RL_OK;
		goto done;
	}
	/* Our inputs hold no NUL, so one in the output would be a libgit2
	 * surprise; a C string cannot carry it, so refuse to call it clean. */
	if (res.len > 0 && (!res.ptr || memchr(res.ptr, '\0', res.len))) {
		rc = RL_OK;
		goto done;
	}

	mlen = res.len;
	if (mlen > 0 && res.ptr[mlen - 1] == '\n')
		mlen--;
	merged = malloc(mlen + 1);
	if (!merged) {
		rc = rl_error_set(RL_ENOMEM, "out of memory");
		goto done;
	}
	if (mlen > 0)
		memcpy(merged, res.ptr, mlen);
	merged[mlen] = '\0';
	*out = merged;
	*clean = 1;
	rc = RL_OK;

done:
	if (have_res)
		git_merge_file_result_free(&res);
	free(b);
	free(o);
	free(t);
	return rc;
}

int rl_value_equal(const struct rl_value *a, const struct rl_value *b)
{
	/* No a == b shortcut: a NaN must not equal even itself. */
	if (!a || !b)
		return !a && !b;
	if (a->type != b->type)
		return 0;
	switch (a->type) {
	case RL_V_NULL:
		/* Not SQL's NULL = NULL: here "both empty" is the same state. */
		return 1;
	case RL_V_INT:
		return a->i == b->i;
	case RL_V_REAL:
		/* == makes NaN unequal to everything (a NaN written twice is a
		 * conflict, never silently SAME) and 0.0 equal to -0.0. */
		return a->d == b->d;
	case RL_V_TEXT:
		return strcmp(rl_text(a->s), rl_text(b->s)) == 0;
	}
	return 0;
}

/* The base of a text merge: TEXT as is, SQL NULL as the empty note (a notes
 * field starts out NULL); any other type cannot be merged as text. */
static int rl_base_text(const struct rl_value *v, const char **s)
{
	if (v->type == RL_V_TEXT) {
		*s = rl_text(v->s);
		return 1;
	}
	if (v->type == RL_V_NULL) {
		*s = "";
		return 1;
	}
	return 0;
}

int rl_merge_later(int64_t hlc, const char *device, int64_t other_hlc, const char *other_device)
{
	return hlc > other_hlc ||
	       (hlc == other_hlc && strcmp(rl_text(device), rl_text(other_device)) > 0);
}

int rl_merge_field(const struct rl_field_state *cur, const struct rl_incoming *in,
		   int is_text, const struct rl_value *base_value, struct rl_merge_result *out)
{
	const char *base_s;
	char *merged = NULL;
	int clean = 0;
	int rc;

	if (!cur || !in || !out)
		return rl_error_set(RL_ERROR, "rl_merge_field: NULL argument");
	out->outcome = RL_MERGE_APPLY;
	out->merged = NULL;
	out->incoming_wins = 0;

	/* The hub never had this field. A nonzero base here means the device
	 * claims a version the hub has no value for (e.g. the field was added
	 * to the schema later); either way there is nothing on our side to
	 * conflict with, so the incoming value is taken. */
	if (!cur->exists)
		return RL_OK;

	if (in->base == cur->version)
		return RL_OK;

	if (rl_value_equal(&in->value, &cur->value)) {
		out->outcome = RL_MERGE_SAME;
		return RL_OK;
	}

	if (is_text && base_value && cur->value.type == RL_V_TEXT &&
	    in->value.type == RL_V_TEXT && rl_base_text(base_value, &base_s)) {
		/* Current is "ours": the hub's text is the reference and the
		 * incoming edit is replayed onto it. */
		rc = rl_merge_text(base_s, rl_text(cur->value.s), rl_text(in->value.s),
				   &clean, &merged);
		if (rc != RL_OK)
			return rc;
		if (clean) {
			/* The incoming edit was already contained in the hub's
			 * text (or undid nothing): nothing to write. A merge
			 * equal to the incoming text stays MERGED; the caller
			 * stores *merged either way and the base was stale. */
			if (strcmp(merged, rl_text(cur->value.s)) == 0) {
				free(merged);
				out->outcome = RL_MERGE_SAME;
				return RL_OK;
			}
			out->outcome = RL_MERGE_MERGED;
			out->merged = merged;
			return RL_OK;
		}
	}

	out->incoming_wins = rl_merge_later(in->hlc, in->device, cur->hlc, cur->device);
	if (in->latest_wins) {
		/* The order of the stamps decides; the other value is kept
		 * elsewhere (a deal's stage events), so nothing is lost. */
		out->outcome = out->incoming_wins ? RL_MERGE_APPLY : RL_MERGE_SUPERSEDED;
		out->incoming_wins = 0;
		return RL_OK;
	}
	out->outcome = RL_MERGE_CONFLICT;
	return RL_OK;
}
