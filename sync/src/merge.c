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
 * A note written with CRLF line ends gets "\r\n" instead (any input that
 * holds one makes it the merge's line end), for the same reason.
 *
 * Note that xdiff needs at least one unchanged line between two edits:
 * edits to adjacent lines conflict, as they do in git.
 *
 * Before xdiff, one case is decided by our own rule: both sides only
 * inserted lines (every line of the base is still there, in order, on each
 * side). Then nothing is lost by keeping every inserted line, so the merge
 * is clean even where git would see a conflict (two reps adding a line at
 * the same place, the common case of concurrent notes): at each place the
 * lines both sides inserted alike come once, then the hub's own, then the
 * incoming ones. (git's union merge, used for this before, joins nearby
 * conflict regions and writes each side's whole copy of the region, base
 * lines included: lines the reps never touched came out twice.)
 */
#include "relasi/merge.h"
#include "relasi/error.h"

#include <git2.h>
#include <pthread.h>
#include <sqlite3.h>
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

int rl_git_global_init(void)
{
	if (pthread_once(&rl_git_once, rl_git_init) != 0)
		return rl_error_set(RL_ERROR, "git_libgit2_init: pthread_once failed");
	if (rl_git_init_rc < 0)
		return rl_error_set(RL_ERROR, "git_libgit2_init: %s", rl_git_message());
	return RL_OK;
}

/* NULL strings read as "": a TEXT value whose s is NULL is malformed, and
 * an unknown device id must still order deterministically against others. */
static const char *rl_text(const char *s)
{
	return s ? s : "";
}

/* Copy s into a fresh buffer with eol appended (see the top comment); *len
 * gets the length without the NUL. */
static int rl_with_eol(const char *s, const char *eol, char **out, size_t *len)
{
	size_t n = strlen(s), e = strlen(eol);
	char *p;

	if (n > SIZE_MAX - e - 1)
		return rl_error_set(RL_ENOMEM, "merge input too large");
	p = malloc(n + e + 1);
	if (!p)
		return rl_error_set(RL_ENOMEM, "out of memory");
	memcpy(p, s, n);
	memcpy(p + n, eol, e + 1);
	*out = p;
	*len = n + e;
	return RL_OK;
}

/* The lines of a text for the insert-only rule: their contents, without
 * the line end ("\n", or "\r\n"), so that "b" (a last line), "b\n" and
 * "b\r\n" are one line; and whether the text ends with a line end. */
struct rl_lines {
	const char **p;
	size_t *n;
	size_t count;
	int ends_nl;
};

static void rl_lines_free(struct rl_lines *l)
{
	free(l->p);
	free(l->n);
	memset(l, 0, sizeof(*l));
}

static int rl_lines_split(const char *s, struct rl_lines *l)
{
	size_t cap = 1, i = 0;
	const char *q;

	memset(l, 0, sizeof(*l));
	for (q = s; *q; q++)
		cap += *q == '\n';
	if (!(l->p = malloc(cap * sizeof(*l->p))) || !(l->n = malloc(cap * sizeof(*l->n)))) {
		rl_lines_free(l);
		return rl_error_set(RL_ENOMEM, "out of memory");
	}
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t n = nl ? (size_t)(nl - s) : strlen(s);
		l->p[i] = s;
		l->n[i++] = n > 0 && nl && s[n - 1] == '\r' ? n - 1 : n;
		l->ends_nl = nl != NULL;
		s = nl ? nl + 1 : s + n;
	}
	l->count = i;
	return RL_OK;
}

static int rl_line_eq(const struct rl_lines *a, size_t i, const struct rl_lines *b, size_t j)
{
	return a->n[i] == b->n[j] && memcmp(a->p[i], b->p[j], a->n[i]) == 0;
}

/* Is every line of base also a line of side, in order? Then side only
 * inserted lines: it deleted and changed none (a line end added or made
 * CRLF aside). at[i] gets the side's line that base line i is (greedy:
 * the earliest, which finds such an order if one exists). */
static int rl_only_inserts(const struct rl_lines *base, const struct rl_lines *side, size_t *at)
{
	size_t i, j = 0;

	for (i = 0; i < base->count; i++, j++) {
		while (j < side->count && !rl_line_eq(base, i, side, j))
			j++;
		if (j == side->count)
			return 0;
		at[i] = j;
	}
	return 1;
}

/* The merged text as it is written: its lines so far, and whether the
 * side that wrote the last one ends with a line end. */
struct rl_merged {
	sqlite3_str *text;
	size_t lines;
	int last_nl;
};

/* Add line i of l, after a line end unless it is the first line. */
static void rl_emit(struct rl_merged *m, const char *eol, const struct rl_lines *l, size_t i)
{
	if (m->lines++ > 0)
		sqlite3_str_appendall(m->text, eol);
	sqlite3_str_append(m->text, l->p[i], (int)l->n[i]);
	m->last_nl = l->ends_nl;
}

static int rl_bare_cr(const char *s)
{
	for (s = strchr(s, '\r'); s; s = strchr(s + 1, '\r'))
		if (s[1] != '\n')
			return 1;
	return 0;
}

/*
 * The insert-only rule (top comment). Returns 1 with *out set when both
 * sides only inserted lines into a base of one line or more, 0 when the
 * rule does not apply, < 0 on ENOMEM.
 */
static int merge_inserts(const char *base, const char *ours, const char *theirs,
			 const char *eol, char **out)
{
	struct rl_lines lb, lo, lt;
	struct rl_merged m = { NULL, 0, 0 };
	size_t *ao = NULL, *at = NULL, g, i, j, k;
	char *text;
	int rc, from_base = 0;

	memset(&lb, 0, sizeof(lb));
	memset(&lo, 0, sizeof(lo));
	memset(&lt, 0, sizeof(lt));
	/* A carriage return that ends no line would read as one once a line
	 * end follows it: such text is left to xdiff. */
	if (rl_bare_cr(base) || rl_bare_cr(ours) || rl_bare_cr(theirs))
		return 0;
	if ((rc = rl_lines_split(base, &lb)) < 0 || (rc = rl_lines_split(ours, &lo)) < 0 ||
	    (rc = rl_lines_split(theirs, &lt)) < 0)
		goto done;
	rc = 0;
	if (lb.count == 0)
		goto done;      /* two notes on an empty one: not insertions into it */
	if (!(ao = malloc(lb.count * sizeof(*ao))) || !(at = malloc(lb.count * sizeof(*at)))) {
		rc = rl_error_set(RL_ENOMEM, "out of memory");
		goto done;
	}
	if (!rl_only_inserts(&lb, &lo, ao) || !rl_only_inserts(&lb, &lt, at))
		goto done;
	m.text = sqlite3_str_new(NULL);
	/* Place g is before base line g (g == count: after the last). */
	for (g = 0, i = 0, j = 0; g <= lb.count; g++) {
		size_t oe = g < lb.count ? ao[g] : lo.count, te = g < lb.count ? at[g] : lt.count;
		/* Lines both inserted alike here, once; then ours, then theirs. */
		for (k = 0; i + k < oe && j + k < te && rl_line_eq(&lo, i + k, &lt, j + k); k++)
			;
		for (; i < oe; i++, from_base = 0)
			rl_emit(&m, eol, &lo, i);
		for (j += k; j < te; j++, from_base = 0)
			rl_emit(&m, eol, &lt, j);
		if (g < lb.count) {     /* the base's line as ours has it */
			rl_emit(&m, eol, &lo, i++);
			j++;
			from_base = 1;
		}
	}
	/* from_base: the last line written is the base's (whatever place). */
	/* The text ends with a line end as the side that wrote its last line
	 * does; a base line last: as the side that changed that, if one did. */
	if (from_base)
		m.last_nl = lo.ends_nl != lb.ends_nl ? lo.ends_nl : lt.ends_nl;
	if (m.last_nl)
		sqlite3_str_appendall(m.text, eol);
	rc = sqlite3_str_errcode(m.text);
	text = sqlite3_str_finish(m.text);
	m.text = NULL;
	/* A copy: the caller frees with free() (a text of one empty line
	 * finishes as NULL). */
	*out = rc == SQLITE_OK ? strdup(text ? text : "") : NULL;
	sqlite3_free(text);
	rc = *out ? 1 : rl_error_set(RL_ENOMEM, "out of memory");
done:
	if (m.text)
		sqlite3_free(sqlite3_str_finish(m.text));
	free(ao);
	free(at);
	rl_lines_free(&lb);
	rl_lines_free(&lo);
	rl_lines_free(&lt);
	return rc;
}

/* The line end the merge appends and strips (top comment). */
static const char *rl_merge_eol(const char *base, const char *ours, const char *theirs)
{
	return strstr(base, "\r\n") || strstr(ours, "\r\n") || strstr(theirs, "\r\n") ? "\r\n"
										      : "\n";
}

int rl_merge_text(const char *base, const char *ours, const char *theirs, int *clean, char **out)
{
	git_merge_file_input in_base, in_ours, in_theirs;
	git_merge_file_options opts;
	git_merge_file_result res;
	int have_res = 0;
	char *b = NULL, *o = NULL, *t = NULL, *merged = NULL;
	const char *eol;
	size_t blen, olen, tlen, mlen, elen;
	int rc;

	if (!clean || !out)
		return rl_error_set(RL_ERROR, "rl_merge_text: NULL result pointer");
	*clean = 0;
	*out = NULL;
	memset(&res, 0, sizeof(res));
	base = rl_text(base);
	ours = rl_text(ours);
	theirs = rl_text(theirs);

	/* One side unchanged, or both alike: the other, verbatim. */
	if (strcmp(ours, base) == 0 || strcmp(ours, theirs) == 0 || strcmp(theirs, base) == 0) {
		if (!(*out = strdup(strcmp(ours, base) == 0 ? theirs : ours)))
			return rl_error_set(RL_ENOMEM, "out of memory");
		*clean = 1;
		return RL_OK;
	}
	eol = rl_merge_eol(base, ours, theirs);
	elen = strlen(eol);
	if ((rc = merge_inserts(base, ours, theirs, eol, out)) != 0) {
		*clean = rc == 1;
		return rc < 0 ? rc : RL_OK;
	}

	if ((rc = rl_git_global_init()) < 0)
		return rc;

	/* The *_init() functions, not the GIT_MERGE_FILE_*_INIT macros: the
	 * macros set only the version, which clang's -Wextra rejects as
	 * missing field initialisers. They are documented as equivalent. */
	if (git_merge_file_input_init(&in_base, GIT_MERGE_FILE_INPUT_VERSION) < 0 ||
	    git_merge_file_input_init(&in_ours, GIT_MERGE_FILE_INPUT_VERSION) < 0 ||
	    git_merge_file_input_init(&in_theirs, GIT_MERGE_FILE_INPUT_VERSION) < 0 ||
	    git_merge_file_options_init(&opts, GIT_MERGE_FILE_OPTIONS_VERSION) < 0)
		return rl_error_set(RL_ERROR, "git_merge_file init: %s", rl_git_message());

	if ((rc = rl_with_eol(base, eol, &b, &blen)) != RL_OK ||
	    (rc = rl_with_eol(ours, eol, &o, &olen)) != RL_OK ||
	    (rc = rl_with_eol(theirs, eol, &t, &tlen)) != RL_OK)
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
	/* Conflict markers in the output: not clean, and the marked-up text is
	 * of no use to the caller (the conflict record keeps both values). */
	rc = RL_OK;
	if (!res.automergeable)
		goto done;
	/* Our inputs hold no NUL, so one in the output would be a libgit2
	 * surprise; a C string cannot carry it, so refuse to call it clean. */
	if (res.len > 0 && (!res.ptr || memchr(res.ptr, '\0', res.len)))
		goto done;

	mlen = res.len;
	if (mlen >= elen && memcmp(res.ptr + mlen - elen, eol, elen) == 0)
		mlen -= elen;
	else if (mlen > 0 && res.ptr[mlen - 1] == '\n')
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
